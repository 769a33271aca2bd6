//! Chaos: the master and the agent as real processes on loopback (dry-run backend) under
//! the attacks of issue 15, each bounded in time. What each test asserts is a bound that
//! the attack would break: memory (VmRSS), log lines, descriptors, reconnections, and that
//! a legitimate agent keeps being served.
//!
//! Floods come from 127.0.1.x (all of 127.0.0.0/8 is loopback), legitimate agents from
//! 127.0.0.1, so that per-source caps apply to the flood.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const LIMIT: Duration = Duration::from_secs(30);
/// The generous bound on the master's memory under every flood [KiB].
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn master(extra: &[&str]) -> (Proc, String, String) {
    let mut cmd = Command::new(master_bin());
    cmd.args(master_args()).args(extra);
    start_master("master", cmd, LIMIT)
}

/// The master under `ulimit -n nofile` (soft and hard), as the unit's default limit.
fn master_with_nofile(nofile: u32, extra: &[&str]) -> (Proc, String, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")).arg(master_bin());
    cmd.args(master_args()).args(extra);
    start_master("master", cmd, LIMIT)
}

/// A legitimate feedbackd-agent `rs1` (10.0.0.2) reporting every 200 ms; returns it once
/// the master has added its server with the weight of `capacity`.
fn legit_agent(dir: &Path, m: &Proc, listen: &str, capacity: f64) -> (Proc, std::path::PathBuf) {
    let load = dir.join("load");
    write_load(&load, capacity);
    let conf = agent_conf(dir, "rs1", listen, "10.0.0.2", &load, agent_key_file(dir).as_deref());
    let a = agent(&conf, "rs1");
    let want = format!("(agent rs1: capacity {capacity:.3}");
    m.wait_for(0, LIMIT, "rs1 added", |l| {
        l.contains("add TCP  10.0.0.1:80 -> 10.0.0.2:80") && l.contains(&want)
    });
    (a, load)
}

/// The legitimate agent is still served: a new load reaches the master as a new weight,
/// and the agent never had to reconnect (no ack was missing for its master_timeout).
fn still_served(m: &Proc, a: &Proc, load: &Path, capacity: f64) {
    let mark = m.mark();
    write_load(load, capacity);
    let want = format!("(agent rs1: capacity {capacity:.3}");
    m.wait_for(mark, LIMIT, "rs1's new weight", |l| {
        l.starts_with("feedbackd-master: weight ") && l.contains("10.0.0.2:80") && l.contains(&want)
    });
    let out = a.output();
    assert!(
        !out.contains("retrying in"),
        "the agent lost its master:\n{out}\nMASTER:\n{}",
        m.lines().join("\n")
    );
}

fn count(m: &Proc, pred: impl Fn(&str) -> bool) -> usize {
    m.lines().iter().filter(|l| pred(l)).count()
}

/// (a) A connection flood beyond the per-source and the total caps: refused at accept and
/// counted, one log line per second's worth at most (not one per refusal), memory bounded,
/// and the legitimate agent keeps its acks.
#[test]
fn a_connection_flood_is_refused_at_the_caps_and_the_agent_keeps_its_acks() {
    let dir = tempdir("chaos-flood");
    let (m, listen, status) = master(&["--max-connections", "40", "--max-connections-per-source", "4"]);
    let (a, load) = legit_agent(&dir, &m, &listen, 0.5);
    let mut held = Vec::new();
    let mut peak = 0;
    // Five sources try 10 connections each (4 admitted each), then 1,000 more.
    for i in 0..1050 {
        match connect_from(&listen, flood_source(i % 5)) {
            Ok(s) if i < 50 => held.push(s),
            _ => {}
        }
    }
    wait_metric(
        &status,
        "feedbackd_master_connections_refused_total{reason=\"max_connections_per_source\"}",
        1000.0,
    );
    // Thirty more sources fill the total (40 with rs1), then 1,000 connections find it full.
    for i in 0..1060 {
        match connect_from(&listen, flood_source(10 + i % 30)) {
            Ok(s) if i < 60 => held.push(s),
            _ => {}
        }
        if i % 100 == 0 {
            peak = peak.max(rss_kib(m.pid()));
        }
    }
    wait_metric(&status, "feedbackd_master_connections_refused_total{reason=\"max_connections\"}", 1000.0);
    still_served(&m, &a, &load, 0.8);
    let page = metrics_within(&status, LIMIT);
    let per_source =
        metric(&page, "feedbackd_master_connections_refused_total{reason=\"max_connections_per_source\"}");
    let total = metric(&page, "feedbackd_master_connections_refused_total{reason=\"max_connections\"}");
    let open = metric(&page, "feedbackd_master_connections_open");
    assert!(per_source >= 1000.0 && total >= 1000.0, "refusals per source {per_source}, total {total}");
    assert!(open <= 40.0, "{open} connections open over --max-connections 40");
    let lines = count(&m, |l| l.contains("refused a connection from"));
    assert!(lines > 0 && (lines as f64) < (per_source + total) / 10.0, "{lines} refusal lines");
    peak = peak.max(rss_kib(m.pid()));
    assert!(peak < RSS_BOUND_KIB, "master RSS {peak} KiB");
    drop(held);
}

/// (b) Issue 15, item 4: a half-open flood with the descriptor limit at 256 and the caps
/// set above it, so that accept() runs out of descriptors: the loop pauses instead of
/// spinning (a bounded number of log lines, counted), /metrics answers, and an agent that
/// connects after the flood is served.
#[test]
fn a_half_open_flood_out_of_descriptors_backs_off_and_recovers() {
    let dir = tempdir("chaos-emfile");
    let (m, listen, status) = master_with_nofile(
        256,
        &["--max-connections", "5000", "--max-connections-per-source", "5000", "--register-timeout", "3s"],
    );
    let start = Instant::now();
    let mut held = Vec::new();
    for i in 0..600 {
        if let Ok(s) = connect_from(&listen, flood_source(i % 50)) {
            held.push(s);
        }
    }
    // The master runs out of descriptors: it says so, a bounded number of times.
    m.wait_for(0, LIMIT, "accept failure", |l| {
        l.contains("accept failed") && l.contains("Too many open files")
    });
    let cpu0 = cpu_ticks(m.pid());
    let page = metrics_within(&status, LIMIT);
    assert!(metric(&page, "feedbackd_master_accept_errors_total") >= 1.0, "{page}");
    drop(held);
    // After the flood, a legitimate agent registers.
    let (_a, _) = legit_agent(&dir, &m, &listen, 0.6);
    let cpu = cpu_ticks(m.pid()) - cpu0;
    let secs = start.elapsed().as_secs() + 1;
    let lines = count(&m, |l| l.contains("accept failed"));
    // At most 10 lines per second of the test, and far from a spin's tens of thousands.
    assert!(lines as u64 <= 10 * secs, "{lines} accept-failure lines in {secs} s");
    let page = metrics_within(&status, LIMIT);
    let errors = metric(&page, "feedbackd_master_accept_errors_total");
    // Pauses of 100 ms to 1 s: no more than 10 failed accepts a second.
    assert!(errors <= 10.0 * secs as f64, "{errors} accept errors in {secs} s");
    // A spinning loop burns a CPU second per second; the pausing one very little.
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    assert!(cpu < ticks * secs / 2, "{cpu} ticks of CPU in {secs} s");
    assert!(rss_kib(m.pid()) < RSS_BOUND_KIB);
}

/// (b') The same flood with the default caps: the total cap derives from the descriptor
/// limit, so accept() never runs out; the excess is refused and counted.
#[test]
fn by_default_the_connection_cap_fits_the_descriptor_limit() {
    let (m, listen, status) = master_with_nofile(256, &["--max-connections-per-source", "5000"]);
    m.wait_for(0, LIMIT, "caps", |l| l.contains("at most 128 at once"));
    let mut held = Vec::new();
    for i in 0..400 {
        if let Ok(s) = connect_from(&listen, flood_source(i % 50)) {
            held.push(s);
        }
    }
    wait_metric(&status, "feedbackd_master_connections_refused_total{reason=\"max_connections\"}", 272.0);
    let page = metrics_within(&status, LIMIT);
    assert_eq!(metric(&page, "feedbackd_master_accept_errors_total"), 0.0, "{page}");
    assert_eq!(metric(&page, "feedbackd_master_connections_open"), 128.0, "{page}");
    drop(held);
}

/// Waits (up to LIMIT) until a metric reaches `at_least`.
fn wait_metric(status: &str, series: &str, at_least: f64) {
    let start = Instant::now();
    loop {
        let page = metrics_within(status, LIMIT);
        if metric(&page, series) >= at_least {
            return;
        }
        if start.elapsed() > LIMIT {
            panic!("{series} stayed under {at_least}:\n{page}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (c, f) Five agents that send reports as fast as they can and never read the acks: each
/// is dropped once its queue passes --max-queued-bytes; the master's memory stays bounded
/// (it grew to 734 MB in 60 s before), and a legitimate agent keeps being served.
#[test]
fn agents_that_never_read_are_dropped_and_memory_stays_bounded() {
    let dir = tempdir("chaos-noread");
    let (m, listen, status) = master(&[]);
    let (a, load) = legit_agent(&dir, &m, &listen, 0.5);
    let writers: Vec<_> = (0..5u32)
        .map(|i| {
            let listen = listen.clone();
            std::thread::spawn(move || {
                let addr = format!("10.0.0.{}", 50 + i);
                let mut g =
                    ProtoAgent::register(&listen, IpAddr::from([127, 0, 0, 1]), &format!("greedy{i}"), &addr)
                        .expect("registers");
                let start = Instant::now();
                // Reports until the master drops us (the write fails), for at most LIMIT.
                let mut sent = 0u64;
                while start.elapsed() < LIMIT {
                    if g.report(0.5).is_err() {
                        return Some(sent);
                    }
                    sent += 1;
                }
                None
            })
        })
        .collect();
    let mut peak = 0;
    let dropped = loop {
        peak = peak.max(rss_kib(m.pid()));
        if writers.iter().all(|w| w.is_finished()) {
            break writers.into_iter().map(|w| w.join().unwrap()).collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(dropped.iter().all(Option::is_some), "an agent that never reads was not dropped: {dropped:?}");
    let page = metrics_within(&status, LIMIT);
    assert!(metric(&page, "feedbackd_master_slow_readers_total") >= 5.0, "{page}");
    assert!(peak < RSS_BOUND_KIB, "master RSS {peak} KiB");
    still_served(&m, &a, &load, 0.9);
}

/// (d) kill -9 under load with --record: every complete line written before the kill
/// parses; a restart appends after it (nothing truncated) with its own `start`, adopts the
/// table it finds and the agents come back.
#[test]
fn kill_9_under_load_loses_no_journal_line_and_a_restart_appends() {
    let dir = tempdir("chaos-kill9");
    let journal = dir.join("master.journal");
    let record = ["--record", journal.to_str().unwrap()];
    let (mut m, listen, _) = master(&record);
    let (a, load) = legit_agent(&dir, &m, &listen, 0.5);
    let mut greedy: Vec<ProtoAgent> = (0..3)
        .map(|i| {
            ProtoAgent::register(
                &listen,
                IpAddr::from([127, 0, 0, 1]),
                &format!("load{i}"),
                &format!("10.0.0.{}", 60 + i),
            )
            .unwrap()
        })
        .collect();
    // Load: the three send reports (and read nothing; few enough to stay under the bound).
    for round in 0..20 {
        for g in &mut greedy {
            g.report(0.1 + f64::from(round) * 0.04).unwrap();
        }
    }
    m.wait_for(0, LIMIT, "load0 added", |l| l.contains("-r 10.0.0.60:80"));
    let start = Instant::now();
    while std::fs::read_to_string(&journal).unwrap().matches(" report ").count() < 40 {
        assert!(start.elapsed() < LIMIT, "the reports were not journalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    m.signal(Signal::SIGKILL);
    m.wait_exit(LIMIT);
    let before = std::fs::read(&journal).unwrap();
    let text = String::from_utf8(before.clone()).unwrap();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut n = 0;
    for line in complete.lines() {
        feedbackd_proto::journal::Record::parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        n += 1;
    }
    assert!(n > 40, "only {n} lines recorded");
    assert!(complete.contains(" add rs=tcp:10.0.0.1:80/10.0.0.60:80 "), "{complete}");

    let port = listen.rsplit(':').next().unwrap();
    let mut cmd = Command::new(master_bin());
    cmd.args(master_args()).args(record).args(["--listen", &format!("127.0.0.1:{port}")]);
    let (m2, _, _) = start_master("master2", cmd, LIMIT);
    m2.wait_for(0, LIMIT, "rs1 back", |l| l.contains("add TCP  10.0.0.1:80 -> 10.0.0.2:80"));
    let after = std::fs::read(&journal).unwrap();
    assert!(after.starts_with(&before), "the journal was truncated or rewritten");
    let runs = feedbackd_proto::journal_file::parse_runs(&String::from_utf8(after).unwrap()).unwrap();
    assert_eq!(runs.runs.len(), 2, "two runs");
    assert!(runs.torn.len() <= 1);
    // The second run read the (dry-run) table and saw rs1 register again.
    let second = &runs.runs[1];
    assert!(second.iter().any(|r| matches!(r.entry, feedbackd_proto::journal::Entry::Table { .. })));
    assert!(second.iter().any(
        |r| matches!(&r.entry, feedbackd_proto::journal::Entry::Register { agent, .. } if agent == "rs1")
    ));
    drop((a, load));
}

/// (e) A master that accepts and never answers: the real agent times out (its
/// master_timeout, 3 s at a 200 ms interval) and reconnects with backoff, without growing
/// or spinning.
#[test]
fn an_agent_facing_a_silent_master_times_out_and_backs_off() {
    let dir = tempdir("chaos-silent");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let load = dir.join("load");
    write_load(&load, 0.5);
    let a = agent(&agent_conf(&dir, "rs1", &addr, "10.0.0.2", &load, agent_key_file(&dir).as_deref()), "rs1");
    let start = Instant::now();
    let mut held = Vec::new();
    // Accept four connections, holding each open and silent.
    listener.set_nonblocking(false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    while held.len() < 4 {
        let s = rx.recv_timeout(LIMIT).expect("the agent reconnects").unwrap();
        held.push((s, start.elapsed()));
    }
    let elapsed = start.elapsed();
    // Each connection lasts the agent's master_timeout (3 s) plus a backoff of at least
    // 250 ms: four connections take at least three of those.
    let gaps: Vec<Duration> = held.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_secs(3)), "reconnected too fast: {gaps:?}");
    a.wait_for(0, LIMIT, "timeout", |l| l.contains("silent") || l.contains("timed out"));
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    let cpu = cpu_ticks(a.pid());
    assert!(cpu < ticks * (elapsed.as_secs() + 1) / 4, "the agent used {cpu} ticks in {elapsed:?}");
    assert!(rss_kib(a.pid()) < 32 * 1024, "agent RSS {} KiB", rss_kib(a.pid()));
}

/// The status server answers GET and HEAD only, and bounds slow clients.
#[test]
fn the_status_server_serves_get_and_head_only() {
    let (_m, _, status) = master(&[]);
    let get = http(&status, "GET /metrics HTTP/1.0\r\n\r\n", LIMIT).unwrap();
    assert!(
        get.starts_with("HTTP/1.0 200 OK") && get.contains("feedbackd_master_connections_open 0"),
        "{get}"
    );
    let head = http(&status, "HEAD /status HTTP/1.0\r\n\r\n", LIMIT).unwrap();
    let (h, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(h.starts_with("HTTP/1.0 200 OK") && h.contains("Content-Length: ") && body.is_empty(), "{head}");
    assert!(!h.contains("Content-Length: 0\r"), "HEAD gives GET's length: {h}");
    for m in ["POST", "DELETE", "PUT"] {
        let r = http(&status, &format!("{m} /status HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), LIMIT).unwrap();
        assert!(
            r.starts_with("HTTP/1.0 405 Method Not Allowed") && r.contains("Allow: GET, HEAD\r\n"),
            "{r}"
        );
    }
    let r = http(&status, &format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(5000)), LIMIT).unwrap();
    assert!(r.starts_with("HTTP/1.0 431"), "{r}");
    // Slowloris: 40 clients that never finish their request head hold at most 16 slots
    // (the rest are closed at once), each for at most 5 s: /metrics answers again.
    let idle: Vec<_> = (0..40).map(|_| std::net::TcpStream::connect(&status).unwrap()).collect();
    let page = metrics_within(&status, LIMIT);
    assert!(
        metric(&page, "feedbackd_master_status_requests_failed_total{reason=\"bad_request\"}") >= 4.0,
        "{page}"
    );
    assert!(
        metric(&page, "feedbackd_master_status_requests_failed_total{reason=\"busy\"}") >= 20.0,
        "{page}"
    );
    assert!(
        metric(&page, "feedbackd_master_status_requests_failed_total{reason=\"timeout\"}") >= 1.0,
        "{page}"
    );
    drop(idle);
}

/// The journal rotates between lines at --record-max-bytes keeping --record-keep files,
/// refuses a symbolic link, and is reopened on SIGHUP after logrotate moved it away.
#[test]
fn the_journal_rotates_between_lines_and_reopens_on_sighup() {
    let dir = tempdir("chaos-rotate");
    let journal = dir.join("master.journal");
    let link = dir.join("link.journal");
    std::os::unix::fs::symlink(&journal, &link).unwrap();
    let out = Command::new(master_bin())
        .args(master_args())
        .args(["--record", link.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is a symbolic link: refused"), "{err}");
    assert!(!journal.exists(), "nothing created through the link");

    let record = ["--record", journal.to_str().unwrap(), "--record-max-bytes", "1500", "--record-keep", "2"];
    let (m, listen, _) = master(&record);
    let (_a, load) = legit_agent(&dir, &m, &listen, 0.5);
    // Reports every 200 ms, ~80 bytes each: the cap is passed within seconds.
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", journal.display()));
    let start = Instant::now();
    while !rotated(2).exists() {
        assert!(start.elapsed() < LIMIT, "no second rotation");
        write_load(&load, if start.elapsed().as_millis() % 400 < 200 { 0.3 } else { 0.7 });
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!rotated(3).exists(), "--record-keep 2");
    let mut all = String::new();
    for p in [rotated(2), rotated(1), journal.clone()] {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with('\n') && text.len() <= 1500, "{}: {} bytes", p.display(), text.len());
        for line in text.lines() {
            feedbackd_proto::journal::Record::parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
        all.push_str(&text);
    }
    let runs = feedbackd_proto::journal_file::parse_runs(&all).unwrap();
    assert!(runs.torn.is_empty());

    // logrotate: move the file away, SIGHUP; the master writes a fresh FILE.
    let moved = dir.join("moved.journal");
    std::fs::rename(&journal, &moved).unwrap();
    let mark = m.mark();
    m.signal(Signal::SIGHUP);
    m.wait_for(mark, LIMIT, "reopened", |l| l.contains("SIGHUP: reopened the journal"));
    let start = Instant::now();
    while std::fs::metadata(&journal).map_or(0, |m| m.len()) == 0 {
        assert!(start.elapsed() < LIMIT, "nothing written after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777, 0o600);
}
