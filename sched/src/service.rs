//! A virtual service: its real-server list in kernel order, its scheduler and the
//! bookkeeping the kernel does around them (`ip_vs_ctl.c`, `ip_vs_conn.c` bind/unbind).

use core::net::IpAddr;
use std::collections::BTreeMap;

use crate::dest::{Dest, DestConfig, DestId};
use crate::{Flow, SchedulerKind, SvcFlags, Time};
use crate::{dh, fo, lblc, lblcr, lc, mh, nq, ovf, rr, sh, twos, wlc, wrr};

/// Refusals of the control plane, as the kernel returns them to ipvsadm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `-EEXIST`: the real server is already in the service.
    #[error("real server already exists in the service (EEXIST)")]
    DestExists,
    /// `-ENOENT`: no such real server in the service.
    #[error("no such real server in the service (ENOENT)")]
    NoSuchDest,
    /// `-ERANGE`: the weight does not fit the kernel's `int`.
    #[error("weight {0} out of range (ERANGE)")]
    WeightRange(u32),
    /// `-ERANGE`: the lower threshold is above the upper one.
    #[error("lower threshold {l} is above upper threshold {u} (ERANGE)")]
    ThresholdRange {
        /// Upper threshold.
        u: u32,
        /// Lower threshold.
        l: u32,
    },
}

/// How a connection entry is counted on its real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnCount {
    /// Counted in `activeconns`.
    Active,
    /// Counted in `inactconns`.
    Inactive,
    /// A persistence template, counted in `persistconns`.
    Template,
}

/// The real servers in kernel list order, as a scheduler scans them.
#[derive(Clone, Copy)]
pub(crate) struct DestList<'a> {
    pub(crate) slab: &'a [Dest],
    /// The linked servers, oldest first: the kernel's list order reversed, so that adding
    /// one (at the list's front) is a push, not a move of every other.
    pub(crate) order: &'a [DestId],
}

impl<'a> DestList<'a> {
    /// Number of linked real servers.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The server at list position `pos` (0: the most recently added).
    #[inline]
    pub(crate) fn at(&self, pos: usize) -> (DestId, &'a Dest) {
        let id = self.order[self.order.len() - 1 - pos];
        (id, &self.slab[id.index()])
    }

    /// A server by handle (linked or in the trash).
    #[inline]
    pub(crate) fn get(&self, id: DestId) -> &'a Dest {
        &self.slab[id.index()]
    }

    /// Servers in list order, index 0 (most recently added) first.
    #[inline]
    pub(crate) fn iter(self) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        let slab = self.slab;
        self.order.iter().rev().map(move |&id| (id, &slab[id.index()]))
    }
}

/// Per-scheduler state (`svc->sched_data`).
#[derive(Clone, Debug)]
enum SchedState {
    Rr(rr::RrState),
    Wrr(wrr::WrrState),
    Lc,
    Wlc,
    Sed,
    Nq,
    Fo,
    Ovf,
    Twos(Box<twos::TwosState>),
    Sh(sh::ShState),
    Dh(dh::DhState),
    Mh(mh::MhState),
    Lblc(lblc::LblcState),
    Lblcr(lblcr::LblcrState),
}

/// One IPVS virtual service as the schedulers see it.
///
/// Call order mirrors the kernel: [`Service::add_dest`], [`Service::edit_dest`] and
/// [`Service::del_dest`] run the scheduler's callbacks; [`Service::schedule`] picks a real
/// server for the first packet of a new connection; the connection table then reports
/// each entry's life with [`Service::bind`], [`Service::activate`],
/// [`Service::deactivate`] and [`Service::unbind`], which keep the counters and the
/// OVERLOAD flag as `ip_vs_bind_dest()`/`ip_vs_unbind_dest()` do.
#[derive(Clone, Debug)]
pub struct Service {
    kind: SchedulerKind,
    flags: SvcFlags,
    seed: u64,
    /// Every real server ever added; deleted ones stay here as the kernel's trash.
    slab: Vec<Dest>,
    /// Linked servers in kernel list order reversed (the last = first after the list
    /// head): see [`DestList::order`].
    order: Vec<DestId>,
    /// Every server of `slab` (linked or in the trash) by address and port: the kernel
    /// scans its list (`ip_vs_lookup_dest()`); a map gives the same answer without making
    /// the set-up of N servers cost N².
    by_addr: BTreeMap<(IpAddr, u16), DestId>,
    state: SchedState,
    /// sh, dh, mh: the lookup table is due for a rebuild from the current list (done
    /// before its next use). The rebuild depends on the list only, so rebuilding once
    /// after a run of changes gives the table that rebuilding after each would.
    stale: bool,
}

impl Service {
    /// A new, empty service (`ipvsadm -A ... -s kind`). `seed` feeds the generator of the
    /// schedulers that draw random numbers (twos); the others ignore it.
    ///
    /// `now` starts the periodic timers of the schedulers that have them (lblc, lblcr).
    pub fn new(kind: SchedulerKind, flags: SvcFlags, seed: u64, now: Time) -> Service {
        let mut svc = Service {
            kind,
            flags,
            seed,
            slab: Vec::new(),
            order: Vec::new(),
            by_addr: BTreeMap::new(),
            state: SchedState::Lc,
            stale: false,
        };
        svc.state = svc.init_state(kind, now);
        svc
    }

    /// The scheduler in use.
    pub fn scheduler(&self) -> SchedulerKind {
        self.kind
    }

    /// Service flags (persistent, one-packet, scheduler flags).
    pub fn flags(&self) -> SvcFlags {
        self.flags
    }

    /// `ipvsadm -E`: change the flags. The kernel calls no scheduler callback for this.
    pub fn set_flags(&mut self, flags: SvcFlags) {
        self.flags = flags;
    }

    /// `ipvsadm -E -s kind`: a different scheduler is bound afresh to the current list
    /// (`init_service`); naming the scheduler already in use changes nothing.
    pub fn set_scheduler(&mut self, kind: SchedulerKind, now: Time) {
        if kind != self.kind {
            self.kind = kind;
            self.state = self.init_state(kind, now);
            self.stale = false;
        }
    }

    /// Linked real servers in kernel list order (most recently added first).
    pub fn dests(&self) -> impl Iterator<Item = (DestId, &Dest)> + '_ {
        self.list().iter()
    }

    /// The linked real servers of positive weight that the scheduler's lookup table
    /// names in no slot, so that it never picks them, in list order. Only the table
    /// schedulers have such servers ([`SchedulerKind::table_size`]): sh and dh with more
    /// than 256 servers (sh also when weights fill its buckets first), mh with more than
    /// [`crate::MH_TAB_SIZE`] (or weights that fill its slots first). Empty otherwise.
    pub fn unreachable_dests(&self) -> Vec<DestId> {
        let Some(table) = self.lookup_table() else { return Vec::new() };
        let mut named = vec![false; self.slab.len()];
        for id in table.iter().flatten() {
            named[id.index()] = true;
        }
        self.list().iter().filter(|(id, d)| d.weight > 0 && !named[id.index()]).map(|(id, _)| id).collect()
    }

    /// The lookup table of a table scheduler (sh, dh, mh: each slot's real server, as
    /// the next lookup would use it), `None` for the others. For comparing tables before
    /// and after a change (how many slots an added server takes).
    pub fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        let fresh;
        let state = if self.stale {
            fresh = self.init_state(self.kind, Time::ZERO);
            &fresh
        } else {
            &self.state
        };
        match state {
            SchedState::Sh(s) => Some(s.table().to_vec()),
            SchedState::Dh(s) => Some(s.table().to_vec()),
            SchedState::Mh(s) => Some(s.table().to_vec()),
            _ => None,
        }
    }

    /// Number of linked real servers.
    pub fn num_dests(&self) -> usize {
        self.order.len()
    }

    /// A real server by handle, linked or deleted.
    pub fn dest(&self, id: DestId) -> &Dest {
        &self.slab[id.index()]
    }

    /// The linked real server at `addr:port`.
    pub fn find_dest(&self, addr: IpAddr, port: u16) -> Option<DestId> {
        self.by_addr.get(&(addr, port)).copied().filter(|id| self.slab[id.index()].available)
    }

    /// `ipvsadm -a`: link a real server at the **front** of the list
    /// (`list_add_rcu`), resurrecting it from the trash with its counters if it was
    /// deleted before, then run the scheduler's `add_dest`.
    pub fn add_dest(&mut self, cfg: &DestConfig) -> Result<DestId, Error> {
        check_config(cfg)?;
        if self.find_dest(cfg.addr, cfg.port).is_some() {
            return Err(Error::DestExists);
        }
        // Not linked (checked above): a server at this address is in the trash.
        let id = match self.by_addr.get(&(cfg.addr, cfg.port)) {
            Some(&id) => id,
            None => {
                let id = DestId(u32::try_from(self.slab.len()).expect("more than 2^32 real servers"));
                self.slab.push(Dest {
                    addr: cfg.addr,
                    port: cfg.port,
                    fwd: cfg.fwd,
                    weight: 0,
                    last_weight: 0,
                    u_threshold: 0,
                    l_threshold: 0,
                    tunnel: cfg.tunnel,
                    available: false,
                    overloaded: false,
                    active_conns: 0,
                    inactive_conns: 0,
                    persist_conns: 0,
                });
                self.by_addr.insert((cfg.addr, cfg.port), id);
                id
            }
        };
        self.before_change(self.order.len() + 1);
        self.update_dest(id, cfg, true);
        self.order.push(id);
        match &mut self.state {
            SchedState::Rr(s) => s.add_dest(),
            // The list gained one server: its weight updates the gcd and maximum.
            SchedState::Wrr(s) => s.dest_added(self.slab[id.index()].weight),
            _ => self.after_change(),
        }
        Ok(id)
    }

    /// `ipvsadm -e`: change a linked real server in place (it never moves), then run the
    /// scheduler's `upd_dest`, even when nothing changed.
    pub fn edit_dest(&mut self, cfg: &DestConfig) -> Result<DestId, Error> {
        let id = self.find_dest(cfg.addr, cfg.port).ok_or(Error::NoSuchDest)?;
        check_config(cfg)?;
        self.before_change(self.order.len());
        self.update_dest(id, cfg, false);
        let list = DestList { slab: &self.slab, order: &self.order };
        match &mut self.state {
            SchedState::Wrr(s) => s.dest_changed(list),
            // dh has no `upd_dest`.
            SchedState::Sh(_) | SchedState::Mh(_) => self.after_change(),
            _ => {}
        }
        Ok(id)
    }

    /// `ipvsadm -d`: unlink a real server (it stays in the trash, still counting the
    /// connections bound to it), then run the scheduler's `del_dest`.
    pub fn del_dest(&mut self, addr: IpAddr, port: u16) -> Result<DestId, Error> {
        let id = self.find_dest(addr, port).ok_or(Error::NoSuchDest)?;
        self.before_change(self.order.len() - 1);
        let at = self.order.iter().rposition(|&x| x == id).expect("linked dest is in the list");
        // `at` counts from the oldest; the kernel's list position from the newest.
        let pos = self.order.len() - 1 - at;
        self.order.remove(at);
        self.slab[id.index()].available = false;
        let list = DestList { slab: &self.slab, order: &self.order };
        match &mut self.state {
            SchedState::Rr(s) => s.del_dest(pos),
            SchedState::Wrr(s) => s.dest_changed(list),
            _ => self.after_change(),
        }
        Ok(id)
    }

    /// Pick a real server for the first packet of a new connection, or `None` ("no
    /// destination available": the kernel answers ICMP port unreachable).
    ///
    /// `now` matters only to lblc and lblcr (cache use and expiry).
    pub fn schedule(&mut self, now: Time, flow: &Flow) -> Option<DestId> {
        if self.stale {
            self.rebuild();
        }
        let list = DestList { slab: &self.slab, order: &self.order };
        match &mut self.state {
            SchedState::Rr(s) => s.schedule(list),
            SchedState::Wrr(s) => s.schedule(list),
            SchedState::Lc => lc::schedule(list),
            SchedState::Wlc => wlc::schedule_wlc(list),
            SchedState::Sed => wlc::schedule_sed(list),
            SchedState::Nq => nq::schedule(list),
            SchedState::Fo => fo::schedule(list),
            SchedState::Ovf => ovf::schedule(list),
            SchedState::Twos(s) => s.schedule(list),
            SchedState::Sh(s) => s.schedule(list, self.flags, flow),
            SchedState::Dh(s) => s.schedule(list, flow),
            SchedState::Mh(s) => s.schedule(list, self.flags, flow),
            SchedState::Lblc(s) => s.schedule(list, now, flow),
            SchedState::Lblcr(s) => s.schedule(list, now, flow),
        }
    }

    /// A new connection entry is bound to `id` (`ip_vs_bind_dest()`): counted as
    /// `count`, then the upper threshold may set OVERLOAD. New TCP and UDP entries start
    /// `Inactive` (the kernel's INACTIVE flag); the first TCP packet may then
    /// [`activate`](Service::activate) it.
    pub fn bind(&mut self, id: DestId, count: ConnCount) {
        let d = &mut self.slab[id.index()];
        match count {
            ConnCount::Active => d.active_conns += 1,
            ConnCount::Inactive => d.inactive_conns += 1,
            ConnCount::Template => d.persist_conns += 1,
        }
        if d.u_threshold != 0 && d.total_conns() >= d.u_threshold {
            d.overloaded = true;
        }
    }

    /// An entry bound to `id` moved from the inactive to the active count.
    pub fn activate(&mut self, id: DestId) {
        let d = &mut self.slab[id.index()];
        assert!(d.inactive_conns > 0, "activate: {d} has no inactive connection");
        d.inactive_conns -= 1;
        d.active_conns += 1;
    }

    /// An entry bound to `id` moved from the active to the inactive count.
    pub fn deactivate(&mut self, id: DestId) {
        let d = &mut self.slab[id.index()];
        assert!(d.active_conns > 0, "deactivate: {d} has no active connection");
        d.active_conns -= 1;
        d.inactive_conns += 1;
    }

    /// An entry counted as `count` expired (`ip_vs_unbind_dest()`): the counter drops and
    /// the OVERLOAD flag may clear (lower threshold, else 3/4 of the upper one, else
    /// unconditionally).
    pub fn unbind(&mut self, id: DestId, count: ConnCount) {
        let d = &mut self.slab[id.index()];
        let counter = match count {
            ConnCount::Active => &mut d.active_conns,
            ConnCount::Inactive => &mut d.inactive_conns,
            ConnCount::Template => &mut d.persist_conns,
        };
        assert!(*counter > 0, "unbind {count:?}: counter of {} already 0", d.addr);
        *counter -= 1;
        let total = d.total_conns();
        if d.l_threshold != 0 {
            if total < d.l_threshold {
                d.overloaded = false;
            }
        } else if d.u_threshold != 0 {
            if u64::from(total) * 4 < u64::from(d.u_threshold) * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
    }

    fn list(&self) -> DestList<'_> {
        DestList { slab: &self.slab, order: &self.order }
    }

    /// Before a change to the list that leaves `len_after` servers: a pending rebuild of
    /// the mh table is done now if the change would make the kernel skip its own (mh
    /// keeps its table when the list outgrows it), so that the table is the one of the
    /// last list it fitted.
    fn before_change(&mut self, len_after: usize) {
        if self.stale && matches!(self.state, SchedState::Mh(_)) && len_after > crate::MH_TAB_SIZE as usize {
            self.rebuild();
        }
    }

    /// After a change to the list: sh, dh and mh rebuild their table before its next use
    /// (mh only while the list fits it: beyond, the kernel's rebuild changes nothing).
    fn after_change(&mut self) {
        self.stale = match self.state {
            SchedState::Sh(_) | SchedState::Dh(_) => true,
            SchedState::Mh(_) => self.order.len() <= crate::MH_TAB_SIZE as usize,
            _ => false,
        };
    }

    /// The pending rebuild of the lookup table (`ip_vs_*_reassign()`).
    fn rebuild(&mut self) {
        let list = DestList { slab: &self.slab, order: &self.order };
        match &mut self.state {
            SchedState::Sh(s) => s.rebuild(list),
            SchedState::Dh(s) => s.rebuild(list),
            SchedState::Mh(s) => s.rebuild(list),
            _ => {}
        }
        self.stale = false;
    }

    /// Mirrors `__ip_vs_update_dest()`: weight, last_weight, thresholds, AVAILABLE, and
    /// the OVERLOAD clearing rule.
    fn update_dest(&mut self, id: DestId, cfg: &DestConfig, add: bool) {
        let d = &mut self.slab[id.index()];
        let weight = cfg.weight as i32; // range checked by check_config
        d.weight = weight;
        if add || weight != 0 {
            d.last_weight = weight;
        }
        d.fwd = cfg.fwd;
        d.tunnel = cfg.tunnel;
        d.available = true;
        if cfg.u_threshold == 0 || cfg.u_threshold > d.u_threshold {
            d.overloaded = false;
        }
        d.u_threshold = cfg.u_threshold;
        d.l_threshold = cfg.l_threshold;
    }

    fn init_state(&self, kind: SchedulerKind, now: Time) -> SchedState {
        let list = self.list();
        match kind {
            SchedulerKind::Rr => SchedState::Rr(rr::RrState::new()),
            SchedulerKind::Wrr => SchedState::Wrr(wrr::WrrState::new(list)),
            SchedulerKind::Lc => SchedState::Lc,
            SchedulerKind::Wlc => SchedState::Wlc,
            SchedulerKind::Sed => SchedState::Sed,
            SchedulerKind::Nq => SchedState::Nq,
            SchedulerKind::Fo => SchedState::Fo,
            SchedulerKind::Ovf => SchedState::Ovf,
            SchedulerKind::Twos => SchedState::Twos(Box::new(twos::TwosState::new(self.seed))),
            SchedulerKind::Sh => SchedState::Sh(sh::ShState::new(list)),
            SchedulerKind::Dh => SchedState::Dh(dh::DhState::new(list)),
            SchedulerKind::Mh => SchedState::Mh(mh::MhState::new(list)),
            SchedulerKind::Lblc => SchedState::Lblc(lblc::LblcState::new(now)),
            SchedulerKind::Lblcr => SchedState::Lblcr(lblcr::LblcrState::new(now)),
        }
    }
}

/// The kernel's range checks on a destination (`ip_vs_add_dest`/`ip_vs_edit_dest`).
fn check_config(cfg: &DestConfig) -> Result<(), Error> {
    if cfg.weight > i32::MAX as u32 {
        return Err(Error::WeightRange(cfg.weight));
    }
    if cfg.l_threshold > cfg.u_threshold {
        return Err(Error::ThresholdRange { u: cfg.u_threshold, l: cfg.l_threshold });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::{Forwarding, Protocol};

    fn next(x: &mut u64) -> u64 {
        *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn dest(i: u64, weight: u32) -> DestConfig {
        DestConfig {
            weight,
            ..DestConfig::new(
                IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)),
                80,
                Forwarding::DirectRouting,
            )
        }
    }

    fn flow(x: &mut u64) -> Flow {
        let r = next(x);
        Flow {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::from(r as u32)),
            sport: (r >> 32) as u16,
            daddr: IpAddr::V4(Ipv4Addr::from((r >> 40) as u32 & 0xFF | 0x0A00_0000)),
            dport: 80,
        }
    }

    /// The kernel's order of work: after every change, wrr's `dest_changed` over the list
    /// and the table schedulers' rebuild (mh only while the list fits its table).
    fn eager(reference: &mut Service) {
        let list = DestList { slab: &reference.slab, order: &reference.order };
        if let SchedState::Wrr(s) = &mut reference.state {
            s.dest_changed(list);
        }
        if reference.stale {
            reference.rebuild();
        }
    }

    /// Adds, edits, deletes (and revivals from the trash) with schedules in between give
    /// the same picks and the same scheduler state whether the table rebuilds and wrr's
    /// gcd and maximum are done at once after each change or as the service does them
    /// (wrr incrementally, the tables before their next use).
    /// With `fill_first`, no deletion before every server was added.
    fn same_as_eager(kind: SchedulerKind, servers: u64, ops: usize, seed: u64, fill_first: bool) {
        let mut x = seed;
        let mut lazy = Service::new(kind, SvcFlags(0), 0, Time::ZERO);
        let mut reference = lazy.clone();
        let mut added = 0;
        for step in 0..ops {
            let r = next(&mut x);
            let linked: Vec<DestId> = lazy.order.clone();
            let weight = (r >> 8) as u32 % 5;
            let change = match r % 20 {
                0..=13 if added < servers => {
                    added += 1;
                    Some(dest(added, weight))
                }
                14..=16 if !linked.is_empty() => {
                    let d = lazy.dest(linked[(r >> 16) as usize % linked.len()]);
                    Some(DestConfig { weight, ..DestConfig::new(d.addr, d.port, d.fwd) })
                }
                _ => None,
            };
            let changed = match change {
                Some(c) if lazy.find_dest(c.addr, c.port).is_some() => {
                    assert_eq!(lazy.edit_dest(&c), reference.edit_dest(&c));
                    true
                }
                Some(c) => {
                    assert_eq!(lazy.add_dest(&c), reference.add_dest(&c));
                    true
                }
                None if !linked.is_empty() && r % 20 == 17 && (!fill_first || added == servers) => {
                    let d = lazy.dest(linked[(r >> 16) as usize % linked.len()]).clone();
                    assert_eq!(lazy.del_dest(d.addr, d.port), reference.del_dest(d.addr, d.port));
                    true
                }
                None => false,
            };
            if changed {
                eager(&mut reference);
            }
            // Rarely: the tables stay stale over runs of changes.
            for _ in 0..(if r >> 58 == 0 { 3 } else { 0 }) {
                let f = flow(&mut x);
                assert_eq!(
                    lazy.schedule(Time::ZERO, &f),
                    reference.schedule(Time::ZERO, &f),
                    "{kind:?} step {step}"
                );
            }
            if step % 97 == 0 {
                assert_eq!(lazy.unreachable_dests(), reference.unreachable_dests(), "{kind:?} step {step}");
                lazy.schedule(Time::ZERO, &flow(&mut x.clone()));
                reference.schedule(Time::ZERO, &flow(&mut x));
                assert_eq!(
                    format!("{:?}", lazy.state),
                    format!("{:?}", reference.state),
                    "{kind:?} step {step}"
                );
            }
        }
    }

    #[test]
    fn deferred_and_incremental_set_up_match_the_kernels_order() {
        for kind in [SchedulerKind::Wrr, SchedulerKind::Sh, SchedulerKind::Dh, SchedulerKind::Mh] {
            for seed in 0..20 {
                same_as_eager(kind, 40, 300, seed, false);
            }
        }
    }

    #[test]
    fn mh_keeps_the_table_of_the_last_list_it_fitted() {
        // Past 4093 servers the kernel's rebuild gives up: a deferred rebuild must have
        // happened on the list as it was, before the list outgrew the table.
        let m = u64::from(crate::MH_TAB_SIZE);
        same_as_eager(SchedulerKind::Mh, m + 40, 2 * (m as usize + 40), 7, true);
    }

    #[test]
    fn find_dest_sees_linked_servers_only() {
        let mut svc = Service::new(SchedulerKind::Wrr, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&dest(1, 1)).unwrap();
        assert_eq!(svc.add_dest(&dest(1, 2)), Err(Error::DestExists));
        assert_eq!(svc.del_dest(dest(1, 0).addr, 80), Ok(a));
        assert_eq!(svc.find_dest(dest(1, 0).addr, 80), None);
        assert_eq!(svc.del_dest(dest(1, 0).addr, 80), Err(Error::NoSuchDest));
        // Revived from the trash under its old handle, at the list's front.
        let b = svc.add_dest(&dest(2, 1)).unwrap();
        assert_eq!(svc.add_dest(&dest(1, 3)), Ok(a));
        assert_eq!(svc.dests().map(|(id, _)| id).collect::<Vec<_>>(), vec![a, b]);
    }
}
