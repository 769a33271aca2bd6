//! A generated matrix of topologies that covers what the exporters write: every
//! forwarding method, TCP/UDP/SCTP and firewall-mark services, IPv4 and IPv6, persistence
//! with and without a netmask, connection thresholds, each health check kind with each
//! checker, and no fail-over, VRRP, heartbeat (with ping nodes) and active-active groups,
//! with and without connection sync; then piranha's pulse pairs with each kind of nanny
//! check (what lvs.cf can hold: IPv4, TCP or UDP, no thresholds).
//!
//! The real-tool tests (`tests/real_*.rs`) and the round trip (`tests/round_trip.rs`)
//! run over it as well as over the scenario library. Each case is a valid topology
//! (`expand` and `Ha::config` accept it); its name says what it combines. Cases are only
//! ever appended, so that a failing case keeps its name.

use crate::Topology;

/// A service kind of the matrix.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Tcp,
    Udp,
    Sctp,
    Fwmark,
}

/// A fail-over group of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    None,
    Vrrp,
    Heartbeat,
    ActiveActive,
    Pulse,
}

/// A health check of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    None,
    LdirectordConnect,
    LdirectordNegotiate,
    KeepalivedConnect,
    KeepalivedNegotiate,
    NannyConnect,
    NannySendExpect,
    NannyNegotiate,
    NannyProgram,
}

/// One case: the axes' values.
#[derive(Clone, Copy, Debug)]
struct Case {
    fwd: &'static str,
    kind: Kind,
    ipv6: bool,
    persistence: bool,
    thresholds: bool,
    check: Check,
    group: Group,
    sync: bool,
}

impl Case {
    fn name(&self) -> String {
        let kind = match self.kind {
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::Sctp => "sctp",
            Kind::Fwmark => "fwmark",
        };
        let check = match self.check {
            Check::None => "nocheck",
            Check::LdirectordConnect => "ld-connect",
            Check::LdirectordNegotiate => "ld-negotiate",
            Check::KeepalivedConnect => "ka-connect",
            Check::KeepalivedNegotiate => "ka-negotiate",
            Check::NannyConnect => "nanny-connect",
            Check::NannySendExpect => "nanny-sendexpect",
            Check::NannyNegotiate => "nanny-negotiate",
            Check::NannyProgram => "nanny-program",
        };
        let group = match self.group {
            Group::None => "single",
            Group::Vrrp => "vrrp",
            Group::Heartbeat => "heartbeat",
            Group::ActiveActive => "active-active",
            Group::Pulse => "pulse",
        };
        let mut n = format!(
            "{group}-{}-{kind}-{}-{check}",
            self.fwd.to_lowercase(),
            if self.ipv6 { "v6" } else { "v4" }
        );
        for (on, word) in
            [(self.persistence, "persist"), (self.thresholds, "thresholds"), (self.sync, "sync")]
        {
            if on {
                n.push('-');
                n.push_str(word);
            }
        }
        n
    }

    /// The topology, as RON text in the scenario format.
    fn ron(&self) -> String {
        let (vip, rs_addr, netmask) = if self.ipv6 {
            ("2001:db8::10", "2001:db8::100", "ffff:ffff:ffff:ffff::")
        } else {
            ("192.0.2.10", "10.0.0.11", "255.255.255.0")
        };
        let (protocol, port) = match self.kind {
            Kind::Tcp | Kind::Fwmark => ("TCP", 80),
            Kind::Udp => ("UDP", 53),
            Kind::Sctp => ("SCTP", 3868),
        };
        let key = match self.kind {
            Kind::Fwmark => "fwmark: Some(7),".to_owned(),
            _ => format!("protocol: {protocol}, vip: Some(\"{vip}\"), port: {port},"),
        };
        let persistence = if self.persistence {
            format!("persistence_s: Some(300.0), netmask: Some(\"{netmask}\"),")
        } else {
            String::new()
        };
        let thresholds = if self.thresholds { "upper: 200, lower: 150," } else { "" };
        let gateway = if self.fwd == "NAT" { ", gateway: Some(\"lb1\")" } else { "" };
        let lb2 = if self.group == Group::None { "" } else { "(name: \"lb2\", address: \"10.0.0.3\")," };
        format!(
            "(description: \"matrix: {name}\",
              directors: [
                (name: \"lb1\", address: \"10.0.0.2\", timeouts: (tcp_s: Some(900.0), udp_s: Some(60.0)),
                 services: [({key} scheduler: wlc, {persistence}
                   real_servers: [(server: \"web\", forwarding: {fwd}, weight: 3, {thresholds})],
                   check: {check})]),
                {lb2}
              ],
              servers: [(name: \"web\", address: \"{rs_addr}\", count: 2{gateway})],
              ha: {ha})",
            name = self.name(),
            fwd = self.fwd,
            check = self.check_ron(),
            ha = self.ha_ron(),
        )
    }

    fn check_ron(&self) -> &'static str {
        match self.check {
            Check::None => "None",
            Check::LdirectordConnect => {
                "Some((checker: ldirectord, kind: Connect, interval_s: Some(5.0), timeout_s: Some(2.0), retries: Some(2), quiescent: Some(true)))"
            }
            Check::LdirectordNegotiate => {
                "Some((checker: ldirectord, kind: Negotiate(request: \"/health.html\", receive: Some(\"OK\")), interval_s: Some(6.0), timeout_s: Some(3.0), quiescent: Some(false)))"
            }
            Check::KeepalivedConnect => {
                "Some((checker: keepalived, kind: Connect, interval_s: Some(3.0), timeout_s: Some(2.0), retries: Some(1), delay_before_retry_s: Some(1.0)))"
            }
            Check::KeepalivedNegotiate => {
                "Some((checker: keepalived, kind: Negotiate(request: \"/health.html\", digest: Some(\"9b3a0c85a887a256d6939da88aabd8cd\")), interval_s: Some(5.0), timeout_s: Some(2.0), retries: Some(3), quiescent: Some(true)))"
            }
            Check::NannyConnect => {
                "Some((checker: nanny, kind: Connect, timeout_s: Some(6.0), reentry_s: Some(15.0)))"
            }
            Check::NannySendExpect => {
                "Some((checker: nanny, kind: SendExpect(send: Some(\"GET /health HTTP/1.0\\r\\n\\r\\n\"), expect: Some(\"HTTP/1\\\\.[01] 200\"), use_regex: true), timeout_s: Some(5.0), reentry_s: Some(20.0), quiescent: Some(true)))"
            }
            Check::NannyNegotiate => {
                "Some((checker: nanny, kind: Negotiate(request: \"/health.html\", receive: Some(\"OK\")), timeout_s: Some(10.0)))"
            }
            Check::NannyProgram => {
                "Some((checker: nanny, kind: SendExpect(send_program: Some(\"/usr/local/bin/check_dns %h %p\"), expect: Some(\"OK\")), timeout_s: Some(4.0), reentry_s: Some(30.0)))"
            }
        }
    }

    fn ha_ron(&self) -> String {
        let sync = if self.sync { "sync: Some((mode: master_backup, syncid: 7))," } else { "" };
        match self.group {
            Group::None => "None".to_owned(),
            Group::Vrrp => format!(
                "Some((directors: [\"lb1\", \"lb2\"], failover: Vrrp(advert_int_s: 1.0, priorities: Some([150, 100]), auth_pass: Some(\"s3cret\")), {sync}))"
            ),
            Group::Heartbeat => format!(
                "Some((directors: [\"lb1\", \"lb2\"], failover: Heartbeat(keepalive_s: 2.0, deadtime_s: 10.0, \
                 ping_nodes: [(name: \"router\", address: \"10.0.0.254\", side: External)]), {sync}))"
            ),
            Group::ActiveActive => format!(
                "Some((directors: [\"lb1\", \"lb2\"], failover: ActiveActive(by: source_port, blocks: 256), {sync}))"
            ),
            Group::Pulse => format!(
                "Some((directors: [\"lb1\", \"lb2\"], failover: Pulse(keepalive_s: 2.0, deadtime_s: 6.0, heartbeat_port: 539), {sync}))"
            ),
        }
    }
}

/// The cases: for each fail-over group, each health check once, the other axes turning
/// over so that each value meets several others.
fn cases() -> Vec<Case> {
    let fwds = ["NAT", "DR", "TUN"];
    let kinds = [Kind::Tcp, Kind::Udp, Kind::Sctp, Kind::Fwmark];
    let checks = [
        Check::None,
        Check::LdirectordConnect,
        Check::LdirectordNegotiate,
        Check::KeepalivedConnect,
        Check::KeepalivedNegotiate,
    ];
    let groups = [Group::None, Group::Vrrp, Group::Heartbeat, Group::ActiveActive];
    let mut out = Vec::new();
    let mut i = 0usize;
    for group in groups {
        for check in checks {
            // A negotiate check speaks HTTP: it belongs on a TCP service.
            let negotiate = matches!(check, Check::LdirectordNegotiate | Check::KeepalivedNegotiate);
            let kind = if negotiate { Kind::Tcp } else { kinds[i % kinds.len()] };
            out.push(Case {
                fwd: fwds[i % fwds.len()],
                kind,
                ipv6: (i / 2) % 2 == 1,
                persistence: i % 2 == 0,
                thresholds: (i / 3) % 2 == 1,
                check,
                group,
                sync: group != Group::None && i % 2 == 1,
            });
            i += 1;
        }
    }
    // piranha (appended): a pulse pair per kind of nanny check.
    let pulse = |fwd, kind, check, persistence, sync| Case {
        fwd,
        kind,
        ipv6: false,
        persistence,
        thresholds: false,
        check,
        group: Group::Pulse,
        sync,
    };
    out.push(pulse("NAT", Kind::Tcp, Check::NannySendExpect, true, true));
    out.push(pulse("DR", Kind::Tcp, Check::NannyConnect, false, false));
    out.push(pulse("TUN", Kind::Udp, Check::NannyProgram, false, false));
    out.push(pulse("DR", Kind::Tcp, Check::NannyNegotiate, true, true));
    out
}

/// The matrix: `(name, topology)` per case.
///
/// # Panics
/// If a case's text does not parse (a bug in this module, caught by its tests).
pub fn topologies() -> Vec<(String, Topology)> {
    cases()
        .into_iter()
        .map(|c| {
            let text = c.ron();
            let t: Topology =
                ron::from_str(&text).unwrap_or_else(|e| panic!("matrix case {}: {e}\n{text}", c.name()));
            (c.name(), t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_is_a_valid_topology_with_a_unique_name() {
        let all = topologies();
        assert_eq!(all.len(), 24);
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names are unique");
        for (name, t) in &all {
            let x = t.expand().unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(ha) = &x.ha {
                ha.config(&x.directors).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn the_matrix_covers_every_value_of_every_axis() {
        let names: Vec<String> = topologies().into_iter().map(|(n, _)| n).collect();
        for want in [
            "single-",
            "vrrp-",
            "heartbeat-",
            "active-active-",
            "-nat-",
            "-dr-",
            "-tun-",
            "-tcp-",
            "-udp-",
            "-sctp-",
            "-fwmark-",
            "-v4-",
            "-v6-",
            "-nocheck",
            "-ld-connect",
            "-ld-negotiate",
            "-ka-connect",
            "-ka-negotiate",
            "-persist",
            "-thresholds",
            "-sync",
            "pulse-",
            "-nanny-connect",
            "-nanny-sendexpect",
            "-nanny-negotiate",
            "-nanny-program",
        ] {
            assert!(names.iter().any(|n| n.contains(want)), "no case with {want}: {names:?}");
        }
        // IPv6 meets each forwarding method, and fwmark meets IPv6.
        for fwd in ["-nat-", "-dr-", "-tun-"] {
            assert!(names.iter().any(|n| n.contains(fwd) && n.contains("-v6-")), "{fwd} with IPv6");
        }
        assert!(names.iter().any(|n| n.contains("-fwmark-v6-")), "fwmark with IPv6: {names:?}");
    }
}
