//! The `ipvsadm -L -n` listings: plain, `--stats` and `--rate`, byte for byte as
//! ipvsadm 1.31 prints them.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use lvs_sched::{Dest, DestId, SchedulerKind, SvcFlags};

use crate::{Ipvs, Protocol, ServiceKey, Stats, VirtualService};

fn fmt_addr(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// ipvsadm's address comparator: the difference of two unsigned 32-bit values stored in
/// an `int`, so addresses more than 2^31 apart compare "wrapped" (§5 of the spec).
fn wrapped_cmp(a: u32, b: u32) -> std::cmp::Ordering {
    (a.wrapping_sub(b) as i32).cmp(&0)
}

fn v4_key(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => 0,
    }
}

/// Services in ipvsadm's order: by protocol, address (the wrapping comparator) and port,
/// firewall-mark services last by mark. `sort_by` is a stable merge sort, as glibc's
/// `qsort` normally is.
fn sorted_services(ipvs: &Ipvs) -> Vec<&VirtualService> {
    let mut svcs: Vec<_> = ipvs.services().collect();
    svcs.sort_by(|a, b| match (a.key(), b.key()) {
        (ServiceKey::Fwmark { mark: x, .. }, ServiceKey::Fwmark { mark: y, .. }) => x.cmp(&y),
        (ServiceKey::Fwmark { .. }, _) => std::cmp::Ordering::Greater,
        (_, ServiceKey::Fwmark { .. }) => std::cmp::Ordering::Less,
        (
            ServiceKey::Addr { protocol: p1, addr: a1, port: o1 },
            ServiceKey::Addr { protocol: p2, addr: a2, port: o2 },
        ) => p1.cmp(&p2).then(wrapped_cmp(v4_key(a1), v4_key(a2))).then(o1.cmp(&o2)),
    });
    svcs
}

/// A service's linked real servers by address (wrapping comparator) and port.
fn sorted_dests(svc: &VirtualService) -> Vec<(DestId, &Dest)> {
    let mut dests: Vec<_> = svc.scheduler().dests().collect();
    dests.sort_by(|(_, a), (_, b)| {
        wrapped_cmp(v4_key(a.addr()), v4_key(b.addr())).then(a.port().cmp(&b.port()))
    });
    dests
}

/// ipvsadm's `svc_name`: `"%-4s %s"` of protocol and address, or `"FWM  %u"`.
fn service_name(key: ServiceKey) -> String {
    match key {
        ServiceKey::Addr { protocol, addr, port } => {
            let p = match protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            format!("{p:<4} {}", fmt_addr(addr, port))
        }
        ServiceKey::Fwmark { mark: m, .. } => format!("FWM  {m}"),
    }
}

/// The first line of every full listing.
const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";

/// `ipvsadm -L -n`: services sorted as ipvsadm sorts them, real servers by address and
/// port (with ipvsadm's wrapping comparator and a merge sort, as glibc's `qsort` is).
pub fn list(ipvs: &Ipvs) -> String {
    let mut out = String::new();
    out.push_str(VERSION_LINE);
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    for svc in sorted_services(ipvs) {
        let c = svc.config();
        let mut line = service_name(svc.key());
        let _ = write!(line, " {}", c.scheduler);
        let flags = sched_flag_names(c.scheduler, c.flags.0);
        if !flags.is_empty() {
            let _ = write!(line, " ({flags})");
        }
        if let Some(p) = c.persistence {
            let _ = write!(line, " persistent {}", p.as_nanos() / 1_000_000_000);
            if c.netmask != u32::MAX {
                let _ = write!(line, " mask {}", Ipv4Addr::from(c.netmask));
            }
        }
        if c.flags.has(SvcFlags::ONEPACKET) {
            line.push_str(" ops");
        }
        out.push_str(&line);
        out.push('\n');
        for (_, d) in sorted_dests(svc) {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                fmt_addr(d.addr(), d.port()),
                d.fwd().ipvsadm_name(),
                d.weight(),
                d.active_conns(),
                d.inactive_conns()
            );
        }
    }
    out
}

/// ipvsadm's `print_largenum()`: 9 columns, or 8 and a K/M/G/T suffix for 10^8 and up.
fn largenum(out: &mut String, i: u64) {
    let _ = match i {
        0..100_000_000 => write!(out, "{i:>9}"),
        100_000_000..1_000_000_000 => write!(out, "{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:>8}G", i / 1_000_000_000),
        _ => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

/// The title of `--stats` and `--rate` (`print_title()`).
fn numbers_title(out: &mut String, columns: [&str; 5]) {
    out.push_str(VERSION_LINE);
    let [a, b, c, d, e] = columns;
    let _ = writeln!(out, "{:<33} {a:>8} {b:>8} {c:>8} {d:>8} {e:>8}", "Prot LocalAddress:Port");
    out.push_str("  -> RemoteAddress:Port\n");
}

/// A service row of `--stats` and `--rate`: the name in 33 columns, five numbers.
fn service_numbers(out: &mut String, key: ServiceKey, numbers: [u64; 5]) {
    let _ = write!(out, "{:<33}", service_name(key));
    for n in numbers {
        largenum(out, n);
    }
    out.push('\n');
}

/// `ipvsadm -L -n --stats`: connections, packets and bytes of every service and real
/// server, in the listing's order.
pub fn list_stats(ipvs: &Ipvs) -> String {
    let mut out = String::new();
    numbers_title(&mut out, ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]);
    let numbers = |s: Stats| [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes];
    for svc in sorted_services(ipvs) {
        service_numbers(&mut out, svc.key(), numbers(svc.stats()));
        for (id, d) in sorted_dests(svc) {
            let _ = write!(out, "  -> {:<28}", fmt_addr(d.addr(), d.port()));
            for n in numbers(svc.dest_stats(id)) {
                largenum(&mut out, n);
            }
            out.push('\n');
        }
    }
    out
}

/// `ipvsadm -L -n --rate`: the estimated rates. As in ipvsadm, a real server's CPS,
/// InPPS and OutPPS are printed `" %8llu"`, without the K/M suffixes of the other
/// numbers.
pub fn list_rate(ipvs: &Ipvs) -> String {
    let mut out = String::new();
    numbers_title(&mut out, ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]);
    for svc in sorted_services(ipvs) {
        let r = svc.rates();
        service_numbers(&mut out, svc.key(), [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]);
        for (id, d) in sorted_dests(svc) {
            let r = svc.dest_rates(id);
            let name = fmt_addr(d.addr(), d.port());
            let _ = write!(out, "  -> {name:<28} {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps);
            largenum(&mut out, r.inbps);
            largenum(&mut out, r.outbps);
            out.push('\n');
        }
    }
    out
}

fn sched_flag_names(s: SchedulerKind, flags: u32) -> String {
    let (f1, f2) = match s {
        SchedulerKind::Sh => ("sh-fallback", "sh-port"),
        SchedulerKind::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut names = Vec::new();
    if flags & SvcFlags::SCHED1 != 0 {
        names.push(f1);
    }
    if flags & SvcFlags::SCHED2 != 0 {
        names.push(f2);
    }
    if flags & SvcFlags::SCHED3 != 0 {
        names.push("flag-3");
    }
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvsadm::{Command, ParseError, apply, parse, words};

    fn p(line: &str) -> Result<Command, ParseError> {
        parse(&words(line))
    }

    #[test]
    fn list_matches_ipvsadm_layout() {
        let mut ipvs = Ipvs::new(1);
        for l in [
            "-A -t 10.0.0.1:80 -s wrr",
            "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 4",
        ] {
            apply(&mut ipvs, &p(l).unwrap()).unwrap();
        }
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.1:80 wrr\n",
            "  -> 10.0.0.2:80                  Masq    4      0          0         \n",
            "  -> 10.0.0.3:80                  Masq    2      0          0         \n",
        );
        assert_eq!(list(&ipvs), expected);
    }

    #[test]
    fn largenum_switches_to_suffixes_at_ipvsadms_thresholds() {
        let f = |i| {
            let mut s = String::new();
            largenum(&mut s, i);
            s
        };
        assert_eq!(f(99_999_999), " 99999999");
        assert_eq!(f(100_000_000), "  100000K");
        assert_eq!(f(999_999_999), "  999999K");
        assert_eq!(f(1_000_000_000), "    1000M");
        assert_eq!(f(99_999_999_999), "   99999M");
        assert_eq!(f(100_000_000_000), "     100G");
        assert_eq!(f(100_000_000_000_000), "     100T");
    }

    #[test]
    fn stats_and_rate_listings_match_ipvsadm_layout() {
        use lvs_sched::{Flow, Protocol, Time};
        let mut ipvs = Ipvs::new(1);
        for l in [
            "-A -t 10.0.0.1:80 -s rr",
            "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
            "-A -f 7 -s rr",
        ] {
            apply(&mut ipvs, &p(l).unwrap()).unwrap();
        }
        let half = Time(500_000_000);
        let mut conn = |c: &str| {
            let flow = Flow {
                protocol: Protocol::Tcp,
                saddr: c.parse().unwrap(),
                sport: 1000,
                daddr: "10.0.0.1".parse().unwrap(),
                dport: 80,
            };
            ipvs.new_conn(half, &flow, None).unwrap().conn.unwrap()
        };
        // rr: 10.0.0.2 (added last, first in the list), 10.0.0.3, 10.0.0.2.
        let (a, b, _) = (conn("1.1.1.1"), conn("1.1.1.2"), conn("1.1.1.3"));
        ipvs.count(a, false, 3, 180);
        ipvs.count(a, true, 2, 1_000_000_000);
        ipvs.count(b, false, 1, 60);
        let stats = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.1:80                         3        4        2      240    1000M\n",
            "  -> 10.0.0.2:80                         2        3        2      180    1000M\n",
            "  -> 10.0.0.3:80                         1        1        0       60        0\n",
            "FWM  7                                   0        0        0        0        0\n",
        );
        assert_eq!(list_stats(&ipvs), stats);
        // One estimator run at 2 s: avg = rate >> 2. Connections and packets stay below
        // the rounding (e.g. 3 << 9 >> 2 = 384, (384 + 511) >> 10 = 0). In bytes: 240 << 4
        // >> 2 = 960, (960 + 15) >> 5 = 30; out: 10^9 << 4 >> 2 = 4 * 10^9, >> 5 =
        // 125 000 000, printed 125000K.
        ipvs.advance(Time(2_000_000_000));
        let rate = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.1:80                         0        0        0       30  125000K\n",
            "  -> 10.0.0.2:80                         0        0        0       22  125000K\n",
            "  -> 10.0.0.3:80                         0        0        0        7        0\n",
            "FWM  7                                   0        0        0        0        0\n",
        );
        assert_eq!(list_rate(&ipvs), rate);
    }
}
