//! The scenario library (`scenarios/library/**/*.ron`), compiled in.
//!
//! `build.rs` writes one [`Entry`] per file found under the directory, so a scenario added
//! there cannot be left out, and an installed `lvsim` needs no source tree: `lvsim run
//! quickstart`, `lvsim sweep ha/vrrp-failover`. A library scenario is named in messages
//! as `library:ha/vrrp-failover.ron` (so its errors read
//! `library:ha/vrrp-failover.ron:12:5: ...`); the files it names (none in the library
//! itself, but `--set` can add a trace) are looked up in the current directory and the
//! `--allow-path` directories.
//!
//! [`load`] takes what the user typed: a path that exists is a file and wins; otherwise a
//! library name (`quickstart`, `quickstart.ron`, `library:quickstart.ron` or
//! `scenarios/library/quickstart.ron`, the path in a clone); otherwise an error listing
//! the close names.

use std::path::{Path, PathBuf};

use crate::{Error, FileAccess, Loaded, budget::Budget};

/// One scenario of the library.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// What it is run by: its path under the library without `.ron` (`ha/vrrp-failover`).
    pub name: &'static str,
    /// Its path under the library (`ha/vrrp-failover.ron`).
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// What a library scenario's source is called in messages and reports, before its path.
pub const PREFIX: &str = "library:";

/// Longest name compared with the library's (a longer one is close to none of them).
const MAX_NAME_BYTES: usize = 200;

/// Most close names an unknown name's error lists.
const MAX_SUGGESTIONS: usize = 5;

impl Entry {
    /// Its name in messages and reports: `library:ha/vrrp-failover.ron`.
    pub fn source(&self) -> String {
        format!("{PREFIX}{}", self.path)
    }

    /// Builds it with `--set` overrides; the files it names may be in the current
    /// directory or in `allowed`.
    pub fn load(
        &self,
        overrides: &[String],
        allowed: &[PathBuf],
        budget: Option<&Budget>,
    ) -> Result<Loaded, Error> {
        let stem = self.name.rsplit('/').next().unwrap_or(self.name);
        let files = FileAccess::new(Path::new(""), allowed);
        crate::load_doc(&self.source(), stem, self.text, &files, overrides, budget)
    }
}

/// Every library scenario, sorted by path.
pub fn all() -> &'static [Entry] {
    ENTRIES
}

/// The library scenario a name designates: `ha/vrrp-failover`, with or without `.ron`,
/// `library:` before it or `scenarios/library/` (its path in a clone).
pub fn get(name: &str) -> Option<&'static Entry> {
    let n = name.trim();
    let n = n.strip_prefix(PREFIX).or_else(|| n.strip_prefix("scenarios/library/")).unwrap_or(n);
    let n = n.strip_suffix(".ron").unwrap_or(n);
    ENTRIES.iter().find(|e| e.name == n)
}

/// Library names close to `name` (by edit distance, on the whole name or its last part,
/// or containing it), closest first.
pub fn close_names(name: &str) -> Vec<&'static str> {
    let n = name.trim();
    let n = n.strip_prefix(PREFIX).or_else(|| n.strip_prefix("scenarios/library/")).unwrap_or(n);
    let n = n.strip_suffix(".ron").unwrap_or(n).to_ascii_lowercase();
    if n.len() > MAX_NAME_BYTES {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &'static str)> = ENTRIES
        .iter()
        .filter_map(|e| {
            let last = e.name.rsplit('/').next().unwrap_or(e.name);
            let d = distance(&n, e.name).min(distance(&n, last));
            let near = d <= (n.chars().count() / 3).max(2);
            let contains = n.len() >= 3 && e.name.contains(n.as_str());
            (near || contains).then_some((if near { d } else { usize::MAX }, e.name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, n)| n).collect()
}

/// Loads what the user typed: an existing path as a file, else a library scenario by
/// name (see the module's doc), else an error naming the close names.
pub fn load(
    arg: &Path,
    overrides: &[String],
    allowed: &[PathBuf],
    budget: Option<&Budget>,
) -> Result<Loaded, Error> {
    // symlink_metadata: a dangling link is still a path the user meant.
    if arg.symlink_metadata().is_ok() {
        return crate::load_allowing(arg, overrides, allowed, budget);
    }
    let typed = arg.to_string_lossy();
    match get(&typed) {
        Some(e) => e.load(overrides, allowed, budget),
        None => Err(Error::bare(not_found(&typed))),
    }
}

/// The error for a name that is neither a file nor a library scenario.
fn not_found(typed: &str) -> String {
    let close = close_names(typed);
    let hint = if close.is_empty() { String::new() } else { format!("; close names: {}", close.join(", ")) };
    format!(
        "{typed}: no such file, and no scenario of that name in the library{hint} \
         (`lvsim list scenarios` lists the library)"
    )
}

/// Levenshtein distance between two short strings (names), by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.ron` file under the library directory, as `build.rs` should have found it.
    fn on_disk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                on_disk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "ron") {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn the_embedded_library_is_the_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
        let mut files = Vec::new();
        on_disk(&root, &root, &mut files);
        files.sort();
        let embedded: Vec<&str> = all().iter().map(|e| e.path).collect();
        assert_eq!(embedded, files);
        for e in all() {
            let text = std::fs::read_to_string(root.join(e.path)).unwrap();
            assert_eq!(e.text, text, "{} differs from its file", e.path);
            assert_eq!(format!("{}.ron", e.name), e.path);
        }
        assert!(get("quickstart").is_some() && get("ha/vrrp-failover").is_some());
    }

    #[test]
    fn names_are_found_in_every_spelling() {
        for n in [
            "ha/vrrp-failover",
            "ha/vrrp-failover.ron",
            "library:ha/vrrp-failover.ron",
            "scenarios/library/ha/vrrp-failover.ron",
        ] {
            assert_eq!(get(n).map(|e| e.path), Some("ha/vrrp-failover.ron"), "{n}");
        }
        for n in ["vrrp-failover", "ha", "", "library:", "/quickstart", "quickstart.ron.ron"] {
            assert!(get(n).is_none(), "{n}");
        }
    }

    #[test]
    fn an_unknown_name_lists_close_ones() {
        assert_eq!(close_names("quickstrat").first(), Some(&"quickstart"));
        assert!(close_names("ha/vrrp-failovr").contains(&"ha/vrrp-failover"));
        // The last part alone is close to a name in a folder.
        assert!(close_names("vrrp-failover").contains(&"ha/vrrp-failover"));
        assert!(close_names("tutorial").contains(&"tutorial-nat"));
        assert!(close_names("zzzzzzzzzzzz").is_empty());
        let long = "x".repeat(100_000);
        assert!(close_names(&long).is_empty());
        let e = load(Path::new("quickstrat"), &[], &[], None).unwrap_err().to_string();
        assert!(e.contains("quickstrat: no such file") && e.contains("close names: quickstart"), "{e}");
    }

    #[test]
    fn a_library_scenario_loads_and_its_errors_name_it() {
        let l = load(Path::new("ha/vrrp-failover"), &[], &[], None).unwrap();
        assert_eq!(l.file, "library:ha/vrrp-failover.ron");
        assert_eq!(l.name, "vrrp-failover");
        let e = load(Path::new("quickstart"), &["duration_s=-1".into()], &[], None).unwrap_err();
        assert!(e.to_string().contains("duration_s"), "{e}");
        let bad = Entry { name: "bad/one", path: "bad/one.ron", text: "Scenario(\n  duration_s: \"x\",\n)" };
        let e = bad.load(&[], &[], None).unwrap_err().to_string();
        assert!(e.starts_with("library:bad/one.ron:2:"), "{e}");
    }
}
