//! The conversation of a connection: which messages it sends, the path each one walks
//! (which depends on the forwarding method), what the director's IPVS table sees, and what
//! happens when a message is dropped.
//!
//! Message granularity, not packets: a message is a train of packets that a FIFO channel
//! serialises back to back. A TCP connection of one request is SYN → SYN-ACK →
//! ACK, request → response → FIN → FIN-ACK → ACK, with Linux's defaults (checked against
//! a real kernel's IPVS counters by tests/ipvs_counters, docs/ipvs-spec-notes.md):
//! - the handshake's ACK is a packet of its own (connect() returns before the
//!   application writes), carried as an extra packet of the first request;
//! - each side's pure ACKs of the data it receives (`receiver_acks`: quick-ack at the
//!   start, then one per two full segments) ride, as extra packets, on its next message:
//!   the client's on its next request or FIN, the server's on its response;
//! - a payload of 0 bytes is no packet at all (the message still carries the exchange);
//! - the client closes first; the server's FIN carries its ACK of the client's FIN.
//!
//! A UDP flow is datagram → reply, repeated.
//!
//! Wire sizes [bytes at L3, as IPVS counts them]: SYN and SYN-ACK 60 (MSS, SACK-permitted,
//! timestamps, window scale), other TCP segments 52 + payload (timestamps), MSS = MTU − 52
//! (less 20 through a tunnel, whose outer header adds 20 bytes a packet on the director's
//! internal link: path-MTU discovery lowers the client's MSS, which bounds both
//! directions); UDP 28 + payload, fragmented at MTU − 28.

use lvs_ipvs::tcp::Segment;
use lvs_ipvs::{ConnId, Verdict};
use lvs_sched::{Duration, Flow, Forwarding, Protocol, Time};

use super::breakdown::Outcome;
use super::lanes::{DirChannel, Lane};
use super::{Conn, EPHEMERAL_FIRST, EPHEMERAL_LAST, Event, NO_ENTRY, NO_SERVER, Simulation};
use crate::cpu::Admission;
use crate::dist::{Dist, secs_to_duration};
use crate::link::Transmit;
use crate::model::config::{PopulationConfig, Transport};
use crate::rng::Rng;

/// The most requests (or datagrams) a connection makes, whatever its distribution draws.
const MAX_REQUESTS: f64 = 1e6;

/// A message in flight.
#[derive(Clone, Copy, Debug)]
pub(super) struct Msg {
    pub(super) conn: u32,
    pub(super) kind: Kind,
    /// Index of the next stage of its path.
    stage: u8,
    /// Retransmissions so far.
    attempt: u8,
    /// The director it passes (set where it enters one: the external link inbound, the
    /// internal link for NAT replies).
    pub(super) dir: u8,
    pub(super) packets: u32,
    pub(super) bytes: u64,
    /// When the sender (re)sent it: retransmission timers count from here.
    sent_at: Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Syn,
    Request,
    Fin,
    LastAck,
    Datagram,
    /// The client's reset when it gives up on a response.
    Abort,
    SynAck,
    Response,
    FinAck,
    Rst,
    Reply,
}

impl Kind {
    pub(super) fn inbound(self) -> bool {
        matches!(self, Kind::Syn | Kind::Request | Kind::Fin | Kind::LastAck | Kind::Datagram | Kind::Abort)
    }

    /// The segment the IPVS state machine sees (`tcp_state_idx()`: RST, then SYN, FIN, ACK).
    pub(super) fn segment(self) -> Segment {
        match self {
            Kind::Syn | Kind::SynAck => Segment::Syn,
            Kind::Fin | Kind::FinAck => Segment::Fin,
            Kind::Rst | Kind::Abort => Segment::Rst,
            _ => Segment::Ack,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The client's access network (constant latency).
    Access,
    ExtIn,
    ExtOut,
    IntOut,
    IntIn,
    DirCpu,
    IpvsIn,
    IpvsOut,
    /// The real server's own uplink (DR/TUN replies).
    Uplink,
    AtServer,
    AtClient,
}

const INBOUND: [Stage; 6] =
    [Stage::Access, Stage::ExtIn, Stage::DirCpu, Stage::IpvsIn, Stage::IntOut, Stage::AtServer];
const OUTBOUND_NAT: [Stage; 6] =
    [Stage::IntIn, Stage::DirCpu, Stage::IpvsOut, Stage::ExtOut, Stage::Access, Stage::AtClient];
const OUTBOUND_DIRECT: [Stage; 3] = [Stage::Uplink, Stage::Access, Stage::AtClient];

/// What a message's path depends on of its connection.
#[derive(Clone, Copy)]
struct Hop {
    pop: u16,
    fwd: Forwarding,
    server: u32,
}

impl Hop {
    fn of(c: &Conn) -> Hop {
        Hop { pop: c.pop, fwd: c.fwd, server: c.server }
    }
}

/// IP + TCP header with timestamps [bytes].
const TCP_HDR: u64 = 52;
/// A SYN or SYN-ACK with its options [bytes].
const SYN_BYTES: u64 = 60;
/// Linux's quick-ack budget at the start of a connection (`TCP_MAX_QUICKACKS`).
const QUICKACKS: u32 = 16;
/// IP + UDP header [bytes].
const UDP_HDR: u64 = 28;
/// The IP-IP outer header [bytes].
pub(super) const TUN_HDR: u64 = 20;

impl Simulation {
    pub(super) fn arrival(&mut self, p: usize) {
        self.schedule_arrival(p);
        self.m.arrivals += 1;
        let now = self.now;
        let measured = now >= self.warmup;
        let cfg = &self.cfg.populations[p];
        let pop = &mut self.pops[p];
        let client = pick(&mut pop.rng_clients, cfg.clients);
        let port = &mut pop.ports[client as usize];
        let cport = *port;
        *port = if cport >= EPHEMERAL_LAST { EPHEMERAL_FIRST } else { cport + 1 };
        let (requests, udp) = match &cfg.transport {
            Transport::Tcp { requests, .. } => (requests, false),
            Transport::Udp { requests, .. } => (requests, true),
        };
        // At most MAX_REQUESTS: a draw from a long tail must not make one connection
        // outlast every budget (the scenario format bounds the distribution's parameters).
        let requests_left = whole(pop.fixed[0], requests, &mut pop.rng_work, 1.0, MAX_REQUESTS);
        self.serial = self.serial.wrapping_add(1);
        let conn = Conn {
            opened: now,
            req_sent: now,
            boot: 0,
            ipvs: NO_ENTRY,
            server: NO_SERVER,
            client,
            serial: self.serial,
            demand_ns: 0,
            req_payload: 0,
            resp_payload: 0,
            requests_left,
            ack_debt: 0,
            client_quickack: true,
            server_quickack: true,
            pop: p as u16,
            cport,
            dir: self.pops[p].dir as u8,
            fwd: Forwarding::DirectRouting,
            measured,
            backend_at: now,
            done: false,
            refs: 1,
        };
        let c = self.alloc(conn);
        self.open_conns += 1;
        if measured {
            self.m.counts.offered += 1;
            self.m.pops[p].counts.offered += 1;
        }
        self.draw_request(c);
        if udp {
            self.send_request(c);
        } else {
            self.send(c, Kind::Syn, 1, SYN_BYTES);
        }
    }

    /// Draws the sizes and demand of the connection's next request.
    fn draw_request(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        let cfg = &self.cfg.populations[conn.pop as usize];
        let pop = &mut self.pops[conn.pop as usize];
        let rng = &mut pop.rng_work;
        conn.req_payload = whole(pop.fixed[1], &cfg.request_bytes, rng, 0.0, u32::MAX as f64);
        conn.resp_payload = whole(pop.fixed[2], &cfg.response_bytes, rng, 0.0, u32::MAX as f64);
        conn.demand_ns = secs_to_duration(cfg.demand.sample(rng)).as_nanos();
    }

    /// The client sends its current request (after the handshake, or a think time);
    /// `req_sent` is already set: the connection's start for the first request.
    pub(super) fn send_request(&mut self, c: u32) {
        let now = self.now;
        let conn = &mut self.conns[c as usize];
        if conn.requests_left == 0 {
            return;
        }
        let payload = u64::from(conn.req_payload);
        let mtu = u64::from(self.cfg.mtu);
        match self.cfg.populations[conn.pop as usize].transport {
            Transport::Tcp { .. } => {
                let (pkts, bytes) = tcp_segments(payload, tcp_mss(mtu, conn.fwd));
                let debt = std::mem::take(&mut conn.ack_debt);
                let (serial, left) = (conn.serial, conn.requests_left);
                if let Some(t) = self.cfg.populations[conn.pop as usize].response_timeout {
                    let lane = self.streams.timeout(conn.pop as usize);
                    self.lanes.push(
                        &mut self.queue,
                        lane,
                        now + t,
                        Event::ResponseTimeout { conn: c, serial, left },
                    );
                }
                self.send(c, Kind::Request, pkts + debt, bytes + u64::from(debt) * TCP_HDR);
            }
            Transport::Udp { timeout, .. } => {
                let (pkts, bytes) = segments(payload, mtu - UDP_HDR, UDP_HDR);
                let (serial, left) = (conn.serial, conn.requests_left);
                let lane = self.streams.timeout(conn.pop as usize);
                self.lanes.push(
                    &mut self.queue,
                    lane,
                    now + timeout,
                    Event::UdpTimeout { conn: c, serial, left },
                );
                self.send(c, Kind::Datagram, pkts, bytes);
            }
        }
    }

    fn send(&mut self, conn: u32, kind: Kind, packets: u32, bytes: u64) {
        let dir = self.conns[conn as usize].dir;
        let m = Msg { conn, kind, stage: 0, attempt: 0, dir, packets, bytes, sent_at: self.now };
        self.start(m);
    }

    /// Moves a message along its path until it must wait (an event is scheduled) or ends.
    pub(super) fn walk(&mut self, mut m: Msg) {
        // What the path depends on, as at the start (IPVS scheduling changes it).
        let mut c = Hop::of(&self.conns[m.conn as usize]);
        loop {
            let path: &[Stage] = if m.kind.inbound() {
                &INBOUND
            } else if c.fwd == Forwarding::Masq {
                &OUTBOUND_NAT
            } else {
                &OUTBOUND_DIRECT
            };
            let now = self.now;
            let stage = path[m.stage as usize];
            if matches!(stage, Stage::ExtIn | Stage::IntIn) {
                // The packet enters a director: the one the VIP (or, for replies, the
                // floating gateway address) leads to now.
                match self.route(&self.conns[m.conn as usize]) {
                    Some(d) => m.dir = d as u8,
                    None => return self.dropped(m),
                }
            }
            let dir = &mut self.dirs[m.dir as usize];
            // A stage of a director passes only while it runs (and the link, or for
            // IPVS the VIP, is there); the others do not depend on it.
            let up = match stage {
                Stage::ExtIn | Stage::ExtOut => dir.alive && dir.ext_up,
                Stage::IntIn | Stage::IntOut => dir.alive && dir.int_up,
                Stage::IpvsIn => dir.alive && dir.holds,
                Stage::DirCpu | Stage::IpvsOut => dir.alive,
                Stage::Access | Stage::Uplink | Stage::AtServer | Stage::AtClient => true,
            };
            if !up {
                if !dir.alive && stage == Stage::ExtIn && self.ecmp.is_some() {
                    self.ecmp_lost_at(m.dir as usize, m.conn);
                }
                return self.dropped(m);
            }
            let fate = match stage {
                Stage::Access => {
                    Transmit::Delivered(now + self.cfg.populations[c.pop as usize].access_latency)
                }
                Stage::ExtIn => dir.ext_in.send(now, m.bytes, u64::from(m.packets)),
                Stage::ExtOut => dir.ext_out.send(now, m.bytes, u64::from(m.packets)),
                Stage::IntOut => {
                    let extra = if c.fwd == Forwarding::Tunnel { TUN_HDR * u64::from(m.packets) } else { 0 };
                    dir.int_out.send(now, m.bytes + extra, u64::from(m.packets))
                }
                Stage::IntIn => dir.int_in.send(now, m.bytes, u64::from(m.packets)),
                Stage::DirCpu => dir.cpu.send(now, m.bytes, u64::from(m.packets)),
                Stage::Uplink => {
                    self.servers[c.server as usize].uplink.send(now, m.bytes, u64::from(m.packets))
                }
                Stage::IpvsIn => match self.ipvs_in(&m) {
                    Ok(()) => {
                        // Scheduling set the real server and forwarding method.
                        c = Hop::of(&self.conns[m.conn as usize]);
                        Transmit::Delivered(now)
                    }
                    Err(o @ (Outcome::Refused | Outcome::Lost)) => {
                        // The director answers with a reset (no real server, or no entry
                        // for a mid-connection segment): the message was all that was left.
                        self.end_conn(m.conn, o);
                        return self.release(m.conn);
                    }
                    Err(_) => Transmit::Dropped,
                },
                Stage::IpvsOut => match self.ipvs_out(&m) {
                    Some(t) => t,
                    None => return,
                },
                Stage::AtServer => return self.at_server(m),
                Stage::AtClient => return self.at_client(m),
            };
            match fate {
                Transmit::Dropped => return self.dropped(m),
                Transmit::Delivered(t) => {
                    m.stage += 1;
                    if t > now {
                        let lane = self.lane_after(stage, &c, m.dir as usize);
                        self.lanes.push(&mut self.queue, lane, t, Event::Msg(m));
                        return;
                    }
                }
            }
        }
    }

    /// NAT: the director's IPVS translates a reply back. `None`: it has no entry for it,
    /// the client resets the connection (ended and released).
    pub(super) fn ipvs_out(&mut self, m: &Msg) -> Option<Transmit> {
        let now = self.now;
        let flow = self.flow(&self.conns[m.conn as usize]);
        let Some(id) = self.entry_on(m.dir as usize, m.conn, &flow) else {
            // A NAT reply through a director with no entry for it: not translated back,
            // the client resets it.
            self.end_conn(m.conn, Outcome::Lost);
            self.release(m.conn);
            return None;
        };
        let d = &mut self.dirs[m.dir as usize];
        if m.packets == 0 {
            // An empty response: no packet.
            return Some(Transmit::Delivered(now));
        }
        Some(match d.ipvs.packet(now, id, m.kind.segment(), true) {
            Verdict::Accept => {
                d.ipvs.count(id, true, u64::from(m.packets), m.bytes);
                Transmit::Delivered(now)
            }
            Verdict::Drop => Transmit::Dropped,
        })
    }

    /// The lane of a message delivered later by `stage` (see [`super::lanes`]): the
    /// stream it leaves in order.
    fn lane_after(&self, stage: Stage, c: &Hop, dir: usize) -> Lane {
        let ch = |k| self.streams.channel(dir, k);
        match stage {
            Stage::Access => self.streams.access(c.pop as usize),
            Stage::ExtIn => ch(DirChannel::ExtIn),
            Stage::ExtOut => ch(DirChannel::ExtOut),
            Stage::IntOut => ch(DirChannel::IntOut),
            Stage::IntIn => ch(DirChannel::IntIn),
            Stage::DirCpu => ch(DirChannel::Cpu),
            Stage::Uplink => self.streams.uplink(c.server as usize),
            // Delivered at once: never later.
            Stage::IpvsIn | Stage::IpvsOut | Stage::AtServer | Stage::AtClient => {
                unreachable!("{stage:?} delivers at once")
            }
        }
    }

    /// The director's IPVS sees an inbound message: a new connection is scheduled, any
    /// other packet must find its entry.
    pub(super) fn ipvs_in(&mut self, m: &Msg) -> Result<(), Outcome> {
        let now = self.now;
        let c = &self.conns[m.conn as usize];
        let di = m.dir as usize;
        let flow = self.flow(c);
        let moved = c.ipvs != NO_ENTRY && usize::from(c.dir) != di;
        let (pop, measured, unscheduled) = (c.pop as usize, c.measured, c.server == NO_SERVER);
        let existing = self.entry_on(di, m.conn, &flow);
        let dir = &mut self.dirs[di];
        if let Some(id) = existing {
            if m.packets == 0 {
                // An empty request: nothing on the wire for IPVS to see.
                return Ok(());
            }
            let r = match dir.ipvs.packet(now, id, m.kind.segment(), false) {
                Verdict::Accept => {
                    dir.ipvs.count(id, false, u64::from(m.packets), m.bytes);
                    Ok(())
                }
                Verdict::Drop => Err(Outcome::Dropped),
            };
            if self.ha.is_some() {
                self.sync_collect(di);
            }
            return r;
        }
        if m.kind != Kind::Syn && flow.protocol == Protocol::Tcp {
            // No entry for a mid-connection segment (it expired, or another director
            // scheduled it and this one took over without a synced entry, or an ECMP
            // router moved it): the director's own stack answers with a reset, unless
            // sloppy_tcp schedules it.
            if dir.ipvs.sysctls().sloppy_tcp || self.ecmp.is_some() {
                return self.segment_without_entry(m, &flow, moved);
            }
            if moved {
                self.note_moved(false);
                return Err(Outcome::Lost);
            }
            return Err(Outcome::Refused);
        }
        let fwmark = self.cfg.populations[pop].fwmark;
        let s = dir.ipvs.new_conn(now, &flow, fwmark).map_err(super::flood::refusal)?;
        if let Some(ha) = self.ha.as_mut()
            && measured
            && unscheduled
        {
            ha.scheduled[di] += 1;
        }
        if unscheduled && let Some(t) = self.ecmp.as_mut() {
            t.count_scheduled(di);
        }
        let dir = &mut self.dirs[di];
        if s.verdict == Verdict::Drop {
            // A SYN for an entry whose real server was deleted: dropped, so TCP retries.
            return Err(Outcome::Dropped);
        }
        match s.conn {
            Some(id) => dir.ipvs.count(id, false, u64::from(m.packets), m.bytes),
            None => dir.ipvs.count_on(s.service, s.dest_id, false, u64::from(m.packets), m.bytes),
        }
        let server = dir.dest_server[s.service.0 as usize][s.dest_id.0 as usize];
        let inflight = self.dirs.iter().map(|d| d.ipvs.conn_count() as u64).sum::<u64>();
        self.m.peak_inflight = self.m.peak_inflight.max(inflight);
        if self.ha.is_some() {
            self.sync_collect(di);
        }
        let conn = &mut self.conns[m.conn as usize];
        let first = conn.server == NO_SERVER;
        conn.ipvs = s.conn.unwrap_or(NO_ENTRY);
        conn.dir = di as u8;
        conn.fwd = s.fwd;
        if first {
            conn.server = server;
            let srv = &mut self.servers[server as usize];
            srv.open.set(now, srv.open.value() + 1);
            if conn.measured {
                srv.connections += 1;
            }
        } else if conn.server != server {
            // Rescheduled: a UDP flow (one-packet scheduling, or its entry expired), or a
            // SYN retransmitted after its entry expired. Its open count moves along.
            let old = std::mem::replace(&mut conn.server, server) as usize;
            let srv = &mut self.servers[old];
            srv.open.set(now, srv.open.value() - 1);
            let srv = &mut self.servers[server as usize];
            srv.open.set(now, srv.open.value() + 1);
        }
        Ok(())
    }

    pub(super) fn at_server(&mut self, m: Msg) {
        let c = &self.conns[m.conn as usize];
        let (s, boot, demand_ns) = (c.server as usize, c.boot, c.demand_ns);
        let srv = &self.servers[s];
        if srv.cpu.fault() == Some(crate::cpu::Fault::Crashed) {
            // A crashed host answers nothing: TCP retransmits, a datagram is lost.
            return self.dropped(m);
        }
        let tcp = !matches!(m.kind, Kind::Datagram);
        if tcp && !matches!(m.kind, Kind::Syn | Kind::Abort) && boot != srv.boots {
            // The host rebooted since it accepted the connection: no socket, a reset.
            return self.send(m.conn, Kind::Rst, 1, TCP_HDR);
        }
        match m.kind {
            Kind::Syn => {
                self.conns[m.conn as usize].boot = srv.boots;
                self.send(m.conn, Kind::SynAck, 1, SYN_BYTES)
            }
            Kind::Request | Kind::Datagram => {
                if m.kind == Kind::Datagram {
                    self.conns[m.conn as usize].boot = srv.boots;
                }
                match self.servers[s].cpu.arrive(self.now, m.conn, demand_ns) {
                    Admission::Refused => {
                        self.servers[s].refused += 1;
                        if m.kind == Kind::Request {
                            self.send(m.conn, Kind::Rst, 1, TCP_HDR);
                        } else {
                            // The datagram is lost: no reply will come.
                            self.end_conn(m.conn, Outcome::Dropped);
                            self.release(m.conn);
                        }
                    }
                    Admission::Started | Admission::Queued => {
                        let srv = &mut self.servers[s];
                        srv.rif.set(self.now, srv.rif.value() + 1);
                        self.resched_server(s)
                    }
                }
            }
            Kind::Fin => self.send(m.conn, Kind::FinAck, 1, TCP_HDR),
            // The client's reset closes the socket; a request in progress goes on until the
            // server writes its response (see `respond`).
            Kind::LastAck | Kind::Abort => self.release(m.conn),
            _ => unreachable!("outbound message {:?} at a server", m.kind),
        }
    }

    pub(super) fn server_done(&mut self, s: usize) {
        let now = self.now;
        let job = self.servers[s].cpu.complete(now);
        self.resched_server(s);
        if job >= super::health::CHECK_JOB_BASE {
            return self.check_job_done(job);
        }
        self.servers[s].served += 1;
        self.m.completions += 1;
        let conn = &self.conns[job as usize];
        let pcfg = &self.cfg.populations[conn.pop as usize];
        match (pcfg.backend_demand.as_ref(), self.cfg.servers[s].backend) {
            (Some(_), Some(b)) => {
                let lat = self.cfg.backends[b].latency;
                let lane = self.streams.backend(b);
                self.lanes.push(&mut self.queue, lane, now + lat, Event::BackendQuery { conn: job });
            }
            _ => self.respond(job),
        }
    }

    pub(super) fn backend_query(&mut self, c: u32) {
        let conn = self.conns[c as usize];
        let b = self.cfg.servers[conn.server as usize].backend.expect("queried a backend");
        let pcfg = &self.cfg.populations[conn.pop as usize];
        let demand = pcfg.backend_demand.as_ref().expect("has a backend demand");
        let ns = secs_to_duration(demand.sample(&mut self.pops[conn.pop as usize].rng_work)).as_nanos();
        let now = self.now;
        let admission = self.backends[b].cpu.arrive(now, c, ns);
        let admitted = !matches!(admission, Admission::Refused);
        let in_window = now >= self.warmup && now < self.end;
        self.backends[b].arrived(now, admitted, in_window, conn.measured);
        if admitted {
            self.conns[c as usize].backend_at = now;
            self.resched_backend(b);
        } else {
            self.servers[conn.server as usize].refused += 1;
            self.request_left(conn.server as usize);
            self.send(c, Kind::Rst, 1, TCP_HDR);
        }
    }

    /// A request admitted at real server `s` leaves it (answered, refused by its backend,
    /// or lost): one fewer in flight.
    pub(super) fn request_left(&mut self, s: usize) {
        let srv = &mut self.servers[s];
        debug_assert!(srv.rif.value() > 0, "a request left server {s} with none in flight");
        srv.rif.set(self.now, srv.rif.value().saturating_sub(1));
        srv.rif_left += 1;
    }

    pub(super) fn backend_done(&mut self, b: usize) {
        let job = self.backends[b].cpu.complete(self.now);
        let conn = &self.conns[job as usize];
        self.backends[b].answered(self.now, conn.backend_at, conn.measured);
        self.resched_backend(b);
        let lat = self.cfg.backends[b].latency;
        let lane = self.streams.backend(b);
        self.lanes.push(&mut self.queue, lane, self.now + lat, Event::BackendReply { conn: job });
    }

    /// The real server sends the response to the current request.
    pub(super) fn respond(&mut self, c: u32) {
        let conn = self.conns[c as usize];
        self.request_left(conn.server as usize);
        let srv = &self.servers[conn.server as usize];
        let tcp = matches!(self.cfg.populations[conn.pop as usize].transport, Transport::Tcp { .. });
        if srv.cpu.fault() == Some(crate::cpu::Fault::Crashed) || conn.boot != srv.boots {
            // The host crashed while its backend worked for the request: it is lost.
            self.end_conn(c, Outcome::Dropped);
            return self.release(c);
        }
        if tcp && conn.done {
            // The client gave up and reset the connection: the write fails.
            return self.release(c);
        }
        let mtu = u64::from(self.cfg.mtu);
        let payload = u64::from(conn.resp_payload);
        match self.cfg.populations[conn.pop as usize].transport {
            Transport::Tcp { .. } => {
                let mss = tcp_mss(mtu, conn.fwd);
                let (pkts, bytes) = tcp_segments(payload, mss);
                // The server's pure ACKs of the request, sent while it arrived.
                let acks = receiver_acks(u64::from(conn.req_payload), mss, conn.server_quickack);
                if conn.req_payload > 0 {
                    self.conns[c as usize].server_quickack = false;
                }
                self.send(c, Kind::Response, pkts + acks, bytes + u64::from(acks) * TCP_HDR);
            }
            Transport::Udp { .. } => {
                let (pkts, bytes) = segments(payload, mtu - UDP_HDR, UDP_HDR);
                self.send(c, Kind::Reply, pkts, bytes);
            }
        }
    }

    pub(super) fn at_client(&mut self, m: Msg) {
        let now = self.now;
        match m.kind {
            Kind::SynAck => {
                // The handshake's ACK: connect() returns before the request is written.
                self.conns[m.conn as usize].ack_debt += 1;
                self.send_request(m.conn)
            }
            Kind::Response | Kind::Reply => {
                let conn = &self.conns[m.conn as usize];
                if conn.done {
                    // A UDP reply after the client gave up.
                    return self.release(m.conn);
                }
                let mss = tcp_mss(u64::from(self.cfg.mtu), conn.fwd);
                self.record_response(m.conn);
                let tcp = m.kind == Kind::Response;
                let conn = &mut self.conns[m.conn as usize];
                conn.requests_left -= 1;
                if tcp {
                    // The client's pure ACKs of the response, sent with its next message.
                    conn.ack_debt += receiver_acks(u64::from(conn.resp_payload), mss, conn.client_quickack);
                    conn.client_quickack &= conn.resp_payload == 0;
                }
                let (left, pop) = (conn.requests_left, conn.pop as usize);
                if left == 0 {
                    self.end_conn(m.conn, Outcome::Completed);
                    if tcp {
                        let debt = std::mem::take(&mut self.conns[m.conn as usize].ack_debt);
                        self.send(m.conn, Kind::Fin, 1 + debt, TCP_HDR * u64::from(1 + debt));
                    } else {
                        self.release(m.conn);
                    }
                    return;
                }
                self.draw_request(m.conn);
                let think = match &self.cfg.populations[pop].transport {
                    Transport::Tcp { think_time, .. } | Transport::Udp { think_time, .. } => think_time,
                };
                let wait = secs_to_duration(think.sample(&mut self.pops[pop].rng_work));
                if wait == Duration::ZERO {
                    self.conns[m.conn as usize].req_sent = now;
                    self.send_request(m.conn);
                } else {
                    self.conns[m.conn as usize].req_sent = now + wait;
                    self.queue.push(now + wait, Event::Think { conn: m.conn });
                }
            }
            Kind::FinAck => self.send(m.conn, Kind::LastAck, 1, TCP_HDR),
            Kind::Rst => {
                self.end_conn(m.conn, Outcome::Refused);
                self.release(m.conn);
            }
            _ => unreachable!("inbound message {:?} at a client", m.kind),
        }
    }

    pub(super) fn udp_timeout(&mut self, c: u32, serial: u32, left: u32) {
        let conn = &self.conns[c as usize];
        if conn.serial == serial && !conn.done && conn.requests_left == left {
            self.end_conn(c, Outcome::Dropped);
        }
    }

    /// A TCP client has waited `response_timeout` for the response to request `left`: it
    /// gives up (dropped) and resets the connection. The reset walks to the real server
    /// (the director's entry sees it) beside whatever the request's own chain is doing;
    /// each ends with a release.
    pub(super) fn response_timeout(&mut self, c: u32, serial: u32, left: u32) {
        let conn = &self.conns[c as usize];
        if conn.serial != serial || conn.done || conn.requests_left != left {
            return;
        }
        self.end_conn(c, Outcome::Dropped);
        self.conns[c as usize].refs += 1;
        self.send(c, Kind::Abort, 1, TCP_HDR);
    }

    /// A channel's buffer was full, or IPVS dropped the packet: TCP retransmits after its
    /// timeout (doubling), up to the retry limit; UDP leaves it to the client's timeout.
    pub(super) fn dropped(&mut self, m: Msg) {
        let conn = self.conns[m.conn as usize];
        if matches!(m.kind, Kind::Datagram | Kind::Reply) {
            self.end_conn(m.conn, Outcome::Dropped);
            return self.release(m.conn);
        }
        if m.kind == Kind::Abort {
            // A reset is not retransmitted.
            return self.release(m.conn);
        }
        if u32::from(m.attempt) >= self.cfg.max_retries {
            if !conn.done {
                self.end_conn(m.conn, Outcome::Dropped);
            }
            return self.release(m.conn);
        }
        let syn = matches!(m.kind, Kind::Syn | Kind::SynAck);
        let rto = if syn { self.cfg.syn_rto } else { self.cfg.data_rto };
        let at = (m.sent_at + Duration(rto.as_nanos().saturating_mul(1 << m.attempt.min(30)))).max(self.now);
        let lane = self.streams.retransmit(syn, m.attempt + 1);
        let again = Msg { stage: 0, attempt: m.attempt + 1, sent_at: at, ..m };
        self.lanes.push(&mut self.queue, lane, at, Event::Retransmit(again));
    }

    pub(super) fn retransmit(&mut self, m: Msg) {
        if m.kind == Kind::Request && self.conns[m.conn as usize].done {
            // The client gave up on this request and reset the connection.
            return self.release(m.conn);
        }
        self.start(m);
    }

    /// Settles the client's view of a connection (once). Releasing its slot is the
    /// caller's business: only when nothing in flight refers to it any more.
    pub(super) fn end_conn(&mut self, c: u32, outcome: Outcome) {
        let now = self.now;
        let conn = &mut self.conns[c as usize];
        if conn.done {
            return;
        }
        conn.done = true;
        self.open_conns -= 1;
        if conn.server != NO_SERVER {
            let srv = &mut self.servers[conn.server as usize];
            srv.open.set(now, srv.open.value() - 1);
        }
        if self.ecmp.is_some() {
            self.ecmp_conn_ended(c, matches!(outcome, Outcome::Dropped));
        }
        if let Some(d) = self.dos.as_mut() {
            d.ended(&outcome);
        }
        let conn = &mut self.conns[c as usize];
        if !matches!(outcome, Outcome::Completed) {
            self.m.failed += 1;
            if conn.server != NO_SERVER
                && let Some(h) = self.health.as_mut()
            {
                h.conn_failed(conn.server as usize);
            }
        }
        let pop = &mut self.m.pops[conn.pop as usize];
        if matches!(outcome, Outcome::Completed) && now >= self.warmup && now < self.end {
            self.m.completed_in_window += 1;
            pop.completed_in_window += 1;
        }
        if conn.measured {
            super::breakdown::count(&mut self.m.counts, &outcome);
            super::breakdown::count(&mut pop.counts, &outcome);
        }
    }

    fn alloc(&mut self, conn: Conn) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = conn;
                i
            }
            None => {
                self.conns.push(conn);
                let c = self.conns.len() - 1;
                // Job ids on real servers are connection slots, below the health checks'.
                assert!(c < super::health::CHECK_JOB_BASE as usize, "fewer than 2^31 connections in flight");
                c as u32
            }
        }
    }

    /// Ends one chain of events referring to connection `c`; its slot is free when the
    /// last one ends.
    pub(super) fn release(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        debug_assert!(conn.done, "released before its outcome was settled");
        if conn.refs > 1 {
            conn.refs -= 1;
            return;
        }
        conn.serial = 0;
        self.free.push(c);
    }

    /// At the end of the run, connections still open (stuck on a hung real server
    /// without a response timeout) count as dropped.
    pub(super) fn end_stuck_conns(&mut self) {
        for c in 0..self.conns.len() {
            if !self.conns[c].done {
                self.end_conn(c as u32, Outcome::Dropped);
            }
        }
    }
}

/// Packets and L3 bytes of `payload` bytes cut at `mss`, each with a `header`.
fn segments(payload: u64, mss: u64, header: u64) -> (u32, u64) {
    let pkts = payload.div_ceil(mss).max(1);
    (u32::try_from(pkts).unwrap_or(u32::MAX), payload + pkts * header)
}

/// TCP segments and their L3 bytes for `payload` bytes: none for none.
fn tcp_segments(payload: u64, mss: u64) -> (u32, u64) {
    let pkts = payload.div_ceil(mss);
    (u32::try_from(pkts).unwrap_or(u32::MAX), payload + pkts * TCP_HDR)
}

/// The TCP payload a segment carries [bytes]: the MTU less IP, TCP and timestamp
/// headers; through a tunnel, path-MTU discovery (the director answers a full-size
/// segment with "fragmentation needed") lowers the client's MSS by the outer header, and
/// the MSS it advertises bounds the real server's segments too.
fn tcp_mss(mtu: u64, fwd: Forwarding) -> u64 {
    let tun = if fwd == Forwarding::Tunnel { TUN_HDR } else { 0 };
    mtu - TCP_HDR - tun
}

/// The pure ACKs a Linux receiver sends for `payload` bytes that arrive as segments of
/// `mss` in a row (`__tcp_ack_snd_check()`). Its first data puts it in quick-ack mode
/// (`tcp_event_data_recv()` → `tcp_incr_quickack()`): one ACK a segment, up to
/// `QUICKACKS`; then one per two full segments. The ACK of an odd last segment waits
/// and rides on the receiver's next segment (its request, response or FIN), except in
/// its first data, before it answers within the delayed-ACK time (pingpong mode): a
/// short last segment marks the ACK "pushed", and the application's read that empties
/// the buffer sends it at once (`tcp_measure_rcv_mss()`, `tcp_cleanup_rbuf()`).
fn receiver_acks(payload: u64, mss: u64, quickack: bool) -> u32 {
    let (n, _) = tcp_segments(payload, mss);
    let quick = if quickack { n.min(QUICKACKS) } else { 0 };
    let pushed = quickack && (n - quick) % 2 == 1 && payload % mss != 0;
    quick + (n - quick) / 2 + u32::from(pushed)
}

/// The numbers of requests, request bytes and response bytes of a population's
/// connections where they are constant (a constant consumes no random number): rounded
/// once instead of at every draw.
pub(super) fn fixed_draws(p: &PopulationConfig) -> [Option<u32>; 3] {
    let requests = match &p.transport {
        Transport::Tcp { requests, .. } | Transport::Udp { requests, .. } => requests,
    };
    let fixed = |d: &Dist, lo: f64, hi: f64| match *d {
        Dist::Constant(c) => Some(round_within(c, lo, hi)),
        _ => None,
    };
    [
        fixed(requests, 1.0, MAX_REQUESTS),
        fixed(&p.request_bytes, 0.0, u32::MAX as f64),
        fixed(&p.response_bytes, 0.0, u32::MAX as f64),
    ]
}

/// A whole number drawn from `d`: rounded to the nearest, within `[lo, hi]`; `fixed` if
/// it is known (see [`fixed_draws`]).
#[inline]
fn whole(fixed: Option<u32>, d: &Dist, rng: &mut Rng, lo: f64, hi: f64) -> u32 {
    match fixed {
        Some(n) => n,
        None => round_within(d.sample(rng), lo, hi),
    }
}

/// `x` rounded to the nearest whole number within `[lo, hi]`.
fn round_within(x: f64, lo: f64, hi: f64) -> u32 {
    x.round().clamp(lo, hi) as u32
}

/// A uniform client index in `0..n` (multiply-shift, no modulo bias worth the name).
fn pick(rng: &mut Rng, n: u32) -> u32 {
    ((u64::from(rand::RngCore::next_u32(rng)) * u64::from(n)) >> 32) as u32
}

/// The `i`-th client address after `first`.
pub(super) fn client_addr(first: std::net::IpAddr, i: u32) -> std::net::IpAddr {
    match first {
        std::net::IpAddr::V4(a) => std::net::IpAddr::V4(u32::from(a).wrapping_add(i).into()),
        std::net::IpAddr::V6(a) => std::net::IpAddr::V6(u128::from(a).wrapping_add(u128::from(i)).into()),
    }
}

impl Simulation {
    /// The flow a connection's inbound packets carry.
    fn flow(&self, c: &Conn) -> Flow {
        let pcfg = &self.cfg.populations[c.pop as usize];
        Flow {
            protocol: pcfg.protocol(),
            saddr: client_addr(pcfg.first_client, c.client),
            sport: c.cport,
            daddr: pcfg.vip,
            dport: pcfg.port,
        }
    }

    /// The director a connection's packets reach now: the population's own, or where its
    /// ECMP router or HA group sends them; `None` when no director takes them.
    fn route(&self, c: &Conn) -> Option<usize> {
        let d = self.pops[c.pop as usize].dir;
        if let Some(t) = &self.ecmp
            && t.has(d)
        {
            return t.route(&self.flow(c));
        }
        match &self.ha {
            Some(ha) if ha.has(d) => ha.route(&self.flow(c)),
            _ => Some(d),
        }
    }

    /// Connection `conn`'s entry in director `d`'s table: its own if that director
    /// scheduled it, else (it moved there in a fail-over) a synced entry found by its
    /// addresses, which it adopts; `None` if there is none.
    /// `flow` is the connection's own.
    fn entry_on(&mut self, d: usize, conn: u32, flow: &Flow) -> Option<ConnId> {
        let c = &self.conns[conn as usize];
        if c.ipvs == NO_ENTRY {
            return None;
        }
        if usize::from(c.dir) == d {
            return Some(c.ipvs).filter(|&id| self.dirs[d].ipvs.entry_matches(id, flow));
        }
        let found = self.dirs[d].ipvs.find_conn(flow);
        if let Some(id) = found {
            let c = &mut self.conns[conn as usize];
            c.ipvs = id;
            c.dir = d as u8;
            self.note_moved(true);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_quick_ack_their_first_data_then_ack_every_second_segment() {
        // First data: an ACK a segment for up to 16, then one per two; an odd short last
        // segment is acknowledged when the application reads it.
        assert_eq!(receiver_acks(1024, 1448, true), 1);
        assert_eq!(receiver_acks(16 * 1448, 1448, true), 16);
        assert_eq!(receiver_acks(102_400, 1448, true), 16 + 27 + 1);
        // An odd full-size last segment waits for the receiver's next segment.
        assert_eq!(receiver_acks(17 * 1448, 1448, true), 16);
        // Later data (pingpong mode): a one-segment response is acknowledged by the next
        // request, a 71-segment one by 35 ACKs and the next request.
        assert_eq!(receiver_acks(1024, 1448, false), 0);
        assert_eq!(receiver_acks(102_400, 1448, false), 35);
        assert_eq!(receiver_acks(0, 1448, true), 0);
    }

    #[test]
    fn segments_follow_the_mss_of_the_path() {
        assert_eq!(tcp_mss(1500, Forwarding::Masq), 1448);
        assert_eq!(tcp_mss(1500, Forwarding::DirectRouting), 1448);
        assert_eq!(tcp_mss(1500, Forwarding::Tunnel), 1428);
        // An empty payload is no packet; 100 KiB is 70 full segments and one of 1040 B.
        assert_eq!(tcp_segments(0, 1448), (0, 0));
        assert_eq!(tcp_segments(102_400, 1448), (71, 102_400 + 71 * 52));
        assert_eq!(tcp_segments(102_400, 1428), (72, 102_400 + 72 * 52));
        // UDP keeps a datagram for an empty payload.
        assert_eq!(segments(0, 1472, UDP_HDR), (1, 28));
    }
}
