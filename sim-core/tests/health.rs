//! Health checks and real-server faults against hand-computed expectations: detection
//! times of keepalived- and ldirectord-style checkers, what a hung and a slow server look
//! like to connect and negotiate checks, quiescing against removal, the fallback server,
//! the connections a fault costs before and after its detection, response timeouts,
//! validation messages and determinism.
//!
//! Common set-up (see `cluster`): one DR director with a 100 µs internal link each way,
//! real servers of one core at speed 1, rr, a constant rate of single-request connections
//! (the k-th at k/rate s, k ≥ 1; rr gives the odd ones to rs1 and the even ones to rs0,
//! IPVS listing the last added first). Checks start one interval after time zero; each
//! next check starts an interval after the previous one ended (keepalived per real
//! server; ldirectord's round: rs0, then rs1, then the interval's sleep).

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind, Time};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::ha::{CheckKind, Checker, HealthCheckConfig, OnFailure};
use sim_core::link::ChannelConfig;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));
const MS: u64 = 1_000_000;

fn ms(t: u64) -> Time {
    Time(t * MS)
}

/// `n` real servers (`extra` more that are in no service, for fallbacks), rr over the
/// first `n`, `rate` connections a second for `secs` s (+1 ms, so that the last one at
/// `secs` arrives), 1 ms of demand each.
fn cluster(n: usize, extra: usize, rate: f64, secs: u64) -> ClusterConfig {
    let servers = (0..n + extra)
        .map(|i| ServerConfig {
            gateway: Some(0),
            ..ServerConfig::new(
                format!("rs{i}"),
                IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)),
                CpuConfig { cores: 1, speed: 1.0, max_in_service: None, backlog: None },
            )
        })
        .collect();
    let dests = (0..n).map(|i| DestConfig::new(i, 80, Forwarding::DirectRouting)).collect();
    let mut director = DirectorConfig::new(
        "lb",
        "lan",
        vec![ServiceConfig::new(
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            SchedulerKind::Rr,
            dests,
        )],
    );
    director.internal =
        DuplexLink::symmetric(ChannelConfig { latency: Duration::from_micros(100), ..ChannelConfig::IDEAL });
    ClusterConfig {
        directors: vec![director],
        servers,
        populations: vec![PopulationConfig {
            request_bytes: Dist::Constant(500.0),
            response_bytes: Dist::Constant(5000.0),
            demand: Dist::Constant(0.001),
            ..PopulationConfig::new("web", ArrivalProcess::Constant { rate }, VIP, 80)
        }],
        ..ClusterConfig::new(1, Duration::from_millis(secs * 1000 + 1))
    }
}

/// keepalived's timing as in the examples: every 2 s, 1 s timeout, 1 retry after 0.5 s.
fn keepalived(kind: CheckKind) -> HealthCheckConfig {
    HealthCheckConfig {
        kind,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        retries: 1,
        delay_before_retry: Some(Duration::from_millis(500)),
        ..HealthCheckConfig::keepalived()
    }
}

/// ldirectord's: every 2 s, 1 s timeout, `retries` + 1 failed checks to go down.
fn ldirectord(kind: CheckKind, retries: u32) -> HealthCheckConfig {
    HealthCheckConfig {
        kind,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        retries,
        ..HealthCheckConfig::ldirectord()
    }
}

fn negotiate(demand_ms: u64) -> CheckKind {
    CheckKind::Negotiate { demand: Duration::from_millis(demand_ms) }
}

fn event(at_ms: u64, server: usize, change: ServerChange) -> ServerEvent {
    ServerEvent { at: Duration::from_millis(at_ms), server, change }
}

fn run(cfg: ClusterConfig) -> RunReport {
    Simulation::new(cfg).expect("valid configuration").run()
}

fn ha(r: &RunReport) -> &HaReport {
    r.ha.as_ref().expect("a run with checks or faults reports them")
}

#[test]
fn keepalived_detects_a_crash_after_a_timeout_and_a_retry() {
    // rs0 crashes at 10.2 s. Its checks passed, each answered after a 0.2 ms round trip
    // and the next 2 s after that answer: 2, 4.0002, 6.0004, 8.0006, 10.0008 s; the
    // 12.001 s check's SYN is lost: it fails at 13.001 s; the retry starts 0.5 s later
    // (13.501 s) and fails at 14.501 s: beyond `retry 1`: removed at 14.501 s.
    let mut c = cluster(2, 0, 10.0, 30);
    c.max_retries = 5;
    c.directors[0].services[0].check = Some(keepalived(CheckKind::Connect));
    c.server_events.push(event(10_200, 0, ServerChange::Crash));
    let r = run(c);
    let h = ha(&r);
    assert_eq!(h.faults.len(), 1);
    let f = &h.faults[0];
    assert_eq!((f.server.as_str(), f.kind.as_str(), f.at), ("rs0", "crash", ms(10_200)));
    assert_eq!((f.detected_at, f.recovered_at, f.restored_at), (Some(Time(14_501_000_000)), None, None));
    // Checks: rs1 at 2 s + k × 2.0002 s up to 28.0026 s (14; the next, at 30.0028 s, is
    // after the end, 30.001 s); rs0 at 2 ... 12.001 s, 13.501 s, then, DOWN, each
    // max(delay_before_retry, delay_loop) = 2 s after the last failure: 16.501, 19.501,
    // 22.501, 25.501, 28.501 s (6 + 1 + 5 = 12), failed but for the first 5 (7).
    assert_eq!(h.checks, [CheckStats { checks: 26, failed: 7, downs: 1, ups: 0, fallbacks: 0 }]);
    // No new connection reaches rs0 after 14.501 s: it is out of the table.
    let ipvs = &r.directors[0].ipvs;
    let svc = ipvs.services().next().expect("one service");
    assert_eq!(svc.scheduler().num_dests(), 1);
    // Connections rs0 got while crashed and undetected: the even k from 102 (the 10.2 s
    // arrival comes after the crash, queued first) to 144 (14.4 s): 22. Their SYNs are
    // lost, sent again 1, 3, 7, 15 and 31 s after the first, and given up with the 5th
    // retransmission, after the detection. (The director drops the retransmissions after
    // 14.501 s; their entries, last refreshed by then, expire 60 s later, after the last
    // one: none is scheduled afresh.)
    assert_eq!(r.connections.dropped, 22);
    assert_eq!((f.failed_before_detection, f.failed_after_detection), (0, 22));
    assert_eq!(r.connections.completed + 22, r.connections.offered);
}

#[test]
fn ldirectord_detects_a_crash_after_retries_plus_one_failed_intervals() {
    // failurecount 3 (retries 2). A round checks rs0 then rs1 (0.2 ms each) and sleeps
    // 2 s: rounds at 2 s + k × 2.0004 s while rs0 answers, up to 12.002 s. Then rs0's
    // check times out 1 s later: rounds at 12.002 (rs0 fails at 13.002 s), 15.0022
    // (16.0022 s) and 18.0024 s: quiesced at 19.0024 s. Weight in the series (samples
    // every second): 1 up to 19 s, 0 from 20 s on.
    let mut c = cluster(2, 0, 10.0, 30);
    c.sample_interval = Some(Duration::from_secs(1));
    c.directors[0].services[0].check = Some(ldirectord(CheckKind::Connect, 2));
    c.server_events.push(event(10_200, 0, ServerChange::Crash));
    let r = run(c);
    let f = &ha(&r).faults[0];
    assert_eq!(f.detected_at, Some(Time(19_002_400_000)));
    for s in &r.series {
        let w = s.servers[0].weight;
        if s.t <= ms(19_000) {
            assert_eq!(w, 1, "at {}", s.t);
        } else if s.t >= ms(20_000) {
            assert_eq!(w, 0, "at {}", s.t);
        }
    }
    // Rounds 21.0026, 24.0028 and 27.003 s follow (the next, at 30.0032 s, is after the
    // end): 11 rounds of both servers, 22 checks; rs0's from the 6th round on failed (6).
    assert_eq!(ha(&r).checks[0], CheckStats { checks: 22, failed: 6, downs: 1, ups: 0, fallbacks: 0 });
}

#[test]
fn an_ldirectord_round_checks_the_next_server_after_a_timed_out_one() {
    // Three servers, rs0 and rs1 crash at 10.2 s. A round checks rs0, rs1, rs2 (0.2 ms
    // each) and sleeps 2 s: rounds at 2 s + k × 2.0006 s, the 6th at 12.003 s. rs0's check
    // times out at 13.003 s; only then is rs1 checked, and its check times out at
    // 14.003 s: ldirectord finds the second crash a timeout after the first.
    let mut c = cluster(3, 0, 0.1, 30);
    c.directors[0].services[0].check = Some(ldirectord(CheckKind::Connect, 0));
    c.server_events.push(event(10_200, 0, ServerChange::Crash));
    c.server_events.push(event(10_200, 1, ServerChange::Crash));
    let r = run(c);
    let h = ha(&r);
    assert_eq!(h.faults[0].detected_at, Some(Time(13_003_000_000)));
    assert_eq!(h.faults[1].detected_at, Some(Time(14_003_000_000)));
    // keepalived checks each server on its own: both are found 1 s after their checks.
    let mut c = cluster(3, 0, 0.1, 30);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { retries: 0, ..keepalived(CheckKind::Connect) });
    c.server_events.push(event(10_200, 0, ServerChange::Crash));
    c.server_events.push(event(10_200, 1, ServerChange::Crash));
    let r = run(c);
    let h = ha(&r);
    assert_eq!(h.faults[0].detected_at, h.faults[1].detected_at);
    assert_eq!(h.faults[0].detected_at, Some(Time(13_001_000_000)));
}

/// rs0 hangs from 10.2 s to 20.2 s under a check of `kind` (ldirectord, first failure).
fn hung(kind: CheckKind) -> RunReport {
    let mut c = cluster(2, 0, 10.0, 30);
    c.directors[0].services[0].check = Some(ldirectord(kind, 0));
    c.server_events.push(event(10_200, 0, ServerChange::Hang));
    c.server_events.push(event(20_200, 0, ServerChange::Recover));
    run(c)
}

#[test]
fn a_hung_server_passes_connect_checks_and_fails_negotiate_checks() {
    // Its kernel answers SYNs: never detected by connect checks, and its stuck requests
    // (no response timeout) complete after it recovers.
    let r = hung(CheckKind::Connect);
    let f = &ha(&r).faults[0];
    assert_eq!((f.kind.as_str(), f.detected_at, f.recovered_at), ("hang", None, Some(ms(20_200))));
    assert_eq!(ha(&r).checks[0].failed, 0);
    assert_eq!(r.connections.completed, r.connections.offered);

    // A negotiate check's page is a 1 ms job: a check takes ~1.4 ms (SYN, SYN-ACK,
    // request, 100 µs each, the page, the answer), more when the page shares the core
    // with a request; a round (rs0, rs1) and its 2 s sleep about 2.003 s. The 6th round
    // starts at 12.0149 s: rs0's request is stuck, the check fails at 13.0149 s:
    // quiesced. The rounds at about 15.016 and 18.018 s fail too (3). At the recovery
    // (20.2 s) rs0 holds 18 jobs of 1 ms: 15 requests (even k = 102 ... 130, until it was
    // quiesced) and 3 pages, done by 20.218 s; the next round's check (about 21.019 s)
    // answers at 21.0205 s: up again. 13 rounds in 30 s: 26 checks.
    let r = hung(negotiate(1));
    let h = ha(&r);
    let f = &h.faults[0];
    assert_eq!(f.detected_at, Some(Time(13_014_900_000)));
    assert_eq!(f.restored_at, Some(Time(21_020_500_000)));
    assert_eq!(h.checks[0], CheckStats { checks: 26, failed: 3, downs: 1, ups: 1, fallbacks: 0 });
    // Quiesced, not removed: the stuck connections complete after the recovery.
    assert_eq!(r.connections.completed, r.connections.offered);
    assert_eq!((f.failed_before_detection, f.failed_after_detection), (0, 0));
}

/// rs0 runs at 1/20 of its speed from 10.2 s under negotiate checks of `demand_ms`.
fn slow(demand_ms: u64, on_failure: OnFailure, requests: f64) -> RunReport {
    let mut c = cluster(2, 0, 10.0, 30);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { on_failure, ..ldirectord(negotiate(demand_ms), 0) });
    c.server_events.push(event(10_200, 0, ServerChange::Slow(50)));
    c.populations[0].transport =
        Transport::Tcp { requests: Dist::Constant(requests), think_time: Dist::Constant(1.0) };
    run(c)
}

#[test]
fn a_slow_server_fails_a_negotiate_check_whose_page_takes_longer_than_the_timeout() {
    // A round checks two 100 ms pages (~0.2 s) and sleeps 2 s: rounds about 2.2 s apart,
    // the 5th at 10.8041 s, after the slow-down. A 100 ms page at 1/20 of the speed takes
    // 2 s (more with the requests sharing the core) > 1 s: the check fails at 11.8041 s.
    let r = slow(100, OnFailure::Quiesce, 1.0);
    let f = &ha(&r).faults[0];
    assert_eq!((f.kind.as_str(), f.detected_at), ("slow", Some(Time(11_804_100_000))));
    // A 10 ms page takes 0.2 s (plus a share of a 20 ms request at most): it passes.
    let r = slow(10, OnFailure::Quiesce, 1.0);
    assert_eq!(ha(&r).faults[0].detected_at, None);
    assert_eq!(ha(&r).checks[0].failed, 0);
}

#[test]
fn quiescing_lets_established_connections_finish_where_removal_drops_them() {
    // Connections of 3 requests 1 s apart; rs0 is slow from 10.2 s (a request takes
    // 20-40 ms) and found down at 11.8041 s. Open on rs0 then with a request still to
    // send: its arrivals (even k) at 9.8 ... 11.8 s (the one at 9.8 s sends its second
    // request at 10.801 s, slow, and its third at about 11.83 s; the one at 9.6 s its
    // third at about 11.63 s, before): 11.
    let q = slow(100, OnFailure::Quiesce, 3.0);
    let k = q.connections;
    assert_eq!((k.completed, k.dropped, k.refused), (k.offered, 0, 0), "{k:?}");
    // Removed: their next requests are dropped by IPVS (no real server) until TCP gives
    // up, after the detection.
    let r = slow(100, OnFailure::Remove, 3.0);
    let k = r.connections;
    assert_eq!((k.dropped, k.refused), (11, 0), "{k:?}");
    assert_eq!(k.completed + 11, k.offered);
    let f = &ha(&r).faults[0];
    assert_eq!((f.failed_before_detection, f.failed_after_detection), (0, 11));
}

#[test]
fn the_fallback_server_takes_the_connections_while_every_real_server_is_down() {
    // rs0 and rs1 crash at 10.2 s; a 0.95 s timeout (so that no decision coincides with an
    // arrival). Rounds (rs0, rs1, 2 s of sleep) at 2 s + k × 2.0004 s up to 12.002 s: rs0
    // fails at 12.952 s (quiesced), rs1, checked then, at 13.902 s: rs2 is added. Rounds
    // at 15.902 s (both fail) and 19.802 s (rs0 fails at 20.752 s: it recovered at
    // 20.2 s, after its check's SYN); the round at 23.702 s: rs0 answers at 23.7022 s (a
    // round trip): back, rs2 deleted. rs2 gets every arrival in (13.902, 23.7022) s:
    // 14.0 ... 23.7 s, 98.
    let mut c = cluster(2, 1, 10.0, 30);
    let fallback = DestConfig::new(2, 80, Forwarding::DirectRouting);
    c.directors[0].services[0].check = Some(HealthCheckConfig {
        timeout: Duration::from_millis(950),
        fallback: Some(fallback),
        ..ldirectord(CheckKind::Connect, 0)
    });
    c.server_events.push(event(10_200, 0, ServerChange::Crash));
    c.server_events.push(event(10_200, 1, ServerChange::Crash));
    c.server_events.push(event(20_200, 0, ServerChange::Recover));
    let r = run(c);
    assert_eq!(r.servers[2].connections, 98);
    let h = ha(&r);
    assert_eq!((h.checks[0].downs, h.checks[0].ups, h.checks[0].fallbacks), (2, 1, 1));
    assert_eq!(h.faults[0].detected_at, Some(ms(12_952)));
    assert_eq!(h.faults[0].restored_at, Some(Time(23_702_200_000)));
    assert_eq!(h.faults[1].restored_at, None);
    // At the end: rs0 (weight 1) and rs1 (quiesced); no fallback.
    let ipvs = &r.directors[0].ipvs;
    let svc = ipvs.services().next().expect("one service");
    let mut weights: Vec<_> = svc.scheduler().dests().map(|(_, d)| (d.addr(), d.weight())).collect();
    weights.sort();
    assert_eq!(weights, [(r.servers[0].address, 1), (r.servers[1].address, 0)]);
    // rs0 got the even arrivals until it was quiesced, k = 2 ... 128 (64), and every one
    // after its return, k = 238 ... 300 (63).
    assert_eq!(r.servers[0].connections, 64 + 63);
}

#[test]
fn a_crash_under_load_costs_connections_before_its_detection_and_an_idle_one_does_not() {
    // 150 ms requests: each server has one in service at any time (every 0.2 s). The
    // crash at 10.22 s loses rs0's request in service (its arrival at 10.1 or 10.2 s):
    // failed at once, before the detection (14.501 s: the 12.001 s check, then its
    // 13.501 s retry; see keepalived_detects_a_crash_after_a_timeout_and_a_retry).
    let mut c = cluster(2, 0, 10.0, 30);
    c.populations[0].demand = Dist::Constant(0.150);
    c.directors[0].services[0].check = Some(keepalived(CheckKind::Connect));
    c.server_events.push(event(10_220, 0, ServerChange::Crash));
    let r = run(c);
    let f = &ha(&r).faults[0];
    assert_eq!(f.detected_at, Some(Time(14_501_000_000)));
    assert_eq!(f.failed_before_detection, 1);

    // One connection every 10 s (at 10, 20, 30 s), 1 ms each: idle when rs0 crashes at
    // 10.5 s; detected at 14.501 s, the 20 s connection goes to rs1.
    let mut c = cluster(2, 0, 0.1, 30);
    c.directors[0].services[0].check = Some(keepalived(CheckKind::Connect));
    c.server_events.push(event(10_500, 0, ServerChange::Crash));
    let r = run(c);
    let f = &ha(&r).faults[0];
    assert_eq!(f.detected_at, Some(Time(14_501_000_000)));
    assert_eq!((f.failed_before_detection, f.failed_after_detection), (0, 0));
    assert_eq!(r.connections.completed, 3);
}

/// rs0 hangs at 10.2 s (no checks), recovering at `recover_ms` if given; clients wait
/// `timeout_ms` for a response if given.
fn hang_without_checks(timeout_ms: Option<u64>, recover_ms: Option<u64>) -> RunReport {
    let mut c = cluster(2, 0, 10.0, 30);
    c.populations[0].response_timeout = timeout_ms.map(Duration::from_millis);
    c.server_events.push(event(10_200, 0, ServerChange::Hang));
    if let Some(t) = recover_ms {
        c.server_events.push(event(t, 0, ServerChange::Recover));
    }
    run(c)
}

#[test]
fn a_response_timeout_ends_connections_stuck_on_a_hung_server() {
    // rs0 gets the even arrivals: from 10.2 s (after the hang) to 30 s, k = 102 ... 300:
    // 100 connections, each stuck; the clients give up 2 s after their requests.
    let r = hang_without_checks(Some(2000), None);
    let k = r.connections;
    assert_eq!((k.offered, k.completed, k.dropped, k.refused), (300, 200, 100, 0));
    let f = &ha(&r).faults[0];
    assert_eq!((f.detected_at, f.failed_before_detection), (None, 100));
    assert!(r.ha.as_ref().is_some_and(|h| h.checks == [CheckStats::default()]));
    // What the director saw of a stuck connection: SYN, the handshake's ACK, request and
    // the client's reset (4 packets), where one that completes after the recovery sends
    // SYN, ACK, request, 4 quick ACKs of its 4-segment response (its first data), FIN and
    // the last ACK (9).
    let plain = hang_without_checks(None, Some(40_000));
    assert_eq!(r.directors[0].in_pkts, plain.directors[0].in_pkts - 100 * (9 - 4));
    // Without a timeout they wait for ever: still open at the end, counted as dropped.
    let r = hang_without_checks(None, None);
    assert_eq!((r.connections.completed, r.connections.dropped), (200, 100));
    // Recovered before anyone gave up: all complete.
    assert_eq!(plain.connections.completed, 300);
    let r = hang_without_checks(Some(60_000), Some(40_000));
    assert_eq!(r.connections.completed, 300);
}

#[test]
fn runs_without_checks_or_faults_report_no_ha() {
    let r = run(cluster(2, 0, 10.0, 2));
    assert!(r.ha.is_none());
}

#[test]
fn validation_names_the_check_the_fallback_and_the_fault() {
    let reject = |c: ClusterConfig| Simulation::new(c).err().expect("rejected").to_string();

    let mut c = cluster(2, 0, 1.0, 1);
    let fb = DestConfig::new(5, 80, Forwarding::DirectRouting);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { fallback: Some(fb), ..ldirectord(CheckKind::Connect, 0) });
    let e = reject(c);
    assert!(
        e.contains("service TCP  172.17.60.201:80 health check: fallback real server #5 does not exist"),
        "{e}"
    );

    let mut c = cluster(2, 1, 1.0, 1);
    c.servers[2].segment = "dmz".into();
    let fb = DestConfig::new(2, 80, Forwarding::DirectRouting);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { fallback: Some(fb), ..ldirectord(CheckKind::Connect, 0) });
    let e = reject(c);
    assert!(e.contains("fallback real server \"rs2\": direct routing needs the real server"), "{e}");

    let mut c = cluster(2, 0, 1.0, 1);
    let fb = DestConfig::new(1, 8080, Forwarding::DirectRouting);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { fallback: Some(fb), ..ldirectord(CheckKind::Connect, 0) });
    assert!(reject(c).contains("is one of the checked real servers"));

    let mut c = cluster(2, 0, 1.0, 1);
    c.directors[0].services[0].check =
        Some(HealthCheckConfig { interval: Duration::ZERO, ..ldirectord(CheckKind::Connect, 0) });
    assert!(reject(c).contains("health check: interval must be > 0"));

    let mut c = cluster(2, 0, 1.0, 1);
    c.server_events = vec![event(500, 1, ServerChange::Hang), event(300, 1, ServerChange::Crash)];
    let e = reject(c);
    assert!(e.contains("server event at 0.500000000s: real server \"rs1\" has a fault already"), "{e}");

    let mut c = cluster(2, 0, 1.0, 1);
    c.server_events = vec![event(500, 0, ServerChange::Recover)];
    assert!(reject(c).contains("real server \"rs0\" recovers, but it has no fault"));

    let mut c = cluster(2, 0, 1.0, 1);
    c.server_events = vec![event(500, 0, ServerChange::Slow(1000))];
    assert!(reject(c).contains("not in 1..=999"));

    let mut c = cluster(2, 0, 1.0, 1);
    c.populations[0].response_timeout = Some(Duration::ZERO);
    assert!(reject(c).contains("client population \"web\": response_timeout must be > 0"));
}

#[test]
fn same_seed_same_report_other_seed_other_report() {
    let mk = |seed| {
        let mut c = cluster(3, 1, 40.0, 40);
        c.seed = seed;
        c.sample_interval = Some(Duration::from_secs(2));
        c.populations[0].arrival = ArrivalProcess::Poisson { rate: 40.0 };
        c.populations[0].demand = Dist::Exponential { mean: 0.01 };
        c.populations[0].response_timeout = Some(Duration::from_secs(3));
        c.directors[0].services[0].scheduler = SchedulerKind::Wlc;
        let fallback = DestConfig::new(3, 80, Forwarding::DirectRouting);
        c.directors[0].services[0].check = Some(HealthCheckConfig {
            checker: Checker::Keepalived,
            fallback: Some(fallback),
            ..keepalived(negotiate(20))
        });
        c.server_events = vec![
            event(5_000, 0, ServerChange::Crash),
            event(8_000, 1, ServerChange::Hang),
            event(9_000, 2, ServerChange::Slow(100)),
            event(20_000, 0, ServerChange::Recover),
            event(25_000, 1, ServerChange::Recover),
        ];
        let r = run(c);
        format!("{:?} {:?} {:?} {} {}", r.connections, r.ha, r.series, r.latency.mean_ns(), r.engine_events)
    };
    assert_eq!(mk(5), mk(5));
    assert_ne!(mk(5), mk(6));
}

#[test]
fn nanny_brings_servers_in_slowly_and_takes_one_out_at_its_first_failed_check() {
    // piranha's nanny, lvs.cf `timeout = 30` (over 20 s: the weight doubles at every
    // passing check), `reentry = 60` (countThresh 2), weight 64. Its first check is at
    // time zero, each next 30 s after the previous one ended (a connect: 200 µs). The
    // first passing check (0.0002 s) sets the weight to 64 >> 5 = 2, doubled at once: 4;
    // then 8 (30.0004 s), 16 (60.0006 s), 32 (90.0008 s), 64 (120.001 s). rs1 crashes at
    // 100 s: its check of 120.0008 s times out at 150.0008 s: removed (no retries).
    let mut c = cluster(2, 0, 10.0, 160);
    c.sample_interval = Some(Duration::from_secs(1));
    for d in &mut c.directors[0].services[0].dests {
        d.weight = 64;
    }
    let nanny = HealthCheckConfig {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(30),
        rise: HealthCheckConfig::nanny_rise(60, 30),
        ..HealthCheckConfig::nanny()
    };
    c.directors[0].services[0].check = Some(nanny);
    c.server_events.push(event(100_000, 1, ServerChange::Crash));
    let r = run(c);
    let weight_at =
        |s: usize, t: u64| r.series.iter().find(|x| x.t == ms(t * 1000)).map(|x| x.servers[s].weight);
    for (t, w) in [(10, 4), (40, 8), (70, 16), (95, 32), (125, 64)] {
        assert_eq!(weight_at(0, t), Some(w), "rs0 at {t} s");
    }
    assert_eq!(weight_at(1, 95), Some(32));
    assert_eq!(ha(&r).faults[0].detected_at, Some(Time(150_000_800_000)));
}
