//! The kernel's counters and rates under real traffic, through netlink and ipvsadm.
//!
//! ```text
//!   ns lvscl 10.3.0.2 --vcl-- 10.3.0.1  root ns: director, VIP 10.9.9.9 on lo,
//!                                       TCP 10.9.9.9:80 rr, LVS-NAT
//!   ns lvsrs 10.2.0.2 --vrs-- 10.2.0.1  (busybox httpd on 10.2.0.2:8080, a 10 000-byte page)
//! ```
//!
//! `curl` in the client namespace fetches the page through the VIP. While requests flow,
//! both backends must report non-zero rates (connections, packets and bytes per second,
//! the kernel's 2-second estimator); once they stop, both must list the same counters,
//! with exactly one connection per completed request, for the real server
//! (`DestRow`) and for the service (`ServiceRow`). The kernel refreshes the counters it
//! lists when its estimator runs (every 2 s), so they are polled until they settle.

use std::process::Command;

use feedbackd_master::ipvs::{Backend, DestRow, ServiceKey, dest, service_config};
use lvs_ipvs::{Forwarding, SchedulerKind};

use crate::report::{Report, key};
use feedbackd_master::daemon::backend_name;

const SETUP: &str = "set -e
sysctl -qw net.ipv4.ip_forward=1
for ns in lvsrs lvscl; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add vrs type veth peer name eth0 netns lvsrs
ip link add vcl type veth peer name eth0 netns lvscl
ip addr add 10.2.0.1/24 dev vrs; ip link set vrs up
ip addr add 10.3.0.1/24 dev vcl; ip link set vcl up
ip -n lvsrs addr add 10.2.0.2/24 dev eth0; ip -n lvsrs link set eth0 up
ip -n lvsrs route add default via 10.2.0.1
ip -n lvscl addr add 10.3.0.2/24 dev eth0; ip -n lvscl link set eth0 up
ip -n lvscl route add default via 10.3.0.1
ip addr add 10.9.9.9/32 dev lo
mkdir -p /tmp/lvsrs-www
head -c 10000 /dev/zero | tr '\\0' x > /tmp/lvsrs-www/index.html
ip netns exec lvsrs /bb/httpd -p 10.2.0.2:8080 -h /tmp/lvsrs-www
";

/// The page's size [B].
const PAGE: u64 = 10_000;
/// Requests before the rates must have shown up, at most.
const MAX_REQUESTS: u32 = 200;

fn sh(script: &str) -> Result<(), String> {
    let out = Command::new("/bin/sh").arg("-c").arg(script).output().map_err(|e| format!("sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// One request through the VIP; true if the whole page came back.
fn request() -> bool {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            "lvscl",
            "curl",
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
        ])
        .arg("http://10.9.9.9/")
        .output();
    out.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == PAGE.to_string())
}

fn row(b: &mut Backend, svc: &ServiceKey) -> Result<DestRow, String> {
    let rows = b.real_servers(svc).map_err(|e| e.to_string())?;
    match rows[..] {
        [r] => Ok(r),
        _ => Err(format!("{} real servers listed, want 1", rows.len())),
    }
}

/// Sets up, runs the checks, and removes the service.
pub(crate) fn run(r: &mut Report, netlink: &mut Backend, adm: &mut Backend) {
    let svc = key("tcp:10.9.9.9:80");
    let setup = sh(SETUP).and_then(|()| {
        netlink.add_service(&svc, &service_config(&svc, SchedulerKind::Rr)).map_err(|e| e.to_string())?;
        let rs = dest("10.2.0.2".parse().expect("an address"), 8080, Forwarding::Masq, 1);
        netlink.add_real_server(&svc, &rs).map_err(|e| e.to_string())
    });
    let ok = setup.is_ok();
    r.check("traffic: LVS-NAT set up (two namespaces, httpd, TCP 10.9.9.9:80)", setup);
    if ok {
        checks(r, netlink, adm, &svc);
    }
    let _ = netlink.remove_service(&svc);
    let _ = sh("for ns in lvsrs lvscl; do ip netns pids $ns | xargs -r kill; ip netns del $ns; done");
}

fn checks(r: &mut Report, netlink: &mut Backend, adm: &mut Backend, svc: &ServiceKey) {
    // Rates while traffic flows: requests until both backends report them (bounded).
    let (mut done, mut sent) = (0u64, 0u32);
    let mut rates = Err("no request completed".to_owned());
    while sent < MAX_REQUESTS {
        sent += 1;
        done += u64::from(request());
        if sent % 5 != 0 {
            continue;
        }
        rates = [&mut *netlink, &mut *adm].into_iter().try_for_each(|b| {
            let x = row(b, svc)?.rates;
            println!("INFO traffic: after {sent} requests, {} rates {x:?}", backend_name(b.kind()));
            let moving = x.cps > 0 && x.inpps > 0 && x.outpps > 0 && x.inbps > 0 && x.outbps > 0;
            if moving { Ok(()) } else { Err(format!("{}: rates {x:?}", backend_name(b.kind()))) }
        });
        if rates.is_ok() {
            break;
        }
    }
    r.check(
        format!("traffic: netlink and ipvsadm report non-zero rates while it flows ({sent} requests)"),
        rates,
    );

    // Counters once it stopped: the same through both backends, one connection each.
    let counters = stable(netlink, adm, svc, done).and_then(|(n, a)| {
        let s = n.stats;
        println!("INFO traffic: {done} requests; netlink {:?} {:?}; ipvsadm {:?}", n.stats, n.rates, a.rates);
        if n.stats != a.stats {
            return Err(format!("netlink {:?}, ipvsadm {:?}", n.stats, a.stats));
        }
        if s.conns != done
            || s.inpkts < 3 * done
            || s.outpkts < 3 * done
            || s.outbytes < PAGE * done
            || s.inbytes == 0
        {
            return Err(format!("{s:?} after {done} requests of {PAGE} bytes"));
        }
        Ok(())
    });
    r.check("traffic: netlink and ipvsadm list the same counters, one connection per request", counters);
    let service = [&mut *netlink, &mut *adm].into_iter().try_for_each(|b| {
        let rows = b.service_rows().map_err(|e| e.to_string())?;
        let row = rows.iter().find(|x| x.key == *svc).ok_or("the service is not listed")?;
        let nonzero = row.rates.inbps > 0 || row.rates.outbps > 0;
        if row.stats.conns == done && nonzero {
            Ok(())
        } else {
            Err(format!("{}: {row:?}", backend_name(b.kind())))
        }
    });
    r.check("traffic: the service's counters and rates (ServiceRow) through both backends", service);
}

/// The real server's row through netlink, then ipvsadm, then netlink again, once netlink
/// counts `done` connections and the two netlink readings agree: the kernel (6.1) sums
/// its per-CPU counters into what it lists only when its estimator runs, every 2 s, so
/// the counters lag the traffic by up to 2 s. A bounded poll: 60 tries 250 ms apart.
fn stable(
    netlink: &mut Backend,
    adm: &mut Backend,
    svc: &ServiceKey,
    done: u64,
) -> Result<(DestRow, DestRow), String> {
    let mut last = None;
    for _ in 0..60 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let before = row(netlink, svc)?;
        if before.stats.conns < done {
            last = Some(before.stats);
            continue;
        }
        let a = row(adm, svc)?;
        let after = row(netlink, svc)?;
        if before.stats == after.stats {
            return Ok((after, a));
        }
    }
    Err(format!("the counters did not settle at {done} connections in 15 s: {last:?}"))
}
