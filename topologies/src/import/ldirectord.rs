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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedFlag, SchedulerKind};

use super::heartbeat::{self, HbPart};
use super::{ImportError, Imported, Note, Source};
use crate::export::LDIRECTORD_SCTP_MARK;
use crate::{
    CheckKind, Checker, Director, Fallback, Flag, HealthCheck, RealServer, Server, Service, Topology,
};

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

/// An error at `line` (1-based) and 1-based `column`.
fn err(path: &str, line: usize, column: usize, message: impl Into<String>) -> ImportError {
    ImportError::at(path, line, column, message)
}

/// A line split as `KEY = VALUE`: the key, the value and the value's column.
fn key_value<'l>(path: &str, no: usize, line: &'l str) -> Result<(&'l str, &'l str, usize), ImportError> {
    let indent = line.len() - line.trim_start().len();
    let Some(eq) = line.find('=') else {
        return Err(err(path, no, indent + 1, format!("expected KEY = VALUE, got {:?}", line.trim())));
    };
    let key = line[..eq].trim();
    let rest = &line[eq + 1..];
    let value = rest.trim();
    let column = eq + 2 + (rest.len() - rest.trim_start().len());
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'6') {
        return Err(err(path, no, indent + 1, format!("expected a directive name before '=', got {key:?}")));
    }
    Ok((key, value, column))
}

/// A whole number `0..=max`.
fn number(path: &str, no: usize, col: usize, v: &str, what: &str, max: u64) -> Result<u64, ImportError> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(n) => Err(err(path, no, col, format!("{what} {n} is too large (at most {max})"))),
        Err(_) => Err(err(path, no, col, format!("{what}: expected a whole number, got {v:?}"))),
    }
}

/// The longest time lvsim takes from a file [s] (a year; ldirectord has no limit).
const MAX_SECONDS: u64 = 365 * 24 * 3600;

fn yes_no(path: &str, no: usize, col: usize, key: &str, v: &str) -> Result<bool, ImportError> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(err(path, no, col, format!("{key} must be 'yes' or 'no', got {v:?}"))),
    }
}

/// A port: a number 0..=65535 or one of the service names ldirectord knows.
fn port(path: &str, no: usize, col: usize, v: &str) -> Result<u16, ImportError> {
    const NAMES: [(&str, u16); 19] = [
        ("ftp", 21),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("nntp", 119),
        ("imap", 143),
        ("imap2", 143),
        ("ldap", 389),
        ("https", 443),
        ("submission", 587),
        ("ldaps", 636),
        ("imaps", 993),
        ("pop3s", 995),
        ("radius", 1812),
        ("mysql", 3306),
        ("sip", 5060),
        ("postgresql", 5432),
        ("http-alt", 8080),
    ];
    if let Some((_, p)) = NAMES.iter().find(|(n, _)| *n == v) {
        return Ok(*p);
    }
    let n = number(path, no, col, v, "port", 65535)?;
    Ok(n as u16)
}

/// `ADDRESS[:PORT]`, `[V6][:PORT]`: the address and the port if given.
fn address_port(
    path: &str,
    no: usize,
    col: usize,
    v: &str,
    v6: bool,
) -> Result<(IpAddr, Option<u16>), ImportError> {
    let (addr, port_text) = if let Some(rest) = v.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(err(path, no, col, format!("{v:?}: no ']' after the IPv6 address")));
        };
        let a: Ipv6Addr = rest[..end]
            .parse()
            .map_err(|_| err(path, no, col + 1, format!("{:?} is not an IPv6 address", &rest[..end])))?;
        let tail = &rest[end + 1..];
        let p = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(err(path, no, col, format!("{v:?}: expected :PORT after ']'"))),
        };
        (IpAddr::V6(a), p)
    } else {
        let (a, p) = match v.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        };
        let a: Ipv4Addr = a.parse().map_err(|_| {
            err(
                path,
                no,
                col,
                format!("{a:?} is not an IPv4 address (lvsim imports addresses, not host names)"),
            )
        })?;
        (IpAddr::V4(a), p)
    };
    if addr.is_ipv6() != v6 {
        let want = if v6 {
            "an IPv6 address here (virtual6, real6, fallback6)"
        } else {
            "an IPv4 address here: an IPv6 one needs virtual6, real6, fallback6"
        };
        return Err(err(path, no, col, format!("{v:?}: {want}")));
    }
    let port = port_text.map(|p| port(path, no, col + v.len() - p.len(), p)).transpose()?;
    Ok((addr, port))
}

/// ldirectord's forwarding words.
fn forwarding(path: &str, no: usize, col: usize, w: &str) -> Result<Forwarding, ImportError> {
    match w {
        "gate" => Ok(Forwarding::DirectRouting),
        "masq" => Ok(Forwarding::Masq),
        "ipip" => Ok(Forwarding::Tunnel),
        _ => Err(err(path, no, col, format!("forward method must be gate, masq or ipip, got {w:?}"))),
    }
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
        let (key, value, col) = key_value(path, no, line)?;
        if key == "virtual" || key == "virtual6" {
            let end = section_end(&lines, i + 1);
            let body = (i + 1..end).map(|j| (j + 1, lines[j].to_string())).collect();
            sections.push(RawSection { no, first: line.to_string(), body, sctp: false });
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

/// The failover of lvsim's group comment (`heartbeat`, `VRRP`, `active-active`), with the
/// schema's defaults.
fn group_kind(kind: &str) -> Option<crate::Failover> {
    let text = match kind {
        "heartbeat" => "Heartbeat()",
        "VRRP" => "Vrrp()",
        "active-active" => "ActiveActive()",
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

/// A `real` line (one address of a range).
#[derive(Clone, Copy)]
struct Real {
    addr: IpAddr,
    port: Option<u16>,
    fwd: Forwarding,
    weight: u32,
    lower: u32,
    upper: u32,
    line: usize,
}

/// A virtual section as written.
#[derive(Default)]
struct Section {
    no: usize,
    v6: bool,
    sctp: bool,
    vip: Option<(IpAddr, u16)>,
    fwmark: Option<u32>,
    reals: Vec<Real>,
    fallback: Option<(IpAddr, Option<u16>, Forwarding)>,
    checktype: Option<(String, usize)>,
    service: Option<String>,
    request: Option<String>,
    receive: Option<String>,
    digest: Option<String>,
    scheduler: Option<SchedulerKind>,
    persistent: Option<u64>,
    netmask: Option<(IpAddr, usize)>,
    flags: Vec<Flag>,
    protocol: Option<String>,
    settings: Settings,
}

impl Reader<'_> {
    /// A section: its `virtual` line `first` (line `no`) and its lines. `None` when it
    /// names no service lvsim can hold (a note says why).
    fn section(
        &mut self,
        no: usize,
        first: &str,
        body: &[(usize, String)],
        sctp: bool,
    ) -> Result<Option<ParsedService>, ImportError> {
        let p = self.path;
        let (key, v, col) = key_value(p, no, first)?;
        let mut s = Section { no, v6: key == "virtual6", sctp, ..Section::default() };
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            s.fwmark = Some(number(p, no, col, v, "firewall mark", u64::from(u32::MAX))? as u32);
        } else {
            let (a, port) = address_port(p, no, col, v, s.v6)?;
            let Some(port) = port else {
                return Err(err(
                    p,
                    no,
                    col,
                    format!("{v:?}: a virtual service needs a port (or is a firewall mark)"),
                ));
            };
            s.vip = Some((a, port));
        }
        for (n, line) in body {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
                self.section_comment(&mut s, c.trim());
                continue;
            }
            let line = line.split('#').next().unwrap_or_default();
            let (key, v, col) = key_value(p, *n, line)?;
            self.section_line(&mut s, *n, key, v, col)?;
        }
        self.service(s)
    }

    /// lvsim's comments inside a section.
    fn section_comment(&mut self, s: &mut Section, c: &str) {
        if lvsim_setting_comment(c, &mut s.settings) {
            return;
        }
        if let Some(rest) = c.strip_prefix("digest ")
            && let Some((d, _)) = rest.split_once(": ldirectord matches")
        {
            s.digest = Some(d.to_owned());
        } else if let Some(rest) = c.strip_prefix("receive \"")
            && let Some((r, _)) = rest.split_once("\": ldirectord cuts a line at '#'")
        {
            s.receive = Some(r.replace("\\\\", "\\"));
        }
    }

    /// One `KEY = VALUE` line of a section.
    fn section_line(
        &mut self,
        s: &mut Section,
        no: usize,
        key: &str,
        v: &str,
        col: usize,
    ) -> Result<(), ImportError> {
        let p = self.path;
        if self.setting(&mut s.settings, no, key, v, col)? {
            return Ok(());
        }
        let quoted = |what: &str| -> Result<String, ImportError> {
            match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                Some(x) if !x.is_empty() => Ok(x.to_owned()),
                _ => Err(err(
                    p,
                    no,
                    col,
                    format!("{what}: expected a non-empty string in double quotes, got {v:?}"),
                )),
            }
        };
        match key {
            "real" | "real6" => {
                if (key == "real6") != s.v6 {
                    let want = if s.v6 { "real6" } else { "real" };
                    return Err(err(p, no, 1, format!("cannot specify {key:?} here: use {want:?}")));
                }
                self.real(s, no, v, col)?;
            }
            "fallback" | "fallback6" => {
                if (key == "fallback6") != s.v6 {
                    return Err(err(
                        p,
                        no,
                        1,
                        format!("cannot specify {key:?} in this section (IPv4 and IPv6 do not mix)"),
                    ));
                }
                let mut w = v.split_whitespace();
                let (a, port) = address_port(p, no, col, w.next().unwrap_or_default(), s.v6)?;
                let f = match w.next() {
                    Some(m) => forwarding(p, no, col, m)?,
                    None => Forwarding::DirectRouting,
                };
                s.fallback = Some((a, port, f));
            }
            "request" => s.request = Some(quoted("request")?),
            "receive" => s.receive = Some(quoted("receive")?),
            "checktype" => s.checktype = Some((v.to_owned(), no)),
            "service" => {
                const SERVICES: [&str; 20] = [
                    "dns",
                    "ftp",
                    "http",
                    "https",
                    "http_proxy",
                    "imap",
                    "imaps",
                    "ldap",
                    "ldaps",
                    "nntp",
                    "mysql",
                    "none",
                    "oracle",
                    "pop",
                    "pops",
                    "radius",
                    "pgsql",
                    "sip",
                    "smtp",
                    "simpletcp",
                ];
                if !SERVICES.contains(&v) && v != "submission" {
                    return Err(err(
                        p,
                        no,
                        col,
                        format!("service {v:?}: ldirectord knows {}, submission", SERVICES.join(", ")),
                    ));
                }
                s.service = Some(v.to_owned());
            }
            "scheduler" => {
                let k = v.parse::<SchedulerKind>().map_err(|_| {
                    err(
                        p,
                        no,
                        col,
                        format!(
                            "scheduler {v:?}: not one the kernel has ({})",
                            SchedulerKind::ALL.map(SchedulerKind::name).join(", ")
                        ),
                    )
                })?;
                s.scheduler = Some(k);
            }
            "persistent" => s.persistent = Some(number(p, no, col, v, "persistent timeout", MAX_SECONDS)?),
            "netmask" => {
                let m =
                    if s.v6 {
                        let n = number(p, no, col, v, "netmask (an IPv6 prefix length)", 128)?;
                        if n == 0 {
                            return Err(err(
                                p,
                                no,
                                col,
                                "invalid netmask: a prefix length between 1 and 128 is required",
                            ));
                        }
                        IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - n)))
                    } else {
                        IpAddr::V4(v.parse::<Ipv4Addr>().map_err(|_| {
                            err(p, no, col, "invalid netmask: dotted quad notation is required")
                        })?)
                    };
                s.netmask = Some((m, no));
            }
            "schedflags" => {
                for w in v.split(',') {
                    let f = SchedFlag::from_name(w.trim()).ok_or_else(|| {
                        err(
                            p,
                            no,
                            col,
                            format!(
                                "scheduler flag {w:?}: ipvsadm knows {}",
                                SchedFlag::ALL.map(SchedFlag::name).join(", ")
                            ),
                        )
                    })?;
                    s.flags.push(Flag::from_sched_flag(f));
                }
            }
            "ops" => {
                if yes_no(p, no, col, key, v)? {
                    s.flags.push(Flag::OnePacket);
                }
            }
            "protocol" => {
                let ok = match (s.fwmark.is_some(), v) {
                    (true, "fwm") | (false, "tcp" | "udp") => true,
                    (false, "sctp") => s.sctp,
                    _ => false,
                };
                if !ok {
                    let want = if s.fwmark.is_some() {
                        "fwm for a firewall-mark service"
                    } else {
                        "tcp or udp for an address and port"
                    };
                    return Err(err(p, no, col, format!("protocol {v:?}: must be {want}")));
                }
                s.protocol = Some(v.to_owned());
            }
            "checkcommand" | "checkport" | "login" | "passwd" | "database" | "secret" | "load"
            | "httpmethod" | "virtualhost" | "fallbackcommand" | "emailalert" | "emailalertfreq"
            | "emailalertstatus" | "monitorfile" | "cleanstop" | "smtp" | "servicename" | "comment" => {
                self.note(no, format!("{key}: not modelled"));
            }
            _ => {
                return Err(err(
                    p,
                    no,
                    1,
                    format!("unknown directive {key:?} in a virtual section (ldirectord: unknown command)"),
                ));
            }
        }
        Ok(())
    }
}

/// The most addresses a `real = A->B` range may stand for.
const MAX_RANGE: u32 = 256;

impl Reader<'_> {
    /// `ADDRESS[->ADDRESS][:PORT] METHOD [WEIGHT] ["REQUEST", "RECEIVE"] [l:N] [u:N]`.
    fn real(&mut self, s: &mut Section, no: usize, v: &str, col: usize) -> Result<(), ImportError> {
        let p = self.path;
        let (target, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        let addrs: Vec<(IpAddr, Option<u16>)> = match target.split_once("->") {
            None => vec![address_port(p, no, col, target, s.v6)?],
            Some((a, b)) => {
                let (IpAddr::V4(first), _) = address_port(p, no, col, a, s.v6)? else {
                    return Err(err(
                        p,
                        no,
                        col,
                        "address ranges are IPv4 only (ldirectord: not supported yet for IPv6)",
                    ));
                };
                let (IpAddr::V4(last), port) = address_port(p, no, col + a.len() + 2, b, false)? else {
                    unreachable!("IPv4 asked for")
                };
                let (f, l) = (u32::from(first), u32::from(last));
                if f > l || l - f >= MAX_RANGE {
                    return Err(err(
                        p,
                        no,
                        col,
                        format!(
                            "range {a}->{b}: the first address comes first, and at most {MAX_RANGE} addresses"
                        ),
                    ));
                }
                (f..=l).map(|x| (IpAddr::V4(Ipv4Addr::from(x)), port)).collect()
            }
        };
        let mut words = rest.split_whitespace().peekable();
        // The column of a word after the address part.
        let at = |w: &str| col + target.len() + v[target.len()..].find(w).unwrap_or(0);
        let m = words
            .next()
            .ok_or_else(|| err(p, no, col, "a real server needs a forward method: gate, masq or ipip"))?;
        let fwd = forwarding(p, no, at(m), m)?;
        let mut weight = 1;
        if let Some(w) = words.peek().filter(|w| w.bytes().all(|b| b.is_ascii_digit())) {
            weight = number(p, no, at(w), w, "weight", 65535)? as u32;
            words.next();
        }
        let rest: Vec<&str> = words.collect();
        let mut rest = rest.join(" ");
        if let (Some(a), Some(b)) = (rest.find('"'), rest.rfind('"'))
            && a < b
        {
            self.note(
                no,
                "a real server's own request and receive strings: not modelled (the service's are)",
            );
            rest.replace_range(a..=b, "");
        }
        let (mut lower, mut upper) = (0, 0);
        for w in rest.split_whitespace() {
            if let Some(n) = w.strip_prefix("l:") {
                lower = number(p, no, at(w), n, "lower threshold", u64::from(u32::MAX))? as u32;
            } else if let Some(n) = w.strip_prefix("u:") {
                upper = number(p, no, at(w), n, "upper threshold", u64::from(u32::MAX))? as u32;
            } else {
                return Err(err(p, no, at(w), format!("invalid real server line, around {w:?}")));
            }
        }
        for (a, port) in addrs {
            s.reals.push(Real { addr: a, port, fwd, weight, lower, upper, line: no });
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// The service a section describes.
    fn service(&mut self, s: Section) -> Result<Option<ParsedService>, ImportError> {
        let no = s.no;
        let (vip, port) = s.vip.map_or((None, 0), |(a, p)| (Some(a), p));
        let protocol = match s.protocol.as_deref() {
            Some("udp") => Protocol::Udp,
            Some("sctp") => Protocol::Sctp,
            Some(_) => Protocol::Tcp,
            // ldirectord's default: udp for port 53, else tcp.
            None if s.fwmark.is_none() && port == 53 => Protocol::Udp,
            None => Protocol::Tcp,
        };
        let mut service = Service { protocol, vip, port, fwmark: s.fwmark, ..Service::default() };
        service.scheduler = s.scheduler.unwrap_or(SchedulerKind::Wrr);
        service.flags = s.flags.clone();
        if service.flags.contains(&Flag::OnePacket) && protocol != Protocol::Udp {
            self.note(no, "ops = yes: ldirectord sets one-packet scheduling for UDP services only");
            service.flags.retain(|f| *f != Flag::OnePacket);
        }
        service.persistence_s = s.persistent.map(|p| p as f64);
        match (s.netmask, s.persistent) {
            (Some((m, _)), Some(_)) => service.netmask = Some(m),
            (Some((_, line)), None) => {
                self.note(line, "netmask without persistent: ldirectord passes it on only with persistence")
            }
            _ => {}
        }
        let mut reals = Vec::new();
        for &Real { addr: a, port: rport, fwd, weight, lower, upper, line } in &s.reals {
            let rport = rport.unwrap_or(if s.fwmark.is_some() { 0 } else { port });
            let own = match (s.fwmark, fwd) {
                (None, Forwarding::DirectRouting | Forwarding::Tunnel) if rport != port => {
                    self.note(
                        line,
                        format!("port {rport}: direct routing and tunnelling use the service's port {port}"),
                    );
                    None
                }
                (Some(_), _) if rport == 0 => None,
                (None, _) if rport == port => None,
                _ => Some(rport),
            };
            service.real_servers.push(RealServer {
                server: String::new(),
                port: own,
                forwarding: fwd,
                weight,
                upper,
                lower,
                tunnel: None,
            });
            reals.push(a);
        }
        if s.reals.is_empty() {
            self.note(no, "a virtual service without real servers");
        }
        let (check, fallback) = self.check(&s)?;
        service.check = check;
        Ok(Some(ParsedService { service, reals, fallback }))
    }

    /// The service's health check (with its fallback's address), from its `checktype`
    /// and the settings of the section, else the global part, else ldirectord's defaults.
    fn check(&mut self, s: &Section) -> Result<(Option<HealthCheck>, Option<IpAddr>), ImportError> {
        let (checktype, line) = s.checktype.clone().unwrap_or_else(|| ("negotiate".to_owned(), s.no));
        let kind = match checktype.as_str() {
            "on" | "off" => {
                if checktype == "off" {
                    self.note(line, "checktype = off: ldirectord adds neither real nor fallback servers; lvsim keeps the real servers up");
                }
                if s.fallback.is_some() {
                    self.note(line, "a fallback server without a check: lvsim adds a fallback when checks find every server down");
                }
                return Ok((None, None));
            }
            "negotiate" => {
                let svc = s.service.as_deref().unwrap_or(if s.vip.is_some_and(|(_, p)| p == 443) {
                    "https"
                } else {
                    "http"
                });
                if !matches!(svc, "http" | "https" | "http_proxy") {
                    self.note(
                        line,
                        format!("a negotiate check of service {svc}: modelled as an HTTP request"),
                    );
                }
                CheckKind::Negotiate {
                    request: s.request.clone().unwrap_or_else(|| "/".to_owned()),
                    receive: s.receive.clone(),
                    digest: s.digest.clone(),
                    demand_ms: 1.0,
                }
            }
            "connect" => CheckKind::Connect,
            "ping" | "external" | "external-perl" => {
                self.note(line, format!("checktype = {checktype}: modelled as a connect check"));
                CheckKind::Connect
            }
            c if c.bytes().all(|b| b.is_ascii_digit()) && !c.is_empty() => {
                self.note(line, format!("checktype = {c} (negotiate every {c}th check, else connect): modelled as a connect check"));
                CheckKind::Connect
            }
            _ => {
                return Err(err(
                    self.path,
                    line,
                    1,
                    format!(
                        "checktype {checktype:?}: ldirectord takes connect, negotiate, on, off, ping, external, external-perl or a positive number"
                    ),
                ));
            }
        };
        let (own, g) = (&s.settings, self.global.clone());
        let negotiate = matches!(kind, CheckKind::Negotiate { .. });
        let timeout = if negotiate {
            own.negotiatetimeout.or(own.checktimeout).or(g.negotiatetimeout).or(g.checktimeout).unwrap_or(30)
        } else {
            own.checktimeout.or(own.negotiatetimeout).or(g.checktimeout).or(g.negotiatetimeout).unwrap_or(5)
        };
        let timeout_s = match own.rounded_timeout {
            Some((x, n)) if n == timeout => x,
            _ => timeout as f64,
        };
        if own.checkinterval.is_some() && !self.fork {
            self.note(line, "checkinterval in a virtual section: ldirectord ignores it without fork = yes");
        }
        let own_interval = own.checkinterval.filter(|_| self.fork);
        let interval = own_interval.or(g.checkinterval).unwrap_or(10);
        let rounded = if own_interval.is_some() { own.rounded_interval } else { g.rounded_interval };
        let interval_s = match rounded {
            Some((x, n)) if n == interval => x,
            _ => interval as f64,
        };
        let failurecount = own.failurecount.or(g.failurecount).unwrap_or(1);
        let fallback = s.fallback.map(|(a, port, f)| {
            let port = port.filter(|p| f == Forwarding::Masq && Some(*p) != s.vip.map(|v| v.1));
            (a, Fallback { server: String::new(), port, forwarding: f })
        });
        let check = HealthCheck {
            checker: Checker::Ldirectord,
            kind,
            interval_s: Some(interval_s),
            timeout_s: Some(timeout_s),
            retries: Some(u32::try_from(failurecount - 1).unwrap_or(u32::MAX)),
            delay_before_retry_s: own.delay_before_retry,
            quiescent: Some(own.quiescent.or(g.quiescent).unwrap_or(false)),
            fallback: fallback.as_ref().map(|(_, f)| f.clone()),
        };
        Ok((Some(check), fallback.map(|(a, _)| a)))
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
