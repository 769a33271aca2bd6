//! heartbeat's `ha.cf` and `haresources`, read with `ldirectord.cf` (owner: wt-ldirectord).

/// Nothing yet.
pub(super) const PLACEHOLDER: () = ();
