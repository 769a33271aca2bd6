//! Deployment files from a topology: what to type on the director and the real servers.
//!
//! Each exporter works on the expanded topology ([`Topology::expand`]), so a group's
//! members appear one by one. A topology that does not expand is exported as written,
//! and a real server whose name resolves to no server becomes a comment, so a half-made
//! topology still shows what it would produce.
//!
//! # Files
//! - [`ipvsadm_for`], [`ipvsadm_rules`] ([`ipvsadm_files`]): per director, an idempotent
//!   shell script of sysctls and ipvsadm commands (and the sync daemons), and the
//!   `ipvsadm-restore` rules file that `ipvsadm -S -n` prints once it has run.
//! - [`agent_conf`]: a real server's `feedbackd-agent.conf`.
//! - [`keepalived`], [`keepalived_for`] (`keepalived.rs`): `keepalived.conf`, one per
//!   director with a VRRP group.
//! - [`ldirectord`] (`ldirectord.rs`): `ldirectord.cf`.
//! - [`ha_cf`], [`haresources`] (`heartbeat.rs`): heartbeat's files.
//! - [`files`]: every file that fits the topology, by name, as `lvsim export` writes them.

use std::fmt::Write as _;
use std::net::IpAddr;

use lvs_ipvs::ipvsadm::{Command, default_netmask};
use lvs_ipvs::{DestConfig, Forwarding, Protocol, ServiceConfig, ServiceKey, SvcFlags, Tunnel};

use crate::{Director, Flag, Ha, RealServer, Server, Service, Topology};

#[cfg(test)]
mod dos;
mod heartbeat;
mod keepalived;
mod ldirectord;
pub(crate) mod lvs_cf;
mod target;

pub use heartbeat::{ha_cf, haresources};
pub use keepalived::{keepalived, keepalived_for};
/// lvsim's comments in keepalived.conf that its importer reads back.
pub(crate) mod keepalived_comments {
    pub(crate) use super::keepalived::{ECMP_TIER, NO_PORT, NO_SCTP, V6_NO_AUTH};
}
pub(crate) use ldirectord::SCTP_MARK as LDIRECTORD_SCTP_MARK;
pub use ldirectord::ldirectord;
pub use lvs_cf::lvs_cf;
pub use target::{Target, UnknownTarget};

/// Every deployment file that fits the topology, as `(path in the export directory,
/// text)`: `ipvsadm.sh` and `ipvsadm.rules` (`ipvsadm-NAME.sh`, `ipvsadm-NAME.rules` per
/// director when several directors have services, [`ipvsadm_files`]); `keepalived.conf` (without a fail-over group) or
/// `keepalived-NAME.conf` per director (with a VRRP group or an ECMP tier); `ldirectord.cf` with a
/// heartbeat or active-active group or an ldirectord check (`ldirectord-NAME.cf` per
/// director or group when there are several); `ha.cf` with a heartbeat or active-active
/// group and `haresources` with a heartbeat one; `feedbackd-agent/SERVER.conf` per real
/// server.
pub fn files(topo: &Topology, target: Target) -> Vec<(String, String)> {
    let x = expanded(topo);
    let group = Group::of(&x);
    let mut out = ipvsadm_files(topo, target);
    let vrrp = group.as_ref().map(|g| matches!(g.ha.failover, crate::Failover::Vrrp { .. }));
    let pulse = group.as_ref().is_some_and(|g| matches!(g.ha.failover, crate::Failover::Pulse { .. }));
    match vrrp {
        // The directors of an ECMP tier are machines of their own, each with its own
        // keepalived and the same virtual servers: a file each, as for a VRRP group.
        None if !pulse && x.ecmp.is_none() => {
            out.push(("keepalived.conf".to_owned(), keepalived(topo, target)))
        }
        None if !pulse => {
            for d in &x.directors {
                let text = keepalived_for(topo, &d.name, target).expect("a director of the topology");
                out.push((format!("keepalived-{}.conf", d.name), text));
            }
        }
        Some(true) => {
            for d in &x.directors {
                let text = keepalived_for(topo, &d.name, target).expect("a director of the topology");
                out.push((format!("keepalived-{}.conf", d.name), text));
            }
        }
        _ => {}
    }
    let ldirectord_checks = x
        .directors
        .iter()
        .flat_map(|d| &d.services)
        .any(|s| s.check.as_ref().is_some_and(|c| c.checker == crate::Checker::Ldirectord));
    if (vrrp == Some(false) && !pulse) || ldirectord_checks {
        for d in ldirectord_units(&x) {
            let text = ldirectord(topo, &x.directors[d].name, target).expect("a director of the topology");
            out.push((ldirectord_file(&x, d), text));
        }
    }
    out.extend(ha_cf(topo, target).map(|t| ("ha.cf".to_owned(), t)));
    out.extend(lvs_cf(topo, target).map(|t| ("lvs.cf".to_owned(), t)));
    out.extend(haresources(topo, target).map(|t| ("haresources".to_owned(), t)));
    for s in &x.servers {
        if let Some(conf) = agent_conf(topo, &s.name, target) {
            out.push((format!("feedbackd-agent/{}.conf", s.name), conf));
        }
    }
    out
}

/// The directors that each need their own configuration: the group's primary for the
/// whole group, and every director outside it.
fn units(topo: &Topology) -> Vec<usize> {
    let group = Group::of(topo);
    (0..topo.directors.len())
        .filter(|d| group.as_ref().is_none_or(|g| !g.members.contains(d) || g.members[0] == *d))
        .collect()
}

/// The [`units`] that get an ldirectord file: those with services (a director outside
/// the group without any has nothing for ldirectord to do).
fn ldirectord_units(topo: &Topology) -> Vec<usize> {
    units(topo).into_iter().filter(|&d| !topo.directors[d].services.is_empty()).collect()
}

/// The name of director `d`'s (or its group's) ldirectord file: `ldirectord.cf`, or
/// `ldirectord-NAME.cf` (NAME the primary's) when the topology needs several.
fn ldirectord_file(topo: &Topology, d: usize) -> String {
    let units = ldirectord_units(topo);
    if units.len() <= 1 {
        return "ldirectord.cf".to_owned();
    }
    let unit = Group::of(topo).filter(|g| g.members.contains(&d)).map_or(d, |g| g.members[0]);
    format!("ldirectord-{}.cf", topo.directors[unit].name)
}

/// A valid fail-over group of an expanded topology.
struct Group<'a> {
    /// As written.
    ha: &'a Ha,
    /// As the simulator takes it (every default filled in).
    cfg: sim_core::ha::HaConfig,
    /// Indices of the members, the primary first.
    members: Vec<usize>,
}

impl<'a> Group<'a> {
    /// The topology's group, if it has one and it is valid.
    fn of(topo: &'a Topology) -> Option<Group<'a>> {
        let ha = topo.ha.as_ref()?;
        let cfg = ha.config(&topo.directors).ok()?;
        Some(Group { ha, members: cfg.members.clone(), cfg })
    }

    /// `lb1, lb2`.
    fn names(&self, topo: &Topology) -> String {
        self.members.iter().map(|&m| topo.directors[m].name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Seconds as the configuration files write them: `5`, `0.5`.
fn secs(d: lvs_sched::Duration) -> String {
    d.as_secs_f64().to_string()
}

/// The distinct VIPs of some services, in order.
fn service_vips(services: &[Service]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = Vec::new();
    for vip in services.iter().filter_map(|s| s.vip) {
        if !v.contains(&vip) {
            v.push(vip);
        }
    }
    v
}

/// The sysctls of the sync daemon: its protocol version, and when to send a connection.
fn sync_sysctls(s: &sim_core::ha::SyncConfig) -> Vec<String> {
    vec![
        format!("net.ipv4.vs.sync_version={}", s.version),
        format!("net.ipv4.vs.sync_threshold=\"{} {}\"", s.threshold, s.period),
    ]
}

/// The first director's ipvsadm script ([`ipvsadm_for`]): the group's primary, else the
/// first director with services; a script of comments alone when no director has any.
pub fn ipvsadm(topo: &Topology, target: Target) -> String {
    let x = expanded(topo);
    match director_indices(&x).first() {
        Some(&d) => ipvsadm_script(&x, d, target),
        None => {
            let mut out = String::from("#!/bin/sh\n");
            out.push_str(&target.header("#", "ipvsadm.sh", &[IPVSADM_ASSUMES]));
            out.push_str("# no director has a virtual service: nothing to do\n");
            out
        }
    }
}

/// What the ipvsadm scripts assume of the system.
const IPVSADM_ASSUMES: &str = "ipvsadm 1.31 (package ipvsadm) and sysctl (package procps), run as root";

/// One director's ipvsadm script (by name, after expansion): `None` for a name that is no
/// director, or a director that gets no ipvsadm files (outside the fail-over group and
/// without services).
///
/// The script sets the sysctls the configuration needs (`net.ipv4.ip_forward=1` when a
/// real server is NAT: the director routes the replies; the `expire_nodest_conn` and
/// `expire_quiescent_template` switches when set), starts the sync daemons of a group
/// member, sets the timeouts (`--set`), and adds each service (`ipvsadm -A`) and its real
/// servers (`ipvsadm -a`). It is idempotent: each service is first deleted if present
/// (`ipvsadm -D ... 2>/dev/null || true`, which drops its real servers too) and each sync
/// daemon stopped, so a second run gives the same table; services it does not name are
/// left alone.
pub fn ipvsadm_for(topo: &Topology, director: &str, target: Target) -> Option<String> {
    let x = expanded(topo);
    let d = x.directors.iter().position(|d| d.name == director)?;
    director_indices(&x).contains(&d).then(|| ipvsadm_script(&x, d, target))
}

/// One director's `ipvsadm-restore` rules file (by name, after expansion; `None` as for
/// [`ipvsadm_for`]): after comment lines, what `ipvsadm -S -n` prints once the script has
/// run (services and real servers in ipvsadm's sorted order), plus the real servers'
/// thresholds (`-x`/`-y`), which ipvsadm -S leaves out and ipvsadm-restore takes. Debian's
/// `/etc/init.d/ipvsadm` loads it from [`Target::ipvsadm_rules`] at boot. The sysctls,
/// the timeouts and the sync daemons, which ipvsadm -S does not save, are only in the
/// script.
pub fn ipvsadm_rules(topo: &Topology, director: &str, target: Target) -> Option<String> {
    let x = expanded(topo);
    let d = x.directors.iter().position(|d| d.name == director)?;
    if !director_indices(&x).contains(&d) {
        return None;
    }
    let (script, rules) = ipvsadm_names(&x, d);
    let assumes = format!(
        "Debian's /etc/init.d/ipvsadm loads {} at boot when /etc/default/ipvsadm says AUTO=\"true\"",
        target.ipvsadm_rules()
    );
    let mut out = target.header("#", &rules, &[&assumes]);
    let director = &x.directors[d];
    let _ = writeln!(out, "# Director {} ({})", director.name, director.address);
    let _ = writeln!(
        out,
        "# load with: ipvsadm-restore < {rules} (it clears the whole table first), or install as {}",
        target.ipvsadm_rules()
    );
    out.push_str("# ipvsadm -S -n prints this table without the thresholds (-x, -y)\n");
    let _ = writeln!(out, "# sysctls, timeouts and sync daemons (ipvsadm -S does not save them): {script}");
    let mut ipvs = lvs_ipvs::Ipvs::new(0);
    for cmd in director_commands(&x, director) {
        if let Err(e) = lvs_ipvs::ipvsadm::apply(&mut ipvs, &cmd) {
            let _ = writeln!(out, "# not saved: {cmd}: {e}");
        }
    }
    out.push_str(&lvs_ipvs::ipvsadm::save(&ipvs, true));
    Some(out)
}

/// Every director's ipvsadm script and rules file, as `(file name, text)`: `ipvsadm.sh`
/// and `ipvsadm.rules` when one director gets them, else `ipvsadm-NAME.sh` and
/// `ipvsadm-NAME.rules` per director.
pub fn ipvsadm_files(topo: &Topology, target: Target) -> Vec<(String, String)> {
    let x = expanded(topo);
    let mut out = Vec::new();
    for d in director_indices(&x) {
        let (script, rules) = ipvsadm_names(&x, d);
        let name = &x.directors[d].name;
        out.push((script, ipvsadm_for(topo, name, target).expect("a director with ipvsadm files")));
        out.push((rules, ipvsadm_rules(topo, name, target).expect("a director with ipvsadm files")));
    }
    out
}

/// The names of the directors that get ipvsadm files ([`ipvsadm_files`]), in order: every
/// member of the fail-over group, and every other director with services.
pub fn ipvsadm_directors(topo: &Topology) -> Vec<String> {
    let x = expanded(topo);
    director_indices(&x).into_iter().map(|d| x.directors[d].name.clone()).collect()
}

/// [`ipvsadm_directors`] of an expanded topology, as indices.
fn director_indices(x: &Topology) -> Vec<usize> {
    let group = Group::of(x);
    let member = |d: usize| group.as_ref().is_some_and(|g| g.members.contains(&d));
    (0..x.directors.len()).filter(|&d| member(d) || !x.directors[d].services.is_empty()).collect()
}

/// The script's and the rules file's names for director `d`.
fn ipvsadm_names(x: &Topology, d: usize) -> (String, String) {
    if director_indices(x).len() == 1 {
        return ("ipvsadm.sh".to_owned(), "ipvsadm.rules".to_owned());
    }
    let name = &x.directors[d].name;
    (format!("ipvsadm-{name}.sh"), format!("ipvsadm-{name}.rules"))
}

/// The `-A`/`-a` commands of a director's services (a service without a key, or a real
/// server that names no server, has none).
fn director_commands(x: &Topology, director: &Director) -> Vec<Command> {
    let mut out = Vec::new();
    for service in &director.services {
        let Some(key) = service_key(service, &x.servers) else { continue };
        out.push(Command::AddService(key, service_config(service, &key)));
        for rs in &service.real_servers {
            if let Some(s) = server(x, &rs.server) {
                out.push(Command::AddDest(key, dest_config(service, rs, s.address)));
            }
        }
    }
    out
}

/// Director `d`'s script (see [`ipvsadm_for`]).
fn ipvsadm_script(x: &Topology, d: usize, target: Target) -> String {
    let director = &x.directors[d];
    let (file, rules) = ipvsadm_names(x, d);
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&target.header("#", &file, &[IPVSADM_ASSUMES]));
    out.push_str("set -e\n");
    for line in x.description.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "# Director {} ({})", director.name, director.address);
    out.push_str(
        "# Run as root on it. A second run gives the same table: each service below is deleted\n\
         # first if present; services it does not name are left alone.\n",
    );
    let _ = writeln!(out, "# The same table at boot: {rules}.");
    let mut setup = String::new();
    if let Some(g) = Group::of(x).filter(|g| g.members.contains(&d)) {
        sync_daemons(&mut setup, x, &g, d);
    }
    for line in sysctls(director) {
        let _ = writeln!(setup, "sysctl -w {line}");
    }
    if setup.contains("sysctl -w net.ipv4.vs.") {
        // On a director that has not run ipvsadm since boot, ip_vs is not loaded yet.
        out.push_str("# net.ipv4.vs exists once ip_vs is loaded, which ipvsadm does if need be\n");
        out.push_str("ipvsadm -L -n > /dev/null\n");
    }
    out.push_str(&setup);
    if let Some(set) = set_timeouts(director) {
        let _ = writeln!(out, "ipvsadm {set}");
    }
    for service in &director.services {
        script_service(&mut out, x, service);
    }
    out
}

/// A service's lines of a script: its notes, the delete that makes the script idempotent,
/// `-A`, and an `-a` per real server.
fn script_service(out: &mut String, x: &Topology, service: &Service) {
    for note in service_notes(service) {
        let _ = writeln!(out, "# {note}");
    }
    let Some(key) = service_key(service, &x.servers) else {
        let _ = writeln!(out, "# a service without a VIP or firewall mark: not written");
        return;
    };
    let _ = writeln!(out, "ipvsadm -D {} 2>/dev/null || true", lvs_ipvs::ipvsadm::ServiceArg(&key));
    let _ = writeln!(out, "ipvsadm {}", Command::AddService(key, service_config(service, &key)));
    for rs in &service.real_servers {
        match server(x, &rs.server) {
            Some(s) => {
                let dest = dest_config(service, rs, s.address);
                let _ = writeln!(out, "ipvsadm {}", Command::AddDest(key, dest));
            }
            None => {
                let _ = writeln!(out, "# real server {:?}: no server of that name", rs.server);
            }
        }
    }
}

/// `/etc/feedbackd-agent.conf` for one real server (by name, after expansion), in the
/// original grammar: a `director = DIP` line per director it is a real server of (every
/// member of a fail-over group: the agent reports to each), then a `service = NAME` block
/// per service it serves with `protocol` (`fwmark = MARK` for a firewall-mark service),
/// `port`, `module = cpuload.so` and `forwarding`.
/// `None` for a name that is no server, or a server in no service (a sorry server: an
/// agent would make the master add it as a real server).
///
/// A service is named `http` (port 80), `https` (443), `tcp-PORT`/`udp-PORT`, or
/// `fwmark-MARK`; `port` is the port the server itself listens on, which is what the
/// director's real-server entry shows: 0 in a firewall-mark service unless the real server
/// names a port (`-r ADDR:0`), which feedbackd-agent.conf takes with `fwmark`.
pub fn agent_conf(topo: &Topology, server: &str, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let me = topo.servers.iter().find(|s| s.name == server)?;
    let mut blocks: Vec<String> = Vec::new();
    let mut directors: Vec<&Director> = Vec::new();
    for d in &topo.directors {
        for service in &d.services {
            for rs in service.real_servers.iter().filter(|rs| rs.server == me.name) {
                if !directors.iter().any(|x| x.name == d.name) {
                    directors.push(d);
                }
                let port = service.real_port(rs);
                // A firewall-mark service is matched by its mark; its real servers' port is
                // the one ipvsadm lists (0 unless given).
                let matched = match service.fwmark {
                    Some(mark) => format!("\tfwmark = {mark}\n"),
                    None => format!("\tprotocol = {}\n", service.protocol.name()),
                };
                let block = format!(
                    "service = {}\n{matched}\tport = {port}\n\tmodule = cpuload.so\n\tforwarding = {}\n",
                    agent_service_name(service, port),
                    forwarding_name(rs.forwarding),
                );
                if !blocks.contains(&block) {
                    blocks.push(block);
                }
            }
        }
    }
    if blocks.is_empty() {
        return None;
    }
    let mut out = target.header("#", "feedbackd-agent.conf", &[]);
    for d in directors {
        let _ = writeln!(out, "director = {}", d.address);
    }
    out.extend(blocks);
    Some(out)
}

/// A group member's part of the script: which member it is of which group, and with
/// sync the sysctls and `ipvsadm --start-daemon` lines (master on the primary, backup on
/// the others, both everywhere peer to peer), each daemon stopped first so that a second
/// run starts it again with these settings.
fn sync_daemons(out: &mut String, x: &Topology, g: &Group<'_>, d: usize) {
    let k = g.members.iter().position(|&m| m == d).expect("a member");
    let role = if k == 0 { "the primary" } else { "a backup" };
    let _ = writeln!(out, "# {role} of the group {}: every member has the same services", g.names(x));
    let (Some(s), Some(sync)) = (&g.cfg.sync, &g.ha.sync) else { return };
    // keepalived's lvs_sync_daemon starts the daemons and swaps their roles with the VRRP
    // state: a daemon started here would be in its way. Other groups keep fixed roles,
    // started here.
    let by_keepalived = matches!(g.ha.failover, crate::Failover::Vrrp { .. });
    let prefix = if by_keepalived {
        let _ = writeln!(
            out,
            "# connection sync: keepalived's lvs_sync_daemon starts the daemons and swaps them with the VRRP\n\
             # state (the commented-out lines below are what it runs)"
        );
        "# "
    } else {
        let _ = writeln!(out, "# connection sync: the daemons keep these roles across fail-overs");
        ""
    };
    for line in sync_sysctls(s) {
        let _ = writeln!(out, "sysctl -w {line}");
    }
    let p2p = s.mode == sim_core::ha::SyncMode::PeerToPeer;
    for (role, on) in [("master", k == 0 || p2p), ("backup", k != 0 || p2p)] {
        if on {
            if !by_keepalived {
                let _ = writeln!(out, "ipvsadm --stop-daemon {role} 2>/dev/null || true");
            }
            let _ = writeln!(
                out,
                "{prefix}ipvsadm --start-daemon {role} --mcast-interface {} --syncid {} --sync-maxlen {}",
                g.ha.sync_interface(),
                sync.syncid,
                s.max_len
            );
        }
    }
}

/// The topology expanded, or as written when it does not expand.
fn expanded(topo: &Topology) -> Topology {
    topo.expand().unwrap_or_else(|_| topo.clone())
}

fn server<'a>(topo: &'a Topology, name: &str) -> Option<&'a Server> {
    topo.servers.iter().find(|s| s.name == name)
}

/// `a.b.c.d:port` or `[v6]:port`, as ipvsadm writes them.
pub(crate) fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Seconds as ipvsadm and keepalived take them: whole, and at least 1 (0 would mean
/// "unchanged" to `--set`).
fn whole_seconds(s: f64) -> u64 {
    // Saturating float-to-int conversion; NaN becomes 0, then 1.
    (s.round() as u64).max(1)
}

/// The `sysctl -w` settings a director needs.
fn sysctls(director: &Director) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let nat =
        director.services.iter().flat_map(|s| &s.real_servers).any(|rs| rs.forwarding == Forwarding::Masq);
    if nat {
        v.push("net.ipv4.ip_forward=1".into());
    }
    // The IPVS ones that differ from the kernel's defaults, thresholds before the
    // defence modes: writing a mode runs the defence with the thresholds in force.
    v.extend(director.sysctls().changed().map(|(s, value)| format!("net.ipv4.vs.{s}={value}")));
    v
}

/// `--set tcp tcpfin udp`, 0 for a timeout left at the kernel's value.
fn set_timeouts(director: &Director) -> Option<Command> {
    let t = &director.timeouts;
    if t.tcp_s.is_none() && t.tcpfin_s.is_none() && t.udp_s.is_none() {
        return None;
    }
    let s = |v: Option<f64>| v.map_or(0, whole_seconds);
    let s = |v: Option<f64>| u32::try_from(s(v)).unwrap_or(u32::MAX);
    Some(Command::SetTimeouts(s(t.tcp_s), s(t.tcpfin_s), s(t.udp_s)))
}

/// What an administrator must do beyond these commands for the service to work.
fn service_notes(service: &Service) -> Vec<String> {
    let mut notes = Vec::new();
    let has = |f: Forwarding| service.real_servers.iter().any(|rs| rs.forwarding == f);
    let what = match (service.vip, service.fwmark) {
        (_, Some(mark)) => {
            notes.push(format!("firewall mark {mark}: mark the packets first (iptables -t mangle ... -j MARK --set-mark {mark})"));
            "the VIP".to_owned()
        }
        (Some(vip), None) => vip.to_string(),
        (None, None) => "the VIP".to_owned(),
    };
    if has(Forwarding::DirectRouting) {
        notes.push(format!(
            "direct routing: the real servers hold {what} on lo and must not answer ARP for it"
        ));
    }
    if has(Forwarding::Tunnel) {
        notes.push(format!(
            "tunnelling: the real servers hold {what} on tunl0 and must not answer ARP for it"
        ));
    }
    notes
}

/// The service's key: `-t/-u/--sctp-service VIP:port`, or `-f MARK` (IPv6, `-6`, when
/// its real servers are); `None` for a service with neither (it does not expand).
pub(crate) fn service_key(service: &Service, servers: &[Server]) -> Option<ServiceKey> {
    match (service.fwmark, service.vip) {
        (Some(mark), _) => {
            let ipv6 = service
                .real_servers
                .iter()
                .filter_map(|rs| servers.iter().find(|s| s.name == rs.server))
                .any(|s| s.address.is_ipv6());
            Some(ServiceKey::Fwmark { mark, ipv6 })
        }
        (None, Some(addr)) => Some(ServiceKey::Addr { protocol: service.protocol, addr, port: service.port }),
        (None, None) => None,
    }
}

/// What `ipvsadm -A` sets for the service.
pub(crate) fn service_config(service: &Service, key: &ServiceKey) -> ServiceConfig {
    let mut flags = service.flags.iter().filter_map(|f| f.sched_flag()).fold(0, |bits, f| bits | f.bit());
    if service.flags.contains(&Flag::OnePacket) {
        flags |= SvcFlags::ONEPACKET;
    }
    let netmask = match service.netmask {
        Some(IpAddr::V4(m)) => u32::from(m),
        // IPv6 persistence granularity is a prefix length.
        Some(IpAddr::V6(m)) => u128::from(m).leading_ones(),
        None => default_netmask(key),
    };
    ServiceConfig {
        scheduler: service.scheduler,
        flags: SvcFlags(flags),
        persistence: service.persistence_s.map(|p| lvs_sched::Duration::from_secs(whole_seconds(p))),
        netmask,
        pe: None,
    }
}

/// What `ipvsadm -a` sets for real server `rs` (at `addr`) of the service.
pub(crate) fn dest_config(service: &Service, rs: &RealServer, addr: IpAddr) -> DestConfig {
    let tunnel = match rs.forwarding {
        Forwarding::Tunnel => rs.tunnel.unwrap_or_default(),
        _ => Tunnel::default(),
    };
    DestConfig {
        addr,
        port: service.real_port(rs),
        fwd: rs.forwarding,
        weight: rs.weight,
        u_threshold: rs.upper,
        l_threshold: rs.lower,
        tunnel,
    }
}

/// keepalived's and feedbackd-agent.conf's words for a forwarding method (a local server
/// is written as direct routing, as ipvsadm writes it `-g`).
fn forwarding_name(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "NAT",
        Forwarding::Local | Forwarding::DirectRouting => "DR",
        Forwarding::Tunnel => "TUN",
    }
}

/// feedbackd's service name: `http`, `https`, else protocol and port, or the mark.
fn agent_service_name(service: &Service, port: u16) -> String {
    match (service.fwmark, service.protocol, port) {
        (Some(mark), _, _) => format!("fwmark-{mark}"),
        (None, Protocol::Tcp, 80) => "http".to_owned(),
        (None, Protocol::Tcp, 443) => "https".to_owned(),
        (None, Protocol::Tcp, p) => format!("tcp-{p}"),
        (None, Protocol::Udp, p) => format!("udp-{p}"),
        (None, Protocol::Sctp, p) => format!("sctp-{p}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use lvs_ipvs::ipvsadm::{Command, parse, words};
    use lvs_ipvs::{Protocol, ServiceKey};

    use super::*;

    fn named(name: &str) -> Topology {
        crate::named(name).unwrap().topology()
    }

    /// Every `-A`/`-a`/`--set` line of a script, without `ipvsadm`, parsed as ipvsadm would
    /// (the deletes, `ipvsadm -D ... || true`, the listing that loads ip_vs and the sync
    /// daemons left out).
    fn commands(script: &str) -> Vec<Command> {
        script
            .lines()
            .filter_map(|l| l.strip_prefix("ipvsadm "))
            .filter(|l| !l.contains("-daemon") && !l.starts_with("-D ") && !l.starts_with("-L "))
            .map(|l| parse(&words(l)).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// The first lines of a director's script.
    fn script_head(file: &str, director: &str) -> String {
        format!(
            "#!/bin/sh\n{}set -e\n",
            Target::default().header(
                "#",
                file,
                &["ipvsadm 1.31 (package ipvsadm) and sysctl (package procps), run as root"]
            )
        ) + director
            + "\n# Run as root on it. A second run gives the same table: each service below is deleted
# first if present; services it does not name are left alone.
"
    }

    #[test]
    fn ipvsadm_script_for_tutorial_nat() {
        let t = named("tutorial-nat");
        assert_eq!(
            ipvsadm(&t, Target::default()),
            script_head(
                "ipvsadm.sh",
                "# LVS-HOWTO LVS-NAT: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on 192.168.6.0/24\n# Director lvs (192.168.6.1)"
            ) + "# The same table at boot: ipvsadm.rules.
sysctl -w net.ipv4.ip_forward=1
ipvsadm -D -t 172.17.60.201:80 2>/dev/null || true
ipvsadm -A -t 172.17.60.201:80 -s rr
ipvsadm -a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 1
ipvsadm -a -t 172.17.60.201:80 -r 192.168.6.5:80 -m -w 1
"
        );
        assert_eq!(ipvsadm_for(&t, "lvs", Target::default()), Some(ipvsadm(&t, Target::default())));
        assert_eq!(ipvsadm_for(&t, "nope", Target::default()), None);
        let rules = ipvsadm_rules(&t, "lvs", Target::default()).unwrap();
        assert_eq!(
            rules.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
            [
                "-A -t 172.17.60.201:80 -s rr",
                "-a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 1",
                "-a -t 172.17.60.201:80 -r 192.168.6.5:80 -m -w 1",
            ]
        );
        assert!(rules.starts_with("# ipvsadm.rules written by lvsim"), "{rules}");
        let names: Vec<String> = ipvsadm_files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ipvsadm.sh", "ipvsadm.rules"]);
    }

    #[test]
    fn ipvsadm_script_for_tutorial_dr() {
        assert_eq!(
            ipvsadm(&named("tutorial-dr"), Target::default()),
            script_head(
                "ipvsadm.sh",
                "# LVS-HOWTO LVS-DR: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on the same LAN reply directly\n# Director lvs (172.17.60.198)"
            ) + "# The same table at boot: ipvsadm.rules.
# direct routing: the real servers hold 172.17.60.201 on lo and must not answer ARP for it
ipvsadm -D -t 172.17.60.201:80 2>/dev/null || true
ipvsadm -A -t 172.17.60.201:80 -s rr
ipvsadm -a -t 172.17.60.201:80 -r 172.17.60.199:80 -g -w 1
ipvsadm -a -t 172.17.60.201:80 -r 172.17.60.200:80 -g -w 1
"
        );
    }

    #[test]
    fn one_script_and_rules_file_per_director_with_services_or_in_the_group() {
        let mut t: Topology = ron::from_str(
            r#"(
            directors: [
                (name: "a", address: "10.0.0.1", services: [(vip: Some("10.0.1.1"), port: 80,
                    real_servers: [(server: "web")])]),
                (name: "b", address: "10.0.0.2"),
                (name: "idle", address: "10.0.0.3"),
                (name: "c", address: "10.0.0.4", services: [(vip: Some("10.0.1.2"), port: 80,
                    real_servers: [(server: "web")])]),
            ],
            servers: [(name: "web", address: "10.0.0.11")],
            ha: Some((directors: ["a", "b"], failover: ActiveActive(),
                      sync: Some((mode: peer_to_peer, syncid: 9)))),
        )"#,
        )
        .unwrap();
        let names: Vec<String> = ipvsadm_files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "ipvsadm-a.sh",
                "ipvsadm-a.rules",
                "ipvsadm-b.sh",
                "ipvsadm-b.rules",
                "ipvsadm-c.sh",
                "ipvsadm-c.rules"
            ]
        );
        assert_eq!(ipvsadm_directors(&t), ["a", "b", "c"]);
        assert_eq!(ipvsadm_for(&t, "idle", Target::default()), None, "no services, in no group");
        let b = ipvsadm_for(&t, "b", Target::default()).unwrap();
        assert!(b.contains("# a backup of the group a, b: every member has the same services\n"), "{b}");
        assert!(b.contains("ipvsadm -A -t 10.0.1.1:80 -s wlc\n"), "b runs a's services\n{b}");
        for role in ["master", "backup"] {
            let stop = format!("ipvsadm --stop-daemon {role} 2>/dev/null || true\n");
            let start = format!("ipvsadm --start-daemon {role} --mcast-interface eth1 --syncid 9");
            let (i, j) = (b.find(&stop).unwrap(), b.find(&start).unwrap());
            assert!(i < j, "stopped before it starts\n{b}");
        }
        let c = ipvsadm_for(&t, "c", Target::default()).unwrap();
        assert!(!c.contains("group") && !c.contains("daemon") && !c.contains("10.0.1.1:80"), "{c}");
        // The services come in ipvsadm -S order in the rules, topology order in the script.
        let extra = t.directors[3].services[0].clone();
        t.directors[0].services.insert(0, extra);
        t.directors[0].services[0].vip = Some("10.0.1.9".parse().unwrap());
        let a = ipvsadm_for(&t, "a", Target::default()).unwrap();
        assert!(a.find("-A -t 10.0.1.9:80").unwrap() < a.find("-A -t 10.0.1.1:80").unwrap());
        let rules = ipvsadm_rules(&t, "a", Target::default()).unwrap();
        assert!(rules.find("-A -t 10.0.1.9:80").unwrap() > rules.find("-A -t 10.0.1.1:80").unwrap());
        t.ha = None;
        t.directors[0].services.clear();
        let names: Vec<String> = ipvsadm_files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ipvsadm.sh", "ipvsadm.rules"], "one director with services: no name");
        assert!(ipvsadm(&t, Target::default()).contains("# Director c (10.0.0.4)\n"));
    }

    /// A topology using every option the exporters write.
    pub(crate) fn everything() -> Topology {
        ron::from_str(
            r#"(
            directors: [(
                name: "lvs", address: "10.0.0.1",
                timeouts: (tcp_s: Some(7200.0), udp_s: Some(60.0)),
                expire_nodest_conn: true, expire_quiescent_template: true,
                sloppy_tcp: true, sloppy_sctp: true, conn_reuse_mode: 2,
                services: [
                    (vip: Some("10.0.1.1"), port: 80, scheduler: sh, flags: [sh_fallback, sh_port],
                     persistence_s: Some(600.0), netmask: Some("255.255.255.0"),
                     real_servers: [(server: "web", port: Some(8080), weight: 3, upper: 100, lower: 50),
                                    (server: "far", forwarding: TUN)]),
                    (protocol: UDP, vip: Some("10.0.1.1"), port: 53, scheduler: rr, flags: [one_packet],
                     real_servers: [(server: "web1", forwarding: DR, weight: 0)]),
                    (fwmark: Some(7), scheduler: mh, flags: [mh_port],
                     real_servers: [(server: "web2")]),
                    (vip: Some("2001:db8::1"), port: 443, scheduler: wrr, persistence_s: Some(300.0),
                     netmask: Some("ffff:ffff:ffff:ffff::"),
                     real_servers: [(server: "v6", forwarding: DR)]),
                ],
            )],
            servers: [
                (name: "web", address: "10.0.0.11", count: 2, gateway: Some("lvs")),
                (name: "far", address: "10.9.0.5", segment: "remote"),
                (name: "v6", address: "2001:db8::10"),
            ],
        )"#,
        )
        .unwrap()
    }

    #[test]
    fn ipvsadm_script_writes_every_option() {
        let script = ipvsadm(&everything(), Target::default());
        let body: Vec<&str> = script.lines().skip_while(|l| !l.starts_with("# The same table")).collect();
        assert_eq!(
            body,
            [
                "# The same table at boot: ipvsadm.rules.",
                "# net.ipv4.vs exists once ip_vs is loaded, which ipvsadm does if need be",
                "ipvsadm -L -n > /dev/null",
                "sysctl -w net.ipv4.ip_forward=1",
                "sysctl -w net.ipv4.vs.expire_nodest_conn=1",
                "sysctl -w net.ipv4.vs.expire_quiescent_template=1",
                "sysctl -w net.ipv4.vs.sloppy_tcp=1",
                "sysctl -w net.ipv4.vs.sloppy_sctp=1",
                "sysctl -w net.ipv4.vs.conn_reuse_mode=2",
                "ipvsadm --set 7200 0 60",
                "# tunnelling: the real servers hold 10.0.1.1 on tunl0 and must not answer ARP for it",
                "ipvsadm -D -t 10.0.1.1:80 2>/dev/null || true",
                "ipvsadm -A -t 10.0.1.1:80 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.0.0.11:8080 -m -w 3 -x 100 -y 50",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.0.0.12:8080 -m -w 3 -x 100 -y 50",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.9.0.5:80 -i -w 1 --tun-type ipip",
                "# direct routing: the real servers hold 10.0.1.1 on lo and must not answer ARP for it",
                "ipvsadm -D -u 10.0.1.1:53 2>/dev/null || true",
                "ipvsadm -A -u 10.0.1.1:53 -s rr -o",
                "ipvsadm -a -u 10.0.1.1:53 -r 10.0.0.11:53 -g -w 0",
                "# firewall mark 7: mark the packets first (iptables -t mangle ... -j MARK --set-mark 7)",
                "ipvsadm -D -f 7 2>/dev/null || true",
                "ipvsadm -A -f 7 -s mh -b mh-port",
                "ipvsadm -a -f 7 -r 10.0.0.12:0 -m -w 1",
                "# direct routing: the real servers hold 2001:db8::1 on lo and must not answer ARP for it",
                "ipvsadm -D -t [2001:db8::1]:443 2>/dev/null || true",
                "ipvsadm -A -t [2001:db8::1]:443 -s wrr -p 300 -M 64",
                "ipvsadm -a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -g -w 1",
            ]
        );
    }

    #[test]
    fn generated_ipvsadm_lines_parse_as_ipvsadm_commands() {
        for n in crate::NAMED {
            let files = ipvsadm_files(&n.topology(), Target::default());
            let scripts = files.iter().filter(|(f, _)| f.ends_with(".sh"));
            let cmds: Vec<Command> = scripts.flat_map(|(_, s)| commands(s)).collect();
            let t = n.topology().expand().unwrap();
            let services: usize = t.directors.iter().map(|d| d.services.len()).sum();
            let dests: usize =
                t.directors.iter().flat_map(|d| &d.services).map(|s| s.real_servers.len()).sum();
            assert_eq!(cmds.len(), services + dests, "{}", n.name);
        }
        let cmds = commands(&ipvsadm(&named("tutorial-nat"), Target::default()));
        let key =
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "172.17.60.201".parse().unwrap(), port: 80 };
        let Command::AddService(k, c) = &cmds[0] else { panic!("{:?}", cmds[0]) };
        assert_eq!((*k, c.scheduler), (key, lvs_sched::SchedulerKind::Rr));
        let Command::AddDest(k, d) = &cmds[1] else { panic!("{:?}", cmds[1]) };
        assert_eq!(
            (*k, d.addr.to_string(), d.port, d.fwd, d.weight),
            (key, "192.168.6.4".into(), 80, lvs_sched::Forwarding::Masq, 1)
        );
        // IPv6 `-M 64` needs the import's rewriting for sim-core's parser.
        let script = ipvsadm(&everything(), Target::default());
        let n = script
            .lines()
            .filter(|l| {
                l.starts_with("ipvsadm ") && !l.starts_with("ipvsadm -D ") && !l.starts_with("ipvsadm -L ")
            })
            .filter_map(|l| crate::import::parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .count();
        assert_eq!(n, 1 + 4 + 6, "--set, four -A and six -a");
    }

    /// A file without its header comments.
    fn body(text: &str) -> &str {
        let start = text.lines().take_while(|l| l.starts_with('#')).map(|l| l.len() + 1).sum();
        &text[start..]
    }

    #[test]
    fn agent_conf_for_tutorial_servers() {
        let nat = named("tutorial-nat");
        let expected = "director = 192.168.6.1
service = http
\tprotocol = TCP
\tport = 80
\tmodule = cpuload.so
\tforwarding = NAT
";
        assert_eq!(agent_conf(&nat, "rs1", Target::default()).as_deref().map(body), Some(expected));
        assert_eq!(agent_conf(&nat, "rs2", Target::default()).as_deref().map(body), Some(expected));
        assert_eq!(
            agent_conf(&named("tutorial-dr"), "rs2", Target::default()).as_deref().map(body),
            Some(
                "director = 172.17.60.198
service = http
\tprotocol = TCP
\tport = 80
\tmodule = cpuload.so
\tforwarding = DR
"
            )
        );
        assert_eq!(agent_conf(&nat, "rs3", Target::default()), None);
    }

    #[test]
    fn agent_conf_names_services_and_uses_the_real_port() {
        let t = everything();
        assert_eq!(
            body(&agent_conf(&t, "web1", Target::default()).unwrap()),
            "director = 10.0.0.1
service = tcp-8080
\tprotocol = TCP
\tport = 8080
\tmodule = cpuload.so
\tforwarding = NAT
service = udp-53
\tprotocol = UDP
\tport = 53
\tmodule = cpuload.so
\tforwarding = DR
"
        );
        assert!(agent_conf(&t, "web2", Target::default()).unwrap().ends_with(
            "service = fwmark-7\n\tfwmark = 7\n\tport = 0\n\tmodule = cpuload.so\n\tforwarding = NAT\n"
        ));
        assert_eq!(agent_conf(&t, "web", Target::default()), None, "a group is not a server");
        let farm = named("web-farm");
        let conf = agent_conf(&farm, "web3", Target::default()).unwrap();
        let conf = body(&conf);
        assert!(
            conf.starts_with("director = 10.0.0.1\nservice = http\n") && conf.contains("service = https\n")
        );
    }

    fn keepalived_service(vip: &str, kind: &str, rips: [&str; 2]) -> String {
        let mut s = format!(
            "virtual_server {vip} 80 {{
    lb_algo rr
    lb_kind {kind}
    protocol TCP
    ! no health check, as simulated: keepalived keeps every real server; add a checker to each real_server to have it checked
"
        );
        for rip in rips {
            s += &format!(
                "
    real_server {rip} 80 {{
        weight 1
    }}
"
            );
        }
        s + "}\n"
    }

    #[test]
    fn keepalived_conf_for_tutorials() {
        let nat = keepalived(&named("tutorial-nat"), Target::default());
        assert_eq!(
            nat,
            Target::default().header("!", "keepalived.conf", &[&keepalived::assumed(Target::default())])
                + "! LVS-HOWTO LVS-NAT: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on 192.168.6.0/24

global_defs {
    router_id lvs
}

! Director lvs (192.168.6.1)
! also run: sysctl -w net.ipv4.ip_forward=1

" + &keepalived_service("172.17.60.201", "NAT", ["192.168.6.4", "192.168.6.5"])
        );
        let dr = keepalived(&named("tutorial-dr"), Target::default());
        assert_eq!(
            dr,
            Target::default().header("!", "keepalived.conf", &[&keepalived::assumed(Target::default())])
                + "! LVS-HOWTO LVS-DR: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on the same LAN reply directly

global_defs {
    router_id lvs
}

! Director lvs (172.17.60.198)

"
                + &keepalived_service("172.17.60.201", "DR", ["172.17.60.199", "172.17.60.200"])
        );
        assert_eq!(dr.matches('{').count(), dr.matches('}').count());
    }

    #[test]
    fn keepalived_conf_writes_every_option() {
        let conf = keepalived(&everything(), Target::default());
        assert_eq!(conf.matches('{').count(), conf.matches('}').count(), "{conf}");
        for part in [
            "    lvs_timeouts tcp 7200 udp 60\n",
            "virtual_server 10.0.1.1 80 {\n    lb_algo sh\n    lb_kind NAT\n    persistence_timeout 600\n    persistence_granularity 255.255.255.0\n    sh-fallback\n    sh-port\n    protocol TCP\n",
            "    real_server 10.0.0.11 8080 {\n        weight 3\n        uthreshold 100\n        lthreshold 50\n    }\n",
            "    real_server 10.9.0.5 80 {\n        weight 1\n        lvs_method TUN\n",
            "virtual_server 10.0.1.1 53 {\n    lb_algo rr\n    lb_kind DR\n    ops\n    protocol UDP\n",
            "virtual_server fwmark 7 {\n    lb_algo mh\n    lb_kind NAT\n    mh-port\n    ! no health check",
            "    real_server 10.0.0.12 0 {\n        weight 1\n    }\n",
            "virtual_server 2001:db8::1 443 {\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 300\n    persistence_granularity 64\n",
            "    real_server 2001:db8::10 443 {\n",
        ] {
            assert!(conf.contains(part), "missing {part:?} in\n{conf}");
        }
    }

    #[test]
    fn unknown_references_become_comments() {
        let mut t = named("tutorial-nat");
        t.directors[0].services[0].real_servers[1].server = "gone".into();
        assert!(ipvsadm(&t, Target::default()).contains("# real server \"gone\": no server of that name\n"));
        assert!(
            keepalived(&t, Target::default()).contains("! real server \"gone\": no server of that name\n")
        );
        assert!(ipvsadm(&t, Target::default()).contains("-r 192.168.6.4:80"));
    }
}
