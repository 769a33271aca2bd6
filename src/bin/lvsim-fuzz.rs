//! `lvsim-fuzz`: a scenario fuzz campaign. Mutates the scenario library, runs `lvsim
//! validate` and, on what it accepts, `lvsim run`, each under a wall-clock and memory cap,
//! and writes each distinct failure (panic, abort, run past the cap) to a findings
//! directory. docs/scenarios.md ("Fuzzing") shows how to run one.
//!
//! Exit codes: 0 no failure; 1 failures found (or an I/O error); 2 bad usage.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("lvsim-fuzz needs Linux (setrlimit, signals)");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use anyhow::Context as _;
    use clap::Parser;
    use lvsim::fuzz::{self, Caps, Config, Corpus};

    /// Scenario fuzz campaign: mutated library scenarios through `lvsim validate` and
    /// `lvsim run` under caps. Input I of seed S is the same mutant on any machine, so a
    /// finding is reproduced with `--seed S --first I --inputs 1`.
    #[derive(Parser)]
    #[command(name = "lvsim-fuzz", version, about, long_about)]
    struct Cli {
        /// The lvsim binary [default: `lvsim` beside this program].
        #[arg(long, value_name = "PATH")]
        lvsim: Option<PathBuf>,
        /// Directory of scenarios to mutate [default: the library compiled into lvsim].
        #[arg(long, value_name = "DIR")]
        library: Option<PathBuf>,
        /// Mutation seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Index of the first input.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Stop after this many inputs.
        #[arg(long, value_name = "N", default_value_t = u64::MAX)]
        inputs: u64,
        /// Start no input after this many seconds.
        #[arg(long, value_name = "S", default_value_t = 600)]
        time_s: u64,
        /// Inputs run at once.
        #[arg(long, value_name = "N", default_value_t = 2)]
        workers: usize,
        /// Wall-clock cap on `lvsim run` [s]; a run still going is killed and counted.
        #[arg(long, value_name = "S", default_value_t = 30.0)]
        run_cap_s: f64,
        /// Wall-clock cap on `lvsim validate` [s].
        #[arg(long, value_name = "S", default_value_t = 10.0)]
        validate_cap_s: f64,
        /// Address-space cap on each child [MiB] (RLIMIT_AS).
        #[arg(long, value_name = "MIB", default_value_t = 2048)]
        memory_cap_mib: u64,
        /// `--max-events` passed to validate and run (if lvsim takes it): enough for a run
        /// of every library scenario as written, and for a run well within the cap in a
        /// release build (validate also counts a scenario's sweep: three library sweeps
        /// exceed it as written).
        #[arg(long, value_name = "N", default_value_t = 150_000_000)]
        max_events: u64,
        /// `--max-memory` passed to validate and run (if lvsim takes it).
        #[arg(long, value_name = "SIZE", default_value = "768M")]
        max_memory: String,
        /// Findings directory (one .ron and one .txt per distinct failure).
        #[arg(long, value_name = "DIR", default_value = "fuzz-findings")]
        findings: PathBuf,
        /// Scratch directory.
        #[arg(long, value_name = "DIR", default_value = "target/lvsim-fuzz")]
        work: PathBuf,
    }

    pub fn main() -> ExitCode {
        match run(Cli::parse()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("lvsim-fuzz: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }

    fn run(cli: Cli) -> anyhow::Result<bool> {
        let bin = match cli.lvsim {
            Some(b) => b,
            None => std::env::current_exe()?.with_file_name("lvsim"),
        };
        let seeds = match &cli.library {
            Some(dir) => fuzz::library(dir).with_context(|| format!("reading {}", dir.display()))?,
            None => fuzz::embedded_library(),
        };
        let corpus = Corpus::new(seeds);
        anyhow::ensure!(!corpus.seeds.is_empty(), "no scenario in {:?}", cli.library);
        let budget = fuzz::budget_args(&bin, cli.max_events, &cli.max_memory);
        let memory = cli.memory_cap_mib << 20;
        let cfg = Config {
            seed: cli.seed,
            first: cli.first,
            max_inputs: cli.inputs,
            time: Duration::from_secs(cli.time_s),
            workers: cli.workers,
            validate_caps: Caps { wall: Duration::from_secs_f64(cli.validate_cap_s), address_space: memory },
            run_caps: Caps { wall: Duration::from_secs_f64(cli.run_cap_s), address_space: memory },
            budget,
            work: cli.work,
            findings: Some(cli.findings.clone()),
            bin,
        };
        eprintln!(
            "lvsim-fuzz: {} scenarios, seed {}, inputs from {}, budget {:?}, findings in {}",
            corpus.seeds.len(),
            cfg.seed,
            cfg.first,
            cfg.budget,
            cli.findings.display()
        );
        let st = fuzz::campaign(&corpus, &cfg)?;
        println!("{st}");
        for (i, why) in &st.refusals {
            println!("  input {i}: accepted by validate, refused by run: {why}");
        }
        for f in &st.failures {
            println!("  input {}: {} ({}) {}", f.index, f.key, f.exec.status, f.mutant.edits.join("; "));
        }
        Ok(st.failures.is_empty())
    }
}
