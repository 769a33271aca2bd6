//! What the console shows, taken from the daemon loop's state in one go.

use feedbackd_proto::master::{AgentStatus, StatusRow};

/// The director as the console shows it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Bumped whenever anything shown changed.
    pub version: u64,
    /// Every real server the master knows.
    pub rows: Vec<StatusRow>,
    /// Every agent.
    pub agents: Vec<AgentStatus>,
}
