//! A real server's processors: `cores` cores of relative `speed`, shared by the jobs in
//! service (processor sharing), optionally with a bounded number of jobs in service (a
//! worker pool, FCFS admission) and a bounded backlog (refusals when full).
//!
//! With `m` jobs in service each is served at `speed * min(1, cores / m)` [s of work per
//! s]. Unlimited in-service jobs is egalitarian processor sharing; `max_in_service = c`
//! with `cores = c` is FCFS with c slots (LVS-REF-1's `fcfs`).

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

/// A real server's processors.
#[derive(Clone, Debug)]
pub struct Cpu {
    cfg: CpuConfig,
}

impl Cpu {
    /// An idle CPU at time zero. Panics on a config with no cores or a non-positive speed
    /// (validation happens before).
    pub fn new(cfg: CpuConfig) -> Self {
        Cpu { cfg }
    }

    /// Its parameters.
    pub fn config(&self) -> &CpuConfig {
        &self.cfg
    }

    /// Job `job` with `demand_ns` of work (nanoseconds at speed 1) arrives at `now`.
    /// May move [`Cpu::next_completion`].
    pub fn arrive(&mut self, now: Time, job: u32, demand_ns: u64) -> Admission {
        let _ = (now, job, demand_ns);
        todo!("helper B")
    }

    /// When the next job in service finishes, if any.
    pub fn next_completion(&self) -> Option<Time> {
        todo!("helper B")
    }

    /// Called at `now == next_completion()`: removes and returns the finished job and
    /// admits the first waiting one, if any.
    pub fn complete(&mut self, now: Time) -> u32 {
        let _ = now;
        todo!("helper B")
    }

    /// Jobs in service.
    pub fn in_service(&self) -> u32 {
        todo!("helper B")
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> u32 {
        todo!("helper B")
    }

    /// Busy core-time in `[0, t]` [core·ns], `t` at or after the last call:
    /// the integral of `min(in_service, cores)`. Utilisation over a window is its
    /// difference divided by `cores × window`.
    pub fn busy_core_ns(&self, t: Time) -> u128 {
        let _ = t;
        todo!("helper B")
    }
}
