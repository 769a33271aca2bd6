//! The agent's set-up, one function for `--check` and for the daemon: what [`build`]
//! accepts, the daemon runs.
//!
//! [`build`] reads the configuration (the grammar bounds every count and duration, with
//! the line), builds the load modules (their settings, with the line), reads the key,
//! settles the agent id, and then [`rehearse`]s: it drives the daemon's own
//! [`Agent`] state machine through a whole connection against a stand-in master (Welcome,
//! Register, Registered, a Report of the largest sample the sampler can take, Ack,
//! Goodbye), decoding each frame as a master does. Whatever would assert or be refused
//! on a live connection fails here, before the daemon starts.

use std::io::Read;
use std::path::{Path, PathBuf};

use feedbackd_proto::Time;
use feedbackd_proto::agent::{Agent, AgentConfig, AgentEvent, Sample};
use feedbackd_proto::auth::{Channel, Psk};
use feedbackd_proto::conf::{self, AgentConf};
use feedbackd_proto::types::{AdminState, ServiceSpec};
use feedbackd_proto::wire::{self, Ack, Message, Metric, Registered, Welcome};

use crate::load::{ServiceLoad, Sources};

/// The longest key file read [bytes]: a key is tens of bytes; a larger file (or
/// `/dev/zero`) is a mistake, not a key.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Where the set-up comes from: the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// `--agent-id`: overrides the file's `agent_id`.
    pub agent_id: Option<String>,
    /// `--key-file`: overrides the file's `key_file` (a systemd credential, `%d/...`).
    pub key_file: Option<PathBuf>,
    /// Where the load modules read `/proc`.
    pub sources: Sources,
}

/// Everything the daemon needs, checked.
#[derive(Debug)]
pub struct Setup {
    /// The configuration as parsed.
    pub conf: AgentConf,
    /// What each director connection's [`Agent`] is given.
    pub config: AgentConfig,
    /// One load per service, in order.
    pub loads: Vec<ServiceLoad>,
}

/// Reads `opts.config` and builds the set-up; the error names the file (and line).
pub fn build(opts: &Options) -> Result<Setup, String> {
    let text =
        std::fs::read_to_string(&opts.config).map_err(|e| format!("{}: {e}", opts.config.display()))?;
    build_from_text(opts, &text)
}

/// [`build`] with the file's text already read (`opts.config` names it in errors).
pub fn build_from_text(opts: &Options, text: &str) -> Result<Setup, String> {
    let path = opts.config.display();
    let at = |line: u32| if line == 0 { format!("{path}") } else { format!("{path}:{line}") };
    let conf = conf::parse(text).map_err(|e| format!("{}: {}", at(e.line), e.message))?;
    let loads = ServiceLoad::for_agent(&conf.services, &opts.sources)
        .map_err(|e| format!("{}: {}", at(e.line), e.message))?;
    let psk = match (&opts.key_file, &conf.key_file) {
        (Some(cli), _) => Some(read_key(cli).map_err(|e| format!("--key-file {}: {e}", cli.display()))?),
        (None, Some(kf)) => Some(read_key(Path::new(kf)).map_err(|e| format!("{path}: key_file {kf}: {e}"))?),
        (None, None) => None,
    };
    let agent_id = agent_id(opts, &conf)?;
    let interval = feedbackd_proto::Duration(u64::try_from(conf.interval.as_nanos()).unwrap_or(u64::MAX));
    let master_timeout = conf.master_timeout.map_or_else(
        || AgentConfig::default_master_timeout(interval),
        |d| feedbackd_proto::Duration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    );
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
    rehearse(&config).map_err(|e| format!("{path}: {e}"))?;
    Ok(Setup { conf, config, loads })
}

/// The agent id: `--agent-id`, else the file's, else the host name; checked as a
/// Register carries it.
fn agent_id(opts: &Options, conf: &AgentConf) -> Result<String, String> {
    let (id, from) = match (&opts.agent_id, &conf.agent_id) {
        (Some(id), _) => (id.clone(), "--agent-id"),
        // The grammar checked it, with its line.
        (None, Some(id)) => (id.clone(), "agent_id"),
        (None, None) => (
            nix::unistd::gethostname()
                .map_err(|e| format!("host name: {e}; set agent_id"))?
                .to_string_lossy()
                .into_owned(),
            "the host name",
        ),
    };
    if !wire::valid_agent_id(&id) {
        return Err(format!(
            "{from} {id:?} is not a valid agent id: 1 to {} printable ASCII characters without \
             spaces (set agent_id or --agent-id)",
            wire::MAX_AGENT_ID_LEN
        ));
    }
    Ok(id)
}

/// Reads a key file, at most [`MAX_KEY_FILE_BYTES`].
pub fn read_key(path: &Path) -> Result<Psk, String> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    feedbackd_proto::auth::check_key_file_mode(&path.display().to_string(), meta.mode())?;
    let mut bytes = Vec::new();
    f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!("longer than {MAX_KEY_FILE_BYTES} bytes: not a key file"));
    }
    Psk::from_file_contents(&bytes)
}

/// The largest sample the sampler can produce for `services` services: every capacity
/// known, [`wire::MAX_METRICS`] metrics with the longest names.
pub fn largest_sample(services: usize) -> Sample {
    let metrics = (0..wire::MAX_METRICS)
        .map(|i| Metric { name: format!("{i:0>width$}", width = wire::MAX_METRIC_NAME_LEN), value: f64::MAX })
        .collect();
    Sample { admin: AdminState::Maint, capacity: vec![Some(1.0); services], metrics }
}

/// Runs `config` through one whole connection of the daemon's [`Agent`] against a
/// stand-in master that decodes every frame as a master does. An `Err` says what a live
/// connection would have met (an assertion, a refused frame).
pub fn rehearse(config: &AgentConfig) -> Result<(), String> {
    let n = config.services.len();
    if n == 0 || n > wire::MAX_SERVICES {
        return Err(format!("{n} services: an agent registers 1 to {}", wire::MAX_SERVICES));
    }
    if !wire::valid_agent_id(&config.agent_id) {
        return Err(format!("agent id {:?} cannot be registered", config.agent_id));
    }
    check_timing(config)?;
    let now = Time(0);
    let (agent_nonce, master_nonce) = ([0xa5; 16], [0x5a; 16]);
    let mut agent = Agent::new(config.clone());
    let mut master = Channel::new();
    agent.handle_connected(now, agent_nonce);
    let auth = config.psk.is_some();
    agent.handle_input(
        now,
        &master.seal(&Message::Welcome(Welcome { auth_required: auth, nonce: master_nonce })),
    );
    if let Some(psk) = &config.psk {
        master.set_key(psk.session(&master_nonce, &agent_nonce));
    }
    no_close(&mut agent)?;
    match exchange(&mut agent, &mut master, auth)? {
        Message::Register(r) if r.agent_id == config.agent_id && r.services == config.services => {}
        other => return Err(format!("the registration came out as {other:?}")),
    }
    let registered = Registered { matched: vec![1; n] };
    agent.handle_input(now, &master.seal(&Message::Registered(registered)));
    no_close(&mut agent)?;
    agent.handle_sample(now, largest_sample(n));
    match exchange(&mut agent, &mut master, auth)? {
        Message::Report(r) if r.capacity.len() == n && r.metrics.len() == wire::MAX_METRICS => {}
        other => return Err(format!("the largest report came out as {other:?}")),
    }
    // The agent's frames so far: the Register (1), the Report (2).
    let ack = Ack { seq: 2, weights: vec![Some(u32::from(u16::MAX)); n] };
    agent.handle_input(now, &master.seal(&Message::Ack(ack)));
    no_close(&mut agent)?;
    agent.handle_goodbye(now, "the longest goodbye reason an agent may give, and then some");
    match exchange(&mut agent, &mut master, auth)? {
        Message::Goodbye(_) => Ok(()),
        other => Err(format!("the goodbye came out as {other:?}")),
    }
}

/// Fails when the agent has closed its connection (it refused what the master sent).
fn no_close(agent: &mut Agent) -> Result<(), String> {
    while let Some(ev) = agent.poll_event() {
        if let AgentEvent::Close { reason, .. } = ev {
            return Err(format!("the agent closed its connection: {reason}"));
        }
    }
    Ok(())
}

/// The next frame the agent sends, opened by the stand-in master.
fn exchange(agent: &mut Agent, master: &mut Channel, auth: bool) -> Result<Message, String> {
    let bytes = agent.poll_transmit().ok_or("the agent sent nothing")?;
    master.push_input(&bytes);
    let frame = master.next_frame().map_err(|e| e.to_string())?.ok_or("the agent sent half a frame")?;
    let raw = wire::parse_frame(&frame).map_err(|e| format!("a master refuses the agent's frame: {e}"))?;
    master.open(&raw, auth).map_err(|e| format!("a master refuses the agent's frame: {e}"))
}

/// The longest timer the daemon arms [s]: protocol time (nanoseconds since start, u64)
/// plus this never overflows in centuries of uptime. The grammar's bounds are far below.
const MAX_TIMER_S: u64 = 30 * 24 * 3600;

/// The daemon adds these durations to protocol time and `Instant`s and arms tokio timers
/// with them: each must be positive and bounded.
fn check_timing(config: &AgentConfig) -> Result<(), String> {
    let now = std::time::Instant::now();
    for (what, d) in [("interval", config.interval), ("master_timeout", config.master_timeout)] {
        let d = std::time::Duration::from_nanos(d.as_nanos());
        if d.is_zero() || d.as_secs() > MAX_TIMER_S || now.checked_add(d).is_none() {
            return Err(format!("{what} {d:?} is outside (0, {MAX_TIMER_S} s]"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use feedbackd_proto::Duration;
    use lvs_ipvs::Forwarding;
    use lvs_ipvs::Protocol;

    use super::*;

    fn config(services: usize, psk: Option<Psk>) -> AgentConfig {
        let spec = |i: usize| ServiceSpec {
            protocol: Protocol::Tcp,
            port: u16::try_from(1000 + i).unwrap(),
            vip: Some("2001:db8::1".parse().unwrap()),
            fwmark: None,
            forwarding: Forwarding::DirectRouting,
            address: Some("2001:db8::2".parse().unwrap()),
        };
        AgentConfig {
            agent_id: "a".repeat(wire::MAX_AGENT_ID_LEN),
            services: (0..services).map(spec).collect(),
            interval: Duration::from_millis(1000),
            psk,
            master_timeout: Duration::from_millis(3000),
        }
    }

    #[test]
    fn the_largest_configuration_rehearses_with_and_without_a_key() {
        let psk = Psk::from_file_contents(b"0123456789abcdef0123").unwrap();
        rehearse(&config(wire::MAX_SERVICES, None)).unwrap();
        rehearse(&config(wire::MAX_SERVICES, Some(psk))).unwrap();
        rehearse(&config(1, None)).unwrap();
    }

    #[test]
    fn what_would_assert_in_the_daemon_is_an_error_here() {
        // Agent::new asserts these: the rehearsal refuses them first.
        let e = rehearse(&config(wire::MAX_SERVICES + 1, None)).unwrap_err();
        assert!(e.contains("33 services: an agent registers 1 to 32"), "{e}");
        assert!(rehearse(&config(0, None)).unwrap_err().contains("0 services"));
        let bad_id = AgentConfig { agent_id: "a".repeat(65), ..config(1, None) };
        assert!(rehearse(&bad_id).unwrap_err().contains("cannot be registered"));
        let bad_id = AgentConfig { agent_id: "web 1".into(), ..config(1, None) };
        assert!(rehearse(&bad_id).is_err());
        let zero = AgentConfig { interval: Duration::ZERO, ..config(1, None) };
        assert!(
            rehearse(&zero).unwrap_err().contains("interval"),
            "a zero interval panics tokio's interval()"
        );
        let huge = AgentConfig { master_timeout: Duration(u64::MAX), ..config(1, None) };
        assert!(rehearse(&huge).unwrap_err().contains("master_timeout"));
    }

    #[test]
    fn the_largest_sample_is_what_the_sampler_can_send() {
        let s = largest_sample(3);
        assert_eq!(s.capacity.len(), 3);
        assert_eq!(s.metrics.len(), wire::MAX_METRICS);
        assert!(s.metrics.iter().all(|m| wire::valid_metric_name(&m.name)));
        assert!(s.metrics.iter().all(|m| m.name.len() == wire::MAX_METRIC_NAME_LEN));
    }

    fn opts(key_file: Option<PathBuf>) -> Options {
        Options { config: PathBuf::from("agent.conf"), agent_id: None, key_file, sources: Sources::default() }
    }

    #[test]
    fn errors_name_the_file_and_line_and_the_key_file() {
        let text = "director = 10.0.0.1\nagent_id = web1\nservice = http\n  module = psi window=7\n";
        let e = build_from_text(&opts(None), text).unwrap_err();
        assert!(e.starts_with("agent.conf:4: module psi:"), "{e}");
        let e = build_from_text(&opts(None), "service = http\n").unwrap_err();
        assert!(e.starts_with("agent.conf: no `director"), "{e}");
        let text = "director = 10.0.0.1\nagent_id = web1\nkey_file = /nonexistent/key\nservice = http\n";
        let e = build_from_text(&opts(None), text).unwrap_err();
        assert!(e.starts_with("agent.conf: key_file /nonexistent/key:"), "{e}");
        // --key-file wins over key_file; a key file is read bounded.
        let big = std::env::temp_dir().join(format!("fbd-setup-big-{}.key", std::process::id()));
        std::fs::write(&big, "k".repeat(5000)).unwrap();
        std::fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let e = build_from_text(&opts(Some(big.clone())), text).unwrap_err();
        assert!(e.contains("big") && e.contains("longer than 4096 bytes"), "{e}");
        std::fs::remove_file(&big).unwrap();
        // A device (mode 0666) is refused before a byte is read.
        let e = build_from_text(&opts(Some("/dev/zero".into())), text).unwrap_err();
        assert!(e.contains("--key-file /dev/zero:") && e.contains("too open"), "{e}");
    }

    #[test]
    fn a_command_line_agent_id_is_checked_too() {
        let text = "director = 10.0.0.1\nservice = http\n";
        let o = Options { agent_id: Some("x".repeat(65)), ..opts(None) };
        let e = build_from_text(&o, text).unwrap_err();
        assert!(e.contains("--agent-id") && e.contains("1 to 64 printable ASCII"), "{e}");
        let o = Options { agent_id: Some("rs1".into()), ..opts(None) };
        assert_eq!(build_from_text(&o, text).unwrap().config.agent_id, "rs1");
    }
}
