//! fo: weighted failover (`ip_vs_fo.c`): the highest weight wins, first in list order.

use crate::dest::DestId;
use crate::service::DestList;

/// Mirrors `ip_vs_fo_schedule()`.
pub(crate) fn schedule(list: DestList<'_>) -> Option<DestId> {
    let mut hw = 0;
    let mut pick = None;
    for (id, d) in list.iter() {
        if !d.overloaded && d.weight > hw {
            pick = Some(id);
            hw = d.weight;
        }
    }
    pick
}
