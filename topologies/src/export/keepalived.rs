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

use crate::{CheckKind, Director, Failover, Service, Side, Topology};

/// `keepalived.conf` for the director(s): a `virtual_server` block per service
/// (`delay_loop`, `lb_algo`, `lb_kind`, `persistence_timeout`, `protocol`, `sorry_server`)
/// with a `real_server` block per real server (`weight`, a checker).
///
/// `router_id` is the first director's name; IPVS timeouts go to `lvs_timeouts`. A real
/// server whose forwarding differs from the service's first one gets its own `lvs_method`
/// (keepalived 2.x). UDP real servers get no checker (keepalived then treats them as up).
/// A service without a `check` gets keepalived's usual `delay_loop 6` and a 3 s
/// `TCP_CHECK`; one with a check gets its interval, timeout, retries, `inhibit_on_failure`
/// when quiescent, and a `TCP_CHECK` or `HTTP_GET` (`SSL_GET` on port 443).
///
/// With a fail-over group ([`crate::Ha`]) each director needs its own file
/// ([`keepalived_for`]); this returns the primary's.
pub fn keepalived(topo: &Topology, target: Target) -> String {
    let topo = expanded(topo);
    if let Some(g) = Group::of(&topo) {
        return conf_for(&topo, g.members[0], target);
    }
    let mut out = header(&topo, None, target);
    if let Some(d) = topo.directors.first() {
        global_defs(&mut out, d, &[]);
    }
    for director in &topo.directors {
        director_body(&mut out, &topo, director, &[], |_| {});
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

fn header(topo: &Topology, director: Option<&str>, target: Target) -> String {
    let mut out = target.header("!", "keepalived.conf", &[]);
    if let Some(d) = director {
        let _ = writeln!(out, "! for director {d}");
    }
    if !topo.description.is_empty() {
        let _ = writeln!(out, "! {}", topo.description);
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
    before: impl FnOnce(&mut String),
) {
    let _ = writeln!(out, "\n! Director {} ({})", director.name, director.address);
    for line in sysctls(director) {
        let _ = writeln!(out, "! also run: sysctl -w {line}");
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    before(out);
    for service in &director.services {
        out.push('\n');
        virtual_server(out, topo, service);
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
        director_body(&mut out, topo, director, &[], |_| {});
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
    director_body(&mut out, topo, director, &notes, |out| {
        if let Some((v, vrid, pass)) = vrrp {
            vrrp_instances(out, topo, &g, k, v, vrid, pass);
        }
    });
    out
}

/// The member's `vrrp_instance`s (one per interface) and, with two, their sync group.
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
    let names: Vec<String> = (1..=v.interfaces.len()).map(|i| format!("VI_{i}")).collect();
    if names.len() > 1 {
        let _ = writeln!(out, "\nvrrp_sync_group VG_1 {{\n    group {{");
        for n in &names {
            let _ = writeln!(out, "        {n}");
        }
        out.push_str("    }\n}\n");
    }
    // keepalived requires state BACKUP for nopreempt and preempt_delay; the election then
    // picks the highest priority anyway.
    let all_backup = !v.preempt || v.preempt_delay != lvs_sched::Duration::ZERO;
    let top = v.priorities.iter().copied().max().unwrap_or(0);
    let master = v.priorities.iter().position(|&p| p == top) == Some(k);
    let nat_gateway = director
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .any(|rs| rs.forwarding == Forwarding::Masq)
        .then(|| topo.directors[g.members[0]].address);
    for (i, (&side, name)) in v.interfaces.iter().zip(&names).enumerate() {
        let side = Side::from(side);
        let iface = g.ha.interface(side);
        let _ = writeln!(out, "\nvrrp_instance {name} {{");
        let state = if master && !all_backup { "MASTER" } else { "BACKUP" };
        let _ = writeln!(out, "    state {state}");
        let _ = writeln!(out, "    interface {iface}");
        let _ = writeln!(out, "    virtual_router_id {}", u16::from(vrid) + i as u16);
        let _ = writeln!(out, "    priority {}", v.priorities[k]);
        let _ = writeln!(out, "    advert_int {}", secs(v.advert_int));
        if !v.preempt {
            out.push_str("    nopreempt\n");
        } else if v.preempt_delay != lvs_sched::Duration::ZERO {
            let _ = writeln!(out, "    preempt_delay {}", secs(v.preempt_delay));
        }
        if names.len() > 1 {
            let _ = writeln!(out, "    track_interface {{");
            for (&other, _) in v.interfaces.iter().zip(&names).filter(|(_, n)| *n != name) {
                let _ = writeln!(out, "        {}", g.ha.interface(other.into()));
            }
            out.push_str("    }\n");
        }
        if let Some(p) = pass {
            let _ =
                writeln!(out, "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}");
        }
        let only = v.interfaces.len() == 1;
        let mut addrs: Vec<String> = Vec::new();
        if side == Side::External || only {
            for vip in service_vips(&director.services) {
                addrs.push(format!("{} dev {}", prefixed(vip, g.ha.vip_prefix), g.ha.external_interface));
            }
        }
        if let Some(gw) = nat_gateway
            && (side == Side::Internal || only)
        {
            addrs.push(format!("{} dev {}", prefixed(gw, g.ha.vip_prefix), g.ha.internal_interface));
        }
        if addrs.is_empty() {
            out.push_str("    ! no address moves on this side; the instance tracks the interface\n");
        } else {
            out.push_str("    virtual_ipaddress {\n");
            for a in addrs {
                let _ = writeln!(out, "        {a}");
            }
            out.push_str("    }\n");
        }
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

/// `ADDR/PREFIX` (IPv6: /64).
pub(super) fn prefixed(a: IpAddr, v4_prefix: u8) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}/{v4_prefix}"),
        IpAddr::V6(_) => format!("{a}/64"),
    }
}

/// One `virtual_server` block.
fn virtual_server(out: &mut String, topo: &Topology, service: &Service) {
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
    let delay_loop = check.as_ref().map_or_else(|| "6".to_owned(), |(_, c)| secs(c.interval));
    let _ = writeln!(out, "    delay_loop {delay_loop}");
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
    let _ = writeln!(out, "    protocol {}", service.protocol.name());
    if let Some(fb) = check.as_ref().and_then(|(c, _)| c.fallback.as_ref()) {
        match server(topo, &fb.server) {
            Some(s) => {
                let port = match fb.forwarding {
                    Forwarding::Masq => fb.port.unwrap_or(service.port),
                    _ => service.port,
                };
                let _ = writeln!(out, "    sorry_server {} {port}", s.address);
                if fb.forwarding != kind {
                    let _ = writeln!(out, "    sorry_server_lvs_method {}", forwarding_name(fb.forwarding));
                }
            }
            None => {
                let _ = writeln!(out, "    ! fallback {:?}: no server of that name", fb.server);
            }
        }
    }
    for rs in &service.real_servers {
        let Some(s) = server(topo, &rs.server) else {
            let _ = writeln!(out, "\n    ! real server {:?}: no server of that name", rs.server);
            continue;
        };
        let port = service.real_port(rs);
        let _ = writeln!(out, "\n    real_server {} {port} {{", s.address);
        let _ = writeln!(out, "        weight {}", rs.weight);
        if rs.forwarding != kind {
            let _ = writeln!(out, "        lvs_method {}", forwarding_name(rs.forwarding));
        }
        if rs.upper != 0 {
            let _ = writeln!(out, "        uthreshold {}", rs.upper);
        }
        if rs.lower != 0 {
            let _ = writeln!(out, "        lthreshold {}", rs.lower);
        }
        if check.as_ref().is_some_and(|(_, c)| c.on_failure == OnFailure::Quiesce) {
            out.push_str("        inhibit_on_failure\n");
        }
        let check_port = if port != 0 { port } else { service.port };
        if service.protocol == Protocol::Udp && service.fwmark.is_none() {
            let _ = writeln!(out, "        ! UDP: no TCP_CHECK; add a MISC_CHECK to health-check it");
        } else if check_port == 0 {
            let _ = writeln!(out, "        ! no port to check: add a checker by hand");
        } else {
            match &check {
                None => {
                    let _ = writeln!(
                        out,
                        "        TCP_CHECK {{\n            connect_timeout 3\n            connect_port {check_port}\n        }}"
                    );
                }
                Some((c, cfg)) => checker(out, &c.kind, cfg, check_port),
            }
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
}

/// A real server's `TCP_CHECK` or `HTTP_GET`/`SSL_GET` block.
fn checker(out: &mut String, kind: &CheckKind, cfg: &HealthCheckConfig, port: u16) {
    // ldirectord retries at the next interval: keepalived's delay_before_retry says so.
    let delay = cfg.delay_before_retry.unwrap_or(cfg.interval);
    let common = format!(
        "            connect_timeout {}\n            retry {}\n            delay_before_retry {}\n            connect_port {port}\n",
        secs(cfg.timeout),
        cfg.retries,
        secs(delay)
    );
    match (kind, cfg.kind) {
        (CheckKind::Negotiate { request, receive, digest, .. }, SimKind::Negotiate { .. }) => {
            let block = if port == 443 { "SSL_GET" } else { "HTTP_GET" };
            let path = if request.starts_with('/') { request.clone() } else { format!("/{request}") };
            let _ = writeln!(out, "        {block} {{\n            url {{\n                path {path}");
            match digest {
                Some(d) => {
                    let _ = writeln!(out, "                digest {}", d.to_ascii_lowercase());
                }
                None => out.push_str("                status_code 200\n"),
            }
            out.push_str("            }\n");
            if let Some(r) = receive {
                let _ = writeln!(
                    out,
                    "            ! receive {r:?}: keepalived compares a digest (genhash), not a string"
                );
            }
            out.push_str(&common);
            out.push_str("        }\n");
        }
        _ => {
            out.push_str("        TCP_CHECK {\n");
            out.push_str(&common);
            out.push_str("        }\n");
        }
    }
}
