//! IPVS generic-netlink messages as bytes: encoders that append requests to a buffer and
//! decoders that walk replies. Pure: no socket, no clock; decoders never panic on any
//! input (every length is checked) and report malformed bytes as [`Error::Other`].
//!
//! Layout (SPEC.md section 6, `include/uapi/linux/ip_vs.h`):
//!
//! ```text
//! nlmsghdr  { u32 len; u16 type (family id); u16 flags; u32 seq; u32 pid }   16 bytes
//! genlmsghdr{ u8 cmd; u8 version = 1; u16 reserved }                           4 bytes
//! attributes: nlattr { u16 len (header included); u16 type } + payload, padded to 4
//! ```
//!
//! Integers are host order except `PORT`/`TUN_PORT` (network order) and an IPv4 service's
//! `NETMASK` (network order; an IPv6 one is a prefix length); `ADDR` is a 16-byte
//! `nf_inet_addr` (IPv4 in the first 4 bytes). The values are `lvs_ipvs`'s types
//! ([`Protocol::number`], [`Forwarding::code`], [`SvcFlags`], [`Tunnel`]); only the
//! byte order is converted here.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::{
    AF_INET, AF_INET6, DestConfig, Forwarding, PersistenceEngine, Protocol, Rates, SchedulerKind,
    ServiceConfig, Stats, SvcFlags, Tunnel, TunnelType,
};
use lvs_sched::Duration;

use lvs_ipvs::ipvsadm::default_netmask;

use crate::ipvs::{DestRow, Error, ServiceKey, ServiceRow};

/// `nlmsghdr` length.
pub const NLMSG_HDRLEN: usize = 16;
/// `genlmsghdr` length.
pub const GENL_HDRLEN: usize = 4;
/// `nlattr` header length.
pub const NLA_HDRLEN: usize = 4;

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR` (also the ACK, with error 0).
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: part of a multi-part reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`: ask for an ACK (an `NLMSG_ERROR` with error 0).
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// The attribute type bits (`NLA_TYPE_MASK`).
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// `GENL_ID_CTRL`: the generic-netlink controller's family id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `IPVS_CMD_*`.
#[allow(missing_docs)]
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
}

/// `IPVS_CMD_ATTR_*` (top level).
#[allow(missing_docs)]
pub mod attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
}

/// `IPVS_SVC_ATTR_*`.
#[allow(missing_docs)]
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// `IPVS_DEST_ATTR_*`.
#[allow(missing_docs)]
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// `IPVS_STATS_ATTR_*`, inside a STATS (u32 counts and rates, u64 bytes) or STATS64
/// (all u64) nest.
#[allow(missing_docs)]
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
    pub const CPS: u16 = 6;
    pub const INPPS: u16 = 7;
    pub const OUTPPS: u16 = 8;
    pub const INBPS: u16 = 9;
    pub const OUTBPS: u16 = 10;
}

/// `struct ip_vs_flags`' mask for a SET_SERVICE/NEW_SERVICE that replaces every flag
/// (libipvs sends `~0`).
pub const SVC_FLAGS_MASK_ALL: u32 = u32::MAX;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn malformed(what: &str) -> Error {
    Error::Other(format!("malformed netlink reply: {what}"))
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Appends one message to a buffer: header first, attributes, then [`MsgWriter::finish`]
/// writes the length. Several messages may share a buffer (one datagram).
pub struct MsgWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> MsgWriter<'a> {
    /// Starts a generic-netlink message for family `ty` with command `cmd`.
    pub fn begin(buf: &'a mut Vec<u8>, ty: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> MsgWriter<'a> {
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills ours in
        buf.extend_from_slice(&[cmd, version, 0, 0]);
        MsgWriter { buf, start }
    }

    /// Appends an attribute with a raw payload, padded to 4 bytes.
    pub fn put(&mut self, ty: u16, payload: &[u8]) {
        let len = NLA_HDRLEN + payload.len();
        let len16 = u16::try_from(len).expect("a netlink attribute is shorter than 64 KiB");
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(self.buf.len() + align4(len) - len, 0);
    }

    /// Appends a u8 attribute.
    pub fn put_u8(&mut self, ty: u16, v: u8) {
        self.put(ty, &[v]);
    }

    /// Appends a host-order u16 attribute.
    pub fn put_u16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_ne_bytes());
    }

    /// Appends a network-order u16 attribute (ports).
    pub fn put_be16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_be_bytes());
    }

    /// Appends a host-order u32 attribute.
    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_ne_bytes());
    }

    /// Opens a nested attribute; close it with [`MsgWriter::nest_end`].
    pub fn nest_start(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Closes the nested attribute opened at `at`.
    pub fn nest_end(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).expect("a netlink nest is shorter than 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Writes the message length.
    pub fn finish(self) {
        let len =
            u32::try_from(self.buf.len() - self.start).expect("a netlink message is shorter than 4 GiB");
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// The 16-byte `nf_inet_addr` of an address.
pub fn inet_addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

fn af_of(addr: IpAddr) -> u16 {
    if addr.is_ipv6() { AF_INET6 } else { AF_INET }
}

/// Appends the SERVICE nest with the identifying fields only: AF, then FWMARK or
/// PROTOCOL + ADDR + PORT.
fn put_service_key(w: &mut MsgWriter<'_>, svc: &ServiceKey) {
    let nest = w.nest_start(attr::SERVICE);
    put_service_key_attrs(w, svc);
    w.nest_end(nest);
}

/// The identifying attributes of a service, inside its nest.
fn put_service_key_attrs(w: &mut MsgWriter<'_>, svc: &ServiceKey) {
    w.put_u16(svc_attr::AF, svc.af());
    match *svc {
        ServiceKey::Addr { protocol, addr, port } => {
            w.put_u16(svc_attr::PROTOCOL, u16::from(protocol.number()));
            w.put(svc_attr::ADDR, &inet_addr_bytes(addr));
            w.put_be16(svc_attr::PORT, port);
        }
        ServiceKey::Fwmark { mark, .. } => w.put_u32(svc_attr::FWMARK, mark),
    }
}

/// Appends NEW_SERVICE ([`cmd::NEW_SERVICE`]) or SET_SERVICE ([`cmd::SET_SERVICE`]) with
/// the full entry the kernel requires for both (SCHED_NAME, FLAGS, TIMEOUT, NETMASK, or
/// EINVAL): `flags` with the mask [`SVC_FLAGS_MASK_ALL`], so that every flag is replaced;
/// TIMEOUT the persistence in seconds (0 without), saturated at `u32::MAX`; NETMASK in
/// network order for IPv4, the prefix length for IPv6. The caller passes a config as
/// `normalize_service` makes it; a persistence engine is never sent.
pub fn encode_service(
    buf: &mut Vec<u8>,
    family: u16,
    seq: u32,
    command: u8,
    svc: &ServiceKey,
    c: &ServiceConfig,
) {
    let mut w = MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_ACK, seq, command, IPVS_GENL_VERSION);
    let nest = w.nest_start(attr::SERVICE);
    put_service_key_attrs(&mut w, svc);
    let name = c.scheduler.to_string();
    let mut z = Vec::with_capacity(name.len() + 1);
    z.extend_from_slice(name.as_bytes());
    z.push(0);
    w.put(svc_attr::SCHED_NAME, &z);
    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&c.flags.0.to_ne_bytes());
    flags[4..].copy_from_slice(&SVC_FLAGS_MASK_ALL.to_ne_bytes());
    w.put(svc_attr::FLAGS, &flags);
    let timeout_s = c.persistence.map_or(0, |p| p.as_nanos() / 1_000_000_000);
    w.put_u32(svc_attr::TIMEOUT, u32::try_from(timeout_s).unwrap_or(u32::MAX));
    if svc.is_ipv6() {
        w.put_u32(svc_attr::NETMASK, c.netmask);
    } else {
        w.put(svc_attr::NETMASK, &c.netmask.to_be_bytes());
    }
    w.nest_end(nest);
    w.finish();
}

/// Appends DEL_SERVICE: the service's identifying fields.
pub fn encode_del_service(buf: &mut Vec<u8>, family: u16, seq: u32, svc: &ServiceKey) {
    let mut w =
        MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd::DEL_SERVICE, IPVS_GENL_VERSION);
    put_service_key(&mut w, svc);
    w.finish();
}

/// Appends `CTRL_CMD_GETFAMILY` for `name`, with an ACK.
pub fn encode_get_family(buf: &mut Vec<u8>, seq: u32, name: &str) {
    let mut w = MsgWriter::begin(buf, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, CTRL_CMD_GETFAMILY, 1);
    let mut z = Vec::with_capacity(name.len() + 1);
    z.extend_from_slice(name.as_bytes());
    z.push(0);
    w.put(CTRL_ATTR_FAMILY_NAME, &z);
    w.finish();
}

/// Appends a GET_SERVICE dump (every service).
pub fn encode_service_dump(buf: &mut Vec<u8>, family: u16, seq: u32) {
    MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_DUMP, seq, cmd::GET_SERVICE, IPVS_GENL_VERSION)
        .finish();
}

/// Appends a GET_SERVICE for one service (answered by one NEW_SERVICE, or ESRCH), with an
/// ACK.
pub fn encode_get_service(buf: &mut Vec<u8>, family: u16, seq: u32, svc: &ServiceKey) {
    let mut w =
        MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd::GET_SERVICE, IPVS_GENL_VERSION);
    put_service_key(&mut w, svc);
    w.finish();
}

/// Appends a GET_DEST dump of one service.
pub fn encode_dest_dump(buf: &mut Vec<u8>, family: u16, seq: u32, svc: &ServiceKey) {
    let mut w =
        MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_DUMP, seq, cmd::GET_DEST, IPVS_GENL_VERSION);
    put_service_key(&mut w, svc);
    w.finish();
}

/// Appends NEW_DEST (`command` = [`cmd::NEW_DEST`]) or SET_DEST ([`cmd::SET_DEST`]) with
/// every field of `rs`: SET_DEST replaces them all, so nothing is left to a default.
pub fn encode_dest(buf: &mut Vec<u8>, family: u16, seq: u32, command: u8, svc: &ServiceKey, rs: &DestConfig) {
    encode_dest_flags(buf, family, seq, NLM_F_REQUEST | NLM_F_ACK, command, svc, rs);
}

/// [`encode_dest`] with the netlink flags given: a batch asks for an ACK on its last
/// message only, since the kernel answers a refusal whether or not one is asked for.
pub fn encode_dest_flags(
    buf: &mut Vec<u8>,
    family: u16,
    seq: u32,
    flags: u16,
    command: u8,
    svc: &ServiceKey,
    rs: &DestConfig,
) {
    let mut w = MsgWriter::begin(buf, family, flags, seq, command, IPVS_GENL_VERSION);
    put_service_key(&mut w, svc);
    let nest = w.nest_start(attr::DEST);
    w.put(dest_attr::ADDR, &inet_addr_bytes(rs.addr));
    w.put_be16(dest_attr::PORT, rs.port);
    w.put_u32(dest_attr::FWD_METHOD, rs.fwd.code());
    w.put_u32(dest_attr::WEIGHT, rs.weight);
    w.put_u32(dest_attr::U_THRESH, rs.u_threshold);
    w.put_u32(dest_attr::L_THRESH, rs.l_threshold);
    w.put_u16(dest_attr::ADDR_FAMILY, af_of(rs.addr));
    w.put_u8(dest_attr::TUN_TYPE, rs.tunnel.kind.code());
    w.put_be16(dest_attr::TUN_PORT, rs.tunnel.port);
    w.put_u16(dest_attr::TUN_FLAGS, rs.tunnel.flags);
    w.nest_end(nest);
    w.finish();
}

/// Appends DEL_DEST: the service and the real server's ADDR, PORT and ADDR_FAMILY.
pub fn encode_del_dest(buf: &mut Vec<u8>, family: u16, seq: u32, svc: &ServiceKey, addr: IpAddr, port: u16) {
    let mut w =
        MsgWriter::begin(buf, family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd::DEL_DEST, IPVS_GENL_VERSION);
    put_service_key(&mut w, svc);
    let nest = w.nest_start(attr::DEST);
    w.put(dest_attr::ADDR, &inet_addr_bytes(addr));
    w.put_be16(dest_attr::PORT, port);
    w.put_u16(dest_attr::ADDR_FAMILY, af_of(addr));
    w.nest_end(nest);
    w.finish();
}

/// SET_DEST as one message (see [`encode_dest`]).
pub fn build_set_dest(family: u16, seq: u32, svc: &ServiceKey, rs: &DestConfig) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_dest(&mut buf, family, seq, cmd::SET_DEST, svc, rs);
    buf
}

/// DEL_DEST as one message (see [`encode_del_dest`]).
pub fn build_del_dest(family: u16, seq: u32, svc: &ServiceKey, addr: IpAddr, port: u16) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_del_dest(&mut buf, family, seq, svc, addr, port);
    buf
}

// ---------------------------------------------------------------------------------------
// Decoding

/// One netlink message of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: a family id, or `NLMSG_ERROR`/`NLMSG_DONE`/...
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// What follows the header.
    pub payload: &'a [u8],
}

/// The messages of a datagram, each length checked.
pub struct NlMsgIter<'a> {
    rest: &'a [u8],
}

impl<'a> NlMsgIter<'a> {
    /// Walks `bytes`, one received datagram.
    pub fn new(bytes: &'a [u8]) -> NlMsgIter<'a> {
        NlMsgIter { rest: bytes }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Iterator for NlMsgIter<'a> {
    type Item = Result<NlMsg<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let (Some(len), Some(ty), Some(flags), Some(seq)) =
            (u32_at(b, 0), u16_at(b, 4), u16_at(b, 6), u32_at(b, 8))
        else {
            self.rest = &[];
            return Some(Err(malformed("truncated message header")));
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(malformed("bad message length")));
        }
        let payload = &b[NLMSG_HDRLEN..len];
        self.rest = b.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(NlMsg { ty, flags, seq, payload }))
    }
}

/// The attributes in a buffer, each length checked; types are masked with
/// [`NLA_TYPE_MASK`].
pub struct AttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> AttrIter<'a> {
    /// Walks the attributes in `bytes`.
    pub fn new(bytes: &'a [u8]) -> AttrIter<'a> {
        AttrIter { rest: bytes }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let (Some(len), Some(ty)) = (u16_at(b, 0), u16_at(b, 2)) else {
            self.rest = &[];
            return Some(Err(malformed("truncated attribute header")));
        };
        let len = usize::from(len);
        if len < NLA_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(malformed("bad attribute length")));
        }
        self.rest = b.get(align4(len)..).unwrap_or(&[]);
        Some(Ok((ty & NLA_TYPE_MASK, &b[NLA_HDRLEN..len])))
    }
}

/// Splits a generic-netlink payload into its command and attributes.
pub fn parse_genl(payload: &[u8]) -> Result<(u8, &[u8]), Error> {
    match payload {
        [cmd, _version, _, _, attrs @ ..] => Ok((*cmd, attrs)),
        _ => Err(malformed("truncated generic netlink header")),
    }
}

fn get_u8(v: &[u8], what: &str) -> Result<u8, Error> {
    v.first().copied().ok_or_else(|| malformed(what))
}

fn get_u16(v: &[u8], what: &str) -> Result<u16, Error> {
    u16_at(v, 0).ok_or_else(|| malformed(what))
}

fn get_be16(v: &[u8], what: &str) -> Result<u16, Error> {
    get_u16(v, what).map(u16::from_be)
}

fn get_u32(v: &[u8], what: &str) -> Result<u32, Error> {
    u32_at(v, 0).ok_or_else(|| malformed(what))
}

fn get_addr(v: &[u8], af: u16) -> Result<IpAddr, Error> {
    match af {
        AF_INET => {
            let o: [u8; 4] =
                v.get(..4).and_then(|s| s.try_into().ok()).ok_or_else(|| malformed("short ADDR"))?;
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        AF_INET6 => {
            let o: [u8; 16] =
                v.get(..16).and_then(|s| s.try_into().ok()).ok_or_else(|| malformed("short ADDR"))?;
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => Err(malformed("unknown address family")),
    }
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply's attributes.
pub fn parse_family_id(attrs: &[u8]) -> Result<u16, Error> {
    for a in AttrIter::new(attrs) {
        let (ty, v) = a?;
        if ty == CTRL_ATTR_FAMILY_ID {
            return get_u16(v, "short CTRL_ATTR_FAMILY_ID");
        }
    }
    Err(malformed("no CTRL_ATTR_FAMILY_ID"))
}

/// The payload of the top-level attribute `want` (a SERVICE or DEST nest).
pub fn find_attr(attrs: &[u8], want: u16) -> Result<&[u8], Error> {
    for a in AttrIter::new(attrs) {
        let (ty, v) = a?;
        if ty == want {
            return Ok(v);
        }
    }
    Err(malformed("missing SERVICE/DEST nest"))
}

/// A service from the contents of a SERVICE nest (a NEW_SERVICE reply). The kernel-internal
/// HASHED flag is cleared; the persistence timeout counts only with the PERSISTENT flag; an
/// IPv4 netmask is turned to host order. A scheduler or persistence engine lvs-ipvs does
/// not know is an error naming it.
pub fn parse_service_attrs(nest: &[u8]) -> Result<(ServiceKey, ServiceConfig), Error> {
    let (mut af, mut protocol, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
    let (mut scheduler, mut flags, mut timeout_s, mut netmask, mut pe) = (None, 0, 0, None, None);
    for a in AttrIter::new(nest) {
        let (ty, v) = a?;
        match ty {
            svc_attr::AF => af = Some(get_u16(v, "short AF")?),
            svc_attr::PROTOCOL => protocol = Some(get_u16(v, "short PROTOCOL")?),
            svc_attr::ADDR => addr = Some(v),
            svc_attr::PORT => port = Some(get_be16(v, "short PORT")?),
            svc_attr::FWMARK => fwmark = Some(get_u32(v, "short FWMARK")?),
            svc_attr::SCHED_NAME => scheduler = Some(v),
            svc_attr::FLAGS => flags = get_u32(v, "short FLAGS")? & !SvcFlags::HASHED,
            svc_attr::TIMEOUT => timeout_s = get_u32(v, "short TIMEOUT")?,
            svc_attr::NETMASK => netmask = Some(get_u32(v, "short NETMASK")?),
            svc_attr::PE_NAME => pe = Some(v),
            _ => {}
        }
    }
    let af = af.ok_or_else(|| malformed("service without AF"))?;
    if af != AF_INET && af != AF_INET6 {
        return Err(malformed("service of an unknown address family"));
    }
    let key = match fwmark {
        Some(mark) if mark != 0 => ServiceKey::Fwmark { mark, ipv6: af == AF_INET6 },
        _ => {
            let (Some(p), Some(addr), Some(port)) = (protocol, addr, port) else {
                return Err(malformed("service without FWMARK nor PROTOCOL/ADDR/PORT"));
            };
            let protocol = u8::try_from(p)
                .ok()
                .and_then(Protocol::from_number)
                .ok_or_else(|| malformed("service of an unknown protocol"))?;
            ServiceKey::Addr { protocol, addr: get_addr(addr, af)?, port }
        }
    };
    let name = scheduler.ok_or_else(|| malformed("service without SCHED_NAME"))?;
    let scheduler = known(&key, "scheduler", name, |n| n.parse::<SchedulerKind>().ok())?;
    let pe =
        pe.map(|name| known(&key, "persistence engine", name, PersistenceEngine::from_name)).transpose()?;
    let flags = SvcFlags(flags);
    let persistence = flags.has(SvcFlags::PERSISTENT).then(|| Duration::from_secs(u64::from(timeout_s)));
    let netmask = match netmask {
        None => default_netmask(&key),
        Some(m) if af == AF_INET => u32::from_be(m),
        Some(plen) => plen,
    };
    Ok((key, ServiceConfig { scheduler, flags, persistence, netmask, pe }))
}

/// A service with its traffic from the contents of a SERVICE nest: as
/// [`parse_service_attrs`], plus STATS64 (or, from kernels before 4.1, STATS).
pub fn parse_service_row(nest: &[u8]) -> Result<ServiceRow, Error> {
    let (key, config) = parse_service_attrs(nest)?;
    let (stats, rates) = parse_traffic(nest, svc_attr::STATS, svc_attr::STATS64)?;
    Ok(ServiceRow { key, config, stats, rates })
}

/// The counters and rates in a SERVICE or DEST nest: the STATS64 nest (`stats64`) if
/// there is one, else the 32-bit STATS nest (`stats32`), else zeros.
pub fn parse_traffic(nest: &[u8], stats32: u16, stats64: u16) -> Result<(Stats, Rates), Error> {
    let (mut s32, mut s64) = (None, None);
    for a in AttrIter::new(nest) {
        let (ty, v) = a?;
        if ty == stats64 {
            s64 = Some(v);
        } else if ty == stats32 {
            s32 = Some(v);
        }
    }
    s64.or(s32).map_or(Ok((Stats::default(), Rates::default())), parse_stats)
}

/// The contents of a STATS or STATS64 nest. Each value is read by its length (4 bytes:
/// u32, 8: u64), so both nests read alike; unknown attributes (PAD) are skipped.
pub fn parse_stats(nest: &[u8]) -> Result<(Stats, Rates), Error> {
    let mut v = [0u64; 10];
    for a in AttrIter::new(nest) {
        let (ty, val) = a?;
        if (stats_attr::CONNS..=stats_attr::OUTBPS).contains(&ty) {
            v[usize::from(ty - 1)] = match val.len() {
                4 => u64::from(get_u32(val, "short stats value")?),
                n if n >= 8 => u64::from_ne_bytes(val[..8].try_into().expect("8 bytes")),
                _ => return Err(malformed("stats value of a bad length")),
            };
        }
    }
    let [conns, inpkts, outpkts, inbytes, outbytes, cps, inpps, outpps, inbps, outbps] = v;
    Ok((Stats { conns, inpkts, outpkts, inbytes, outbytes }, Rates { cps, inpps, outpps, inbps, outbps }))
}

/// A NUL-terminated name (SCHED_NAME, PE_NAME) that `parse` knows, or an error naming it.
fn known<T>(key: &ServiceKey, what: &str, v: &[u8], parse: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
    let name = v.split(|&c| c == 0).next().unwrap_or(&[]);
    core::str::from_utf8(name).ok().and_then(parse).ok_or_else(|| {
        let name = String::from_utf8_lossy(name);
        Error::Other(format!(
            "the kernel's virtual service {key} has the {what} {name:?}, which lvsim does not know"
        ))
    })
}

/// A real server from the contents of a DEST nest (a NEW_DEST reply to GET_DEST), with its
/// traffic (STATS64, or STATS from kernels before 4.1).
/// `service_af` is the address family when the reply has no ADDR_FAMILY (older kernels).
/// A forwarding method or tunnel type the kernel does not define is an error.
pub fn parse_dest_attrs(nest: &[u8], service_af: u16) -> Result<DestRow, Error> {
    let (mut addr, mut port, mut fwd, mut weight, mut af) = (None, None, None, None, None);
    let (mut u_threshold, mut l_threshold, mut active_conns, mut inactive_conns) = (0, 0, 0, 0);
    let (mut tun_type, mut tunnel) = (0, Tunnel::default());
    for a in AttrIter::new(nest) {
        let (ty, v) = a?;
        match ty {
            dest_attr::ADDR => addr = Some(v),
            dest_attr::PORT => port = Some(get_be16(v, "short PORT")?),
            dest_attr::FWD_METHOD => fwd = Some(get_u32(v, "short FWD_METHOD")?),
            dest_attr::WEIGHT => weight = Some(get_u32(v, "short WEIGHT")?),
            dest_attr::U_THRESH => u_threshold = get_u32(v, "short U_THRESH")?,
            dest_attr::L_THRESH => l_threshold = get_u32(v, "short L_THRESH")?,
            dest_attr::ACTIVE_CONNS => active_conns = get_u32(v, "short ACTIVE_CONNS")?,
            dest_attr::INACT_CONNS => inactive_conns = get_u32(v, "short INACT_CONNS")?,
            dest_attr::ADDR_FAMILY => af = Some(get_u16(v, "short ADDR_FAMILY")?),
            dest_attr::TUN_TYPE => tun_type = get_u8(v, "short TUN_TYPE")?,
            dest_attr::TUN_PORT => tunnel.port = get_be16(v, "short TUN_PORT")?,
            dest_attr::TUN_FLAGS => tunnel.flags = get_u16(v, "short TUN_FLAGS")?,
            _ => {}
        }
    }
    let (Some(addr), Some(port), Some(fwd), Some(weight)) = (addr, port, fwd, weight) else {
        return Err(malformed("real server without ADDR/PORT/FWD_METHOD/WEIGHT"));
    };
    let af = match af {
        Some(0) | None => service_af,
        Some(af) => af,
    };
    let fwd = Forwarding::from_code(fwd).ok_or_else(|| malformed("unknown FWD_METHOD"))?;
    tunnel.kind = TunnelType::from_code(tun_type).ok_or_else(|| malformed("unknown TUN_TYPE"))?;
    let config =
        DestConfig { addr: get_addr(addr, af)?, port, fwd, weight, u_threshold, l_threshold, tunnel };
    let (stats, rates) = parse_traffic(nest, dest_attr::STATS, dest_attr::STATS64)?;
    Ok(DestRow::with_traffic(config, active_conns, inactive_conns, stats, rates))
}

/// What one reply message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A generic-netlink message of the family: its command and attributes.
    Data {
        /// `genlmsghdr.cmd`.
        cmd: u8,
        /// The attributes after the generic header.
        attrs: &'a [u8],
    },
    /// `NLMSG_ERROR`: 0 is an ACK, else the positive errno.
    Ack {
        /// Positive errno, 0 for success.
        errno: i32,
    },
    /// `NLMSG_DONE`: the end of a dump; a dump that failed carries the positive errno.
    Done {
        /// Positive errno, 0 for success.
        errno: i32,
    },
}

/// Decodes every message of a received datagram and hands each, with its sequence number,
/// to `f`. Messages of other families than `family` (and `NLMSG_OVERRUN`) are errors;
/// `NLMSG_NOOP` is skipped.
pub fn for_each_reply<'a>(
    datagram: &'a [u8],
    family: u16,
    mut f: impl FnMut(u32, Reply<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    for m in NlMsgIter::new(datagram) {
        let m = m?;
        let reply = match m.ty {
            NLMSG_NOOP => continue,
            NLMSG_ERROR => Reply::Ack { errno: errno_of(m.payload, "short NLMSG_ERROR")? },
            NLMSG_DONE if m.payload.len() < 4 => Reply::Done { errno: 0 },
            NLMSG_DONE => Reply::Done { errno: errno_of(m.payload, "short NLMSG_DONE")? },
            NLMSG_OVERRUN => return Err(malformed("NLMSG_OVERRUN")),
            ty if ty == family => {
                let (cmd, attrs) = parse_genl(m.payload)?;
                Reply::Data { cmd, attrs }
            }
            _ => return Err(malformed("a message of an unexpected type")),
        };
        f(m.seq, reply)?;
    }
    Ok(())
}

/// The positive errno in an `NLMSG_ERROR`/`NLMSG_DONE` payload (`int error`, negative;
/// a positive value, which the kernel never sends, is taken as it is).
fn errno_of(payload: &[u8], what: &str) -> Result<i32, Error> {
    let e = get_u32(payload, what)? as i32;
    Ok(if e < 0 { e.checked_neg().unwrap_or(i32::MAX) } else { e })
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
