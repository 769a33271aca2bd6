//! Sync messages on the wire (`ip_vs_sync.c`; SPEC §4), all fields in network order:
//!
//! ```text
//! version 1 header (8):  u8 reserved=0 | u8 syncid | be16 size | u8 nr_conns | s8 version=1 | u16 spare=0
//!   conn, IPv4 (36):     u8 type=0 | u8 protocol | be16 ver_size (0 << 12 | 36) | be32 flags |
//!                        be16 state | be16 cport | be16 vport | be16 dport | be32 fwmark |
//!                        be32 timeout [s] | be32 caddr | be32 vaddr | be32 daddr
//!   conn, IPv6 (72):     the same with type=1 and three 16-byte addresses
//!                        [options {u8 type, u8 len, data}], each conn padded to 4 bytes
//! version 0 header (4):  u8 nr_conns | u8 syncid | be16 size
//!   conn (24):           u8 reserved | u8 protocol | be16 cport | be16 vport | be16 dport |
//!                        be32 caddr | be32 vaddr | be32 daddr | be16 flags | be16 state
//!                        [+ 24 bytes of sequence data when IN_SEQ/OUT_SEQ]
//! ```
//!
//! A master appends records to its current buffer and queues the buffer when the next
//! record does not fit in `max_len` bytes ([`Sender::push`]): (1472 − 8) / 36 = 40 IPv4
//! records per version 1 message, (1472 − 4) / 24 = 61 per version 0 one. A partly
//! filled buffer goes 2 s after its first use ([`Sender::flush`]; the kernel's thread
//! checks every 100 ms and sends queued buffers within 20 ms, which the link's latency
//! stands for here). Records here carry no options, so version 1 needs no padding.
//!
//! [`decode`] mirrors `ip_vs_process_message()`: a message whose size field is not its
//! length, or with a record running past its end, of an unknown record version or type,
//! or with a malformed option, is dropped whole (the kernel keeps the records before the
//! bad one); a record of an unknown protocol, of a state its protocol lacks, with an
//! unknown mandatory option or with persistence-engine data is skipped. Never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_sched::{Duration, Time};

use super::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use super::{SyncConn, flags};
use crate::ConnState;
use crate::sync::SyncConfig;
use crate::tcp::TcpState;

/// Largest message a master sends: 65535 − 28 (IPv4 and UDP headers), as the kernel
/// clamps `--sync-maxlen`.
pub const MAX_LEN: usize = 65535 - 28;

const HEADER_V0: usize = 4;
const HEADER_V1: usize = 8;
const CONN_V0: usize = 24;
const CONN_V4: usize = 36;
const CONN_V6: usize = 72;
/// Version 0's sequence options: two `ip_vs_seq` of three 32-bit words.
const SEQ_OPTIONS: usize = 24;
/// Option types (`IPVS_OPT_*`); `OPT_F_PARAM` marks an optional one.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_PARAM: u8 = 0x40;
/// `IP_VS_PENAME_MAXLEN`.
const PE_NAME_MAXLEN: usize = 16;

/// A sync message's header, as a receiver reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 1 when `reserved == 0 && version == 1 && spare == 0` (8-byte header), else 0.
    pub version: u8,
    /// The master's sync id (a backup with a non-zero id ignores the others).
    pub syncid: u8,
    /// Records announced.
    pub nr_conns: u8,
    /// Total size \[bytes\], equal to the datagram's length.
    pub size: u16,
}

/// Why a received message was dropped whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than a version 0 header.
    #[error("sync message of {len} bytes is shorter than a header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The size field is not the datagram's length.
    #[error("sync message size field {size} but {len} bytes")]
    SizeMismatch {
        /// The size field.
        size: u16,
        /// Datagram length.
        len: usize,
    },
    /// A record runs past the end of the message.
    #[error("sync record {index} runs past the end of the message")]
    Truncated {
        /// The record's index.
        index: usize,
    },
    /// A version 1 record of another record version.
    #[error("sync record {index} has version {version}")]
    ConnVersion {
        /// The record's index.
        index: usize,
        /// Its version (`ver_size >> 12`).
        version: u8,
    },
    /// A version 1 record of an unknown type.
    #[error("sync record {index} has type {ty:#04x}")]
    ConnType {
        /// The record's index.
        index: usize,
        /// Its type byte.
        ty: u8,
    },
    /// A version 1 record's size is below its fixed part.
    #[error("sync record {index} has size {size}, below its fixed part")]
    ConnSize {
        /// The record's index.
        index: usize,
        /// Its size field.
        size: usize,
    },
    /// A version 1 record's option is malformed (empty, too long, repeated).
    #[error("sync record {index} has a malformed option")]
    BadOption {
        /// The record's index.
        index: usize,
    },
}

/// One master's message buffer (`ms->sync_buff`): records are appended as the table
/// decides on them, and whole messages come out.
///
/// Call order: [`Sender::push`] each record of [`crate::Ipvs::take_synced`] and send
/// what it returns; at [`Sender::next_flush`], [`Sender::flush`] and send what it returns.
#[derive(Clone, Debug)]
pub struct Sender {
    version: u8,
    syncid: u8,
    max_len: usize,
    flush: Duration,
    /// The current message, header included (its size and count written when taken).
    buf: Vec<u8>,
    nr_conns: u8,
    /// When the current buffer got its first record; `None`: no buffer.
    first_use: Option<Time>,
}

impl Sender {
    /// A sender of `cfg`'s version, message size limit (clamped to `1..=`[`MAX_LEN`] as
    /// the kernel clamps it) and flush time, stamping `syncid`.
    ///
    /// # Panics
    /// If the version is neither 0 nor 1.
    pub fn new(cfg: &SyncConfig, syncid: u8) -> Sender {
        assert!(cfg.version <= 1, "sync_version {} (0 or 1)", cfg.version);
        Sender {
            version: cfg.version,
            syncid,
            max_len: (cfg.max_len as usize).clamp(1, MAX_LEN),
            flush: cfg.flush,
            buf: Vec::new(),
            nr_conns: 0,
            first_use: None,
        }
    }

    /// Append record `c` at `now`. Returns the current message, complete, when `c` does
    /// not fit in it (or it holds 255 records already); `c` then starts the next one. A
    /// first record always fits. Version 0 carries no IPv6 record: one is ignored (the
    /// table never decides on one).
    ///
    /// # Panics
    /// If `c`'s three addresses are not of one family.
    pub fn push(&mut self, now: Time, c: &SyncConn) -> Option<Vec<u8>> {
        let v6 = c.caddr.is_ipv6();
        assert!(
            c.vaddr.is_ipv6() == v6 && c.daddr.is_ipv6() == v6,
            "sync record with addresses of two families: {c:?}"
        );
        if self.version == 0 && v6 {
            return None;
        }
        let len = match (self.version, v6) {
            (0, _) => CONN_V0,
            (_, false) => CONN_V4,
            (_, true) => CONN_V6,
        };
        let full =
            self.first_use.is_some() && (self.buf.len() + len > self.max_len || self.nr_conns == u8::MAX);
        let done = if full { self.take() } else { None };
        if self.first_use.is_none() {
            self.start(now);
        }
        if self.version == 0 {
            emit_v0(c, &mut self.buf)
        } else {
            emit_v1(c, &mut self.buf)
        }
        self.nr_conns += 1;
        done
    }

    /// When the current buffer is due: its first use plus the flush time; `None` without
    /// one.
    pub fn next_flush(&self) -> Option<Time> {
        self.first_use.map(|t| t + self.flush)
    }

    /// The current message, if it is due by `now` (`get_curr_sync_buff()`).
    pub fn flush(&mut self, now: Time) -> Option<Vec<u8>> {
        if self.next_flush()? <= now { self.take() } else { None }
    }

    /// Records in the current buffer.
    pub fn pending(&self) -> u8 {
        self.nr_conns
    }

    fn start(&mut self, now: Time) {
        self.buf = Vec::with_capacity(self.max_len.min(1500));
        if self.version == 0 {
            self.buf.extend_from_slice(&[0, self.syncid, 0, 0]);
        } else {
            self.buf.extend_from_slice(&[0, self.syncid, 0, 0, 0, 1, 0, 0]);
        }
        self.first_use = Some(now);
    }

    /// The current buffer as a message: its size and record count filled in.
    fn take(&mut self) -> Option<Vec<u8>> {
        self.first_use.take()?;
        let mut m = std::mem::take(&mut self.buf);
        let size = u16::try_from(m.len()).expect("a message stays below 65536 bytes");
        m[2..4].copy_from_slice(&size.to_be_bytes());
        m[if self.version == 0 { 0 } else { 4 }] = self.nr_conns;
        self.nr_conns = 0;
        Some(m)
    }
}

/// The record's flags as sent: never HASHED, no sequence data, TEMPLATE from its state.
fn wire_flags(c: &SyncConn) -> u32 {
    let template = if c.state == ConnState::Template { flags::TEMPLATE } else { 0 };
    c.flags & !(flags::HASHED | flags::SEQ_MASK | flags::TEMPLATE) | template
}

/// The state number sent: the TCP state's, 0 for UDP (`IP_VS_UDP_S_NORMAL`) and
/// templates (`IP_VS_CTPL_S_NONE`).
fn state_code(s: ConnState) -> u16 {
    match s {
        ConnState::Tcp(t) => t as u16,
        ConnState::Udp | ConnState::Template => 0,
    }
}

fn put_addr(buf: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
    }
}

fn emit_v1(c: &SyncConn, buf: &mut Vec<u8>) {
    let v6 = c.caddr.is_ipv6();
    let len = (if v6 { CONN_V6 } else { CONN_V4 }) as u16;
    buf.extend_from_slice(&[u8::from(v6), c.protocol]);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&wire_flags(c).to_be_bytes());
    for v in [state_code(c.state), c.cport, c.vport, c.dport] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    buf.extend_from_slice(&c.fwmark.to_be_bytes());
    buf.extend_from_slice(&c.timeout.to_be_bytes());
    for a in [c.caddr, c.vaddr, c.daddr] {
        put_addr(buf, a);
    }
}

fn emit_v0(c: &SyncConn, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0, c.protocol]);
    for v in [c.cport, c.vport, c.dport] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    for a in [c.caddr, c.vaddr, c.daddr] {
        put_addr(buf, a);
    }
    // The kernel sends the low 16 bits of the flags.
    buf.extend_from_slice(&(wire_flags(c) as u16).to_be_bytes());
    buf.extend_from_slice(&state_code(c.state).to_be_bytes());
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(be32(b, at)))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut o = [0; 16];
    o.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

/// The state of a received record, if its protocol has it; `None`: skipped.
fn state_of(protocol: u8, fl: u32, state: u16) -> Option<ConnState> {
    if fl & flags::TEMPLATE != 0 {
        // The kernel only logs a template's unknown state.
        return Some(ConnState::Template);
    }
    match protocol {
        // SCTP entries use the TCP states in this model.
        IPPROTO_TCP | IPPROTO_SCTP => TcpState::from_code(state).map(ConnState::Tcp),
        IPPROTO_UDP => (state == 0).then_some(ConnState::Udp),
        _ => None,
    }
}

/// The header of a message of `bytes` (`ip_vs_process_message()`'s checks).
pub fn parse_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    if bytes.len() < HEADER_V0 {
        return Err(DecodeError::TooShort { len: bytes.len() });
    }
    let size = be16(bytes, 2);
    if usize::from(size) != bytes.len() {
        return Err(DecodeError::SizeMismatch { size, len: bytes.len() });
    }
    // Version 1 needs its whole header here (the kernel reads past a shorter datagram).
    let v1 = bytes.len() >= HEADER_V1 && bytes[0] == 0 && bytes[5] == 1 && bytes[6] == 0 && bytes[7] == 0;
    Ok(if v1 {
        Header { version: 1, syncid: bytes[1], nr_conns: bytes[4], size }
    } else {
        Header { version: 0, syncid: bytes[1], nr_conns: bytes[0], size }
    })
}

/// The records of a received message, in order (see the module doc for what drops a
/// message or skips a record). The sync id is not checked: see [`parse_header`].
pub fn decode(bytes: &[u8]) -> Result<Vec<SyncConn>, DecodeError> {
    let h = parse_header(bytes)?;
    let mut out = Vec::with_capacity(usize::from(h.nr_conns));
    if h.version == 1 {
        decode_v1(bytes, h.nr_conns, &mut out)?;
    } else {
        decode_v0(bytes, h.nr_conns, &mut out)?;
    }
    Ok(out)
}

fn decode_v1(bytes: &[u8], nr_conns: u8, out: &mut Vec<SyncConn>) -> Result<(), DecodeError> {
    let mut p = HEADER_V1;
    for index in 0..usize::from(nr_conns) {
        if p + CONN_V4 > bytes.len() {
            return Err(DecodeError::Truncated { index });
        }
        let ver_size = be16(bytes, p + 2);
        let size = usize::from(ver_size & 0x0FFF);
        if p + size > bytes.len() {
            return Err(DecodeError::Truncated { index });
        }
        if ver_size >> 12 != 0 {
            return Err(DecodeError::ConnVersion { index, version: (ver_size >> 12) as u8 });
        }
        // The type byte is read whatever the size, as the kernel does.
        if let Some(c) = decode_record_v1(bytes[p], &bytes[p..p + size], index)? {
            out.push(c);
        }
        // Records are padded to 4 bytes.
        p += (size + 3) & !3;
    }
    Ok(())
}

/// One version 1 record `s` (exactly its size) of type `ty`; `None`: skipped.
fn decode_record_v1(ty: u8, s: &[u8], index: usize) -> Result<Option<SyncConn>, DecodeError> {
    let (is_v6, fixed) = match ty {
        _ if ty & 1 != 0 => (true, CONN_V6),
        0 => (false, CONN_V4),
        _ => return Err(DecodeError::ConnType { index, ty }),
    };
    if s.len() < fixed {
        return Err(DecodeError::ConnSize { index, size: s.len() });
    }
    let (mut q, mut seen, mut pe_data) = (fixed, 0u8, false);
    while q < s.len() {
        let bad = DecodeError::BadOption { index };
        if q + 2 > s.len() {
            return Err(bad);
        }
        let (ptype, plen) = (s[q], usize::from(s[q + 1]));
        q += 2;
        if plen == 0 || q + plen > s.len() {
            return Err(bad);
        }
        let (bit, ok) = match ptype & !OPT_F_PARAM {
            OPT_SEQ_DATA => (1, plen == SEQ_OPTIONS),
            OPT_PE_DATA => (2, true),
            OPT_PE_NAME => (4, plen <= PE_NAME_MAXLEN),
            // An unknown mandatory option skips the record; an optional one is ignored.
            _ if ptype & OPT_F_PARAM == 0 => return Ok(None),
            _ => (0, true),
        };
        if !ok || seen & bit != 0 {
            return Err(bad);
        }
        seen |= bit;
        pe_data |= bit == 2;
        q += plen;
    }
    let fl = be32(s, 4);
    let Some(state) = state_of(s[1], fl, be16(s, 8)) else { return Ok(None) };
    if pe_data {
        // Persistence-engine data needs an engine (sip); none is modelled.
        return Ok(None);
    }
    let (caddr, vaddr, daddr) =
        if is_v6 { (v6(s, 24), v6(s, 40), v6(s, 56)) } else { (v4(s, 24), v4(s, 28), v4(s, 32)) };
    Ok(Some(SyncConn {
        protocol: s[1],
        caddr,
        cport: be16(s, 10),
        vaddr,
        vport: be16(s, 12),
        daddr,
        dport: be16(s, 14),
        fwmark: be32(s, 16),
        state,
        flags: fl & !flags::SEQ_MASK,
        timeout: be32(s, 20),
    }))
}

fn decode_v0(bytes: &[u8], nr_conns: u8, out: &mut Vec<SyncConn>) -> Result<(), DecodeError> {
    let mut p = HEADER_V0;
    for index in 0..usize::from(nr_conns) {
        if p + CONN_V0 > bytes.len() {
            return Err(DecodeError::Truncated { index });
        }
        let s = &bytes[p..p + CONN_V0];
        let fl = u32::from(be16(s, 20));
        p += CONN_V0 + if fl & flags::SEQ_MASK != 0 { SEQ_OPTIONS } else { 0 };
        if p > bytes.len() {
            return Err(DecodeError::Truncated { index });
        }
        let Some(state) = state_of(s[1], fl, be16(s, 22)) else { continue };
        out.push(SyncConn {
            protocol: s[1],
            caddr: v4(s, 8),
            cport: be16(s, 2),
            vaddr: v4(s, 12),
            vport: be16(s, 4),
            daddr: v4(s, 16),
            dport: be16(s, 6),
            fwmark: 0,
            state,
            flags: fl & !flags::SEQ_MASK,
            timeout: 0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
