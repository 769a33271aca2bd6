//! The kernel's IPVS table, through one of three backends: generic netlink (the default),
//! the `ipvsadm` command, or a dry run that only logs.
//!
//! CONTRACT STUB: the public items below are fixed; the bodies are to be written.

use core::net::IpAddr;

use feedbackd_proto::types::Forwarding;

/// How a virtual service is identified: the protocol crate's key, shared with the master
/// state machine.
pub use feedbackd_proto::types::ServiceKey;

/// A virtual service in the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualService {
    /// Its identity.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, ...).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout [s] (0 = none).
    pub timeout_s: u32,
    /// Persistence netmask (IPv4 mask in network order, or IPv6 prefix length).
    pub netmask: u32,
}

/// A real server entry (an IPVS "destination"): every field SET_DEST must resend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method; `None` for the kernel's "local" (1), kept as it is.
    pub forwarding: Option<Forwarding>,
    /// The raw `FWD_METHOD` value (0 masq, 1 local, 2 tunnel, 3 droute).
    pub fwd_raw: u32,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (`-x`, 0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = none).
    pub l_threshold: u32,
    /// Tunnel type (`TUN_TYPE`: 0 ipip, 1 gue, 2 gre).
    pub tun_type: u8,
    /// Tunnel port (`TUN_PORT`, host order; GUE).
    pub tun_port: u16,
    /// Tunnel flags (`TUN_FLAGS`).
    pub tun_flags: u16,
    /// Active connections (read only).
    pub active_conns: u32,
    /// Inactive connections (read only).
    pub inactive_conns: u32,
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused: errno and its meaning for this call (ESRCH: no such service, ...).
    #[error("{op}: {message} (errno {errno})")]
    Kernel {
        /// The operation, e.g. `SET_DEST TCP 10.0.0.1:80 -> 10.0.0.2:80`.
        op: String,
        /// Positive errno.
        errno: i32,
        /// What it means.
        message: String,
    },
    /// Anything else: a socket error, ipvsadm missing or failing, a malformed reply.
    #[error("{0}")]
    Other(String),
}

/// Which backend (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Generic netlink, family "IPVS" (default).
    Netlink,
    /// The `ipvsadm` command.
    Ipvsadm,
    /// Log only; the table lives in memory, seeded with the configured services.
    DryRun,
}

/// An open backend.
#[derive(Debug)]
pub struct Backend {
    _private: (),
}

impl Backend {
    /// Opens a backend. `dry_run_services` seeds the dry-run table (ignored by the others).
    pub fn open(kind: BackendKind, dry_run_services: &[VirtualService]) -> Result<Backend, Error> {
        let _ = (kind, dry_run_services);
        unimplemented!("contract stub")
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        unimplemented!("contract stub")
    }

    /// Every virtual service (GET_SERVICE dump).
    pub fn services(&mut self) -> Result<Vec<VirtualService>, Error> {
        unimplemented!("contract stub")
    }

    /// The real servers of one service, in kernel list order (GET_DEST dump).
    pub fn real_servers(&mut self, service: &ServiceKey) -> Result<Vec<RealServer>, Error> {
        let _ = service;
        unimplemented!("contract stub")
    }

    /// Adds a real server (NEW_DEST; `ipvsadm -a`).
    pub fn add_real_server(&mut self, service: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        let _ = (service, rs);
        unimplemented!("contract stub")
    }

    /// Replaces a real server's settings (SET_DEST; `ipvsadm -e`): every field of `rs` is
    /// sent, so pass the current entry with the new weight.
    pub fn edit_real_server(&mut self, service: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        let _ = (service, rs);
        unimplemented!("contract stub")
    }

    /// Removes a real server (DEL_DEST; `ipvsadm -d`).
    pub fn remove_real_server(&mut self, service: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), Error> {
        let _ = (service, addr, port);
        unimplemented!("contract stub")
    }
}

/// Parses a service as the master's `--service` option writes it: `tcp:10.0.0.1:80`,
/// `udp:[2001:db8::1]:53`, `sctp:10.0.0.1:9`, `fwm:1`, `fwm6:1`.
pub fn parse_service(s: &str) -> Result<ServiceKey, String> {
    let _ = s;
    unimplemented!("contract stub")
}
