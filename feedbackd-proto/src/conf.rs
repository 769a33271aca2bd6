//! The `/etc/feedbackd-agent.conf` grammar: the original one, as it is, plus extensions.
//!
//! ```text
//! director = 192.168.6.1
//! service = http
//!         protocol = TCP
//!         port = 80
//!         module = cpuload.so
//!         forwarding = NAT
//! ```
//!
//! A file is `KEY = VALUE` lines; `#` starts a comment (outside double quotes); blank lines
//! and indentation mean nothing. Keys are case-insensitive. Global keys (`director`,
//! `agent_id`, `interval`, `interval_ms`, `key_file`, `master_timeout`, `agent_check`) may
//! appear anywhere;
//! service keys (`protocol`, `port`, `module`, `forwarding`, `vip`, `fwmark`, `address`,
//! `combine`) belong to the most recent `service = NAME` line. `docs/feedbackd-agent-conf.md`
//! is the full reference.
//!
//! The parser never panics, whatever the text; every error names its line (0 for the file
//! as a whole) and says what was expected.

mod value;

#[cfg(test)]
mod tests;

use core::net::IpAddr;
use core::time::Duration;

use lvs_ipvs::Forwarding;

use crate::wire;
use lvs_ipvs::Protocol;

/// The master's default TCP port.
pub const DEFAULT_MASTER_PORT: u16 = 7878;

/// A parsed agent configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConf {
    /// Every director to report to (`director = ADDR[:PORT]`, repeatable), in file order.
    pub directors: Vec<DirectorConf>,
    /// The agent's name in the master's table (`agent_id = NAME`); default: the host name,
    /// chosen by the daemon.
    pub agent_id: Option<String>,
    /// How often to measure and report (`interval = 1s` or `interval_ms = 1000`).
    pub interval: Duration,
    /// A file holding the pre-shared key (`key_file = PATH`).
    pub key_file: Option<String>,
    /// Give up on a master that has not answered for this long, and reconnect
    /// (`master_timeout = 10s`); default 3 intervals, at least 3 s.
    pub master_timeout: Option<Duration>,
    /// The services, in file order.
    pub services: Vec<ServiceConf>,
    /// Where to answer HAProxy's agent-check (`agent_check = ADDR:PORT[/SERVICE]`,
    /// extension, repeatable), in file order.
    pub agent_checks: Vec<AgentCheckConf>,
}

/// One `agent_check = ADDR:PORT[/SERVICE]` line: answer HAProxy's agent-check on ADDR:PORT
/// for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCheckConf {
    /// The address to listen on.
    pub addr: core::net::SocketAddr,
    /// The service answered for: an index into [`AgentConf::services`].
    pub service: usize,
    /// The line it is on (1-based; 0 for a command-line option).
    pub line: u32,
}

/// The most agent-check listeners (`agent_check` lines and `--agent-check` options).
pub const MAX_AGENT_CHECKS: usize = 32;

/// Parses `ADDR:PORT[/SERVICE]` (an `agent_check` value, or the agent's `--agent-check`),
/// the service resolved in `services` by its `service = NAME` name (any case) or its port;
/// none is the first service.
pub fn parse_agent_check(text: &str, services: &[ServiceConf], line: u32) -> Result<AgentCheckConf, String> {
    let (addr, service) = match text.trim().split_once('/') {
        Some((a, s)) => (a, Some(s.trim())),
        None => (text.trim(), None),
    };
    let addr: core::net::SocketAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{addr:?} is not ADDR:PORT (an IPv6 address in brackets)"))?;
    let service = match service {
        None if services.is_empty() => return Err("no service to answer for".to_owned()),
        None => 0,
        Some(s) => services
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(s) || s.parse::<u16>().is_ok_and(|p| p == c.port))
            .ok_or_else(|| {
                let names: Vec<String> =
                    services.iter().map(|c| format!("{} (port {})", c.name, c.port)).collect();
                format!("no service {s:?}; the services are {}", names.join(", "))
            })?,
    };
    Ok(AgentCheckConf { addr, service, line })
}

/// One `director = ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorConf {
    /// Host name or address, as written.
    pub host: String,
    /// TCP port (default [`DEFAULT_MASTER_PORT`]).
    pub port: u16,
    /// The line it is on (1-based).
    pub line: u32,
}

/// One `service = NAME` block.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConf {
    /// The name after `service =`.
    pub name: String,
    /// `protocol = TCP|UDP|SCTP` (default TCP).
    pub protocol: Protocol,
    /// `port = N` (required; the name `http` etc. gives a default when it is a well-known one);
    /// 0 only with `fwmark`: the real server's port in a firewall-mark service, as
    /// `ipvsadm -a -f MARK -r ADDR:0` lists it.
    pub port: u16,
    /// `vip = ADDR` (extension): only match this VIP.
    pub vip: Option<IpAddr>,
    /// `fwmark = N` (extension): a firewall-mark service.
    pub fwmark: Option<u32>,
    /// `forwarding = NAT|DR|TUN` (default NAT).
    pub forwarding: Forwarding,
    /// `address = ADDR` (extension): the real server address to register.
    pub address: Option<IpAddr>,
    /// `module = NAME[.so] [key=value ...]`, repeatable; none written means cpuload.
    pub modules: Vec<ModuleConf>,
    /// `combine = min|mean|product` (extension): how several modules' capacities combine.
    pub combine: Combine,
    /// The line of `service =` (1-based).
    pub line: u32,
}

/// One `module = ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleConf {
    /// Which module.
    pub kind: ModuleKind,
    /// Its `key=value` settings, in order.
    pub settings: Vec<(String, String)>,
    /// The line it is on (1-based).
    pub line: u32,
}

/// The load modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// CPU idle fraction from `/proc/stat` deltas (`cpuload.so`, the default).
    Cpuload,
    /// 1-minute load average per CPU (`loadavg`).
    Loadavg,
    /// Available memory fraction (`memory`).
    Memory,
    /// CPU pressure stall information, `/proc/pressure/cpu` (`psi`).
    Psi,
    /// Established connections on the service port against a maximum (`connections`).
    Connections,
    /// An external command's output (`command`).
    Command,
    /// A number read from a file (`file`).
    File,
    /// Requests in flight and latency for the Prequal law (`prequal`): established sockets
    /// on the service port and a timed probe to it, or both from a file the server writes.
    Prequal,
}

/// How several modules' capacities combine into one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Combine {
    /// The most constrained resource decides (default).
    #[default]
    Min,
    /// The arithmetic mean.
    Mean,
    /// The product.
    Product,
}

/// A configuration error, with the line it is on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfError {
    /// 1-based line number (0 when the error is about the file as a whole).
    pub line: u32,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Parses a duration as the configuration writes it: `1s`, `500ms`, `1.5s`, `2m`, `1h`, or
/// a bare number of seconds (`2`, `0.5`); exact to the nanosecond. The master's options
/// use the same syntax.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    value::duration(text.trim())
}

/// Parses a forwarding method as `forwarding = ...` takes it (`NAT`, `DR`, `TUN` and their
/// other names, case-insensitive); the master's `--agent-check` uses the same words.
pub fn parse_forwarding(text: &str) -> Result<Forwarding, String> {
    value::forwarding(text.trim())
}

/// Parses an agent configuration.
pub fn parse(text: &str) -> Result<AgentConf, ConfError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder::default();
    for (index, raw) in text.lines().enumerate() {
        let line = u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX);
        if let Some((key, val)) = split_line(raw).map_err(|message| ConfError { line, message })? {
            builder.entry(line, &key, val)?;
        }
    }
    builder.finish()
}

/// The global keys, in the order error messages list them.
const GLOBAL_KEYS: [&str; 7] =
    ["director", "agent_id", "interval", "interval_ms", "key_file", "master_timeout", "agent_check"];

/// The keys of a `service = NAME` block.
const SERVICE_KEYS: [&str; 8] =
    ["protocol", "port", "module", "forwarding", "vip", "fwmark", "address", "combine"];

/// Service names that give a default port: `/etc/services` names for the usual LVS
/// services.
const WELL_KNOWN: [(&str, u16); 11] = [
    ("http", 80),
    ("https", 443),
    ("ftp", 21),
    ("smtp", 25),
    ("dns", 53),
    ("domain", 53),
    ("pop3", 110),
    ("imap", 143),
    ("ssh", 22),
    ("mysql", 3306),
    ("postgresql", 5432),
];

/// The shortest and longest `interval` [ms].
const INTERVAL_MIN_MS: u64 = 50;
const INTERVAL_MAX_MS: u64 = 3_600_000;
/// The shortest and longest `master_timeout` [ms].
const MASTER_TIMEOUT_MIN_MS: u64 = 100;
const MASTER_TIMEOUT_MAX_MS: u64 = 86_400_000;
/// The longest `agent_id` [bytes]: what a Register carries.
const AGENT_ID_MAX_LEN: usize = wire::MAX_AGENT_ID_LEN;
/// The most services: what a Register carries.
pub const MAX_SERVICES: usize = wire::MAX_SERVICES;
/// The most `director` lines: one connection (and one task) each.
pub const MAX_DIRECTORS: usize = 16;
/// The most `module` lines in one service: each is sampled every interval.
pub const MAX_MODULES: usize = 16;

/// The well-known port of a service name, if it is one.
fn well_known_port(name: &str) -> Option<u16> {
    let name = name.to_ascii_lowercase();
    WELL_KNOWN.iter().find(|(n, _)| *n == name).map(|&(_, port)| port)
}

/// Removes the comment and splits `KEY = VALUE`; `None` for a blank or comment line. The
/// key comes back in lower case, both parts trimmed.
fn split_line(raw: &str) -> Result<Option<(String, &str)>, String> {
    let text = strip_comment(raw).trim();
    if text.is_empty() {
        return Ok(None);
    }
    let Some((key, val)) = text.split_once('=') else {
        let first = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let known = GLOBAL_KEYS.contains(&first.as_str())
            || SERVICE_KEYS.contains(&first.as_str())
            || first == "service";
        return Err(if known {
            format!("missing `=` after `{first}`: expected `{first} = VALUE`, found {text:?}")
        } else {
            format!("missing `=`: expected `KEY = VALUE`, found {text:?}")
        });
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("expected a key before `=`, found {text:?}"));
    }
    Ok(Some((key.to_ascii_lowercase(), val.trim())))
}

/// The line up to its first `#` outside double quotes (a quoted module setting may hold a
/// `#`). Inside quotes a backslash escapes the next character.
fn strip_comment(raw: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return &raw[..i],
            _ => {}
        }
    }
    raw
}

/// A value and the line that set it, to detect duplicates.
type Seen<T> = Option<(T, u32)>;

/// The file read so far.
#[derive(Default)]
struct Builder {
    directors: Vec<DirectorConf>,
    agent_id: Seen<String>,
    /// The interval and the key that set it (`interval` or `interval_ms`).
    interval: Option<(Duration, u32, &'static str)>,
    key_file: Seen<String>,
    master_timeout: Seen<Duration>,
    services: Vec<ServiceConf>,
    current: Option<Draft>,
    /// `agent_check` values and their lines, resolved once every service is read.
    agent_checks: Vec<(String, u32)>,
}

/// A `service = NAME` block being read.
struct Draft {
    name: String,
    line: u32,
    protocol: Seen<Protocol>,
    port: Seen<u16>,
    vip: Seen<IpAddr>,
    fwmark: Seen<u32>,
    forwarding: Seen<Forwarding>,
    address: Seen<IpAddr>,
    combine: Seen<Combine>,
    modules: Vec<ModuleConf>,
}

/// An error on `line`.
fn err(line: u32, message: String) -> ConfError {
    ConfError { line, message }
}

/// Fails when `slot` is already set: a key given twice in one block.
fn once<T>(slot: &Seen<T>, key: &str, block: &str, line: u32) -> Result<(), ConfError> {
    match slot {
        Some((_, first)) => {
            Err(err(line, format!("duplicate `{key}` {block} (first given on line {first})")))
        }
        None => Ok(()),
    }
}

impl Builder {
    /// One `key = val` line.
    fn entry(&mut self, line: u32, key: &str, val: &str) -> Result<(), ConfError> {
        let bad = |message: String| err(line, format!("{key}: {message}"));
        match key {
            "service" => {
                self.close_service()?;
                if self.services.len() >= MAX_SERVICES {
                    return Err(bad(format!(
                        "one service too many: an agent reports at most {MAX_SERVICES} services \
                         (a registration's limit; run a second agent with its own agent_id for more)"
                    )));
                }
                let name = value::service_name(val).map_err(bad)?;
                self.current = Some(Draft::new(name, line));
            }
            "director" => {
                let (host, port) = value::director(val).map_err(bad)?;
                if let Some(first) =
                    self.directors.iter().find(|d| d.port == port && d.host.eq_ignore_ascii_case(&host))
                {
                    return Err(bad(format!(
                        "{val:?} repeats the director on line {}: two connections of one agent \
                         to one master would replace each other",
                        first.line
                    )));
                }
                if self.directors.len() >= MAX_DIRECTORS {
                    return Err(bad(format!(
                        "one director too many: an agent reports to at most {MAX_DIRECTORS}"
                    )));
                }
                self.directors.push(DirectorConf { host, port, line });
            }
            "agent_id" => {
                once(&self.agent_id, key, "in the file", line)?;
                let id = value::agent_id(val, AGENT_ID_MAX_LEN).map_err(bad)?;
                self.agent_id = Some((id, line));
            }
            "interval" | "interval_ms" => {
                if let Some((_, first, first_key)) = self.interval {
                    let message = if first_key == key {
                        format!("duplicate `{key}` in the file (first given on line {first})")
                    } else {
                        format!("`{key}` repeats `{first_key}` on line {first}: give one of them")
                    };
                    return Err(err(line, message));
                }
                let interval = if key == "interval" {
                    value::duration(val).map_err(bad)?
                } else {
                    value::millis(val).map_err(bad)?
                };
                let range = INTERVAL_MIN_MS..=INTERVAL_MAX_MS;
                value::check_range(interval, range).map_err(bad)?;
                let key = if key == "interval" { "interval" } else { "interval_ms" };
                self.interval = Some((interval, line, key));
            }
            "agent_check" => {
                if self.agent_checks.len() >= MAX_AGENT_CHECKS {
                    return Err(bad(format!(
                        "one too many: at most {MAX_AGENT_CHECKS} agent-check listeners"
                    )));
                }
                self.agent_checks.push((val.to_owned(), line));
            }
            "key_file" => {
                once(&self.key_file, key, "in the file", line)?;
                let path = value::path(val).map_err(bad)?;
                self.key_file = Some((path, line));
            }
            "master_timeout" => {
                once(&self.master_timeout, key, "in the file", line)?;
                let timeout = value::duration(val).map_err(bad)?;
                let range = MASTER_TIMEOUT_MIN_MS..=MASTER_TIMEOUT_MAX_MS;
                value::check_range(timeout, range).map_err(bad)?;
                self.master_timeout = Some((timeout, line));
            }
            _ if SERVICE_KEYS.contains(&key) => match &mut self.current {
                Some(draft) => draft.entry(line, key, val)?,
                None => {
                    return Err(err(
                        line,
                        format!(
                            "`{key}` is a service key, but no service has started: \
                             start one with `service = NAME`"
                        ),
                    ));
                }
            },
            _ => return Err(err(line, self.unknown_key(key))),
        }
        Ok(())
    }

    /// The message for an unknown key, listing what is valid where it is.
    fn unknown_key(&self, key: &str) -> String {
        let global = GLOBAL_KEYS.join(", ");
        match &self.current {
            Some(draft) => format!(
                "unknown key `{key}` in service {:?}; a service takes {}; \
                 global keys are {global}; `service` starts the next service",
                draft.name,
                SERVICE_KEYS.join(", "),
            ),
            None => format!("unknown key `{key}`; expected one of {global}, or `service` to start a service"),
        }
    }

    /// Finishes the service being read, if any.
    fn close_service(&mut self) -> Result<(), ConfError> {
        let Some(draft) = self.current.take() else { return Ok(()) };
        let service = draft.finish()?;
        self.services.push(service);
        Ok(())
    }

    /// Checks the file as a whole.
    fn finish(mut self) -> Result<AgentConf, ConfError> {
        self.close_service()?;
        if self.directors.is_empty() && self.agent_checks.is_empty() {
            return Err(err(0, "no `director = ADDRESS` line (nor `agent_check = ADDR:PORT`)".to_owned()));
        }
        if self.services.is_empty() {
            return Err(err(0, "no `service = NAME` line: add one, e.g. `service = http`".to_owned()));
        }
        let mut agent_checks: Vec<AgentCheckConf> = Vec::with_capacity(self.agent_checks.len());
        for (val, line) in &self.agent_checks {
            let c = parse_agent_check(val, &self.services, *line)
                .map_err(|e| err(*line, format!("agent_check: {e}")))?;
            if let Some(first) = agent_checks.iter().find(|x| x.addr == c.addr) {
                return Err(err(*line, format!("agent_check: {} is already on line {}", c.addr, first.line)));
            }
            agent_checks.push(c);
        }
        Ok(AgentConf {
            directors: self.directors,
            agent_id: self.agent_id.map(|(v, _)| v),
            interval: self.interval.map_or(Duration::from_secs(1), |(v, _, _)| v),
            key_file: self.key_file.map(|(v, _)| v),
            master_timeout: self.master_timeout.map(|(v, _)| v),
            services: self.services,
            agent_checks,
        })
    }
}

impl Draft {
    fn new(name: String, line: u32) -> Draft {
        Draft {
            name,
            line,
            protocol: None,
            port: None,
            vip: None,
            fwmark: None,
            forwarding: None,
            address: None,
            combine: None,
            modules: Vec::new(),
        }
    }

    /// One service key (`key` is one of [`SERVICE_KEYS`]).
    fn entry(&mut self, line: u32, key: &str, val: &str) -> Result<(), ConfError> {
        let block = format!("in service {:?}", self.name);
        let bad = |message: String| err(line, format!("{key}: {message}"));
        match key {
            "protocol" => {
                once(&self.protocol, key, &block, line)?;
                self.protocol = Some((value::protocol(val).map_err(bad)?, line));
            }
            "port" => {
                once(&self.port, key, &block, line)?;
                // 0: a firewall-mark service's real server, checked in `finish`.
                let port = if val == "0" { 0 } else { value::port(val).map_err(bad)? };
                self.port = Some((port, line));
            }
            "forwarding" => {
                once(&self.forwarding, key, &block, line)?;
                self.forwarding = Some((value::forwarding(val).map_err(bad)?, line));
            }
            "vip" => {
                once(&self.vip, key, &block, line)?;
                let vip = value::ip(val).map_err(bad)?;
                if let Some((_, first)) = self.fwmark {
                    return Err(bad(format!(
                        "a service matches either a `fwmark` or a `vip`, not both (fwmark on line {first})"
                    )));
                }
                self.vip = Some((vip, line));
            }
            "fwmark" => {
                once(&self.fwmark, key, &block, line)?;
                let mark = value::fwmark(val).map_err(bad)?;
                if let Some((_, first)) = self.vip {
                    return Err(bad(format!(
                        "a service matches either a `fwmark` or a `vip`, not both (vip on line {first})"
                    )));
                }
                self.fwmark = Some((mark, line));
            }
            "address" => {
                once(&self.address, key, &block, line)?;
                self.address = Some((value::ip(val).map_err(bad)?, line));
            }
            "combine" => {
                once(&self.combine, key, &block, line)?;
                self.combine = Some((value::combine(val).map_err(bad)?, line));
            }
            "module" => {
                let (kind, settings) = value::module(val).map_err(bad)?;
                if self.modules.len() >= MAX_MODULES {
                    return Err(bad(format!(
                        "one module too many in service {:?}: a service has at most {MAX_MODULES}",
                        self.name
                    )));
                }
                self.modules.push(ModuleConf { kind, settings, line });
            }
            _ => unreachable!("Builder::entry passes only SERVICE_KEYS, not {key:?}"),
        }
        Ok(())
    }

    /// The finished service; its port comes from the name when not written.
    fn finish(self) -> Result<ServiceConf, ConfError> {
        let port = match (self.port, well_known_port(&self.name)) {
            (Some((0, line)), _) if self.fwmark.is_none() => {
                return Err(err(
                    line,
                    "port: \"0\" is only for a firewall-mark service (`fwmark = N`), whose real \
                     servers ipvsadm lists with port 0; otherwise give a number between 1 and 65535"
                        .to_owned(),
                ));
            }
            (Some((port, _)), _) | (None, Some(port)) => port,
            (None, None) => {
                let names: Vec<&str> = WELL_KNOWN.iter().map(|(n, _)| *n).collect();
                return Err(err(
                    self.line,
                    format!(
                        "service {:?} has no `port = N` line, and {:?} is not a well-known \
                         service name that gives one ({})",
                        self.name,
                        self.name,
                        names.join(", ")
                    ),
                ));
            }
        };
        Ok(ServiceConf {
            name: self.name,
            protocol: self.protocol.map_or(Protocol::Tcp, |(v, _)| v),
            port,
            vip: self.vip.map(|(v, _)| v),
            fwmark: self.fwmark.map(|(v, _)| v),
            forwarding: self.forwarding.map_or(Forwarding::Masq, |(v, _)| v),
            address: self.address.map(|(v, _)| v),
            modules: self.modules,
            combine: self.combine.map_or(Combine::Min, |(v, _)| v),
            line: self.line,
        })
    }
}
