//! The `feedbackd-master` binary: see `feedbackd-master --help`.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use feedbackd_master::config::{self, Cli, Command};
use feedbackd_master::console::server::ConsoleConfig;
use feedbackd_master::console::{tls, users};
use feedbackd_master::daemon::{self, Settings, proto_duration};
use feedbackd_master::ipvs::{Backend, service_config};
use feedbackd_master::keys::{self, AddAgent};
use feedbackd_master::log;
use feedbackd_master::record::JournalFile;
use feedbackd_proto::admission::{AdmissionConfig, default_max_connections};
use feedbackd_proto::journal_file::Rotation;
use feedbackd_proto::keys::Auth;
use feedbackd_proto::master::MasterConfig;

fn main() -> ExitCode {
    let cli = match config::parse_args(std::env::args().collect()) {
        Ok(cli) => cli,
        Err(config::ArgsError::Clap(e)) => e.exit(),
        Err(config::ArgsError::File(msg)) => {
            eprintln!("feedbackd-master: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = &cli.command {
        return subcommand(&cli, command);
    }
    let (settings, backend) = match start(&cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("feedbackd-master: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(daemon::run(settings, backend)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Validates the configuration and opens the backend: every problem is reported here, at
/// start-up, with what to fix.
fn start(cli: &Cli) -> anyhow::Result<(Settings, Backend)> {
    cli.check_durations().map_err(anyhow::Error::msg)?;
    let law = cli.law().map_err(anyhow::Error::msg)?;
    if cli.remove_after <= cli.quiesce_after {
        anyhow::bail!(
            "--remove-after ({:?}) must be longer than --quiesce-after ({:?})",
            cli.remove_after,
            cli.quiesce_after
        );
    }
    let auth = keys::load_auth(cli)?;
    match &auth {
        Auth::Insecure => log!(
            "WARNING: --insecure: agents are NOT authenticated; anyone who can connect to {} \
             may add real servers and set their weights. Use --keys-file outside tests.",
            cli.listen
        ),
        Auth::Keys(t) if t.is_empty() => log!("WARNING: the keys file has no agent: every agent is refused"),
        Auth::Keys(t) => log!("{} agents in the keys file", t.len()),
    }
    let mut dry = Vec::new();
    for s in &cli.services {
        let key =
            feedbackd_master::ipvs::parse_service(s).map_err(|e| anyhow::anyhow!("--service {s}: {e}"))?;
        dry.push((key, service_config(&key, lvs_ipvs::SchedulerKind::Wlc)));
    }
    let kind = cli.backend.into();
    if !dry.is_empty() && kind != feedbackd_master::ipvs::BackendKind::DryRun {
        anyhow::bail!("--service only seeds the dry-run backend; create real services with ipvsadm -A");
    }
    let backend = Backend::open(kind, &dry)
        .map_err(|e| anyhow::anyhow!("opening the {} backend: {e}", daemon::backend_name(kind)))?;
    let master = MasterConfig {
        auth,
        max_servers_per_agent: cli.max_servers_per_agent,
        max_registrations_per_s: cli.max_registrations_per_s,
        registration_burst: cli.max_registrations_per_s.max(1),
        law,
        quiesce_after: proto_duration(cli.quiesce_after),
        remove_after: proto_duration(cli.remove_after),
        register_timeout: proto_duration(cli.register_timeout),
        max_agents: cli.max_agents,
    };
    let (record, admission, max_queued_bytes) = bounds(cli)?;
    let agent_checks =
        feedbackd_master::agentcheck::parse_targets(&cli.agent_checks, cli.agent_check_interval)
            .map_err(anyhow::Error::msg)?;
    let settings = Settings {
        agent_checks,
        master,
        record,
        admission,
        max_queued_bytes,
        state: match &cli.state_file {
            None => None,
            Some(path) => Some(feedbackd_master::state::StateFile::load(path)?),
        },
        console_requests: None,
        listen: cli.listen,
        status_listen: if cli.no_status { None } else { cli.status_listen },
        rescan_interval: cli.rescan_interval,
        console: ConsoleConfig::load(cli)?,
    };
    Ok((settings, backend))
}

/// `status`, `keygen`, `cert`, `passwd`, `add-agent`.
fn subcommand(cli: &Cli, command: &Command) -> ExitCode {
    match command {
        Command::Status { addr, metrics } => {
            match fetch(*addr, if *metrics { "/metrics" } else { "/status" }) {
                Ok(body) => {
                    print!("{body}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("feedbackd-master status: {addr}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Cert { cert, key, names } => {
            let cert = cert.as_ref().unwrap_or(&cli.console_cert);
            let key = key.as_ref().unwrap_or(&cli.console_key);
            report("cert", tls::make_self_signed(cert, key, names))
        }
        Command::Passwd { user, role, users_file, password_stdin } => {
            let p = users::Passwd {
                user: user.clone(),
                role: (*role).into(),
                users_file: users_file.clone().unwrap_or_else(|| cli.console_users.clone()),
            };
            report(
                "passwd",
                users::read_password(*password_stdin).and_then(|pw| users::set_password(&p, &pw)),
            )
        }
        Command::Keygen => match keys::keygen() {
            Ok(k) => {
                println!("{k}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("feedbackd-master keygen: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::AddAgent { id, addresses, services, keys_file, agent_key_out } => {
            let a = AddAgent {
                id: id.clone(),
                addresses: addresses.clone(),
                services: services.clone(),
                keys_file: keys_file
                    .clone()
                    .or_else(|| cli.keys_file.clone())
                    .unwrap_or_else(|| "/etc/feedbackd/keys".into()),
                agent_key_out: agent_key_out.clone().unwrap_or_else(|| format!("{id}.key").into()),
            };
            match keys::add_agent(&a) {
                Ok(msg) => {
                    println!("{msg}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("feedbackd-master add-agent: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// A subcommand's outcome: its line on stdout and 0, or its error on stderr and 2.
fn report(what: &str, r: anyhow::Result<String>) -> ExitCode {
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("feedbackd-master {what}: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The bounds' settings (docs/feedbackd.md, "Limits"), and the journal file opened.
fn bounds(cli: &Cli) -> anyhow::Result<(Option<JournalFile>, AdmissionConfig, usize)> {
    let record = match &cli.record {
        None => None,
        Some(path) => {
            let rotation = Rotation { max_bytes: cli.record_max_bytes, keep: cli.record_keep };
            let (file, notes) = JournalFile::open(path, rotation)?;
            for n in notes {
                log!("{n}");
            }
            Some(file)
        }
    };
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let admission = AdmissionConfig {
        allow_from: cli.allow_from.clone(),
        max_connections: cli
            .max_connections
            .map_or_else(|| default_max_connections(nofile), |n| usize::try_from(n).unwrap_or(usize::MAX)),
        max_per_source: usize::try_from(cli.max_connections_per_source).unwrap_or(usize::MAX),
    };
    let max_queued = usize::try_from(cli.max_queued_bytes).unwrap_or(usize::MAX);
    Ok((record, admission, max_queued))
}

fn fetch(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(head.lines().next().unwrap_or("bad response").to_owned()));
    }
    Ok(body.to_owned())
}
