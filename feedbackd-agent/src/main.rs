//! The `feedbackd-agent` binary: see `feedbackd-agent --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use feedbackd_agent::agentcheck;
use feedbackd_agent::daemon::{self, Clock};
use feedbackd_agent::load::Sources;
use feedbackd_agent::log;
use feedbackd_agent::setup::{self, Options, Setup};
use feedbackd_proto::conf::{AgentCheckConf, MAX_AGENT_CHECKS};
use tokio::sync::watch;

/// feedbackd-agent: reports this real server's spare capacity to feedbackd-master on every
/// configured director.
///
/// It reads the original /etc/feedbackd-agent.conf grammar (`director = ADDR`, then
/// `service = NAME` blocks with protocol, port, module and forwarding) plus extensions
/// (several directors, interval, key_file, per-module settings). Every interval it measures
/// each service's capacity with its load modules (cpuload from /proc/stat by default) and
/// reports it; the master turns it into an IPVS weight. For the master's Prequal law, the
/// `prequal` module measures requests in flight (established sockets on the port) and
/// latency (a timed probe of the port), or reads both from a file the server writes. On SIGTERM it says goodbye, so the
/// master drains this server (weight 0) at once.
///
/// `--check` runs the daemon's own set-up: it reads the key, builds the modules and encodes
/// the registration and the largest report, so what it accepts, the daemon runs.
///
/// Exit status: 0 after SIGTERM/SIGINT (or --check), 1 on a run-time failure (a task that
/// panicked or ended exits the process with 1, so systemd restarts it), 2 on a bad
/// configuration.
#[derive(Debug, Parser)]
#[command(version, max_term_width = 100)]
struct Cli {
    /// The configuration file.
    #[arg(short, long, default_value = "/etc/feedbackd-agent.conf", value_name = "FILE")]
    config: PathBuf,

    /// The agent's name in the master's table (default: agent_id from the file, else the
    /// host name).
    #[arg(long)]
    agent_id: Option<String>,

    /// The key file, instead of the configuration's `key_file` (under systemd:
    /// `--key-file %d/feedbackd.key`, a `LoadCredential=`).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// Read the admin state (`ready`, `drain` or `maint`) from FILE before each report;
    /// a missing file means ready.
    #[arg(long, value_name = "FILE")]
    admin_file: Option<PathBuf>,

    /// Answer HAProxy's agent-check on ADDR:PORT (repeatable): each connection gets one
    /// line, the spare capacity of SERVICE (a `service = NAME` name or its port; default:
    /// the first service) as a weight percentage and the admin state, e.g. `75% ready up`,
    /// then the connection is closed. In haproxy.cfg: `server rs1 ADDR:80 weight 100
    /// agent-check agent-port PORT agent-inter 2s`. The configuration's `agent_check =
    /// ADDR:PORT[/SERVICE]` lines add to these (docs/agent-check.md).
    #[arg(long = "agent-check", value_name = "ADDR:PORT[/SERVICE]")]
    agent_check: Vec<String>,

    /// Where the load modules read /proc (for tests).
    #[arg(long, default_value = "/proc", value_name = "DIR", hide = true)]
    proc_root: PathBuf,

    /// Check the configuration, take one measurement, print it and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        config: cli.config.clone(),
        agent_id: cli.agent_id.clone(),
        key_file: cli.key_file.clone(),
        sources: Sources { proc_root: cli.proc_root.clone() },
    };
    let setup = match setup::build(&opts) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("feedbackd-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let checks = match agent_checks(&cli.agent_check, &setup) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("feedbackd-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        return check(setup, cli.admin_file.as_deref(), &checks);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(run(setup, cli.admin_file, checks));
    // A sample in progress (a command module up to its timeout) does not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// The configuration's `agent_check` lines and the `--agent-check` options, checked
/// against the configuration's services, bounded, each address once.
fn agent_checks(options: &[String], setup: &Setup) -> Result<Vec<AgentCheckConf>, String> {
    let mut all = setup.conf.agent_checks.clone();
    for o in options {
        let c = agentcheck::parse(o, &setup.conf.services)?;
        if all.iter().any(|x| x.addr == c.addr) {
            return Err(format!("--agent-check {o}: {} is given twice", c.addr));
        }
        all.push(c);
    }
    if all.len() > MAX_AGENT_CHECKS {
        return Err(format!("{} agent-check listeners: at most {MAX_AGENT_CHECKS}", all.len()));
    }
    Ok(all)
}

/// `--check`: the set-up passed; one measurement, printed.
fn check(setup: Setup, admin_file: Option<&std::path::Path>, checks: &[AgentCheckConf]) -> ExitCode {
    let mut loads = setup.loads;
    let sample = daemon::measure(&mut loads, admin_file);
    for c in checks {
        print!("agent-check {}: {}", c.addr, agentcheck::reply(Some(&sample), c.service));
    }
    for (spec, cap) in setup.config.services.iter().zip(&sample.capacity) {
        let cap = cap.map_or("unknown".to_owned(), |c| format!("{c:.3}"));
        println!("{} port {}: capacity {cap}", spec.protocol, spec.port);
    }
    for m in &sample.metrics {
        println!("  {} = {}", m.name, m.value);
    }
    println!("admin state: {}", sample.admin);
    ExitCode::SUCCESS
}

async fn run(setup: Setup, admin_file: Option<PathBuf>, checks: Vec<AgentCheckConf>) -> ExitCode {
    let Setup { conf, config, loads } = setup;
    let mut check_listeners = Vec::new();
    for c in &checks {
        match tokio::net::TcpListener::bind(c.addr).await.and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((addr, l)) => {
                let s = &conf.services[c.service];
                log!("agent-check on {addr} answers for service {} (port {})", s.name, s.port);
                check_listeners.push((l, c.service));
            }
            Err(e) => {
                log!("--agent-check {}: {e}", c.addr);
                return ExitCode::from(2);
            }
        }
    }
    // First, so that a SIGTERM once the start is logged always gets its goodbye.
    let (mut term, mut int) = match (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            log!("cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let clock = Clock(Instant::now());
    let config = Arc::new(config);
    let (sample_tx, sample_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    log!(
        "agent {} reporting {} services every {:.3} s to {}",
        config.agent_id,
        config.services.len(),
        config.interval.as_secs_f64(),
        if conf.directors.is_empty() {
            "no director (agent-check only)".to_owned()
        } else {
            conf.directors.iter().map(|d| format!("{}:{}", d.host, d.port)).collect::<Vec<_>>().join(", ")
        }
    );
    // Every task runs until shutdown; the first to end before it (a panic) ends the
    // process with status 1, so systemd restarts it instead of leaving it up doing nothing.
    let mut tasks = tokio::task::JoinSet::new();
    for d in conf.directors.clone() {
        tasks.spawn(daemon::director_loop(d, config.clone(), clock, sample_rx.clone(), stop_rx.clone()));
    }
    let permits = agentcheck::permits();
    for (listener, service) in check_listeners {
        tasks.spawn(agentcheck::serve(
            listener,
            service,
            sample_rx.clone(),
            stop_rx.clone(),
            permits.clone(),
        ));
    }
    drop(sample_rx);
    let interval = std::time::Duration::from_nanos(config.interval.as_nanos());
    let sampler = tasks.spawn(sampler(loads, interval, admin_file, sample_tx));
    tokio::select! {
        _ = term.recv() => log!("SIGTERM: saying goodbye to every director"),
        _ = int.recv() => log!("SIGINT: saying goodbye to every director"),
        what = daemon::supervise(&mut tasks) => {
            log!("{what}; exiting with status 1 (a restart starts afresh)");
            return ExitCode::from(1);
        }
    }
    // Goodbye first; the sampler stops after, so no director loop mistakes its end for
    // the end of the agent.
    let _ = stop_tx.send(true);
    sampler.abort();
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(3), all).await.is_err() {
        log!("some directors did not take the goodbye within 3 s; exiting anyway");
    }
    ExitCode::SUCCESS
}

/// Measures every interval (in a blocking thread) and publishes the sample. Ends only if
/// a measurement panicked, with that panic (the supervisor then ends the process), or when
/// every director loop is gone.
async fn sampler(
    mut loads: Vec<feedbackd_agent::load::ServiceLoad>,
    interval: std::time::Duration,
    admin_file: Option<PathBuf>,
    sample_tx: watch::Sender<Option<feedbackd_proto::agent::Sample>>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let admin_file = admin_file.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let sample = daemon::measure(&mut loads, admin_file.as_deref());
            (loads, sample)
        })
        .await;
        let (back, sample) = match joined {
            Ok(x) => x,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the measurement was cancelled: {e}"),
        };
        loads = back;
        if sample_tx.send(Some(sample)).is_err() {
            return;
        }
    }
}
