//! The `cpuload` computation, pure: `/proc/stat`'s aggregate counters in, the CPU's busy
//! fraction between two samples out. The agent feeds it the real file; the simulator can
//! feed it a simulated server's counters, so both measure load the same way.
//!
//! busy = 1 - Δ(idle + iowait) / Δtotal, total = user + nice + system + idle + iowait +
//! irq + softirq + steal (guest and guest_nice are already inside user and nice, so they
//! are not added again). The first sample measures since boot.

/// `/proc/stat`'s aggregate counters [USER_HZ ticks].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuCounters {
    /// idle + iowait.
    pub idle: u64,
    /// All the non-guest fields.
    pub total: u64,
}

/// The previous counters and the last busy fraction.
#[derive(Clone, Debug, Default)]
pub struct CpuLoad {
    prev: Option<CpuCounters>,
    last_busy: Option<f64>,
}

impl CpuLoad {
    /// No sample yet.
    pub fn new() -> CpuLoad {
        CpuLoad::default()
    }

    /// Moves to `now` and returns the busy fraction since the previous counters (since
    /// boot the first time).
    ///
    /// When the total did not move (two samples within one tick) or went backwards (a
    /// wrapped or reset counter), there is no interval to measure: the previous busy
    /// fraction is reused and `now` becomes the new base. `idle + iowait` alone may go
    /// backwards on NO_HZ kernels (iowait is an estimate there); its delta is clamped to
    /// [0, Δtotal].
    pub fn advance(&mut self, now: CpuCounters) -> Result<f64, String> {
        let base = self.prev.unwrap_or_default();
        self.prev = Some(now);
        let busy = match now.total.checked_sub(base.total) {
            Some(total) if total > 0 => {
                let idle = now.idle.saturating_sub(base.idle).min(total);
                // (Δtotal - Δidle) / Δtotal: the same as 1 - Δidle / Δtotal, one rounding.
                (total - idle) as f64 / total as f64
            }
            _ => match self.last_busy {
                Some(busy) => busy,
                None => return Err("no CPU time counted yet in the `cpu` line".to_owned()),
            },
        };
        self.last_busy = Some(busy);
        Ok(busy)
    }
}

/// The first `cpu ` line's counters: at least user, nice, system and idle (kernels before
/// 2.6 stop there), at most the first eight fields.
pub fn parse_proc_stat(text: &str) -> Result<CpuCounters, String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("cpu ").map(str::trim))
        .ok_or_else(|| "no `cpu ` line".to_owned())?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(|w| w.parse::<u64>().map_err(|_| format!("`cpu` line field {w:?} is not a counter")))
        .collect::<Result<_, _>>()?;
    if fields.len() < 4 {
        return Err(format!("the `cpu` line has {} fields, expected at least 4", fields.len()));
    }
    let idle = fields[3].saturating_add(fields.get(4).copied().unwrap_or(0));
    let total = fields.iter().take(8).fold(0u64, |sum, &f| sum.saturating_add(f));
    Ok(CpuCounters { idle, total })
}
