//! The console's cost with many real servers: `cargo bench -p feedbackd-master --bench
//! console` (`-- N` to change the 1,000 servers).
//!
//! In one run, for N real servers (10 virtual services, one agent per server):
//! - the page weight: the monitor's HTML, the CSS and the script, in bytes;
//! - the snapshot build (what the daemon loop does for a request when something changed)
//!   and the monitor's render, per call;
//! - a live refresh (`/api/snapshot?since=V`, what console.js fetches every 2 s): its bytes
//!   and time when only the agents reported (the rows unchanged, their ages sent), when 5%
//!   of the servers changed weight since the page's version, and when
//!   every server did (every agent reported a new capacity);
//! - as the baseline, in the same run: the existing `/status` text for the same rows
//!   (`status::render_status`), which a page reloaded every 2 s would cost at least.
//!
//! Each figure is printed with its ratio to the baseline.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use feedbackd_master::console::pages::{asset, monitor};
use feedbackd_master::console::session::{Role, Session};
use feedbackd_master::console::snapshot::{Parts, Snapshot};
use feedbackd_master::ipvs::{DestRow, dest};
use feedbackd_master::status::{KernelView, render_status};
use feedbackd_proto::master::{AgentStatus, Liveness, RsKey, StatusRow};
use feedbackd_proto::types::AdminState;
use feedbackd_proto::wire::Metric;
use feedbackd_proto::{Duration, Time};
use lvs_ipvs::{Forwarding, Protocol, SchedulerKind, ServiceConfig, ServiceKey};

const SERVICES: usize = 10;

/// `n` servers seen at `at`, their agents having reported at `reported`.
fn rows(
    n: usize,
    (at, reported): (Time, Time),
    weight: impl Fn(usize) -> u32,
    capacity: impl Fn(usize) -> f64,
) -> Vec<StatusRow> {
    (0..n)
        .map(|i| {
            let service = ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                port: 8000 + (i % SERVICES) as u16,
            };
            let addr = IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1));
            StatusRow {
                key: RsKey { service, addr, port: 80 },
                weight: weight(i),
                forwarding: Forwarding::DirectRouting,
                agent: Some(format!("web-{i:04}.example.net")),
                liveness: Some(Liveness::Live),
                admin: Some(AdminState::Ready),
                capacity: Some(capacity(i)),
                smoothed: Some(capacity(i)),
                report_age: Some(at.saturating_since(reported)),
                in_table: true,
                hold: None,
                pinned: None,
            }
        })
        .collect()
}

fn sorted(mut rows: Vec<StatusRow>) -> Vec<StatusRow> {
    rows.sort_by_key(|r| r.key);
    rows
}

fn agents(n: usize) -> Vec<AgentStatus> {
    (0..n)
        .map(|i| AgentStatus {
            id: format!("web-{i:04}.example.net"),
            peer: IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1)),
            connected: true,
            liveness: Liveness::Live,
            admin: AdminState::Ready,
            interval_ms: 1000,
            reports: 100,
            report_age: Duration::from_millis(500),
            metrics: vec![Metric { name: "cpuload".into(), value: 0.42 }],
        })
        .collect()
}

fn kernel(rows: &[StatusRow]) -> KernelView {
    let mut k = KernelView::default();
    for r in rows {
        k.services.insert(r.key.service, ServiceConfig::new(SchedulerKind::Wlc));
        let mut d = DestRow::new(dest(r.key.addr, r.key.port, r.forwarding, r.weight));
        d.active_conns = 123;
        d.inactive_conns = 4567;
        k.servers.insert(r.key, d);
    }
    k
}

/// The mean time of `f` over enough calls to take about 0.3 s [µs], and its last result.
fn time<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let start = Instant::now();
    let mut n = 0u32;
    let mut out = f();
    n += 1;
    while start.elapsed() < std::time::Duration::from_millis(300) {
        out = f();
        n += 1;
    }
    (start.elapsed().as_secs_f64() * 1e6 / f64::from(n), out)
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let session = Session { user: "admin".into(), role: Role::Admin, csrf: "x".repeat(64) };
    let t1 = Time(10_000_000_000);
    let t2 = Time(12_000_000_000);
    let rows1 = sorted(rows(n, (t1, Time(9_500_000_000)), |_| 100, |_| 0.5));
    let kernel1 = kernel(&rows1);
    let agents = agents(n);
    let parts = |at, rows: &Vec<StatusRow>, kernel| Parts {
        at,
        rows: rows.clone(),
        agents: agents.clone(),
        kernel,
        changes: Vec::new(),
    };

    // Baseline: the /status text for the same rows.
    let (status_us, status) = time(|| render_status(&rows1, &agents, &kernel1, false));
    let (build_us, s1) = time(|| Snapshot::build(&Snapshot::default(), parts(t1, &rows1, &kernel1)));
    let (render_us, html) = time(|| monitor::page(&s1, &session, None));
    let css = asset("console.css").map_or(0, |a| a.1.len());
    let js = asset("console.js").map_or(0, |a| a.1.len());

    // Two seconds later, every agent having reported again: nothing else changed; or 5%
    // of the weights; or every capacity and weight.
    let seen = (t2, Time(11_700_000_000));
    let rows_same = sorted(rows(n, seen, |_| 100, |_| 0.5));
    let s_same = Snapshot::build(&s1, parts(t2, &rows_same, &kernel1));
    let rows_some = sorted(rows(n, seen, |i| if i % 20 == 0 { 80 } else { 100 }, |_| 0.5));
    let kernel_some = kernel(&rows_some);
    let s_some = Snapshot::build(&s1, parts(t2, &rows_some, &kernel_some));
    let rows_all = sorted(rows(n, seen, |i| 50 + (i % 50) as u32, |i| (i % 100) as f64 / 100.0));
    let kernel_all = kernel(&rows_all);
    let (rebuild_us, s_all) = time(|| Snapshot::build(&s1, parts(t2, &rows_all, &kernel_all)));
    let (same_us, same) = time(|| monitor::updates(&s_same, s1.version).unwrap_or_default());
    let (some_us, some) = time(|| monitor::updates(&s_some, s1.version).unwrap_or_default());
    let (all_us, all) = time(|| monitor::updates(&s_all, s1.version).unwrap_or_default());
    let (none_us, none) = time(|| monitor::updates(&s_some, s_some.version));
    assert!(none.is_none(), "an up-to-date page gets 204");

    let ratio_b = |b: usize| b as f64 / status.len() as f64;
    let ratio_t = |t: f64| t / status_us;
    println!("console, {n} real servers in {SERVICES} virtual services, {n} agents");
    println!("baseline: /status text {} bytes, rendered in {status_us:.1} µs", status.len());
    println!("{:<44} {:>12} {:>10}", "", "value", "/ baseline");
    let line = |what: &str, v: String, r: f64| println!("{what:<44} {v:>12} {r:>10.2}");
    line("monitor page HTML [bytes]", html.len().to_string(), ratio_b(html.len()));
    line("console.css [bytes]", css.to_string(), ratio_b(css));
    line("console.js [bytes]", js.to_string(), ratio_b(js));
    line("snapshot build, first [µs]", format!("{build_us:.1}"), ratio_t(build_us));
    line("snapshot build, every row changed [µs]", format!("{rebuild_us:.1}"), ratio_t(rebuild_us));
    line("monitor render [µs]", format!("{render_us:.1}"), ratio_t(render_us));
    line("refresh, nothing changed: 204 [µs]", format!("{none_us:.2}"), ratio_t(none_us));
    line("refresh, reports only (ages) [bytes]", same.len().to_string(), ratio_b(same.len()));
    line("refresh, reports only (ages) [µs]", format!("{same_us:.1}"), ratio_t(same_us));
    line("refresh, 5% of rows changed [bytes]", some.len().to_string(), ratio_b(some.len()));
    line("refresh, 5% of rows changed [µs]", format!("{some_us:.1}"), ratio_t(some_us));
    line("refresh, every row changed [bytes]", all.len().to_string(), ratio_b(all.len()));
    line("refresh, every row changed [µs]", format!("{all_us:.1}"), ratio_t(all_us));
}
