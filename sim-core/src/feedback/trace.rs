//! A real server's weight over time, and what the reports say of it.

use lvs_sched::Time;

/// Weight statistics over a window `[from, to]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightStats {
    /// Time-average.
    pub mean: f64,
    /// Lowest.
    pub min: u32,
    /// Highest.
    pub max: u32,
    /// Sum of |change| inside the window per minute of window.
    pub travel_per_min: f64,
    /// Seconds from `step_at` until the weight first went half way from its value just
    /// before `step_at` to where it settled (the time-average of the window's last
    /// quarter): the step response's delay time, which noise of a few weight units does
    /// not move as it moves a narrow band's first entry.
    pub reaction_s: Option<f64>,
}

/// The weight at `t` of a trace of `(time, weight)` changes in time order (the first at
/// or before every time asked about).
fn weight_at(trace: &[(Time, u32)], t: Time) -> u32 {
    let i = trace.partition_point(|&(ct, _)| ct <= t);
    if i == 0 { trace.first().map_or(0, |c| c.1) } else { trace[i - 1].1 }
}

/// Time-average of the trace over `[from, to]` (`to > from`).
fn average(trace: &[(Time, u32)], from: Time, to: Time) -> f64 {
    let mut sum = 0u128;
    let mut t = from;
    let mut w = weight_at(trace, from);
    for &(ct, cw) in trace.iter().filter(|&&(ct, _)| ct > from && ct < to) {
        sum += u128::from((ct - t).0) * u128::from(w);
        t = ct;
        w = cw;
    }
    sum += u128::from((to - t).0) * u128::from(w);
    sum as f64 / (to - from).0 as f64
}

/// Statistics of `trace` over `[from, to]`; `step_at`: a disturbance (a change of the
/// server's background work) inside the window whose reaction time is measured.
pub fn weight_stats(trace: &[(Time, u32)], from: Time, to: Time, step_at: Option<Time>) -> WeightStats {
    assert!(to > from, "an empty window");
    let inside = || trace.iter().filter(|&&(ct, _)| ct > from && ct <= to);
    let start = weight_at(trace, from);
    let (mut min, mut max, mut travel, mut prev) = (start, start, 0u64, start);
    for &(_, w) in inside() {
        min = min.min(w);
        max = max.max(w);
        travel += u64::from(w.abs_diff(prev));
        prev = w;
    }
    let minutes = (to - from).as_secs_f64() / 60.0;
    let last_quarter = Time(to.0 - (to - from).0 / 4);
    let reaction_s = step_at.filter(|&s| s >= from && s < last_quarter).and_then(|s| {
        let before = if s.0 == 0 { weight_at(trace, s) } else { weight_at(trace, Time(s.0 - 1)) };
        let settled = average(trace, last_quarter, to);
        let step = (settled - f64::from(before)).abs();
        if step < 1.0 {
            return None;
        }
        let half = (f64::from(before) + settled) / 2.0;
        let close = |w: u32| {
            if settled < f64::from(before) { f64::from(w) <= half } else { f64::from(w) >= half }
        };
        if close(weight_at(trace, s)) {
            return Some(0.0);
        }
        trace.iter().find(|&&(ct, w)| ct > s && ct <= to && close(w)).map(|&(ct, _)| (ct - s).as_secs_f64())
    });
    WeightStats {
        mean: average(trace, from, to),
        min,
        max,
        travel_per_min: travel as f64 / minutes,
        reaction_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn hand_computed_statistics() {
        // 50 until 10 s, then a step down to 20 in three moves, settling at 20.
        let trace = [(Time(0), 50), (Time(12 * S), 40), (Time(14 * S), 25), (Time(16 * S), 20)];
        let st = weight_stats(&trace, Time(0), Time(60 * S), Some(Time(10 * S)));
        // (12·50 + 2·40 + 2·25 + 44·20) / 60
        assert!((st.mean - 1610.0 / 60.0).abs() < 1e-9, "{st:?}");
        assert_eq!((st.min, st.max), (20, 50));
        assert!((st.travel_per_min - 30.0).abs() < 1e-9);
        // Settled at 20, a step of 30: half way (35) first at 14 s.
        assert_eq!(st.reaction_s, Some(4.0));
        // No disturbance, or one in the last quarter: no reaction time.
        assert_eq!(weight_stats(&trace, Time(0), Time(60 * S), None).reaction_s, None);
        assert_eq!(weight_stats(&trace, Time(0), Time(60 * S), Some(Time(50 * S))).reaction_s, None);
    }

    #[test]
    fn oscillation_is_travel() {
        let trace: Vec<(Time, u32)> =
            (0..60).map(|i| (Time(i * S), if i % 2 == 0 { 40 } else { 60 })).collect();
        let st = weight_stats(&trace, Time(0), Time(60 * S), Some(Time(5 * S)));
        // 59 moves of 20 in one minute; the average is 50 either side of the disturbance.
        assert!((st.travel_per_min - 59.0 * 20.0).abs() < 1e-9);
        assert!((st.mean - 50.0).abs() < 1e-9);
        // Before: 40 (from 4 s); settled: 50; at 5 s it is 60, past half way (45) at once.
        assert_eq!(st.reaction_s, Some(0.0));
    }
}
