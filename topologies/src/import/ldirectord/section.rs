//! A `virtual` section of ldirectord.cf: its lines, its real servers, and the service
//! and health check they make (with ldirectord's defaults for what is not written).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::{Forwarding, Protocol, SchedFlag, SchedulerKind};

use super::words::{MAX_SECONDS, address_port, err, forwarding, key_value, number, yes_no};
use super::{ParsedService, Reader, Settings, lvsim_setting_comment};
use crate::import::ImportError;
use crate::{CheckKind, Checker, Fallback, Flag, HealthCheck, RealServer, Service};

/// A `real` line (one address of a range).
#[derive(Clone, Copy)]
struct Real {
    addr: IpAddr,
    port: Option<u16>,
    fwd: Forwarding,
    weight: u32,
    lower: u32,
    upper: u32,
    line: usize,
}

/// A virtual section as written.
#[derive(Default)]
struct Section {
    no: usize,
    v6: bool,
    sctp: bool,
    vip: Option<(IpAddr, u16)>,
    fwmark: Option<u32>,
    reals: Vec<Real>,
    fallback: Option<(IpAddr, Option<u16>, Forwarding)>,
    checktype: Option<(String, usize)>,
    service: Option<String>,
    request: Option<String>,
    receive: Option<String>,
    digest: Option<String>,
    scheduler: Option<SchedulerKind>,
    persistent: Option<u64>,
    netmask: Option<(IpAddr, usize)>,
    flags: Vec<Flag>,
    protocol: Option<String>,
    settings: Settings,
}

impl Reader<'_> {
    /// A section: its `virtual` line `first` (line `no`) and its lines. `None` when it
    /// names no service lvsim can hold (a note says why).
    pub(super) fn section(
        &mut self,
        no: usize,
        first: &str,
        body: &[(usize, String)],
        sctp: bool,
    ) -> Result<Option<ParsedService>, ImportError> {
        let p = self.path;
        let (key, v, col) = key_value(p, no, first)?;
        let mut s = Section { no, v6: key == "virtual6", sctp, ..Section::default() };
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            s.fwmark = Some(number(p, no, col, v, "firewall mark", u64::from(u32::MAX))? as u32);
        } else {
            let (a, port) = address_port(p, no, col, v, s.v6)?;
            let Some(port) = port else {
                return Err(err(
                    p,
                    no,
                    col,
                    format!("{v:?}: a virtual service needs a port (or is a firewall mark)"),
                ));
            };
            s.vip = Some((a, port));
        }
        for (n, line) in body {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
                self.section_comment(&mut s, c.trim());
                continue;
            }
            let line = line.split('#').next().unwrap_or_default();
            let (key, v, col) = key_value(p, *n, line)?;
            self.section_line(&mut s, *n, key, v, col)?;
        }
        self.service(s)
    }

    /// lvsim's comments inside a section.
    fn section_comment(&mut self, s: &mut Section, c: &str) {
        if lvsim_setting_comment(c, &mut s.settings) {
            return;
        }
        if let Some(rest) = c.strip_prefix("digest ")
            && let Some((d, _)) = rest.split_once(": ldirectord matches")
        {
            s.digest = Some(d.to_owned());
        } else if let Some(rest) = c.strip_prefix("receive \"")
            && let Some((r, _)) = rest.split_once("\": ldirectord cuts a line at '#'")
        {
            s.receive = Some(r.replace("\\\\", "\\"));
        }
    }

    /// One `KEY = VALUE` line of a section.
    fn section_line(
        &mut self,
        s: &mut Section,
        no: usize,
        key: &str,
        v: &str,
        col: usize,
    ) -> Result<(), ImportError> {
        let p = self.path;
        if self.setting(&mut s.settings, no, key, v, col)? {
            return Ok(());
        }
        let quoted = |what: &str| -> Result<String, ImportError> {
            match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                Some(x) if !x.is_empty() => Ok(x.to_owned()),
                _ => Err(err(
                    p,
                    no,
                    col,
                    format!("{what}: expected a non-empty string in double quotes, got {v:?}"),
                )),
            }
        };
        if service_option(p, s, no, key, v, col)? {
            return Ok(());
        }
        match key {
            "real" | "real6" => {
                if (key == "real6") != s.v6 {
                    let want = if s.v6 { "real6" } else { "real" };
                    return Err(err(p, no, 1, format!("cannot specify {key:?} here: use {want:?}")));
                }
                self.real(s, no, v, col)?;
            }
            "fallback" | "fallback6" => s.fallback = Some(fallback(p, s, no, key, v, col)?),
            "request" => s.request = Some(quoted("request")?),
            "receive" => s.receive = Some(quoted("receive")?),
            "checktype" => s.checktype = Some((v.to_owned(), no)),
            "checkcommand" | "checkport" | "login" | "passwd" | "database" | "secret" | "load"
            | "httpmethod" | "virtualhost" | "fallbackcommand" | "emailalert" | "emailalertfreq"
            | "emailalertstatus" | "monitorfile" | "cleanstop" | "smtp" | "servicename" | "comment" => {
                self.note(no, format!("{key}: not modelled"));
            }
            _ => {
                return Err(err(
                    p,
                    no,
                    1,
                    format!("unknown directive {key:?} in a virtual section (ldirectord: unknown command)"),
                ));
            }
        }
        Ok(())
    }
}

/// The service names ldirectord's `service` takes.
const SERVICES: [&str; 21] = [
    "dns",
    "ftp",
    "http",
    "https",
    "http_proxy",
    "imap",
    "imaps",
    "ldap",
    "ldaps",
    "nntp",
    "mysql",
    "none",
    "oracle",
    "pop",
    "pops",
    "radius",
    "pgsql",
    "sip",
    "smtp",
    "submission",
    "simpletcp",
];

/// `fallback = ADDRESS[:PORT] [METHOD]` (`fallback6`): the address, port and method.
fn fallback(
    p: &str,
    s: &Section,
    no: usize,
    key: &str,
    v: &str,
    col: usize,
) -> Result<(IpAddr, Option<u16>, Forwarding), ImportError> {
    if (key == "fallback6") != s.v6 {
        return Err(err(
            p,
            no,
            1,
            format!("cannot specify {key:?} in this section (IPv4 and IPv6 do not mix)"),
        ));
    }
    let mut w = v.split_whitespace();
    let (a, port) = address_port(p, no, col, w.next().unwrap_or_default(), s.v6)?;
    let f = match w.next() {
        Some(m) => forwarding(p, no, col + v.find(m).unwrap_or(0), m)?,
        None => Forwarding::DirectRouting,
    };
    Ok((a, port, f))
}

/// A line that sets the virtual service itself (`service`, `scheduler`, `persistent`,
/// `netmask`, `schedflags`, `ops`, `protocol`) into `s`; whether `key` was one.
fn service_option(
    p: &str,
    s: &mut Section,
    no: usize,
    key: &str,
    v: &str,
    col: usize,
) -> Result<bool, ImportError> {
    match key {
        "service" => {
            if !SERVICES.contains(&v) {
                return Err(err(
                    p,
                    no,
                    col,
                    format!("service {v:?}: ldirectord knows {}", SERVICES.join(", ")),
                ));
            }
            s.service = Some(v.to_owned());
        }
        "scheduler" => {
            let k = v.parse::<SchedulerKind>().map_err(|_| {
                err(
                    p,
                    no,
                    col,
                    format!(
                        "scheduler {v:?}: not one the kernel has ({})",
                        SchedulerKind::ALL.map(SchedulerKind::name).join(", ")
                    ),
                )
            })?;
            s.scheduler = Some(k);
        }
        "persistent" => s.persistent = Some(number(p, no, col, v, "persistent timeout", MAX_SECONDS)?),
        "netmask" => {
            let m = if s.v6 {
                let n = number(p, no, col, v, "netmask (an IPv6 prefix length)", 128)?;
                if n == 0 {
                    return Err(err(
                        p,
                        no,
                        col,
                        "invalid netmask: a prefix length between 1 and 128 is required",
                    ));
                }
                IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - n)))
            } else {
                IpAddr::V4(
                    v.parse::<Ipv4Addr>()
                        .map_err(|_| err(p, no, col, "invalid netmask: dotted quad notation is required"))?,
                )
            };
            s.netmask = Some((m, no));
        }
        "schedflags" => {
            for w in v.split(',') {
                let f = SchedFlag::from_name(w.trim()).ok_or_else(|| {
                    err(
                        p,
                        no,
                        col,
                        format!(
                            "scheduler flag {w:?}: ipvsadm knows {}",
                            SchedFlag::ALL.map(SchedFlag::name).join(", ")
                        ),
                    )
                })?;
                s.flags.push(Flag::from_sched_flag(f));
            }
        }
        "ops" => {
            if yes_no(p, no, col, key, v)? {
                s.flags.push(Flag::OnePacket);
            }
        }
        "protocol" => {
            let ok = match (s.fwmark.is_some(), v) {
                (true, "fwm") | (false, "tcp" | "udp") => true,
                (false, "sctp") => s.sctp,
                _ => false,
            };
            if !ok {
                let want = if s.fwmark.is_some() {
                    "fwm for a firewall-mark service"
                } else {
                    "tcp or udp for an address and port"
                };
                return Err(err(p, no, col, format!("protocol {v:?}: must be {want}")));
            }
            s.protocol = Some(v.to_owned());
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The most addresses a `real = A->B` range may stand for.
const MAX_RANGE: u32 = 256;

impl Reader<'_> {
    /// `ADDRESS[->ADDRESS][:PORT] METHOD [WEIGHT] ["REQUEST", "RECEIVE"] [l:N] [u:N]`.
    fn real(&mut self, s: &mut Section, no: usize, v: &str, col: usize) -> Result<(), ImportError> {
        let p = self.path;
        let (target, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        let addrs: Vec<(IpAddr, Option<u16>)> = match target.split_once("->") {
            None => vec![address_port(p, no, col, target, s.v6)?],
            Some((a, b)) => {
                let (IpAddr::V4(first), _) = address_port(p, no, col, a, s.v6)? else {
                    return Err(err(
                        p,
                        no,
                        col,
                        "address ranges are IPv4 only (ldirectord: not supported yet for IPv6)",
                    ));
                };
                let (IpAddr::V4(last), port) = address_port(p, no, col + a.len() + 2, b, false)? else {
                    unreachable!("IPv4 asked for")
                };
                let (f, l) = (u32::from(first), u32::from(last));
                if f > l || l - f >= MAX_RANGE {
                    return Err(err(
                        p,
                        no,
                        col,
                        format!(
                            "range {a}->{b}: the first address comes first, and at most {MAX_RANGE} addresses"
                        ),
                    ));
                }
                (f..=l).map(|x| (IpAddr::V4(Ipv4Addr::from(x)), port)).collect()
            }
        };
        let mut words = rest.split_whitespace().peekable();
        // The column of a word after the address part.
        let at = |w: &str| col + target.len() + v[target.len()..].find(w).unwrap_or(0);
        let m = words
            .next()
            .ok_or_else(|| err(p, no, col, "a real server needs a forward method: gate, masq or ipip"))?;
        let fwd = forwarding(p, no, at(m), m)?;
        let mut weight = 1;
        if let Some(w) = words.peek().filter(|w| w.bytes().all(|b| b.is_ascii_digit())) {
            weight = number(p, no, at(w), w, "weight", 65535)? as u32;
            words.next();
        }
        let rest: Vec<&str> = words.collect();
        let mut rest = rest.join(" ");
        if let (Some(a), Some(b)) = (rest.find('"'), rest.rfind('"'))
            && a < b
        {
            self.note(
                no,
                "a real server's own request and receive strings: not modelled (the service's are)",
            );
            rest.replace_range(a..=b, "");
        }
        let (mut lower, mut upper) = (0, 0);
        for w in rest.split_whitespace() {
            if let Some(n) = w.strip_prefix("l:") {
                lower = number(p, no, at(w), n, "lower threshold", u64::from(u32::MAX))? as u32;
            } else if let Some(n) = w.strip_prefix("u:") {
                upper = number(p, no, at(w), n, "upper threshold", u64::from(u32::MAX))? as u32;
            } else {
                return Err(err(p, no, at(w), format!("invalid real server line, around {w:?}")));
            }
        }
        for (a, port) in addrs {
            s.reals.push(Real { addr: a, port, fwd, weight, lower, upper, line: no });
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// The service a section describes.
    fn service(&mut self, s: Section) -> Result<Option<ParsedService>, ImportError> {
        let no = s.no;
        let (vip, port) = s.vip.map_or((None, 0), |(a, p)| (Some(a), p));
        let protocol = match s.protocol.as_deref() {
            Some("udp") => Protocol::Udp,
            Some("sctp") => Protocol::Sctp,
            Some(_) => Protocol::Tcp,
            // ldirectord's default: udp for port 53, else tcp.
            None if s.fwmark.is_none() && port == 53 => Protocol::Udp,
            None => Protocol::Tcp,
        };
        let mut service = Service { protocol, vip, port, fwmark: s.fwmark, ..Service::default() };
        service.scheduler = s.scheduler.unwrap_or(SchedulerKind::Wrr);
        service.flags = s.flags.clone();
        if service.flags.contains(&Flag::OnePacket) && protocol != Protocol::Udp {
            self.note(no, "ops = yes: ldirectord sets one-packet scheduling for UDP services only");
            service.flags.retain(|f| *f != Flag::OnePacket);
        }
        service.persistence_s = s.persistent.map(|p| p as f64);
        match (s.netmask, s.persistent) {
            (Some((m, _)), Some(_)) => service.netmask = Some(m),
            (Some((_, line)), None) => {
                self.note(line, "netmask without persistent: ldirectord passes it on only with persistence")
            }
            _ => {}
        }
        let mut reals = Vec::new();
        for &Real { addr: a, port: rport, fwd, weight, lower, upper, line } in &s.reals {
            let rport = rport.unwrap_or(if s.fwmark.is_some() { 0 } else { port });
            let own = match (s.fwmark, fwd) {
                (None, Forwarding::DirectRouting | Forwarding::Tunnel) if rport != port => {
                    self.note(
                        line,
                        format!("port {rport}: direct routing and tunnelling use the service's port {port}"),
                    );
                    None
                }
                (Some(_), _) if rport == 0 => None,
                (None, _) if rport == port => None,
                _ => Some(rport),
            };
            service.real_servers.push(RealServer {
                server: String::new(),
                port: own,
                forwarding: fwd,
                weight,
                upper,
                lower,
                tunnel: None,
            });
            reals.push(a);
        }
        if s.reals.is_empty() {
            self.note(no, "a virtual service without real servers");
        }
        let (check, fallback) = self.check(&s)?;
        service.check = check;
        Ok(Some(ParsedService { service, reals, fallback }))
    }

    /// The service's health check (with its fallback's address), from its `checktype`
    /// and the settings of the section, else the global part, else ldirectord's defaults.
    fn check(&mut self, s: &Section) -> Result<(Option<HealthCheck>, Option<IpAddr>), ImportError> {
        let line = s.checktype.as_ref().map_or(s.no, |(_, l)| *l);
        let Some(kind) = self.check_kind(s)? else { return Ok((None, None)) };
        let (own, g) = (&s.settings, self.global.clone());
        let negotiate = matches!(kind, CheckKind::Negotiate { .. });
        let timeout = if negotiate {
            own.negotiatetimeout.or(own.checktimeout).or(g.negotiatetimeout).or(g.checktimeout).unwrap_or(30)
        } else {
            own.checktimeout.or(own.negotiatetimeout).or(g.checktimeout).or(g.negotiatetimeout).unwrap_or(5)
        };
        let timeout_s = match own.rounded_timeout {
            Some((x, n)) if n == timeout => x,
            _ => timeout as f64,
        };
        if own.checkinterval.is_some() && !self.fork {
            self.note(line, "checkinterval in a virtual section: ldirectord ignores it without fork = yes");
        }
        let own_interval = own.checkinterval.filter(|_| self.fork);
        let interval = own_interval.or(g.checkinterval).unwrap_or(10);
        let rounded = if own_interval.is_some() { own.rounded_interval } else { g.rounded_interval };
        let interval_s = match rounded {
            Some((x, n)) if n == interval => x,
            _ => interval as f64,
        };
        let failurecount = own.failurecount.or(g.failurecount).unwrap_or(1);
        let fallback = s.fallback.map(|(a, port, f)| {
            let port = port.filter(|p| f == Forwarding::Masq && Some(*p) != s.vip.map(|v| v.1));
            (a, Fallback { server: String::new(), port, forwarding: f })
        });
        let check = HealthCheck {
            checker: Checker::Ldirectord,
            kind,
            interval_s: Some(interval_s),
            timeout_s: Some(timeout_s),
            retries: Some(u32::try_from(failurecount - 1).unwrap_or(u32::MAX)),
            delay_before_retry_s: own.delay_before_retry,
            quiescent: Some(own.quiescent.or(g.quiescent).unwrap_or(false)),
            fallback: fallback.as_ref().map(|(_, f)| f.clone()),
            reentry_s: None,
        };
        Ok((Some(check), fallback.map(|(a, _)| a)))
    }

    /// The check `checktype` asks for (ldirectord's default: negotiate); `None` for `on`
    /// and `off` (no check).
    fn check_kind(&mut self, s: &Section) -> Result<Option<CheckKind>, ImportError> {
        let (checktype, line) = s.checktype.clone().unwrap_or_else(|| ("negotiate".to_owned(), s.no));
        let kind = match checktype.as_str() {
            "on" | "off" => {
                if checktype == "off" {
                    self.note(line, "checktype = off: ldirectord adds neither real nor fallback servers; lvsim keeps the real servers up");
                }
                if s.fallback.is_some() {
                    self.note(line, "a fallback server without a check: lvsim adds a fallback when checks find every server down");
                }
                return Ok(None);
            }
            "negotiate" => {
                let svc = s.service.as_deref().unwrap_or(if s.vip.is_some_and(|(_, p)| p == 443) {
                    "https"
                } else {
                    "http"
                });
                if !matches!(svc, "http" | "https" | "http_proxy") {
                    self.note(
                        line,
                        format!("a negotiate check of service {svc}: modelled as an HTTP request"),
                    );
                }
                CheckKind::Negotiate {
                    request: s.request.clone().unwrap_or_else(|| "/".to_owned()),
                    receive: s.receive.clone(),
                    digest: s.digest.clone(),
                    demand_ms: 1.0,
                }
            }
            "connect" => CheckKind::Connect,
            "ping" | "external" | "external-perl" => {
                self.note(line, format!("checktype = {checktype}: modelled as a connect check"));
                CheckKind::Connect
            }
            c if c.bytes().all(|b| b.is_ascii_digit()) && !c.is_empty() => {
                self.note(line, format!("checktype = {c} (negotiate every {c}th check, else connect): modelled as a connect check"));
                CheckKind::Connect
            }
            _ => {
                return Err(err(
                    self.path,
                    line,
                    1,
                    format!(
                        "checktype {checktype:?}: ldirectord takes connect, negotiate, on, off, ping, external, external-perl or a positive number"
                    ),
                ));
            }
        };
        Ok(Some(kind))
    }
}
