//! The warning for real servers an mh service's lookup table never names (issue 16,
//! item 5), through the `lvsim` binary, in its three places: `validate`'s output (text and
//! JSON), `run`'s output, and the report (summary.json's `warnings`, report.html). A
//! warning does not fail the command; the servers it names get no connection in the run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn lvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).args(args).output().expect("spawning lvsim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(o)
}

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mh-warning-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An mh service over `web` (a group of `count`, weight `weight`) and then `heavy` (a
/// group of `heavy` servers of weight 64, added last, so first in the kernel's list).
/// Returns the file and the line of `scheduler: mh`.
fn scenario(d: &Path, count: u32, heavy: u32) -> (String, usize) {
    let heavy_rs = if heavy > 0 { ", (server: \"heavy\", forwarding: DR, weight: 64)" } else { "" };
    let heavy_srv = if heavy > 0 {
        format!(", (name: \"heavy\", address: \"10.3.0.1\", count: {heavy})")
    } else {
        String::new()
    };
    let text = format!(
        "// mh warning test\nScenario(\n    duration_s: 20.0,\n    directors: [(\n        name: \"lvs\",\n        \
         address: \"10.0.0.1\",\n        services: [(\n            vip: \"10.0.0.100\",\n            port: 80,\n            \
         scheduler: mh,\n            real_servers: [(server: \"web\", forwarding: DR){heavy_rs}],\n        )],\n    )],\n    \
         servers: [(name: \"web\", address: \"10.2.0.1\", count: {count}){heavy_srv}],\n    \
         clients: [Clients(arrival: Poisson(rate: 100.0), addresses: 5000, demand_ms: Constant(1.0))],\n)\n"
    );
    let line = text.lines().position(|l| l.contains("scheduler: mh")).unwrap() + 1;
    let path = d.join("mh.ron");
    std::fs::write(&path, text).unwrap();
    (path.display().to_string(), line)
}

#[test]
fn validate_warns_of_mh_servers_past_the_table_in_text_and_json() {
    let d = dir("validate");
    let n = lvsim_sched_bound() + 3;
    let (file, line) = scenario(&d, n, 0);
    let text = ok(&lvsim(&["validate", &file]));
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("  warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    let w = warnings[0];
    assert!(w.contains(&format!("{file}:{line}:")), "not at the scheduler's line: {w}");
    assert!(
        w.contains(&format!(
            "3 real server(s) will get no connection: mh's lookup table has more real servers ({n})"
        )),
        "{w}"
    );
    assert!(w.contains("\"web4094\", \"web4095\", \"web4096\""), "{w}");

    let json: Value = serde_json::from_str(&ok(&lvsim(&["validate", "--json", &file]))).expect("JSON");
    let w = json[0]["warnings"].as_array().expect("a warnings list");
    assert_eq!(w.len(), 1, "{json}");
    assert!(w[0].as_str().unwrap().contains("4093 slots"), "{json}");

    // At the bound: no warning.
    let (file, _) = scenario(&d, lvsim_sched_bound(), 0);
    let text = ok(&lvsim(&["validate", &file]));
    assert!(!text.contains("  warning: "), "{text}");
}

/// lvs-sched's bound, as the binary's crates see it.
fn lvsim_sched_bound() -> u32 {
    lvs_sched::MH_TAB_SIZE
}

#[test]
fn run_prints_the_warning_and_the_report_keeps_it() {
    // 10 light servers, then 130 of weight 64: their turns (32 each) fill the 4093 slots
    // before the 10 light ones and the two heavy servers added first get one.
    let d = dir("run");
    let (file, line) = scenario(&d, 10, 130);
    let out_dir = d.join("out");
    let text = ok(&lvsim(&["run", &file, "--out", out_dir.to_str().unwrap()]));
    let w =
        text.lines().find(|l| l.starts_with("warning ")).unwrap_or_else(|| panic!("no warning in\n{text}"));
    assert!(w.contains(&format!("{file}:{line}:")), "{w}");
    assert!(w.contains("12 real server(s) will get no connection: mh's lookup table has weights"), "{w}");

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).expect("JSON");
    let warnings = summary["warnings"].as_array().expect("summary.json has warnings");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].as_str().unwrap(), w.trim_start_matches("warning").trim_start());
    // The servers it names got nothing; the others did.
    let conns = |name: &str| {
        summary["real_servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["connections"]
            .as_u64()
            .unwrap()
    };
    assert!((1..=10).all(|i| conns(&format!("web{i}")) == 0));
    assert_eq!((conns("heavy1"), conns("heavy2")), (0, 0));
    assert!(conns("heavy130") > 0, "{summary}");

    let page = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let shown = page.lines().find(|l| l.contains("class=\"warning\"")).expect("the page shows the warning");
    assert!(shown.contains("12 real server(s) will get no connection"), "{shown}");
    assert!(shown.contains("&quot;web1&quot;"), "escaped: {shown}");

    // --json prints the summary, warnings included.
    let json: Value =
        serde_json::from_str(&ok(&lvsim(&["run", &file, "--json", "--out", out_dir.to_str().unwrap()])))
            .unwrap();
    assert_eq!(json["warnings"], summary["warnings"]);
}
