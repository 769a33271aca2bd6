//! The console's pages, rendered on the server from a [`Snapshot`](super::Snapshot), and
//! their static assets. The HTTPS server has authenticated the session and, for a POST,
//! checked its CSRF token, origin and role before [`handle`] sees the request.
//!
//! Routes (docs/console.md): `GET /` monitor, `/agents`, `/server?rs=RsKeyText`,
//! `/services`, `/changes`, `/audit`, `/api/snapshot?since=VERSION` (the monitor's live
//! updates); `POST /server/action`, `/server/edit`, `/service/add`, `/service/edit`,
//! `/service/remove` (admins). A POST's form is checked in full ([`form`]) before a
//! [`Change`] is sent to the daemon loop: bad input gets 400 with the form and the message,
//! and nothing is sent; otherwise 303 back to the page, which shows the daemon's reply.
//!
//! Module map: [`html`] escaping and the page frame, [`form`] form decoding and checks,
//! [`monitor`] the monitor and its updates, [`server`] a server's page and charts,
//! [`services`] the services' forms, [`views`] agents, changes and audit, [`flash`] the
//! messages carried across a POST's redirect.

pub mod flash;
pub mod form;
pub mod html;
pub mod monitor;
pub mod server;
pub mod services;
pub mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use feedbackd_proto::types::{RsKeyText, Who, parse_rs_key};
use tokio::sync::{mpsc, oneshot};

use self::form::Form;
use self::html::{Flash, UrlEnc};
use super::http::{Request, Response};
use super::session::{Role, Session};
use super::{Change, ConsoleRequest, Snapshot};

/// What the handlers reach: the daemon loop, and the audit log to show.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The daemon loop's console queue.
    pub daemon: mpsc::Sender<ConsoleRequest>,
    /// The audit log (`--console-audit`), for the audit page.
    pub audit: PathBuf,
}

/// How long a handler waits for the daemon loop (to queue, then to answer).
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);

/// The audit lines `/audit` shows.
pub const AUDIT_LINES: usize = 200;

/// The stylesheet.
const CSS: &[u8] = include_bytes!("assets/console.css");
/// The one script (live updates); no inline script anywhere (CSP `default-src 'self'`).
const JS: &[u8] = include_bytes!("assets/console.js");
/// The icon.
const ICON: &[u8] = include_bytes!("assets/favicon.svg");

/// A static asset by path (`/static/console.css` or `console.css`): content type and bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path.strip_prefix("/static/").unwrap_or(path) {
        "console.css" => Some(("text/css; charset=utf-8", CSS)),
        "console.js" => Some(("text/javascript; charset=utf-8", JS)),
        "favicon.svg" => Some(("image/svg+xml", ICON)),
        _ => None,
    }
}

/// Answers an authenticated request (a POST has passed the CSRF and role checks).
pub async fn handle(req: &Request, session: &Session, ctx: &Ctx) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/api/snapshot") => api_snapshot(req, ctx).await,
        ("GET" | "HEAD", "/" | "/agents" | "/server" | "/services" | "/changes" | "/audit") => {
            get_page(req, session, ctx).await
        }
        (
            "POST",
            "/server/action" | "/server/edit" | "/service/add" | "/service/edit" | "/service/remove",
        ) => post(req, session, ctx).await,
        (_, "/" | "/agents" | "/server" | "/services" | "/changes" | "/audit" | "/api/snapshot") => {
            text(405, "method not allowed\n")
        }
        (_, "/server/action" | "/server/edit" | "/service/add" | "/service/edit" | "/service/remove") => {
            text(405, "method not allowed\n")
        }
        _ => text(404, "not found\n"),
    }
}

async fn get_page(req: &Request, session: &Session, ctx: &Ctx) -> Response {
    let query = match Form::parse(req.query.as_bytes()) {
        Ok(q) => q,
        Err(e) => return text(400, &format!("bad query: {e}\n")),
    };
    let flash = query.get("flash").and_then(|id| flash::take(id, &session.csrf));
    let flash = flash.as_ref();
    let snap = match snapshot(ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = match req.path.as_str() {
        "/" => monitor::page(&snap, session, flash),
        "/agents" => views::agents(&snap, session, flash),
        "/services" => services::page(&snap, session, flash, None),
        "/changes" => views::changes(&snap, session, flash, SystemTime::now()),
        "/audit" => views::audit(audit_tail(&ctx.audit, AUDIT_LINES), session, flash),
        _ => return server_page(&query, &snap, session, ctx, flash, 200).await,
    };
    html_response(200, body)
}

/// `/server?rs=...`, with `status` (400 when it answers a bad form).
async fn server_page(
    query: &Form,
    snap: &Snapshot,
    session: &Session,
    ctx: &Ctx,
    flash: Option<&Flash>,
    status: u16,
) -> Response {
    let key = match query.required("rs").and_then(parse_rs_key) {
        Ok(k) => k,
        Err(e) => return text(400, &format!("{e}\n")),
    };
    let series = ask(ctx, |reply| ConsoleRequest::History { key, reply }).await;
    let series = match series {
        Ok(s) => s,
        Err(r) => return r,
    };
    match server::page(snap, &key, series.as_ref(), session, flash) {
        Some(body) => html_response(status, body),
        None => text(404, &format!("no real server {} is known\n", RsKeyText(key))),
    }
}

async fn api_snapshot(req: &Request, ctx: &Ctx) -> Response {
    let since = Form::parse(req.query.as_bytes())
        .ok()
        .and_then(|q| q.get("since").and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    let snap = match snapshot(ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match monitor::updates(&snap, since) {
        None => Response { status: 204, content_type: "text/plain", headers: Vec::new(), body: Vec::new() },
        Some(json) => Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: json.into_bytes(),
        },
    }
}

/// A POST: the form checked into a [`Change`], sent, and 303 back with the reply; 400 with
/// the page and the message when the form is bad (nothing sent).
async fn post(req: &Request, session: &Session, ctx: &Ctx) -> Response {
    if session.role != Role::Admin {
        // The server refuses a viewer's POST before this; never rely on it alone.
        return text(403, "viewers change nothing\n");
    }
    let form = Form::parse(&req.body);
    let change = form.as_ref().map_err(Clone::clone).and_then(|f| match req.path.as_str() {
        "/server/action" => form::server_action(f),
        "/server/edit" => form::server_edit(f),
        "/service/add" => form::service(f, false),
        "/service/edit" => form::service(f, true),
        _ => form::service_remove(f),
    });
    let form = form.unwrap_or_default();
    let change = match change {
        Ok(c) => c,
        Err(message) => return refused(req, session, ctx, &form, message).await,
    };
    let back = match &change {
        Change::Server { key, .. } | Change::EditServer { key, .. } => {
            format!("/server?rs={}", UrlEnc(&RsKeyText(*key).to_string()))
        }
        _ => "/services".to_owned(),
    };
    let who = Who { user: session.user.clone(), address: req.peer.ip() };
    let reply = ask(ctx, |reply| ConsoleRequest::Change { who, change, reply }).await;
    let flash = match reply {
        Ok(Ok(done)) => Flash { ok: true, text: done },
        Ok(Err(why)) => Flash { ok: false, text: format!("nothing changed: {why}") },
        Err(r) => return r,
    };
    let id = flash::put(&session.csrf, flash);
    let sep = if back.contains('?') { '&' } else { '?' };
    Response {
        status: 303,
        content_type: "text/plain; charset=utf-8",
        headers: vec![("Location".to_owned(), format!("{back}{sep}flash={id}"))],
        body: Vec::new(),
    }
}

/// 400: the page the form came from, with the message, and the form as it was sent.
async fn refused(req: &Request, session: &Session, ctx: &Ctx, form: &Form, message: String) -> Response {
    let flash = Flash { ok: false, text: format!("nothing changed: {message}") };
    let snap = match snapshot(ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let on_server = req.path.starts_with("/server/");
    let known = form.get("rs").and_then(|rs| parse_rs_key(rs).ok()).is_some_and(|k| snap.row(&k).is_some());
    if on_server && known {
        return server_page(form, &snap, session, ctx, Some(&flash), 400).await;
    }
    if on_server {
        return html_response(400, monitor::page(&snap, session, Some(&flash)));
    }
    html_response(400, services::page(&snap, session, Some(&flash), Some(form)))
}

/// The daemon's current snapshot.
async fn snapshot(ctx: &Ctx) -> Result<Arc<Snapshot>, Response> {
    ask(ctx, ConsoleRequest::Snapshot).await
}

/// Sends a request to the daemon loop and waits for its answer, within [`DAEMON_TIMEOUT`]
/// (503 otherwise).
async fn ask<T>(ctx: &Ctx, make: impl FnOnce(oneshot::Sender<T>) -> ConsoleRequest) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let unavailable = || text(503, "the daemon loop does not answer; try again\n");
    match tokio::time::timeout(DAEMON_TIMEOUT, ctx.daemon.send(make(tx))).await {
        Ok(Ok(())) => {}
        _ => return Err(unavailable()),
    }
    match tokio::time::timeout(DAEMON_TIMEOUT, rx).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(unavailable()),
    }
}

/// The last `n` entries of the audit log, oldest first, each its fields in
/// [`views::AUDIT_FIELDS`]' order ([`super::audit::tail`]: the log's last 1 MiB at most, a
/// line that is not an audit entry skipped, no file no entry).
fn audit_tail(path: &Path, n: usize) -> Result<Vec<[String; 6]>, String> {
    let entries = super::audit::tail(path, n).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(entries.into_iter().map(|e| [e.time, e.user, e.role, e.address, e.change, e.result]).collect())
}

fn html_response(status: u16, body: String) -> Response {
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests;
