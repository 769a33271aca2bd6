//! mh: Maglev hashing (`ip_vs_mh.c`, Linux >= 4.18).
//!
//! A lookup table of `M = 4093` slots. Each server has a preference list (a permutation
//! of the slots: start `offset`, stride `skip`, both from `hsiphash()` of its address
//! and port under fixed keys); servers take turns claiming their next free preferred
//! slot, `last_weight / gcd` (shifted down for huge weights) slots per turn, until the
//! table is full. A client address (plus port with mh-port) hashes to one slot.
//!
//! Differences from every other scheduler, all kept here:
//! - the table is built from `last_weight`: a server *added* with weight 0 gets no slot,
//!   a server *set* to weight 0 keeps its slots and lookups there fail (or fall back);
//! - the permutation depends on the server's port as well as its address;
//! - with more than `M` servers the rebuild fails and the table keeps its old contents.

use crate::dest::DestId;
use crate::hash::{HsipKey, addr_fold, hsiphash_u32};
use crate::service::DestList;
use crate::{Flow, SvcFlags};

/// `primes[]` of `ip_vs_mh.c`: the table sizes `CONFIG_IP_VS_MH_TAB_INDEX` 8..=17 select.
const PRIMES: [u32; 10] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
/// `CONFIG_IP_VS_MH_TAB_INDEX` (kernel default 12).
const MH_TAB_INDEX_CONFIG: usize = 12;
/// `IP_VS_MH_TAB_SIZE`: 4093 with the default configuration, the slots of mh's lookup
/// table, and so the most real servers an mh service can ever pick from: with more, the
/// kernel refuses to rebuild the table and the servers added after the 4093rd stay idle
/// (large weights can fill the table before the list's last servers get a slot, too;
/// [`crate::Service::unreachable_dests`] names them).
pub const MH_TAB_SIZE: u32 = PRIMES[MH_TAB_INDEX_CONFIG - 8];
/// `IP_VS_MH_TAB_BITS`: how many significant bits of `max_weight / gcd` are kept.
const MH_TAB_BITS: u32 = (MH_TAB_INDEX_CONFIG / 2) as u32;

/// `generate_hash_secret()`: fixed keys, so every host builds the same table.
const HASH1: HsipKey = HsipKey([2_654_435_761, 2_654_435_761]);
const HASH2: HsipKey = HsipKey([2_654_446_892, 2_654_446_892]);

/// Mirrors `ip_vs_mh_hashkey()`: `hsiphash()` of the `unsigned int`
/// `offset + port + ntohl(addr_fold)` (wrapping), as it lies in little-endian memory.
#[inline]
fn hashkey(fold: u32, port: u16, key: &HsipKey, offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(fold), key)
}

/// `fls()`: 1-based index of the highest set bit, 0 for 0.
#[inline]
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Mirrors `ip_vs_mh_gcd_weight()`: gcd of the positive `last_weight`s, 0 if none.
fn gcd_weight(list: DestList<'_>) -> i32 {
    list.iter()
        .map(|(_, d)| d.last_weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w })
}

/// Mirrors `ip_vs_mh_shift_weight()`: `max(0, fls(max_last_weight / gcd) - 6)`.
fn shift_weight(list: DestList<'_>, gcd: i32) -> u32 {
    if gcd < 1 {
        return 0;
    }
    let max = list.iter().map(|(_, d)| d.last_weight).fold(0, i32::max);
    fls((max / gcd) as u32).saturating_sub(MH_TAB_BITS)
}

/// `struct ip_vs_mh_dest_setup`: one server's walk through its preference list.
#[derive(Clone, Copy, Debug)]
struct DestSetup {
    /// Current candidate slot (`perm`, starting at `offset`).
    perm: u32,
    /// Stride, in `1..M`.
    skip: u32,
    /// Slots claimed per turn; 0 = not in the table.
    turns: i32,
}

/// `struct ip_vs_mh_state`: the lookup table.
#[derive(Clone, Debug)]
pub(crate) struct MhState {
    lookup: Vec<Option<DestId>>,
}

impl MhState {
    /// `ip_vs_mh_init_svc()`: a table built from the current list.
    ///
    /// The kernel refuses to bind mh to a service of more than `M` servers (`-EINVAL`);
    /// a `Service` cannot refuse, so such a service starts with an empty table.
    pub(crate) fn new(list: DestList<'_>) -> Self {
        let mut s = MhState { lookup: vec![None; MH_TAB_SIZE as usize] };
        s.rebuild(list);
        s
    }

    /// Mirrors `ip_vs_mh_dest_changed()` → `ip_vs_mh_reassign()`, run on add, delete and
    /// every edit.
    pub(crate) fn rebuild(&mut self, list: DestList<'_>) {
        // `-EINVAL`, ignored by the core: the dest is linked, the table stays as it was.
        if list.len() > MH_TAB_SIZE as usize {
            return;
        }
        let gcd = gcd_weight(list);
        if gcd < 1 {
            // No positive last_weight: `ip_vs_mh_populate()` only resets the table.
            self.lookup.fill(None);
            return;
        }
        let setup = permutate(list, gcd, shift_weight(list, gcd));
        self.populate(list, setup);
    }

    /// Mirrors `ip_vs_mh_populate()`: servers in list order take turns; each claims
    /// `turns` consecutive picks, each pick the next free slot of its preference list.
    /// Every slot ends up written, so the table needs no reset first.
    fn populate(&mut self, list: DestList<'_>, mut setup: Vec<DestSetup>) {
        let m = MH_TAB_SIZE;
        let mut taken = vec![false; m as usize];
        let mut n = 0;
        let mut dt_count = 0;
        loop {
            let mut pos = 0;
            while pos < setup.len() {
                let ds = &mut setup[pos];
                if ds.turns < 1 {
                    pos += 1;
                    continue;
                }
                while taken[ds.perm as usize] {
                    ds.perm += ds.skip;
                    if ds.perm >= m {
                        ds.perm -= m;
                    }
                }
                taken[ds.perm as usize] = true;
                self.lookup[ds.perm as usize] = Some(list.at(pos).0);
                n += 1;
                if n == m {
                    return;
                }
                dt_count += 1;
                if dt_count >= ds.turns {
                    dt_count = 0;
                    pos += 1;
                }
            }
        }
    }

    /// The lookup table, slot by slot.
    pub(crate) fn table(&self) -> &[Option<DestId>] {
        &self.lookup
    }

    /// Mirrors `ip_vs_mh_schedule()`: `ip_vs_mh_get()`, or `ip_vs_mh_get_fallback()`
    /// with mh-fallback (`IP_VS_SVC_F_SCHED1`); the client port is hashed only with
    /// mh-port (`IP_VS_SVC_F_SCHED2`).
    pub(crate) fn schedule(&self, list: DestList<'_>, flags: SvcFlags, flow: &Flow) -> Option<DestId> {
        let m = MH_TAB_SIZE;
        // TCP, UDP and SCTP all carry the ports `ip_vs_mh_get_port()` reads.
        let port = if flags.has(SvcFlags::SCHED2) { flow.sport } else { 0 };
        let fold = addr_fold(flow.saddr);
        // `is_unavailable()`: weight and OVERLOAD only. Not AVAILABLE: a table kept after
        // a failed rebuild may still name a deleted server, and the kernel returns it.
        let usable = |id: DestId| list.get(id).usable();
        let ihash = hashkey(fold, port, &HASH1, 0) % m;
        let first = self.lookup[ihash as usize];
        if !flags.has(SvcFlags::SCHED1) {
            return first.filter(|&id| usable(id));
        }
        let id = first?;
        if usable(id) {
            return Some(id);
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let id = self.lookup[(hashkey(fold, port, &HASH1, roffset) % m) as usize]?;
            if usable(id) {
                return Some(id);
            }
        }
        None
    }
}

/// Mirrors `ip_vs_mh_permutate()`: each server's `offset`, `skip` (from its stored
/// address and port) and `turns = (last_weight / gcd) >> rshift`, or 1 if that is 0 and
/// `last_weight != 0`.
fn permutate(list: DestList<'_>, gcd: i32, rshift: u32) -> Vec<DestSetup> {
    let m = MH_TAB_SIZE;
    list.iter()
        .map(|(_, d)| {
            let fold = addr_fold(d.addr);
            let offset = hashkey(fold, d.port, &HASH1, 0) % m;
            let skip = hashkey(fold, d.port, &HASH2, 0) % (m - 1) + 1;
            let lw = d.last_weight;
            let shifted = (lw / gcd) >> rshift;
            let turns = if shifted != 0 { shifted } else { i32::from(lw != 0) };
            DestSetup { perm: offset, skip, turns }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};
    use std::collections::BTreeMap;

    use super::*;
    use crate::{ConnCount, Dest, DestConfig, Forwarding, Protocol, SchedulerKind, Service, Time};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn cfg(last: u8, weight: u32) -> DestConfig {
        DestConfig { weight, ..DestConfig::new(ip(last), 80, Forwarding::DirectRouting) }
    }

    fn flow(n: u32, sport: u16) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::from(0xAC10_0000 + n)),
            sport,
            daddr: ip(254),
            dport: 80,
        }
    }

    fn mh_service(flags: u32) -> Service {
        Service::new(SchedulerKind::Mh, SvcFlags(flags), 0, Time::ZERO)
    }

    /// A real server by number, 10.x.y.z.
    fn nth(i: u32, weight: u32) -> DestConfig {
        DestConfig {
            weight,
            ..DestConfig::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i)), 80, Forwarding::DirectRouting)
        }
    }

    #[test]
    fn servers_past_the_table_size_are_unreachable_and_never_picked() {
        let mut svc = mh_service(0);
        let n = MH_TAB_SIZE + 5;
        let ids: Vec<DestId> = (0..n).map(|i| svc.add_dest(&nth(i, 1)).unwrap()).collect();
        let mut idle = svc.unreachable_dests();
        idle.sort();
        // The rebuild that would take the 4094th fails: the last five added are in no slot.
        assert_eq!(idle, ids[MH_TAB_SIZE as usize..]);
        for k in 0..20_000 {
            let got = svc.schedule(Time::ZERO, &flow(k, 1)).unwrap();
            assert!(!idle.contains(&got), "{got:?} was picked");
        }
        // At the bound, every server has a slot.
        let mut svc = mh_service(0);
        (0..MH_TAB_SIZE).for_each(|i| {
            svc.add_dest(&nth(i, 1)).unwrap();
        });
        assert_eq!(svc.unreachable_dests(), []);
        assert_eq!(SchedulerKind::Mh.table_size(), Some(MH_TAB_SIZE));
    }

    #[test]
    fn large_weights_can_fill_the_table_before_the_last_servers() {
        // Ten servers of weight 1, then 130 of weight 64 (list order: those first). The
        // shift makes their turns 32, and 130 * 32 > 4093.
        let mut svc = mh_service(0);
        let ids: Vec<DestId> =
            (0..140).map(|i| svc.add_dest(&nth(i, if i < 10 { 1 } else { 64 })).unwrap()).collect();
        let mut idle = svc.unreachable_dests();
        idle.sort();
        // 127 heavy servers take 4064 slots, the 128th the last 29: the two heavy servers
        // added first and every light one are left out.
        assert_eq!(idle, ids[..12]);
        // With 120 heavy servers (3840 slots) the light ones get the rest.
        let mut svc = mh_service(0);
        (0..10).for_each(|i| {
            svc.add_dest(&nth(i, 1)).unwrap();
        });
        (10..130).for_each(|i| {
            svc.add_dest(&nth(i, 64)).unwrap();
        });
        assert_eq!(svc.unreachable_dests(), []);
    }

    /// The service's servers as the scheduler sees them: (slab, kernel list order).
    fn snapshot(svc: &Service) -> (Vec<Dest>, Vec<DestId>) {
        // Oldest first, as `DestList` holds them.
        let mut order: Vec<DestId> = svc.dests().map(|(id, _)| id).collect();
        order.reverse();
        let n = order.iter().map(|id| id.0 + 1).max().unwrap_or(0);
        ((0..n).map(|i| svc.dest(DestId(i)).clone()).collect(), order)
    }

    fn table_of(svc: &Service) -> MhState {
        let (slab, order) = snapshot(svc);
        MhState::new(DestList { slab: &slab, order: &order })
    }

    fn shares(s: &MhState) -> BTreeMap<Option<DestId>, usize> {
        let mut m = BTreeMap::new();
        for slot in &s.lookup {
            *m.entry(*slot).or_default() += 1;
        }
        m
    }

    #[test]
    fn table_size_and_keys() {
        assert_eq!(MH_TAB_SIZE, 4093);
        assert_eq!(MH_TAB_BITS, 6);
        assert_eq!(HASH1.0, [0x9E37_79B1, 0x9E37_79B1]);
        assert_eq!(fls(0), 0);
        assert_eq!(fls(1), 1);
        assert_eq!(fls(1000), 10);
    }

    #[test]
    fn same_client_same_server() {
        let mut svc = mh_service(0);
        for i in 1..=7 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        for n in 0..500 {
            let f = flow(n, 1000 + n as u16);
            let first = svc.schedule(Time::ZERO, &f).expect("all servers usable");
            assert!((0..3).all(|_| svc.schedule(Time::ZERO, &f) == Some(first)));
            // Without mh-port the client port does not matter.
            assert_eq!(svc.schedule(Time::ZERO, &flow(n, 7)), Some(first));
        }
    }

    #[test]
    fn lookup_reads_the_slot_of_the_hash() {
        let mut svc = mh_service(0);
        for i in 1..=5 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        let s = table_of(&svc);
        for n in 0..200 {
            let f = flow(n, 0);
            let slot = hsiphash_u32(addr_fold(f.saddr), &HASH1) % 4093;
            assert_eq!(svc.schedule(Time::ZERO, &f), s.lookup[slot as usize]);
        }
    }

    #[test]
    fn table_share_follows_weight() {
        let mut svc = mh_service(0);
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&cfg(2, 2)).unwrap();
        let c = svc.add_dest(&cfg(3, 3)).unwrap();
        let sh = shares(&table_of(&svc));
        assert_eq!(sh.values().sum::<usize>(), 4093);
        assert!(!sh.contains_key(&None), "a populated table has no empty slot");
        // Turns 1, 2, 3 per round: exact thirds of 4093/6 up to the last partial round.
        for (id, w) in [(a, 1), (b, 2), (c, 3)] {
            let want = 4093 * w / 6;
            assert!(sh[&Some(id)].abs_diff(want) <= 3, "{id:?}: {} slots, want ~{want}", sh[&Some(id)]);
        }
        // Lookups over many clients follow the table shares (within a few percent).
        let mut hits = BTreeMap::new();
        for n in 0..60_000 {
            *hits.entry(svc.schedule(Time::ZERO, &flow(n, 0)).unwrap()).or_insert(0usize) += 1;
        }
        for (id, w) in [(a, 1), (b, 2), (c, 3)] {
            let frac = hits[&id] as f64 / 60_000.0;
            assert!((frac - w as f64 / 6.0).abs() < 0.02, "{id:?} got {frac}");
        }
    }

    #[test]
    fn gcd_and_shift_scale_turns() {
        // Weights 100 and 300: gcd 100, turns 1 and 3, the same table as weights 1 and 3.
        let mut big = mh_service(0);
        big.add_dest(&cfg(1, 100)).unwrap();
        big.add_dest(&cfg(2, 300)).unwrap();
        let mut small = mh_service(0);
        small.add_dest(&cfg(1, 1)).unwrap();
        small.add_dest(&cfg(2, 3)).unwrap();
        assert_eq!(table_of(&big).lookup, table_of(&small).lookup);
        // Weights 1 and 1000: fls(1000) = 10, rshift 4, turns 62 and max(1 >> 4, 1) = 1.
        let mut svc = mh_service(0);
        svc.add_dest(&cfg(1, 1)).unwrap();
        svc.add_dest(&cfg(2, 1000)).unwrap();
        let (slab, order) = snapshot(&svc);
        let list = DestList { slab: &slab, order: &order };
        assert_eq!(gcd_weight(list), 1);
        assert_eq!(shift_weight(list, 1), 4);
        let turns: Vec<i32> = permutate(list, 1, 4).iter().map(|d| d.turns).collect();
        assert_eq!(turns, [62, 1]);
    }

    #[test]
    fn added_with_weight_zero_gets_no_slot() {
        let mut svc = mh_service(0);
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let z = svc.add_dest(&cfg(2, 0)).unwrap();
        let sh = shares(&table_of(&svc));
        assert_eq!(sh.get(&Some(a)), Some(&4093));
        assert_eq!(sh.get(&Some(z)), None);
        // All servers at last_weight 0: an empty table, every lookup fails.
        let mut empty = mh_service(SvcFlags::SCHED1);
        empty.add_dest(&cfg(1, 0)).unwrap();
        assert_eq!(shares(&table_of(&empty)).get(&None), Some(&4093));
        assert_eq!(empty.schedule(Time::ZERO, &flow(1, 0)), None);
    }

    #[test]
    fn quiesced_server_keeps_its_slots() {
        let mut svc = mh_service(0);
        for i in 1..=4 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        let target = svc.find_dest(ip(2), 80).unwrap();
        let before: Vec<_> = (0..2000).map(|n| svc.schedule(Time::ZERO, &flow(n, 0))).collect();
        let table_before = table_of(&svc).lookup;
        svc.edit_dest(&cfg(2, 0)).unwrap();
        // last_weight stays 1: the rebuilt table is identical.
        assert_eq!(table_of(&svc).lookup, table_before);
        let mut moved = 0;
        for (n, &was) in before.iter().enumerate() {
            let now = svc.schedule(Time::ZERO, &flow(n as u32, 0));
            if was == Some(target) {
                assert_eq!(now, None, "client {n}: no fallback, no server");
                moved += 1;
            } else {
                assert_eq!(now, was, "client {n} must not be remapped");
            }
        }
        assert!(moved > 0);
        // With mh-fallback the same clients get another server, the others stay put.
        svc.set_flags(SvcFlags(SvcFlags::SCHED1));
        for (n, &was) in before.iter().enumerate() {
            let now = svc.schedule(Time::ZERO, &flow(n as u32, 0));
            if was == Some(target) {
                let id = now.expect("fallback finds a server");
                assert_ne!(id, target);
            } else {
                assert_eq!(now, was);
            }
        }
        // OVERLOAD is refused the same way.
        let mut svc = mh_service(0);
        let a = svc.add_dest(&DestConfig { u_threshold: 1, ..cfg(1, 1) }).unwrap();
        assert_eq!(svc.schedule(Time::ZERO, &flow(9, 0)), Some(a));
        svc.bind(a, ConnCount::Inactive);
        assert_eq!(svc.schedule(Time::ZERO, &flow(9, 0)), None);
    }

    #[test]
    fn fallback_probe_order() {
        let mut svc = mh_service(SvcFlags::SCHED1);
        for i in 1..=3 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        let s = table_of(&svc);
        let target = svc.find_dest(ip(1), 80).unwrap();
        svc.edit_dest(&cfg(1, 0)).unwrap();
        for n in 0..300 {
            let f = flow(n, 0);
            let fold = addr_fold(f.saddr);
            let ihash = hsiphash_u32(fold, &HASH1) % 4093;
            let want = if s.lookup[ihash as usize] != Some(target) {
                s.lookup[ihash as usize]
            } else {
                (0..4093)
                    .map(|o| s.lookup[(hsiphash_u32(fold + (o + ihash) % 4093, &HASH1) % 4093) as usize])
                    .find(|&id| id != Some(target))
                    .flatten()
            };
            assert_eq!(svc.schedule(Time::ZERO, &f), want, "client {n}");
        }
    }

    #[test]
    fn port_changes_the_preference_list() {
        let (fold, k) = (addr_fold(ip(1)), &HASH1);
        assert_ne!(hashkey(fold, 80, k, 0), hashkey(fold, 8080, k, 0));
        assert_eq!(hashkey(fold, 80, k, 0), hsiphash_u32(fold + 80, k));
        // mh-port: one client spreads over the servers by source port.
        let mut svc = mh_service(SvcFlags::SCHED2);
        for i in 1..=4 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        let picks: std::collections::BTreeSet<_> =
            (0..64).map(|p| svc.schedule(Time::ZERO, &flow(1, 30000 + p)).unwrap()).collect();
        assert_eq!(picks.len(), 4);
    }

    #[test]
    fn more_than_m_servers_keeps_the_table() {
        let mut svc = mh_service(0);
        svc.add_dest(&cfg(1, 1)).unwrap();
        svc.add_dest(&cfg(2, 1)).unwrap();
        let (mut slab, order) = snapshot(&svc);
        let mut s = MhState::new(DestList { slab: &slab, order: &order });
        let before = s.lookup.clone();
        // 4094 servers: the rebuild fails and the old table stays.
        let template = slab[0].clone();
        let mut big_order = order.clone();
        for i in 0..(4094 - order.len() as u32) {
            let mut d = template.clone();
            d.addr = IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + i));
            big_order.push(DestId(slab.len() as u32));
            slab.push(d);
        }
        s.rebuild(DestList { slab: &slab, order: &big_order });
        assert_eq!(s.lookup, before);
        // At exactly M servers it rebuilds, one slot each.
        big_order.pop();
        s.rebuild(DestList { slab: &slab, order: &big_order });
        assert!(shares(&s).values().all(|&c| c == 1));
    }
}
