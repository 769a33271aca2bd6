//! `lvsim sweep --shard K/N` and `lvsim merge`: shards merge into exactly the files the
//! local sweep writes (but for the runs' wall times), whatever N, `--jobs` or the
//! directories the shards were gathered into; and `merge` refuses, naming the files and
//! shards, every split that is not one whole split of this scenario by this lvsim.

mod common;

use std::path::Path;
use std::process::Output;

use common::reports::masked;

use common::cli::{lvsim_in, scratch, text};

/// [`lv`], which must succeed.
fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = lvsim_in(dir, args);
    assert!(
        out.status.success(),
        "lvsim {args:?}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// [`lv`], which must fail with exit `code` and a message holding every one of `needles`.
fn refused(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = lvsim_in(dir, args);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "lvsim {args:?}\nstdout:\n{}\nstderr:\n{err}",
        text(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "lvsim {args:?}: {n:?} not in:\n{err}");
    }
    err
}

const PAGES: [&str; 4] = ["sweep.json", "sweep.csv", "report.html", "summary.txt"];

/// The pages of the report in `dir/out` (wall times masked), then the directory removed
/// so that the next command writes the same path.
fn pages(dir: &Path) -> Vec<(String, String)> {
    let out = dir.join("out");
    let files = PAGES
        .iter()
        .map(|n| {
            let t = std::fs::read_to_string(out.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n.to_string(), masked(&t))
        })
        .collect();
    std::fs::remove_dir_all(&out).unwrap();
    files
}

/// Asserts two reports' pages are the same, naming the first page that differs.
fn same_pages(local: &[(String, String)], merged: &[(String, String)], what: &str) {
    for ((name, a), (_, b)) in local.iter().zip(merged) {
        assert!(a == b, "{what}: {name} differs from the local sweep's");
    }
}

/// A sweep of `scenario` (with `sets`) split into `n` shards, shard K into `dirs[K mod
/// dirs.len()]`, each run with `-j jobs`, then merged into `out`; returns the pages.
fn split_and_merge(
    d: &Path,
    scenario: &str,
    sets: &[&str],
    n: u32,
    dirs: &[&str],
    jobs: &str,
) -> Vec<(String, String)> {
    for k in 1..=n {
        let (spec, dir) = (format!("{k}/{n}"), dirs[k as usize % dirs.len()]);
        let mut args = vec!["sweep", scenario, "--shard", &spec, "--shards-dir", dir, "-j", jobs];
        args.extend(sets);
        let out = ok(d, &args);
        let line = text(&out.stdout);
        assert!(line.starts_with(&format!("shard {spec} of the ")) && line.contains(" 0 failed: "), "{line}");
    }
    let mut args = vec!["merge", "--out", "out", "-q"];
    args.extend(dirs);
    ok(d, &args);
    for dir in dirs {
        std::fs::remove_dir_all(d.join(dir)).unwrap();
    }
    pages(d)
}

/// The local sweep's pages of `scenario` with `sets`.
fn local(d: &Path, scenario: &str, sets: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["sweep", scenario, "--out", "out", "-q"];
    args.extend(sets);
    ok(d, &args);
    pages(d)
}

/// Points of unequal replications (an axis sets them): 6 runs.
const UNEVEN: &str = r#"Scenario(
    duration_s: 2.0,
    warmup_s: 0.2,
    topology: "tutorial-nat",
    replications: 2,
    clients: [Clients(arrival: Poisson(rate: 100.0), demand_ms: Exponential(mean: 5.0))],
    sweep: [
        Axis(field: "clients[0].arrival.rate", values: [150.0, 20.0, 80.0]),
        Axis(field: "replications", values: [1, 3, 2]),
    ],
)
"#;

#[test]
fn merged_library_sweeps_are_the_local_sweeps() {
    let d = scratch("shard-library");
    // (scenario, overrides, its runs): NAT and DR, HA (fail-over and sync), health checks,
    // feedback (shortened).
    let cases: [(&str, &[&str], u32); 4] = [
        ("nat-vs-dr", &[], 10),
        ("ha/vrrp-failover", &[], 6),
        ("ha/health-checks", &[], 4),
        (
            "feedback/uneven-load",
            &["--set", "duration_s=40", "--set", "warmup_s=5", "--set", "replications=2"],
            12,
        ),
    ];
    for (scenario, sets, runs) in cases {
        let want = local(&d, scenario, sets);
        // One shard, a few, more shards than runs (some empty), in one or two directories.
        for (n, dirs) in
            [(1, &["s"][..]), (2, &["s"]), (3, &["s1", "s2"]), (7, &["s"]), (runs + 3, &["s1", "s2"])]
        {
            if scenario != "nat-vs-dr" && ![2, runs + 3].contains(&n) {
                continue;
            }
            let got = split_and_merge(&d, scenario, sets, n, dirs, "2");
            same_pages(&want, &got, &format!("{scenario} in {n} shards in {dirs:?}"));
        }
    }
}

#[test]
fn a_shards_file_and_the_merge_do_not_depend_on_jobs_or_the_directory() {
    let d = scratch("shard-jobs");
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    let want = local(&d, "uneven.ron", &[]);
    let mut first: Option<String> = None;
    for jobs in ["1", "3"] {
        ok(&d, &["sweep", "uneven.ron", "--shard", "2/3", "--shards-dir", "s", "-j", jobs]);
        let file = std::fs::read_to_string(d.join("s/shard-2-of-3.json")).unwrap();
        let file = masked(&file);
        assert!(file.contains("\"unit\": 1,") && file.contains("\"unit\": 4,"), "{file}");
        assert_eq!(first.get_or_insert_with(|| file.clone()), &file, "shard 2/3 with -j {jobs}");
    }
    std::fs::remove_dir_all(d.join("s")).unwrap();
    let got = split_and_merge(&d, "uneven.ron", &[], 3, &["s"], "1");
    same_pages(&want, &got, "uneven in 3 shards, -j 1");
    // Shards run from another directory, by absolute path, merge with those run here.
    let abs = d.join("uneven.ron").display().to_string();
    let elsewhere = scratch("shard-jobs-elsewhere");
    ok(&elsewhere, &["sweep", &abs, "--shard", "1/2", "--shards-dir", d.join("s").to_str().unwrap()]);
    ok(&d, &["sweep", "uneven.ron", "--shard", "2/2", "--shards-dir", "s", "--exchange", "per-message"]);
    ok(&d, &["merge", "s", "--out", "out", "-q"]);
    same_pages(&want, &pages(&d), "uneven, shards run from two directories, with either --exchange");
}

#[test]
fn the_default_directories_are_beside_the_report() {
    let d = scratch("shard-default-dirs");
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    ok(&d, &["sweep", "uneven.ron", "-q", "--out", "out"]);
    let want = pages(&d);
    for k in ["1/2", "2/2"] {
        ok(&d, &["sweep", "uneven.ron", "--shard", k]);
    }
    assert!(d.join("lvsim-out/uneven-sweep.shards/shard-2-of-2.json").is_file());
    // merge DIR.shards writes DIR, the local sweep's default report directory.
    ok(&d, &["merge", "lvsim-out/uneven-sweep.shards", "-q"]);
    std::fs::rename(d.join("lvsim-out/uneven-sweep"), d.join("out")).unwrap();
    let got = pages(&d);
    // summary.txt names the report's path: the same but for the directory's name.
    for ((name, a), (_, b)) in want.iter().zip(&got) {
        let b = b.replace("lvsim-out/uneven-sweep/", "out/");
        assert!(a == &b, "{name} differs");
    }
}

/// A small sweep of 6 runs split into 3 shards in `d/s` (shard files 2 runs each).
fn three_shards(d: &Path) {
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    for k in 1..=3 {
        ok(d, &["sweep", "uneven.ron", "--shard", &format!("{k}/3"), "--shards-dir", "s", "-q"]);
    }
}

/// Replaces `from` by `to` in a file.
fn edit(path: &Path, from: &str, to: &str) {
    let t = std::fs::read_to_string(path).unwrap();
    assert!(t.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, t.replacen(from, to, 1)).unwrap();
}

#[test]
fn merge_refuses_shards_of_another_lvsim_scenario_or_split() {
    let d = scratch("shard-identity");
    three_shards(&d);
    let s2 = d.join("s/shard-2-of-3.json");
    let keep = std::fs::read_to_string(&s2).unwrap();
    let restore = || std::fs::write(&s2, &keep).unwrap();
    edit(&s2, "\"lvsim\": \"", "\"lvsim\": \"0.0.1-");
    refused(
        &d,
        &["merge", "s"],
        2,
        &["s/shard-2-of-3.json", "written by lvsim 0.0.1-", "run every shard and the merge with one lvsim"],
    );
    restore();
    edit(&s2, "\"fingerprint\": \"", "\"fingerprint\": \"00");
    refused(&d, &["merge", "s"], 2, &["s/shard-2-of-3.json", "(fingerprint)", "not the split of"]);
    restore();
    edit(&s2, "\"format\": 1", "\"format\": 9");
    refused(&d, &["merge", "s"], 2, &["s/shard-2-of-3.json", "format 9"]);
    restore();
    edit(&s2, "\"kind\": \"sweep\"", "\"kind\": \"run\"");
    refused(&d, &["merge", "s"], 2, &["s/shard-2-of-3.json", "command run here, sweep there"]);
    restore();
    // A shard of another split of the same sweep.
    ok(&d, &["sweep", "uneven.ron", "--shard", "1/2", "--shards-dir", "s", "-q"]);
    refused(&d, &["merge", "s"], 2, &["shards (N) 3 here, 2 there"]);
    std::fs::remove_file(d.join("s/shard-1-of-2.json")).unwrap();
    // A shard of another scenario (same split), gathered into another directory.
    std::fs::write(d.join("other.ron"), UNEVEN.replace("150.0", "151.0")).unwrap();
    ok(&d, &["sweep", "other.ron", "--shard", "2/3", "--shards-dir", "t", "-q"]);
    std::fs::remove_file(&s2).unwrap();
    refused(&d, &["merge", "s", "t"], 2, &["t/shard-2-of-3.json", "scenario other here, uneven there"]);
    std::fs::remove_dir_all(d.join("t")).unwrap();
    restore();
    // The scenario file changed since the shards ran.
    edit(&d.join("uneven.ron"), "20.0", "21.0");
    refused(
        &d,
        &["merge", "s", "-o", "out"],
        2,
        &["uneven.ron", "not the one the shards ran", "changed since"],
    );
    assert!(!d.join("out").exists(), "a refused merge writes no report");
}

#[test]
fn merge_refuses_missing_duplicated_and_unreadable_shards() {
    let d = scratch("shard-files");
    three_shards(&d);
    let s = |k: u32| d.join(format!("s/shard-{k}-of-3.json"));
    let keep = std::fs::read(s(2)).unwrap();
    std::fs::remove_file(s(2)).unwrap();
    refused(&d, &["merge", "s"], 2, &["missing shard(s) 2 of 3", "shard-K-of-3.json"]);
    // Twice: a copy in another directory.
    std::fs::write(s(2), &keep).unwrap();
    std::fs::create_dir_all(d.join("t")).unwrap();
    std::fs::write(d.join("t/shard-2-of-3.json"), &keep).unwrap();
    refused(&d, &["merge", "s", "t"], 2, &["shard 2/3 twice", "s/shard-2-of-3.json", "t/shard-2-of-3.json"]);
    // The same directory twice is read once.
    ok(&d, &["merge", "s", "s/", "-q", "-o", "out"]);
    // A file named for another shard.
    std::fs::rename(s(3), d.join("t/shard-3-of-3.json")).unwrap();
    std::fs::rename(d.join("t/shard-2-of-3.json"), s(3)).unwrap();
    refused(&d, &["merge", "s"], 2, &["s/shard-3-of-3.json", "holds shard 2/3", "shard-2-of-3.json"]);
    std::fs::rename(d.join("t/shard-3-of-3.json"), s(3)).unwrap();
    // Truncated.
    std::fs::write(s(2), &keep[..keep.len() / 2]).unwrap();
    refused(&d, &["merge", "s"], 2, &["unreadable", "s/shard-2-of-3.json", "not a shard file"]);
    // A link (not followed), and a huge (sparse) file.
    std::fs::remove_file(s(2)).unwrap();
    std::fs::write(d.join("t/real.json"), &keep).unwrap();
    std::os::unix::fs::symlink(d.join("t/real.json"), s(2)).unwrap();
    refused(&d, &["merge", "s"], 2, &["s/shard-2-of-3.json", "not a plain file"]);
    std::fs::remove_file(s(2)).unwrap();
    let f = std::fs::File::create(s(2)).unwrap();
    f.set_len((1 << 30) + 1).unwrap();
    refused(&d, &["merge", "s"], 2, &["s/shard-2-of-3.json", "more than a shard file may have"]);
    // A shard whose runs are not its share.
    std::fs::write(s(2), &keep).unwrap();
    edit(&s(2), "\"unit\": 4,", "\"unit\": 5,");
    refused(
        &d,
        &["merge", "s"],
        2,
        &["s/shard-2-of-3.json", "not shard 2/3's share of the split's 18 runs", "run 5 instead of run 4"],
    );
    // No shard at all; no such directory.
    refused(&d, &["merge", "t"], 2, &["no shard file", "in t"]);
    refused(&d, &["merge", "nowhere"], 2, &["nowhere"]);
}

#[test]
fn missing_shards_are_listed_compactly() {
    let d = scratch("shard-missing");
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    for k in [1, 2, 4, 8] {
        ok(&d, &["sweep", "uneven.ron", "--shard", &format!("{k}/8"), "--shards-dir", "s", "-q"]);
    }
    refused(&d, &["merge", "s"], 2, &["missing shard(s) 3, 5-7 of 8"]);
}

/// A sweep over recorded arrivals: its second point reads `b.csv`.
const TRACES: &str = r#"Scenario(
    duration_s: 2.0,
    topology: "tutorial-nat",
    clients: [Clients(arrival: Trace(file: "a.csv"), demand_ms: Exponential(mean: 5.0))],
    sweep: [Axis(field: "clients[0].arrival", values: [Trace(file: "a.csv"), Trace(file: "b.csv"), Trace(file: "c.csv")])],
)
"#;

#[test]
fn a_failed_run_is_reported_with_its_point_and_error_and_its_shard_runs_again() {
    let d = scratch("shard-failure");
    std::fs::write(d.join("t.ron"), TRACES).unwrap();
    for (f, times) in [("a.csv", "0.1\n0.5\n1.0\n"), ("b.csv", "0.2\n0.3\n1.5\n"), ("c.csv", "0.7\n")] {
        std::fs::write(d.join(f), format!("time_s\n{times}")).unwrap();
    }
    let want = local(&d, "t.ron", &[]);
    std::fs::rename(d.join("b.csv"), d.join("b.kept")).unwrap();
    // Shard 1/2 runs points a and c; shard 2/2 point b, which fails: exit 1, the shard
    // file written with the failure.
    ok(&d, &["sweep", "t.ron", "--shard", "1/2", "--shards-dir", "s"]);
    let point = r#"clients[0].arrival=Trace(file: "b.csv"), replication 0"#;
    refused(
        &d,
        &["sweep", "t.ron", "--shard", "2/2", "--shards-dir", "s"],
        1,
        &["shard 2/2", "1 of 1 run(s) failed", point, "cannot read b.csv"],
    );
    let out = lvsim_in(&d, &["sweep", "t.ron", "--shard", "2/2", "--shards-dir", "s", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (line["shard"].as_str(), line["done"].as_u64(), line["failed"].as_u64()),
        (Some("2/2"), Some(0), Some(1))
    );
    let file = std::fs::read_to_string(d.join("s/shard-2-of-2.json")).unwrap();
    assert!(file.contains("\"failures\": [") && file.contains("cannot read b.csv"), "{file}");
    refused(
        &d,
        &["merge", "s", "-o", "out"],
        2,
        &["1 of 3 run(s) failed", "run shard(s) 2 of 2 again", "run 1 (", point, "cannot read b.csv"],
    );
    assert!(!d.join("out").exists(), "a refused merge writes no report");
    // Fixed, the failed shard alone runs again; the merge is the local sweep.
    std::fs::rename(d.join("b.kept"), d.join("b.csv")).unwrap();
    ok(&d, &["sweep", "t.ron", "--shard", "2/2", "--shards-dir", "s", "-q"]);
    ok(&d, &["merge", "s", "-o", "out", "-q"]);
    same_pages(&want, &pages(&d), "traces after the failed shard ran again");
    // A file the scenario reads changed since the shards ran.
    std::fs::write(d.join("a.csv"), "time_s\n0.1\n0.5\n1.1\n").unwrap();
    refused(&d, &["merge", "s", "-o", "out"], 2, &["t.ron", "not the one the shards ran"]);
    // A file that only a point reads changed since: that point is named.
    std::fs::write(d.join("a.csv"), "time_s\n0.1\n0.5\n1.0\n").unwrap();
    ok(&d, &["merge", "s", "-o", "out", "-q"]);
    std::fs::remove_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("c.csv"), "time_s\n0.8\n").unwrap();
    let c = r#"sweep point clients[0].arrival=Trace(file: "c.csv"): not the one the shards ran"#;
    refused(&d, &["merge", "s", "-o", "out"], 2, &[c, "shard-1-of-2.json"]);
    assert!(!d.join("out").exists(), "a refused merge writes no report");
}

#[test]
fn hostile_shard_specs_are_refused() {
    let d = scratch("shard-hostile");
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    for spec in ["0/0", "1/100001", "3/2", "0/3", "1/-1", "x/2", "1/2/3", "18446744073709551617/2", ""] {
        refused(&d, &["sweep", "uneven.ron", "--shard", spec], 2, &["expected K/N"]);
    }
    assert!(!d.join("lvsim-out").exists());
}

#[test]
fn summaries_survive_a_json_round_trip_on_every_library_scenario() {
    let d = scratch("shard-round-trip");
    for f in common::deploy::library_files() {
        let out = d.join("out");
        ok(&d, &["run", "-q", f.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let json = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let s: reports::Summary =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let again = serde_json::to_string_pretty(&s).unwrap() + "\n";
        assert!(again == json, "{}: summary.json changes through a JSON round trip", f.display());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
