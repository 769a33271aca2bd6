//! ipvsadm rules (`ipvsadm-save` output, a rules file, an ipvsadm shell script) as a
//! director's services, and whole ipvsadm files (`lvsim import`, [`import`]): one director
//! per file, a script's shell (sysctls, sync daemons, the group) read by `script.rs`.
//!
//! Lines are parsed by lvs-ipvs's ipvsadm grammar ([`lvs_ipvs::ipvsadm::parse`], the one
//! parser of ipvsadm rules: replay files, the master's ipvsadm backend). A leading
//! `ipvsadm` word is allowed, so the lines of an ipvsadm shell script (such as
//! [`crate::export::ipvsadm_for`]'s) import too. Every option `ipvsadm -S -n` writes imports
//! except `--pe` (the topology format has no persistence engine; refused at the option),
//! and [`crate::export::ipvsadm_rules`] writes back what was imported, so that
//! `ipvsadm -S -n` → import → export → `ipvsadm-restore` gives the same table
//! (tests/ipvsadm_roundtrip.rs checks it against the kernel), and lvsim's own files come
//! back byte for byte (tests/round_trip.rs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::ipvsadm::{Command, ParseError, ServiceArg, Word, default_netmask, parse, words};
use lvs_ipvs::{DestConfig, Forwarding, ServiceConfig, ServiceKey, SvcFlags, Tunnel};

use super::{ImportError, Imported, Note, Source};
use crate::expand::members;
use crate::export::addr_port;
use crate::{Flag, RealServer, Server, Service, Timeouts, Topology};

mod script;

/// Replaces the services of `topo.directors[director]` with those of an `ipvsadm-save`
/// (or `ipvsadm -S`) file: `-A` lines become services, `-a` lines their real servers in
/// order. A real server is matched by address to the (expanded) topology's servers;
/// an address the topology does not have becomes a new server named `rs-ADDRESS` with
/// default CPU, on the director's segment, with the director as gateway if it is NAT.
/// `--set` lines set the director's timeouts. A service the director already had keeps its
/// health check (`check`), which ipvsadm-save does not show. Returns the names of servers
/// it created.
///
/// Blank lines and `#` comments are skipped; `-C` drops the services read so far, `-D`
/// the one service (as a script's `ipvsadm -D ... || true` does). Any other command
/// (`-E`, `-e`, `-d`, `-Z`) is an error, as is a service added twice or an
/// `-a` for a service no earlier `-A` added. On error `topo` is left unchanged.
///
/// # Panics
/// If `director` is not an index of `topo.directors`.
pub fn ipvsadm_save(topo: &mut Topology, director: usize, text: &str) -> Result<Vec<String>, ImportError> {
    assert!(
        director < topo.directors.len(),
        "ipvsadm_save: director {director} of a topology with {} directors",
        topo.directors.len()
    );
    let mut state = Import {
        services: Vec::new(),
        timeouts: topo.directors[director].timeouts,
        new_servers: Vec::new(),
        known: topo.servers.iter().flat_map(members).collect(),
        director: &topo.directors[director].name,
        segment: &topo.directors[director].segment,
    };
    for (i, line) in text.lines().enumerate() {
        let at = |offset: usize, message: String| ImportError {
            path: String::new(),
            line: i + 1,
            column: line.get(..offset).map_or(offset, |s| s.chars().count()) + 1,
            message,
        };
        let Some((ws, cmd)) = parse_line(line).map_err(|e| at(e.offset, e.message))? else { continue };
        let service_at = at(service_offset(&ws), String::new());
        state.apply(&ws, cmd, service_at).map_err(|(offset, message)| at(offset, message))?;
    }
    state.check_fwmark_families()?;
    let Import { services, timeouts, new_servers, .. } = state;
    let created = new_servers.iter().map(|s| s.name.clone()).collect();
    let d = &mut topo.directors[director];
    let key = |s: &Service| (s.fwmark, s.protocol, s.vip, s.port);
    let mut services: Vec<Service> = services.into_iter().map(|(_, s, _)| s).collect();
    // ipvsadm-save knows no health checks: a service the director had keeps its own.
    for s in &mut services {
        s.check = d.services.iter().find(|o| key(o) == key(s)).and_then(|o| o.check.clone());
    }
    d.services = services;
    d.timeouts = timeouts;
    topo.servers.extend(new_servers);
    Ok(created)
}

/// Reads ipvsadm files into a topology: rules files (`ipvsadm -S -n` output, what
/// `ipvsadm-restore` reads) and shell scripts of ipvsadm commands, such as the
/// `ipvsadm[-NAME].rules` and `ipvsadm[-NAME].sh` that `lvsim export` writes.
///
/// A file is one director's, named by a `# Director NAME (ADDRESS)` comment line, else
/// `lvs1`, `lvs2`, ... at a documentation address (with a note). A script and a rules file
/// of the same director are read together: the rules must be the table the script makes.
/// From a script, besides its ipvsadm commands, come the sysctls
/// (`expire_nodest_conn`, `expire_quiescent_template`, the sync daemon's), the sync
/// daemons (`--start-daemon`), the group the director belongs to (the `# the primary of
/// the group A, B` comment) and the description (the comment lines after `set -e`);
/// any other shell line is named in a note and skipped.
pub(super) fn import(sources: &[&Source]) -> Result<Imported, ImportError> {
    let mut topo = Topology::default();
    let mut notes = Vec::new();
    let mut group = script::GroupLines::default();
    // Scripts first: a rules file is checked against its director's script.
    let mut order: Vec<&&Source> = sources.iter().collect();
    order.sort_by_key(|s| !script::is_script(&s.text));
    for (i, src) in order.into_iter().enumerate() {
        let (name, address) = director_comment(&src.text).unwrap_or_else(|| {
            let address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, u8::try_from(i + 1).unwrap_or(u8::MAX)));
            let message =
                format!("ipvsadm rules do not name the director: called it lvs{} at {address}", i + 1);
            notes.push(Note { path: src.path.clone(), line: 0, message });
            (format!("lvs{}", i + 1), address)
        });
        let read = script::read(src, &mut notes)?;
        let with_path = |e: ImportError| ImportError { path: src.path.clone(), ..e };
        match topo.directors.iter().position(|d| d.name == name) {
            Some(d) => same_table(&topo, d, src, &read.rules).map_err(with_path)?,
            None => {
                topo.directors.push(crate::Director::new(&name, address));
                let d = topo.directors.len() - 1;
                ipvsadm_save(&mut topo, d, &read.rules).map_err(with_path)?;
                read.apply(&mut topo, d, &mut group);
                if topo.description.is_empty() {
                    topo.description = read.description.clone();
                }
            }
        }
    }
    group.build(&mut topo, &mut notes);
    Ok(Imported { topology: topo, notes })
}

/// Checks that `rules` (a second file of director `d`) gives the table its first file
/// gave: the same `ipvsadm -S -n`.
fn same_table(topo: &Topology, d: usize, src: &Source, rules: &str) -> Result<(), ImportError> {
    let mut other = topo.clone();
    ipvsadm_save(&mut other, d, rules)?;
    let name = &topo.directors[d].name;
    let table = |t: &Topology| -> String {
        let text =
            crate::export::ipvsadm_rules(t, name, crate::export::Target::default()).unwrap_or_default();
        text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
    };
    let (want, got) = (table(topo), table(&other));
    if want != got {
        let line =
            rules.lines().position(|l| !l.trim().is_empty() && !l.starts_with('#')).map_or(0, |i| i + 1);
        return Err(ImportError::at(
            &src.path,
            line,
            1,
            format!(
                "director {name}'s other file makes a different table: this one gives\n{got}while the first gives\n{want}"
            ),
        ));
    }
    Ok(())
}

/// `NAME` and `ADDRESS` of the first `# Director NAME (ADDRESS)` line.
fn director_comment(text: &str) -> Option<(String, IpAddr)> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("# Director ")?;
        let (name, addr) = rest.split_once(" (")?;
        let addr = addr.strip_suffix(')')?.parse().ok()?;
        Some((name.to_owned(), addr))
    })
}

/// What has been read so far; written into the topology only at the end.
struct Import<'a> {
    /// The services, with where their `-A` line names them.
    services: Vec<(ServiceKey, Service, ImportError)>,
    timeouts: Timeouts,
    new_servers: Vec<Server>,
    /// The topology's servers (expanded) as `(name, address)`.
    known: Vec<(String, IpAddr)>,
    director: &'a str,
    segment: &'a str,
}

/// An error at a byte offset of the line.
type LineError = (usize, String);

impl Import<'_> {
    fn apply(&mut self, ws: &[Word<'_>], cmd: Command, at: ImportError) -> Result<(), LineError> {
        let service_at = service_offset(ws);
        match cmd {
            Command::AddService(key, cfg) => {
                if self.services.iter().any(|(k, ..)| *k == key) {
                    return Err((service_at, format!("service {} was already added", ServiceArg(&key))));
                }
                let service = service(ws, key, &cfg)?;
                self.services.push((key, service, at));
            }
            Command::AddDest(key, d) => self.add_dest(ws, key, &d)?,
            Command::SetTimeouts(tcp, tcpfin, udp) => {
                // 0 leaves a timeout as it was, as with ipvsadm --set.
                let set = |slot: &mut Option<f64>, v: u32| {
                    if v != 0 {
                        *slot = Some(f64::from(v));
                    }
                };
                set(&mut self.timeouts.tcp_s, tcp);
                set(&mut self.timeouts.tcpfin_s, tcpfin);
                set(&mut self.timeouts.udp_s, udp);
            }
            Command::Clear => self.services.clear(),
            // A script's `ipvsadm -D SERVICE 2>/dev/null || true`: gone if it was there.
            Command::DelService(key) => self.services.retain(|(k, ..)| *k != key),
            Command::EditService(..) | Command::EditDest(..) | Command::DelDest(..) | Command::Zero(_) => {
                let at = ws.iter().find(|(_, w)| w.starts_with('-')).map_or(0, |(o, _)| *o);
                return Err((
                    at,
                    "expected -A, -a or --set (ipvsadm-save writes no other command)".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// `-a`: a real server of a service read before.
    fn add_dest(&mut self, ws: &[Word<'_>], key: ServiceKey, d: &DestConfig) -> Result<(), LineError> {
        let service_at = service_offset(ws);
        let Some(i) = self.services.iter().position(|(k, ..)| *k == key) else {
            return Err((
                service_at,
                format!(
                    "no service {} was added before this line (expected its -A line first)",
                    ServiceArg(&key)
                ),
            ));
        };
        let real_at = option_offset(ws, &["-r", "--real-server"]).unwrap_or(service_at);
        let forwarding = match d.fwd {
            Forwarding::Local => {
                return Err((real_at, "local forwarding is not modelled".to_owned()));
            }
            f => f,
        };
        let server = self.server_at(d.addr, forwarding);
        let service = &mut self.services[i].1;
        let port = match (service.fwmark, d.port) {
            (Some(_), 0) => None,
            (None, p) if p == service.port => None,
            (_, p) => Some(p),
        };
        let rs = RealServer {
            server,
            port,
            forwarding,
            weight: d.weight,
            upper: d.u_threshold,
            lower: d.l_threshold,
            tunnel: (forwarding == Forwarding::Tunnel && d.tunnel != Tunnel::default()).then_some(d.tunnel),
        };
        let port = service.real_port(&rs);
        if service.real_servers.iter().any(|r| r.server == rs.server && service.real_port(r) == port) {
            return Err((
                real_at,
                format!("real server {} is already in this service", addr_port(d.addr, port)),
            ));
        }
        service.real_servers.push(rs);
        Ok(())
    }

    /// The name of the server with that address, created if the topology has none.
    fn server_at(&mut self, addr: IpAddr, forwarding: Forwarding) -> String {
        if let Some((name, _)) = self.known.iter().find(|(_, a)| *a == addr) {
            return name.clone();
        }
        let gateway = (forwarding == Forwarding::Masq).then(|| self.director.to_owned());
        if let Some(s) = self.new_servers.iter_mut().find(|s| s.address == addr) {
            if s.gateway.is_none() {
                s.gateway = gateway;
            }
            return s.name.clone();
        }
        let name = format!("rs-{addr}");
        self.new_servers.push(Server {
            name: name.clone(),
            address: addr,
            count: 1,
            segment: self.segment.to_owned(),
            gateway,
            uplink: Default::default(),
            cpu: Default::default(),
            backend: None,
        });
        name
    }
}

/// The words of a line and its command, or `None` for a blank or comment line.
pub(crate) fn parse_line(line: &str) -> Result<Option<(Vec<Word<'_>>, Command)>, ParseError> {
    let mut ws = words(line);
    if ws.is_empty() {
        return Ok(None);
    }
    // A leading `ipvsadm` (a shell script's line); the parser then wants a command.
    if ws[0].1 == "ipvsadm" {
        ws.remove(0);
    }
    let cmd = parse(&ws)?;
    Ok(Some((ws, cmd)))
}

/// A service as the topology writes it.
fn service(ws: &[Word<'_>], key: ServiceKey, cfg: &ServiceConfig) -> Result<Service, LineError> {
    if let Some(pe) = cfg.pe {
        let at = option_offset(ws, &["--pe"]).unwrap_or(0);
        return Err((at, format!("the topology format has no persistence engine (--pe {})", pe.name())));
    }
    let (protocol, vip, port, fwmark) = match key {
        ServiceKey::Addr { protocol, addr, port } => (protocol, Some(addr), port, None),
        ServiceKey::Fwmark { mark, .. } => (lvs_ipvs::Protocol::Tcp, None, 0, Some(mark)),
    };
    let scheduler = cfg.scheduler;
    let mut flags: Vec<Flag> = cfg.flags.sched_flags(cfg.scheduler).map(Flag::from_sched_flag).collect();
    if cfg.flags.has(SvcFlags::ONEPACKET) {
        flags.push(Flag::OnePacket);
    }
    let persistence_s = cfg.persistence.map(|d| d.as_nanos() as f64 / 1e9);
    // IPv6 persistence granularity is a prefix length (1..=128, checked by the parser).
    let netmask = match (key.is_ipv6(), cfg.netmask) {
        (_, m) if m == default_netmask(&key) => None,
        (true, plen) => {
            Some(IpAddr::V6(Ipv6Addr::from(u128::MAX.checked_shl(128 - plen.min(128)).unwrap_or(0))))
        }
        (false, mask) => Some(IpAddr::V4(Ipv4Addr::from(mask))),
    };
    Ok(Service {
        name: None,
        protocol,
        vip,
        port,
        fwmark,
        scheduler,
        flags,
        persistence_s,
        netmask,
        real_servers: Vec::new(),
        check: None,
    })
}

impl Import<'_> {
    /// The topology has no address family for a firewall-mark service: the export
    /// writes `-6` when its real servers are IPv6. Refuse a service it would write
    /// otherwise.
    fn check_fwmark_families(&self) -> Result<(), ImportError> {
        for (key, service, at) in &self.services {
            let ServiceKey::Fwmark { ipv6, .. } = *key else { continue };
            let address = |name: &str| {
                let known = self.known.iter().find(|(n, _)| n == name).map(|(_, a)| *a);
                known.or_else(|| self.new_servers.iter().find(|s| s.name == name).map(|s| s.address))
            };
            let v6_servers =
                service.real_servers.iter().filter_map(|rs| address(&rs.server)).any(|a| a.is_ipv6());
            if v6_servers != ipv6 {
                let message = format!(
                    "{}: the topology format takes a firewall-mark service's family from its real servers' (IPv6 real servers make it -6)",
                    ServiceArg(key)
                );
                return Err(ImportError { message, ..at.clone() });
            }
        }
        Ok(())
    }
}

/// Offset of the argument of the first of `names` on the line.
fn option_offset(ws: &[Word<'_>], names: &[&str]) -> Option<usize> {
    let i = ws.iter().position(|(_, w)| names.contains(w))?;
    ws.get(i + 1).or(ws.get(i)).map(|(o, _)| *o)
}

/// Offset of the service address (or mark) on the line.
fn service_offset(ws: &[Word<'_>]) -> usize {
    let names = ["-t", "--tcp-service", "-u", "--udp-service", "--sctp-service", "-f", "--fwmark-service"];
    option_offset(ws, &names).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export;
    use lvs_ipvs::Protocol;

    fn named(name: &str) -> Topology {
        crate::named(name).unwrap().topology()
    }

    /// `topo` with the director's services replaced by an import of its own ipvsadm script.
    fn round_trip(topo: &Topology) -> (Topology, Topology) {
        let expanded = topo.expand().unwrap();
        let script = export::ipvsadm(topo, crate::export::Target::default());
        // The first director's part (the members of a fail-over group repeat it).
        let lines: String = script
            .split("\n# Director ")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("ipvsadm ") && !l.contains("-daemon"))
            .filter(|l| !l.starts_with("ipvsadm -D") && !l.starts_with("ipvsadm -L"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut back = topo.clone();
        // The import replaces the services; each keeps its health check (which
        // ipvsadm-save does not show).
        back.directors[0].timeouts = Timeouts::default();
        let created = ipvsadm_save(&mut back, 0, &lines).unwrap_or_else(|e| panic!("{e}\n{lines}"));
        assert_eq!(created, Vec::<String>::new(), "every address is a server of the topology");
        (expanded, back.expand().unwrap())
    }

    #[test]
    fn export_then_import_gives_back_the_services() {
        for n in crate::NAMED {
            let (want, got) = round_trip(&n.topology());
            assert_eq!(got.directors[0].services, want.directors[0].services, "{}", n.name);
        }
        let (want, got) = round_trip(&export::tests::everything());
        assert_eq!(got.directors[0].services, want.directors[0].services);
        assert_eq!(got.directors[0].timeouts, want.directors[0].timeouts);
    }

    const SAVE: &str = "\
# ipvsadm-save -n on lvs
-A -t 172.17.60.201:80 -s wlc
-a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 1

-a -t 172.17.60.201:80 -r 192.168.6.9:80 -m -w 2
-A -u 172.17.60.201:53 -s rr -o
-a -u 172.17.60.201:53 -r 192.168.6.9:53 -g -w 1 -x 10 -y 5
-A -f 3 -s sh -b sh-port -p 300 -M 255.255.255.0
-a -f 3 -r 192.168.6.5 -i -w 1
--set 900 0 30
";

    #[test]
    fn ipvsadm_save_output_becomes_services() {
        let mut t = named("tutorial-nat");
        let created = ipvsadm_save(&mut t, 0, SAVE).unwrap();
        assert_eq!(created, ["rs-192.168.6.9"]);
        let new = t.servers.iter().find(|s| s.name == "rs-192.168.6.9").unwrap();
        assert_eq!(
            (new.segment.as_str(), new.gateway.as_deref(), new.cpu.cores),
            ("internal", Some("lvs"), 1)
        );
        let d = &t.directors[0];
        assert_eq!(d.timeouts, Timeouts { tcp_s: Some(900.0), tcpfin_s: None, udp_s: Some(30.0) });
        let [web, dns, mark] = &d.services[..] else { panic!("{:?}", d.services) };
        assert_eq!(
            (web.scheduler, web.port, web.vip.unwrap().to_string()),
            (lvs_ipvs::SchedulerKind::Wlc, 80, "172.17.60.201".into())
        );
        let rs: Vec<(&str, u32)> = web.real_servers.iter().map(|r| (r.server.as_str(), r.weight)).collect();
        assert_eq!(rs, [("rs1", 1), ("rs-192.168.6.9", 2)]);
        assert_eq!((dns.protocol, dns.flags.as_slice()), (Protocol::Udp, &[Flag::OnePacket][..]));
        let r = &dns.real_servers[0];
        assert_eq!((r.forwarding, r.upper, r.lower, r.port), (Forwarding::DirectRouting, 10, 5, None));
        assert_eq!((mark.fwmark, mark.vip, mark.scheduler), (Some(3), None, lvs_ipvs::SchedulerKind::Sh));
        assert_eq!((mark.flags.as_slice(), mark.persistence_s), (&[Flag::ShPort][..], Some(300.0)));
        assert_eq!(mark.netmask, Some("255.255.255.0".parse().unwrap()));
        assert_eq!((mark.real_servers[0].server.as_str(), mark.real_servers[0].port), ("rs2", None));
        t.expand().expect("the imported topology is valid");
    }

    #[test]
    fn group_members_are_matched_by_address() {
        let mut t = named("web-farm");
        let created = ipvsadm_save(
            &mut t,
            0,
            "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 10.0.0.13:80 -g -w 1\n",
        )
        .unwrap();
        assert!(created.is_empty());
        assert_eq!(t.directors[0].services[0].real_servers[0].server, "web3");
        assert_eq!(t.directors[0].services.len(), 1, "the old services are replaced");
    }

    fn import_err(text: &str) -> ImportError {
        let mut t = named("tutorial-nat");
        let before = t.clone();
        let e = ipvsadm_save(&mut t, 0, text).unwrap_err();
        assert_eq!(t, before, "an error leaves the topology unchanged");
        e
    }

    #[test]
    fn errors_have_line_column_and_what_was_expected() {
        let e = import_err("-A -t 172.17.60.201:80 -s rr\n\n-a -t 172.17.60.201:8080 -r 192.168.6.4:80 -m\n");
        assert_eq!((e.line, e.column), (3, 7));
        assert_eq!(
            e.message,
            "no service -t 172.17.60.201:8080 was added before this line (expected its -A line first)"
        );
        let e = import_err("# comment\n-A -t 172.17.60.201:80 -s fastest\n");
        assert_eq!((e.line, e.column), (2, 27));
        assert!(e.message.contains("unknown scheduler"), "{e}");
        let e = import_err("-A -t 172.17.60.201:80 -w 1 -m --lots\n");
        assert_eq!((e.line, e.column), (1, 32));
        assert_eq!(e.to_string(), "1:32: unknown ipvsadm option \"--lots\"");
        let e = import_err("-A -t 172.17.60.201:80\n-A -t 172.17.60.201:80\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 7, "service -t 172.17.60.201:80 was already added")
        );
        let e = import_err("-A -t 172.17.60.201:80\n  -E -t 172.17.60.201:80 -s rr\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.starts_with("expected -A, -a or --set"), "{e}");
        let e = import_err(
            "-A -t 172.17.60.201:80\n-a -t 172.17.60.201:80 -r 192.168.6.4 -m\n-a -t 172.17.60.201:80 -r 192.168.6.4:80 -m\n",
        );
        assert_eq!((e.line, e.column), (3, 27));
        assert!(e.message.contains("already in this service"), "{e}");
        let e = import_err("ipvsadm\n");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.starts_with("expected an ipvsadm command"), "{e}");
        let e = import_err("-A -t 172.17.60.201\n");
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.contains("VIP:port"), "{e}");
    }

    #[test]
    fn scheduler_flags_keep_ipvsadms_words() {
        let mut t = named("tutorial-dr");
        let text = "-A -t 1.2.3.4:80 -s sh -b flag-3,sh-port\n-A -t 1.2.3.4:81 -s wlc -b flag-1\n\
                    -A -t 1.2.3.4:82 -s mh -b flag-1,flag-2\n";
        ipvsadm_save(&mut t, 0, text).unwrap();
        let flags: Vec<&[Flag]> = t.directors[0].services.iter().map(|s| s.flags.as_slice()).collect();
        assert_eq!(
            flags,
            [&[Flag::ShPort, Flag::Flag3][..], &[Flag::Flag1][..], &[Flag::MhFallback, Flag::MhPort][..]]
        );
    }

    #[test]
    fn clear_and_shell_prefix_and_ipv6() {
        let mut t = named("tutorial-dr");
        let text = "ipvsadm -A -t 1.2.3.4:80\nipvsadm -C\nipvsadm -A -t [2001:db8::1]:443 -s wrr -p 60 -M 64\n\
                    ipvsadm -a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -g -w 1\n-A -f 5 -6 -s rr\n\
                    -a -f 5 -6 -r [2001:db8::2]:0 -g -w 1\n";
        let created = ipvsadm_save(&mut t, 0, text).unwrap();
        assert_eq!(created, ["rs-2001:db8::2"]);
        let s = &t.directors[0].services;
        assert_eq!(s.len(), 2, "-C dropped the first service");
        assert_eq!(s[0].netmask, Some("ffff:ffff:ffff:ffff::".parse().unwrap()));
        assert_eq!(s[1].fwmark, Some(5));
        assert_eq!(t.servers.last().unwrap().gateway, None, "DR needs no gateway");
    }

    #[test]
    fn tunnel_options_import_and_what_the_format_cannot_say_is_refused() {
        let mut t = named("tutorial-nat");
        let text = "-A --sctp-service 172.17.60.201:80 -s rr\n\
                    -a --sctp-service 172.17.60.201:80 -r 192.168.6.4:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
                    -a --sctp-service 172.17.60.201:80 -r 192.168.6.5:80 -i -w 1 --tun-type ipip\n";
        ipvsadm_save(&mut t, 0, text).unwrap();
        let s = &t.directors[0].services[0];
        assert_eq!(s.protocol, Protocol::Sctp);
        let tunnels: Vec<_> = s.real_servers.iter().map(|r| r.tunnel).collect();
        assert_eq!(
            tunnels,
            [Some(Tunnel { kind: lvs_ipvs::TunnelType::Gue, port: 6080, flags: Tunnel::CSUM }), None]
        );
        let script = export::ipvsadm(&t, crate::export::Target::default());
        assert!(
            script.contains("-r 192.168.6.4:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n"),
            "{script}"
        );
        let e = import_err("-A -u 172.17.60.201:5060 -s rr -p 60 --pe sip\n");
        assert_eq!((e.line, e.column), (1, 43));
        assert!(e.message.contains("no persistence engine"), "{e}");
        let e = import_err("-A -f 5 -6 -s rr\n-A -f 6 -s rr\n");
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.starts_with("-f 5 -6: the topology format takes"), "{e}");
        let e = import_err("-A -f 6 -s rr\n-a -f 6 -r [2001:db8::2]:0 -g -w 1\n");
        assert_eq!((e.line, e.column), (1, 7));
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use crate::export::{self, Target};

    fn src(path: &str, text: &str) -> Source {
        Source { path: path.into(), text: text.into() }
    }

    fn import_files(files: &[(String, String)]) -> Imported {
        let sources: Vec<Source> = files.iter().map(|(p, t)| src(p, t)).collect();
        let refs: Vec<&Source> = sources.iter().collect();
        import(&refs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A peer-to-peer synced pair with timeouts, switches and a description.
    const PAIR: &str = r#"(
        description: "two lines\nof description",
        directors: [
            (name: "a", address: "10.0.0.1", timeouts: (tcp_s: Some(900.0)), expire_nodest_conn: true,
             services: [(vip: Some("10.0.1.1"), port: 80, scheduler: rr,
                         real_servers: [(server: "web", forwarding: NAT)]),
                        (fwmark: Some(3), scheduler: sh, real_servers: [(server: "web")])]),
            (name: "b", address: "10.0.0.2", sloppy_tcp: true, sloppy_sctp: true, conn_reuse_mode: 0),
        ],
        servers: [(name: "web", address: "10.0.0.11", count: 2)],
        ha: Some((directors: ["a", "b"], failover: Heartbeat(),
                  sync: Some((mode: peer_to_peer, syncid: 4, version: 0, threshold: 2, period: 20,
                              max_len: 1000, interface: Some("bond0"))))),
    )"#;

    #[test]
    fn scripts_give_back_the_group_its_sync_daemons_and_the_directors_switches() {
        let t: Topology = ron::from_str(PAIR).unwrap();
        let files = export::ipvsadm_files(&t, Target::default());
        let back = import_files(&files);
        let topo = &back.topology;
        assert_eq!(topo.description, "two lines\nof description");
        let ha = topo.ha.as_ref().unwrap();
        assert_eq!(ha.directors, ["a", "b"]);
        let sync = ha.sync.as_ref().unwrap();
        assert_eq!(
            (sync.mode, sync.syncid, sync.version, sync.threshold, sync.period, sync.max_len),
            (SyncMode::PeerToPeer, 4, 0, 2, 20, 1000)
        );
        assert_eq!(sync.interface.as_deref(), Some("bond0"));
        assert!(topo.directors[0].expire_nodest_conn && !topo.directors[0].expire_quiescent_template);
        assert_eq!(topo.directors[0].timeouts.tcp_s, Some(900.0));
        let b = &topo.directors[1];
        assert!(b.sloppy_tcp && b.sloppy_sctp && b.conn_reuse_mode == 0, "sysctl lines read back");
        assert!(!topo.directors[0].sloppy_tcp && topo.directors[0].conn_reuse_mode == 1);
        assert!(back.notes.iter().any(|n| n.message.contains("not how it fails over")), "{:?}", back.notes);
        assert_eq!(export::ipvsadm_files(topo, Target::default()), files, "the same files again");
        assert!(topo.directors[1].services.is_empty(), "b runs a's services");
        let note = back.notes.iter().find(|n| n.message.contains("fails over")).unwrap();
        assert_eq!((note.path.as_str(), note.line), ("ipvsadm-a.sh", 13), "{note:?}");
        // Rules files alone: the services, not the group.
        let rules: Vec<(String, String)> = files.into_iter().filter(|(n, _)| n.ends_with(".rules")).collect();
        let back = import_files(&rules);
        assert_eq!(back.topology.ha, None);
        assert_eq!(back.topology.directors[1].services.len(), 2);
    }

    use crate::ha::SyncMode;

    #[test]
    fn a_rules_file_must_be_the_table_of_its_directors_script() {
        let t = crate::named("tutorial-nat").unwrap().topology();
        let mut files = export::ipvsadm_files(&t, Target::default());
        files[1].1 = files[1].1.replace("-r 192.168.6.5:80 -m -w 1", "-r 192.168.6.5:80 -m -w 2");
        let sources: Vec<Source> = files.iter().map(|(p, t)| src(p, t)).collect();
        let e = import(&sources.iter().collect::<Vec<_>>()).unwrap_err();
        assert_eq!((e.path.as_str(), e.line), ("ipvsadm.rules", 7), "{e}");
        assert!(e.message.contains("makes a different table"), "{e}");
        assert!(e.message.contains("-r 192.168.6.5:80 -m -w 2"), "{e}");
    }

    #[test]
    fn an_operators_script_imports_with_notes_for_what_is_not_ipvsadm() {
        let text = "#!/bin/bash\n# Director edge (10.1.0.1)\niptables -t mangle -A PREROUTING -j MARK --set-mark 1\n\
                    sysctl -w net.ipv4.vs.conntrack=1\n/sbin/ipvsadm -C\nipvsadm -C\n  ipvsadm -A -f 1 -s wlc\n\
                    ipvsadm -a -f 1 -r 10.1.0.5 -g\nipvsadm -D -t 10.9.9.9:80 2>/dev/null || true\nipvsadm -L -n\n";
        let back = import_files(&[("edge.sh".into(), text.into())]);
        let lines: Vec<(usize, &str)> = back.notes.iter().map(|n| (n.line, n.message.as_str())).collect();
        assert_eq!(
            lines,
            [
                (
                    3,
                    "not an ipvsadm command: \"iptables -t mangle -A PREROUTING -j MARK --set-mark 1\" is not imported"
                ),
                (4, "sysctl net.ipv4.vs.conntrack is not imported"),
                (5, "not an ipvsadm command: \"/sbin/ipvsadm -C\" is not imported"),
            ]
        );
        let d = &back.topology.directors[0];
        assert_eq!((d.name.as_str(), d.services.len(), d.services[0].fwmark), ("edge", 1, Some(1)));
        // A bad rule keeps its own line and column.
        let e = import(&[&src("x.sh", "#!/bin/sh\nset -e\n  ipvsadm -A -t 10.0.0.1:80 -s fastest\n")])
            .unwrap_err();
        assert_eq!((e.path.as_str(), e.line, e.column), ("x.sh", 3, 32), "{e}");
        let e =
            import(&[&src("x.sh", "ipvsadm --start-daemon primary --mcast-interface eth0\n")]).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (1, "--start-daemon: expected master or backup, found Some(\"primary\")")
        );
    }
}
