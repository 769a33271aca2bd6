//! The protocol end to end, in memory: an agent and a master state machine wired together
//! byte for byte, plus the codec's properties. No sockets, no clock.

use std::net::{IpAddr, Ipv4Addr};

use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::auth::Psk;
use feedbackd_proto::journal::{Decision, Entry, Record};
use feedbackd_proto::keys::{AgentKey, Auth, KeyTable};
use feedbackd_proto::master::{ConnId, Master, MasterConfig, MasterEvent, RsKey, TableEntry, Why};
use feedbackd_proto::types::{AdminState, ServiceSpec};
use feedbackd_proto::wire::{self, Message, Metric};
use feedbackd_proto::{Duration, Time};
use lvs_ipvs::Forwarding;
use lvs_ipvs::{Protocol, ServiceKey};
use lvs_sched::feedback::{GrpcWrr, LawConfig, LawKind};
use proptest::prelude::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const RIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const VS: ServiceKey = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
const RS: RsKey = RsKey { service: VS, addr: RIP, port: 80 };

fn psk(s: &str) -> Psk {
    Psk::from_file_contents(s.as_bytes()).unwrap()
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Tcp,
        port: 80,
        vip: None,
        fwmark: None,
        forwarding: Forwarding::DirectRouting,
        address: None,
    }
}

fn agent(key: Option<Psk>) -> Agent {
    Agent::new(AgentConfig {
        agent_id: "rs1".into(),
        services: vec![spec()],
        interval: Duration::from_secs(1),
        psk: key,
        master_timeout: Duration::from_secs(3),
    })
}

fn law() -> LawConfig {
    LawConfig {
        slow_start: Duration::ZERO,
        smoothing: 1.0,
        max_step: 0,
        dead_band: 0,
        ..LawConfig::default()
    }
}

/// No key: insecure; a key: agent `rs1`'s, allowed to claim anything.
fn auth(key: Option<Psk>) -> Auth {
    key.map_or(Auth::Insecure, |k| {
        let mut t = KeyTable::default();
        t.insert("rs1".into(), AgentKey::anything(k));
        Auth::Keys(t)
    })
}

fn master(key: Option<Psk>) -> Master {
    let mut m = Master::new(MasterConfig { auth: auth(key), law: law(), ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], &[]);
    m
}

fn sample(capacity: f64) -> Sample {
    Sample {
        admin: AdminState::Ready,
        capacity: vec![Some(capacity)],
        metrics: vec![Metric { name: "cpu_busy".into(), value: 1.0 - capacity }],
    }
}

/// Moves bytes both ways until neither side has anything to send; returns the master's
/// events and the agent's.
fn pump(now: Time, a: &mut Agent, m: &mut Master) -> (Vec<MasterEvent>, Vec<AgentEvent>) {
    let (mut mev, mut aev) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(bytes) = a.poll_transmit() {
            m.handle_input(now, ConnId(1), &bytes);
            moved = true;
        }
        mev.extend(std::iter::from_fn(|| m.poll_event()));
        while let Some((_, bytes)) = m.poll_transmit() {
            a.handle_input(now, &bytes);
            moved = true;
        }
        aev.extend(std::iter::from_fn(|| a.poll_event()));
        if !moved {
            return (mev, aev);
        }
    }
}

fn connect(now: Time, a: &mut Agent, m: &mut Master) -> (Vec<MasterEvent>, Vec<AgentEvent>) {
    m.handle_connect(now, ConnId(1), RIP, [1; 16]);
    a.handle_connected(now, [2; 16]);
    pump(now, a, m)
}

fn weights(events: &[MasterEvent]) -> Vec<(u32, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            MasterEvent::SetWeight { from, to, .. } => Some((*from, *to)),
            MasterEvent::AddRealServer { weight, .. } => Some((u32::MAX, *weight)),
            _ => None,
        })
        .collect()
}

#[test]
fn registration_adds_the_real_server_on_the_first_report_and_reports_move_the_weight() {
    for key in [None, Some(psk("a-long-enough-shared-key"))] {
        let (mut a, mut m) = (agent(key.clone()), master(key));
        let (mev, aev) = connect(Time(0), &mut a, &mut m);
        assert!(matches!(&mev[..], [MasterEvent::Registered { matched, .. }] if matched == &[1]), "{mev:?}");
        assert_eq!(aev, vec![AgentEvent::Registered { matched: vec![1] }]);
        a.handle_sample(Time(0), sample(0.5));
        let (mev, aev) = pump(Time(0), &mut a, &mut m);
        match &mev[..] {
            [MasterEvent::AddRealServer { key, forwarding, weight, .. }] => {
                assert_eq!((*key, *forwarding, *weight), (RS, Forwarding::DirectRouting, 51));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(aev, vec![AgentEvent::Acked { seq: 2, weights: vec![Some(51)] }]);
        a.handle_sample(Time(1_000_000_000), sample(0.2));
        let (mev, _) = pump(Time(1_000_000_000), &mut a, &mut m);
        assert_eq!(weights(&mev), vec![(51, 21)]);
        let row = &m.status(Time(1_500_000_000))[0];
        assert_eq!((row.weight, row.capacity, row.agent.as_deref()), (21, Some(0.2), Some("rs1")));
        assert_eq!(row.report_age, Some(Duration::from_millis(500)));
    }
}

#[test]
fn a_wrong_key_or_a_missing_key_never_changes_a_weight() {
    let cases = [
        (Some(psk("the-agent-has-this-key")), Some(psk("the-master-has-another"))),
        (None, Some(psk("the-master-has-a-key!"))),
        (Some(psk("the-agent-has-a-key!!")), None),
    ];
    for (ak, mk) in cases {
        let (mut a, mut m) = (agent(ak.clone()), master(mk.clone()));
        let (mev, aev) = connect(Time(0), &mut a, &mut m);
        a.handle_sample(Time(0), sample(1.0));
        let (mev2, _) = pump(Time(0), &mut a, &mut m);
        let all: Vec<_> = mev.iter().chain(&mev2).collect();
        assert!(
            all.iter().all(|e| matches!(e, MasterEvent::Close { .. })),
            "agent key {:?}, master key {:?}: {all:?}",
            ak,
            mk
        );
        assert!(aev.iter().any(|e| matches!(e, AgentEvent::Close { retry: true, .. })), "{aev:?}");
        assert!(m.status(Time(0)).is_empty());
    }
}

/// Runs a keyed session and returns the agent's frames as sent.
fn recorded_session() -> Vec<Vec<u8>> {
    let key = psk("a-long-enough-shared-key");
    let (mut a, mut m) = (agent(Some(key.clone())), master(Some(key)));
    m.handle_connect(Time(0), ConnId(1), RIP, [1; 16]);
    a.handle_connected(Time(0), [2; 16]);
    let mut sent = Vec::new();
    for (t, cap) in [(0, 0.5), (1, 0.9)] {
        a.handle_sample(Time(t), sample(cap));
        loop {
            let mut moved = false;
            while let Some(b) = a.poll_transmit() {
                m.handle_input(Time(t), ConnId(1), &b);
                sent.push(b);
                moved = true;
            }
            while let Some((_, b)) = m.poll_transmit() {
                a.handle_input(Time(t), &b);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
    sent
}

#[test]
fn replayed_reordered_or_tampered_frames_close_the_connection_and_change_nothing() {
    let frames = recorded_session();
    assert_eq!(frames.len(), 3, "register and two reports");
    let key = psk("a-long-enough-shared-key");
    // The whole session replayed on a new connection: the master's nonce differs, so the
    // session key differs and the registration fails.
    let mut m = master(Some(key.clone()));
    m.handle_connect(Time(0), ConnId(1), RIP, [9; 16]);
    for f in &frames {
        m.handle_input(Time(5), ConnId(1), f);
    }
    let ev: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(matches!(&ev[..], [MasterEvent::Close { reason, .. }] if reason.contains("tag")), "{ev:?}");
    assert_eq!(m.counters().rejected.get("auth"), Some(&1));

    // Same nonce (as if the master reused it): a report replayed after the next one, or one
    // out of order, breaks the sequence.
    for order in [vec![0, 1, 2, 2], vec![0, 2, 1]] {
        let mut m = master(Some(key.clone()));
        m.handle_connect(Time(0), ConnId(1), RIP, [1; 16]);
        let mut events = Vec::new();
        for &i in &order {
            m.handle_input(Time(5), ConnId(1), &frames[i]);
            events.extend(std::iter::from_fn(|| m.poll_event()));
        }
        let last = events.last().unwrap();
        assert!(
            matches!(last, MasterEvent::Close { reason, .. } if reason.contains("sequence")),
            "{events:?}"
        );
        let changes = weights(&events);
        let expected = if order == [0, 1, 2, 2] { 2 } else { 0 };
        assert_eq!(changes.len(), expected, "{order:?}: {events:?}");
    }

    // Any single flipped bit in a report is caught.
    let report = &frames[1];
    for bit in 0..report.len() * 8 {
        let mut m = master(Some(key.clone()));
        m.handle_connect(Time(0), ConnId(1), RIP, [1; 16]);
        m.handle_input(Time(0), ConnId(1), &frames[0]);
        let mut bad = report.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        m.handle_input(Time(0), ConnId(1), &bad);
        let ev: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
        assert!(weights(&ev).is_empty(), "bit {bit}: {ev:?}");
    }
}

#[test]
fn a_silent_agent_is_quiesced_then_removed_and_comes_back_with_a_slow_start() {
    let cfg = MasterConfig {
        law: LawConfig { slow_start: Duration::from_secs(10), ..law() },
        quiesce_after: Duration::from_secs(3),
        remove_after: Duration::from_secs(10),
        auth: Auth::Insecure,
        ..MasterConfig::default()
    };
    let mut m = Master::new(cfg);
    m.handle_table(Time(0), &[VS], &[TableEntry { key: RS, weight: 80, forwarding: Forwarding::Masq }]);
    let mut a = agent(None);
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(0), sample(0.9));
    let (mev, _) = pump(Time(0), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(80, 90)], "adopted entry: no add, no slow start");
    assert_eq!(m.poll_timeout(), Some(Time(3_000_000_000)));
    m.handle_timeout(Time(3_000_000_000));
    let ev: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(
        matches!(&ev[..], [MasterEvent::SetWeight { from: 90, to: 0, why: Why::Silent(_), .. }]),
        "{ev:?}"
    );
    // It reports again: slow start from min_weight.
    a.handle_sample(Time(5_000_000_000), sample(1.0));
    let (mev, _) = pump(Time(5_000_000_000), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(0, 1)]);
    a.handle_sample(Time(10_000_000_000), sample(1.0));
    let (mev, _) = pump(Time(10_000_000_000), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(1, 50)], "half-way through the slow start");
    // Silent for good: quiesced at +3 s, removed at +10 s.
    m.handle_timeout(Time(13_000_000_000));
    m.handle_timeout(Time(20_000_000_000));
    let ev: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(matches!(&ev[0], MasterEvent::SetWeight { to: 0, .. }), "{ev:?}");
    assert!(matches!(&ev[1], MasterEvent::RemoveRealServer { key, .. } if *key == RS), "{ev:?}");
    assert!(m.status(Time(20_000_000_000)).is_empty());
}

#[test]
fn goodbye_and_admin_drain_set_weight_zero() {
    let (mut a, mut m) = (agent(None), master(None));
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(0), sample(1.0));
    pump(Time(0), &mut a, &mut m);
    a.handle_sample(Time(1), Sample { admin: AdminState::Drain, ..sample(1.0) });
    let (mev, _) = pump(Time(1), &mut a, &mut m);
    assert!(
        matches!(
            &mev[..],
            [MasterEvent::SetWeight { from: 100, to: 0, why: Why::Admin(AdminState::Drain), .. }]
        ),
        "{mev:?}"
    );
    a.handle_sample(Time(2), sample(1.0));
    let (mev, _) = pump(Time(2), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(0, 100)]);
    a.handle_goodbye(Time(3), "SIGTERM");
    let (mev, aev) = pump(Time(3), &mut a, &mut m);
    assert!(
        matches!(&mev[0], MasterEvent::SetWeight { from: 100, to: 0, why: Why::Goodbye(_), .. }),
        "{mev:?}"
    );
    assert!(matches!(&mev[1], MasterEvent::Close { .. }));
    assert!(matches!(&aev[..], [AgentEvent::Close { retry: false, .. }]), "{aev:?}");
}

#[test]
fn a_restarted_master_adopts_the_table_and_changes_only_what_reports_ask() {
    // A previous master left 2 servers: one claimed by our agent, one static.
    let other = RsKey { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), ..RS };
    let table = [
        TableEntry { key: RS, weight: 40, forwarding: Forwarding::DirectRouting },
        TableEntry { key: other, weight: 7, forwarding: Forwarding::DirectRouting },
    ];
    let mut m = master(None);
    m.handle_table(Time(0), &[VS], &table);
    let mut a = agent(None);
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(0), sample(0.4));
    let (mev, _) = pump(Time(0), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(40, 41)]);
    let rows = m.status(Time(0));
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1].weight, rows[1].agent.as_deref()), (7, None), "static entry untouched");
    // Its own silence never touches the static entry either.
    m.handle_timeout(Time(100_000_000_000));
    m.handle_timeout(Time(200_000_000_000));
    let ev: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(ev.iter().all(|e| !format!("{e:?}").contains("10.0.0.3")), "{ev:?}");
}

#[test]
fn a_service_created_later_is_matched_on_the_next_table() {
    let mut m = master(None);
    m.handle_table(Time(0), &[], &[]);
    let mut a = agent(None);
    let (mev, _) = connect(Time(0), &mut a, &mut m);
    assert!(matches!(&mev[..], [MasterEvent::Registered { matched, .. }] if matched == &[0]));
    m.handle_table(Time(1), &[VS], &[]);
    a.handle_sample(Time(1), sample(1.0));
    let (mev, _) = pump(Time(1), &mut a, &mut m);
    assert!(matches!(&mev[..], [MasterEvent::AddRealServer { key, .. }] if *key == RS), "{mev:?}");
}

#[test]
fn a_master_that_stops_answering_is_timed_out() {
    let mut a = agent(None);
    a.handle_connected(Time(0), [0; 16]);
    assert_eq!(a.poll_timeout(), Some(Time(3_000_000_000)));
    a.handle_timeout(Time(3_000_000_000));
    assert!(
        matches!(a.poll_event(), Some(AgentEvent::Close { retry: true, reason }) if reason.contains("silent"))
    );
}

fn grpc_sample(capacity: Vec<f64>, metrics: &[(&str, f64)]) -> Sample {
    Sample {
        admin: AdminState::Ready,
        capacity: capacity.into_iter().map(Some).collect(),
        metrics: metrics.iter().map(|&(name, value)| Metric { name: name.into(), value }).collect(),
    }
}

fn grpc_master(services: &[ServiceKey]) -> Master {
    let law = LawConfig {
        max_weight: 1000,
        // No blackout: these tests are about the estimate (master/service_tests.rs has the
        // blackout and the expiration).
        kind: LawKind::GrpcWrr(GrpcWrr {
            error_penalty: 1.0,
            weight_per_qps: 1.0,
            blackout_period: Duration::ZERO,
            ..GrpcWrr::default()
        }),
        ..law()
    };
    let mut m = Master::new(MasterConfig { law, auth: Auth::Insecure, ..MasterConfig::default() });
    m.handle_table(Time(0), services, &[]);
    m
}

#[test]
fn the_grpc_law_weighs_servers_by_queries_per_second_over_utilisation() {
    let (mut a, mut m) = (agent(None), grpc_master(&[VS]));
    connect(Time(0), &mut a, &mut m);
    // 120 q/s at 60 % utilisation (capacity 0.4): 120 / 0.6 = 200 q/s at full utilisation.
    a.handle_sample(Time(0), grpc_sample(vec![0.4], &[("qps", 120.0), ("eps", 0.0)]));
    let (mev, aev) = pump(Time(0), &mut a, &mut m);
    match &mev[..] {
        [MasterEvent::AddRealServer { key, weight: 200, why, .. }] if *key == RS => assert_eq!(
            why.to_string(),
            "qps 120.0, eps 0.0, utilization 0.600, estimate 200.0/s, smoothed 200.0/s, target 200"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(aev, vec![AgentEvent::Acked { seq: 2, weights: vec![Some(200)] }]);
    // 100 q/s with 10 errors/s at 50 %: 100 / (0.5 + 10/100 × 1) = 166.7.
    a.handle_sample(Time(1), grpc_sample(vec![0.5], &[("qps", 100.0), ("eps", 10.0)]));
    let (mev, _) = pump(Time(1), &mut a, &mut m);
    assert_eq!(weights(&mev), vec![(200, 167)]);
    // No qps in the report: no usable signal, the weight stays.
    a.handle_sample(Time(2), sample(0.1));
    let (mev, aev) = pump(Time(2), &mut a, &mut m);
    assert!(mev.is_empty(), "{mev:?}");
    assert_eq!(aev, vec![AgentEvent::Acked { seq: 4, weights: vec![Some(167)] }]);
    // A server with no signal yet is added at min_weight, and the log says why.
    let (mut a, mut m) = (agent(None), grpc_master(&[VS]));
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(0), sample(0.5));
    let (mev, _) = pump(Time(0), &mut a, &mut m);
    match &mev[..] {
        [MasterEvent::AddRealServer { weight: 1, why, .. }] => assert_eq!(
            why.to_string(),
            "qps none, eps 0.0, utilization 0.500: no usable signal, the weight stays at 1"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_grpc_law_reads_qps_n_for_service_n_and_plain_qps_otherwise() {
    let https = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 443 };
    let dns = ServiceKey::Addr { protocol: Protocol::Udp, addr: VIP, port: 53 };
    let mut a = Agent::new(AgentConfig {
        agent_id: "rs1".into(),
        services: vec![
            spec(),
            ServiceSpec { port: 443, ..spec() },
            ServiceSpec { protocol: Protocol::Udp, port: 53, ..spec() },
        ],
        interval: Duration::from_secs(1),
        psk: None,
        master_timeout: Duration::from_secs(3),
    });
    let mut m = grpc_master(&[VS, https, dns]);
    connect(Time(0), &mut a, &mut m);
    // Service 1 takes qps and eps; service 2 its own qps_2 (and the plain eps); service 3
    // its own eps_3 (and the plain qps).
    let metrics = [("qps", 120.0), ("eps", 12.0), ("qps_2", 60.0), ("eps_3", 0.0)];
    a.handle_sample(Time(0), grpc_sample(vec![0.4, 0.4, 0.4], &metrics));
    let (mev, _) = pump(Time(0), &mut a, &mut m);
    let added: Vec<(u16, u32)> = mev
        .iter()
        .filter_map(|e| match e {
            MasterEvent::AddRealServer {
                key: RsKey { service: ServiceKey::Addr { port, .. }, .. },
                weight,
                ..
            } => Some((*port, *weight)),
            _ => None,
        })
        .collect();
    // 120 / (0.6 + 12/120) = 171.4; 60 / (0.6 + 12/60) = 75; 120 / 0.6 = 200.
    assert_eq!(added, vec![(80, 171), (443, 75), (53, 200)]);
}

fn journal(m: &mut Master) -> Vec<Record> {
    std::iter::from_fn(|| m.poll_journal()).collect()
}

/// A journal's decisions and the master's decision events, side by side.
fn decisions(records: &[Record]) -> Vec<Decision> {
    records
        .iter()
        .filter_map(|r| match r.entry {
            Entry::Decision(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn event_decisions(events: &[MasterEvent]) -> Vec<Decision> {
    events
        .iter()
        .filter_map(|e| match *e {
            MasterEvent::AddRealServer { key, weight, .. } => Some(Decision::Add { key, weight }),
            MasterEvent::SetWeight { key, from, to, .. } => Some(Decision::Set { key, from, to }),
            MasterEvent::RemoveRealServer { key, .. } => Some(Decision::Remove { key }),
            _ => None,
        })
        .collect()
}

#[test]
fn the_journal_is_off_by_default() {
    let (mut a, mut m) = (agent(None), master(None));
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(0), sample(0.5));
    pump(Time(0), &mut a, &mut m);
    assert_eq!(m.poll_journal(), None);
    // Switched off again, it drops what was not polled.
    m.set_journal(Time(1), true);
    m.handle_timeout(Time(60_000_000_000));
    m.set_journal(Time(60_000_000_000), false);
    assert_eq!(m.poll_journal(), None);
}

#[test]
fn the_journal_records_inputs_then_their_decisions_in_event_order() {
    let cfg = MasterConfig {
        law: law(),
        quiesce_after: Duration::from_secs(3),
        remove_after: Duration::from_secs(10),
        auth: Auth::Insecure,
        ..MasterConfig::default()
    };
    let mut m = Master::new(cfg.clone());
    m.set_journal(Time(0), true);
    m.handle_table(Time(0), &[VS], &[]);
    let mut a = agent(None);
    let mut events = connect(Time(1), &mut a, &mut m).0;
    for (t, cap) in [(2, 0.5), (3, 0.2), (4, 0.2)] {
        a.handle_sample(Time(t), sample(cap));
        events.extend(pump(Time(t), &mut a, &mut m).0);
    }
    m.handle_disconnect(Time(5), ConnId(1));
    m.handle_timeout(Time(3_000_000_004));
    m.handle_timeout(Time(10_000_000_004));
    events.extend(std::iter::from_fn(|| m.poll_event()));
    let records = journal(&mut m);
    let lines: Vec<String> = records.iter().map(Record::to_line).collect();
    let spec_line = "tcp/80/dr/-/-/-";
    assert_eq!(
        lines,
        [
            "0 start law=capacity min_weight=1 max_weight=100 smoothing=1.0 dead_band=0 max_step=0 \
             slow_start_ns=0 quiesce_after_ns=3000000000 remove_after_ns=10000000000 \
             register_timeout_ns=10000000000 max_servers_per_agent=64",
            "0 table services=tcp:10.0.0.1:80 entries=",
            "1 connect conn=1 peer=10.0.0.2",
            &format!("1 register conn=1 agent=rs1 interval_ms=1000 services={spec_line}"),
            "2 report conn=1 admin=ready capacity=500 metrics=cpu_busy:0.5",
            "2 add rs=tcp:10.0.0.1:80/10.0.0.2:80 weight=51",
            "3 report conn=1 admin=ready capacity=200 metrics=cpu_busy:0.8",
            "3 set rs=tcp:10.0.0.1:80/10.0.0.2:80 from=51 to=21",
            "4 report conn=1 admin=ready capacity=200 metrics=cpu_busy:0.8",
            "5 disconnect conn=1",
            "3000000004 set rs=tcp:10.0.0.1:80/10.0.0.2:80 from=21 to=0",
            "10000000004 remove rs=tcp:10.0.0.1:80/10.0.0.2:80",
        ]
    );
    assert_eq!(decisions(&records), event_decisions(&events));
    let Entry::Start { law: recorded, .. } = records[0].entry else { panic!() };
    assert_eq!(recorded, cfg.law);
    for (r, line) in records.iter().zip(&lines) {
        assert_eq!(&Record::parse_line(line).unwrap(), r, "{line}");
    }
}

#[test]
fn the_journal_records_goodbyes_drains_and_failed_applies() {
    let (mut a, mut m) = (agent(None), master(None));
    m.set_journal(Time(0), true);
    connect(Time(0), &mut a, &mut m);
    a.handle_sample(Time(1), sample(1.0));
    let mut events = pump(Time(1), &mut a, &mut m).0;
    m.handle_apply_failed(Time(1), RS);
    a.handle_sample(Time(2), sample(1.0));
    events.extend(pump(Time(2), &mut a, &mut m).0);
    a.handle_sample(Time(3), Sample { admin: AdminState::Maint, ..sample(1.0) });
    events.extend(pump(Time(3), &mut a, &mut m).0);
    a.handle_sample(Time(4), sample(1.0));
    events.extend(pump(Time(4), &mut a, &mut m).0);
    a.handle_goodbye(Time(5), "SIGTERM: stopping\nnow");
    events.extend(pump(Time(5), &mut a, &mut m).0);
    let records = journal(&mut m);
    let kinds: Vec<String> = records
        .iter()
        .map(|r| {
            let line = r.to_line();
            line.split(' ').nth(1).unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "connect",
            "register",
            "report",
            "add",
            "apply-failed",
            "report",
            "add",
            "report",
            "set",
            "report",
            "set",
            "goodbye",
            "set"
        ]
    );
    assert_eq!(records[5].entry, Entry::ApplyFailed { key: RS });
    assert_eq!(
        records[8].entry,
        Entry::Report {
            conn: ConnId(1),
            admin: AdminState::Maint,
            capacity: vec![Some(1000)],
            metrics: vec![Metric { name: "cpu_busy".into(), value: 0.0 }],
        }
    );
    assert_eq!(
        records[12].entry,
        Entry::Goodbye { conn: ConnId(1), reason: "SIGTERM: stopping\nnow".into() }
    );
    assert_eq!(decisions(&records), event_decisions(&events));
    assert!(records.iter().all(|r| Record::parse_line(&r.to_line()).as_ref() == Ok(r)));
}

#[test]
fn refused_frames_are_not_journalled() {
    let key = psk("a-long-enough-shared-key");
    let frames = recorded_session();
    // A tampered report: recorded are the registration, the connection and its end only.
    let mut m = master(Some(key.clone()));
    m.set_journal(Time(0), true);
    m.handle_connect(Time(0), ConnId(1), RIP, [1; 16]);
    m.handle_input(Time(0), ConnId(1), &frames[0]);
    let mut bad = frames[1].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    m.handle_input(Time(1), ConnId(1), &bad);
    m.handle_disconnect(Time(2), ConnId(1));
    m.handle_disconnect(Time(3), ConnId(1));
    let kinds: Vec<String> =
        journal(&mut m).iter().map(|r| r.to_line().split(' ').nth(1).unwrap().to_owned()).collect();
    assert_eq!(kinds, ["start", "connect", "register", "disconnect"], "a second disconnect is no input");
    // A registration with the wrong key, and a connection that never registers: no
    // record at all (only the counters say they happened).
    let mut m = master(Some(psk("the-master-has-another")));
    m.set_journal(Time(0), true);
    m.handle_connect(Time(0), ConnId(1), RIP, [1; 16]);
    m.handle_input(Time(0), ConnId(1), &frames[0]);
    m.handle_disconnect(Time(1), ConnId(1));
    for i in 2..100 {
        m.handle_connect(Time(i), ConnId(i), RIP, [1; 16]);
        m.handle_input(Time(i), ConnId(i), b"\0\0\0\x10garbage garbage!");
        m.handle_disconnect(Time(i), ConnId(i));
    }
    m.handle_timeout(Time(1_000_000_000_000));
    let kinds: Vec<String> =
        journal(&mut m).iter().map(|r| r.to_line().split(' ').nth(1).unwrap().to_owned()).collect();
    assert_eq!(kinds, ["start"]);
    assert_eq!(m.counters().connections, 99);
    assert_eq!(m.counters().rejected.get("auth"), Some(&1));
    assert_eq!(m.counters().rejected.get("malformed"), Some(&98));
}

/// The wire carries the kernel's forwarding codes (0 masq, 2 tunnel, 3 droute); local
/// delivery (1), which an agent never registers, and anything above are refused.
#[test]
fn the_forwarding_byte_is_the_kernels_code_and_local_is_refused() {
    let register = |forwarding| {
        let services = vec![ServiceSpec { forwarding, ..spec() }];
        Message::Register(wire::Register {
            nonce: [7; 16],
            agent_id: "rs1".into(),
            interval_ms: 1000,
            services,
        })
    };
    let frame = wire::encode(&register(Forwarding::Masq), 1, None);
    let raw = wire::parse_frame(&frame).unwrap();
    // The one service, no VIP, mark or address: protocol, port (2), forwarding, flags.
    let at = raw.body.len() - 2;
    assert_eq!(raw.body[at], 0);
    for (code, want) in
        [(0, Some(Forwarding::Masq)), (2, Some(Forwarding::Tunnel)), (3, Some(Forwarding::DirectRouting))]
    {
        let mut body = raw.body.to_vec();
        body[at] = code;
        assert_eq!(wire::decode_body(raw.message_type, &body).ok(), want.map(register), "code {code}");
    }
    for code in [1, 4, 7, 255] {
        let mut body = raw.body.to_vec();
        body[at] = code;
        let err = wire::decode_body(raw.message_type, &body).unwrap_err();
        assert!(err.to_string().contains("forwarding method"), "code {code}: {err}");
    }
}

#[test]
#[should_panic(expected = "never registers local forwarding")]
fn encoding_a_local_registration_is_a_bug() {
    let services = vec![ServiceSpec { forwarding: Forwarding::Local, ..spec() }];
    let msg = Message::Register(wire::Register {
        nonce: [7; 16],
        agent_id: "rs1".into(),
        interval_ms: 1,
        services,
    });
    wire::encode(&msg, 1, None);
}

fn any_message() -> impl Strategy<Value = Message> {
    let addr =
        prop_oneof![any::<[u8; 4]>().prop_map(IpAddr::from), any::<[u8; 16]>().prop_map(IpAddr::from),];
    let spec = (
        prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)],
        1u16..,
        prop_oneof![Just(Forwarding::Masq), Just(Forwarding::DirectRouting), Just(Forwarding::Tunnel)],
        proptest::option::of(addr.clone()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(addr),
    )
        .prop_map(|(protocol, port, forwarding, vip, fwmark, address)| ServiceSpec {
            protocol,
            port,
            vip,
            fwmark,
            forwarding,
            address,
        });
    let metric = ("[a-z0-9_]{1,32}", -1e12f64..1e12).prop_map(|(name, value)| Metric { name, value });
    prop_oneof![
        (any::<bool>(), any::<[u8; 16]>())
            .prop_map(|(auth_required, nonce)| Message::Welcome(wire::Welcome { auth_required, nonce })),
        (any::<[u8; 16]>(), "[!-~]{1,64}", 1u32.., proptest::collection::vec(spec, 1..=32)).prop_map(
            |(nonce, agent_id, interval_ms, services)| {
                Message::Register(wire::Register { nonce, agent_id, interval_ms, services })
            }
        ),
        proptest::collection::vec(any::<u8>(), 0..=32)
            .prop_map(|matched| Message::Registered(wire::Registered { matched })),
        (
            prop_oneof![Just(AdminState::Ready), Just(AdminState::Drain), Just(AdminState::Maint)],
            proptest::collection::vec(proptest::option::of(0u16..=1000), 0..=32),
            proptest::collection::vec(metric, 0..=32),
        )
            .prop_map(|(admin, capacity, metrics)| Message::Report(wire::Report {
                admin,
                capacity,
                metrics
            })),
        (any::<u64>(), proptest::collection::vec(proptest::option::of(0u32..u32::MAX), 0..=32))
            .prop_map(|(seq, weights)| Message::Ack(wire::Ack { seq, weights })),
        "\\PC{0,60}".prop_map(|reason| Message::Goodbye(wire::Goodbye { reason })),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(msg in any_message(), seq in any::<u64>(), keyed in any::<bool>()) {
        let key = psk("a-long-enough-shared-key").session(&[1; 16], &[2; 16]);
        let frame = wire::encode(&msg, seq, keyed.then_some(&key));
        prop_assert_eq!(wire::frame_len(&frame).unwrap(), Some(frame.len()));
        let raw = wire::parse_frame(&frame).unwrap();
        prop_assert_eq!(raw.seq, seq);
        prop_assert_eq!(raw.tag.is_some(), keyed);
        if let Some(tag) = raw.tag {
            prop_assert!(key.verify(raw.signed, tag));
        }
        prop_assert_eq!(wire::decode_body(raw.message_type, raw.body).unwrap(), msg);
    }

    #[test]
    fn any_bytes_never_panic_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        feedbackd_proto::fuzzing::decode(&data);
    }

    #[test]
    fn any_bytes_never_panic_the_master_or_move_a_weight(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        keyed in any::<bool>(),
    ) {
        feedbackd_proto::fuzzing::master(&data, keyed);
    }

    #[test]
    fn valid_headers_with_random_bodies_never_panic(t in 0u8..10, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut frame = Vec::new();
        frame.extend_from_slice(&((12 + body.len()) as u32).to_be_bytes());
        frame.extend_from_slice(&[1, t, 0, 0]);
        frame.extend_from_slice(&1u64.to_be_bytes());
        frame.extend_from_slice(&body);
        feedbackd_proto::fuzzing::decode(&frame);
        feedbackd_proto::fuzzing::master(&[(frame.len() % 64) as u8].iter().chain(&frame).copied().collect::<Vec<_>>(), false);
    }
}
