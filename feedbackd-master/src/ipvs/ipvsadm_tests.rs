//! The ipvsadm backend's command lines and parsers, on text captured from ipvsadm v1.31
//! against Debian 12's 6.1 kernel (tests/vm).

use feedbackd_proto::types::Forwarding;

use super::*;
use crate::ipvs::SVC_F_PERSISTENT;

/// `ipvsadm -S -n` after the commands in tests/vm (thresholds are not saved).
const SAVE: &str = "\
-A -t 10.0.0.1:80 -s wlc
-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3
-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 0
-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 5 --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.1:80 -r 10.0.0.5:80 -i -w 5 --tun-type gue --tun-port 6081 --tun-remcsum
-a -t 10.0.0.1:80 -r 10.0.0.6:80 -i -w 5 --tun-type ipip
-A -u 10.0.0.1:53 -s rr -p 300 -M 255.255.255.0
-A -t [2001:db8::1]:80 -s wlc -p 60 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::2]:80 -m -w 1
-a -t [2001:db8::1]:80 -r 10.0.0.8:80 -i -w 1 --tun-type ipip
-A -f 1 -s wlc
-a -f 1 -r 10.0.0.2:0 -g -w 2
-A -f 2 -6 -s sh -b sh-port
-a -f 2 -6 -r [2001:db8::2]:0 -g -w 2
-A -u 10.0.0.9:53 -s rr -o
";

const THRESHOLDS: &str = "\
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.1:80 wlc
  -> 10.0.0.21:80                 0          0          0          0         
  -> 10.0.0.2:80                  100        50         7          2         
  -> [2001:db8::2]:0              0          0          0          0         
";

fn key(s: &str) -> ServiceKey {
    crate::ipvs::parse_service(s).unwrap()
}

fn svc(saved: &[Saved], k: &str) -> Saved {
    saved.iter().find(|s| s.service.key == key(k)).cloned().unwrap()
}

#[test]
fn parses_services_of_every_kind() {
    let saved = parse_save(SAVE).unwrap();
    assert_eq!(saved.len(), 6);
    let tcp = svc(&saved, "tcp:10.0.0.1:80").service;
    assert_eq!(tcp, VirtualService::new(key("tcp:10.0.0.1:80"), "wlc"));
    let udp = svc(&saved, "udp:10.0.0.1:53").service;
    assert_eq!((udp.flags, udp.timeout_s), (SVC_F_PERSISTENT, 300));
    assert_eq!(udp.netmask.to_ne_bytes(), [255, 255, 255, 0]);
    let v6 = svc(&saved, "tcp:[2001:db8::1]:80").service;
    assert_eq!((v6.flags, v6.timeout_s, v6.netmask), (SVC_F_PERSISTENT, 60, 64));
    assert_eq!(svc(&saved, "fwm:1").service.netmask, u32::MAX);
    let fwm6 = svc(&saved, "fwm6:2").service;
    assert_eq!((fwm6.scheduler.as_str(), fwm6.flags, fwm6.netmask), ("sh", SVC_F_SCHED2, 128));
    assert_eq!(svc(&saved, "udp:10.0.0.9:53").service.flags, SVC_F_ONEPACKET);
}

#[test]
fn parses_real_servers_with_tunnel_options() {
    let saved = parse_save(SAVE).unwrap();
    let d = svc(&saved, "tcp:10.0.0.1:80").dests;
    assert_eq!(d.len(), 5);
    assert_eq!(d[0], RealServer::new("10.0.0.2".parse().unwrap(), 80, Forwarding::Nat, 3));
    assert_eq!(d[1].forwarding, Some(Forwarding::DirectRouting));
    assert_eq!(
        (d[2].fwd_raw, d[2].tun_type, d[2].tun_port, d[2].tun_flags),
        (2, TUN_TYPE_GUE, 6080, TUN_F_CSUM)
    );
    assert_eq!((d[3].tun_port, d[3].tun_flags), (6081, TUN_F_REMCSUM));
    assert_eq!(d[4].tun_type, TUN_TYPE_IPIP);
    let mixed = svc(&saved, "tcp:[2001:db8::1]:80").dests;
    assert_eq!(mixed[1].addr, "10.0.0.8".parse::<IpAddr>().unwrap());
    assert_eq!(svc(&saved, "fwm6:2").dests[0].socket_addr(), "[2001:db8::2]:0".parse().unwrap());
}

#[test]
fn refuses_what_it_does_not_know() {
    assert!(parse_save("-A -t 10.0.0.1:80 -s wlc --frobnicate\n").is_err());
    assert!(parse_save("-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3\n").is_err()); // no -A first
    assert!(parse_save("-A -s wlc\n").is_err());
    assert!(parse_save("-A -t 10.0.0.1:80 -s\n").is_err());
    assert!(parse_save("-X\n").is_err());
}

#[test]
fn threshold_listing_keeps_kernel_order() {
    let rows = parse_threshold_listing(THRESHOLDS).unwrap();
    let addrs: Vec<String> = rows.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.21:80", "10.0.0.2:80", "[2001:db8::2]:0"]);
    assert_eq!(
        (rows[1].u_threshold, rows[1].l_threshold, rows[1].active_conns, rows[1].inactive_conns),
        (100, 50, 7, 2)
    );
    assert!(parse_threshold_listing("  -> 10.0.0.2:80 1 2\n").is_err());
}

#[test]
fn edit_sends_every_field() {
    let mut rs = RealServer::new("10.0.0.2".parse().unwrap(), 80, Forwarding::Nat, 37);
    assert_eq!(
        dest_args("-e", &key("tcp:10.0.0.1:80"), &rs).unwrap().join(" "),
        "-e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 37 -x 0 -y 0"
    );
    (rs.forwarding, rs.tun_type, rs.tun_port, rs.tun_flags) =
        (Some(Forwarding::Tunnel), TUN_TYPE_GUE, 6080, 3);
    (rs.u_threshold, rs.l_threshold) = (10, 5);
    assert_eq!(
        dest_args("-a", &key("fwm6:3"), &rs).unwrap().join(" "),
        "-a -f 3 -6 -r 10.0.0.2:80 -i -w 37 -x 10 -y 5 --tun-type gue --tun-port 6080 --tun-remcsum"
    );
    rs.forwarding = None;
    rs.fwd_raw = crate::ipvs::FWD_LOCAL;
    assert!(dest_args("-e", &key("tcp:10.0.0.1:80"), &rs).is_err());
    assert_eq!(service_args(&key("sctp:[::1]:9")), ["--sctp-service", "[::1]:9"]);
}

#[test]
fn stderr_maps_to_errno() {
    assert_eq!(classify_stderr("Service not defined"), Some(libc::ESRCH));
    assert_eq!(classify_stderr("No such service"), Some(libc::ESRCH));
    assert_eq!(classify_stderr("Destination already exists"), Some(libc::EEXIST));
    assert_eq!(classify_stderr("No such destination"), Some(libc::ENOENT));
    assert_eq!(classify_stderr("Numerical result out of range"), Some(libc::ERANGE));
    assert_eq!(classify_stderr("illegal weight specified"), None);
}
