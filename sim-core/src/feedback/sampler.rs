//! A simulated agent's measurement: the real server's processors as `/proc/stat` counts
//! them, through the agent's own cpuload computation; and, for the Prequal law, the
//! requests in flight on the server and their recent latency.

use feedbackd_proto::agent::Sample;
use feedbackd_proto::cpuload::{CpuCounters, CpuLoad};
use feedbackd_proto::types::AdminState;
use feedbackd_proto::wire::Metric;
use lvs_sched::Time;

/// `/proc/stat` counts in ticks of 1/USER_HZ s (100 on Linux).
pub const USER_HZ: u64 = 100;
const TICK_NS: u128 = 1_000_000_000 / USER_HZ as u128;

/// A real server's cumulative counters since time zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Its cores.
    pub cores: u32,
    /// Busy core-time [core·ns].
    pub busy_core_ns: u128,
    /// Requests served.
    pub served: u64,
    /// Requests refused (a full backlog): gRPC's errors.
    pub refused: u64,
    /// Requests in flight now: admitted and not yet answered (in the processors, or
    /// waiting for the server's backend).
    pub rif: u64,
    /// `∫ rif dt` since time zero [request·ns].
    pub rif_integral: u128,
    /// Requests that have left the server (answered or lost) since time zero.
    pub rif_left: u64,
}

/// One real server's agent measurement state.
#[derive(Clone, Debug, Default)]
pub struct Sampler {
    load: CpuLoad,
    prev: Option<(Time, u64, u64)>,
    /// `(rif_integral, rif_left)` at the last sample.
    prev_rif: (u128, u64),
    /// Whether it reports `rif` and `latency_ms` (the Prequal law's signal; other laws'
    /// reports stay as they were, byte for byte).
    in_flight: bool,
    last_capacity: Option<f64>,
}

impl Sampler {
    /// No measurement yet.
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// No measurement yet; reporting requests in flight and latency as well.
    pub fn with_in_flight() -> Sampler {
        Sampler { in_flight: true, ..Sampler::default() }
    }

    /// The counters as `/proc/stat`'s aggregate `cpu` line shows them at `now`: whole
    /// ticks of every core since boot (time zero), the busy ones not idle.
    pub fn proc_stat(now: Time, c: &ServerCounters) -> CpuCounters {
        let total = u128::from(now.0) / TICK_NS * u128::from(c.cores);
        let busy = (c.busy_core_ns / TICK_NS).min(total);
        CpuCounters { idle: (total - busy) as u64, total: total as u64 }
    }

    /// Measures at `now`: spare capacity `1 − busy` from the cpuload computation on the
    /// tick counters, with the metrics `cpu_busy` (as the agent's cpuload module names it),
    /// `qps` and `eps` (requests served and refused per second since the last sample),
    /// the same capacity for each of `services` services. With [`Sampler::with_in_flight`]
    /// also `rif`, the requests in flight now, and `latency_ms`, the mean time a request
    /// spent on the server since the last sample by Little's law (`∫ rif dt` over the
    /// requests that left; none when none left): what the agent's timed probe or the
    /// server's own file gives a live master.
    pub fn sample(&mut self, now: Time, c: &ServerCounters, services: usize) -> Sample {
        let busy = self.load.advance(Self::proc_stat(now, c)).ok();
        let (t0, served0, refused0) = self.prev.unwrap_or((Time::ZERO, 0, 0));
        self.prev = Some((now, c.served, c.refused));
        let secs = now.saturating_since(t0).as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let capacity = busy.map(|b| 1.0 - b);
        self.last_capacity = capacity.or(self.last_capacity);
        let mut metrics = Vec::with_capacity(3);
        if let Some(b) = busy {
            metrics.push(Metric { name: "cpu_busy".into(), value: b });
        }
        metrics.push(Metric { name: "qps".into(), value: rate(c.served - served0) });
        metrics.push(Metric { name: "eps".into(), value: rate(c.refused - refused0) });
        if self.in_flight {
            let (integral0, left0) = std::mem::replace(&mut self.prev_rif, (c.rif_integral, c.rif_left));
            metrics.push(Metric { name: "rif".into(), value: c.rif as f64 });
            let left = c.rif_left - left0;
            if left > 0 {
                let ms = (c.rif_integral - integral0) as f64 / left as f64 / 1e6;
                metrics.push(Metric { name: "latency_ms".into(), value: ms });
            }
        }
        Sample { admin: AdminState::Ready, capacity: vec![capacity; services], metrics }
    }

    /// The last spare capacity measured.
    pub fn last_capacity(&self) -> Option<f64> {
        self.last_capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn ticks_are_whole_hundredths_of_every_core() {
        let c = ServerCounters { cores: 2, busy_core_ns: u128::from(SEC) + 7_000_000, ..Default::default() };
        // 1.5 s on 2 cores = 300 ticks, 100 of them busy (the 7 ms are not a whole tick).
        assert_eq!(Sampler::proc_stat(Time(3 * SEC / 2), &c), CpuCounters { idle: 200, total: 300 });
    }

    #[test]
    fn a_sample_measures_since_the_last() {
        let mut s = Sampler::new();
        let c1 =
            ServerCounters { cores: 1, busy_core_ns: u128::from(SEC / 4), served: 10, ..Default::default() };
        let x = s.sample(Time(SEC), &c1, 2);
        assert_eq!(x.capacity, [Some(0.75), Some(0.75)]);
        let c2 = ServerCounters {
            cores: 1,
            busy_core_ns: u128::from(SEC / 4 + SEC),
            served: 30,
            refused: 4,
            ..Default::default()
        };
        let x = s.sample(Time(3 * SEC), &c2, 1);
        // 100 busy ticks of 200 since the last sample; 20 served and 4 refused in 2 s.
        assert_eq!(x.capacity, [Some(0.5)]);
        let m: Vec<(&str, f64)> = x.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(m, [("cpu_busy", 0.5), ("qps", 10.0), ("eps", 2.0)]);
        assert_eq!(s.last_capacity(), Some(0.5));
    }

    #[test]
    fn in_flight_and_latency_by_littles_law() {
        let mut s = Sampler::with_in_flight();
        // 4 in flight now; over the first 2 s, ∫ rif dt = 3 request·s and 10 left: 300 ms.
        let c1 = ServerCounters {
            cores: 1,
            rif: 4,
            rif_integral: 3 * u128::from(SEC),
            rif_left: 10,
            ..Default::default()
        };
        let x = s.sample(Time(2 * SEC), &c1, 1);
        let m: Vec<(&str, f64)> = x.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(&m[m.len() - 2..], [("rif", 4.0), ("latency_ms", 300.0)]);
        // Nothing left since: no latency, only the requests in flight.
        let c2 = ServerCounters { rif: 6, rif_integral: 4 * u128::from(SEC), ..c1 };
        let x = s.sample(Time(3 * SEC), &c2, 1);
        let m: Vec<(&str, f64)> = x.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(m.last(), Some(&("rif", 6.0)));
        // 2 more left over ∫ = 1 request·s: 500 ms.
        let c3 = ServerCounters { rif: 0, rif_integral: 5 * u128::from(SEC), rif_left: 12, ..c2 };
        let x = s.sample(Time(4 * SEC), &c3, 1);
        assert_eq!(x.metrics.last().map(|m| (m.name.as_str(), m.value)), Some(("latency_ms", 500.0)));
        // Without in_flight: no rif, no latency_ms (other laws' reports are unchanged).
        let x = Sampler::new().sample(Time(2 * SEC), &c1, 1);
        assert!(x.metrics.iter().all(|m| m.name != "rif" && m.name != "latency_ms"));
    }
}
