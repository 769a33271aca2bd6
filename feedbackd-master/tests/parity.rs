//! Parity between the live master and the simulator's: a real `feedbackd-master --record`
//! with three real agents on loopback (dry-run backend, load from files), then its journal
//! replayed through `sim_core::feedback::replay`, which must make the same decisions, at
//! the same times for those a report or a goodbye caused, and at most 1 s earlier for those
//! silence caused (the live master's timer fires a little after the deadline; the
//! simulator's on it).
//!
//! The scenario runs once and both tests look at it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use feedbackd_proto::journal::{Decision, Entry, Record, parse_journal};
use feedbackd_proto::master::RsKey;
use feedbackd_proto::{Duration as ProtoDuration, Time};
use lvs_ipvs::Forwarding;
use lvs_ipvs::ServiceKey;
use nix::sys::signal::Signal;

const LIMIT: Duration = Duration::from_secs(20);
const SERVERS: [(&str, &str); 3] = [("rs1", "10.0.0.2"), ("rs2", "10.0.0.3"), ("rs3", "10.0.0.4")];
const QUIESCE_AFTER: ProtoDuration = ProtoDuration(1_000_000_000);
const REMOVE_AFTER: ProtoDuration = ProtoDuration(2_000_000_000);

/// What the scenario left: the journal and the master's log.
struct Run {
    path: PathBuf,
    records: Vec<Record>,
    log: Vec<String>,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(scenario)
}

fn write_load(path: &Path, capacity: f64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{capacity}\n")).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// A weight line of `agent` for a report of `capacity`.
fn reported(agent: &str, capacity: f64) -> impl Fn(&str) -> bool {
    let want = format!("(agent {agent}: capacity {capacity:.3}");
    move |l: &str| l.starts_with("feedbackd-master: weight ") && l.contains(&want)
}

/// Three agents whose loads change in rounds (several weight changes each, with smoothing,
/// a dead-band and a slow start), then one killed (quiesced, then removed), one stopped
/// (goodbye, then removed), one reporting to the end.
fn scenario() -> Run {
    let dir = tempdir("parity");
    let journal = dir.join("master.journal");
    let mut cmd = Command::new(master_bin());
    cmd.args(["--backend", "dry-run", "--service", "tcp:10.0.0.1:80"]);
    cmd.args(["--listen", "127.0.0.1:0", "--insecure", "--no-status", "--rescan-interval", "500ms"]);
    cmd.args(["--smoothing", "0.5", "--dead-band", "2", "--max-step", "0", "--slow-start", "600ms"]);
    cmd.args(["--quiesce-after", "1s", "--remove-after", "2s"]);
    cmd.arg("--record").arg(&journal);
    let mut m = Proc::spawn("master", cmd);
    let l = m.wait_for(0, LIMIT, "listening", |l| l.contains("listening on"));
    let listen = addr_after(&l, "listening on ");

    let loads: Vec<PathBuf> = SERVERS.iter().map(|(name, _)| dir.join(format!("{name}.load"))).collect();
    let mut agents = Vec::new();
    for ((name, addr), load) in SERVERS.iter().zip(&loads) {
        write_load(load, 0.9);
        let conf = agent_conf(&dir, name, &listen, addr, load, None);
        let mut cmd = Command::new(agent_bin());
        cmd.arg("--config").arg(conf);
        agents.push(Proc::spawn(name, cmd));
    }
    // Each is added at min_weight and climbs with the slow start's ceiling to 90.
    for (_, addr) in SERVERS {
        let add = format!("feedbackd-master: add TCP  10.0.0.1:80 -> {addr}:80 Masq weight 1 ");
        m.wait_for(0, LIMIT, "add", |l| l.starts_with(&add));
        let ramped = format!("10.0.0.1:80 -> {addr}:80: ");
        m.wait_for(0, LIMIT, "the end of the slow start", |l| l.contains(&ramped) && l.contains(" -> 90 ("));
    }
    // Each round changes every agent's load and waits for the weight line of its report:
    // every change is large enough for half of it (smoothing 0.5) to clear the dead-band.
    for round in [[0.3, 0.5, 0.6], [0.8, 0.1, 0.95], [0.15, 0.7, 0.2]] {
        let mark = m.mark();
        for (load, c) in loads.iter().zip(round) {
            write_load(load, c);
        }
        for ((name, _), c) in SERVERS.iter().zip(round) {
            m.wait_for(mark, LIMIT, &format!("{name} reporting {c}"), reported(name, c));
        }
    }

    let mark = m.mark();
    agents[0].signal(Signal::SIGKILL);
    agents[1].signal(Signal::SIGTERM);
    assert!(agents[1].wait_exit(LIMIT).success(), "{}", agents[1].output());
    write_load(&loads[2], 0.9);
    m.wait_for(mark, LIMIT, "rs2 goodbye", |l| l.contains("10.0.0.3:80: ") && l.contains("said goodbye"));
    m.wait_for(mark, LIMIT, "rs1 quiesced", |l| {
        l.contains("10.0.0.2:80: ") && l.contains("agent rs1: agent silent")
    });
    m.wait_for(mark, LIMIT, "rs3 reporting", reported("rs3", 0.9));
    for addr in ["10.0.0.2", "10.0.0.3"] {
        let remove = format!("feedbackd-master: remove TCP  10.0.0.1:80 -> {addr}:80 ");
        m.wait_for(mark, LIMIT, "remove", |l| l.starts_with(&remove));
    }
    m.signal(Signal::SIGTERM);
    assert!(m.wait_exit(LIMIT).success(), "{}", m.output());
    drop(agents);

    let text = std::fs::read_to_string(&journal).unwrap();
    let records = parse_journal(&text).unwrap_or_else(|e| panic!("{}: {e}", journal.display()));
    Run { path: journal, records, log: m.lines() }
}

fn rs(addr: &str) -> RsKey {
    let vs =
        ServiceKey::Addr { protocol: lvs_ipvs::Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
    RsKey { service: vs, addr: addr.parse().unwrap(), port: 80 }
}

/// The journal's decisions, each with whether a report or goodbye caused it (the record
/// before its run of decisions is one, at the same time) or silence did.
fn decisions(records: &[Record]) -> Vec<(Time, Decision, bool)> {
    let mut out = Vec::new();
    let mut cause: Option<&Record> = None;
    for r in records {
        match r.entry {
            Entry::Decision(d) => {
                let by_input = cause.is_some_and(|c| {
                    c.t == r.t && matches!(c.entry, Entry::Report { .. } | Entry::Goodbye { .. })
                });
                out.push((r.t, d, by_input));
            }
            _ => cause = Some(r),
        }
    }
    out
}

/// The master's log line for a decision, as `daemon.rs` writes it, up to its reason.
fn log_prefix(d: &Decision) -> String {
    match d {
        Decision::Add { key, weight } => format!("feedbackd-master: add {key} Masq weight {weight} ("),
        Decision::Set { key, from, to } => format!("feedbackd-master: weight {key}: {from} -> {to} ("),
        Decision::Remove { key } => format!("feedbackd-master: remove {key} ("),
    }
}

#[test]
fn the_journal_records_every_input_and_decision_and_agrees_with_the_log() {
    let run = run();
    let at = run.path.display();
    let records = &run.records;

    // The settings, then the table; the three agents connect and register with their address.
    let Entry::Start { law, quiesce_after, remove_after, .. } = &records[0].entry else {
        panic!("{at}: first record {:?}", records[0])
    };
    assert_eq!((law.smoothing, law.dead_band, law.max_step), (0.5, 2, 0), "{at}");
    assert_eq!(law.slow_start, ProtoDuration::from_millis(600), "{at}");
    assert_eq!((*quiesce_after, *remove_after), (QUIESCE_AFTER, REMOVE_AFTER), "{at}");
    assert!(matches!(&records[1].entry, Entry::Table { services, .. } if services.len() == 1), "{at}");
    let mut conn_of = Vec::new();
    for (name, addr) in SERVERS {
        let (conn, services) = records
            .iter()
            .find_map(|r| match &r.entry {
                Entry::Register { conn, agent, services, .. } if agent == name => Some((*conn, services)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{at}: no registration of {name}"));
        assert_eq!(services[0].address, Some(addr.parse().unwrap()), "{at}");
        assert_eq!(services[0].forwarding, Forwarding::Masq, "{at}");
        let connected = records
            .iter()
            .any(|r| matches!(r.entry, Entry::Connect { conn: c, peer } if c == conn && peer.is_loopback()));
        assert!(connected, "{at}: {name}'s connection");
        conn_of.push(conn);
    }
    let goodbye =
        records.iter().any(|r| matches!(r.entry, Entry::Goodbye { conn, .. } if conn == conn_of[1]));
    assert!(goodbye, "{at}: rs2's goodbye");
    for conn in &conn_of[..2] {
        let gone = records.iter().any(|r| matches!(r.entry, Entry::Disconnect { conn: c } if c == *conn));
        assert!(gone, "{at}: disconnect of {conn:?}");
    }
    assert!(!records.iter().any(|r| matches!(r.entry, Entry::ApplyFailed { .. })), "{at}");
    assert!(records.windows(2).all(|w| w[0].t <= w[1].t), "{at}: times never go back");

    // Every decision provoked: an add each; several weight changes each (two or more steps
    // of the slow start, three rounds of loads, smoothing; rs1 and rs2 also to 0 by silence
    // and goodbye); two removals.
    let ds = decisions(records);
    for (_, addr) in SERVERS {
        let key = rs(addr);
        let adds =
            ds.iter().filter(|(_, d, _)| matches!(d, Decision::Add { key: k, .. } if *k == key)).count();
        let sets =
            ds.iter().filter(|(_, d, _)| matches!(d, Decision::Set { key: k, .. } if *k == key)).count();
        assert_eq!(adds, 1, "{at}: adds of {addr}");
        assert!(sets >= 6, "{at}: {sets} weight changes of {addr}");
    }
    let mut removes: Vec<RsKey> = ds
        .iter()
        .filter_map(|(_, d, _)| if let Decision::Remove { key } = d { Some(*key) } else { None })
        .collect();
    removes.sort();
    assert_eq!(removes, [rs("10.0.0.2"), rs("10.0.0.3")], "{at}");

    // Silence caused exactly rs1's quiescing and the two removals, each soon after its
    // deadline: rs1's last report + quiesce_after, + remove_after; rs2's goodbye +
    // remove_after.
    let reported_last = records
        .iter()
        .filter(|r| matches!(r.entry, Entry::Report { conn, .. } if conn == conn_of[0]))
        .map(|r| r.t)
        .max()
        .unwrap();
    let goodbye_at = records.iter().find(|r| matches!(r.entry, Entry::Goodbye { .. })).map(|r| r.t).unwrap();
    let silent: Vec<(Time, Decision)> = ds.iter().filter(|(_, _, i)| !i).map(|(t, d, _)| (*t, *d)).collect();
    assert_eq!(silent.len(), 3, "{at}: {silent:?}");
    for (t, d) in &silent {
        let due = match *d {
            Decision::Set { key, to: 0, .. } if key == rs("10.0.0.2") => reported_last + QUIESCE_AFTER,
            Decision::Remove { key } if key == rs("10.0.0.2") => reported_last + REMOVE_AFTER,
            Decision::Remove { key } if key == rs("10.0.0.3") => goodbye_at + REMOVE_AFTER,
            other => panic!("{at}: {other:?} at {t} caused by silence?"),
        };
        let late = t.saturating_since(due);
        assert!(*t >= due && late < ProtoDuration::from_secs(1), "{at}: {d:?} at {t}, due {due}");
    }

    // The log says the same, in the same order.
    let logged: Vec<&String> = run
        .log
        .iter()
        .filter(|l| {
            l.starts_with("feedbackd-master: add ")
                || l.starts_with("feedbackd-master: weight ")
                || l.starts_with("feedbackd-master: remove ")
        })
        .collect();
    assert_eq!(logged.len(), ds.len(), "{at}: log:\n{}", run.log.join("\n"));
    for ((_, d, _), line) in ds.iter().zip(&logged) {
        assert!(line.starts_with(&log_prefix(d)), "{at}: {d:?} logged as {line:?}");
    }
}

#[test]
fn the_simulator_replays_the_journal_to_the_same_decisions() {
    let run = run();
    let at = run.path.display();
    let live = decisions(&run.records);
    let sim = sim_core::feedback::replay(&run.records).unwrap_or_else(|e| panic!("{at}: {e}"));
    let live_only: Vec<Decision> = live.iter().map(|(_, d, _)| *d).collect();
    let sim_only: Vec<Decision> = sim.iter().map(|(_, d)| *d).collect();
    assert_eq!(sim_only, live_only, "{at}: the simulator decided differently");
    for ((lt, d, by_input), (st, _)) in live.iter().zip(&sim) {
        if *by_input {
            assert_eq!(st, lt, "{at}: {d:?} (caused by a report or goodbye)");
        } else {
            assert!(
                st <= lt && lt.saturating_since(*st) <= ProtoDuration::from_secs(1),
                "{at}: {d:?} at {st} in the simulator, {lt} live"
            );
        }
    }
}
