//! `keepalived.conf` as a topology: one file, or one per director of a VRRP group.
//!
//! What keepalived.conf holds maps to the topology: `global_defs` (`router_id` names the
//! director, `lvs_timeouts`, `vrrp_version`, `lvs_sync_daemon`), `virtual_server`s with
//! their real servers and checkers (`service.rs`), `vrrp_instance`s and their sync group
//! (`vrrp.rs`). What it does not hold comes from lvsim's own comments when the file is an
//! lvsim export (`! Director NAME (ADDRESS)`, the `! also run: sysctl -w ...` lines, the
//! topology's description at the top), else from defaults, each with a [`Note`]. Real
//! servers are named `rs1`, `rs2`, ... in the order their addresses first appear.
//!
//! `include` is never followed (a [`Note`] says which file to add): only the files the
//! user named are read.
//!
//! # Modules
//! - `parse.rs`: the syntax (statements, blocks, comments, quotes), bounded.
//! - `service.rs`: `virtual_server`, `real_server`, the checkers.
//! - `vrrp.rs`: `vrrp_instance`s and the fail-over group.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use super::{ImportError, Imported, Note, Source};
use crate::{Director, Timeouts, Topology};

mod parse;
mod service;
mod vrrp;

use parse::{Comment, Node, Word};

/// Reads one `keepalived.conf`, or one per director of a VRRP group.
pub(super) fn import(sources: &[&Source]) -> Result<Imported, ImportError> {
    let mut st = State::default();
    let mut files = Vec::with_capacity(sources.len());
    for src in sources {
        files.push(read_file(src, &mut st)?);
    }
    let ha = vrrp::group(&mut st, &files)?;
    let mut topology = Topology {
        description: st.description.take().unwrap_or_default(),
        directors: std::mem::take(&mut st.directors),
        servers: std::mem::take(&mut st.servers.list),
        backends: Vec::new(),
        ha,
        ecmp: st.ecmp.take(),
    };
    set_gateways(&mut topology);
    // What lvsim cannot run is an error here rather than in the scenario that holds it.
    if let Err(e) = topology.expand() {
        let path = sources.first().map_or("", |s| s.path.as_str());
        return Err(ImportError::file(path, format!("the files make no valid topology: {e}")));
    }
    Ok(Imported { topology, notes: st.notes })
}

/// What the files have given so far.
#[derive(Default)]
struct State {
    description: Option<String>,
    /// lvsim's ECMP tier comment.
    ecmp: Option<crate::Ecmp>,
    directors: Vec<Director>,
    /// The directors' names, to tell a repeated one at once.
    names: std::collections::BTreeSet<String>,
    servers: service::Servers,
    notes: Vec<Note>,
}

/// What a file says beyond its directors' services.
#[derive(Default)]
pub(super) struct FileFacts {
    /// Its directors (indices into `State::directors`).
    directors: Vec<usize>,
    /// `vrrp_instance`s, for the first director of the file.
    instances: Vec<vrrp::Instance>,
    /// `vrrp_version`.
    version: Option<(u8, usize)>,
    /// `lvs_sync_daemon`.
    sync_daemon: Option<vrrp::SyncDaemonLine>,
    /// `net.ipv4.vs.sync_version` and `sync_threshold` from lvsim's comments.
    sync_version: Option<u8>,
    sync_threshold: Option<(u32, u32)>,
    /// lvsim's "connection sync peer to peer" comment.
    peer_to_peer: bool,
    /// lvsim's NAT comment: the primary's name.
    primary: Option<String>,
    /// The file's path.
    path: String,
}

/// A context for messages about one file.
pub(super) struct Cx<'a> {
    pub path: &'a str,
    pub notes: &'a mut Vec<Note>,
}

impl Cx<'_> {
    /// A note about line `line`.
    pub fn note(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(Note { path: self.path.to_owned(), line, message: message.into() });
    }

    /// An error at a word.
    pub fn err(&self, w: &Word, message: impl Into<String>) -> ImportError {
        ImportError::at(self.path, w.line, w.col, message)
    }

    /// The statement's `k`th word after the keyword.
    pub fn arg<'n>(&self, n: &'n Node, k: usize, what: &str) -> Result<&'n Word, ImportError> {
        n.args.get(k).ok_or_else(|| self.err(&n.key, format!("{} needs {what}", n.key.text)))
    }

    /// A number of type `T` within `lo..=hi`.
    pub fn num<T: FromStr + PartialOrd + std::fmt::Display>(
        &self,
        w: &Word,
        what: &str,
        lo: T,
        hi: T,
    ) -> Result<T, ImportError> {
        match w.text.parse::<T>() {
            Ok(v) if v >= lo && v <= hi => Ok(v),
            _ => Err(self.err(w, format!("{:?}: {what} is a whole number from {lo} to {hi}", w.text))),
        }
    }

    /// Seconds (keepalived takes decimals): finite, > 0 unless `zero_ok`, at most a day.
    pub fn secs(&self, w: &Word, zero_ok: bool) -> Result<f64, ImportError> {
        match w.text.parse::<f64>() {
            Ok(v) if v.is_finite() && (v > 0.0 || zero_ok && v == 0.0) && v <= 86_400.0 => Ok(v),
            _ => Err(self.err(
                w,
                format!(
                    "{:?}: a time in seconds, {} and at most 86400",
                    w.text,
                    if zero_ok { ">= 0" } else { "> 0" }
                ),
            )),
        }
    }

    /// An IP address.
    pub fn addr(&self, w: &Word) -> Result<IpAddr, ImportError> {
        w.text.parse().map_err(|_| self.err(w, format!("{:?} is not an IP address", w.text)))
    }

    /// A note that a statement has no counterpart in the topology.
    pub fn ignored(&mut self, n: &Node, within: &str) {
        self.note(n.key.line, format!("{within}`{}`: not modelled by lvsim, ignored", n.key.text));
    }
}

/// One file: its statements, and lvsim's comments.
fn read_file(src: &Source, st: &mut State) -> Result<FileFacts, ImportError> {
    let parsed = parse::parse(&src.path, &src.text)?;
    let mut facts = FileFacts { path: src.path.clone(), ..FileFacts::default() };
    if st.description.is_none() {
        st.description = Some(description(&parsed.comments));
    }
    let mut cx = Cx { path: &src.path, notes: &mut st.notes };
    let mut router_id = None;
    let mut timeouts = Timeouts::default();
    for n in parsed.nodes.iter().filter(|n| n.key.text == "global_defs") {
        global_defs(&mut cx, n, &mut facts, &mut router_id, &mut timeouts)?;
    }
    // Directors: lvsim's `! Director NAME (ADDRESS)` comments, else one from router_id.
    let mut starts: Vec<usize> = Vec::new();
    // The comments at the top are the header and the description, whatever they say.
    let top = top_comments(&parsed.comments);
    for c in &parsed.comments[top..] {
        if let Some((name, addr)) = director_comment(&c.text) {
            starts.push(c.line);
            facts.directors.push(new_director(st, name, addr));
        }
        let last = facts.directors.last().copied();
        comment_fact(&c.text, &mut facts, last, st);
    }
    let mut cx = Cx { path: &src.path, notes: &mut st.notes };
    if facts.directors.is_empty() {
        let name = router_id.clone().unwrap_or_else(|| format!("lvs{}", st.directors.len() + 1));
        let addr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, (st.directors.len() % 250 + 1) as u8));
        cx.note(
            0,
            format!(
                "keepalived.conf does not say the director's own address: {name} is given {addr} (a \
                 documentation address); write the real one in the scenario"
            ),
        );
        starts.push(0);
        facts.directors.push(new_director(st, name, addr));
    }
    st.directors[facts.directors[0]].timeouts = timeouts;
    // `starts` ascends: the last director comment before the line, by bisection.
    let owner = |line: usize| starts.partition_point(|&s| s < line).saturating_sub(1);
    let mut seen = std::collections::BTreeSet::new();
    for n in &parsed.nodes {
        let mut cx = Cx { path: &src.path, notes: &mut st.notes };
        match n.key.text.as_str() {
            "global_defs" => {}
            "virtual_server" => {
                let d = facts.directors[owner(n.key.line)];
                if let Some(s) = service::virtual_server(&mut cx, n, &mut st.servers, &parsed.comments)? {
                    // A set, not a scan: a file may hold a great many services.
                    if seen.insert((d, s.fwmark, s.protocol, s.vip, s.port)) {
                        st.directors[d].services.push(s);
                    } else {
                        cx.note(n.key.line, "the same virtual service again: this one is left out");
                    }
                }
            }
            "vrrp_instance" => facts.instances.push(vrrp::instance(&mut cx, n, &parsed.comments)?),
            "vrrp_sync_group" => {}
            "include" => {
                let what = n.args.first().map_or("", |w| w.text.as_str());
                cx.note(
                    n.key.line,
                    format!("include {what}: lvsim reads only the files it is given; import that file with this one"),
                );
            }
            _ => cx.ignored(n, ""),
        }
    }
    Ok(facts)
}

/// A new director; its index in `st.directors`.
fn new_director(st: &mut State, name: String, address: IpAddr) -> usize {
    let mut name = name;
    if st.names.contains(&name) {
        name = format!("{name}-{}", st.directors.len() + 1);
    }
    st.names.insert(name.clone());
    st.directors.push(Director::new(&name, address));
    st.directors.len() - 1
}

/// `global_defs`.
fn global_defs(
    cx: &mut Cx<'_>,
    n: &Node,
    facts: &mut FileFacts,
    router_id: &mut Option<String>,
    timeouts: &mut Timeouts,
) -> Result<(), ImportError> {
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "router_id" => *router_id = Some(cx.arg(s, 0, "a name")?.text.clone()),
            "lvs_timeouts" => lvs_timeouts(cx, s, timeouts)?,
            "vrrp_version" => {
                let w = cx.arg(s, 0, "2 or 3")?;
                facts.version = Some((cx.num(w, "the VRRP version", 2u8, 3)?, s.key.line));
            }
            "lvs_sync_daemon" => facts.sync_daemon = Some(vrrp::sync_daemon(cx, s)?),
            _ => cx.ignored(s, "global_defs: "),
        }
    }
    Ok(())
}

/// `lvs_timeouts tcp N tcpfin N udp N` (any of them).
fn lvs_timeouts(cx: &mut Cx<'_>, s: &Node, t: &mut Timeouts) -> Result<(), ImportError> {
    for pair in s.args.chunks(2) {
        let [which, value] = pair else {
            return Err(cx.err(&pair[0], format!("{} needs a number of seconds", pair[0].text)));
        };
        let v = f64::from(cx.num(value, "an IPVS timeout [s]", 1u32, i32::MAX as u32)?);
        match which.text.as_str() {
            "tcp" => t.tcp_s = Some(v),
            "tcpfin" => t.tcpfin_s = Some(v),
            "udp" => t.udp_s = Some(v),
            _ => {
                return Err(
                    cx.err(which, format!("{:?}: lvs_timeouts takes tcp, tcpfin and udp", which.text))
                );
            }
        }
    }
    Ok(())
}

/// The topology's description: the comment lines at the very top of the file, after
/// lvsim's header (its first line, the `assumes:` lines, `for director NAME`).
fn description(comments: &[Comment]) -> String {
    let top: Vec<&str> = comments[..top_comments(comments)].iter().map(|c| c.text.as_str()).collect();
    let mut rest = top.as_slice();
    if let Some((first, after)) = rest.split_first()
        && first.starts_with(LVSIM_HEADER)
    {
        rest = after;
        while rest.first().is_some_and(|l| l.starts_with("assumes: ")) {
            rest = &rest[1..];
        }
        if rest.first().is_some_and(|l| l.starts_with("for director ")) {
            rest = &rest[1..];
        }
    }
    rest.join("\n")
}

/// How many comments open the file, one a line from line 1: lvsim's header and the
/// description. In a file lvsim did not write, a `Director` comment ends them.
fn top_comments(comments: &[Comment]) -> usize {
    let lvsim = comments.first().is_some_and(|c| c.line == 1 && c.text.starts_with(LVSIM_HEADER));
    comments
        .iter()
        .enumerate()
        .take_while(|(k, c)| c.line == k + 1 && (lvsim || director_comment(&c.text).is_none()))
        .count()
}

/// The start of the first line of every keepalived.conf lvsim writes.
const LVSIM_HEADER: &str = "keepalived.conf written by lvsim";

/// `Director NAME (ADDRESS)`.
fn director_comment(text: &str) -> Option<(String, IpAddr)> {
    let rest = text.strip_prefix("Director ")?;
    let (name, addr) = rest.split_once(" (")?;
    let addr = addr.strip_suffix(')')?.parse().ok()?;
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| (name.to_owned(), addr))
}

/// A fact in one of lvsim's comments: a sysctl to run, the sync mode, the primary.
fn comment_fact(text: &str, facts: &mut FileFacts, director: Option<usize>, st: &mut State) {
    if let Some(tier) = text.strip_prefix(crate::export::keepalived_comments::ECMP_TIER) {
        // lvsim's own comment; one it cannot read was not written by it.
        if let Ok(e) = ron::from_str::<crate::Ecmp>(tier) {
            st.ecmp.get_or_insert(e);
        }
    } else if let Some(kv) = text.strip_prefix("also run: sysctl -w ") {
        let Some((key, value)) = kv.split_once('=') else { return };
        let d = director.map(|d| &mut st.directors[d]);
        match (key, value, d) {
            ("net.ipv4.vs.sync_version", v, _) => facts.sync_version = v.parse().ok(),
            ("net.ipv4.vs.sync_threshold", v, _) => {
                let v = v.trim_matches('"');
                if let Some((a, b)) = v.split_once(' ') {
                    facts.sync_threshold = a.parse().ok().zip(b.parse().ok());
                }
            }
            (key, v, Some(d)) => {
                // lvsim's own comment: a value out of range was not written by it.
                if let (Some(s), Ok(v)) = (lvs_ipvs::Sysctl::from_name(key), v.parse()) {
                    if key.starts_with("net.ipv4.vs.") {
                        let _ = d.set_sysctl(s, v);
                    }
                }
            }
            _ => {}
        }
    } else if text.starts_with("connection sync peer to peer") {
        facts.peer_to_peer = true;
    } else if let Some(rest) = text.strip_prefix("NAT: the real servers' gateway ") {
        let name = rest.split_once(" (").and_then(|(_, r)| r.split_once("'s address)")).map(|(n, _)| n);
        facts.primary = name.map(str::to_owned);
    }
}

/// NAT real servers (and sorry servers) route through their director (a group's
/// primary): the scenario needs it as their gateway.
fn set_gateways(t: &mut Topology) {
    let primary = t.ha.as_ref().and_then(|h| h.directors.first().cloned());
    let servers = &mut t.servers;
    let index: std::collections::BTreeMap<String, usize> =
        servers.iter().enumerate().map(|(k, s)| (s.name.clone(), k)).collect();
    for d in &t.directors {
        let gw = match (&t.ha, &primary) {
            (Some(h), Some(p)) if h.directors.contains(&d.name) => p.clone(),
            _ => d.name.clone(),
        };
        for s in &d.services {
            let fb = s.check.as_ref().and_then(|c| c.fallback.as_ref()).map(|f| (&f.server, f.forwarding));
            let nat = s.real_servers.iter().map(|r| (&r.server, r.forwarding)).chain(fb);
            for (name, fwd) in nat {
                if fwd != lvs_ipvs::Forwarding::Masq {
                    continue;
                }
                if let Some(srv) = index.get(name.as_str()).map(|&k| &mut servers[k])
                    && srv.gateway.is_none()
                {
                    srv.gateway = Some(gw.clone());
                }
            }
        }
    }
}

/// A value of the scenario format with the format's defaults for every field not given
/// (the serde defaults are their one definition).
pub(super) fn with_defaults<T: serde::de::DeserializeOwned>(ron_text: &str) -> T {
    ron::from_str(ron_text).unwrap_or_else(|e| panic!("the defaults of {ron_text}: {e}"))
}

#[cfg(test)]
mod tests;
