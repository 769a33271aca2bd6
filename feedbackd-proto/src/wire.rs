//! The wire format: length-prefixed, versioned frames, each optionally authenticated.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------------------------------------------------------+
//! |               length of the rest of the frame (u32)           |
//! +---------------+---------------+---------------+---------------+
//! |  version = 1  |  message type |     flags     |  reserved = 0 |
//! +---------------+---------------+---------------+---------------+
//! |                 sequence number (u64), 1, 2, 3, ...            |
//! +---------------------------------------------------------------+
//! |                       body (message type's)                   |
//! +---------------------------------------------------------------+
//! |   HMAC-SHA256 tag (32 bytes) over everything before it,       |
//! |   present iff flags bit 0 (AUTH) is set                       |
//! +---------------------------------------------------------------+
//! ```
//!
//! All integers are big-endian. A string is a `u8` length and that many bytes of UTF-8. An
//! address is a family byte (4 or 6) and 4 or 16 bytes. Every count and length is bounded
//! ([`MAX_FRAME_LEN`], [`MAX_SERVICES`], [`MAX_METRICS`], ...), so a peer cannot make the
//! other side allocate more than one frame's worth. Decoding never panics: every read is
//! bounds-checked and every value range-checked, and trailing bytes are an error.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use lvs_ipvs::Forwarding;

use crate::types::{AdminState, ServiceSpec};

use lvs_ipvs::Protocol;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the body: length, version, type, flags, reserved, sequence number.
pub const HEADER_LEN: usize = 16;
/// Bytes of an authentication tag.
pub const TAG_LEN: usize = 32;
/// The largest frame, length prefix included [bytes].
pub const MAX_FRAME_LEN: usize = 16 * 1024;
/// The most services one agent registers.
pub const MAX_SERVICES: usize = 32;
/// The most metrics in one report.
pub const MAX_METRICS: usize = 32;
/// The longest agent id [bytes].
pub const MAX_AGENT_ID_LEN: usize = 64;
/// The longest metric name [bytes].
pub const MAX_METRIC_NAME_LEN: usize = 32;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 16;
/// Flags bit: the frame ends with an HMAC-SHA256 tag.
pub const FLAG_AUTH: u8 = 0x01;
/// A capacity of this many per-mille is an idle server.
pub const CAPACITY_SCALE: u16 = 1000;

/// A measured spare capacity in [0, 1] as the per mille a report carries (clamped,
/// rounded); `None` for NaN, which is no measurement.
pub fn capacity_per_mille(capacity: f64) -> Option<u16> {
    (!capacity.is_nan()).then(|| (capacity.clamp(0.0, 1.0) * f64::from(CAPACITY_SCALE)).round() as u16)
}

/// A session nonce.
pub type Nonce = [u8; NONCE_LEN];

/// Message types. Unknown ones are kept as such (and refused by the state machines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// Master → agent, first frame: the master's nonce and whether it requires a key.
    Welcome,
    /// Agent → master: who it is and what it serves.
    Register,
    /// Master → agent: how many virtual services each registered service matched.
    Registered,
    /// Agent → master: the full current state (capacity, admin state, metrics).
    Report,
    /// Master → agent: a report was applied; the weights it led to.
    Ack,
    /// Agent → master: leaving; drain me.
    Goodbye,
    /// Master → agent: refused; the connection closes after it.
    Error,
    /// A type this version does not know.
    Unknown(u8),
}

impl MessageType {
    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            MessageType::Welcome => 1,
            MessageType::Register => 2,
            MessageType::Registered => 3,
            MessageType::Report => 4,
            MessageType::Ack => 5,
            MessageType::Goodbye => 6,
            MessageType::Error => 7,
            MessageType::Unknown(c) => c,
        }
    }

    /// The type with wire code `c`.
    pub const fn from_code(c: u8) -> MessageType {
        match c {
            1 => MessageType::Welcome,
            2 => MessageType::Register,
            3 => MessageType::Registered,
            4 => MessageType::Report,
            5 => MessageType::Ack,
            6 => MessageType::Goodbye,
            7 => MessageType::Error,
            c => MessageType::Unknown(c),
        }
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// See [`MessageType::Welcome`].
    Welcome(Welcome),
    /// See [`MessageType::Register`].
    Register(Register),
    /// See [`MessageType::Registered`].
    Registered(Registered),
    /// See [`MessageType::Report`].
    Report(Report),
    /// See [`MessageType::Ack`].
    Ack(Ack),
    /// See [`MessageType::Goodbye`].
    Goodbye(Goodbye),
    /// See [`MessageType::Error`].
    Error(ErrorMsg),
}

impl Message {
    /// Its type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Welcome(_) => MessageType::Welcome,
            Message::Register(_) => MessageType::Register,
            Message::Registered(_) => MessageType::Registered,
            Message::Report(_) => MessageType::Report,
            Message::Ack(_) => MessageType::Ack,
            Message::Goodbye(_) => MessageType::Goodbye,
            Message::Error(_) => MessageType::Error,
        }
    }
}

/// The master's greeting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The master has a key and will only accept authenticated frames.
    pub auth_required: bool,
    /// The master's fresh nonce for this connection.
    pub nonce: Nonce,
}

/// An agent's registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// The agent's fresh nonce for this connection.
    pub nonce: Nonce,
    /// The agent's name (1 to [`MAX_AGENT_ID_LEN`] bytes of printable ASCII, no spaces).
    pub agent_id: String,
    /// How often it reports [ms].
    pub interval_ms: u32,
    /// What it serves (1 to [`MAX_SERVICES`]).
    pub services: Vec<ServiceSpec>,
}

/// The master's answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// For each registered service, in order, how many virtual services it matched.
    pub matched: Vec<u8>,
}

/// An agent's full current state.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What the operator wants of this server.
    pub admin: AdminState,
    /// For each registered service, in order: spare capacity [per-mille, 0..=1000], or
    /// `None` when its modules could not measure this round.
    pub capacity: Vec<Option<u16>>,
    /// What was measured, for the status view.
    pub metrics: Vec<Metric>,
}

/// One named measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// `[a-z0-9_]`, 1 to [`MAX_METRIC_NAME_LEN`] bytes.
    pub name: String,
    /// A finite value.
    pub value: f64,
}

/// The master's acknowledgement of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The sequence number of the report acknowledged.
    pub seq: u64,
    /// For each registered service, the weight now set (the first matched virtual
    /// service's), or `None` when it matched none.
    pub weights: Vec<Option<u32>>,
}

/// An agent leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goodbye {
    /// Why (shown in the master's log), at most 255 bytes.
    pub reason: String,
}

/// Why a master refused an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// A frame did not decode or broke the protocol.
    Malformed,
    /// Authentication failed or was missing.
    Auth,
    /// The agent or a value was refused (too many agents, a bad id).
    Refused,
    /// Another connection registered the same agent id.
    Replaced,
    /// A code this version does not know.
    Unknown(u8),
}

impl ErrorCode {
    const fn code(self) -> u8 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::Auth => 2,
            ErrorCode::Refused => 3,
            ErrorCode::Replaced => 4,
            ErrorCode::Unknown(c) => c,
        }
    }

    const fn from_code(c: u8) -> ErrorCode {
        match c {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::Auth,
            3 => ErrorCode::Refused,
            4 => ErrorCode::Replaced,
            c => ErrorCode::Unknown(c),
        }
    }
}

/// A master's refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    /// What kind.
    pub code: ErrorCode,
    /// What, for the agent's log (at most 255 bytes).
    pub text: String,
}

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix is below the header or above [`MAX_FRAME_LEN`].
    #[error("frame length {0} is out of bounds")]
    Length(usize),
    /// A version this crate does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// Reserved bits are set.
    #[error("reserved flags or byte set")]
    Reserved,
    /// The body ended early.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// Bytes left over after the body.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A value out of its range.
    #[error("bad {0}")]
    Value(&'static str),
    /// An unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u8),
}

/// A frame split out of a byte stream, not yet authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// Its type.
    pub message_type: MessageType,
    /// Its flags.
    pub flags: u8,
    /// Its sequence number.
    pub seq: u64,
    /// The body.
    pub body: &'a [u8],
    /// Everything the tag covers (the frame without its tag).
    pub signed: &'a [u8],
    /// The tag, when [`FLAG_AUTH`] is set.
    pub tag: Option<&'a [u8]>,
}

/// The length of the first frame in `buf`: `Ok(None)` if more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.get(..4) else { return Ok(None) };
    let rest = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let total = rest.saturating_add(4);
    if !(HEADER_LEN..=MAX_FRAME_LEN).contains(&total) {
        return Err(DecodeError::Length(total));
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Splits one whole frame (exactly [`frame_len`] bytes) into its parts.
pub fn parse_frame(frame: &[u8]) -> Result<RawFrame<'_>, DecodeError> {
    match frame_len(frame)? {
        Some(n) if n == frame.len() => {}
        Some(n) => return Err(DecodeError::Trailing(frame.len() - n)),
        None => return Err(DecodeError::Truncated("frame")),
    }
    let version = frame[4];
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let (message_type, flags, reserved) = (MessageType::from_code(frame[5]), frame[6], frame[7]);
    if flags & !FLAG_AUTH != 0 || reserved != 0 {
        return Err(DecodeError::Reserved);
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&frame[8..16]);
    let seq = u64::from_be_bytes(seq);
    let (signed, tag) = if flags & FLAG_AUTH != 0 {
        if frame.len() < HEADER_LEN + TAG_LEN {
            return Err(DecodeError::Truncated("tag"));
        }
        let (s, t) = frame.split_at(frame.len() - TAG_LEN);
        (s, Some(t))
    } else {
        (frame, None)
    };
    Ok(RawFrame { message_type, flags, seq, body: &signed[HEADER_LEN..], signed, tag })
}

/// Encodes `msg` as a frame with sequence number `seq`. With `key`, the frame is
/// authenticated (its tag is `tag(key, frame)`).
pub fn encode(msg: &Message, seq: u64, key: Option<&SessionKey>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION);
    out.push(msg.message_type().code());
    out.push(if key.is_some() { FLAG_AUTH } else { 0 });
    out.push(0);
    out.extend_from_slice(&seq.to_be_bytes());
    encode_body(msg, &mut out);
    let total = out.len() + if key.is_some() { TAG_LEN } else { 0 };
    assert!(total <= MAX_FRAME_LEN, "frame of {total} bytes: callers bound their messages");
    let rest = (total - 4) as u32;
    out[..4].copy_from_slice(&rest.to_be_bytes());
    if let Some(key) = key {
        let tag = key.tag(&out);
        out.extend_from_slice(&tag);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str, max: usize) {
    let s = truncate_utf8(s, max.min(255));
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn encode_body(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::Welcome(w) => {
            out.push(u8::from(w.auth_required));
            out.extend_from_slice(&w.nonce);
        }
        Message::Register(r) => {
            assert!(r.services.len() <= MAX_SERVICES, "at most {MAX_SERVICES} services");
            out.extend_from_slice(&r.nonce);
            put_str(out, &r.agent_id, MAX_AGENT_ID_LEN);
            out.extend_from_slice(&r.interval_ms.to_be_bytes());
            out.push(r.services.len() as u8);
            for s in &r.services {
                out.push(s.protocol.number());
                out.extend_from_slice(&s.port.to_be_bytes());
                assert!(s.forwarding != Forwarding::Local, "an agent never registers local forwarding");
                out.push(s.forwarding.code() as u8);
                let flags = u8::from(s.vip.is_some())
                    | u8::from(s.fwmark.is_some()) << 1
                    | u8::from(s.address.is_some()) << 2;
                out.push(flags);
                if let Some(vip) = s.vip {
                    put_addr(out, vip);
                }
                if let Some(mark) = s.fwmark {
                    out.extend_from_slice(&mark.to_be_bytes());
                }
                if let Some(a) = s.address {
                    put_addr(out, a);
                }
            }
        }
        Message::Registered(r) => {
            out.push(r.matched.len().min(MAX_SERVICES) as u8);
            out.extend(r.matched.iter().take(MAX_SERVICES));
        }
        Message::Report(r) => {
            assert!(r.capacity.len() <= MAX_SERVICES, "at most {MAX_SERVICES} services");
            out.push(admin_code(r.admin));
            out.push(r.capacity.len() as u8);
            for c in &r.capacity {
                let v = c.map_or(u16::MAX, |c| c.min(CAPACITY_SCALE));
                out.extend_from_slice(&v.to_be_bytes());
            }
            let metrics: Vec<&Metric> = r
                .metrics
                .iter()
                .filter(|m| valid_metric_name(&m.name) && m.value.is_finite())
                .take(MAX_METRICS)
                .collect();
            out.push(metrics.len() as u8);
            for m in metrics {
                put_str(out, &m.name, MAX_METRIC_NAME_LEN);
                out.extend_from_slice(&m.value.to_be_bytes());
            }
        }
        Message::Ack(a) => {
            out.extend_from_slice(&a.seq.to_be_bytes());
            out.push(a.weights.len().min(MAX_SERVICES) as u8);
            for w in a.weights.iter().take(MAX_SERVICES) {
                out.extend_from_slice(&w.unwrap_or(u32::MAX).to_be_bytes());
            }
        }
        Message::Goodbye(g) => put_str(out, &g.reason, 255),
        Message::Error(e) => {
            out.push(e.code.code());
            put_str(out, &e.text, 255);
        }
    }
}

const fn admin_code(a: AdminState) -> u8 {
    match a {
        AdminState::Ready => 0,
        AdminState::Drain => 1,
        AdminState::Maint => 2,
    }
}

/// Whether `name` is a valid metric name: `[a-z0-9_]`, 1 to 32 bytes.
pub fn valid_metric_name(name: &str) -> bool {
    (1..=MAX_METRIC_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `id` is a valid agent id: printable ASCII without spaces, 1 to 64 bytes.
pub fn valid_agent_id(id: &str) -> bool {
    (1..=MAX_AGENT_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A bounds-checked reader over a body.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn nonce(&mut self) -> Result<Nonce, DecodeError> {
        let mut n = [0; NONCE_LEN];
        n.copy_from_slice(self.bytes(NONCE_LEN)?);
        Ok(n)
    }
    fn str(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.u8()? as usize;
        let b = self.bytes(n)?;
        core::str::from_utf8(b).map(str::to_owned).map_err(|_| DecodeError::Value(what))
    }
    fn addr(&mut self) -> Result<IpAddr, DecodeError> {
        match self.u8()? {
            4 => {
                let b = self.bytes(4)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let mut a = [0; 16];
                a.copy_from_slice(self.bytes(16)?);
                Ok(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => Err(DecodeError::Value("address family")),
        }
    }
    fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Decodes a body of type `message_type`. Never panics.
pub fn decode_body(message_type: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf: body, what: "body" };
    let msg = match message_type {
        MessageType::Welcome => {
            r.what = "welcome";
            let auth_required = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Value("auth flag")),
            };
            Message::Welcome(Welcome { auth_required, nonce: r.nonce()? })
        }
        MessageType::Register => Message::Register(decode_register(&mut r)?),
        MessageType::Registered => {
            r.what = "registered";
            let n = bounded(r.u8()?, MAX_SERVICES, "service count")?;
            Message::Registered(Registered { matched: r.bytes(n)?.to_vec() })
        }
        MessageType::Report => Message::Report(decode_report(&mut r)?),
        MessageType::Ack => {
            r.what = "ack";
            let seq = r.u64()?;
            let n = bounded(r.u8()?, MAX_SERVICES, "service count")?;
            let mut weights = Vec::with_capacity(n);
            for _ in 0..n {
                let w = r.u32()?;
                weights.push((w != u32::MAX).then_some(w));
            }
            Message::Ack(Ack { seq, weights })
        }
        MessageType::Goodbye => {
            r.what = "goodbye";
            Message::Goodbye(Goodbye { reason: r.str("goodbye reason")? })
        }
        MessageType::Error => {
            r.what = "error";
            let code = ErrorCode::from_code(r.u8()?);
            Message::Error(ErrorMsg { code, text: r.str("error text")? })
        }
        MessageType::Unknown(c) => return Err(DecodeError::UnknownType(c)),
    };
    r.finish()?;
    Ok(msg)
}

fn bounded(n: u8, max: usize, what: &'static str) -> Result<usize, DecodeError> {
    let n = n as usize;
    if n > max { Err(DecodeError::Value(what)) } else { Ok(n) }
}

/// The nonce at the start of a Register body, read before the frame can be authenticated
/// (the session key depends on it).
pub fn register_nonce(body: &[u8]) -> Result<Nonce, DecodeError> {
    Reader { buf: body, what: "register" }.nonce()
}

/// The nonce and agent id at the start of a Register body, read before the frame can be
/// authenticated: the session key depends on the nonce, and the key itself on the agent.
pub fn register_hello(body: &[u8]) -> Result<(Nonce, String), DecodeError> {
    let mut r = Reader { buf: body, what: "register" };
    let nonce = r.nonce()?;
    let agent_id = r.str("agent id")?;
    if !valid_agent_id(&agent_id) {
        return Err(DecodeError::Value("agent id"));
    }
    Ok((nonce, agent_id))
}

fn decode_register(r: &mut Reader<'_>) -> Result<Register, DecodeError> {
    r.what = "register";
    let nonce = r.nonce()?;
    let agent_id = r.str("agent id")?;
    if !valid_agent_id(&agent_id) {
        return Err(DecodeError::Value("agent id"));
    }
    let interval_ms = r.u32()?;
    if interval_ms == 0 {
        return Err(DecodeError::Value("interval"));
    }
    let n = r.u8()? as usize;
    if n == 0 || n > MAX_SERVICES {
        return Err(DecodeError::Value("service count"));
    }
    let mut services = Vec::with_capacity(n);
    for _ in 0..n {
        let protocol = Protocol::from_number(r.u8()?).ok_or(DecodeError::Value("protocol"))?;
        let port = r.u16()?;
        // The kernel's codes; local delivery (1) is never an agent's.
        let forwarding = match Forwarding::from_code(u32::from(r.u8()?)) {
            Some(Forwarding::Local) | None => return Err(DecodeError::Value("forwarding method")),
            Some(f) => f,
        };
        let flags = r.u8()?;
        if flags & !0x07 != 0 {
            return Err(DecodeError::Value("service flags"));
        }
        let vip = if flags & 1 != 0 { Some(r.addr()?) } else { None };
        let fwmark = if flags & 2 != 0 { Some(r.u32()?) } else { None };
        let address = if flags & 4 != 0 { Some(r.addr()?) } else { None };
        if port == 0 && fwmark.is_none() {
            return Err(DecodeError::Value("port"));
        }
        services.push(ServiceSpec { protocol, port, vip, fwmark, forwarding, address });
    }
    Ok(Register { nonce, agent_id, interval_ms, services })
}

fn decode_report(r: &mut Reader<'_>) -> Result<Report, DecodeError> {
    r.what = "report";
    let admin = match r.u8()? {
        0 => AdminState::Ready,
        1 => AdminState::Drain,
        2 => AdminState::Maint,
        _ => return Err(DecodeError::Value("admin state")),
    };
    let n = bounded(r.u8()?, MAX_SERVICES, "service count")?;
    let mut capacity = Vec::with_capacity(n);
    for _ in 0..n {
        capacity.push(match r.u16()? {
            u16::MAX => None,
            c if c <= CAPACITY_SCALE => Some(c),
            _ => return Err(DecodeError::Value("capacity")),
        });
    }
    let m = bounded(r.u8()?, MAX_METRICS, "metric count")?;
    let mut metrics = Vec::with_capacity(m);
    for _ in 0..m {
        let name = r.str("metric name")?;
        if !valid_metric_name(&name) {
            return Err(DecodeError::Value("metric name"));
        }
        let value = f64::from_be_bytes(r.u64()?.to_be_bytes());
        if !value.is_finite() {
            return Err(DecodeError::Value("metric value"));
        }
        metrics.push(Metric { name, value });
    }
    Ok(Report { admin, capacity, metrics })
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Malformed => f.write_str("malformed"),
            ErrorCode::Auth => f.write_str("authentication"),
            ErrorCode::Refused => f.write_str("refused"),
            ErrorCode::Replaced => f.write_str("replaced"),
            ErrorCode::Unknown(c) => write!(f, "error {c}"),
        }
    }
}

/// A connection's session key (derived in [`crate::auth`]; here because every frame's
/// tag is computed with it).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(pub(crate) [u8; 32]);

impl SessionKey {
    /// The tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `data` (constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}
