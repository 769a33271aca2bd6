//! What the console shows, taken from the daemon loop's state in one go: a [`Snapshot`],
//! shared by every request (an `Arc`), rebuilt only when something changed ([`Live`]).
//!
//! Each snapshot has a version; each server row the version at which it last changed, so
//! that the monitor's poll (`/api/snapshot?since=V`) sends only the rows changed since the
//! version the page has. Report times are not compared (every report moves them): the
//! updates carry every row's report age apart, a few bytes a row, so that the row of an
//! agent that reports the same capacity every second does not change.

use std::sync::Arc;

use feedbackd_proto::Time;
use feedbackd_proto::master::{AgentStatus, StatusRow};
use lvs_ipvs::{ServiceConfig, ServiceKey};

use super::history::{Changes, History, WeightChange};
use crate::ipvs::DestRow;
use crate::status::KernelView;

/// The longest a snapshot is served once built, even if nothing was reported changed, so
/// that report ages and the kernel's counters stay fresh [ns].
pub const MAX_STALE_NS: u64 = 1_000_000_000;

/// The director as the console shows it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Bumped at each build (1 for the first).
    pub version: u64,
    /// The version at which the list of services or servers last changed: a page built
    /// from an older layout reloads instead of patching its rows.
    pub layout: u64,
    /// When it was built (the daemon's clock).
    pub at: Time,
    /// Every virtual service, in the kernel's table or known to the master.
    pub services: Vec<ServiceEntry>,
    /// Every real server the master knows, by key.
    pub rows: Vec<ServerRow>,
    /// Every agent, by id.
    pub agents: Vec<AgentStatus>,
    /// The recent weight changes, oldest first.
    pub changes: Vec<Arc<WeightChange>>,
}

/// A virtual service as the console lists it: in the kernel's table, or only known to the
/// master (its agents' servers wait for it).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEntry {
    /// Which.
    pub key: ServiceKey,
    /// Its settings as the kernel listed them (`None`: not in the table read last).
    pub config: Option<ServiceConfig>,
}

/// A real server: the master's view and the kernel's.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerRow {
    /// The master's view (weight, agent, state, capacity).
    pub status: StatusRow,
    /// The kernel's row (connection counts, thresholds), if it lists the server.
    pub kernel: Option<DestRow>,
    /// When its agent last reported (the daemon's clock), if it has one.
    pub reported_at: Option<Time>,
    /// The snapshot version at which anything shown in the row last changed.
    pub changed: u64,
}

/// What a snapshot is built from.
#[derive(Debug)]
pub struct Parts<'a> {
    /// Now (the daemon's clock).
    pub at: Time,
    /// `Master::status(at)`.
    pub rows: Vec<StatusRow>,
    /// `Master::agents(at)`.
    pub agents: Vec<AgentStatus>,
    /// The kernel's table as read last (and changed since by the loop).
    pub kernel: &'a KernelView,
    /// The recent weight changes.
    pub changes: Vec<Arc<WeightChange>>,
}

impl Snapshot {
    /// Builds the snapshot that follows `prev` (rows unchanged since `prev` keep their
    /// `changed` version).
    pub fn build(prev: &Snapshot, parts: Parts<'_>) -> Snapshot {
        let version = prev.version + 1;
        let mut services: Vec<ServiceEntry> =
            parts.kernel.services.iter().map(|(k, c)| ServiceEntry { key: *k, config: Some(*c) }).collect();
        for r in &parts.rows {
            if !parts.kernel.services.contains_key(&r.key.service)
                && !services.iter().any(|s| s.key == r.key.service)
            {
                services.push(ServiceEntry { key: r.key.service, config: None });
            }
        }
        services.sort_by_key(|s| s.key);
        let mut old = prev.rows.iter().peekable();
        let rows: Vec<ServerRow> = parts
            .rows
            .into_iter()
            .map(|status| {
                let kernel = parts.kernel.servers.get(&status.key).copied();
                let reported_at =
                    status.report_age.map(|a| Time(parts.at.as_nanos().saturating_sub(a.as_nanos())));
                let mut row = ServerRow { status, kernel, reported_at, changed: version };
                // Both lists are sorted by key: walk the old one alongside.
                while old.next_if(|o| o.status.key < row.status.key).is_some() {}
                if let Some(o) = old.next_if(|o| o.status.key == row.status.key) {
                    if same_shown(o, &row) {
                        row.changed = o.changed;
                    }
                }
                row
            })
            .collect();
        let same_layout = services.len() == prev.services.len()
            && services.iter().zip(&prev.services).all(|(a, b)| a.key == b.key)
            && rows.len() == prev.rows.len()
            && rows.iter().zip(&prev.rows).all(|(a, b)| a.status.key == b.status.key);
        let layout = if same_layout && prev.version > 0 { prev.layout } else { version };
        Snapshot {
            version,
            layout,
            at: parts.at,
            services,
            rows,
            agents: parts.agents,
            changes: parts.changes,
        }
    }

    /// The row of `key`, if the master knows it.
    pub fn row(&self, key: &feedbackd_proto::master::RsKey) -> Option<&ServerRow> {
        self.rows.binary_search_by(|r| r.status.key.cmp(key)).ok().map(|i| &self.rows[i])
    }
}

/// Whether two rows of the same server show the same, the time of the last report aside
/// (every report moves it: the updates carry every row's age apart, in a few bytes).
/// Destructured in full, so that a field added to `StatusRow` or `DestRow` must be
/// considered here (a counter the page does not show should not make the row change).
fn same_shown(a: &ServerRow, b: &ServerRow) -> bool {
    let StatusRow {
        key,
        weight,
        forwarding,
        agent,
        liveness,
        admin,
        capacity,
        smoothed,
        report_age: _,
        in_table,
        hold,
        pinned,
    } = &a.status;
    let s = &b.status;
    *key == s.key
        && *weight == s.weight
        && *forwarding == s.forwarding
        && *agent == s.agent
        && *liveness == s.liveness
        && *admin == s.admin
        && *capacity == s.capacity
        && *smoothed == s.smoothed
        && *in_table == s.in_table
        && *hold == s.hold
        && *pinned == s.pinned
        && match (&a.kernel, &b.kernel) {
            (None, None) => true,
            (Some(DestRow { config, active_conns, inactive_conns, stats: _, rates }), Some(k)) => {
                *config == k.config
                    && *active_conns == k.active_conns
                    && *inactive_conns == k.inactive_conns
                    && rates.cps == k.rates.cps
            }
            _ => false,
        }
}

/// The daemon loop's console state: the current snapshot, whether anything changed since
/// it was built, the servers' history and the recent changes.
#[derive(Debug, Default)]
pub struct Live {
    current: Arc<Snapshot>,
    dirty: bool,
    /// Each server's weight and capacity over the last hour.
    pub history: History,
    /// The recent weight changes.
    pub changes: Changes,
}

impl Live {
    /// Something shown may have changed: the next request rebuilds the snapshot.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// The current snapshot, rebuilt from `parts` when something changed since the last
    /// build or it is older than [`MAX_STALE_NS`] (`parts` is called only then).
    pub fn snapshot<'a>(&mut self, now: Time, parts: impl FnOnce() -> Parts<'a>) -> Arc<Snapshot> {
        let stale = now.saturating_since(self.current.at).as_nanos() >= MAX_STALE_NS;
        if self.dirty || stale || self.current.version == 0 {
            let mut p = parts();
            p.changes = self.changes.recent();
            self.current = Arc::new(Snapshot::build(&self.current, p));
            self.dirty = false;
        }
        self.current.clone()
    }

    /// Records a change applied to the kernel's table (and marks the snapshot stale).
    pub fn record(&mut self, change: WeightChange) {
        self.history.weight_changed(change.at, &change.key, change.to.unwrap_or(0));
        self.changes.push(change);
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use feedbackd_proto::Duration;
    use feedbackd_proto::master::RsKey;
    use lvs_ipvs::{Forwarding, Protocol};

    use super::*;

    fn service() -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 }
    }

    fn row(last: u8, weight: u32, age_s: u64) -> StatusRow {
        StatusRow {
            key: RsKey { service: service(), addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port: 80 },
            weight,
            forwarding: Forwarding::DirectRouting,
            agent: Some(format!("a{last}")),
            liveness: None,
            admin: None,
            capacity: Some(0.5),
            smoothed: None,
            report_age: Some(Duration::from_secs(age_s)),
            in_table: true,
            hold: None,
            pinned: None,
        }
    }

    fn parts(kernel: &KernelView, at_s: u64, rows: Vec<StatusRow>) -> Parts<'_> {
        Parts { at: Time(at_s * 1_000_000_000), rows, agents: Vec::new(), kernel, changes: Vec::new() }
    }

    #[test]
    fn rows_keep_their_version_until_they_change() {
        let kernel = KernelView::default();
        let s1 =
            Snapshot::build(&Snapshot::default(), parts(&kernel, 10, vec![row(5, 100, 1), row(6, 100, 1)]));
        assert_eq!((s1.version, s1.layout), (1, 1));
        // One second later: the same reports (older by a second), one weight changed.
        let s2 = Snapshot::build(&s1, parts(&kernel, 11, vec![row(5, 100, 2), row(6, 90, 2)]));
        assert_eq!(s2.version, 2);
        assert_eq!(s2.layout, 1, "same servers, same layout");
        assert_eq!(s2.rows[0].changed, 1, "only its age grew");
        assert_eq!(s2.rows[1].changed, 2);
        assert_eq!(s2.services.len(), 1, "a service known only to the master is listed");
        assert_eq!(s2.services[0].config, None);
        // A server added: a new layout.
        let s3 = Snapshot::build(&s2, parts(&kernel, 12, vec![row(5, 100, 3), row(6, 90, 3), row(7, 1, 0)]));
        assert_eq!(s3.layout, 3);
        assert_eq!(s3.rows[0].changed, 1);
        assert!(s3.row(&row(7, 0, 0).key).is_some());
    }

    #[test]
    fn live_rebuilds_only_when_touched_or_stale() {
        let kernel = KernelView::default();
        let mut live = Live::default();
        let a = live.snapshot(Time(1), || parts(&kernel, 0, vec![row(5, 1, 0)]));
        let b = live.snapshot(Time(2), || panic!("nothing changed: no rebuild"));
        assert!(Arc::ptr_eq(&a, &b));
        live.touch();
        let c = live.snapshot(Time(3), || parts(&kernel, 0, vec![row(5, 2, 0)]));
        assert_eq!(c.version, a.version + 1);
        let d = live.snapshot(Time(MAX_STALE_NS + 10), || parts(&kernel, 1, vec![row(5, 2, 0)]));
        assert_eq!(d.version, c.version + 1, "stale after MAX_STALE_NS");
    }
}
