//! `probe`: every backend through the same sequence against the real kernel.
//!
//! Services are made with `ipvsadm` (TCP IPv4 wlc, UDP persistent with a /24 mask, an
//! fwmark, TCP IPv6 persistent with a /64 prefix, an IPv6 fwmark with sh and `sh-port`). Then each of netlink and ipvsadm, in
//! turn: lists the services; adds NAT, DR and tunnel (GUE with checksum; IPv4 tunnel in
//! the IPv6 service) real servers with thresholds; edits each weight from its own listing,
//! as the master does; resends entries with zero thresholds, a plain ipip tunnel and NAT
//! instead of DR, to show SET_DEST resets what is not sent; is refused (ESRCH, EEXIST,
//! ENOENT, ERANGE, EINVAL); edits in a batch; deletes everything. After each step the
//! table is compared with what was set through the backend itself, the other backend and
//! `ipvsadm -L -n --nosort --tun-info/--thresholds`. Last, the dry-run backend, seeded
//! with netlink's listing, goes through the same steps and must refuse with the errnos the
//! kernel gave.
//!
//! Then each backend adds, edits and removes virtual services of every kind
//! ([`services`]), and real traffic through an LVS-NAT service shows the kernel's counters
//! and rates through netlink and ipvsadm alike ([`traffic`]).

use anyhow::{Context, bail};
use feedbackd_master::ipvs::{Backend, BackendKind, DestRow, Error, ServiceKey, dest, service_config};
use lvs_ipvs::{DestConfig, Forwarding, SchedulerKind, ServiceConfig, SvcFlags, Tunnel, TunnelType};
use lvs_sched::Duration;

use crate::report::{Report, expect_errno, ipvsadm, key};
use feedbackd_master::daemon::backend_name;

/// Per service, the real servers in kernel list order (newest first).
type Model = Vec<(ServiceKey, Vec<DestConfig>)>;

/// The services, as made with ipvsadm and as they should be listed.
fn make_services() -> anyhow::Result<Vec<(ServiceKey, ServiceConfig)>> {
    let table = ipvsadm(&["-S", "-n"]).map_err(anyhow::Error::msg).context("reading the IPVS table")?;
    if !table.trim().is_empty() {
        bail!("the IPVS table is not empty; the probe needs an empty one:\n{table}");
    }
    for cmd in [
        &["-A", "-t", "10.0.0.1:80", "-s", "wlc"][..],
        &["-A", "-u", "10.0.0.1:53", "-s", "rr", "-p", "300", "-M", "255.255.255.0"],
        &["-A", "-f", "7", "-s", "wlc"],
        &["-A", "-t", "[2001:db8::1]:443", "-s", "wlc", "-p", "60", "-M", "64"],
        &["-A", "-f", "8", "-6", "-s", "sh", "-b", "sh-port"],
    ] {
        ipvsadm(cmd).map_err(anyhow::Error::msg)?;
    }
    let plain = |k: &str, scheduler| (key(k), service_config(&key(k), scheduler));
    let persistent = |k: &str, scheduler, timeout_s, netmask| {
        let config = ServiceConfig {
            scheduler,
            flags: SvcFlags(SvcFlags::PERSISTENT),
            persistence: Some(Duration::from_secs(timeout_s)),
            netmask,
            pe: None,
        };
        (key(k), config)
    };
    let (fwm6, mut sh) = plain("fwm6:8", SchedulerKind::Sh);
    sh.flags = SvcFlags(SvcFlags::SCHED2);
    Ok(vec![
        plain("tcp:10.0.0.1:80", SchedulerKind::Wlc),
        persistent("udp:10.0.0.1:53", SchedulerKind::Rr, 300, 0xffff_ff00),
        plain("fwm:7", SchedulerKind::Wlc),
        persistent("tcp:[2001:db8::1]:443", SchedulerKind::Wlc, 60, 64),
        (fwm6, sh),
    ])
}

fn rs(addr: &str, port: u16, fwd: Forwarding, weight: u32, x: u32, y: u32) -> DestConfig {
    let mut r = dest(addr.parse().expect("an address"), port, fwd, weight);
    (r.u_threshold, r.l_threshold) = (x, y);
    r
}

/// The real servers each round adds, in order.
fn fixture() -> Vec<(ServiceKey, DestConfig)> {
    let mut gue = rs("10.0.0.4", 80, Forwarding::Tunnel, 2, 20, 10);
    gue.tunnel = Tunnel { kind: TunnelType::Gue, port: 6080, flags: Tunnel::CSUM };
    vec![
        (key("tcp:10.0.0.1:80"), rs("10.0.0.2", 80, Forwarding::Masq, 5, 100, 50)),
        (key("tcp:10.0.0.1:80"), rs("10.0.0.3", 80, Forwarding::DirectRouting, 3, 0, 0)),
        (key("tcp:10.0.0.1:80"), gue),
        (key("udp:10.0.0.1:53"), rs("10.0.0.2", 53, Forwarding::Masq, 1, 0, 0)),
        (key("fwm:7"), rs("10.0.0.5", 0, Forwarding::DirectRouting, 4, 9, 3)),
        (key("tcp:[2001:db8::1]:443"), rs("2001:db8::2", 443, Forwarding::Masq, 1, 10, 5)),
        (key("tcp:[2001:db8::1]:443"), rs("10.0.0.6", 443, Forwarding::Tunnel, 1, 0, 0)),
        (key("fwm6:8"), rs("2001:db8::3", 0, Forwarding::DirectRouting, 6, 0, 0)),
    ]
}

/// Runs the probe; `Ok(false)` if a check failed.
pub(crate) fn run(force: bool) -> anyhow::Result<bool> {
    if std::env::var("LVSIM_VM").as_deref() != Ok("1") && !force {
        bail!("the probe changes the IPVS table: run it in tests/vm/lvsim-vm, or pass --force");
    }
    let services = make_services()?;
    let mut report = Report::default();
    let mut netlink = Backend::open(BackendKind::Netlink, &[]).context("opening the netlink backend")?;
    let mut adm = Backend::open(BackendKind::Ipvsadm, &[]).context("opening the ipvsadm backend")?;
    round(&mut report, &mut netlink, Some(&mut adm), &services);
    round(&mut report, &mut adm, Some(&mut netlink), &services);
    let seed = netlink.services().context("listing services for the dry run")?;
    let mut dry = Backend::open(BackendKind::DryRun, &seed)?;
    round(&mut report, &mut dry, None, &services);
    crate::services::round(&mut report, &mut netlink, Some(&mut adm));
    crate::services::round(&mut report, &mut adm, Some(&mut netlink));
    crate::services::round(&mut report, &mut dry, None);
    crate::traffic::run(&mut report, &mut netlink, &mut adm);
    println!("SUMMARY pass={} fail={}", report.pass, report.fail);
    Ok(report.fail == 0)
}

fn round(
    r: &mut Report,
    b: &mut Backend,
    mut other: Option<&mut Backend>,
    services: &[(ServiceKey, ServiceConfig)],
) {
    let name = backend_name(b.kind());
    r.check(format!("{name}: services listed as ipvsadm made them"), compare_services(b, services));
    let mut model: Model = services.iter().map(|(k, _)| (*k, Vec::new())).collect();

    let mut step = Ok(());
    for (svc, d) in fixture() {
        step = step.and(b.add_real_server(&svc, &d).map_err(|e| e.to_string()));
        entry(&mut model, &svc).insert(0, d);
    }
    r.check(format!("{name}: add real servers (NAT, DR, GUE, mixed-family tunnel)"), step);
    verify(r, &format!("{name}/add"), b, other.as_deref_mut(), &model);

    // Edit each weight from the backend's own listing, as the master does.
    let mut step = Ok(());
    for (svc, want) in model.iter_mut() {
        let current = b.real_servers(svc).map_err(|e| e.to_string());
        for mut d in current.clone().unwrap_or_default() {
            d.config.weight += 10;
            step = step.and(b.edit_real_server(svc, &d.config).map_err(|e| e.to_string()));
        }
        step = step.and(current.map(drop));
        want.iter_mut().for_each(|d| d.weight += 10);
    }
    r.check(format!("{name}: edit every weight"), step);
    verify(
        r,
        &format!("{name}/edit weight (forwarding, thresholds, tunnel kept)"),
        b,
        other.as_deref_mut(),
        &model,
    );

    resets(r, b, &mut model);
    verify(
        r,
        &format!("{name}/resend with zero fields (SET_DEST resets them)"),
        b,
        other.as_deref_mut(),
        &model,
    );

    refusals(r, b);
    verify(r, &format!("{name}/after refusals (nothing changed)"), b, other.as_deref_mut(), &model);

    batch(r, b, &mut model);
    verify(r, &format!("{name}/batch"), b, other.as_deref_mut(), &model);

    let mut step = Ok(());
    for (svc, want) in model.iter_mut() {
        for d in want.drain(..) {
            step = step.and(b.remove_real_server(svc, d.addr, d.port).map_err(|e| e.to_string()));
        }
    }
    r.check(format!("{name}: delete every real server"), step);
    verify(r, &format!("{name}/delete"), b, other, &model);
}

fn entry<'m>(model: &'m mut Model, svc: &ServiceKey) -> &'m mut Vec<DestConfig> {
    &mut model.iter_mut().find(|(k, _)| k == svc).expect("a service of the fixture").1
}

/// Resend three entries of `TCP 10.0.0.1:80` with fields zeroed or changed: the NAT one
/// without thresholds, the GUE one as plain ipip, the DR one as NAT.
fn resets(r: &mut Report, b: &mut Backend, model: &mut Model) {
    let name = backend_name(b.kind());
    let svc = key("tcp:10.0.0.1:80");
    let list = entry(model, &svc);
    let mut step = Ok(());
    for d in list.iter_mut() {
        let sent = match d.fwd {
            Forwarding::Tunnel => DestConfig { tunnel: Tunnel::default(), ..*d },
            _ => dest(d.addr, d.port, Forwarding::Masq, d.weight),
        };
        step = step.and(b.edit_real_server(&svc, &sent).map_err(|e| e.to_string()));
        *d = sent;
    }
    r.check(format!("{name}: SET_DEST without thresholds/tunnel options, DR to NAT"), step);
}

fn refusals(r: &mut Report, b: &mut Backend) {
    let kind = b.kind();
    let name = backend_name(kind);
    let (tcp, v6, unknown) = (key("tcp:10.0.0.1:80"), key("tcp:[2001:db8::1]:443"), key("tcp:10.9.9.9:80"));
    let existing = rs("10.0.0.2", 80, Forwarding::Masq, 1, 0, 0);
    let missing = rs("10.0.0.99", 80, Forwarding::Masq, 1, 0, 0);
    let mut low_above_high = existing;
    (low_above_high.u_threshold, low_above_high.l_threshold) = (5, 10);
    let mut heavy = existing;
    heavy.weight = 1 << 31;
    let mut gue_port0 = rs("10.0.0.7", 80, Forwarding::Tunnel, 1, 0, 0);
    gue_port0.tunnel.kind = TunnelType::Gue;
    let nat_other_family = rs("10.0.0.9", 443, Forwarding::Masq, 1, 0, 0);
    let cases: [(&str, bool, Result<(), Error>, i32); 10] = [
        ("NEW_DEST in an unknown service", false, b.add_real_server(&unknown, &existing), libc::ESRCH),
        ("GET_DEST of an unknown service", false, b.real_servers(&unknown).map(drop), libc::ESRCH),
        (
            "DEL_DEST in an unknown service",
            false,
            b.remove_real_server(&unknown, existing.addr, 80),
            libc::ESRCH,
        ),
        ("NEW_DEST of an existing real server", false, b.add_real_server(&tcp, &existing), libc::EEXIST),
        ("SET_DEST of a missing real server", false, b.edit_real_server(&tcp, &missing), libc::ENOENT),
        (
            "DEL_DEST of a missing real server",
            false,
            b.remove_real_server(&tcp, missing.addr, 80),
            libc::ENOENT,
        ),
        ("SET_DEST with -y above -x", false, b.edit_real_server(&tcp, &low_above_high), libc::ERANGE),
        ("SET_DEST with weight 2^31", true, b.edit_real_server(&tcp, &heavy), libc::ERANGE),
        ("NEW_DEST GUE with port 0", true, b.add_real_server(&tcp, &gue_port0), libc::EINVAL),
        (
            "NEW_DEST IPv4 NAT in an IPv6 service",
            true,
            b.add_real_server(&v6, &nat_other_family),
            libc::EINVAL,
        ),
    ];
    for (what, ipvsadm_refuses, res, errno) in cases {
        r.check(format!("{name}: refuses {what}"), expect_errno(kind, ipvsadm_refuses, res, errno));
    }
}

/// Edits `TCP 10.0.0.1:80` in one batch, then a batch with a missing real server in the
/// middle: refused with ENOENT, the others applied.
fn batch(r: &mut Report, b: &mut Backend, model: &mut Model) {
    let name = backend_name(b.kind());
    let svc = key("tcp:10.0.0.1:80");
    let list = entry(model, &svc);
    list.iter_mut().for_each(|d| d.weight += 1);
    let res = b.edit_real_servers_batch(&svc, list).map_err(|e| e.to_string());
    r.check(format!("{name}: batch edit"), res);
    list.iter_mut().for_each(|d| d.weight += 1);
    let mut sent = list.clone();
    sent.insert(1, rs("10.0.0.99", 80, Forwarding::Masq, 1, 0, 0));
    let res = b.edit_real_servers_batch(&svc, &sent);
    r.check(
        format!("{name}: batch with a missing real server"),
        expect_errno(b.kind(), false, res, libc::ENOENT),
    );
}

fn compare_services(b: &mut Backend, want: &[(ServiceKey, ServiceConfig)]) -> Result<(), String> {
    let mut got = b.services().map_err(|e| e.to_string())?;
    got.sort_by_key(|s| s.0);
    let mut want = want.to_vec();
    want.sort_by_key(|s| s.0);
    if got == want { Ok(()) } else { Err(format!("got {got:?}, want {want:?}")) }
}

fn verify(r: &mut Report, label: &str, b: &mut Backend, other: Option<&mut Backend>, model: &Model) {
    r.check(format!("{label}: {} lists it", backend_name(b.kind())), compare_listing(b, model));
    if let Some(o) = other {
        r.check(format!("{label}: {} lists the same", backend_name(o.kind())), compare_listing(o, model));
    }
    if b.kind() != BackendKind::DryRun {
        r.check(format!("{label}: ipvsadm -L -n shows it"), compare_kernel_text(model));
    }
}

fn compare_listing(b: &mut Backend, model: &Model) -> Result<(), String> {
    for (svc, want) in model {
        let got = b.real_servers(svc).map_err(|e| e.to_string())?;
        // Nothing connects in the probe: every count is 0.
        let want: Vec<DestRow> = want.iter().copied().map(DestRow::new).collect();
        if got != want {
            return Err(format!("{svc}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    Ok(())
}

/// `-t VIP:PORT` and the like, as lvs-ipvs's emitter writes the service selector.
fn service_args(svc: &ServiceKey) -> Vec<String> {
    lvs_ipvs::ipvsadm::ServiceArg(svc).to_string().split_whitespace().map(str::to_owned).collect()
}

/// The `-> ` rows of an `ipvsadm -L -n` listing, split into columns.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("->"))
        .filter(|l| !l.contains("RemoteAddress"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn compare_kernel_text(model: &Model) -> Result<(), String> {
    for (svc, want) in model {
        let args = service_args(svc);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let tun = ipvsadm(&[&["-L", "-n", "--nosort", "--tun-info"][..], &args].concat())?;
        let thr = ipvsadm(&[&["-L", "-n", "--nosort", "--thresholds"][..], &args].concat())?;
        let got: Vec<String> = rows(&tun)
            .iter()
            .zip(rows(&thr))
            .map(|(t, h)| {
                let col = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
                format!(
                    "{} {} {} w={} x={} y={}",
                    col(t, 0),
                    col(t, 1),
                    col(t, 2),
                    col(t, 3),
                    col(&h, 1),
                    col(&h, 2)
                )
            })
            .collect();
        let want: Vec<String> = want
            .iter()
            .map(|d| {
                let fwd = d.fwd.ipvsadm_name();
                let (addr, info, (w, x, y)) = (
                    lvs_ipvs::AddrPort(d.addr, d.port),
                    lvs_ipvs::ipvsadm::tunnel_info(d.fwd, d.tunnel),
                    (d.weight, d.u_threshold, d.l_threshold),
                );
                format!("{addr} {fwd} {info} w={w} x={x} y={y}")
            })
            .collect();
        if got != want || rows(&tun).len() != rows(&thr).len() {
            return Err(format!("{svc}:\n  ipvsadm -L: {got:?}\n  want:       {want:?}"));
        }
    }
    Ok(())
}
