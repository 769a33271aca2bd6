//! wlc (`ip_vs_wlc.c`, ipvsadm's default) and sed (`ip_vs_sed.c`): the same scan with a
//! different overhead.

use crate::dest::{Dest, DestId};
use crate::service::DestList;

/// Mirrors `ip_vs_wlc_schedule()`: overhead `active*256 + inactive`.
pub(crate) fn schedule_wlc(list: DestList<'_>) -> Option<DestId> {
    weighted_least(list, Dest::conn_overhead)
}

/// Mirrors `ip_vs_sed_schedule()`: overhead `active + 1` (inactive ignored).
pub(crate) fn schedule_sed(list: DestList<'_>) -> Option<DestId> {
    weighted_least(list, |d| (d.active_conns as i32).wrapping_add(1))
}

/// Stage 1: the first usable server. Stage 2: a later one wins when
/// `loh * dw > doh * lw` in 64-bit (the kernel's `(__s64)` casts); strict, so ties keep
/// the earlier server. Weight 0 is not skipped in stage 2 but can never win.
#[inline]
fn weighted_least(list: DestList<'_>, overhead: impl Fn(&Dest) -> i32) -> Option<DestId> {
    let first = (0..list.len()).find(|&pos| list.at(pos).1.usable())?;
    let (mut least, ld) = list.at(first);
    let mut loh = i64::from(overhead(ld));
    let mut lw = i64::from(ld.weight);
    for pos in first + 1..list.len() {
        let (id, d) = list.at(pos);
        if d.overloaded {
            continue;
        }
        let doh = i64::from(overhead(d));
        let dw = i64::from(d.weight);
        if loh * dw > doh * lw {
            least = id;
            loh = doh;
            lw = dw;
        }
    }
    Some(least)
}
