//! The feedback weight law: turns the spare capacity an agent reports into an IPVS weight.
//!
//! One [`ServerLaw`] per real server, driven by `feedbackd-master` (wall time) and by the
//! simulator (virtual time) through the same [`ServerLaw::update`]. Each update:
//!
//! 1. clamps the reported capacity to [0, 1] (1 = idle) and smooths it with an exponential
//!    moving average: `s = α·c + (1 − α)·s_prev` ([`LawConfig::smoothing`] is α; 1 = none);
//! 2. maps it linearly onto the weight range: `target = min + (max − min)·s`, rounded;
//! 3. during a slow start, caps the target at a ceiling that rises linearly from `min` to
//!    `max` over [`LawConfig::slow_start`] (a new or returning server is not flooded);
//! 4. ignores a change smaller than [`LawConfig::dead_band`] (no churn from noise: each
//!    kernel SET_DEST resets wrr's position and rebuilds sh/mh tables), except to reach a
//!    clamp;
//! 5. moves at most [`LawConfig::max_step`] per update (no oscillation from one bad sample).
//!
//! Properties (tested): the weight always stays within `[min, max]`; less capacity never
//! gives a higher weight than more capacity from the same state; a step never exceeds
//! `max_step`; a change is never smaller than the dead-band unless it reaches a clamp.

use core::fmt;

use crate::time::{Duration, Time};

/// The law's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LawConfig {
    /// The lowest weight a reporting, ready server gets (≥ 1 keeps it in rotation; 0 would
    /// quiesce it).
    pub min_weight: u32,
    /// The weight of an idle server (at most 65535, ipvsadm's limit).
    pub max_weight: u32,
    /// EWMA factor α in (0, 1]: the weight given to the newest sample.
    pub smoothing: f64,
    /// Changes smaller than this are not applied [weight units].
    pub dead_band: u32,
    /// The largest change in one update [weight units]; 0 means unlimited.
    pub max_step: u32,
    /// How long a new or returning server takes to reach the full range.
    pub slow_start: Duration,
    /// What the target weight is computed from.
    pub kind: LawKind,
}

/// Which law computes the target weight; smoothing, slow start, dead-band, step limit and
/// clamps apply to both.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LawKind {
    /// feedbackd's: the reported spare capacity mapped linearly onto the weight range.
    #[default]
    Capacity,
    /// gRPC's weighted round robin (gRFC A58): `qps / (utilization + eps / qps × penalty)`,
    /// from the report's `qps` and `eps` metrics and utilisation `1 − capacity`.
    GrpcWrr(GrpcWrr),
}

/// The gRPC weighted-round-robin law's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrpcWrr {
    /// `error_utilization_penalty`: how much an error per query counts as utilisation.
    pub error_penalty: f64,
    /// IPVS weight units per query/s of estimated capacity (`qps / utilization`).
    pub weight_per_qps: f64,
}

impl Default for GrpcWrr {
    fn default() -> Self {
        GrpcWrr { error_penalty: 1.0, weight_per_qps: 1.0 }
    }
}

impl Default for LawConfig {
    fn default() -> Self {
        LawConfig {
            min_weight: 1,
            max_weight: 100,
            smoothing: 0.5,
            dead_band: 2,
            max_step: 25,
            slow_start: Duration::from_secs(10),
            kind: LawKind::Capacity,
        }
    }
}

impl LawConfig {
    /// Checks the parameters; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_weight == 0 || self.max_weight > 65535 {
            return Err(format!("max_weight {} is not between 1 and 65535", self.max_weight));
        }
        if self.min_weight > self.max_weight {
            return Err(format!("min_weight {} is above max_weight {}", self.min_weight, self.max_weight));
        }
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(format!("smoothing {} is not in (0, 1]", self.smoothing));
        }
        if self.dead_band > self.max_weight {
            return Err(format!("dead_band {} is above max_weight {}", self.dead_band, self.max_weight));
        }
        Ok(())
    }
}

/// What held an update back from its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Nothing: the weight is the target.
    None,
    /// The change was within the dead-band, so the weight stayed.
    DeadBand,
    /// The change was cut to `max_step`.
    Step,
    /// The slow-start ceiling capped the target.
    SlowStart,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::None => "none",
            Limit::DeadBand => "dead-band",
            Limit::Step => "max step",
            Limit::SlowStart => "slow start",
        })
    }
}

/// The outcome of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The weight before.
    pub from: u32,
    /// The weight after (equal to `from` when nothing changes).
    pub to: u32,
    /// The weight the smoothed capacity maps to (after the slow-start cap).
    pub target: u32,
    /// The reported capacity, clamped to [0, 1].
    pub capacity: f64,
    /// The smoothed capacity.
    pub smoothed: f64,
    /// What held the weight back from the unsmoothed target, if anything.
    pub limit: Limit,
}

impl Update {
    /// Whether the weight changes.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// One real server's law state.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLaw {
    weight: u32,
    smoothed: Option<f64>,
    /// When the current slow start began; `None` when the server is not in one.
    slow_start_from: Option<Time>,
}

impl ServerLaw {
    /// A server new to the table: it starts at `min_weight` and ramps up (slow start).
    pub fn new(now: Time, cfg: &LawConfig) -> ServerLaw {
        ServerLaw { weight: cfg.min_weight, smoothed: None, slow_start_from: Some(now) }
    }

    /// A server already serving at `weight` (adopted from the kernel's table): no slow start.
    pub fn adopt(weight: u32) -> ServerLaw {
        ServerLaw { weight, smoothed: None, slow_start_from: None }
    }

    /// The current weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The smoothed capacity, once a report has arrived.
    pub fn smoothed(&self) -> Option<f64> {
        self.smoothed
    }

    /// Whether the server is still ramping up at `now`.
    pub fn in_slow_start(&self, now: Time, cfg: &LawConfig) -> bool {
        self.slow_start_from.is_some_and(|t0| now.saturating_since(t0) < cfg.slow_start)
    }

    /// Sets the weight outside the law (drain, maintenance, a silent agent: 0).
    pub fn force(&mut self, weight: u32) {
        self.weight = weight;
    }

    /// A quiesced server comes back: it restarts at `min_weight` with a slow start and
    /// forgets its old smoothed capacity.
    pub fn restart(&mut self, now: Time, cfg: &LawConfig) {
        *self = ServerLaw::new(now, cfg);
    }

    /// Feeds one report of spare `capacity` (1 = idle) at `now`.
    pub fn update(&mut self, cfg: &LawConfig, now: Time, capacity: f64) -> Update {
        let capacity = if capacity.is_nan() { 0.0 } else { capacity.clamp(0.0, 1.0) };
        let smoothed = match self.smoothed {
            None => capacity,
            Some(prev) => cfg.smoothing * capacity + (1.0 - cfg.smoothing) * prev,
        }
        .clamp(0.0, 1.0);
        self.smoothed = Some(smoothed);
        let (lo, hi) = (cfg.min_weight, cfg.max_weight);
        let span = f64::from(hi - lo);
        let mut target = lo + (span * smoothed).round() as u32;
        let mut limit = Limit::None;
        if let Some(t0) = self.slow_start_from {
            let elapsed = now.saturating_since(t0);
            if elapsed >= cfg.slow_start {
                self.slow_start_from = None;
            } else {
                let frac = elapsed.as_nanos() as f64 / cfg.slow_start.as_nanos() as f64;
                let ceiling = lo + (span * frac).floor() as u32;
                if target > ceiling {
                    target = ceiling;
                    limit = Limit::SlowStart;
                }
            }
        }
        let from = self.weight;
        let diff = target.abs_diff(from);
        let to = if diff == 0 {
            from
        } else if diff < cfg.dead_band && target != lo && target != hi {
            limit = Limit::DeadBand;
            from
        } else if cfg.max_step > 0 && diff > cfg.max_step {
            limit = Limit::Step;
            if target > from { from + cfg.max_step } else { from - cfg.max_step }
        } else {
            target
        };
        self.weight = to;
        Update { from, to, target, capacity, smoothed, limit }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cfg() -> LawConfig {
        LawConfig { slow_start: Duration::ZERO, ..LawConfig::default() }
    }

    #[test]
    fn idle_and_saturated_servers_reach_the_clamps() {
        let c = LawConfig { max_step: 0, ..cfg() };
        let mut law = ServerLaw::adopt(50);
        assert_eq!(law.update(&c, Time(0), 1.0).to, 100);
        let mut law = ServerLaw::adopt(50);
        assert_eq!(law.update(&c, Time(0), 0.0).to, 1);
        assert_eq!(law.update(&c, Time(0), f64::NAN).to, 1, "NaN counts as no capacity");
    }

    #[test]
    fn smoothing_is_an_exponential_moving_average() {
        let c = LawConfig { max_step: 0, dead_band: 0, min_weight: 0, ..cfg() };
        let mut law = ServerLaw::adopt(0);
        law.update(&c, Time(0), 1.0);
        let u = law.update(&c, Time(0), 0.0);
        assert_eq!(u.smoothed, 0.5);
        assert_eq!(u.to, 50);
        let u = law.update(&c, Time(0), 0.0);
        assert_eq!(u.smoothed, 0.25);
        assert_eq!(u.to, 25);
    }

    #[test]
    fn dead_band_holds_small_changes_but_not_the_clamps() {
        let c = LawConfig { dead_band: 5, max_step: 0, smoothing: 1.0, ..cfg() };
        let mut law = ServerLaw::adopt(50);
        let u = law.update(&c, Time(0), 0.52);
        assert_eq!((u.to, u.limit), (50, Limit::DeadBand));
        let mut law = ServerLaw::adopt(98);
        assert_eq!(law.update(&c, Time(0), 1.0).to, 100, "the clamp is always reachable");
    }

    #[test]
    fn max_step_limits_each_update() {
        let c = LawConfig { max_step: 10, smoothing: 1.0, ..cfg() };
        let mut law = ServerLaw::adopt(100);
        let u = law.update(&c, Time(0), 0.0);
        assert_eq!((u.to, u.limit, u.target), (90, Limit::Step, 1));
        assert_eq!(law.update(&c, Time(0), 0.0).to, 80);
    }

    #[test]
    fn slow_start_ramps_the_ceiling_linearly() {
        let c = LawConfig {
            slow_start: Duration::from_secs(10),
            max_step: 0,
            smoothing: 1.0,
            dead_band: 0,
            ..LawConfig::default()
        };
        let mut law = ServerLaw::new(Time(0), &c);
        assert_eq!(law.weight(), 1);
        let u = law.update(&c, Time(0) + Duration::from_secs(5), 1.0);
        assert_eq!((u.to, u.limit), (1 + 49, Limit::SlowStart));
        assert!(law.in_slow_start(Time(0) + Duration::from_secs(5), &c));
        let u = law.update(&c, Time(0) + Duration::from_secs(10), 1.0);
        assert_eq!((u.to, u.limit), (100, Limit::None));
        assert!(!law.in_slow_start(Time(0) + Duration::from_secs(10), &c));
    }

    #[test]
    fn validate_names_the_bad_parameter() {
        let bad = LawConfig { min_weight: 5, max_weight: 4, ..cfg() };
        assert!(bad.validate().unwrap_err().contains("min_weight"));
        let bad = LawConfig { smoothing: 0.0, ..cfg() };
        assert!(bad.validate().unwrap_err().contains("smoothing"));
        let bad = LawConfig { max_weight: 70000, ..cfg() };
        assert!(bad.validate().unwrap_err().contains("65535"));
        assert!(LawConfig::default().validate().is_ok());
    }

    fn any_cfg() -> impl Strategy<Value = LawConfig> {
        (0u32..50, 1u32..200, 1u32..=100, 0u32..10, 0u32..40, 0u64..20).prop_map(
            |(min, extra, alpha, dead_band, max_step, ss)| LawConfig {
                min_weight: min,
                max_weight: min + extra,
                smoothing: f64::from(alpha) / 100.0,
                dead_band,
                max_step,
                slow_start: Duration::from_secs(ss),
            },
        )
    }

    proptest! {
        #[test]
        fn weights_stay_in_the_clamps_and_steps_are_bounded(
            c in any_cfg(),
            start in 0u32..300,
            reports in proptest::collection::vec((0.0f64..=1.0, 0u64..3_000), 1..40),
        ) {
            let mut law = ServerLaw::adopt(start.clamp(c.min_weight, c.max_weight));
            let mut now = Time(0);
            for (cap, dt) in reports {
                now += Duration::from_millis(dt);
                let u = law.update(&c, now, cap);
                prop_assert!(u.to >= c.min_weight && u.to <= c.max_weight, "{u:?} {c:?}");
                if c.max_step > 0 {
                    prop_assert!(u.to.abs_diff(u.from) <= c.max_step);
                }
                if u.changed() && u.to != c.min_weight && u.to != c.max_weight {
                    prop_assert!(u.to.abs_diff(u.from) >= c.dead_band.min(c.max_step.max(1)));
                }
            }
        }

        #[test]
        fn less_capacity_never_gives_a_higher_weight(
            c in any_cfg(),
            history in proptest::collection::vec(0.0f64..=1.0, 0..10),
            a in 0.0f64..=1.0,
            b in 0.0f64..=1.0,
            at_s in 0u64..30,
        ) {
            let mut law = ServerLaw::new(Time(0), &c);
            for (i, cap) in history.iter().enumerate() {
                law.update(&c, Time(0) + Duration::from_millis(i as u64 * 500), *cap);
            }
            let now = Time(0) + Duration::from_secs(at_s);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let w_lo = law.clone().update(&c, now, lo).to;
            let w_hi = law.clone().update(&c, now, hi).to;
            prop_assert!(w_lo <= w_hi, "capacity {lo} gave {w_lo}, capacity {hi} gave {w_hi}");
        }
    }
}
