//! Helpers for the daemons' end-to-end tests: real processes, real sockets, their output
//! collected line by line. Waiting is always "until this line appears, or fail after a
//! generous limit", never a fixed sleep.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The master binary under test.
pub fn master_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_feedbackd-master"))
}

/// The agent binary: built beside the master by `cargo test --workspace`; built here when
/// this package is tested alone.
pub fn agent_bin() -> PathBuf {
    let bin = master_bin().with_file_name("feedbackd-agent");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "feedbackd-agent"])
            .status()
            .expect("running cargo build -p feedbackd-agent");
        assert!(status.success(), "cargo build -p feedbackd-agent failed");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// A fresh directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fbd-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running daemon and everything it has printed (stdout and stderr, in arrival order).
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for stream in [Box::new(out) as Box<dyn std::io::Read + Send>, Box::new(err)] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc { name: name.into(), child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines so far: pass it to [`Proc::wait_for`] to look only at newer ones.
    pub fn mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn output(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (up to `limit`) for a line after `from` that satisfies `pred`; returns it.
    pub fn wait_for(&self, from: usize, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().skip(from).find(|l| pred(l)) {
                return l.clone();
            }
            if start.elapsed() > limit {
                panic!("{}: no line {what} within {limit:?}; output:\n{}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("kill");
    }

    /// Waits for the process to exit (up to `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > limit {
                panic!("{} did not exit within {limit:?}; output:\n{}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an agent configuration in the original grammar plus the extensions a test needs.
pub fn agent_conf(
    dir: &Path,
    name: &str,
    director: &str,
    address: &str,
    load_file: &Path,
    key_file: Option<&Path>,
) -> PathBuf {
    let key = key_file.map_or(String::new(), |k| format!("key_file = {}\n", k.display()));
    let text = format!(
        "# {name}\ndirector = {director}\nagent_id = {name}\ninterval = 200ms\n{key}\
         service = http\n\tprotocol = TCP\n\tport = 80\n\tmodule = file path={} scale=1\n\
         \tforwarding = NAT\n\taddress = {address}\n",
        load_file.display()
    );
    let p = dir.join(format!("{name}.conf"));
    std::fs::write(&p, text).unwrap();
    p
}

/// The first `ADDR:PORT` after `marker` in a line.
pub fn addr_after(line: &str, marker: &str) -> String {
    let rest = &line[line.find(marker).unwrap_or_else(|| panic!("{marker:?} in {line:?}")) + marker.len()..];
    rest.split_whitespace().next().unwrap().trim_end_matches(',').to_owned()
}

/// GET a page from the master's status server.
pub fn status(addr: &str, metrics: bool) -> String {
    let mut cmd = Command::new(master_bin());
    cmd.args(["status", "--addr", addr]);
    if metrics {
        cmd.arg("--metrics");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
