//! An ECMP tier in the scenario format: the tier and its director sysctls into sim-core's
//! configuration, withdraw/announce events, `--set` over the new fields, and errors that
//! name the file, line, column and field. Nothing here runs a simulation.

use lvs_sched::Duration;
mod common;

use common::{err, ok};
use scenarios::{Error, Source};
use sim_core::model::{DirectorChange, HashPolicy, NexthopSelection};

/// Three DR directors (lb2, lb3 run lb1's services), a lone one, and `ecmp`/`events` lines.
fn scenario(ecmp: &str, events: &str) -> String {
    format!(
        r#"Scenario(
    duration_s: 10.0,
    directors: [
        Director(name: "lb1", address: "10.0.0.2", sloppy_tcp: true, conn_reuse_mode: 2,
            services: [Service(vip: "192.0.2.10", port: 80, scheduler: mh,
                               real_servers: [RealServer(server: "web", forwarding: DR)])]),
        Director(name: "lb2", address: "10.0.0.3"),
        Director(name: "lb3", address: "10.0.0.4"),
        Director(name: "lone", address: "10.0.0.9"),
    ],
    servers: [Server(name: "web", count: 3, address: "10.0.0.11")],
    clients: [Clients(arrival: Poisson(rate: 10.0), vip: "192.0.2.10", demand_ms: Constant(5.0))],
{ecmp}
{events}
)
"#
    )
}

fn at(e: &Error, path: &str, words: &str, line: usize) {
    assert!(e.message.starts_with(&format!("{path}: ")), "{e}");
    assert!(e.message.contains(words), "{e}");
    let l = e.location.as_ref().unwrap_or_else(|| panic!("no location: {e}"));
    assert_eq!((&l.source, l.line), (&Source::File("s.ron".into()), line), "{e}");
    assert!(l.column > 0, "{e}");
}

const TIER: &str = r#"    ecmp: Ecmp(directors: ["lb1", "lb2", "lb3"], hash_policy: L3L4, selection: Resilient, buckets: 64, detection_s: 0.3),"#;

#[test]
fn the_tier_and_its_sysctls_reach_the_simulator() {
    let l = ok(
        &scenario(TIER, r#"    events: [Event(at_s: 5.0, director: "lb2", change: DirectorWithdraw)],"#),
        &[],
    );
    let e = l.cluster.ecmp.expect("a tier");
    assert_eq!(e.members, vec![0, 1, 2]);
    assert_eq!((e.policy, e.selection), (HashPolicy::L3L4, NexthopSelection::Resilient { buckets: 64 }));
    assert_eq!(e.detection, Duration::from_millis(300));
    assert_eq!(l.cluster.director_events[0].change, DirectorChange::Withdraw);
    assert_eq!(l.cluster.director_events[0].director, 1);
    let s = l.cluster.directors[0].sysctls;
    assert!(s.sloppy_tcp && !s.sloppy_sctp && s.conn_reuse_mode == 2);
    assert_eq!(l.cluster.directors[1].sysctls.conn_reuse_mode, 1, "the kernel's default");
    assert_eq!(l.cluster.directors[2].services.len(), 1, "lb3 runs lb1's services");
    // Defaults: L3, hash-threshold, 0.9 s; `--set` reaches every field.
    let l =
        ok(&scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb2"]),"#, ""), &["directors[*].sloppy_tcp=true"]);
    let e = l.cluster.ecmp.unwrap();
    assert_eq!(
        (e.policy, e.selection, e.detection),
        (HashPolicy::L3, NexthopSelection::HashThreshold, Duration::from_millis(900))
    );
    assert!(l.cluster.directors.iter().all(|d| d.sysctls.sloppy_tcp));
}

#[test]
fn bad_tiers_are_refused_at_their_field() {
    let line = 13; // the `ecmp` line
    let e = err(&scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb7"]),"#, ""), &[]);
    at(&e, "ecmp.directors[1]", "no director named \"lb7\"", line);
    let e = err(&scenario(r#"    ecmp: Ecmp(directors: ["lb1"]),"#, ""), &[]);
    at(&e, "ecmp.directors", "two or more", line);
    let e = err(&scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb2", "lb1"]),"#, ""), &[]);
    at(&e, "ecmp.directors[2]", "listed twice", line);
    let e = err(
        &scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb2"], selection: Resilient, buckets: 1),"#, ""),
        &[],
    );
    at(&e, "ecmp.buckets", "one bucket per director", line);
    let e = err(&scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb2"], detection_s: -1.0),"#, ""), &[]);
    at(&e, "ecmp.detection_s", "0 to 3600", line);
    let e = err(&scenario(r#"    ecmp: Ecmp(directors: ["lb1", "lb2"], standby: ["lone"]),"#, ""), &[]);
    at(&e, "ecmp.standby[0]", "not in the tier", line);
    let e = err(&scenario(TIER, ""), &["directors[0].conn_reuse_mode=4"]);
    assert!(e.message.starts_with("directors[0].conn_reuse_mode: conn_reuse_mode is 0 to 3"), "{e}");
}

#[test]
fn nat_in_a_tier_and_foreign_withdrawals_are_refused() {
    let text = scenario(TIER, "").replace("forwarding: DR", "forwarding: NAT");
    let e = err(&text.replace(r#"address: "10.0.0.11")"#, r#"address: "10.0.0.11", gateway: "lb1")"#), &[]);
    assert!(e.message.contains("ECMP tier: NAT needs each reply"), "{e}");
    assert!(e.message.starts_with("directors[0].services[0].real_servers[0].forwarding: "), "{e}");
    let e = err(
        &scenario(TIER, r#"    events: [Event(at_s: 5.0, director: "lone", change: DirectorAnnounce)],"#),
        &[],
    );
    at(&e, "events[0].director", "is in no ECMP tier", 14);
}
