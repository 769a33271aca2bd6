//! `cpuload` (the default): the CPU's busy fraction between two samples, from the first
//! `cpu ` line of `/proc/stat`. The computation is `feedbackd_proto::cpuload` (pure, shared
//! with the simulator); this module reads the file. capacity = 1 - busy.

use std::path::{Path, PathBuf};

use feedbackd_proto::cpuload::CpuLoad;
pub(super) use feedbackd_proto::cpuload::{CpuCounters as Counters, parse_proc_stat as parse_stat};

use super::{Reading, read_proc};

/// The module's state: the file and the computation's state.
#[derive(Debug)]
pub(super) struct Cpuload {
    path: PathBuf,
    load: CpuLoad,
}

impl Cpuload {
    pub(super) fn new(proc_root: &Path) -> Cpuload {
        Cpuload { path: proc_root.join("stat"), load: CpuLoad::new() }
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let text = read_proc(&self.path)?;
        let counters = parse_stat(&text).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let busy = self.advance(counters)?;
        Ok(Reading { capacity: 1.0 - busy, metrics: vec![("cpu_busy".to_owned(), busy)] })
    }

    /// See [`CpuLoad::advance`].
    pub(super) fn advance(&mut self, now: Counters) -> Result<f64, String> {
        self.load.advance(now)
    }
}
