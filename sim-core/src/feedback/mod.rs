//! Active feedback in virtual time: simulated feedbackd agents and masters running the
//! daemons' own state machines (`feedbackd_proto::{Agent, Master}`) and weight law.
//!
//! A [`Loop`] holds one [`Master`] per director and one [`Agent`] per (real server,
//! director), and the TCP connections between them: every frame is encoded, authenticated
//! and decoded by the real codec, and crosses a simulated link with a one-way delay and
//! segment loss repaired by retransmission (in order: a loss delays what follows it too; a
//! segment whose `max_retries` retransmissions are all lost too breaks the connection and the agent
//! reconnects after the daemon's backoff). The loop drives the state machines exactly as
//! the daemons' loops do (`feedbackd-agent/src/daemon.rs`, `feedbackd-master/src/daemon.rs`):
//! the agent writes its frames before acting on its events; the master applies its events,
//! then writes its frames, then closes what it closed.
//!
//! What the loop needs from the cluster is behind [`Host`]: the director's IPVS table, the
//! changes to it, and a server's measurement. The simulation's host samples a server's
//! simulated `/proc/stat` counters with the agent's own cpuload computation ([`Sampler`]);
//! the replay of a live master's journal ([`replay`]) feeds the recorded reports instead.
//!
//! Everything is ordered (an [`EventHeap`] keyed by time and insertion sequence, `BTreeMap`s),
//! and every random draw (nonces, losses, backoff jitter, phases) comes from the loop's own
//! generator: the same seed gives the same weights.

mod replay;
mod sampler;
mod trace;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::backoff::Backoff;
use feedbackd_proto::drive::{ApplyFailed, MasterOutput, flush_master};
use feedbackd_proto::journal::Decision;
use feedbackd_proto::master::{ConnId, Master, MasterConfig, MasterEvent, TableEntry};
use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Time};
use rand::{Rng as _, RngCore};

use crate::engine::EventHeap;
use crate::model::config::FeedbackLink;
use crate::rng::Rng;

pub use self::replay::{ReplayError, replay};
pub use self::sampler::{Sampler, ServerCounters, USER_HZ};
pub use self::trace::{WeightStats, weight_stats};

/// What the feedback loop needs from the cluster it runs in.
pub trait Host {
    /// Director `director`'s IPVS table now: its virtual services and their real servers.
    fn table(&mut self, director: usize, now: Time) -> (Vec<ServiceKey>, Vec<TableEntry>);
    /// Applies a master's change (`AddRealServer`, `SetWeight`, `RemoveRealServer`) to the
    /// director's table; an error is reported back to the master as a failed apply.
    fn apply(&mut self, director: usize, now: Time, event: &MasterEvent) -> Result<(), String>;
    /// Measures real server `server` (the sampler's index) now.
    fn sample(&mut self, server: usize, now: Time) -> Sample;
}

/// The loop's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Measurements handed to the agents: each is reported at once by a registered agent,
    /// or kept by an unregistered one for its first report (a later one supersedes it).
    pub reports_sent: u64,
    /// Segment transmissions lost (each retransmitted).
    pub segments_lost: u64,
    /// Connections that broke or were closed while the agent wanted to stay.
    pub reconnects: u64,
    /// Failed applies.
    pub apply_failures: u64,
}

/// An agent of the loop: which server and director, and where it connects from.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    /// The agent's configuration (id, services, interval, key, master timeout).
    pub config: AgentConfig,
    /// The director (master index) it reports to.
    pub director: usize,
    /// The sampler (real server) index whose measurements it reports.
    pub server: usize,
    /// Its address: the master's peer address for it.
    pub addr: IpAddr,
}

/// Simulated feedbackd agents and masters, and the connections between them.
pub struct Loop {
    link: FeedbackLink,
    masters: Vec<MasterNode>,
    agents: Vec<AgentNode>,
    /// Agents of each sampler (server).
    by_server: Vec<Vec<u32>>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    pending: EventHeap<Pending>,
    rng: Rng,
    /// Agents reconnect by themselves after a broken connection (off in a replay, where
    /// the journal says when agents connect).
    reconnect: bool,
    stats: LoopStats,
    /// Reports sent per sampler (server).
    reports: Vec<u64>,
    decisions: Vec<(Time, usize, Decision)>,
}

struct MasterNode {
    master: Master,
    /// The time of the pending `MasterTimer`, if one is armed.
    timer: Option<Time>,
    rescan: Option<Duration>,
}

struct AgentNode {
    spec: AgentSpec,
    agent: Agent,
    conn: Option<ConnId>,
    backoff: Backoff,
    timer: Option<Time>,
}

/// One TCP connection: a FIFO lane each way.
struct Conn {
    agent: u32,
    director: u32,
    to_master: Lane,
    to_agent: Lane,
    /// The master knows the connection (accepted, not yet disconnected).
    master_open: bool,
    /// A segment was lost too often: nothing more is carried.
    broken: bool,
}

#[derive(Default)]
struct Lane {
    /// Segments with their delivery times, in order.
    queue: VecDeque<(Time, Segment)>,
    /// Delivery time of the last segment queued (in-order delivery).
    last: Time,
}

enum Segment {
    Bytes(Vec<u8>),
    /// The sender closed (or the connection broke).
    Fin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    /// A server's next measurement (simulation only).
    Tick {
        server: u32,
        interval: Duration,
    },
    /// An agent opens a connection.
    Connect(u32),
    /// Its SYN reaches the master.
    Accept(ConnId),
    /// The SYN-ACK reaches the agent: TCP is up.
    Connected(ConnId),
    /// The head of a lane arrives.
    Deliver {
        conn: ConnId,
        to_master: bool,
    },
    AgentTimer(u32),
    MasterTimer(u32),
    Rescan(u32),
}

impl Loop {
    /// Masters (one per director, `rescan`: how often each re-reads its table; `None` in a
    /// replay) and agents, not yet started. `rng`: the loop's own stream.
    pub fn new(
        masters: Vec<(MasterConfig, Option<Duration>)>,
        agents: Vec<AgentSpec>,
        link: FeedbackLink,
        rng: Rng,
    ) -> Loop {
        let servers = agents.iter().map(|a| a.server + 1).max().unwrap_or(0);
        let mut by_server = vec![Vec::new(); servers];
        for (i, a) in agents.iter().enumerate() {
            by_server[a.server].push(i as u32);
        }
        Loop {
            link,
            masters: masters
                .into_iter()
                .map(|(config, rescan)| MasterNode { master: Master::new(config), timer: None, rescan })
                .collect(),
            agents: agents
                .into_iter()
                .map(|spec| AgentNode {
                    agent: Agent::new(spec.config.clone()),
                    spec,
                    conn: None,
                    backoff: Backoff::agent(),
                    timer: None,
                })
                .collect(),
            by_server,
            conns: BTreeMap::new(),
            next_conn: 1,
            pending: EventHeap::new(),
            rng,
            reconnect: true,
            stats: LoopStats::default(),
            reports: vec![0; servers],
            decisions: Vec::new(),
        }
    }

    /// Starts it at `now` as the daemons start: every master reads its table (and then
    /// rescans), every server is first measured at a random phase within its agents'
    /// interval and then every interval, and its agents connect at that phase.
    pub fn start(&mut self, now: Time, host: &mut impl Host) {
        for d in 0..self.masters.len() {
            self.rescan(d, now, host);
        }
        for server in 0..self.by_server.len() {
            let Some(&first) = self.by_server[server].first() else { continue };
            let interval = self.agents[first as usize].spec.config.interval;
            let phase = Duration(self.rng.random_range(0..interval.as_nanos().max(1)));
            self.push(now + phase, Pending::Tick { server: server as u32, interval });
            for a in self.by_server[server].clone() {
                self.push(now + phase, Pending::Connect(a));
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    /// Measurements of sampler `server` handed to its agents.
    pub fn reports_of(&self, server: usize) -> u64 {
        self.reports.get(server).copied().unwrap_or(0)
    }

    /// Every change the masters made: (time, director, change).
    pub fn decisions(&self) -> &[(Time, usize, Decision)] {
        &self.decisions
    }

    /// Master `d`.
    pub fn master(&self, d: usize) -> &Master {
        &self.masters[d].master
    }

    /// When the loop next has something to do.
    pub fn next_time(&self) -> Option<Time> {
        self.pending.peek_time()
    }

    /// Does everything due at or before `now` (each at its own time, which is never after
    /// `now`).
    pub fn run_until(&mut self, now: Time, host: &mut impl Host) {
        while self.pending.peek_time().is_some_and(|t| t <= now) {
            let Some((t, p)) = self.pending.pop() else { unreachable!("peeked") };
            self.dispatch(t, p, host);
        }
    }

    fn push(&mut self, at: Time, p: Pending) {
        self.pending.push(at, p);
    }

    fn dispatch(&mut self, now: Time, p: Pending, host: &mut impl Host) {
        match p {
            Pending::Tick { server, interval } => {
                let sample = host.sample(server as usize, now);
                for a in self.by_server[server as usize].clone() {
                    self.sample(a as usize, now, sample.clone());
                }
                self.push(now + interval, Pending::Tick { server, interval });
            }
            Pending::Connect(a) => self.connect(a as usize, now),
            Pending::Accept(conn) => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                if c.broken {
                    return;
                }
                c.master_open = true;
                let (a, d) = (c.agent as usize, c.director as usize);
                let nonce = self.nonce();
                let peer = self.agents[a].spec.addr;
                self.masters[d].master.handle_connect(now, conn, peer, nonce);
                self.flush_master(d, now, host);
            }
            Pending::Connected(conn) => {
                let Some(c) = self.conns.get(&conn) else { return };
                let a = c.agent as usize;
                if c.broken || self.agents[a].conn != Some(conn) {
                    return;
                }
                let nonce = self.nonce();
                self.agents[a].agent.handle_connected(now, nonce);
                self.flush_agent(a, now);
            }
            Pending::Deliver { conn, to_master } => self.deliver(conn, to_master, now, host),
            Pending::AgentTimer(a) => {
                let node = &mut self.agents[a as usize];
                if node.timer != Some(now) {
                    return; // re-armed since
                }
                node.timer = None;
                node.agent.handle_timeout(now);
                self.flush_agent(a as usize, now);
            }
            Pending::MasterTimer(d) => {
                let node = &mut self.masters[d as usize];
                if node.timer != Some(now) {
                    return;
                }
                node.timer = None;
                node.master.handle_timeout(now);
                self.flush_master(d as usize, now, host);
            }
            Pending::Rescan(d) => self.rescan(d as usize, now, host),
        }
    }

    fn rescan(&mut self, d: usize, now: Time, host: &mut impl Host) {
        let (services, entries) = host.table(d, now);
        self.masters[d].master.handle_table(now, &services, &entries);
        self.flush_master(d, now, host);
        if let Some(every) = self.masters[d].rescan {
            self.push(now + every, Pending::Rescan(d as u32));
        }
    }

    /// The master of director `d` reads this table now (a replay's recorded rescan).
    pub fn handle_table(
        &mut self,
        d: usize,
        now: Time,
        services: &[ServiceKey],
        entries: &[TableEntry],
        host: &mut impl Host,
    ) {
        self.masters[d].master.handle_table(now, services, entries);
        self.flush_master(d, now, host);
    }

    /// A change of master `d`'s failed to apply (a replay's recorded failure).
    pub fn apply_failed(
        &mut self,
        d: usize,
        now: Time,
        key: feedbackd_proto::master::RsKey,
        host: &mut impl Host,
    ) {
        self.masters[d].master.handle_apply_failed(now, key);
        self.flush_master(d, now, host);
    }

    /// Master `d` hears a polled (agent-check) agent's answer (a replay's recorded answer).
    pub fn polled(
        &mut self,
        d: usize,
        now: Time,
        answer: (&feedbackd_proto::master::Polled, feedbackd_proto::types::AdminState, Option<u16>),
        host: &mut impl Host,
    ) {
        let (polled, admin, capacity) = answer;
        self.masters[d].master.handle_polled(now, polled, admin, capacity);
        self.flush_master(d, now, host);
    }

    /// Master `d` takes an input `f` now (a replay's recorded operator action), then its
    /// output is flushed as after any input.
    pub fn with_master<R>(
        &mut self,
        d: usize,
        now: Time,
        host: &mut impl Host,
        f: impl FnOnce(&mut Master) -> R,
    ) -> R {
        let r = f(&mut self.masters[d].master);
        self.flush_master(d, now, host);
        r
    }

    /// Agent `a` is handed a measurement (reported at once when registered).
    pub fn sample(&mut self, a: usize, now: Time, sample: Sample) {
        let node = &mut self.agents[a];
        self.stats.reports_sent += 1;
        self.reports[node.spec.server] += 1;
        node.agent.handle_sample(now, sample);
        self.flush_agent(a, now);
    }

    /// Agent `a` says goodbye (its daemon stops).
    pub fn goodbye(&mut self, a: usize, now: Time, reason: &str) {
        self.agents[a].agent.handle_goodbye(now, reason);
        self.flush_agent(a, now);
    }

    /// Agent `a` opens a connection now.
    pub fn connect(&mut self, a: usize, now: Time) {
        if self.agents[a].conn.is_some() {
            return;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let director = self.agents[a].spec.director as u32;
        let c = Conn {
            agent: a as u32,
            director,
            to_master: Lane { queue: VecDeque::new(), last: now },
            to_agent: Lane { queue: VecDeque::new(), last: now },
            master_open: false,
            broken: false,
        };
        self.conns.insert(conn, c);
        self.agents[a].conn = Some(conn);
        // The handshake: SYN one way, SYN-ACK back (not subject to loss).
        let lat = self.link.latency;
        self.push(now + lat, Pending::Accept(conn));
        self.push(now + lat + lat, Pending::Connected(conn));
    }

    /// Agent `a`'s process dies: its connection ends without a goodbye (the kernel closes
    /// the socket; the master sees the close after the link's delay).
    pub fn kill(&mut self, a: usize, now: Time) {
        if let Some(conn) = self.agents[a].conn.take() {
            self.send(conn, false, Segment::Fin, now);
        }
        self.agents[a].agent.handle_disconnected(now);
        self.agents[a].timer = None;
    }

    fn nonce(&mut self) -> feedbackd_proto::wire::Nonce {
        let mut n = [0u8; feedbackd_proto::wire::NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }

    /// Queues a segment on a lane; `to_agent`: the master → agent direction.
    fn send(&mut self, conn: ConnId, to_agent: bool, seg: Segment, now: Time) {
        let link = self.link;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.broken {
            return;
        }
        // Transmissions lost in a row, each waiting a doubled timeout before the retry.
        let mut delay = link.latency;
        let mut rto = link.rto;
        let mut lost = 0u32;
        while link.loss > 0.0 && self.rng.random::<f64>() < link.loss {
            lost += 1;
            self.stats.segments_lost += 1;
            if lost > link.max_retries {
                break;
            }
            delay = Duration(delay.0.saturating_add(rto.0));
            rto = Duration(rto.0.saturating_mul(2));
        }
        let lane = if to_agent { &mut c.to_agent } else { &mut c.to_master };
        let at = (now + delay).max(lane.last);
        if lost > link.max_retries {
            // The sender gives up: both ends see the connection reset.
            c.broken = true;
            c.to_agent.queue.clear();
            c.to_master.queue.clear();
            c.to_agent.queue.push_back((at, Segment::Fin));
            c.to_master.queue.push_back((at, Segment::Fin));
            c.to_agent.last = at;
            c.to_master.last = at;
            self.push(at, Pending::Deliver { conn, to_master: false });
            self.push(at, Pending::Deliver { conn, to_master: true });
            return;
        }
        lane.last = at;
        lane.queue.push_back((at, seg));
        self.push(at, Pending::Deliver { conn, to_master: !to_agent });
    }

    fn deliver(&mut self, conn: ConnId, to_master: bool, now: Time, host: &mut impl Host) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let lane = if to_master { &mut c.to_master } else { &mut c.to_agent };
        // A delivery planned before the connection broke finds the reset instead.
        if lane.queue.front().is_none_or(|(t, _)| *t != now) {
            return;
        }
        let Some((_, seg)) = lane.queue.pop_front() else { return };
        let (a, d) = (c.agent as usize, c.director as usize);
        self.deliver_segment(conn, a, d, to_master, seg, now, host);
        self.forget(conn);
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_segment(
        &mut self,
        conn: ConnId,
        a: usize,
        d: usize,
        to_master: bool,
        seg: Segment,
        now: Time,
        host: &mut impl Host,
    ) {
        if to_master {
            let open = self.conns.get(&conn).is_some_and(|c| c.master_open);
            match seg {
                Segment::Bytes(bytes) if open => {
                    self.masters[d].master.handle_input(now, conn, &bytes);
                    self.flush_master(d, now, host);
                }
                Segment::Bytes(_) => {}
                Segment::Fin => {
                    if open {
                        self.conns.get_mut(&conn).expect("open").master_open = false;
                        self.masters[d].master.handle_disconnect(now, conn);
                        self.flush_master(d, now, host);
                    }
                }
            }
        } else {
            if self.agents[a].conn != Some(conn) {
                return;
            }
            match seg {
                Segment::Bytes(bytes) => {
                    self.agents[a].agent.handle_input(now, &bytes);
                    self.flush_agent(a, now);
                }
                Segment::Fin => {
                    // The master closed (or the connection broke): reconnect later.
                    self.agents[a].conn = None;
                    self.agents[a].agent.handle_disconnected(now);
                    self.agents[a].timer = None;
                    self.retry(a, now);
                }
            }
        }
    }

    /// Drops a connection both ends are done with.
    fn forget(&mut self, conn: ConnId) {
        let done = self.conns.get(&conn).is_some_and(|c| {
            !c.master_open
                && c.to_master.queue.is_empty()
                && c.to_agent.queue.is_empty()
                && self.agents[c.agent as usize].conn != Some(conn)
        });
        if done {
            self.conns.remove(&conn);
        }
    }

    fn retry(&mut self, a: usize, now: Time) {
        self.stats.reconnects += 1;
        if self.reconnect {
            let delay = self.agents[a].backoff.next_delay(self.rng.next_u64());
            self.push(now + delay, Pending::Connect(a as u32));
        }
    }

    /// The agent daemon's session loop: write, then act on events; re-arm the timer.
    fn flush_agent(&mut self, a: usize, now: Time) {
        if let Some(conn) = self.agents[a].conn {
            while let Some(bytes) = self.agents[a].agent.poll_transmit() {
                self.send(conn, false, Segment::Bytes(bytes), now);
            }
        }
        while let Some(ev) = self.agents[a].agent.poll_event() {
            match ev {
                AgentEvent::Registered { .. } => self.agents[a].backoff.reset(),
                AgentEvent::Acked { .. } => {}
                AgentEvent::Close { retry, .. } => {
                    if let Some(conn) = self.agents[a].conn.take() {
                        self.send(conn, false, Segment::Fin, now);
                    }
                    self.agents[a].agent.handle_disconnected(now);
                    if retry {
                        self.retry(a, now);
                    }
                }
            }
        }
        let want = self.agents[a].agent.poll_timeout().map(|t| t.max(now));
        if want != self.agents[a].timer {
            self.agents[a].timer = want;
            if let Some(t) = want {
                self.push(t, Pending::AgentTimer(a as u32));
            }
        }
    }

    /// The master daemon's flush, in the daemon's order (`feedbackd_proto::drive`): apply
    /// events, write frames, then close.
    fn flush_master(&mut self, d: usize, now: Time, host: &mut impl Host) {
        let mut out = SimOutput {
            director: d,
            host,
            decisions: &mut self.decisions,
            stats: &mut self.stats,
            frames: Vec::new(),
            closes: Vec::new(),
        };
        flush_master(&mut self.masters[d].master, now, &mut out);
        let (frames, closes) = (out.frames, out.closes);
        for (conn, bytes) in frames {
            if self.conns.get(&conn).is_some_and(|c| c.master_open) {
                self.send(conn, true, Segment::Bytes(bytes), now);
            }
        }
        for conn in closes {
            if let Some(c) = self.conns.get_mut(&conn)
                && c.master_open
            {
                c.master_open = false;
                self.send(conn, true, Segment::Fin, now);
            }
        }
        let want = self.masters[d].master.poll_timeout().map(|t| t.max(now));
        if want != self.masters[d].timer {
            self.masters[d].timer = want;
            if let Some(t) = want {
                self.push(t, Pending::MasterTimer(d as u32));
            }
        }
    }
}

/// A master's output in the simulation: table changes go to the host (and are recorded as
/// decisions); frames and closes are collected, then sent in that order.
struct SimOutput<'a, H> {
    director: usize,
    host: &'a mut H,
    decisions: &'a mut Vec<(Time, usize, Decision)>,
    stats: &'a mut LoopStats,
    frames: Vec<(ConnId, Vec<u8>)>,
    closes: Vec<ConnId>,
}

impl<H: Host> MasterOutput for SimOutput<'_, H> {
    fn apply(&mut self, now: Time, ev: &MasterEvent) -> Result<(), ApplyFailed> {
        let decision = match ev {
            MasterEvent::Close { .. } | MasterEvent::Registered { .. } => return Ok(()),
            MasterEvent::AddRealServer { key, weight, .. } => Decision::Add { key: *key, weight: *weight },
            MasterEvent::SetWeight { key, from, to, .. } => Decision::Set { key: *key, from: *from, to: *to },
            MasterEvent::RemoveRealServer { key, .. } => Decision::Remove { key: *key },
        };
        self.decisions.push((now, self.director, decision));
        if self.host.apply(self.director, now, ev).is_err() {
            self.stats.apply_failures += 1;
            return Err(ApplyFailed);
        }
        Ok(())
    }

    fn transmit(&mut self, _now: Time, conn: ConnId, bytes: Vec<u8>) {
        self.frames.push((conn, bytes));
    }

    fn close(&mut self, _now: Time, conn: ConnId, _reason: &str) {
        self.closes.push(conn);
    }
}
