//! The library's SYN-flood scenario (`scale/syn-flood`) through the `lvsim` binary, one
//! run per defence: what each does to the table and to the legitimate clients, against
//! the scenario's own arithmetic (a 1536-page memory of 320-byte entries holds 19660
//! entries; 500 SYN/s for 100 s), and the run's files (series.csv's DoS columns, the
//! page's section); and a scenario's DoS fields refused with file:line:column.

mod common;

use common::cli::{lvsim_in, scratch, text};
use serde_json::Value;

/// `lvsim run scale/syn-flood --set SET...` in a fresh directory: its summary.json and
/// the directory.
fn run(name: &str, sets: &[&str]) -> (Value, std::path::PathBuf) {
    let dir = scratch(&format!("syn-flood-{name}"));
    let mut args = vec!["run", "-q", "scale/syn-flood", "-o", "out"];
    for s in sets {
        // The scenario's checks are about the run without a defence.
        args.extend(["--set", s, "--set", "expect=[]"]);
    }
    let out = lvsim_in(&dir, &args);
    assert!(out.status.success(), "{name}: {}\n{}", text(&out.stdout), text(&out.stderr));
    let summary = std::fs::read_to_string(dir.join("out/summary.json")).unwrap();
    (serde_json::from_str(&summary).unwrap(), dir.join("out"))
}

fn dos(s: &Value, k: &str) -> u64 {
    s["dos"][k].as_u64().unwrap_or_else(|| panic!("dos.{k} in {}", s["dos"]))
}

#[test]
fn each_defence_does_what_the_kernel_does_to_the_table_and_the_clients() {
    let (none, dir) = run("none", &[]);
    // The table fills: 1536 pages x 4096 / 320 bytes = 19660 entries, then every new
    // connection (flood or legitimate) finds no memory.
    assert_eq!(dos(&none, "flood_syns"), 50_000);
    assert_eq!(dos(&none, "peak_entries"), 19_660);
    assert!(dos(&none, "no_memory") > 20_000);
    assert!(dos(&none, "legit_dropped") > 1_000, "{}", none["dos"]);
    let (entry, _) = run("drop-entry", &["directors[0].drop_entry=1"]);
    // drop_entry keeps the table below full: no SYN meets a full table, no legitimate
    // connection is dropped, and the p99 stays at the unloaded level (well under 1 s).
    assert!(dos(&entry, "peak_entries") < 19_660);
    assert_eq!(dos(&entry, "no_memory"), 0);
    assert_eq!(dos(&entry, "legit_dropped"), 0);
    assert!(dos(&entry, "entries_dropped") > 30_000);
    assert!(entry["dos"]["p99_ms_max"].as_f64().unwrap() < 1_000.0);
    let (packet, _) = run("drop-packet", &["directors[0].drop_packet=1"]);
    // drop_packet drops new connections below amemthresh, legitimate ones alike: the
    // table stays below full but legitimate SYNs are retransmitted and some given up.
    assert!(dos(&packet, "peak_entries") < 19_660);
    assert_eq!(dos(&packet, "no_memory"), 0);
    assert!(dos(&packet, "packets_dropped") > 10_000);
    let lost = |s: &Value| dos(s, "legit_dropped");
    assert!(lost(&packet) > 0 && lost(&packet) < lost(&none), "{} vs {}", lost(&packet), lost(&none));
    let (secure, _) = run("secure-tcp", &["directors[0].secure_tcp=1"]);
    // secure_tcp with direct routing: flood entries start in SYNACK (120 s, not 60 s),
    // so fewer slots free up during the flood and more legitimate connections are lost.
    assert_eq!(dos(&secure, "peak_entries"), 19_660);
    assert!(dos(&secure, "flood_entries") < dos(&none, "flood_entries"));
    assert!(lost(&secure) > lost(&none), "{} vs {}", lost(&secure), lost(&none));
    // The files: series.csv's DoS columns, the page's section.
    let csv = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for c in
        ["legit_refused", "legit_dropped", "flood_syns", "entries_lvs", "avail_pages_lvs", "drop_rate_lvs"]
    {
        assert!(header.split(',').any(|h| h == c), "{c} missing from {header}");
    }
    let entries = header.split(',').position(|h| h == "entries_lvs").unwrap();
    let peak = csv.lines().skip(1).map(|l| l.split(',').nth(entries).unwrap().parse::<u64>().unwrap()).max();
    assert_eq!(peak, Some(19_660));
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        page.contains("SYN flood and IPVS defences") && page.contains("IPVS table size and available memory")
    );
}

#[test]
fn dos_fields_are_refused_with_their_place() {
    let dir = scratch("syn-flood-errors");
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library/scale/syn-flood.ron"),
    )
    .unwrap();
    for (from, to, want) in [
        (
            "conn_entry_bytes: 320",
            "conn_entry_bytes: 320, drop_entry: 4",
            "directors[0].drop_entry: must be 0 (off), 1 (automatic)",
        ),
        (
            "rate: 500.0, start_s",
            "rate: 0.0, start_s",
            "syn_floods[0].rate: must be in (0, 1000000] SYN/s, got 0",
        ),
        (
            "name: \"botnet\",",
            "name: \"botnet\", director: \"lb9\",",
            "syn_floods[0].director: no director \"lb9\"",
        ),
        (
            "stop_s: 120.0",
            "stop_s: 10.0",
            "syn_floods[0].stop_s: the flood must start (20 s) before it stops (10 s)",
        ),
        (
            "memory_pages: 1536",
            "memory_pages: -5",
            "directors[0].memory_pages: must be in 0..=2^40 pages, got -5",
        ),
    ] {
        let needle = to.split(", ").last().unwrap();
        assert!(base.contains(from), "{from}");
        std::fs::write(dir.join("s.ron"), base.replace(from, to)).unwrap();
        let out = lvsim_in(&dir, &["run", "-q", "s.ron", "-o", "out"]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{to}: accepted");
        assert!(err.contains(want), "{to}: {err}");
        // file:line:column of the field.
        let line = base.replace(from, to).lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert!(err.contains(&format!("s.ron:{line}:")), "{to}: no s.ron:{line}: in {err}");
    }
}

#[test]
fn a_flood_too_big_for_the_budget_is_refused_naming_its_rate() {
    let dir = scratch("syn-flood-budget");
    let out = lvsim_in(
        &dir,
        &[
            "run",
            "-q",
            "scale/syn-flood",
            "-o",
            "out",
            "--set",
            "syn_floods[0].rate=1000000",
            "--set",
            "syn_floods[0].stop_s=None",
            "--set",
            "duration_s=100000",
            "--set",
            "sample_interval_s=100",
        ],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    // 10^6 SYN/s over 99980 s, 4 events each: 4.00e11 against the default 2e10.
    assert!(err.contains("syn_floods[0].rate: the run needs about 4.00e11 events"), "{err}");
}
