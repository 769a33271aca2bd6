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

/// A feedbackd-agent process with configuration `conf`.
pub fn agent(conf: &Path, name: &str) -> Proc {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config").arg(conf);
    Proc::spawn(name, cmd)
}

/// Writes the capacity a `file` load module reads, atomically (a rename).
pub fn write_load(path: &Path, capacity: f64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{capacity}\n")).unwrap();
    std::fs::rename(tmp, path).unwrap();
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

// ---- The chaos tests' master, agents and measurements. ----

/// The key every chaos-test agent holds (each agent id has its own line in [`keys_file`];
/// the bytes are the same for brevity, which the master does not care about).
const CHAOS_KEY: &str = "0123456789abcdef0123456789abcdef";

/// The chaos tests' agents: the legitimate `rs1` and the misbehaving ones.
const CHAOS_AGENTS: &[&str] =
    &["rs1", "greedy0", "greedy1", "greedy2", "greedy3", "greedy4", "load0", "load1", "load2"];

/// Writes `text` to `path`, readable by its owner only (both daemons refuse looser keys).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The chaos tests' keys file, written once per test process: each agent of
/// [`CHAOS_AGENTS`] may claim 10.0.0.0/8 for any service.
pub fn keys_file() -> &'static Path {
    static KEYS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let path = tempdir("chaos-keys").join("keys");
        let lines: String =
            CHAOS_AGENTS.iter().map(|id| format!("{id} {CHAOS_KEY} 10.0.0.0/8 *\n")).collect();
        write_private(&path, &lines);
        path
    })
}

/// The master's start arguments in the chaos tests: dry-run backend, one service, loopback
/// addresses chosen by the kernel, the agents' keys, and a law that sets the reported
/// capacity at once (no smoothing, dead-band, step limit or slow start), so that a test
/// can wait for an exact weight.
pub fn master_args() -> Vec<String> {
    [
        "--smoothing",
        "1",
        "--dead-band",
        "0",
        "--max-step",
        "0",
        "--slow-start",
        "0s",
        "--backend",
        "dry-run",
        "--service",
        "tcp:10.0.0.1:80",
        "--listen",
        "127.0.0.1:0",
        "--status-listen",
        "127.0.0.1:0",
        "--rescan-interval",
        "500ms",
        "--keys-file",
        keys_file().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The key the chaos tests' agents use.
pub fn agent_psk() -> Option<feedbackd_proto::auth::Psk> {
    Some(feedbackd_proto::auth::Psk::from_file_contents(CHAOS_KEY.as_bytes()).unwrap())
}

/// The agent's key file (`key_file = ...`), written into `dir`.
pub fn agent_key_file(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("agent.key");
    write_private(&path, CHAOS_KEY);
    Some(path)
}

/// Starts a master from `cmd` and waits for its agent and status addresses.
pub fn start_master(name: &str, cmd: Command, limit: Duration) -> (Proc, String, String) {
    let m = Proc::spawn(name, cmd);
    let l = m.wait_for(0, limit, "listening", |l| l.contains("listening on"));
    let listen = addr_after(&l, "listening on ");
    let s = m.wait_for(0, limit, "status", |l| l.contains("status on http://"));
    let status = addr_after(&s, "status on http://").trim_end_matches("/status").to_owned();
    (m, listen, status)
}

/// A process's resident memory [KiB] (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A process's CPU time so far [clock ticks] (utime + stime of /proc/PID/stat).
pub fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    let after = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// One HTTP request to the status server with a deadline on every step: the whole answer,
/// or why not.
pub fn http(addr: &str, request: &str, limit: Duration) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&sa, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A sample's value in a metrics page (`name{labels}` exactly as written); panics if absent.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        .trim()
        .parse()
        .unwrap()
}

/// Fetches /metrics, retrying until it answers (up to `limit`).
pub fn metrics_within(status: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let each = Duration::from_secs(5).min(limit);
        match http(status, "GET /metrics HTTP/1.0\r\n\r\n", each) {
            Ok(r) if r.starts_with("HTTP/1.0 200") => return r,
            other => {
                if start.elapsed() > limit {
                    panic!("/metrics did not answer within {limit:?}: {other:?}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An agent speaking the protocol from the test itself (the `feedbackd_proto` state
/// machine over a blocking socket), so that a test can make it misbehave.
pub struct ProtoAgent {
    pub sock: std::net::TcpStream,
    pub agent: feedbackd_proto::agent::Agent,
    start: Instant,
}

impl ProtoAgent {
    /// Connects from `source` (any loopback address) and registers as `id` for
    /// 10.0.0.1:80, claiming `address`; reads only until registered.
    pub fn register(
        master: &str,
        source: std::net::IpAddr,
        id: &str,
        address: &str,
    ) -> std::io::Result<ProtoAgent> {
        use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent};
        use feedbackd_proto::types::ServiceSpec;
        use lvs_ipvs::Forwarding;
        use lvs_ipvs::Protocol;
        let sock = connect_from(master, source)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let spec = ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::Masq,
            address: Some(address.parse().unwrap()),
        };
        let config = AgentConfig {
            agent_id: id.into(),
            services: vec![spec],
            interval: feedbackd_proto::Duration::from_millis(100),
            psk: agent_psk(),
            master_timeout: feedbackd_proto::Duration::from_secs(3600),
        };
        let mut a = ProtoAgent { sock, agent: Agent::new(config), start: Instant::now() };
        let now = a.now();
        let mut nonce = [0u8; 16];
        nonce[..id.len().min(16)].copy_from_slice(&id.as_bytes()[..id.len().min(16)]);
        a.agent.handle_connected(now, nonce);
        let mut buf = [0u8; 4096];
        while !a.agent.is_registered() {
            a.send()?;
            while let Some(ev) = a.agent.poll_event() {
                if let AgentEvent::Close { reason, .. } = ev {
                    return Err(std::io::Error::other(reason));
                }
            }
            let n = std::io::Read::read(&mut a.sock, &mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("master closed the connection"));
            }
            let now = a.now();
            a.agent.handle_input(now, &buf[..n]);
        }
        Ok(a)
    }

    pub fn now(&self) -> feedbackd_proto::Time {
        feedbackd_proto::Time(self.start.elapsed().as_nanos() as u64)
    }

    /// Writes what the state machine has to send.
    pub fn send(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.agent.poll_transmit() {
            std::io::Write::write_all(&mut self.sock, &bytes)?;
        }
        Ok(())
    }

    /// Sends one report of `capacity` (without reading anything).
    pub fn report(&mut self, capacity: f64) -> std::io::Result<()> {
        let now = self.now();
        let sample = feedbackd_proto::agent::Sample {
            admin: feedbackd_proto::types::AdminState::Ready,
            capacity: vec![Some(capacity)],
            metrics: Vec::new(),
        };
        self.agent.handle_sample(now, sample);
        self.send()
    }
}

/// A TCP connection to `master` from the loopback address `source` (127.0.0.0/8 is all
/// loopback, so many sources are at hand).
pub fn connect_from(master: &str, source: std::net::IpAddr) -> std::io::Result<std::net::TcpStream> {
    let sa: std::net::SocketAddr = master.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    // A small receive window: an agent that does not read shows it after a few kilobytes
    // (rather than after the megabytes of an autotuned buffer).
    sock.set_recv_buffer_size(4096)?;
    sock.bind(&std::net::SocketAddr::new(source, 0).into())?;
    sock.connect_timeout(&sa.into(), Duration::from_secs(5))?;
    // A peer that stops reading (or vanishes without a reset) fails the write, not hangs it.
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(sock.into())
}

/// The `i`-th flood source: 127.0.1.0 + i (never 127.0.0.1, the legitimate agents').
pub fn flood_source(i: u32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::from_bits(u32::from(std::net::Ipv4Addr::new(127, 0, 1, 0)) + i))
}

/// Runs `feedbackd-master/tests/vm/SCRIPT` in the lvsim VM (`tests/vm/lvsim-vm`, set up
/// first) with `MASTER` and `AGENT` pointing at the binaries, checks that it ran to its
/// `== done ==` line and returns its standard output. `None` when `LVSIM_SKIP_VM=1`, with
/// a notice naming `test`.
pub fn run_in_vm(test: &str, script: &str) -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let harness = root.join("tests/vm/lvsim-vm");
    if std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1") {
        eprintln!("NOTICE: {test} SKIPPED because LVSIM_SKIP_VM=1");
        return None;
    }
    let setup = Command::new(&harness).arg("setup").status().expect("running tests/vm/lvsim-vm setup");
    assert!(
        setup.success(),
        "tests/vm/lvsim-vm setup failed; install qemu (see .ci/run) or set LVSIM_SKIP_VM=1"
    );
    let out = Command::new(&harness)
        .args(["run", "--share"])
        .arg(&root)
        .args(["--timeout", "300", "-e"])
        .arg(format!("MASTER={}", master_bin().display()))
        .arg("-e")
        .arg(format!("AGENT={}", agent_bin().display()))
        .arg("--")
        .arg("/bin/sh")
        .arg(root.join("feedbackd-master/tests/vm").join(script))
        .output()
        .expect("running the VM");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "VM run failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("== done =="), "{stdout}");
    Some(stdout)
}

/// The lines after `== NAME ==` in a VM script's output, up to the next section.
pub fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out.find(&format!("== {name} ==")).unwrap_or_else(|| panic!("no section {name}:\n{out}"));
    let rest = &out[start + name.len() + 6..];
    &rest[..rest.find("\n== ").unwrap_or(rest.len())]
}
