//! `ldirectord.cf` (with heartbeat's `ha.cf` and `haresources`) as a topology.
//!
//! The grammar is ldirectord 4.12.0's `read_config`: global `KEY = VALUE` lines at the
//! start of a line; `virtual = ...` (`virtual6`) opens a section whose lines are indented
//! (a tab or four spaces) and which ends at the first line that is not (a blank line
//! included); `#` starts a comment. A directive ldirectord does not know, or a value it
//! would refuse, is an [`ImportError`] at its line and column; one it knows that the
//! topology cannot hold is a [`Note`].
//!
//! The director: each file is one director (or fail-over group's primary), named and
//! addressed by the `# Director NAME (ADDRESS)` comment lvsim's exporter writes; a file
//! without one is director `lvs` (`lvsN` for the N-th file) at a documentation address,
//! with a note. lvsim's other comments are read back too, so that its own files import to
//! the topology they were written from: the description, the fail-over group's members,
//! values ldirectord cannot hold (a fraction of a second rounded up, keepalived's
//! `delay_before_retry` and digest, a `receive` string with `#`) and SCTP services
//! written commented out.
//!
//! # Modules
//! - this file: the files, lvsim's comments, the global part, the topology they make.
//! - `section.rs`: a `virtual` section, its real servers, service and health check.
//! - `words.rs`: `KEY = VALUE`, numbers, ports, addresses, forwarding methods.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::Forwarding;

mod section;
mod words;

use words::{MAX_SECONDS, err, key_value, number, yes_no};

use super::heartbeat::{self, HbPart};
use super::{ImportError, Imported, Note, Source};
use crate::export::LDIRECTORD_SCTP_MARK;
use crate::{Director, Server, Service, Topology};

/// Reads `ldirectord.cf` files (one, or one per director), with the heartbeat files of a
/// fail-over group when given.
pub(super) fn import(
    ldirectord: &[&Source],
    ha_cf: &[&Source],
    haresources: &[&Source],
) -> Result<Imported, ImportError> {
    let mut notes = Vec::new();
    let mut files = Vec::new();
    if ldirectord.len() > 64 {
        return Err(ImportError::file(&ldirectord[0].path, "more than 64 ldirectord files"));
    }
    for (k, s) in ldirectord.iter().enumerate() {
        files.push(parse(s, k, ldirectord.len(), &mut notes)?);
    }
    assemble(files, ha_cf, haresources, notes)
}

/// A documentation address (RFC 5737 TEST-NET-2) for the `k`-th director nothing names.
pub(super) fn documentation_address(k: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, u8::try_from(k + 1).unwrap_or(254).min(254)))
}

/// One file, read.
struct LdFile {
    path: String,
    director: Director,
    description: Option<String>,
    /// The kind (with its defaults) and members of the group lvsim's comment names.
    group: Option<(crate::Failover, Vec<String>)>,
    /// (service, its real servers' addresses in order, the fallback's address).
    services: Vec<ParsedService>,
}

/// A service with its servers by address (names are given when the files are put
/// together).
pub(super) struct ParsedService {
    service: Service,
    reals: Vec<IpAddr>,
    fallback: Option<IpAddr>,
}

/// Check settings of one scope (the global part or a section), as written.
#[derive(Clone, Debug, Default)]
struct Settings {
    checktimeout: Option<u64>,
    negotiatetimeout: Option<u64>,
    checkinterval: Option<u64>,
    failurecount: Option<u64>,
    quiescent: Option<bool>,
    /// lvsim's comments: `timeout: X s rounded up to N`, `interval: ...`,
    /// `delay_before_retry X s`.
    rounded_timeout: Option<(f64, u64)>,
    rounded_interval: Option<(f64, u64)>,
    delay_before_retry: Option<f64>,
}

/// What a file's lines are, as read so far.
struct Reader<'a> {
    path: &'a str,
    notes: &'a mut Vec<Note>,
    global: Settings,
    fork: bool,
}

/// Reads one file.
fn parse(s: &Source, k: usize, files: usize, notes: &mut Vec<Note>) -> Result<LdFile, ImportError> {
    let path = s.path.as_str();
    let lines: Vec<&str> = s.text.lines().collect();
    let mut r = Reader { path, notes, global: Settings::default(), fork: false };
    let mut head = Header::default();
    let mut sections: Vec<RawSection> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (no, line) = (i + 1, lines[i]);
        let t = line.trim();
        if t.is_empty() {
            i += 1;
            continue;
        }
        if t.starts_with('#') {
            if line == LDIRECTORD_SCTP_MARK {
                // The section follows, each line commented out.
                let end = (i + 1..lines.len()).find(|&j| !lines[j].starts_with('#')).unwrap_or(lines.len());
                let body: Vec<(usize, &str)> = (i + 1..end).map(|j| (j + 1, &lines[j][1..])).collect();
                if let Some(((_, first), rest)) = body.split_first() {
                    let body = rest.iter().map(|(n, l)| (*n, l.to_string())).collect();
                    sections.push(RawSection { no: i + 2, first: first.to_string(), body, sctp: true });
                }
                i = end;
                continue;
            }
            head.comment(t, &mut r.global, sections.is_empty());
            i += 1;
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            return Err(err(
                path,
                no,
                1,
                "an indented line outside a virtual section (ldirectord: unknown command)",
            ));
        }
        // A comment may follow a statement (ldirectord's patterns ignore it).
        let statement = line.split('#').next().unwrap_or_default();
        let (key, value, col) = key_value(path, no, statement)?;
        if key == "virtual" || key == "virtual6" {
            let end = section_end(&lines, i + 1);
            let body = (i + 1..end).map(|j| (j + 1, lines[j].to_string())).collect();
            sections.push(RawSection { no, first: statement.to_string(), body, sctp: false });
            i = end;
            continue;
        }
        r.global_line(no, key, value, col)?;
        i += 1;
    }
    let mut services = Vec::new();
    for x in sections {
        services.extend(r.section(x.no, &x.first, &x.body, x.sctp)?);
    }
    let director = match head.director {
        Some((name, addr)) => Director::new(&name, addr),
        None => {
            let name = if files == 1 { "lvs".to_owned() } else { format!("lvs{}", k + 1) };
            let addr = documentation_address(k);
            r.notes.push(Note {
                path: path.to_owned(),
                line: 0,
                message: format!(
                    "no `# Director NAME (ADDRESS)` comment: director {name} at the documentation address {addr}; set its address (DIP)"
                ),
            });
            Director::new(&name, addr)
        }
    };
    Ok(LdFile { path: path.to_owned(), director, description: head.description, group: head.group, services })
}

/// A section's lines, before the global part is complete.
struct RawSection {
    /// The `virtual` line's number.
    no: usize,
    first: String,
    body: Vec<(usize, String)>,
    /// Commented out after lvsim's SCTP mark.
    sctp: bool,
}

/// The index after a section's last line: sections hold indented lines (a tab or four
/// spaces, as ldirectord's `^ {4,}` after turning tabs into four spaces) and comment
/// lines; a blank or any other line ends them.
fn section_end(lines: &[&str], from: usize) -> usize {
    (from..lines.len())
        .find(|&j| {
            let l = lines[j];
            let indented = l.starts_with('\t') || l.starts_with("    ");
            let comment = l.trim_start().starts_with('#');
            !(comment || indented && !l.trim().is_empty())
        })
        .unwrap_or(lines.len())
}

/// What lvsim's comments at the top of a file say.
#[derive(Default)]
struct Header {
    lvsim: bool,
    director: Option<(String, IpAddr)>,
    description: Option<String>,
    group: Option<(crate::Failover, Vec<String>)>,
}

/// The failover of lvsim's group comment (`heartbeat`, `VRRP`, `active-active`, `pulse`), with the
/// schema's defaults.
fn group_kind(kind: &str) -> Option<crate::Failover> {
    let text = match kind {
        "heartbeat" => "Heartbeat()",
        "VRRP" => "Vrrp()",
        "active-active" => "ActiveActive()",
        "pulse" => "Pulse()",
        _ => return None,
    };
    ron::from_str(text).ok()
}

impl Header {
    /// A comment line (trimmed) of the global part; `top`: no section seen yet.
    fn comment(&mut self, t: &str, global: &mut Settings, top: bool) {
        let c = t.trim_start_matches('#').trim();
        if c.contains(" written by lvsim for ") {
            self.lvsim = true;
        } else if let Some(rest) = c.strip_prefix("Director ") {
            if let Some((name, addr)) = rest.split_once(" (")
                && let Ok(a) = addr.trim_end_matches(')').parse::<IpAddr>()
            {
                self.director = Some((name.to_owned(), a));
            }
        } else if let Some(rest) = c.strip_prefix("The same file on every member of the ") {
            if let Some((kind, rest)) = rest.split_once(" group (")
                && let Some((names, _)) = rest.split_once(')')
                && let Some(f) = group_kind(kind)
            {
                self.group = Some((f, names.split(", ").map(str::to_owned).collect()));
            }
        } else if lvsim_setting_comment(c, global) {
        } else if self.lvsim && top && self.director.is_none() && !c.starts_with("assumes: ") {
            self.description.get_or_insert_with(|| c.to_owned());
        }
    }
}

/// Reads lvsim's comments on check settings into `s`: `FIELD: X s rounded up to N: ...`
/// and `delay_before_retry X s: ...`. Whether `c` was one.
fn lvsim_setting_comment(c: &str, s: &mut Settings) -> bool {
    for (field, slot) in [("timeout: ", &mut s.rounded_timeout), ("interval: ", &mut s.rounded_interval)] {
        if let Some(rest) = c.strip_prefix(field)
            && let Some((x, rest)) = rest.split_once(" s rounded up to ")
            && let Some((n, _)) = rest.split_once(':')
            && let (Ok(x), Ok(n)) = (x.parse::<f64>(), n.parse::<u64>())
            && x.is_finite()
            && x > 0.0
        {
            *slot = Some((x, n));
            return true;
        }
    }
    if let Some(rest) = c.strip_prefix("delay_before_retry ")
        && let Some((x, _)) = rest.split_once(" s: ")
        && let Ok(x) = x.parse::<f64>()
        && x.is_finite()
        && x >= 0.0
    {
        s.delay_before_retry = Some(x);
        return true;
    }
    false
}

impl Reader<'_> {
    fn note(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(Note { path: self.path.to_owned(), line, message: message.into() });
    }

    /// A check setting of either scope into `s`; whether `key` was one.
    fn setting(
        &mut self,
        s: &mut Settings,
        no: usize,
        key: &str,
        v: &str,
        col: usize,
    ) -> Result<bool, ImportError> {
        let p = self.path;
        let secs = |what: &str| -> Result<u64, ImportError> {
            let n = number(p, no, col, v, what, MAX_SECONDS)?;
            if n == 0 {
                return Err(err(p, no, col, format!("invalid {what}: 0")));
            }
            Ok(n)
        };
        match key {
            "checktimeout" => s.checktimeout = Some(secs("check timeout")?),
            "negotiatetimeout" => s.negotiatetimeout = Some(secs("negotiate timeout")?),
            "checkinterval" => s.checkinterval = Some(secs("checkinterval")?),
            "failurecount" => s.failurecount = Some(secs("failure count")?),
            "quiescent" => s.quiescent = Some(yes_no(p, no, col, key, v)?),
            "checkcount" => {
                secs("check count")?;
                self.note(no, "checkcount: ldirectord repeats only ping checks this often (deprecated); not modelled, failurecount is the retry setting");
            }
            "connecttimeout" | "timeout" => {
                return Err(err(
                    p,
                    no,
                    1,
                    format!("{key}: ldirectord refuses it (use checktimeout and negotiatetimeout)"),
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A line of the global part.
    fn global_line(&mut self, no: usize, key: &str, v: &str, col: usize) -> Result<(), ImportError> {
        let mut g = std::mem::take(&mut self.global);
        let done = self.setting(&mut g, no, key, v, col);
        self.global = g;
        if done? {
            return Ok(());
        }
        match key {
            "autoreload" | "supervised" | "readdquiescent" | "cleanstop" => {
                yes_no(self.path, no, col, key, v)?;
            }
            "fork" => self.fork = yes_no(self.path, no, col, key, v)?,
            "execute" => self.note(no, format!("execute: another ldirectord configuration ({v}) is not read; import it on its own")),
            "fallback" | "fallback6" => self.note(no, "a global fallback server: lvsim gives fallbacks per virtual service; add it to each service's check"),
            "callback" | "logfile" | "emailalert" | "emailalertfreq" | "emailalertstatus" | "emailalertfrom"
            | "smtp" | "maintenancedir" | "fallbackcommand" => self.note(no, format!("{key}: not modelled")),
            _ => return Err(err(self.path, no, 1, format!("unknown directive {key:?} (ldirectord: unknown command)"))),
        }
        Ok(())
    }
}

/// The topology of the files read: a director per file with its services, a server per
/// real-server address (`rs-ADDRESS`, its director as gateway when NAT), and the
/// fail-over group heartbeat's files (or lvsim's comment) describe.
fn assemble(
    files: Vec<LdFile>,
    ha_cf: &[&Source],
    haresources: &[&Source],
    mut notes: Vec<Note>,
) -> Result<Imported, ImportError> {
    let mut topo = Topology::default();
    let mut group_comment = None;
    for f in files {
        if topo.directors.iter().any(|d| d.name == f.director.name) {
            return Err(ImportError::file(
                &f.path,
                format!("a second file for director {:?}", f.director.name),
            ));
        }
        if topo.description.is_empty() {
            topo.description = f.description.clone().unwrap_or_default();
        }
        if let Some(g) = f.group {
            group_comment.get_or_insert((f.path.clone(), f.director.name.clone(), g));
        }
        let mut d = f.director;
        for ps in f.services {
            let mut service = ps.service;
            for (rs, &a) in service.real_servers.iter_mut().zip(&ps.reals) {
                rs.server = server_named(&mut topo.servers, a, rs.forwarding == Forwarding::Masq, &d.name);
            }
            if let (Some(c), Some(a)) = (service.check.as_mut(), ps.fallback)
                && let Some(fb) = c.fallback.as_mut()
            {
                fb.server = server_named(&mut topo.servers, a, fb.forwarding == Forwarding::Masq, &d.name);
            }
            d.services.push(service);
        }
        topo.directors.push(d);
    }
    let hb = heartbeat::read(ha_cf, haresources, &topo.directors, &mut notes)?;
    match (hb, group_comment) {
        (Some(hb), _) => hb.apply(&mut topo, &mut notes),
        (None, Some((path, primary, (failover, members)))) => {
            let mut hb = HbPart::from_members(&path, &primary, &members);
            notes.push(Note {
                path,
                line: 0,
                message: format!(
                    "the group ({}) of lvsim's comment, with its tool's defaults: give its files (ha.cf and haresources, or keepalived.conf) to import its settings",
                    members.join(", ")
                ),
            });
            hb.set_failover(failover);
            hb.apply(&mut topo, &mut notes);
        }
        (None, None) => {}
    }
    Ok(Imported { topology: topo, notes })
}

/// The name of the server at `a` (`rs-ADDRESS`), created if new; `nat`: the director is
/// its gateway.
fn server_named(servers: &mut Vec<Server>, a: IpAddr, nat: bool, director: &str) -> String {
    if let Some(s) = servers.iter_mut().find(|s| s.address == a) {
        if nat && s.gateway.is_none() {
            s.gateway = Some(director.to_owned());
        }
        return s.name.clone();
    }
    let name = format!("rs-{a}");
    servers.push(Server {
        name: name.clone(),
        address: a,
        count: 1,
        segment: "lan".to_owned(),
        gateway: nat.then(|| director.to_owned()),
        uplink: Default::default(),
        cpu: Default::default(),
        backend: None,
    });
    name
}
