//! lvs.cf's lines, tokens and blocks as piranha 0.8.6's lvsconfig.c reads them
//! (`tokenizeString()`, `getNextToks()`, `parseConfiguration()`, `parseVirtualServer()`,
//! `parseActualServer()`), into [`Global`] and [`Virtual`] blocks with lvsconfig.c's
//! defaults; errors at line and column, notes for what is read but not mapped.

use std::net::Ipv4Addr;

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind};

use crate::export::lvs_cf::SCHEDULERS;
use crate::import::{ImportError, Note};

/// One token: its text (quotes removed) and its 1-based column.
#[derive(Clone, Debug)]
pub(super) struct Tok {
    pub(super) text: String,
    pub(super) col: usize,
}

/// The tokens of a statement line.
#[derive(Clone, Debug)]
pub(super) struct Line {
    pub(super) no: usize,
    pub(super) toks: Vec<Tok>,
}

/// Lines with a statement, as lvsconfig.c's `getNextToks()` splits them (a `\r` ends a
/// line too).
pub(super) fn tokenize(path: &str, text: &str) -> Result<Vec<Line>, ImportError> {
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
pub(super) fn word(chars: &[(usize, char)], k: usize) -> Result<(String, usize), String> {
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
pub(super) fn director_names(text: &str) -> (String, String) {
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
pub(super) fn unescape(s: &str) -> String {
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
pub(super) struct Global {
    pub(super) primary: Option<Ipv4Addr>,
    pub(super) backup: Option<(Ipv4Addr, usize)>,
    pub(super) backup_active: Option<usize>,
    pub(super) heartbeat_port: u16,
    pub(super) keepalive: (u32, usize),
    pub(super) deadtime: (u32, usize),
    pub(super) network: Forwarding,
    pub(super) nat_router: Option<(Ipv4Addr, String, usize)>,
    pub(super) syncdaemon: Option<usize>,
    pub(super) syncd_iface: Option<String>,
    pub(super) syncd_id: u8,
    pub(super) timeouts: [Option<u32>; 3],
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
pub(super) struct Virtual {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) failover: bool,
    pub(super) active: bool,
    pub(super) address: Option<(Ipv4Addr, String)>,
    pub(super) vip_nmask: Option<Ipv4Addr>,
    pub(super) port: u16,
    pub(super) protocol: Protocol,
    pub(super) scheduler: SchedulerKind,
    pub(super) persistent: u32,
    pub(super) pmask: Option<Ipv4Addr>,
    pub(super) fwmark: Option<u32>,
    pub(super) timeout: u32,
    pub(super) reentry: u32,
    pub(super) quiesce: bool,
    pub(super) send: Option<String>,
    pub(super) expect: Option<String>,
    pub(super) use_regex: bool,
    pub(super) send_program: Option<String>,
    pub(super) servers: Vec<Rs>,
}

impl Virtual {
    /// lvsconfig.c `lvsInitVirtualServer()`'s defaults (inactive until `active = 1`).
    pub(super) fn new(name: &str, line: usize, failover: bool) -> Virtual {
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
pub(super) struct Rs {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) address: Option<Ipv4Addr>,
    pub(super) active: bool,
    pub(super) port: u16,
    pub(super) weight: u32,
}

pub(super) struct Parser<'a> {
    pub(super) path: &'a str,
    pub(super) notes: Vec<Note>,
    pub(super) g: Global,
    pub(super) virtuals: Vec<Virtual>,
}

/// Keywords piranha reads that the topology has no room for, and why.
pub(super) const IGNORED_GLOBAL: [(&str, &str); 11] = [
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

    pub(super) fn parse(&mut self, lines: &[Line]) -> Result<(), ImportError> {
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
