//! LVS-REF-1, the reference benchmark scenario, built on the full model.
//!
//! The specification (`bench/LVS-REF-1.md` of the design documents) describes clients, a
//! director and N processor-sharing (or FCFS-c) real servers with ideal links. Here it is
//! an ordinary [`ClusterConfig`]: one director with ideal links and no CPU cost, one TCP
//! virtual service with direct routing, one request per connection with zero-byte
//! payloads. The spec's "hold" (a finished connection stays in the table, inactive, for H
//! seconds) is what IPVS does anyway: with direct routing a closed connection waits in
//! FIN_WAIT for the `tcpfin` timeout, so H is that timeout (and "no hold" is a timeout of
//! 0). Real servers are added in reverse so that the kernel's list order (newest first)
//! scans them in the spec's index order.

use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind};

use crate::arrival::ArrivalProcess;
use crate::cpu::CpuConfig;
use crate::dist::Dist;
use crate::model::{
    ClusterConfig, DestConfig, DirectorConfig, DuplexLink, PopulationConfig, RunReport, ServerConfig,
    ServiceConfig, Transport,
};
use lvs_ipvs::ServiceKey;
use lvs_ipvs::tcp::Timeouts;

/// The presets of LVS-REF-1's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The benchmark: 8 servers, ρ = 0.7, wlc, exponential demand.
    Base,
    /// M/M/1-PS.
    O1,
    /// M/G/1-PS with lognormal demand (insensitivity).
    O2,
    /// M/M/1-FCFS.
    O3,
    /// M/M/4 (Erlang C).
    O4,
    /// rr over 4 identical PS servers (each E4/M/1).
    O5,
}

/// Demand distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demand {
    /// Exponential.
    Exp,
    /// Lognormal with SCV 9.
    LogNormal,
}

/// How long a finished connection stays in the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hold {
    /// It leaves at completion.
    None,
    /// H seconds.
    Secs(f64),
    /// Until the end of the run (`--hold -1`, the memory probe).
    UntilEnd,
}

/// A LVS-REF-1 run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ref1 {
    /// Preset.
    pub preset: Preset,
    /// Scheduler (the preset's unless overridden, e.g. `base` × rr).
    pub scheduler: SchedulerKind,
    /// Demand distribution.
    pub demand: Demand,
    /// Connections offered: T = conns / λ.
    pub conns: u64,
    /// Hold variant.
    pub hold: Hold,
    /// Seed.
    pub seed: u64,
}

struct Shape {
    capacities: &'static [f64],
    weights: &'static [u32],
    /// FCFS with this many slots; `None`: processor sharing.
    slots: Option<u32>,
    lambda: f64,
    mean_demand_s: f64,
}

impl Preset {
    fn shape(self) -> Shape {
        let ps = |capacities, weights, lambda, m| Shape {
            capacities,
            weights,
            slots: None,
            lambda,
            mean_demand_s: m,
        };
        match self {
            Preset::Base => {
                ps(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 2.0], &[2, 2, 2, 2, 2, 3, 3, 4], 1000.0, 0.007)
            }
            Preset::O1 | Preset::O2 => ps(&[1.0], &[1], 80.0, 0.010),
            Preset::O3 => Shape { slots: Some(1), ..ps(&[1.0], &[1], 80.0, 0.010) },
            Preset::O4 => Shape { slots: Some(4), ..ps(&[4.0], &[1], 320.0, 0.010) },
            Preset::O5 => ps(&[1.0; 4], &[1; 4], 320.0, 0.010),
        }
    }

    /// The preset's own scheduler and demand distribution.
    pub fn run(self, conns: u64, seed: u64) -> Ref1 {
        let scheduler = match self {
            Preset::Base => SchedulerKind::Wlc,
            _ => SchedulerKind::Rr,
        };
        let demand = if self == Preset::O2 { Demand::LogNormal } else { Demand::Exp };
        Ref1 { preset: self, scheduler, demand, conns, hold: Hold::None, seed }
    }

    /// Arrival rate λ [1/s].
    pub fn lambda(self) -> f64 {
        self.shape().lambda
    }
}

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

impl Ref1 {
    /// T [s].
    pub fn duration_s(&self) -> f64 {
        self.conns as f64 / self.preset.lambda()
    }

    /// The run as a cluster configuration.
    pub fn config(&self) -> ClusterConfig {
        let shape = self.preset.shape();
        let duration = Duration((self.duration_s() * 1e9).round() as u64);
        let hold = match self.hold {
            Hold::None => Duration::ZERO,
            Hold::Secs(s) => Duration((s * 1e9).round() as u64),
            Hold::UntilEnd => duration,
        };
        let mut timeouts = Timeouts::default();
        timeouts.set(None, Some(hold), None);
        let servers: Vec<ServerConfig> = shape
            .capacities
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let slots = shape.slots.unwrap_or(1);
                ServerConfig {
                    name: format!("rs{i}"),
                    address: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1 + i as u8)),
                    segment: "lan".into(),
                    gateway: Some(0),
                    uplink: DuplexLink::IDEAL,
                    cpu: CpuConfig {
                        cores: slots,
                        speed: c / f64::from(slots),
                        max_in_service: shape.slots,
                        backlog: None,
                    },
                    backend: None,
                }
            })
            .collect();
        // IPVS puts each new real server first: add them last to first.
        let dests = (0..servers.len())
            .rev()
            .map(|i| DestConfig {
                weight: shape.weights[i],
                ..DestConfig::new(i, 80, Forwarding::DirectRouting)
            })
            .collect();
        let demand = match self.demand {
            Demand::Exp => Dist::Exponential { mean: shape.mean_demand_s },
            Demand::LogNormal => Dist::lognormal_mean_scv(shape.mean_demand_s, 9.0),
        };
        ClusterConfig {
            warmup: Duration(duration.as_nanos() / 10),
            drain_ipvs: true,
            directors: vec![DirectorConfig {
                timeouts,
                ..DirectorConfig::new(
                    "director",
                    "lan",
                    vec![ServiceConfig::new(
                        ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
                        self.scheduler,
                        dests,
                    )],
                )
            }],
            servers,
            populations: vec![PopulationConfig {
                name: "clients".into(),
                arrival: ArrivalProcess::Poisson { rate: shape.lambda },
                vip: VIP,
                port: 80,
                fwmark: None,
                clients: 1 << 16,
                first_client: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
                access_latency: Duration::ZERO,
                transport: Transport::Tcp { requests: Dist::Constant(1.0), think_time: Dist::Constant(0.0) },
                request_bytes: Dist::Constant(0.0),
                response_bytes: Dist::Constant(0.0),
                demand,
                backend_demand: None,
                response_timeout: None,
            }],
            ..ClusterConfig::new(self.seed, duration)
        }
    }
}

/// LVS-REF-1's required outputs (times in seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// Connections measured (arrivals in [W, T)).
    pub measured: u64,
    /// Mean response time.
    pub mean_r: f64,
    /// Batch-means 95% half-width.
    pub ci95_r: f64,
    /// Median, from the log histogram.
    pub p50_r: f64,
    /// 99th percentile, from the log histogram.
    pub p99_r: f64,
    /// Busy fraction of each server over [W, T].
    pub util: Vec<f64>,
    /// Fraction of measured connections sent to each server.
    pub share: Vec<f64>,
    /// Arrivals + completions + expiries (expiries only when holding).
    pub model_events: u64,
    /// Event-queue pops, stale ones included.
    pub engine_events: u64,
    /// Most connections in the table at once.
    pub peak_inflight: u64,
}

impl Ref1 {
    /// Extracts the outputs from a run of [`Ref1::config`].
    pub fn outputs(&self, r: &RunReport) -> Outputs {
        let measured = r.connections.completed;
        let expiries = if self.hold == Hold::None { 0 } else { r.ref1.expiries };
        Outputs {
            measured,
            mean_r: r.ref1.batch_means.mean(),
            ci95_r: r.ref1.batch_means.half_width_95().unwrap_or(f64::NAN),
            p50_r: r.ref1.log_histogram.quantile(0.5).unwrap_or(f64::NAN),
            p99_r: r.ref1.log_histogram.quantile(0.99).unwrap_or(f64::NAN),
            util: r.servers.iter().map(|s| s.utilization).collect(),
            share: r.servers.iter().map(|s| s.connections as f64 / measured.max(1) as f64).collect(),
            model_events: r.ref1.arrivals + r.ref1.completions + expiries,
            engine_events: r.engine_events,
            peak_inflight: r.ref1.peak_inflight,
        }
    }
}
