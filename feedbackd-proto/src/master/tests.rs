//! The master's admission policy with hand-written frames: who may register, what each
//! agent may claim, and the bounds on servers and registrations.

use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::Time;

use super::*;
use crate::auth::Psk;
use crate::keys::{AgentKey, KeyTable, parse_keys};
use crate::wire::{Nonce, Register};
use lvs_ipvs::Protocol;

const VS: ServiceKey =
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
const K1: &str = "key-of-rs1-0123456789abcdef";
const K2: &str = "key-of-rs2-0123456789abcdef";
const MASTER_NONCE: Nonce = [1; 16];
const AGENT_NONCE: Nonce = [2; 16];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn psk(s: &str) -> Psk {
    Psk::from_file_contents(s.as_bytes()).unwrap()
}

fn spec(port: u16, address: Option<&str>) -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Tcp,
        port,
        vip: None,
        fwmark: None,
        forwarding: Forwarding::Masq,
        address: address.map(ip),
    }
}

fn keys() -> Auth {
    let text = format!("rs1 {K1} 10.0.0.2 tcp:80\nrs2 {K2} 10.0.0.3,10.0.7.0/24 *\n");
    Auth::Keys(parse_keys(&text).unwrap())
}

fn master(auth: Auth, table: &[TableEntry]) -> Master {
    let mut m = Master::new(MasterConfig { auth, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], table);
    m
}

/// A frame as an agent with `key` (or none) would send it as its `seq`-th.
fn frame(key: Option<&str>, seq: u64, msg: &Message) -> Vec<u8> {
    let session = key.map(|k| psk(k).session(&MASTER_NONCE, &AGENT_NONCE));
    wire::encode(msg, seq, session.as_ref())
}

fn register(id: &str, services: Vec<ServiceSpec>) -> Message {
    Message::Register(Register { nonce: AGENT_NONCE, agent_id: id.into(), interval_ms: 1000, services })
}

fn report(capacity: u16) -> Message {
    Message::Report(Report { admin: AdminState::Ready, capacity: vec![Some(capacity)], metrics: Vec::new() })
}

/// Connects `conn` from `peer`, sends `frames`, returns the events.
fn session(m: &mut Master, now: Time, conn: u64, peer: &str, frames: &[Vec<u8>]) -> Vec<MasterEvent> {
    m.handle_connect(now, ConnId(conn), ip(peer), MASTER_NONCE);
    for f in frames {
        m.handle_input(now, ConnId(conn), f);
    }
    while m.poll_transmit().is_some() {}
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn rejected(m: &Master, label: &str) -> u64 {
    m.counters().rejected.get(label).copied().unwrap_or(0)
}

fn closed(events: &[MasterEvent]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        MasterEvent::Close { reason, .. } => Some(reason.as_str()),
        _ => None,
    })
}

fn owner(m: &Master, addr: &str) -> Option<(Option<String>, u32)> {
    m.status(Time(0)).into_iter().find(|r| r.key.addr == ip(addr)).map(|r| (r.agent, r.weight))
}

#[test]
fn an_agent_with_its_own_key_registers_and_reports() {
    let mut m = master(keys(), &[]);
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, None)])), frame(Some(K1), 2, &report(500))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, MasterEvent::AddRealServer { agent, .. } if agent == "rs1")),
        "{ev:?}"
    );
    assert_eq!(owner(&m, "10.0.0.2").unwrap().0.as_deref(), Some("rs1"));
}

#[test]
fn an_unknown_agent_id_or_another_agents_key_is_refused_as_auth() {
    let mut m = master(keys(), &[]);
    // rs9 is in no line, whatever key it uses.
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs9", vec![spec(80, None)]))],
    );
    assert!(closed(&ev).unwrap().contains("unknown agent id \"rs9\""), "{ev:?}");
    // rs1 with rs2's key.
    let ev = session(
        &mut m,
        Time(0),
        2,
        "10.0.0.2",
        &[frame(Some(K2), 1, &register("rs1", vec![spec(80, None)]))],
    );
    assert!(closed(&ev).unwrap().contains("authentication tag does not match"), "{ev:?}");
    // No key at all.
    let ev =
        session(&mut m, Time(0), 3, "10.0.0.2", &[frame(None, 1, &register("rs1", vec![spec(80, None)]))]);
    assert!(closed(&ev).is_some(), "{ev:?}");
    assert_eq!(rejected(&m, "auth"), 3);
    assert_eq!(m.counters().registrations, 0);
    assert!(m.status(Time(0)).is_empty());
}

#[test]
fn the_default_config_accepts_nobody() {
    let mut m = Master::new(MasterConfig::default());
    m.handle_table(Time(0), &[VS], &[]);
    let ev =
        session(&mut m, Time(0), 1, "10.0.0.2", &[frame(None, 1, &register("rs1", vec![spec(80, None)]))]);
    assert!(closed(&ev).is_some(), "{ev:?}");
    assert_eq!(m.counters().registrations, 0);
}

#[test]
fn claims_outside_the_keys_line_are_refused() {
    let mut m = master(keys(), &[]);
    // Another address through `address =`.
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, Some("203.0.113.66"))]))],
    );
    assert!(closed(&ev).unwrap().contains("may not claim address 203.0.113.66"), "{ev:?}");
    // Its own address, but connecting from elsewhere without `address =`.
    let ev = session(
        &mut m,
        Time(0),
        2,
        "10.0.0.9",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, None)]))],
    );
    assert!(closed(&ev).unwrap().contains("may not claim address 10.0.0.9"), "{ev:?}");
    // A service its line does not list (one bad service refuses the registration).
    let ev = session(
        &mut m,
        Time(0),
        3,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, None), spec(443, None)]))],
    );
    assert!(closed(&ev).unwrap().contains("may not register service tcp:443"), "{ev:?}");
    assert_eq!(rejected(&m, "claim"), 3);
    assert!(m.status(Time(0)).is_empty(), "nothing claimed");
    // A network in the line: rs2 may claim 10.0.7.44 from anywhere.
    let ev = session(
        &mut m,
        Time(0),
        4,
        "192.0.2.7",
        &[frame(Some(K2), 1, &register("rs2", vec![spec(80, Some("10.0.7.44"))]))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
}

#[test]
fn an_adopted_server_is_claimed_only_by_an_agent_allowed_for_it() {
    let adopted = TableEntry {
        key: RsKey { service: VS, addr: ip("10.0.7.5"), port: 80 },
        weight: 7,
        forwarding: Forwarding::Local,
    };
    let mut m = master(keys(), &[adopted]);
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[
            frame(Some(K1), 1, &register("rs1", vec![spec(80, Some("10.0.7.5"))])),
            frame(Some(K1), 2, &report(0)),
        ],
    );
    assert!(closed(&ev).unwrap().contains("may not claim address 10.0.7.5"), "{ev:?}");
    assert_eq!(owner(&m, "10.0.7.5"), Some((None, 7)), "still adopted, weight untouched");
    let ev = session(
        &mut m,
        Time(0),
        2,
        "10.0.0.3",
        &[
            frame(Some(K2), 1, &register("rs2", vec![spec(80, Some("10.0.7.5"))])),
            frame(Some(K2), 2, &report(1000)),
        ],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
    assert_eq!(owner(&m, "10.0.7.5").unwrap().0.as_deref(), Some("rs2"));
}

#[test]
fn a_server_owned_by_one_agent_is_never_taken_over_by_another_id() {
    let mut m = master(Auth::Insecure, &[]);
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(None, 1, &register("rs1", vec![spec(80, None)])), frame(None, 2, &report(900))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
    let before = owner(&m, "10.0.0.2").unwrap();
    assert_eq!(before.0.as_deref(), Some("rs1"));
    // "evil" claims rs1's server through `address =`, then reports it drained.
    let ev = session(
        &mut m,
        Time(1),
        2,
        "127.0.0.1",
        &[frame(None, 1, &register("evil", vec![spec(80, Some("10.0.0.2"))])), frame(None, 2, &report(0))],
    );
    assert!(closed(&ev).unwrap().contains("agent rs1 has it"), "{ev:?}");
    assert!(ev.iter().all(|e| matches!(e, MasterEvent::Close { .. })), "{ev:?}");
    assert_eq!(owner(&m, "10.0.0.2"), Some(before), "rs1 keeps it and its weight");
    assert_eq!(rejected(&m, "claim"), 1);
    // After a rescan too: the bindings never move to another id.
    m.handle_table(
        Time(2),
        &[VS],
        &[TableEntry {
            key: RsKey { service: VS, addr: ip("10.0.0.2"), port: 80 },
            weight: 90,
            forwarding: Forwarding::Masq,
        }],
    );
    assert_eq!(owner(&m, "10.0.0.2").unwrap().0.as_deref(), Some("rs1"));
}

#[test]
fn an_agent_claims_at_most_max_servers_per_agent() {
    let vips: Vec<ServiceKey> = (0..100)
        .map(|i| ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)),
            port: 80,
        })
        .collect();
    let mut m = Master::new(MasterConfig {
        auth: Auth::Insecure,
        max_servers_per_agent: 64,
        ..MasterConfig::default()
    });
    m.handle_table(Time(0), &vips, &[]);
    let ev =
        session(&mut m, Time(0), 1, "10.0.0.2", &[frame(None, 1, &register("rs1", vec![spec(80, None)]))]);
    assert!(closed(&ev).unwrap().contains("claims 100 real servers; at most 64"), "{ev:?}");
    assert_eq!(rejected(&m, "servers"), 1);
    assert!(m.status(Time(0)).is_empty());
    // Within the bound at registration; a later rescan with more services stops at it.
    m.handle_table(Time(1), &vips[..50], &[]);
    let ev =
        session(&mut m, Time(1), 2, "10.0.0.2", &[frame(None, 1, &register("rs1", vec![spec(80, None)]))]);
    assert!(closed(&ev).is_none(), "{ev:?}");
    m.handle_table(Time(2), &vips, &[]);
    assert_eq!(m.status(Time(2)).len(), 64);
}

#[test]
fn a_burst_of_200_registrations_adds_at_most_the_bounded_number_of_servers() {
    let mut m = Master::new(MasterConfig {
        auth: Auth::Insecure,
        max_registrations_per_s: 20,
        registration_burst: 20,
        max_servers_per_agent: 4,
        ..MasterConfig::default()
    });
    let vips: Vec<ServiceKey> = (0..4)
        .map(|i| ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)),
            port: 80,
        })
        .collect();
    m.handle_table(Time(0), &vips, &[]);
    let mut added = 0;
    for i in 0..200u64 {
        let addr = format!("203.0.113.{}", i % 250);
        let ev = session(
            &mut m,
            Time(i * 1000),
            i,
            "127.0.0.1",
            &[
                frame(None, 1, &register(&format!("a{i}"), vec![spec(80, Some(&addr))])),
                frame(None, 2, &report(1000)),
            ],
        );
        added += ev.iter().filter(|e| matches!(e, MasterEvent::AddRealServer { .. })).count();
    }
    assert_eq!(m.counters().registrations, 20, "the burst");
    assert_eq!(rejected(&m, "rate"), 180);
    assert_eq!(added, 20 * 4, "20 agents × 4 services");
    // One second later the bucket has refilled at 20/s.
    let ev = session(
        &mut m,
        Time(1_200_000_000),
        1000,
        "127.0.0.1",
        &[frame(None, 1, &register("late", vec![spec(80, Some("198.51.100.1"))]))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
}

#[test]
fn refused_registrations_leave_no_journal_record() {
    let mut m = master(keys(), &[]);
    m.set_journal(Time(0), true);
    let _ = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, Some("203.0.113.66"))]))],
    );
    m.handle_disconnect(Time(0), ConnId(1));
    let _ = session(
        &mut m,
        Time(1),
        2,
        "10.0.0.2",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, None)]))],
    );
    let kinds: Vec<String> = std::iter::from_fn(|| m.poll_journal())
        .map(|r| r.to_line().split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["start", "connect", "register"]);
}

#[test]
fn a_key_table_built_in_code_works_like_a_parsed_one() {
    let mut t = KeyTable::default();
    t.insert("rs1".into(), AgentKey::anything(psk(K1)));
    let mut m = master(Auth::Keys(t), &[]);
    let ev = session(
        &mut m,
        Time(0),
        1,
        "192.0.2.1",
        &[frame(Some(K1), 1, &register("rs1", vec![spec(80, None)]))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
}

/// What lvsim exports for a firewall-mark service (`fwmark = 7`, `port = 0`) claims the
/// real server ipvsadm lists as `-a -f 7 -r 10.0.0.2:0`.
#[test]
fn a_firewall_mark_service_with_port_0_claims_the_marks_real_server() {
    let fwm = ServiceKey::Fwmark { mark: 7, ipv6: false };
    let existing = RsKey { service: fwm, addr: ip("10.0.0.2"), port: 0 };
    let entry = TableEntry { key: existing, weight: 1, forwarding: Forwarding::DirectRouting };
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS, fwm], &[entry]);
    let marked = ServiceSpec { fwmark: Some(7), forwarding: Forwarding::DirectRouting, ..spec(0, None) };
    let conf = crate::conf::parse(
        "director = 10.0.0.1\nservice = fwmark-7\nfwmark = 7\nport = 0\nforwarding = DR\n",
    )
    .unwrap();
    assert_eq!((conf.services[0].fwmark, conf.services[0].port), (marked.fwmark, marked.port));
    let ev = session(
        &mut m,
        Time(0),
        1,
        "10.0.0.2",
        &[frame(None, 1, &register("rs1", vec![marked])), frame(None, 2, &report(500))],
    );
    assert!(closed(&ev).is_none(), "{ev:?}");
    let rows = m.status(Time(0));
    let row = rows.iter().find(|r| r.key == existing).unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row.agent.as_deref(), Some("rs1"), "{rows:?}");
    assert!(!rows.iter().any(|r| r.key.service == VS), "the TCP service is not claimed: {rows:?}");
}
