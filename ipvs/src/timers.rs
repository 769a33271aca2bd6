//! Connection timers as FIFO lanes, one per distinct timeout value.
//!
//! Every IPVS timer is armed for `now + timeout`, with `now` never going back and the
//! timeout a per-state constant, so the timers armed with one timeout expire in the order
//! they were armed: a FIFO per timeout value ("lane") is already sorted by deadline.
//! Arming is a push, O(1); the next deadline is the earliest of the lane heads; there are
//! only as many lanes as distinct timeouts (about ten).
//!
//! Re-arming or freeing an entry marks its old item stale (a bit in the item, so no entry
//! is read to tell); stale items are dropped when they reach the head. A lane whose items
//! are mostly stale is compacted, so the stale items of a long lane (ESTABLISHED, 900 s,
//! re-armed by every packet) cannot outnumber the live ones. Finding the earliest timer
//! reads only the entries of live lane heads.
//!
//! Equal deadlines in different lanes fire in arming order without storing a sequence
//! number: deadline = arming time + lane timeout, so at equal deadlines the lane with the
//! longer timeout was armed strictly earlier, and arming times never decrease. Hence
//! `(deadline, longer timeout first)` is `(deadline, arming order)`.

use lvs_sched::{Duration, Time};

/// Index of a lane.
pub(crate) type LaneId = u16;

/// "No lane yet": an entry never armed.
pub(crate) const NO_LANE: LaneId = LaneId::MAX;

/// A deadline after every possible one.
pub(crate) const NEVER: Time = Time(u64::MAX);

/// The stale mark of an item (entry ids stay below 2^25).
const STALE: u32 = 1 << 31;

/// A lane is compacted once more than this many of its items, and more than half, are
/// stale; small lanes are left alone because their stale items drain soon anyway.
const COMPACT_MIN_STALE: u32 = 64;

/// Where an entry's timer is: its lane (which is also its current timeout) and its
/// position in the lane, if armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerRef {
    /// The lane of the latest arming; keeps naming the timeout after the timer fired.
    pub(crate) lane: LaneId,
    /// Position of the live item in the lane (lane positions count pushes, wrapping).
    pub(crate) pos: u32,
    /// False once fired or never armed: no item of any lane is live for the entry.
    pub(crate) armed: bool,
}

/// A FIFO of entry ids: a `Vec` whose popped prefix is dropped once it is the larger
/// part (cheaper than a ring buffer's index arithmetic on every access).
#[derive(Debug)]
struct Lane {
    timeout: Duration,
    /// Entry ids in arming order, with the `STALE` bit; `items[head..]` are queued, and
    /// `items[head + k]` has position `head_pos + k`.
    items: Vec<u32>,
    head: usize,
    head_pos: u32,
    /// Queued items marked stale.
    stale: u32,
}

impl Lane {
    fn len(&self) -> usize {
        self.items.len() - self.head
    }

    fn front(&self) -> Option<u32> {
        self.items.get(self.head).copied()
    }

    fn pop_front(&mut self) -> u32 {
        let item = self.items[self.head];
        self.head += 1;
        self.head_pos = self.head_pos.wrapping_add(1);
        item
    }

    /// Index in `items` of position `pos`.
    fn index(&self, pos: u32) -> usize {
        self.head + pos.wrapping_sub(self.head_pos) as usize
    }

    /// Drop the popped prefix.
    fn drain_popped(&mut self) {
        self.items.drain(..self.head);
        self.head = 0;
    }

    /// Pop stale items off the head.
    fn drop_stale_head(&mut self) {
        while let Some(item) = self.front() {
            if item & STALE == 0 {
                break;
            }
            self.pop_front();
            self.stale -= 1;
        }
    }
}

/// The lanes of one table.
#[derive(Debug)]
pub(crate) struct Timers {
    lanes: Vec<Lane>,
    /// The lane last used for each hint of [`Timers::lane_hinted`].
    hinted: [LaneId; HINTS],
}

/// Number of lane hints (the TCP states and UDP).
pub(crate) const HINTS: usize = 12;

impl Default for Timers {
    fn default() -> Self {
        Timers { lanes: Vec::new(), hinted: [NO_LANE; HINTS] }
    }
}

impl Timers {
    /// The lane for `timeout`, created on first use.
    pub(crate) fn lane(&mut self, timeout: Duration) -> LaneId {
        if let Some(i) = self.lanes.iter().position(|l| l.timeout == timeout) {
            return i as LaneId;
        }
        let id = LaneId::try_from(self.lanes.len()).ok().filter(|&i| i != NO_LANE);
        let id = id.expect("more than 65534 distinct IPVS timeouts");
        self.lanes.push(Lane { timeout, items: Vec::new(), head: 0, head_pos: 0, stale: 0 });
        id
    }

    /// The lane for `timeout`, looked up first where `hint` (a TCP state, or UDP) found
    /// it last: timeouts are per state, and change only with `ipvsadm --set`.
    #[inline]
    pub(crate) fn lane_hinted(&mut self, hint: usize, timeout: Duration) -> LaneId {
        let cached = self.hinted[hint];
        if cached != NO_LANE && self.lanes[cached as usize].timeout == timeout {
            return cached;
        }
        let lane = self.lane(timeout);
        self.hinted[hint] = lane;
        lane
    }

    /// The timeout of a lane.
    pub(crate) fn timeout(&self, lane: LaneId) -> Duration {
        self.lanes[lane as usize].timeout
    }

    /// Arm entry `id` in `lane`; returns where its live item is.
    #[inline]
    pub(crate) fn push(&mut self, lane: LaneId, id: u32) -> TimerRef {
        debug_assert!(id & STALE == 0);
        let l = &mut self.lanes[lane as usize];
        if l.head >= 64 && l.head * 2 >= l.items.len() {
            l.drain_popped();
        }
        assert!(l.len() < u32::MAX as usize, "a timer lane holds 2^32 items");
        let pos = l.head_pos.wrapping_add(l.len() as u32);
        l.items.push(id);
        TimerRef { lane, pos, armed: true }
    }

    /// Whether `r`, an armed timer, is the newest item of its lane.
    pub(crate) fn is_tail(&self, r: TimerRef) -> bool {
        let l = &self.lanes[r.lane as usize];
        l.index(r.pos) + 1 == l.items.len()
    }

    /// The live item at `r` became stale (its entry was re-armed or freed). Returns true
    /// when the lane should now be compacted with [`Timers::compact`].
    pub(crate) fn forget(&mut self, r: TimerRef) -> bool {
        debug_assert!(r.armed, "only an armed timer has a live item");
        let l = &mut self.lanes[r.lane as usize];
        let i = l.index(r.pos);
        l.items[i] |= STALE;
        l.stale += 1;
        l.stale > COMPACT_MIN_STALE && l.stale as usize * 2 > l.len()
    }

    /// The earliest live timer, as `(deadline, lane)`, dropping stale heads on the way.
    /// `deadline_of(id)` is the deadline of entry `id`, whose timer is armed.
    pub(crate) fn earliest(&mut self, deadline_of: impl Fn(u32) -> Time) -> Option<(Time, LaneId)> {
        self.earliest_two(deadline_of).0
    }

    /// [`Timers::earliest`], and the earliest deadline of the other lanes ([`NEVER`] if
    /// none): once the earliest has fired, the next one is the earlier of that and the
    /// new head of its lane, which spares a second scan.
    pub(crate) fn earliest_two(
        &mut self,
        deadline_of: impl Fn(u32) -> Time,
    ) -> (Option<(Time, LaneId)>, Time) {
        let mut best: Option<(Time, Duration, LaneId)> = None;
        let mut others = NEVER;
        for (i, l) in self.lanes.iter_mut().enumerate() {
            l.drop_stale_head();
            if let Some(id) = l.front() {
                let at = deadline_of(id);
                // Equal deadlines: the longer timeout was armed first (module doc).
                if best.is_none_or(|(t, d, _)| at < t || (at == t && l.timeout > d)) {
                    others = best.map_or(others, |(t, _, _)| others.min(t));
                    best = Some((at, l.timeout, i as LaneId));
                } else {
                    others = others.min(at);
                }
            }
        }
        (best.map(|(t, _, lane)| (t, lane)), others)
    }

    /// The deadline of `lane`'s earliest live item, dropping stale heads.
    pub(crate) fn head(&mut self, lane: LaneId, deadline_of: impl Fn(u32) -> Time) -> Option<Time> {
        let l = &mut self.lanes[lane as usize];
        l.drop_stale_head();
        l.front().map(deadline_of)
    }

    /// Remove the head of `lane`, which [`Timers::earliest`] just returned.
    pub(crate) fn pop(&mut self, lane: LaneId) -> u32 {
        let l = &mut self.lanes[lane as usize];
        debug_assert!(l.front().is_some_and(|i| i & STALE == 0), "popping a lane with a live head");
        l.pop_front()
    }

    /// Drop the stale items of `lane`; `moved(id, r)` is told each live item's new place.
    pub(crate) fn compact(&mut self, lane: LaneId, mut moved: impl FnMut(u32, TimerRef)) {
        let l = &mut self.lanes[lane as usize];
        l.drain_popped();
        let mut pos = l.head_pos;
        l.items.retain(|&item| {
            let live = item & STALE == 0;
            if live {
                moved(item, TimerRef { lane, pos, armed: true });
                pos = pos.wrapping_add(1);
            }
            live
        });
        l.stale = 0;
        if l.items.capacity() > 4 * l.items.len() + 64 {
            l.items.shrink_to(2 * l.items.len());
        }
    }

    /// Items held in all lanes, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lanes.iter().map(Lane::len).sum()
    }

    /// Heap bytes held by the lanes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.lanes.capacity() * size_of::<Lane>()
            + self.lanes.iter().map(|l| l.items.capacity() * size_of::<u32>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TimerRef {
        const NONE: TimerRef = TimerRef { lane: NO_LANE, pos: 0, armed: false };
    }

    /// A stand-in for the connection slab: each entry's timer and deadline.
    #[derive(Default)]
    struct Slab {
        timers: Timers,
        entries: Vec<(TimerRef, Time)>,
        now: Time,
    }

    impl Slab {
        fn arm(&mut self, id: u32, timeout_s: u64) {
            let timeout = Duration::from_secs(timeout_s);
            let lane = self.timers.lane(timeout);
            let r = self.timers.push(lane, id);
            let i = id as usize;
            if self.entries.len() <= i {
                self.entries.resize(i + 1, (TimerRef::NONE, Time::ZERO));
            }
            let old = std::mem::replace(&mut self.entries[i], (r, self.now + timeout)).0;
            if old.armed && self.timers.forget(old) {
                let entries = &mut self.entries;
                self.timers.compact(old.lane, |id, new| entries[id as usize].0 = new);
            }
        }

        /// Fire every timer due at `now`; returns the ids in firing order.
        fn advance(&mut self, now: Time) -> Vec<u32> {
            let mut fired = Vec::new();
            loop {
                let entries = &self.entries;
                let next = self.timers.earliest(|id| {
                    let (r, at) = entries[id as usize];
                    assert!(r.armed, "a live item's entry is armed");
                    at
                });
                match next {
                    Some((at, lane)) if at <= now => {
                        let id = self.timers.pop(lane);
                        self.entries[id as usize].0.armed = false;
                        fired.push(id);
                    }
                    _ => break,
                }
            }
            self.now = now;
            fired
        }
    }

    fn secs(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn equal_deadlines_in_different_lanes_fire_in_arming_order() {
        let mut s = Slab::default();
        // Entry 0: armed at 0 for 10 s; entry 1: armed at 5 for 5 s; entry 2: armed at 5
        // for 5 s after entry 1. All three are due at 10 s; arming order is 0, 1, 2, and
        // lane creation order (the 10 s lane first) must not be what decides it.
        s.arm(3, 5);
        s.arm(0, 10);
        s.now = secs(5);
        s.arm(1, 5);
        s.arm(2, 5);
        assert_eq!(s.advance(secs(5)), vec![3]);
        assert_eq!(s.advance(Time(secs(10).0 - 1)), Vec::<u32>::new());
        assert_eq!(s.advance(secs(10)), vec![0, 1, 2]);
    }

    #[test]
    fn rearmed_entry_fires_once_at_its_last_deadline() {
        let mut s = Slab::default();
        s.arm(0, 60);
        s.arm(1, 60);
        s.now = secs(1);
        s.arm(0, 900); // 0 moves to the 900 s lane: its 60 s item is stale
        s.now = secs(2);
        s.arm(1, 60); // re-armed in the same lane: the first item is stale
        assert_eq!(s.advance(secs(61)), Vec::<u32>::new(), "both 60 s items at 60 s are stale");
        assert_eq!(s.advance(secs(62)), vec![1]);
        assert_eq!(s.advance(secs(900)), Vec::<u32>::new());
        assert_eq!(s.advance(secs(901)), vec![0]);
        assert_eq!(s.timers.len(), 0);
    }

    #[test]
    fn compaction_keeps_stale_items_below_half_and_order_intact() {
        let mut s = Slab::default();
        // 10 entries re-armed 1000 times each in one lane: without compaction the lane
        // would hold 10 000 items.
        for round in 0..1000 {
            s.now = Time(round);
            for id in 0..10 {
                s.arm(id, 900);
            }
        }
        let len = s.timers.len();
        assert!(len <= 2 * 10 + COMPACT_MIN_STALE as usize + 2, "lane holds {len} items");
        // The live items still fire in arming order at their deadlines.
        let last = Time(999) + Duration::from_secs(900);
        assert_eq!(s.advance(last), (0..10).collect::<Vec<_>>());
    }
}
