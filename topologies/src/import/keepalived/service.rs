//! `virtual_server` blocks: the service, its real servers, its sorry server and the
//! checkers, as a [`Service`] with a keepalived [`HealthCheck`].
//!
//! The simulated check is one per service; keepalived's are per real server. The first
//! real server's checker sets the check (a later one that differs is a [`super::Note`]).
//! `TCP_CHECK` and `UDP_CHECK` are a connect check, `HTTP_GET`/`SSL_GET` a negotiate
//! check (its `url`'s `path`, `digest` and `regex`); `MISC_CHECK` and the other checkers
//! are notes. A service with no checker has no check: keepalived then keeps every real
//! server, as the simulation does without a check.

use std::net::{IpAddr, Ipv6Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedFlag, SchedulerKind};

use super::parse::{Comment, Node, Word};
use super::{Cx, with_defaults};
use crate::export::keepalived_comments::NO_PORT;
use crate::{CheckKind, Checker, Fallback, Flag, HealthCheck, RealServer, Server, Service};

use super::super::ImportError;

/// A checker block as read.
#[derive(Clone, Debug, Default, PartialEq)]
struct Probe {
    /// `HTTP_GET`/`SSL_GET`: the page, digest and regex; `None`: a connect check.
    http: Option<(String, Option<String>, Option<String>)>,
    udp: bool,
    timeout_s: Option<f64>,
    retries: Option<u32>,
    delay_before_retry_s: Option<f64>,
}

/// A real server as read.
struct Real {
    addr: IpAddr,
    port: u16,
    method: Option<Forwarding>,
    weight: u32,
    upper: u32,
    lower: u32,
    inhibit: bool,
    /// Its checker and that checker's line.
    probe: Option<(Probe, usize)>,
    /// lvsim's "no port to check" comment: checked, but not writable as a checker.
    no_port: bool,
    line: usize,
}

/// One `virtual_server`; `None` for a kind lvsim does not model (a group), with a note.
pub(super) fn virtual_server(
    cx: &mut Cx<'_>,
    n: &Node,
    servers: &mut Vec<Server>,
    comments: &[Comment],
) -> Result<Option<Service>, ImportError> {
    let mut svc = Service::default();
    let first = cx.arg(n, 0, "an address and a port, `fwmark MARK` or `group NAME`")?;
    match first.text.as_str() {
        "group" => {
            cx.note(
                n.key.line,
                "virtual_server group: lvsim imports no virtual_server_group; write its services out",
            );
            return Ok(None);
        }
        "fwmark" => svc.fwmark = Some(cx.num(cx.arg(n, 1, "a mark")?, "a firewall mark", 1u32, u32::MAX)?),
        _ => {
            svc.vip = Some(cx.addr(first)?);
            svc.port = cx.num(cx.arg(n, 1, "a port")?, "a port", 0u16, u16::MAX)?;
        }
    }
    let mut kind: Option<Forwarding> = None;
    let mut delay_loop = None;
    let mut protocol = None;
    let mut sorry: Option<(IpAddr, u16, usize)> = None;
    let mut sorry_method = None;
    let mut defaults = Probe::default();
    let mut reals = Vec::new();
    for s in n.block.as_deref().unwrap_or_default() {
        let key = s.key.text.as_str();
        match key {
            "delay_loop" => delay_loop = Some(cx.secs(cx.arg(s, 0, "seconds")?, false)?),
            "lb_algo" | "lvs_sched" => {
                let w = cx.arg(s, 0, "a scheduler")?;
                svc.scheduler = w.text.parse::<SchedulerKind>().map_err(|e| cx.err(w, e.to_string()))?;
            }
            "lb_kind" | "lvs_method" => kind = Some(method(cx, cx.arg(s, 0, "NAT, DR or TUN")?)?),
            "persistence_timeout" => {
                let w = cx.arg(s, 0, "seconds")?;
                svc.persistence_s =
                    Some(f64::from(cx.num(w, "a persistence timeout [s]", 1u32, i32::MAX as u32)?));
            }
            "persistence_granularity" => svc.netmask = Some(granularity(cx, cx.arg(s, 0, "a netmask")?)?),
            "protocol" => {
                let w = cx.arg(s, 0, "TCP, UDP or SCTP")?;
                protocol = Some(match w.text.as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    _ => return Err(cx.err(w, format!("{:?}: protocol is TCP, UDP or SCTP", w.text))),
                });
            }
            "ops" => svc.flags.push(Flag::OnePacket),
            "sorry_server" => {
                let a = cx.addr(cx.arg(s, 0, "an address and a port")?)?;
                let p = cx.num(cx.arg(s, 1, "a port")?, "a port", 0u16, u16::MAX)?;
                sorry = Some((a, p, s.key.line));
            }
            "sorry_server_lvs_method" => sorry_method = Some(method(cx, cx.arg(s, 0, "NAT, DR or TUN")?)?),
            "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" => {
                timing(cx, s, &mut defaults)?;
            }
            "real_server" => {
                let r = real_server(cx, s, comments, &defaults)?;
                if reals.iter().any(|x: &Real| x.addr == r.addr) {
                    cx.note(
                        s.key.line,
                        format!("real server {} listed twice in this service: the second is ignored", r.addr),
                    );
                } else {
                    reals.push(r);
                }
            }
            k if SchedFlag::from_name(k).is_some() => {
                svc.flags.push(Flag::from_sched_flag(SchedFlag::from_name(k).expect("just found")));
            }
            _ => cx.ignored(s, "virtual_server: "),
        }
    }
    let kind = kind.unwrap_or_else(|| {
        cx.note(n.key.line, "virtual_server without lb_kind: keepalived's default, NAT");
        Forwarding::Masq
    });
    let udp_checked = reals.iter().any(|r| r.probe.as_ref().is_some_and(|(p, _)| p.udp));
    svc.protocol = match (protocol, svc.fwmark) {
        (Some(p), None) => p,
        (_, Some(_)) if udp_checked => Protocol::Udp,
        (_, Some(_)) => Protocol::Tcp,
        (None, None) => {
            cx.note(
                n.key.line,
                "virtual_server without protocol: taken as TCP (keepalived's own default is UDP)",
            );
            Protocol::Tcp
        }
    };
    let checked =
        reals.iter().any(|r| r.probe.is_some() || r.no_port) || (reals.is_empty() && delay_loop.is_some());
    let mut check = checked.then(|| health_check(cx, &reals, delay_loop));
    if let Some(e) = check.as_ref().and_then(|c| c.check("check").err()) {
        cx.note(
            n.key.line,
            format!("the checker cannot be simulated ({}): imported without a check", e.message),
        );
        check = None;
    }
    match (sorry, check.as_mut()) {
        (Some((addr, port, _)), Some(c)) => {
            let forwarding = sorry_method.unwrap_or(kind);
            let port = (port != svc.port).then_some(port);
            c.fallback = Some(Fallback { server: server_named(servers, addr), port, forwarding });
        }
        (Some((_, _, line)), None) => {
            cx.note(line, "sorry_server without a checker: keepalived never uses it")
        }
        (None, _) => {}
    }
    for r in reals {
        let forwarding = r.method.unwrap_or(kind);
        let rs = RealServer {
            server: server_named(servers, r.addr),
            port: (r.port != svc.port).then_some(r.port),
            forwarding,
            weight: r.weight,
            upper: r.upper,
            lower: r.lower,
            tunnel: None,
        };
        if svc.fwmark.is_none() && forwarding != Forwarding::Masq && r.port != svc.port {
            cx.note(
                r.line,
                format!(
                    "a {} real server takes the service's port {}, not {}",
                    forwarding_word(forwarding),
                    svc.port,
                    r.port
                ),
            );
        }
        svc.real_servers.push(rs);
    }
    svc.check = check;
    Ok(Some(svc))
}

fn forwarding_word(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "NAT",
        Forwarding::Tunnel => "TUN",
        Forwarding::DirectRouting | Forwarding::Local => "DR",
    }
}

/// `NAT`, `DR` or `TUN`.
fn method(cx: &Cx<'_>, w: &Word) -> Result<Forwarding, ImportError> {
    match w.text.as_str() {
        "NAT" => Ok(Forwarding::Masq),
        "DR" => Ok(Forwarding::DirectRouting),
        "TUN" => Ok(Forwarding::Tunnel),
        _ => Err(cx.err(w, format!("{:?}: the forwarding method is NAT, DR or TUN", w.text))),
    }
}

/// An IPv4 netmask, or (IPv6) a prefix length 1..=128 as the mask.
fn granularity(cx: &Cx<'_>, w: &Word) -> Result<IpAddr, ImportError> {
    if let Ok(a) = w.text.parse::<std::net::Ipv4Addr>() {
        return Ok(IpAddr::V4(a));
    }
    let bits: u32 = cx.num(w, "a persistence granularity (IPv4 netmask or IPv6 prefix length)", 1u32, 128)?;
    Ok(IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - bits))))
}

/// The name of the server at `addr`, added as `rsN` if new.
fn server_named(servers: &mut Vec<Server>, addr: IpAddr) -> String {
    if let Some(s) = servers.iter().find(|s| s.address == addr) {
        return s.name.clone();
    }
    let name = format!("rs{}", servers.len() + 1);
    servers.push(with_defaults(&format!("(name: {name:?}, address: \"{addr}\")")));
    name
}

/// `connect_timeout`, `retry` (`nb_get_retry`), `delay_before_retry` into `p`.
fn timing(cx: &mut Cx<'_>, s: &Node, p: &mut Probe) -> Result<(), ImportError> {
    let w = cx.arg(s, 0, "a value")?;
    match s.key.text.as_str() {
        "connect_timeout" => p.timeout_s = Some(cx.secs(w, false)?),
        "retry" | "nb_get_retry" => p.retries = Some(cx.num(w, "a retry count", 0u32, 1_000_000)?),
        _ => p.delay_before_retry_s = Some(cx.secs(w, true)?),
    }
    Ok(())
}

/// One `real_server`.
fn real_server(
    cx: &mut Cx<'_>,
    n: &Node,
    comments: &[Comment],
    defaults: &Probe,
) -> Result<Real, ImportError> {
    let addr = cx.addr(cx.arg(n, 0, "an address")?)?;
    let port = match n.args.get(1) {
        Some(w) => cx.num(w, "a port", 0u16, u16::MAX)?,
        None => 0,
    };
    let no_port_text = NO_PORT.trim_start_matches("! ");
    let no_port = comments.iter().any(|c| c.line > n.key.line && c.line < n.end && c.text == no_port_text);
    let mut r = Real {
        addr,
        port,
        method: None,
        weight: 1,
        upper: 0,
        lower: 0,
        inhibit: false,
        probe: None,
        no_port,
        line: n.key.line,
    };
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "weight" => r.weight = cx.num(cx.arg(s, 0, "a weight")?, "a weight", 0u32, 65_535)?,
            "lvs_method" => {
                r.method = Some(method(cx, cx.arg(s, 0, "NAT, DR or TUN")?)?);
                if s.args.len() > 1 {
                    cx.note(s.key.line, "lvs_method's tunnel options: not imported (ipip assumed)");
                }
            }
            "uthreshold" => {
                r.upper =
                    cx.num(cx.arg(s, 0, "a number")?, "a connection threshold", 0u32, i32::MAX as u32)?
            }
            "lthreshold" => {
                r.lower =
                    cx.num(cx.arg(s, 0, "a number")?, "a connection threshold", 0u32, i32::MAX as u32)?
            }
            "inhibit_on_failure" => {
                r.inhibit = s.args.first().is_none_or(|w| w.text != "false" && w.text != "off")
            }
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" => {
                let p = checker(cx, s, defaults)?;
                if r.probe.is_some() {
                    cx.note(
                        s.key.line,
                        "a second checker: lvsim's check is one per service, this one is ignored",
                    );
                } else {
                    r.probe = Some((p, s.key.line));
                }
            }
            "MISC_CHECK" | "SMTP_CHECK" | "DNS_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => cx.note(
                s.key.line,
                format!(
                    "{}: lvsim simulates TCP_CHECK, UDP_CHECK and HTTP_GET/SSL_GET checks only, not this one",
                    s.key.text
                ),
            ),
            _ => cx.ignored(s, "real_server: "),
        }
    }
    Ok(r)
}

/// A checker block.
fn checker(cx: &mut Cx<'_>, n: &Node, defaults: &Probe) -> Result<Probe, ImportError> {
    let mut p = defaults.clone();
    p.udp = n.key.text == "UDP_CHECK";
    let http = matches!(n.key.text.as_str(), "HTTP_GET" | "SSL_GET");
    let mut urls = Vec::new();
    let mut reply = false;
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" => timing(cx, s, &mut p)?,
            "connect_port" => {
                cx.num(cx.arg(s, 0, "a port")?, "a port", 1u16, u16::MAX)?;
            }
            "url" if http => urls.push(url(cx, s)?),
            "require_reply" if p.udp => reply = true,
            _ => cx.ignored(s, &format!("{}: ", n.key.text)),
        }
    }
    if p.udp && !reply {
        cx.note(
            n.key.line,
            "UDP_CHECK without require_reply counts silence as success; the simulated check needs an answer",
        );
    }
    if http {
        if urls.len() > 1 {
            cx.note(n.key.line, "several url blocks: the simulated check requests the first only");
        }
        let first = urls.into_iter().next();
        p.http = Some(first.unwrap_or_else(|| ("/".to_owned(), None, None)));
    }
    Ok(p)
}

/// A `url` block: its path, digest and regex.
fn url(cx: &mut Cx<'_>, n: &Node) -> Result<(String, Option<String>, Option<String>), ImportError> {
    let (mut path, mut digest, mut regex) = ("/".to_owned(), None, None);
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "path" => path = cx.arg(s, 0, "a path")?.text.clone(),
            "digest" => {
                let w = cx.arg(s, 0, "an MD5 digest")?;
                if !(w.text.len() == 32 && w.text.bytes().all(|b| b.is_ascii_hexdigit())) {
                    return Err(cx.err(w, format!("{:?} is not an MD5 digest (32 hex digits)", w.text)));
                }
                digest = Some(w.text.clone());
            }
            "regex" => regex = Some(cx.arg(s, 0, "a regular expression")?.text.clone()),
            "status_code" => {
                if s.args.len() != 1 || s.args[0].text != "200" {
                    cx.note(s.key.line, "status_code other than 200: the simulated check takes a healthy server's page as matching");
                }
            }
            _ => cx.ignored(s, "url: "),
        }
    }
    Ok((path, digest, regex))
}

/// The service's check, from its first checked real server.
fn health_check(cx: &mut Cx<'_>, reals: &[Real], delay_loop: Option<f64>) -> HealthCheck {
    let first = reals.iter().find(|r| r.probe.is_some());
    let probe = first.and_then(|r| r.probe.as_ref());
    for r in reals {
        if let (Some((p, line)), Some((q, _))) = (&r.probe, probe)
            && p != q
        {
            cx.note(
                *line,
                "this checker differs from the first real server's: lvsim's check is one per service",
            );
        }
    }
    let quiescent = reals.first().is_some_and(|r| r.inhibit);
    if reals.iter().any(|r| r.inhibit != quiescent) {
        cx.note(
            reals[0].line,
            "inhibit_on_failure on some real servers only: the first one's is the service's",
        );
    }
    let p = probe.map(|(p, _)| p.clone()).unwrap_or_default();
    let kind = match &p.http {
        None => CheckKind::Connect,
        Some((path, digest, regex)) => {
            let mut k: CheckKind = with_defaults("Negotiate()");
            if let CheckKind::Negotiate { request, receive, digest: d, .. } = &mut k {
                request.clone_from(path);
                receive.clone_from(regex);
                d.clone_from(digest);
            }
            k
        }
    };
    HealthCheck {
        checker: Checker::Keepalived,
        kind,
        interval_s: delay_loop,
        timeout_s: p.timeout_s,
        retries: p.retries,
        delay_before_retry_s: p.delay_before_retry_s,
        quiescent: quiescent.then_some(true),
        fallback: None,
    }
}
