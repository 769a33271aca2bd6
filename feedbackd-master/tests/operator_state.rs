//! The console's changes applied by the daemon loop (without HTTP: through
//! `Settings::console_requests`, as the console's server sends them), over the dry-run
//! backend on loopback; then the master restarted with the same `--state-file` on a fresh
//! table, and the overrides and services re-applied. Both runs' journals replay through the
//! simulator's master to the same decisions.
//!
//! One test per process for the in-process daemon: it is stopped with SIGTERM, as a service
//! manager stops it.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use feedbackd_master::console::snapshot::ServerRow;
use feedbackd_master::console::{Change, ConsoleRequest, Snapshot};
use feedbackd_master::daemon::{Settings, run};
use feedbackd_master::ipvs::{Backend, BackendKind, DestRow, dest, service_config};
use feedbackd_master::record::JournalFile;
use feedbackd_master::state::{State, StateFile};
use feedbackd_proto::admission::AdmissionConfig;
use feedbackd_proto::journal::{Decision, Entry, Record};
use feedbackd_proto::journal_file::{Rotation, parse_runs};
use feedbackd_proto::keys::Auth;
use feedbackd_proto::master::{Hold, MasterConfig, StatusRow};
use feedbackd_proto::types::{RsKey, ServerAction, Who, parse_rs_key, parse_service};
use lvs_ipvs::{Forwarding, SchedulerKind, ServiceConfig};
use tokio::sync::{mpsc, oneshot};

/// Changes timed in the second run.
const CHANGES: u32 = 200;

/// How long any one step may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

fn rs(addr: &str) -> RsKey {
    parse_rs_key(&format!("tcp:10.0.0.1:80/{addr}:80")).unwrap()
}

fn admin() -> Who {
    Who { user: "alice".into(), address: "192.0.2.9".parse::<IpAddr>().unwrap() }
}

/// A dry-run "kernel" with tcp:10.0.0.1:80 and three real servers: .2 weight 5, .3 weight
/// 7, .4 weight 9 with an upper threshold of 100.
fn kernel() -> Backend {
    let svc = parse_service("tcp:10.0.0.1:80").unwrap();
    let mut b =
        Backend::open(BackendKind::DryRun, &[(svc, service_config(&svc, SchedulerKind::Wlc))]).unwrap();
    for (a, w) in [("10.0.0.2", 5), ("10.0.0.3", 7), ("10.0.0.4", 9)] {
        let mut d = dest(a.parse().unwrap(), 80, Forwarding::Masq, w);
        if w == 9 {
            d.u_threshold = 100;
        }
        b.add_real_server(&svc, &d).unwrap();
    }
    b
}

fn settings(state: &Path, journal: &Path, console: mpsc::Receiver<ConsoleRequest>) -> Settings {
    let (record, _) = JournalFile::open(journal, Rotation { max_bytes: 0, keep: 1 }).unwrap();
    Settings {
        master: MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() },
        record: Some(record),
        admission: AdmissionConfig { allow_from: Vec::new(), max_connections: 16, max_per_source: 4 },
        max_queued_bytes: 65_536,
        agent_checks: Vec::new(),
        listen: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        status_listen: None,
        rescan_interval: Duration::from_secs(3600),
        state: Some(StateFile::load(state).unwrap()),
        console_requests: Some(console),
        console: None,
    }
}

/// A running master: its console queue and its task.
struct Master {
    tx: mpsc::Sender<ConsoleRequest>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Master {
    fn start(state: &Path, journal: &Path) -> Master {
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(settings(state, journal, rx), kernel()));
        Master { tx, task }
    }

    async fn change(&self, change: Change) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        let req = ConsoleRequest::Change { who: admin(), change, reply };
        self.tx.send(req).await.expect("the loop runs");
        tokio::time::timeout(LIMIT, rx).await.expect("answered in time").expect("answered")
    }

    async fn server(&self, key: RsKey, action: ServerAction) -> Result<String, String> {
        self.change(Change::Server { key, action }).await
    }

    async fn snapshot(&self) -> Arc<Snapshot> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(ConsoleRequest::Snapshot(reply)).await.expect("the loop runs");
        tokio::time::timeout(LIMIT, rx).await.expect("answered in time").expect("answered")
    }

    async fn server_row(&self, key: RsKey) -> ServerRow {
        let snap = self.snapshot().await;
        let row = snap.rows.iter().find(|r| r.status.key == key).cloned();
        row.unwrap_or_else(|| panic!("{key} in {:?}", snap.rows))
    }

    async fn row(&self, key: RsKey) -> StatusRow {
        self.server_row(key).await.status
    }

    /// What the snapshot shows of every server: the master's and the kernel's rows.
    async fn shown(&self) -> Vec<(StatusRow, Option<DestRow>)> {
        self.snapshot().await.rows.iter().map(|r| (r.status.clone(), r.kernel)).collect()
    }

    /// SIGTERM (the loop's signal handlers are set up: it answered), then its end.
    async fn stop(self) {
        self.snapshot().await;
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM).unwrap();
        let end = tokio::time::timeout(LIMIT, self.task).await.expect("stops in time");
        end.expect("did not panic").expect("exits cleanly");
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbackd-operator-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn weight(r: &StatusRow) -> (bool, u32, Option<Hold>, Option<u32>) {
    (r.in_table, r.weight, r.hold, r.pinned)
}

async fn first_run(state: &Path, journal: &Path) {
    let m = Master::start(state, journal);
    let https = parse_service("tcp:10.0.0.1:443").unwrap();
    let mut persistent = service_config(&https, SchedulerKind::Wlc);
    persistent.persistence = Some(lvs_sched::Duration::from_secs(300));
    assert_eq!(
        m.server(rs("10.0.0.2"), ServerAction::Pin(30)).await.unwrap(),
        "tcp:10.0.0.1:80/10.0.0.2:80: pin 30"
    );
    assert_eq!(weight(&m.row(rs("10.0.0.2")).await), (true, 30, None, Some(30)));
    m.server(rs("10.0.0.3"), ServerAction::Drain).await.unwrap();
    assert_eq!(weight(&m.row(rs("10.0.0.3")).await), (true, 0, Some(Hold::Drain), None));
    m.server(rs("10.0.0.4"), ServerAction::Maintenance).await.unwrap();
    assert_eq!(weight(&m.row(rs("10.0.0.4")).await), (false, 0, Some(Hold::Maintenance), None));
    let edit = Change::EditServer {
        key: rs("10.0.0.2"),
        forwarding: Forwarding::Masq,
        u_threshold: 50,
        l_threshold: 10,
    };
    m.change(edit).await.unwrap();
    let added = m.change(Change::AddService { key: https, config: persistent }).await.unwrap();
    assert_eq!(added, "added virtual service tcp:10.0.0.1:443: -s wlc -p 300");

    // Bad values: a clear message, and nothing changes.
    let before = m.shown().await;
    let e = m.server(rs("10.0.0.2"), ServerAction::Pin(70_000)).await.unwrap_err();
    assert!(e.contains("weight 70000 is out of range"), "{e}");
    let e = m.server(rs("10.0.0.9"), ServerAction::Drain).await.unwrap_err();
    assert!(e.contains("no real server tcp:10.0.0.1:80/10.0.0.9:80"), "{e}");
    let e = m.server(rs("10.0.0.2"), ServerAction::Return).await.unwrap_err();
    assert!(e.contains("nothing to return"), "{e}");
    let e = m.change(Change::AddService { key: https, config: persistent }).await.unwrap_err();
    assert!(e.contains("exists already"), "{e}");
    let bad = ServiceConfig { persistence: Some(lvs_sched::Duration::ZERO), ..persistent };
    let e = m.change(Change::EditService { key: https, config: bad }).await.unwrap_err();
    assert!(e.contains("persistence is whole seconds"), "{e}");
    let edit = Change::EditServer {
        key: rs("10.0.0.3"),
        forwarding: Forwarding::Masq,
        u_threshold: 5,
        l_threshold: 9,
    };
    assert!(m.change(edit).await.unwrap_err().contains("lower threshold"));
    let gone = parse_service("tcp:10.0.0.1:8080").unwrap();
    let e = m.change(Change::RemoveService { key: gone }).await.unwrap_err();
    assert!(e.contains("no virtual service tcp:10.0.0.1:8080"), "{e}");
    assert_eq!(m.shown().await, before, "refusals change nothing");
    m.stop().await;

    let mode = std::fs::metadata(state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", state.display());
    let saved = State::parse(&std::fs::read_to_string(state).unwrap()).unwrap();
    assert_eq!(saved.services.keys().copied().collect::<Vec<_>>(), [https]);
    assert_eq!(saved.servers[&rs("10.0.0.2")].pinned, Some(30));
    assert_eq!(saved.servers[&rs("10.0.0.3")].hold, Some(Hold::Drain));
    let held = saved.servers[&rs("10.0.0.4")].dest.expect("the entry saved");
    assert_eq!((held.weight, held.u_threshold), (9, 100), "the whole kernel entry");
}

/// The restarted master on a fresh table: every override back, the service created again.
async fn second_run(state: &Path, journal: &Path) {
    let m = Master::start(state, journal);
    assert_eq!(weight(&m.row(rs("10.0.0.2")).await), (true, 30, None, Some(30)));
    assert_eq!(weight(&m.row(rs("10.0.0.3")).await), (true, 0, Some(Hold::Drain), None));
    assert_eq!(weight(&m.row(rs("10.0.0.4")).await), (false, 0, Some(Hold::Maintenance), None));
    // Returned: added back at once (no agent) with its saved weight.
    m.server(rs("10.0.0.4"), ServerAction::Return).await.unwrap();
    assert_eq!(weight(&m.row(rs("10.0.0.4")).await), (true, 9, None, None));
    let kernel = m.server_row(rs("10.0.0.4")).await.kernel.expect("in the kernel's table");
    assert_eq!((kernel.config.weight, kernel.config.u_threshold), (9, 100), "added back whole");
    // It came back whole: in maintenance again, the entry saved is the kernel's, threshold
    // included.
    m.server(rs("10.0.0.4"), ServerAction::Maintenance).await.unwrap();
    let saved = State::parse(&std::fs::read_to_string(state).unwrap()).unwrap();
    assert_eq!(saved.servers[&rs("10.0.0.4")].dest.map(|d| (d.weight, d.u_threshold)), Some((9, 100)));
    m.server(rs("10.0.0.4"), ServerAction::Return).await.unwrap();
    m.server(rs("10.0.0.2"), ServerAction::Unpin).await.unwrap();
    assert_eq!(weight(&m.row(rs("10.0.0.2")).await), (true, 5, None, None), "the kernel's weight again");
    // The cost of a change: through the loop, the dry-run backend, the journal and the state
    // file rewritten (fsynced) each time. Printed, not asserted.
    let start = std::time::Instant::now();
    for w in 1..=CHANGES {
        m.server(rs("10.0.0.2"), ServerAction::Pin(w)).await.unwrap();
    }
    let took = start.elapsed();
    println!(
        "{CHANGES} console changes (pin) in {:.1} ms: {:.2} ms each, state file rewritten and fsynced each time",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3 / f64::from(CHANGES)
    );
    assert_eq!(weight(&m.row(rs("10.0.0.2")).await), (true, CHANGES, None, Some(CHANGES)));
    m.server(rs("10.0.0.2"), ServerAction::Unpin).await.unwrap();
    let https = parse_service("tcp:10.0.0.1:443").unwrap();
    m.change(Change::RemoveService { key: https }).await.unwrap();
    m.stop().await;
    let saved = State::parse(&std::fs::read_to_string(state).unwrap()).unwrap();
    assert!(saved.services.is_empty(), "{saved:?}");
    assert_eq!(saved.servers.keys().copied().collect::<Vec<_>>(), [rs("10.0.0.3")]);
}

fn decisions(run: &[Record]) -> Vec<(feedbackd_proto::Time, Decision)> {
    run.iter()
        .filter_map(|r| match r.entry {
            Entry::Decision(d) => Some((r.t, d)),
            _ => None,
        })
        .collect()
}

#[test]
fn console_changes_persist_across_a_restart_and_replay() {
    let dir = scratch();
    let (state, journal) = (dir.join("state"), dir.join("journal"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(first_run(&state, &journal));
    rt.block_on(second_run(&state, &journal));

    let text = std::fs::read_to_string(&journal).unwrap();
    let runs = parse_runs(&text).unwrap().runs;
    assert_eq!(runs.len(), 2);
    let https_in_table = |r: &Record| matches!(&r.entry, Entry::Table { services, .. } if services.contains(&parse_service("tcp:10.0.0.1:443").unwrap()));
    assert!(
        runs[1].iter().take_while(|r| !matches!(r.entry, Entry::Operator { .. })).any(https_in_table),
        "created again before the overrides"
    );
    let by = |run: &[Record], user: &str| {
        run.iter().filter(|r| matches!(&r.entry, Entry::Operator { who, .. } if who.user == user)).count()
    };
    assert_eq!(
        (by(&runs[0], "alice"), by(&runs[1], "state-file"), by(&runs[1], "alice")),
        (3, 2, 5 + CHANGES as usize)
    );
    assert!(
        runs[0]
            .iter()
            .any(|r| matches!(&r.entry, Entry::Note { text, .. } if text.contains("thresholds upper 50")))
    );
    assert!(runs[1].iter().any(|r| matches!(r.entry, Entry::Held { weight: 9, .. })));
    for (i, run) in runs.iter().enumerate() {
        let want = decisions(run);
        assert!(want.len() >= 3, "run {i}: {want:?}");
        let got = sim_core::feedback::replay(run).unwrap_or_else(|e| panic!("run {i}: {e}"));
        assert_eq!(got, want, "run {i}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_state_file_stops_the_start_with_its_line() {
    let dir = std::env::temp_dir().join(format!("feedbackd-operator-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    std::fs::write(&state, "# fine\npin tcp:10.0.0.1:80/10.0.0.2:80 lots\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_feedbackd-master"))
        .args([
            "--backend",
            "dry-run",
            "--service",
            "tcp:10.0.0.1:80",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--no-status", "--state-file"])
        .arg(&state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:2: pin tcp:10.0.0.1:80/10.0.0.2:80", state.display())), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
