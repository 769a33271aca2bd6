//! The `feedbackd-agent` binary: see `feedbackd-agent --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use feedbackd_agent::daemon::{self, Clock};
use feedbackd_agent::load::{ServiceLoad, Sources};
use feedbackd_agent::log;
use feedbackd_proto::Duration;
use feedbackd_proto::agent::{AgentConfig, Sample};
use feedbackd_proto::auth::Psk;
use feedbackd_proto::conf::{self, AgentConf};
use feedbackd_proto::types::{AdminState, ServiceSpec};
use feedbackd_proto::wire::{self, Metric};
use tokio::sync::watch;

/// feedbackd-agent: reports this real server's spare capacity to feedbackd-master on every
/// configured director.
///
/// It reads the original /etc/feedbackd-agent.conf grammar (`director = ADDR`, then
/// `service = NAME` blocks with protocol, port, module and forwarding) plus extensions
/// (several directors, interval, key_file, per-module settings). Every interval it measures
/// each service's capacity with its load modules (cpuload from /proc/stat by default) and
/// reports it; the master turns it into an IPVS weight. On SIGTERM it says goodbye, so the
/// master drains this server (weight 0) at once.
///
/// Exit status: 0 after SIGTERM/SIGINT (or --check/--once), 1 on a run-time failure, 2 on a
/// bad configuration.
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

    /// Read the admin state (`ready`, `drain` or `maint`) from FILE before each report;
    /// a missing file means ready.
    #[arg(long, value_name = "FILE")]
    admin_file: Option<PathBuf>,

    /// Where the load modules read /proc (for tests).
    #[arg(long, default_value = "/proc", value_name = "DIR", hide = true)]
    proc_root: PathBuf,

    /// Check the configuration, take one measurement, print it and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (conf, config, loads) = match setup(&cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("feedbackd-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        let mut loads = loads;
        let sample = measure(&mut loads, cli.admin_file.as_deref());
        for (spec, cap) in config.services.iter().zip(&sample.capacity) {
            let cap = cap.map_or("unknown".to_owned(), |c| format!("{c:.3}"));
            println!("{} port {}: capacity {cap}", spec.protocol, spec.port);
        }
        for m in &sample.metrics {
            println!("  {} = {}", m.name, m.value);
        }
        println!("admin state: {}", sample.admin);
        return ExitCode::SUCCESS;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(run(conf, config, loads, cli.admin_file))
}

type Setup = (AgentConf, AgentConfig, Vec<ServiceLoad>);

fn setup(cli: &Cli) -> Result<Setup, String> {
    let path = cli.config.display();
    let text = std::fs::read_to_string(&cli.config).map_err(|e| format!("{path}: {e}"))?;
    let conf = conf::parse(&text).map_err(|e| format!("{path}:{}: {}", e.line, e.message))?;
    let sources = Sources { proc_root: cli.proc_root.clone() };
    let loads = conf
        .services
        .iter()
        .map(|s| ServiceLoad::from_conf(s, &sources))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}:{}: {}", e.line, e.message))?;
    let psk = match &conf.key_file {
        None => None,
        Some(kf) => {
            let bytes = read_key_file(kf).map_err(|e| format!("{path}: key_file {kf}: {e}"))?;
            Some(Psk::from_file_contents(&bytes).map_err(|e| format!("{path}: key_file {kf}: {e}"))?)
        }
    };
    let agent_id = match cli.agent_id.clone().or_else(|| conf.agent_id.clone()) {
        Some(id) => id,
        None => nix::unistd::gethostname()
            .map_err(|e| format!("host name: {e}; set agent_id"))?
            .to_string_lossy()
            .into_owned(),
    };
    if !wire::valid_agent_id(&agent_id) {
        return Err(format!(
            "agent id {agent_id:?}: use 1 to {} printable characters without spaces",
            wire::MAX_AGENT_ID_LEN
        ));
    }
    let interval = Duration(u64::try_from(conf.interval.as_nanos()).unwrap_or(u64::MAX));
    let master_timeout = conf
        .master_timeout
        .map_or_else(|| AgentConfig::default_master_timeout(interval), |d| Duration(d.as_nanos() as u64));
    let services = conf
        .services
        .iter()
        .map(|s| ServiceSpec {
            protocol: s.protocol,
            port: s.port,
            vip: s.vip,
            fwmark: s.fwmark,
            forwarding: s.forwarding,
            address: s.address,
        })
        .collect();
    let config = AgentConfig { agent_id, services, interval, psk, master_timeout };
    Ok((conf, config, loads))
}

/// Reads the key file: opened without following a symbolic link, and refused when the
/// group or others may read or write it (`feedbackd_proto::auth::check_key_file_mode`).
fn read_key_file(kf: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(kf)
        .map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    feedbackd_proto::auth::check_key_file_mode(kf, meta.mode())?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Reads the admin file: `ready`, `drain` or `maint` (missing: ready).
fn admin_state(path: Option<&std::path::Path>) -> AdminState {
    let Some(path) = path else { return AdminState::Ready };
    match std::fs::read_to_string(path) {
        Err(_) => AdminState::Ready,
        Ok(s) => match s.trim() {
            "drain" => AdminState::Drain,
            "maint" | "maintenance" => AdminState::Maint,
            "ready" | "" => AdminState::Ready,
            other => {
                log!("{}: unknown admin state {other:?} (ready, drain, maint): taking ready", path.display());
                AdminState::Ready
            }
        },
    }
}

fn measure(loads: &mut [ServiceLoad], admin_file: Option<&std::path::Path>) -> Sample {
    let mut capacity = Vec::with_capacity(loads.len());
    let mut metrics: Vec<Metric> = Vec::new();
    for load in loads.iter_mut() {
        let (cap, m, errors) = load.sample();
        for e in errors {
            log!("{e}");
        }
        capacity.push(cap);
        for (name, value) in m {
            if !metrics.iter().any(|x| x.name == name) && metrics.len() < wire::MAX_METRICS {
                metrics.push(Metric { name, value });
            }
        }
    }
    Sample { admin: admin_state(admin_file), capacity, metrics }
}

async fn run(
    conf: AgentConf,
    config: AgentConfig,
    loads: Vec<ServiceLoad>,
    admin_file: Option<PathBuf>,
) -> ExitCode {
    let clock = Clock(Instant::now());
    let config = Arc::new(config);
    let (sample_tx, sample_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    log!(
        "agent {} reporting {} services every {:.3} s to {}",
        config.agent_id,
        config.services.len(),
        config.interval.as_secs_f64(),
        conf.directors.iter().map(|d| format!("{}:{}", d.host, d.port)).collect::<Vec<_>>().join(", ")
    );
    let mut directors = Vec::new();
    for d in conf.directors.clone() {
        directors.push(tokio::spawn(daemon::director_loop(
            d,
            config.clone(),
            clock,
            sample_rx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(sample_rx);
    let interval = std::time::Duration::from_nanos(config.interval.as_nanos());
    let sampler = tokio::spawn(async move {
        let mut loads = loads;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let admin_file = admin_file.clone();
            let joined = tokio::task::spawn_blocking(move || {
                let sample = measure(&mut loads, admin_file.as_deref());
                (loads, sample)
            })
            .await;
            let Ok((back, sample)) = joined else { return };
            loads = back;
            if sample_tx.send(Some(sample)).is_err() {
                return;
            }
        }
    });
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
    tokio::select! {
        _ = term.recv() => log!("SIGTERM: saying goodbye to every director"),
        _ = int.recv() => log!("SIGINT: saying goodbye to every director"),
    }
    // Goodbye first; the sampler stops after, so no director loop mistakes its end for
    // the end of the agent.
    let _ = stop_tx.send(true);
    sampler.abort();
    let all = futures_join(directors);
    if tokio::time::timeout(std::time::Duration::from_secs(3), all).await.is_err() {
        log!("some directors did not take the goodbye within 3 s; exiting anyway");
    }
    ExitCode::SUCCESS
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}
