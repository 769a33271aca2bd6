//! Conformance of `lvsim ipvs replay` with a real kernel's IPVS.
//!
//! Every `tests/conformance/*.replay` case is replayed twice through the `lvsim` binary:
//! on the host against the model, and inside a VM running Debian's stock kernel
//! (`tests/vm/lvsim-vm`) with `--kernel`, which drives the real IPVS table with real TCP
//! connections from a client network namespace, held open until the case closes them.
//! Every choice and every `list` table must agree, byte for byte.
//!
//! If the VM cannot start, the test fails (whether or not `CI=true`); set
//! `LVSIM_SKIP_VM=1` to skip it explicitly on a machine without qemu, which prints a notice.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "replay"))
        .collect();
    v.sort();
    assert!(v.len() >= 11, "expected the conformance cases in {}", dir.display());
    v
}

fn model_output(case: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(["ipvs", "replay"])
        .arg(case)
        .output()
        .expect("running lvsim");
    assert!(
        out.status.success(),
        "model replay of {} failed: {}",
        case.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Run every case in one VM boot; returns the directory holding `<case>.kernel` files.
fn kernel_outputs(cases: &[PathBuf]) -> Option<PathBuf> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/lvsim-vm");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conformance-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("creating the work dir");
    std::fs::copy(env!("CARGO_BIN_EXE_lvsim"), work.join("lvsim")).expect("copying lvsim");
    for c in cases {
        std::fs::copy(c, work.join(c.file_name().expect("case file name"))).expect("copying a case");
    }
    let skip = std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1");
    let setup = Command::new(&harness).arg("setup").status().expect("running tests/vm/lvsim-vm setup");
    if !setup.success() {
        if skip {
            eprintln!("NOTICE: ipvs_conformance SKIPPED: the VM could not be set up and LVSIM_SKIP_VM=1");
            return None;
        }
        panic!("tests/vm/lvsim-vm setup failed ({setup}); install qemu (see .ci/run) or set LVSIM_SKIP_VM=1");
    }
    let script = "for f in *.replay; do ./lvsim ipvs replay --kernel \"$f\" > \"${f%.replay}.kernel\" 2> \"${f%.replay}.err\" || echo \"KERNEL REPLAY FAILED: $f\"; done";
    let out = Command::new(&harness)
        .arg("run")
        .arg("--share")
        .arg(&work)
        .args(["--timeout", "1200", "-c", script])
        .output()
        .expect("running tests/vm/lvsim-vm");
    let log = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => {}
        Some(125) if skip => {
            eprintln!("NOTICE: ipvs_conformance SKIPPED: the VM did not start and LVSIM_SKIP_VM=1");
            return None;
        }
        code => panic!("the VM run failed (exit {code:?}): {}\n{log}", String::from_utf8_lossy(&out.stderr)),
    }
    assert!(!log.contains("KERNEL REPLAY FAILED"), "a kernel replay failed inside the VM:\n{log}");
    Some(work)
}

#[test]
fn replay_agrees_with_the_kernel() {
    let cases = cases();
    let Some(work) = kernel_outputs(&cases) else { return };
    let mut failures = Vec::new();
    let mut total = 0;
    for case in &cases {
        let name = case.file_stem().expect("case stem").to_string_lossy().into_owned();
        let model = model_output(case);
        let kernel = std::fs::read_to_string(work.join(format!("{name}.kernel"))).expect("kernel output");
        let err = std::fs::read_to_string(work.join(format!("{name}.err"))).unwrap_or_default();
        let conns = kernel.lines().filter(|l| l.starts_with('#')).count();
        let placed = kernel.lines().filter(|l| l.starts_with('#') && !l.ends_with("-> none")).count();
        total += conns;
        if conns == 0 || placed == 0 {
            failures.push(format!("{name}: the kernel placed {placed} of {conns} connections\n{err}"));
            continue;
        }
        if model != kernel {
            let diff: Vec<String> = model
                .lines()
                .zip(kernel.lines())
                .enumerate()
                .filter(|(_, (m, k))| m != k)
                .take(5)
                .map(|(i, (m, k))| {
                    format!("  output line {}: model  {m}\n  output line {}: kernel {k}", i + 1, i + 1)
                })
                .collect();
            failures.push(format!("{name}: model and kernel disagree\n{}\n{err}", diff.join("\n")));
        }
    }
    eprintln!("ipvs_conformance: {} cases, {total} connections compared with the kernel", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
