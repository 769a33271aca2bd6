//! Agent-check agents polled by the master: `--agent-check SERVER@ADDR:PORT[,FORWARDING]`
//! names a real server and the address of an agent that answers HAProxy's agent-check
//! protocol for it (a `feedbackd-agent --agent-check`, or any HAProxy agent). One task per
//! target connects every `--agent-check-interval`, reads one line
//! ([`feedbackd_proto::agentcheck::parse_reply`]) and sends the loop what the agent
//! advertises so far ([`Advertised`]); the loop hands it to
//! [`feedbackd_proto::master::Master::handle_polled`], the same law as a connected agent's
//! reports. No answer (refused, timed out, a bad reply) sends nothing: the master sees a
//! silent agent, quiesced then removed as any other.
//!
//! Bounds: at most [`MAX_TARGETS`] targets, one connection each at a time, each poll done
//! within its interval clamped to [`MIN_POLL_TIMEOUT`], [`MAX_POLL_TIMEOUT`], at most
//! [`feedbackd_proto::agentcheck::MAX_REPLY_BYTES`] read; a failing target logs when it
//! starts failing and when it answers again, not at every poll.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use feedbackd_proto::agentcheck::{Advertised, MAX_REPLY_BYTES, parse_reply};
use feedbackd_proto::types::{AdminState, Polled, RsKey, RsKeyText, ServiceSpec, parse_rs_key};
use lvs_ipvs::{Forwarding, Protocol, ServiceKey};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::log;

/// The most `--agent-check` targets.
pub const MAX_TARGETS: usize = 4096;

/// The shortest and longest `--agent-check-interval`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// See [`MIN_INTERVAL`].
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The longest one poll may take (connect, read, close), whatever the interval.
pub const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// What one poll is allowed even with a shorter interval: a busy agent host answering in
/// 150 ms is slow, not silent (the next poll waits for this one).
pub const MIN_POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers queued for the loop, across all targets (a poller waits when it is full).
const QUEUE: usize = 256;

/// One `--agent-check` target: the agent's address and the real server it speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The agent-check address polled.
    pub check: SocketAddr,
    /// The real server it speaks for.
    pub server: RsKey,
    /// The master's view of it (`agent-check:ADDR:PORT`, the server's service spec).
    pub polled: Arc<Polled>,
}

/// What a poller tells the daemon loop: an agent answered, with what it advertises so far.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Which agent.
    pub polled: Arc<Polled>,
    /// Its admin state (`down`, `fail` and `stopped` are drain: [`Advertised::for_master`]).
    pub admin: AdminState,
    /// Its capacity [per mille], if it has advertised a weight.
    pub capacity: Option<u16>,
}

/// Parses `SERVER@ADDR:PORT[,FORWARDING]`. SERVER is the real server as the console writes
/// it (`tcp:VIP:PORT/RIP:PORT`, `fwm:MARK/RIP:PORT`), its port the service's, as an
/// agent's `port =` line (agents have no port mapping); FORWARDING is an agent
/// configuration's `forwarding =` word (default NAT).
pub fn parse_target(text: &str, interval: Duration) -> Result<Target, String> {
    let bad = |why: String| format!("--agent-check {text}: {why}");
    let (server, check) = text.rsplit_once('@').ok_or_else(|| {
        bad("expected SERVER@ADDR:PORT, e.g. tcp:10.0.0.1:80/10.0.0.5:80@10.0.0.5:5555".into())
    })?;
    let (check, forwarding) = match check.split_once(',') {
        Some((c, f)) => (c, feedbackd_proto::conf::parse_forwarding(f).map_err(bad)?),
        None => (check, Forwarding::Masq),
    };
    let check: SocketAddr = check
        .parse()
        .map_err(|_| bad(format!("{check:?} is not ADDR:PORT (an IPv6 address in brackets)")))?;
    if check.port() == 0 {
        return Err(bad("the agent's port cannot be 0".into()));
    }
    let key = parse_rs_key(server).map_err(bad)?;
    let service = match key.service {
        ServiceKey::Addr { protocol, addr, port } => {
            if key.port != port {
                return Err(bad(format!(
                    "the real server's port {} differs from the service's {port}: feedbackd matches \
                     a server to a service by its port (write {})",
                    key.port,
                    RsKeyText(RsKey { port, ..key })
                )));
            }
            ServiceSpec { protocol, port, vip: Some(addr), fwmark: None, forwarding, address: Some(key.addr) }
        }
        ServiceKey::Fwmark { mark, .. } => ServiceSpec {
            protocol: Protocol::Tcp,
            port: key.port,
            vip: None,
            fwmark: Some(mark),
            forwarding,
            address: Some(key.addr),
        },
    };
    let interval_ms = u32::try_from(interval.as_millis()).map_err(|_| bad("interval too long".into()))?;
    let polled = Polled { id: format!("agent-check:{check}"), peer: check.ip(), service, interval_ms };
    Ok(Target { check, server: key, polled: Arc::new(polled) })
}

/// Parses every `--agent-check` with `--agent-check-interval`, bounded, without two
/// targets on one agent address (their ids would be one).
pub fn parse_targets(texts: &[String], interval: Duration) -> Result<Vec<Target>, String> {
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(format!("--agent-check-interval {interval:?} is outside [100ms, 1h]"));
    }
    if texts.len() > MAX_TARGETS {
        return Err(format!("{} --agent-check targets: at most {MAX_TARGETS}", texts.len()));
    }
    let mut targets: Vec<Target> = Vec::with_capacity(texts.len());
    for t in texts {
        let target = parse_target(t, interval)?;
        if let Some(first) = targets.iter().find(|x| x.check == target.check) {
            return Err(format!(
                "--agent-check {t}: the agent {} is already polled for {}",
                target.check,
                server_text(first)
            ));
        }
        targets.push(target);
    }
    Ok(targets)
}

/// The real server a target speaks for, for logs.
fn server_text(t: &Target) -> String {
    RsKeyText(t.server).to_string()
}

/// Targets named one by one in the start-up log; the rest are counted.
const LOGGED_TARGETS: usize = 8;

/// Starts one poller per target; the loop reads their answers from the receiver (which
/// never yields without targets). Target `i` of `n` starts `i/n` of its interval late, so
/// that the polls are spread over the interval (HAProxy offsets its checks alike) instead
/// of arriving all at once.
pub fn spawn(targets: &[Target]) -> mpsc::Receiver<Answer> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let n = u32::try_from(targets.len()).unwrap_or(u32::MAX).max(1);
    for (i, t) in targets.iter().enumerate() {
        let interval = Duration::from_millis(u64::from(t.polled.interval_ms));
        let offset = interval.mul_f64(f64::from(u32::try_from(i).unwrap_or(u32::MAX)) / f64::from(n));
        tokio::spawn(poll_loop(t.clone(), offset, tx.clone()));
        if i < LOGGED_TARGETS {
            log!(
                "polling agent-check agent {} every {} ms for {}",
                t.check,
                t.polled.interval_ms,
                server_text(t)
            );
        }
    }
    if targets.len() > LOGGED_TARGETS {
        log!("... and {} more agent-check agents", targets.len() - LOGGED_TARGETS);
    }
    rx
}

/// Polls `target` every interval, the first time after `offset`, until the loop is gone.
async fn poll_loop(target: Target, offset: Duration, tx: mpsc::Sender<Answer>) {
    let interval = Duration::from_millis(u64::from(target.polled.interval_ms));
    let timeout = interval.clamp(MIN_POLL_TIMEOUT, MAX_POLL_TIMEOUT);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut advertised = Advertised::default();
    let mut failing: Option<String> = None;
    loop {
        tick.tick().await;
        let reply = match tokio::time::timeout(timeout, poll_once(target.check)).await {
            Ok(Ok(line)) => parse_reply(&line).map_err(|e| format!("bad reply {:?}: {e}", shorten(&line))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        match reply {
            Ok(r) => {
                advertised.apply(&r);
                if failing.take().is_some() {
                    log!("agent-check {}: answers again ({advertised})", target.check);
                }
                let (admin, capacity) = advertised.for_master();
                let answer = Answer { polled: target.polled.clone(), admin, capacity };
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
            Err(why) => {
                if failing.as_deref() != Some(why.as_str()) {
                    log!(
                        "agent-check {} for {}: {why} (silent to the master)",
                        target.check,
                        server_text(&target)
                    );
                    failing = Some(why);
                }
            }
        }
    }
}

/// One agent-check: connect, read one line (up to its end or the close, at most
/// [`MAX_REPLY_BYTES`]), close. Sends nothing (no `agent-send`).
async fn poll_once(addr: SocketAddr) -> Result<String, String> {
    let mut sock = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let mut buf = vec![0u8; MAX_REPLY_BYTES];
    let mut len = 0;
    while len < buf.len() {
        match sock.read(&mut buf[len..]).await.map_err(|e| format!("read: {e}"))? {
            0 => break,
            n => {
                len += n;
                if buf[..len].iter().any(|&b| b == b'\n' || b == b'\r') {
                    break;
                }
            }
        }
    }
    if len == 0 {
        // Not an empty reply (that is a line end alone): an agent over its connection
        // limit, or one that is not an agent.
        return Err("closed without a reply".to_owned());
    }
    let end = buf[..len].iter().position(|&b| b == b'\n' || b == b'\r');
    if end.is_none() && len == buf.len() {
        return Err(format!("no line end in the first {MAX_REPLY_BYTES} bytes"));
    }
    String::from_utf8(buf[..end.unwrap_or(len)].to_vec())
        .map_err(|_| "the reply is not UTF-8 text".to_owned())
}

/// At most 64 characters of a reply, for a log line.
fn shorten(line: &str) -> String {
    line.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(2);

    #[test]
    fn a_target_names_the_server_as_an_agent_would_register_it() {
        let t = parse_target("tcp:10.0.0.1:80/10.0.0.5:80@127.0.0.1:5555", S).unwrap();
        assert_eq!(t.check, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(t.polled.id, "agent-check:127.0.0.1:5555");
        assert_eq!(t.polled.interval_ms, 2000);
        let spec = &t.polled.service;
        assert_eq!((spec.protocol, spec.port, spec.forwarding), (Protocol::Tcp, 80, Forwarding::Masq));
        assert_eq!(
            (spec.vip, spec.address),
            (Some("10.0.0.1".parse().unwrap()), Some("10.0.0.5".parse().unwrap()))
        );
        assert!(spec.matches(&feedbackd_proto::types::parse_service("tcp:10.0.0.1:80").unwrap()));
        assert_eq!(server_text(&t), "tcp:10.0.0.1:80/10.0.0.5:80");
        let t = parse_target("fwm:7/[2001:db8::5]:0@[2001:db8::5]:5555,dr", S).unwrap();
        let spec = &t.polled.service;
        assert_eq!((spec.fwmark, spec.port, spec.forwarding), (Some(7), 0, Forwarding::DirectRouting));
        assert_eq!(t.polled.peer, "2001:db8::5".parse::<std::net::IpAddr>().unwrap());
    }

    #[test]
    fn bad_targets_say_what_to_write() {
        let e = |t: &str| parse_target(t, S).unwrap_err();
        assert!(e("tcp:10.0.0.1:80/10.0.0.5:80").contains("expected SERVER@ADDR:PORT"));
        assert!(
            e("tcp:10.0.0.1:80/10.0.0.5:8080@127.0.0.1:5555").contains("write tcp:10.0.0.1:80/10.0.0.5:80")
        );
        assert!(e("tcp:10.0.0.1:80/10.0.0.5:80@localhost:5555").contains("not ADDR:PORT"));
        assert!(e("tcp:10.0.0.1:80/10.0.0.5:80@127.0.0.1:0").contains("cannot be 0"));
        assert!(e("tcp:10.0.0.1:80/10.0.0.5:80@127.0.0.1:5555,local").contains("is not NAT"));
        assert!(e("icmp:10.0.0.1:80/10.0.0.5:80@127.0.0.1:5555").contains("is not a protocol"));
        let two =
            ["tcp:10.0.0.1:80/10.0.0.5:80@127.0.0.1:5555", "tcp:10.0.0.1:80/10.0.0.6:80@127.0.0.1:5555"];
        let e = parse_targets(&two.map(String::from), S).unwrap_err();
        assert!(e.contains("already polled for tcp:10.0.0.1:80/10.0.0.5:80"), "{e}");
        assert!(parse_targets(&[], Duration::from_millis(99)).unwrap_err().contains("outside"));
        let many = vec!["x".to_owned(); MAX_TARGETS + 1];
        assert!(parse_targets(&many, S).unwrap_err().contains("at most 4096"));
    }

    /// A one-shot agent on loopback that writes `reply` to its first connection.
    async fn agent_once(reply: Vec<u8>) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let _ = tokio::io::AsyncWriteExt::write_all(&mut s, &reply).await;
        });
        addr
    }

    #[test]
    fn one_poll_reads_one_bounded_line() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let a = agent_once(b"75% ready up\nmore\n".to_vec()).await;
            assert_eq!(poll_once(a).await.unwrap(), "75% ready up");
            let a = agent_once(b"drain".to_vec()).await;
            assert_eq!(poll_once(a).await.unwrap(), "drain", "the close ends the line");
            let a = agent_once(vec![b'x'; 100_000]).await;
            assert!(poll_once(a).await.unwrap_err().contains("no line end in the first 1024 bytes"));
            let a = agent_once(vec![0xff, b'\n']).await;
            assert!(poll_once(a).await.unwrap_err().contains("not UTF-8"));
            let a = agent_once(Vec::new()).await;
            assert_eq!(poll_once(a).await.unwrap_err(), "closed without a reply");
            let a = agent_once(b"\n".to_vec()).await;
            assert_eq!(poll_once(a).await.unwrap(), "", "an empty line is a reply");
        });
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn targets_come_from_a_configuration_file_too() {
        let dir = std::env::temp_dir().join(format!("fbm-agentcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("master.conf");
        std::fs::write(
            &p,
            "agent_check = tcp:10.0.0.1:80/10.0.0.5:80@10.0.0.5:5555\n\
             agent_check = tcp:10.0.0.1:80/10.0.0.6:80@10.0.0.6:5555,dr # the second\n\
             agent_check_interval = 500ms\n",
        )
        .unwrap();
        let args = ["m", "--config", p.to_str().unwrap()].map(String::from).to_vec();
        let cli = crate::config::parse_args(args).unwrap();
        let targets = parse_targets(&cli.agent_checks, cli.agent_check_interval).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].polled.service.forwarding, Forwarding::DirectRouting);
        assert_eq!(targets[1].polled.interval_ms, 500);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
