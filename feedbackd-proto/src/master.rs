//! The master's state machine: every agent connection, every real server it manages, and
//! the weight law, sans IO.
//!
//! Call order (the daemon's loop, or the simulator's):
//!
//! ```text
//! handle_table(now, services, entries)    // the kernel's table: at start-up, then every few s
//! loop {
//!     handle_connect(now, conn, peer, nonce)  // accepted a TCP connection
//!     handle_input(now, conn, bytes)          // bytes read from it
//!     handle_disconnect(now, conn)            // it closed
//!     handle_timeout(now)                     // poll_timeout's instant passed
//!     while let Some(ev) = poll_event() { apply it: Add/Set/Remove a real server, Close }
//!     while let Some((conn, bytes)) = poll_transmit() { write them }
//! }
//! ```
//!
//! Drain events before transmits: an `Ack` then leaves after the weight it reports was
//! applied. A failed apply is reported back with [`Master::handle_apply_failed`].
//!
//! With [`Master::set_journal`] on, every input the decisions depend on (table, accepted
//! registration with its connection, report, goodbye, disconnect, failed apply) and every decision
//! (add, set, remove) is also queued as a [`Record`] for [`Master::poll_journal`], in the
//! order it happened: `feedbackd-master --record` writes them, the simulator replays them.
//!
//! # Admission
//!
//! [`MasterConfig::auth`] says who may register: [`Auth::Keys`] (each agent id with its own
//! key and the real-server addresses and services it may claim, from the keys file) or
//! [`Auth::Insecure`]. A registration is read in two steps: its nonce and agent id first
//! (the session key is derived from that agent's key), then the whole frame, authenticated.
//! An unknown id or a bad tag is refused (`auth`). An authenticated registration is then
//! admitted only within the registration rate (`rate`, a token bucket), `max_agents`,
//! its keys-file line (every service's address and protocol/port or fwmark: `claim`),
//! real servers no other agent id owns (`claim`) and `max_servers_per_agent` (`servers`).
//! A report can only be about what its registration claimed. So an adopted server is
//! claimed only by an agent whose line allows its address, and never taken over.
//!
//! # Invariants
//! - A weight changes only on an authenticated, sequence-checked, well-formed report (or
//!   an agent's silence or goodbye). A bad frame only ever closes its connection.
//! - Real servers the master did not add and no agent claims are never touched: the
//!   kernel's existing entries are adopted as they are, not flushed.
//! - Every container is ordered (BTreeMap): iteration, and so the order of events, is the
//!   same on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::IpAddr;

use lvs_sched::feedback::{LawConfig, LawInputs, Limit, ServerLaw, ServiceLaw, Signal, Update};
use lvs_sched::{Duration, Time};

use crate::auth::Channel;
use crate::journal::{Decision, Entry, Record};
use crate::keys::Auth;
use crate::types::{AdminState, ServerAction, ServiceSpec, Who};
pub use crate::types::{ConnId, Polled, RsKey, TableEntry};
use crate::wire::{
    self, Ack, CAPACITY_SCALE, ErrorCode, ErrorMsg, Message, MessageType, Metric, Nonce, Registered, Report,
    Welcome,
};
use lvs_ipvs::{Forwarding, ServiceKey};

/// A refusal: the code sent, the counter's label, the text.
type Refusal = (ErrorCode, &'static str, String);

/// The master's settings.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// How agents authenticate, and what each may claim. The default is a keys table
    /// with no agent in it: nobody is accepted until told otherwise.
    pub auth: Auth,
    /// The weight law.
    pub law: LawConfig,
    /// An agent silent this long has its servers quiesced (weight 0).
    pub quiesce_after: Duration,
    /// An agent silent this long has its servers removed from the table.
    pub remove_after: Duration,
    /// A connection must register within this.
    pub register_timeout: Duration,
    /// The most agents at once.
    pub max_agents: usize,
    /// The most real servers (entries in the table) one agent may claim.
    pub max_servers_per_agent: usize,
    /// Registrations accepted per second, sustained (0: no limit); a token bucket.
    pub max_registrations_per_s: u32,
    /// How many registrations may come at once before the rate applies (at least 1).
    pub registration_burst: u32,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            auth: Auth::Keys(crate::keys::KeyTable::default()),
            law: LawConfig::default(),
            quiesce_after: Duration::from_secs(5),
            remove_after: Duration::from_secs(60),
            register_timeout: Duration::from_secs(10),
            max_agents: 65_536,
            max_servers_per_agent: 64,
            max_registrations_per_s: 20,
            registration_burst: 20,
        }
    }
}

/// Why a weight changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Why {
    /// The law's answer to a report.
    Report(Update),
    /// The agent says drain or maint.
    Admin(AdminState),
    /// The agent said goodbye.
    Goodbye(String),
    /// The agent has been silent this long.
    Silent(Duration),
    /// The operator's action (the console).
    Operator {
        /// Who.
        who: Who,
        /// What.
        action: ServerAction,
    },
    /// Held in maintenance by the operator before the master restarted (the state file).
    Restored,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Report(u) => {
                match u.law {
                    LawInputs::Capacity => {
                        write!(
                            f,
                            "capacity {:.3}, smoothed {:.3}, target {}",
                            u.capacity, u.smoothed, u.target
                        )?;
                    }
                    LawInputs::GrpcWrr(g) => {
                        match g.qps {
                            Some(qps) => write!(f, "qps {qps:.1}")?,
                            None => f.write_str("qps none")?,
                        }
                        write!(f, ", eps {:.1}, utilization {:.3}", g.eps, g.utilization)?;
                        let Some(estimate) = g.estimate else {
                            return write!(f, ": no usable signal, the weight stays at {}", u.to);
                        };
                        if g.blackout {
                            let w = u.to;
                            return write!(
                                f,
                                ", estimate {estimate:.1}/s: in the blackout period, the weight stays at {w}"
                            );
                        }
                        write!(
                            f,
                            ", estimate {estimate:.1}/s, smoothed {:.1}/s, target {}",
                            u.smoothed, u.target
                        )?;
                    }
                    LawInputs::Prequal(p) => {
                        let class = if p.hot { "hot" } else { "cold" };
                        write!(
                            f,
                            "rif {:.1} ({class}: threshold {:.1} over {} probes)",
                            p.rif, p.threshold, p.probes
                        )?;
                        match p.latency {
                            Some(l) => write!(f, ", latency {:.1} ms", l * 1000.0)?,
                            None => f.write_str(", latency none")?,
                        }
                        write!(f, ", raw {:.1}, smoothed {:.1}, target {}", p.raw, u.smoothed, u.target)?;
                    }
                    LawInputs::Mean(m) => {
                        write!(
                            f,
                            "no usable weight of its own: mean {} of {} servers, target {}",
                            m.mean, m.servers, u.target
                        )?;
                    }
                }
                match u.limit {
                    Limit::None => Ok(()),
                    limit => write!(f, ", limited by {limit}"),
                }
            }
            Why::Admin(a) => write!(f, "agent asks {a}"),
            Why::Goodbye(r) => write!(f, "agent said goodbye ({r})"),
            Why::Silent(d) => write!(f, "agent silent for {:.1} s", d.as_secs_f64()),
            Why::Operator { who, action } => write!(f, "operator {who}: {action}"),
            Why::Restored => f.write_str("in maintenance before the restart (state file)"),
        }
    }
}

/// The law's inputs for service `index` (0-based, registration order) of a report: its
/// capacity, and the gRPC WRR law's queries/s and errors/s from the report's metrics.
///
/// Service N (1-based) takes the metrics `qps_N` and `eps_N` when the report has them, and
/// otherwise the plain `qps` and `eps`: a single-service agent (the common case) reports
/// `qps` and `eps`, which also serve every service of an agent that reports one figure for
/// all of them.
pub fn report_signal(capacity: f64, metrics: &[Metric], index: usize) -> Signal {
    let n = index + 1;
    let find = |name: &str| {
        let numbered = format!("{name}_{n}");
        let m =
            metrics.iter().find(|m| m.name == numbered).or_else(|| metrics.iter().find(|m| m.name == name));
        m.map(|m| m.value)
    };
    Signal {
        capacity,
        qps: find("qps"),
        eps: find("eps"),
        rif: find("rif"),
        latency: find("latency_ms").map(|ms| ms / 1000.0),
    }
}

/// What the driver must do or log.
#[derive(Clone, Debug, PartialEq)]
pub enum MasterEvent {
    /// Add a real server (NEW_DEST, `ipvsadm -a`).
    AddRealServer {
        /// Which.
        key: RsKey,
        /// How to forward to it.
        forwarding: Forwarding,
        /// Its first weight.
        weight: u32,
        /// The agent that claims it.
        agent: String,
        /// Why this weight.
        why: Why,
    },
    /// Change a weight (SET_DEST with every other field as it is, `ipvsadm -e`).
    SetWeight {
        /// Which.
        key: RsKey,
        /// The weight before.
        from: u32,
        /// The weight after.
        to: u32,
        /// The agent concerned.
        agent: String,
        /// Why.
        why: Why,
    },
    /// Remove a real server (DEL_DEST, `ipvsadm -d`).
    RemoveRealServer {
        /// Which.
        key: RsKey,
        /// The agent concerned.
        agent: String,
        /// Why.
        why: Why,
    },
    /// An agent registered.
    Registered {
        /// Its connection.
        conn: ConnId,
        /// Its id.
        agent: String,
        /// Its address.
        peer: IpAddr,
        /// Per service, how many virtual services matched.
        matched: Vec<u8>,
    },
    /// Close this connection (after writing what `poll_transmit` still has for it).
    Close {
        /// Which.
        conn: ConnId,
        /// Why, for the log.
        reason: String,
    },
}

#[derive(Debug)]
struct Conn {
    peer: IpAddr,
    channel: Channel,
    nonce: Nonce,
    agent: Option<String>,
    deadline: Option<Time>,
    closed: bool,
    /// Whether its `Connect` went into the journal (it registered).
    journalled: bool,
}

/// An agent's liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Reporting.
    Live,
    /// Silent past `quiesce_after`: its servers are at weight 0.
    Quiesced,
    /// Said goodbye: its servers are at weight 0 until removal.
    Left,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Live => "live",
            Liveness::Quiesced => "quiesced",
            Liveness::Left => "left",
        })
    }
}

#[derive(Debug)]
struct AgentRec {
    conn: Option<ConnId>,
    peer: IpAddr,
    services: Vec<ServiceSpec>,
    interval_ms: u32,
    /// Per registered service, the real servers it matched.
    bindings: Vec<Vec<RsKey>>,
    last_report: Time,
    deadline: Time,
    liveness: Liveness,
    admin: AdminState,
    capacity: Vec<Option<u16>>,
    metrics: Vec<Metric>,
    reports: u64,
    /// Polled by the master (HAProxy's agent-check), not connected: `conn` is always `None`.
    polled: bool,
}

#[derive(Clone, Debug)]
struct RsRec {
    /// The law's state; its weight is what the law wants, which an override may hide.
    law: ServerLaw,
    forwarding: Forwarding,
    in_table: bool,
    owner: Option<String>,
    /// The weight in the kernel as the master set or read it (0 when out of the table
    /// for maintenance).
    weight: u32,
    /// The operator's drain or maintenance.
    hold: Option<Hold>,
    /// The operator's pinned weight.
    pinned: Option<u32>,
    /// Out of the table for maintenance, and added again on return even without an
    /// agent (it was in the table when maintenance began, or before a restart).
    readd: bool,
}

impl RsRec {
    fn new(law: ServerLaw, forwarding: Forwarding, in_table: bool) -> RsRec {
        let weight = law.weight();
        RsRec { law, forwarding, in_table, owner: None, weight, hold: None, pinned: None, readd: false }
    }

    /// Whether the operator holds or pins it (the master keeps it even when nothing else
    /// would: no agent, not in the table).
    fn overridden(&self) -> bool {
        self.hold.is_some() || self.pinned.is_some()
    }

    /// The weight it should have in the kernel, by precedence: maintenance (out of the
    /// table: `None`) > the operator's drain (0) > its agent's drain, maintenance, silence
    /// or goodbye (`agent_zero`: 0) > the operator's pin > the law.
    fn wanted(&self, agent_zero: bool) -> Option<u32> {
        match self.hold {
            Some(Hold::Maintenance) => None,
            Some(Hold::Drain) => Some(0),
            None if agent_zero => Some(0),
            None => Some(self.pinned.unwrap_or(self.law.weight())),
        }
    }
}

/// What the operator holds a real server in (the console's drain and maintenance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hold {
    /// Weight 0 whatever the law or a pin says.
    Drain,
    /// Out of the kernel's table; no report adds it back.
    Maintenance,
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hold::Drain => "drain",
            Hold::Maintenance => "maintenance",
        })
    }
}

/// Counters for the metrics endpoint.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Registrations accepted.
    pub registrations: u64,
    /// Reports applied.
    pub reports: u64,
    /// Frames refused, by reason: `malformed`, `auth` (no, wrong or unknown key),
    /// `sequence`, `protocol`, `refused` (too many agents), `claim` (an address, service
    /// or real server the agent may not claim), `servers` (more than
    /// `max_servers_per_agent`), `rate` (over `max_registrations_per_s`), `timeout`,
    /// `replaced`.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Weight changes issued.
    pub weight_changes: u64,
    /// Real servers added.
    pub added: u64,
    /// Real servers removed.
    pub removed: u64,
    /// Backend operations that failed.
    pub apply_failures: u64,
}

/// One row of the status view.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRow {
    /// Which real server.
    pub key: RsKey,
    /// Its weight as the master set or adopted it.
    pub weight: u32,
    /// Its forwarding method: the kernel's, or the agent's until the kernel lists it.
    pub forwarding: Forwarding,
    /// The agent that claims it, if any (`None`: adopted, not managed).
    pub agent: Option<String>,
    /// The agent's liveness.
    pub liveness: Option<Liveness>,
    /// The agent's admin state.
    pub admin: Option<AdminState>,
    /// The last reported capacity for this server's service, in [0, 1].
    pub capacity: Option<f64>,
    /// The smoothed capacity.
    pub smoothed: Option<f64>,
    /// How long ago the agent last reported.
    pub report_age: Option<Duration>,
    /// Whether it is in the kernel's table (false: waiting for a report to be added, or in
    /// maintenance).
    pub in_table: bool,
    /// The operator's drain or maintenance, if any.
    pub hold: Option<Hold>,
    /// The operator's pinned weight, if any (shown even while a hold or the agent's state
    /// keeps the weight at 0).
    pub pinned: Option<u32>,
}

/// One agent's status.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentStatus {
    /// Its id.
    pub id: String,
    /// Its address.
    pub peer: IpAddr,
    /// Connected now.
    pub connected: bool,
    /// Its liveness.
    pub liveness: Liveness,
    /// Its admin state.
    pub admin: AdminState,
    /// Its report interval [ms].
    pub interval_ms: u32,
    /// Reports received.
    pub reports: u64,
    /// Since its last report.
    pub report_age: Duration,
    /// Its latest metrics.
    pub metrics: Vec<Metric>,
}

/// The master's state machine.
#[derive(Debug)]
pub struct Master {
    config: MasterConfig,
    services: BTreeSet<ServiceKey>,
    servers: BTreeMap<RsKey, RsRec>,
    agents: BTreeMap<String, AgentRec>,
    conns: BTreeMap<ConnId, Conn>,
    agent_deadlines: BTreeSet<(Time, String)>,
    conn_deadlines: BTreeSet<(Time, ConnId)>,
    events: VecDeque<MasterEvent>,
    transmit: VecDeque<(ConnId, Vec<u8>)>,
    counters: Counters,
    /// Records not yet polled; `None`: not recording.
    journal: Option<VecDeque<Record>>,
    /// The registration token bucket, as a theoretical arrival time (GCRA).
    registration_tat: Time,
    /// Per virtual service in the table, the law's service-level state (`master/service.rs`).
    service_laws: BTreeMap<ServiceKey, ServiceLaw<RsKey>>,
}

impl Master {
    /// A master with no table yet.
    pub fn new(config: MasterConfig) -> Master {
        if let Err(e) = config.law.validate() {
            panic!("invalid weight law: {e}");
        }
        Master {
            config,
            services: BTreeSet::new(),
            servers: BTreeMap::new(),
            agents: BTreeMap::new(),
            conns: BTreeMap::new(),
            agent_deadlines: BTreeSet::new(),
            conn_deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            transmit: VecDeque::new(),
            counters: Counters::default(),
            journal: None,
            registration_tat: Time::ZERO,
            service_laws: BTreeMap::new(),
        }
    }

    /// Starts (`on`) or stops recording the journal. Starting queues a `Start` record with
    /// the master's settings at `now`; stopping drops what was not polled yet.
    pub fn set_journal(&mut self, now: Time, on: bool) {
        if !on {
            self.journal = None;
            return;
        }
        if self.journal.is_none() {
            let c = &self.config;
            let start = Entry::Start {
                law: c.law,
                quiesce_after: c.quiesce_after,
                remove_after: c.remove_after,
                register_timeout: c.register_timeout,
                max_servers_per_agent: Some(c.max_servers_per_agent),
            };
            self.journal = Some(VecDeque::from([Record { t: now, entry: start }]));
        }
    }

    /// The next journal record, oldest first (none unless [`Master::set_journal`] is on).
    pub fn poll_journal(&mut self) -> Option<Record> {
        self.journal.as_mut()?.pop_front()
    }

    /// Queues a journal record; `entry` is only built when recording.
    fn record(&mut self, now: Time, entry: impl FnOnce() -> Entry) {
        if let Some(j) = &mut self.journal {
            j.push_back(Record { t: now, entry: entry() });
        }
    }

    /// Queues an event, and records it when it is a decision. (Fields, not `self`, so that
    /// callers may hold borrows of the other fields.)
    fn push_event(
        journal: &mut Option<VecDeque<Record>>,
        events: &mut VecDeque<MasterEvent>,
        now: Time,
        ev: MasterEvent,
    ) {
        if let Some(j) = journal {
            let decision = match ev {
                MasterEvent::AddRealServer { key, weight, .. } => Some(Decision::Add { key, weight }),
                MasterEvent::SetWeight { key, from, to, .. } => Some(Decision::Set { key, from, to }),
                MasterEvent::RemoveRealServer { key, .. } => Some(Decision::Remove { key }),
                MasterEvent::Registered { .. } | MasterEvent::Close { .. } => None,
            };
            if let Some(d) = decision {
                j.push_back(Record { t: now, entry: Entry::Decision(d) });
            }
        }
        events.push_back(ev);
    }

    /// The configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The kernel's current table: its virtual services and their real servers. Entries
    /// the master does not know are adopted with their weight (no slow start); managed
    /// entries that vanished are added again on their agent's next report; agents are
    /// matched again against the services (a service created later is picked up).
    pub fn handle_table(&mut self, now: Time, services: &[ServiceKey], entries: &[TableEntry]) {
        self.record(now, || Entry::Table { services: services.to_vec(), entries: entries.to_vec() });
        self.services = services.iter().copied().collect();
        self.service_laws.retain(|s, _| self.services.contains(s));
        let present: BTreeMap<RsKey, &TableEntry> = entries.iter().map(|e| (e.key, e)).collect();
        self.servers.retain(|key, rs| match present.get(key) {
            Some(e) => {
                rs.in_table = true;
                rs.forwarding = e.forwarding;
                rs.weight = e.weight;
                // An override's weight is the operator's, not the law's: the law keeps its own.
                if !rs.overridden() && rs.law.weight() != e.weight {
                    rs.law.force(e.weight);
                }
                true
            }
            None => {
                rs.in_table = false;
                rs.owner.is_some() || rs.overridden()
            }
        });
        for e in entries {
            self.servers
                .entry(e.key)
                .or_insert_with(|| RsRec::new(ServerLaw::adopt(e.weight), e.forwarding, true));
        }
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            self.bind(&id);
        }
    }

    /// Matches an agent's services to the virtual services and claims the real servers:
    /// never one another agent owns, and at most `max_servers_per_agent` in all (a service
    /// created after the registration may add claims; the excess is not claimed).
    fn bind(&mut self, id: &str) {
        let Some(agent) = self.agents.get_mut(id) else { return };
        let mut bindings = Vec::with_capacity(agent.services.len());
        let mut budget = self.config.max_servers_per_agent;
        for spec in &agent.services {
            let addr = spec.address.unwrap_or(agent.peer);
            let servers = &self.servers;
            let keys: Vec<RsKey> = self
                .services
                .iter()
                .filter(|s| spec.matches(s))
                .map(|&service| RsKey { service, addr, port: spec.port })
                .filter(|key| {
                    servers.get(key).and_then(|rs| rs.owner.as_deref()).is_none_or(|owner| owner == id)
                })
                .take(budget)
                .collect();
            budget -= keys.len();
            for key in &keys {
                let rs = self.servers.entry(*key).or_insert_with(|| {
                    RsRec::new(ServerLaw::new(agent.last_report, &self.config.law), spec.forwarding, false)
                });
                rs.owner = Some(id.to_owned());
            }
            bindings.push(keys);
        }
        agent.bindings = bindings;
    }

    /// A connection was accepted from `peer`. `nonce`: fresh random bytes.
    pub fn handle_connect(&mut self, now: Time, conn: ConnId, peer: IpAddr, nonce: Nonce) {
        // Not journalled: only a connection that registers is (at its registration).
        self.counters.connections += 1;
        let mut channel = Channel::new();
        let welcome = Welcome { auth_required: self.config.auth.required(), nonce };
        self.transmit.push_back((conn, channel.seal(&Message::Welcome(welcome))));
        let deadline = now + self.config.register_timeout;
        self.conn_deadlines.insert((deadline, conn));
        let c = Conn {
            peer,
            channel,
            nonce,
            agent: None,
            deadline: Some(deadline),
            closed: false,
            journalled: false,
        };
        self.conns.insert(conn, c);
    }

    /// The connection closed (or the driver closed it after a `Close` event).
    pub fn handle_disconnect(&mut self, now: Time, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else { return };
        if c.journalled {
            self.record(now, || Entry::Disconnect { conn });
        }
        if let Some(d) = c.deadline {
            self.conn_deadlines.remove(&(d, conn));
        }
        if let Some(agent) = c.agent.and_then(|id| self.agents.get_mut(&id)) {
            if agent.conn == Some(conn) {
                agent.conn = None;
            }
        }
    }

    /// Bytes read from a connection.
    pub fn handle_input(&mut self, now: Time, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.closed {
            return;
        }
        c.channel.push_input(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else { return };
            if c.closed {
                return;
            }
            let frame = match c.channel.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => return self.refuse(conn, ErrorCode::Malformed, e.label(), e.to_string()),
            };
            self.handle_frame(now, conn, &frame);
        }
    }

    fn handle_frame(&mut self, now: Time, conn: ConnId, frame: &[u8]) {
        let raw = match wire::parse_frame(frame) {
            Ok(r) => r,
            Err(e) => {
                return self.refuse(conn, ErrorCode::Malformed, "malformed", format!("malformed frame: {e}"));
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let registering = c.agent.is_none();
        if registering {
            if raw.message_type != MessageType::Register {
                let text = format!("expected a registration, got {:?}", raw.message_type);
                return self.refuse(conn, ErrorCode::Malformed, "protocol", text);
            }
            // The key depends on who the agent says it is: read its nonce and id, then
            // authenticate the whole frame with that agent's key.
            if let Auth::Keys(table) = &self.config.auth {
                match wire::register_hello(raw.body) {
                    Ok((agent_nonce, id)) => match table.get(&id) {
                        Some(k) => c.channel.set_key(k.key.session(&c.nonce, &agent_nonce)),
                        None => {
                            let text = format!("unknown agent id {id:?} (not in the keys file)");
                            return self.refuse(conn, ErrorCode::Auth, "auth", text);
                        }
                    },
                    Err(e) => {
                        let text = format!("malformed registration: {e}");
                        return self.refuse(conn, ErrorCode::Malformed, "malformed", text);
                    }
                }
            }
        }
        let require_key = self.config.auth.required();
        let msg = match c.channel.open(&raw, require_key) {
            Ok(m) => m,
            Err(e) => {
                let code = if e.label() == "auth" { ErrorCode::Auth } else { ErrorCode::Malformed };
                return self.refuse(conn, code, e.label(), e.to_string());
            }
        };
        let seq = raw.seq;
        match msg {
            Message::Register(r) if registering => self.register(now, conn, r),
            Message::Report(r) if !registering => self.report(now, conn, seq, r),
            Message::Goodbye(g) if !registering => self.goodbye(now, conn, g.reason),
            other => {
                let text = format!("unexpected {:?} from an agent", other.message_type());
                self.refuse(conn, ErrorCode::Malformed, "protocol", text);
            }
        }
    }

    /// Refuses a connection: an Error frame, then Close. Never touches a weight.
    fn refuse(&mut self, conn: ConnId, code: ErrorCode, label: &'static str, text: String) {
        *self.counters.rejected.entry(label).or_insert(0) += 1;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.closed {
            return;
        }
        c.closed = true;
        let bytes = c.channel.seal(&Message::Error(ErrorMsg { code, text: text.clone() }));
        self.transmit.push_back((conn, bytes));
        let who = match &c.agent {
            Some(id) => format!("agent {id} ({})", c.peer),
            None => format!("{}", c.peer),
        };
        self.events.push_back(MasterEvent::Close { conn, reason: format!("{who}: {text}") });
    }

    fn register(&mut self, now: Time, conn: ConnId, r: wire::Register) {
        let peer = self.conns[&conn].peer;
        if let Err((code, label, text)) = self.admit(now, peer, &r) {
            return self.refuse(conn, code, label, text);
        }
        let c = self.conns.get_mut(&conn).expect("caller checked the connection");
        c.agent = Some(r.agent_id.clone());
        c.journalled = self.journal.is_some();
        if let Some(d) = c.deadline.take() {
            self.conn_deadlines.remove(&(d, conn));
        }
        self.counters.registrations += 1;
        // The connection enters the journal only now, authenticated and admitted.
        self.record(now, || Entry::Connect { conn, peer });
        self.record(now, || Entry::Register {
            conn,
            agent: r.agent_id.clone(),
            interval_ms: r.interval_ms,
            services: r.services.clone(),
        });
        let id = r.agent_id;
        // The same agent on a new connection: the old one is stale (a reconnect before the
        // old socket timed out); it is closed and the records carry over.
        if let Some(old) = self.agents.get(&id).and_then(|a| a.conn).filter(|&o| o != conn) {
            if let Some(oc) = self.conns.get_mut(&old) {
                oc.agent = None;
            }
            let text = format!("agent {id} registered again from {peer}");
            self.refuse(old, ErrorCode::Replaced, "replaced", text);
        }
        let same_services = self.agents.get(&id).is_some_and(|a| a.services == r.services && a.peer == peer);
        if !same_services {
            self.forget_agent(&id);
        }
        let n = r.services.len();
        let agent = self.agents.entry(id.clone()).or_insert_with(|| AgentRec {
            conn: None,
            peer,
            services: r.services,
            interval_ms: r.interval_ms,
            bindings: Vec::new(),
            last_report: now,
            deadline: now,
            liveness: Liveness::Live,
            admin: AdminState::Ready,
            capacity: vec![None; n],
            metrics: Vec::new(),
            reports: 0,
            polled: false,
        });
        agent.conn = Some(conn);
        agent.interval_ms = r.interval_ms;
        self.bind(&id);
        self.schedule_agent(&id, now);
        let agent = &self.agents[&id];
        let matched: Vec<u8> =
            agent.bindings.iter().map(|b| u8::try_from(b.len()).unwrap_or(u8::MAX)).collect();
        let c = self.conns.get_mut(&conn).expect("still there");
        let bytes = c.channel.seal(&Message::Registered(Registered { matched: matched.clone() }));
        self.transmit.push_back((conn, bytes));
        self.events.push_back(MasterEvent::Registered { conn, agent: id, peer, matched });
    }

    /// Whether a registration (authenticated) may go ahead: the registration rate, the
    /// number of agents, what its keys-file line allows it to claim, real servers owned by
    /// another agent, and the number of real servers. `Err`: the refusal.
    fn admit(&mut self, now: Time, peer: IpAddr, r: &wire::Register) -> Result<(), Refusal> {
        if !self.take_registration_token(now) {
            let text = format!(
                "too many registrations (max_registrations_per_s {}): retry later",
                self.config.max_registrations_per_s
            );
            return Err((ErrorCode::Refused, "rate", text));
        }
        let id = r.agent_id.as_str();
        if self.agents.get(id).is_some_and(|a| a.polled) {
            let text = format!("agent id {id:?} is a polled agent-check agent's");
            return Err((ErrorCode::Refused, "claim", text));
        }
        if !self.agents.contains_key(id) && self.agents.len() >= self.config.max_agents {
            let text = format!("too many agents (max_agents {})", self.config.max_agents);
            return Err((ErrorCode::Refused, "refused", text));
        }
        if let Auth::Keys(table) = &self.config.auth {
            let k = table.get(id).expect("authenticated with this agent's key");
            for spec in &r.services {
                let addr = spec.address.unwrap_or(peer);
                k.check_claim(spec, addr)
                    .map_err(|e| (ErrorCode::Refused, "claim", format!("agent {id} {e}")))?;
            }
        }
        let mut n = 0;
        for spec in &r.services {
            let addr = spec.address.unwrap_or(peer);
            for &service in self.services.iter().filter(|s| spec.matches(s)) {
                let key = RsKey { service, addr, port: spec.port };
                if let Some(owner) = self.servers.get(&key).and_then(|rs| rs.owner.as_deref()) {
                    if owner != id {
                        let text = format!("agent {id} may not claim {key}: agent {owner} has it");
                        return Err((ErrorCode::Refused, "claim", text));
                    }
                }
                n += 1;
            }
        }
        if n > self.config.max_servers_per_agent {
            let text = format!(
                "agent {id} claims {n} real servers; at most {} per agent (max_servers_per_agent)",
                self.config.max_servers_per_agent
            );
            return Err((ErrorCode::Refused, "servers", text));
        }
        Ok(())
    }

    /// Takes a registration token at `now` (GCRA: a token bucket of
    /// `registration_burst` tokens refilled at `max_registrations_per_s`).
    fn take_registration_token(&mut self, now: Time) -> bool {
        let rate = u64::from(self.config.max_registrations_per_s);
        if rate == 0 {
            return true;
        }
        let interval = (1_000_000_000 / rate).max(1);
        let tolerance = interval.saturating_mul(u64::from(self.config.registration_burst.max(1)) - 1);
        let tat = self.registration_tat.max(now);
        if tat.0 - now.0 > tolerance {
            return false;
        }
        self.registration_tat = Time(tat.0.saturating_add(interval));
        true
    }

    /// Drops an agent's claims (its servers stay in the table as adopted entries).
    fn forget_agent(&mut self, id: &str) {
        if let Some(a) = self.agents.remove(id) {
            self.agent_deadlines.remove(&(a.deadline, id.to_owned()));
            for key in a.bindings.iter().flatten() {
                if let Some(rs) = self.servers.get_mut(key) {
                    if rs.owner.as_deref() == Some(id) {
                        rs.owner = None;
                    }
                }
            }
            self.servers.retain(|_, rs| rs.in_table || rs.owner.is_some() || rs.overridden());
        }
    }

    /// How long an agent reporting every `interval_ms` may be silent before its servers are
    /// quiesced: `quiesce_after`, but at least three of its intervals (an agent that
    /// reports every 5 s is not silent after 5 s).
    fn quiesce_after(config: &MasterConfig, interval_ms: u32) -> Duration {
        let three = Duration::from_millis(3 * u64::from(interval_ms));
        config.quiesce_after.max(three)
    }

    /// (Re)arms an agent's silence timer from its last report.
    fn schedule_agent(&mut self, id: &str, now: Time) {
        let Some(a) = self.agents.get_mut(id) else { return };
        self.agent_deadlines.remove(&(a.deadline, id.to_owned()));
        a.last_report = now;
        a.deadline = now
            + match a.liveness {
                Liveness::Live => Self::quiesce_after(&self.config, a.interval_ms),
                Liveness::Quiesced | Liveness::Left => self.config.remove_after,
            };
        self.agent_deadlines.insert((a.deadline, id.to_owned()));
    }

    fn report(&mut self, now: Time, conn: ConnId, seq: u64, r: Report) {
        let id = self.conns[&conn].agent.clone().expect("registered connection");
        let agent = self.agents.get(&id).expect("a registered connection has its agent");
        if r.capacity.len() != agent.services.len() {
            let text = format!(
                "report has {} capacities for {} registered services",
                r.capacity.len(),
                agent.services.len()
            );
            return self.refuse(conn, ErrorCode::Malformed, "protocol", text);
        }
        if let Some(j) = &mut self.journal {
            let entry = Entry::Report {
                conn,
                admin: r.admin,
                capacity: r.capacity.clone(),
                metrics: r.metrics.clone(),
            };
            j.push_back(Record { t: now, entry });
        }
        let weights = self.apply_report(now, &id, r.admin, &r.capacity, &r.metrics);
        let c = self.conns.get_mut(&conn).expect("still there");
        let bytes = c.channel.seal(&Message::Ack(Ack { seq, weights }));
        self.transmit.push_back((conn, bytes));
    }

    /// A report of agent `id` (connected or polled), one capacity per registered service:
    /// the law's answer for each of its real servers. Returns, per service, the weight of
    /// its first real server in the table (what an `Ack` tells the agent).
    fn apply_report(
        &mut self,
        now: Time,
        id: &str,
        admin: AdminState,
        capacity: &[Option<u16>],
        metrics: &[Metric],
    ) -> Vec<Option<u32>> {
        self.counters.reports += 1;
        let agent = self.agents.get_mut(id).expect("the caller checked the agent");
        let returning = agent.liveness != Liveness::Live
            || (agent.admin != AdminState::Ready && admin == AdminState::Ready);
        agent.liveness = Liveness::Live;
        agent.admin = admin;
        agent.capacity = capacity.to_vec();
        agent.metrics = metrics.to_vec();
        agent.reports += 1;
        let bindings = agent.bindings.clone();
        let services = agent.services.clone();
        self.schedule_agent(id, now);
        let law = self.config.law;
        let (mut touched, mut reported) = (BTreeSet::new(), BTreeSet::new());
        for (i, keys) in bindings.iter().enumerate() {
            let signal =
                capacity[i].map(|c| report_signal(f64::from(c) / f64::from(CAPACITY_SCALE), metrics, i));
            for key in keys {
                if let Some(signal) = signal.filter(|_| admin == AdminState::Ready) {
                    // A server the operator holds is no candidate: its probes stay out of the pool.
                    let owned = |rs: &RsRec| rs.owner.as_deref() == Some(id) && rs.hold.is_none();
                    if self.servers.get(key).is_some_and(owned) {
                        touched.insert(key.service);
                        reported.insert(*key);
                        self.observe(now, *key, &signal);
                    }
                }
                let Some(rs) = self.servers.get_mut(key) else { continue };
                if rs.owner.as_deref() != Some(id) {
                    continue;
                }
                if admin != AdminState::Ready || rs.hold == Some(Hold::Maintenance) {
                    continue; // set to 0 below; or out of the table until returned
                }
                let Some(signal) = signal else {
                    // No measurement: the law waits, but a pin needs none (after the agent's
                    // drain or silence, a ready agent's pinned server gets its pin back).
                    let to = rs.pinned.filter(|_| rs.in_table && rs.hold.is_none());
                    if let Some(to) = to.filter(|&to| to != rs.weight) {
                        let from = std::mem::replace(&mut rs.weight, to);
                        self.counters.weight_changes += 1;
                        let why = Why::Admin(admin);
                        let ev = MasterEvent::SetWeight { key: *key, from, to, agent: id.to_owned(), why };
                        Self::push_event(&mut self.journal, &mut self.events, now, ev);
                    }
                    continue;
                };
                if !rs.in_table {
                    rs.law = ServerLaw::new(now, &law);
                    let u = rs.law.update_signal(&law, now, signal);
                    let weight = rs.wanted(false).unwrap_or(u.to);
                    rs.in_table = true;
                    rs.weight = weight;
                    self.counters.added += 1;
                    let ev = MasterEvent::AddRealServer {
                        key: *key,
                        // What the kernel had, unless local, which an agent never asks for.
                        forwarding: match rs.forwarding {
                            Forwarding::Local => services[i].forwarding,
                            f => f,
                        },
                        weight,
                        agent: id.to_owned(),
                        why: Why::Report(u),
                    };
                    Self::push_event(&mut self.journal, &mut self.events, now, ev);
                    continue;
                }
                // The kernel's weight before this report (0 for a returning server).
                let before = rs.weight;
                if returning {
                    rs.law.restart(now, &law);
                }
                let u = rs.law.update_signal(&law, now, signal);
                let to = rs.wanted(false).unwrap_or(u.to);
                if to != before {
                    rs.weight = to;
                    self.counters.weight_changes += 1;
                    let ev = MasterEvent::SetWeight {
                        key: *key,
                        from: before,
                        to,
                        agent: id.to_owned(),
                        why: Why::Report(u),
                    };
                    Self::push_event(&mut self.journal, &mut self.events, now, ev);
                }
            }
        }
        self.service_step(now, &touched, &reported);
        if admin != AdminState::Ready {
            self.set_agent_weights_zero(now, id, &Why::Admin(admin));
        }
        let weight_of = |keys: &Vec<RsKey>| {
            let first = keys.first().and_then(|k| self.servers.get(k)).filter(|rs| rs.in_table);
            first.map(|rs| rs.weight)
        };
        bindings.iter().map(weight_of).collect()
    }

    fn goodbye(&mut self, now: Time, conn: ConnId, reason: String) {
        let id = self.conns[&conn].agent.clone().expect("registered connection");
        self.record(now, || Entry::Goodbye { conn, reason: reason.clone() });
        self.set_agent_weights_zero(now, &id, &Why::Goodbye(reason.clone()));
        if let Some(a) = self.agents.get_mut(&id) {
            a.liveness = Liveness::Left;
            a.conn = None;
        }
        self.schedule_agent(&id, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closed = true;
        }
        self.events
            .push_back(MasterEvent::Close { conn, reason: format!("agent {id} said goodbye: {reason}") });
    }

    fn set_agent_weights_zero(&mut self, now: Time, id: &str, why: &Why) {
        let Some(a) = self.agents.get(id) else { return };
        for key in a.bindings.iter().flatten() {
            let Some(rs) = self.servers.get_mut(key) else { continue };
            if rs.owner.as_deref() != Some(id) || !rs.in_table || rs.weight == 0 {
                continue;
            }
            let from = rs.weight;
            rs.law.force(0);
            rs.weight = 0;
            self.counters.weight_changes += 1;
            let ev =
                MasterEvent::SetWeight { key: *key, from, to: 0, agent: id.to_owned(), why: why.clone() };
            Self::push_event(&mut self.journal, &mut self.events, now, ev);
        }
    }

    /// Time has passed: unregistered connections time out, silent agents are quiesced and
    /// later removed.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(&(t, conn)) = self.conn_deadlines.first() {
            if t > now {
                break;
            }
            self.conn_deadlines.pop_first();
            if let Some(c) = self.conns.get_mut(&conn) {
                c.deadline = None;
            }
            self.refuse(conn, ErrorCode::Refused, "timeout", "no registration in time".into());
        }
        while let Some((t, id)) = self.agent_deadlines.first().cloned() {
            if t > now {
                break;
            }
            self.agent_deadlines.pop_first();
            let Some(a) = self.agents.get_mut(&id) else { continue };
            let silent = now.saturating_since(a.last_report);
            match a.liveness {
                Liveness::Live => {
                    a.liveness = Liveness::Quiesced;
                    a.deadline = a.last_report + self.config.remove_after;
                    self.agent_deadlines.insert((a.deadline, id.clone()));
                    self.set_agent_weights_zero(now, &id, &Why::Silent(silent));
                }
                Liveness::Quiesced | Liveness::Left => self.remove_agent(now, &id, silent),
            }
        }
    }

    fn remove_agent(&mut self, now: Time, id: &str, silent: Duration) {
        let Some(a) = self.agents.remove(id) else { return };
        for key in a.bindings.iter().flatten() {
            let owned = self.servers.get(key).is_some_and(|rs| rs.owner.as_deref() == Some(id));
            if !owned {
                continue;
            }
            let rs = self.servers.remove(key).expect("checked");
            if rs.overridden() {
                // The operator's override outlives the agent: kept for when it comes back,
                // out of the table meanwhile (and not added back on return).
                let kept = RsRec { in_table: false, owner: None, weight: 0, readd: false, ..rs.clone() };
                self.servers.insert(*key, kept);
            }
            if rs.in_table {
                self.counters.removed += 1;
                let ev = MasterEvent::RemoveRealServer {
                    key: *key,
                    agent: id.to_owned(),
                    why: Why::Silent(silent),
                };
                Self::push_event(&mut self.journal, &mut self.events, now, ev);
            }
        }
        if let Some(conn) = a.conn {
            let text = format!("silent for {:.1} s: removed", silent.as_secs_f64());
            self.refuse(conn, ErrorCode::Refused, "timeout", text);
        }
    }

    /// A polled agent answered: its admin state and its capacity (per mille, at most
    /// [`CAPACITY_SCALE`]; `None`: no capacity in the reply). The first answer registers it
    /// (its one service matched to the virtual services as a connected agent's, claiming
    /// no real server another agent owns, at most `max_servers_per_agent`); every answer
    /// is then a report. Silence quiesces and removes its servers as for a connected agent
    /// (judged against `interval_ms`); an answer after removal registers it again. An
    /// answer with a new service, address or interval registers it afresh.
    ///
    /// `polled.id` must be a valid agent id ([`wire::valid_agent_id`]); an answer under an
    /// invalid id, or under the id of a connected agent, is ignored and counted (`claim`).
    pub fn handle_polled(&mut self, now: Time, polled: &Polled, admin: AdminState, capacity: Option<u16>) {
        let id = polled.id.as_str();
        let known = match self.agents.get(id) {
            Some(a) if !a.polled => None,
            Some(a) => Some(a.services[0] == polled.service && a.peer == polled.peer),
            None => Some(false),
        };
        let Some(same) = known.filter(|_| wire::valid_agent_id(id)) else {
            *self.counters.rejected.entry("claim").or_insert(0) += 1;
            return;
        };
        let capacity = capacity.map(|c| c.min(CAPACITY_SCALE));
        self.record(now, || Entry::Polled { polled: polled.clone(), admin, capacity });
        if !same {
            self.forget_agent(id);
            self.counters.registrations += 1;
            self.agents.insert(
                id.to_owned(),
                AgentRec {
                    conn: None,
                    peer: polled.peer,
                    services: vec![polled.service.clone()],
                    interval_ms: polled.interval_ms,
                    bindings: Vec::new(),
                    last_report: now,
                    deadline: now,
                    liveness: Liveness::Live,
                    admin: AdminState::Ready,
                    capacity: vec![None],
                    metrics: Vec::new(),
                    reports: 0,
                    polled: true,
                },
            );
            self.bind(id);
        }
        if let Some(a) = self.agents.get_mut(id) {
            a.interval_ms = polled.interval_ms;
        }
        self.apply_report(now, id, admin, &[capacity], &[]);
    }

    /// A backend operation for `key` failed: the entry is taken as absent from the table,
    /// so the next report adds it again.
    pub fn handle_apply_failed(&mut self, now: Time, key: RsKey) {
        self.counters.apply_failures += 1;
        self.record(now, || Entry::ApplyFailed { key });
        if let Some(rs) = self.servers.get_mut(&key) {
            rs.in_table = false;
        }
    }

    /// Bytes to write: `(connection, bytes)`.
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// What to do next.
    pub fn poll_event(&mut self) -> Option<MasterEvent> {
        self.events.pop_front()
    }

    /// When to call [`Master::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        let a = self.agent_deadlines.first().map(|(t, _)| *t);
        let c = self.conn_deadlines.first().map(|(t, _)| *t);
        match (a, c) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// Agents connected now.
    pub fn connected_agents(&self) -> usize {
        self.agents.values().filter(|a| a.conn.is_some()).count()
    }

    /// The status of every real server the master knows, in table order.
    pub fn status(&self, now: Time) -> Vec<StatusRow> {
        self.servers
            .iter()
            .map(|(key, rs)| {
                let agent = rs.owner.as_ref().and_then(|id| self.agents.get(id));
                let index = agent.and_then(|a| a.bindings.iter().position(|b| b.contains(key)));
                let capacity = agent.zip(index).and_then(|(a, i)| a.capacity[i]);
                StatusRow {
                    key: *key,
                    weight: rs.weight,
                    forwarding: rs.forwarding,
                    agent: rs.owner.clone(),
                    liveness: agent.map(|a| a.liveness),
                    admin: agent.map(|a| a.admin),
                    capacity: capacity.map(|c| f64::from(c) / f64::from(CAPACITY_SCALE)),
                    smoothed: rs.law.smoothed(),
                    report_age: agent.map(|a| now.saturating_since(a.last_report)),
                    in_table: rs.in_table,
                    hold: rs.hold,
                    pinned: rs.pinned,
                }
            })
            .collect()
    }

    /// Every agent's status, by id.
    pub fn agents(&self, now: Time) -> Vec<AgentStatus> {
        self.agents
            .iter()
            .map(|(id, a)| AgentStatus {
                id: id.clone(),
                peer: a.peer,
                connected: a.conn.is_some(),
                liveness: a.liveness,
                admin: a.admin,
                interval_ms: a.interval_ms,
                reports: a.reports,
                report_age: now.saturating_since(a.last_report),
                metrics: a.metrics.clone(),
            })
            .collect()
    }

    /// The virtual services known from the last table.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.iter()
    }
}

mod operator;
mod service;
pub use operator::{MAX_PIN_WEIGHT, OperatorError};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod polled_tests;

#[cfg(test)]
mod operator_tests;

#[cfg(test)]
mod service_tests;
