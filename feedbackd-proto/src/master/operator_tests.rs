//! The operator's overrides: every action in every state of the server's agent, their
//! precedence, refusals, and what survives the agent.

use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::Time;

use super::*;
use lvs_ipvs::Protocol;

const VS: ServiceKey =
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
const S: u64 = 1_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> RsKey {
    RsKey { service: VS, addr: ip("10.0.0.2"), port: 80 }
}

fn who() -> Who {
    Who { user: "alice".into(), address: ip("192.0.2.9") }
}

/// The agent-check agent of the server 10.0.0.2 the tests act on.
fn polled() -> Polled {
    super::polled_tests::polled("10.0.0.2")
}

/// The server's agent before the operator acts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AgentState {
    /// No agent: adopted from the kernel at weight 7.
    Adopted,
    /// Reporting capacity 0.5 (law: 51).
    Live,
    /// Reporting drain.
    Drain,
    /// Silent past quiesce_after.
    Quiesced,
}

const STATES: [AgentState; 4] =
    [AgentState::Adopted, AgentState::Live, AgentState::Drain, AgentState::Quiesced];

/// A master at time 10 s whose server 10.0.0.2 is in `state`; no slow start unless
/// `slow_start_s`.
fn setup(state: AgentState, slow_start_s: u64) -> Master {
    let law = LawConfig {
        smoothing: 1.0,
        dead_band: 0,
        max_step: 0,
        slow_start: Duration::from_secs(slow_start_s),
        ..LawConfig::default()
    };
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, law, ..MasterConfig::default() });
    let table: &[TableEntry] = if state == AgentState::Adopted {
        &[TableEntry { key: key(), weight: 7, forwarding: Forwarding::DirectRouting }]
    } else {
        &[]
    };
    m.handle_table(Time(0), &[VS], table);
    match state {
        AgentState::Adopted => {}
        AgentState::Live => m.handle_polled(Time(10 * S), &polled(), AdminState::Ready, Some(500)),
        AgentState::Drain => {
            m.handle_polled(Time(9 * S), &polled(), AdminState::Ready, Some(500));
            m.handle_polled(Time(10 * S), &polled(), AdminState::Drain, Some(500));
        }
        AgentState::Quiesced => {
            m.handle_polled(Time(4 * S), &polled(), AdminState::Ready, Some(500));
            m.handle_timeout(Time(9 * S));
        }
    }
    events(&mut m);
    m
}

fn events(m: &mut Master) -> Vec<MasterEvent> {
    while m.poll_transmit().is_some() {}
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn row(m: &Master) -> StatusRow {
    m.status(Time(10 * S)).into_iter().find(|r| r.key == key()).expect("the server is known")
}

/// What the kernel has after `action`: `Some(weight)` or `None` (not in the table).
fn act(m: &mut Master, action: ServerAction) -> Option<u32> {
    m.handle_operator(Time(10 * S), &who(), key(), action).unwrap_or_else(|e| panic!("{action}: {e}"));
    for ev in events(m) {
        match ev {
            MasterEvent::SetWeight { why: Why::Operator { action: a, .. }, .. }
            | MasterEvent::RemoveRealServer { why: Why::Operator { action: a, .. }, .. }
            | MasterEvent::AddRealServer { why: Why::Operator { action: a, .. }, .. } => {
                assert_eq!(a, action)
            }
            other => panic!("{action}: {other:?}"),
        }
    }
    let r = row(m);
    r.in_table.then_some(r.weight)
}

#[test]
fn every_action_in_every_agent_state() {
    use ServerAction::*;
    // Per state: the weight before, and what the law or the agent gives back.
    for state in STATES {
        let mut m = setup(state, 0);
        let base = match state {
            AgentState::Adopted => 7,
            AgentState::Live => 51,
            AgentState::Drain | AgentState::Quiesced => 0,
        };
        let agent_zero = base == 0;
        assert_eq!(row(&m).weight, base, "{state:?}");
        assert_eq!(act(&mut m, Drain), Some(0), "{state:?}");
        assert_eq!(row(&m).hold, Some(Hold::Drain));
        assert_eq!(act(&mut m, Return), Some(base), "{state:?}");
        assert_eq!(
            act(&mut m, Pin(30)),
            Some(if agent_zero { 0 } else { 30 }),
            "{state:?}: the agent's 0 beats a pin"
        );
        assert_eq!(row(&m).pinned, Some(30));
        assert_eq!(act(&mut m, Drain), Some(0), "{state:?}: drain beats a pin");
        assert_eq!(act(&mut m, Unpin), Some(0), "{state:?}: still drained");
        assert_eq!(act(&mut m, Return), Some(base), "{state:?}");
        assert_eq!(act(&mut m, Maintenance), None, "{state:?}");
        assert_eq!((row(&m).hold, row(&m).weight), (Some(Hold::Maintenance), 0));
        assert_eq!(act(&mut m, Pin(30)), None, "{state:?}: maintenance beats a pin");
        let back = act(&mut m, Return);
        match state {
            // Without an agent it comes back at once with its weight, or its pin.
            AgentState::Adopted => assert_eq!(back, Some(30)),
            // An agent's server waits for its agent's next report.
            _ => assert_eq!(back, None, "{state:?}"),
        }
        assert_eq!(act(&mut m, Unpin), back.map(|_| 7), "{state:?}");
    }
}

#[test]
fn a_report_never_adds_back_a_server_in_maintenance_and_return_starts_it_as_new() {
    let mut m = setup(AgentState::Live, 10);
    act(&mut m, ServerAction::Maintenance);
    for t in 11..15 {
        m.handle_polled(Time(t * S), &polled(), AdminState::Ready, Some(1000));
        assert!(events(&mut m).is_empty(), "t={t}");
    }
    m.handle_operator(Time(20 * S), &who(), key(), ServerAction::Return).unwrap();
    assert!(events(&mut m).is_empty(), "added by the next report");
    m.handle_polled(Time(21 * S), &polled(), AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    // Added as a new server: slow start from now, at min_weight, then 5 s of 10 s later
    // at most 1 + 99 / 2 = 50.
    assert!(matches!(&ev[..], [MasterEvent::AddRealServer { weight: 1, .. }]), "{ev:?}");
    m.handle_polled(Time(26 * S), &polled(), AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 1, to: 50, .. }]), "{ev:?}");
}

#[test]
fn refusals_change_nothing_and_are_not_journalled() {
    let mut m = setup(AgentState::Live, 0);
    m.set_journal(Time(10 * S), true);
    let other = RsKey { port: 81, ..key() };
    let t = Time(10 * S);
    let cases = [
        (other, ServerAction::Drain, "no real server tcp:10.0.0.1:80/10.0.0.2:81 is known"),
        (key(), ServerAction::Pin(65_536), "weight 65536 is out of range: 0 to 65535"),
        (key(), ServerAction::Return, "nothing to return"),
        (key(), ServerAction::Unpin, "nothing to unpin"),
    ];
    for (k, action, want) in cases {
        let e = m.handle_operator(t, &who(), k, action).unwrap_err();
        assert!(e.to_string().contains(want), "{action}: {e}");
    }
    m.handle_operator(t, &who(), key(), ServerAction::Pin(65_535)).unwrap();
    let e = m.handle_operator(t, &who(), key(), ServerAction::Pin(65_535)).unwrap_err();
    assert!(e.to_string().contains("already pinned at 65535"), "{e}");
    m.handle_operator(t, &who(), key(), ServerAction::Drain).unwrap();
    let e = m.handle_operator(t, &who(), key(), ServerAction::Drain).unwrap_err();
    assert_eq!(e, OperatorError::Already { key: key(), state: "drained".into() });
    let records: Vec<Record> = std::iter::from_fn(|| m.poll_journal()).collect();
    let ops: Vec<ServerAction> = records
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::Operator { who: w, key: k, action } if *w == who() && *k == key() => Some(*action),
            _ => None,
        })
        .collect();
    assert_eq!(ops, [ServerAction::Pin(65_535), ServerAction::Drain], "only accepted actions: {records:?}");
    assert!(
        records
            .iter()
            .any(|r| r.entry == Entry::Decision(Decision::Set { key: key(), from: 51, to: 65_535 }))
    );
}

#[test]
fn an_override_outlives_its_agent_and_applies_when_it_comes_back() {
    let mut m = setup(AgentState::Live, 0);
    act(&mut m, ServerAction::Pin(40));
    // Silent from 10 s: quiesced at 15 s (0 beats the pin), removed at 70 s.
    m.handle_timeout(Time(15 * S));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 40, to: 0, .. }]), "{ev:?}");
    m.handle_timeout(Time(70 * S));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::RemoveRealServer { .. }]), "{ev:?}");
    let r = row(&m);
    assert_eq!((r.in_table, r.agent, r.pinned), (false, None, Some(40)), "kept for the pin");
    // Unpinning a server nobody has any more forgets it.
    let mut gone = setup(AgentState::Live, 0);
    act(&mut gone, ServerAction::Pin(40));
    gone.handle_timeout(Time(70 * S));
    events(&mut gone);
    gone.handle_operator(Time(71 * S), &who(), key(), ServerAction::Unpin).unwrap();
    assert!(events(&mut gone).is_empty() && !gone.knows(&key()));
    // The agent comes back: added at the pinned weight.
    m.handle_polled(Time(80 * S), &polled(), AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::AddRealServer { weight: 40, .. }]), "{ev:?}");
    // The kernel's weight changed by hand is put back by the next report.
    m.handle_table(
        Time(81 * S),
        &[VS],
        &[TableEntry { key: key(), weight: 3, forwarding: Forwarding::DirectRouting }],
    );
    m.handle_polled(Time(82 * S), &polled(), AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 3, to: 40, .. }]), "{ev:?}");
}

#[test]
fn a_server_held_before_a_restart_stays_out_until_returned() {
    let law = LawConfig { slow_start: Duration::ZERO, max_step: 0, ..LawConfig::default() };
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, law, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], &[]);
    assert!(!m.knows(&key()));
    m.handle_held(Time(1), key(), Forwarding::Tunnel, 12);
    assert!(events(&mut m).is_empty());
    let r = row(&m);
    assert_eq!((r.in_table, r.hold, r.weight), (false, Some(Hold::Maintenance), 0));
    // A rescan does not forget it; a report does not add it.
    m.handle_table(Time(2), &[VS], &[]);
    m.handle_polled(Time(3), &polled(), AdminState::Ready, Some(1000));
    assert!(events(&mut m).is_empty());
    assert_eq!(row(&m).agent.as_deref(), Some("agent-check:10.0.0.2:5555"));
    // Returned: its agent claims it now, so its next report adds it.
    m.handle_operator(Time(4), &who(), key(), ServerAction::Return).unwrap();
    assert!(events(&mut m).is_empty());
    m.handle_polled(Time(5), &polled(), AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    assert!(
        matches!(&ev[..], [MasterEvent::AddRealServer { weight: 100, forwarding: Forwarding::Tunnel, .. }]),
        "{ev:?}"
    );
    // Without an agent, return adds it back with the saved forwarding and weight.
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], &[]);
    m.handle_held(Time(1), key(), Forwarding::Tunnel, 12);
    m.handle_operator(Time(2), &who(), key(), ServerAction::Return).unwrap();
    let ev = events(&mut m);
    assert!(
        matches!(&ev[..], [MasterEvent::AddRealServer { weight: 12, forwarding: Forwarding::Tunnel, .. }]),
        "{ev:?}"
    );
}

#[test]
fn why_names_the_operator() {
    let why = Why::Operator { who: who(), action: ServerAction::Pin(5) };
    assert_eq!(why.to_string(), "operator alice from 192.0.2.9: pin 5");
}

#[test]
fn a_pin_comes_back_with_a_ready_agent_even_without_a_measurement() {
    let mut m = setup(AgentState::Live, 0);
    act(&mut m, ServerAction::Pin(30));
    m.handle_polled(Time(11 * S), &polled(), AdminState::Drain, None);
    assert_eq!(row(&m).weight, 0);
    events(&mut m);
    m.handle_polled(Time(12 * S), &polled(), AdminState::Ready, None);
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 0, to: 30, .. }]), "{ev:?}");
}
