//! Real-server health checks and real-server faults in the simulation.
//!
//! Each director runs one [`HealthChecker`] per real server of each of its services that
//! has a `check`; each checker owns one timer of the simulation's `TimerSet` (its next
//! check or deadline), and its probes travel as `Event::Probe`s:
//!
//! ```text
//!  director                      real server
//!   start ──SYN (internal out)──▶ crashed: nothing (the check times out)
//!         ◀─SYN-ACK (internal in)─ connect: success
//!         ──request──────────────▶ negotiate: a job of `demand` on its CPU
//!         ◀─page (internal in)──── when the job completes
//! ```
//!
//! Probes take the internal link's latency each way but no room on it. A check job is a
//! real job on the server's processors with an id from a reserved range
//! ([`CHECK_JOB_BASE`]), so its completion goes back to its checker; a job that completes
//! after its check timed out is ignored.
//!
//! Verdicts edit the director's IPVS table as ipvsadm would: down → weight 0 (quiesce) or
//! `-d` (remove); up → the configured weight again (`-e`, or `-a`); nanny's slow start
//! → the weight it says (`-e`). When every checked
//! real server of a service is down the fallback server is added (weight 1), and deleted
//! when one comes back. Health checking stops at the end of the arrivals (the duration):
//! nothing is started, timed out or decided after it.
//!
//! Faults (`ServerChange::{Crash, Hang, Slow, Recover}`) are applied to the server's
//! processors here too, and reported with their detection: the first checker (any
//! director, any service) to declare the server down after the fault began.

use lvs_sched::Time;

use super::{Event, NO_SERVER, Simulation};
use crate::cpu::{Admission, Fault};
use crate::ha::check::{HealthChecker, Outcome, Probe, Round, Verdict};
use crate::ha::{CheckKind, Checker, OnFailure, Schedule};
use crate::model::DestConfig;
use crate::model::config::{Change, ClusterConfig, ServerChange};
use crate::model::report::{CheckStats, FaultReport, HaReport};

/// CPU job ids from here on are health checks (client connections stay below).
pub(super) const CHECK_JOB_BASE: u32 = 1 << 31;

/// Where a probe is.
#[derive(Clone, Copy, Debug)]
pub(super) enum ProbeStep {
    /// The SYN reaches the real server.
    Syn,
    /// A negotiate check's request reaches it (after the handshake).
    Request,
    /// The answer reaches the director.
    Reply(Outcome),
}

/// The health checks and faults of a run.
pub(super) struct Health {
    checkers: Vec<Slot>,
    groups: Vec<Group>,
    /// Per director with ldirectord checks: its round (members: checker indices).
    rounds: Vec<Round>,
    /// Check jobs on real servers: `(checker, serial)` by `job - CHECK_JOB_BASE`.
    jobs: Vec<Option<(u32, u32)>>,
    free_jobs: Vec<u32>,
    /// Every fault, in the order they began.
    faults: Vec<FaultReport>,
    /// Per real server: its fault now, and its last one.
    open_fault: Vec<Option<usize>>,
    last_fault: Vec<Option<usize>>,
    /// Per director: times a fallback server was put in.
    fallbacks: Vec<u64>,
    /// The first checker's owner number in the simulation's timer set.
    base: u32,
}

/// One (director, service, real server) checker.
struct Slot {
    hc: HealthChecker,
    dir: usize,
    service: usize,
    group: usize,
    /// The ldirectord round it belongs to (index in `rounds`).
    round: Option<usize>,
    dest: DestConfig,
    kind: CheckKind,
    on_failure: OnFailure,
}

/// The checked real servers of one service.
struct Group {
    members: usize,
    down: usize,
    fallback: Option<DestConfig>,
    fallback_in: bool,
}

impl Health {
    /// The checkers of every service with a check (first checks one interval after the
    /// start; nanny's at the start), their timers numbered from `base`; `None` when the
    /// run has no check and no real-server fault. A director's ldirectord checkers
    /// ([`Schedule::Round`]) form one [`Round`] (its services and real servers in order),
    /// which starts one interval after the start.
    pub(super) fn new(cfg: &ClusterConfig, base: u32) -> Option<Health> {
        let faults = cfg.server_events.iter().any(|e| e.change.is_fault());
        let checks = cfg.directors.iter().flat_map(|d| &d.services).any(|s| s.check.is_some());
        if !faults && !checks {
            return None;
        }
        let mut checkers = Vec::new();
        let mut groups = Vec::new();
        let mut rounds = Vec::new();
        for (dir, d) in cfg.directors.iter().enumerate() {
            let mut round = Vec::new();
            let mut round_interval = None;
            for (service, svc) in d.services.iter().enumerate() {
                let Some(check) = &svc.check else { continue };
                let paced = check.schedule == Schedule::Round;
                if paced {
                    round_interval.get_or_insert(check.interval);
                }
                let first = match check.checker {
                    Checker::Nanny => Time::ZERO,
                    Checker::Ldirectord | Checker::Keepalived => Time::ZERO + check.interval,
                };
                for dest in &svc.dests {
                    let mut hc = HealthChecker::new(check, first).with_weight(dest.weight);
                    if paced {
                        hc.pace();
                        round.push(checkers.len());
                    }
                    checkers.push(Slot {
                        hc,
                        dir,
                        service,
                        group: groups.len(),
                        round: paced.then_some(rounds.len()),
                        dest: *dest,
                        kind: check.kind,
                        on_failure: check.on_failure,
                    });
                }
                groups.push(Group {
                    members: svc.dests.len(),
                    down: 0,
                    fallback: check.fallback,
                    fallback_in: false,
                });
            }
            if let (Some(&first), Some(interval)) = (round.first(), round_interval) {
                checkers[first].hc.start_at(Time::ZERO + interval);
                rounds.push(Round::new(round, interval));
            }
        }
        Some(Health {
            checkers,
            groups,
            rounds,
            jobs: Vec::new(),
            free_jobs: Vec::new(),
            faults: Vec::new(),
            open_fault: vec![None; cfg.servers.len()],
            last_fault: vec![None; cfg.servers.len()],
            fallbacks: vec![0; cfg.directors.len()],
            base,
        })
    }

    /// Number of checkers (timers) of a configuration.
    pub(super) fn count_checkers(cfg: &ClusterConfig) -> usize {
        cfg.directors
            .iter()
            .flat_map(|d| &d.services)
            .filter(|s| s.check.is_some())
            .map(|s| s.dests.len())
            .sum()
    }

    fn alloc_job(&mut self, checker: usize, serial: u32) -> u32 {
        let slot = (checker as u32, serial);
        let i = match self.free_jobs.pop() {
            Some(i) => {
                self.jobs[i as usize] = Some(slot);
                i
            }
            None => {
                self.jobs.push(Some(slot));
                u32::try_from(self.jobs.len() - 1).expect("fewer than 2^31 check jobs")
            }
        };
        assert!(i < u32::MAX - CHECK_JOB_BASE, "fewer than 2^31 check jobs");
        CHECK_JOB_BASE + i
    }

    /// Forgets a check job (done or lost): its `(checker, serial)`.
    pub(super) fn free_job(&mut self, job: u32) -> (usize, u32) {
        let i = job - CHECK_JOB_BASE;
        let (checker, serial) = self.jobs[i as usize].take().expect("a live check job");
        self.free_jobs.push(i);
        (checker as usize, serial)
    }

    /// A connection sent to `server` failed at `now`: counted against its fault, if it
    /// has one now.
    pub(super) fn conn_failed(&mut self, server: usize) {
        if let Some(i) = self.open_fault[server] {
            let f = &mut self.faults[i];
            if f.detected_at.is_some() {
                f.failed_after_detection += 1;
            } else {
                f.failed_before_detection += 1;
            }
        }
    }

    fn fault_begins(&mut self, cfg: &ClusterConfig, server: usize, kind: &str, now: Time) {
        self.open_fault[server] = Some(self.faults.len());
        self.last_fault[server] = Some(self.faults.len());
        self.faults.push(FaultReport {
            server: cfg.servers[server].name.clone(),
            kind: kind.to_owned(),
            at: now,
            ..FaultReport::default()
        });
    }

    fn fault_ends(&mut self, server: usize, now: Time) {
        if let Some(i) = self.open_fault[server].take() {
            self.faults[i].recovered_at = Some(now);
        }
    }

    /// A checker declared `server` down at `t`: the detection of its fault, if it has one
    /// not detected yet.
    fn declared_down(&mut self, server: usize, t: Time) {
        if let Some(i) = self.open_fault[server] {
            self.faults[i].detected_at.get_or_insert(t);
        }
    }

    /// A checker declared `server` up at `t`: the restoration after its last fault, if
    /// that fault was detected and is over.
    fn declared_up(&mut self, server: usize, t: Time) {
        if self.open_fault[server].is_some() {
            return;
        }
        if let Some(i) = self.last_fault[server] {
            let f = &mut self.faults[i];
            if f.detected_at.is_some() {
                f.restored_at.get_or_insert(t);
            }
        }
    }

    /// What the checks and faults came to (the HA report's real-server part).
    pub(super) fn report(&self, cfg: &ClusterConfig) -> HaReport {
        let mut checks: Vec<CheckStats> = self
            .fallbacks
            .iter()
            .map(|&fallbacks| CheckStats { fallbacks, ..CheckStats::default() })
            .collect();
        for c in &self.checkers {
            let k = c.hc.counters();
            let s = &mut checks[c.dir];
            s.checks += k.started;
            s.failed += k.failed;
            s.downs += k.downs;
            s.ups += k.ups;
        }
        debug_assert_eq!(checks.len(), cfg.directors.len());
        HaReport { faults: self.faults.clone(), checks, ..HaReport::default() }
    }
}

impl Simulation {
    /// Arms every checker's first timer.
    pub(super) fn start_health(&mut self) {
        let n = self.health.as_ref().map_or(0, |h| h.checkers.len());
        for k in 0..n {
            self.arm_checker(k);
        }
    }

    fn arm_checker(&mut self, k: usize) {
        let Some(h) = self.health.as_ref() else { return };
        let next = Some(h.checkers[k].hc.next_time()).filter(|&t| t <= self.end);
        let owner = h.base + k as u32;
        self.set_completion(owner, next);
    }

    /// Checker `k`'s timer fired: a check starts or times out.
    pub(super) fn checker_timer(&mut self, k: usize) {
        let now = self.now;
        let h = self.health.as_mut().expect("a checker's timer");
        h.checkers[k].hc.handle_timeout(now);
        self.checker_outputs(k);
    }

    /// Sends checker `k`'s probes, applies its verdicts, hands its round on to the next
    /// member when its check ended, re-arms its timer.
    fn checker_outputs(&mut self, k: usize) {
        loop {
            let h = self.health.as_mut().expect("health checks");
            let c = &mut h.checkers[k];
            if let Some(p) = c.hc.poll_probe() {
                self.launch_probe(k, p);
            } else if let Some(v) = c.hc.poll_verdict() {
                self.apply_verdict(k, v);
            } else {
                break;
            }
        }
        let h = self.health.as_mut().expect("health checks");
        if let Some(r) = h.checkers[k].round
            && let Some(end) = h.checkers[k].hc.take_ended()
        {
            let (next, at) = h.rounds[r].ended(end);
            h.checkers[next].hc.start_at(at);
            if next != k {
                self.arm_checker(next);
            }
        }
        self.arm_checker(k);
    }

    fn launch_probe(&mut self, k: usize, p: Probe) {
        let dir = self.health.as_ref().expect("health checks").checkers[k].dir;
        let out = self.cfg.directors[dir].internal.outbound.latency;
        self.queue
            .push(self.now + out, Event::Probe { check: k as u32, serial: p.serial, step: ProbeStep::Syn });
    }

    /// A probe of checker `k` reaches its next step.
    pub(super) fn probe(&mut self, k: usize, serial: u32, step: ProbeStep) {
        let now = self.now;
        if now > self.end {
            return;
        }
        let h = self.health.as_mut().expect("health checks");
        let c = &h.checkers[k];
        let (server, kind) = (c.dest.server, c.kind);
        let link = self.cfg.directors[c.dir].internal;
        let (out, back) = (link.outbound.latency, link.inbound.latency);
        let crashed = self.servers[server].cpu.fault() == Some(Fault::Crashed);
        // A dead director, or one whose internal link is down, reaches no real server.
        let reach = self.dirs[c.dir].alive && self.dirs[c.dir].int_up;
        let ev = |step| Event::Probe { check: k as u32, serial, step };
        match step {
            // A crashed host answers nothing, a cut link carries nothing: the check times
            // out.
            ProbeStep::Syn | ProbeStep::Request if crashed || !reach => {}
            ProbeStep::Reply(_) if !reach => {}
            ProbeStep::Syn => match kind {
                CheckKind::Connect => self.queue.push(now + back, ev(ProbeStep::Reply(Outcome::Success))),
                CheckKind::Negotiate { .. } => self.queue.push(now + back + out, ev(ProbeStep::Request)),
            },
            ProbeStep::Request => {
                let CheckKind::Negotiate { demand } = kind else {
                    unreachable!("a connect check sends no request")
                };
                let job = h.alloc_job(k, serial);
                match self.servers[server].cpu.arrive(now, job, demand.as_nanos()) {
                    Admission::Refused => {
                        h.free_job(job);
                        self.queue.push(now + back, ev(ProbeStep::Reply(Outcome::Failure)));
                    }
                    Admission::Started | Admission::Queued => self.resched_server(server),
                }
            }
            ProbeStep::Reply(outcome) => {
                h.checkers[k].hc.handle_response(now, serial, outcome);
                self.checker_outputs(k);
            }
        }
    }

    /// A check job completed on its real server: the page goes back to its checker.
    pub(super) fn check_job_done(&mut self, job: u32) {
        let h = self.health.as_mut().expect("a check job");
        let (k, serial) = h.free_job(job);
        let back = self.cfg.directors[h.checkers[k].dir].internal.inbound.latency;
        let ev = Event::Probe { check: k as u32, serial, step: ProbeStep::Reply(Outcome::Success) };
        self.queue.push(self.now + back, ev);
    }

    fn apply_verdict(&mut self, k: usize, v: Verdict) {
        let h = self.health.as_mut().expect("health checks");
        let c = &h.checkers[k];
        let (dir, service, dest, group, on_failure) = (c.dir, c.service, c.dest, c.group, c.on_failure);
        // A dead director's checker (its probes all time out) detects nothing worth
        // reporting; its table edits go to a table that a reboot replaces anyway.
        let alive = self.dirs[dir].alive;
        // The kernel's refusals (the operator removed the server meanwhile) are ignored,
        // as a checker's failing ipvsadm command would be.
        match v {
            Verdict::Down(t) => {
                if alive {
                    h.declared_down(dest.server, t);
                }
                let g = &mut h.groups[group];
                g.down += 1;
                let fallback = g.fallback.filter(|_| g.down == g.members && !g.fallback_in);
                if fallback.is_some() {
                    g.fallback_in = true;
                    h.fallbacks[dir] += 1;
                }
                let change = match on_failure {
                    OnFailure::Quiesce => Change::Weight(0),
                    OnFailure::Remove => Change::Remove,
                };
                let _ = self.edit_table(dir, service, &dest, change);
                if let Some(fb) = fallback {
                    let _ = self.edit_table(dir, service, &fb, Change::Restore(1));
                }
            }
            // nanny's slow start: `ipvsadm -e -w` (nanny.c adjustDevice()).
            Verdict::Weight(_, w) => {
                let _ = self.edit_table(dir, service, &dest, Change::Weight(w));
            }
            Verdict::Up(t) => {
                if alive {
                    h.declared_up(dest.server, t);
                }
                let g = &mut h.groups[group];
                g.down -= 1;
                let fallback = g.fallback.filter(|_| g.fallback_in);
                g.fallback_in = false;
                let change = match on_failure {
                    OnFailure::Quiesce => Change::Weight(dest.weight),
                    OnFailure::Remove => Change::Restore(dest.weight),
                };
                let _ = self.edit_table(dir, service, &dest, change);
                if let Some(fb) = fallback {
                    let _ = self.edit_table(dir, service, &fb, Change::Remove);
                }
            }
        }
    }

    /// A real server's fault begins or ends (a `ServerEvent`).
    pub(super) fn server_fault(&mut self, s: usize, change: ServerChange) {
        let now = self.now;
        let server = &mut self.servers[s];
        let (kind, lost) = match change {
            ServerChange::Crash => ("crash", server.cpu.crash(now)),
            ServerChange::Hang => {
                server.cpu.hang(now);
                ("hang", Vec::new())
            }
            ServerChange::Slow(p) => {
                server.cpu.slow(now, p);
                ("slow", Vec::new())
            }
            ServerChange::Recover => {
                if server.cpu.fault() == Some(Fault::Crashed) {
                    // A fresh host: no socket of an earlier connection survives.
                    server.boots = server.boots.wrapping_add(1);
                }
                server.cpu.recover(now);
                ("", Vec::new())
            }
            ServerChange::Background(_) | ServerChange::BackgroundLoad(_) => unreachable!("not a fault"),
        };
        let h = self.health.as_mut().expect("a run with faults has its health part");
        if change == ServerChange::Recover {
            h.fault_ends(s, now);
        } else {
            h.fault_begins(&self.cfg, s, kind, now);
        }
        for job in lost {
            if job >= CHECK_JOB_BASE {
                // Its check times out.
                self.health.as_mut().expect("health checks").free_job(job);
            } else {
                // The request is lost with the host: the client gives up.
                debug_assert_ne!(self.conns[job as usize].server, NO_SERVER);
                self.request_left(s);
                self.end_conn(job, super::breakdown::Outcome::Dropped);
                self.release(job);
            }
        }
        self.resched_server(s);
    }
}
