//! Numbers as the reports give them: nanoseconds to milliseconds and seconds, quantiles
//! capped at the exact maximum, non-finite values kept out of JSON, a histogram's
//! response-time statistics. Below every other
//! module of the crate (it imports none of them).

use sim_core::stats::Latency;

use crate::LatencyMs;

/// Nanoseconds to milliseconds.
pub(crate) fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Nanoseconds to seconds.
pub(crate) fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// JSON has no NaN or infinity (serde_json writes `null`, which a reader of a number
/// key does not expect): a non-finite value is reported as 0.
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The q-quantile [ms], at most the exact maximum: hdrhistogram reports a bucket's
/// highest equivalent value, which can exceed the largest value recorded by 0.1%.
pub(crate) fn quantile_ms(l: &Latency, q: f64) -> f64 {
    ns_to_ms(l.quantile_ns(q).min(l.max_ns()))
}

/// A value that may be missing: kept only when it is a finite number.
pub(crate) fn finite_opt(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Highest minus lowest; 0 with fewer than two values.
pub(crate) fn spread(xs: impl Iterator<Item = f64>) -> f64 {
    let (lo, hi) = xs
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo < hi { hi - lo } else { 0.0 }
}

/// Response-time statistics [ms] of a histogram; `mean_ci95` is the caller's (0 where
/// there is none: a group's results, a backend's).
pub(crate) fn latency_ms(l: &Latency, mean_ci95: f64) -> LatencyMs {
    let q = |q: f64| quantile_ms(l, q);
    LatencyMs {
        mean: finite(l.mean_ns() / 1e6),
        mean_ci95: finite(mean_ci95),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: ns_to_ms(l.max_ns()),
    }
}
