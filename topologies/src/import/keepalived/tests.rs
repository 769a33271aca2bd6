//! The keepalived import: files an operator writes (not lvsim's), hostile files.

use std::net::IpAddr;

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind};

use super::super::{Format, ImportError, Imported, Source, import as import_all};
use crate::{CheckKind, Checker, Failover, Flag, Side, SyncMode};

fn import(files: &[(&str, &str)]) -> Result<Imported, ImportError> {
    let sources: Vec<Source> =
        files.iter().map(|(p, t)| Source { path: (*p).to_owned(), text: (*t).to_owned() }).collect();
    import_all(&sources, Some(Format::Keepalived))
}

fn ok(files: &[(&str, &str)]) -> Imported {
    let i = import(files).unwrap_or_else(|e| panic!("{e}"));
    i.topology.expand().unwrap_or_else(|e| panic!("the imported topology expands: {e}\n{:#?}", i.topology));
    i
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What an operator writes: keepalived's sample style, with things lvsim does not model.
const OPERATOR: &str = r#"! Configuration File for keepalived
# web cluster

global_defs {
   notification_email {
     admin@example.com
   }
   router_id LVS_DEVEL
   lvs_timeouts tcp 7200 tcpfin 60 udp 30
}

include /etc/keepalived/conf.d/*.conf

virtual_server 192.168.200.100 443 {
    delay_loop 6
    lb_algo sh
    lb_kind NAT
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    sh-port
    protocol TCP
    sorry_server 192.168.200.200 1358

    real_server 192.168.201.100 443 {
        weight 3
        uthreshold 100
        lthreshold 10
        inhibit_on_failure
        SSL_GET {
            url {
              path /health
              digest ff20ad2481f97b1754ef3e12ecd3a9cc
              regex "alive|ok"
            }
            url {
              path /mrtg/
            }
            connect_timeout 3
            retry 3
            delay_before_retry 2
        }
    }
    real_server 192.168.201.101 443 {
        weight 1
        lvs_method DR
        inhibit_on_failure
        SSL_GET {
            url {
              path /health
              digest ff20ad2481f97b1754ef3e12ecd3a9cc
              regex "alive|ok"
            }
            connect_timeout 3
            retry 3
            delay_before_retry 2
        }
    }
}

virtual_server fwmark 5 {
    lb_algo rr
    lb_kind DR
    real_server 10.1.1.1 53 {
        UDP_CHECK {
            connect_timeout 2
            require_reply
        }
    }
}

virtual_server 10.10.10.2 1358 {
    delay_loop 10
    lb_algo rr
    lb_kind TUN
    protocol UDP
    ops
    real_server 10.1.1.2 1358 {
        weight 2
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh"
        }
    }
}

virtual_server group web {
    lb_algo rr
}
"#;

#[test]
fn an_operators_file_becomes_a_topology_with_notes_for_the_rest() {
    let i = ok(&[("/etc/keepalived/keepalived.conf", OPERATOR)]);
    let t = &i.topology;
    assert_eq!(t.description, "Configuration File for keepalived\nweb cluster");
    assert_eq!(t.directors.len(), 1);
    let d = &t.directors[0];
    assert_eq!(d.name, "LVS_DEVEL");
    assert_eq!(d.address, ip("198.51.100.1"), "a documentation address");
    assert_eq!(
        (d.timeouts.tcp_s, d.timeouts.tcpfin_s, d.timeouts.udp_s),
        (Some(7200.0), Some(60.0), Some(30.0))
    );
    assert_eq!(d.services.len(), 3, "the group is left out");

    let s = &d.services[0];
    assert_eq!(
        (s.vip, s.port, s.protocol, s.scheduler),
        (Some(ip("192.168.200.100")), 443, Protocol::Tcp, SchedulerKind::Sh)
    );
    assert_eq!(
        (s.persistence_s, s.netmask, &s.flags),
        (Some(50.0), Some(ip("255.255.255.0")), &vec![Flag::ShPort])
    );
    let rs: Vec<_> = s
        .real_servers
        .iter()
        .map(|r| (r.server.as_str(), r.port, r.forwarding, r.weight, r.upper, r.lower))
        .collect();
    assert_eq!(
        rs,
        [("rs2", None, Forwarding::Masq, 3, 100, 10), ("rs3", None, Forwarding::DirectRouting, 1, 0, 0)],
        "rs1 is the sorry server, named first"
    );
    let c = s.check.as_ref().expect("checked");
    assert_eq!(c.checker, Checker::Keepalived);
    assert_eq!(
        (c.interval_s, c.timeout_s, c.retries, c.delay_before_retry_s, c.quiescent),
        (Some(6.0), Some(3.0), Some(3), Some(2.0), Some(true))
    );
    let CheckKind::Negotiate { request, receive, digest, .. } = &c.kind else { panic!("{:?}", c.kind) };
    assert_eq!(
        (request.as_str(), receive.as_deref(), digest.as_deref()),
        ("/health", Some("alive|ok"), Some("ff20ad2481f97b1754ef3e12ecd3a9cc"))
    );
    let fb = c.fallback.as_ref().unwrap();
    assert_eq!((fb.server.as_str(), fb.port, fb.forwarding), ("rs1", Some(1358), Forwarding::Masq));
    let addr = |n: &str| t.servers.iter().find(|s| s.name == n).unwrap();
    assert_eq!(
        (addr("rs1").address, addr("rs2").gateway.as_deref()),
        (ip("192.168.200.200"), Some("LVS_DEVEL"))
    );

    let f = &d.services[1];
    assert_eq!((f.fwmark, f.protocol), (Some(5), Protocol::Udp), "a UDP_CHECK makes a mark's service UDP");
    assert_eq!((f.real_servers[0].port, f.real_servers[0].weight), (Some(53), 1));
    assert_eq!(
        f.check.as_ref().map(|c| (&c.kind, c.timeout_s, c.interval_s)),
        Some((&CheckKind::Connect, Some(2.0), None))
    );

    let u = &d.services[2];
    assert_eq!(
        (u.protocol, &u.flags, u.real_servers[0].forwarding),
        (Protocol::Udp, &vec![Flag::OnePacket], Forwarding::Tunnel)
    );
    assert!(u.check.is_none(), "MISC_CHECK is not simulated");

    let notes: Vec<(usize, &str)> = i.notes.iter().map(|n| (n.line, n.message.as_str())).collect();
    let has = |line: usize, words: &str| {
        assert!(
            notes.iter().any(|(l, m)| *l == line && m.contains(words)),
            "no note at {line} with {words:?} in {notes:#?}"
        )
    };
    has(5, "notification_email");
    has(12, "include /etc/keepalived/conf.d/*.conf");
    has(0, "documentation address");
    has(29, "several url blocks");
    has(79, "MISC_CHECK");
    has(85, "virtual_server_group");
    assert!(i.notes.iter().all(|n| n.path == "/etc/keepalived/keepalived.conf"));
}

fn member(name: &str, state: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n  router_id {name}\n  lvs_sync_daemon ens4 VI_1 id 7 maxlen 1200\n}}\n\
         vrrp_sync_group VG {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n\
         vrrp_instance VI_1 {{\n  state {state}\n  interface ens3\n  virtual_router_id 60\n  priority {priority}\n  advert_int 2\n\
           authentication {{\n    auth_type PASS\n    auth_pass pw\n  }}\n  virtual_ipaddress {{\n    10.0.0.100/16 dev ens3\n  }}\n}}\n\
         vrrp_instance VI_2 {{\n  state {state}\n  interface ens4\n  virtual_router_id 61\n  priority {priority}\n  advert_int 2\n\
           virtual_ipaddress {{\n    192.168.0.1/16 dev ens4\n  }}\n}}\n\
         virtual_server 10.0.0.100 80 {{\n  lb_algo wlc\n  lb_kind NAT\n  protocol TCP\n  real_server 192.168.0.11 80 {{\n    weight 1\n  }}\n}}\n"
    )
}

#[test]
fn a_vrrp_pair_from_two_files_is_a_group_with_the_master_first() {
    let b = member("lb-b", "BACKUP", 90);
    let a = member("lb-a", "MASTER", 200);
    let i = ok(&[("b/keepalived.conf", &b), ("a/keepalived.conf", &a)]);
    let t = &i.topology;
    let ha = t.ha.as_ref().expect("a group");
    assert_eq!(ha.directors, ["lb-a", "lb-b"], "the MASTER is the primary");
    assert_eq!(
        (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
        ("ens3", "ens4", 16)
    );
    let Failover::Vrrp {
        advert_int_s, priorities, preempt, interfaces, virtual_router_id, auth_pass, ..
    } = &ha.failover
    else {
        panic!("{:?}", ha.failover)
    };
    assert_eq!(
        (
            *advert_int_s,
            priorities.as_deref(),
            *preempt,
            interfaces.as_slice(),
            *virtual_router_id,
            auth_pass.as_deref()
        ),
        (2.0, Some(&[200u8, 90][..]), true, &[Side::External, Side::Internal][..], 60, Some("pw"))
    );
    let sync = ha.sync.as_ref().expect("lvs_sync_daemon");
    assert_eq!(
        (sync.mode, sync.syncid, sync.max_len, sync.interface.as_deref()),
        (SyncMode::MasterBackup, 7, 1200, None)
    );
    assert_eq!(t.servers[0].gateway.as_deref(), Some("lb-a"), "NAT through the primary");
    assert!(
        i.notes.iter().any(|n| n.message.contains("documentation address") && n.path == "b/keepalived.conf")
    );
    // One member alone: no group, and a note saying why.
    let i = ok(&[("a/keepalived.conf", &a)]);
    assert!(i.topology.ha.is_none());
    assert!(i.notes.iter().any(|n| n.message.contains("one member of a VRRP group")), "{:?}", i.notes);
}

#[test]
fn malformed_values_are_errors_at_their_line_and_column() {
    let base = "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    real_server 10.0.0.2 80 {\n        weight 1\n    }\n}\n";
    let cases = [
        (base.replace("weight 1", "weight 1099511627776"), 4, 16, "weight"),
        (base.replace("10.0.0.2 80", "10.0.0.2 70000"), 3, 26, "port"),
        (base.replace("10.0.0.1 80", "10.0.0.1 -1"), 1, 25, "port"),
        (base.replace("lb_algo rr", "lb_algo fastest"), 2, 13, "unknown scheduler"),
        (base.replace("10.0.0.2", "10.0.0.300"), 3, 17, "not an IP address"),
        (base.replace("    lb_algo rr\n", "    lb_kind NAT DR\n    lb_kind LVS\n"), 3, 13, "NAT, DR or TUN"),
        (base.replace("    }\n}\n", "    }\n"), 1, 28, "never closed"),
        (base.replace("    lb_algo rr\n", "    }\n"), 6, 1, "closes no block"),
        (base.replace("    lb_algo rr\n", "    delay_loop 1e300\n"), 2, 16, "seconds"),
        (base.replace("    lb_algo rr\n", "    delay_loop NaN\n"), 2, 16, "seconds"),
        (base.replace("    lb_algo rr\n", "    persistence_timeout 99999999999\n"), 2, 25, "persistence"),
        ("vrrp_instance VI_1 {\n  priority 300\n}\n".to_owned(), 2, 12, "priority"),
        (
            "vrrp_instance VI_1 {\n  authentication {\n    auth_pass toolongpassword\n  }\n}\n".to_owned(),
            3,
            15,
            "8 characters",
        ),
        ("virtual_server 10.0.0.1\n".to_owned(), 1, 1, "needs a port"),
        ("global_defs {\n  lvs_timeouts tcp\n}\n".to_owned(), 2, 16, "needs a number"),
    ];
    for (text, line, col, words) in cases {
        let e = import(&[("k.conf", &text)]).expect_err(&text);
        assert_eq!((e.path.as_str(), e.line, e.column), ("k.conf", line, col), "{e}\n{text}");
        assert!(e.message.contains(words), "{e}: not {words:?}");
    }
}

#[test]
fn hostile_files_are_refused_quickly_and_without_overflowing_the_stack() {
    let deep = "virtual_server 10.0.0.1 80 {\n".repeat(100_000);
    let e = import(&[("deep.conf", &deep)]).unwrap_err();
    assert!(e.message.contains("nested deeper"), "{e}");
    let close = "}\n".repeat(100_000);
    assert!(import(&[("close.conf", &close)]).unwrap_err().message.contains("closes no block"));
    let huge = "! comment\n".repeat(2_000_000);
    assert!(import(&[("huge.conf", &huge)]).unwrap_err().message.contains("larger than any"));
    // Many services are fine: linear, bounded by the size cap.
    let many: String = (0..20_000u32)
        .map(|k| {
            format!(
                "virtual_server 10.{}.{}.1 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n}}\n",
                k / 256,
                k % 256
            )
        })
        .collect();
    assert_eq!(import(&[("many.conf", &many)]).unwrap().topology.directors[0].services.len(), 20_000);
    // Quotes and comments in odd places.
    let odd =
        "virtual_server 10.0.0.1 80 { ! a comment {\n lb_algo \"rr\" # {\n protocol TCP\n lb_kind DR }\n";
    let s = &import(&[("odd.conf", odd)]).unwrap().topology.directors[0].services[0];
    assert_eq!((s.scheduler, s.protocol), (SchedulerKind::Rr, Protocol::Tcp));
}

/// A small deterministic generator (xorshift64*), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One careless edit of a file's lines.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return "}".to_owned();
    }
    let k = rng.below(lines.len());
    const WORDS: [&str; 12] = [
        "{",
        "}",
        "\"",
        "-1",
        "99999999999999999999",
        "1e309",
        "NaN",
        "::",
        "0",
        "fwmark",
        "!",
        "real_server 1.2.3.4 80 {",
    ];
    match rng.below(6) {
        0 => {
            lines.remove(k);
        }
        1 => {
            let l = lines[k].clone();
            lines.insert(k, l);
        }
        2 => {
            let w = WORDS[rng.below(WORDS.len())];
            lines[k] = lines[k]
                .split_whitespace()
                .map(|x| if x.bytes().all(|b| b.is_ascii_digit() || b == b'.') { w } else { x })
                .collect::<Vec<_>>()
                .join(" ");
        }
        3 => {
            let w = WORDS[rng.below(WORDS.len())];
            lines[k].push(' ');
            lines[k].push_str(w);
        }
        4 => lines.truncate(k),
        _ => {
            let j = rng.below(lines.len());
            lines.swap(k, j);
        }
    }
    lines.join("\n")
}

#[test]
fn careless_edits_of_exported_files_never_panic_and_errors_point_into_the_file() {
    let mut rng = Rng(0x5eed_cafe);
    let mut files = Vec::new();
    let topologies = crate::NAMED
        .iter()
        .map(|n| n.topology())
        .chain(crate::matrix::topologies().into_iter().map(|(_, t)| t));
    for t in topologies {
        files.extend(
            crate::export::files(&t, crate::export::Target::default())
                .into_iter()
                .filter(|(n, _)| n.starts_with("keepalived")),
        );
    }
    assert!(files.len() >= 20);
    let (mut errors, mut imported) = (0, 0);
    for round in 0..3000 {
        let (name, text) = &files[rng.below(files.len())];
        let mut edited = text.clone();
        for _ in 0..=rng.below(3) {
            edited = mutate(&edited, &mut rng);
        }
        match import(&[(name, &edited)]) {
            Ok(_) => imported += 1,
            Err(e) => {
                errors += 1;
                assert!(e.line > 0, "round {round}: an error without its line: {e}\n{edited}");
                let lines = edited.lines().count();
                assert!(
                    e.line <= lines.max(1) && e.path == *name,
                    "round {round}: {e} ({lines} lines)\n{edited}"
                );
                if e.line > 0 {
                    let len = edited.lines().nth(e.line - 1).map_or(0, |l| l.chars().count());
                    assert!(e.column >= 1 && e.column <= len + 1, "round {round}: {e}\n{edited}");
                }
            }
        }
    }
    assert!(errors > 100 && imported > 100, "both outcomes occur: {errors} errors, {imported} imported");
}

#[test]
fn a_description_that_looks_like_lvsims_comments_stays_a_description() {
    let mut t = crate::named("tutorial-nat").unwrap().topology();
    t.description =
        "Director x (10.9.9.9)\nalso run: sysctl -w net.ipv4.vs.expire_nodest_conn=1\n\n  indented".into();
    let text = crate::export::keepalived(&t, crate::export::Target::default());
    let i = ok(&[("keepalived.conf", &text)]);
    assert_eq!(i.topology.description, t.description);
    assert_eq!(i.topology.directors.len(), 1);
    assert!(!i.topology.directors[0].expire_nodest_conn);
    assert_eq!(crate::export::keepalived(&i.topology, crate::export::Target::default()), text);
}

#[test]
fn a_director_outside_the_vrrp_group_round_trips_beside_it() {
    let t: crate::Topology = ron::from_str(
        r#"(directors: [
              (name: "lb1", address: "10.0.0.2", services: [(vip: Some("10.0.1.1"), port: 80,
                 real_servers: [(server: "web", forwarding: DR)])]),
              (name: "lb2", address: "10.0.0.3"),
              (name: "solo", address: "10.0.0.4", services: [(protocol: UDP, vip: Some("10.0.1.2"), port: 53,
                 real_servers: [(server: "web", forwarding: DR)], check: Some((checker: keepalived)))]),
            ],
            servers: [(name: "web", address: "10.0.0.11", count: 2)],
            ha: Some((directors: ["lb1", "lb2"], failover: Vrrp())))"#,
    )
    .unwrap();
    let files = crate::export::files(&t, crate::export::Target::default());
    let ka: Vec<(&str, &str)> = files
        .iter()
        .filter(|(n, _)| n.starts_with("keepalived"))
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(ka.len(), 3);
    let i = ok(&ka);
    let names: Vec<&str> = i.topology.directors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["lb1", "lb2", "solo"]);
    assert_eq!(i.topology.ha.as_ref().unwrap().directors, ["lb1", "lb2"]);
    let again = crate::export::files(&i.topology, crate::export::Target::default());
    let again: Vec<(&str, &str)> = again
        .iter()
        .filter(|(n, _)| n.starts_with("keepalived"))
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(again, ka);
}
