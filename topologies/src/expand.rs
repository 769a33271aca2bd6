//! [`Topology::expand`]: `count: N` server groups written out, group references resolved,
//! and the cross-references (gateways, backends, real servers) checked.
//!
//! Error paths name the topology as written (indices before expansion), so a message
//! points at the line a person typed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::{RealServer, Server, Service, Topology, TopologyError};

/// ipvsadm's largest weight (`-w`).
use sim_core::model::MAX_WEIGHT;

fn error(path: String, message: impl Into<String>) -> Result<(), TopologyError> {
    Err(TopologyError { path, message: message.into() })
}

/// The name of member `k` (0-based) of a server entry: the entry's own name when it stands
/// for one server, else `NAME1` .. `NAMEN`.
pub(crate) fn member_name(entry: &Server, k: u32) -> String {
    if entry.count == 1 { entry.name.clone() } else { format!("{}{}", entry.name, k + 1) }
}

/// `base + k`, or `None` past the end of the address family.
pub(crate) fn nth_address(base: IpAddr, k: u32) -> Option<IpAddr> {
    match base {
        IpAddr::V4(a) => u32::from(a).checked_add(k).map(|v| IpAddr::V4(v.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(u128::from(k)).map(|v| IpAddr::V6(v.into())),
    }
}

/// Every server an entry stands for, as `(name, address)`, leaving out those whose address
/// would overflow (which [`Topology::expand`] rejects).
pub(crate) fn members(entry: &Server) -> impl Iterator<Item = (String, IpAddr)> + '_ {
    (0..entry.count).filter_map(|k| nth_address(entry.address, k).map(|a| (member_name(entry, k), a)))
}

/// `a, b, c`, or `none` for an empty list.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() { "none".to_owned() } else { v.join(", ") }
}

/// The names a real-server reference may use: a group's name stands for all its members,
/// a member's name for itself.
struct Names {
    /// Name → (server entry it belongs to, the expanded servers it stands for).
    refs: BTreeMap<String, (usize, Vec<String>)>,
}

impl Names {
    /// Claims `name` for server entry `entry`; `of` says which member it is, if generated.
    fn insert(
        &mut self,
        name: String,
        of: &str,
        entry: usize,
        members: Vec<String>,
    ) -> Result<(), TopologyError> {
        match self.refs.get(&name) {
            Some(&(other, _)) if other != entry => error(
                format!("servers[{entry}].name"),
                format!("name {name:?}{of} is already used by servers[{other}]"),
            ),
            Some(_) => Ok(()),
            None => {
                self.refs.insert(name, (entry, members));
                Ok(())
            }
        }
    }

    /// `a, b, web; web is web1..web4`: what a reference may name, for messages.
    fn describe(topo: &Topology) -> String {
        list(topo.servers.iter().map(|s| s.name.as_str()))
            + &topo
                .servers
                .iter()
                .filter(|s| s.count > 1)
                .map(|s| format!("; {} is {}1..{}{}", s.name, s.name, s.name, s.count))
                .collect::<String>()
    }
}

impl Topology {
    /// The topology with every `count: N` server entry written out as N servers named
    /// `NAME1`..`NAMEN` with consecutive addresses, and every real-server reference to a
    /// group name written out as one reference per member (in member order). A name used
    /// twice, an address overflow or a reference to no server is an error.
    ///
    /// It also checks what the exporters and the simulator rely on: each server's
    /// `gateway` names a director and its `backend` a backend; names and addresses are
    /// unique; a service has a VIP or a firewall mark (not both), a port unless
    /// persistent, a contiguous netmask of its VIP's family, persistence within ipvsadm's
    /// 1 s..31 days, no real server twice, and weights within ipvsadm's 0..=65535;
    /// timeouts are finite and not negative (below 1 s is a simulator idealisation, such as
    /// LVS-REF-1's "no hold"; the exporters write ipvsadm's minimum of 1 s).
    ///
    /// Health checks and the `ha` group are checked too (every value, the fallback server,
    /// the member names). A member of the group that writes no `services` gets the
    /// primary's (the first member's), expanded; one that writes its own must have the
    /// primary's virtual services in the same order, and every member is on the primary's
    /// segment (they share the real servers).
    pub fn expand(&self) -> Result<Topology, TopologyError> {
        self.check_names()?;
        for (d, director) in self.directors.iter().enumerate() {
            let t = &director.timeouts;
            for (field, v) in [("tcp_s", t.tcp_s), ("tcpfin_s", t.tcpfin_s), ("udp_s", t.udp_s)] {
                if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                    error(
                        format!("directors[{d}].timeouts.{field}"),
                        "a timeout is a number of seconds >= 0",
                    )?;
                }
            }
        }
        let (servers, names) = self.expand_servers()?;
        let mut directors = self.directors.clone();
        for (d, director) in directors.iter_mut().enumerate() {
            let mut keys = BTreeMap::new();
            for (s, service) in director.services.iter_mut().enumerate() {
                let path = format!("directors[{d}].services[{s}]");
                check_service(&path, service)?;
                let key = (service.fwmark, service.protocol, service.vip, service.port);
                if let Some(first) = keys.insert(key, s) {
                    let field = if service.fwmark.is_some() { "fwmark" } else { "port" };
                    error(
                        format!("{path}.{field}"),
                        format!("the same virtual service as directors[{d}].services[{first}]"),
                    )?;
                }
                service.real_servers = self.expand_real_servers(&path, service, &names)?;
                if let Some(check) = &service.check {
                    check.check(&format!("{path}.check"))?;
                    if let Some(fb) = &check.fallback {
                        check_fallback(&format!("{path}.check.fallback.server"), &fb.server, self, &names)?;
                    }
                }
            }
        }
        if let Some(ha) = &self.ha {
            ha.config(&self.directors)?;
            self.share_services(&ha.members(&self.directors)?, "a fail-over group", &mut directors)?;
        }
        if let Some(ecmp) = &self.ecmp {
            self.check_ecmp(ecmp, &mut directors)?;
        }
        Ok(Topology {
            description: self.description.clone(),
            directors,
            servers,
            backends: self.backends.clone(),
            ha: self.ha.clone(),
            ecmp: self.ecmp.clone(),
        })
    }

    /// An ECMP tier: its settings, no member in the HA group, members share the first
    /// one's services, and none forwards by NAT (a real server's replies go to its one
    /// gateway, not to whichever director the router picked).
    fn check_ecmp(&self, ecmp: &crate::Ecmp, directors: &mut [crate::Director]) -> Result<(), TopologyError> {
        let members = ecmp.config(&self.directors)?.members;
        let group = self.ha.as_ref().map(|h| h.directors.as_slice()).unwrap_or_default();
        for (k, &m) in members.iter().enumerate() {
            let name = &self.directors[m].name;
            if group.contains(name) {
                error(
                    format!("ecmp.directors[{k}]"),
                    format!("{name:?} is in the fail-over group (ha) too: a director is in one or the other"),
                )?;
            }
        }
        self.share_services(&members, "an ECMP tier", directors)?;
        for &m in &members {
            for (s, svc) in directors[m].services.iter().enumerate() {
                for (r, rs) in svc.real_servers.iter().enumerate() {
                    if rs.forwarding == lvs_sched::Forwarding::Masq {
                        error(
                            format!("directors[{m}].services[{s}].real_servers[{r}].forwarding"),
                            format!(
                                "{:?} is in an ECMP tier: NAT needs each reply to pass the director that \
                                 has the entry, which a real server's one gateway cannot follow; use DR or TUN",
                                directors[m].name
                            ),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives the group's members without services of their own the primary's (already
    /// expanded), and checks that the others have the same virtual services.
    fn share_services(
        &self,
        members: &[usize],
        group: &str,
        directors: &mut [crate::Director],
    ) -> Result<(), TopologyError> {
        let primary = members[0];
        let key = |s: &Service| (s.fwmark, s.protocol, s.vip, s.port);
        for &m in &members[1..] {
            let (p, d) = (&self.directors[primary], &self.directors[m]);
            if d.segment != p.segment {
                error(
                    format!("directors[{m}].segment"),
                    format!(
                        "{:?} is in {group} with {:?}, which is on segment {:?}: the members \
                         share the real servers, so they are on one segment",
                        d.name, p.name, p.segment
                    ),
                )?;
            }
            if d.services.is_empty() {
                directors[m].services = directors[primary].services.clone();
            } else if !d.services.iter().map(key).eq(p.services.iter().map(key)) {
                error(
                    format!("directors[{m}].services"),
                    format!(
                        "{:?} is in {group} with {:?} but has other virtual services: leave its \
                         `services` out to run {:?}'s, or list the same ones in the same order",
                        d.name, p.name, p.name
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// Directors and backends have unique names.
    fn check_names(&self) -> Result<(), TopologyError> {
        let mut seen = BTreeMap::new();
        for (i, d) in self.directors.iter().enumerate() {
            if let Some(j) = seen.insert(d.name.as_str(), i) {
                error(
                    format!("directors[{i}].name"),
                    format!("name {:?} is already used by directors[{j}]", d.name),
                )?;
            }
        }
        let mut seen = BTreeMap::new();
        for (i, b) in self.backends.iter().enumerate() {
            if let Some(j) = seen.insert(b.name.as_str(), i) {
                error(
                    format!("backends[{i}].name"),
                    format!("name {:?} is already used by backends[{j}]", b.name),
                )?;
            }
        }
        Ok(())
    }

    /// The servers written out, and the names a real-server reference may use.
    fn expand_servers(&self) -> Result<(Vec<Server>, Names), TopologyError> {
        let mut names = Names { refs: BTreeMap::new() };
        let mut addresses: BTreeMap<IpAddr, (usize, String)> = BTreeMap::new();
        let mut servers = Vec::new();
        for (i, entry) in self.servers.iter().enumerate() {
            let path = |field: &str| format!("servers[{i}].{field}");
            if entry.count == 0 {
                error(path("count"), "count must be at least 1 (leave it out for one server)")?;
            }
            if let Some(g) = &entry.gateway {
                if !self.directors.iter().any(|d| &d.name == g) {
                    let known = list(self.directors.iter().map(|d| d.name.as_str()));
                    error(path("gateway"), format!("no director named {g:?} (directors are: {known})"))?;
                }
            }
            if let Some(b) = &entry.backend {
                if !self.backends.iter().any(|x| &x.name == b) {
                    let known = list(self.backends.iter().map(|x| x.name.as_str()));
                    error(path("backend"), format!("no backend named {b:?} (backends are: {known})"))?;
                }
            }
            let last = entry.count - 1;
            if nth_address(entry.address, last).is_none() {
                error(
                    path("count"),
                    format!("{} servers from {} run past the last address", entry.count, entry.address),
                )?;
            }
            let member_names: Vec<String> = (0..entry.count).map(|k| member_name(entry, k)).collect();
            names.insert(entry.name.clone(), "", i, member_names.clone())?;
            let of = if entry.count == 1 {
                String::new()
            } else {
                format!(" (one of the {} {})", entry.count, entry.name)
            };
            for (name, address) in members(entry) {
                names.insert(name.clone(), &of, i, vec![name.clone()])?;
                if let Some((j, other)) = addresses.insert(address, (i, name.clone())) {
                    error(
                        path("address"),
                        format!(
                            "{name} would have address {address}, already that of {other} (servers[{j}])"
                        ),
                    )?;
                }
                servers.push(Server { name, address, count: 1, ..entry.clone() });
            }
        }
        Ok((servers, names))
    }

    /// A service's real-server references, one per expanded server.
    fn expand_real_servers(
        &self,
        path: &str,
        service: &Service,
        names: &Names,
    ) -> Result<Vec<RealServer>, TopologyError> {
        let mut out: Vec<RealServer> = Vec::new();
        // (server, port) → index as written, to reject a real server added twice.
        let mut seen: BTreeMap<(String, u16), usize> = BTreeMap::new();
        for (r, rs) in service.real_servers.iter().enumerate() {
            let path = format!("{path}.real_servers[{r}]");
            let Some((_, members)) = names.refs.get(&rs.server) else {
                let known = Names::describe(self);
                return Err(TopologyError {
                    path: format!("{path}.server"),
                    message: format!("no real server named {:?} (servers are: {known})", rs.server),
                });
            };
            if rs.weight > MAX_WEIGHT {
                error(
                    format!("{path}.weight"),
                    format!("weight {} is out of range 0..={MAX_WEIGHT}", rs.weight),
                )?;
            }
            if let Some(t) = rs.tunnel {
                check_tunnel(&format!("{path}.tunnel"), rs.forwarding, t)?;
            }
            for m in members {
                let expanded = RealServer { server: m.clone(), ..rs.clone() };
                if let Some(first) = seen.insert((m.clone(), service.real_port(&expanded)), r) {
                    error(
                        format!("{path}.server"),
                        format!("{m} is already a real server of this service (real_servers[{first}])"),
                    )?;
                }
                out.push(expanded);
            }
        }
        Ok(out)
    }
}

/// Tunnel options as ipvsadm takes them: only for TUN, a port for gue alone, a
/// checksum option for gue and gre (remcsum for gue alone).
fn check_tunnel(path: &str, fwd: lvs_ipvs::Forwarding, t: lvs_ipvs::Tunnel) -> Result<(), TopologyError> {
    use lvs_ipvs::{Tunnel, TunnelType};
    let problem = match (fwd, t.kind) {
        (f, _) if f != lvs_ipvs::Forwarding::Tunnel => Some("tunnel options are for TUN real servers"),
        (_, TunnelType::Gue) if t.port == 0 => Some("a gue tunnel needs a port (ipvsadm's --tun-port)"),
        (_, TunnelType::Ipip | TunnelType::Gre) if t.port != 0 => Some("only a gue tunnel takes a port"),
        _ if t.flags > Tunnel::REMCSUM => Some("flags is 0 (nocsum), 1 (csum) or 2 (remcsum)"),
        (_, TunnelType::Ipip) if t.flags != 0 => Some("an ipip tunnel takes no checksum option"),
        (_, TunnelType::Gre) if t.flags == Tunnel::REMCSUM => Some("remcsum is for gue tunnels only"),
        _ => None,
    };
    match problem {
        Some(p) => error(path.to_owned(), p),
        None => Ok(()),
    }
}

/// A fallback names one server (not a group of several).
fn check_fallback(path: &str, name: &str, topo: &Topology, names: &Names) -> Result<(), TopologyError> {
    match names.refs.get(name) {
        Some((_, members)) if members.len() == 1 => Ok(()),
        Some((_, members)) => error(
            path.to_owned(),
            format!(
                "{name:?} is a group of {}: a fallback is one server, such as {:?}",
                members.len(),
                members[0]
            ),
        ),
        None => error(
            path.to_owned(),
            format!("no server named {name:?} (servers are: {})", Names::describe(topo)),
        ),
    }
}

/// A service is addressed one way, and ipvsadm accepts a port of 0 only with persistence.
fn check_service(path: &str, service: &Service) -> Result<(), TopologyError> {
    match (service.vip, service.fwmark) {
        (None, None) => error(format!("{path}.vip"), "a service needs a vip and port, or a fwmark")?,
        (Some(_), Some(_)) => {
            error(format!("{path}.fwmark"), "a service has a vip and port or a fwmark, not both")?
        }
        (_, Some(0)) => error(format!("{path}.fwmark"), "a firewall mark is an integer > 0")?,
        (Some(_), None) if service.port == 0 && service.persistence_s.is_none() => error(
            format!("{path}.port"),
            "port 0 (every port) needs persistence (persistence_s), as in ipvsadm",
        )?,
        _ => {}
    }
    // ipvsadm's parse_sched_flags(): "incompatible scheduler flag".
    let scheduler = service.scheduler;
    for (i, f) in service.flags.iter().enumerate() {
        if let Some(own) = f.sched_flag().and_then(|w| w.scheduler().filter(|&s| s != scheduler)) {
            error(
                format!("{path}.flags[{i}]"),
                format!(
                    "{} is a flag of the {own} scheduler, not of {scheduler} (ipvsadm refuses it; \
                     flag_1..flag_3 name the bits for any scheduler)",
                    f.sched_flag().map_or("", lvs_ipvs::SchedFlag::name)
                ),
            )?;
        }
    }
    if let Some(mask) = service.netmask {
        let family_ok = !matches!(
            (service.vip, mask),
            (Some(IpAddr::V4(_)), IpAddr::V6(_)) | (Some(IpAddr::V6(_)), IpAddr::V4(_))
        );
        let bits = match mask {
            IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
            IpAddr::V6(m) => u128::from(m),
        };
        // A mask is ones then zeros (`255.255.255.0`, `ffff:ffff::`).
        if !family_ok || bits.leading_ones() + bits.trailing_zeros() < 128 {
            error(
                format!("{path}.netmask"),
                format!(
                    "{mask} is not a netmask of the VIP's family (such as 255.255.255.0 or ffff:ffff:ffff:ffff::)"
                ),
            )?;
        }
    }
    if let Some(p) = service.persistence_s {
        if !(1.0..=31.0 * 86400.0).contains(&p) {
            error(
                format!("{path}.persistence_s"),
                format!("persistence {p} s is out of range 1..=2678400 s"),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(text: &str) -> Topology {
        ron::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    const BASE: &str = r#"(
        directors: [(name: "lvs", address: "10.0.0.1", services: [
            (vip: Some("10.0.1.1"), port: 80, real_servers: [(server: "web"), (server: "db")]),
            (vip: Some("10.0.1.1"), port: 443, real_servers: [(server: "web2", weight: 3)]),
        ])],
        servers: [
            (name: "web", address: "10.0.0.10", count: 3, gateway: Some("lvs")),
            (name: "db", address: "10.0.0.20"),
        ],
    )"#;

    #[test]
    fn groups_expand_to_numbered_servers_and_references() {
        let t = topo(BASE).expand().unwrap();
        let names: Vec<(&str, String)> =
            t.servers.iter().map(|s| (s.name.as_str(), s.address.to_string())).collect();
        assert_eq!(
            names,
            [
                ("web1", "10.0.0.10".to_owned()),
                ("web2", "10.0.0.11".to_owned()),
                ("web3", "10.0.0.12".to_owned()),
                ("db", "10.0.0.20".to_owned()),
            ]
        );
        assert!(t.servers.iter().all(|s| s.count == 1));
        assert_eq!(t.servers[2].gateway.as_deref(), Some("lvs"));
        let refs: Vec<&str> =
            t.directors[0].services[0].real_servers.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(refs, ["web1", "web2", "web3", "db"]);
        let one = &t.directors[0].services[1].real_servers;
        assert_eq!((one.len(), one[0].server.as_str(), one[0].weight), (1, "web2", 3));
        assert_eq!(t.expand().unwrap(), t, "expanding twice changes nothing");
    }

    #[test]
    fn ipv6_groups_count_up() {
        let t = topo(r#"(directors: [], servers: [(name: "v", address: "2001:db8::fffe", count: 3)])"#);
        let a: Vec<String> = t.expand().unwrap().servers.iter().map(|s| s.address.to_string()).collect();
        assert_eq!(a, ["2001:db8::fffe", "2001:db8::ffff", "2001:db8::1:0"]);
    }

    fn expand_err(text: &str) -> TopologyError {
        topo(text).expand().unwrap_err()
    }

    #[test]
    fn errors_name_the_field_as_written() {
        let e = expand_err(&BASE.replace(r#"(server: "db")"#, r#"(server: "x")"#));
        assert_eq!(e.path, "directors[0].services[0].real_servers[1].server");
        assert_eq!(e.message, r#"no real server named "x" (servers are: web, db; web is web1..web3)"#);

        let e = expand_err(&BASE.replace(r#"name: "db""#, r#"name: "web3""#));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("servers[1].name", r#"name "web3" is already used by servers[0]"#)
        );

        let e = expand_err(&BASE.replace("count: 3", "count: 0"));
        assert_eq!(e.path, "servers[0].count");

        let e = expand_err(&BASE.replace(r#"gateway: Some("lvs")"#, r#"gateway: Some("lvs2")"#));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("servers[0].gateway", r#"no director named "lvs2" (directors are: lvs)"#)
        );

        let e = expand_err(
            &BASE.replace(r#"address: "10.0.0.20""#, r#"address: "10.0.0.20", backend: Some("pg")"#),
        );
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("servers[1].backend", r#"no backend named "pg" (backends are: none)"#)
        );

        let e = expand_err(&BASE.replace("10.0.0.20", "10.0.0.12"));
        assert_eq!(e.path, "servers[1].address");
        assert!(e.message.contains("web3"), "{e}");

        let e = expand_err(&BASE.replace("10.0.0.10", "255.255.255.254"));
        assert_eq!(e.path, "servers[0].count");
        assert!(e.message.contains("run past"), "{e}");

        for (tunnel, message) in [
            ("forwarding: TUN, tunnel: Some((kind: gue))", "a gue tunnel needs a port"),
            ("forwarding: TUN, tunnel: Some((kind: gre, port: 4))", "only a gue tunnel takes a port"),
            ("forwarding: TUN, tunnel: Some((flags: 1))", "an ipip tunnel takes no checksum"),
            ("forwarding: TUN, tunnel: Some((kind: gre, flags: 2))", "remcsum is for gue"),
            ("forwarding: TUN, tunnel: Some((kind: gue, port: 1, flags: 3))", "flags is 0"),
            ("forwarding: DR, tunnel: Some((kind: gre))", "for TUN real servers"),
        ] {
            let e = expand_err(&BASE.replace("weight: 3", &format!("weight: 3, {tunnel}")));
            assert_eq!(e.path, "directors[0].services[1].real_servers[0].tunnel", "{tunnel}");
            assert!(e.message.contains(message), "{tunnel}: {e}");
        }
        let ok = BASE.replace(
            "weight: 3",
            "weight: 3, forwarding: TUN, tunnel: Some((kind: gue, port: 6080, flags: 2))",
        );
        topo(&ok).expand().expect("a gue tunnel with a port and remcsum");

        let e = expand_err(&BASE.replace("weight: 3", "weight: 65536"));
        assert_eq!(e.path, "directors[0].services[1].real_servers[0].weight");

        let e = expand_err(
            &BASE.replace(r#"(server: "web2", weight: 3)"#, r#"(server: "web2"), (server: "web")"#),
        );
        assert_eq!(e.path, "directors[0].services[1].real_servers[1].server");
        assert!(e.message.contains("already a real server"), "{e}");
    }

    #[test]
    fn services_are_checked() {
        let e = expand_err(&BASE.replace(r#"vip: Some("10.0.1.1"), port: 443"#, "port: 443"));
        assert_eq!(e.path, "directors[0].services[1].vip");
        let e = expand_err(&BASE.replace("port: 443", "port: 443, fwmark: Some(1)"));
        assert_eq!(e.path, "directors[0].services[1].fwmark");
        let e = expand_err(&BASE.replace("port: 443", "port: 0"));
        assert_eq!(e.path, "directors[0].services[1].port");
        assert!(topo(&BASE.replace("port: 443", "port: 0, persistence_s: Some(300)")).expand().is_ok());
        let e = expand_err(&BASE.replace("port: 443", "port: 80"));
        assert_eq!(e.path, "directors[0].services[1].port");
        let e = expand_err(&BASE.replace("port: 443", "port: 443, flags: [one_packet, mh_port]"));
        assert_eq!(e.path, "directors[0].services[1].flags[1]");
        assert!(e.message.starts_with("mh-port is a flag of the mh scheduler, not of "), "{}", e.message);
        let ok = BASE.replace("port: 443", "port: 443, scheduler: mh, flags: [mh_port, flag_3]");
        assert!(topo(&ok).expand().is_ok());
        let e = expand_err(&BASE.replace("port: 443", r#"port: 443, netmask: Some("255.0.255.0")"#));
        assert_eq!(e.path, "directors[0].services[1].netmask");
        let e = expand_err(&BASE.replace("port: 443", r#"port: 443, netmask: Some("ffff::")"#));
        assert_eq!(e.path, "directors[0].services[1].netmask");
        assert!(
            topo(&BASE.replace("port: 443", r#"port: 443, netmask: Some("255.255.240.0")"#)).expand().is_ok()
        );
        let e =
            expand_err(&BASE.replace(
                r#"address: "10.0.0.1","#,
                r#"address: "10.0.0.1", timeouts: (tcpfin_s: Some(-1.0)),"#,
            ));
        assert_eq!(e.path, "directors[0].timeouts.tcpfin_s");
        let fw = BASE.replace(r#"vip: Some("10.0.1.1"), port: 443"#, "fwmark: Some(7)");
        assert!(topo(&fw).expand().is_ok());
    }

    const PAIR: &str = r#"(
        directors: [
            (name: "lb1", address: "10.0.0.1", services: [
                (vip: Some("10.0.1.1"), port: 80, real_servers: [(server: "web", forwarding: DR)],
                 check: Some((fallback: Some((server: "sorry", forwarding: DR))))),
            ]),
            (name: "lb2", address: "10.0.0.2"),
        ],
        servers: [(name: "web", address: "10.0.0.10", count: 3), (name: "sorry", address: "10.0.0.99")],
        ha: Some((directors: ["lb1", "lb2"], failover: Vrrp())),
    )"#;

    #[test]
    fn a_member_without_services_runs_the_primarys() {
        let t = topo(PAIR).expand().unwrap();
        assert_eq!(t.directors[1].services, t.directors[0].services);
        let refs: Vec<&str> =
            t.directors[1].services[0].real_servers.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(refs, ["web1", "web2", "web3"]);
        assert!(t.directors[1].services[0].check.is_some());
        assert_eq!(t.ha, topo(PAIR).ha);
        // Its own list of the same services is accepted.
        let same = PAIR.replace(
            r#"(name: "lb2", address: "10.0.0.2")"#,
            r#"(name: "lb2", address: "10.0.0.2", services: [(vip: Some("10.0.1.1"), port: 80)])"#,
        );
        assert!(topo(&same).expand().is_ok());
        // Without the group, lb2 has no services.
        let alone = topo(PAIR);
        let alone = Topology { ha: None, ..alone };
        assert!(alone.expand().unwrap().directors[1].services.is_empty());
    }

    #[test]
    fn groups_and_checks_are_checked() {
        let e = expand_err(&PAIR.replace(
            r#"(name: "lb2", address: "10.0.0.2")"#,
            r#"(name: "lb2", address: "10.0.0.2", services: [(vip: Some("10.0.1.1"), port: 81)])"#,
        ));
        assert_eq!(e.path, "directors[1].services");
        assert!(e.message.contains("leave its `services` out"), "{e}");
        let e = expand_err(&PAIR.replace(
            r#"(name: "lb2", address: "10.0.0.2")"#,
            r#"(name: "lb2", address: "10.0.0.2", segment: "dmz")"#,
        ));
        assert_eq!(e.path, "directors[1].segment");
        let e = expand_err(&PAIR.replace(r#"["lb1", "lb2"]"#, r#"["lb1", "lb3"]"#));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("ha.directors[1]", r#"no director named "lb3" (directors are: lb1, lb2)"#)
        );
        let e = expand_err(&PAIR.replace(r#"server: "sorry""#, r#"server: "nope""#));
        assert_eq!(e.path, "directors[0].services[0].check.fallback.server");
        assert!(e.message.starts_with(r#"no server named "nope" (servers are: web, sorry;"#), "{e}");
        let e = expand_err(&PAIR.replace(r#"server: "sorry""#, r#"server: "web""#));
        assert_eq!(e.path, "directors[0].services[0].check.fallback.server");
        assert!(e.message.contains("a group of 3"), "{e}");
        assert!(topo(&PAIR.replace(r#"server: "sorry""#, r#"server: "web2""#)).expand().is_ok());
        let e = expand_err(&PAIR.replace("check: Some((", "check: Some((interval_s: Some(-1.0), "));
        assert_eq!(e.path, "directors[0].services[0].check.interval_s");
    }
}
