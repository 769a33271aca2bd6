//! The daemon loop: accept agents, feed their bytes to the [`Master`] state machine, apply
//! its events through the IPVS backend, write its frames back, serve status. No policy
//! lives here; it is all in `feedbackd-proto` and `lvs-sched`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use feedbackd_proto::admission::{AcceptBackoff, AcceptFailure, Admission, AdmissionConfig};
use feedbackd_proto::drive::{ApplyFailed, MasterOutput, flush_master};
use feedbackd_proto::master::{ConnId, Master, MasterConfig, MasterEvent, RsKey, TableEntry};
use feedbackd_proto::ratelimit::LogLimiter;
use feedbackd_proto::types::Who;
use feedbackd_proto::{Duration, Time};
use lvs_ipvs::DestConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::console::ConsoleRequest;
use crate::console::history::WeightChange;
use crate::console::server::{Console, ConsoleConfig};
use crate::console::snapshot::{Live, Parts};
use crate::ipvs::{Backend, BackendKind, DestRow};
use crate::log;
use crate::record::JournalFile;
use crate::state::{State, StateFile};
use crate::status::{self, Bounds, KernelView, Page, PageRequest, StatusStats};

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

/// An admitted connection: its writer's queue (bounded in bytes by `queued`, which the
/// writer decreases as it writes), its tasks, and its source for the admission count.
#[derive(Debug)]
struct ConnHandle {
    out: mpsc::UnboundedSender<Output>,
    queued: Arc<AtomicUsize>,
    reader: AbortHandle,
    /// Tells the writer to reset the connection.
    kill: Arc<Notify>,
    peer: IpAddr,
}

/// How long a write to an agent may block before the connection is dropped (a peer that
/// stopped reading with a full socket buffer).
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a rate-limited log line is about: each cause has its own budget of
/// [`LOG_BURST`] lines per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// A connection refused at accept.
    Refused,
    /// A connection the master closed.
    Close,
    /// `accept()` failed.
    AcceptError,
    /// A reader too slow for `--max-queued-bytes`.
    SlowReader,
    /// An IPVS backend operation failed.
    Backend,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Refused => "refused connections",
            Cause::Close => "closed connections",
            Cause::AcceptError => "accept failures",
            Cause::SlowReader => "slow readers",
            Cause::Backend => "backend failures",
        }
    }
}

/// Reads queued for the loop (each at most 1 KiB), across all connections.
const INPUT_QUEUE: usize = 256;

/// Console requests queued for the loop.
const CONSOLE_QUEUE: usize = 64;

/// Log lines per cause per second before they are suppressed (and counted).
const LOG_BURST: u32 = 10;

/// Everything the daemon needs to start.
#[derive(Debug)]
pub struct Settings {
    /// The state machine's settings.
    pub master: MasterConfig,
    /// The agent-check agents to poll (`--agent-check`).
    pub agent_checks: Vec<crate::agentcheck::Target>,
    /// Where to record the journal (`--record`), opened at start-up.
    pub record: Option<JournalFile>,
    /// Who may connect, and how many at once.
    pub admission: AdmissionConfig,
    /// The most bytes queued for one connection before it is dropped as a slow reader.
    pub max_queued_bytes: usize,
    /// The operator's state file (`--state-file`) and what it held at start-up.
    pub state: Option<(StateFile, State)>,
    /// Console requests from elsewhere than the console's server (tests: changes without
    /// HTTP); `None` in the daemon.
    pub console_requests: Option<mpsc::Receiver<ConsoleRequest>>,
    /// Where agents connect.
    pub listen: SocketAddr,
    /// Where status and metrics are served.
    pub status_listen: Option<SocketAddr>,
    /// How often to read the kernel's table.
    pub rescan_interval: std::time::Duration,
    /// The director's console (`--console`), its files read at start-up.
    pub console: Option<ConsoleConfig>,
}

/// The daemon's state a console change needs ([`crate::changes::Ctx`]), borrowed field by field so
/// that `self.operator` stays free.
macro_rules! ctx {
    ($d:expr, $now:expr) => {
        crate::changes::Ctx {
            master: &mut $d.master,
            backend: &mut $d.backend,
            kernel: &mut $d.kernel,
            now: $now,
        }
    };
}

/// The running daemon's state.
struct Daemon {
    master: Master,
    backend: Backend,
    kernel: KernelView,
    start: Instant,
    conns: BTreeMap<ConnId, ConnHandle>,
    next_conn: u64,
    backend_errors: u64,
    journal: Option<JournalFile>,
    /// The console's changes: services, saved entries, the state file.
    operator: crate::changes::Operator,
    admission: Admission,
    max_queued_bytes: usize,
    bounds: Bounds,
    limiter: LogLimiter<Cause>,
    accept_backoff: AcceptBackoff,
    /// While set, the accept loop waits (after descriptors ran out).
    accept_paused_until: Option<Instant>,
    in_tx: mpsc::Sender<Input>,
    status_stats: Arc<StatusStats>,
    /// The console's snapshot, history and recent changes.
    live: Live,
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
pub async fn run(mut settings: Settings, backend: Backend) -> anyhow::Result<()> {
    let listener = listener(settings.listen)?;
    let (state, other_console) = (settings.state.take(), settings.console_requests.take());
    let (page_tx, mut page_rx) = mpsc::channel::<PageRequest>(16);
    let status_stats = Arc::new(StatusStats::default());
    let mut status_task = None;
    if let Some(addr) = settings.status_listen {
        let l = listener_or_context(addr, "status")?;
        let addr = l.local_addr()?;
        status_task = Some(tokio::spawn(status::serve(l, page_tx, status_stats.clone())));
        log!("status on http://{addr}/status, metrics on http://{addr}/metrics");
    } else {
        drop(page_tx);
    }
    // Small, so that the loop's queue never holds more than a few milliseconds of work: a
    // connection that sends without pause waits its turn with the others (the channel's
    // senders are served in order) instead of queueing ahead of them.
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    // The console's requests (snapshots, changes); its server holds the sender.
    let (console_tx, mut console_rx) = mpsc::channel::<ConsoleRequest>(CONSOLE_QUEUE);
    let mut console_task = match settings.console.take() {
        Some(c) => Some(spawn_console(c, console_tx)?),
        None => {
            drop(console_tx);
            None
        }
    };
    let rescan_interval = settings.rescan_interval;
    let mut polled_rx = crate::agentcheck::spawn(&settings.agent_checks);
    let mut d = Daemon::new(settings, backend, in_tx, status_stats);
    log!("{}", d.admission.describe());
    log!("at most {} bytes queued per connection (--max-queued-bytes)", d.max_queued_bytes);
    if let Some(j) = &d.journal {
        log!("recording the journal in {} (appending)", j.path().display());
        let now = d.now();
        d.master.set_journal(now, true);
    }
    d.rescan().context("reading the IPVS table at start-up")?;
    if let Some((file, state)) = state {
        d.restore(file, &state)?;
    }
    d.flush();
    d.write_journal();
    log!(
        "listening on {} ({} backend); adopted {} virtual services, {} real servers",
        listener.local_addr()?,
        backend_name(d.backend.kind()),
        d.kernel.services.len(),
        d.kernel.servers.len()
    );
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    if let Some(rx) = other_console {
        console_rx = rx;
    }
    let mut rescan = tokio::time::interval(rescan_interval.max(std::time::Duration::from_millis(100)));
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rescan.tick().await;
    loop {
        let deadline = d.master.poll_timeout().map(|t| d.instant(t));
        let log_deadline = d.limiter.poll_timeout().map(|t| d.instant(t));
        let paused = d.accept_paused_until;
        tokio::select! {
            accepted = listener.accept(), if paused.is_none() => d.accepted(accepted),
            () = sleep_until(paused) => d.accept_paused_until = None,
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
                d.live.touch();
            }
            () = sleep_until(log_deadline) => {
                let now = d.now();
                d.limiter.handle_timeout(now);
            }
            _ = rescan.tick() => {
                if let Err(e) = d.rescan() {
                    d.note(Cause::Backend, || format!("reading the IPVS table failed: {e:#}"));
                }
            }
            Some(req) = page_rx.recv() => d.page(req),
            Some(req) = console_rx.recv() => d.console(req),
            Some(answer) = polled_rx.recv() => {
                d.polled(&answer);
                // Many targets: take what else has arrived before applying, as for inputs.
                for _ in 0..256 {
                    match polled_rx.try_recv() {
                        Ok(answer) => d.polled(&answer),
                        Err(_) => break,
                    }
                }
            }
            _ = sighup.recv() => d.reopen_journal(),
            end = task_end(&mut console_task) => {
                d.write_journal();
                let how = if end.is_err_and(|e| e.is_panic()) { "panicked" } else { "ended" };
                anyhow::bail!("the console server {how}; exiting so that the master is restarted");
            }
            end = task_end(&mut status_task) => {
                // Never a master without its status: exit, and let the service manager
                // restart it (the table is left as it is, and adopted again).
                d.write_journal();
                let how = if end.is_err_and(|e| e.is_panic()) { "panicked" } else { "ended" };
                anyhow::bail!("the status server {how}; exiting so that the master is restarted");
            }
            _ = sigterm.recv() => { log!("SIGTERM: exiting; the IPVS table is left as it is"); break }
            _ = sigint.recv() => { log!("SIGINT: exiting; the IPVS table is left as it is"); break }
        }
        d.flush();
        d.pending();
        d.write_journal();
        d.write_suppressed();
    }
    d.write_journal();
    for (_, c) in std::mem::take(&mut d.conns) {
        c.reader.abort();
        let _ = c.out.send(Output::Close);
    }
    Ok(())
}

/// Binds the console's port and starts its server; logs where it listens.
fn spawn_console(
    c: ConsoleConfig,
    daemon: mpsc::Sender<ConsoleRequest>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let l = listener_or_context(c.listen, "console")?;
    let addr = l.local_addr()?;
    if !addr.ip().is_loopback() {
        log!(
            "console: {addr} is not a loopback address: the console is reachable from the network \
             (loopback and an SSH tunnel are recommended)"
        );
    }
    let (users, audit) = (c.users.len(), c.audit.path().display().to_string());
    let state = Arc::new(Console::new(c.users, c.audit, daemon));
    tokio::spawn(reload_console_users(state.clone(), c.users_path));
    let task = tokio::spawn(crate::console::conn::serve(l, c.tls, state));
    log!("console on https://{addr}/ ({users} users; audit log {audit})");
    Ok(task)
}

/// On SIGHUP, reads the console's users file again (`passwd` changes apply without a
/// restart); a bad file keeps the users in force and says why.
async fn reload_console_users(console: Arc<Console>, path: std::path::PathBuf) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        match console.reload_users(&path) {
            Ok(n) => log!("SIGHUP: console users read again from {}: {n} users", path.display()),
            Err(e) => log!("SIGHUP: console users NOT reloaded (the previous ones stay): {e:#}"),
        }
    }
}

fn listener_or_context(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    listener(addr).with_context(|| format!("{what} listener on {addr}"))
}

/// Resolves when `task` ends (never, without one).
async fn task_end(task: &mut Option<tokio::task::JoinHandle<()>>) -> Result<(), tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
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
    // frame simply takes several reads. The channel is bounded: a fast sender waits for the
    // loop (its bytes stay in its socket buffer) instead of growing a queue.
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

/// Writes what the loop queued; `queued` counts the bytes not yet written (the loop adds,
/// this subtracts), so that the loop can bound them. `Close` ends the connection after
/// what was queued before it (FIN). A write blocked for [`WRITE_TIMEOUT`], or `kill` (a
/// reader over `--max-queued-bytes`), resets it instead (RST, zero linger), so that the
/// kernel does not keep the unsendable bytes of a peer that stopped reading.
async fn write_loop(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Output>,
    queued: Arc<AtomicUsize>,
    kill: Arc<Notify>,
) {
    let reset = loop {
        let out = tokio::select! {
            biased;
            () = kill.notified() => break true,
            out = rx.recv() => out,
        };
        let Some(Output::Bytes(b)) = out else { break false };
        let written = tokio::select! {
            biased;
            () = kill.notified() => None,
            r = tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&b)) => Some(r),
        };
        queued.fetch_sub(b.len(), Ordering::Relaxed);
        match written {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(_))) => break false,
            None | Some(Err(_)) => break true,
        }
    };
    if reset {
        // Dropping the last half with a zero linger sends RST and frees the socket at once.
        let _ = socket2::SockRef::from(wr.as_ref()).set_linger(Some(std::time::Duration::ZERO));
        return;
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.shutdown()).await;
}

/// The accept loop's view of an `accept()` error.
pub(crate) fn accept_failure(e: &std::io::Error) -> AcceptFailure {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Exhausted,
        _ => AcceptFailure::Other,
    }
}

impl Daemon {
    fn new(
        settings: Settings,
        backend: Backend,
        in_tx: mpsc::Sender<Input>,
        status_stats: Arc<StatusStats>,
    ) -> Daemon {
        Daemon {
            master: Master::new(settings.master),
            backend,
            kernel: KernelView::default(),
            start: Instant::now(),
            conns: BTreeMap::new(),
            next_conn: 0,
            backend_errors: 0,
            journal: settings.record,
            operator: crate::changes::Operator::default(),
            admission: Admission::new(settings.admission),
            max_queued_bytes: settings.max_queued_bytes,
            bounds: Bounds::default(),
            limiter: LogLimiter::new(LOG_BURST, Duration::from_secs(1)),
            accept_backoff: AcceptBackoff::default(),
            accept_paused_until: None,
            in_tx,
            status_stats,
            live: Live::default(),
        }
    }

    /// Logs a line about `cause`, within its budget ([`note`]).
    fn note(&mut self, cause: Cause, line: impl FnOnce() -> String) {
        let now = self.now();
        note(&mut self.limiter, now, cause, line);
    }

    /// Writes the limiter's summaries of suppressed lines.
    fn write_suppressed(&mut self) {
        while let Some(s) = self.limiter.poll_suppressed() {
            log!("{}: {s}", s.cause.name());
        }
    }

    /// A socket accepted (or not): admitted, it gets its reader and writer; refused, it is
    /// closed at once, before anything is allocated for it.
    fn accepted(&mut self, accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>) {
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                let pause = self.accept_backoff.handle_failure(accept_failure(&e));
                self.bounds.accept_errors += 1;
                self.accept_paused_until =
                    Some(Instant::now() + std::time::Duration::from_nanos(pause.as_nanos()));
                self.note(Cause::AcceptError, || {
                    format!("accept failed: {e}; pausing accepts for {} ms", pause.as_nanos() / 1_000_000)
                });
                return;
            }
        };
        self.accept_backoff.handle_success();
        if let Err(why) = self.admission.handle_accept(peer.ip()) {
            drop(sock);
            self.note(Cause::Refused, || format!("refused a connection from {peer}: {why}"));
            return;
        }
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        let reader = tokio::spawn(read_loop(id, rd, self.in_tx.clone())).abort_handle();
        let (out, out_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let kill = Arc::new(Notify::new());
        tokio::spawn(write_loop(wr, out_rx, queued.clone(), kill.clone()));
        self.conns.insert(id, ConnHandle { out, queued, reader, kill, peer: peer.ip() });
        let now = self.now();
        self.timers_due(now);
        self.master.handle_connect(now, id, peer.ip(), nonce());
    }

    /// Forgets a connection (its tasks are told to stop): the admission count drops.
    fn drop_conn(&mut self, conn: ConnId, reset: bool) -> bool {
        let Some(c) = self.conns.remove(&conn) else { return false };
        c.reader.abort();
        if reset {
            c.kill.notify_one();
        } else {
            let _ = c.out.send(Output::Close);
        }
        self.admission.handle_close(c.peer);
        true
    }

    /// Renders a status page.
    fn page(&mut self, req: PageRequest) {
        let now = self.now();
        let body = match req.page {
            Page::Status => status::render_status(
                &self.master.status(now),
                &self.master.agents(now),
                &self.kernel,
                !self.master.config().auth.required(),
            ),
            Page::Metrics => {
                let mut bounds = self.bounds.clone();
                bounds.refused = self.admission.refused().to_vec();
                bounds.open = self.admission.open();
                bounds.journal_rotations = self.journal.as_ref().map_or(0, |j| j.rotations);
                bounds.status = self.status_stats.snapshot();
                status::render_metrics(
                    &self.master.status(now),
                    &self.master.agents(now),
                    self.master.counters(),
                    self.backend_errors,
                    &bounds,
                    !self.master.config().auth.required(),
                )
            }
        };
        let _ = req.reply.send(body);
    }

    /// Answers the console: a snapshot, or a change applied.
    fn console(&mut self, req: ConsoleRequest) {
        if matches!(req, ConsoleRequest::Change { .. }) {
            self.live.touch();
        }
        match req {
            ConsoleRequest::Snapshot(reply) => {
                let _ = reply.send(self.console_snapshot());
            }
            ConsoleRequest::History { key, reply } => {
                let _ = reply.send(self.live.history.series(&key));
            }
            ConsoleRequest::Change { who, change, reply } => {
                let r = self.change(&who, &change);
                match &r {
                    Ok(text) => log!("console: {who}: {text}"),
                    Err(e) => log!("console: {who}: refused: {e}"),
                }
                let _ = reply.send(r);
            }
        }
    }

    /// The console's snapshot: the one built last unless something changed since
    /// (`console::snapshot::Live`).
    fn console_snapshot(&mut self) -> Arc<crate::console::Snapshot> {
        let now = self.now();
        let (master, kernel) = (&self.master, &self.kernel);
        self.live.snapshot(now, || Parts {
            at: now,
            rows: master.status(now),
            agents: master.agents(now),
            kernel,
            changes: Vec::new(),
        })
    }

    /// Samples the servers' weight and capacity for the console's charts, when due.
    fn sample_history(&mut self) {
        let now = self.now();
        if self.live.history.sample_due(now) {
            let rows = self.master.status(now);
            self.live.history.sample(now, &rows);
        }
    }

    /// An agent-check agent answered: a polled agent's report.
    fn polled(&mut self, answer: &crate::agentcheck::Answer) {
        self.live.touch();
        let now = self.now();
        self.timers_due(now);
        self.master.handle_polled(now, &answer.polled, answer.admin, answer.capacity);
    }

    /// SIGHUP: reopens the journal file (after logrotate moved it).
    fn reopen_journal(&mut self) {
        let Some(j) = &mut self.journal else {
            log!("SIGHUP: no journal to reopen (no --record)");
            return;
        };
        match j.reopen() {
            Ok(notes) => {
                log!("SIGHUP: reopened the journal {}", j.path().display());
                for n in notes {
                    log!("{n}");
                }
            }
            Err(e) => {
                log!("SIGHUP: reopening the journal failed: {e:#}; recording stopped");
                self.journal = None;
                let now = self.now();
                self.master.set_journal(now, false);
            }
        }
    }

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

    /// Writes the journal records the master produced (rotating between lines when the
    /// file is full). A failure is logged and stops the recording; the master goes on.
    fn write_journal(&mut self) {
        let Some(j) = &mut self.journal else { return };
        let mut lines = Vec::new();
        while let Some(record) = self.master.poll_journal() {
            lines.push(record.to_line());
        }
        if let Err(e) = j.append(&lines) {
            log!("recording the journal in {} failed: {e:#}; recording stopped", j.path().display());
            self.journal = None;
            let now = self.now();
            self.master.set_journal(now, false);
        }
    }

    fn input(&mut self, input: Input) {
        self.live.touch();
        let now = self.now();
        self.timers_due(now);
        match input {
            Input::Data(id, bytes) => self.master.handle_input(now, id, &bytes),
            Input::Closed(id) => {
                if self.drop_conn(id, false) {
                    self.master.handle_disconnect(now, id);
                }
            }
        }
    }

    /// Reads the kernel's table and hands it to the master.
    fn rescan(&mut self) -> anyhow::Result<()> {
        let services = self.backend.services()?;
        let mut kernel = KernelView::default();
        let mut entries = Vec::new();
        for (service, config) in services {
            for row in self.backend.real_servers(&service)? {
                let rs = row.config;
                let key = RsKey { service, addr: rs.addr, port: rs.port };
                entries.push(TableEntry { key, weight: rs.weight, forwarding: rs.fwd });
                kernel.servers.insert(key, row);
            }
            kernel.services.insert(service, config);
        }
        let keys: Vec<_> = kernel.services.keys().copied().collect();
        let now = self.now();
        self.timers_due(now);
        self.master.handle_table(now, &keys, &entries);
        self.kernel = kernel;
        self.live.touch();
        self.sample_history();
        Ok(())
    }

    /// Takes the master's output in the drivers' one order (`feedbackd_proto::drive`):
    /// events applied, then frames queued, then closes. A connection whose queue would pass
    /// `--max-queued-bytes` is dropped at once.
    fn flush(&mut self) {
        let now = self.now();
        let mut out = DaemonOutput {
            backend: &mut self.backend,
            kernel: &mut self.kernel,
            dests: &mut self.operator.dests,
            backend_errors: &mut self.backend_errors,
            limiter: &mut self.limiter,
            live: &mut self.live,
            frames: Vec::new(),
            closes: Vec::new(),
        };
        flush_master(&mut self.master, now, &mut out);
        let (frames, closes) = (out.frames, out.closes);
        let mut slow = Vec::new();
        for (conn, bytes) in frames {
            let Some(c) = self.conns.get(&conn) else { continue };
            let queued = c.queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if queued > self.max_queued_bytes {
                slow.push(conn);
                continue;
            }
            let _ = c.out.send(Output::Bytes(bytes));
        }
        for conn in closes {
            // The master has forgotten it already (flush_master told it).
            self.drop_conn(conn, false);
        }
        for conn in slow {
            let Some(c) = self.conns.get(&conn) else { continue };
            self.bounds.slow_readers += 1;
            let (peer, max) = (c.peer, self.max_queued_bytes);
            self.note(Cause::SlowReader, || {
                format!(
                    "dropping connection {} from {peer}: it does not read (over {max} bytes queued)",
                    conn.0
                )
            });
            if self.drop_conn(conn, true) {
                self.master.handle_disconnect(now, conn);
            }
        }
    }

    /// Applies a console change ([`crate::changes`]): through the master (whose table changes the
    /// loop's flush applies), or the backend then a fresh read of the table; then the state
    /// file is rewritten. Nothing changes on `Err`.
    pub(crate) fn change(&mut self, who: &Who, change: &crate::console::Change) -> Result<String, String> {
        let now = self.now();
        self.timers_due(now);
        let mut ctx = ctx!(self, now);
        let applied = self.operator.apply(&mut ctx, who, change)?;
        if applied.rescan {
            if let Err(e) = self.rescan() {
                self.note(Cause::Backend, || format!("reading the IPVS table failed: {e:#}"));
            }
        }
        self.flush();
        match self.operator.save(&self.master, now) {
            Ok(()) => Ok(applied.text),
            Err(e) => {
                log!("saving the operator's state failed: {e}");
                Ok(format!("{} (done, but NOT saved for a restart: {e})", applied.text))
            }
        }
    }

    /// Start-up: re-applies the state file (services missing from the kernel created again,
    /// then the table read again; servers held, drained and pinned).
    fn restore(&mut self, file: StateFile, state: &State) -> anyhow::Result<()> {
        log!(
            "operator state in {}: {} virtual services, {} real servers with overrides",
            file.path().display(),
            state.services.len(),
            state.servers.len()
        );
        self.operator.file = Some(file);
        let now = self.now();
        let mut ctx = ctx!(self, now);
        if self.operator.restore_services(&mut ctx, state) {
            self.rescan().context("reading the IPVS table after creating the state file's services")?;
        }
        let now = self.now();
        let mut ctx = ctx!(self, now);
        self.operator.restore_servers(&mut ctx, state);
        Ok(())
    }

    /// Applies the state file's drains and pins that waited for their server to be known.
    fn pending(&mut self) {
        if self.operator.pending.is_empty() {
            return;
        }
        let now = self.now();
        let before = self.operator.pending.len();
        let mut ctx = ctx!(self, now);
        self.operator.apply_pending(&mut ctx);
        if self.operator.pending.len() != before {
            self.flush();
        }
    }
}

/// Logs a line about `cause` unless its cause has had its lines this second (then it is
/// counted, and summed up in one line when the second is over).
fn note(limiter: &mut LogLimiter<Cause>, now: Time, cause: Cause, line: impl FnOnce() -> String) {
    if limiter.handle_event(now, cause) {
        while let Some(s) = limiter.poll_suppressed() {
            log!("{}: {s}", s.cause.name());
        }
        log!("{}", line());
    }
}

/// Why a table change was made, for the log: `agent rs1: capacity ...`, or only the why
/// for a server without an agent (`operator alice from 192.0.2.9: drain`).
fn cause(agent: &str, why: &feedbackd_proto::master::Why) -> String {
    if agent.is_empty() { format!("{why}") } else { format!("agent {agent}: {why}") }
}

/// The master's output in the daemon: table changes through the backend (and logged),
/// frames and closes collected for the connections.
struct DaemonOutput<'a> {
    backend: &'a mut Backend,
    kernel: &'a mut KernelView,
    /// Entries saved when their servers went into maintenance: added back whole.
    dests: &'a mut BTreeMap<RsKey, DestConfig>,
    backend_errors: &'a mut u64,
    limiter: &'a mut LogLimiter<Cause>,
    /// The console's recent changes.
    live: &'a mut Live,
    frames: Vec<(ConnId, Vec<u8>)>,
    closes: Vec<ConnId>,
}

impl MasterOutput for DaemonOutput<'_> {
    fn apply(&mut self, now: Time, ev: &MasterEvent) -> Result<(), ApplyFailed> {
        let (key, what, result) = match ev {
            MasterEvent::Registered { conn, agent, peer, matched } => {
                let m: Vec<String> = matched.iter().map(u8::to_string).collect();
                log!(
                    "agent {agent} registered from {peer} (connection {}); virtual services matched per service: [{}]",
                    conn.0,
                    m.join(", ")
                );
                return Ok(());
            }
            MasterEvent::Close { .. } => unreachable!("flush_master hands closes to close()"),
            MasterEvent::AddRealServer { key, forwarding, weight, agent, why } => {
                let rs = match self.dests.get(key) {
                    Some(saved) => DestConfig { fwd: *forwarding, weight: *weight, ..*saved },
                    None => crate::ipvs::dest(key.addr, key.port, *forwarding, *weight),
                };
                let r = self.backend.add_real_server(&key.service, &rs).map(|()| {
                    self.dests.remove(key);
                    log!("add {key} {} weight {weight} ({})", forwarding.ipvsadm_name(), cause(agent, why));
                    self.kernel.servers.insert(*key, DestRow::new(rs));
                });
                (key, format!("adding {key}"), r.map_err(|e| e.to_string()))
            }
            MasterEvent::SetWeight { key, from, to, agent, why } => {
                let r = match self.kernel.servers.get(key).copied() {
                    None => Err("not in the table read last".to_owned()),
                    Some(mut row) => {
                        row.config.weight = *to;
                        self.backend
                            .edit_real_server(&key.service, &row.config)
                            .map_err(|e| e.to_string())
                            .map(|()| {
                                log!("weight {key}: {from} -> {to} ({})", cause(agent, why));
                                self.kernel.servers.insert(*key, row);
                            })
                    }
                };
                (key, format!("weight {key}: {from} -> {to}"), r)
            }
            MasterEvent::RemoveRealServer { key, agent, why } => {
                let r = self.backend.remove_real_server(&key.service, key.addr, key.port).map(|()| {
                    log!("remove {key} ({})", cause(agent, why));
                    self.kernel.servers.remove(key);
                });
                (key, format!("removing {key}"), r.map_err(|e| e.to_string()))
            }
        };
        if result.is_ok() {
            if let Some(c) = weight_change(now, ev) {
                self.live.record(c);
            }
        }
        result.map_err(|e| {
            *self.backend_errors += 1;
            note(self.limiter, now, Cause::Backend, || format!("{what} failed: {e}"));
            self.kernel.servers.remove(key);
            ApplyFailed
        })
    }

    fn transmit(&mut self, _now: Time, conn: ConnId, bytes: Vec<u8>) {
        self.frames.push((conn, bytes));
    }

    fn close(&mut self, now: Time, conn: ConnId, reason: &str) {
        note(self.limiter, now, Cause::Close, || format!("closing connection {}: {reason}", conn.0));
        self.closes.push(conn);
    }
}

/// A table change as the console's list of recent changes shows it.
fn weight_change(at: Time, ev: &MasterEvent) -> Option<WeightChange> {
    let (key, from, to, agent, why) = match ev {
        MasterEvent::AddRealServer { key, weight, agent, why, .. } => (key, None, Some(*weight), agent, why),
        MasterEvent::SetWeight { key, from, to, agent, why } => (key, Some(*from), Some(*to), agent, why),
        MasterEvent::RemoveRealServer { key, agent, why } => (key, None, None, agent, why),
        MasterEvent::Registered { .. } | MasterEvent::Close { .. } => return None,
    };
    Some(WeightChange { at, key: *key, from, to, agent: agent.clone(), why: why.to_string() })
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
