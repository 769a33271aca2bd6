//! `lvsim plan`: the smallest number of real servers, and the best scheduler, that keep a
//! service level objective at the scenario's load.
//!
//! For each scheduler the search assumes that adding servers never hurts (the metric is
//! monotone in the count): it tries the largest count first (if even that fails, the
//! scheduler cannot meet the SLO within the range), then bisects. Every trial is a full
//! simulation (with the scenario's replications), and every trial is reported as
//! evidence. Schedulers are searched in parallel.

use std::io::Write as _;

use anyhow::Context as _;
use lvs_ipvs::SchedulerKind;
use rayon::prelude::*;
use reports::{PlanAnswer, PlanReport, PlanTrial};
use scenarios::expect;
use scenarios::format::{Expect, Plan};

use super::{Common, InputError, count_bar, loss, summarize};

/// Command-line overrides of the scenario's `plan` section.
#[derive(Clone, Debug, Default)]
pub struct PlanOpts {
    /// `--slo METRIC<=VALUE` (or `>=`), replacing the scenario's SLO.
    pub slo: Vec<String>,
    /// `--servers NAME`.
    pub servers: Option<String>,
    /// `--min N`.
    pub min: Option<u32>,
    /// `--max N`.
    pub max: Option<u32>,
    /// `--schedulers rr,wlc`.
    pub schedulers: Option<Vec<String>>,
}

/// Parses `latency_ms.p99<=200` / `>=`.
pub fn parse_slo(s: &str) -> Result<Expect, String> {
    let (metric, bound, at_most) = if let Some((m, v)) = s.split_once("<=") {
        (m, v, true)
    } else if let Some((m, v)) = s.split_once(">=") {
        (m, v, false)
    } else if let Some((m, v)) = s.split_once('<') {
        (m, v, true)
    } else if let Some((m, v)) = s.split_once('>') {
        (m, v, false)
    } else {
        return Err(format!(
            "--slo {s:?}: expected METRIC<=VALUE or METRIC>=VALUE, such as latency_ms.p99<=200"
        ));
    };
    let v: f64 = bound.trim().parse().map_err(|_| format!("--slo {s:?}: {bound:?} is not a number"))?;
    let e = Expect {
        metric: metric.trim().to_owned(),
        approx: None,
        tolerance: 0.0,
        abs_tolerance: 0.0,
        at_most: at_most.then_some(v),
        at_least: (!at_most).then_some(v),
        note: String::new(),
    };
    expect::validate(&e).map_err(|m| format!("--slo {s:?}: {m}"))?;
    Ok(e)
}

fn slo_text(slo: &[Expect], max_loss: f64) -> String {
    let mut parts: Vec<String> = slo
        .iter()
        .map(|e| match (e.at_most, e.at_least, e.approx) {
            (Some(m), _, _) => format!("{} <= {m}", e.metric),
            (_, Some(m), _) => format!("{} >= {m}", e.metric),
            (_, _, Some(x)) => format!("{} ≈ {x}", e.metric),
            _ => e.metric.clone(),
        })
        .collect();
    parts.push(format!("loss <= {max_loss}"));
    parts.join(" and ")
}

/// Runs the search and writes its report directory.
pub fn plan(c: &Common, o: &PlanOpts) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let mut p: Plan = match (&l.scenario.plan, &o.servers) {
        (Some(p), _) => p.clone(),
        (None, Some(name)) => Plan::for_servers(name.clone()),
        (None, None) => {
            return Err(InputError(format!(
                "{}: no `plan` section; add one or give --servers NAME and --slo METRIC<=VALUE",
                l.file
            ))
            .into());
        }
    };
    if !o.slo.is_empty() {
        p.slo = o.slo.iter().map(|s| parse_slo(s)).collect::<Result<_, _>>().map_err(InputError)?;
    }
    if let Some(s) = &o.servers {
        p.servers.clone_from(s);
    }
    p.min = o.min.unwrap_or(p.min);
    p.max = o.max.unwrap_or(p.max);
    if let Some(names) = &o.schedulers {
        p.schedulers = names
            .iter()
            .map(|n| {
                n.trim()
                    .parse::<lvs_sched::SchedulerKind>()
                    .map_err(|e| InputError(format!("--schedulers: {e}")))
            })
            .collect::<Result<_, _>>()?;
    }
    if p.slo.is_empty() {
        return Err(InputError(
            "the plan has no SLO: give --slo METRIC<=VALUE (e.g. latency_ms.p99<=200)".into(),
        )
        .into());
    }
    if p.min == 0 || p.min > p.max {
        return Err(InputError(format!(
            "the plan's range {}..={} is empty (min must be >= 1)",
            p.min, p.max
        ))
        .into());
    }
    if p.schedulers.is_empty() {
        return Err(InputError("the plan compares no scheduler".into()).into());
    }
    let Some(group) = l.scenario.servers.iter().position(|s| s.name == p.servers) else {
        let names: Vec<_> = l.scenario.servers.iter().map(|s| s.name.as_str()).collect();
        return Err(InputError(format!(
            "{}: the plan varies server entry {:?}, but the servers are: {} (give a `count` group's name)",
            l.file,
            p.servers,
            names.join(", ")
        ))
        .into());
    };
    let count_path = format!("servers[{group}].count");
    let load = load_text(&l);

    // Each trial's cost is unknown in advance; the bar counts trials as they finish.
    let per_sched = ((p.max - p.min + 1) as f64).log2().ceil() as u64 + 1;
    // The budget at the largest count, as if every trial were that large.
    let largest =
        l.with(&[(count_path.clone(), p.max.to_string())]).map_err(|e| InputError(e.to_string()))?;
    let runs = per_sched * p.schedulers.len() as u64 * u64::from(l.scenario.replications.max(1));
    c.check_budget(
        &largest,
        runs,
        &format!("the plan (at {count_path} = {})", p.max),
        scenarios::budget::Keeps::Summaries,
    )?;
    let bar = count_bar(c.bars(), per_sched * p.schedulers.len() as u64, &format!("{} plan", l.name));
    let trial = |sched: SchedulerKind, n: u32| -> anyhow::Result<PlanTrial> {
        let name = sched.name().to_owned();
        let point = l
            .with(&[
                ("directors[*].services[*].scheduler".into(), name.clone()),
                (count_path.clone(), n.to_string()),
            ])
            .map_err(|e| InputError(e.to_string()))?;
        let runs: Vec<_> = point
            .replications()
            .into_iter()
            .map(|cfg| summarize(&point, cfg))
            .collect::<anyhow::Result<_>>()?;
        let result = reports::replications(runs);
        let mut meets = true;
        let mut value = f64::NAN;
        for (k, e) in p.slo.iter().enumerate() {
            let mut vals = Vec::new();
            for r in &result.runs {
                vals.push(expect::metric(&serde_json::to_value(r)?, &e.metric).map_err(InputError)?);
            }
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            if k == 0 {
                value = mean;
            }
            meets &= e.at_most.is_none_or(|m| mean <= m) && e.at_least.is_none_or(|m| mean >= m);
            if let Some(x) = e.approx {
                meets &= (mean - x).abs() <= (x.abs() * e.tolerance).max(e.abs_tolerance);
            }
        }
        let lost = result.runs.iter().map(loss).sum::<f64>() / result.runs.len() as f64;
        meets &= lost <= p.max_loss;
        bar.inc(1);
        Ok(PlanTrial { scheduler: name, servers: n, value, meets, result })
    };
    let searched = c.pool()?.install(|| {
        p.schedulers
            .par_iter()
            .map(|&s| {
                let mut trials = vec![trial(s, p.max)?];
                if !trials[0].meets {
                    return Ok(trials);
                }
                // Invariant: `lo` fails (or is below the range), `hi` meets.
                let (mut lo, mut hi) = (p.min - 1, p.max);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    let t = trial(s, mid)?;
                    if t.meets {
                        hi = mid
                    } else {
                        lo = mid
                    }
                    trials.push(t);
                }
                Ok(trials)
            })
            .collect::<anyhow::Result<Vec<Vec<PlanTrial>>>>()
    })?;
    bar.finish_and_clear();

    // Best: fewest servers, then the lower metric (higher for an at_least objective).
    let lower_is_better = p.slo[0].at_least.is_none();
    let mut best: Option<&PlanTrial> = None;
    for t in searched.iter().flat_map(|ts| ts.iter().filter(|t| t.meets)) {
        let smallest = searched
            .iter()
            .flatten()
            .filter(|x| x.scheduler == t.scheduler && x.meets)
            .map(|x| x.servers)
            .min();
        if smallest != Some(t.servers) {
            continue;
        }
        best = match best {
            None => Some(t),
            Some(b) if t.servers < b.servers => Some(t),
            Some(b)
                if t.servers == b.servers && (t.value < b.value) == lower_is_better && t.value != b.value =>
            {
                Some(t)
            }
            keep => keep,
        };
    }
    let metric = &p.slo[0].metric;
    let answer = best.map(|b| {
        let fewer = searched
            .iter()
            .flatten()
            .find(|x| x.scheduler == b.scheduler && x.servers + 1 == b.servers)
            .map(|x| format!(" With {} servers it fails ({metric} = {:.2}).", x.servers, x.value))
            .unwrap_or_else(|| {
                if b.servers == p.min {
                    format!(" {} is the smallest count tried.", p.min)
                } else {
                    String::new()
                }
            });
        let ties: Vec<String> = searched
            .iter()
            .flatten()
            .filter(|x| x.meets && x.servers == b.servers && x.scheduler != b.scheduler)
            .map(|x| format!("{} ({:.2})", x.scheduler, x.value))
            .collect();
        let others = if ties.is_empty() {
            " No other scheduler meets the objective with as few servers.".to_owned()
        } else {
            format!(
                " Also meeting it with {} servers: {}; {} has the best {metric}.",
                b.servers,
                ties.join(", "),
                b.scheduler
            )
        };
        PlanAnswer {
            scheduler: b.scheduler.clone(),
            servers: b.servers,
            value: b.value,
            why: format!(
                "{} servers with {} is the fewest that meet {} at {load}: {metric} = {:.2}.{fewer}{others}",
                b.servers,
                b.scheduler,
                slo_text(&p.slo, p.max_loss),
                b.value
            ),
        }
    });
    let report = PlanReport {
        scenario: l.name.clone(),
        slo: slo_text(&p.slo, p.max_loss),
        load,
        trials: searched.into_iter().flatten().collect(),
        answer,
    };
    let dir = c.out_dir(&l.name, "-plan");
    reports::write_plan(&dir, &report)
        .with_context(|| format!("writing the plan report to {}", dir.display()))?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if c.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if !c.quiet {
        writeln!(out, "capacity plan for {}: {} at {}", l.name, report.slo, report.load)?;
        let header = ["scheduler", "servers", metric.as_str(), "loss", "meets"].map(String::from);
        let rows: Vec<Vec<String>> = report
            .trials
            .iter()
            .map(|t| {
                vec![
                    t.scheduler.clone(),
                    t.servers.to_string(),
                    format!("{:.2}", t.value),
                    format!("{:.5}", t.result.loss_fraction.mean),
                    if t.meets { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        write!(out, "{}", super::sweep::table(&header, &rows))?;
        match &report.answer {
            Some(a) => writeln!(out, "\nanswer: {} real servers with {}. {}", a.servers, a.scheduler, a.why)?,
            None => writeln!(
                out,
                "\nanswer: none: no scheduler meets {} with at most {} servers",
                report.slo, p.max
            )?,
        }
        writeln!(out, "report: {}", dir.join("report.html").display())?;
    }
    Ok(())
}

/// The load in words: each population's arrival process.
fn load_text(l: &scenarios::Loaded) -> String {
    use scenarios::format::Arrival;
    l.scenario
        .clients
        .iter()
        .map(|c| match &c.arrival {
            Arrival::Poisson { rate } => format!("Poisson {rate} conn/s"),
            Arrival::Constant { rate } => format!("constant {rate} conn/s"),
            Arrival::OnOff { rate, .. } => format!("on/off bursts at {rate} conn/s"),
            Arrival::Schedule { steps } => {
                let peak = steps.iter().map(|s| s.1).fold(0.0, f64::max);
                format!("a rate schedule peaking at {peak} conn/s")
            }
            Arrival::Trace { file } => format!("the trace {file}"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}
