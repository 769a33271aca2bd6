//! Every `ha.cf` and `haresources` that `lvsim export` writes (every library scenario,
//! built-in topology and matrix case: tests/common/deploy.rs) is accepted by heartbeat
//! 3.0.6 itself, started on each member, and broken files are refused.
//!
//! For each member node, heartbeat runs in private namespaces (`unshare --mount --net
//! --uts --pid --fork`): a temporary copy of /etc/ha.d holding the exported ha.cf,
//! haresources and ldirectord files plus an `authkeys` written here (mode 600) is
//! bind-mounted over /etc/ha.d, the host name is the node's, /run and
//! /var/lib/heartbeat are private tmpfs. `heartbeat -d` logs to standard error while it
//! reads ha.cf, authkeys and haresources; it prints "Configuration validated" then
//! "Heartbeat Hg Version" once all three passed, and daemonizes. The namespace's first
//! process then exits, which stops the daemon. A file passes when heartbeat got that far
//! with no `ERROR:`, no "must precede media statements" and no `WARN:` other than the
//! host's (core dump settings) and the logging daemon's (the exports log to syslog's
//! local0, not to ha_logd). Each resource haresources names must be a script of
//! /etc/ha.d/resource.d, where heartbeat's ResourceManager looks for it, and for each
//! `ldirectord::FILE` resource, `resource.d/ldirectord -d FILE status` in the namespace
//! must read /etc/ha.d/FILE (as the take-over's `start` would) and report it stopped.
//!
//! Needs root (namespaces, mounts) and Debian's packages `heartbeat` and `ldirectord`
//! (the `ldirectord` resource script); a missing one fails the test.

mod common;

use std::path::Path;
use std::process::Command;

use common::deploy::every_export;
use common::vm::TempDir;
use topologies::export::Target;

const HEARTBEAT: &str = "/usr/libexec/heartbeat/heartbeat";

/// The host's WARN lines that say nothing about the files.
const HOST_WARNINGS: [&str; 4] = [
    "Core dumps could be lost if multiple dumps occur",
    "Consider setting non-default value in /proc/sys/kernel/core_pattern",
    "Consider setting /proc/sys/kernel/core_uses_pid",
    "Logging daemon is disabled --enabling logging daemon is recommended",
];

fn require_heartbeat() {
    assert!(
        Path::new(HEARTBEAT).exists(),
        "{HEARTBEAT} is missing: install Debian's package `heartbeat` (apt-get install heartbeat)"
    );
    assert!(
        Path::new("/etc/ha.d/resource.d/ldirectord").exists(),
        "/etc/ha.d/resource.d/ldirectord is missing: install Debian's package `ldirectord`"
    );
}

/// A copy of the host's /etc/ha.d (harc, shellfuncs, rc.d, resource.d) with `files`
/// and an authkeys, in `dir`.
fn ha_d(dir: &Path, files: &[(&str, &str)]) {
    let _ = std::fs::remove_dir_all(dir);
    let ok = Command::new("cp").arg("-a").arg("/etc/ha.d").arg(dir).status().expect("running cp");
    assert!(ok.success(), "copying /etc/ha.d");
    for name in ["ha.cf", "haresources", "authkeys", "ldirectord.cf"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("writing an exported file");
    }
    let keys = dir.join("authkeys");
    std::fs::write(&keys, "auth 1\n1 sha1 lvsim-real-heartbeat-test\n").expect("writing authkeys");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 authkeys");
}

/// The network interfaces ha.cf's media lines name (`bcast IFACE...`, `mcast IFACE ...`,
/// `ucast IFACE ...`): the director has them; the namespace gets one veth each (a bridge
/// where the kernel has no veth), with an IPv4 address and broadcast address as the bcast
/// plugin needs.
fn interfaces(ha_cf: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in ha_cf.lines() {
        let mut w = l.split_whitespace();
        let names: Vec<&str> = match w.next() {
            Some("bcast") => w.collect(),
            Some("mcast" | "ucast") => w.next().into_iter().collect(),
            _ => Vec::new(),
        };
        for n in names {
            if !out.iter().any(|x| x == n) {
                out.push(n.to_owned());
            }
        }
    }
    out
}

/// Starts heartbeat as `node` on the /etc/ha.d in `dir`: `Ok(())` when it validated
/// the configuration without a complaint, else why not and its log.
fn start(dir: &Path, node: &str) -> Result<(), String> {
    let ha_cf = std::fs::read_to_string(dir.join("ha.cf")).unwrap_or_default();
    let links: String = interfaces(&ha_cf)
        .iter()
        .enumerate()
        .map(|(k, i)| {
            format!(
                "ip link add '{i}' type veth peer name lvsim-peer{k} || ip link add '{i}' type bridge\n\
                 ip addr add 10.254.{k}.1/24 broadcast + dev '{i}'\nip link set '{i}' up\n"
            )
        })
        .collect();
    let res = std::fs::read_to_string(dir.join("haresources")).unwrap_or_default();
    let ld_files = ldirectord_resources(&res);
    // heartbeat runs `resource.d/ldirectord FILE start` on take-over; `status` reads the
    // same /etc/ha.d/FILE without starting it.
    let ld_checks: String = ld_files
        .iter()
        .map(|f| {
            format!(
                "\nrc=0; /etc/ha.d/resource.d/ldirectord -d '{f}' status >/dev/null 2>&1 || rc=$?\n\
                 echo \"lvsim-ldirectord-status {f} $rc\""
            )
        })
        .collect();
    let script = format!(
        "set -e
mount --bind '{dir}' /etc/ha.d
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib/heartbeat
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /var/lib/heartbeat/cores
hostname '{node}'
ip link set lo up
{links}timeout 30 {HEARTBEAT} -d 2>&1{ld_checks}",
        dir = dir.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .output()
        .expect("running unshare");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut why = Vec::new();
    if !out.status.success() {
        why.push(format!("exit status {:?}", out.status.code()));
    }
    for want in ["Configuration validated. Starting heartbeat", "Heartbeat Hg Version"] {
        if !log.contains(want) {
            why.push(format!("no {want:?}"));
        }
    }
    for f in &ld_files {
        let ok = ["0", "3"].iter().any(|rc| log.contains(&format!("lvsim-ldirectord-status {f} {rc}\n")));
        if !ok {
            why.push(format!("resource.d/ldirectord {f} status did not read /etc/ha.d/{f}"));
        }
    }
    for l in log.lines() {
        let warn = l.contains(" WARN: ") && !HOST_WARNINGS.iter().any(|w| l.contains(w));
        if l.contains(" ERROR: ") || l.contains("must precede media statements") || warn {
            why.push(l.to_owned());
        }
    }
    if why.is_empty() { Ok(()) } else { Err(format!("{}\n--- heartbeat's log:\n{log}", why.join("\n"))) }
}

/// The nodes of an ha.cf.
fn nodes(ha_cf: &str) -> Vec<&str> {
    ha_cf.lines().filter_map(|l| l.strip_prefix("node ")).map(str::trim).collect()
}

/// The files of haresources' `ldirectord::FILE` resources.
fn ldirectord_resources(haresources: &str) -> Vec<String> {
    let lines = haresources.lines().filter(|l| !l.trim_start().starts_with('#'));
    lines
        .flat_map(|l| l.split_whitespace())
        .filter_map(|r| r.strip_prefix("ldirectord::"))
        .map(str::to_owned)
        .collect()
}

/// Each resource of haresources that is not a script of /etc/ha.d/resource.d.
fn missing_scripts(haresources: &str) -> Vec<String> {
    let lines = haresources.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty());
    lines
        .flat_map(|l| l.split_whitespace().skip(1))
        .map(|r| r.split("::").next().unwrap_or(r).to_owned())
        .filter(|s| !Path::new("/etc/ha.d/resource.d").join(s).exists())
        .collect()
}

#[test]
fn heartbeat_starts_on_every_exported_ha_cf_and_haresources() {
    require_heartbeat();
    let tmp = TempDir::new("real-heartbeat-all");
    let (mut checked, mut failures) = (0, Vec::new());
    for case in every_export(Target::default()) {
        let files: Vec<(&str, &str)> = case
            .files_where(|n| n == "ha.cf" || n == "haresources" || n.starts_with("ldirectord"))
            .into_iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let Some(&(_, ha_cf)) = files.iter().find(|(n, _)| *n == "ha.cf") else { continue };
        let res = files.iter().find(|(n, _)| *n == "haresources").map_or("", |(_, t)| *t);
        let missing = missing_scripts(res);
        if !missing.is_empty() {
            failures
                .push(format!("{}: haresources names {missing:?}, not in /etc/ha.d/resource.d", case.name));
        }
        let dir = tmp.0.join("ha.d");
        ha_d(&dir, &files);
        for node in nodes(ha_cf) {
            checked += 1;
            if let Err(e) = start(&dir, node) {
                failures.push(format!(
                    "{} on {node}: {e}\n--- ha.cf:\n{ha_cf}--- haresources:\n{res}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} start(s) failed:\n{}", failures.len(), failures.join("\n\n"));
    assert!(checked >= 8, "only {checked} heartbeat starts");
    eprintln!("heartbeat validated the exported files on {checked} members");
}

#[test]
fn heartbeat_refuses_broken_files() {
    require_heartbeat();
    let case = every_export(Target::default())
        .into_iter()
        .find(|c| c.name == "library/ha/heartbeat-ipfail")
        .expect("the library's heartbeat-ipfail scenario");
    let get = |n: &str| case.files.iter().find(|(f, _)| f == n).map(|(_, t)| t.clone()).expect(n);
    let (ha_cf, res, ld) = (get("ha.cf"), get("haresources"), get("ldirectord.cf"));
    let tmp = TempDir::new("real-heartbeat-broken");
    let dir = tmp.0.join("ha.d");
    let try_with = |ha_cf: &str, res: Option<&str>| {
        let mut files = vec![("ha.cf", ha_cf), ("ldirectord.cf", ld.as_str())];
        files.extend(res.map(|r| ("haresources", r)));
        ha_d(&dir, &files);
        start(&dir, "lb1")
    };
    try_with(&ha_cf, Some(&res)).unwrap_or_else(|e| panic!("the unbroken files must pass first: {e}"));
    let line = |prefix: &str| ha_cf.lines().find(|l| l.starts_with(prefix)).expect(prefix).to_owned() + "\n";
    let cases = [
        ("ipfail where Debian 12 has none", line("respawn"), "respawn hacluster /usr/lib/heartbeat/ipfail\n"),
        ("a deadtime within two keepalives", line("deadtime"), "deadtime 2\n"),
        ("a directive heartbeat does not know", line("deadtime"), "deadtime 10\nfailover_time 3\n"),
        ("a udpport line (heartbeat 3.0.6 warns)", line("keepalive"), "udpport 694\nkeepalive 1\n"),
        ("no node line for this host", "node lb1\n".to_owned(), "node lb3\n"),
    ];
    for (what, from, to) in &cases {
        assert!(ha_cf.contains(from.as_str()), "{what}: {from:?} not in\n{ha_cf}");
        let bad = ha_cf.replacen(from.as_str(), to, 1);
        assert!(try_with(&bad, Some(&res)).is_err(), "{what}: heartbeat started on\n{bad}");
    }
    assert!(try_with(&ha_cf, None).is_err(), "heartbeat started without haresources");
    let bad = res.replacen("ldirectord::ldirectord.cf", "ldirectord::ldirectord-lb1.cf", 1);
    assert!(try_with(&ha_cf, Some(&bad)).is_err(), "haresources names a missing ldirectord file:\n{bad}");
    let bad = res.replacen("\nlb1 ", "\nlbX ", 1);
    assert!(try_with(&ha_cf, Some(&bad)).is_err(), "heartbeat started with a bad node in\n{bad}");
    assert_eq!(
        missing_scripts("lb1 LVSSyncDaemonSwap::master IPaddr2::10.0.0.1/24/eth0"),
        ["LVSSyncDaemonSwap"]
    );
}
