//! `loadavg`: the 1-minute load average per CPU, from `/proc/loadavg`.
//!
//! capacity = 1 - min(1, load1 / cpus). The CPUs are the `cpuN` lines of `/proc/stat`
//! (the online ones, counted at every sample so hot-plugging is followed), unless
//! `cpus=N` says otherwise.

use std::path::{Path, PathBuf};

use feedbackd_proto::conf::ConfError;

use super::{Reading, Settings, read_proc};

/// The largest `cpus=` accepted.
const MAX_CPUS: u64 = 1 << 20;

#[derive(Debug)]
pub(super) struct Loadavg {
    loadavg: PathBuf,
    stat: PathBuf,
    /// `cpus=N`, else counted.
    cpus: Option<u64>,
}

impl Loadavg {
    pub(super) fn from_conf(settings: &Settings<'_>, proc_root: &Path) -> Result<Loadavg, ConfError> {
        let cpus = match settings.get("cpus") {
            Some(_) => Some(settings.whole("cpus", 1..=MAX_CPUS, 1)?),
            None => None,
        };
        Ok(Loadavg { loadavg: proc_root.join("loadavg"), stat: proc_root.join("stat"), cpus })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let text = read_proc(&self.loadavg)?;
        let load1 = parse_load1(&text).map_err(|e| format!("{}: {e}", self.loadavg.display()))?;
        let cpus = match self.cpus {
            Some(n) => n,
            None => count_cpus(&read_proc(&self.stat)?)
                .ok_or_else(|| format!("{}: no `cpuN` line to count CPUs by", self.stat.display()))?,
        };
        let per_cpu = load1 / cpus as f64;
        Ok(Reading {
            capacity: 1.0 - per_cpu.min(1.0),
            metrics: vec![("load1".to_owned(), load1), ("load1_per_cpu".to_owned(), per_cpu)],
        })
    }
}

/// The first field of `/proc/loadavg`.
fn parse_load1(text: &str) -> Result<f64, String> {
    let word = text.split_whitespace().next().ok_or_else(|| "empty".to_owned())?;
    match word.parse::<f64>() {
        Ok(load) if load.is_finite() && load >= 0.0 => Ok(load),
        _ => Err(format!("{word:?} is not a load average")),
    }
}

/// The number of `cpuN` lines; `None` when there is none.
pub(super) fn count_cpus(stat: &str) -> Option<u64> {
    let n = stat
        .lines()
        .filter(|l| l.strip_prefix("cpu").is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
        .count();
    (n > 0).then_some(n as u64)
}
