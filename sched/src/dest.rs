//! A real server of one virtual service, as `struct ip_vs_dest` keeps it.

use core::fmt;
use core::net::IpAddr;

/// Stable handle of a real server within one [`crate::Service`].
///
/// It never changes while the service lives, even when the server is deleted and re-added
/// (the kernel resurrects it from the destination trash with its counters), so connection
/// entries can hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestId(pub u32);

impl DestId {
    /// Index into the service's slab of destinations.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The forwarding method of a real server (`IP_VS_CONN_F_FWD_MASK` values).
///
/// With the `serde` feature it is (de)serialised under the scenario format's words:
/// `NAT`, `Local`, `TUN`, `DR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Forwarding {
    /// NAT, `-m` (code 0): both directions through the director.
    #[cfg_attr(feature = "serde", serde(rename = "NAT"))]
    Masq,
    /// Local node (code 1): the kernel's choice when the real server's address is the
    /// director's own.
    Local,
    /// IP-IP tunnelling, `-i` (code 2).
    #[cfg_attr(feature = "serde", serde(rename = "TUN"))]
    Tunnel,
    /// Direct routing, `-g` (code 3), ipvsadm's default.
    #[cfg_attr(feature = "serde", serde(rename = "DR"))]
    DirectRouting,
}

impl Forwarding {
    /// The kernel's code for the method (netlink `IPVS_DEST_ATTR_FWD_METHOD`).
    pub const fn code(self) -> u32 {
        match self {
            Forwarding::Masq => 0,
            Forwarding::Local => 1,
            Forwarding::Tunnel => 2,
            Forwarding::DirectRouting => 3,
        }
    }

    /// The method with kernel code `c` (`IP_VS_CONN_F_FWD_MASK` bits); `None` for 4
    /// (`IP_VS_CONN_F_BYPASS`, never a real server's) and above.
    pub const fn from_code(c: u32) -> Option<Forwarding> {
        match c {
            0 => Some(Forwarding::Masq),
            1 => Some(Forwarding::Local),
            2 => Some(Forwarding::Tunnel),
            3 => Some(Forwarding::DirectRouting),
            _ => None,
        }
    }

    /// The word `ipvsadm -L` prints in its Forward column.
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            Forwarding::Masq => "Masq",
            Forwarding::Local => "Local",
            Forwarding::Tunnel => "Tunnel",
            Forwarding::DirectRouting => "Route",
        }
    }

    /// The switch `ipvsadm -S` writes for it (`fwd_switch()` in ipvsadm.c): `-m`, `-i`,
    /// `-g`; a local server is written `-g`, as the kernel reports it with no switch of its own.
    pub const fn ipvsadm_switch(self) -> &'static str {
        match self {
            Forwarding::Masq => "-m",
            Forwarding::Tunnel => "-i",
            Forwarding::Local | Forwarding::DirectRouting => "-g",
        }
    }
}

/// The encapsulation of a tunnelled real server (`IPVS_DEST_ATTR_TUN_TYPE`, ipvsadm
/// `--tun-type`; kernel 5.2 and later).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum TunnelType {
    /// IP-in-IP (`IP_VS_CONN_F_TUNNEL_TYPE_IPIP`, 0), the default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (1); needs a `--tun-port`.
    Gue,
    /// GRE (2).
    Gre,
}

impl TunnelType {
    /// The kernel's code.
    pub const fn code(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    /// The type with kernel code `c`.
    pub const fn from_code(c: u8) -> Option<TunnelType> {
        match c {
            0 => Some(TunnelType::Ipip),
            1 => Some(TunnelType::Gue),
            2 => Some(TunnelType::Gre),
            _ => None,
        }
    }

    /// ipvsadm's name: `ipip`, `gue`, `gre`.
    pub const fn name(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }
}

/// A tunnelled real server's encapsulation options (`TUN_TYPE`, `TUN_PORT`,
/// `TUN_FLAGS`); all zero (ipip, no port, no checksum) unless `--tun-*` options say
/// otherwise. The kernel keeps them for every server and uses them only with
/// [`Forwarding::Tunnel`].
///
/// With the `serde` feature it is written as ipvsadm names it, every field optional:
/// `(kind: gue, port: 6080, flags: 1)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Tunnel {
    /// `--tun-type`.
    pub kind: TunnelType,
    /// `--tun-port` (GUE's destination port), host order; 0 = none.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`: [`Tunnel::CSUM`], [`Tunnel::REMCSUM`]; 0 is
    /// `--tun-nocsum`.
    pub flags: u16,
}

impl Tunnel {
    /// `IP_VS_TUNNEL_ENCAP_FLAG_CSUM` (`--tun-csum`).
    pub const CSUM: u16 = 0x1;
    /// `IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM` (`--tun-remcsum`).
    pub const REMCSUM: u16 = 0x2;
}

/// What `ipvsadm -a/-e` (or netlink NEW_DEST/SET_DEST) gives for a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConfig {
    /// Real server address (RIP).
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: Forwarding,
    /// Weight; 0 is quiescent. The kernel rejects values above `i32::MAX`.
    pub weight: u32,
    /// Upper connection threshold `-x` (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold `-y` (0 = derive from the upper one).
    pub l_threshold: u32,
    /// Tunnel options (`--tun-type`, `--tun-port`, `--tun-*csum`).
    pub tunnel: Tunnel,
}

impl DestConfig {
    /// A server with ipvsadm's defaults: weight 1, no thresholds, ipip tunnel options.
    pub const fn new(addr: IpAddr, port: u16, fwd: Forwarding) -> Self {
        DestConfig {
            addr,
            port,
            fwd,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel { kind: TunnelType::Ipip, port: 0, flags: 0 },
        }
    }
}

/// A real server and the state the schedulers read.
#[derive(Clone, Debug)]
pub struct Dest {
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
    pub(crate) fwd: Forwarding,
    /// Kernel `int weight`, always `>= 0`.
    pub(crate) weight: i32,
    /// Latest non-zero weight (set on add even when 0); only mh reads it.
    pub(crate) last_weight: i32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) tunnel: Tunnel,
    /// `IP_VS_DEST_F_AVAILABLE`: linked into the service (false while in the trash).
    pub(crate) available: bool,
    /// `IP_VS_DEST_F_OVERLOAD`, set and cleared only by the threshold machinery.
    pub(crate) overloaded: bool,
    pub(crate) active_conns: u32,
    pub(crate) inactive_conns: u32,
    pub(crate) persist_conns: u32,
}

impl Dest {
    /// Real server address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// Real server port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Forwarding method.
    pub fn fwd(&self) -> Forwarding {
        self.fwd
    }
    /// Tunnel options.
    pub fn tunnel(&self) -> Tunnel {
        self.tunnel
    }
    /// What `ipvsadm -a/-e` (NEW_DEST/SET_DEST) last set, as GET_DEST lists it: an edit
    /// that changes one field sends this with that field changed.
    pub fn config(&self) -> DestConfig {
        DestConfig {
            addr: self.addr,
            port: self.port,
            fwd: self.fwd,
            weight: self.weight(),
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tunnel: self.tunnel,
        }
    }
    /// Current weight.
    pub fn weight(&self) -> u32 {
        self.weight as u32
    }
    /// Latest non-zero weight (what mh builds its table from).
    pub fn last_weight(&self) -> u32 {
        self.last_weight as u32
    }
    /// Upper connection threshold (0 = none).
    pub fn u_threshold(&self) -> u32 {
        self.u_threshold
    }
    /// Lower connection threshold.
    pub fn l_threshold(&self) -> u32 {
        self.l_threshold
    }
    /// Linked into the service's list (false once deleted).
    pub fn is_available(&self) -> bool {
        self.available
    }
    /// The OVERLOAD flag.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }
    /// `ActiveConn` as ipvsadm shows it.
    pub fn active_conns(&self) -> u32 {
        self.active_conns
    }
    /// `InActConn` as ipvsadm shows it.
    pub fn inactive_conns(&self) -> u32 {
        self.inactive_conns
    }
    /// Persistence templates bound to this server.
    pub fn persist_conns(&self) -> u32 {
        self.persist_conns
    }

    /// Usable by every scheduler's "pick" test: not overloaded and weight > 0.
    #[inline]
    pub(crate) fn usable(&self) -> bool {
        !self.overloaded && self.weight > 0
    }

    /// Mirrors `ip_vs_dest_conn_overhead()`: `(activeconns << 8) + inactconns`, in C `int`.
    #[inline]
    pub(crate) fn conn_overhead(&self) -> i32 {
        (self.active_conns as i32).wrapping_shl(8).wrapping_add(self.inactive_conns as i32)
    }

    /// `activeconns + inactconns`, as `ip_vs_dest_totalconns()`.
    pub(crate) fn total_conns(&self) -> u32 {
        self.active_conns.wrapping_add(self.inactive_conns)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::fmt_addr_port(f, self.addr, self.port)
    }
}
