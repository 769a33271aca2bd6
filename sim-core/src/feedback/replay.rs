//! Replaying a live master's journal through the simulator's master.

use std::collections::BTreeMap;

use feedbackd_proto::agent::{AgentConfig, Sample};
use feedbackd_proto::journal::{Decision, Entry, Record};
use feedbackd_proto::keys::Auth;
use feedbackd_proto::master::{ConnId, MasterConfig, MasterEvent, TableEntry};
use feedbackd_proto::wire::CAPACITY_SCALE;
use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Time};
use rand::SeedableRng;

use super::{AgentSpec, Host, Loop};
use crate::model::config::FeedbackLink;

/// A journal that cannot be replayed: which record, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("journal record {index}: {message}")]
pub struct ReplayError {
    /// Index of the record at fault (0-based; the journal's line number minus one).
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Replays a live master's journal through the simulator's master: the recorded tables,
/// connections, registrations, reports, goodbyes and disconnections are fed, at their
/// recorded times, to the simulator's agents over an ideal link (no delay: an agent
/// registers at the instant it connects); returns the simulated master's decisions with
/// their times, to compare with the journal's own `Decision` records.
///
/// A change the live master could not apply (`apply-failed`) is reported to the replayed
/// master at the same time, as the daemon did; so is each answer of a polled agent-check
/// agent (`polled`), each operator action (`operator`, `held`; a `note` is only for the
/// record).
///
/// The replayed master runs the journal's settings (`Start`, the first record) without a
/// key and without the admission bounds: authentication, claims and the registration rate
/// decide which frames reach the master, not what it does with them, and the journal holds
/// only registrations that were admitted (a connection is journalled when it registers). Timers run between records, so silence
/// is detected at its deadline; nothing runs after the last record (the live master
/// stopped there). A connection that never registers plays no part.
///
/// `records` is one run. A journal file holds one run per start of the master, appended;
/// `feedbackd_proto::journal_file::parse_runs` splits it (and skips a crash's torn line).
pub fn replay(records: &[Record]) -> Result<Vec<(Time, Decision)>, ReplayError> {
    let fail = |index: usize, message: String| ReplayError { index, message };
    let Some(Record {
        entry: Entry::Start { law, quiesce_after, remove_after, register_timeout, max_servers_per_agent },
        ..
    }) = records.first()
    else {
        return Err(fail(0, "the journal must open with the master's settings (`start`)".into()));
    };
    law.validate().map_err(|e| fail(0, format!("weight law: {e}")))?;
    let config = MasterConfig {
        auth: Auth::Insecure,
        max_registrations_per_s: 0,
        max_servers_per_agent: max_servers_per_agent.unwrap_or(usize::MAX),
        law: *law,
        quiesce_after: *quiesce_after,
        remove_after: *remove_after,
        register_timeout: *register_timeout,
        ..MasterConfig::default()
    };

    // One simulated agent per connection that registers, from where it connected.
    let mut peers = BTreeMap::new();
    let mut agent_of: BTreeMap<ConnId, usize> = BTreeMap::new();
    let mut specs = Vec::new();
    let mut last = Time::ZERO;
    for (i, r) in records.iter().enumerate() {
        if i > 0 && matches!(r.entry, Entry::Start { .. }) {
            return Err(fail(
                i,
                "a second `start`: the journal holds several runs; split them with \
                 feedbackd_proto::journal_file::parse_runs and replay each"
                    .into(),
            ));
        }
        if r.t < last {
            return Err(fail(i, format!("time {} is before the previous record's {}", r.t, last)));
        }
        last = r.t;
        match &r.entry {
            Entry::Connect { conn, peer } => {
                let again = peers.insert(*conn, *peer).is_some();
                if again {
                    return Err(fail(i, format!("connection {} connects twice", conn.0)));
                }
            }
            Entry::Register { conn, agent, interval_ms, services } => {
                let Some(&addr) = peers.get(conn) else {
                    return Err(fail(i, format!("connection {} registers before connecting", conn.0)));
                };
                if services.is_empty() || !feedbackd_proto::wire::valid_agent_id(agent) {
                    return Err(fail(i, format!("registration of {agent:?} is not one an agent can send")));
                }
                agent_of.insert(*conn, specs.len());
                specs.push(AgentSpec {
                    config: AgentConfig {
                        agent_id: agent.clone(),
                        services: services.clone(),
                        interval: Duration::from_millis(u64::from(*interval_ms)),
                        psk: None,
                        // The ideal link answers at once: the agent never waits.
                        master_timeout: Duration::from_secs(1 << 30),
                    },
                    director: 0,
                    server: specs.len(),
                    addr,
                });
            }
            _ => {}
        }
    }

    let link = FeedbackLink { latency: Duration::ZERO, loss: 0.0, ..FeedbackLink::default() };
    let mut fb = Loop::new(vec![(config, None)], specs, link, crate::rng::Rng::seed_from_u64(0));
    fb.reconnect = false;
    let mut host = Journal;
    for (i, r) in records.iter().enumerate() {
        let t = r.t;
        if t > Time::ZERO {
            fb.run_until(Time(t.0 - 1), &mut host);
        }
        let agent = |conn: &ConnId| {
            agent_of
                .get(conn)
                .copied()
                .ok_or_else(|| fail(i, format!("connection {} never registered", conn.0)))
        };
        match &r.entry {
            Entry::Start { .. } | Entry::Register { .. } | Entry::Note { .. } | Entry::Decision(_) => {}
            Entry::Operator { who, key, action } => {
                fb.with_master(0, t, &mut host, |m| m.handle_operator(t, who, *key, *action)).map_err(
                    |e| fail(i, format!("the live master accepted this action, the replay refuses it: {e}")),
                )?;
            }
            Entry::Held { key, forwarding, weight } => {
                fb.with_master(0, t, &mut host, |m| m.handle_held(t, *key, *forwarding, *weight));
            }
            Entry::Table { services, entries } => fb.handle_table(0, t, services, entries, &mut host),
            Entry::ApplyFailed { key } => fb.apply_failed(0, t, *key, &mut host),
            Entry::Polled { polled, admin, capacity } => {
                fb.polled(0, t, (polled, *admin, *capacity), &mut host);
            }
            Entry::Connect { conn, .. } => {
                if let Some(&a) = agent_of.get(conn) {
                    fb.connect(a, t);
                }
            }
            Entry::Report { conn, admin, capacity, metrics } => {
                let a = agent(conn)?;
                if capacity.len() != fb.agents[a].spec.config.services.len() {
                    return Err(fail(i, "a report's capacities do not match the registration".into()));
                }
                let sample = Sample {
                    admin: *admin,
                    capacity: capacity
                        .iter()
                        .map(|c| c.map(|c| f64::from(c) / f64::from(CAPACITY_SCALE)))
                        .collect(),
                    metrics: metrics.clone(),
                };
                fb.sample(a, t, sample);
            }
            Entry::Goodbye { conn, reason } => fb.goodbye(agent(conn)?, t, reason),
            Entry::Disconnect { conn } => {
                if let Some(&a) = agent_of.get(conn) {
                    fb.kill(a, t);
                }
            }
        }
        fb.run_until(t, &mut host);
    }
    Ok(fb.decisions().iter().map(|&(t, _, d)| (t, d)).collect())
}

/// The replay's host: the journal's tables are fed directly, changes need not be applied
/// anywhere, and measurements come from the journal's reports.
struct Journal;

impl Host for Journal {
    fn table(&mut self, _director: usize, _now: Time) -> (Vec<ServiceKey>, Vec<TableEntry>) {
        (Vec::new(), Vec::new())
    }

    fn apply(&mut self, _director: usize, _now: Time, _event: &MasterEvent) -> Result<(), String> {
        Ok(())
    }

    fn sample(&mut self, _server: usize, _now: Time) -> Sample {
        unreachable!("a replay has no measurement ticks")
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use feedbackd_proto::master::{Master, RsKey};
    use feedbackd_proto::types::{AdminState, ServiceSpec};
    use lvs_ipvs::{Forwarding, Protocol};
    use lvs_sched::feedback::LawConfig;

    use super::*;

    const S: u64 = 1_000_000_000;
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const RIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11));

    fn at(t: u64, entry: Entry) -> Record {
        Record { t: Time(t), entry }
    }

    fn journal() -> Vec<Record> {
        let law = LawConfig {
            smoothing: 1.0,
            dead_band: 0,
            max_step: 0,
            slow_start: Duration::ZERO,
            ..LawConfig::default()
        };
        let service = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
        let key = RsKey { service, addr: RIP, port: 80 };
        let spec = ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::DirectRouting,
            address: None,
        };
        let report = |c: u16| Entry::Report {
            conn: ConnId(7),
            admin: AdminState::Ready,
            capacity: vec![Some(c)],
            metrics: vec![],
        };
        vec![
            at(
                0,
                Entry::Start {
                    law,
                    quiesce_after: Duration::from_secs(5),
                    remove_after: Duration::from_secs(60),
                    register_timeout: Duration::from_secs(10),
                    max_servers_per_agent: None,
                },
            ),
            at(
                1,
                Entry::Table {
                    services: vec![service],
                    entries: vec![TableEntry { key, weight: 1, forwarding: Forwarding::DirectRouting }],
                },
            ),
            at(S, Entry::Connect { conn: ConnId(7), peer: RIP }),
            at(
                S + 1000,
                Entry::Register {
                    conn: ConnId(7),
                    agent: "rs1".into(),
                    interval_ms: 1000,
                    services: vec![spec],
                },
            ),
            at(2 * S, report(500)),
            at(2 * S, Entry::Decision(Decision::Set { key, from: 1, to: 51 })),
            at(3 * S, report(1000)),
            at(3 * S, Entry::Decision(Decision::Set { key, from: 51, to: 100 })),
            at(
                10 * S,
                Entry::Table {
                    services: vec![service],
                    entries: vec![TableEntry { key, weight: 0, forwarding: Forwarding::DirectRouting }],
                },
            ),
        ]
    }

    /// 1 + 99 × 0.5 = 50.5, rounded half away from zero: 51; then 100; then silence from
    /// 3 s quiesces the server at 3 + 5 = 8 s, a decision the journal has not recorded
    /// here (it is the replay's own).
    #[test]
    fn hand_computed_decisions() {
        let key = RsKey {
            service: ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            addr: RIP,
            port: 80,
        };
        let got = replay(&journal()).expect("replays");
        assert_eq!(
            got,
            [
                (Time(2 * S), Decision::Set { key, from: 1, to: 51 }),
                (Time(3 * S), Decision::Set { key, from: 51, to: 100 }),
                (Time(8 * S), Decision::Set { key, from: 100, to: 0 }),
            ]
        );
    }

    /// Today's masters journal a connection when it registers (older ones when it was
    /// accepted, as `journal()` has it): both replay to the same decisions.
    #[test]
    fn a_connection_journalled_at_its_registration_replays_the_same() {
        let mut j = journal();
        j[2].t = Time(S + 1000);
        if let Entry::Start { max_servers_per_agent, .. } = &mut j[0].entry {
            *max_servers_per_agent = Some(64);
        }
        assert_eq!(replay(&j).expect("replays"), replay(&journal()).expect("replays"));
    }

    /// A journal file as `--record` leaves it after a crash and a restart: two runs
    /// appended, the first cut off mid-line. Each run replays on its own.
    #[test]
    fn appended_runs_replay_each_on_its_own() {
        let lines: Vec<String> = journal().iter().map(Record::to_line).collect();
        let text = format!("{}\n10000000001 report conn=7 adm\n{}\n", lines.join("\n"), lines.join("\n"));
        let runs = feedbackd_proto::journal_file::parse_runs(&text).expect("parses");
        assert_eq!(runs.torn, [lines.len() + 1]);
        assert_eq!(runs.runs.len(), 2);
        let single = replay(&journal()).unwrap();
        for run in &runs.runs {
            assert_eq!(run, &journal());
            assert_eq!(replay(run).unwrap(), single);
        }
        let all: Vec<Record> = runs.runs.concat();
        assert!(replay(&all).unwrap_err().to_string().contains("several runs"));
    }

    #[test]
    fn bad_journals_name_the_record() {
        let mut j = journal();
        j.remove(0);
        assert_eq!(replay(&j).unwrap_err().index, 0);
        let mut j = journal();
        j.swap(2, 4);
        let e = replay(&j).unwrap_err();
        assert_eq!(e.index, 3, "{e}");
        let mut j = journal();
        j.remove(2);
        let e = replay(&j).unwrap_err();
        assert!(e.to_string().contains("registers before connecting"), "{e}");
    }

    /// A live master driven by `inputs` (each called at its time, after the timers due
    /// before it), journalling: its journal, and the decisions it recorded.
    /// An input to a live master, at a time [ns].
    type Input = (u64, Box<dyn Fn(&mut Master, Time)>);

    fn live(inputs: &[Input]) -> Vec<Record> {
        let law = LawConfig { slow_start: Duration::from_secs(4), ..LawConfig::default() };
        let mut m = Master::new(MasterConfig { law, ..MasterConfig::default() });
        m.set_journal(Time::ZERO, true);
        let mut journal = Vec::new();
        for (t, input) in inputs {
            let now = Time(*t);
            while let Some(due) = m.poll_timeout().filter(|&d| d <= now) {
                m.handle_timeout(due);
                while m.poll_event().is_some() {}
            }
            input(&mut m, now);
            while m.poll_event().is_some() {}
            journal.extend(std::iter::from_fn(|| m.poll_journal()));
        }
        journal.extend(std::iter::from_fn(|| m.poll_journal()));
        journal
    }

    fn recorded(journal: &[Record]) -> Vec<(Time, Decision)> {
        journal
            .iter()
            .filter_map(|r| match r.entry {
                Entry::Decision(d) => Some((r.t, d)),
                _ => None,
            })
            .collect()
    }

    /// The agent-check agent (polled every 500 ms) of the real server RIP:80, NAT.
    fn polled_agent() -> feedbackd_proto::master::Polled {
        let service = ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::Masq,
            address: None,
        };
        let id = "agent-check:10.0.0.11:5555".into();
        feedbackd_proto::master::Polled { id, peer: RIP, service, interval_ms: 500 }
    }

    /// Polled agents' answers, their silence (quiesced, removed) and their return replay to
    /// the live master's own decisions.
    #[test]
    fn polled_answers_replay_to_the_live_masters_decisions() {
        let service = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
        let table = move |m: &mut Master, now: Time| m.handle_table(now, &[service], &[]);
        let p = polled_agent();
        let answer = |t: u64, admin: AdminState, c: Option<u16>| -> Input {
            let p = p.clone();
            (t, Box::new(move |m: &mut Master, now: Time| m.handle_polled(now, &p, admin, c)))
        };
        let journal = live(&[
            (1, Box::new(table)),
            answer(S, AdminState::Ready, Some(900)),
            answer(2 * S, AdminState::Ready, Some(200)),
            answer(3 * S, AdminState::Drain, None),
            answer(4 * S, AdminState::Ready, Some(700)),
            // Silent from 4 s: quiesced at 9 s, removed at 64 s; back at 70 s.
            answer(70 * S, AdminState::Ready, Some(1000)),
            (80 * S, Box::new(table)),
        ]);
        let want = recorded(&journal);
        assert!(want.len() >= 6, "{want:?}");
        assert!(
            want.iter().any(|(t, d)| *t == Time(64 * S) && matches!(d, Decision::Remove { .. })),
            "{want:?}"
        );
        assert_eq!(replay(&journal).expect("replays"), want);
    }

    /// The operator's actions (drain, pin, maintenance, return, a server held from before a
    /// restart) on an agent's server and on an adopted one replay to the live master's
    /// decisions; a `note` changes nothing.
    #[test]
    fn operator_actions_replay_to_the_live_masters_decisions() {
        use feedbackd_proto::types::{ServerAction, Who};
        let service = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
        let adopted = RsKey { service, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)), port: 80 };
        let held = RsKey { service, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 98)), port: 80 };
        let agents = RsKey { service, addr: RIP, port: 80 };
        let entry = TableEntry { key: adopted, weight: 9, forwarding: Forwarding::Masq };
        let table = move |m: &mut Master, now: Time| m.handle_table(now, &[service], &[entry]);
        let p = polled_agent();
        let answer = |t: u64, c: u16| -> Input {
            let p = p.clone();
            (
                t,
                Box::new(move |m: &mut Master, now: Time| {
                    m.handle_polled(now, &p, AdminState::Ready, Some(c))
                }),
            )
        };
        let op = |t: u64, key: RsKey, action: ServerAction| -> Input {
            let who = Who { user: "alice".into(), address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)) };
            (t, Box::new(move |m: &mut Master, now: Time| m.handle_operator(now, &who, key, action).unwrap()))
        };
        let journal = live(&[
            (1, Box::new(table)),
            (2, Box::new(move |m: &mut Master, now: Time| m.handle_held(now, held, Forwarding::Tunnel, 4))),
            answer(S, 900),
            op(S + 1, agents, ServerAction::Pin(40)),
            answer(2 * S, 200),
            op(2 * S + 1, adopted, ServerAction::Drain),
            op(3 * S, agents, ServerAction::Maintenance),
            answer(3 * S + 1, 800),
            op(4 * S, agents, ServerAction::Return),
            op(4 * S + 1, held, ServerAction::Return),
            answer(5 * S, 700),
            op(6 * S, agents, ServerAction::Unpin),
            op(6 * S + 1, adopted, ServerAction::Maintenance),
            op(7 * S, adopted, ServerAction::Return),
            answer(7 * S + 1, 100),
            // Silent: quiesced at 12 s, removed at 67 s.
            (80 * S, Box::new(table)),
        ]);
        let want = recorded(&journal);
        let ops =
            journal.iter().filter(|r| matches!(r.entry, Entry::Operator { .. } | Entry::Held { .. })).count();
        assert_eq!(ops, 9, "{journal:?}");
        assert!(want.len() >= 10, "{want:?}");
        assert_eq!(replay(&journal).expect("replays"), want);
        // A journal whose action the replay refuses names the record.
        let mut bad = journal.clone();
        let i = bad.iter().position(|r| matches!(r.entry, Entry::Operator { .. })).unwrap();
        bad.insert(i, bad[i].clone());
        let e = replay(&bad).unwrap_err();
        assert_eq!(e.index, i + 1, "{e}");
        assert!(e.message.contains("already pinned at 40"), "{e}");
    }

    /// One step of a random session with the operator.
    #[derive(Clone, Debug)]
    enum Step {
        /// Polled agent 0 or 1 answers.
        Answer(usize, AdminState, Option<u16>),
        /// The operator acts on server 0..4 (the agents' two, an adopted one, an unknown one).
        Op(usize, feedbackd_proto::types::ServerAction),
        /// A server held from before a restart.
        Held(usize, u32),
        /// The table is read (the kernel as the master's changes left it).
        Table,
        /// Time passes [s].
        Wait(u64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use feedbackd_proto::types::ServerAction;
        use proptest::prelude::*;
        let admin = prop_oneof![Just(AdminState::Ready), Just(AdminState::Drain), Just(AdminState::Maint)];
        let action = prop_oneof![
            Just(ServerAction::Drain),
            Just(ServerAction::Maintenance),
            Just(ServerAction::Return),
            (0u32..70_000).prop_map(ServerAction::Pin),
            Just(ServerAction::Unpin),
        ];
        prop_oneof![
            4 => (0..2usize, admin, proptest::option::of(0u16..=1000)).prop_map(|(a, ad, c)| Step::Answer(a, ad, c)),
            4 => (0..4usize, action).prop_map(|(k, a)| Step::Op(k, a)),
            1 => (0..4usize, 0u32..200).prop_map(|(k, w)| Step::Held(k, w)),
            1 => Just(Step::Table),
            2 => (0u64..80).prop_map(Step::Wait),
        ]
    }

    /// The precedence holds after every step: maintenance is out of the table, a drain at
    /// 0, a pin at its weight when nothing above it holds the server.
    fn check_precedence(m: &Master, now: Time) {
        use feedbackd_proto::master::{Hold, Liveness};
        let agents = m.agents(now);
        for r in m.status(now) {
            match r.hold {
                Some(Hold::Maintenance) => assert!(!r.in_table, "{r:?}"),
                Some(Hold::Drain) => assert!(!r.in_table || r.weight == 0, "{r:?}"),
                None => {
                    let agent_ready = match &r.agent {
                        None => true,
                        Some(id) => agents.iter().any(|a| {
                            a.id == *id && a.liveness == Liveness::Live && a.admin == AdminState::Ready
                        }),
                    };
                    if let (Some(n), true, true) = (r.pinned, r.in_table, agent_ready) {
                        assert_eq!(r.weight, n, "{r:?}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 200, ..Default::default() })]

        /// Random sessions of agent answers, operator actions, held servers, rescans and
        /// silence: the precedence holds after every step, and the journal replays to the
        /// live master's decisions.
        #[test]
        fn random_operator_sessions_keep_the_precedence_and_replay(steps in proptest::collection::vec(step(), 1..60)) {
            use feedbackd_proto::master::Polled;
            use feedbackd_proto::types::Who;
            let service = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };
            let addr = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            let keys = [11, 12, 99, 50].map(|i| RsKey { service, addr: addr(i), port: 80 });
            let polled = [11, 12].map(|i| Polled {
                id: format!("agent-check:10.0.0.{i}:5555"),
                peer: addr(i),
                service: ServiceSpec { protocol: Protocol::Tcp, port: 80, vip: None, fwmark: None, forwarding: Forwarding::Masq, address: None },
                interval_ms: 1000,
            });
            let who = Who { user: "op".into(), address: addr(1) };
            let mut kernel: BTreeMap<RsKey, (u32, Forwarding)> = BTreeMap::from([(keys[2], (9, Forwarding::Masq))]);
            let mut m = Master::new(MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() });
            m.set_journal(Time::ZERO, true);
            let mut journal = Vec::new();
            let mut now = Time(1);
            let table = |kernel: &BTreeMap<RsKey, (u32, Forwarding)>| -> Vec<TableEntry> {
                kernel.iter().map(|(&key, &(weight, forwarding))| TableEntry { key, weight, forwarding }).collect()
            };
            m.handle_table(now, &[service], &table(&kernel));
            for s in steps {
                now += Duration::from_millis(100);
                if let Step::Wait(secs) = s {
                    now += Duration::from_secs(secs);
                }
                while let Some(due) = m.poll_timeout().filter(|&d| d <= now) {
                    m.handle_timeout(due);
                    apply(&mut m, &mut kernel);
                    check_precedence(&m, due);
                }
                match s {
                    Step::Answer(a, admin, c) => m.handle_polled(now, &polled[a], admin, c),
                    Step::Op(k, action) => {
                        let _ = m.handle_operator(now, &who, keys[k], action);
                    }
                    Step::Held(k, w) => m.handle_held(now, keys[k], Forwarding::Masq, w),
                    Step::Table => m.handle_table(now, &[service], &table(&kernel)),
                    Step::Wait(_) => {}
                }
                apply(&mut m, &mut kernel);
                check_precedence(&m, now);
                journal.extend(std::iter::from_fn(|| m.poll_journal()));
            }
            now += Duration::from_millis(100);
            m.handle_table(now, &[service], &table(&kernel));
            journal.extend(std::iter::from_fn(|| m.poll_journal()));
            let want = recorded(&journal);
            proptest::prop_assert_eq!(replay(&journal).expect("replays"), want);
        }
    }

    /// Applies the master's events to a kernel table, as the daemon does.
    fn apply(m: &mut Master, kernel: &mut BTreeMap<RsKey, (u32, Forwarding)>) {
        while let Some(ev) = m.poll_event() {
            match ev {
                MasterEvent::AddRealServer { key, forwarding, weight, .. } => {
                    assert!(kernel.insert(key, (weight, forwarding)).is_none(), "added twice: {key}");
                }
                MasterEvent::SetWeight { key, from, to, .. } => {
                    let e = kernel.get_mut(&key).expect("set on a server in the table");
                    assert_eq!(e.0, from, "{key}");
                    e.0 = to;
                }
                MasterEvent::RemoveRealServer { key, .. } => {
                    assert!(kernel.remove(&key).is_some(), "removed twice: {key}");
                }
                MasterEvent::Registered { .. } | MasterEvent::Close { .. } => {}
            }
        }
    }
}
