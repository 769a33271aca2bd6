//! The IPVS connection synchronisation daemon (`ip_vs_sync.c`; `../ipvs/SPEC.md` §4):
//! the records a master director sends and the kernel's version 0 and 1 wire formats
//! (`wire`: [`Sender`], [`decode`]).

mod wire;

pub use self::wire::{DecodeError, Header, MAX_LEN, Sender, decode, parse_header};

use std::net::IpAddr;

use super::ConnState;

/// Connection flags (`IP_VS_CONN_F_*`) as sync records carry them.
pub mod flags {
    /// Forwarding method: 0 NAT, 1 local, 2 tunnel, 3 direct routing, 4 bypass.
    pub const FWD_MASK: u32 = 0x0007;
    /// Entry created by sync (set by the receiver).
    pub const SYNC: u32 = 0x0020;
    /// Hashed entry (never sent).
    pub const HASHED: u32 = 0x0040;
    /// Replies do not pass the director (DR, TUN).
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted in InActConn (not established).
    pub const INACTIVE: u32 = 0x0100;
    /// Output sequence adjustment.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Input sequence adjustment.
    pub const IN_SEQ: u32 = 0x0400;
    /// Both sequence-adjustment bits.
    pub const SEQ_MASK: u32 = 0x0600;
    /// Client port not known yet (FTP).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// A one-packet entry (never sent).
    pub const ONE_PACKET: u32 = 0x2000;
}

/// `IPPROTO_IP`: the protocol of a firewall-mark service's template.
pub const IPPROTO_IP: u8 = 0;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u8 = 132;

/// What a version 1 sync record carries for one connection entry or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol number: [`IPPROTO_TCP`], [`IPPROTO_UDP`], [`IPPROTO_SCTP`]; a
    /// firewall-mark service's template has [`IPPROTO_IP`].
    pub protocol: u8,
    /// Client address (a template: masked with the persistence granularity).
    pub caddr: IpAddr,
    /// Client port (a template: 0).
    pub cport: u16,
    /// Virtual address (a firewall-mark template: the mark, as an address).
    pub vaddr: IpAddr,
    /// Virtual port (a firewall-mark template: 0).
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port (a firewall-mark template: 0).
    pub dport: u16,
    /// Firewall mark, 0 if none.
    pub fwmark: u32,
    /// Protocol state; [`ConnState::Template`] for a template (its TEMPLATE flag is sent
    /// from this).
    pub state: ConnState,
    /// Kernel flags ([`flags`]): forwarding method, NOOUTPUT, INACTIVE, TEMPLATE.
    pub flags: u32,
    /// The entry's current timeout [s] (a template: its persistence timeout, or 60 s once
    /// it outlived it controlling connections); 0 in version 0 records, whose receiver
    /// uses its own state timeout (templates 180 s).
    pub timeout: u32,
}
