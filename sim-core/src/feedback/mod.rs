//! Active feedback in virtual time: simulated feedbackd agents and masters running the
//! daemons' own state machines (`feedbackd_proto::{Agent, Master}`) and weight law.

use feedbackd_proto::journal::{Decision, Record};
use lvs_sched::Time;

/// A journal that cannot be replayed: which line, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("journal record {index}: {message}")]
pub struct ReplayError {
    /// Index of the record at fault.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Replays a live master's journal through the simulator's master: the recorded table,
/// connections, registrations, reports and goodbyes are fed, at their recorded times, to
/// simulated agents over an ideal link; returns the simulated master's decisions with
/// their times, to compare with the journal's own `Decision` records.
pub fn replay(records: &[Record]) -> Result<Vec<(Time, Decision)>, ReplayError> {
    let _ = records;
    todo!("issue 6: replay")
}
