//! Virtual services through [`Backend`] (the dry run, whose table refuses as the kernel
//! does): the one normalized config every backend sends, and what is refused before any
//! backend is asked.

use lvs_ipvs::{PersistenceEngine, SchedulerKind, ServiceConfig, SvcFlags};
use lvs_sched::Duration;

use super::*;

fn key(s: &str) -> ServiceKey {
    parse_service(s).unwrap()
}

fn dry() -> Backend {
    Backend::open(BackendKind::DryRun, &[]).unwrap()
}

#[test]
fn add_edit_remove_round_trip_with_the_normalized_config() {
    let mut b = dry();
    let udp = key("udp:10.0.0.1:53");
    // A netmask without persistence is not kept; PERSISTENT follows the timeout.
    let loose = ServiceConfig {
        netmask: 0xffff_ff00,
        flags: SvcFlags(SvcFlags::PERSISTENT | SvcFlags::HASHED | SvcFlags::ONEPACKET),
        ..ServiceConfig::new(SchedulerKind::Rr)
    };
    b.add_service(&udp, &loose).unwrap();
    let listed = b.services().unwrap();
    let want =
        ServiceConfig { flags: SvcFlags(SvcFlags::ONEPACKET), ..service_config(&udp, SchedulerKind::Rr) };
    assert_eq!(listed, [(udp, want)]);
    assert_eq!(normalize_service(&udp, &loose), want);

    let persistent = ServiceConfig {
        persistence: Some(Duration::from_secs(300)),
        netmask: 0xffff_ff00,
        ..ServiceConfig::new(SchedulerKind::Sh)
    };
    b.edit_service(&udp, &persistent).unwrap();
    let rows = b.service_rows().unwrap();
    assert_eq!(rows[0].config.flags, SvcFlags(SvcFlags::PERSISTENT));
    assert_eq!((rows[0].config.scheduler, rows[0].config.netmask), (SchedulerKind::Sh, 0xffff_ff00));
    assert_eq!(b.add_service(&udp, &persistent).unwrap_err().errno(), Some(libc::EEXIST));
    let e = b.add_service(&udp, &persistent).unwrap_err().to_string();
    assert!(e.contains("virtual service already exists"), "{e}");

    b.remove_service(&udp).unwrap();
    assert!(b.services().unwrap().is_empty());
    assert_eq!(b.remove_service(&udp).unwrap_err().errno(), Some(libc::ESRCH));
    assert_eq!(b.edit_service(&udp, &persistent).unwrap_err().errno(), Some(libc::ESRCH));
}

#[test]
fn an_ipv6_service_keeps_a_prefix_length() {
    let v6 = key("tcp:[2001:db8::1]:443");
    let never_set = ServiceConfig { netmask: u32::MAX, ..ServiceConfig::new(SchedulerKind::Wlc) };
    assert_eq!(normalize_service(&v6, &never_set).netmask, 128);
    let p64 = ServiceConfig { persistence: Some(Duration::from_secs(60)), netmask: 64, ..never_set };
    let mut b = dry();
    b.add_service(&v6, &p64).unwrap();
    assert_eq!(b.services().unwrap()[0].1.netmask, 64);
    // Persistent without a netmask given (ServiceConfig::new's u32::MAX): /128, not refused.
    let p_default = ServiceConfig { persistence: Some(Duration::from_secs(60)), ..never_set };
    b.edit_service(&v6, &p_default).unwrap();
    assert_eq!(b.services().unwrap()[0].1.netmask, 128);
}

#[test]
fn refused_before_any_backend_is_asked() {
    let mut b = dry();
    let sip = key("udp:10.0.0.1:5060");
    let persistent = ServiceConfig {
        persistence: Some(Duration::from_secs(60)),
        ..service_config(&sip, SchedulerKind::Rr)
    };
    let cases = [
        (sip, ServiceConfig { pe: Some(PersistenceEngine::Sip), ..persistent }, "persistence engine \"sip\""),
        (sip, ServiceConfig { persistence: Some(Duration::from_secs(0)), ..persistent }, "1 to 2678400 s"),
        (
            sip,
            ServiceConfig { persistence: Some(Duration::from_secs(2_678_401)), ..persistent },
            "1 to 2678400 s",
        ),
        (key("fwm6:9"), ServiceConfig { netmask: 0, ..persistent }, "prefix length 0"),
        (key("fwm6:9"), ServiceConfig { netmask: 129, ..persistent }, "prefix length 129"),
    ];
    for (k, c, why) in cases {
        let e = b.add_service(&k, &c).unwrap_err();
        assert!(e.errno().is_none() && e.to_string().contains(why), "{k}: {e}");
        let e = b.edit_service(&k, &c).unwrap_err();
        assert!(e.to_string().starts_with("SET_SERVICE"), "{e}");
    }
    assert!(b.services().unwrap().is_empty(), "nothing was added");
}
