//! The plan on the terminal: the trials' table (sorted), the answer with its interval and
//! reasons, the search's size and where the report is. Built as a String, so that the
//! same text is printed and saved as the report's `summary.txt`.

use std::path::Path;

use reports::{PlanReport, Verdict};

use super::words::pm;

/// The terminal text of a plan.
pub fn text(p: &PlanReport, dir: &Path) -> String {
    let mut out = format!("capacity plan for {}: {} at {}\n", p.scenario, p.slo, p.load);
    let mut header = p.lead_header();
    header.extend(p.trials.first().into_iter().flat_map(|t| t.checks.iter().map(|c| c.metric.clone())));
    header.push("meets".into());
    let rows: Vec<Vec<String>> = p
        .trials
        .iter()
        .map(|t| {
            let mut row = t.lead_cells();
            for c in &t.checks {
                let mark = match c.verdict {
                    Verdict::Meets => "",
                    Verdict::Fails => " ✗",
                    Verdict::Unclear => " ?",
                };
                row.push(format!("{}{mark}", pm(&c.estimate)));
            }
            row.push(if t.meets { "yes" } else { "no" }.into());
            row
        })
        .collect();
    out.push_str(&crate::commands::table::table(&header, &rows));
    out.push_str("(± is the 95% interval; ✗ not met, ? not clearly met: counted as not met)\n");
    match &p.answer {
        Some(a) => out.push_str(&format!("\nanswer: {}\n", a.why)),
        None => out.push_str(&format!("\nanswer: none: no scheduler meets {} within the ranges\n", p.slo)),
    }
    out.push_str(&format!(
        "searched: {}\n",
        super::words::search_text(p.trials.len(), p.grid_points, &p.search, p.replications)
    ));
    out.push_str(&format!("report: {}\n", dir.join("report.html").display()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reports::{Estimate, PlanAnswer, PlanCheck, PlanGroup, PlanTrial};

    #[test]
    fn the_text_has_a_row_per_trial_and_the_answer_with_its_interval() {
        let check = |mean, verdict| PlanCheck {
            check: "latency_ms.p99 <= 100".into(),
            metric: "latency_ms.p99".into(),
            estimate: Estimate { mean, ci95: 1.25, n: 5 },
            verdict,
        };
        let trial = |s: &str, n, mean, v| PlanTrial {
            scheduler: s.into(),
            sizes: vec![n],
            cost: f64::from(n),
            checks: vec![check(mean, v)],
            meets: v == Verdict::Meets,
            ..PlanTrial::default()
        };
        let p = PlanReport {
            scenario: "farm".into(),
            slo: "latency_ms.p99 <= 100 and loss <= 0.001".into(),
            load: "Poisson 500 conn/s".into(),
            groups: vec![PlanGroup {
                label: "web servers".into(),
                min: 1,
                max: 8,
                cost: 1.0,
                path: String::new(),
            }],
            replications: 5,
            search: "bisection".into(),
            grid_points: 8,
            trials: vec![trial("rr", 3, 99.0, Verdict::Unclear), trial("rr", 4, 60.0, Verdict::Meets)],
            answer: Some(PlanAnswer {
                scheduler: "rr".into(),
                sizes: vec![4],
                cost: 4.0,
                value: Estimate { mean: 60.0, ci95: 1.25, n: 5 },
                why: "because".into(),
                ..PlanAnswer::default()
            }),
        };
        let t = text(&p, Path::new("out"));
        assert!(t.contains("99.00 ± 1.25 ?"), "{t}");
        assert!(t.contains("\nanswer: because\n"), "{t}");
        assert!(
            t.contains("searched: 2 trials of a 8-point grid (bisection), 5 runs each (10 simulations)"),
            "{t}"
        );
        assert!(t.lines().position(|l| l.contains(" 3 ")) < t.lines().position(|l| l.contains(" 4 ")), "{t}");
    }
}
