//! Red Hat piranha's `lvs.cf` (`/etc/sysconfig/ha/lvs.cf`): the file `pulse`, `lvsd` and
//! `nanny` read, for a topology whose checks are nanny's or whose fail-over group is
//! [`crate::Failover::Pulse`].
//!
//! The grammar is piranha 0.8.6's parser (lvsconfig.c `parseConfiguration()`,
//! `parseVirtualServer()`, `parseActualServer()`) and lvs.cf(5): one `key = value` per
//! line (`address = IP DEVICE` and `nat_router = IP DEVICE` take two values), `#`
//! comments on lines of their own, `virtual NAME {` ... `}` blocks holding `server NAME {`
//! ... `}` blocks, strings in double quotes with nanny's escapes (`\\`, `\r`, `\n`, `\t`).
//! Numbers are integers (seconds). The layout follows the piranha GUI's (and the RHEL 5
//! "Virtual Server Administration" examples'): globals, then one block per virtual server.
//!
//! What lvs.cf cannot say is written as a `#` comment: IPv6 (piranha is IPv4 only,
//! `inet_aton()`), firewall-mark services without a VIP, SCTP, schedulers other than rr,
//! wrr, lc, wlc, lblc, lblcr, dh and sh, scheduler flags, connection thresholds, more than
//! one forwarding method (lvs.cf's `network` is global). `lvsd` starts a nanny for every
//! real server of every virtual server: a service without a nanny check gets nanny's
//! defaults.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind};

use super::{Group, Target, expanded, server};
use crate::ha::NANNY_REENTRY_S;
use crate::{CheckKind, Checker, Failover, HealthCheck, Service, Topology};

/// What the header says the file assumes: piranha is not packaged by Debian.
const ASSUMED: &str = "piranha 0.8.6 (RHEL 5/6; not packaged by Debian): pulse, lvsd and nanny in \
                       /usr/sbin, this file as /etc/sysconfig/ha/lvs.cf";

/// The schedulers lvs.cf's `scheduler` takes (lvsconfig.c `parseVirtualServer()`).
pub(crate) const SCHEDULERS: [SchedulerKind; 8] = [
    SchedulerKind::Rr,
    SchedulerKind::Wrr,
    SchedulerKind::Lc,
    SchedulerKind::Wlc,
    SchedulerKind::Lblc,
    SchedulerKind::Lblcr,
    SchedulerKind::Dh,
    SchedulerKind::Sh,
];

/// Indentation of a virtual server's lines and of a real server's (the GUI's).
const VS: &str = "     ";
const RS: &str = "         ";

/// `lvs.cf` for the topology's pulse group (primary and backup) or, without one, for the
/// first director whose services nanny checks; `None` when neither exists.
pub fn lvs_cf(topo: &Topology, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let group = Group::of(&topo).filter(|g| matches!(g.ha.failover, Failover::Pulse { .. }));
    let nanny = |s: &Service| s.check.as_ref().is_some_and(|c| c.checker == Checker::Nanny);
    let primary = match &group {
        Some(g) => g.members[0],
        None => topo.directors.iter().position(|d| d.services.iter().any(nanny))?,
    };
    let d = &topo.directors[primary];
    let mut out = target.header("#", "lvs.cf", &[ASSUMED]);
    let (ext, int, prefix) = topo.ha.as_ref().map_or(("eth0", "eth1", 24), |h| {
        (h.external_interface.as_str(), h.internal_interface.as_str(), h.vip_prefix)
    });
    match &group {
        Some(g) => {
            let backup = &topo.directors[g.members[1]];
            let _ = writeln!(out, "# lvsim: primary {}, backup {}", d.name, backup.name);
        }
        None => {
            let _ = writeln!(out, "# lvsim: primary {}", d.name);
        }
    }
    out.push_str("serial_no = 1\n");
    addr_line(&mut out, "primary", d.address);
    out.push_str("service = lvs\n");
    if let Some(g) = &group {
        let Failover::Pulse { keepalive_s, deadtime_s, heartbeat_port } = g.ha.failover else {
            unreachable!("filtered above")
        };
        out.push_str("backup_active = 1\n");
        addr_line(&mut out, "backup", topo.directors[g.members[1]].address);
        out.push_str("heartbeat = 1\n");
        let _ = writeln!(out, "heartbeat_port = {heartbeat_port}");
        let _ = writeln!(out, "keepalive = {}", keepalive_s.round());
        let _ = writeln!(out, "deadtime = {}", deadtime_s.round());
    } else {
        out.push_str("backup_active = 0\nheartbeat = 0\n");
    }
    network(&mut out, &topo, &d.services, int, prefix);
    if let Some(s) = group.as_ref().and_then(|g| g.ha.sync.as_ref()) {
        let iface = s.interface.as_deref().unwrap_or(int);
        let _ = writeln!(out, "syncdaemon = 1\nsyncd_iface = {iface}\nsyncd_id = {}", s.syncid);
    }
    for (name, t) in [
        ("tcp_timeout", d.timeouts.tcp_s),
        ("tcpfin_timeout", d.timeouts.tcpfin_s),
        ("udp_timeout", d.timeouts.udp_s),
    ] {
        if let Some(t) = t {
            let _ = writeln!(out, "{name} = {}", super::whole_seconds(t));
        }
    }
    out.push_str("debug_level = NONE\n");
    let vips = super::service_vips(&d.services);
    for (k, s) in d.services.iter().enumerate() {
        virtual_server(&mut out, &topo, s, k, (ext, prefix, &vips));
    }
    Some(out)
}

/// `KEY = ADDRESS`, or a comment for an IPv6 address (piranha reads IPv4 only).
fn addr_line(out: &mut String, key: &str, a: IpAddr) {
    if a.is_ipv4() {
        let _ = writeln!(out, "{key} = {a}");
    } else {
        let _ = writeln!(out, "# {key} {a} not written: piranha is IPv4 only");
    }
}

/// `network`, and with NAT `nat_router` (the real servers' gateway, on the internal
/// interface) and `nat_nmask`.
fn network(out: &mut String, topo: &Topology, services: &[Service], int: &str, prefix: u8) {
    let mut methods: Vec<Forwarding> = Vec::new();
    for rs in services.iter().flat_map(|s| &s.real_servers) {
        if !methods.contains(&rs.forwarding) {
            methods.push(rs.forwarding);
        }
    }
    let first = methods.first().copied().unwrap_or(Forwarding::Masq);
    if methods.len() > 1 {
        let _ = writeln!(
            out,
            "# lvs.cf has one forwarding method for every real server: {first:?} written, not {:?}",
            &methods[1..]
        );
    }
    let word = match first {
        Forwarding::DirectRouting => "direct",
        Forwarding::Tunnel => "tunnel",
        _ => "nat",
    };
    let _ = writeln!(out, "network = {word}");
    if word != "nat" {
        return;
    }
    let gateway = services
        .iter()
        .flat_map(|s| &s.real_servers)
        .filter_map(|rs| server(topo, &rs.server)?.gateway.as_deref())
        .find_map(|g| topo.directors.iter().find(|d| d.name == g));
    if let Some(g) = gateway.filter(|g| g.address.is_ipv4()) {
        let _ = writeln!(out, "nat_router = {} {int}:1", g.address);
        let _ = writeln!(out, "nat_nmask = {}", mask(prefix));
    }
}

/// A dotted IPv4 netmask of `prefix` bits.
pub(crate) fn mask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0))
}

/// Why lvs.cf cannot hold a service, if it cannot.
fn unwritable(s: &Service) -> Option<String> {
    if s.vip.is_none() {
        return Some("a firewall-mark service: lvs.cf's virtual server needs its VIP address".into());
    }
    if s.vip.is_some_and(|v| v.is_ipv6()) {
        return Some("IPv6: piranha is IPv4 only".into());
    }
    if !matches!(s.protocol, Protocol::Tcp | Protocol::Udp) {
        return Some(format!("{:?}: lvs.cf's protocol is tcp or udp", s.protocol));
    }
    if !SCHEDULERS.contains(&s.scheduler) {
        return Some(format!(
            "scheduler {}: lvs.cf takes {}",
            s.scheduler.name(),
            SCHEDULERS.map(|k| k.name()).join(", ")
        ));
    }
    None
}

/// One `virtual vsK { ... }` block (`k` the service's index on its director).
fn virtual_server(
    out: &mut String,
    topo: &Topology,
    s: &Service,
    k: usize,
    (ext, prefix, vips): (&str, u8, &[IpAddr]),
) {
    let (Some(vip), None) = (s.vip, unwritable(s)) else {
        let what =
            s.vip.map_or_else(|| format!("fwm {}", s.fwmark.unwrap_or(0)), |v| super::addr_port(v, s.port));
        let _ = writeln!(out, "# service {what} not written: {}", unwritable(s).unwrap_or_default());
        return;
    };
    let dev = vips.iter().position(|v| *v == vip).unwrap_or(0) + 1;
    let _ = writeln!(out, "virtual vs{} {{", k + 1);
    let _ =
        writeln!(out, "{VS}active = 1\n{VS}address = {vip} {ext}:{dev}\n{VS}vip_nmask = {}", mask(prefix));
    let _ = writeln!(out, "{VS}port = {}", s.port);
    if let Some(m) = s.fwmark {
        let _ = writeln!(out, "{VS}fwmark = {m}");
    }
    let proto = if s.protocol == Protocol::Udp { "udp" } else { "tcp" };
    let _ = writeln!(out, "{VS}protocol = {proto}\n{VS}scheduler = {}", s.scheduler.name());
    if let Some(p) = s.persistence_s {
        let _ = writeln!(out, "{VS}persistent = {}", super::whole_seconds(p));
        if let Some(IpAddr::V4(m)) = s.netmask.filter(|m| *m != IpAddr::V4(Ipv4Addr::BROADCAST)) {
            let _ = writeln!(out, "{VS}pmask = {m}");
        }
    }
    if !s.flags.is_empty() {
        let _ = writeln!(out, "{VS}# flags {:?}: lvs.cf has no scheduler flags", s.flags);
    }
    let _ = writeln!(out, "{VS}load_monitor = none");
    check(out, s.check.as_ref(), s.port);
    for rs in &s.real_servers {
        let Some(srv) = server(topo, &rs.server) else {
            let _ = writeln!(out, "{VS}# real server {:?}: no server of that name", rs.server);
            continue;
        };
        if srv.address.is_ipv6() {
            let _ = writeln!(
                out,
                "{VS}# real server {} ({}) not written: piranha is IPv4 only",
                srv.name, srv.address
            );
            continue;
        }
        let _ = writeln!(out, "{VS}server {} {{\n{RS}address = {}\n{RS}active = 1", srv.name, srv.address);
        let port = s.real_port(rs);
        if port != s.port {
            let _ = writeln!(out, "{RS}port = {port}");
        }
        let _ = writeln!(out, "{RS}weight = {}", rs.weight);
        if rs.upper != 0 || rs.lower != 0 {
            let _ = writeln!(out, "{RS}# thresholds -x {} -y {}: lvs.cf has none", rs.upper, rs.lower);
        }
        let _ = writeln!(out, "{VS}}}");
    }
    out.push_str("}\n");
}

/// nanny's lines: `timeout`, `reentry`, `quiesce_server`, then `send`, `expect`,
/// `use_regex`, `send_program` as the check has them.
fn check(out: &mut String, check: Option<&HealthCheck>, port: u16) {
    let nanny = check.filter(|c| c.checker == Checker::Nanny);
    if let Some(c) = check.filter(|c| c.checker != Checker::Nanny) {
        let _ = writeln!(
            out,
            "{VS}# a {:?} check in the topology: lvsd runs nanny, with its defaults here",
            c.checker
        );
    }
    let cfg = nanny.map(HealthCheck::config).unwrap_or_else(sim_core::ha::HealthCheckConfig::nanny);
    let reentry = nanny.and_then(|c| c.reentry_s).unwrap_or(NANNY_REENTRY_S);
    let quiesce = u8::from(cfg.on_failure == sim_core::ha::OnFailure::Quiesce);
    let _ = writeln!(out, "{VS}timeout = {}", cfg.timeout.as_secs_f64().round());
    let _ = writeln!(out, "{VS}reentry = {}", reentry.round());
    let _ = writeln!(out, "{VS}quiesce_server = {quiesce}");
    match nanny.map(|c| &c.kind) {
        Some(CheckKind::SendExpect { send, expect, use_regex, send_program, .. }) => {
            if let Some(x) = send {
                let _ = writeln!(out, "{VS}send = \"{}\"", escape(x));
            }
            if let Some(x) = expect {
                let _ = writeln!(out, "{VS}expect = \"{}\"", escape(x));
                let _ = writeln!(out, "{VS}use_regex = {}", u8::from(*use_regex));
            }
            if let Some(x) = send_program {
                let _ = writeln!(out, "{VS}send_program = \"{}\"", escape(x));
            }
        }
        Some(CheckKind::Negotiate { request, receive, .. }) => {
            let path = if request.starts_with('/') { request.clone() } else { format!("/{request}") };
            let _ = writeln!(out, "{VS}send = \"{}\"", escape(&format!("GET {path} HTTP/1.0\r\n\r\n")));
            let _ = writeln!(out, "{VS}expect = \"{}\"", escape(receive.as_deref().unwrap_or("HTTP")));
            let _ = writeln!(out, "{VS}use_regex = 0");
        }
        // Without send, expect or a program, nanny on port 80 sends `GET / HTTP/1.0` and
        // expects `HTTP` (nanny.c main()): an empty send keeps it a connect check.
        _ if port == 80 => {
            let _ = writeln!(out, "{VS}send = \"\"");
        }
        _ => {}
    }
}

/// A string as lvs.cf quotes it: nanny's `convert_str()` turns `\\`, `\r`, `\n`, `\t`
/// back into the bytes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}
