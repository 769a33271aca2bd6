//! The ipvsadm backend's command lines and parsers, on text captured from ipvsadm v1.31
//! against Debian 12's 6.1 kernel (tests/vm).

use core::net::IpAddr;

use lvs_ipvs::{Forwarding, PersistenceEngine, Rates, SchedulerKind, Stats, SvcFlags, Tunnel, TunnelType};
use lvs_sched::Duration;

use super::*;
use crate::ipvs::{dest, service_config};

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
    saved.iter().find(|s| s.key == key(k)).cloned().unwrap()
}

#[test]
fn parses_services_of_every_kind() {
    let saved = parse_save(SAVE).unwrap();
    assert_eq!(saved.len(), 6);
    let tcp = svc(&saved, "tcp:10.0.0.1:80").config;
    assert_eq!(tcp, service_config(&key("tcp:10.0.0.1:80"), SchedulerKind::Wlc));
    let udp = svc(&saved, "udp:10.0.0.1:53").config;
    let persistent = SvcFlags(SvcFlags::PERSISTENT);
    assert_eq!((udp.flags, udp.persistence), (persistent, Some(Duration::from_secs(300))));
    assert_eq!(udp.netmask, 0xffff_ff00);
    let v6 = svc(&saved, "tcp:[2001:db8::1]:80").config;
    assert_eq!((v6.flags, v6.persistence, v6.netmask), (persistent, Some(Duration::from_secs(60)), 64));
    assert_eq!(svc(&saved, "fwm:1").config.netmask, u32::MAX);
    let fwm6 = svc(&saved, "fwm6:2").config;
    assert_eq!(
        (fwm6.scheduler, fwm6.flags, fwm6.netmask),
        (SchedulerKind::Sh, SvcFlags(SvcFlags::SCHED2), 128)
    );
    assert_eq!(svc(&saved, "udp:10.0.0.9:53").config.flags, SvcFlags(SvcFlags::ONEPACKET));
}

#[test]
fn parses_real_servers_with_tunnel_options() {
    let saved = parse_save(SAVE).unwrap();
    let d = svc(&saved, "tcp:10.0.0.1:80").dests;
    assert_eq!(d.len(), 5);
    assert_eq!(d[0], dest("10.0.0.2".parse().unwrap(), 80, Forwarding::Masq, 3));
    assert_eq!(d[1].fwd, Forwarding::DirectRouting);
    assert_eq!(
        (d[2].fwd, d[2].tunnel),
        (Forwarding::Tunnel, Tunnel { kind: TunnelType::Gue, port: 6080, flags: Tunnel::CSUM })
    );
    assert_eq!((d[3].tunnel.port, d[3].tunnel.flags), (6081, Tunnel::REMCSUM));
    assert_eq!(d[4].tunnel.kind, TunnelType::Ipip);
    let mixed = svc(&saved, "tcp:[2001:db8::1]:80").dests;
    assert_eq!(mixed[1].addr, "10.0.0.8".parse::<IpAddr>().unwrap());
    let fwm6 = svc(&saved, "fwm6:2").dests[0];
    assert_eq!((fwm6.addr, fwm6.port), ("2001:db8::2".parse().unwrap(), 0));
}

#[test]
fn refuses_what_it_does_not_know() {
    assert!(parse_save("-A -t 10.0.0.1:80 -s wlc --frobnicate\n").is_err());
    assert!(parse_save("-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3\n").is_err()); // no -A first
    assert!(parse_save("-A -s wlc\n").is_err());
    assert!(parse_save("-A -t 10.0.0.1:80 -s\n").is_err());
    assert!(parse_save("-X\n").is_err());
    // A scheduler lvs-sched does not know is named in the error.
    let e = parse_save("-A -t 10.0.0.1:80 -s wlcx\n").unwrap_err();
    assert!(e.contains("unknown scheduler \"wlcx\""), "{e}");
    assert!(e.starts_with("line 1: column 22:"), "{e}");
    // Only -A and -a are saved.
    assert!(
        parse_save("-A -t 10.0.0.1:80\n-D -t 10.0.0.1:80\n").unwrap_err().contains("unexpected command -D")
    );
}

#[test]
fn a_persistence_engine_is_kept() {
    let saved = parse_save("-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip\n").unwrap();
    assert_eq!(saved[0].config.pe, Some(PersistenceEngine::Sip));
}

#[test]
fn threshold_listing_keeps_kernel_order() {
    let rows = lvs_ipvs::ipvsadm::parse_threshold_rows(THRESHOLDS).unwrap();
    let addrs: Vec<String> = rows.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.21:80", "10.0.0.2:80", "[2001:db8::2]:0"]);
    assert_eq!(
        (rows[1].u_threshold, rows[1].l_threshold, rows[1].active_conns, rows[1].inactive_conns),
        (100, 50, 7, 2)
    );
    assert!(lvs_ipvs::ipvsadm::parse_threshold_rows("  -> 10.0.0.2:80 1 2\n").is_err());
}

#[test]
fn edit_sends_every_field() {
    let mut rs = dest("10.0.0.2".parse().unwrap(), 80, Forwarding::Masq, 37);
    assert_eq!(
        dest_args("-e", &key("tcp:10.0.0.1:80"), &rs).unwrap().join(" "),
        "-e -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 37"
    );
    (rs.fwd, rs.tunnel) = (Forwarding::Tunnel, Tunnel { kind: TunnelType::Gue, port: 6080, flags: 3 });
    (rs.u_threshold, rs.l_threshold) = (10, 5);
    assert_eq!(
        dest_args("-a", &key("fwm6:3"), &rs).unwrap().join(" "),
        "-a -f 3 -6 -r 10.0.0.2:80 -i -w 37 -x 10 -y 5 --tun-type gue --tun-port 6080 --tun-remcsum"
    );
    rs.fwd = Forwarding::Local;
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
    assert_eq!(classify_stderr("Service already exists"), Some(libc::EEXIST));
    assert_eq!(classify_stderr("Scheduler or persistence engine not found"), Some(libc::ENOENT));
    assert_eq!(classify_stderr("illegal weight specified"), None);
}

/// A stand-in for ipvsadm: a shell script that logs its arguments and prints what
/// ipvsadm v1.31 printed in the VM for a table with traffic (`--stats/--rate --exact`),
/// or refuses `-A` of an existing service as ipvsadm does.
struct FakeIpvsadm {
    dir: std::path::PathBuf,
}

impl FakeIpvsadm {
    fn new(name: &str) -> FakeIpvsadm {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lvsim-fake-ipvsadm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> {d}/log\ncase \"$*\" in\n\
             '-S -n') printf '%s\\n' '-A -t 10.0.0.1:80 -s wlc' \
             '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3' '-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g -w 1' ;;\n\
             *--thresholds*) cat {d}/thr ;;\n*--stats*) cat {d}/stats ;;\n*--rate*) cat {d}/rate ;;\n\
             '-A -t 10.0.0.1:80 -s rr') echo 'Service already exists' >&2; exit 2 ;;\n\
             '-D -t 10.0.0.8:80') echo 'No such service' >&2; exit 2 ;;\nesac\n"
        );
        std::fs::write(dir.join("ipvsadm"), script).unwrap();
        std::fs::set_permissions(dir.join("ipvsadm"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(dir.join("thr"), THRESHOLD_TWO).unwrap();
        std::fs::write(dir.join("stats"), STATS_EXACT).unwrap();
        std::fs::write(dir.join("rate"), RATE_EXACT).unwrap();
        FakeIpvsadm { dir }
    }

    fn backend(&self) -> IpvsadmBackend {
        IpvsadmBackend { program: self.dir.join("ipvsadm").display().to_string() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for FakeIpvsadm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const THRESHOLD_TWO: &str = "\
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.1:80 wlc
  -> 10.0.0.3:80                  0          0          1          0         
  -> 10.0.0.2:80                  100        50         7          2         
";

const STATS_EXACT: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                        12      120      100     9000 123456789012
  -> 10.0.0.3:80                         2       20        0     1500        0
  -> 10.0.0.2:80                        10      100      100     7500 123456789012
";

const RATE_EXACT: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         3       30       25     2250   900000
  -> 10.0.0.3:80                         0        5        0      375        0
  -> 10.0.0.2:80                         3       25       25     1875   900000
";

#[test]
fn real_servers_and_services_carry_the_kernels_counters_and_rates() {
    let fake = FakeIpvsadm::new("rates");
    let mut b = fake.backend();
    let rows = b.real_servers(&key("tcp:10.0.0.1:80")).unwrap();
    assert_eq!(rows.len(), 2);
    let r = rows[1];
    assert_eq!((r.config.addr, r.config.u_threshold, r.active_conns), ("10.0.0.2".parse().unwrap(), 100, 7));
    assert_eq!(
        r.stats,
        Stats { conns: 10, inpkts: 100, outpkts: 100, inbytes: 7500, outbytes: 123_456_789_012 }
    );
    assert_eq!(r.rates, Rates { cps: 3, inpps: 25, outpps: 25, inbps: 1875, outbps: 900_000 });
    assert_eq!((rows[0].stats.inbytes, rows[0].rates.inbps), (1500, 375));
    let log = fake.log();
    assert!(log.contains("-L -n --nosort --exact --stats -t 10.0.0.1:80\n"), "{log}");
    assert!(log.contains("-L -n --nosort --exact --rate -t 10.0.0.1:80\n"), "{log}");
    let services = b.service_rows().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(
        (services[0].key, services[0].stats.conns, services[0].rates.outbps),
        (key("tcp:10.0.0.1:80"), 12, 900_000)
    );
}

#[test]
fn service_commands_are_ipvsadm_words_and_refusals_carry_errno() {
    let fake = FakeIpvsadm::new("services");
    let mut b = fake.backend();
    let persistent = ServiceConfig {
        persistence: Some(Duration::from_secs(60)),
        netmask: 0xffff_ff00,
        flags: SvcFlags(SvcFlags::PERSISTENT),
        ..service_config(&key("udp:10.0.0.1:53"), SchedulerKind::Sh)
    };
    b.add_service(&key("udp:10.0.0.1:53"), &persistent).unwrap();
    b.edit_service(&key("fwm6:3"), &service_config(&key("fwm6:3"), SchedulerKind::Mh)).unwrap();
    b.remove_service(&key("tcp:10.0.0.1:80")).unwrap();
    assert_eq!(
        fake.log(),
        "-A -u 10.0.0.1:53 -s sh -p 60 -M 255.255.255.0\n-E -f 3 -6 -s mh\n-D -t 10.0.0.1:80\n"
    );
    let e =
        b.add_service(&key("tcp:10.0.0.1:80"), &service_config(&key("tcp:10.0.0.1:80"), SchedulerKind::Rr));
    let e = e.unwrap_err();
    assert_eq!(e.errno(), Some(libc::EEXIST));
    assert!(e.to_string().contains("virtual service already exists"), "{e}");
    assert_eq!(b.remove_service(&key("tcp:10.0.0.8:80")).unwrap_err().errno(), Some(libc::ESRCH));
}
