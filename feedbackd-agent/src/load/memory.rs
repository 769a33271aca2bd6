//! `memory`: the fraction of memory available for new work, from `/proc/meminfo`.
//!
//! capacity = MemAvailable / MemTotal. MemAvailable (Linux 3.14 and later) is the
//! kernel's own estimate of what can be allocated without swapping, page cache included.

use std::path::{Path, PathBuf};

use super::{Reading, read_proc};

#[derive(Debug)]
pub(super) struct Memory {
    path: PathBuf,
}

impl Memory {
    pub(super) fn new(proc_root: &Path) -> Memory {
        Memory { path: proc_root.join("meminfo") }
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let text = read_proc(&self.path)?;
        let field = |name: &str| field_kb(&text, name).map_err(|e| format!("{}: {e}", self.path.display()));
        let total = field("MemTotal")?;
        let available = field("MemAvailable")?;
        if total == 0 {
            return Err(format!("{}: MemTotal is 0", self.path.display()));
        }
        let fraction = (available as f64 / total as f64).min(1.0);
        Ok(Reading { capacity: fraction, metrics: vec![("mem_available".to_owned(), fraction)] })
    }
}

/// The value of `NAME:  N kB`.
fn field_kb(text: &str, name: &str) -> Result<u64, String> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .ok_or_else(|| format!("no {name} line (MemAvailable needs Linux 3.14 or later)"))?;
    let word = rest.split_whitespace().next().unwrap_or("");
    word.parse::<u64>().map_err(|_| format!("{name}: {word:?} is not a number of kB"))
}
