//! Saru active-active: the connection space split into blocks of source ports or
//! addresses, owned by the live directors and re-divided when one leaves or joins.
