//! `lvsim plan`: the cheapest cluster, and the scheduler, that keep a service level
//! objective at the scenario's load, with every trial as evidence.
//!
//! One group (`servers: "web"`) or several sized together (`sizes: [Servers(..),
//! BackendCores(..)]`), each unit at a cost. The pieces, each testable on its own:
//!
//! - [`search`]: which sizes to simulate (bisection for one group, a staircase walk over
//!   the monotone frontier for two or more), as a function of a trial oracle;
//! - [`choose`]: whether a trial meets the SLO (its 95% interval, Welch against the
//!   bound) and which meeting configuration to answer (cheapest; among equal costs the
//!   simplest that no other beats significantly);
//! - [`words`]: the SLO, the load, the search and the reasons in words;
//! - [`print`]: the terminal text (printed and saved as `summary.txt`);
//! - [`grid`]: the plan split into shards (`--shard K/N`, `--slurm`, `lvsim merge`): the
//!   full grid of trials at once, the search replayed over the shards' summaries.
//!
//! This module reads the options, runs the trials (each replicated, 5 runs by default;
//! schedulers searched in parallel on [`ordered::in_order`]) and writes the report.

pub mod choose;
pub mod grid;
pub mod opts;
pub mod print;
pub mod search;
pub mod words;

use std::io::Write as _;

use anyhow::Context as _;
use lvs_ipvs::SchedulerKind;
use reports::{PlanAnswer, PlanCheck, PlanGroup, PlanReport, PlanRival, PlanTrial, Verdict};
use scenarios::Loaded;
use scenarios::budget::Keeps;
use scenarios::expect;
use scenarios::format::{Expect, Plan, Size};

use super::{Common, InputError, Split, count_bar, loss, ordered, summarize};
pub use opts::PlanOpts;

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

/// The plan as run: the scenario's section with the command line's overrides, and what it
/// sizes.
struct Setup {
    plan: Plan,
    groups: Vec<PlanGroup>,
    space: search::Space,
}

/// The scenario's `plan` section (or one from `--servers`), with the options applied.
fn section(l: &Loaded, o: &PlanOpts) -> anyhow::Result<Plan> {
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
        p.servers = Some(s.clone());
        p.sizes.clear();
    }
    if (o.min.is_some() || o.max.is_some()) && p.servers.is_none() {
        return Err(InputError(
            "--min and --max size the single-group form (`servers: NAME`); for `sizes`, use \
             --set plan.sizes[I].min=N / .max=N"
                .into(),
        )
        .into());
    }
    p.min = o.min.or(p.min);
    p.max = o.max.or(p.max);
    p.replications = o.replications.unwrap_or(p.replications);
    if let Some(names) = &o.schedulers {
        p.schedulers = names
            .iter()
            .map(|n| n.trim().parse::<SchedulerKind>().map_err(|e| InputError(format!("--schedulers: {e}"))))
            .collect::<Result<_, _>>()?;
    }
    Ok(p)
}

/// Checks what the command line may have changed (the file's values were checked, with
/// their line and column, when it was loaded) and names the groups.
fn setup(l: &Loaded, o: &PlanOpts) -> anyhow::Result<Setup> {
    let plan = section(l, o)?;
    if plan.slo.is_empty() {
        return Err(InputError(
            "the plan has no SLO: give --slo METRIC<=VALUE (e.g. latency_ms.p99<=200)".into(),
        )
        .into());
    }
    if plan.schedulers.is_empty() {
        return Err(InputError("the plan compares no scheduler".into()).into());
    }
    if !(1..=scenarios::build::plan::MAX_REPLICATIONS).contains(&plan.replications) {
        let max = scenarios::build::plan::MAX_REPLICATIONS;
        return Err(InputError(format!("--replications must be 1..={max}")).into());
    }
    let sizes = plan.sizes().map_err(|m| InputError(format!("{}: plan: {m}", l.file)))?;
    let groups = sizes.iter().map(|s| group(l, s)).collect::<anyhow::Result<Vec<_>>>()?;
    let space = search::Space {
        ranges: groups.iter().map(|g| (g.min, g.max)).collect(),
        costs: groups.iter().map(|g| g.cost).collect(),
    };
    Ok(Setup { plan, groups, space })
}

/// A group's label and path, and its range checked.
fn group(l: &Loaded, s: &Size) -> anyhow::Result<PlanGroup> {
    let (min, max, cost) = s.range();
    let found = match s {
        Size::Servers { name, .. } => l
            .scenario
            .servers
            .iter()
            .position(|x| &x.name == name)
            .map(|i| (format!("{name} servers"), format!("servers[{i}].count"))),
        Size::BackendCores { name, .. } => l
            .scenario
            .backends
            .iter()
            .position(|x| &x.name == name)
            .map(|i| (format!("{name} cores"), format!("backends[{i}].cpu.cores"))),
    };
    let Some((label, path)) = found else {
        let names: Vec<_> = l.scenario.servers.iter().map(|s| s.name.as_str()).collect();
        return Err(InputError(format!(
            "{}: the plan varies server entry {:?}, but the servers are: {} (give a `count` group's name)",
            l.file,
            s.name(),
            names.join(", ")
        ))
        .into());
    };
    if min == 0 || min > max {
        return Err(InputError(format!(
            "the plan's range {min}..={max} of {label} is empty (min must be >= 1)"
        ))
        .into());
    }
    Ok(PlanGroup { label, path, min, max, cost })
}

/// Whether the runs keep one SLO check.
fn check(e: &Expect, runs: &[serde_json::Value]) -> anyhow::Result<PlanCheck> {
    let values = runs
        .iter()
        .map(|r| expect::metric(r, &e.metric))
        .collect::<Result<Vec<_>, _>>()
        .map_err(InputError)?;
    let estimate = reports::estimate(&values);
    let mut verdicts = Vec::new();
    verdicts.extend(e.at_most.map(|m| choose::judge(&estimate, m, true)));
    verdicts.extend(e.at_least.map(|m| choose::judge(&estimate, m, false)));
    if let Some(x) = e.approx {
        let ok = (estimate.mean - x).abs() <= (x.abs() * e.tolerance).max(e.abs_tolerance);
        verdicts.push(if ok { Verdict::Meets } else { Verdict::Fails });
    }
    let verdict = if verdicts.contains(&Verdict::Fails) {
        Verdict::Fails
    } else if verdicts.contains(&Verdict::Unclear) {
        Verdict::Unclear
    } else {
        Verdict::Meets
    };
    Ok(PlanCheck { check: words::check_text(e), metric: e.metric.clone(), estimate, verdict })
}

/// A trial's scenario: the plan's with this scheduler, these sizes and the plan's
/// replications.
fn trial_point(l: &Loaded, s: &Setup, sched: SchedulerKind, sizes: &[u32]) -> anyhow::Result<Loaded> {
    let mut sets = vec![
        ("directors[*].services[*].scheduler".to_owned(), sched.name().to_owned()),
        ("replications".to_owned(), s.plan.replications.to_string()),
    ];
    sets.extend(s.groups.iter().zip(sizes).map(|(g, n)| (g.path.clone(), n.to_string())));
    Ok(l.with(&sets).map_err(|e| InputError(e.to_string()))?)
}

/// One trial: the scenario with this scheduler and these sizes, its runs on up to
/// `threads` threads, each simulation in one of the `slots`; judged.
fn trial(
    l: &Loaded,
    s: &Setup,
    (sched, sizes): (SchedulerKind, &[u32]),
    threads: usize,
    slots: &Slots,
) -> anyhow::Result<PlanTrial> {
    let point = trial_point(l, s, sched, sizes)?;
    let n = point.scenario.replications.max(1) as usize;
    let mut runs = Vec::with_capacity(n);
    let threads = threads.clamp(1, n);
    ordered::in_order(
        threads,
        n,
        ordered::window(threads),
        |r| slots.run(|| summarize(&point, point.replication(r as u32))),
        |_, run| {
            runs.push(run?);
            Ok::<(), anyhow::Error>(())
        },
    )?;
    judge(s, sched, sizes, runs)
}

/// At most `--jobs` simulations at once, shared by the schedulers' searches running side
/// by side: a search whose trial has runs to do takes the slots another leaves idle (the
/// last search running uses every core), as rayon's shared pool did.
struct Slots {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots { free: std::sync::Mutex::new(n.max(1)), freed: std::sync::Condvar::new() }
    }

    /// Runs `f` in a slot, waiting for one; the slot is given back even if `f` panics.
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Back<'a>(&'a Slots);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                self.0.freed.notify_one();
            }
        }
        let mut free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *free -= 1;
        drop(free);
        let _back = Back(self);
        f()
    }
}

/// A trial from its runs' summaries (in seed order): its checks against the SLO and the
/// loss bound, and whether it meets them all. The one judge of local trials and of
/// trials merged from shards.
fn judge(
    s: &Setup,
    sched: SchedulerKind,
    sizes: &[u32],
    runs: Vec<reports::Summary>,
) -> anyhow::Result<PlanTrial> {
    let result = reports::replications(runs);
    let json = result.runs.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
    let mut checks = s.plan.slo.iter().map(|e| check(e, &json)).collect::<anyhow::Result<Vec<_>>>()?;
    let lost = reports::estimate(&result.runs.iter().map(loss).collect::<Vec<_>>());
    checks.push(PlanCheck {
        check: format!("loss <= {}", s.plan.max_loss),
        metric: "loss_fraction".into(),
        estimate: lost,
        verdict: choose::judge(&lost, s.plan.max_loss, true),
    });
    let meets = checks.iter().all(|c| c.verdict == Verdict::Meets);
    Ok(PlanTrial {
        scheduler: sched.name().to_owned(),
        sizes: sizes.to_vec(),
        cost: s.space.cost(sizes),
        checks,
        meets,
        result,
    })
}

/// Every scheduler's search, side by side (at most [`MAX_SEARCHES`] at once), at most
/// `--jobs` simulations at once in all ([`Slots`]); the trials sorted by scheduler
/// (simplest first), then sizes.
fn run_searches(c: &Common, l: &Loaded, s: &Setup) -> anyhow::Result<Vec<PlanTrial>> {
    let trials = s.space.max_trials() * s.plan.schedulers.len() as u64;
    let bar = count_bar(c.bars(), trials, &format!("{} plan", l.name));
    let n = s.plan.schedulers.len();
    let jobs = ordered::threads(c.jobs, usize::MAX);
    let slots = Slots::new(jobs);
    let outer = n.clamp(1, MAX_SEARCHES);
    let mut searched = Vec::with_capacity(n);
    ordered::in_order(
        outer,
        n,
        n,
        |i| {
            let sched = s.plan.schedulers[i];
            let mut run = |sizes: &[u32]| {
                let t = trial(l, s, (sched, sizes), jobs, &slots);
                bar.inc(1);
                t
            };
            search::search(&s.space, &mut run, &|t: &PlanTrial| t.meets)
        },
        |_, one| {
            searched.push(one?);
            Ok::<(), anyhow::Error>(())
        },
    )?;
    bar.finish_and_clear();
    Ok(sorted(searched))
}

/// The most schedulers searched side by side (each a thread, mostly waiting for slots).
const MAX_SEARCHES: usize = 16;

/// Every scheduler's trials (as [`search::search`] returns them), sorted by scheduler
/// (simplest first), then sizes.
fn sorted(searched: Vec<Vec<(Vec<u32>, PlanTrial)>>) -> Vec<PlanTrial> {
    let mut all: Vec<PlanTrial> = searched.into_iter().flatten().map(|(_, t)| t).collect();
    all.sort_by(|a, b| {
        (choose::simplicity(&a.scheduler), &a.scheduler, &a.sizes).cmp(&(
            choose::simplicity(&b.scheduler),
            &b.scheduler,
            &b.sizes,
        ))
    });
    all
}

/// The answer and its reasons, from the sorted trials.
fn answer(s: &Setup, trials: &[PlanTrial], slo: &str, load: &str) -> Option<PlanAnswer> {
    let lower_is_better = s.plan.slo[0].at_least.is_none();
    let choice = choose::choose(trials, lower_is_better)?;
    let cx = words::Context { groups: &s.groups, slo, load, metric: &s.plan.slo[0].metric };
    let mut schedulers: Vec<String> = s.plan.schedulers.iter().map(|k| k.name().to_owned()).collect();
    schedulers.sort_by_key(|n| choose::simplicity(n));
    let a = &trials[choice.chosen];
    Some(PlanAnswer {
        scheduler: a.scheduler.clone(),
        sizes: a.sizes.clone(),
        cost: a.cost,
        value: choose::value(a),
        choice: choice.why.word().to_owned(),
        rivals: choice
            .rivals
            .iter()
            .map(|&(i, difference)| PlanRival {
                scheduler: trials[i].scheduler.clone(),
                sizes: trials[i].sizes.clone(),
                value: choose::value(&trials[i]),
                difference,
            })
            .collect(),
        why: words::why(&cx, trials, &choice, &schedulers),
    })
}

/// The plan's largest trial (every group at its maximum) and those sizes in words, for
/// the budget.
fn largest(l: &Loaded, s: &Setup) -> anyhow::Result<(Loaded, String)> {
    let at_max: Vec<(String, String)> =
        s.groups.iter().map(|g| (g.path.clone(), g.max.to_string())).collect();
    let largest = l.with(&at_max).map_err(|e| InputError(e.to_string()))?;
    let at: Vec<String> = at_max.iter().map(|(p, v)| format!("{p} = {v}")).collect();
    Ok((largest, at.join(", ")))
}

/// Runs the search (or a shard of the full grid, or a Slurm campaign of it) and writes
/// its report directory.
pub fn plan(c: &Common, o: &PlanOpts) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let s = setup(&l, o)?;
    match &c.split {
        Split::Local => {}
        Split::Shard { spec, dir } => return grid::run_shard(c, &l, &s, o, *spec, dir.as_deref()),
        Split::Slurm { opts, dir } => {
            return super::slurm::campaign(c, opts, &grid::work(c, &l, &s, o, dir.as_deref())?);
        }
    }
    // The budget at the largest sizes, as if every trial were that large.
    let (largest, at) = largest(&l, &s)?;
    let runs = s.space.max_trials() * s.plan.schedulers.len() as u64 * u64::from(s.plan.replications);
    c.check_budget(&largest, runs, &format!("the plan (at {at})"), Keeps::Summaries)?;
    let trials = run_searches(c, &l, &s)?;
    write(c, &l, &s, trials)
}

/// Writes the plan's report directory from its sorted trials and prints its text: the
/// one writer of local and merged plans.
fn write(c: &Common, l: &Loaded, s: &Setup, trials: Vec<PlanTrial>) -> anyhow::Result<()> {
    let slo = words::slo_text(&s.plan.slo, s.plan.max_loss);
    let load = load_text(l);
    let answer = answer(s, &trials, &slo, &load);
    let report = PlanReport {
        scenario: l.name.clone(),
        slo,
        load,
        groups: s.groups.clone(),
        replications: s.plan.replications,
        search: s.space.method().to_owned(),
        grid_points: s.space.grid_points() * s.plan.schedulers.len() as u64,
        trials,
        answer,
    };
    let dir = c.out_dir(&l.name, "-plan");
    reports::write_plan(&dir, &report)
        .with_context(|| format!("writing the plan report to {}", dir.display()))?;
    let text = print::text(&report, &dir);
    super::write_terminal(&dir, &text)
        .with_context(|| format!("writing {}", dir.join("summary.txt").display()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if c.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if !c.quiet {
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// The load in words: each population's arrival process.
fn load_text(l: &Loaded) -> String {
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

/// `lvsim merge` of a plan's grid: the search replayed over the shards' trials, and the
/// report `plan` writes.
pub fn merged(c: &Common, g: super::shard::Gathered) -> anyhow::Result<()> {
    grid::merged(c, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn slots_bound_the_simulations_at_once_and_come_back_after_a_panic() {
        let slots = Slots::new(2);
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        slots.run(|| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::yield_now();
                            running.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2, "{} at once", most.load(Ordering::SeqCst));
        // A run that panics gives its slot back: with one slot, the next run still gets it.
        let one = Slots::new(1);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one.run(|| panic!("boom"))));
        assert!(panicked.is_err());
        assert_eq!(one.run(|| 7), 7);
        assert_eq!(*one.free.lock().unwrap(), 1);
    }
}
