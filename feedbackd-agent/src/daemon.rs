//! The agent's loops: one sampler, and one connection loop per director, each driving its
//! own [`Agent`] state machine. No policy lives here: timeouts, authentication and the
//! report format are `feedbackd-proto`'s.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use feedbackd_proto::Time;
use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::backoff::Backoff;
use feedbackd_proto::conf::DirectorConf;
use feedbackd_proto::types::AdminState;
use feedbackd_proto::wire::{self, Metric};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::load::ServiceLoad;
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

/// Reads the admin file: `ready`, `drain` or `maint` (missing: ready). At most 64 bytes
/// are read.
pub fn admin_state(path: Option<&Path>) -> AdminState {
    use std::io::Read;
    let Some(path) = path else { return AdminState::Ready };
    let mut bytes = Vec::new();
    if std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut bytes)).is_err() {
        return AdminState::Ready;
    }
    match String::from_utf8_lossy(&bytes).trim() {
        "drain" => AdminState::Drain,
        "maint" | "maintenance" => AdminState::Maint,
        "ready" | "" => AdminState::Ready,
        other => {
            log!("{}: unknown admin state {other:?} (ready, drain, maint): taking ready", path.display());
            AdminState::Ready
        }
    }
}

/// One measurement of every service (blocking: modules read files and run commands).
/// Metrics keep their first value per name, at most [`wire::MAX_METRICS`].
pub fn measure(loads: &mut [ServiceLoad], admin_file: Option<&Path>) -> Sample {
    let mut capacity = Vec::with_capacity(loads.len());
    let mut metrics: Vec<Metric> = Vec::new();
    for load in loads.iter_mut() {
        let (cap, m, errors) = load.sample();
        for e in errors {
            log!("{e}");
        }
        capacity.push(cap);
        for (name, value) in m {
            if !metrics.iter().any(|x| x.name == name) && metrics.len() < wire::MAX_METRICS {
                metrics.push(Metric { name, value });
            }
        }
    }
    Sample { admin: admin_state(admin_file), capacity, metrics }
}

/// Waits for the first of the agent's tasks to end. Until shutdown none should: a task
/// that ends (a panic, most likely) would leave the process up doing nothing, so the
/// caller exits non-zero and systemd restarts the agent. Returns what happened.
pub async fn supervise(tasks: &mut tokio::task::JoinSet<()>) -> String {
    match tasks.join_next().await {
        None => "no task was running".to_owned(),
        Some(Ok(())) => "a task ended before shutdown".to_owned(),
        Some(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            format!("a task panicked: {what}")
        }
        Some(Err(e)) => format!("a task was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_task_is_reported_and_the_others_do_not_hide_it() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let what = rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            tasks.spawn(std::future::pending::<()>());
            tasks.spawn(async { panic!("an agent registers 1 to 32 services") });
            tasks.spawn(std::future::pending::<()>());
            supervise(&mut tasks).await
        });
        assert_eq!(what, "a task panicked: an agent registers 1 to 32 services");
        let what = rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            tasks.spawn(std::future::pending::<()>());
            tasks.spawn(async {});
            supervise(&mut tasks).await
        });
        assert_eq!(what, "a task ended before shutdown");
    }

    #[test]
    fn the_admin_file_is_read_bounded() {
        let dir = std::env::temp_dir().join(format!("fbd-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("admin");
        std::fs::write(&f, "drain\n").unwrap();
        assert_eq!(admin_state(Some(&f)), AdminState::Drain);
        std::fs::write(&f, "maint").unwrap();
        assert_eq!(admin_state(Some(&f)), AdminState::Maint);
        assert_eq!(admin_state(Some(&dir.join("missing"))), AdminState::Ready);
        // /dev/zero is read 64 bytes at most (an unknown state: ready).
        assert_eq!(admin_state(Some(Path::new("/dev/zero"))), AdminState::Ready);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
