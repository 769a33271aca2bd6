//! `lvsim import` as a user runs it: a file or a directory in, a scenario that
//! `lvsim validate` accepts out; careless and hostile input refused with the file named.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::cli::{lvsim, text};

fn scratch(name: &str) -> PathBuf {
    common::cli::scratch(&format!("import-{name}"))
}

fn status(out: &Output) -> (Option<i32>, String, String) {
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

const RULES: &str = "-A -t 10.0.0.1:80 -s wlc -p 300\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 1\n";

#[test]
fn ipvsadm_rules_become_a_scenario_that_validates_and_runs() {
    let d = scratch("rules");
    let rules = d.join("saved.rules");
    std::fs::write(&rules, RULES).unwrap();
    let out = d.join("s.ron");
    let (code, _, err) = status(&lvsim(&["import", rules.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("saved.rules: not mapped: ipvsadm rules do not name the director"), "{err}");
    let scenario = std::fs::read_to_string(&out).unwrap();
    for want in ["scheduler: wlc", "persistence_s: Some(300.0)", "weight: 3", "PLACEHOLDER", "// Not mapped"]
    {
        assert!(scenario.contains(want), "{want} in\n{scenario}");
    }
    let (code, stdout, err) = status(&lvsim(&["validate", out.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(stdout.contains("1 service(s), 2 real server(s)"), "{stdout}");
    // Not overwritten without --force; replaced with it.
    let (code, _, err) = status(&lvsim(&["import", rules.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("exists: give --force to replace it"), "{err}");
    let again = lvsim(&["import", rules.to_str().unwrap(), "-o", out.to_str().unwrap(), "--force", "-q"]);
    assert_eq!(status(&again).0, Some(0));
    assert!(text(&again.stderr).is_empty(), "-q prints no notes");
}

#[test]
fn an_export_directory_needs_a_format_and_then_reads_that_tools_files() {
    let d = scratch("dir");
    let exp = d.join("exp");
    let (code, _, err) = status(&lvsim(&[
        "export",
        "scenarios/library/tutorial-nat.ron",
        "-q",
        "--out",
        exp.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = status(&lvsim(&["import", exp.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("holds files of several tools (keepalived, ipvsadm): choose one with --format"),
        "{err}"
    );
    let (code, _, err) = status(&lvsim(&["import", exp.to_str().unwrap(), "--format", "nginx"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown format \"nginx\""), "{err}");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = status(&lvsim(&["import", empty.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("no keepalived*.conf"), "{err}");
}

#[test]
fn bad_and_hostile_files_are_refused_naming_the_file() {
    let d = scratch("hostile");
    // A rules file with a bad line: file, line and column.
    let bad = d.join("bad.rules");
    std::fs::write(&bad, "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -w 99999999999\n")
        .unwrap();
    let (code, stdout, err) = status(&lvsim(&["import", bad.to_str().unwrap()]));
    assert_eq!(code, Some(2), "{stdout}");
    assert!(err.contains("bad.rules:2:"), "{err}");
    assert!(stdout.is_empty(), "nothing written on error");
    // Too large: refused before it is read.
    let big = d.join("big.rules");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(5 << 20).unwrap();
    let (code, _, err) = status(&lvsim(&["import", big.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("over the 4194304-byte limit"), "{err}");
    // Not text.
    let bin = d.join("bin.rules");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let (code, _, err) = status(&lvsim(&["import", bin.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("not UTF-8 text"), "{err}");
    // A file no tool reads.
    let unknown = d.join("notes.txt");
    std::fs::write(&unknown, "hello\n").unwrap();
    let (code, _, err) = status(&lvsim(&["import", unknown.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot tell which tool reads this file"), "{err}");
    // A directory of too many files is refused, not truncated.
    let many = d.join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..70 {
        std::fs::write(many.join(format!("ipvsadm-{i}.rules")), RULES).unwrap();
    }
    let (code, _, err) = status(&lvsim(&["import", many.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("more than 64 files"), "{err}");
    // A missing file.
    let (code, _, err) = status(&lvsim(&["import", d.join("nope.rules").to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(err.contains("nope.rules: cannot read it"), "{err}");
}
