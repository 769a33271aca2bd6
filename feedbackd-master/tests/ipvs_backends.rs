//! The IPVS backends against a real kernel: one boot of the project's VM
//! (`tests/vm/lvsim-vm`, Debian's stock kernel) runs `feedbackd-ipvs-check probe`, which
//! drives the netlink, ipvsadm and dry-run backends through the same sequence and checks
//! each step against the kernel (see its `probe.rs`): real servers, virtual services
//! (`services.rs`, against `ipvsadm -S -n`), and the counters and rates of real LVS-NAT
//! traffic (`traffic.rs`). This test asserts on its output.
//!
//! `LVSIM_SKIP_VM=1` skips it (with a notice on stderr), for machines without qemu.
//! Otherwise a VM that cannot be set up or started fails the test.

use std::path::Path;
use std::process::Command;

/// Checks the probe must report as passed: one per backend and concern, so that a probe
/// that silently skipped a step fails here.
const REQUIRED: &[&str] = &[
    "PASS netlink: services listed as ipvsadm made them",
    "PASS ipvsadm: services listed as ipvsadm made them",
    "PASS netlink/edit weight (forwarding, thresholds, tunnel kept): ipvsadm lists the same",
    "PASS netlink/edit weight (forwarding, thresholds, tunnel kept): ipvsadm -L -n shows it",
    "PASS ipvsadm/edit weight (forwarding, thresholds, tunnel kept): netlink lists the same",
    "PASS netlink/resend with zero fields (SET_DEST resets them): ipvsadm -L -n shows it",
    "PASS ipvsadm/resend with zero fields (SET_DEST resets them): ipvsadm -L -n shows it",
    "PASS netlink: refuses NEW_DEST in an unknown service",
    "PASS netlink: refuses NEW_DEST of an existing real server",
    "PASS netlink: refuses SET_DEST of a missing real server",
    "PASS netlink: refuses SET_DEST with -y above -x",
    "PASS ipvsadm: refuses SET_DEST of a missing real server",
    "PASS dry-run: refuses NEW_DEST of an existing real server",
    "PASS netlink: batch with a missing real server",
    "PASS ipvsadm/delete: ipvsadm -L -n shows it",
    "PASS netlink/delete: ipvsadm -L -n shows it",
    // Virtual services through every backend, compared with `ipvsadm -S -n`.
    "PASS netlink: add services (TCP, UDP, SCTP, fwmark, IPv6, persistence, netmask)",
    "PASS netlink/add service: ipvsadm -S -n saves it",
    "PASS netlink/add service: ipvsadm lists the same",
    "PASS netlink/edit service: ipvsadm -S -n saves it",
    "PASS netlink: SET_SERVICE keeps the real servers",
    "PASS netlink: refuses NEW_SERVICE of an existing service",
    "PASS netlink: refuses SET_SERVICE of a missing service",
    "PASS netlink: refuses NEW_SERVICE with a scheduler the kernel lacks",
    "PASS netlink/remove service: ipvsadm -S -n saves it",
    "PASS netlink: a removed service's real servers are gone (ESRCH)",
    "PASS ipvsadm: add services (TCP, UDP, SCTP, fwmark, IPv6, persistence, netmask)",
    "PASS ipvsadm/add service: netlink lists the same",
    "PASS ipvsadm/edit service: ipvsadm -S -n saves it",
    "PASS ipvsadm/edit service: netlink lists the same",
    "PASS ipvsadm: refuses DEL_SERVICE of a missing service",
    "PASS ipvsadm: refuses NEW_SERVICE with a scheduler the kernel lacks",
    "PASS ipvsadm/remove service: ipvsadm -S -n saves it",
    "PASS dry-run/edit service: dry-run lists it",
    "PASS dry-run: refuses NEW_SERVICE of an existing service",
    // The kernel's counters and rates under real LVS-NAT traffic.
    "PASS traffic: LVS-NAT set up (two namespaces, httpd, TCP 10.9.9.9:80)",
    "PASS traffic: netlink and ipvsadm list the same counters, one connection per request",
    "PASS traffic: the service's counters and rates (ServiceRow) through both backends",
];

#[test]
fn backends_agree_with_the_kernel() {
    if std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1") {
        eprintln!("ipvs_backends: SKIPPED (LVSIM_SKIP_VM=1)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let harness = root.join("tests/vm/lvsim-vm");
    let setup = Command::new(&harness).arg("setup").status().expect("running tests/vm/lvsim-vm setup");
    assert!(setup.success(), "tests/vm/lvsim-vm setup failed ({setup}); set LVSIM_SKIP_VM=1 to skip");

    let out = Command::new(&harness)
        .arg("run")
        .arg("--share")
        .arg(root)
        .args(["--timeout", "300", "--", env!("CARGO_BIN_EXE_feedbackd-ipvs-check"), "probe"])
        .output()
        .expect("running tests/vm/lvsim-vm run");
    let log = String::from_utf8_lossy(&out.stdout);
    let harness_err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(124) => panic!("the VM timed out (infrastructure, not a probe failure):\n{harness_err}\n{log}"),
        Some(125) => panic!("the VM did not run the probe (infrastructure):\n{harness_err}\n{log}"),
        code => panic!("the probe failed (exit {code:?}):\n{log}\n{harness_err}"),
    }
    let failed: Vec<&str> = log.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(failed.is_empty(), "failed checks:\n{}\n\nfull output:\n{log}", failed.join("\n"));
    let summary = log.lines().find(|l| l.starts_with("SUMMARY ")).expect("a SUMMARY line");
    assert!(summary.ends_with(" fail=0"), "{summary}");
    let missing: Vec<&&str> = REQUIRED.iter().filter(|r| !log.lines().any(|l| l == **r)).collect();
    // The rates line names how many requests it took.
    assert!(
        log.lines()
            .any(|l| l.starts_with("PASS traffic: netlink and ipvsadm report non-zero rates while it flows")),
        "no rates check passed:\n{log}"
    );
    assert!(missing.is_empty(), "checks not reported as passed: {missing:#?}\n\nfull output:\n{log}");
    // The dry run prints each change as the ipvsadm command that would make it.
    assert!(
        log.lines().any(|l| l == "dry-run: ipvsadm -e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 15 -x 100 -y 50"),
        "no dry-run edit line:\n{log}"
    );
    eprintln!("ipvs_backends: {summary}");
}
