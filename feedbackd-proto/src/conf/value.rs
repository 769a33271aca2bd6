//! The values of `feedbackd-agent.conf` keys. Each parser takes the trimmed text after
//! `=` and returns the value or a message saying what was expected (the caller adds
//! `line N: KEY: `).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::RangeInclusive;
use core::time::Duration;

use super::{Combine, DEFAULT_MASTER_PORT, ModuleKind};
use lvs_ipvs::Forwarding;
use lvs_ipvs::Protocol;

/// `service = NAME`: one word.
pub(super) fn service_name(val: &str) -> Result<String, String> {
    if val.is_empty() {
        return Err("expected a name, e.g. `service = http`".to_owned());
    }
    if val.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') {
        return Err(format!("{val:?} is not one word (no spaces or quotes)"));
    }
    Ok(val.to_owned())
}

/// `agent_id = NAME`: one word of printable ASCII, at most `max_len` bytes (what a
/// Register carries).
pub(super) fn agent_id(val: &str, max_len: usize) -> Result<String, String> {
    if val.is_empty() {
        return Err("expected a name, e.g. `agent_id = web1`".to_owned());
    }
    if val.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') {
        return Err(format!("{val:?} is not one word (no spaces or quotes)"));
    }
    if !val.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{val:?} is not printable ASCII (letters, digits, `-`, `.`, ...)"));
    }
    if val.len() > max_len {
        return Err(format!("{} bytes is longer than {max_len}", val.len()));
    }
    Ok(val.to_owned())
}

/// `key_file = PATH`: the rest of the line, optionally in double quotes.
pub(super) fn path(val: &str) -> Result<String, String> {
    let path = if val.starts_with('"') { unquote(val)? } else { val.to_owned() };
    if path.is_empty() {
        return Err("expected a file name, e.g. `key_file = /etc/feedbackd/key`".to_owned());
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{path:?} holds a control character"));
    }
    Ok(path)
}

/// `director = ADDR[:PORT]`, `[IPV6]:PORT`, a bare IPv6 address or `HOST[:PORT]`: the host
/// (IPv6 without its brackets) and the port.
pub(super) fn director(val: &str) -> Result<(String, u16), String> {
    let expected = || {
        format!(
            "{val:?} is not ADDRESS[:PORT], [IPV6-ADDRESS]:PORT or HOSTNAME[:PORT] \
             (default port {DEFAULT_MASTER_PORT})"
        )
    };
    if val.is_empty() {
        return Err("expected an address, e.g. `director = 192.168.6.1`".to_owned());
    }
    let (host, port) = if let Some(rest) = val.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(expected)?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} in brackets is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(expected)?),
        };
        (host, port)
    } else if val.matches(':').count() >= 2 {
        // Two colons or more: an IPv6 address without a port (a port needs brackets).
        if val.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{val:?} is not an IPv6 address (write [ADDRESS]:PORT to give a port)"));
        }
        (val, None)
    } else {
        match val.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (val, None),
        }
    };
    let port = match port {
        None => DEFAULT_MASTER_PORT,
        Some(p) => parse_port(p).ok_or_else(|| format!("port {p:?} is not a number between 1 and 65535"))?,
    };
    if host.parse::<IpAddr>().is_err() {
        host_name(host).map_err(|why| format!("{}: {why}", expected()))?;
    }
    Ok((host.to_owned(), port))
}

/// Checks a DNS host name: dot-separated labels of letters, digits, `-` and `_`.
fn host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if host.len() > 253 {
        return Err("a host name has at most 253 characters".to_owned());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return Err("not a valid IPv4 address".to_owned());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("a host name is labels of 1 to 63 characters between dots".to_owned());
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("a host name holds only letters, digits, `-`, `_` and dots".to_owned());
        }
    }
    Ok(())
}

/// A port number 1..=65535, decimal digits only.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// `port = N`.
pub(super) fn port(val: &str) -> Result<u16, String> {
    parse_port(val).ok_or_else(|| format!("{val:?} is not a number between 1 and 65535"))
}

/// `protocol = TCP|UDP|SCTP`, any case.
pub(super) fn protocol(val: &str) -> Result<Protocol, String> {
    match val.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(format!("{val:?} is not TCP, UDP or SCTP")),
    }
}

/// `forwarding = ...`: the names ipvsadm, keepalived and the LVS documentation use.
pub(super) fn forwarding(val: &str) -> Result<Forwarding, String> {
    match val.to_ascii_lowercase().as_str() {
        "nat" | "masq" | "masquerading" => Ok(Forwarding::Masq),
        "dr" | "direct" | "route" | "gate" | "gatewaying" | "droute" => Ok(Forwarding::DirectRouting),
        "tun" | "tunnel" | "ipip" => Ok(Forwarding::Tunnel),
        _ => Err(format!(
            "{val:?} is not NAT (or masq, masquerading), DR (or direct, route, gate, gatewaying, \
             droute) or TUN (or tunnel, ipip)"
        )),
    }
}

/// `vip = ADDR`, `address = ADDR`.
pub(super) fn ip(val: &str) -> Result<IpAddr, String> {
    val.parse::<IpAddr>().map_err(|_| format!("{val:?} is not an IPv4 or IPv6 address"))
}

/// `fwmark = N`, decimal or `0x` hexadecimal, not 0 (IPVS's "no mark").
pub(super) fn fwmark(val: &str) -> Result<u32, String> {
    let parsed = match val.strip_prefix("0x").or_else(|| val.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !val.is_empty() && val.bytes().all(|b| b.is_ascii_digit()) => val.parse::<u32>().ok(),
        None => None,
    };
    parsed
        .filter(|&m| m != 0)
        .ok_or_else(|| format!("{val:?} is not a mark between 1 and 4294967295 (decimal or 0x hexadecimal)"))
}

/// `combine = min|mean|product`, any case.
pub(super) fn combine(val: &str) -> Result<Combine, String> {
    match val.to_ascii_lowercase().as_str() {
        "min" => Ok(Combine::Min),
        "mean" => Ok(Combine::Mean),
        "product" => Ok(Combine::Product),
        _ => Err(format!("{val:?} is not min, mean or product")),
    }
}

/// The module names, as `module =` and error messages write them.
const MODULES: [(&str, ModuleKind); 8] = [
    ("cpuload", ModuleKind::Cpuload),
    ("loadavg", ModuleKind::Loadavg),
    ("memory", ModuleKind::Memory),
    ("psi", ModuleKind::Psi),
    ("connections", ModuleKind::Connections),
    ("command", ModuleKind::Command),
    ("file", ModuleKind::File),
    ("prequal", ModuleKind::Prequal),
];

/// `module = NAME[.so] [KEY=VALUE ...]`: the module and its settings (keys in lower case;
/// a value may be in double quotes, where `\"` and `\\` are escapes).
pub(super) fn module(val: &str) -> Result<(ModuleKind, Vec<(String, String)>), String> {
    let words = words(val)?;
    let Some((name, settings_words)) = words.split_first() else {
        return Err("expected a module name, e.g. `module = cpuload.so`".to_owned());
    };
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_suffix(".so").unwrap_or(&lower);
    let Some(&(_, kind)) = MODULES.iter().find(|(n, _)| *n == bare) else {
        let names: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown module {name:?}; expected one of {} (`.so` optional)",
            names.join(", ")
        ));
    };
    let mut settings: Vec<(String, String)> = Vec::new();
    for word in settings_words {
        let Some((key, raw)) = word.split_once('=') else {
            return Err(format!("setting {word:?} is not KEY=VALUE"));
        };
        let valid_key = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_key {
            return Err(format!("setting {word:?}: the key {key:?} is not letters, digits and `_`"));
        }
        let key = key.to_ascii_lowercase();
        if settings.iter().any(|(k, _)| *k == key) {
            return Err(format!("setting `{key}` given twice"));
        }
        settings.push((key, unquote(raw)?));
    }
    Ok((kind, settings))
}

/// Splits at whitespace outside double quotes; the words keep their quotes.
fn words(val: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in val.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(&val[s..i]);
            }
            continue;
        } else if c == '"' {
            quoted = true;
        }
        start.get_or_insert(i);
    }
    if quoted {
        return Err(format!("unterminated double quote in {val:?}"));
    }
    if let Some(s) = start {
        out.push(&val[s..]);
    }
    Ok(out)
}

/// Removes double quotes (anywhere in the text, as a shell does) and their `\"`, `\\`
/// escapes; another backslash stays as it is.
fn unquote(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => match chars.next() {
                Some(next @ ('"' | '\\')) => out.push(next),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated double quote in {raw:?}"));
    }
    Ok(out)
}

/// `1s`, `500ms`, `1.5s`, `2m`, `1h` or a bare number of seconds (`2`, `0.5`).
pub(super) fn duration(val: &str) -> Result<Duration, String> {
    parse_duration(val).ok_or_else(|| format!("{val:?} is not a duration such as 1s, 500ms or 2 (seconds)"))
}

fn parse_duration(val: &str) -> Option<Duration> {
    let split = val.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(val.len());
    let (number, unit) = val.split_at(split);
    let unit_ns: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || whole.len() > 20 || frac.len() > 9 || frac.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_ns = if frac.is_empty() {
        0
    } else {
        let digits: u128 = frac.parse().ok()?;
        digits.checked_mul(unit_ns)? / 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?
    };
    let nanos = whole.checked_mul(unit_ns)?.checked_add(frac_ns)?;
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

/// `interval_ms = N`: whole milliseconds.
pub(super) fn millis(val: &str) -> Result<Duration, String> {
    let ms = (!val.is_empty() && val.len() <= 20 && val.bytes().all(|b| b.is_ascii_digit()))
        .then(|| val.parse::<u64>().ok())
        .flatten();
    ms.map(Duration::from_millis).ok_or_else(|| format!("{val:?} is not a whole number of milliseconds"))
}

/// Checks a duration against bounds in milliseconds.
pub(super) fn check_range(d: Duration, range_ms: RangeInclusive<u64>) -> Result<(), String> {
    let (lo, hi) = (Duration::from_millis(*range_ms.start()), Duration::from_millis(*range_ms.end()));
    if d < lo || d > hi {
        return Err(format!("{} is outside {}..{}", show(d), show(lo), show(hi)));
    }
    Ok(())
}

/// A duration as the grammar writes it (`1h`, `2m`, `1s`, `500ms`); nanoseconds when it
/// is not whole milliseconds.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    let whole_ms = d.subsec_nanos() % 1_000_000 == 0;
    match ms {
        _ if !whole_ms => format!("{}ns", d.as_nanos()),
        _ if ms > 0 && ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms > 0 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms > 0 && ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}
