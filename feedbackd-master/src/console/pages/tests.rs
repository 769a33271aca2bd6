//! The pages against a stand-in daemon loop: escaping of hostile text, what a viewer sees,
//! bad forms refused with 400 and no change sent, good forms sent and answered with 303
//! and a flash message, the live updates' 204 and deltas, and no inline script or style.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use feedbackd_proto::master::{AgentStatus, Liveness, RsKey, StatusRow};
use feedbackd_proto::types::{AdminState, ServerAction, parse_rs_key, parse_service};
use feedbackd_proto::wire::Metric;
use feedbackd_proto::{Duration, Time};
use lvs_ipvs::{Forwarding, SchedulerKind, ServiceConfig};

use super::*;
use crate::console::history::{Point, Series, WeightChange};
use crate::console::snapshot::Parts;
use crate::ipvs::{DestRow, dest};
use crate::status::KernelView;

const HOSTILE: &str = "<script>alert('x')</script>\"&";

fn session(role: Role) -> Session {
    Session {
        user: format!("{}<b>", if role == Role::Admin { "root" } else { "eve" }),
        role,
        csrf: "tok".into(),
    }
}

fn key(last: u8) -> RsKey {
    parse_rs_key(&format!("tcp:10.0.0.1:80/10.0.0.{last}:80")).unwrap()
}

fn row(last: u8, weight: u32, agent: &str) -> StatusRow {
    StatusRow {
        key: key(last),
        weight,
        forwarding: Forwarding::DirectRouting,
        agent: Some(agent.to_owned()),
        liveness: Some(Liveness::Live),
        admin: Some(AdminState::Ready),
        capacity: Some(0.5),
        smoothed: Some(0.5),
        report_age: Some(Duration::from_millis(1500)),
        in_table: true,
        hold: None,
        pinned: None,
    }
}

/// A snapshot of one service with `n` servers (server 5's agent hostile), one hostile agent
/// and one hostile change.
fn snapshot(n: u8, weight: u32) -> Snapshot {
    let mut kernel = KernelView::default();
    let service = parse_service("tcp:10.0.0.1:80").unwrap();
    kernel.services.insert(service, ServiceConfig::new(SchedulerKind::Wlc));
    let rows: Vec<StatusRow> =
        (0..n).map(|i| row(5 + i, weight, if i == 0 { HOSTILE } else { "agent-ok" })).collect();
    for r in &rows {
        let mut d = DestRow::new(dest(r.key.addr, r.key.port, Forwarding::DirectRouting, r.weight));
        d.active_conns = 7;
        d.rates.cps = 3;
        d.stats.conns = 12345;
        kernel.servers.insert(r.key, d);
    }
    let agents = vec![AgentStatus {
        id: HOSTILE.to_owned(),
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        connected: true,
        liveness: Liveness::Live,
        admin: AdminState::Ready,
        interval_ms: 1000,
        reports: 3,
        report_age: Duration::from_secs(1),
        metrics: vec![Metric { name: HOSTILE.to_owned(), value: 0.25 }],
    }];
    let changes = vec![Arc::new(WeightChange {
        at: Time(1_000_000_000),
        key: key(5),
        from: Some(100),
        to: Some(weight),
        agent: HOSTILE.to_owned(),
        why: HOSTILE.to_owned(),
    })];
    let parts = Parts { at: Time(10_000_000_000), rows, agents, kernel: &kernel, changes };
    Snapshot::build(&Snapshot::default(), parts)
}

/// A stand-in for the daemon loop: answers snapshots and histories, records changes and
/// answers them `reply`.
fn daemon(snap: Snapshot, reply: Result<String, String>) -> (Ctx, Arc<Mutex<Vec<Change>>>) {
    let (tx, mut rx) = mpsc::channel::<ConsoleRequest>(8);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let snap = Arc::new(snap);
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            match req {
                ConsoleRequest::Snapshot(r) => {
                    let _ = r.send(snap.clone());
                }
                ConsoleRequest::History { reply: r, .. } => {
                    let mut s = Series::default();
                    s.points.push_back(Point::new(Time(0), 100, Some(500)));
                    let _ = r.send(Some(s));
                }
                ConsoleRequest::Change { change, reply: r, .. } => {
                    seen2.lock().unwrap().push(change);
                    let _ = r.send(reply.clone());
                }
            }
        }
    });
    (Ctx { daemon: tx, audit: std::path::PathBuf::from("/nonexistent/feedbackd-pages-test/audit.log") }, seen)
}

fn request(method: &str, path: &str, query: &str, body: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
    }
}

fn body(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

const RS5: &str = "rs=tcp%3A10.0.0.1%3A80%2F10.0.0.5%3A80";

async fn every_page(ctx: &Ctx, s: &Session) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, query) in
        [("/", ""), ("/agents", ""), ("/server", RS5), ("/services", ""), ("/changes", ""), ("/audit", "")]
    {
        let r = handle(&request("GET", path, query, ""), s, ctx).await;
        assert_eq!(r.status, 200, "{path}: {}", body(&r));
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        out.push((path.to_owned(), body(&r)));
    }
    out
}

#[tokio::test]
async fn hostile_text_is_escaped_everywhere() {
    let (ctx, _) = daemon(snapshot(2, 80), Ok("done".into()));
    for (path, html) in every_page(&ctx, &session(Role::Admin)).await {
        assert!(!html.contains("<script>alert"), "{path} has the raw agent id");
        assert!(!html.contains("root<b>"), "{path} has the raw user name");
        assert!(!html.contains("'x'"), "{path}");
        let pages_with_it = ["/", "/agents", "/server", "/changes"];
        if pages_with_it.contains(&path.as_str()) {
            assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"), "{path}");
        }
    }
}

#[tokio::test]
async fn no_inline_script_or_style_and_the_contract_ids() {
    let (ctx, _) = daemon(snapshot(3, 80), Ok("done".into()));
    for (path, html) in every_page(&ctx, &session(Role::Admin)).await {
        assert_eq!(html.matches("<script").count(), 1, "{path}: only console.js");
        assert!(html.contains("<script src=\"/static/console.js\" defer></script>"), "{path}");
        assert!(!html.contains(" style="), "{path}: an inline style");
        assert!(!html.contains(" onclick=") && !html.contains(" onsubmit="), "{path}: an inline handler");
        for id in
            ["nav-monitor", "nav-agents", "nav-services", "nav-changes", "nav-audit", "logout", "whoami"]
        {
            assert!(html.contains(&format!("id=\"{id}\"")), "{path} lacks #{id}");
        }
        assert!(
            html.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok\">"),
            "{path}: logout's csrf"
        );
    }
    let pages = every_page(&ctx, &session(Role::Admin)).await;
    let monitor = &pages[0].1;
    assert!(monitor.contains("<section class=\"service\" data-service=\"tcp:10.0.0.1:80\">"));
    assert!(monitor.contains("<table class=\"servers\">"));
    assert!(monitor.contains("<tr data-rs=\"tcp:10.0.0.1:80/10.0.0.6:80\""));
    for class in ["weight", "active", "inactive", "cps", "agent", "state", "capacity", "age"] {
        assert_eq!(monitor.matches(&format!("<td class=\"{class}\">")).count(), 3, "cell {class}");
    }
    assert!(monitor.contains("<td class=\"weight\">80</td><td class=\"active\">7</td>"));
    assert!(monitor.contains("<td class=\"cps\">3</td>"), "the kernel's rate");
    assert!(monitor.contains("<td class=\"age\">1.5s</td>"));
    assert!(pages[1].1.contains("<table id=\"agents\">") && pages[1].1.contains("data-agent=\"&lt;script"));
    let server = &pages[2].1;
    assert!(server.contains("<svg class=\"chart\" id=\"chart-weight\""));
    assert!(server.contains("<svg class=\"chart\" id=\"chart-capacity\""));
    // The 100 sampled 10 s ago (x = 600 - 552 × 10/3600), then the weight now, 80 (y = 120 -
    // 116 × 0.8), at the right edge.
    assert!(server.contains("<polyline points=\"598.5,4.0 600.0,4.0 600.0,27.2 600.0,27.2\"/>"), "{server}");
    for action in ["drain", "maintenance", "return", "pin", "unpin"] {
        let form = format!(
            "<form class=\"action\" data-action=\"{action}\" method=\"post\" action=\"/server/action\">"
        );
        assert!(server.contains(&form), "{action}");
    }
    assert!(server.contains("action=\"/server/edit\""));
    assert!(server.contains("<td class=\"rates\">3 conn/s;") && server.contains("12345 connections"));
    assert!(
        pages[3]
            .1
            .contains("<td class=\"servers\">3</td><td class=\"active\">21</td><td class=\"cps\">9</td>")
    );
    assert!(pages[3].1.contains("<form id=\"service-add\" method=\"post\" action=\"/service/add\">"));
    assert!(pages[3].1.contains("action=\"/service/remove\"") && pages[3].1.contains("name=\"confirm\""));
    assert!(
        pages[4].1.contains("<table id=\"changes\">") && pages[4].1.contains("100</td><td class=\"to\">80")
    );
}

#[tokio::test]
async fn a_viewer_sees_no_form_but_logout_and_changes_nothing() {
    let (ctx, seen) = daemon(snapshot(2, 80), Ok("done".into()));
    let viewer = session(Role::Viewer);
    for (path, html) in every_page(&ctx, &viewer).await {
        assert_eq!(html.matches("<form").count(), 1, "{path}: a viewer sees a form");
        assert!(html.contains("<form id=\"logout\""), "{path}");
        assert!(html.contains("eve&lt;b&gt; (viewer)"), "{path}");
    }
    let r = handle(
        &request("POST", "/server/action", "", &format!("{RS5}&action=drain&csrf=tok")),
        &viewer,
        &ctx,
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_forms_get_400_with_the_message_and_send_nothing() {
    let (ctx, seen) = daemon(snapshot(2, 80), Ok("done".into()));
    let admin = session(Role::Admin);
    let cases = [
        ("/server/action", format!("{RS5}&action=pin&weight=70000"), "is not a number from 0 to 65535"),
        ("/server/action", format!("{RS5}&action=explode"), "is not an action"),
        ("/server/action", "rs=%3Cscript%3E&action=drain".to_owned(), "is not a real server"),
        ("/server/edit", format!("{RS5}&forwarding=masq&u_threshold=-1"), "nothing changed"),
        ("/service/add", "service=tcp%3A10.0.0.2%3A80&scheduler=%3Cb%3E".to_owned(), "unknown scheduler"),
        (
            "/service/add",
            "service=tcp%3A10.0.0.2%3A80&scheduler=wlc&flags=sh-port".to_owned(),
            "incompatible",
        ),
        ("/service/edit", "service=nonsense&scheduler=wlc".to_owned(), "is not a service"),
        ("/service/remove", "service=tcp%3A10.0.0.1%3A80".to_owned(), "confirm"),
        ("/service/add", "service=%ff%fe".to_owned(), "not UTF-8"),
    ];
    for (path, form, message) in cases {
        let r = handle(&request("POST", path, "", &format!("{form}&csrf=tok")), &admin, &ctx).await;
        let html = body(&r);
        assert_eq!(r.status, 400, "{path} {form}: {html}");
        assert!(html.contains("<p id=\"flash\" class=\"error\""), "{path} {form}");
        assert!(html.contains(message), "{path} {form}: no {message:?}");
        assert!(!html.contains("<b>") && !html.contains("<script>"), "{path}: unescaped input echoed");
        assert!(html.contains("<form"), "{path}: the form is shown again");
    }
    let junk: Vec<u8> = (0u8..=255).cycle().take(5000).collect();
    let mut req = request("POST", "/service/add", "", "");
    req.body = junk;
    assert_eq!(handle(&req, &admin, &ctx).await.status, 400);
    assert!(seen.lock().unwrap().is_empty(), "a bad form sent a change");
}

#[tokio::test]
async fn a_good_form_sends_the_change_and_shows_the_reply_once() {
    let (ctx, seen) = daemon(snapshot(2, 80), Ok("drained <b>".into()));
    let admin = session(Role::Admin);
    let r =
        handle(&request("POST", "/server/action", "", &format!("{RS5}&action=drain&csrf=tok")), &admin, &ctx)
            .await;
    assert_eq!(r.status, 303);
    assert_eq!(*seen.lock().unwrap(), vec![Change::Server { key: key(5), action: ServerAction::Drain }]);
    let location = &r.headers.iter().find(|(h, _)| h == "Location").unwrap().1;
    let (path, query) = location.split_once('?').unwrap();
    assert_eq!(path, "/server");
    assert!(query.starts_with(RS5), "{query}");
    let get = request("GET", path, query, "");
    let html = body(&handle(&get, &admin, &ctx).await);
    assert!(html.contains("<p id=\"flash\" class=\"ok\" role=\"status\">drained &lt;b&gt;</p>"), "{html}");
    let again = body(&handle(&get, &admin, &ctx).await);
    assert!(!again.contains("id=\"flash\""), "a flash is shown once");
    let other = Session { csrf: "other".into(), ..admin.clone() };
    let r = handle(
        &request("POST", "/service/add", "", "service=tcp%3A10.0.0.2%3A80&scheduler=rr"),
        &admin,
        &ctx,
    )
    .await;
    let location = r.headers[0].1.clone();
    let (path, query) = location.split_once('?').unwrap();
    assert_eq!(path, "/services");
    let html = body(&handle(&request("GET", path, query, ""), &other, &ctx).await);
    assert!(!html.contains("id=\"flash\""), "another session's flash is not shown");
}

#[tokio::test]
async fn a_refusal_by_the_daemon_is_shown_as_an_error() {
    let (ctx, seen) = daemon(snapshot(2, 80), Err("unknown real server".into()));
    let admin = session(Role::Admin);
    let r =
        handle(&request("POST", "/server/action", "", &format!("{RS5}&action=unpin")), &admin, &ctx).await;
    assert_eq!(r.status, 303);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (path, query) = r.headers[0].1.split_once('?').unwrap();
    let html = body(&handle(&request("GET", path, query, ""), &admin, &ctx).await);
    assert!(html.contains("class=\"error\" role=\"status\">nothing changed: unknown real server</p>"));
}

#[tokio::test]
async fn live_updates_send_only_what_changed() {
    let kernel = KernelView::default();
    // Reports at 0.5 s; the snapshots at 1 s and 2 s: only the weight of .6 changes.
    let rows = |at: u64, w: u32| {
        let mut rows: Vec<StatusRow> = (0..3).map(|i| row(5 + i, if i == 1 { w } else { 10 }, "a")).collect();
        for r in &mut rows {
            r.report_age = Some(Duration(at - 500_000_000));
        }
        rows
    };
    let parts = |at: u64, w: u32| Parts {
        at: Time(at),
        rows: rows(at, w),
        agents: Vec::new(),
        kernel: &kernel,
        changes: Vec::new(),
    };
    let s1 = Snapshot::build(&Snapshot::default(), parts(1_000_000_000, 10));
    let s2 = Snapshot::build(&s1, parts(2_000_000_000, 55));
    assert_eq!(monitor::updates(&s2, s2.version), None, "204 when current");
    let json: serde_json::Value = serde_json::from_str(&monitor::updates(&s2, s1.version).unwrap()).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["count"], 3);
    let changed = json["rows"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{json}");
    assert_eq!(changed[0][0], "tcp:10.0.0.1:80/10.0.0.6:80");
    assert_eq!(changed[0][1], "55");
    assert_eq!(changed[0][6], "live");
    assert_eq!(changed[0].as_array().unwrap().len(), 8);
    assert_eq!(json["ages"], serde_json::json!([15, 15, 15]), "every row's age [ds], reported at 0.5 s");
    // A page from another run (a version ahead): everything.
    let json: serde_json::Value = serde_json::from_str(&monitor::updates(&s2, 999).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);

    let (ctx, _) = daemon(snapshot(2, 80), Ok(String::new()));
    let viewer = session(Role::Viewer);
    let r = handle(&request("GET", "/api/snapshot", "since=1", ""), &viewer, &ctx).await;
    assert_eq!((r.status, r.body.len()), (204, 0));
    let r = handle(&request("GET", "/api/snapshot", "since=0", ""), &viewer, &ctx).await;
    assert_eq!((r.status, r.content_type), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["rows"][0][5], HOSTILE, "JSON carries the text; the script sets textContent");
}

#[tokio::test]
async fn routes_methods_and_assets() {
    let (ctx, seen) = daemon(snapshot(1, 80), Ok(String::new()));
    let admin = session(Role::Admin);
    assert_eq!(handle(&request("GET", "/nope", "", ""), &admin, &ctx).await.status, 404);
    assert_eq!(handle(&request("DELETE", "/", "", ""), &admin, &ctx).await.status, 405);
    assert_eq!(handle(&request("GET", "/server/action", "", ""), &admin, &ctx).await.status, 405);
    assert_eq!(handle(&request("GET", "/server", "rs=junk", ""), &admin, &ctx).await.status, 400);
    let unknown = "rs=tcp%3A10.0.0.1%3A80%2F10.0.0.99%3A80";
    assert_eq!(handle(&request("GET", "/server", unknown, ""), &admin, &ctx).await.status, 404);
    assert!(seen.lock().unwrap().is_empty());
    let (ct, css) = asset("/static/console.css").unwrap();
    assert!(ct.starts_with("text/css") && !css.is_empty());
    let (ct, js) = asset("console.js").unwrap();
    assert!(
        ct.starts_with("text/javascript")
            && std::str::from_utf8(js).unwrap().contains("/api/snapshot?since=")
    );
    assert!(asset("/static/../Cargo.toml").is_none() && asset("/static/").is_none());
}

#[tokio::test]
async fn a_gone_daemon_gives_503_not_a_hang() {
    let (tx, rx) = mpsc::channel::<ConsoleRequest>(1);
    drop(rx);
    let ctx = Ctx { daemon: tx, audit: std::path::PathBuf::from("/nonexistent/audit.log") };
    let r = handle(&request("GET", "/", "", ""), &session(Role::Viewer), &ctx).await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn the_audit_page_shows_the_last_lines_newest_first() {
    let dir = std::env::temp_dir().join(format!("feedbackd-pages-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.log");
    let mut text = String::new();
    for i in 0..(AUDIT_LINES + 50) {
        text.push_str(&format!(
            "{{\"time\":\"t{i}\",\"user\":\"u<{i}>\",\"role\":\"admin\",\"address\":\"::1\",\"change\":\"drain\",\"result\":\"ok\"}}\n"
        ));
    }
    text.push_str("not json <i>\n{\"time\":\"incomplete\"}\n");
    std::fs::write(&path, text).unwrap();
    let (tx, mut rx) = mpsc::channel::<ConsoleRequest>(4);
    let snap = Arc::new(snapshot(1, 1));
    tokio::spawn(async move {
        while let Some(ConsoleRequest::Snapshot(r)) = rx.recv().await {
            let _ = r.send(snap.clone());
        }
    });
    let ctx = Ctx { daemon: tx, audit: path.clone() };
    let html = body(&handle(&request("GET", "/audit", "", ""), &session(Role::Viewer), &ctx).await);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(html.matches("<tr class=\"entry\">").count(), AUDIT_LINES);
    assert!(!html.contains("not json") && !html.contains("incomplete"), "not audit entries");
    let newest = html.find("<td class=\"user\">u&lt;249&gt;</td>").unwrap();
    let older = html.find("<td class=\"user\">u&lt;248&gt;</td>").unwrap();
    assert!(newest < older);
    assert!(html.contains("u&lt;50&gt;") && !html.contains("u&lt;49&gt;"), "only the last {AUDIT_LINES}");
}

#[test]
fn charts_are_step_functions_over_the_hour() {
    let mut s = Series::default();
    let t = |secs: u64| Time(secs * 1_000_000_000);
    s.points.push_back(Point::new(t(0), 100, None));
    s.points.push_back(Point::new(t(3600), 50, Some(500)));
    let now = t(5400);
    let (lines, top) = server::polylines(&server::weight_points(&s), now);
    assert_eq!(top, 100.0);
    // Before the window: clamped to its start; 100 until the change at -30 min, then 50.
    assert_eq!(lines, vec!["48.0,4.0 324.0,4.0 324.0,62.0 600.0,62.0".to_owned()]);
    let (cap, top) = server::polylines(&server::capacity_points(&s), now);
    assert_eq!(top, 50.0);
    assert_eq!(cap, vec!["324.0,4.0 600.0,4.0".to_owned()], "no line where no capacity was reported");
}

#[test]
fn the_state_word_says_the_most_telling_first() {
    use feedbackd_proto::master::Hold;
    let cases = [
        (Some(Hold::Maintenance), false, None, None, Some(5), "maintenance"),
        (Some(Hold::Drain), true, Some(Liveness::Live), Some(AdminState::Maint), Some(5), "drain"),
        (None, false, Some(Liveness::Live), None, None, "pending"),
        (None, true, Some(Liveness::Quiesced), None, Some(5), "quiesced"),
        (None, true, Some(Liveness::Left), None, None, "left"),
        (None, true, Some(Liveness::Live), Some(AdminState::Drain), Some(5), "agent-drain"),
        (None, true, Some(Liveness::Live), Some(AdminState::Maint), None, "agent-maint"),
        (None, true, Some(Liveness::Live), Some(AdminState::Ready), Some(5), "pinned"),
        (None, true, None, None, Some(5), "pinned"),
        (None, true, None, None, None, "adopted"),
        (None, true, Some(Liveness::Live), Some(AdminState::Ready), None, "live"),
    ];
    for (hold, in_table, liveness, admin, pinned, want) in cases {
        let status = StatusRow { hold, in_table, liveness, admin, pinned, ..row(5, 1, "a") };
        let r = crate::console::snapshot::ServerRow { status, kernel: None, reported_at: None, changed: 1 };
        assert_eq!(monitor::state(&r), want, "{hold:?} {in_table} {liveness:?} {admin:?} {pinned:?}");
    }
}
