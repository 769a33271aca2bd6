//! Running the `lvsim` binary as a user does, for the command-line tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `lvsim ARGS...` run from the repository root.
pub fn lvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("spawning lvsim")
}

/// `lvsim ARGS...` with `dir` as its working directory.
pub fn lvsim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).args(args).current_dir(dir).output().expect("spawning lvsim")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An empty directory `NAME` under cargo's temporary directory for tests.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
