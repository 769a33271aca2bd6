//! `lvsim merge DIR...`: the shards of a split, checked, into the report the local
//! command writes.

use std::path::PathBuf;

use super::InputError;

/// Merges the shards in `dirs` into the report directory `out` (see the `merge` command's
/// help).
pub fn merge(dirs: &[PathBuf], out: Option<PathBuf>, quiet: bool, json: bool) -> anyhow::Result<()> {
    let _ = (dirs, out, quiet, json);
    Err(InputError("lvsim merge: not built yet".into()).into())
}
