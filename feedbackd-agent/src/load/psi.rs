//! `psi`: CPU pressure stall information, `/proc/pressure/cpu` (Linux 4.20 and later,
//! `CONFIG_PSI`).
//!
//! The `some` line's `avgW` is the percentage of the last W seconds in which at least one
//! runnable task waited for a CPU. capacity = 1 - avgW / 100. `window=10|60|300` picks W
//! (default 10).

use std::path::{Path, PathBuf};

use feedbackd_proto::conf::ConfError;

use super::{Reading, Settings, read_proc};

#[derive(Debug)]
pub(super) struct Psi {
    path: PathBuf,
    /// `avg10=`, `avg60=` or `avg300=`.
    field: &'static str,
}

impl Psi {
    pub(super) fn from_conf(settings: &Settings<'_>, proc_root: &Path) -> Result<Psi, ConfError> {
        let field = match settings.get("window") {
            None | Some("10") => "avg10=",
            Some("60") => "avg60=",
            Some("300") => "avg300=",
            Some(other) => {
                return Err(settings.error(format!("window={other:?} is not 10, 60 or 300 (seconds)")));
            }
        };
        Ok(Psi { path: proc_root.join("pressure").join("cpu"), field })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let text = read_proc(&self.path)?;
        let percent = parse_some(&text, self.field).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let fraction = (percent / 100.0).clamp(0.0, 1.0);
        Ok(Reading { capacity: 1.0 - fraction, metrics: vec![("cpu_pressure".to_owned(), fraction)] })
    }
}

/// `field`'s percentage on the `some` line.
fn parse_some(text: &str, field: &str) -> Result<f64, String> {
    let line =
        text.lines().find_map(|l| l.strip_prefix("some ")).ok_or_else(|| "no `some` line".to_owned())?;
    let word = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(field))
        .ok_or_else(|| format!("no {field} on the `some` line"))?;
    match word.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("{field}{word:?} is not a percentage")),
    }
}
