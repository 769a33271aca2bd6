//! The director's console in a real browser (issue 18, part 6): Debian's headless chromium
//! driven through chromedriver by the small W3C WebDriver client in
//! `tests/common/webdriver.rs`, against a real feedbackd-master (dry-run backend, console
//! on loopback, a self-signed certificate made by `feedbackd-master cert`, users made by
//! `feedbackd-master passwd`) and a real feedbackd-agent whose load a file sets.
//!
//! The flow: a wrong password is refused; a viewer sees no change controls and a change
//! forged from the viewer's page (with the viewer's real CSRF token) is refused 403; an
//! admin watches a weight move without a reload when the agent's load changes, drains the
//! server and sees its weight go to 0, finds the change in the audit view, and logs out.
//! Requests without a session or without the CSRF token (or from a foreign origin), sent
//! by curl, are refused, and a well-formed one is accepted (so the refusals are the gate's,
//! not a malformed request's).
//!
//! Another test configures through the forms: pin and unpin a weight, a bad virtual
//! service refused with its message, then one added, edited and removed.
//!
//! A third test puts 1,000 real servers (32 real agents) on the monitor and checks that
//! one agent's change of load still reaches its cells live; it prints the page's bytes and
//! the live refresh's cost.
//!
//! Screenshots of every page go to `target/console-screenshots/*.png` (listed with what
//! they show in `index.txt`, `index-config.txt` and `index-1000.txt` there); their paths are printed.
//!
//! Needs chromium, chromium-driver and curl: the test fails (never skips) without them.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;
use webdriver::{Browser, WdError};

const LIMIT: Duration = Duration::from_secs(30);
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const VIEWER_PASSWORD: &str = "viewer only, please";
/// The real server the agent reports for, as the pages name it (`RsKeyText`).
const RS: &str = "tcp:10.0.0.1:80/10.0.0.5:80";

/// Where the screenshots go, with an index of what each shows.
struct Shots {
    dir: PathBuf,
    /// This test's index file (tests run in parallel: one each).
    index_name: String,
    index: Vec<String>,
}

impl Shots {
    fn new(index_name: &str) -> Shots {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, index_name: index_name.to_owned(), index: Vec::new() }
    }

    fn take(&mut self, b: &Browser, name: &str, what: &str) {
        let path = b.screenshot(&self.dir.join(format!("{name}.png")));
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("screenshot: {} ({bytes} bytes): {what}", path.display());
        self.index.push(format!("{name}.png\t{}\t{what}", b.url()));
        std::fs::write(self.dir.join(&self.index_name), self.index.join("\n") + "\n").unwrap();
    }
}

// ---- The WebDriver client against a page of our own (no console needed). ----

/// A tiny plain-HTTP server on loopback: `GET /` is a form, `POST /submit` records its
/// body and answers a page showing it. Returns the address and the recorded bodies.
fn local_site() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let posts = Arc::new(Mutex::new(Vec::new()));
    let seen = posts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let seen = seen.clone();
            std::thread::spawn(move || serve_one(conn, &seen));
        }
    });
    (addr, posts)
}

fn serve_one(mut conn: std::net::TcpStream, seen: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0).min(65536);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    let page = if line.starts_with("POST /submit") {
        seen.lock().unwrap().push(body.clone());
        format!("<!doctype html><title>got</title><p id=\"got\">{body}</p>")
    } else if line.starts_with("POST /api") {
        "refused".to_owned()
    } else {
        "<!doctype html><title>form</title><form id=\"f\" method=\"post\" action=\"/submit\">\
         <input name=\"user\" id=\"user\"><input type=\"hidden\" name=\"csrf\" value=\"tok\">\
         <button id=\"go\">go</button></form><p id=\"live\">0</p>\
         <script>setTimeout(function(){document.getElementById('live').textContent='7'},300)</script>"
            .to_owned()
    };
    let status = if line.starts_with("POST /api") { "403 Forbidden" } else { "200 OK" };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}

#[test]
fn webdriver_client_drives_a_local_page() {
    let dir = tempdir("webdriver-client");
    let (addr, posts) = local_site();
    let b = Browser::start(&dir);
    b.goto(&format!("http://{addr}/"));
    assert!(b.url().ends_with(&format!("{addr}/")), "{}", b.url());
    assert!(b.try_find("#nothing-here").is_none());
    // A script's change is seen by polling, not by sleeping.
    let live =
        b.wait_until(LIMIT, "the script sets #live to 7", |b| Ok(b.text_of("#live")?.filter(|t| t == "7")));
    assert_eq!(live, "7");
    let user = b.find("#user");
    b.type_text(&user, "a&b c");
    assert_eq!(b.attr(&user, "name").as_deref(), Some("user"));
    assert_eq!(b.script("return document.title;", vec![]), json!("form"));
    // Without a Content-Security-Policy an injected inline script runs (the console's
    // test checks that its policy stops the same injection).
    let ran = b.script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1;';\
         document.head.appendChild(s); return window.__inline === 1;",
        vec![],
    );
    assert_eq!(ran, json!(true));
    // A fetch from the page, as the viewer's forged request will be.
    let status = b.async_script(
        "const done = arguments[arguments.length - 1];\
         fetch('/api', {method: 'POST', body: 'x=1'}).then(r => done(r.status), e => done(String(e)));",
        vec![],
    );
    assert_eq!(status, json!(403));
    let png = b.screenshot(&dir.join("form.png"));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    b.click(&b.find("#go"));
    let got = b.wait_until(LIMIT, "the form's answer", |b| b.text_of("#got"));
    assert_eq!(got, "user=a%26b+c&csrf=tok");
    assert_eq!(posts.lock().unwrap().as_slice(), ["user=a%26b+c&csrf=tok"]);
    assert!(b.url().ends_with("/submit"));
    let err = b.call("GET", "/session/no-such-session/url", None).unwrap_err();
    assert_eq!(err.error, "invalid session id", "{err}");
}

#[test]
fn base64_and_chunked_answers_decode() {
    assert_eq!(webdriver::base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(webdriver::base64_decode("aGVsbG8h").unwrap(), b"hello!");
    assert_eq!(webdriver::base64_decode("aGk=\n").unwrap(), b"hi");
    assert!(webdriver::base64_decode("a$==").is_none());
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    assert_eq!(webdriver::parse_response(raw).unwrap(), (200, "abcde".to_owned()));
    let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(webdriver::parse_response(raw).unwrap(), (404, "{}".to_owned()));
    assert!(webdriver::parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    assert!(
        webdriver::parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
    );
}

// ---- The console. ----

/// The master's console files: certificate, key, users (admin and viewer), audit log.
struct ConsoleFiles {
    cert: PathBuf,
    key: PathBuf,
    users: PathBuf,
    audit: PathBuf,
}

fn run_master(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(master_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "feedbackd-master {args:?}: {text}");
    text
}

fn console_files(dir: &Path) -> ConsoleFiles {
    let f = ConsoleFiles {
        cert: dir.join("console.crt"),
        key: dir.join("console.key"),
        users: dir.join("console-users"),
        audit: dir.join("console-audit.log"),
    };
    let (cert, key, users) = (f.cert.to_str().unwrap(), f.key.to_str().unwrap(), f.users.to_str().unwrap());
    run_master(&["cert", "--cert", cert, "--key", key, "--name", "127.0.0.1", "--name", "localhost"], "");
    for (user, role, password) in [("admin", "admin", ADMIN_PASSWORD), ("viewer", "viewer", VIEWER_PASSWORD)]
    {
        run_master(
            &["passwd", user, "--role", role, "--users-file", users, "--password-stdin"],
            &format!("{password}\n"),
        );
    }
    f
}

/// The master (dry-run backend, console on a loopback port of the kernel's choosing) and
/// the console's address read back from its log.
fn start_console_master(files: &ConsoleFiles) -> (Proc, String, String) {
    console_master(files, master_args())
}

/// A master run with `args` and the console's options for `files`; its agents' and the
/// console's addresses.
fn console_master(files: &ConsoleFiles, args: Vec<String>) -> (Proc, String, String) {
    let mut cmd = Command::new(master_bin());
    cmd.args(args);
    cmd.args(["--console", "127.0.0.1:0", "--console-cert"])
        .arg(&files.cert)
        .arg("--console-key")
        .arg(&files.key)
        .arg("--console-users")
        .arg(&files.users)
        .arg("--console-audit")
        .arg(&files.audit)
        .arg("--state-file")
        .arg(files.audit.with_file_name("console.state"));
    let (m, listen, _status) = start_master("master", cmd, LIMIT);
    let line = m.wait_for(0, LIMIT, "the console's address", |l| l.contains("https://"));
    let addr = addr_after(&line, "https://").split('/').next().unwrap().to_owned();
    (m, listen, addr)
}

/// The weight the master's log says it set last for `rs` (`... 10.0.0.5:80: A -> B ...`).
fn logged_weight(m: &Proc, from: usize, rs: &str) -> u32 {
    let needle = format!("{rs}: ");
    let line = m.wait_for(from, LIMIT, "a weight change", |l| l.contains(&needle) && l.contains(" -> "));
    let rest = &line[line.find(&needle).unwrap() + needle.len()..];
    let to = rest.split(" -> ").nth(1).unwrap();
    to.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

fn login(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/login"));
    let u = b.find("#user");
    b.clear(&u);
    b.type_text(&u, user);
    b.type_text(&b.find("#password"), password);
    submit(b, "#login-submit");
}

fn logout(b: &Browser) {
    submit(b, "#logout button, #logout input[type=submit]");
    assert!(b.url().ends_with("/login"), "back on /login after logout: {}", b.url());
}

/// The weight cell of `rs` on the monitor page, as now shown.
fn weight_cell(b: &Browser, rs: &str) -> Result<Option<String>, WdError> {
    b.text_of(&format!("tr[data-rs=\"{rs}\"] td.weight"))
}

fn wait_weight(b: &Browser, rs: &str, want: u32, what: &str) {
    b.wait_until(LIMIT, what, |b| Ok(weight_cell(b, rs)?.filter(|w| *w == want.to_string())));
}

/// The session's CSRF token, from the logout form every page carries.
fn page_csrf(b: &Browser) -> String {
    let input = b.find("#logout input[name=csrf]");
    b.attr(&input, "value").expect("the logout form's csrf value")
}

/// `rs` percent-encoded for a query string.
fn query_rs(rs: &str) -> String {
    rs.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// Viewer: the pages show no change controls, and a change forged from the page with the
/// viewer's real CSRF token is refused 403 by the server.
fn viewer_part(b: &Browser, base: &str, shots: &mut Shots) {
    login(b, base, "viewer", VIEWER_PASSWORD);
    b.wait_until(LIMIT, "the viewer on the monitor", |b| Ok(b.try_find("table.servers").map(|_| ())));
    let who = b.text_of("#whoami").unwrap().unwrap_or_default();
    assert!(who.contains("viewer"), "whoami: {who}");
    b.wait_until(LIMIT, "the agent's server on the monitor", |b| weight_cell(b, RS));
    assert!(b.find_all("form.action").is_empty(), "a viewer sees no change forms");
    shots.take(b, "monitor-viewer", "the monitor as a viewer: no change controls");
    b.goto(&format!("{base}/server?rs={}", query_rs(RS)));
    b.find("#chart-weight");
    assert!(b.find_all("form.action").is_empty(), "a viewer sees no server actions");
    assert!(b.try_find("form[action=\"/server/edit\"]").is_none(), "a viewer sees no edit form");
    shots.take(b, "server-viewer", "a real server's page as a viewer: charts, no forms");
    b.goto(&format!("{base}/services"));
    assert!(b.try_find("#service-add").is_none(), "a viewer sees no add-service form");
    let csrf = page_csrf(b);
    let forged = b.async_script(
        "const done = arguments[arguments.length - 1];\
         const body = new URLSearchParams({rs: arguments[0], action: 'drain', csrf: arguments[1]});\
         fetch('/server/action', {method: 'POST', body, redirect: 'manual', credentials: 'same-origin'})\
           .then(r => done(r.status), e => done(String(e)));",
        vec![json!(RS), json!(csrf)],
    );
    assert_eq!(forged, json!(403), "a viewer's change request is refused by the server");
    logout(b);
}

/// Admin: a weight moves live with the agent's load; drain sets it to 0; the audit view
/// shows the drain.
fn admin_part(b: &Browser, base: &str, m: &Proc, load: &Path, shots: &mut Shots) {
    login(b, base, "admin", ADMIN_PASSWORD);
    b.wait_until(LIMIT, "the admin on the monitor", |b| Ok(b.try_find("table.servers").map(|_| ())));
    let who = b.text_of("#whoami").unwrap().unwrap_or_default();
    assert!(who.contains("admin"), "whoami: {who}");
    wait_weight(b, RS, 90, "the monitor shows the agent's weight 90 (capacity 0.9)");
    shots.take(b, "monitor", "the monitor as admin: the service, its server at weight 90");
    page_weight(b);
    // The Content-Security-Policy holds in the browser: an inline script injected into the
    // page does not run (a script from /static would).
    let inline = b.script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1;';\
         document.head.appendChild(s); return window.__inline === undefined;",
        vec![],
    );
    assert_eq!(inline, json!(true), "an inline script ran despite the CSP");
    // A marker in the page's window: a reload would lose it.
    b.script("window.__noReload = 'still here';", vec![]);
    let mark = m.mark();
    write_load(load, 0.3);
    let moved = logged_weight(m, mark, "10.0.0.5:80");
    assert!(moved < 90, "the master lowered the weight: {moved}");
    wait_weight(b, RS, moved, "the weight cell follows the agent's load without a reload");
    assert_eq!(b.script("return window.__noReload;", vec![]), json!("still here"), "the page was reloaded");
    shots.take(b, "monitor-weight-moved", "the monitor after the agent's load fell: the weight moved live");

    b.goto(&format!("{base}/agents"));
    b.find("table#agents tr[data-agent=\"rs1\"]");
    shots.take(b, "agents", "the agents: rs1 with its capacity, report age and state");
    b.goto(&format!("{base}/changes"));
    let changes = b.text(&b.find("table#changes"));
    assert!(changes.contains("10.0.0.5:80"), "the weight change is listed: {changes}");
    shots.take(b, "changes", "the recent weight changes with their reasons");
    b.goto(&format!("{base}/services"));
    b.find("#service-add");
    shots.take(b, "services", "the virtual services with the add, edit and remove forms");

    b.goto(&format!("{base}/server?rs={}", query_rs(RS)));
    b.find("svg#chart-weight");
    b.find("svg#chart-capacity");
    shots.take(b, "server", "a real server's page: weight and capacity charts, the action forms");
    let mark = m.mark();
    submit(b, "form.action[data-action=\"drain\"] button");
    let flash = b.wait_until(LIMIT, "the drain's flash message", |b| b.text_of("#flash.ok"));
    assert!(!flash.is_empty());
    assert_eq!(logged_weight(m, mark, "10.0.0.5:80"), 0, "the master set the drained weight 0");
    shots.take(b, "server-drained", "the server's page after the drain, with the flash message");
    b.goto(&format!("{base}/"));
    wait_weight(b, RS, 0, "the monitor shows the drained server at weight 0");
    let state = b.text_of(&format!("tr[data-rs=\"{RS}\"] td.state")).unwrap().unwrap_or_default();
    assert!(state.contains("drain"), "state cell: {state}");
    shots.take(b, "monitor-drained", "the monitor after the drain: weight 0, state drain");

    b.goto(&format!("{base}/audit"));
    let audit = b.text(&b.find("body"));
    assert!(audit.contains("admin") && audit.contains("drain") && audit.contains("10.0.0.5:80"), "{audit}");
    shots.take(b, "audit", "the audit view: the admin's drain");
}

/// Prints what the monitor page weighs in the browser (bodies as loaded: the HTML, the
/// stylesheet, the script, the icon) and checks that it is small: everything is served by
/// the binary, nothing from a CDN.
fn page_weight(b: &Browser) {
    let entries = b.script(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
           .map(e => [e.name, e.decodedBodySize]);",
        vec![],
    );
    let entries = entries.as_array().expect("performance entries").clone();
    let url = b.url();
    let origin = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/") + "/";
    let mut total = 0;
    for e in &entries {
        let (name, bytes) = (e[0].as_str().unwrap_or(""), e[1].as_u64().unwrap_or(0));
        assert!(name.starts_with(&origin), "a resource not from the console ({origin}): {name}");
        println!("page weight: {name}: {bytes} bytes");
        total += bytes;
    }
    println!("page weight: the monitor with one server: {total} bytes in {} requests", entries.len());
    assert!(entries.len() >= 2 && total > 0 && total < 256 * 1024, "{entries:?}");
}

/// curl -k against the console: `(status, headers, body)`.
fn curl(base: &str, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-k", "-s", "-S", "--max-time", "20", "-D", "-", "-o", "-"])
        .args(args)
        .arg(base)
        .output()
        .unwrap_or_else(|e| panic!("running curl (Debian package curl): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl {args:?} {base}: {}", String::from_utf8_lossy(&out.stderr));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Requests without a session, without the CSRF token or from a foreign origin are
/// refused and change nothing; the same request done right is accepted.
fn raw_requests(base: &str, dir: &Path, m: &Proc) {
    let (s, head, _) = curl(&format!("{base}/"), &[]);
    assert!(
        s == 303 && head.to_ascii_lowercase().contains("location: /login"),
        "GET / without session: {head}"
    );
    let (s, _, _) = curl(&format!("{base}/api/snapshot"), &[]);
    assert_eq!(s, 401, "the API without a session");
    let form = format!("rs={}&action=return", query_rs(RS));
    let (s, _, _) = curl(&format!("{base}/server/action"), &["-d", &form]);
    assert_eq!(s, 401, "a POST without a session");
    let (s, _, _) = curl(&format!("{base}/login"), &["-d", "user=admin&password=wrong"]);
    assert_eq!(s, 401, "a wrong password");

    let jar = dir.join("curl-cookies");
    let jar = jar.to_str().unwrap();
    let login = format!("user=admin&password={}", query_rs(ADMIN_PASSWORD));
    let (s, head, _) = curl(&format!("{base}/login"), &["-c", jar, "-d", &login]);
    assert_eq!(s, 303, "curl logs in: {head}");
    assert!(
        head.contains("__Host-feedbackd=") && head.contains("HttpOnly") && head.contains("Secure"),
        "{head}"
    );
    let (s, _, page) = curl(&format!("{base}/"), &["-b", jar]);
    assert_eq!(s, 200);
    let csrf =
        page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("csrf in page");
    let origin = format!("Origin: {base}");
    let mark = m.mark();
    let (s, _, _) = curl(&format!("{base}/server/action"), &["-b", jar, "-H", &origin, "-d", &form]);
    assert_eq!(s, 403, "a POST without the csrf token");
    let with_csrf = format!("{form}&csrf={csrf}");
    let wrong = format!("{form}&csrf=0{}", &csrf[1..]);
    let (s, _, _) = curl(&format!("{base}/server/action"), &["-b", jar, "-H", &origin, "-d", &wrong]);
    assert_eq!(s, 403, "a POST with a wrong csrf token");
    let evil = "Origin: https://evil.example";
    let (s, _, _) = curl(&format!("{base}/server/action"), &["-b", jar, "-H", evil, "-d", &with_csrf]);
    assert_eq!(s, 403, "a POST from a foreign origin");
    let (_, _, snap) = curl(&format!("{base}/api/snapshot"), &["-b", jar]);
    assert!(
        m.lines()[mark..].iter().all(|l| !l.contains("10.0.0.5:80: 0 ->")),
        "a refused POST changed a weight"
    );
    // The control: the same request with the token and our own origin returns the server.
    let (s, head, _) = curl(&format!("{base}/server/action"), &["-b", jar, "-H", &origin, "-d", &with_csrf]);
    assert_eq!(s, 303, "a well-formed admin POST is accepted: {head}\nsnapshot before: {snap:.500}");
    assert!(logged_weight(m, mark, "10.0.0.5:80") > 0, "return gives the server back to the law");
}

/// A master with the console, and one agent (rs1 for 10.0.0.5:80, capacity 0.9 from the
/// file `load`) whose server is already in the table at weight 90.
struct Director {
    files: ConsoleFiles,
    m: Proc,
    base: String,
    load: PathBuf,
    agent: Proc,
}

fn director(dir: &Path) -> Director {
    let files = console_files(dir);
    let (m, listen, console) = start_console_master(&files);
    let load = dir.join("load");
    write_load(&load, 0.9);
    let key = agent_key_file(dir);
    let agent = agent(&agent_conf(dir, "rs1", &listen, "10.0.0.5", &load, key.as_deref()), "rs1");
    m.wait_for(0, LIMIT, "rs1 added", |l| l.contains("-r 10.0.0.5:80 -m -w 90"));
    Director { files, m, base: format!("https://{console}"), load, agent }
}

#[test]
fn console_in_a_real_browser() {
    let dir = tempdir("console-browser");
    let Director { files, m, base, load, agent: _agent } = director(&dir);

    let mut shots = Shots::new("index.txt");
    let b = Browser::start(&dir);
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "a page without a session goes to /login: {}", b.url());
    b.find("form#login-form");
    shots.take(&b, "login", "the login page");
    login(&b, &base, "admin", "not the password");
    b.wait_until(LIMIT, "the login error", |b| Ok(b.try_find("#login-error").map(|_| ())));
    assert!(b.url().ends_with("/login"));
    assert!(b.cookies().iter().all(|c| c["name"] != "__Host-feedbackd"), "no session for a wrong password");
    shots.take(&b, "login-refused", "a wrong password refused");

    viewer_part(&b, &base, &mut shots);
    admin_part(&b, &base, &m, &load, &mut shots);
    let cookie = b.cookies().into_iter().find(|c| c["name"] == "__Host-feedbackd").expect("session cookie");
    assert_eq!(cookie["httpOnly"], json!(true));
    assert_eq!(cookie["secure"], json!(true));
    assert_eq!(cookie["sameSite"], json!("Strict"));
    raw_requests(&base, &dir, &m);

    logout(&b);
    shots.take(&b, "logged-out", "after logout: the login page");
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "the session is gone after logout: {}", b.url());
    let audit = std::fs::read_to_string(&files.audit).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"admin\"") && l.contains("drain") && l.contains("ok")),
        "{audit}"
    );
    let audited = |what: &[&str]| audit.lines().any(|l| what.iter().all(|w| l.contains(w)));
    assert!(audited(&["\"viewer\"", "login", "ok"]), "the viewer's login is audited: {audit}");
    assert!(audited(&["\"viewer\"", "/server/action", "refused"]), "the viewer's forged POST: {audit}");
    assert!(audited(&["\"admin\"", "login", "refused"]), "the wrong password is audited: {audit}");
    println!("screenshots: {}", shots.dir.join(&shots.index_name).display());
}

// ---- 1,000 real servers. ----

/// Agents in the 1,000-server test, each reporting for [`SERVERS_PER_AGENT`] servers (the
/// protocol's most services per agent is 32).
const AGENTS: usize = 32;
const SERVERS_PER_AGENT: usize = 32;
const SERVERS: usize = 1000;

/// The address of server `i`: agent `i / 32` claims 10.1.<agent>.1 to .32.
fn server_address(i: usize) -> String {
    format!("10.1.{}.{}", i / SERVERS_PER_AGENT, i % SERVERS_PER_AGENT + 1)
}

/// `agentN`'s configuration: one service block per server it reports for.
fn multi_agent_conf(dir: &Path, n: usize, director: &str, load: &Path, key: &Path) -> PathBuf {
    let mut text =
        format!("director = {director}\nagent_id = agent{n}\ninterval = 1s\nkey_file = {}\n", key.display());
    for i in (n * SERVERS_PER_AGENT..(n + 1) * SERVERS_PER_AGENT).filter(|i| *i < SERVERS) {
        text += &format!(
            "service = s{i}\n\tprotocol = TCP\n\tport = 80\n\tmodule = file path={} scale=1\n\
             \tforwarding = NAT\n\taddress = {}\n",
            load.display(),
            server_address(i)
        );
    }
    let p = dir.join(format!("agent{n}.conf"));
    std::fs::write(&p, text).unwrap();
    p
}

/// The master for 1,000 servers: its own keys file (agent0..agent31, 10.1.0.0/16), every
/// agent from 127.0.0.1, registrations not rate-limited.
fn start_big_master(dir: &Path, files: &ConsoleFiles) -> (Proc, String, String, PathBuf) {
    let key = agent_key_file(dir).unwrap();
    let secret = std::fs::read_to_string(&key).unwrap();
    let keys: String = (0..AGENTS).map(|n| format!("agent{n} {secret} 10.1.0.0/16 *\n")).collect();
    let keys_path = dir.join("keys");
    write_private(&keys_path, &keys);
    let mut args = master_args();
    let at = args.iter().position(|a| a == "--keys-file").unwrap();
    args[at + 1] = keys_path.to_str().unwrap().to_owned();
    args.extend(["--max-connections-per-source", "64", "--max-registrations-per-s", "0"].map(String::from));
    let (m, listen, addr) = console_master(files, args);
    (m, listen, addr, key)
}

/// Waits (up to `limit`) until the master's log has `n` lines satisfying `pred`.
fn wait_count(m: &Proc, n: usize, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let have = m.lines().iter().filter(|l| pred(l)).count();
        if have >= n {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: {have} of {n} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The monitor with 1,000 real servers (32 real agents of 32 servers each): every row is
/// on the page, and one agent's change of load still reaches its weight cells live. Prints
/// the page's weight and the live refresh's cost (bytes per poll) as the browser saw them.
#[test]
fn console_monitor_with_1000_servers_stays_live() {
    let dir = tempdir("console-1000");
    let files = console_files(&dir);
    let (m, listen, console, key) = start_big_master(&dir, &files);
    let base = format!("https://{console}");
    let loads: Vec<PathBuf> = (0..AGENTS).map(|n| dir.join(format!("load{n}"))).collect();
    let _agents: Vec<Proc> = (0..AGENTS)
        .map(|n| {
            write_load(&loads[n], 0.9);
            agent(&multi_agent_conf(&dir, n, &listen, &loads[n], &key), &format!("agent{n}"))
        })
        .collect();
    wait_count(&m, SERVERS, Duration::from_secs(120), "servers added", |l| {
        l.contains("dry-run: ipvsadm -a -t 10.0.0.1:80")
    });

    let mut shots = Shots::new("index-1000.txt");
    let b = Browser::start(&dir);
    login(&b, &base, "admin", ADMIN_PASSWORD);
    let rows = b.wait_until(LIMIT, "1,000 rows on the monitor", |b| {
        let n = b.script("return document.querySelectorAll('tr[data-rs]').length;", vec![]);
        Ok(n.as_u64().filter(|n| *n as usize >= SERVERS))
    });
    assert_eq!(rows as usize, SERVERS);
    let watched = format!("tcp:10.0.0.1:80/{}:80", server_address(5));
    let last = format!("tcp:10.0.0.1:80/{}:80", server_address(SERVERS - 1));
    wait_weight(&b, &watched, 90, "agent0's server at weight 90");
    wait_weight(&b, &last, 90, "the last server at weight 90");
    shots.take(&b, "monitor-1000", "the monitor with 1,000 real servers (the top of the page)");
    b.script("window.__noReload = 'still here';", vec![]);
    let mark = m.mark();
    write_load(&loads[0], 0.3);
    let moved = logged_weight(&m, mark, &format!("{}:80", server_address(5)));
    wait_weight(&b, &watched, moved, "agent0's weight cell follows its load live among 1,000 rows");
    assert_eq!(b.script("return window.__noReload;", vec![]), json!("still here"), "the page was reloaded");
    // agent31's servers did not move.
    assert_eq!(weight_cell(&b, &last).unwrap().as_deref(), Some("90"));
    shots.take(&b, "monitor-1000-moved", "the monitor with 1,000 servers after agent0's load fell");
    refresh_cost(&b);
}

/// Prints the monitor's bytes and the live polls' answers as the browser loaded them.
fn refresh_cost(b: &Browser) {
    let v = b.script(
        "const nav = performance.getEntriesByType('navigation')[0];\
         const polls = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'));\
         return {html: nav.decodedBodySize, load_ms: Math.round(nav.duration),\
                 polls: polls.map(e => [e.decodedBodySize, Math.round(e.duration)])};",
        vec![],
    );
    println!("1,000 servers: monitor HTML {} bytes, loaded in {} ms", v["html"], v["load_ms"]);
    let polls = v["polls"].as_array().cloned().unwrap_or_default();
    for p in &polls {
        println!("1,000 servers: a poll: {} bytes in {} ms", p[0], p[1]);
    }
    assert!(!polls.is_empty(), "the monitor polls for updates: {v}");
    assert!(v["html"].as_u64().unwrap_or(0) > 0, "{v}");
}

// ---- Configuration through the forms. ----

/// Fills a form field (`css` inside the page) with `value`.
fn fill(b: &Browser, css: &str, value: &str) {
    let e = b.find(css);
    b.clear(&e);
    b.type_text(&e, value);
}

/// Clicks a form's submit button and waits for the next page (the current document is
/// marked first: a click does not wait for the navigation it starts).
fn submit(b: &Browser, button: &str) {
    let e = b.find(button);
    b.script("window.__submitted = true;", vec![]);
    b.click(&e);
    b.wait_until(LIMIT, "the page after the form's POST", |b| {
        let v = b.script("return document.readyState === 'complete' && !window.__submitted;", vec![]);
        Ok((v == json!(true)).then_some(()))
    });
}

/// Waits for the flash message after a form's POST: `(class, text)`.
fn flash(b: &Browser) -> (String, String) {
    b.wait_until(LIMIT, "a flash message", |b| {
        let v = b.script(
            "const e = document.getElementById('flash'); return e ? [e.className, e.textContent] : null;",
            vec![],
        );
        Ok(v.as_array()
            .map(|a| (a[0].as_str().unwrap_or("").to_owned(), a[1].as_str().unwrap_or("").to_owned())))
    })
}

/// An admin pins and unpins a weight and adds, edits and removes a virtual service through
/// the pages' forms; bad input gets the error message and changes nothing.
#[test]
fn console_configuration_in_a_real_browser() {
    let dir = tempdir("console-config");
    let Director { files, m, base, load, agent: _agent } = director(&dir);
    let mut shots = Shots::new("index-config.txt");
    let b = Browser::start(&dir);
    login(&b, &base, "admin", ADMIN_PASSWORD);
    b.wait_until(LIMIT, "the monitor", |b| Ok(b.try_find("table.servers").map(|_| ())));

    // Pin 7: the law no longer decides, even when the agent's load changes.
    b.goto(&format!("{base}/server?rs={}", query_rs(RS)));
    fill(&b, "form.action[data-action=\"pin\"] input[name=weight]", "7");
    let mark = m.mark();
    submit(&b, "form.action[data-action=\"pin\"] button");
    assert_eq!(flash(&b).0, "ok");
    assert_eq!(logged_weight(&m, mark, "10.0.0.5:80"), 7, "the pinned weight");
    write_load(&load, 0.3);
    b.goto(&format!("{base}/"));
    b.wait_until(LIMIT, "the agent's new capacity on the monitor", |b| {
        Ok(b.text_of(&format!("tr[data-rs=\"{RS}\"] td.capacity"))?.filter(|c| c.starts_with("30")))
    });
    assert_eq!(weight_cell(&b, RS).unwrap().as_deref(), Some("7"), "a pin holds against the law");
    let state = b.text_of(&format!("tr[data-rs=\"{RS}\"] td.state")).unwrap().unwrap_or_default();
    assert!(state.contains("pinned"), "state: {state}");
    shots.take(&b, "monitor-pinned", "the monitor with a pinned weight (7) while the agent reports 30%");
    b.goto(&format!("{base}/server?rs={}", query_rs(RS)));
    let mark = m.mark();
    submit(&b, "form.action[data-action=\"unpin\"] button");
    assert_eq!(flash(&b).0, "ok");
    let law = logged_weight(&m, mark, "10.0.0.5:80");
    assert!(law != 7 && law < 90, "unpinned, the law's weight for 30%: {law}");

    services_forms(&b, &base, &m, &mut shots);
    let audit = std::fs::read_to_string(&files.audit).unwrap();
    for what in ["pin", "unpin", "-A -t 10.0.0.2:8080", "-E -t 10.0.0.2:8080", "-D -t 10.0.0.2:8080"] {
        assert!(audit.lines().any(|l| l.contains(what) && l.contains("ok")), "{what} in the audit:\n{audit}");
    }
}

/// Add (after a refused bad one), edit and remove a virtual service.
fn services_forms(b: &Browser, base: &str, m: &Proc, shots: &mut Shots) {
    let added = "dry-run: ipvsadm -A -t 10.0.0.2:8080";
    b.goto(&format!("{base}/services"));
    fill(b, "#service-add input[name=service]", "tcp:10.0.0.2:99999");
    let mark = m.mark();
    submit(b, "#service-add button");
    let (class, text) = flash(b);
    assert_eq!(class, "error", "a bad service is refused: {text}");
    assert!(text.contains("99999"), "the message names the bad value: {text}");
    assert_eq!(
        b.attr(&b.find("#service-add input[name=service]"), "value").as_deref(),
        Some("tcp:10.0.0.2:99999"),
        "the form comes back with what was typed"
    );
    shots.take(b, "services-bad-input", "a bad virtual service refused with its message; nothing changed");

    fill(b, "#service-add input[name=service]", "tcp:10.0.0.2:8080");
    b.click(&b.find("#service-add select[name=scheduler] option[value=rr]"));
    fill(b, "#service-add input[name=persistence]", "300");
    submit(b, "#service-add button");
    assert_eq!(flash(b).0, "ok");
    let line = m.wait_for(mark, LIMIT, "the service added", |l| l.contains(added));
    assert!(line.contains("-s rr") && line.contains("-p 300"), "{line}");
    assert_eq!(
        m.lines()[mark..].iter().filter(|l| l.contains("dry-run: ipvsadm -A")).count(),
        1,
        "only the good one"
    );
    let edit = "form.service-edit[data-service=\"tcp:10.0.0.2:8080\"]";
    b.wait_until(LIMIT, "the new service's edit form", |b| Ok(b.try_find(edit).map(|_| ())));
    shots.take(b, "services-added", "the new virtual service tcp:10.0.0.2:8080 (rr, persistent 300 s)");

    b.click(&b.find(&format!("{edit} select[name=scheduler] option[value=wlc]")));
    submit(b, &format!("{edit} button"));
    assert_eq!(flash(b).0, "ok");
    let line =
        m.wait_for(mark, LIMIT, "the service edited", |l| l.contains("dry-run: ipvsadm -E -t 10.0.0.2:8080"));
    assert!(line.contains("-s wlc"), "{line}");

    b.goto(&format!("{base}/"));
    b.find("section.service[data-service=\"tcp:10.0.0.2:8080\"]");
    b.goto(&format!("{base}/services"));
    let remove = "form.service-remove[data-service=\"tcp:10.0.0.2:8080\"]";
    b.click(&b.find(&format!("{remove} input[name=confirm]")));
    submit(b, &format!("{remove} button"));
    assert_eq!(flash(b).0, "ok");
    m.wait_for(mark, LIMIT, "the service removed", |l| l.contains("dry-run: ipvsadm -D -t 10.0.0.2:8080"));
    b.goto(&format!("{base}/"));
    assert!(b.try_find("section.service[data-service=\"tcp:10.0.0.2:8080\"]").is_none(), "removed");
    shots.take(b, "monitor-after-remove", "the monitor after the service's removal");
}
