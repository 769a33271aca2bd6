//! FIFO lanes beside the event queue, for events a fixed delay or a FIFO resource
//! schedules: most of a connection's events on links with latency and bandwidth.
//!
//! A message leaving a FIFO channel (a link direction, the director's CPU, a server's
//! uplink) arrives at the far end in the order it entered, and so does one crossing a
//! constant delay (a population's access network, the way to a backend and back, a
//! client's response timeout). Such an event goes to its stream's lane, a `VecDeque`,
//! instead of the queue's heap: O(1) in and out, and the heap stays small (arrivals,
//! think times, retransmissions, timers). The lanes' heads are kept in a [`TimerSet`].
//!
//! Same order, same results: each event still takes its sequence number from the queue
//! ([`EventQueue::next_seq`]) when it is scheduled, and the run loop takes the earliest
//! `(time, sequence)` of the heap, the lanes and the completion timers, which is the
//! order the heap alone would give; a popped lane event counts as a popped queue event
//! ([`EventQueue::fired`]). An event that would not keep its lane in time order (a
//! channel is FIFO only from the same sender onwards, say a retransmission) goes to the
//! heap instead, with the same sequence number it would have had.

use std::collections::VecDeque;

use lvs_sched::Time;

use super::Event;
use crate::engine::{EventQueue, TimerSet};

/// The lanes of a run.
pub(super) struct Lanes {
    /// Off: every event goes to the heap (`Exchange::PerMessage`, the reference).
    on: bool,
    lanes: Vec<VecDeque<(Time, u64, Event)>>,
    /// The head `(time, sequence)` of each non-empty lane.
    heads: TimerSet,
    /// Events scheduled on a lane so far (for tests).
    pub(super) laned: u64,
}

/// A stream of events in time order, numbered by [`Streams`].
pub(super) type Lane = u32;

/// How lanes are numbered: per population its access network and its client timeouts,
/// per director its five channels, per real server its uplink, per backend its latency;
/// then TCP's retransmissions, by timeout (SYN or data) and attempt.
#[derive(Clone, Copy)]
pub(super) struct Streams {
    pops: u32,
    dirs: u32,
    servers: u32,
    backends: u32,
}

/// Retransmission lanes per timeout kind (attempts beyond share the last).
const RETRANSMIT_LANES: usize = 8;

/// A director's channels, in lane order.
#[derive(Clone, Copy)]
pub(super) enum DirChannel {
    ExtIn = 0,
    ExtOut = 1,
    IntOut = 2,
    IntIn = 3,
    Cpu = 4,
}

impl Streams {
    pub(super) fn new(pops: usize, dirs: usize, servers: usize, backends: usize) -> Self {
        let n = |x: usize| u32::try_from(x).expect("fewer than 2^32 of each");
        Streams { pops: n(pops), dirs: n(dirs), servers: n(servers), backends: n(backends) }
    }

    fn count(self) -> usize {
        (2 * self.pops + 5 * self.dirs + self.servers + self.backends) as usize + 2 * RETRANSMIT_LANES
    }

    /// Population `p`'s access network (both directions: the same delay).
    pub(super) fn access(self, p: usize) -> Lane {
        p as u32
    }

    /// Population `p`'s response and datagram timeouts.
    pub(super) fn timeout(self, p: usize) -> Lane {
        self.pops + p as u32
    }

    /// Director `d`'s channel `c`.
    pub(super) fn channel(self, d: usize, c: DirChannel) -> Lane {
        2 * self.pops + 5 * d as u32 + c as u32
    }

    /// Real server `s`'s uplink.
    pub(super) fn uplink(self, s: usize) -> Lane {
        2 * self.pops + 5 * self.dirs + s as u32
    }

    /// The way to backend `b` and back.
    pub(super) fn backend(self, b: usize) -> Lane {
        2 * self.pops + 5 * self.dirs + self.servers + b as u32
    }

    /// Retransmission `attempt` (1, 2, ...) of a SYN or SYN-ACK (`syn`) or of data: the
    /// same timeout after a message sent at once (most are), so mostly in order; later
    /// attempts share the last lane.
    pub(super) fn retransmit(self, syn: bool, attempt: u8) -> Lane {
        let a = usize::from(attempt).clamp(1, RETRANSMIT_LANES) - 1;
        let base = 2 * self.pops + 5 * self.dirs + self.servers + self.backends;
        base + (usize::from(syn) * RETRANSMIT_LANES + a) as u32
    }
}

impl Lanes {
    /// The lanes of `streams`; with `on` false, none (everything goes to the heap).
    pub(super) fn new(streams: Streams, on: bool) -> Self {
        let n = if on { streams.count() } else { 0 };
        Lanes { on, lanes: (0..n).map(|_| VecDeque::new()).collect(), heads: TimerSet::new(n), laned: 0 }
    }

    /// Schedules `ev` at `at` on `lane`, or on the queue's heap if the lane holds a later
    /// event; either way with the queue's next sequence number.
    pub(super) fn push(&mut self, queue: &mut EventQueue<Event>, lane: Lane, at: Time, ev: Event) {
        if !self.on {
            return queue.push(at, ev);
        }
        let q = &mut self.lanes[lane as usize];
        if q.back().is_some_and(|&(last, _, _)| last > at) {
            return queue.push(at, ev);
        }
        let seq = queue.next_seq();
        self.laned += 1;
        if q.is_empty() {
            self.heads.set(lane, Some((at, seq)));
        }
        q.push_back((at, seq, ev));
    }

    /// The earliest lane event: `(time, sequence, lane)`.
    pub(super) fn peek(&self) -> Option<(Time, u64, Lane)> {
        self.heads.peek()
    }

    /// Takes the head of `lane`.
    pub(super) fn pop(&mut self, lane: Lane) -> (Time, Event) {
        let q = &mut self.lanes[lane as usize];
        let (at, _, ev) = q.pop_front().expect("a lane with a head");
        self.heads.set(lane, q.front().map(|&(t, s, _)| (t, s)));
        (at, ev)
    }
}
