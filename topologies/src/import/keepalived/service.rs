//! `virtual_server` blocks: the service, its real servers, its sorry server and the
//! checkers, as a [`Service`] with a keepalived [`HealthCheck`].
//!
//! The simulated check is one per service; keepalived's are per real server. The first
//! real server's checker sets the check (a later one that differs is a [`super::Note`]).
//! `TCP_CHECK` and `UDP_CHECK` are a connect check, `HTTP_GET`/`SSL_GET` a negotiate
//! check (its `url`'s `path`, `digest` and `regex`); `MISC_CHECK` and the other checkers
//! are notes. A service with no checker has no check: keepalived then keeps every real
//! server, as the simulation does without a check.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedFlag, SchedulerKind};

use super::parse::{Comment, Node, Word, comments_in};
use super::{Cx, with_defaults};
use crate::export::keepalived_comments::{NO_PORT, NO_SCTP};
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
    /// lvsim's "no port to check" or "no SCTP checker" comment: checked, but not writable
    /// as a keepalived checker.
    no_port: bool,
    line: usize,
}

/// What a `virtual_server` block says besides the service's own fields.
#[derive(Default)]
struct Body {
    kind: Option<Forwarding>,
    delay_loop: Option<f64>,
    protocol: Option<Protocol>,
    /// `sorry_server`: address, port, line.
    sorry: Option<(IpAddr, u16, usize)>,
    sorry_method: Option<Forwarding>,
    /// `connect_timeout`, `retry`, `delay_before_retry` for every checker.
    defaults: Probe,
    reals: Vec<Real>,
    /// The line of each of the service's flags.
    flag_lines: Vec<usize>,
    /// The real servers' addresses, to tell one listed twice.
    addrs: BTreeSet<IpAddr>,
    /// `lb_algo` was given.
    scheduled: bool,
}

/// One `virtual_server`; `None` for a kind lvsim does not model (a group), with a note.
pub(super) fn virtual_server(
    cx: &mut Cx<'_>,
    n: &Node,
    servers: &mut Servers,
    comments: &[Comment],
) -> Result<Option<Service>, ImportError> {
    let mut svc = Service::default();
    if !service_key(cx, n, &mut svc)? {
        return Ok(None);
    }
    let mut b = Body::default();
    for s in n.block.as_deref().unwrap_or_default() {
        statement(cx, s, &mut svc, &mut b, comments)?;
    }
    if svc.vip.is_some() && svc.port == 0 && svc.persistence_s.is_none() {
        return Err(cx.err(&n.args[1], "port 0 (every port) needs persistence_timeout, as IPVS does"));
    }
    // ipvsadm refuses another scheduler's flag (the kernel would take its bit as that
    // scheduler's own flag).
    let mut k = 0;
    svc.flags.retain(|f| {
        let line = b.flag_lines[k];
        k += 1;
        match f.sched_flag().and_then(SchedFlag::scheduler) {
            Some(own) if own != svc.scheduler => {
                let (f, s) = (f.sched_flag().map_or("", SchedFlag::name), svc.scheduler.name());
                cx.note(line, format!("{f} is a flag of {}, not of {s}: left out", own.name()));
                false
            }
            _ => true,
        }
    });
    if !b.scheduled {
        cx.note(n.key.line, "virtual_server without lb_algo: keepalived's default, wlc");
        svc.scheduler = SchedulerKind::Wlc;
    }
    let kind = b.kind.unwrap_or_else(|| {
        cx.note(n.key.line, "virtual_server without lb_kind: keepalived's default, NAT");
        Forwarding::Masq
    });
    let udp_checked = b.reals.iter().any(|r| r.probe.as_ref().is_some_and(|(p, _)| p.udp));
    svc.protocol = match (b.protocol, svc.fwmark) {
        (Some(p), None) => p,
        (_, Some(_)) if udp_checked => Protocol::Udp,
        (_, Some(_)) => Protocol::Tcp,
        (None, None) => {
            cx.note(n.key.line, "virtual_server without protocol: keepalived's default, UDP (it warns)");
            Protocol::Udp
        }
    };
    let checked = b.reals.iter().any(|r| r.probe.is_some() || r.no_port)
        || (b.reals.is_empty() && b.delay_loop.is_some());
    let mut check = checked.then(|| health_check(cx, &b.reals, b.delay_loop));
    if let Some(e) = check.as_ref().and_then(|c| c.check("check").err()) {
        let msg = format!("the checker cannot be simulated ({}): imported without a check", e.message);
        cx.note(n.key.line, msg);
        check = None;
    }
    match (b.sorry, check.as_mut()) {
        (Some((addr, port, _)), Some(c)) => {
            let forwarding = b.sorry_method.unwrap_or(kind);
            let port = (port != svc.port).then_some(port);
            c.fallback = Some(Fallback { server: servers.named(addr), port, forwarding });
        }
        (Some((_, _, line)), None) => {
            cx.note(line, "sorry_server without a checker: keepalived never uses it")
        }
        (None, _) => {}
    }
    add_real_servers(cx, &mut svc, b.reals, kind, servers);
    svc.check = check;
    Ok(Some(svc))
}

/// `virtual_server VIP PORT | fwmark N`; `false` (with a note) for `group NAME`.
fn service_key(cx: &mut Cx<'_>, n: &Node, svc: &mut Service) -> Result<bool, ImportError> {
    let first = cx.arg(n, 0, "an address and a port, `fwmark MARK` or `group NAME`")?;
    match first.text.as_str() {
        "group" => {
            cx.note(
                n.key.line,
                "virtual_server group: lvsim imports no virtual_server_group; write its services out",
            );
            return Ok(false);
        }
        "fwmark" => svc.fwmark = Some(cx.num(cx.arg(n, 1, "a mark")?, "a firewall mark", 1u32, u32::MAX)?),
        _ => {
            svc.vip = Some(cx.addr(first)?);
            svc.port = cx.num(cx.arg(n, 1, "a port")?, "a port", 0u16, u16::MAX)?;
        }
    }
    Ok(true)
}

/// One statement of a `virtual_server` block.
fn statement(
    cx: &mut Cx<'_>,
    s: &Node,
    svc: &mut Service,
    b: &mut Body,
    comments: &[Comment],
) -> Result<(), ImportError> {
    match s.key.text.as_str() {
        "delay_loop" => b.delay_loop = Some(cx.secs(cx.arg(s, 0, "seconds")?, false)?),
        "lb_algo" | "lvs_sched" => {
            let w = cx.arg(s, 0, "a scheduler")?;
            svc.scheduler = w.text.parse::<SchedulerKind>().map_err(|e| cx.err(w, e.to_string()))?;
            b.scheduled = true;
        }
        "lb_kind" | "lvs_method" => b.kind = Some(method(cx, cx.arg(s, 0, "NAT, DR or TUN")?)?),
        "persistence_timeout" => {
            let w = cx.arg(s, 0, "seconds")?;
            // IPVS's bound: 31 days.
            let p = cx.num(w, "a persistence timeout [s]", 1u32, 2_678_400)?;
            svc.persistence_s = Some(f64::from(p));
        }
        "persistence_granularity" => {
            svc.netmask = Some(granularity(cx, cx.arg(s, 0, "a netmask")?, svc.vip)?);
        }
        "protocol" => {
            let w = cx.arg(s, 0, "TCP, UDP or SCTP")?;
            b.protocol = Some(match w.text.as_str() {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => return Err(cx.err(w, format!("{:?}: protocol is TCP, UDP or SCTP", w.text))),
            });
        }
        "ops" => {
            svc.flags.push(Flag::OnePacket);
            b.flag_lines.push(s.key.line);
        }
        "sorry_server" => {
            let a = cx.addr(cx.arg(s, 0, "an address and a port")?)?;
            let p = cx.num(cx.arg(s, 1, "a port")?, "a port", 0u16, u16::MAX)?;
            b.sorry = Some((a, p, s.key.line));
        }
        "sorry_server_lvs_method" => b.sorry_method = Some(method(cx, cx.arg(s, 0, "NAT, DR or TUN")?)?),
        "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" => {
            timing(cx, s, &mut b.defaults)?
        }
        "real_server" => {
            let r = real_server(cx, s, comments, &b.defaults)?;
            if !b.addrs.insert(r.addr) {
                let msg =
                    format!("real server {} listed twice in this service: the second is ignored", r.addr);
                cx.note(s.key.line, msg);
            } else {
                b.reals.push(r);
            }
        }
        k => match SchedFlag::from_name(k) {
            Some(f) => {
                svc.flags.push(Flag::from_sched_flag(f));
                b.flag_lines.push(s.key.line);
            }
            None => cx.ignored(s, "virtual_server: "),
        },
    }
    Ok(())
}

/// The real servers, named, into the service.
fn add_real_servers(
    cx: &mut Cx<'_>,
    svc: &mut Service,
    reals: Vec<Real>,
    kind: Forwarding,
    servers: &mut Servers,
) {
    for r in reals {
        let forwarding = r.method.unwrap_or(kind);
        if svc.fwmark.is_none() && forwarding != Forwarding::Masq && r.port != svc.port {
            let (w, p) = (forwarding_word(forwarding), svc.port);
            cx.note(r.line, format!("a {w} real server takes the service's port {p}, not {}", r.port));
        }
        svc.real_servers.push(RealServer {
            server: servers.named(r.addr),
            port: (r.port != svc.port).then_some(r.port),
            forwarding,
            weight: r.weight,
            upper: r.upper,
            lower: r.lower,
            tunnel: None,
        });
    }
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

/// An IPv4 netmask (ones then zeros, for an IPv4 or firewall-mark service), or (IPv6) a
/// prefix length 1..=128 as the mask.
fn granularity(cx: &Cx<'_>, w: &Word, vip: Option<IpAddr>) -> Result<IpAddr, ImportError> {
    if let Ok(a) = w.text.parse::<std::net::Ipv4Addr>() {
        let bits = u32::from(a);
        if bits.leading_ones() + bits.trailing_zeros() < 32 || vip.is_some_and(|v| v.is_ipv6()) {
            return Err(cx.err(w, format!("{a} is not a netmask of the service's family")));
        }
        return Ok(IpAddr::V4(a));
    }
    if vip.is_some_and(|v| v.is_ipv4()) {
        return Err(cx.err(w, format!("{:?}: an IPv4 service's granularity is a netmask", w.text)));
    }
    let bits: u32 = cx.num(w, "a persistence granularity (IPv4 netmask or IPv6 prefix length)", 1u32, 128)?;
    Ok(IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - bits))))
}

/// The servers the files name, by address (`rs1`, `rs2`, ... in order of appearance).
#[derive(Default)]
pub(super) struct Servers {
    pub list: Vec<Server>,
    by_addr: BTreeMap<IpAddr, usize>,
    /// A server with the scenario format's defaults.
    template: Option<Server>,
}

impl Servers {
    /// The name of the server at `addr`, added if new.
    fn named(&mut self, addr: IpAddr) -> String {
        if let Some(&k) = self.by_addr.get(&addr) {
            return self.list[k].name.clone();
        }
        let mut s = self
            .template
            .get_or_insert_with(|| with_defaults("(name: \"rs\", address: \"0.0.0.0\")"))
            .clone();
        s.name = format!("rs{}", self.list.len() + 1);
        s.address = addr;
        self.by_addr.insert(addr, self.list.len());
        self.list.push(s);
        self.list[self.list.len() - 1].name.clone()
    }
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
    let unwritable = [NO_PORT, NO_SCTP].map(|c| c.trim_start_matches("! "));
    let no_port = comments_in(comments, n).iter().any(|c| unwritable.contains(&c.text.as_str()));
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
        reentry_s: None,
        fallback: None,
    }
}
