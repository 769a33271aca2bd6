//! `prequal`: what the master's Prequal law needs of a server, its requests in flight
//! (metric `rif`) and its recent latency (metric `latency_ms`), measured on the service
//! port (`source=port`, the default) or read from a file the server writes (`source=file`).
//!
//! `source=port`:
//! - requests in flight = the ESTABLISHED sockets whose local port is `port=` (default
//!   the service's: set it when the server listens on another port, e.g. behind a local
//!   proxy), in `/proc/net/tcp` and `/proc/net/tcp6` (the `connections` module's reader). For a server
//!   that answers one request per connection this is its requests in flight; idle
//!   keep-alive connections count too (write the exact figure to a file instead);
//! - latency = one timed probe per sample: connect to `address=` (default the service's
//!   `address`, else 127.0.0.1) on that port, write `send=` if given (`\r`, `\n`,
//!   `\t`, `\\` escapes; at most 1 KiB), read the first byte of the reply. Connecting,
//!   writing and reading share one deadline, `timeout_ms=` (default 1000). No byte by then
//!   reports `latency_ms` = `timeout_ms` (a lower bound: a stuck server looks slow, not
//!   unknown); a refused or reset connection, or one closed without a byte, is an error
//!   (the service reports no capacity this round). One byte is read, never more. The rif
//!   count is taken before the probe connects, so the probe never counts itself, and is
//!   the count two reads of the tables in a row agree on (see [`stable_count`]).
//!
//! `source=file`: `path=` holds `name value` lines, among them `rif N` and `latency_ms X`
//! (both required; other lines are ignored); a file larger than 4 KiB, or last modified
//! more than `max_age_ms=` ago (default 10000; 0: never stale), is an error, so that a
//! server that died does not leave its last figures standing.
//!
//! capacity = 1 - min(1, rif / `max=`) (default 1000), as `connections` has it: neutral
//! for the Prequal law (which reads the metrics), meaningful for the capacity law.
//!
//! A service has at most one `prequal` module. In an agent with several services, service
//! N's metrics are `rif_N` and `latency_ms_N` (numbered by [`super::ServiceLoad`]), as the
//! master reads them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use feedbackd_proto::conf::{ConfError, ServiceConf};
use lvs_ipvs::Protocol;

use super::connections::count;
use super::{Reading, Settings, metric_lines, read_proc, shorten};

/// The default `max=` (requests in flight at which the capacity is 0).
const DEFAULT_MAX: u64 = 1000;
/// The default and the largest `timeout_ms=`.
const DEFAULT_TIMEOUT_MS: u64 = 1000;
const MAX_TIMEOUT_MS: u64 = 60_000;
/// The longest `send=` request [bytes], after escapes.
pub(super) const MAX_SEND_BYTES: usize = 1024;
/// The largest file `source=file` reads [bytes].
pub(super) const MAX_FILE_BYTES: u64 = 4096;
/// The default and the largest `max_age_ms=`.
const DEFAULT_MAX_AGE_MS: u64 = 10_000;
const MAX_MAX_AGE_MS: u64 = 86_400_000;
/// `TCP_ESTABLISHED` in include/net/tcp_states.h.
const TCP_ESTABLISHED: u8 = 0x01;

#[derive(Debug)]
pub(super) struct Prequal {
    source: Source,
    max: u64,
}

/// Where the figures come from.
#[derive(Debug)]
enum Source {
    /// The socket tables and a probe.
    Port { v4: PathBuf, v6: PathBuf, port: u16, probe: Probe },
    /// A file the server writes.
    File { path: PathBuf, max_age: Option<Duration> },
}

/// A timed probe to the service port.
#[derive(Debug)]
pub(super) struct Probe {
    pub(super) to: SocketAddr,
    pub(super) send: Vec<u8>,
    pub(super) timeout: Duration,
}

/// The settings each source takes (`max` and `source` in both).
const PORT_SETTINGS: [&str; 6] = ["source", "max", "address", "port", "send", "timeout_ms"];
const FILE_SETTINGS: [&str; 4] = ["source", "max", "path", "max_age_ms"];

impl Prequal {
    pub(super) fn from_conf(
        conf: &feedbackd_proto::conf::ModuleConf,
        service: &ServiceConf,
        proc_root: &Path,
    ) -> Result<Prequal, ConfError> {
        let source = conf.settings.iter().find(|(k, _)| k == "source").map(|(_, v)| v.as_str());
        let source = match source {
            None | Some("port") => {
                let settings = Settings::check(conf, &PORT_SETTINGS)?;
                let probe = probe(&settings, service)?;
                let net = proc_root.join("net");
                Source::Port { v4: net.join("tcp"), v6: net.join("tcp6"), port: probe.to.port(), probe }
            }
            Some("file") => {
                let settings = Settings::check(conf, &FILE_SETTINGS)?;
                let max_age = settings.whole("max_age_ms", 0..=MAX_MAX_AGE_MS, DEFAULT_MAX_AGE_MS)?;
                Source::File {
                    path: PathBuf::from(settings.path()?),
                    max_age: (max_age > 0).then(|| Duration::from_millis(max_age)),
                }
            }
            Some(other) => {
                let settings = Settings { conf };
                return Err(settings.error(format!("source={other:?} is neither port nor file")));
            }
        };
        let max = Settings { conf }.whole("max", 1..=u64::from(u32::MAX), DEFAULT_MAX)?;
        Ok(Prequal { source, max })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let (rif, latency_ms) = match &self.source {
            Source::Port { v4, v6, port, probe } => {
                let rif = stable_count(|| {
                    let mut n = count(&read_proc(v4)?, *port, Some(TCP_ESTABLISHED));
                    if v6.exists() {
                        n += count(&read_proc(v6)?, *port, Some(TCP_ESTABLISHED));
                    }
                    Ok(n)
                })?;
                (rif as f64, probe.run()?.as_secs_f64() * 1000.0)
            }
            Source::File { path, max_age } => read_file(path, *max_age, SystemTime::now())?,
        };
        let used = rif / self.max as f64;
        Ok(Reading {
            capacity: 1.0 - used.min(1.0),
            metrics: vec![("rif".to_owned(), rif), ("latency_ms".to_owned(), latency_ms)],
        })
    }
}

/// The most reads of the socket tables for one count.
const MAX_READS: usize = 4;

/// A count of the socket tables two reads in a row agree on (at most [`MAX_READS`]
/// reads; the last one otherwise). The kernel writes the tables a page per read, so a
/// socket can be missed or listed twice while other sockets come and go; two agreeing
/// reads make such a slip unlikely (each alone is rare: a few in a thousand reads on a
/// busy loopback).
pub(super) fn stable_count(mut read: impl FnMut() -> Result<u64, String>) -> Result<u64, String> {
    let mut last = read()?;
    for _ in 1..MAX_READS {
        let n = read()?;
        if n == last {
            return Ok(n);
        }
        last = n;
    }
    Ok(last)
}

/// The probe's settings, checked: a TCP service with a port, a request within bounds.
fn probe(settings: &Settings<'_>, service: &ServiceConf) -> Result<Probe, ConfError> {
    if service.protocol != Protocol::Tcp {
        return Err(settings.error(format!(
            "source=port counts TCP sockets and probes over TCP; a {} service needs \
             source=file",
            service.protocol
        )));
    }
    let port = match settings.whole("port", 1..=u64::from(u16::MAX), u64::from(service.port))? {
        0 => {
            return Err(settings.error(
                "source=port measures the service's port, and port 0 (a firewall-mark service's) \
                 is none: give the port the server listens on with port=N, or use source=file"
                    .to_owned(),
            ));
        }
        // In 1..=65535 by the range above (or the service's port).
        p => u16::try_from(p).unwrap_or(u16::MAX),
    };
    let address = match settings.get("address") {
        None => service.address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(text) => text
            .parse()
            .map_err(|_| settings.error(format!("address={:?} is not an IP address", shorten(text))))?,
    };
    let send = match settings.get("send") {
        None => Vec::new(),
        Some(text) => unescape(text).map_err(|e| settings.error(format!("send: {e}")))?,
    };
    let timeout_ms = settings.whole("timeout_ms", 1..=MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS)?;
    Ok(Probe { to: SocketAddr::new(address, port), send, timeout: Duration::from_millis(timeout_ms) })
}

/// `send=`'s text with `\r`, `\n`, `\t` and `\\` replaced, at most [`MAX_SEND_BYTES`].
pub(super) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' => match chars.next() {
                Some('r') => '\r',
                Some('n') => '\n',
                Some('t') => '\t',
                Some('\\') => '\\',
                Some(other) => return Err(format!("unknown escape `\\{other}` (\\r, \\n, \\t, \\\\)")),
                None => return Err("ends with a lone `\\`".to_owned()),
            },
            c => c,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        if out.len() > MAX_SEND_BYTES {
            return Err(format!("longer than {MAX_SEND_BYTES} bytes"));
        }
    }
    Ok(out)
}

impl Probe {
    /// Connects, writes the request, reads one byte: the time that took, or the timeout
    /// when no byte came in time.
    pub(super) fn run(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let timed_out = |e: &std::io::Error| {
            matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        };
        let to = self.to;
        let mut stream = match TcpStream::connect_timeout(&to, self.timeout) {
            Ok(s) => s,
            Err(e) if timed_out(&e) => return Ok(self.timeout),
            Err(e) => return Err(format!("probe {to}: connect: {e}")),
        };
        let left = || deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
        if !self.send.is_empty() {
            let Some(d) = left() else { return Ok(self.timeout) };
            stream.set_write_timeout(Some(d)).map_err(|e| format!("probe {to}: {e}"))?;
            match stream.write_all(&self.send) {
                Ok(()) => {}
                Err(e) if timed_out(&e) => return Ok(self.timeout),
                Err(e) => return Err(format!("probe {to}: write: {e}")),
            }
        }
        let mut byte = [0u8; 1];
        loop {
            let Some(d) = left() else { return Ok(self.timeout) };
            stream.set_read_timeout(Some(d)).map_err(|e| format!("probe {to}: {e}"))?;
            return match stream.read(&mut byte) {
                Ok(1) => Ok(start.elapsed().min(self.timeout)),
                Ok(_) => Err(format!(
                    "probe {to}: closed without a reply{}",
                    if self.send.is_empty() {
                        " (does the server wait for a request? set send=)"
                    } else {
                        ""
                    }
                )),
                // A read with a timeout fails with EINTR after SIGSTOP and SIGCONT, even
                // without a handler (signal(7)): read on, within the deadline.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => Ok(self.timeout),
                Err(e) => Err(format!("probe {to}: read: {e}")),
            };
        }
    }
}

/// `source=file`: `(rif, latency_ms)` from `path`, refused when larger than
/// [`MAX_FILE_BYTES`] or older than `max_age` at `now`.
pub(super) fn read_file(
    path: &Path,
    max_age: Option<Duration>,
    now: SystemTime,
) -> Result<(f64, f64), String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("reading {shown}: {e}"))?;
    if let Some(max_age) = max_age {
        let modified = file.metadata().and_then(|m| m.modified()).map_err(|e| format!("{shown}: {e}"))?;
        // A time in the future (clocks stepped) is fresh.
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age > max_age {
            return Err(format!(
                "{shown} was last written {:.1} s ago (max_age_ms={}): is the server writing it?",
                age.as_secs_f64(),
                max_age.as_millis()
            ));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("reading {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{shown} is larger than {MAX_FILE_BYTES} bytes"));
    }
    let text = String::from_utf8_lossy(&bytes);
    let metrics = metric_lines(&text, 0, "", &shown.to_string())?;
    let get = |name: &str| {
        let value = metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        match value {
            Some(v) if v >= 0.0 => Ok(v),
            Some(v) => Err(format!("{shown}: {name} {v} is negative")),
            None => Err(format!("{shown} has no `{name} VALUE` line")),
        }
    };
    Ok((get("rif")?, get("latency_ms")?))
}
