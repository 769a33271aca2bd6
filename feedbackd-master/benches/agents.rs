//! The master under many agents on loopback: `cargo bench -p feedbackd-master --bench agents`
//! (`-- N SECONDS` to change the 10,000 agents and 10 s per phase).
//!
//! Starts the real `feedbackd-master` binary (dry-run backend, one virtual service),
//! connects N agents from this process (each one `feedbackd_proto::agent::Agent` on its own
//! TCP connection, reporting once a second at a random phase), and measures:
//! - the time for all N to register;
//! - the master's CPU (/proc/PID/schedstat over the phase) and memory (VmRSS,
//!   VmHWM), in a phase where reports change no weight and in one where every report does;
//! - report → weight change latency: from writing a report whose capacity changes the
//!   weight to reading the Ack, which the master sends after applying the change;
//! - as a baseline in the same run, the same reports through the `Master` state machine
//!   in-process (no sockets, no backend), to show what the daemon around it costs.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use feedbackd_proto::Time;
use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::master::{ConnId, Master, MasterConfig, MasterEvent};
use feedbackd_proto::types::{AdminState, ServiceSpec};
use hdrhistogram::Histogram;
use lvs_ipvs::Forwarding;
use lvs_ipvs::{Protocol, ServiceKey};
use lvs_sched::feedback::LawConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

struct Shared {
    registered: AtomicU64,
    changing: AtomicBool,
    stop: AtomicBool,
    latency_us: Mutex<Histogram<u64>>,
    acks: AtomicU64,
}

fn spec(i: usize) -> ServiceSpec {
    let addr = IpAddr::V4(Ipv4Addr::new(10, 1 + (i / 65536) as u8, (i / 256 % 256) as u8, (i % 256) as u8));
    ServiceSpec {
        protocol: Protocol::Tcp,
        port: 80,
        vip: None,
        fwmark: None,
        forwarding: Forwarding::DirectRouting,
        address: Some(addr),
    }
}

fn agent_config(i: usize) -> AgentConfig {
    AgentConfig {
        agent_id: format!("a{i}"),
        services: vec![spec(i)],
        interval: feedbackd_proto::Duration::from_secs(1),
        psk: None,
        master_timeout: feedbackd_proto::Duration::from_secs(30),
    }
}

fn sample(cap: f64) -> Sample {
    Sample { admin: AdminState::Ready, capacity: vec![Some(cap)], metrics: Vec::new() }
}

async fn run_agent(i: usize, addr: String, shared: Arc<Shared>, start: Instant) {
    let Ok(mut sock) = TcpStream::connect(addr).await else { return };
    let _ = sock.set_nodelay(true);
    let now = || Time(start.elapsed().as_nanos() as u64);
    let mut agent = Agent::new(agent_config(i));
    agent.handle_connected(now(), [i as u8; 16]);
    let mut buf = vec![0u8; 1024];
    let phase = Duration::from_micros((i as u64 * 7919) % 1_000_000);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, Duration::from_secs(1));
    let mut sent_at: Option<(u64, Instant)> = None;
    let mut flip = false;
    let mut seq = 1u64;
    loop {
        while let Some(b) = agent.poll_transmit() {
            if sock.write_all(&b).await.is_err() {
                return;
            }
        }
        while let Some(ev) = agent.poll_event() {
            match ev {
                AgentEvent::Registered { .. } => {
                    shared.registered.fetch_add(1, Ordering::Relaxed);
                }
                AgentEvent::Acked { seq: s, .. } => {
                    shared.acks.fetch_add(1, Ordering::Relaxed);
                    if let Some((want, t0)) = sent_at.take() {
                        if want == s && shared.changing.load(Ordering::Relaxed) {
                            let us = t0.elapsed().as_micros() as u64;
                            let _ = shared.latency_us.lock().await.record(us.max(1));
                        }
                    }
                }
                AgentEvent::Close { .. } => return,
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        tokio::select! {
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => agent.handle_input(now(), &buf[..n]),
            },
            _ = tick.tick() => {
                if agent.is_registered() {
                    let cap = if shared.changing.load(Ordering::Relaxed) {
                        flip = !flip;
                        if flip { 0.2 } else { 0.9 }
                    } else {
                        0.5
                    };
                    agent.handle_sample(now(), sample(cap));
                    seq += 1;
                    sent_at = Some((seq, Instant::now()));
                }
            }
        }
    }
}

/// (CPU time [s], VmRSS [KiB], VmHWM [KiB]) of a process.
fn usage(pid: u32) -> (f64, u64, u64) {
    // CPU time [ns] run on a CPU, from the scheduler (finer than stat's clock ticks).
    let sched = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    let cpu_s = sched.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (cpu_s, kb("VmRSS:"), kb("VmHWM:"))
}

/// The same N agents' registrations and `reports` reports each, through the state machine
/// alone: reports per second.
fn baseline(n: usize, reports: usize) -> f64 {
    let vs =
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
    let law = LawConfig {
        smoothing: 1.0,
        max_step: 0,
        dead_band: 0,
        slow_start: feedbackd_proto::Duration::ZERO,
        ..LawConfig::default()
    };
    let mut m = Master::new(MasterConfig {
        law,
        auth: feedbackd_proto::keys::Auth::Insecure,
        max_registrations_per_s: 0,
        ..MasterConfig::default()
    });
    m.handle_table(Time(0), &[vs], &[]);
    let mut agents: Vec<Agent> = (0..n).map(|i| Agent::new(agent_config(i))).collect();
    let pump = |m: &mut Master, a: &mut Agent, c: ConnId, t: Time| loop {
        let mut moved = false;
        while let Some(b) = a.poll_transmit() {
            m.handle_input(t, c, &b);
            moved = true;
        }
        while let Some(ev) = m.poll_event() {
            std::hint::black_box(matches!(ev, MasterEvent::SetWeight { .. }));
        }
        while let Some((_, b)) = m.poll_transmit() {
            a.handle_input(t, &b);
            moved = true;
        }
        while a.poll_event().is_some() {}
        if !moved {
            break;
        }
    };
    for (i, a) in agents.iter_mut().enumerate() {
        m.handle_connect(Time(0), ConnId(i as u64), IpAddr::V4(Ipv4Addr::LOCALHOST), [1; 16]);
        a.handle_connected(Time(0), [2; 16]);
        pump(&mut m, a, ConnId(i as u64), Time(0));
    }
    let t0 = Instant::now();
    for r in 0..reports {
        let t = Time((r as u64 + 1) * 1_000_000_000);
        for (i, a) in agents.iter_mut().enumerate() {
            a.handle_sample(t, sample(if r % 2 == 0 { 0.2 } else { 0.9 }));
            pump(&mut m, a, ConnId(i as u64), t);
        }
    }
    (n * reports) as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let mut master = Command::new(env!("CARGO_BIN_EXE_feedbackd-master"))
        .args([
            "--backend",
            "dry-run",
            "--service",
            "tcp:10.0.0.1:80",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--max-registrations-per-s",
            "0",
            "--no-status",
            "--smoothing",
            "1",
            "--max-step",
            "0",
            "--dead-band",
            "0",
            "--slow-start",
            "0s",
            "--quiesce-after",
            "30s",
            "--remove-after",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting feedbackd-master");
    let pid = master.id();
    let mut err = std::io::BufReader::new(master.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        if let Some(i) = line.find("listening on ") {
            break line[i + 13..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the master's log (one line per weight change) so it never blocks.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let (_, rss0, _) = usage(pid);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let shared = Arc::new(Shared {
        registered: AtomicU64::new(0),
        changing: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        acks: AtomicU64::new(0),
    });
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..n {
            tokio::spawn(run_agent(i, addr.clone(), shared.clone(), start));
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
        while (shared.registered.load(Ordering::Relaxed) as usize) < n {
            if start.elapsed() > Duration::from_secs(120) {
                panic!("only {} of {n} agents registered in 120 s", shared.registered.load(Ordering::Relaxed));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reg = start.elapsed();
        println!("agents: {n}; all registered in {:.2} s ({:.0} registrations/s)", reg.as_secs_f64(), n as f64 / reg.as_secs_f64());
        // Warm-up: every agent's first report adds its real server.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for changing in [false, true] {
            shared.changing.store(changing, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            shared.latency_us.lock().await.reset();
            let acks0 = shared.acks.load(Ordering::Relaxed);
            let (cpu0, _, _) = usage(pid);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let (cpu1, rss, hwm) = usage(pid);
            let wall = t0.elapsed().as_secs_f64();
            let acks = shared.acks.load(Ordering::Relaxed) - acks0;
            println!(
                "{}: {:.0} reports/s acknowledged; master CPU {:.1}% of one core ({:.1} µs per report); RSS {:.1} MiB (started at {:.1}), peak {:.1} MiB ({:.0} bytes per agent)",
                if changing { "every report changes a weight" } else { "reports change no weight" },
                acks as f64 / wall,
                100.0 * (cpu1 - cpu0) / wall,
                1e6 * (cpu1 - cpu0) / acks.max(1) as f64,
                rss as f64 / 1024.0,
                rss0 as f64 / 1024.0,
                hwm as f64 / 1024.0,
                (rss.saturating_sub(rss0) * 1024) as f64 / n as f64,
            );
            if changing {
                let h = shared.latency_us.lock().await;
                println!(
                    "report -> weight change (ack after apply): p50 {} µs, p90 {} µs, p99 {} µs, max {} µs over {} changes",
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.9),
                    h.value_at_quantile(0.99),
                    h.max(),
                    h.len()
                );
            }
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = master.wait();
    let base = baseline(n, 5);
    println!(
        "baseline, the Master state machine in-process (no sockets, no backend): {base:.0} reports/s, {:.2} µs per report",
        1e6 / base
    );
}
