//! High availability in the scenario format: health checks and fail-over groups from the
//! topology (named or inline) into sim-core's configuration, server and director faults,
//! the TCP response timeout, `--set` and sweep axes over the new fields, and errors that
//! name the file, line, column and field. Nothing here runs a simulation.

use std::path::Path;

use lvs_sched::{Duration, Forwarding};
mod common;

use common::{err, ok};
use scenarios::{Error, Source};
use sim_core::ha::{CheckKind, Checker, Failover, HealthCheckConfig, OnFailure, Side, SyncConfig, SyncMode};
use sim_core::model::{DestConfig, DirectorChange, DirectorEvent, ServerChange, ServerEvent};

/// A scenario on a named topology with `extra` fields after `clients`.
fn on(topology: &str, extra: &str) -> String {
    format!(
        "Scenario(\n    duration_s: 10.0,\n    topology: \"{topology}\",\n    \
         clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],\n{extra}\n)\n"
    )
}

/// The error's message starts with `path:` and contains `words`; it is located in the
/// file at `line`.
fn assert_err(e: &Error, path: &str, words: &str, line: usize) {
    assert!(e.message.starts_with(&format!("{path}: ")), "{e}");
    assert!(e.message.contains(words), "{e}");
    let at = e.location.as_ref().unwrap_or_else(|| panic!("no location: {e}"));
    assert_eq!((&at.source, at.line), (&Source::File("s.ron".into()), line), "{e}");
    assert!(e.to_string().starts_with(&format!("s.ron:{line}:")), "{e}");
}

#[test]
fn the_vrrp_pair_builds_a_group_and_checks() {
    let l = ok(&on("ha-pair", ""), &[]);
    let c = &l.cluster;
    assert_eq!(c.directors.len(), 2);
    let ha = c.ha.as_ref().expect("a group");
    assert_eq!(ha.members, [0, 1]);
    let Failover::Vrrp(v) = &ha.failover else { panic!("{ha:?}") };
    assert_eq!((v.priorities.as_slice(), v.advert_int), (&[150, 100][..], Duration::from_secs(1)));
    assert_eq!(ha.sync, Some(SyncConfig::default()));
    // lb2 writes no services: it runs lb1's, with the same check.
    assert_eq!(c.directors[1].services.len(), 1);
    assert_eq!(c.directors[1].services[0].dests, c.directors[0].services[0].dests);
    let check = c.directors[1].services[0].check.expect("a check");
    assert_eq!(
        check,
        HealthCheckConfig {
            kind: CheckKind::Negotiate { demand: Duration::from_micros(500) },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            // HTTP_GET's own default, not TCP_CHECK's 1 s.
            delay_before_retry: Some(Duration::from_secs(3)),
            ..HealthCheckConfig::keepalived()
        }
    );
    assert_eq!(l.topology.ha, l.scenario.ha, "the named topology's `ha` is copied in");
}

#[test]
fn the_nat_pair_builds_heartbeat_a_fallback_and_shared_gateways() {
    let l = ok(&on("ha-nat-pair", ""), &[]);
    let c = &l.cluster;
    let ha = c.ha.as_ref().unwrap();
    let Failover::Heartbeat(h) = &ha.failover else { panic!("{ha:?}") };
    assert_eq!(
        (h.keepalive, h.deadtime, h.initdead),
        (Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(30))
    );
    assert_eq!(h.ping_nodes[0].side, Side::External);
    // The servers' gateway is lb1, and lb2 (a member) may NAT them too: sim-core agrees.
    assert!(c.servers.iter().all(|s| s.gateway == Some(0)));
    assert!(c.directors[1].services[0].dests.iter().all(|d| d.fwd == Forwarding::Masq));
    let sorry = c.servers.iter().position(|s| s.name == "sorry").unwrap();
    let check = c.directors[0].services[0].check.unwrap();
    assert_eq!(check.checker, Checker::Ldirectord);
    assert_eq!(check.on_failure, OnFailure::Quiesce);
    assert_eq!(check.fallback, Some(DestConfig::new(sorry, 80, Forwarding::Masq)));
    assert!(c.directors[0].services[0].dests.iter().all(|d| d.server != sorry), "only a fallback");
}

/// Two NAT directors written inline, `ha` as `GROUP`.
fn inline(group: &str, gateway: &str) -> String {
    format!(
        r#"Scenario(
    duration_s: 10.0,
    directors: [
        (name: "a", address: "10.1.0.1", services: [
            (vip: "10.0.0.1", port: 80, real_servers: [(server: "rs1"), (server: "rs2")],
             check: (checker: keepalived, interval_s: 3.0, quiescent: true)),
        ]),
        (name: "b", address: "10.1.0.2"),
        (name: "c", address: "10.1.0.3"),
    ],
    servers: [
        (name: "rs1", address: "10.1.0.11", gateway: "a"),
        (name: "rs2", address: "10.1.0.12", gateway: "{gateway}"),
    ],
    clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],
{group}
)
"#
    )
}

#[test]
fn inline_groups_written_directly_and_nat_through_any_member() {
    let l = ok(
        &inline(
            r#"    ha: (directors: ["a", "b"], failover: Vrrp(advert_int_s: 2.0), sync: (mode: peer_to_peer)),"#,
            "b",
        ),
        &[],
    );
    let ha = l.cluster.ha.as_ref().unwrap();
    assert_eq!(ha.members, [0, 1]);
    assert_eq!(ha.sync.map(|s| s.mode), Some(SyncMode::PeerToPeer));
    let check = l.cluster.directors[0].services[0].check.unwrap();
    assert_eq!((check.interval, check.on_failure), (Duration::from_secs(3), OnFailure::Quiesce));
    assert!(l.cluster.directors[2].services.is_empty(), "c is not a member");
    // rs2's gateway c is not in a's group: NAT from a cannot work.
    let e = err(&inline(r#"    ha: (directors: ["a", "b"], failover: Vrrp()),"#, "c"), &[]);
    assert_err(
        &e,
        "directors[0].services[0].real_servers[1].forwarding",
        "another director of its fail-over group",
        5,
    );
    // Without a group, only the gateway itself.
    let e = err(&inline("", "b"), &[]);
    assert_err(&e, "directors[0].services[0].real_servers[1].forwarding", "set `gateway: \"a\"`", 5);
}

#[test]
fn group_and_check_errors_name_the_field() {
    let g = |s: &str| inline(&format!("    ha: {s},"), "a");
    let line = 16;
    let cases = [
        (g(r#"(directors: ["a"], failover: Vrrp())"#), "ha.directors", "at least two directors"),
        (
            g(r#"(directors: ["a", "x"], failover: Vrrp())"#),
            "ha.directors[1]",
            "no director named \"x\" (directors are: a, b, c)",
        ),
        (
            g(r#"(directors: ["a", "b"], failover: Vrrp(priorities: [150, 100, 50]))"#),
            "ha.failover.priorities",
            "3 given for 2 directors",
        ),
        (
            g(r#"(directors: ["a", "b", "c"], failover: ActiveActive(blocks: 500))"#),
            "ha.failover.blocks",
            "power of two",
        ),
        (g(r#"(directors: ["a", "b"], failover: Vrrp(), sync: (version: 3))"#), "ha.sync.version", "0 or 1"),
        (
            g(r#"(directors: ["a", "b"], failover: Heartbeat(deadtime_s: 1.0))"#),
            "ha.failover.deadtime_s",
            "longer than keepalive_s",
        ),
    ];
    for (text, path, words) in cases {
        let e = err(&text, &[]);
        assert_err(&e, path, words, line);
    }
    let e = err(&inline("", "a").replace("interval_s: 3.0", "interval_s: 0.0"), &[]);
    assert_err(&e, "directors[0].services[0].check.interval_s", "must be > 0", 6);
    let e = err(&inline("", "a").replace("quiescent: true", "fallback: (server: \"rs9\")"), &[]);
    assert_err(&e, "directors[0].services[0].check.fallback.server", "no server named \"rs9\"", 6);
    // A misspelt field is refused where it is written.
    let e = err(&inline(r#"    ha: (directors: ["a", "b"], failover: Vrrp(advert_int: 1.0)),"#, "a"), &[]);
    assert!(e.to_string().starts_with("s.ron:16:") && e.message.contains("advert_int"), "{e}");
    let e = err(&inline("", "a").replace("interval_s: 3.0", "intervall_s: 3.0"), &[]);
    assert!(e.to_string().starts_with("s.ron:6:") && e.message.contains("interval_s"), "{e}");
}

#[test]
fn server_faults_become_server_events() {
    let text = on(
        "web-farm",
        "    events: [
        Event(at_s: 1.0, server: \"web1\", change: Crash),
        Event(at_s: 2.0, server: \"web2\", change: Hang),
        Event(at_s: 3.0, server: \"web1\", change: Recover),
        Event(at_s: 4.0, server: \"web2\", change: Recover),
        Event(at_s: 5.0, server: \"web\", change: Slow(0.25)),
        Event(at_s: 6.0, server: \"web3\", change: Weight(0)),
    ],",
    );
    // A server's faults and recoveries alternate (a server with a fault must recover
    // before the next one), so the group's slow-down comes after both recoveries.
    let l = ok(&text, &[]);
    let ev = |at: u64, server: usize, change| ServerEvent { at: Duration::from_secs(at), server, change };
    let mut want = vec![
        ev(1, 0, ServerChange::Crash),
        ev(2, 1, ServerChange::Hang),
        ev(3, 0, ServerChange::Recover),
        ev(4, 1, ServerChange::Recover),
    ];
    want.extend((0..4).map(|k| ev(5, k, ServerChange::Slow(250))));
    assert_eq!(l.cluster.server_events, want);
    assert_eq!(l.cluster.actions.len(), 2, "the weight change, in both services");
    assert!(l.cluster.director_events.is_empty());
}

#[test]
fn director_faults_become_director_events() {
    let text = on(
        "ha-pair",
        "    events: [
        Event(at_s: 1.0, director: \"lb1\", change: DirectorDown),
        Event(at_s: 2.0, director: \"lb1\", change: DirectorUp),
        Event(at_s: 3.0, director: \"lb2\", change: LinkDown(External)),
        Event(at_s: 4.0, director: \"lb2\", change: LinkUp(Internal)),
    ],",
    );
    let l = ok(&text, &[]);
    let ev =
        |at: u64, director: usize, change| DirectorEvent { at: Duration::from_secs(at), director, change };
    assert_eq!(
        l.cluster.director_events,
        [
            ev(1, 0, DirectorChange::Down),
            ev(2, 0, DirectorChange::Up),
            ev(3, 1, DirectorChange::Link(Side::External, false)),
            ev(4, 1, DirectorChange::Link(Side::Internal, true)),
        ]
    );
    assert!(l.cluster.server_events.is_empty() && l.cluster.actions.is_empty());
}

#[test]
fn fault_events_are_checked() {
    let one = |event: &str| on("ha-pair", &format!("    events: [\n        {event},\n    ],"));
    let line = 6;
    let cases = [
        (
            r#"Event(at_s: 1.0, server: "web1", director: "lb1", change: Crash)"#,
            "events[0].director",
            "a fault happens on the real server itself",
        ),
        (
            r#"Event(at_s: 1.0, server: "web1", service: 0, change: Hang)"#,
            "events[0].service",
            "no `service`",
        ),
        (r#"Event(at_s: 1.0, server: "web1", change: Slow(1.0))"#, "events[0].change", "Recover"),
        (
            r#"Event(at_s: 1.0, server: "web1", change: Slow(0.0))"#,
            "events[0].change",
            "between 0.001 and 0.999",
        ),
        (r#"Event(at_s: 1.0, server: "web1", change: Slow(-2.0))"#, "events[0].change", "Slow(-2)"),
        (r#"Event(at_s: 1.0, change: Crash)"#, "events[0].server", "`Crash` changes a real server"),
        (r#"Event(at_s: 1.0, change: Weight(3))"#, "events[0].server", "`Weight` changes a real server"),
        (
            r#"Event(at_s: 1.0, server: "web9", change: Recover)"#,
            "events[0].server",
            "no real server named \"web9\"",
        ),
        (
            r#"Event(at_s: 1.0, server: "web1", director: "lb1", change: DirectorDown)"#,
            "events[0].server",
            "happens to a director",
        ),
        (
            r#"Event(at_s: 1.0, director: "lb1", service: 0, change: DirectorUp)"#,
            "events[0].service",
            "no `service`",
        ),
        (r#"Event(at_s: 1.0, change: LinkDown(External))"#, "events[0].director", "needs `director`"),
        (
            r#"Event(at_s: 1.0, director: "lb3", change: LinkUp(Internal))"#,
            "events[0].director",
            "no director named \"lb3\" (directors are: lb1, lb2)",
        ),
    ];
    for (event, path, words) in cases {
        let e = err(&one(event), &[]);
        assert_err(&e, path, words, line);
    }
    let e = err(&one("Event(at_s: 1.0, director: \"lb1\", change: LinkDown(Sideways))"), &[]);
    assert!(e.to_string().starts_with("s.ron:6:") && e.message.contains("Sideways"), "{e}");
}

#[test]
fn a_tcp_response_timeout() {
    let text = on("tutorial-nat", "").replace(
        "demand_ms: Constant(5.0))",
        "demand_ms: Constant(5.0), transport: TCP(response_timeout_s: 2.5))",
    );
    let l = ok(&text, &[]);
    assert_eq!(l.cluster.populations[0].response_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(ok(&on("tutorial-nat", ""), &[]).cluster.populations[0].response_timeout, None);
    let e = err(&text.replace("2.5", "0.0"), &[]);
    assert_err(&e, "clients[0].transport.response_timeout_s", "must be > 0", 4);
    let l = ok(&on("tutorial-nat", ""), &["clients[0].transport=TCP(response_timeout_s: 30.0)"]);
    assert_eq!(l.cluster.populations[0].response_timeout, Some(Duration::from_secs(30)));
}

#[test]
fn set_reaches_the_new_fields() {
    let text = on("ha-pair", "");
    let l = ok(&text, &["ha.sync.mode=peer_to_peer", "ha.failover.advert_int_s=3.0", "ha.latency_ms=0.5"]);
    let ha = l.cluster.ha.unwrap();
    assert_eq!(ha.sync.unwrap().mode, SyncMode::PeerToPeer);
    let Failover::Vrrp(v) = &ha.failover else { panic!() };
    assert_eq!(v.advert_int, Duration::from_secs(3));
    assert_eq!(ha.latency, Duration::from_micros(500));
    let l = ok(&text, &["ha.failover=Heartbeat(deadtime_s: 5.0, warntime_s: 3.0)", "ha.sync=None"]);
    let ha = l.cluster.ha.unwrap();
    assert!(matches!(&ha.failover, Failover::Heartbeat(h) if h.deadtime == Duration::from_secs(5)));
    assert_eq!(ha.sync, None);
    let l = ok(&text, &["directors[0].services[0].check.retries=4"]);
    assert_eq!(l.cluster.directors[1].services[0].check.unwrap().retries, 4, "lb2 runs lb1's services");
    let l = ok(&text, &["ha=None"]);
    assert!(l.cluster.ha.is_none());
    // A bad value points into the argument.
    let e = err(&text, &["ha.directors=[\"lb1\", \"lb7\"]"]);
    assert!(matches!(e.location.as_ref().map(|l| &l.source), Some(Source::Set(_))), "{e}");
    assert!(e.message.starts_with("ha.directors[1]: no director named \"lb7\""), "{e}");
    // A check added to a topology without one.
    let l = ok(&on("tutorial-dr", ""), &["directors[0].services[0].check=(checker: keepalived)"]);
    assert_eq!(l.cluster.directors[0].services[0].check, Some(HealthCheckConfig::keepalived()));
}

#[test]
fn sweeps_over_sync_and_the_advert_interval() {
    let text = on(
        "ha-pair",
        "    sweep: [
        Axis(field: \"ha.sync\", values: [None, Sync(mode: peer_to_peer)]),
        Axis(field: \"ha.failover.advert_int_s\", values: [1.0, 2.0, 3.0]),
    ],",
    );
    let points = ok(&text, &[]).sweep_points().expect("points");
    assert_eq!(points.len(), 6);
    for (values, l) in &points {
        let ha = l.cluster.ha.as_ref().unwrap();
        assert_eq!(ha.sync.is_some(), values[0] != "None", "{values:?}");
        let Failover::Vrrp(v) = &ha.failover else { panic!() };
        assert_eq!(v.advert_int.as_secs_f64(), values[1].parse::<f64>().unwrap(), "{values:?}");
    }
    // Fail-over by heartbeat or VRRP.
    let text = on("ha-nat-pair", "    sweep: [Axis(field: \"ha.failover\", values: [Heartbeat(), Vrrp()])],");
    let points = ok(&text, &[]).sweep_points().expect("points");
    assert!(matches!(points[1].1.cluster.ha.as_ref().unwrap().failover, Failover::Vrrp(_)));
    // An invalid point names its value and where it is written.
    let text = on("ha-pair", "    sweep: [Axis(field: \"ha.failover.advert_int_s\", values: [1.0, 0.5])],");
    let e = ok(&text, &[]).sweep_points().unwrap_err();
    assert!(e.message.contains("ha.failover.advert_int_s=0.5") && e.message.contains("whole seconds"), "{e}");
    assert_eq!(e.location.map(|l| l.line), Some(5));
}

#[test]
fn every_library_scenario_and_topology_loads_and_exports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let mut stack = vec![dir];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ron") {
                let l = scenarios::load(&p, &[]).unwrap_or_else(|e| panic!("{e}"));
                for point in l.sweep_points().unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
                    point.1.cluster.validate().unwrap();
                }
                assert!(
                    !topologies::export::files(&l.topology, topologies::export::Target::default()).is_empty()
                );
                n += 1;
            }
        }
    }
    assert!(n >= 10, "only {n} scenarios");
    for t in topologies::NAMED {
        let l = ok(&on(t.name, ""), &[]);
        l.cluster.validate().unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let files = topologies::export::files(&l.topology, topologies::export::Target::default());
        assert!(files.iter().any(|(p, _)| p.starts_with("ipvsadm") && p.ends_with(".sh")), "{}", t.name);
    }
}

#[test]
fn a_fault_on_a_server_that_has_one_names_its_event_line() {
    let text = on(
        "web-farm",
        "    events: [
        Event(at_s: 1.0, server: \"web1\", change: Crash),
        Event(at_s: 3.0, server: \"web1\", change: Recover),
        Event(at_s: 2.0, server: \"web\", change: Slow(0.5)),
    ],",
    );
    // In time order web1 crashes at 1 s and slows down at 2 s, before its recovery: the
    // third event (line 8) is at fault, not the file's first line.
    let e = err(&text, &[]);
    assert_err(&e, "events[2].change", "\"web1\" has a fault already: it must recover first", 8);
    let e = err(&on("web-farm", "    events: [Event(at_s: 1.0, server: \"web2\", change: Recover)],"), &[]);
    assert_err(&e, "events[0].change", "\"web2\" recovers, but it has no fault", 5);
}
