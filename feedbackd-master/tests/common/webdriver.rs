//! A small W3C WebDriver client (<https://www.w3.org/TR/webdriver2/>) for the console's
//! browser tests: Debian's `chromedriver` started on a port of its choosing, one headless
//! `chromium` session with a fresh profile, and the handful of commands the tests use
//! (navigate, find, click, type, read, run a script, screenshot), spoken as HTTP/1.1 over a
//! std `TcpStream` with `serde_json` bodies. No crate beyond those the workspace has.
//!
//! Every call has a bounded socket timeout; waiting for a page to change is
//! [`Browser::wait_until`] (poll a condition up to a limit), never a fixed sleep. A missing
//! tool is a failure naming the Debian package to install, never a skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The longest a single WebDriver command may take (a session start on a loaded machine).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest answer read from chromedriver (a full-page screenshot fits many times).
const MAX_ANSWER: u64 = 64 << 20;

/// A WebDriver error: the command's `error` code and message, or a transport failure.
#[derive(Debug)]
pub struct WdError {
    /// The W3C error code (`no such element`, `stale element reference`, ...) or `io`.
    pub error: String,
    /// What chromedriver or the socket said.
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message.lines().next().unwrap_or(""))
    }
}

fn io_error(e: impl std::fmt::Display) -> WdError {
    WdError { error: "io".into(), message: e.to_string() }
}

/// An element of the current page, as WebDriver names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Element(pub String);

/// A running chromedriver with one headless chromium session. Dropping it ends the
/// session (chromium exits) and kills chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// chromium's process, to kill if the session cannot be ended cleanly.
    browser_pid: Option<i32>,
    profile: PathBuf,
}

/// Fails (never skips) when a tool is missing, naming the Debian package.
pub fn require_tools() {
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's package {package} \
             (apt-get install chromium chromium-driver)"
        );
    }
}

/// Starts chromedriver on a port it picks (`--port=0`) and returns it with the port read
/// back from its "started successfully on port N" line.
fn start_driver(log: &Path) -> (Child, u16) {
    let mut child = Command::new(CHROMEDRIVER)
        .args(["--port=0", "--allowed-ips=127.0.0.1"])
        .arg(format!("--log-path={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER} (package chromium-driver): {e}"));
    let out = child.stdout.take().expect("chromedriver stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => (child, port),
        other => {
            let _ = child.kill();
            panic!("chromedriver did not say its port within 30 s ({other:?}); log: {}", log.display())
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a fresh profile under `dir`.
    /// Certificates are not checked (`acceptInsecureCerts`): the console's is self-signed.
    pub fn start(dir: &Path) -> Browser {
        require_tools();
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let (driver, port) = start_driver(&dir.join("chromedriver.log"));
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let mut b = Browser { driver, port, session: String::new(), browser_pid: None, profile };
        let v = b.call("POST", "/session", Some(caps)).unwrap_or_else(|e| panic!("new session: {e}"));
        b.session = v["sessionId"].as_str().expect("sessionId").to_owned();
        b.browser_pid = v["capabilities"]["goog:processID"].as_i64().map(|p| p as i32);
        b.cmd("POST", "timeouts", json!({"script": 30_000, "pageLoad": 60_000, "implicit": 0}));
        b
    }

    /// One WebDriver command: `method` on `path` with a JSON body; the answer's `value`.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = http_call(self.port, method, path, &body).map_err(io_error)?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| io_error(format!("{method} {path}: answer is not JSON ({e}): {text:.200}")))?;
        if status >= 400 {
            let value = &v["value"];
            return Err(WdError {
                error: value["error"].as_str().unwrap_or("unknown error").to_owned(),
                message: value["message"].as_str().unwrap_or(&text).to_owned(),
            });
        }
        Ok(v["value"].clone())
    }

    /// A command on this session (`/session/ID/<what>`) that must succeed.
    fn cmd(&self, method: &str, what: &str, body: Value) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let body = (method == "POST").then_some(body);
        self.call(method, &path, body).unwrap_or_else(|e| panic!("{method} {what}: {e}"))
    }

    /// The same, with the error returned.
    fn try_cmd(&self, method: &str, what: &str, body: Value) -> Result<Value, WdError> {
        let path = format!("/session/{}/{what}", self.session);
        self.call(method, &path, (method == "POST").then_some(body))
    }

    /// Loads `url` and waits for the page's load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "url", json!({ "url": url }));
    }

    /// The current page's address.
    pub fn url(&self) -> String {
        self.cmd("GET", "url", Value::Null).as_str().unwrap_or_default().to_owned()
    }

    /// The current page's HTML, as the browser now has it.
    pub fn source(&self) -> String {
        self.cmd("GET", "source", Value::Null).as_str().unwrap_or_default().to_owned()
    }

    /// The elements matching a CSS selector (possibly none).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd("POST", "elements", json!({"using": "css selector", "value": css}));
        v.as_array().into_iter().flatten().filter_map(element_of).collect()
    }

    /// The first element matching a CSS selector, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        self.find_all(css).into_iter().next()
    }

    /// The first element matching a CSS selector; fails with the page's address if none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element {css:?} on {}:\n{:.3000}", self.url(), self.source()))
    }

    /// An element's rendered text.
    pub fn text(&self, e: &Element) -> String {
        self.cmd("GET", &format!("element/{}/text", e.0), Value::Null).as_str().unwrap_or_default().to_owned()
    }

    /// An element's attribute, if it has it.
    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        let v = self.cmd("GET", &format!("element/{}/attribute/{name}", e.0), Value::Null);
        v.as_str().map(str::to_owned)
    }

    /// Clicks an element (scrolled into view first, as a user would).
    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("element/{}/click", e.0), json!({}));
    }

    /// Empties a form field.
    pub fn clear(&self, e: &Element) {
        self.cmd("POST", &format!("element/{}/clear", e.0), json!({}));
    }

    /// Types `text` into a form field.
    pub fn type_text(&self, e: &Element, text: &str) {
        self.cmd("POST", &format!("element/{}/value", e.0), json!({ "text": text }));
    }

    /// Runs `js` (a function body) in the page with `args`; its return value.
    pub fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.cmd("POST", "execute/sync", json!({"script": js, "args": args}))
    }

    /// Runs `js` asynchronously: the function body gets `args` then a callback as its last
    /// argument, and the call returns what it passes to that callback (up to the script
    /// timeout).
    pub fn async_script(&self, js: &str, args: Vec<Value>) -> Value {
        self.cmd("POST", "execute/async", json!({"script": js, "args": args}))
    }

    /// The session's cookies (HttpOnly ones included: WebDriver sees them all).
    pub fn cookies(&self) -> Vec<Value> {
        self.cmd("GET", "cookie", Value::Null).as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG of the viewport to `path` and returns the path.
    pub fn screenshot(&self, path: &Path) -> PathBuf {
        let v = self.cmd("GET", "screenshot", Value::Null);
        let png = base64_decode(v.as_str().expect("screenshot is base64 text")).expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is not a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// Polls `cond` (every 50 ms) until it gives a value, or fails after `limit` saying
    /// `what` and showing the page. WebDriver errors inside `cond` (an element replaced by
    /// a live update) count as "not yet".
    pub fn wait_until<T>(
        &self,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&Browser) -> Result<Option<T>, WdError>,
    ) -> T {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            match cond(self) {
                Ok(Some(v)) => return v,
                Ok(None) => {}
                Err(e) => last = e.to_string(),
            }
            if start.elapsed() > limit {
                panic!(
                    "not within {limit:?}: {what} (last error: {last:?}) on {}:\n{:.4000}",
                    self.url(),
                    self.source()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of the first element matching `css`, or `None` if there is none; a
    /// WebDriver error is returned (for [`Browser::wait_until`]).
    pub fn text_of(&self, css: &str) -> Result<Option<String>, WdError> {
        let v = self.try_cmd(
            "POST",
            "execute/sync",
            json!({"script": "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                   "args": [css]}),
        )?;
        Ok(v.as_str().map(|s| s.trim().to_owned()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let ended = self.session.is_empty()
            || self.call("DELETE", &format!("/session/{}", self.session), None).is_ok();
        if let (false, Some(pid)) = (ended, self.browser_pid) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn element_of(v: &Value) -> Option<Element> {
    v.get(ELEMENT_KEY).and_then(Value::as_str).map(|s| Element(s.to_owned()))
}

/// One HTTP/1.1 exchange with chromedriver on loopback: `(status, body)`.
fn http_call(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(CALL_TIMEOUT))?;
    s.set_write_timeout(Some(CALL_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    // chromedriver keeps the connection open whatever the request says: read exactly one
    // answer (its length, or its chunks), never until the end of the stream.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(answer) = complete_answer(&raw) {
            return answer;
        }
        if raw.len() as u64 > MAX_ANSWER {
            return Err(std::io::Error::other("answer too large"));
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return parse_response(&raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The parsed answer if `raw` holds all of it (by its Content-Length or its last chunk).
fn complete_answer(raw: &[u8]) -> Option<std::io::Result<(u16, String)>> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
    };
    let body = &raw[end + 4..];
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (body.len() >= len).then(|| parse_response(&raw[..end + 4 + len]));
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return dechunk(body).map(|_| parse_response(raw));
    }
    None
}

/// Splits an HTTP/1.1 answer into its status and body (chunked or not).
pub fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of head"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked { dechunk(rest).ok_or_else(|| bad("bad chunked body"))? } else { rest.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Standard base64 (RFC 4648, padded) to bytes; `None` on a character outside the alphabet.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = clean.strip_suffix(b"==").or_else(|| clean.strip_suffix(b"=")).unwrap_or(&clean);
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}
