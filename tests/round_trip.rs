//! Export → import → export gives the same files, byte for byte, for every format lvsim
//! both writes and reads, over every library scenario, built-in topology and matrix case
//! (tests/common/deploy.rs).
//!
//! For a format F: take the files of F that `export::files` writes for a topology, import
//! just those (`topologies::import::import`), export the imported topology again: its
//! files of F must equal the first ones.

mod common;

use common::deploy::every_export;
use topologies::export::{self, Target};
use topologies::import::{Source, import};

/// Round-trips the files that `pick` selects in every case; returns how many cases had
/// such files.
fn round_trip(what: &str, pick: impl Fn(&str) -> bool) -> usize {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in every_export(Target::default()) {
        let originals = case.files_where(&pick);
        if originals.is_empty() {
            continue;
        }
        checked += 1;
        if let Err(e) = one(&originals, &pick) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} case(s) do not round-trip:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    checked
}

fn one(originals: &[&(String, String)], pick: &impl Fn(&str) -> bool) -> Result<(), String> {
    let sources: Vec<Source> =
        originals.iter().map(|(n, t)| Source { path: n.clone(), text: t.clone() }).collect();
    let imported = import(&sources, None).map_err(|e| format!("import: {e}"))?;
    let again = export::files(&imported.topology, Target::default());
    let again: Vec<&(String, String)> = again.iter().filter(|(n, _)| pick(n)).collect();
    let names = |v: &[&(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(originals) != names(&again) {
        return Err(format!("files {:?} came back as {:?}", names(originals), names(&again)));
    }
    for ((name, a), (_, b)) in originals.iter().zip(&again) {
        if a != b {
            return Err(format!("{name} differs:\n{}", first_difference(a, b)));
        }
    }
    Ok(())
}

/// The first differing line of two texts, with its number.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for i in 1.. {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => return format!("line {i}: exported {x:?}\n        re-exported {y:?}"),
        }
    }
    unreachable!()
}

#[test]
#[ignore = "wt-keepalived: keepalived.conf import"]
fn keepalived_conf_round_trips() {
    let n = round_trip("keepalived", |f| f.starts_with("keepalived") && f.ends_with(".conf"));
    assert!(n >= 10, "only {n} cases have keepalived files");
}

#[test]
fn ldirectord_cf_round_trips() {
    let n = round_trip("ldirectord", |f| f.starts_with("ldirectord") && f.ends_with(".cf"));
    assert!(n >= 5, "only {n} cases have ldirectord files");
}

#[test]
fn heartbeat_files_round_trip_with_ldirectord_cf() {
    let n = round_trip("heartbeat", |f| {
        f == "ha.cf" || f == "haresources" || (f.starts_with("ldirectord") && f.ends_with(".cf"))
    });
    assert!(n >= 5, "only {n} cases have heartbeat files");
}

#[test]
fn ipvsadm_rules_and_scripts_round_trip() {
    let n = round_trip("ipvsadm", |f| f.starts_with("ipvsadm"));
    assert!(n >= 20, "only {n} cases have ipvsadm files");
}

#[test]
fn lvs_cf_round_trips() {
    let n = round_trip("lvs.cf", |f| f == "lvs.cf");
    // library/ha/piranha and the matrix's four pulse pairs.
    assert!(n >= 5, "only {n} cases have an lvs.cf");
}
