//! The master's service-level step: after the per-server laws have taken a report, the
//! weight law's [`ServiceLaw`] decides what needs the whole virtual service (gRPC WRR's
//! mean weight for servers without a usable one, Prequal's probe pool). One place for
//! the live daemon and the simulator: both drive the same [`Master`].

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::Time;
use lvs_sched::feedback::{LawKind, Member, Signal, Update};

use super::{Liveness, Master, MasterEvent, RsKey, Why};
use crate::types::AdminState;

impl Master {
    /// A report's signal for real server `key`: a probe for the service's law (Prequal).
    pub(super) fn observe(&mut self, now: Time, key: RsKey, signal: &Signal) {
        if matches!(self.config.law.kind, LawKind::Capacity) {
            return;
        }
        let law = self.config.law;
        self.service_laws.entry(key.service).or_default().observe(&law, now, key, signal);
    }

    /// The service-level step for each of `services` at `now`, `reported` the real servers
    /// that have just reported. Each weight it moves is a `SetWeight` (journalled as the
    /// per-server laws' are), in table order, after the report's own.
    pub(super) fn service_step(
        &mut self,
        now: Time,
        services: &BTreeSet<ServiceKey>,
        reported: &BTreeSet<RsKey>,
    ) {
        if matches!(self.config.law.kind, LawKind::Capacity) {
            return;
        }
        for &service in services {
            let updates = self.step_one(now, service, reported);
            for (key, u) in updates {
                self.apply_step(now, key, u);
            }
        }
    }

    /// Runs one service's step over its eligible real servers (in the table, not held by
    /// the operator, their agent live and ready); returns the updates it made.
    fn step_one(
        &mut self,
        now: Time,
        service: ServiceKey,
        reported: &BTreeSet<RsKey>,
    ) -> Vec<(RsKey, Update)> {
        let lo = RsKey { service, addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: 0 };
        let hi = RsKey { service, addr: IpAddr::V6(Ipv6Addr::from(u128::MAX)), port: u16::MAX };
        let agents = &self.agents;
        let eligible = |rs: &super::RsRec| {
            let agent = rs.owner.as_ref().and_then(|id| agents.get(id));
            rs.in_table
                && rs.hold.is_none()
                && agent.is_some_and(|a| a.liveness == Liveness::Live && a.admin == AdminState::Ready)
        };
        let mut members: Vec<Member<'_, RsKey>> = self
            .servers
            .range_mut(lo..=hi)
            .filter(|(_, rs)| eligible(rs))
            .map(|(key, rs)| Member { key: *key, law: &mut rs.law, reported: reported.contains(key) })
            .collect();
        if members.is_empty() {
            return Vec::new();
        }
        let law = self.config.law;
        let service_law = self.service_laws.entry(service).or_default();
        let out = service_law.step(&law, now, &mut members);
        let keys: Vec<RsKey> = members.iter().map(|m| m.key).collect();
        keys.into_iter().zip(out).filter_map(|(k, u)| Some((k, u?))).collect()
    }

    /// Sets the kernel's weight the step's update asks for (an operator's pin still wins).
    fn apply_step(&mut self, now: Time, key: RsKey, u: Update) {
        let Some(rs) = self.servers.get_mut(&key) else { return };
        let to = rs.wanted(false).unwrap_or(u.to);
        if to == rs.weight {
            return;
        }
        let from = std::mem::replace(&mut rs.weight, to);
        self.counters.weight_changes += 1;
        let agent = rs.owner.clone().unwrap_or_default();
        let ev = MasterEvent::SetWeight { key, from, to, agent, why: Why::Report(u) };
        Self::push_event(&mut self.journal, &mut self.events, now, ev);
    }
}
