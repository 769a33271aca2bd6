//! Results broken down: per client population (counted as connections end and responses
//! arrive), per virtual service (its populations summed at the end), and the backend
//! tier (utilisation, queries present, residence times).
//!
//! The hot path gains one histogram record per response (the population's) and an
//! indexed counter per outcome; nothing here allocates per event.

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Time};

use crate::cpu::Cpu;
use crate::model::config::{ClusterConfig, service_name};
use crate::model::report::{BackendReport, ConnCounts, GroupResults, PopulationReport, ServiceReport};
use crate::stats::{Latency, TimeIntegral};

/// What is counted of one population's measured connections.
#[derive(Default)]
pub(super) struct PopMeasure {
    pub(super) counts: ConnCounts,
    pub(super) latency: Latency,
    /// Its connections completed inside the measured window (any arrival time).
    pub(super) completed_in_window: u64,
}

/// How a connection ended.
pub(super) enum Outcome {
    Completed,
    Refused,
    Dropped,
    /// Reset by a director that took over without an entry for it.
    Lost,
}

/// Adds an outcome to a count.
pub(super) fn count(c: &mut ConnCounts, outcome: &Outcome) {
    match outcome {
        Outcome::Completed => c.completed += 1,
        Outcome::Refused => c.refused += 1,
        Outcome::Dropped => c.dropped += 1,
        Outcome::Lost => c.lost_on_failover += 1,
    }
}

/// A backend: its processors and what is measured of them.
pub(super) struct Backend {
    pub(super) cpu: Cpu,
    /// Queries present (in service or waiting for a worker).
    present: TimeIntegral,
    /// (busy core-time, present integral) at the window's start and end.
    window: [(u128, u128); 2],
    /// Most queries present at once inside the measured window.
    present_max: u64,
    latency: Latency,
    queries: u64,
    refused: u64,
}

impl Backend {
    pub(super) fn new(cpu: crate::cpu::CpuConfig) -> Self {
        Backend {
            cpu: Cpu::new(cpu),
            present: TimeIntegral::default(),
            window: [(0, 0); 2],
            present_max: 0,
            latency: Latency::new(),
            queries: 0,
            refused: 0,
        }
    }

    /// A query arrived (`admitted`: not refused) at `now`; `in_window`: inside the
    /// measured window; `measured`: of a measured connection.
    pub(super) fn arrived(&mut self, now: Time, admitted: bool, in_window: bool, measured: bool) {
        if !admitted {
            self.refused += u64::from(measured);
            return;
        }
        let n = self.present.value() + 1;
        self.present.set(now, n);
        if in_window {
            self.present_max = self.present_max.max(n);
        }
    }

    /// A query that arrived at `arrived` left at `now`.
    pub(super) fn answered(&mut self, now: Time, arrived: Time, measured: bool) {
        self.present.set(now, self.present.value() - 1);
        if measured {
            self.queries += 1;
            self.latency.record(now - arrived);
        }
    }

    /// Records the window's start (0) or end (1).
    pub(super) fn window_mark(&mut self, at: usize, now: Time) {
        self.window[at] = (self.cpu.busy_core_ns(now), self.present.integral(now));
        if at == 0 {
            self.present_max = self.present.value();
        }
    }

    pub(super) fn report(&self, name: &str, window: Duration) -> BackendReport {
        let w_ns = window.as_nanos().max(1) as f64;
        let cores = f64::from(self.cpu.config().cores);
        BackendReport {
            name: name.to_owned(),
            utilization: (self.window[1].0 - self.window[0].0) as f64 / (w_ns * cores),
            queue_mean: (self.window[1].1 - self.window[0].1) as f64 / w_ns,
            queue_max: self.present_max,
            latency: self.latency.clone(),
            queries: self.queries,
            refused: self.refused,
        }
    }
}

/// The services (each distinct key once, in configuration order) and the populations,
/// from the populations' measures.
pub(super) fn services_and_populations(
    cfg: &ClusterConfig,
    pops: Vec<PopMeasure>,
    window: Duration,
) -> (Vec<ServiceReport>, Vec<PopulationReport>) {
    let mut services: Vec<ServiceReport> = Vec::new();
    for svc in cfg.directors.iter().flat_map(|d| &d.services) {
        match services.iter_mut().find(|s| s.key == svc.addr) {
            // A group's members repeat the primary's services; a name on any copy counts.
            Some(s) => {
                if let Some(n) = &svc.name {
                    s.name.clone_from(n);
                }
            }
            None => services.push(ServiceReport {
                name: svc.name.clone().unwrap_or_else(|| service_name(&svc.addr)),
                key: svc.addr,
                results: GroupResults::default(),
            }),
        }
    }
    let secs = window.as_nanos().max(1) as f64 / 1e9;
    let mut populations = Vec::with_capacity(pops.len());
    for (p, m) in cfg.populations.iter().zip(pops) {
        let results = GroupResults {
            connections: m.counts,
            latency: m.latency,
            throughput_cps: m.completed_in_window as f64 / secs,
        };
        let key: Option<ServiceKey> = cfg.service_of(p).map(|(d, s)| cfg.directors[d].services[s].addr);
        let service = match key.and_then(|k| services.iter_mut().find(|s| s.key == k)) {
            Some(s) => {
                s.results.merge(&results);
                s.name.clone()
            }
            None => String::new(),
        };
        populations.push(PopulationReport { name: p.name.clone(), service, results });
    }
    (services, populations)
}
