//! The emitter of the ipvsadm rule grammar: `Display for Command` writes a command as
//! `ipvsadm -S -n` writes it (see `rules` for the order, the defaults left out and the
//! one deliberate difference), and [`Command::args`] the words of one `ipvsadm` run.

use std::fmt;
use std::net::Ipv4Addr;

use lvs_sched::{DestConfig, Forwarding, SchedFlag, SvcFlags, Tunnel, TunnelType};

use super::rules::Command;
use crate::{AddrPort, Protocol, ServiceConfig, ServiceKey};

/// The scheduler-flag bits `-b` sets.
const SCHED_FLAGS: u32 = SvcFlags::SCHED1 | SvcFlags::SCHED2 | SvcFlags::SCHED3;

/// A service as ipvsadm's options name it: `-t 10.0.0.1:80`, `--sctp-service ...`,
/// `-f 1 -6`.
pub struct ServiceArg<'a>(pub &'a ServiceKey);

impl fmt::Display for ServiceArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            ServiceKey::Addr { protocol, addr, port } => {
                let opt = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                write!(f, "{opt} {}", AddrPort(addr, port))
            }
            ServiceKey::Fwmark { mark, ipv6: false } => write!(f, "-f {mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => write!(f, "-f {mark} -6"),
        }
    }
}

/// ` -s SCHED [-p SECS [-M MASK]] [--pe NAME] [-o] [-b FLAGS]`, as `ipvsadm -S` writes it.
fn write_service(f: &mut fmt::Formatter<'_>, key: &ServiceKey, c: &ServiceConfig) -> fmt::Result {
    write!(f, " -s {}", c.scheduler)?;
    if let Some(p) = c.persistence {
        write!(f, " -p {}", p.as_nanos() / 1_000_000_000)?;
        if key.is_ipv6() {
            if c.netmask < 128 {
                write!(f, " -M {}", c.netmask)?;
            }
        } else if c.netmask != u32::MAX {
            write!(f, " -M {}", Ipv4Addr::from(c.netmask))?;
        }
    }
    if let Some(pe) = c.pe {
        write!(f, " --pe {}", pe.name())?;
    }
    if c.flags.has(SvcFlags::ONEPACKET) {
        f.write_str(" -o")?;
    }
    if c.flags.0 & SCHED_FLAGS != 0 {
        let names: Vec<&str> = c.flags.sched_flags(c.scheduler).map(SchedFlag::name).collect();
        write!(f, " -b {}", names.join(","))?;
    }
    Ok(())
}

/// ` -r ADDR:PORT -g|-i|-m -w W [-x U] [-y L] [--tun-type T [--tun-port P] [--tun-*csum]]`.
fn write_dest(f: &mut fmt::Formatter<'_>, d: &DestConfig) -> fmt::Result {
    // ipvsadm prints the local-node method as -g, as it prints direct routing.
    let fwd = match d.fwd {
        Forwarding::Masq => "-m",
        Forwarding::Tunnel => "-i",
        Forwarding::DirectRouting | Forwarding::Local => "-g",
    };
    write!(f, " -r {} {fwd} -w {}", AddrPort(d.addr, d.port), d.weight)?;
    if d.u_threshold != 0 {
        write!(f, " -x {}", d.u_threshold)?;
    }
    if d.l_threshold != 0 {
        write!(f, " -y {}", d.l_threshold)?;
    }
    if d.fwd == Forwarding::Tunnel {
        let t = d.tunnel;
        write!(f, " --tun-type {}", t.kind.name())?;
        if t.kind == TunnelType::Gue {
            write!(f, " --tun-port {}", t.port)?;
        }
        if t.kind != TunnelType::Ipip {
            f.write_str(if t.flags & Tunnel::REMCSUM != 0 {
                " --tun-remcsum"
            } else if t.flags & Tunnel::CSUM != 0 {
                " --tun-csum"
            } else {
                " --tun-nocsum"
            })?;
        }
    }
    Ok(())
}

impl fmt::Display for Command {
    /// The command as `ipvsadm -S -n` writes it (without a leading `ipvsadm`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::AddService(k, c) => {
                write!(f, "-A {}", ServiceArg(k))?;
                write_service(f, k, c)
            }
            Command::EditService(k, c) => {
                write!(f, "-E {}", ServiceArg(k))?;
                write_service(f, k, c)
            }
            Command::DelService(k) => write!(f, "-D {}", ServiceArg(k)),
            Command::Clear => f.write_str("-C"),
            Command::AddDest(k, d) => {
                write!(f, "-a {}", ServiceArg(k))?;
                write_dest(f, d)
            }
            Command::EditDest(k, d) => {
                write!(f, "-e {}", ServiceArg(k))?;
                write_dest(f, d)
            }
            Command::DelDest(k, a, p) => write!(f, "-d {} -r {}", ServiceArg(k), AddrPort(*a, *p)),
            Command::SetTimeouts(t, fin, u) => write!(f, "--set {t} {fin} {u}"),
            Command::Zero(None) => f.write_str("-Z"),
            Command::Zero(Some(k)) => write!(f, "-Z {}", ServiceArg(k)),
        }
    }
}

impl Command {
    /// The arguments of one `ipvsadm` run doing this command: the emitted line's words.
    pub fn args(&self) -> Vec<String> {
        self.to_string().split_whitespace().map(str::to_owned).collect()
    }
}
