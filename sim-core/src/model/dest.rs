//! A real server of a virtual service in the model (by server index). Its own file so that
//! `ha` (a health check's fallback server) and `config` both use it without a circle.

use lvs_sched::Forwarding;

/// A real server of a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConfig {
    /// Index into [`super::ClusterConfig::servers`].
    pub server: usize,
    /// Its port (forced to the service port for DR and TUN, as ipvsadm does).
    pub port: u16,
    /// Forwarding method.
    pub fwd: Forwarding,
    /// Initial weight.
    pub weight: u32,
    /// `-x` upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// `-y` lower connection threshold.
    pub l_threshold: u32,
}
