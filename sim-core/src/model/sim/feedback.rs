//! The simulation's side of the feedback loop: which agents run where, the [`Host`] that
//! lets them measure servers and lets masters change IPVS tables, and the report.

use feedbackd_proto::agent::{AgentConfig, Sample};
use feedbackd_proto::auth::Psk;
use feedbackd_proto::keys::{AgentKey, Auth, Cidr, KeyTable};
use feedbackd_proto::master::{MasterConfig, MasterEvent, RsKey, TableEntry};
use feedbackd_proto::types::ServiceSpec;
use lvs_sched::feedback::LawKind;
use lvs_sched::{Forwarding, Time};

use super::{Director, Server};
use crate::feedback::{AgentSpec, Host, Loop, Sampler, ServerCounters, weight_stats};
use crate::model::config::{ClusterConfig, FeedbackConfig, ServerChange};
use crate::model::report::{FeedbackReport, FeedbackServerReport};
use crate::rng::Streams;
use lvs_ipvs::{self as ipvs, Protocol, ServiceKey};

/// The feedback loop of a run and what is measured of it.
pub(super) struct Feedback {
    pub(super) lp: Loop,
    pub(super) samplers: Vec<Sampler>,
    /// Services each server's agent registers.
    pub(super) services: Vec<usize>,
    /// Each server's weight (in its reported service) over time: `(time, weight)` changes.
    pub(super) trace: Vec<Vec<(Time, u32)>>,
}

/// The agent's registration for one real server of one virtual service.
fn spec(addr: ServiceKey, port: u16, forwarding: Forwarding) -> ServiceSpec {
    assert!(forwarding != Forwarding::Local, "validated: no local forwarding");
    match addr {
        ServiceKey::Addr { protocol, addr: vip, .. } => {
            ServiceSpec { protocol, port, vip: Some(vip), fwmark: None, forwarding, address: None }
        }
        ServiceKey::Fwmark { mark, .. } => ServiceSpec {
            protocol: Protocol::Tcp,
            port,
            vip: None,
            fwmark: Some(mark),
            forwarding,
            address: None,
        },
    }
}

impl Feedback {
    /// One agent per real server and director it serves, registering every service the
    /// server is in; one master per director. Validated configurations only.
    pub(super) fn new(
        cfg: &ClusterConfig,
        f: &FeedbackConfig,
        streams: &Streams,
        servers: &[Server],
    ) -> Feedback {
        // Authenticated: each server's agent has its own key, and may claim only its own
        // address (its keys-file line).
        let psk = |s: usize| {
            f.authenticated.then(|| {
                let key = format!("lvsim feedback key, seed {:016x}, server {s}", cfg.seed);
                Psk::from_file_contents(key.as_bytes()).expect("a long enough key")
            })
        };
        let n = cfg.servers.len();
        let mut specs: Vec<Vec<ServiceSpec>> = vec![Vec::new(); n];
        let mut directors: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (di, d) in cfg.directors.iter().enumerate() {
            for svc in &d.services {
                for dest in &svc.dests {
                    let s = spec(svc.addr, dest.kernel_port(svc.addr), dest.fwd);
                    if !specs[dest.server].contains(&s) {
                        specs[dest.server].push(s);
                    }
                    if !directors[dest.server].contains(&di) {
                        directors[dest.server].push(di);
                    }
                }
            }
        }
        let master_timeout =
            f.master_timeout.unwrap_or_else(|| AgentConfig::default_master_timeout(f.interval));
        let mut agents = Vec::new();
        for (s, server) in cfg.servers.iter().enumerate() {
            for &director in &directors[s] {
                agents.push(AgentSpec {
                    config: AgentConfig {
                        agent_id: server.name.clone(),
                        services: specs[s].clone(),
                        interval: f.interval,
                        psk: psk(s),
                        master_timeout,
                    },
                    director,
                    server: s,
                    addr: server.address,
                });
            }
        }
        let auth = if f.authenticated {
            let mut table = KeyTable::default();
            for (s, server) in cfg.servers.iter().enumerate() {
                let key = psk(s).expect("authenticated");
                let mut line = AgentKey::anything(key);
                line.addresses = vec![Cidr::host(server.address)];
                table.insert(server.name.clone(), line);
            }
            Auth::Keys(table)
        } else {
            Auth::Insecure
        };
        // The cluster's own agents: the daemon's bounds against floods (registrations per
        // second, servers per agent) are not part of the model.
        let master = MasterConfig {
            auth,
            max_registrations_per_s: 0,
            max_servers_per_agent: usize::MAX,
            law: f.law,
            quiesce_after: f.quiesce_after,
            remove_after: f.remove_after,
            ..MasterConfig::default()
        };
        let masters = cfg.directors.iter().map(|_| (master.clone(), Some(f.rescan))).collect();
        let lp = Loop::new(masters, agents, f.link, streams.stream("feedback"));
        let trace = servers.iter().map(|_| Vec::new()).collect();
        Feedback {
            lp,
            // Only Prequal's agents report requests in flight and latency: the other laws'
            // reports stay byte for byte as they were.
            samplers: vec![
                if matches!(f.law.kind, LawKind::Prequal(_)) {
                    Sampler::with_in_flight()
                } else {
                    Sampler::new()
                };
                n
            ],
            services: specs.iter().map(Vec::len).collect(),
            trace,
        }
    }

    /// The report: the loop's counters and each server's weight over the window.
    pub(super) fn report(&self, cfg: &ClusterConfig, window: (Time, Time)) -> FeedbackReport {
        let f = cfg.feedback.as_ref().expect("a run with feedback");
        let stats = self.lp.stats();
        let (mut applied, mut changes) = (0, 0);
        for d in 0..cfg.directors.len() {
            let c = self.lp.master(d).counters();
            applied += c.reports;
            changes += c.weight_changes;
        }
        let servers = cfg
            .servers
            .iter()
            .enumerate()
            .map(|(s, server)| {
                let step_at = cfg
                    .server_events
                    .iter()
                    .filter(|e| {
                        e.server == s
                            && matches!(
                                e.change,
                                ServerChange::Background(_) | ServerChange::BackgroundLoad(_)
                            )
                    })
                    .map(|e| Time::ZERO + e.at)
                    .filter(|&t| t >= window.0 && t < window.1)
                    .max();
                let trace = &self.trace[s];
                let st = (!trace.is_empty()).then(|| weight_stats(trace, window.0, window.1, step_at));
                FeedbackServerReport {
                    name: server.name.clone(),
                    reports: self.lp.reports_of(s),
                    weight_changes: trace.len().saturating_sub(1) as u64,
                    weight_mean: st.map_or(0.0, |s| s.mean),
                    weight_min: st.map_or(0, |s| s.min),
                    weight_max: st.map_or(0, |s| s.max),
                    weight_travel_per_min: st.map_or(0.0, |s| s.travel_per_min),
                    reaction_s: st.and_then(|s| s.reaction_s),
                    capacity_last: self.samplers[s].last_capacity(),
                }
            })
            .collect();
        FeedbackReport {
            law: match f.law.kind {
                LawKind::Capacity => "capacity",
                LawKind::GrpcWrr(_) => "grpc_wrr",
                LawKind::Prequal(_) => "prequal",
            }
            .to_owned(),
            reports_sent: stats.reports_sent,
            reports_applied: applied,
            weight_changes: changes,
            segments_lost: stats.segments_lost,
            reconnects: stats.reconnects,
            servers,
        }
    }
}

/// The cluster as the feedback loop sees it.
pub(super) struct SimHost<'a> {
    pub(super) cfg: &'a ClusterConfig,
    pub(super) now: Time,
    pub(super) dirs: &'a mut [Director],
    pub(super) servers: &'a mut [Server],
    pub(super) samplers: &'a mut [Sampler],
    pub(super) services: &'a [usize],
    pub(super) trace: &'a mut [Vec<(Time, u32)>],
}

impl SimHost<'_> {
    /// The simulation's time when the loop was called.
    pub(super) fn now(&self) -> Time {
        self.now
    }

    /// Records the weight of every server whose reported dest is in director `d` and
    /// changed.
    fn trace(&mut self, d: usize, now: Time) {
        for (s, server) in self.servers.iter().enumerate() {
            let Some((sd, sid, did)) = server.weight_ref else { continue };
            if sd != d {
                continue;
            }
            let vs = self.dirs[d].ipvs.service_by_id(sid);
            let dest = vs.scheduler().dest(did);
            let linked = vs.scheduler().dests().any(|(id, _)| id == did);
            let w = if linked { dest.weight() } else { 0 };
            if self.trace[s].last().map(|&(_, lw)| lw) != Some(w) {
                self.trace[s].push((now, w));
            }
        }
    }
}

impl Host for SimHost<'_> {
    fn table(&mut self, director: usize, now: Time) -> (Vec<ipvs::ServiceKey>, Vec<TableEntry>) {
        let ipvs = &mut self.dirs[director].ipvs;
        ipvs.advance(now);
        let mut services = Vec::new();
        let mut entries = Vec::new();
        for vs in ipvs.services() {
            let service = vs.key();
            services.push(service);
            for (_, dest) in vs.scheduler().dests() {
                entries.push(TableEntry {
                    key: RsKey { service, addr: dest.addr(), port: dest.port() },
                    weight: dest.weight(),
                    forwarding: dest.fwd(),
                });
            }
        }
        // The weights as read (at the start, and after an operator's change).
        self.trace(director, now);
        (services, entries)
    }

    fn apply(&mut self, director: usize, now: Time, event: &MasterEvent) -> Result<(), String> {
        let d = &mut self.dirs[director];
        d.ipvs.advance(now);
        let r = match *event {
            MasterEvent::SetWeight { key, to, .. } => {
                let skey = key.service;
                let vs = d.ipvs.service(&skey).ok_or("no such service")?;
                let did = vs.scheduler().find_dest(key.addr, key.port).ok_or("no such real server")?;
                let dest = vs.scheduler().dest(did);
                // SET_DEST resends every field: the server's own, with the new weight.
                let dc = lvs_sched::DestConfig { weight: to, ..dest.config() };
                d.ipvs.edit_dest(skey, &dc).map(|_| ()).map_err(|e| e.to_string())
            }
            MasterEvent::AddRealServer { key, forwarding, weight, .. } => {
                let skey = key.service;
                // As the master's backends add it: ipvsadm's defaults but the weight.
                let dc = lvs_sched::DestConfig {
                    weight,
                    ..lvs_sched::DestConfig::new(key.addr, key.port, forwarding)
                };
                let server = self.cfg.servers.iter().position(|s| s.address == key.addr);
                let did = d.ipvs.add_dest(skey, &dc).map_err(|e| e.to_string())?;
                let sid = d.ipvs.service_id(&skey).expect("the service exists");
                if let Some(s) = server {
                    d.map_dest(sid, did, s as u32);
                    if let Some((wd, wsid, _)) = self.servers[s].weight_ref
                        && wd == director
                        && wsid == sid
                    {
                        self.servers[s].weight_ref = Some((wd, wsid, did));
                    }
                }
                Ok(())
            }
            MasterEvent::RemoveRealServer { key, .. } => {
                d.ipvs.del_dest(key.service, key.addr, key.port).map(|_| ()).map_err(|e| e.to_string())
            }
            MasterEvent::Registered { .. } | MasterEvent::Close { .. } => Ok(()),
        };
        self.trace(director, now);
        r
    }

    fn sample(&mut self, server: usize, now: Time) -> Sample {
        let s = &self.servers[server];
        let counters = ServerCounters {
            cores: s.cpu.config().cores,
            busy_core_ns: s.cpu.busy_core_ns(now),
            served: s.served,
            refused: s.refused,
            rif: s.rif.value(),
            rif_integral: s.rif.integral(now),
            rif_left: s.rif_left,
        };
        self.samplers[server].sample(now, &counters, self.services[server])
    }
}
