//! piranha's `lvs.cf` as a topology: the LVS router pair (`primary`, `backup`, pulse's
//! `keepalive`, `deadtime`, `heartbeat_port`), the forwarding method (`network`), the
//! sync daemon, and each active `virtual` server with its nanny check (`timeout`,
//! `reentry`, `quiesce_server`, `send`, `expect`, `use_regex`, `send_program`) and its
//! active real servers.
//!
//! The grammar is piranha 0.8.6's (lvsconfig.c: `tokenizeString()`, `getNextToks()`,
//! `parseConfiguration()`, `parseVirtualServer()`, `parseActualServer()`): a statement per
//! line, `#` comment lines, tokens separated by blanks, `"..."` or `'...'` quoting, `KEY =
//! VALUE` (two values for `address` and `nat_router`), `virtual NAME {`, `failover NAME {`,
//! `server NAME {` and `}` on lines of their own. What piranha's parser refuses (an
//! unknown keyword, a missing `=`, a value too many, a bad number or address, an
//! unterminated quote) is an [`ImportError`] at its line and column; what it accepts but
//! the topology cannot hold (failover services, load monitors, private heartbeat
//! addresses, commands run on fail-over, inactive entries, a block the end of the file
//! closes, text after a `}`, ...) is a [`Note`]. Two values it accepts are refused, because
//! the daemons cannot run them: `timeout = 0` (nanny divides by it) and `service = fos`.
//! Checked against piranha 0.8.6's own parser (lvsconfig.c built with a small driver, not
//! part of lvsim): it accepts every lvs.cf lvsim writes and reads the same values, and
//! refuses the broken files of this module's tests at the same lines.
//! Strings get nanny's escapes undone (`convert_str()`: `\\`, `\r`, `\n`, `\t`, `\'`,
//! `\"`). Defaults are lvsconfig.c's: `keepalive = 2`, `deadtime = 5`, `heartbeat_port =
//! 539`, `network = nat`; per virtual server port 80, tcp, wlc, `timeout = 10`, `reentry =
//! 180`, inactive unless `active = 1`; per real server the virtual server's port (as parsed
//! so far), weight 1, inactive unless `active = 1`.
//!
//! # Modules
//! - this file: [`import`] and the topology built from what was read (`Build`).
//! - `parse.rs`: lines, tokens and blocks, into `Global` and `Virtual` with lvsconfig.c's
//!   defaults.
//! - `tests.rs`: the round trip, piranha's example layouts, the refusals.

mod parse;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::{Forwarding, Protocol};

use parse::{Global, Parser, Rs, Virtual, director_names, tokenize};

use super::{ImportError, Imported, Note, Source};
use crate::{CheckKind, Checker, Director, Failover, Ha, HealthCheck, RealServer, Server, Service, Topology};

/// Reads one `lvs.cf`.
pub(super) fn import(sources: &[&Source]) -> Result<Imported, ImportError> {
    let [src] = sources else {
        let path = sources.get(1).map_or("", |s| s.path.as_str());
        return Err(ImportError::file(path, "one lvs.cf at a time: it describes both LVS routers"));
    };
    let lines = tokenize(&src.path, &src.text)?;
    let mut p = Parser { path: &src.path, notes: Vec::new(), g: Global::default(), virtuals: Vec::new() };
    p.parse(&lines)?;
    let names = director_names(&src.text);
    let Parser { g, virtuals, mut notes, .. } = p;
    let topology = Build { path: &src.path, g: &g, notes: &mut notes }.topology(&virtuals, names)?;
    notes.sort_by_key(|n| n.line);
    Ok(Imported { topology, notes })
}
/// The prefix length of a contiguous netmask.
fn prefix(m: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(m);
    let n = bits.leading_ones();
    (bits.checked_shl(n).unwrap_or(0) == 0).then_some(n as u8)
}

/// The topology from what was parsed.
struct Build<'a> {
    path: &'a str,
    g: &'a Global,
    notes: &'a mut Vec<Note>,
}

impl Build<'_> {
    fn note(&mut self, line: usize, m: impl Into<String>) {
        self.notes.push(Note { path: self.path.to_owned(), line, message: m.into() });
    }

    fn topology(
        mut self,
        virtuals: &[Virtual],
        (pname, bname): (String, String),
    ) -> Result<Topology, ImportError> {
        let g = self.g;
        let Some(primary) = g.primary else {
            return Err(ImportError::file(
                self.path,
                "no `primary = ADDRESS`: lvs.cf names the primary LVS router",
            ));
        };
        let mut d = Director::new(&pname, IpAddr::V4(primary));
        let [tcp, fin, udp] = g.timeouts.map(|t| t.map(f64::from));
        d.timeouts = crate::Timeouts { tcp_s: tcp, tcpfin_s: fin, udp_s: udp };
        let mut topo = Topology::default();
        let ha = self.group(virtuals, &pname, &bname);
        let mut servers: Vec<Server> = Vec::new();
        for v in virtuals {
            if let Some(s) = self.service(v, &pname, &mut servers, ha.as_ref()) {
                d.services.push(s);
            }
        }
        topo.directors.push(d);
        if ha.is_some() {
            let backup = g.backup.map_or(Ipv4Addr::UNSPECIFIED, |b| b.0);
            topo.directors.push(Director::new(&bname, IpAddr::V4(backup)));
            if g.deadtime.0 <= g.keepalive.0 {
                let m = format!(
                    "deadtime {} is not longer than keepalive {}: pulse would declare a live partner dead",
                    g.deadtime.0, g.keepalive.0
                );
                return Err(ImportError::at(self.path, g.deadtime.1.max(g.keepalive.1), 1, m));
            }
        }
        if let Some((addr, _, line)) = &g.nat_router
            && *addr != primary
        {
            let m = format!(
                "nat_router {addr}: the real servers' gateway is the primary's address {primary} in the topology"
            );
            self.note(*line, m);
        }
        topo.servers = servers;
        topo.ha = ha;
        Ok(topo)
    }

    /// The pulse group (with `backup_active = 1` and a `backup`), its interfaces and sync.
    fn group(&mut self, virtuals: &[Virtual], pname: &str, bname: &str) -> Option<Ha> {
        let g = self.g;
        let first = virtuals.iter().find(|v| v.active && !v.failover && v.address.is_some());
        let ext = first.and_then(|v| v.address.as_ref()).map(|a| base(&a.1).to_owned());
        let int = g.nat_router.as_ref().map(|n| base(&n.1).to_owned()).or_else(|| g.syncd_iface.clone());
        let (Some(_), Some(_)) = (g.backup_active, g.backup) else {
            if let Some(line) = g.backup_active {
                self.note(line, "backup_active = 1 without `backup = ADDRESS`: one LVS router, no fail-over");
            } else if let Some((_, line)) = g.backup {
                self.note(
                    line,
                    "a backup that is not active (backup_active = 0): one LVS router, no fail-over",
                );
            }
            if let Some(line) = g.syncdaemon {
                self.note(line, "the sync daemon without a backup router is not modelled");
            }
            return None;
        };
        let failover = Failover::Pulse {
            keepalive_s: g.keepalive.0.into(),
            deadtime_s: g.deadtime.0.into(),
            heartbeat_port: g.heartbeat_port,
        };
        let mut ha = Ha::new(vec![pname.to_owned(), bname.to_owned()], failover);
        if let Some(e) = ext {
            ha.external_interface = e;
        }
        if let Some(i) = int {
            ha.internal_interface = i;
        }
        if let Some(p) = first.and_then(|v| v.vip_nmask).and_then(prefix).filter(|p| (1..=32).contains(p)) {
            ha.vip_prefix = p;
        }
        if g.syncdaemon.is_some() {
            let iface = g.syncd_iface.clone().filter(|i| *i != ha.internal_interface);
            ha.sync = Some(crate::SyncDaemon { interface: iface, syncid: g.syncd_id, ..Default::default() });
        }
        Some(ha)
    }

    /// An active virtual server as a service of the primary, its real servers added to
    /// `servers`; `None` (with a note) for what cannot be one.
    fn service(
        &mut self,
        v: &Virtual,
        pname: &str,
        servers: &mut Vec<Server>,
        ha: Option<&Ha>,
    ) -> Option<Service> {
        if v.failover {
            self.note(v.line, format!("failover {}: piranha's failover services are not mapped", v.name));
            return None;
        }
        if !v.active {
            self.note(v.line, format!("virtual {}: not active (no `active = 1`): not imported", v.name));
            return None;
        }
        let Some((vip, dev)) = &v.address else {
            self.note(v.line, format!("virtual {}: no `address = IP DEVICE`: not imported", v.name));
            return None;
        };
        if let Some(ha) = ha {
            if base(dev) != ha.external_interface {
                self.note(
                    v.line,
                    format!(
                        "virtual {}: device {dev}: every VIP is put on {}",
                        v.name, ha.external_interface
                    ),
                );
            }
            if v.vip_nmask.and_then(prefix).is_some_and(|p| p != ha.vip_prefix) {
                self.note(
                    v.line,
                    format!("virtual {}: vip_nmask: every VIP gets /{}", v.name, ha.vip_prefix),
                );
            }
        }
        let mut real_servers = Vec::new();
        for rs in &v.servers {
            if let Some(r) = self.real_server(v, rs, pname, servers) {
                real_servers.push(r);
            }
        }
        let check = self.check(v);
        Some(Service {
            protocol: v.protocol,
            vip: if v.fwmark.is_some() { None } else { Some(IpAddr::V4(*vip)) },
            port: v.port,
            fwmark: v.fwmark,
            scheduler: v.scheduler,
            persistence_s: (v.persistent > 0).then(|| f64::from(v.persistent)),
            netmask: v.pmask.filter(|m| *m != Ipv4Addr::BROADCAST && v.persistent > 0).map(IpAddr::V4),
            real_servers,
            check: Some(check),
            ..Service::default()
        })
    }

    fn real_server(
        &mut self,
        v: &Virtual,
        rs: &Rs,
        pname: &str,
        servers: &mut Vec<Server>,
    ) -> Option<RealServer> {
        let Some(addr) = rs.address.map(IpAddr::V4) else {
            self.note(rs.line, format!("server {}: no address: not imported", rs.name));
            return None;
        };
        if !rs.active {
            self.note(rs.line, format!("server {}: not active (no `active = 1`): not imported", rs.name));
            return None;
        }
        let name = match servers.iter().find(|s| s.address == addr) {
            Some(s) => {
                if s.name != rs.name {
                    self.note(
                        rs.line,
                        format!("server {}: the address of server {}: one server", rs.name, s.name),
                    );
                }
                s.name.clone()
            }
            None => {
                let mut name = rs.name.clone();
                if servers.iter().any(|s| s.name == name) {
                    name = format!("{}-{addr}", rs.name);
                    self.note(
                        rs.line,
                        format!("server {}: a second address for that name: called it {name}", rs.name),
                    );
                }
                let gateway = (self.g.network == Forwarding::Masq).then(|| pname.to_owned());
                servers.push(Server {
                    name: name.clone(),
                    address: addr,
                    count: 1,
                    segment: "lan".to_owned(),
                    gateway,
                    uplink: Default::default(),
                    cpu: Default::default(),
                    backend: None,
                });
                name
            }
        };
        Some(RealServer {
            server: name,
            port: (rs.port != v.port).then_some(rs.port),
            forwarding: self.g.network,
            weight: rs.weight,
            upper: 0,
            lower: 0,
            tunnel: None,
        })
    }

    /// nanny's check of a virtual server.
    fn check(&mut self, v: &Virtual) -> HealthCheck {
        let bare = v.send_program.is_none() && v.expect.is_none();
        let kind = match (&v.send, bare) {
            (None, true) if v.port == 80 => {
                self.note(
                    v.line,
                    format!(
                        "virtual {}: no send or expect on port 80: nanny sends GET / and expects HTTP",
                        v.name
                    ),
                );
                CheckKind::SendExpect {
                    send: Some("GET / HTTP/1.0\r\n\r\n".into()),
                    expect: Some("HTTP".into()),
                    use_regex: false,
                    send_program: None,
                    demand_ms: 1.0,
                }
            }
            (None, true) => CheckKind::Connect,
            (Some(s), true) if s.is_empty() => CheckKind::Connect,
            _ => CheckKind::SendExpect {
                send: v.send.clone(),
                expect: v.expect.clone(),
                use_regex: v.use_regex,
                send_program: v.send_program.clone(),
                demand_ms: 1.0,
            },
        };
        if v.protocol == Protocol::Udp && v.send.is_none() && v.send_program.is_none() {
            self.note(v.line, format!("virtual {}: udp without send: nanny waits for an answer to nothing and every check fails", v.name));
        }
        HealthCheck {
            checker: Checker::Nanny,
            kind,
            timeout_s: Some(v.timeout.into()),
            quiescent: Some(v.quiesce),
            reentry_s: Some(v.reentry.into()),
            ..Default::default()
        }
    }
}

/// `eth0` of `eth0:1`.
fn base(dev: &str) -> &str {
    dev.split(':').next().unwrap_or(dev)
}
