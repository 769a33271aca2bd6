//! The scenario fuzzer: mutated library scenarios through `lvsim validate` and, when
//! accepted, `lvsim run`, each a child process under a wall-clock and an address-space
//! cap. Used by `tests/scenario_fuzz.rs` (bounded, in CI) and `lvsim-fuzz` (campaigns).
//!
//! - [`mutate`]: the mutation engine (input `i` of seed `s` is the same mutant anywhere);
//! - [`exec`]: one child process under caps, and how it ended ([`exec::Outcome`]);
//! - this file: a campaign ([`campaign`]) over worker threads, its counts ([`Stats`]) and
//!   its findings (one `.ron` and one `.txt` per distinct failure, deduplicated by panic
//!   location, abort kind or the field edited).
//!
//! A failure is a panic, an abort (a signal: out of memory under the cap, ...) or a
//! child still running at its wall cap, in `validate` or in `run`.

pub mod exec;
pub mod mutate;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use exec::{Caps, Exec, Outcome};
pub use mutate::{Corpus, Mutant, Seed};

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `lvsim` binary.
    pub bin: PathBuf,
    /// Mutation seed.
    pub seed: u64,
    /// Index of the first input (to continue a campaign).
    pub first: u64,
    /// Stop after this many inputs.
    pub max_inputs: u64,
    /// Start no input after this long.
    pub time: Duration,
    /// Inputs run at once.
    pub workers: usize,
    /// Caps on `lvsim validate`.
    pub validate_caps: Caps,
    /// Caps on `lvsim run`.
    pub run_caps: Caps,
    /// Arguments added to both commands (the run budget: `--max-events N ...`).
    pub budget: Vec<String>,
    /// Scratch directory (mutants, reports; emptied as it goes).
    pub work: PathBuf,
    /// Where findings are written, if anywhere.
    pub findings: Option<PathBuf>,
}

/// A failure: the input, the command and how it ended.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Input index.
    pub index: u64,
    /// Deduplication key (also the finding's file name).
    pub key: String,
    /// The mutated scenario.
    pub mutant: Mutant,
    /// `validate` or `run`, with its arguments.
    pub command: String,
    /// How it ended.
    pub exec: Exec,
}

/// What a campaign did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Inputs tried.
    pub tried: u64,
    /// Accepted by `validate`.
    pub accepted: u64,
    /// Runs that finished (exit 0 or 3).
    pub ran: u64,
    /// Runs that `run` refused (exit 2) after `validate` accepted the scenario.
    pub refused_by_run: u64,
    /// The first 20 of them: input index and `run`'s error line.
    pub refusals: Vec<(u64, String)>,
    /// Other exit codes, `validate` or `run`.
    pub errors: u64,
    /// Panics, `validate` or `run`.
    pub panics: u64,
    /// Aborts (signals), `validate` or `run`.
    pub aborts: u64,
    /// Children killed at their wall cap.
    pub past_cap: u64,
    /// Every failure (with its key; several may share one).
    pub failures: Vec<Failure>,
    /// Wall-clock time of the campaign.
    pub elapsed: Duration,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&str> = self.failures.iter().map(|x| x.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        write!(
            f,
            "{} inputs tried in {:.0} s, {} accepted by validate, {} ran to the end, {} refused by run, \
             {} other errors; failures: {} panics, {} aborts, {} past the cap ({} distinct)",
            self.tried,
            self.elapsed.as_secs_f64(),
            self.accepted,
            self.ran,
            self.refused_by_run,
            self.errors,
            self.panics,
            self.aborts,
            self.past_cap,
            keys.len()
        )
    }
}

/// The scenarios of a library directory (recursively).
pub fn library(dir: &Path) -> std::io::Result<Vec<Seed>> {
    crate::commands::list::library_files(dir)
        .into_iter()
        .map(|p| Ok(Seed { file: p.display().to_string(), text: std::fs::read_to_string(&p)? }))
        .collect()
}

/// The scenario library compiled into lvsim, in the same order as [`library`] reads its
/// directory (so that input `I` of seed `S` is the same mutant either way).
pub fn embedded_library() -> Vec<Seed> {
    scenarios::library::all().iter().map(|e| Seed { file: e.source(), text: e.text.to_owned() }).collect()
}

/// The budget arguments for `bin` if it takes them (`--max-events`, `--max-memory`),
/// else none.
pub fn budget_args(bin: &Path, max_events: u64, max_memory: &str) -> Vec<String> {
    let help = std::process::Command::new(bin).args(["run", "--help"]).output();
    let knows = help.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--max-events"));
    if knows {
        vec!["--max-events".into(), max_events.to_string(), "--max-memory".into(), max_memory.into()]
    } else {
        Vec::new()
    }
}

/// Runs a campaign on `workers` threads until `time` or `max_inputs`.
pub fn campaign(corpus: &Corpus, cfg: &Config) -> std::io::Result<Stats> {
    std::fs::create_dir_all(&cfg.work)?;
    if let Some(d) = &cfg.findings {
        std::fs::create_dir_all(d)?;
    }
    let next = AtomicU64::new(cfg.first);
    let stats = Mutex::new(Stats::default());
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.workers.max(1))
            .map(|w| {
                let (next, stats) = (&next, &stats);
                s.spawn(move || -> std::io::Result<()> {
                    let dir = cfg.work.join(format!("w{w}"));
                    std::fs::create_dir_all(&dir)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= cfg.first + cfg.max_inputs || t0.elapsed() >= cfg.time {
                            return Ok(());
                        }
                        let m = corpus.mutant(cfg.seed, i);
                        let result = one(cfg, &dir, i, m)?;
                        record(cfg, &mut stats.lock().expect("stats"), result)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|h| h.join().expect("a fuzz worker panicked"))
    })?;
    let mut st = stats.into_inner().expect("stats");
    st.elapsed = t0.elapsed();
    st.failures.sort_by_key(|f| f.index);
    st.refusals.sort();
    Ok(st)
}

/// What happened to one input: validate's end, and run's if it ran.
struct Tried {
    index: u64,
    mutant: Mutant,
    validate: (Vec<String>, Exec),
    run: Option<(Vec<String>, Exec)>,
}

fn one(cfg: &Config, dir: &Path, index: u64, mutant: Mutant) -> std::io::Result<Tried> {
    let file = dir.join(format!("input-{index}.ron"));
    std::fs::write(&file, &mutant.text)?;
    let f = file.display().to_string();
    let mut vargs: Vec<String> = vec!["validate".into(), "-q".into(), f.clone()];
    vargs.extend(cfg.budget.iter().cloned());
    let v = exec::exec(&cfg.bin, &vargs, dir, cfg.validate_caps)?;
    let mut run = None;
    if v.outcome == Outcome::Ok {
        let out = dir.join("out");
        let mut rargs: Vec<String> =
            ["run", &f, "-q", "--no-progress", "--jobs", "1", "-o"].iter().map(|s| s.to_string()).collect();
        rargs.push(out.display().to_string());
        rargs.extend(cfg.budget.iter().cloned());
        let r = exec::exec(&cfg.bin, &rargs, dir, cfg.run_caps)?;
        let _ = std::fs::remove_dir_all(&out);
        run = Some((rargs, r));
    }
    std::fs::remove_file(&file)?;
    Ok(Tried { index, mutant, validate: (vargs, v), run })
}

fn record(cfg: &Config, st: &mut Stats, t: Tried) -> std::io::Result<()> {
    st.tried += 1;
    let mut ends = vec![&t.validate];
    if let Some(r) = &t.run {
        st.accepted += 1;
        match r.1.outcome {
            Outcome::Ok => st.ran += 1,
            Outcome::Refused => {
                st.refused_by_run += 1;
                if st.refusals.len() < 20 {
                    let why = r.1.stderr.lines().find(|l| l.starts_with("lvsim: error:")).unwrap_or_default();
                    st.refusals.push((t.index, why.to_owned()));
                }
            }
            _ => {}
        }
        ends.push(r);
    }
    for (args, e) in ends {
        match e.outcome {
            Outcome::Error(_) => st.errors += 1,
            Outcome::Panic(_) => st.panics += 1,
            Outcome::Abort(_) => st.aborts += 1,
            Outcome::PastCap => st.past_cap += 1,
            Outcome::Ok | Outcome::Refused => {}
        }
        if !e.outcome.is_failure() {
            continue;
        }
        let f = Failure {
            index: t.index,
            key: key(&args[0], e, &t.mutant),
            mutant: t.mutant.clone(),
            command: format!("lvsim {}", args.join(" ")),
            exec: e.clone(),
        };
        if let Some(dir) = &cfg.findings {
            write_finding(dir, cfg, &f)?;
        }
        st.failures.push(f);
    }
    Ok(())
}

/// A failure's deduplication key: the panic's location; the abort's kind; or, past the
/// cap, the fields edited.
fn key(stage: &str, e: &Exec, m: &Mutant) -> String {
    let raw = match &e.outcome {
        // A panic in the standard library (an overflow in `product()`) is keyed by the
        // workspace's frame that called it.
        Outcome::Panic(loc) => match loc.as_deref() {
            Some(l) if !l.starts_with("/rustc/") && !l.contains("/.cargo/registry/") => format!("panic-{l}"),
            _ => format!("panic-{}", exec::first_own_frame(&e.stderr).unwrap_or_else(|| "unknown".into())),
        },
        Outcome::Abort(_) if e.stderr.contains("memory allocation of") => {
            format!("abort-oom-{stage}-{}", exec::first_own_frame(&e.stderr).unwrap_or_default())
        }
        Outcome::Abort(_) if e.stderr.contains("overflowed its stack") => {
            format!("abort-stack-overflow-{stage}")
        }
        Outcome::Abort(sig) => format!("abort-signal{sig}-{stage}"),
        _ => {
            // The last step of each field edited (`rate`, `duration_s`, `events`).
            let mut fields: Vec<&str> = m
                .edits
                .iter()
                .map(|x| x.split(':').next().unwrap_or("").rsplit('.').next().unwrap_or(""))
                .map(|f| f.split('[').next().unwrap_or(f))
                .collect();
            fields.sort_unstable();
            fields.dedup();
            format!("past-cap-{stage}-{}", fields.join("+"))
        }
    };
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// `DIR/KEY.ron` (the mutant) and `DIR/KEY.txt` (what failed), unless that key was found
/// before.
fn write_finding(dir: &Path, cfg: &Config, f: &Failure) -> std::io::Result<()> {
    let ron = dir.join(format!("{}.ron", f.key));
    if ron.exists() {
        return Ok(());
    }
    let text = format!(
        "input {} of seed {} (lvsim-fuzz --seed {} --first {} --inputs 1)\nfrom {}\nedits:\n  {}\n\
         command: {}\n  (the mutant is {}; budget {:?}; caps: validate {:?}, run {:?})\n\
         status: {} after {:.2} s ({})\nstderr:\n{}\n",
        f.index,
        cfg.seed,
        cfg.seed,
        f.index,
        f.mutant.source,
        f.mutant.edits.join("\n  "),
        f.command,
        ron.display(),
        cfg.budget,
        cfg.validate_caps,
        cfg.run_caps,
        f.exec.status,
        f.exec.elapsed.as_secs_f64(),
        f.exec.outcome.class(),
        exec::excerpt(&f.exec.stderr),
    );
    std::fs::write(dir.join(format!("{}.txt", f.key)), text)?;
    std::fs::write(&ron, &f.mutant.text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_library_seeds_as_the_directory_does() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
        let from_dir = super::library(&dir).unwrap();
        let embedded = super::embedded_library();
        assert!(embedded.len() >= 20);
        let texts = |s: &[super::Seed]| s.iter().map(|s| s.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&embedded), texts(&from_dir), "same scenarios, same order");
        assert!(embedded.iter().all(|s| s.file.starts_with("library:")));
    }
}
