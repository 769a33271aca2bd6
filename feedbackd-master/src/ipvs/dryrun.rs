//! The dry-run backend: an in-memory IPVS table seeded with the configured services.
//! Changes are printed, one line each, as the `ipvsadm` command that would make them
//! (`dry-run: ipvsadm -e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 37 -x 0 -y 0`), and refused
//! as the kernel would refuse them, with the same errno.

use core::net::{IpAddr, SocketAddr};

use crate::ipvs::ipvsadm::{dest_args, service_args};
use crate::ipvs::{Error, FWD_MASK, RealServer, ServiceKey, TUN_TYPE_GUE, VirtualService};

/// `IP_VS_CONN_F_TUNNEL`.
const FWD_TUNNEL: u32 = 2;

/// The table: services in the order given, each with its real servers in kernel list
/// order (a new one goes to the front, as `list_add_rcu` puts it).
#[derive(Debug)]
pub(crate) struct DryRunBackend {
    table: Vec<(VirtualService, Vec<RealServer>)>,
}

impl DryRunBackend {
    pub(crate) fn new(services: &[VirtualService]) -> DryRunBackend {
        let mut table: Vec<(VirtualService, Vec<RealServer>)> = Vec::new();
        for s in services {
            if !table.iter().any(|(t, _)| t.key == s.key) {
                table.push((s.clone(), Vec::new()));
            }
        }
        DryRunBackend { table }
    }

    pub(crate) fn services(&self) -> Vec<VirtualService> {
        self.table.iter().map(|(s, _)| s.clone()).collect()
    }

    fn dests(&mut self, op: &str, svc: &ServiceKey, rs: SocketAddr) -> Result<&mut Vec<RealServer>, Error> {
        match self.table.iter_mut().find(|(s, _)| s.key == *svc) {
            Some((_, dests)) => Ok(dests),
            None => Err(Error::kernel(format!("{op} {svc} -> {rs}"), libc::ESRCH)),
        }
    }

    pub(crate) fn real_servers(&mut self, svc: &ServiceKey) -> Result<Vec<RealServer>, Error> {
        match self.table.iter().find(|(s, _)| s.key == *svc) {
            Some((_, dests)) => Ok(dests.clone()),
            None => Err(Error::kernel(format!("GET_DEST {svc}"), libc::ESRCH)),
        }
    }

    pub(crate) fn add_real_server(&mut self, svc: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        let op = || format!("NEW_DEST {svc} -> {}", rs.socket_addr());
        let dests = self.dests("NEW_DEST", svc, rs.socket_addr())?;
        check_dest(svc, rs).map_err(|errno| Error::kernel(op(), errno))?;
        if dests.iter().any(|d| same_dest(d, rs.addr, rs.port)) {
            return Err(Error::kernel(op(), libc::EEXIST));
        }
        dests.insert(0, as_stored(rs, 0, 0));
        print_change("-a", svc, rs);
        Ok(())
    }

    pub(crate) fn edit_real_server(&mut self, svc: &ServiceKey, rs: &RealServer) -> Result<(), Error> {
        let op = || format!("SET_DEST {svc} -> {}", rs.socket_addr());
        let dests = self.dests("SET_DEST", svc, rs.socket_addr())?;
        check_dest(svc, rs).map_err(|errno| Error::kernel(op(), errno))?;
        let Some(d) = dests.iter_mut().find(|d| same_dest(d, rs.addr, rs.port)) else {
            return Err(Error::kernel(op(), libc::ENOENT));
        };
        // SET_DEST replaces every field but the counters.
        *d = as_stored(rs, d.active_conns, d.inactive_conns);
        print_change("-e", svc, rs);
        Ok(())
    }

    pub(crate) fn remove_real_server(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), Error> {
        let sa = SocketAddr::new(addr, port);
        let dests = self.dests("DEL_DEST", svc, sa)?;
        let Some(i) = dests.iter().position(|d| same_dest(d, addr, port)) else {
            return Err(Error::kernel(format!("DEL_DEST {svc} -> {sa}"), libc::ENOENT));
        };
        dests.remove(i);
        let mut args = vec!["-d".to_owned()];
        args.extend(service_args(svc));
        args.extend(["-r".to_owned(), sa.to_string()]);
        println!("dry-run: ipvsadm {}", args.join(" "));
        Ok(())
    }
}

/// `rs` as the kernel keeps it: the forwarding method as sent, the counters its own.
fn as_stored(rs: &RealServer, active_conns: u32, inactive_conns: u32) -> RealServer {
    let (forwarding, fwd_raw) = RealServer::forwarding_of(rs.fwd_method());
    RealServer { forwarding, fwd_raw, active_conns, inactive_conns, ..rs.clone() }
}

/// The kernel looks a real server up by family, address and port.
fn same_dest(d: &RealServer, addr: IpAddr, port: u16) -> bool {
    d.addr == addr && d.port == port
}

/// The kernel's checks of a NEW_DEST/SET_DEST, in its order; `Err(errno)`.
fn check_dest(svc: &ServiceKey, rs: &RealServer) -> Result<(), i32> {
    // Mirrors ip_vs_genl_set_cmd(): another family than the service's only for tunnels.
    if rs.addr.is_ipv6() != (svc.af() == super::AF_INET6) && rs.fwd_method() & FWD_MASK != FWD_TUNNEL {
        return Err(libc::EINVAL);
    }
    // Mirrors ip_vs_add_dest()/ip_vs_edit_dest(): `int weight` must not be negative.
    if i32::try_from(rs.weight).is_err() || rs.l_threshold > rs.u_threshold {
        return Err(libc::ERANGE);
    }
    if rs.tun_type == TUN_TYPE_GUE && rs.tun_port == 0 {
        return Err(libc::EINVAL);
    }
    Ok(())
}

fn print_change(op: &str, svc: &ServiceKey, rs: &RealServer) {
    match dest_args(op, svc, rs) {
        Ok(args) => println!("dry-run: ipvsadm {}", args.join(" ")),
        // The "local" forwarding method has no ipvsadm flag.
        Err(_) => println!(
            "dry-run: {} {svc} -> {} fwd_method {} weight {} u_threshold {} l_threshold {}",
            if op == "-a" { "NEW_DEST" } else { "SET_DEST" },
            rs.socket_addr(),
            rs.fwd_method(),
            rs.weight,
            rs.u_threshold,
            rs.l_threshold
        ),
    }
}

#[cfg(test)]
mod tests {
    use feedbackd_proto::types::Forwarding;
    use lvs_ipvs::Protocol;

    use super::*;

    fn svc() -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 }
    }

    fn rs(last: u8, weight: u32) -> RealServer {
        RealServer::new(IpAddr::from([10, 0, 0, last]), 80, Forwarding::Nat, weight)
    }

    fn backend() -> DryRunBackend {
        DryRunBackend::new(&[VirtualService::new(svc(), "wlc"), VirtualService::new(svc(), "rr")])
    }

    #[test]
    fn seeds_each_service_once_and_lists_new_real_servers_first() {
        let mut b = backend();
        assert_eq!(b.services().len(), 1);
        assert_eq!(b.services()[0].scheduler, "wlc");
        b.add_real_server(&svc(), &rs(2, 1)).unwrap();
        b.add_real_server(&svc(), &rs(3, 1)).unwrap();
        let order: Vec<_> = b.real_servers(&svc()).unwrap().iter().map(|r| r.addr).collect();
        assert_eq!(order, [IpAddr::from([10, 0, 0, 3]), IpAddr::from([10, 0, 0, 2])]);
    }

    #[test]
    fn edit_replaces_every_field() {
        let mut b = backend();
        let mut r = rs(2, 5);
        (r.u_threshold, r.l_threshold) = (100, 50);
        b.add_real_server(&svc(), &r).unwrap();
        b.edit_real_server(&svc(), &rs(2, 7)).unwrap();
        assert_eq!(b.real_servers(&svc()).unwrap(), [rs(2, 7)]);
    }

    #[test]
    fn refuses_as_the_kernel_does() {
        let mut b = backend();
        let other = ServiceKey::Fwmark { mark: 9, ipv6: false };
        let errno = |r: Result<(), Error>| r.unwrap_err().errno();
        assert_eq!(errno(b.add_real_server(&other, &rs(2, 1))), Some(libc::ESRCH));
        assert_eq!(b.real_servers(&other).unwrap_err().errno(), Some(libc::ESRCH));
        b.add_real_server(&svc(), &rs(2, 1)).unwrap();
        assert_eq!(errno(b.add_real_server(&svc(), &rs(2, 1))), Some(libc::EEXIST));
        assert_eq!(errno(b.edit_real_server(&svc(), &rs(9, 1))), Some(libc::ENOENT));
        assert_eq!(errno(b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 9]), 80)), Some(libc::ENOENT));
        assert_eq!(errno(b.edit_real_server(&svc(), &rs(2, 0x8000_0000))), Some(libc::ERANGE));
        let mut low_above_high = rs(2, 1);
        low_above_high.l_threshold = 1;
        assert_eq!(errno(b.edit_real_server(&svc(), &low_above_high)), Some(libc::ERANGE));
        let v6 = RealServer::new("2001:db8::2".parse().unwrap(), 80, Forwarding::Nat, 1);
        assert_eq!(errno(b.add_real_server(&svc(), &v6)), Some(libc::EINVAL));
        let mut gue = rs(4, 1);
        (gue.forwarding, gue.tun_type) = (Some(Forwarding::Tunnel), TUN_TYPE_GUE);
        assert_eq!(errno(b.add_real_server(&svc(), &gue)), Some(libc::EINVAL));
        b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 2]), 80).unwrap();
        assert!(b.real_servers(&svc()).unwrap().is_empty());
    }
}
