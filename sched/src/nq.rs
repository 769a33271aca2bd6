//! nq: never queue (`ip_vs_nq.c`): the first idle server in list order, else sed.

use crate::dest::DestId;
use crate::service::DestList;

/// Mirrors `ip_vs_nq_schedule()`.
pub(crate) fn schedule(list: DestList<'_>) -> Option<DestId> {
    let mut least: Option<(DestId, i64, i64)> = None;
    for (id, d) in list.iter() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = i64::from((d.active_conns as i32).wrapping_add(1));
        if d.active_conns == 0 {
            return Some(id);
        }
        let dw = i64::from(d.weight);
        if least.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
            least = Some((id, doh, dw));
        }
    }
    least.map(|(id, _, _)| id)
}
