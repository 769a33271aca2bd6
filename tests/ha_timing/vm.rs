//! One VM boot running tests/vm/ha-timing.sh for one daemon, on the files `lvsim export`
//! wrote for a library scenario; what it measured, read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};

/// VMs running now, and the most at once. One: two VMs side by side on a 2-core machine
/// slow each other's guest enough to change what is measured (ldirectord's perl checks
/// then time out spuriously, heartbeat declares a node dead 1 s late). The cases' model
/// runs still overlap the VM of another case.
static RUNNING: (Mutex<u32>, Condvar) = (Mutex::new(0), Condvar::new());
const MAX_VMS: u32 = 1;

/// A VM slot, held while a VM runs.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let (count, freed) = &RUNNING;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= MAX_VMS {
            n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// What one VM run left: its `KEY UPTIME` results and its output directory (the daemons'
/// logs, `WEB.checks`, `adverts`).
pub struct Measured {
    /// `out/result`: times on the guest's monotonic clock [s].
    pub results: BTreeMap<String, f64>,
    /// The exported files the daemons ran.
    pub export: PathBuf,
    /// The run's `out/` directory.
    pub out: PathBuf,
}

impl Measured {
    /// Result `key`; panics naming the run's output if the script did not write it.
    pub fn at(&self, key: &str) -> f64 {
        *self.results.get(key).unwrap_or_else(|| panic!("no {key:?} in {}/result", self.out.display()))
    }

    /// The times (first column) of the lines of `out/FILE` whose second column is `from`.
    pub fn times(&self, file: &str, from: &str) -> Vec<f64> {
        self.lines(file, from).into_iter().map(|(t, _)| t).collect()
    }

    /// ... and whose third column is `what`.
    pub fn times_of(&self, file: &str, from: &str, what: &str) -> Vec<f64> {
        self.lines(file, from).into_iter().filter(|(_, w)| w == what).map(|(t, _)| t).collect()
    }

    fn lines(&self, file: &str, from: &str) -> Vec<(f64, String)> {
        let path = self.out.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let t = f.next()?.parse().ok()?;
                (f.next()? == from).then(|| (t, f.next().unwrap_or_default().to_owned()))
            })
            .collect()
    }

    /// The last time in `out/FILE` from `from` at or before `t`.
    pub fn last_before(&self, file: &str, from: &str, t: f64) -> f64 {
        let times = self.times(file, from);
        times
            .into_iter()
            .rfind(|&x| x <= t)
            .unwrap_or_else(|| panic!("nothing from {from} in {file} before {t}"))
    }

    /// An exported file's text.
    pub fn exported(&self, name: &str) -> String {
        let path = self.export.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// Exports `scenario` and runs `ha-timing.sh DAEMON` in the VM; `None` if the VM cannot
/// start and `LVSIM_SKIP_VM=1`.
pub fn run(daemon: &str, scenario: &Path) -> Option<Measured> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness = root.join("tests/vm/lvsim-vm");
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ha-timing-{daemon}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (export, out) = (work.join("export"), work.join("out"));
    std::fs::create_dir_all(&out).expect("creating the work dir");
    let lvsim = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .arg("export")
        .arg(scenario)
        .arg("-o")
        .arg(&export)
        .output()
        .expect("running lvsim export");
    assert!(
        lvsim.status.success(),
        "lvsim export {}: {}",
        scenario.display(),
        String::from_utf8_lossy(&lvsim.stderr)
    );
    std::fs::copy(std::env::current_exe().expect("the test binary"), work.join("hat"))
        .expect("copying the test binary");
    std::fs::copy(root.join("tests/vm/ha-timing.sh"), work.join("ha-timing.sh"))
        .expect("copying ha-timing.sh");
    if daemon == "heartbeat" {
        // The guest sees only the host's /usr: heartbeat's resource scripts and helpers
        // (/etc/ha.d/resource.d, harc, shellfuncs, rc.d) are copied in, read-only here.
        let cp = Command::new("cp").args(["-a", "/etc/ha.d/."]).arg(work.join("ha-etc")).status();
        assert!(
            cp.is_ok_and(|s| s.success()) && work.join("ha-etc/resource.d/IPaddr2").exists(),
            "/etc/ha.d/resource.d is missing: install the Debian package heartbeat"
        );
        for own in ["ha.cf", "haresources", "authkeys", "ldirectord.cf"] {
            let _ = std::fs::remove_file(work.join("ha-etc").join(own));
        }
    }
    let skip = std::env::var("LVSIM_SKIP_VM").is_ok_and(|v| v == "1");
    let setup = Command::new(&harness).arg("setup").status().expect("running tests/vm/lvsim-vm setup");
    if !setup.success() {
        if skip {
            eprintln!("NOTICE: ha_timing SKIPPED: the VM could not be set up and LVSIM_SKIP_VM=1");
            return None;
        }
        panic!("tests/vm/lvsim-vm setup failed ({setup}); install qemu (see .ci/run) or set LVSIM_SKIP_VM=1");
    }
    let slot = Slot::take();
    let vm = Command::new(&harness)
        .arg("run")
        .arg("--share")
        .arg(&work)
        .args(["--timeout", "150", "-c"])
        .arg(format!("sh ./ha-timing.sh {daemon}"))
        .output()
        .expect("running tests/vm/lvsim-vm");
    drop(slot);
    // The logs stay (for a failure's study); the binary copy (megabytes) goes.
    let _ = std::fs::remove_file(work.join("hat"));
    let log = String::from_utf8_lossy(&vm.stdout).into_owned();
    match vm.status.code() {
        Some(0) => {}
        Some(125) if skip => {
            eprintln!("NOTICE: ha_timing SKIPPED: the VM did not start and LVSIM_SKIP_VM=1");
            return None;
        }
        code => panic!(
            "the {daemon} VM run failed (exit {code:?}; its files: {}):\n{log}\n{}",
            out.display(),
            String::from_utf8_lossy(&vm.stderr)
        ),
    }
    if std::env::var_os("LVSIM_VM_VERBOSE").is_some() {
        eprint!("{log}");
    }
    let text = std::fs::read_to_string(out.join("result")).expect("the VM run's out/result");
    let results = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.trim().parse().unwrap_or_else(|_| panic!("a time in {v:?}"))))
        .collect();
    Some(Measured { results, export, out })
}
