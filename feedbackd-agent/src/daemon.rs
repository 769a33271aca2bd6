//! The agent's loops: one sampler, and one connection loop per director, each driving its
//! own [`Agent`] state machine. No policy lives here: timeouts, authentication and the
//! report format are `feedbackd-proto`'s.

use std::sync::Arc;
use std::time::Instant;

use feedbackd_proto::Time;
use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::backoff::Backoff;
use feedbackd_proto::conf::DirectorConf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::log;

/// The clock shared by the loops: protocol time is nanoseconds since the agent started.
#[derive(Clone, Copy, Debug)]
pub struct Clock(pub Instant);

impl Clock {
    /// Now, as protocol time.
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// A protocol time as an instant.
    pub fn instant(&self, t: Time) -> Instant {
        self.0 + std::time::Duration::from_nanos(t.as_nanos())
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    u64::from_le_bytes(b)
}

fn nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    getrandom::fill(&mut n).expect("the OS random source works");
    n
}

/// How one connection ended.
enum Ended {
    /// Reconnect after a backoff.
    Retry(String),
    /// Said goodbye: stop.
    Done,
}

/// Reports to one director until `shutdown` turns true; then says goodbye and returns.
pub async fn director_loop(
    director: DirectorConf,
    config: Arc<AgentConfig>,
    clock: Clock,
    mut samples: watch::Receiver<Option<Sample>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = format!("{}:{}", director.host, director.port);
    let mut agent = Agent::new((*config).clone());
    let mut backoff = Backoff::agent();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connect = tokio::time::timeout(
            std::time::Duration::from_nanos(config.master_timeout.as_nanos()),
            TcpStream::connect((director.host.as_str(), director.port)),
        );
        let ended = match connect.await {
            Ok(Ok(sock)) => {
                let _ = sock.set_nodelay(true);
                agent.handle_connected(clock.now(), nonce());
                let ended =
                    session(&name, &mut agent, sock, clock, &mut samples, &mut shutdown, &mut backoff).await;
                agent.handle_disconnected(clock.now());
                ended
            }
            Ok(Err(e)) => Ended::Retry(format!("connect: {e}")),
            Err(_) => Ended::Retry("connect: timed out".into()),
        };
        match ended {
            Ended::Done => return,
            Ended::Retry(why) => {
                let delay = backoff.next_delay(random_u64());
                log!(
                    "director {name}: {why}; retrying in {:.1} s (attempt {})",
                    delay.as_secs_f64(),
                    backoff.failures()
                );
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_nanos(delay.as_nanos())) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

async fn session(
    name: &str,
    agent: &mut Agent,
    mut sock: TcpStream,
    clock: Clock,
    samples: &mut watch::Receiver<Option<Sample>>,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Ended {
    let mut buf = vec![0u8; 4096];
    let mut leaving = false;
    let mut sampling = true;
    // A sample taken before this connection: it is sent right after registration.
    if let Some(s) = samples.borrow_and_update().clone() {
        agent.handle_sample(clock.now(), s);
    }
    loop {
        // Write what the state machine has, then act on its events.
        while let Some(bytes) = agent.poll_transmit() {
            if let Err(e) = sock.write_all(&bytes).await {
                return Ended::Retry(format!("write: {e}"));
            }
        }
        while let Some(ev) = agent.poll_event() {
            match ev {
                AgentEvent::Registered { matched } => {
                    backoff.reset();
                    let unmatched: Vec<String> = agent
                        .config()
                        .services
                        .iter()
                        .zip(&matched)
                        .filter(|(_, m)| **m == 0)
                        .map(|(s, _)| format!("{} port {}", s.protocol, s.port))
                        .collect();
                    if unmatched.is_empty() {
                        log!("director {name}: registered; every service matched a virtual service");
                    } else {
                        log!(
                            "director {name}: registered; no virtual service there yet for {} (the master matches again when one is created)",
                            unmatched.join(", ")
                        );
                    }
                }
                AgentEvent::Acked { .. } => {}
                AgentEvent::Close { reason, retry } => {
                    let _ = sock.shutdown().await;
                    if retry {
                        return Ended::Retry(reason);
                    }
                    log!("director {name}: {reason}");
                    return Ended::Done;
                }
            }
        }
        if leaving {
            // The goodbye went out; the state machine's Close event returned above.
            return Ended::Done;
        }
        let deadline = agent.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            read = sock.read(&mut buf) => match read {
                Ok(0) => return Ended::Retry("master closed the connection".into()),
                Ok(n) => agent.handle_input(clock.now(), &buf[..n]),
                Err(e) => return Ended::Retry(format!("read: {e}")),
            },
            changed = samples.changed(), if sampling => {
                if changed.is_err() {
                    // The sampler stopped (the agent is shutting down): keep the connection
                    // until the goodbye.
                    sampling = false;
                } else if let Some(s) = samples.borrow_and_update().clone() {
                    agent.handle_sample(clock.now(), s);
                }
            }
            () = sleep_until(deadline) => agent.handle_timeout(clock.now()),
            _ = shutdown.changed() => {
                agent.handle_goodbye(clock.now(), "agent stopping (SIGTERM)");
                leaving = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
