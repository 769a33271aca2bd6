//! One entry of the connection table, packed into 64 bytes.
//!
//! The kernel's `struct ip_vs_conn` is about 288 bytes; an entry here keeps what the
//! model needs: the key (addresses as four `u32` words each, not `u128`, so the entry is
//! 8-byte aligned), the service and real-server indices, the timer (deadline, lane,
//! position), the controlling template or the number of controlled entries (never both),
//! the TCP state and a flag byte.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use lvs_sched::{ConnCount, DestId, Protocol, Time};

use super::index::hash_words;
use super::timers::{LaneId, NO_LANE, TimerRef};
use super::{ConnId, ConnState, ServiceId};

/// An IPv4 or IPv6 address as four words (IPv4 in the first, the others 0).
pub(crate) type Addr = [u32; 4];

/// `link` value meaning "no controlling template".
const NO_CONTROL: u32 = u32::MAX;

/// Flag bits.
const F_V6: u8 = 1;
/// Replies never seen by the director (DR, TUN): the INPUT_ONLY table applies.
const F_NO_OUTPUT: u8 = 1 << 1;
/// No longer found by lookups (an invalidated template, a one-packet entry).
const F_UNHASHED: u8 = 1 << 2;
/// The timer is armed: a live item of lane `lane` at `pos` names this entry.
const F_ARMED: u8 = 1 << 3;
/// Protocol, two bits.
const PROTO_SHIFT: u8 = 4;
/// A template whose controlled connection reached ESTABLISHED (or saw a UDP reply):
/// `IP_VS_CTPL_S_ASSURED`, shown by `ipvsadm -L -c` as its state.
const F_ASSURED: u8 = 1 << 6;
/// Flag bits that are not part of the lookup key.
const F_NOT_KEY: u8 = F_NO_OUTPUT | F_UNHASHED | F_ARMED | F_ASSURED;

/// An address's words and whether it is IPv6.
pub(crate) fn addr_words(a: IpAddr) -> (Addr, bool) {
    match a {
        IpAddr::V4(v4) => ([u32::from(v4), 0, 0, 0], false),
        IpAddr::V6(v6) => {
            let o = u128::from(v6);
            ([(o >> 96) as u32, (o >> 64) as u32, (o >> 32) as u32, o as u32], true)
        }
    }
}

fn words_addr(w: Addr, v6: bool) -> IpAddr {
    if v6 {
        let o =
            (u128::from(w[0]) << 96) | (u128::from(w[1]) << 64) | (u128::from(w[2]) << 32) | u128::from(w[3]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(w[0].into())
    }
}

/// The lookup key of a connection: `<protocol, caddr, cport, vaddr, vport>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    pub(crate) caddr: Addr,
    pub(crate) vaddr: Addr,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    /// Protocol and address family, as the entry's flag byte holds them.
    pub(crate) kind: u8,
}

impl ConnKey {
    /// The key of a packet (both addresses of one family, as IPVS requires).
    pub(crate) fn new(protocol: Protocol, caddr: IpAddr, cport: u16, vaddr: IpAddr, vport: u16) -> ConnKey {
        let (caddr, v6) = addr_words(caddr);
        let (vaddr, _) = addr_words(vaddr);
        let kind = ((protocol as u8) << PROTO_SHIFT) | if v6 { F_V6 } else { 0 };
        ConnKey { caddr, vaddr, cport, vport, kind }
    }

    /// The client address words and family.
    pub(crate) fn caddr(&self) -> (Addr, bool) {
        (self.caddr, self.kind & F_V6 != 0)
    }

    /// Its fixed hash.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        let ports = (u64::from(self.cport) << 32) | (u64::from(self.vport) << 16) | u64::from(self.kind);
        let (c, v) = (self.caddr, self.vaddr);
        if self.kind & F_V6 == 0 {
            hash_words([(u64::from(c[0]) << 32) | u64::from(v[0]), ports])
        } else {
            let w = |a: Addr, i: usize| (u64::from(a[i]) << 32) | u64::from(a[i + 1]);
            hash_words([w(c, 0), w(c, 2), w(v, 0), w(v, 2), ports])
        }
    }
}

/// One entry of the connection table: a connection or a persistence template.
#[derive(Clone, Debug)]
pub struct Conn {
    caddr: Addr,
    vaddr: Addr,
    deadline: Time,
    dest: DestId,
    svc: u32,
    /// Controlling template's id (connections; `NO_CONTROL` if none) or number of
    /// controlled entries (templates).
    link: u32,
    timer_pos: u32,
    timer_lane: LaneId,
    cport: u16,
    vport: u16,
    state: ConnState,
    flags: u8,
}

impl Conn {
    /// A new entry, not armed, not yet in the index.
    pub(crate) fn new(key: &ConnKey, svc: u32, dest: DestId, state: ConnState, no_output: bool) -> Conn {
        Conn {
            caddr: key.caddr,
            vaddr: key.vaddr,
            deadline: Time::ZERO,
            dest,
            svc,
            link: if state == ConnState::Template { 0 } else { NO_CONTROL },
            timer_pos: 0,
            timer_lane: NO_LANE,
            cport: key.cport,
            vport: key.vport,
            state,
            flags: key.kind | if no_output { F_NO_OUTPUT } else { 0 },
        }
    }

    /// The real server it is bound to.
    pub fn dest(&self) -> DestId {
        self.dest
    }
    /// Its protocol state.
    pub fn state(&self) -> ConnState {
        self.state
    }
    /// When its timer fires (the last deadline set, if the timer has fired already).
    pub fn deadline(&self) -> Time {
        self.deadline
    }
    /// The service it belongs to.
    pub fn service(&self) -> ServiceId {
        ServiceId(self.svc)
    }
    /// Its protocol.
    pub fn protocol(&self) -> Protocol {
        match self.flags >> PROTO_SHIFT {
            0 => Protocol::Tcp,
            1 => Protocol::Udp,
            _ => Protocol::Sctp,
        }
    }
    /// Client address and port (a template: the masked address, port 0).
    pub fn client(&self) -> SocketAddr {
        SocketAddr::new(words_addr(self.caddr, self.flags & F_V6 != 0), self.cport)
    }
    /// Virtual address and port (a template: port 0).
    pub fn virtual_addr(&self) -> SocketAddr {
        SocketAddr::new(words_addr(self.vaddr, self.flags & F_V6 != 0), self.vport)
    }
    /// The controlling template, if any.
    pub fn control(&self) -> Option<ConnId> {
        (self.state != ConnState::Template && self.link != NO_CONTROL).then_some(ConnId(self.link))
    }

    pub(crate) fn key(&self) -> ConnKey {
        ConnKey {
            caddr: self.caddr,
            vaddr: self.vaddr,
            cport: self.cport,
            vport: self.vport,
            kind: self.flags & !F_NOT_KEY,
        }
    }
    #[inline]
    pub(crate) fn is_key(&self, k: &ConnKey) -> bool {
        self.caddr == k.caddr
            && self.cport == k.cport
            && self.vport == k.vport
            && self.vaddr == k.vaddr
            && self.flags & !F_NOT_KEY == k.kind
    }
    /// The client address words and family (the template index's key part).
    pub(crate) fn caddr(&self) -> (Addr, bool) {
        (self.caddr, self.flags & F_V6 != 0)
    }
    pub(crate) fn svc_index(&self) -> usize {
        self.svc as usize
    }
    pub(crate) fn set_state(&mut self, s: ConnState) {
        self.state = s;
    }
    pub(crate) fn no_output(&self) -> bool {
        self.flags & F_NO_OUTPUT != 0
    }
    /// An output packet was seen: the connection's replies pass the director after all.
    pub(crate) fn saw_output(&mut self) {
        self.flags &= !F_NO_OUTPUT;
    }
    pub(crate) fn unhashed(&self) -> bool {
        self.flags & F_UNHASHED != 0
    }
    /// A template marked assured (`ip_vs_control_assure_ct()`).
    pub(crate) fn assured(&self) -> bool {
        self.flags & F_ASSURED != 0
    }
    pub(crate) fn set_assured(&mut self) {
        debug_assert_eq!(self.state, ConnState::Template);
        self.flags |= F_ASSURED;
    }
    pub(crate) fn set_unhashed(&mut self) {
        self.flags |= F_UNHASHED;
    }
    pub(crate) fn set_control(&mut self, t: ConnId) {
        self.link = t.0;
    }
    /// Entries a template controls.
    pub(crate) fn n_control(&self) -> u32 {
        if self.state == ConnState::Template { self.link } else { 0 }
    }
    pub(crate) fn add_controlled(&mut self, delta: i32) {
        debug_assert_eq!(self.state, ConnState::Template);
        self.link = self.link.checked_add_signed(delta).expect("n_control stays >= 0");
    }
    pub(crate) fn timer(&self) -> TimerRef {
        TimerRef { lane: self.timer_lane, pos: self.timer_pos, armed: self.flags & F_ARMED != 0 }
    }
    pub(crate) fn set_timer(&mut self, r: TimerRef, deadline: Time) {
        self.timer_lane = r.lane;
        self.timer_pos = r.pos;
        self.deadline = deadline;
        self.flags = (self.flags & !F_ARMED) | if r.armed { F_ARMED } else { 0 };
    }
    pub(crate) fn move_timer(&mut self, r: TimerRef) {
        self.timer_pos = r.pos;
    }
    pub(crate) fn disarm(&mut self) {
        self.flags &= !F_ARMED;
    }
    /// How the entry is counted on its real server.
    pub(crate) fn count(&self) -> ConnCount {
        match self.state {
            ConnState::Template => ConnCount::Template,
            ConnState::Udp => ConnCount::Inactive,
            ConnState::Tcp(s) if s.is_active() => ConnCount::Active,
            ConnState::Tcp(_) => ConnCount::Inactive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_64_bytes_even_in_an_option() {
        assert_eq!(size_of::<Conn>(), 64);
        assert_eq!(size_of::<Option<Conn>>(), 64, "the state's spare values are the niche");
    }

    #[test]
    fn key_round_trips_addresses_of_both_families() {
        let v6: IpAddr = "2001:db8::1:2".parse().unwrap();
        let k = ConnKey::new(Protocol::Udp, v6, 53000, "2001:db8::80".parse().unwrap(), 53);
        let c = Conn::new(&k, 0, DestId(0), ConnState::Udp, true);
        assert_eq!(c.client().to_string(), "[2001:db8::1:2]:53000");
        assert_eq!(c.virtual_addr().to_string(), "[2001:db8::80]:53");
        assert_eq!(c.protocol(), Protocol::Udp);
        assert!(c.is_key(&k) && c.key() == k);
        let v4 =
            ConnKey::new(Protocol::Udp, "0.0.0.0".parse().unwrap(), 53000, "0.0.0.0".parse().unwrap(), 53);
        assert!(!c.is_key(&v4), "IPv4 0.0.0.0 is not IPv6 ::");
        let tcp = ConnKey { kind: ((Protocol::Tcp as u8) << PROTO_SHIFT) | F_V6, ..k };
        assert!(!c.is_key(&tcp) && tcp.hash() != k.hash(), "protocol is part of the key");
    }
}
