//! `lvsim show DIR`: a report directory's terminal summary again.

use std::path::Path;

/// Prints a report directory's summary. (Skeleton: filled in by the compare work.)
pub fn show(dir: &Path, json: bool) -> anyhow::Result<()> {
    anyhow::bail!("show {} (json {json}): not built yet", dir.display())
}
