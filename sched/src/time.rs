//! Virtual time: an integer count of nanoseconds, never `f64` seconds.
//!
//! The crate never reads a clock; whoever drives a [`crate::Service`] passes `now`.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A point in virtual time [ns since the start of the run].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

/// A span of virtual time [ns].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Time {
    /// The start of a run.
    pub const ZERO: Time = Time(0);

    /// The end of virtual time: where `Time + Duration` saturates.
    pub const MAX: Time = Time(u64::MAX);

    /// Nanoseconds since the start of the run.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Time) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s * 1_000_000_000)
    }

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms * 1_000_000)
    }

    /// `us` microseconds.
    pub const fn from_micros(us: u64) -> Duration {
        Duration(us * 1_000)
    }

    /// Length [ns].
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Length [s], for display and ratios only (time itself stays an integer).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturates at the end of virtual time (`u64::MAX` ns, 584 years): a sample from a
    /// long tail cannot make time wrap; a driver stops long before (the simulator at its
    /// horizon).
    #[inline]
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}

impl AddAssign<Duration> for Time {
    #[inline]
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    #[inline]
    fn sub(self, earlier: Time) -> Duration {
        Duration(self.0.checked_sub(earlier.0).expect("time went backwards"))
    }
}

impl Sub<Duration> for Duration {
    type Output = Duration;
    #[inline]
    fn sub(self, shorter: Duration) -> Duration {
        Duration(self.0.checked_sub(shorter.0).expect("negative duration"))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates_at_the_end_of_time() {
        assert_eq!(Time(u64::MAX - 1) + Duration(5), Time::MAX);
        assert_eq!(Time(7) + Duration(u64::MAX), Time::MAX);
        assert_eq!(Time(7) + Duration(3), Time(10));
        let mut t = Time(u64::MAX - 2);
        t += Duration::from_secs(1);
        assert_eq!(t, Time::MAX);
    }
}
