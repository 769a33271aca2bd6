//! Vocabulary shared by the wire codec, the configuration grammar and the state machines.

use core::fmt;
use core::net::IpAddr;

/// A virtual service's transport protocol, as `ipvsadm -t/-u` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// `-t`, IP protocol 6.
    Tcp,
    /// `-u`, IP protocol 17.
    Udp,
    /// `--sctp-service`, IP protocol 132.
    Sctp,
}

impl Protocol {
    /// The IP protocol number (what IPVS's generic-netlink `PROTOCOL` attribute carries).
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol with IP protocol number `n`, if it is one IPVS serves.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// How the director forwards to a real server (`ipvsadm -m/-g/-i`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Forwarding {
    /// `-m`, LVS-NAT (masquerading).
    Nat,
    /// `-g`, direct routing (gatewaying).
    DirectRouting,
    /// `-i`, IP-IP tunnelling.
    Tunnel,
}

impl Forwarding {
    /// IPVS's `IP_VS_CONN_F_FWD_MASK` value: 0 masq, 2 tunnel, 3 droute (1 is local).
    pub const fn ipvs_code(self) -> u32 {
        match self {
            Forwarding::Nat => 0,
            Forwarding::Tunnel => 2,
            Forwarding::DirectRouting => 3,
        }
    }

    /// The `ipvsadm` option that selects it.
    pub const fn ipvsadm_flag(self) -> &'static str {
        match self {
            Forwarding::Nat => "-m",
            Forwarding::DirectRouting => "-g",
            Forwarding::Tunnel => "-i",
        }
    }

    /// `ipvsadm -L`'s name for it: Masq, Route or Tunnel.
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            Forwarding::Nat => "Masq",
            Forwarding::DirectRouting => "Route",
            Forwarding::Tunnel => "Tunnel",
        }
    }
}

impl fmt::Display for Forwarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forwarding::Nat => "NAT",
            Forwarding::DirectRouting => "DR",
            Forwarding::Tunnel => "TUN",
        })
    }
}

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
    /// How the director should forward to this real server.
    pub forwarding: Forwarding,
    /// The real server's address in the director's table; by default the address the
    /// agent's connection comes from.
    pub address: Option<IpAddr>,
}
