//! What a run measured.
//!
//! The measured set is the connections that arrive in `[warmup, duration)`; utilisations
//! are over the same window. Plain data: the `reports` crate turns it into summary.json,
//! CSV and HTML.

use std::net::IpAddr;

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Time};

use crate::stats::{BatchMeans, Latency, LogHistogram};
use lvs_ipvs::Ipvs;

/// Connection outcomes of the measured set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Connections (or UDP flows) that arrived.
    pub offered: u64,
    /// Finished with every response received.
    pub completed: u64,
    /// Refused: no real server available at the director, or a full backlog at one.
    pub refused: u64,
    /// Given up after retransmissions (full buffers), or a UDP datagram unanswered.
    pub dropped: u64,
    /// Lost when a director failed over (HA; zero without fail-over).
    pub lost_on_failover: u64,
}

/// One real server's results.
#[derive(Clone, Debug)]
pub struct ServerReport {
    /// Name.
    pub name: String,
    /// Address.
    pub address: IpAddr,
    /// Measured connections scheduled to it.
    pub connections: u64,
    /// Busy fraction of its cores over the measured window.
    pub utilization: f64,
    /// Its weight at the end (first service it is in).
    pub weight_final: u32,
    /// Time-average of its open connections over the measured window.
    pub active_conns_mean: f64,
    /// Response times of its measured requests.
    pub latency: Latency,
    /// Requests refused by its full backlog.
    pub refused: u64,
}

/// The measured connections of a group (a population, or the populations of a service).
#[derive(Clone, Debug, Default)]
pub struct GroupResults {
    /// Outcomes of its measured connections.
    pub connections: ConnCounts,
    /// Response times of its measured requests.
    pub latency: Latency,
    /// Its connections completed per second inside the measured window.
    pub throughput_cps: f64,
}

impl GroupResults {
    /// Adds another group's results (a service sums its populations').
    pub fn merge(&mut self, other: &GroupResults) {
        let (c, o) = (&mut self.connections, &other.connections);
        c.offered += o.offered;
        c.completed += o.completed;
        c.refused += o.refused;
        c.dropped += o.dropped;
        c.lost_on_failover += o.lost_on_failover;
        self.latency.merge(&other.latency);
        self.throughput_cps += other.throughput_cps;
    }
}

/// One virtual service's results: those of the populations that connect to it.
#[derive(Clone, Debug)]
pub struct ServiceReport {
    /// Its name ([`crate::model::service_name`] unless the configuration gives one).
    pub name: String,
    /// What it listens on.
    pub key: ServiceKey,
    /// Its populations' results, summed.
    pub results: GroupResults,
}

/// One client population's results.
#[derive(Clone, Debug)]
pub struct PopulationReport {
    /// Its name.
    pub name: String,
    /// The name of the service it connects to.
    pub service: String,
    /// Its results.
    pub results: GroupResults,
}

/// One backend's results over the measured window.
#[derive(Clone, Debug)]
pub struct BackendReport {
    /// Its name.
    pub name: String,
    /// Busy fraction of its cores.
    pub utilization: f64,
    /// Time-average of the queries present (in service or waiting for a worker).
    pub queue_mean: f64,
    /// Most queries present at once.
    pub queue_max: u64,
    /// Residence times (arrival at the backend to its answer leaving it) of the queries
    /// of measured connections; the link latency both ways is not in them.
    pub latency: Latency,
    /// Queries of measured connections that it answered.
    pub queries: u64,
    /// Queries of measured connections that its full backlog refused.
    pub refused: u64,
}

/// Utilisation of one FIFO resource over the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChannelReport {
    /// Busy fraction.
    pub utilization: f64,
    /// Packets admitted (whole run).
    pub packets: u64,
    /// Bytes admitted (whole run).
    pub bytes: u64,
    /// Packets dropped because the buffer was full (whole run).
    pub dropped_packets: u64,
}

/// One director's results.
#[derive(Debug)]
pub struct DirectorReport {
    /// Name.
    pub name: String,
    /// IPVS counters over the whole run, as `ipvsadm -L -n --stats` totals them.
    pub in_pkts: u64,
    /// Packets server→client rewritten by the director (NAT only).
    pub out_pkts: u64,
    /// Bytes client→server.
    pub in_bytes: u64,
    /// Bytes server→client (NAT only).
    pub out_bytes: u64,
    /// The busiest of its four link directions.
    pub link_utilization: f64,
    /// External link, clients → director.
    pub external_in: ChannelReport,
    /// External link, director → clients.
    pub external_out: ChannelReport,
    /// Internal link, director → real servers.
    pub internal_out: ChannelReport,
    /// Internal link, real servers → director.
    pub internal_in: ChannelReport,
    /// Its per-packet CPU.
    pub cpu: ChannelReport,
    /// The IPVS table at the end (`ipvsadm -L -n`, `--stats`, `--rate` views).
    pub ipvs: Ipvs,
}

/// A point of the time series: the interval that ends at `t`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// End of the interval.
    pub t: Time,
    /// Requests answered in the interval.
    pub responses: u64,
    /// Their median response time [ns] (0 if none).
    pub p50_ns: u64,
    /// Their 99th percentile [ns] (0 if none).
    pub p99_ns: u64,
    /// Client connections open at `t`.
    pub open_conns: u64,
    /// Per real server, in configuration order; empty without full per-server detail
    /// ([`RunReport::server_detail`]).
    pub servers: Vec<ServerSample>,
    /// The distribution across the real servers; `Some` exactly when `servers` is empty
    /// because the run keeps no full per-server detail.
    pub across: Option<AcrossServers>,
    /// Per director: busiest link direction's utilisation in the interval.
    pub director_link_utilization: Vec<f64>,
    /// Connections (any) that failed (refused or dropped) in the interval.
    pub failed: u64,
    /// Per director: 1 when it was serving the VIP (or, active-active, the fraction of
    /// the blocks it owned) at `t`, 0 otherwise.
    pub director_share: Vec<f64>,
    /// The DoS side: `Some` exactly when the run has [`RunReport::dos`].
    pub dos: Option<DosSample>,
}

/// The DoS side of a sample: each director's table and defences at `t`, and what the
/// legitimate clients (every population; a SYN flood is not one) met in the interval.
#[derive(Clone, Debug, PartialEq)]
pub struct DosSample {
    /// Per director, in configuration order.
    pub directors: Vec<DosDirectorSample>,
    /// Legitimate connections refused in the interval (reset: no service or real server).
    pub refused: u64,
    /// Legitimate connections dropped in the interval (SYNs unanswered through every
    /// retry: a defence or a full table dropped them; or broken later).
    pub dropped: u64,
    /// Flood SYNs sent in the interval.
    pub flood_syns: u64,
}

/// A director's IPVS table and defences at a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DosDirectorSample {
    /// Entries in its table (connections and templates).
    pub entries: u64,
    /// Its defences' state.
    pub level: lvs_ipvs::DefenseLevel,
    /// The sysctls `drop_entry`, `drop_packet`, `secure_tcp` as the kernel left them
    /// (the automatic modes read 1 or 2).
    pub modes: [u8; 3],
}

/// What a run with SYN floods or defences measured of them.
#[derive(Clone, Debug, PartialEq)]
pub struct DosReport {
    /// Per director, in configuration order.
    pub directors: Vec<DosDirectorReport>,
    /// Per flood, directors in order, each director's floods in order.
    pub floods: Vec<FloodReport>,
}

/// A director's defences over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct DosDirectorReport {
    /// Name.
    pub name: String,
    /// What its defences did.
    pub defense: lvs_ipvs::DefenseStats,
    /// The most entries its table held at a sample or a flood burst.
    pub peak_entries: u64,
}

/// A SYN flood over the run (also summary.json's `dos.floods`).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FloodReport {
    /// Name.
    pub name: String,
    /// The director attacked.
    pub director: String,
    /// SYNs sent.
    pub syns: u64,
    /// SYNs that made a new entry.
    pub entries: u64,
    /// SYNs dropped by `drop_packet`.
    pub defense_dropped: u64,
    /// SYNs dropped for lack of memory.
    pub no_memory: u64,
    /// SYNs refused (no service) or that found an entry already.
    pub other: u64,
    /// SYNs lost at a director that was down or not holding the VIP.
    pub lost: u64,
}

/// A real server at a sample point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerSample {
    /// Core utilisation in the interval.
    pub utilization: f64,
    /// IPVS ActiveConn at `t`.
    pub active_conns: u32,
    /// IPVS InActConn at `t`.
    pub inactive_conns: u32,
    /// IPVS weight at `t`.
    pub weight: u32,
    /// The spare capacity its agent last reported by `t` (feedback only).
    pub capacity: Option<f64>,
}

/// A figure's distribution across the real servers at a sample (nearest-rank quantiles
/// over every server, in configuration order; all 0 for no server).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    /// Lowest.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Highest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Spread {
    /// The spread of `values` (reordered: sorted ascending); the q-quantile is the value of
    /// nearest rank `ceil(q·n)` (at least 1). All 0 for no value.
    pub fn of(values: &mut [f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let at = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Spread {
            min: values[0],
            p10: at(0.1),
            p50: at(0.5),
            p90: at(0.9),
            max: values[n - 1],
            mean: values.iter().sum::<f64>() / n as f64,
        }
    }
}

/// The real servers at a sample, as distributions (runs without full per-server detail).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AcrossServers {
    /// Core utilisation in the interval.
    pub utilization: Spread,
    /// IPVS ActiveConn at `t`.
    pub active_conns: Spread,
    /// IPVS weight at `t`.
    pub weight: Spread,
}

/// Counts LVS-REF-1 reports.
#[derive(Clone, Debug)]
pub struct Ref1Stats {
    /// Response times of the measured set in REF-1's log histogram.
    pub log_histogram: LogHistogram,
    /// Batch means of the measured response times [s] by arrival time.
    pub batch_means: BatchMeans,
    /// Arrivals (all).
    pub arrivals: u64,
    /// Request completions at real servers (all).
    pub completions: u64,
    /// IPVS entries expired.
    pub expiries: u64,
    /// Most IPVS entries at once.
    pub peak_inflight: u64,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct RunReport {
    /// Master seed.
    pub seed: u64,
    /// Virtual time when the run ended (after draining).
    pub simulated: Time,
    /// The measured window.
    pub window: (Time, Time),
    /// Model events as LVS-REF-1 counts them: arrivals, job completions and IPVS expiries.
    pub model_events: u64,
    /// Events popped from the event queue, stale ones included.
    pub engine_events: u64,
    /// Outcomes of the measured connections.
    pub connections: ConnCounts,
    /// Response times of the measured requests.
    pub latency: Latency,
    /// Connections completed per second inside the measured window.
    pub throughput_cps: f64,
    /// Per real server, in configuration order (always every server; without full
    /// detail each one's `latency` is compact: see [`crate::stats::Latency`]).
    pub servers: Vec<ServerReport>,
    /// Whether the run kept full per-server detail ([`crate::model::ServerDetail`]):
    /// per-server histograms at full precision and per-server time series.
    pub server_detail: bool,
    /// Per director.
    pub directors: Vec<DirectorReport>,
    /// Per virtual service (each distinct one once, in configuration order: the first
    /// director's services, then those only later directors have).
    pub services: Vec<ServiceReport>,
    /// Per client population, in configuration order.
    pub populations: Vec<PopulationReport>,
    /// Per backend (the tier behind the real servers), in configuration order.
    pub backends: Vec<BackendReport>,
    /// The time series (empty without a sample interval).
    pub series: Vec<Sample>,
    /// SYN floods and IPVS defences, when a director has a flood, a memory or a
    /// defence sysctl on.
    pub dos: Option<DosReport>,
    /// LVS-REF-1's outputs.
    pub ref1: Ref1Stats,
    /// The feedback loop's results; `None` without feedback.
    pub feedback: Option<FeedbackReport>,
    /// Health checks, fail-overs, sync; `None` without health checks or an HA group.
    pub ha: Option<HaReport>,
    /// The ECMP tier: the router's changes and the connections they broke; `None`
    /// without a tier.
    pub ecmp: Option<EcmpReport>,
}

/// What an ECMP tier's router did, and what became of the connections it sent to a
/// director that had no entry for them (whole run, measured or not).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EcmpReport {
    /// The members, in the router's next-hop order.
    pub members: Vec<String>,
    /// `l3` or `l3l4` (`fib_multipath_hash_policy` 0 or 1).
    pub policy: String,
    /// `hash-threshold` or `resilient (N buckets)`.
    pub selection: String,
    /// Every change of the router's group, in time order.
    pub changes: Vec<EcmpChange>,
    /// Connections each member scheduled (their first packet reached it), in member
    /// order.
    pub scheduled_by_director: Vec<u64>,
    /// Broken: a mid-connection segment reached a director without an entry, whose own
    /// stack reset it (no `sloppy_tcp`, or a RST).
    pub reset_by_director: u64,
    /// Broken: with `sloppy_tcp` the director scheduled the segment to another real
    /// server than the connection's, which has no socket for it and resets it.
    pub reset_by_server: u64,
    /// Broken: the connection gave up (retries exhausted) after losing a message at a
    /// dead director the router still sent packets to.
    pub lost_at_dead_director: u64,
    /// Survived: with `sloppy_tcp` the director scheduled the segment to the
    /// connection's own real server (mh, sh with the same servers everywhere).
    pub survived_by_rescheduling: u64,
    /// Real servers added to an mh service of a member during the run: how many flows
    /// and lookup-table slots changed server.
    pub mh_additions: Vec<MhAddition>,
}

/// One change of an ECMP router's group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EcmpChange {
    /// When the router changed its group.
    pub at: Time,
    /// The director.
    pub director: String,
    /// `dead (detected)`, `withdrawn`, `announced`, `back`.
    pub what: String,
    /// The share of the hash space (of flows) whose director changed.
    pub moved_share: f64,
}

/// A real server added (`ipvsadm -a`) to an mh service: the service's lookup before and
/// after, over the scenario's flows (every client address of the populations that use
/// the service, at its first source port) and over the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MhAddition {
    /// When.
    pub at: Time,
    /// The director.
    pub director: String,
    /// The real server added.
    pub server: String,
    /// Real servers before the addition.
    pub servers_before: u32,
    /// Flows looked up.
    pub flows: u64,
    /// Flows whose real server changed.
    pub flows_moved: u64,
    /// Slots of the lookup table whose real server changed, and the table's size.
    pub slots_moved: u64,
    /// The table's size (`IP_VS_MH_TAB_SIZE`).
    pub slots: u64,
}

/// What the feedback loop did (whole run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackReport {
    /// The law's name: `capacity` or `grpc_wrr`.
    pub law: String,
    /// Measurements the agents took and reported (or, while not registered, kept for
    /// their first report; a later one supersedes it).
    pub reports_sent: u64,
    /// Reports the masters accepted.
    pub reports_applied: u64,
    /// Weight changes the masters made.
    pub weight_changes: u64,
    /// Segment transmissions lost on the agent-master links (each retransmitted).
    pub segments_lost: u64,
    /// Agent connections that broke (a segment and its `max_retries` retransmissions all lost, a silent master).
    pub reconnects: u64,
    /// Per real server, in configuration order (its weight in the first service it is in,
    /// on the first director).
    pub servers: Vec<FeedbackServerReport>,
}

/// One real server's weight under feedback.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedbackServerReport {
    /// Name.
    pub name: String,
    /// Measurements its agents took (see `FeedbackReport::reports_sent`).
    pub reports: u64,
    /// Changes of its weight.
    pub weight_changes: u64,
    /// Time-average of its weight over the measured window.
    pub weight_mean: f64,
    /// Its lowest and highest weight in the measured window.
    pub weight_min: u32,
    /// See `weight_min`.
    pub weight_max: u32,
    /// Oscillation: the sum of |weight change| in the measured window, per minute.
    pub weight_travel_per_min: f64,
    /// Reaction time to the last change of its background work (tasks or load): from that change until
    /// its weight first went half way to where it settled (the time-average over the last
    /// quarter of the window); `None` without such a change in the window, or without a
    /// step.
    pub reaction_s: Option<f64>,
    /// The last spare capacity its agent reported, in [0, 1].
    pub capacity_last: Option<f64>,
}

impl RunReport {
    /// Length of the measured window.
    pub fn window_len(&self) -> Duration {
        self.window.1 - self.window.0
    }
}

/// What the high-availability machinery did (whole run): health checks and the faults
/// they found, fail-overs and the connections they lost, and connection sync.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HaReport {
    /// Real-server faults (crash, hang, slow) and how the health checks saw them, in
    /// time order.
    pub faults: Vec<FaultReport>,
    /// Health checks started and failed, per director (configuration order).
    pub checks: Vec<CheckStats>,
    /// Every change of the director serving the VIP (or of a block's owner, active-active),
    /// in time order.
    pub failovers: Vec<FailoverReport>,
    /// Director faults (death, link failures) and their repairs, in time order.
    pub director_faults: Vec<DirectorFaultReport>,
    /// Connection synchronisation; `None` without it.
    pub sync: Option<SyncReport>,
    /// Active-active: connections (measured) each director scheduled, in configuration
    /// order; empty otherwise.
    pub scheduled_by_director: Vec<u64>,
}

/// One real-server fault and its detection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultReport {
    /// The real server.
    pub server: String,
    /// `crash`, `hang` or `slow`.
    pub kind: String,
    /// When the fault began.
    pub at: Time,
    /// When it ended (`Recover`), if it did.
    pub recovered_at: Option<Time>,
    /// When the first director's checker declared the server down (quiesced or removed
    /// it), if one did before it recovered.
    pub detected_at: Option<Time>,
    /// When a checker restored it after it recovered.
    pub restored_at: Option<Time>,
    /// Connections (any, measured or not) that were sent to the server and failed
    /// (refused or dropped) between the fault and its detection (or its recovery, if
    /// undetected).
    pub failed_before_detection: u64,
    /// ... and those that failed from its detection until its recovery (established
    /// ones of a removed or quiesced server).
    pub failed_after_detection: u64,
}

/// Health checks on one director.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Checks started.
    pub checks: u64,
    /// Checks that failed (timed out or refused).
    pub failed: u64,
    /// Real servers declared down.
    pub downs: u64,
    /// Real servers restored.
    pub ups: u64,
    /// Times the fallback (sorry) server was put in.
    pub fallbacks: u64,
}

/// A change of the director serving the VIP (or a block).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailoverReport {
    /// When the VIP's traffic started reaching the new director (its gratuitous ARP took
    /// effect).
    pub at: Time,
    /// The director that served it before, if any.
    pub from: Option<String>,
    /// The director serving it now, if any.
    pub to: Option<String>,
    /// What caused it: `director down`, `external link down`, `preempt`, `ipfail`, ...
    pub cause: String,
    /// The gap: from the fault that caused it (if one did) to `at` [s].
    pub gap_s: Option<f64>,
    /// Established connections (any) that were lost because the new director had no
    /// entry for them (reset or dropped).
    pub lost_conns: u64,
    /// Established connections (any) that went on through the new director because a
    /// synced entry was there.
    pub survived_conns: u64,
}

/// A director fault or repair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirectorFaultReport {
    /// The director.
    pub director: String,
    /// `down`, `up`, `external link down`, `external link up`, `internal link down`,
    /// `internal link up`.
    pub kind: String,
    /// When.
    pub at: Time,
}

/// What the sync daemons sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Sync messages sent (each multicast once).
    pub messages: u64,
    /// Connection records in them.
    pub conns: u64,
    /// Their UDP payload bytes.
    pub bytes: u64,
    /// Entries created or refreshed on receiving directors.
    pub applied: u64,
}
