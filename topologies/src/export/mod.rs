//! Deployment files from a topology: what to type on the director and the real servers.
//!
//! Each exporter works on the expanded topology ([`Topology::expand`]), so a group's
//! members appear one by one. A topology that does not expand is exported as written,
//! and a real server whose name resolves to no server becomes a comment, so a half-made
//! topology still shows what it would produce.
//!
//! # Files
//! - [`ipvsadm`]: a shell script of ipvsadm commands and sysctls (and the sync daemons).
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

mod heartbeat;
mod keepalived;
mod ldirectord;
mod target;

pub use heartbeat::{ha_cf, haresources};
pub use keepalived::{keepalived, keepalived_for};
pub(crate) use ldirectord::SCTP_MARK as LDIRECTORD_SCTP_MARK;
pub use ldirectord::ldirectord;
pub use target::{Target, UnknownTarget};

/// Every deployment file that fits the topology, as `(path in the export directory,
/// text)`: `ipvsadm.sh`; `keepalived.conf` (without a fail-over group) or
/// `keepalived-NAME.conf` per director (with a VRRP group); `ldirectord.cf` with a
/// heartbeat or active-active group or an ldirectord check (`ldirectord-NAME.cf` per
/// director or group when there are several); `ha.cf` with a heartbeat or active-active
/// group and `haresources` with a heartbeat one; `feedbackd-agent/SERVER.conf` per real
/// server.
pub fn files(topo: &Topology, target: Target) -> Vec<(String, String)> {
    let x = expanded(topo);
    let group = Group::of(&x);
    let mut out = vec![("ipvsadm.sh".to_owned(), ipvsadm(topo, target))];
    let vrrp = group.as_ref().map(|g| matches!(g.ha.failover, crate::Failover::Vrrp { .. }));
    match vrrp {
        None => out.push(("keepalived.conf".to_owned(), keepalived(topo, target))),
        Some(true) => {
            for d in &x.directors {
                let text = keepalived_for(topo, &d.name, target).expect("a director of the topology");
                out.push((format!("keepalived-{}.conf", d.name), text));
            }
        }
        Some(false) => {}
    }
    let ldirectord_checks = x
        .directors
        .iter()
        .flat_map(|d| &d.services)
        .any(|s| s.check.as_ref().is_some_and(|c| c.checker == crate::Checker::Ldirectord));
    if vrrp == Some(false) || ldirectord_checks {
        for d in ldirectord_units(&x) {
            let text = ldirectord(topo, &x.directors[d].name, target).expect("a director of the topology");
            out.push((ldirectord_file(&x, d), text));
        }
    }
    out.extend(ha_cf(topo, target).map(|t| ("ha.cf".to_owned(), t)));
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

/// The director's ipvsadm commands (`ipvsadm -A ...`, `ipvsadm -a ...`, `--set`), one per
/// line, for every director (a comment line names each), as a shell script.
///
/// Before the commands come the sysctls the configuration needs: `net.ipv4.ip_forward=1`
/// when a real server is NAT (the director routes the replies), and the
/// `expire_nodest_conn`/`expire_quiescent_template` switches when set. The script does not
/// clear the table (`ipvsadm -C`): run it on a director without these services.
pub fn ipvsadm(topo: &Topology, target: Target) -> String {
    let topo = expanded(topo);
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&target.header("#", "ipvsadm.sh", &[]));
    out.push_str("set -e\n");
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    out.push_str("# IPVS configuration written by lvsim: run each director's part as root on it.\n");
    let group = Group::of(&topo);
    for (d, director) in topo.directors.iter().enumerate() {
        let _ = writeln!(out, "\n# Director {} ({})", director.name, director.address);
        for line in sysctls(director) {
            let _ = writeln!(out, "sysctl -w {line}");
        }
        if let Some(g) = group.as_ref().filter(|g| g.members.contains(&d)) {
            sync_daemons(&mut out, g, d);
        }
        if let Some(set) = set_timeouts(director) {
            let _ = writeln!(out, "ipvsadm {set}");
        }
        for service in &director.services {
            for note in service_notes(service) {
                let _ = writeln!(out, "# {note}");
            }
            let Some(key) = service_key(service, &topo.servers) else {
                let _ = writeln!(out, "# a service without a VIP or firewall mark: not written");
                continue;
            };
            let _ = writeln!(out, "ipvsadm {}", Command::AddService(key, service_config(service, &key)));
            for rs in &service.real_servers {
                match server(&topo, &rs.server) {
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
    }
    out
}

/// `/etc/feedbackd-agent.conf` for one real server (by name, after expansion), in the
/// original grammar: a `director = DIP` line per director it is a real server of (every
/// member of a fail-over group: the agent reports to each), then a `service = NAME` block
/// per service it serves with `protocol`, `port`, `module = cpuload.so` and `forwarding`.
/// `None` for a name that is no server, or a server in no service (a sorry server: an
/// agent would make the master add it as a real server).
///
/// A service is named `http` (port 80), `https` (443), `tcp-PORT`/`udp-PORT`, or
/// `fwmark-MARK`; `port` is the port the server itself listens on, which is what the
/// director's real-server entry shows.
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
                let block = format!(
                    "service = {}\n\tprotocol = {}\n\tport = {port}\n\tmodule = cpuload.so\n\tforwarding = {}\n",
                    agent_service_name(service, port),
                    service.protocol.name(),
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

/// A group member's part of the script: which member it is, and with sync the sysctls
/// and `ipvsadm --start-daemon` lines (master on the primary, backup on the others, both
/// everywhere peer to peer).
fn sync_daemons(out: &mut String, g: &Group<'_>, d: usize) {
    let k = g.members.iter().position(|&m| m == d).expect("a member");
    let role = if k == 0 { "the primary" } else { "a backup" };
    let _ = writeln!(out, "# {role} of a fail-over group: every member has the same services");
    let (Some(s), Some(sync)) = (&g.cfg.sync, &g.ha.sync) else { return };
    let _ = writeln!(
        out,
        "# connection sync (keepalived's lvs_sync_daemon or heartbeat's LVSSyncDaemonSwap start the daemons themselves)"
    );
    for line in sync_sysctls(s) {
        let _ = writeln!(out, "sysctl -w {line}");
    }
    let p2p = s.mode == sim_core::ha::SyncMode::PeerToPeer;
    for (role, on) in [("master", k == 0 || p2p), ("backup", k != 0 || p2p)] {
        if on {
            let _ = writeln!(
                out,
                "ipvsadm --start-daemon {role} --mcast-interface {} --syncid {} --sync-maxlen {}",
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
fn sysctls(director: &Director) -> Vec<&'static str> {
    let mut v = Vec::new();
    let nat =
        director.services.iter().flat_map(|s| &s.real_servers).any(|rs| rs.forwarding == Forwarding::Masq);
    if nat {
        v.push("net.ipv4.ip_forward=1");
    }
    if director.expire_nodest_conn {
        v.push("net.ipv4.vs.expire_nodest_conn=1");
    }
    if director.expire_quiescent_template {
        v.push("net.ipv4.vs.expire_quiescent_template=1");
    }
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
    /// (sim-core's parser knows no `--start-daemon`).
    fn commands(script: &str) -> Vec<Command> {
        script
            .lines()
            .filter_map(|l| l.strip_prefix("ipvsadm "))
            .filter(|l| !l.starts_with("--start-daemon"))
            .map(|l| parse(&words(l)).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    #[test]
    fn ipvsadm_script_for_tutorial_nat() {
        assert_eq!(
            ipvsadm(&named("tutorial-nat"), Target::default()),
            "#!/bin/sh\n".to_owned()
                + &Target::default().header("#", "ipvsadm.sh", &[])
                + "set -e
# LVS-HOWTO LVS-NAT: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on 192.168.6.0/24
# IPVS configuration written by lvsim: run each director's part as root on it.

# Director lvs (192.168.6.1)
sysctl -w net.ipv4.ip_forward=1
ipvsadm -A -t 172.17.60.201:80 -s rr
ipvsadm -a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 1
ipvsadm -a -t 172.17.60.201:80 -r 192.168.6.5:80 -m -w 1
"
        );
    }

    #[test]
    fn ipvsadm_script_for_tutorial_dr() {
        assert_eq!(
            ipvsadm(&named("tutorial-dr"), Target::default()),
            "#!/bin/sh\n".to_owned()
                + &Target::default().header("#", "ipvsadm.sh", &[])
                + "set -e
# LVS-HOWTO LVS-DR: director lvs, VIP 172.17.60.201:80 (rr), rs1 and rs2 on the same LAN reply directly
# IPVS configuration written by lvsim: run each director's part as root on it.

# Director lvs (172.17.60.198)
# direct routing: the real servers hold 172.17.60.201 on lo and must not answer ARP for it
ipvsadm -A -t 172.17.60.201:80 -s rr
ipvsadm -a -t 172.17.60.201:80 -r 172.17.60.199:80 -g -w 1
ipvsadm -a -t 172.17.60.201:80 -r 172.17.60.200:80 -g -w 1
"
        );
    }

    /// A topology using every option the exporters write.
    pub(crate) fn everything() -> Topology {
        ron::from_str(
            r#"(
            directors: [(
                name: "lvs", address: "10.0.0.1",
                timeouts: (tcp_s: Some(7200.0), udp_s: Some(60.0)),
                expire_nodest_conn: true, expire_quiescent_template: true,
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
        let body: Vec<&str> = script.lines().skip_while(|l| !l.starts_with("# Director")).collect();
        assert_eq!(
            body,
            [
                "# Director lvs (10.0.0.1)",
                "sysctl -w net.ipv4.ip_forward=1",
                "sysctl -w net.ipv4.vs.expire_nodest_conn=1",
                "sysctl -w net.ipv4.vs.expire_quiescent_template=1",
                "ipvsadm --set 7200 0 60",
                "# tunnelling: the real servers hold 10.0.1.1 on tunl0 and must not answer ARP for it",
                "ipvsadm -A -t 10.0.1.1:80 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.0.0.11:8080 -m -w 3 -x 100 -y 50",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.0.0.12:8080 -m -w 3 -x 100 -y 50",
                "ipvsadm -a -t 10.0.1.1:80 -r 10.9.0.5:80 -i -w 1 --tun-type ipip",
                "# direct routing: the real servers hold 10.0.1.1 on lo and must not answer ARP for it",
                "ipvsadm -A -u 10.0.1.1:53 -s rr -o",
                "ipvsadm -a -u 10.0.1.1:53 -r 10.0.0.11:53 -g -w 0",
                "# firewall mark 7: mark the packets first (iptables -t mangle ... -j MARK --set-mark 7)",
                "ipvsadm -A -f 7 -s mh -b mh-port",
                "ipvsadm -a -f 7 -r 10.0.0.12:0 -m -w 1",
                "# direct routing: the real servers hold 2001:db8::1 on lo and must not answer ARP for it",
                "ipvsadm -A -t [2001:db8::1]:443 -s wrr -p 300 -M 64",
                "ipvsadm -a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -g -w 1",
            ]
        );
    }

    #[test]
    fn generated_ipvsadm_lines_parse_as_ipvsadm_commands() {
        for n in crate::NAMED {
            let script = ipvsadm(&n.topology(), Target::default());
            let cmds = commands(&script);
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
            .filter(|l| l.starts_with("ipvsadm "))
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
        assert!(agent_conf(&t, "web2", Target::default()).unwrap().contains("service = fwmark-7\n"));
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
    delay_loop 6
    lb_algo rr
    lb_kind {kind}
    protocol TCP
"
        );
        for rip in rips {
            s += &format!(
                "
    real_server {rip} 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 3
            connect_port 80
        }}
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
            Target::default().header("!", "keepalived.conf", &[])
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
            Target::default().header("!", "keepalived.conf", &[])
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
            "virtual_server 10.0.1.1 80 {\n    delay_loop 6\n    lb_algo sh\n    lb_kind NAT\n    persistence_timeout 600\n    persistence_granularity 255.255.255.0\n    sh-fallback\n    sh-port\n    protocol TCP\n",
            "    real_server 10.0.0.11 8080 {\n        weight 3\n        uthreshold 100\n        lthreshold 50\n        TCP_CHECK {\n            connect_timeout 3\n            connect_port 8080\n        }\n    }\n",
            "    real_server 10.9.0.5 80 {\n        weight 1\n        lvs_method TUN\n",
            "virtual_server 10.0.1.1 53 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n    ops\n    protocol UDP\n",
            "        ! UDP: no TCP_CHECK",
            "virtual_server fwmark 7 {\n",
            "    real_server 10.0.0.12 0 {\n        weight 1\n        ! no port to check",
            "virtual_server 2001:db8::1 443 {\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 300\n    persistence_granularity 64\n",
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
