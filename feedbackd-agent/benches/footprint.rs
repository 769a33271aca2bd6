//! The agent's cost at a 1 s report interval:
//! `cargo bench -p feedbackd-agent --bench footprint` (`-- SECONDS`, default 30).
//!
//! Runs the real `feedbackd-agent` binary (cpuload module, the default) against a master
//! in this process (the `feedbackd_proto::master::Master` state machine on a loopback TCP
//! listener), lets it settle, then reads its CPU time (from /proc/PID/schedstat)
//! over the window and its memory (VmRSS, VmHWM). As a baseline in the same run, the same
//! figures for `sleep`, the smallest process there is.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use feedbackd_proto::Time;
use feedbackd_proto::master::{ConnId, Master, MasterConfig};
use lvs_ipvs::{Protocol, ServiceKey};

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

/// A one-connection master: answers the agent with the real state machine.
fn serve(listener: TcpListener) {
    use std::io::Read as _;
    let (mut sock, peer) = listener.accept().unwrap();
    let start = Instant::now();
    let now = || Time(start.elapsed().as_nanos() as u64);
    let vs =
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
    let mut m =
        Master::new(MasterConfig { auth: feedbackd_proto::keys::Auth::Insecure, ..MasterConfig::default() });
    m.handle_table(now(), &[vs], &[]);
    m.handle_connect(now(), ConnId(1), peer.ip(), [3; 16]);
    let mut buf = [0u8; 4096];
    loop {
        while let Some((_, b)) = m.poll_transmit() {
            if sock.write_all(&b).is_err() {
                return;
            }
        }
        while m.poll_event().is_some() {}
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => m.handle_input(now(), ConnId(1), &buf[..n]),
        }
    }
}

fn main() {
    let secs: u64 =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|a| a.parse().ok()).unwrap_or(30);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || serve(listener));
    let dir = std::env::temp_dir().join(format!("fbd-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("agent.conf");
    std::fs::write(
        &conf,
        format!("director = 127.0.0.1:{port}\ninterval = 1s\nservice = http\n\tprotocol = TCP\n\tport = 80\n\tmodule = cpuload.so\n\tforwarding = NAT\n"),
    )
    .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_feedbackd-agent"))
        .arg("--config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sleep = Command::new("sleep").arg("3600").spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (a0, _, _) = usage(agent.id());
    let (s0, _, _) = usage(sleep.id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t0.elapsed().as_secs_f64();
    let (a1, arss, ahwm) = usage(agent.id());
    let (s1, srss, _) = usage(sleep.id());
    println!(
        "feedbackd-agent, 1 s interval, cpuload, {secs} s: CPU {:.3}% of one core ({:.2} ms per report); RSS {:.2} MiB, peak {:.2} MiB",
        100.0 * (a1 - a0) / wall,
        1e3 * (a1 - a0) / wall,
        arss as f64 / 1024.0,
        ahwm as f64 / 1024.0
    );
    println!(
        "baseline, sleep(1): CPU {:.3}%; RSS {:.2} MiB (the agent is {:.1}x that)",
        100.0 * (s1 - s0) / wall,
        srss as f64 / 1024.0,
        arss as f64 / srss.max(1) as f64
    );
    let _ = agent.kill();
    let _ = sleep.kill();
    let _ = agent.wait();
    let _ = sleep.wait();
    let _ = std::fs::remove_dir_all(dir);
}
