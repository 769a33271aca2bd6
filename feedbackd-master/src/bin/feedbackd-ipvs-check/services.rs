//! Virtual services through one backend against the kernel: add one of every kind (TCP,
//! UDP persistent with a /24 netmask and one-packet scheduling, SCTP, an fwmark, TCP IPv6
//! persistent with a /64 prefix, an IPv6 fwmark with mh's flags), edit each (scheduler,
//! persistence switched on or off, netmask), be refused (EEXIST, ESRCH, and ENOENT for a
//! scheduler the kernel lacks), remove them all. After each step the services are
//! compared with what was sent, as the backend lists them, as the other backend lists
//! them, and as `ipvsadm -S -n` saves them. An edit keeps the service's real servers.

use feedbackd_master::ipvs::{Backend, BackendKind, ServiceKey, dest, normalize_service, service_config};
use lvs_ipvs::{DestConfig, Forwarding, SchedulerKind, ServiceConfig, SvcFlags};
use lvs_sched::Duration;

use crate::report::{Report, expect_errno, ipvsadm, key};
use feedbackd_master::daemon::backend_name;

/// The services as each round adds them.
fn added() -> Vec<(ServiceKey, ServiceConfig)> {
    let persistent = |k: &str, scheduler, secs, netmask, flags| {
        let c = ServiceConfig {
            scheduler,
            flags: SvcFlags(flags),
            persistence: Some(Duration::from_secs(secs)),
            netmask,
            pe: None,
        };
        (key(k), c)
    };
    let plain = |k: &str, scheduler, flags| {
        let mut c = service_config(&key(k), scheduler);
        c.flags = SvcFlags(flags);
        (key(k), c)
    };
    vec![
        plain("tcp:10.1.0.1:80", SchedulerKind::Wlc, 0),
        persistent("udp:10.1.0.1:53", SchedulerKind::Rr, 300, 0xffff_ff00, SvcFlags::ONEPACKET),
        plain("sctp:10.1.0.1:9", SchedulerKind::Sh, SvcFlags::SCHED1),
        plain("fwm:17", SchedulerKind::Wrr, 0),
        persistent("tcp:[2001:db8:1::1]:443", SchedulerKind::Lc, 60, 64, 0),
        plain("fwm6:18", SchedulerKind::Mh, SvcFlags::SCHED1 | SvcFlags::SCHED2),
    ]
}

/// Each service edited: another scheduler, persistence switched on (with a netmask) or
/// off (its netmask back to the default).
fn edited(services: &[(ServiceKey, ServiceConfig)]) -> Vec<(ServiceKey, ServiceConfig)> {
    let next = [SchedulerKind::Sed, SchedulerKind::Nq, SchedulerKind::Lblc, SchedulerKind::Dh];
    services
        .iter()
        .enumerate()
        .map(|(i, (k, c))| {
            let mut c = ServiceConfig { scheduler: next[i % next.len()], flags: SvcFlags(0), ..*c };
            match c.persistence {
                Some(_) => c.persistence = None,
                None => {
                    c.persistence = Some(Duration::from_secs(120 + i as u64));
                    c.netmask = if k.is_ipv6() { 96 } else { 0xffff_0000 };
                }
            }
            (*k, c)
        })
        .collect()
}

/// One backend's round; `other` (the other kernel backend) must list the same.
pub(crate) fn round(r: &mut Report, b: &mut Backend, mut other: Option<&mut Backend>) {
    let name = backend_name(b.kind());
    let services = added();
    let mut model: Vec<(ServiceKey, ServiceConfig)> = Vec::new();
    let mut step = Ok(());
    for (k, c) in &services {
        step = step.and(b.add_service(k, c).map_err(|e| format!("{k}: {e}")));
        model.push((*k, normalize_service(k, c)));
    }
    r.check(format!("{name}: add services (TCP, UDP, SCTP, fwmark, IPv6, persistence, netmask)"), step);
    verify(r, &format!("{name}/add service"), b, other.as_deref_mut(), &model);

    // A real server in the TCP service must survive the edit.
    let tcp = services[0].0;
    let rs = dest("10.1.0.2".parse().expect("an address"), 80, Forwarding::Masq, 3);
    r.check(
        format!("{name}: add a real server to a new service"),
        b.add_real_server(&tcp, &rs).map_err(|e| e.to_string()),
    );

    let mut step = Ok(());
    let edits = edited(&services);
    for ((k, c), m) in edits.iter().zip(model.iter_mut()) {
        step = step.and(b.edit_service(k, c).map_err(|e| format!("{k}: {e}")));
        m.1 = normalize_service(k, c);
    }
    r.check(format!("{name}: edit services (scheduler, persistence on/off, netmask)"), step);
    verify(r, &format!("{name}/edit service"), b, other.as_deref_mut(), &model);
    let kept = b.real_servers(&tcp).map_err(|e| e.to_string()).and_then(|rows| {
        let got: Vec<DestConfig> = rows.iter().map(|row| row.config).collect();
        if got == [rs] { Ok(()) } else { Err(format!("got {got:?}, want [{rs:?}]")) }
    });
    r.check(format!("{name}: SET_SERVICE keeps the real servers"), kept);

    refusals(r, b, &model);
    verify(r, &format!("{name}/after service refusals (nothing changed)"), b, other.as_deref_mut(), &model);

    let mut step = Ok(());
    for (k, _) in model.drain(..) {
        step = step.and(b.remove_service(&k).map_err(|e| format!("{k}: {e}")));
    }
    r.check(format!("{name}: remove every service"), step);
    verify(r, &format!("{name}/remove service"), b, other, &model);
    let gone = b.real_servers(&tcp).map(drop);
    r.check(
        format!("{name}: a removed service's real servers are gone (ESRCH)"),
        expect_errno(b.kind(), false, gone, libc::ESRCH),
    );
}

fn refusals(r: &mut Report, b: &mut Backend, model: &[(ServiceKey, ServiceConfig)]) {
    let kind = b.kind();
    let name = backend_name(kind);
    let (k, c) = model[0];
    let missing = key("tcp:10.1.0.99:80");
    let cases: [(&str, Result<(), _>, i32); 3] = [
        ("NEW_SERVICE of an existing service", b.add_service(&k, &c), libc::EEXIST),
        ("SET_SERVICE of a missing service", b.edit_service(&missing, &c), libc::ESRCH),
        ("DEL_SERVICE of a missing service", b.remove_service(&missing), libc::ESRCH),
    ];
    for (what, res, errno) in cases {
        r.check(format!("{name}: refuses {what}"), expect_errno(kind, false, res, errno));
    }
    // Debian's 6.1 kernel has no ip_vs_twos module; the simulator's table does.
    if kind != BackendKind::DryRun {
        let twos = service_config(&missing, SchedulerKind::Twos);
        let res = b.add_service(&missing, &twos);
        r.check(
            format!("{name}: refuses NEW_SERVICE with a scheduler the kernel lacks"),
            expect_errno(kind, false, res, libc::ENOENT),
        );
    }
}

fn verify(
    r: &mut Report,
    label: &str,
    b: &mut Backend,
    other: Option<&mut Backend>,
    model: &[(ServiceKey, ServiceConfig)],
) {
    r.check(format!("{label}: {} lists it", backend_name(b.kind())), compare(listed(b), model));
    if let Some(o) = other {
        r.check(format!("{label}: {} lists the same", backend_name(o.kind())), compare(listed(o), model));
    }
    if b.kind() != BackendKind::DryRun {
        r.check(format!("{label}: ipvsadm -S -n saves it"), compare(saved(), model));
    }
}

/// Whether `key` is one of this module's services (the probe's others stay out of it).
fn ours(svc: &ServiceKey) -> bool {
    added().iter().any(|(k, _)| k == svc) || *svc == key("tcp:10.1.0.99:80")
}

fn listed(b: &mut Backend) -> Result<Vec<(ServiceKey, ServiceConfig)>, String> {
    let all = b.services().map_err(|e| e.to_string())?;
    Ok(all.into_iter().filter(|(k, _)| ours(k)).collect())
}

/// `ipvsadm -S -n`, read with lvs-ipvs's grammar.
fn saved() -> Result<Vec<(ServiceKey, ServiceConfig)>, String> {
    let text = ipvsadm(&["-S", "-n"])?;
    let mut out = Vec::new();
    for line in text.lines() {
        match lvs_ipvs::ipvsadm::parse_line(line).map_err(|e| format!("{line:?}: {e:?}"))? {
            Some(lvs_ipvs::ipvsadm::Command::AddService(k, c)) if ours(&k) => out.push((k, c)),
            _ => {}
        }
    }
    Ok(out)
}

fn compare(
    got: Result<Vec<(ServiceKey, ServiceConfig)>, String>,
    want: &[(ServiceKey, ServiceConfig)],
) -> Result<(), String> {
    let mut got = got?;
    got.sort_by_key(|s| s.0);
    let mut want = want.to_vec();
    want.sort_by_key(|s| s.0);
    if got == want { Ok(()) } else { Err(format!("\n  got  {got:?}\n  want {want:?}")) }
}
