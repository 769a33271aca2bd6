//! Arrival processes of client populations.
//!
//! Times are integer nanoseconds: each gap is drawn in seconds and rounded to the nearest
//! nanosecond before it is added, so the process never accumulates `f64` time. Each Poisson
//! gap (and each schedule arrival) takes exactly one uniform from the generator.

use lvs_sched::Time;

use crate::dist::{Dist, round_u64, to_ns};
use crate::rng::{Rng, open01};

/// When a population opens its connections (or sends its UDP flows).
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcess {
    /// Poisson arrivals at `rate` [1/s]; the first arrival at Exp(rate) after 0.
    Poisson {
        /// Rate [1/s].
        rate: f64,
    },
    /// Evenly spaced arrivals at `rate` [1/s], the first at 1/rate.
    Constant {
        /// Rate [1/s].
        rate: f64,
    },
    /// On/off bursts: Poisson at `rate` during on periods, silence during off periods;
    /// starts with an on period. Period lengths [s] are drawn from `on` and `off`.
    OnOff {
        /// Rate during an on period [1/s].
        rate: f64,
        /// On-period length [s].
        on: Dist,
        /// Off-period length [s].
        off: Dist,
    },
    /// A Poisson rate that changes over time: `(start, rate [1/s])` steps, the first at
    /// time zero, starts strictly increasing; each rate holds until the next step's start.
    /// A rate of 0 is allowed.
    Schedule {
        /// The steps.
        steps: Vec<(Time, f64)>,
    },
    /// Replay of recorded arrival times (non-decreasing).
    Trace {
        /// The times.
        times: Vec<Time>,
    },
}

/// Why an arrival process is unusable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ArrivalError(pub String);

/// A malformed trace file: the 1-based line and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TraceError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// The state of one population's arrival process.
#[derive(Clone, Debug)]
pub struct Arrivals {
    process: ArrivalProcess,
    state: State,
}

/// Where a process has got to.
#[derive(Clone, Debug, Default)]
struct State {
    /// The last arrival, or the point the process has been advanced to.
    now: Time,
    /// Arrivals so far: the constant process's `k`, the trace's index.
    count: u64,
    /// The schedule's current step.
    step: usize,
    /// End of the current on period; `None` before the first is drawn.
    on_end: Option<Time>,
    /// No arrival will ever come again.
    done: bool,
}

/// The shortest on-period mean an on/off process accepts [s]: below the clock's resolution
/// almost every on period rounds to nothing and `next` would spin.
const MIN_ON_MEAN_S: f64 = 1e-9;

fn check_rate(what: &str, rate: f64) -> Result<(), ArrivalError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(ArrivalError(format!("{what} rate must be finite and > 0 [1/s], got {rate}")))
    }
}

impl ArrivalProcess {
    /// Checks the parameters: rates finite and positive (a schedule's finite and
    /// non-negative), a schedule's steps starting at 0 and strictly increasing, a trace
    /// non-decreasing, the on/off distributions valid with an on-period mean of at least 1 ns.
    pub fn validate(&self) -> Result<(), ArrivalError> {
        match self {
            ArrivalProcess::Poisson { rate } => check_rate("poisson", *rate),
            ArrivalProcess::Constant { rate } => check_rate("constant", *rate),
            ArrivalProcess::OnOff { rate, on, off } => {
                check_rate("on/off", *rate)?;
                on.validate().map_err(|e| ArrivalError(format!("on/off on period: {e}")))?;
                off.validate().map_err(|e| ArrivalError(format!("on/off off period: {e}")))?;
                let mean = on.mean();
                if mean >= MIN_ON_MEAN_S {
                    Ok(())
                } else {
                    Err(ArrivalError(format!("on/off on-period mean must be >= 1 ns, got {mean} s")))
                }
            }
            ArrivalProcess::Schedule { steps } => validate_steps(steps),
            ArrivalProcess::Trace { times } => match times.windows(2).position(|w| w[1] < w[0]) {
                None => Ok(()),
                Some(i) => Err(ArrivalError(format!(
                    "trace times[{}] {} is before times[{i}] {} (times must be non-decreasing)",
                    i + 1,
                    times[i + 1],
                    times[i]
                ))),
            },
        }
    }
}

fn validate_steps(steps: &[(Time, f64)]) -> Result<(), ArrivalError> {
    let Some(&(first, _)) = steps.first() else {
        return Err(ArrivalError("schedule needs at least one step".into()));
    };
    if first != Time::ZERO {
        return Err(ArrivalError(format!("schedule steps[0] start must be 0, got {first}")));
    }
    for (i, &(start, rate)) in steps.iter().enumerate() {
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(ArrivalError(format!(
                "schedule steps[{i}] rate must be finite and >= 0 [1/s], got {rate}"
            )));
        }
        if i > 0 && start <= steps[i - 1].0 {
            return Err(ArrivalError(format!(
                "schedule steps[{i}] start {start} must be after the previous start {}",
                steps[i - 1].0
            )));
        }
    }
    Ok(())
}

impl Arrivals {
    /// Checks the process's parameters and starts it at time zero.
    pub fn new(process: ArrivalProcess) -> Result<Self, ArrivalError> {
        process.validate()?;
        Ok(Arrivals { process, state: State::default() })
    }

    /// The process.
    pub fn process(&self) -> &ArrivalProcess {
        &self.process
    }

    /// The next arrival time (non-decreasing from call to call), `None` when a trace or a
    /// schedule ending in rate 0 is exhausted. The caller stops asking at its horizon.
    ///
    /// Also `None` (for good) once a process would pass the last representable time,
    /// `u64::MAX` ns (584 years), which only a heavy-tailed off period can reach.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Time> {
        let s = &mut self.state;
        if s.done {
            return None;
        }
        let t = match &self.process {
            ArrivalProcess::Poisson { rate } => Some(later(s.now, exp_gap_s(rng, *rate))),
            ArrivalProcess::Constant { rate } => {
                s.count += 1;
                // From the count, not a running sum: the k-th arrival is k/rate to the ns.
                Some(Time(round_u64(s.count as f64 * 1e9 / rate)))
            }
            ArrivalProcess::OnOff { rate, on, off } => s.next_on_off(rng, *rate, on, off),
            ArrivalProcess::Schedule { steps } => s.next_scheduled(rng, steps),
            ArrivalProcess::Trace { times } => {
                let t = times.get(s.count as usize).copied();
                s.count += 1;
                t
            }
        };
        match t {
            Some(t) if t.0 < u64::MAX => {
                s.now = t;
                Some(t)
            }
            _ => {
                s.done = true;
                None
            }
        }
    }
}

/// An Exp(rate) gap [s]: `−ln(u)/rate`.
fn exp_gap_s(rng: &mut Rng, rate: f64) -> f64 {
    -open01(rng).ln() / rate
}

/// `t` plus `secs` rounded to the nearest ns, saturating at `u64::MAX` (the end of time).
fn later(t: Time, secs: f64) -> Time {
    Time(t.0.saturating_add(to_ns(secs)))
}

impl State {
    /// Poisson within on periods. A gap that crosses the end of the on period is dropped:
    /// by memorylessness the next arrival is a fresh Exp(rate) after the next on period
    /// starts, past an off period.
    fn next_on_off(&mut self, rng: &mut Rng, rate: f64, on: &Dist, off: &Dist) -> Option<Time> {
        let mut on_end = match self.on_end {
            Some(end) => end,
            None => later(Time::ZERO, on.sample(rng)),
        };
        loop {
            let t = later(self.now, exp_gap_s(rng, rate));
            if t < on_end {
                self.on_end = Some(on_end);
                return Some(t);
            }
            self.now = later(on_end, off.sample(rng));
            on_end = later(self.now, on.sample(rng));
            if self.now.0 == u64::MAX {
                return None;
            }
        }
    }

    /// The piecewise-constant-rate Poisson process, exactly: an Exp(1) amount of integrated
    /// rate is spent step by step, and the arrival is where it runs out.
    fn next_scheduled(&mut self, rng: &mut Rng, steps: &[(Time, f64)]) -> Option<Time> {
        let mut hazard = -open01(rng).ln();
        loop {
            let (start, rate) = steps[self.step];
            let from = self.now.max(start);
            let Some(end) = steps.get(self.step + 1).map(|&(next, _)| next) else {
                // The last step holds for ever.
                return (rate > 0.0).then(|| later(from, hazard / rate));
            };
            if rate > 0.0 {
                let room = (end - from).0 as f64 / 1e9 * rate;
                if hazard < room {
                    // Rounding can at most land on `end` (an integer ns), never past it.
                    return Some(later(from, hazard / rate));
                }
                hazard -= room;
            }
            self.now = end;
            self.step += 1;
        }
    }
}

/// Parses a CSV trace of arrivals: one arrival per line, the first field its time in
/// seconds since the start (decimal, e.g. `12.5003`); further fields are ignored; blank
/// lines and lines starting with `#` are skipped, and so is a first line whose first field
/// is not a number (a header). Times must be non-decreasing.
///
/// Plain decimals are converted exactly (digits past the ninth decimal round to the nearest
/// ns); other numbers Rust's `f64` parser accepts (`1e-3`) go through `f64`. "First line"
/// means the first line that is neither blank nor a comment.
pub fn parse_trace_csv(text: &str) -> Result<Vec<Time>, TraceError> {
    let mut times: Vec<Time> = Vec::new();
    let mut header_allowed = true;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| TraceError { line: i + 1, message };
        let field = line.split(',').next().unwrap_or_default().trim();
        let t = match parse_secs(field) {
            Ok(t) => t,
            Err(None) if header_allowed => {
                header_allowed = false;
                continue;
            }
            Err(None) => return Err(err(format!("time {field:?} is not a number of seconds"))),
            Err(Some(why)) => return Err(err(format!("time {field:?} {why}"))),
        };
        header_allowed = false;
        if let Some(&prev) = times.last() {
            if t < prev {
                return Err(err(format!(
                    "time {field:?} is before the previous time {prev} (times must be non-decreasing)"
                )));
            }
        }
        times.push(t);
    }
    Ok(times)
}

/// Seconds as text to a time: `Err(None)` if it is not a number at all, `Err(Some(why))`
/// if it is one but unusable.
fn parse_secs(field: &str) -> Result<Time, Option<&'static str>> {
    const TOO_LATE: &str = "is past the last representable time (584 years)";
    if let Some(ns) = parse_plain_decimal(field) {
        return ns.map(Time).ok_or(Some(TOO_LATE));
    }
    let x: f64 = field.parse().map_err(|_| None)?;
    if x.is_nan() || x < 0.0 {
        Err(Some("must be >= 0 seconds"))
    } else if x * 1e9 >= u64::MAX as f64 {
        Err(Some(TOO_LATE))
    } else {
        Ok(Time(to_ns(x)))
    }
}

/// `digits[.digits]` or `.digits` to nanoseconds, exactly, rounding half up past the ninth
/// decimal: `None` if `s` has another form, `Some(None)` if it overflows `u64` ns.
fn parse_plain_decimal(s: &str) -> Option<Option<u64>> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let digit = |k: usize| frac.as_bytes().get(k).map_or(0, |b| u64::from(b - b'0'));
    let frac_ns = (0..9).fold(0, |acc, k| acc * 10 + digit(k)) + u64::from(digit(9) >= 5);
    let int_s = int.bytes().try_fold(0u64, |acc, b| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')));
    Some(int_s.and_then(|s| s.checked_mul(1_000_000_000)?.checked_add(frac_ns)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;
    use lvs_sched::Duration;

    fn secs(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    /// All arrivals before `horizon`, checking they never go backwards.
    fn run(process: ArrivalProcess, seed: u64, horizon: Time) -> Vec<Time> {
        let mut a = Arrivals::new(process).unwrap();
        let mut rng = Streams::new(seed).stream("arrivals");
        let mut out: Vec<Time> = Vec::new();
        while let Some(t) = a.next(&mut rng) {
            assert!(out.last().is_none_or(|&prev| prev <= t), "{t} after {:?}", out.last());
            if t >= horizon {
                break;
            }
            out.push(t);
        }
        out
    }

    fn count_in(times: &[Time], from: Time, to: Time) -> f64 {
        times.iter().filter(|&&t| from <= t && t < to).count() as f64
    }

    /// A Poisson count with mean `m` is within 4 standard deviations `sqrt(m)` of it.
    fn assert_poisson_count(got: f64, m: f64, what: &str) {
        assert!(
            (got - m).abs() < 4.0 * m.sqrt(),
            "{what}: {got} arrivals, expected {m} ± {}",
            4.0 * m.sqrt()
        );
    }

    #[test]
    fn poisson_counts_and_first_gap() {
        let times = run(ArrivalProcess::Poisson { rate: 1000.0 }, 1, secs(100));
        assert_poisson_count(times.len() as f64, 100_000.0, "[0, 100 s)");
        for k in 0..10 {
            assert_poisson_count(count_in(&times, secs(10 * k), secs(10 * k + 10)), 10_000.0, "10 s bin");
        }
        // The first arrival is Exp(rate) after 0: mean 1 ms, standard error 1 ms/sqrt(n).
        let mut rng = Streams::new(2).stream("first");
        let n = 50_000;
        let sum_ns: u64 = (0..n)
            .map(|_| {
                Arrivals::new(ArrivalProcess::Poisson { rate: 1000.0 }).unwrap().next(&mut rng).unwrap().0
            })
            .sum();
        let mean_s = sum_ns as f64 / n as f64 / 1e9;
        assert!((mean_s - 1e-3).abs() < 4.0 * 1e-3 / (n as f64).sqrt(), "first arrival mean {mean_s}");
    }

    #[test]
    fn constant_is_exact() {
        let mut a = Arrivals::new(ArrivalProcess::Constant { rate: 3.0 }).unwrap();
        let mut rng = Streams::new(1).stream("unused");
        let first: Vec<u64> = (0..3).map(|_| a.next(&mut rng).unwrap().0).collect();
        assert_eq!(first, [333_333_333, 666_666_667, 1_000_000_000]);
        // The 3000th arrival is 1000 s to the ns: no drift from summing 1/3.
        let t = (3..3000).map(|_| a.next(&mut rng).unwrap()).last().unwrap();
        assert_eq!(t, secs(1000));
        let mut a = Arrivals::new(ArrivalProcess::Constant { rate: 1000.0 }).unwrap();
        let t = (0..1_000_000).map(|_| a.next(&mut rng).unwrap()).last().unwrap();
        assert_eq!(t, secs(1000));
    }

    #[test]
    fn on_off_long_run_rate() {
        // rate 1000 during Exp(10 ms) on periods, Exp(30 ms) off: long-run rate
        // 1000·10/(10 + 30) = 250/s, 500_000 arrivals expected over 2000 s (50_000 cycles).
        // Renewal-reward: on time S over T has variance ≈ (T/E[C])·Var(on − C/4)
        // = 50_000·(0.5625·0.01² + 0.0625·0.03²) = 5.6 s², sd 2.37 s; the count's sd is
        // sqrt(1000²·5.6 + 500_000) ≈ 2_470. Tolerance 4 sd ≈ 9_900 (2%).
        let on = Dist::Exponential { mean: 0.01 };
        let off = Dist::Exponential { mean: 0.03 };
        let times = run(ArrivalProcess::OnOff { rate: 1000.0, on, off }, 5, secs(2000));
        let n = times.len() as f64;
        assert!((n - 500_000.0).abs() < 9_900.0, "{n} arrivals");
    }

    #[test]
    fn on_off_is_silent_when_off() {
        // Constant periods: on during [40k ms, 40k + 10 ms) only; 1000/s · 10 ms · 2500
        // cycles = 25_000 arrivals, a Poisson count.
        let process =
            ArrivalProcess::OnOff { rate: 1000.0, on: Dist::Constant(0.01), off: Dist::Constant(0.03) };
        let times = run(process, 6, secs(100));
        assert!(times.iter().all(|t| t.0 % 40_000_000 < 10_000_000));
        assert_poisson_count(times.len() as f64, 25_000.0, "on/off constant periods");
    }

    #[test]
    fn schedule_counts_per_step() {
        let steps = vec![(secs(0), 100.0), (secs(10), 0.0), (secs(20), 500.0), (secs(30), 0.0)];
        let mut a = Arrivals::new(ArrivalProcess::Schedule { steps }).unwrap();
        let mut rng = Streams::new(7).stream("schedule");
        let times: Vec<Time> = std::iter::from_fn(|| a.next(&mut rng)).collect();
        assert_eq!(a.next(&mut rng), None, "exhausted for good");
        assert_poisson_count(count_in(&times, secs(0), secs(10)), 1000.0, "step 0");
        assert_eq!(count_in(&times, secs(10), secs(20)), 0.0);
        assert_poisson_count(count_in(&times, secs(20), secs(30)), 5000.0, "step 2");
        assert_eq!(count_in(&times, secs(30), Time(u64::MAX)), 0.0);
    }

    #[test]
    fn schedule_carries_hazard_across_short_steps() {
        // 10 ms steps alternating 10/s and 1000/s for 10 s: each step holds far less than
        // one arrival's worth at the low rate, so most arrivals are found by spending
        // integrated rate across several steps. Low steps: 500 · 0.1 = 50 expected; high
        // steps: 500 · 10 = 5000.
        let steps = (0..1000u64).map(|k| (Time(k * 10_000_000), if k % 2 == 0 { 10.0 } else { 1000.0 }));
        let times = run(ArrivalProcess::Schedule { steps: steps.collect() }, 8, secs(10));
        let low = times.iter().filter(|t| (t.0 / 10_000_000) % 2 == 0).count() as f64;
        assert_poisson_count(low, 50.0, "low-rate steps");
        assert_poisson_count(times.len() as f64 - low, 5000.0, "high-rate steps");
        // A last step with a positive rate goes on for ever, from its start.
        let steps = vec![(secs(0), 0.0), (secs(5), 200.0)];
        let times = run(ArrivalProcess::Schedule { steps }, 9, secs(105));
        assert!(times[0] >= secs(5));
        assert_poisson_count(times.len() as f64, 20_000.0, "[5 s, 105 s)");
    }

    #[test]
    fn trace_replays_in_order() {
        let times = vec![Time(1), Time(1), Time(3)];
        let mut a = Arrivals::new(ArrivalProcess::Trace { times }).unwrap();
        let mut rng = Streams::new(1).stream("unused");
        let got: Vec<_> = (0..5).map(|_| a.next(&mut rng)).collect();
        assert_eq!(got, [Some(Time(1)), Some(Time(1)), Some(Time(3)), None, None]);
    }

    #[test]
    fn same_seed_same_arrivals() {
        let process = ArrivalProcess::OnOff {
            rate: 50.0,
            on: Dist::lognormal_mean_scv(1.0, 4.0),
            off: Dist::Pareto { shape: 1.5, scale: 0.5 },
        };
        let a = run(process.clone(), 11, secs(200));
        assert_eq!(a, run(process.clone(), 11, secs(200)));
        assert_ne!(a, run(process, 12, secs(200)));
    }

    #[test]
    fn validation_messages() {
        let err = |p: ArrivalProcess| Arrivals::new(p).unwrap_err().0;
        assert_eq!(
            err(ArrivalProcess::Poisson { rate: 0.0 }),
            "poisson rate must be finite and > 0 [1/s], got 0"
        );
        assert_eq!(
            err(ArrivalProcess::Constant { rate: f64::INFINITY }),
            "constant rate must be finite and > 0 [1/s], got inf"
        );
        let on_off = |on| ArrivalProcess::OnOff { rate: 1.0, on, off: Dist::Constant(1.0) };
        assert_eq!(
            err(on_off(Dist::Exponential { mean: -1.0 })),
            "on/off on period: exponential mean must be finite and > 0, got -1"
        );
        assert_eq!(err(on_off(Dist::Constant(0.0))), "on/off on-period mean must be >= 1 ns, got 0 s");
        let schedule = |steps| ArrivalProcess::Schedule { steps };
        assert_eq!(err(schedule(vec![])), "schedule needs at least one step");
        assert_eq!(
            err(schedule(vec![(secs(1), 1.0)])),
            "schedule steps[0] start must be 0, got 1.000000000s"
        );
        assert_eq!(
            err(schedule(vec![(secs(0), 1.0), (secs(0), 2.0)])),
            "schedule steps[1] start 0.000000000s must be after the previous start 0.000000000s"
        );
        assert_eq!(
            err(schedule(vec![(secs(0), -1.0)])),
            "schedule steps[0] rate must be finite and >= 0 [1/s], got -1"
        );
        assert_eq!(
            err(ArrivalProcess::Trace { times: vec![Time(5), Time(4)] }),
            "trace times[1] 0.000000004s is before times[0] 0.000000005s (times must be non-decreasing)"
        );
    }

    #[test]
    fn csv_trace_parsing() {
        // A comment before the header, a blank line, extra fields, spaces, CRLF, a repeat.
        let text = "# recorded 2024-05-01\ntime_s,client\n\n0.5,a\n  12.5003 , b\r\n# gap\n12.5003\n13\n";
        assert_eq!(
            parse_trace_csv(text).unwrap(),
            [Time(500_000_000), Time(12_500_300_000), Time(12_500_300_000), Time(13_000_000_000)]
        );
        // Exact decimals, rounded to the nearest ns; exponents through f64.
        let t = parse_trace_csv("0.0000000015\n.25\n7.\n1e1\n").unwrap();
        assert_eq!(t, [Time(2), Time(250_000_000), Time(7_000_000_000), Time(10_000_000_000)]);
        assert_eq!(parse_trace_csv("").unwrap(), []);
    }

    #[test]
    fn csv_trace_errors_name_the_line() {
        let err = |text: &str| parse_trace_csv(text).unwrap_err().to_string();
        assert_eq!(err("time\n1\nabc,2\n"), "line 3: time \"abc\" is not a number of seconds");
        assert_eq!(err("# c\n\n1.5\nstart\n"), "line 4: time \"start\" is not a number of seconds");
        assert_eq!(
            err("2\n1.5\n"),
            "line 2: time \"1.5\" is before the previous time 2.000000000s (times must be non-decreasing)"
        );
        assert_eq!(err("-1\n"), "line 1: time \"-1\" must be >= 0 seconds");
        assert_eq!(err("time\nNaN\n"), "line 2: time \"NaN\" must be >= 0 seconds");
        assert_eq!(err("1e300\n"), "line 1: time \"1e300\" is past the last representable time (584 years)");
        assert_eq!(
            err("99999999999\n"),
            "line 1: time \"99999999999\" is past the last representable time (584 years)"
        );
    }
}
