//! A real server of a virtual service in the model (by server index). Its own file so that
//! `ha` (a health check's fallback server) and `config` both use it without a circle.

use std::net::IpAddr;

use lvs_ipvs::ServiceKey;
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

impl DestConfig {
    /// Real server `server` on `port` by `fwd`, weight 1, no thresholds: what a test or a
    /// generated cluster starts from (it states only what differs).
    pub fn new(server: usize, port: u16, fwd: Forwarding) -> Self {
        DestConfig { server, port, fwd, weight: 1, u_threshold: 0, l_threshold: 0 }
    }

    /// The port IPVS stores: ipvsadm forces the service's port for DR and TUN (no port
    /// mapping there), except for firewall-mark services.
    pub fn kernel_port(&self, service: ServiceKey) -> u16 {
        match (self.fwd, service) {
            (Forwarding::DirectRouting | Forwarding::Tunnel, ServiceKey::Addr { port, .. }) => port,
            _ => self.port,
        }
    }

    /// What `ipvsadm -a` gives the kernel for this server of `service`, the server being
    /// at `addr` (no tunnel options: the model has no encapsulation settings).
    pub fn kernel(&self, addr: IpAddr, service: ServiceKey) -> lvs_sched::DestConfig {
        lvs_sched::DestConfig {
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            ..lvs_sched::DestConfig::new(addr, self.kernel_port(service), self.fwd)
        }
    }
}
