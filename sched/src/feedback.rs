//! The feedback weight laws: turn what an agent reports into an IPVS weight.
//!
//! One [`ServerLaw`] per real server, driven by `feedbackd-master` (wall time) and by the
//! simulator (virtual time) through the same [`ServerLaw::update_signal`] (or
//! [`ServerLaw::update`], a report of capacity alone). [`LawConfig::kind`] picks how the
//! target weight is computed; the steps after it are the same for both laws.
//!
//! **Capacity** ([`LawKind::Capacity`], the default, feedbackd's): from the reported spare
//! capacity `c` in [0, 1] (1 = idle),
//!
//! 1. smoothing with an exponential moving average: `s = α·c + (1 − α)·s_prev`
//!    ([`LawConfig::smoothing`] is α; 1 = none);
//! 2. target: `min + (max − min)·s`, rounded.
//!
//! **gRPC weighted round robin** ([`LawKind::GrpcWrr`], gRFC A58 "Client-side weighted
//! round robin LB policy"): from the report's queries/s `qps`, errors/s `eps` and the
//! utilisation `u = 1 − c`,
//!
//! 1. estimate: `r = qps / (u + eps/qps × error_penalty)` [queries/s at full utilisation],
//!    smoothed by the same moving average: `s = α·r + (1 − α)·s_prev`;
//! 2. target: `s × weight_per_qps`, rounded and clamped to `[min, max]`.
//!
//!    Without a usable signal (`qps` missing, zero or not finite, or `u = 0`) there is no
//!    target and the weight stays as it is: gRPC gives such a backend the mean weight of
//!    the others, but an IPVS weight belongs to one server, so it keeps its last one.
//!    Errors/s missing, negative or not finite count as 0.
//!
//!    The blackout period and weight expiration of gRFC A58 ([`GrpcWrr::blackout_period`],
//!    [`GrpcWrr::weight_expiration_period`]): a server's weight is usable only once it has
//!    sent usable reports for the blackout period (`non_empty_since`), and stops being
//!    usable when its last usable report (`last_updated`) is older than the expiration
//!    period (then the blackout starts again). A report inside the blackout feeds the
//!    average but leaves the weight; the service-level step ([`ServiceLaw`]) gives a
//!    server without a usable weight the mean weight of those with one, and every server
//!    the same weight when fewer than two have one (gRPC falls back to round robin).
//!
//! **Prequal** ([`LawKind::Prequal`]): a report leaves the weight as it is; the
//! service-level step ([`ServiceLaw`], module `feedback/service.rs`) keeps the service's
//! probe pool and sets the weights of the servers that reported (its module doc has the
//! rule and the mapping to weights).
//!
//! Then, for every law:
//!
//! 3. during a slow start, the target is capped at a ceiling that rises linearly from `min`
//!    to `max` over [`LawConfig::slow_start`] (a new or returning server is not flooded);
//! 4. a change smaller than [`LawConfig::dead_band`] is ignored (no churn from noise: each
//!    kernel SET_DEST resets wrr's position and rebuilds sh/mh tables), except to reach a
//!    clamp;
//! 5. the weight moves at most [`LawConfig::max_step`] per update (no oscillation from one
//!    bad sample).
//!
//! Properties (tested): the weight always stays within `[min, max]`; less capacity never
//! gives a higher weight than more capacity from the same state; under gRPC WRR, more
//! queries/s at the same utilisation never gives a lower weight and more errors/s never a
//! higher one; a step never exceeds `max_step`; a change is never smaller than the
//! dead-band unless it reaches a clamp.

use core::fmt;

use crate::time::{Duration, Time};

mod service;
pub use service::{MeanInputs, Member, PrequalInputs, Probe, ProbePool, ServiceLaw};

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
    /// Prequal (Wydrowski et al., NSDI 2024): requests in flight and latency from a pool
    /// of recent probes; cold servers (requests in flight below the pool's quantile)
    /// preferred by lower latency.
    Prequal(Prequal),
}

/// The Prequal law's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prequal {
    /// Probes the pool holds (the oldest leaves first).
    pub pool_size: u32,
    /// A probe older than this leaves the pool.
    pub max_age: Duration,
    /// The hot-cold threshold: a server is hot when its requests in flight exceed this
    /// quantile of the pool's (Prequal's `Q_RIF`), in [0, 1].
    pub q_rif: f64,
}

impl Default for Prequal {
    fn default() -> Self {
        Prequal { pool_size: 16, max_age: Duration::from_secs(5), q_rif: 0.84 }
    }
}

/// The gRPC weighted-round-robin law's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrpcWrr {
    /// `error_utilization_penalty`: how much an error per query counts as utilisation.
    pub error_penalty: f64,
    /// IPVS weight units per query/s of estimated capacity (`qps / utilization`).
    pub weight_per_qps: f64,
    /// `blackout_period`: a server's reports are used only once it has reported for this
    /// long without a gap (gRFC A58 default 10 s; 0: none).
    pub blackout_period: Duration,
    /// `weight_expiration_period`: a server with no report for this long has no weight
    /// any more, and its blackout starts again (gRFC A58 default 3 min).
    pub weight_expiration_period: Duration,
}

impl GrpcWrr {
    /// Checks the parameters; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.error_penalty.is_finite() && self.error_penalty >= 0.0) {
            return Err(format!("error_penalty {} is not a finite number ≥ 0", self.error_penalty));
        }
        if !(self.weight_per_qps.is_finite() && self.weight_per_qps > 0.0) {
            return Err(format!("weight_per_qps {} is not a finite number > 0", self.weight_per_qps));
        }
        if self.weight_expiration_period == Duration::ZERO {
            // gRFC A58: `now − last_updated ≥ 0` always: no weight would ever be usable.
            return Err("weight_expiration_period is 0: no weight would ever be usable".into());
        }
        Ok(())
    }
}

impl Prequal {
    /// The largest pool accepted (the step sorts the pool on every report).
    pub const MAX_POOL_SIZE: u32 = 4096;

    /// Checks the parameters; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.pool_size == 0 || self.pool_size > Self::MAX_POOL_SIZE {
            return Err(format!("pool_size {} is not between 1 and {}", self.pool_size, Self::MAX_POOL_SIZE));
        }
        if self.max_age == Duration::ZERO {
            return Err("max_age is 0: every probe would leave the pool at once".into());
        }
        if !(0.0..=1.0).contains(&self.q_rif) {
            return Err(format!("q_rif {} is not in [0, 1]", self.q_rif));
        }
        Ok(())
    }
}

impl Default for GrpcWrr {
    fn default() -> Self {
        GrpcWrr {
            error_penalty: 1.0,
            weight_per_qps: 1.0,
            blackout_period: Duration::from_secs(10),
            weight_expiration_period: Duration::from_secs(180),
        }
    }
}

impl Default for LawConfig {
    fn default() -> Self {
        LawConfig {
            min_weight: 1,
            max_weight: 100,
            // Chosen with scenarios/library/feedback/stability.ron (docs/feedbackd.md).
            smoothing: 0.2,
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
        match self.kind {
            LawKind::Capacity => Ok(()),
            LawKind::GrpcWrr(g) => g.validate(),
            LawKind::Prequal(q) => q.validate(),
        }
    }
}

/// One report's inputs to the law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signal {
    /// Spare capacity (1 = idle, 0 = saturated; clamped to [0, 1], NaN counts as 0). gRPC
    /// WRR's utilisation is `1 − capacity`.
    pub capacity: f64,
    /// Queries served [queries/s]; used by gRPC WRR only.
    pub qps: Option<f64>,
    /// Errors [errors/s]; used by gRPC WRR only, missing counts as 0.
    pub eps: Option<f64>,
    /// Requests in flight on the server (metric `rif`); used by Prequal.
    pub rif: Option<f64>,
    /// Recent latency of the server's requests [s] (metric `latency_ms` / 1000); used by
    /// Prequal.
    pub latency: Option<f64>,
}

impl Signal {
    /// A report of spare capacity alone.
    pub fn capacity(capacity: f64) -> Signal {
        Signal { capacity, qps: None, eps: None, rif: None, latency: None }
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

/// Which law produced an [`Update`], with that law's own inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LawInputs {
    /// The capacity law: [`Update::capacity`] and [`Update::smoothed`] say it all.
    Capacity,
    /// The gRPC weighted-round-robin law.
    GrpcWrr(GrpcInputs),
    /// Prequal's service-level step: the server's probe and how it was classified.
    Prequal(PrequalInputs),
    /// The service-level step gave the server the mean weight of those with a usable one
    /// (a gRPC WRR server in its blackout or with an expired weight; a Prequal server
    /// with no probe in the pool).
    Mean(MeanInputs),
}

/// The gRPC weighted-round-robin law's inputs and estimate for one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrpcInputs {
    /// The reported queries/s, as reported (`None`: not reported).
    pub qps: Option<f64>,
    /// The errors/s used (0 when missing, negative or not finite).
    pub eps: f64,
    /// `1 − capacity`, in [0, 1].
    pub utilization: f64,
    /// This report's estimate `qps / (utilization + eps/qps × error_penalty)` [queries/s];
    /// `None` when the signal is not usable (`qps` missing, zero or not finite, or
    /// utilisation 0): then the weight stays as it is.
    pub estimate: Option<f64>,
    /// The estimate was usable but the server is in its blackout period (gRFC A58): the
    /// weight stays, and the service-level step gives it the mean weight.
    pub blackout: bool,
}

/// The outcome of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The weight before.
    pub from: u32,
    /// The weight after (equal to `from` when nothing changes).
    pub to: u32,
    /// The weight the smoothed value maps to (after the slow-start cap); `from` when a
    /// gRPC WRR report had no usable signal.
    pub target: u32,
    /// The reported capacity, clamped to [0, 1] (0 for an update of the service-level step,
    /// which has no report of its own).
    pub capacity: f64,
    /// The smoothed value: the capacity (capacity law), or the estimate [queries/s] (gRPC
    /// WRR; without a usable signal the previous one, 0 before any).
    pub smoothed: f64,
    /// What held the weight back from the unsmoothed target, if anything.
    pub limit: Limit,
    /// Which law produced this update, and its inputs.
    pub law: LawInputs,
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
    /// The smoothed capacity or gRPC estimate, once a usable report has arrived.
    smoothed: Option<f64>,
    /// When the current slow start began; `None` when the server is not in one.
    slow_start_from: Option<Time>,
    /// gRPC WRR: since when the server has sent usable reports (gRFC A58's
    /// `non_empty_since`); `None`: not since its last start or expiry.
    non_empty_since: Option<Time>,
    /// gRPC WRR: its last usable report (gRFC A58's `last_updated`).
    last_updated: Option<Time>,
    /// gRPC WRR: the weight is the server's own (set by its law at a report after its
    /// blackout), not one the service-level step gave it.
    own: bool,
}

impl ServerLaw {
    /// A server new to the table: it starts at `min_weight` and ramps up (slow start).
    pub fn new(now: Time, cfg: &LawConfig) -> ServerLaw {
        ServerLaw {
            weight: cfg.min_weight,
            smoothed: None,
            slow_start_from: Some(now),
            non_empty_since: None,
            last_updated: None,
            own: false,
        }
    }

    /// A server already serving at `weight` (adopted from the kernel's table): no slow start.
    pub fn adopt(weight: u32) -> ServerLaw {
        ServerLaw {
            weight,
            smoothed: None,
            slow_start_from: None,
            non_empty_since: None,
            last_updated: None,
            own: false,
        }
    }

    /// The current weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The smoothed value, once a usable report has arrived: the capacity (capacity law)
    /// or the estimate [queries/s] (gRPC WRR).
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
        self.own = false;
    }

    /// A quiesced server comes back: it restarts at `min_weight` with a slow start and
    /// forgets its old smoothed value.
    pub fn restart(&mut self, now: Time, cfg: &LawConfig) {
        *self = ServerLaw::new(now, cfg);
    }

    /// Feeds one report of spare `capacity` (1 = idle) at `now`: [`ServerLaw::update_signal`]
    /// without queries/s or errors/s (so under gRPC WRR the weight stays).
    pub fn update(&mut self, cfg: &LawConfig, now: Time, capacity: f64) -> Update {
        self.update_signal(cfg, now, Signal::capacity(capacity))
    }

    /// Feeds one report at `now` to the law `cfg.kind` names.
    pub fn update_signal(&mut self, cfg: &LawConfig, now: Time, signal: Signal) -> Update {
        let capacity = if signal.capacity.is_nan() { 0.0 } else { signal.capacity.clamp(0.0, 1.0) };
        let (lo, hi) = (cfg.min_weight, cfg.max_weight);
        let (smoothed, target, law) = match cfg.kind {
            LawKind::Capacity => {
                let smoothed = ewma(cfg.smoothing, self.smoothed, capacity).clamp(0.0, 1.0);
                let target = lo + (f64::from(hi - lo) * smoothed).round() as u32;
                (smoothed, target, LawInputs::Capacity)
            }
            LawKind::GrpcWrr(g) => {
                let mut inputs = grpc_inputs(g, capacity, signal);
                let Some(estimate) = inputs.estimate else {
                    return self.unchanged(capacity, LawInputs::GrpcWrr(inputs));
                };
                let smoothed = ewma(cfg.smoothing, self.smoothed, estimate);
                if self.grpc_report(g, now) {
                    self.smoothed = Some(smoothed);
                    inputs.blackout = true;
                    return self.unchanged(capacity, LawInputs::GrpcWrr(inputs));
                }
                // Clamped as a float: a large estimate must not wrap in the cast.
                let target = (smoothed * g.weight_per_qps).round().clamp(f64::from(lo), f64::from(hi)) as u32;
                self.own = true;
                (smoothed, target, LawInputs::GrpcWrr(inputs))
            }
            LawKind::Prequal(_) => {
                // Prequal's target depends on every server's probes: the service's pool
                // sets it (`ServiceLaw::step`); a report alone leaves the weight as it is.
                return self.unchanged(capacity, LawInputs::Capacity);
            }
        };
        self.smoothed = Some(smoothed);
        let from = self.weight;
        let (target, to, limit) = self.settle(cfg, now, target);
        Update { from, to, target, capacity, smoothed, limit, law }
    }

    /// An update that leaves the weight as it is.
    fn unchanged(&self, capacity: f64, law: LawInputs) -> Update {
        let w = self.weight;
        let smoothed = self.smoothed.unwrap_or(0.0);
        Update { from: w, to: w, target: w, capacity, smoothed, limit: Limit::None, law }
    }

    /// gRFC A58's `UpdateWeight` bookkeeping for a usable report at `now`: an expired
    /// weight starts a new blackout, the first usable report starts `non_empty_since`.
    /// Returns whether the server is still in its blackout.
    fn grpc_report(&mut self, g: GrpcWrr, now: Time) -> bool {
        if self.last_updated.is_some_and(|t| now.saturating_since(t) >= g.weight_expiration_period) {
            self.non_empty_since = None;
        }
        let since = *self.non_empty_since.get_or_insert(now);
        self.last_updated = Some(now);
        g.blackout_period > Duration::ZERO && now.saturating_since(since) < g.blackout_period
    }

    /// gRFC A58's `GetWeight`: whether the server's own weight is usable at `now` (it has
    /// reported usable figures for the blackout period, and not longer ago than the
    /// expiration period). An expired weight starts a new blackout at the next usable
    /// report. The weight must also be the server's own: one its law set at a report
    /// after the blackout (gRPC re-reads weights every `weight_update_period`, 1 s; here a
    /// weight becomes usable at the server's first report after its blackout).
    pub fn grpc_usable(&mut self, g: &GrpcWrr, now: Time) -> bool {
        let Some(last) = self.last_updated else { return false };
        if now.saturating_since(last) >= g.weight_expiration_period {
            self.non_empty_since = None;
            return false;
        }
        let Some(since) = self.non_empty_since else { return false };
        self.own && (g.blackout_period == Duration::ZERO || now.saturating_since(since) >= g.blackout_period)
    }

    /// Steps 3 to 5, the same for every law: the slow-start ceiling, the dead-band and the
    /// step limit take the weight towards `target`. Returns the capped target, the new
    /// weight and what held it back.
    fn settle(&mut self, cfg: &LawConfig, now: Time, mut target: u32) -> (u32, u32, Limit) {
        let (lo, hi) = (cfg.min_weight, cfg.max_weight);
        let mut limit = Limit::None;
        if let Some(t0) = self.slow_start_from {
            let elapsed = now.saturating_since(t0);
            if elapsed >= cfg.slow_start {
                self.slow_start_from = None;
            } else {
                let frac = elapsed.as_nanos() as f64 / cfg.slow_start.as_nanos() as f64;
                let ceiling = lo + (f64::from(hi - lo) * frac).floor() as u32;
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
        (target, to, limit)
    }
}

/// The exponential moving average's next value: `α·x + (1 − α)·prev`, or `x` at first.
fn ewma(alpha: f64, prev: Option<f64>, x: f64) -> f64 {
    match prev {
        None => x,
        Some(prev) => alpha * x + (1.0 - alpha) * prev,
    }
}

/// gRFC A58's weight, `qps / (utilization + eps/qps × error_utilization_penalty)`, from a
/// report; `estimate` is `None` when the report has no usable signal.
fn grpc_inputs(g: GrpcWrr, capacity: f64, signal: Signal) -> GrpcInputs {
    let utilization = 1.0 - capacity;
    let eps = signal.eps.filter(|e| e.is_finite() && *e > 0.0).unwrap_or(0.0);
    let estimate = signal
        .qps
        .filter(|&q| q.is_finite() && q > 0.0 && utilization > 0.0)
        .map(|q| q / (utilization + eps / q * g.error_penalty))
        // A tiny utilisation can overflow the estimate; infinity would stick in the average.
        .filter(|r| r.is_finite());
    GrpcInputs { qps: signal.qps, eps, utilization, estimate, blackout: false }
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
        let c = LawConfig { max_step: 0, dead_band: 0, min_weight: 0, smoothing: 0.5, ..cfg() };
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

    fn grpc(error_penalty: f64, weight_per_qps: f64) -> LawConfig {
        LawConfig {
            max_weight: 1000,
            smoothing: 1.0,
            dead_band: 0,
            max_step: 0,
            kind: LawKind::GrpcWrr(GrpcWrr {
                error_penalty,
                weight_per_qps,
                blackout_period: Duration::ZERO,
                ..GrpcWrr::default()
            }),
            ..cfg()
        }
    }

    fn qps(capacity: f64, qps: f64, eps: f64) -> Signal {
        Signal { capacity, qps: Some(qps), eps: Some(eps), rif: None, latency: None }
    }

    fn estimate(u: &Update) -> Option<f64> {
        match u.law {
            LawInputs::GrpcWrr(g) => g.estimate,
            _ => panic!("not gRPC: {u:?}"),
        }
    }

    #[test]
    fn grpc_weight_is_qps_over_utilisation_plus_the_error_penalty() {
        let c = grpc(1.0, 1.0);
        // 120 q/s at 60 % utilisation: 120 / 0.6 = 200 q/s at full utilisation.
        let mut law = ServerLaw::adopt(50);
        let u = law.update_signal(&c, Time(0), qps(0.4, 120.0, 0.0));
        assert_eq!((u.from, u.to, u.target, u.limit), (50, 200, 200, Limit::None));
        assert!((estimate(&u).unwrap() - 200.0).abs() < 1e-9, "{u:?}");
        match u.law {
            LawInputs::GrpcWrr(g) => {
                assert_eq!(g.qps, Some(120.0));
                assert_eq!(g.eps, 0.0);
                assert!((g.utilization - 0.6).abs() < 1e-12);
            }
            _ => unreachable!(),
        }
        // 100 q/s, 10 errors/s, 50 %: 100 / (0.5 + 10/100 × 1) = 100 / 0.6 = 166.67 → 167.
        assert_eq!(law.update_signal(&c, Time(0), qps(0.5, 100.0, 10.0)).to, 167);
        // The same with the penalty at 3: 100 / (0.5 + 0.3) = 125.
        assert_eq!(
            ServerLaw::adopt(50).update_signal(&grpc(3.0, 1.0), Time(0), qps(0.5, 100.0, 10.0)).to,
            125
        );
        // Penalty 0 ignores errors: 100 / 0.5 = 200, at 0.25 weight per q/s: 50.
        assert_eq!(
            ServerLaw::adopt(1).update_signal(&grpc(0.0, 0.25), Time(0), qps(0.5, 100.0, 10.0)).to,
            50
        );
    }

    #[test]
    fn grpc_estimates_are_smoothed_then_clamped() {
        let c = LawConfig { smoothing: 0.5, ..grpc(1.0, 1.0) };
        let mut law = ServerLaw::adopt(1);
        assert_eq!(law.update_signal(&c, Time(0), qps(0.4, 120.0, 0.0)).to, 200);
        // 72 q/s at 60 %: 120; smoothed (120 + 200) / 2 = 160.
        let u = law.update_signal(&c, Time(0), qps(0.4, 72.0, 0.0));
        assert!((u.smoothed - 160.0).abs() < 1e-9, "{u:?}");
        assert_eq!(u.to, 160);
        assert!((law.smoothed().unwrap() - 160.0).abs() < 1e-9);
        // Above max_weight and below min_weight: the clamps.
        let c = LawConfig { max_weight: 100, min_weight: 5, ..grpc(1.0, 1.0) };
        assert_eq!(ServerLaw::adopt(50).update_signal(&c, Time(0), qps(0.4, 120.0, 0.0)).to, 100);
        assert_eq!(ServerLaw::adopt(50).update_signal(&c, Time(0), qps(0.0, 1.0, 0.0)).to, 5);
    }

    #[test]
    fn grpc_without_a_usable_signal_keeps_the_weight() {
        let c = grpc(1.0, 1.0);
        let mut law = ServerLaw::adopt(40);
        law.update_signal(&c, Time(0), qps(0.5, 30.0, 0.0));
        assert_eq!(law.weight(), 60);
        let none = [
            Signal::capacity(0.5),
            qps(0.5, 0.0, 0.0),
            qps(0.5, f64::NAN, 0.0),
            qps(0.5, f64::INFINITY, 0.0),
            qps(1.0, 30.0, 0.0), // idle: utilisation 0
        ];
        for s in none {
            let u = law.update_signal(&c, Time(0), s);
            assert_eq!((u.from, u.to, u.target, u.limit), (60, 60, 60, Limit::None), "{s:?}");
            assert_eq!(estimate(&u), None, "{s:?}");
            assert!((u.smoothed - 60.0).abs() < 1e-9, "the previous estimate: {u:?}");
        }
        assert_eq!(law.update(&c, Time(0), 0.2).to, 60, "a capacity alone is no gRPC signal");
        assert!((law.smoothed().unwrap() - 60.0).abs() < 1e-9, "the average is untouched");
        // Errors/s missing, negative or NaN count as 0.
        for eps in [None, Some(-3.0), Some(f64::NAN)] {
            let u = ServerLaw::adopt(1).update_signal(&c, Time(0), Signal { eps, ..qps(0.5, 30.0, 0.0) });
            assert_eq!(u.to, 60, "{eps:?}");
        }
    }

    #[test]
    fn grpc_shares_slow_start_dead_band_and_step_with_the_capacity_law() {
        let c = LawConfig { max_step: 30, ..grpc(1.0, 1.0) };
        let u = ServerLaw::adopt(100).update_signal(&c, Time(0), qps(0.5, 100.0, 0.0));
        assert_eq!((u.to, u.target, u.limit), (130, 200, Limit::Step));
        let c = LawConfig { dead_band: 5, ..grpc(1.0, 1.0) };
        let u = ServerLaw::adopt(198).update_signal(&c, Time(0), qps(0.5, 100.0, 0.0));
        assert_eq!((u.to, u.limit), (198, Limit::DeadBand));
        // Slow start over 10 s: at 5 s the ceiling is 1 + 999 / 2 = 500.
        let c = LawConfig { slow_start: Duration::from_secs(10), ..grpc(1.0, 1.0) };
        let mut law = ServerLaw::new(Time(0), &c);
        let u = law.update_signal(&c, Time(0) + Duration::from_secs(5), qps(0.2, 800.0, 0.0));
        assert_eq!((u.to, u.target, u.limit), (500, 500, Limit::SlowStart));
    }

    #[test]
    fn the_capacity_law_ignores_qps_and_says_so() {
        let c = LawConfig { max_step: 0, ..cfg() };
        let a = ServerLaw::adopt(50).update(&c, Time(0), 0.3);
        let b = ServerLaw::adopt(50).update_signal(&c, Time(0), qps(0.3, 500.0, 7.0));
        assert_eq!(a, b);
        assert_eq!(a.law, LawInputs::Capacity);
    }

    #[test]
    fn validate_checks_the_grpc_parameters() {
        assert!(grpc(1.0, 1.0).validate().is_ok());
        assert!(grpc(0.0, 0.01).validate().is_ok());
        for (penalty, wpq, name) in [
            (-1.0, 1.0, "error_penalty"),
            (f64::NAN, 1.0, "error_penalty"),
            (f64::INFINITY, 1.0, "error_penalty"),
            (1.0, 0.0, "weight_per_qps"),
            (1.0, -2.0, "weight_per_qps"),
            (1.0, f64::INFINITY, "weight_per_qps"),
        ] {
            let e = grpc(penalty, wpq).validate().unwrap_err();
            assert!(e.contains(name), "{penalty} {wpq}: {e}");
        }
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
                kind: LawKind::Capacity,
            },
        )
    }

    /// Any configuration, with the gRPC law; weights up to 1000 so that estimates of a few
    /// hundred queries/s land inside the range as well as on the clamps.
    fn any_grpc_cfg() -> impl Strategy<Value = LawConfig> {
        (any_cfg(), 0u32..800, 0.0f64..4.0, 0.05f64..5.0).prop_map(|(c, extra, error_penalty, wpq)| {
            LawConfig {
                max_weight: c.max_weight + extra,
                kind: LawKind::GrpcWrr(GrpcWrr {
                    error_penalty,
                    weight_per_qps: wpq,
                    blackout_period: Duration::ZERO,
                    ..GrpcWrr::default()
                }),
                ..c
            }
        })
    }

    /// A usable gRPC report: (capacity < 1, qps > 0, eps).
    fn any_grpc_signal() -> impl Strategy<Value = Signal> {
        (0.0f64..0.999, 0.01f64..2000.0, 0.0f64..200.0).prop_map(|(capacity, qps, eps)| Signal {
            rif: None,
            latency: None,
            capacity,
            qps: Some(qps),
            eps: Some(eps),
        })
    }

    /// A gRPC law after `history`, at `at_s`.
    fn grpc_law_after(c: &LawConfig, history: &[Signal]) -> ServerLaw {
        let mut law = ServerLaw::new(Time(0), c);
        for (i, s) in history.iter().enumerate() {
            law.update_signal(c, Time(0) + Duration::from_millis(i as u64 * 500), *s);
        }
        law
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

        #[test]
        fn grpc_weights_stay_in_the_clamps_and_steps_are_bounded(
            c in any_grpc_cfg(),
            start in 0u32..2000,
            reports in proptest::collection::vec(
                (any_grpc_signal(), any::<bool>(), 0u64..3_000), 1..40),
        ) {
            let mut law = ServerLaw::adopt(start.clamp(c.min_weight, c.max_weight));
            let mut now = Time(0);
            for (signal, usable, dt) in reports {
                now += Duration::from_millis(dt);
                let signal = if usable { signal } else { Signal { qps: None, ..signal } };
                let u = law.update_signal(&c, now, signal);
                prop_assert!(u.to >= c.min_weight && u.to <= c.max_weight, "{u:?} {c:?}");
                prop_assert!(u.target >= c.min_weight && u.target <= c.max_weight, "{u:?} {c:?}");
                if c.max_step > 0 {
                    prop_assert!(u.to.abs_diff(u.from) <= c.max_step);
                }
                if !usable {
                    prop_assert_eq!(u.to, u.from);
                }
            }
        }

        #[test]
        fn grpc_more_qps_at_the_same_utilisation_never_gives_a_lower_weight(
            c in any_grpc_cfg(),
            history in proptest::collection::vec(any_grpc_signal(), 0..10),
            s in any_grpc_signal(),
            more in 0.0f64..1000.0,
            at_s in 0u64..30,
        ) {
            let law = grpc_law_after(&c, &history);
            let now = Time(0) + Duration::from_secs(at_s);
            let a = law.clone().update_signal(&c, now, s);
            let b = law.clone().update_signal(&c, now, Signal { qps: s.qps.map(|q| q + more), ..s });
            prop_assert!(a.target <= b.target && a.to <= b.to, "{a:?} then {b:?}");
        }

        #[test]
        fn grpc_more_errors_never_give_a_higher_weight(
            c in any_grpc_cfg(),
            history in proptest::collection::vec(any_grpc_signal(), 0..10),
            s in any_grpc_signal(),
            more in 0.0f64..1000.0,
            at_s in 0u64..30,
        ) {
            let law = grpc_law_after(&c, &history);
            let now = Time(0) + Duration::from_secs(at_s);
            let a = law.clone().update_signal(&c, now, s);
            let b = law.clone().update_signal(&c, now, Signal { eps: s.eps.map(|e| e + more), ..s });
            prop_assert!(a.target >= b.target && a.to >= b.to, "{a:?} then {b:?}");
        }
    }
}
