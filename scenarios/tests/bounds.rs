//! A scenario that validates runs: every time, rate, count and size is bounded at its
//! file, line and column; the run budget refuses what would not finish or not fit, with
//! the figure, the field and the flag; the simulator survives what still gets through
//! (a sample from a long tail, a director that reboots with a sorry server in its table).
//! Each example of issue 15 (item 8) is here.

use std::path::Path;

use lvs_sched::Duration;
use scenarios::budget::{self, Budget};
use scenarios::{Error, Loaded, Source, load_str};
use sim_core::dist::Dist;
use sim_core::model::Simulation;

/// A small NAT scenario; `extra` goes after `clients`, and `demand` is the demand.
fn small(demand: &str, extra: &str) -> String {
    format!(
        "Scenario(\n    duration_s: 10.0,\n    sample_interval_s: 1.0,\n    topology: \"tutorial-nat\",\n    \
         clients: [Clients(arrival: Poisson(rate: 20.0), demand_ms: {demand})],\n{extra}\n)\n"
    )
}

fn load(text: &str, sets: &[&str]) -> Result<Loaded, Error> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_str("s.ron", "s", text, Path::new("."), &sets)
}

fn ok(text: &str) -> Loaded {
    load(text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(text: &str, sets: &[&str]) -> Error {
    match load(text, sets) {
        Ok(_) => panic!("loaded, but an error was expected:\n{text}\n{sets:?}"),
        Err(e) => e,
    }
}

/// The error names `path`, contains `words` and is located in the file at `line`.
fn assert_at(e: &Error, path: &str, words: &str, line: usize) {
    assert!(e.message.starts_with(&format!("{path}: ")), "{e}");
    assert!(e.message.contains(words), "{e}");
    let at = e.location.as_ref().unwrap_or_else(|| panic!("no location: {e}"));
    assert_eq!((&at.source, at.line), (&Source::File("s.ron".into()), line), "{e}");
}

#[test]
fn the_issues_examples_are_refused_at_their_field() {
    let demand = "Exponential(mean: 7.0)";
    let cases = [
        (
            small(demand, "    events: [Event(at_s: 1.9e10, server: \"rs1\", change: Weight(0))],"),
            "events[0].at_s",
            "1e7 s",
            6,
        ),
        (small("Exponential(mean: 1e12)", ""), "clients[0].demand_ms.mean", "1e10 ms", 5),
        (small("Constant(1e308)", ""), "clients[0].demand_ms.0", "1e10 ms", 5),
        (
            small(demand, "").replace("demand_ms", "access_latency_ms: 1e300, demand_ms"),
            "clients[0].access_latency_ms",
            "1e10 ms",
            5,
        ),
        (small(demand, "").replace("rate: 20.0", "rate: 1e9"), "clients[0].arrival.rate", "connections/s", 5),
        (
            small(demand, "").replace("sample_interval_s: 1.0", "sample_interval_s: 1e-6"),
            "sample_interval_s",
            "at most 1e6",
            3,
        ),
        (small(demand, "    replications: 100000000,"), "replications", "1e4 replications", 6),
        (
            small(demand, "    servers: [Server(name: \"rs\", address: \"10.1.0.1\", count: 10000000)],"),
            "servers[0].count",
            "1e6 servers",
            6,
        ),
        (small("LogNormal(mean: 1e11, scv: 1e300)", ""), "clients[0].demand_ms.mean", "1e10 ms", 5),
        (small(demand, "    network: (syn_rto_s: 1e8),"), "network.syn_rto_s", "1e7 s", 6),
        (
            small(demand, "    events: [Event(at_s: 1.0, server: \"rs1\", change: Background(4000000000))],"),
            "events[0].change.0",
            "tasks",
            6,
        ),
    ];
    for (text, path, words, line) in &cases {
        assert_at(&err(text, &[]), path, words, *line);
    }
    // Infinity is not a number a scenario may hold either.
    assert_at(&err(&small("Constant(inf)", ""), &[]), "clients[0].demand_ms.0", "1e10 ms", 5);
    // From --set, the error points into the argument.
    let e = err(&small(demand, ""), &["clients[0].arrival.rate=1e9"]);
    assert!(
        matches!(&e.location, Some(l) if l.source == Source::Set("clients[0].arrival.rate=1e9".into())),
        "{e}"
    );
    // Below the bounds, the same fields load.
    ok(&small("Exponential(mean: 1e9)", "    replications: 2,"));
}

#[test]
fn a_director_up_without_a_down_is_refused_at_its_line() {
    let text = |events: &str| {
        format!(
            "Scenario(\n    duration_s: 10.0,\n    topology: \"ha-pair\",\n    \
             clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],\n    events: [\n{events}    ],\n)\n"
        )
    };
    let up = "        Event(at_s: 5.0, director: \"lb2\", change: DirectorUp),\n";
    let down = "        Event(at_s: 3.0, director: \"lb2\", change: DirectorDown),\n";
    assert_at(&err(&text(up), &[]), "events[0].change", "it is up: it must go down first", 6);
    // Down then up is fine; down twice is not (in time order, whatever the list order).
    ok(&text(&format!("{up}{down}")));
    let twice = format!("{down}{}", down.replace("3.0", "4.0"));
    assert_at(&err(&text(&twice), &[]), "events[1].change", "down already", 7);
    // The simulator's own check agrees (a configuration built without the format).
    let mut l = ok(&text(&format!("{up}{down}")));
    l.cluster.director_events.reverse();
    l.cluster.director_events[1].at = Duration::from_secs(1);
    let e = Simulation::new(l.cluster).err().expect("refused");
    assert!(e.to_string().contains("it must go down first"), "{e}");
}

/// A service whose only real server crashes, so that the health check puts the sorry
/// server in; then the director reboots.
const SORRY: &str = r#"Scenario(
    duration_s: 20.0,
    sample_interval_s: 1.0,
    directors: [Director(name: "lvs", address: "10.0.0.1", services: [Service(vip: "172.17.0.1", port: 80,
        real_servers: [RealServer(server: "rs", forwarding: DR)],
        check: Some((interval_s: 1.0, timeout_s: 0.5, fallback: (server: "sorry", forwarding: DR))))])],
    servers: [Server(name: "rs", address: "10.1.0.1"), Server(name: "sorry", address: "10.1.0.9")],
    clients: [Clients(arrival: Poisson(rate: 20.0), demand_ms: Exponential(mean: 7.0))],
    events: [
        Event(at_s: 2.0, server: "rs", change: Crash),
        Event(at_s: 8.0, director: "lvs", change: DirectorDown),
        Event(at_s: 9.0, director: "lvs", change: DirectorUp),
    ],
)"#;

#[test]
fn a_sorry_server_in_the_table_survives_a_director_reboot() {
    let l = ok(SORRY);
    let r = Simulation::new(l.cluster).expect("valid").run();
    assert!(r.simulated >= lvs_sched::Time::ZERO + Duration::from_secs(20), "{}", r.simulated);
    let sorry = &r.servers[1];
    assert!(sorry.connections > 0, "the sorry server served before the reboot: {sorry:?}");
    // Samples before the reboot read the sorry server's weight (1) in the old table;
    // samples after it read the fresh table, which has only the configured servers.
    let weight = |from_s: u64, to_s: u64| -> Vec<u32> {
        let range = from_s * 1_000_000_000..to_s * 1_000_000_000;
        r.series.iter().filter(|s| range.contains(&s.t.0)).map(|s| s.servers[1].weight).collect()
    };
    assert!(weight(5, 8).iter().all(|&w| w == 1), "{:?}", weight(5, 8));
    assert!(weight(10, 21).iter().all(|&w| w == 0) && !weight(10, 21).is_empty(), "{:?}", weight(10, 21));
    let ha = r.ha.expect("health checks are reported");
    assert_eq!(ha.checks.iter().map(|c| c.fallbacks).sum::<u64>(), 1, "{:?}", ha.checks);
}

#[test]
fn what_still_overflows_saturates_instead_of_panicking() {
    // Values a scenario cannot hold, put into the configuration directly: the run ends
    // (at its horizon at the latest) instead of panicking or looping at the end of time.
    let base = ok(&small(
        "Exponential(mean: 7.0)",
        "    events: [Event(at_s: 1.0, server: \"rs1\", change: Weight(0))],",
    ));
    let mut at_end = base.cluster.clone();
    at_end.actions[0].at = Duration(u64::MAX);
    let mut huge_demand = base.cluster.clone();
    huge_demand.populations[0].demand = Dist::Constant(1e300);
    let mut huge_latency = base.cluster.clone();
    huge_latency.populations[0].access_latency = Duration(u64::MAX - 1);
    for (name, cfg) in [("at_end", at_end), ("huge_demand", huge_demand), ("huge_latency", huge_latency)] {
        let r = Simulation::new(cfg).expect("valid").run();
        assert!(r.connections.offered > 0, "{name}: {:?}", r.connections);
        assert!(r.simulated <= sim_core::model::sim::HORIZON, "{name}: {}", r.simulated);
    }
    // A long tail the bounds let through: Pareto demand with a tiny shape.
    let tail = ok(&small("Pareto(shape: 0.05, scale: 1.0)", ""));
    let r = Simulation::new(tail.cluster).expect("valid").run();
    assert!(r.connections.offered > 100, "{:?}", r.connections);
}

#[test]
fn the_budget_names_the_figure_the_field_and_the_flag() {
    let l = ok(&small("Exponential(mean: 7.0)", "").replace("rate: 20.0", "rate: 1e6"));
    let tight = Budget { max_events: 1e8, max_memory: 1e12, parallel: 1 };
    let e = budget::check(&l, 1, "the run", &tight).expect_err("over the events budget");
    assert_at(&e, "clients[0].arrival.rate", "--max-events", 5);
    assert!(e.message.contains("1.00e8 events") && e.message.contains("e8 events"), "{e}");
    // Replications multiply the events.
    let l = ok(&small("Exponential(mean: 7.0)", ""));
    let one = budget::check(&l, 1, "the run", &tight).expect("within").events;
    let per_run = Budget { max_events: one * 9.5, ..tight };
    budget::check(&l, 9, "the run", &per_run).expect("nine runs fit");
    let e = budget::check(&l, 10, "the run", &per_run).expect_err("ten do not");
    assert!(e.message.contains("10 run(s)"), "{e}");
    // Memory: a big group of servers, named by its count.
    let farm = ok(&small(
        "Exponential(mean: 7.0)",
        "    servers: [Server(name: \"rs\", address: \"10.1.0.1\", gateway: \"lvs\", count: 5000)],",
    ));
    let small_mem = Budget { max_events: 1e12, max_memory: 64.0 * 1024.0 * 1024.0, parallel: 1 };
    let e = budget::check(&farm, 1, "the run", &small_mem).expect_err("over the memory budget");
    assert_at(&e, "servers[0].count", "--max-memory", 6);
    // Runs at once multiply the memory, up to the number of runs.
    let est = budget::estimate(&l).memory;
    let two = Budget { max_events: 1e12, max_memory: est * 2.5, parallel: 4 };
    budget::check(&l, 2, "the run", &two).expect("two at once fit");
    assert!(budget::check(&l, 3, "the run", &two).is_err());
}

#[test]
fn the_estimate_bounds_what_runs_simulate() {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let cases = [
        ("quickstart.ron", vec![]),
        ("ha/vrrp-failover.ron", vec!["replications=1", "duration_s=30", "warmup_s=1", "events=[]"]),
        ("heterogeneous.ron", vec!["duration_s=20", "warmup_s=1"]),
    ];
    for (file, sets) in cases {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let l = scenarios::load(&lib.join(file), &sets).unwrap_or_else(|e| panic!("{file}: {e}"));
        let est = budget::estimate(&l);
        let r = Simulation::new(l.cluster.clone()).expect("valid").run();
        assert!(
            (r.connections.offered as f64) <= est.connections,
            "{file}: {} > {}",
            r.connections.offered,
            est.connections
        );
        assert!(
            (r.engine_events as f64) <= est.events,
            "{file}: {} events > {}",
            r.engine_events,
            est.events
        );
        // Not absurdly loose either: within a factor 100 of what ran.
        assert!(
            est.events < 100.0 * r.engine_events as f64 + 1e5,
            "{file}: {} vs {}",
            est.events,
            r.engine_events
        );
    }
}

#[test]
fn a_hundred_thousand_servers_validate() {
    // Near-linear: before, a service naming a group scanned the servers for each of its
    // members (16,000 servers took 9 s in release). No time is asserted; a quadratic
    // build would take hours here.
    let text = small(
        "Exponential(mean: 7.0)",
        "    directors: [Director(name: \"lvs\", address: \"10.0.0.1\", services: [Service(vip: \"172.17.0.1\", port: 80, \
         scheduler: wlc, real_servers: [RealServer(server: \"rs\", forwarding: DR)])])],\n    \
         servers: [Server(name: \"rs\", address: \"10.1.0.1\", count: 100000)],",
    )
    .replace("    topology: \"tutorial-nat\",\n", "");
    let l = ok(&text);
    assert_eq!(l.cluster.servers.len(), 100_000);
    assert_eq!(l.cluster.directors[0].services[0].dests.len(), 100_000);
    assert_eq!(l.cluster.servers[99_999].name, "rs100000");
}

#[test]
fn a_sweep_of_too_many_points_is_refused_before_they_are_built() {
    let axis = |f: &str| {
        format!("Axis(field: \"{f}\", values: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])")
    };
    let axes: Vec<String> =
        ["seed", "warmup_s", "clients[0].access_latency_ms", "sample_interval_s", "duration_s"]
            .iter()
            .map(|f| axis(f))
            .collect();
    let l = ok(&small("Exponential(mean: 7.0)", &format!("    sweep: [{}],", axes.join(", "))));
    let e = l.sweep_points().expect_err("100,000 points");
    assert!(e.message.contains("100000 points") && e.message.contains("at most 10000"), "{e}");
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(6), "{e}");
}

#[test]
fn a_sweep_whose_points_would_not_fit_is_refused_before_they_are_built() {
    // SIMFUZZ's finding: 1000 points of 5000 servers each aborted validate out of memory.
    let text = small(
        "Exponential(mean: 7.0)",
        "    directors: [Director(name: \"lvs\", address: \"10.0.0.1\", services: [Service(vip: \"172.17.0.1\", port: 80, \
         real_servers: [RealServer(server: \"rs\", forwarding: DR)])])],\n    \
         servers: [Server(name: \"rs\", address: \"10.1.0.1\", count: 5000)],\n    \
         sweep: [Axis(field: \"seed\", values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])],",
    )
    .replace("    topology: \"tutorial-nat\",\n", "");
    let l = ok(&text);
    let b = Budget { max_events: 1e12, max_memory: 16.0 * 1024.0 * 1024.0, parallel: 1 };
    let e = l.sweep_points_within(Some(&b)).expect_err("10 x 5000 servers do not fit in 16 MiB");
    assert!(
        e.message.contains("10 points of 5000 real servers") && e.message.contains("--max-memory"),
        "{e}"
    );
    assert_eq!(e.location.as_ref().map(|l| l.line), Some(7), "{e}");
    let roomy = Budget { max_memory: 1024.0 * 1024.0 * 1024.0, ..b };
    assert_eq!(l.sweep_points_within(Some(&roomy)).expect("fits").len(), 10);
}

#[test]
fn server_detail_is_read_and_a_bad_value_is_refused_at_its_place() {
    use sim_core::model::ServerDetail;
    let detail = |v: &str| small("Exponential(mean: 7.0)", &format!("    server_detail: {v},"));
    assert_eq!(ok(&small("Exponential(mean: 7.0)", "")).cluster.server_detail, ServerDetail::Auto);
    for (v, want) in
        [("Auto", ServerDetail::Auto), ("Full", ServerDetail::Full), ("Aggregate", ServerDetail::Aggregate)]
    {
        assert_eq!(ok(&detail(v)).cluster.server_detail, want, "{v}");
    }
    let e = err(&detail("Everything"), &[]);
    assert!(e.message.contains("Aggregate"), "the error names the values: {e}");
    let at = e.location.as_ref().unwrap_or_else(|| panic!("no location: {e}"));
    assert_eq!((&at.source, at.line), (&Source::File("s.ron".into()), 6), "{e}");
    assert!(at.column > 1, "{e}");
    // The memory estimate follows: without full detail a server's histogram is compact.
    let farm = |v: &str| {
        let extra = format!(
            "    servers: [Server(name: \"rs\", address: \"10.1.0.1\", gateway: \"lvs\", count: 5000)],\n    server_detail: {v},"
        );
        budget::estimate(&ok(&small("Exponential(mean: 7.0)", &extra))).memory
    };
    let (full, aggregate) = (farm("Full"), farm("Aggregate"));
    // 200 connections: 200 serving servers' histograms, full against compact.
    assert!(full - aggregate > 64.0 * 1024.0 * 1024.0, "full {full}, aggregate {aggregate}");
}
