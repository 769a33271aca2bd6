//! The master's keys file: one line per agent, its key and what it may claim.
//!
//! ```text
//! # AGENT_ID  KEY                                                               ADDRESSES              SERVICES
//! rs1         3f9c0e6b6a1d4c2e8b7f5a3d1c9e0b4a6f8d2c7e5b3a1f9d0c8e6b4a2f7d5c3e  10.0.0.2               tcp:80,tcp:443
//! rs2         9e1d...                                                           10.0.1.0/24,2001:db8::2  *
//! ```
//!
//! - Fields are separated by spaces or tabs; blank lines and lines starting with `#` are
//!   skipped. Exactly four fields; an agent id appears once.
//! - `AGENT_ID`: the agent's `agent_id` (printable ASCII without spaces, 1 to 64 bytes).
//! - `KEY`: the contents of that agent's `key_file` (at least 16 bytes, no whitespace;
//!   `feedbackd-master keygen` prints one). The bytes are the HMAC key, as the agent uses
//!   them.
//! - `ADDRESSES`: comma-separated IP addresses or networks (`10.0.1.0/24`,
//!   `2001:db8::/64`): the real-server addresses the agent may claim (a service's
//!   `address =`, or the address it connects from).
//! - `SERVICES`: comma-separated `tcp:PORT`, `udp:PORT`, `sctp:PORT`, `fwm:MARK`, or `*`
//!   (any): the services it may register (a service's protocol and port, or its fwmark).
//!
//! [`parse_keys`] never panics; its errors carry the line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::auth::{MIN_PSK_LEN, Psk};
pub use crate::types::Cidr;
use crate::types::ServiceSpec;
use crate::wire;
use lvs_ipvs::Protocol;

/// How the master authenticates agents.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No authentication at all: anyone who can connect may claim anything. Only for tests
    /// and loopback experiments (`feedbackd-master --insecure`).
    Insecure,
    /// Each agent authenticates with its own key and claims only what its line allows.
    Keys(KeyTable),
}

impl Auth {
    /// Whether agents must authenticate.
    pub fn required(&self) -> bool {
        matches!(self, Auth::Keys(_))
    }
}

/// A service an agent may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServicePattern {
    /// Any service.
    Any,
    /// A protocol and port (`tcp:80`).
    Port(Protocol, u16),
    /// A firewall mark (`fwm:5`).
    Fwmark(u32),
}

impl ServicePattern {
    /// Whether an agent's service matches.
    pub fn allows(&self, spec: &ServiceSpec) -> bool {
        match (*self, spec.fwmark) {
            (ServicePattern::Any, _) => true,
            (ServicePattern::Fwmark(m), Some(want)) => m == want,
            (ServicePattern::Port(p, port), None) => p == spec.protocol && port == spec.port,
            _ => false,
        }
    }
}

impl FromStr for ServicePattern {
    type Err = String;
    fn from_str(s: &str) -> Result<ServicePattern, String> {
        if s == "*" {
            return Ok(ServicePattern::Any);
        }
        let bad = || format!("{s:?} is not a service (tcp:PORT, udp:PORT, sctp:PORT, fwm:MARK or *)");
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let protocol = match kind {
            "fwm" => return n.parse().map(ServicePattern::Fwmark).map_err(|_| bad()),
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(bad()),
        };
        n.parse().map(|p| ServicePattern::Port(protocol, p)).map_err(|_| bad())
    }
}

impl fmt::Display for ServicePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServicePattern::Any => f.write_str("*"),
            ServicePattern::Port(p, port) => write!(f, "{}:{port}", p.to_string().to_lowercase()),
            ServicePattern::Fwmark(m) => write!(f, "fwm:{m}"),
        }
    }
}

/// One agent's line: its key and what it may claim.
#[derive(Clone, Debug)]
pub struct AgentKey {
    /// Its key.
    pub key: Psk,
    /// The real-server addresses it may claim.
    pub addresses: Vec<Cidr>,
    /// The services it may register.
    pub services: Vec<ServicePattern>,
    /// The line it came from (1-based).
    pub line: usize,
}

impl AgentKey {
    /// A line allowing every address and service: for tests, the simulator and replays.
    pub fn anything(key: Psk) -> AgentKey {
        let any4 = Cidr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0).expect("a /0");
        let any6 = Cidr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0).expect("a /0");
        AgentKey { key, addresses: vec![any4, any6], services: vec![ServicePattern::Any], line: 0 }
    }

    /// Whether this agent may claim real-server address `addr`.
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        self.addresses.iter().any(|c| c.contains(addr))
    }

    /// Checks one registered service, whose real-server address is `addr` (the service's
    /// `address =`, or the agent's peer address); the error says what is not allowed.
    pub fn check_claim(&self, spec: &ServiceSpec, addr: IpAddr) -> Result<(), String> {
        if !self.allows_address(addr) {
            return Err(format!("may not claim address {addr} (keys file line {} allows {})", self.line, {
                let v: Vec<String> = self.addresses.iter().map(Cidr::to_string).collect();
                v.join(",")
            }));
        }
        if !self.services.iter().any(|p| p.allows(spec)) {
            let what = match spec.fwmark {
                Some(m) => format!("fwm:{m}"),
                None => format!("{}:{}", spec.protocol.to_string().to_lowercase(), spec.port),
            };
            let v: Vec<String> = self.services.iter().map(ServicePattern::to_string).collect();
            return Err(format!(
                "may not register service {what} (keys file line {} allows {})",
                self.line,
                v.join(",")
            ));
        }
        Ok(())
    }
}

/// Every agent's line, by agent id.
#[derive(Clone, Debug, Default)]
pub struct KeyTable {
    agents: BTreeMap<String, AgentKey>,
}

impl KeyTable {
    /// An agent's line.
    pub fn get(&self, agent_id: &str) -> Option<&AgentKey> {
        self.agents.get(agent_id)
    }

    /// How many agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Adds (or replaces) an agent's line; for tests and the simulator.
    pub fn insert(&mut self, agent_id: String, key: AgentKey) {
        self.agents.insert(agent_id, key);
    }

    /// Agent ids in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }
}

/// A keys file error: where (1-based line and column) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct KeysError {
    /// The line.
    pub line: usize,
    /// The column of the field at fault.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a keys file (see the module doc). Never panics.
pub fn parse_keys(text: &str) -> Result<KeyTable, KeysError> {
    let mut table = KeyTable::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = split_fields(raw);
        let err = |field: usize, message: String| {
            let column = fields.get(field).map_or(raw.chars().count() + 1, |f| f.0);
            KeysError { line, column, message }
        };
        if fields.len() != 4 {
            let message =
                format!("expected 4 fields `AGENT_ID KEY ADDRESSES SERVICES`, found {}", fields.len());
            return Err(err(fields.len().min(4), message));
        }
        let (id, key) = (fields[0].1, fields[1].1);
        if !wire::valid_agent_id(id) {
            return Err(err(0, format!("agent id {id:?} is not 1 to 64 printable ASCII bytes")));
        }
        if let Some(first) = table.agents.get(id) {
            return Err(err(0, format!("agent {id} already has a line (line {})", first.line)));
        }
        if key.len() < MIN_PSK_LEN {
            let message = format!(
                "the key is {} bytes long; at least {MIN_PSK_LEN} are needed (`feedbackd-master keygen`)",
                key.len()
            );
            return Err(err(1, message));
        }
        let key = Psk::from_file_contents(key.as_bytes()).map_err(|e| err(1, e))?;
        let addresses = parse_list(fields[2].1, "addresses").map_err(|e| err(2, e))?;
        let services = parse_list(fields[3].1, "services").map_err(|e| err(3, e))?;
        table.agents.insert(id.to_owned(), AgentKey { key, addresses, services, line });
    }
    Ok(table)
}

/// A line for the keys file (what `feedbackd-master add-agent` appends).
pub fn format_line(agent_id: &str, key: &str, addresses: &[Cidr], services: &[ServicePattern]) -> String {
    let join = |v: Vec<String>| if v.is_empty() { "*".to_owned() } else { v.join(",") };
    format!(
        "{agent_id} {key} {} {}",
        join(addresses.iter().map(Cidr::to_string).collect()),
        join(services.iter().map(ServicePattern::to_string).collect())
    )
}

/// The fields of a line with their 1-based columns.
fn split_fields(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (col, (i, c)) in line.char_indices().enumerate() {
        match (c == ' ' || c == '\t', start) {
            (true, Some((s, scol))) => {
                out.push((scol, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some((i, col + 1)),
            _ => {}
        }
    }
    if let Some((s, scol)) = start {
        out.push((scol, &line[s..]));
    }
    out
}

fn parse_list<T: FromStr>(field: &str, what: &str) -> Result<Vec<T>, String>
where
    T::Err: fmt::Display,
{
    let mut out = Vec::new();
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("{what}: an empty item in {field:?}"));
        }
        out.push(item.parse().map_err(|e| format!("{what}: {e}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_ipvs::Forwarding;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn spec(protocol: Protocol, port: u16, fwmark: Option<u32>) -> ServiceSpec {
        ServiceSpec { protocol, port, vip: None, fwmark, forwarding: Forwarding::Masq, address: None }
    }

    #[test]
    fn a_file_parses_with_networks_and_services() {
        let text = format!(
            "# id key addresses services\n\nrs1 {KEY} 10.0.0.2 tcp:80,udp:53\n\
             \trs2\t{KEY}x  10.0.1.0/24,2001:db8::/64  fwm:5,*\n"
        );
        let t = parse_keys(&text).unwrap();
        assert_eq!(t.len(), 2);
        let rs1 = t.get("rs1").unwrap();
        assert_eq!(rs1.line, 3);
        assert!(rs1.allows_address("10.0.0.2".parse().unwrap()));
        assert!(!rs1.allows_address("10.0.0.3".parse().unwrap()));
        assert!(rs1.check_claim(&spec(Protocol::Tcp, 80, None), "10.0.0.2".parse().unwrap()).is_ok());
        assert!(rs1.check_claim(&spec(Protocol::Udp, 53, None), "10.0.0.2".parse().unwrap()).is_ok());
        let e = rs1.check_claim(&spec(Protocol::Tcp, 443, None), "10.0.0.2".parse().unwrap()).unwrap_err();
        assert!(e.contains("may not register service tcp:443") && e.contains("tcp:80,udp:53"), "{e}");
        let e = rs1.check_claim(&spec(Protocol::Tcp, 80, None), "10.0.0.9".parse().unwrap()).unwrap_err();
        assert!(e.contains("may not claim address 10.0.0.9") && e.contains("line 3"), "{e}");
        let rs2 = t.get("rs2").unwrap();
        assert!(rs2.allows_address("10.0.1.200".parse().unwrap()));
        assert!(!rs2.allows_address("10.0.2.1".parse().unwrap()));
        assert!(rs2.allows_address("2001:db8::77".parse().unwrap()));
        assert!(!rs2.allows_address("2001:db9::1".parse().unwrap()));
        assert!(rs2.check_claim(&spec(Protocol::Sctp, 9, None), "10.0.1.1".parse().unwrap()).is_ok());
        assert!(t.get("rs3").is_none());
    }

    #[test]
    fn fwmark_patterns_match_only_fwmark_services() {
        let p: ServicePattern = "fwm:5".parse().unwrap();
        assert!(p.allows(&spec(Protocol::Tcp, 0, Some(5))));
        assert!(!p.allows(&spec(Protocol::Tcp, 0, Some(6))));
        assert!(!p.allows(&spec(Protocol::Tcp, 5, None)));
        let p: ServicePattern = "tcp:80".parse().unwrap();
        assert!(!p.allows(&spec(Protocol::Tcp, 80, Some(80))), "a fwmark service is not tcp:80");
    }

    #[test]
    fn cidr_edges() {
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.66".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()), "families never mix");
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!(one.prefix(), 128);
        assert!(one.contains("2001:db8::1".parse().unwrap()));
        assert!(!one.contains("2001:db8::2".parse().unwrap()));
        assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0/".parse::<Cidr>().is_err());
        assert!("host/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("rs1 short 10.0.0.2 *", 1, 5, "at least 16"),
            (&format!("\n\nrs1 {KEY} 10.0.0.2"), 3, 46, "expected 4 fields"),
            (&format!("rs1 {KEY} 10.0.0.2 * extra"), 1, 49, "found 5"),
            (&format!("rs1 {KEY} 10.0.0.300 *"), 1, 38, "addresses: \"10.0.0.300\" is not an IP"),
            (&format!("rs1 {KEY} 10.0.0.2,,10.0.0.3 *"), 1, 38, "empty item"),
            (&format!("rs1 {KEY} 10.0.0.2 http"), 1, 47, "\"http\" is not a service"),
            (&format!("rs1 {KEY} 10.0.0.2 tcp:99999"), 1, 47, "is not a service"),
            (&format!("rs1 {KEY} 10.0.0.2 *\n  rs1 {KEY} 10.0.0.3 *"), 2, 3, "already has a line (line 1)"),
        ];
        for (text, line, column, want) in cases {
            let e = parse_keys(text).unwrap_err();
            assert_eq!((e.line, e.column), (*line, *column), "{text:?}: {e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("{line}:{column}: ")), "{e}");
        }
    }

    #[test]
    fn format_line_reads_back() {
        let addrs = ["10.0.0.2".parse().unwrap(), "10.1.0.0/16".parse().unwrap()];
        let services = ["tcp:80".parse().unwrap(), "fwm:5".parse().unwrap()];
        let line = format_line("rs9", KEY, &addrs, &services);
        assert_eq!(line, format!("rs9 {KEY} 10.0.0.2,10.1.0.0/16 tcp:80,fwm:5"));
        let t = parse_keys(&line).unwrap();
        let a = t.get("rs9").unwrap();
        assert_eq!(a.addresses, addrs);
        assert_eq!(a.services, services);
        assert!(format_line("x", KEY, &addrs, &[]).ends_with(" *"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in ["\u{0}", "a b c d", "é é é é", "# only\n\t\n", "a\u{a0}b c d e", "🦀 🦀 🦀 🦀"]
        {
            let _ = parse_keys(text);
        }
    }
}
