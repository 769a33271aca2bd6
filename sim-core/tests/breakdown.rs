//! Results per service, per client population and per backend against queueing theory
//! and conservation: a backend's utilisation is its offered load λ·E[demand]/cores, its
//! queries present obey Little's law and, on one core, its residence time is M/G/1-PS's
//! E[S]/(1 − ρ); two populations' throughputs are their arrival rates, and their counts
//! add up to the run's totals and to their services'.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));

fn cpu(cores: u32) -> CpuConfig {
    CpuConfig { cores, speed: 1.0, max_in_service: None, backlog: None }
}

fn population(name: &str, port: u16, rate: f64) -> PopulationConfig {
    PopulationConfig {
        name: name.into(),
        arrival: ArrivalProcess::Poisson { rate },
        vip: VIP,
        port,
        fwmark: None,
        clients: 1000,
        first_client: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)),
        access_latency: Duration::from_millis(1),
        transport: Transport::Tcp { requests: Dist::Constant(1.0), think_time: Dist::Constant(0.0) },
        request_bytes: Dist::Constant(200.0),
        response_bytes: Dist::Constant(2000.0),
        demand: Dist::Exponential { mean: 0.002 },
        backend_demand: None,
        response_timeout: None,
    }
}

/// One director, four real servers (4 cores each: never the bottleneck), a service on
/// VIP:80 named `web` and an unnamed one on VIP:443, both over all four servers; each
/// server queries backend `db` (`db_cores` cores, 0.5 ms away).
fn cluster(pops: Vec<PopulationConfig>, db_cores: u32, secs: u64) -> ClusterConfig {
    let servers = (0..4)
        .map(|i| ServerConfig {
            gateway: Some(0),
            backend: Some(0),
            ..ServerConfig::new(format!("rs{i}"), IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)), cpu(4))
        })
        .collect();
    let service = |port: u16, name: Option<&str>| {
        let dests = (0..4).map(|i| DestConfig::new(i, port, Forwarding::DirectRouting)).collect();
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port };
        ServiceConfig { name: name.map(String::from), ..ServiceConfig::new(key, SchedulerKind::Wlc, dests) }
    };
    ClusterConfig {
        directors: vec![DirectorConfig::new("lb", "lan", vec![service(80, Some("web")), service(443, None)])],
        servers,
        backends: vec![BackendConfig {
            name: "db".into(),
            latency: Duration::from_micros(500),
            cpu: cpu(db_cores),
        }],
        populations: pops,
        warmup: Duration::from_secs(20),
        ..ClusterConfig::new(7, Duration::from_secs(secs))
    }
}

fn run(cfg: ClusterConfig) -> RunReport {
    Simulation::new(cfg).expect("valid configuration").run()
}

fn within(x: f64, want: f64, rel: f64) -> bool {
    (x - want).abs() <= rel * want
}

#[test]
fn a_backend_is_as_busy_as_its_offered_load_and_obeys_littles_law() {
    // λ = 120 queries/s, E[demand] = 10 ms, 2 cores: ρ = 120 · 0.010 / 2 = 0.6.
    let mut web = population("web", 80, 120.0);
    web.backend_demand = Some(Dist::Exponential { mean: 0.010 });
    let r = run(cluster(vec![web], 2, 420));
    assert_eq!(r.backends.len(), 1);
    let db = &r.backends[0];
    assert_eq!(db.name, "db");
    assert!(within(db.utilization, 0.6, 0.05), "utilisation {} (offered 0.6)", db.utilization);
    let window_s = 400.0;
    assert!(within(db.queries as f64, 120.0 * window_s, 0.03), "{} queries", db.queries);
    assert_eq!(db.refused, 0);
    // Little: L = λ · W, with λ the answered rate and W the mean residence.
    let little = db.queries as f64 / window_s * db.latency.mean_ns() / 1e9;
    assert!(within(db.queue_mean, little, 0.05), "L = {} but λW = {little}", db.queue_mean);
    assert!(db.queue_max as f64 > db.queue_mean && db.queue_max < 1000, "max {}", db.queue_max);
    // Every measured query's connection went through the backend.
    assert_eq!(db.latency.count(), db.queries);
    assert!(db.queries <= r.connections.offered);
}

#[test]
fn one_core_backend_residence_is_mg1_ps() {
    // M/G/1-PS: E[R] = E[S] / (1 − ρ), whatever the demand's distribution;
    // λ = 50/s, E[S] = 10 ms (constant), ρ = 0.5: E[R] = 20 ms, L = ρ/(1 − ρ) = 1.
    let mut web = population("web", 80, 50.0);
    web.backend_demand = Some(Dist::Constant(0.010));
    let r = run(cluster(vec![web], 1, 620));
    let db = &r.backends[0];
    assert!(within(db.utilization, 0.5, 0.05), "utilisation {}", db.utilization);
    let mean_ms = db.latency.mean_ns() / 1e6;
    assert!(within(mean_ms, 20.0, 0.08), "mean residence {mean_ms} ms (M/G/1-PS: 20)");
    assert!(within(db.queue_mean, 1.0, 0.1), "L = {} (M/G/1-PS: 1)", db.queue_mean);
    // No residence is shorter than the work itself.
    assert!(db.latency.quantile_ns(0.0) >= 9_990_000);
}

#[test]
fn two_populations_match_their_rates_and_add_up_to_the_totals() {
    let mut mobile = population("mobile", 443, 30.0);
    mobile.access_latency = Duration::from_millis(40);
    let desktop = population("desktop", 80, 90.0);
    let mut api = population("api", 80, 20.0);
    api.backend_demand = Some(Dist::Exponential { mean: 0.005 });
    let r = run(cluster(vec![mobile, desktop, api], 1, 320));
    let window_s = 300.0;
    let names: Vec<&str> = r.populations.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mobile", "desktop", "api"]);
    let services: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["web", "tcp-172.17.60.201-443"]);
    assert_eq!(r.populations[0].service, "tcp-172.17.60.201-443");
    assert_eq!(r.populations[1].service, "web");
    for (p, rate) in r.populations.iter().zip([30.0, 90.0, 20.0]) {
        let t = p.results.throughput_cps;
        assert!(within(t, rate, 0.05), "{}: {t} conn/s, arrivals at {rate}", p.name);
        assert!(within(p.results.connections.offered as f64, rate * window_s, 0.05), "{}", p.name);
    }
    // Counts and latency records add up: populations → totals, populations → services.
    let sum =
        |f: fn(&ConnCounts) -> u64| r.populations.iter().map(|p| f(&p.results.connections)).sum::<u64>();
    assert_eq!(sum(|c| c.offered), r.connections.offered);
    assert_eq!(sum(|c| c.completed), r.connections.completed);
    assert_eq!(sum(|c| c.refused + c.dropped + c.lost_on_failover), 0);
    let records: u64 = r.populations.iter().map(|p| p.results.latency.count()).sum();
    assert_eq!(records, r.latency.count());
    let tput: f64 = r.populations.iter().map(|p| p.results.throughput_cps).sum();
    assert!((tput - r.throughput_cps).abs() < 1e-9);
    let web = &r.services[0].results;
    let (d, a) = (&r.populations[1].results, &r.populations[2].results);
    assert_eq!(web.connections.offered, d.connections.offered + a.connections.offered);
    assert_eq!(web.latency.count(), d.latency.count() + a.latency.count());
    assert_eq!(r.services[1].results.connections, r.populations[0].results.connections);
    // The mobile clients' 40 ms access link: two round trips more than the desktop's 1 ms.
    let (m_ms, d_ms) = (r.populations[0].results.latency.mean_ns() / 1e6, d.latency.mean_ns() / 1e6);
    assert!(m_ms - d_ms > 4.0 * 39.0 - 1.0, "mobile {m_ms} ms, desktop {d_ms} ms");
    // Only the api population queries the backend.
    assert_eq!(r.backends[0].queries, a.connections.completed);
}

#[test]
fn a_service_without_traffic_is_listed_with_nothing_and_same_seed_same_results() {
    let go = || run(cluster(vec![population("desktop", 80, 40.0)], 1, 40));
    let (a, b) = (go(), go());
    assert_eq!(a.services.len(), 2);
    let idle = &a.services[1].results;
    assert_eq!(
        (idle.connections, idle.latency.count(), idle.throughput_cps),
        (ConnCounts::default(), 0, 0.0)
    );
    assert_eq!(a.backends[0].queries, 0);
    assert_eq!(a.backends[0].utilization, 0.0);
    let key = |r: &RunReport| {
        let p = &r.populations[0].results;
        (p.connections, p.latency.sum_ns(), p.latency.max_ns(), p.throughput_cps.to_bits())
    };
    assert_eq!(key(&a), key(&b));
}

#[test]
fn default_names_and_a_firewall_mark_service() {
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        service_name(&ServiceKey::Addr { protocol: Protocol::Udp, addr: v6, port: 53 }),
        "udp-2001:db8::1-53"
    );
    assert_eq!(service_name(&ServiceKey::fwmark(5)), "fwmark-5");
    assert_eq!(service_name(&ServiceKey::Fwmark { mark: 5, ipv6: true }), "fwmark6-5");
    // A population with a mark reaches the mark's service, as IPVS looks it up first.
    let mut marked = population("marked", 80, 20.0);
    marked.fwmark = Some(5);
    let mut c = cluster(vec![marked, population("plain", 80, 20.0)], 1, 25);
    let mut fwm = c.directors[0].services[1].clone();
    fwm.addr = ServiceKey::fwmark(5);
    fwm.name = None;
    c.directors[0].services.push(fwm);
    let r = run(c);
    let services: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["web", "tcp-172.17.60.201-443", "fwmark-5"]);
    assert_eq!((r.populations[0].service.as_str(), r.populations[1].service.as_str()), ("fwmark-5", "web"));
    assert_eq!(r.services[2].results.connections, r.populations[0].results.connections);
    assert!(r.services[2].results.connections.completed > 0);
}
