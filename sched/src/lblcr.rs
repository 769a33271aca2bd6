//! lblcr: locality-based least connection with replication (`ip_vs_lblcr.c`).
//!
//! Like lblc, but each destination address maps to a *set* of real servers. A hit picks
//! the weighted least-connection member; when that member is missing or overloaded (in
//! lblc's sense), wlc picks a server over the whole service and it joins the set. A set
//! unchanged for `lblcr_expiration` loses its most loaded member on the next hit. The
//! cache table and its garbage collection are lblc's ([`LocalityTable`]).
//!
//! ```text
//!   daddr ──> {set: [newest .. oldest], lastmod, lastuse}
//! ```

use core::net::IpAddr;

use crate::dest::DestId;
use crate::lblc::{CacheEntry, LocalityTable, is_overloaded};
use crate::service::DestList;
use crate::{Duration, Flow, Time, wlc};

/// Default of the `net.ipv4.vs.lblcr_expiration` sysctl (`DEFAULT_EXPIRATION`): a full
/// expiration pass drops entries unused for this long, and a set not modified for this
/// long sheds its most loaded member on the next hit [24 h]. The sysctl is per network
/// namespace; this crate models its default.
pub(crate) const LBLCR_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// `struct ip_vs_lblcr_entry` with its `struct ip_vs_dest_set`.
#[derive(Clone, Debug)]
struct LblcrEntry {
    addr: IpAddr,
    /// Members, most recently inserted first (`list_add_rcu`); never empty.
    set: Vec<DestId>,
    /// `set.lastmod`: last insertion or removal.
    lastmod: Time,
    lastuse: Time,
}

impl CacheEntry for LblcrEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn lastuse(&self) -> Time {
        self.lastuse
    }
}

impl LblcrEntry {
    /// Mirrors `ip_vs_dest_set_insert(set, dest, check = true)`: new members go to the
    /// front and touch `lastmod`; a present one changes nothing.
    fn insert(&mut self, dest: DestId, now: Time) {
        if !self.set.contains(&dest) {
            self.set.insert(0, dest);
            self.lastmod = now;
        }
    }

    /// Mirrors `ip_vs_dest_set_erase()`.
    fn erase(&mut self, dest: DestId, now: Time) {
        if let Some(pos) = self.set.iter().position(|&x| x == dest) {
            self.set.remove(pos);
            self.lastmod = now;
        }
    }
}

/// Mirrors `ip_vs_dest_set_min()`: the first member not overloaded with weight > 0 and
/// AVAILABLE, then any later one not overloaded, AVAILABLE and with
/// `loh * dw > doh * lw` (64-bit products, strict).
fn set_min(set: &[DestId], list: DestList<'_>) -> Option<DestId> {
    let mut members = set.iter();
    let (mut least, mut loh) = loop {
        let &id = members.next()?;
        let d = list.get(id);
        if !d.overloaded && d.weight > 0 && d.available {
            break (id, d.conn_overhead());
        }
    };
    for &id in members {
        let d = list.get(id);
        if d.overloaded {
            continue;
        }
        let doh = d.conn_overhead();
        let lw = list.get(least).weight;
        if i64::from(loh) * i64::from(d.weight) > i64::from(doh) * i64::from(lw) && d.available {
            least = id;
            loh = doh;
        }
    }
    Some(least)
}

/// Mirrors `ip_vs_dest_set_max()`: the first member with weight > 0, then any later one
/// with weight > 0 and `moh * dw < doh * mw`. OVERLOAD and AVAILABLE are not looked at.
fn set_max(set: &[DestId], list: DestList<'_>) -> Option<DestId> {
    let mut members = set.iter();
    let (mut most, mut moh) = loop {
        let &id = members.next()?;
        let d = list.get(id);
        if d.weight > 0 {
            break (id, d.conn_overhead());
        }
    };
    for &id in members {
        let d = list.get(id);
        let doh = d.conn_overhead();
        let mw = list.get(most).weight;
        if i64::from(moh) * i64::from(d.weight) < i64::from(doh) * i64::from(mw) && d.weight > 0 {
            most = id;
            moh = doh;
        }
    }
    Some(most)
}

/// lblcr's `svc->sched_data`.
#[derive(Clone, Debug)]
pub(crate) struct LblcrState {
    table: LocalityTable<LblcrEntry>,
}

impl LblcrState {
    /// `ip_vs_lblcr_init_svc()` at `now`: an empty cache, first collection at `now + 60 s`.
    pub(crate) fn new(now: Time) -> Self {
        LblcrState { table: LocalityTable::new(now, LBLCR_EXPIRATION) }
    }

    /// Mirrors `ip_vs_lblcr_schedule()`, after the collection ticks due by `now`.
    pub(crate) fn schedule(&mut self, list: DestList<'_>, now: Time, flow: &Flow) -> Option<DestId> {
        self.table.run_timers(now);
        if let Some(en) = self.table.get_mut(flow.daddr) {
            en.lastuse = now;
            let dest = set_min(&en.set, list);
            // Shrink a set unchanged for lblcr_expiration (`time_after`: strictly later).
            // This runs after `dest` was chosen and may remove `dest` itself, which is
            // still returned below.
            if en.set.len() > 1 && now > en.lastmod + LBLCR_EXPIRATION {
                if let Some(m) = set_max(&en.set, list) {
                    en.erase(m, now);
                }
            }
            if let Some(id) = dest {
                if !is_overloaded(list.get(id), list) {
                    return Some(id);
                }
            }
            // `__ip_vs_lblcr_schedule()` is the wlc scan, line for line.
            let id = wlc::schedule_wlc(list)?;
            en.insert(id, now);
            return Some(id);
        }
        let id = wlc::schedule_wlc(list)?;
        // Mirrors `ip_vs_lblcr_new()` for an address not cached yet.
        self.table.insert(LblcrEntry { addr: flow.daddr, set: vec![id], lastmod: now, lastuse: now });
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::dest::Dest;
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

    /// Runs `state.schedule` against the service's current servers.
    fn sched(state: &mut LblcrState, svc: &Service, now: Time, f: &Flow) -> Option<DestId> {
        let (slab, order) = snapshot(svc);
        state.schedule(DestList { slab: &slab, order: &order }, now, f)
    }

    fn members(state: &mut LblcrState, f: &Flow) -> Vec<DestId> {
        state.table.get_mut(f.daddr).map(|e| e.set.clone()).unwrap_or_default()
    }

    /// Makes `id` overloaded in lblc's sense: `n` active connections.
    fn load(svc: &mut Service, id: DestId, n: u32) {
        for _ in 0..n {
            svc.bind(id, ConnCount::Inactive);
            svc.activate(id);
        }
    }

    #[test]
    fn set_grows_when_members_are_overloaded() {
        let mut svc = Service::new(SchedulerKind::Lblcr, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&cfg(2, 1)).unwrap();
        let c = svc.add_dest(&cfg(3, 1)).unwrap();
        let mut s = LblcrState::new(Time::ZERO);
        let f = to(1);
        // List C, B, A, all idle: wlc picks C.
        assert_eq!(sched(&mut s, &svc, secs(1), &f), Some(c));
        assert_eq!(members(&mut s, &f), [c]);
        // C over its weight while others idle: wlc adds B (first idle in list order).
        load(&mut svc, c, 2);
        assert_eq!(sched(&mut s, &svc, secs(2), &f), Some(b));
        assert_eq!(members(&mut s, &f), [b, c]);
        // B the least loaded member: a plain hit, the set does not change.
        assert_eq!(sched(&mut s, &svc, secs(3), &f), Some(b));
        assert_eq!(members(&mut s, &f), [b, c]);
        load(&mut svc, b, 2);
        assert_eq!(sched(&mut s, &svc, secs(4), &f), Some(a));
        assert_eq!(members(&mut s, &f), [a, b, c]);
        assert_eq!(s.table.len(), 1);
        // Through the public API too: same choices.
        let mut fresh = Service::new(SchedulerKind::Lblcr, SvcFlags(0), 0, Time::ZERO);
        let a2 = fresh.add_dest(&cfg(1, 1)).unwrap();
        let b2 = fresh.add_dest(&cfg(2, 1)).unwrap();
        let c2 = fresh.add_dest(&cfg(3, 1)).unwrap();
        assert_eq!(fresh.schedule(secs(1), &f), Some(c2));
        load(&mut fresh, c2, 2);
        assert_eq!(fresh.schedule(secs(2), &f), Some(b2));
        load(&mut fresh, b2, 2);
        assert_eq!(fresh.schedule(secs(3), &f), Some(a2));
        // C's load goes away: it is the least loaded member again (set order A, B, C,
        // weighted least connection among members).
        for _ in 0..2 {
            fresh.deactivate(c2);
            fresh.unbind(c2, ConnCount::Inactive);
        }
        load(&mut fresh, a2, 1);
        assert_eq!(fresh.schedule(secs(4), &f), Some(c2));
    }

    #[test]
    fn old_set_sheds_its_most_loaded_member() {
        let mut svc = Service::new(SchedulerKind::Lblcr, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&cfg(1, 1)).unwrap();
        let b = svc.add_dest(&cfg(2, 1)).unwrap();
        let mut s = LblcrState::new(Time::ZERO);
        let f = to(7);
        assert_eq!(sched(&mut s, &svc, secs(0), &f), Some(b));
        load(&mut svc, b, 2);
        assert_eq!(sched(&mut s, &svc, secs(10), &f), Some(a));
        assert_eq!(members(&mut s, &f), [a, b]);
        // Hits every hour keep the entry alive; lastmod stays at 10 s.
        for h in 1..=24 {
            assert_eq!(sched(&mut s, &svc, secs(h * 3600), &f), Some(a));
            assert_eq!(members(&mut s, &f), [a, b], "hour {h}");
        }
        // Exactly lastmod + 24 h is not yet "after".
        assert_eq!(sched(&mut s, &svc, secs(10 + 86400), &f), Some(a));
        assert_eq!(members(&mut s, &f), [a, b]);
        // One second later: B (most loaded) leaves the set.
        assert_eq!(sched(&mut s, &svc, secs(11 + 86400), &f), Some(a));
        assert_eq!(members(&mut s, &f), [a]);
        // A single member is never shed.
        assert_eq!(sched(&mut s, &svc, secs(11 + 86400 + 3 * 3600), &f), Some(a));
        assert_eq!(members(&mut s, &f), [a]);
    }

    #[test]
    fn entries_expire_like_lblc() {
        let mut svc = Service::new(SchedulerKind::Lblcr, SvcFlags(0), 0, Time::ZERO);
        svc.add_dest(&cfg(1, 1)).unwrap();
        let mut s = LblcrState::new(Time::ZERO);
        sched(&mut s, &svc, secs(0), &to(1));
        sched(&mut s, &svc, secs(0), &to(2));
        assert_eq!(s.table.len(), 2);
        // Unused since 0: dropped by the full pass at 24 h (tick 1440, a multiple of 30).
        s.table.run_timers(Time(secs(86400).as_nanos() - 1));
        assert_eq!(s.table.len(), 2);
        s.table.run_timers(secs(86400));
        assert_eq!(s.table.len(), 0);
    }

    #[test]
    fn set_min_and_max_rules() {
        let mut svc = Service::new(SchedulerKind::Lblcr, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&cfg(1, 2)).unwrap();
        let b = svc.add_dest(&cfg(2, 1)).unwrap();
        let z = svc.add_dest(&cfg(3, 0)).unwrap();
        load(&mut svc, a, 2); // overhead 512 / weight 2
        load(&mut svc, b, 1); // overhead 256 / weight 1: a tie
        let (slab, order) = snapshot(&svc);
        let list = DestList { slab: &slab, order: &order };
        // Ties keep the earlier member; weight 0 is skipped as a first member.
        assert_eq!(set_min(&[z, a, b], list), Some(a));
        assert_eq!(set_min(&[b, a], list), Some(b));
        assert_eq!(set_max(&[z, a, b], list), Some(a));
        assert_eq!(set_min(&[z], list), None);
        assert_eq!(set_max(&[z], list), None);
        // A deleted member is never the minimum but can be the maximum.
        svc.del_dest(ip(2), 3128).unwrap();
        let (slab, order) = snapshot(&svc);
        let list = DestList { slab: &slab, order: &order };
        assert_eq!(set_min(&[b], list), None);
        assert_eq!(set_max(&[b], list), Some(b));
    }
}
