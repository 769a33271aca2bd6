//! What a valid configuration does that the kernel does too, but that its author should be
//! told of before trusting a run: [`ClusterConfig::warnings`].

use lvs_sched::{SchedulerKind, Service, Time};

use super::ClusterConfig;

/// A warning about one virtual service: where (indices into
/// [`ClusterConfig::directors`] and the director's `services`, and the place written as
/// [`super::ConfigError`] writes it), and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Index of the director.
    pub director: usize,
    /// Index of the service in the director's list.
    pub service: usize,
    /// `director "lvs" service TCP  10.0.0.1:80`.
    pub place: String,
    /// What the run will do.
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// How many idle servers a warning names before "and N more".
const NAMED: usize = 5;

impl ClusterConfig {
    /// Services whose scheduler's lookup table leaves real servers of positive weight out
    /// (sh and dh: 256 buckets; mh: [`lvs_sched::MH_TAB_SIZE`] slots, or weights that fill
    /// them first): the kernel never schedules to those servers, and neither does the
    /// run. The table is built exactly as the run builds it (servers added in order),
    /// so the servers named are the ones that will stay idle. Expects a configuration
    /// that [`ClusterConfig::validate`] accepts (a refused server is skipped).
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        for (di, d) in self.directors.iter().enumerate() {
            for (si, svc) in d.services.iter().enumerate() {
                let Some(slots) = svc.scheduler.table_size() else { continue };
                // Only these servers can be in the final table (so validating a service of
                // 100,000 stays cheap): mh stops rebuilding once it has more than `slots`
                // (the servers added after stay out); sh and dh fill their buckets from
                // the front of the list, the servers added last.
                let n = svc.dests.len();
                let window = match svc.scheduler {
                    SchedulerKind::Mh => 0..n.min(slots as usize),
                    _ => n.saturating_sub(slots as usize)..n,
                };
                let mut idle: Vec<usize> = (0..n)
                    .filter(|i| !window.contains(i) && svc.dests[*i].weight > 0)
                    .map(|i| svc.dests[i].server)
                    .collect();
                let mut s = Service::new(svc.scheduler, svc.flags, 0, Time::ZERO);
                let mut server_of = Vec::new();
                for dest in &svc.dests[window] {
                    let Some(server) = self.servers.get(dest.server) else { continue };
                    let dc = dest.kernel(server.address, svc.addr);
                    if let Ok(id) = s.add_dest(&dc) {
                        server_of.resize(server_of.len().max(id.index() + 1), usize::MAX);
                        server_of[id.index()] = dest.server;
                    }
                }
                idle.extend(s.unreachable_dests().iter().map(|id| server_of[id.index()]));
                if idle.is_empty() {
                    continue;
                }
                idle.sort_unstable();
                let weighted = svc.dests.iter().filter(|x| x.weight > 0).count();
                let why = if weighted > slots as usize {
                    format!("more real servers ({weighted}) than its {slots} slots")
                } else {
                    format!("weights that fill its {slots} slots before every server has one")
                };
                let mut names: Vec<String> =
                    idle.iter().take(NAMED).map(|&i| format!("{:?}", self.servers[i].name)).collect();
                if idle.len() > NAMED {
                    names.push(format!("and {} more", idle.len() - NAMED));
                }
                out.push(ConfigWarning {
                    director: di,
                    service: si,
                    place: format!("director {:?} service {}", d.name, svc.addr),
                    message: format!(
                        "{} real server(s) will get no connection: {}'s lookup table has {why}, so \
                         it never names them (the kernel does the same): {}",
                        idle.len(),
                        svc.scheduler,
                        names.join(", ")
                    ),
                });
            }
        }
        out
    }
}
