//! Every `ldirectord*.cf` that `lvsim export` writes (every library scenario, built-in
//! topology and matrix case: tests/common/deploy.rs) is read by ldirectord's own
//! configuration reader with no warning, and broken files are refused.
//!
//! The reader is ldirectord itself: `ldirectord -d FILE status` runs `ld_init()`, which
//! calls `read_config()` on FILE (every check of the grammar, the addresses and ports
//! resolved, the warnings printed on standard error), then reports the daemon stopped
//! (exit status 3) without starting it or touching IPVS. `-d` keeps its log on standard
//! error instead of /var/log/ldirectord.log. A configuration error exits with status 2
//! and an `Error [PID] reading file FILE at line N: ...` line.
//!
//! ldirectord is Debian's package `ldirectord`; a missing one fails the test.

mod common;

use std::path::Path;
use std::process::Command;

use common::deploy::every_export;
use common::vm::TempDir;
use topologies::export::Target;

const LDIRECTORD: &str = "/usr/sbin/ldirectord";

fn require_ldirectord() {
    assert!(
        Path::new(LDIRECTORD).exists(),
        "{LDIRECTORD} is missing: install Debian's package `ldirectord` (apt-get install ldirectord)"
    );
}

/// What ldirectord said about a file: `Ok(())` when it read it with no warning, else its
/// exit status and messages.
fn read_config(file: &Path) -> Result<(), String> {
    let out = Command::new("timeout")
        .args(["60", LDIRECTORD, "-d"])
        .arg(file)
        .arg("status")
        .current_dir(file.parent().expect("a directory"))
        .env_remove("PERLIO")
        .output()
        .expect("running ldirectord");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("Warning") || l.starts_with("Error") || l.contains(" at /usr/sbin/ldirectord line ")
        })
        .collect();
    // 3: "ldirectord is stopped for FILE"; 0 would mean one is running with this name.
    let status = out.status.code();
    if complaints.is_empty() && matches!(status, Some(3) | Some(0)) && text.contains("ldirectord") {
        Ok(())
    } else {
        Err(format!("exit status {status:?}\n{}", if complaints.is_empty() { &text } else { "" })
            + &complaints.join("\n"))
    }
}

#[test]
fn ldirectord_reads_every_exported_file_without_a_warning() {
    require_ldirectord();
    let dir = TempDir::new("real-ldirectord-all");
    let (mut checked, mut failures) = (0, Vec::new());
    for (k, case) in every_export(Target::default()).into_iter().enumerate() {
        for (name, text) in case.files_where(|n| n.starts_with("ldirectord") && n.ends_with(".cf")) {
            let path = dir.0.join(format!("{k}-{name}"));
            std::fs::write(&path, text).expect("writing the file");
            checked += 1;
            if let Err(e) = read_config(&path) {
                failures.push(format!("{} {name}: {e}\n--- the file:\n{text}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} file(s) refused or warned about:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(checked >= 8, "only {checked} ldirectord files were exported");
    eprintln!("ldirectord read {checked} exported files without a warning");
}

/// A heartbeat pair's exported file, to break.
fn sample() -> String {
    let case = every_export(Target::default())
        .into_iter()
        .find(|c| c.name == "named/ha-nat-pair")
        .expect("the built-in ha-nat-pair topology");
    let (_, text) = case.files_where(|n| n == "ldirectord.cf")[0];
    text.clone()
}

#[test]
fn ldirectord_refuses_broken_files() {
    require_ldirectord();
    let good = sample();
    let dir = TempDir::new("real-ldirectord-broken");
    let path = dir.0.join("ldirectord.cf");
    std::fs::write(&path, &good).expect("writing");
    read_config(&path).unwrap_or_else(|e| panic!("the unbroken file must pass first: {e}\n{good}"));
    let cases = [
        ("a check type ldirectord does not know", "\tchecktype = connect\n", "\tchecktype = sometimes\n"),
        ("a real server outside any virtual service", "autoreload = no\n", "real = 192.168.6.4:80 masq 1\n"),
        ("a port out of range", "virtual = 172.17.60.201:80\n", "virtual = 172.17.60.201:99999\n"),
        (
            "a port that is no service name",
            "\treal = 192.168.6.4:80 masq 1\n",
            "\treal = 192.168.6.4:web80x masq 1\n",
        ),
        (
            "a forwarding method that does not exist",
            "\treal = 192.168.6.5:80 masq 1\n",
            "\treal = 192.168.6.5:80 nat 1\n",
        ),
        ("an IPv6 VIP in a virtual line", "virtual = 172.17.60.201:80\n", "virtual = [2001:db8::1]:80\n"),
        ("the deprecated checkcount (a warning)", "autoreload = no\n", "autoreload = no\ncheckcount = 2\n"),
    ];
    for (what, from, to) in cases {
        assert!(good.contains(from), "{what}: {from:?} is not in the sample\n{good}");
        let bad = good.replacen(from, to, 1);
        std::fs::write(&path, &bad).expect("writing");
        assert!(read_config(&path).is_err(), "{what}: ldirectord accepted\n{bad}");
    }
}
