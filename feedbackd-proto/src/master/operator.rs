//! The operator's overrides (the director's console): drain, maintenance, return, pin and
//! unpin one real server, above the law and the agents.
//!
//! Precedence of a server's weight, first match wins:
//!
//! 1. the operator's maintenance: out of the kernel's table (`RemoveRealServer`); no report
//!    adds it back;
//! 2. the operator's drain: 0;
//! 3. its agent's drain or maintenance, silence or goodbye: 0;
//! 4. the operator's pin: that weight;
//! 5. the law.
//!
//! The law keeps running under an override (reports still feed it), so `Unpin` and a
//! `Return` from drain give the server the law's current answer at once. A `Return` from
//! maintenance starts it again as a new server: an agent's server is added by its agent's
//! next report, in slow start from then; a server without an agent (adopted from the kernel) is added
//! back at once with the weight it had. Overrides outlive the agent (the master keeps the
//! server while an override stands) and are journalled (`operator`), so that a replay takes
//! the same decisions.

use lvs_sched::Time;
use lvs_sched::feedback::ServerLaw;

use super::{Hold, Liveness, Master, MasterEvent, RsRec, Why};
use crate::journal::Entry;
use crate::types::{AdminState, RsKey, RsKeyText, ServerAction, Who};
use lvs_ipvs::Forwarding;

/// The highest weight an operator may pin (`ipvsadm`'s documented range is 0 to 65535).
pub const MAX_PIN_WEIGHT: u32 = 65_535;

/// Why an operator's action was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// Neither in the table nor claimed by an agent.
    #[error("no real server {} is known to the master", RsKeyText(*.0))]
    UnknownServer(RsKey),
    /// A pinned weight out of range.
    #[error("weight {weight} is out of range: 0 to {max}")]
    Weight {
        /// Asked.
        weight: u32,
        /// The highest allowed.
        max: u32,
    },
    /// The server is already so.
    #[error("{} is already {state}", RsKeyText(*key))]
    Already {
        /// Which.
        key: RsKey,
        /// What it is.
        state: String,
    },
    /// `Return` on a server neither drained nor in maintenance.
    #[error("{} is neither drained nor in maintenance: nothing to return", RsKeyText(*.0))]
    NothingToReturn(RsKey),
    /// `Unpin` on a server not pinned.
    #[error("{} is not pinned: nothing to unpin", RsKeyText(*.0))]
    NothingToUnpin(RsKey),
}

impl Master {
    /// The operator `who` acts on real server `key`. Refused (nothing changes, nothing is
    /// journalled): a server the master does not know, a pin above [`MAX_PIN_WEIGHT`], an
    /// action that changes nothing. Accepted, the action is journalled and its table changes
    /// queued as events (why: [`Why::Operator`]).
    pub fn handle_operator(
        &mut self,
        now: Time,
        who: &Who,
        key: RsKey,
        action: ServerAction,
    ) -> Result<(), OperatorError> {
        let rs = self.servers.get_mut(&key).ok_or(OperatorError::UnknownServer(key))?;
        let already = |state: String| Err(OperatorError::Already { key, state });
        match action {
            ServerAction::Drain | ServerAction::Maintenance => {
                let hold = if action == ServerAction::Drain { Hold::Drain } else { Hold::Maintenance };
                if rs.hold == Some(hold) {
                    return already(if hold == Hold::Drain {
                        "drained".into()
                    } else {
                        "in maintenance".into()
                    });
                }
                if hold == Hold::Maintenance {
                    rs.readd = rs.in_table || rs.readd;
                }
                rs.hold = Some(hold);
            }
            ServerAction::Return => {
                if rs.hold.take().is_none() {
                    return Err(OperatorError::NothingToReturn(key));
                }
            }
            ServerAction::Pin(weight) => {
                if weight > MAX_PIN_WEIGHT {
                    return Err(OperatorError::Weight { weight, max: MAX_PIN_WEIGHT });
                }
                if rs.pinned == Some(weight) {
                    return already(format!("pinned at {weight}"));
                }
                rs.pinned = Some(weight);
            }
            ServerAction::Unpin => {
                if rs.pinned.take().is_none() {
                    return Err(OperatorError::NothingToUnpin(key));
                }
            }
        }
        self.record(now, || Entry::Operator { who: who.clone(), key, action });
        self.settle(now, key, &Why::Operator { who: who.clone(), action });
        Ok(())
    }

    /// A real server the operator had put in maintenance before the master restarted
    /// (from the daemon's state file): held out of the table whether the master knows it
    /// yet or not, and on return added back with `forwarding` and `weight` (or by its
    /// agent, once one claims it). Journalled (`held`).
    pub fn handle_held(&mut self, now: Time, key: RsKey, forwarding: Forwarding, weight: u32) {
        self.record(now, || Entry::Held { key, forwarding, weight });
        let rs = self
            .servers
            .entry(key)
            .or_insert_with(|| RsRec::new(ServerLaw::adopt(weight), forwarding, false));
        if rs.owner.is_none() && !rs.in_table {
            rs.law = ServerLaw::adopt(weight);
            rs.forwarding = forwarding;
        }
        if !rs.in_table {
            rs.weight = 0;
        }
        rs.hold = Some(Hold::Maintenance);
        rs.readd = true;
        self.settle(now, key, &Why::Restored);
    }

    /// A change the operator made that the master does not decide on (a virtual service
    /// added, edited or removed; a real server's thresholds), for the journal only (`note`).
    pub fn handle_note(&mut self, now: Time, who: &Who, text: &str) {
        self.record(now, || Entry::Note { who: who.clone(), text: text.to_owned() });
    }

    /// Whether the master knows real server `key` (in the table, claimed by an agent, or
    /// held by the operator): whether an action on it can be accepted.
    pub fn knows(&self, key: &RsKey) -> bool {
        self.servers.contains_key(key)
    }

    /// Brings `key`'s kernel entry to what its overrides, agent and law want.
    fn settle(&mut self, now: Time, key: RsKey, why: &Why) {
        let agent_zero = self.agent_zero(&key);
        let Some(rs) = self.servers.get_mut(&key) else { return };
        let agent = rs.owner.clone().unwrap_or_default();
        let ev = match (rs.wanted(agent_zero), rs.in_table) {
            (None, true) => {
                rs.in_table = false;
                rs.weight = 0;
                self.counters.removed += 1;
                MasterEvent::RemoveRealServer { key, agent, why: why.clone() }
            }
            (Some(to), true) if to != rs.weight => {
                let from = rs.weight;
                rs.weight = to;
                self.counters.weight_changes += 1;
                MasterEvent::SetWeight { key, from, to, agent, why: why.clone() }
            }
            // Out of the table: an agent's server waits for its agent's next report.
            (Some(weight), false) if rs.owner.is_none() && rs.readd => {
                rs.in_table = true;
                rs.readd = false;
                rs.weight = weight;
                self.counters.added += 1;
                let forwarding = rs.forwarding;
                MasterEvent::AddRealServer { key, forwarding, weight, agent, why: why.clone() }
            }
            _ => {
                if !rs.in_table && rs.owner.is_none() && !rs.overridden() {
                    self.servers.remove(&key);
                }
                return;
            }
        };
        Self::push_event(&mut self.journal, &mut self.events, now, ev);
    }

    /// Whether `key`'s agent keeps it at 0: drained or in maintenance by the agent, silent,
    /// or gone.
    fn agent_zero(&self, key: &RsKey) -> bool {
        let owner = self.servers.get(key).and_then(|rs| rs.owner.as_deref());
        owner
            .and_then(|id| self.agents.get(id))
            .is_some_and(|a| a.liveness != Liveness::Live || a.admin != AdminState::Ready)
    }
}
