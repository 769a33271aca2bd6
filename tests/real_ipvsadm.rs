//! Every ipvsadm file lvsim exports, for every library scenario, built-in topology and
//! matrix case (tests/common/deploy.rs), against the real ipvsadm 1.31 and a real kernel
//! IPVS, in one boot of the VM (`tests/vm/lvsim-vm`, Debian's stock kernel):
//!
//! - the rules file (`ipvsadm[-NAME].rules`) is, after its `#` comment lines (which
//!   ipvsadm-restore drops), in ipvsadm -S's order with every setting (checked on the host
//!   through lvs-ipvs); in the VM, on a cleared table, `ipvsadm-restore < FILE` succeeds and
//!   prints nothing, and `ipvsadm -S -n` then prints the file's rules without the
//!   thresholds (which ipvsadm -S leaves out), and `ipvsadm -L -n --thresholds` shows them;
//! - the script (`ipvsadm[-NAME].sh`, made executable as `lvsim export` writes it): on a
//!   table holding one service the topology does not name, run twice: both runs succeed
//!   (sysctls, `--set`, the sync daemons on dummy interfaces of the names the scripts use),
//!   and after each, `ipvsadm -S -n` and `--thresholds` are the rules file's table plus that
//!   service, untouched;
//! - a broken rules file (an unknown scheduler) makes ipvsadm-restore fail; `ipvsadm -R`
//!   itself refuses a `#` line, and ipvsadm-restore an indented one (it drops only the
//!   lines that start with `#`), as docs/deployment.md says.
//!
//! A director whose files differ from another's only in comments is run once.
//!
//! If the VM cannot start, the test fails; `LVSIM_SKIP_VM=1` skips it explicitly on a
//! machine without qemu, with a notice.

mod common;

use std::path::{Path, PathBuf};

use common::deploy::every_export;
use lvs_ipvs::Ipvs;
use lvs_ipvs::ipvsadm::{self, ListFormat, ListOptions};
use topologies::export::Target;

/// A service no topology names: the scripts must leave it alone.
const FOREIGN: &str = "-A -t 192.0.2.254:9999 -s rr";

/// The guest's side: one line of `list` per director, `DIR SCRIPT RULES`.
const GUEST: &str = r#"set -u
for i in $(cat ifaces); do ip link add "$i" type dummy && ip link set "$i" up || exit 3; done
clear() {
    ipvsadm -C
    ipvsadm --stop-daemon master 2>/dev/null
    ipvsadm --stop-daemon backup 2>/dev/null
}
n=0
while read -r dir script rules; do
    clear
    ipvsadm-restore < "$dir/$rules" > "$dir/restore.out" 2>&1; echo $? > "$dir/restore.rc"
    ipvsadm -S -n > "$dir/restore.save"
    ipvsadm -L -n --thresholds > "$dir/restore.thr"
    clear
    ipvsadm -A -t 192.0.2.254:9999 -s rr
    for run in 1 2; do
        "$dir/$script" > "$dir/run$run.out" 2>&1; echo $? > "$dir/run$run.rc"
        ipvsadm -S -n > "$dir/run$run.save"
        ipvsadm -L -n --thresholds > "$dir/run$run.thr"
    done
    n=$((n + 1))
done < list
# What ipvsadm does with comments: `ipvsadm -R` alone refuses a `#` line, and an indented
# one passes ipvsadm-restore's `grep -v '^#'`.
for f in hash indented; do
    clear
    if [ $f = hash ]; then ipvsadm -R < comments/$f.rules; else ipvsadm-restore < comments/$f.rules; fi \
        > comments/$f.out 2>&1
    echo $? > comments/$f.rc
    ipvsadm -S -n > comments/$f.save
done
clear
echo "checked $n directors"
"#;

/// The guest runs the host's /usr: the tools the scripts and the test call must be there.
fn require_tools() {
    for (tool, package) in [
        ("/usr/sbin/ipvsadm", "ipvsadm"),
        ("/usr/sbin/ipvsadm-restore", "ipvsadm"),
        ("/usr/sbin/sysctl", "procps"),
        ("/usr/bin/bash", "bash"),
        ("/usr/sbin/ip", "iproute2"),
    ] {
        assert!(Path::new(tool).exists(), "{tool} is missing: install the Debian package {package}");
    }
}

/// One director's files in the work directory.
struct Director {
    /// `case director`, for messages.
    name: String,
    dir: PathBuf,
    /// The rules file's table, without the service the script must leave alone and with it:
    /// `ipvsadm -S -n` and `ipvsadm -L -n --thresholds` as the kernel must print them.
    want: [(String, String); 2],
    script: String,
    /// The rules file's name.
    rules: String,
}

/// The table of a rules file through lvs-ipvs (the rules as ipvsadm -R applies them);
/// `extra` rules are applied after.
fn model(rules: &str, extra: &[&str]) -> Result<Ipvs, String> {
    let mut ipvs = Ipvs::new(0);
    for line in rules.lines().chain(extra.iter().copied()) {
        let Some(cmd) = ipvsadm::parse_line(line).map_err(|e| format!("{line}: {e}"))? else { continue };
        ipvsadm::apply(&mut ipvs, &cmd).map_err(|e| format!("{line}: {e}"))?;
    }
    Ok(ipvs)
}

/// `ipvsadm -S -n` and `ipvsadm -L -n --thresholds` of a table.
fn listings(ipvs: &Ipvs) -> (String, String) {
    let thresholds = ListOptions { format: ListFormat::Thresholds, ..ListOptions::default() };
    (ipvsadm::save(ipvs, false), ipvsadm::listing(ipvs, &thresholds))
}

/// What the VM must show for a rules file; an error if the file is not its table in
/// ipvsadm -S's order with every setting.
fn expected(rules: &str) -> Result<[(String, String); 2], String> {
    let table = model(rules, &[])?;
    let body: String = rules.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    if ipvsadm::save(&table, true) != body {
        return Err(format!("not in ipvsadm -S order:\n{body}"));
    }
    Ok([listings(&table), listings(&model(rules, &[FOREIGN])?)])
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

/// Writes every case's ipvsadm files, one directory per director, and the guest's list.
fn write_cases(work: &Path) -> (Vec<Director>, Vec<String>) {
    let (mut directors, mut ifaces, mut list) = (Vec::new(), Vec::new(), String::new());
    // Files that differ only in comments run the same: each is tried once (the VM runs
    // each command many times slower than the host).
    let mut seen = std::collections::HashSet::new();
    let (mut files_total, mut cases) = (0, 0);
    for case in every_export(Target::default()) {
        let files = case.files_where(|f| f.starts_with("ipvsadm"));
        cases += usize::from(!files.is_empty());
        for pair in files.chunks(2) {
            let [(script, text), (rules, rules_text)] = pair else { panic!("{}: {files:?}", case.name) };
            assert!(script.ends_with(".sh") && rules.ends_with(".rules"), "{}: {script} {rules}", case.name);
            files_total += 2;
            let code = |t: &str| t.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
            if !seen.insert((code(text), code(rules_text))) {
                continue;
            }
            let dir = work.join(format!("d{}", directors.len()));
            std::fs::create_dir_all(&dir).expect("creating a director's directory");
            std::fs::write(dir.join(script), text).expect("writing the script");
            std::fs::write(dir.join(rules), rules_text).expect("writing the rules");
            executable(&dir.join(script));
            let words: Vec<&str> = text.split_whitespace().collect();
            for w in words.windows(2).filter(|w| w[0] == "--mcast-interface").map(|w| w[1]) {
                if !ifaces.iter().any(|i| i == w) {
                    ifaces.push(w.to_owned());
                }
            }
            list.push_str(&format!("{} {script} {rules}\n", dir.display()));
            let name = format!("{} {script}", case.name);
            let want = expected(rules_text).unwrap_or_else(|e| panic!("{name}: {e}"));
            directors.push(Director { name, dir, want, script: text.clone(), rules: rules.clone() });
        }
    }
    eprintln!(
        "real_ipvsadm: {files_total} files of {cases} cases; {} directors' script and rules differ beyond comments",
        directors.len()
    );
    std::fs::write(work.join("list"), list).expect("writing the list");
    std::fs::write(work.join("ifaces"), ifaces.join("\n")).expect("writing the interfaces");
    (directors, ifaces)
}

/// `chmod 0755`, as `lvsim export` leaves a script.
fn executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// What went wrong with one director in the VM, if anything.
fn verdict(d: &Director) -> Option<String> {
    let rc = |f: &str| read(&d.dir, f).trim().to_owned();
    if rc("restore.rc") != "0" || !read(&d.dir, "restore.out").is_empty() {
        return Some(format!(
            "ipvsadm-restore failed ({}): {}",
            rc("restore.rc"),
            read(&d.dir, "restore.out")
        ));
    }
    for (step, want) in [("restore", &d.want[0]), ("run1", &d.want[1]), ("run2", &d.want[1])] {
        if step != "restore" && rc(&format!("{step}.rc")) != "0" {
            return Some(format!("{step} of the script failed: {}", read(&d.dir, &format!("{step}.out"))));
        }
        let got = (read(&d.dir, &format!("{step}.save")), read(&d.dir, &format!("{step}.thr")));
        if &got != want {
            return Some(format!(
                "after {step}: ipvsadm -S -n is\n{}--thresholds\n{}instead of\n{}--thresholds\n{}",
                got.0, got.1, want.0, want.1
            ));
        }
    }
    None
}

/// A broken rules file (an unknown scheduler) and a failing script, appended to the list:
/// ipvsadm-restore must fail on the rules. Returns the directory and the rules.
fn write_broken(work: &Path, rules: &str) -> (PathBuf, String) {
    let broken = work.join("broken");
    std::fs::create_dir_all(&broken).expect("creating the broken case");
    let bad = rules.replacen(" -s ", " -s fastest -x ", 1);
    assert_ne!(bad, rules, "the first case has a service");
    std::fs::write(broken.join("ipvsadm.rules"), &bad).expect("writing the broken rules");
    std::fs::write(broken.join("ipvsadm.sh"), "#!/bin/sh\nexit 7\n").expect("writing a failing script");
    executable(&broken.join("ipvsadm.sh"));
    let mut list = read(work, "list");
    list.push_str(&format!("{} ipvsadm.sh ipvsadm.rules\n", broken.display()));
    std::fs::write(work.join("list"), list).expect("writing the list");
    (broken, bad)
}

/// `comments/hash.rules`: an exported rules file as it is (its `#` header) for `ipvsadm
/// -R`; `comments/indented.rules`: an indented comment after its first rule, for
/// ipvsadm-restore.
fn write_comment_cases(work: &Path, rules: &str) {
    let dir = work.join("comments");
    std::fs::create_dir_all(&dir).expect("creating the comments case");
    std::fs::write(dir.join("hash.rules"), rules).expect("writing");
    let first_rule = rules.lines().position(|l| !l.starts_with('#')).expect("a rule");
    let mut lines: Vec<&str> = rules.lines().collect();
    lines.insert(first_rule + 1, "  # an indented comment");
    std::fs::write(dir.join("indented.rules"), lines.join("\n") + "\n").expect("writing");
}

/// Both comment cases fail (ipvsadm exits 255 at the bad line), what is before the bad
/// line is in the table and nothing after it.
fn check_comment_cases(dir: &Path) {
    assert_eq!(read(dir, "hash.rc").trim(), "255", "ipvsadm -R took a # line: {}", read(dir, "hash.out"));
    assert_eq!(read(dir, "hash.save"), "", "ipvsadm -R stops at the first line, a comment");
    assert_eq!(read(dir, "indented.rc").trim(), "255", "{}", read(dir, "indented.out"));
    let rules = read(dir, "indented.rules");
    let first = rules.lines().find(|l| !l.starts_with('#')).expect("a rule");
    assert_eq!(read(dir, "indented.save"), format!("{first}\n"), "restored up to the indented comment");
}

#[test]
fn every_exported_rules_file_restores_and_every_script_runs_twice_to_the_same_table() {
    let work: PathBuf =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real-ipvsadm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("creating the work dir");
    require_tools();
    let (directors, ifaces) = write_cases(&work);
    assert!(directors.len() >= 30, "only {} directors", directors.len());
    assert!(directors.iter().any(|d| d.script.contains("--start-daemon")), "no sync daemon among them");
    assert!(directors.iter().any(|d| d.script.contains("ipvsadm --set ")), "no --set among them");
    assert!(!ifaces.is_empty());
    let first = read(&directors[0].dir, &directors[0].rules);
    let (broken, rules) = write_broken(&work, &first);
    write_comment_cases(&work, &first);

    let Some(log) = common::vm::in_vm("real_ipvsadm", &work, GUEST, 900, "") else { return };
    assert!(log.contains(&format!("checked {} directors", directors.len() + 1)), "{log}");
    assert_ne!(read(&broken, "restore.rc").trim(), "0", "ipvsadm-restore took\n{rules}");
    assert!(!read(&broken, "restore.out").is_empty(), "ipvsadm-restore said nothing");
    assert_eq!(read(&broken, "run1.rc").trim(), "7", "a failing script is seen failing");
    check_comment_cases(&work.join("comments"));
    let failures: Vec<String> =
        directors.iter().filter_map(|d| verdict(d).map(|why| format!("{}: {why}", d.name))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} directors:\n{}",
        failures.len(),
        directors.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&work);
}
