//! The ipvsadm rule grammar: one parser ([`parse`]) and one emitter (`Display for
//! Command`) for the lines `ipvsadm -R` (`ipvsadm-restore`) reads and `ipvsadm -S -n`
//! writes, and the argument list of one `ipvsadm` run ([`Command::args`]).
//!
//! The emitter writes what ipvsadm 1.31 writes with `-S -n` on a 6.1 kernel, option for
//! option: `-A SERVICE -s SCHED [-p SECS [-M MASK]] [--pe NAME] [-o] [-b FLAGS]` and
//! `-a SERVICE -r ADDR:PORT -g|-i|-m -w W [--tun-type T [--tun-port P] [--tun-*csum]]`.
//! Defaults are left out as ipvsadm leaves them out: `-M` only for a persistent service
//! whose mask is not /32 (/128), `--tun-port` only for gue, the checksum option only for
//! gue and gre. So `emit(parse(x)) == x` for every line `ipvsadm -S -n` prints. Two
//! options ipvsadm never saves are still emitted when set, for the scripts and argument
//! lists built from a [`Command`]: `-x`/`-y` (thresholds), after `-w`.
//!
//! The parser accepts what ipvsadm 1.31 accepts in a rules file, short and long forms
//! (`--add-service`, `--tcp-service`, ...), `--opt=value` and `-w3`, and refuses what it
//! refuses, with ipvsadm's reason: a one-packet TCP service, `sh-port` for a non-sh
//! scheduler, `-6` before `-f`, tunnel options that contradict each other or the forwarding
//! method, an IPv6 `-M` that is not a prefix length 1..128. Two deliberate differences:
//! an IPv4 `-M` must be dotted (ipvsadm's `inet_aton` reads `-M 24` as 0.0.0.24, which
//! `-S` prints dotted anyway), and `#` starts a comment (ipvsadm-restore drops `#` lines).
//!
//! Like ipvsadm, `-E` and `-e` set every field: an option left out takes its default, not
//! the old value (checked against the kernel: `-E -t VIP:80 -p 100` on an rr service makes
//! it wlc).
//!
//! One more deliberate difference: ipvsadm `-S` leaves `flag-3` out of an sh or mh
//! service's list (those schedulers name only their two flags), writing `-b ` with an empty
//! list when it is the only one, which ipvsadm cannot read back. The emitter writes
//! `flag-3` (`-s sh -b sh-port,flag-3`), which ipvsadm accepts; no line `-S` writes
//! parses to such a service, so the round trip of `-S` lines is not affected.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::{DestConfig, Duration, Forwarding, SchedFlag, SchedulerKind, SvcFlags, Tunnel, TunnelType};

use crate::{PersistenceEngine, Protocol, ServiceConfig, ServiceKey};

/// ipvsadm's default persistence timeout (`IPVS_SVC_PERSISTENT_TIMEOUT`, 6 min).
pub const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);

/// The longest persistence timeout ipvsadm accepts (31 days) \[s\].
pub const MAX_PERSISTENCE_SECS: u64 = 31 * 86400;

/// One ipvsadm command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceKey, ServiceConfig),
    /// `-E`: every field, as `-A` (options left out take their defaults).
    EditService(ServiceKey, ServiceConfig),
    /// `-D`.
    DelService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest(ServiceKey, DestConfig),
    /// `-e`: every field, as `-a`.
    EditDest(ServiceKey, DestConfig),
    /// `-d`.
    DelDest(ServiceKey, IpAddr, u16),
    /// `--set tcp tcpfin udp` \[s\]; 0 leaves a value unchanged.
    SetTimeouts(u32, u32, u32),
    /// `-Z [SERVICE]`: zero the counters of one service or of all.
    Zero(Option<ServiceKey>),
}

/// A parse error: the byte offset of the offending word in the line, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the line.
    pub offset: usize,
    /// What was expected or wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A word of a line and its byte offset.
pub type Word<'a> = (usize, &'a str);

/// Split a line into words with their offsets (whitespace-separated, `#` starts a
/// comment).
pub fn words(line: &str) -> Vec<Word<'_>> {
    let line = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

/// Parse one line of a rules file (`ipvsadm -S` output, or a shell line starting with
/// `ipvsadm`): `None` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<Command>, ParseError> {
    let ws = words(line);
    let ws = match ws.first() {
        Some((_, "ipvsadm")) => &ws[1..],
        _ => &ws[..],
    };
    if ws.is_empty() {
        return Ok(None);
    }
    parse(ws).map(Some)
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { offset, message: message.into() })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    AddSvc,
    EditSvc,
    DelSvc,
    Clear,
    AddDest,
    EditDest,
    DelDest,
    Set,
    Zero,
}

impl Cmd {
    fn from_option(w: &str) -> Option<Cmd> {
        Some(match w {
            "-A" | "--add-service" => Cmd::AddSvc,
            "-E" | "--edit-service" => Cmd::EditSvc,
            "-D" | "--delete-service" => Cmd::DelSvc,
            "-C" | "--clear" => Cmd::Clear,
            "-a" | "--add-server" => Cmd::AddDest,
            "-e" | "--edit-server" => Cmd::EditDest,
            "-d" | "--delete-server" => Cmd::DelDest,
            "--set" => Cmd::Set,
            "-Z" | "--zero" => Cmd::Zero,
            _ => return None,
        })
    }
}

/// Short options that take a value, which may be attached (`-w3`).
const SHORT_WITH_VALUE: [&str; 11] = ["-t", "-u", "-f", "-s", "-b", "-p", "-M", "-r", "-w", "-x", "-y"];

/// The words of a command line, with `--opt=value` and `-w3` split.
struct Cursor<'w, 'a> {
    ws: &'w [Word<'a>],
    i: usize,
    /// A value attached to the option just returned, not consumed yet.
    inline: Option<Word<'a>>,
    /// Offset just past the last word (where a missing value is reported).
    end: usize,
}

impl<'a> Cursor<'_, 'a> {
    /// The next option word (with an attached value split off into `inline`).
    fn next_option(&mut self) -> Result<Option<Word<'a>>, ParseError> {
        self.no_value()?;
        let Some(&(off, w)) = self.ws.get(self.i) else { return Ok(None) };
        self.i += 1;
        if w.starts_with("--") {
            if let Some((name, value)) = w.split_once('=') {
                self.inline = Some((off + name.len() + 1, value));
                return Ok(Some((off, name)));
            }
        } else if let Some(short) = w.get(..2).filter(|s| w.len() > 2 && SHORT_WITH_VALUE.contains(s)) {
            self.inline = Some((off + 2, &w[2..]));
            return Ok(Some((off, short)));
        }
        Ok(Some((off, w)))
    }

    /// Refuse a value attached to an option that takes none (`--ops=1`).
    fn no_value(&mut self) -> Result<(), ParseError> {
        match self.inline.take() {
            Some((o, v)) => err(o, format!("unexpected value {v:?}: this option takes none")),
            None => Ok(()),
        }
    }

    /// The value of option `opt`: attached, or the next word.
    fn value(&mut self, opt: &str, what: &str) -> Result<Word<'a>, ParseError> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        let a = self
            .ws
            .get(self.i)
            .copied()
            .ok_or(ParseError { offset: self.end, message: format!("{opt} needs {what}") })?;
        self.i += 1;
        Ok(a)
    }

    /// An optional value: attached, or the next word if it is all digits (`-p [timeout]`).
    fn optional_number(&mut self) -> Option<Word<'a>> {
        if let Some(v) = self.inline.take() {
            return Some(v);
        }
        let &(o, w) = self.ws.get(self.i)?;
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.i += 1;
        Some((o, w))
    }
}

/// The options of one line, as given.
#[derive(Default)]
struct Opts<'a> {
    cmd: Option<(usize, Cmd)>,
    service: Option<(usize, ServiceKey)>,
    /// `-s`, `-b`, `-p`, `-M`, `--pe`, `-o`: the first one seen.
    service_option: Option<Word<'a>>,
    /// `-g/-i/-m`, `-w`, `-x`, `-y`, `--tun-*`: the first one seen.
    dest_option: Option<Word<'a>>,
    scheduler: Option<SchedulerKind>,
    sched_flags: Option<Word<'a>>,
    persistence: Option<Duration>,
    netmask: Option<Word<'a>>,
    pe: Option<PersistenceEngine>,
    one_packet: Option<usize>,
    real: Option<(usize, IpAddr, Option<u16>)>,
    fwd: Option<Forwarding>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    tunnel: TunnelOpts<'a>,
    set: Option<(u32, u32, u32)>,
}

/// `--tun-type`, `--tun-port` and the checksum option, with where they were.
#[derive(Default)]
struct TunnelOpts<'a> {
    /// Offset of the first tunnel option.
    first: Option<usize>,
    kind: Option<TunnelType>,
    port: Option<Word<'a>>,
    /// The checksum option: its word and its flags value.
    csum: Option<(Word<'a>, u16)>,
}

fn set_once<T>(slot: &mut Option<T>, off: usize, name: &str, v: T) -> Result<(), ParseError> {
    if slot.is_some() {
        return err(off, format!("multiple {name} options specified"));
    }
    *slot = Some(v);
    Ok(())
}

/// Parse the words of one ipvsadm command line (without the leading `ipvsadm`).
pub fn parse(ws: &[Word<'_>]) -> Result<Command, ParseError> {
    let end = ws.last().map_or(0, |(o, w)| o + w.len());
    let mut c = Cursor { ws, i: 0, inline: None, end };
    let mut o = Opts::default();
    while let Some((off, w)) = c.next_option()? {
        if let Some(cmd) = Cmd::from_option(w) {
            set_once(&mut o.cmd, off, "command", (off, cmd))
                .or_else(|_| err(off, "multiple commands specified"))?;
            if cmd == Cmd::Set {
                o.set = Some(set_values(&mut c)?);
            }
            continue;
        }
        let handled = service_key_option(&mut o, &mut c, off, w)?
            || service_option(&mut o, &mut c, off, w)?
            || dest_option(&mut o, &mut c, off, w)?;
        if !handled {
            return err(off, format!("unknown ipvsadm option {w:?}"));
        }
    }
    c.no_value()?;
    let Some((coff, cmd)) = o.cmd else {
        return err(0, "expected an ipvsadm command (-A, -E, -D, -C, -a, -e, -d, -Z or --set)");
    };
    check_combination(cmd, &o)?;
    build(coff, cmd, &o)
}

/// `--set tcp tcpfin udp`.
fn set_values(c: &mut Cursor<'_, '_>) -> Result<(u32, u32, u32), ParseError> {
    let mut v = [0u32; 3];
    for (k, name) in ["tcp", "tcpfin", "udp"].iter().enumerate() {
        let (ao, a) =
            c.value("--set", &format!("three timeouts in seconds (tcp tcpfin udp); missing {name}"))?;
        v[k] =
            a.parse().or_else(|_| err(ao, format!("expected a {name} timeout in seconds, found {a:?}")))?;
    }
    Ok((v[0], v[1], v[2]))
}

/// `-t`, `-u`, `--sctp-service`, `-f`, `-6`.
fn service_key_option(
    o: &mut Opts<'_>,
    c: &mut Cursor<'_, '_>,
    off: usize,
    w: &str,
) -> Result<bool, ParseError> {
    let protocol = match w {
        "-t" | "--tcp-service" => Some(Protocol::Tcp),
        "-u" | "--udp-service" => Some(Protocol::Udp),
        "--sctp-service" => Some(Protocol::Sctp),
        _ => None,
    };
    if let Some(protocol) = protocol {
        let (ao, a) = c.value(w, "a service address VIP:port")?;
        let (addr, port) = parse_addr_port(ao, a)?;
        let port =
            port.ok_or(ParseError { offset: ao, message: format!("expected VIP:port, found {a:?}") })?;
        set_once(&mut o.service, off, "service-address", (ao, ServiceKey::Addr { protocol, addr, port }))?;
        return Ok(true);
    }
    match w {
        "-f" | "--fwmark-service" => {
            let (ao, a) = c.value(w, "a firewall mark")?;
            let m: u32 = a.parse().ok().filter(|&m| m > 0).ok_or(ParseError {
                offset: ao,
                message: format!("invalid fwmark value {a:?} (expected an integer > 0)"),
            })?;
            set_once(&mut o.service, off, "service-address", (ao, ServiceKey::fwmark(m)))?;
        }
        "-6" | "--ipv6" => {
            c.no_value()?;
            match &mut o.service {
                Some((_, ServiceKey::Fwmark { ipv6, .. })) if !*ipv6 => *ipv6 = true,
                Some((_, ServiceKey::Fwmark { .. })) => return err(off, "multiple -6 options specified"),
                _ => {
                    return err(off, "-6 used before -f (it makes a firewall-mark service IPv6: -f MARK -6)");
                }
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `-s`, `-b`, `-p`, `-M`, `--pe`, `-o`.
fn service_option<'a>(
    o: &mut Opts<'a>,
    c: &mut Cursor<'_, 'a>,
    off: usize,
    w: &'a str,
) -> Result<bool, ParseError> {
    match w {
        "-s" | "--scheduler" => {
            let (ao, a) = c.value(w, "a scheduler name")?;
            let s = a.parse().or_else(|e: lvs_sched::UnknownScheduler| err(ao, e.to_string()))?;
            set_once(&mut o.scheduler, off, "scheduler", s)?;
        }
        "-b" | "--sched-flags" => {
            let v = c.value(w, "scheduler flags")?;
            set_once(&mut o.sched_flags, off, "sched-flags", v)?;
        }
        "-p" | "--persistent" => {
            let t = match c.optional_number() {
                Some((ao, a)) => {
                    let s: u64 = a.parse().unwrap_or(u64::MAX);
                    if !(1..=MAX_PERSISTENCE_SECS).contains(&s) {
                        return err(
                            ao,
                            format!("invalid timeout value {a:?} (1 .. {MAX_PERSISTENCE_SECS} s)"),
                        );
                    }
                    Duration::from_secs(s)
                }
                None => DEFAULT_PERSISTENCE,
            };
            set_once(&mut o.persistence, off, "persistent", t)?;
        }
        "-M" | "--netmask" => {
            let v = c.value(w, "a netmask")?;
            set_once(&mut o.netmask, off, "netmask", v)?;
        }
        "--pe" => {
            let (ao, a) = c.value(w, "a persistence engine name")?;
            let pe = PersistenceEngine::from_name(a).ok_or(ParseError {
                offset: ao,
                message: format!("unknown persistence engine {a:?} (Linux has sip)"),
            })?;
            set_once(&mut o.pe, off, "pe", pe)?;
        }
        "-o" | "--ops" => {
            c.no_value()?;
            set_once(&mut o.one_packet, off, "ops", off)?;
        }
        _ => return Ok(false),
    }
    o.service_option.get_or_insert((off, w));
    Ok(true)
}

/// `-r`, `-g/-i/-m`, `-w`, `-x`, `-y`, `--tun-*`.
fn dest_option<'a>(
    o: &mut Opts<'a>,
    c: &mut Cursor<'_, 'a>,
    off: usize,
    w: &'a str,
) -> Result<bool, ParseError> {
    let fwd = match w {
        "-g" | "--gatewaying" => Some(Forwarding::DirectRouting),
        "-i" | "--ipip" => Some(Forwarding::Tunnel),
        "-m" | "--masquerading" => Some(Forwarding::Masq),
        _ => None,
    };
    if let Some(fwd) = fwd {
        c.no_value()?;
        set_once(&mut o.fwd, off, "forwarding-method", fwd)?;
        o.dest_option.get_or_insert((off, w));
        return Ok(true);
    }
    match w {
        "-r" | "--real-server" => {
            let (ao, a) = c.value(w, "a real server address[:port]")?;
            let (addr, port) = parse_addr_port(ao, a)?;
            // ipvsadm reads an IPv6 real server only as [ADDR]:PORT.
            if addr.is_ipv6() && port.is_none() {
                return err(
                    ao,
                    format!("illegal real server address {a:?} (an IPv6 one is written [ADDR]:PORT)"),
                );
            }
            set_once(&mut o.real, off, "real-server", (ao, addr, port))?;
            return Ok(true);
        }
        "-w" | "--weight" => {
            let (ao, a) = c.value(w, "a weight")?;
            let v = a.parse().ok().filter(|&v: &u32| v <= i32::MAX as u32);
            let v = v.ok_or(ParseError {
                offset: ao,
                message: format!("illegal weight {a:?} (0 .. 2147483647)"),
            })?;
            set_once(&mut o.weight, off, "weight", v)?;
        }
        "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
            let upper = w == "-x" || w == "--u-threshold";
            let (ao, a) = c.value(w, "a connection threshold")?;
            let v = a.parse().or_else(|_| err(ao, format!("illegal threshold {a:?} (0 .. 4294967295)")))?;
            let (slot, name) =
                if upper { (&mut o.u_threshold, "u-threshold") } else { (&mut o.l_threshold, "l-threshold") };
            set_once(slot, off, name, v)?;
        }
        _ => {
            if !tunnel_option(&mut o.tunnel, c, off, w)? {
                return Ok(false);
            }
        }
    }
    o.dest_option.get_or_insert((off, w));
    Ok(true)
}

/// `--tun-type`, `--tun-port`, `--tun-nocsum`, `--tun-csum`, `--tun-remcsum`.
fn tunnel_option<'a>(
    t: &mut TunnelOpts<'a>,
    c: &mut Cursor<'_, 'a>,
    off: usize,
    w: &'a str,
) -> Result<bool, ParseError> {
    match w {
        "--tun-type" => {
            let (ao, a) = c.value(w, "a tunnel type (ipip, gue or gre)")?;
            let kind = [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre]
                .into_iter()
                .find(|k| k.name() == a)
                .ok_or(ParseError {
                    offset: ao,
                    message: format!("illegal tunnel type {a:?} (ipip, gue or gre)"),
                })?;
            set_once(&mut t.kind, off, "tun-type", kind)?;
        }
        "--tun-port" => {
            let v = c.value(w, "a tunnel port")?;
            if !v.1.parse::<u16>().is_ok_and(|p| p > 0) {
                return err(v.0, format!("illegal tunnel port {:?} (1 .. 65535)", v.1));
            }
            set_once(&mut t.port, off, "tun-port", v)?;
        }
        "--tun-nocsum" | "--tun-csum" | "--tun-remcsum" => {
            c.no_value()?;
            let flags = match w {
                "--tun-csum" => Tunnel::CSUM,
                "--tun-remcsum" => Tunnel::REMCSUM,
                _ => 0,
            };
            if let Some(((_, first), _)) = t.csum {
                return err(off, format!("the option {w} conflicts with {first}"));
            }
            t.csum = Some(((off, w), flags));
        }
        _ => return Ok(false),
    }
    t.first.get_or_insert(off);
    Ok(true)
}

/// Refuse options the command does not take (ipvsadm's `commands_v_options` table).
fn check_combination(cmd: Cmd, o: &Opts<'_>) -> Result<(), ParseError> {
    let (svc_key, svc_opts, dest_opts, real) = match cmd {
        Cmd::AddSvc | Cmd::EditSvc => (true, true, false, false),
        Cmd::DelSvc | Cmd::Zero => (true, false, false, false),
        Cmd::AddDest | Cmd::EditDest => (true, false, true, true),
        Cmd::DelDest => (true, false, false, true),
        Cmd::Clear | Cmd::Set => (false, false, false, false),
    };
    let name = |c: Cmd| match c {
        Cmd::AddSvc => "-A",
        Cmd::EditSvc => "-E",
        Cmd::DelSvc => "-D",
        Cmd::Clear => "-C",
        Cmd::AddDest => "-a",
        Cmd::EditDest => "-e",
        Cmd::DelDest => "-d",
        Cmd::Set => "--set",
        Cmd::Zero => "-Z",
    };
    let bad = [
        (!svc_key).then_some(o.service.map(|(off, _)| (off, "a service"))).flatten(),
        (!svc_opts).then_some(o.service_option).flatten(),
        (!dest_opts).then_some(o.dest_option).flatten(),
        (!real).then_some(o.real.map(|(off, ..)| (off, "-r"))).flatten(),
    ];
    match bad.into_iter().flatten().min() {
        Some((off, w)) => err(off, format!("{w} is not valid with {}", name(cmd))),
        None => Ok(()),
    }
}

fn build(coff: usize, cmd: Cmd, o: &Opts<'_>) -> Result<Command, ParseError> {
    match cmd {
        Cmd::Clear => return Ok(Command::Clear),
        Cmd::Set => {
            let (a, b, c) = o.set.expect("parsed with --set");
            return Ok(Command::SetTimeouts(a, b, c));
        }
        Cmd::Zero => return Ok(Command::Zero(o.service.map(|(_, k)| k))),
        _ => {}
    }
    let (soff, key) = o.service.ok_or(ParseError {
        offset: coff,
        message: "expected a service: -t VIP:port, -u VIP:port, --sctp-service VIP:port or -f mark".into(),
    })?;
    Ok(match cmd {
        Cmd::AddSvc => Command::AddService(key, service_config(o, key, soff)?),
        Cmd::EditSvc => Command::EditService(key, service_config(o, key, soff)?),
        Cmd::DelSvc => Command::DelService(key),
        Cmd::AddDest => Command::AddDest(key, dest_config(o, key, coff)?),
        Cmd::EditDest => Command::EditDest(key, dest_config(o, key, coff)?),
        Cmd::DelDest => {
            let (_, addr, port) = real(o, coff)?;
            // No method is given with -d, so the port is not forced: as given, else the
            // service's.
            let vport = match key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            Command::DelDest(key, addr, port.unwrap_or(vport))
        }
        Cmd::Clear | Cmd::Set | Cmd::Zero => unreachable!("handled above"),
    })
}

/// The default persistence netmask: /32 for IPv4, /128 for IPv6.
pub fn default_netmask(key: &ServiceKey) -> u32 {
    if key.is_ipv6() { 128 } else { u32::MAX }
}

fn service_config(o: &Opts<'_>, key: ServiceKey, soff: usize) -> Result<ServiceConfig, ParseError> {
    let scheduler = o.scheduler.unwrap_or(SchedulerKind::Wlc);
    let mut flags = match o.sched_flags {
        Some((fo, s)) => parse_sched_flags(fo, s, scheduler)?,
        None => 0,
    };
    if let Some(oo) = o.one_packet {
        if matches!(key, ServiceKey::Addr { protocol, .. } if protocol != Protocol::Udp) {
            return err(oo, "One-Packet Scheduling is only for UDP virtual services");
        }
        flags |= SvcFlags::ONEPACKET;
    }
    // As ipvsadm's -p: IP_VS_SVC_F_PERSISTENT, with the timeout.
    if o.persistence.is_some() {
        flags |= SvcFlags::PERSISTENT;
    }
    if matches!(key, ServiceKey::Addr { port: 0, .. }) && o.persistence.is_none() {
        return err(soff, "zero port specified for non-persistent service");
    }
    let netmask = match o.netmask {
        Some((mo, m)) => parse_netmask(mo, m, key.is_ipv6())?,
        None => default_netmask(&key),
    };
    Ok(ServiceConfig { scheduler, flags: SvcFlags(flags), persistence: o.persistence, netmask, pe: o.pe })
}

/// `-M`: a dotted IPv4 mask (as a host-order `u32`), or an IPv6 prefix length 1..128.
fn parse_netmask(off: usize, s: &str, ipv6: bool) -> Result<u32, ParseError> {
    if ipv6 {
        return s.parse::<u32>().ok().filter(|p| (1..=128).contains(p)).ok_or(ParseError {
            offset: off,
            message: format!("illegal ipv6 netmask {s:?} (expected a prefix length 1 .. 128, e.g. 64)"),
        });
    }
    s.parse::<Ipv4Addr>().map(u32::from).or_else(|_| {
        err(off, format!("illegal netmask {s:?} (expected a dotted IPv4 netmask such as 255.255.255.0)"))
    })
}

/// `-r` (its family may differ from the service's: a tunnelled real server).
fn real(o: &Opts<'_>, coff: usize) -> Result<(usize, IpAddr, Option<u16>), ParseError> {
    o.real.ok_or(ParseError { offset: coff, message: "expected -r real-server-address[:port]".into() })
}

fn dest_config(o: &Opts<'_>, key: ServiceKey, coff: usize) -> Result<DestConfig, ParseError> {
    let (_, addr, port) = real(o, coff)?;
    let fwd = o.fwd.unwrap_or(Forwarding::DirectRouting);
    // ipvsadm forces the real port to the service port for DR and TUN (except for
    // firewall-mark services), and uses it when none is given.
    let port = match key {
        ServiceKey::Addr { port: vport, .. }
            if port.is_none() || matches!(fwd, Forwarding::DirectRouting | Forwarding::Tunnel) =>
        {
            vport
        }
        _ => port.unwrap_or(0),
    };
    Ok(DestConfig {
        addr,
        port,
        fwd,
        weight: o.weight.unwrap_or(1),
        u_threshold: o.u_threshold.unwrap_or(0),
        l_threshold: o.l_threshold.unwrap_or(0),
        tunnel: tunnel(&o.tunnel, fwd)?,
    })
}

/// The tunnel options, checked as ipvsadm checks them.
fn tunnel(t: &TunnelOpts<'_>, fwd: Forwarding) -> Result<Tunnel, ParseError> {
    let Some(at) = t.first else {
        return Ok(Tunnel::default());
    };
    if fwd != Forwarding::Tunnel {
        return err(at, "tunnel options conflict with the forwarding method (they need -i)");
    }
    let kind = t.kind.unwrap_or_default();
    let port = match (kind, t.port) {
        (TunnelType::Gue, Some((po, p))) => p.parse().or_else(|_| err(po, "illegal tunnel port"))?,
        (TunnelType::Gue, None) => {
            return err(at, "you need to supply the --tun-port option for the gue tunnel type");
        }
        (k, Some((po, _))) => {
            return err(po, format!("illegal --tun-port option with the {} tunnel type", k.name()));
        }
        (_, None) => 0,
    };
    let flags = match (kind, t.csum) {
        (_, None) => 0,
        (TunnelType::Ipip, Some(((co, w), _))) | (TunnelType::Gre, Some(((co, w @ "--tun-remcsum"), _))) => {
            return err(co, format!("illegal {w} option with the {} tunnel type", kind.name()));
        }
        (_, Some((_, f))) => f,
    };
    Ok(Tunnel { kind, port, flags })
}

/// `-b` flags: a comma-separated list of [`SchedFlag`] words: `flag-1`..`flag-3` (any
/// scheduler), `sh-fallback`, `sh-port` (sh only), `mh-fallback`, `mh-port` (mh only).
fn parse_sched_flags(off: usize, s: &str, scheduler: SchedulerKind) -> Result<u32, ParseError> {
    let mut f = 0;
    for part in s.split(',') {
        let flag = SchedFlag::from_name(part).ok_or(ParseError {
            offset: off,
            message: format!(
                "unknown scheduler flag {part:?} (expected sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2 or flag-3)"
            ),
        })?;
        if flag.scheduler().is_some_and(|s| s != scheduler) {
            return err(off, format!("incompatible scheduler flag {part:?} for the {scheduler} scheduler"));
        }
        f |= flag.bit();
    }
    Ok(f)
}

/// A few service names ipvsadm-save prints without `-n`.
fn port_by_name(name: &str) -> Option<u16> {
    Some(match name {
        "ftp" => 21,
        "ssh" => 22,
        "smtp" => 25,
        "domain" => 53,
        "http" | "www" => 80,
        "pop3" => 110,
        "imap" | "imap2" => 143,
        "https" => 443,
        "imaps" => 993,
        "pop3s" => 995,
        "mysql" => 3306,
        "postgresql" => 5432,
        "http-alt" => 8080,
        _ => return None,
    })
}

/// `a.b.c.d[:port]` or `[v6][:port]`.
pub fn parse_addr_port(off: usize, s: &str) -> Result<(IpAddr, Option<u16>), ParseError> {
    let bad = || ParseError { offset: off, message: format!("expected address[:port], found {s:?}") };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (s, None),
        }
    };
    let addr: IpAddr = host.parse().map_err(|_| bad())?;
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .or_else(|| port_by_name(p))
                .ok_or(ParseError { offset: off, message: format!("invalid port {p:?} in {s:?}") })?,
        ),
    };
    Ok((addr, port))
}
