//! The `ipvsadm` backend: the same operations by running the command.
//!
//! Listing takes two runs, because `ipvsadm -S` (the rule form, with the forwarding flag
//! and tunnel options) omits the `-x`/`-y` thresholds and is sorted, while
//! `ipvsadm -L -n --nosort --thresholds` has the thresholds and connection counters in
//! kernel list order. `real_servers` joins the two by address and port.
//!
//! Edits pass every field (`-m|-g|-i -w W -x U -y L` and the tunnel options), as SET_DEST
//! replaces them all. The kernel's refusals, which ipvsadm prints in words, are mapped
//! back to their errno so callers see the same [`Error::Kernel`] as with netlink.
//!
//! ipvsadm itself forces a direct-routing or tunnel real server's port to the service's,
//! and cannot express the kernel's "local" forwarding method (FWD_METHOD 1).

use core::net::{IpAddr, SocketAddr};
use std::io::Write;
use std::process::{Command, Stdio};

use lvs_ipvs::ipvsadm::default_netmask;
use lvs_ipvs::{
    DestConfig, Forwarding, PersistenceEngine, Protocol, SchedulerKind, ServiceConfig, SvcFlags, Tunnel,
    TunnelType,
};
use lvs_sched::Duration;

use crate::ipvs::{DestRow, Error, ServiceKey, dest_name, errno_meaning};

/// Runs `ipvsadm` (found on `PATH`).
#[derive(Debug)]
pub(crate) struct IpvsadmBackend {
    program: String,
}

impl IpvsadmBackend {
    pub(crate) fn new() -> IpvsadmBackend {
        IpvsadmBackend { program: "ipvsadm".to_owned() }
    }

    /// Runs ipvsadm with `args` (and `stdin`), returning its stdout.
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<String, Error> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args).env("LC_ALL", "C").stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| Error::Other(format!("running {}: {e}", self.program)))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).map_err(|e| Error::Other(format!("writing to ipvsadm: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| Error::Other(format!("waiting for ipvsadm: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // `ipvsadm -R` reports a refused line on stderr, goes on with the next, and exits 0.
        if out.status.success() && (stdin.is_none() || stderr.is_empty()) {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let op = format!("{} {}", self.program, args.join(" "));
        Err(match classify_stderr(&stderr) {
            Some(errno) => {
                Error::Kernel { op, errno, message: format!("{} (ipvsadm: {stderr})", errno_meaning(errno)) }
            }
            None => Error::Other(format!("{op}: {}: {stderr}", out.status)),
        })
    }

    fn saved(&self) -> Result<Vec<Saved>, Error> {
        let text = self.run(&["-S".to_owned(), "-n".to_owned()], None)?;
        parse_save(&text).map_err(|e| Error::Other(format!("parsing ipvsadm -S -n: {e}")))
    }

    pub(crate) fn services(&mut self) -> Result<Vec<(ServiceKey, ServiceConfig)>, Error> {
        Ok(self.saved()?.into_iter().map(|s| (s.key, s.config)).collect())
    }

    pub(crate) fn real_servers(&mut self, svc: &ServiceKey) -> Result<Vec<DestRow>, Error> {
        let mut args: Vec<String> = ["-L", "-n", "--nosort", "--thresholds"].map(String::from).into();
        args.extend(service_args(svc));
        let listed = parse_threshold_listing(&self.run(&args, None)?)
            .map_err(|e| Error::Other(format!("parsing ipvsadm {}: {e}", args.join(" "))))?;
        let saved = self.saved()?.into_iter().find(|s| s.key == *svc).map(|s| s.dests).unwrap_or_default();
        listed
            .into_iter()
            .map(|row| {
                let mut rs =
                    *saved.iter().find(|d| SocketAddr::new(d.addr, d.port) == row.addr).ok_or_else(|| {
                        Error::Other(format!("{svc} -> {}: listed by ipvsadm -L but not by -S", row.addr))
                    })?;
                (rs.u_threshold, rs.l_threshold) = (row.u_threshold, row.l_threshold);
                Ok(DestRow { config: rs, active_conns: row.active_conns, inactive_conns: row.inactive_conns })
            })
            .collect()
    }

    pub(crate) fn add_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.run(&dest_args("-a", svc, rs)?, None).map(drop)
    }

    pub(crate) fn edit_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.run(&dest_args("-e", svc, rs)?, None).map(drop)
    }

    /// One `ipvsadm -R` reading an `-e` line per real server; it tries every line, and the
    /// first refusal it printed is returned.
    pub(crate) fn edit_real_servers_batch(
        &mut self,
        svc: &ServiceKey,
        servers: &[DestConfig],
    ) -> Result<(), Error> {
        let mut script = String::new();
        for rs in servers {
            script.push_str(&dest_args("-e", svc, rs)?.join(" "));
            script.push('\n');
        }
        self.run(&["-R".to_owned()], Some(&script)).map(drop)
    }

    pub(crate) fn remove_real_server(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), Error> {
        let mut args = vec!["-d".to_owned()];
        args.extend(service_args(svc));
        args.extend(["-r".to_owned(), SocketAddr::new(addr, port).to_string()]);
        self.run(&args, None).map(drop)
    }
}

/// The kernel errno behind one of ipvsadm's messages (libipvs's `ipvs_strerror`).
fn classify_stderr(stderr: &str) -> Option<i32> {
    const TABLE: &[(&str, i32)] = &[
        ("Service not defined", libc::ESRCH),
        ("No such service", libc::ESRCH),
        ("Destination already exists", libc::EEXIST),
        ("No such destination", libc::ENOENT),
        ("Numerical result out of range", libc::ERANGE),
        ("Permission denied", libc::EPERM),
        ("Invalid operation", libc::EINVAL),
        ("Invalid argument", libc::EINVAL),
    ];
    TABLE.iter().find(|(text, _)| stderr.contains(text)).map(|&(_, errno)| errno)
}

/// `-t VIP:PORT`, `-u ...`, `--sctp-service ...`, or `-f MARK [-6]`.
pub(crate) fn service_args(svc: &ServiceKey) -> Vec<String> {
    match *svc {
        ServiceKey::Addr { protocol, addr, port } => {
            let opt = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            vec![opt.to_owned(), SocketAddr::new(addr, port).to_string()]
        }
        ServiceKey::Fwmark { mark, ipv6 } => {
            let mut v = vec!["-f".to_owned(), mark.to_string()];
            if ipv6 {
                v.push("-6".to_owned());
            }
            v
        }
    }
}

/// `OP SERVICE -r RIP:PORT -m|-g|-i -w W -x U -y L [tunnel options]`, OP `-a` or `-e`.
pub(crate) fn dest_args(op: &str, svc: &ServiceKey, rs: &DestConfig) -> Result<Vec<String>, Error> {
    let flag = match rs.fwd {
        Forwarding::Masq => "-m",
        Forwarding::Tunnel => "-i",
        Forwarding::DirectRouting => "-g",
        Forwarding::Local => {
            let name = dest_name(svc, rs.addr, rs.port);
            return Err(Error::Other(format!("{name}: ipvsadm cannot set the local forwarding method")));
        }
    };
    let mut v = vec![op.to_owned()];
    v.extend(service_args(svc));
    v.extend(["-r".to_owned(), SocketAddr::new(rs.addr, rs.port).to_string(), flag.to_owned()]);
    for (opt, value) in [("-w", rs.weight), ("-x", rs.u_threshold), ("-y", rs.l_threshold)] {
        v.extend([opt.to_owned(), value.to_string()]);
    }
    if rs.fwd == Forwarding::Tunnel {
        let t = rs.tunnel;
        v.extend(["--tun-type".to_owned(), t.kind.name().to_owned()]);
        if t.kind == TunnelType::Gue {
            v.extend(["--tun-port".to_owned(), t.port.to_string()]);
        }
        if t.kind != TunnelType::Ipip {
            if t.flags & Tunnel::REMCSUM != 0 {
                v.push("--tun-remcsum".to_owned());
            } else if t.flags & Tunnel::CSUM != 0 {
                v.push("--tun-csum".to_owned());
            }
        }
    }
    Ok(v)
}

/// A service of `ipvsadm -S` with its real servers (sorted, without thresholds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    pub(crate) key: ServiceKey,
    pub(crate) config: ServiceConfig,
    pub(crate) dests: Vec<DestConfig>,
}

/// A real server row of `ipvsadm -L -n --thresholds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListedDest {
    pub(crate) addr: SocketAddr,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) active_conns: u32,
    pub(crate) inactive_conns: u32,
}

/// Parses `ipvsadm -S -n`: `-A` lines open a service, `-a` lines add to theirs.
pub(crate) fn parse_save(text: &str) -> Result<Vec<Saved>, String> {
    let mut out: Vec<Saved> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let line_err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        match tokens.first().copied() {
            None => continue,
            Some("-A") => {
                let (key, config) = parse_service_rule(&tokens[1..]).map_err(line_err)?;
                out.push(Saved { key, config, dests: Vec::new() });
            }
            Some("-a") => {
                let (key, rs) = parse_dest_rule(&tokens[1..]).map_err(line_err)?;
                let svc = out.iter_mut().find(|s| s.key == key);
                svc.ok_or_else(|| line_err("a real server of an unlisted service".to_owned()))?
                    .dests
                    .push(rs);
            }
            Some(other) => return Err(line_err(format!("unexpected {other:?}"))),
        }
    }
    Ok(out)
}

/// The options shared by `-A` and `-a` rules that name the service.
#[derive(Default)]
struct ServiceOpts {
    addr: Option<(Protocol, SocketAddr)>,
    fwmark: Option<u32>,
    ipv6: bool,
}

impl ServiceOpts {
    /// Takes `tok` (and its value) if it names the service; false if it is another option.
    fn take<'a>(&mut self, tok: &str, it: &mut impl Iterator<Item = &'a str>) -> Result<bool, String> {
        let protocol = match tok {
            "-t" | "--tcp-service" => Protocol::Tcp,
            "-u" | "--udp-service" => Protocol::Udp,
            "--sctp-service" => Protocol::Sctp,
            "-f" | "--fwmark-service" => {
                self.fwmark = Some(parse_num(value(tok, it)?)?);
                return Ok(true);
            }
            "-6" | "--ipv6" => {
                self.ipv6 = true;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        let v = value(tok, it)?;
        self.addr = Some((protocol, v.parse().map_err(|_| format!("bad service address {v:?}"))?));
        Ok(true)
    }

    fn key(&self) -> Result<ServiceKey, String> {
        match (self.fwmark, self.addr) {
            (Some(mark), _) => Ok(ServiceKey::Fwmark { mark, ipv6: self.ipv6 }),
            (None, Some((protocol, sa))) => Ok(ServiceKey::Addr { protocol, addr: sa.ip(), port: sa.port() }),
            (None, None) => Err("no service (-t, -u, --sctp-service or -f)".to_owned()),
        }
    }
}

fn value<'a>(opt: &str, it: &mut impl Iterator<Item = &'a str>) -> Result<&'a str, String> {
    it.next().ok_or_else(|| format!("{opt} without a value"))
}

fn parse_num<T: core::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn parse_service_rule(tokens: &[&str]) -> Result<(ServiceKey, ServiceConfig), String> {
    let mut so = ServiceOpts::default();
    let (mut scheduler, mut flags, mut persistence, mut netmask, mut pe) =
        (SchedulerKind::Wlc, 0, None, None, None);
    let mut it = tokens.iter().copied().peekable();
    while let Some(tok) = it.next() {
        if so.take(tok, &mut it)? {
            continue;
        }
        match tok {
            "-s" | "--scheduler" => scheduler = value(tok, &mut it)?.parse().map_err(|e| format!("{e}"))?,
            "-p" | "--persistent" => {
                flags |= SvcFlags::PERSISTENT;
                let timeout_s = match it.peek().and_then(|t| t.parse().ok()) {
                    Some(t) => {
                        it.next();
                        t
                    }
                    None => 360, // ipvsadm's default persistence timeout [s]
                };
                persistence = Some(Duration::from_secs(timeout_s));
            }
            "-M" | "--netmask" => {
                let v = value(tok, &mut it)?;
                netmask = Some(match v.parse::<core::net::Ipv4Addr>() {
                    Ok(mask) => u32::from(mask), // host order, as ServiceConfig keeps it
                    Err(_) => parse_num(v)?,
                });
            }
            "-o" | "--ops" => flags |= SvcFlags::ONEPACKET,
            "-b" | "--sched-flags" => {
                for f in value(tok, &mut it)?.split(',') {
                    flags |= match f {
                        "flag-1" | "sh-fallback" | "mh-fallback" => SvcFlags::SCHED1,
                        "flag-2" | "sh-port" | "mh-port" => SvcFlags::SCHED2,
                        "flag-3" => SvcFlags::SCHED3,
                        other => return Err(format!("unknown scheduler flag {other:?}")),
                    };
                }
            }
            "--pe" | "pe" => {
                let v = value(tok, &mut it)?;
                pe = Some(
                    PersistenceEngine::from_name(v)
                        .ok_or_else(|| format!("unknown persistence engine {v:?}"))?,
                );
            }
            other => return Err(format!("unknown service option {other:?}")),
        }
    }
    let key = so.key()?;
    let netmask = netmask.unwrap_or(default_netmask(&key));
    Ok((key, ServiceConfig { scheduler, flags: SvcFlags(flags), persistence, netmask, pe }))
}

/// `RIP:PORT`, `[RIP6]:PORT`, or an address alone (port 0, as for firewall marks).
fn parse_rip(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    bare.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)).map_err(|_| format!("bad real server {s:?}"))
}

fn parse_dest_rule(tokens: &[&str]) -> Result<(ServiceKey, DestConfig), String> {
    let mut so = ServiceOpts::default();
    let mut rip = None;
    // -g is ipvsadm's default.
    let mut rs = DestConfig::new(IpAddr::from([0, 0, 0, 0]), 0, Forwarding::DirectRouting);
    let mut it = tokens.iter().copied();
    while let Some(tok) = it.next() {
        if so.take(tok, &mut it)? {
            continue;
        }
        match tok {
            "-r" | "--real-server" => rip = Some(parse_rip(value(tok, &mut it)?)?),
            "-m" | "--masquerading" => rs.fwd = Forwarding::Masq,
            "-g" | "--gatewaying" => rs.fwd = Forwarding::DirectRouting,
            "-i" | "--ipip" => rs.fwd = Forwarding::Tunnel,
            "-w" | "--weight" => rs.weight = parse_num(value(tok, &mut it)?)?,
            "-x" | "--u-threshold" => rs.u_threshold = parse_num(value(tok, &mut it)?)?,
            "-y" | "--l-threshold" => rs.l_threshold = parse_num(value(tok, &mut it)?)?,
            "--tun-type" => {
                rs.tunnel.kind = match value(tok, &mut it)? {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    other => return Err(format!("unknown tunnel type {other:?}")),
                }
            }
            "--tun-port" => rs.tunnel.port = parse_num(value(tok, &mut it)?)?,
            "--tun-nocsum" => rs.tunnel.flags = 0,
            "--tun-csum" => rs.tunnel.flags = Tunnel::CSUM,
            "--tun-remcsum" => rs.tunnel.flags = Tunnel::REMCSUM,
            other => return Err(format!("unknown real server option {other:?}")),
        }
    }
    let rip = rip.ok_or("no real server (-r)")?;
    (rs.addr, rs.port) = (rip.ip(), rip.port());
    Ok((so.key()?, rs))
}

/// Parses the real-server rows of `ipvsadm -L -n --thresholds` (one service), in order.
pub(crate) fn parse_threshold_listing(text: &str) -> Result<Vec<ListedDest>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(row) = line.trim_start().strip_prefix("->") else { continue };
        let cols: Vec<&str> = row.split_whitespace().collect();
        if cols.first() == Some(&"RemoteAddress:Port") {
            continue; // the heading
        }
        let [addr, u, l, active, inactive] = cols[..] else {
            return Err(format!("unexpected row {line:?}"));
        };
        out.push(ListedDest {
            addr: addr.parse().map_err(|_| format!("bad address in {line:?}"))?,
            u_threshold: parse_num(u)?,
            l_threshold: parse_num(l)?,
            active_conns: parse_num(active)?,
            inactive_conns: parse_num(inactive)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "ipvsadm_tests.rs"]
mod tests;
