//! `file`: a number another program keeps in a file (`path=`, required).
//!
//! The file's first word is read at every sample; capacity = value / scale clamped to
//! [0, 1], `scale=100` by default (the value is a percentage of spare capacity) or
//! `scale=1` (a fraction).

use std::io::Read;
use std::path::PathBuf;

use feedbackd_proto::conf::ConfError;

use super::{Reading, Settings, scaled};

/// How much of the file is read [bytes]: the first word is all that counts.
const READ_LIMIT: u64 = 4096;

#[derive(Debug)]
pub(super) struct File {
    path: PathBuf,
    scale: f64,
}

impl File {
    pub(super) fn from_conf(settings: &Settings<'_>) -> Result<File, ConfError> {
        Ok(File { path: PathBuf::from(settings.path()?), scale: settings.scale()? })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let shown = self.path.display();
        let mut bytes = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(READ_LIMIT).read_to_end(&mut bytes))
            .map_err(|e| format!("reading {shown}: {e}"))?;
        let text = String::from_utf8_lossy(&bytes);
        let (value, capacity) = scaled(&text, self.scale, &shown.to_string())?;
        Ok(Reading { capacity, metrics: vec![("file_value".to_owned(), value)] })
    }
}
