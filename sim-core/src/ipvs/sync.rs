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
#![allow(missing_docs, unused)]
use lvs_sched::Time;
pub struct SyncConn;
pub struct Sender;
impl Sender {
    pub fn new(_: &crate::ha::SyncConfig, _: u8) -> Self {
        Sender
    }
    pub fn push(&mut self, _: Time, _: &SyncConn) -> Option<Vec<u8>> {
        None
    }
    pub fn next_flush(&self) -> Option<Time> {
        None
    }
    pub fn flush(&mut self, _: Time) -> Option<Vec<u8>> {
        None
    }
}
pub fn decode(_: &[u8]) -> Result<Vec<SyncConn>, ()> {
    Ok(vec![])
}
impl super::Ipvs {
    pub fn take_synced(&mut self, _: &mut Vec<SyncConn>) {}
    pub fn apply_sync(&mut self, _: Time, _: &SyncConn) -> Result<super::ConnId, ()> {
        Err(())
    }
    pub fn set_sync_master(&mut self, _: Option<(u32, u32)>) {}
    pub fn find_conn(&self, _: &lvs_sched::Flow) -> Option<super::ConnId> {
        None
    }
}
