//! A master's journal: what it was told (the kernel's table, agents' connections,
//! registrations, reports, goodbyes) and what it decided, each with the master's `now`.
//! `feedbackd-master --record FILE` writes one [`Record`] per line; the simulator replays
//! the inputs through its own master and compares the decisions (the parity test).

use std::net::IpAddr;

use lvs_sched::feedback::LawConfig;
use lvs_sched::{Duration, Time};

use crate::master::{ConnId, RsKey, TableEntry};
use crate::types::{AdminState, ServiceKey, ServiceSpec};
use crate::wire::Metric;

/// One line of the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The master's time (since it started).
    pub t: Time,
    /// What happened.
    pub entry: Entry,
}

/// What a [`Record`] holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// The master's settings (the first line).
    Start {
        /// The weight law.
        law: LawConfig,
        /// `--quiesce-after`.
        quiesce_after: Duration,
        /// `--remove-after`.
        remove_after: Duration,
        /// The registration deadline.
        register_timeout: Duration,
    },
    /// The kernel's table as read (start-up and every rescan).
    Table {
        /// Virtual services.
        services: Vec<ServiceKey>,
        /// Their real servers.
        entries: Vec<TableEntry>,
    },
    /// A connection was accepted.
    Connect {
        /// Its number.
        conn: ConnId,
        /// The agent's address.
        peer: IpAddr,
    },
    /// An agent registered (an authenticated, well-formed Register).
    Register {
        /// On this connection.
        conn: ConnId,
        /// The agent's id.
        agent: String,
        /// Its report interval [ms].
        interval_ms: u32,
        /// Its services.
        services: Vec<ServiceSpec>,
    },
    /// A report was accepted (authenticated, in sequence, well-formed).
    Report {
        /// On this connection.
        conn: ConnId,
        /// Admin state.
        admin: AdminState,
        /// Per service, per-mille spare capacity.
        capacity: Vec<Option<u16>>,
        /// Metrics.
        metrics: Vec<Metric>,
    },
    /// An agent said goodbye.
    Goodbye {
        /// On this connection.
        conn: ConnId,
        /// Why.
        reason: String,
    },
    /// A connection closed.
    Disconnect {
        /// Which.
        conn: ConnId,
    },
    /// A change the master made to the table.
    Decision(Decision),
}

/// A change to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A real server added with this weight.
    Add {
        /// Which.
        key: RsKey,
        /// Its weight.
        weight: u32,
    },
    /// A weight changed.
    Set {
        /// Which.
        key: RsKey,
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// A real server removed.
    Remove {
        /// Which.
        key: RsKey,
    },
}
