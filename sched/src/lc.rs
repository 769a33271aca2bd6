//! lc: least connection (`ip_vs_lc.c`). Weights other than 0 are ignored.

use crate::dest::DestId;
use crate::service::DestList;

/// Mirrors `ip_vs_lc_schedule()`: least `conn_overhead`, first in list order on ties.
pub(crate) fn schedule(list: DestList<'_>) -> Option<DestId> {
    let mut least: Option<(DestId, i32)> = None;
    for (id, d) in list.iter() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = d.conn_overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((id, doh));
        }
    }
    least.map(|(id, _)| id)
}
