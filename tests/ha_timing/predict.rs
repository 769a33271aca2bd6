//! The simulator's side: `lvsim run` on the same scenario, the faults moved to the phase
//! the real daemons had, and the comparison.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// What `lvsim run` predicts (summary.json's `ha`).
#[derive(Debug)]
pub struct Prediction {
    /// `ha.failover_gap_s_max` [s].
    pub gap: Option<f64>,
    /// `ha.faults[i].detection_s` [s], in fault order.
    pub detections: Vec<Option<f64>>,
}

/// Runs `lvsim run SCENARIO --set S...` (its own expectations dropped: the faults move).
pub fn predict(scenario: &Path, sets: &[String]) -> Prediction {
    // One directory a run: the cases predict side by side.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(format!("ha-timing-predict-{}-{n}", std::process::id()));
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

/// Where the model's periodic event (a check of the faulty server, an advert of the
/// master) that fault `event` is timed against happens, at or after `from` [s]: the fault
/// is then set at that time plus the phase it had in the VM.
///
/// Found by probing, not by computing the model's schedule here: with the fault at `t`,
/// `metric + t` (the reaction's time: when the next check after `t` failed, when the
/// backup took over after the advert before `t`) is the same for every `t` between two
/// such events and jumps at each. A scan in `step`s finds the first jump after `from`,
/// bisection narrows it to 1 ms. `sets` holds the other events' times.
pub fn model_event(
    scenario: &Path,
    sets: &[String],
    event: usize,
    metric: Metric,
    from: f64,
    step: f64,
) -> f64 {
    let key = |t: f64| {
        let mut s = sets.to_vec();
        s.push(format!("events[{event}].at_s={t}"));
        metric(&predict(scenario, &s))
            .map(|m| m + t)
            .unwrap_or_else(|| panic!("no metric with event {event} at {t} s"))
    };
    let (mut lo, mut klo) = (from, key(from));
    let mut hi = lo;
    for _ in 0..200 {
        hi = lo + step;
        let k = key(hi);
        if k > klo + 0.01 {
            break;
        }
        (lo, klo) = (hi, k);
    }
    assert!(hi > lo, "no periodic event in 200 steps of {step} s after {from} s");
    while hi - lo > 0.001 {
        let mid = (lo + hi) / 2.0;
        let k = key(mid);
        if k > klo + 0.01 {
            hi = mid;
        } else {
            (lo, klo) = (mid, k);
        }
    }
    hi
}

/// A prediction's figure that depends on a fault's time.
pub type Metric = fn(&Prediction) -> Option<f64>;
