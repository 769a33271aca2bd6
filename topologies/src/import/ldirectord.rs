//! `ldirectord.cf` (with heartbeat's `ha.cf` and `haresources`) as a topology (owner:
//! wt-ldirectord).

use super::{ImportError, Imported, Source, not_yet};

/// Reads `ldirectord.cf` files (one, or one per director), with the heartbeat files of a
/// fail-over group when given.
pub(super) fn import(
    ldirectord: &[&Source],
    ha_cf: &[&Source],
    haresources: &[&Source],
) -> Result<Imported, ImportError> {
    let _ = (ha_cf, haresources, super::heartbeat::PLACEHOLDER);
    Err(not_yet(ldirectord, "ldirectord.cf"))
}
