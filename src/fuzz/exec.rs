//! One `lvsim` child process under caps: a wall-clock timeout (then SIGKILL) and an
//! address-space limit (`RLIMIT_AS`, set between fork and exec), and how it ended.

use std::io::Read as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Limits on one child process.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Killed (SIGKILL) after this long.
    pub wall: Duration,
    /// `RLIMIT_AS` [bytes]: an allocation beyond it fails (Rust aborts).
    pub address_space: u64,
}

/// How a child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0, or 3 (a run whose `expect` check failed: it ran to the end).
    Ok,
    /// Exit 2: the scenario was refused (an input error, with its location).
    Refused,
    /// Another exit code (1: an I/O error or a refused command).
    Error(i32),
    /// A Rust panic (exit 101 or "panicked at" on stderr), with its location if printed.
    Panic(Option<String>),
    /// Killed by a signal it raised (SIGABRT: out of memory under the cap, or a stack
    /// overflow; SIGSEGV ...).
    Abort(i32),
    /// Still running at the wall cap: killed.
    PastCap,
}

impl Outcome {
    /// Whether this is a failure the fuzz test counts (a panic, an abort, a run past the
    /// cap).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Panic(_) | Outcome::Abort(_) | Outcome::PastCap)
    }

    /// Its class, for counts and finding names.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error(_) => "error",
            Outcome::Panic(_) => "panic",
            Outcome::Abort(_) => "abort",
            Outcome::PastCap => "past-cap",
        }
    }
}

/// A finished child: how it ended, its status as text, the end of its stderr.
#[derive(Clone, Debug)]
pub struct Exec {
    /// How it ended.
    pub outcome: Outcome,
    /// `exit 2`, `signal 6`, `killed after 20 s`.
    pub status: String,
    /// The last lines of its standard error (at most 64 KiB kept).
    pub stderr: String,
    /// Wall-clock time it took.
    pub elapsed: Duration,
}

const STDERR_KEEP: usize = 64 * 1024;

/// Runs `bin args...` in `cwd` under `caps`, standard output discarded.
pub fn exec(bin: &Path, args: &[String], cwd: &Path, caps: Caps) -> std::io::Result<Exec> {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // A backtrace tells where an allocation failed (the finding's key) and how a panic
    // was reached.
    cmd.env("RUST_BACKTRACE", "1");
    limit_address_space(&mut cmd, caps.address_space);
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_KEEP {
                kept.drain(..kept.len() - STDERR_KEEP);
            }
        }
        kept
    });
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if t0.elapsed() >= caps.wall {
            // Killed here (not by itself): past the cap.
            let _ = child.kill();
            killed = true;
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = t0.elapsed();
    let kept = reader.join().unwrap_or_default();
    let start = kept.len().saturating_sub(STDERR_KEEP);
    let stderr = String::from_utf8_lossy(&kept[start..]).into_owned();
    let (outcome, status) = classify(status, killed, &stderr, caps.wall);
    Ok(Exec { outcome, status, stderr, elapsed })
}

fn classify(s: ExitStatus, killed: bool, stderr: &str, wall: Duration) -> (Outcome, String) {
    if killed {
        return (Outcome::PastCap, format!("killed at the {} s cap", wall.as_secs_f64()));
    }
    let panic = stderr.contains("panicked at");
    match (s.code(), s.signal()) {
        (Some(c), _) if c == 101 || panic => (Outcome::Panic(panic_location(stderr)), format!("exit {c}")),
        (Some(0 | 3), _) => (Outcome::Ok, format!("exit {}", s.code().unwrap_or(0))),
        (Some(2), _) => (Outcome::Refused, "exit 2".into()),
        (Some(c), _) => (Outcome::Error(c), format!("exit {c}")),
        (None, Some(sig)) if panic => (Outcome::Panic(panic_location(stderr)), format!("signal {sig}")),
        (None, Some(sig)) => (Outcome::Abort(sig), format!("signal {sig}")),
        (None, None) => (Outcome::Error(-1), "no status".into()),
    }
}

/// `FILE:LINE` of the first "panicked at FILE:LINE:COL:" in a panic message.
pub fn panic_location(stderr: &str) -> Option<String> {
    let rest = &stderr[stderr.find("panicked at ")? + "panicked at ".len()..];
    let loc = rest.split([':', '\n']).take(2).collect::<Vec<_>>().join(":");
    (!loc.is_empty()).then_some(loc)
}

/// The part of a child's stderr worth keeping: 40 lines from the panic or the failed
/// allocation (with the backtrace's start), else its last 20 lines.
pub fn excerpt(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let marks = ["panicked at", "memory allocation of", "overflowed its stack"];
    match lines.iter().position(|l| marks.iter().any(|m| l.contains(m))) {
        Some(i) => lines[i..lines.len().min(i + 40)].join("\n"),
        None => lines[lines.len().saturating_sub(20)..].join("\n"),
    }
}

/// `FILE:LINE` of the backtrace's first frame in this workspace's code (not the standard
/// library's or a dependency's), relative to the workspace.
pub fn first_own_frame(stderr: &str) -> Option<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    stderr.lines().filter_map(|l| l.trim_start().strip_prefix("at ")).find_map(|at| {
        if at.starts_with("/rustc/") || at.contains("/.cargo/registry/") {
            return None;
        }
        let rel = at.strip_prefix(root).unwrap_or(at);
        Some(rel.rsplit_once(':').map_or(rel, |(fl, _col)| fl).to_owned())
    })
}

/// Sets `RLIMIT_AS` in the child between fork and exec.
#[allow(unsafe_code)]
fn limit_address_space(cmd: &mut Command, bytes: u64) {
    use nix::sys::resource::{Resource, setrlimit};
    // SAFETY: the closure runs in the forked child before exec; it only calls
    // setrlimit(2), which is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(std::io::Error::from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_location_is_file_and_line() {
        let e = "\nthread 'main' panicked at sched/src/time.rs:88:9:\nvirtual time overflow\n";
        assert_eq!(panic_location(e).as_deref(), Some("sched/src/time.rs:88"));
        assert_eq!(panic_location("no panic here"), None);
    }

    #[test]
    fn an_allocation_failure_is_keyed_by_the_first_frame_in_this_workspace() {
        let root = env!("CARGO_MANIFEST_DIR");
        let e = format!(
            "memory allocation of 8 bytes failed\nstack backtrace:\n   0: std::alloc::rust_oom\n             at /rustc/abc/library/std/src/alloc.rs:424:5\n   4: grow\n             at /root/.cargo/registry/src/x/y.rs:1:2\n   9: alloc\n             at {root}/sim-core/src/model/sim/flow.rs:662:28\n  10: arrival\n             at {root}/sim-core/src/model/sim/flow.rs:159:22\n"
        );
        assert_eq!(first_own_frame(&e).as_deref(), Some("sim-core/src/model/sim/flow.rs:662"));
        assert!(excerpt(&e).starts_with("memory allocation of 8 bytes failed\nstack backtrace:"));
        assert_eq!(first_own_frame("memory allocation of 8 bytes failed\n"), None);
    }

    fn sh(script: &str, caps: Caps) -> Exec {
        let args = vec!["-c".to_owned(), script.to_owned()];
        exec(Path::new("/bin/sh"), &args, Path::new("/"), caps).expect("spawning sh")
    }

    const CAPS: Caps = Caps { wall: Duration::from_secs(20), address_space: 1 << 30 };

    #[test]
    fn exit_codes_signals_and_the_wall_cap_are_told_apart() {
        assert_eq!(sh("exit 0", CAPS).outcome, Outcome::Ok);
        assert_eq!(sh("exit 3", CAPS).outcome, Outcome::Ok);
        assert_eq!(sh("echo bad >&2; exit 2", CAPS).outcome, Outcome::Refused);
        assert_eq!(sh("exit 1", CAPS).outcome, Outcome::Error(1));
        let p = sh("echo \"thread 'main' panicked at a.rs:3:4:\" >&2; exit 101", CAPS);
        assert_eq!(p.outcome, Outcome::Panic(Some("a.rs:3".into())));
        assert!(p.stderr.contains("panicked"));
        assert_eq!(sh("kill -ABRT $$", CAPS).outcome, Outcome::Abort(6));
        let caps = Caps { wall: Duration::from_millis(300), ..CAPS };
        let slow = sh("exec sleep 30", caps);
        assert_eq!(slow.outcome, Outcome::PastCap);
        assert!(slow.elapsed < Duration::from_secs(20), "not killed at the cap: {:?}", slow.elapsed);
    }

    #[test]
    fn the_address_space_limit_reaches_the_child() {
        let caps = Caps { address_space: 300 << 20, ..CAPS };
        let out = sh("ulimit -v >&2", caps);
        assert_eq!(out.outcome, Outcome::Ok);
        assert_eq!(out.stderr.trim(), (300 * 1024).to_string());
    }
}
