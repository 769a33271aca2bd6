//! The console's gate and its shared state ([`Console`]): login and logout, sessions, CSRF
//! and Origin checks, roles, the login rate limit and the audit log, in front of the pages.
//! Connections, TLS and the reading of requests are [`super::conn`]'s.
//!
//! ```text
//!  browser ──TLS──▶ conn ──Request──▶ Console::respond()
//!                                       ├─ /static/*  pages::asset (no session)
//!                                       ├─ /login     form, argon2id, Set-Cookie
//!                                       ├─ gate: session? POST: Origin, csrf, admin?
//!                                       └─ pages::handle ──ConsoleRequest──▶ audit proxy ──▶ daemon loop
//! ```
//!
//! Bounds: [`MAX_HASHING`] password checks at once,
//! [`LOGIN_BURST`](super::ratelimit::LOGIN_BURST) failed logins per address per minute,
//! [`MAX_SESSIONS`](super::session::MAX_SESSIONS) sessions, [`MAX_PENDING_CHANGES`] changes
//! waiting for the daemon loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use feedbackd_proto::types::RsKeyText;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::audit::Audit;
use super::http::{Request, Response};
use super::pages::form::Form;
use super::pages::{self, Ctx};
use super::ratelimit::LoginLimiter;
use super::reader;
use super::session::{self, Role, Session, Sessions};
use super::users::Users;
use super::{Change, ConsoleRequest};
use crate::log;

/// Password checks (argon2id, 19 MiB each) at once; more logins wait their turn.
pub const MAX_HASHING: usize = 2;
/// Changes waiting for the daemon loop's answer at once.
pub const MAX_PENDING_CHANGES: usize = 16;
/// Failed-login log lines per minute before they are summarised.
const LOG_BURST: u32 = 10;

/// What the console needs, read at start-up (`main`), before the daemon runs.
#[derive(Debug)]
pub struct ConsoleConfig {
    /// `--console`.
    pub listen: SocketAddr,
    /// From `--console-cert` and `--console-key`.
    pub tls: Arc<rustls::ServerConfig>,
    /// From `--console-users`.
    pub users: Users,
    /// `--console-users`, read again on SIGHUP.
    pub users_path: PathBuf,
    /// `--console-audit`, open.
    pub audit: Audit,
}

impl ConsoleConfig {
    /// The console's settings from the command line, every file read and checked (`None`
    /// without `--console`). Errors name the option and the file.
    pub fn load(cli: &crate::config::Cli) -> anyhow::Result<Option<ConsoleConfig>> {
        use anyhow::Context as _;
        let Some(listen) = cli.console else { return Ok(None) };
        if cli.state_file.is_none() {
            anyhow::bail!(
                "--console needs --state-file FILE, so that what operators change survives a \
                 restart (for example --state-file /var/lib/feedbackd/console.state)"
            );
        }
        let users = Users::load(&cli.console_users).context("--console-users")?;
        let tls = super::tls::server_config(&cli.console_cert, &cli.console_key)?;
        let (audit, notes) = Audit::open(&cli.console_audit)?;
        for n in notes {
            log!("console: {n}");
        }
        Ok(Some(ConsoleConfig { listen, tls, users, users_path: cli.console_users.clone(), audit }))
    }
}

/// The console's shared state: one per master.
#[derive(Debug)]
pub struct Console {
    users: Mutex<Arc<Users>>,
    sessions: Mutex<Sessions>,
    limiter: Mutex<LoginLimiter>,
    audit: Arc<Audit>,
    ctx: Ctx,
    hashing: Semaphore,
    logs: Mutex<LogBudget>,
}

/// The failed-login lines: [`LOG_BURST`] per minute, then one summary.
#[derive(Debug)]
struct LogBudget {
    limiter: feedbackd_proto::ratelimit::LogLimiter<()>,
    start: Instant,
}

impl Console {
    /// The console's state; its handlers reach the daemon through `daemon`, behind a proxy
    /// that writes each change's answer to the audit log (spawned here: call within tokio).
    pub fn new(users: Users, audit: Audit, daemon: mpsc::Sender<ConsoleRequest>) -> Console {
        let audit = Arc::new(audit);
        let (tx, rx) = mpsc::channel(MAX_PENDING_CHANGES);
        tokio::spawn(audit_proxy(rx, daemon, audit.clone()));
        // Hash the stand-in password now, so that the first unknown user's login takes no
        // longer than a known one's.
        drop(tokio::task::spawn_blocking(|| Users::default().verify("", "warm-up")));
        let window = feedbackd_proto::Duration::from_secs(60);
        Console {
            users: Mutex::new(Arc::new(users)),
            sessions: Mutex::new(Sessions::default()),
            limiter: Mutex::new(LoginLimiter::default()),
            ctx: Ctx { daemon: tx, audit: audit.path().to_owned() },
            audit,
            hashing: Semaphore::new(MAX_HASHING),
            logs: Mutex::new(LogBudget {
                limiter: feedbackd_proto::ratelimit::LogLimiter::new(LOG_BURST, window),
                start: Instant::now(),
            }),
        }
    }

    /// Answers one request: the routes of the console and the gate in front of the pages.
    pub async fn respond(&self, req: &Request) -> Response {
        let get = req.method == "GET" || req.method == "HEAD";
        if get && req.path.starts_with("/static/") {
            return static_asset(&req.path);
        }
        if req.path == "/login" {
            return if get { login_page(200, None) } else { self.login(req).await };
        }
        let token = session::cookie_token(&req.headers).map(str::to_owned);
        let found = token.as_deref().and_then(|t| lock(&self.sessions).get(Instant::now(), t));
        let Some(session) = found else {
            return if !get || req.path.starts_with("/api/") {
                text(401, "log in first: POST /login\n")
            } else {
                see_other("/login")
            };
        };
        if !get {
            if let Err(why) = post_allowed(req, &session) {
                self.record(&session.user, Some(session.role), req, &format!("POST {}", req.path), why);
                return text(403, &format!("{why}\n"));
            }
            if req.path == "/logout" {
                return self.logout(req, token.as_deref().unwrap_or(""), &session);
            }
            if session.role != Role::Admin {
                let why = "refused: a viewer changes nothing";
                self.record(&session.user, Some(session.role), req, &format!("POST {}", req.path), why);
                return text(403, &format!("{why}\n"));
            }
        }
        if get && req.path == "/api/whoami" {
            return whoami(&session);
        }
        let resp = pages::handle(req, &session, &self.ctx).await;
        if !get && resp.status >= 400 {
            let why = format!("refused: HTTP {} {}", resp.status, reader::reason(resp.status));
            self.record(&session.user, Some(session.role), req, &format!("POST {}", req.path), &why);
        }
        resp
    }

    /// `POST /login`: rate limit, Origin, then the password (argon2id, off the async thread).
    async fn login(&self, req: &Request) -> Response {
        let peer = req.peer.ip();
        if !lock(&self.limiter).attempt(Instant::now(), peer) {
            self.log_failure(|| format!("console: login attempts from {peer} over the limit: refused"));
            return login_page(429, Some("Too many login attempts from your address: wait a minute."));
        }
        if !same_origin(&req.headers) {
            return text(403, "refused: the request comes from another site\n");
        }
        let form = if reader::is_form(&req.headers) { Form::parse(&req.body).ok() } else { None };
        let (user, password) = match &form {
            Some(f) => (f.get("user").unwrap_or(""), f.get("password").unwrap_or("")),
            None => ("", ""),
        };
        // Nothing to hash without both (this reveals nothing about who exists).
        let role = if user.is_empty() || password.is_empty() {
            None
        } else {
            self.check_password(user, password).await
        };
        let shown: String = user.chars().take(64).collect();
        let Some(role) = role else {
            self.record(&shown, None, req, "login", "refused: wrong user or password");
            self.log_failure(|| format!("console: failed login for {shown:?} from {peer}"));
            return login_page(401, Some("Wrong user or password."));
        };
        lock(&self.limiter).succeeded(peer);
        let (token, _) = {
            let mut sessions = lock(&self.sessions);
            // A new login replaces the session the browser held, if any.
            if let Some(old) = session::cookie_token(&req.headers) {
                sessions.remove(old);
            }
            sessions.create(Instant::now(), user, role)
        };
        self.record(user, Some(role), req, "login", "ok");
        let mut resp = see_other("/");
        resp.headers.push(("Set-Cookie".to_owned(), session::set_cookie(&token)));
        resp
    }

    async fn check_password(&self, user: &str, password: &str) -> Option<Role> {
        let Ok(_permit) = self.hashing.acquire().await else { return None };
        let users = lock(&self.users).clone();
        let (user, password) = (user.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || users.verify(&user, &password)).await.ok().flatten()
    }

    /// Reads the users file again (SIGHUP): on success its users replace the old ones, and
    /// the sessions of users removed or whose role changed end; on error nothing changes.
    pub fn reload_users(&self, path: &Path) -> anyhow::Result<usize> {
        let users = Users::load(path)?;
        let n = users.len();
        lock(&self.sessions).retain(|s| users.get(&s.user).is_some_and(|u| u.role == s.role));
        *lock(&self.users) = Arc::new(users);
        Ok(n)
    }

    fn logout(&self, req: &Request, token: &str, session: &Session) -> Response {
        lock(&self.sessions).remove(token);
        self.record(&session.user, Some(session.role), req, "logout", "ok");
        let mut resp = see_other("/login");
        resp.headers.push(("Set-Cookie".to_owned(), session::clear_cookie()));
        resp
    }

    fn record(&self, user: &str, role: Option<Role>, req: &Request, change: &str, result: &str) {
        if let Err(e) = self.audit.record(user, role, req.peer.ip(), change, result) {
            self.log_failure(|| format!("console: audit log: {e:#}"));
        }
    }

    /// Logs a line within [`LOG_BURST`] per minute; the rest are summarised.
    fn log_failure(&self, line: impl FnOnce() -> String) {
        let mut b = lock(&self.logs);
        let now = feedbackd_proto::Time(u64::try_from(b.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        b.limiter.handle_timeout(now);
        while let Some(s) = b.limiter.poll_suppressed() {
            log!("console: failed logins and refusals: {s}");
        }
        if b.limiter.handle_event(now, ()) {
            log!("{}", line());
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A POST passes when it comes from the console's own pages: its `Origin` (or `Referer`)
/// names this host, and it carries the session's CSRF token (form field `csrf`, or header
/// `X-CSRF-Token` for scripts).
fn post_allowed(req: &Request, session: &Session) -> Result<(), &'static str> {
    if !same_origin(&req.headers) {
        return Err("refused: the request comes from another site (Origin)");
    }
    let header = req.headers.iter().find(|(k, _)| k == "x-csrf-token").map(|(_, v)| v.clone());
    let field = if reader::is_form(&req.headers) {
        Form::parse(&req.body).ok().and_then(|f| f.get("csrf").map(str::to_owned))
    } else {
        None
    };
    match field.or(header) {
        Some(t) if session::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()) => Ok(()),
        _ => Err("refused: missing or wrong CSRF token (reload the page)"),
    }
}

/// `Origin` (else `Referer`) is `https://HOST` of the request's own `Host`; a request
/// without either passes (the CSRF token still decides). `Origin: null` counts as absent:
/// with `Referrer-Policy: no-referrer` browsers send it on the console's own form posts.
pub fn same_origin(headers: &[(String, String)]) -> bool {
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let Some(host) = get("host") else {
        return get("origin").is_none_or(|o| o == "null") && get("referer").is_none();
    };
    let own = format!("https://{host}");
    match (get("origin"), get("referer")) {
        (Some(o), _) if o != "null" => o.eq_ignore_ascii_case(&own),
        (_, Some(r)) => r == own || r.starts_with(&format!("{own}/")),
        _ => true,
    }
}

/// `GET /api/whoami`: the session's user, role and CSRF token, for scripts that POST
/// (header `X-CSRF-Token`). Same-origin only: no CORS header lets another site read it.
fn whoami(session: &Session) -> Response {
    let body = serde_json::json!({
        "user": session.user,
        "role": session.role.name(),
        "csrf": session.csrf,
    });
    Response {
        status: 200,
        content_type: "application/json",
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

fn static_asset(path: &str) -> Response {
    let name = path.trim_start_matches("/static/");
    match pages::asset(path).or_else(|| pages::asset(name)) {
        Some((content_type, body)) => {
            Response { status: 200, content_type, headers: Vec::new(), body: body.to_vec() }
        }
        None => text(404, "not found\n"),
    }
}

/// A plain-text response.
pub fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn see_other(to: &str) -> Response {
    let mut r = text(303, &format!("see {to}\n"));
    r.headers.push(("Location".to_owned(), to.to_owned()));
    r
}

/// The login page (`GET /login`, and the answer to a failed login with its message).
fn login_page(status: u16, error: Option<&str>) -> Response {
    let error = error.map_or(String::new(), |e| format!("<p id=\"login-error\" class=\"error\">{e}</p>\n"));
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n\
         <title>feedbackd-master console: log in</title>\n\
         <link rel=\"stylesheet\" href=\"/static/console.css\">\n</head>\n<body class=\"login\">\n\
         <main>\n<h1>feedbackd-master console</h1>\n{error}\
         <form id=\"login-form\" method=\"post\" action=\"/login\">\n\
         <label for=\"user\">User</label>\n\
         <input name=\"user\" id=\"user\" autocomplete=\"username\" maxlength=\"64\" required autofocus>\n\
         <label for=\"password\">Password</label>\n\
         <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" \
         maxlength=\"256\" required>\n\
         <button id=\"login-submit\" type=\"submit\">Log in</button>\n</form>\n</main>\n</body>\n</html>\n"
    );
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// What an audit line says a change is: a server action as `drain RS`, a service change as
/// the `ipvsadm` command it amounts to.
pub fn describe(change: &Change) -> String {
    use lvs_ipvs::ipvsadm::Command;
    match change {
        Change::Server { key, action } => format!("{action} {}", RsKeyText(*key)),
        Change::EditServer { key, forwarding, u_threshold, l_threshold } => format!(
            "edit {} forwarding {forwarding:?} u_threshold {u_threshold} l_threshold {l_threshold}",
            RsKeyText(*key)
        ),
        Change::AddService { key, config } => {
            format!("ipvsadm {}", Command::AddService(*key, *config))
        }
        Change::EditService { key, config } => {
            format!("ipvsadm {}", Command::EditService(*key, *config))
        }
        Change::RemoveService { key } => format!("ipvsadm {}", Command::DelService(*key)),
    }
}

/// Between the pages and the daemon loop: passes snapshots on, and writes each change's
/// answer to the audit log before the page sees it.
async fn audit_proxy(
    mut rx: mpsc::Receiver<ConsoleRequest>,
    daemon: mpsc::Sender<ConsoleRequest>,
    audit: Arc<Audit>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_CHANGES));
    while let Some(req) = rx.recv().await {
        let ConsoleRequest::Change { who, change, reply } = req else {
            if daemon.send(req).await.is_err() {
                return;
            }
            continue;
        };
        let Ok(permit) = pending.clone().acquire_owned().await else { return };
        let (daemon, audit) = (daemon.clone(), audit.clone());
        tokio::spawn(async move {
            let what = describe(&change);
            let (tx, answer) = oneshot::channel();
            let sent = daemon.send(ConsoleRequest::Change { who: who.clone(), change, reply: tx }).await;
            let result = match sent {
                Ok(()) => answer.await.unwrap_or_else(|_| Err("the daemon did not answer".to_owned())),
                Err(_) => Err("the daemon is not running".to_owned()),
            };
            let line = match &result {
                Ok(s) => format!("ok: {s}"),
                Err(s) => format!("refused: {s}"),
            };
            if let Err(e) = audit.record(&who.user, Some(Role::Admin), who.address, &what, &line) {
                log!("console: audit log: {e:#}");
            }
            let _ = reply.send(result);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedbackd_proto::types::{ServerAction, Who};

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn changes_are_described_as_ipvsadm_would_say_them() {
        let key = lvs_ipvs::ServiceKey::Addr {
            protocol: lvs_ipvs::Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let config = crate::ipvs::service_config(&key, lvs_ipvs::SchedulerKind::Wlc);
        assert_eq!(describe(&Change::AddService { key, config }), "ipvsadm -A -t 10.0.0.1:80 -s wlc");
        assert_eq!(describe(&Change::RemoveService { key }), "ipvsadm -D -t 10.0.0.1:80");
    }

    #[test]
    fn origins() {
        assert!(same_origin(&h(&[("host", "127.0.0.1:8443")])), "no Origin, no Referer: the token decides");
        assert!(same_origin(&h(&[("host", "127.0.0.1:8443"), ("origin", "https://127.0.0.1:8443")])));
        assert!(same_origin(&h(&[("host", "a:1"), ("origin", "null")])), "a form post under no-referrer");
        assert!(same_origin(&h(&[("host", "a:1"), ("referer", "https://a:1/server?rs=x")])));
        for bad in [
            &[("host", "a:1"), ("origin", "https://b:1")][..],
            &[("host", "a:1"), ("origin", "http://a:1")],
            &[("host", "a:1"), ("origin", "https://a:1.evil")],
            &[("host", "a:1"), ("referer", "https://a:1.evil/")],
            &[("host", "a:1"), ("origin", "null"), ("referer", "https://b/")],
            &[("origin", "https://a:1")],
        ] {
            assert!(!same_origin(&h(bad)), "{bad:?}");
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fbm-server-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("audit.log")
    }

    #[tokio::test]
    async fn a_change_is_audited_with_the_daemons_answer_and_the_answer_passed_on() {
        let path = temp("proxy");
        let (audit, _) = Audit::open(&path).unwrap();
        let (daemon_tx, mut daemon_rx) = mpsc::channel(4);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(audit_proxy(rx, daemon_tx, Arc::new(audit)));
        let key = feedbackd_proto::types::parse_rs_key("tcp:10.0.0.1:80/10.0.0.5:80").unwrap();
        let who = Who { user: "root".into(), address: "192.0.2.9".parse().unwrap() };
        for (answer, line) in
            [(Ok("drained".to_owned()), "ok: drained"), (Err("no".to_owned()), "refused: no")]
        {
            let (reply, answered) = oneshot::channel();
            let change = Change::Server { key, action: ServerAction::Drain };
            tx.send(ConsoleRequest::Change { who: who.clone(), change, reply }).await.unwrap();
            let Some(ConsoleRequest::Change { reply, change, .. }) = daemon_rx.recv().await else { panic!() };
            assert_eq!(change, Change::Server { key, action: ServerAction::Drain });
            reply.send(answer.clone()).unwrap();
            assert_eq!(answered.await.unwrap(), answer);
            let last = super::super::audit::tail(&path, 1).unwrap().pop().unwrap();
            assert_eq!(
                (last.user.as_str(), last.role.as_str(), last.address.as_str(), last.result.as_str()),
                ("root", "admin", "192.0.2.9", line)
            );
            assert_eq!(last.change, "drain tcp:10.0.0.1:80/10.0.0.5:80");
        }
        // Snapshots pass straight through.
        let (reply, _answered) = oneshot::channel();
        tx.send(ConsoleRequest::Snapshot(reply)).await.unwrap();
        assert!(matches!(daemon_rx.recv().await, Some(ConsoleRequest::Snapshot(_))));
    }

    #[tokio::test]
    async fn the_gate_in_front_of_the_pages() {
        let path = temp("gate");
        let (audit, _) = Audit::open(&path).unwrap();
        let (daemon_tx, _daemon_rx) = mpsc::channel(4);
        let users = super::super::users::parse_users("").unwrap();
        let console = Console::new(users, audit, daemon_tx);
        let (viewer, vs) = lock(&console.sessions).create(Instant::now(), "eve", Role::Viewer);
        let (admin, s) = lock(&console.sessions).create(Instant::now(), "root", Role::Admin);
        let req = |method: &str, path: &str, cookie: &str, body: &str| Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: h(&[
                ("host", "a:1"),
                ("cookie", &format!("{}={cookie}", session::COOKIE)),
                ("content-type", "application/x-www-form-urlencoded"),
            ]),
            body: body.as_bytes().to_vec(),
            peer: "127.0.0.1:5".parse().unwrap(),
        };
        let status = |r: Response| r.status;
        assert_eq!(status(console.respond(&req("GET", "/", "nope", "")).await), 303);
        assert_eq!(status(console.respond(&req("GET", "/api/x", "nope", "")).await), 401);
        assert_eq!(status(console.respond(&req("POST", "/x", "nope", "")).await), 401);
        let ok_body = format!("csrf={}", vs.csrf);
        assert_eq!(status(console.respond(&req("POST", "/x", &viewer, &ok_body)).await), 403);
        assert_eq!(
            status(console.respond(&req("POST", "/x", &admin, &ok_body)).await),
            403,
            "another's token"
        );
        let ok_body = format!("a=1&csrf={}", s.csrf);
        assert_eq!(
            status(console.respond(&req("POST", "/x", &admin, &ok_body)).await),
            404,
            "reaches the pages"
        );
        let mut with_header = req("POST", "/x", &admin, "");
        with_header.headers.push(("x-csrf-token".into(), s.csrf.clone()));
        assert_eq!(status(console.respond(&with_header).await), 404, "the header works for scripts");
        let r = console.respond(&req("POST", "/logout", &admin, &ok_body)).await;
        assert_eq!((r.status, r.headers[0].1.as_str()), (303, "/login"));
        assert_eq!(status(console.respond(&req("GET", "/api/whoami", &admin, "")).await), 401);
        let r = console.respond(&req("GET", "/api/whoami", &viewer, "")).await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((v["user"].as_str(), v["role"].as_str()), (Some("eve"), Some("viewer")));
        // No user at all: every login fails, and nothing panics on an empty file.
        let r = console.respond(&req("POST", "/login", "", "user=root&password=x")).await;
        assert_eq!(r.status, 401);
    }
}
