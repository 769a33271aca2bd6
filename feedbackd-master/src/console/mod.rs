//! The director's console: a live monitor and configuration tool served over HTTPS to
//! authenticated users (docs/console.md).
//!
//! The HTTP side (TLS, requests, users, sessions, CSRF, audit) runs in its own tasks and
//! never touches the master's state: it asks the daemon loop, which owns the master and
//! the IPVS backend, through [`ConsoleRequest`]s. The loop answers a snapshot of what it
//! knows ([`snapshot::Snapshot`], shared, rebuilt only when something changed) and applies
//! changes ([`Change`]) through the master and the backend, in its own order.

pub mod audit;
pub mod conn;
pub mod history;
pub mod http;
pub mod pages;
pub mod ratelimit;
pub mod reader;
pub mod server;
pub mod session;
pub mod snapshot;
pub mod tls;
pub mod users;

use std::sync::Arc;

use feedbackd_proto::types::{RsKey, ServerAction, Who};
use lvs_ipvs::{Forwarding, ServiceConfig, ServiceKey};
use tokio::sync::oneshot;

pub use snapshot::Snapshot;

/// What the console asks of the daemon loop.
#[derive(Debug)]
pub enum ConsoleRequest {
    /// The current view of the director.
    Snapshot(oneshot::Sender<Arc<Snapshot>>),
    /// One real server's weight and capacity over the last hour (`None`: unknown server).
    History {
        /// Which.
        key: RsKey,
        /// Its series, copied.
        reply: oneshot::Sender<Option<history::Series>>,
    },
    /// A change by an admin; the reply says what was done, or why nothing was.
    Change {
        /// Who asked (already authenticated, an admin, CSRF-checked).
        who: Who,
        /// What.
        change: Change,
        /// Done (a line for the user and the audit log), or refused (why; nothing changed).
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// A configuration change, as piranha's web tool allowed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Drain, maintenance, return, pin or unpin one real server.
    Server {
        /// Which.
        key: RsKey,
        /// What.
        action: ServerAction,
    },
    /// A real server's forwarding method and connection thresholds (`ipvsadm -e`).
    EditServer {
        /// Which.
        key: RsKey,
        /// Its forwarding method.
        forwarding: Forwarding,
        /// Upper connection threshold (0: none).
        u_threshold: u32,
        /// Lower connection threshold (0: derived from the upper).
        l_threshold: u32,
    },
    /// A new virtual service (`ipvsadm -A`).
    AddService {
        /// Which.
        key: ServiceKey,
        /// Scheduler, persistence, flags.
        config: ServiceConfig,
    },
    /// A virtual service's settings (`ipvsadm -E`).
    EditService {
        /// Which.
        key: ServiceKey,
        /// The new settings.
        config: ServiceConfig,
    },
    /// A virtual service removed with its real servers (`ipvsadm -D`).
    RemoveService {
        /// Which.
        key: ServiceKey,
    },
}
