//! Running a script in the VM (tests/vm/lvsim-vm: Debian's kernel with IPVS, the host's
//! /usr shared), for the tests that check against the real kernel and daemons.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `script` (sh) in one VM with `work` shared read-write (and its cwd), within
/// `timeout_s` seconds, with `modules` (`LVSIM_VM_MODULES`) loaded too; its output.
///
/// `None` only when skipped explicitly: `LVSIM_SKIP_VM=1` and the VM could not be set up
/// or did not start (a notice naming `test` is printed). Otherwise a VM that cannot start,
/// or a script that fails, fails the test.
pub fn in_vm(test: &str, work: &Path, script: &str, timeout_s: u32, modules: &str) -> Option<String> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/lvsim-vm");
    let skip = std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1");
    let setup = Command::new(&harness)
        .arg("setup")
        .env("LVSIM_VM_MODULES", modules)
        .status()
        .expect("running tests/vm/lvsim-vm setup");
    if !setup.success() {
        if skip {
            eprintln!("NOTICE: {test} SKIPPED: the VM could not be set up and LVSIM_SKIP_VM=1");
            return None;
        }
        panic!("tests/vm/lvsim-vm setup failed ({setup}); install qemu (see .ci/run) or set LVSIM_SKIP_VM=1");
    }
    let out = Command::new(&harness)
        .env("LVSIM_VM_MODULES", modules)
        .arg("run")
        .arg("--share")
        .arg(work)
        .args(["--timeout", &timeout_s.to_string(), "-c", script])
        .output()
        .expect("running tests/vm/lvsim-vm");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => Some(log),
        Some(125) if skip => {
            eprintln!("NOTICE: {test} SKIPPED: the VM did not start and LVSIM_SKIP_VM=1");
            None
        }
        code => panic!("the VM run failed (exit {code:?}): {}\n{log}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// `$TMPDIR/lvsim-TAG-PID`, emptied.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("lvsim-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temporary directory");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
