//! Named LVS topologies (the LVS tutorial's NAT, DR and TUN examples, ...) and the
//! exporters that turn one into deployment files (ipvsadm commands, feedbackd-agent.conf,
//! keepalived.conf, ldirectord.cf, heartbeat's ha.cf), and the import of `ipvsadm-save` output as a director's services.
//!
//! # Modules
//! - [`model`]: the schema (serde types of the scenario format's topology part).
//! - [`ha`]: its high-availability part: health checks, fail-over groups, sync; and
//!   their conversion to sim-core's configuration, with the tools' defaults.
//! - `expand`: [`Topology::expand`], groups written out and references checked.
//! - [`export`]: ipvsadm script, `feedbackd-agent.conf`, `keepalived.conf` (one per
//!   director with VRRP), `ldirectord.cf`, heartbeat's `ha.cf` and `haresources`.
//! - [`import`]: `ipvsadm-save` output as a director's services.
//! - `library/*.ron`: the built-in topologies ([`NAMED`]); `docs/topologies.md` shows them.
//!
//! # Invariants
//! - Data and text only: never runs a simulation, never touches the network, the kernel or
//!   a file (the library is compiled in).
//! - Exporters and the import work on the expanded topology; error paths name the
//!   topology as written.
//! - The named topologies are RON text (`library/*.ron`) in the scenario format's
//!   topology fields, so a scenario that names one can override any of its fields.

pub mod ecmp;
pub mod ha;
pub mod model;

pub use ecmp::{Ecmp, EcmpHashPolicy, EcmpSelection};
pub use ha::{
    CheckKind, Checker, Failover, Fallback, Ha, HealthCheck, Medium, PingNode, Side, SplitBy, SyncDaemon,
    SyncMode,
};
pub use model::{Backend, Channel, Cpu, Director, Flag, RealServer, Server, Service, Timeouts, Topology};

/// A built-in topology.
#[derive(Clone, Copy, Debug)]
pub struct Named {
    /// Its name (`tutorial-nat`).
    pub name: &'static str,
    /// One line saying what it is.
    pub description: &'static str,
    /// RON text of a [`Topology`].
    pub source: &'static str,
}

/// The built-in topologies, by name: the LVS-HOWTO's three forwarding examples, two
/// starting points for capacity planning, then two fail-over pairs. Each `description` is the one in its RON text.
pub const NAMED: &[Named] = &[
    Named {
        name: "tutorial-nat",
        description: "LVS-HOWTO LVS-NAT: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on 192.168.6.0/24",
        source: include_str!("../library/tutorial-nat.ron"),
    },
    Named {
        name: "tutorial-dr",
        description: "LVS-HOWTO LVS-DR: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on the same LAN reply directly",
        source: include_str!("../library/tutorial-dr.ron"),
    },
    Named {
        name: "tutorial-tun",
        description: "LVS-HOWTO LVS-TUN: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on a remote segment via IP-IP",
        source: include_str!("../library/tutorial-tun.ron"),
    },
    Named {
        name: "web-farm",
        description: "Capacity planning: DR director, 4 two-core web servers (web1..web4), HTTP wlc and HTTPS wlc persistent",
        source: include_str!("../library/web-farm.ron"),
    },
    Named {
        name: "three-tier",
        description: "Three tiers: NAT director, 3 app servers (app1..app3) sharing one 8-core database backend",
        source: include_str!("../library/three-tier.ron"),
    },
    Named {
        name: "ha-pair",
        description: "HA pair: lb1 and lb2 in VRRP (lb1 master), DR to web1..web3 with HTTP health checks, connection sync",
        source: include_str!("../library/ha-pair.ron"),
    },
    Named {
        name: "ha-nat-pair",
        description: "HA NAT pair: lb1 and lb2 with heartbeat and ipfail, ldirectord checks of rs1 and rs2, a sorry server, sync",
        source: include_str!("../library/ha-nat-pair.ron"),
    },
];

/// The built-in topology of that name.
pub fn named(name: &str) -> Option<&'static Named> {
    NAMED.iter().find(|n| n.name == name)
}

impl Named {
    /// Its topology, as written (groups not expanded).
    ///
    /// # Panics
    /// Never for a built-in: each one's text is parsed by this crate's tests.
    pub fn topology(&self) -> Topology {
        ron::from_str(self.source)
            .unwrap_or_else(|e| panic!("built-in topology {} does not parse: {e}", self.name))
    }
}

/// A topology that cannot be used: where (a path such as `servers[2].gateway` or
/// `directors[0].services[1].real_servers[0].server`), and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TopologyError {
    /// Path of the field at fault, in the scenario format.
    pub path: String,
    /// What is wrong, in words a person understands.
    pub message: String,
}

mod expand;
pub mod export;
pub mod import;
pub mod matrix;

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_ipvs::Forwarding;

    #[test]
    fn every_named_topology_parses_and_expands() {
        assert!(NAMED.len() >= 5);
        for n in NAMED {
            let t: Topology = ron::from_str(n.source).unwrap_or_else(|e| panic!("{}: {e}", n.name));
            assert_eq!(t.description, n.description, "{}: NAMED and the RON text differ", n.name);
            assert!(n.source.starts_with("// "), "{}: opens with a comment saying what it is", n.name);
            let x = t.expand().unwrap_or_else(|e| panic!("{}: {e}", n.name));
            assert!(!x.directors.is_empty() && !x.directors[0].services.is_empty(), "{}", n.name);
            assert_eq!(named(n.name).map(|m| m.source), Some(n.source));
        }
        let names: Vec<&str> = NAMED.iter().map(|n| n.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "names are unique");
        assert!(named("no-such-topology").is_none());
    }

    #[test]
    fn tutorials_have_the_tutorials_addresses() {
        let nat = named("tutorial-nat").unwrap().topology().expand().unwrap();
        let d = &nat.directors[0];
        assert_eq!(
            (d.name.as_str(), d.address.to_string(), d.segment.as_str()),
            ("lvs", "192.168.6.1".into(), "internal")
        );
        let s = &d.services[0];
        assert_eq!(
            (s.vip.unwrap().to_string(), s.port, s.scheduler),
            ("172.17.60.201".into(), 80, lvs_ipvs::SchedulerKind::Rr)
        );
        assert!(s.real_servers.iter().all(|r| r.forwarding == Forwarding::Masq));
        assert!(nat.servers.iter().all(|r| r.gateway.as_deref() == Some("lvs") && r.cpu.cores == 1));
        assert_eq!(d.external.bandwidth_mbps, Some(100.0));

        let dr = named("tutorial-dr").unwrap().topology().expand().unwrap();
        let tun = named("tutorial-tun").unwrap().topology().expand().unwrap();
        for (t, fwd) in [(&dr, Forwarding::DirectRouting), (&tun, Forwarding::Tunnel)] {
            let addrs: Vec<String> = t.servers.iter().map(|s| s.address.to_string()).collect();
            assert_eq!(addrs, ["172.17.60.199", "172.17.60.200"]);
            assert!(t.directors[0].services[0].real_servers.iter().all(|r| r.forwarding == fwd));
            assert!(t.servers.iter().all(|s| s.uplink.bandwidth_mbps.is_some()));
        }
        assert!(dr.servers.iter().all(|s| s.segment == dr.directors[0].segment), "DR needs one segment");
        assert!(tun.servers.iter().all(|s| s.segment != tun.directors[0].segment), "TUN crosses segments");

        let farm = named("web-farm").unwrap().topology().expand().unwrap();
        assert_eq!(farm.servers.len(), 4);
        assert_eq!(farm.directors[0].services[1].real_servers.len(), 4);
        let tiers = named("three-tier").unwrap().topology().expand().unwrap();
        assert!(tiers.servers.iter().all(|s| s.backend.as_deref() == Some("db")));
    }

    #[test]
    fn protocol_and_forwarding_keep_the_scenario_words() {
        use lvs_ipvs::Protocol;
        let s: Service = ron::from_str("(real_servers: [(server: \"a\")])").unwrap();
        assert_eq!((s.protocol, s.real_servers[0].forwarding), (Protocol::Tcp, Forwarding::Masq));
        for (word, p) in [("TCP", Protocol::Tcp), ("UDP", Protocol::Udp), ("SCTP", Protocol::Sctp)] {
            let s: Service = ron::from_str(&format!("(protocol: {word})")).unwrap();
            assert_eq!(s.protocol, p);
            assert_eq!(ron::to_string(&p).unwrap(), word);
        }
        for (word, f) in [
            ("NAT", Forwarding::Masq),
            ("DR", Forwarding::DirectRouting),
            ("TUN", Forwarding::Tunnel),
            ("Local", Forwarding::Local),
        ] {
            let r: RealServer = ron::from_str(&format!("(server: \"a\", forwarding: {word})")).unwrap();
            assert_eq!(r.forwarding, f);
            assert_eq!(ron::to_string(&f).unwrap(), word);
        }
        // The Rust names are not words of the format.
        assert!(ron::from_str::<Service>("(protocol: Tcp)").is_err());
        assert!(ron::from_str::<RealServer>("(server: \"a\", forwarding: Masq)").is_err());
    }

    #[test]
    fn flags_map_to_ipvsadms_words() {
        use lvs_ipvs::{SchedFlag, SvcFlags};
        let s: Service = ron::from_str("(flags: [flag_1, flag_2, flag_3, mh_port, one_packet])").unwrap();
        let words: Vec<_> = s.flags.iter().map(|f| f.sched_flag().map(SchedFlag::name)).collect();
        assert_eq!(words, [Some("flag-1"), Some("flag-2"), Some("flag-3"), Some("mh-port"), None]);
        let bits = s.flags.iter().fold(0, |b, f| b | f.bit());
        let all = SvcFlags::SCHED1 | SvcFlags::SCHED2 | SvcFlags::SCHED3 | SvcFlags::ONEPACKET;
        assert_eq!(bits, all);
        for f in SchedFlag::ALL {
            assert_eq!(Flag::from_sched_flag(f).sched_flag(), Some(f));
        }
    }

    #[test]
    fn flags_are_snake_case_identifiers_in_ron() {
        let s: Service = ron::from_str("(scheduler: sh, flags: [sh_fallback, sh_port, one_packet])").unwrap();
        assert_eq!(s.flags, [Flag::ShFallback, Flag::ShPort, Flag::OnePacket]);
    }
}
