//! lvs.cf import and export: the round trip, piranha's example layouts, what piranha's
//! parser refuses, nanny's escapes.

use lvs_ipvs::SchedulerKind;

use super::parse::unescape;
use super::*;
use crate::export::{Target, lvs_cf};
use crate::import::{Format, import as import_any};

fn src(path: &str, text: &str) -> Source {
    Source { path: path.into(), text: text.into() }
}

fn imp(text: &str) -> Imported {
    import_any(&[src("lvs.cf", text)], None).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    import_any(&[src("lvs.cf", text)], None).unwrap_err().to_string()
}

const PAIR: &str = r#"(
    directors: [
        (name: "lb1", address: "10.1.1.2", segment: "internal", services: [
            (vip: Some("192.0.2.10"), port: 80, scheduler: wlc, persistence_s: Some(300.0),
             netmask: Some("255.255.255.0"),
             real_servers: [(server: "app1", forwarding: NAT, weight: 3), (server: "app2", port: Some(8080), forwarding: NAT)],
             check: Some((checker: nanny, kind: SendExpect(send: Some("GET /ok HTTP/1.0\r\n\r\n"), expect: Some("HTTP/1\\.1 200"), use_regex: true),
                          timeout_s: Some(6.0), reentry_s: Some(15.0), quiescent: Some(true)))),
            (vip: Some("192.0.2.11"), port: 80, protocol: UDP, scheduler: rr,
             real_servers: [(server: "app1", forwarding: NAT)],
             check: Some((checker: nanny, kind: Connect))),
            (vip: Some("192.0.2.11"), port: 25, scheduler: lc,
             real_servers: [(server: "app2", forwarding: NAT)],
             check: Some((checker: nanny, kind: Negotiate(request: "status", receive: Some("220"))))),
        ]),
        (name: "lb2", address: "10.1.1.3", segment: "internal"),
    ],
    servers: [
        (name: "app1", address: "10.1.1.11", segment: "internal", gateway: Some("lb1")),
        (name: "app2", address: "10.1.1.12", segment: "internal", gateway: Some("lb1")),
    ],
    ha: Some((directors: ["lb1", "lb2"], failover: Pulse(keepalive_s: 3.0, deadtime_s: 12.0, heartbeat_port: 1050),
              sync: Some((syncid: 9)), external_interface: "ext0", internal_interface: "int0", vip_prefix: 25)),
)"#;

fn pair() -> Topology {
    ron::from_str(PAIR).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn export_import_export_is_byte_identical() {
    let t = pair();
    t.expand().unwrap_or_else(|e| panic!("{e:?}"));
    let first = lvs_cf(&t, Target::default()).expect("a pulse group");
    assert_eq!(Format::detect("x", &first), Some(Format::LvsCf));
    let back = imp(&first);
    assert!(back.notes.is_empty(), "{:?}", back.notes);
    back.topology.expand().unwrap_or_else(|e| panic!("{e:?}\n{first}"));
    let again = lvs_cf(&back.topology, Target::default()).expect("a pulse group");
    assert_eq!(again, first);
    // What came back is the same cluster: names, addresses, timing.
    let (a, b) = (&t, &back.topology);
    assert_eq!(
        b.directors.iter().map(|d| (&d.name, d.address)).collect::<Vec<_>>(),
        a.directors.iter().map(|d| (&d.name, d.address)).collect::<Vec<_>>()
    );
    let ha = b.ha.as_ref().expect("a group");
    assert_eq!(ha.failover, a.ha.as_ref().unwrap().failover);
    assert_eq!(
        (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
        ("ext0", "int0", 25)
    );
    assert_eq!(ha.sync.as_ref().map(|s| (s.syncid, s.interface.clone())), Some((9, None)));
    let s0 = &b.directors[0].services[0];
    assert_eq!((s0.persistence_s, s0.netmask), (Some(300.0), Some("255.255.255.0".parse().unwrap())));
    assert_eq!(s0.real_servers[1].port, Some(8080));
    let c = s0.check.as_ref().unwrap().config();
    assert_eq!(
        (c.interval, c.timeout, c.rise),
        (lvs_sched::Duration::from_secs(6), lvs_sched::Duration::from_secs(6), 2)
    );
    assert_eq!(c.on_failure, sim_core::ha::OnFailure::Quiesce);
    let CheckKind::SendExpect { expect, use_regex, .. } = &s0.check.as_ref().unwrap().kind else { panic!() };
    assert_eq!((expect.as_deref(), *use_regex), (Some("HTTP/1\\.1 200"), true));
    // The bare connect check on port 80 stays one (an empty send), UDP included.
    assert!(first.contains("     send = \"\"\n"), "{first}");
    assert_eq!(b.directors[0].services[1].check.as_ref().unwrap().kind, CheckKind::Connect);
}

#[test]
fn the_exported_file_says_what_nanny_and_pulse_read() {
    let text = lvs_cf(&pair(), Target::default()).unwrap();
    for line in [
        "# lvsim: primary lb1, backup lb2",
        "primary = 10.1.1.2",
        "backup_active = 1",
        "backup = 10.1.1.3",
        "heartbeat_port = 1050",
        "keepalive = 3",
        "deadtime = 12",
        "network = nat",
        "nat_router = 10.1.1.2 int0:1",
        "nat_nmask = 255.255.255.128",
        "syncdaemon = 1",
        "syncd_iface = int0",
        "syncd_id = 9",
        "     address = 192.0.2.10 ext0:1",
        "     address = 192.0.2.11 ext0:2",
        "     persistent = 300",
        "     pmask = 255.255.255.0",
        "     timeout = 6",
        "     reentry = 15",
        "     quiesce_server = 1",
        r#"     send = "GET /ok HTTP/1.0\r\n\r\n""#,
        r#"     expect = "HTTP/1\\.1 200""#,
        "     use_regex = 1",
        r#"     send = "GET /status HTTP/1.0\r\n\r\n""#,
        r#"     expect = "220""#,
        "         port = 8080",
        "         weight = 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    // A topology without pulse or nanny has no lvs.cf.
    let mut t = pair();
    t.ha = None;
    for s in &mut t.directors[0].services {
        s.check = None;
    }
    assert_eq!(lvs_cf(&t, Target::default()), None);
}

#[test]
fn what_lvs_cf_cannot_hold_is_a_comment_and_the_rest_still_reads_back() {
    let t: Topology = ron::from_str(
        r#"(
        directors: [
            (name: "lb1", address: "10.1.1.2", services: [
                (vip: Some("2001:db8::10"), port: 80, real_servers: [(server: "a", forwarding: DR)]),
                (fwmark: Some(7), real_servers: [(server: "a", forwarding: DR)]),
                (vip: Some("192.0.2.10"), port: 80, scheduler: sed, real_servers: [(server: "a", forwarding: DR)]),
                (vip: Some("192.0.2.10"), port: 443, flags: [sh_port], scheduler: sh,
                 real_servers: [(server: "a", forwarding: DR, upper: 10, lower: 5), (server: "b", forwarding: TUN),
                                (server: "c", forwarding: DR)]),
            ]),
            (name: "lb2", address: "10.1.1.3"),
        ],
        servers: [(name: "a", address: "10.1.1.11"), (name: "b", address: "10.1.1.12")],
        ha: Some((directors: ["lb1", "lb2"], failover: Pulse())),
    )"#,
    )
    .unwrap();
    let text = lvs_cf(&t, Target::default()).unwrap();
    for comment in [
        "# lvs.cf has one forwarding method for every real server: DirectRouting written, not [Tunnel]",
        "# service [2001:db8::10]:80 not written: IPv6: piranha is IPv4 only",
        "# service fwm 7 not written: a firewall-mark service: lvs.cf's virtual server needs its VIP address",
        "# service 192.0.2.10:80 not written: scheduler sed: lvs.cf takes rr, wrr, lc, wlc, lblc, lblcr, dh, sh",
        "     # flags [ShPort]: lvs.cf has no scheduler flags",
        "         # thresholds -x 10 -y 5: lvs.cf has none",
    ] {
        assert!(text.lines().any(|l| l == comment), "no {comment:?} in\n{text}");
    }
    // Services without a check get nanny's defaults, uncommented: the import gives them back.
    assert!(!text.contains("check in the topology"), "{text}");
    let back = imp(&text).topology;
    let s = &back.directors[0].services;
    assert_eq!(s.len(), 1, "only the fourth service is in the file");
    assert_eq!((s[0].port, s[0].scheduler), (443, SchedulerKind::Sh));
    assert!(s[0].real_servers.iter().all(|r| r.forwarding == Forwarding::DirectRouting));
    assert_eq!(s[0].check.as_ref().unwrap().checker, Checker::Nanny, "lvsd runs nanny anyway");
}

#[test]
fn piranhas_sample_layout_imports_with_notes_for_what_is_not_mapped() {
    let text = include_str!("../../../tests/data/lvs-cf/sample-nat.cf");
    let r = imp(text);
    let t = &r.topology;
    assert_eq!(t.directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["primary", "backup"]);
    let ha = t.ha.as_ref().unwrap();
    assert_eq!(ha.failover, Failover::Pulse { keepalive_s: 6.0, deadtime_s: 18.0, heartbeat_port: 1050 });
    assert_eq!(
        (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
        ("eth0", "eth1", 24)
    );
    // server2 is inactive, web1 a failover service: one service.
    let s = &t.directors[0].services;
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].port, s[0].scheduler, s[0].persistence_s), (80, SchedulerKind::Wlc, Some(60.0)));
    assert_eq!(
        s[0].real_servers.iter().map(|r| (r.server.as_str(), r.weight, r.forwarding)).collect::<Vec<_>>(),
        [("Real1", 1, Forwarding::Masq), ("Real2", 2, Forwarding::Masq)]
    );
    let c = s[0].check.as_ref().unwrap().config();
    assert_eq!((c.timeout.as_secs_f64(), c.rise), (5.0, 2));
    assert_eq!(t.servers[0].gateway.as_deref(), Some("primary"));
    let lines: Vec<(usize, &str)> = r.notes.iter().map(|n| (n.line, n.message.as_str())).collect();
    for (line, start) in [
        (6, "primary_private"),
        (9, "backup_private"),
        (15, "rsh_command"),
        (18, "nat_router 192.168.10.100"),
        (25, "load_monitor uptime"),
        (50, "virtual server2: not active"),
        (64, "failover web1"),
    ] {
        assert!(
            lines.iter().any(|(l, m)| *l == line && m.starts_with(start)),
            "no note {line} {start:?} in {lines:?}"
        );
    }
    assert!(t.expand().is_ok());
}

#[test]
fn regex_program_quiesce_and_sync_are_read() {
    let r = imp(include_str!("../../../tests/data/lvs-cf/rhel-dr-regex.cf"));
    let t = &r.topology;
    let s = &t.directors[0].services;
    assert_eq!(s.len(), 2);
    let CheckKind::SendExpect { send, expect, use_regex, .. } = &s[0].check.as_ref().unwrap().kind else {
        panic!()
    };
    assert_eq!(send.as_deref(), Some("GET /health HTTP/1.0\r\n\r\n"));
    assert_eq!((expect.as_deref(), *use_regex), (Some("HTTP/1\\.[01] 200"), true));
    assert_eq!(s[0].check.as_ref().unwrap().quiescent, Some(true));
    let CheckKind::SendExpect { send_program, .. } = &s[1].check.as_ref().unwrap().kind else { panic!() };
    assert_eq!(send_program.as_deref(), Some("/usr/local/bin/check_https %h %p"));
    assert_eq!(s[1].real_servers.len(), 1, "web2 is inactive in tls");
    assert_eq!(s[0].real_servers[0].forwarding, Forwarding::DirectRouting);
    let ha = t.ha.as_ref().unwrap();
    assert_eq!(ha.sync.as_ref().map(|s| s.syncid), Some(7));
    assert_eq!(r.notes.iter().map(|n| n.line).collect::<Vec<_>>(), [60], "{:?}", r.notes);
    // Exported again, the same checks come out.
    let out = lvs_cf(t, Target::default()).unwrap();
    assert!(out.contains("     expect = \"HTTP/1\\\\.[01] 200\"\n"), "{out}");
    assert!(out.contains("     send_program = \"/usr/local/bin/check_https %h %p\"\n"), "{out}");
}

#[test]
fn what_piranhas_parser_refuses_is_an_error_at_its_line_and_column() {
    let g = "primary = 10.0.0.1\n";
    let cases = [
        ("primary 10.0.0.1\n", "lvs.cf:1:9: expected `=` after primary"),
        ("primary = 10.0.0.1 10.0.0.2\n", "lvs.cf:1:20: one value too many for primary"),
        ("primary = lb1.example\n", "lvs.cf:1:11: \"lb1.example\" is not an IPv4 address"),
        ("primray = 10.0.0.1\n", "lvs.cf:1:1: \"primray\" is not a keyword of lvs.cf's global settings"),
        ("service = fos\n", "lvs.cf:1:11: service = fos"),
        ("keepalive = two\n", "lvs.cf:1:13: \"two\" is not an integer"),
        ("virtual v {\n address = 192.0.2.1\n}\n", "lvs.cf:2:10: address takes two values"),
        ("virtual v {\n timeout = 0\n}\n", "lvs.cf:2:12: timeout 0: nanny divides reentry by it"),
        ("virtual v {\n scheduler = sed\n}\n", "lvs.cf:2:14: \"sed\": lvs.cf's scheduler is one of"),
        ("virtual v {\n send = \"GET /\n}\n", "lvs.cf:2:9: no closing \""),
        (
            "virtual v {\n server a {\n  weigth = 1\n }\n}\n",
            "lvs.cf:3:3: \"weigth\" is not a keyword of a server block",
        ),
        ("virtual v\n", "lvs.cf:1:1: expected `virtual NAME {` on one line"),
        ("backup_active = 2\n", "lvs.cf:1:17: \"2\": backup_active takes 0 or 1"),
    ];
    for (text, want) in cases {
        let shifted = err(&format!("{g}{text}"));
        // Every case starts after the primary line: its line numbers are one more.
        let want = shift(want);
        assert!(shifted.starts_with(&want), "{text:?}: {shifted}\nwanted {want}");
    }
    assert_eq!(
        err("service = lvs\n"),
        "lvs.cf:0:0: no `primary = ADDRESS`: lvs.cf names the primary LVS router"
    );
    let two = [src("a/lvs.cf", g), src("b/lvs.cf", g)];
    assert!(
        import_any(&two, None).unwrap_err().to_string().starts_with("b/lvs.cf:0:0: one lvs.cf at a time")
    );
    let e = err("primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\nkeepalive = 5\ndeadtime = 5\n");
    assert!(e.starts_with("lvs.cf:5:1: deadtime 5 is not longer than keepalive 5"), "{e}");
}

/// `lvs.cf:L:C: m` with L one more.
fn shift(want: &str) -> String {
    let rest = want.strip_prefix("lvs.cf:").unwrap();
    let (line, tail) = rest.split_once(':').unwrap();
    format!("lvs.cf:{}:{tail}", line.parse::<usize>().unwrap() + 1)
}

#[test]
fn nanny_escapes_are_undone_and_redone() {
    assert_eq!(unescape(r#"a\r\nb\\c\td\'e\"f\x"#), "a\r\nb\\c\td'e\"f\\x");
    let s = "GET / HTTP/1.0\r\n\r\n\tx\\y";
    assert_eq!(unescape(&crate::export::lvs_cf::escape(s)), s);
}
