//! High availability in a run's files, from a hand-built `HaReport` (the simulator does not
//! fill it yet): summary.json's `ha` (and the `expect` paths into it), series.csv's
//! `failed` and `share_<director>` columns, `ha_events.csv`, the page's section and the
//! terminal block.

mod common;

use std::path::PathBuf;

use serde_json::Value;
use sim_core::model::RunReport;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-ha").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn json(r: &RunReport) -> String {
    reports::summary_json(&reports::summary(&common::meta(), r))
}

fn ha_run() -> RunReport {
    common::with_ha(common::run(3, 2, 100))
}

fn sorted_keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn without_ha_there_is_no_ha_key_or_file() {
    let r = common::run(3, 1, 100);
    assert!(r.ha.is_none());
    let text = json(&r);
    assert!(!text.contains("\"ha\""), "{text}");
    let dir = out_dir("plain");
    let w = reports::write_run(&dir, &common::meta(), &r).expect("writes");
    assert!(w.files.iter().all(|f| !f.ends_with("ha_events.csv")));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("id=\"ha\"") && !html.contains("href=\"#ha\""));
    assert!(!reports::text_summary(&common::meta(), &r).contains("\nha "));
}

#[test]
fn summary_json_has_the_ha_object_with_headline_figures() {
    let r = ha_run();
    let text = json(&r);
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let h = &v["ha"];
    assert_eq!(h["detection_s_max"].as_f64(), Some(0.25));
    assert_eq!(h["failover_gap_s_max"].as_f64(), Some(0.1));
    assert_eq!(h["lost_conns_total"].as_u64(), Some(7));
    assert_eq!(h["survived_conns_total"].as_u64(), Some(55));
    assert_eq!(h["faults_undetected"].as_u64(), Some(1));
    assert_eq!(v["connections"]["lost_on_failover"].as_u64(), Some(6));
    // Faults: every time present for rs1, only the start and recovery for rs2.
    let f = h["faults"].as_array().expect("faults");
    assert_eq!(f.len(), 2);
    assert_eq!(
        sorted_keys(&f[0]),
        [
            "at_s",
            "detected_at_s",
            "detection_s",
            "failed_after_detection",
            "failed_before_detection",
            "kind",
            "recovered_at_s",
            "restored_at_s",
            "server"
        ]
    );
    assert_eq!((f[0]["server"].as_str(), f[0]["kind"].as_str()), (Some("rs1"), Some("crash")));
    assert_eq!((f[0]["at_s"].as_f64(), f[0]["detected_at_s"].as_f64()), (Some(0.5), Some(0.75)));
    assert_eq!((f[0]["detection_s"].as_f64(), f[0]["restored_at_s"].as_f64()), (Some(0.25), Some(1.8)));
    assert_eq!(f[0]["failed_before_detection"].as_u64(), Some(12));
    assert_eq!(
        sorted_keys(&f[1]),
        ["at_s", "failed_after_detection", "failed_before_detection", "kind", "recovered_at_s", "server"]
    );
    // Checks are named after the directors.
    let c = h["checks"].as_array().expect("checks");
    assert_eq!(sorted_keys(&c[0]), ["checks", "director", "downs", "failed", "fallbacks", "ups"]);
    assert_eq!((c[0]["director"].as_str(), c[1]["director"].as_str()), (Some("lb1"), Some("lb2")));
    assert_eq!((c[0]["checks"].as_u64(), c[1]["failed"].as_u64()), (Some(40), Some(2)));
    let fo = h["failovers"].as_array().expect("failovers");
    assert_eq!(sorted_keys(&fo[0]), ["at_s", "cause", "from", "gap_s", "lost_conns", "survived_conns", "to"]);
    assert_eq!((fo[0]["from"].as_str(), fo[0]["to"].as_str()), (Some("lb1"), Some("lb2")));
    assert_eq!((fo[0]["at_s"].as_f64(), fo[0]["gap_s"].as_f64()), (Some(1.05), Some(0.1)));
    assert!(fo[1].get("gap_s").is_none(), "a preemption has no gap");
    let d = h["director_faults"].as_array().expect("director_faults");
    assert_eq!(sorted_keys(&d[0]), ["at_s", "director", "kind"]);
    assert_eq!((d[1]["kind"].as_str(), d[1]["at_s"].as_f64()), (Some("up"), Some(1.7)));
    assert_eq!(sorted_keys(&h["sync"]), ["applied", "bytes", "conns", "messages"]);
    assert_eq!(h["sync"]["applied"].as_u64(), Some(880));
    assert!(h.get("scheduled_by_director").is_none(), "not active-active");
    // Headline figures first; `ha` after `directors`.
    let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k}"));
    assert!(at("\"directors\"") < at("\"ha\""));
    assert!(at("\"detection_s_max\"") < at("\"faults\""));
    assert!(at("\"faults_undetected\"") < at("\"faults\""));
    // It reads back (serde_json's float parsing may differ in the last bit elsewhere).
    let back: reports::Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back.ha, reports::summary(&common::meta(), &r).ha);
}

#[test]
fn sync_is_null_without_it_and_active_active_counts_appear_with_it() {
    let mut r = ha_run();
    let h = r.ha.as_mut().unwrap();
    h.sync = None;
    h.scheduled_by_director = vec![510, 490];
    h.faults.clear();
    h.failovers.retain(|f| f.gap_s.is_none());
    let v: Value = serde_json::from_str(&json(&r)).unwrap();
    let h = &v["ha"];
    assert!(h.get("sync").is_some_and(Value::is_null), "{h}");
    assert_eq!(h["scheduled_by_director"][1]["director"].as_str(), Some("lb2"));
    assert_eq!(h["scheduled_by_director"][0]["connections"].as_u64(), Some(510));
    // Nothing detected and no gap: the maxima are left out, the totals are there.
    assert!(h.get("detection_s_max").is_none() && h.get("failover_gap_s_max").is_none());
    assert_eq!((h["lost_conns_total"].as_u64(), h["faults_undetected"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn expect_checks_read_ha_paths_from_the_summary() {
    // As `lvsim run` evaluates a scenario's `expect` entries.
    let s = reports::summary(&common::meta(), &ha_run());
    let v = serde_json::to_value(&s).unwrap();
    let metric = |p: &str| scenarios::expect::metric(&v, p);
    assert_eq!(metric("ha.failover_gap_s_max"), Ok(0.1));
    assert_eq!(metric("ha.detection_s_max"), Ok(0.25));
    assert_eq!(metric("ha.lost_conns_total"), Ok(7.0));
    assert_eq!(metric("connections.lost_on_failover"), Ok(6.0));
    assert_eq!(metric("ha.faults[0].detection_s"), Ok(0.25));
    assert_eq!(metric("ha.failovers[0].survived_conns"), Ok(25.0));
    assert_eq!(metric("ha.checks[1].downs"), Ok(1.0));
    assert_eq!(metric("ha.sync.applied"), Ok(880.0));
    // An undetected fault has no detection time: a clear error, not a silent 0.
    let e = metric("ha.faults[1].detection_s").unwrap_err();
    assert!(e.contains("no field `detection_s`"), "{e}");
    let e = check("ha.failover_gap_s_max", 0.05, &v);
    assert!(!e.ok && e.text.starts_with("ha.failover_gap_s_max = 0.1, at most 0.05"), "{}", e.text);
    assert!(check("connections.lost_on_failover", 10.0, &v).ok);
    // Without HA the path names what is missing.
    let plain = serde_json::to_value(reports::summary(&common::meta(), &common::run(3, 1, 0))).unwrap();
    let e = scenarios::expect::metric(&plain, "ha.failover_gap_s_max").unwrap_err();
    assert!(e.contains("no field `ha`"), "{e}");
}

fn check(metric: &str, at_most: f64, v: &Value) -> scenarios::expect::Outcome {
    let e = scenarios::format::Expect {
        metric: metric.into(),
        approx: None,
        tolerance: 0.05,
        abs_tolerance: 0.0,
        at_most: Some(at_most),
        at_least: None,
        note: String::new(),
    };
    scenarios::expect::validate(&e).expect("a well-formed check");
    scenarios::expect::check(&e, v).expect("the path resolves")
}

#[test]
fn series_csv_has_failed_and_a_share_column_per_director() {
    let dir = out_dir("csv");
    let r = ha_run();
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let text = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "t_s,responses,throughput_rps,p50_ms,p99_ms,open_conns,failed,\
         link_utilization_lb1,link_utilization_lb2,share_lb1,share_lb2"
    );
    assert_eq!(lines.len(), 1 + 20);
    let row = |t: &str| {
        lines.iter().find(|l| l.starts_with(&format!("{t},"))).unwrap().split(',').collect::<Vec<_>>()
    };
    assert_eq!((row("0.7")[6], row("0.7")[9], row("0.7")[10]), ("6", "1", "0"));
    assert_eq!((row("1.1")[6], row("1.1")[9], row("1.1")[10]), ("7", "0", "1"));
    assert_eq!((row("1.8")[6], row("1.8")[9]), ("0", "1"));
    assert!(lines.iter().all(|l| l.split(',').count() == 11));
}

#[test]
fn ha_events_csv_has_one_row_per_event_in_time_order() {
    let dir = out_dir("events");
    let w = reports::write_run(&dir, &common::meta(), &ha_run()).expect("writes");
    let names: Vec<_> =
        w.files.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    assert_eq!(
        names,
        [
            "summary.json",
            "series.csv",
            "servers.csv",
            "real_servers.csv",
            "services.csv",
            "populations.csv",
            "backends.csv",
            "ha_events.csv",
            "report.html"
        ]
    );
    let text = std::fs::read_to_string(dir.join("ha_events.csv")).unwrap();
    let want = "\
t_s,event,subject,kind,from,to,detected_at_s,detection_s,recovered_at_s,restored_at_s,\
failed_before_detection,failed_after_detection,gap_s,lost_conns,survived_conns
0.5,fault,rs1,crash,,,0.75,0.25,1.6,1.8,12,3,,,
0.95,director_fault,lb1,down,,,,,,,,,,,
1.05,failover,lb2,director down,lb1,lb2,,,,,,,0.1,7,25
1.3,fault,rs2,hang,,,,,1.4,,2,0,,,
1.7,director_fault,lb1,up,,,,,,,,,,,
1.75,failover,lb1,preempt,lb2,lb1,,,,,,,,0,30
";
    assert_eq!(text, want);
}

#[test]
fn the_page_has_an_ha_section_with_two_charts_and_the_tables() {
    let plain = out_dir("html-plain");
    reports::write_run(&plain, &common::meta(), &common::run(3, 2, 100)).expect("writes");
    let plain = std::fs::read_to_string(plain.join("report.html")).unwrap();
    let dir = out_dir("html");
    let mut r = ha_run();
    // Text from the simulation is escaped.
    r.ha.as_mut().unwrap().failovers[1].cause = "ipfail <ping> & co".into();
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2 id=\"ha\">High availability</h2>") && html.contains("href=\"#ha\""));
    assert_eq!(html.matches("<svg").count(), plain.matches("<svg").count() + 2);
    for needle in [
        "Failed connections and responses per interval",
        "Director share of the VIP",
        "real-server fault",
        "fault detected",
        "fail-over",
        "director fault/repair",
        "<th>detection s</th>",
        "<th>gap s</th>",
        "<th>survived</th>",
        "<th>fallbacks</th>",
        "<th>entries applied</th>",
        "<td class=\"l\">rs1</td><td class=\"l\">crash</td><td>0.500</td><td>0.750</td><td>0.250</td><td>12</td>",
        "<td>1.050</td><td>0.100</td><td>7</td><td>25</td>",
        "ipfail &lt;ping&gt; &amp; co",
        "slowest 0.250 s (2 fault(s), 1 undetected)",
    ] {
        assert!(html.contains(needle), "missing {needle:?}");
    }
    assert!(!html.contains("<ping>"));
    // After the charts it explains, before the IPVS tables.
    let at = |k: &str| html.find(k).unwrap_or_else(|| panic!("{k}"));
    assert!(at("IPVS weight per real server") < at("id=\"ha\""));
    assert!(at("id=\"ha\"") < at("id=\"ipvs\""));
    // The event marks are drawn: more line elements than without them.
    let mut unmarked = r;
    unmarked.ha = Some(sim_core::model::HaReport::default());
    let dir2 = out_dir("html-unmarked");
    reports::write_run(&dir2, &common::meta(), &unmarked).expect("writes");
    let html2 = std::fs::read_to_string(dir2.join("report.html")).unwrap();
    assert!(html.matches("class=\"mark\"").count() > html2.matches("class=\"mark\"").count());
    assert!(html2.contains("no real-server fault") && html2.contains("no connection synchronisation"));
    // Same input, same bytes.
    let again = out_dir("html-again");
    let mut r = ha_run();
    r.ha.as_mut().unwrap().failovers[1].cause = "ipfail <ping> & co".into();
    reports::write_run(&again, &common::meta(), &r).expect("writes");
    for f in ["summary.json", "series.csv", "ha_events.csv", "report.html"] {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn the_terminal_summary_has_an_ha_block() {
    let t = reports::text_summary(&common::meta(), &ha_run());
    for needle in [
        "ha detection     slowest 0.250 s (2 fault(s), 1 undetected)\n",
        "ha fail-over     2 fail-over(s), longest gap 0.100 s; 7 established connections lost, 55 survived\n",
        "ha sync          120 messages, 900 connection records, 48000 bytes, 880 entries applied\n",
        "real-server faults:\nserver  kind    at s  detected s  detection s  failed before",
        "rs1     crash  0.500       0.750        0.250             12             3        1.600       1.800\n",
        "rs2     hang   1.300           –            –              2             0        1.400           –\n",
        "fail-overs:\nfrom  to   cause           at s  gap s  lost  survived\n",
        "lb1   lb2  director down  1.050  0.100     7        25\n",
        "lb2   lb1  preempt        1.750      –     0        30\n",
        "director faults:\n",
        "health checks:\ndirector  checks  failed  downs  ups  fallbacks\n",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
}

#[test]
fn the_initial_election_is_named_and_not_counted_as_a_fail_over() {
    let mut r = ha_run();
    let h = r.ha.as_mut().unwrap();
    let mut election = h.failovers[0].clone();
    (election.from, election.to, election.cause) = (None, Some("lb1".into()), "gratuitous ARP".into());
    (election.gap_s, election.lost_conns, election.survived_conns) = (None, 0, 0);
    election.at = lvs_sched::Time(300_000_000);
    h.failovers.insert(0, election);
    let t = reports::text_summary(&common::meta(), &r);
    assert!(t.contains("ha fail-over     2 fail-over(s), "), "the election is not counted:\n{t}");
    assert!(t.contains("(initial election not counted: lb1 at 0.300 s)"), "{t}");
    assert!(
        t.contains("–     lb1  initial election (gratuitous ARP)  0.300"),
        "the row says what it was:\n{t}"
    );
}

#[test]
fn the_terminal_shows_at_most_twenty_fail_overs() {
    let mut r = ha_run();
    let h = r.ha.as_mut().unwrap();
    let f = h.failovers[0].clone();
    h.failovers = (0..25).map(|_| f.clone()).collect();
    let t = reports::text_summary(&common::meta(), &r);
    assert_eq!(t.matches("lb1   lb2  director down").count(), 20, "{t}");
    assert!(t.contains("... 5 more in ha_events.csv\n"));
}
