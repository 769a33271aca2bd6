//! `lvsim compare A B`: two runs or two sweeps side by side.

use std::path::PathBuf;

/// `lvsim compare`'s options.
#[derive(Clone, Debug, Default)]
pub struct CompareOpts {
    /// The first report directory.
    pub a: PathBuf,
    /// The second report directory.
    pub b: PathBuf,
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

/// Compares two report directories. (Skeleton: filled in by the compare work.)
pub fn compare(o: &CompareOpts) -> anyhow::Result<()> {
    anyhow::bail!("compare {} {}: not built yet", o.a.display(), o.b.display())
}
