//! The data path of the IPVS table: new connections (`ip_vs_schedule()`,
//! `ip_vs_sched_persist()`), packets of existing ones (`ip_vs_set_state()`), timers
//! (`ip_vs_conn_expire()`).

use std::net::{IpAddr, SocketAddr};

use lvs_sched::{ConnCount, DestId, Duration, Flow, Forwarding, Protocol, SvcFlags, Time};

use super::conn::{Addr, ConnKey};
use super::index::hash_words;
use super::tcp::{self, Direction, Segment, TcpState};
use super::timers::{HINTS, LaneId, NEVER, TimerRef};
use super::{Conn, ConnId, ConnState, Ipvs, NoDest, Scheduled, ServiceKey, Verdict, VirtualService};

/// A template still controlling connections is re-armed for this long
/// (`ip_vs_conn_expire()`'s `expire_later`).
const CONTROL_REARM: Duration = Duration::from_secs(60);

/// The index hash of a hashed connection.
pub(super) fn conn_hash(conns: &[Option<Conn>], id: u32) -> u64 {
    conns[id as usize].as_ref().expect("indexed entry exists").key().hash()
}

/// The index hash of a template: its service's key and the masked client address.
pub(super) fn template_hash(svc_key_hash: u64, caddr: (Addr, bool)) -> u64 {
    let (a, v6) = caddr;
    let w = |i: usize| (u64::from(a[i]) << 32) | u64::from(a[i + 1]);
    hash_words([svc_key_hash, w(0), w(2), u64::from(v6)])
}

pub(super) fn template_hash_of(services: &[VirtualService], conns: &[Option<Conn>], id: u32) -> u64 {
    let c = conns[id as usize].as_ref().expect("indexed template exists");
    template_hash(services[c.svc_index()].key_hash, c.caddr())
}

impl Ipvs {
    /// The first packet of a connection arrives at `now` (a TCP SYN or a UDP datagram):
    /// find the service (firewall mark first, then protocol/VIP/port), reuse or schedule
    /// as `ip_vs_schedule()`/`ip_vs_sched_persist()` do, create and bind the entry and run
    /// the packet through the state machine. Returns the entry's handle.
    pub fn new_conn(&mut self, now: Time, flow: &Flow, fwmark: Option<u32>) -> Result<Scheduled, NoDest> {
        self.schedule_first(now, flow, Segment::Syn, fwmark)
    }

    /// [`Ipvs::new_conn`] for a first packet `seg`: a SYN (an INIT, any datagram), or
    /// with `sloppy_tcp`/`sloppy_sctp` any segment but a reset.
    fn schedule_first(
        &mut self,
        now: Time,
        flow: &Flow,
        seg: Segment,
        fwmark: Option<u32>,
    ) -> Result<Scheduled, NoDest> {
        self.advance(now);
        let inet = ServiceKey::Addr { protocol: flow.protocol, addr: flow.daddr, port: flow.dport };
        let svc_i = fwmark
            .and_then(|m| self.service_index(&ServiceKey::fwmark(m)))
            .or_else(|| self.service_index(&inet))
            .ok_or(NoDest::NoService)?;
        let key = ConnKey::new(flow.protocol, flow.saddr, flow.sport, flow.daddr, flow.dport);
        let hash = key.hash();
        let conns = &self.conns;
        let found = self.by_key.find(hash, |i| conns[i as usize].as_ref().is_some_and(|c| c.is_key(&key)));
        if let Some(old) = found.map(ConnId) {
            if let Some(s) = self.existing_entry(now, old, flow, seg) {
                return Ok(s);
            }
        }
        // The protocol's conn_schedule(): ip_vs_todrop() before ip_vs_schedule().
        if self.todrop() {
            return Err(NoDest::DefenseDrop);
        }
        let svc = &mut self.services[svc_i];
        let (dest, control) = match svc.config.persistence {
            None => (svc.sched.schedule(now, flow).ok_or(NoDest::NoDestination)?, None),
            Some(timeout) => {
                let caddr = mask_addr(flow.saddr, svc.config.netmask);
                let (dest, tmpl) = self.persist_template(now, svc_i, caddr, timeout, flow)?;
                (dest, Some(tmpl))
            }
        };
        // ip_vs_conn_new(): kmem_cache_alloc() fails once memory is used up.
        if !self.entry_allocatable() {
            self.count_no_memory();
            return Err(NoDest::NoMemory);
        }
        let result = self.scheduled_on(svc_i, None, dest, flow);
        let svc = &mut self.services[svc_i];
        // ip_vs_conn_stats(): the real server, the service and the table.
        svc.counters.stats.conns += 1;
        svc.dests[dest.index()].stats.conns += 1;
        self.total.stats.conns += 1;
        let one_packet = flow.protocol == Protocol::Udp && svc.sched.flags().has(SvcFlags::ONEPACKET);
        let state = match flow.protocol {
            Protocol::Udp => ConnState::Udp,
            _ => ConnState::Tcp(TcpState::None),
        };
        // ip_vs_bind_dest(): the entry starts INACTIVE.
        svc.sched.bind(dest, ConnCount::Inactive);
        let mut conn = Conn::new(&key, svc_i as u32, dest, state, result.fwd != Forwarding::Masq);
        if let Some(t) = control {
            conn.set_control(t);
            self.conns[t.0 as usize].as_mut().expect("template exists").add_controlled(1);
        }
        if one_packet {
            // Never hashed; expires as soon as its packet is sent.
            conn.set_unhashed();
            let id = self.insert(conn);
            self.expire_now(id);
            return Ok(result);
        }
        let id = self.insert(conn);
        let conns = &self.conns;
        self.by_key.insert(hash, id.0, |i| conn_hash(conns, i));
        // ip_vs_set_state() with the packet that was scheduled: a sloppy ACK starts the
        // entry in ESTABLISHED (NONE --ack--> ES), a SYN in SYN_RECV.
        let _ = self.packet(now, id, seg, false);
        Ok(Scheduled { conn: Some(id), ..result })
    }

    /// A client-to-server segment `seg` reaches the director (`ip_vs_in()`): with an
    /// entry for its flow it is that entry's packet (a SYN may reschedule, as
    /// [`Ipvs::new_conn`] says); without one `tcp_conn_schedule()` schedules a SYN, and
    /// with `sloppy_tcp` any segment but a RST (`sctp_conn_schedule()`: an INIT, and with
    /// `sloppy_sctp` any chunk but an ABORT, here [`Segment::Rst`]); the entry starts in
    /// the state the segment leads to. Anything else is [`NoDest::NotNew`]: IPVS lets it
    /// pass to the director's own stack, which resets a TCP segment for its local VIP.
    /// A UDP datagram is always a first packet.
    pub fn schedule_segment(
        &mut self,
        now: Time,
        flow: &Flow,
        seg: Segment,
        fwmark: Option<u32>,
    ) -> Result<Scheduled, NoDest> {
        let sloppy = match flow.protocol {
            Protocol::Tcp => self.sysctls.sloppy_tcp,
            Protocol::Sctp => self.sysctls.sloppy_sctp,
            Protocol::Udp => return self.new_conn(now, flow, fwmark),
        };
        if seg == Segment::Syn {
            return self.new_conn(now, flow, fwmark);
        }
        if let Some(id) = self.find_conn(flow) {
            // Not a new connection (`is_new_conn()` is false): the entry's own packet,
            // unless its real server is deleted and expire_nodest_conn=1 expires it.
            self.advance(now);
            let c = self.conns[id.0 as usize].as_ref().expect("hashed entry exists");
            let (svc_i, dest) = (c.svc_index(), c.dest());
            let gone = !self.services[svc_i].sched.dest(dest).is_available();
            if !(gone && self.sysctls.expire_nodest_conn) {
                let verdict = self.packet(now, id, seg, false);
                return Ok(Scheduled { verdict, ..self.scheduled_on(svc_i, Some(id), dest, flow) });
            }
            self.expire_now(id);
        }
        if !sloppy || seg == Segment::Rst {
            return Err(NoDest::NotNew);
        }
        self.schedule_first(now, flow, seg, fwmark)
    }

    /// The first packet of a connection finds entry `old` with its key (`ip_vs_in()`):
    /// returns what becomes of it, or `None` once `old` is expired and the packet is to
    /// be scheduled afresh.
    fn existing_entry(&mut self, now: Time, old: ConnId, flow: &Flow, seg: Segment) -> Option<Scheduled> {
        let c = self.conns[old.0 as usize].as_ref().expect("hashed entry exists");
        let (svc_i, dest) = (c.svc_index(), c.dest());
        let d = self.services[svc_i].sched.dest(dest);
        // is_new_conn(): a TCP SYN (an SCTP INIT); a UDP datagram never reschedules.
        let syn = flow.protocol != Protocol::Udp && seg == Segment::Syn;
        // As the kernel the VM runs (6.1, measured there: findings22.md): expire_nodest_conn=1
        // reschedules a SYN for an entry on a weight-0 server whatever conn_reuse_mode is
        // (the outer `conn_reuse_mode &&` of older kernels is gone); with conn_reuse_mode
        // != 0 so does is_new_conn_expected() for an entry no template controls in
        // TIME_WAIT or CLOSE, or (bit 2) in FIN_WAIT without output (DR, TUN). Entries
        // never control others here (no FTP), so `n_control` is 0 and the entry expires
        // at once.
        let mode = self.sysctls.conn_reuse_mode;
        let quiesced = self.sysctls.expire_nodest_conn && d.weight() == 0;
        let expected = c.control().is_none()
            && match c.state() {
                ConnState::Tcp(TcpState::TimeWait | TcpState::Close) => true,
                ConnState::Tcp(TcpState::FinWait) => mode & 2 != 0 && c.no_output(),
                _ => false,
            };
        if syn && (quiesced || (mode != 0 && expected)) {
            self.expire_now(old);
            return None;
        }
        if !d.is_available() {
            // The real server is deleted: the packet is dropped, and with
            // expire_nodest_conn=1 the entry expires and the packet is scheduled afresh.
            if self.sysctls.expire_nodest_conn {
                self.expire_now(old);
                return None;
            }
            return Some(Scheduled {
                verdict: Verdict::Drop,
                ..self.scheduled_on(svc_i, Some(old), dest, flow)
            });
        }
        let _ = self.packet(now, old, seg, false);
        Some(self.scheduled_on(svc_i, Some(old), dest, flow))
    }

    fn scheduled_on(&self, svc_i: usize, conn: Option<ConnId>, dest: DestId, flow: &Flow) -> Scheduled {
        let svc = &self.services[svc_i];
        let d = svc.sched.dest(dest);
        let port = if d.port() == 0 { flow.dport } else { d.port() };
        Scheduled {
            conn,
            dest: SocketAddr::new(d.addr(), port),
            fwd: d.fwd(),
            dest_id: dest,
            service: svc.id,
            verdict: Verdict::Accept,
        }
    }

    /// Persistence (`ip_vs_sched_persist()`): reuse a valid template's real server, or
    /// schedule and create a template. Either way the template's timer is re-armed.
    fn persist_template(
        &mut self,
        now: Time,
        svc_i: usize,
        caddr: IpAddr,
        timeout: Duration,
        flow: &Flow,
    ) -> Result<(DestId, ConnId), NoDest> {
        let key = ConnKey::new(flow.protocol, caddr, 0, flow.daddr, 0);
        if let Some(t) = self.find_template(svc_i, key.caddr()) {
            let tmpl = self.conns[t.0 as usize].as_ref().expect("hashed template exists");
            // The template's own service: a deleted and re-added service finds the
            // templates of its predecessor, whose real servers are all deleted.
            let d = self.services[tmpl.svc_index()].sched.dest(tmpl.dest());
            // ip_vs_check_template(): a deleted server invalidates the template, and so
            // does a weight-0 one with expire_quiescent_template=1; by default a
            // quiesced server keeps its persistent clients.
            if d.is_available() && !(self.sysctls.expire_quiescent_template && d.weight() == 0) {
                let (dest, lane) = (tmpl.dest(), tmpl.timer().lane);
                self.arm_lane(t, lane);
                return Ok((dest, t));
            }
            self.unhash_template(t);
        }
        let svc = &mut self.services[svc_i];
        let dest = svc.sched.schedule(now, flow).ok_or(NoDest::NoDestination)?;
        svc.sched.bind(dest, ConnCount::Template);
        let t = self.insert(Conn::new(&key, svc_i as u32, dest, ConnState::Template, true));
        let hash = template_hash(self.services[svc_i].key_hash, key.caddr());
        let (services, conns) = (&self.services, &self.conns);
        self.templates.insert(hash, t.0, |i| template_hash_of(services, conns, i));
        self.arm(t, timeout);
        Ok((dest, t))
    }

    /// The hashed template of service `svc_i` for the (masked) client address `caddr`.
    pub(super) fn find_template(&self, svc_i: usize, caddr: (Addr, bool)) -> Option<ConnId> {
        let svc_key = self.services[svc_i].key;
        let hash = template_hash(self.services[svc_i].key_hash, caddr);
        let (services, conns) = (&self.services, &self.conns);
        let found = self.templates.find(hash, |i| {
            let c = conns[i as usize].as_ref().expect("indexed template exists");
            services[c.svc_index()].key == svc_key && c.caddr() == caddr
        });
        found.map(ConnId)
    }

    /// Invalidate a template: lookups no longer find it; its timer runs on.
    fn unhash_template(&mut self, t: ConnId) {
        let c = self.conns[t.0 as usize].as_mut().expect("template exists");
        c.set_unhashed();
        let hash = template_hash(self.services[c.svc_index()].key_hash, c.caddr());
        let (services, conns) = (&self.services, &self.conns);
        let removed = self.templates.remove(hash, t.0, |i| template_hash_of(services, conns, i));
        assert!(removed, "hashed template is in the index");
    }

    /// A segment of connection `id` passes the director at `now`: the TCP state machine
    /// moves it (and its counters) and its timer is re-armed for the new state.
    /// `output` marks a server-to-client segment (seen only with NAT).
    ///
    /// [`Verdict::Drop`]: the entry has expired (or is a template), or its real server
    /// is deleted (the entry is left as it is, or with expire_nodest_conn=1 expires at
    /// once). Counting the packet is [`Ipvs::count`]'s business.
    #[inline]
    pub fn packet(&mut self, now: Time, id: ConnId, seg: Segment, output: bool) -> Verdict {
        self.advance(now);
        let Some(c) = self.conns.get_mut(id.0 as usize).and_then(Option::as_mut) else {
            return Verdict::Drop;
        };
        if !self.services[c.svc_index()].sched.dest(c.dest()).is_available() {
            if self.sysctls.expire_nodest_conn && c.state() != ConnState::Template {
                self.expire_now(id);
            }
            return Verdict::Drop;
        }
        let mut assure = None;
        let timeout = match c.state() {
            ConnState::Tcp(s) => {
                if output {
                    c.saw_output();
                }
                let dir = match (output, c.no_output()) {
                    (true, _) => Direction::Output,
                    (false, true) => Direction::InputOnly,
                    (false, false) => Direction::Input,
                };
                let next = tcp::transition_in(self.defense.dos_table, dir, seg, s);
                c.set_state(ConnState::Tcp(next));
                if next == TcpState::Established && next != s {
                    assure = c.control();
                }
                if next.is_active() != s.is_active() {
                    let sched = &mut self.services[c.svc_index()].sched;
                    if next.is_active() {
                        sched.activate(c.dest());
                    } else {
                        sched.deactivate(c.dest());
                    }
                }
                (next as usize, self.timeouts.tcp(next))
            }
            ConnState::Udp => {
                if output {
                    assure = c.control();
                }
                (HINTS - 1, self.timeouts.udp)
            }
            ConnState::Template => return Verdict::Drop,
        };
        // ip_vs_control_assure_ct(): the template has seen its client served.
        if let Some(t) = assure.and_then(|t| self.conns[t.0 as usize].as_mut()) {
            t.set_assured();
        }
        let lane = self.timers.lane_hinted(timeout.0, timeout.1);
        self.arm_lane(id, lane);
        Verdict::Accept
    }

    /// Virtual time passes: every timer with a deadline `<= now` fires, in order.
    #[inline]
    pub fn advance(&mut self, now: Time) {
        assert!(now >= self.now, "IPVS time went backwards: {} -> {}", self.now, now);
        // The defence work, each run after the timers due by its time.
        if now >= self.defense.next_run() {
            self.run_defense(now);
        }
        if now >= self.next_due {
            self.fire_due(now);
        }
        // After the timers: an expiry changes no counter, so the order does not matter.
        if now >= self.next_tick {
            self.run_estimators(now);
        }
        self.now = now;
    }

    /// Fire the timers due by `now`.
    #[inline(never)]
    pub(super) fn fire_due(&mut self, now: Time) {
        while self.next_due <= now {
            let conns = &self.conns;
            let deadline_of = |id: u32| conns[id as usize].as_ref().expect("armed entry exists").deadline();
            match self.timers.earliest_two(deadline_of) {
                (Some((deadline, lane)), others) if deadline <= now => {
                    let id = ConnId(self.timers.pop(lane));
                    self.now = deadline;
                    self.conns[id.0 as usize].as_mut().expect("live timer's entry exists").disarm();
                    if !self.expire(id) {
                        // Nothing was armed: only `lane`'s head changed.
                        let conns = &self.conns;
                        let head = self.timers.head(lane, |id| {
                            conns[id as usize].as_ref().expect("armed entry exists").deadline()
                        });
                        self.next_due = head.map_or(others, |h| h.min(others));
                    }
                }
                (next, _) => {
                    self.next_due = next.map_or(NEVER, |(t, _)| t);
                    // Nothing more is due (`NEVER <= now` at the end of time would loop).
                    break;
                }
            }
        }
    }

    /// The earliest pending timer's deadline (stale timers are discarded on the way,
    /// hence `&mut`). The simulator interleaves expiries with its own events by it.
    pub fn next_deadline(&mut self) -> Option<Time> {
        let next = self.earliest_timer().map(|(t, _)| t);
        self.next_due = next.unwrap_or(NEVER);
        next
    }

    /// Entries (connections and templates) freed by their timer so far; REF-1 counts
    /// these expiries as model events. Entries dropped otherwise (a reused TIME_WAIT
    /// entry, a one-packet entry) are not counted.
    pub fn expired_total(&self) -> u64 {
        self.expired
    }

    pub(super) fn earliest_timer(&mut self) -> Option<(Time, LaneId)> {
        let conns = &self.conns;
        self.timers.earliest(|id| conns[id as usize].as_ref().expect("armed entry exists").deadline())
    }

    /// `ip_vs_conn_expire()`: a template still controlling entries is re-armed for 60 s
    /// (and that timeout sticks; returns true); anything else is unlinked and unbound.
    fn expire(&mut self, id: ConnId) -> bool {
        let c = self.conns[id.0 as usize].as_ref().expect("expiring entry exists");
        if c.n_control() > 0 {
            self.arm(id, CONTROL_REARM);
            if self.sync.is_some() {
                self.sync_expire_later(id);
            }
            return true;
        }
        self.expired += 1;
        self.expire_now(id);
        false
    }

    /// expire_nodest_conn=1 and a real server deleted
    /// (`ip_vs_expire_nodest_conn_flush()`): every entry bound to a deleted server and
    /// controlling none goes at once, and a template goes with its last connection. The
    /// kernel does it from a work queue a jiffy later; the model at once.
    pub(super) fn flush_nodest_conns(&mut self) {
        for i in 0..self.conns.len() {
            let Some(c) = &self.conns[i] else { continue };
            let gone = !self.services[c.svc_index()].sched.dest(c.dest()).is_available();
            if !gone || c.n_control() > 0 {
                continue;
            }
            let control = c.control();
            self.expire_now(ConnId(i as u32));
            if let Some(t) = control {
                let tmpl = self.conns[t.0 as usize].as_ref().expect("controlling template exists");
                if tmpl.n_control() == 0 {
                    self.expire_now(t);
                }
            }
        }
    }

    /// Unlink, unbind and free an entry at once.
    pub(super) fn expire_now(&mut self, id: ConnId) {
        let c = self.conns[id.0 as usize].take().expect("expiring entry exists");
        self.free.push(id.0);
        if c.timer().armed {
            self.forget_timer(c.timer());
        }
        if !c.unhashed() {
            let (services, conns) = (&self.services, &self.conns);
            let removed = match c.state() {
                ConnState::Template => {
                    let hash = template_hash(services[c.svc_index()].key_hash, c.caddr());
                    self.templates.remove(hash, id.0, |i| template_hash_of(services, conns, i))
                }
                _ => self.by_key.remove(c.key().hash(), id.0, |i| conn_hash(conns, i)),
            };
            assert!(removed, "hashed entry is in its index");
        }
        self.services[c.svc_index()].sched.unbind(c.dest(), c.count());
        if let Some(t) = c.control() {
            self.conns[t.0 as usize].as_mut().expect("controlling template exists").add_controlled(-1);
        }
    }

    pub(super) fn insert(&mut self, conn: Conn) -> ConnId {
        let id = match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = Some(conn);
                ConnId(i)
            }
            None => {
                let id = u32::try_from(self.conns.len()).ok().filter(|&i| i <= super::index::MAX_ID);
                self.conns.push(Some(conn));
                ConnId(id.expect("more than 2^25 - 1 entries in the IPVS table"))
            }
        };
        self.defense.reset_slot(id);
        // A new entry's sync state starts afresh (in_pkts 0, old_state NONE).
        if let Some(s) = &mut self.sync {
            s.reset(id);
        }
        id
    }

    /// (Re-)arm `id`'s timer for `now + timeout`.
    #[inline]
    pub(super) fn arm(&mut self, id: ConnId, timeout: Duration) {
        let lane = self.timers.lane(timeout);
        self.arm_lane(id, lane);
    }

    #[inline(always)]
    fn arm_lane(&mut self, id: ConnId, lane: LaneId) {
        // Raw nanoseconds: `Time + Duration` is an out-of-line call from here.
        let deadline = Time(self.now.0.saturating_add(self.timers.timeout(lane).0));
        let c = self.conns[id.0 as usize].as_mut().expect("armed entry exists");
        let old = c.timer();
        if old.armed && old.lane == lane && self.timers.is_tail(old) {
            // The entry's item is its lane's newest: a later deadline keeps the lane
            // sorted, and nothing was armed in the lane since, so the item stays.
            c.set_timer(old, deadline);
            return;
        }
        let r = self.timers.push(lane, id.0);
        c.set_timer(r, deadline);
        self.next_due = self.next_due.min(deadline);
        if old.armed {
            self.forget_timer(old);
        }
    }

    /// The live timer item at `r` became stale; compact its lane if mostly stale.
    #[inline]
    fn forget_timer(&mut self, r: TimerRef) {
        if self.timers.forget(r) {
            self.compact_lane(r.lane);
        }
    }

    #[cold]
    #[inline(never)]
    fn compact_lane(&mut self, lane: LaneId) {
        let conns = &mut self.conns;
        self.timers.compact(lane, |id, new| {
            conns[id as usize].as_mut().expect("live timer's entry exists").move_timer(new);
        });
    }
}

/// The client address masked with the service's persistence granularity.
fn mask_addr(addr: IpAddr, netmask: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & netmask).into()),
        IpAddr::V6(a) => {
            let plen = netmask.min(128);
            let m = if plen == 0 { 0 } else { u128::MAX << (128 - plen) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}
