//! Embeds the scenario library (`library/**/*.ron`) in the crate: writes
//! `$OUT_DIR/library.rs`, one `include_str!` per file found, sorted by path, so that a
//! scenario added to the directory cannot be left out of the binary.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    // A directory given to rerun-if-changed is scanned whole: a new, removed or edited
    // file anywhere under it reruns this script.
    println!("cargo::rerun-if-changed={}", root.display());
    println!("cargo::rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut code =
        String::from("/// The scenario library, sorted by path.\npub static ENTRIES: &[Entry] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under the library");
        let rel: Vec<String> =
            rel.components().map(|c| c.as_os_str().to_str().expect("UTF-8 name").to_owned()).collect();
        let path = rel.join("/");
        let name = path.strip_suffix(".ron").expect("a .ron file");
        code.push_str(&format!(
            "    Entry {{ name: {name:?}, path: {path:?}, text: include_str!({:?}) }},\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("library.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// Every `.ron` file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for e in rd {
        let p = e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "ron") {
            out.push(p);
        }
    }
}
