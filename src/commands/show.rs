//! `lvsim show DIR`: a report directory's terminal summary again, without rerunning.

use std::io::Write as _;
use std::path::Path;

use super::InputError;
use super::dirs::{kind_of, markers, read_bounded};

/// Prints `DIR/summary.txt` (what `run`, `sweep`, `plan` or `compare` printed when it
/// wrote DIR), or with `json` its JSON file (`summary.json`, `sweep.json`, `plan.json`,
/// `compare.json`). Both are read as [`read_bounded`] reads: plain files, bounded.
pub fn show(dir: &Path, json: bool) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Err(InputError(format!(
            "{}: not a directory (expected an lvsim report directory)",
            dir.display()
        ))
        .into());
    }
    let Some(kind) = kind_of(dir) else {
        return Err(InputError(format!(
            "{}: not an lvsim report directory: it has none of {}",
            dir.display(),
            markers()
        ))
        .into());
    };
    let file = if json { kind.json() } else { "summary.txt" };
    let path = dir.join(file);
    if !json && std::fs::symlink_metadata(&path).is_err() {
        return Err(InputError(format!(
            "{}: missing: this {} report has no terminal summary (summary.txt is written by lvsim \
             run, sweep, plan and compare; rerun the command, or `lvsim show --json {}`)",
            path.display(),
            kind.word(),
            dir.display()
        ))
        .into());
    }
    let text = read_bounded(&path)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
