//! The words of ldirectord.cf: `KEY = VALUE`, numbers, ports, addresses, forwarding
//! methods, each refused as ldirectord's `read_config` refuses it, at its column.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::Forwarding;

use crate::import::ImportError;

/// An error at `line` (1-based) and 1-based `column`.
pub(super) fn err(path: &str, line: usize, column: usize, message: impl Into<String>) -> ImportError {
    ImportError::at(path, line, column, message)
}

/// A line split as `KEY = VALUE`: the key, the value and the value's column.
pub(super) fn key_value<'l>(
    path: &str,
    no: usize,
    line: &'l str,
) -> Result<(&'l str, &'l str, usize), ImportError> {
    let indent = line.len() - line.trim_start().len();
    let Some(eq) = line.find('=') else {
        return Err(err(path, no, indent + 1, format!("expected KEY = VALUE, got {:?}", line.trim())));
    };
    let key = line[..eq].trim();
    let rest = &line[eq + 1..];
    let value = rest.trim();
    let column = eq + 2 + (rest.len() - rest.trim_start().len());
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(err(path, no, indent + 1, format!("expected a directive name before '=', got {key:?}")));
    }
    Ok((key, value, column))
}

/// A whole number `0..=max`.
pub(super) fn number(
    path: &str,
    no: usize,
    col: usize,
    v: &str,
    what: &str,
    max: u64,
) -> Result<u64, ImportError> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(n) => Err(err(path, no, col, format!("{what} {n} is too large (at most {max})"))),
        Err(_) => Err(err(path, no, col, format!("{what}: expected a whole number, got {v:?}"))),
    }
}

/// The longest time lvsim takes from a file [s] (a year; ldirectord has no limit).
pub(super) const MAX_SECONDS: u64 = 365 * 24 * 3600;

pub(super) fn yes_no(path: &str, no: usize, col: usize, key: &str, v: &str) -> Result<bool, ImportError> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(err(path, no, col, format!("{key} must be 'yes' or 'no', got {v:?}"))),
    }
}

/// A port: a number 0..=65535 or one of the service names ldirectord knows.
pub(super) fn port(path: &str, no: usize, col: usize, v: &str) -> Result<u16, ImportError> {
    const NAMES: [(&str, u16); 19] = [
        ("ftp", 21),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("nntp", 119),
        ("imap", 143),
        ("imap2", 143),
        ("ldap", 389),
        ("https", 443),
        ("submission", 587),
        ("ldaps", 636),
        ("imaps", 993),
        ("pop3s", 995),
        ("radius", 1812),
        ("mysql", 3306),
        ("sip", 5060),
        ("postgresql", 5432),
        ("http-alt", 8080),
    ];
    if let Some((_, p)) = NAMES.iter().find(|(n, _)| *n == v) {
        return Ok(*p);
    }
    let n = number(path, no, col, v, "port", 65535)?;
    Ok(n as u16)
}

/// `ADDRESS[:PORT]`, `[V6][:PORT]`: the address and the port if given.
pub(super) fn address_port(
    path: &str,
    no: usize,
    col: usize,
    v: &str,
    v6: bool,
) -> Result<(IpAddr, Option<u16>), ImportError> {
    let (addr, port_text) = if let Some(rest) = v.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(err(path, no, col, format!("{v:?}: no ']' after the IPv6 address")));
        };
        let a: Ipv6Addr = rest[..end]
            .parse()
            .map_err(|_| err(path, no, col + 1, format!("{:?} is not an IPv6 address", &rest[..end])))?;
        let tail = &rest[end + 1..];
        let p = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(err(path, no, col, format!("{v:?}: expected :PORT after ']'"))),
        };
        (IpAddr::V6(a), p)
    } else {
        let (a, p) = match v.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        };
        let a: Ipv4Addr = a.parse().map_err(|_| {
            err(
                path,
                no,
                col,
                format!("{a:?} is not an IPv4 address (lvsim imports addresses, not host names)"),
            )
        })?;
        (IpAddr::V4(a), p)
    };
    if addr.is_ipv6() != v6 {
        let want = if v6 {
            "an IPv6 address here (virtual6, real6, fallback6)"
        } else {
            "an IPv4 address here: an IPv6 one needs virtual6, real6, fallback6"
        };
        return Err(err(path, no, col, format!("{v:?}: {want}")));
    }
    let port = port_text.map(|p| port(path, no, col + v.len() - p.len(), p)).transpose()?;
    Ok((addr, port))
}

/// ldirectord's forwarding words.
pub(super) fn forwarding(path: &str, no: usize, col: usize, w: &str) -> Result<Forwarding, ImportError> {
    match w {
        "gate" => Ok(Forwarding::DirectRouting),
        "masq" => Ok(Forwarding::Masq),
        "ipip" => Ok(Forwarding::Tunnel),
        _ => Err(err(path, no, col, format!("forward method must be gate, masq or ipip, got {w:?}"))),
    }
}
