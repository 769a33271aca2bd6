//! An agent driven from the tool: `feedbackd_proto`'s state machine over a blocking
//! socket, registering from a chosen loopback source, then either reporting and timing the
//! acks (the legitimate agent) or reporting without ever reading (a flood).

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feedbackd_proto::agent::{Agent as Machine, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::auth::Psk;
use feedbackd_proto::types::{AdminState, ServiceSpec};
use lvs_ipvs::Forwarding;
use lvs_ipvs::Protocol;

use crate::Latencies;

/// A registered agent.
pub struct Agent {
    sock: TcpStream,
    machine: Machine,
    start: Instant,
}

/// A connection to `master` from `source`, with a small receive window (so that a flood
/// agent that never reads shows it after a few kilobytes).
pub fn connect_from(master: &str, source: IpAddr) -> std::io::Result<TcpStream> {
    let sa: SocketAddr = master.parse().map_err(std::io::Error::other)?;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_recv_buffer_size(4096)?;
    sock.bind(&SocketAddr::new(source, 0).into())?;
    sock.connect_timeout(&sa.into(), Duration::from_secs(5))?;
    // A peer that stops reading (or vanishes without a reset) fails the write, not hangs it.
    sock.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(sock.into())
}

impl Agent {
    /// Connects and registers as `id` for tcp/80 claiming `address`; reads only until
    /// registered.
    pub fn register(
        master: &str,
        source: IpAddr,
        id: &str,
        address: &str,
        psk: Option<Psk>,
    ) -> std::io::Result<Agent> {
        let sock = connect_from(master, source)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let spec = ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::Masq,
            address: Some(address.parse().map_err(std::io::Error::other)?),
        };
        let config = AgentConfig {
            agent_id: id.into(),
            services: vec![spec],
            interval: feedbackd_proto::Duration::from_millis(50),
            psk,
            master_timeout: feedbackd_proto::Duration::from_secs(3600),
        };
        let mut a = Agent { sock, machine: Machine::new(config), start: Instant::now() };
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        a.machine.handle_connected(a.now(), nonce);
        let mut buf = [0u8; 4096];
        while !a.machine.is_registered() {
            a.send()?;
            while let Some(ev) = a.machine.poll_event() {
                if let AgentEvent::Close { reason, .. } = ev {
                    return Err(std::io::Error::other(reason));
                }
            }
            let n = a.sock.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("master closed the connection"));
            }
            let now = a.now();
            a.machine.handle_input(now, &buf[..n]);
        }
        Ok(a)
    }

    fn now(&self) -> feedbackd_proto::Time {
        feedbackd_proto::Time(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn send(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.machine.poll_transmit() {
            self.sock.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Sends one report (reads nothing).
    pub fn report(&mut self, capacity: f64) -> std::io::Result<()> {
        let sample = Sample { admin: AdminState::Ready, capacity: vec![Some(capacity)], metrics: Vec::new() };
        let now = self.now();
        self.machine.handle_sample(now, sample);
        self.send()
    }

    /// Reports (a steady capacity of 0.5) every `interval` until `stop`, timing each report to its ack on a reader
    /// thread: the count of reports sent, and the latencies [µs].
    pub fn run_reporting(self, interval: Duration, stop: Arc<AtomicBool>) -> (Arc<AtomicU64>, Latencies) {
        let sent = Arc::new(AtomicU64::new(0));
        let latencies: Latencies = Arc::new(Mutex::new(Vec::new()));
        let mut rd = self.sock.try_clone().expect("socket clone");
        let _ = rd.set_read_timeout(Some(Duration::from_millis(200)));
        // Acks come in report order: the oldest pending report is the one acknowledged.
        let shared = Arc::new(Mutex::new((self, VecDeque::<Instant>::new())));
        let (w_shared, w_sent, w_stop) = (shared.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            while !w_stop.load(Ordering::Relaxed) {
                let mut g = w_shared.lock().expect("agent");
                let (a, pending) = &mut *g;
                if a.report(0.5).is_err() {
                    return;
                }
                pending.push_back(Instant::now());
                w_sent.fetch_add(1, Ordering::Relaxed);
                drop(g);
                std::thread::sleep(interval);
            }
        });
        let r_lat = latencies.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let n = match rd.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                let at = Instant::now();
                let mut g = shared.lock().expect("agent");
                let (a, pending) = &mut *g;
                let now = a.now();
                a.machine.handle_input(now, &buf[..n]);
                while let Some(ev) = a.machine.poll_event() {
                    if let AgentEvent::Acked { .. } = ev {
                        if let Some(t) = pending.pop_front() {
                            let us = u64::try_from(at.duration_since(t).as_micros()).unwrap_or(u64::MAX);
                            r_lat.lock().expect("latencies").push(us);
                        }
                    }
                }
            }
        });
        (sent, latencies)
    }
}
