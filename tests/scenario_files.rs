//! Files a scenario names (`import_ipvsadm`, `Trace(file:)`) through the `lvsim` binary:
//! only inside the scenario's directory unless `--allow-path` allows another; absolute,
//! `../` and symbolic-link escapes refused at the field's file:line:column; size capped;
//! and an error never quotes a file that was not recognisably of the expected format.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lvsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).args(args).output().expect("spawning lvsim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `scenario/` (where scenarios are written) and `outside/` (a sibling) in a fresh
/// directory.
fn dirs(name: &str) -> (PathBuf, PathBuf) {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("files-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    let (s, o) = (d.join("scenario"), d.join("outside"));
    std::fs::create_dir_all(&s).unwrap();
    std::fs::create_dir_all(&o).unwrap();
    (s, o)
}

/// A scenario whose clients arrive as recorded in `trace` (and, if given, whose services
/// are imported from `import`); returns its path and the line of the file field.
fn scenario(dir: &Path, trace: &str, import: Option<&str>) -> (String, usize) {
    let import = import.map_or(String::new(), |f| format!("    import_ipvsadm: {f:?},\n"));
    let text = format!(
        "Scenario(\n    duration_s: 10.0,\n    topology: \"tutorial-nat\",\n{import}    clients: [\n        Clients(\n            arrival: Trace(file: {trace:?}),\n            demand_ms: Exponential(mean: 5.0),\n        ),\n    ],\n)\n"
    );
    let line =
        text.lines().position(|l| l.contains(if import.is_empty() { "Trace(" } else { "import_ipvsadm" }));
    let path = dir.join("s.ron");
    std::fs::write(&path, text).unwrap();
    (path.display().to_string(), line.unwrap() + 1)
}

const TRACE: &str = "time_s\n0.1\n0.5\n1.0\n";

/// Refused with exit 2 at `file:line:` with a message containing `why`.
fn refused(out: &Output, file: &str, line: usize, why: &str) {
    let e = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains(&format!("{file}:{line}:")), "not at {file}:{line}: {e}");
    assert!(e.contains(why), "no {why:?} in: {e}");
}

#[test]
fn a_trace_in_the_scenario_directory_is_read() {
    let (s, _) = dirs("inside");
    std::fs::create_dir_all(s.join("traces")).unwrap();
    std::fs::write(s.join("traces/t.csv"), TRACE).unwrap();
    let (file, _) = scenario(&s, "traces/../traces/t.csv", None);
    let out = lvsim(&["validate", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_absolute_path_is_refused_unless_allowed() {
    let (s, o) = dirs("absolute");
    std::fs::write(o.join("t.csv"), TRACE).unwrap();
    let abs = o.join("t.csv").display().to_string();
    let (file, line) = scenario(&s, &abs, None);
    refused(&lvsim(&["validate", &file]), &file, line, "absolute path");
    // Even inside the scenario's own directory, a name is relative.
    std::fs::write(s.join("t.csv"), TRACE).unwrap();
    let (file, line) = scenario(&s, &s.join("t.csv").display().to_string(), None);
    refused(&lvsim(&["validate", &file]), &file, line, "--allow-path");
    let (file, _) = scenario(&s, &abs, None);
    let out = lvsim(&["validate", "--allow-path", o.to_str().unwrap(), &file]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_dot_dot_path_is_refused_unless_allowed_and_the_refusal_does_not_look_at_the_file() {
    let (s, o) = dirs("dotdot");
    std::fs::write(o.join("t.csv"), TRACE).unwrap();
    let (file, line) = scenario(&s, "../outside/t.csv", None);
    refused(&lvsim(&["validate", &file]), &file, line, "leaves the scenario's directory");
    // A file that does not exist gets the same answer: a refusal tells nothing of it.
    let (file, line) = scenario(&s, "../outside/missing.csv", None);
    refused(&lvsim(&["validate", &file]), &file, line, "leaves the scenario's directory");
    let (file, line) = scenario(&s, "t.csv", Some("../../../../../../etc/passwd"));
    refused(&lvsim(&["validate", &file]), &file, line, "leaves the scenario's directory");
    let (file, _) = scenario(&s, "../outside/t.csv", None);
    let out = lvsim(&["validate", "--allow-path", o.to_str().unwrap(), &file]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_symbolic_link_to_outside_is_refused_unless_allowed() {
    let (s, o) = dirs("symlink");
    std::fs::write(o.join("t.csv"), TRACE).unwrap();
    std::os::unix::fs::symlink(o.join("t.csv"), s.join("link.csv")).unwrap();
    std::os::unix::fs::symlink(&o, s.join("linkdir")).unwrap();
    for name in ["link.csv", "linkdir/t.csv"] {
        let (file, line) = scenario(&s, name, None);
        refused(&lvsim(&["validate", &file]), &file, line, "symbolic link");
        let out = lvsim(&["run", &file, "-q", "--no-progress", "-o", s.join("out").to_str().unwrap()]);
        refused(&out, &file, line, "symbolic link");
        let out = lvsim(&["validate", "--allow-path", o.to_str().unwrap(), &file]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A link that stays inside is fine.
    std::fs::write(s.join("real.csv"), TRACE).unwrap();
    std::os::unix::fs::symlink("real.csv", s.join("inner.csv")).unwrap();
    let (file, _) = scenario(&s, "inner.csv", None);
    let out = lvsim(&["validate", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn every_command_that_reads_a_scenario_takes_allow_path() {
    let (s, o) = dirs("commands");
    std::fs::write(o.join("t.csv"), TRACE).unwrap();
    let (file, line) = scenario(&s, "../outside/t.csv", None);
    let allow = o.to_str().unwrap();
    let out_dir = s.join("out");
    let out_dir = out_dir.to_str().unwrap();
    for cmd in ["run", "sweep", "plan", "export"] {
        refused(&lvsim(&[cmd, &file, "-q", "--no-progress", "-o", out_dir]), &file, line, "--allow-path");
        let help = lvsim(&[cmd, "--help"]);
        assert!(String::from_utf8_lossy(&help.stdout).contains("--allow-path"), "{cmd} --help");
    }
    let out = lvsim(&["export", &file, "--allow-path", allow, "--stdout", "ipvsadm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lvsim(&["validate", "--allow-path", "/nonexistent-dir", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--allow-path /nonexistent-dir: not a directory"), "{}", stderr(&out));
}

const SECRET: &str = "root:$6$Zm9vYmFy$SECRETHASHSECRETHASH:19700:0:99999:7:::\n\
                      daemon:*:19700:0:99999:7:::SECRETTWO\n\
                      bin:*:19700:0:99999:7:::SECRETTHREE\n";

#[test]
fn a_file_not_of_the_expected_format_is_never_quoted() {
    let (s, o) = dirs("secret");
    std::fs::write(o.join("shadow"), SECRET).unwrap();
    std::fs::write(s.join("t.csv"), TRACE).unwrap();
    let allow = o.to_str().unwrap();
    let out_dir = s.join("out");
    let cases = [
        ("t.csv", Some("../outside/shadow"), "ipvsadm-save output"),
        ("../outside/shadow", None, "a trace of arrival times"),
    ];
    for (trace, import, what) in cases {
        let (file, _) = scenario(&s, trace, import);
        for cmd in ["validate", "run", "export"] {
            let mut args = vec![cmd, "--allow-path", allow, &file];
            if cmd != "validate" {
                args.extend(["-o", out_dir.to_str().unwrap()]);
            }
            let out = lvsim(&args);
            let e = stderr(&out);
            let all = format!("{e}{}", String::from_utf8_lossy(&out.stdout));
            assert_eq!(out.status.code(), Some(2), "{cmd}: {all}");
            assert!(e.contains(&format!("not {what}")) && e.contains("the line is not shown"), "{cmd}: {e}");
            for secret in ["SECRET", "root:", "daemon", "19700", "Zm9v"] {
                assert!(!all.contains(secret), "{cmd} echoed {secret:?}: {all}");
            }
        }
    }
}

#[test]
fn a_file_of_the_expected_format_is_quoted_at_its_bad_line() {
    let (s, _) = dirs("quoted");
    std::fs::write(s.join("t.csv"), "time_s\n0.1\nfoo\n").unwrap();
    let (file, _) = scenario(&s, "t.csv", None);
    let e = stderr(&lvsim(&["validate", &file]));
    assert!(e.contains("t.csv:3: time \"foo\" is not a number"), "{e}");
    std::fs::write(s.join("t.csv"), TRACE).unwrap();
    std::fs::write(
        s.join("ipvs.save"),
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 2147483648\n",
    )
    .unwrap();
    let (file, _) = scenario(&s, "t.csv", Some("ipvs.save"));
    let e = stderr(&lvsim(&["validate", &file]));
    assert!(e.contains("ipvs.save:2:") && e.contains("2147483648"), "{e}");
}

#[test]
fn a_file_over_the_size_cap_is_refused_before_it_is_read() {
    let (s, _) = dirs("big");
    // Sparse: the test writes no gigabytes, and a reader that read it whole would
    // take far longer than the refusal.
    let f = std::fs::File::create(s.join("big.csv")).unwrap();
    f.set_len(4 << 30).unwrap();
    let (file, line) = scenario(&s, "big.csv", None);
    refused(&lvsim(&["validate", &file]), &file, line, "-byte limit");
    let (file, line) = scenario(&s, "t.csv", Some("big.csv"));
    refused(&lvsim(&["validate", &file]), &file, line, "-byte limit");
    // Only regular files: not a device that never ends.
    let (file, line) = scenario(&s, "/dev/zero", None);
    refused(&lvsim(&["validate", "--allow-path", "/dev", &file]), &file, line, "not a regular file");
    // Nor the scenario itself: refused by its size, and not read from a device.
    let out = lvsim(&["validate", s.join("big.csv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("-byte limit for a scenario"), "{}", stderr(&out));
    let out = lvsim(&["validate", "/dev/zero"]);
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
}
