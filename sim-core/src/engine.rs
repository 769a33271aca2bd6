//! The event queue: events ordered by `(time, insertion sequence)`.
//!
//! Equal times come out first-in first-out, never in a heap's own tie order. The queue
//! holds only the model's few "next thing" events (next arrival of each population, next
//! completion of each server, a packet in flight); constant-delay timers such as the IPVS
//! connection timeouts live in FIFO lanes inside their owner ([`lvs_ipvs`]) and are
//! merged in by the simulation loop, so a table of ten million connections does not make
//! every queue operation slower.
//!
//! Invariant: `pop` never returns a time earlier than a time it returned before.

use lvs_sched::Time;

/// A min-heap of events keyed by `(time, insertion sequence)`: equal times come out
/// first-in first-out. The one event heap of the crate: the simulation's
/// [`EventQueue`], an HA group's messages in flight and the feedback loop's pending
/// work all use it.
///
/// A 4-ary heap of 32-byte keys (time, sequence, slot) with the events in a side slab:
/// sifting moves keys only, whatever the size of an event, and a 4-ary heap is half as
/// deep as a binary one. Keys are unique, so the order is the same as any other heap's.
#[derive(Clone, Debug)]
pub struct EventHeap<E> {
    keys: Vec<Key>,
    /// Events by slot; `None` for a free slot.
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

/// `(time, sequence)` packed into one integer (time in the high half), and the slot.
#[derive(Clone, Copy, Debug)]
struct Key {
    key: u128,
    slot: u32,
}

impl Key {
    fn new(at: Time, seq: u64, slot: u32) -> Key {
        Key { key: (u128::from(at.0) << 64) | u128::from(seq), slot }
    }

    fn at(&self) -> Time {
        Time((self.key >> 64) as u64)
    }

    fn seq(&self) -> u64 {
        self.key as u64
    }
}

/// Children per node.
const ARITY: usize = 4;

impl<E> Default for EventHeap<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventHeap<E> {
    /// An empty heap.
    pub fn new() -> Self {
        EventHeap { keys: Vec::new(), slots: Vec::new(), free: Vec::new(), seq: 0 }
    }

    /// A fresh insertion sequence number (pushes take theirs here too).
    #[inline]
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Adds `event` at `at`, after every event already there at the same time.
    #[inline]
    pub fn push(&mut self, at: Time, event: E) {
        let seq = self.next_seq();
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(event);
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).expect("fewer than 2^32 pending events");
                self.slots.push(Some(event));
                s
            }
        };
        self.keys.push(Key::new(at, seq, slot));
        self.sift_up(self.keys.len() - 1);
    }

    /// `(time, sequence)` of the earliest event.
    #[inline]
    pub fn peek_key(&self) -> Option<(Time, u64)> {
        self.keys.first().map(|k| (k.at(), k.seq()))
    }

    /// Time of the earliest event.
    #[inline]
    pub fn peek_time(&self) -> Option<Time> {
        self.keys.first().map(Key::at)
    }

    /// The earliest event.
    pub fn peek(&self) -> Option<(Time, &E)> {
        self.keys
            .first()
            .map(|k| (k.at(), self.slots[k.slot as usize].as_ref().expect("a queued slot is full")))
    }

    /// Removes and returns the earliest event; equal times in insertion order.
    #[inline]
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let top = *self.keys.first()?;
        let last = self.keys.pop().expect("not empty");
        if !self.keys.is_empty() {
            self.sift_down(0, last);
        }
        let event = self.slots[top.slot as usize].take().expect("a queued slot is full");
        self.free.push(top.slot);
        Some((top.at(), event))
    }

    /// Keeps only the events for which `keep` is true (their order unchanged).
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        let (slots, free) = (&mut self.slots, &mut self.free);
        self.keys.retain(|k| {
            let kept = keep(slots[k.slot as usize].as_ref().expect("a queued slot is full"));
            if !kept {
                slots[k.slot as usize] = None;
                free.push(k.slot);
            }
            kept
        });
        for i in (0..self.keys.len()).rev() {
            let k = self.keys[i];
            self.sift_down(i, k);
        }
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No event pending.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Moves the key at `i` up to its place.
    #[inline]
    fn sift_up(&mut self, mut i: usize) {
        let k = self.keys[i];
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if k.key >= self.keys[parent].key {
                break;
            }
            self.keys[i] = self.keys[parent];
            i = parent;
        }
        self.keys[i] = k;
    }

    /// Places `k` in the hole at `i`, moving it down to its place.
    #[inline]
    fn sift_down(&mut self, mut i: usize, k: Key) {
        let n = self.keys.len();
        loop {
            let first = ARITY * i + 1;
            let m = if first + ARITY <= n {
                // All four children: the least without a branch to mispredict.
                let c = &self.keys[first..first + ARITY];
                let a = if c[1].key < c[0].key { 1 } else { 0 };
                let b = if c[3].key < c[2].key { 3 } else { 2 };
                first + if c[b].key < c[a].key { b } else { a }
            } else if first < n {
                (first + 1..n).fold(first, |m, c| if self.keys[c].key < self.keys[m].key { c } else { m })
            } else {
                break;
            };
            if self.keys[m].key >= k.key {
                break;
            }
            self.keys[i] = self.keys[m];
            i = m;
        }
        self.keys[i] = k;
    }
}

/// A min-queue of events keyed by `(time, insertion sequence)`, with the time of the
/// last popped event.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: EventHeap<E>,
    now: Time,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        EventQueue { heap: EventHeap::new(), now: Time::ZERO, popped: 0 }
    }

    /// Schedules `event` at `at`, which must not be in the past.
    #[inline]
    pub fn push(&mut self, at: Time, event: E) {
        assert!(at >= self.now, "event scheduled in the past: {at} < {}", self.now);
        self.heap.push(at, event);
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek_time()
    }

    /// Removes and returns the earliest event; equal times in insertion order.
    #[inline]
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let (at, e) = self.heap.pop()?;
        self.now = at;
        self.popped += 1;
        Some((at, e))
    }

    /// Time of the last popped event.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No event pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events popped so far, stale ones included (REF-1's `engine_events`).
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// `(time, sequence)` of the earliest event, to merge with a [`TimerSet`].
    #[inline]
    pub fn peek_key(&self) -> Option<(Time, u64)> {
        self.heap.peek_key()
    }

    /// A fresh insertion sequence number, for a timer kept outside the queue (it then
    /// orders with the queue's events as if it had been pushed now).
    #[inline]
    pub fn next_seq(&mut self) -> u64 {
        self.heap.next_seq()
    }

    /// Records that a timer kept outside the queue fired at `at` (time moves on, and it
    /// counts as a popped event).
    pub fn fired(&mut self, at: Time) {
        assert!(at >= self.now, "timer fired in the past: {at} < {}", self.now);
        self.now = at;
        self.popped += 1;
    }
}

/// One timer per numbered owner (a real server's next completion, say), each set,
/// moved or cleared in O(log n) in an indexed 4-ary heap: no stale entries, however
/// often a processor-sharing server's next completion moves. Keys are
/// `(time, sequence)` with sequences from [`EventQueue::next_seq`], so timers and queued
/// events interleave first-in first-out at equal times. The heap holds the keys
/// themselves (packed as in [`EventHeap`]), so a comparison reads no other array.
#[derive(Debug, Default)]
pub struct TimerSet {
    /// Owners with a timer, as a 4-ary min-heap by key.
    heap: Vec<Timer>,
    /// Position of each owner in `heap`, `u32::MAX` without a timer.
    pos: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
struct Timer {
    /// `(time, sequence)` packed: time in the high half.
    key: u128,
    owner: u32,
}

const NOT_SET: u32 = u32::MAX;

fn pack((at, seq): (Time, u64)) -> u128 {
    (u128::from(at.0) << 64) | u128::from(seq)
}

impl TimerSet {
    /// Timers for owners `0..n`, none set.
    pub fn new(n: usize) -> Self {
        TimerSet { heap: Vec::with_capacity(n), pos: vec![NOT_SET; n] }
    }

    /// Sets (or moves) `owner`'s timer to `key`, or clears it with `None`.
    #[inline]
    pub fn set(&mut self, owner: u32, key: Option<(Time, u64)>) {
        match (self.pos[owner as usize], key) {
            (NOT_SET, None) => {}
            (NOT_SET, Some(k)) => {
                self.heap.push(Timer { key: pack(k), owner });
                self.sift_up(self.heap.len() - 1, Timer { key: pack(k), owner });
            }
            (p, Some(k)) => {
                let p = p as usize;
                let t = Timer { key: pack(k), owner };
                if t.key < self.heap[p].key { self.sift_up(p, t) } else { self.sift_down(p, t) }
            }
            (p, None) => self.remove_at(p as usize),
        }
    }

    /// The earliest timer: `(time, sequence, owner)`.
    #[inline]
    pub fn peek(&self) -> Option<(Time, u64, u32)> {
        self.heap.first().map(|t| (Time((t.key >> 64) as u64), t.key as u64, t.owner))
    }

    /// The time of `owner`'s timer, if set.
    #[inline]
    pub fn get(&self, owner: u32) -> Option<Time> {
        let p = self.pos[owner as usize];
        (p != NOT_SET).then(|| Time((self.heap[p as usize].key >> 64) as u64))
    }

    fn remove_at(&mut self, p: usize) {
        let gone = self.heap[p].owner;
        self.pos[gone as usize] = NOT_SET;
        let last = self.heap.pop().expect("not empty");
        if p < self.heap.len() {
            // `last` takes the hole: it may belong above or below it.
            if last.key < self.heap[p].key { self.sift_up(p, last) } else { self.sift_down(p, last) }
        }
    }

    /// Writes `t` at `i`, keeping its owner's position.
    #[inline]
    fn place(&mut self, i: usize, t: Timer) {
        self.heap[i] = t;
        self.pos[t.owner as usize] = i as u32;
    }

    /// Places `t` in the hole at `i`, moving it up to its place.
    fn sift_up(&mut self, mut i: usize, t: Timer) {
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if t.key >= self.heap[parent].key {
                break;
            }
            self.place(i, self.heap[parent]);
            i = parent;
        }
        self.place(i, t);
    }

    /// Places `t` in the hole at `i`, moving it down to its place.
    fn sift_down(&mut self, mut i: usize, t: Timer) {
        let n = self.heap.len();
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let h = &self.heap;
            let m = (first + 1..(first + ARITY).min(n))
                .fold(first, |m, c| if h[c].key < h[m].key { c } else { m });
            if h[m].key >= t.key {
                break;
            }
            self.place(i, self.heap[m]);
            i = m;
        }
        self.place(i, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_come_out_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Time(5), 'a');
        q.push(Time(3), 'b');
        q.push(Time(5), 'c');
        q.push(Time(3), 'd');
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(Time(3), 'b'), (Time(3), 'd'), (Time(5), 'a'), (Time(5), 'c')]);
        assert_eq!(q.popped(), 4);
    }

    #[test]
    fn event_heap_pops_by_time_then_insertion_order_and_retains_in_order() {
        // A pseudo-random mix of pushes and pops against a sorted reference.
        let mut h = EventHeap::new();
        let mut reference: Vec<(Time, u64, u32)> = Vec::new();
        let (mut x, mut seq, mut floor) = (12345u64, 0u64, 0u64);
        for i in 0..5000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if (x >> 60) < 10 {
                let at = Time(floor + (x >> 33) % 50);
                seq += 1;
                h.push(at, i);
                reference.push((at, seq, i));
            } else if !reference.is_empty() {
                reference.sort();
                let (at, _, e) = reference.remove(0);
                assert_eq!(h.peek_key().map(|k| k.0), Some(at));
                assert_eq!(h.pop(), Some((at, e)));
                floor = at.0;
            }
            assert_eq!(h.len(), reference.len());
        }
        h.retain(|e| e % 3 != 0);
        reference.retain(|r| r.2 % 3 != 0);
        reference.sort();
        let order: Vec<_> = std::iter::from_fn(|| h.pop()).collect();
        let expected: Vec<_> = reference.iter().map(|&(at, _, e)| (at, e)).collect();
        assert!(!expected.is_empty());
        assert_eq!(order, expected);
        assert!(h.is_empty());
    }

    #[test]
    fn timer_set_moves_and_clears_timers_and_orders_by_time_then_sequence() {
        let mut t = TimerSet::new(5);
        t.set(0, Some((Time(50), 1)));
        t.set(1, Some((Time(20), 2)));
        t.set(2, Some((Time(20), 3)));
        t.set(3, Some((Time(70), 4)));
        assert_eq!(t.peek(), Some((Time(20), 2, 1)));
        t.set(1, Some((Time(90), 5))); // moved later
        assert_eq!(t.peek(), Some((Time(20), 3, 2)));
        t.set(3, Some((Time(10), 6))); // moved earlier
        assert_eq!(t.peek(), Some((Time(10), 6, 3)));
        t.set(3, None);
        t.set(4, None); // clearing an unset timer is a no-op
        let mut order = Vec::new();
        while let Some((_, _, o)) = t.peek() {
            order.push(o);
            t.set(o, None);
        }
        assert_eq!(order, [2, 0, 1]);
        assert_eq!(t.get(0), None);
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn scheduling_in_the_past_is_a_bug() {
        let mut q = EventQueue::new();
        q.push(Time(5), ());
        q.pop();
        q.push(Time(4), ());
    }
}
