//! Work split into shards that run anywhere and merge into exactly the local report.
//!
//! A command's runs are *units*, numbered in the order the local command hands them back:
//!
//! - `sweep`: unit `j` is the `j`-th (point, replication) pair, points in the sweep's order
//!   (last axis fastest), each point's replications in seed order;
//! - `run --replications N`: unit `j` is replication `j` (seed `seed + j`);
//! - `plan`: unit `j` is one replication of one trial of the full grid of candidate sizes,
//!   scheduler by scheduler (see `plan::shards`).
//!
//! `--shard K/N` runs the units `j` with `j mod N = K - 1` (strided, so that a sweep whose
//! cost grows along an axis spreads evenly) and writes their summaries, and the errors of
//! those that failed, to one file, `shard-K-of-N.json`, written whole or not at all.
//! `lvsim merge` reads every shard of a split, checks that they are the same work (the
//! scenario's fingerprint, lvsim's version, the same `N`, each `K` once, none missing, no
//! failure) and hands the stored summaries to the same code that a local command hands its
//! runs to: the merged files are the local files, byte for byte, but for wall times.

use std::path::{Path, PathBuf};

use reports::Summary;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::InputError;

/// The format of shard files; a file of another format is refused.
pub const FORMAT: u32 = 1;

/// The most shards a split may have (Slurm's own default `MaxArraySize` is 1001).
pub const MAX_SHARDS: u32 = 100_000;

/// `--shard K/N`: shard `k` (1-based) of `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// This shard, `1..=n`.
    pub k: u32,
    /// Shards in all, `1..=MAX_SHARDS`.
    pub n: u32,
}

impl std::str::FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N <= {MAX_SHARDS}, such as 3/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || k > n || n > MAX_SHARDS {
            return Err(bad());
        }
        Ok(ShardSpec { k, n })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl ShardSpec {
    /// Whether unit `j` is this shard's.
    pub fn owns(&self, j: usize) -> bool {
        j % self.n as usize == self.k as usize - 1
    }

    /// This shard's units among `units`, in order.
    pub fn units(&self, units: usize) -> impl Iterator<Item = usize> + use<> {
        (self.k as usize - 1..units).step_by(self.n as usize)
    }

    /// The shard's file name: `shard-K-of-N.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.k, self.n)
    }
}

/// Which command's runs a shard holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `lvsim run` (its replications).
    Run,
    /// `lvsim sweep`.
    Sweep,
    /// `lvsim plan` (the grid of its trials).
    Plan,
}

impl Kind {
    /// The subcommand's name.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Plan => "plan",
        }
    }

    /// The suffix of the command's default report directory (`lvsim-out/NAME-sweep`).
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Run => "",
            Kind::Sweep => "-sweep",
            Kind::Plan => "-plan",
        }
    }
}

/// How to do the work again: what `merge` reloads (and checks against the fingerprint),
/// and what a Slurm task runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The scenario as typed: a path (relative to `cwd`), or a library scenario's name.
    pub file: String,
    /// The directory the command was typed in, absolute.
    pub cwd: String,
    /// `--set` arguments, in order.
    pub sets: Vec<String>,
    /// `--allow-path` directories, absolute.
    pub allow_paths: Vec<String>,
    /// `--exchange` (`fast` or `per-message`; the results do not depend on it).
    pub exchange: String,
    /// `plan`'s options, for a plan.
    pub plan: Option<super::plan::opts::PlanOpts>,
}

/// What every shard of one split shares; `merge` refuses a shard whose identity differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// [`FORMAT`].
    pub format: u32,
    /// lvsim's version ([`version`]).
    pub lvsim: String,
    /// The command.
    pub kind: Kind,
    /// The scenario's name.
    pub scenario: String,
    /// [`fingerprint`] of the scenario as loaded (text after overrides, configuration) and
    /// the command's options that change results.
    pub fingerprint: String,
    /// Units of the whole split.
    pub units: usize,
    /// Shards of the split (`N`).
    pub shards: u32,
}

/// A unit's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    /// The unit's number.
    pub unit: usize,
    /// What it is, in words (`rate=200, replication 2`).
    pub label: String,
    /// Its summary, as the local command computes it.
    pub summary: Summary,
    /// A sweep's: the [`fingerprint`] of the point it ran (the scenario with the point's
    /// values, and the files the point reads), which `merge` checks against the point as
    /// it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// A unit that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitFailure {
    /// The unit's number.
    pub unit: usize,
    /// What it is, in words (the point's values).
    pub label: String,
    /// The error, with its causes.
    pub error: String,
}

/// `shard-K-of-N.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// What the split is.
    pub identity: Identity,
    /// This shard's `K`.
    pub shard: u32,
    /// How to run it again.
    pub invocation: Invocation,
    /// Where it ran (host name) and how long it took [s].
    pub host: String,
    /// Wall time of the whole shard [s].
    pub wall_s: f64,
    /// The units that ran, in unit order.
    pub results: Vec<UnitResult>,
    /// The units that failed, in unit order.
    pub failures: Vec<UnitFailure>,
    /// For `run`: the terminal text of replication 0 (`reports::text_summary`), held by
    /// the shard that ran unit 0, whose report pages are in `shard-K-of-N.report/`.
    pub first_text: Option<String>,
}

/// lvsim's version as shards record it: the package version and the build's commit when
/// it is known.
pub fn version() -> String {
    match option_env!("LVSIM_COMMIT") {
        Some(c) if !c.is_empty() => format!("{}+{c}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// SHA-256 (hex) of what decides a split's results: the command, the scenario's text
/// after overrides, the configuration it builds (files it read included; not `--exchange`,
/// which changes how messages are simulated, not the results) and `extra` (a plan's
/// options).
pub fn fingerprint(kind: Kind, l: &scenarios::Loaded, extra: &str) -> String {
    let cluster = sim_core::model::ClusterConfig { exchange: Default::default(), ..l.cluster.clone() };
    let mut h = sha2::Sha256::new();
    for part in [kind.word(), l.doc.text(), &format!("{cluster:?}"), extra] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The default directory of a split's shard files: the report directory's path with
/// `.shards` added (`lvsim-out/NAME-sweep.shards`).
pub fn default_dir(report_dir: &Path) -> PathBuf {
    let mut s = report_dir.as_os_str().to_owned();
    s.push(".shards");
    PathBuf::from(s)
}

/// Where a split's shards go: `--shards-dir`, else beside the report directory.
pub fn shards_dir(dir: Option<&Path>, report_dir: &Path) -> PathBuf {
    dir.map_or_else(|| default_dir(report_dir), Path::to_path_buf)
}

/// The directory of replication 0's pages beside its shard file: `shard-K-of-N.report/`.
pub fn pages_dir(shards_dir: &Path, spec: ShardSpec) -> PathBuf {
    shards_dir.join(format!("shard-{}-of-{}.report", spec.k, spec.n))
}

/// The most failed units a shard's error lists (the shard file has them all).
const MAX_SHOWN: usize = 5;

/// Writes a shard file and says where in one line (unless quiet; with `--json`, as the
/// JSON `{"shard", "file", "done", "failed"}`, as a sweep's shard does): runs done and
/// failed. An error (exit 1) naming the failed units (their labels and errors) if any
/// failed: the file is written either way, so that `lvsim merge` and `lvsim status`
/// report them too.
pub fn save(c: &super::Common, dir: &Path, file: &ShardFile) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = write(dir, file)?;
    let (done, failed) = (file.results.len(), file.failures.len());
    let spec = ShardSpec { k: file.shard, n: file.identity.shards };
    let (name, kind) = (&file.identity.scenario, file.identity.kind.word());
    {
        let mut out = super::pipe::UnlessClosed::new(std::io::stdout().lock());
        if c.json {
            let line =
                serde_json::json!({"shard": spec.to_string(), "file": path, "done": done, "failed": failed});
            writeln!(out, "{line}")?;
        } else if !c.quiet {
            let at = path.display();
            writeln!(out, "shard {spec} of the {name} {kind}: {done} run(s) done, {failed} failed: {at}")?;
        }
        out.flush()?;
    }
    if failed == 0 {
        return Ok(());
    }
    let mut each: Vec<String> =
        file.failures.iter().take(MAX_SHOWN).map(|f| format!("{}: {}", f.label, f.error)).collect();
    if failed > MAX_SHOWN {
        each.push(format!("and {} more", failed - MAX_SHOWN));
    }
    Err(anyhow::anyhow!(
        "shard {spec} of the {name} {kind}: {failed} of {} run(s) failed, written to {}: {}",
        done + failed,
        path.display(),
        each.join("; ")
    ))
}

/// An input error about a shard file.
pub fn refuse(path: &Path, why: impl std::fmt::Display) -> anyhow::Error {
    InputError(format!("{}: {why}", path.display())).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_field() {
        let a = Identity {
            format: FORMAT,
            lvsim: version(),
            kind: Kind::Sweep,
            scenario: "nat-vs-dr".into(),
            fingerprint: "ab".repeat(32),
            units: 10,
            shards: 4,
        };
        let b = Identity { scenario: "x".into(), units: 9, kind: Kind::Run, ..a.clone() };
        let d = differences(&a, "there", &b, "now").join("; ");
        assert!(
            d.contains("command sweep there, run now") && d.contains("scenario nat-vs-dr there, x now"),
            "{d}"
        );
        assert!(d.contains("runs 10 there, 9 now"), "{d}");
        let f = Identity { fingerprint: "cd".repeat(32), ..a.clone() };
        assert!(
            differences(&a, "here", &f, "there")[0]
                .contains("(fingerprint) abababababab here, cdcdcdcdcdcd there")
        );
        assert!(differences(&a, "", &a, "").is_empty());
    }

    #[test]
    fn specs_parse_and_own_every_unit_once() {
        assert_eq!("3/8".parse::<ShardSpec>(), Ok(ShardSpec { k: 3, n: 8 }));
        for bad in ["0/8", "9/8", "1/0", "8", "a/b", "1/100001", "-1/2", "1/2/3", ""] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        let n = 7;
        let mut seen = [0; 30];
        for k in 1..=n {
            let s = ShardSpec { k, n };
            for j in s.units(30) {
                assert!(s.owns(j));
                seen[j] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
    }

    #[test]
    fn shard_files_beyond_the_memory_bound_are_refused_unread() {
        let dir = std::env::temp_dir().join(format!("lvsim-shard-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shard-1-of-1.json"), [b' '; 100]).unwrap();
        std::fs::write(dir.join("other.json"), [b' '; 1000]).unwrap();
        let e = within_memory(std::slice::from_ref(&dir), 99.0).unwrap_err().to_string();
        assert!(e.contains("100 bytes of shard files") && e.contains("more than merge may hold"), "{e}");
        assert!(within_memory(std::slice::from_ref(&dir), 100.0).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shard_lists_are_compact() {
        assert_eq!(ranges(&[3, 5, 6, 7]), "3, 5-7");
        assert_eq!(ranges(&[1, 2, 4, 8, 9]), "1-2, 4, 8-9");
        assert_eq!(ranges(&[]), "");
    }
}

/// What a command hands to `--slurm` (and what a shard records): the split's identity,
/// how to run it again, and its size.
#[derive(Clone, Debug)]
pub struct Work {
    /// The split, for `shards` = the number of shards chosen (`--slurm` sets it).
    pub identity: Identity,
    /// How to run a shard.
    pub invocation: Invocation,
    /// The budget's estimate of one run (the largest, for a plan).
    pub per_run: scenarios::budget::Estimate,
    /// What a unit is, by number, in words (`rate=200, replication 2`), for messages.
    pub labels: Vec<String>,
    /// Where the merged report goes.
    pub report_dir: PathBuf,
    /// Where the shard files go.
    pub shards_dir: PathBuf,
}

/// Every shard of a split, read and checked by [`gather`]: each unit's summary in unit
/// order.
#[derive(Debug)]
pub struct Gathered {
    /// The split (every shard's).
    pub identity: Identity,
    /// How it was run (the first shard's; every shard's has the same fingerprint).
    pub invocation: Invocation,
    /// Every unit's summary, by unit number.
    pub summaries: Vec<Summary>,
    /// Every unit's [`UnitResult::input`], by unit number.
    pub inputs: Vec<Option<String>>,
    /// `run`: the directory of replication 0's pages (`shard-K-of-N.report/`) and its
    /// terminal text.
    pub first: Option<(PathBuf, String)>,
    /// The shard files read, in `K` order.
    pub files: Vec<PathBuf>,
}

/// The largest shard file read [bytes] (a shard of many large runs' summaries).
pub const MAX_SHARD_FILE: u64 = 1 << 30;

/// One file found by [`scan`]: its path and what it held.
#[derive(Debug)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// The shard, or why it could not be read (an input error naming the file).
    pub shard: anyhow::Result<ShardFile>,
}

/// Every `shard-*-of-*.json` directly in `dir`, read (plain files of at most
/// [`MAX_SHARD_FILE`] bytes; links are not followed), sorted by name. Other files are
/// ignored; a missing directory is an error naming it.
pub fn scan(dir: &Path) -> anyhow::Result<Vec<Found>> {
    Ok(list(dir)?.into_iter().map(|path| Found { shard: read(&path), path }).collect())
}

/// The paths of every `shard-*-of-*.json` directly in `dir`, sorted by name (what
/// [`scan`] reads).
pub fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| refuse(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| refuse(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("shard-") && name.ends_with(".json") && name.contains("-of-") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads one shard file (bounded; a malformed one is an input error naming the file,
/// line and column).
pub fn read(path: &Path) -> anyhow::Result<ShardFile> {
    use std::io::Read as _;
    let meta = std::fs::symlink_metadata(path).map_err(|e| refuse(path, e))?;
    if !meta.is_file() {
        return Err(refuse(path, "not a plain file (links are not followed)"));
    }
    if meta.len() > MAX_SHARD_FILE {
        return Err(refuse(path, format!("{} bytes, more than a shard file may have", meta.len())));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SHARD_FILE + 1).read_to_string(&mut text))
        .map_err(|e| refuse(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| refuse(path, format!("{}:{}: not a shard file: {e}", e.line(), e.column())))
}

/// Writes a shard file into `dir` (created if missing) whole or not at all: a temporary
/// file in the same directory, synced, then renamed over `shard-K-of-N.json`.
pub fn write(dir: &Path, shard: &ShardFile) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(|e| refuse(dir, e))?;
    let spec = ShardSpec { k: shard.shard, n: shard.identity.shards };
    let path = dir.join(spec.file_name());
    let tmp = dir.join(format!(".{}.{}.tmp", spec.file_name(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer_pretty(&mut f, shard)?;
        f.write_all(b"\n")?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let len = f.metadata()?.len();
        if len > MAX_SHARD_FILE {
            return Err(std::io::Error::other(format!(
                "{len} bytes, more than merge reads ({MAX_SHARD_FILE}): split the work into more shards"
            )));
        }
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!("writing {}: {e}", path.display()));
    }
    Ok(path)
}

/// How `c` runs again, for a shard or a Slurm task: the scenario as typed and the
/// directory it was typed in (a Slurm task and the merge run there, so that the file's name
/// in the summaries and messages is the one a local run shows), `--allow-path`
/// directories absolute.
pub fn invocation(c: &super::Common, plan: Option<super::plan::opts::PlanOpts>) -> Invocation {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    Invocation {
        file: c.file.display().to_string(),
        cwd: abs(Path::new(".")).trim_end_matches("/.").to_owned(),
        sets: c.sets.clone(),
        allow_paths: c.allow_paths.iter().map(|p| abs(p)).collect(),
        exchange: match c.exchange {
            sim_core::model::Exchange::Fast => "fast",
            sim_core::model::Exchange::PerMessage => "per-message",
        }
        .to_owned(),
        plan,
    }
}

/// The most failed units a refusal lists (then how many more).
const MAX_LISTED: usize = 50;

/// Every shard of one split in `dirs`, checked, each unit's summary in unit order. Refuses
/// (exit 2), naming the files and shards: no shard file at all, an unreadable one
/// (malformed, truncated, too large, not a plain file), a shard of another format, lvsim
/// version, command, scenario (fingerprint) or number of shards, a file whose name is not
/// its shard, the same shard twice, missing shards, a shard whose units are not its
/// share, and failed units (each with its point and error).
pub fn gather(dirs: &[PathBuf]) -> anyhow::Result<Gathered> {
    let mut shards = read_all(dirs)?;
    let first = &shards[0].1;
    let (identity, invocation) = (first.identity.clone(), first.invocation.clone());
    for (path, s) in &shards {
        same_split(path, s, &shards[0].0, &identity)?;
    }
    shards.sort_by_key(|(_, s)| s.shard);
    for pair in shards.windows(2) {
        if pair[0].1.shard == pair[1].1.shard {
            let (a, b) = (pair[0].0.display(), pair[1].0.display());
            return Err(InputError(format!(
                "shard {}/{} twice: {a} and {b}",
                pair[0].1.shard, identity.shards
            ))
            .into());
        }
    }
    let have: Vec<u32> = shards.iter().map(|(_, s)| s.shard).collect();
    let missing: Vec<u32> = (1..=identity.shards).filter(|k| have.binary_search(k).is_err()).collect();
    if !missing.is_empty() {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(InputError(format!(
            "missing shard(s) {} of {} (shard-K-of-{}.json) in {}",
            ranges(&missing),
            identity.shards,
            identity.shards,
            dirs.join(", ")
        ))
        .into());
    }
    for (path, s) in &shards {
        covers(path, s)?;
    }
    failed(&shards)?;
    let mut inputs = Vec::with_capacity(identity.units);
    let mut summaries = Vec::with_capacity(identity.units);
    let mut first_pages = None;
    let mut results: Vec<std::vec::IntoIter<UnitResult>> = Vec::with_capacity(shards.len());
    let mut files = Vec::with_capacity(shards.len());
    for (path, s) in shards {
        if let Some(text) = s.first_text {
            let dir = path.parent().unwrap_or(Path::new("."));
            let pages = pages_dir(dir, ShardSpec { k: s.shard, n: identity.shards });
            first_pages = Some((pages, text));
        }
        results.push(s.results.into_iter());
        files.push(path);
    }
    // Unit j is shard (j mod N)'s next result: the shards' results interleaved.
    for j in 0..identity.units {
        let n = results.len();
        let r = results[j % n].next().expect("covers() checked every shard's share");
        summaries.push(r.summary);
        inputs.push(r.input);
    }
    Ok(Gathered { identity, invocation, summaries, inputs, first: first_pages, files })
}

/// Every shard file in `dirs` (each directory once), read; refuses unreadable files
/// (every one named) and finding none.
fn read_all(dirs: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, ShardFile)>> {
    within_memory(dirs, super::Common::default().budget().max_memory)?;
    let mut seen: Vec<PathBuf> = Vec::new();
    let (mut shards, mut bad) = (Vec::new(), Vec::new());
    for dir in dirs {
        let canonical = std::fs::canonicalize(dir).map_err(|e| refuse(dir, e))?;
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        for path in list(dir)? {
            match read(&path) {
                Ok(s) => shards.push((path, s)),
                Err(e) => bad.push(format!("{e:#}")),
            }
        }
    }
    if !bad.is_empty() {
        return Err(InputError(format!("unreadable shard file(s):\n  {}", bad.join("\n  "))).into());
    }
    if shards.is_empty() {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(InputError(format!("no shard file (shard-K-of-N.json) in {}", dirs.join(", "))).into());
    }
    Ok(shards)
}

/// Refuses shard files that hold more than `max` bytes in all (merge holds every summary
/// they hold at once), before reading any.
fn within_memory(dirs: &[PathBuf], max: f64) -> anyhow::Result<()> {
    let mut total = 0u64;
    for dir in dirs {
        for path in list(dir)? {
            total = total.saturating_add(std::fs::symlink_metadata(&path).map_or(0, |m| m.len()));
        }
    }
    if total as f64 > max {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(InputError(format!(
            "{}: {} of shard files, more than merge may hold ({}, half this machine's memory)",
            dirs.join(", "),
            scenarios::budget::show_bytes(total as f64),
            scenarios::budget::show_bytes(max)
        ))
        .into());
    }
    Ok(())
}

/// Refuses a shard of another split than `want` (the first file's, `first`), of another
/// format or lvsim than this one, or whose file name is not its shard.
fn same_split(path: &Path, s: &ShardFile, first: &Path, want: &Identity) -> anyhow::Result<()> {
    let id = &s.identity;
    if id.format != FORMAT {
        return Err(refuse(
            path,
            format!("shard file format {}, this lvsim reads format {FORMAT}", id.format),
        ));
    }
    if id.lvsim != version() {
        return Err(refuse(
            path,
            format!(
                "written by lvsim {}, this is lvsim {}: run every shard and the merge with one lvsim",
                id.lvsim,
                version()
            ),
        ));
    }
    let differs = differences(id, "here", want, "there");
    if !differs.is_empty() {
        let why = differs.join("; ");
        return Err(refuse(path, format!("not the split of {}: {why}", first.display())));
    }
    let spec = ShardSpec { k: s.shard, n: id.shards };
    if s.shard == 0 || s.shard > id.shards || id.shards > MAX_SHARDS {
        return Err(refuse(path, format!("shard {spec}: expected 1 <= K <= N <= {MAX_SHARDS}")));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name != spec.file_name() {
        return Err(refuse(path, format!("holds shard {spec}, whose file is {}", spec.file_name())));
    }
    Ok(())
}

/// What differs between two splits but for their format and lvsim version (which are
/// checked against this lvsim), one phrase a field: `scenario a LABEL_A, b LABEL_B`.
pub fn differences(a: &Identity, la: &str, b: &Identity, lb: &str) -> Vec<String> {
    let mut d = Vec::new();
    let mut differ = |what: &str, x: &dyn std::fmt::Display, y: &dyn std::fmt::Display| {
        d.push(format!("{what} {x} {la}, {y} {lb}"));
    };
    if a.kind != b.kind {
        differ("command", &a.kind.word(), &b.kind.word());
    }
    if a.scenario != b.scenario {
        differ("scenario", &a.scenario, &b.scenario);
    } else if a.fingerprint != b.fingerprint {
        let what = "the scenario's text, overrides or files (fingerprint)";
        differ(what, &short(&a.fingerprint), &short(&b.fingerprint));
    }
    if a.lvsim != b.lvsim {
        differ("lvsim version", &a.lvsim, &b.lvsim);
    }
    if a.format != b.format {
        differ("shard format", &a.format, &b.format);
    }
    if a.units != b.units {
        differ("runs", &a.units, &b.units);
    }
    if a.shards != b.shards {
        differ("shards (N)", &a.shards, &b.shards);
    }
    d
}

/// The first 12 hex digits of a fingerprint.
fn short(f: &str) -> &str {
    f.get(..12).unwrap_or(f)
}

/// Refuses a shard whose results and failures are not exactly its share of the units,
/// each once, in order.
fn covers(path: &Path, s: &ShardFile) -> anyhow::Result<()> {
    let spec = ShardSpec { k: s.shard, n: s.identity.shards };
    let units = s.identity.units;
    let share = units.saturating_sub(spec.k as usize - 1).div_ceil(spec.n as usize);
    let mut got: Vec<usize> =
        s.results.iter().map(|r| r.unit).chain(s.failures.iter().map(|f| f.unit)).collect();
    got.sort_unstable();
    let ordered = s.results.windows(2).all(|w| w[0].unit < w[1].unit);
    let detail = if got.len() != share {
        format!("{} run(s) instead of {share}", got.len())
    } else if let Some((g, w)) = got.iter().zip(spec.units(units)).find(|(g, w)| **g != *w) {
        format!("run {g} instead of run {w}")
    } else if !ordered {
        "its results out of order".to_owned()
    } else {
        return Ok(());
    };
    Err(refuse(
        path,
        format!(
            "not shard {spec}'s share of the split's {units} runs (each run j with j mod {} = {}, once): {detail}",
            spec.n,
            spec.k - 1
        ),
    ))
}

/// Refuses shards with failed units, listing each (its point and error, at most
/// [`MAX_LISTED`]).
fn failed(shards: &[(PathBuf, ShardFile)]) -> anyhow::Result<()> {
    let failures: Vec<(&PathBuf, &UnitFailure)> =
        shards.iter().flat_map(|(p, s)| s.failures.iter().map(move |f| (p, f))).collect();
    if failures.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = failures
        .iter()
        .take(MAX_LISTED)
        .map(|(p, f)| format!("  {}: run {} ({}): {}", p.display(), f.unit, f.label, f.error))
        .collect();
    if failures.len() > MAX_LISTED {
        lines.push(format!("  ... and {} more", failures.len() - MAX_LISTED));
    }
    let runs: usize = shards.iter().map(|(_, s)| s.results.len() + s.failures.len()).sum();
    let mut ks: Vec<u32> =
        shards.iter().filter(|(_, s)| !s.failures.is_empty()).map(|(_, s)| s.shard).collect();
    ks.sort_unstable();
    Err(InputError(format!(
        "{} of {runs} run(s) failed; run shard(s) {} of {} again once fixed:\n{}",
        failures.len(),
        ranges(&ks),
        shards[0].1.identity.shards,
        lines.join("\n")
    ))
    .into())
}

/// Shard numbers, compactly: `3, 5-7`.
pub fn ranges(ks: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ks.len() {
        let mut j = i;
        while j + 1 < ks.len() && ks[j + 1] == ks[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}-{}", ks[i], ks[j]) } else { ks[i].to_string() });
        i = j + 1;
    }
    parts.join(", ")
}

/// What `extra` of [`fingerprint`] is for an invocation: a plan's options (as JSON), else
/// nothing. A command and `merge` both fingerprint with it.
pub fn extra(plan: Option<&super::plan::opts::PlanOpts>) -> String {
    plan.map(|p| serde_json::to_string(p).expect("plan options serialise")).unwrap_or_default()
}

/// This machine's name, for a shard's record.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
