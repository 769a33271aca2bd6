//! The `ipvsadm -L -n` listings, byte for byte as ipvsadm 1.31 prints them: the service
//! table (plain, `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, each with
//! `--exact` and `--nosort`) and the connection table (`-c`, in [`conns`]).
//!
//! One options struct, [`ListOptions`] (parsed from ipvsadm's own words by
//! [`ListOptions::parse`], written back by [`ListOptions::args`]), and one entry point,
//! [`listing`]. ipvsadm's sort order is reproduced: services by fwmark, family, protocol,
//! address and port, real servers by address and port, with its comparators that store
//! the difference of two unsigned 32-bit values in an `int` (`ipvs_cmp_services()`,
//! `ipvs_cmp_dests()` in libipvs), and a stable merge sort, as glibc's `qsort` normally
//! is. With `--nosort` real servers come in kernel list order (the last added first);
//! the kernel dumps services in its hash-table order, which mixes in the network
//! namespace's address, so the model prints them in creation order instead.

mod conns;

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use lvs_sched::{Dest, DestId, Forwarding, SchedulerKind, SvcFlags, Tunnel, TunnelType};

use super::{Command, ParseError, Word};
use crate::{Ipvs, ServiceKey, Stats, VirtualService};

/// Which table `ipvsadm -L -n` prints. When several options are given ipvsadm keeps the
/// first of `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--tun-info`
/// (`print_title()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    /// Scheduler, flags, forwarding, weight, ActiveConn, InActConn.
    #[default]
    Plain,
    /// `--tun-info`: the plain table with a TunnelInfo column (`ipip`, `gue:PORT:-c`,
    /// `gre:+c`, `n/a` for other forwarding methods); the other formats ignore it.
    TunInfo,
    /// `--stats`: Conns, InPkts, OutPkts, InBytes, OutBytes.
    Stats,
    /// `--rate`: CPS, InPPS, OutPPS, InBPS, OutBPS.
    Rate,
    /// `--thresholds`: Uthreshold, Lthreshold, ActiveConn, InActConn.
    Thresholds,
    /// `--persistent-conn`: Weight, PersistConn, ActiveConn, InActConn.
    PersistentConn,
    /// `-c`: the connection entries (and templates), as `/proc/net/ip_vs_conn` has them;
    /// `persistent_conn` adds the (empty) persistence-engine columns to the header.
    Conns {
        /// `--persistent-conn` given too.
        persistent_conn: bool,
    },
}

/// What `ipvsadm -L -n [OPTIONS]` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListOptions {
    /// The table.
    pub format: ListFormat,
    /// `--exact` (`-X`): numbers without K/M/G/T scaling.
    pub exact: bool,
    /// Sorted as ipvsadm sorts (`false`: `--nosort`).
    pub sort: bool,
}

impl Default for ListOptions {
    /// `ipvsadm -L -n`.
    fn default() -> Self {
        ListOptions { format: ListFormat::Plain, exact: false, sort: true }
    }
}

impl ListOptions {
    /// ipvsadm's listing options, as the words after `-L` (`-n` is accepted and implied:
    /// listings are always numeric). Options ipvsadm refuses together with `-c` are
    /// refused here too ("options conflicts in the list command").
    pub fn parse(ws: &[Word<'_>]) -> Result<ListOptions, ParseError> {
        let (mut stats, mut rate, mut thresholds, mut pconn, mut conns) = (false, false, false, false, None);
        let mut tun_info = false;
        let mut o = ListOptions::default();
        for &(off, w) in ws {
            let mut set = |flag: &str| -> Result<(), ParseError> {
                match flag {
                    "n" | "numeric" | "L" | "l" | "list" | "sort" => {}
                    "stats" => stats = true,
                    "rate" => rate = true,
                    "thresholds" => thresholds = true,
                    "persistent-conn" => pconn = true,
                    "tun-info" => tun_info = true,
                    "c" | "connection" => conns = Some(off),
                    "X" | "exact" => o.exact = true,
                    "nosort" => o.sort = false,
                    _ => return Err(ParseError { offset: off, message: unknown(w) }),
                }
                Ok(())
            };
            match w.strip_prefix("--") {
                Some(long) if !long.is_empty() => set(long)?,
                _ => match w.strip_prefix('-') {
                    // Clustered short options, as popt takes them: `-cn`, `-nX`.
                    Some(shorts) if !shorts.is_empty() && shorts.chars().all(|c| "nLlcX".contains(c)) => {
                        for c in shorts.chars() {
                            set(&c.to_string())?;
                        }
                    }
                    _ => return Err(ParseError { offset: off, message: unknown(w) }),
                },
            }
        }
        o.format = match conns {
            Some(off) if stats || rate || thresholds => {
                return Err(ParseError {
                    offset: off,
                    message: "options conflicts in the list command: -c goes with neither --stats, \
                              --rate nor --thresholds"
                        .into(),
                });
            }
            Some(_) => ListFormat::Conns { persistent_conn: pconn },
            None if stats => ListFormat::Stats,
            None if rate => ListFormat::Rate,
            None if thresholds => ListFormat::Thresholds,
            None if pconn => ListFormat::PersistentConn,
            None if tun_info => ListFormat::TunInfo,
            None => ListFormat::Plain,
        };
        Ok(o)
    }

    /// The ipvsadm arguments that print this listing (`-L -n` and the options).
    pub fn args(&self) -> Vec<&'static str> {
        let mut a = vec!["-L", "-n"];
        a.extend(match self.format {
            ListFormat::Plain => None,
            ListFormat::Stats => Some("--stats"),
            ListFormat::Rate => Some("--rate"),
            ListFormat::Thresholds => Some("--thresholds"),
            ListFormat::PersistentConn => Some("--persistent-conn"),
            ListFormat::TunInfo => Some("--tun-info"),
            ListFormat::Conns { .. } => Some("-c"),
        });
        if self.format == (ListFormat::Conns { persistent_conn: true }) {
            a.push("--persistent-conn");
        }
        if self.exact {
            a.push("--exact");
        }
        if !self.sort {
            a.push("--nosort");
        }
        a
    }
}

fn unknown(w: &str) -> String {
    format!(
        "unknown listing option {w:?} (expected -n, --stats, --rate, --thresholds, --persistent-conn, \
         --tun-info, -c, --exact or --nosort)"
    )
}

/// `ipvsadm -L -n` with `opts`: the one entry point of every listing.
pub fn listing(ipvs: &Ipvs, opts: &ListOptions) -> String {
    let mut out = String::new();
    if let ListFormat::Conns { persistent_conn } = opts.format {
        conns::list(&mut out, ipvs, persistent_conn);
        return out;
    }
    out.push_str(VERSION_LINE);
    title(&mut out, opts.format);
    for svc in services(ipvs, opts.sort) {
        service_line(&mut out, svc, opts);
        for (id, d) in dests(svc, opts.sort) {
            dest_line(&mut out, svc, id, d, opts);
        }
    }
    out
}

/// `ipvsadm -L -n`.
pub fn list(ipvs: &Ipvs) -> String {
    listing(ipvs, &ListOptions::default())
}

/// `ipvsadm -S -n`: each service's `-A` line followed by its real servers' `-a` lines, in
/// the order `ipvsadm -L -n` sorts them (ipvsadm's `list_all()` sorts the saved rules the
/// same way), as `ipvsadm-restore` reads them back. ipvsadm -S leaves the real servers'
/// thresholds out (checked against the kernel, tests/real_ipvsadm.rs); with `thresholds`
/// each `-a` line also has its `-x`/`-y`, which ipvsadm-restore takes, so that the rules
/// restore the whole table.
pub fn save(ipvs: &Ipvs, thresholds: bool) -> String {
    let mut out = String::new();
    for svc in services(ipvs, true) {
        let key = svc.key();
        let _ = writeln!(out, "{}", Command::AddService(key, *svc.config()));
        for (_, d) in dests(svc, true) {
            let mut c = d.config();
            if !thresholds {
                (c.u_threshold, c.l_threshold) = (0, 0);
            }
            let _ = writeln!(out, "{}", Command::AddDest(key, c));
        }
    }
    out
}

/// `ipvsadm -L -n --stats`.
pub fn list_stats(ipvs: &Ipvs) -> String {
    listing(ipvs, &ListOptions { format: ListFormat::Stats, ..ListOptions::default() })
}

/// `ipvsadm -L -n --rate`.
pub fn list_rate(ipvs: &Ipvs) -> String {
    listing(ipvs, &ListOptions { format: ListFormat::Rate, ..ListOptions::default() })
}

/// The first line of every service listing.
const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";

/// `print_title()`.
fn title(out: &mut String, format: ListFormat) {
    let numbers = |out: &mut String, [a, b, c, d, e]: [&str; 5]| {
        let _ = writeln!(out, "{:<33} {a:>8} {b:>8} {c:>8} {d:>8} {e:>8}", "Prot LocalAddress:Port");
    };
    let words = |out: &mut String, [a, b, c, d]: [&str; 4], w: [usize; 4]| {
        let _ = writeln!(
            out,
            "{:<33} {a:<w0$} {b:<w1$} {c:<w2$} {d:<w3$}",
            "Prot LocalAddress:Port",
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
    };
    match format {
        ListFormat::Plain | ListFormat::Conns { .. } => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
            return;
        }
        ListFormat::TunInfo => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str(
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            );
            return;
        }
        ListFormat::Stats => numbers(out, ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]),
        ListFormat::Rate => numbers(out, ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]),
        ListFormat::Thresholds => {
            words(out, ["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"], [10; 4]);
        }
        ListFormat::PersistentConn => {
            words(out, ["Weight", "PersistConn", "ActiveConn", "InActConn"], [9, 11, 10, 10]);
        }
    }
    out.push_str("  -> RemoteAddress:Port\n");
}

/// ipvsadm's `svc_name`: the key as [`ServiceKey`]'s `Display` writes it, except that
/// ipvsadm prints a firewall mark with `%d`: marks from 2^31 up come out negative.
fn service_name(key: ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark { mark, ipv6 } if mark > i32::MAX as u32 => {
            format!("FWM  {}{}", mark as i32, if ipv6 { " IPv6" } else { "" })
        }
        _ => key.to_string(),
    }
}

/// A service's line: its name and what the format shows of it.
fn service_line(out: &mut String, svc: &VirtualService, opts: &ListOptions) {
    let key = svc.key();
    let name = service_name(key);
    match opts.format {
        ListFormat::Stats => {
            let _ = write!(out, "{name:<33}");
            for n in stats_numbers(svc.stats()) {
                largenum(out, n, opts.exact);
            }
        }
        ListFormat::Rate => {
            let _ = write!(out, "{name:<33}");
            let r = svc.rates();
            for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                largenum(out, n, opts.exact);
            }
        }
        _ => {
            let c = svc.config();
            let _ = write!(out, "{name} {}", c.scheduler);
            let flags = sched_flag_names(c.scheduler, c.flags.0);
            if !flags.is_empty() {
                let _ = write!(out, " ({flags})");
            }
            if let Some(p) = c.persistence {
                let _ = write!(out, " persistent {}", p.as_nanos() / 1_000_000_000);
                if key.is_ipv6() {
                    // An IPv6 service keeps a prefix length (u32::MAX: never set, /128).
                    let plen = if c.netmask == u32::MAX { 128 } else { c.netmask };
                    if plen != 128 {
                        let _ = write!(out, " mask {plen}");
                    }
                } else if c.netmask != u32::MAX {
                    let _ = write!(out, " mask {}", Ipv4Addr::from(c.netmask));
                }
            }
            if c.flags.has(SvcFlags::ONEPACKET) {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
}

/// A real server's line.
fn dest_line(out: &mut String, svc: &VirtualService, id: DestId, d: &Dest, opts: &ListOptions) {
    let name = crate::AddrPort(d.addr(), d.port()).to_string();
    let _ = match opts.format {
        ListFormat::Stats => {
            let _ = write!(out, "  -> {name:<28}");
            for n in stats_numbers(svc.dest_stats(id)) {
                largenum(out, n, opts.exact);
            }
            writeln!(out)
        }
        ListFormat::Rate => {
            // ipvsadm's quirk: CPS, InPPS and OutPPS are `" %8u"`, never scaled.
            let r = svc.dest_rates(id);
            let _ = write!(out, "  -> {name:<28} {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps);
            largenum(out, r.inbps, opts.exact);
            largenum(out, r.outbps, opts.exact);
            writeln!(out)
        }
        ListFormat::Thresholds => writeln!(
            out,
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            d.u_threshold(),
            d.l_threshold(),
            d.active_conns(),
            d.inactive_conns()
        ),
        ListFormat::PersistentConn => writeln!(
            out,
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            d.weight(),
            d.persist_conns(),
            d.active_conns(),
            d.inactive_conns()
        ),
        ListFormat::TunInfo => writeln!(
            out,
            "  -> {name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
            d.fwd().ipvsadm_name(),
            tunnel_info(d.fwd(), d.tunnel()),
            d.weight(),
            d.active_conns(),
            d.inactive_conns()
        ),
        ListFormat::Plain | ListFormat::Conns { .. } => writeln!(
            out,
            "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
            d.fwd().ipvsadm_name(),
            d.weight(),
            d.active_conns(),
            d.inactive_conns()
        ),
    };
}

/// A real server's row of `ipvsadm -L -n --thresholds`: what the listing shows that
/// `ipvsadm -S` does not (the thresholds and the connection counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdRow {
    /// `RIP:PORT`.
    pub addr: SocketAddr,
    /// Uthreshold (`-x`).
    pub u_threshold: u32,
    /// Lthreshold (`-y`).
    pub l_threshold: u32,
    /// ActiveConn.
    pub active_conns: u32,
    /// InActConn.
    pub inactive_conns: u32,
}

/// Reads back the real-server rows of a `--thresholds` listing (what [`listing`] writes
/// with [`ListFormat::Thresholds`], and the real ipvsadm prints), in listing order;
/// headings and service lines are skipped. An error names the row.
pub fn parse_threshold_rows(text: &str) -> Result<Vec<ThresholdRow>, String> {
    let num = |s: &str, line: &str| s.parse::<u32>().map_err(|_| format!("bad number {s:?} in {line:?}"));
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(row) = line.trim_start().strip_prefix("->") else { continue };
        let cols: Vec<&str> = row.split_whitespace().collect();
        if cols.first() == Some(&"RemoteAddress:Port") {
            continue; // the heading
        }
        let [addr, u, l, active, inactive] = cols[..] else {
            return Err(format!("unexpected row {line:?}"));
        };
        out.push(ThresholdRow {
            addr: addr.parse().map_err(|_| format!("bad address in {line:?}"))?,
            u_threshold: num(u, line)?,
            l_threshold: num(l, line)?,
            active_conns: num(active, line)?,
            inactive_conns: num(inactive, line)?,
        });
    }
    Ok(out)
}

/// A row of `ipvsadm -L -n --stats --exact` or `--rate --exact`: a service's or one of its
/// real servers' five numbers (Conns, InPkts, OutPkts, InBytes, OutBytes, or CPS, InPPS,
/// OutPPS, InBPS, OutBPS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRow {
    /// The service of the row, or of the real server's row.
    pub service: ServiceKey,
    /// `Some(RIP:PORT)` for a real server's row.
    pub dest: Option<SocketAddr>,
    /// The five columns, as listed.
    pub numbers: [u64; 5],
}

/// Reads back a `--stats` or `--rate` listing written with `--exact` (what [`listing`]
/// writes with [`ListFormat::Stats`]/[`ListFormat::Rate`] and `exact`, and the real
/// ipvsadm prints), in listing order. Numbers scaled with K/M/G/T (no `--exact`) and a
/// real server before any service are errors naming the line.
pub fn parse_counter_rows(text: &str) -> Result<Vec<CounterRow>, String> {
    let mut out: Vec<CounterRow> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let bad = |what: &str| format!("{what} in {line:?}");
        match cols[..] {
            [] | ["IP", "Virtual", ..] | ["Prot", "LocalAddress:Port", ..] | ["->", "RemoteAddress:Port"] => {
            }
            ["->", addr, ref numbers @ ..] => {
                let service = out.last().ok_or_else(|| bad("a real server before any service"))?.service;
                let dest = Some(addr.parse().map_err(|_| bad("bad address"))?);
                out.push(CounterRow {
                    service,
                    dest,
                    numbers: counter_numbers(numbers).map_err(|e| bad(&e))?,
                });
            }
            [proto, name, ref rest @ ..] if rest.len() >= 5 => {
                let (ipv6, numbers) = match rest {
                    ["IPv6", numbers @ ..] if proto == "FWM" => (true, numbers),
                    _ => (false, rest),
                };
                let service = counter_service(proto, name, ipv6).ok_or_else(|| bad("bad service"))?;
                out.push(CounterRow {
                    service,
                    dest: None,
                    numbers: counter_numbers(numbers).map_err(|e| bad(&e))?,
                });
            }
            _ => return Err(bad("unexpected line")),
        }
    }
    Ok(out)
}

/// A service as a listing names it: `TCP 10.0.0.1:80`, `FWM 1` (ipvsadm prints a mark
/// from 2^31 up as a negative `%d`).
fn counter_service(proto: &str, name: &str, ipv6: bool) -> Option<ServiceKey> {
    if proto == "FWM" {
        let mark =
            name.parse::<i64>().ok().filter(|m| (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(m))?;
        return Some(ServiceKey::Fwmark { mark: mark as u32, ipv6 });
    }
    let protocol = [crate::Protocol::Tcp, crate::Protocol::Udp, crate::Protocol::Sctp]
        .into_iter()
        .find(|p| p.name() == proto)?;
    let sa: SocketAddr = name.parse().ok()?;
    Some(ServiceKey::Addr { protocol, addr: sa.ip(), port: sa.port() })
}

fn counter_numbers(cols: &[&str]) -> Result<[u64; 5], String> {
    let [a, b, c, d, e] = cols else {
        return Err(format!("{} numbers, want 5", cols.len()));
    };
    let mut out = [0u64; 5];
    for (o, s) in out.iter_mut().zip([a, b, c, d, e]) {
        *o = s.parse().map_err(|_| format!("bad number {s:?} (listed without --exact?)"))?;
    }
    Ok(out)
}

/// The TunnelInfo column: `ipip`, `gue:PORT:CSUM`, `gre:CSUM` with CSUM `-c` (none),
/// `+c` (`--tun-csum`) or `r+c` (`--tun-remcsum`); `n/a` when not tunnelled.
pub fn tunnel_info(fwd: Forwarding, t: Tunnel) -> String {
    if fwd != Forwarding::Tunnel {
        return "n/a".into();
    }
    let csum = if t.flags & Tunnel::REMCSUM != 0 {
        "r+c"
    } else if t.flags & Tunnel::CSUM != 0 {
        "+c"
    } else {
        "-c"
    };
    match t.kind {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{csum}", t.port),
        TunnelType::Gre => format!("gre:{csum}"),
    }
}

fn stats_numbers(s: Stats) -> [u64; 5] {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
}

/// ipvsadm's `print_largenum()`: 9 columns, or 8 and a K/M/G/T suffix from 10^8 up;
/// with `--exact` the whole number after one space (at least 9 columns).
fn largenum(out: &mut String, i: u64, exact: bool) {
    let _ = match i {
        _ if exact => write!(out, " {i:>8}"),
        0..100_000_000 => write!(out, "{i:>9}"),
        100_000_000..1_000_000_000 => write!(out, "{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:>8}G", i / 1_000_000_000),
        _ => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

/// ipvsadm's comparators: `a - b` of two unsigned 32-bit values stored in an `int`, so
/// values more than 2^31 apart compare "wrapped" (SPEC §5).
fn wrapped_cmp(a: u32, b: u32) -> Ordering {
    (a.wrapping_sub(b) as i32).cmp(&0)
}

/// An address as libipvs's `union nf_inet_addr` words, in host order.
fn words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = u128::from(a);
            [(o >> 96) as u32, (o >> 64) as u32, (o >> 32) as u32, o as u32]
        }
    }
}

/// Word by word, the first `n` words (1 for IPv4, 4 for IPv6), as libipvs compares.
fn addr_cmp(a: IpAddr, b: IpAddr, n: usize) -> Ordering {
    let (a, b) = (words(a), words(b));
    (0..n).map(|i| wrapped_cmp(a[i], b[i])).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
}

/// `ipvs_cmp_services()`: fwmark (0 for an address service), family, protocol, address,
/// port. A fwmark service's protocol is TCP in the kernel's reply.
fn service_cmp(a: ServiceKey, b: ServiceKey) -> Ordering {
    let parts = |k: ServiceKey| match k {
        ServiceKey::Addr { protocol, addr, port } => (0, protocol.number(), addr, port),
        ServiceKey::Fwmark { mark, ipv6 } => {
            let any = if ipv6 { IpAddr::V6(0.into()) } else { IpAddr::V4(0.into()) };
            (mark, crate::Protocol::Tcp.number(), any, 0)
        }
    };
    let (am, ap, aa, ao) = parts(a);
    let (bm, bp, ba, bo) = parts(b);
    let n = if a.is_ipv6() { 4 } else { 1 };
    wrapped_cmp(am, bm)
        .then(a.af().cmp(&b.af()))
        .then(ap.cmp(&bp))
        .then_with(|| addr_cmp(aa, ba, n))
        .then(ao.cmp(&bo))
}

/// Services in ipvsadm's order (`sort`), or the table's creation order. `sort_by` is a
/// stable merge sort, as glibc's `qsort` normally is.
fn services(ipvs: &Ipvs, sort: bool) -> Vec<&VirtualService> {
    let mut svcs: Vec<_> = ipvs.services().collect();
    if sort {
        svcs.sort_by(|a, b| service_cmp(a.key(), b.key()));
    }
    svcs
}

/// A service's real servers: `ipvs_cmp_dests()` order (address as wide as the first
/// one's family, then port), or kernel list order.
fn dests(svc: &VirtualService, sort: bool) -> Vec<(DestId, &Dest)> {
    let mut dests: Vec<_> = svc.scheduler().dests().collect();
    if sort {
        dests.sort_by(|(_, a), (_, b)| {
            let n = if a.addr().is_ipv6() { 4 } else { 1 };
            addr_cmp(a.addr(), b.addr(), n).then(a.port().cmp(&b.port()))
        });
    }
    dests
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
    fn save_sorts_services_and_real_servers_as_ipvsadm_does() {
        let mut ipvs = Ipvs::new(1);
        for l in [
            "-A -t 10.0.0.9:80 -s wrr",
            "-a -t 10.0.0.9:80 -r 10.0.0.3:80 -m -w 2 -x 10 -y 5",
            // A tunnel server takes the service's port, as in the kernel.
            "-a -t 10.0.0.9:80 -r 10.0.0.2:8080 -i -w 4 --tun-type gue --tun-port 6080",
            "-A -f 7 -s sh -b sh-port -p 60",
            "-a -f 7 -r 10.0.0.2:0 -g -w 1",
            "-A -u 10.0.0.1:53 -s rr -o",
            "-A -t 10.0.0.1:80 -s wlc",
        ] {
            apply(&mut ipvs, &p(l).unwrap()).unwrap();
        }
        let with = "-A -t 10.0.0.1:80 -s wlc\n-A -t 10.0.0.9:80 -s wrr\n\
             -a -t 10.0.0.9:80 -r 10.0.0.2:80 -i -w 4 --tun-type gue --tun-port 6080 --tun-nocsum\n\
             -a -t 10.0.0.9:80 -r 10.0.0.3:80 -m -w 2 -x 10 -y 5\n-A -u 10.0.0.1:53 -s rr -o\n\
             -A -f 7 -s sh -p 60 -b sh-port\n-a -f 7 -r 10.0.0.2:0 -g -w 1\n";
        assert_eq!(save(&ipvs, true), with);
        assert_eq!(save(&ipvs, false), with.replace(" -x 10 -y 5", ""), "ipvsadm -S has no thresholds");
        assert_eq!(save(&Ipvs::new(1), true), "");
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
    fn threshold_rows_read_back_what_the_listing_writes() {
        use lvs_sched::{Flow, Protocol, Time};
        let mut ipvs = Ipvs::new(1);
        for l in [
            "-A -t 10.0.0.1:80 -s rr",
            "-a -t 10.0.0.1:80 -r 10.0.0.21:80 -m -x 100 -y 50",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m",
            "-A -t [2001:db8::1]:443 -s wlc",
            "-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -g -x 7",
        ] {
            apply(&mut ipvs, &p(l).unwrap()).unwrap();
        }
        for port in 1000..1003 {
            let flow = Flow {
                protocol: Protocol::Tcp,
                saddr: "192.168.0.9".parse().unwrap(),
                sport: port,
                daddr: "10.0.0.1".parse().unwrap(),
                dport: 80,
            };
            let _ = ipvs.new_conn(Time(0), &flow, None);
        }
        let opts = ListOptions { format: ListFormat::Thresholds, ..ListOptions::default() };
        let text = listing(&ipvs, &opts);
        let rows = parse_threshold_rows(&text).unwrap();
        let mut want = Vec::new();
        for svc in ipvs.services() {
            for (_, d) in svc.scheduler().dests() {
                want.push(ThresholdRow {
                    addr: SocketAddr::new(d.addr(), d.port()),
                    u_threshold: d.u_threshold(),
                    l_threshold: d.l_threshold(),
                    active_conns: d.active_conns(),
                    inactive_conns: d.inactive_conns(),
                });
            }
        }
        let mut got = rows.clone();
        got.sort_by_key(|r| r.addr);
        want.sort_by_key(|r| r.addr);
        assert_eq!(got, want, "{text}");
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().map(|r| r.active_conns).sum::<u32>() > 0, "{text}");
        assert!(parse_threshold_rows("  -> 10.0.0.2:80 1 2\n").is_err());
        assert!(parse_threshold_rows("  -> 10.0.0.2:80 1 2 x 4\n").is_err());
    }

    #[test]
    fn largenum_switches_to_suffixes_at_ipvsadms_thresholds() {
        let f = |i| {
            let mut s = String::new();
            largenum(&mut s, i, false);
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

        // Read back with --exact (and --nosort): every number as the model has it.
        let exact = |format| listing(&ipvs, &ListOptions { format, exact: true, sort: false });
        let tcp = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
        let fwm = ServiceKey::Fwmark { mark: 7, ipv6: false };
        let rs = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        let row = |service, dest, numbers| CounterRow { service, dest, numbers };
        let stats = vec![
            row(tcp, None, [3, 4, 2, 240, 1_000_000_000]),
            row(tcp, rs("10.0.0.2:80"), [2, 3, 2, 180, 1_000_000_000]),
            row(tcp, rs("10.0.0.3:80"), [1, 1, 0, 60, 0]),
            row(fwm, None, [0; 5]),
        ];
        assert_eq!(parse_counter_rows(&exact(ListFormat::Stats)), Ok(stats));
        let rates = parse_counter_rows(&exact(ListFormat::Rate)).unwrap();
        assert_eq!(rates[0].numbers, [0, 0, 0, 30, 125_000_000]);
        assert_eq!(rates[1], row(tcp, rs("10.0.0.2:80"), [0, 0, 0, 22, 125_000_000]));
        // Scaled numbers (no --exact) are refused, naming the line.
        let e = parse_counter_rows(&list_rate(&ipvs)).unwrap_err();
        assert!(e.contains("125000K") && e.contains("--exact"), "{e}");
        let v6 = "FWM  -2 IPv6                              1        2        3        4        5\n\
                  \x20 -> [2001:db8::2]:0                     1        2        3        4        5\n";
        let got = parse_counter_rows(v6).unwrap();
        assert_eq!(got[0].service, ServiceKey::Fwmark { mark: u32::MAX - 1, ipv6: true });
        assert_eq!((got[1].dest, got[1].numbers), (rs("[2001:db8::2]:0"), [1, 2, 3, 4, 5]));
        for bad in ["  -> 10.0.0.2:80 1 2 3 4 5", "TCP  10.0.0.1:80 1 2 3 4", "ICMP 10.0.0.1:80 1 2 3 4 5"] {
            assert!(parse_counter_rows(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever ipvsadm (or a stand-in for it) prints, the reader answers rows or an
        /// error, never a panic.
        #[test]
        fn counter_rows_never_panic(
            lines in proptest::collection::vec(
                "(  -> |TCP  |UDP  |FWM  |SCTP |)(\\[?[0-9a-f:.]{0,20}\\]?(:[0-9]{1,6})?)?( -?[0-9KMGT]{1,22}| IPv6){0,7}",
                0..8,
            ),
            raw in ".{0,200}",
        ) {
            let _ = parse_counter_rows(&lines.join("\n"));
            let _ = parse_counter_rows(&raw);
        }
    }
}

/// Layouts and orders checked against ipvsadm 1.31 on Debian 12's 6.1 kernel in the VM
/// (`tests/vm/lvsim-vm`), copied from its output.
#[cfg(test)]
mod vm_tests {
    use super::*;
    use crate::ipvsadm::{apply, parse, words};
    use crate::{DestConfig, ServiceConfig};
    use lvs_sched::{Duration, Flow, Protocol, Time};

    fn run(ipvs: &mut Ipvs, lines: &[&str]) {
        for l in lines {
            apply(ipvs, &parse(&words(l)).unwrap()).unwrap();
        }
    }

    fn opts(ws: &str) -> ListOptions {
        ListOptions::parse(&words(ws)).unwrap()
    }

    /// The VM's table: services of both families, a fwmark pair and an address pair
    /// that ipvsadm's wrapping comparator puts "backwards".
    fn vm_table() -> Ipvs {
        let mut ipvs = Ipvs::new(1);
        run(&mut ipvs, &["-A -u 10.0.0.1:53 -s rr -o", "-A -t 192.168.1.1:80 -s wlc", "-A -f 5 -s rr -p"]);
        let persistent = |secs, netmask| ServiceConfig {
            persistence: Some(Duration::from_secs(secs)),
            netmask,
            flags: SvcFlags(SvcFlags::PERSISTENT),
            ..ServiceConfig::new(SchedulerKind::Rr)
        };
        ipvs.add_service(ServiceKey::Fwmark { mark: 3, ipv6: true }, persistent(30, 64)).unwrap();
        let v6 =
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "2001:db8::1".parse().unwrap(), port: 443 };
        let cfg = ServiceConfig { scheduler: SchedulerKind::Wlc, ..persistent(60, 48) };
        ipvs.add_service(v6, cfg).unwrap();
        let mut d =
            DestConfig::new("2001:db8::abcd:1234:5678:9abc:def0".parse().unwrap(), 443, Forwarding::Masq);
        d.u_threshold = 7;
        ipvs.add_dest(v6, &d).unwrap();
        run(&mut ipvs, &["-A -t 10.255.255.255:65535 -s rr"]);
        ipvs
    }

    const SERVICES: &str = concat!(
        "TCP  192.168.1.1:80 wlc\n",
        "TCP  10.255.255.255:65535 rr\n",
        "UDP  10.0.0.1:53 rr ops\n",
        "TCP  [2001:db8::1]:443 wlc persistent 60 mask 48\n",
    );

    #[test]
    fn plain_sorts_services_as_ipvsadm_does() {
        let expected = [
            VERSION_LINE,
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            SERVICES,
            "  -> [2001:db8:0:abcd:1234:5678:9abc:def0]:443 Masq    1      0          0         \n",
            "FWM  3 IPv6 rr persistent 30 mask 64\n",
            "FWM  5 rr persistent 360\n",
        ]
        .concat();
        assert_eq!(listing(&vm_table(), &opts("")), expected);
        assert_eq!(listing(&vm_table(), &opts("-n --exact")), expected, "--exact changes no plain column");
    }

    #[test]
    fn thresholds_and_persistent_conn_match_ipvsadm() {
        let body = |dest: &'static str| {
            [
                VERSION_LINE,
                "",
                "  -> RemoteAddress:Port\n",
                SERVICES,
                dest,
                "FWM  3 IPv6 rr persistent 30 mask 64\n",
                "FWM  5 rr persistent 360\n",
            ]
        };
        let mut t = body(
            "  -> [2001:db8:0:abcd:1234:5678:9abc:def0]:443 7          0          0          0         \n",
        );
        t[1] = "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n";
        assert_eq!(listing(&vm_table(), &opts("--thresholds")), t.concat());
        // ipvsadm keeps --thresholds over --persistent-conn, whatever the order.
        assert_eq!(listing(&vm_table(), &opts("--persistent-conn --thresholds")), t.concat());
        let mut p = body(
            "  -> [2001:db8:0:abcd:1234:5678:9abc:def0]:443 1         0           0          0         \n",
        );
        p[1] = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n";
        assert_eq!(listing(&vm_table(), &opts("--persistent-conn")), p.concat());
    }

    #[test]
    fn stats_keep_the_sort_and_stats_win_over_rate() {
        let zeros = "        0        0        0        0        0\n";
        let mut expected = String::from(VERSION_LINE);
        expected.push_str("Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n");
        expected.push_str("  -> RemoteAddress:Port\n");
        for name in [
            "TCP  192.168.1.1:80",
            "TCP  10.255.255.255:65535",
            "UDP  10.0.0.1:53",
            "TCP  [2001:db8::1]:443",
            "  -> [2001:db8:0:abcd:1234:5678:9abc:def0]:443",
            "FWM  3 IPv6",
            "FWM  5",
        ] {
            let _ = write!(expected, "{name:<33}{zeros}");
        }
        assert_eq!(listing(&vm_table(), &opts("--stats --rate")), expected);
        assert_eq!(listing(&vm_table(), &opts("--stats --exact")), expected);
    }

    #[test]
    fn nosort_keeps_kernel_list_order_of_real_servers() {
        let mut ipvs = Ipvs::new(1);
        run(
            &mut ipvs,
            &[
                "-A -t 10.0.0.1:80 -s rr",
                "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
                "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
                "-a -t 10.0.0.1:80 -r 192.168.0.9:80 -m",
            ],
        );
        let rows = |o: &str| -> Vec<String> {
            listing(&ipvs, &opts(o))
                .lines()
                .filter(|l| l.starts_with("  -> 1"))
                .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
                .collect()
        };
        // Sorted: 192.168.0.9 - 10.0.0.2 = 0xb6a8_0007 is negative as an int.
        assert_eq!(rows(""), ["192.168.0.9:80", "10.0.0.2:80", "10.0.0.3:80"]);
        assert_eq!(rows("--nosort"), ["192.168.0.9:80", "10.0.0.3:80", "10.0.0.2:80"]);
    }

    #[test]
    fn flags_ipv6_real_servers_and_big_marks_as_ipvsadm_prints_them() {
        let mut ipvs = Ipvs::new(1);
        run(
            &mut ipvs,
            &[
                "-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback",
                "-A -t 10.0.0.2:80 -s mh -b mh-port",
                "-A -t 10.0.0.3:80 -s rr -b flag-3,flag-1",
                "-A -u 10.0.0.1:53 -s rr -o -p 20 -M 255.255.0.0",
                "-A -t [2001:db8::1]:80 -s rr",
                "-a -t [2001:db8::1]:80 -r [2001:db8::2]:80 -m",
                "-a -t [2001:db8::1]:80 -r [fd00::1]:80 -m",
                "-a -t [2001:db8::1]:80 -r [2001:db8::1:0:0:1]:80 -m",
                "-a -t [2001:db8::1]:80 -r [2001:db8::2]:81 -m",
                "-A -f 4294967295 -s rr",
                "-A -f 1 -s rr",
            ],
        );
        let expected = [
            VERSION_LINE,
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "FWM  -1 rr\n",
            "TCP  10.0.0.1:80 sh (sh-fallback,sh-port)\n",
            "TCP  10.0.0.2:80 mh (mh-port)\n",
            "TCP  10.0.0.3:80 rr (flag-1,flag-3)\n",
            "UDP  10.0.0.1:53 rr persistent 20 mask 255.255.0.0 ops\n",
            "TCP  [2001:db8::1]:80 rr\n",
            "  -> [fd00::1]:80                 Masq    1      0          0         \n",
            "  -> [2001:db8::2]:80             Masq    1      0          0         \n",
            "  -> [2001:db8::2]:81             Masq    1      0          0         \n",
            "  -> [2001:db8::1:0:0:1]:80       Masq    1      0          0         \n",
            "FWM  1 rr\n",
        ]
        .concat();
        assert_eq!(listing(&ipvs, &opts("-n")), expected);
    }

    #[test]
    fn tun_info_shows_each_tunnel_as_ipvsadm_does() {
        let mut ipvs = Ipvs::new(1);
        run(&mut ipvs, &["-A -t 10.0.0.1:80 -s rr"]);
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
        let tun = |kind, port, flags| Tunnel { kind, port, flags };
        for (last, fwd, t) in [
            (2, Forwarding::Tunnel, tun(TunnelType::Ipip, 0, 0)),
            (3, Forwarding::Tunnel, tun(TunnelType::Gue, 6080, 0)),
            (4, Forwarding::Tunnel, tun(TunnelType::Gue, 6081, Tunnel::CSUM)),
            (5, Forwarding::Tunnel, tun(TunnelType::Gue, 6082, Tunnel::REMCSUM)),
            (6, Forwarding::Tunnel, tun(TunnelType::Gre, 0, 0)),
            (7, Forwarding::Tunnel, tun(TunnelType::Gre, 0, Tunnel::CSUM)),
            (9, Forwarding::Masq, tun(TunnelType::Ipip, 0, 0)),
            (10, Forwarding::DirectRouting, tun(TunnelType::Ipip, 0, 0)),
        ] {
            let mut d = DestConfig::new(format!("10.0.0.{last}").parse().unwrap(), 80, fwd);
            d.tunnel = t;
            ipvs.add_dest(key, &d).unwrap();
        }
        let expected = [
            VERSION_LINE,
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            "TCP  10.0.0.1:80 rr\n",
            "  -> 10.0.0.2:80                  Tunnel  ipip          1      0          0         \n",
            "  -> 10.0.0.3:80                  Tunnel  gue:6080:-c   1      0          0         \n",
            "  -> 10.0.0.4:80                  Tunnel  gue:6081:+c   1      0          0         \n",
            "  -> 10.0.0.5:80                  Tunnel  gue:6082:r+c  1      0          0         \n",
            "  -> 10.0.0.6:80                  Tunnel  gre:-c        1      0          0         \n",
            "  -> 10.0.0.7:80                  Tunnel  gre:+c        1      0          0         \n",
            "  -> 10.0.0.9:80                  Masq    n/a           1      0          0         \n",
            "  -> 10.0.0.10:80                 Route   n/a           1      0          0         \n",
        ]
        .concat();
        assert_eq!(listing(&ipvs, &opts("--tun-info")), expected);
        assert_eq!(opts("--tun-info --thresholds").format, ListFormat::Thresholds);
        assert_eq!(opts("-c --tun-info").format, ListFormat::Conns { persistent_conn: false });
        assert_eq!(opts("--tun-info").args(), ["-L", "-n", "--tun-info"]);
    }

    #[test]
    fn exact_prints_whole_numbers() {
        let f = |i| {
            let mut s = String::new();
            largenum(&mut s, i, true);
            s
        };
        assert_eq!(f(0), "        0");
        assert_eq!(f(99_999_999), " 99999999");
        assert_eq!(f(100_000_000), " 100000000");
        assert_eq!(f(u64::MAX), " 18446744073709551615");
    }

    #[test]
    fn options_parse_as_ipvsadm_takes_them_and_print_back() {
        let o = opts("-n --stats --exact --nosort");
        assert_eq!(o, ListOptions { format: ListFormat::Stats, exact: true, sort: false });
        assert_eq!(o.args(), ["-L", "-n", "--stats", "--exact", "--nosort"]);
        assert_eq!(opts("-cn").format, ListFormat::Conns { persistent_conn: false });
        let c = opts("--persistent-conn -c");
        assert_eq!(c.format, ListFormat::Conns { persistent_conn: true });
        assert_eq!(c.args(), ["-L", "-n", "-c", "--persistent-conn"]);
        assert_eq!(opts("--rate --thresholds").format, ListFormat::Rate);
        assert_eq!(opts("").args(), ["-L", "-n"]);
        for (bad, at) in
            [("-c --stats", 0), ("--thresholds -c", 13), ("--stat", 0), ("-nq", 0), ("-", 0), ("stats", 0)]
        {
            let e = ListOptions::parse(&words(bad)).unwrap_err();
            assert_eq!(e.offset, at, "{bad}: {e:?}");
        }
    }

    fn flow(client: &str, sport: u16) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            saddr: client.parse().unwrap(),
            sport,
            daddr: "10.0.0.1".parse().unwrap(),
            dport: 80,
        }
    }

    #[test]
    fn connection_entries_show_states_expiry_and_templates() {
        use crate::tcp::Segment;
        let mut ipvs = Ipvs::new(1);
        run(
            &mut ipvs,
            &[
                "-A -t 10.0.0.1:80 -s rr -p 600 -M 255.255.255.0",
                "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m",
                "-A -u 10.0.0.1:53 -s rr",
                "-a -u 10.0.0.1:53 -r 10.0.0.3 -g",
            ],
        );
        let t0 = Time::ZERO;
        let a = ipvs.new_conn(t0, &flow("192.168.7.9", 40000), None).unwrap().conn.unwrap();
        // Unassured until the handshake completes.
        let c = listing(&ipvs, &opts("-c"));
        assert!(
            c.contains("TCP 10:00  NONE        192.168.7.0:0      10.0.0.1:80        10.0.0.2:8080\n"),
            "{c}"
        );
        ipvs.packet(t0, a, Segment::Ack, false);
        let b = ipvs.new_conn(t0, &flow("192.168.7.10", 40001), None).unwrap().conn.unwrap();
        ipvs.packet(t0, b, Segment::Rst, false);
        let udp = Flow { protocol: Protocol::Udp, dport: 53, ..flow("192.168.8.1", 5353) };
        ipvs.new_conn(t0, &udp, None).unwrap();
        ipvs.advance(Time(61_500_000_000));
        let mut rows: Vec<_> = listing(&ipvs, &opts("-c")).lines().map(str::to_owned).collect();
        assert_eq!(
            rows[..2],
            [
                "IPVS connection entries",
                "pro expire state       source             virtual            destination"
            ]
        );
        rows[2..].sort();
        // 61.5 s after: ESTABLISHED (900 s) has 838.5 s left, shown 13:58; the reset
        // entry (CLOSE, 10 s) has expired; the template was re-armed by the second
        // connection at 0 s; the UDP entry (300 s) has 238.5 s.
        assert_eq!(
            rows[2..],
            [
                "TCP 08:58  ASSURED     192.168.7.0:0      10.0.0.1:80        10.0.0.2:8080",
                "TCP 13:58  ESTABLISHED 192.168.7.9:40000  10.0.0.1:80        10.0.0.2:8080",
                "UDP 03:58  UDP         192.168.8.1:5353   10.0.0.1:53        10.0.0.3:53",
            ]
        );
        let pc = listing(&ipvs, &opts("-c --persistent-conn"));
        assert!(pc.contains("\npro expire state       source             virtual            destination        pe name          pe_data\n"), "{pc}");
    }

    #[test]
    fn fwmark_and_invalidated_templates_show_as_the_kernel_shows_them() {
        let mut ipvs = Ipvs::new(1);
        run(&mut ipvs, &["-A -f 7 -s rr -p 100", "-a -f 7 -r 10.0.0.2:0 -g", "-a -f 7 -r 10.0.0.3:0 -g"]);
        let id = ipvs.new_conn(Time::ZERO, &flow("192.168.7.9", 40000), Some(7)).unwrap();
        let c = listing(&ipvs, &opts("-c"));
        let first = id.dest;
        assert!(
            c.contains(&format!(
                "IP  01:40  NONE        192.168.7.9:0      0.0.0.7:0          {}:0\n",
                first.ip()
            )),
            "{c}"
        );
        assert!(
            c.contains(&format!(
                "TCP 01:00  SYN_RECV    192.168.7.9:40000  10.0.0.1:80        {}:80\n",
                first.ip()
            )),
            "{c}"
        );
        // The template's server is deleted: the next connection invalidates it (ports
        // 65535) and makes a new one on the other server.
        run(&mut ipvs, &[&format!("-d -f 7 -r {}:0", first.ip())]);
        let again = ipvs.new_conn(Time::ZERO, &flow("192.168.7.9", 40001), Some(7)).unwrap();
        assert_ne!(again.dest.ip(), first.ip());
        let c = listing(&ipvs, &opts("-c"));
        assert!(
            c.contains(&format!(
                "IP  01:40  NONE        192.168.7.9:0      0.0.0.7:65535      {}:65535\n",
                first.ip()
            )),
            "{c}"
        );
        assert!(
            c.contains(&format!(
                "IP  01:40  NONE        192.168.7.9:0      0.0.0.7:0          {}:0\n",
                again.dest.ip()
            )),
            "{c}"
        );
    }
}
