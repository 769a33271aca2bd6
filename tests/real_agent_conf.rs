//! Every feedbackd-agent.conf lvsim exports, for every library scenario, built-in topology
//! and matrix case (tests/common/deploy.rs), is accepted by the real agent's
//! `feedbackd-agent --check` (the same set-up the daemon runs at start, with the file's
//! line on any error); a broken one is refused with its line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::deploy::every_export;
use topologies::export::Target;

/// The workspace's `feedbackd-agent`, built if need be: `cargo test --workspace` builds it
/// with every other binary, `cargo test --test real_agent_conf` does not (it is another
/// package's binary, which `CARGO_BIN_EXE_*` cannot name).
fn agent() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "feedbackd-agent", "--bin", "feedbackd-agent"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build -p feedbackd-agent");
    assert!(status.success(), "cargo build -p feedbackd-agent failed ({status})");
    // target/debug/deps/real_agent_conf-HASH → target/debug/feedbackd-agent
    let exe = std::env::current_exe().expect("the test's path");
    let bin = exe.parent().and_then(Path::parent).expect("target/debug").join("feedbackd-agent");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// `feedbackd-agent --config FILE --check`: (success, stderr).
fn check(agent: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(agent)
        .arg("--config")
        .arg(file)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", agent.display()));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn feedbackd_agent_check_accepts_every_exported_agent_conf() {
    let agent = agent();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real-agent-conf-{}", std::process::id()));
    let (mut checked, mut fwmark, mut failures) = (0, 0, Vec::new());
    for case in every_export(Target::default()) {
        for (name, text) in case.files_where(|f| f.starts_with("feedbackd-agent/")) {
            let path = dir.join(case.name.replace('/', "_")).join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating the directory");
            std::fs::write(&path, text).expect("writing the conf");
            let (ok, err) = check(&agent, &path);
            if !ok {
                failures.push(format!("{} {name}: {err}\n{text}", case.name));
            }
            checked += 1;
            fwmark += usize::from(text.contains("\tfwmark = "));
        }
    }
    eprintln!("real_agent_conf: {checked} agent confs checked, {fwmark} with a firewall-mark service");
    assert!(failures.is_empty(), "{} refused:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 50, "only {checked} agent confs");
    assert!(fwmark >= 1, "no firewall-mark service among the {checked} agent confs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn feedbackd_agent_check_refuses_a_broken_agent_conf_with_its_line() {
    let agent = agent();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real-agent-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the directory");
    let t = topologies::named("tutorial-nat").expect("a built-in topology").topology();
    let good = topologies::export::agent_conf(&t, "rs1", Target::default()).expect("rs1 serves");
    let path = dir.join("rs1.conf");
    std::fs::write(&path, &good).expect("writing");
    assert_eq!(check(&agent, &path), (true, String::new()), "{good}");
    let line = |text: &str, what: &str| text.lines().position(|l| l.contains(what)).expect(what) + 1;
    // What a careless hand makes of it: a port of 0 without a mark, a misspelt key, no
    // director.
    for (broken, want) in [
        (good.replace("port = 80", "port = 0"), "is only for a firewall-mark service"),
        (good.replace("forwarding", "forwardin"), "unknown key `forwardin`"),
        (good.replace("director = ", "# director = "), "no `director = ADDRESS` line"),
    ] {
        std::fs::write(&path, &broken).expect("writing");
        let (ok, err) = check(&agent, &path);
        assert!(!ok, "accepted:\n{broken}");
        assert!(err.contains(want), "{err}");
        if let Some(l) = ["port = 0", "forwardin ="].iter().find(|w| broken.contains(**w)) {
            assert!(err.contains(&format!("rs1.conf:{}:", line(&broken, l))), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
