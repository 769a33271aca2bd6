//! Log lines that do not flood: at most `burst` lines per cause in each `window`; the rest
//! are counted, and one summary line ("N similar messages suppressed in the last T s")
//! says so when the window ends.
//!
//! ```text
//! let mut limit = LogLimiter::new(5, Duration::from_secs(1));
//! if limit.handle_event(now, Cause::Refused) { log!("refused ...") }
//! while let Some(s) = limit.poll_suppressed(now) { log!("{}: {s}", s.cause) }
//! // and wake up at limit.poll_timeout() to report a window that went quiet
//! ```
//!
//! A window opens at a cause's first event and lasts `window`; the first event after it
//! has ended opens the next one. The summary of a window with suppressed lines is queued as
//! soon as the window is seen to have ended, by an event or by [`LogLimiter::handle_timeout`],
//! so it always comes before the next line of its cause.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use lvs_sched::{Duration, Time};

/// Lines suppressed for one cause during one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suppressed<C> {
    /// The cause.
    pub cause: C,
    /// How many lines were not written.
    pub count: u64,
    /// From the window's start to when it was seen to end.
    pub over: Duration,
}

impl<C> fmt::Display for Suppressed<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.count == 1 { "" } else { "s" };
        write!(f, "{} similar message{s} suppressed in the last {:.1} s", self.count, self.over.as_secs_f64())
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Time,
    logged: u32,
    suppressed: u64,
}

/// A limiter for any set of causes `C` (an enum of the daemon's).
#[derive(Clone, Debug)]
pub struct LogLimiter<C> {
    burst: u32,
    window: Duration,
    open: BTreeMap<C, Window>,
    summaries: VecDeque<Suppressed<C>>,
}

impl<C: Ord + Copy> LogLimiter<C> {
    /// At most `burst` lines per cause per `window`.
    pub fn new(burst: u32, window: Duration) -> LogLimiter<C> {
        assert!(burst > 0 && window.as_nanos() > 0, "a log limiter needs burst > 0 and a window");
        LogLimiter { burst, window, open: BTreeMap::new(), summaries: VecDeque::new() }
    }

    /// Something of `cause` happened at `now`: whether to write its line.
    pub fn handle_event(&mut self, now: Time, cause: C) -> bool {
        self.close_if_over(now, cause);
        let w = self.open.entry(cause).or_insert(Window { start: now, logged: 0, suppressed: 0 });
        if w.logged < self.burst {
            w.logged += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Ends the windows that are over at `now`, queueing their summaries.
    pub fn handle_timeout(&mut self, now: Time) {
        let over: Vec<C> =
            self.open.iter().filter(|(_, w)| now >= w.start + self.window).map(|(c, _)| *c).collect();
        for c in over {
            self.close_if_over(now, c);
        }
    }

    fn close_if_over(&mut self, now: Time, cause: C) {
        let Some(w) = self.open.get(&cause) else { return };
        if now < w.start + self.window {
            return;
        }
        if w.suppressed > 0 {
            self.summaries.push_back(Suppressed {
                cause,
                count: w.suppressed,
                over: now.saturating_since(w.start),
            });
        }
        self.open.remove(&cause);
    }

    /// The next summary to write.
    pub fn poll_suppressed(&mut self) -> Option<Suppressed<C>> {
        self.summaries.pop_front()
    }

    /// When a window with suppressed lines ends (call [`LogLimiter::handle_timeout`] then).
    pub fn poll_timeout(&self) -> Option<Time> {
        self.open.values().filter(|w| w.suppressed > 0).map(|w| w.start + self.window).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Cause {
        A,
        B,
    }

    #[test]
    fn a_flood_writes_burst_lines_then_one_summary_per_window() {
        let mut l = LogLimiter::new(3, Duration::from_secs(1));
        // 35,000 events a second for 4 seconds, as an accept loop out of descriptors did.
        let mut written = 0;
        let mut summaries = Vec::new();
        for i in 0..140_000u64 {
            let now = Time(i * S / 35_000);
            if l.handle_event(now, Cause::A) {
                written += 1;
            }
            while let Some(s) = l.poll_suppressed() {
                summaries.push(s);
            }
        }
        l.handle_timeout(Time(10 * S));
        while let Some(s) = l.poll_suppressed() {
            summaries.push(s);
        }
        assert_eq!(written, 12, "3 lines in each of 4 windows");
        assert_eq!(summaries.len(), 4);
        assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 140_000 - 12);
        assert!(summaries.iter().all(|s| s.cause == Cause::A));
        assert!(summaries[0].to_string().starts_with("34997 similar messages suppressed in the last 1.0 s"));
    }

    #[test]
    fn causes_are_limited_apart_and_a_quiet_window_reports_on_its_timer() {
        let mut l = LogLimiter::new(1, Duration::from_secs(1));
        assert!(l.handle_event(Time(0), Cause::A));
        assert!(!l.handle_event(Time(1), Cause::A));
        assert!(!l.handle_event(Time(2), Cause::A));
        assert!(l.handle_event(Time(3), Cause::B), "another cause has its own budget");
        assert_eq!(l.poll_timeout(), Some(Time(S)), "only A has something to report");
        l.handle_timeout(Time(S - 1));
        assert_eq!(l.poll_suppressed(), None);
        l.handle_timeout(Time(S + 5));
        let s = l.poll_suppressed().unwrap();
        assert_eq!((s.cause, s.count, s.over), (Cause::A, 2, Duration(S + 5)));
        assert_eq!(l.poll_suppressed(), None, "B suppressed nothing");
        assert_eq!(l.poll_timeout(), None);
        // A new window: a line again at once.
        assert!(l.handle_event(Time(S + 6), Cause::A));
        assert_eq!(
            Suppressed { cause: Cause::B, count: 1, over: Duration::from_millis(2500) }.to_string(),
            "1 similar message suppressed in the last 2.5 s"
        );
    }
}
