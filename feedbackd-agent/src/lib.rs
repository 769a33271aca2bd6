//! `feedbackd-agent`: runs on each real server, measures its serving capacity (CPU load from
//! `/proc/stat` by default) and reports it to `feedbackd-master` on every configured
//! director. Reads the original `/etc/feedbackd-agent.conf` grammar.
//!
//! # Module map
//! - [`agentcheck`]: HAProxy's agent-check answered on a TCP port (`--agent-check`), from
//!   the sampler's latest sample.
//! - [`load`]: the load modules (cpuload, loadavg, memory, psi, connections, command, file).
//! - [`daemon`]: the sampler and one connection loop per director around
//!   `feedbackd_proto::agent::Agent`; the supervision of those tasks.
//! - [`setup`]: the configuration, modules, key and agent id, checked by rehearsing a
//!   connection: one function for `--check` and the daemon.
//!
//! # Invariants
//! - Protocol logic lives in `feedbackd-proto`; this crate only drives it with tokio,
//!   TCP, signals and load modules.
//! - Never changes IPVS itself.

pub mod agentcheck;
pub mod daemon;
pub mod load;
pub mod setup;

/// Logs one line to stderr, prefixed `feedbackd-agent:` (systemd's journal adds the time).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("feedbackd-agent: {}", format_args!($($arg)*))
    };
}
