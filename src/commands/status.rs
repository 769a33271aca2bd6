//! `lvsim status DIR`: how far a split is, from its shard files and Slurm.
//!
//! Every shard `K` of `N` is in one state:
//!
//! - **running** or **pending**: the latest submission that holds `K` (`slurm/jobs.json`)
//!   has its array task in `squeue` (a resubmitted shard counts as running even while the
//!   file of its failed attempt is still there);
//! - **done**: `shard-K-of-N.json` is there, of the split's identity, with no failure;
//! - **failed**: the file lists failed units (each failed point and its error is shown),
//!   or its Slurm task ended without leaving a file (FAILED, TIMEOUT, CANCELLED,
//!   OUT_OF_MEMORY...: from `sacct` when accounting works, else from `scontrol show job`,
//!   which keeps a finished job for `MinJobAge`, 5 minutes by default);
//! - **missing**: none of these (never submitted, or Slurm has forgotten the task).
//!
//! Files that cannot be read, or hold another split (another scenario, lvsim version or
//! `N`), are listed apart and their shards count as missing. The text of `squeue`,
//! `scontrol` and `sacct` is parsed by pure functions ([`parse_squeue`],
//! [`parse_scontrol`], [`parse_sacct`]); [`assess`] decides the states from what was
//! read, without I/O.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::InputError;
use super::shard::differences;
use super::shard::{self, Found, Identity, ShardFile, ShardSpec};
use super::slurm::Jobs;

/// How long one `squeue`, `sacct` or `scontrol` may take.
const SLURM_TIMEOUT: Duration = Duration::from_secs(30);

/// The most output read from one Slurm command [bytes].
const MAX_SLURM_OUTPUT: u64 = 64 << 20;

/// The most finished jobs asked about one by one with `scontrol` (the latest ones).
const MAX_SCONTROL_CALLS: usize = 64;

/// The most submissions (the latest) whose jobs are asked about.
const MAX_QUERIED: usize = 500;

/// The most failed units (and files not counted) the text lists (`--json` lists them all).
const MAX_LISTED: usize = 20;

/// Where a shard is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its file is there, complete.
    Done,
    /// Units failed, or its task ended without a file.
    Failed,
    /// Its task runs.
    Running,
    /// Its task waits in the queue.
    Pending,
    /// Nothing: never run, or forgotten.
    Missing,
}

impl State {
    const ALL: [State; 5] = [State::Done, State::Failed, State::Running, State::Pending, State::Missing];

    fn word(self) -> &'static str {
        match self {
            State::Done => "done",
            State::Failed => "failed",
            State::Running => "running",
            State::Pending => "pending",
            State::Missing => "missing",
        }
    }
}

/// One Slurm job, or some tasks of an array job, as `squeue`, `sacct` or `scontrol` say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The job's id, or the array's (`%F`, `ArrayJobId`).
    pub job: u64,
    /// The array tasks the record is about; `None` for a job that is not an array.
    pub tasks: Option<Vec<u32>>,
    /// Slurm's state (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, ...).
    pub state: String,
    /// Why (`JobHeldUser`, `Dependency`) or how it ended (`exit 3:0`), if said.
    pub reason: Option<String>,
}

/// A shard's state, and what decided it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardState {
    /// `K`.
    pub k: u32,
    /// The state.
    pub state: State,
    /// Its latest Slurm task (`ARRAY_K`), if it was submitted.
    pub task: Option<String>,
    /// Why, in words (a Slurm state and reason, the number of failed units).
    pub detail: Option<String>,
    /// Its task's log (`slurm/logs/ARRAY_K.out`), when the shard failed or runs and the
    /// log is there.
    pub log: Option<String>,
}

/// A unit that failed, from a shard file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedUnit {
    /// The shard's `K`.
    pub shard: u32,
    /// The unit's number.
    pub unit: usize,
    /// The point, in words.
    pub label: String,
    /// Its error.
    pub error: String,
}

/// A file that is not one of the split's shards.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Refused {
    /// The file.
    pub path: String,
    /// Why.
    pub why: String,
}

/// The merge job of the latest submission.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeJob {
    /// Its id.
    pub job: u64,
    /// Its Slurm state, `None` when Slurm does not know it (any more).
    pub state: Option<String>,
    /// Slurm's reason or exit code.
    pub detail: Option<String>,
    /// Its log (`slurm/logs/merge_ID.out`), when it is there.
    pub log: Option<String>,
}

/// What `lvsim status` reports (`--json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// The shards directory.
    pub shards_dir: String,
    /// Where the merged report goes, if known.
    pub report_dir: Option<String>,
    /// Whether the report directory holds a finished report.
    pub report_written: bool,
    /// The split (from its shard files), if any file was read.
    pub identity: Option<Identity>,
    /// `N`.
    pub shards: u32,
    /// Shards done.
    pub done: u32,
    /// Shards failed.
    pub failed: u32,
    /// Shards running.
    pub running: u32,
    /// Shards pending.
    pub pending: u32,
    /// Shards missing.
    pub missing: u32,
    /// Runs (units) whose summary is in a counted shard file.
    pub units_done: usize,
    /// Every shard, by `K`.
    pub per_shard: Vec<ShardState>,
    /// Every failed unit of the shard files.
    pub failures: Vec<FailedUnit>,
    /// Files that are not the split's shards.
    pub refused: Vec<Refused>,
    /// The latest merge job.
    pub merge: Option<MergeJob>,
    /// Why Slurm's states are unknown or partial, if they are.
    pub slurm_note: Option<String>,
}

/// Prints how far the split in `dir` is.
pub fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let dir = shards_dir(dir)?;
    let found = shard::scan(&dir)?;
    let jobs: Option<Jobs> =
        read_state(&dir.join("slurm/jobs.json"), "a jobs.json of lvsim --slurm", |j: &Jobs| j.shards)?;
    let identity: Option<Identity> =
        read_state(&dir.join("slurm/identity.json"), "an identity.json of lvsim --slurm", |i: &Identity| {
            i.shards
        })?;
    let (records, slurm_note) = match &jobs {
        Some(j) if !j.submissions.is_empty() => query_slurm(j),
        _ => (Vec::new(), None),
    };
    let mut st = assess(&dir, &found, identity.as_ref(), jobs.as_ref(), &records).ok_or_else(|| {
        InputError(format!("{}: no shard-K-of-N.json and no slurm/jobs.json here", dir.display()))
    })?;
    if slurm_note.is_some() {
        // Slurm did not answer: a task without a record is unknown, not forgotten.
        for p in st.per_shard.iter_mut().filter(|p| p.state == State::Missing && p.task.is_some()) {
            p.detail = Some("its task's state is unknown (see the note)".to_owned());
        }
    }
    st.slurm_note = slurm_note;
    add_logs(&mut st, &dir.join("slurm/logs"));
    st.report_dir = report_dir(&dir, jobs.as_ref()).map(|p| p.display().to_string());
    st.report_written = st.report_dir.as_deref().is_some_and(|d| {
        let d = Path::new(d);
        super::dirs::kind_of(d).is_some() && d.join("summary.txt").is_file()
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print!("{}", text(&st));
    }
    Ok(())
}

/// The logs of failed or running tasks and of the merge job, where they are.
fn add_logs(st: &mut Status, logs: &Path) {
    let there = |name: String| Some(logs.join(name)).filter(|p| p.is_file()).map(|p| p.display().to_string());
    for p in st.per_shard.iter_mut().filter(|p| matches!(p.state, State::Failed | State::Running)) {
        p.log = p.task.as_ref().and_then(|t| there(format!("{t}.out")));
    }
    if let Some(m) = &mut st.merge {
        m.log = there(format!("merge_{}.out", m.job));
    }
}

/// A state file of `--slurm` (bounded; `None` when missing), whose `N` must be in range.
fn read_state<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    shards: impl Fn(&T) -> u32,
) -> anyhow::Result<Option<T>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let v: T = super::dirs::read_json(path, what)?;
    let n = shards(&v);
    if n == 0 || n > shard::MAX_SHARDS {
        return Err(
            InputError(format!("{}: {n} shards, not in 1..={}", path.display(), shard::MAX_SHARDS)).into()
        );
    }
    Ok(Some(v))
}

/// The shards directory `dir` names: `dir` itself when it holds shard files or
/// `slurm/`, else the report directory's `dir.shards` when that exists (`dir` itself
/// need not exist).
fn shards_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir: PathBuf = dir.components().collect();
    let holds = |d: &Path| d.join("slurm").is_dir() || shard::scan(d).is_ok_and(|f| !f.is_empty());
    let beside = shard::default_dir(&dir);
    // The report directory is not there until the merge writes it.
    if !holds(&dir) && beside.is_dir() {
        return Ok(beside);
    }
    if !dir.is_dir() {
        return Err(InputError(format!("{}: no such directory", dir.display())).into());
    }
    Ok(dir)
}

/// The report directory: `jobs.json`'s, else the shards directory without `.shards`.
fn report_dir(dir: &Path, jobs: Option<&Jobs>) -> Option<PathBuf> {
    if let Some(j) = jobs.filter(|j| !j.report_dir.is_empty()) {
        return Some(PathBuf::from(&j.report_dir));
    }
    let s = dir.to_str()?;
    s.strip_suffix(".shards").filter(|r| !r.is_empty()).map(PathBuf::from)
}

/// Decides every shard's state from the files found in `dir`, the split's identity
/// (`slurm/identity.json`, written by `--slurm`), `jobs.json` and Slurm's records; `None`
/// when there is nothing to tell (no shard file, no identity, no jobs.json).
pub fn assess(
    dir: &Path,
    found: &[Found],
    identity: Option<&Identity>,
    jobs: Option<&Jobs>,
    records: &[JobRecord],
) -> Option<Status> {
    let (identity, files, refused) = sort_files(found, identity, jobs.map(|j| j.shards));
    let n = jobs.map(|j| j.shards).or(identity.as_ref().map(|i| i.shards))?;
    if n == 0 || n > shard::MAX_SHARDS {
        return None;
    }
    let live = Tasks::new(records);
    let latest = jobs.map(latest_tasks).unwrap_or_default();
    let mut per_shard = Vec::with_capacity(n as usize);
    let mut failures = Vec::new();
    for k in 1..=n {
        let file = files.get(&k);
        if let Some(f) = file {
            failures.extend(f.failures.iter().map(|u| FailedUnit {
                shard: k,
                unit: u.unit,
                label: u.label.clone(),
                error: u.error.clone(),
            }));
        }
        let task = latest.get(&k).map(|&job| (job, k));
        per_shard.push(shard_state(k, file.copied(), task, &live));
    }
    let count = |s: State| per_shard.iter().filter(|p| p.state == s).count() as u32;
    let merge = jobs.and_then(|j| j.submissions.last()).filter(|s| s.merge_job != 0).map(|s| {
        let r = live.job(s.merge_job);
        MergeJob {
            job: s.merge_job,
            state: r.map(|r| r.state.clone()),
            detail: r.and_then(|r| r.reason.clone()),
            log: None,
        }
    });
    Some(Status {
        shards_dir: dir.display().to_string(),
        report_dir: None,
        report_written: false,
        identity,
        shards: n,
        done: count(State::Done),
        failed: count(State::Failed),
        running: count(State::Running),
        pending: count(State::Pending),
        missing: count(State::Missing),
        units_done: files.values().map(|f| f.results.len()).sum(),
        per_shard,
        failures,
        refused,
        merge,
        slurm_note: None,
    })
}

/// The split's identity (`known`, else the one most files share, among those of `n`
/// shards when `n` is known), its files by `K`, and the files refused.
fn sort_files<'a>(
    found: &'a [Found],
    known: Option<&Identity>,
    n: Option<u32>,
) -> (Option<Identity>, HashMap<u32, &'a ShardFile>, Vec<Refused>) {
    let mut refused = Vec::new();
    let mut readable = Vec::new();
    for f in found {
        match &f.shard {
            Err(e) => refused.push(Refused { path: f.path.display().to_string(), why: format!("{e:#}") }),
            Ok(s) if s.identity.shards == 0 || s.identity.shards > shard::MAX_SHARDS || s.shard == 0 => {
                let why = format!("shard {} of {}: out of range", s.shard, s.identity.shards);
                refused.push(Refused { path: f.path.display().to_string(), why });
            }
            Ok(s) => {
                let named = ShardSpec { k: s.shard, n: s.identity.shards }.file_name();
                if f.path.file_name().and_then(|n| n.to_str()) == Some(named.as_str()) {
                    readable.push((f, s));
                } else {
                    let why = format!("holds shard {}/{} (named {named} inside)", s.shard, s.identity.shards);
                    refused.push(Refused { path: f.path.display().to_string(), why });
                }
            }
        }
    }
    let mut tally: Vec<(&Identity, usize)> = Vec::new();
    for (_, s) in readable.iter().filter(|(_, s)| n.is_none_or(|n| s.identity.shards == n)) {
        match tally.iter_mut().find(|(i, _)| **i == s.identity) {
            Some(t) => t.1 += 1,
            None => tally.push((&s.identity, 1)),
        }
    }
    // The most shared; on a tie, the first file's (files are sorted by name).
    let best = tally.iter().fold(None::<(&Identity, usize)>, |b, &(i, c)| match b {
        Some((_, bc)) if bc >= c => b,
        _ => Some((i, c)),
    });
    let identity = known.or(best.map(|(i, _)| i)).cloned();
    let mut files = HashMap::new();
    for (f, s) in readable {
        match &identity {
            Some(id) if *id == s.identity => {
                files.insert(s.shard, s);
            }
            Some(id) => refused.push(Refused {
                path: f.path.display().to_string(),
                why: format!(
                    "another split: {}",
                    differences(&s.identity, "here", id, "in the split").join("; ")
                ),
            }),
            None => {}
        }
    }
    (identity, files, refused)
}

/// Each shard's latest array job (the last submission that ran it).
fn latest_tasks(jobs: &Jobs) -> HashMap<u32, u64> {
    let mut latest = HashMap::new();
    for s in &jobs.submissions {
        for &k in &s.tasks {
            latest.insert(k, s.array_job);
        }
    }
    latest
}

/// Slurm states of a job still in the queue (or about to leave it).
fn is_live(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "STOPPED"
            | "RESV_DEL_HOLD"
    )
}

/// One shard's state from its file and its latest task.
fn shard_state(k: u32, file: Option<&ShardFile>, task: Option<(u64, u32)>, live: &Tasks<'_>) -> ShardState {
    let record = task.and_then(|(job, k)| live.task(job, k));
    let task_name = task.map(|(job, k)| format!("{job}_{k}"));
    let said = |r: &JobRecord| match &r.reason {
        Some(why) => format!("{} ({why})", r.state),
        None => r.state.clone(),
    };
    let (state, detail) = match (record, file) {
        (Some(r), _) if is_live(&r.state) => {
            let s = if matches!(r.state.as_str(), "PENDING" | "REQUEUE_HOLD" | "RESV_DEL_HOLD") {
                State::Pending
            } else {
                State::Running
            };
            (s, Some(said(r)))
        }
        (_, Some(f)) if f.failures.is_empty() => (State::Done, None),
        (_, Some(f)) => {
            let ran = f.results.len() + f.failures.len();
            (State::Failed, Some(format!("{} of {ran} units failed", f.failures.len())))
        }
        (Some(r), None) if r.state == "COMPLETED" => {
            (State::Failed, Some("its task completed but left no shard file".to_owned()))
        }
        (Some(r), None) => (State::Failed, Some(format!("its task ended {} without a shard file", said(r)))),
        (None, None) if task.is_some() => (State::Missing, Some("Slurm no longer knows its task".to_owned())),
        (None, None) => (State::Missing, None),
    };
    ShardState { k, state, task: task_name, detail, log: None }
}

/// Slurm's records by job and task; the first record of a task wins (`squeue`'s, read
/// before the finished states).
struct Tasks<'a> {
    tasks: HashMap<(u64, u32), &'a JobRecord>,
    jobs: HashMap<u64, &'a JobRecord>,
}

impl<'a> Tasks<'a> {
    fn new(records: &'a [JobRecord]) -> Self {
        let mut t = Tasks { tasks: HashMap::new(), jobs: HashMap::new() };
        for r in records {
            match &r.tasks {
                Some(ks) => {
                    for &k in ks {
                        t.tasks.entry((r.job, k)).or_insert(r);
                    }
                }
                None => {
                    t.jobs.entry(r.job).or_insert(r);
                }
            }
        }
        t
    }

    fn task(&self, job: u64, k: u32) -> Option<&'a JobRecord> {
        self.tasks.get(&(job, k)).copied()
    }

    fn job(&self, job: u64) -> Option<&'a JobRecord> {
        self.jobs.get(&job).copied()
    }
}

/// The text `lvsim status` prints.
pub fn text(st: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(id) = &st.identity {
        let _ = writeln!(
            out,
            "{} of {}: {} units in {} shards",
            id.kind.word(),
            id.scenario,
            id.units,
            id.shards
        );
    }
    let _ = writeln!(out, "shards: {}", st.shards_dir);
    let _ = writeln!(
        out,
        "{} done, {} failed, {} running, {} pending, {} missing of {}",
        st.done, st.failed, st.running, st.pending, st.missing, st.shards
    );
    if let Some(id) = &st.identity {
        let _ = writeln!(out, "runs: {} of {} done, {} failed", st.units_done, id.units, st.failures.len());
    }
    for s in State::ALL.into_iter().filter(|&s| s != State::Done) {
        let ks: Vec<u32> = st.per_shard.iter().filter(|p| p.state == s).map(|p| p.k).collect();
        if !ks.is_empty() {
            let _ = writeln!(out, "  {}: {}", s.word(), super::slurm::ranges(&ks));
        }
    }
    for p in st.per_shard.iter().filter(|p| p.state == State::Failed && p.detail.is_some()).take(MAX_LISTED) {
        let task = p.task.as_deref().map(|t| format!(" (task {t})")).unwrap_or_default();
        let log = p.log.as_deref().map(|l| format!("; log {l}")).unwrap_or_default();
        let _ = writeln!(out, "  shard {}{task}: {}{log}", p.k, p.detail.as_deref().unwrap_or(""));
    }
    for f in st.failures.iter().take(MAX_LISTED) {
        let _ = writeln!(out, "  failed: shard {}, unit {} ({}): {}", f.shard, f.unit, f.label, f.error);
    }
    if st.failures.len() > MAX_LISTED {
        let _ = writeln!(
            out,
            "  ... and {} more failed units (--json lists them all)",
            st.failures.len() - MAX_LISTED
        );
    }
    for r in st.refused.iter().take(MAX_LISTED) {
        let _ = writeln!(out, "  not counted: {}: {}", r.path, r.why);
    }
    if st.refused.len() > MAX_LISTED {
        let _ = writeln!(out, "  ... and {} more files not counted", st.refused.len() - MAX_LISTED);
    }
    if let Some(m) = &st.merge {
        let state = m.state.as_deref().unwrap_or("unknown to Slurm");
        let detail = m.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        let log = m.log.as_deref().map(|l| format!("; log {l}")).unwrap_or_default();
        let _ = writeln!(out, "merge job {}: {state}{detail}{log}", m.job);
    }
    if let Some(note) = &st.slurm_note {
        let _ = writeln!(out, "note: {note}");
    }
    match (&st.report_dir, st.report_written) {
        (Some(d), true) => _ = writeln!(out, "report: {d} (written)"),
        (Some(d), false) => _ = writeln!(out, "report: {d} (not written yet)"),
        (None, _) => {}
    }
    out
}

/// Array task ids as Slurm writes them: `5`, `1-3,5`, `[1-3,5]`, `1-9:2`, `1-8%2`; at most
/// [`shard::MAX_SHARDS`] of them, ids above it ignored. `None` for anything else (`N/A`).
pub fn parse_task_ids(text: &str) -> Option<Vec<u32>> {
    let s = text.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next()?;
    let mut ids = Vec::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, st)) => (r, st.parse::<u32>().ok().filter(|&st| st > 0)?),
            None => (part, 1),
        };
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = range.parse::<u32>().ok()?;
                (a, a)
            }
        };
        let b = b.min(shard::MAX_SHARDS);
        ids.extend((a..=b).step_by(step as usize));
        if ids.len() > shard::MAX_SHARDS as usize {
            return None;
        }
    }
    Some(ids)
}

/// The first word of a state, in capitals (`CANCELLED by 0` is `CANCELLED`).
fn state_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").trim_end_matches('+').to_ascii_uppercase()
}

/// `squeue -h -r -o '%F|%K|%T|%r'` (array job id, task id or `N/A`, state, reason).
/// Lines that do not parse are skipped.
pub fn parse_squeue(text: &str) -> Vec<JobRecord> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split('|');
            let job = f.next()?.trim().parse().ok()?;
            let tasks = parse_task_ids(f.next()?);
            let state = state_word(f.next()?);
            let reason = f.next().map(str::trim).filter(|r| !r.is_empty() && *r != "None").map(str::to_owned);
            (!state.is_empty()).then_some(JobRecord { job, tasks, state, reason })
        })
        .collect()
}

/// `sacct -n -P -X -j IDS -o JobID,State,ExitCode` (`12_3|FAILED|3:0`,
/// `12_[4-6]|PENDING|0:0`, `13|CANCELLED by 0|0:0`). Steps (`12_3.batch`) are skipped.
pub fn parse_sacct(text: &str) -> Vec<JobRecord> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split('|');
            let id = f.next()?.trim();
            if id.contains('.') {
                return None;
            }
            let state = state_word(f.next()?);
            let exit = f.next().map(str::trim).filter(|e| !e.is_empty() && *e != "0:0");
            let (job, tasks) = match id.split_once('_') {
                Some((j, t)) => (j.parse().ok()?, Some(parse_task_ids(t)?)),
                None => (id.parse().ok()?, None),
            };
            let reason = exit.map(|e| format!("exit {e}"));
            (!state.is_empty()).then_some(JobRecord { job, tasks, state, reason })
        })
        .collect()
}

/// `scontrol -o show job ID`: one line per job or array task (`JobId=14 ArrayJobId=12
/// ArrayTaskId=3 ... JobState=FAILED Reason=NonZeroExitCode ... ExitCode=3:0`). A pending
/// array is one line whose `ArrayTaskId` is a range. The job's name (which may hold
/// spaces and `=`) is skipped.
pub fn parse_scontrol(text: &str) -> Vec<JobRecord> {
    text.lines().filter_map(scontrol_line).collect()
}

fn scontrol_line(line: &str) -> Option<JobRecord> {
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut in_name = false;
    for word in line.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else { continue };
        if key == "JobName" {
            in_name = true;
            continue;
        }
        if in_name && key != "UserId" {
            continue;
        }
        in_name = false;
        fields.entry(key).or_insert(value);
    }
    let job_id: u64 = fields.get("JobId")?.parse().ok()?;
    let state = state_word(fields.get("JobState")?);
    let (job, tasks) = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
        (Some(a), Some(t)) => (a.parse().ok()?, Some(parse_task_ids(t)?)),
        _ => (job_id, None),
    };
    let exit = fields.get("ExitCode").filter(|e| **e != "0:0").map(|e| format!("exit {e}"));
    let reason = fields.get("Reason").filter(|r| **r != "None" && **r != "(null)").map(|r| r.to_string());
    let reason = match (reason, exit) {
        (Some(r), Some(e)) => Some(format!("{r}, {e}")),
        (r, e) => r.or(e),
    };
    (!state.is_empty()).then_some(JobRecord { job, tasks, state, reason })
}

/// Asks Slurm about the submissions' jobs: `squeue` for those in the queue, then `sacct`
/// (or, when accounting is off, `scontrol show job`) for those that ended. The note says
/// what could not be asked.
fn query_slurm(jobs: &Jobs) -> (Vec<JobRecord>, Option<String>) {
    let mut ids: Vec<u64> = Vec::new();
    for s in jobs.submissions.iter().rev().take(MAX_QUERIED) {
        for id in [s.array_job, s.merge_job] {
            if id != 0 && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let mut records = Vec::new();
    let mut notes = Vec::new();
    match capture("squeue", &["-h", "-r", "-j", &list, "-o", "%F|%K|%T|%r"]) {
        Ok(out) => records.extend(parse_squeue(&out)),
        // Every job has left the queue (squeue refuses a list of only unknown ids).
        Err(e) if e.contains("Invalid job id") => {}
        Err(e) => notes.push(e),
    }
    match capture("sacct", &["-n", "-P", "-X", "-j", &list, "-o", "JobID,State,ExitCode"]) {
        Ok(out) => records.extend(parse_sacct(&out)),
        Err(_) => {
            for id in ids.iter().take(MAX_SCONTROL_CALLS) {
                match capture("scontrol", &["-o", "show", "job", &id.to_string()]) {
                    Ok(out) => records.extend(parse_scontrol(&out)),
                    Err(e) if e.contains("Invalid job id") => {}
                    Err(e) => {
                        notes.push(e);
                        break;
                    }
                }
            }
        }
    }
    (records, (!notes.is_empty()).then(|| notes.join("; ")))
}

/// Runs a Slurm command (bounded in time and output); its standard output, or an error
/// in words (a missing command names its Debian package).
fn capture(cmd: &str, args: &[&str]) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let mut child = match Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{cmd} not found (Debian package slurm-client): Slurm's states are unknown"));
        }
        Err(e) => return Err(format!("{cmd}: {e}")),
    };
    let pipe = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_SLURM_OUTPUT).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let err = pipe(child.stderr.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let deadline = Instant::now() + SLURM_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd} did not answer in {} s", SLURM_TIMEOUT.as_secs()));
            }
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if status.success() { Ok(out) } else { Err(format!("{cmd} {}: {}", args.join(" "), err.trim())) }
}

#[cfg(test)]
mod tests;
