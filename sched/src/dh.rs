//! dh: destination hashing (`ip_vs_dh.c`).
//!
//! Like sh but keyed on the packet's destination address, with exactly one bucket per
//! server whatever its weight (`bucket[i] = list[i % n]`), no port option and no
//! fallback. The table is rebuilt on add and delete only: dh has no `upd_dest`, and
//! weights do not shape the table anyway.

use crate::Flow;
use crate::dest::DestId;
use crate::hash::{addr_fold, hash_32};
use crate::service::DestList;

/// `CONFIG_IP_VS_DH_TAB_BITS` (kernel default 8).
const DH_TAB_BITS: u32 = 8;
/// `IP_VS_DH_TAB_SIZE`.
pub(crate) const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// `struct ip_vs_dh_state`: one server (or none) per bucket.
#[derive(Clone, Debug)]
pub(crate) struct DhState {
    buckets: Box<[Option<DestId>; DH_TAB_SIZE]>,
}

impl DhState {
    /// `ip_vs_dh_init_svc()`: a table filled from the current list.
    pub(crate) fn new(list: DestList<'_>) -> Self {
        let mut s = DhState { buckets: Box::new([None; DH_TAB_SIZE]) };
        s.rebuild(list);
        s
    }

    /// Mirrors `ip_vs_dh_reassign()`: the list repeated cyclically, one bucket each.
    pub(crate) fn rebuild(&mut self, list: DestList<'_>) {
        let n = list.len();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            *bucket = (n > 0).then(|| list.at(i % n).0);
        }
    }

    /// The buckets.
    pub(crate) fn table(&self) -> &[Option<DestId>] {
        &self.buckets[..]
    }

    /// Mirrors `ip_vs_dh_schedule()`: the bucket of `hash_32(ntohl(daddr), 8)`, refused
    /// when its server is not AVAILABLE, has weight <= 0 or is overloaded.
    pub(crate) fn schedule(&self, list: DestList<'_>, flow: &Flow) -> Option<DestId> {
        let id = self.buckets[hash_32(addr_fold(flow.daddr), DH_TAB_BITS) as usize]?;
        let d = list.get(id);
        (d.available && d.usable()).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::{ConnCount, DestConfig, Forwarding, Protocol, SchedulerKind, Service, SvcFlags, Time};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn cfg(last: u8, weight: u32) -> DestConfig {
        DestConfig { weight, ..DestConfig::new(ip(last), 3128, Forwarding::DirectRouting) }
    }

    fn to(daddr: u32) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            sport: 40000,
            daddr: IpAddr::V4(Ipv4Addr::from(daddr)),
            dport: 80,
        }
    }

    fn dh_service() -> Service {
        Service::new(SchedulerKind::Dh, SvcFlags(0), 0, Time::ZERO)
    }

    #[test]
    fn one_bucket_per_server_regardless_of_weight() {
        let mut svc = dh_service();
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&cfg(2, 100)).unwrap();
        let c = svc.add_dest(&cfg(3, 7)).unwrap();
        let list = [c, b, a]; // kernel order: last added first
        for n in 0..3000u32 {
            let daddr = 0x5DB8_0000 + n * 7919;
            let bucket = hash_32(daddr, 8) as usize;
            assert_eq!(svc.schedule(Time::ZERO, &to(daddr)), Some(list[bucket % 3]), "daddr {daddr:#x}");
        }
    }

    #[test]
    fn same_destination_same_server() {
        let mut svc = dh_service();
        for i in 1..=6 {
            svc.add_dest(&cfg(i, 1)).unwrap();
        }
        for n in 0..300u32 {
            let f = to(0x0808_0000 + n);
            let first = svc.schedule(Time::ZERO, &f).unwrap();
            assert!((0..3).all(|_| svc.schedule(Time::ZERO, &f) == Some(first)));
        }
    }

    #[test]
    fn edit_does_not_rebuild_and_unusable_gives_none() {
        let mut svc = dh_service();
        svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&DestConfig { u_threshold: 1, ..cfg(2, 1) }).unwrap();
        let f = (0..).map(|n| to(0x0808_0000 + n)).find(|f| svc.schedule(Time::ZERO, f) == Some(b)).unwrap();
        // Quiescing B keeps its bucket: the flow gets no server (no fallback in dh).
        svc.edit_dest(&DestConfig { weight: 0, ..DestConfig { u_threshold: 1, ..cfg(2, 1) } }).unwrap();
        assert_eq!(svc.schedule(Time::ZERO, &f), None);
        svc.edit_dest(&DestConfig { u_threshold: 1, ..cfg(2, 1) }).unwrap();
        assert_eq!(svc.schedule(Time::ZERO, &f), Some(b));
        // OVERLOAD (upper threshold 1 reached) also refuses.
        svc.bind(b, ConnCount::Inactive);
        assert_eq!(svc.schedule(Time::ZERO, &f), None);
        // Deleting B rebuilds the table: everything goes to the remaining server.
        svc.del_dest(ip(2), 3128).unwrap();
        let a = svc.find_dest(ip(1), 3128).unwrap();
        assert_eq!(svc.schedule(Time::ZERO, &f), Some(a));
        svc.del_dest(ip(1), 3128).unwrap();
        assert_eq!(svc.schedule(Time::ZERO, &f), None);
    }
}
