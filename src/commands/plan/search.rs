//! Which sizes to simulate: the search over a plan's groups for one scheduler.
//!
//! Every search assumes that more of any group never hurts (meeting the SLO is monotone
//! in each size), and each trial is a full replicated simulation, so it runs as few as it
//! can:
//!
//! - **One group: bisection.** The largest size first (if even that fails, the scheduler
//!   cannot meet the SLO in the range), then halve the interval between a failing and a
//!   meeting size: at most ⌈log2(range)⌉ + 1 trials.
//! - **Two groups: a staircase walk over the monotone frontier.** For each size `x` of
//!   the first group, the least meeting size of the second, `y(x)`, does not grow with
//!   `x`: the frontier is a staircase. Columns are taken in increasing `x`; the first
//!   column that meets is found by trying the top (`x`, most `y`): one trial per failing
//!   column; it is then bisected. In each later column `y(x-1)` is known to meet, so the
//!   walk only goes down from it: one step, then galloping (2, 4, ...) and bisecting to
//!   the first failure. It
//!   walks the staircase, not the grid: at most `2·range_x + range_y` trials, far fewer
//!   when the steps are tall, and fewer again with the cost bound: no point dearer than
//!   the cheapest meeting point found is tried, and the walk stops once the cheapest
//!   point still ahead (`x`, fewest `y`) costs more.
//! - **More groups**: every size of the first in increasing order, a search of the rest
//!   for each, stopping when even the fewest of the rest cost more than the best found.
//!
//! The search is a function of a trial oracle (`sizes -> meets`), so it is tested here
//! against brute force without simulating anything.

/// What is sized: one inclusive range and unit cost per group.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// `(min, max)` per group, `1 <= min <= max`.
    pub ranges: Vec<(u32, u32)>,
    /// Cost of one unit, per group (`>= 0`).
    pub costs: Vec<f64>,
}

impl Space {
    /// Σ size × cost.
    pub fn cost(&self, sizes: &[u32]) -> f64 {
        sizes.iter().zip(&self.costs).map(|(&n, c)| f64::from(n) * c).sum()
    }

    /// Points of the full grid (saturating: a hostile range cannot overflow it).
    pub fn grid_points(&self) -> u64 {
        self.ranges.iter().fold(1, |n, r| n.saturating_mul(len(r)))
    }

    /// Most trials the search may run (for the budget and the progress bar; saturating).
    pub fn max_trials(&self) -> u64 {
        match self.ranges.as_slice() {
            [] => 0,
            [r] => (len(r) as f64).log2().ceil() as u64 + 1,
            // Per column: the top, and at most (drop + 2) steps down.
            [head @ .., a, b] => head
                .iter()
                .fold(1u64, |n, r| n.saturating_mul(len(r)))
                .saturating_mul(len(a).saturating_mul(2).saturating_add(len(b))),
        }
    }

    /// How the search goes, in words.
    pub fn method(&self) -> &'static str {
        match self.ranges.len() {
            1 => "bisection, largest size first",
            2 => "a staircase walk down the monotone frontier",
            _ => "a staircase walk over the last two groups for each size of the others",
        }
    }
}

/// Sizes in an inclusive range.
fn len(&(lo, hi): &(u32, u32)) -> u64 {
    u64::from(hi - lo) + 1
}

/// The search's state for one scheduler: the oracle, the trials in the order run and the
/// cheapest meeting cost so far.
struct Walk<'a, T, E> {
    space: &'a Space,
    run: &'a mut dyn FnMut(&[u32]) -> Result<T, E>,
    meets: &'a dyn Fn(&T) -> bool,
    trials: Vec<(Vec<u32>, T)>,
    best: f64,
}

/// Runs the search; returns every trial as `(sizes, result)`, in the order run.
pub fn search<T, E>(
    space: &Space,
    run: &mut dyn FnMut(&[u32]) -> Result<T, E>,
    meets: &dyn Fn(&T) -> bool,
) -> Result<Vec<(Vec<u32>, T)>, E> {
    let mut w = Walk { space, run, meets, trials: Vec::new(), best: f64::INFINITY };
    match space.ranges.len() {
        0 => {}
        1 => w.bisect()?,
        _ => w.nested(&mut Vec::new())?,
    }
    Ok(w.trials)
}

impl<T, E> Walk<'_, T, E> {
    fn trial(&mut self, sizes: Vec<u32>) -> Result<bool, E> {
        let t = (self.run)(&sizes)?;
        let ok = (self.meets)(&t);
        if ok {
            self.best = self.best.min(self.space.cost(&sizes));
        }
        self.trials.push((sizes, t));
        Ok(ok)
    }

    fn bisect(&mut self) -> Result<(), E> {
        let (min, max) = self.space.ranges[0];
        if !self.trial(vec![max])? {
            return Ok(());
        }
        // Invariant: `lo` fails (or is below the range), `hi` meets.
        let (mut lo, mut hi) = (min - 1, max);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.trial(vec![mid])? { hi = mid } else { lo = mid }
        }
        Ok(())
    }

    /// Groups before the last two: each size in turn (the prefix grows by one).
    fn nested(&mut self, prefix: &mut Vec<u32>) -> Result<(), E> {
        let k = self.space.ranges.len();
        if prefix.len() + 2 == k {
            return self.staircase(prefix);
        }
        let (lo, hi) = self.space.ranges[prefix.len()];
        for n in lo..=hi {
            prefix.push(n);
            let rest_min: Vec<u32> = self.space.ranges[prefix.len()..].iter().map(|r| r.0).collect();
            let floor = self.space.cost(&[prefix.as_slice(), &rest_min].concat());
            let result = if floor > self.best { Ok(()) } else { self.nested(prefix) };
            prefix.pop();
            result?;
            if floor > self.best {
                break;
            }
        }
        Ok(())
    }

    /// The largest `y` in `lo..=hi` whose point costs no more than the best found (cost
    /// grows with `y`): bisection, so a wide range costs nothing to scan.
    fn afford(&self, at: &dyn Fn(u32) -> Vec<u32>, lo: u32, hi: u32) -> Option<u32> {
        let ok = |y: u32| self.space.cost(&at(y)) <= self.best;
        if !ok(lo) {
            return None;
        }
        // Invariant: `a` is affordable; everything above `b` is not (or is out of range).
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a).div_ceil(2);
            if ok(mid) { a = mid } else { b = mid - 1 }
        }
        Some(a)
    }

    /// The staircase over the last two groups, the others fixed at `prefix`: columns of
    /// the first in increasing order, each searched for its least meeting size of the
    /// second, which bounds the next column's from above.
    fn staircase(&mut self, prefix: &[u32]) -> Result<(), E> {
        let ((xlo, xhi), (ylo, _)) = (self.space.ranges[prefix.len()], self.space.ranges[prefix.len() + 1]);
        let mut known = None;
        for x in xlo..=xhi {
            if self.space.cost(&[prefix, &[x, ylo]].concat()) > self.best {
                break; // everything still ahead costs more than the best found
            }
            known = self.column(prefix, x, known)?;
        }
        Ok(())
    }

    /// The least size of the last group that meets in column `x`, at most `known` (which
    /// meets, by monotonicity, when the previous column met there) and no dearer than the
    /// best found: the top tried first when it is not known to meet, then galloping down
    /// (steps 1, 2, 4, ...) and bisecting. Returns the column's least meeting size, or
    /// `known` when none is found within the cost bound.
    fn column(&mut self, prefix: &[u32], x: u32, known: Option<u32>) -> Result<Option<u32>, E> {
        let (ylo, yhi) = self.space.ranges[prefix.len() + 1];
        let at = |y: u32| [prefix, &[x, y]].concat();
        let Some(top) = self.afford(&at, ylo, known.unwrap_or(yhi)) else { return Ok(known) };
        if Some(top) != known && !self.trial(at(top))? {
            return Ok(known);
        }
        // Invariant: `hi` meets; `lo` fails (or is below the range). Gallop only from a
        // previous column's step (the frontier is expected near it); the first column
        // that meets has no such hint and is bisected outright.
        let (mut lo, mut hi, mut step) = (ylo - 1, top, 1);
        while known.is_some() && hi - lo > 1 {
            let probe = hi.saturating_sub(step).max(lo + 1);
            if self.trial(at(probe))? {
                hi = probe;
                step *= 2;
            } else {
                lo = probe;
                break;
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.trial(at(mid))? { hi = mid } else { lo = mid }
        }
        Ok(Some(hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest meeting point of the full grid (ties: the first in grid order).
    fn brute_force(space: &Space, meets: &dyn Fn(&[u32]) -> bool) -> Option<(f64, Vec<u32>)> {
        let mut points: Vec<Vec<u32>> = vec![Vec::new()];
        for &(lo, hi) in &space.ranges {
            points = points
                .into_iter()
                .flat_map(|p| (lo..=hi).map(move |n| [p.clone(), vec![n]].concat()))
                .collect();
        }
        points
            .into_iter()
            .filter(|p| meets(p))
            .map(|p| (space.cost(&p), p))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    fn run_search(space: &Space, meets: &dyn Fn(&[u32]) -> bool) -> Vec<(Vec<u32>, bool)> {
        let mut oracle = |s: &[u32]| Ok::<bool, ()>(meets(s));
        search(space, &mut oracle, &|t: &bool| *t).unwrap()
    }

    fn cheapest(trials: &[(Vec<u32>, bool)], space: &Space) -> Option<f64> {
        trials.iter().filter(|t| t.1).map(|t| space.cost(&t.0)).min_by(f64::total_cmp)
    }

    #[test]
    fn bisection_finds_the_least_size_and_runs_log_trials() {
        let space = Space { ranges: vec![(1, 64)], costs: vec![1.0] };
        for need in [1, 2, 17, 63, 64] {
            let trials = run_search(&space, &|s| s[0] >= need);
            assert_eq!(cheapest(&trials, &space), Some(f64::from(need)), "need {need}");
            assert!(trials.len() as u64 <= space.max_trials(), "{} trials", trials.len());
            assert_eq!(trials[0].0, vec![64], "the largest first");
        }
        assert_eq!(run_search(&space, &|s| s[0] >= 65).len(), 1, "fails at the largest: stop");
    }

    /// Two groups with a trade-off (capacity x·a + y·b must reach a load, and each group
    /// has a floor of its own), against brute force, for many costs and loads.
    #[test]
    fn the_staircase_finds_the_cheapest_and_walks_less_than_the_grid() {
        let space_for = |cx: f64, cy: f64| Space { ranges: vec![(1, 12), (2, 20)], costs: vec![cx, cy] };
        for (cx, cy) in [(1.0, 1.0), (1.0, 0.25), (3.0, 0.5), (0.5, 2.0), (1.0, 0.0)] {
            for load in [4, 10, 25, 40, 70, 200] {
                let space = space_for(cx, cy);
                let meets = |s: &[u32]| s[0] * 3 + s[1] >= load && s[0] >= load / 20 && s[1] >= 2 + load / 30;
                let trials = run_search(&space, &meets);
                let want = brute_force(&space, &meets).map(|b| b.0);
                assert_eq!(cheapest(&trials, &space), want, "costs {cx}/{cy}, load {load}");
                assert!(trials.len() as u64 <= space.max_trials(), "{} trials", trials.len());
                assert!((trials.len() as u64) < space.grid_points() / 4, "{} trials", trials.len());
                // Each point is simulated once.
                let mut seen: Vec<_> = trials.iter().map(|t| t.0.clone()).collect();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), trials.len());
            }
        }
    }

    #[test]
    fn tall_steps_are_galloped_down_not_walked() {
        // A database that needs 150 / x cores with x application servers: the frontier drops
        // by tens of cores a column; a one-step walk would need about 200 trials.
        let space = Space { ranges: vec![(1, 4), (1, 200)], costs: vec![10.0, 0.01] };
        let meets = |s: &[u32]| s[0] >= 2 && s[1] * s[0] >= 150;
        let trials = run_search(&space, &meets);
        assert_eq!(cheapest(&trials, &space), brute_force(&space, &meets).map(|b| b.0));
        assert!(trials.len() <= 40, "{} trials: {trials:?}", trials.len());
    }

    #[test]
    fn three_groups_find_the_brute_force_cheapest() {
        let space = Space { ranges: vec![(1, 4), (1, 6), (1, 6)], costs: vec![2.0, 1.0, 0.5] };
        for load in [3, 8, 14, 30] {
            let meets = |s: &[u32]| s[0] * 2 + s[1] + s[2] >= load && s[2] >= 2;
            let trials = run_search(&space, &meets);
            assert_eq!(cheapest(&trials, &space), brute_force(&space, &meets).map(|b| b.0), "load {load}");
            assert!(trials.len() as u64 <= space.max_trials());
        }
    }

    #[test]
    fn hostile_ranges_neither_overflow_nor_scan() {
        let huge = Space { ranges: vec![(1, u32::MAX); 4], costs: vec![1.0; 4] };
        assert_eq!(huge.grid_points(), u64::MAX);
        assert_eq!(huge.max_trials(), u64::MAX);
        // A wide second group with a cheap answer: the cost bound is found by bisection.
        let space = Space { ranges: vec![(1, 3), (1, u32::MAX)], costs: vec![1.0, 1e-9] };
        let trials = run_search(&space, &|s| s[0] >= 2 && s[1] >= 1000);
        assert_eq!(cheapest(&trials, &space), Some(2.0 + 1000.0 * 1e-9));
        assert!(trials.len() < 80, "{}", trials.len());
    }

    #[test]
    fn an_oracle_error_stops_the_search() {
        let space = Space { ranges: vec![(1, 4), (1, 4)], costs: vec![1.0, 1.0] };
        let mut calls = 0;
        let mut oracle = |_: &[u32]| {
            calls += 1;
            if calls == 2 { Err("boom") } else { Ok(false) }
        };
        assert_eq!(search(&space, &mut oracle, &|t: &bool| *t), Err("boom"));
        assert_eq!(calls, 2);
    }
}
