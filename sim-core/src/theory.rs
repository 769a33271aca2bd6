//! Queueing theory used to validate the model (LVS-REF-1's oracles) and to give analytic
//! bounds: M/M/1 under PS and FCFS, Erlang C for M/M/c, and GI/M/1 with Erlang-k
//! interarrivals (round-robin dispatch of a Poisson stream).
//!
//! Rates are per second, times in seconds (`f64`: these are formulas, not simulation time).

/// M/M/1 (any work-conserving discipline; also M/G/1-PS): mean response time `1/(μ−λ)`.
pub fn mm1_mean_response(lambda: f64, mu: f64) -> f64 {
    let _ = (lambda, mu);
    todo!("helper C")
}

/// M/M/1-FCFS: the q-quantile of the response time, `−ln(1−q)/(μ−λ)`.
pub fn mm1_fcfs_response_quantile(lambda: f64, mu: f64, q: f64) -> f64 {
    let _ = (lambda, mu, q);
    todo!("helper C")
}

/// Erlang C: the probability that an arrival waits in M/M/c with offered load `a = λ/μ`.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let _ = (c, a);
    todo!("helper C")
}

/// M/M/c-FCFS mean response time.
pub fn mmc_mean_response(c: u32, lambda: f64, mu: f64) -> f64 {
    let _ = (c, lambda, mu);
    todo!("helper C")
}

/// M/M/c-FCFS response-time tail `P(R > t)`.
pub fn mmc_response_tail(c: u32, lambda: f64, mu: f64, t: f64) -> f64 {
    let _ = (c, lambda, mu, t);
    todo!("helper C")
}

/// M/M/c-FCFS response-time q-quantile (the tail solved by bisection to 1e-12 s).
pub fn mmc_response_quantile(c: u32, lambda: f64, mu: f64, q: f64) -> f64 {
    let _ = (c, lambda, mu, q);
    todo!("helper C")
}

/// GI/M/1 where a server receives every `k`-th arrival of a Poisson stream of rate
/// `stream_rate` (Erlang-k interarrivals, as round-robin over k servers makes): the root
/// σ in (0, 1) of `σ = (λ / (λ + μ(1−σ)))^k` with `λ = stream_rate`.
pub fn gi_m_1_erlang_sigma(k: u32, stream_rate: f64, mu: f64) -> f64 {
    let _ = (k, stream_rate, mu);
    todo!("helper C")
}

/// GI/M/1 mean response time `1/(μ(1−σ))`.
pub fn gi_m_1_mean_response(sigma: f64, mu: f64) -> f64 {
    let _ = (sigma, mu);
    todo!("helper C")
}
