//! A scenario's `events`: ipvsadm changes become sim-core `Action`s, changes to a real
//! server itself (background work, faults) `ServerEvent`s, and a director's faults
//! `DirectorEvent`s; each checked with an error that names its field.

use lvs_sched::Duration;
use sim_core::model::{
    Action, Change as SimChange, ClusterConfig, DirectorChange, DirectorEvent, MAX_WEIGHT, ServerChange,
    ServerEvent,
};
use topologies::Topology;

use super::{Builder, secs};
use crate::Error;
use crate::format::{Change, Event, Scenario};

/// What `events` become.
#[derive(Default)]
pub(super) struct Built {
    pub actions: Vec<Action>,
    pub server_events: Vec<ServerEvent>,
    /// The scenario event (index into `events`) each server event comes from.
    pub server_event_source: Vec<usize>,
    pub director_events: Vec<DirectorEvent>,
    /// The scenario event (index into `events`) each director event comes from.
    pub director_event_source: Vec<usize>,
}

/// How a change is named in messages.
fn name(c: Change) -> &'static str {
    match c {
        Change::Weight(_) => "Weight",
        Change::Remove => "Remove",
        Change::Restore(_) => "Restore",
        Change::Background(_) => "Background",
        Change::BackgroundLoad(_) => "BackgroundLoad",
        Change::Crash => "Crash",
        Change::Hang => "Hang",
        Change::Slow(_) => "Slow",
        Change::Recover => "Recover",
        Change::DirectorDown => "DirectorDown",
        Change::DirectorUp => "DirectorUp",
        Change::LinkDown(_) => "LinkDown",
        Change::LinkUp(_) => "LinkUp",
        Change::DirectorWithdraw => "DirectorWithdraw",
        Change::DirectorAnnounce => "DirectorAnnounce",
    }
}

impl Builder<'_> {
    /// The events, checked.
    pub(super) fn events(&self, s: &Scenario, t: &Topology, cfg: &ClusterConfig) -> Result<Built, Error> {
        let mut out = Built::default();
        for (i, e) in s.events.iter().enumerate() {
            let p = format!("events[{i}]");
            let at = secs(self.finite(&format!("{p}.at_s"), e.at_s, 0.0)?);
            if let Some(change) = director_change(e.change) {
                out.director_events.push(self.director_event(&p, e, at, change, cfg)?);
                out.director_event_source.push(i);
                continue;
            }
            let Some(server) = &e.server else {
                return Err(self.err(
                    &format!("{p}.server"),
                    format!(
                        "`{}` changes a real server: name it (or a `count` group) with `server`",
                        name(e.change)
                    ),
                ));
            };
            let members = self.members(&p, s, t, server)?;
            let change = match e.change {
                Change::Weight(w) => SimChange::Weight(w),
                Change::Remove => SimChange::Remove,
                Change::Restore(w) => SimChange::Restore(w),
                _ => {
                    let change = self.server_change(&p, e, &members, cfg)?;
                    out.server_events.extend(members.iter().map(|&server| ServerEvent {
                        at,
                        server,
                        change,
                    }));
                    out.server_event_source.resize(out.server_events.len(), i);
                    continue;
                }
            };
            if let SimChange::Weight(w) | SimChange::Restore(w) = change
                && w > MAX_WEIGHT
            {
                return Err(
                    self.err(&format!("{p}.change"), format!("weight {w} is out of range 0..={MAX_WEIGHT}"))
                );
            }
            let before = out.actions.len();
            for (di, d) in cfg.directors.iter().enumerate() {
                if e.director.as_ref().is_some_and(|n| *n != d.name) {
                    continue;
                }
                for (si, svc) in d.services.iter().enumerate() {
                    if e.service.is_some_and(|k| k != si) {
                        continue;
                    }
                    for &m in &members {
                        if svc.dests.iter().any(|x| x.server == m) {
                            out.actions.push(Action { at, director: di, service: si, server: m, change });
                        }
                    }
                }
            }
            if out.actions.len() == before {
                return Err(
                    self.err(&p, format!("real server {server:?} is in no service this event can change"))
                );
            }
        }
        Ok(out)
    }

    /// The real servers an event names: one, or every member of a `count` group.
    fn members(&self, p: &str, s: &Scenario, t: &Topology, server: &str) -> Result<Vec<usize>, Error> {
        if let Some(k) = t.servers.iter().position(|x| x.name == server) {
            return Ok(vec![k]);
        }
        match s.servers.iter().find(|x| x.name == server && x.count != 1) {
            Some(g) => {
                Ok(g.member_names().filter_map(|n| t.servers.iter().position(|x| x.name == n)).collect())
            }
            None => {
                let names: Vec<_> = t.servers.iter().map(|x| x.name.as_str()).collect();
                Err(self.err(
                    &format!("{p}.server"),
                    format!("no real server named {server:?} (servers are: {})", names.join(", ")),
                ))
            }
        }
    }

    /// A change to the real server itself: background work or a fault. It is not an
    /// ipvsadm change, so `director` and `service` are refused.
    fn server_change(
        &self,
        p: &str,
        e: &Event,
        members: &[usize],
        cfg: &ClusterConfig,
    ) -> Result<ServerChange, Error> {
        let what = match e.change {
            Change::Background(_) | Change::BackgroundLoad(_) => "a background change is work",
            _ => "a fault happens",
        };
        for (field, given) in [("director", e.director.is_some()), ("service", e.service.is_some())] {
            if given {
                return Err(self.err(
                    &format!("{p}.{field}"),
                    format!(
                        "{what} on the real server itself, not an ipvsadm change, so it has no `{field}`: \
                         remove it"
                    ),
                ));
            }
        }
        Ok(match e.change {
            Change::BackgroundLoad(cores) => {
                if !(cores.is_finite() && cores >= 0.0) {
                    return Err(self.err(
                        &format!("{p}.change"),
                        format!("a background load is a number of cores >= 0, not {cores}"),
                    ));
                }
                let millicores = (cores * 1000.0).round().min(f64::from(u32::MAX)) as u32;
                for &server in members {
                    let have = cfg.servers[server].cpu.cores;
                    if millicores >= have.saturating_mul(1000) {
                        return Err(self.err(
                            &format!("{p}.change"),
                            format!(
                                "a background load of {cores} cores leaves nothing of real server {:?}'s {have} cores",
                                cfg.servers[server].name
                            ),
                        ));
                    }
                }
                ServerChange::BackgroundLoad(millicores)
            }
            Change::Background(n) => ServerChange::Background(n),
            Change::Crash => ServerChange::Crash,
            Change::Hang => ServerChange::Hang,
            Change::Recover => ServerChange::Recover,
            Change::Slow(f) => {
                // Thousandths of the speed, 1..=999, as sim-core takes it.
                let permille = if f.is_finite() { (f * 1000.0).round() } else { 0.0 };
                if !(f > 0.0 && f < 1.0 && (1.0..=999.0).contains(&permille)) {
                    return Err(self.err(
                        &format!("{p}.change"),
                        format!(
                            "Slow({f}): the fraction of its speed the server keeps, between 0.001 and 0.999 \
                             (such as Slow(0.5)); `Recover` gives it its full speed back"
                        ),
                    ));
                }
                ServerChange::Slow(permille as u32)
            }
            _ => unreachable!("not a server change: {}", name(e.change)),
        })
    }

    /// A director's fault or repair: it needs `director`, and names no server or service.
    fn director_event(
        &self,
        p: &str,
        e: &Event,
        at: Duration,
        change: DirectorChange,
        cfg: &ClusterConfig,
    ) -> Result<DirectorEvent, Error> {
        let n = name(e.change);
        for (field, given) in [("server", e.server.is_some()), ("service", e.service.is_some())] {
            if given {
                return Err(self.err(
                    &format!("{p}.{field}"),
                    format!("`{n}` happens to a director, so it has no `{field}`: remove it (name the director with `director`)"),
                ));
            }
        }
        let known = cfg.directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        let Some(want) = &e.director else {
            return Err(self.err(
                &format!("{p}.director"),
                format!("`{n}` needs `director`: the director it happens to (directors are: {known})"),
            ));
        };
        let Some(director) = cfg.directors.iter().position(|d| &d.name == want) else {
            return Err(self.err(
                &format!("{p}.director"),
                format!("no director named {want:?} (directors are: {known})"),
            ));
        };
        let member = cfg.ecmp.as_ref().is_some_and(|t| t.members.contains(&director));
        if matches!(change, DirectorChange::Withdraw | DirectorChange::Announce) && !member {
            return Err(self.err(
                &format!("{p}.director"),
                format!("`{n}`: director {want:?} is in no ECMP tier (`ecmp.directors`)"),
            ));
        }
        Ok(DirectorEvent { at, director, change })
    }
}

/// The director change an event's change is, if it is one.
fn director_change(c: Change) -> Option<DirectorChange> {
    match c {
        Change::DirectorDown => Some(DirectorChange::Down),
        Change::DirectorUp => Some(DirectorChange::Up),
        Change::LinkDown(side) => Some(DirectorChange::Link(side.into(), false)),
        Change::LinkUp(side) => Some(DirectorChange::Link(side.into(), true)),
        Change::DirectorWithdraw => Some(DirectorChange::Withdraw),
        Change::DirectorAnnounce => Some(DirectorChange::Announce),
        _ => None,
    }
}
