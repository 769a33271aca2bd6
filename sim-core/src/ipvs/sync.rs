//! The IPVS connection synchronisation daemon (`ip_vs_sync.c`; `../ipvs/SPEC.md` §4):
//! which connections a master director sends, how they are packed into messages (the
//! kernel's version 0 and 1 wire formats), and how a backup director enters them in its
//! own table.
//!
//! The decision is the kernel's `ip_vs_sync_conn_needed()`, taken per incoming message
//! (a train of `k` packets) in [`Ipvs::count`]: the entry's `in_pkts` goes from `n` to
//! `n + k`, and the connection is queued once when one of those packet numbers passes the
//! threshold/period test, or at once when the message moved it into a TCP state other
//! than ESTABLISHED.
