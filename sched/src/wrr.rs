//! wrr: weighted round robin (`ip_vs_wrr.c`, the current state machine).
//!
//! Interleaved passes over the list with a falling threshold `cw`; every add, delete or
//! edit (even a no-op one) resets the cursor to the list head and adjusts `cw`.

use crate::dest::DestId;
use crate::service::DestList;

/// `struct ip_vs_wrr_mark`.
#[derive(Clone, Debug)]
pub(crate) struct WrrState {
    /// Current server position, `None` for the list head.
    cl: Option<usize>,
    /// Current weight threshold.
    cw: i32,
    /// Maximum weight, adjusted: `max - (di - 1)`.
    mw: i32,
    /// gcd of the positive weights (1 if none).
    di: i32,
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Mirrors `ip_vs_wrr_gcd_weight()`.
fn gcd_weight(list: DestList<'_>) -> i32 {
    let g = list
        .iter()
        .map(|(_, d)| d.weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 { g } else { 1 }
}

/// Mirrors `ip_vs_wrr_max_weight()`.
fn max_weight(list: DestList<'_>) -> i32 {
    list.iter().map(|(_, d)| d.weight).max().unwrap_or(0).max(0)
}

impl WrrState {
    /// `ip_vs_wrr_init_svc()`.
    pub(crate) fn new(list: DestList<'_>) -> Self {
        let di = gcd_weight(list);
        let mw = max_weight(list) - (di - 1);
        WrrState { cl: None, cw: mw, mw, di }
    }

    /// `ip_vs_wrr_dest_changed()`, run on add, delete and every edit.
    pub(crate) fn dest_changed(&mut self, list: DestList<'_>) {
        self.changed(gcd_weight(list), max_weight(list));
    }

    /// [`WrrState::dest_changed`] after a server of `weight` joined the list: the gcd and
    /// maximum over the list grow by that one weight, without a scan of the list.
    pub(crate) fn dest_added(&mut self, weight: i32) {
        // mw = max − (gcd − 1) is 0 exactly when no weight was positive (gcd 1, max 0).
        let (gcd_was, max_was) = if self.mw > 0 { (self.di, self.mw + self.di - 1) } else { (0, 0) };
        let g = match (gcd_was, weight > 0) {
            (_, false) => gcd_was,
            (0, true) => weight,
            (g, true) => gcd(weight, g),
        };
        self.changed(if g > 0 { g } else { 1 }, max_was.max(weight).max(0));
    }

    fn changed(&mut self, gcd: i32, max: i32) {
        self.cl = None;
        self.di = gcd;
        self.mw = max - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// Mirrors `ip_vs_wrr_schedule()`.
    pub(crate) fn schedule(&mut self, list: DestList<'_>) -> Option<DestId> {
        if self.mw == 0 {
            return None;
        }
        let last = self.cl;
        let mut start = last.map_or(0, |p| p + 1);
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            for pos in start..list.len() {
                let (id, d) = list.at(pos);
                if !d.overloaded && d.weight >= self.cw {
                    self.cl = Some(pos);
                    return Some(id);
                }
                if Some(pos) == stop {
                    self.cl = Some(pos);
                    return None;
                }
            }
            start = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}
