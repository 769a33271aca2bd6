//! rr: round robin (`ip_vs_rr.c`).
//!
//! A cursor into the list; weights matter only as `> 0`. There is no `upd_dest`: weight
//! edits reset nothing, and a newly added server (linked at the front) is reached only
//! when the scan wraps.

use crate::dest::DestId;
use crate::service::DestList;

/// `svc->sched_data`: the last server picked, `None` for the list head.
#[derive(Clone, Debug, Default)]
pub(crate) struct RrState {
    cursor: Option<usize>,
}

impl RrState {
    pub(crate) fn new() -> Self {
        RrState { cursor: None }
    }

    /// A server was linked at the front: the cursor keeps pointing at the same server,
    /// whose position moved by one.
    pub(crate) fn add_dest(&mut self) {
        if let Some(p) = &mut self.cursor {
            *p += 1;
        }
    }

    /// The server at `pos` was unlinked. Mirrors `ip_vs_rr_del_dest()`: a cursor on it
    /// moves to its predecessor (the head if it was first).
    pub(crate) fn del_dest(&mut self, pos: usize) {
        self.cursor = match self.cursor {
            Some(p) if p == pos => pos.checked_sub(1),
            Some(p) if p > pos => Some(p - 1),
            c => c,
        };
    }

    /// Mirrors `ip_vs_rr_schedule()`: scan from the entry after the cursor, wrap once.
    pub(crate) fn schedule(&mut self, list: DestList<'_>) -> Option<DestId> {
        let last = self.cursor;
        let mut start = last.map_or(0, |p| p + 1);
        let mut pass = 0;
        loop {
            for pos in start..list.len() {
                let (id, d) = list.at(pos);
                if d.usable() {
                    self.cursor = Some(pos);
                    return Some(id);
                }
                if Some(pos) == last {
                    return None;
                }
            }
            start = 0;
            pass += 1;
            if !(pass < 2 && last.is_some()) {
                return None;
            }
        }
    }
}
