//! sh: source hashing (`ip_vs_sh.c`).
//!
//! A table of 256 buckets tiles the real-server list in list order, each server taking
//! `max(weight, 1)` consecutive buckets per round; the client address (plus the client
//! port with sh-port) picks a bucket through `hash_32()`. The table is rebuilt on every
//! add, delete and edit (`ip_vs_sh_dest_changed()` is all three callbacks).
//!
//! ```text
//!   list (kernel order):  C(w=2)  B(w=0)  A(w=3)
//!   buckets:  0 1 2 3 4 5 6 7 8 9 ...  255
//!             C C B A A A C C B A ...
//! ```

use crate::dest::DestId;
use crate::hash::{addr_fold, hash_32};
use crate::service::DestList;
use crate::{Flow, SvcFlags};

/// `CONFIG_IP_VS_SH_TAB_BITS` (kernel default 8).
const SH_TAB_BITS: u32 = 8;
/// `IP_VS_SH_TAB_SIZE`.
pub(crate) const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
/// `IP_VS_SH_TAB_MASK`.
const SH_TAB_MASK: u32 = (SH_TAB_SIZE as u32) - 1;

/// `struct ip_vs_sh_state`: one server (or none) per bucket.
#[derive(Clone, Debug)]
pub(crate) struct ShState {
    buckets: Box<[Option<DestId>; SH_TAB_SIZE]>,
}

/// Mirrors `ip_vs_sh_hashkey()`: `(offset + hash_32(port + ntohl(addr_fold), 8)) & 255`,
/// with the sum wrapping as C `unsigned int`.
#[inline]
fn hashkey(fold: u32, port: u16, offset: u32) -> u32 {
    offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), SH_TAB_BITS)) & SH_TAB_MASK
}

impl ShState {
    /// `ip_vs_sh_init_svc()`: a table filled from the current list.
    pub(crate) fn new(list: DestList<'_>) -> Self {
        let mut s = ShState { buckets: Box::new([None; SH_TAB_SIZE]) };
        s.rebuild(list);
        s
    }

    /// Mirrors `ip_vs_sh_reassign()`: walk the list cyclically, leaving a server only
    /// once it has `weight` buckets (`++count >= weight`, so weight 0 still takes one).
    pub(crate) fn rebuild(&mut self, list: DestList<'_>) {
        if list.len() == 0 {
            self.buckets.fill(None);
            return;
        }
        let mut pos = 0;
        let mut count = 0;
        for bucket in self.buckets.iter_mut() {
            let (id, d) = list.at(pos);
            *bucket = Some(id);
            count += 1;
            if count >= d.weight {
                pos = (pos + 1) % list.len();
                count = 0;
            }
        }
    }

    /// The buckets.
    pub(crate) fn table(&self) -> &[Option<DestId>] {
        &self.buckets[..]
    }

    /// Mirrors `ip_vs_sh_schedule()`: `ip_vs_sh_get()`, or `ip_vs_sh_get_fallback()`
    /// with sh-fallback (`IP_VS_SVC_F_SCHED1`); the client port is hashed only with
    /// sh-port (`IP_VS_SVC_F_SCHED2`).
    pub(crate) fn schedule(&self, list: DestList<'_>, flags: SvcFlags, flow: &Flow) -> Option<DestId> {
        // Every protocol a `Flow` carries (TCP, UDP, SCTP) has its ports where
        // `ip_vs_sh_get_port()` reads them.
        let port = if flags.has(SvcFlags::SCHED2) { flow.sport } else { 0 };
        let fold = addr_fold(flow.saddr);
        // The table never holds a deleted server (it is rebuilt on delete), so the
        // kernel's lookup checks only weight and OVERLOAD (`is_unavailable()`).
        let usable = |id: DestId| list.get(id).usable();
        let ihash = hashkey(fold, port, 0);
        let first = self.buckets[ihash as usize];
        if !flags.has(SvcFlags::SCHED1) {
            return first.filter(|&id| usable(id));
        }
        let id = first?;
        if usable(id) {
            return Some(id);
        }
        // The probe sequence starts at `offset + ihash` and hashes it again through
        // hashkey(), so bucket = (offset + 2 * ihash) & 255, not ihash + 1 + offset.
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash) % SH_TAB_SIZE as u32;
            let id = self.buckets[hashkey(fold, port, roffset) as usize]?;
            if usable(id) {
                return Some(id);
            }
        }
        None
    }

    /// The server of each bucket, for tests.
    #[cfg(test)]
    fn bucket(&self, i: usize) -> Option<DestId> {
        self.buckets[i]
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::{Dest, DestConfig, Forwarding, Protocol, SchedulerKind, Service, Time};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn cfg(last: u8, weight: u32) -> DestConfig {
        DestConfig { weight, ..DestConfig::new(ip(last), 80, Forwarding::DirectRouting) }
    }

    #[test]
    fn servers_past_256_buckets_are_unreachable() {
        let mut svc = Service::new(SchedulerKind::Sh, SvcFlags::default(), 0, Time::ZERO);
        let nth = |i: u32| DestConfig {
            weight: 1,
            ..DestConfig::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i)), 80, Forwarding::DirectRouting)
        };
        let ids: Vec<_> = (0..300).map(|i| svc.add_dest(&nth(i)).unwrap()).collect();
        let mut idle = svc.unreachable_dests();
        idle.sort();
        // The list starts with the last added: the first 44 added get no bucket.
        assert_eq!(idle, ids[..44]);
        assert_eq!(SchedulerKind::Sh.table_size(), Some(SH_TAB_SIZE as u32));
    }

    fn flow(saddr: IpAddr, sport: u16) -> Flow {
        Flow { protocol: Protocol::Tcp, saddr, sport, daddr: ip(254), dport: 80 }
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xC0A8_0000 + n))
    }

    fn sh_service(flags: u32) -> Service {
        Service::new(SchedulerKind::Sh, SvcFlags(flags), 0, Time::ZERO)
    }

    /// The service's servers as the scheduler sees them: (slab, kernel list order).
    fn snapshot(svc: &Service) -> (Vec<Dest>, Vec<DestId>) {
        // Oldest first, as `DestList` holds them.
        let mut order: Vec<DestId> = svc.dests().map(|(id, _)| id).collect();
        order.reverse();
        let n = order.iter().map(|id| id.0 + 1).max().unwrap_or(0);
        ((0..n).map(|i| svc.dest(DestId(i)).clone()).collect(), order)
    }

    #[test]
    fn tiling_follows_list_order_and_weights() {
        // Added A(3), B(0), C(2): kernel list order C, B, A; weight 0 takes one bucket.
        let mut svc = sh_service(0);
        let a = svc.add_dest(&cfg(1, 3)).unwrap();
        let b = svc.add_dest(&cfg(2, 0)).unwrap();
        let c = svc.add_dest(&cfg(3, 2)).unwrap();
        let (slab, order) = snapshot(&svc);
        let s = ShState::new(DestList { slab: &slab, order: &order });
        let pattern = [c, c, b, a, a, a];
        for i in 0..SH_TAB_SIZE {
            assert_eq!(s.bucket(i), Some(pattern[i % 6]), "bucket {i}");
        }
        let empty = ShState::new(DestList { slab: &slab, order: &[] });
        assert!((0..SH_TAB_SIZE).all(|i| empty.bucket(i).is_none()));
        // An edit rebuilds: B at weight 4 now takes four buckets per round.
        let mut s = s;
        svc.edit_dest(&cfg(2, 4)).unwrap();
        let (slab, order) = snapshot(&svc);
        s.rebuild(DestList { slab: &slab, order: &order });
        let pattern = [c, c, b, b, b, b, a, a, a];
        for i in 0..SH_TAB_SIZE {
            assert_eq!(s.bucket(i), Some(pattern[i % 9]), "bucket {i} after edit");
        }
    }

    #[test]
    fn key_is_hash_32_of_address_plus_port() {
        let sa = client(77);
        let base = hash_32(addr_fold(sa), 8);
        assert_eq!(hashkey(addr_fold(sa), 0, 0), base);
        assert_eq!(hashkey(addr_fold(sa), 1234, 0), hash_32(addr_fold(sa) + 1234, 8));
        assert_eq!(hashkey(addr_fold(sa), 0, 5), (base + 5) & 255);
    }

    #[test]
    fn same_client_same_server() {
        let mut svc = sh_service(0);
        for i in 1..=5 {
            svc.add_dest(&cfg(i, u32::from(i))).unwrap();
        }
        for n in 0..500 {
            let f = flow(client(n), 1000 + n as u16);
            let first = svc.schedule(Time::ZERO, &f).expect("all servers usable");
            for _ in 0..3 {
                assert_eq!(svc.schedule(Time::ZERO, &f), Some(first));
            }
            // Without sh-port the client port does not matter.
            assert_eq!(svc.schedule(Time::ZERO, &flow(client(n), 1)), Some(first));
        }
    }

    #[test]
    fn lookup_matches_the_bucket_of_the_hash() {
        // One server of weight 1 and one of weight 255: the heavy one (added last, so
        // first in the list) owns buckets 0..=254, the light one bucket 255.
        let mut svc = sh_service(0);
        let light = svc.add_dest(&cfg(1, 1)).unwrap();
        let heavy = svc.add_dest(&cfg(2, 255)).unwrap();
        for n in 0..2000 {
            let f = flow(client(n), 0);
            let want = if hash_32(addr_fold(f.saddr), 8) == 255 { light } else { heavy };
            assert_eq!(svc.schedule(Time::ZERO, &f), Some(want), "client {n}");
        }
    }

    #[test]
    fn port_flag_spreads_one_client() {
        let mut svc = sh_service(SvcFlags::SCHED2);
        for i in 1..=4 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        let picks: std::collections::BTreeSet<_> =
            (0..64).map(|p| svc.schedule(Time::ZERO, &flow(client(1), 40000 + p)).unwrap()).collect();
        assert_eq!(picks.len(), 4, "sh-port should reach every server from one client");
    }

    #[test]
    fn quiesced_server_without_and_with_fallback() {
        for fallback in [false, true] {
            let flags = if fallback { SvcFlags::SCHED1 } else { 0 };
            let mut svc = sh_service(flags);
            for i in 1..=4 {
                svc.add_dest(&cfg(i, 1)).unwrap();
            }
            // Find a client mapped to 10.0.0.1, then quiesce that server: the table is
            // rebuilt but weight 0 still takes one bucket, so the mapping holds.
            let target = svc.find_dest(ip(1), 80).unwrap();
            let f = (0..)
                .map(|n| flow(client(n), 0))
                .find(|f| svc.schedule(Time::ZERO, f) == Some(target))
                .unwrap();
            svc.edit_dest(&cfg(1, 0)).unwrap();
            let got = svc.schedule(Time::ZERO, &f);
            if fallback {
                let id = got.expect("fallback finds another server");
                assert_ne!(id, target);
                // The probe order is (offset + 2 * ihash) & 255.
                let fold = addr_fold(f.saddr);
                let ihash = hash_32(fold, 8);
                let tiles: Vec<_> = svc.dests().map(|(id, _)| id).collect();
                let expected = (0..256u32)
                    .map(|o| tiles[(((o + 2 * ihash) & 255) % 4) as usize])
                    .find(|&id| id != target)
                    .unwrap();
                assert_eq!(id, expected);
            } else {
                assert_eq!(got, None);
            }
        }
    }

    #[test]
    fn overloaded_server_is_not_picked() {
        let mut svc = sh_service(0);
        let id = svc.add_dest(&DestConfig { u_threshold: 1, ..cfg(1, 1) }).unwrap();
        let f = flow(client(3), 0);
        assert_eq!(svc.schedule(Time::ZERO, &f), Some(id));
        svc.bind(id, crate::ConnCount::Inactive);
        assert_eq!(svc.schedule(Time::ZERO, &f), None);
    }
}
