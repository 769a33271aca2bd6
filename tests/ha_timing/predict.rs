//! The simulator's side: `lvsim run` on the same scenario, the faults moved to the phase
//! the real daemons had, and the comparison.

use std::path::Path;
use std::process::Command;

/// What `lvsim run` predicts (summary.json's `ha`).
#[derive(Debug)]
pub struct Prediction {
    /// When the first fail-over happened (the first MASTER) [s of simulated time].
    pub first_master: Option<f64>,
    /// `ha.failover_gap_s_max` [s].
    pub gap: Option<f64>,
    /// `ha.faults[i].detection_s` [s], in fault order.
    pub detections: Vec<Option<f64>>,
}

/// Runs `lvsim run SCENARIO --set S...` (its own expectations dropped: the faults move).
pub fn predict(scenario: &Path, sets: &[String]) -> Prediction {
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ha-timing-predict-{}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lvsim"));
    cmd.arg("run").arg(scenario).args(["-q", "--no-progress", "--set", "expect=[]", "-o"]).arg(&out);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let run = cmd.output().expect("running lvsim run");
    assert!(run.status.success(), "lvsim run {sets:?}: {}", String::from_utf8_lossy(&run.stderr));
    let text = std::fs::read_to_string(out.join("summary.json")).expect("lvsim run's summary.json");
    let _ = std::fs::remove_dir_all(&out);
    let v: serde_json::Value = serde_json::from_str(&text).expect("summary.json is JSON");
    let ha = &v["ha"];
    Prediction {
        first_master: ha["failovers"][0]["at_s"].as_f64(),
        gap: ha["failover_gap_s_max"].as_f64(),
        detections: ha["faults"]
            .as_array()
            .map(|f| f.iter().map(|x| x["detection_s"].as_f64()).collect())
            .unwrap_or_default(),
    }
}

/// A measured time against its prediction.
#[derive(Debug)]
pub struct Row {
    /// The daemon and the event.
    pub what: String,
    /// The prediction's variant ("model", or how it was made wrong).
    pub variant: String,
    /// Measured in the VM [s].
    pub measured: f64,
    /// Predicted by `lvsim run` [s] (NaN: no prediction).
    pub predicted: f64,
    /// The interval that bounds the tolerance: one check interval (or advert interval) [s].
    pub interval: f64,
}

impl Row {
    /// The tolerance: 10% of the measured time or one interval, whichever is larger.
    pub fn tolerance(&self) -> f64 {
        (0.1 * self.measured).max(self.interval)
    }

    /// Is the prediction within the tolerance?
    pub fn ok(&self) -> bool {
        (self.measured - self.predicted).abs() <= self.tolerance()
    }

    /// One line of the table.
    pub fn line(&self) -> String {
        format!(
            "{:<34} {:<26} measured {:>6.2} s  predicted {:>6.2} s  diff {:>+6.2} s  tolerance {:.2} s  {}",
            self.what,
            self.variant,
            self.measured,
            self.predicted,
            self.predicted - self.measured,
            self.tolerance(),
            if self.ok() { "within" } else { "OUTSIDE" }
        )
    }
}

/// The value of `key` in a configuration file's `key value` (or `key = value`) line.
pub fn conf_value(conf: &str, key: &str) -> f64 {
    conf.lines()
        .map(|l| {
            l.trim()
                .split(|c: char| c.is_whitespace() || c == '=')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|w| w.first() == Some(&key))
        .and_then(|w| w.get(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {key} in:\n{conf}"))
}

/// The first `start + k × step + offset` (k ≥ 0) at or after `not_before`: a fault time
/// in the model with the phase `offset` after one of its periodic events.
pub fn phase(start: f64, step: f64, offset: f64, not_before: f64) -> f64 {
    let k = ((not_before - start - offset) / step).ceil().max(0.0);
    start + k * step + offset
}
