//! An ECMP director tier, against hand-computed expectations: which connections a
//! director's death or withdrawal breaks, and why, under wlc and mh, with and without
//! sloppy_tcp; the router's shares; resilient groups; mh additions.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn director(name: &str, sched: SchedulerKind, sloppy: bool, fwd: Forwarding) -> DirectorConfig {
    let dests = (0..4).map(|i| DestConfig::new(i, 80, fwd)).collect();
    let mut d = DirectorConfig::new(
        name,
        "lan",
        vec![ServiceConfig::new(
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            sched,
            dests,
        )],
    );
    d.sysctls.sloppy_tcp = sloppy;
    d
}

/// `n` DR directors in an ECMP tier in front of four real servers. 100 sessions a second
/// for 2 s (199 in all: at 10 ms, 20 ms, ...), each of 10 requests 1 s apart: every one is open from its
/// arrival to past 9 s, so every session whose director changes later sends a segment
/// to its new director. Nothing is lost on the way.
fn tier(n: usize, sched: SchedulerKind, sloppy: bool, selection: NexthopSelection) -> ClusterConfig {
    let servers = (0..4)
        .map(|i| {
            ServerConfig::new(
                format!("rs{i}"),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11 + i as u8)),
                CpuConfig { cores: 4, speed: 1.0, max_in_service: None, backlog: None },
            )
        })
        .collect();
    ClusterConfig {
        data_rto: Duration::from_millis(200),
        directors: (1..=n)
            .map(|i| director(&format!("lb{i}"), sched, sloppy, Forwarding::DirectRouting))
            .collect(),
        servers,
        ecmp: Some(EcmpConfig {
            members: (0..n).collect(),
            standby: Vec::new(),
            policy: HashPolicy::L3L4,
            selection,
            detection: Duration::from_millis(900),
        }),
        populations: vec![PopulationConfig {
            access_latency: Duration::from_millis(1),
            transport: Transport::Tcp { requests: Dist::Constant(10.0), think_time: Dist::Constant(1.0) },
            request_bytes: Dist::Constant(300.0),
            response_bytes: Dist::Constant(2000.0),
            demand: Dist::Constant(0.001),
            clients: 5000,
            ..PopulationConfig::new("web", ArrivalProcess::Constant { rate: 100.0 }, VIP, 80)
        }],
        ..ClusterConfig::new(11, Duration::from_secs(2))
    }
}

fn event(s: f64, director: usize, change: DirectorChange) -> DirectorEvent {
    DirectorEvent { at: Duration((s * 1e9) as u64), director, change }
}

fn run(mut cfg: ClusterConfig, events: Vec<DirectorEvent>) -> EcmpReport {
    cfg.director_events = events;
    let r = Simulation::new(cfg).expect("valid").run();
    assert_eq!(r.connections.offered, 199, "arrivals at 10 ms, 20 ms, ..., 1.99 s");
    r.ecmp.expect("an ECMP report")
}

/// Two directors, hash-threshold: when lb2 dies (at 3 s, noticed at 3.9 s) lb1 takes the
/// whole hash and keeps its own half; exactly the sessions lb2 scheduled move. Without
/// sloppy_tcp lb1 resets each; with it mh picks the same real server (the same four
/// servers on both directors) and each goes on.
#[test]
fn a_dead_directors_sessions_are_reset_without_sloppy_tcp_and_survive_with_mh() {
    let down = || vec![event(3.0, 1, DirectorChange::Down)];
    for sched in [SchedulerKind::Wlc, SchedulerKind::Mh] {
        let e = run(tier(2, sched, false, NexthopSelection::HashThreshold), down());
        let on_lb2 = e.scheduled_by_director[1];
        assert_eq!(e.scheduled_by_director[0] + on_lb2, 199, "{sched:?}");
        assert!((70..=130).contains(&on_lb2), "about half: {on_lb2}");
        assert_eq!((e.reset_by_director, e.reset_by_server, e.survived_by_rescheduling), (on_lb2, 0, 0));
        assert_eq!(e.changes.len(), 1);
        assert_eq!((e.changes[0].director.as_str(), e.changes[0].what.as_str()), ("lb2", "dead (detected)"));
        assert_eq!(e.changes[0].at, lvs_sched::Time::ZERO + Duration::from_millis(3900));
        assert_eq!(e.changes[0].moved_share, 0.5);
    }
    let e = run(tier(2, SchedulerKind::Mh, true, NexthopSelection::HashThreshold), down());
    let on_lb2 = e.scheduled_by_director[1];
    assert_eq!((e.reset_by_director, e.reset_by_server, e.survived_by_rescheduling), (0, 0, on_lb2));
}

/// wlc with sloppy_tcp: lb1 schedules each moved session by its own counts, so some land
/// on their own server by chance and the rest are reset by the real server they reach.
#[test]
fn sloppy_tcp_under_wlc_sends_most_moved_sessions_to_a_server_that_resets_them() {
    let e = run(
        tier(2, SchedulerKind::Wlc, true, NexthopSelection::HashThreshold),
        vec![event(3.0, 1, DirectorChange::Down)],
    );
    let on_lb2 = e.scheduled_by_director[1];
    assert_eq!(e.reset_by_director, 0);
    assert_eq!(
        e.reset_by_server + e.survived_by_rescheduling,
        on_lb2,
        "every moved session is one or the other"
    );
    assert!(e.reset_by_server > e.survived_by_rescheduling, "{e:?}");
}

/// A graceful withdrawal moves flows at once (no detection time, nothing lost), and the
/// director's return moves them back: with a resilient group of 4 directors, each change
/// moves a quarter of the hash, and only the sessions of lb3 (then of the buckets given
/// back) move.
#[test]
fn resilient_groups_move_only_the_withdrawn_directors_sessions() {
    let cfg = tier(4, SchedulerKind::Mh, false, NexthopSelection::Resilient { buckets: 64 });
    let e = run(cfg, vec![event(3.0, 2, DirectorChange::Withdraw)]);
    let on_lb3 = e.scheduled_by_director[2];
    assert_eq!(e.changes[0].moved_share, 0.25);
    assert_eq!(e.changes[0].at, lvs_sched::Time::ZERO + Duration::from_secs(3), "at once");
    assert_eq!((e.reset_by_director, e.lost_at_dead_director), (on_lb3, 0));
    // Hash-threshold 4 -> 3 when the second dies moves a third of the hash, more than
    // the dead one's share.
    let cfg = tier(4, SchedulerKind::Mh, false, NexthopSelection::HashThreshold);
    let e = run(cfg, vec![event(3.0, 1, DirectorChange::Withdraw)]);
    assert!((e.changes[0].moved_share - 1.0 / 3.0).abs() < 1e-9);
    assert!(e.reset_by_director > e.scheduled_by_director[1], "survivors' sessions move too: {e:?}");
}

/// A director whose death the router never notices in time: with a detection time
/// longer than TCP's retries, its sessions give up (lost at a dead director).
#[test]
fn sessions_hashed_to_an_unnoticed_dead_director_are_lost_there() {
    let mut cfg = tier(2, SchedulerKind::Mh, false, NexthopSelection::HashThreshold);
    cfg.max_retries = 2;
    cfg.ecmp.as_mut().unwrap().detection = Duration::from_secs(60);
    let e = run(cfg, vec![event(3.0, 1, DirectorChange::Down)]);
    assert_eq!(e.lost_at_dead_director, e.scheduled_by_director[1]);
    assert_eq!(e.reset_by_director, 0);
}

#[test]
fn the_configuration_refuses_nat_and_foreign_withdrawals() {
    let mut cfg = tier(2, SchedulerKind::Mh, false, NexthopSelection::HashThreshold);
    cfg.directors[1] = director("lb2", SchedulerKind::Mh, false, Forwarding::Masq);
    for s in &mut cfg.servers {
        s.gateway = Some(1);
    }
    let e = Simulation::new(cfg).err().expect("NAT refused").to_string();
    assert!(e.contains("by NAT"), "{e}");
    let mut cfg = tier(2, SchedulerKind::Mh, false, NexthopSelection::HashThreshold);
    cfg.directors.push(director("lone", SchedulerKind::Mh, false, Forwarding::DirectRouting));
    cfg.director_events = vec![event(1.0, 2, DirectorChange::Withdraw)];
    let e = Simulation::new(cfg).err().expect("withdrawal refused").to_string();
    assert!(e.contains("in no ECMP tier"), "{e}");
    let mut cfg = tier(2, SchedulerKind::Mh, false, NexthopSelection::Resilient { buckets: 1 });
    cfg.ecmp.as_mut().unwrap().standby = vec![0, 1];
    assert!(Simulation::new(cfg).is_err());
}
