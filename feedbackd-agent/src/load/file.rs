//! `file`: a number another program keeps in a file (`path=`, required).
//!
//! The file's first word is read at every sample; capacity = value / scale clamped to
//! [0, 1], `scale=100` by default (the value is a percentage of spare capacity) or
//! `scale=1` (a fraction). With `metrics=yes`, the lines after the first are `name value`
//! metrics (e.g. `qps 120` and `eps 0.5` for the master's gRPC WRR law).

use std::io::Read;
use std::path::PathBuf;

use feedbackd_proto::conf::ConfError;

use super::{Reading, Settings, line_metrics, scaled};

/// How much of the file is read [bytes]: the first word is all that counts.
const READ_LIMIT: u64 = 4096;

#[derive(Debug)]
pub(super) struct File {
    path: PathBuf,
    scale: f64,
    /// `metrics=yes`: the lines after the first are metrics.
    metrics: bool,
}

impl File {
    pub(super) fn from_conf(settings: &Settings<'_>) -> Result<File, ConfError> {
        Ok(File {
            path: PathBuf::from(settings.path()?),
            scale: settings.scale()?,
            metrics: settings.metrics()?,
        })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let shown = self.path.display();
        let mut bytes = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(READ_LIMIT).read_to_end(&mut bytes))
            .map_err(|e| format!("reading {shown}: {e}"))?;
        let text = String::from_utf8_lossy(&bytes);
        let what = shown.to_string();
        let (value, capacity) = scaled(&text, self.scale, &what)?;
        let mut metrics = vec![("file_value".to_owned(), value)];
        if self.metrics {
            metrics.extend(line_metrics(&text, "file_value", &what)?);
        }
        Ok(Reading { capacity, metrics })
    }
}
