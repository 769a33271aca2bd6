//! The kernel's IPVS table, through one of three backends: generic netlink (the default),
//! the `ipvsadm` command, or a dry run that only logs.
//!
//! - `netlink`: a hand-written generic-netlink client for the family `"IPVS"` (one socket
//!   and one receive buffer reused for every call); its message codec (`netlink::codec`) is
//!   pure and never panics on any bytes.
//! - `ipvsadm`: the same operations by running `/usr/sbin/ipvsadm` (`-S -n`,
//!   `-L -n --nosort --thresholds`, `-a`, `-e`, `-d`, `-R`).
//! - `dryrun`: an in-memory table that answers as the kernel would (ESRCH, EEXIST, ENOENT,
//!   ERANGE) and prints each change as the `ipvsadm` command that would make it.
//!
//! [`Backend`] dispatches over the three with one `match` (a closed set, not a trait
//! object). Every backend lists real servers in kernel list order (newest first) and
//! reports refusals as [`Error::Kernel`] with the kernel's errno, so callers treat them
//! alike.
//!
//! Invariant: an edit sends every field of the [`RealServer`] (SET_DEST replaces them all;
//! `ipvsadm -e` is given `-x`, `-y` and the forwarding flag too), so an unchanged field is
//! one the caller passed unchanged.

use core::net::{IpAddr, SocketAddr};

use feedbackd_proto::types::Forwarding;

use lvs_ipvs::Protocol;

mod dryrun;
mod ipvsadm;
pub mod netlink;

/// How a virtual service is identified: the protocol crate's key, shared with the master
/// state machine (it prints as `ipvsadm -L -n` does).
pub use lvs_ipvs::ServiceKey;

/// `AF_INET` as IPVS carries it.
pub(crate) const AF_INET: u16 = 2;
/// `AF_INET6` as IPVS carries it.
pub(crate) const AF_INET6: u16 = 10;

/// Parses a service as the master's command line names it: `tcp:10.0.0.1:80`,
/// `udp:[::1]:53`, `sctp:10.0.0.1:9`, `fwm:1` (IPv4 firewall mark) or `fwm6:1` (IPv6).
pub fn parse_service(s: &str) -> Result<ServiceKey, String> {
    let (kind, rest) = s.split_once(':').ok_or_else(|| {
        format!("service {s:?}: expected tcp:VIP:PORT, udp:VIP:PORT, sctp:VIP:PORT or fwm:MARK")
    })?;
    let protocol = match kind.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        fwm @ ("fwm" | "fwm6") => {
            let mark: u32 = rest.parse().map_err(|_| format!("service {s:?}: bad firewall mark {rest:?}"))?;
            if mark == 0 {
                return Err(format!("service {s:?}: the firewall mark must be greater than zero"));
            }
            return Ok(ServiceKey::Fwmark { mark, ipv6: fwm == "fwm6" });
        }
        other => return Err(format!("service {s:?}: unknown kind {other:?} (tcp, udp, sctp, fwm, fwm6)")),
    };
    let sa: SocketAddr = rest
        .parse()
        .map_err(|_| format!("service {s:?}: expected VIP:PORT, with an IPv6 VIP in brackets"))?;
    Ok(ServiceKey::Addr { protocol, addr: sa.ip(), port: sa.port() })
}

/// A virtual service in the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualService {
    /// Its identity.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, ...).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout \[s\] (0 = none).
    pub timeout_s: u32,
    /// Persistence netmask (IPv4 mask in network order, or IPv6 prefix length).
    pub netmask: u32,
}

/// `IP_VS_SVC_F_PERSISTENT`.
pub const SVC_F_PERSISTENT: u32 = 0x1;
/// `IP_VS_SVC_F_HASHED`: kernel-internal; the backends clear it when listing.
pub const SVC_F_HASHED: u32 = 0x2;
/// `IP_VS_SVC_F_ONEPACKET` (`ipvsadm -o`).
pub const SVC_F_ONEPACKET: u32 = 0x4;
/// `IP_VS_SVC_F_SCHED1` (`flag-1`, `sh-fallback`, `mh-fallback`).
pub const SVC_F_SCHED1: u32 = 0x8;
/// `IP_VS_SVC_F_SCHED2` (`flag-2`, `sh-port`, `mh-port`).
pub const SVC_F_SCHED2: u32 = 0x10;
/// `IP_VS_SVC_F_SCHED3` (`flag-3`).
pub const SVC_F_SCHED3: u32 = 0x20;

impl VirtualService {
    /// A service with no persistence and the default netmask ipvsadm gives
    /// (`255.255.255.255`, or `/128` for IPv6).
    pub fn new(key: ServiceKey, scheduler: &str) -> VirtualService {
        VirtualService {
            key,
            scheduler: scheduler.to_owned(),
            flags: 0,
            timeout_s: 0,
            netmask: default_netmask(key.af()),
        }
    }
}

/// The netmask ipvsadm sends when `-M` is not given.
pub(crate) fn default_netmask(af: u16) -> u32 {
    if af == AF_INET6 { 128 } else { u32::MAX }
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

/// `IP_VS_CONN_F_FWD_MASK`.
pub const FWD_MASK: u32 = 0x7;
/// `FWD_METHOD` of the kernel's "local node" forwarding.
pub const FWD_LOCAL: u32 = 1;
/// `TUN_TYPE` ipip.
pub const TUN_TYPE_IPIP: u8 = 0;
/// `TUN_TYPE` gue.
pub const TUN_TYPE_GUE: u8 = 1;
/// `TUN_TYPE` gre.
pub const TUN_TYPE_GRE: u8 = 2;
/// `TUN_FLAGS` bit: checksum (`--tun-csum`).
pub const TUN_F_CSUM: u16 = 0x1;
/// `TUN_FLAGS` bit: remote checksum offload (`--tun-remcsum`).
pub const TUN_F_REMCSUM: u16 = 0x2;

impl RealServer {
    /// A real server with no thresholds, no tunnel options and zero connection counters.
    pub fn new(addr: IpAddr, port: u16, forwarding: Forwarding, weight: u32) -> RealServer {
        RealServer {
            addr,
            port,
            forwarding: Some(forwarding),
            fwd_raw: forwarding.ipvs_code(),
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
            active_conns: 0,
            inactive_conns: 0,
        }
    }

    /// The `FWD_METHOD` to send: `forwarding` when set, else `fwd_raw` (masked with 0x7).
    pub fn fwd_method(&self) -> u32 {
        match self.forwarding {
            Some(f) => f.ipvs_code(),
            None => self.fwd_raw & FWD_MASK,
        }
    }

    /// `forwarding` and `fwd_raw` for a kernel `FWD_METHOD` value.
    pub(crate) fn forwarding_of(fwd: u32) -> (Option<Forwarding>, u32) {
        let fwd = fwd & FWD_MASK;
        let f = match fwd {
            0 => Some(Forwarding::Nat),
            2 => Some(Forwarding::Tunnel),
            3 => Some(Forwarding::DirectRouting),
            _ => None,
        };
        (f, fwd)
    }

    /// `VIP:PORT` with an IPv6 address in brackets.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
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

impl Error {
    /// A kernel refusal of `op` with errno `errno`, explained as IPVS means it.
    pub(crate) fn kernel(op: impl Into<String>, errno: i32) -> Error {
        Error::Kernel { op: op.into(), errno, message: errno_meaning(errno).to_owned() }
    }

    /// The errno of a kernel refusal, `None` for other errors.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Other(_) => None,
        }
    }
}

/// What an errno means from IPVS's set and get commands.
pub fn errno_meaning(errno: i32) -> &'static str {
    match errno {
        libc::ESRCH => "no such virtual service",
        libc::EEXIST => "real server already exists",
        libc::ENOENT => "no such real server",
        libc::ERANGE => "weight or threshold out of range",
        libc::EINVAL => "invalid argument (address family, forwarding method or tunnel settings)",
        libc::EPERM => "needs CAP_NET_ADMIN",
        _ => nix::errno::Errno::from_raw(errno).desc(),
    }
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
    inner: Inner,
}

/// The closed set of backends.
#[derive(Debug)]
enum Inner {
    Netlink(netlink::NetlinkBackend),
    Ipvsadm(ipvsadm::IpvsadmBackend),
    DryRun(dryrun::DryRunBackend),
}

impl Backend {
    /// Opens a backend. `dry_run_services` seeds the dry-run table (ignored by the others).
    pub fn open(kind: BackendKind, dry_run_services: &[VirtualService]) -> Result<Backend, Error> {
        let inner = match kind {
            BackendKind::Netlink => Inner::Netlink(netlink::NetlinkBackend::open()?),
            BackendKind::Ipvsadm => Inner::Ipvsadm(ipvsadm::IpvsadmBackend::new()),
            BackendKind::DryRun => Inner::DryRun(dryrun::DryRunBackend::new(dry_run_services)),
        };
        Ok(Backend { inner })
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self.inner {
            Inner::Netlink(_) => BackendKind::Netlink,
            Inner::Ipvsadm(_) => BackendKind::Ipvsadm,
            Inner::DryRun(_) => BackendKind::DryRun,
        }
    }

    /// Every virtual service (GET_SERVICE dump).
    pub fn services(&mut self) -> Result<Vec<VirtualService>, Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.services(),
            Inner::Ipvsadm(b) => b.services(),
            Inner::DryRun(b) => Ok(b.services()),
        }
    }

    /// The real servers of one service, in kernel list order (GET_DEST dump).
    pub fn real_servers(&mut self, service: &ServiceKey) -> Result<Vec<RealServer>, Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.real_servers(service),
            Inner::Ipvsadm(b) => b.real_servers(service),
            Inner::DryRun(b) => b.real_servers(service),
        }
    }

    /// Adds a real server (NEW_DEST; `ipvsadm -a`).
    pub fn add_real_server(&mut self, service: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.add_real_server(service, rs),
            Inner::Ipvsadm(b) => b.add_real_server(service, rs),
            Inner::DryRun(b) => b.add_real_server(service, rs),
        }
    }

    /// Replaces a real server's settings (SET_DEST; `ipvsadm -e`): every field of `rs` is
    /// sent, so pass the current entry with the new weight.
    pub fn edit_real_server(&mut self, service: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.edit_real_server(service, rs),
            Inner::Ipvsadm(b) => b.edit_real_server(service, rs),
            Inner::DryRun(b) => b.edit_real_server(service, rs),
        }
    }

    /// Edits several real servers of one service, as [`Backend::edit_real_server`] does
    /// for each, in one go: one netlink datagram of SET_DEST messages, or one `ipvsadm -R`.
    ///
    /// Every edit is attempted; the first refusal is returned (the others may have been
    /// applied, as with separate calls).
    pub fn edit_real_servers_batch(
        &mut self,
        service: &ServiceKey,
        servers: &[RealServer],
    ) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.edit_real_servers_batch(service, servers),
            Inner::Ipvsadm(b) => b.edit_real_servers_batch(service, servers),
            Inner::DryRun(b) => {
                let mut first = None;
                for rs in servers {
                    if let Err(e) = b.edit_real_server(service, rs) {
                        first.get_or_insert(e);
                    }
                }
                first.map_or(Ok(()), Err)
            }
        }
    }

    /// Removes a real server (DEL_DEST; `ipvsadm -d`).
    pub fn remove_real_server(&mut self, service: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.remove_real_server(service, addr, port),
            Inner::Ipvsadm(b) => b.remove_real_server(service, addr, port),
            Inner::DryRun(b) => b.remove_real_server(service, addr, port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn service_key_displays_as_ipvsadm_lists_it() {
        let tcp = ServiceKey::Addr { protocol: Protocol::Tcp, addr: v4("10.0.0.1"), port: 80 };
        assert_eq!(tcp.to_string(), "TCP  10.0.0.1:80");
        let udp = ServiceKey::Addr { protocol: Protocol::Udp, addr: v4("10.0.0.1"), port: 53 };
        assert_eq!(udp.to_string(), "UDP  10.0.0.1:53");
        let sctp = ServiceKey::Addr { protocol: Protocol::Sctp, addr: v4("10.0.0.1"), port: 90 };
        assert_eq!(sctp.to_string(), "SCTP 10.0.0.1:90");
        let v6 = ServiceKey::Addr { protocol: Protocol::Tcp, addr: v4("2001:db8::1"), port: 80 };
        assert_eq!(v6.to_string(), "TCP  [2001:db8::1]:80");
        assert_eq!(ServiceKey::Fwmark { mark: 1, ipv6: false }.to_string(), "FWM  1");
        assert_eq!(ServiceKey::Fwmark { mark: 2, ipv6: true }.to_string(), "FWM  2 IPv6");
    }

    #[test]
    fn parse_service_accepts_the_cli_forms() {
        assert_eq!(
            parse_service("tcp:10.0.0.1:80"),
            Ok(ServiceKey::Addr { protocol: Protocol::Tcp, addr: v4("10.0.0.1"), port: 80 })
        );
        assert_eq!(
            parse_service("UDP:[::1]:53"),
            Ok(ServiceKey::Addr { protocol: Protocol::Udp, addr: v4("::1"), port: 53 })
        );
        assert_eq!(
            parse_service("sctp:10.0.0.1:9"),
            Ok(ServiceKey::Addr { protocol: Protocol::Sctp, addr: v4("10.0.0.1"), port: 9 })
        );
        assert_eq!(parse_service("fwm:1"), Ok(ServiceKey::Fwmark { mark: 1, ipv6: false }));
        assert_eq!(parse_service("fwm6:7"), Ok(ServiceKey::Fwmark { mark: 7, ipv6: true }));
        for bad in ["", "tcp", "tcp:10.0.0.1", "tcp:::1:53", "icmp:10.0.0.1:1", "fwm:0", "fwm:x", "fwm:-1"] {
            assert!(parse_service(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn fwd_method_prefers_the_typed_forwarding() {
        let mut rs = RealServer::new(v4("10.0.0.2"), 80, Forwarding::DirectRouting, 1);
        assert_eq!(rs.fwd_method(), 3);
        rs.forwarding = None;
        rs.fwd_raw = FWD_LOCAL;
        assert_eq!(rs.fwd_method(), 1);
        assert_eq!(RealServer::forwarding_of(0x102), (Some(Forwarding::Tunnel), 2));
    }

    #[test]
    fn errno_meanings_name_the_ipvs_cases() {
        let e = Error::kernel("SET_DEST TCP  10.0.0.1:80 -> 10.0.0.9:80", libc::ENOENT);
        assert_eq!(e.to_string(), "SET_DEST TCP  10.0.0.1:80 -> 10.0.0.9:80: no such real server (errno 2)");
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert_eq!(errno_meaning(libc::EPERM), "needs CAP_NET_ADMIN");
    }
}
