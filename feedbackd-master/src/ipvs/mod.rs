//! The kernel's IPVS table, through one of three backends: generic netlink (the default),
//! the `ipvsadm` command, or a dry run that only logs.
//!
//! - `netlink`: a hand-written generic-netlink client for the family `"IPVS"` (one socket
//!   and one receive buffer reused for every call); its message codec (`netlink::codec`) is
//!   pure and never panics on any bytes.
//! - `ipvsadm`: the same operations by running `/usr/sbin/ipvsadm` (`-S -n`,
//!   `-L -n --nosort --thresholds`, `-a`, `-e`, `-d`, `-R`).
//! - `dryrun`: `lvs_ipvs`'s table (the simulator's), which answers as the kernel would
//!   (ESRCH, EEXIST, ENOENT, ERANGE, EINVAL), and prints each change as the `ipvsadm`
//!   command that would make it.
//!
//! The vocabulary is `lvs_ipvs`'s: a service is a [`ServiceKey`] and a [`ServiceConfig`]
//! (scheduler, [`lvs_ipvs::SvcFlags`], persistence, netmask), a real server a
//! [`DestConfig`] (forwarding, weight, thresholds, [`lvs_ipvs::Tunnel`]); what a listing
//! adds, the connection counts and the traffic counters with their rates
//! ([`lvs_ipvs::Stats`], [`lvs_ipvs::Rates`]), make the master's rows ([`DestRow`],
//! [`ServiceRow`]).
//!
//! Virtual services are added, edited and removed through every backend
//! ([`Backend::add_service`], [`Backend::edit_service`], [`Backend::remove_service`]);
//! a config is first put in the one form all three send ([`normalize_service`]): the
//! PERSISTENT flag follows the persistence timeout, and a netmask counts only for a
//! persistent service (otherwise the family's default is sent, as `ipvsadm -A` does).
//! A persistence engine (`--pe sip`) is refused: the master does not manage one.
//!
//! [`Backend`] dispatches over the three with one `match` (a closed set, not a trait
//! object). Every backend lists real servers in kernel list order (newest first) and
//! reports refusals as [`Error::Kernel`] with the kernel's errno, so callers treat them
//! alike.
//!
//! Invariant: an edit sends every field of the [`RealServer`] (SET_DEST replaces them all;
//! `ipvsadm -e` is given `-x`, `-y` and the forwarding flag too), so an unchanged field is
//! one the caller passed unchanged.

use core::net::IpAddr;

use lvs_ipvs::{
    AddrPort, DestConfig, Forwarding, IpvsError, Rates, SchedulerKind, ServiceConfig, Stats, SvcFlags,
};

mod dryrun;
mod ipvsadm;
pub mod netlink;

/// How a virtual service is identified: the protocol crate's key, shared with the master
/// state machine (it prints as `ipvsadm -L -n` does).
pub use lvs_ipvs::ServiceKey;

/// Parses a service as the master's command line (and its journal) names it:
/// `tcp:10.0.0.1:80`, `udp:[::1]:53`, `sctp:10.0.0.1:9`, `fwm:1` (IPv4 firewall mark) or
/// `fwm6:1` (IPv6).
pub use feedbackd_proto::types::parse_service;

/// The service `ipvsadm -A KEY -s SCHEDULER` makes: no flags, not persistent, the
/// default netmask of its family.
pub fn service_config(key: &ServiceKey, scheduler: SchedulerKind) -> ServiceConfig {
    ServiceConfig { netmask: lvs_ipvs::ipvsadm::default_netmask(key), ..ServiceConfig::new(scheduler) }
}

/// A real server as the kernel lists it (GET_DEST, `ipvsadm -L`): what was set, which an
/// edit sends back whole, the connection counts, and the traffic counters and rates only
/// the kernel keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestRow {
    /// What NEW_DEST/SET_DEST set (`ipvsadm -a/-e`).
    pub config: DestConfig,
    /// `ActiveConn`.
    pub active_conns: u32,
    /// `InActConn`.
    pub inactive_conns: u32,
    /// Counters since the real server was added (`ipvsadm -L -n --stats`;
    /// IPVS_DEST_ATTR_STATS64).
    pub stats: Stats,
    /// The kernel's estimated rates (`ipvsadm -L -n --rate`), over the last seconds.
    pub rates: Rates,
}

impl DestRow {
    /// A row with no connections and no traffic.
    pub fn new(config: DestConfig) -> DestRow {
        DestRow::with_traffic(config, 0, 0, Stats::default(), Rates::default())
    }

    /// A row with everything a listing gives.
    pub fn with_traffic(
        config: DestConfig,
        active_conns: u32,
        inactive_conns: u32,
        stats: Stats,
        rates: Rates,
    ) -> DestRow {
        DestRow { config, active_conns, inactive_conns, stats, rates }
    }
}

/// A virtual service as the kernel lists it (GET_SERVICE, `ipvsadm -L`): its settings and
/// its traffic (every real server's together, including those since removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    /// Which service.
    pub key: ServiceKey,
    /// What NEW_SERVICE/SET_SERVICE set (`ipvsadm -A/-E`).
    pub config: ServiceConfig,
    /// Counters since the service was added (IPVS_SVC_ATTR_STATS64).
    pub stats: Stats,
    /// The kernel's estimated rates.
    pub rates: Rates,
}

impl ServiceRow {
    /// A row with no traffic.
    pub fn new(key: ServiceKey, config: ServiceConfig) -> ServiceRow {
        ServiceRow { key, config, stats: Stats::default(), rates: Rates::default() }
    }
}

/// The one form of a service config every backend sends (and the dry run stores): the
/// PERSISTENT flag set exactly when there is a persistence timeout, the kernel-internal
/// HASHED flag cleared, and the family's default netmask when not persistent (the kernel
/// only uses it for persistence; `ipvsadm` sends the default then). An IPv6 netmask of
/// `u32::MAX` (never set) is the prefix length 128.
pub fn normalize_service(key: &ServiceKey, config: &ServiceConfig) -> ServiceConfig {
    let mut c = *config;
    c.flags = SvcFlags(c.flags.0 & !(SvcFlags::PERSISTENT | SvcFlags::HASHED));
    if c.persistence.is_some() {
        c.flags.0 |= SvcFlags::PERSISTENT;
    } else {
        c.netmask = lvs_ipvs::ipvsadm::default_netmask(key);
    }
    if key.is_ipv6() && c.netmask == u32::MAX {
        c.netmask = 128;
    }
    c
}

/// Refuses, the same for every backend, what one of them could not send: a persistence
/// engine, a persistence timeout outside ipvsadm's 1 s to 31 days, an IPv6 prefix length
/// outside 1..=128.
fn check_service(op: &str, key: &ServiceKey, c: &ServiceConfig) -> Result<(), Error> {
    let refuse = |why: String| Err(Error::Other(format!("{op} {key}: {why}")));
    if let Some(pe) = c.pe {
        return refuse(format!("the persistence engine {:?} is not supported", pe.name()));
    }
    let max = lvs_ipvs::ipvsadm::MAX_PERSISTENCE_SECS;
    if c.persistence.is_some_and(|p| !(1..=max).contains(&(p.as_nanos() / 1_000_000_000))) {
        return refuse(format!("a persistence timeout must be 1 to {max} s, as ipvsadm takes it"));
    }
    if key.is_ipv6() && c.persistence.is_some() && !(1..=128).contains(&c.netmask) {
        return refuse(format!("the IPv6 prefix length {} is not in 1..=128", c.netmask));
    }
    Ok(())
}

/// A real server with ipvsadm's defaults (no thresholds, no tunnel options) and `weight`.
pub fn dest(addr: IpAddr, port: u16, fwd: Forwarding, weight: u32) -> DestConfig {
    DestConfig { weight, ..DestConfig::new(addr, port, fwd) }
}

/// `SERVICE -> RIP:PORT`, naming an operation's real server in errors.
pub(crate) fn dest_name(svc: &ServiceKey, addr: IpAddr, port: u16) -> String {
    format!("{svc} -> {}", AddrPort(addr, port))
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
        let op = op.into();
        let message = errno_meaning_in(&op, errno).to_owned();
        Error::Kernel { op, errno, message }
    }

    /// The shared table's refusal of `op`, with the kernel's errno for it.
    pub(crate) fn table(op: impl Into<String>, e: IpvsError) -> Error {
        Error::kernel(op, e.errno())
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

/// What an errno means from the operation `op` (`NEW_SERVICE ...`, `ipvsadm -A ...`):
/// the service commands give EEXIST and ENOENT their own meanings.
pub(crate) fn errno_meaning_in(op: &str, errno: i32) -> &'static str {
    let service_op =
        ["NEW_SERVICE", "SET_SERVICE", "ipvsadm -A", "ipvsadm -E"].iter().any(|p| op.starts_with(p));
    match errno {
        libc::EEXIST if service_op => "virtual service already exists",
        libc::ENOENT if service_op => "no such scheduler or persistence engine",
        _ => errno_meaning(errno),
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
    /// Boxed: the shared table is large beside a socket or a program name.
    DryRun(Box<dryrun::DryRunBackend>),
}

impl Backend {
    /// Opens a backend. `dry_run_services` seeds the dry-run table (ignored by the others).
    pub fn open(
        kind: BackendKind,
        dry_run_services: &[(ServiceKey, ServiceConfig)],
    ) -> Result<Backend, Error> {
        let inner = match kind {
            BackendKind::Netlink => Inner::Netlink(netlink::NetlinkBackend::open()?),
            BackendKind::Ipvsadm => Inner::Ipvsadm(ipvsadm::IpvsadmBackend::new()),
            BackendKind::DryRun => Inner::DryRun(Box::new(dryrun::DryRunBackend::new(dry_run_services))),
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

    /// Every virtual service (GET_SERVICE dump), in the kernel's order.
    pub fn services(&mut self) -> Result<Vec<(ServiceKey, ServiceConfig)>, Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.services(),
            Inner::Ipvsadm(b) => b.services(),
            Inner::DryRun(b) => Ok(b.services()),
        }
    }

    /// The real servers of one service, in kernel list order (GET_DEST dump).
    pub fn real_servers(&mut self, service: &ServiceKey) -> Result<Vec<DestRow>, Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.real_servers(service),
            Inner::Ipvsadm(b) => b.real_servers(service),
            Inner::DryRun(b) => b.real_servers(service),
        }
    }

    /// Adds a real server (NEW_DEST; `ipvsadm -a`).
    pub fn add_real_server(&mut self, service: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.add_real_server(service, rs),
            Inner::Ipvsadm(b) => b.add_real_server(service, rs),
            Inner::DryRun(b) => b.add_real_server(service, rs),
        }
    }

    /// Replaces a real server's settings (SET_DEST; `ipvsadm -e`): every field of `rs` is
    /// sent, so pass the current entry with the new weight.
    pub fn edit_real_server(&mut self, service: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
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
        servers: &[DestConfig],
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

    /// Every virtual service with its traffic counters and rates (GET_SERVICE dump; for
    /// ipvsadm `-S -n` and `-L -n --stats/--rate --exact`).
    pub fn service_rows(&mut self) -> Result<Vec<ServiceRow>, Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.service_rows(),
            Inner::Ipvsadm(b) => b.service_rows(),
            Inner::DryRun(b) => Ok(b.service_rows()),
        }
    }

    /// Adds a virtual service (NEW_SERVICE; `ipvsadm -A`), with `config` as
    /// [`normalize_service`] puts it. A persistence engine is refused.
    pub fn add_service(&mut self, key: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        let config = &normalize_service(key, config);
        check_service("NEW_SERVICE", key, config)?;
        match &mut self.inner {
            Inner::Netlink(b) => b.service_cmd(netlink::codec::cmd::NEW_SERVICE, key, config),
            Inner::Ipvsadm(b) => b.add_service(key, config),
            Inner::DryRun(b) => b.add_service(key, config),
        }
    }

    /// Replaces a virtual service's settings (SET_SERVICE; `ipvsadm -E`): scheduler,
    /// flags, persistence and netmask, all of them, as [`normalize_service`] puts them.
    /// Its real servers stay.
    pub fn edit_service(&mut self, key: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        let config = &normalize_service(key, config);
        check_service("SET_SERVICE", key, config)?;
        match &mut self.inner {
            Inner::Netlink(b) => b.service_cmd(netlink::codec::cmd::SET_SERVICE, key, config),
            Inner::Ipvsadm(b) => b.edit_service(key, config),
            Inner::DryRun(b) => b.edit_service(key, config),
        }
    }

    /// Removes a virtual service and its real servers (DEL_SERVICE; `ipvsadm -D`).
    pub fn remove_service(&mut self, key: &ServiceKey) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Netlink(b) => b.remove_service(key),
            Inner::Ipvsadm(b) => b.remove_service(key),
            Inner::DryRun(b) => b.remove_service(key),
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
    use lvs_ipvs::Protocol;

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
    fn table_refusals_carry_the_kernels_errno() {
        let e = Error::table("NEW_DEST x", IpvsError::NoSuchService);
        assert_eq!(
            (e.errno(), e.to_string()),
            (Some(libc::ESRCH), "NEW_DEST x: no such virtual service (errno 3)".into())
        );
        let cases = [
            (IpvsError::ServiceExists, libc::EEXIST),
            (IpvsError::FamilyMismatch, libc::EINVAL),
            (IpvsError::TunnelPort, libc::EINVAL),
            (IpvsError::Dest(lvs_sched::Error::DestExists), libc::EEXIST),
            (IpvsError::Dest(lvs_sched::Error::NoSuchDest), libc::ENOENT),
            (IpvsError::Dest(lvs_sched::Error::WeightRange(1 << 31)), libc::ERANGE),
            (IpvsError::Dest(lvs_sched::Error::ThresholdRange { u: 1, l: 2 }), libc::ERANGE),
        ];
        for (e, errno) in cases {
            assert_eq!(e.errno(), errno, "{e}");
        }
    }

    #[test]
    fn the_default_netmask_follows_the_family() {
        let v6 = parse_service("tcp:[2001:db8::1]:80").unwrap();
        assert_eq!(service_config(&v6, SchedulerKind::Rr).netmask, 128);
        assert_eq!(service_config(&parse_service("fwm6:1").unwrap(), SchedulerKind::Rr).netmask, 128);
        let v4 = service_config(&parse_service("fwm:1").unwrap(), SchedulerKind::Sh);
        assert_eq!((v4.netmask, v4.scheduler, v4.persistence), (u32::MAX, SchedulerKind::Sh, None));
    }

    #[test]
    fn errno_meanings_name_the_ipvs_cases() {
        let e = Error::kernel("SET_DEST TCP  10.0.0.1:80 -> 10.0.0.9:80", libc::ENOENT);
        assert_eq!(e.to_string(), "SET_DEST TCP  10.0.0.1:80 -> 10.0.0.9:80: no such real server (errno 2)");
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert_eq!(errno_meaning(libc::EPERM), "needs CAP_NET_ADMIN");
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod service_tests;
