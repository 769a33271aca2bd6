//! The choice: whether a trial meets the SLO, and which meeting configuration to use.
//!
//! Both decisions use one definition of "a difference is real",
//! [`reports::significance::welch`] (Welch's t test at 95%):
//!
//! - **A check holds** when the trial's 95% interval lies on the right side of its bound
//!   (Welch's test of the estimate against the bound taken as exact). An interval that
//!   straddles the bound is *unclear* and counts as failing: a size is chosen over a
//!   cheaper one only when the cheaper one is not shown to meet the SLO. With one run the
//!   value itself decides (nothing can be tested).
//! - **Among the meeting configurations of least cost** (several schedulers, or several
//!   size mixes of equal cost), the answer is the simplest one that no other beats
//!   significantly on the first SLO metric: if the best by that metric is significantly
//!   better than the rest, it is chosen on the evidence; if not, they are
//!   *indistinguishable* and the simpler scheduler is chosen (then the smaller sizes).
//!
//! Schedulers from simpler to more elaborate, in [`SchedulerKind::ALL`]'s order: rr < wrr
//! < lc < wlc < sed < nq < dh < sh < lblc < lblcr < mh < fo < ovf < twos (round robin
//! needs no state, weights come next, then connection counts, then expected delays;
//! hashing and locality schedulers answer other questions).

use lvs_ipvs::SchedulerKind;
use reports::significance::{Difference, welch};
use reports::{Estimate, PlanTrial, Verdict};

/// A scheduler's rank from simplest (0); unknown names last.
pub fn simplicity(scheduler: &str) -> usize {
    scheduler
        .parse::<SchedulerKind>()
        .ok()
        .and_then(|k| SchedulerKind::ALL.iter().position(|&x| x == k))
        .unwrap_or(usize::MAX)
}

/// Whether `estimate` keeps the bound: `at_most` (an upper bound) or at least.
pub fn judge(estimate: &Estimate, bound: f64, at_most: bool) -> Verdict {
    let holds = if at_most { estimate.mean <= bound } else { estimate.mean >= bound };
    // The bound as an exact estimate with as many "runs": Welch reduces to a one-sample t.
    let exact = Estimate { mean: bound, ci95: 0.0, n: estimate.n };
    let d = welch(&exact, estimate);
    // Zero spread on both sides: the values are exact, equality holds.
    let shown = !d.testable || d.significant || d.ci95 == 0.0;
    match (holds, shown) {
        (true, true) => Verdict::Meets,
        (false, true) => Verdict::Fails,
        (_, false) => Verdict::Unclear,
    }
}

/// How the answer was picked among the cheapest meeting configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It is the only one.
    Only,
    /// Its first SLO metric is significantly better than every other's.
    Better,
    /// Some are not significantly different from it; it is the simplest of those.
    Indistinguishable,
}

impl Why {
    /// As plan.json says it.
    pub fn word(self) -> &'static str {
        match self {
            Why::Only => "only",
            Why::Better => "significantly better",
            Why::Indistinguishable => "indistinguishable",
        }
    }
}

/// The answer: a trial (an index into the trials), how it was picked, and the other
/// configurations of the same cost, each with its difference from the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The answer's index.
    pub chosen: usize,
    /// How it was picked.
    pub why: Why,
    /// The other meeting configurations of its cost: index, and its value minus the answer's.
    pub rivals: Vec<(usize, Difference)>,
}

/// The first SLO check's estimate (what configurations are compared on).
pub fn value(t: &PlanTrial) -> Estimate {
    t.checks.first().map(|c| c.estimate).unwrap_or_default()
}

/// Whether `a` is significantly better than `b` on the first metric.
fn beats(a: &PlanTrial, b: &PlanTrial, lower_is_better: bool) -> bool {
    let d = welch(&value(b), &value(a)); // a − b
    d.significant && ((d.diff < 0.0) == lower_is_better)
}

/// Picks the answer among `trials` (None if none meets). `lower_is_better` is the sense of
/// the first SLO check (`at_most`: lower is better).
pub fn choose(trials: &[PlanTrial], lower_is_better: bool) -> Option<Choice> {
    let least = trials.iter().filter(|t| t.meets).map(|t| t.cost).min_by(f64::total_cmp)?;
    let mut same: Vec<usize> =
        (0..trials.len()).filter(|&i| trials[i].meets && trials[i].cost == least).collect();
    same.sort_by(|&a, &b| {
        let key = |i: usize| (simplicity(&trials[i].scheduler), trials[i].sizes.clone());
        key(a).cmp(&key(b))
    });
    // The simplest that no other beats; the best by the metric always qualifies.
    let chosen = *same
        .iter()
        .find(|&&c| !same.iter().any(|&o| o != c && beats(&trials[o], &trials[c], lower_is_better)))?;
    let rivals: Vec<(usize, Difference)> = same
        .iter()
        .filter(|&&o| o != chosen)
        .map(|&o| (o, welch(&value(&trials[chosen]), &value(&trials[o]))))
        .collect();
    let why = if rivals.is_empty() {
        Why::Only
    } else if same.iter().all(|&o| o == chosen || beats(&trials[chosen], &trials[o], lower_is_better)) {
        Why::Better
    } else {
        Why::Indistinguishable
    };
    Some(Choice { chosen, why, rivals })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use reports::PlanCheck;

    fn est(mean: f64, ci95: f64) -> Estimate {
        Estimate { mean, ci95, n: 5 }
    }

    /// A trial of one `latency_ms.p99 <= 100` check (the plan tests' fixture).
    pub(crate) fn trial(s: &str, sizes: &[u32], cost: f64, e: Estimate, meets: bool) -> PlanTrial {
        let verdict = if meets { Verdict::Meets } else { Verdict::Fails };
        let check = PlanCheck {
            check: "latency_ms.p99 <= 100".into(),
            metric: "latency_ms.p99".into(),
            estimate: e,
            verdict,
        };
        PlanTrial {
            scheduler: s.into(),
            sizes: sizes.to_vec(),
            cost,
            checks: vec![check],
            meets,
            ..PlanTrial::default()
        }
    }

    #[test]
    fn schedulers_rank_from_the_simplest() {
        let order = ["rr", "wrr", "lc", "wlc", "sed", "nq", "mh"];
        assert!(order.windows(2).all(|w| simplicity(w[0]) < simplicity(w[1])), "{order:?}");
        assert_eq!(simplicity("nonsense"), usize::MAX);
    }

    #[test]
    fn a_check_holds_only_when_its_interval_is_within_the_bound() {
        assert_eq!(judge(&est(90.0, 5.0), 100.0, true), Verdict::Meets);
        assert_eq!(judge(&est(97.0, 5.0), 100.0, true), Verdict::Unclear);
        assert_eq!(judge(&est(103.0, 5.0), 100.0, true), Verdict::Unclear);
        assert_eq!(judge(&est(110.0, 5.0), 100.0, true), Verdict::Fails);
        // A lower bound (throughput).
        assert_eq!(judge(&est(950.0, 10.0), 900.0, false), Verdict::Meets);
        assert_eq!(judge(&est(895.0, 10.0), 900.0, false), Verdict::Unclear);
        // Exact values (no loss in any run): equality holds.
        assert_eq!(judge(&est(0.0, 0.0), 0.0, true), Verdict::Meets);
        assert_eq!(judge(&est(0.0, 0.0), 0.001, true), Verdict::Meets);
        // One run: the value decides.
        let one = Estimate { mean: 99.0, ci95: 0.0, n: 1 };
        assert_eq!(judge(&one, 100.0, true), Verdict::Meets);
        assert_eq!(judge(&Estimate { mean: 101.0, ..one }, 100.0, true), Verdict::Fails);
    }

    #[test]
    fn indistinguishable_schedulers_give_the_simpler_one() {
        // sed is lower, but not significantly: rr (simpler) is chosen, listed second.
        let trials = vec![
            trial("sed", &[4], 4.0, est(95.35, 3.0), true),
            trial("rr", &[4], 4.0, est(97.12, 3.0), true),
            trial("wlc", &[4], 4.0, est(97.26, 3.0), true),
        ];
        let c = choose(&trials, true).unwrap();
        assert_eq!(trials[c.chosen].scheduler, "rr");
        assert_eq!(c.why, Why::Indistinguishable);
        assert_eq!(c.rivals.len(), 2);
        assert!(c.rivals.iter().all(|(_, d)| !d.significant));
    }

    #[test]
    fn a_significantly_better_scheduler_is_chosen_on_the_evidence() {
        let trials = vec![
            trial("rr", &[4], 4.0, est(150.0, 3.0), true),
            trial("sed", &[4], 4.0, est(80.0, 3.0), true),
        ];
        let c = choose(&trials, true).unwrap();
        assert_eq!((trials[c.chosen].scheduler.as_str(), c.why), ("sed", Why::Better));
        // Higher is better for an at_least objective: rr wins then.
        let c = choose(&trials, false).unwrap();
        assert_eq!(trials[c.chosen].scheduler, "rr");
    }

    #[test]
    fn the_cheapest_meeting_configuration_wins_whatever_its_metric() {
        let trials = vec![
            trial("rr", &[3, 8], 5.0, est(99.0, 0.5), true),
            trial("rr", &[4, 2], 4.5, est(60.0, 0.5), false),
            trial("sed", &[4, 4], 5.0, est(40.0, 0.5), true),
            trial("sed", &[3, 6], 4.5, est(98.0, 0.5), true),
        ];
        let c = choose(&trials, true).unwrap();
        assert_eq!((trials[c.chosen].scheduler.as_str(), c.why), ("sed", Why::Only));
        assert!(c.rivals.is_empty());
        assert_eq!(choose(&trials[1..2], true), None, "nothing meets");
    }

    #[test]
    fn with_one_run_each_nothing_is_significant_and_the_simplest_is_chosen() {
        let one = |m| Estimate { mean: m, ci95: 0.0, n: 1 };
        let trials = vec![trial("nq", &[2], 2.0, one(10.0), true), trial("wrr", &[2], 2.0, one(50.0), true)];
        let c = choose(&trials, true).unwrap();
        assert_eq!((trials[c.chosen].scheduler.as_str(), c.why), ("wrr", Why::Indistinguishable));
        assert!(!c.rivals[0].1.testable);
    }
}
