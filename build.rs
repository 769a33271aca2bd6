//! Records the git commit lvsim is built from as `LVSIM_COMMIT` (shard files name it in
//! lvsim's version, so that `lvsim merge` refuses shards of another build of the same
//! version), when built from a git checkout; nothing without git or `.git` (a crate
//! tarball). Rebuilt when HEAD or the branch it names moves.

use std::path::Path;
use std::process::Command;

/// `git ARGS` in the package's directory: its first line of output, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?.lines().next()?.trim().to_owned();
    (out.status.success() && !line.is_empty()).then_some(line)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else { return };
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for what in watched {
        let Some(path) = git(&["rev-parse", "--git-path", &what]) else { continue };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        // Only files that exist: cargo reruns a script whose watched file is missing.
        if path.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rustc-env=LVSIM_COMMIT={commit}");
}
