//! Whether two estimates differ: Welch's t test on two means with their Student t 95%
//! intervals. One definition for every place lvsim compares results (`lvsim plan`'s
//! choice between schedulers or sizes, `lvsim compare`).

use serde::{Deserialize, Serialize};
use sim_core::stats::t_975;

use crate::Estimate;

/// The difference `b − a` of two estimated means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// `b.mean − a.mean`.
    pub diff: f64,
    /// 95% half-width of the difference (Welch); 0 when it cannot be told.
    pub ci95: f64,
    /// Welch–Satterthwaite degrees of freedom (0 when it cannot be told).
    pub df: f64,
    /// The 95% interval of the difference excludes 0. `false` when it cannot be told
    /// (fewer than two replications on a side).
    pub significant: bool,
    /// Both sides had at least two replications, so the test could be made.
    pub testable: bool,
}

/// The sample variance of the mean, `s² / n`, recovered from a Student t half-width.
fn var_of_mean(e: &Estimate) -> Option<f64> {
    if e.n < 2 {
        return None;
    }
    let n = e.n as usize;
    let se = e.ci95 / t_975(n - 1);
    Some(se * se)
}

/// Welch's two-sample t test at 95% on `b − a`. Equal means with zero spread on both sides
/// are not significant; different means with zero spread on both sides are.
pub fn welch(a: &Estimate, b: &Estimate) -> Difference {
    let diff = b.mean - a.mean;
    let (Some(va), Some(vb)) = (var_of_mean(a), var_of_mean(b)) else {
        return Difference { diff, ..Difference::default() };
    };
    let v = va + vb;
    if v.is_nan() || v <= 0.0 {
        return Difference { diff, ci95: 0.0, df: 0.0, significant: diff != 0.0, testable: true };
    }
    let (na, nb) = (f64::from(a.n), f64::from(b.n));
    let df = v * v / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    // t_975 takes whole degrees of freedom: round down (a slightly wider interval).
    let ci95 = t_975((df.floor() as usize).max(1)) * v.sqrt();
    Difference { diff, ci95, df, significant: diff.abs() > ci95, testable: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(xs: &[f64]) -> Estimate {
        crate::replications::estimate(xs)
    }

    #[test]
    fn welch_matches_a_hand_computation() {
        // a: 10, 12, 14 (mean 12, s² 4); b: 15, 16, 17 (mean 16, s² 1).
        // v = 4/3 + 1/3 = 5/3; df = (5/3)² / ((4/3)²/2 + (1/3)²/2) = 2.7778/0.9444 = 2.94
        // -> t_975(2) = 4.303; half-width 4.303 * sqrt(5/3) = 5.555 > 4: not significant.
        let d = welch(&est(&[10.0, 12.0, 14.0]), &est(&[15.0, 16.0, 17.0]));
        assert!((d.diff - 4.0).abs() < 1e-12);
        assert!((d.df - 2.9412).abs() < 1e-3, "{}", d.df);
        assert!((d.ci95 - 4.303 * (5.0f64 / 3.0).sqrt()).abs() < 1e-2, "{}", d.ci95);
        assert!(d.testable && !d.significant);
        // Far apart: significant.
        let d = welch(&est(&[10.0, 10.5, 11.0]), &est(&[20.0, 20.5, 21.0]));
        assert!(d.significant);
    }

    #[test]
    fn one_replication_cannot_be_told() {
        let d = welch(&est(&[1.0]), &est(&[2.0, 2.1]));
        assert!(!d.testable && !d.significant);
        assert_eq!(d.diff, est(&[2.0, 2.1]).mean - 1.0);
    }
}
