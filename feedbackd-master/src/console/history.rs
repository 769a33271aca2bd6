//! What the console shows of the past: each real server's weight and capacity over the last
//! hour ([`History`], sampled by the daemon loop), and the recent weight changes with their
//! reasons ([`Changes`], recorded as the loop applies them). Both are bounded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use feedbackd_proto::master::{RsKey, StatusRow};
use feedbackd_proto::{Duration, Time};

/// How far back the charts go.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// The least time between two samples (a chart 552 units wide shows 360 of them).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The most points one server keeps: one per [`SAMPLE_EVERY`] over [`WINDOW`], plus the one
/// before the window that gives its first value. A point is 12 bytes: at most 4.4 KB a
/// server (4.4 MB for 1,000 servers whose capacity changes at every sample).
pub const MAX_POINTS: usize = 361;

/// The most weight changes remembered.
pub const MAX_CHANGES: usize = 500;

/// A server's weight and capacity at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// When (the daemon's clock) [s].
    pub at_s: u32,
    /// The weight.
    pub weight: u32,
    /// The reported capacity [per mille], if an agent reports one.
    pub capacity: Option<u16>,
}

/// One server's points, oldest first; a point is kept only when the weight or the capacity
/// differs from the point before (the charts are step functions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    /// The points, oldest first, at most [`MAX_POINTS`].
    pub points: VecDeque<Point>,
}

impl Point {
    /// A point at `at` (to the second).
    pub fn new(at: Time, weight: u32, capacity: Option<u16>) -> Point {
        let at_s = u32::try_from(at.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX);
        Point { at_s, weight, capacity }
    }

    /// When, on the daemon's clock.
    pub fn at(&self) -> Time {
        Time(u64::from(self.at_s) * 1_000_000_000)
    }
}

impl Series {
    fn push(&mut self, p: Point) {
        let same = self.points.back().is_some_and(|l| l.weight == p.weight && l.capacity == p.capacity);
        // One point per [`SAMPLE_EVERY`] at most: a change within the last point's period
        // replaces its value (the chart's resolution), unless that point is the only one
        // (it holds the value before).
        let period = (SAMPLE_EVERY.as_nanos() / 1_000_000_000) as u32;
        let same_period =
            self.points.len() > 1 && self.points.back().is_some_and(|l| l.at_s / period == p.at_s / period);
        if same_period && !same {
            let last = self.points.back_mut().expect("checked");
            (last.weight, last.capacity) = (p.weight, p.capacity);
        } else if !same {
            self.points.push_back(p);
        }
        // A value back to the one before the period's: the period's point is not needed.
        let n = self.points.len();
        if n >= 2 {
            let (a, b) = (self.points[n - 2], self.points[n - 1]);
            if a.weight == b.weight && a.capacity == b.capacity {
                self.points.pop_back();
            }
        }
        // Keep one point before the window: it gives the value at the window's start.
        let start = Time(p.at().as_nanos().saturating_sub(WINDOW.as_nanos()));
        while self.points.len() > MAX_POINTS || self.points.get(1).is_some_and(|q| q.at() <= start) {
            self.points.pop_front();
        }
    }
}

/// Every known server's series.
#[derive(Clone, Debug, Default)]
pub struct History {
    series: BTreeMap<RsKey, Series>,
    last_sample: Option<Time>,
}

impl History {
    /// Whether a sample is due at `now` ([`SAMPLE_EVERY`] after the last).
    pub fn sample_due(&self, now: Time) -> bool {
        self.last_sample.is_none_or(|t| now.saturating_since(t) >= SAMPLE_EVERY)
    }

    /// Samples every server in `rows`; a server no longer listed is forgotten (so the
    /// history never holds more servers than the master does).
    pub fn sample(&mut self, now: Time, rows: &[StatusRow]) {
        self.last_sample = Some(now);
        let keys: BTreeSet<RsKey> = rows.iter().map(|r| r.key).collect();
        self.series.retain(|k, _| keys.contains(k));
        for r in rows {
            let capacity = r.capacity.map(per_mille);
            self.series.entry(r.key).or_default().push(Point::new(now, r.weight, capacity));
        }
    }

    /// A weight the loop has just applied to the kernel's table (the capacity stays the
    /// last sampled): the charts show a change at once, not at the next sample. A server
    /// without a series gets one at its next sample.
    pub fn weight_changed(&mut self, now: Time, key: &RsKey, weight: u32) {
        if let Some(s) = self.series.get_mut(key) {
            let capacity = s.points.back().and_then(|p| p.capacity);
            s.push(Point::new(now, weight, capacity));
        }
    }

    /// A copy of one server's series.
    pub fn series(&self, key: &RsKey) -> Option<Series> {
        self.series.get(key).cloned()
    }

    /// How many servers have a series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no server has a series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// A capacity in [0, 1] as per mille (clamped).
pub fn per_mille(c: f64) -> u16 {
    (c.clamp(0.0, 1.0) * 1000.0).round() as u16
}

/// One weight change applied to the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightChange {
    /// When (the daemon's clock).
    pub at: Time,
    /// Which server.
    pub key: RsKey,
    /// The weight before (`None`: the server was added).
    pub from: Option<u32>,
    /// The weight after (`None`: the server was removed).
    pub to: Option<u32>,
    /// The agent concerned (`-`: none).
    pub agent: String,
    /// Why (the master's "why this weight" line).
    pub why: String,
}

/// The most recent weight changes, newest last, at most [`MAX_CHANGES`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    ring: VecDeque<Arc<WeightChange>>,
}

impl Changes {
    /// Remembers a change, forgetting the oldest past [`MAX_CHANGES`].
    pub fn push(&mut self, c: WeightChange) {
        if self.ring.len() == MAX_CHANGES {
            self.ring.pop_front();
        }
        self.ring.push_back(Arc::new(c));
    }

    /// The changes, oldest first (shared, not copied).
    pub fn recent(&self) -> Vec<Arc<WeightChange>> {
        self.ring.iter().cloned().collect()
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use feedbackd_proto::master::StatusRow;
    use lvs_ipvs::{Forwarding, Protocol, ServiceKey};

    use super::*;

    fn row(last: u8, weight: u32, capacity: Option<f64>) -> StatusRow {
        let service = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        };
        StatusRow {
            key: RsKey { service, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port: 80 },
            weight,
            forwarding: Forwarding::DirectRouting,
            agent: None,
            liveness: None,
            admin: None,
            capacity,
            smoothed: None,
            report_age: None,
            in_table: true,
            hold: None,
            pinned: None,
        }
    }

    fn at(s: u64) -> Time {
        Time(s * 1_000_000_000)
    }

    #[test]
    fn a_point_only_when_something_changed() {
        let mut h = History::default();
        h.sample(at(0), &[row(5, 100, Some(0.5))]);
        h.sample(at(10), &[row(5, 100, Some(0.5))]);
        h.sample(at(20), &[row(5, 80, Some(0.5))]);
        let s = h.series(&row(5, 0, None).key).unwrap();
        let got: Vec<(u64, u32, Option<u16>)> =
            s.points.iter().map(|p| (u64::from(p.at_s), p.weight, p.capacity)).collect();
        assert_eq!(got, vec![(0, 100, Some(500)), (20, 80, Some(500))]);
    }

    #[test]
    fn bounded_to_the_window_and_to_max_points() {
        let mut h = History::default();
        // A weight that changes at every sample for three hours.
        for i in 0..(3 * 360u64) {
            assert!(h.sample_due(at(i * 10)));
            h.sample(at(i * 10), &[row(5, (i % 2) as u32, None)]);
            assert!(!h.sample_due(at(i * 10 + 9)));
        }
        let s = h.series(&row(5, 0, None).key).unwrap();
        assert!(s.points.len() <= MAX_POINTS, "{} points", s.points.len());
        let now = at((3 * 360 - 1) * 10);
        // Only the first point may be older than the window.
        assert!(s.points.iter().skip(1).all(|p| now.saturating_since(p.at()) < WINDOW));
    }

    #[test]
    fn applied_weights_show_at_once_one_point_per_period() {
        let mut h = History::default();
        let key = row(5, 0, None).key;
        h.sample(at(0), &[row(5, 90, Some(0.9))]);
        // Two changes within one period: the period keeps the last; the capacity stays.
        h.weight_changed(at(21), &key, 31);
        h.weight_changed(at(23), &key, 0);
        // Back and forth within a period leaves nothing.
        h.weight_changed(at(31), &key, 5);
        h.weight_changed(at(32), &key, 0);
        let got: Vec<(u32, u32, Option<u16>)> =
            h.series(&key).unwrap().points.iter().map(|p| (p.at_s, p.weight, p.capacity)).collect();
        assert_eq!(got, vec![(0, 90, Some(900)), (21, 0, Some(900))]);
        // A server never sampled gets no series from a change.
        h.weight_changed(at(40), &row(6, 0, None).key, 3);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn servers_gone_are_forgotten() {
        let mut h = History::default();
        h.sample(at(0), &[row(5, 1, None), row(6, 1, None)]);
        h.sample(at(10), &[row(6, 1, None)]);
        assert_eq!(h.len(), 1);
        assert!(h.series(&row(5, 0, None).key).is_none());
    }

    #[test]
    fn changes_ring_is_bounded() {
        let mut c = Changes::default();
        for i in 0..(MAX_CHANGES as u32 + 10) {
            let key = row(5, 0, None).key;
            c.push(WeightChange {
                at: Time(0),
                key,
                from: Some(i),
                to: Some(i + 1),
                agent: "a".into(),
                why: String::new(),
            });
        }
        let r = c.recent();
        assert_eq!(r.len(), MAX_CHANGES);
        assert_eq!(r[0].from, Some(10));
        assert_eq!(r.last().unwrap().from, Some(MAX_CHANGES as u32 + 9));
    }
}
