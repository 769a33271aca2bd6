//! The `feedback` block and `Background` events: defaults, every field, errors that name
//! the field, `--set` and sweep axes over feedback fields.

use lvs_sched::Duration;
use lvs_sched::feedback::{GrpcWrr, LawKind, Prequal};
mod common;

use common::{err, ok};
use scenarios::Source;
use sim_core::model::{FeedbackConfig, ServerChange, ServerEvent};

/// The NAT tutorial cluster (rs1, rs2) with `extra` fields written after `clients`.
fn scenario(extra: &str) -> String {
    format!(
        "Scenario(\n    duration_s: 10.0,\n    topology: \"tutorial-nat\",\n    \
         clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],\n{extra}\n)\n"
    )
}

/// The web farm: a `count: 4` group `web` (web1..web4).
fn farm(extra: &str) -> String {
    scenario(extra).replace("tutorial-nat", "web-farm")
}

#[test]
fn without_a_block_there_is_no_feedback() {
    let l = ok(&scenario(""), &[]);
    assert_eq!(l.cluster.feedback, None);
    assert!(l.cluster.server_events.is_empty());
}

#[test]
fn an_empty_block_is_the_daemons_defaults() {
    for block in ["feedback: Feedback()", "feedback: ()", "feedback: Some(Feedback())"] {
        let l = ok(&scenario(&format!("    {block},")), &[]);
        assert_eq!(l.cluster.feedback, Some(FeedbackConfig::default()), "{block}");
    }
}

#[test]
fn every_field_is_read_in_its_unit() {
    let block = "    feedback: Feedback(
        enabled: true,
        law: grpc_wrr,
        interval_s: 0.5,
        smoothing: 0.25,
        min_weight: 2,
        max_weight: 200,
        dead_band: 3,
        max_step: 40,
        slow_start_s: 4.0,
        error_penalty: 2.0,
        weight_per_qps: 0.5,
        quiesce_after_s: 3.0,
        remove_after_s: 30.0,
        rescan_s: 2.0,
        master_timeout_s: 7.5,
        authenticated: false,
        link: FeedbackLink(latency_ms: 0.25, loss: 0.01, rto_ms: 300.0, max_retries: 4),
    ),";
    let f = ok(&scenario(block), &[]).cluster.feedback.expect("feedback");
    assert_eq!(f.interval, Duration::from_millis(500));
    assert_eq!(f.law.smoothing, 0.25);
    assert_eq!((f.law.min_weight, f.law.max_weight, f.law.dead_band, f.law.max_step), (2, 200, 3, 40));
    assert_eq!(f.law.slow_start, Duration::from_secs(4));
    assert_eq!(
        f.law.kind,
        LawKind::GrpcWrr(GrpcWrr { error_penalty: 2.0, weight_per_qps: 0.5, ..GrpcWrr::default() })
    );
    assert_eq!(f.quiesce_after, Duration::from_secs(3));
    assert_eq!(f.remove_after, Duration::from_secs(30));
    assert_eq!(f.rescan, Duration::from_secs(2));
    assert_eq!(f.master_timeout, Some(Duration::from_millis(7500)));
    assert!(!f.authenticated);
    assert_eq!(f.link.latency, Duration::from_micros(250));
    assert_eq!(f.link.loss, 0.01);
    assert_eq!(f.link.rto, Duration::from_millis(300));
    assert_eq!(f.link.max_retries, 4);
}

#[test]
fn the_prequal_and_grpc_period_fields_are_read_in_their_units() {
    let block = "    feedback: Feedback(law: prequal, pool_size: 32, max_age_s: 2.5, q_rif: 0.5),";
    let f = ok(&scenario(block), &[]).cluster.feedback.expect("feedback");
    assert_eq!(
        f.law.kind,
        LawKind::Prequal(Prequal { pool_size: 32, max_age: Duration::from_millis(2500), q_rif: 0.5 })
    );
    let f = ok(&scenario("    feedback: Feedback(law: prequal),"), &[]).cluster.feedback.unwrap();
    assert_eq!(f.law.kind, LawKind::Prequal(Prequal::default()));
    let block =
        "    feedback: Feedback(law: grpc_wrr, blackout_period_s: 0.0, weight_expiration_period_s: 60.0),";
    let f = ok(&scenario(block), &[]).cluster.feedback.unwrap();
    let want = GrpcWrr {
        blackout_period: Duration::ZERO,
        weight_expiration_period: Duration::from_secs(60),
        ..GrpcWrr::default()
    };
    assert_eq!(f.law.kind, LawKind::GrpcWrr(want));
    // A sweep axis or --set reaches them.
    let f = ok(&scenario(block), &["feedback.blackout_period_s=5.0"]).cluster.feedback.unwrap();
    let LawKind::GrpcWrr(g) = f.law.kind else { panic!("{f:?}") };
    assert_eq!(g.blackout_period, Duration::from_secs(5));
    // The defaults are gRFC A58's and the paper's.
    let f = ok(&scenario("    feedback: Feedback(law: grpc_wrr),"), &[]).cluster.feedback.unwrap();
    assert_eq!(f.law.kind, LawKind::GrpcWrr(GrpcWrr::default()));
}

#[test]
fn disabled_means_static_weights_but_is_still_checked() {
    let l = ok(&scenario("    feedback: Feedback(enabled: false, interval_s: 2.0),"), &[]);
    assert_eq!(l.cluster.feedback, None);
    let e = err(&scenario("    feedback: Feedback(enabled: false, smoothing: 0.0),"), &[]);
    assert!(e.message.starts_with("feedback.smoothing:"), "{e}");
}

#[test]
fn errors_name_the_field_and_its_place() {
    let cases = [
        ("interval_s: 0.0", "feedback.interval_s"),
        ("interval_s: -1.0", "feedback.interval_s"),
        ("smoothing: 1.5", "feedback.smoothing"),
        ("max_weight: 0", "feedback.max_weight"),
        ("max_weight: 70000", "feedback.max_weight"),
        ("min_weight: 20, max_weight: 10", "feedback.min_weight"),
        ("dead_band: 200", "feedback.dead_band"),
        ("slow_start_s: -2.0", "feedback.slow_start_s"),
        ("weight_per_qps: 0.0", "feedback.weight_per_qps"),
        ("error_penalty: -1.0", "feedback.error_penalty"),
        ("quiesce_after_s: 0.0", "feedback.quiesce_after_s"),
        ("quiesce_after_s: 10.0, remove_after_s: 10.0", "feedback.remove_after_s"),
        ("rescan_s: 0.0", "feedback.rescan_s"),
        ("master_timeout_s: 0.0", "feedback.master_timeout_s"),
        ("link: FeedbackLink(loss: 1.0)", "feedback.link.loss"),
        ("link: FeedbackLink(rto_ms: 0.0)", "feedback.link.rto_ms"),
        ("link: FeedbackLink(latency_ms: -1.0)", "feedback.link.latency_ms"),
        ("link: FeedbackLink(max_retries: 0)", "feedback.link.max_retries"),
        ("blackout_period_s: -1.0", "feedback.blackout_period_s"),
        ("weight_expiration_period_s: 0.0", "feedback.weight_expiration_period_s"),
        ("pool_size: 0", "feedback.pool_size"),
        ("pool_size: 5000", "feedback.pool_size"),
        ("max_age_s: 0.0", "feedback.max_age_s"),
        ("q_rif: 1.5", "feedback.q_rif"),
        ("q_rif: -0.1", "feedback.q_rif"),
    ];
    for (fields, path) in cases {
        let text = scenario(&format!("    feedback: Feedback({fields}),"));
        let e = err(&text, &[]);
        assert!(e.message.starts_with(&format!("{path}:")), "{fields}: {e}");
        let at = e.location.clone().unwrap_or_else(|| panic!("{fields}: no location: {e}"));
        assert_eq!((at.source, at.line), (Source::File("s.ron".into()), 5), "{fields}: {e}");
    }
}

#[test]
fn unknown_fields_and_laws_are_rejected_with_file_line_column() {
    let e = err(&scenario("    feedback: Feedback(interval: 1.0),"), &[]);
    assert!(e.to_string().starts_with("s.ron:5:"), "{e}");
    assert!(e.message.contains("interval"), "{e}");
    let e = err(&scenario("    feedback: Feedback(law: wrr),"), &[]);
    assert!(e.to_string().starts_with("s.ron:5:"), "{e}");
    assert!(e.message.contains("capacity") && e.message.contains("grpc_wrr"), "{e}");
    let e = err(&scenario("    feedback: Feedback(link: FeedbackLink(rto_s: 1.0)),"), &[]);
    assert!(e.message.contains("rto_s"), "{e}");
}

#[test]
fn set_reaches_feedback_fields() {
    let text = scenario("    feedback: Feedback(),");
    let f = ok(&text, &["feedback.max_step=5"]).cluster.feedback.expect("feedback");
    assert_eq!(f.law.max_step, 5);
    let f = ok(&text, &["feedback.law=grpc_wrr", "feedback.link.loss=0.1"]).cluster.feedback.unwrap();
    assert!(matches!(f.law.kind, LawKind::GrpcWrr(_)));
    assert_eq!(f.link.loss, 0.1);
    assert_eq!(ok(&text, &["feedback.enabled=false"]).cluster.feedback, None);
    // A scenario without the block gets one with that field set.
    let f = ok(&scenario(""), &["feedback.max_step=5"]).cluster.feedback.expect("feedback");
    assert_eq!(f.law.max_step, 5);
    // A bad value points into the argument and names the field.
    let e = err(&text, &["feedback.smoothing=2.0"]);
    assert!(e.message.starts_with("feedback.smoothing:"), "{e}");
    assert!(matches!(e.location.as_ref().map(|l| &l.source), Some(Source::Set(_))), "{e}");
}

#[test]
fn sweep_axes_over_enabled_law_and_interval() {
    let text = scenario(
        "    feedback: Feedback(law: capacity),
    sweep: [
        Axis(field: \"feedback.enabled\", values: [false, true]),
        Axis(field: \"feedback.law\", values: [capacity, grpc_wrr]),
        Axis(field: \"feedback.interval_s\", values: [0.5, 1.0, 2.0]),
    ],",
    );
    let points = ok(&text, &[]).sweep_points().expect("points");
    assert_eq!(points.len(), 12);
    for (values, l) in &points {
        match values[0].as_str() {
            "false" => assert_eq!(l.cluster.feedback, None, "{values:?}"),
            _ => {
                let f = l.cluster.feedback.as_ref().expect("feedback");
                let grpc = matches!(f.law.kind, LawKind::GrpcWrr(_));
                assert_eq!(grpc, values[1] == "grpc_wrr", "{values:?}");
                assert_eq!(f.interval.as_secs_f64(), values[2].parse::<f64>().unwrap(), "{values:?}");
            }
        }
    }
    // Without a block, the axes still apply (the block is added).
    let text = scenario("    sweep: [Axis(field: \"feedback.law\", values: [capacity, grpc_wrr])],");
    let points = ok(&text, &[]).sweep_points().expect("points");
    assert!(matches!(points[1].1.cluster.feedback.as_ref().unwrap().law.kind, LawKind::GrpcWrr(_)));
    // An invalid point names its values.
    let text =
        scenario("    feedback: (),\n    sweep: [Axis(field: \"feedback.interval_s\", values: [1.0, 0.0])],");
    let e = ok(&text, &[]).sweep_points().unwrap_err();
    assert!(e.message.contains("feedback.interval_s=0.0") && e.message.contains("must be > 0"), "{e}");
}

#[test]
fn background_events_become_server_events() {
    let text = scenario(
        "    events: [
        Event(at_s: 3.0, server: \"rs2\", change: Background(2)),
        Event(at_s: 6.0, server: \"rs2\", change: Background(0)),
        Event(at_s: 4.0, server: \"rs1\", change: Weight(3)),
    ],",
    );
    let l = ok(&text, &[]);
    assert_eq!(
        l.cluster.server_events,
        [
            ServerEvent { at: Duration::from_secs(3), server: 1, change: ServerChange::Background(2) },
            ServerEvent { at: Duration::from_secs(6), server: 1, change: ServerChange::Background(0) },
        ]
    );
    assert_eq!(l.cluster.actions.len(), 1);
}

#[test]
fn a_background_event_on_a_group_reaches_every_member() {
    let text = farm("    events: [Event(at_s: 2.0, server: \"web\", change: Background(1))],");
    let l = ok(&text, &[]);
    let names: Vec<&str> =
        l.cluster.server_events.iter().map(|e| l.cluster.servers[e.server].name.as_str()).collect();
    assert_eq!(names, ["web1", "web2", "web3", "web4"]);
    assert!(l.cluster.server_events.iter().all(|e| e.change == ServerChange::Background(1)));
    assert!(l.cluster.actions.is_empty());
    // One member by its own name.
    let text = farm("    events: [Event(at_s: 2.0, server: \"web3\", change: Background(4))],");
    let l = ok(&text, &[]);
    assert_eq!(l.cluster.server_events.len(), 1);
    assert_eq!(l.cluster.servers[l.cluster.server_events[0].server].name, "web3");
}

#[test]
fn a_background_event_has_no_director_or_service() {
    for (field, extra) in [("director", "director: \"lvs\""), ("service", "service: 0")] {
        let text = scenario(&format!(
            "    events: [Event(at_s: 2.0, server: \"rs1\", {extra}, change: Background(1))],"
        ));
        let e = err(&text, &[]);
        assert!(e.message.starts_with(&format!("events[0].{field}:")), "{e}");
        assert!(e.message.contains("background change"), "{e}");
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(5), "{e}");
    }
    let e = err(&scenario("    events: [Event(at_s: 2.0, server: \"rs9\", change: Background(1))],"), &[]);
    assert!(e.message.starts_with("events[0].server: no real server named \"rs9\""), "{e}");
}
