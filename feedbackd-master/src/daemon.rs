//! The daemon loop: accept agents, feed their bytes to the [`Master`] state machine, apply
//! its events through the IPVS backend, write its frames back, serve status. No policy
//! lives here; it is all in `feedbackd-proto` and `lvs-sched`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use feedbackd_proto::master::{ConnId, Master, MasterConfig, MasterEvent, RsKey, TableEntry};
use feedbackd_proto::{Duration, Time};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::ipvs::{Backend, BackendKind, RealServer};
use crate::log;
use crate::status::{self, KernelView, Page, PageRequest};

/// What a connection's reader tells the loop.
#[derive(Debug)]
enum Input {
    Data(ConnId, Vec<u8>),
    Closed(ConnId),
}

/// What the loop tells a connection's writer.
#[derive(Debug)]
enum Output {
    Bytes(Vec<u8>),
    Close,
}

#[derive(Debug)]
struct ConnHandle {
    out: mpsc::UnboundedSender<Output>,
    reader: AbortHandle,
}

/// Everything the daemon needs to start.
#[derive(Debug)]
pub struct Settings {
    /// The state machine's settings.
    pub master: MasterConfig,
    /// Where to record the journal (`--record`), opened at start-up.
    pub record: Option<(PathBuf, std::fs::File)>,
    /// Where agents connect.
    pub listen: SocketAddr,
    /// Where status and metrics are served.
    pub status_listen: Option<SocketAddr>,
    /// How often to read the kernel's table.
    pub rescan_interval: std::time::Duration,
}

/// The running daemon's state.
struct Daemon {
    master: Master,
    backend: Backend,
    kernel: KernelView,
    start: Instant,
    conns: BTreeMap<ConnId, ConnHandle>,
    backend_errors: u64,
    journal: Option<Journal>,
}

/// The journal file (`--record`): one line per record, flushed after each batch.
struct Journal {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

/// A TCP listener that can be bound again at once after a restart (SO_REUSEADDR), so a
/// restarted master never fails with "address in use" while old connections linger in
/// TIME_WAIT.
pub fn listener(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into()).with_context(|| format!("binding {addr}"))?;
    sock.listen(1024)?;
    Ok(TcpListener::from_std(sock.into())?)
}

/// Runs until SIGTERM or SIGINT. The kernel's table is left exactly as it is on exit.
pub async fn run(settings: Settings, backend: Backend) -> anyhow::Result<()> {
    let listener = listener(settings.listen)?;
    let (page_tx, mut page_rx) = mpsc::channel::<PageRequest>(16);
    if let Some(addr) = settings.status_listen {
        let l = listener_or_context(addr, "status")?;
        let addr = l.local_addr()?;
        tokio::spawn(status::serve(l, page_tx));
        log!("status on http://{addr}/status, metrics on http://{addr}/metrics");
    } else {
        drop(page_tx);
    }
    let mut d = Daemon {
        master: Master::new(settings.master),
        backend,
        kernel: KernelView::default(),
        start: Instant::now(),
        conns: BTreeMap::new(),
        backend_errors: 0,
        journal: settings.record.map(|(path, file)| Journal { path, out: std::io::BufWriter::new(file) }),
    };
    if let Some(j) = &d.journal {
        log!("recording the journal in {}", j.path.display());
        let now = d.now();
        d.master.set_journal(now, true);
    }
    d.rescan().context("reading the IPVS table at start-up")?;
    d.write_journal();
    log!(
        "listening on {} ({} backend); adopted {} virtual services, {} real servers",
        listener.local_addr()?,
        backend_name(d.backend.kind()),
        d.kernel.services.len(),
        d.kernel.servers.len()
    );
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(8192);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut rescan =
        tokio::time::interval(settings.rescan_interval.max(std::time::Duration::from_millis(100)));
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rescan.tick().await;
    let mut next_conn = 0u64;
    loop {
        let deadline = d.master.poll_timeout().map(|t| d.instant(t));
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    next_conn += 1;
                    let id = ConnId(next_conn);
                    let _ = sock.set_nodelay(true);
                    let (rd, wr) = sock.into_split();
                    let reader = tokio::spawn(read_loop(id, rd, in_tx.clone())).abort_handle();
                    let (out_tx, out_rx) = mpsc::unbounded_channel();
                    tokio::spawn(write_loop(wr, out_rx));
                    d.conns.insert(id, ConnHandle { out: out_tx, reader });
                    let now = d.now();
                    d.timers_due(now);
                    d.master.handle_connect(now, id, peer.ip(), nonce());
                }
                Err(e) => log!("accept failed: {e}"),
            },
            Some(input) = in_rx.recv() => {
                d.input(input);
                // Take what else has arrived before applying, to batch under load.
                for _ in 0..256 {
                    match in_rx.try_recv() {
                        Ok(input) => d.input(input),
                        Err(_) => break,
                    }
                }
            }
            () = sleep_until(deadline) => {
                let now = d.now();
                d.master.handle_timeout(now);
            }
            _ = rescan.tick() => {
                if let Err(e) = d.rescan() {
                    log!("reading the IPVS table failed: {e:#}");
                }
            }
            Some(req) = page_rx.recv() => {
                let now = d.now();
                let body = match req.page {
                    Page::Status => status::render_status(
                        &d.master.status(now),
                        &d.master.agents(now),
                        &d.kernel,
                        d.master.counters().insecure,
                    ),
                    Page::Metrics => status::render_metrics(
                        &d.master.status(now),
                        &d.master.agents(now),
                        d.master.counters(),
                        d.backend_errors,
                    ),
                };
                let _ = req.reply.send(body);
            }
            _ = sigterm.recv() => { log!("SIGTERM: exiting; the IPVS table is left as it is"); break }
            _ = sigint.recv() => { log!("SIGINT: exiting; the IPVS table is left as it is"); break }
        }
        d.flush();
        d.write_journal();
    }
    d.write_journal();
    for (_, c) in std::mem::take(&mut d.conns) {
        c.reader.abort();
        let _ = c.out.send(Output::Close);
    }
    Ok(())
}

fn listener_or_context(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    listener(addr).with_context(|| format!("{what} listener on {addr}"))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    getrandom::fill(&mut n).expect("the OS random source works");
    n
}

async fn read_loop(id: ConnId, mut rd: tokio::net::tcp::OwnedReadHalf, tx: mpsc::Sender<Input>) {
    // Reports are ~100 bytes; a small buffer keeps 10,000 idle agents cheap, and a larger
    // frame simply takes several reads.
    let mut buf = vec![0u8; 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Input::Data(id, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Input::Closed(id)).await;
}

async fn write_loop(mut wr: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Output>) {
    while let Some(out) = rx.recv().await {
        match out {
            Output::Bytes(b) => {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            Output::Close => break,
        }
    }
    let _ = wr.shutdown().await;
}

impl Daemon {
    fn now(&self) -> Time {
        Time(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Time) -> Instant {
        self.start + std::time::Duration::from_nanos(t.as_nanos())
    }

    /// Fires the master's timers that fell due before an input at `now`, so the master sees
    /// its inputs and its timeouts in time order, as a replay in virtual time does (a report
    /// arriving just after its agent's deadline, before the timer branch ran, would
    /// otherwise be handled first).
    fn timers_due(&mut self, now: Time) {
        if self.master.poll_timeout().is_some_and(|t| t <= now) {
            self.master.handle_timeout(now);
        }
    }

    /// Writes the journal records the master produced, and flushes them. A failure is
    /// logged and stops the recording; the master goes on.
    fn write_journal(&mut self) {
        let Some(j) = &mut self.journal else { return };
        let mut result = Ok(());
        while let Some(record) = self.master.poll_journal() {
            if result.is_ok() {
                result = writeln!(j.out, "{}", record.to_line());
            }
        }
        if let Err(e) = result.and_then(|()| j.out.flush()) {
            log!("recording the journal in {} failed: {e}; recording stopped", j.path.display());
            self.journal = None;
            let now = self.now();
            self.master.set_journal(now, false);
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        self.timers_due(now);
        match input {
            Input::Data(id, bytes) => self.master.handle_input(now, id, &bytes),
            Input::Closed(id) => {
                self.conns.remove(&id);
                self.master.handle_disconnect(now, id);
            }
        }
    }

    /// Reads the kernel's table and hands it to the master.
    fn rescan(&mut self) -> anyhow::Result<()> {
        let services = self.backend.services()?;
        let mut kernel = KernelView::default();
        let mut entries = Vec::new();
        for vs in services {
            let dests = self.backend.real_servers(&vs.key)?;
            for rs in dests {
                let key = RsKey { service: vs.key, addr: rs.addr, port: rs.port };
                entries.push(TableEntry { key, weight: rs.weight, forwarding: rs.forwarding });
                kernel.servers.insert(key, rs);
            }
            kernel.services.insert(vs.key, vs);
        }
        let keys: Vec<_> = kernel.services.keys().copied().collect();
        let now = self.now();
        self.timers_due(now);
        self.master.handle_table(now, &keys, &entries);
        self.kernel = kernel;
        Ok(())
    }

    /// Applies the master's events, then writes its frames, then closes what it closed.
    fn flush(&mut self) {
        let mut closes = Vec::new();
        while let Some(ev) = self.master.poll_event() {
            match ev {
                MasterEvent::Close { conn, reason } => {
                    log!("closing connection {}: {reason}", conn.0);
                    closes.push(conn);
                }
                ev => self.apply(ev),
            }
        }
        while let Some((conn, bytes)) = self.master.poll_transmit() {
            if let Some(c) = self.conns.get(&conn) {
                let _ = c.out.send(Output::Bytes(bytes));
            }
        }
        let now = self.now();
        for conn in closes {
            if let Some(c) = self.conns.remove(&conn) {
                c.reader.abort();
                let _ = c.out.send(Output::Close);
            }
            self.master.handle_disconnect(now, conn);
        }
    }

    fn apply(&mut self, ev: MasterEvent) {
        match ev {
            MasterEvent::Registered { conn, agent, peer, matched } => {
                let m: Vec<String> = matched.iter().map(u8::to_string).collect();
                log!(
                    "agent {agent} registered from {peer} (connection {}); virtual services matched per service: [{}]",
                    conn.0,
                    m.join(", ")
                );
            }
            MasterEvent::AddRealServer { key, forwarding, weight, agent, why } => {
                let rs = RealServer::new(key.addr, key.port, forwarding, weight);
                match self.backend.add_real_server(&key.service, &rs) {
                    Ok(()) => {
                        log!(
                            "add {key} {} weight {weight} (agent {agent}: {why})",
                            forwarding.ipvsadm_name()
                        );
                        self.kernel.servers.insert(key, rs);
                    }
                    Err(e) => self.failed(key, &format!("adding {key}"), &e),
                }
            }
            MasterEvent::SetWeight { key, from, to, agent, why } => {
                let mut rs = match self.kernel.servers.get(&key) {
                    Some(rs) => rs.clone(),
                    None => {
                        self.failed(key, &format!("weight {key}"), &"not in the table read last");
                        return;
                    }
                };
                rs.weight = to;
                match self.backend.edit_real_server(&key.service, &rs) {
                    Ok(()) => {
                        log!("weight {key}: {from} -> {to} (agent {agent}: {why})");
                        self.kernel.servers.insert(key, rs);
                    }
                    Err(e) => self.failed(key, &format!("weight {key}: {from} -> {to}"), &e),
                }
            }
            MasterEvent::RemoveRealServer { key, agent, why } => {
                match self.backend.remove_real_server(&key.service, key.addr, key.port) {
                    Ok(()) => {
                        log!("remove {key} (agent {agent}: {why})");
                        self.kernel.servers.remove(&key);
                    }
                    Err(e) => self.failed(key, &format!("removing {key}"), &e),
                }
            }
            MasterEvent::Close { .. } => unreachable!("handled by flush"),
        }
    }

    fn failed(&mut self, key: RsKey, what: &str, e: &dyn std::fmt::Display) {
        self.backend_errors += 1;
        log!("{what} failed: {e}");
        self.kernel.servers.remove(&key);
        let now = self.now();
        self.master.handle_apply_failed(now, key);
    }
}

/// The backend kind's name as `--backend` spells it.
pub fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Netlink => "netlink",
        BackendKind::Ipvsadm => "ipvsadm",
        BackendKind::DryRun => "dry-run",
    }
}

/// `Duration` of the protocol crate from a std one.
pub fn proto_duration(d: std::time::Duration) -> Duration {
    Duration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
