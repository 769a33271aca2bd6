//! lblc: locality-based least connection (`ip_vs_lblc.c`), and the cache table it shares
//! with lblcr.
//!
//! A cache maps each packet destination address to the real server that last served it.
//! A hit is kept while the server is AVAILABLE, has a positive weight and is not
//! "overloaded" in lblc's own sense (more active connections than its weight while some
//! server is under half its weight); the OVERLOAD flag is *not* looked at on a hit.
//! Otherwise wlc picks a server and the cache remembers it.
//!
//! ```text
//!   daddr ──hash_32(ntohl(daddr), 10)──> bucket[0..1024] ──chain──> {daddr, dest, lastuse}
//! ```
//!
//! The kernel collects stale entries with a 60 s timer. This crate never reads a clock,
//! so [`LocalityTable::run_timers`] catches up, at the start of every `schedule`, each
//! tick due at or before `now`, exactly as if the timer had fired at its time.

use core::net::IpAddr;

use crate::dest::{Dest, DestId};
use crate::hash::{addr_fold, hash_32};
use crate::service::DestList;
use crate::{Duration, Flow, Time, wlc};

/// `CONFIG_IP_VS_LBLC_TAB_BITS` / `CONFIG_IP_VS_LBLCR_TAB_BITS` (kernel default 10).
const TAB_BITS: u32 = 10;
/// Chains in the table (`IP_VS_LBLC_TAB_SIZE`).
const TAB_SIZE: usize = 1 << TAB_BITS;
/// `IP_VS_LBLC_TAB_MASK`.
const TAB_MASK: usize = TAB_SIZE - 1;
/// `tbl->max_size`: above this many entries each tick runs a partial collection.
const MAX_SIZE: usize = TAB_SIZE * 16;
/// `CHECK_EXPIRE_INTERVAL`: period of the garbage-collection timer [60 s].
const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`: idle time after which a partial collection may drop an entry [6 min].
const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`: a full expiration pass every 30th counted tick.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// Default of the `net.ipv4.vs.lblc_expiration` sysctl (`DEFAULT_EXPIRATION`): a full
/// expiration pass drops entries unused for this long [24 h]. The sysctl is per network
/// namespace; this crate models its default.
pub(crate) const LBLC_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// What the shared table needs of an lblc or lblcr entry.
pub(crate) trait CacheEntry {
    /// The destination address the entry is for.
    fn addr(&self) -> IpAddr;
    /// When the entry was last used.
    fn lastuse(&self) -> Time;
}

/// `struct ip_vs_lblc_table` / `struct ip_vs_lblcr_table`: 1024 chains and the state of
/// the periodic collection.
///
/// Chains are `Vec`s scanned in index order, so every pass is deterministic. The order
/// of entries within a chain is not observable (an address has at most one entry and
/// every collection scans whole chains), so new entries are pushed at the end rather
/// than at the head as `hlist_add_head_rcu()` does.
#[derive(Clone, Debug)]
pub(crate) struct LocalityTable<E> {
    buckets: Vec<Vec<E>>,
    /// `tbl->entries`.
    entries: usize,
    /// `tbl->rover`: the chain where the last partial collection stopped.
    rover: usize,
    /// `tbl->counter`: counted ticks since the last full expiration pass, in `1..=30`.
    counter: u32,
    /// When the timer fires next.
    next_tick: Time,
    /// `sysctl_lblc_expiration` or `sysctl_lblcr_expiration`.
    expiration: Duration,
}

/// Mirrors `ip_vs_lblc_hashkey()` / `ip_vs_lblcr_hashkey()`.
#[inline]
fn hashkey(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

impl<E: CacheEntry> LocalityTable<E> {
    /// Mirrors `ip_vs_lblc_init_svc()`: empty, counter 1, rover 0, first tick 60 s after
    /// `now`.
    pub(crate) fn new(now: Time, expiration: Duration) -> Self {
        LocalityTable {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_tick: now + CHECK_EXPIRE_INTERVAL,
            expiration,
        }
    }

    /// Number of cached addresses.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Mirrors `ip_vs_lblc_get()`: the entry for `addr`, if any.
    pub(crate) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut E> {
        self.buckets[hashkey(addr)].iter_mut().find(|e| e.addr() == addr)
    }

    /// Mirrors `ip_vs_lblc_hash()`: link a new entry (the caller checked there is none
    /// for its address).
    pub(crate) fn insert(&mut self, entry: E) {
        self.buckets[hashkey(entry.addr())].push(entry);
        self.entries += 1;
    }

    /// Runs every timer tick due at or before `now`, in order, each at its own time.
    ///
    /// Ticks that would only bump the counter (table within `max_size`, no full pass
    /// due) are skipped in one step; with an empty table the counter cycle is computed
    /// directly. Both shortcuts leave the state exactly as tick-by-tick runs would.
    pub(crate) fn run_timers(&mut self, now: Time) {
        let interval = CHECK_EXPIRE_INTERVAL.as_nanos();
        while self.next_tick <= now {
            let due = (now - self.next_tick).as_nanos() / interval + 1;
            if self.entries == 0 {
                // A full pass over an empty table deletes nothing and ends on the rover
                // it started from: only the counter moves, cycling through 1..=30.
                self.counter =
                    ((u64::from(self.counter) - 1 + due) % u64::from(COUNT_FOR_FULL_EXPIRATION)) as u32 + 1;
                self.next_tick += Duration(interval * due);
                return;
            }
            if self.entries <= MAX_SIZE && self.counter % COUNT_FOR_FULL_EXPIRATION != 0 {
                let idle = due.min(u64::from(COUNT_FOR_FULL_EXPIRATION - self.counter));
                self.counter += idle as u32;
                self.next_tick += Duration(interval * idle);
                continue;
            }
            let tick = self.next_tick;
            self.check_expire(tick);
            self.next_tick = tick + CHECK_EXPIRE_INTERVAL;
        }
    }

    /// Mirrors `ip_vs_lblc_check_expire()` / `ip_vs_lblcr_check_expire()`, the timer
    /// handler, firing at `now`.
    fn check_expire(&mut self, now: Time) {
        if self.counter % COUNT_FOR_FULL_EXPIRATION == 0 {
            self.full_check(now);
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        // Partial collection: drop entries idle for ENTRY_TIMEOUT, whole chains at a
        // time from the one after the rover, until `goal` entries went. The counter
        // does not move, which postpones the next full pass.
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            let removed = self.expire_chain(j, |e| now < e.lastuse() + ENTRY_TIMEOUT);
            goal -= removed as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }

    /// Mirrors `ip_vs_lblc_full_check()`: drop every entry unused for `expiration`,
    /// scanning all chains from the one after the rover (which ends where it started).
    fn full_check(&mut self, now: Time) {
        let expiration = self.expiration;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            self.expire_chain(j, |e| now < e.lastuse() + expiration);
        }
        self.rover = j;
    }

    /// Keeps the entries of chain `j` that satisfy `keep`; returns how many went.
    fn expire_chain(&mut self, j: usize, keep: impl Fn(&E) -> bool) -> usize {
        let chain = &mut self.buckets[j];
        let before = chain.len();
        chain.retain(|e| keep(e));
        let removed = before - chain.len();
        self.entries -= removed;
        removed
    }
}

/// Mirrors `is_overloaded()` of `ip_vs_lblc.c` and `ip_vs_lblcr.c`: more active
/// connections than the weight while some server of the service runs under half its
/// weight (C `int` arithmetic).
pub(crate) fn is_overloaded(d: &Dest, list: DestList<'_>) -> bool {
    (d.active_conns as i32) > d.weight
        && list.iter().any(|(_, x)| (x.active_conns as i32).wrapping_mul(2) < x.weight)
}

/// `struct ip_vs_lblc_entry`.
#[derive(Clone, Debug)]
struct LblcEntry {
    addr: IpAddr,
    dest: DestId,
    lastuse: Time,
}

impl CacheEntry for LblcEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn lastuse(&self) -> Time {
        self.lastuse
    }
}

/// lblc's `svc->sched_data`.
#[derive(Clone, Debug)]
pub(crate) struct LblcState {
    table: LocalityTable<LblcEntry>,
}

impl LblcState {
    /// `ip_vs_lblc_init_svc()` at `now`: an empty cache, first collection at `now + 60 s`.
    pub(crate) fn new(now: Time) -> Self {
        LblcState { table: LocalityTable::new(now, LBLC_EXPIRATION) }
    }

    /// Mirrors `ip_vs_lblc_schedule()`, after the collection ticks due by `now`.
    pub(crate) fn schedule(&mut self, list: DestList<'_>, now: Time, flow: &Flow) -> Option<DestId> {
        self.table.run_timers(now);
        if let Some(en) = self.table.get_mut(flow.daddr) {
            en.lastuse = now;
            let d = list.get(en.dest);
            // A deleted server stays cached but fails AVAILABLE; OVERLOAD is not checked.
            if d.available && d.weight > 0 && !is_overloaded(d, list) {
                return Some(en.dest);
            }
        }
        // `__ip_vs_lblc_schedule()` is the wlc scan, line for line.
        let dest = wlc::schedule_wlc(list)?;
        // Mirrors `ip_vs_lblc_new()`: an entry for another server is replaced by a new
        // one (lastuse = now); one already naming `dest` is left as it is (its lastuse
        // was just set above).
        match self.table.get_mut(flow.daddr) {
            Some(en) if en.dest == dest => {}
            Some(en) => {
                en.dest = dest;
                en.lastuse = now;
            }
            None => self.table.insert(LblcEntry { addr: flow.daddr, dest, lastuse: now }),
        }
        Some(dest)
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::{ConnCount, DestConfig, Forwarding, Protocol, SchedulerKind, Service, SvcFlags};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn cfg(last: u8, weight: u32) -> DestConfig {
        DestConfig { weight, ..DestConfig::new(ip(last), 3128, Forwarding::DirectRouting) }
    }

    fn to(n: u32) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            sport: 40000,
            daddr: IpAddr::V4(Ipv4Addr::from(0x5DB8_0000 + n)),
            dport: 80,
        }
    }

    fn secs(s: u64) -> Time {
        Time(Duration::from_secs(s).as_nanos())
    }

    /// The service's servers as the scheduler sees them: (slab, kernel list order).
    fn snapshot(svc: &Service) -> (Vec<Dest>, Vec<DestId>) {
        // Oldest first, as `DestList` holds them.
        let mut order: Vec<DestId> = svc.dests().map(|(id, _)| id).collect();
        order.reverse();
        let n = order.iter().map(|id| id.0 + 1).max().unwrap_or(0);
        ((0..n).map(|i| svc.dest(DestId(i)).clone()).collect(), order)
    }

    /// Two servers; A (10.0.0.1) has inactive connections, so wlc prefers B.
    fn two_servers(now: Time) -> (Service, DestId, DestId) {
        let mut svc = Service::new(SchedulerKind::Lblc, SvcFlags(0), 0, now);
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&cfg(2, 1)).unwrap();
        (svc, a, b)
    }

    #[test]
    fn hit_keeps_the_cached_server() {
        let (mut svc, a, b) = two_servers(Time::ZERO);
        // List order B, A; both idle: wlc picks B for the first address.
        assert_eq!(svc.schedule(secs(1), &to(1)), Some(b));
        // B now carries load; a new address goes to A, the cached one stays on B.
        svc.bind(b, ConnCount::Inactive);
        assert_eq!(svc.schedule(secs(2), &to(2)), Some(a));
        svc.bind(a, ConnCount::Inactive);
        svc.bind(b, ConnCount::Inactive);
        assert_eq!(svc.schedule(secs(3), &to(1)), Some(b));
        assert_eq!(svc.schedule(secs(3), &to(2)), Some(a));
    }

    #[test]
    fn hit_ignores_overload_flag_but_not_weight_or_deletion() {
        let (mut svc, a, b) = two_servers(Time::ZERO);
        svc.edit_dest(&DestConfig { u_threshold: 1, ..cfg(2, 1) }).unwrap();
        assert_eq!(svc.schedule(secs(1), &to(1)), Some(b));
        svc.bind(b, ConnCount::Inactive);
        assert!(svc.dest(b).is_overloaded());
        assert_eq!(svc.schedule(secs(2), &to(1)), Some(b), "cache hit ignores OVERLOAD");
        // Quiesced: the entry is replaced by wlc's pick (A; B is overloaded).
        svc.edit_dest(&DestConfig { weight: 0, u_threshold: 1, ..cfg(2, 1) }).unwrap();
        assert_eq!(svc.schedule(secs(3), &to(1)), Some(a));
        assert_eq!(svc.schedule(secs(4), &to(1)), Some(a));
        // Deleted: not AVAILABLE any more, wlc picks again (B is back, idle-ish).
        svc.edit_dest(&cfg(2, 1)).unwrap();
        svc.unbind(b, ConnCount::Inactive);
        svc.del_dest(ip(1), 3128).unwrap();
        assert_eq!(svc.schedule(secs(5), &to(1)), Some(b));
    }

    #[test]
    fn lblc_overload_rule_moves_the_address() {
        let (mut svc, a, b) = two_servers(Time::ZERO);
        assert_eq!(svc.schedule(secs(1), &to(1)), Some(b));
        // B: 2 active > weight 1, and A has 0 * 2 < 1: the hit is refused.
        for _ in 0..2 {
            svc.bind(b, ConnCount::Inactive);
            svc.activate(b);
        }
        assert_eq!(svc.schedule(secs(2), &to(1)), Some(a));
        assert_eq!(svc.schedule(secs(3), &to(1)), Some(a));
    }

    #[test]
    fn no_usable_server_gives_none() {
        let mut svc = Service::new(SchedulerKind::Lblc, SvcFlags(0), 0, Time::ZERO);
        assert_eq!(svc.schedule(secs(1), &to(1)), None);
        svc.add_dest(&cfg(1, 0)).unwrap();
        assert_eq!(svc.schedule(secs(1), &to(1)), None);
    }

    #[test]
    fn entry_expires_after_24h_at_a_full_pass() {
        // Service at t0 = 10 s, entry at t0 + 1 s. Full passes run at ticks 30, 60, ...
        // (every 30 min); the first at or after t0 + 1 s + 24 h is tick 1470.
        let t0 = secs(10);
        let (svc, _a, b) = two_servers(t0);
        let (slab, order) = snapshot(&svc);
        let list = DestList { slab: &slab, order: &order };
        let mut s = LblcState::new(t0);
        assert_eq!(s.schedule(list, t0 + Duration::from_secs(1), &to(1)), Some(b));
        let tick_1470 = t0 + Duration::from_secs(1470 * 60);
        s.table.run_timers(Time(tick_1470.as_nanos() - 1));
        assert_eq!(s.table.len(), 1, "kept until the full pass");
        assert_eq!(s.table.counter, 30);
        s.table.run_timers(tick_1470);
        assert_eq!(s.table.len(), 0, "gone after 24 h and a full pass");
        assert_eq!(s.table.counter, 1);
    }

    #[test]
    fn expiry_through_the_service() {
        let (mut svc, a, b) = two_servers(Time::ZERO);
        assert_eq!(svc.schedule(secs(0), &to(1)), Some(b));
        svc.bind(b, ConnCount::Inactive);
        // Used every hour: never expires, the hit stays on B although A is idle.
        for h in 1..=30 {
            assert_eq!(svc.schedule(secs(h * 3600), &to(1)), Some(b), "hour {h}");
        }
        // Idle for 24 h and 30 min: the entry went, wlc picks A.
        assert_eq!(svc.schedule(secs(30 * 3600 + 24 * 3600 + 1800), &to(1)), Some(a));
    }

    /// A cheap entry for table tests.
    #[derive(Clone, Debug)]
    struct Probe {
        addr: IpAddr,
        lastuse: Time,
    }

    impl CacheEntry for Probe {
        fn addr(&self) -> IpAddr {
            self.addr
        }
        fn lastuse(&self) -> Time {
            self.lastuse
        }
    }

    fn probe(n: u32, lastuse: Time) -> Probe {
        Probe { addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n)), lastuse }
    }

    fn state<E>(t: &LocalityTable<E>) -> (usize, usize, u32, Time) {
        (t.entries, t.rover, t.counter, t.next_tick)
    }

    /// The reference: every tick through the timer handler, no shortcut.
    fn step_naively<E: CacheEntry>(t: &mut LocalityTable<E>, now: Time) {
        while t.next_tick <= now {
            let tick = t.next_tick;
            t.check_expire(tick);
            t.next_tick = tick + CHECK_EXPIRE_INTERVAL;
        }
    }

    #[test]
    fn catch_up_equals_tick_by_tick() {
        let mut fast = LocalityTable::new(Time::ZERO, LBLC_EXPIRATION);
        for n in 0..50 {
            fast.insert(probe(n, secs(u64::from(n) * 3000)));
        }
        let mut slow = fast.clone();
        // In steps, to cross the points where entries expire.
        for day_quarter in 1..=17 {
            let now = secs(day_quarter * 6 * 3600 + 17);
            fast.run_timers(now);
            step_naively(&mut slow, now);
            assert_eq!(state(&fast), state(&slow), "at {now}");
        }
        // 50 entries used until ~41.7 h, then idle: all gone by day 4.
        assert_eq!(fast.len(), 0);
        // Empty table: the closed-form counter matches the handler.
        let mut e1: LocalityTable<Probe> = LocalityTable::new(secs(5), LBLC_EXPIRATION);
        let mut e2 = e1.clone();
        e1.run_timers(secs(5 + 60 * 1000));
        step_naively(&mut e2, secs(5 + 60 * 1000));
        assert_eq!(state(&e1), state(&e2));
        assert_eq!(e1.counter, (1000 % 30) + 1);
    }

    #[test]
    fn partial_collection_over_max_size() {
        let mut t = LocalityTable::new(Time::ZERO, LBLC_EXPIRATION);
        let extra = 300;
        for n in 0..(MAX_SIZE + extra) as u32 {
            t.insert(probe(n, Time::ZERO));
        }
        // Ticks 1..=5: over max_size, partial passes find nothing idle for 6 min, and
        // the counter does not move.
        t.run_timers(secs(5 * 60));
        assert_eq!((t.len(), t.counter, t.rover), (MAX_SIZE + extra, 1, 0));
        // Tick 6 (360 s): everything is 6 min old; whole chains from chain 1 on go until
        // goal = 300 * 4 / 3 = 400 entries are gone.
        let lens: Vec<usize> = t.buckets.iter().map(Vec::len).collect();
        let mut sum = 0;
        let want_rover = (1..TAB_SIZE)
            .find(|&j| {
                sum += lens[j];
                sum >= 400
            })
            .unwrap();
        t.run_timers(secs(6 * 60));
        assert_eq!(t.rover, want_rover);
        assert_eq!(t.len(), MAX_SIZE + extra - sum);
        assert!((1..=want_rover).all(|j| t.buckets[j].is_empty()));
        assert_eq!(t.buckets[0].len(), lens[0]);
        assert_eq!(t.buckets[want_rover + 1].len(), lens[want_rover + 1]);
        // Now within max_size: the counter runs again.
        assert!(t.len() <= MAX_SIZE);
        t.run_timers(secs(7 * 60));
        assert_eq!(t.counter, 2);
    }
}
