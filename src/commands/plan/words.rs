//! The plan in words: the SLO, the load, the search, and why the answer is the answer
//! (its interval, the cheaper configurations that fail, and how it was picked among
//! those of the same cost). Pure functions of the trials, tested without simulating.

use reports::{Estimate, PlanGroup, PlanTrial, Verdict, cost_text, count_text, sizes_text};
use scenarios::format::Expect;

use super::choose::{Choice, Why, value};

/// What every sentence needs to know about the plan.
pub struct Context<'a> {
    /// What is sized.
    pub groups: &'a [PlanGroup],
    /// The SLO in words (`latency_ms.p99 <= 100 and loss <= 0.001`).
    pub slo: &'a str,
    /// The load in words.
    pub load: &'a str,
    /// The first SLO check's metric.
    pub metric: &'a str,
}

/// `97.12 ± 3.05` (just the value with one run), with decimals for the magnitude:
/// `0.00120 ± 0.00050` for a loss fraction, `19706.5 ± 1052.3` for a saturated p99.
pub fn pm(e: &Estimate) -> String {
    let scale = e.mean.abs().max(e.ci95);
    let d = match scale {
        s if s >= 100.0 => 1,
        s if s >= 1.0 || s == 0.0 || !s.is_finite() => 2,
        s => (-s.log10()).ceil() as usize + 2,
    };
    if e.n > 1 { format!("{:.d$} ± {:.d$}", e.mean, e.ci95) } else { format!("{:.d$}", e.mean) }
}

/// The SLO checks and the loss bound, joined with "and".
pub fn slo_text(slo: &[Expect], max_loss: f64) -> String {
    let mut parts: Vec<String> = slo.iter().map(check_text).collect();
    parts.push(format!("loss <= {max_loss}"));
    parts.join(" and ")
}

/// One check as written: `latency_ms.p99 <= 100`.
pub fn check_text(e: &Expect) -> String {
    match (e.at_most, e.at_least, e.approx) {
        (Some(m), _, _) => format!("{} <= {m}", e.metric),
        (_, Some(m), _) => format!("{} >= {m}", e.metric),
        (_, _, Some(x)) => format!("{} ≈ {x}", e.metric),
        _ => e.metric.clone(),
    }
}

/// How much was searched: `14 trials of a 96-point grid (...), 5 runs each (70 simulations)`.
pub fn search_text(trials: usize, grid_points: u64, method: &str, replications: u32) -> String {
    format!(
        "{trials} trials of a {grid_points}-point grid ({method}), {replications} run{} each ({} simulations)",
        if replications == 1 { "" } else { "s" },
        trials as u64 * u64::from(replications)
    )
}

/// The first check a trial does not meet, in words: `latency_ms.p99 <= 100: 131.20 ± 4.00, not met`.
fn failure(t: &PlanTrial) -> String {
    t.checks.iter().find(|c| c.verdict != Verdict::Meets).map_or_else(String::new, |c| {
        let how = if c.verdict == Verdict::Unclear { "not clearly met" } else { "not met" };
        format!("{}: {}, {how}", c.check, pm(&c.estimate))
    })
}

/// Why one fewer of each group will not do: the failing trial of the same scheduler with
/// one fewer of that group and at least as many of the others.
fn fewer(cx: &Context<'_>, trials: &[PlanTrial], a: &PlanTrial) -> Vec<String> {
    let mut out = Vec::new();
    for (i, g) in cx.groups.iter().enumerate() {
        let n = a.sizes[i];
        if n == g.min {
            out.push(format!("{} is the fewest tried.", count_text(n, &g.label)));
            continue;
        }
        let below = trials.iter().filter(|t| {
            t.scheduler == a.scheduler
                && !t.meets
                && t.sizes[i] == n - 1
                && t.sizes.iter().zip(&a.sizes).enumerate().all(|(j, (x, y))| j == i || x >= y)
        });
        if let Some(t) = below.min_by_key(|t| t.sizes.iter().sum::<u32>()) {
            let more: Vec<String> = (0..cx.groups.len())
                .filter(|&j| t.sizes[j] > a.sizes[j])
                .map(|j| count_text(t.sizes[j], &cx.groups[j].label))
                .collect();
            let even =
                if more.is_empty() { String::new() } else { format!(" even with {}", more.join(" + ")) };
            out.push(format!("With {} it fails{even} ({}).", count_text(n - 1, &g.label), failure(t)));
        }
    }
    out
}

/// How the answer was picked among configurations of its cost.
fn picked(cx: &Context<'_>, trials: &[PlanTrial], c: &Choice) -> String {
    let a = &trials[c.chosen];
    let list = |sig: bool| -> Vec<String> {
        c.rivals
            .iter()
            .filter(|(_, d)| d.significant == sig)
            .map(|(i, d)| {
                let t = &trials[*i];
                let at = if t.sizes == a.sizes {
                    String::new()
                } else {
                    format!(" with {}", sizes_text(cx.groups, &t.sizes))
                };
                format!("{}{at} ({:+.2} ± {:.2})", t.scheduler, d.diff, d.ci95)
            })
            .collect()
    };
    match c.why {
        Why::Only => "No other scheduler or size mix meets it at this cost.".to_owned(),
        Why::Better => format!(
            "At the same cost {} is significantly better on {} than {} (their difference from {}, 95% \
             interval).",
            a.scheduler,
            cx.metric,
            list(true).join(", "),
            a.scheduler
        ),
        Why::Indistinguishable => {
            let untestable = c.rivals.iter().any(|(_, d)| !d.testable);
            let mut s = format!(
                "At the same cost {} is statistically indistinguishable from {} on {} (their difference \
                 from {}, 95% interval), so the simpler choice is made: {}.",
                a.scheduler,
                list(false).join(", "),
                cx.metric,
                a.scheduler,
                a.scheduler
            );
            if untestable {
                s.push_str(" With one run each nothing can be told apart: use replications.");
            }
            let worse = list(true);
            if !worse.is_empty() {
                s.push_str(&format!(" Significantly worse: {}.", worse.join(", ")));
            }
            s
        }
    }
}

/// Each other scheduler's cheapest meeting configuration, when it costs more.
fn dearer(cx: &Context<'_>, trials: &[PlanTrial], a: &PlanTrial, schedulers: &[String]) -> String {
    let mut parts = Vec::new();
    for s in schedulers.iter().filter(|s| **s != a.scheduler) {
        let best =
            trials.iter().filter(|t| &t.scheduler == s && t.meets).min_by(|x, y| x.cost.total_cmp(&y.cost));
        match best {
            Some(t) if t.cost > a.cost => parts.push(format!(
                "{s} needs {} (cost {})",
                sizes_text(cx.groups, &t.sizes),
                cost_text(t.cost)
            )),
            Some(_) => {}
            None => parts.push(format!("{s} meets it nowhere in the ranges")),
        }
    }
    if parts.is_empty() { String::new() } else { format!(" Costlier: {}.", parts.join("; ")) }
}

/// The answer's reasoning, in a few sentences.
pub fn why(cx: &Context<'_>, trials: &[PlanTrial], c: &Choice, schedulers: &[String]) -> String {
    let a = &trials[c.chosen];
    let v = value(a);
    let mut s = format!(
        "{} with {} (cost {}) is the cheapest configuration shown to meet {} at {}: {} = {} ({}).",
        sizes_text(cx.groups, &a.sizes),
        a.scheduler,
        cost_text(a.cost),
        cx.slo,
        cx.load,
        cx.metric,
        pm(&v),
        if v.n > 1 { format!("95% interval over {} runs", v.n) } else { "one run".to_owned() },
    );
    for f in fewer(cx, trials, a) {
        s.push(' ');
        s.push_str(&f);
    }
    s.push(' ');
    s.push_str(&picked(cx, trials, c));
    s.push_str(&dearer(cx, trials, a, schedulers));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::plan::choose::choose;

    /// A trial at `sizes` (app servers at 1, db cores at 0.5) whose p99 is `mean` ± 2.
    fn trial(s: &str, sizes: &[u32], mean: f64, meets: bool) -> PlanTrial {
        let cost = f64::from(sizes[0]) + 0.5 * f64::from(sizes[1]);
        crate::commands::plan::choose::tests::trial(s, sizes, cost, Estimate { mean, ci95: 2.0, n: 5 }, meets)
    }

    fn groups() -> Vec<PlanGroup> {
        let g = |label: &str, min, cost| PlanGroup {
            label: label.into(),
            path: String::new(),
            min,
            max: 8,
            cost,
        };
        vec![g("app servers", 1, 1.0), g("db cores", 2, 0.5)]
    }

    #[test]
    fn the_answer_gives_its_interval_the_failing_neighbours_and_the_choice() {
        let trials = vec![
            trial("rr", &[2, 8], 150.0, false),
            trial("rr", &[3, 8], 60.0, true),
            trial("rr", &[3, 4], 90.0, true),
            trial("rr", &[3, 3], 130.0, false),
            trial("wlc", &[3, 4], 89.0, true),
            trial("sed", &[4, 4], 70.0, true),
        ];
        let groups = groups();
        let cx = Context {
            groups: &groups,
            slo: "latency_ms.p99 <= 100",
            load: "Poisson 10 conn/s",
            metric: "latency_ms.p99",
        };
        let c = choose(&trials, true).unwrap();
        let scheds = ["rr", "wlc", "sed"].map(String::from);
        let w = why(&cx, &trials, &c, &scheds);
        assert!(w.starts_with("3 app servers + 4 db cores with rr (cost 5) is the cheapest"), "{w}");
        assert!(w.contains("latency_ms.p99 = 90.00 ± 2.00 (95% interval over 5 runs)"), "{w}");
        assert!(w.contains("With 2 app servers it fails even with 8 db cores"), "{w}");
        assert!(w.contains("latency_ms.p99 <= 100: 150.0 ± 2.0, not met"), "{w}");
        assert!(w.contains("With 3 db cores it fails"), "{w}");
        assert!(w.contains("indistinguishable from wlc (-1.00 ± "), "{w}");
        assert!(w.contains("the simpler choice is made: rr"), "{w}");
        assert!(w.contains("Costlier: sed needs 4 app servers + 4 db cores (cost 6)"), "{w}");
    }

    #[test]
    fn intervals_have_decimals_for_their_magnitude() {
        let e = |mean, ci95| Estimate { mean, ci95, n: 5 };
        assert_eq!(pm(&e(97.123, 3.05)), "97.12 ± 3.05");
        assert_eq!(pm(&e(19706.52, 1052.3)), "19706.5 ± 1052.3");
        assert_eq!(pm(&e(0.0012, 0.0005)), "0.00120 ± 0.00050");
        assert_eq!(pm(&e(0.0, 0.0)), "0.00 ± 0.00");
        assert_eq!(pm(&Estimate { mean: 4.0, ci95: 0.0, n: 1 }), "4.00");
    }

    #[test]
    fn sizes_at_the_minimum_and_the_search_are_said() {
        let trials = vec![trial("rr", &[1, 2], 50.0, true)];
        let groups = groups();
        let cx = Context { groups: &groups, slo: "s", load: "l", metric: "m" };
        let c = choose(&trials, true).unwrap();
        let w = why(&cx, &trials, &c, &["rr".to_owned(), "lc".to_owned()]);
        assert!(w.contains("1 app server is the fewest tried. 2 db cores is the fewest tried."), "{w}");
        assert!(w.contains("No other scheduler or size mix meets it at this cost."), "{w}");
        assert!(w.contains("lc meets it nowhere in the ranges"), "{w}");
        assert_eq!(
            search_text(14, 96, "a staircase", 5),
            "14 trials of a 96-point grid (a staircase), 5 runs each (70 simulations)"
        );
    }
}
