//! `--slurm`: a split's shards as a Slurm job array, and a dependent job that merges them.

use std::path::{Path, PathBuf};

use super::InputError;
use super::shard::{Identity, Invocation, Kind, Work, refuse};

/// `--slurm` and its resources (each default comes from the scenario's size).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOpts {
    /// `--submit`: run `sbatch` too (else only write the scripts).
    pub submit: bool,
    /// `--shards N`: array tasks [default: from the number of units].
    pub shards: Option<u32>,
    /// `--cpus-per-task N` (each task runs its units on that many threads).
    pub cpus_per_task: Option<u32>,
    /// `--mem SIZE` per task, as Slurm reads it (`4G`, `512M`).
    pub mem: Option<String>,
    /// `--time LIMIT` per task, as Slurm reads it (`30`, `1:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// `--partition NAME`.
    pub partition: Option<String>,
    /// `--account NAME`.
    pub account: Option<String>,
    /// `--lvsim PATH`: the lvsim the nodes run [default: this one's absolute path].
    pub lvsim: Option<PathBuf>,
    /// `--sbatch-arg ARG`: more `#SBATCH` options, as given. Repeatable.
    pub sbatch_args: Vec<String>,
}

/// `<shards dir>/slurm/jobs.json`: what was submitted, for `lvsim status` and for the
/// next `--slurm --submit` (which submits only the shards not done).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Jobs {
    /// Shards of the split (`N`).
    pub shards: u32,
    /// Where the merge job writes the report.
    pub report_dir: String,
    /// Every submission, oldest first.
    pub submissions: Vec<Submission>,
}

/// One `--slurm --submit`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Submission {
    /// The array job's id.
    pub array_job: u64,
    /// The merge job's id (it depends on the array with `afterany`).
    pub merge_job: u64,
    /// The shards (`K`) the array runs.
    pub tasks: Vec<u32>,
    /// When [Unix seconds].
    pub at: u64,
}

/// The most array tasks `--slurm` chooses by itself (one per unit up to this; Slurm's
/// default `MaxArraySize` is 1001).
pub const DEFAULT_MAX_TASKS: u32 = 1000;

/// Events a CPU simulates per second, for the time limit: conservative (a release build
/// does about 8 million on a 2026 laptop core; docs/benchmarks.md).
pub const EVENTS_PER_CPU_S: f64 = 1e6;

/// The time limit is the estimated time times this.
pub const TIME_MARGIN: f64 = 2.0;

/// The shortest time limit given by default [s].
pub const MIN_TIME_S: u64 = 600;

/// Memory per task: the runs at once times the estimate of one run, times this, plus
/// [`MEM_BASE`].
pub const MEM_MARGIN: f64 = 1.5;

/// Memory of lvsim itself, the scenario and the kept summaries [bytes].
pub const MEM_BASE: f64 = 256.0 * MIB;

/// Memory of the merge job: this plus [`MERGE_MEM_PER_UNIT`] per unit [bytes].
pub const MERGE_MEM_BASE: f64 = 512.0 * MIB;

/// Memory of the merge job per unit (a summary and its JSON) [bytes].
pub const MERGE_MEM_PER_UNIT: f64 = 256.0 * 1024.0;

const MIB: f64 = 1024.0 * 1024.0;

/// The largest `jobs.json` or `identity.json` read [bytes].
const MAX_STATE_FILE: u64 = 16 << 20;

/// What each array task asks Slurm for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    /// `--cpus-per-task` (and the task's `--jobs`).
    pub cpus: u32,
    /// `--mem`, as sbatch reads it.
    pub mem: String,
    /// `--time`, as sbatch reads it.
    pub time: String,
}

/// The number of shards: `--shards`, else one per unit up to [`DEFAULT_MAX_TASKS`];
/// never more than the units (saying so when `--shards` asked for more).
pub fn shards_for(asked: Option<u32>, units: usize) -> anyhow::Result<u32> {
    let most = u32::try_from(units.max(1)).unwrap_or(u32::MAX).min(super::shard::MAX_SHARDS);
    match asked {
        None => Ok(most.min(DEFAULT_MAX_TASKS)),
        Some(0) => Err(InputError("--shards 0: a split needs at least one shard".into()).into()),
        Some(n) if n > super::shard::MAX_SHARDS => {
            Err(InputError(format!("--shards {n}: at most {} shards", super::shard::MAX_SHARDS)).into())
        }
        Some(n) if n > most => {
            eprintln!(
                "lvsim: --shards {n}: the work has {units} run(s); using {most} shard(s), one run each"
            );
            Ok(most)
        }
        Some(n) => Ok(n),
    }
}

/// Each task's resources: the options, else defaults from the estimate of one run
/// (`events`, peak `memory` [bytes]) and the units each of the `n` shards runs.
pub fn resources(
    opts: &SlurmOpts,
    events: f64,
    memory: f64,
    units: usize,
    n: u32,
) -> anyhow::Result<Resources> {
    let cpus = opts.cpus_per_task.unwrap_or(1);
    if cpus == 0 {
        return Err(InputError("--cpus-per-task 0: a task needs at least one CPU".into()).into());
    }
    let per_task = units.div_ceil(n.max(1) as usize).max(1);
    let at_once = (cpus as usize).min(per_task) as f64;
    let mem = match &opts.mem {
        Some(m) => checked_mem(m)?,
        None => format!("{}M", ((at_once * memory.max(0.0) * MEM_MARGIN + MEM_BASE) / MIB).ceil() as u64),
    };
    let time = match &opts.time {
        Some(t) => checked_time(t)?,
        None => {
            let s = per_task as f64 * events.max(0.0) / (at_once * EVENTS_PER_CPU_S) * TIME_MARGIN;
            slurm_time((s.ceil() as u64).max(MIN_TIME_S))
        }
    };
    Ok(Resources { cpus, mem, time })
}

/// Seconds as Slurm's `D-HH:MM:SS`.
pub fn slurm_time(s: u64) -> String {
    format!("{}-{:02}:{:02}:{:02}", s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60)
}

/// `--mem`: digits and an optional unit (K, M, G, T), as sbatch reads it.
fn checked_mem(m: &str) -> anyhow::Result<String> {
    let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit_len = m.len() - digits.len();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || unit_len > 1 || m.len() > 20 {
        return Err(InputError(format!(
            "--mem {m:?}: expected a size as sbatch reads it, such as 4G or 512M"
        ))
        .into());
    }
    Ok(m.to_owned())
}

/// `--time`: minutes, `H:MM:SS`, `D-HH:MM:SS` and the other forms sbatch reads.
fn checked_time(t: &str) -> anyhow::Result<String> {
    let ok = !t.is_empty()
        && t.len() <= 20
        && t.bytes().all(|b| b.is_ascii_digit() || b == b':' || b == b'-')
        && t.as_bytes()[0].is_ascii_digit();
    if !ok {
        return Err(InputError(format!(
            "--time {t:?}: expected a time limit as sbatch reads it, such as 30, 2:00:00 or 1-00:00:00"
        ))
        .into());
    }
    Ok(t.to_owned())
}

/// `--partition`, `--account`: Slurm names (letters, digits, `_.-`, commas for lists).
fn checked_name(what: &str, v: &str) -> anyhow::Result<String> {
    let ok = !v.is_empty()
        && v.len() <= 200
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-,".contains(&b))
        && !v.starts_with('-');
    if !ok {
        return Err(
            InputError(format!("{what} {v:?}: expected a Slurm name (letters, digits, `_.-,`)")).into()
        );
    }
    Ok(v.to_owned())
}

/// `--sbatch-arg`: one option (`--qos=short`), on one line.
fn checked_extra(v: &str) -> anyhow::Result<String> {
    if !v.starts_with('-') || v.len() > 1000 || v.chars().any(char::is_control) {
        return Err(InputError(format!(
            "--sbatch-arg {v:?}: expected one sbatch option on one line, such as --qos=short"
        ))
        .into());
    }
    Ok(v.to_owned())
}

/// `s` quoted for a POSIX shell: in single quotes, each `'` written `'\''`.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.,:=+@%-".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A directory as part of an `#SBATCH --output` value, which is in double quotes (that
/// sbatch's parser of `#SBATCH` lines removes): `"` escaped, `%` doubled (Slurm's file
/// name patterns).
/// Refuses what Slurm cannot hold there: a backslash (slurmd drops it) and control
/// characters (a line break would end the line).
fn sbatch_path(p: &str) -> anyhow::Result<String> {
    if p.contains('\\') || p.chars().any(char::is_control) {
        return Err(InputError(format!(
            "{p:?}: Slurm cannot write its logs under a path with a backslash or a control character; choose another --shards-dir"
        ))
        .into());
    }
    Ok(p.replace('"', "\\\"").replace('%', "%%"))
}

/// Shards as Slurm's `--array` list, consecutive ones as ranges: `1-3,5,7-8` (the
/// compact list of [`super::shard::ranges`] without its spaces).
pub fn ranges(ks: &[u32]) -> String {
    super::shard::ranges(ks).replace(", ", ",")
}

/// Everything the two scripts are written from (paths absolute).
#[derive(Clone, Debug)]
pub struct Setup {
    /// The lvsim the tasks run.
    pub lvsim: String,
    /// The command split.
    pub kind: Kind,
    /// The scenario's name (the jobs' names).
    pub scenario: String,
    /// How to run a shard.
    pub invocation: Invocation,
    /// `--max-events`, `--max-memory` as given to this command.
    pub budget_args: Vec<String>,
    /// Where the shard files go.
    pub shards_dir: String,
    /// Where the merge job writes the report, absolute.
    pub report_dir: String,
    /// The same as given (`--out`, or the default), relative to where the command was
    /// typed: what the merge job is told, as a local run would be.
    pub report_out: String,
    /// Shards of the split.
    pub n: u32,
    /// Each array task's resources.
    pub res: Resources,
    /// The merge job's memory.
    pub merge_mem: String,
    /// `--partition`, checked.
    pub partition: Option<String>,
    /// `--account`, checked.
    pub account: Option<String>,
    /// `--sbatch-arg`s, checked.
    pub extra: Vec<String>,
}

impl Setup {
    /// The job name: `lvsim-NAME` (`/` and other characters Slurm might mind as `_`).
    pub fn job_name(&self) -> String {
        let name: String = self
            .scenario
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() || "_.-".contains(ch) { ch } else { '_' })
            .take(100)
            .collect();
        format!("lvsim-{name}")
    }

    /// The `#SBATCH` lines of a job.
    fn header(&self, name: &str, log: &str, cpus: u32, mem: &str, time: &str) -> anyhow::Result<String> {
        let mut lines = vec![
            format!("--job-name={name}"),
            format!("--output=\"{}/slurm/logs/{log}\"", sbatch_path(&self.shards_dir)?),
            format!("--cpus-per-task={cpus}"),
            format!("--mem={mem}"),
            format!("--time={time}"),
        ];
        lines.extend(self.partition.iter().map(|p| format!("--partition={p}")));
        lines.extend(self.account.iter().map(|a| format!("--account={a}")));
        lines.extend(self.extra.iter().cloned());
        Ok(lines.iter().map(|l| format!("#SBATCH {l}\n")).collect())
    }

    /// The arguments of a shard's command after `lvsim`, but for `--shard`.
    pub fn task_args(&self) -> Vec<String> {
        let inv = &self.invocation;
        let mut a = vec![self.kind.word().to_owned(), inv.file.clone()];
        for s in &inv.sets {
            a.extend(["--set".to_owned(), s.clone()]);
        }
        for d in &inv.allow_paths {
            a.extend(["--allow-path".to_owned(), d.clone()]);
        }
        a.extend(["--exchange".to_owned(), inv.exchange.clone()]);
        if let Some(p) = &inv.plan {
            for s in &p.slo {
                a.extend(["--slo".to_owned(), s.clone()]);
            }
            let opt = |a: &mut Vec<String>, name: &str, v: Option<String>| {
                a.extend(v.into_iter().flat_map(|v| [name.to_owned(), v]));
            };
            opt(&mut a, "--servers", p.servers.clone());
            opt(&mut a, "--min", p.min.map(|m| m.to_string()));
            opt(&mut a, "--max", p.max.map(|m| m.to_string()));
            opt(&mut a, "--schedulers", p.schedulers.as_ref().map(|s| s.join(",")));
            opt(&mut a, "--replications", p.replications.map(|r| r.to_string()));
        }
        a.extend(self.budget_args.iter().cloned());
        a
    }

    /// `array.sh`: the array of the shards `tasks`, each running its shard.
    pub fn array_script(&self, tasks: &[u32]) -> anyhow::Result<String> {
        let r = &self.res;
        let mut s = format!(
            "#!/bin/sh\n# lvsim {}: shards of `lvsim {} {}`, one an array task (docs/cluster.md).\n",
            super::shard::version(),
            self.kind.word(),
            self.invocation.file.replace(char::is_control, "?"),
        );
        s += &self.header(&self.job_name(), "%A_%a.out", r.cpus, &r.mem, &r.time)?;
        s += &format!("#SBATCH --array={}\n", ranges(tasks));
        // Where the command was typed: the scenario's name in the summaries is the typed one.
        s += &format!("set -eu\ncd {}\n", sh_quote(&self.invocation.cwd));
        let mut args: Vec<String> = self.task_args().iter().map(|a| sh_quote(a)).collect();
        args.push(format!("--shard \"$SLURM_ARRAY_TASK_ID\"/{}", self.n));
        args.extend(["--shards-dir".to_owned(), sh_quote(&self.shards_dir)]);
        args.push(format!("--jobs {} --no-progress -q", r.cpus));
        s += &format!("exec {} {}\n", sh_quote(&self.lvsim), args.join(" "));
        Ok(s)
    }

    /// `merge.sh`: merges the shards into the report (submitted after the array with
    /// `--dependency=afterany`, so that it runs, and reports, when a task failed too).
    pub fn merge_script(&self) -> anyhow::Result<String> {
        let mut s =
            format!("#!/bin/sh\n# lvsim {}: merges the shards into the report.\n", super::shard::version());
        s += &self.header(
            &format!("{}-merge", self.job_name()),
            "merge_%j.out",
            1,
            &self.merge_mem,
            &slurm_time(MIN_TIME_S),
        )?;
        // Where the command was typed, and the report directory as typed: the merged
        // report names both as a local run does.
        s += &format!("set -eu\ncd {}\n", sh_quote(&self.invocation.cwd));
        s += &format!(
            "exec {} merge {} --out {}\n",
            sh_quote(&self.lvsim),
            sh_quote(&self.shards_dir),
            sh_quote(&self.report_out)
        );
        Ok(s)
    }
}

/// The shards of a split found in its directory.
#[derive(Debug, Default)]
pub struct Progress {
    /// Shards whose file holds every unit's result.
    pub done: Vec<u32>,
    /// Shards whose file records failed units: `(K, failures)`.
    pub failed: Vec<(u32, Vec<super::shard::UnitFailure>)>,
    /// Files that could not be read (they run again).
    pub unreadable: Vec<String>,
}

impl Progress {
    /// The shards of `1..=n` still to run: not done.
    pub fn todo(&self, n: u32) -> Vec<u32> {
        (1..=n).filter(|k| self.done.binary_search(k).is_err()).collect()
    }
}

/// What the shard files in `dir` say of the split `id`; a shard of another split is
/// refused, naming what differs.
pub fn progress(dir: &Path, id: &Identity) -> anyhow::Result<Progress> {
    let mut p = Progress::default();
    if !dir.exists() {
        return Ok(p);
    }
    for f in super::shard::scan(dir)? {
        match f.shard {
            Ok(s) if s.identity != *id => {
                return Err(another_split(&f.path, &s.identity, id));
            }
            Ok(s) if s.failures.is_empty() => p.done.push(s.shard),
            Ok(s) => p.failed.push((s.shard, s.failures)),
            Err(e) => p.unreadable.push(format!("{e:#}")),
        }
    }
    p.done.sort_unstable();
    p.done.dedup();
    p.failed.sort_by_key(|f| f.0);
    Ok(p)
}

fn another_split(path: &Path, was: &Identity, now: &Identity) -> anyhow::Error {
    InputError(format!(
        "{}: holds another split than this command's ({}); choose another --shards-dir, or remove that directory to start again",
        path.display(),
        super::shard::differences(was, "there", now, "now").join("; ")
    ))
    .into()
}

/// Reads a small JSON state file (`jobs.json`, `identity.json`), `None` if missing.
fn read_state<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    use std::io::Read as _;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(path, e)),
        Ok(m) if !m.is_file() => return Err(refuse(path, "not a plain file (links are not followed)")),
        Ok(_) => {}
    }
    let f = std::fs::File::open(path).map_err(|e| refuse(path, e))?;
    let mut text = String::new();
    f.take(MAX_STATE_FILE + 1).read_to_string(&mut text).map_err(|e| refuse(path, e))?;
    if text.len() as u64 > MAX_STATE_FILE {
        return Err(refuse(path, format!("more than {MAX_STATE_FILE} bytes")));
    }
    let v =
        serde_json::from_str(&text).map_err(|e| refuse(path, format!("{}:{}: {e}", e.line(), e.column())))?;
    Ok(Some(v))
}

/// Writes `text` to `path` whole or not at all (a temporary file renamed over it).
fn write_whole(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let r = (|| -> std::io::Result<()> {
        std::fs::write(&tmp, text)?;
        if executable {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!("writing {}: {e}", path.display()));
    }
    Ok(())
}

/// An absolute path as UTF-8 (scripts hold it).
fn absolute(p: &Path) -> anyhow::Result<String> {
    let a = std::path::absolute(p).map_err(|e| refuse(p, e))?;
    a.to_str()
        .map(str::to_owned)
        .ok_or_else(|| refuse(p, "not UTF-8: a Slurm script cannot name it; choose another path"))
}

/// Writes the scripts of `work`'s split into `<shards dir>/slurm/` and, with `--submit`,
/// submits them (see [`SlurmOpts`]). A shards directory already used by this split keeps
/// its shards: only those without a complete file run again.
pub fn campaign(c: &super::Common, opts: &SlurmOpts, work: &Work) -> anyhow::Result<()> {
    let shards_dir = absolute(&work.shards_dir)?;
    let slurm_dir = Path::new(&shards_dir).join("slurm");
    let jobs_path = slurm_dir.join("jobs.json");
    let jobs: Option<Jobs> = read_state(&jobs_path)?;
    let earlier: Option<Identity> = read_state(&slurm_dir.join("identity.json"))?;
    let submitted = jobs.as_ref().is_some_and(|j| !j.submissions.is_empty());
    // Without --shards, a split already under way keeps its N.
    let same_but_n = |e: &Identity| Identity { shards: e.shards, ..work.identity.clone() } == *e;
    let asked = opts.shards.or(earlier.as_ref().filter(|e| submitted && same_but_n(e)).map(|e| e.shards));
    let n = shards_for(asked, work.identity.units)?;
    let identity = Identity { shards: n, ..work.identity.clone() };
    if let Some(e) = earlier.as_ref().filter(|e| submitted && **e != identity) {
        return Err(another_split(&slurm_dir.join("identity.json"), e, &identity));
    }
    let progress = progress(Path::new(&shards_dir), &identity)?;
    let setup = setup(c, opts, work, &shards_dir, n)?;
    let todo = progress.todo(n);
    // What the merge job would refuse at the end, refused now.
    super::dirs::OutDir::check(PathBuf::from(&setup.report_dir))?;
    if opts.submit {
        refuse_if_queued(jobs.as_ref())?;
    }

    std::fs::create_dir_all(slurm_dir.join("logs")).map_err(|e| refuse(&slurm_dir, e))?;
    let array_path = slurm_dir.join("array.sh");
    if todo.is_empty() {
        // No stale list of tasks to submit by hand.
        let _ = std::fs::remove_file(&array_path);
    } else {
        write_whole(&array_path, &setup.array_script(&todo)?, true)?;
    }
    let merge_path = slurm_dir.join("merge.sh");
    write_whole(&merge_path, &setup.merge_script()?, true)?;
    let id_text = serde_json::to_string_pretty(&identity)? + "\n";
    write_whole(&slurm_dir.join("identity.json"), &id_text, false)?;

    let mut say = Vec::new();
    say.extend(describe(&progress, &todo, n));
    let submission = if opts.submit {
        let mut jobs = jobs.unwrap_or_default();
        let s = submit(&array_path, &merge_path, &todo)?;
        jobs.shards = n;
        jobs.report_dir = setup.report_dir.clone();
        jobs.submissions.push(s.clone());
        write_whole(&jobs_path, &(serde_json::to_string_pretty(&jobs)? + "\n"), false)?;
        Some(s)
    } else {
        None
    };
    say.extend(commands(&setup, &todo, submission.as_ref()));
    if c.json {
        let v = serde_json::json!({
            "shards_dir": setup.shards_dir, "report_dir": setup.report_dir, "shards": n,
            "tasks": todo, "cpus_per_task": setup.res.cpus, "mem": setup.res.mem,
            "time": setup.res.time, "submission": submission,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if !c.quiet {
        println!("{}", say.join("\n"));
    }
    Ok(())
}

/// The scripts' [`Setup`] for `n` shards, options checked.
fn setup(
    c: &super::Common,
    opts: &SlurmOpts,
    work: &Work,
    shards_dir: &str,
    n: u32,
) -> anyhow::Result<Setup> {
    let units = work.identity.units;
    sbatch_path(shards_dir)?; // a directory Slurm cannot write logs into, refused before writing
    let res = resources(opts, work.per_run.events, work.per_run.memory, units, n)?;
    let merge_mem =
        format!("{}M", ((MERGE_MEM_BASE + units as f64 * MERGE_MEM_PER_UNIT) / MIB).ceil() as u64);
    let lvsim = match &opts.lvsim {
        Some(p) => absolute(p)?,
        None => absolute(&std::env::current_exe().map_err(|e| anyhow::anyhow!("lvsim's own path: {e}"))?)?,
    };
    let mut budget_args = Vec::new();
    if let Some(e) = c.max_events {
        budget_args.extend(["--max-events".to_owned(), format!("{e}")]);
    }
    if let Some(m) = c.max_memory {
        budget_args.extend(["--max-memory".to_owned(), format!("{}", m.ceil())]);
    }
    Ok(Setup {
        lvsim,
        kind: work.identity.kind,
        scenario: work.identity.scenario.clone(),
        invocation: work.invocation.clone(),
        budget_args,
        shards_dir: shards_dir.to_owned(),
        report_dir: absolute(&work.report_dir)?,
        report_out: work.report_dir.display().to_string(),
        n,
        res,
        merge_mem,
        partition: opts.partition.as_deref().map(|p| checked_name("--partition", p)).transpose()?,
        account: opts.account.as_deref().map(|a| checked_name("--account", a)).transpose()?,
        extra: opts.sbatch_args.iter().map(|a| checked_extra(a)).collect::<anyhow::Result<_>>()?,
    })
}

/// What is done already, in words (nothing for a fresh split).
fn describe(p: &Progress, todo: &[u32], n: u32) -> Vec<String> {
    let mut say = Vec::new();
    if p.done.is_empty() && p.failed.is_empty() && p.unreadable.is_empty() {
        return say;
    }
    say.push(format!("shards done: {} of {n}; to run again: {}", p.done.len(), none_or(&ranges(todo))));
    for (k, fails) in &p.failed {
        say.push(format!("  shard {k}/{n} failed {} run(s):", fails.len()));
        for f in fails.iter().take(10) {
            say.push(format!("    unit {} ({}): {}", f.unit, f.label, f.error));
        }
    }
    for u in p.unreadable.iter().take(10) {
        say.push(format!("  unreadable, runs again: {u}"));
    }
    say
}

fn none_or(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// The commands to go on with: submit (or what was submitted), status, the report.
fn commands(s: &Setup, todo: &[u32], sub: Option<&Submission>) -> Vec<String> {
    let dir = Path::new(&s.shards_dir).join("slurm");
    let q = |f: &str| sh_quote(&dir.join(f).display().to_string());
    let mut say = Vec::new();
    match (sub, todo.is_empty()) {
        (Some(sub), true) => say.push(format!("every shard is done: submitted merge job {}", sub.merge_job)),
        (Some(sub), false) => say.push(format!(
            "submitted array job {} (shards {} of {}: {} task(s) of {} CPU(s), {}, {}) and merge job {} after it",
            sub.array_job,
            ranges(todo),
            s.n,
            todo.len(),
            s.res.cpus,
            s.res.mem,
            s.res.time,
            sub.merge_job
        )),
        (None, true) => {
            say.push(format!("every shard is done: merge them with  sbatch {}", q("merge.sh")));
            say.push(format!("  or here:  lvsim merge {} --out {}", sh_quote(&s.shards_dir), sh_quote(&s.report_dir)));
        }
        (None, false) => {
            say.push(format!(
                "wrote {} (shards {} of {}: {} CPU(s), {}, {} a task) and merge.sh; submit with",
                q("array.sh"),
                ranges(todo),
                s.n,
                s.res.cpus,
                s.res.mem,
                s.res.time
            ));
            say.push(format!(
                "  sbatch --dependency=afterany:$(sbatch --parsable {} | cut -d';' -f1) {}",
                q("array.sh"),
                q("merge.sh")
            ));
            say.push("  (or run this command again with --submit)".to_owned());
        }
    }
    say.push(format!("progress:  lvsim status {}", sh_quote(&s.shards_dir)));
    say.push(format!("report:    {}/ (written by the merge job)", s.report_dir));
    say
}

/// Refuses to submit while a job of an earlier submission is still queued or running
/// (its tasks would write the same shard files).
fn refuse_if_queued(jobs: Option<&Jobs>) -> anyhow::Result<()> {
    let ours: Vec<u64> = jobs
        .iter()
        .flat_map(|j| &j.submissions)
        .flat_map(|s| [s.array_job, s.merge_job])
        .filter(|&id| id != 0)
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    let queued = tool("squeue", &["-h", "-o", "%F"])?;
    let live: Vec<u64> =
        queued.lines().filter_map(|l| l.trim().parse().ok()).filter(|id| ours.contains(id)).collect();
    if let Some(id) = live.first() {
        return Err(anyhow::anyhow!(
            "job {id} of an earlier submission is still queued or running: wait for it (squeue -j {id}) or cancel it (scancel {id}) before submitting again"
        ));
    }
    Ok(())
}

/// Submits the array (unless every shard is done) and the merge job after it.
fn submit(array: &Path, merge: &Path, todo: &[u32]) -> anyhow::Result<Submission> {
    let path = |p: &Path| p.display().to_string();
    let array_job =
        if todo.is_empty() { 0 } else { job_id(&tool("sbatch", &["--parsable", &path(array)])?)? };
    let dep = format!("--dependency=afterany:{array_job}");
    let mut args = vec!["--parsable"];
    if array_job != 0 {
        args.push(&dep);
    }
    let merge_path = path(merge);
    args.push(&merge_path);
    let merge_job = tool("sbatch", &args).and_then(|o| job_id(&o)).map_err(|e| {
        e.context(format!(
            "array job {array_job} was submitted, its merge job was not: submit it with  sbatch {dep} {}",
            sh_quote(&merge_path)
        ))
    })?;
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(Submission { array_job, merge_job, tasks: todo.to_vec(), at })
}

/// The job id `sbatch --parsable` printed (`ID` or `ID;CLUSTER`).
pub fn job_id(out: &str) -> anyhow::Result<u64> {
    let first = out.trim().split(';').next().unwrap_or("");
    first.trim().parse().map_err(|_| anyhow::anyhow!("sbatch --parsable printed {out:?}, not a job id"))
}

/// Runs a Slurm client tool; its error text is the error.
fn tool(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(cmd).args(args).stdin(std::process::Stdio::null()).output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(anyhow::anyhow!(
            "{cmd} not found on PATH: install Debian's slurm-client (apt-get install slurm-client), or run on a Slurm login node"
        )),
        Err(e) => Err(anyhow::anyhow!("running {cmd}: {e}")),
        Ok(o) if !o.status.success() => Err(anyhow::anyhow!(
            "`{cmd} {}` failed ({}): {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::shard::{FORMAT, ShardFile, UnitFailure, UnitResult};

    #[test]
    fn shards_default_to_one_per_unit_and_never_exceed_the_units() {
        assert_eq!(shards_for(None, 10).unwrap(), 10);
        assert_eq!(shards_for(None, 5000).unwrap(), DEFAULT_MAX_TASKS);
        assert_eq!(shards_for(Some(4), 10).unwrap(), 4);
        assert_eq!(shards_for(Some(50), 10).unwrap(), 10);
        assert_eq!(shards_for(None, 0).unwrap(), 1);
        assert!(shards_for(Some(0), 10).is_err());
        assert!(shards_for(Some(super::super::shard::MAX_SHARDS + 1), usize::MAX).is_err());
    }

    #[test]
    fn resources_follow_the_estimate_with_a_floor_and_options_win() {
        let o = SlurmOpts::default();
        // 100 MiB a run, 1 CPU: 1 run at once x 1.5 + 256 MiB.
        let r = resources(&o, 1e6, 100.0 * MIB, 10, 10).unwrap();
        assert_eq!(r, Resources { cpus: 1, mem: "406M".into(), time: "0-00:10:00".into() });
        // 4 CPUs, 8 units a task: 4 at once; 8 x 1e9 events / (4 x 1e6/s) x 2 = 4000 s.
        let o4 = SlurmOpts { cpus_per_task: Some(4), ..SlurmOpts::default() };
        let r = resources(&o4, 1e9, 100.0 * MIB, 16, 2).unwrap();
        assert_eq!(r, Resources { cpus: 4, mem: "856M".into(), time: "0-01:06:40".into() });
        // Fewer units a task than CPUs: only those run at once.
        let r = resources(&o4, 1e9, 100.0 * MIB, 2, 2).unwrap();
        assert_eq!((r.mem.as_str(), r.time.as_str()), ("406M", "0-00:33:20"));
        let given = SlurmOpts { mem: Some("4G".into()), time: Some("1-00:00:00".into()), ..o };
        let r = resources(&given, 1e12, 1e12, 10, 1).unwrap();
        assert_eq!((r.mem.as_str(), r.time.as_str()), ("4G", "1-00:00:00"));
        for (mem, time) in [
            ("4G\n#SBATCH --x", "30"),
            ("4X", "30"),
            ("G", "30"),
            ("4G", "1:00\n"),
            ("4G", "abc"),
            ("4G", ""),
        ] {
            let bad = SlurmOpts { mem: Some(mem.into()), time: Some(time.into()), ..SlurmOpts::default() };
            assert!(resources(&bad, 1.0, 1.0, 1, 1).is_err(), "{mem:?} {time:?}");
        }
        let zero = SlurmOpts { cpus_per_task: Some(0), ..SlurmOpts::default() };
        assert!(resources(&zero, 1.0, 1.0, 1, 1).is_err());
    }

    #[test]
    fn times_ranges_names_and_job_ids() {
        assert_eq!(slurm_time(600), "0-00:10:00");
        assert_eq!(slurm_time(90_061), "1-01:01:01");
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
        assert_eq!(job_id("123\n").unwrap(), 123);
        assert_eq!(job_id("77;cluster\n").unwrap(), 77);
        assert!(job_id("Submitted batch job 5").is_err());
        assert!(checked_name("--partition", "lvsim,debug").is_ok());
        for bad in ["a b", "x\ny", "-x", "", "a;b"] {
            assert!(checked_name("--partition", bad).is_err(), "{bad:?}");
        }
        assert!(checked_extra("--qos=short").is_ok());
        assert!(checked_extra("--qos=a\n#SBATCH --x").is_err());
        assert!(checked_extra("qos").is_err());
        let s = Setup { scenario: "ha/vrrp failover".into(), ..setup_at("/x", "/bin/true") };
        assert_eq!(s.job_name(), "lvsim-ha_vrrp_failover");
    }

    #[test]
    fn slurm_paths_are_quoted_or_refused() {
        assert_eq!(sbatch_path("/a b/it's \"x\" 100%").unwrap(), r#"/a b/it's \"x\" 100%%"#);
        assert!(sbatch_path("/a\\b").is_err());
        assert!(sbatch_path("/a\nb").is_err());
    }

    /// `s`, quoted, read back by a real shell.
    fn through_sh(quoted: &str) -> String {
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("printf '%s' {quoted}")])
            .output()
            .expect("/bin/sh runs");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn shell_quoting_survives_hostile_text() {
        for s in [
            "plain",
            "a b",
            "it's",
            "$HOME",
            "`id`",
            "a\"b",
            "back\\slash",
            "new\nline",
            "*",
            "",
            "'",
            "--x=$(id)",
        ] {
            assert_eq!(through_sh(&sh_quote(s)), s, "{s:?}");
        }
    }

    fn setup_at(dir: &str, lvsim: &str) -> Setup {
        Setup {
            lvsim: lvsim.into(),
            kind: Kind::Sweep,
            scenario: "nat-vs-dr".into(),
            invocation: Invocation {
                file: format!("{dir}/my scen'ario $x\n#SBATCH --x.ron"),
                cwd: format!("{dir}/typed `here`"),
                sets: vec!["clients[0].arrival.rate=10".into(), "name=\"a b\"".into()],
                allow_paths: vec![format!("{dir}/traces `x`")],
                exchange: "fast".into(),
                plan: None,
            },
            budget_args: vec!["--max-events".into(), "1000000".into()],
            shards_dir: format!("{dir}/shards"),
            report_dir: format!("{dir}/typed `here`/report"),
            report_out: "report".into(),
            n: 7,
            res: Resources { cpus: 2, mem: "300M".into(), time: "0-00:10:00".into() },
            merge_mem: "600M".into(),
            partition: Some("lvsim".into()),
            account: None,
            extra: vec!["--qos=short".into()],
        }
    }

    /// A temporary directory with a space, a quote, a `$` and a `%` in its name, and in
    /// it a fake lvsim that prints its arguments, each ended by a NUL.
    fn hostile_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lvsim slurm {tag} it's $HOME 5% {}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("shards")).unwrap();
        // The directory the command was typed in: array.sh runs there.
        std::fs::create_dir_all(dir.join("typed `here`")).unwrap();
        let fake = dir.join("fake lvsim");
        std::fs::write(&fake, "#!/bin/sh\nfor a; do printf '%s\\0' \"$a\"; done\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// Runs a script with `sh` and returns the fake lvsim's arguments.
    fn argv_of(script: &str, task: &str) -> Vec<String> {
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .expect("/bin/sh runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_terminator('\0').map(str::to_owned).collect()
    }

    #[test]
    fn the_array_script_runs_the_shard_with_every_argument_intact() {
        let dir = hostile_dir("array");
        let d = dir.to_str().unwrap();
        let s = setup_at(d, &format!("{d}/fake lvsim"));
        let text = s.array_script(&[1, 2, 3, 5]).unwrap();
        assert!(text.contains("\n#SBATCH --array=1-3,5\n"), "{text}");
        // A line break in a name does not make a directive: sbatch reads them until the
        // first command, and the comment line has it replaced.
        let head = &text[..text.find("\nset -eu\n").unwrap()];
        assert!(!head.contains("\n#SBATCH --x"), "{text}");
        assert!(text.contains("\n#SBATCH --job-name=lvsim-nat-vs-dr\n"), "{text}");
        let out = format!("\n#SBATCH --output=\"{}/shards/slurm/logs/%A_%a.out\"\n", d.replace('%', "%%"));
        assert!(text.contains(&out), "{text}");
        for line in
            ["--cpus-per-task=2", "--mem=300M", "--time=0-00:10:00", "--partition=lvsim", "--qos=short"]
        {
            assert!(text.contains(&format!("\n#SBATCH {line}\n")), "{line}: {text}");
        }
        let mut want = s.task_args();
        want.extend(
            ["--shard", "5/7", "--shards-dir", &s.shards_dir, "--jobs", "2", "--no-progress", "-q"]
                .map(String::from),
        );
        assert_eq!(argv_of(&text, "5"), want);
        assert_eq!(&want[..3], ["sweep", &s.invocation.file, "--set"]);
        let merge = s.merge_script().unwrap();
        assert!(merge.contains("\n#SBATCH --job-name=lvsim-nat-vs-dr-merge\n"), "{merge}");
        assert!(merge.contains("\n#SBATCH --cpus-per-task=1\n#SBATCH --mem=600M\n"), "{merge}");
        assert_eq!(argv_of(&merge, ""), ["merge", &s.shards_dir, "--out", &s.report_out]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_plans_options_reach_its_tasks() {
        let mut s = setup_at("/d", "/l");
        s.kind = Kind::Plan;
        s.budget_args.clear();
        s.invocation.plan = Some(crate::commands::plan::PlanOpts {
            slo: vec!["latency_ms.p99<=200".into()],
            servers: Some("web".into()),
            min: Some(2),
            max: Some(9),
            schedulers: Some(vec!["rr".into(), "wlc".into()]),
            replications: Some(3),
        });
        let a = s.task_args();
        let tail: Vec<&str> = a[a.len() - 12..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "--slo",
                "latency_ms.p99<=200",
                "--servers",
                "web",
                "--min",
                "2",
                "--max",
                "9",
                "--schedulers",
                "rr,wlc",
                "--replications",
                "3"
            ]
        );
        assert_eq!(a[0], "plan");
    }

    fn identity(n: u32) -> Identity {
        Identity {
            format: FORMAT,
            lvsim: crate::commands::shard::version(),
            kind: Kind::Sweep,
            scenario: "nat-vs-dr".into(),
            fingerprint: "ab".repeat(32),
            units: 10,
            shards: n,
        }
    }

    fn shard(id: &Identity, k: u32, failed: bool) -> ShardFile {
        let spec = crate::commands::shard::ShardSpec { k, n: id.shards };
        let units: Vec<usize> = spec.units(id.units).collect();
        let label = |u: usize| format!("rate={u}");
        let (results, failures) = if failed {
            let f = |&u: &usize| UnitFailure { unit: u, label: label(u), error: "trace.csv: missing".into() };
            (Vec::new(), units.iter().map(f).collect())
        } else {
            let r = |&u: &usize| UnitResult {
                unit: u,
                label: label(u),
                summary: reports::Summary::default(),
                input: None,
            };
            (units.iter().map(r).collect(), Vec::new())
        };
        ShardFile {
            identity: id.clone(),
            shard: k,
            invocation: Invocation::default(),
            host: "vm".into(),
            wall_s: 0.5,
            results,
            failures,
            first_text: None,
        }
    }

    #[test]
    fn progress_sorts_done_failed_and_refuses_another_split() {
        let dir = std::env::temp_dir().join(format!("lvsim-slurm-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = identity(4);
        assert_eq!(progress(&dir, &id).unwrap().todo(4), [1, 2, 3, 4]);
        for (k, failed) in [(1, false), (3, true), (4, false)] {
            crate::commands::shard::write(&dir, &shard(&id, k, failed)).unwrap();
        }
        std::fs::write(dir.join("shard-2-of-4.json"), "{ truncated").unwrap();
        let p = progress(&dir, &id).unwrap();
        assert_eq!(p.done, [1, 4]);
        assert_eq!(p.failed.iter().map(|f| f.0).collect::<Vec<_>>(), [3]);
        assert_eq!(p.failed[0].1[0].label, "rate=2");
        assert_eq!(p.unreadable.len(), 1);
        assert_eq!(p.todo(4), [2, 3]);
        let said = describe(&p, &p.todo(4), 4).join("\n");
        assert!(
            said.contains("to run again: 2-3") && said.contains("unit 2 (rate=2): trace.csv: missing"),
            "{said}"
        );

        let other = Identity { lvsim: "0.0.1".into(), ..id.clone() };
        let e = progress(&dir, &other).unwrap_err().to_string();
        assert!(
            e.contains("shard-1-of-4.json") && e.contains("lvsim version") && e.contains("--shards-dir"),
            "{e}"
        );
        let e = progress(&dir, &Identity { shards: 5, ..id.clone() }).unwrap_err().to_string();
        assert!(e.contains("shards (N) 4 there, 5 now"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_files_are_plain_bounded_json() {
        let dir = std::env::temp_dir().join(format!("lvsim-slurm-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read_state::<Jobs>(&dir.join("jobs.json")).unwrap().is_none());
        std::fs::write(dir.join("bad.json"), "{\"shards\": 4,").unwrap();
        let e = read_state::<Jobs>(&dir.join("bad.json")).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("1:"), "{e}");
        std::os::unix::fs::symlink("/dev/zero", dir.join("link.json")).unwrap();
        let e = read_state::<Jobs>(&dir.join("link.json")).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");
        let jobs = Jobs { shards: 2, report_dir: "/r".into(), submissions: vec![Submission::default()] };
        write_whole(&dir.join("jobs.json"), &serde_json::to_string(&jobs).unwrap(), false).unwrap();
        assert_eq!(read_state::<Jobs>(&dir.join("jobs.json")).unwrap(), Some(jobs));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
