//! The simulation: set-up from a [`ClusterConfig`], the event loop, and measurement.
//!
//! One closed `enum Event` dispatched in one `match`; the event queue holds only
//! "next thing" events (a population's next arrival, a server's next completion, a message
//! reaching its next hop after a delay); IPVS timers stay in the table's own FIFO lanes.
//! The conversation of a connection (messages, paths, retransmissions) is in [`flow`];
//! health checks and real-server faults are in [`health`].

mod breakdown;
pub mod ecmp;
mod failover;
mod feedback;
mod flood;
mod flow;
mod health;
mod instant;
mod lanes;

use lvs_sched::{DestId, Duration, Forwarding, Time};

use crate::arrival::Arrivals;
use crate::cpu::Cpu;
use crate::engine::{EventQueue, TimerSet};
use crate::link::{Channel, ChannelConfig};
use crate::model::DestConfig;
use crate::model::config::{Change, ClusterConfig, ConfigError, PopulationConfig, ServerChange};
use crate::model::report::*;
use crate::rng::{Rng, Streams};
use crate::stats::{BatchMeans, Latency, LogHistogram, TimeIntegral};
use lvs_ipvs::{self as ipvs, ConnId, Ipvs, IpvsError, ServiceId};

use self::breakdown::{Backend, PopMeasure};
use self::flow::Msg;

/// Where a run ends whatever is left [146 years]: far beyond any time a scenario can
/// hold (the scenario format bounds every time to a small fraction of it), so only a
/// sample from a long tail or a time that saturated at [`Time::MAX`] reaches it. Sums of
/// a few times below it cannot overflow `u64`.
pub const HORIZON: Time = Time(1 << 62);

/// A run in progress.
pub struct Simulation {
    cfg: ClusterConfig,
    queue: EventQueue<Event>,
    /// Next completion of each real server (owner `i`) and backend (owner `servers + i`).
    completions: TimerSet,
    now: Time,
    warmup: Time,
    end: Time,
    dirs: Vec<Director>,
    servers: Vec<Server>,
    backends: Vec<Backend>,
    pops: Vec<Population>,
    conns: Vec<Conn>,
    free: Vec<u32>,
    serial: u32,
    open_conns: u64,
    m: Measure,
    /// The feedback loop (owner `servers + backends` of `completions`), if configured.
    feedback: Option<self::feedback::Feedback>,
    /// The HA group of directors, if configured.
    ha: Option<self::failover::Ha>,
    /// The ECMP tier of directors, if configured.
    ecmp: Option<self::ecmp::Tier>,
    /// Health checks (owners `servers + backends + 1 ..` of `completions`, one per
    /// checker) and real-server faults, if the run has any.
    health: Option<self::health::Health>,
    /// The run keeps full per-server detail (`ServerDetail::full`): full histograms and a
    /// per-server time series; else compact histograms and distributions across servers.
    server_detail: bool,
    /// What the fast path of an exchange may skip (see [`instant`]).
    instant: self::instant::Instant,
    /// FIFO lanes beside the queue's heap (see [`lanes`]), and their numbering.
    lanes: self::lanes::Lanes,
    streams: self::lanes::Streams,
    /// SYN floods and the DoS measurements, if any director has a flood or defences.
    dos: Option<self::flood::Dos>,
}

/// Where the run loop's next event is.
enum Next {
    /// Completion timer of this owner.
    Timer(u32),
    /// Head of this lane.
    Lane(self::lanes::Lane),
    /// The queue's heap.
    Queue,
}

/// Everything that happens at a point in time.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A population's next connection.
    Arrival(u16),
    /// A message reaches its next stage.
    Msg(Msg),
    /// A dropped message is sent again.
    Retransmit(Msg),
    /// A real server's query reaches its backend.
    BackendQuery { conn: u32 },
    /// A backend's answer reaches the real server.
    BackendReply { conn: u32 },
    /// A client's think time is over: it sends its next request.
    Think { conn: u32 },
    /// A UDP client stops waiting for request `left` (requests left when it was sent).
    UdpTimeout { conn: u32, serial: u32, left: u32 },
    /// A TCP client stops waiting for the response to request `left`.
    ResponseTimeout { conn: u32, serial: u32, left: u32 },
    /// A health check's probe reaches its next step.
    Probe { check: u32, serial: u32, step: self::health::ProbeStep },
    /// The measured window opens.
    WindowStart,
    /// The measured window closes (arrivals stop).
    WindowEnd,
    /// A time-series sample.
    Sample,
    /// A configured change (index into the actions).
    Action(u32),
    /// A configured change to a real server (index into the server events).
    ServerChange(u32),
    /// A configured change to a director (index into the director events).
    DirectorChange(u32),
    /// The HA group's next timer or message.
    Ha,
    /// An ECMP router notices that a member (index in the tier) died.
    EcmpDetect(u16),
    /// A director's sync sender may have a message to flush.
    SyncFlush(u16),
    /// A sync message (slot) reaches the other members.
    SyncDeliver(u32),
    /// A SYN flood's next burst (index over every director's floods).
    Flood(u16),
}

struct Director {
    ipvs: Ipvs,
    /// It runs (not crashed).
    alive: bool,
    /// Its external link works.
    ext_up: bool,
    /// Its internal link works.
    int_up: bool,
    /// It accepts the VIP's packets: always for a lone director while alive; in an HA
    /// group, while the group says it holds the VIP.
    holds: bool,
    /// Counters of its tables before it last restarted (a reboot loses the table).
    retired: ipvs::Stats,
    /// Its links and CPU are all ideal (fixed for the run).
    ideal: bool,
    ext_in: Channel,
    ext_out: Channel,
    int_out: Channel,
    int_in: Channel,
    cpu: Channel,
    /// `[ServiceId][DestId]` → real server index.
    dest_server: Vec<Vec<u32>>,
    /// The keys of its configured services, in configuration order.
    keys: Vec<ipvs::ServiceKey>,
    /// Link busy times at the window's start and end.
    window_busy: [[Duration; 4]; 2],
    busy_sample: [Duration; 4],
    /// CPU busy time at the window's start and end.
    window_cpu: [Duration; 2],
}

struct Server {
    cpu: Cpu,
    uplink: Channel,
    open: TimeIntegral,
    /// (busy core-time, open-connection integral) at the window's start and end.
    window: [(u128, u128); 2],
    busy_sample: u128,
    connections: u64,
    /// Requests refused (whole run).
    refused: u64,
    /// Requests served (whole run).
    served: u64,
    /// Requests in flight on it: admitted and not yet answered or lost (in its processors,
    /// or waiting for its backend), over time (the Prequal agent's `rif`).
    rif: TimeIntegral,
    /// Requests that have left `rif` (whole run).
    rif_left: u64,
    latency: Latency,
    /// Where its weight is read: director, service, dest.
    weight_ref: Option<(usize, ServiceId, DestId)>,
    /// Times it came back from a crash (wrapping): connections it accepted in an
    /// earlier boot have no socket any more.
    boots: u8,
}

struct Population {
    arrivals: Arrivals,
    rng_arrivals: Rng,
    rng_work: Rng,
    rng_clients: Rng,
    /// Next source port of each client address.
    ports: Vec<u16>,
    /// Requests, request bytes, response bytes where constant (`flow::fixed_draws`).
    fixed: [Option<u32>; 3],
    dir: usize,
}

/// A client connection (or UDP flow) from its arrival until its last message is done.
#[derive(Clone, Copy, Debug)]
struct Conn {
    opened: Time,
    req_sent: Time,
    /// The real server's boot (`Server::boots`) in which it accepted the connection (its
    /// SYN, or a UDP datagram, arrived): a byte in the padding, not a time.
    boot: u8,
    ipvs: ConnId,
    server: u32,
    client: u32,
    serial: u32,
    demand_ns: u64,
    req_payload: u32,
    resp_payload: u32,
    requests_left: u32,
    /// Pure ACKs the client owes (sent with its next message).
    ack_debt: u32,
    /// The client, and the server, has received no data yet: its first data puts it in
    /// quick-ack mode (`flow::receiver_acks`).
    client_quickack: bool,
    server_quickack: bool,
    pop: u16,
    cport: u16,
    /// The director whose table holds `ipvs`.
    dir: u8,
    fwd: Forwarding,
    measured: bool,
    /// When its current backend query reached the backend.
    backend_at: Time,
    /// The client's outcome is settled (completed, refused, dropped).
    done: bool,
    /// Chains of events that still refer to it (each ends with a release): 1, and 2
    /// while a client's reset travels beside its request or response.
    refs: u8,
}

/// No IPVS entry (yet, or a one-packet UDP flow).
const NO_ENTRY: ConnId = ConnId(u32::MAX);
/// Not scheduled yet.
const NO_SERVER: u32 = u32::MAX;

#[derive(Default)]
struct Measure {
    counts: ConnCounts,
    interval_latency: Latency,
    responses: u64,
    responses_sampled: u64,
    /// Connections completed inside the measured window (any arrival time).
    completed_in_window: u64,
    arrivals: u64,
    completions: u64,
    peak_inflight: u64,
    log_histogram: LogHistogram,
    batch_means: Option<BatchMeans>,
    series: Vec<Sample>,
    last_sample: Time,
    /// Connections (any) that failed, and the count at the last sample.
    failed: u64,
    failed_sampled: u64,
    /// Per population, in configuration order.
    pops: Vec<PopMeasure>,
}

impl Simulation {
    /// Validates `cfg` and sets the cluster up at time zero.
    pub fn new(cfg: ClusterConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let streams = Streams::new(cfg.seed);
        let warmup = Time::ZERO + cfg.warmup;
        let end = Time::ZERO + cfg.duration;
        let server_detail = cfg.server_detail.full(cfg.servers.len());
        let mut servers: Vec<Server> =
            cfg.servers.iter().map(|s| Server::new(s.cpu, s.uplink.outbound, server_detail)).collect();
        let mut dirs = Vec::with_capacity(cfg.directors.len());
        for (di, d) in cfg.directors.iter().enumerate() {
            let seed = rand::RngCore::next_u64(&mut streams.stream(&format!("director/{}/ipvs", d.name)));
            dirs.push(Director::new(&cfg, di, seed, &mut servers)?);
        }
        let backends = cfg.backends.iter().map(|b| Backend::new(b.cpu)).collect();
        let pops = cfg.populations.iter().map(|p| Population::new(&cfg, p, &streams)).collect();
        let m = Measure {
            batch_means: Some(BatchMeans::new(warmup, end, crate::stats::LATENCY_BATCHES)),
            pops: cfg.populations.iter().map(|_| PopMeasure::default()).collect(),
            ..Measure::default()
        };
        let feedback =
            cfg.feedback.as_ref().map(|f| self::feedback::Feedback::new(&cfg, f, &streams, &servers));
        let ha = cfg.ha.as_ref().map(|h| self::failover::Ha::new(&cfg, h));
        let ecmp = cfg.ecmp.as_ref().map(|e| {
            let key = rand::RngCore::next_u64(&mut streams.stream("ecmp/router/hash"));
            self::ecmp::Tier::new(&cfg, e, key)
        });
        let health_base = cfg.servers.len() + cfg.backends.len() + 1;
        let health = self::health::Health::new(&cfg, health_base as u32);
        let timers = health_base + self::health::Health::count_checkers(&cfg);
        let instant = self::instant::Instant::new(&cfg);
        let dos = self::flood::Dos::new(&cfg, &streams);
        let streams = self::lanes::Streams::new(
            cfg.populations.len(),
            cfg.directors.len(),
            cfg.servers.len(),
            cfg.backends.len(),
        );
        let lanes = self::lanes::Lanes::new(streams, cfg.exchange == crate::model::Exchange::Fast);
        let mut sim = Simulation {
            queue: EventQueue::new(),
            completions: TimerSet::new(timers),
            now: Time::ZERO,
            warmup,
            end,
            dirs,
            servers,
            backends,
            pops,
            conns: Vec::new(),
            free: Vec::new(),
            serial: 0,
            open_conns: 0,
            m,
            feedback,
            ha,
            ecmp,
            health,
            server_detail,
            instant,
            lanes,
            streams,
            dos,
            cfg,
        };
        sim.queue.push(warmup, Event::WindowStart);
        sim.queue.push(end, Event::WindowEnd);
        if let Some(iv) = sim.cfg.sample_interval {
            sim.queue.push(Time::ZERO + iv.min(sim.cfg.duration), Event::Sample);
        }
        for i in 0..sim.pops.len() {
            sim.schedule_arrival(i);
        }
        for (i, a) in sim.cfg.actions.iter().enumerate() {
            sim.queue.push(Time::ZERO + a.at, Event::Action(i as u32));
        }
        for (i, e) in sim.cfg.server_events.iter().enumerate() {
            sim.queue.push(Time::ZERO + e.at, Event::ServerChange(i as u32));
        }
        for (i, e) in sim.cfg.director_events.iter().enumerate() {
            sim.queue.push(Time::ZERO + e.at, Event::DirectorChange(i as u32));
        }
        let floods: Vec<_> = sim.dos.iter().flat_map(|d| d.first_events()).collect();
        for (t, ev) in floods {
            sim.queue.push(t, ev);
        }
        sim.start_ha();
        sim.with_feedback(|lp, host| lp.start(Time::ZERO, host));
        sim.start_health();
        Ok(sim)
    }

    /// Runs to the end: arrivals stop at the duration, then every connection drains (and,
    /// with `drain_ipvs`, every IPVS entry expires).
    pub fn run(self) -> RunReport {
        self.run_observed(|_| {})
    }

    /// [`Simulation::run`], calling `observe` with the virtual time every 2^16 events
    /// (for progress bars; it cannot change the run).
    pub fn run_observed(mut self, observe: impl FnMut(Time)) -> RunReport {
        self.run_loop(observe);
        self.finish()
    }

    /// The event loop, to the end of the events.
    fn run_loop(&mut self, mut observe: impl FnMut(Time)) {
        let mut steps: u32 = 0;
        loop {
            steps = steps.wrapping_add(1);
            if steps & 0xFFFF == 0 {
                observe(self.now);
            }
            // The earliest (time, sequence) of the completion timers, the lanes and the
            // queue's heap.
            let mut next = self.completions.peek().map(|(t, s, o)| ((t, s), Next::Timer(o)));
            if let Some((t, s, l)) = self.lanes.peek()
                && next.as_ref().is_none_or(|(k, _)| (t, s) < *k)
            {
                next = Some(((t, s), Next::Lane(l)));
            }
            if let Some(k) = self.queue.peek_key()
                && next.as_ref().is_none_or(|(n, _)| k < *n)
            {
                next = Some((k, Next::Queue));
            }
            // Past the horizon only a sample from a long tail (or a time that saturated)
            // is left: the run ends there, its connections counted as stuck.
            let Some(((t, _), which)) = next.filter(|((t, _), _)| *t <= HORIZON) else { break };
            match which {
                Next::Timer(owner) => {
                    self.queue.fired(t);
                    self.now = t;
                    self.timer(owner as usize);
                }
                Next::Lane(l) => {
                    let (t, ev) = self.lanes.pop(l);
                    self.queue.fired(t);
                    self.now = t;
                    self.dispatch(ev);
                }
                Next::Queue => {
                    let (t, ev) = self.queue.pop().expect("peeked");
                    self.now = t;
                    self.dispatch(ev);
                }
            }
        }
    }

    /// After the loop: stuck connections, the IPVS tables drained if asked, the report.
    fn finish(mut self) -> RunReport {
        self.end_stuck_conns();
        if self.cfg.drain_ipvs {
            for d in &mut self.dirs {
                while let Some(t) = d.ipvs.next_deadline().filter(|&t| t <= HORIZON) {
                    d.ipvs.advance(t);
                    self.now = self.now.max(t);
                }
            }
        }
        self.report()
    }

    /// Completion timer `owner` fires: a real server's, a backend's, the feedback loop's
    /// or a health checker's.
    fn timer(&mut self, owner: usize) {
        let n = self.servers.len();
        let b = self.backends.len();
        if owner < n {
            self.server_done(owner);
        } else if owner < n + b {
            self.backend_done(owner - n);
        } else if owner == n + b {
            self.with_feedback(|lp, host| lp.run_until(host.now(), host));
        } else {
            self.checker_timer(owner - n - b - 1);
        }
    }

    fn dispatch(&mut self, ev: Event) {
        match ev {
            Event::Arrival(p) => self.arrival(p as usize),
            Event::Msg(m) => self.walk(m),
            Event::Retransmit(m) => self.retransmit(m),
            Event::BackendQuery { conn } => self.backend_query(conn),
            Event::BackendReply { conn } => self.respond(conn),
            Event::Think { conn } => self.send_request(conn),
            Event::UdpTimeout { conn, serial, left } => self.udp_timeout(conn, serial, left),
            Event::ResponseTimeout { conn, serial, left } => self.response_timeout(conn, serial, left),
            Event::Probe { check, serial, step } => self.probe(check as usize, serial, step),
            Event::WindowStart => self.window_mark(0),
            Event::WindowEnd => self.window_mark(1),
            Event::Sample => self.sample(),
            Event::Action(i) => self.action(i as usize),
            Event::ServerChange(i) => self.server_event(i as usize),
            Event::DirectorChange(i) => self.director_event(i as usize),
            Event::Ha => self.ha_wake(),
            Event::EcmpDetect(m) => self.ecmp_detect(usize::from(m)),
            Event::SyncFlush(d) => self.sync_flush(d as usize),
            Event::SyncDeliver(slot) => self.sync_deliver(slot),
            Event::Flood(i) => self.flood(usize::from(i)),
        }
    }

    /// The client of connection `c` has its response now: its response time is recorded,
    /// once per histogram (the run's overall one is its populations' merged at the end).
    fn record_response(&mut self, c: u32) {
        let conn = &self.conns[c as usize];
        let rt = self.now - conn.req_sent;
        self.m.responses += 1;
        if self.cfg.sample_interval.is_some() {
            self.m.interval_latency.record(rt);
        }
        if conn.measured {
            self.m.pops[conn.pop as usize].latency.record(rt);
            self.servers[conn.server as usize].latency.record(rt);
            let secs = rt.as_nanos() as f64 / 1e9;
            self.m.log_histogram.record(secs);
            if let Some(b) = &mut self.m.batch_means {
                b.record(conn.opened, secs);
            }
        }
    }

    /// Runs `f` on the feedback loop with the cluster as its host, then re-arms the
    /// loop's timer (the loop stops at the end of the run: weights then stay as they are).
    fn with_feedback(
        &mut self,
        f: impl FnOnce(&mut crate::feedback::Loop, &mut self::feedback::SimHost<'_>),
    ) {
        let Some(fb) = self.feedback.as_mut() else { return };
        let mut host = self::feedback::SimHost {
            cfg: &self.cfg,
            now: self.now,
            dirs: &mut self.dirs,
            servers: &mut self.servers,
            samplers: &mut fb.samplers,
            services: &fb.services,
            trace: &mut fb.trace,
        };
        f(&mut fb.lp, &mut host);
        let next = fb.lp.next_time().filter(|&t| t <= self.end);
        let owner = (self.servers.len() + self.backends.len()) as u32;
        self.set_completion(owner, next);
    }

    /// Starts the HA group, if any: the lone directors serve, the group's members as it
    /// says.
    fn start_ha(&mut self) {
        for (d, dir) in self.dirs.iter_mut().enumerate() {
            dir.holds = self.ha.as_ref().is_none_or(|h| !h.has(d));
            if let Some(ha) = &self.ha {
                ha.configure_sync(d, &mut dir.ipvs);
            }
        }
        self.run_ha();
    }

    /// A director boots again: a fresh IPVS table with its configured services (the old
    /// table, and every connection entry in it, is gone); its links and their counters
    /// stay.
    fn restart_director(&mut self, d: usize) {
        let name = &self.cfg.directors[d].name;
        let mut rng = Streams::new(self.cfg.seed).stream(&format!("director/{name}/ipvs/{}", self.now.0));
        let seed = rand::RngCore::next_u64(&mut rng);
        // A reference into the old table (a fallback server the health checker put in,
        // or a dest id that the fresh table numbers differently) would outlive it: drop
        // them, let the fresh table set its own, then look for the rest in the others.
        for s in &mut self.servers {
            if s.weight_ref.is_some_and(|(rd, _, _)| rd == d) {
                s.weight_ref = None;
            }
        }
        let fresh = Director::new(&self.cfg, d, seed, &mut self.servers).expect("validated at start");
        let old = std::mem::replace(&mut self.dirs[d], fresh);
        let s = old.ipvs.stats();
        let new = &mut self.dirs[d];
        new.retired = old.retired + s;
        new.ext_in = old.ext_in;
        new.ext_out = old.ext_out;
        new.int_out = old.int_out;
        new.int_in = old.int_in;
        new.cpu = old.cpu;
        new.window_busy = old.window_busy;
        new.busy_sample = old.busy_sample;
        new.window_cpu = old.window_cpu;
        new.ext_up = old.ext_up;
        new.int_up = old.int_up;
        new.alive = true;
        new.holds = self.ha.as_ref().is_none_or(|h| !h.has(d));
        if let Some(ha) = &self.ha {
            ha.configure_sync(d, &mut new.ipvs);
        }
        self.relink_weight_refs();
    }

    /// Points every server without a weight reference at the first table (in director
    /// order) that lists it, if any does.
    fn relink_weight_refs(&mut self) {
        for (di, dir) in self.dirs.iter().enumerate() {
            for (sid, dests) in dir.dest_server.iter().enumerate() {
                for (did, &server) in dests.iter().enumerate() {
                    if let Some(s) = self.servers.get_mut(server as usize) {
                        s.weight_ref.get_or_insert((di, ServiceId(sid as u32), DestId(did as u32)));
                    }
                }
            }
        }
    }

    /// Applies a configured change to a real server.
    fn server_event(&mut self, i: usize) {
        let e = self.cfg.server_events[i];
        match e.change {
            ServerChange::Background(n) => self.servers[e.server].cpu.set_background(self.now, n),
            ServerChange::BackgroundLoad(m) => self.servers[e.server].cpu.set_background_load(self.now, m),
            ServerChange::Crash | ServerChange::Hang | ServerChange::Slow(_) | ServerChange::Recover => {
                self.server_fault(e.server, e.change)
            }
        }
        self.resched_server(e.server);
    }

    fn schedule_arrival(&mut self, p: usize) {
        let pop = &mut self.pops[p];
        if let Some(t) = pop.arrivals.next(&mut pop.rng_arrivals)
            && t < self.end
        {
            self.queue.push(t.max(self.now), Event::Arrival(p as u16));
        }
    }

    /// Re-plans a real server's completion timer after its CPU changed.
    fn resched_server(&mut self, s: usize) {
        let next = self.servers[s].cpu.next_completion();
        self.set_completion(s as u32, next);
    }

    fn resched_backend(&mut self, b: usize) {
        let next = self.backends[b].cpu.next_completion();
        self.set_completion((self.servers.len() + b) as u32, next);
    }

    /// Moves a completion timer; an unchanged time keeps its place in the order.
    fn set_completion(&mut self, owner: u32, next: Option<Time>) {
        if self.completions.get(owner) != next {
            let key = next.map(|t| (t, self.queue.next_seq()));
            self.completions.set(owner, key);
        }
    }

    /// Applies a configured change to the director's IPVS table, as ipvsadm would.
    fn action(&mut self, i: usize) {
        let a = self.cfg.actions[i];
        let svc = &self.cfg.directors[a.director].services[a.service];
        let dest = *svc.dests.iter().find(|d| d.server == a.server).expect("validated");
        // The kernel refuses what does not apply (editing a deleted server, deleting it
        // twice); so does the model, silently, as a script of ipvsadm commands would go on.
        let probe = if self.ecmp.is_some() { self.mh_probe(&a) } else { None };
        let _ = self.edit_table(a.director, a.service, &dest, a.change);
        if let Some(p) = probe {
            self.mh_added(&a, p);
        }
    }

    /// Changes real server `dest` of a director's service through its IPVS table, as
    /// ipvsadm would: `-e` (weight), `-d` (remove) or `-a` (restore, reviving it from the
    /// trash); the kernel's refusals are returned. An operator's actions and the health
    /// checkers both go through here.
    fn edit_table(
        &mut self,
        director: usize,
        service: usize,
        dest: &DestConfig,
        change: Change,
    ) -> Result<(), IpvsError> {
        let key = self.dirs[director].keys[service];
        let addr = self.cfg.servers[dest.server].address;
        let mut dc = dest.kernel(addr, key);
        let port = dc.port;
        let d = &mut self.dirs[director];
        d.ipvs.advance(self.now);
        match change {
            Change::Weight(w) => {
                dc.weight = w;
                d.ipvs.edit_dest(key, &dc).map(drop)
            }
            Change::Remove => d.ipvs.del_dest(key, addr, port).map(drop),
            Change::Restore(w) => {
                dc.weight = w;
                let did = d.ipvs.add_dest(key, &dc)?;
                let sid = d.ipvs.service_id(&key).expect("service exists");
                d.map_dest(sid, did, dest.server as u32);
                // A server in no configured service (a fallback) is seen here.
                self.servers[dest.server].weight_ref.get_or_insert((director, sid, did));
                Ok(())
            }
        }
    }

    /// Records what utilisations are computed from, at the window's start (0) or end (1).
    fn window_mark(&mut self, at: usize) {
        let now = self.now;
        for s in &mut self.servers {
            s.window[at] = (s.cpu.busy_core_ns(now), s.open.integral(now));
        }
        for d in &mut self.dirs {
            d.window_busy[at] = d.link_busy(now);
            d.window_cpu[at] = d.cpu.busy_time(now);
        }
        for b in &mut self.backends {
            b.window_mark(at, now);
        }
    }

    fn sample(&mut self) {
        let now = self.now;
        let iv = (now - self.m.last_sample).as_nanos().max(1);
        let (servers, across) = if self.server_detail {
            (self.server_samples(now, iv).collect(), None)
        } else {
            let n = self.servers.len();
            let (mut util, mut active, mut weight) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            for s in self.server_samples(now, iv) {
                util.push(s.utilization);
                active.push(f64::from(s.active_conns));
                weight.push(f64::from(s.weight));
            }
            let across = AcrossServers {
                utilization: Spread::of(&mut util),
                active_conns: Spread::of(&mut active),
                weight: Spread::of(&mut weight),
            };
            (Vec::new(), Some(across))
        };
        let director_link_utilization = self
            .dirs
            .iter_mut()
            .map(|d| {
                let busy = d.link_busy(now);
                let u = (0..4)
                    .map(|i| (busy[i] - d.busy_sample[i]).as_nanos() as f64 / iv as f64)
                    .fold(0.0, f64::max);
                d.busy_sample = busy;
                u
            })
            .collect();
        let dos = self.dos_sample();
        let il = std::mem::take(&mut self.m.interval_latency);
        self.m.series.push(Sample {
            t: now,
            responses: self.m.responses - self.m.responses_sampled,
            p50_ns: il.quantile_ns(0.5),
            p99_ns: il.quantile_ns(0.99),
            open_conns: self.open_conns,
            servers,
            across,
            director_link_utilization,
            failed: self.m.failed - self.m.failed_sampled,
            director_share: self.director_shares(),
            dos,
        });
        self.m.failed_sampled = self.m.failed;
        self.m.responses_sampled = self.m.responses;
        self.m.last_sample = now;
        if let Some(iv) = self.cfg.sample_interval
            && now < self.end
        {
            self.queue.push((now + iv).min(self.end), Event::Sample);
        }
    }

    /// Each real server's sample at `now`, `iv` ns after the last, in configuration order;
    /// it moves the servers' busy-time marks.
    fn server_samples(&mut self, now: Time, iv: u64) -> impl Iterator<Item = ServerSample> + '_ {
        let (dirs, feedback) = (&mut self.dirs, self.feedback.as_ref());
        self.servers.iter_mut().enumerate().map(move |(i, s)| {
            let busy = s.cpu.busy_core_ns(now);
            let util = (busy - s.busy_sample) as f64 / (iv as f64 * f64::from(s.cpu.config().cores));
            s.busy_sample = busy;
            let (mut active, mut inactive, mut weight) = (0, 0, 0);
            if let Some((d, sid, did)) = s.weight_ref {
                let ipvs = &mut dirs[d].ipvs;
                ipvs.advance(now);
                let dest = ipvs.service_by_id(sid).scheduler().dest(did);
                (active, inactive, weight) = (dest.active_conns(), dest.inactive_conns(), dest.weight());
            }
            ServerSample {
                utilization: util,
                active_conns: active,
                inactive_conns: inactive,
                weight,
                capacity: feedback.and_then(|f| f.samplers[i].last_capacity()),
            }
        })
    }

    /// Each director's share of the VIP's traffic now (see [`Sample::director_share`]).
    fn director_shares(&self) -> Vec<f64> {
        match &self.ha {
            Some(ha) => ha.shares(self.dirs.len()),
            None => self.dirs.iter().map(|d| if d.holds { 1.0 } else { 0.0 }).collect(),
        }
    }

    fn report(mut self) -> RunReport {
        let window = self.end - self.warmup;
        let w_ns = window.as_nanos() as f64;
        // Moved, not cloned: thousands of histograms twice would double the peak.
        let servers = std::mem::take(&mut self.servers)
            .into_iter()
            .zip(&self.cfg.servers)
            .map(|(s, c)| ServerReport {
                name: c.name.clone(),
                address: c.address,
                connections: s.connections,
                utilization: (s.window[1].0 - s.window[0].0) as f64 / (w_ns * f64::from(c.cpu.cores)),
                weight_final: s
                    .weight_ref
                    .map(|(d, sid, did)| self.dirs[d].ipvs.service_by_id(sid).scheduler().dest(did).weight())
                    .unwrap_or(0),
                active_conns_mean: (s.window[1].1 - s.window[0].1) as f64 / w_ns,
                latency: s.latency,
                refused: s.refused,
            })
            .collect();
        let expiries = self.dirs.iter().map(|d| d.ipvs.expired_total()).sum();
        // The report of the HA group and of the health checks, one struct.
        let ha = match (self.ha.as_ref().map(|h| h.report(self.dirs.len())), self.health.as_ref()) {
            (None, None) => None,
            (group, health) => {
                let mut r = group.unwrap_or_default();
                if let Some(h) = health.map(|h| h.report(&self.cfg)) {
                    r.faults = h.faults;
                    r.checks = h.checks;
                }
                Some(r)
            }
        };
        let ecmp = self.ecmp.take().map(|t| t.report);
        let dos = self.dos_report();
        let directors =
            self.dirs.into_iter().zip(&self.cfg.directors).map(|(d, c)| d.report(c, window)).collect();
        let backends =
            self.backends.iter().zip(&self.cfg.backends).map(|(b, c)| b.report(&c.name, window)).collect();
        // Each response is recorded once, in its population's histogram (merging is exact).
        let mut latency = Latency::new();
        for p in &self.m.pops {
            latency.merge(&p.latency);
        }
        let (services, populations) =
            self::breakdown::services_and_populations(&self.cfg, self.m.pops, window);
        let ref1 = Ref1Stats {
            log_histogram: self.m.log_histogram,
            batch_means: self.m.batch_means.expect("set at start"),
            arrivals: self.m.arrivals,
            completions: self.m.completions,
            expiries,
            peak_inflight: self.m.peak_inflight,
        };
        RunReport {
            seed: self.cfg.seed,
            simulated: self.now,
            window: (self.warmup, self.end),
            model_events: ref1.arrivals + ref1.completions + ref1.expiries,
            engine_events: self.queue.popped(),
            connections: self.m.counts,
            throughput_cps: self.m.completed_in_window as f64 / (w_ns / 1e9),
            latency,
            servers,
            server_detail: self.server_detail,
            directors,
            services,
            populations,
            backends,
            series: self.m.series,
            dos,
            ref1,
            feedback: self.feedback.as_ref().map(|f| f.report(&self.cfg, (self.warmup, self.end))),
            ha,
            ecmp,
        }
    }
}

impl Server {
    /// A real server; without full detail its latency histogram is compact.
    fn new(cpu: crate::cpu::CpuConfig, uplink: ChannelConfig, detail: bool) -> Self {
        Server {
            cpu: Cpu::new(cpu),
            uplink: Channel::new(uplink),
            open: TimeIntegral::default(),
            window: [(0, 0); 2],
            busy_sample: 0,
            connections: 0,
            refused: 0,
            served: 0,
            rif: TimeIntegral::default(),
            rif_left: 0,
            latency: if detail { Latency::new() } else { Latency::compact() },
            weight_ref: None,
            boots: 0,
        }
    }
}

impl Director {
    fn new(cfg: &ClusterConfig, di: usize, seed: u64, servers: &mut [Server]) -> Result<Self, ConfigError> {
        let d = &cfg.directors[di];
        let mut ipvs = Ipvs::new(seed);
        *ipvs.timeouts_mut() = d.timeouts;
        *ipvs.sysctls_mut() = d.sysctls;
        ipvs.set_memory(d.memory);
        // Writing a defence sysctl runs update_defense_level() (proc_do_defense_mode()).
        ipvs.update_defense_level();
        let mut dest_server: Vec<Vec<u32>> = Vec::new();
        let mut keys = Vec::with_capacity(d.services.len());
        for svc in &d.services {
            let key = svc.addr;
            keys.push(key);
            let conf = ipvs::ServiceConfig {
                scheduler: svc.scheduler,
                flags: svc.flags,
                persistence: svc.persistence,
                netmask: svc.netmask,
                pe: None,
            };
            let place = || format!("director {:?} service {}", d.name, svc.addr);
            let kernel = |e: ipvs::IpvsError| ConfigError { place: place(), message: e.to_string() };
            ipvs.add_service(key, conf).map_err(kernel)?;
            let sid = ipvs.service_id(&key).expect("service just added");
            for dest in &svc.dests {
                let dc = dest.kernel(cfg.servers[dest.server].address, key);
                let did = ipvs.add_dest(key, &dc).map_err(kernel)?;
                map_dest(&mut dest_server, sid, did, dest.server as u32);
                servers[dest.server].weight_ref.get_or_insert((di, sid, did));
            }
        }
        let cpu = ChannelConfig {
            per_packet: d.cpu_per_packet,
            buffer_packets: d.cpu_backlog_packets,
            ..ChannelConfig::IDEAL
        };
        let mut dir = Director {
            ipvs,
            alive: true,
            ext_up: true,
            int_up: true,
            holds: true,
            retired: ipvs::Stats::default(),
            ideal: false,
            ext_in: Channel::new(d.external.inbound),
            ext_out: Channel::new(d.external.outbound),
            int_out: Channel::new(d.internal.outbound),
            int_in: Channel::new(d.internal.inbound),
            cpu: Channel::new(cpu),
            dest_server,
            keys,
            window_busy: [[Duration::ZERO; 4]; 2],
            busy_sample: [Duration::ZERO; 4],
            window_cpu: [Duration::ZERO; 2],
        };
        dir.ideal = dir.ideal_channels();
        Ok(dir)
    }

    fn map_dest(&mut self, sid: ServiceId, did: DestId, server: u32) {
        map_dest(&mut self.dest_server, sid, did, server);
    }

    /// Busy time of the four link directions: external in/out, internal out/in.
    fn link_busy(&self, t: Time) -> [Duration; 4] {
        [
            self.ext_in.busy_time(t),
            self.ext_out.busy_time(t),
            self.int_out.busy_time(t),
            self.int_in.busy_time(t),
        ]
    }

    fn report(self, c: &crate::model::config::DirectorConfig, window: Duration) -> DirectorReport {
        let w = window.as_nanos().max(1) as f64;
        let util = |i: usize| (self.window_busy[1][i] - self.window_busy[0][i]).as_nanos() as f64 / w;
        let ch = |ch: &Channel, u: f64| {
            let s = ch.stats();
            ChannelReport {
                utilization: u,
                packets: s.packets,
                bytes: s.bytes,
                dropped_packets: s.dropped_packets,
            }
        };
        let now = self.ipvs.stats();
        let totals = now + self.retired;
        DirectorReport {
            name: c.name.clone(),
            in_pkts: totals.inpkts,
            out_pkts: totals.outpkts,
            in_bytes: totals.inbytes,
            out_bytes: totals.outbytes,
            link_utilization: (0..4).map(util).fold(0.0, f64::max),
            external_in: ch(&self.ext_in, util(0)),
            external_out: ch(&self.ext_out, util(1)),
            internal_out: ch(&self.int_out, util(2)),
            internal_in: ch(&self.int_in, util(3)),
            cpu: ch(&self.cpu, (self.window_cpu[1] - self.window_cpu[0]).as_nanos() as f64 / w),
            ipvs: self.ipvs,
        }
    }
}

impl Population {
    fn new(cfg: &ClusterConfig, p: &PopulationConfig, streams: &Streams) -> Self {
        let name = |what: &str| format!("population/{}/{what}", p.name);
        Population {
            arrivals: Arrivals::new(p.arrival.clone()).expect("validated"),
            rng_arrivals: streams.stream(&name("arrivals")),
            rng_work: streams.stream(&name("work")),
            rng_clients: streams.stream(&name("clients")),
            // Linux picks a connection's first ephemeral port pseudo-randomly (a hash
            // of the addresses); each client then counts up from there. A stream of its
            // own, so that the other draws do not move.
            ports: {
                let mut rng = streams.stream(&name("ports"));
                let span = u32::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
                (0..p.clients)
                    .map(|_| {
                        EPHEMERAL_FIRST
                            + ((u64::from(rand::RngCore::next_u32(&mut rng)) * u64::from(span)) >> 32) as u16
                    })
                    .collect()
            },
            dir: cfg.director_of(p).expect("validated"),
            fixed: self::flow::fixed_draws(p),
        }
    }
}

fn map_dest(map: &mut Vec<Vec<u32>>, sid: ServiceId, did: DestId, server: u32) {
    let (s, d) = (sid.0 as usize, did.0 as usize);
    if map.len() <= s {
        map.resize(s + 1, Vec::new());
    }
    if map[s].len() <= d {
        map[s].resize(d + 1, NO_SERVER);
    }
    map[s][d] = server;
}

/// Linux's default ephemeral port range (`ip_local_port_range`).
const EPHEMERAL_FIRST: u16 = 32_768;
const EPHEMERAL_LAST: u16 = 60_999;
