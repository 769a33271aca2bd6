//! `keepalived.conf` as a topology (owner: wt-keepalived).

use super::{ImportError, Imported, Source, not_yet};

/// Reads one `keepalived.conf`, or one per director of a VRRP group.
pub(super) fn import(sources: &[&Source]) -> Result<Imported, ImportError> {
    Err(not_yet(sources, "keepalived.conf"))
}
