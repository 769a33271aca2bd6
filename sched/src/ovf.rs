//! ovf: weighted overflow (`ip_vs_ovf.c`): the highest-weight server whose active
//! connections do not exceed its weight.

use crate::dest::DestId;
use crate::service::DestList;

/// Mirrors `ip_vs_ovf_schedule()`.
pub(crate) fn schedule(list: DestList<'_>) -> Option<DestId> {
    let mut pick: Option<(DestId, i32)> = None;
    for (id, d) in list.iter() {
        let w = d.weight;
        if d.overloaded || i64::from(d.active_conns) > i64::from(w) || w == 0 {
            continue;
        }
        if pick.is_none_or(|(_, hw)| w > hw) {
            pick = Some((id, w));
        }
    }
    pick.map(|(id, _)| id)
}
