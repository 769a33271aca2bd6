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

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind};

use super::{ImportError, Imported, Note, Source};
use crate::export::lvs_cf::SCHEDULERS;
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

/// One token: its text (quotes removed), 1-based column, and whether it was quoted.
#[derive(Clone, Debug)]
struct Tok {
    text: String,
    col: usize,
}

/// The tokens of a statement line.
#[derive(Clone, Debug)]
struct Line {
    no: usize,
    toks: Vec<Tok>,
}

/// Lines with a statement, as lvsconfig.c's `getNextToks()` splits them (a `\r` ends a
/// line too).
fn tokenize(path: &str, text: &str) -> Result<Vec<Line>, ImportError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.split('\r').next().unwrap_or("");
        let chars: Vec<(usize, char)> = raw.char_indices().collect();
        let mut k = 0;
        let mut toks = Vec::new();
        loop {
            while k < chars.len() && matches!(chars[k].1, ' ' | '\t') {
                k += 1;
            }
            if k == chars.len() || (toks.is_empty() && chars[k].1 == '#') {
                break;
            }
            let col = raw[..chars[k].0].chars().count() + 1;
            let (text, next) = word(&chars, k).map_err(|m| ImportError::at(path, i + 1, col, m))?;
            toks.push(Tok { text, col });
            k = next;
        }
        if !toks.is_empty() {
            out.push(Line { no: i + 1, toks });
        }
    }
    Ok(out)
}

/// The token starting at `k`: a quoted string to its closing quote, or a run of non-blanks.
fn word(chars: &[(usize, char)], k: usize) -> Result<(String, usize), String> {
    let q = chars[k].1;
    if q != '"' && q != '\'' {
        let end = (k..chars.len()).find(|&j| matches!(chars[j].1, ' ' | '\t')).unwrap_or(chars.len());
        return Ok((chars[k..end].iter().map(|c| c.1).collect(), end));
    }
    let close = (k + 1..chars.len())
        .find(|&j| chars[j].1 == q)
        .ok_or_else(|| format!("no closing {q}: piranha refuses the file (LVS_ERROR_BADQUOTING)"))?;
    if close + 1 < chars.len() && !matches!(chars[close + 1].1, ' ' | '\t') {
        return Err(format!("text after the closing {q}"));
    }
    Ok((chars[k + 1..close].iter().map(|c| c.1).collect(), close + 1))
}

/// `# lvsim: primary NAME, backup NAME` (as the exporter writes it): the directors' names.
fn director_names(text: &str) -> (String, String) {
    let found = text.lines().find_map(|l| l.trim().strip_prefix("# lvsim: primary ")).map(|rest| {
        let mut it = rest.split(", backup ");
        (it.next().unwrap_or("").trim().to_owned(), it.next().map(|b| b.trim().to_owned()))
    });
    let ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    match found {
        Some((p, b)) if ok(&p) => (p, b.filter(|b| ok(b)).unwrap_or_else(|| "backup".into())),
        _ => ("primary".into(), "backup".into()),
    }
}

/// nanny's `convert_str()`: `\\`, `\r`, `\n`, `\t`, `\'`, `\"` become the characters;
/// any other backslash stays.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        let mapped = match (c, it.peek()) {
            ('\\', Some('\\')) => Some('\\'),
            ('\\', Some('r')) => Some('\r'),
            ('\\', Some('n')) => Some('\n'),
            ('\\', Some('t')) => Some('\t'),
            ('\\', Some('\'')) => Some('\''),
            ('\\', Some('"')) => Some('"'),
            _ => None,
        };
        match mapped {
            Some(m) => {
                it.next();
                out.push(m);
            }
            None => out.push(c),
        }
    }
    out
}

/// The global settings.
#[derive(Debug)]
struct Global {
    primary: Option<Ipv4Addr>,
    backup: Option<(Ipv4Addr, usize)>,
    backup_active: Option<usize>,
    heartbeat_port: u16,
    keepalive: (u32, usize),
    deadtime: (u32, usize),
    network: Forwarding,
    nat_router: Option<(Ipv4Addr, String, usize)>,
    syncdaemon: Option<usize>,
    syncd_iface: Option<String>,
    syncd_id: u8,
    timeouts: [Option<u32>; 3],
}

impl Default for Global {
    /// lvsconfig.c `lvsReadConfig()`'s defaults.
    fn default() -> Self {
        Global {
            primary: None,
            backup: None,
            backup_active: None,
            heartbeat_port: 539,
            keepalive: (2, 0),
            deadtime: (5, 0),
            network: Forwarding::Masq,
            nat_router: None,
            syncdaemon: None,
            syncd_iface: None,
            syncd_id: 0,
            timeouts: [None; 3],
        }
    }
}

/// A `virtual` (or `failover`) block.
#[derive(Debug)]
struct Virtual {
    name: String,
    line: usize,
    failover: bool,
    active: bool,
    address: Option<(Ipv4Addr, String)>,
    vip_nmask: Option<Ipv4Addr>,
    port: u16,
    protocol: Protocol,
    scheduler: SchedulerKind,
    persistent: u32,
    pmask: Option<Ipv4Addr>,
    fwmark: Option<u32>,
    timeout: u32,
    reentry: u32,
    quiesce: bool,
    send: Option<String>,
    expect: Option<String>,
    use_regex: bool,
    send_program: Option<String>,
    servers: Vec<Rs>,
}

impl Virtual {
    /// lvsconfig.c `lvsInitVirtualServer()`'s defaults (inactive until `active = 1`).
    fn new(name: &str, line: usize, failover: bool) -> Virtual {
        Virtual {
            name: name.to_owned(),
            line,
            failover,
            active: false,
            address: None,
            vip_nmask: None,
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: SchedulerKind::Wlc,
            persistent: 0,
            pmask: None,
            fwmark: None,
            timeout: 10,
            reentry: 180,
            quiesce: false,
            send: None,
            expect: None,
            use_regex: false,
            send_program: None,
            servers: Vec::new(),
        }
    }
}

/// A `server` block.
#[derive(Debug)]
struct Rs {
    name: String,
    line: usize,
    address: Option<Ipv4Addr>,
    active: bool,
    port: u16,
    weight: u32,
}

struct Parser<'a> {
    path: &'a str,
    notes: Vec<Note>,
    g: Global,
    virtuals: Vec<Virtual>,
}

/// Keywords piranha reads that the topology has no room for, and why.
const IGNORED_GLOBAL: [(&str, &str); 11] = [
    ("primary_private", "a private heartbeat path is not modelled"),
    ("backup_private", "a private heartbeat path is not modelled"),
    ("primary_shared", "shared SCSI is not modelled"),
    ("backup_shared", "shared SCSI is not modelled"),
    ("reservation_conflict_action", "shared SCSI is not modelled"),
    ("rsh_command", "file synchronisation is not modelled"),
    ("sync", "file synchronisation is not modelled"),
    ("active_cmd", "commands run on a transition are not modelled"),
    ("inactive_cmd", "commands run on a transition are not modelled"),
    ("monitor_links", "pulse's link monitoring is not modelled"),
    ("hard_shutdown", "pulse's hard shutdown is not modelled"),
];

impl Parser<'_> {
    fn err(&self, line: usize, col: usize, m: impl Into<String>) -> ImportError {
        ImportError::at(self.path, line, col, m)
    }

    fn note(&mut self, line: usize, m: impl Into<String>) {
        self.notes.push(Note { path: self.path.to_owned(), line, message: m.into() });
    }

    /// The `n` values of `KEY = V1 .. Vn` (lvsconfig.c `CHECK_ARGS`).
    fn values<'l>(&self, l: &'l Line, n: usize) -> Result<&'l [Tok], ImportError> {
        let key = &l.toks[0];
        let end = key.col + key.text.chars().count();
        match l.toks.get(1) {
            Some(t) if t.text == "=" => {}
            Some(t) => return Err(self.err(l.no, t.col, format!("expected `=` after {}", key.text))),
            None => return Err(self.err(l.no, end, format!("expected `= VALUE` after {}", key.text))),
        }
        let vals = &l.toks[2..];
        if vals.len() < n {
            let what = if n == 2 { "two values (ADDRESS DEVICE)" } else { "a value" };
            return Err(self.err(l.no, l.toks[1].col, format!("{} takes {what}", key.text)));
        }
        if let Some(extra) = vals.get(n) {
            return Err(self.err(l.no, extra.col, format!("one value too many for {}", key.text)));
        }
        Ok(vals)
    }

    fn one<'l>(&self, l: &'l Line) -> Result<&'l Tok, ImportError> {
        Ok(&self.values(l, 1)?[0])
    }

    /// An integer in `lo..=hi` (lvsconfig.c `getNum()`: decimal, `0x` hex).
    fn num(&self, l: &Line, lo: i64, hi: i64) -> Result<u32, ImportError> {
        let t = self.one(l)?;
        let s = t.text.as_str();
        let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => i64::from_str_radix(h, 16).ok(),
            None => s.parse::<i64>().ok(),
        };
        match v {
            Some(v) if (lo..=hi).contains(&v) => Ok(v as u32),
            Some(v) => Err(self.err(l.no, t.col, format!("{v}: {} takes {lo} to {hi}", l.toks[0].text))),
            None => Err(self.err(l.no, t.col, format!("{s:?} is not an integer"))),
        }
    }

    fn boolean(&self, l: &Line) -> Result<bool, ImportError> {
        let t = self.one(l)?;
        match t.text.as_str() {
            "0" => Ok(false),
            "1" => Ok(true),
            s => Err(self.err(l.no, t.col, format!("{s:?}: {} takes 0 or 1", l.toks[0].text))),
        }
    }

    fn ipv4(&self, line: usize, t: &Tok) -> Result<Ipv4Addr, ImportError> {
        t.text.parse().map_err(|_| {
            self.err(
                line,
                t.col,
                format!(
                    "{:?} is not an IPv4 address (lvsim does not resolve host names; piranha is IPv4 only)",
                    t.text
                ),
            )
        })
    }

    /// A port number or one of the service names piranha's `getservbyname()` commonly
    /// knows.
    fn port(&self, l: &Line) -> Result<u16, ImportError> {
        let t = self.one(l)?;
        let named = [
            ("http", 80),
            ("https", 443),
            ("ftp", 21),
            ("smtp", 25),
            ("domain", 53),
            ("pop3", 110),
            ("imap", 143),
        ];
        if let Some((_, p)) = named.iter().find(|(n, _)| *n == t.text) {
            return Ok(*p);
        }
        t.text.parse().map_err(|_| self.err(l.no, t.col, format!("{:?} is not a port", t.text)))
    }

    fn parse(&mut self, lines: &[Line]) -> Result<(), ImportError> {
        let mut i = 0;
        while i < lines.len() {
            let l = &lines[i];
            match l.toks[0].text.as_str() {
                w @ ("virtual" | "failover") => {
                    let name = self.block_name(l)?;
                    let mut v = Virtual::new(&name, l.no, w == "failover");
                    i = self.virtual_block(lines, i + 1, &mut v)?;
                    self.virtuals.push(v);
                }
                _ => self.global(l)?,
            }
            i += 1;
        }
        Ok(())
    }

    /// `NAME` of `WORD NAME {`.
    fn block_name(&self, l: &Line) -> Result<String, ImportError> {
        match l.toks.as_slice() {
            [_, name, brace] if brace.text == "{" => Ok(name.text.clone()),
            [_, _, _, extra, ..] => Err(self.err(l.no, extra.col, "one word too many: expected `NAME {`")),
            _ => Err(self.err(
                l.no,
                l.toks[0].col,
                format!("expected `{} NAME {{` on one line", l.toks[0].text),
            )),
        }
    }

    /// Is line `i` the end of a block opened at line `opened`? Its `}` line, or the end
    /// of the file: piranha's parser takes that as the end of every open block, and
    /// ignores what follows a `}` (lvsconfig.c frees the tokens before it looks at them),
    /// so both are notes, not errors.
    fn closing(&mut self, lines: &[Line], i: usize, opened: usize) -> bool {
        let Some(l) = lines.get(i) else {
            self.note(opened, "this block has no closing `}`: piranha ends it at the end of the file");
            return true;
        };
        if l.toks[0].text != "}" {
            return false;
        }
        if l.toks.len() > 1 {
            self.note(l.no, "text after `}` is ignored (as piranha ignores it)");
        }
        true
    }

    fn virtual_block(&mut self, lines: &[Line], mut i: usize, v: &mut Virtual) -> Result<usize, ImportError> {
        while !self.closing(lines, i, v.line) {
            let l = &lines[i];
            if l.toks[0].text == "server" {
                let name = self.block_name(l)?;
                let mut rs = Rs { name, line: l.no, address: None, active: false, port: v.port, weight: 1 };
                i += 1;
                while !self.closing(lines, i, rs.line) {
                    self.server(&lines[i], &mut rs)?;
                    i += 1;
                }
                v.servers.push(rs);
            } else {
                self.virtual_key(l, v)?;
            }
            i += 1;
        }
        Ok(i)
    }

    fn server(&mut self, l: &Line, rs: &mut Rs) -> Result<(), ImportError> {
        match l.toks[0].text.as_str() {
            "address" => rs.address = Some(self.ipv4(l.no, self.one(l)?)?),
            "active" => rs.active = self.boolean(l)?,
            "weight" => rs.weight = self.num(l, 0, 65535)?,
            "port" => rs.port = self.num(l, 0, 65535)? as u16,
            w => return Err(self.unknown(l, w, "a server block")),
        }
        Ok(())
    }

    fn unknown(&self, l: &Line, w: &str, place: &str) -> ImportError {
        self.err(
            l.no,
            l.toks[0].col,
            format!("{w:?} is not a keyword of {place}: piranha refuses the file (LVS_ERROR_BADCOMMAND)"),
        )
    }

    /// A string value, unescaped.
    fn string(&self, l: &Line) -> Result<String, ImportError> {
        Ok(unescape(&self.one(l)?.text))
    }

    fn virtual_key(&mut self, l: &Line, v: &mut Virtual) -> Result<(), ImportError> {
        let w = l.toks[0].text.as_str();
        match w {
            "active" => v.active = self.boolean(l)?,
            "address" => {
                let vals = self.values(l, 2)?;
                v.address = Some((self.ipv4(l.no, &vals[0])?, vals[1].text.clone()));
            }
            "vip_nmask" => v.vip_nmask = Some(self.ipv4(l.no, self.one(l)?)?),
            "port" => v.port = self.port(l)?,
            "protocol" => {
                let t = self.one(l)?;
                v.protocol = match t.text.as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    s => return Err(self.err(l.no, t.col, format!("{s:?}: protocol is tcp or udp"))),
                };
            }
            "scheduler" => {
                let t = self.one(l)?;
                v.scheduler = SCHEDULERS.into_iter().find(|k| k.name() == t.text).ok_or_else(|| {
                    let known = SCHEDULERS.map(|k| k.name()).join(", ");
                    self.err(l.no, t.col, format!("{:?}: lvs.cf's scheduler is one of {known}", t.text))
                })?;
            }
            "persistent" => v.persistent = self.num(l, 0, i64::from(u32::MAX))?,
            "pmask" => v.pmask = Some(self.ipv4(l.no, self.one(l)?)?),
            "fwmark" => v.fwmark = Some(self.num(l, 0, i64::from(u32::MAX))?),
            "timeout" => v.timeout = self.num(l, 1, 86_400).map_err(|e| self.zero(e, l))?,
            "reentry" => v.reentry = self.num(l, 0, 86_400)?,
            "quiesce_server" => v.quiesce = self.boolean(l)?,
            "use_regex" => v.use_regex = self.boolean(l)?,
            "send" => v.send = Some(self.string(l)?),
            "expect" => v.expect = Some(self.string(l)?),
            "send_program" => v.send_program = Some(self.string(l)?),
            "load_monitor" => {
                let t = self.one(l)?;
                if t.text != "none" {
                    let m = format!(
                        "load_monitor {}: nanny's weight changes from the servers' load are not modelled",
                        t.text
                    );
                    self.note(l.no, m);
                }
            }
            // A failover service's commands: the whole block is noted once.
            "start_cmd" | "stop_cmd" if v.failover => {
                self.one(l)?;
            }
            "sorry_server" | "client_monitor" | "master" | "dirs" | "start_cmd" | "stop_cmd" => {
                self.note(l.no, format!("{w} is not mapped"));
            }
            _ => return Err(self.unknown(l, w, "a virtual server")),
        }
        Ok(())
    }

    /// nanny divides `reentry` by `timeout`: 0 is refused with that reason.
    fn zero(&self, e: ImportError, l: &Line) -> ImportError {
        if l.toks.get(2).is_some_and(|t| t.text == "0") {
            return ImportError {
                message: "timeout 0: nanny divides reentry by it and checks every timeout seconds".into(),
                ..e
            };
        }
        e
    }

    fn global(&mut self, l: &Line) -> Result<(), ImportError> {
        let w = l.toks[0].text.as_str();
        match w {
            "primary" => self.g.primary = Some(self.ipv4(l.no, self.one(l)?)?),
            "backup" => self.g.backup = Some((self.ipv4(l.no, self.one(l)?)?, l.no)),
            "backup_active" => self.g.backup_active = self.boolean(l)?.then_some(l.no),
            "heartbeat_port" => self.g.heartbeat_port = self.num(l, 1, 65535)? as u16,
            "keepalive" => self.g.keepalive = (self.num(l, 1, 3600)?, l.no),
            "deadtime" => self.g.deadtime = (self.num(l, 1, 3600)?, l.no),
            "network" => {
                let t = self.one(l)?;
                self.g.network = match t.text.as_str() {
                    "nat" => Forwarding::Masq,
                    "direct" => Forwarding::DirectRouting,
                    "tunnel" => Forwarding::Tunnel,
                    s => {
                        return Err(self.err(
                            l.no,
                            t.col,
                            format!("{s:?}: network is nat, direct or tunnel"),
                        ));
                    }
                };
            }
            "nat_router" => {
                let vals = self.values(l, 2)?;
                self.g.nat_router = Some((self.ipv4(l.no, &vals[0])?, vals[1].text.clone(), l.no));
            }
            "nat_nmask" => {
                self.ipv4(l.no, self.one(l)?)?;
            }
            "syncdaemon" => self.g.syncdaemon = self.boolean(l)?.then_some(l.no),
            "syncd_iface" => self.g.syncd_iface = Some(self.one(l)?.text.clone()),
            "syncd_id" => self.g.syncd_id = self.num(l, 0, 255)? as u8,
            "tcp_timeout" => {
                self.g.timeouts[0] = Some(self.num(l, 0, i64::from(u32::MAX))?).filter(|&t| t != 0)
            }
            "tcpfin_timeout" => {
                self.g.timeouts[1] = Some(self.num(l, 0, i64::from(u32::MAX))?).filter(|&t| t != 0)
            }
            "udp_timeout" => {
                self.g.timeouts[2] = Some(self.num(l, 0, i64::from(u32::MAX))?).filter(|&t| t != 0)
            }
            "service" => {
                let t = self.one(l)?;
                match t.text.as_str() {
                    "lvs" => {}
                    "fos" => return Err(self.err(l.no, t.col, "service = fos: piranha's failover services are not LVS; lvsim imports virtual servers (service = lvs)")),
                    s => return Err(self.err(l.no, t.col, format!("{s:?}: service is lvs or fos"))),
                }
            }
            "serial_no" | "debug_level" | "heartbeat" | "ipvsadm" => {
                self.one(l)?;
            }
            _ => match IGNORED_GLOBAL.iter().find(|(k, _)| *k == w) {
                Some((_, why)) => {
                    // A switch left off (`monitor_links = 0`) changes nothing.
                    if self.one(l)?.text != "0" {
                        self.note(l.no, format!("{w}: {why}"));
                    }
                }
                None => return Err(self.unknown(l, w, "lvs.cf's global settings")),
            },
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Target, lvs_cf};
    use crate::import::{Format, import as import_any};

    fn src(path: &str, text: &str) -> Source {
        Source { path: path.into(), text: text.into() }
    }

    fn imp(text: &str) -> Imported {
        import_any(&[src("lvs.cf", text)], None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        import_any(&[src("lvs.cf", text)], None).unwrap_err().to_string()
    }

    const PAIR: &str = r#"(
        directors: [
            (name: "lb1", address: "10.1.1.2", segment: "internal", services: [
                (vip: Some("192.0.2.10"), port: 80, scheduler: wlc, persistence_s: Some(300.0),
                 netmask: Some("255.255.255.0"),
                 real_servers: [(server: "app1", forwarding: NAT, weight: 3), (server: "app2", port: Some(8080), forwarding: NAT)],
                 check: Some((checker: nanny, kind: SendExpect(send: Some("GET /ok HTTP/1.0\r\n\r\n"), expect: Some("HTTP/1\\.1 200"), use_regex: true),
                              timeout_s: Some(6.0), reentry_s: Some(15.0), quiescent: Some(true)))),
                (vip: Some("192.0.2.11"), port: 80, protocol: UDP, scheduler: rr,
                 real_servers: [(server: "app1", forwarding: NAT)],
                 check: Some((checker: nanny, kind: Connect))),
                (vip: Some("192.0.2.11"), port: 25, scheduler: lc,
                 real_servers: [(server: "app2", forwarding: NAT)],
                 check: Some((checker: nanny, kind: Negotiate(request: "status", receive: Some("220"))))),
            ]),
            (name: "lb2", address: "10.1.1.3", segment: "internal"),
        ],
        servers: [
            (name: "app1", address: "10.1.1.11", segment: "internal", gateway: Some("lb1")),
            (name: "app2", address: "10.1.1.12", segment: "internal", gateway: Some("lb1")),
        ],
        ha: Some((directors: ["lb1", "lb2"], failover: Pulse(keepalive_s: 3.0, deadtime_s: 12.0, heartbeat_port: 1050),
                  sync: Some((syncid: 9)), external_interface: "ext0", internal_interface: "int0", vip_prefix: 25)),
    )"#;

    fn pair() -> Topology {
        ron::from_str(PAIR).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn export_import_export_is_byte_identical() {
        let t = pair();
        t.expand().unwrap_or_else(|e| panic!("{e:?}"));
        let first = lvs_cf(&t, Target::default()).expect("a pulse group");
        assert_eq!(Format::detect("x", &first), Some(Format::LvsCf));
        let back = imp(&first);
        assert!(back.notes.is_empty(), "{:?}", back.notes);
        back.topology.expand().unwrap_or_else(|e| panic!("{e:?}\n{first}"));
        let again = lvs_cf(&back.topology, Target::default()).expect("a pulse group");
        assert_eq!(again, first);
        // What came back is the same cluster: names, addresses, timing.
        let (a, b) = (&t, &back.topology);
        assert_eq!(
            b.directors.iter().map(|d| (&d.name, d.address)).collect::<Vec<_>>(),
            a.directors.iter().map(|d| (&d.name, d.address)).collect::<Vec<_>>()
        );
        let ha = b.ha.as_ref().expect("a group");
        assert_eq!(ha.failover, a.ha.as_ref().unwrap().failover);
        assert_eq!(
            (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
            ("ext0", "int0", 25)
        );
        assert_eq!(ha.sync.as_ref().map(|s| (s.syncid, s.interface.clone())), Some((9, None)));
        let s0 = &b.directors[0].services[0];
        assert_eq!((s0.persistence_s, s0.netmask), (Some(300.0), Some("255.255.255.0".parse().unwrap())));
        assert_eq!(s0.real_servers[1].port, Some(8080));
        let c = s0.check.as_ref().unwrap().config();
        assert_eq!(
            (c.interval, c.timeout, c.rise),
            (lvs_sched::Duration::from_secs(6), lvs_sched::Duration::from_secs(6), 2)
        );
        assert_eq!(c.on_failure, sim_core::ha::OnFailure::Quiesce);
        let CheckKind::SendExpect { expect, use_regex, .. } = &s0.check.as_ref().unwrap().kind else {
            panic!()
        };
        assert_eq!((expect.as_deref(), *use_regex), (Some("HTTP/1\\.1 200"), true));
        // The bare connect check on port 80 stays one (an empty send), UDP included.
        assert!(first.contains("     send = \"\"\n"), "{first}");
        assert_eq!(b.directors[0].services[1].check.as_ref().unwrap().kind, CheckKind::Connect);
    }

    #[test]
    fn the_exported_file_says_what_nanny_and_pulse_read() {
        let text = lvs_cf(&pair(), Target::default()).unwrap();
        for line in [
            "# lvsim: primary lb1, backup lb2",
            "primary = 10.1.1.2",
            "backup_active = 1",
            "backup = 10.1.1.3",
            "heartbeat_port = 1050",
            "keepalive = 3",
            "deadtime = 12",
            "network = nat",
            "nat_router = 10.1.1.2 int0:1",
            "nat_nmask = 255.255.255.128",
            "syncdaemon = 1",
            "syncd_iface = int0",
            "syncd_id = 9",
            "     address = 192.0.2.10 ext0:1",
            "     address = 192.0.2.11 ext0:2",
            "     persistent = 300",
            "     pmask = 255.255.255.0",
            "     timeout = 6",
            "     reentry = 15",
            "     quiesce_server = 1",
            r#"     send = "GET /ok HTTP/1.0\r\n\r\n""#,
            r#"     expect = "HTTP/1\\.1 200""#,
            "     use_regex = 1",
            r#"     send = "GET /status HTTP/1.0\r\n\r\n""#,
            r#"     expect = "220""#,
            "         port = 8080",
            "         weight = 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        // A topology without pulse or nanny has no lvs.cf.
        let mut t = pair();
        t.ha = None;
        for s in &mut t.directors[0].services {
            s.check = None;
        }
        assert_eq!(lvs_cf(&t, Target::default()), None);
    }

    #[test]
    fn what_lvs_cf_cannot_hold_is_a_comment_and_the_rest_still_reads_back() {
        let t: Topology = ron::from_str(
            r#"(
            directors: [
                (name: "lb1", address: "10.1.1.2", services: [
                    (vip: Some("2001:db8::10"), port: 80, real_servers: [(server: "a", forwarding: DR)]),
                    (fwmark: Some(7), real_servers: [(server: "a", forwarding: DR)]),
                    (vip: Some("192.0.2.10"), port: 80, scheduler: sed, real_servers: [(server: "a", forwarding: DR)]),
                    (vip: Some("192.0.2.10"), port: 443, flags: [sh_port], scheduler: sh,
                     real_servers: [(server: "a", forwarding: DR, upper: 10, lower: 5), (server: "b", forwarding: TUN)]),
                ]),
                (name: "lb2", address: "10.1.1.3"),
            ],
            servers: [(name: "a", address: "10.1.1.11"), (name: "b", address: "10.1.1.12")],
            ha: Some((directors: ["lb1", "lb2"], failover: Pulse())),
        )"#,
        )
        .unwrap();
        let text = lvs_cf(&t, Target::default()).unwrap();
        for comment in [
            "# lvs.cf has one forwarding method for every real server: DirectRouting written, not [Tunnel]",
            "# service [2001:db8::10]:80 not written: IPv6: piranha is IPv4 only",
            "# service fwm 7 not written: a firewall-mark service: lvs.cf's virtual server needs its VIP address",
            "# service 192.0.2.10:80 not written: scheduler sed: lvs.cf takes rr, wrr, lc, wlc, lblc, lblcr, dh, sh",
            "     # flags [ShPort]: lvs.cf has no scheduler flags",
            "         # thresholds -x 10 -y 5: lvs.cf has none",
        ] {
            assert!(text.lines().any(|l| l == comment), "no {comment:?} in\n{text}");
        }
        // Services without a check get nanny's defaults, uncommented: the import gives them back.
        assert!(!text.contains("check in the topology"), "{text}");
        let back = imp(&text).topology;
        let s = &back.directors[0].services;
        assert_eq!(s.len(), 1, "only the fourth service is in the file");
        assert_eq!((s[0].port, s[0].scheduler), (443, SchedulerKind::Sh));
        assert!(s[0].real_servers.iter().all(|r| r.forwarding == Forwarding::DirectRouting));
        assert_eq!(s[0].check.as_ref().unwrap().checker, Checker::Nanny, "lvsd runs nanny anyway");
    }

    #[test]
    fn piranhas_sample_layout_imports_with_notes_for_what_is_not_mapped() {
        let text = include_str!("../../tests/data/lvs-cf/sample-nat.cf");
        let r = imp(text);
        let t = &r.topology;
        assert_eq!(t.directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["primary", "backup"]);
        let ha = t.ha.as_ref().unwrap();
        assert_eq!(ha.failover, Failover::Pulse { keepalive_s: 6.0, deadtime_s: 18.0, heartbeat_port: 1050 });
        assert_eq!(
            (ha.external_interface.as_str(), ha.internal_interface.as_str(), ha.vip_prefix),
            ("eth0", "eth1", 24)
        );
        // server2 is inactive, web1 a failover service: one service.
        let s = &t.directors[0].services;
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].port, s[0].scheduler, s[0].persistence_s), (80, SchedulerKind::Wlc, Some(60.0)));
        assert_eq!(
            s[0].real_servers.iter().map(|r| (r.server.as_str(), r.weight, r.forwarding)).collect::<Vec<_>>(),
            [("Real1", 1, Forwarding::Masq), ("Real2", 2, Forwarding::Masq)]
        );
        let c = s[0].check.as_ref().unwrap().config();
        assert_eq!((c.timeout.as_secs_f64(), c.rise), (5.0, 2));
        assert_eq!(t.servers[0].gateway.as_deref(), Some("primary"));
        let lines: Vec<(usize, &str)> = r.notes.iter().map(|n| (n.line, n.message.as_str())).collect();
        for (line, start) in [
            (6, "primary_private"),
            (9, "backup_private"),
            (15, "rsh_command"),
            (18, "nat_router 192.168.10.100"),
            (25, "load_monitor uptime"),
            (50, "virtual server2: not active"),
            (64, "failover web1"),
        ] {
            assert!(
                lines.iter().any(|(l, m)| *l == line && m.starts_with(start)),
                "no note {line} {start:?} in {lines:?}"
            );
        }
        assert!(t.expand().is_ok());
    }

    #[test]
    fn regex_program_quiesce_and_sync_are_read() {
        let r = imp(include_str!("../../tests/data/lvs-cf/rhel-dr-regex.cf"));
        let t = &r.topology;
        let s = &t.directors[0].services;
        assert_eq!(s.len(), 2);
        let CheckKind::SendExpect { send, expect, use_regex, .. } = &s[0].check.as_ref().unwrap().kind else {
            panic!()
        };
        assert_eq!(send.as_deref(), Some("GET /health HTTP/1.0\r\n\r\n"));
        assert_eq!((expect.as_deref(), *use_regex), (Some("HTTP/1\\.[01] 200"), true));
        assert_eq!(s[0].check.as_ref().unwrap().quiescent, Some(true));
        let CheckKind::SendExpect { send_program, .. } = &s[1].check.as_ref().unwrap().kind else { panic!() };
        assert_eq!(send_program.as_deref(), Some("/usr/local/bin/check_https %h %p"));
        assert_eq!(s[1].real_servers.len(), 1, "web2 is inactive in tls");
        assert_eq!(s[0].real_servers[0].forwarding, Forwarding::DirectRouting);
        let ha = t.ha.as_ref().unwrap();
        assert_eq!(ha.sync.as_ref().map(|s| s.syncid), Some(7));
        assert_eq!(r.notes.iter().map(|n| n.line).collect::<Vec<_>>(), [60], "{:?}", r.notes);
        // Exported again, the same checks come out.
        let out = lvs_cf(t, Target::default()).unwrap();
        assert!(out.contains("     expect = \"HTTP/1\\\\.[01] 200\"\n"), "{out}");
        assert!(out.contains("     send_program = \"/usr/local/bin/check_https %h %p\"\n"), "{out}");
    }

    #[test]
    fn what_piranhas_parser_refuses_is_an_error_at_its_line_and_column() {
        let g = "primary = 10.0.0.1\n";
        let cases = [
            ("primary 10.0.0.1\n", "lvs.cf:1:9: expected `=` after primary"),
            ("primary = 10.0.0.1 10.0.0.2\n", "lvs.cf:1:20: one value too many for primary"),
            ("primary = lb1.example\n", "lvs.cf:1:11: \"lb1.example\" is not an IPv4 address"),
            ("primray = 10.0.0.1\n", "lvs.cf:1:1: \"primray\" is not a keyword of lvs.cf's global settings"),
            ("service = fos\n", "lvs.cf:1:11: service = fos"),
            ("keepalive = two\n", "lvs.cf:1:13: \"two\" is not an integer"),
            ("virtual v {\n address = 192.0.2.1\n}\n", "lvs.cf:2:10: address takes two values"),
            ("virtual v {\n timeout = 0\n}\n", "lvs.cf:2:12: timeout 0: nanny divides reentry by it"),
            ("virtual v {\n scheduler = sed\n}\n", "lvs.cf:2:14: \"sed\": lvs.cf's scheduler is one of"),
            ("virtual v {\n send = \"GET /\n}\n", "lvs.cf:2:9: no closing \""),
            (
                "virtual v {\n server a {\n  weigth = 1\n }\n}\n",
                "lvs.cf:3:3: \"weigth\" is not a keyword of a server block",
            ),
            ("virtual v\n", "lvs.cf:1:1: expected `virtual NAME {` on one line"),
            ("backup_active = 2\n", "lvs.cf:1:17: \"2\": backup_active takes 0 or 1"),
        ];
        for (text, want) in cases {
            let shifted = err(&format!("{g}{text}"));
            // Every case starts after the primary line: its line numbers are one more.
            let want = shift(want);
            assert!(shifted.starts_with(&want), "{text:?}: {shifted}\nwanted {want}");
        }
        assert_eq!(
            err("service = lvs\n"),
            "lvs.cf:0:0: no `primary = ADDRESS`: lvs.cf names the primary LVS router"
        );
        let two = [src("a/lvs.cf", g), src("b/lvs.cf", g)];
        assert!(
            import_any(&two, None).unwrap_err().to_string().starts_with("b/lvs.cf:0:0: one lvs.cf at a time")
        );
        let e =
            err("primary = 10.0.0.1\nbackup = 10.0.0.2\nbackup_active = 1\nkeepalive = 5\ndeadtime = 5\n");
        assert!(e.starts_with("lvs.cf:5:1: deadtime 5 is not longer than keepalive 5"), "{e}");
    }

    /// `lvs.cf:L:C: m` with L one more.
    fn shift(want: &str) -> String {
        let rest = want.strip_prefix("lvs.cf:").unwrap();
        let (line, tail) = rest.split_once(':').unwrap();
        format!("lvs.cf:{}:{tail}", line.parse::<usize>().unwrap() + 1)
    }

    #[test]
    fn nanny_escapes_are_undone_and_redone() {
        assert_eq!(unescape(r#"a\r\nb\\c\td\'e\"f\x"#), "a\r\nb\\c\td'e\"f\\x");
        let s = "GET / HTTP/1.0\r\n\r\n\tx\\y";
        assert_eq!(unescape(&crate::export::lvs_cf::escape(s)), s);
    }
}
