//! The HA exporters: keepalived.conf per director of a VRRP pair, ldirectord.cf,
//! heartbeat's ha.cf and haresources, and the health checks of both kinds, checked by
//! structure (balanced blocks, the lines expected inside each block, with the right
//! numbers) rather than byte for byte.

use topologies::Topology;
use topologies::export::{self, Target, files, ha_cf, haresources, keepalived, keepalived_for, ldirectord};

fn named(name: &str) -> Topology {
    topologies::named(name).unwrap_or_else(|| panic!("no topology {name}")).topology()
}

fn topo(text: &str) -> Topology {
    ron::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Every `{` is closed, in order, and nothing is closed that was not opened.
fn assert_balanced(text: &str) {
    let mut depth = 0i32;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('!').next().unwrap_or_default();
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        assert!(depth >= 0, "line {}: `}}` closes nothing\n{text}", n + 1);
    }
    assert_eq!(depth, 0, "unclosed blocks\n{text}");
}

/// The trimmed lines of every block whose opening line starts with `head` (nested blocks
/// included), one vector per block.
fn blocks(text: &str, head: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.trim_start().starts_with(head) || !l.trim_end().ends_with('{') {
            continue;
        }
        let mut depth = 0;
        let mut body = Vec::new();
        for l in &lines[i..] {
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            body.push(l.trim().to_owned());
            if depth == 0 {
                break;
            }
        }
        out.push(body);
    }
    out
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

fn assert_has(lines: &[String], wants: &[&str]) {
    for w in wants {
        assert!(has(lines, w), "missing {w:?} in\n{}", lines.join("\n"));
    }
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    &files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {names:?}")).1
}

#[test]
fn a_vrrp_pair_gets_one_keepalived_conf_per_director() {
    let t = named("ha-pair");
    let fs = files(&t, Target::default());
    let names: Vec<&str> = fs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ipvsadm-lb1.sh",
            "ipvsadm-lb1.rules",
            "ipvsadm-lb2.sh",
            "ipvsadm-lb2.rules",
            "keepalived-lb1.conf",
            "keepalived-lb2.conf",
            "feedbackd-agent/web1.conf",
            "feedbackd-agent/web2.conf",
            "feedbackd-agent/web3.conf"
        ]
    );
    for (lb, state, priority) in [("lb1", "MASTER", 150), ("lb2", "BACKUP", 100)] {
        let conf = file(&fs, &format!("keepalived-{lb}.conf"));
        assert_balanced(conf);
        assert_eq!(keepalived_for(&t, lb, Target::default()).as_deref(), Some(conf));
        let g = &blocks(conf, "global_defs")[0];
        assert_has(g, &[&format!("router_id {lb}"), "lvs_sync_daemon eth1 VI_1 id 0 maxlen 1472"]);
        let vi = blocks(conf, "vrrp_instance");
        assert_eq!(vi.len(), 1, "{conf}");
        assert_has(
            &vi[0],
            &[
                "vrrp_instance VI_1 {",
                &format!("state {state}"),
                "interface eth0",
                "virtual_router_id 51",
                &format!("priority {priority}"),
                "advert_int 1",
                "auth_type PASS",
                "auth_pass lvsim",
                "10.0.0.100/24 dev eth0",
            ],
        );
        assert!(!has(&vi[0], "nopreempt"));
        assert!(blocks(conf, "vrrp_sync_group").is_empty());
        let vs = blocks(conf, "virtual_server");
        assert_eq!(vs.len(), 1);
        assert_has(&vs[0], &["delay_loop 5", "lb_algo wlc", "lb_kind DR", "protocol TCP"]);
        assert!(!has(&vs[0], "inhibit_on_failure"), "keepalived removes a failed server");
        let gets = blocks(conf, "HTTP_GET");
        assert_eq!(gets.len(), 3, "one per real server");
        for g in &gets {
            assert_has(
                g,
                &[
                    "path /health.html",
                    "status_code 200",
                    "connect_timeout 2",
                    "retry 1",
                    "delay_before_retry 3", // HTTP_GET's own default
                    "connect_port 80",
                ],
            );
        }
        assert!(conf.contains("! also run: sysctl -w net.ipv4.vs.sync_threshold=\"3 50\""));
    }
    assert_eq!(
        keepalived(&t, Target::default()),
        file(&fs, "keepalived-lb1.conf"),
        "keepalived() is the primary's"
    );
    assert_eq!(ha_cf(&t, Target::default()), None);
    assert_eq!(haresources(&t, Target::default()), None);
    // Each web server's agent reports to both directors.
    let agent = file(&fs, "feedbackd-agent/web2.conf");
    assert!(agent.lines().find(|l| !l.starts_with('#')) == Some("director = 10.0.0.2"), "{agent}");
    assert!(agent.contains("\ndirector = 10.0.0.2\ndirector = 10.0.0.3\n"), "{agent}");
    // The sync daemons by hand: master on the primary, backup on the other.
    let (lb1, lb2) = (file(&fs, "ipvsadm-lb1.sh"), file(&fs, "ipvsadm-lb2.sh"));
    assert!(
        lb1.contains("ipvsadm --start-daemon master --mcast-interface eth1 --syncid 0 --sync-maxlen 1472\n")
    );
    assert!(
        lb2.contains("ipvsadm --start-daemon backup --mcast-interface eth1 --syncid 0 --sync-maxlen 1472\n")
    );
    assert!(!lb2.contains("--start-daemon master"));
    for script in [lb1, lb2] {
        assert_eq!(script.matches("ipvsadm -A -t 10.0.0.100:80 -s wlc").count(), 1, "both members' tables");
    }
}

/// A NAT pair over VRRP with every option: two interfaces, no preemption, version 3,
/// peer-to-peer sync, three members.
const VRRP_NAT: &str = r#"(
    description: "vrrp nat",
    directors: [
        (name: "a", address: "192.168.1.1", segment: "in", services: [
            (vip: Some("172.16.0.10"), port: 80, scheduler: rr,
             real_servers: [(server: "rs1"), (server: "rs2")]),
            (vip: Some("172.16.0.10"), port: 443, scheduler: rr, real_servers: [(server: "rs1")]),
        ]),
        (name: "b", address: "192.168.1.2", segment: "in"),
        (name: "c", address: "192.168.1.3", segment: "in"),
    ],
    servers: [
        (name: "rs1", address: "192.168.1.11", segment: "in", gateway: Some("a")),
        (name: "rs2", address: "192.168.1.12", segment: "in", gateway: Some("b")),
    ],
    ha: Some((
        directors: ["a", "b", "c"],
        failover: Vrrp(advert_int_s: 0.5, version: 3, preempt: false, interfaces: [External, Internal],
                       virtual_router_id: 7),
        sync: Some((mode: peer_to_peer, syncid: 3, interface: Some("eth2"))),
        external_interface: "ens3",
        internal_interface: "ens4",
        vip_prefix: 16,
    )),
)"#;

#[test]
fn vrrp_options_two_interfaces_and_nat() {
    let t = topo(VRRP_NAT);
    t.expand().unwrap();
    let fs = files(&t, Target::default());
    for (lb, priority) in [("a", 150), ("b", 100), ("c", 50)] {
        let conf = file(&fs, &format!("keepalived-{lb}.conf"));
        assert_balanced(conf);
        let g = &blocks(conf, "global_defs")[0];
        assert_has(g, &["vrrp_version 3"]);
        assert!(!g.iter().any(|l| l.starts_with("lvs_sync_daemon")), "peer to peer: ipvsadm starts both");
        assert_has(&blocks(conf, "vrrp_sync_group")[0], &["group {", "VI_1", "VI_2"]);
        let vi = blocks(conf, "vrrp_instance");
        assert_eq!(vi.len(), 2);
        let common = ["state BACKUP", "nopreempt", &format!("priority {priority}"), "advert_int 0.5"];
        assert_has(&vi[0], &common);
        assert_has(&vi[1], &common);
        assert_has(
            &vi[0],
            &[
                "interface ens3",
                "virtual_router_id 7",
                "track_interface {",
                "ens4",
                "172.16.0.10/16 dev ens3",
            ],
        );
        assert_has(&vi[1], &["interface ens4", "virtual_router_id 8", "ens3", "192.168.1.1/16 dev ens4"]);
        assert_eq!(conf.matches("172.16.0.10/16").count(), 1, "one address per VIP, not per service");
        assert!(!conf.contains("authentication"));
        assert!(conf.contains("peer to peer"), "{conf}");
        assert_eq!(blocks(conf, "virtual_server").len(), 2, "every member runs a's services");
    }
    for lb in ["a", "b", "c"] {
        let script = file(&fs, &format!("ipvsadm-{lb}.sh"));
        assert_eq!(script.matches("--start-daemon master --mcast-interface eth2 --syncid 3").count(), 1);
        assert_eq!(script.matches("--start-daemon backup --mcast-interface eth2 --syncid 3").count(), 1);
    }
    // A preemption delay also needs state BACKUP everywhere.
    let t = topo(&VRRP_NAT.replace("preempt: false", "preempt_delay_s: 30.0"));
    let conf = keepalived_for(&t, "a", Target::default()).unwrap();
    assert!(
        conf.contains("    preempt_delay 30\n") && !conf.contains("nopreempt") && !conf.contains("MASTER")
    );
}

#[test]
fn a_heartbeat_pair_gets_ha_cf_haresources_and_ldirectord_cf() {
    let t = named("ha-nat-pair");
    let fs = files(&t, Target::default());
    let names: Vec<&str> = fs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ipvsadm-lb1.sh",
            "ipvsadm-lb1.rules",
            "ipvsadm-lb2.sh",
            "ipvsadm-lb2.rules",
            "ldirectord.cf",
            "ha.cf",
            "haresources",
            "feedbackd-agent/rs1.conf",
            "feedbackd-agent/rs2.conf"
        ],
        "no keepalived file, and no agent on the sorry server"
    );
    let ha = file(&fs, "ha.cf");
    let lines: Vec<String> = ha.lines().map(str::to_owned).collect();
    assert_has(
        &lines,
        &[
            "keepalive 1",
            "deadtime 10",
            "warntime 5",
            "initdead 30",
            "baud 19200",
            "serial /dev/ttyS0",
            "bcast eth1",
            "auto_failback on",
            "node lb1",
            "node lb2",
            "ping 172.17.60.254",
            "deadping 30",
            "respawn hacluster /usr/libexec/heartbeat/ipfail",
        ],
    );
    assert!(!ha.lines().any(|l| l.starts_with("udpport")), "heartbeat 3.0.6 warns on any udpport line");
    let old = ha_cf(&t, Target::Debian11).unwrap();
    assert!(old.contains("\nrespawn hacluster /usr/lib/heartbeat/ipfail\n"), "{old}");
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
    assert!(at("baud 19200") < at("serial /dev/ttyS0"), "baud comes before serial");
    assert!(at("node lb1") < at("node lb2"));
    let res: Vec<&str> = file(&fs, "haresources").lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        res,
        ["lb1 IPaddr2::172.17.60.201/24/eth0 IPaddr2::192.168.6.1/24/eth1 ldirectord::ldirectord.cf"]
    );
    let ld = file(&fs, "ldirectord.cf");
    assert_eq!(
        ldirectord(&t, "lb2", Target::default()).unwrap().split_once("# Director").unwrap().0,
        ld.split_once("# Director").unwrap().0
    );
    let lines: Vec<&str> = ld.lines().collect();
    for want in [
        "checktimeout = 5",
        "negotiatetimeout = 5",
        "checkinterval = 10",
        "failurecount = 1",
        "quiescent = yes",
        "autoreload = no",
        "virtual = 172.17.60.201:80",
        "\treal = 192.168.6.4:80 masq 1",
        "\treal = 192.168.6.5:80 masq 1",
        "\tfallback = 192.168.6.9:80 masq",
        "\tscheduler = rr",
        "\tprotocol = tcp",
        "\tchecktype = connect",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{ld}");
    }
    assert!(!ld.contains("service = "), "a connect check names no service");
}

#[test]
fn heartbeat_options_and_active_active() {
    let text = topologies::named("ha-nat-pair")
        .unwrap()
        .source
        .replace("keepalive_s: 1.0,", "keepalive_s: 0.5, nice_failback: true,");
    let text =
        text.replace("media: [Dedicated, Lan(Internal)]", "media: [Dedicated, Dedicated, Lan(External)]");
    let text = text.replace("sync: Some(()),", "");
    let t = topo(&text);
    let ha = ha_cf(&t, Target::default()).unwrap();
    for want in [
        "keepalive 500ms\n",
        "auto_failback off\n",
        "serial /dev/ttyS0\n",
        "serial /dev/ttyS1\n",
        "bcast eth0\n",
    ] {
        assert!(ha.contains(want), "missing {want:?} in\n{ha}");
    }
    let res = haresources(&t, Target::default()).unwrap();
    assert!(!res.contains("LVSSyncDaemonSwap") && !res.contains("connection sync"), "no sync:\n{res}");

    let text = topologies::named("ha-nat-pair")
        .unwrap()
        .source
        .replace("failover: Heartbeat(", "failover: ActiveActive(blocks: 256, ");
    let t = topo(&text);
    t.expand().unwrap();
    let ha = ha_cf(&t, Target::default()).unwrap();
    assert!(ha.contains("256 blocks of client source ports") && ha.contains("node lb2\n"), "{ha}");
    let res = haresources(&t, Target::default()).expect("heartbeat will not start without haresources");
    assert!(res.lines().all(|l| l.starts_with('#')), "active-active: nothing moves\n{res}");
    let names: Vec<String> = files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
    for want in ["ldirectord.cf", "ha.cf", "haresources"] {
        assert!(names.contains(&want.to_owned()), "{names:?}");
    }
}

/// One director, checks of both kinds and both checkers.
const CHECKS: &str = r#"(
    directors: [(name: "lvs", address: "10.0.0.1", services: [
        (vip: Some("10.0.1.1"), port: 80, scheduler: wlc,
         real_servers: [(server: "web", forwarding: DR)],
         check: Some((kind: Connect, fallback: Some((server: "sorry", forwarding: DR))))),
        (vip: Some("10.0.1.1"), port: 443, scheduler: wlc, persistence_s: Some(300.0),
         real_servers: [(server: "web", forwarding: DR, weight: 2)],
         check: Some((checker: keepalived, interval_s: Some(2.5), retries: Some(2), quiescent: Some(false),
                      kind: Negotiate(request: "health", receive: Some("alive"),
                                      digest: Some("9B3A0C85A887A256D6939DA88AABD8CD"))))),
        (vip: Some("10.0.1.1"), port: 8080, scheduler: rr, real_servers: [(server: "web1", forwarding: DR)]),
    ])],
    servers: [
        (name: "web", address: "10.0.0.11", count: 2),
        (name: "sorry", address: "10.0.0.99"),
    ],
)"#;

#[test]
fn checks_of_both_kinds_in_keepalived_conf() {
    let t = topo(CHECKS);
    t.expand().unwrap();
    let conf = keepalived(&t, Target::default());
    assert_balanced(&conf);
    let vs = blocks(&conf, "virtual_server");
    assert_eq!(vs.len(), 3);
    // ldirectord's connect defaults, as keepalived says them.
    assert_has(&vs[0], &["delay_loop 10", "sorry_server 10.0.0.99 80", "inhibit_on_failure"]);
    assert!(!vs[0].iter().any(|l| l.starts_with("sorry_server_lvs_method")), "same method as lb_kind");
    let tcp = blocks(&vs[0].join("\n"), "TCP_CHECK");
    assert_eq!(tcp.len(), 2);
    for b in &tcp {
        assert_has(b, &["connect_timeout 5", "retry 0", "delay_before_retry 10", "connect_port 80"]);
    }
    // keepalived's defaults with what is written: SSL_GET on 443, the digest in lower case.
    assert_has(&vs[1], &["delay_loop 2.5", "persistence_timeout 300"]);
    assert!(!has(&vs[1], "inhibit_on_failure"));
    let ssl = blocks(&vs[1].join("\n"), "SSL_GET");
    assert_eq!(ssl.len(), 2);
    for b in &ssl {
        assert_has(
            b,
            &[
                "path /health",
                "digest 9b3a0c85a887a256d6939da88aabd8cd",
                "regex \"alive\"",
                "connect_timeout 5",
                "retry 2",
                "delay_before_retry 3", // HTTP_GET's own default
                "connect_port 443",
            ],
        );
        assert!(!has(b, "status_code 200"));
    }
    // No check: no checker (keepalived keeps the server, as the simulation does), no
    // delay_loop.
    assert!(!vs[2].iter().any(|l| l.starts_with("delay_loop") || l.ends_with("_CHECK {")), "{vs:?}");
    // No fail-over group: one file, with an ldirectord.cf beside it for the ldirectord check.
    let names: Vec<String> = files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(&names[..4], ["ipvsadm.sh", "ipvsadm.rules", "keepalived.conf", "ldirectord.cf"]);
}

#[test]
fn checks_of_both_kinds_in_ldirectord_cf() {
    let t = topo(CHECKS);
    let ld = ldirectord(&t, "lvs", Target::default()).unwrap();
    assert_eq!(ldirectord(&t, "nope", Target::default()), None);
    let sections: Vec<&str> = ld.split("\nvirtual = ").collect();
    assert_eq!(sections.len(), 4, "{ld}");
    let global: Vec<&str> = sections[0].lines().collect();
    for want in
        ["checktimeout = 5", "checkinterval = 10", "failurecount = 1", "quiescent = yes", "autoreload = no"]
    {
        assert!(global.contains(&want), "missing {want:?} in\n{ld}");
    }
    let http: Vec<&str> = sections[1].lines().collect();
    assert_eq!(http[0], "10.0.1.1:80");
    for want in [
        "\treal = 10.0.0.11:80 gate 1",
        "\treal = 10.0.0.12:80 gate 1",
        "\tfallback = 10.0.0.99:80 gate",
        "\tchecktype = connect",
        "\tscheduler = wlc",
    ] {
        assert!(http.contains(&want), "missing {want:?} in\n{}", sections[1]);
    }
    assert!(!sections[1].contains("checkinterval"), "the global settings are this check's");
    assert!(global.contains(&"fork = yes"), "443 checks at its own interval: needs fork\n{ld}");
    let https: Vec<&str> = sections[2].lines().collect();
    for want in [
        "\treal = 10.0.0.11:443 gate 2",
        "\tservice = https",
        "\trequest = \"health\"",
        "\treceive = \"alive\"",
        "\tchecktype = negotiate",
        "\tcheckinterval = 3",
        "\tfailurecount = 3",
        "\tquiescent = no",
        "\tpersistent = 300",
    ] {
        assert!(https.contains(&want), "missing {want:?} in\n{}", sections[2]);
    }
    assert!(sections[2].contains("rounded up to 3"), "{}", sections[2]);
    assert!(sections[2].contains("# digest 9B3A"), "{}", sections[2]);
    // keepalived's HTTP_GET/SSL_GET default (3 s).
    assert!(sections[2].contains("delay_before_retry 3 s"), "{}", sections[2]);
    assert!(sections[3].contains("\tchecktype = on\n"), "no check: taken as up\n{}", sections[3]);
}

#[test]
fn every_named_topology_exports_well_formed_files() {
    for n in topologies::NAMED {
        let t = n.topology();
        let fs = files(&t, Target::default());
        assert!(fs.iter().any(|(p, _)| p.starts_with("ipvsadm") && p.ends_with(".sh")), "{}", n.name);
        for (path, text) in &fs {
            assert!(!text.is_empty(), "{} {path}", n.name);
            if path.starts_with("keepalived") {
                assert_balanced(text);
                assert!(!blocks(text, "virtual_server").is_empty(), "{} {path}", n.name);
            }
            if path.starts_with("ldirectord") {
                assert!(text.contains("\nvirtual = "), "{} {path}", n.name);
                for l in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
                    assert!(l.contains(" = "), "{} {path}: {l:?}", n.name);
                }
            }
        }
        assert_balanced(&export::keepalived(&t, Target::default()));
    }
}

#[test]
fn directors_outside_the_group_without_services_get_no_ldirectord_file() {
    let t = topo(
        r#"(
        directors: [
            (name: "lb1", address: "10.0.0.2", services: [
                (vip: Some("192.0.2.10"), port: 80, real_servers: [(server: "web", forwarding: DR)])]),
            (name: "lb2", address: "10.0.0.3"),
            (name: "lb3", address: "10.0.0.4"),
            (name: "lb4", address: "10.0.0.5"),
        ],
        servers: [(name: "web", address: "10.0.0.11", count: 2)],
        ha: Some((directors: ["lb1", "lb2"], failover: ActiveActive(blocks: 512))),
    )"#,
    );
    let names: Vec<String> = files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
    let ld: Vec<&String> = names.iter().filter(|n| n.starts_with("ldirectord")).collect();
    assert_eq!(ld, ["ldirectord.cf"], "{names:?}");
    let res = haresources(&t, Target::default()).unwrap();
    assert!(res.contains("no resource moves") && res.lines().all(|l| l.starts_with('#')), "{res}");
    let ld = ldirectord(&t, "lb1", Target::default()).unwrap();
    assert!(ld.contains("# The same file on every member of the active-active group (lb1, lb2)"), "{ld}");
}

#[test]
fn keepalived_starts_a_vrrp_groups_sync_daemons_and_the_script_starts_the_others() {
    let script = |name: &str, director: &str| {
        let fs = files(&named(name), Target::default());
        file(&fs, &format!("ipvsadm-{director}.sh")).to_owned()
    };
    // VRRP: keepalived's lvs_sync_daemon runs them; the script only says what it runs.
    let vrrp = script("ha-pair", "lb1");
    assert!(vrrp.contains("\n# ipvsadm --start-daemon master "), "{vrrp}");
    assert!(!vrrp.contains("\nipvsadm --start-daemon") && !vrrp.contains("--stop-daemon"), "{vrrp}");
    // heartbeat: nothing swaps them; the script starts them with fixed roles.
    let hb = script("ha-nat-pair", "lb2");
    assert!(
        hb.contains("\nipvsadm --stop-daemon backup 2>/dev/null || true\nipvsadm --start-daemon backup "),
        "{hb}"
    );
}
