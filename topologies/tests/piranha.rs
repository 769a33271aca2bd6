//! piranha in the schema: nanny's check (`checker: nanny`, `SendExpect`, `reentry_s`) and
//! pulse's group (`Failover::Pulse`): their defaults, their conversion into the
//! simulator's settings, the errors that name the field, and which files `files()` writes.

use lvs_sched::Duration;
use sim_core::ha as sim;
use topologies::export::{Target, files};
use topologies::{Director, Ha, HealthCheck, Topology};

fn check(text: &str) -> HealthCheck {
    ron::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn check_err(text: &str) -> String {
    let e = check(text).check("c").unwrap_err();
    format!("{}: {}", e.path, e.message)
}

#[test]
fn nannys_defaults_and_its_timeout_as_interval() {
    let c = check("(checker: nanny)").config();
    assert_eq!(c, sim::HealthCheckConfig::nanny());
    assert_eq!(
        (c.interval, c.timeout, c.rise, c.retries),
        (Duration::from_secs(10), Duration::from_secs(10), 18, 0)
    );
    assert_eq!((c.schedule, c.on_failure), (sim::Schedule::AfterCheck, sim::OnFailure::Remove));
    let c = check("(checker: nanny, timeout_s: Some(6.0), reentry_s: Some(15.0), quiescent: Some(true))")
        .config();
    assert_eq!((c.interval, c.timeout, c.rise), (Duration::from_secs(6), Duration::from_secs(6), 2));
    assert_eq!(c.on_failure, sim::OnFailure::Quiesce);
    // An answer is waited for only with expect or a program.
    let c = check(r#"(checker: nanny, kind: SendExpect(send: Some("HELO x\r\n")))"#).config();
    assert_eq!(c.kind, sim::CheckKind::Connect);
    let c = check(r#"(checker: nanny, kind: SendExpect(send: Some("HELO x\r\n"), expect: Some("250"), demand_ms: 2.0))"#).config();
    assert_eq!(c.kind, sim::CheckKind::Negotiate { demand: Duration::from_millis(2) });
    // ldirectord checks in rounds, keepalived after each check (docs/ha-timing.md); both
    // restore on the first success.
    let (l, k) = (check("()").config(), check("(checker: keepalived)").config());
    assert_eq!((l.schedule, l.rise), (sim::Schedule::Round, 1));
    assert_eq!((k.schedule, k.rise), (sim::Schedule::AfterCheck, 1));
}

#[test]
fn what_nanny_or_lvs_cf_cannot_do_is_refused_with_its_field() {
    let cases = [
        (
            "(checker: nanny, interval_s: Some(5.0))",
            "c.interval_s: nanny checks again `timeout` after each check",
        ),
        ("(checker: nanny, timeout_s: Some(2.5))", "c.timeout_s: 2.5: lvs.cf takes whole seconds"),
        ("(checker: nanny, timeout_s: Some(0.0))", "c.timeout_s: 0: lvs.cf takes whole seconds, 1 to"),
        (
            "(checker: nanny, retries: Some(2))",
            "c.retries: nanny takes a server out on its first failed check",
        ),
        (
            "(checker: nanny, fallback: Some((server: \"sorry\")))",
            "c.fallback: lvsim does not map lvs.cf's sorry_server",
        ),
        (
            r#"(checker: nanny, kind: Negotiate(digest: Some("0123456789abcdef0123456789abcdef")))"#,
            "c.kind.digest: nanny compares",
        ),
        (
            r#"(checker: nanny, kind: SendExpect(send: Some("say \"hi\"")))"#,
            "c.kind.send: \"say \\\"hi\\\"\": lvs.cf quotes it",
        ),
        (
            r#"(checker: nanny, kind: SendExpect(send_program: Some("/bin/check %h")))"#,
            "c.kind.expect: nanny fails every send_program check without expect",
        ),
        (
            r#"(checker: nanny, kind: SendExpect(send: Some("x"), use_regex: true))"#,
            "c.kind.use_regex: use_regex applies to expect",
        ),
        ("(reentry_s: Some(10.0))", "c.reentry_s: reentry is nanny's"),
        (
            r#"(checker: keepalived, kind: SendExpect(send: Some("x")))"#,
            "c.kind: SendExpect is nanny's check",
        ),
    ];
    for (text, want) in cases {
        let got = check_err(text);
        assert!(got.starts_with(want), "{text}: {got}\nwanted {want}");
    }
    let long = "x".repeat(255);
    assert!(
        check_err(&format!("(checker: nanny, kind: SendExpect(expect: Some({long:?})))"))
            .contains("at most 254")
    );
}

fn pair(failover: &str) -> Result<sim::Failover, String> {
    let ds: Vec<Director> = (0..3)
        .map(|k| Director::new(&format!("lb{}", k + 1), format!("10.0.0.{}", k + 2).parse().unwrap()))
        .collect();
    let ha: Ha = ron::from_str(&format!(r#"(directors: ["lb1", "lb2"], failover: {failover})"#)).unwrap();
    ha.config(&ds).map(|c| c.failover).map_err(|e| format!("{}: {}", e.path, e.message))
}

#[test]
fn pulse_is_heartbeats_liveness_with_pulses_rules() {
    let want = sim::HeartbeatConfig::pulse(
        Duration::from_secs(2),
        Duration::from_secs(5),
        sim::Medium::Lan(sim::Side::Internal),
    );
    assert_eq!(pair("Pulse()"), Ok(sim::Failover::Heartbeat(want)));
    let Ok(sim::Failover::Heartbeat(h)) =
        pair("Pulse(keepalive_s: 6.0, deadtime_s: 18.0, heartbeat_port: 1050)")
    else {
        panic!()
    };
    assert_eq!(
        (h.keepalive, h.deadtime, h.initdead),
        (Duration::from_secs(6), Duration::from_secs(18), Duration::from_secs(18))
    );
    assert!(h.nice_failback, "a returning primary stays the backup");
    for (f, want) in [
        ("Pulse(keepalive_s: 1.5)", "ha.failover.keepalive_s: 1.5: lvs.cf takes whole seconds"),
        (
            "Pulse(keepalive_s: 5.0, deadtime_s: 5.0)",
            "ha.failover.deadtime_s: 5 s must be longer than keepalive_s",
        ),
        ("Pulse(heartbeat_port: 0)", "ha.failover.heartbeat_port: 0"),
    ] {
        let got = pair(f).unwrap_err();
        assert!(got.starts_with(want), "{f}: {got}");
    }
    let ds: Vec<Director> = (0..3)
        .map(|k| Director::new(&format!("lb{}", k + 1), format!("10.0.0.{}", k + 2).parse().unwrap()))
        .collect();
    let three: Ha = ron::from_str(r#"(directors: ["lb1", "lb2", "lb3"], failover: Pulse())"#).unwrap();
    let e = three.config(&ds).unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("ha.directors", "pulse runs a primary and a backup LVS router: 2 directors, got 3")
    );
}

const TOPO: &str = r#"(
    directors: [
        (name: "lvs1", address: "10.0.0.2", services: [
            (vip: Some("192.0.2.10"), port: 80, real_servers: [(server: "web", forwarding: DR)],
             check: Some((checker: nanny, kind: SendExpect(send: Some("GET / HTTP/1.0\r\n\r\n"), expect: Some("HTTP"))))),
        ]),
        (name: "lvs2", address: "10.0.0.3"),
    ],
    servers: [(name: "web", address: "10.0.0.11", count: 2)],
    ha: Some((directors: ["lvs1", "lvs2"], failover: Pulse())),
)"#;

#[test]
fn a_pulse_pair_exports_lvs_cf_and_no_other_daemons_file() {
    let t: Topology = ron::from_str(TOPO).unwrap();
    t.expand().unwrap();
    let names: Vec<String> = files(&t, Target::default()).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"lvs.cf".to_owned()), "{names:?}");
    for other in ["keepalived.conf", "ldirectord.cf", "ha.cf", "haresources"] {
        assert!(!names.contains(&other.to_owned()), "{other} in {names:?}");
    }
    // Nanny checks on a lone director: lvs.cf (no backup) beside keepalived.conf.
    let mut one = t.clone();
    one.ha = None;
    one.directors.truncate(1);
    let fs = files(&one, Target::default());
    let lvs = &fs.iter().find(|(n, _)| n == "lvs.cf").expect("lvs.cf").1;
    assert!(lvs.contains("\nbackup_active = 0\n") && !lvs.contains("\nbackup ="), "{lvs}");
}
