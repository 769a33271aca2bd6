//! An ECMP director tier in a run's files: `summary.json`'s `ecmp`, the terminal block
//! and the page's ECMP section (the router's changes, the connections they broke and
//! why, mh additions).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sim_core::model::EcmpReport;

use crate::html::Page;
use crate::text::text_table;
use crate::units::ns_to_s;

/// `summary.json`'s `ecmp`: the tier's router and what its changes did to connections
/// (any connection, measured or not).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EcmpSummary {
    /// The members, in the router's next-hop order.
    pub directors: Vec<String>,
    /// `l3` or `l3l4`.
    pub hash_policy: String,
    /// `hash-threshold` or `resilient (N buckets)`.
    pub selection: String,
    /// Connections broken, all causes: the three below summed.
    pub broken: u64,
    /// Reset by a director without an entry (no `sloppy_tcp`).
    pub reset_by_director: u64,
    /// Reset by a real server: `sloppy_tcp` scheduled the segment to another server.
    pub reset_by_server: u64,
    /// Gave up after losing packets at a dead director before the router noticed.
    pub lost_at_dead_director: u64,
    /// Moved to another director and carried on: `sloppy_tcp` picked their own server.
    pub survived_by_rescheduling: u64,
    /// Connections each member scheduled, in member order.
    pub scheduled_by_director: Vec<u64>,
    /// The router's changes, in time order.
    pub changes: Vec<EcmpChangeSummary>,
    /// Real servers added to an mh service of a member; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mh_additions: Vec<MhAdditionSummary>,
}

/// One change of the router's group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EcmpChangeSummary {
    /// When [s].
    pub at_s: f64,
    /// The director.
    pub director: String,
    /// `dead (detected)`, `withdrawn`, `announced`, `back`.
    pub what: String,
    /// The share of flows (of the hash space) whose director changed.
    pub moved_share: f64,
}

/// A real server added to an mh service: flows and table slots that changed server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MhAdditionSummary {
    /// When [s].
    pub at_s: f64,
    /// The director.
    pub director: String,
    /// The server added.
    pub server: String,
    /// Real servers before (N); the ideal share moved is 1/(N+1).
    pub servers_before: u32,
    /// Flows looked up (the scenario's client addresses).
    pub flows: u64,
    /// Flows whose server changed.
    pub flows_moved: u64,
    /// `flows_moved / flows`.
    pub flows_moved_share: f64,
    /// Table slots whose server changed, of `slots`.
    pub slots_moved: u64,
    /// The lookup table's size.
    pub slots: u64,
    /// `slots_moved / slots`.
    pub slots_moved_share: f64,
    /// `1 / (servers_before + 1)`: what a perfect consistent hash moves.
    pub ideal_share: f64,
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// `summary.json`'s `ecmp`.
pub(crate) fn build(e: &EcmpReport) -> EcmpSummary {
    EcmpSummary {
        directors: e.members.clone(),
        hash_policy: e.policy.clone(),
        selection: e.selection.clone(),
        broken: e.reset_by_director + e.reset_by_server + e.lost_at_dead_director,
        reset_by_director: e.reset_by_director,
        reset_by_server: e.reset_by_server,
        lost_at_dead_director: e.lost_at_dead_director,
        survived_by_rescheduling: e.survived_by_rescheduling,
        scheduled_by_director: e.scheduled_by_director.clone(),
        changes: e
            .changes
            .iter()
            .map(|c| EcmpChangeSummary {
                at_s: ns_to_s(c.at.as_nanos()),
                director: c.director.clone(),
                what: c.what.clone(),
                moved_share: c.moved_share,
            })
            .collect(),
        mh_additions: e
            .mh_additions
            .iter()
            .map(|m| MhAdditionSummary {
                at_s: ns_to_s(m.at.as_nanos()),
                director: m.director.clone(),
                server: m.server.clone(),
                servers_before: m.servers_before,
                flows: m.flows,
                flows_moved: m.flows_moved,
                flows_moved_share: share(m.flows_moved, m.flows),
                slots_moved: m.slots_moved,
                slots: m.slots,
                slots_moved_share: share(m.slots_moved, m.slots),
                ideal_share: 1.0 / f64::from(m.servers_before + 1),
            })
            .collect(),
    }
}

fn headline(e: &EcmpSummary) -> Vec<(&'static str, String)> {
    vec![
        ("router", format!("{} over {}, hash {}", e.selection, e.directors.join(", "), e.hash_policy)),
        (
            "broken",
            format!(
                "{} connections: {} reset by a director, {} reset by a real server, {} lost at a dead director",
                e.broken, e.reset_by_director, e.reset_by_server, e.lost_at_dead_director
            ),
        ),
        (
            "survived",
            format!("{} moved connections rescheduled to their own real server", e.survived_by_rescheduling),
        ),
    ]
}

const CHANGE_COLUMNS: [&str; 4] = ["t [s]", "director", "change", "flows moved [%]"];
const MH_COLUMNS: [&str; 8] = [
    "t [s]",
    "director",
    "server added",
    "servers before",
    "flows",
    "flows moved [%]",
    "slots moved [%]",
    "ideal [%]",
];

fn change_rows(e: &EcmpSummary) -> Vec<Vec<String>> {
    e.changes
        .iter()
        .map(|c| {
            vec![
                format!("{:.3}", c.at_s),
                c.director.clone(),
                c.what.clone(),
                format!("{:.2}", c.moved_share * 100.0),
            ]
        })
        .collect()
}

fn mh_rows(e: &EcmpSummary) -> Vec<Vec<String>> {
    e.mh_additions
        .iter()
        .map(|m| {
            vec![
                format!("{:.3}", m.at_s),
                m.director.clone(),
                m.server.clone(),
                m.servers_before.to_string(),
                m.flows.to_string(),
                format!("{:.2}", m.flows_moved_share * 100.0),
                format!("{:.2}", m.slots_moved_share * 100.0),
                format!("{:.2}", m.ideal_share * 100.0),
            ]
        })
        .collect()
}

/// The terminal's ECMP block.
pub(crate) fn text(out: &mut String, e: &EcmpSummary) {
    out.push('\n');
    for (label, line) in headline(e) {
        let _ = writeln!(out, "ecmp {label:<9} {line}");
    }
    let rows = change_rows(e);
    if !rows.is_empty() {
        out.push_str(&text_table(&CHANGE_COLUMNS, 3, &rows));
    }
    let rows = mh_rows(e);
    if !rows.is_empty() {
        out.push_str(&text_table(&MH_COLUMNS, 3, &rows));
    }
}

/// The page's ECMP section.
pub(crate) fn section(page: &mut Page, e: &EcmpSummary) {
    page.h2("ecmp", "ECMP director tier");
    page.key_values(&headline(e));
    page.h3("Router changes");
    let rows = change_rows(e);
    if rows.is_empty() {
        page.p("note", "the router's group did not change");
    } else {
        page.table(&CHANGE_COLUMNS, 3, &rows);
        page.p(
            "note",
            "Flows moved: the share of the hash space whose director changed. Hash-threshold \
             re-divides the hash among the live directors, so a death moves flows of survivors \
             too; a resilient group moves only the dead director's buckets.",
        );
    }
    let sched: Vec<Vec<String>> = e
        .directors
        .iter()
        .zip(&e.scheduled_by_director)
        .map(|(d, n)| vec![d.clone(), n.to_string()])
        .collect();
    page.h3("Connections scheduled");
    page.table(&["director", "connections"], 1, &sched);
    let rows = mh_rows(e);
    if !rows.is_empty() {
        page.h3("mh: a real server added");
        page.table(&MH_COLUMNS, 3, &rows);
        page.p(
            "note",
            "Flows: every client address of the populations of the service, looked up in the \
             service's mh table before and after. Ideal: what a perfect consistent hash moves, \
             1/(N+1).",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_sched::{Duration, Time};
    use sim_core::model::{EcmpChange, MhAddition};

    fn report() -> EcmpReport {
        EcmpReport {
            members: vec!["lb1".into(), "lb2".into()],
            policy: "l3l4".into(),
            selection: "hash-threshold".into(),
            changes: vec![EcmpChange {
                at: Time::ZERO + Duration::from_millis(3900),
                director: "lb2".into(),
                what: "dead (detected)".into(),
                moved_share: 0.5,
            }],
            scheduled_by_director: vec![97, 102],
            reset_by_director: 60,
            reset_by_server: 30,
            lost_at_dead_director: 2,
            survived_by_rescheduling: 10,
            mh_additions: vec![MhAddition {
                at: Time::ZERO + Duration::from_secs(10),
                director: "lb1".into(),
                server: "web7".into(),
                servers_before: 6,
                flows: 20_000,
                flows_moved: 3_000,
                slots_moved: 65_521 / 7,
                slots: 65_521,
            }],
        }
    }

    #[test]
    fn the_summary_sums_the_causes_and_gives_shares_against_the_ideal() {
        let s = build(&report());
        assert_eq!((s.broken, s.survived_by_rescheduling), (92, 10));
        assert_eq!(s.changes[0].at_s, 3.9);
        let m = &s.mh_additions[0];
        assert_eq!((m.flows_moved_share, m.ideal_share), (0.15, 1.0 / 7.0));
        assert_eq!(m.slots_moved_share, 9360.0 / 65_521.0);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"reset_by_server\":30"), "{json}");
    }

    #[test]
    fn the_terminal_block_names_each_cause_and_the_moved_share() {
        let mut out = String::new();
        text(&mut out, &build(&report()));
        assert!(
            out.contains(
                "92 connections: 60 reset by a director, 30 reset by a real server, 2 lost at a dead director"
            ),
            "{out}"
        );
        assert!(out.contains("dead (detected)") && out.contains("50.00"), "{out}");
        assert!(out.contains("15.00") && out.contains("14.29"), "{out}");
    }
}
