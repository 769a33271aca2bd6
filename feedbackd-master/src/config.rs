//! The master's settings: command-line options, optionally preceded by a configuration
//! file (`--config FILE`) whose `key = value` lines are the same options without `--`.
//!
//! ```text
//! # /etc/feedbackd-master.conf
//! listen = 0.0.0.0:7878
//! backend = netlink
//! keys_file = /etc/feedbackd/keys
//! max_step = 20
//! record = /var/lib/feedbackd/master.journal
//! ```
//!
//! Command-line options override the file. An unknown key or a bad value fails at start-up
//! with the file and line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lvs_sched::feedback::{GrpcWrr, LawConfig, LawKind, Prequal};

use feedbackd_proto::admission::Cidr;

use crate::daemon::proto_duration;
use crate::ipvs::BackendKind;

/// feedbackd-master: applies live feedback from feedbackd-agents to the kernel's IPVS
/// weights.
///
/// Agents on the real servers connect over TCP, authenticate with their own keys (the keys
/// file, see `add-agent`) and report their spare capacity. The master
/// matches each agent's services (protocol and port) to the virtual services that exist in
/// the kernel (create them with `ipvsadm -A -t VIP:PORT -s wlc`), adds the agent's host as a
/// real server with its forwarding method, and sets its weight with the feedback law:
/// smoothed capacity mapped onto [min_weight, max_weight] (or, with `--law grpc-wrr`,
/// gRPC's queries/s over utilisation; with `--law prequal`, requests in flight and latency
/// from a pool of the agents' probes), a dead-band, a maximum step per report and a slow
/// start for new servers. A silent agent's servers are quiesced (weight
/// 0) and later removed. Existing kernel entries are adopted, never flushed, so the master
/// can be restarted at any time.
///
/// With --console it also serves the director's console over HTTPS to the users of
/// --console-users: a live monitor, and drain, maintenance, pins and virtual services for
/// admins (docs/console.md; `cert` and `passwd` prepare it).
///
/// Exit status: 0 after SIGTERM/SIGINT, 1 on a run-time failure, 2 on a bad configuration.
#[derive(Debug, Parser)]
#[command(version, args_override_self = true, max_term_width = 100)]
pub struct Cli {
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read options from FILE first (`key = value` lines; keys are the long options).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Where agents connect.
    #[arg(long, default_value = "0.0.0.0:7878", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,

    /// How weights reach the kernel: generic netlink, the ipvsadm command, or a dry run
    /// that only logs the ipvsadm command of each change (its table, lvs-ipvs's, holds
    /// the --service entries and refuses as the kernel would).
    #[arg(long, value_enum, default_value = "netlink")]
    pub backend: BackendArg,

    /// A virtual service for the dry-run backend (wlc, as `ipvsadm -A` makes it):
    /// tcp:VIP:PORT, udp:VIP:PORT, sctp:VIP:PORT, fwm:MARK, fwm6:MARK, an IPv6 VIP in
    /// brackets (repeatable). The dry run's table is the simulator's (lvs-ipvs).
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,

    /// The agents' keys: one line per agent, `AGENT_ID KEY ADDRESSES SERVICES` (its key,
    /// the real-server addresses or networks and the services it may claim). Readable by
    /// the master's user only. `feedbackd-master add-agent` writes it. Required, unless
    /// --insecure.
    #[arg(long, value_name = "FILE")]
    pub keys_file: Option<PathBuf>,

    /// Run without authentication: anyone who can connect may add real servers and set
    /// weights. Accepted only with a loopback --listen; logged at start and shown in
    /// /status and the metric feedbackd_master_insecure. For tests only.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true",
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub insecure: bool,

    /// Replaced by --keys-file (one key per agent); refused with a hint.
    #[arg(long, value_name = "FILE", hide = true)]
    pub key_file: Option<PathBuf>,

    /// The most real servers (table entries) one agent may claim; a registration that
    /// would claim more is refused.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_servers_per_agent: usize,

    /// Registrations accepted per second, in bursts of as many (0 = no limit); the rest
    /// are refused and the agents retry.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_registrations_per_s: u32,

    /// Serve the status table (/status) and Prometheus metrics (/metrics) over HTTP here.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7879")]
    pub status_listen: Option<SocketAddr>,

    /// Do not serve status or metrics.
    #[arg(long)]
    pub no_status: bool,

    // ---- The director's console (docs/console.md). ----
    /// Serve the director's console over HTTPS here (off by default). Loopback is
    /// recommended (reach it through an SSH tunnel); another address is logged at start.
    /// Needs a certificate and key (`feedbackd-master cert`), at least one user
    /// (`feedbackd-master passwd`) and --state-file: without them the master does not start.
    #[arg(long, value_name = "ADDR:PORT")]
    pub console: Option<SocketAddr>,

    /// The console's certificate chain (PEM).
    #[arg(long, value_name = "FILE", default_value = "/etc/feedbackd/console.crt")]
    pub console_cert: PathBuf,

    /// The console's private key (PEM; readable by its owner only).
    #[arg(long, value_name = "FILE", default_value = "/etc/feedbackd/console.key")]
    pub console_key: PathBuf,

    /// The console's users: `USER ROLE ARGON2ID-HASH` lines, readable and writable by the
    /// master's user only (`feedbackd-master passwd` writes it).
    #[arg(long, value_name = "FILE", default_value = "/etc/feedbackd/console-users")]
    pub console_users: PathBuf,

    /// The console's audit log: one JSON line per login, logout and change attempt
    /// (appended, mode 0600, rotated at 16 MiB, 3 kept).
    #[arg(long, value_name = "FILE", default_value = "/var/log/feedbackd/console-audit.log")]
    pub console_audit: PathBuf,

    /// How often to re-read the kernel's table (new services, entries edited by others).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub rescan_interval: Duration,

    /// Quiesce (weight 0) the servers of an agent silent for this long (at least three of
    /// the agent's report intervals).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub quiesce_after: Duration,

    /// Remove the servers of an agent silent for this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub remove_after: Duration,

    /// Close connections that do not register within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub register_timeout: Duration,

    /// The lowest weight of a reporting server.
    #[arg(long, default_value_t = 1)]
    pub min_weight: u32,

    /// The weight of an idle server (at most 65535).
    #[arg(long, default_value_t = 100)]
    pub max_weight: u32,

    /// EWMA factor in (0, 1]: the weight of the newest report (1 = no smoothing).
    #[arg(long, default_value_t = lvs_sched::feedback::LawConfig::default().smoothing)]
    pub smoothing: f64,

    /// Ignore weight changes smaller than this.
    #[arg(long, default_value_t = 2)]
    pub dead_band: u32,

    /// Change a weight by at most this much per report (0 = unlimited).
    #[arg(long, default_value_t = 25)]
    pub max_step: u32,

    /// New and returning servers ramp up to the full weight range over this.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub slow_start: Duration,

    /// The most agents at once.
    #[arg(long, default_value_t = 65_536)]
    pub max_agents: usize,

    /// The weight law: `capacity` maps the smoothed spare capacity onto [min_weight,
    /// max_weight]; `grpc-wrr` is gRPC's weighted round robin, qps / (utilization +
    /// eps/qps × error_penalty) from the agents' `qps` and `eps` metrics; `prequal` keeps a
    /// pool of the agents' probes per virtual service (their `rif` and `latency_ms`
    /// metrics: feedbackd-agent's `prequal` module), takes servers whose requests in
    /// flight are above the pool's --q-rif quantile as hot and prefers the cold ones by
    /// lower latency (docs/feedbackd.md, "Prequal").
    #[arg(long, value_enum, default_value = "capacity")]
    pub law: LawArg,

    /// grpc-wrr: how much an error per query counts as utilisation (≥ 0) [default: 1].
    #[arg(long, value_name = "PENALTY")]
    pub error_penalty: Option<f64>,

    /// grpc-wrr: weight units per query/s of estimated capacity (> 0) [default: 1].
    #[arg(long, value_name = "WEIGHT")]
    pub weight_per_qps: Option<f64>,

    /// grpc-wrr: a server's reports count only once it has reported this long without a
    /// gap (gRFC A58's blackout_period; 0s: at once) [default: 10s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub blackout_period: Option<Duration>,

    /// grpc-wrr: a server without a report for this long loses its weight (it gets the
    /// mean of the others') and its blackout starts again (gRFC A58's
    /// weight_expiration_period; > 0) [default: 3m].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub weight_expiration_period: Option<Duration>,

    /// prequal: the probes (agents' reports) the pool of a virtual service holds, the
    /// oldest leaving first (1 to 4096) [default: 16].
    #[arg(long, value_name = "N")]
    pub pool_size: Option<u32>,

    /// prequal: a probe older than this leaves the pool (> 0) [default: 5s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_age: Option<Duration>,

    /// prequal: the hot-cold threshold, a quantile of the pool's requests in flight in
    /// [0, 1] (Prequal's Q_RIF): a server above it is hot [default: 0.84].
    #[arg(long, value_name = "Q")]
    pub q_rif: Option<f64>,

    /// Keep the console operators' changes across restarts in FILE: virtual services added
    /// or edited through the console, and the real servers drained, pinned or in
    /// maintenance (with their whole kernel entry, to add back on return). Rewritten
    /// atomically (mode 0600) after each change; read at start-up, when services missing
    /// from the kernel are created again and the overrides applied (each once the master
    /// knows its server). A line that does not read stops the start-up with FILE:LINE; so
    /// does a file writable by group or others, or owned by another user.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Record the master's journal in FILE: its settings, every read of the kernel's table,
    /// agents' connections, registrations, reports and goodbyes, and every decision, one
    /// line each, written after each batch. `lvsim` replays it through the simulator's
    /// master (docs/feedbackd.md, "Recording and replaying a master").
    ///
    /// The file is appended to (a restart appends a new run; nothing is truncated), created
    /// mode 0600 (an existing file readable by others is tightened to 0600), never opened
    /// through a symbolic link, rotated by size (--record-max-bytes) and reopened on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Poll an agent that answers HAProxy's agent-check protocol (`feedbackd-agent
    /// --agent-check`, or any HAProxy agent) for a real server: SERVER@ADDR:PORT[,FORWARDING],
    /// SERVER as tcp:VIP:PORT/RIP:PORT (the real server's port is the service's) or
    /// fwm:MARK/RIP:PORT, FORWARDING nat (default), dr or tun. Its answers (`75%`, `ready`,
    /// `drain`, `maint`; `down`, `fail`, `stopped` drain) feed the weight law as an agent's
    /// reports; no answer is an agent's silence. Repeatable (docs/agent-check.md).
    #[arg(long = "agent-check", value_name = "SERVER@ADDR:PORT")]
    pub agent_checks: Vec<String>,

    /// How often each --agent-check agent is polled (100ms to 1h; HAProxy's agent-inter).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub agent_check_interval: Duration,

    // ---- Bounds (docs/feedbackd.md, "Limits"). ----
    /// Accept agent connections only from this network (CIDR, e.g. 10.0.0.0/8 or a single
    /// address; repeatable). Default: from anywhere (the start-up log says so).
    #[arg(long = "allow-from", value_name = "CIDR", value_parser = parse_cidr)]
    pub allow_from: Vec<Cidr>,

    /// The most agent connections open at once; more are closed at accept [default: 4096,
    /// or the descriptor limit (RLIMIT_NOFILE) minus 128 if lower].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// The most agent connections open at once from one source address.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_source: u64,

    /// The most bytes queued for one agent connection; an agent that does not read its
    /// acknowledgements until this is reached is disconnected.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = parse_bytes)]
    pub max_queued_bytes: u64,

    /// Rotate the journal before it grows past this (FILE -> FILE.1 -> ... ; 0: never).
    #[arg(long, value_name = "BYTES", default_value = "100MiB", value_parser = parse_bytes)]
    pub record_max_bytes: u64,

    /// Rotated journal files kept (FILE.1 ... FILE.N).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub record_keep: u32,
}

/// `--allow-from` values.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse().map_err(|e: feedbackd_proto::admission::CidrError| e.to_string())
}

/// A size: a number of bytes, or with a suffix `KiB`, `MiB`, `GiB` (also `K`, `M`, `G`,
/// powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a size (bytes, or with KiB, MiB, GiB)"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (KiB, MiB or GiB)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

impl Cli {
    /// The weight law the options describe, checked; the message names what to fix.
    pub fn law(&self) -> Result<LawConfig, String> {
        self.check_law_options()?;
        let kind = match self.law {
            LawArg::Capacity => LawKind::Capacity,
            LawArg::GrpcWrr => {
                let default = GrpcWrr::default();
                LawKind::GrpcWrr(GrpcWrr {
                    error_penalty: self.error_penalty.unwrap_or(default.error_penalty),
                    weight_per_qps: self.weight_per_qps.unwrap_or(default.weight_per_qps),
                    blackout_period: self.blackout_period.map_or(default.blackout_period, proto_duration),
                    weight_expiration_period: self
                        .weight_expiration_period
                        .map_or(default.weight_expiration_period, proto_duration),
                })
            }
            LawArg::Prequal => {
                let default = Prequal::default();
                LawKind::Prequal(Prequal {
                    pool_size: self.pool_size.unwrap_or(default.pool_size),
                    max_age: self.max_age.map_or(default.max_age, proto_duration),
                    q_rif: self.q_rif.unwrap_or(default.q_rif),
                })
            }
        };
        let law = LawConfig {
            min_weight: self.min_weight,
            max_weight: self.max_weight,
            smoothing: self.smoothing,
            dead_band: self.dead_band,
            max_step: self.max_step,
            slow_start: proto_duration(self.slow_start),
            kind,
        };
        law.validate().map_err(|e| format!("weight law: {e}"))?;
        Ok(law)
    }
}

impl Cli {
    /// Refuses an option of a law other than `--law`'s: it would be silently ignored.
    fn check_law_options(&self) -> Result<(), String> {
        let given = [
            ("--error-penalty", self.error_penalty.is_some(), LawArg::GrpcWrr),
            ("--weight-per-qps", self.weight_per_qps.is_some(), LawArg::GrpcWrr),
            ("--blackout-period", self.blackout_period.is_some(), LawArg::GrpcWrr),
            ("--weight-expiration-period", self.weight_expiration_period.is_some(), LawArg::GrpcWrr),
            ("--pool-size", self.pool_size.is_some(), LawArg::Prequal),
            ("--max-age", self.max_age.is_some(), LawArg::Prequal),
            ("--q-rif", self.q_rif.is_some(), LawArg::Prequal),
        ];
        let wrong: Vec<&str> =
            given.iter().filter(|(_, set, law)| *set && *law != self.law).map(|(name, _, _)| *name).collect();
        let Some((_, _, law)) = given.iter().find(|(name, _, _)| Some(name) == wrong.first()) else {
            return Ok(());
        };
        Err(format!(
            "{} {} to --law {} only (the law is {})",
            wrong.join(", "),
            if wrong.len() == 1 { "applies" } else { "apply" },
            law.name(),
            self.law.name()
        ))
    }
}

/// The longest duration option (30 days): the master adds them to its clock (nanoseconds
/// since start, u64) and to `Instant`s, so a larger one would overflow ("virtual time
/// overflow" panics at the first connection with `--register-timeout 18446744073.7`).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Cli {
    /// Bounds the duration options; the message names the option. One place for the
    /// start-up checks that keep a value from panicking the daemon later.
    pub fn check_durations(&self) -> Result<(), String> {
        let all = [
            ("--rescan-interval", self.rescan_interval),
            ("--quiesce-after", self.quiesce_after),
            ("--remove-after", self.remove_after),
            ("--register-timeout", self.register_timeout),
            ("--slow-start", self.slow_start),
            ("--blackout-period", self.blackout_period.unwrap_or_default()),
            ("--weight-expiration-period", self.weight_expiration_period.unwrap_or_default()),
            ("--max-age", self.max_age.unwrap_or_default()),
        ];
        for (name, d) in all {
            if d > MAX_DURATION {
                return Err(format!("{name} {d:?} is longer than 30 days (720h)"));
            }
        }
        if self.register_timeout.is_zero() {
            return Err("--register-timeout 0s would close every connection at once".to_owned());
        }
        Ok(())
    }
}

/// `--law` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LawArg {
    /// Smoothed spare capacity mapped onto the weight range (feedbackd's).
    Capacity,
    /// gRPC's weighted round robin (gRFC A58) from the `qps` and `eps` metrics.
    GrpcWrr,
    /// Prequal (NSDI 2024): hot or cold by requests in flight, then lower latency, from a
    /// pool of the `rif` and `latency_ms` metrics.
    Prequal,
}

impl LawArg {
    /// The name `--law` takes.
    pub fn name(self) -> &'static str {
        match self {
            LawArg::Capacity => "capacity",
            LawArg::GrpcWrr => "grpc-wrr",
            LawArg::Prequal => "prequal",
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a running master's status table (fetched from its --status-listen address).
    Status {
        /// The master's status address.
        #[arg(long, default_value = "127.0.0.1:7879", value_name = "ADDR:PORT")]
        addr: SocketAddr,
        /// Print the Prometheus metrics instead.
        #[arg(long)]
        metrics: bool,
    },
    /// Print a fresh random key (64 hexadecimal digits from the OS's random source).
    Keygen,
    /// Make a self-signed certificate and its key for the console's first start (new files
    /// only: never overwrites; the key mode 0600).
    Cert {
        /// Where to write the certificate [default: --console-cert].
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// Where to write the key [default: --console-key].
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// A DNS name or IP address the certificate is for (repeatable) [default:
        /// localhost, 127.0.0.1, ::1].
        #[arg(long = "name", value_name = "DNS_OR_IP")]
        names: Vec<String>,
    },
    /// Add a console user or change one's password and role: asks the password twice on
    /// the terminal (or reads one line with --password-stdin) and stores its argon2id hash
    /// in the users file (created 0600, rewritten atomically).
    Passwd {
        /// The user name (1-64 of A-Z a-z 0-9 . _ -).
        user: String,
        /// What the user may do: admin changes, viewer only looks.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The users file [default: --console-users].
        #[arg(long, value_name = "FILE")]
        users_file: Option<PathBuf>,
        /// Read the password from standard input's first line (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give an agent its own key: append its line to the keys file (created with mode
    /// 0600) and write its key file (0600) to copy to the real server.
    AddAgent {
        /// The agent's id (its `agent_id`).
        id: String,
        /// A real-server address or network the agent may claim (repeatable, at least
        /// one): its own address, or those its services name with `address =`.
        #[arg(long = "address", value_name = "ADDR[/LEN]")]
        addresses: Vec<String>,
        /// A service it may register: tcp:PORT, udp:PORT, sctp:PORT, fwm:MARK (repeatable;
        /// none: any).
        #[arg(long = "service", value_name = "SERVICE")]
        services: Vec<String>,
        /// The keys file [default: the master's --keys-file, else /etc/feedbackd/keys].
        #[arg(long = "keys-file", value_name = "FILE")]
        keys_file: Option<PathBuf>,
        /// Where to write the agent's key [default: ./ID.key]; never overwritten.
        #[arg(long, value_name = "FILE")]
        agent_key_out: Option<PathBuf>,
    },
}

/// `passwd --role` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Sees and changes.
    Admin,
    /// Sees, changes nothing.
    Viewer,
}

impl From<RoleArg> for crate::console::session::Role {
    fn from(r: RoleArg) -> crate::console::session::Role {
        match r {
            RoleArg::Admin => crate::console::session::Role::Admin,
            RoleArg::Viewer => crate::console::session::Role::Viewer,
        }
    }
}

/// `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Generic netlink, family IPVS.
    Netlink,
    /// The ipvsadm command.
    Ipvsadm,
    /// Log only.
    DryRun,
}

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> BackendKind {
        match b {
            BackendArg::Netlink => BackendKind::Netlink,
            BackendArg::Ipvsadm => BackendKind::Ipvsadm,
            BackendArg::DryRun => BackendKind::DryRun,
        }
    }
}

/// `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds (`1.5`): the agent
/// configuration's syntax ([`feedbackd_proto::conf::parse_duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    feedbackd_proto::conf::parse_duration(s)
}

/// Parses the command line, with `--config FILE`'s lines inserted before the command line's
/// own options (so the command line wins). Errors name the file and line.
pub fn parse_args(args: Vec<String>) -> Result<Cli, ArgsError> {
    let first = Cli::try_parse_from(&args)?;
    let Some(path) = first.config.clone() else { return Ok(first) };
    let text =
        std::fs::read_to_string(&path).map_err(|e| ArgsError::File(format!("{}: {e}", path.display())))?;
    let mut file_args = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let Some((key, value)) = line.split_once('=') else {
            return Err(ArgsError::File(format!("{at}: expected `key = value`, got {line:?}")));
        };
        let key = key.trim().replace('_', "-");
        if key == "config" {
            return Err(ArgsError::File(format!("{at}: `config` cannot be set in a configuration file")));
        }
        let arg = format!("--{key}={}", value.trim());
        // Check the line alone, so that an error can name it.
        if let Err(e) = Cli::try_parse_from([args[0].as_str(), arg.as_str()]) {
            let msg = e.render().to_string();
            let first_line = msg.lines().next().unwrap_or("").trim_start_matches("error: ");
            return Err(ArgsError::File(format!("{at}: {first_line}")));
        }
        file_args.push(arg);
    }
    let mut all = vec![args[0].clone()];
    all.extend(file_args);
    all.extend(args.into_iter().skip(1));
    Ok(Cli::try_parse_from(all)?)
}

/// Why the arguments were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The command line (or `--help`/`--version`): let clap print it and exit.
    #[error("{0}")]
    Clap(#[from] clap::Error),
    /// The configuration file, with its line.
    #[error("{0}")]
    File(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fbm-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("master.conf");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn file_values_apply_and_the_command_line_wins() {
        let p = tmp(
            "ok",
            "# comment\nbackend = dry-run\nmax_step = 7 # trailing\nservice = tcp:10.0.0.1:80\n\
             record = /tmp/m.journal\n",
        );
        let cli = parse_args(args(&["m", "--config", p.to_str().unwrap(), "--max-step", "9"])).unwrap();
        assert_eq!(cli.backend, BackendArg::DryRun);
        assert_eq!(cli.record.as_deref(), Some(std::path::Path::new("/tmp/m.journal")));
        assert_eq!(cli.max_step, 9);
        assert_eq!(cli.services, vec!["tcp:10.0.0.1:80"]);
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let p = tmp("bad", "backend = dry-run\n\nmax_stepp = 7\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:3:") && e.contains("max-stepp"), "{e}");
        let p = tmp("val", "quiesce_after = soon\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:1:") && e.contains("not a duration"), "{e}");
        let p = tmp("eq", "backend netlink\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:1: expected `key = value`"), "{e}");
    }

    fn parse_args_msg(a: Vec<String>) -> Result<Cli, String> {
        parse_args(a).map_err(|e| e.to_string())
    }

    #[test]
    fn the_law_options_and_keys() {
        let cli = parse_args(args(&["m"])).unwrap();
        assert_eq!(cli.law().unwrap().kind, LawKind::Capacity);
        let cli = parse_args(args(&["m", "--law", "grpc-wrr"])).unwrap();
        assert_eq!(cli.law().unwrap().kind, LawKind::GrpcWrr(GrpcWrr::default()));
        let p = tmp("law", "law = grpc-wrr\nerror_penalty = 2.5\nweight_per_qps = 0.1\nmax_weight = 1000\n");
        let cli = parse_args(args(&["m", "--config", p.to_str().unwrap(), "--error-penalty", "0"])).unwrap();
        let law = cli.law().unwrap();
        assert_eq!(
            law.kind,
            LawKind::GrpcWrr(GrpcWrr { error_penalty: 0.0, weight_per_qps: 0.1, ..GrpcWrr::default() })
        );
        assert_eq!(law.max_weight, 1000);
    }

    #[test]
    fn bad_law_options_are_refused_with_what_to_fix() {
        let law_err = |a: &[&str]| parse_args(args(a)).unwrap().law().unwrap_err();
        let e = law_err(&["m", "--law", "grpc-wrr", "--weight-per-qps", "0"]);
        assert!(e.contains("weight_per_qps 0 is not a finite number > 0"), "{e}");
        let e = law_err(&["m", "--law", "grpc-wrr", "--error-penalty=-1"]);
        assert!(e.contains("error_penalty -1 is not a finite number ≥ 0"), "{e}");
        let e = law_err(&["m", "--law", "grpc-wrr", "--error-penalty", "inf"]);
        assert!(e.contains("error_penalty inf"), "{e}");
        let e = law_err(&["m", "--weight-per-qps", "2"]);
        assert_eq!(e, "--weight-per-qps applies to --law grpc-wrr only (the law is capacity)");
        let p = tmp("badlaw", "law = wrr\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:1:") && e.contains("wrr"), "{e}");
        let p = tmp("badpenalty", "law = grpc-wrr\nerror_penalty = lots\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:2:") && e.contains("lots"), "{e}");
    }

    #[test]
    fn the_prequal_law_and_grpc_periods_from_options_and_a_file() {
        use lvs_sched::Duration as D;
        let law = |a: &[&str]| parse_args(args(a)).unwrap().law().unwrap().kind;
        assert_eq!(law(&["m", "--law", "prequal"]), LawKind::Prequal(Prequal::default()));
        assert_eq!(
            law(&["m", "--law", "prequal", "--pool-size", "64", "--max-age", "1500ms", "--q-rif", "0.5"]),
            LawKind::Prequal(Prequal { pool_size: 64, max_age: D::from_millis(1500), q_rif: 0.5 })
        );
        let p = tmp("prequal", "law = prequal\npool_size = 8\nmax_age = 2s\nq_rif = 0.9\n");
        let kind = law(&["m", "--config", p.to_str().unwrap(), "--q-rif", "0.25"]);
        assert_eq!(kind, LawKind::Prequal(Prequal { pool_size: 8, max_age: D::from_secs(2), q_rif: 0.25 }));
        let kind =
            law(&["m", "--law", "grpc-wrr", "--blackout-period", "0s", "--weight-expiration-period", "1m"]);
        let expected = GrpcWrr {
            blackout_period: D(0),
            weight_expiration_period: D::from_secs(60),
            ..GrpcWrr::default()
        };
        assert_eq!(kind, LawKind::GrpcWrr(expected));
    }

    #[test]
    fn options_of_another_law_are_refused_naming_them() {
        let law_err = |a: &[&str]| parse_args(args(a)).unwrap().law().unwrap_err();
        assert_eq!(
            law_err(&["m", "--law", "prequal", "--blackout-period", "1s", "--error-penalty", "1"]),
            "--error-penalty, --blackout-period apply to --law grpc-wrr only (the law is prequal)"
        );
        assert_eq!(
            law_err(&["m", "--law", "grpc-wrr", "--q-rif", "0.5"]),
            "--q-rif applies to --law prequal only (the law is grpc-wrr)"
        );
        assert_eq!(
            law_err(&["m", "--pool-size", "4", "--max-age", "1s"]),
            "--pool-size, --max-age apply to --law prequal only (the law is capacity)"
        );
        // Values the law refuses, with the law's own words.
        for (a, msg) in [
            (&["--law", "prequal", "--q-rif", "1.5"][..], "weight law: q_rif 1.5 is not in [0, 1]"),
            (&["--law", "prequal", "--q-rif", "NaN"], "weight law: q_rif NaN is not in [0, 1]"),
            (&["--law", "prequal", "--pool-size", "0"], "weight law: pool_size 0 is not between 1 and 4096"),
            (
                &["--law", "prequal", "--pool-size", "4097"],
                "weight law: pool_size 4097 is not between 1 and 4096",
            ),
            (&["--law", "prequal", "--max-age", "0s"], "weight law: max_age is 0"),
            (
                &["--law", "grpc-wrr", "--weight-expiration-period", "0s"],
                "weight law: weight_expiration_period is 0",
            ),
        ] {
            let e = law_err(&[&["m"][..], a].concat());
            assert!(e.starts_with(msg), "{a:?}: {e}");
        }
        let bad = |a: &[&str]| parse_args_msg(args(a)).unwrap_err();
        assert!(bad(&["m", "--pool-size=-1"]).contains("--pool-size"));
        assert!(bad(&["m", "--q-rif", "most"]).contains("--q-rif"));
        assert!(bad(&["m", "--max-age", "soon"]).contains("not a duration"));
        let p = tmp("badq", "law = prequal\nq_rif = most\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:2:") && e.contains("most"), "{e}");
        let e = parse_args(args(&["m", "--law", "prequal", "--max-age", "721h"])).unwrap().check_durations();
        assert_eq!(e.unwrap_err(), "--max-age 2595600s is longer than 30 days (720h)");
        for option in ["--blackout-period", "--weight-expiration-period"] {
            let e =
                parse_args(args(&["m", "--law", "grpc-wrr", option, "5124095h"])).unwrap().check_durations();
            assert!(e.unwrap_err().starts_with(option));
        }
    }

    #[test]
    fn durations_that_would_overflow_the_clock_are_refused_at_start_up() {
        let check = |a: &[&str]| parse_args(args(a)).unwrap().check_durations();
        assert_eq!(check(&["m"]), Ok(()));
        assert_eq!(check(&["m", "--remove-after", "720h", "--slow-start", "720h"]), Ok(()));
        for option in
            ["--rescan-interval", "--quiesce-after", "--remove-after", "--register-timeout", "--slow-start"]
        {
            for huge in ["721h", "18446744073.709551615", "5124095h"] {
                let e = check(&["m", option, huge]).unwrap_err();
                assert!(e.starts_with(option) && e.contains("longer than 30 days"), "{e}");
            }
        }
        let e = check(&["m", "--register-timeout", "0"]).unwrap_err();
        assert!(e.contains("--register-timeout 0s"), "{e}");
    }

    #[test]
    fn auth_options_from_a_file() {
        let p = tmp("auth", "keys_file = /etc/feedbackd/keys\nmax_servers_per_agent = 8\n");
        let cli = parse_args(args(&["m", "--config", p.to_str().unwrap()])).unwrap();
        assert_eq!(cli.keys_file.as_deref(), Some(std::path::Path::new("/etc/feedbackd/keys")));
        assert_eq!((cli.max_servers_per_agent, cli.max_registrations_per_s, cli.insecure), (8, 20, false));
        let p = tmp("insecure", "insecure = true\nmax_registrations_per_s = 0\n");
        let cli = parse_args(args(&["m", "--config", p.to_str().unwrap()])).unwrap();
        assert!(cli.insecure);
        assert_eq!(cli.max_registrations_per_s, 0);
        assert!(parse_args(args(&["m", "--insecure"])).unwrap().insecure);
        let p = tmp("insecure-bad", "insecure = maybe\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:1:") && e.contains("maybe"), "{e}");
    }

    #[test]
    fn bounds_options_parse_and_bad_ones_are_refused() {
        let cli = parse_args(args(&["m"])).unwrap();
        assert!(cli.allow_from.is_empty() && cli.max_connections.is_none());
        assert_eq!((cli.max_connections_per_source, cli.max_queued_bytes), (16, 64 << 10));
        assert_eq!((cli.record_max_bytes, cli.record_keep), (100 << 20, 5));
        let p = tmp("bounds", "allow_from = 10.0.0.0/8\nmax_queued_bytes = 1MiB\nmax_connections = 10\n");
        let cli = parse_args(args(&["m", "--config", p.to_str().unwrap(), "--allow-from", "::1"])).unwrap();
        let nets: Vec<String> = cli.allow_from.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1"]);
        assert_eq!((cli.max_queued_bytes, cli.max_connections), (1 << 20, Some(10)));
        let p = tmp("badcidr", "allow_from = 10.0.0.1/8\n");
        let e = parse_args_msg(args(&["m", "--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("master.conf:1:") && e.contains("did you mean 10.0.0.0/8"), "{e}");
        assert!(parse_args_msg(args(&["m", "--max-connections", "0"])).is_err());
        assert!(parse_args_msg(args(&["m", "--max-queued-bytes", "64 parsecs"])).is_err());
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("2 K").unwrap(), 2048);
        assert!(parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5 s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_shipped_example_configuration_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/examples/feedbackd-master.conf");
        let cli = parse_args(vec!["m".into(), "--config".into(), path.into()]).unwrap();
        assert_eq!(cli.backend, BackendArg::Netlink);
        assert_eq!(cli.max_step, 25);
        assert_eq!(cli.remove_after, Duration::from_secs(60));
    }
}
