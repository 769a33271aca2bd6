//! `keepalived.conf`: virtual servers with their checkers, and with a VRRP group one file
//! per director holding its `vrrp_instance`s (state and priority differ per member).

use std::fmt::Write as _;
use std::net::IpAddr;

use sim_core::ha::{CheckKind as SimKind, HealthCheckConfig, OnFailure, SyncMode, VrrpConfig};

use super::{
    Group, Target, expanded, forwarding_name, secs, server, service_vips, sync_sysctls, sysctls,
    whole_seconds,
};
use lvs_ipvs::{Forwarding, Protocol, SchedFlag};

use crate::{CheckKind, Director, Failover, Fallback, RealServer, Service, Side, Topology};

/// `keepalived.conf` for the director(s): a `virtual_server` block per service
/// (`delay_loop`, `lb_algo`, `lb_kind`, `persistence_timeout`, `protocol`, `sorry_server`)
/// with a `real_server` block per real server (`weight`, a checker).
///
/// `router_id` is the first director's name; IPVS timeouts go to `lvs_timeouts`. A real
/// server whose forwarding differs from the service's first one gets its own `lvs_method`
/// (keepalived 2.x). A firewall-mark service has no `protocol` (keepalived ignores it,
/// with a warning). A service without a `check` gets no checker: keepalived then keeps
/// every real server, as the simulation does. One with a check gets `delay_loop` (its
/// interval), and per real server its timeout, retries, `inhibit_on_failure` when
/// quiescent, and a `TCP_CHECK`, an `HTTP_GET` (`SSL_GET` on port 443, the expected
/// string as `regex`) or for UDP a `UDP_CHECK` with `require_reply`.
///
/// Comments carry what keepalived.conf has no keyword for and the importer reads back:
/// `! Director NAME (ADDRESS)` before each director's services, the topology's
/// description, and the sysctls to run.
///
/// With a fail-over group ([`crate::Ha`]) or an ECMP tier ([`crate::Ecmp`]) each
/// director needs its own file ([`keepalived_for`]); this returns the primary's (the
/// tier's first member's).
pub fn keepalived(topo: &Topology, target: Target) -> String {
    let topo = expanded(topo);
    if let Some(g) = Group::of(&topo) {
        return conf_for(&topo, g.members[0], target);
    }
    if let Some(first) = topo
        .ecmp
        .as_ref()
        .and_then(|e| topo.directors.iter().position(|d| Some(&d.name) == e.directors.first()))
    {
        return conf_for(&topo, first, target);
    }
    let mut out = header(&topo, None, target);
    if let Some(d) = topo.directors.first() {
        global_defs(&mut out, d, &[]);
    }
    for director in &topo.directors {
        director_body(&mut out, &topo, director, &[], target, |_| {});
    }
    out
}

/// One director's `keepalived.conf` (by name): its virtual servers and, as a member of a
/// VRRP group, its `vrrp_instance`s (`state`, `priority`, `advert_int`, `nopreempt` or
/// `preempt_delay`, `authentication`, `virtual_ipaddress` with the services' VIPs, a
/// `vrrp_sync_group` and `track_interface` with two interfaces) and `lvs_sync_daemon`
/// when the group syncs. `None` if there is no director of that name.
pub fn keepalived_for(topo: &Topology, director: &str, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let d = topo.directors.iter().position(|d| d.name == director)?;
    Some(conf_for(&topo, d, target))
}

/// lvsim's comment that carries a director's ECMP tier (the router's configuration, in the
/// scenario format's notation).
pub(crate) const ECMP_TIER: &str = "ECMP tier: ";

/// What every file assumes of keepalived, for the header.
pub(super) fn assumed(target: Target) -> String {
    format!(
        "keepalived {} keywords (lvs_method per real_server, lvs_sync_daemon, lvs_timeouts, regex in \
         HTTP_GET/SSL_GET, UDP_CHECK with require_reply)",
        target.keepalived_version()
    )
}

/// The header, the director the file is for, and the topology's description (each line
/// a comment, so that the importer reads it back).
fn header(topo: &Topology, director: Option<&str>, target: Target) -> String {
    let mut out = target.header("!", "keepalived.conf", &[&assumed(target)]);
    if let Some(d) = director {
        let _ = writeln!(out, "! for director {d}");
    }
    if !topo.description.is_empty() {
        for line in topo.description.lines() {
            out.push('!');
            if !line.is_empty() {
                out.push(' ');
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn global_defs(out: &mut String, d: &Director, extra: &[String]) {
    out.push_str("\nglobal_defs {\n");
    let _ = writeln!(out, "    router_id {}", d.name);
    let t = &d.timeouts;
    let parts: Vec<String> = [("tcp", t.tcp_s), ("tcpfin", t.tcpfin_s), ("udp", t.udp_s)]
        .iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name} {}", whole_seconds(v))))
        .collect();
    if !parts.is_empty() {
        let _ = writeln!(out, "    lvs_timeouts {}", parts.join(" "));
    }
    for line in extra {
        let _ = writeln!(out, "    {line}");
    }
    out.push_str("}\n");
}

/// `! Director ...`, its sysctls and `notes` as comments, what `before` writes (VRRP
/// instances), its services.
fn director_body(
    out: &mut String,
    topo: &Topology,
    director: &Director,
    notes: &[String],
    target: Target,
    before: impl FnOnce(&mut String),
) {
    let _ = writeln!(out, "\n! Director {} ({})", director.name, director.address);
    for line in sysctls(director) {
        let _ = writeln!(out, "! also run: sysctl -w {line}");
    }
    if let Some(e) = topo.ecmp.as_ref().filter(|e| e.directors.contains(&director.name)) {
        // The router's side, which keepalived has no keyword for: read back by the importer.
        let tier = ron::to_string(e).expect("an ECMP tier serialises");
        let _ = writeln!(out, "! {ECMP_TIER}{tier}");
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    before(out);
    for service in &director.services {
        out.push('\n');
        virtual_server(out, topo, service, target);
    }
}

/// One director's file; `d` indexes the expanded topology's directors.
fn conf_for(topo: &Topology, d: usize, target: Target) -> String {
    let director = &topo.directors[d];
    let mut out = header(topo, Some(&director.name), target);
    let group = Group::of(topo).filter(|g| g.members.contains(&d));
    let Some(g) = group else {
        if let Some(Err(e)) = topo.ha.as_ref().map(|h| h.config(&topo.directors)) {
            let _ = writeln!(out, "! {e}: no vrrp_instance written");
        }
        global_defs(&mut out, director, &[]);
        director_body(&mut out, topo, director, &[], target, |_| {});
        return out;
    };
    let k = g.members.iter().position(|&m| m == d).expect("a member");
    let mut extra = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let vrrp = match (&g.cfg.failover, &g.ha.failover) {
        (sim_core::ha::Failover::Vrrp(v), Failover::Vrrp { virtual_router_id, auth_pass, .. }) => {
            Some((v, *virtual_router_id, auth_pass.as_deref()))
        }
        _ => None,
    };
    if let Some((v, _, _)) = vrrp {
        if v.version == 3 {
            extra.push("vrrp_version 3".to_owned());
        }
        if let Some(sync) = g.ha.sync.as_ref().filter(|s| s.mode == crate::SyncMode::MasterBackup) {
            extra.push(format!(
                "lvs_sync_daemon {} VI_1 id {} maxlen {}",
                g.ha.sync_interface(),
                sync.syncid,
                sync.max_len
            ));
        }
    } else {
        notes.push(format!(
            "! heartbeat moves the VIP of this group ({}): see ha.cf and haresources; this file only \
             checks the real servers",
            g.names(topo)
        ));
    }
    if let Some(s) = &g.cfg.sync {
        for line in sync_sysctls(s) {
            notes.push(format!("! also run: sysctl -w {line}"));
        }
        if vrrp.is_some() {
            notes.push(match s.mode {
                SyncMode::MasterBackup => {
                    "! connection sync: keepalived runs the master daemon on MASTER, the backup daemon on BACKUP"
                        .to_owned()
                }
                SyncMode::PeerToPeer => "! connection sync peer to peer: keepalived runs one role at a time; \
                     start both daemons with ipvsadm --start-daemon (see ipvsadm.sh) instead of lvs_sync_daemon"
                    .to_owned(),
            });
        }
    }
    global_defs(&mut out, director, &extra);
    director_body(&mut out, topo, director, &notes, target, |out| {
        if let Some((v, vrid, pass)) = vrrp {
            vrrp_instances(out, topo, &g, k, v, vrid, pass);
        }
    });
    out
}

/// The member's `vrrp_instance`s (one per interface that has an address to move; each
/// tracks the group's other interfaces) and, with two, their sync group.
///
/// keepalived warns about an instance without an address ("No VIP specified"): a side
/// with nothing to move (the internal side of a direct-routing group) gets no instance of
/// its own; the other instance's `track_interface` watches it, which is what the
/// simulated instance on that side does (a fault there fails the director over).
fn vrrp_instances(
    out: &mut String,
    topo: &Topology,
    g: &Group<'_>,
    k: usize,
    v: &VrrpConfig,
    vrid: u8,
    pass: Option<&str>,
) {
    let director = &topo.directors[g.members[k]];
    let nat_gateway = director
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .any(|rs| rs.forwarding == Forwarding::Masq)
        .then(|| topo.directors[g.members[0]].address);
    let only = v.interfaces.len() == 1;
    let sides: Vec<(Side, Vec<(IpAddr, String)>)> = v
        .interfaces
        .iter()
        .map(|&side| {
            let side = Side::from(side);
            let mut addrs: Vec<(IpAddr, String)> = Vec::new();
            if side == Side::External || only {
                for vip in service_vips(&director.services) {
                    let a = format!("{} dev {}", prefixed(vip, g.ha.vip_prefix), g.ha.external_interface);
                    addrs.push((vip, a));
                }
            }
            if let Some(gw) = nat_gateway
                && (side == Side::Internal || only)
            {
                addrs
                    .push((gw, format!("{} dev {}", prefixed(gw, g.ha.vip_prefix), g.ha.internal_interface)));
            }
            (side, addrs)
        })
        .collect();
    let written: Vec<&(Side, Vec<(IpAddr, String)>)> =
        match sides.iter().filter(|(_, a)| !a.is_empty()).count() {
            0 => sides.iter().collect(),
            _ => sides.iter().filter(|(_, a)| !a.is_empty()).collect(),
        };
    if written.len() > 1 {
        let _ = writeln!(out, "\nvrrp_sync_group VG_1 {{\n    group {{");
        for i in 1..=written.len() {
            let _ = writeln!(out, "        VI_{i}");
        }
        out.push_str("    }\n}\n");
    }
    // keepalived requires state BACKUP for nopreempt and preempt_delay; the election then
    // picks the highest priority anyway.
    let all_backup = !v.preempt || v.preempt_delay != lvs_sched::Duration::ZERO;
    let top = v.priorities.iter().copied().max().unwrap_or(0);
    let master = v.priorities.iter().position(|&p| p == top) == Some(k);
    for (i, (side, addrs)) in written.into_iter().enumerate() {
        let _ = writeln!(out, "\nvrrp_instance VI_{} {{", i + 1);
        let state = if master && !all_backup { "MASTER" } else { "BACKUP" };
        let _ = writeln!(out, "    state {state}");
        let _ = writeln!(out, "    interface {}", g.ha.interface(*side));
        let _ = writeln!(out, "    virtual_router_id {}", u16::from(vrid) + i as u16);
        let _ = writeln!(out, "    priority {}", v.priorities[k]);
        let _ = writeln!(out, "    advert_int {}", secs(v.advert_int));
        if !v.preempt {
            out.push_str("    nopreempt\n");
        } else if v.preempt_delay != lvs_sched::Duration::ZERO {
            let _ = writeln!(out, "    preempt_delay {}", secs(v.preempt_delay));
        }
        if !only {
            let _ = writeln!(out, "    track_interface {{");
            for (other, _) in sides.iter().filter(|(o, _)| o != side) {
                let _ = writeln!(out, "        {}", g.ha.interface(*other));
            }
            out.push_str("    }\n");
        }
        addresses(out, addrs.clone(), pass);
        out.push_str("}\n");
    }
    if nat_gateway.is_some() {
        let _ = writeln!(
            out,
            "! NAT: the real servers' gateway {} ({}'s address) moves with the VIP; give each \
             director another fixed address",
            topo.directors[g.members[0]].address, topo.directors[g.members[0]].name
        );
    }
}

/// An instance's `authentication` and addresses. An instance is of one address family,
/// that of its first address; keepalived refuses the others in `virtual_ipaddress`, but
/// moves them as `virtual_ipaddress_excluded`. Over IPv6 VRRP is version 3, which has no
/// authentication.
fn addresses(out: &mut String, addrs: Vec<(IpAddr, String)>, pass: Option<&str>) {
    let v6 = addrs.first().is_some_and(|(a, _)| a.is_ipv6());
    match pass {
        Some(p) if v6 => {
            let _ = writeln!(out, "    {V6_NO_AUTH}{p}");
        }
        Some(p) => {
            let _ =
                writeln!(out, "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}");
        }
        None => {}
    }
    let (same, other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|(a, _)| a.is_ipv6() == v6);
    if same.is_empty() {
        out.push_str("    ! no address moves on this side; the instance tracks the interface\n");
    }
    for (block, list) in [("virtual_ipaddress", same), ("virtual_ipaddress_excluded", other)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {block} {{");
        for (_, a) in list {
            let _ = writeln!(out, "        {a}");
        }
        out.push_str("    }\n");
    }
}

/// The comment that replaces `authentication` in an IPv6 instance, followed by the
/// password (the importer reads it back).
pub(crate) const V6_NO_AUTH: &str =
    "! VRRP over IPv6 is version 3, which has no authentication; not written: auth_pass ";

/// `ADDR/PREFIX` (IPv6: /64).
pub(super) fn prefixed(a: IpAddr, v4_prefix: u8) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}/{v4_prefix}"),
        IpAddr::V6(_) => format!("{a}/64"),
    }
}

/// One `virtual_server` block.
fn virtual_server(out: &mut String, topo: &Topology, service: &Service, target: Target) {
    match (service.fwmark, service.vip) {
        (Some(mark), _) => {
            let _ = writeln!(out, "virtual_server fwmark {mark} {{");
        }
        (None, Some(vip)) => {
            let _ = writeln!(out, "virtual_server {vip} {} {{", service.port);
        }
        (None, None) => {
            let _ = writeln!(out, "! a service with neither vip nor fwmark is left out");
            return;
        }
    }
    let check = service.check.as_ref().map(|c| (c, c.config()));
    let kind = service.real_servers.first().map_or(Forwarding::Masq, |rs| rs.forwarding);
    if let Some((_, c)) = &check {
        let _ = writeln!(out, "    delay_loop {}", secs(c.interval));
    }
    let _ = writeln!(out, "    lb_algo {}", service.scheduler.name());
    let _ = writeln!(out, "    lb_kind {}", forwarding_name(kind));
    if let Some(p) = service.persistence_s {
        let _ = writeln!(out, "    persistence_timeout {}", whole_seconds(p));
    }
    if let Some(mask) = service.netmask {
        // keepalived's pgr_handler() reads an IPv6 granularity as a prefix length (1..128).
        let g = match mask {
            IpAddr::V4(m) => m.to_string(),
            IpAddr::V6(m) => u128::from(m).leading_ones().to_string(),
        };
        let _ = writeln!(out, "    persistence_granularity {g}");
    }
    for flag in &service.flags {
        let _ = writeln!(out, "    {}", flag.sched_flag().map_or("ops", SchedFlag::name));
    }
    // keepalived ignores (and warns about) a protocol in a firewall-mark service: the
    // packets' own protocol is the service's.
    if service.fwmark.is_none() {
        let _ = writeln!(out, "    protocol {}", service.protocol.name());
    }
    if check.is_none() {
        out.push_str(
            "    ! no health check, as simulated: keepalived keeps every real server; add a checker to \
             each real_server to have it checked\n",
        );
    }
    if let Some(fb) = check.as_ref().and_then(|(c, _)| c.fallback.as_ref()) {
        sorry_server(out, topo, service, fb, kind);
    }
    for rs in &service.real_servers {
        let check = check.as_ref().map(|(c, cfg)| (&c.kind, cfg));
        real_server(out, topo, service, rs, kind, check, target);
    }
    out.push_str("}\n");
}

/// `sorry_server` (and its method when it differs from `lb_kind`).
fn sorry_server(out: &mut String, topo: &Topology, service: &Service, fb: &Fallback, kind: Forwarding) {
    let Some(s) = server(topo, &fb.server) else {
        let _ = writeln!(out, "    ! fallback {:?}: no server of that name", fb.server);
        return;
    };
    let port = match fb.forwarding {
        Forwarding::Masq => fb.port.unwrap_or(service.port),
        _ => service.port,
    };
    let _ = writeln!(out, "    sorry_server {} {port}", s.address);
    if fb.forwarding != kind {
        let _ = writeln!(out, "    sorry_server_lvs_method {}", forwarding_name(fb.forwarding));
    }
}

/// One `real_server` block with its checker.
fn real_server(
    out: &mut String,
    topo: &Topology,
    service: &Service,
    rs: &RealServer,
    kind: Forwarding,
    check: Option<(&CheckKind, &HealthCheckConfig)>,
    target: Target,
) {
    let Some(s) = server(topo, &rs.server) else {
        let _ = writeln!(out, "\n    ! real server {:?}: no server of that name", rs.server);
        return;
    };
    let port = service.real_port(rs);
    let _ = writeln!(out, "\n    real_server {} {port} {{", s.address);
    let _ = writeln!(out, "        weight {}", rs.weight);
    if rs.weight == 0 && !target.keepalived_keeps_weight_zero() {
        let _ = writeln!(
            out,
            "        ! keepalived {} gives IPVS weight 1 for weight 0 (keepalived issue 1757): set 0 with ipvsadm -e",
            target.keepalived_version()
        );
    }
    if rs.forwarding != kind {
        let _ = writeln!(out, "        lvs_method {}", forwarding_name(rs.forwarding));
    }
    if rs.upper != 0 {
        let _ = writeln!(out, "        uthreshold {}", rs.upper);
    }
    if rs.lower != 0 {
        let _ = writeln!(out, "        lthreshold {}", rs.lower);
    }
    if let Some((kind, cfg)) = check {
        if cfg.on_failure == OnFailure::Quiesce {
            out.push_str("        inhibit_on_failure\n");
        }
        let check_port = if port != 0 { port } else { service.port };
        if check_port == 0 {
            let _ = writeln!(out, "        {NO_PORT}");
        } else if service.protocol == Protocol::Sctp && service.fwmark.is_none() {
            let _ = writeln!(out, "        {NO_SCTP}");
        } else if service.protocol == Protocol::Udp {
            checker(out, Block::Udp, cfg, check_port);
        } else {
            let block = match (kind, cfg.kind) {
                (CheckKind::Negotiate { request, receive, digest, .. }, SimKind::Negotiate { .. }) => {
                    Block::Http {
                        ssl: check_port == 443,
                        request,
                        receive: receive.as_deref(),
                        digest: digest.as_deref(),
                    }
                }
                _ => Block::Tcp,
            };
            checker(out, block, cfg, check_port);
        }
    }
    out.push_str("    }\n");
}

/// The comment for a checked real server without a port to check (a firewall-mark
/// service's port 0); the importer reads it back as "checked".
pub(crate) const NO_PORT: &str = "! no port to check (port 0): add a checker with a connect_port by hand";

/// The comment for a checked SCTP real server: keepalived has no SCTP checker, and a
/// `TCP_CHECK` would fail on a server that listens on SCTP only. The importer reads it
/// back as "checked".
pub(crate) const NO_SCTP: &str =
    "! keepalived has no SCTP checker (a TCP_CHECK fails on an SCTP-only server): add a MISC_CHECK by hand";

/// A checker block as the simulated check does it.
enum Block<'a> {
    /// `TCP_CHECK`: a connection.
    Tcp,
    /// `UDP_CHECK` with `require_reply`: the simulated check of a UDP server succeeds when
    /// the server answers (a crashed one answers nothing). Without `require_reply`
    /// keepalived would call silence success and fail only on an ICMP error.
    Udp,
    /// `HTTP_GET` (`SSL_GET`): the page, its digest or status 200, `regex` for the
    /// expected string (ldirectord's `receive` is a regular expression too).
    Http { ssl: bool, request: &'a str, receive: Option<&'a str>, digest: Option<&'a str> },
}

/// A real server's checker block.
fn checker(out: &mut String, block: Block<'_>, cfg: &HealthCheckConfig, port: u16) {
    // ldirectord retries at the next interval: keepalived's delay_before_retry says so.
    let delay = cfg.delay_before_retry.unwrap_or(cfg.interval);
    let common = format!(
        "            connect_timeout {}\n            retry {}\n            delay_before_retry {}\n            connect_port {port}\n",
        secs(cfg.timeout),
        cfg.retries,
        secs(delay)
    );
    match block {
        Block::Http { ssl, request, receive, digest } => {
            let name = if ssl { "SSL_GET" } else { "HTTP_GET" };
            let path = if request.starts_with('/') { request.to_owned() } else { format!("/{request}") };
            let _ = writeln!(out, "        {name} {{\n            url {{\n                path {path}");
            match digest {
                Some(d) => {
                    let _ = writeln!(out, "                digest {}", d.to_ascii_lowercase());
                }
                None => out.push_str("                status_code 200\n"),
            }
            if let Some(r) = receive {
                let _ = writeln!(out, "                regex \"{r}\"");
            }
            out.push_str("            }\n");
        }
        Block::Tcp => out.push_str("        TCP_CHECK {\n"),
        Block::Udp => out.push_str("        UDP_CHECK {\n"),
    }
    out.push_str(&common);
    if matches!(block, Block::Udp) {
        out.push_str("            require_reply\n");
    }
    out.push_str("        }\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str) -> Topology {
        crate::matrix::topologies().into_iter().find(|(n, _)| n == name).expect("a matrix case").1
    }

    #[test]
    fn checkers_as_the_simulation_checks() {
        let conf = keepalived(
            &case("single-every-keepalived-checker-sorry-server-mixed-methods"),
            Target::default(),
        );
        for part in [
            // A negotiate check's expected string is keepalived's regex.
            "        HTTP_GET {\n            url {\n                path /status\n                status_code 200\n                regex \"up|ok\"\n            }\n",
            "    sorry_server 10.0.0.99 80\n    sorry_server_lvs_method DR\n",
            "        SSL_GET {\n            url {\n                path /\n                digest 9b3a0c85a887a256d6939da88aabd8cd\n            }\n",
            // UDP: a reply is required, as the simulated check needs an answer.
            "        UDP_CHECK {\n            connect_timeout 1.5\n            retry 1\n            delay_before_retry 1\n            connect_port 53\n            require_reply\n        }\n",
            // A firewall mark: no protocol (keepalived warns about one).
            "virtual_server fwmark 12 {\n    delay_loop 10\n    lb_algo mh\n    lb_kind NAT\n    mh-port\n\n",
        ] {
            assert!(conf.contains(part), "missing {part:?} in\n{conf}");
        }
        assert!(!conf.contains("! receive"), "no comment says keepalived cannot match a string");
    }

    #[test]
    fn weight_zero_is_flagged_for_the_keepalived_that_gives_weight_one() {
        let t = case("single-every-keepalived-checker-sorry-server-mixed-methods");
        let comment = "gives IPVS weight 1 for weight 0";
        let old = keepalived(&t, Target::Debian11);
        assert_eq!(old.matches(comment).count(), 1, "{old}");
        assert!(old.contains("! keepalived 2.1.5 gives IPVS weight 1 for weight 0"));
        assert!(!keepalived(&t, Target::Debian12).contains(comment));
    }

    #[test]
    fn ipv6_vrrp_has_no_authentication_and_a_side_without_address_no_instance() {
        let t = case("vrrp-dr-v6-two-interfaces-preempt-delay-auth-sync");
        let conf = keepalived_for(&t, "lb1", Target::default()).unwrap();
        assert!(!conf.contains("authentication {"), "{conf}");
        assert!(conf.contains(&format!("    {V6_NO_AUTH}pw\n")), "{conf}");
        assert_eq!(conf.matches("vrrp_instance").count(), 1, "the internal side moves nothing\n{conf}");
        assert!(
            conf.contains("    track_interface {\n        eth1\n    }\n")
                && !conf.contains("vrrp_sync_group")
        );
        let nat = case("vrrp3-nat-two-interfaces-nopreempt-p2p-three-members");
        let conf = keepalived_for(&nat, "b", Target::default()).unwrap();
        assert_eq!(conf.matches("vrrp_instance").count(), 2, "{conf}");
        assert!(conf.contains("        192.168.1.1/16 dev ens4\n"), "the gateway moves\n{conf}");
    }
}
