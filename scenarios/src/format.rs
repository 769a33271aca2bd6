//! The scenario file's schema. docs/scenarios.md documents every field.
//!
//! Times carry their unit in the field name (`duration_s`, `latency_ms`,
//! `cpu_per_packet_us`); a distribution takes the unit of the field it is in
//! (`demand_ms: Exponential(mean: 7.0)` is a mean of 7 ms). Every struct rejects unknown
//! fields; `Option` fields take the value directly (`topology: "tutorial-nat"`), `Some(...)`
//! works too.

use std::net::IpAddr;

use lvs_ipvs::SchedulerKind;
use serde::Deserialize;
use serde::de::IgnoredAny;
use topologies::{Backend, Director, Ha, Server, Side};

/// A scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name of the scenario (reports, the output directory); default the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// What it shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Master seed: the same scenario and seed give the same results, bit for bit.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Clients stop opening connections at this time [s]; the run then drains.
    pub duration_s: f64,
    /// Connections that arrive before this time are not measured [s].
    #[serde(default)]
    pub warmup_s: f64,
    /// Time-series interval [s]; default: about 200 points over the duration.
    #[serde(default)]
    pub sample_interval_s: Option<f64>,
    /// Run on after the last client until every IPVS entry has expired.
    #[serde(default)]
    pub drain_ipvs: bool,
    /// How much the run keeps of each real server: `Auto` (default: `Full` up to 1000 real
    /// servers, else `Aggregate`), `Full` (a full response-time histogram and a time series
    /// per server) or `Aggregate` (a compact histogram per server, distributions across the
    /// servers in the time series).
    #[serde(default)]
    pub server_detail: sim_core::model::ServerDetail,
    /// MTU and TCP retransmission.
    #[serde(default)]
    pub network: Network,
    /// A built-in topology (`lvsim list topologies`) supplying `directors`, `servers`,
    /// `backends` and `ha` that the scenario does not write itself.
    #[serde(default)]
    pub topology: Option<String>,
    /// The directors and their virtual services.
    #[serde(default)]
    pub directors: Vec<Director>,
    /// The real servers.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Shared backend servers.
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// A fail-over (or active-active) group of directors, with connection sync.
    #[serde(default)]
    pub ha: Option<Ha>,
    /// An ECMP tier: a router spreading the VIPs' packets over several directors.
    #[serde(default)]
    pub ecmp: Option<topologies::Ecmp>,
    /// An `ipvsadm-save` file (relative to the scenario) whose services replace the first
    /// director's.
    #[serde(default)]
    pub import_ipvsadm: Option<String>,
    /// Client populations.
    pub clients: Vec<Clients>,
    /// Timed changes: weights, removals, restorations, background work.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Active feedback: a feedbackd-agent on every real server, a feedbackd-master on
    /// every director; none: static weights.
    #[serde(default)]
    pub feedback: Option<Feedback>,
    /// Runs with seeds `seed`, `seed + 1`, ...; reports give 95% confidence intervals.
    #[serde(default = "one_u32")]
    pub replications: u32,
    /// `lvsim sweep`: the product of these axes' values.
    #[serde(default)]
    pub sweep: Vec<Axis>,
    /// Checks on the results (`summary.json` values); `lvsim run` fails (exit 3) if one
    /// does not hold.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// `lvsim plan`: what to search for.
    #[serde(default)]
    pub plan: Option<Plan>,
    /// SYN floods against the directors (spoofed sources, SYNs only, no replies).
    #[serde(default)]
    pub syn_floods: Vec<SynFlood>,
}

/// A SYN flood against a director: SYNs from spoofed sources that never answer and never
/// send anything else; each makes a half-open entry in the director's IPVS table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynFlood {
    /// Name, for reports.
    #[serde(default = "syn_flood_name")]
    pub name: String,
    /// The director attacked; default the first.
    #[serde(default)]
    pub director: Option<String>,
    /// The virtual IP attacked; default that director's first service's.
    #[serde(default)]
    pub vip: Option<IpAddr>,
    /// The virtual port; default that service's.
    #[serde(default)]
    pub port: Option<u16>,
    /// SYNs a second, evenly spaced [1/s].
    pub rate: f64,
    /// Spoofed source addresses the SYNs are drawn from (uniformly, with random ports).
    #[serde(default = "flood_sources")]
    pub sources: u32,
    /// The first of them; the others follow it.
    #[serde(default = "flood_first_source")]
    pub first_source: IpAddr,
    /// The first SYN [s].
    #[serde(default)]
    pub start_s: f64,
    /// No SYN from this time on [s]; default the end of the run (`duration_s`).
    #[serde(default)]
    pub stop_s: Option<f64>,
}

fn syn_flood_name() -> String {
    "syn-flood".into()
}
fn flood_sources() -> u32 {
    1 << 24
}
fn flood_first_source() -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(100, 64, 0, 0))
}

fn one_u64() -> u64 {
    1
}

fn one_u32() -> u32 {
    1
}

/// MTU and TCP retransmission.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Maximum transmission unit of every network [bytes].
    #[serde(default = "mtu")]
    pub mtu: u32,
    /// Initial retransmission timeout of a SYN [s], doubled on each retry.
    #[serde(default = "syn_rto")]
    pub syn_rto_s: f64,
    /// Initial retransmission timeout of data [s], doubled on each retry.
    #[serde(default = "data_rto")]
    pub data_rto_s: f64,
    /// Retries before a connection is given up as dropped.
    #[serde(default = "retries")]
    pub max_retries: u32,
}

fn mtu() -> u32 {
    1500
}
fn syn_rto() -> f64 {
    1.0
}
fn data_rto() -> f64 {
    0.2
}
fn retries() -> u32 {
    5
}

impl Default for Network {
    fn default() -> Self {
        Network { mtu: mtu(), syn_rto_s: syn_rto(), data_rto_s: data_rto(), max_retries: retries() }
    }
}

/// A client population.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clients {
    /// Name.
    #[serde(default = "clients_name")]
    pub name: String,
    /// The virtual IP they connect to; default the first director's first service's.
    #[serde(default)]
    pub vip: Option<IpAddr>,
    /// The virtual port; default that service's.
    #[serde(default)]
    pub port: Option<u16>,
    /// A firewall mark their packets carry (matching a `fwmark` service).
    #[serde(default)]
    pub fwmark: Option<u32>,
    /// When connections open.
    pub arrival: Arrival,
    /// Distinct client addresses (what persistence and hashing schedulers see).
    #[serde(default = "addresses")]
    pub addresses: u32,
    /// The first client address; the others follow it.
    #[serde(default = "first_address")]
    pub first_address: IpAddr,
    /// One-way latency between a client and the director [ms].
    #[serde(default)]
    pub access_latency_ms: f64,
    /// TCP connections or UDP flows, and what each carries.
    #[serde(default)]
    pub transport: Transport,
    /// Request size [bytes].
    #[serde(default = "request_bytes")]
    pub request_bytes: Dist,
    /// Response size [bytes].
    #[serde(default = "response_bytes")]
    pub response_bytes: Dist,
    /// CPU time a request needs on a real server of speed 1 [ms].
    pub demand_ms: Dist,
    /// CPU time at the real server's backend [ms]; none: no backend query.
    #[serde(default)]
    pub backend_demand_ms: Option<Dist>,
}

fn clients_name() -> String {
    "clients".into()
}
fn addresses() -> u32 {
    1000
}
fn first_address() -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1))
}
fn request_bytes() -> Dist {
    Dist::Constant(300.0)
}
fn response_bytes() -> Dist {
    Dist::Constant(4000.0)
}

/// When connections open.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Arrival {
    /// Poisson arrivals [conn/s].
    Poisson {
        /// Rate [1/s].
        rate: f64,
    },
    /// Evenly spaced [conn/s].
    Constant {
        /// Rate [1/s].
        rate: f64,
    },
    /// Poisson at `rate` during on periods, nothing during off periods.
    OnOff {
        /// Rate during on periods [1/s].
        rate: f64,
        /// On-period length [s].
        on_s: Dist,
        /// Off-period length [s].
        off_s: Dist,
    },
    /// A Poisson rate that changes: `(from [s], rate [1/s])` steps, the first at 0.
    Schedule {
        /// The steps.
        steps: Vec<(f64, f64)>,
    },
    /// Recorded arrival times: a CSV file (relative to the scenario) whose first column
    /// is seconds.
    Trace {
        /// The file.
        file: String,
    },
}

/// What a connection carries.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Transport {
    /// TCP connections.
    TCP {
        /// Requests per connection (rounded; at least 1).
        #[serde(default = "one_request")]
        requests: Dist,
        /// Time between a response and the next request [ms].
        #[serde(default = "zero")]
        think_time_ms: Dist,
        /// A client gives up waiting for a response after this long [s] (it resets the
        /// connection: dropped); none: it waits for ever.
        #[serde(default)]
        response_timeout_s: Option<f64>,
    },
    /// UDP flows (one source port).
    UDP {
        /// Datagrams per flow (rounded; at least 1).
        #[serde(default = "one_request")]
        requests: Dist,
        /// Time between a response and the next datagram [ms].
        #[serde(default = "zero")]
        think_time_ms: Dist,
        /// A client gives up on an unanswered datagram after this long [ms].
        #[serde(default = "udp_timeout")]
        timeout_ms: f64,
    },
}

fn one_request() -> Dist {
    Dist::Constant(1.0)
}
fn zero() -> Dist {
    Dist::Constant(0.0)
}
fn udp_timeout() -> f64 {
    1000.0
}

impl Default for Transport {
    fn default() -> Self {
        Transport::TCP { requests: one_request(), think_time_ms: zero(), response_timeout_s: None }
    }
}

/// A distribution, in the unit of the field it is in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always this value.
    Constant(f64),
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: f64,
    },
    /// Lognormal given by its mean and squared coefficient of variation.
    LogNormal {
        /// Mean.
        mean: f64,
        /// Variance / mean² (1 is as variable as an exponential).
        scv: f64,
    },
    /// Pareto: `P(X > x) = (scale / x)^shape` for `x >= scale`.
    Pareto {
        /// Tail index (> 0; the mean is finite above 1).
        shape: f64,
        /// Minimum value.
        scale: f64,
    },
    /// Pareto truncated to `[low, high]`.
    BoundedPareto {
        /// Tail index.
        shape: f64,
        /// Smallest value.
        low: f64,
        /// Largest value.
        high: f64,
    },
    /// A measured distribution: `(value, cumulative probability)` points of a
    /// piecewise-linear CDF, ending at probability 1.
    Empirical(Vec<(f64, f64)>),
}

/// A timed change: to a real server's weight as an operator would type it with ipvsadm,
/// to a real server itself (background work, faults), or to a director (faults).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When [s].
    pub at_s: f64,
    /// The real server (or a `count` group: every member); every change but a director's
    /// needs one.
    #[serde(default)]
    pub server: Option<String>,
    /// An ipvsadm change: only in this director's services (by name; default every
    /// director). A director's change (`DirectorDown`, ...): the director.
    #[serde(default)]
    pub director: Option<String>,
    /// Only in this service (index in the director's `services`); default every service
    /// the server is in.
    #[serde(default)]
    pub service: Option<usize>,
    /// What changes.
    pub change: Change,
}

/// What an [`Event`] does.
#[derive(Clone, Copy, Debug, Deserialize)]
pub enum Change {
    /// `ipvsadm -e ... -w W` (0 quiesces: no new connections).
    Weight(u32),
    /// `ipvsadm -d`: removed; its open connections' packets are dropped.
    Remove,
    /// `ipvsadm -a` again with this weight.
    Restore(u32),
    /// From now on this many CPU-bound background tasks run on the server (0 ends them);
    /// not an ipvsadm change, so `director` and `service` do not apply.
    Background(u32),
    /// From now on a background load of this many cores (another service on the host, a
    /// neighbour's steal time) runs ahead of the requests, which share the rest (0 ends
    /// it); like `Background`, no `director` or `service`.
    BackgroundLoad(f64),
    /// The real server's host crashes: it answers nothing until `Recover`.
    Crash,
    /// The real server's service hangs: connections are accepted, no request progresses.
    Hang,
    /// The real server runs at this fraction of its speed, in (0, 1).
    Slow(f64),
    /// The real server's fault ends (`Crash`, `Hang`, `Slow`).
    Recover,
    /// The `director` dies (its connection table is lost).
    DirectorDown,
    /// The `director` boots again.
    DirectorUp,
    /// The `director`'s link on this side fails.
    LinkDown(Side),
    /// ... and is repaired.
    LinkUp(Side),
    /// The `director` (an ECMP tier's member) stops announcing the VIPs, gracefully: the
    /// router takes it out at once; it runs on.
    DirectorWithdraw,
    /// The `director` (an ECMP tier's member) announces the VIPs: the router adds it.
    DirectorAnnounce,
}

/// The feedback loop: every field flat, so that each one can be a `--set` path or a sweep
/// axis (`feedback.interval_s`). A field not written takes the daemons' default (sim-core's
/// `FeedbackConfig::default()`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Feedback {
    /// false: static weights, as without the block (a sweep axis `feedback.enabled`).
    pub enabled: bool,
    /// Which law computes the target weight.
    pub law: Law,
    /// Each agent samples and reports this often [s].
    pub interval_s: f64,
    /// EWMA factor α in (0, 1] given to the newest report.
    pub smoothing: f64,
    /// Lowest weight of a reporting server.
    pub min_weight: u32,
    /// Weight of an idle server (at most 65535).
    pub max_weight: u32,
    /// Smaller changes are not applied [weight units].
    pub dead_band: u32,
    /// Largest change in one update [weight units]; 0: unlimited.
    pub max_step: u32,
    /// A new or returning server ramps up to the full range over this long [s].
    pub slow_start_s: f64,
    /// `grpc_wrr`: how much an error per query counts as utilisation.
    pub error_penalty: f64,
    /// `grpc_wrr`: weight units per query/s of estimated capacity.
    pub weight_per_qps: f64,
    /// `grpc_wrr`: a server's own weight is used only after it has reported usable
    /// figures this long without expiring [s] (gRFC A58; 0: none).
    pub blackout_period_s: f64,
    /// `grpc_wrr`: a weight with no usable report for this long expires [s] (> 0).
    pub weight_expiration_period_s: f64,
    /// `prequal`: probes the service's pool holds (1 to 4096).
    pub pool_size: u32,
    /// `prequal`: a probe older than this leaves the pool [s] (> 0).
    pub max_age_s: f64,
    /// `prequal`: the hot-cold threshold, a quantile of the pool's requests in flight in
    /// [0, 1].
    pub q_rif: f64,
    /// A silent agent's servers are quiesced (weight 0) after this long [s].
    pub quiesce_after_s: f64,
    /// ... and removed after this long [s].
    pub remove_after_s: f64,
    /// The master re-reads the director's IPVS table this often [s].
    pub rescan_s: f64,
    /// An agent gives a silent master up after this long [s]; none: 3 intervals, at least
    /// 3 s.
    pub master_timeout_s: Option<f64>,
    /// Frames carry HMAC tags (a pre-shared key).
    pub authenticated: bool,
    /// The agent-master TCP connection.
    pub link: FeedbackLink,
}

/// The feedback weight law.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Law {
    /// feedbackd's: spare capacity mapped linearly onto the weight range.
    #[default]
    Capacity,
    /// gRPC weighted round robin (gRFC A58): `qps / (utilization + eps / qps × penalty)`.
    GrpcWrr,
    /// Prequal (NSDI 2024): requests in flight and latency from a pool of probes.
    Prequal,
}

/// The agent-master TCP connection.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackLink {
    /// One-way delay [ms].
    pub latency_ms: f64,
    /// Probability that one transmission of a segment is lost, in [0, 1).
    pub loss: f64,
    /// First retransmission timeout [ms], doubled on each retry.
    pub rto_ms: f64,
    /// Retransmissions of a segment; when they are all lost too, the connection breaks
    /// (the agent reconnects).
    pub max_retries: u32,
}

impl Default for Feedback {
    /// The daemons' defaults, read from sim-core so that there is one source.
    fn default() -> Self {
        use lvs_sched::feedback::LawKind;
        let d = sim_core::model::FeedbackConfig::default();
        let grpc = match d.law.kind {
            LawKind::GrpcWrr(g) => g,
            LawKind::Capacity | LawKind::Prequal(_) => lvs_sched::feedback::GrpcWrr::default(),
        };
        let prequal = match d.law.kind {
            LawKind::Prequal(q) => q,
            LawKind::Capacity | LawKind::GrpcWrr(_) => lvs_sched::feedback::Prequal::default(),
        };
        Feedback {
            enabled: true,
            law: match d.law.kind {
                LawKind::Capacity => Law::Capacity,
                LawKind::GrpcWrr(_) => Law::GrpcWrr,
                LawKind::Prequal(_) => Law::Prequal,
            },
            interval_s: d.interval.as_secs_f64(),
            smoothing: d.law.smoothing,
            min_weight: d.law.min_weight,
            max_weight: d.law.max_weight,
            dead_band: d.law.dead_band,
            max_step: d.law.max_step,
            slow_start_s: d.law.slow_start.as_secs_f64(),
            error_penalty: grpc.error_penalty,
            weight_per_qps: grpc.weight_per_qps,
            blackout_period_s: grpc.blackout_period.as_secs_f64(),
            weight_expiration_period_s: grpc.weight_expiration_period.as_secs_f64(),
            pool_size: prequal.pool_size,
            max_age_s: prequal.max_age.as_secs_f64(),
            q_rif: prequal.q_rif,
            quiesce_after_s: d.quiesce_after.as_secs_f64(),
            remove_after_s: d.remove_after.as_secs_f64(),
            rescan_s: d.rescan.as_secs_f64(),
            master_timeout_s: d.master_timeout.map(|t| t.as_secs_f64()),
            authenticated: d.authenticated,
            link: FeedbackLink::default(),
        }
    }
}

impl Default for FeedbackLink {
    fn default() -> Self {
        let d = sim_core::model::FeedbackLink::default();
        FeedbackLink {
            latency_ms: d.latency.as_nanos() as f64 / 1e6,
            loss: d.loss,
            rto_ms: d.rto.as_nanos() as f64 / 1e6,
            max_retries: d.max_retries,
        }
    }
}

/// A swept field and its values.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// A scenario path (`clients[0].arrival.rate`, `directors[0].services[*].scheduler`).
    pub field: String,
    /// Its values, each written as the field would be.
    pub values: Vec<IgnoredAny>,
}

/// A check on a run's results.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A `summary.json` path: `latency_ms.mean`, `real_servers[0].utilization`, ...
    pub metric: String,
    /// It must be within `tolerance` (relative) of this value.
    #[serde(default)]
    pub approx: Option<f64>,
    /// Relative tolerance of `approx`.
    #[serde(default = "tolerance")]
    pub tolerance: f64,
    /// Or within this absolute distance of `approx`, whichever is larger.
    #[serde(default)]
    pub abs_tolerance: f64,
    /// It must not exceed this.
    #[serde(default)]
    pub at_most: Option<f64>,
    /// It must be at least this.
    #[serde(default)]
    pub at_least: Option<f64>,
    /// Why: where the value comes from (a formula, a measurement).
    #[serde(default)]
    pub note: String,
}

fn tolerance() -> f64 {
    0.05
}

/// `lvsim plan`: the cheapest cluster (one or several groups sized together, each unit at
/// a cost), and the best scheduler, that keep the service level objective at the
/// scenario's load.
///
/// Two spellings: the single-group `servers: "web", min: 1, max: 12` (cost 1 a server), or
/// `sizes: [Servers(name: "app", ...), BackendCores(name: "db", ...)]`; not both.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The objective: every check must hold (`Expect(metric: "latency_ms.p99",
    /// at_most: 200.0)`).
    pub slo: Vec<Expect>,
    /// Single-group form: the server entry (by name, in `servers`) whose `count` the
    /// search varies.
    #[serde(default)]
    pub servers: Option<String>,
    /// Single-group form: smallest count tried [default 1].
    #[serde(default)]
    pub min: Option<u32>,
    /// Single-group form: largest count tried [default 64].
    #[serde(default)]
    pub max: Option<u32>,
    /// What is sized together, each with its range and cost.
    #[serde(default)]
    pub sizes: Vec<Size>,
    /// Schedulers compared; default rr, wrr, lc, wlc, sed, nq.
    #[serde(default = "plan_schedulers")]
    pub schedulers: Vec<SchedulerKind>,
    /// Largest fraction of offered connections that may fail (refused, dropped).
    #[serde(default = "max_loss")]
    pub max_loss: f64,
    /// Runs (seeds) per trial; the SLO is judged on their 95% interval.
    #[serde(default = "plan_replications")]
    pub replications: u32,
}

/// One group a plan sizes: its range and the cost of one unit.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Size {
    /// The `count` of a server entry.
    Servers {
        /// The server entry's name.
        name: String,
        /// Smallest count tried.
        #[serde(default = "one_u32")]
        min: u32,
        /// Largest count tried.
        max: u32,
        /// Cost of one server (any unit: money, rack units).
        #[serde(default = "one_f64")]
        cost: f64,
    },
    /// The CPU cores of a backend (`backends[i].cpu.cores`).
    BackendCores {
        /// The backend's name.
        name: String,
        /// Fewest cores tried.
        #[serde(default = "one_u32")]
        min: u32,
        /// Most cores tried.
        max: u32,
        /// Cost of one core.
        #[serde(default = "one_f64")]
        cost: f64,
    },
}

impl Size {
    /// The name of the server entry or backend.
    pub fn name(&self) -> &str {
        match self {
            Size::Servers { name, .. } | Size::BackendCores { name, .. } => name,
        }
    }

    /// `(min, max, cost)`.
    pub fn range(&self) -> (u32, u32, f64) {
        match *self {
            Size::Servers { min, max, cost, .. } | Size::BackendCores { min, max, cost, .. } => {
                (min, max, cost)
            }
        }
    }
}

impl Plan {
    /// A plan varying the `servers` entry with every default (what a scenario's `plan`
    /// section gives when it names only that), and no objective yet.
    pub fn for_servers(servers: String) -> Plan {
        Plan {
            slo: Vec::new(),
            servers: Some(servers),
            min: None,
            max: None,
            sizes: Vec::new(),
            schedulers: plan_schedulers(),
            max_loss: max_loss(),
            replications: plan_replications(),
        }
    }

    /// The groups sized, whichever spelling was used (`Err` names the fields in conflict).
    pub fn sizes(&self) -> Result<Vec<Size>, String> {
        match (&self.servers, self.sizes.is_empty()) {
            (Some(_), false) => Err("give either `servers` (with `min`, `max`) or `sizes`, not both".into()),
            (None, true) => Err("the plan sizes nothing: give `servers: NAME` or `sizes: [...]`".into()),
            (None, false) if self.min.is_some() || self.max.is_some() => {
                Err("`min` and `max` go inside each of `sizes`".into())
            }
            (None, false) => Ok(self.sizes.clone()),
            (Some(name), true) => Ok(vec![Size::Servers {
                name: name.clone(),
                min: self.min.unwrap_or(1),
                max: self.max.unwrap_or_else(max_servers),
                cost: 1.0,
            }]),
        }
    }
}

fn one_f64() -> f64 {
    1.0
}
fn plan_replications() -> u32 {
    5
}
fn max_servers() -> u32 {
    64
}
fn max_loss() -> f64 {
    0.001
}
fn plan_schedulers() -> Vec<SchedulerKind> {
    use SchedulerKind::*;
    vec![Rr, Wrr, Lc, Wlc, Sed, Nq]
}
