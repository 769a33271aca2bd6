//! `lvsim merge DIR...`: the shards of a split, checked, into the report the local
//! command writes.
//!
//! [`shard::gather`] reads and checks the shards; the scenario they name is loaded again
//! as they ran it ([`shard::Invocation`]) and refused if it changed since (its
//! fingerprint); then the command's own `merged` writes its report from the stored
//! summaries, through the code the local command writes it with.

use std::path::{Path, PathBuf};

use super::shard::{self, Gathered, Kind};
use super::{Common, InputError};

/// Merges the shards in `dirs` into the report directory `out` (see the `merge` command's
/// help).
pub fn merge(dirs: &[PathBuf], out: Option<PathBuf>, quiet: bool, json: bool) -> anyhow::Result<()> {
    let mut g = shard::gather(dirs)?;
    let out = out.or_else(|| dirs.first().and_then(|d| beside(d)));
    let mut c = common(&g, out, quiet, json)?;
    if let Some(typed) = elsewhere(&g.invocation) {
        // Into the directory the shards' command was typed in, to load the scenario as
        // typed (its name is in the reports); the paths given here made absolute first.
        let out = c.out_dir(&g.identity.scenario, g.identity.kind.suffix());
        c.out = Some(absolute(&out)?);
        for f in &mut g.files {
            *f = absolute(f)?;
        }
        if let Some((pages, _)) = &mut g.first {
            *pages = absolute(pages)?;
        }
        std::env::set_current_dir(&typed).map_err(|e| anyhow::anyhow!("{}: {e}", typed.display()))?;
    }
    check_scenario(&c, &g)?;
    match g.identity.kind {
        Kind::Sweep => super::sweep::merged(&c, g),
        Kind::Run => super::run::merged(&c, g),
        Kind::Plan => super::plan::merged(&c, g),
    }
}

/// `p` made absolute against the current directory.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// Where the shards' command was typed, when the merge must load the scenario from there:
/// its path is relative, not found from the current directory, and found from there (a
/// merge in another directory than the shards').
fn elsewhere(inv: &shard::Invocation) -> Option<PathBuf> {
    let file = Path::new(&inv.file);
    if file.is_absolute() || file.exists() {
        return None;
    }
    let typed = Path::new(&inv.cwd);
    (typed.is_absolute() && typed.join(file).is_file()).then(|| typed.to_path_buf())
}

/// The report directory beside a shards directory: `DIR` without its `.shards` suffix.
fn beside(dir: &Path) -> Option<PathBuf> {
    let s = dir.as_os_str().to_str()?.trim_end_matches('/');
    let report = s.strip_suffix(".shards")?;
    (!report.is_empty() && !report.ends_with('/')).then(|| PathBuf::from(report))
}

/// The options the shards ran with, as `Common` (every core; the report into `out`).
fn common(g: &Gathered, out: Option<PathBuf>, quiet: bool, json: bool) -> anyhow::Result<Common> {
    let inv = &g.invocation;
    let exchange = match inv.exchange.as_str() {
        "fast" => sim_core::model::Exchange::Fast,
        "per-message" => sim_core::model::Exchange::PerMessage,
        other => {
            let file = g.files.first().map_or_else(String::new, |f| f.display().to_string());
            return Err(
                InputError(format!("{file}: exchange {other:?}: expected fast or per-message")).into()
            );
        }
    };
    Ok(Common {
        file: PathBuf::from(&inv.file),
        sets: inv.sets.clone(),
        allow_paths: inv.allow_paths.iter().map(PathBuf::from).collect(),
        out,
        quiet,
        json,
        exchange,
        ..Common::default()
    })
}

/// Refuses to merge when the scenario, loaded again as the shards ran it, is no longer
/// the one they ran (the file, or a file it reads, changed since).
fn check_scenario(c: &Common, g: &Gathered) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let now = shard::fingerprint(g.identity.kind, &l, &shard::extra(g.invocation.plan.as_ref()));
    if now != g.identity.fingerprint {
        let file = g.files.first().map_or_else(String::new, |f| f.display().to_string());
        return Err(InputError(format!(
            "{}: the scenario is not the one the shards ran ({file} and the others): it, or a file it \
             reads, changed since; run the shards again, or restore it",
            l.file
        ))
        .into());
    }
    Ok(())
}
