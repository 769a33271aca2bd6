//! The kernel's side: one VM boot running tests/vm/counters.sh, its listing parsed.

use std::path::Path;
use std::process::Command;

use super::{CASES, Table};

/// Runs the traffic in the VM and returns the kernel's counters; `None` if the VM cannot
/// start and `LVSIM_SKIP_VM=1`.
pub fn counters() -> Option<Table> {
    if let Some(saved) = std::env::var_os("COUNTERS_KERNEL_OUTPUT") {
        // A VM run's output kept from before (studying the model without a VM boot).
        let log = std::fs::read_to_string(&saved).expect("reading COUNTERS_KERNEL_OUTPUT");
        return Some(parse(listing(&log)));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness = root.join("tests/vm/lvsim-vm");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("counters-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("creating the work dir");
    let me = std::env::current_exe().expect("the test binary's path");
    std::fs::copy(&me, work.join("traffic")).expect("copying the test binary");
    std::fs::copy(root.join("tests/vm/counters.sh"), work.join("counters.sh")).expect("copying counters.sh");
    let skip = std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1");
    let setup = Command::new(&harness).arg("setup").status().expect("running tests/vm/lvsim-vm setup");
    if !setup.success() {
        if skip {
            eprintln!("NOTICE: ipvs_counters SKIPPED: the VM could not be set up and LVSIM_SKIP_VM=1");
            return None;
        }
        panic!("tests/vm/lvsim-vm setup failed ({setup}); install qemu (see .ci/run) or set LVSIM_SKIP_VM=1");
    }
    let cases: Vec<String> = CASES
        .iter()
        .map(|c| format!("{}:{}:{}:{}:{}", c.port, c.request, c.response, c.requests, c.conns))
        .collect();
    let out = Command::new(&harness)
        .env("LVSIM_VM_MODULES", "ipip sch_fq")
        .arg("run")
        .arg("--share")
        .arg(&work)
        .args(["--timeout", "600", "-e"])
        .arg(format!("COUNTER_CASES={}", cases.join(" ")))
        .args(["-c", "sh ./counters.sh"])
        .output()
        .expect("running tests/vm/lvsim-vm");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&work);
    match out.status.code() {
        Some(0) => {}
        Some(125) if skip => {
            eprintln!("NOTICE: ipvs_counters SKIPPED: the VM did not start and LVSIM_SKIP_VM=1");
            return None;
        }
        code => panic!("the VM run failed (exit {code:?}): {}\n{log}", String::from_utf8_lossy(&out.stderr)),
    }
    if let Some(keep) = std::env::var_os("COUNTERS_KEEP_OUTPUT") {
        std::fs::write(&keep, &log).expect("writing COUNTERS_KEEP_OUTPUT");
    }
    Some(parse(listing(&log)))
}

/// The listing between counters.sh's BEGIN and END lines.
fn listing(log: &str) -> &str {
    log.split_once("BEGIN ipvsadm -L -n --stats --exact\n")
        .and_then(|(_, rest)| rest.split_once("END"))
        .map(|(l, _)| l)
        .unwrap_or_else(|| panic!("no listing in the VM's output:\n{log}"))
}

/// `ipvsadm -L -n --stats --exact`: service lines (`TCP  VIP:PORT  5 numbers`) and their
/// real servers (`  -> RIP:PORT  5 numbers`).
pub fn parse(listing: &str) -> Table {
    let mut table = Table::new();
    let mut service = String::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (key, nums) = match f.as_slice() {
            ["TCP", vip, nums @ ..] => {
                service = (*vip).to_owned();
                ((service.clone(), String::new()), nums)
            }
            ["->", rip, nums @ ..] if nums.len() == 5 => ((service.clone(), (*rip).to_owned()), nums),
            _ => continue,
        };
        let v: Vec<u64> =
            nums.iter().map(|n| n.parse().unwrap_or_else(|_| panic!("a number in {line:?}"))).collect();
        let counters: [u64; 5] = v.try_into().unwrap_or_else(|_| panic!("five counters in {line:?}"));
        table.insert(key, counters);
    }
    assert!(!table.is_empty(), "no service in the listing:\n{listing}");
    table
}
