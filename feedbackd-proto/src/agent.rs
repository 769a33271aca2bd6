//! The agent's side of one connection to one director, sans IO.
//!
//! Call order, for each TCP connection the driver opens:
//!
//! ```text
//! handle_connected(now, nonce)            // TCP is up; nonce: 16 fresh random bytes
//! loop {
//!     handle_input(now, bytes)            // whatever the socket read
//!     handle_sample(now, sample)          // a measurement (every interval)
//!     handle_timeout(now)                 // when poll_timeout's instant passes
//!     handle_goodbye(now, reason)         // on SIGTERM: drain me
//!     while let Some(bytes) = poll_transmit() { write them }
//!     while let Some(event) = poll_event() { Close => close the socket, ... }
//! }
//! handle_disconnected(now)                // the socket closed, either way
//! ```
//!
//! After a `Close` event, or a read error, the driver closes the socket, calls
//! `handle_disconnected` and reconnects after a [`crate::backoff::Backoff`] delay — unless
//! the close followed a goodbye.

use std::collections::VecDeque;

use lvs_sched::{Duration, Time};

use crate::auth::{Channel, FrameError, Psk};
use crate::types::{AdminState, ServiceSpec};
use crate::wire::{self, Goodbye, Message, MessageType, Metric, Nonce, Register, Report};

/// What an agent is.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Its name in the master's table.
    pub agent_id: String,
    /// What its real server serves.
    pub services: Vec<ServiceSpec>,
    /// How often it reports.
    pub interval: Duration,
    /// The pre-shared key, if one is configured.
    pub psk: Option<Psk>,
    /// How long a master may stay silent while a frame awaits its answer.
    pub master_timeout: Duration,
}

impl AgentConfig {
    /// The default `master_timeout` for a report `interval`: three intervals, at least 3 s
    /// (the daemon's and the simulator's agents both use it).
    pub fn default_master_timeout(interval: Duration) -> Duration {
        Duration(interval.as_nanos().saturating_mul(3).max(3_000_000_000))
    }
}

/// One measurement of the agent's server.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The operator's wish.
    pub admin: AdminState,
    /// Spare capacity per service, in registration order, in [0, 1]; `None` when the
    /// service's modules could not measure.
    pub capacity: Vec<Option<f64>>,
    /// What was measured.
    pub metrics: Vec<Metric>,
}

/// What the driver must know or do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// The master accepted the registration: how many virtual services each service
    /// matched (0: none yet; the master matches again when services appear).
    Registered {
        /// Per service, in order.
        matched: Vec<u8>,
    },
    /// A report was applied; the weights the master set, per service.
    Acked {
        /// The report's sequence number.
        seq: u64,
        /// Per service, in order.
        weights: Vec<Option<u32>>,
    },
    /// Close the connection. `retry`: reconnect after a backoff (false after a goodbye).
    Close {
        /// Why, for the log.
        reason: String,
        /// Whether to reconnect.
        retry: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Disconnected,
    AwaitWelcome,
    AwaitRegistered,
    Ready,
    Leaving,
}

/// The agent's state machine for one director.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    state: State,
    channel: Channel,
    nonce: Nonce,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<AgentEvent>,
    /// Since when an answer from the master has been awaited.
    waiting_since: Option<Time>,
    last_report_seq: u64,
    last_acked_seq: u64,
    latest: Option<Sample>,
    weights: Vec<Option<u32>>,
}

impl Agent {
    /// An agent, not yet connected.
    pub fn new(config: AgentConfig) -> Agent {
        assert!(
            !config.services.is_empty() && config.services.len() <= wire::MAX_SERVICES,
            "an agent registers 1 to {} services",
            wire::MAX_SERVICES
        );
        assert!(wire::valid_agent_id(&config.agent_id), "invalid agent id {:?}", config.agent_id);
        let n = config.services.len();
        Agent {
            config,
            state: State::Disconnected,
            channel: Channel::new(),
            nonce: [0; 16],
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            waiting_since: None,
            last_report_seq: 0,
            last_acked_seq: 0,
            latest: None,
            weights: vec![None; n],
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Whether the master has accepted the registration on the current connection.
    pub fn is_registered(&self) -> bool {
        self.state == State::Ready
    }

    /// The weights the master last acknowledged, per service.
    pub fn weights(&self) -> &[Option<u32>] {
        &self.weights
    }

    /// TCP is up. `nonce`: fresh random bytes for this connection.
    pub fn handle_connected(&mut self, now: Time, nonce: Nonce) {
        self.channel = Channel::new();
        self.transmit.clear();
        self.nonce = nonce;
        self.state = State::AwaitWelcome;
        self.waiting_since = Some(now);
        self.last_report_seq = 0;
        self.last_acked_seq = 0;
    }

    /// The connection closed.
    pub fn handle_disconnected(&mut self, _now: Time) {
        self.state = State::Disconnected;
        self.channel = Channel::new();
        self.transmit.clear();
        self.waiting_since = None;
    }

    /// Bytes from the master.
    pub fn handle_input(&mut self, now: Time, bytes: &[u8]) {
        if matches!(self.state, State::Disconnected) {
            return;
        }
        self.channel.push_input(bytes);
        loop {
            let frame = match self.channel.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => return self.fail(format!("from master: {e}")),
            };
            if let Err(reason) = self.handle_frame(now, &frame) {
                return self.fail(reason);
            }
            if matches!(self.state, State::Disconnected) {
                return;
            }
        }
    }

    fn handle_frame(&mut self, now: Time, frame: &[u8]) -> Result<(), String> {
        let raw = wire::parse_frame(frame).map_err(|e| format!("from master: {e}"))?;
        if raw.message_type == MessageType::Welcome && self.state != State::AwaitWelcome {
            return Err("unexpected second welcome from master".into());
        }
        let msg = self.channel.open(&raw, false).map_err(|e: FrameError| format!("from master: {e}"))?;
        match (self.state, msg) {
            (_, Message::Error(e)) => Err(format!("master refused us ({}): {}", e.code, e.text)),
            (State::AwaitWelcome, Message::Welcome(w)) => {
                match (&self.config.psk, w.auth_required) {
                    (Some(psk), true) => self.channel.set_key(psk.session(&w.nonce, &self.nonce)),
                    (None, false) => {}
                    (Some(_), false) => {
                        return Err("master does not require authentication but this agent \
                                    has a key: refusing to report unauthenticated"
                            .into());
                    }
                    (None, true) => {
                        return Err("master requires authentication: configure key_file".into());
                    }
                }
                let register = Register {
                    nonce: self.nonce,
                    agent_id: self.config.agent_id.clone(),
                    interval_ms: u32::try_from(self.config.interval.as_nanos() / 1_000_000)
                        .unwrap_or(u32::MAX)
                        .max(1),
                    services: self.config.services.clone(),
                };
                let bytes = self.channel.seal(&Message::Register(register));
                self.transmit.push_back(bytes);
                self.state = State::AwaitRegistered;
                self.waiting_since = Some(now);
                Ok(())
            }
            (State::AwaitRegistered, Message::Registered(r)) => {
                if r.matched.len() != self.config.services.len() {
                    return Err(format!(
                        "master answered for {} services, we registered {}",
                        r.matched.len(),
                        self.config.services.len()
                    ));
                }
                self.state = State::Ready;
                self.waiting_since = None;
                self.events.push_back(AgentEvent::Registered { matched: r.matched });
                if let Some(sample) = self.latest.clone() {
                    self.send_report(now, &sample);
                }
                Ok(())
            }
            (State::Ready | State::Leaving, Message::Ack(a)) => {
                if a.seq <= self.last_acked_seq || a.seq > self.last_report_seq {
                    return Err(format!("master acknowledged report {} we did not send", a.seq));
                }
                self.last_acked_seq = a.seq;
                self.waiting_since = (self.last_acked_seq < self.last_report_seq).then_some(now);
                if a.weights.len() == self.weights.len() {
                    self.weights.clone_from(&a.weights);
                }
                self.events.push_back(AgentEvent::Acked { seq: a.seq, weights: a.weights });
                Ok(())
            }
            (state, msg) => {
                Err(format!("unexpected {:?} from master in state {state:?}", msg.message_type()))
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.state = State::Disconnected;
        self.transmit.clear();
        self.waiting_since = None;
        self.events.push_back(AgentEvent::Close { reason, retry: true });
    }

    /// A new measurement: reported at once when registered, else kept for the first
    /// report after registration.
    pub fn handle_sample(&mut self, now: Time, sample: Sample) {
        assert_eq!(
            sample.capacity.len(),
            self.config.services.len(),
            "a sample has one capacity per service"
        );
        if self.state == State::Ready {
            self.send_report(now, &sample);
        }
        self.latest = Some(sample);
    }

    fn send_report(&mut self, now: Time, sample: &Sample) {
        let capacity = sample.capacity.iter().map(|c| c.and_then(wire::capacity_per_mille)).collect();
        let report = Report { admin: sample.admin, capacity, metrics: sample.metrics.clone() };
        let bytes = self.channel.seal(&Message::Report(report));
        self.last_report_seq = self.channel.last_sent();
        self.transmit.push_back(bytes);
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
    }

    /// Leave: tell the master to drain this server, then close.
    pub fn handle_goodbye(&mut self, _now: Time, reason: &str) {
        match self.state {
            State::Ready | State::AwaitRegistered => {
                let bytes = self.channel.seal(&Message::Goodbye(Goodbye { reason: reason.to_owned() }));
                self.transmit.push_back(bytes);
            }
            State::AwaitWelcome | State::Disconnected | State::Leaving => {}
        }
        if self.state != State::Leaving {
            self.state = State::Leaving;
            self.waiting_since = None;
            self.events.push_back(AgentEvent::Close { reason: format!("goodbye: {reason}"), retry: false });
        }
    }

    /// Time has passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if let Some(since) = self.waiting_since {
            if now.saturating_since(since) >= self.config.master_timeout {
                self.fail(format!("master silent for {:.1} s", now.saturating_since(since).as_secs_f64()));
            }
        }
    }

    /// Bytes to write to the master.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// When to call [`Agent::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Time> {
        self.waiting_since.map(|t| t + self.config.master_timeout)
    }

    /// What the driver must know or do.
    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }
}
