//! Vocabulary shared by the wire codec, the configuration grammar and the state machines
//! (the IPVS notions themselves, protocol, forwarding method and service key, are
//! `lvs_ipvs`'s).

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::str::FromStr;

use lvs_ipvs::{AddrPort, Forwarding, Protocol, ServiceKey};

/// What an operator wants of a real server, reported by its agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminState {
    /// In service: the weight follows the reported capacity.
    #[default]
    Ready,
    /// Being drained: weight 0, so existing connections finish and no new ones arrive.
    Drain,
    /// Under maintenance: weight 0, like `Drain`, and shown as such.
    Maint,
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        })
    }
}

/// One service an agent's real server offers, as registered with a master.
///
/// A master matches it to a kernel virtual service by protocol and port (and by VIP when
/// one is given), or by firewall mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The protocol of the virtual service.
    pub protocol: Protocol,
    /// The port the real server listens on; also the virtual service's port to match.
    pub port: u16,
    /// Only match the virtual service on this VIP.
    pub vip: Option<IpAddr>,
    /// Match the firewall-mark virtual service with this mark instead of protocol/port.
    pub fwmark: Option<u32>,
    /// How the director should forward to this real server: never
    /// [`Forwarding::Local`], which the configuration grammar, the wire decoder and the
    /// journal reader refuse (an agent's server is never the director itself).
    pub forwarding: Forwarding,
    /// The real server's address in the director's table; by default the address the
    /// agent's connection comes from.
    pub address: Option<IpAddr>,
}

impl ServiceSpec {
    /// Whether this service of an agent belongs to the virtual service `key`: the same
    /// firewall mark, or the same protocol and port (and VIP, when the agent names one).
    pub fn matches(&self, key: &ServiceKey) -> bool {
        match (*key, self.fwmark) {
            (ServiceKey::Fwmark { mark, .. }, Some(want)) => mark == want,
            (ServiceKey::Addr { protocol, addr, port }, None) => {
                protocol == self.protocol && port == self.port && self.vip.is_none_or(|v| v == addr)
            }
            _ => false,
        }
    }
}

/// An agent the master polls itself (HAProxy's agent-check protocol) instead of one that
/// connects: configured by the operator, so trusted, and fed to the same law.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Polled {
    /// Its id, as agents' ids show (`agent-check:ADDR:PORT`).
    pub id: String,
    /// The address polled.
    pub peer: IpAddr,
    /// The real server it speaks for, matched to virtual services as an agent's service is.
    pub service: ServiceSpec,
    /// How often it is polled [ms]: its silence is judged as an agent's report interval.
    pub interval_ms: u32,
}

/// A virtual service as feedbackd writes it on a command line and in the journal:
/// `tcp:VIP:PORT`, `udp:...`, `sctp:...` (an IPv6 VIP in brackets), `fwm:MARK` (IPv4) or
/// `fwm6:MARK` (IPv6). [`parse_service`] reads it back.
#[derive(Clone, Copy, Debug)]
pub struct ServiceText(pub ServiceKey);

impl fmt::Display for ServiceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ServiceKey::Addr { protocol, addr, port } => {
                write!(f, "{}:{}", protocol.name().to_ascii_lowercase(), AddrPort(addr, port))
            }
            ServiceKey::Fwmark { mark, ipv6: false } => write!(f, "fwm:{mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => write!(f, "fwm6:{mark}"),
        }
    }
}

/// Parses [`ServiceText`]'s form; the kind is case-insensitive (`UDP:[::1]:53`), a
/// firewall mark is above 0 (0 is no mark to the kernel), an address has no scope id.
pub fn parse_service(s: &str) -> Result<ServiceKey, String> {
    let (kind, rest) = s.split_once(':').ok_or_else(|| {
        format!("{s:?} is not a service (tcp:VIP:PORT, udp:VIP:PORT, sctp:VIP:PORT, fwm:MARK or fwm6:MARK)")
    })?;
    let protocol = match kind.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        fwm @ ("fwm" | "fwm6") => {
            return match rest.parse::<u32>() {
                Ok(mark) if mark > 0 => Ok(ServiceKey::Fwmark { mark, ipv6: fwm == "fwm6" }),
                _ => Err(format!("service {s:?}: {rest:?} is not a firewall mark (1 to 4294967295)")),
            };
        }
        other => {
            return Err(format!("service {s:?}: {other:?} is not a protocol (tcp, udp, sctp) nor fwm, fwm6"));
        }
    };
    match rest.parse::<SocketAddr>() {
        Ok(SocketAddr::V6(a)) if a.scope_id() != 0 || a.flowinfo() != 0 => {
            Err(format!("service {s:?}: a scope id is not part of an address here"))
        }
        Ok(a) => Ok(ServiceKey::Addr { protocol, addr: a.ip(), port: a.port() }),
        Err(_) => Err(format!("service {s:?}: {rest:?} is not VIP:PORT (an IPv6 address in brackets)")),
    }
}

/// A connection, numbered by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A real server in a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RsKey {
    /// The virtual service.
    pub service: ServiceKey,
    /// The real server's address.
    pub addr: IpAddr,
    /// The real server's port.
    pub port: u16,
}

impl fmt::Display for RsKey {
    /// `SERVICE -> RIP:PORT`, the service as `ipvsadm -L -n` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.service, AddrPort(self.addr, self.port))
    }
}

/// A real server as feedbackd writes it in a URL, a form or the journal:
/// `SERVICE/RIP:PORT` with the service in [`ServiceText`]'s form (`tcp:10.0.0.1:80/10.0.0.5:80`,
/// `fwm:1/10.0.0.5:0`, `tcp:[2001:db8::1]:80/[2001:db8::5]:80`). [`parse_rs_key`] reads it back.
#[derive(Clone, Copy, Debug)]
pub struct RsKeyText(pub RsKey);

impl fmt::Display for RsKeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", ServiceText(self.0.service), AddrPort(self.0.addr, self.0.port))
    }
}

/// Parses [`RsKeyText`]'s form.
pub fn parse_rs_key(s: &str) -> Result<RsKey, String> {
    let (service, server) =
        s.rsplit_once('/').ok_or_else(|| format!("{s:?} is not a real server (SERVICE/RIP:PORT)"))?;
    let service = parse_service(service)?;
    match server.parse::<SocketAddr>() {
        Ok(SocketAddr::V6(a)) if a.scope_id() != 0 || a.flowinfo() != 0 => {
            Err(format!("real server {s:?}: a scope id is not part of an address here"))
        }
        Ok(a) => Ok(RsKey { service, addr: a.ip(), port: a.port() }),
        Err(_) => Err(format!("real server {s:?}: {server:?} is not RIP:PORT (an IPv6 address in brackets)")),
    }
}

/// What an operator (the director's console) does to one real server. The weight it
/// leads to: `Maintenance` takes the server out of the kernel's table, `Drain` sets 0,
/// `Pin` sets the weight whatever the law says (an agent's drain or silence still sets 0),
/// `Return` and `Unpin` give the server back to the law.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerAction {
    /// Weight 0: existing connections finish, no new ones arrive.
    Drain,
    /// Out of the table (DEL_DEST) until returned.
    Maintenance,
    /// Undo `Drain` or `Maintenance`.
    Return,
    /// This weight, overriding the law.
    Pin(u32),
    /// Undo `Pin`.
    Unpin,
}

impl fmt::Display for ServerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAction::Drain => f.write_str("drain"),
            ServerAction::Maintenance => f.write_str("maintenance"),
            ServerAction::Return => f.write_str("return"),
            ServerAction::Pin(w) => write!(f, "pin {w}"),
            ServerAction::Unpin => f.write_str("unpin"),
        }
    }
}

/// Who made a change: the console's user, and the address the request came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Who {
    /// The user name (from the users file).
    pub user: String,
    /// The client's address.
    pub address: IpAddr,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}", self.user, self.address)
    }
}

/// A kernel table entry, as the driver reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableEntry {
    /// Which real server.
    pub key: RsKey,
    /// Its weight in the kernel.
    pub weight: u32,
    /// Its forwarding method (any of the kernel's, local included).
    pub forwarding: Forwarding,
}

/// A network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`; a bare
/// address is a single host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `--allow-from` value is not a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part.
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    Address(String),
    /// The prefix length.
    #[error("prefix length {0:?} is not a number from 0 to {1}")]
    Prefix(String, u8),
    /// Bits set past the prefix (`10.0.0.1/8`): probably a typo.
    #[error("{0} has bits set past its prefix length (did you mean {1}?)")]
    HostBits(String, Cidr),
}

impl Cidr {
    /// The network `addr/prefix`; `None` if the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        (prefix <= max_prefix(addr)).then_some(Cidr { addr, prefix })
    }

    /// The single host `addr` (a /32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: max_prefix(addr) }
    }

    /// The network's address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.2`, as a
    /// dual-stack listener reports IPv4 agents) matches IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(n.to_bits()), u128::from(a.to_bits()), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(n.to_bits(), a.to_bits(), 128, self.prefix),
            _ => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Whether the top `prefix` bits of two `width`-bit numbers agree.
fn masked(net: u128, addr: u128, width: u32, prefix: u8) -> bool {
    let shift = width - u32::from(prefix);
    shift >= width || (net >> shift) == (addr >> shift)
}

fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    let keep = |bits: u128, width: u32| {
        let shift = width - u32::from(prefix);
        if shift >= width { 0 } else { (bits >> shift) << shift }
    };
    match addr {
        IpAddr::V4(a) => IpAddr::V4(std::net::Ipv4Addr::from_bits(keep(u128::from(a.to_bits()), 32) as u32)),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from_bits(keep(a.to_bits(), 128))),
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.trim().parse().map_err(|_| CidrError::Address(a.to_owned()))?;
        let max = max_prefix(addr);
        let prefix = match p {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(CidrError::Prefix(p.to_owned(), max)),
            },
        };
        let net = network_of(addr, prefix);
        if net != addr {
            return Err(CidrError::HostBits(s.to_owned(), Cidr { addr: net, prefix }));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    /// A single host is written as its bare address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_text_reads_back_and_refuses_what_the_kernel_has_not() {
        for text in ["tcp:10.0.0.1:80", "udp:[2001:db8::1]:53", "sctp:10.0.0.1:9", "fwm:1", "fwm6:4294967295"]
        {
            let key = parse_service(text).unwrap();
            assert_eq!(ServiceText(key).to_string(), text);
        }
        assert_eq!(parse_service("UDP:10.0.0.1:53"), parse_service("udp:10.0.0.1:53"));
        for (bad, why) in [
            ("fwm:0", "is not a firewall mark"),
            ("fwm6:-1", "is not a firewall mark"),
            ("tcp:[fe80::1%2]:80", "scope id"),
            ("tcp:2001:db8::1:80", "in brackets"),
            ("icmp:10.0.0.1:1", "is not a protocol"),
            ("tcp", "is not a service"),
        ] {
            let e = parse_service(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
