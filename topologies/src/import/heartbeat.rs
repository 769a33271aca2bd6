//! heartbeat's `ha.cf` and `haresources`, read with `ldirectord.cf`: the fail-over (or
//! Saru active-active) group of directors.
//!
//! `ha.cf`: `keepalive`, `deadtime`, `warntime`, `initdead`, `deadping` (heartbeat's time
//! syntax: seconds, or with `ms`/`us`/`s`), `serial` (a dedicated medium each), `bcast`,
//! `mcast`, `ucast` (a LAN medium on the side the interface faces), `auto_failback`,
//! `node`, `ping` (ipfail's ping nodes, with `respawn ... ipfail`); heartbeat's other
//! directives are notes, anything else an error (heartbeat refuses it too). lvsim's
//! comment `# Saru active-active: ... N blocks of client source ports ...` makes the group
//! active-active.
//!
//! `haresources`: the first resource line's node is the primary; `IPaddr2`, `IPaddr`,
//! `IPv6addr` (or a bare address) resources are the VIPs (their interface is the external
//! one, their prefix the VIP prefix) or, the primary's own address, the NAT gateway (the
//! internal interface); `ldirectord` is expected; other resources and resource lines are
//! notes. lvsim's `# connection sync: ...` comment gives the sync daemon's mode.

use std::net::IpAddr;

use super::ldirectord::documentation_address;
use super::{ImportError, Note, Source};
use crate::ha::{Failover, Medium, PingNode, Side, SplitBy, SyncDaemon, SyncMode};
use crate::{Director, Ha, Topology};

/// The group the heartbeat files describe.
pub(super) struct HbPart {
    path: String,
    /// The members, the primary first.
    members: Vec<String>,
    failover: Failover,
    sync: Option<SyncDaemon>,
    external_interface: Option<String>,
    internal_interface: Option<String>,
    vip_prefix: Option<u8>,
}

fn err(path: &str, line: usize, column: usize, message: impl Into<String>) -> ImportError {
    ImportError::at(path, line, column, message)
}

/// heartbeat's defaults, read from the schema's own (`Heartbeat()` with every field left
/// out).
fn default_failover(active_active: bool) -> Failover {
    let text = if active_active { "ActiveActive()" } else { "Heartbeat()" };
    ron::from_str(text).expect("every field of the schema's failover has a default")
}

impl HbPart {
    /// A heartbeat group of `members` with heartbeat's defaults (lvsim's comment in an
    /// ldirectord file, without ha.cf).
    pub(super) fn from_members(path: &str, primary: &str, members: &[String]) -> HbPart {
        let mut m = vec![primary.to_owned()];
        m.extend(members.iter().filter(|x| *x != primary).cloned());
        HbPart {
            path: path.to_owned(),
            members: m,
            failover: default_failover(false),
            sync: None,
            external_interface: None,
            internal_interface: None,
            vip_prefix: None,
        }
    }

    /// Replaces the failover (defaults of another kind).
    pub(super) fn set_failover(&mut self, f: Failover) {
        self.failover = f;
    }

    /// Adds the group to `topo`: a director (at a documentation address, with a note) for
    /// each member no ldirectord file named.
    pub(super) fn apply(self, topo: &mut Topology, notes: &mut Vec<Note>) {
        for m in &self.members {
            if !topo.directors.iter().any(|d| &d.name == m) {
                let addr = documentation_address(topo.directors.len());
                notes.push(Note {
                    path: self.path.clone(),
                    line: 0,
                    message: format!(
                        "director {m}: no file gives its address; {addr} (documentation) assumed"
                    ),
                });
                topo.directors.push(Director::new(m, addr));
            }
        }
        let mut ha: Ha =
            ron::from_str(r#"(directors: [], failover: Heartbeat())"#).expect("the schema's defaults");
        ha.directors = self.members;
        ha.failover = self.failover;
        ha.sync = self.sync;
        if let Some(i) = self.external_interface {
            ha.external_interface = i;
        }
        if let Some(i) = self.internal_interface {
            ha.internal_interface = i;
        }
        if let Some(p) = self.vip_prefix {
            ha.vip_prefix = p;
        }
        topo.ha = Some(ha);
    }
}

/// heartbeat's time syntax (`cl_get_msec`): a number of seconds, or with a unit `ms`,
/// `us` or `s`; at most a day.
fn time_s(path: &str, no: usize, col: usize, v: &str) -> Result<f64, ImportError> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 1e-6)
    } else {
        (v.strip_suffix('s').unwrap_or(v), 1.0)
    };
    match num.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x * scale <= 86_400.0 => Ok(x * scale),
        Ok(_) => Err(err(path, no, col, format!("{v:?}: a time above 0 and at most a day"))),
        Err(_) => Err(err(path, no, col, format!("{v:?}: expected a time (seconds, or 500ms)"))),
    }
}

/// heartbeat's directives that lvsim does not model (a note each).
const UNMODELLED: [&str; 31] = [
    "logfile",
    "debugfile",
    "use_logd",
    "conn_logd_time",
    "debug",
    "apiauth",
    "coredumps",
    "coreroot",
    "crm",
    "pacemaker",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "realtime",
    "rtprio",
    "autojoin",
    "uuidfrom",
    "hopfudge",
    "stonith",
    "stonith_host",
    "watchdog",
    "msgfmt",
    "max_rexmit_delay",
    "generation_method",
    "memreserve",
    "cluster",
    "quorum_server",
    "register_to_apphbd",
    "badpack_warn",
    "syslogmsgfmt",
    "failfast",
];

/// ha.cf, read.
struct HaCf {
    nodes: Vec<(String, usize)>,
    failover: Failover,
    /// Media in order: `None` for serial, else the interface (with the line).
    media: Vec<(Option<String>, usize)>,
    ipfail: bool,
    pings: Vec<PingNode>,
}

/// Reads ha.cf.
fn read_ha_cf(s: &Source, notes: &mut Vec<Note>) -> Result<HaCf, ImportError> {
    let path = s.path.as_str();
    let saru = s.text.lines().find_map(saru_comment);
    let mut h = HaCf {
        nodes: Vec::new(),
        failover: default_failover(saru.is_some()),
        media: Vec::new(),
        ipfail: false,
        pings: Vec::new(),
    };
    for (i, raw) in s.text.lines().enumerate() {
        h.line(path, i + 1, raw, notes)?;
    }
    let mut note = |m: &str| notes.push(Note { path: path.to_owned(), line: 0, message: m.to_owned() });
    if !h.pings.is_empty() && !h.ipfail {
        note("ping nodes without ipfail: lvsim models ping nodes through ipfail, which is assumed");
    }
    if !h.pings.is_empty() {
        note("ping nodes are taken as reached through the external interface");
    }
    if let Some((by, blocks)) = saru
        && let Failover::ActiveActive { by: b, blocks: n, .. } = &mut h.failover
    {
        (*b, *n) = (by, blocks);
    }
    set_pings(&mut h.failover, std::mem::take(&mut h.pings));
    Ok(h)
}

impl HaCf {
    /// One line (`no`) of ha.cf.
    fn line(&mut self, path: &str, no: usize, raw: &str, notes: &mut Vec<Note>) -> Result<(), ImportError> {
        let mut note = |m: String| notes.push(Note { path: path.to_owned(), line: no, message: m });
        let line = raw.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(d) = words.next() else { return Ok(()) };
        let args: Vec<&str> = words.collect();
        let col = |k: usize| {
            let a = args.get(k).copied().unwrap_or_default();
            let after = raw.find(d).map_or(0, |i| i + d.len());
            raw[after..].find(a).map_or(1, |c| c + after + 1)
        };
        let one = |what: &str| -> Result<&str, ImportError> {
            match args.as_slice() {
                [v] => Ok(v),
                _ => Err(err(path, no, 1, format!("{d} takes one {what}"))),
            }
        };
        match d {
            "keepalive" | "deadtime" | "warntime" | "initdead" | "deadping" => {
                let x = time_s(path, no, col(0), one("time")?)?;
                set_time(&mut self.failover, d, x);
            }
            "serial" => self.media.extend(args.iter().map(|_| (None, no))),
            "bcast" => self.media.extend(args.iter().map(|a| (Some((*a).to_owned()), no))),
            "mcast" | "ucast" => {
                let iface =
                    args.first().ok_or_else(|| err(path, no, 1, format!("{d} needs an interface")))?;
                note(format!("{d} {iface}: modelled as a LAN medium on that interface (lvsim writes bcast)"));
                self.media.push((Some((*iface).to_owned()), no));
            }
            "auto_failback" => {
                let nice = match one("value")? {
                    "on" | "yes" | "true" | "y" | "1" => false,
                    "off" | "no" | "false" | "n" | "0" => true,
                    "legacy" => {
                        note("auto_failback legacy: modelled as on".into());
                        false
                    }
                    v => {
                        return Err(err(path, no, col(0), format!("auto_failback {v:?}: on, off or legacy")));
                    }
                };
                set_nice_failback(&mut self.failover, nice);
            }
            "node" => self.nodes.extend(args.iter().map(|n| ((*n).to_owned(), no))),
            "ping" | "ping_group" => {
                let first = usize::from(d == "ping_group");
                for (k, a) in args.iter().enumerate().skip(first) {
                    let address = a
                        .parse::<IpAddr>()
                        .map_err(|_| err(path, no, col(k), format!("{a:?} is not an address")))?;
                    let name = format!("ping{}", self.pings.len() + 1);
                    self.pings.push(PingNode { name, address, side: Side::External });
                }
            }
            "respawn" => match args.as_slice() {
                [_, p] if p.ends_with("/ipfail") => self.ipfail = true,
                _ => note(format!("respawn {}: not modelled", args.join(" "))),
            },
            "udpport" if one("port")? == "694" => {}
            "baud" if one("rate")? == "19200" => {}
            "logfacility" => {}
            "udpport" | "baud" | "nice_failback" | "env" => {
                note(format!("{d} {}: not modelled", args.join(" ")))
            }
            d if UNMODELLED.contains(&d) => note(format!("{d}: not modelled")),
            _ => return Err(err(path, no, 1, format!("illegal directive {d:?} (heartbeat refuses it)"))),
        }
        Ok(())
    }
}

/// lvsim's comment on a Saru group: `# Saru active-active: every member holds the VIP and
/// accepts the N blocks of client source ports it owns;`.
fn saru_comment(l: &str) -> Option<(SplitBy, u32)> {
    let rest = l.strip_prefix("# Saru active-active: every member holds the VIP and accepts the ")?;
    let (n, rest) = rest.split_once(" blocks of client source ")?;
    let by = if rest.starts_with("ports") {
        SplitBy::SourcePort
    } else if rest.starts_with("addresses") {
        SplitBy::SourceAddress
    } else {
        return None;
    };
    Some((by, n.parse().ok().filter(|n: &u32| *n <= 65536)?))
}

fn set_time(f: &mut Failover, d: &str, x: f64) {
    let (Failover::Heartbeat { keepalive_s, deadtime_s, warntime_s, initdead_s, deadping_s, .. }
    | Failover::ActiveActive { keepalive_s, deadtime_s, warntime_s, initdead_s, deadping_s, .. }) = f
    else {
        unreachable!("a heartbeat failover")
    };
    let slot = match d {
        "keepalive" => keepalive_s,
        "deadtime" => deadtime_s,
        "warntime" => warntime_s,
        "initdead" => initdead_s,
        _ => deadping_s,
    };
    *slot = x;
}

fn set_nice_failback(f: &mut Failover, nice: bool) {
    if let Failover::Heartbeat { nice_failback, .. } | Failover::ActiveActive { nice_failback, .. } = f {
        *nice_failback = nice;
    }
}

fn set_pings(f: &mut Failover, pings: Vec<PingNode>) {
    if let Failover::Heartbeat { ping_nodes, .. } | Failover::ActiveActive { ping_nodes, .. } = f {
        *ping_nodes = pings;
    }
}

fn set_media(f: &mut Failover, m: Vec<Medium>) {
    if let Failover::Heartbeat { media, .. } | Failover::ActiveActive { media, .. } = f {
        *media = m;
    }
}

/// haresources, read: the primary and its address resources.
struct Haresources {
    primary: Option<(String, usize)>,
    /// (address, prefix, interface, line).
    addresses: Vec<(IpAddr, Option<u8>, String, usize)>,
    sync: Option<SyncMode>,
}

/// An address resource: the address, its prefix and interface if given.
type AddressResource = (IpAddr, Option<u8>, Option<String>);

/// `IPaddr2::A/P/IF`, `IPaddr::...`, `IPv6addr::...` or a bare `A[/P[/IF]]`: the address,
/// prefix and interface; `None` for another resource.
fn address_resource(r: &str) -> Option<Result<AddressResource, String>> {
    let arg = match r.split_once("::") {
        Some(("IPaddr2" | "IPaddr" | "IPv6addr", a)) => a.split("::").next().unwrap_or(a),
        Some(_) => return None,
        None if r.starts_with(|c: char| c.is_ascii_digit()) || r.contains(':') => r,
        None => return None,
    };
    let mut parts = arg.split('/');
    let a = parts.next().unwrap_or_default();
    let Ok(addr) = a.parse::<IpAddr>() else { return Some(Err(format!("{a:?} is not an address"))) };
    let prefix = match parts.next() {
        Some(p) => match p.parse::<u8>() {
            Ok(p) if p >= 1 && p <= if addr.is_ipv4() { 32 } else { 128 } => Some(p),
            _ => return Some(Err(format!("{p:?} is not a prefix length"))),
        },
        None => None,
    };
    Some(Ok((addr, prefix, parts.next().map(str::to_owned))))
}

/// The resource lines of haresources (a line ending in `\\` continues on the next), with
/// their numbers, and the sync mode of lvsim's comment.
fn resource_lines(text: &str) -> (Vec<(usize, String)>, Option<SyncMode>) {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut sync = None;
    let mut joining = false;
    for (i, raw) in text.lines().enumerate() {
        if let Some(rest) = raw.strip_prefix("# connection sync: the ipvsadm scripts start the daemons at boot (") {
            let p2p = rest.starts_with("master and backup on every member");
            sync = Some(if p2p { SyncMode::PeerToPeer } else { SyncMode::MasterBackup });
        }
        let t = raw.trim();
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (t, false),
        };
        if joining {
            if let Some(last) = lines.last_mut() {
                last.1.push(' ');
                last.1.push_str(body);
            }
        } else if !t.is_empty() && !t.starts_with('#') {
            lines.push((i + 1, body.to_owned()));
        }
        joining = cont;
    }
    (lines, sync)
}

/// Reads haresources: its first resource line (`nodes` must name its node).
fn read_haresources(
    s: &Source,
    nodes: &[(String, usize)],
    notes: &mut Vec<Note>,
) -> Result<Haresources, ImportError> {
    let path = s.path.as_str();
    let (lines, sync) = resource_lines(&s.text);
    let mut h = Haresources { primary: None, addresses: Vec::new(), sync };
    for (k, (no, line)) in lines.iter().enumerate() {
        let mut words = line.split_whitespace();
        let node = words.next().unwrap_or_default();
        if !nodes.iter().any(|(n, _)| n.eq_ignore_ascii_case(node)) {
            return Err(err(
                path,
                *no,
                1,
                format!("bad node name {node:?}: ha.cf has no such node (heartbeat refuses it)"),
            ));
        }
        if k > 0 {
            notes.push(Note {
                path: path.to_owned(),
                line: *no,
                message: format!("a second resource group (node {node}): lvsim models the first one only"),
            });
            continue;
        }
        h.primary = Some((node.to_owned(), *no));
        for r in words {
            match address_resource(r) {
                Some(Ok((a, p, iface))) => {
                    let Some(iface) = iface else {
                        notes.push(Note {
                            path: path.to_owned(),
                            line: *no,
                            message: format!("{r}: no interface named; the default is assumed"),
                        });
                        continue;
                    };
                    h.addresses.push((a, p, iface, *no));
                }
                Some(Err(e)) => {
                    let col = line.find(r).map_or(1, |c| c + 1);
                    return Err(err(path, *no, col, format!("resource {r}: {e}")));
                }
                None if r == "ldirectord" || r.starts_with("ldirectord::") => {}
                None if r.starts_with("LVSSyncDaemonSwap") => {
                    h.sync.get_or_insert(SyncMode::MasterBackup);
                    notes.push(Note { path: path.to_owned(), line: *no, message: format!("{r}: the sync daemon, with the kernel's defaults and fixed roles (the swap is not modelled)") });
                }
                None => notes.push(Note {
                    path: path.to_owned(),
                    line: *no,
                    message: format!("resource {r}: not modelled"),
                }),
            }
        }
    }
    Ok(h)
}

/// The group of `ha.cf` (with `haresources`), the directors of the ldirectord files
/// being known; `None` without ha.cf.
pub(super) fn read(
    ha_cf: &[&Source],
    haresources: &[&Source],
    directors: &[Director],
    notes: &mut Vec<Note>,
) -> Result<Option<HbPart>, ImportError> {
    for (files, name) in [(ha_cf, "ha.cf"), (haresources, "haresources")] {
        if files.len() > 1 {
            return Err(ImportError::file(&files[1].path, format!("a second {name}: one group at a time")));
        }
    }
    let Some(cf) = ha_cf.first() else {
        if let Some(r) = haresources.first() {
            return Err(ImportError::file(&r.path, "haresources without its ha.cf: give both"));
        }
        return Ok(None);
    };
    let mut h = read_ha_cf(cf, notes)?;
    if h.nodes.is_empty() {
        return Err(ImportError::file(&cf.path, "no node line: heartbeat needs the members' names"));
    }
    let res = match haresources.first() {
        Some(r) => Some(read_haresources(r, &h.nodes, notes)?),
        None => {
            notes.push(Note {
                path: cf.path.clone(),
                line: 0,
                message: "no haresources: heartbeat does not start without one".into(),
            });
            None
        }
    };
    let primary = res
        .as_ref()
        .and_then(|r| r.primary.as_ref())
        .and_then(|(p, _)| h.nodes.iter().find(|(n, _)| n.eq_ignore_ascii_case(p)))
        .unwrap_or(&h.nodes[0])
        .0
        .clone();
    let mut members = vec![primary.clone()];
    members.extend(h.nodes.iter().map(|(n, _)| n.clone()).filter(|n| *n != primary));
    let mut part = HbPart::from_members(&cf.path, &primary, &members);
    if let Some(r) = &res {
        interfaces(&mut part, r, directors.iter().find(|d| d.name == primary), &r_path(haresources), notes);
        part.sync = r.sync.map(|mode| {
            notes.push(Note {
                path: r_path(haresources),
                line: 0,
                message: "connection sync: its settings (syncid, interface, thresholds) are in the ipvsadm scripts; the kernel's defaults assumed".into(),
            });
            SyncDaemon { mode, ..SyncDaemon::default() }
        });
    }
    let media = media(&mut part, &h.media, &cf.path, notes);
    if media.is_empty() {
        return Err(ImportError::file(
            &cf.path,
            "no heartbeat medium (serial, bcast, mcast or ucast): heartbeat refuses it",
        ));
    }
    set_media(&mut h.failover, media);
    part.failover = h.failover;
    Ok(Some(part))
}

fn r_path(haresources: &[&Source]) -> String {
    haresources.first().map_or_else(String::new, |s| s.path.clone())
}

/// The external interface (the VIPs'), the internal one (the NAT gateway's) and the VIP
/// prefix from haresources' address resources.
fn interfaces(
    part: &mut HbPart,
    r: &Haresources,
    primary: Option<&Director>,
    path: &str,
    notes: &mut Vec<Note>,
) {
    let vips: Vec<IpAddr> =
        primary.map(|d| d.services.iter().filter_map(|s| s.vip).collect()).unwrap_or_default();
    for (a, p, iface, no) in &r.addresses {
        let note = |notes: &mut Vec<Note>, m: String| {
            notes.push(Note { path: path.to_owned(), line: *no, message: m })
        };
        if primary.is_some_and(|d| d.address == *a) {
            part.internal_interface = Some(iface.clone());
        } else if vips.contains(a) || primary.is_none() {
            part.external_interface = Some(iface.clone());
            match (a, p) {
                (IpAddr::V4(_), Some(p)) => part.vip_prefix = Some(*p),
                (IpAddr::V6(_), Some(p)) if *p != 64 => {
                    note(notes, format!("{a}/{p}: lvsim writes IPv6 VIPs as /64"))
                }
                _ => {}
            }
        } else {
            note(
                notes,
                format!(
                    "address {a}: neither a VIP of the primary's services nor its own address; not modelled"
                ),
            );
        }
    }
}

/// ha.cf's media, each LAN one on the side its interface faces (an interface that is
/// neither known one becomes the internal, then the external, interface).
fn media(
    part: &mut HbPart,
    media: &[(Option<String>, usize)],
    path: &str,
    notes: &mut Vec<Note>,
) -> Vec<Medium> {
    let mut out: Vec<Medium> = Vec::new();
    for (iface, no) in media {
        let m = match iface {
            None => Medium::Dedicated,
            Some(i) => {
                let ext = part.external_interface.as_deref().unwrap_or("eth0");
                let int = part.internal_interface.as_deref().unwrap_or("eth1");
                if i == ext {
                    Medium::Lan(Side::External)
                } else if i == int {
                    Medium::Lan(Side::Internal)
                } else if part.internal_interface.is_none() {
                    part.internal_interface = Some(i.clone());
                    Medium::Lan(Side::Internal)
                } else if part.external_interface.is_none() {
                    part.external_interface = Some(i.clone());
                    Medium::Lan(Side::External)
                } else {
                    notes.push(Note {
                        path: path.to_owned(),
                        line: *no,
                        message: format!("interface {i}: a third network, not modelled"),
                    });
                    continue;
                }
            }
        };
        if m != Medium::Dedicated && out.contains(&m) {
            notes.push(Note { path: path.to_owned(), line: *no, message: format!("{m:?} given twice") });
            continue;
        }
        out.push(m);
    }
    out
}
