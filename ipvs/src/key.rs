//! How a virtual service is identified: protocol, VIP and port, or a firewall mark and
//! its address family (`struct ip_vs_service`'s `af`, `protocol`, `addr`, `port`,
//! `fwmark`).

use core::fmt;
use core::net::IpAddr;

use lvs_sched::Protocol;

/// `AF_INET` as IPVS carries it.
pub const AF_INET: u16 = 2;
/// `AF_INET6` as IPVS carries it.
pub const AF_INET6: u16 = 10;

/// A virtual service's key (what `ipvsadm -t/-u/--sctp-service/-f` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// `-t/-u/--sctp-service VIP:PORT`.
    Addr {
        /// The protocol.
        protocol: Protocol,
        /// The virtual IP.
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// `-f MARK`; `ipv6` for an IPv6 firewall-mark service (`-6`).
    Fwmark {
        /// The firewall mark.
        mark: u32,
        /// An IPv6 service.
        ipv6: bool,
    },
}

impl ServiceKey {
    /// An IPv4 firewall-mark service (`-f MARK`).
    pub const fn fwmark(mark: u32) -> ServiceKey {
        ServiceKey::Fwmark { mark, ipv6: false }
    }

    /// Whether the service is IPv6.
    pub fn is_ipv6(&self) -> bool {
        match *self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => ipv6,
        }
    }

    /// The address family number IPVS uses for it ([`AF_INET`] or [`AF_INET6`]).
    pub fn af(&self) -> u16 {
        if self.is_ipv6() { AF_INET6 } else { AF_INET }
    }
}

impl fmt::Display for ServiceKey {
    /// As `ipvsadm -L -n` shows it: `TCP  10.0.0.1:80`, `FWM  1`, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // ipvsadm's protocol column is `%-4s` and a space.
            ServiceKey::Addr { protocol, addr, port } => {
                write!(f, "{:<4} {}", protocol.name(), AddrPort(*addr, *port))
            }
            ServiceKey::Fwmark { mark, ipv6: false } => write!(f, "FWM  {mark}"),
            ServiceKey::Fwmark { mark, ipv6: true } => write!(f, "FWM  {mark} IPv6"),
        }
    }
}

/// An address and port as ipvsadm prints them: `10.0.0.2:80`, `[2001:db8::2]:80`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrPort(pub IpAddr, pub u16);

impl fmt::Display for AddrPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}
