//! The run budget: an upper estimate of the events a command simulates and of the memory
//! its runs hold at once, refused (with the figure, the field that drives it and the flag
//! that raises the budget) when it exceeds `--max-events` or `--max-memory`.
//!
//! The estimate is deliberately generous (an upper bound in practice), from the figures
//! of docs/benchmarks.md and sim-core's structs:
//! - connections offered: each population's rate × duration (a schedule's steps, a
//!   trace's times), plus six standard deviations of a Poisson count;
//! - events: [`EVENTS_PER_CONN`] + [`EVENTS_PER_REQUEST`] × the mean requests of a
//!   connection (a measured 16 for one request, 4.5 a request more), and the periodic
//!   ones: samples, health checks, feedback reports, fail-over adverts; scanning the real
//!   servers (scheduling a connection, adding a server) counts one event per 64 servers;
//! - memory: every offered connection held at once ([`BYTES_PER_CONN`]: the connection,
//!   its IPVS entry, a CPU job; 176 bytes measured), each real server
//!   ([`BYTES_PER_SERVER`]: 1.2 KiB measured in the simulation, 4.6 KiB with the reports) and the growth of its
//!   latency histogram once it serves: with full per-server detail
//!   ([`sim_core::model::ServerDetail`]) [`BYTES_PER_SERVING_SERVER`] (an auto-resizing
//!   hdrhistogram grows to cover the largest latency recorded, 434 KiB up to the horizon;
//!   190 KiB measured at 7 ms, 470 KiB under a Pareto tail), without it
//!   [`BYTES_PER_COMPACT_HISTOGRAM`] (64 buckets an octave over the range seen); each
//!   sample of the time series (and its CSV row: one entry a server only with full
//!   detail), each client address.

use sim_core::arrival::ArrivalProcess;
use sim_core::model::Transport;

use crate::doc::parse_path;
use crate::{Error, Loaded};

/// Events of a connection beyond its requests' (open, close, IPVS expiry, stages).
pub const EVENTS_PER_CONN: f64 = 32.0;
/// Events of each request of a connection.
pub const EVENTS_PER_REQUEST: f64 = 16.0;
/// Bytes a connection may hold until the end of its run.
pub const BYTES_PER_CONN: f64 = 256.0;
/// Bytes of a real server (CPU, link, counters, its IPVS dests, its configuration).
pub const BYTES_PER_SERVER: f64 = 8.0 * 1024.0;
/// Bytes a real server's full latency histogram may grow by once it serves.
pub const BYTES_PER_SERVING_SERVER: f64 = 512.0 * 1024.0;
/// Bytes a real server's compact latency histogram may grow by once it serves (values
/// from 1 µs to 1000 s: 30 octaves of 64 four-byte buckets).
pub const BYTES_PER_COMPACT_HISTOGRAM: f64 = 8.0 * 1024.0;
/// Bytes of one real server in one time-series sample (and its CSV row).
pub const BYTES_PER_SERVER_SAMPLE: f64 = 160.0;
/// Bytes a sweep point holds per real server until the sweep ends (its topology and
/// configuration: names, links, CPUs, the services' entries).
pub const BYTES_PER_POINT_SERVER: f64 = 1536.0;
/// Bytes of a run whatever its size.
pub const BYTES_PER_RUN: f64 = 32.0 * 1024.0 * 1024.0;
/// Events of one SYN of a flood (scheduling, its entry's expiry, a share of the drop_entry
/// scans) [events].
pub const EVENTS_PER_FLOOD_SYN: f64 = 4.0;
/// Bytes a flood's half-open entry holds (the 64-byte entry, its index slot and timer
/// item, the defences' side tables, the slab's slack).
pub const BYTES_PER_FLOOD_ENTRY: f64 = 128.0;
/// The longest a flood's entry lives without a defence (SYNACK under secure_tcp) [s].
const FLOOD_ENTRY_S: f64 = 120.0;
/// Default `--max-events`.
pub const DEFAULT_MAX_EVENTS: f64 = 2e10;
/// Default `--max-memory` when the machine's memory is unknown [bytes].
pub const DEFAULT_MAX_MEMORY: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

/// What a command may spend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Events simulated by every run of the command together.
    pub max_events: f64,
    /// Bytes held by the runs that run at once.
    pub max_memory: f64,
    /// Runs at once (`--jobs`, else the cores).
    pub parallel: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { max_events: DEFAULT_MAX_EVENTS, max_memory: DEFAULT_MAX_MEMORY, parallel: 1 }
    }
}

/// What one run of a scenario is estimated to need.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Connections offered.
    pub connections: f64,
    /// Events simulated.
    pub events: f64,
    /// Peak memory while it runs [bytes].
    pub memory: f64,
    /// Memory of its report once it has run [bytes] (`run` keeps every replication's
    /// until all have run; sweeps and plans keep a summary).
    pub report: f64,
    /// The field that drives the events most, and what it contributes.
    events_driver: (String, f64),
    /// The field that drives the memory most, and what it contributes.
    memory_driver: (String, f64),
}

/// The estimate of one run (one replication) of a loaded scenario.
pub fn estimate(l: &Loaded) -> Estimate {
    let c = &l.cluster;
    let dur_s = c.duration.as_secs_f64();
    let Offered { conns, conn_events, conn_driver, addresses } = offered_by_populations(c, dur_s);
    let servers = c.servers.len() as f64;
    // Scheduling scans a service's real servers (the lc family, as the kernel does), and
    // adding each one scans those before it: counted as events, one per 64 servers.
    let dests: Vec<f64> =
        c.directors.iter().flat_map(|d| &d.services).map(|s| s.dests.len() as f64).collect();
    let widest = dests.iter().copied().fold(0.0, f64::max);
    let set_up = dests.iter().map(|n| n * n).sum::<f64>() / 64.0 * (1.0 + c.director_events.len() as f64);
    let samples = c.sample_interval.map_or(0.0, |iv| dur_s / iv.as_secs_f64().max(1e-9) + 2.0);
    let mut periodic = vec![
        ("sample_interval_s".to_owned(), samples * (1.0 + servers / 64.0)),
        (widest_group(l), conns * widest / 64.0 + set_up),
    ];
    let checks: f64 = c
        .directors
        .iter()
        .flat_map(|d| &d.services)
        .filter_map(|s| s.check.as_ref().map(|k| (s.dests.len() as f64 + 1.0, k)))
        .map(|(n, k)| n * 8.0 * dur_s / secs(k.interval))
        .sum();
    periodic.push(("directors".to_owned(), checks));
    if let Some(f) = &c.feedback {
        let dirs = c.directors.len() as f64;
        let reports = servers * dirs * 24.0 * dur_s / secs(f.interval);
        periodic.push(("feedback.interval_s".to_owned(), reports));
        periodic
            .push(("feedback.rescan_s".to_owned(), dirs * (1.0 + servers / 64.0) * dur_s / secs(f.rescan)));
    }
    if let Some(h) = &c.ha {
        periodic.push(ha_events(h, dur_s));
    }
    let (flood_events, flood_entries) = floods(l, dur_s);
    periodic.extend(flood_events);
    // IPVS rate estimators: every 2 s, each real server of each service.
    let total_dests: f64 = dests.iter().sum();
    periodic.push(("duration_s".to_owned(), dur_s / 2.0 * (1.0 + total_dests / 64.0)));
    let events_driver = periodic.iter().fold(conn_driver, |a, b| if b.1 > a.1 { b.clone() } else { a });
    let events = conn_events + periodic.iter().map(|p| p.1).sum::<f64>() + 1000.0;

    // Only a server that serves grows its histogram; at most one per connection. Without
    // full detail a sample holds the spread across servers, not one entry a server.
    let full = c.server_detail.full(c.servers.len());
    let histogram = if full { BYTES_PER_SERVING_SERVER } else { BYTES_PER_COMPACT_HISTOGRAM };
    let server_bytes = servers * BYTES_PER_SERVER + servers.min(conns) * histogram;
    let sampled_servers = if full { servers } else { 0.0 };
    let group = l.scenario.servers.iter().enumerate().max_by_key(|(_, s)| s.count).map(|(i, _)| i);
    let biggest_pop = c.populations.iter().enumerate().max_by_key(|(_, p)| p.clients).map_or(0, |(i, _)| i);
    let terms = [
        (busiest_population(l), conns * BYTES_PER_CONN),
        (group.map_or("servers".to_owned(), |i| format!("servers[{i}].count")), server_bytes),
        ("sample_interval_s".to_owned(), samples * (sampled_servers * BYTES_PER_SERVER_SAMPLE + 512.0)),
        (format!("clients[{biggest_pop}].addresses"), addresses * 2.0),
        ("clients".to_owned(), trace_bytes(c)),
        flood_entries,
    ];
    let memory = BYTES_PER_RUN + terms.iter().map(|t| t.1).sum::<f64>();
    let report = 64.0 * 1024.0 + server_bytes + terms[2].1;
    let memory_driver = terms.into_iter().fold((String::new(), -1.0), |a, b| if b.1 > a.1 { b } else { a });
    Estimate { connections: conns, events, memory, report, events_driver, memory_driver }
}

/// The SYN floods' events (one term a flood, named by its rate) and the entries they may
/// hold at once (the largest flood's term names it).
fn floods(l: &Loaded, dur_s: f64) -> (Vec<(String, f64)>, (String, f64)) {
    let mut events = Vec::new();
    let (mut held, mut driver) = (0.0, ("syn_floods".to_owned(), 0.0));
    for (i, f) in l.scenario.syn_floods.iter().enumerate() {
        let span = (f.stop_s.unwrap_or(dur_s).min(dur_s) - f.start_s).max(0.0);
        let path = format!("syn_floods[{i}].rate");
        events.push((path.clone(), f.rate * span * EVENTS_PER_FLOOD_SYN));
        let bytes = f.rate * span.min(FLOOD_ENTRY_S) * BYTES_PER_FLOOD_ENTRY;
        held += bytes;
        if bytes > driver.1 {
            driver.0 = path;
        }
        driver.1 = driver.1.max(bytes);
    }
    (events, (driver.0, held))
}

/// What the client populations offer over a run.
struct Offered {
    /// Connections (with six standard deviations of a Poisson count).
    conns: f64,
    /// Their events (and an on-off process's periods).
    conn_events: f64,
    /// The population field that contributes the most events, and how many.
    conn_driver: (String, f64),
    /// Client addresses.
    addresses: f64,
}

fn offered_by_populations(c: &sim_core::model::ClusterConfig, dur_s: f64) -> Offered {
    let mut conns = 0.0;
    let mut conn_events = 0.0;
    let mut conn_driver = ("duration_s".to_owned(), 0.0);
    let mut addresses = 0.0;
    for (i, p) in c.populations.iter().enumerate() {
        let (n, field) = offered(&p.arrival, dur_s);
        let n = n + 6.0 * n.sqrt() + 1.0;
        let requests = match &p.transport {
            Transport::Tcp { requests, .. } | Transport::Udp { requests, .. } => requests.mean(),
        };
        let requests = if requests.is_finite() { requests.clamp(1.0, 1e6) + 1.0 } else { 1e6 };
        // An on-off process steps through its periods, arrivals or not.
        let periods = match &p.arrival {
            ArrivalProcess::OnOff { on, off, .. } => 2.0 * dur_s / (on.mean() + off.mean()).max(1e-9),
            _ => 0.0,
        };
        let ev = n * (EVENTS_PER_CONN + EVENTS_PER_REQUEST * requests) + periods;
        if ev > conn_driver.1 {
            conn_driver = (format!("clients[{i}].arrival.{field}"), ev);
        }
        conns += n;
        conn_events += ev;
        addresses += f64::from(p.clients);
    }
    Offered { conns, conn_events, conn_driver, addresses }
}

/// A duration in seconds, at least 1 ns (a divisor).
fn secs(d: lvs_sched::Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// The fail-over group's timers and messages: every member tells every other on each
/// medium at each keepalive (advert), and each sync daemon flushes.
fn ha_events(h: &sim_core::ha::HaConfig, dur_s: f64) -> (String, f64) {
    use sim_core::ha::Failover;
    let m = h.members.len() as f64;
    let (period, media, field) = match &h.failover {
        Failover::Heartbeat(hb) => {
            (secs(hb.keepalive), hb.media.len() + hb.ping_nodes.len(), "ha.failover.keepalive_s")
        }
        Failover::Vrrp(v) => (secs(v.advert_int), v.interfaces.len(), "ha.failover.advert_int_s"),
        Failover::ActiveActive(s) => {
            (secs(s.heartbeat.keepalive), s.heartbeat.media.len(), "ha.failover.heartbeat.keepalive_s")
        }
    };
    let group = m * m * (2.0 + media as f64) * 4.0 * dur_s / period;
    let sync = h.sync.as_ref().map_or(0.0, |s| m * 4.0 * dur_s / secs(s.flush));
    (field.to_owned(), group + sync)
}

/// The largest `count` group (what makes services wide).
fn widest_group(l: &Loaded) -> String {
    l.scenario
        .servers
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| s.count)
        .map_or("servers".to_owned(), |(i, _)| format!("servers[{i}].count"))
}

/// The population that offers the most connections: its rate field.
fn busiest_population(l: &Loaded) -> String {
    let dur_s = l.cluster.duration.as_secs_f64();
    l.cluster
        .populations
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (n, field) = offered(&p.arrival, dur_s);
            (format!("clients[{i}].arrival.{field}"), n)
        })
        .fold(("duration_s".to_owned(), -1.0), |a, b| if b.1 > a.1 { b } else { a })
        .0
}

/// Connections a process offers over `dur_s` seconds (expected; an on-off process as if
/// always on), and the field that sets it.
fn offered(a: &ArrivalProcess, dur_s: f64) -> (f64, &'static str) {
    match a {
        ArrivalProcess::Poisson { rate } | ArrivalProcess::Constant { rate } => (rate * dur_s, "rate"),
        ArrivalProcess::OnOff { rate, .. } => (rate * dur_s, "rate"),
        ArrivalProcess::Schedule { steps } => {
            let mut n = 0.0;
            for (k, &(from, rate)) in steps.iter().enumerate() {
                let start = from.as_nanos() as f64 / 1e9;
                let end = steps.get(k + 1).map_or(dur_s, |s| s.0.as_nanos() as f64 / 1e9).min(dur_s);
                n += rate * (end - start).max(0.0);
            }
            (n, "steps")
        }
        ArrivalProcess::Trace { times } => (times.len() as f64, "file"),
    }
}

fn trace_bytes(c: &sim_core::model::ClusterConfig) -> f64 {
    c.populations
        .iter()
        .map(|p| match &p.arrival {
            ArrivalProcess::Trace { times } => times.len() as f64 * 8.0,
            ArrivalProcess::Schedule { steps } => steps.len() as f64 * 16.0,
            _ => 0.0,
        })
        .sum()
}

/// Checks a command of `runs` runs of this scenario (replications, sweep points, plan
/// trials) against the budget: every run's events together, and the memory of the runs
/// that run at once (`budget.parallel`, at most `runs`).
/// What a command keeps of each run until every run is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeps {
    /// The whole report (`run`: replications are reported together).
    Reports,
    /// A summary (plans).
    Summaries,
    /// A sweep's: a summary without its per-server part (4 KiB), and, per run at once, up
    /// to 4 whole summaries (512 bytes a real server) waiting for a slower earlier run.
    Points,
}

/// [`check_keeping`] for a command that keeps every run's report (`run`).
pub fn check(l: &Loaded, runs: u64, what: &str, b: &Budget) -> Result<Estimate, Error> {
    check_keeping(l, runs, what, b, Keeps::Reports)
}

/// Checks a command of `runs` runs of this scenario (replications, sweep points, plan
/// trials) against the budget: every run's events together, and the memory of the runs
/// that run at once (`budget.parallel`, at most `runs`) plus what is kept of every run.
pub fn check_keeping(l: &Loaded, runs: u64, what: &str, b: &Budget, keeps: Keeps) -> Result<Estimate, Error> {
    let e = estimate(l);
    let runs_f = runs.max(1) as f64;
    let events = e.events * runs_f;
    if events > b.max_events {
        // One run fits: the number of runs drives it.
        let field = if e.events <= b.max_events { "replications" } else { e.events_driver.0.as_str() };
        return Err(at(
            l,
            field,
            format!(
                "{what} needs about {events:.2e} events ({} run(s) of {:.2e}, about {:.2e} connections each), \
                 above the budget of {:.2e} events: lower this field (or duration_s, replications), or raise \
                 --max-events",
                runs, e.events, e.connections, b.max_events
            ),
        ));
    }
    let at_once = runs.clamp(1, b.parallel.max(1) as u64) as f64;
    let kept = match keeps {
        Keeps::Reports => e.report,
        Keeps::Summaries => 4096.0 + l.cluster.servers.len() as f64 * 512.0,
        Keeps::Points => 4096.0,
    };
    let waiting = match keeps {
        Keeps::Points => 4.0 * at_once * l.cluster.servers.len() as f64 * 512.0,
        _ => 0.0,
    };
    // A finished run keeps its report (part of what it held); the others still run.
    let memory = e.memory * at_once + kept * (runs_f - at_once) + waiting;
    if memory > b.max_memory {
        let (field, part) = &e.memory_driver;
        // Many runs each keeping a little: the replications (or the points) drive it.
        let field =
            if kept * (runs_f - at_once) > e.memory * at_once { &"replications".to_owned() } else { field };
        return Err(at(
            l,
            field,
            format!(
                "{what} needs about {} of memory ({at_once} run(s) at once of {}, {} kept of each of {runs}; \
                 the largest part of a run is {} from {}), above the budget of {}: lower this field (or \
                 --jobs), or raise --max-memory",
                show_bytes(memory),
                show_bytes(e.memory),
                show_bytes(kept),
                show_bytes(*part),
                e.memory_driver.0,
                show_bytes(b.max_memory)
            ),
        ));
    }
    Ok(e)
}

/// An error at a scenario path (the nearest written ancestor).
fn at(l: &Loaded, path: &str, message: String) -> Error {
    let steps = parse_path(path).unwrap_or_default();
    let message = format!("{path}: {message}");
    match l.doc.locate_path(&steps) {
        Some(loc) => Error::at(loc, message),
        None => Error::bare(message),
    }
}

/// `1.5 GiB`.
pub fn show_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = b;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{x:.0} bytes") } else { format!("{x:.1} {}", UNITS[u]) }
}

/// Parses a size: `8G`, `512MiB`, `1.5g`, `1000000` (bytes); K, M, G, T are powers of 1024.
pub fn parse_size(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a size such as 8G or 512M"))?;
    let k = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M, G or T)")),
    };
    if !(x.is_finite() && x > 0.0) {
        return Err(format!("{s:?}: a size must be > 0"));
    }
    Ok(x * k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("8G").unwrap(), 8.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(parse_size("512MiB").unwrap(), 512.0 * 1024.0 * 1024.0);
        assert_eq!(parse_size("1000").unwrap(), 1000.0);
        assert!(parse_size("8X").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("G").is_err());
        assert_eq!(show_bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5 GiB");
    }
}
