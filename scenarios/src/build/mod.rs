//! From the edited text to sim-core's `ClusterConfig`: deserialise, resolve names, check.

use std::net::IpAddr;

use lvs_ipvs::tcp::Timeouts;
use lvs_ipvs::{Forwarding, Protocol, ServiceKey, SvcFlags};
use lvs_sched::feedback::{GrpcWrr, LawConfig, LawKind};
use lvs_sched::{Duration, Time};
use sim_core::arrival::{ArrivalProcess, parse_trace_csv};
use sim_core::cpu::CpuConfig;
use sim_core::dist;
use sim_core::link::ChannelConfig;
use sim_core::model::{
    BackendConfig, ClusterConfig, DestConfig, DirectorConfig, DuplexLink, FeedbackConfig,
    FeedbackLink as SimFeedbackLink, MAX_WEIGHT, PopulationConfig, ServerConfig, ServiceConfig,
    Transport as SimTransport,
};
use topologies::{Channel, Topology};

use crate::doc::{Doc, offset_of, parse_path};
use crate::files::{self, FileAccess};
use crate::format::{Arrival, Dist, Feedback, Law, Scenario, Transport};
use crate::{Error, Loaded};

pub mod bounds;
mod dos;
mod events;
pub mod plan;

/// Deserialises and builds an edited document; with a budget, a topology whose servers
/// alone would not fit its memory is refused before they are written out.
pub fn build(
    doc: Doc,
    file: &str,
    stem: &str,
    files: &FileAccess,
    budget: Option<&crate::budget::Budget>,
) -> Result<Loaded, Error> {
    let opts = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let scenario: Scenario = opts.from_str(doc.text()).map_err(|e| {
        let off = offset_of(doc.text(), e.span.start.line, e.span.start.col);
        Error::at(doc.locate(off), explain(&e.code))
    })?;
    bounds::check_text(&doc)?;
    let b = Builder { doc: &doc, files, budget };
    let (topology, cluster) = b.cluster(&scenario)?;
    let warnings = cluster.warnings().iter().map(|w| b.warning(&cluster, w)).collect();
    Ok(Loaded {
        name: scenario.name.clone().unwrap_or_else(|| stem.to_owned()),
        file: file.to_owned(),
        base: files.base().to_path_buf(),
        files: files.clone(),
        overrides: Vec::new(),
        scenario,
        topology,
        cluster,
        warnings,
        doc,
    })
}

/// An import error's message, quoting the file only if an earlier line was an ipvsadm
/// command (see [`files`]).
fn import_message(text: &str, e: &topologies::import::ImportError) -> String {
    // The import stops at the first bad line: every earlier line that is not blank or a
    // comment was read as a command.
    let commands = |s: &str| s.lines().filter(|l| !lvs_ipvs::ipvsadm::words(l).is_empty()).count();
    let quote = files::may_quote(text, e.line, commands);
    files::quoted_or_not(
        quote,
        &e.message,
        "ipvsadm-save output",
        "an ipvsadm command such as -A -t VIP:PORT -s wlc",
    )
}

/// A trace error's message, quoting the file only if an earlier line was a time.
fn trace_message(text: &str, e: &sim_core::arrival::TraceError) -> String {
    let times = |s: &str| parse_trace_csv(s).map_or(0, |t| t.len());
    let quote = files::may_quote(text, e.line, times);
    files::quoted_or_not(
        quote,
        &e.message,
        "a trace of arrival times",
        "a time in seconds in the first column",
    )
}

/// ron's messages, made a little friendlier.
fn explain(code: &ron::Error) -> String {
    let m = code.to_string();
    match code {
        ron::Error::NoSuchStructField { .. } | ron::Error::NoSuchEnumVariant { .. } => {
            format!("{m} (unknown fields and variants are rejected; see docs/scenarios.md)")
        }
        _ => m,
    }
}

struct Builder<'a> {
    doc: &'a Doc,
    files: &'a FileAccess,
    budget: Option<&'a crate::budget::Budget>,
}

fn secs(x: f64) -> Duration {
    dist::secs_to_duration(x)
}

fn ms(x: f64) -> Duration {
    dist::secs_to_duration(x * 1e-3)
}

fn us(x: f64) -> Duration {
    dist::secs_to_duration(x * 1e-6)
}

impl Builder<'_> {
    /// An error at a scenario path (located at the nearest written ancestor).
    fn err(&self, path: &str, message: impl Into<String>) -> Error {
        let steps = parse_path(path).unwrap_or_default();
        let message = message.into();
        match self.doc.locate_path(&steps) {
            Some(l) => Error::at(l, format!("{path}: {message}")),
            None => Error::bare(format!("{path}: {message}")),
        }
    }

    /// A warning, located at its service's `scheduler` field as an error would be:
    /// `s.ron:9:13: directors[0].services[0].scheduler: service TCP  10.0.0.1:80: ...`.
    fn warning(&self, c: &ClusterConfig, w: &sim_core::model::ConfigWarning) -> String {
        let path = format!("directors[{}].services[{}].scheduler", w.director, w.service);
        let key = c.directors[w.director].services[w.service].addr;
        self.err(&path, format!("service {key}: {}", w.message)).to_string()
    }

    fn finite(&self, path: &str, x: f64, min: f64) -> Result<f64, Error> {
        if x.is_finite() && x >= min {
            Ok(x)
        } else {
            Err(self.err(path, format!("must be a number >= {min}, got {x}")))
        }
    }

    fn cluster(&self, s: &Scenario) -> Result<(Topology, ClusterConfig), Error> {
        let duration = self.finite("duration_s", s.duration_s, 0.0)?;
        if duration <= 0.0 {
            return Err(self.err("duration_s", "must be > 0"));
        }
        let warmup = self.finite("warmup_s", s.warmup_s, 0.0)?;
        if warmup >= duration {
            return Err(self.err(
                "warmup_s",
                format!("the warm-up ({warmup} s) must end before duration_s ({duration} s)"),
            ));
        }
        bounds::check_typed(self, s, duration)?;
        let sample = match s.sample_interval_s {
            Some(x) => {
                if !(x.is_finite() && x > 0.0) {
                    return Err(self.err("sample_interval_s", format!("must be > 0, got {x}")));
                }
                x
            }
            None => nice_interval(duration / 200.0),
        };
        if s.directors.is_empty() {
            return Err(self.err(
                "directors",
                "the scenario has no director: name a topology (`topology: \"tutorial-nat\"`, see `lvsim list topologies`) or write `directors`",
            ));
        }
        if s.clients.is_empty() {
            return Err(self.err("clients", "no client population: add one to `clients`"));
        }
        if s.replications == 0 {
            return Err(self.err("replications", "must be at least 1"));
        }
        let raw = Topology {
            description: String::new(),
            directors: s.directors.clone(),
            servers: s.servers.clone(),
            backends: s.backends.clone(),
            ha: s.ha.clone(),
            ecmp: s.ecmp.clone(),
        };
        self.precheck(&raw)?;
        let mut topo = raw.expand().map_err(|e| self.err(&e.path, e.message))?;
        if let Some(file) = &s.import_ipvsadm {
            let (path, text) = self
                .files
                .read(file, "ipvsadm-save output", files::MAX_IPVSADM_BYTES)
                .map_err(|m| self.err("import_ipvsadm", m))?;
            topologies::import::ipvsadm_save(&mut topo, 0, &text).map_err(|e| {
                Error::bare(format!(
                    "{}:{}:{}: {}",
                    path.display(),
                    e.line,
                    e.column,
                    import_message(&text, &e)
                ))
            })?;
        }
        let directors = self.directors(&topo)?;
        let servers = self.servers(&topo)?;
        let backends = topo
            .backends
            .iter()
            .map(|b| BackendConfig { name: b.name.clone(), latency: ms(b.latency_ms), cpu: cpu(&b.cpu) })
            .collect();
        let mut cfg = ClusterConfig {
            seed: s.seed,
            duration: secs(duration),
            warmup: secs(warmup),
            drain_ipvs: s.drain_ipvs,
            sample_interval: Some(secs(sample)),
            mtu: s.network.mtu,
            syn_rto: secs(s.network.syn_rto_s),
            data_rto: secs(s.network.data_rto_s),
            max_retries: s.network.max_retries,
            directors,
            servers,
            backends,
            populations: Vec::new(),
            actions: Vec::new(),
            server_events: Vec::new(),
            director_events: Vec::new(),
            // Member names become indices; every value was checked by `expand`.
            ha: topo
                .ha
                .as_ref()
                .map(|h| h.config(&topo.directors))
                .transpose()
                .map_err(|e| self.err(&e.path, e.message))?,
            ecmp: topo
                .ecmp
                .as_ref()
                .map(|e| e.config(&topo.directors))
                .transpose()
                .map_err(|e| self.err(&e.path, e.message))?,
            feedback: None,
            server_detail: s.server_detail,
            exchange: sim_core::model::Exchange::Fast,
        };
        for (i, c) in s.clients.iter().enumerate() {
            let p = self.population(i, c, &cfg)?;
            cfg.populations.push(p);
        }
        self.syn_floods(s, &mut cfg)?;
        let built = self.events(s, &topo, &cfg)?;
        (cfg.actions, cfg.server_events, cfg.director_events) =
            (built.actions, built.server_events, built.director_events);
        if let Some((k, message)) = cfg.fault_order_error() {
            return Err(self.err(&format!("events[{}].change", built.server_event_source[k]), message));
        }
        if let Some((k, message)) = cfg.director_order_error() {
            return Err(self.err(&format!("events[{}].change", built.director_event_source[k]), message));
        }
        if let Some(f) = &s.feedback {
            // Checked even when disabled, so that a sweep over `feedback.enabled` finds a
            // bad value at its base point.
            let built = self.feedback(f)?;
            cfg.feedback = f.enabled.then_some(built);
        }
        for (i, e) in s.expect.iter().enumerate() {
            crate::expect::validate(e).map_err(|m| self.err(&format!("expect[{i}]"), m))?;
        }
        if let Some(plan) = &s.plan {
            self.plan(s, plan)?;
        }
        cfg.validate().map_err(|e| Error::at(self.doc.locate(0), e.to_string()))?;
        Ok((topo, cfg))
    }

    /// Checks that need the paths of the topology as written (before `count` groups are
    /// written out) and that `Topology::expand` does not make (it checks names, addresses,
    /// services and weights): whether each real server, and each fallback, can be reached
    /// its way.
    fn precheck(&self, t: &Topology) -> Result<(), Error> {
        for (di, d) in t.directors.iter().enumerate() {
            for (si, svc) in d.services.iter().enumerate() {
                let sp = format!("directors[{di}].services[{si}]");
                for (ri, rs) in svc.real_servers.iter().enumerate() {
                    let rp = format!("{sp}.real_servers[{ri}].forwarding");
                    self.reachable(&rp, t, d, &rs.server, rs.forwarding)?;
                }
                if let Some(fb) = svc.check.as_ref().and_then(|c| c.fallback.as_ref()) {
                    let fp = format!("{sp}.check.fallback.forwarding");
                    self.reachable(&fp, t, d, &fb.server, fb.forwarding)?;
                }
            }
        }
        Ok(())
    }

    /// Direct routing reaches a server on the director's segment only; NAT needs the
    /// server's replies to route through the director (or through any member of the
    /// director's fail-over group, which moves the gateway address with the VIP).
    fn reachable(
        &self,
        path: &str,
        t: &Topology,
        d: &topologies::Director,
        name: &str,
        forwarding: Forwarding,
    ) -> Result<(), Error> {
        let Some(server) = find_server(t, name) else { return Ok(()) };
        let group = t.ha.as_ref().map(|h| h.directors.as_slice()).unwrap_or_default();
        let in_group = |n: &str| group.iter().any(|m| m == n);
        match forwarding {
            Forwarding::DirectRouting if server.segment != d.segment => Err(self.err(
                path,
                format!(
                    "real server {name:?} is on segment {:?} but director {:?} is on {:?}: \
                     direct routing only reaches servers on the director's own segment \
                     (use TUN, or put the server on {:?})",
                    server.segment, d.name, d.segment, d.segment
                ),
            )),
            Forwarding::Masq
                if server.gateway.as_deref() != Some(d.name.as_str())
                    && !(in_group(&d.name) && server.gateway.as_deref().is_some_and(in_group)) =>
            {
                let also =
                    if in_group(&d.name) { " (or another director of its fail-over group)" } else { "" };
                Err(self.err(
                    path,
                    format!(
                        "NAT needs the replies of real server {name:?} to pass director {:?}: \
                         set `gateway: {:?}` on the server{also}",
                        d.name, d.name
                    ),
                ))
            }
            Forwarding::Local => Err(self.err(
                path,
                "the Local forwarding method (the director serving the VIP itself) is not \
                 modelled: use NAT, DR or TUN",
            )),
            _ => Ok(()),
        }
    }

    fn directors(&self, t: &Topology) -> Result<Vec<DirectorConfig>, Error> {
        let mut out = Vec::new();
        // Name → index, so that a service of N real servers is N lookups, not N scans.
        let index: std::collections::HashMap<&str, usize> =
            t.servers.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        for (di, d) in t.directors.iter().enumerate() {
            let p = format!("directors[{di}]");
            let mut timeouts = Timeouts::default();
            let opt = |x: Option<f64>, f: &str| -> Result<Option<Duration>, Error> {
                x.map(|v| self.finite(&format!("{p}.timeouts.{f}"), v, 0.0).map(secs)).transpose()
            };
            timeouts.set(
                opt(d.timeouts.tcp_s, "tcp_s")?,
                opt(d.timeouts.tcpfin_s, "tcpfin_s")?,
                opt(d.timeouts.udp_s, "udp_s")?,
            );
            let mut services = Vec::new();
            for (si, svc) in d.services.iter().enumerate() {
                services.push(self.service(&format!("{p}.services[{si}]"), t, svc, &index)?);
            }
            out.push(DirectorConfig {
                external: DuplexLink {
                    inbound: channel(&d.external),
                    outbound: channel(d.external_out.as_ref().unwrap_or(&d.external)),
                },
                internal: DuplexLink {
                    outbound: channel(&d.internal),
                    inbound: channel(d.internal_in.as_ref().unwrap_or(&d.internal)),
                },
                cpu_per_packet: us(self.finite(
                    &format!("{p}.cpu_per_packet_us"),
                    d.cpu_per_packet_us,
                    0.0,
                )?),
                cpu_backlog_packets: d.cpu_backlog_packets,
                timeouts,
                sysctls: self.sysctls(&p, d)?,
                memory: self.memory(&p, d)?,
                ..DirectorConfig::new(d.name.clone(), d.segment.clone(), services)
            });
        }
        self.service_names(&out)?;
        Ok(out)
    }

    /// A service's name stands for it in results and metric paths: made of letters,
    /// digits, `_-.:`, at most 64 bytes, one per service (directors of a group share
    /// theirs).
    fn service_names(&self, dirs: &[DirectorConfig]) -> Result<(), Error> {
        let mut seen: Vec<(String, ServiceKey, bool)> = Vec::new();
        for (di, d) in dirs.iter().enumerate() {
            for (si, svc) in d.services.iter().enumerate() {
                let path = format!("directors[{di}].services[{si}].name");
                if let Some(n) = &svc.name {
                    let ok = |c: char| c.is_ascii_alphanumeric() || "_-.:".contains(c);
                    if n.is_empty() || n.len() > 64 || !n.chars().all(ok) {
                        return Err(self.err(
                            &path,
                            format!("{n:?} is not a service name (1 to 64 letters, digits, `_-.:`)"),
                        ));
                    }
                }
                let name = svc.name.clone().unwrap_or_else(|| sim_core::model::service_name(&svc.addr));
                let explicit = svc.name.is_some();
                if let Some((_, key, _)) = seen.iter().find(|(n, k, _)| *n == name && *k != svc.addr) {
                    return Err(
                        self.err(&path, format!("service name {name:?} is already the name of {key}"))
                    );
                }
                if let Some((other, _, _)) =
                    seen.iter().find(|(n, k, e)| *k == svc.addr && *e && explicit && *n != name)
                {
                    return Err(self.err(&path, format!("{} is already named {other:?}", svc.addr)));
                }
                seen.push((name, svc.addr, explicit));
            }
        }
        Ok(())
    }

    /// A virtual service and its real servers (`index`: server name → index).
    fn service(
        &self,
        sp: &str,
        t: &Topology,
        svc: &topologies::Service,
        index: &std::collections::HashMap<&str, usize>,
    ) -> Result<ServiceConfig, Error> {
        let addr = match (svc.fwmark, svc.vip) {
            (Some(m), _) => ServiceKey::fwmark(m),
            (None, Some(_)) if svc.protocol == Protocol::Sctp => {
                return Err(self.err(
                    &format!("{sp}.protocol"),
                    "SCTP services are not modelled (the simulated clients speak TCP or UDP)",
                ));
            }
            (None, Some(vip)) => ServiceKey::Addr { protocol: svc.protocol, addr: vip, port: svc.port },
            (None, None) => return Err(self.err(sp, "needs a `vip` (or a `fwmark`)")),
        };
        let mut dests = Vec::new();
        for (ri, rs) in svc.real_servers.iter().enumerate() {
            let Some(&server) = index.get(rs.server.as_str()) else {
                return Err(self.err(
                    &format!("{sp}.real_servers[{ri}].server"),
                    format!("no real server named {:?}", rs.server),
                ));
            };
            let port = match rs.forwarding {
                Forwarding::Masq => rs.port.unwrap_or(svc.port),
                _ => svc.port,
            };
            dests.push(DestConfig {
                server,
                port,
                fwd: rs.forwarding,
                weight: rs.weight,
                u_threshold: rs.upper,
                l_threshold: rs.lower,
            });
        }
        Ok(ServiceConfig {
            addr,
            name: svc.name.clone(),
            scheduler: svc.scheduler,
            flags: SvcFlags(svc.flags.iter().fold(0, |bits, f| bits | f.bit())),
            persistence: svc.persistence_s.map(secs),
            netmask: self.netmask(&format!("{sp}.netmask"), &addr, svc.netmask)?,
            check: svc.check.as_ref().map(|c| self.check(sp, t, svc, c)).transpose()?,
            dests,
        })
    }

    /// The persistence granularity as lvs-ipvs keeps it: an IPv4 mask as a host-order
    /// `u32` (default /32), an IPv6 one as its prefix length (default 128). The mask must
    /// be contiguous and of the service's family; a firewall-mark service is IPv4 in the
    /// simulator (its table looks marks up as IPv4 services).
    fn netmask(&self, path: &str, key: &ServiceKey, mask: Option<IpAddr>) -> Result<u32, Error> {
        let Some(mask) = mask else { return Ok(if key.is_ipv6() { 128 } else { u32::MAX }) };
        let bits = match mask {
            IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
            IpAddr::V6(m) => u128::from(m),
        };
        if bits.leading_ones() + bits.trailing_zeros() < 128 {
            return Err(self.err(path, format!("{mask} is not a netmask (ones, then zeros)")));
        }
        let what = match key {
            ServiceKey::Fwmark { .. } => "firewall-mark service (IPv4 in the simulator)",
            _ => "service",
        };
        match (mask, key.is_ipv6()) {
            (IpAddr::V4(m), false) => Ok(u32::from(m)),
            (IpAddr::V6(_), true) => Ok(bits.leading_ones()),
            (IpAddr::V4(_), true) => Err(self.err(
                path,
                format!("{mask} is an IPv4 netmask but the {what} is IPv6 (such as ffff:ffff:ffff:ffff::)"),
            )),
            (IpAddr::V6(_), false) => Err(self.err(
                path,
                format!("{mask} is an IPv6 netmask but the {what} is IPv4 (such as 255.255.255.0)"),
            )),
        }
    }

    /// A service's health check: the checker's defaults filled in, the fallback resolved
    /// (added with weight 1, on the service's port unless NAT gives its own).
    fn check(
        &self,
        sp: &str,
        t: &Topology,
        svc: &topologies::Service,
        c: &topologies::HealthCheck,
    ) -> Result<sim_core::ha::HealthCheckConfig, Error> {
        let mut cfg = c.config();
        if let Some(fb) = &c.fallback {
            let Some(server) = t.servers.iter().position(|s| s.name == fb.server) else {
                return Err(self.err(
                    &format!("{sp}.check.fallback.server"),
                    format!("no server named {:?}", fb.server),
                ));
            };
            let fwd = fb.forwarding;
            let port = if fwd == Forwarding::Masq { fb.port.unwrap_or(svc.port) } else { svc.port };
            cfg.fallback = Some(DestConfig::new(server, port, fwd));
        }
        Ok(cfg)
    }

    fn servers(&self, t: &Topology) -> Result<Vec<ServerConfig>, Error> {
        t.servers
            .iter()
            .map(|s| {
                Ok(ServerConfig {
                    name: s.name.clone(),
                    address: s.address,
                    segment: s.segment.clone(),
                    gateway: match &s.gateway {
                        Some(g) => Some(t.directors.iter().position(|d| &d.name == g).ok_or_else(|| {
                            Error::bare(format!("real server {:?}: no director named {g:?}", s.name))
                        })?),
                        None => None,
                    },
                    uplink: DuplexLink::symmetric(channel(&s.uplink)),
                    cpu: cpu(&s.cpu),
                    backend: match &s.backend {
                        Some(b) => Some(t.backends.iter().position(|x| &x.name == b).ok_or_else(|| {
                            Error::bare(format!("real server {:?}: no backend named {b:?}", s.name))
                        })?),
                        None => None,
                    },
                })
            })
            .collect()
    }

    fn population(
        &self,
        i: usize,
        c: &crate::format::Clients,
        cfg: &ClusterConfig,
    ) -> Result<PopulationConfig, Error> {
        let p = format!("clients[{i}]");
        let first_inet = cfg.directors.iter().flat_map(|d| &d.services).find_map(|s| match s.addr {
            ServiceKey::Addr { addr: vip, port, .. } => Some((vip, port)),
            ServiceKey::Fwmark { .. } => None,
        });
        let (vip, port) = match (c.vip, c.port, first_inet) {
            (Some(v), Some(port), _) => (v, port),
            (v, port, Some((dv, dp))) => (v.unwrap_or(dv), port.unwrap_or(dp)),
            (Some(v), None, None) => (v, 0),
            (None, _, None) => {
                return Err(self
                    .err(&format!("{p}.vip"), "no service has a VIP to default to: give `vip` and `port`"));
            }
        };
        let arrival = self.arrival(&format!("{p}.arrival"), &c.arrival)?;
        let transport = match &c.transport {
            Transport::TCP { requests, think_time_ms, .. } => SimTransport::Tcp {
                requests: self.dist(&format!("{p}.transport.requests"), requests, 1.0)?,
                think_time: self.dist(&format!("{p}.transport.think_time_ms"), think_time_ms, 1e-3)?,
            },
            Transport::UDP { requests, think_time_ms, timeout_ms } => SimTransport::Udp {
                requests: self.dist(&format!("{p}.transport.requests"), requests, 1.0)?,
                think_time: self.dist(&format!("{p}.transport.think_time_ms"), think_time_ms, 1e-3)?,
                timeout: ms(self.finite(&format!("{p}.transport.timeout_ms"), *timeout_ms, 0.0)?),
            },
        };
        Ok(PopulationConfig {
            name: c.name.clone(),
            arrival,
            vip,
            port,
            fwmark: c.fwmark,
            clients: c.addresses,
            first_client: c.first_address,
            access_latency: ms(self.finite(&format!("{p}.access_latency_ms"), c.access_latency_ms, 0.0)?),
            transport,
            request_bytes: self.dist(&format!("{p}.request_bytes"), &c.request_bytes, 1.0)?,
            response_bytes: self.dist(&format!("{p}.response_bytes"), &c.response_bytes, 1.0)?,
            demand: self.dist(&format!("{p}.demand_ms"), &c.demand_ms, 1e-3)?,
            backend_demand: c
                .backend_demand_ms
                .as_ref()
                .map(|d| self.dist(&format!("{p}.backend_demand_ms"), d, 1e-3))
                .transpose()?,
            response_timeout: match &c.transport {
                Transport::TCP { response_timeout_s: Some(x), .. } => {
                    let path = format!("{p}.transport.response_timeout_s");
                    let d = secs(self.finite(&path, *x, 0.0)?);
                    if d == Duration::ZERO {
                        return Err(self.err(&path, format!("must be > 0, got {x}")));
                    }
                    Some(d)
                }
                _ => None,
            },
        })
    }

    fn arrival(&self, p: &str, a: &Arrival) -> Result<ArrivalProcess, Error> {
        let process = match a {
            Arrival::Poisson { rate } => ArrivalProcess::Poisson { rate: *rate },
            Arrival::Constant { rate } => ArrivalProcess::Constant { rate: *rate },
            Arrival::OnOff { rate, on_s, off_s } => ArrivalProcess::OnOff {
                rate: *rate,
                on: self.dist(&format!("{p}.on_s"), on_s, 1.0)?,
                off: self.dist(&format!("{p}.off_s"), off_s, 1.0)?,
            },
            Arrival::Schedule { steps } => {
                let mut out = Vec::with_capacity(steps.len());
                for (k, &(t, r)) in steps.iter().enumerate() {
                    let t = self.finite(&format!("{p}.steps[{k}]"), t, 0.0)?;
                    out.push((Time(dist::to_ns(t)), r));
                }
                ArrivalProcess::Schedule { steps: out }
            }
            Arrival::Trace { file } => {
                let (path, text) = self
                    .files
                    .read(file, "a trace of arrival times", files::MAX_TRACE_BYTES)
                    .map_err(|m| self.err(&format!("{p}.file"), m))?;
                let times = parse_trace_csv(&text).map_err(|e| {
                    Error::bare(format!("{}:{}: {}", path.display(), e.line, trace_message(&text, &e)))
                })?;
                ArrivalProcess::Trace { times }
            }
        };
        sim_core::arrival::Arrivals::new(process.clone()).map_err(|e| self.err(p, e.to_string()))?;
        Ok(process)
    }

    /// A distribution in the field's unit, scaled by `k` into sim-core's (seconds, bytes,
    /// counts), and checked.
    fn dist(&self, p: &str, d: &Dist, k: f64) -> Result<dist::Dist, Error> {
        let out = match d {
            Dist::Constant(x) => dist::Dist::Constant(x * k),
            Dist::Exponential { mean } => dist::Dist::Exponential { mean: mean * k },
            Dist::LogNormal { mean, scv } => {
                if !(*mean > 0.0 && *scv > 0.0) {
                    return Err(self.err(
                        p,
                        format!("LogNormal needs mean > 0 and scv > 0, got mean {mean}, scv {scv}"),
                    ));
                }
                dist::Dist::lognormal_mean_scv(mean * k, *scv)
            }
            Dist::Pareto { shape, scale } => dist::Dist::Pareto { shape: *shape, scale: scale * k },
            Dist::BoundedPareto { shape, low, high } => {
                dist::Dist::BoundedPareto { shape: *shape, low: low * k, high: high * k }
            }
            Dist::Empirical(points) => dist::Dist::Empirical(
                dist::Empirical::new(points.iter().map(|&(v, c)| (v * k, c)).collect())
                    .map_err(|e| self.err(p, e.to_string()))?,
            ),
        };
        out.validate().map_err(|e| self.err(p, e.to_string()))?;
        Ok(out)
    }

    /// A duration field of the feedback block [s or ms by `scale`]: finite, and > 0 unless
    /// `zero_ok`; one that rounds to 0 ns is refused too.
    fn fb_duration(&self, field: &str, x: f64, scale: f64, zero_ok: bool) -> Result<Duration, Error> {
        let path = format!("feedback.{field}");
        let x = self.finite(&path, x, 0.0)?;
        let d = secs(x * scale);
        if !zero_ok && d == Duration::ZERO {
            return Err(self.err(&path, format!("must be > 0, got {x}")));
        }
        Ok(d)
    }

    /// The law and its own parameters (each checked, every law's, so that a sweep over
    /// `feedback.law` meets no surprise).
    fn law_kind(&self, f: &Feedback) -> Result<LawKind, Error> {
        let e = |field: &str, m: String| self.err(&format!("feedback.{field}"), m);
        let error_penalty = self.finite("feedback.error_penalty", f.error_penalty, 0.0)?;
        let weight_per_qps = self.finite("feedback.weight_per_qps", f.weight_per_qps, 0.0)?;
        if weight_per_qps <= 0.0 {
            return Err(e("weight_per_qps", format!("must be > 0, got {weight_per_qps}")));
        }
        let grpc = GrpcWrr {
            error_penalty,
            weight_per_qps,
            blackout_period: self.fb_duration("blackout_period_s", f.blackout_period_s, 1.0, true)?,
            weight_expiration_period: self.fb_duration(
                "weight_expiration_period_s",
                f.weight_expiration_period_s,
                1.0,
                false,
            )?,
        };
        let max_pool = lvs_sched::feedback::Prequal::MAX_POOL_SIZE;
        if !(1..=max_pool).contains(&f.pool_size) {
            return Err(e("pool_size", format!("{} is not between 1 and {max_pool}", f.pool_size)));
        }
        let q_rif = self.finite("feedback.q_rif", f.q_rif, 0.0)?;
        if !(0.0..=1.0).contains(&q_rif) {
            return Err(e("q_rif", format!("{q_rif} is not in [0, 1]")));
        }
        let prequal = lvs_sched::feedback::Prequal {
            pool_size: f.pool_size,
            max_age: self.fb_duration("max_age_s", f.max_age_s, 1.0, false)?,
            q_rif,
        };
        Ok(match f.law {
            Law::Capacity => LawKind::Capacity,
            Law::GrpcWrr => LawKind::GrpcWrr(grpc),
            Law::Prequal => LawKind::Prequal(prequal),
        })
    }

    /// The feedback block, checked field by field (each error names its field).
    fn feedback(&self, f: &Feedback) -> Result<FeedbackConfig, Error> {
        let e = |field: &str, m: String| self.err(&format!("feedback.{field}"), m);
        if !(f.max_weight >= 1 && f.max_weight <= MAX_WEIGHT) {
            return Err(e("max_weight", format!("{} is not between 1 and {MAX_WEIGHT}", f.max_weight)));
        }
        if f.min_weight > f.max_weight {
            return Err(e("min_weight", format!("{} is above max_weight {}", f.min_weight, f.max_weight)));
        }
        if !(f.smoothing > 0.0 && f.smoothing <= 1.0) {
            return Err(e("smoothing", format!("{} is not in (0, 1]", f.smoothing)));
        }
        if f.dead_band > f.max_weight {
            return Err(e("dead_band", format!("{} is above max_weight {}", f.dead_band, f.max_weight)));
        }
        let quiesce_after = self.fb_duration("quiesce_after_s", f.quiesce_after_s, 1.0, false)?;
        let remove_after = self.fb_duration("remove_after_s", f.remove_after_s, 1.0, false)?;
        if remove_after <= quiesce_after {
            return Err(e(
                "remove_after_s",
                format!(
                    "must be longer than quiesce_after_s ({} s), got {} s",
                    f.quiesce_after_s, f.remove_after_s
                ),
            ));
        }
        if !(f.link.loss >= 0.0 && f.link.loss < 1.0) {
            return Err(e("link.loss", format!("{} is not in [0, 1)", f.link.loss)));
        }
        if f.link.max_retries == 0 {
            return Err(e("link.max_retries", "must be at least 1".into()));
        }
        let law = LawConfig {
            min_weight: f.min_weight,
            max_weight: f.max_weight,
            smoothing: f.smoothing,
            dead_band: f.dead_band,
            max_step: f.max_step,
            slow_start: self.fb_duration("slow_start_s", f.slow_start_s, 1.0, true)?,
            kind: self.law_kind(f)?,
        };
        law.validate().map_err(|m| self.err("feedback", m))?;
        Ok(FeedbackConfig {
            interval: self.fb_duration("interval_s", f.interval_s, 1.0, false)?,
            law,
            quiesce_after,
            remove_after,
            rescan: self.fb_duration("rescan_s", f.rescan_s, 1.0, false)?,
            master_timeout: f
                .master_timeout_s
                .map(|x| self.fb_duration("master_timeout_s", x, 1.0, false))
                .transpose()?,
            authenticated: f.authenticated,
            link: SimFeedbackLink {
                latency: self.fb_duration("link.latency_ms", f.link.latency_ms, 1e-3, true)?,
                loss: f.link.loss,
                rto: self.fb_duration("link.rto_ms", f.link.rto_ms, 1e-3, false)?,
                max_retries: f.link.max_retries,
            },
        })
    }
}

/// The server entry (as written) that a name refers to: the entry itself or one of its
/// members.
fn find_server<'t>(t: &'t Topology, name: &str) -> Option<&'t topologies::Server> {
    t.servers.iter().find(|s| s.name == name || s.member_names().any(|m| m == name))
}

fn channel(c: &Channel) -> ChannelConfig {
    ChannelConfig {
        latency: ms(c.latency_ms),
        bandwidth_bps: c.bandwidth_mbps.map(|m| (m * 1e6).round() as u64),
        per_packet: us(c.per_packet_us),
        buffer_bytes: c.buffer_bytes,
        buffer_packets: c.buffer_packets,
    }
}

fn cpu(c: &topologies::Cpu) -> CpuConfig {
    CpuConfig { cores: c.cores, speed: c.speed, max_in_service: c.workers, backlog: c.backlog }
}

/// 1, 2 or 5 times a power of ten, at least `x`.
fn nice_interval(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|&v| v >= x * (1.0 - 1e-9)).unwrap_or(10.0 * p)
}
