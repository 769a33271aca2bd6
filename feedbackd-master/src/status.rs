//! The status view (an `ipvsadm -L -n` style table with each server's agent, capacity and
//! report age) and the Prometheus metrics, rendered from the master's state and the last
//! table read from the kernel; and the small HTTP server that serves them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use feedbackd_proto::admission::{AcceptBackoff, Refusal};
use feedbackd_proto::master::{AgentStatus, Counters, RsKey, StatusRow};
use lvs_ipvs::{AddrPort, ServiceConfig, ServiceKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ipvs::DestRow;

/// What the kernel showed at the last read, plus what the master applied since.
#[derive(Debug, Default)]
pub struct KernelView {
    /// Virtual services.
    pub services: BTreeMap<ServiceKey, ServiceConfig>,
    /// Real servers (every field, for SET_DEST, and the connection counts).
    pub servers: BTreeMap<RsKey, DestRow>,
}

/// The status table.
pub fn render_status(
    rows: &[StatusRow],
    agents: &[AgentStatus],
    kernel: &KernelView,
    insecure: bool,
) -> String {
    let mut out = String::new();
    if insecure {
        let _ = writeln!(out, "WARNING: --insecure: agents are not authenticated (use --keys-file)");
    }
    let _ = writeln!(
        out,
        "feedbackd-master: {} agents ({} connected), {} real servers",
        agents.len(),
        agents.iter().filter(|a| a.connected).count(),
        rows.len()
    );
    let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
    let _ = writeln!(
        out,
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn Agent            State     Capacity Smoothed ReportAge"
    );
    let mut by_service: BTreeMap<ServiceKey, Vec<&StatusRow>> = BTreeMap::new();
    for key in kernel.services.keys() {
        by_service.entry(*key).or_default();
    }
    for r in rows {
        by_service.entry(r.key.service).or_default().push(r);
    }
    for (service, rows) in by_service {
        let sched = kernel.services.get(&service).map_or("?", |s| s.scheduler.name());
        let _ = writeln!(out, "{service} {sched}");
        for r in rows {
            let k = kernel.servers.get(&r.key);
            let fwd = r.forwarding.ipvsadm_name();
            let (active, inactive) = k.map_or((0, 0), |k| (k.active_conns, k.inactive_conns));
            let state = match (r.in_table, r.liveness, r.admin) {
                (false, _, _) => "pending".to_owned(),
                (_, None, _) => "adopted".to_owned(),
                (_, Some(l), Some(a)) if a != feedbackd_proto::types::AdminState::Ready => {
                    format!("{l}/{a}")
                }
                (_, Some(l), _) => l.to_string(),
            };
            let f3 = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
            let age = r.report_age.map_or("-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<9} {:<16} {:<9} {:<8} {:<8} {}",
                AddrPort(r.key.addr, r.key.port).to_string(),
                fwd,
                r.weight,
                active,
                inactive,
                r.agent.as_deref().unwrap_or("-"),
                state,
                f3(r.capacity),
                f3(r.smoothed),
                age
            );
        }
    }
    out
}

/// Prometheus text exposition format, version 0.0.4.
pub fn render_metrics(
    rows: &[StatusRow],
    agents: &[AgentStatus],
    counters: &Counters,
    backend_errors: u64,
    bounds: &Bounds,
    insecure: bool,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP feedbackd_master_{name} {help}");
        let _ = writeln!(out, "# TYPE feedbackd_master_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "feedbackd_master_{name}{labels} {v}");
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    let connected = agents.iter().filter(|a| a.connected).count() as u64;
    metric("agents", "gauge", "Agents known (connected or within remove_after).", &one(agents.len() as u64));
    metric("agents_connected", "gauge", "Agents connected now.", &one(connected));
    metric(
        "insecure",
        "gauge",
        "1 when running --insecure (agents not authenticated), else 0.",
        &one(u64::from(insecure)),
    );
    metric("connections_total", "counter", "Agent connections accepted.", &one(counters.connections));
    metric("registrations_total", "counter", "Registrations accepted.", &one(counters.registrations));
    metric("reports_total", "counter", "Reports applied.", &one(counters.reports));
    let rejected: Vec<(String, f64)> = [
        "malformed",
        "auth",
        "sequence",
        "protocol",
        "refused",
        "timeout",
        "replaced",
        "claim",
        "servers",
        "rate",
    ]
    .iter()
    .map(|r| (format!("{{reason=\"{r}\"}}"), *counters.rejected.get(r).unwrap_or(&0) as f64))
    .collect();
    metric(
        "frames_rejected_total",
        "counter",
        "Connections refused, by reason; none changed a weight.",
        &rejected,
    );
    metric("weight_changes_total", "counter", "Weight changes issued.", &one(counters.weight_changes));
    metric("real_servers_added_total", "counter", "Real servers added.", &one(counters.added));
    metric("real_servers_removed_total", "counter", "Real servers removed.", &one(counters.removed));
    metric("backend_errors_total", "counter", "IPVS backend operations that failed.", &one(backend_errors));
    render_bounds(&mut metric, bounds);
    let label = |r: &StatusRow| {
        format!(
            "{{service=\"{}\",server=\"{}\",agent=\"{}\"}}",
            r.key.service.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
            AddrPort(r.key.addr, r.key.port),
            escape(r.agent.as_deref().unwrap_or(""))
        )
    };
    let weights: Vec<(String, f64)> = rows.iter().map(|r| (label(r), f64::from(r.weight))).collect();
    metric("real_server_weight", "gauge", "Weight set or adopted.", &weights);
    let caps: Vec<(String, f64)> = rows.iter().filter_map(|r| r.capacity.map(|c| (label(r), c))).collect();
    metric("real_server_capacity", "gauge", "Last reported spare capacity (0..1).", &caps);
    let ages: Vec<(String, f64)> = agents
        .iter()
        .map(|a| (format!("{{agent=\"{}\"}}", escape(&a.id)), a.report_age.as_secs_f64()))
        .collect();
    metric("agent_report_age_seconds", "gauge", "Seconds since the agent's last report.", &ages);
    // The figures the laws read (qps, eps, rif, latency_ms...) and the modules' own: at
    // most wire::MAX_METRICS an agent, names checked by the wire's decoder.
    let figures: Vec<(String, f64)> = agents
        .iter()
        .flat_map(|a| {
            a.metrics
                .iter()
                .map(|m| (format!("{{agent=\"{}\",name=\"{}\"}}", escape(&a.id), escape(&m.name)), m.value))
        })
        .collect();
    metric("agent_metric", "gauge", "The agent's latest reported metrics, by name.", &figures);
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A request for a page, answered by the daemon loop (which owns the state).
#[derive(Debug)]
pub struct PageRequest {
    /// `/status` or `/metrics`.
    pub page: Page,
    /// Where to send the body.
    pub reply: oneshot::Sender<String>,
}

/// The pages served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// The status table.
    Status,
    /// Prometheus metrics.
    Metrics,
}

/// The daemon's bounds as the metrics show them.
#[derive(Clone, Debug, Default)]
pub struct Bounds {
    /// Agent connections open.
    pub open: usize,
    /// Connections refused at accept, per reason.
    pub refused: Vec<(Refusal, u64)>,
    /// Connections dropped for not reading (`--max-queued-bytes`).
    pub slow_readers: u64,
    /// `accept()` failures (each followed by a pause).
    pub accept_errors: u64,
    /// Journal rotations.
    pub journal_rotations: u64,
    /// The status server's own bounds.
    pub status: StatusCounts,
}

fn render_bounds(metric: &mut impl FnMut(&str, &str, &str, &[(String, f64)]), b: &Bounds) {
    let one = |v: u64| vec![(String::new(), v as f64)];
    metric("connections_open", "gauge", "Agent connections open now.", &one(b.open as u64));
    let refused: Vec<(String, f64)> =
        b.refused.iter().map(|(r, n)| (format!("{{reason=\"{}\"}}", r.label()), *n as f64)).collect();
    metric(
        "connections_refused_total",
        "counter",
        "Agent connections closed at accept, by reason (--allow-from, --max-connections, --max-connections-per-source).",
        &refused,
    );
    metric(
        "slow_readers_total",
        "counter",
        "Agent connections dropped with more than --max-queued-bytes queued.",
        &one(b.slow_readers),
    );
    metric(
        "accept_errors_total",
        "counter",
        "Failed accept() calls (each pauses accepting).",
        &one(b.accept_errors),
    );
    metric("journal_rotations_total", "counter", "Journal file rotations.", &one(b.journal_rotations));
    let s = &b.status;
    let status: Vec<(String, f64)> = [
        ("busy", s.refused),
        ("bad_request", s.bad_requests),
        ("timeout", s.timeouts),
        ("accept_error", s.accept_errors),
    ]
    .iter()
    .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
    .collect();
    metric(
        "status_requests_failed_total",
        "counter",
        "Status server requests not served, by reason.",
        &status,
    );
}

/// The status server's counters, shared with its tasks.
#[derive(Debug, Default)]
pub struct StatusStats {
    refused: AtomicU64,
    bad_requests: AtomicU64,
    timeouts: AtomicU64,
    accept_errors: AtomicU64,
}

/// A reading of [`StatusStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Connections closed at once: [`MAX_STATUS_CONNECTIONS`] were being served.
    pub refused: u64,
    /// Requests answered 400, 404, 405 or 431.
    pub bad_requests: u64,
    /// Requests not complete within [`REQUEST_TIMEOUT`] (or answers not taken within
    /// [`RESPONSE_TIMEOUT`]).
    pub timeouts: u64,
    /// Failed accept() calls.
    pub accept_errors: u64,
}

impl StatusStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatusCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatusCounts {
            refused: get(&self.refused),
            bad_requests: get(&self.bad_requests),
            timeouts: get(&self.timeouts),
            accept_errors: get(&self.accept_errors),
        }
    }
}

/// Status connections served at once; more are closed at once.
pub const MAX_STATUS_CONNECTIONS: usize = 16;
/// The longest request head read [bytes].
pub const MAX_REQUEST_BYTES: usize = 2048;
/// The whole request head must arrive within this (a slowloris client is cut off).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The answer must be rendered and taken by the client within this.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A page; `head_only` for HEAD.
    Page {
        /// Which.
        page: Page,
        /// HEAD: the headers only.
        head_only: bool,
    },
    /// An error answer: status line, body; `allow` adds `Allow: GET, HEAD` (405).
    Error {
        /// `405 Method Not Allowed` ...
        status: &'static str,
        /// The text.
        body: &'static str,
        /// Whether to send `Allow`.
        allow: bool,
    },
}

/// Reads a request head (`complete`: its blank line was seen or the client finished
/// sending; otherwise it filled [`MAX_REQUEST_BYTES`]). Only GET and HEAD are served.
pub fn parse_request(head: &[u8], complete: bool) -> Request {
    if !complete {
        return Request::Error {
            status: "431 Request Header Fields Too Large",
            body: "request head too long\n",
            allow: false,
        };
    }
    let head = String::from_utf8_lossy(head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        "" => return Request::Error { status: "400 Bad Request", body: "no request line\n", allow: false },
        _ => {
            return Request::Error {
                status: "405 Method Not Allowed",
                body: "only GET and HEAD are served\n",
                allow: true,
            };
        }
    };
    let path = path.split('?').next().unwrap_or("");
    match path {
        "/" | "/status" => Request::Page { page: Page::Status, head_only },
        "/metrics" => Request::Page { page: Page::Metrics, head_only },
        _ => Request::Error { status: "404 Not Found", body: "try /status or /metrics\n", allow: false },
    }
}

/// Serves `GET`/`HEAD` of `/status` and `/metrics` (HTTP/1.0-style: one request per
/// connection). Bounded: [`MAX_STATUS_CONNECTIONS`] at once, [`MAX_REQUEST_BYTES`] of
/// request head within [`REQUEST_TIMEOUT`], and accept failures pause the loop.
pub async fn serve(listener: TcpListener, pages: mpsc::Sender<PageRequest>, stats: Arc<StatusStats>) {
    let slots = Arc::new(Semaphore::new(MAX_STATUS_CONNECTIONS));
    let mut backoff = AcceptBackoff::default();
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                let exhausted = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                let why = if exhausted {
                    feedbackd_proto::admission::AcceptFailure::Exhausted
                } else {
                    feedbackd_proto::admission::AcceptFailure::Other
                };
                let pause = backoff.handle_failure(why);
                tokio::time::sleep(Duration::from_nanos(pause.as_nanos())).await;
                continue;
            }
        };
        backoff.handle_success();
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(sock);
            continue;
        };
        let (pages, stats) = (pages.clone(), stats.clone());
        tokio::spawn(async move {
            let answered = tokio::time::timeout(RESPONSE_TIMEOUT, answer(sock, pages, &stats)).await;
            if answered.is_err() {
                stats.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            drop(slot);
        });
    }
}

/// Reads one request and answers it.
async fn answer(mut sock: tokio::net::TcpStream, pages: mpsc::Sender<PageRequest>, stats: &StatusStats) {
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let mut n = 0;
    let mut complete = false;
    let read = async {
        while n < buf.len() {
            match sock.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => {
                    complete = true;
                    break;
                }
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || buf[..n].windows(2).any(|w| w == b"\n\n") {
                complete = true;
                break;
            }
        }
    };
    if tokio::time::timeout(REQUEST_TIMEOUT, read).await.is_err() {
        stats.timeouts.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (status, ctype, body, allow, head_only) = match parse_request(&buf[..n], complete) {
        Request::Error { status, body, allow } => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            (status, "text/plain", body.to_owned(), allow, false)
        }
        Request::Page { page, head_only } => {
            let (tx, rx) = oneshot::channel();
            if pages.send(PageRequest { page, reply: tx }).await.is_err() {
                return;
            }
            let Ok(body) = rx.await else { return };
            let ctype = match page {
                Page::Status => "text/plain; charset=utf-8",
                Page::Metrics => "text/plain; version=0.0.4; charset=utf-8",
            };
            ("200 OK", ctype, body, false, head_only)
        }
    };
    let allow = if allow { "Allow: GET, HEAD\r\n" } else { "" };
    let mut resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        resp.push_str(&body);
    }
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_of_the_two_pages_are_served() {
        let page = |page, head_only| Request::Page { page, head_only };
        assert_eq!(parse_request(b"GET /metrics HTTP/1.0\r\n\r\n", true), page(Page::Metrics, false));
        assert_eq!(
            parse_request(b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n", true),
            page(Page::Status, true)
        );
        assert_eq!(parse_request(b"GET / HTTP/1.0\n\n", true), page(Page::Status, false));
        assert_eq!(parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", true), page(Page::Metrics, false));
        for m in ["POST", "DELETE", "PUT", "OPTIONS", "get", "TRACE"] {
            let req = format!("{m} /status HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
            let Request::Error { status, allow, .. } = parse_request(req.as_bytes(), true) else {
                panic!("{m} served")
            };
            assert_eq!((status, allow), ("405 Method Not Allowed", true), "{m}");
        }
        assert!(matches!(
            parse_request(b"GET /etc/passwd HTTP/1.0\r\n\r\n", true),
            Request::Error { status: "404 Not Found", .. }
        ));
        assert!(matches!(parse_request(b"", true), Request::Error { status: "400 Bad Request", .. }));
        assert!(matches!(
            parse_request(b"\xff\xfe\r\n\r\n", true),
            Request::Error { status: "405 Method Not Allowed", .. }
        ));
        assert!(matches!(
            parse_request(&[b'A'; MAX_REQUEST_BYTES], false),
            Request::Error { status: "431 Request Header Fields Too Large", .. }
        ));
    }
}
