//! `lvsim status DIR`: how far a split is, from its shard files and Slurm.

use std::path::Path;

use super::InputError;

/// Prints how far the split in `dir` is.
pub fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let _ = (dir, json);
    Err(InputError("lvsim status: not built yet".into()).into())
}
