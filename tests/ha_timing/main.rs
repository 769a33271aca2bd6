//! HA timing of the real daemons against the simulator's prediction (docs/ha-timing.md).
//!
//! Inside a VM running Debian's stock kernel (`tests/vm/lvsim-vm`, the host's /usr and so
//! its keepalived and ldirectord), tests/vm/ha-timing.sh runs the files `lvsim export`
//! writes for a library scenario in network namespaces, injects the scenario's faults
//! and measures, on the guest's monotonic clock, when the survivor reacts. The same
//! scenario is then run by `lvsim run` with each fault moved to the phase it had in the
//! VM (its offset after the last VRRP advert or the last check, which the guest logs):
//! every measured time must be within 10% or one check (advert) interval of the
//! prediction, whichever is larger. A prediction made deliberately wrong (the scenario's
//! timing changed, the daemons' not) must fall outside, so the comparison can fail.
//!
//! A harness-less test (`harness = false`): the same binary is the guest's HTTP server
//! (`serve`) and VRRP listener (`adverts`). If the VM cannot start the tests fail; set
//! `LVSIM_SKIP_VM=1` to skip them on a machine without qemu (a notice is printed). A
//! daemon missing from the host fails its test, naming the Debian package.

mod guest;
#[path = "../harness/mod.rs"]
mod harness;
mod predict;
mod vm;

use std::path::{Path, PathBuf};

use predict::{Metric, Row, conf_value, model_event, predict};

fn library(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library/ha").join(name)
}

/// The daemon's binary must be installed (the guest runs the host's /usr).
fn require(binary: &str, package: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: install the Debian package {package} (apt-get install {package})"
    );
}

/// keepalived: lb1 (VRRP master) is killed half-way between two adverts, then web2's host
/// crashes 0.3 s after a check by lb2. Measured on lb2: the VIP's arrival after the kill,
/// and web2's removal from its IPVS table after the crash.
fn keepalived() -> Option<Vec<Row>> {
    require("/usr/sbin/keepalived", "keepalived");
    let scenario = library("keepalived-timing.ron");
    let m = vm::run("keepalived", &scenario)?;
    let conf = m.exported("keepalived-lb2.conf");
    let (advert, delay_loop) = (conf_value(&conf, "advert_int"), conf_value(&conf, "delay_loop"));
    let kill = m.at("kill");
    let kill_phase = kill - m.last_before("adverts", "10.0.0.2", kill);
    let crash = m.at("crash");
    let crash_phase = crash - m.last_before("web2.checks", "10.0.0.3", crash);
    let sudden = m.times("adverts", "10.0.0.2").len() == m.times_of("adverts", "10.0.0.2", "150").len();
    assert!(sudden, "lb1 sent a priority-0 advert: it shut down, it did not die ({})", m.out.display());
    let lb2_master =
        m.times("adverts", "10.0.0.3").into_iter().find(|&t| t >= kill).expect("an advert of lb2");
    let vip_polled = m.at("lb2_vip_polled");
    assert!(
        vip_polled >= lb2_master - 0.05,
        "lb2 held the VIP at {vip_polled} s, before its first advert as MASTER at {lb2_master} s"
    );
    let gap = lb2_master - kill;
    let detection = m.at("removed") - crash;
    let variants: [(&str, Vec<String>); 3] = [
        ("model", vec![]),
        ("advert_int doubled (wrong)", vec!["ha.failover.advert_int_s=2.0".to_owned()]),
        ("retries 3 (wrong)", vec!["directors[0].services[0].check.retries=3".to_owned()]),
    ];
    let mut rows = Vec::new();
    for (variant, sets) in variants {
        // The faults at the phase they had in the VM: the master dies `kill_phase` after
        // one of its adverts, web2 crashes `crash_phase` after a check of lb2.
        let mut sets = sets.clone();
        let gap_of: Metric = |p| p.gap;
        let down_at = model_event(&scenario, &sets, 0, gap_of, 8.0, 0.25) + kill_phase;
        sets.push(format!("events[0].at_s={down_at}"));
        let detected: Metric = |p| p.detections[0];
        let crash_at = model_event(&scenario, &sets, 1, detected, down_at + 6.0, 0.25) + crash_phase;
        sets.push(format!("events[1].at_s={crash_at}"));
        let p = predict(&scenario, &sets);
        let row = |what: &str, measured, predicted: Option<f64>, interval| Row {
            what: what.to_owned(),
            variant: variant.to_owned(),
            measured,
            predicted: predicted.unwrap_or(f64::NAN),
            interval,
        };
        rows.push(row("keepalived VRRP fail-over gap", gap, p.gap, advert));
        rows.push(row("keepalived HTTP_GET crash detection", detection, p.detections[0], delay_loop));
    }
    Some(rows)
}

/// ldirectord (negotiate checks of four web servers): web2's host crashes 0.3 s after a
/// check of it, then web3's HTTP server hangs 0.3 s after a check of it. Measured: when
/// each is quiesced (weight 0) after its fault.
fn ldirectord() -> Option<Vec<Row>> {
    require("/usr/sbin/ldirectord", "ldirectord");
    let scenario = library("health-checks.ron");
    let m = vm::run("ldirectord", &scenario)?;
    let interval = conf_value(&m.exported("ldirectord.cf"), "checkinterval");
    let (crash, hang) = (m.at("crash"), m.at("hang"));
    let crash_phase = crash - m.last_before("web2.checks", "10.0.0.1", crash);
    let hang_phase = hang - m.last_before("web3.checks", "10.0.0.1", hang);
    let crash_detection = m.at("crash_quiesced") - crash;
    let hang_detection = m.at("hang_quiesced") - hang;
    let variants: [(&str, Vec<String>); 2] = [
        ("model", vec![]),
        ("failurecount 3 (wrong)", vec!["directors[0].services[0].check.retries=2".to_owned()]),
    ];
    let mut rows = Vec::new();
    for (variant, sets) in variants {
        // Events: 0 web2 crashes, 1 web2 recovers (100 s), 2 web3 hangs, 3 web3 recovers
        // (130 s); each fault at the phase it had in the VM after a check of its server.
        let mut sets = sets.clone();
        let first: Metric = |p| p.detections[0];
        let crash_at = model_event(&scenario, &sets, 0, first, 30.0, 0.5) + crash_phase;
        sets.push(format!("events[0].at_s={crash_at}"));
        let second: Metric = |p| p.detections[1];
        let hang_at = model_event(&scenario, &sets, 2, second, crash_at + 15.0, 0.5) + hang_phase;
        sets.push(format!("events[2].at_s={hang_at}"));
        let p = predict(&scenario, &sets);
        let row = |what: &str, measured, predicted: Option<f64>| Row {
            what: what.to_owned(),
            variant: variant.to_owned(),
            measured,
            predicted: predicted.unwrap_or(f64::NAN),
            interval,
        };
        rows.push(row("ldirectord negotiate crash detection", crash_detection, p.detections[0]));
        rows.push(row("ldirectord negotiate hang detection", hang_detection, p.detections[1]));
    }
    Some(rows)
}

/// heartbeat: lb1 (the primary) dies between two of its keepalives. Measured on lb2:
/// when it declares lb1 dead. The model's fail-over gap less its `takeover_s` (the
/// resource scripts, which under TCG take tens of seconds: docs/ha-timing.md) is the
/// same span: it is predicted with `takeover_s = 0`.
fn heartbeat() -> Option<Vec<Row>> {
    require("/usr/libexec/heartbeat/heartbeat", "heartbeat");
    let scenario = library("heartbeat-timing.ron");
    let m = vm::run("heartbeat", &scenario)?;
    let keepalive = conf_value(&m.exported("ha.cf"), "keepalive");
    let kill = m.at("kill");
    let kill_phase = kill - m.last_before("keepalives", "10.0.0.2", kill);
    // When lb2 declares lb1 dead it broadcasts `t=stonith node=lb1` (obs logs it to
    // 10 ms); its log line, polled, comes a little later.
    let declared = m
        .times_of("keepalives", "10.0.0.3", "stonith")
        .into_iter()
        .find(|&t| t >= kill)
        .expect("lb2's stonith message");
    let logged = m.at("lb1_dead");
    assert!(
        logged >= declared - 0.05,
        "lb2 logged lb1 dead at {logged} s, before its message at {declared} s"
    );
    let detection = declared - kill;
    let variants: [(&str, Vec<String>); 2] =
        [("model", vec![]), ("deadtime doubled (wrong)", vec!["ha.failover.deadtime_s=10.0".to_owned()])];
    let mut rows = Vec::new();
    for (variant, sets) in variants {
        let mut sets = sets.clone();
        sets.push("ha.failover.takeover_s=0.0".to_owned());
        let gap_of: Metric = |p| p.gap;
        let down_at = model_event(&scenario, &sets, 0, gap_of, 15.0, 0.25) + kill_phase;
        sets.push(format!("events[0].at_s={down_at}"));
        let p = predict(&scenario, &sets);
        rows.push(Row {
            what: "heartbeat dead-node detection".to_owned(),
            variant: variant.to_owned(),
            measured: detection,
            predicted: p.gap.unwrap_or(f64::NAN),
            interval: keepalive,
        });
    }
    Some(rows)
}

type Case = (&'static str, fn() -> Option<Vec<Row>>);

/// A case's table and verdict (`Ok(false)`: skipped).
type Outcome = (String, Result<bool, Vec<String>>);

const CASES: [Case; 3] = [
    ("keepalived_timing_matches_the_model", keepalived),
    ("ldirectord_timing_matches_the_model", ldirectord),
    ("heartbeat_timing_matches_the_model", heartbeat),
];

/// Runs one case: its table, and whether the model's rows are within tolerance and each
/// wrong variant has a row outside it (`Ok(false)`: skipped).
fn check(name: &str, f: fn() -> Option<Vec<Row>>) -> Outcome {
    let Some(rows) = f() else { return (String::new(), Ok(false)) };
    let mut table = String::new();
    let mut failures = Vec::new();
    for r in &rows {
        table.push_str(&format!("  {}\n", r.line()));
        if r.variant == "model" && !r.ok() {
            failures.push(format!(
                "{name}: {} is {:.2} s, the model predicts {:.2} s",
                r.what, r.measured, r.predicted
            ));
        }
    }
    let mut variants: Vec<&str> = rows.iter().map(|r| r.variant.as_str()).filter(|v| *v != "model").collect();
    variants.dedup();
    for v in variants {
        if rows.iter().filter(|r| r.variant == v).all(Row::ok) {
            failures.push(format!("{name}: the deliberately wrong prediction \"{v}\" passed the comparison"));
        }
    }
    (table, if failures.is_empty() { Ok(true) } else { Err(failures) })
}

/// Runs the cases side by side (one VM at a time, see `vm::run`): their tables and
/// verdicts in `cases`' order; a case that panicked failed.
fn run_all(cases: &[&Case]) -> Vec<(&'static str, Outcome)> {
    std::thread::scope(|s| {
        let handles: Vec<_> =
            cases.iter().map(|&&(name, f)| (name, s.spawn(move || check(name, f)))).collect();
        handles
            .into_iter()
            .map(|(name, h)| match h.join() {
                Ok(outcome) => (name, outcome),
                Err(_) => {
                    (name, (String::new(), Err(vec![format!("{name} panicked (see its message above)")])))
                }
            })
            .collect()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => guest::serve(&args[2..]),
        Some("adverts") => guest::adverts(&args[2..]),
        Some("keepalives") => guest::keepalives(&args[2..]),
        _ => {}
    }
    let rest = &args[1..];
    if harness::is_list(rest) {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return;
    }
    let names = harness::selected(rest, &CASES.map(|(name, _)| name));
    let selected: Vec<&Case> = CASES.iter().filter(|(name, _)| names.contains(name)).collect();
    let filtered = CASES.len() - selected.len();
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed, mut ignored) = (0, Vec::new(), 0);
    for (name, (table, verdict)) in run_all(&selected) {
        print!("{table}");
        match verdict {
            Ok(true) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(false) => {
                println!("test {name} ... ignored (LVSIM_SKIP_VM=1)");
                ignored += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED");
                failed.extend(why);
            }
        }
    }
    let status = if failed.is_empty() { "ok" } else { "FAILED" };
    for f in &failed {
        println!("  {f}");
    }
    println!(
        "\ntest result: {status}. {passed} passed; {} failed; {ignored} ignored; 0 measured; {filtered} filtered out\n",
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
