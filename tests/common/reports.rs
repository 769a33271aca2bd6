//! Comparing report directories: a merged report against the local command's, byte for
//! byte but for wall times.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

/// `text` with the number after every "wall" masked: `"wall_s": 0.12` in JSON, `wall 0.12 s`
/// in the terminal text, the page's `wall clock` row. Nothing else may differ.
pub fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("wall") {
        let (head, tail) = rest.split_at(at + 4);
        out.push_str(head);
        // The first number within a few characters (past `_s": ` or `clock</th><td>`).
        let Some(d) = tail.char_indices().take(40).find(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i) else {
            rest = tail;
            continue;
        };
        out.push_str(&tail[..d]);
        let end = tail[d..]
            .find(|c: char| !(c.is_ascii_digit() || ".e-+".contains(c)))
            .map_or(tail.len(), |e| d + e);
        out.push_str("WALL");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Every file of a report directory, by name, masked (each must be a plain UTF-8 file).
pub fn report(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{}: not a file", entry.path().display());
        let name = entry.file_name().into_string().unwrap();
        files.insert(name, masked(&std::fs::read_to_string(entry.path()).unwrap()));
    }
    files
}

/// The merged report is the local one: the same files, the same bytes but for wall times.
pub fn assert_same_report(local: &Path, merged: &Path, what: &str) {
    let (a, b) = (report(local), report(merged));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: the files differ");
    for (name, want) in &a {
        let got = &b[name];
        if got != want {
            let line = want.lines().zip(got.lines()).position(|(x, y)| x != y);
            let show = |t: &str| {
                line.and_then(|l| t.lines().nth(l)).unwrap_or("").chars().take(300).collect::<String>()
            };
            panic!(
                "{what}: {name} differs, first at line {line:?}:\nlocal:  {}\nmerged: {}",
                show(want),
                show(got)
            );
        }
    }
}

/// capacity-planning made small, for the tests of split plans: 4 sizes x 2 schedulers x 2
/// runs = a grid of 16 runs of 8 s.
pub const SMALL_PLAN: &[&str] = &[
    "plan",
    "capacity-planning",
    "--min",
    "2",
    "--max",
    "5",
    "--schedulers",
    "rr,wlc",
    "--replications",
    "2",
    "--set",
    "duration_s=8",
    "--set",
    "warmup_s=1",
    "--no-progress",
];
