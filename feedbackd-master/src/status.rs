//! The status view (an `ipvsadm -L -n` style table with each server's agent, capacity and
//! report age) and the Prometheus metrics, rendered from the master's state and the last
//! table read from the kernel; and the small HTTP server that serves them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use feedbackd_proto::master::{AgentStatus, Counters, RsKey, StatusRow};
use feedbackd_proto::types::{ServiceKey, SocketAddrDisplay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::ipvs::{RealServer, VirtualService};

/// What the kernel showed at the last read, plus what the master applied since.
#[derive(Debug, Default)]
pub struct KernelView {
    /// Virtual services.
    pub services: BTreeMap<ServiceKey, VirtualService>,
    /// Real servers (every field, for SET_DEST).
    pub servers: BTreeMap<RsKey, RealServer>,
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
        let sched = kernel.services.get(&service).map_or("?", |s| s.scheduler.as_str());
        let _ = writeln!(out, "{service} {sched}");
        for r in rows {
            let k = kernel.servers.get(&r.key);
            let fwd = r.forwarding.map_or("Local", |f| f.ipvsadm_name());
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
                SocketAddrDisplay(r.key.addr, r.key.port).to_string(),
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
        &one(u64::from(counters.insecure)),
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
    let label = |r: &StatusRow| {
        format!(
            "{{service=\"{}\",server=\"{}\",agent=\"{}\"}}",
            r.key.service.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
            SocketAddrDisplay(r.key.addr, r.key.port),
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

/// Serves `GET /status` and `GET /metrics` (HTTP/1.0-style: one request per connection).
pub async fn serve(listener: TcpListener, pages: mpsc::Sender<PageRequest>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let pages = pages.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0;
            // Read the request head (bounded), with a deadline.
            let read = async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
                        || buf[..n].windows(2).any(|w| w == b"\n\n")
                    {
                        break;
                    }
                }
            };
            if tokio::time::timeout(std::time::Duration::from_secs(5), read).await.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let page = match path {
                "/" | "/status" => Some(Page::Status),
                "/metrics" => Some(Page::Metrics),
                _ => None,
            };
            let (status, ctype, body) = match page {
                None => ("404 Not Found", "text/plain", "try /status or /metrics\n".to_owned()),
                Some(page) => {
                    let (tx, rx) = oneshot::channel();
                    if pages.send(PageRequest { page, reply: tx }).await.is_err() {
                        return;
                    }
                    let Ok(body) = rx.await else { return };
                    let ctype = match page {
                        Page::Status => "text/plain; charset=utf-8",
                        Page::Metrics => "text/plain; version=0.0.4; charset=utf-8",
                    };
                    ("200 OK", ctype, body)
                }
            };
            let resp = format!(
                "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
