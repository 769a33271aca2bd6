//! `feedbackd-flood`: issue 15's floods against a real `feedbackd-master` on loopback
//! (dry-run backend), one at a time, while one legitimate agent reports every 50 ms. For
//! each flood it prints the master's peak resident memory, its CPU time and log lines, and
//! the legitimate agent's report-to-ack latency (p50, p99, max) and missing acks. Not part
//! of feedbackd (a measurement tool; docs/feedbackd.md, "Limits", has its figures).
//!
//! The floods (all from 127.0.x.y sources other than 127.0.0.1, the legitimate agent's):
//! - `none`: the baseline.
//! - `connect`: connect and close as fast as four threads can, from 64 sources.
//! - `half-open`: open connections that never send anything, and hold them (the master runs
//!   under `ulimit -n` --nofile, 1024 by default, as the unit's default limit).
//! - `register`: 200 connections from 200 sources register made-up agents claiming
//!   203.0.113.x, then report every 100 ms.
//! - `no-read`: five agents report as fast as they can and never read the acks (they
//!   reconnect when dropped).
//!
//! The flood's threads run at niceness --flood-nice (10), the master and the legitimate
//! agent at 0: on one machine, the attacker's CPU should not be what slows the master.
//!
//! Exit status: 0 after the table, 2 if the master could not be run.

mod agent;

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

use agent::{Agent, connect_from};

/// Runs issue 15's floods against feedbackd-master and measures what a legitimate agent sees.
#[derive(Debug, Parser)]
#[command(name = "feedbackd-flood", max_term_width = 100)]
struct Cli {
    /// The master binary [default: feedbackd-master beside this program].
    #[arg(long, value_name = "PATH")]
    master: Option<PathBuf>,
    /// Seconds per flood.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The floods to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "none,connect,half-open,register,no-read")]
    floods: Vec<String>,
    /// The master's descriptor limit (`ulimit -n`).
    #[arg(long, default_value_t = 1024)]
    nofile: u32,
    /// An extra argument for the master (repeatable), e.g. `--master-arg=--keys-file=K`.
    #[arg(long = "master-arg", value_name = "ARG", allow_hyphen_values = true)]
    master_args: Vec<String>,
    /// The niceness of the flood's threads (the master and the legitimate agent run at 0):
    /// on one machine, the flood's own CPU should not be what slows the master down.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    flood_nice: i32,
    /// The agents' key file (if the master requires keys).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

/// What one flood's run measured.
struct Figures {
    rss_max_kib: u64,
    cpu_s: f64,
    log_lines: u64,
    latencies_us: Vec<u64>,
    sent: u64,
    flood_ops: u64,
}

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    if cli.key_file.is_none() && !cli.master_args.iter().any(|a| a.starts_with("--insecure")) {
        match write_keys() {
            Ok((keys, key)) => {
                cli.master_args.push(format!("--keys-file={}", keys.display()));
                cli.key_file = Some(key);
            }
            Err(e) => {
                eprintln!("feedbackd-flood: writing the keys file: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let master = cli
        .master
        .clone()
        .unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("feedbackd-master"));
    let psk = cli.key_file.as_ref().map(|p| {
        let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        feedbackd_proto::auth::Psk::from_file_contents(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    });
    println!(
        "{:<10} {:>9} {:>12} {:>7} {:>9} {:>8} {:>8} {:>8} {:>7}",
        "flood", "ops", "rss_max_MB", "cpu_s", "log_lines", "p50_ms", "p99_ms", "max_ms", "missing"
    );
    for flood in &cli.floods {
        let f = match run_one(&cli, &master, flood, psk.clone()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("feedbackd-flood: {flood}: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let mut l = f.latencies_us.clone();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(f64::NAN, |us| *us as f64 / 1000.0)
        };
        println!(
            "{:<10} {:>9} {:>12.1} {:>7.2} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            flood,
            f.flood_ops,
            f.rss_max_kib as f64 / 1024.0,
            f.cpu_s,
            f.log_lines,
            pct(0.50),
            pct(0.99),
            l.last().map_or(f64::NAN, |us| *us as f64 / 1000.0),
            f.sent.saturating_sub(l.len() as u64)
        );
    }
    std::process::ExitCode::SUCCESS
}

/// Without `--key-file` (and without `--master-arg=--insecure`), the run's keys in a fresh
/// temporary folder, as `feedbackd-master add-agent` would write them: `rs1` may claim
/// 10.0.0.2, the `greedy` agents 10.0.1.0/24 (compromised agents with valid keys), and the
/// `evil` agents hold a key but may claim only 10.0.0.0/8, not the 203.0.113.x they try.
/// Returns (keys file, the agents' key file).
fn write_keys() -> std::io::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("feedbackd-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut lines = format!("rs1 {key} 10.0.0.2 tcp:80\n");
    for i in 0..5 {
        lines.push_str(&format!("greedy{i} {key} 10.0.1.0/24 tcp:80\n"));
    }
    for i in 0..200 {
        lines.push_str(&format!("evil{i} {key} 10.0.0.0/8 tcp:80\n"));
    }
    let private = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    };
    let (keys, agent) = (dir.join("keys"), dir.join("agent.key"));
    private(&keys, &lines)?;
    private(&agent, &key)?;
    Ok((keys, agent))
}

fn run_one(
    cli: &Cli,
    master: &std::path::Path,
    flood: &str,
    psk: Option<feedbackd_proto::auth::Psk>,
) -> Result<Figures, String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {} && exec \"$0\" \"$@\"", cli.nofile)).arg(master);
    cmd.args(["--backend", "dry-run", "--service", "tcp:10.0.0.1:80", "--listen", "127.0.0.1:0"]);
    cmd.args(["--status-listen", "127.0.0.1:0"]).args(&cli.master_args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", master.display()))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let log_lines = Arc::new(AtomicU64::new(0));
    let stderr = child.stderr.take().expect("piped");
    let counter = log_lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            counter.fetch_add(1, Ordering::Relaxed);
            if line.contains("listening on ") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).map_err(|_| "the master did not start".to_owned())?;
    let listen =
        line.split("listening on ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("").to_owned();
    let result = measure(cli, pid, &listen, flood, psk, &log_lines);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    result
}

fn measure(
    cli: &Cli,
    pid: u32,
    listen: &str,
    flood: &str,
    psk: Option<feedbackd_proto::auth::Psk>,
    log_lines: &AtomicU64,
) -> Result<Figures, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let legit = Agent::register(listen, IpAddr::V4(Ipv4Addr::LOCALHOST), "rs1", "10.0.0.2", psk.clone())
        .map_err(|e| format!("the legitimate agent: {e}"))?;
    let (sent, latencies) = legit.run_reporting(Duration::from_millis(50), stop.clone());
    let ops = Arc::new(AtomicU64::new(0));
    let flooders = start_flood(flood, listen, psk, &stop, &ops, cli.flood_nice)?;
    let cpu0 = cpu_ticks(pid);
    let lines0 = log_lines.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut rss_max = 0;
    while start.elapsed() < Duration::from_secs(cli.seconds) {
        rss_max = rss_max.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_ticks(pid) - cpu0;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.join();
    }
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let latencies_us = latencies.lock().expect("latencies").clone();
    Ok(Figures {
        rss_max_kib: rss_max,
        cpu_s: cpu as f64 / ticks,
        log_lines: log_lines.load(Ordering::Relaxed) - lines0,
        latencies_us,
        sent: sent.load(Ordering::Relaxed),
        flood_ops: ops.load(Ordering::Relaxed),
    })
}

/// 127.0.`block`.`i` (never 127.0.0.1).
fn source(block: u8, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, block, (i % 250) as u8 + 1))
}

type Threads = Vec<std::thread::JoinHandle<()>>;

fn start_flood(
    flood: &str,
    listen: &str,
    psk: Option<feedbackd_proto::auth::Psk>,
    stop: &Arc<AtomicBool>,
    ops: &Arc<AtomicU64>,
    nice: i32,
) -> Result<Threads, String> {
    let spawn =
        |n: u32, f: fn(u32, String, Option<feedbackd_proto::auth::Psk>, Arc<AtomicBool>, Arc<AtomicU64>)| {
            (0..n)
                .map(|i| {
                    let (l, p, s, o) = (listen.to_owned(), psk.clone(), stop.clone(), ops.clone());
                    std::thread::spawn(move || {
                        lower_priority(nice);
                        f(i, l, p, s, o)
                    })
                })
                .collect::<Threads>()
        };
    Ok(match flood {
        "none" => Vec::new(),
        "connect" => spawn(4, |i, l, _, stop, ops| {
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                let _ = connect_from(&l, source(2, n % 64));
                n += 4;
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }),
        "half-open" => spawn(1, |_, l, _, stop, ops| {
            let mut held = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match connect_from(&l, source(3 + (n / 250) as u8 % 8, n)) {
                    Ok(s) if held.len() < 20_000 => {
                        held.push(s);
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => std::thread::sleep(Duration::from_millis(1)),
                }
                n += 1;
            }
        }),
        "register" => spawn(200, |i, l, p, stop, ops| {
            let Ok(mut a) = Agent::register(
                &l,
                source(12, i),
                &format!("evil{i}"),
                &format!("203.0.113.{}", i % 250 + 1),
                p,
            ) else {
                return;
            };
            ops.fetch_add(1, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) && a.report(0.9).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }),
        "no-read" => spawn(5, |i, l, p, stop, ops| {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut a) = Agent::register(
                    &l,
                    source(13, i),
                    &format!("greedy{i}"),
                    &format!("10.0.1.{}", i + 1),
                    p.clone(),
                ) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                while !stop.load(Ordering::Relaxed) && a.report(0.5).is_ok() {
                    if ops.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }),
        other => {
            return Err(format!("unknown flood {other:?} (none, connect, half-open, register, no-read)"));
        }
    })
}

/// Lowers the calling thread's priority (`renice` of its thread id; Linux niceness is per
/// thread): the flood's CPU stands for an attacker's own machine, not the director's.
fn lower_priority(nice: i32) {
    if nice != 0 {
        let tid = nix::unistd::gettid().to_string();
        let _ =
            Command::new("renice").args(["-n", &nice.to_string(), "-p", &tid]).stdout(Stdio::null()).status();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = text.rfind(')') else { return 0 };
    let f: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// The legitimate agent's latencies, shared with its reader thread.
type Latencies = Arc<Mutex<Vec<u64>>>;
