//! The HA schema: the tools' defaults, every field read in its unit, and errors that name
//! the field (`topologies::Ha::config`, `HealthCheck::config` and `check`).

use sim_core::ha as sim;
use topologies::{Director, Ha, HealthCheck, TopologyError, ha::default_priorities};

fn directors() -> Vec<Director> {
    ["lb1", "lb2", "lb3"]
        .iter()
        .enumerate()
        .map(|(k, n)| Director::new(n, format!("10.0.0.{}", k + 2).parse().unwrap()))
        .collect()
}

fn ha(text: &str) -> Ha {
    ron::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn ha_err(text: &str) -> TopologyError {
    ha(text).config(&directors()).unwrap_err()
}

#[test]
fn defaults_are_the_tools() {
    let c = ha(r#"(directors: ["lb1", "lb2"], failover: Vrrp())"#).config(&directors()).unwrap();
    assert_eq!(c.members, [0, 1]);
    assert_eq!(c.failover, sim::Failover::Vrrp(sim::VrrpConfig::default()));
    assert_eq!(c.sync, None);
    assert_eq!(c.latency, lvs_sched::Duration::from_micros(100));
    let c = ha(r#"(directors: ["lb2", "lb1"], failover: Heartbeat(), sync: Some(()))"#)
        .config(&directors())
        .unwrap();
    assert_eq!(c.members, [1, 0]);
    assert_eq!(c.failover, sim::Failover::Heartbeat(sim::HeartbeatConfig::default()));
    assert_eq!(c.sync, Some(sim::SyncConfig::default()));
    let c = ha(r#"(directors: ["lb1", "lb2"], failover: ActiveActive())"#).config(&directors()).unwrap();
    assert_eq!(c.failover, sim::Failover::ActiveActive(sim::SaruConfig::default()));
    assert_eq!(default_priorities(5), [150, 100, 50, 49, 48]);

    let check: HealthCheck = ron::from_str("()").unwrap();
    assert_eq!(check.config(), sim::HealthCheckConfig::ldirectord());
    let check: HealthCheck = ron::from_str("(checker: keepalived)").unwrap();
    assert_eq!(check.config(), sim::HealthCheckConfig::keepalived());
}

#[test]
fn every_field_is_read_in_its_unit() {
    let c = ha(r#"(
        directors: ["lb1", "lb2", "lb3"],
        failover: Vrrp(advert_int_s: 0.5, version: 3, priorities: Some([200, 150, 100]), preempt: false,
                       preempt_delay_s: 30.0, interfaces: [External, Internal], garp_delay_ms: 20.0),
        sync: Some(Sync(mode: peer_to_peer, threshold: 2, period: 10, max_len: 1000, version: 0,
                        flush_s: 0.5, latency_ms: 0.3)),
        latency_ms: 0.2,
    )"#)
    .config(&directors())
    .unwrap();
    let sim::Failover::Vrrp(v) = &c.failover else { panic!("{c:?}") };
    assert_eq!(v.advert_int, lvs_sched::Duration::from_millis(500));
    assert_eq!((v.version, v.preempt, v.priorities.as_slice()), (3, false, &[200, 150, 100][..]));
    assert_eq!(v.preempt_delay, lvs_sched::Duration::from_secs(30));
    assert_eq!(v.interfaces, [sim::Side::External, sim::Side::Internal]);
    assert_eq!(v.garp_delay, lvs_sched::Duration::from_millis(20));
    let s = c.sync.unwrap();
    assert_eq!(
        (s.mode, s.threshold, s.period, s.max_len, s.version),
        (sim::SyncMode::PeerToPeer, 2, 10, 1000, 0)
    );
    assert_eq!(
        (s.flush, s.latency),
        (lvs_sched::Duration::from_millis(500), lvs_sched::Duration::from_micros(300))
    );
    assert_eq!(c.latency, lvs_sched::Duration::from_micros(200));

    let c = ha(r#"(directors: ["lb1", "lb2"], failover: ActiveActive(by: source_address, blocks: 64,
        keepalive_s: 0.5, deadtime_s: 3.0, warntime_s: 1.0, initdead_s: 10.0, nice_failback: true,
        media: [Lan(Internal), Dedicated], deadping_s: 5.0, takeover_s: 0.25,
        ping_nodes: [(name: "gw", address: "10.0.0.254", side: External)]))"#)
    .config(&directors())
    .unwrap();
    let sim::Failover::ActiveActive(a) = &c.failover else { panic!("{c:?}") };
    assert_eq!((a.by, a.blocks), (sim::SplitBy::SourceAddress, 64));
    let h = &a.heartbeat;
    assert_eq!(h.keepalive, lvs_sched::Duration::from_millis(500));
    assert_eq!(
        (h.deadtime, h.warntime, h.initdead),
        (
            lvs_sched::Duration::from_secs(3),
            lvs_sched::Duration::from_secs(1),
            lvs_sched::Duration::from_secs(10)
        )
    );
    assert!(h.nice_failback);
    assert_eq!(h.media, [sim::Medium::Lan(sim::Side::Internal), sim::Medium::Dedicated]);
    assert_eq!(h.ping_nodes[0].side, sim::Side::External);
    assert_eq!(
        (h.deadping, h.takeover),
        (lvs_sched::Duration::from_secs(5), lvs_sched::Duration::from_millis(250))
    );

    let check: HealthCheck = ron::from_str(
        r#"(checker: keepalived, kind: Negotiate(request: "/health.html", receive: Some("OK"), demand_ms: 2.5),
            interval_s: Some(3.0), timeout_s: Some(1.5), retries: Some(2), delay_before_retry_s: Some(0.5),
            quiescent: Some(true))"#,
    )
    .unwrap();
    check.check("c").unwrap();
    let c = check.config();
    assert_eq!(c.kind, sim::CheckKind::Negotiate { demand: lvs_sched::Duration::from_micros(2500) });
    assert_eq!(
        (c.interval, c.timeout),
        (lvs_sched::Duration::from_secs(3), lvs_sched::Duration::from_millis(1500))
    );
    assert_eq!((c.retries, c.delay_before_retry), (2, Some(lvs_sched::Duration::from_millis(500))));
    assert_eq!((c.checker, c.on_failure), (sim::Checker::Keepalived, sim::OnFailure::Quiesce));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#"(directors: ["lb1"], failover: Vrrp())"#, "ha.directors", "at least two"),
        (r#"(directors: ["lb1", "lb9"], failover: Vrrp())"#, "ha.directors[1]", "no director named \"lb9\""),
        (r#"(directors: ["lb1", "lb1"], failover: Vrrp())"#, "ha.directors[1]", "twice"),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(priorities: Some([150])))"#,
            "ha.failover.priorities",
            "1 given for 2 directors",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(priorities: Some([255, 100])))"#,
            "ha.failover.priorities[0]",
            "owner",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(advert_int_s: 0.5))"#,
            "ha.failover.advert_int_s",
            "whole seconds",
        ),
        (r#"(directors: ["lb1", "lb2"], failover: Vrrp(version: 4))"#, "ha.failover.version", "2 or 3"),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(virtual_router_id: 0))"#,
            "ha.failover.virtual_router_id",
            "1 to 255",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(interfaces: []))"#,
            "ha.failover.interfaces",
            "needs an interface",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(auth_pass: Some("far too long")))"#,
            "ha.failover.auth_pass",
            "not a valid",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(auth_pass: Some("toolong99")))"#,
            "ha.failover.auth_pass",
            "8 characters",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(version: 3, auth_pass: Some("x")))"#,
            "ha.failover.auth_pass",
            "version 3",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(deadtime_s: 1.0))"#,
            "ha.failover.deadtime_s",
            "longer than keepalive",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(keepalive_s: 2.0, deadtime_s: 4.0))"#,
            "ha.failover.deadtime_s",
            "twice keepalive_s",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(keepalive_s: 2.0, deadping_s: 4.0,
                ping_nodes: [(name: "gw", address: "10.0.0.254", side: External)]))"#,
            "ha.failover.deadping_s",
            "twice keepalive_s",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(warntime_s: 40.0))"#,
            "ha.failover.warntime_s",
            "between",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(initdead_s: 20.0))"#,
            "ha.failover.initdead_s",
            "shorter",
        ),
        (r#"(directors: ["lb1", "lb2"], failover: Heartbeat(media: []))"#, "ha.failover.media", "medium"),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(media: [Lan(External), Lan(External)]))"#,
            "ha.failover.media[1]",
            "twice",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Heartbeat(keepalive_s: -1.0))"#,
            "ha.failover.keepalive_s",
            ">= 0",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: ActiveActive(blocks: 100))"#,
            "ha.failover.blocks",
            "power of two",
        ),
        (
            r#"(directors: ["lb1", "lb2", "lb3"], failover: ActiveActive(blocks: 2))"#,
            "ha.failover.blocks",
            "at least one per director",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((version: 2)))"#,
            "ha.sync.version",
            "0 or 1",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((threshold: 50)))"#,
            "ha.sync.threshold",
            "below period",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((max_len: 20)))"#,
            "ha.sync.max_len",
            "at least one connection",
        ),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((flush_s: 0.0)))"#,
            "ha.sync.flush_s",
            "> 0",
        ),
        (r#"(directors: ["lb1", "lb2"], failover: Vrrp(), latency_ms: -2.0)"#, "ha.latency_ms", ">= 0"),
        (
            r#"(directors: ["lb1", "lb2"], failover: Vrrp(), external_interface: "eth 0")"#,
            "ha.external_interface",
            "not a valid",
        ),
        (r#"(directors: ["lb1", "lb2"], failover: Vrrp(), vip_prefix: 33)"#, "ha.vip_prefix", "1 to 32"),
    ];
    for (text, path, words) in cases {
        let e = ha_err(text);
        assert_eq!(e.path, path, "{text}: {e}");
        assert!(e.message.contains(words), "{text}: {e}");
    }
    // Period 0 (sync once) takes any threshold.
    assert!(
        ha(r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((threshold: 9, period: 0)))"#)
            .config(&directors())
            .is_ok()
    );

    let check = |text: &str| ron::from_str::<HealthCheck>(text).unwrap().check("c").unwrap_err();
    assert_eq!(check("(interval_s: Some(0.0))").path, "c.interval_s");
    assert_eq!(check("(timeout_s: Some(-1.0))").path, "c.timeout_s");
    assert_eq!(check(r#"(kind: Negotiate(digest: Some("abc")))"#).path, "c.kind.digest");
    assert_eq!(check(r#"(kind: Negotiate(request: "a b"))"#).path, "c.kind.request");
    assert_eq!(check(r#"(kind: Negotiate(receive: Some("say \"hi\"")))"#).path, "c.kind.receive");
    assert_eq!(check("(kind: Negotiate(demand_ms: -1.0))").path, "c.kind.demand_ms");
}
