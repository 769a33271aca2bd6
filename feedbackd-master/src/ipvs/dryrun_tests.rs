//! The dry-run backend on the shared table: the kernel's answers (errno) to what a careless
//! or hostile caller asks, and what it lists afterwards.

use lvs_ipvs::{Forwarding, Protocol, SchedulerKind, Tunnel, TunnelType};

use super::*;
use crate::ipvs::{dest, service_config};

fn svc() -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 }
}

fn rs(last: u8, weight: u32) -> DestConfig {
    dest(IpAddr::from([10, 0, 0, last]), 80, Forwarding::Masq, weight)
}

fn backend() -> DryRunBackend {
    DryRunBackend::new(&[
        (svc(), service_config(&svc(), SchedulerKind::Wlc)),
        (svc(), service_config(&svc(), SchedulerKind::Rr)),
    ])
}

fn listed(b: &mut DryRunBackend) -> Vec<DestConfig> {
    b.real_servers(&svc()).unwrap().into_iter().map(|r| r.config).collect()
}

fn errno(r: Result<(), Error>) -> Option<i32> {
    r.unwrap_err().errno()
}

#[test]
fn seeds_each_service_once_and_lists_new_real_servers_first() {
    let mut b = backend();
    let services = b.services();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0], (svc(), service_config(&svc(), SchedulerKind::Wlc)), "the first config stays");
    b.add_real_server(&svc(), &rs(2, 1)).unwrap();
    b.add_real_server(&svc(), &rs(3, 1)).unwrap();
    let order: Vec<_> = listed(&mut b).iter().map(|r| r.addr).collect();
    assert_eq!(order, [IpAddr::from([10, 0, 0, 3]), IpAddr::from([10, 0, 0, 2])]);
    let rows = b.real_servers(&svc()).unwrap();
    assert!(rows.iter().all(|r| r.active_conns == 0 && r.inactive_conns == 0));
}

#[test]
fn edit_replaces_every_field() {
    let mut b = backend();
    let mut r = rs(2, 5);
    (r.u_threshold, r.l_threshold) = (100, 50);
    r.fwd = Forwarding::Tunnel;
    r.tunnel = Tunnel { kind: TunnelType::Gue, port: 6080, flags: Tunnel::CSUM };
    b.add_real_server(&svc(), &r).unwrap();
    assert_eq!(listed(&mut b), [r]);
    b.edit_real_server(&svc(), &rs(2, 7)).unwrap();
    assert_eq!(listed(&mut b), [rs(2, 7)]);
    b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 2]), 80).unwrap();
    assert!(listed(&mut b).is_empty());
}

#[test]
fn a_missing_service_is_esrch_for_every_call() {
    let mut b = backend();
    let other = ServiceKey::fwmark(9);
    assert_eq!(errno(b.add_real_server(&other, &rs(2, 1))), Some(libc::ESRCH));
    assert_eq!(errno(b.edit_real_server(&other, &rs(2, 1))), Some(libc::ESRCH));
    assert_eq!(errno(b.remove_real_server(&other, IpAddr::from([10, 0, 0, 2]), 80)), Some(libc::ESRCH));
    let e = b.real_servers(&other).unwrap_err();
    assert_eq!(
        (e.errno(), e.to_string()),
        (Some(libc::ESRCH), "GET_DEST FWM  9: no such virtual service (errno 3)".into())
    );
    // The same address and port under another protocol is another service.
    let udp = ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
    assert_eq!(errno(b.add_real_server(&udp, &rs(2, 1))), Some(libc::ESRCH));
}

#[test]
fn add_twice_is_eexist_and_a_missing_server_is_enoent() {
    let mut b = backend();
    b.add_real_server(&svc(), &rs(2, 1)).unwrap();
    let e = b.add_real_server(&svc(), &rs(2, 9)).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EEXIST));
    assert_eq!(
        e.to_string(),
        "NEW_DEST TCP  10.0.0.1:80 -> 10.0.0.2:80: real server already exists (errno 17)"
    );
    assert_eq!(listed(&mut b), [rs(2, 1)], "the refused add changed nothing");
    assert_eq!(errno(b.edit_real_server(&svc(), &rs(9, 1))), Some(libc::ENOENT));
    // Same address, another port: another real server.
    let other_port = DestConfig { port: 8080, ..rs(2, 1) };
    assert_eq!(errno(b.edit_real_server(&svc(), &other_port)), Some(libc::ENOENT));
    assert_eq!(errno(b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 9]), 80)), Some(libc::ENOENT));
    b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 2]), 80).unwrap();
    assert_eq!(
        errno(b.remove_real_server(&svc(), IpAddr::from([10, 0, 0, 2]), 80)),
        Some(libc::ENOENT),
        "removed twice"
    );
    // Added again after a removal: back at the front, as the kernel's trash gives it back.
    b.add_real_server(&svc(), &rs(3, 1)).unwrap();
    b.add_real_server(&svc(), &rs(2, 4)).unwrap();
    assert_eq!(listed(&mut b), [rs(2, 4), rs(3, 1)]);
}

#[test]
fn weights_and_thresholds_out_of_range_are_erange() {
    let mut b = backend();
    b.add_real_server(&svc(), &rs(2, i32::MAX as u32)).unwrap();
    for weight in [0x8000_0000, u32::MAX] {
        assert_eq!(errno(b.edit_real_server(&svc(), &rs(2, weight))), Some(libc::ERANGE), "{weight}");
        assert_eq!(errno(b.add_real_server(&svc(), &rs(3, weight))), Some(libc::ERANGE), "{weight}");
    }
    let mut low_above_high = rs(2, 1);
    low_above_high.l_threshold = 1;
    assert_eq!(errno(b.edit_real_server(&svc(), &low_above_high)), Some(libc::ERANGE));
    assert_eq!(listed(&mut b), [rs(2, i32::MAX as u32)], "refused edits changed nothing");
}

#[test]
fn another_family_or_a_portless_gue_tunnel_is_einval() {
    let mut b = backend();
    let v6 = dest("2001:db8::2".parse().unwrap(), 80, Forwarding::Masq, 1);
    assert_eq!(errno(b.add_real_server(&svc(), &v6)), Some(libc::EINVAL));
    for fwd in [Forwarding::DirectRouting, Forwarding::Local] {
        assert_eq!(
            errno(b.add_real_server(&svc(), &DestConfig { fwd, ..v6 })),
            Some(libc::EINVAL),
            "{fwd:?}"
        );
    }
    // Only a tunnel crosses families.
    b.add_real_server(&svc(), &DestConfig { fwd: Forwarding::Tunnel, ..v6 }).unwrap();
    let mut gue = rs(4, 1);
    (gue.fwd, gue.tunnel.kind) = (Forwarding::Tunnel, TunnelType::Gue);
    assert_eq!(errno(b.add_real_server(&svc(), &gue)), Some(libc::EINVAL));
    gue.tunnel.port = 6080;
    b.add_real_server(&svc(), &gue).unwrap();
    gue.tunnel.port = 0;
    assert_eq!(errno(b.edit_real_server(&svc(), &gue)), Some(libc::EINVAL));
    assert_eq!(listed(&mut b).len(), 2);
}

#[test]
fn local_forwarding_is_kept_as_the_kernel_keeps_it() {
    let mut b = backend();
    let local = DestConfig { fwd: Forwarding::Local, ..rs(2, 3) };
    b.add_real_server(&svc(), &local).unwrap();
    assert_eq!(listed(&mut b), [local]);
}

#[test]
fn rows_carry_the_tables_counters_and_rates() {
    use lvs_sched::{Flow, Time};
    let mut b = backend();
    b.add_real_server(&svc(), &rs(2, 1)).unwrap();
    let flow = Flow {
        protocol: Protocol::Tcp,
        saddr: "192.0.2.7".parse().unwrap(),
        sport: 4000,
        daddr: "10.0.0.1".parse().unwrap(),
        dport: 80,
    };
    let conn = b.table.new_conn(Time(1), &flow, None).unwrap().conn.unwrap();
    b.table.count(conn, false, 4, 4000);
    b.table.count(conn, true, 2, 64_000);
    b.table.advance(Time(2_000_000_000));
    let row = b.real_servers(&svc()).unwrap()[0];
    assert_eq!(
        row.stats,
        lvs_ipvs::Stats { conns: 1, inpkts: 4, outpkts: 2, inbytes: 4000, outbytes: 64_000 }
    );
    // One estimator run: bytes << 4 >> 2, reported (avg + 15) >> 5: 4000 -> 500 B/s.
    assert_eq!((row.rates.inbps, row.rates.outbps), (500, 8000));
    assert_eq!(row.active_conns + row.inactive_conns, 1);
    let services = b.service_rows();
    assert_eq!((services[0].stats, services[0].rates), (row.stats, row.rates));
}
