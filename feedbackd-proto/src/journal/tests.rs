use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn rs(service: ServiceKey, addr: IpAddr, port: u16) -> RsKey {
    RsKey { service, addr, port }
}

fn tcp(addr: IpAddr, port: u16) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr, port }
}

fn round_trip(line: &str) -> Record {
    let r = Record::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(r.to_line(), line, "written back differently");
    r
}

#[test]
fn the_documented_example_reads_and_writes_back_byte_for_byte() {
    let doc = include_str!("../journal.rs");
    let mut lines = doc
        .lines()
        .skip_while(|l| !l.starts_with("//! ```text"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.trim_start_matches("//! "))
        .peekable();
    assert!(lines.peek().is_some(), "the module doc has an example");
    let records: Vec<Record> = lines.map(round_trip).collect();
    assert_eq!(records.len(), 13);
    let Entry::Start { law, quiesce_after, .. } = &records[0].entry else { panic!("{:?}", records[0]) };
    assert_eq!(*law, LawConfig::default());
    assert_eq!(*quiesce_after, Duration::from_secs(5));
    assert_eq!(
        records[5].entry,
        Entry::Decision(Decision::Add { key: rs(tcp(v4(10, 0, 0, 1), 80), v4(10, 0, 0, 2), 80), weight: 90 })
    );
    assert_eq!(records[8].entry, Entry::Goodbye { conn: ConnId(1), reason: "stopping (SIGTERM)".into() });
}

#[test]
fn ipv6_services_servers_and_peers() {
    let vip = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    let rip = IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap());
    let r = Record {
        t: Time(5),
        entry: Entry::Table {
            services: vec![tcp(vip, 443), ServiceKey::Fwmark { mark: 7, ipv6: true }],
            entries: vec![
                TableEntry { key: rs(tcp(vip, 443), rip, 8443), weight: 3, forwarding: Forwarding::Tunnel },
                TableEntry {
                    key: rs(ServiceKey::Fwmark { mark: 7, ipv6: true }, rip, 0),
                    weight: 0,
                    forwarding: Forwarding::Local,
                },
            ],
        },
    };
    let line = r.to_line();
    assert_eq!(
        line,
        "5 table services=tcp:[2001:db8::1]:443,fwm6:7 \
         entries=tcp:[2001:db8::1]:443/[2001:db8::2]:8443/3/tun,fwm6:7/[2001:db8::2]:0/0/local"
    );
    assert_eq!(Record::parse_line(&line).unwrap(), r);
    let r = round_trip("6 connect conn=2 peer=::1");
    assert_eq!(r.entry, Entry::Connect { conn: ConnId(2), peer: IpAddr::V6(Ipv6Addr::LOCALHOST) });
    round_trip(
        "7 register conn=2 agent=a=b,c\\d interval_ms=1000 services=udp/53/dr/2001:db8::1/-/2001:db8::2",
    );
}

#[test]
fn the_grpc_law_and_exact_floats() {
    let law = LawConfig {
        smoothing: 0.1 + 0.2,
        kind: LawKind::GrpcWrr(GrpcWrr {
            error_penalty: 1e-7,
            weight_per_qps: 123.456_789_012_345_67,
            blackout_period: Duration::from_secs(3),
            weight_expiration_period: Duration(7),
        }),
        ..LawConfig::default()
    };
    let r = Record {
        t: Time(0),
        entry: Entry::Start {
            law,
            quiesce_after: Duration(1),
            remove_after: Duration(u64::MAX),
            register_timeout: Duration(0),
            max_servers_per_agent: None,
        },
    };
    let line = r.to_line();
    assert!(
        line.contains("law=grpc-wrr error_penalty=1e-7 ") && line.contains("smoothing=0.30000000000000004")
    );
    assert_eq!(Record::parse_line(&line).unwrap(), r);
}

#[test]
fn an_older_grpc_journal_replays_without_the_periods_it_did_not_honour() {
    let line = "0 start law=grpc-wrr error_penalty=1 weight_per_qps=1 min_weight=1 max_weight=100 \
                smoothing=0.2 dead_band=2 max_step=25 slow_start_ns=0 quiesce_after_ns=5000000000 \
                remove_after_ns=60000000000 register_timeout_ns=10000000000";
    let r = Record::parse_line(line).unwrap();
    let Entry::Start { law, .. } = r.entry else { panic!("{r:?}") };
    let LawKind::GrpcWrr(g) = law.kind else { panic!("{law:?}") };
    assert_eq!((g.blackout_period, g.weight_expiration_period), (Duration::ZERO, Duration(u64::MAX)));
    // Prequal's start line round-trips.
    let law = LawConfig {
        kind: LawKind::Prequal(Prequal { pool_size: 7, max_age: Duration(1_500_000_000), q_rif: 0.25 }),
        ..LawConfig::default()
    };
    let start = Entry::Start {
        law,
        quiesce_after: Duration(1),
        remove_after: Duration(2),
        register_timeout: Duration(3),
        max_servers_per_agent: None,
    };
    let r = Record { t: Time(0), entry: start };
    let line = r.to_line();
    assert!(line.contains("law=prequal pool_size=7 max_age_ns=1500000000 q_rif=0.25"), "{line}");
    assert_eq!(Record::parse_line(&line).unwrap(), r);
}

#[test]
fn reasons_keep_spaces_equals_and_escape_line_breaks() {
    let reason = "agent stopping: reason=x\nsecond line \\ tab\t nul\0 end ";
    let r = Record { t: Time(9), entry: Entry::Goodbye { conn: ConnId(4), reason: reason.into() } };
    let line = r.to_line();
    assert_eq!(
        line,
        "9 goodbye conn=4 reason=agent stopping: reason=x\\nsecond line \\\\ tab\\t nul\\u{0} end "
    );
    assert!(!line.contains('\n'));
    assert_eq!(Record::parse_line(&line).unwrap(), r);
    // An empty reason.
    round_trip("9 goodbye conn=4 reason=");
}

#[test]
fn fields_are_read_in_any_order_and_written_in_one() {
    let r = Record::parse_line("3 set to=2 from=1 rs=fwm:1/10.0.0.2:0").unwrap();
    assert_eq!(r.to_line(), "3 set rs=fwm:1/10.0.0.2:0 from=1 to=2");
}

#[test]
fn errors_say_what_is_wrong() {
    let cases = [
        ("", "empty line"),
        ("12", "no record kind"),
        ("x1 add", "time \"x1\" is not integer nanoseconds"),
        ("1 frobnicate a=1", "unknown record kind \"frobnicate\""),
        ("1 disconnect", "disconnect: missing field `conn=`"),
        ("1 disconnect conn=1 conn=2", "field `conn` given twice"),
        ("1 disconnect conn=1 extra=2", "disconnect: unknown field `extra=`"),
        ("1 disconnect conn=-1", "field `conn`: \"-1\" is not a whole number"),
        ("1 disconnect conn", "expected `field=value`, got \"conn\""),
        ("1 connect conn=1 peer=10.0.0.256", "field `peer`: \"10.0.0.256\" is not an IP address"),
        ("1 add rs=tcp:10.0.0.1:80 weight=1", "field `rs`: \"tcp:10.0.0.1:80\" is not SERVICE/SERVER"),
        ("1 add rs=tcp:2001:db8::1:80/10.0.0.2:80 weight=1", "an IPv6 address in brackets"),
        ("1 add rs=icmp:10.0.0.1:80/10.0.0.2:80 weight=1", "\"icmp\" is not a protocol"),
        ("1 add rs=fwm:x/10.0.0.2:80 weight=1", "\"x\" is not a firewall mark"),
        (
            "1 set rs=fwm:1/10.0.0.2:0 from=1 to=99999999999",
            "field `to`: \"99999999999\" is not a whole number below 2^32",
        ),
        (
            "1 report conn=1 admin=busy capacity= metrics=",
            "field `admin`: \"busy\" is not ready, drain or maint",
        ),
        (
            "1 report conn=1 admin=ready capacity=1,x metrics=",
            "field `capacity`, item 2: \"x\" is not a per-mille",
        ),
        (
            "1 report conn=1 admin=ready capacity= metrics=CPU:1",
            "field `metrics`, item 1: \"CPU\" is not a metric name",
        ),
        ("1 report conn=1 admin=ready capacity= metrics=cpu:lots", "\"lots\" is not a number"),
        (
            "1 register conn=1 agent=rs1 interval_ms=1 services=tcp/80/nat",
            "is not PROTO/PORT/FORWARDING/VIP/FWMARK/ADDRESS",
        ),
        (
            "1 register conn=1 agent=rs1 interval_ms=1 services=tcp/80/masq/-/-/-",
            "\"masq\" is not a forwarding method",
        ),
        ("1 table services= entries=tcp:10.0.0.1:80/10.0.0.2:80/1/bogus", "or local"),
        (
            "1 register conn=1 agent=rs1 interval_ms=1 services=tcp/80/local/-/-/-",
            "\"local\" is not a forwarding method (nat, dr, tun)",
        ),
        ("1 goodbye conn=1 reason=bad \\q", "field `reason`: unknown escape `\\q`"),
        ("1 goodbye conn=1 reason=bad \\u{d800}", "is not a character"),
        ("1 goodbye conn=1 reason=trailing \\", "a lone `\\` at the end"),
        ("1 start law=pid", "\"pid\" is not a law"),
        (
            "0 start law=capacity min_weight=5 max_weight=1 smoothing=0.5 dead_band=0 max_step=0 slow_start_ns=0 \
             quiesce_after_ns=1 remove_after_ns=2 register_timeout_ns=3",
            "invalid law: min_weight 5 is above max_weight 1",
        ),
    ];
    for (line, want) in cases {
        let e = Record::parse_line(line).expect_err(line);
        assert!(e.contains(want), "{line:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn console_records_read_back_and_refuse_what_is_wrong() {
    let key = "tcp:10.0.0.1:80/10.0.0.2:80";
    for line in [
        format!("7 operator rs={key} action=drain from=192.0.2.9 user=alice"),
        format!("7 operator rs={key} action=pin weight=5 from=2001:db8::9 user=bob\\u{{20}}smith"),
        format!("7 held rs={key} forwarding=dr weight=12"),
        "7 note from=192.0.2.9 user=alice text=added tcp:10.0.0.1:443 (wlc)".to_owned(),
    ] {
        round_trip(&line);
    }
    let r = round_trip(&format!(
        "7 operator rs={key} action=pin weight=5 from=2001:db8::9 user=bob\\u{{20}}smith"
    ));
    let Entry::Operator { who, action, .. } = r.entry else { panic!("{r:?}") };
    assert_eq!((who.user.as_str(), action), ("bob smith", ServerAction::Pin(5)));
    for (bad, why) in [
        (format!("7 operator rs={key} action=pin from=192.0.2.9 user=a"), "missing field `weight=`"),
        (
            format!("7 operator rs={key} action=drain weight=5 from=192.0.2.9 user=a"),
            "unknown field `weight=`",
        ),
        (format!("7 operator rs={key} action=shutdown from=192.0.2.9 user=a"), "is not drain"),
        (format!("7 operator rs={key} action=drain from=192.0.2.9 user="), "empty"),
        (format!("7 held rs={key} forwarding=local weight=1"), "not a forwarding method"),
        ("7 note from=nowhere user=a text=x".to_owned(), "not an IP address"),
    ] {
        let e = Record::parse_line(&bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn a_journal_names_the_bad_line() {
    let text = "# recorded by hand\n0 disconnect conn=1\n\n1 disconnect conn=x\n";
    let e = parse_journal(text).unwrap_err();
    assert!(e.starts_with("line 4: "), "{e}");
    assert_eq!(parse_journal("# nothing\n\n").unwrap(), vec![]);
}

// ---- properties ----

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![any::<Ipv4Addr>().prop_map(IpAddr::V4), any::<Ipv6Addr>().prop_map(IpAddr::V6)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)]
}

fn forwarding() -> impl Strategy<Value = Forwarding> {
    prop_oneof![Just(Forwarding::Masq), Just(Forwarding::DirectRouting), Just(Forwarding::Tunnel)]
}

fn service() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (protocol(), ip(), any::<u16>()).prop_map(|(protocol, addr, port)| ServiceKey::Addr {
            protocol,
            addr,
            port
        }),
        (1u32.., any::<bool>()).prop_map(|(mark, ipv6)| ServiceKey::Fwmark { mark, ipv6 }),
    ]
}

fn rs_key() -> impl Strategy<Value = RsKey> {
    (service(), ip(), any::<u16>()).prop_map(|(service, addr, port)| RsKey { service, addr, port })
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

fn law() -> impl Strategy<Value = LawConfig> {
    let kind =
        prop_oneof![
            Just(LawKind::Capacity),
            (0.0..1e6f64, 0.0..1e6f64).prop_map(|(error_penalty, weight_per_qps)| LawKind::GrpcWrr(
                GrpcWrr { error_penalty, weight_per_qps, ..GrpcWrr::default() }
            )),
        ];
    (
        1u32..=65535,
        any::<u32>(),
        prop_oneof![Just(1.0), 1e-12..1.0f64],
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        kind,
    )
        .prop_map(|(max_weight, min, smoothing, band, max_step, slow, kind)| LawConfig {
            min_weight: min % (max_weight + 1),
            max_weight,
            smoothing,
            dead_band: band % (max_weight + 1),
            max_step,
            slow_start: Duration(slow),
            kind,
        })
}

fn spec() -> impl Strategy<Value = ServiceSpec> {
    (
        protocol(),
        any::<u16>(),
        proptest::option::of(ip()),
        proptest::option::of(any::<u32>()),
        forwarding(),
        proptest::option::of(ip()),
    )
        .prop_map(|(protocol, port, vip, fwmark, forwarding, address)| ServiceSpec {
            protocol,
            port,
            vip,
            fwmark,
            forwarding,
            address,
        })
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        (rs_key(), any::<u32>()).prop_map(|(key, weight)| Decision::Add { key, weight }),
        (rs_key(), any::<u32>(), any::<u32>()).prop_map(|(key, from, to)| Decision::Set { key, from, to }),
        rs_key().prop_map(|key| Decision::Remove { key }),
    ]
}

fn entry() -> BoxedStrategy<Entry> {
    let conn = any::<u64>().prop_map(ConnId);
    let any_forwarding = prop_oneof![forwarding(), Just(Forwarding::Local)];
    let table_entry = (rs_key(), any::<u32>(), any_forwarding)
        .prop_map(|(key, weight, forwarding)| TableEntry { key, weight, forwarding });
    let metric = ("[a-z0-9_]{1,32}", finite()).prop_map(|(name, value)| Metric { name, value });
    let admin = prop_oneof![Just(AdminState::Ready), Just(AdminState::Drain), Just(AdminState::Maint)];
    let polled =
        ("[!-~]{1,64}", ip(), spec(), any::<u32>(), admin.clone(), proptest::option::of(any::<u16>()))
            .prop_map(|(id, peer, service, interval_ms, admin, capacity)| Entry::Polled {
                polled: Polled { id, peer, service, interval_ms },
                admin,
                capacity,
            })
            .boxed();
    let who = (any::<String>().prop_filter("a user name", |u| !u.is_empty()), ip())
        .prop_map(|(user, address)| Who { user, address })
        .boxed();
    let action = prop_oneof![
        Just(ServerAction::Drain),
        Just(ServerAction::Maintenance),
        Just(ServerAction::Return),
        any::<u32>().prop_map(ServerAction::Pin),
        Just(ServerAction::Unpin),
    ];
    let console = prop_oneof![
        (who.clone(), rs_key(), action).prop_map(|(who, key, action)| Entry::Operator { who, key, action }),
        (rs_key(), forwarding(), any::<u32>()).prop_map(|(key, forwarding, weight)| Entry::Held {
            key,
            forwarding,
            weight
        }),
        (who, any::<String>()).prop_map(|(who, text)| Entry::Note { who, text }),
    ]
    .boxed();
    prop_oneof![
        polled,
        console,
        (law(), any::<u64>(), any::<u64>(), any::<u64>(), proptest::option::of(any::<usize>())).prop_map(
            |(law, q, r, g, max_servers_per_agent)| Entry::Start {
                law,
                quiesce_after: Duration(q),
                remove_after: Duration(r),
                register_timeout: Duration(g),
                max_servers_per_agent,
            }
        ),
        (proptest::collection::vec(service(), 0..4), proptest::collection::vec(table_entry, 0..4))
            .prop_map(|(services, entries)| Entry::Table { services, entries }),
        (conn.clone(), ip()).prop_map(|(conn, peer)| Entry::Connect { conn, peer }),
        (conn.clone(), "[!-~]{1,64}", any::<u32>(), proptest::collection::vec(spec(), 0..4)).prop_map(
            |(conn, agent, interval_ms, services)| Entry::Register { conn, agent, interval_ms, services }
        ),
        (
            conn.clone(),
            admin,
            proptest::collection::vec(proptest::option::of(any::<u16>()), 0..5),
            proptest::collection::vec(metric, 0..4)
        )
            .prop_map(|(conn, admin, capacity, metrics)| Entry::Report {
                conn,
                admin,
                capacity,
                metrics
            }),
        (conn.clone(), any::<String>()).prop_map(|(conn, reason)| Entry::Goodbye { conn, reason }),
        conn.prop_map(|conn| Entry::Disconnect { conn }),
        rs_key().prop_map(|key| Entry::ApplyFailed { key }),
        decision().prop_map(Entry::Decision),
    ]
    .boxed()
}

proptest! {
    #[test]
    fn every_record_reads_back_equal(t in any::<u64>(), entry in entry()) {
        let r = Record { t: Time(t), entry };
        let line = r.to_line();
        prop_assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        let back = Record::parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        prop_assert_eq!(back, r, "{}", line);
    }

    #[test]
    fn parse_line_never_panics(line in any::<String>()) {
        let _ = Record::parse_line(&line);
    }

    #[test]
    fn parse_line_never_panics_on_near_misses(
        kind in prop::sample::select(KINDS),
        fields in proptest::collection::vec(("[a-z_]{1,12}", "[-a-z0-9:./,\\[\\]{}\\\\=]{0,24}"), 0..8),
    ) {
        let mut line = format!("1 {kind}");
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v}"));
        }
        let _ = Record::parse_line(&line);
    }
}
