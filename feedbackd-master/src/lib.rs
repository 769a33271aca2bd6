//! `feedbackd-master`: runs on the director, accepts agents and rewrites the IPVS weights in
//! the kernel (generic netlink by default), adding real servers on the fly.
//!
//! # Module map
//! - [`agentcheck`]: agent-check agents polled (`--agent-check`, HAProxy's protocol), their
//!   answers fed to the master as a polled agent's reports.
//! - [`config`]: command line and configuration file.
//! - [`daemon`]: the tokio loop around `feedbackd_proto::master::Master`.
//! - [`ipvs`]: the kernel's IPVS table through generic netlink (`ipvs::netlink`, its pure
//!   codec in `ipvs::netlink::codec`), the `ipvsadm` command, or a dry run; one
//!   enum-dispatched `Backend`. `docs/feedbackd-backends.md` describes them.
//! - [`keys`]: the keys file read and guarded (`--keys-file`, `--insecure`), `keygen` and
//!   `add-agent`.
//! - [`record`]: the journal file (`--record`): append, `O_NOFOLLOW`, mode 0600, rotation,
//!   reopened on SIGHUP.
//! - [`console`]: the director's console over HTTPS (docs/console.md): its requests to the
//!   daemon loop, pages, users, sessions, audit.
//! - [`changes`]: the console's changes applied in the daemon loop (server overrides through
//!   the master, thresholds and virtual services through the backend), and restored at
//!   start-up from [`state`].
//! - [`state`]: the operator's state file (`--state-file`): console-managed services and
//!   overrides, written atomically.
//! - [`status`]: the status table, Prometheus metrics and their HTTP server.
//! - `src/bin/feedbackd-ipvs-check/`: a test and benchmark tool for the backends, run in
//!   the VM by `tests/ipvs_backends.rs` (`probe`) and by hand (`bench`); not installed.
//!
//! # Invariants
//! - Protocol and weight law live in `feedbackd-proto` and `lvs-sched`; this crate only
//!   drives them with tokio, TCP and netlink.
//! - Never lets an unauthenticated or malformed report change a weight.
//! - Never flushes the kernel table: it adopts existing entries, and leaves the table as
//!   it is on exit.

pub mod agentcheck;
pub mod changes;
pub mod config;
pub mod console;
pub mod daemon;
pub mod ipvs;
pub mod keys;
pub mod record;
pub mod state;
pub mod status;

/// Logs one line to stderr, prefixed `feedbackd-master:` (systemd's journal adds the time).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("feedbackd-master: {}", format_args!($($arg)*))
    };
}
