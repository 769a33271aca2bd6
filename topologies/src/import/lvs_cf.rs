//! piranha's `lvs.cf` as a topology (owner: wt-piranha).

use super::{ImportError, Imported, Source, not_yet};

/// Reads one `lvs.cf`.
pub(super) fn import(sources: &[&Source]) -> Result<Imported, ImportError> {
    Err(not_yet(sources, "lvs.cf"))
}
