//! Statistics the model collects: latency histograms (hdrhistogram), LVS-REF-1's log
//! histogram and batch means, and time-weighted averages.

use lvs_sched::{Duration, Time};

/// Response times [ns]: an HDR histogram (3 significant digits, auto-resizing) plus the
/// exact count, sum and maximum.
#[derive(Clone, Debug)]
pub struct Latency {
    _todo: (),
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// Empty.
    pub fn new() -> Self {
        todo!("helper C")
    }
    /// Records one response time.
    pub fn record(&mut self, d: Duration) {
        let _ = d;
        todo!("helper C")
    }
    /// Number recorded.
    pub fn count(&self) -> u64 {
        todo!("helper C")
    }
    /// Exact mean [ns]; 0 when empty.
    pub fn mean_ns(&self) -> f64 {
        todo!("helper C")
    }
    /// The q-quantile [ns] (q in [0, 1]) as hdrhistogram reports it; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let _ = q;
        todo!("helper C")
    }
    /// Exact maximum [ns].
    pub fn max_ns(&self) -> u64 {
        todo!("helper C")
    }
    /// Adds another's records.
    pub fn merge(&mut self, other: &Latency) {
        let _ = other;
        todo!("helper C")
    }
}

/// LVS-REF-1's log histogram of response times [s]: bucket `b = floor(ln(R/1e-6)/ln 1.01)`
/// clamped to `[0, 2199]`; the q-quantile is the geometric midpoint `1e-6·1.01^(b+0.5)` of
/// the smallest bucket whose cumulative count is `>= ceil(q·n)`.
#[derive(Clone, Debug)]
pub struct LogHistogram {
    _todo: (),
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LogHistogram {
    /// Empty.
    pub fn new() -> Self {
        todo!("helper C")
    }
    /// Records a response time [s].
    pub fn record(&mut self, r_s: f64) {
        let _ = r_s;
        todo!("helper C")
    }
    /// The q-quantile [s]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let _ = q;
        todo!("helper C")
    }
}

/// Batch means over `[start, end)`: values are assigned to `batches` equal batches by a
/// time (LVS-REF-1: the arrival time), and the 95% half-width of the mean is
/// `t_{k-1,0.975} · sd(batch means) / sqrt(k)`.
#[derive(Clone, Debug)]
pub struct BatchMeans {
    _todo: (),
}

impl BatchMeans {
    /// `batches` (>= 2) batches over `[start, end)`.
    pub fn new(start: Time, end: Time, batches: usize) -> Self {
        let _ = (start, end, batches);
        todo!("helper C")
    }
    /// Records `value` for an item stamped `at`; ignored outside `[start, end)`.
    pub fn record(&mut self, at: Time, value: f64) {
        let _ = (at, value);
        todo!("helper C")
    }
    /// Mean over all recorded values.
    pub fn mean(&self) -> f64 {
        todo!("helper C")
    }
    /// The 95% confidence half-width; `None` if a batch is empty.
    pub fn half_width_95(&self) -> Option<f64> {
        todo!("helper C")
    }
}

/// Student's t quantile `t_{df, 0.975}` (two-sided 95%), exact to 3 decimals for
/// `df >= 1` (a table, then the normal approximation with its correction terms).
pub fn t_975(df: usize) -> f64 {
    let _ = df;
    todo!("helper C")
}

/// The integral over time of a piecewise-constant value (connections open, jobs
/// present...), for time averages.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeIntegral {
    _todo: (),
}

impl TimeIntegral {
    /// The value changes to `value` at `t` (non-decreasing `t`).
    pub fn set(&mut self, t: Time, value: u64) {
        let _ = (t, value);
        todo!("helper C")
    }
    /// The current value.
    pub fn value(&self) -> u64 {
        todo!("helper C")
    }
    /// `∫ value dt` over `[0, t]` [value·ns], `t` at or after the last change.
    pub fn integral(&self, t: Time) -> u128 {
        let _ = t;
        todo!("helper C")
    }
}
