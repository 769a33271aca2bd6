//! IPVS's defences against a full connection table (`ip_vs_ctl.c`:
//! `update_defense_level()`, `defense_work_handler()`; `ip_vs_core.c`/`ip_vs.h`:
//! `ip_vs_todrop()`; `ip_vs_conn.c`: `ip_vs_random_dropentry()`, `todrop_entry()`;
//! `ip_vs_proto_tcp.c`: `tcp_timeout_change()`), documented in the kernel's
//! `Documentation/networking/ipvs-sysctl.rst`.
//!
//! Every second of virtual time (the kernel's `defense_work`, queued every
//! `DEFENSE_TIMER_PERIOD` = 1 s from the namespace's start) the available memory is
//! compared with `amemthresh`: the automatic modes 1 and 2 of `drop_entry`,
//! `drop_packet` and `secure_tcp` switch on (the sysctl is rewritten to 2) below it and
//! off (back to 1) above it; then, if `drop_entry` is on, 1/32 of the kernel's connection
//! hash table (128 of its 4096 buckets, drawn at random) is scanned for entries to drop.
//! New connections meet `drop_packet`'s counter ([`NoDest::DefenseDrop`]) and the
//! memory itself ([`NoDest::NoMemory`]).
//!
//! The memory: [`Memory`] gives the free and buffer pages of an empty table and the
//! size of one entry; every live entry (connection or template) uses `entry_bytes`.
//! Without a [`Memory`] the director never runs short.

use lvs_sched::{Duration, Protocol, Time};

use super::index::hash_words;
use super::tcp::TcpState;
use super::timers::NEVER;
use super::{ConnId, ConnState, Ipvs};

/// `DEFENSE_TIMER_PERIOD`: the defence work runs every second.
pub const DEFENSE_PERIOD: Duration = Duration::from_secs(1);
/// A page, the unit of `amemthresh` and of [`super::Memory::avail_pages`] [bytes].
pub const PAGE_BYTES: i64 = 4096;
/// `CONFIG_IP_VS_TAB_BITS` (Debian's and the default: 12): the connection hash table has
/// 4096 buckets, and `ip_vs_random_dropentry()` scans `4096 >> 5` = 128 of them a second.
const CONN_TAB_BITS: u32 = 12;
/// A slot whose bucket is not computed yet.
const NO_BUCKET: u16 = u16::MAX;
/// `todrop_entry()` leaves an entry alone until it has been idle this long.
const TODROP_IDLE: Duration = Duration::from_secs(60);

/// What the defences did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefenseStats {
    /// New connections dropped by `drop_packet` (`ip_vs_todrop()`).
    pub packets_dropped: u64,
    /// Entries removed by `drop_entry` (`ip_vs_random_dropentry()`).
    pub entries_dropped: u64,
    /// New connections dropped because no entry could be allocated.
    pub no_memory: u64,
}

/// The defences' state now, as the kernel holds it between two runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefenseLevel {
    /// Available memory [pages] (`None`: no [`super::Memory`] configured).
    pub avail_pages: Option<i64>,
    /// `drop_packet`: one new connection in this many is dropped (0: none).
    pub drop_rate: u32,
    /// `drop_entry` is dropping entries (`ipvs->dropentry`).
    pub drop_entry: bool,
    /// The TCP state table is `tcp_states_dos` (secure_tcp on).
    pub secure_tcp: bool,
}

/// The kernel's defence state of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Defense {
    /// The next run of the defence work.
    next_run: Time,
    drop_rate: i64,
    drop_counter: i64,
    /// `ipvs->dropentry`.
    dropentry: bool,
    /// `ipvs->old_secure_tcp`.
    old_secure_tcp: u8,
    /// `pd->tcp_state_table == tcp_states_dos`.
    pub(crate) dos_table: bool,
    /// `ipvs->dropentry_counters` (`todrop_counter[1..=8]` in older kernels).
    dropentry_counters: [i64; 8],
    /// The kernel's `get_random_u32()`, seeded from the table's seed (SplitMix64).
    rng: u64,
    /// Bucket of an entry: the kernel's hash uses a per-boot random key; the model hashes
    /// the entry's key with this one.
    bucket_key: u64,
    /// `cp->in_pkts` of each entry slot (saturating), kept once the defences are in use.
    in_pkts: Vec<u8>,
    /// Each entry slot's hash bucket, computed at its first scan (`NO_BUCKET`: not yet).
    buckets: Vec<u16>,
    stats: DefenseStats,
}

impl Defense {
    pub(crate) fn new(seed: u64) -> Defense {
        Defense {
            next_run: Time::ZERO + DEFENSE_PERIOD,
            drop_rate: 0,
            drop_counter: 0,
            dropentry: false,
            old_secure_tcp: 0,
            dos_table: false,
            dropentry_counters: [0; 8],
            rng: hash_words([seed, 0xD0_5DEF]),
            bucket_key: hash_words([seed, 0xB0C4E7]),
            in_pkts: Vec::new(),
            buckets: Vec::new(),
            stats: DefenseStats::default(),
        }
    }

    pub(crate) fn next_run(&self) -> Time {
        self.next_run
    }

    fn next_u32(&mut self) -> u32 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }

    /// An entry was created in slot `id`: its packet count starts at 0.
    pub(crate) fn reset_slot(&mut self, id: ConnId) {
        if let Some(n) = self.in_pkts.get_mut(id.0 as usize) {
            *n = 0;
        }
        if let Some(b) = self.buckets.get_mut(id.0 as usize) {
            *b = NO_BUCKET;
        }
    }

    /// `pkts` client packets of entry `id` (`atomic_inc_return(&cp->in_pkts)`).
    #[inline]
    pub(crate) fn count_in(&mut self, id: ConnId, pkts: u64) {
        let i = id.0 as usize;
        if i >= self.in_pkts.len() {
            self.in_pkts.resize(i + 1, 0);
        }
        let n = &mut self.in_pkts[i];
        *n = u8::try_from(u64::from(*n).saturating_add(pkts)).unwrap_or(u8::MAX);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.in_pkts.capacity() + self.buckets.capacity() * 2
    }
}

impl Ipvs {
    /// Available memory now [pages]: the empty table's minus what the live entries use
    /// (`None` without a [`super::Memory`]).
    pub fn avail_pages(&self) -> Option<i64> {
        let m = self.memory?;
        let used = self.live_entries() as i64 * i64::from(m.entry_bytes);
        Some(m.avail_pages - (used + PAGE_BYTES - 1) / PAGE_BYTES)
    }

    /// Entries in the slab (connections, templates, invalidated templates).
    fn live_entries(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// One more entry fits in memory (`kmem_cache_alloc()` succeeds).
    pub(crate) fn entry_allocatable(&self) -> bool {
        self.memory.is_none_or(|m| {
            let bytes = (self.live_entries() as i64 + 1) * i64::from(m.entry_bytes);
            bytes <= m.avail_pages.saturating_mul(PAGE_BYTES)
        })
    }

    /// What the defences did so far.
    pub fn defense_stats(&self) -> DefenseStats {
        self.defense.stats
    }

    /// The defences' state now.
    pub fn defense_level(&self) -> DefenseLevel {
        let d = &self.defense;
        DefenseLevel {
            avail_pages: self.avail_pages(),
            drop_rate: u32::try_from(d.drop_rate).unwrap_or(u32::MAX),
            drop_entry: d.dropentry,
            secure_tcp: d.dos_table,
        }
    }

    /// `update_defense_level()`: compare the available memory with `amemthresh` and set
    /// the three defences, rewriting the automatic modes 1 ↔ 2 in [`super::Sysctls`] as
    /// the kernel does. The kernel also runs it when `drop_entry`, `drop_packet` or
    /// `secure_tcp` is written (`proc_do_defense_mode()`): call it after changing them.
    pub fn update_defense_level(&mut self) {
        let availmem = self.avail_pages().unwrap_or(i64::MAX);
        let amemthresh = self.sysctls.amemthresh.max(0);
        let nomem = availmem < amemthresh;
        let s = &mut self.sysctls;
        let d = &mut self.defense;
        d.dropentry = match (s.drop_entry, nomem) {
            (1, true) => {
                s.drop_entry = 2;
                true
            }
            (2, false) => {
                s.drop_entry = 1;
                false
            }
            (1 | 2, n) => n,
            (3, _) => true,
            _ => false,
        };
        // amemthresh / (amemthresh - availmem), in C's int division.
        let rate = || amemthresh / (amemthresh - availmem);
        match (s.drop_packet, nomem) {
            (1, true) => {
                d.drop_rate = rate();
                d.drop_counter = d.drop_rate;
                s.drop_packet = 2;
            }
            (2, true) => {
                d.drop_rate = rate();
                d.drop_counter = d.drop_rate;
            }
            (2, false) => {
                d.drop_rate = 0;
                s.drop_packet = 1;
            }
            (3, _) => d.drop_rate = i64::from(s.am_droprate),
            _ => d.drop_rate = 0,
        }
        let old = d.old_secure_tcp;
        let to_change = match (s.secure_tcp, nomem) {
            (0, _) | (1, false) => old >= 2,
            (1, true) => {
                s.secure_tcp = 2;
                old < 2
            }
            (2, true) | (3, _) => old < 2,
            (2, false) => {
                s.secure_tcp = 1;
                old >= 2
            }
            _ => false,
        };
        d.old_secure_tcp = s.secure_tcp;
        if to_change {
            // ip_vs_protocol_timeout_change(ipvs, sysctl_secure_tcp > 1).
            d.dos_table = s.secure_tcp > 1;
        }
    }

    /// `ip_vs_todrop()`: `drop_packet` drops this new connection.
    pub(crate) fn todrop(&mut self) -> bool {
        let d = &mut self.defense;
        if d.drop_rate == 0 {
            return false;
        }
        d.drop_counter -= 1;
        if d.drop_counter > 0 {
            return false;
        }
        d.drop_counter = d.drop_rate;
        d.stats.packets_dropped += 1;
        true
    }

    /// A new connection failed for lack of memory.
    pub(crate) fn count_no_memory(&mut self) {
        self.defense.stats.no_memory += 1;
    }

    /// Run the defence work due by `now`, each run after the timers due by its time.
    /// Runs that would change nothing (no automatic mode, nothing to drop) are skipped
    /// in one step.
    pub(crate) fn run_defense(&mut self, now: Time) {
        while self.defense.next_run <= now && self.defense.next_run < NEVER {
            let t = self.defense.next_run;
            if t >= self.next_due {
                self.fire_due(t);
            }
            self.now = t;
            self.update_defense_level();
            if self.defense.dropentry {
                self.random_dropentry();
            }
            let s = self.sysctls;
            let automatic = [s.drop_entry, s.drop_packet, s.secure_tcp].iter().any(|m| matches!(m, 1 | 2));
            // Nothing changes from one run to the next: an empty table (the available
            // memory stays put), or no entry to drop and no mode that memory moves.
            let idle =
                self.live_entries() == 0 || !self.defense.dropentry && (self.memory.is_none() || !automatic);
            let next = Time(t.0.saturating_add(DEFENSE_PERIOD.0));
            self.defense.next_run = if idle && next <= now && now < NEVER {
                // Every run up to `now` would repeat this one: go to the first after it.
                let periods = (now - next).0 / DEFENSE_PERIOD.0 + 1;
                Time(next.0.saturating_add(periods.saturating_mul(DEFENSE_PERIOD.0)))
            } else {
                next
            };
        }
    }

    /// `ip_vs_random_dropentry()`: 128 random buckets of the 4096, each scanned newest
    /// entry first (the model: highest slot first), dropping half-open entries, idle
    /// ones that `todrop_entry()` picks and unassured templates controlling nothing.
    fn random_dropentry(&mut self) {
        if self.live_entries() == 0 {
            // Nothing to find (the model draws no bucket then).
            return;
        }
        let mask = (1u32 << CONN_TAB_BITS) - 1;
        let draws: Vec<u32> =
            (0..(1u32 << CONN_TAB_BITS) >> 5).map(|_| self.defense.next_u32() & mask).collect();
        let mut drawn = vec![false; 1 << CONN_TAB_BITS];
        for &b in &draws {
            drawn[b as usize] = true;
        }
        let key = self.defense.bucket_key;
        let buckets = &mut self.defense.buckets;
        buckets.resize(self.conns.len(), NO_BUCKET);
        let mut members: Vec<(u32, u32)> = Vec::new();
        for (i, (c, b)) in self.conns.iter().zip(buckets.iter_mut()).enumerate() {
            let Some(c) = c else { continue };
            if *b == NO_BUCKET {
                *b = (hash_words([c.key().hash(), key]) as u32 & mask) as u16;
            }
            if drawn[usize::from(*b)] {
                members.push((u32::from(*b), i as u32));
            }
        }
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for b in draws {
            let start = members.partition_point(|m| m.0 < b);
            let end = members.partition_point(|m| m.0 <= b);
            for &(_, i) in &members[start..end] {
                let id = ConnId(i);
                if self.conns[id.0 as usize].is_some() && self.drop_candidate(id) {
                    self.drop_entry(id);
                }
            }
        }
    }

    /// The candidate rules of `ip_vs_random_dropentry()` for entry `id`.
    fn drop_candidate(&mut self, id: ConnId) -> bool {
        let c = self.conns[id.0 as usize].as_ref().expect("scanned entry exists");
        if c.n_control() > 0 {
            return false;
        }
        match c.state() {
            ConnState::Template => {
                let ops = self.services[c.svc_index()].sched.flags().has(lvs_sched::SvcFlags::ONEPACKET);
                if ops { self.todrop_entry(id) } else { !c.assured() }
            }
            ConnState::Tcp(TcpState::SynRecv | TcpState::SynAck) => true,
            ConnState::Tcp(TcpState::Established) => self.todrop_entry(id),
            ConnState::Tcp(_) => false,
            ConnState::Udp if c.protocol() == Protocol::Udp => self.todrop_entry(id),
            ConnState::Udp => false,
        }
    }

    /// `todrop_entry()`: an entry idle for 60 s with 1..=8 client packets; of those with
    /// `i` packets, one in `i` (`dropentry_counters`).
    fn todrop_entry(&mut self, id: ConnId) -> bool {
        let c = self.conns[id.0 as usize].as_ref().expect("scanned entry exists");
        let timeout = match c.state() {
            ConnState::Tcp(s) => self.timeouts.tcp(s),
            ConnState::Udp => self.timeouts.udp,
            ConnState::Template => self.timers.timeout(c.timer().lane),
        };
        // time_before(cp->timeout + jiffies, cp->timer.expires + 60*HZ).
        if self.now + timeout < c.deadline() + TODROP_IDLE {
            return false;
        }
        let d = &mut self.defense;
        let i = d.in_pkts.get(id.0 as usize).copied().unwrap_or(0) as usize;
        if !(1..=8).contains(&i) {
            return false;
        }
        let counter = &mut d.dropentry_counters[i - 1];
        *counter -= 1;
        if *counter > 0 {
            return false;
        }
        *counter = i as i64;
        true
    }

    /// `ip_vs_conn_del()` of a dropped entry: its controlling template goes too once it
    /// controls nothing and is not assured (`ip_vs_conn_expire()`).
    fn drop_entry(&mut self, id: ConnId) {
        let control = self.conns[id.0 as usize].as_ref().expect("dropped entry exists").control();
        self.expire_now(id);
        self.defense.stats.entries_dropped += 1;
        if let Some(t) = control {
            let tmpl = self.conns[t.0 as usize].as_ref().expect("controlling template exists");
            if tmpl.n_control() == 0 && !tmpl.assured() {
                self.expire_now(t);
            }
        }
    }
}
#[cfg(test)]
mod tests;
