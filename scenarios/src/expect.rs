//! Checks on a run's results: `expect` entries and a plan's SLO, evaluated against the
//! run's `summary.json` value.

use serde_json::Value;

use crate::doc::{Step, parse_path};
use crate::format::Expect;

/// A check's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The metric path.
    pub metric: String,
    /// Its value in the results.
    pub value: f64,
    /// Whether the check held.
    pub ok: bool,
    /// The check in words: `latency_ms.mean = 49.58, expected 50 ± 5% (M/M/1-PS)`.
    pub text: String,
}

/// Whether the check is well formed (a path, at least one condition, sane tolerances).
pub fn validate(e: &Expect) -> Result<(), String> {
    parse_path(&e.metric)?;
    if e.approx.is_none() && e.at_most.is_none() && e.at_least.is_none() {
        return Err(format!("the check on {} needs `approx`, `at_most` or `at_least`", e.metric));
    }
    if !(e.tolerance >= 0.0 && e.abs_tolerance >= 0.0) {
        return Err("tolerances must be >= 0".into());
    }
    Ok(())
}

/// The value of a metric path (`real_servers[0].latency_ms.p99`) in a summary.
pub fn metric(summary: &Value, path: &str) -> Result<f64, String> {
    let steps = parse_path(path)?;
    let mut v = summary;
    for st in &steps {
        v = match st {
            Step::Field(f) => {
                v.get(f).ok_or_else(|| format!("summary.json has no {path} (no field `{f}`)"))?
            }
            Step::Index(i) => {
                v.get(*i).ok_or_else(|| format!("summary.json has no {path} (no element [{i}])"))?
            }
            Step::All => return Err(format!("{path}: a metric names one value, not [*]")),
        };
    }
    v.as_f64().ok_or_else(|| format!("summary.json's {path} is not a number"))
}

/// Evaluates a check.
pub fn check(e: &Expect, summary: &Value) -> Result<Outcome, String> {
    let value = metric(summary, &e.metric)?;
    let mut ok = true;
    let mut conds = Vec::new();
    if let Some(x) = e.approx {
        let tol = (x.abs() * e.tolerance).max(e.abs_tolerance);
        ok &= (value - x).abs() <= tol;
        conds.push(format!("expected {x} ± {}", short(tol)));
    }
    if let Some(m) = e.at_most {
        ok &= value <= m;
        conds.push(format!("at most {m}"));
    }
    if let Some(m) = e.at_least {
        ok &= value >= m;
        conds.push(format!("at least {m}"));
    }
    let note = if e.note.is_empty() { String::new() } else { format!(" ({})", e.note) };
    Ok(Outcome {
        metric: e.metric.clone(),
        value,
        ok,
        text: format!("{} = {}, {}{note}", e.metric, short(value), conds.join(", ")),
    })
}

fn short(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 0.01 && x.abs() < 1e6) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{x:.4e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(metric: &str, approx: Option<f64>, at_most: Option<f64>) -> Expect {
        Expect {
            metric: metric.into(),
            approx,
            tolerance: 0.05,
            abs_tolerance: 0.0,
            at_most,
            at_least: None,
            note: "M/M/1".into(),
        }
    }

    #[test]
    fn checks_paths_and_bounds() {
        let s: Value =
            serde_json::json!({"latency_ms": {"mean": 49.0}, "real_servers": [{"utilization": 0.8}]});
        let o = check(&ex("latency_ms.mean", Some(50.0), None), &s).unwrap();
        assert!(o.ok, "{}", o.text);
        assert_eq!(o.text, "latency_ms.mean = 49, expected 50 ± 2.5 (M/M/1)");
        assert!(!check(&ex("latency_ms.mean", Some(55.0), None), &s).unwrap().ok);
        assert!(!check(&ex("real_servers[0].utilization", None, Some(0.5)), &s).unwrap().ok);
        assert!(
            check(&ex("real_servers[1].utilization", None, Some(0.5)), &s)
                .unwrap_err()
                .contains("no element [1]")
        );
        assert!(validate(&ex("x", None, None)).is_err());
    }
}
