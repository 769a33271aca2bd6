//! Probability distributions for sizes [bytes] and service demands [s of work at speed 1],
//! sampled by inverse transform (or Box–Muller for the normal) so that a value depends
//! only on the generator's output, never on a library's algorithm choice.

use crate::rng::Rng;

/// A distribution of non-negative values; the unit is the caller's.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Always this value.
    Constant(f64),
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: f64,
    },
    /// `exp(mu + sigma * Z)`, Z standard normal.
    LogNormal {
        /// Mean of the underlying normal.
        mu: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
    /// Pareto (type I): `P(X > x) = (scale / x)^shape` for `x >= scale`.
    Pareto {
        /// Tail index α > 0.
        shape: f64,
        /// Minimum value x_m > 0.
        scale: f64,
    },
    /// Pareto truncated to `[low, high]` (Harchol-Balter's bounded Pareto).
    BoundedPareto {
        /// Tail index α > 0.
        shape: f64,
        /// Smallest value > 0.
        low: f64,
        /// Largest value > low.
        high: f64,
    },
    /// A measured distribution: a piecewise-linear CDF.
    Empirical(Empirical),
}

/// A piecewise-linear CDF through `(value, cumulative probability)` points.
#[derive(Clone, Debug, PartialEq)]
pub struct Empirical {
    points: Vec<(f64, f64)>,
}

/// Why a distribution's parameters are unusable; the message names the parameter.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct DistError(pub String);

impl Empirical {
    /// Points with values non-decreasing, probabilities non-decreasing in [0, 1], the last
    /// probability 1. A first probability above 0 is an atom at the first value.
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self, DistError> {
        let _ = points;
        todo!("helper A")
    }

    /// The points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }
}

impl Dist {
    /// The lognormal with this mean and squared coefficient of variation
    /// (`sigma² = ln(1 + scv)`, `mu = ln(mean) − sigma²/2`).
    pub fn lognormal_mean_scv(mean: f64, scv: f64) -> Dist {
        let _ = (mean, scv);
        todo!("helper A")
    }

    /// Checks the parameters (finite, positive where they must be).
    pub fn validate(&self) -> Result<(), DistError> {
        todo!("helper A")
    }

    /// The mean; infinite for a Pareto with shape <= 1.
    pub fn mean(&self) -> f64 {
        todo!("helper A")
    }

    /// One draw (never negative, never NaN for validated parameters).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let _ = rng;
        todo!("helper A")
    }
}
