//! `lvsim import`: an operator's existing configuration (keepalived.conf, ldirectord.cf
//! with heartbeat's files, ipvsadm rules, piranha's lvs.cf) as a scenario file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use topologies::import::{Format, Source, import};

use super::InputError;

/// The most files one import reads (a directory of more is refused, not truncated).
pub const MAX_FILES: usize = 64;

/// The largest file one import reads.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// What `lvsim import` was asked.
#[derive(Clone, Debug)]
pub struct ImportOpts {
    /// Files, or directories whose files of one tool are read.
    pub paths: Vec<PathBuf>,
    /// Every file's format, instead of telling it from the name and text.
    pub format: Option<Format>,
    /// Write the scenario here instead of standard output.
    pub out: Option<PathBuf>,
    /// Replace `out` if it exists.
    pub force: bool,
    /// Print no notes.
    pub quiet: bool,
}

/// Reads the files, writes the scenario, prints what could not be mapped on standard
/// error (`FILE:LINE: note`).
pub fn run(o: &ImportOpts) -> anyhow::Result<()> {
    let paths = expand(&o.paths, o.format)?;
    let mut sources = Vec::with_capacity(paths.len());
    for p in &paths {
        let text = scenarios::files::read_capped(p, "a configuration file", MAX_FILE_BYTES)
            .map_err(|m| InputError(format!("{}: {m}", p.display())))?;
        sources.push(Source { path: p.display().to_string(), text });
    }
    let imported = import(&sources, o.format).map_err(|e| InputError(e.to_string()))?;
    let names: Vec<String> = sources.iter().map(|s| s.path.clone()).collect();
    let text = scenarios::write::scenario(&imported, &names);
    if !o.quiet {
        let mut err = std::io::stderr().lock();
        for n in &imported.notes {
            let at = if n.line == 0 { n.path.clone() } else { format!("{}:{}", n.path, n.line) };
            writeln!(err, "{at}: not mapped: {}", n.message)?;
        }
    }
    match &o.out {
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
        Some(out) => write_new(out, &text, o.force)?,
    }
    Ok(())
}

/// `out` written with `text`; refused if it exists and `force` is not set.
fn write_new(out: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        return Err(InputError(format!("{} exists: give --force to replace it", out.display())).into());
    }
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// The files to read: each file named, and the files of a directory that a tool reads
/// (by [`Format::detect`], or of `format`'s tool), sorted by name. A directory holding
/// several tools' files needs `--format`.
fn expand(paths: &[PathBuf], format: Option<Format>) -> Result<Vec<PathBuf>, InputError> {
    if paths.is_empty() {
        return Err(InputError("name the files (or a directory) to import".into()));
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(of_directory(p, format)?);
        } else {
            out.push(p.clone());
        }
        if out.len() > MAX_FILES {
            return Err(InputError(format!("more than {MAX_FILES} files to import: name fewer")));
        }
    }
    Ok(out)
}

fn of_directory(dir: &Path, format: Option<Format>) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InputError(format!("{}: {e}", dir.display())))?;
    let mut found: Vec<(Format, PathBuf)> = Vec::new();
    for e in entries {
        let p = e.map_err(|e| InputError(format!("{}: {e}", dir.display())))?.path();
        if !p.is_file() {
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // By name only: a directory's other files are not read to guess.
        if let Some(f) = Format::detect(&name, "") {
            found.push((f.family(), p));
        }
        if found.len() > MAX_FILES {
            return Err(InputError(format!("{}: more than {MAX_FILES} files to import", dir.display())));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let mut tools: Vec<Format> = found.iter().map(|(f, _)| *f).collect();
    tools.sort_unstable();
    tools.dedup();
    let want = match (format.map(Format::family), tools.as_slice()) {
        (Some(f), _) => f,
        (None, [one]) => *one,
        (None, []) => {
            return Err(InputError(format!(
                "{}: no keepalived*.conf, ldirectord*.cf, ha.cf, haresources, ipvsadm* or *.rules, or lvs.cf in it",
                dir.display()
            )));
        }
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|f| f.name()).collect();
            return Err(InputError(format!(
                "{} holds files of several tools ({}): choose one with --format",
                dir.display(),
                names.join(", ")
            )));
        }
    };
    Ok(found.into_iter().filter(|(f, _)| *f == want).map(|(_, p)| p).collect())
}
