//! Tests of the rule grammar: lines real `ipvsadm -S -n` printed (1.31, kernel 6.1),
//! ipvsadm's refusals, and property round trips.

use std::net::IpAddr;

use lvs_sched::{DestConfig, Duration, Forwarding, SchedulerKind, SvcFlags, Tunnel, TunnelType};
use proptest::prelude::*;

use super::{Command, DEFAULT_PERSISTENCE, ParseError, apply, parse, parse_line, words};
use crate::{Ipvs, IpvsError, PersistenceEngine, Protocol, ServiceConfig, ServiceKey};

fn p(line: &str) -> Result<Command, ParseError> {
    parse(&words(line))
}

/// Every line below was printed by `ipvsadm -S -n` (ipvsadm 1.31, Debian 6.1 kernel, in
/// tests/vm/lvsim-vm) after rules using every option.
const SAVED_BY_IPVSADM: &str = "\
-A -t 10.0.0.1:0 -s rr -p 60
-a -t 10.0.0.1:0 -r 10.0.0.2:0 -g -w 1
-A -t 10.0.0.1:80 -s rr -p 100 -M 255.255.255.0
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 0
-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 5
-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 1 --tun-type ipip
-a -t 10.0.0.1:80 -r 10.0.0.5:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.1:80 -r 10.0.0.6:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum
-a -t 10.0.0.1:80 -r 10.0.0.7:80 -i -w 1 --tun-type gre --tun-csum
-a -t 10.0.0.1:80 -r 10.0.0.8:80 -i -w 1 --tun-type gre --tun-nocsum
-a -t 10.0.0.1:80 -r 10.0.0.9:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-A -t 10.0.0.1:81 -s wlc
-A -u 10.0.0.1:53 -s mh -p 360 -b mh-fallback,mh-port
-A --sctp-service 10.0.0.1:5000 -s wrr
-a --sctp-service 10.0.0.1:5000 -r 10.0.0.2:5000 -m -w 1
-A -t [2001:db8::1]:80 -s rr -p 60 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::3]:8080 -m -w 3
-A -t [2001:db8::1]:81 -s rr -p 60
-A -f 7 -s lc -p 30
-a -f 7 -r 10.0.0.2:0 -g -w 1
-a -f 7 -r 10.0.0.3:8080 -m -w 1
-A -f 8 -6 -s lc -p 30 -M 64
-a -f 8 -6 -r [2001:db8::2]:0 -g -w 1
-a -f 8 -6 -r [2001:db8::2]:80 -m -w 1
-A -t 10.0.0.1:84 -s rr -p 60 -M 0.0.0.0
-A -t 10.0.0.1:85 -s wlc -p 3600 -M 255.255.255.0 --pe sip -b flag-1
-a -t 10.0.0.1:85 -r 10.0.0.15:85 -m -w 65536
-a -t 10.0.0.1:85 -r 10.0.0.6:85 -m -w 2147483647
-A -t 10.0.0.1:87 -s wlc -p 2678400
-A -t 10.0.0.1:89 -s rr -p 5 -M 255.0.255.0
-A -u 10.0.0.1:54 -s rr -o
-A -u 10.0.0.1:56 -s rr -b flag-1,flag-2,flag-3
-A -u 10.0.0.1:57 -s sh -b sh-port
-A -t 10.0.0.1:87 -s sh -b sh-fallback,sh-port
-A -u 10.0.0.1:84 -s rr -p 20 -o
-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip
-A -u 10.0.0.1:86 -s rr --pe sip
-A -f 3 -s rr -o
-A -f 4 -6 -s rr
-A -f 9 -s lc
-a -f 9 -r 10.0.0.2:0 -g -w 3
-A -f 6 -s rr -p 6 -M 255.255.255.0
-a -f 6 -r 10.0.0.2:80 -i -w 1 --tun-type ipip
-A -u 10.0.0.1:9 -s rr -p 60 --pe sip -o -b flag-1
-A -f 3 -s sh -o -b sh-port
";

#[test]
fn every_line_ipvsadm_saves_is_emitted_back_byte_for_byte() {
    for line in SAVED_BY_IPVSADM.lines() {
        let cmd = p(line).unwrap_or_else(|e| panic!("{line}: {e} at {}", e.offset));
        assert_eq!(cmd.to_string(), line);
        assert_eq!(cmd.args().join(" "), line);
    }
}

#[test]
fn flag_3_of_sh_is_written_though_ipvsadm_s_leaves_it_out() {
    // ipvsadm -S writes `-b ` here, which it cannot read back; this writes a rule it reads.
    let cmd = p("-A -t 10.0.0.1:88 -s sh -b flag-3").unwrap();
    assert_eq!(cmd.to_string(), "-A -t 10.0.0.1:88 -s sh -b flag-3");
    assert!(p("-A -t 10.0.0.1:88 -s sh -b ").unwrap_err().message.contains("-b needs scheduler flags"));
    // flag-N is the same bit as the scheduler's own name: ipvsadm prints the name.
    assert_eq!(
        p("-A -t 10.0.0.1:83 -s sh -b flag-1").unwrap().to_string(),
        "-A -t 10.0.0.1:83 -s sh -b sh-fallback"
    );
}

#[test]
fn defaults_are_ipvsadms() {
    let Command::AddService(k, c) = p("-A -t 10.0.0.1:80").unwrap() else { panic!() };
    assert_eq!(k, ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 });
    assert_eq!((c.scheduler, c.netmask, c.pe), (SchedulerKind::Wlc, u32::MAX, None));
    let Command::AddService(_, c) = p("-A -t [2001:db8::1]:80 -p").unwrap() else { panic!() };
    assert_eq!((c.netmask, c.persistence), (128, Some(DEFAULT_PERSISTENCE)), "IPv6 defaults to /128");
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 10.0.0.2:8080").unwrap() else { panic!() };
    assert_eq!((d.fwd, d.weight, d.port), (Forwarding::DirectRouting, 1, 80), "DR forces the service port");
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:http -r 10.0.0.2:8080 -m -w 4").unwrap() else { panic!() };
    assert_eq!((d.fwd, d.weight, d.port), (Forwarding::Masq, 4, 8080));
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 10.0.0.2 -i").unwrap() else { panic!() };
    assert_eq!(d.tunnel, Tunnel::default(), "-i alone is ipip");
    let Command::AddService(_, c) = p("-A -u 10.0.0.1:53 -s sh -b sh-port,sh-fallback -p").unwrap() else {
        panic!()
    };
    assert_eq!(c.persistence, Some(DEFAULT_PERSISTENCE));
    assert_eq!(c.flags.0, SvcFlags::PERSISTENT | SvcFlags::SCHED1 | SvcFlags::SCHED2);
}

#[test]
fn tunnel_options_are_kept() {
    let Command::AddDest(_, d) =
        p("-a -t 10.0.0.1:80 -r 10.0.0.5 -i --tun-type gue --tun-port 6080 --tun-remcsum").unwrap()
    else {
        panic!()
    };
    assert_eq!(d.tunnel, Tunnel { kind: TunnelType::Gue, port: 6080, flags: Tunnel::REMCSUM });
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 10.0.0.5 -i --tun-type gre --tun-csum").unwrap()
    else {
        panic!()
    };
    assert_eq!(d.tunnel, Tunnel { kind: TunnelType::Gre, port: 0, flags: Tunnel::CSUM });
}

#[test]
fn long_forms_attached_values_and_a_leading_ipvsadm() {
    let long = "--add-server --tcp-service 10.0.0.1:91 --real-server 10.0.0.2:91 --masquerading --weight=3 \
                --u-threshold 10 --l-threshold 5";
    assert_eq!(p(long).unwrap().to_string(), "-a -t 10.0.0.1:91 -r 10.0.0.2:91 -m -w 3 -x 10 -y 5");
    assert_eq!(p("-a -t10.0.0.1:91 -r10.0.0.2 -m -w3 -x10 -y5").unwrap(), p(long).unwrap());
    let svc = "--add-service --udp-service 10.0.0.1:53 --scheduler=sh --persistent 50 --netmask 255.255.255.0 \
               --sched-flags sh-port --ops";
    assert_eq!(p(svc).unwrap().to_string(), "-A -u 10.0.0.1:53 -s sh -p 50 -M 255.255.255.0 -o -b sh-port");
    assert_eq!(
        p("--add-service --fwmark-service 3 --ipv6 --pe sip").unwrap().to_string(),
        "-A -f 3 -6 -s wlc --pe sip"
    );
    assert_eq!(parse_line("ipvsadm -C").unwrap(), Some(Command::Clear));
    assert_eq!(parse_line("  # a comment").unwrap(), None);
    assert_eq!(p("--set 10 11 12").unwrap().to_string(), "--set 10 11 12");
    assert_eq!(p("-Z").unwrap(), Command::Zero(None));
    assert_eq!(p("--zero -t 10.0.0.1:80").unwrap().to_string(), "-Z -t 10.0.0.1:80");
    assert_eq!(p("-D -f 3 -6").unwrap().to_string(), "-D -f 3 -6");
    assert_eq!(
        p("--delete-server -t 10.0.0.1:80 -r 10.0.0.2:8080").unwrap().to_string(),
        "-d -t 10.0.0.1:80 -r 10.0.0.2:8080"
    );
    assert_eq!(p("-d -t 10.0.0.1:80 -r 10.0.0.2").unwrap().to_string(), "-d -t 10.0.0.1:80 -r 10.0.0.2:80");
}

/// What real ipvsadm 1.31 refuses (checked in the VM), refused here with the offending
/// word's offset.
#[test]
fn ipvsadms_refusals() {
    let cases: &[(&str, usize, &str)] = &[
        ("-A -t 10.0.0.1:80 -s rr -o", 24, "only for UDP"),
        ("-A --sctp-service 10.0.0.1:80 -o", 30, "only for UDP"),
        ("-A -t 10.0.0.1:80 -s rr -b sh-port", 27, "incompatible scheduler flag"),
        ("-A -t 10.0.0.1:80 -s mh -b sh-port", 27, "incompatible scheduler flag"),
        ("-A -t 10.0.0.1:80 -b flag-4", 21, "unknown scheduler flag"),
        ("-A -t 10.0.0.1:80 -6", 18, "-6 used before -f"),
        ("-A -t [2001:db8::1]:80 -p 5 -M 0", 31, "illegal ipv6 netmask"),
        ("-A -t [2001:db8::1]:80 -p 5 -M /64", 31, "illegal ipv6 netmask"),
        ("-A -t [2001:db8::1]:80 -p 5 -M ffff:ffff::", 31, "illegal ipv6 netmask"),
        ("-A -f 5 -6 -p 10 -M 255.255.255.0", 20, "illegal ipv6 netmask"),
        ("-A -t 10.0.0.1:80 -p 5 -M 24", 26, "dotted IPv4 netmask"),
        ("-A -t 10.0.0.1:80 -p 0", 21, "invalid timeout"),
        ("-A -t 10.0.0.1:80 -p 2678401", 21, "invalid timeout"),
        ("-A -t 10.0.0.1:80 -p 5 -p 6", 23, "multiple persistent"),
        ("-A -t 10.0.0.1:0", 6, "zero port"),
        ("-A -f 0", 6, "invalid fwmark"),
        ("-A -t 10.0.0.1:80 --pe nosuch", 23, "unknown persistence engine"),
        ("-A -t 10.0.0.1:80 -s fastest", 21, "unknown scheduler"),
        ("-A -t 10.0.0.1:92 -o -u 10.0.0.1:93", 21, "multiple service-address"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648", 33, "illegal weight"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w lots", 33, "illegal weight"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 4294967296", 33, "illegal threshold"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w 3 -w 4", 38, "multiple weight"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2:70000 -m", 21, "invalid port"),
        ("-a -f 8 -6 -r [2001:db8::2] -g", 14, "illegal real server address"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type nosuch", 44, "illegal tunnel type"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0", 59, "illegal tunnel port"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", 33, "--tun-port option for the gue"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type ipip --tun-port 55",
            60,
            "--tun-port option with the ipip",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-port 55",
            59,
            "--tun-port option with the gre",
        ),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-csum", 33, "--tun-csum option with the ipip"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type ipip --tun-nocsum",
            49,
            "--tun-nocsum option with the ipip",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
            48,
            "--tun-remcsum option with the gre",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum",
            72,
            "conflicts",
        ),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre", 33, "conflict with the forwarding method"),
        ("-a -t 10.0.0.1:80 -s rr -r 10.0.0.2", 18, "-s is not valid with -a"),
        ("-A -t 10.0.0.1:80 -w 3", 18, "-w is not valid with -A"),
        ("-A -t 10.0.0.1:80 -r 10.0.0.2", 21, "-r is not valid with -A"),
        ("-d -t 10.0.0.1:80 -r 10.0.0.2 -m", 30, "-m is not valid with -d"),
        ("-C -t 10.0.0.1:80", 6, "a service is not valid with -C"),
        ("-A -t 10.0.0.1:80 --ops=1", 24, "takes none"),
        ("-A -t 10.0.0.1:80 --bogus", 18, "unknown ipvsadm option"),
        ("-A -a -t 10.0.0.1:80", 3, "multiple commands"),
        ("-t 10.0.0.1:80", 0, "expected an ipvsadm command"),
        ("-A -t 10.0.0.1", 6, "VIP:port"),
        ("-a -t 10.0.0.1:80", 0, "expected -r"),
        ("--set 1 2", 9, "missing udp"),
        ("-A -t 10.0.0.1:80 -s", 20, "-s needs a scheduler name"),
    ];
    let mut wrong = Vec::new();
    for &(line, offset, needle) in cases {
        let e = p(line).expect_err(line);
        if !e.message.contains(needle) || e.offset != offset {
            wrong.push(format!("{line}: {} at {} (expected {needle:?} at {offset})", e.message, e.offset));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn key80() -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 }
}

#[test]
fn edit_service_sets_every_field_as_the_kernel_does() {
    // In the VM: `-A -t VIP:85 -s rr` then `-E -t VIP:85 -p 100` saves `-s wlc -p 100`.
    let mut ipvs = Ipvs::new(1);
    apply(&mut ipvs, &p("-A -t 10.0.0.1:80 -s rr -b flag-2").unwrap()).unwrap();
    apply(&mut ipvs, &p("-E -t 10.0.0.1:80 -p 100").unwrap()).unwrap();
    let c = *ipvs.service(&key80()).unwrap().config();
    assert_eq!(
        (c.scheduler, c.persistence, c.flags.0 & SvcFlags::SCHED2),
        (SchedulerKind::Wlc, Some(Duration::from_secs(100)), 0)
    );
}

#[test]
fn apply_refuses_what_the_table_does_not_model() {
    let mut ipvs = Ipvs::new(1);
    let e = apply(&mut ipvs, &p("-A -u 10.0.0.1:5060 -p 60 --pe sip").unwrap()).unwrap_err();
    assert_eq!(e, IpvsError::NotModelled("a persistence engine (--pe sip)"));
    assert!(e.to_string().contains("--pe sip"), "{e}");
    assert!(ipvs.services().next().is_none());
    assert!(matches!(apply(&mut ipvs, &Command::Zero(None)), Err(IpvsError::NotModelled(_))));
    // Tunnel options are kept as data.
    apply(&mut ipvs, &p("-A -t 10.0.0.1:80").unwrap()).unwrap();
    apply(&mut ipvs, &p("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 7 --tun-csum").unwrap())
        .unwrap();
    let (_, d) = ipvs.service(&key80()).unwrap().scheduler().dests().next().unwrap();
    assert_eq!(d.tunnel(), Tunnel { kind: TunnelType::Gue, port: 7, flags: Tunnel::CSUM });
}

#[test]
fn local_forwarding_is_written_as_ipvsadm_writes_it() {
    let d = DestConfig::new("127.0.0.1".parse().unwrap(), 80, Forwarding::Local);
    assert_eq!(Command::AddDest(key80(), d).to_string(), "-a -t 10.0.0.1:80 -r 127.0.0.1:80 -g -w 1");
}

fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<[u16; 8]>().prop_map(|s| IpAddr::from(std::net::Ipv6Addr::from(s))).boxed()
    } else {
        any::<[u8; 4]>().prop_map(IpAddr::from).boxed()
    }
}

fn service_key() -> impl Strategy<Value = ServiceKey> {
    let proto = prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)];
    prop_oneof![
        (proto, any::<bool>().prop_flat_map(addr), any::<u16>())
            .prop_map(|(protocol, addr, port)| ServiceKey::Addr { protocol, addr, port }),
        (1..=u32::MAX, any::<bool>()).prop_map(|(mark, ipv6)| ServiceKey::Fwmark { mark, ipv6 }),
    ]
}

/// A service configuration ipvsadm accepts and can save: one-packet only for UDP and
/// fwmark, a persistent zero-port service.
fn service() -> impl Strategy<Value = (ServiceKey, ServiceConfig)> {
    let sched = proptest::sample::select(SchedulerKind::ALL.to_vec());
    let pe = prop_oneof![Just(None), Just(Some(PersistenceEngine::Sip))];
    (
        service_key(),
        sched,
        0u32..8,
        any::<bool>(),
        proptest::option::of(1..=super::MAX_PERSISTENCE_SECS),
        any::<u32>(),
        pe,
    )
        .prop_map(|(key, scheduler, bits, ops, persist, mask, pe)| {
            let mut flags = bits * SvcFlags::SCHED1;
            let udp_or_mark = !matches!(key, ServiceKey::Addr { protocol, .. } if protocol != Protocol::Udp);
            if ops && udp_or_mark {
                flags |= SvcFlags::ONEPACKET;
            }
            let persistence = match key {
                ServiceKey::Addr { port: 0, .. } => Some(Duration::from_secs(persist.unwrap_or(1))),
                _ => persist.map(Duration::from_secs),
            };
            if persistence.is_some() {
                flags |= SvcFlags::PERSISTENT;
            }
            let netmask = match (persistence, key.is_ipv6()) {
                (None, _) => super::default_netmask(&key),
                (Some(_), true) => mask % 128 + 1,
                (Some(_), false) => mask,
            };
            (key, ServiceConfig { scheduler, flags: SvcFlags(flags), persistence, netmask, pe })
        })
}

fn dest(key: ServiceKey) -> impl Strategy<Value = DestConfig> {
    let fwd = prop_oneof![Just(Forwarding::Masq), Just(Forwarding::DirectRouting), Just(Forwarding::Tunnel)];
    let kind = prop_oneof![Just(TunnelType::Ipip), Just(TunnelType::Gue), Just(TunnelType::Gre)];
    (
        any::<bool>().prop_flat_map(addr),
        any::<u16>(),
        fwd,
        0..=i32::MAX as u32,
        any::<u32>(),
        any::<u32>(),
        kind,
        1..=u16::MAX,
        0u16..3,
    )
        .prop_map(move |(addr, port, fwd, weight, u, l, kind, tport, csum)| {
            let port = match key {
                ServiceKey::Addr { port: vport, .. } if fwd != Forwarding::Masq => vport,
                _ => port,
            };
            let tunnel = match (fwd, kind) {
                (Forwarding::Tunnel, TunnelType::Gue) => Tunnel { kind, port: tport, flags: csum },
                (Forwarding::Tunnel, TunnelType::Gre) => Tunnel { kind, port: 0, flags: csum & Tunnel::CSUM },
                _ => Tunnel::default(),
            };
            DestConfig { addr, port, fwd, weight, u_threshold: u, l_threshold: l, tunnel }
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        service().prop_map(|(k, c)| Command::AddService(k, c)),
        service().prop_map(|(k, c)| Command::EditService(k, c)),
        service_key().prop_map(Command::DelService),
        Just(Command::Clear),
        service_key().prop_flat_map(|k| dest(k).prop_map(move |d| Command::AddDest(k, d))),
        service_key().prop_flat_map(|k| dest(k).prop_map(move |d| Command::EditDest(k, d))),
        (service_key(), any::<bool>().prop_flat_map(addr), any::<u16>())
            .prop_map(|(k, a, p)| Command::DelDest(k, a, p)),
        any::<(u32, u32, u32)>().prop_map(|(a, b, c)| Command::SetTimeouts(a, b, c)),
        proptest::option::of(service_key()).prop_map(Command::Zero),
    ]
}

proptest! {
    #[test]
    fn emit_parse_round_trips(cmd in command()) {
        let line = cmd.to_string();
        let back = p(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e} at {}", e.offset)))?;
        prop_assert_eq!(back.to_string(), line);
        prop_assert_eq!(back, cmd);
    }

    #[test]
    fn any_line_never_panics_and_errors_point_into_it(line in "\\PC{0,80}") {
        if let Err(e) = parse_line(&line) {
            prop_assert!(line.is_char_boundary(e.offset), "{line:?}: offset {}", e.offset);
        }
    }

    /// An emitted line with one word dropped or duplicated: no panic, and an error's
    /// offset is a place in the line.
    #[test]
    fn damaged_lines_never_panic(cmd in command(), k in any::<usize>(), dup in any::<bool>()) {
        let line = cmd.to_string();
        let mut ws: Vec<&str> = line.split(' ').collect();
        let i = k % ws.len();
        if dup { ws.insert(i, ws[i]) } else { ws.remove(i); }
        let damaged = ws.join(" ");
        if let Err(e) = parse_line(&damaged) {
            prop_assert!(damaged.is_char_boundary(e.offset), "{damaged:?}: offset {}", e.offset);
        }
    }

    #[test]
    fn option_soup_never_panics(ws in proptest::collection::vec(prop_oneof![
        Just("-A"), Just("-a"), Just("-E"), Just("-d"), Just("-Z"), Just("--set"), Just("-t"), Just("-f"), Just("-6"),
        Just("-p"), Just("-M"), Just("-b"), Just("-r"), Just("-i"), Just("--tun-type"), Just("gue"), Just("--tun-port"),
        Just("1"), Just("0"), Just("10.0.0.1:80"), Just("[::1]:80"), Just("--weight="), Just("-w"), Just("-y9"),
        Just("sh-port,flag-3"), Just("64"), Just("255.0.0.0"), Just("--pe"), Just("sip"), Just("-o")], 0..14)) {
        let line = ws.join(" ");
        if let Err(e) = parse_line(&line) {
            prop_assert!(line.is_char_boundary(e.offset), "{line:?}: offset {}", e.offset);
        }
    }
}
