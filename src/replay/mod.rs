//! `lvsim ipvs replay`: ipvsadm-save lines plus connection events, replayed against the
//! IPVS model (or, with `--kernel`, against the running kernel's IPVS) to show which real
//! server each new connection gets.
//!
//! The file format is documented in `docs/replay.md`. One parser serves both back ends,
//! so the model and the kernel see exactly the same commands, clients and source ports.

#[cfg(target_os = "linux")]
pub mod kernel;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use lvs_ipvs::Sysctl;
use lvs_ipvs::ipvsadm::{self, Command, ListOptions, Word};
use lvs_sched::{Duration, Protocol};

/// First source port handed out when a `connect` line names none (Linux's default
/// ephemeral range starts here).
pub const FIRST_AUTO_PORT: u16 = 32768;

/// Most connections one `connect ... x N` line may open.
pub const MAX_REPEAT: u32 = 100_000;

/// A replay file, parsed.
#[derive(Clone, Debug)]
pub struct Script {
    /// Events in file order.
    pub lines: Vec<Line>,
}

/// One event and where it came from.
#[derive(Clone, Debug)]
pub struct Line {
    /// 1-based line number.
    pub lineno: usize,
    /// The event.
    pub event: Event,
}

/// Where a new connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Transport protocol of the packets.
    pub protocol: Protocol,
    /// Destination address and port of the packets (the VIP:port).
    pub addr: SocketAddr,
    /// Firewall mark the packets carry (`connect -f MARK -t ADDR:PORT`).
    pub fwmark: Option<u32>,
}

/// A replay event.
#[derive(Clone, Debug)]
pub enum Event {
    /// An ipvsadm command; `args` are its words, for the kernel back end.
    Ipvsadm {
        /// The parsed command.
        command: Command,
        /// The words as written (without a leading `ipvsadm`).
        args: Vec<String>,
    },
    /// New connections, numbered `first..first + clients.len()`.
    Connect {
        /// Where they go.
        target: Target,
        /// Client address and source port of each.
        clients: Vec<SocketAddr>,
        /// Number of the first.
        first: u32,
    },
    /// Connections finish gracefully (FIN): active to inactive, then expire.
    Close(Vec<u32>),
    /// Connections are reset (RST): inactive, expire after the CLOSE timeout.
    Reset(Vec<u32>),
    /// Virtual time passes.
    Advance(Duration),
    /// Print the table as `ipvsadm -L -n [OPTIONS]` does (`list --stats`, `list -c`, ...).
    List(ListOptions),
    /// Lone TCP SYNs that are never answered (a SYN flood's spoofed sources), numbered
    /// like connections; they cannot be closed, reset or sent on.
    Syn {
        /// Where they go (always TCP).
        target: Target,
        /// Source address and port of each.
        clients: Vec<SocketAddr>,
        /// Number of the first.
        first: u32,
    },
    /// A data segment from the client on each open connection (`send N...`): it reaches
    /// a real server, is reset, or is lost.
    Send(Vec<u32>),
    /// `sysctl NAME VALUE` sets `net.ipv4.vs.NAME`; `sysctl NAME` prints its value.
    Sysctl {
        /// Which sysctl.
        name: Sysctl,
        /// The value to write; `None` prints the current one.
        value: Option<i64>,
    },
}

/// What became of a `send`'s data segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A real server got it (and answered): the connection lives on there.
    Reached(SocketAddr),
    /// The client got a reset (from the director's own stack, or from a real server
    /// that has no such connection): the connection is broken.
    Reset,
    /// Nothing came back (dropped by the director).
    Lost,
}

/// A syntax or consistency error, naming the line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

struct Parser {
    next_conn: u32,
    /// Source ports used so far, per client address.
    used_ports: BTreeMap<IpAddr, BTreeSet<u16>>,
    next_port: BTreeMap<IpAddr, u16>,
    /// Protocol of each connection opened so far.
    protocols: Vec<Protocol>,
    /// Numbers given to lone SYNs (`syn`), which are not connections.
    syns: BTreeSet<u32>,
    /// Client addresses of `connect` lines and of `syn` lines: a `syn` source must be
    /// an address no `connect` uses (the kernel back end must not answer its SYN-ACKs).
    connect_addrs: BTreeSet<IpAddr>,
    syn_addrs: BTreeSet<IpAddr>,
}

/// Parse a replay file.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut p = Parser {
        next_conn: 1,
        used_ports: BTreeMap::new(),
        next_port: BTreeMap::new(),
        protocols: Vec::new(),
        syns: BTreeSet::new(),
        connect_addrs: BTreeSet::new(),
        syn_addrs: BTreeSet::new(),
    };
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let ws = ipvsadm::words(raw);
        if ws.is_empty() {
            continue;
        }
        let at =
            |offset: usize, message: String| ParseError { line: lineno, column: col(raw, offset), message };
        let event = p.event(&ws).map_err(|e| at(e.offset, e.message))?;
        lines.push(Line { lineno, event });
    }
    Ok(Script { lines })
}

fn col(line: &str, offset: usize) -> usize {
    line[..offset.min(line.len())].chars().count() + 1
}

fn perr<T>(offset: usize, message: impl Into<String>) -> Result<T, ipvsadm::ParseError> {
    Err(ipvsadm::ParseError { offset, message: message.into() })
}

impl Parser {
    fn event(&mut self, ws: &[Word<'_>]) -> Result<Event, ipvsadm::ParseError> {
        let (off, first) = ws[0];
        match first {
            "close" | "reset" | "send" => {
                let ns = self.conn_numbers(ws)?;
                Ok(match first {
                    "close" => Event::Close(ns),
                    "reset" => Event::Reset(ns),
                    _ => Event::Send(ns),
                })
            }
            "connect" | "syn" => self.connect(ws),
            "sysctl" => sysctl(ws),
            "advance" => match ws {
                [_, (o, d)] => Ok(Event::Advance(parse_duration(*o, d)?)),
                _ => perr(off, "expected `advance DURATION`, e.g. `advance 120s`"),
            },
            "list" => Ok(Event::List(ListOptions::parse(&ws[1..])?)),
            "ipvsadm" => self.ipvsadm(&ws[1..]),
            w if w.starts_with('-') => self.ipvsadm(ws),
            w => perr(
                off,
                format!(
                    "unknown event {w:?} (expected an ipvsadm line, connect, syn, close, reset, send, \
                     advance, list or sysctl)"
                ),
            ),
        }
    }

    /// The connection numbers of `close`/`reset`/`send N [N...]`.
    fn conn_numbers(&self, ws: &[Word<'_>]) -> Result<Vec<u32>, ipvsadm::ParseError> {
        let (off, first) = ws[0];
        if ws.len() < 2 {
            return perr(off + first.len(), format!("{first} needs one or more connection numbers"));
        }
        let mut ns = Vec::new();
        for &(o, w) in &ws[1..] {
            let n: u32 =
                w.parse().or_else(|_| perr(o, format!("expected a connection number, found {w:?}")))?;
            if n == 0 || n >= self.next_conn {
                return perr(
                    o,
                    format!("no connection {n} yet (connections so far: 1..{})", self.next_conn - 1),
                );
            }
            if self.syns.contains(&n) {
                return perr(o, format!("{n} is a lone SYN (`syn`), not a connection"));
            }
            if self.protocols[n as usize - 1] == Protocol::Udp {
                let what = if first == "send" { "sent on" } else { "closed" };
                return perr(
                    o,
                    format!("connection {n} is UDP: it cannot be {what}, it expires (use advance)"),
                );
            }
            ns.push(n);
        }
        Ok(ns)
    }

    fn ipvsadm(&mut self, ws: &[Word<'_>]) -> Result<Event, ipvsadm::ParseError> {
        let command = ipvsadm::parse(ws)?;
        Ok(Event::Ipvsadm { command, args: ws.iter().map(|(_, w)| (*w).to_owned()).collect() })
    }

    /// `connect [-f MARK] (-t|-u) ADDR:PORT from CLIENT[:PORT] [x N]`, or
    /// `syn -t ADDR:PORT from CLIENT[:PORT] [x N]`.
    fn connect(&mut self, ws: &[Word<'_>]) -> Result<Event, ipvsadm::ParseError> {
        let syn = ws[0].1 == "syn";
        let usage = if syn {
            "expected `syn -t VIP:PORT from CLIENT[:PORT] [x N]`"
        } else {
            "expected `connect [-f MARK] -t|-u VIP:PORT from CLIENT[:PORT] [x N]`"
        };
        let mut i = 1;
        let mut fwmark = None;
        if let Some(&(o, "-f")) = ws.get(i).filter(|_| !syn) {
            let &(mo, m) = ws.get(i + 1).ok_or(ipvsadm::ParseError { offset: o, message: usage.into() })?;
            fwmark = Some(m.parse().ok().filter(|&m: &u32| m > 0).ok_or(ipvsadm::ParseError {
                offset: mo,
                message: format!("invalid fwmark {m:?} (expected an integer > 0)"),
            })?);
            i += 2;
        }
        let (protocol, addr) = match (ws.get(i), ws.get(i + 1)) {
            (Some(&(_, f @ ("-t" | "-u"))), Some(&(ao, a))) if !syn || f == "-t" => {
                let (ip, port) = ipvsadm::parse_addr_port(ao, a)?;
                let port = port.ok_or(ipvsadm::ParseError {
                    offset: ao,
                    message: format!("expected VIP:PORT, found {a:?}"),
                })?;
                (if f == "-t" { Protocol::Tcp } else { Protocol::Udp }, SocketAddr::new(ip, port))
            }
            (Some(&(o, _)), _) => return perr(o, usage),
            (None, _) => return perr(ws[0].0, usage),
        };
        i += 2;
        let (co, client) = match (ws.get(i), ws.get(i + 1)) {
            (Some(&(_, "from")), Some(&(co, c))) => (co, ipvsadm::parse_addr_port(co, c)?),
            (Some(&(o, _)), _) => return perr(o, usage),
            (None, _) => return perr(ws[i - 1].0, format!("{usage}: missing `from CLIENT`")),
        };
        i += 2;
        let count = match ws.get(i..) {
            Some([]) | None => 1,
            Some([(_, "x"), (no, n)]) => {
                n.parse().ok().filter(|&n: &u32| (1..=MAX_REPEAT).contains(&n)).ok_or(
                    ipvsadm::ParseError {
                        offset: *no,
                        message: format!("expected a count 1..={MAX_REPEAT}, found {n:?}"),
                    },
                )?
            }
            Some([(o, _), ..]) => return perr(*o, format!("{usage}: unexpected words")),
        };
        let (caddr, cport) = client;
        let (mine, theirs) = if syn {
            (&mut self.syn_addrs, &self.connect_addrs)
        } else {
            (&mut self.connect_addrs, &self.syn_addrs)
        };
        if theirs.contains(&caddr) {
            return perr(
                co,
                format!(
                    "{caddr} is used by both connect and syn lines: give lone SYNs addresses of their own"
                ),
            );
        }
        mine.insert(caddr);
        if cport.is_some_and(|p| u32::from(p) + count - 1 > u32::from(u16::MAX)) {
            return perr(co, format!("{count} ports from {} run past 65535", cport.unwrap_or(0)));
        }
        let mut clients = Vec::with_capacity(count as usize);
        for k in 0..count {
            let port = match cport {
                // `from CLIENT:PORT x N`: ports PORT, PORT+1, ... (the same flows again).
                Some(p) => p + k as u16,
                None => self.auto_port(co, caddr)?,
            };
            self.used_ports.entry(caddr).or_default().insert(port);
            clients.push(SocketAddr::new(caddr, port));
        }
        let first = self.next_conn;
        self.next_conn += count;
        self.protocols.extend(std::iter::repeat_n(protocol, count as usize));
        let target = Target { protocol, addr, fwmark };
        if syn {
            self.syns.extend(first..first + count);
            return Ok(Event::Syn { target, clients, first });
        }
        Ok(Event::Connect { target, clients, first })
    }

    /// The next source port of `addr` not used yet in the file.
    fn auto_port(&mut self, off: usize, addr: IpAddr) -> Result<u16, ipvsadm::ParseError> {
        let next = self.next_port.entry(addr).or_insert(FIRST_AUTO_PORT);
        let used = self.used_ports.entry(addr).or_default();
        while used.contains(next) {
            *next = next.checked_add(1).ok_or(ipvsadm::ParseError {
                offset: off,
                message: format!("client {addr} has no free source port left"),
            })?;
        }
        let p = *next;
        *next = next.wrapping_add(1).max(1);
        Ok(p)
    }
}

/// `sysctl NAME [VALUE]`; NAME may be written `net.ipv4.vs.NAME`.
fn sysctl(ws: &[Word<'_>]) -> Result<Event, ipvsadm::ParseError> {
    let usage = "expected `sysctl NAME [VALUE]`, e.g. `sysctl sloppy_tcp 1` or `sysctl drop_entry`";
    let (no, n) = match ws.get(1) {
        Some(&w) => w,
        None => return perr(ws[0].0, usage),
    };
    let Some(name) = Sysctl::from_name(n) else {
        let names: Vec<&str> = Sysctl::ALL.iter().map(|s| s.name()).collect();
        return perr(no, format!("unknown sysctl {n:?} (expected one of {})", names.join(", ")));
    };
    let value = match ws.get(2..) {
        Some([]) | None => None,
        Some([(vo, v)]) => {
            let range = name.range();
            let x = v.parse::<i64>().ok().filter(|x| range.contains(x)).ok_or(ipvsadm::ParseError {
                offset: *vo,
                message: format!("{name} takes an integer {}..={}, found {v:?}", range.start(), range.end()),
            })?;
            Some(x)
        }
        Some([_, (o, _), ..]) => return perr(*o, format!("{usage}: unexpected words")),
    };
    Ok(Event::Sysctl { name, value })
}

/// `120s`, `500ms`, `2m`, `1h`, `250us`; a bare number is seconds.
pub fn parse_duration(off: usize, s: &str) -> Result<Duration, ipvsadm::ParseError> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .or_else(|_| perr(off, format!("expected a duration such as 120s or 500ms, found {s:?}")))?;
    let ns_per = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "ns" => 1,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return perr(
                off,
                format!("unknown duration unit {unit:?} in {s:?} (expected ns, us, ms, s, m or h)"),
            );
        }
    };
    n.checked_mul(ns_per)
        .map(Duration)
        .ok_or(ipvsadm::ParseError { offset: off, message: format!("duration {s:?} too long") })
}

/// What a back end reports for one new connection.
pub type Choice = Option<SocketAddr>;

/// Where a replay runs: the model or a kernel.
pub trait Backend {
    /// Run an ipvsadm command.
    fn ipvsadm(&mut self, command: &Command, args: &[String]) -> anyhow::Result<()>;
    /// Open connection number `n` from `client` to `target`; the real server chosen.
    fn connect(&mut self, n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice>;
    /// Finish connection `n`, gracefully or with a reset.
    fn close(&mut self, n: u32, reset: bool) -> anyhow::Result<()>;
    /// Let time pass.
    fn advance(&mut self, d: Duration) -> anyhow::Result<()>;
    /// The `ipvsadm -L -n` listing with these options.
    fn list(&mut self, opts: &ListOptions) -> anyhow::Result<String>;
    /// A lone SYN from `client` (number `n`) that nobody answers; the real server its
    /// entry points to, if one was made.
    fn syn(&mut self, n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice>;
    /// A data segment from the client of open connection `n`.
    fn send(&mut self, n: u32) -> anyhow::Result<Sent>;
    /// Set `net.ipv4.vs.NAME` (with `Some`), then read it back.
    fn sysctl(&mut self, name: Sysctl, value: Option<i64>) -> anyhow::Result<i64>;
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `#N CLIENT -> DEST` lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Replay `script` on `backend`, printing to `out`. An error names the line it came from.
pub fn run(
    script: &Script,
    backend: &mut dyn Backend,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for line in &script.lines {
        let ctx = || format!("line {}", line.lineno);
        match &line.event {
            Event::Ipvsadm { command, args } => backend.ipvsadm(command, args).with_context(ctx)?,
            Event::Connect { target, clients, first } | Event::Syn { target, clients, first } => {
                let syn = matches!(line.event, Event::Syn { .. });
                for (k, &client) in clients.iter().enumerate() {
                    let n = first + k as u32;
                    let choice = if syn {
                        backend.syn(n, target, client).with_context(ctx)?
                    } else {
                        backend.connect(n, target, client).with_context(ctx)?
                    };
                    print_choice(out, format, line.lineno, n, target, client, choice)?;
                }
            }
            Event::Send(ns) => {
                for &n in ns {
                    let sent = backend.send(n).with_context(ctx)?;
                    print_sent(out, format, line.lineno, n, sent)?;
                }
            }
            Event::Sysctl { name, value } => {
                let now = backend.sysctl(*name, *value).with_context(ctx)?;
                if value.is_none() {
                    match format {
                        Format::Text => writeln!(out, "net.ipv4.vs.{} = {now}", name.name())?,
                        Format::Json => writeln!(
                            out,
                            "{}",
                            serde_json::json!({ "line": line.lineno, "sysctl": name.name(), "value": now })
                        )?,
                    }
                }
            }
            Event::Close(ns) | Event::Reset(ns) => {
                let reset = matches!(line.event, Event::Reset(_));
                for &n in ns {
                    backend.close(n, reset).with_context(ctx)?;
                }
            }
            Event::Advance(d) => backend.advance(*d).with_context(ctx)?,
            Event::List(opts) => {
                let text = backend.list(opts).with_context(ctx)?;
                match format {
                    Format::Text => out.write_all(text.as_bytes())?,
                    Format::Json => {
                        writeln!(out, "{}", serde_json::json!({ "line": line.lineno, "list": text }))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn print_sent(
    out: &mut dyn std::io::Write,
    format: Format,
    lineno: usize,
    n: u32,
    sent: Sent,
) -> std::io::Result<()> {
    let what = match sent {
        Sent::Reached(d) => d.to_string(),
        Sent::Reset => "reset".to_owned(),
        Sent::Lost => "lost".to_owned(),
    };
    match format {
        Format::Text => writeln!(out, "#{n} send -> {what}"),
        Format::Json => {
            writeln!(out, "{}", serde_json::json!({ "conn": n, "line": lineno, "send": what }))
        }
    }
}

fn print_choice(
    out: &mut dyn std::io::Write,
    format: Format,
    lineno: usize,
    n: u32,
    target: &Target,
    client: SocketAddr,
    choice: Choice,
) -> std::io::Result<()> {
    let proto = match target.protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    };
    match format {
        Format::Text => match choice {
            Some(d) => writeln!(out, "#{n} {client} {proto} {} -> {d}", target.addr),
            None => writeln!(out, "#{n} {client} {proto} {} -> none", target.addr),
        },
        Format::Json => {
            let v = serde_json::json!({
                "conn": n,
                "line": lineno,
                "client": client.to_string(),
                "protocol": proto,
                "service": target.addr.to_string(),
                "fwmark": target.fwmark,
                "dest": choice.map(|d| d.to_string()),
            });
            writeln!(out, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s = parse(
            "-A -t 10.0.0.1:80 -s wrr\n\
             -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 4\n\
             connect -t 10.0.0.1:80 from 192.168.0.7:40001   # one new connection\n\
             connect -t 10.0.0.1:80 from 192.168.0.7 x 10    # ten, source ports chosen\n\
             close 3\n\
             advance 120s\n",
        )
        .unwrap();
        assert_eq!(s.lines.len(), 6);
        let Event::Connect { clients, first, .. } = &s.lines[3].event else { panic!() };
        assert_eq!(*first, 2);
        assert_eq!(clients.len(), 10);
        assert_eq!(clients[0].port(), FIRST_AUTO_PORT);
        let Event::Advance(d) = s.lines[5].event else { panic!() };
        assert_eq!(d, Duration::from_secs(120));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("-A -t 10.0.0.1:80\nconnect -t 10.0.0.1:80 form 1.2.3.4\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 24));
        let e = parse("close 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.contains("no connection 1"), "{e}");
        let e = parse("\n\n  advance 3 parsecs\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3));
        let e = parse("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 34));
    }

    #[test]
    fn parses_syn_send_and_sysctl_lines() {
        let s = parse(
            "connect -t 10.0.0.1:80 from 10.31.0.1:40000 x 3\n\
             syn -t 10.0.0.1:80 from 10.99.0.1 x 2\n\
             send 1 3\n\
             sysctl net.ipv4.vs.drop_entry 1\n\
             sysctl amemthresh -1\n\
             sysctl secure_tcp\n",
        )
        .unwrap();
        let Event::Connect { clients, .. } = &s.lines[0].event else { panic!() };
        let ports: Vec<_> = clients.iter().map(|c| c.port()).collect();
        assert_eq!(ports, [40000, 40001, 40002], "PORT x N: consecutive ports");
        let Event::Syn { first, clients, target } = &s.lines[1].event else { panic!() };
        assert_eq!((*first, clients.len(), target.protocol), (4, 2, Protocol::Tcp));
        assert!(matches!(&s.lines[2].event, Event::Send(ns) if ns == &[1, 3]));
        assert!(matches!(s.lines[3].event, Event::Sysctl { name: Sysctl::DropEntry, value: Some(1) }));
        assert!(matches!(s.lines[4].event, Event::Sysctl { name: Sysctl::Amemthresh, value: Some(-1) }));
        assert!(matches!(s.lines[5].event, Event::Sysctl { name: Sysctl::SecureTcp, value: None }));
    }

    #[test]
    fn refuses_what_the_kernel_or_the_back_ends_cannot_do() {
        let err = |text: &str| parse(text).unwrap_err();
        let e = err("sysctl drop_entry 4\n");
        assert_eq!((e.line, e.column), (1, 19));
        assert!(e.message.contains("0..=3"), "{e}");
        let e = err("sysctl sloppy_tcp 2\n");
        assert!(e.message.contains("0..=1"), "{e}");
        let e = err("\nsysctl ip_forward 1\n");
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.message.contains("unknown sysctl"), "{e}");
        let e = err("sysctl amemthresh 99999999999\n");
        assert!(e.message.contains("amemthresh takes an integer"), "{e}");
        let e = err("syn -t 1.1.1.1:80 from 2.2.2.2\nsend 1\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("lone SYN"), "{e}");
        let e = err("syn -u 1.1.1.1:80 from 2.2.2.2\n");
        assert_eq!((e.line, e.column), (1, 5));
        let e = err("connect -t 1.1.1.1:80 from 2.2.2.2\nsyn -t 1.1.1.1:80 from 2.2.2.2:9\n");
        assert_eq!((e.line, e.column), (2, 24));
        assert!(e.message.contains("both connect and syn"), "{e}");
        let e = err("connect -u 1.1.1.1:53 from 2.2.2.2\nsend 1\n");
        assert!(e.message.contains("UDP: it cannot be sent on"), "{e}");
        let e = err("connect -t 1.1.1.1:80 from 2.2.2.2:65535 x 2\n");
        assert!(e.message.contains("run past 65535"), "{e}");
    }

    #[test]
    fn auto_ports_skip_ports_already_used() {
        let s = parse("connect -t 1.1.1.1:80 from 2.2.2.2:32769\nconnect -t 1.1.1.1:80 from 2.2.2.2 x 3\n")
            .unwrap();
        let Event::Connect { clients, .. } = &s.lines[1].event else { panic!() };
        let ports: Vec<_> = clients.iter().map(|c| c.port()).collect();
        assert_eq!(ports, [32768, 32770, 32771]);
    }
}
