//! heartbeat's `ha.cf` (timing, media, nodes, ipfail's ping nodes) and `haresources`
//! (what moves to the active director: the VIPs, the NAT gateway, ldirectord), as
//! heartbeat 3.0.6 reads them (tests/real_heartbeat.rs starts it on every export).

use std::fmt::Write as _;
use std::net::IpAddr;

use sim_core::ha::{Failover as SimFailover, HeartbeatConfig, Medium, SyncMode};

use super::{Group, Target, expanded, secs, service_vips};
use lvs_ipvs::Forwarding;

use crate::{Failover, Topology};

/// heartbeat's time syntax: whole seconds, else milliseconds (`500ms`).
fn hb_time(d: lvs_sched::Duration) -> String {
    let ns = d.as_nanos();
    if ns % 1_000_000_000 == 0 { secs(d) } else { format!("{}ms", ns.div_ceil(1_000_000)) }
}

/// `ha.cf` for a heartbeat (or active-active) group: `keepalive`, `deadtime`, `warntime`,
/// `initdead`, a `serial` or `bcast` line per medium, `auto_failback` (off with
/// `nice_failback`), a `node` line per member, and with ping nodes their `ping` lines,
/// `deadping` and `respawn hacluster IPFAIL` (IPFAIL where the target has it:
/// [`Target::ipfail`]). The same file on every member. `None` without such a group (VRRP
/// groups use keepalived).
///
/// No `udpport` line: 694 is heartbeat's default, and heartbeat 3.0.6's `set_udpport()`
/// prints "udpport setting must precede media statements" for every `udpport` line,
/// wherever it stands (unlike `set_baudrate()`, it does not test whether a medium came
/// first).
pub fn ha_cf(topo: &Topology, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let g = Group::of(&topo)?;
    if matches!(g.ha.failover, Failover::Pulse { .. }) {
        return None; // piranha's pulse: lvs.cf (export/lvs_cf.rs)
    }
    let (hb, saru) = match &g.cfg.failover {
        SimFailover::Heartbeat(h) => (h, None),
        SimFailover::ActiveActive(s) => (&s.heartbeat, Some(s)),
        SimFailover::Vrrp(_) => return None,
    };
    let ipfail = format!("ipfail in {}", target.heartbeat_libexec());
    let assumed: &[&str] = if hb.ping_nodes.is_empty() { &[] } else { &[&ipfail] };
    let mut out = target.header("#", "ha.cf", assumed);
    out.push_str("# the same file on every member\n");
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    if let Some(s) = saru {
        let _ = writeln!(
            out,
            "# Saru active-active: every member holds the VIP and accepts the {} blocks of {} it owns;\n\
             # heartbeat gives the membership (haresources moves nothing)",
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
    out.push_str("# udpport: heartbeat's default, 694 (heartbeat 3.0.6 warns on any udpport line)\n");
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
        let _ = writeln!(out, "respawn hacluster {}", target.ipfail());
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

/// `haresources` for a heartbeat or active-active group. The same file on every member.
/// `None` without such a group.
///
/// heartbeat: one line, the primary's name then the resources started in order on the
/// active member: an `IPaddr2::VIP/PREFIX/IFACE` per VIP (`IPv6addr` for IPv6, the
/// address written out in full: heartbeat splits a resource's arguments at `::`), the
/// NAT gateway (the primary's address on the internal interface) when a real server is
/// NAT, and `ldirectord::FILE`.
///
/// Active-active: no resource line. heartbeat refuses to start without the file, but in
/// Saru nothing moves: every member holds the VIP and runs its own ldirectord all the
/// time, and only the division of the blocks follows the membership heartbeat reports.
///
/// Connection sync: no resource either. The sync daemons run with fixed roles, as the
/// simulator models them: the ipvsadm script (`ipvsadm-NAME.sh`) starts a master on the primary and a backup on
/// each other member (both on every member peer to peer) at boot, and they stay so
/// across fail-overs. (Neither Debian 11 nor 12 ships `LVSSyncDaemonSwap`, the resource
/// that swapped the roles: [`Target::heartbeat_resource_scripts`].)
pub fn haresources(topo: &Topology, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let g = Group::of(&topo)?;
    let active_active = match g.ha.failover {
        Failover::Heartbeat { .. } => false,
        Failover::ActiveActive { .. } => true,
        Failover::Vrrp { .. } | Failover::Pulse { .. } => return None,
    };
    let primary = &topo.directors[g.members[0]];
    let scripts = format!(
        "heartbeat's resource scripts {} in /etc/ha.d/resource.d",
        target.heartbeat_resource_scripts().join(", ")
    );
    let mut out = target.header("#", "haresources", &[&scripts]);
    out.push_str("# the same file on every member\n");
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    if let Some(s) = &g.cfg.sync {
        let roles = match s.mode {
            SyncMode::MasterBackup => "a master on the primary, a backup on the others",
            SyncMode::PeerToPeer => "master and backup on every member",
        };
        let _ = writeln!(
            out,
            "# connection sync: the ipvsadm scripts start the daemons at boot ({roles}); their roles stay across fail-overs"
        );
    }
    if active_active {
        out.push_str(
            "# Saru active-active: no resource moves. Every member holds the VIP and runs ldirectord itself;\n\
             # heartbeat only reports the membership that divides the blocks. heartbeat needs this file to start.\n",
        );
        return Some(out);
    }
    let _ = writeln!(
        out,
        "# {} is the preferred node; resources start left to right on the active member",
        primary.name
    );
    let mut res = vec![primary.name.clone()];
    for vip in service_vips(&primary.services) {
        res.push(address_resource(vip, g.ha.vip_prefix, &g.ha.external_interface));
    }
    let nat = primary.services.iter().flat_map(|s| &s.real_servers).any(|r| r.forwarding == Forwarding::Masq);
    if nat {
        res.push(address_resource(primary.address, g.ha.vip_prefix, &g.ha.internal_interface));
        let _ = writeln!(
            out,
            "# NAT: the real servers' gateway {} moves with the VIP; give each director another fixed address",
            primary.address
        );
    }
    if !primary.services.is_empty() {
        res.push(format!("ldirectord::{}", super::ldirectord_file(&topo, g.members[0])));
    }
    for r in &res[1..] {
        let script = r.split("::").next().unwrap_or_default();
        assert!(
            target.heartbeat_resource_scripts().contains(&script),
            "haresources names {script}, which {target} does not ship"
        );
    }
    let _ = writeln!(out, "{}", res.join(" "));
    Some(out)
}

/// `IPaddr2::A/PREFIX/IFACE`, or `IPv6addr::A/64/IFACE` with the IPv6 address written
/// without `::` (ResourceManager splits a resource's arguments at every `::`).
pub(crate) fn address_resource(a: IpAddr, v4_prefix: u8, iface: &str) -> String {
    match a {
        IpAddr::V4(a) => format!("IPaddr2::{a}/{v4_prefix}/{iface}"),
        IpAddr::V6(a) => {
            let full: Vec<String> = a.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("IPv6addr::{}/64/{iface}", full.join(":"))
        }
    }
}
