//! Report directories: their names, what kind of report one holds, reading its files
//! with bounds, and replacing one without doing it silently.
//!
//! A directory is an lvsim report when it holds one of [`Kind::json`]'s files as a plain
//! file. `run`, `sweep` (and `compare`) write only into a missing or empty directory or
//! into a report, whose old files they remove first, saying on stderr what the report was;
//! a non-empty directory that is not a report is refused rather than mixed with.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::InputError;

/// The largest report file `compare` and `show` read [bytes]: a sweep of a few thousand
/// replicated points; a bigger file is refused before it is read.
pub const MAX_REPORT_FILE: u64 = 256 << 20;

/// The longest `@...` label a `--set` run's directory name gets [bytes]; a longer one is cut
/// and ends with a hash of the whole, so that it stays distinct.
const MAX_LABEL: usize = 96;

/// The kind of report a directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `lvsim run`: `summary.json`.
    Run,
    /// `lvsim sweep`: `sweep.json`.
    Sweep,
    /// `lvsim plan`: `plan.json`.
    Plan,
    /// `lvsim compare`: `compare.json`.
    Compare,
}

impl Kind {
    /// Every kind, in the order a directory is probed.
    pub const ALL: [Kind; 4] = [Kind::Run, Kind::Sweep, Kind::Plan, Kind::Compare];

    /// The JSON file that marks a report of this kind.
    pub fn json(self) -> &'static str {
        match self {
            Kind::Run => "summary.json",
            Kind::Sweep => "sweep.json",
            Kind::Plan => "plan.json",
            Kind::Compare => "compare.json",
        }
    }

    /// The command that writes it, as a person says it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Plan => "plan",
            Kind::Compare => "comparison",
        }
    }
}

/// The kind of report in `dir`: the first kind whose JSON file is there as a plain file
/// (a symbolic link does not count).
pub fn kind_of(dir: &Path) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| std::fs::symlink_metadata(dir.join(k.json())).is_ok_and(|m| m.is_file()))
}

/// The names every report file list in an error message: `summary.json, sweep.json, ...`.
pub fn markers() -> String {
    Kind::ALL.map(Kind::json).join(", ")
}

/// Reads a report file: a plain file (not a link, a FIFO or a device) of at most
/// [`MAX_REPORT_FILE`] bytes of UTF-8; every refusal is an input error naming the path.
pub fn read_bounded(path: &Path) -> anyhow::Result<String> {
    let bad = |why: String| anyhow::Error::from(InputError(format!("{}: {why}", path.display())));
    let meta = std::fs::symlink_metadata(path).map_err(|e| bad(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(bad("a symbolic link; refusing to follow it (report files are plain files)".into()));
    }
    if !meta.is_file() {
        return Err(bad("not a plain file".into()));
    }
    let too_big = |n: u64| bad(format!("{n} bytes, more than the {MAX_REPORT_FILE} a report file may have"));
    if meta.len() > MAX_REPORT_FILE {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_FILE + 1).read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_REPORT_FILE {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text ({e})")))
}

/// Reads and parses a report's JSON file; a malformed one is an input error naming the
/// file, line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = read_bounded(path)?;
    serde_json::from_str(&text).map_err(|e| {
        InputError(format!("{}:{}:{}: not {what}: {e}", path.display(), e.line(), e.column())).into()
    })
}

/// The directory name of a run of `name` with `--set` overrides: `NAME@LABEL`, LABEL made
/// of each override's last field and its value (`quickstart@scheduler=wlc`), in the order
/// given, joined by `,`. `seed` and `replications` do not name a directory (a rerun with
/// another seed replaces the report and says so). Only `[A-Za-z0-9._+=,-]` are kept (others
/// become one `_`, none at the end); a label longer than 96 bytes is cut and ends with `~` and a hash of every
/// override, so it stays distinct. Deterministic: the same overrides, the same name.
pub fn run_dir_name(name: &str, sets: &[String]) -> String {
    let labels: Vec<String> = sets
        .iter()
        .filter_map(|s| {
            let (path, value) = s.split_once('=')?;
            let field = path.rsplit('.').next().unwrap_or(path);
            let field = field.split('[').next().unwrap_or(field).trim();
            if matches!(field, "seed" | "replications") && !path.contains('.') {
                return None;
            }
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            Some(format!("{field}={value}"))
        })
        .collect();
    if labels.is_empty() {
        return name.to_string();
    }
    let mut label = String::new();
    for c in labels.join(",").chars() {
        let c = if c.is_ascii_alphanumeric() || "._+=,-".contains(c) { c } else { '_' };
        // `Exponential(mean: 8.0)` reads `Exponential_mean_8.0`, not `Exponential_mean__8.0_`.
        if c != '_' || !label.ends_with('_') {
            label.push(c);
        }
    }
    let label = label.trim_end_matches('_');
    if label.len() <= MAX_LABEL {
        return format!("{name}@{label}");
    }
    format!("{name}@{}~{:016x}", &label[..MAX_LABEL - 17], fnv1a(sets.join("\n").as_bytes()))
}

/// FNV-1a, 64 bits: a stable hash (std's hashers may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A report directory about to be written: missing, empty, or an earlier report (which
/// [`OutDir::clear`] removes, saying what it was).
#[derive(Clone, Debug)]
pub struct OutDir {
    /// The directory.
    pub path: PathBuf,
    /// What the directory held: a person's description of the earlier report.
    previous: Option<String>,
}

impl OutDir {
    /// Checks that `path` may be written: refuses (exit 2) a file, or a non-empty directory
    /// that is not a report. Removes nothing yet.
    pub fn check(path: PathBuf) -> anyhow::Result<OutDir> {
        let refuse = |why: &str| anyhow::Error::from(InputError(format!("{}: {why}", path.display())));
        let meta = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutDir { path, previous: None }),
            Err(e) => return Err(refuse(&e.to_string())),
            Ok(m) => m,
        };
        if !meta.is_dir() {
            return Err(refuse("exists and is not a directory"));
        }
        let empty = std::fs::read_dir(&path).map_err(|e| refuse(&e.to_string()))?.next().is_none();
        if empty {
            return Ok(OutDir { path, previous: None });
        }
        let Some(kind) = kind_of(&path) else {
            return Err(refuse(&format!(
                "not empty and not an lvsim report (it has none of {}); refusing to mix the report \
                 with its files: choose another --out",
                markers()
            )));
        };
        let previous = describe(&path, kind);
        Ok(OutDir { path, previous: Some(previous) })
    }

    /// Removes the earlier report's files (the `.json`, `.csv`, `.html` and `.txt` files
    /// directly in the directory; links are removed, not followed) and says on stderr what
    /// it was; creates the directory.
    pub fn clear(&self) -> anyhow::Result<()> {
        if let Some(prev) = &self.previous {
            let entries = std::fs::read_dir(&self.path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", self.path.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| anyhow::anyhow!("reading {}: {e}", self.path.display()))?;
                let p = entry.path();
                let ours = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "json" | "csv" | "html" | "txt"));
                if ours && !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_file(&p).map_err(|e| anyhow::anyhow!("removing {}: {e}", p.display()))?;
                }
            }
            eprintln!("lvsim: replacing the report in {} (it held {prev})", self.path.display());
        }
        std::fs::create_dir_all(&self.path)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", self.path.display()))
    }
}

/// A person's description of the report in `dir`, from its JSON file's `scenario`, `seed`
/// and `overrides` (a sweep's `axes`, a comparison's `a` and `b`).
fn describe(dir: &Path, kind: Kind) -> String {
    let path = dir.join(kind.json());
    let v: serde_json::Value = match read_json(&path, "JSON") {
        Ok(v) => v,
        Err(e) => return format!("a {} whose {} cannot be read: {e:#}", kind.word(), kind.json()),
    };
    let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("?").to_string();
    match kind {
        Kind::Run => {
            let overrides: Vec<&str> = v
                .get("overrides")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            let seed =
                v.get("seed").and_then(serde_json::Value::as_u64).map_or("?".into(), |s| s.to_string());
            let over = if overrides.is_empty() {
                "no overrides".to_string()
            } else {
                format!("overrides {}", overrides.join(" "))
            };
            format!("a run of {}, seed {seed}, {over}", s("scenario"))
        }
        Kind::Sweep => {
            let axes = v.get("axes").map_or(String::new(), ToString::to_string);
            format!("a sweep of {} over {axes}", s("scenario"))
        }
        Kind::Plan => format!("a plan of {}", s("scenario")),
        Kind::Compare => {
            let side =
                |k: &str| v.pointer(&format!("/{k}/dir")).and_then(|d| d.as_str()).unwrap_or("?").to_string();
            format!("a comparison of {} and {}", side("a"), side("b"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_runs_get_short_deterministic_names() {
        let n = |sets: &[&str]| {
            run_dir_name("quickstart", &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(n(&[]), "quickstart");
        assert_eq!(n(&["directors[0].services[0].scheduler=wlc"]), "quickstart@scheduler=wlc");
        assert_eq!(
            n(&["topology=\"ha-pair\"", "clients[0].arrival.rate=800"]),
            "quickstart@topology=ha-pair,rate=800"
        );
        assert_eq!(n(&["seed=4", "replications=5"]), "quickstart");
        assert_eq!(n(&["seed=4", "x=a/../b c"]), "quickstart@x=a_.._b_c");
        assert_eq!(
            n(&["clients[0].demand_ms=Exponential(mean: 8.0)"]),
            "quickstart@demand_ms=Exponential_mean_8.0"
        );
        let long: Vec<String> = (0..40).map(|i| format!("clients[{i}].arrival.rate=800")).collect();
        let a = run_dir_name("q", &long);
        assert!(a.len() <= 2 + MAX_LABEL, "{a}");
        assert_eq!(a, run_dir_name("q", &long), "deterministic");
        let mut other = long.clone();
        other[39] = "clients[39].arrival.rate=801".into();
        assert_ne!(a, run_dir_name("q", &other), "the hash tells them apart");
    }
}
