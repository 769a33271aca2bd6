//! HAProxy's agent-check, answered: `--agent-check ADDR:PORT[/SERVICE]` (or an
//! `agent_check` line of the configuration) listens on a TCP port, and to each connection writes one line built from the latest sample of one
//! service ([`feedbackd_proto::agentcheck::format_reply`]: `75% ready up`), then closes.
//! HAProxy (`server ... agent-check agent-port PORT`) sets the server's weight to that
//! percentage of its configured weight and follows the admin state; feedbackd-master's own
//! `--agent-check` polls the same port.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] answers at once (more are closed at accept), each
//! done within [`ANSWER_TIMEOUT`], at most [`MAX_DISCARD_BYTES`] read from the checker.
//! The answer is taken from the sampler's latest sample, so a checker never waits for a
//! measurement and never slows the reports to the directors.

use std::sync::Arc;
use std::time::Duration;

use feedbackd_proto::agent::Sample;
use feedbackd_proto::agentcheck::format_reply;
use feedbackd_proto::conf::{AgentCheckConf, ServiceConf};
use feedbackd_proto::wire::capacity_per_mille;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::log;

/// Answers in progress at once, all listeners together (the systemd unit allows the agent
/// 256 descriptors); a connection beyond is closed at accept.
pub const MAX_CONNECTIONS: usize = 64;

/// The longest an answer may take, the checker's close included.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes read (and dropped) from a checker (HAProxy's `agent-send` string).
pub const MAX_DISCARD_BYTES: usize = 1024;

/// Parses one `--agent-check ADDR:PORT[/SERVICE]` as the configuration's `agent_check`
/// lines are (SERVICE: a `service = NAME` name or its port; none: the first service).
pub fn parse(text: &str, services: &[ServiceConf]) -> Result<AgentCheckConf, String> {
    feedbackd_proto::conf::parse_agent_check(text, services, 0)
        .map_err(|e| format!("--agent-check {text}: {e}"))
}

/// The line answered for service `index` of `sample` (`None`: nothing measured yet, so a
/// description only, which changes nothing in HAProxy).
pub fn reply(sample: Option<&Sample>, index: usize) -> String {
    let Some(sample) = sample else { return "#feedbackd-agent: no measurement yet\n".to_owned() };
    let capacity = sample.capacity.get(index).copied().flatten().and_then(capacity_per_mille);
    format_reply(capacity, sample.admin)
}

/// The answers' budget, shared by every listener: [`MAX_CONNECTIONS`] at once.
pub fn permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_CONNECTIONS))
}

/// Accepts checkers on `listener` until `shutdown` turns true; each gets [`reply`] for
/// `service` from the latest of `samples`, within the shared `permits`.
pub async fn serve(
    listener: TcpListener,
    service: usize,
    samples: watch::Receiver<Option<Sample>>,
    mut shutdown: watch::Receiver<bool>,
    permits: Arc<Semaphore>,
) {
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let sock = match accepted {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors, most likely: let the answers in progress finish.
                log!("agent-check: accept failed: {e}; pausing accepts for 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                log!("agent-check: {refused} connections closed at once (over {MAX_CONNECTIONS} at a time)");
            }
            drop(sock);
            continue;
        };
        let line = reply(samples.borrow().as_ref(), service);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, answer(sock, line)).await;
            drop(permit);
        });
    }
}

/// Writes the line, closes the sending side, and reads what the checker sent until it
/// closes (at most [`MAX_DISCARD_BYTES`]): closing a socket with unread bytes would reset
/// the connection, and a reset may destroy the line before the checker reads it.
async fn answer(mut sock: TcpStream, line: String) -> std::io::Result<()> {
    let _ = sock.set_nodelay(true);
    sock.write_all(line.as_bytes()).await?;
    sock.shutdown().await?;
    let mut buf = [0u8; 256];
    let mut read = 0;
    while read <= MAX_DISCARD_BYTES {
        match sock.read(&mut buf).await? {
            0 => break,
            n => read += n,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use feedbackd_proto::types::AdminState;
    use feedbackd_proto::wire::Metric;

    use super::*;

    fn services() -> Vec<ServiceConf> {
        let text = "director = 10.0.0.1\nservice = http\nservice = dns\n  protocol = UDP\n";
        feedbackd_proto::conf::parse(text).unwrap().services
    }

    #[test]
    fn the_option_names_a_service_by_name_or_port() {
        let s = services();
        assert_eq!(
            parse("127.0.0.1:5555", &s).unwrap(),
            AgentCheckConf { addr: "127.0.0.1:5555".parse().unwrap(), service: 0, line: 0 }
        );
        assert_eq!(parse("[::1]:5555/DNS", &s).unwrap().service, 1);
        assert_eq!(parse("0.0.0.0:5555/53", &s).unwrap().service, 1);
        let e = parse("127.0.0.1:5555/ftp", &s).unwrap_err();
        assert!(e.contains("no service \"ftp\"") && e.contains("http (port 80), dns (port 53)"), "{e}");
        assert!(parse("localhost:5555", &s).unwrap_err().contains("not ADDR:PORT"));
        assert!(parse("127.0.0.1", &s).is_err());
    }

    #[test]
    fn the_reply_follows_the_sample() {
        let sample = Sample {
            admin: AdminState::Ready,
            capacity: vec![Some(0.754), None],
            metrics: vec![Metric { name: "qps".into(), value: 3.0 }],
        };
        assert_eq!(reply(Some(&sample), 0), "75% ready up\n");
        assert_eq!(reply(Some(&sample), 1), "ready up\n");
        let drain = Sample { admin: AdminState::Drain, ..sample.clone() };
        assert_eq!(reply(Some(&drain), 0), "75% drain up\n");
        let maint = Sample { admin: AdminState::Maint, capacity: vec![Some(f64::NAN)], ..sample };
        assert_eq!(reply(Some(&maint), 0), "maint up\n");
        assert!(reply(None, 0).starts_with('#'));
        // Every reply is one the grammar reads back.
        for line in [reply(Some(&maint), 0), reply(None, 0)] {
            feedbackd_proto::agentcheck::parse_reply(&line).unwrap();
        }
    }
}
