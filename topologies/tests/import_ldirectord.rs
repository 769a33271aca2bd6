//! `lvsim import` of ldirectord.cf, ha.cf and haresources as operators write them (not
//! lvsim's own files: tests/round_trip.rs does those), and of hostile or careless ones:
//! each mistake is an error at its file, line and column; what the topology cannot hold
//! is a note naming its line.

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind};
use topologies::import::{Format, ImportError, Imported, Source, import};
use topologies::{CheckKind, Failover, Medium, Side};

fn src(path: &str, text: &str) -> Source {
    Source { path: path.into(), text: text.into() }
}

fn ld(text: &str) -> Result<Imported, ImportError> {
    import(&[src("ldirectord.cf", text)], None)
}

fn err(text: &str) -> ImportError {
    ld(text).expect_err("an error")
}

fn noted(i: &Imported, line: usize, part: &str) -> bool {
    i.notes.iter().any(|n| n.line == line && n.message.contains(part))
}

/// Debian's example (/usr/share/doc/ldirectord/examples/ldirectord.cf), uncommented.
const DEBIAN_EXAMPLE: &str = "# Global Directives
checktimeout=3
checkinterval=1
#fallback=127.0.0.1:80
autoreload=yes
#logfile=\"/var/log/ldirectord.log\"
quiescent=no

# Sample for an http virtual service
virtual=192.168.6.240:80
\tservicename=Web Site
\tcomment=Test load balanced web site
\treal=192.168.6.2:80 gate
\treal=192.168.6.3:80 gate
\treal=192.168.6.6:80 gate
\tfallback=127.0.0.1:80 gate
\tservice=http
\tscheduler=rr
\t#persistent=600
\t#netmask=255.255.255.255
\tprotocol=tcp
\tchecktype=negotiate
\tcheckport=80
\trequest=\"index.html\"
\treceive=\"Test Page\"
\tvirtualhost=www.x.y.z

virtual6=[2001:db8::10]:443
    real6=[2001:db8::2]:8443 masq 5 l:10 u:20
    real6=[2001:db8::3] gate
    scheduler=wlc
    persistent=300
    netmask=64
    failurecount=3
    checktype=connect

virtual=10.0.0.53:53
\treal=10.0.0.11->10.0.0.13:53 gate 2
\tops=yes
\tchecktype=on
\temailalert=\"root@localhost\"
";

#[test]
fn debians_example_file_imports_with_ldirectords_defaults() {
    let i = ld(DEBIAN_EXAMPLE).unwrap();
    let t = &i.topology;
    assert_eq!(t.directors.len(), 1);
    let d = &t.directors[0];
    assert_eq!(d.name, "lvs");
    assert!(noted(&i, 0, "documentation address"), "{:?}", i.notes);
    let [web, v6, dns] = &d.services[..] else { panic!("{:?}", d.services) };
    assert_eq!(
        (web.vip.unwrap().to_string(), web.port, web.scheduler),
        ("192.168.6.240".into(), 80, SchedulerKind::Rr)
    );
    assert_eq!(web.real_servers.len(), 3);
    assert!(web.real_servers.iter().all(|r| r.forwarding == Forwarding::DirectRouting && r.weight == 1));
    let c = web.check.as_ref().unwrap();
    assert_eq!(
        c.kind,
        CheckKind::Negotiate {
            request: "index.html".into(),
            receive: Some("Test Page".into()),
            digest: None,
            demand_ms: 1.0
        }
    );
    // negotiatetimeout falls back to checktimeout; quiescent no; failurecount 1.
    assert_eq!(
        (c.interval_s, c.timeout_s, c.retries, c.quiescent),
        (Some(1.0), Some(3.0), Some(0), Some(false))
    );
    let fb = c.fallback.as_ref().unwrap();
    assert_eq!(fb.forwarding, Forwarding::DirectRouting);
    assert!(t.servers.iter().any(|s| s.name == fb.server && s.address.to_string() == "127.0.0.1"));
    for (line, what) in [(11, "servicename"), (12, "comment"), (23, "checkport"), (26, "virtualhost")] {
        assert!(noted(&i, line, what), "no note for {what} at {line}: {:?}", i.notes);
    }
    // IPv6, masq with its own port and thresholds, a real server without a port.
    assert_eq!(v6.vip.unwrap().to_string(), "2001:db8::10");
    assert_eq!(v6.persistence_s, Some(300.0));
    assert_eq!(v6.netmask.unwrap().to_string(), "ffff:ffff:ffff:ffff::");
    let r = &v6.real_servers[0];
    assert_eq!((r.port, r.forwarding, r.weight, r.lower, r.upper), (Some(8443), Forwarding::Masq, 5, 10, 20));
    assert_eq!(v6.real_servers[1].port, None, "the service's port");
    assert_eq!(v6.check.as_ref().unwrap().retries, Some(2));
    assert_eq!(v6.check.as_ref().unwrap().kind, CheckKind::Connect);
    // Port 53 is UDP by default; a range is three servers; checktype on: no check.
    assert_eq!(dns.protocol, Protocol::Udp);
    assert_eq!(dns.real_servers.len(), 3);
    assert_eq!(dns.flags, [topologies::Flag::OnePacket]);
    assert!(dns.check.is_none());
    let line = DEBIAN_EXAMPLE.lines().position(|l| l.contains("emailalert")).unwrap() + 1;
    assert!(noted(&i, line, "emailalert"), "{:?}", i.notes);
    t.expand().expect("a valid topology");
}

#[test]
fn mistakes_are_errors_at_their_line_and_column() {
    let cases: [(&str, usize, usize, &str); 14] = [
        ("checktimeout = 99999999999999999999999\n", 1, 16, "whole number"),
        ("checktimeout = 40000000000\n", 1, 16, "too large"),
        ("hello world\n", 1, 1, "KEY = VALUE"),
        ("frobnicate = 3\n", 1, 1, "unknown directive"),
        ("virtual = 10.0.0.1:80\n\treal = 10.0.0.2:80 gate\n\tchecktype = sometimes\n", 3, 1, "checktype"),
        ("  real = 10.0.0.2:80 gate\n", 1, 1, "indented line outside"),
        ("virtual = [2001:db8::1]:80\n", 1, 11, "IPv4 address here"),
        ("virtual = 10.0.0.1:99999\n", 1, 20, "too large"),
        ("virtual = web.example.com:80\n", 1, 11, "not an IPv4 address"),
        ("virtual = 10.0.0.1:80\n\treal = 10.0.0.2:80 gate 70000\n", 2, 26, "weight"),
        ("virtual = 10.0.0.1:80\n\treal = 10.0.0.2:80 nat\n", 2, 21, "gate, masq or ipip"),
        ("virtual = 10.0.0.1:80\n\treal = 10.0.0.1->10.0.9.1:80 gate\n", 2, 9, "at most 256"),
        ("virtual = 10.0.0.1:80\n\treal6 = [2001:db8::2]:80 gate\n", 2, 1, "real6"),
        ("virtual = 10.0.0.1:80\n\tprotocol = sctp\n", 2, 13, "tcp or udp"),
    ];
    for (text, line, column, part) in cases {
        let e = err(text);
        assert_eq!((e.path.as_str(), e.line, e.column), ("ldirectord.cf", line, column), "{text:?}: {e}");
        assert!(e.message.contains(part), "{text:?}: {e}");
    }
}

#[test]
fn what_cannot_be_mapped_is_noted_and_no_other_file_is_read() {
    let text = "execute = /etc/shadow\nlogfile = \"/root/x\"\ncheckcount = 3\n\nvirtual = 10.0.0.1:80\n\tchecktype = connect\n";
    let i = ld(text).unwrap();
    assert!(noted(&i, 1, "/etc/shadow") && noted(&i, 1, "not read"), "{:?}", i.notes);
    assert!(noted(&i, 2, "logfile"));
    assert!(noted(&i, 3, "checkcount"));
    assert!(noted(&i, 5, "without real servers"));
    assert!(i.topology.directors[0].services[0].real_servers.is_empty());
    // A comment after a statement, as ldirectord allows.
    let i = ld("checktimeout = 3 # seconds\nvirtual = 10.0.0.1:80 # web\n\tchecktype = connect # cheap\n")
        .unwrap();
    assert_eq!(i.topology.directors[0].services[0].check.as_ref().unwrap().timeout_s, Some(3.0));
}

const HA_CF: &str = "use_logd yes
keepalive 500ms
deadtime 5
warntime 2
initdead 30
udpport 694
ucast eth1 10.0.0.3
serial /dev/ttyS0
auto_failback off
node lb1 lb2
ping 10.0.0.254
respawn hacluster /usr/lib/heartbeat/ipfail
";

const HARESOURCES: &str = "# the VIP and ldirectord
lb1 \\
  IPaddr2::192.0.2.10/25/ens3 ldirectord::ldirectord.cf MailTo::root
";

const LB1: &str = "# Director lb1 (10.0.0.2)
virtual = 192.0.2.10:80
\treal = 10.0.0.11:80 gate
\tchecktype = connect
";

#[test]
fn an_operators_heartbeat_pair_imports_as_a_group() {
    let files = [src("ldirectord.cf", LB1), src("ha.cf", HA_CF), src("haresources", HARESOURCES)];
    let i = import(&files, None).unwrap();
    let t = &i.topology;
    assert_eq!(t.directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["lb1", "lb2"]);
    let ha = t.ha.as_ref().unwrap();
    assert_eq!(ha.directors, ["lb1", "lb2"]);
    assert_eq!(
        (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
        ("ens3", "eth1", 25)
    );
    let Failover::Heartbeat { keepalive_s, deadtime_s, warntime_s, nice_failback, media, ping_nodes, .. } =
        &ha.failover
    else {
        panic!("{:?}", ha.failover)
    };
    assert_eq!((*keepalive_s, *deadtime_s, *warntime_s, *nice_failback), (0.5, 5.0, 2.0, true));
    assert_eq!(media, &[Medium::Lan(Side::Internal), Medium::Dedicated]);
    assert_eq!(ping_nodes.len(), 1);
    assert!(noted(&i, 1, "use_logd"), "{:?}", i.notes);
    assert!(i.notes.iter().any(|n| n.path == "ha.cf" && n.line == 7 && n.message.contains("ucast")));
    assert!(i.notes.iter().any(|n| n.path == "haresources" && n.message.contains("MailTo")));
    assert!(i.notes.iter().any(|n| n.message.contains("director lb2")), "lb2's address is unknown");
    ha.config(&t.expand().unwrap().directors).expect("heartbeat's settings are valid");
    assert_eq!(Format::detect("x", HA_CF), Some(Format::HaCf), "use_logd first: told by it too");
}

#[test]
fn heartbeat_mistakes_are_errors() {
    let go = |cf: &str, res: &str| {
        let files = [src("ldirectord.cf", LB1), src("ha.cf", cf), src("haresources", res)];
        import(&files, None).expect_err("an error")
    };
    let e = go(HA_CF, "lbX IPaddr2::192.0.2.10/24/eth0\n");
    assert_eq!((e.path.as_str(), e.line, e.column), ("haresources", 1, 1), "{e}");
    assert!(e.message.contains("bad node name"), "{e}");
    let e = go(&HA_CF.replace("deadtime 5", "deadtime soon"), HARESOURCES);
    assert_eq!((e.path.as_str(), e.line, e.column), ("ha.cf", 3, 10), "{e}");
    let e = go(&HA_CF.replace("deadtime 5", "deadtime 1e300"), HARESOURCES);
    assert!(e.message.contains("at most a day"), "{e}");
    let e = go(&HA_CF.replace("udpport 694", "failover_time 3"), HARESOURCES);
    assert_eq!((e.line, e.column), (6, 1), "{e}");
    let e = go(HA_CF, "lb1 IPaddr2::192.0.2.300/24/eth0\n");
    assert_eq!((e.line, e.column), (1, 5), "{e}");
    let e = go(&HA_CF.replace("ucast eth1 10.0.0.3\nserial /dev/ttyS0\n", ""), HARESOURCES);
    assert!(e.message.contains("no heartbeat medium"), "{e}");
    let e = import(&[src("ldirectord.cf", LB1), src("haresources", HARESOURCES)], None).unwrap_err();
    assert!(e.message.contains("without its ha.cf"), "{e}");
}

/// Every exported ldirectord/heartbeat file of the built-in topologies and the matrix,
/// cut short at every line and with hostile bytes put in at many places: the import
/// answers (a topology or an error), never panics.
#[test]
fn damaged_files_never_make_the_import_panic() {
    use topologies::export::{Target, files};
    let mut sets = Vec::new();
    for t in topologies::NAMED
        .iter()
        .map(|n| n.topology())
        .chain(topologies::matrix::topologies().into_iter().map(|(_, t)| t))
    {
        let fs: Vec<(String, String)> = files(&t, Target::default())
            .into_iter()
            .filter(|(n, _)| n.starts_with("ldirectord") || n == "ha.cf" || n == "haresources")
            .collect();
        if !fs.is_empty() {
            sets.push(fs);
        }
    }
    assert!(sets.len() >= 10, "{} sets", sets.len());
    let junk = [
        "",
        "\0",
        "=",
        "[",
        "]",
        "#",
        "\"",
        "::",
        "->",
        "99999999999999999999999",
        "\u{202e}é",
        " = ",
        "\t",
        "\n é ",
        "\n\t",
        "\nvirtual6 = 7\n",
    ];
    let mut runs = 0;
    for fs in &sets {
        for (k, (_, text)) in fs.iter().enumerate() {
            let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(3).collect();
            for (j, &at) in cuts.iter().enumerate() {
                let damaged = format!("{}{}{}", &text[..at], junk[j % junk.len()], &text[at..]);
                for version in [damaged, text[..at].to_owned()] {
                    let sources: Vec<Source> = fs
                        .iter()
                        .enumerate()
                        .map(|(m, (n, t))| src(n, if m == k { &version } else { t }))
                        .collect();
                    let _ = import(&sources, None);
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 1000, "{runs} imports");
}
