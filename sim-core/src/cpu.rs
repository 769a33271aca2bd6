//! A real server's processors: `cores` cores of relative `speed`, shared by the jobs in
//! service (processor sharing), optionally with a bounded number of jobs in service (a
//! worker pool, FCFS admission) and a bounded backlog (refusals when full).
//!
//! With `m` jobs in service each is served at `speed * min(1, cores / m)` [s of work per
//! s]. Unlimited in-service jobs is egalitarian processor sharing; `max_in_service = c`
//! with `cores = c` is FCFS with c slots (LVS-REF-1's `fcfs`).
//!
//! Two kinds of background work compete with the jobs: CPU-bound tasks
//! ([`Cpu::set_background`]) count as jobs that never finish (`m` includes them), so they
//! take what processor sharing gives them and the cores look fully busy; a background
//! load ([`Cpu::set_background_load`], in millicores) runs ahead of the jobs (another
//! service on the host, a neighbour's steal time): the jobs share the cores it leaves.
//!
//! Faults ([`Fault`]): a slow host runs at a fraction of its speed; a hung service makes
//! no progress at all (its jobs stay, new ones are admitted, nothing completes, its cores
//! look idle but for the background work); a crashed host loses every job, which
//! [`Cpu::crash`] hands back, and does nothing until it recovers. [`Cpu::recover`] ends
//! any of them.
//!
//! # How
//! A virtual time `V` [ns of work at speed 1] counts the work each job in service has
//! received since the CPU last emptied; it grows at the per-job rate. A job started at
//! `V0` with demand `d` finishes when `V` reaches `V0 + d`, so the jobs sit in a min-heap
//! by that finish value (ties in arrival order) and only the heap's top decides the next
//! completion: O(log n) per arrival or completion, no allocation once the heap and the
//! backlog have grown to their peak. `V` is an `f64` (IEEE operations are deterministic)
//! reset to zero whenever the CPU empties; every time stays an integer. The next
//! completion is rounded up to the next ns, and a completing job sets `V` to at least its
//! finish value, so rounding never leaves a job a hair short of done.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use lvs_sched::Time;

/// Processor parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuConfig {
    /// Number of cores (>= 1).
    pub cores: u32,
    /// Work per second per core (1.0 = the reference speed in which demands are given).
    pub speed: f64,
    /// At most this many jobs in service (the worker pool); `None` = all (pure PS).
    pub max_in_service: Option<u32>,
    /// At most this many jobs waiting for a worker; `None` = unlimited. A job arriving
    /// when the backlog is full is refused.
    pub backlog: Option<u32>,
}

/// What happened to an arriving job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It is in service.
    Started,
    /// It waits for a worker.
    Queued,
    /// The backlog is full.
    Refused,
}

/// A fault of the host or of its service, as its processors see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The host runs at this many thousandths of its speed (1..=1000).
    Slow(u32),
    /// The service makes no progress: jobs stay where they are, none completes.
    Hung,
    /// The host is down: it has no jobs, runs nothing, and admits nothing.
    Crashed,
}

/// A real server's processors.
#[derive(Clone, Debug)]
pub struct Cpu {
    cfg: CpuConfig,
    /// Work received by each job in service since the CPU last emptied [ns at speed 1].
    v: f64,
    /// Time up to which `v` and `busy_core_ns` are accounted.
    last_update: Time,
    /// Jobs in service, the first to finish on top.
    in_service: BinaryHeap<InService>,
    /// Jobs waiting for a worker, in arrival order: (job, demand [ns]).
    backlog: VecDeque<(u32, u64)>,
    /// Insertion counter: equal finish values complete in the order they started.
    seq: u64,
    /// Cached next completion.
    next: Option<Time>,
    /// Integral of the busy millicores up to `last_update` [millicore·ns].
    busy_milli_ns: u128,
    /// CPU-bound background tasks sharing the processors with the jobs.
    background: u32,
    /// Millicores a background load takes ahead of the jobs.
    reserved_milli: u32,
    /// The current fault, if any.
    fault: Option<Fault>,
    /// `speed() · task_milli() / 1000` for `task_milli() == rate_milli`: the division
    /// is slow and the busy cores seldom change (a set fault forgets it).
    rate: f64,
    rate_milli: u32,
}

/// A job in service.
#[derive(Clone, Copy, Debug)]
struct InService {
    /// The value of `V` at which it is done [ns at speed 1].
    v_finish: f64,
    seq: u64,
    job: u32,
}

impl PartialEq for InService {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InService {}
impl PartialOrd for InService {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InService {
    // Reversed: BinaryHeap is a max-heap, the smallest (v_finish, seq) must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.v_finish.total_cmp(&self.v_finish).then(other.seq.cmp(&self.seq))
    }
}

impl Cpu {
    /// An idle CPU at time zero. Panics on a config with no cores, a non-positive speed
    /// or no worker at all (validation happens before).
    pub fn new(cfg: CpuConfig) -> Self {
        assert!(cfg.cores >= 1, "a CPU needs at least one core");
        assert!(cfg.speed > 0.0 && cfg.speed.is_finite(), "CPU speed must be positive, not {}", cfg.speed);
        assert!(cfg.max_in_service != Some(0), "a worker pool needs at least one worker");
        Cpu {
            cfg,
            v: 0.0,
            last_update: Time::ZERO,
            in_service: BinaryHeap::new(),
            backlog: VecDeque::new(),
            seq: 0,
            next: None,
            busy_milli_ns: 0,
            background: 0,
            reserved_milli: 0,
            fault: None,
            rate: 0.0,
            rate_milli: u32::MAX,
        }
    }

    /// Its parameters.
    pub fn config(&self) -> &CpuConfig {
        &self.cfg
    }

    /// Job `job` with `demand_ns` of work (nanoseconds at speed 1) arrives at `now`.
    /// May move [`Cpu::next_completion`]. Panics if `now` is past a pending completion
    /// (complete it first) or before the last call.
    pub fn arrive(&mut self, now: Time, job: u32, demand_ns: u64) -> Admission {
        assert!(self.fault != Some(Fault::Crashed), "job {job} arrived at a crashed host at {now}");
        if let Some(next) = self.next {
            assert!(now <= next, "arrival at {now} after the pending completion at {next}");
        }
        self.advance(now);
        let full = self.cfg.max_in_service.is_some_and(|max| self.in_service.len() >= max as usize);
        if full {
            if self.cfg.backlog.is_some_and(|max| self.backlog.len() >= max as usize) {
                return Admission::Refused;
            }
            // The jobs in service are unchanged, and so is the next completion.
            self.backlog.push_back((job, demand_ns));
            return Admission::Queued;
        }
        self.start(job, demand_ns);
        self.reschedule();
        Admission::Started
    }

    /// When the next job in service finishes, if any.
    pub fn next_completion(&self) -> Option<Time> {
        self.next
    }

    /// Called at `now == next_completion()`: removes and returns the finished job and
    /// admits the first waiting one, if any. Panics at any other time.
    pub fn complete(&mut self, now: Time) -> u32 {
        assert!(self.next == Some(now), "Cpu::complete at {now}, but the next completion is {:?}", self.next);
        self.advance(now);
        let done = self.in_service.pop().expect("a pending completion has a job in service");
        // The ceiling on the completion time may leave `v` a hair short: the job is done.
        self.v = self.v.max(done.v_finish);
        if let Some((job, demand_ns)) = self.backlog.pop_front() {
            self.start(job, demand_ns);
        }
        if self.in_service.is_empty() {
            // Keeps `v` to one busy period's work per job, so its precision stays far below
            // a ns (an f64 step is 0.125 ns at 1e15 ns, 11 days of work).
            self.v = 0.0;
        }
        self.reschedule();
        done.job
    }

    /// Jobs in service.
    pub fn in_service(&self) -> u32 {
        self.in_service.len() as u32
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> u32 {
        self.backlog.len() as u32
    }

    /// Busy core-time in `[0, t]` [core·ns], `t` at or after the last call:
    /// the integral of `min(in_service, cores)`. Utilisation over a window is its
    /// difference divided by `cores × window`.
    pub fn busy_core_ns(&self, t: Time) -> u128 {
        let dt = t - self.last_update;
        (self.busy_milli_ns + u128::from(dt.0) * u128::from(self.busy_milli())) / 1000
    }

    /// From `now` on, `n` CPU-bound background tasks share the processors with the jobs
    /// (each as one more job that never finishes; they take no worker slot). May move
    /// [`Cpu::next_completion`]; same preconditions as [`Cpu::arrive`].
    pub fn set_background(&mut self, now: Time, n: u32) {
        if let Some(next) = self.next {
            assert!(now <= next, "background change at {now} after the pending completion at {next}");
        }
        self.advance(now);
        self.background = n;
        self.reschedule();
    }

    /// Background tasks running.
    pub fn background(&self) -> u32 {
        self.background
    }

    /// From `now` on, a background load takes `millicores` (less than all the cores) ahead
    /// of the jobs, which share what is left. Same preconditions as [`Cpu::arrive`].
    pub fn set_background_load(&mut self, now: Time, millicores: u32) {
        assert!(
            millicores < self.cfg.cores.saturating_mul(1000),
            "a background load of {millicores} millicores leaves nothing of {} cores",
            self.cfg.cores
        );
        if let Some(next) = self.next {
            assert!(now <= next, "background change at {now} after the pending completion at {next}");
        }
        self.advance(now);
        self.reserved_milli = millicores;
        self.reschedule();
    }

    /// The current fault, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault
    }

    /// From `now` on the host runs at `permille` thousandths of its speed (1..=1000); the
    /// jobs in service keep the work they have done. Same preconditions as
    /// [`Cpu::arrive`]; replaces any other fault but a crash.
    pub fn slow(&mut self, now: Time, permille: u32) {
        assert!((1..=1000).contains(&permille), "a slow-down to {permille}/1000 of the speed");
        self.set_fault(now, Some(Fault::Slow(permille)));
    }

    /// From `now` on the service hangs: its jobs make no progress (none completes, new
    /// ones are admitted as usual) until [`Cpu::recover`]. Background work goes on.
    pub fn hang(&mut self, now: Time) {
        self.set_fault(now, Some(Fault::Hung));
    }

    /// The host crashes at `now`: every job, in service (in the order they started) then
    /// waiting (in arrival order), is dropped and returned. Until [`Cpu::recover`] nothing
    /// runs (background work included) and no job may arrive.
    pub fn crash(&mut self, now: Time) -> Vec<u32> {
        self.set_fault(now, Some(Fault::Crashed));
        let mut lost: Vec<InService> = self.in_service.drain().collect();
        lost.sort_unstable_by_key(|j| j.seq);
        let mut jobs: Vec<u32> = lost.into_iter().map(|j| j.job).collect();
        jobs.extend(self.backlog.drain(..).map(|(job, _)| job));
        self.v = 0.0;
        self.reschedule();
        jobs
    }

    /// The fault ends at `now`: full speed again, a hung service resumes where it
    /// stopped, a crashed host is back (empty).
    pub fn recover(&mut self, now: Time) {
        self.set_fault(now, None);
    }

    fn set_fault(&mut self, now: Time, fault: Option<Fault>) {
        if let Some(next) = self.next {
            assert!(now <= next, "fault change at {now} after the pending completion at {next}");
        }
        self.advance(now);
        self.fault = fault;
        self.rate_milli = u32::MAX;
        self.reschedule();
    }

    /// The speed of a core now [work per s].
    fn speed(&self) -> f64 {
        match self.fault {
            Some(Fault::Slow(permille)) => self.cfg.speed * f64::from(permille) / 1000.0,
            _ => self.cfg.speed,
        }
    }

    /// No job makes progress (hung or crashed).
    fn stalled(&self) -> bool {
        matches!(self.fault, Some(Fault::Hung | Fault::Crashed))
    }

    /// Runnable tasks: jobs in service (unless hung) and background tasks.
    fn runnable(&self) -> u32 {
        let jobs = if self.stalled() { 0 } else { self.in_service() };
        jobs + self.background
    }

    /// Millicores the runnable tasks use: `min(1000 · runnable, 1000 · cores − load)`.
    fn task_milli(&self) -> u32 {
        let left = self.cfg.cores * 1000 - self.reserved_milli;
        self.runnable().saturating_mul(1000).min(left)
    }

    /// Millicores at work: the tasks' and the background load's; nothing on a crashed
    /// host.
    fn busy_milli(&self) -> u32 {
        if self.fault == Some(Fault::Crashed) {
            return 0;
        }
        self.task_milli() + self.reserved_milli
    }

    /// Brings `v` and the busy integral from `last_update` to `now`.
    fn advance(&mut self, now: Time) {
        let dt = now - self.last_update;
        if dt.0 > 0 {
            if !self.in_service.is_empty() && !self.stalled() {
                // Each of the r runnable tasks gets speed·cores/r [ns of work per ns].
                self.v += dt.0 as f64 * self.rate() / f64::from(self.runnable());
            }
            self.busy_milli_ns += u128::from(dt.0) * u128::from(self.busy_milli());
        }
        self.last_update = now;
    }

    /// The work rate of the busy cores, `speed · cores` [ns of work per ns], as
    /// `speed() * (task_milli() / 1000)` computes it (bit for bit), kept while the busy
    /// millicores stay the same.
    #[inline]
    fn rate(&mut self) -> f64 {
        let milli = self.task_milli();
        if milli != self.rate_milli {
            self.rate_milli = milli;
            self.rate = self.speed() * (f64::from(milli) / 1000.0);
        }
        self.rate
    }

    fn start(&mut self, job: u32, demand_ns: u64) {
        self.seq += 1;
        self.in_service.push(InService { v_finish: self.v + demand_ns as f64, seq: self.seq, job });
    }

    /// Recomputes the next completion from the heap's top, at `last_update`.
    fn reschedule(&mut self) {
        if self.stalled() {
            self.next = None;
            return;
        }
        let Some(v_finish) = self.in_service.peek().map(|top| top.v_finish) else {
            self.next = None;
            return;
        };
        let work = (v_finish - self.v).max(0.0);
        let m = f64::from(self.runnable());
        // Saturates (a demand from a long tail, or at the end of time): the completion
        // then lies beyond the simulator's horizon, which ends the run.
        let wait_ns = crate::dist::ceil_u64(work * m / self.rate());
        self.next = Some(self.last_update + lvs_sched::Duration(wait_ns));
    }
}

#[cfg(test)]
mod tests {
    use lvs_sched::Duration;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn ps(cores: u32) -> CpuConfig {
        CpuConfig { cores, speed: 1.0, max_in_service: None, backlog: None }
    }

    fn fcfs(slots: u32, backlog: Option<u32>) -> CpuConfig {
        CpuConfig { cores: slots, speed: 1.0, max_in_service: Some(slots), backlog }
    }

    /// Completes every job in service and waiting: (job, completion time) in order.
    fn drain(cpu: &mut Cpu) -> Vec<(u32, Time)> {
        let mut done = Vec::new();
        while let Some(t) = cpu.next_completion() {
            done.push((cpu.complete(t), t));
        }
        done
    }

    #[test]
    fn one_job_takes_demand_over_speed() {
        let mut cpu = Cpu::new(CpuConfig { speed: 2.0, ..ps(1) });
        assert_eq!(cpu.next_completion(), None);
        assert_eq!(cpu.arrive(Time(3 * SEC), 7, SEC), Admission::Started);
        assert_eq!((cpu.in_service(), cpu.queued()), (1, 0));
        assert_eq!(drain(&mut cpu), [(7, Time(3 * SEC + SEC / 2))]);
        assert_eq!((cpu.in_service(), cpu.queued()), (0, 0));
    }

    #[test]
    fn two_jobs_share_one_core() {
        let mut cpu = Cpu::new(ps(1));
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.arrive(Time::ZERO, 2, 3 * SEC);
        // Each at 1/2 until job 1 has had 1 s of work at 2 s; job 2 then has 2 s left alone.
        assert_eq!(drain(&mut cpu), [(1, Time(2 * SEC)), (2, Time(4 * SEC))]);
    }

    #[test]
    fn a_job_arriving_midway_slows_the_first() {
        let mut cpu = Cpu::new(ps(1));
        cpu.arrive(Time::ZERO, 1, 3 * SEC);
        assert_eq!(cpu.next_completion(), Some(Time(3 * SEC)));
        // At 1 s job 1 has 2 s left; job 2's 1 s takes 2 s at half speed; then job 1's
        // last 1 s alone.
        cpu.arrive(Time(SEC), 2, SEC);
        assert_eq!(cpu.next_completion(), Some(Time(3 * SEC)));
        assert_eq!(drain(&mut cpu), [(2, Time(3 * SEC)), (1, Time(4 * SEC))]);

        // Equal remaining work: both finish together, the earlier one first.
        cpu.arrive(Time(10 * SEC), 3, 2 * SEC);
        cpu.arrive(Time(11 * SEC), 4, SEC);
        assert_eq!(drain(&mut cpu), [(3, Time(13 * SEC)), (4, Time(13 * SEC))]);
    }

    #[test]
    fn equal_finish_values_complete_in_arrival_order_not_job_order() {
        let mut cpu = Cpu::new(ps(1));
        for job in [9, 2, 5] {
            cpu.arrive(Time::ZERO, job, 1);
        }
        // 3 ns for 3 jobs of 1 ns at a rate of 1/3.
        assert_eq!(drain(&mut cpu), [(9, Time(3)), (2, Time(3)), (5, Time(3))]);
    }

    #[test]
    fn two_cores_three_jobs() {
        let mut cpu = Cpu::new(ps(2));
        for (job, demand) in [(1, SEC), (2, 2 * SEC), (3, 3 * SEC)] {
            assert_eq!(cpu.arrive(Time::ZERO, job, demand), Admission::Started);
        }
        // 2 cores for 3 jobs: 2/3 each until job 1 is done at 1.5 s; then a core each:
        // job 2 has 1 s left, job 3 has 2 s.
        assert_eq!(cpu.busy_core_ns(Time(SEC)), u128::from(2 * SEC));
        let done = drain(&mut cpu);
        assert_eq!(done, [(1, Time(3 * SEC / 2)), (2, Time(5 * SEC / 2)), (3, Time(7 * SEC / 2))]);
        // 2 cores busy to 2.5 s, 1 core to 3.5 s: the 6 s of work.
        assert_eq!(cpu.busy_core_ns(Time(10 * SEC)), u128::from(6 * SEC));
    }

    #[test]
    fn one_worker_serves_in_arrival_order() {
        let mut cpu = Cpu::new(fcfs(1, None));
        assert_eq!(cpu.arrive(Time::ZERO, 10, 3 * SEC), Admission::Started);
        assert_eq!(cpu.arrive(Time::ZERO, 11, SEC), Admission::Queued);
        assert_eq!(cpu.arrive(Time(SEC), 12, 2 * SEC), Admission::Queued);
        assert_eq!((cpu.in_service(), cpu.queued()), (1, 2));
        // Job 11 is shorter but waits its turn.
        assert_eq!(drain(&mut cpu), [(10, Time(3 * SEC)), (11, Time(4 * SEC)), (12, Time(6 * SEC))]);
    }

    #[test]
    fn a_full_backlog_refuses() {
        let mut cpu = Cpu::new(fcfs(1, Some(1)));
        assert_eq!(cpu.arrive(Time::ZERO, 1, SEC), Admission::Started);
        assert_eq!(cpu.arrive(Time::ZERO, 2, SEC), Admission::Queued);
        assert_eq!(cpu.arrive(Time::ZERO, 3, SEC), Admission::Refused);
        assert_eq!((cpu.in_service(), cpu.queued()), (1, 1));
        assert_eq!(cpu.complete(Time(SEC)), 1);
        // Job 2 took the worker: room again in the backlog.
        assert_eq!((cpu.in_service(), cpu.queued()), (1, 0));
        assert_eq!(cpu.arrive(Time(SEC), 4, SEC), Admission::Queued);
        assert_eq!(drain(&mut cpu), [(2, Time(2 * SEC)), (4, Time(3 * SEC))]);

        // Without a worker limit nobody waits, so a zero backlog refuses nobody.
        let mut cpu = Cpu::new(CpuConfig { backlog: Some(0), ..ps(1) });
        for job in 0..5 {
            assert_eq!(cpu.arrive(Time::ZERO, job, SEC), Admission::Started);
        }
    }

    #[test]
    fn busy_core_time_counts_busy_cores_only() {
        let mut cpu = Cpu::new(ps(4));
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.arrive(Time::ZERO, 2, 2 * SEC);
        assert_eq!(cpu.busy_core_ns(Time(SEC / 2)), u128::from(SEC));
        assert_eq!(drain(&mut cpu), [(1, Time(SEC)), (2, Time(2 * SEC))]);
        // Idle from 2 s to 5 s, then one core for 1 s.
        cpu.arrive(Time(5 * SEC), 3, SEC);
        assert_eq!(cpu.busy_core_ns(Time(5 * SEC)), u128::from(3 * SEC));
        drain(&mut cpu);
        assert_eq!(cpu.busy_core_ns(Time(100 * SEC)), u128::from(4 * SEC));
    }

    #[test]
    fn background_tasks_take_their_share() {
        let mut cpu = Cpu::new(ps(1));
        // Idle but for one background task: the core is busy, nothing completes.
        cpu.set_background(Time::ZERO, 1);
        assert_eq!(cpu.next_completion(), None);
        assert_eq!(cpu.busy_core_ns(Time(SEC)), u128::from(SEC));
        // A 1 s job shares the core with it: half speed, done at 1 + 2 s.
        cpu.arrive(Time(SEC), 1, SEC);
        assert_eq!(cpu.next_completion(), Some(Time(3 * SEC)));
        // At 2 s (0.5 s of work done) the task ends: the last 0.5 s alone.
        cpu.set_background(Time(2 * SEC), 0);
        assert_eq!(drain(&mut cpu), [(1, Time(5 * SEC / 2))]);
        assert_eq!(cpu.busy_core_ns(Time(10 * SEC)), u128::from(5 * SEC / 2));

        // Two cores, two tasks and two jobs: 4 runnable on 2 cores, each at half speed.
        let mut cpu = Cpu::new(ps(2));
        cpu.set_background(Time::ZERO, 2);
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.arrive(Time::ZERO, 2, SEC);
        assert_eq!(drain(&mut cpu), [(1, Time(2 * SEC)), (2, Time(2 * SEC))]);
        // A worker pool: the tasks take no worker slot.
        let mut cpu = Cpu::new(fcfs(1, Some(0)));
        cpu.set_background(Time::ZERO, 3);
        assert_eq!(cpu.arrive(Time::ZERO, 1, SEC), Admission::Started);
        assert_eq!(drain(&mut cpu), [(1, Time(4 * SEC))]);
    }

    #[test]
    fn a_background_load_runs_ahead_of_the_jobs() {
        // 2 cores, 1.5 taken: one 1 s job runs on the half core left, done in 2 s; two
        // share it.
        let mut cpu = Cpu::new(ps(2));
        cpu.set_background_load(Time::ZERO, 1500);
        assert_eq!(cpu.busy_core_ns(Time(SEC)), u128::from(3 * SEC / 2));
        cpu.arrive(Time(SEC), 1, SEC);
        cpu.arrive(Time(SEC), 2, SEC);
        assert_eq!(drain(&mut cpu), [(1, Time(5 * SEC)), (2, Time(5 * SEC))]);
        // Busy: 1.5 cores all along plus the jobs' 0.5 for 4 s.
        assert_eq!(cpu.busy_core_ns(Time(5 * SEC)), u128::from(15 * SEC / 2 + 2 * SEC));
        // Below the cores left, jobs run at full speed.
        let mut cpu = Cpu::new(ps(2));
        cpu.set_background_load(Time::ZERO, 500);
        cpu.arrive(Time::ZERO, 1, SEC);
        assert_eq!(drain(&mut cpu), [(1, Time(SEC))]);
        cpu.set_background_load(Time(SEC), 0);
        assert_eq!(cpu.busy_core_ns(Time(2 * SEC)), u128::from(3 * SEC / 2));
    }

    #[test]
    fn a_slow_host_runs_at_a_fraction_of_its_speed() {
        let mut cpu = Cpu::new(ps(1));
        cpu.slow(Time::ZERO, 500);
        assert_eq!(cpu.fault(), Some(Fault::Slow(500)));
        // 1 s of work at half speed: 2 s.
        cpu.arrive(Time::ZERO, 1, SEC);
        assert_eq!(cpu.next_completion(), Some(Time(2 * SEC)));
        // At 1 s (0.5 s of work done) full speed again: the other 0.5 s takes 0.5 s.
        cpu.recover(Time(SEC));
        assert_eq!(cpu.fault(), None);
        assert_eq!(drain(&mut cpu), [(1, Time(3 * SEC / 2))]);
        // Slowed midway, to 1/20: 0.5 s done at full speed, the rest takes 0.5 × 20 s.
        cpu.arrive(Time(10 * SEC), 2, SEC);
        cpu.slow(Time(21 * SEC / 2), 50);
        assert_eq!(drain(&mut cpu), [(2, Time(21 * SEC / 2 + 10 * SEC))]);
        // The cores are busy all along (the work is slower, not the cores idle).
        assert_eq!(cpu.busy_core_ns(Time(21 * SEC)), u128::from(3 * SEC / 2 + 21 * SEC / 2));
    }

    #[test]
    fn a_hung_service_keeps_its_jobs_and_resumes_where_it_stopped() {
        let mut cpu = Cpu::new(fcfs(1, Some(1)));
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.hang(Time(SEC / 4));
        assert_eq!(cpu.next_completion(), None);
        // Admission goes on as usual: one in service, one waiting, then refusals.
        assert_eq!(cpu.arrive(Time(SEC), 2, SEC), Admission::Queued);
        assert_eq!(cpu.arrive(Time(SEC), 3, SEC), Admission::Refused);
        assert_eq!((cpu.in_service(), cpu.queued()), (1, 1));
        // Recovered at 5 s: job 1 has 0.75 s left, then job 2's 1 s.
        cpu.recover(Time(5 * SEC));
        assert_eq!(drain(&mut cpu), [(1, Time(23 * SEC / 4)), (2, Time(27 * SEC / 4))]);
        // Busy 0.25 s before the hang and 1.75 s after; the hang itself looks idle.
        assert_eq!(cpu.busy_core_ns(Time(10 * SEC)), u128::from(2 * SEC));

        // Background tasks go on while the service hangs: they get the whole core.
        let mut cpu = Cpu::new(ps(1));
        cpu.set_background(Time::ZERO, 1);
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.hang(Time::ZERO);
        assert_eq!(cpu.busy_core_ns(Time(SEC)), u128::from(SEC));
        cpu.recover(Time(SEC));
        // Shared with the task again: 1 s of work at 1/2.
        assert_eq!(drain(&mut cpu), [(1, Time(3 * SEC))]);
    }

    #[test]
    fn a_crash_returns_every_job_and_recovery_starts_empty() {
        let mut cpu = Cpu::new(fcfs(2, None));
        for job in [7, 3, 9, 4] {
            cpu.arrive(Time::ZERO, job, SEC);
        }
        // In service in the order they started (7, 3), then the backlog (9, 4).
        assert_eq!(cpu.crash(Time(SEC / 2)), [7, 3, 9, 4]);
        assert_eq!(cpu.fault(), Some(Fault::Crashed));
        assert_eq!((cpu.in_service(), cpu.queued(), cpu.next_completion()), (0, 0, None));
        // Down: nothing runs, background work included.
        cpu.set_background_load(Time(SEC), 500);
        assert_eq!(cpu.busy_core_ns(Time(3 * SEC)), u128::from(SEC));
        cpu.recover(Time(3 * SEC));
        assert_eq!(cpu.arrive(Time(3 * SEC), 5, SEC), Admission::Started);
        assert_eq!(drain(&mut cpu), [(5, Time(4 * SEC))]);
        // 2 cores for 0.5 s, then the load's 0.5 core and the job's core for 1 s.
        assert_eq!(cpu.busy_core_ns(Time(4 * SEC)), u128::from(SEC + 3 * SEC / 2));
    }

    #[test]
    #[should_panic(expected = "arrived at a crashed host")]
    fn a_crashed_host_admits_nothing() {
        let mut cpu = Cpu::new(ps(1));
        cpu.crash(Time::ZERO);
        cpu.arrive(Time(1), 1, SEC);
    }

    #[test]
    fn a_zero_demand_job_completes_at_once() {
        let mut cpu = Cpu::new(ps(1));
        cpu.arrive(Time(5), 1, 0);
        assert_eq!(drain(&mut cpu), [(1, Time(5))]);
    }

    #[test]
    #[should_panic(expected = "but the next completion is Some(Time(1000000000))")]
    fn completing_at_the_wrong_time_panics() {
        let mut cpu = Cpu::new(ps(1));
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.complete(Time(SEC - 1));
    }

    #[test]
    #[should_panic(expected = "after the pending completion")]
    fn arriving_after_a_missed_completion_panics() {
        let mut cpu = Cpu::new(ps(1));
        cpu.arrive(Time::ZERO, 1, SEC);
        cpu.arrive(Time(SEC + 1), 2, SEC);
    }

    /// Mean response [s] of jobs after a warm-up, with Poisson arrivals at `lambda` [1/s]
    /// and exponential demands of mean `mean_demand_s`, from a seeded generator. Also
    /// checks work conservation: the busy core-time is the total demand, give or take the
    /// 1 ns rounding of each completion.
    fn mean_response_s(cfg: CpuConfig, lambda: f64, mean_demand_s: f64, jobs: u32, seed: u64) -> f64 {
        const WARM_UP: u32 = 1_000;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut exp_ns = |mean_s: f64| (-(1.0 - rng.random::<f64>()).ln() * mean_s * 1e9).round() as u64;
        let mut cpu = Cpu::new(cfg);
        let mut arrived_at = Vec::with_capacity(jobs as usize);
        let mut next_arrival = Time(exp_ns(1.0 / lambda));
        let (mut total_demand_ns, mut sum_response_ns, mut done) = (0u128, 0u128, 0u32);
        let mut last_completion = Time::ZERO;
        while done < jobs {
            let arrivals_left = (arrived_at.len() as u32) < jobs;
            match cpu.next_completion() {
                Some(t) if !arrivals_left || t <= next_arrival => {
                    let job = cpu.complete(t);
                    last_completion = t;
                    if job >= WARM_UP {
                        sum_response_ns += u128::from((t - arrived_at[job as usize]).0);
                    }
                    done += 1;
                }
                _ => {
                    let demand_ns = exp_ns(mean_demand_s);
                    total_demand_ns += u128::from(demand_ns);
                    let admission = cpu.arrive(next_arrival, arrived_at.len() as u32, demand_ns);
                    assert_ne!(admission, Admission::Refused);
                    arrived_at.push(next_arrival);
                    next_arrival += Duration(exp_ns(1.0 / lambda));
                }
            }
        }
        let busy = cpu.busy_core_ns(last_completion) as f64 * cfg.speed;
        let slack = f64::from(cfg.cores) * f64::from(2 * jobs);
        assert!(
            (busy - total_demand_ns as f64).abs() <= slack,
            "work not conserved: {busy} vs {total_demand_ns}"
        );
        sum_response_ns as f64 / f64::from(jobs - WARM_UP) / 1e9
    }

    // Tolerances. Responses at ρ = 0.8 are strongly correlated (busy periods), so the mean
    // of 2e5 of them varies much more than sd(R)/sqrt(n) = 0.1 ms. Over seeds 1..=30 this
    // loop's mean had a standard deviation of 0.67 ms (M/M/1-PS), 0.69 ms (M/M/1-FCFS) and
    // 0.17 ms (M/M/4), centred on the theory within 0.16 ms and 0.05 ms. The tolerances,
    // 3 ms and 0.7 ms, are about 4 standard deviations: a wrong rate or a lost job shifts the
    // mean by far more (ρ = 0.81 instead of 0.8 gives 52.6 ms).

    #[test]
    fn mm1_processor_sharing_mean_response() {
        let r = mean_response_s(ps(1), 80.0, 0.010, 200_000, 1);
        assert!((r - 0.050).abs() < 0.003, "M/M/1-PS mean response {r} s, expected 0.050 s");
    }

    #[test]
    fn mm1_fcfs_mean_response() {
        let r = mean_response_s(fcfs(1, None), 80.0, 0.010, 200_000, 2);
        assert!((r - 0.050).abs() < 0.003, "M/M/1-FCFS mean response {r} s, expected 0.050 s");
    }

    #[test]
    fn mm4_fcfs_mean_response_is_erlang_c() {
        let r = mean_response_s(fcfs(4, None), 320.0, 0.010, 200_000, 3);
        assert!((r - 0.017455).abs() < 0.0007, "M/M/4 mean response {r} s, expected 0.017455 s");
    }
}
