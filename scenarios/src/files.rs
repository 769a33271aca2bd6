//! Files a scenario names (`import_ipvsadm`, a `Trace(file: ...)` arrival process): where
//! they may be, how much is read, and what an error about them may quote.
//!
//! - A name is resolved against the scenario's directory. An absolute name, or one whose
//!   path leaves the directory (`..`, or a symbolic link to elsewhere: the real path is
//!   checked after every link is resolved), is refused unless it lies in a directory the
//!   user allowed (`--allow-path DIR`). The check on the name's text is made before the
//!   file is touched, so a refused name says nothing of whether the file exists.
//! - Only a regular file is read, and only up to a cap ([`MAX_TRACE_BYTES`],
//!   [`MAX_IPVSADM_BYTES`]): a larger one is refused before it is read.
//! - A parse error quotes the file's content only when an earlier line of it was read as
//!   the expected format (a trace's time, an ipvsadm command); otherwise it gives the line
//!   and column and what was expected, so that pointing a scenario at a secret file does
//!   not print the secret.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

/// Largest trace file read [bytes] (about 4 million arrival times).
pub const MAX_TRACE_BYTES: u64 = 64 << 20;

/// Largest ipvsadm-save file read [bytes] (about 200,000 real servers).
pub const MAX_IPVSADM_BYTES: u64 = 16 << 20;

/// Largest scenario file read [bytes] (a million servers written out one by one).
pub const MAX_SCENARIO_BYTES: u64 = 256 << 20;

/// Where a scenario may read files: its own directory and the directories allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileAccess {
    base: PathBuf,
    allowed: Vec<PathBuf>,
}

impl FileAccess {
    /// Files in `base` (the scenario's directory; empty means the current directory) and
    /// in each of `allowed`.
    pub fn new(base: &Path, allowed: &[PathBuf]) -> FileAccess {
        FileAccess { base: base.to_path_buf(), allowed: allowed.to_vec() }
    }

    /// The scenario's directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The directories allowed besides it.
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// The file `name` (as the scenario writes it) resolved, checked and read, at most
    /// `cap` bytes, as UTF-8 text. `what` names the format in messages. The error is a
    /// message without location (the caller places it at the field).
    pub fn read(&self, name: &str, what: &str, cap: u64) -> Result<(PathBuf, String), String> {
        let path = self.resolve(name)?;
        let text = read_capped(&path, what, cap).map_err(|e| format!("{name}: {e}"))?;
        Ok((path, text))
    }

    /// `name`'s real path, if it lies in the scenario's directory or an allowed one.
    fn resolve(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty() {
            return Err("the file name is empty".into());
        }
        let base = if self.base.as_os_str().is_empty() { Path::new(".") } else { &self.base };
        let base =
            base.canonicalize().map_err(|e| format!("the scenario's directory {}: {e}", base.display()))?;
        let allowed: Vec<PathBuf> = self.allowed.iter().filter_map(|d| d.canonicalize().ok()).collect();
        let hint =
            "a scenario reads files only in its own directory; to allow another, pass --allow-path DIR";
        let inside = |p: &Path, with_base: bool| {
            (with_base && p.starts_with(&base)) || allowed.iter().any(|d| p.starts_with(d))
        };
        let written = Path::new(name);
        let absolute = written.is_absolute();
        // The name's text first: a refused name is refused without looking at the file.
        let lexical = normalize(&base.join(written));
        if !inside(&lexical, !absolute) {
            return Err(if absolute {
                format!("{name} is an absolute path outside every --allow-path directory ({hint})")
            } else {
                format!("{name} leaves the scenario's directory {} ({hint})", base.display())
            });
        }
        let real = lexical.canonicalize().map_err(|e| format!("cannot read {name}: {e}"))?;
        if !inside(&real, true) {
            return Err(format!(
                "{name} is a symbolic link (or passes through one) to {}, outside the scenario's directory {} ({hint})",
                real.display(),
                base.display()
            ));
        }
        Ok(real)
    }
}

/// A regular file's text, refused (before it is read) if it is larger than `cap` bytes;
/// `what` names the format in messages. A refusal never quotes the file.
pub fn read_capped(path: &Path, what: &str, cap: u64) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > cap {
        return Err(format!("{} bytes, over the {cap}-byte limit for {what}", meta.len()));
    }
    let mut bytes = Vec::new();
    f.by_ref().take(cap + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!("grew past the {cap}-byte limit for {what} while it was read"));
    }
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (byte {}), so not {what}", e.utf8_error().valid_up_to()))
}

/// `.` and `..` removed from an absolute path, by its text.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether an error at 1-based `line` of `text` may quote it: `records(prefix)` counts the
/// records of the expected format read in the lines before it.
pub fn may_quote(text: &str, line: usize, records: impl Fn(&str) -> usize) -> bool {
    let end = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    records(&text[..end]) > 0
}

/// The message of a parse error in a file a scenario names: `message` if some earlier
/// line was read as `what`, else `expected` and a note that the line is not shown.
pub fn quoted_or_not(quote: bool, message: &str, what: &str, expected: &str) -> String {
    if quote {
        message.to_owned()
    } else {
        format!(
            "not {what}: expected {expected} (the line is not shown: no line before it was read as {what})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_removes_dots_by_text() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("/a/../../etc")), Path::new("/etc"));
    }

    #[test]
    fn quoting_needs_a_record_on_an_earlier_line() {
        let count = |s: &str| s.lines().filter(|l| l.starts_with("ok")).count();
        assert!(!may_quote("secret\n", 1, count));
        assert!(!may_quote("# c\nsecret\n", 2, count));
        assert!(may_quote("ok\nsecret\n", 2, count));
        assert!(!may_quote("secret\nok\n", 1, count));
        let m = quoted_or_not(false, "bad \"root:x\"", "a trace", "a time");
        assert!(!m.contains("root"), "{m}");
    }
}
