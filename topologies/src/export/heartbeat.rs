//! heartbeat's `ha.cf` (timing, media, nodes, ipfail's ping nodes) and `haresources`
//! (what moves to the active director: the VIPs, the NAT gateway, ldirectord, the sync
//! daemon's role).

use std::fmt::Write as _;

use sim_core::ha::{Failover as SimFailover, HeartbeatConfig, Medium, SyncMode};

use super::keepalived::prefixed;
use super::{Group, Target, expanded, secs, service_vips};
use lvs_ipvs::Forwarding;

use crate::{Failover, Topology};

/// heartbeat's time syntax: whole seconds, else milliseconds (`500ms`).
fn hb_time(d: lvs_sched::Duration) -> String {
    let ns = d.as_nanos();
    if ns % 1_000_000_000 == 0 { secs(d) } else { format!("{}ms", ns.div_ceil(1_000_000)) }
}

/// `ha.cf` for a heartbeat (or active-active) group: `keepalive`, `deadtime`, `warntime`,
/// `initdead`, `udpport 694`, a `serial` or `bcast` line per medium, `auto_failback`
/// (off with `nice_failback`), a `node` line per member, and with ping nodes their `ping`
/// lines, `deadping` and `respawn hacluster .../ipfail`. The same file on every member.
/// `None` without such a group (VRRP groups use keepalived).
pub fn ha_cf(topo: &Topology, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let g = Group::of(&topo)?;
    let (hb, saru) = match &g.cfg.failover {
        SimFailover::Heartbeat(h) => (h, None),
        SimFailover::ActiveActive(s) => (&s.heartbeat, Some(s)),
        SimFailover::Vrrp(_) => return None,
    };
    let mut out = target.header("#", "ha.cf", &[]);
    out.push_str("# the same file on every member\n");
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    if let Some(s) = saru {
        let _ = writeln!(
            out,
            "# Saru active-active: every member holds the VIP and accepts the {} blocks of {} it owns;\n\
             # heartbeat gives the membership (no haresources: nothing moves)",
            s.blocks,
            match s.by {
                sim_core::ha::SplitBy::SourcePort => "client source ports",
                sim_core::ha::SplitBy::SourceAddress => "client source addresses",
            }
        );
    }
    out.push_str("logfacility local0\n");
    let _ = writeln!(out, "keepalive {}", hb_time(hb.keepalive));
    let _ = writeln!(out, "deadtime {}", hb_time(hb.deadtime));
    let _ = writeln!(out, "warntime {}", hb_time(hb.warntime));
    let _ = writeln!(out, "initdead {}", hb_time(hb.initdead));
    out.push_str("udpport 694\n");
    media(&mut out, &g, hb);
    let _ = writeln!(out, "auto_failback {}", if hb.nice_failback { "off" } else { "on" });
    for &m in &g.members {
        let _ = writeln!(out, "node {}", topo.directors[m].name);
    }
    if !hb.ping_nodes.is_empty() {
        for p in &hb.ping_nodes {
            let _ = writeln!(out, "ping {}", p.address);
        }
        let _ = writeln!(out, "deadping {}", hb_time(hb.deadping));
        out.push_str("respawn hacluster /usr/lib/heartbeat/ipfail\n");
    }
    Some(out)
}

/// `serial` (with `baud` before it) and `bcast` lines.
fn media(out: &mut String, g: &Group<'_>, hb: &HeartbeatConfig) {
    let serial = hb.media.iter().filter(|m| **m == Medium::Dedicated).count();
    if serial > 0 {
        out.push_str("baud 19200\n");
    }
    let mut tty = 0;
    for m in &hb.media {
        match m {
            Medium::Dedicated => {
                let _ = writeln!(out, "serial /dev/ttyS{tty}");
                tty += 1;
            }
            Medium::Lan(side) => {
                let _ = writeln!(out, "bcast {}", g.ha.interface((*side).into()));
            }
        }
    }
}

/// `haresources` for a heartbeat group: one line, the primary's name then the resources
/// started in order on the active member: `LVSSyncDaemonSwap::master` when the group
/// syncs, an `IPaddr2::VIP/PREFIX/IFACE` per VIP (`IPv6addr` for IPv6), the NAT gateway
/// (the primary's address on the internal interface) when a real server is NAT, and
/// `ldirectord::FILE`. `None` without a heartbeat group.
pub fn haresources(topo: &Topology, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let g = Group::of(&topo)?;
    if !matches!(g.ha.failover, Failover::Heartbeat { .. }) {
        return None;
    }
    let primary = &topo.directors[g.members[0]];
    let mut out = target.header("#", "haresources", &[]);
    out.push_str("# the same file on every member\n");
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    let _ = writeln!(
        out,
        "# {} is the preferred node; resources start left to right on the active member",
        primary.name
    );
    let mut res = vec![primary.name.clone()];
    if let Some(s) = &g.cfg.sync {
        if s.mode == SyncMode::PeerToPeer {
            out.push_str(
                "# connection sync peer to peer: LVSSyncDaemonSwap swaps one role; start both daemons by hand (ipvsadm.sh)\n",
            );
        }
        res.push("LVSSyncDaemonSwap::master".to_owned());
    }
    for vip in service_vips(&primary.services) {
        let script = if vip.is_ipv4() { "IPaddr2" } else { "IPv6addr" };
        res.push(format!("{script}::{}/{}", prefixed(vip, g.ha.vip_prefix), g.ha.external_interface));
    }
    let nat = primary.services.iter().flat_map(|s| &s.real_servers).any(|r| r.forwarding == Forwarding::Masq);
    if nat {
        let script = if primary.address.is_ipv4() { "IPaddr2" } else { "IPv6addr" };
        res.push(format!(
            "{script}::{}/{}",
            prefixed(primary.address, g.ha.vip_prefix),
            g.ha.internal_interface
        ));
        let _ = writeln!(
            out,
            "# NAT: the real servers' gateway {} moves with the VIP; give each director another fixed address",
            primary.address
        );
    }
    res.push(format!("ldirectord::{}", super::ldirectord_file(&topo, g.members[0])));
    let _ = writeln!(out, "{}", res.join(" "));
    Some(out)
}
