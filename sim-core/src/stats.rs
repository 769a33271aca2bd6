//! Statistics the model collects: latency histograms (hdrhistogram), LVS-REF-1's log
//! histogram and batch means, and time-weighted averages.

use hdrhistogram::Histogram;
use lvs_sched::{Duration, Time};

/// Significant decimal digits of [`Latency`]'s histogram: values within 0.1% share a bucket.
const LATENCY_SIGFIG: u8 = 3;

/// The largest value an auto-resizing hdrhistogram tracks (`i64::MAX / 2`) [ns], about 146
/// years; larger values are clamped to it in the histogram (the exact sum and max keep them).
const LATENCY_HDR_MAX_NS: u64 = u64::MAX >> 2;

/// Response times [ns]: a histogram plus the exact count, sum and maximum. The histogram is
/// either full (an HDR histogram, 3 significant digits, auto-resizing: about 100-200 KiB
/// once values reach milliseconds) or compact ([`Latency::compact`]: log-linear buckets
/// 1/64 of an octave wide over the range of values seen, a few KiB, every quantile within
/// 0.8% of a recorded value's bucket): a run keeps a compact one per real server when it
/// keeps no full per-server detail ([`crate::model::ServerDetail`]).
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Hist,
    count: u64,
    /// Exact sum [ns]; u128 so 2^64 records of the largest value cannot overflow.
    sum_ns: u128,
    max_ns: u64,
}

#[derive(Clone, Debug)]
enum Hist {
    Full(Box<Histogram<u64>>),
    Compact(Compact),
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// Empty, with a full HDR histogram.
    pub fn new() -> Self {
        let hist = Histogram::new(LATENCY_SIGFIG).expect("3 significant digits is a valid hdrhistogram");
        Latency { hist: Hist::Full(Box::new(hist)), count: 0, sum_ns: 0, max_ns: 0 }
    }
    /// Empty, with a compact histogram: a quantile is the midpoint of its bucket (clamped
    /// to the exact maximum; the highest rank is the maximum), within
    /// [`COMPACT_RELATIVE_ERROR`] of the recorded value.
    pub fn compact() -> Self {
        Latency { hist: Hist::Compact(Compact::default()), count: 0, sum_ns: 0, max_ns: 0 }
    }
    /// Whether its histogram is the compact one.
    pub fn is_compact(&self) -> bool {
        matches!(self.hist, Hist::Compact(_))
    }
    /// Records one response time.
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos();
        match &mut self.hist {
            // 0 ns is recordable: hdrhistogram's lowest discernible value 1 still counts 0.
            Hist::Full(h) => {
                h.record(ns.min(LATENCY_HDR_MAX_NS)).expect("value within the auto-resize range")
            }
            Hist::Compact(c) => c.record_n(ns, 1),
        }
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }
    /// Number recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Exact sum of the records [ns].
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }
    /// Exact mean [ns]; 0 when empty.
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        // Integer part and remainder separately, so a huge u128 sum loses no ns to f64.
        let n = u128::from(self.count);
        (self.sum_ns / n) as f64 + (self.sum_ns % n) as f64 / n as f64
    }
    /// The q-quantile [ns] (q in [0, 1]) as the histogram reports it; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        assert!((0.0..=1.0).contains(&q), "quantile {q} outside [0, 1]");
        if self.count == 0 {
            return 0;
        }
        match &self.hist {
            Hist::Full(h) => h.value_at_quantile(q),
            Hist::Compact(c) => {
                let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
                // The highest rank is the exact maximum.
                if rank == self.count { self.max_ns } else { c.at_rank(rank).min(self.max_ns) }
            }
        }
    }
    /// Exact maximum [ns].
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }
    /// Adds another's records. Between a full and a compact histogram the other's values
    /// enter at its precision: a full one's at their HDR value, a compact one's at their
    /// bucket's midpoint.
    pub fn merge(&mut self, other: &Latency) {
        match (&mut self.hist, &other.hist) {
            (Hist::Full(a), Hist::Full(b)) => {
                a.add(&**b).expect("an auto-resizing histogram takes any other's values")
            }
            (Hist::Compact(a), Hist::Compact(b)) => a.add(b),
            (Hist::Compact(a), Hist::Full(b)) => {
                for v in b.iter_recorded() {
                    a.record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
            (Hist::Full(a), Hist::Compact(b)) => {
                for (i, n) in b.buckets() {
                    let v = Compact::midpoint(i).min(LATENCY_HDR_MAX_NS);
                    a.record_n(v, n).expect("value within the auto-resize range");
                }
            }
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }
    /// Bytes it holds on the heap (for memory estimates and tests).
    pub fn heap_bytes(&self) -> usize {
        match &self.hist {
            Hist::Full(h) => std::mem::size_of::<Histogram<u64>>() + h.distinct_values() * 8,
            Hist::Compact(c) => c.heap_bytes(),
        }
    }
}

/// Bits of a [`Compact`] bucket's sub-index: 2^6 = 64 buckets per octave.
const COMPACT_SUB_BITS: u32 = 6;
const COMPACT_SUB: u64 = 1 << COMPACT_SUB_BITS;

/// The largest relative distance from a recorded value to the quantile a compact
/// [`Latency`] reports for it: half a bucket, 1/128 of its lower edge.
pub const COMPACT_RELATIVE_ERROR: f64 = 1.0 / (2 * COMPACT_SUB) as f64;

/// Log-linear buckets: values below 128 ns exactly; above, 64 buckets per power of two
/// (bucket `shift·64 + (v >> shift)` with `shift = msb(v) − 6`). Only the buckets between
/// the lowest and highest seen are stored, as u32 counts widened to u64 when one would
/// overflow.
#[derive(Clone, Debug, Default)]
struct Compact {
    /// Bucket of `counts[0]`.
    first: u32,
    counts: Counts,
}

#[derive(Clone, Debug)]
enum Counts {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Narrow(Vec::new())
    }
}

impl Counts {
    fn len(&self) -> usize {
        match self {
            Counts::Narrow(v) => v.len(),
            Counts::Wide(v) => v.len(),
        }
    }
    fn get(&self, i: usize) -> u64 {
        match self {
            Counts::Narrow(v) => u64::from(v[i]),
            Counts::Wide(v) => v[i],
        }
    }
    /// Adds `n` at `i` (in range), widening on overflow.
    fn add(&mut self, i: usize, n: u64) {
        if let Counts::Narrow(v) = self {
            if let Ok(c) = u32::try_from(u64::from(v[i]) + n) {
                v[i] = c;
                return;
            }
            *self = Counts::Wide(v.iter().map(|&c| u64::from(c)).collect());
        }
        if let Counts::Wide(v) = self {
            v[i] += n;
        }
    }
    /// Makes room for `front` more buckets before and `back` after (exactly).
    fn extend(&mut self, front: usize, back: usize) {
        fn grow<T: Copy + Default>(v: &mut Vec<T>, front: usize, back: usize) {
            let mut w = Vec::with_capacity(front + v.len() + back);
            w.resize(front, T::default());
            w.extend_from_slice(v);
            w.resize(front + v.len() + back, T::default());
            *v = w;
        }
        match self {
            Counts::Narrow(v) => grow(v, front, back),
            Counts::Wide(v) => grow(v, front, back),
        }
    }
}

impl Compact {
    fn bucket(v: u64) -> u32 {
        if v < 2 * COMPACT_SUB {
            return v as u32;
        }
        let shift = 63 - v.leading_zeros() - COMPACT_SUB_BITS;
        (u64::from(shift) * COMPACT_SUB + (v >> shift)) as u32
    }
    /// The lowest and highest value of bucket `i`.
    fn range(i: u32) -> (u64, u64) {
        let i = u64::from(i);
        if i < 2 * COMPACT_SUB {
            return (i, i);
        }
        let shift = i / COMPACT_SUB - 1;
        let lo = (i % COMPACT_SUB + COMPACT_SUB) << shift;
        (lo, lo + ((1 << shift) - 1))
    }
    fn midpoint(i: u32) -> u64 {
        let (lo, hi) = Self::range(i);
        lo + (hi - lo) / 2
    }
    fn record_n(&mut self, v: u64, n: u64) {
        let b = Self::bucket(v);
        let len = self.counts.len() as u32;
        if len == 0 {
            self.first = b;
            self.counts.extend(0, 1);
        } else if b < self.first {
            self.counts.extend((self.first - b) as usize, 0);
            self.first = b;
        } else if b >= self.first + len {
            self.counts.extend(0, (b - self.first - len + 1) as usize);
        }
        self.counts.add((b - self.first) as usize, n);
    }
    /// The non-empty buckets and their counts, lowest first.
    fn buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        (0..self.counts.len()).map(|i| (self.first + i as u32, self.counts.get(i))).filter(|&(_, n)| n > 0)
    }
    fn add(&mut self, other: &Compact) {
        for (i, n) in other.buckets() {
            let (lo, _) = Self::range(i);
            self.record_n(lo, n);
        }
    }
    /// The midpoint of the bucket holding the `rank`-th lowest value (from 1).
    fn at_rank(&self, rank: u64) -> u64 {
        let mut cumulative = 0;
        for (i, n) in self.buckets() {
            cumulative += n;
            if cumulative >= rank {
                return Self::midpoint(i);
            }
        }
        unreachable!("rank {rank} is at most the count, so some bucket reaches it")
    }
    fn heap_bytes(&self) -> usize {
        match &self.counts {
            Counts::Narrow(v) => v.capacity() * 4,
            Counts::Wide(v) => v.capacity() * 8,
        }
    }
}

/// Number of buckets of [`LogHistogram`] (LVS-REF-1): 1 µs · 1.01^2200 ≈ 3.2e3 s.
pub const LOG_HISTOGRAM_BUCKETS: usize = 2200;

/// Lower edge of bucket 0 of [`LogHistogram`] [s].
const LOG_HISTOGRAM_FLOOR_S: f64 = 1e-6;

/// Ratio of a [`LogHistogram`] bucket's upper to lower edge: 1% wide buckets.
const LOG_HISTOGRAM_RATIO: f64 = 1.01;

/// LVS-REF-1's log histogram of response times [s]: bucket `b = floor(ln(R/1e-6)/ln 1.01)`
/// clamped to `[0, 2199]`; the q-quantile is the geometric midpoint `1e-6·1.01^(b+0.5)` of
/// the smallest bucket whose cumulative count is `>= ceil(q·n)`.
#[derive(Clone, Debug)]
pub struct LogHistogram {
    counts: Box<[u64; LOG_HISTOGRAM_BUCKETS]>,
    count: u64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LogHistogram {
    /// Empty.
    pub fn new() -> Self {
        LogHistogram { counts: Box::new([0; LOG_HISTOGRAM_BUCKETS]), count: 0 }
    }
    /// The bucket of a response time `r_s` [s]: below 1 µs (0 included) is bucket 0, beyond
    /// the last bucket is bucket 2199.
    pub fn bucket(r_s: f64) -> usize {
        assert!(r_s >= 0.0, "response time {r_s} s is negative or NaN");
        let b = ((r_s / LOG_HISTOGRAM_FLOOR_S).ln() / LOG_HISTOGRAM_RATIO.ln()).floor();
        // ln(0) = -inf and R < 1e-6 give b < 0; `as` would also saturate, but say it.
        if b < 0.0 { 0 } else { (b as usize).min(LOG_HISTOGRAM_BUCKETS - 1) }
    }
    /// The value reported for bucket `b`: its geometric midpoint `1e-6·1.01^(b+0.5)` [s].
    pub fn bucket_midpoint(b: usize) -> f64 {
        assert!(b < LOG_HISTOGRAM_BUCKETS, "bucket {b} out of range");
        LOG_HISTOGRAM_FLOOR_S * LOG_HISTOGRAM_RATIO.powf(b as f64 + 0.5)
    }
    /// Records a response time [s].
    pub fn record(&mut self, r_s: f64) {
        self.counts[Self::bucket(r_s)] += 1;
        self.count += 1;
    }
    /// Number recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Records in bucket `b`.
    pub fn bucket_count(&self, b: usize) -> u64 {
        self.counts[b]
    }
    /// Adds another's records.
    pub fn merge(&mut self, other: &LogHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
    }
    /// The q-quantile [s]; `None` when empty. `q = 0` gives the smallest bucket recorded
    /// (the rank `ceil(q·n)` is raised to at least 1, as hdrhistogram does).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        assert!((0.0..=1.0).contains(&q), "quantile {q} outside [0, 1]");
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut cumulative = 0;
        let b = self
            .counts
            .iter()
            .position(|&c| {
                cumulative += c;
                cumulative >= rank
            })
            .expect("rank <= count, so some bucket reaches it");
        Some(Self::bucket_midpoint(b))
    }
}

/// Batches of a run's mean response time (the run's `BatchMeans`; summary.json's
/// `latency_ms.mean_ci95` is their 95% half-width; `lvsim compare` tests one run's mean
/// with them, as an estimate of this many values).
pub const LATENCY_BATCHES: usize = 20;

/// Batch means over `[start, end)`: values are assigned to `batches` equal batches by a
/// time (LVS-REF-1: the arrival time), and the 95% half-width of the mean is
/// `t_{k-1,0.975} · sd(batch means) / sqrt(k)`.
#[derive(Clone, Debug)]
pub struct BatchMeans {
    start: Time,
    end: Time,
    /// Per batch: sum of values and number of values.
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl BatchMeans {
    /// `batches` (>= 2) batches over `[start, end)`.
    pub fn new(start: Time, end: Time, batches: usize) -> Self {
        assert!(batches >= 2, "batch means need at least 2 batches, got {batches}");
        assert!(start < end, "empty batch-means window [{start}, {end})");
        BatchMeans { start, end, sums: vec![0.0; batches], counts: vec![0; batches] }
    }
    /// Number of batches.
    pub fn batches(&self) -> usize {
        self.sums.len()
    }
    /// Records `value` for an item stamped `at`; ignored outside `[start, end)`.
    pub fn record(&mut self, at: Time, value: f64) {
        if at < self.start || at >= self.end {
            return;
        }
        // floor((at - start)·k / (end - start)) in integers, so a boundary instant lands in
        // the same batch in every implementation; u128 because ns · k overflows u64.
        let k = self.sums.len() as u128;
        let offset = u128::from((at - self.start).as_nanos());
        let span = u128::from((self.end - self.start).as_nanos());
        let b = (offset * k / span) as usize;
        self.sums[b] += value;
        self.counts[b] += 1;
    }
    /// Number of values recorded in `[start, end)`.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Mean over all recorded values; 0 when none.
    pub fn mean(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        self.sums.iter().sum::<f64>() / n as f64
    }
    /// The mean of each batch, `None` if a batch is empty.
    pub fn batch_means(&self) -> Option<Vec<f64>> {
        self.sums.iter().zip(&self.counts).map(|(&s, &n)| (n > 0).then(|| s / n as f64)).collect()
    }
    /// The 95% confidence half-width; `None` if a batch is empty.
    pub fn half_width_95(&self) -> Option<f64> {
        let means = self.batch_means()?;
        let k = means.len() as f64;
        let grand = means.iter().sum::<f64>() / k;
        // Sample variance (k − 1 in the denominator), matching the t quantile's k − 1 df.
        let var = means.iter().map(|m| (m - grand) * (m - grand)).sum::<f64>() / (k - 1.0);
        Some(t_975(means.len() - 1) * var.sqrt() / k.sqrt())
    }
}

/// `t_{df, 0.975}` for df 1..=30 [index df − 1], to 9 decimals (computed from the regularised
/// incomplete beta function). Below 31 df the normal expansion is off by up to 1.4.
const T_975_SMALL: [f64; 30] = [
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
];

/// `t_{df, 0.975}` for the classic table's larger rows `(df, t)`.
const T_975_LARGE: [(usize, f64); 3] = [(40, 2.021075390), (60, 2.000297822), (120, 1.979930405)];

/// The standard normal quantile `z_{0.975}`.
const Z_975: f64 = 1.959963984540054;

/// Student's t quantile `t_{df, 0.975}` (two-sided 95%), exact to 3 decimals for
/// `df >= 1` (a table, then the normal approximation with its correction terms).
pub fn t_975(df: usize) -> f64 {
    assert!(df >= 1, "Student's t needs at least 1 degree of freedom");
    if df <= T_975_SMALL.len() {
        return T_975_SMALL[df - 1];
    }
    if let Some(&(_, t)) = T_975_LARGE.iter().find(|&&(d, _)| d == df) {
        return t;
    }
    t_975_expansion(df as f64)
}

/// The Cornish-Fisher expansion of `t_{ν, 0.975}` around the normal quantile, four terms in
/// 1/ν (Abramowitz & Stegun 26.7.5): within 3e-8 of the exact value for ν >= 31.
fn t_975_expansion(nu: f64) -> f64 {
    let z = Z_975;
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + g1 / nu + g2 / nu.powi(2) + g3 / nu.powi(3) + g4 / nu.powi(4)
}

/// The integral over time of a piecewise-constant value (connections open, jobs
/// present...), for time averages.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeIntegral {
    /// The value since `since`.
    value: u64,
    /// The last change.
    since: Time,
    /// `∫ value dt` over `[0, since]` [value·ns].
    acc: u128,
}

impl TimeIntegral {
    /// The value changes to `value` at `t` (non-decreasing `t`).
    pub fn set(&mut self, t: Time, value: u64) {
        self.acc = self.integral(t);
        self.since = t;
        self.value = value;
    }
    /// The current value.
    pub fn value(&self) -> u64 {
        self.value
    }
    /// The time of the last change (`Time::ZERO` if none).
    pub fn last_change(&self) -> Time {
        self.since
    }
    /// `∫ value dt` over `[0, t]` [value·ns], `t` at or after the last change.
    pub fn integral(&self, t: Time) -> u128 {
        assert!(t >= self.since, "time integral queried at {t}, before its last change at {}", self.since);
        self.acc + u128::from(self.value) * u128::from((t - self.since).as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ns(ns: u64) -> Time {
        Time(ns)
    }

    #[test]
    fn latency_of_one_to_thousand_ms() {
        let mut lat = Latency::new();
        for ms in 1..=1000 {
            lat.record(Duration::from_millis(ms));
        }
        assert_eq!(lat.count(), 1000);
        // Sum 1..=1000 ms = 500 500 ms, exact.
        assert_eq!(lat.sum_ns(), 500_500_000_000);
        assert_eq!(lat.mean_ns(), 500_500_000.0);
        assert_eq!(lat.max_ns(), 1_000_000_000);
        // Rank ceil(q·1000) is the value q·1000 ms; 3 significant digits put it within 0.1%.
        for (q, ms) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = lat.quantile_ns(q) as f64;
            let want = ms * 1e6;
            assert!((got - want).abs() <= 1e-3 * want, "q {q}: {got} vs {want}");
        }
        assert!(lat.quantile_ns(0.0).abs_diff(1_000_000) <= 1_000);
    }

    #[test]
    fn latency_empty_and_zero() {
        let mut lat = Latency::default();
        assert_eq!((lat.count(), lat.mean_ns(), lat.quantile_ns(0.5), lat.max_ns()), (0, 0.0, 0, 0));
        lat.record(Duration::ZERO);
        lat.record(Duration::ZERO);
        lat.record(Duration(3));
        assert_eq!(lat.count(), 3);
        assert_eq!(lat.mean_ns(), 1.0);
        assert_eq!(lat.quantile_ns(0.5), 0);
        assert_eq!(lat.quantile_ns(1.0), 3);
        assert_eq!(lat.max_ns(), 3);
    }

    #[test]
    fn latency_huge_value_keeps_exact_max() {
        let mut lat = Latency::new();
        lat.record(Duration(u64::MAX));
        lat.record(Duration(1));
        assert_eq!(lat.max_ns(), u64::MAX);
        assert_eq!(lat.sum_ns(), u128::from(u64::MAX) + 1);
        // 2^64 / 2 = 2^63 exactly.
        assert_eq!(lat.mean_ns(), 9_223_372_036_854_775_808.0);
    }

    #[test]
    fn latency_merge_equals_recording_all() {
        let (mut odd, mut even, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for us in 1..=999u64 {
            let d = Duration::from_micros(us * 7);
            all.record(d);
            if us % 2 == 1 { odd.record(d) } else { even.record(d) }
        }
        odd.merge(&even);
        assert_eq!(odd.count(), 999);
        assert_eq!(odd.sum_ns(), all.sum_ns());
        assert_eq!(odd.max_ns(), 6_993_000);
        // Mean of 7·(1..=999) µs = 7·500 µs.
        assert_eq!(odd.mean_ns(), 3_500_000.0);
        for q in [0.0, 0.25, 0.5, 0.99, 1.0] {
            assert_eq!(odd.quantile_ns(q), all.quantile_ns(q), "q {q}");
        }
    }

    /// The exact nearest-rank quantile of sorted values.
    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let n = sorted.len() as u64;
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        sorted[rank as usize - 1]
    }

    fn assert_within_bound(lat: &Latency, sorted: &[u64]) {
        for q in [0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            let (got, want) = (lat.quantile_ns(q) as f64, exact_quantile(sorted, q) as f64);
            let err = (got - want).abs() / want.max(1.0);
            assert!(err <= COMPACT_RELATIVE_ERROR, "q {q}: {got} vs exact {want}: error {err}");
        }
    }

    #[test]
    fn compact_quantiles_within_bound_of_exact() {
        // An exponential-like spread over six decades (a xorshift stream, no rand needed).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut values = Vec::new();
        let mut lat = Latency::compact();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = (-(1.0 - u).ln() * 1e7) as u64 + (x % 50);
            values.push(v);
            lat.record(Duration(v));
        }
        values.sort_unstable();
        assert!(lat.is_compact());
        assert_within_bound(&lat, &values);
        assert_eq!(lat.count(), 200_000);
        assert_eq!(lat.sum_ns(), values.iter().map(|&v| u128::from(v)).sum::<u128>());
        assert_eq!(lat.max_ns(), *values.last().unwrap());
        assert_eq!(lat.quantile_ns(1.0), lat.max_ns());
        // A few KiB, not the full histogram's hundreds.
        assert!(lat.heap_bytes() < 8 * 1024, "{} bytes", lat.heap_bytes());
    }

    #[test]
    fn compact_small_values_exact_and_extremes() {
        let mut lat = Latency::compact();
        let values: Vec<u64> = (0..128).collect();
        for &v in &values {
            lat.record(Duration(v));
        }
        // Below 128 ns every value is its own bucket: exact.
        for q in [0.0, 0.5, 0.9, 1.0] {
            assert_eq!(lat.quantile_ns(q), exact_quantile(&values, q), "q {q}");
        }
        let mut huge = Latency::compact();
        huge.record(Duration(u64::MAX));
        huge.record(Duration(1));
        assert_eq!((huge.quantile_ns(0.0), huge.quantile_ns(1.0)), (1, u64::MAX));
        assert_eq!(huge.max_ns(), u64::MAX);
        // The highest bucket's bounds do not overflow.
        assert_eq!(Compact::range(Compact::bucket(u64::MAX)).1, u64::MAX);
    }

    #[test]
    fn compact_buckets_tile_the_values() {
        // Consecutive buckets are adjacent and each value falls in its own bucket's range.
        let mut prev_hi = None;
        for i in 0..Compact::bucket(u64::MAX) {
            let (lo, hi) = Compact::range(i);
            assert!(lo <= hi);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {i}");
            }
            assert_eq!((Compact::bucket(lo), Compact::bucket(hi)), (i, i));
            // 1/64 of an octave at most.
            assert!((hi - lo) as f64 <= lo as f64 / 64.0, "bucket {i}: [{lo}, {hi}]");
            prev_hi = Some(hi);
        }
    }

    #[test]
    fn compact_counts_widen_past_u32() {
        let mut c = Compact::default();
        c.record_n(1000, u64::from(u32::MAX));
        c.record_n(1000, 2);
        c.record_n(5, 1);
        assert_eq!(c.buckets().collect::<Vec<_>>(), vec![(5, 1), (Compact::bucket(1000), (1u64 << 32) + 1)]);
    }

    #[test]
    fn compact_merge_equals_recording_all() {
        let (mut odd, mut even, mut all) = (Latency::compact(), Latency::compact(), Latency::compact());
        for us in 1..=999u64 {
            let d = Duration::from_micros(us * 7);
            all.record(d);
            if us % 2 == 1 { odd.record(d) } else { even.record(d) }
        }
        odd.merge(&even);
        assert_eq!((odd.count(), odd.sum_ns(), odd.max_ns()), (all.count(), all.sum_ns(), all.max_ns()));
        for q in [0.0, 0.25, 0.5, 0.99, 1.0] {
            assert_eq!(odd.quantile_ns(q), all.quantile_ns(q), "q {q}");
        }
        // Across kinds: the values enter at the other's precision, still within the bound.
        let mut full = Latency::new();
        full.merge(&all);
        let mut compact = Latency::compact();
        let mut exact = Latency::new();
        for us in 1..=999u64 {
            exact.record(Duration::from_micros(us * 7));
        }
        compact.merge(&exact);
        let values: Vec<u64> = (1..=999u64).map(|us| us * 7000).collect();
        assert_within_bound(&compact, &values);
        for q in [0.1, 0.5, 0.9] {
            let (got, want) = (full.quantile_ns(q) as f64, exact_quantile(&values, q) as f64);
            assert!((got - want).abs() <= (COMPACT_RELATIVE_ERROR + 1e-3) * want, "q {q}");
        }
        assert_eq!(full.count(), 999);
    }

    #[test]
    fn log_histogram_buckets_by_hand() {
        // ln(R/1e-6)/ln 1.01 with ln 1.01 = 0.00995033:
        // 1e-3 s: 6.907755/0.00995033 = 694.2; 2e-3 s: 7.600902/.. = 763.9;
        // 1e-2 s: 9.210340/.. = 925.6; 1 s: 13.815511/.. = 1388.4; 1e3 s: 2082.7.
        for (r, b) in [(1e-3, 694), (2e-3, 763), (1e-2, 925), (1.0, 1388), (1e3, 2082)] {
            assert_eq!(LogHistogram::bucket(r), b, "R = {r}");
        }
        // Below 1 µs and 0 go to bucket 0; 1e5 s (bucket 2545) is clamped to the last.
        for r in [0.0, 5e-7, 1e-6] {
            assert_eq!(LogHistogram::bucket(r), 0, "R = {r}");
        }
        assert_eq!(LogHistogram::bucket(1e5), 2199);
        // 1.01^694.5 = e^(694.5·0.00995033) = e^6.910504 = 1002.753.
        assert!((LogHistogram::bucket_midpoint(694) - 1.002753e-3).abs() < 1e-9);
    }

    #[test]
    fn log_histogram_quantiles_by_hand() {
        let mut h = LogHistogram::new();
        assert_eq!(h.quantile(0.5), None);
        for r in [1e-3, 1e-3, 1e-3, 1e-2] {
            h.record(r);
        }
        assert_eq!((h.count(), h.bucket_count(694), h.bucket_count(925)), (4, 3, 1));
        let mid = LogHistogram::bucket_midpoint;
        // n = 4: q = 0.5 → rank 2, q = 0.75 → rank 3, both in bucket 694; q = 0.76 → rank 4.
        assert_eq!(h.quantile(0.0), Some(mid(694)));
        assert_eq!(h.quantile(0.5), Some(mid(694)));
        assert_eq!(h.quantile(0.75), Some(mid(694)));
        assert_eq!(h.quantile(0.76), Some(mid(925)));
        assert_eq!(h.quantile(1.0), Some(mid(925)));
        // The midpoint is within LVS-REF-1's 0.5% of the value recorded.
        let p100 = h.quantile(1.0).unwrap();
        assert!((p100 - 1e-2).abs() < 5e-3 * 1e-2, "{p100}");
        let mut other = LogHistogram::new();
        other.record(1.0);
        h.merge(&other);
        assert_eq!((h.count(), h.quantile(1.0)), (5, Some(mid(1388))));
    }

    #[test]
    fn batch_means_by_hand() {
        // [1 s, 9 s) in 4 batches of 2 s: batch means 1, 2, 3, 4.
        let s = |ns: u64| at_ns(ns);
        let mut bm = BatchMeans::new(s(1_000_000_000), s(9_000_000_000), 4);
        assert_eq!(bm.half_width_95(), None);
        for (t, v) in [
            (1_000_000_000, 0.5),
            (2_999_999_999, 1.5),
            (3_000_000_000, 2.0), // the boundary opens batch 1
            (5_000_000_000, 3.0),
            (6_000_000_000, 3.0),
            (8_999_999_999, 4.0),
            (9_000_000_000, 100.0), // at end: ignored
            (999_999_999, 100.0),   // before start: ignored
        ] {
            bm.record(s(t), v);
        }
        assert_eq!(bm.count(), 6);
        assert_eq!(bm.batch_means(), Some(vec![1.0, 2.0, 3.0, 4.0]));
        // Mean of the six values: 14 / 6.
        assert!((bm.mean() - 14.0 / 6.0).abs() < 1e-15);
        // sd² = (1.5² + 0.5² + 0.5² + 1.5²)/3 = 5/3; t_3 = 3.182446; 3.182446·1.290994/2.
        let hw = bm.half_width_95().unwrap();
        assert!((hw - 2.054_260_26).abs() < 1e-8, "{hw}");
    }

    #[test]
    fn batch_means_integer_floor() {
        // [0, 10 ns) in 3 batches: floor(t·3/10) puts 3 ns in batch 0 (0.9), 4 and 6 ns in
        // batch 1 (1.2, 1.8) and 7 ns in batch 2 (2.1); equal-width f64 edges would be 3.33..
        let mut bm = BatchMeans::new(Time::ZERO, at_ns(10), 3);
        for (t, v) in [(3, 1.0), (4, 10.0), (6, 20.0), (7, 100.0)] {
            bm.record(at_ns(t), v);
        }
        assert_eq!(bm.batch_means(), Some(vec![1.0, 15.0, 100.0]));
        assert_eq!(bm.batches(), 3);
    }

    #[test]
    fn t_975_table_points() {
        // Standard table values (3 decimals).
        for (df, t) in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (19, 2.093), (30, 2.042)] {
            assert!((t_975(df) - t).abs() < 5e-4, "df {df}: {}", t_975(df));
        }
        for (df, t) in [(40, 2.021), (60, 2.000), (120, 1.980)] {
            assert!((t_975(df) - t).abs() < 5e-4, "df {df}: {}", t_975(df));
        }
    }

    #[test]
    fn t_975_expansion_beyond_table() {
        // The expansion agrees with the table's exact rows, so switching to it adds no step.
        for (df, t) in T_975_LARGE {
            assert!((t_975_expansion(df as f64) - t).abs() < 1e-7, "df {df}");
        }
        assert!((t_975_expansion(30.0) - t_975(30)).abs() < 1e-7);
        // Exact quantiles (incomplete beta): 35 → 2.030108, 50 → 2.008559, 100 → 1.983972,
        // 1000 → 1.962339; and the normal limit.
        for (df, t) in [(31, 2.039513), (35, 2.030108), (50, 2.008559), (100, 1.983972), (1000, 1.962339)] {
            assert!((t_975(df) - t).abs() < 1e-6, "df {df}: {}", t_975(df));
        }
        assert!((t_975(1_000_000_000) - 1.959964).abs() < 1e-6);
        // Monotone decreasing in df.
        assert!((1..300).all(|df| t_975(df + 1) < t_975(df)));
    }

    #[test]
    fn time_integral_by_hand() {
        let mut ti = TimeIntegral::default();
        assert_eq!(ti.integral(at_ns(100)), 0);
        ti.set(at_ns(10), 2);
        ti.set(at_ns(20), 5);
        ti.set(at_ns(20), 3); // a second change at the same instant adds nothing
        assert_eq!(ti.value(), 3);
        assert_eq!(ti.last_change(), at_ns(20));
        // 0·10 + 2·10 + 3·15 = 65.
        assert_eq!(ti.integral(at_ns(35)), 65);
        ti.set(at_ns(40), 0);
        assert_eq!(ti.integral(at_ns(1000)), 20 + 3 * 20);
    }

    #[test]
    #[should_panic(expected = "before its last change")]
    fn time_integral_rejects_the_past() {
        let mut ti = TimeIntegral::default();
        ti.set(at_ns(10), 1);
        ti.integral(at_ns(5));
    }
}
