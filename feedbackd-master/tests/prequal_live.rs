//! The Prequal law in the live daemons, on loopback with the dry-run backend: real
//! feedbackd-agents measure real TCP servers (their requests in flight from the socket
//! table, their latency by a timed probe) or read the figures a server writes to a file,
//! and a real feedbackd-master (`--law prequal`) journals the probes and sets the weights.
//!
//! With the figures from files, the weights are hand-computed from the law (see
//! `lvs_sched::feedback::service`); with measured figures, the test holds what does not
//! depend on the machine's speed beyond wide margins.
//!
//! The servers are threads of this test: `fast` answers at once, `slow` holds each reply
//! for [`SLOW_MS`] (a lower bound on its probe's latency, whatever the machine's load),
//! and `busy` answers at once but holds [`HELD`] idle client connections open (its requests
//! in flight).

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use feedbackd_proto::journal::{Decision, Entry, Record};

const LIMIT: Duration = Duration::from_secs(30);
/// How long the slow server holds each reply [ms].
const SLOW_MS: u64 = 600;
/// The idle connections held open on the busy server.
const HELD: usize = 8;

/// A listener on 127.0.0.1 on a port below the ephemeral range (32768-60999 by
/// default): the kernel never gives such a port to another socket that binds port 0 on
/// another loopback address (as flood tests running beside this one do), so the sockets
/// on it are this test's only, and the agent's count of them exact.
fn listener() -> TcpListener {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 1000) * 12;
    for _ in 0..2000 {
        let port = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", u16::try_from(port).unwrap())) {
            return l;
        }
    }
    panic!("no free port in 20000-31999 on 127.0.0.1");
}

/// A loopback HTTP-ish server: reads a request up to its blank line (at most 4 KiB),
/// waits `delay`, answers, closes. Returns its port.
fn server(delay: Duration) -> u16 {
    let listener = listener();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && request.len() < 4096 {
                    match conn.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => return,
                    }
                }
                std::thread::sleep(delay);
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
            });
        }
    });
    port
}

/// `n` client connections to `port` that send nothing and stay open while the result lives.
fn hold(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect()
}

/// The master: dry-run, one service, `--law prequal` and exact weights (no smoothing,
/// dead-band, step limit or slow start), its journal in `dir`.
fn master(dir: &Path, extra: &[&str]) -> (Proc, String, PathBuf) {
    let journal = dir.join("master.journal");
    let mut cmd = Command::new(master_bin());
    cmd.args(master_args_insecure()).arg("--record").arg(&journal).args(extra);
    let (m, listen, _) = start_master("master", cmd, LIMIT);
    (m, listen, journal)
}

fn master_args_insecure() -> Vec<String> {
    [
        "--insecure",
        "--backend",
        "dry-run",
        "--service",
        "tcp:10.0.0.1:80",
        "--listen",
        "127.0.0.1:0",
        "--status-listen",
        "127.0.0.1:0",
        "--law",
        "prequal",
        "--smoothing",
        "1",
        "--dead-band",
        "0",
        "--max-step",
        "0",
        "--slow-start",
        "0s",
        "--max-weight",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An agent `name` for service port 80 claiming `address`, measuring with `module`.
fn prequal_agent(dir: &Path, name: &str, director: &str, address: &str, module: &str) -> Proc {
    let text = format!(
        "director = {director}\nagent_id = {name}\ninterval = 200ms\nservice = http\n\tport = 80\n\
         \tforwarding = NAT\n\taddress = {address}\n\tmodule = {module}\n"
    );
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(&conf, text).unwrap();
    agent(&conf, name)
}

/// The probe module measuring the server on `port` on loopback.
fn probe_module(port: u16) -> String {
    format!(r#"prequal port={port} address=127.0.0.1 timeout_ms=5000 send="GET / HTTP/1.0\r\n\r\n""#)
}

/// The journal's whole lines so far (a line being written is left for later).
fn journal(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| Record::parse_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Each agent's reports in the journal: `(agent, rif, latency_ms)` per report.
fn probes(records: &[Record]) -> Vec<(String, f64, f64)> {
    let mut agents: Vec<(u64, String)> = Vec::new();
    let mut out = Vec::new();
    for r in records {
        match &r.entry {
            Entry::Register { conn, agent, .. } => agents.push((conn.0, agent.clone())),
            Entry::Report { conn, metrics, .. } => {
                let agent = agents.iter().rev().find(|(c, _)| *c == conn.0).map(|(_, a)| a.clone()).unwrap();
                let get = |n: &str| metrics.iter().find(|m| m.name == n).map(|m| m.value);
                if let (Some(rif), Some(latency)) = (get("rif"), get("latency_ms")) {
                    out.push((agent, rif, latency));
                }
            }
            _ => {}
        }
    }
    out
}

/// Waits until `done` holds for the journal's records; returns them.
fn wait_journal(path: &Path, what: &str, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let start = Instant::now();
    loop {
        let records = journal(path);
        if done(&records) {
            return records;
        }
        assert!(start.elapsed() < LIMIT, "no {what} within {LIMIT:?}; journal:\n{records:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agents_measure_requests_in_flight_and_latency_of_real_servers() {
    let dir = tempdir("prequal-measure");
    let (fast, slow, busy) =
        (server(Duration::ZERO), server(Duration::from_millis(SLOW_MS)), server(Duration::ZERO));
    let _held = hold(busy, HELD);
    let (_m, listen, path) = master(&dir, &[]);
    let agents = [
        prequal_agent(&dir, "fast", &listen, "10.0.0.2", &probe_module(fast)),
        prequal_agent(&dir, "slow", &listen, "10.0.0.3", &probe_module(slow)),
        prequal_agent(&dir, "busy", &listen, "10.0.0.4", &probe_module(busy)),
    ];
    // Three reports of each agent reach the master's journal with both figures.
    let records = wait_journal(&path, "three probes of each agent", |r| {
        let p = probes(r);
        ["fast", "slow", "busy"].iter().all(|a| p.iter().filter(|(n, _, _)| n == a).count() >= 3)
    });
    let start = records.iter().find_map(|r| match &r.entry {
        Entry::Start { law, .. } => Some(law.kind),
        _ => None,
    });
    assert_eq!(start, Some(lvs_sched::feedback::LawKind::Prequal(Default::default())));
    for (agent, rif, latency_ms) in probes(&records) {
        // Never past the probe's deadline; the busy server's held connections are its
        // requests in flight, exactly (the probe is counted before it connects).
        assert!(latency_ms > 0.0 && latency_ms <= 5000.0, "{agent}: {latency_ms}");
        match agent.as_str() {
            "fast" => assert_eq!(rif, 0.0, "{agent}"),
            "slow" => {
                assert_eq!(rif, 0.0, "{agent}");
                assert!(latency_ms >= SLOW_MS as f64, "{agent}: {latency_ms} ms");
            }
            "busy" => assert_eq!(rif, HELD as f64, "{agent}: {:?} {}", probes(&records), agents[2].output()),
            other => panic!("{other}"),
        }
    }
}

/// The weights `/metrics` shows for 10.0.0.2, .3, .4 (0 for a server not there yet).
fn weights(status: &str) -> [f64; 3] {
    let page = metrics_within(status, LIMIT);
    ["2", "3", "4"].map(|n| {
        let server = format!("server=\"10.0.0.{n}:80\"");
        page.lines()
            .find(|l| l.starts_with("feedbackd_master_real_server_weight{") && l.contains(&server))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    })
}

/// Waits until the three weights are `expected`.
fn wait_weights(status: &str, expected: [f64; 3], m: &Proc) {
    let start = Instant::now();
    loop {
        let got = weights(status);
        if got == expected {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "weights {got:?}, not {expected:?}, within {LIMIT:?}:\n{}",
            m.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a `source=file` file atomically (a rename), as a server would.
fn write_figures(path: &Path, rif: u32, latency_ms: f64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("rif {rif}\nlatency_ms {latency_ms}\n")).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[test]
fn the_master_sets_hand_computed_prequal_weights_from_the_servers_figures() {
    let dir = tempdir("prequal-file");
    let files = ["rs1", "rs2", "rs3"].map(|n| dir.join(format!("{n}.figures")));
    write_figures(&files[0], 2, 10.0);
    write_figures(&files[1], 3, 40.0);
    write_figures(&files[2], 30, 5.0);
    let journal_path = dir.join("master.journal");
    let mut cmd = Command::new(master_bin());
    cmd.args(master_args_insecure()).args(["--q-rif", "0.5", "--record"]).arg(&journal_path);
    let (m, listen, status) = start_master("master", cmd, LIMIT);
    let module = |f: &Path| format!("prequal source=file path={}", f.display());
    let _agents = [
        prequal_agent(&dir, "rs1", &listen, "10.0.0.2", &module(&files[0])),
        prequal_agent(&dir, "rs2", &listen, "10.0.0.3", &module(&files[1])),
        prequal_agent(&dir, "rs3", &listen, "10.0.0.4", &module(&files[2])),
    ];
    // The pool's rif: about as many 2s, 3s and 30s; its median (q_rif 0.5, nearest rank)
    // is 3 once it holds a few probes of each. rs3 (30 > 3) is hot; rs1 and rs2 are cold,
    // by latency: rs1 the best (10 ms) gets max_weight 100, rs2 100 × 10/40 = 25. The hot
    // rs3 gets the lowest cold weight scaled by threshold / rif: 25 × 3/30 = 2.5 -> 3.
    wait_weights(&status, [100.0, 25.0, 3.0], &m);
    // rs2 turns fastest (5 ms): it gets 100, rs1 100 × 5/10 = 50, rs3 50 × 3/30 = 5.
    write_figures(&files[1], 3, 5.0);
    wait_weights(&status, [50.0, 100.0, 5.0], &m);
    // The journal holds the law and the decisions: replayable (docs/feedbackd.md).
    let records = journal(&journal_path);
    let sets = records.iter().filter(|r| matches!(r.entry, Entry::Decision(Decision::Set { .. }))).count();
    assert!(sets >= 3, "{records:#?}");
    let log = m.output();
    assert!(log.contains("weight TCP  10.0.0.1:80 -> 10.0.0.3:80") && log.contains("-> 100"), "{log}");
}

/// Whether a thread of process `pid` is blocked in `read` or `recvfrom` (x86_64 syscalls 0
/// and 45; std's socket read is `recv`), as the agent's probe is while it waits for the
/// reply.
fn in_read(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall"))
            .is_ok_and(|s| matches!(s.split_whitespace().next(), Some("0" | "45")))
    })
}

#[cfg(target_arch = "x86_64")]
#[test]
fn an_agent_stopped_and_continued_mid_probe_keeps_measuring() {
    use nix::sys::signal::Signal;
    let dir = tempdir("prequal-stop");
    let slow = server(Duration::from_millis(SLOW_MS));
    let (_m, listen, path) = master(&dir, &[]);
    let a = prequal_agent(&dir, "slow", &listen, "10.0.0.3", &probe_module(slow));
    wait_journal(&path, "a first probe", |r| !probes(r).is_empty());
    // SIGSTOP then SIGCONT while the probe waits for its reply: the read fails with EINTR
    // (signal(7): a socket read with a timeout does, even without a handler), which the
    // probe must read through rather than report as a failed measurement.
    for _ in 0..3 {
        let start = Instant::now();
        while !in_read(a.pid()) {
            assert!(start.elapsed() < LIMIT, "the agent never waited in read: {}", a.output());
            std::thread::sleep(Duration::from_millis(5));
        }
        a.signal(Signal::SIGSTOP);
        a.signal(Signal::SIGCONT);
        let seen = probes(&journal(&path)).len();
        wait_journal(&path, "the next probe", |r| probes(r).len() > seen);
    }
    let reports =
        journal(&path).into_iter().filter(|r| matches!(&r.entry, Entry::Report { .. })).collect::<Vec<_>>();
    let without = reports.iter().filter(|r| match &r.entry {
        Entry::Report { capacity, metrics, .. } => capacity[0].is_none() || metrics.is_empty(),
        _ => false,
    });
    assert_eq!(without.count(), 0, "{reports:#?}\n{}", a.output());
}
