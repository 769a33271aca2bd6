//! Feedback results in a run's files, from a hand-built `FeedbackReport` (the simulator
//! does not fill it yet): summary.json keys present only with feedback, the servers.csv
//! capacity column, the page's Feedback section, the terminal block.

mod common;

use std::path::PathBuf;

use serde_json::Value;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-feedback").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn summary_value(r: &sim_core::model::RunReport) -> Value {
    serde_json::from_str(&reports::summary_json(&reports::summary(&common::meta(), r))).expect("JSON")
}

#[test]
fn utilization_spread_is_highest_minus_lowest() {
    let r = common::run(5, 1, 0);
    let s = reports::summary(&common::meta(), &r);
    let u: Vec<f64> = r.servers.iter().map(|s| s.utilization).collect();
    let max = u.iter().copied().fold(f64::MIN, f64::max);
    let min = u.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!(s.utilization_spread, max - min);
    assert!(summary_value(&r)["utilization_spread"].is_f64());
    assert!(max - min > 0.0, "{u:?}");
}

#[test]
fn without_feedback_there_is_no_feedback_key() {
    let v = summary_value(&common::run(5, 1, 0));
    assert!(v.get("feedback").is_none());
    let text = reports::summary_json(&reports::summary(&common::meta(), &common::run(5, 1, 0)));
    assert!(!text.contains("feedback") && !text.contains("capacity"), "{text}");
}

#[test]
fn with_feedback_summary_json_has_the_loop_and_every_server() {
    let r = common::with_feedback(common::run(5, 1, 100));
    let v = summary_value(&r);
    let f = &v["feedback"];
    assert_eq!(f["law"], "capacity");
    for (k, want) in [("reports_sent", 63), ("reports_applied", 62), ("weight_changes", 9)] {
        assert_eq!(f[k].as_u64(), Some(want), "{k}");
    }
    assert_eq!((f["segments_lost"].as_u64(), f["reconnects"].as_u64()), (Some(2), Some(1)));
    // The slowest server's reaction, and the travel summed over servers.
    assert_eq!(f["reaction_s"].as_f64(), Some(2.5));
    assert_eq!(f["weight_travel_per_min"].as_f64(), Some(60.0));
    let servers = f["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    // serde_json's map sorts its keys: compare as sets.
    let mut keys: Vec<&str> = servers[1].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = [
        "name",
        "reports",
        "weight_changes",
        "weight_mean",
        "weight_min",
        "weight_max",
        "weight_travel_per_min",
        "reaction_s",
        "capacity_last",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(servers[1]["capacity_last"].as_f64(), Some(0.5));
    // Optional keys are left out, not null.
    assert!(servers[0].get("reaction_s").is_none());
    assert!(servers[2].get("capacity_last").is_none());
    // The feedback object comes last, after directors; the spread after real_servers.
    let text = reports::summary_json(&reports::summary(&common::meta(), &r));
    let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k}"));
    assert!(at("\"real_servers\"") < at("\"utilization_spread\""));
    assert!(at("\"utilization_spread\"") < at("\"directors\""));
    assert!(at("\"directors\"") < at("\"feedback\""));
    // It reads back.
    let back: reports::Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back.feedback, reports::summary(&common::meta(), &r).feedback);
}

#[test]
fn no_reaction_anywhere_leaves_the_key_out() {
    let mut r = common::with_feedback(common::run(5, 1, 0));
    for s in &mut r.feedback.as_mut().unwrap().servers {
        s.reaction_s = None;
    }
    let v = summary_value(&r);
    assert!(v["feedback"].get("reaction_s").is_none());
    assert!(v["feedback"]["weight_travel_per_min"].is_f64());
}

#[test]
fn servers_csv_has_a_capacity_column_empty_without_a_report() {
    let dir = out_dir("csv");
    let r = common::with_feedback(common::run(3, 1, 100));
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let text = std::fs::read_to_string(dir.join("servers.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t_s,server,utilization,active_conns,inactive_conns,weight,capacity");
    // First sample: no report yet; second: rs0 1 − 0.02, rs1 1 − 0.04, rs2 never.
    assert!(lines[1].starts_with("0.1,rs0,") && lines[1].ends_with(','), "{}", lines[1]);
    assert!(lines[4].starts_with("0.2,rs0,") && lines[4].ends_with(",0.98"), "{}", lines[4]);
    assert!(lines[5].starts_with("0.2,rs1,") && lines[5].ends_with(",0.96"), "{}", lines[5]);
    assert!(lines[6].starts_with("0.2,rs2,") && lines[6].ends_with(','), "{}", lines[6]);
    // Without feedback the column is there and empty.
    let dir = out_dir("csv-plain");
    reports::write_run(&dir, &common::meta(), &common::run(3, 1, 100)).expect("writes");
    let text = std::fs::read_to_string(dir.join("servers.csv")).unwrap();
    assert!(text.lines().skip(1).all(|l| l.ends_with(',') && l.split(',').count() == 7));
}

#[test]
fn the_page_has_a_feedback_section_only_with_feedback() {
    let plain = out_dir("html-plain");
    reports::write_run(&plain, &common::meta(), &common::run(3, 1, 100)).expect("writes");
    let html = std::fs::read_to_string(plain.join("report.html")).unwrap();
    assert!(!html.contains("id=\"feedback\"") && !html.contains("href=\"#feedback\""));
    assert!(!html.contains("Reported spare capacity"));
    assert!(html.contains("utilisation spread"));
    let fb = out_dir("html-feedback");
    let r = common::with_feedback(common::run(3, 1, 100));
    reports::write_run(&fb, &common::meta(), &r).expect("writes");
    let html = std::fs::read_to_string(fb.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"feedback\">Feedback</h2>") && html.contains("href=\"#feedback\""));
    assert!(html.contains("<th>reaction s</th>") && html.contains("<th>capacity %</th>"));
    assert!(html.contains("Reported spare capacity per real server"));
    assert!(html.contains("63 sent, 62 applied, 9 weight changes, 2 segments lost, 1 reconnects"));
    // One more chart than without feedback, right after the weight chart.
    let plain_html = std::fs::read_to_string(plain.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), plain_html.matches("<svg").count() + 1);
    let at = |k: &str| html.find(k).unwrap_or_else(|| panic!("{k}"));
    assert!(at("Utilisation per real server") < at("IPVS weight per real server"));
    assert!(at("IPVS weight per real server") < at("Reported spare capacity"));
    assert!(at("Reported spare capacity") < at("IPVS tables at the end"));
    // Same input, same bytes.
    let again = out_dir("html-feedback-again");
    reports::write_run(&again, &common::meta(), &r).expect("writes");
    for f in ["summary.json", "servers.csv", "report.html"] {
        assert_eq!(std::fs::read(fb.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn the_terminal_summary_has_a_short_feedback_block() {
    let r = common::run(3, 1, 0);
    let plain = reports::text_summary(&common::meta(), &r);
    assert!(plain.contains("utilisation spread ") && !plain.contains("feedback"));
    let t = reports::text_summary(&common::meta(), &common::with_feedback(r));
    for needle in [
        "feedback law           capacity\n",
        "feedback reports       63 sent, 62 applied",
        "feedback reaction      2.50 s",
        "feedback weight travel 60.0 per minute",
        "server  reports  weight changes",
        "rs2          22               6",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
}
