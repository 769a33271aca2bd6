//! Reports of lvsim runs: `summary.json`, CSV time series and a self-contained
//! `report.html` with plotters charts and ipvsadm-style tables; the same for sweeps and
//! capacity plans. `docs/reports.md` describes every file and key.
//!
//! - [`summary`], [`summary_json`], [`text_summary`]: `summary.json` and the terminal text
//!   (`summary.rs`).
//! - [`write_run`]: `series.csv`, `servers.csv` and the run's `report.html` (`run.rs`);
//!   the breakdowns per service, population and backend (`summary.json`'s `services`,
//!   `populations`, `backends`, their CSV files, the page's section and the terminal
//!   block) in `breakdown.rs`;
//!   high availability (`summary.json`'s `ha`, `ha_events.csv`, the page's section, the
//!   terminal block) in `ha.rs`; many real servers as distributions (`summary.json`'s
//!   `real_servers_across`, `real_servers.csv`, band charts, top/bottom tables) in
//!   `across.rs`.
//! - [`compare_runs`], [`compare_sweeps`], [`write_compare`]: two runs or two sweeps side
//!   by side, each difference tested with [`significance::welch`] (`compare.rs`).
//! - [`replications`], [`write_replications`]: Student t intervals over seeds
//!   (`replications.rs`); [`write_sweep`] (`sweep.rs`); [`write_plan`] (`plan.rs`).
//! - Internals: `chart.rs` (plotters line charts and dot plots as inline SVG;
//!   `chart/overlay.rs` adds the warm-up band, event marks, hover `<title>`s and the
//!   legend beside the plot), `html.rs` (the page and escaping), `csv.rs`.
//!
//! # Invariants
//! - Never runs a simulation: it renders results it is given.
//! - Output is deterministic for the same results (no timestamps, no map iteration order);
//!   only `wall_s` (and the page line showing it) differs between two runs of the same
//!   scenario and seed.
//! - `report.html` is self-contained: charts are inline SVG, no scripts or files fetched;
//!   every text put into it is escaped.
//! - A chart draws at most 2000 points a line; the CSV files keep every sample.
//! - The page and the terminal do not grow with the number of real servers: past
//!   `across::CHART_LINES_MAX` lines a chart draws bands, past `across::LIST_MAX` rows a
//!   table becomes distributions and top/bottom lists; `real_servers.csv` has every one.
//! - A value that does not exist (no response in an interval) is NaN: a gap in a chart, an
//!   empty CSV field; never drawn or written as 0.

mod across;
mod breakdown;
mod chart;
mod compare;
mod csv;
mod ecmp;
pub use ecmp::{EcmpChangeSummary, EcmpSummary, MhAdditionSummary};
mod dos;
pub use dos::{DosDirectorSummary, DosSummary};
mod ha;
mod html;
mod plan;
mod replications;
mod run;
pub mod significance;
mod summary;
mod sweep;
pub use sweep::SweepJson;
mod text;
mod timechart;
mod units;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sim_core::model::RunReport;

/// What the report says about the run besides its results.
#[derive(Clone, Debug, Default)]
pub struct RunMeta {
    /// Scenario name (the file stem unless the file names it).
    pub scenario: String,
    /// The scenario's description.
    pub description: String,
    /// The scenario file, as given.
    pub source: String,
    /// `--set` overrides applied, as given (`PATH=VALUE`).
    pub overrides: Vec<String>,
    /// Wall-clock seconds the simulation took.
    pub wall_s: f64,
    /// What the configuration does that its author should be told of (real servers a
    /// scheduler's table leaves idle), located in the scenario file.
    pub warnings: Vec<String>,
    /// The scenario's timed events (drains, restores, faults), marked on every time chart.
    pub marks: Vec<EventMark>,
    /// The warm-up [s] (results before it are not measured), shaded on every time chart.
    pub warmup_s: f64,
}

/// One of the scenario's timed events, as the charts mark it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMark {
    /// When [s of virtual time].
    pub at_s: f64,
    /// What, in a few words (`rs2 weight 0`).
    pub label: String,
}

/// `summary.json`: the keys of the DESIGN.md contract, and more.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Warnings about the configuration (from [`RunMeta::warnings`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The `--set` overrides applied (from [`RunMeta::overrides`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// Master seed.
    pub seed: u64,
    /// Virtual seconds simulated (to the end of draining).
    pub simulated_s: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Events processed (the engine's count).
    pub events: u64,
    /// Outcomes of the measured connections.
    pub connections: Connections,
    /// Response time as the client sees it [ms].
    pub latency_ms: LatencyMs,
    /// Connections completed per second in the measured window.
    pub throughput_cps: f64,
    /// Per real server, in configuration order, when the run kept full per-server detail
    /// (`RunReport::server_detail`); empty otherwise (`real_servers.csv` lists every one,
    /// `real_servers_across` sums them up).
    pub real_servers: Vec<RealServerSummary>,
    /// Imbalance: the highest real server's utilisation minus the lowest's (0 with fewer
    /// than two servers).
    #[serde(default)]
    pub utilization_spread: f64,
    /// The distributions across every real server, and (when `real_servers` is empty) the
    /// top and bottom servers; absent in summaries written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_servers_across: Option<ServersAcross>,
    /// Per director.
    pub directors: Vec<DirectorSummary>,
    /// Per virtual service (each distinct one once, in configuration order): the results
    /// of the populations that connect to it.
    #[serde(default)]
    pub services: Vec<ServiceSummary>,
    /// Per client population, in configuration order.
    #[serde(default)]
    pub populations: Vec<PopulationSummary>,
    /// Per backend (the tier behind the real servers), in configuration order.
    #[serde(default)]
    pub backends: Vec<BackendSummary>,
    /// What the feedback loop did; absent without feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackSummary>,
    /// Health checks, fail-overs and sync; absent without health checks or an HA group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaSummary>,
    /// The ECMP director tier: router changes, connections broken; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecmp: Option<EcmpSummary>,
    /// SYN floods and IPVS defences; absent when no director has a flood, a memory or a
    /// defence on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dos: Option<DosSummary>,
}

/// What the high-availability machinery did (`summary.json`'s `ha`): the headline
/// figures first, then every fault, check counter, fail-over and director fault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HaSummary {
    /// The slowest detection of a real-server fault (detected − began) [s]; absent when no
    /// fault was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s_max: Option<f64>,
    /// The longest fail-over gap [s]; absent without a fail-over caused by a fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_gap_s_max: Option<f64>,
    /// Established connections (any) lost at fail-overs, summed.
    pub lost_conns_total: u64,
    /// Established connections (any) that survived fail-overs on synced entries, summed.
    pub survived_conns_total: u64,
    /// Real-server faults that no checker declared down (before they recovered, or at all).
    pub faults_undetected: u64,
    /// Real-server faults, in time order.
    pub faults: Vec<FaultSummary>,
    /// Health-check counters per director (configuration order).
    pub checks: Vec<CheckSummary>,
    /// Changes of the director serving the VIP (or a block), in time order.
    pub failovers: Vec<FailoverSummary>,
    /// Director faults and repairs, in time order.
    pub director_faults: Vec<DirectorFaultSummary>,
    /// Connection synchronisation; `null` without it.
    #[serde(default)]
    pub sync: Option<SyncSummary>,
    /// Active-active: measured connections each director scheduled; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled_by_director: Vec<ScheduledSummary>,
}

/// One real-server fault and how the health checks saw it. Times are seconds since the
/// run's start; an absent time did not happen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSummary {
    /// The real server.
    pub server: String,
    /// `crash`, `hang` or `slow`.
    pub kind: String,
    /// When the fault began [s].
    pub at_s: f64,
    /// When it ended [s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at_s: Option<f64>,
    /// When a checker declared the server down [s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at_s: Option<f64>,
    /// `detected_at_s − at_s` [s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<f64>,
    /// When a checker restored it after its recovery [s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at_s: Option<f64>,
    /// Connections sent to it that failed between the fault and its detection (or
    /// recovery, if undetected).
    pub failed_before_detection: u64,
    /// Connections that failed from its detection until its recovery.
    pub failed_after_detection: u64,
}

/// Health checks on one director.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The director.
    pub director: String,
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverSummary {
    /// When the new director's gratuitous ARP took effect [s].
    pub at_s: f64,
    /// The director that served before; absent if none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The director serving now; absent if none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `director down`, `external link down`, `preempt`, `ipfail`, ...
    pub cause: String,
    /// From the fault that caused it to `at_s` [s]; absent without a causing fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_s: Option<f64>,
    /// Established connections (any) lost: the new director had no entry for them.
    pub lost_conns: u64,
    /// Established connections (any) that went on through a synced entry.
    pub survived_conns: u64,
}

/// A director fault or repair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorFaultSummary {
    /// The director.
    pub director: String,
    /// `down`, `up`, `external link down`, `external link up`, `internal link down`,
    /// `internal link up`.
    pub kind: String,
    /// When [s].
    pub at_s: f64,
}

/// What the sync daemons sent (whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// Sync messages sent.
    pub messages: u64,
    /// Connection records in them.
    pub conns: u64,
    /// Their UDP payload bytes.
    pub bytes: u64,
    /// Entries created or refreshed on receiving directors.
    pub applied: u64,
}

/// Active-active: the measured connections one director scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSummary {
    /// The director.
    pub director: String,
    /// Connections it scheduled.
    pub connections: u64,
}

/// The feedback loop's results (`summary.json`'s `feedback`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSummary {
    /// The weight law: `capacity` or `grpc_wrr`.
    pub law: String,
    /// Reports the agents sent.
    pub reports_sent: u64,
    /// Reports the masters applied.
    pub reports_applied: u64,
    /// Weight changes the masters made.
    pub weight_changes: u64,
    /// Segment transmissions lost on the agent-master links.
    pub segments_lost: u64,
    /// Agent connections that broke and were re-established.
    pub reconnects: u64,
    /// The slowest server's reaction to its last background-work change [s]; absent when
    /// no server has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction_s: Option<f64>,
    /// Oscillation: the servers' weight travel summed [weight units/min].
    pub weight_travel_per_min: f64,
    /// Per real server, in configuration order.
    pub servers: Vec<FeedbackServerSummary>,
}

/// One real server's weight under feedback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackServerSummary {
    /// Name.
    pub name: String,
    /// Reports its agent sent.
    pub reports: u64,
    /// Changes of its weight.
    pub weight_changes: u64,
    /// Time-average of its weight over the measured window.
    pub weight_mean: f64,
    /// Its lowest weight in the window.
    pub weight_min: u32,
    /// Its highest weight in the window.
    pub weight_max: u32,
    /// Sum of |weight change| in the window, per minute.
    pub weight_travel_per_min: f64,
    /// From its last background-work change until its weight came within 10% of where
    /// it settled [s]; absent without such a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction_s: Option<f64>,
    /// The last spare capacity its agent reported, in [0, 1]; absent before any report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_last: Option<f64>,
}

/// Connection outcomes.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    pub offered: u64,
    pub completed: u64,
    pub refused: u64,
    pub dropped: u64,
    pub lost_on_failover: u64,
}

/// Response-time statistics [ms].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Mean.
    pub mean: f64,
    /// Batch-means 95% confidence half-width of the mean (0 when too few batches).
    pub mean_ci95: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// The results of a group of measured connections (a service's, a population's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Outcomes of its measured connections.
    pub connections: Connections,
    /// Fraction of its offered connections not completed (refused, dropped or lost on
    /// fail-over); 0 when none was offered.
    pub loss_fraction: f64,
    /// Its connections completed per second in the measured window.
    pub throughput_cps: f64,
    /// Its response times [ms] (all 0 when none was measured; `mean_ci95` is 0: use
    /// replications for intervals).
    pub latency_ms: LatencyMs,
}

/// A virtual service's results (`summary.json`'s `services`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// Its name (the topology's `name`, else `tcp-VIP-PORT`, `udp-VIP-PORT`, `fwmark-MARK`):
    /// `services[NAME]` in a metric path.
    pub name: String,
    /// `TCP`, `UDP`, or `FWM` for a firewall-mark service.
    pub protocol: String,
    /// Virtual IP; empty for a firewall-mark service.
    pub vip: String,
    /// Virtual port; 0 for a firewall-mark service.
    pub port: u16,
    /// The firewall mark; absent for a VIP:port service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Its populations' results, summed.
    #[serde(flatten)]
    pub results: GroupSummary,
}

/// A client population's results (`summary.json`'s `populations`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PopulationSummary {
    /// Its name: `populations[NAME]` in a metric path.
    pub name: String,
    /// The name of the service it connects to.
    pub service: String,
    /// Its results.
    #[serde(flatten)]
    pub results: GroupSummary,
}

/// A backend's results over the measured window (`summary.json`'s `backends`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendSummary {
    /// Its name: `backends[NAME]` in a metric path.
    pub name: String,
    /// Busy fraction of its cores.
    pub utilization: f64,
    /// Time-average of the queries present (in service or waiting for a worker).
    pub queue_mean: f64,
    /// Most queries present at once.
    pub queue_max: u64,
    /// Residence time of a query at the backend (arrival to answer; the link latency
    /// both ways is not in it) [ms].
    pub latency_ms: LatencyMs,
    /// Queries of measured connections it answered.
    pub queries: u64,
    /// Queries of measured connections its full backlog refused.
    pub refused: u64,
}

/// A real server's results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealServerSummary {
    /// Name.
    pub name: String,
    /// Address (RIP).
    pub address: String,
    /// Measured connections scheduled to it.
    pub connections: u64,
    /// Busy fraction of its cores in the measured window.
    pub utilization: f64,
    /// IPVS weight at the end.
    pub weight_final: u32,
    /// Time-average of its open connections.
    pub active_conns_mean: f64,
    /// Its response times [ms].
    pub latency_ms: ServerLatencyMs,
    /// Requests refused by its full backlog.
    pub refused: u64,
}

/// The real servers as distributions (`summary.json`'s `real_servers_across`): what a
/// reader of a run with thousands of servers can take in. Quantiles are nearest-rank over
/// the servers; the latency ones only over servers that answered a measured request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServersAcross {
    /// Real servers.
    pub servers: u64,
    /// Real servers with at least one measured response.
    pub answered: u64,
    /// Busy fraction of each server's cores in the measured window.
    pub utilization: Quantiles,
    /// Measured connections scheduled to each.
    pub connections: Quantiles,
    /// Time-average of each one's open connections.
    pub active_conns_mean: Quantiles,
    /// Each one's mean response time [ms].
    pub latency_mean_ms: Quantiles,
    /// Each one's 99th-percentile response time [ms].
    pub latency_p99_ms: Quantiles,
    /// The most utilised servers, busiest first (ties in configuration order); only when
    /// `real_servers` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busiest: Vec<RealServerSummary>,
    /// The least utilised servers, idlest first; only when `real_servers` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idlest: Vec<RealServerSummary>,
    /// The servers with the highest p99, slowest first; only when `real_servers` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowest: Vec<RealServerSummary>,
    /// The answering servers with the lowest p99, fastest first; only when `real_servers`
    /// is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fastest: Vec<RealServerSummary>,
}

/// A figure's distribution across real servers (nearest-rank; all 0 for no server).
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub min: f64,
    pub p1: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// A real server's response-time percentiles [ms].
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerLatencyMs {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

/// A director's results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorSummary {
    /// Name.
    pub name: String,
    /// IPVS InPkts (all services).
    pub in_pkts: u64,
    /// IPVS OutPkts.
    pub out_pkts: u64,
    /// IPVS InBytes.
    pub in_bytes: u64,
    /// IPVS OutBytes.
    pub out_bytes: u64,
    /// Busiest link direction's utilisation.
    pub link_utilization: f64,
    /// Its per-packet CPU's utilisation.
    pub cpu_utilization: f64,
    /// Packets dropped at its links' buffers and its CPU backlog.
    pub dropped_packets: u64,
}

/// Files written for a run, a sweep or a plan.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Every file, in the order written.
    pub files: Vec<PathBuf>,
}

impl Written {
    /// Writes `text` to `dir/name` and records the path.
    pub(crate) fn write(&mut self, dir: &Path, name: &str, text: &str) -> io::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        self.files.push(path);
        Ok(())
    }
}

/// Builds `summary.json`'s content from a run.
pub fn summary(meta: &RunMeta, report: &RunReport) -> Summary {
    summary::build(meta, report)
}

/// `summary.json`'s text: pretty JSON with keys in struct order and a final newline;
/// byte-identical for identical summaries.
pub fn summary_json(summary: &Summary) -> String {
    summary::to_json(summary)
}

/// A short plain-text summary for the terminal: outcomes, latency, and ipvsadm-style
/// tables (`ipvsadm -L -n` and `--stats`) of every director.
pub fn text_summary(meta: &RunMeta, report: &RunReport) -> String {
    summary::text(meta, report)
}

/// Writes a run's report directory: `summary.json`, `series.csv` (the time series, one
/// row per sample), `servers.csv` (per real server per sample), `real_servers.csv` (one
/// row for every real server), `services.csv`,
/// `populations.csv` and `backends.csv` (one row each), `ha_events.csv` (faults,
/// fail-overs and director faults; only when the run has HA results) and `report.html`.
pub fn write_run(dir: &Path, meta: &RunMeta, report: &RunReport) -> io::Result<Written> {
    run::write(dir, meta, report)
}

/// Mean and 95% confidence half-width (Student t) of one metric over replications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean over the replications.
    pub mean: f64,
    /// 95% half-width (0 with one replication).
    pub ci95: f64,
    /// Replications.
    pub n: u32,
}

/// The same scenario run with several seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replications {
    /// One summary per seed, in seed order.
    pub runs: Vec<Summary>,
    /// Mean latency [ms].
    pub latency_mean_ms: Estimate,
    /// p99 [ms].
    pub latency_p99_ms: Estimate,
    /// Throughput [conn/s].
    pub throughput_cps: Estimate,
    /// Fraction of offered connections not completed (refused + dropped + lost).
    pub loss_fraction: Estimate,
    /// Real-server utilisation spread (max − min) [fraction].
    #[serde(default)]
    pub utilization_spread: Estimate,
    /// The slowest server's feedback reaction [s]; only when every run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_reaction_s: Option<Estimate>,
    /// Feedback weight travel summed over servers [weight units/min]; only when every run
    /// had feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_weight_travel_per_min: Option<Estimate>,
    /// Measured connections lost on fail-over [conns]; only when every run had HA results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_on_failover: Option<Estimate>,
    /// The longest fail-over gap [s] (`ha.failover_gap_s_max`); only when every run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha_failover_gap_s_max: Option<Estimate>,
    /// The slowest fault detection [s] (`ha.detection_s_max`); only when every run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha_detection_s_max: Option<Estimate>,
}

/// Aggregates replications (Student t 95% intervals).
pub fn replications(runs: Vec<Summary>) -> Replications {
    replications::aggregate(runs)
}

/// Mean and Student t 95% half-width of one metric's values, one per replication (what
/// [`replications`] computes for its own metrics; `lvsim plan` for any SLO path).
pub fn estimate(values: &[f64]) -> Estimate {
    replications::estimate(values)
}

/// Writes `replications.json` and `replications.csv` (one row per seed, then the
/// estimates) into a run's report directory.
pub fn write_replications(dir: &Path, reps: &Replications) -> io::Result<Written> {
    replications::write(dir, reps)
}

/// One point of a sweep: a value for each axis, and its replications.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The value of each axis at this point, as written in the scenario (RON text).
    pub values: Vec<String>,
    /// Its runs.
    pub result: Replications,
}

/// A sweep: the product of the axes' values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Scenario name.
    pub scenario: String,
    /// The swept fields (scenario paths), in axis order.
    pub axes: Vec<String>,
    /// Every point, in the product's order (the last axis varies fastest).
    pub points: Vec<SweepPoint>,
}

/// Writes a sweep's directory: `sweep.json`, `sweep.csv` (one row per point) and
/// `report.html` (a table, and comparison charts: each metric against the last axis
/// whose values are numbers, one line per combination of the other axes, with
/// confidence intervals when there are replications).
pub fn write_sweep(dir: &Path, sweep: &SweepReport) -> io::Result<Written> {
    sweep::write(dir, sweep)
}

/// `sweep.csv` and `report.html` of [`write_sweep`], without `sweep.json` (which
/// [`SweepJson`] writes a point at a time): they use the points' estimates and numbers of
/// runs, not the runs' per-server parts, which a long sweep need not keep.
pub fn write_sweep_pages(dir: &Path, sweep: &SweepReport) -> io::Result<Written> {
    sweep::write_pages(dir, sweep)
}

/// One group a plan sizes together with the others.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanGroup {
    /// What it is, as a person reads it, plural: `app servers`, `db cores`.
    pub label: String,
    /// The scenario field the search sets (`servers[0].count`, `backends[0].cpu.cores`).
    pub path: String,
    /// Smallest size tried.
    pub min: u32,
    /// Largest size tried.
    pub max: u32,
    /// Cost of one unit.
    pub cost: f64,
}

/// Whether a trial keeps one SLO check, judged on its replications' 95% interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It holds: the interval lies within the bound (with one run: the value does).
    Meets,
    /// It does not: the interval lies beyond the bound (with one run: the value does).
    #[default]
    Fails,
    /// The interval straddles the bound: not shown to hold, so counted as failing.
    Unclear,
}

/// One SLO check of a trial.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanCheck {
    /// The check as a person reads it: `latency_ms.p99 <= 100`.
    pub check: String,
    /// Its metric path (`loss_fraction` for the plan's loss bound).
    pub metric: String,
    /// The metric over the trial's replications.
    pub estimate: Estimate,
    /// Whether it holds.
    pub verdict: Verdict,
}

/// One trial of a capacity plan: a scheduler and a size for each group, replicated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanTrial {
    /// Scheduler.
    pub scheduler: String,
    /// One size per group of [`PlanReport::groups`], in that order.
    pub sizes: Vec<u32>,
    /// Σ size × cost.
    pub cost: f64,
    /// The SLO's checks, in the plan's order, then the loss bound.
    pub checks: Vec<PlanCheck>,
    /// Every check is [`Verdict::Meets`].
    pub meets: bool,
    /// Its runs.
    pub result: Replications,
}

/// Sizes as a person reads them: `3 app servers + 1 db core` (one per group).
pub fn sizes_text(groups: &[PlanGroup], sizes: &[u32]) -> String {
    groups.iter().zip(sizes).map(|(g, &n)| count_text(n, &g.label)).collect::<Vec<_>>().join(" + ")
}

/// `3 app servers`, `1 app server`: a group's plural label with its size.
pub fn count_text(n: u32, plural: &str) -> String {
    match plural.strip_suffix('s') {
        Some(one) if n == 1 => format!("1 {one}"),
        _ => format!("{n} {plural}"),
    }
}

/// A cost as a person reads it: at most three decimals, no trailing zeros (`3.5`, `4`).
pub fn cost_text(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl PlanReport {
    /// The first columns of the trials' table, on the terminal and the page alike:
    /// scheduler, each group's size, cost.
    pub fn lead_header(&self) -> Vec<String> {
        let mut h = vec!["scheduler".to_owned()];
        h.extend(self.groups.iter().map(|g| g.label.clone()));
        h.push("cost".into());
        h
    }
}

impl PlanTrial {
    /// This trial's cells under [`PlanReport::lead_header`].
    pub fn lead_cells(&self) -> Vec<String> {
        let mut row = vec![self.scheduler.clone()];
        row.extend(self.sizes.iter().map(u32::to_string));
        row.push(cost_text(self.cost));
        row
    }
}

/// A capacity plan: the cheapest cluster, and the scheduler, that keep the SLO at the
/// stated load, with every trial as evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    /// Scenario name.
    pub scenario: String,
    /// The SLO, as a person reads it (`latency_ms.p99 <= 200 and loss <= 0.001`).
    pub slo: String,
    /// The load, as a person reads it (`Poisson 800 conn/s`).
    pub load: String,
    /// What is sized.
    pub groups: Vec<PlanGroup>,
    /// Replications per trial.
    pub replications: u32,
    /// How the sizes were searched (`bisection`, `staircase`), in words.
    pub search: String,
    /// Points of the full grid (schedulers × every size combination), for comparison
    /// with the trials run.
    pub grid_points: u64,
    /// Every trial, sorted by scheduler (simplest first) and then sizes.
    pub trials: Vec<PlanTrial>,
    /// The answer, or `None` if no trial met the SLO within the ranges.
    pub answer: Option<PlanAnswer>,
}

/// A capacity plan's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanAnswer {
    /// Scheduler.
    pub scheduler: String,
    /// One size per group.
    pub sizes: Vec<u32>,
    /// Its cost.
    pub cost: f64,
    /// The first SLO metric there, with its 95% interval.
    pub value: Estimate,
    /// How the choice was made among configurations of the same (least) cost:
    /// `only`, `significantly better`, `indistinguishable`.
    pub choice: String,
    /// The other configurations of that cost, each against the answer (`b` = it).
    pub rivals: Vec<PlanRival>,
    /// Why this one, in a few sentences.
    pub why: String,
}

/// A configuration as cheap as the answer, compared with it (Welch, 95%).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanRival {
    /// Scheduler.
    pub scheduler: String,
    /// Sizes.
    pub sizes: Vec<u32>,
    /// The first SLO metric there.
    pub value: Estimate,
    /// It minus the answer.
    pub difference: significance::Difference,
}

/// Writes a plan's directory: `plan.json`, `plan.csv` (one row per trial) and
/// `report.html` (the answer first, then the evidence: the metric against the number of
/// servers for each scheduler with the SLO line, and the trials' table).
pub fn write_plan(dir: &Path, plan: &PlanReport) -> io::Result<Written> {
    plan::write(dir, plan)
}

/// One side of a comparison: the report directory and what it ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareSide {
    /// The report directory, as given.
    pub dir: String,
    /// Scenario name.
    pub scenario: String,
    /// A run's seeds (one per replication, in order); empty for a sweep.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// A run's `--set` overrides; empty for a sweep.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Replications: of the run, or the most of any point of the sweep.
    pub replications: u32,
}

/// One metric (of one sweep point) on both sides, and their difference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// The sweep point's axis values (RON text, in the axes' order); empty for runs.
    #[serde(default)]
    pub point: Vec<String>,
    /// The metric, as summary.json and replications.json name it (`latency_ms.p99`).
    pub metric: String,
    /// Its unit (`ms`, `conn/s`, `fraction`, `s`, `conns`, `1/min`).
    pub unit: String,
    /// A's estimate.
    pub a: Estimate,
    /// B's estimate.
    pub b: Estimate,
    /// `B − A`, its 95% interval and whether it is significant ([`significance::welch`]).
    pub difference: significance::Difference,
    /// What the intervals come from: `replications` (Student t over seeds), `batch means`
    /// (one run's 20 batch means: latency mean only) or `one run` (no interval).
    pub basis: String,
    /// `significant`, `not significant` or `cannot tell (...)`, saying why.
    pub verdict: String,
}

/// Two runs or two sweeps side by side (`compare.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// `run` or `sweep`.
    pub kind: String,
    /// The first report.
    pub a: CompareSide,
    /// The second report.
    pub b: CompareSide,
    /// A sweep's axes (A's order); empty for runs.
    #[serde(default)]
    pub axes: Vec<String>,
    /// Every metric, per matched point for sweeps (in A's point order).
    pub rows: Vec<CompareRow>,
    /// Sweep points of A with no point of B at the same axis values.
    #[serde(default)]
    pub only_in_a: Vec<Vec<String>>,
    /// Sweep points of B with no point of A at the same axis values.
    #[serde(default)]
    pub only_in_b: Vec<Vec<String>>,
    /// What a reader should know (different scenarios, different axes).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Compares two runs, each its first summary and, when it had several seeds, its
/// replications.
pub fn compare_runs(a: (CompareSide, Replications), b: (CompareSide, Replications)) -> CompareReport {
    compare::runs(a, b)
}

/// Compares two sweeps, point by point (points matched by their axes' values).
pub fn compare_sweeps(a: (CompareSide, SweepReport), b: (CompareSide, SweepReport)) -> CompareReport {
    compare::sweeps(a, b)
}

/// A comparison as tables show it (the terminal's and the page's): a column per sweep
/// axis, then metric (with unit), A, B, B − A (and in percent of A), the 95% interval of
/// B − A and the verdict; a row per metric (per matched point).
pub fn compare_table(c: &CompareReport) -> (Vec<String>, Vec<Vec<String>>) {
    compare::table(c)
}

/// A sweep point as a person reads it: `scheduler=wlc, servers=4`.
pub fn point_label(axes: &[String], values: &[String]) -> String {
    compare::point_label(axes, values)
}

/// Writes a comparison's directory: `compare.json`, `compare.csv` (one row per metric per
/// point) and `report.html` (the table, then a dot plot of A and B per metric with their
/// 95% whiskers).
pub fn write_compare(dir: &Path, c: &CompareReport) -> io::Result<Written> {
    compare::write(dir, c)
}
