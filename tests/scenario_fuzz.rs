//! The scenario fuzz test: mutated library scenarios through `lvsim validate` and, when
//! accepted, `lvsim run` (the binary cargo built for this test), each under a wall-clock
//! and an address-space cap. No panic, no abort, no run past the cap.
//!
//! Bounded: it starts no input after `LVSIM_FUZZ_SECS` seconds (default 60), so it ends
//! within that plus one validate and one run cap. `LVSIM_FUZZ_SEED` picks another seed
//! (default 1). A longer campaign is `lvsim-fuzz` (docs/scenarios.md, "Fuzzing").
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::Duration;

use lvsim::fuzz::{self, Caps, Config, Corpus};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn mutated_library_scenarios_never_panic_abort_or_run_past_the_cap() {
    let bin = Path::new(env!("CARGO_BIN_EXE_lvsim"));
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
    let corpus = Corpus::new(fuzz::library(&library).expect("reading the scenario library"));
    assert!(corpus.seeds.len() >= 10, "only {} library scenarios", corpus.seeds.len());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenario-fuzz");
    let _ = std::fs::remove_dir_all(&tmp);
    // A debug build: the simulator is optimised even here (the workspace's dev profile),
    // and the budget keeps what validate accepts well within the run cap (4e7 events: a
    // few seconds; the library's scenarios but LVS-REF-1's are accepted as written).
    let budget = fuzz::budget_args(bin, 40_000_000, "512M");
    let memory = 2048 << 20;
    let cfg = Config {
        bin: bin.to_path_buf(),
        seed: env_u64("LVSIM_FUZZ_SEED", 1),
        first: 0,
        max_inputs: u64::MAX,
        time: Duration::from_secs(env_u64("LVSIM_FUZZ_SECS", 60)),
        workers: 2,
        validate_caps: Caps { wall: Duration::from_secs(15), address_space: memory },
        run_caps: Caps { wall: Duration::from_secs(30), address_space: memory },
        budget,
        work: tmp.join("work"),
        findings: Some(tmp.join("findings")),
    };
    let st = fuzz::campaign(&corpus, &cfg).expect("running the campaign");
    println!("scenario fuzz (seed {}, budget {:?}): {st}", cfg.seed, cfg.budget);
    assert!(st.tried >= 10, "too few inputs tried: {st}");
    assert!(st.accepted >= 1, "no mutant was accepted: {st}");
    let report: Vec<String> = st
        .failures
        .iter()
        .map(|f| {
            let excerpt = fuzz::exec::excerpt(&f.exec.stderr);
            let head: Vec<&str> = excerpt.lines().filter(|l| !l.contains("/rustc/")).take(12).collect();
            format!(
                "input {} ({}): {} {}\n  edits: {}\n  {}\n  stderr: {}",
                f.index,
                f.key,
                f.exec.status,
                f.command,
                f.mutant.edits.join("; "),
                f.mutant.source,
                head.join("\n          ")
            )
        })
        .collect();
    assert!(
        st.failures.is_empty(),
        "{st}\nmutants and reports in {}\n{}",
        tmp.join("findings").display(),
        report.join("\n")
    );
}
