//! Checks on a run's results: `expect` entries and a plan's SLO, evaluated against the
//! run's `summary.json` value.

use serde_json::Value;

use crate::doc::{Step, list_or_none, parse_path};
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

/// The value of a metric path in a summary: `real_servers[0].latency_ms.p99`, or an
/// element of a list by its `name`: `services[web].latency_ms.p99`,
/// `populations[mobile].loss_fraction`, `backends[db].utilization`.
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
            Step::Name(n) => by_name(v, n, path)?,
            Step::All => return Err(format!("{path}: a metric names one value, not [*]")),
        };
    }
    v.as_f64().ok_or_else(|| format!("summary.json's {path} is not a number"))
}

/// The element of a list whose `name` is `name`; the error lists the names there are.
fn by_name<'a>(list: &'a Value, name: &str, path: &str) -> Result<&'a Value, String> {
    let Some(items) = list.as_array() else {
        return Err(format!(
            "summary.json has no {path} ([{name}] selects from a list, not a {})",
            kind(list)
        ));
    };
    let name_of = |e: &Value| e.get("name").and_then(Value::as_str).map(str::to_owned);
    if let Some(e) = items.iter().find(|e| name_of(e).as_deref() == Some(name)) {
        return Ok(e);
    }
    let names: Vec<String> = items.iter().filter_map(name_of).collect();
    Err(format!("summary.json has no {path} (no element named {name:?}; names: {})", list_or_none(&names)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "struct",
    }
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

    #[test]
    fn selects_list_elements_by_name() {
        let s: Value = serde_json::json!({
            "services": [
                {"name": "web", "latency_ms": {"p99": 80.0}},
                {"name": "tcp-10.1.0.100-443", "loss_fraction": 0.25}
            ],
            "populations": [],
            "latency_ms": {"p99": 5.0},
        });
        assert_eq!(metric(&s, "services[web].latency_ms.p99").unwrap(), 80.0);
        assert_eq!(metric(&s, "services[tcp-10.1.0.100-443].loss_fraction").unwrap(), 0.25);
        assert_eq!(metric(&s, "services[1].loss_fraction").unwrap(), 0.25);
        assert!(!check(&ex("services[web].latency_ms.p99", None, Some(50.0)), &s).unwrap().ok);
        assert!(check(&ex("services[web].latency_ms.p99", None, Some(100.0)), &s).unwrap().ok);
        let e = metric(&s, "services[api].latency_ms.p99").unwrap_err();
        assert_eq!(
            e,
            "summary.json has no services[api].latency_ms.p99 (no element named \"api\"; names: web, \
             tcp-10.1.0.100-443)"
        );
        assert!(metric(&s, "populations[mobile].loss_fraction").unwrap_err().contains("names: none"));
        assert!(metric(&s, "latency_ms[web]").unwrap_err().contains("from a list, not a struct"));
        assert!(validate(&ex("services[a b].x", Some(1.0), None)).is_err());
    }
}
