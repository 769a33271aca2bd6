//! The simulation subcommands: `run`, `validate`, `sweep`, `plan`, `export`, `import`,
//! `list`; `compare` and `show` of report directories (`dirs`: their names, kinds and
//! bounded reading).
//!
//! Each takes its parsed options, prints what it was asked to and returns an error whose
//! type selects the exit code (see [`exit_code`]).

pub mod compare;
pub mod dirs;
pub mod export;
pub mod import;
pub mod install;
pub mod list;
pub mod merge;
pub mod ordered;
pub mod pipe;
pub mod plan;
pub mod run;
pub mod shard;
pub mod show;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod table;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use reports::{RunMeta, Summary};
use scenarios::Loaded;
use scenarios::budget::{Budget, DEFAULT_MAX_EVENTS, DEFAULT_MAX_MEMORY, Keeps};
use sim_core::model::{ClusterConfig, RunReport, Simulation};

/// Exit code 2: bad usage, or a scenario (or a file it references) that is malformed or
/// invalid; the message names the file, line and column.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Exit code 3: the run finished and its report was written, but an `expect` check did
/// not hold.
#[derive(Debug)]
pub struct ExpectationFailed(pub String);

impl std::fmt::Display for ExpectationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExpectationFailed {}

/// The process exit code for an error: 2 for input, 3 for a failed expectation, 1 for
/// anything else (I/O, a refused command).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<InputError>().is_some() {
        2
    } else if e.downcast_ref::<ExpectationFailed>().is_some() {
        3
    } else {
        1
    }
}

/// Options every simulation subcommand shares.
#[derive(Clone, Debug, Default)]
pub struct Common {
    /// The scenario: a file, or the name of a library scenario if no such file exists.
    pub file: PathBuf,
    /// `--set PATH=VALUE`, in order.
    pub sets: Vec<String>,
    /// `--allow-path DIR`: directories besides the scenario's where the files it names
    /// may be.
    pub allow_paths: Vec<PathBuf>,
    /// Report directory; default `lvsim-out/<name>/` (plus a suffix per subcommand).
    pub out: Option<PathBuf>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Print machine-readable JSON on standard output instead of text.
    pub json: bool,
    /// Show progress bars (only on a terminal).
    pub progress: bool,
    /// Worker threads for parallel runs; 0 = every core.
    pub jobs: usize,
    /// `--max-events` and `--max-memory` (`None`: the defaults, see [`Common::budget`]).
    pub max_events: Option<f64>,
    /// `--max-memory` [bytes].
    pub max_memory: Option<f64>,
    /// `--exchange`: how connections' messages are simulated (same results either way).
    pub exchange: sim_core::model::Exchange,
    /// `--shard K/N` or `--slurm`: run a share of the work, or submit it to Slurm.
    pub split: Split,
}

/// Where a command's runs go.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Split {
    /// All of them here (the default).
    #[default]
    Local,
    /// `--shard K/N [--shards-dir DIR]`: this shard's units, into `DIR/shard-K-of-N.json`
    /// (default DIR: the report directory with `.shards` added).
    Shard {
        /// Which share.
        spec: shard::ShardSpec,
        /// `--shards-dir`.
        dir: Option<PathBuf>,
    },
    /// `--slurm`: a job array of shards and a merge job.
    Slurm {
        /// Its options.
        opts: slurm::SlurmOpts,
        /// `--shards-dir`.
        dir: Option<PathBuf>,
    },
}

impl Common {
    /// Loads the scenario (a file, else a library scenario by name) with the overrides;
    /// errors are input errors.
    pub fn load(&self, extra: &[String]) -> anyhow::Result<Loaded> {
        let mut sets = self.sets.clone();
        sets.extend_from_slice(extra);
        for d in &self.allow_paths {
            if !d.is_dir() {
                return Err(InputError(format!("--allow-path {}: not a directory", d.display())).into());
            }
        }
        // A path that exists is a file; otherwise a library scenario's name
        // (`quickstart`, `ha/vrrp-failover`); otherwise an error naming close names.
        let mut l = scenarios::library::load(&self.file, &sets, &self.allow_paths, Some(&self.budget()))
            .map_err(|e| InputError(e.to_string()))?;
        l.cluster.exchange = self.exchange;
        Ok(l)
    }

    /// The run budget: `--max-events` (default 2e10), `--max-memory` (default half the
    /// machine's memory, else 8 GiB), runs at once `--jobs` (default every core).
    pub fn budget(&self) -> Budget {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Budget {
            max_events: self.max_events.unwrap_or(DEFAULT_MAX_EVENTS),
            max_memory: self.max_memory.or_else(half_the_memory).unwrap_or(DEFAULT_MAX_MEMORY),
            parallel: if self.jobs == 0 { cores } else { self.jobs },
        }
    }

    /// Refuses (exit 2) a command of `runs` runs of `l` that exceeds the budget; `what`
    /// names the command in the message.
    pub fn check_budget(
        &self,
        l: &Loaded,
        runs: u64,
        what: &str,
        keeps: Keeps,
    ) -> anyhow::Result<scenarios::budget::Estimate> {
        Ok(scenarios::budget::check_keeping(l, runs, what, &self.budget(), keeps)
            .map_err(|e| InputError(e.to_string()))?)
    }

    /// The report directory: `--out`, else `lvsim-out/NAME{suffix}`, with `@LABEL` after
    /// NAME for a run with `--set` overrides (`lvsim-out/quickstart@scheduler=wlc/`, see
    /// [`dirs::run_dir_name`]).
    pub fn out_dir(&self, name: &str, suffix: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            Path::new("lvsim-out").join(format!("{}{suffix}", dirs::run_dir_name(name, &self.sets)))
        })
    }

    /// [`Common::out_dir`], checked: refuses (exit 2) a non-empty directory that is not an
    /// lvsim report; an earlier report there is replaced (saying so on stderr) only when the
    /// caller calls [`dirs::OutDir::clear`], just before writing.
    pub fn report_dir(&self, name: &str, suffix: &str) -> anyhow::Result<dirs::OutDir> {
        dirs::OutDir::check(self.out_dir(name, suffix))
    }

    /// Whether to draw progress bars: asked for, not quiet, and stderr is a terminal.
    pub fn bars(&self) -> bool {
        self.progress && !self.quiet && std::io::stderr().is_terminal()
    }
}

/// The terminal text a command printed, kept in its report directory as `summary.txt` so
/// that `lvsim show DIR` prints it again without rerunning.
pub fn write_terminal(dir: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("summary.txt"), text)
}

/// Half of `MemTotal` in /proc/meminfo [bytes], if it can be read.
fn half_the_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0 / 2.0)
}

/// Runs one configuration, reporting virtual-time progress to `observe`.
pub fn simulate(
    cfg: ClusterConfig,
    observe: impl FnMut(lvs_sched::Time),
) -> anyhow::Result<(RunReport, f64)> {
    let sim =
        Simulation::new(cfg).map_err(|e| InputError(format!("the scenario cannot be simulated: {e}")))?;
    let t0 = Instant::now();
    let report = sim.run_observed(observe);
    Ok((report, t0.elapsed().as_secs_f64()))
}

/// The report's metadata for a loaded scenario.
pub fn meta(l: &Loaded, wall_s: f64) -> RunMeta {
    RunMeta {
        scenario: l.name.clone(),
        description: l.scenario.description.clone(),
        source: l.file.clone(),
        overrides: l.overrides.clone(),
        wall_s,
        warnings: l.warnings.clone(),
        marks: l.scenario.events.iter().map(event_mark).collect(),
        warmup_s: l.scenario.warmup_s,
    }
}

/// A scenario event as the charts mark it: what changed, on what, in a few words.
fn event_mark(e: &scenarios::format::Event) -> reports::EventMark {
    use scenarios::format::Change;
    let change = match e.change {
        Change::Weight(w) => format!("weight {w}"),
        Change::Remove => "removed".to_string(),
        Change::Restore(w) => format!("restored, weight {w}"),
        Change::Background(n) => format!("{n} background task(s)"),
        Change::BackgroundLoad(c) => format!("background load {c} core(s)"),
        Change::Crash => "crash".to_string(),
        Change::Hang => "hang".to_string(),
        Change::Slow(f) => format!("slow ×{f}"),
        Change::Recover => "recovers".to_string(),
        Change::DirectorDown => "down".to_string(),
        Change::DirectorUp => "up".to_string(),
        Change::LinkDown(side) => format!("{} link down", format!("{side:?}").to_lowercase()),
        Change::LinkUp(side) => format!("{} link up", format!("{side:?}").to_lowercase()),
        Change::DirectorWithdraw => "withdrawn".to_string(),
        Change::DirectorAnnounce => "announced".to_string(),
    };
    let subject = e.server.as_deref().or(e.director.as_deref()).unwrap_or("");
    let label = if subject.is_empty() { change } else { format!("{subject} {change}") };
    reports::EventMark { at_s: e.at_s, label }
}

/// Runs one configuration to its summary (the report itself is dropped: sweeps and plans
/// keep only summaries).
pub fn summarize(l: &Loaded, cfg: ClusterConfig) -> anyhow::Result<Summary> {
    let (report, wall) = simulate(cfg, |_| {})?;
    Ok(reports::summary(&meta(l, wall), &report))
}

/// A progress bar on stderr counting `len` runs, or a hidden one.
pub fn count_bar(show: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

/// Loss fraction of a summary: offered connections that did not complete.
pub fn loss(s: &Summary) -> f64 {
    let c = &s.connections;
    if c.offered == 0 { 0.0 } else { (c.refused + c.dropped + c.lost_on_failover) as f64 / c.offered as f64 }
}
