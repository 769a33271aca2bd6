//! `feedbackd-agent --check` (the unit's `ExecStartPre`) refuses, with the file and line,
//! what the daemon could not run, and accepts what it runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_feedbackd-agent"))
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fbd-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A key file readable by its owner only, as the agent requires.
fn write_key(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `n` services on ports 1001.., after one director line.
fn services_conf(n: usize) -> String {
    let mut text = "director = 127.0.0.1:7\nagent_id = rs1\n".to_owned();
    for i in 1..=n {
        text.push_str(&format!("service = s{i}\n  port = {}\n", 1000 + i));
    }
    text
}

/// Runs `--check` on `text`: (exit code, stderr).
fn check(dir: &Path, text: &str, extra: &[&str]) -> (i32, String) {
    let conf = dir.join("agent.conf");
    std::fs::write(&conf, text).unwrap();
    let out = agent().arg("--config").arg(&conf).arg("--check").args(extra).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn thirty_three_services_are_refused_by_check_with_the_line() {
    let dir = tmp_dir("33");
    let (code, err) = check(&dir, &services_conf(32), &[]);
    assert_eq!(code, 0, "32 services run: {err}");
    let (code, err) = check(&dir, &services_conf(33), &[]);
    assert_eq!(code, 2, "a bad configuration exits 2: {err}");
    // Lines 1-2 are global, each service takes two: the 33rd starts on line 67.
    let at = format!("{}:67: service: one service too many", dir.join("agent.conf").display());
    assert!(err.contains(&at) && err.contains("at most 32 services"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_refuses_bad_keys_and_ids_from_the_command_line_too() {
    let dir = tmp_dir("cli");
    let text = services_conf(1);
    let (code, err) = check(&dir, &text, &["--agent-id", &"x".repeat(65)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--agent-id") && err.contains("1 to 64 printable ASCII"), "{err}");
    let big = dir.join("big.key");
    write_key(&big, &"k".repeat(5000));
    let (code, err) = check(&dir, &text, &["--key-file", big.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("big.key: longer than 4096 bytes"), "{err}");
    // A device is refused for its mode before a byte is read.
    let (code, err) = check(&dir, &text, &["--key-file", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("are too open"), "{err}");
    let key = dir.join("agent.key");
    write_key(&key, "too short\n");
    let (code, err) = check(&dir, &text, &["--key-file", key.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 16"), "{err}");
    // A good key through --key-file (a systemd credential) is taken over key_file.
    write_key(&key, "0123456789abcdef0123456789abcdef\n");
    let with_missing = format!("key_file = {}\n{text}", dir.join("missing").display());
    let (code, err) = check(&dir, &with_missing, &["--key-file", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = check(&dir, &with_missing, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("key_file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
