//! The ipvsadm command language: parsing `ipvsadm-save`-style lines (`-A/-E/-D/-C`,
//! `-a/-e/-d`, `--set`) into [`Command`]s, applying them to an [`Ipvs`] table, and the
//! `ipvsadm -L -n` listings (plain, `--stats`, `--rate`).
//!
//! Defaults are ipvsadm 1.31's: scheduler wlc, weight 1, direct routing, persistence
//! 360 s, netmask /32. Like ipvsadm, `-e` sets every real-server field (an option left
//! out takes its default, not the old value), while `-E` changes only the options given.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::{DestConfig, Duration, Forwarding, SchedulerKind, SvcFlags};

use super::{Ipvs, IpvsError, Protocol, ServiceConfig, ServiceKey};

pub use self::list::{ListFormat, ListOptions, listing};

mod list;
pub use self::list::{list, list_rate, list_stats};

/// ipvsadm's default persistence timeout (`IPVS_SVC_PERSISTENT_TIMEOUT`, 6 min).
pub const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(360);

/// What `-E` changes: only the options present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceEdit {
    /// `-s`.
    pub scheduler: Option<SchedulerKind>,
    /// `-b` (replaces the scheduler flags).
    pub sched_flags: Option<u32>,
    /// `-p [timeout]`.
    pub persistence: Option<Duration>,
    /// `-M`.
    pub netmask: Option<u32>,
    /// `-o`.
    pub one_packet: bool,
}

/// One ipvsadm command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceKey, ServiceConfig),
    /// `-E`.
    EditService(ServiceKey, ServiceEdit),
    /// `-D`.
    DelService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest(ServiceKey, DestConfig),
    /// `-e`.
    EditDest(ServiceKey, DestConfig),
    /// `-d`.
    DelDest(ServiceKey, IpAddr, u16),
    /// `--set tcp tcpfin udp` \[s\]; 0 leaves a value unchanged.
    SetTimeouts(u32, u32, u32),
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

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { offset, message: message.into() })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmd {
    AddSvc,
    EditSvc,
    DelSvc,
    Clear,
    AddDest,
    EditDest,
    DelDest,
    Set,
}

#[derive(Default)]
struct Opts {
    service: Option<(usize, ServiceKey)>,
    scheduler: Option<SchedulerKind>,
    sched_flags: Option<u32>,
    persistence: Option<Duration>,
    netmask: Option<u32>,
    one_packet: bool,
    real: Option<(usize, IpAddr, Option<u16>)>,
    fwd: Option<Forwarding>,
    weight: Option<u32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    set: Option<(u32, u32, u32)>,
}

/// Parse the words of one ipvsadm command line (without the leading `ipvsadm`).
pub fn parse(ws: &[Word<'_>]) -> Result<Command, ParseError> {
    let mut cmd: Option<(usize, Cmd)> = None;
    let mut o = Opts::default();
    let mut i = 0;
    let end = ws.last().map_or(0, |(o, w)| o + w.len());
    while i < ws.len() {
        let (off, w) = ws[i];
        i += 1;
        let mut arg = |what: &str| -> Result<Word<'_>, ParseError> {
            let a =
                ws.get(i).copied().ok_or(ParseError { offset: end, message: format!("{w} needs {what}") })?;
            i += 1;
            Ok(a)
        };
        let new_cmd = match w {
            "-A" | "--add-service" => Some(Cmd::AddSvc),
            "-E" | "--edit-service" => Some(Cmd::EditSvc),
            "-D" | "--delete-service" => Some(Cmd::DelSvc),
            "-C" | "--clear" => Some(Cmd::Clear),
            "-a" | "--add-server" => Some(Cmd::AddDest),
            "-e" | "--edit-server" => Some(Cmd::EditDest),
            "-d" | "--delete-server" => Some(Cmd::DelDest),
            "--set" => Some(Cmd::Set),
            _ => None,
        };
        if let Some(c) = new_cmd {
            if cmd.is_some() {
                return err(off, "multiple commands specified");
            }
            cmd = Some((off, c));
            if c == Cmd::Set {
                let mut v = [0u32; 3];
                for (k, name) in ["tcp", "tcpfin", "udp"].iter().enumerate() {
                    let (ao, a) =
                        arg(&format!("three timeouts in seconds (tcp tcpfin udp); missing {name}"))?;
                    v[k] = a
                        .parse()
                        .or_else(|_| err(ao, format!("expected a {name} timeout in seconds, found {a:?}")))?;
                }
                o.set = Some((v[0], v[1], v[2]));
            }
            continue;
        }
        match w {
            "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                let proto =
                    if w.starts_with("-t") || w == "--tcp-service" { Protocol::Tcp } else { Protocol::Udp };
                let (ao, a) = arg("a service address VIP:port")?;
                let (addr, port) = parse_addr_port(ao, a)?;
                let port = port
                    .ok_or(ParseError { offset: ao, message: format!("expected VIP:port, found {a:?}") })?;
                set_once(&mut o.service, off, w, (ao, ServiceKey::Addr { protocol: proto, addr, port }))?;
            }
            "-f" | "--fwmark-service" => {
                let (ao, a) = arg("a firewall mark")?;
                let m: u32 = a.parse().ok().filter(|&m| m > 0).ok_or(ParseError {
                    offset: ao,
                    message: format!("invalid fwmark value {a:?} (expected an integer > 0)"),
                })?;
                set_once(&mut o.service, off, w, (ao, ServiceKey::fwmark(m)))?;
            }
            "-s" | "--scheduler" => {
                let (ao, a) = arg("a scheduler name")?;
                let s = a.parse().or_else(|e: lvs_sched::UnknownScheduler| err(ao, e.to_string()))?;
                set_once(&mut o.scheduler, off, w, s)?;
            }
            "-b" | "--sched-flags" => {
                let (ao, a) = arg("scheduler flags")?;
                set_once(&mut o.sched_flags, off, w, parse_sched_flags(ao, a)?)?;
            }
            "-p" | "--persistent" => {
                // The timeout is optional: take the next word only if it is a number.
                let t = match ws.get(i) {
                    Some(&(ao, a)) if a.chars().all(|c| c.is_ascii_digit()) => {
                        i += 1;
                        let s: u64 = a.parse().or_else(|_| err(ao, "persistence timeout too large"))?;
                        if !(1..=31 * 86400).contains(&s) {
                            return err(ao, format!("invalid timeout value {a:?} (1 .. 2678400 s)"));
                        }
                        Duration::from_secs(s)
                    }
                    _ => DEFAULT_PERSISTENCE,
                };
                set_once(&mut o.persistence, off, w, t)?;
            }
            "-M" | "--netmask" => {
                let (ao, a) = arg("a netmask")?;
                let m = if let Ok(m) = a.parse::<Ipv4Addr>() {
                    u32::from(m)
                } else if let Some(Ok(p)) = a.strip_prefix('/').map(str::parse::<u32>) {
                    p
                } else {
                    return err(ao, format!("expected a netmask such as 255.255.255.0, found {a:?}"));
                };
                set_once(&mut o.netmask, off, w, m)?;
            }
            "-o" | "--ops" => o.one_packet = true,
            "-r" | "--real-server" => {
                let (ao, a) = arg("a real server address[:port]")?;
                let (addr, port) = parse_addr_port(ao, a)?;
                set_once(&mut o.real, off, w, (ao, addr, port))?;
            }
            "-g" | "--gatewaying" => set_once(&mut o.fwd, off, w, Forwarding::DirectRouting)?,
            "-i" | "--ipip" => set_once(&mut o.fwd, off, w, Forwarding::Tunnel)?,
            "-m" | "--masquerading" => set_once(&mut o.fwd, off, w, Forwarding::Masq)?,
            "-w" | "--weight" => {
                let (ao, a) = arg("a weight")?;
                let v = a.parse().ok().filter(|&v: &u32| v <= 65535);
                let v = v.ok_or(ParseError {
                    offset: ao,
                    message: format!("illegal weight {a:?} (0 .. 65535)"),
                })?;
                set_once(&mut o.weight, off, w, v)?;
            }
            "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
                let (ao, a) = arg("a connection threshold")?;
                let v = a
                    .parse()
                    .or_else(|_| err(ao, format!("illegal threshold {a:?} (expected an integer)")))?;
                let slot =
                    if w == "-x" || w == "--u-threshold" { &mut o.u_threshold } else { &mut o.l_threshold };
                set_once(slot, off, w, v)?;
            }
            _ => return err(off, format!("unknown ipvsadm option {w:?}")),
        }
    }
    let Some((coff, cmd)) = cmd else {
        return err(0, "expected an ipvsadm command (-A, -E, -D, -C, -a, -e, -d or --set)");
    };
    build(coff, cmd, o)
}

fn set_once<T>(slot: &mut Option<T>, off: usize, name: &str, v: T) -> Result<(), ParseError> {
    if slot.is_some() {
        return err(off, format!("multiple {name} options specified"));
    }
    *slot = Some(v);
    Ok(())
}

fn build(coff: usize, cmd: Cmd, o: Opts) -> Result<Command, ParseError> {
    if cmd == Cmd::Clear {
        return Ok(Command::Clear);
    }
    if cmd == Cmd::Set {
        let (a, b, c) = o.set.expect("parsed with --set");
        return Ok(Command::SetTimeouts(a, b, c));
    }
    let (soff, key) = o.service.ok_or(ParseError {
        offset: coff,
        message: "expected a service: -t VIP:port, -u VIP:port or -f mark".into(),
    })?;
    let dest_cmd = matches!(cmd, Cmd::AddDest | Cmd::EditDest | Cmd::DelDest);
    if !dest_cmd && o.real.is_some() {
        return err(coff, "-r is only valid with -a, -e or -d");
    }
    match cmd {
        Cmd::AddSvc => {
            let mut flags = o.sched_flags.unwrap_or(0);
            if o.one_packet {
                flags |= SvcFlags::ONEPACKET;
            }
            if let ServiceKey::Addr { port: 0, .. } = key {
                if o.persistence.is_none() {
                    return err(soff, "zero port specified for non-persistent service");
                }
            }
            Ok(Command::AddService(
                key,
                ServiceConfig {
                    scheduler: o.scheduler.unwrap_or(SchedulerKind::Wlc),
                    flags: SvcFlags(flags),
                    persistence: o.persistence,
                    netmask: o.netmask.unwrap_or(u32::MAX),
                },
            ))
        }
        Cmd::EditSvc => Ok(Command::EditService(
            key,
            ServiceEdit {
                scheduler: o.scheduler,
                sched_flags: o.sched_flags,
                persistence: o.persistence,
                netmask: o.netmask,
                one_packet: o.one_packet,
            },
        )),
        Cmd::DelSvc => Ok(Command::DelService(key)),
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let (_, addr, port) = o.real.ok_or(ParseError {
                offset: coff,
                message: "expected -r real-server-address[:port]".into(),
            })?;
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
            if cmd == Cmd::DelDest {
                return Ok(Command::DelDest(key, addr, port));
            }
            let cfg = DestConfig {
                addr,
                port,
                fwd,
                weight: o.weight.unwrap_or(1),
                u_threshold: o.u_threshold.unwrap_or(0),
                l_threshold: o.l_threshold.unwrap_or(0),
                tunnel: lvs_sched::Tunnel::default(),
            };
            Ok(if cmd == Cmd::AddDest { Command::AddDest(key, cfg) } else { Command::EditDest(key, cfg) })
        }
        Cmd::Clear | Cmd::Set => unreachable!("handled above"),
    }
}

/// `-b` flags: a comma-separated list of `sh-fallback`, `sh-port`, `mh-fallback`,
/// `mh-port`, `flag-1`, `flag-2`, `flag-3`.
fn parse_sched_flags(off: usize, s: &str) -> Result<u32, ParseError> {
    let mut f = 0;
    for part in s.split(',') {
        f |= match part {
            "sh-fallback" | "mh-fallback" | "flag-1" => SvcFlags::SCHED1,
            "sh-port" | "mh-port" | "flag-2" => SvcFlags::SCHED2,
            "flag-3" => SvcFlags::SCHED3,
            _ => {
                return err(
                    off,
                    format!(
                        "unknown scheduler flag {part:?} (expected sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2 or flag-3)"
                    ),
                );
            }
        };
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

/// Apply a command to a table, as ipvsadm would through the kernel.
pub fn apply(ipvs: &mut Ipvs, cmd: &Command) -> Result<(), IpvsError> {
    match cmd {
        Command::AddService(k, c) => ipvs.add_service(*k, *c),
        Command::EditService(k, e) => {
            let mut c = *ipvs.service(k).ok_or(IpvsError::NoSuchService)?.config();
            if let Some(s) = e.scheduler {
                c.scheduler = s;
            }
            if let Some(f) = e.sched_flags {
                c.flags.0 = (c.flags.0 & !(SvcFlags::SCHED1 | SvcFlags::SCHED2 | SvcFlags::SCHED3)) | f;
            }
            if e.persistence.is_some() {
                c.persistence = e.persistence;
            }
            if let Some(m) = e.netmask {
                c.netmask = m;
            }
            if e.one_packet {
                c.flags.0 |= SvcFlags::ONEPACKET;
            }
            ipvs.edit_service(*k, c)
        }
        Command::DelService(k) => ipvs.del_service(*k),
        Command::Clear => {
            ipvs.clear();
            Ok(())
        }
        Command::AddDest(k, d) => ipvs.add_dest(*k, d).map(|_| ()),
        Command::EditDest(k, d) => ipvs.edit_dest(*k, d).map(|_| ()),
        Command::DelDest(k, a, p) => ipvs.del_dest(*k, *a, *p).map(|_| ()),
        Command::SetTimeouts(t, f, u) => {
            let d = |s: u32| (s != 0).then(|| Duration::from_secs(u64::from(s)));
            ipvs.timeouts_mut().set(d(*t), d(*f), d(*u));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command, ParseError> {
        parse(&words(line))
    }

    #[test]
    fn defaults_are_ipvsadms() {
        let Command::AddService(k, c) = p("-A -t 10.0.0.1:80").unwrap() else { panic!() };
        assert_eq!(
            k,
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 }
        );
        assert_eq!(c.scheduler, SchedulerKind::Wlc);
        let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 10.0.0.2:8080").unwrap() else { panic!() };
        assert_eq!(
            (d.fwd, d.weight, d.port),
            (Forwarding::DirectRouting, 1, 80),
            "DR forces the service port"
        );
        let Command::AddDest(_, d) = p("-a -t 10.0.0.1:http -r 10.0.0.2:8080 -m -w 4").unwrap() else {
            panic!()
        };
        assert_eq!((d.fwd, d.weight, d.port), (Forwarding::Masq, 4, 8080));
        let Command::AddService(_, c) = p("-A -u 10.0.0.1:53 -s sh -b sh-port,sh-fallback -p").unwrap()
        else {
            panic!()
        };
        assert_eq!(c.persistence, Some(DEFAULT_PERSISTENCE));
        assert_eq!(c.flags.0, SvcFlags::SCHED1 | SvcFlags::SCHED2);
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = p("-a -t 10.0.0.1:80 -r 10.0.0.2 -w lots").unwrap_err();
        assert_eq!(e.offset, 33);
        assert!(e.message.contains("illegal weight"), "{}", e.message);
        let e = p("-A -t 10.0.0.1:80 -s fastest").unwrap_err();
        assert_eq!(e.offset, 21);
        assert!(e.message.contains("unknown scheduler"));
        assert!(p("-A -t 10.0.0.1").unwrap_err().message.contains("VIP:port"));
        assert!(p("-t 10.0.0.1:80").unwrap_err().message.contains("expected an ipvsadm command"));
        assert!(p("-A -a -t 10.0.0.1:80").unwrap_err().message.contains("multiple commands"));
    }
}
