//! Arrival processes of client populations.

use lvs_sched::Time;

use crate::dist::Dist;
use crate::rng::Rng;

/// When a population opens its connections (or sends its UDP flows).
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Poisson arrivals at `rate` [1/s]; the first arrival at Exp(rate) after 0.
    Poisson {
        /// Rate [1/s].
        rate: f64,
    },
    /// Evenly spaced arrivals at `rate` [1/s], the first at 1/rate.
    Constant {
        /// Rate [1/s].
        rate: f64,
    },
    /// On/off bursts: Poisson at `rate` during on periods, silence during off periods;
    /// starts with an on period. Period lengths [s] are drawn from `on` and `off`.
    OnOff {
        /// Rate during an on period [1/s].
        rate: f64,
        /// On-period length [s].
        on: Dist,
        /// Off-period length [s].
        off: Dist,
    },
    /// A Poisson rate that changes over time: `(start, rate [1/s])` steps, the first at
    /// time zero, starts strictly increasing; each rate holds until the next step's start.
    /// A rate of 0 is allowed.
    Schedule {
        /// The steps.
        steps: Vec<(Time, f64)>,
    },
    /// Replay of recorded arrival times (non-decreasing).
    Trace {
        /// The times.
        times: Vec<Time>,
    },
}

/// Why an arrival process is unusable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ArrivalError(pub String);

/// A malformed trace file: the 1-based line and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TraceError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// The state of one population's arrival process.
#[derive(Clone, Debug)]
pub struct Arrivals {
    process: ArrivalProcess,
}

impl Arrivals {
    /// Checks the process's parameters and starts it at time zero.
    pub fn new(process: ArrivalProcess) -> Result<Self, ArrivalError> {
        let _ = &process;
        todo!("helper A")
    }

    /// The next arrival time (non-decreasing from call to call), `None` when a trace or a
    /// schedule ending in rate 0 is exhausted. The caller stops asking at its horizon.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Time> {
        let _ = (rng, &self.process);
        todo!("helper A")
    }
}

/// Parses a CSV trace of arrivals: one arrival per line, the first field its time in
/// seconds since the start (decimal, e.g. `12.5003`); further fields are ignored; blank
/// lines and lines starting with `#` are skipped, and so is a first line whose first field
/// is not a number (a header). Times must be non-decreasing.
pub fn parse_trace_csv(text: &str) -> Result<Vec<Time>, TraceError> {
    let _ = text;
    todo!("helper A")
}
