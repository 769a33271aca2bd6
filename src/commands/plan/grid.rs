//! A plan split into shards (`plan --shard K/N`, `plan --slurm`, `lvsim merge`): every
//! candidate at once.
//!
//! A split plan does not search while it runs: its units are the full grid of trials,
//! every scheduler × every point of the sizes' ranges × every replication, in a fixed
//! order (schedulers in the plan's order, points in grid order with the last group
//! fastest, replications in seed order):
//!
//! ```text
//! unit = (scheduler · points + point) · replications + replication
//! ```
//!
//! Each shard runs its units and stores their summaries. `lvsim merge` then replays the
//! search ([`search::search`], as the local plan runs it) with an oracle that judges each
//! trial it asks for from the stored summaries ([`super::judge`], the local plan's judge),
//! so the trials, the answer and the files are the local plan's, byte for byte but for wall
//! times; the grid's other trials are not reported. Why the grid rather than a wave of
//! shards per bisection step: docs/cluster.md, "Replications and plans".

use std::path::Path;

use lvs_ipvs::SchedulerKind;
use reports::PlanTrial;
use scenarios::Loaded;
use scenarios::budget::Keeps;

use super::super::shard::{self, Kind, ShardSpec};
use super::super::{Common, InputError, count_bar, ordered, summarize};
use super::{PlanOpts, Setup, judge, largest, search, setup, sorted, trial_point, write};

/// The most runs a split plan's grid may have: their summaries are kept until the merge.
pub const MAX_UNITS: usize = 100_000;

/// The full grid of a plan's trials, as units.
#[derive(Clone, Debug)]
pub struct Grid {
    /// `(min, max)` per group.
    ranges: Vec<(u32, u32)>,
    /// Points of the sizes' grid.
    points: usize,
    /// Runs per trial.
    replications: usize,
    /// The schedulers compared, in the plan's order.
    schedulers: Vec<SchedulerKind>,
}

impl Grid {
    /// The grid of `s`; refuses (exit 2) one of more than [`MAX_UNITS`] runs, suggesting
    /// narrower ranges.
    fn new(s: &Setup) -> anyhow::Result<Grid> {
        let points = s.space.grid_points();
        let (n_sched, reps) = (s.plan.schedulers.len() as u64, u64::from(s.plan.replications));
        let units = points.saturating_mul(n_sched).saturating_mul(reps);
        if units > MAX_UNITS as u64 {
            return Err(InputError(format!(
                "a split plan runs every trial of its grid: {points} point(s) of sizes x {n_sched} \
                 scheduler(s) x {reps} replication(s) = {units} runs, more than the {MAX_UNITS} it may \
                 have; narrow the ranges (--min/--max, or --set plan.sizes[I].min=N / .max=N), the \
                 schedulers or the replications"
            ))
            .into());
        }
        Ok(Grid {
            ranges: s.space.ranges.clone(),
            points: points as usize,
            replications: reps as usize,
            schedulers: s.plan.schedulers.clone(),
        })
    }

    /// Runs in all.
    fn units(&self) -> usize {
        self.schedulers.len() * self.points * self.replications
    }

    /// Unit `u` as (scheduler's index, sizes, replication).
    fn decode(&self, u: usize) -> (usize, Vec<u32>, u32) {
        let (trial, rep) = (u / self.replications, u % self.replications);
        let (sched, mut point) = (trial / self.points, trial % self.points);
        let mut sizes = vec![0; self.ranges.len()];
        for (i, &(lo, hi)) in self.ranges.iter().enumerate().rev() {
            let len = (hi - lo) as usize + 1;
            sizes[i] = lo + (point % len) as u32;
            point /= len;
        }
        (sched, sizes, rep as u32)
    }

    /// The first unit of the trial of scheduler `sched` (an index) at `sizes`; its runs
    /// are that unit and the next `replications - 1`.
    fn first_unit(&self, sched: usize, sizes: &[u32]) -> usize {
        assert_eq!(sizes.len(), self.ranges.len(), "a trial has one size per group");
        let point = self.ranges.iter().zip(sizes).fold(0, |p, (&(lo, hi), &n)| {
            assert!((lo..=hi).contains(&n), "size {n} outside {lo}..={hi}");
            p * ((hi - lo) as usize + 1) + (n - lo) as usize
        });
        (sched * self.points + point) * self.replications
    }

    /// Unit `u` in words: `rr, app servers=3, db cores=4, replication 2`.
    fn label(&self, s: &Setup, u: usize) -> String {
        let (sched, sizes, rep) = self.decode(u);
        let mut parts = vec![self.schedulers[sched].name().to_owned()];
        parts.extend(s.groups.iter().zip(&sizes).map(|(g, n)| format!("{}={n}", g.label)));
        parts.push(format!("replication {rep}"));
        parts.join(", ")
    }
}

/// The fingerprint of a plan's split: the scenario as loaded and the plan's options
/// ([`shard::extra`]), which decide the grid and how its trials are judged.
pub fn fingerprint(l: &Loaded, o: &PlanOpts) -> String {
    shard::fingerprint(Kind::Plan, l, &shard::extra(Some(o)))
}

/// The identity of a plan's split into `shards`.
fn identity(l: &Loaded, o: &PlanOpts, g: &Grid, shards: u32) -> shard::Identity {
    shard::Identity {
        format: shard::FORMAT,
        lvsim: shard::version(),
        kind: Kind::Plan,
        scenario: l.name.clone(),
        fingerprint: fingerprint(l, o),
        units: g.units(),
        shards,
    }
}

/// The budget of the whole grid (every run at the largest sizes); a refusal suggests
/// narrower ranges. Returns the estimate of one run at the largest sizes.
fn check_grid(c: &Common, l: &Loaded, s: &Setup, g: &Grid) -> anyhow::Result<scenarios::budget::Estimate> {
    let (largest, at) = largest(l, s)?;
    let what = format!("the plan's whole grid (a split plan runs every trial; at {at})");
    c.check_budget(&largest, g.units() as u64, &what, Keeps::Summaries).map_err(|e| {
        InputError(format!(
            "{e:#} (or narrow the sizes' ranges: --min/--max, or --set plan.sizes[I].min=N / .max=N)"
        ))
        .into()
    })
}

/// `plan --slurm`: the plan's grid as a [`shard::Work`].
pub(super) fn work(
    c: &Common,
    l: &Loaded,
    s: &Setup,
    o: &PlanOpts,
    dir: Option<&Path>,
) -> anyhow::Result<shard::Work> {
    let g = Grid::new(s)?;
    let per_run = check_grid(c, l, s, &g)?;
    let report_dir = c.out_dir(&l.name, "-plan");
    Ok(shard::Work {
        identity: identity(l, o, &g, 0),
        invocation: shard::invocation(c, Some(o.clone())),
        per_run,
        labels: (0..g.units()).map(|u| g.label(s, u)).collect(),
        shards_dir: shard::shards_dir(dir, &report_dir),
        report_dir,
    })
}

/// `plan --shard K/N`: this shard's runs of the grid (a failed run is recorded and the
/// others run on), into its shard file. A worker keeps the last trial's scenario it built
/// for the next run of the same trial.
pub(super) fn run_shard(
    c: &Common,
    l: &Loaded,
    s: &Setup,
    o: &PlanOpts,
    spec: ShardSpec,
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    let g = Grid::new(s)?;
    check_grid(c, l, s, &g)?;
    let units: Vec<usize> = spec.units(g.units()).collect();
    let sdir = shard::shards_dir(dir, &c.out_dir(&l.name, "-plan"));
    let bar = count_bar(c.bars(), units.len() as u64, &format!("{} plan, shard {spec}", l.name));
    let t0 = std::time::Instant::now();
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    let threads = ordered::threads(c.jobs, units.len());
    ordered::in_order_with(
        threads,
        units.len(),
        ordered::window(threads),
        || None::<(usize, Loaded)>,
        |cache, i| -> anyhow::Result<reports::Summary> {
            let (sched, sizes, rep) = g.decode(units[i]);
            let trial = units[i] / g.replications;
            if cache.as_ref().is_none_or(|(t, _)| *t != trial) {
                *cache = Some((trial, trial_point(l, s, g.schedulers[sched], &sizes)?));
            }
            let point = &cache.as_ref().expect("built above").1;
            let summary = summarize(point, point.replication(rep));
            bar.inc(1);
            summary
        },
        |i, outcome| {
            let (unit, label) = (units[i], g.label(s, units[i]));
            match outcome {
                Ok(summary) => results.push(shard::UnitResult { unit, label, summary, input: None }),
                Err(e) => failures.push(shard::UnitFailure { unit, label, error: format!("{e:#}") }),
            }
            Ok::<(), anyhow::Error>(())
        },
    )?;
    bar.finish_and_clear();
    let file = shard::ShardFile {
        identity: identity(l, o, &g, spec.n),
        shard: spec.k,
        invocation: shard::invocation(c, Some(o.clone())),
        host: shard::host(),
        wall_s: t0.elapsed().as_secs_f64(),
        results,
        failures,
        first_text: None,
    };
    shard::save(c, &sdir, &file)
}

/// `lvsim merge` of a plan: each scheduler's search replayed over the stored summaries,
/// then the report the local plan writes.
pub(super) fn merged(c: &Common, gathered: shard::Gathered) -> anyhow::Result<()> {
    let o = gathered.invocation.plan.clone().unwrap_or_default();
    let l = c.load(&[])?;
    let s = setup(&l, &o)?;
    let g = Grid::new(&s)?;
    let runs = &gathered.summaries;
    if runs.len() != g.units() {
        return Err(InputError(format!(
            "the shards hold {} run(s) of {}'s plan, whose grid has {}",
            runs.len(),
            l.name,
            g.units()
        ))
        .into());
    }
    let mut searched = Vec::with_capacity(g.schedulers.len());
    for (i, &sched) in g.schedulers.iter().enumerate() {
        let mut oracle = |sizes: &[u32]| {
            let at = g.first_unit(i, sizes);
            judge(&s, sched, sizes, runs[at..at + g.replications].to_vec())
        };
        searched.push(search::search(&s.space, &mut oracle, &|t: &PlanTrial| t.meets)?);
    }
    write(c, &l, &s, sorted(searched))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(ranges: Vec<(u32, u32)>, schedulers: usize, replications: usize) -> Grid {
        let points = ranges.iter().map(|&(lo, hi)| (hi - lo) as usize + 1).product();
        Grid { ranges, points, replications, schedulers: SchedulerKind::ALL[..schedulers].to_vec() }
    }

    #[test]
    fn units_decode_into_every_trial_run_once_in_grid_order() {
        let g = grid(vec![(1, 3), (2, 5)], 2, 3);
        assert_eq!(g.units(), 2 * 12 * 3);
        let mut last: Option<(usize, Vec<u32>, u32)> = None;
        for u in 0..g.units() {
            let (sched, sizes, rep) = g.decode(u);
            assert_eq!(g.first_unit(sched, &sizes) + rep as usize, u, "unit {u}");
            assert!((1..=3).contains(&sizes[0]) && (2..=5).contains(&sizes[1]), "{sizes:?}");
            // Replications fastest, then the last group, then the first, then schedulers.
            if let Some(prev) = &last {
                assert!((prev.0, &prev.1, prev.2) < (sched, &sizes, rep), "{prev:?} then {u}");
            }
            last = Some((sched, sizes, rep));
        }
        assert_eq!(g.decode(0), (0, vec![1, 2], 0));
        assert_eq!(g.decode(g.units() - 1), (1, vec![3, 5], 2));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn a_size_outside_the_grid_is_a_bug_not_a_unit() {
        grid(vec![(2, 4)], 1, 1).first_unit(0, &[5]);
    }
}
