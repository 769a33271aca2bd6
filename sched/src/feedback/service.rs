//! The service-level step: what one server's report cannot decide alone, decided over a
//! virtual service's real servers after the per-server laws ([`ServiceLaw::step`]).
//!
//! The driver (feedbackd-proto's `Master`, for the daemon and the simulator alike) keeps
//! one [`ServiceLaw`] per virtual service, gives it every report's signal
//! ([`ServiceLaw::observe`]), then calls [`ServiceLaw::step`] with the service's eligible
//! real servers (in the table, their agent live and ready, not held by the operator).
//!
//! **gRPC WRR** (gRFC A58, "Subchannel weights" and "EDF scheduler"): a server whose
//! weight is not usable (never reported a usable figure, in its blackout period, or
//! expired, or not yet set by its own law after the blackout: [`ServerLaw::grpc_usable`])
//! gets the mean weight of the servers whose weight is usable; when fewer than two have
//! one, every server gets the same weight (gRPC "behaves the same as round_robin"): the
//! one usable weight, or with none the mean of the current weights.
//!
//! **Prequal** (Wydrowski et al., "Load is not what you should balance: Introducing
//! Prequal", NSDI 2024). Each report's requests in flight `rif` and latency is a probe.
//! The pool ([`ProbePool`]) holds at most `pool_size` probes (the oldest leaves first)
//! and none older than `max_age`. The paper's hot-cold lexicographic rule (HCL): a probe
//! is hot when its `rif` is above the `q_rif` quantile of the pool's `rif` values, cold
//! otherwise; a query goes to the cold probe of lowest latency, or, when every probe is
//! hot, to the hot probe of lowest `rif`. IPVS picks per connection from weights that
//! change once per report, so the rule becomes an order of weights rather than one
//! winner (a winner-take-all weight would send every new connection to one server for a
//! whole report interval: herding, which the paper avoids by probing per query). Each
//! server is judged by its newest probe in the pool:
//!
//! - cold: `max_weight × L_min / L`, where `L` is its latency and `L_min` the lowest
//!   latency among the cold servers (the best cold server gets `max_weight`; a probe
//!   without latency, or of latency 0, counts as the best);
//! - hot: `W_cold × θ / rif`, where `W_cold` is the lowest weight given to a cold server
//!   and `θ` the pool's quantile (a hot server never outweighs a cold one; among the hot,
//!   fewer requests in flight weigh more, as HCL's fallback prefers);
//! - no probe in the pool: the mean weight of the servers with one (as gRPC does).
//!
//! Those raw weights are smoothed and pass the common steps (slow start, dead-band,
//! step limit) of [`ServerLaw`]; a server's weight changes at its own reports (one
//! update per report, as the other laws), a server without a probe at every step.
//!
//! The quantile is the nearest rank: the pool's `rif` values sorted, `θ = v[⌈q·n⌉ − 1]`
//! (`v[0]` for `q = 0`). The pool differs from the paper's in two ways, both because
//! the master learns from reports rather than asking: a probe is not removed when used
//! (every report is one probe, the server's own), and there is no probing rate to tune.
//!
//! Invariants: deterministic (no randomness, no hashing; the pool is a FIFO); the pool
//! never holds more than `pool_size` probes.

use std::collections::VecDeque;

use super::{LawConfig, LawInputs, LawKind, Prequal, ServerLaw, Signal, Update, ewma};
use crate::time::Time;

/// One probe: a report's requests in flight and latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe<K> {
    /// Which server.
    pub key: K,
    /// When it was reported.
    pub t: Time,
    /// Requests in flight (finite, ≥ 0).
    pub rif: f64,
    /// Recent latency [s] (finite, ≥ 0), if reported.
    pub latency: Option<f64>,
}

/// A virtual service's recent probes, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbePool<K> {
    probes: VecDeque<Probe<K>>,
}

impl<K: Copy + PartialEq> ProbePool<K> {
    /// Adds a probe; the oldest leave while more than `pool_size` would be held.
    pub fn push(&mut self, pool_size: u32, probe: Probe<K>) {
        let cap = pool_size.max(1) as usize;
        while self.probes.len() >= cap {
            self.probes.pop_front();
        }
        self.probes.push_back(probe);
    }

    /// Drops the probes older than `max_age` at `now`.
    pub fn expire(&mut self, now: Time, max_age: crate::time::Duration) {
        self.probes.retain(|p| now.saturating_since(p.t) <= max_age);
    }

    /// The probes, oldest first.
    pub fn probes(&self) -> impl Iterator<Item = &Probe<K>> {
        self.probes.iter()
    }

    /// How many probes it holds.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    /// The `q` quantile of the probes' requests in flight (nearest rank), `None` when empty.
    pub fn rif_quantile(&self, q: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.probes.iter().map(|p| p.rif).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }

    /// A server's newest probe.
    pub fn newest(&self, key: K) -> Option<&Probe<K>> {
        self.probes.iter().rev().find(|p| p.key == key)
    }
}

impl<K> Default for ProbePool<K> {
    fn default() -> Self {
        ProbePool { probes: VecDeque::new() }
    }
}

/// One real server taking part in a step.
#[derive(Debug)]
pub struct Member<'a, K> {
    /// Which.
    pub key: K,
    /// Its law state (the step may move its weight).
    pub law: &'a mut ServerLaw,
    /// Whether it has just reported (Prequal moves a server's weight at its reports).
    pub reported: bool,
}

/// Prequal's view of one server at a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrequalInputs {
    /// Its newest probe's requests in flight.
    pub rif: f64,
    /// Its newest probe's latency [s], if reported.
    pub latency: Option<f64>,
    /// The pool's `q_rif` quantile of requests in flight.
    pub threshold: f64,
    /// Whether it is hot (`rif > threshold`).
    pub hot: bool,
    /// Probes in the pool.
    pub probes: u32,
    /// The weight HCL's order gives it, before smoothing and rounding.
    pub raw: f64,
}

/// A server given the mean weight at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeanInputs {
    /// How many servers the mean is over (0: none has a usable weight, and the mean is of
    /// the current weights; 1: fewer than two, every server gets that one's weight).
    pub servers: u32,
    /// The mean, rounded and clamped to the law's range.
    pub mean: u32,
}

/// A virtual service's state for the service-level step.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceLaw<K> {
    pool: ProbePool<K>,
}

impl<K> Default for ServiceLaw<K> {
    fn default() -> Self {
        ServiceLaw { pool: ProbePool::default() }
    }
}

impl<K: Copy + PartialEq> ServiceLaw<K> {
    /// Its probe pool (Prequal).
    pub fn pool(&self) -> &ProbePool<K> {
        &self.pool
    }

    /// A report for server `key` at `now`: under Prequal a probe when it has a finite
    /// `rif` ≥ 0 (a latency not finite or negative counts as not reported).
    pub fn observe(&mut self, cfg: &LawConfig, now: Time, key: K, signal: &Signal) {
        let LawKind::Prequal(q) = cfg.kind else { return };
        let Some(rif) = signal.rif.filter(|r| r.is_finite() && *r >= 0.0) else { return };
        let latency = signal.latency.filter(|l| l.is_finite() && *l >= 0.0);
        self.pool.push(q.pool_size, Probe { key, t: now, rif, latency });
    }

    /// The step after the per-server laws, over the service's eligible `members`: per
    /// member, the update the step made (`None`: left to its own law).
    pub fn step(&mut self, cfg: &LawConfig, now: Time, members: &mut [Member<'_, K>]) -> Vec<Option<Update>> {
        match cfg.kind {
            LawKind::Capacity => vec![None; members.len()],
            LawKind::GrpcWrr(g) => {
                let usable: Vec<bool> = members.iter_mut().map(|m| m.law.grpc_usable(&g, now)).collect();
                let with: Vec<u32> =
                    members.iter().zip(&usable).filter(|(_, u)| **u).map(|(m, _)| m.law.weight()).collect();
                let (mean, servers) = match with.len() {
                    0 => (mean(cfg, members.iter().map(|m| m.law.weight())), 0),
                    n => (mean(cfg, with.iter().copied()), n as u32),
                };
                // With one usable weight every server gets it (the usable one keeps its own).
                let inputs = LawInputs::Mean(MeanInputs { servers, mean });
                let mut out = Vec::with_capacity(members.len());
                for (m, usable) in members.iter_mut().zip(usable) {
                    out.push((!usable).then(|| m.law.step_to(cfg, now, f64::from(mean), None, inputs)));
                }
                out
            }
            LawKind::Prequal(q) => self.prequal_step(cfg, q, now, members),
        }
    }

    fn prequal_step(
        &mut self,
        cfg: &LawConfig,
        q: Prequal,
        now: Time,
        members: &mut [Member<'_, K>],
    ) -> Vec<Option<Update>> {
        self.pool.expire(now, q.max_age);
        let Some(threshold) = self.pool.rif_quantile(q.q_rif) else { return vec![None; members.len()] };
        let probes = self.pool.len() as u32;
        let newest: Vec<Option<Probe<K>>> =
            members.iter().map(|m| self.pool.newest(m.key).copied()).collect();
        let cold = |p: &Probe<K>| p.rif <= threshold;
        let l_min = newest
            .iter()
            .flatten()
            .filter(|p| cold(p))
            .filter_map(|p| p.latency)
            .fold(f64::INFINITY, f64::min);
        let max = f64::from(cfg.max_weight);
        let cold_raw = |p: &Probe<K>| match p.latency {
            // The ratio first: `max × l_min` could overflow for huge (hostile) latencies.
            Some(l) if l > 0.0 && l_min.is_finite() => max * (l_min / l),
            _ => max,
        };
        let w_cold = newest.iter().flatten().filter(|p| cold(p)).map(cold_raw).fold(max, f64::min);
        let mut out = vec![None; members.len()];
        for (i, m) in members.iter_mut().enumerate() {
            let Some(p) = newest[i].filter(|_| m.reported) else { continue };
            let hot = !cold(&p);
            let raw = if hot { w_cold * (threshold / p.rif) } else { cold_raw(&p) };
            // Never above max_weight nor negative, whatever was reported (an infinity
            // would stick in the average).
            let raw = raw.clamp(0.0, max);
            let inputs = PrequalInputs { rif: p.rif, latency: p.latency, threshold, hot, probes, raw };
            let smoothed = ewma(cfg.smoothing, m.law.smoothed, raw);
            out[i] = Some(m.law.step_to(cfg, now, smoothed, Some(smoothed), LawInputs::Prequal(inputs)));
        }
        let probed = members.iter().zip(&newest).filter(|(_, p)| p.is_some());
        let with: Vec<u32> = probed.map(|(m, _)| m.law.weight()).collect();
        if !with.is_empty() {
            let mean = mean(cfg, with.iter().copied());
            let inputs = LawInputs::Mean(MeanInputs { servers: with.len() as u32, mean });
            for (i, m) in members.iter_mut().enumerate().filter(|(i, _)| newest[*i].is_none()) {
                out[i] = Some(m.law.step_to(cfg, now, f64::from(mean), None, inputs));
            }
        }
        out
    }
}

/// The mean of `weights`, rounded and clamped to the law's range (`min_weight` for none).
fn mean(cfg: &LawConfig, weights: impl Iterator<Item = u32>) -> u32 {
    let (sum, n) = weights.fold((0u64, 0u64), |(s, n), w| (s + u64::from(w), n + 1));
    let m = if n == 0 { 0 } else { (sum as f64 / n as f64).round() as u32 };
    m.clamp(cfg.min_weight, cfg.max_weight)
}

impl ServerLaw {
    /// Moves the weight towards `target` (rounded, clamped) through the common steps, for
    /// the service-level step; `smoothed`: the new smoothed value, if the step has one.
    fn step_to(
        &mut self,
        cfg: &LawConfig,
        now: Time,
        target: f64,
        smoothed: Option<f64>,
        law: LawInputs,
    ) -> Update {
        if smoothed.is_some() {
            self.smoothed = smoothed;
        }
        if matches!(law, LawInputs::Mean(_)) {
            self.own = false;
        }
        let target = target.round().clamp(f64::from(cfg.min_weight), f64::from(cfg.max_weight)) as u32;
        let from = self.weight;
        let (target, to, limit) = self.settle(cfg, now, target);
        let smoothed = self.smoothed.unwrap_or(0.0);
        Update { from, to, target, capacity: 0.0, smoothed, limit, law }
    }
}

#[cfg(test)]
mod tests;
