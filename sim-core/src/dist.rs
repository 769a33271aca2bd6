//! Probability distributions for sizes [bytes] and service demands [s of work at speed 1],
//! sampled by inverse transform (or Box–Muller for the normal) so that a value depends
//! only on the generator's output, never on a library's algorithm choice.
//!
//! Every draw takes its uniforms from [`open01`], never 0 or 1, so logarithms and negative
//! powers stay finite. A draw uses a fixed number of uniforms (one, two for the
//! lognormal, none for a constant), so the stream stays aligned whatever the values.

use lvs_sched::Duration;

use crate::rng::{Rng, open01};

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

/// Seconds to whole nanoseconds, rounded to the nearest; NaN and negative values give 0,
/// values beyond `u64::MAX` ns (584 years) give `u64::MAX`.
pub fn to_ns(x_s: f64) -> u64 {
    if x_s > 0.0 { round_u64(x_s * 1e9) } else { 0 }
}

/// 2^52: from here on every `f64` is a whole number.
const WHOLE: f64 = 4_503_599_627_370_496.0;

/// `x.round() as u64` (half away from zero; NaN and negatives give 0, `as` saturates),
/// bit for bit, without the call into libm that `f64::round` is on x86-64's baseline:
/// below 2^52 the whole part and the fraction of `x` are exact.
#[inline]
pub fn round_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= WHOLE {
        return x as u64;
    }
    let whole = x as u64;
    if x - whole as f64 >= 0.5 { whole + 1 } else { whole }
}

/// `x.ceil() as u64` (NaN and negatives give 0, `as` saturates), bit for bit, without
/// the call into libm: see [`round_u64`].
#[inline]
pub fn ceil_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= WHOLE {
        return x as u64;
    }
    let whole = x as u64;
    if (whole as f64) < x { whole + 1 } else { whole }
}

/// Seconds to a [`Duration`], as [`to_ns`]: nearest ns, saturating, NaN/negative → 0.
pub fn secs_to_duration(x: f64) -> Duration {
    Duration(to_ns(x))
}

fn check(ok: bool, what: &str, rule: &str, got: f64) -> Result<(), DistError> {
    if ok { Ok(()) } else { Err(DistError(format!("{what} must be {rule}, got {got}"))) }
}

fn check_pos(what: &str, x: f64) -> Result<(), DistError> {
    check(x.is_finite() && x > 0.0, what, "finite and > 0", x)
}

fn check_nonneg(what: &str, x: f64) -> Result<(), DistError> {
    check(x.is_finite() && x >= 0.0, what, "finite and >= 0", x)
}

impl Empirical {
    /// Points with values non-decreasing, probabilities non-decreasing in [0, 1], the last
    /// probability 1. A first probability above 0 is an atom at the first value.
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self, DistError> {
        Self::check(&points)?;
        Ok(Empirical { points })
    }

    fn check(points: &[(f64, f64)]) -> Result<(), DistError> {
        let Some(&(_, last_p)) = points.last() else {
            return Err(DistError("empirical distribution needs at least one point".into()));
        };
        let mut prev = (0.0, 0.0);
        for (i, &(v, p)) in points.iter().enumerate() {
            check_nonneg(&format!("empirical points[{i}] value"), v)?;
            check(
                p.is_finite() && (0.0..=1.0).contains(&p),
                &format!("empirical points[{i}] probability"),
                "in [0, 1]",
                p,
            )?;
            if i > 0 {
                check(
                    v >= prev.0,
                    &format!("empirical points[{i}] value"),
                    &format!(">= the previous value {}", prev.0),
                    v,
                )?;
                check(
                    p >= prev.1,
                    &format!("empirical points[{i}] probability"),
                    &format!(">= the previous probability {}", prev.1),
                    p,
                )?;
            }
            prev = (v, p);
        }
        check(last_p == 1.0, "empirical last probability", "1", last_p)
    }

    /// The points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// The mean: the atom at the first value plus, on each segment, its probability times
    /// its midpoint (the mass is spread uniformly between the two values).
    pub fn mean(&self) -> f64 {
        let (v0, p0) = self.points[0];
        let segments = self.points.windows(2).map(|w| (w[1].1 - w[0].1) * (w[0].0 + w[1].0) / 2.0);
        p0 * v0 + segments.sum::<f64>()
    }

    /// The value `x` with `F(x) = u`, for `u` in (0, 1).
    pub fn quantile(&self, u: f64) -> f64 {
        let pts = &self.points;
        // First point with probability >= u: u falls on the segment ending there, whose
        // probability rises strictly (a flat segment never holds a u). Index 0: the atom.
        let i = pts.partition_point(|&(_, p)| p < u).min(pts.len() - 1);
        if i == 0 {
            return pts[0].0;
        }
        let ((v0, p0), (v1, p1)) = (pts[i - 1], pts[i]);
        // Clamped: rounding must not step outside the segment.
        (v0 + (u - p0) / (p1 - p0) * (v1 - v0)).clamp(v0, v1)
    }
}

impl Dist {
    /// The lognormal with this mean and squared coefficient of variation
    /// (`sigma² = ln(1 + scv)`, `mu = ln(mean) − sigma²/2`).
    pub fn lognormal_mean_scv(mean: f64, scv: f64) -> Dist {
        let var = scv.ln_1p();
        Dist::LogNormal { mu: mean.ln() - var / 2.0, sigma: var.sqrt() }
    }

    /// Checks the parameters (finite, positive where they must be).
    pub fn validate(&self) -> Result<(), DistError> {
        match *self {
            Dist::Constant(c) => check_nonneg("constant value", c),
            Dist::Exponential { mean } => check_pos("exponential mean", mean),
            Dist::LogNormal { mu, sigma } => {
                check(mu.is_finite(), "lognormal mu", "finite", mu)?;
                check_nonneg("lognormal sigma", sigma)
            }
            Dist::Pareto { shape, scale } => {
                check_pos("pareto shape", shape)?;
                check_pos("pareto scale", scale)
            }
            Dist::BoundedPareto { shape, low, high } => {
                check_pos("bounded pareto shape", shape)?;
                check_pos("bounded pareto low", low)?;
                check(
                    high.is_finite() && high > low,
                    "bounded pareto high",
                    &format!("finite and > low {low}"),
                    high,
                )
            }
            Dist::Empirical(ref e) => Empirical::check(&e.points),
        }
    }

    /// The mean; infinite for a Pareto with shape <= 1.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Constant(c) => c,
            Dist::Exponential { mean } => mean,
            Dist::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Dist::Pareto { shape, scale } if shape > 1.0 => shape * scale / (shape - 1.0),
            Dist::Pareto { .. } => f64::INFINITY,
            Dist::BoundedPareto { shape, low, high } => bounded_pareto_mean(shape, low, high),
            Dist::Empirical(ref e) => e.mean(),
        }
    }

    /// One draw (never negative, never NaN for validated parameters).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Dist::Constant(c) => c,
            Dist::Exponential { mean } => -mean * open01(rng).ln(),
            Dist::LogNormal { mu, sigma } => {
                // Box–Muller, cosine half only: no state kept between draws, so `&self`.
                let (u1, u2) = (open01(rng), open01(rng));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (mu + sigma * z).exp()
            }
            // u is the survival probability (scale / x)^shape.
            Dist::Pareto { shape, scale } => scale * open01(rng).powf(-1.0 / shape),
            Dist::BoundedPareto { shape, low, high } => {
                // F(x) = (1 − (low/x)^a) / (1 − (low/high)^a), solved for x at F = u.
                let mass = -((shape * (low / high).ln()).exp_m1()); // 1 − (low/high)^a
                let x = low * (1.0 - open01(rng) * mass).powf(-1.0 / shape);
                x.clamp(low, high)
            }
            Dist::Empirical(ref e) => e.quantile(open01(rng)),
        }
    }
}

/// `E[X]` of the bounded Pareto on `[l, h]` with tail index `a`:
/// `a·l/(a−1) · (1 − r^(a−1)) / (1 − r^a)` with `r = l/h`, and `l·h·ln(h/l)/(h − l)` at
/// `a = 1`. Written with `exp_m1` so that shapes near 1 lose no digits.
fn bounded_pareto_mean(a: f64, l: f64, h: f64) -> f64 {
    let ln_r = (l / h).ln();
    // (1 − r^(a−1)) / (a − 1), whose limit at a = 1 is −ln r.
    let g = if a == 1.0 { -ln_r } else { -((a - 1.0) * ln_r).exp_m1() / (a - 1.0) };
    a * l * g / -(a * ln_r).exp_m1()
}

#[cfg(test)]
mod tests {
    use super::{ceil_u64, round_u64};

    #[test]
    fn inline_round_and_ceil_match_libm_bit_for_bit() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            0.5000000000000001,
            1.0 - f64::EPSILON / 2.0,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1.8446744073709552e19,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -0.3,
            -0.5,
            -1.5,
            -1e30,
            f64::MIN_POSITIVE,
            1e-300,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Random bit patterns (every exponent) and random values near halves.
            xs.push(f64::from_bits(x));
            xs.push((x >> 40) as f64 / 2.0 + f64::from_bits(x).abs().fract() * 1e-9);
        }
        for &v in &xs {
            assert_eq!(round_u64(v), v.round() as u64, "round({v:e})");
            assert_eq!(ceil_u64(v), v.ceil() as u64, "ceil({v:e})");
        }
    }

    use super::*;
    use crate::rng::Streams;

    const N: usize = 200_000;

    fn draws(d: &Dist, name: &str) -> Vec<f64> {
        d.validate().unwrap();
        let mut rng = Streams::new(2024).stream(name);
        (0..N).map(|_| d.sample(&mut rng)).collect()
    }

    fn mean_and_sd(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    fn frac(xs: &[f64], pred: impl Fn(f64) -> bool) -> f64 {
        xs.iter().filter(|&&x| pred(x)).count() as f64 / xs.len() as f64
    }

    /// A fraction estimating probability `p` from `N` draws is within 4 binomial standard
    /// errors `sqrt(p(1−p)/N)` (≤ 0.0045 for N = 200k).
    fn assert_frac(got: f64, p: f64, what: &str) {
        let tol = 4.0 * (p * (1.0 - p) / N as f64).sqrt();
        assert!((got - p).abs() < tol, "{what}: {got} vs {p} ± {tol}");
    }

    #[test]
    fn exponential_mean_and_tail() {
        let d = Dist::Exponential { mean: 0.007 };
        let xs = draws(&d, "exp");
        // Variance mean²: standard error of the sample mean 0.007/sqrt(N); 4 of them.
        let (m, _) = mean_and_sd(&xs);
        assert!((m - 0.007).abs() < 4.0 * 0.007 / (N as f64).sqrt(), "mean {m}");
        assert_frac(frac(&xs, |x| x > 0.014), (-2f64).exp(), "P(X > 2 mean)");
        assert!(xs.iter().all(|&x| x > 0.0 && x.is_finite()));
    }

    #[test]
    fn lognormal_median_log_moments_and_mean() {
        let d = Dist::lognormal_mean_scv(0.007, 9.0);
        // LVS-REF-1: m = 7 ms, SCV 9 gives mu = −6.113138, sigma = 1.517427.
        let Dist::LogNormal { mu, sigma } = d else { panic!("{d:?}") };
        assert!((mu - -6.113138).abs() < 1e-6 && (sigma - 1.517427).abs() < 1e-6, "{mu} {sigma}");
        assert!((d.mean() - 0.007).abs() < 1e-15);
        let xs = draws(&d, "lognormal");
        // The median is e^mu; ln X is normal(mu, sigma): its sample mean has standard error
        // sigma/sqrt(N) = 0.0034 and its sample sd about sigma/sqrt(2N) = 0.0024.
        assert_frac(frac(&xs, |x| x <= mu.exp()), 0.5, "P(X <= e^mu)");
        let logs: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
        let (lm, lsd) = mean_and_sd(&logs);
        assert!((lm - mu).abs() < 4.0 * sigma / (N as f64).sqrt(), "log mean {lm}");
        assert!((lsd - sigma).abs() < 4.0 * sigma / (2.0 * N as f64).sqrt(), "log sd {lsd}");
        // The normal's tails: P(Z > 2) = 0.02275 (table value).
        assert_frac(frac(&logs, |l| l > mu + 2.0 * sigma), 0.02275, "P(Z > 2)");
        // The mean itself: SCV 9 gives a standard error 3·m/sqrt(N) = 0.67% of m, but the
        // sample mean of a lognormal is skewed; 6 standard errors keeps the check honest.
        let (m, _) = mean_and_sd(&xs);
        assert!((m / 0.007 - 1.0).abs() < 6.0 * 3.0 / (N as f64).sqrt(), "mean {m}");
    }

    #[test]
    fn pareto_tail_and_mean() {
        let d = Dist::Pareto { shape: 1.5, scale: 2.0 };
        assert_eq!(d.mean(), 6.0);
        let xs = draws(&d, "pareto");
        assert!(xs.iter().all(|&x| x >= 2.0 && x.is_finite()));
        assert_frac(frac(&xs, |x| x > 4.0), 2f64.powf(-1.5), "P(X > 2 scale)");
        assert_frac(frac(&xs, |x| x > 20.0), 10f64.powf(-1.5), "P(X > 10 scale)");
        // Shape 5: finite fourth moment, so the sample mean is well behaved; mean 5/4 and
        // variance a/((a−1)²(a−2)) = 5/48.
        let d = Dist::Pareto { shape: 5.0, scale: 1.0 };
        let (m, _) = mean_and_sd(&draws(&d, "pareto5"));
        assert!((m - d.mean()).abs() < 4.0 * (5.0f64 / 48.0 / N as f64).sqrt(), "mean {m}");
        assert_eq!(Dist::Pareto { shape: 1.0, scale: 1.0 }.mean(), f64::INFINITY);
    }

    #[test]
    fn bounded_pareto_mean_closed_form() {
        // Hand-computed: a = 2 on [1, 2]: pdf (8/3)x^-3, mean (8/3)(1 − 1/2) = 4/3.
        let mean = |shape, low, high| Dist::BoundedPareto { shape, low, high }.mean();
        assert!((mean(2.0, 1.0, 2.0) - 4.0 / 3.0).abs() < 1e-15);
        // a = 1 on [1, 100]: l·h·ln(h/l)/(h − l) = 100·ln(100)/99.
        let at_one = 100.0 * 100f64.ln() / 99.0;
        assert!((mean(1.0, 1.0, 100.0) - at_one).abs() < 1e-14);
        // Continuous through a = 1: the slope there is O(1), so 1e-9 away moves ~1e-9.
        for a in [1.0 - 1e-9, 1.0 + 1e-9] {
            assert!((mean(a, 1.0, 100.0) - at_one).abs() < 1e-7, "{a}");
        }
    }

    #[test]
    fn bounded_pareto_samples() {
        let d = Dist::BoundedPareto { shape: 1.1, low: 0.001, high: 10.0 };
        let xs = draws(&d, "bpareto");
        assert!(xs.iter().all(|&x| (0.001..=10.0).contains(&x)));
        // Bounded, so every moment is finite and the CLT applies: 5 estimated standard errors.
        let (m, sd) = mean_and_sd(&xs);
        assert!((m - d.mean()).abs() < 5.0 * sd / (N as f64).sqrt(), "mean {m} vs {}", d.mean());
        // P(X > 2 low) = ((low/x)^a − r^a)/(1 − r^a) at x = 2 low.
        let ra = (0.001f64 / 10.0).powf(1.1);
        assert_frac(frac(&xs, |x| x > 0.002), (0.5f64.powf(1.1) - ra) / (1.0 - ra), "P(X > 2 low)");
    }

    #[test]
    fn empirical_quantiles_mean_and_atom() {
        let e = Empirical::new(vec![(0.0, 0.0), (10.0, 0.5), (20.0, 1.0)]).unwrap();
        assert_eq!([e.quantile(0.25), e.quantile(0.5), e.quantile(0.75)], [5.0, 10.0, 15.0]);
        let d = Dist::Empirical(e);
        assert_eq!(d.mean(), 10.0);
        let xs = draws(&d, "empirical");
        assert_frac(frac(&xs, |x| x <= 5.0), 0.25, "P(X <= 5)");
        assert_frac(frac(&xs, |x| x <= 12.0), 0.6, "P(X <= 12)");
        // Atom of 0.2 at 1, then uniform on [1, 3]; a flat stretch [3, 5] never sampled.
        let e = Empirical::new(vec![(1.0, 0.2), (3.0, 0.8), (5.0, 0.8), (6.0, 1.0)]).unwrap();
        assert!((e.mean() - (0.2 * 1.0 + 0.6 * 2.0 + 0.2 * 5.5)).abs() < 1e-15);
        let xs = draws(&Dist::Empirical(e), "empirical-atom");
        assert_frac(frac(&xs, |x| x == 1.0), 0.2, "P(X = 1)");
        assert!(xs.iter().all(|&x| x <= 3.0 || x >= 5.0));
        assert_frac(frac(&xs, |x| x >= 5.0), 0.2, "P(X >= 5)");
        // One point: a constant.
        let one = Empirical::new(vec![(4.0, 1.0)]).unwrap();
        assert_eq!((one.quantile(0.3), one.mean()), (4.0, 4.0));
    }

    #[test]
    fn constant_and_determinism() {
        let mut rng = Streams::new(1).stream("c");
        assert_eq!(Dist::Constant(3.5).sample(&mut rng), 3.5);
        let d = Dist::lognormal_mean_scv(1.0, 1.0);
        let a: Vec<f64> = (0..100).map(|_| d.sample(&mut Streams::new(9).stream("x"))).collect();
        let mut r1 = Streams::new(9).stream("x");
        let mut r2 = Streams::new(9).stream("x");
        assert!((0..100).all(|_| d.sample(&mut r1).to_bits() == d.sample(&mut r2).to_bits()));
        assert!(a.iter().all(|&x| x == a[0]));
    }

    #[test]
    fn validation_names_the_parameter() {
        let err = |d: Dist| d.validate().unwrap_err().0;
        assert_eq!(
            err(Dist::LogNormal { mu: 0.0, sigma: -1.0 }),
            "lognormal sigma must be finite and >= 0, got -1"
        );
        assert_eq!(err(Dist::LogNormal { mu: f64::NAN, sigma: 1.0 }), "lognormal mu must be finite, got NaN");
        assert_eq!(err(Dist::Exponential { mean: 0.0 }), "exponential mean must be finite and > 0, got 0");
        assert_eq!(err(Dist::Constant(-2.5)), "constant value must be finite and >= 0, got -2.5");
        assert_eq!(
            err(Dist::Pareto { shape: 0.0, scale: 1.0 }),
            "pareto shape must be finite and > 0, got 0"
        );
        assert_eq!(
            err(Dist::Pareto { shape: 1.0, scale: f64::INFINITY }),
            "pareto scale must be finite and > 0, got inf"
        );
        assert_eq!(
            err(Dist::BoundedPareto { shape: 1.0, low: 2.0, high: 2.0 }),
            "bounded pareto high must be finite and > low 2, got 2"
        );
        assert_eq!(Dist::lognormal_mean_scv(1.0, 9.0).validate(), Ok(()));
        assert!(Dist::lognormal_mean_scv(-1.0, 9.0).validate().is_err());
        let emp = |p: Vec<(f64, f64)>| Empirical::new(p).unwrap_err().0;
        assert_eq!(emp(vec![]), "empirical distribution needs at least one point");
        assert_eq!(emp(vec![(1.0, 0.5)]), "empirical last probability must be 1, got 0.5");
        assert_eq!(
            emp(vec![(2.0, 0.0), (1.0, 1.0)]),
            "empirical points[1] value must be >= the previous value 2, got 1"
        );
        assert_eq!(
            emp(vec![(1.0, 0.5), (2.0, 0.4), (3.0, 1.0)]),
            "empirical points[1] probability must be >= the previous probability 0.5, got 0.4"
        );
        assert_eq!(emp(vec![(-1.0, 1.0)]), "empirical points[0] value must be finite and >= 0, got -1");
        assert_eq!(emp(vec![(1.0, 1.5)]), "empirical points[0] probability must be in [0, 1], got 1.5");
    }

    #[test]
    fn seconds_to_nanoseconds() {
        assert_eq!(to_ns(12.5003), 12_500_300_000);
        assert_eq!(to_ns(1e-9 * 0.49), 0);
        assert_eq!(to_ns(1e-9 * 0.51), 1);
        assert_eq!(to_ns(-1.0), 0);
        assert_eq!(to_ns(f64::NAN), 0);
        assert_eq!(to_ns(f64::INFINITY), u64::MAX);
        assert_eq!(to_ns(1e12), u64::MAX);
        assert_eq!(secs_to_duration(0.25), Duration::from_millis(250));
    }
}
