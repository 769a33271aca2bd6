//! `command`: an external program's verdict. `path=` is run as `/bin/sh -c PATH` at every
//! sample; the first word of its standard output is the value, capacity = value / scale
//! clamped to [0, 1] (`scale=100` by default: a percentage of spare capacity; `scale=1`:
//! a fraction). With `metrics=yes`, the lines after the first are `name value` metrics
//! (e.g. `qps 120` and `eps 0.5` for the master's gRPC WRR law).
//!
//! The command gets `timeout_ms=` (default 1000) to exit and close its output. It runs in
//! its own process group, and on a timeout the whole group is killed (SIGKILL), so a
//! shell's children go too. A non-zero exit status is an error that quotes the first line
//! of standard error.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use feedbackd_proto::conf::ConfError;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Reading, Settings, line_metrics, scaled, shorten};

/// The default and the largest `timeout_ms=`.
const DEFAULT_TIMEOUT_MS: u64 = 1000;
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// How much of stdout and stderr is kept [bytes]; the rest is read and dropped so that the
/// command never blocks on a full pipe.
const KEEP_BYTES: u64 = 64 * 1024;
/// The longest sleep between two checks of the child [ms].
const MAX_POLL_MS: u64 = 20;

#[derive(Debug)]
pub(super) struct Command {
    script: String,
    timeout: Duration,
    scale: f64,
    /// `metrics=yes`: the lines after the first are metrics.
    metrics: bool,
}

impl Command {
    pub(super) fn from_conf(settings: &Settings<'_>) -> Result<Command, ConfError> {
        Ok(Command {
            script: settings.path()?.to_owned(),
            timeout: Duration::from_millis(settings.whole(
                "timeout_ms",
                1..=MAX_TIMEOUT_MS,
                DEFAULT_TIMEOUT_MS,
            )?),
            scale: settings.scale()?,
            metrics: settings.metrics()?,
        })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let stdout = run(&self.script, self.timeout)?;
        let what = format!("the output of {:?}", shorten(&self.script));
        let (value, capacity) = scaled(&stdout, self.scale, &what)?;
        let mut metrics = vec![("command_value".to_owned(), value)];
        if self.metrics {
            metrics.extend(line_metrics(&stdout, "command_value", &what)?);
        }
        Ok(Reading { capacity, metrics })
    }
}

/// Which pipe a reader thread read.
enum Pipe {
    Out,
    Err,
}

/// Runs `/bin/sh -c script` and returns its standard output, or why not.
fn run(script: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh: {e}"))?;
    // Read both pipes in threads while waiting: a chatty command must not fill a pipe and
    // stall. The threads end when every writer has closed the pipe (or died).
    let (tx, rx) = mpsc::channel();
    let readers = [
        child.stdout.take().map(|p| (Pipe::Out, Box::new(p) as Box<dyn Read + Send>)),
        child.stderr.take().map(|p| (Pipe::Err, Box::new(p) as Box<dyn Read + Send>)),
    ];
    for (pipe, reader) in readers.into_iter().flatten() {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new().name("feedbackd-command".to_owned()).spawn(move || {
            let _ = tx.send((pipe, read_capped(reader)));
        });
        if let Err(e) = spawned {
            kill_group(&mut child);
            return Err(format!("cannot start a thread to read the command's output: {e}"));
        }
    }
    drop(tx);
    let status = wait_until(&mut child, deadline, timeout)?;
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((Pipe::Out, bytes)) => stdout = Some(bytes),
            Ok((Pipe::Err, bytes)) => stderr = Some(bytes),
            Err(_) => {
                // The shell exited but something it started still holds the output open.
                kill_pgid(child.id());
                return Err(format!(
                    "exited, but a process it started kept its output open past the {} ms \
                     timeout; killed its process group",
                    timeout.as_millis()
                ));
            }
        }
    }
    let stdout = String::from_utf8_lossy(&stdout.unwrap_or_default()).into_owned();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned();
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(match first {
            "" => format!("{status}"),
            _ => format!("{status}: {}", shorten(first)),
        });
    }
    Ok(stdout)
}

/// Waits for the child to exit, polling; on the deadline kills its group and fails.
fn wait_until(child: &mut Child, deadline: Instant, timeout: Duration) -> Result<ExitStatus, String> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                return Err(format!("waiting for the command: {e}"));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(child);
            return Err(format!("timed out after {} ms; killed", timeout.as_millis()));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(MAX_POLL_MS));
    }
}

/// Kills the child's process group and reaps the child.
fn kill_group(child: &mut Child) {
    kill_pgid(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL to process group `pgid` (the child's pid: it leads its own group). Errors
/// (the group is gone already) do not matter.
fn kill_pgid(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Reads a pipe to its end, keeping the first [`KEEP_BYTES`].
fn read_capped(reader: Box<dyn Read + Send>) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut reader = reader.take(KEEP_BYTES);
    let _ = reader.read_to_end(&mut kept);
    let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
    kept
}
