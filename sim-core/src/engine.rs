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

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use lvs_sched::Time;

/// A min-queue of events keyed by `(time, insertion sequence)`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: Time,
    popped: u64,
}

#[derive(Debug)]
struct Entry<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap, the earliest (time, seq) must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), seq: 0, now: Time::ZERO, popped: 0 }
    }

    /// Schedules `event` at `at`, which must not be in the past.
    pub fn push(&mut self, at: Time, event: E) {
        assert!(at >= self.now, "event scheduled in the past: {at} < {}", self.now);
        self.seq += 1;
        self.heap.push(Entry { at, seq: self.seq, event });
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest event; equal times in insertion order.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let e = self.heap.pop()?;
        self.now = e.at;
        self.popped += 1;
        Some((e.at, e.event))
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
    pub fn peek_key(&self) -> Option<(Time, u64)> {
        self.heap.peek().map(|e| (e.at, e.seq))
    }

    /// A fresh insertion sequence number, for a timer kept outside the queue (it then
    /// orders with the queue's events as if it had been pushed now).
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
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
/// moved or cleared in O(log n) in an indexed binary heap: no stale entries, however
/// often a processor-sharing server's next completion moves. Keys are
/// `(time, sequence)` with sequences from [`EventQueue::next_seq`], so timers and queued
/// events interleave first-in first-out at equal times.
#[derive(Debug, Default)]
pub struct TimerSet {
    /// Owners with a timer, as a binary min-heap by key.
    heap: Vec<u32>,
    /// Position of each owner in `heap`, `u32::MAX` without a timer.
    pos: Vec<u32>,
    key: Vec<(Time, u64)>,
}

const NOT_SET: u32 = u32::MAX;

impl TimerSet {
    /// Timers for owners `0..n`, none set.
    pub fn new(n: usize) -> Self {
        TimerSet { heap: Vec::with_capacity(n), pos: vec![NOT_SET; n], key: vec![(Time::ZERO, 0); n] }
    }

    /// Sets (or moves) `owner`'s timer to `key`, or clears it with `None`.
    pub fn set(&mut self, owner: u32, key: Option<(Time, u64)>) {
        let o = owner as usize;
        match (self.pos[o], key) {
            (NOT_SET, None) => {}
            (NOT_SET, Some(k)) => {
                self.key[o] = k;
                self.heap.push(owner);
                self.pos[o] = (self.heap.len() - 1) as u32;
                self.sift_up(self.heap.len() - 1);
            }
            (p, Some(k)) => {
                let old = self.key[o];
                self.key[o] = k;
                if k < old { self.sift_up(p as usize) } else { self.sift_down(p as usize) }
            }
            (p, None) => self.remove_at(p as usize),
        }
    }

    /// The earliest timer: `(time, sequence, owner)`.
    pub fn peek(&self) -> Option<(Time, u64, u32)> {
        self.heap.first().map(|&o| {
            let (t, s) = self.key[o as usize];
            (t, s, o)
        })
    }

    /// The time of `owner`'s timer, if set.
    pub fn get(&self, owner: u32) -> Option<Time> {
        (self.pos[owner as usize] != NOT_SET).then(|| self.key[owner as usize].0)
    }

    fn remove_at(&mut self, p: usize) {
        let last = self.heap.len() - 1;
        self.swap(p, last);
        let o = self.heap.pop().expect("not empty");
        self.pos[o as usize] = NOT_SET;
        if p < self.heap.len() {
            self.sift_down(p);
            self.sift_up(p);
        }
    }

    fn k(&self, i: usize) -> (Time, u64) {
        self.key[self.heap[i] as usize]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.k(i) >= self.k(parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.heap.len() && self.k(l) < self.k(m) {
                m = l;
            }
            if r < self.heap.len() && self.k(r) < self.k(m) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
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
