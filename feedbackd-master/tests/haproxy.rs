//! HAProxy's agent-check, both ways, with real processes on loopback:
//! - a real HAProxy (Debian's haproxy 2.6) polls `feedbackd-agent --agent-check`: the
//!   server's weight in HAProxy follows the agent's load, and its admin state follows the
//!   agent's (`drain`, `maint`, `ready`), read from HAProxy's stats socket;
//! - feedbackd-master (`--agent-check`, dry-run backend) polls the same agent port: the
//!   kernel weight it sets follows the agent's load and admin state;
//! - one agent feeds a master (feedbackd's protocol) and HAProxy (agent-check) at once;
//! - the agent's agent-check port under a flood of idle checkers.
//!
//! The HAProxy test fails (never skips) when haproxy is not installed: install the Debian
//! package `haproxy`.

mod common;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// The haproxy binary; the test fails with the package to install when it is missing.
fn haproxy_bin() -> PathBuf {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("haproxy is not installed: install the Debian package `haproxy` (apt-get install haproxy)")
    })
}

/// A feedbackd-agent reading its capacity from `load` and its admin state from `admin`,
/// answering agent-check on a loopback port chosen by the kernel; returns it and the port.
/// With a director (a closed port here), the listener is the `--agent-check` option;
/// without, the configuration's `agent_check` line, which stands for the director line.
fn agent_with_check(dir: &Path, load: &Path, admin: &Path, director: Option<&str>) -> (Proc, u16) {
    let mut cmd = Command::new(agent_bin());
    match director {
        Some(d) => {
            let conf = agent_conf(dir, "rs1", d, "10.0.0.2", load, None);
            cmd.arg("--config").arg(&conf).args(["--agent-check", "127.0.0.1:0/http"]);
        }
        None => {
            let conf = dir.join("rs1.conf");
            let text = format!(
                "agent_id = rs1\ninterval = 100ms\nagent_check = 127.0.0.1:0/80\n\
                 service = http\n\tport = 80\n\tmodule = file path={} scale=1\n",
                load.display()
            );
            std::fs::write(&conf, text).unwrap();
            cmd.arg("--config").arg(&conf);
        }
    }
    cmd.arg("--admin-file").arg(admin);
    let a = Proc::spawn("agent", cmd);
    let line = a.wait_for(0, LIMIT, "agent-check on", |l| l.contains("agent-check on "));
    let port = addr_after(&line, "agent-check on ").rsplit(':').next().unwrap().parse().unwrap();
    (a, port)
}

/// One command on HAProxy's stats socket; the whole answer.
fn stats(sock: &Path, command: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// What HAProxy holds of server `rs1` of backend `be`.
#[derive(Debug, PartialEq, Eq)]
struct ServerState {
    /// `srv_uweight`: the weight in use.
    weight: u32,
    /// `srv_admin_state`: bits 0x01 forced maintenance, 0x08 forced drain (the agent's).
    admin: u32,
    /// `show stat`'s status column: `no check`, `DRAIN`, `MAINT`, ...
    status: String,
}

fn server_state(sock: &Path) -> std::io::Result<ServerState> {
    let text = stats(sock, "show servers state be")?;
    let header =
        text.lines().find(|l| l.starts_with("# be_id")).ok_or_else(|| std::io::Error::other(text.clone()))?;
    let names: Vec<&str> = header.trim_start_matches("# ").split(' ').collect();
    let row = text
        .lines()
        .find(|l| l.split(' ').nth(3) == Some("rs1"))
        .ok_or_else(|| std::io::Error::other(text.clone()))?;
    let field = |name: &str| -> u32 {
        let i = names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no {name} in {header}"));
        row.split(' ').nth(i).unwrap().parse().unwrap()
    };
    let stat = stats(sock, "show stat")?;
    let head: Vec<&str> = stat.lines().next().unwrap_or("").trim_start_matches("# ").split(',').collect();
    let col = head.iter().position(|c| *c == "status").expect("a status column");
    let status = stat
        .lines()
        .find(|l| l.starts_with("be,rs1,"))
        .map(|l| l.split(',').nth(col).unwrap().to_owned())
        .ok_or_else(|| std::io::Error::other(stat.clone()))?;
    Ok(ServerState { weight: field("srv_uweight"), admin: field("srv_admin_state"), status })
}

/// Waits until HAProxy's view of rs1 satisfies `pred` (or fails with the last view).
fn wait_haproxy(sock: &Path, what: &str, pred: impl Fn(&ServerState) -> bool) -> ServerState {
    let start = Instant::now();
    loop {
        let state = server_state(sock);
        if let Ok(s) = &state {
            if pred(s) {
                return state.unwrap();
            }
        }
        assert!(start.elapsed() < LIMIT, "HAProxy: {what} not within {LIMIT:?}; last: {state:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts HAProxy with backend `be` and server `rs1` (weight 100) checked by the agent on
/// `port` every 100 ms; returns it and its stats socket.
fn start_haproxy(dir: &Path, port: u16) -> (Proc, PathBuf) {
    let haproxy = haproxy_bin();
    let sock = dir.join("haproxy.sock");
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n    stats socket {} level admin\ndefaults\n    mode tcp\n    timeout connect 1s\n\
             \x20   timeout client 5s\n    timeout server 5s\nbackend be\n\
             \x20   server rs1 127.0.0.1:9 weight 100 agent-check agent-addr 127.0.0.1 agent-port {port} agent-inter 100ms agent-send \"be/rs1\\n\"\n",
            sock.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(&haproxy);
    cmd.arg("-db").arg("-f").arg(&cfg);
    (Proc::spawn("haproxy", cmd), sock)
}

fn write_admin(path: &Path, state: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[test]
fn haproxy_follows_the_agents_load_and_admin_state() {
    haproxy_bin();
    let dir = tempdir("haproxy");
    let (load, admin) = (dir.join("load"), dir.join("admin"));
    write_load(&load, 0.9);
    // An agent that feeds HAProxy only: no director.
    let (agent, port) = agent_with_check(&dir, &load, &admin, None);
    agent.wait_for(0, LIMIT, "no director", |l| l.contains("to no director (agent-check only)"));
    let (_h, sock) = start_haproxy(&dir, port);

    // The configured weight is 100: HAProxy's weight is the agent's capacity in percent
    // (HAProxy sends `be/rs1\n` first, which the agent reads and drops).
    let s = wait_haproxy(&sock, "weight 90", |s| s.weight == 90);
    assert_eq!((s.admin, s.status.as_str()), (0, "no check"), "{s:?}");
    let changed = Instant::now();
    write_load(&load, 0.3);
    wait_haproxy(&sock, "weight 30", |s| s.weight == 30);
    // A figure, not a check: the agent samples every 100 ms, HAProxy checks every 100 ms.
    println!("HAProxy's weight followed the load change in {} ms", changed.elapsed().as_millis());

    // The agent's admin state: drain (0x08, forced drain) and maint (0x01, forced maintenance).
    write_admin(&admin, "drain");
    let s = wait_haproxy(&sock, "DRAIN", |s| s.admin & 0x08 != 0);
    assert_eq!(s.status, "DRAIN (agent)", "{s:?}");
    write_admin(&admin, "maint");
    let s = wait_haproxy(&sock, "MAINT", |s| s.admin & 0x01 != 0);
    assert_eq!((s.admin & 0x08, s.status.as_str()), (0, "MAINT"), "{s:?}");
    write_admin(&admin, "ready");
    write_load(&load, 0.55);
    let s = wait_haproxy(&sock, "ready at weight 55", |s| s.admin == 0 && s.weight == 55);
    assert_eq!(s.status, "no check", "{s:?}");
}

/// A feedbackd-master with the dry-run backend polling `targets` every 100 ms, and a law
/// that sets the capacity at once; it reports to no agent port of its own.
fn polling_master(targets: &[String]) -> (Proc, String) {
    polling_master_with(targets, &[])
}

/// [`polling_master`] with more options (later ones win).
fn polling_master_with(targets: &[String], extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(master_bin());
    cmd.args(["--backend", "dry-run", "--service", "tcp:10.0.0.1:80", "--insecure"]);
    cmd.args(["--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0", "--rescan-interval", "500ms"]);
    cmd.args(["--smoothing", "1", "--dead-band", "0", "--max-step", "0", "--slow-start", "0s"]);
    cmd.args(["--agent-check-interval", "100ms", "--quiesce-after", "1s", "--remove-after", "60s"]);
    for t in targets {
        cmd.args(["--agent-check", t]);
    }
    cmd.args(extra);
    let m = Proc::spawn("master", cmd);
    let l = m.wait_for(0, LIMIT, "listening", |l| l.contains("listening on"));
    (m, addr_after(&l, "listening on "))
}

/// The dry run's line setting `rs` to weight `w` (added or edited).
fn weight_is(rs: &'static str, w: u32) -> impl Fn(&str) -> bool {
    move |l: &str| {
        l.contains("dry-run: ipvsadm")
            && l.contains(&format!("-r {rs} "))
            && l.split_whitespace().last() == Some(&w.to_string())
            && l.contains(" -w ")
    }
}

/// A fake agent-check agent in the test: answers each connection with the current line.
fn fake_agent(line: std::sync::Arc<std::sync::Mutex<String>>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let text = line.lock().unwrap().clone();
            let _ = s.write_all(text.as_bytes());
        }
    });
    port
}

#[test]
fn the_master_polls_agent_check_agents_as_a_source_of_capacity() {
    let dir = tempdir("agentcheck-master");
    let (load, admin) = (dir.join("load"), dir.join("admin"));
    write_load(&load, 0.9);
    let (mut agent, port) = agent_with_check(&dir, &load, &admin, Some("127.0.0.1:1"));
    // A second agent speaking only HAProxy's words, including those feedbackd-agent never
    // writes (down, a comment) and garbage.
    let fake = std::sync::Arc::new(std::sync::Mutex::new("40% up\n".to_owned()));
    let fake_port = fake_agent(fake.clone());
    // A third that accepts and never answers.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = mute.incoming().take(1000).collect();
        drop(held);
    });
    let (m, _) = polling_master(&[
        format!("tcp:10.0.0.1:80/10.0.0.2:80@127.0.0.1:{port}"),
        format!("tcp:10.0.0.1:80/10.0.0.3:80@127.0.0.1:{fake_port},dr"),
        format!("tcp:10.0.0.1:80/10.0.0.4:80@127.0.0.1:{mute_port}"),
    ]);
    m.wait_for(0, LIMIT, "the mute agent logged", |l| {
        l.contains(&format!(
            "agent-check 127.0.0.1:{mute_port} for tcp:10.0.0.1:80/10.0.0.4:80: no answer within 1000 ms"
        ))
    });

    // Added on the first answer with the weight the capacity maps to: 1 + capacity × 99
    // (--min-weight 1, --max-weight 100), rounded.
    m.wait_for(0, LIMIT, "rs1 added at 90", |l| {
        l.contains("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 90")
    });
    m.wait_for(0, LIMIT, "rs2 added at 41", |l| {
        l.contains("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 41")
    });

    // The weight follows the agent's load, and its admin state.
    let mark = m.mark();
    write_load(&load, 0.3);
    m.wait_for(mark, LIMIT, "rs1 at 31", weight_is("10.0.0.2:80", 31));
    let mark = m.mark();
    write_admin(&admin, "drain");
    m.wait_for(mark, LIMIT, "rs1 drained", weight_is("10.0.0.2:80", 0));
    let mark = m.mark();
    write_admin(&admin, "ready");
    m.wait_for(mark, LIMIT, "rs1 ready at 31", weight_is("10.0.0.2:80", 31));

    // HAProxy's `down` drains (weight 0) until `up`.
    let mark = m.mark();
    *fake.lock().unwrap() = "down #maintenance window\n".to_owned();
    m.wait_for(mark, LIMIT, "rs2 down: weight 0", weight_is("10.0.0.3:80", 0));
    let mark = m.mark();
    *fake.lock().unwrap() = "70% up\n".to_owned();
    m.wait_for(mark, LIMIT, "rs2 up at 70", weight_is("10.0.0.3:80", 70));

    // Garbage is no answer: the poller says so once, and the master quiesces the silent server.
    let mark = m.mark();
    *fake.lock().unwrap() = "HTTP/1.1 200 OK\r\n".to_owned();
    m.wait_for(mark, LIMIT, "the bad reply logged", |l| l.contains("bad reply \"HTTP/1.1 200 OK\""));
    m.wait_for(mark, LIMIT, "rs2 quiesced", weight_is("10.0.0.3:80", 0));
    let bad = m.lines()[mark..].iter().filter(|l| l.contains("bad reply")).count();
    assert_eq!(bad, 1, "one line per failure, not one per poll:\n{}", m.output());

    // The agent stops: silence, quiesced too.
    let mark = m.mark();
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    agent.wait_exit(LIMIT);
    m.wait_for(mark, LIMIT, "rs1 quiesced", weight_is("10.0.0.2:80", 0));
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One agent-check as HAProxy does it: connect, read to the close; the line.
fn check_once(port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_agent_check_port_survives_a_flood_of_idle_checkers() {
    let dir = tempdir("agentcheck-flood");
    let (load, admin) = (dir.join("load"), dir.join("admin"));
    write_load(&load, 0.5);
    let (agent, port) = agent_with_check(&dir, &load, &admin, Some("127.0.0.1:1"));
    // A measured answer first.
    let start = Instant::now();
    while check_once(port).map_or(true, |l| l != "50% ready up\n") {
        assert!(start.elapsed() < LIMIT, "no measured answer: {:?}", check_once(port));
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = open_fds(agent.pid());
    // 300 checkers that connect and never read nor close.
    let mut idle = Vec::new();
    let mut most = 0;
    for _ in 0..300 {
        idle.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        most = most.max(open_fds(agent.pid()));
    }
    let refused =
        agent.wait_for(0, LIMIT, "the refusals logged", |l| l.contains("connections closed at once"));
    assert!(refused.contains("over 64 at a time"), "{refused}");
    assert!(most <= base + 64 + 1, "{most} descriptors open (from {base}): the answers are not bounded");
    // While the idle ones are held, a checker gets its line within the answers' timeout.
    let start = Instant::now();
    loop {
        match check_once(port) {
            Ok(l) if l == "50% ready up\n" => break,
            other => assert!(start.elapsed() < LIMIT, "no answer during the flood: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Logged at powers of two: 20 lines would be a million refusals.
    let logged = agent.lines().iter().filter(|l| l.contains("closed at once")).count();
    assert!(logged <= 20, "the refusals are not rate-limited: {logged} lines");
    drop(idle);
}

#[test]
fn one_agent_feeds_a_director_and_haproxy_at_once() {
    haproxy_bin();
    let dir = tempdir("haproxy-and-master");
    let (load, admin) = (dir.join("load"), dir.join("admin"));
    write_load(&load, 0.9);
    // The master hears the agent over feedbackd's own protocol; HAProxy over agent-check.
    let (m, listen) = polling_master(&[]);
    let (agent, port) = agent_with_check(&dir, &load, &admin, Some(&listen));
    agent.wait_for(0, LIMIT, "registered", |l| l.contains("registered; every service matched"));
    let (_h, sock) = start_haproxy(&dir, port);
    m.wait_for(0, LIMIT, "added at 90", |l| l.contains("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 90"));
    wait_haproxy(&sock, "weight 90", |s| s.weight == 90);
    // One load change, both follow: the director by its law (1 + 0.2 × 99), HAProxy in percent.
    let mark = m.mark();
    write_load(&load, 0.2);
    m.wait_for(mark, LIMIT, "weight 21", weight_is("10.0.0.2:80", 21));
    wait_haproxy(&sock, "weight 20", |s| s.weight == 20);
    // One drain, both drain.
    let mark = m.mark();
    write_admin(&admin, "drain");
    m.wait_for(mark, LIMIT, "drained", weight_is("10.0.0.2:80", 0));
    wait_haproxy(&sock, "DRAIN", |s| s.admin & 0x08 != 0);
}

#[test]
fn the_journal_of_polled_agents_replays_to_the_same_decisions() {
    use feedbackd_proto::journal::{Entry, parse_journal};
    let dir = tempdir("agentcheck-parity");
    let journal = dir.join("master.journal");
    let (load, admin) = (dir.join("load"), dir.join("admin"));
    write_load(&load, 0.9);
    let (mut agent, port) = agent_with_check(&dir, &load, &admin, Some("127.0.0.1:1"));
    let fake = std::sync::Arc::new(std::sync::Mutex::new("40% up\n".to_owned()));
    let fake_port = fake_agent(fake.clone());
    let record = journal.to_str().unwrap();
    let (mut m, _) = polling_master_with(
        &[
            format!("tcp:10.0.0.1:80/10.0.0.2:80@127.0.0.1:{port}"),
            format!("tcp:10.0.0.1:80/10.0.0.3:80@127.0.0.1:{fake_port}"),
        ],
        &["--record", record, "--remove-after", "2s", "--no-status"],
    );
    m.wait_for(0, LIMIT, "rs1 added", |l| l.contains("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 90"));
    m.wait_for(0, LIMIT, "rs2 added", |l| l.contains("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 41"));
    let mark = m.mark();
    write_load(&load, 0.3);
    *fake.lock().unwrap() = "down\n".to_owned();
    m.wait_for(mark, LIMIT, "rs1 at 31", weight_is("10.0.0.2:80", 31));
    m.wait_for(mark, LIMIT, "rs2 down", weight_is("10.0.0.3:80", 0));
    let mark = m.mark();
    write_admin(&admin, "drain");
    *fake.lock().unwrap() = "80% up\n".to_owned();
    m.wait_for(mark, LIMIT, "rs1 drained", weight_is("10.0.0.2:80", 0));
    m.wait_for(mark, LIMIT, "rs2 at 80", weight_is("10.0.0.3:80", 80));
    // rs1's agent dies: silence, then removal.
    let mark = m.mark();
    agent.signal(nix::sys::signal::Signal::SIGKILL);
    agent.wait_exit(LIMIT);
    m.wait_for(mark, LIMIT, "rs1 removed", |l| l.contains("remove TCP  10.0.0.1:80 -> 10.0.0.2:80"));
    m.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(m.wait_exit(LIMIT).success(), "{}", m.output());

    let text = std::fs::read_to_string(&journal).unwrap();
    let records = parse_journal(&text).unwrap_or_else(|e| panic!("{}: {e}", journal.display()));
    let polled = records.iter().filter(|r| matches!(r.entry, Entry::Polled { .. })).count();
    assert!(polled >= 4, "{polled} polled answers journalled");
    let live: Vec<_> = records
        .iter()
        .filter_map(|r| match r.entry {
            Entry::Decision(d) => Some((r.t, d)),
            _ => None,
        })
        .collect();
    assert!(live.len() >= 7, "{live:?}");
    let sim = sim_core::feedback::replay(&records).unwrap_or_else(|e| panic!("{}: {e}", journal.display()));
    let decided = |v: &[(feedbackd_proto::Time, _)]| v.iter().map(|(_, d)| *d).collect::<Vec<_>>();
    assert_eq!(decided(&sim), decided(&live), "{}: the simulator decided differently", journal.display());
    // An answer's decisions at its time; silence's at most 1 s before the live timer fired.
    for ((lt, d), (st, _)) in live.iter().zip(&sim) {
        assert!(
            st <= lt && lt.saturating_since(*st) <= feedbackd_proto::Duration::from_secs(1),
            "{d:?}: {st} vs {lt}"
        );
    }
}
