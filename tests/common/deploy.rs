//! Every deployment file lvsim writes, for the real-tool tests (`tests/real_*.rs`) and the
//! round trip (`tests/round_trip.rs`): the files of every library scenario
//! (`scenarios/library/**/*.ron`), every built-in topology and every case of the
//! generated matrix (`topologies::matrix`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use topologies::Topology;
use topologies::export::{self, Target};

/// One topology and its exported files.
pub struct Case {
    /// `library/ha/vrrp-failover`, `named/tutorial-nat` or `matrix/vrrp-dr-tcp-v4-...`.
    pub name: String,
    /// The topology, expanded.
    pub topology: Topology,
    /// `export::files`: (path in the export directory, text).
    pub files: Vec<(String, String)>,
}

impl Case {
    /// The files whose name matches `pred`.
    pub fn files_where(&self, pred: impl Fn(&str) -> bool) -> Vec<&(String, String)> {
        self.files.iter().filter(|(n, _)| pred(n)).collect()
    }

    /// Writes the files under `dir` (created), returning their paths.
    pub fn write_to(&self, dir: &Path) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|(rel, text)| {
                let p = dir.join(rel);
                std::fs::create_dir_all(p.parent().expect("a parent")).expect("creating the directory");
                std::fs::write(&p, text).expect("writing an exported file");
                p
            })
            .collect()
    }
}

/// The library's scenario files, sorted (`lvsim list`'s own walk of the library).
pub fn library_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
    let mut out = lvsim::commands::list::library_files(&root);
    out.sort();
    assert!(out.len() >= 10, "the library has its scenarios: {out:?}");
    out
}

/// Every topology: the library's scenarios, the built-in topologies, the matrix.
pub fn every_topology() -> Vec<(String, Topology)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
    let mut out = Vec::new();
    for path in library_files() {
        let l = scenarios::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rel = path.strip_prefix(&root).expect("under the library").with_extension("");
        out.push((format!("library/{}", rel.display()), l.topology));
    }
    for n in topologies::NAMED {
        out.push((format!("named/{}", n.name), n.topology()));
    }
    for (name, t) in topologies::matrix::topologies() {
        out.push((format!("matrix/{name}"), t));
    }
    out
}

/// Every topology with its exported files for `target`.
pub fn every_export(target: Target) -> Vec<Case> {
    every_topology()
        .into_iter()
        .map(|(name, t)| {
            let topology = t.expand().unwrap_or_else(|e| panic!("{name}: {e}"));
            let files = export::files(&topology, target);
            Case { name, topology, files }
        })
        .collect()
}
