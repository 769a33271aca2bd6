//! Queueing theory used to validate the model (LVS-REF-1's oracles) and to give analytic
//! bounds: M/M/1 under PS and FCFS, Erlang C for M/M/c, and GI/M/1 with Erlang-k
//! interarrivals (round-robin dispatch of a Poisson stream).
//!
//! Rates are per second, times in seconds (`f64`: these are formulas, not simulation time).
//! Every function asserts its domain (rates positive, the queue stable, ρ < 1): an unstable
//! queue has no steady state, and a finite answer would be a lie.

/// Bisection stops when the bracket is this narrow [s] (quantiles) or [1] (σ).
const BISECTION_TOL: f64 = 1e-12;

/// Asserts `0 <= lambda < capacity` and `mu > 0`: a stable queue.
fn assert_stable(lambda: f64, mu: f64, capacity: f64) {
    assert!(mu > 0.0 && mu.is_finite(), "service rate μ = {mu} /s must be positive and finite");
    assert!(lambda >= 0.0, "arrival rate λ = {lambda} /s must be >= 0");
    assert!(
        lambda < capacity,
        "unstable queue: λ = {lambda} /s >= capacity {capacity} /s (ρ = {} >= 1)",
        lambda / capacity
    );
}

/// Asserts `q` is a quantile level a response time has: `[0, 1)`.
fn assert_quantile(q: f64) {
    assert!((0.0..1.0).contains(&q), "quantile level {q} outside [0, 1)");
}

/// M/M/1 (any work-conserving discipline; also M/G/1-PS): mean response time `1/(μ−λ)`.
pub fn mm1_mean_response(lambda: f64, mu: f64) -> f64 {
    assert_stable(lambda, mu, mu);
    1.0 / (mu - lambda)
}

/// M/M/1-FCFS: the q-quantile of the response time, `−ln(1−q)/(μ−λ)`.
pub fn mm1_fcfs_response_quantile(lambda: f64, mu: f64, q: f64) -> f64 {
    assert_stable(lambda, mu, mu);
    assert_quantile(q);
    // R ~ Exp(μ − λ); ln_1p keeps precision for small q.
    -(-q).ln_1p() / (mu - lambda)
}

/// Erlang C: the probability that an arrival waits in M/M/c with offered load `a = λ/μ`.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    assert!(c >= 1, "M/M/c needs at least one server");
    assert!(a >= 0.0, "offered load a = {a} must be >= 0");
    let c_f = f64::from(c);
    assert!(a < c_f, "unstable M/M/{c}: offered load a = {a} >= c (ρ = {} >= 1)", a / c_f);
    // Erlang B by its recurrence B(k) = a·B(k−1) / (k + a·B(k−1)), B(0) = 1: no factorials
    // or powers, so no overflow for large c. Then C = c·B / (c − a·(1 − B)).
    let b = (1..=c).fold(1.0, |b, k| a * b / (f64::from(k) + a * b));
    c_f * b / (c_f - a * (1.0 - b))
}

/// M/M/c-FCFS mean response time.
pub fn mmc_mean_response(c: u32, lambda: f64, mu: f64) -> f64 {
    assert_stable(lambda, mu, f64::from(c) * mu);
    // E[W] = C/(cμ − λ), plus one service 1/μ.
    erlang_c(c, lambda / mu) / (f64::from(c) * mu - lambda) + 1.0 / mu
}

/// M/M/c-FCFS response-time tail `P(R > t)`.
pub fn mmc_response_tail(c: u32, lambda: f64, mu: f64, t: f64) -> f64 {
    assert_stable(lambda, mu, f64::from(c) * mu);
    assert!(!t.is_nan(), "time t is NaN");
    if t <= 0.0 {
        return 1.0;
    }
    let wait_prob = erlang_c(c, lambda / mu);
    // A waiting arrival waits Exp(θ), θ = cμ − λ, then is served Exp(μ); R is their sum.
    let theta = f64::from(c) * mu - lambda;
    let no_wait = (-mu * t).exp();
    let after_wait = if (theta - mu).abs() <= 1e-9 * mu {
        // θ = μ: the hypoexponential tail's limit, the Erlang-2 tail e^{−μt}(1 + μt).
        no_wait * (1.0 + mu * t)
    } else {
        (theta * no_wait - mu * (-theta * t).exp()) / (theta - mu)
    };
    (1.0 - wait_prob) * no_wait + wait_prob * after_wait
}

/// M/M/c-FCFS response-time q-quantile (the tail solved by bisection to 1e-12 s).
pub fn mmc_response_quantile(c: u32, lambda: f64, mu: f64, q: f64) -> f64 {
    assert_stable(lambda, mu, f64::from(c) * mu);
    assert_quantile(q);
    let target = 1.0 - q;
    let tail = |t| mmc_response_tail(c, lambda, mu, t);
    // The tail falls from 1 at t = 0 to 0: double an upper bound until it is below target.
    let mut hi = 1.0 / mu;
    while tail(hi) > target {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    while hi - lo > BISECTION_TOL {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > target { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// GI/M/1 where a server receives every `k`-th arrival of a Poisson stream of rate
/// `stream_rate` (Erlang-k interarrivals, as round-robin over k servers makes): the root
/// σ in (0, 1) of `σ = (λ / (λ + μ(1−σ)))^k` with `λ = stream_rate`.
pub fn gi_m_1_erlang_sigma(k: u32, stream_rate: f64, mu: f64) -> f64 {
    assert!(k >= 1, "Erlang-k interarrivals need k >= 1");
    assert!(stream_rate > 0.0, "stream rate λ = {stream_rate} /s must be positive");
    // Each server gets λ/k: stable when λ < kμ.
    assert_stable(stream_rate, mu, f64::from(k) * mu);
    let lambda = stream_rate;
    // f(σ) = g(σ) − σ with g the Laplace transform of the interarrival time at μ(1 − σ).
    // f is convex, f(0) > 0 and f(1) = 0 with f'(1) = kμ/λ − 1 > 0, so f > 0 exactly on
    // [0, σ*) and f < 0 on (σ*, 1): bisecting on the sign over [0, 1] finds σ* and never
    // the trivial root σ = 1.
    let f = |s: f64| (lambda / (lambda + mu * (1.0 - s))).powi(k as i32) - s;
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while hi - lo > BISECTION_TOL {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// GI/M/1 mean response time `1/(μ(1−σ))`.
pub fn gi_m_1_mean_response(sigma: f64, mu: f64) -> f64 {
    assert!(mu > 0.0 && mu.is_finite(), "service rate μ = {mu} /s must be positive and finite");
    assert!((0.0..1.0).contains(&sigma), "σ = {sigma} outside [0, 1): the queue is unstable");
    1.0 / (mu * (1.0 - sigma))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LVS-REF-1's mean demand m = 10 ms: μ = 1/m [1/s].
    const MU: f64 = 100.0;

    /// `|got − want| <= tol`, with a message.
    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want} ± {tol}");
    }

    // LVS-REF-1 states its oracles to 3 decimals in ms (6 decimals for C and σ), so each
    // check allows half a unit in the last stated digit.
    const MS_TOL: f64 = 0.5e-6;

    #[test]
    fn o1_o3_mm1_mean() {
        close(mm1_mean_response(80.0, MU), 0.050_000, MS_TOL);
    }

    #[test]
    fn o3_mm1_fcfs_quantiles() {
        close(mm1_fcfs_response_quantile(80.0, MU, 0.5), 0.034_657, MS_TOL);
        close(mm1_fcfs_response_quantile(80.0, MU, 0.99), 0.230_259, MS_TOL);
        assert_eq!(mm1_fcfs_response_quantile(80.0, MU, 0.0), 0.0);
    }

    /// Erlang C from LVS-REF-1's factorial formula, written out independently.
    fn erlang_c_by_factorials(c: u32, a: f64) -> f64 {
        let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
        let c_f = f64::from(c);
        let top = a.powi(c as i32) / fact(c) * c_f / (c_f - a);
        let sum: f64 = (0..c).map(|k| a.powi(k as i32) / fact(k)).sum();
        top / (sum + top)
    }

    #[test]
    fn o4_erlang_c() {
        let c = erlang_c(4, 3.2);
        close(c, 0.596_432, 0.5e-6);
        close(c, erlang_c_by_factorials(4, 3.2), 1e-14);
        for (servers, a) in [(2, 1.5), (8, 7.9), (16, 3.0)] {
            close(erlang_c(servers, a), erlang_c_by_factorials(servers, a), 1e-12);
        }
    }

    #[test]
    fn erlang_c_one_server_is_rho() {
        for rho in [0.0, 0.1, 0.5, 0.8, 0.99] {
            close(erlang_c(1, rho), rho, 1e-15);
        }
    }

    #[test]
    fn o4_mm4_mean_and_quantiles() {
        close(mmc_mean_response(4, 320.0, MU), 0.017_455, MS_TOL);
        close(mmc_response_quantile(4, 320.0, MU, 0.5), 0.013_462, MS_TOL);
        close(mmc_response_quantile(4, 320.0, MU, 0.99), 0.068_932, MS_TOL);
        // The quantile solves the tail.
        let p99 = mmc_response_quantile(4, 320.0, MU, 0.99);
        close(mmc_response_tail(4, 320.0, MU, p99), 0.01, 1e-10);
        assert_eq!(mmc_response_tail(4, 320.0, MU, 0.0), 1.0);
    }

    #[test]
    fn mmc_one_server_is_mm1() {
        for lambda in [10.0, 50.0, 80.0, 95.0] {
            close(mmc_mean_response(1, lambda, MU), mm1_mean_response(lambda, MU), 1e-12);
            for q in [0.1, 0.5, 0.99] {
                let want = mm1_fcfs_response_quantile(lambda, MU, q);
                close(mmc_response_quantile(1, lambda, MU, q), want, 1e-11);
            }
        }
    }

    #[test]
    fn mmc_tail_at_theta_equal_mu_is_continuous() {
        // c = 2, λ = 100: θ = 2μ − λ = μ, the removable singularity.
        let at = mmc_response_tail(2, 100.0, MU, 0.02);
        let near = mmc_response_tail(2, 100.0 + 1e-4, MU, 0.02);
        close(at, near, 1e-6);
        // Erlang C(2, 1) = 1/3: (2/3)e^{−2} + (1/3)e^{−2}(1 + 2) = (5/3)e^{−2}.
        close(at, 5.0 / 3.0 * (-2.0_f64).exp(), 1e-15);
    }

    #[test]
    fn o5_rr_over_four_is_e4_m_1() {
        let sigma = gi_m_1_erlang_sigma(4, 320.0, MU);
        close(sigma, 0.693_945, 0.5e-6);
        // σ is a fixed point to the bisection's tolerance, not the trivial root 1.
        close((320.0 / (320.0 + MU * (1.0 - sigma))).powi(4), sigma, 1e-11);
        close(gi_m_1_mean_response(sigma, MU), 0.032_674, MS_TOL);
    }

    #[test]
    fn gi_m_1_with_poisson_arrivals_is_mm1() {
        // k = 1: exponential interarrivals, σ = ρ and E[R] = 1/(μ − λ).
        for lambda in [20.0, 80.0, 99.0] {
            let sigma = gi_m_1_erlang_sigma(1, lambda, MU);
            close(sigma, lambda / MU, 1e-11);
            close(gi_m_1_mean_response(sigma, MU), mm1_mean_response(lambda, MU), 1e-8);
        }
    }

    #[test]
    fn smoother_arrivals_wait_less() {
        // Erlang-k arrivals at the same per-server load ρ = 0.8 get more regular as k grows,
        // so σ and E[R] fall below the M/M/1 value 50 ms.
        let r = |k: u32| gi_m_1_mean_response(gi_m_1_erlang_sigma(k, 80.0 * f64::from(k), MU), MU);
        assert!(r(1) > r(2) && r(2) > r(4) && r(4) > r(8), "{} {} {} {}", r(1), r(2), r(4), r(8));
    }

    #[test]
    #[should_panic(expected = "unstable")]
    fn mm1_rejects_rho_one() {
        mm1_mean_response(100.0, 100.0);
    }

    #[test]
    #[should_panic(expected = "unstable M/M/4")]
    fn erlang_c_rejects_overload() {
        erlang_c(4, 4.0);
    }

    #[test]
    #[should_panic(expected = "unstable")]
    fn gi_m_1_rejects_overload() {
        gi_m_1_erlang_sigma(4, 400.0, MU);
    }
}
