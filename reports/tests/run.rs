//! write_run: the files, their rows, and the page's self-containment and escaping.

mod common;

use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-run").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn writes_the_four_files_in_order() {
    let dir = out_dir("files");
    let r = common::run(3, 2, 100);
    let w = reports::write_run(&dir, &common::meta(), &r).expect("writes");
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
            "report.html"
        ]
    );
    for f in &w.files {
        assert!(f.starts_with(&dir) && f.is_file(), "{f:?}");
    }
    let json = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert_eq!(json, reports::summary_json(&reports::summary(&common::meta(), &r)));
}

#[test]
fn csv_files_have_one_row_per_sample_and_per_server() {
    let dir = out_dir("csv");
    let r = common::run(3, 2, 100);
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    assert_eq!(r.series.len(), 20, "2 s sampled every 100 ms");
    let series = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    let lines: Vec<&str> = series.lines().collect();
    assert_eq!(
        lines[0],
        "t_s,responses,throughput_rps,p50_ms,p99_ms,open_conns,failed,link_utilization_lb1,share_lb1"
    );
    assert_eq!(lines.len(), 1 + r.series.len());
    assert!(lines[1].starts_with("0.1,"), "{}", lines[1]);
    let first = &r.series[0];
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[1], first.responses.to_string());
    // Responses per second over the first 100 ms interval.
    assert_eq!(fields[2].parse::<f64>().unwrap(), first.responses as f64 / 0.1);
    // Nothing failed, and the one director holds the VIP throughout.
    assert_eq!((fields[6], fields[8]), ("0", "1"));
    assert!(lines.iter().skip(1).all(|l| l.split(',').count() == 9));
    let servers = std::fs::read_to_string(dir.join("servers.csv")).unwrap();
    let lines: Vec<&str> = servers.lines().collect();
    assert_eq!(lines[0], "t_s,server,utilization,active_conns,inactive_conns,weight,capacity");
    assert_eq!(lines.len(), 1 + r.series.len() * 3);
    // Without feedback the capacity column is empty.
    assert!(lines[3].starts_with("0.1,rs2,") && lines[3].ends_with(",3,"), "{}", lines[3]);
    assert!(lines.iter().skip(1).all(|l| l.split(',').count() == 7));
}

#[test]
fn without_a_sample_interval_the_csvs_are_headers_and_the_page_says_so() {
    let dir = out_dir("no-series");
    let r = common::run(3, 1, 0);
    assert!(r.series.is_empty());
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    assert_eq!(std::fs::read_to_string(dir.join("series.csv")).unwrap().lines().count(), 1);
    assert_eq!(std::fs::read_to_string(dir.join("servers.csv")).unwrap().lines().count(), 1);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("no time series (the scenario sets no sample interval)"));
    // The CDF needs no series: it is still drawn.
    assert_eq!(html.matches("<svg").count(), 2, "only the CDF and its tail");
    assert!(html.contains("Response-time distribution (CDF)"));
}

#[test]
fn report_html_is_self_contained_and_escapes_text() {
    let dir = out_dir("html");
    let r = common::run(3, 2, 100);
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 9, "nine charts");
    for bad in ["<script", "src=", "url(", "@import", "<link", "<b>behind", "<wlc>"] {
        assert!(!html.contains(bad), "{bad} in report.html");
    }
    assert!(html.contains("small &lt;wlc&gt; &amp; &quot;nat&quot;"));
    assert!(html.contains("Three real servers &lt;b&gt;behind&lt;/b&gt;"));
    for href in html.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "a link out of the page: {}", &href[..href.len().min(40)]);
    }
    for needle in
        ["# ipvsadm -L -n\n", "# ipvsadm -L -n --stats\n", "TCP  172.17.60.201:80 wlc", "rs2", "192.168.6.6"]
    {
        assert!(html.contains(needle), "missing {needle:?}");
    }
    for title in ["Response time over time", "Responses per second", "Utilisation per real server"] {
        assert!(html.contains(title), "missing chart {title}");
    }
}

#[test]
fn the_same_run_writes_the_same_bytes() {
    let (a, b) = (out_dir("det-a"), out_dir("det-b"));
    reports::write_run(&a, &common::meta(), &common::run(5, 1, 50)).expect("writes");
    reports::write_run(&b, &common::meta(), &common::run(5, 1, 50)).expect("writes");
    for f in ["summary.json", "series.csv", "servers.csv", "report.html"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn long_series_are_decimated_to_at_most_2000_points_a_line() {
    let dir = out_dir("long");
    let r = common::run(3, 6, 2);
    assert_eq!(r.series.len(), 3000);
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    assert_eq!(std::fs::read_to_string(dir.join("series.csv")).unwrap().lines().count(), 3001);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let most = html
        .split("<polyline")
        .skip(1)
        .map(|p| {
            let pts = &p[p.find("points=\"").unwrap() + 8..];
            pts[..pts.find('"').unwrap()].split_whitespace().count()
        })
        .max()
        .unwrap();
    assert!((1000..=2000).contains(&most), "{most} points in the longest line");
    assert!(html.len() < 2_000_000, "report.html is {} bytes", html.len());
}
