//! Polled agents (HAProxy's agent-check): registered on their first answer, every answer a
//! report, silence judged as for connected agents, and no real server taken from another
//! agent.

use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::Time;

use super::*;
use crate::wire::{Nonce, Register};
use lvs_ipvs::Protocol;

const VS: ServiceKey =
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
const S: u64 = 1_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(addr: &str) -> RsKey {
    RsKey { service: VS, addr: ip(addr), port: 80 }
}

/// An agent-check agent at `addr`:5555 for its real server `addr`:80.
pub(super) fn polled(addr: &str) -> Polled {
    Polled {
        id: format!("agent-check:{addr}:5555"),
        peer: ip(addr),
        service: ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::DirectRouting,
            address: None,
        },
        interval_ms: 1000,
    }
}

/// No smoothing, dead-band, step limit or slow start: a capacity maps straight to a weight.
fn master() -> Master {
    let law = LawConfig {
        smoothing: 1.0,
        dead_band: 0,
        max_step: 0,
        slow_start: Duration::ZERO,
        ..LawConfig::default()
    };
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, law, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], &[]);
    m
}

fn events(m: &mut Master) -> Vec<MasterEvent> {
    while m.poll_transmit().is_some() {}
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn weight(m: &Master, addr: &str) -> Option<(u32, bool)> {
    m.status(Time(0)).into_iter().find(|r| r.key == key(addr)).map(|r| (r.weight, r.in_table))
}

#[test]
fn the_first_answer_registers_and_every_answer_is_a_report() {
    let mut m = master();
    let p = polled("10.0.0.2");
    m.handle_polled(Time(S), &p, AdminState::Ready, Some(500));
    let ev = events(&mut m);
    assert!(
        matches!(&ev[..], [MasterEvent::AddRealServer { key: k, weight: 51, agent, forwarding: Forwarding::DirectRouting, .. }]
            if *k == key("10.0.0.2") && *agent == p.id),
        "{ev:?}"
    );
    assert_eq!(m.counters().registrations, 1);
    m.handle_polled(Time(2 * S), &p, AdminState::Ready, Some(1000));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 51, to: 100, .. }]), "{ev:?}");
    assert_eq!(m.counters().registrations, 1, "registered once");
    assert_eq!(m.counters().reports, 2);
    let agents = m.agents(Time(2 * S));
    assert_eq!(agents.len(), 1);
    assert!(!agents[0].connected && agents[0].liveness == Liveness::Live, "{agents:?}");
    // A capacity above the scale is taken as full; drain sets 0.
    m.handle_polled(Time(3 * S), &p, AdminState::Ready, Some(u16::MAX));
    assert!(events(&mut m).is_empty());
    m.handle_polled(Time(4 * S), &p, AdminState::Drain, None);
    let ev = events(&mut m);
    assert!(
        matches!(&ev[..], [MasterEvent::SetWeight { to: 0, why: Why::Admin(AdminState::Drain), .. }]),
        "{ev:?}"
    );
}

#[test]
fn silence_quiesces_then_removes_and_a_later_answer_registers_again() {
    let mut m = master();
    let p = polled("10.0.0.2");
    m.handle_polled(Time(0), &p, AdminState::Ready, Some(1000));
    events(&mut m);
    // quiesce_after 5 s (more than 3 intervals of 1 s).
    assert_eq!(m.poll_timeout(), Some(Time(5 * S)));
    m.handle_timeout(Time(5 * S));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::SetWeight { to: 0, why: Why::Silent(_), .. }]), "{ev:?}");
    m.handle_timeout(Time(60 * S));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::RemoveRealServer { .. }]), "{ev:?}");
    assert!(m.agents(Time(60 * S)).is_empty());
    assert_eq!(weight(&m, "10.0.0.2"), None);
    m.handle_polled(Time(61 * S), &p, AdminState::Ready, Some(300));
    let ev = events(&mut m);
    assert!(matches!(&ev[..], [MasterEvent::AddRealServer { weight: 31, .. }]), "{ev:?}");
    assert_eq!(m.counters().registrations, 2);
}

#[test]
fn a_slow_poll_interval_is_not_silence() {
    let mut m = master();
    let mut p = polled("10.0.0.2");
    p.interval_ms = 4000;
    m.handle_polled(Time(0), &p, AdminState::Ready, Some(1000));
    events(&mut m);
    assert_eq!(m.poll_timeout(), Some(Time(12 * S)), "three intervals");
}

#[test]
fn a_polled_agent_never_takes_a_connected_agents_server_or_id() {
    let mut m = master();
    // rs1 connects and claims 10.0.0.2.
    let reg = Message::Register(Register {
        nonce: [2; 16],
        agent_id: "rs1".into(),
        interval_ms: 1000,
        services: vec![polled("10.0.0.2").service],
    });
    let nonce: Nonce = [1; 16];
    m.handle_connect(Time(0), ConnId(1), ip("10.0.0.2"), nonce);
    m.handle_input(Time(0), ConnId(1), &wire::encode(&reg, 1, None));
    events(&mut m);
    // A polled agent for the same server: registered, but it claims nothing.
    m.handle_polled(Time(S), &polled("10.0.0.2"), AdminState::Drain, Some(0));
    assert!(events(&mut m).is_empty(), "rs1's server untouched");
    let rows = m.status(Time(S));
    assert_eq!(rows[0].agent.as_deref(), Some("rs1"));
    // A polled agent under rs1's id is ignored and counted.
    let mut stolen = polled("10.0.0.3");
    stolen.id = "rs1".into();
    m.handle_polled(Time(S), &stolen, AdminState::Ready, Some(1000));
    assert!(events(&mut m).is_empty());
    assert_eq!(m.counters().rejected.get("claim"), Some(&1));
    // A connection under the polled agent's id is refused.
    let reg = Message::Register(Register {
        nonce: [2; 16],
        agent_id: polled("10.0.0.2").id,
        interval_ms: 1000,
        services: vec![polled("10.0.0.4").service],
    });
    m.handle_connect(Time(S), ConnId(2), ip("10.0.0.4"), nonce);
    m.handle_input(Time(S), ConnId(2), &wire::encode(&reg, 1, None));
    let ev = events(&mut m);
    assert!(
        ev.iter()
            .any(|e| matches!(e, MasterEvent::Close { reason, .. } if reason.contains("polled agent-check"))),
        "{ev:?}"
    );
}

#[test]
fn polled_answers_are_journalled_and_read_back() {
    let mut m = master();
    m.set_journal(Time(0), true);
    let p = polled("10.0.0.2");
    m.handle_polled(Time(S), &p, AdminState::Maint, None);
    let records: Vec<Record> = std::iter::from_fn(|| m.poll_journal()).collect();
    let polled_entry = Entry::Polled { polled: p, admin: AdminState::Maint, capacity: None };
    assert_eq!(records[1].entry, polled_entry);
    let line = records[1].to_line();
    assert!(line.starts_with("1000000000 polled agent=agent-check:10.0.0.2:5555 peer=10.0.0.2 "), "{line}");
    assert_eq!(Record::parse_line(&line).unwrap(), records[1]);
}
