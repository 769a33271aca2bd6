//! Every keepalived.conf lvsim exports, checked by the real keepalived (Debian 12's
//! 2.2.7): `keepalived --config-test=LOG -f FILE` must exit 0 and log nothing. keepalived
//! logs every warning and error of its configuration reader to LOG (an unknown keyword, a
//! `protocol` in a firewall-mark service, a missing interface, "no protocol set -
//! defaulting to UDP") and writes nothing when the file is clean; a warning alone makes
//! it exit 5, but a missing file exits 0 with a line in LOG, so both are checked.
//!
//! keepalived looks up the interfaces a file names (`interface`, `dev`): each check runs
//! in a private network namespace (`unshare --net`, with a user namespace when not root)
//! holding dummy interfaces of those names, as the director would have, so the result
//! does not depend on this machine. keepalived -t reads only the file and writes only the
//! log (it opens nothing under /etc/keepalived when given `-f`).
//!
//! Deliberately broken files must fail the same check, and the importer must read each
//! exported file back into the services and checks it was written from.
//!
//! In the VM (tests/vm/lvsim-vm: Debian's kernel with IPVS, the host's /usr), keepalived's
//! checker process runs each file for real and the kernel's table (`ipvsadm -S -n`,
//! `--thresholds`, `--timeout`) must be the topology's: what `-t` cannot show. The VM test
//! fails when the VM cannot start; `LVSIM_SKIP_VM=1` skips it, with a notice.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::deploy::{Case, every_export};
use topologies::export::Target;
use topologies::import::{Source, import};
use topologies::{Service, Topology};

/// keepalived's verdict on a file: its exit status and what it logged.
struct Verdict {
    status: Option<i32>,
    log: String,
}

impl Verdict {
    fn clean(&self) -> bool {
        self.status == Some(0) && self.log.trim().is_empty()
    }
}

fn keepalived_present() {
    match Command::new("keepalived").arg("--version").output() {
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Keepalived v") => {}
        Ok(o) => panic!(
            "keepalived --version: {}: install Debian package keepalived",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("keepalived not found ({e}): install Debian package keepalived"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real_keepalived").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

/// The interface names a keepalived.conf gives (`interface X`, `dev X`, track_interface
/// entries, lvs_sync_daemon's interface).
fn interfaces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_track = false;
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('!')) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let mut found: Vec<&str> = Vec::new();
        match w.as_slice() {
            ["interface", i] | ["lvs_sync_daemon", i, ..] => found.push(i),
            ["track_interface", "{"] => in_track = true,
            ["}"] if in_track => in_track = false,
            [i] if in_track => found.push(i),
            _ => {}
        }
        if let Some(k) = w.iter().position(|x| *x == "dev") {
            found.extend(w.get(k + 1));
        }
        for i in found {
            if !out.iter().any(|o| o == i) {
                out.push(i.to_owned());
            }
        }
    }
    out
}

/// `keepalived --config-test` on `file`, in a namespace with the interfaces it names.
fn config_test(file: &Path) -> Verdict {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    config_test_with(file, &interfaces(&text))
}

/// `keepalived --config-test` on `file`, in a namespace with these interfaces only.
fn config_test_with(file: &Path, ifaces: &[String]) -> Verdict {
    let log = file.with_extension("log");
    let _ = std::fs::remove_file(&log);
    let mut script = String::from("set -e\n");
    for i in ifaces {
        // A dummy interface, or a bridge where the kernel has no dummy driver.
        script.push_str(&format!(
            "ip link add '{i}' type dummy 2>/dev/null || ip link add '{i}' type bridge\n"
        ));
    }
    script.push_str("set +e\nexec keepalived --config-test=\"$1\" -f \"$2\"\n");
    // As root a network namespace is enough; otherwise a user namespace gives the right
    // to make interfaces in it (keepalived's -t itself needs no privilege).
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let ns: &[&str] = if root { &["--net"] } else { &["--user", "--map-root-user", "--net"] };
    let out = Command::new("unshare")
        .args(ns)
        .args(["sh", "-c", &script, "sh"])
        .arg(&log)
        .arg(file)
        .output()
        .expect("running unshare (util-linux)");
    let mut logged = std::fs::read_to_string(&log).unwrap_or_default();
    logged.push_str(&String::from_utf8_lossy(&out.stdout));
    logged.push_str(&String::from_utf8_lossy(&out.stderr));
    Verdict { status: out.status.code(), log: logged }
}

#[test]
fn keepalived_accepts_every_exported_file_without_a_warning() {
    keepalived_present();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in every_export(Target::default()) {
        let names = case.files_where(|f| f.starts_with("keepalived") && f.ends_with(".conf")).len();
        if names == 0 {
            continue;
        }
        let dir = scratch(&case.name.replace('/', "_"));
        for path in case.write_to(&dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("keepalived") && name.ends_with(".conf")) {
                continue;
            }
            checked += 1;
            let v = config_test(&path);
            if !v.clean() {
                let text = std::fs::read_to_string(&path).unwrap();
                failures.push(format!(
                    "{} {name}: exit {:?}, keepalived said:\n{}\n--- the file:\n{text}",
                    case.name, v.status, v.log
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} file(s) refused or warned about:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(checked >= 30, "only {checked} keepalived files checked");
}

const GOOD: &str = "global_defs {
    router_id lvs
}

virtual_server 10.0.1.1 80 {
    delay_loop 5
    lb_algo wlc
    lb_kind DR
    protocol TCP

    real_server 10.0.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
            connect_port 80
        }
    }
}
";

#[test]
fn a_broken_file_fails_the_check() {
    keepalived_present();
    let dir = scratch("broken");
    let good = dir.join("good.conf");
    std::fs::write(&good, GOOD).unwrap();
    let v = config_test(&good);
    assert!(v.clean(), "the reference file is clean: exit {:?}\n{}", v.status, v.log);
    let broken = [
        (
            "unknown-keyword",
            GOOD.replace("    delay_loop 5\n", "    delay_loop 5\n    health_every 5\n"),
            "Unknown keyword",
        ),
        (
            "real-server-outside",
            format!("{GOOD}real_server 10.0.0.12 80 {{\n    weight 1\n}}\n"),
            "Unknown keyword 'real_server'",
        ),
        ("bad-lb-algo", GOOD.replace("lb_algo wlc", "lb_algo fastest"), "lb_algo"),
        ("protocol-in-fwmark", GOOD.replace("10.0.1.1 80 {", "fwmark 7 {"), "protocol"),
        (
            "missing-interface",
            format!(
                "{GOOD}vrrp_instance VI_1 {{\n    interface nosuch0\n    virtual_router_id 5\n    priority 100\n    virtual_ipaddress {{\n        10.0.1.1/24\n    }}\n}}\n"
            ),
            "nosuch0",
        ),
    ];
    for (name, text, words) in broken {
        let f = dir.join(format!("{name}.conf"));
        std::fs::write(&f, &text).unwrap();
        // The director has no interface nosuch0.
        let v = config_test_with(&f, &[]);
        assert!(!v.clean(), "{name}: keepalived accepted\n{text}");
        assert!(v.log.contains(words) || name == "bad-lb-algo", "{name}: {:?} not in\n{}", words, v.log);
    }
    let v = config_test(&dir.join("absent.conf"));
    assert!(!v.clean(), "a missing file is not clean (keepalived exits 0 but logs it)");
}

/// A service as keepalived runs it: what must survive export and import.
fn essence(t: &Topology, s: &Service) -> String {
    let addr = |name: &str| t.servers.iter().find(|x| x.name == name).map(|x| x.address);
    let reals: Vec<String> = s
        .real_servers
        .iter()
        .map(|r| {
            format!(
                "{:?}:{} {:?} w{} {}-{}",
                addr(&r.server),
                s.real_port(r),
                r.forwarding,
                r.weight,
                r.upper,
                r.lower
            )
        })
        .collect();
    // A firewall-mark service whose real servers have no port: the file cannot name a
    // port to check; keepalived has no SCTP checker. The file says so in a comment, and
    // keepalived checks nothing there.
    let sctp = s.fwmark.is_none() && s.protocol == lvs_ipvs::Protocol::Sctp;
    let no_port = sctp || s.port == 0 && s.real_servers.iter().all(|r| s.real_port(r) == 0);
    let check = s.check.as_ref().filter(|_| !no_port).map(|c| {
        let cfg = c.config();
        // ldirectord's retry waits for the next interval; keepalived's file says so with
        // delay_before_retry = the interval: compare the keepalived-visible values.
        let fb = c.fallback.as_ref().map(|f| (addr(&f.server), f.forwarding));
        format!(
            "{:?} every {:?} timeout {:?} retries {} {:?} fallback {fb:?}",
            std::mem::discriminant(&cfg.kind),
            cfg.interval,
            cfg.timeout,
            cfg.retries,
            cfg.on_failure
        )
    });
    let proto = if s.fwmark.is_some() { None } else { Some(s.protocol) };
    format!(
        "{proto:?} {:?}:{} fwm {:?} {:?} p {:?} m {:?} {:?} [{}] {check:?}",
        s.vip,
        s.port,
        s.fwmark,
        s.scheduler,
        s.persistence_s.map(|p| p.round()),
        s.netmask,
        s.flags,
        reals.join(", ")
    )
}

#[test]
fn the_importer_reads_back_the_services_and_checks_keepalived_runs() {
    let mut compared = 0;
    for case in every_export(Target::default()) {
        let files = case.files_where(|f| f.starts_with("keepalived") && f.ends_with(".conf"));
        if files.is_empty() {
            continue;
        }
        let sources: Vec<Source> =
            files.iter().map(|(n, t)| Source { path: n.clone(), text: t.clone() }).collect();
        let imported = import(&sources, None).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let back = imported.topology.expand().unwrap_or_else(|e| panic!("{}: imported: {e}", case.name));
        compare(&case, &back);
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} cases");
}

fn compare(case: &Case, back: &Topology) {
    let src = &case.topology;
    // One file per director with a VRRP group, else every director in one file.
    for d in &src.directors {
        let b = back
            .directors
            .iter()
            .find(|x| x.name == d.name)
            .unwrap_or_else(|| panic!("{}: no director {}", case.name, d.name));
        assert_eq!(b.address, d.address, "{} {}", case.name, d.name);
        let want: Vec<String> = d
            .services
            .iter()
            .filter(|s| s.vip.is_some() || s.fwmark.is_some())
            .map(|s| essence(src, s))
            .collect();
        let got: Vec<String> = b.services.iter().map(|s| essence(back, s)).collect();
        assert_eq!(got, want, "{} {}", case.name, d.name);
    }
    let group = |t: &Topology| t.ha.as_ref().and_then(|h| h.config(&t.directors).ok());
    if let (Some(a), Some(b)) =
        (group(src).filter(|g| matches!(g.failover, sim_core::ha::Failover::Vrrp(_))), group(back))
    {
        let sync = |g: &sim_core::ha::HaConfig| {
            g.sync.as_ref().map(|s| (s.mode, s.threshold, s.period, s.version, s.max_len))
        };
        let vrrp = |g: &sim_core::ha::HaConfig| match &g.failover {
            sim_core::ha::Failover::Vrrp(v) => Some((
                v.advert_int,
                v.priorities.clone(),
                v.preempt,
                v.preempt_delay,
                v.interfaces.clone(),
                v.version,
            )),
            _ => None,
        };
        assert_eq!(vrrp(&b), vrrp(&a), "{}: VRRP", case.name);
        assert_eq!(sync(&b), sync(&a), "{}: sync", case.name);
    }
}

fn lvsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("spawning lvsim")
}

#[test]
fn lvsim_import_turns_an_exported_vrrp_pair_into_a_scenario_that_validates() {
    let d = scratch("cli");
    let exp = d.join("exp");
    let out = lvsim(&["export", "scenarios/library/ha/vrrp-failover.ron", "-q", "-o", exp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let scenario = d.join("back.ron");
    let out =
        lvsim(&["import", exp.to_str().unwrap(), "--format", "keepalived", "-o", scenario.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&scenario).unwrap();
    for want in ["Vrrp(", "\"lb1\"", "\"lb2\"", "address: \"10.0.0.2\"", "vip: Some(\"192.0.2.10\")"] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    let out = lvsim(&["validate", scenario.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 in a fail-over group"));
    // A file with an error: its line and column, and nothing written.
    let bad = d.join("keepalived.conf");
    std::fs::write(&bad, "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    real_server 10.0.0.2 80 {\n        weight 1099511627776\n    }\n}\n").unwrap();
    let out = lvsim(&["import", bad.to_str().unwrap(), "-o", d.join("bad.ron").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keepalived.conf:4:16:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.join("bad.ron").exists());
}

/// The services of the directors a keepalived file is for (`keepalived.conf`: every
/// director; `keepalived-NAME.conf`: NAME).
fn services_of<'t>(t: &'t Topology, file: &str) -> Vec<&'t Service> {
    let name = file.strip_prefix("keepalived-").and_then(|n| n.strip_suffix(".conf"));
    t.directors
        .iter()
        .filter(|d| name.is_none_or(|n| n == d.name))
        .flat_map(|d| &d.services)
        .filter(|s| s.vip.is_some() || s.fwmark.is_some())
        .collect()
}

/// A service's label, as `ipvsadm -S -n` keys it.
fn label(key: &lvs_ipvs::ServiceKey) -> String {
    match key {
        lvs_ipvs::ServiceKey::Addr { protocol, addr, port } => format!("{} {addr}:{port}", protocol.name()),
        lvs_ipvs::ServiceKey::Fwmark { mark, .. } => format!("fwm {mark}"),
    }
}

/// Whether keepalived checks the service's real servers (then they come and go with the
/// checks, and only their addresses are compared).
fn checked(s: &Service) -> bool {
    let no_port = s.port == 0 && s.real_servers.iter().all(|r| s.real_port(r) == 0);
    let sctp = s.fwmark.is_none() && s.protocol == lvs_ipvs::Protocol::Sctp;
    s.check.is_some() && !no_port && !sctp
}

/// What keepalived put in the kernel's table (`ipvsadm -S -n`, and `ipvsadm -L -n
/// --thresholds`, since ipvsadm 1.31's `-S` leaves the thresholds out) against the
/// topology.
fn compare_table(t: &Topology, file: &str, save: &str, thresholds: &str) -> Result<(), String> {
    use lvs_ipvs::ipvsadm::{Command as Ipvsadm, default_netmask, parse_line, parse_threshold_rows};
    let mut services = std::collections::BTreeMap::new();
    let mut dests: std::collections::BTreeMap<String, Vec<lvs_ipvs::DestConfig>> = Default::default();
    // Both listings walk the table in the same order: the rows follow the -a lines.
    let mut rows = parse_threshold_rows(thresholds)?.into_iter();
    for line in save.lines() {
        match parse_line(line).map_err(|e| format!("{line}: {e:?}"))? {
            Some(Ipvsadm::AddService(k, c)) => {
                services.insert(label(&k), (k, c));
            }
            Some(Ipvsadm::AddDest(k, mut d)) => {
                let row = rows.next().ok_or_else(|| format!("no --thresholds row for {line}"))?;
                if (row.addr.ip(), row.addr.port()) != (d.addr, d.port) {
                    return Err(format!("--thresholds row {:?} is not {line}", row.addr));
                }
                (d.u_threshold, d.l_threshold) = (row.u_threshold, row.l_threshold);
                dests.entry(label(&k)).or_default().push(d);
            }
            other => return Err(format!("unexpected line {line}: {other:?}")),
        }
    }
    let want = services_of(t, file);
    let addr = |name: &str| t.servers.iter().find(|x| x.name == name).map(|x| x.address);
    for s in &want {
        let l = match (s.fwmark, s.vip) {
            (Some(m), _) => format!("fwm {m}"),
            (None, Some(v)) => format!("{} {v}:{}", s.protocol.name(), s.port),
            (None, None) => unreachable!("filtered"),
        };
        let (k, c) = services.get(&l).ok_or_else(|| format!("{file}: no service {l} in\n{save}"))?;
        let flags = s.flags.iter().fold(0, |b, f| b | f.bit());
        let mask = match s.netmask {
            Some(std::net::IpAddr::V4(m)) => u32::from(m),
            Some(std::net::IpAddr::V6(m)) => u128::from(m).leading_ones(),
            None => default_netmask(k),
        };
        let persistence = s.persistence_s.map(|p| p.round() as u64);
        let got = (
            c.scheduler,
            c.flags.0 & !lvs_ipvs::SvcFlags::PERSISTENT,
            c.persistence.map(|d| d.as_secs_f64().round() as u64),
        );
        if got != (s.scheduler, flags, persistence) || (persistence.is_some() && c.netmask != mask) {
            return Err(format!(
                "{file}: service {l}: keepalived made {got:?} /{}, the topology says {:?} /{mask}",
                c.netmask,
                (s.scheduler, flags, persistence)
            ));
        }
        let row = |a: std::net::IpAddr, port: u16, f: lvs_ipvs::Forwarding, w: u32, u: u32, l: u32| {
            format!("{a}:{port} {f:?} w{w} x{u} y{l}")
        };
        let mut expected: Vec<String> = s
            .real_servers
            .iter()
            .map(|r| row(addr(&r.server).unwrap(), s.real_port(r), r.forwarding, r.weight, r.upper, r.lower))
            .collect();
        expected.sort();
        let got_rows = dests.get(&l).map(Vec::as_slice).unwrap_or_default();
        let mut got: Vec<String> = got_rows
            .iter()
            .map(|d| row(d.addr, d.port, d.fwd, d.weight, d.u_threshold, d.l_threshold))
            .collect();
        got.sort();
        if !checked(s) && got != expected {
            return Err(format!(
                "{file}: real servers of {l}: keepalived made {got:?}, the topology says {expected:?}"
            ));
        }
        let known: Vec<std::net::IpAddr> = s
            .real_servers
            .iter()
            .filter_map(|r| addr(&r.server))
            .chain(s.check.as_ref().and_then(|c| c.fallback.as_ref()).and_then(|f| addr(&f.server)))
            .collect();
        if let Some(d) = got_rows.iter().find(|d| !known.contains(&d.addr)) {
            return Err(format!("{file}: {l} has a real server the topology does not: {d:?}"));
        }
    }
    if services.len() != want.len() {
        return Err(format!(
            "{file}: {} services in the table, {} in the topology:\n{save}",
            services.len(),
            want.len()
        ));
    }
    Ok(())
}

/// The VM script's part for one file: keepalived's checker process alone (`-C`: it
/// programs IPVS; VRRP is not started) on a cleared table with the kernel's timeouts;
/// wait (bounded) until its `services` are in the table, save the table, stop it.
fn vm_step(work: &Path, k: usize, conf: &Path, services: usize) -> String {
    format!(
        "ipvsadm -C; ipvsadm --set 900 120 300\n\
         keepalived -n -l -C -G -R --pid={w}/{k}.pid --checkers_pid={w}/{k}.cpid -f {p} > {w}/{k}.log 2>&1 &\n\
         pid=$!; i=0\n\
         while [ $i -lt 300 ] && [ \"$(ipvsadm -S -n | grep -c '^-A')\" -lt {services} ]; do i=$((i+1)); sleep 0.05; done\n\
         ipvsadm -S -n > {w}/{k}.save; ipvsadm -L -n --thresholds > {w}/{k}.thr; ipvsadm -L -n --timeout > {w}/{k}.to\n\
         kill $pid; wait $pid\n",
        w = work.display(),
        p = conf.display(),
    )
}

/// The IPVS timeouts keepalived set (`ipvsadm -L --timeout`) against the first director
/// the file is for (its `lvs_timeouts`; the kernel's 900 120 300 for those not given).
fn compare_timeouts(t: &Topology, file: &str, listing: &str) -> Result<(), String> {
    let name = file.strip_prefix("keepalived-").and_then(|n| n.strip_suffix(".conf"));
    let Some(d) = t.directors.iter().find(|d| name.is_none_or(|n| n == d.name)) else { return Ok(()) };
    let s = |v: Option<f64>, kernel: u64| v.map_or(kernel, |v| (v.round() as u64).max(1));
    let want = format!(
        "Timeout (tcp tcpfin udp): {} {} {}",
        s(d.timeouts.tcp_s, 900),
        s(d.timeouts.tcpfin_s, 120),
        s(d.timeouts.udp_s, 300)
    );
    if listing.trim() == want {
        Ok(())
    } else {
        Err(format!("{file}: {:?}, the topology says {want:?}", listing.trim()))
    }
}

#[test]
fn keepalived_programs_the_ipvs_table_each_file_describes() {
    keepalived_present();
    let work = scratch("vm");
    let mut script = String::from("set -u\n");
    let mut runs = Vec::new();
    let cases = every_export(Target::default());
    for (c, case) in cases.iter().enumerate() {
        for (name, text) in case.files_where(|f| f.starts_with("keepalived") && f.ends_with(".conf")) {
            let k = runs.len();
            let conf = work.join(format!("{k}.conf"));
            std::fs::write(&conf, text).unwrap();
            script.push_str(&vm_step(&work, k, &conf, services_of(&case.topology, name).len()));
            runs.push((c, name.clone(), k));
        }
    }
    // A file that says another scheduler and weight than its topology must not pass.
    let nat = cases.iter().position(|c| c.name == "named/tutorial-nat").expect("tutorial-nat");
    let (_, text) = cases[nat].files_where(|f| f == "keepalived.conf")[0];
    let mutant = runs.len();
    let conf = work.join(format!("{mutant}.conf"));
    std::fs::write(&conf, text.replacen("lb_algo rr", "lb_algo wrr", 1).replacen("weight 1", "weight 2", 1))
        .unwrap();
    script.push_str(&vm_step(&work, mutant, &conf, 1));
    let Some(_log) = common::vm::in_vm("real_keepalived's IPVS check", &work, &script, 600, "") else {
        return;
    };
    let read =
        |k: usize, ext: &str| std::fs::read_to_string(work.join(format!("{k}.{ext}"))).unwrap_or_default();
    let mut failures = Vec::new();
    for (c, file, k) in &runs {
        let t = &cases[*c].topology;
        let r = compare_table(t, file, &read(*k, "save"), &read(*k, "thr"))
            .and_then(|()| compare_timeouts(t, file, &read(*k, "to")));
        if let Err(e) = r {
            failures.push(format!("{}: {e}\n--- keepalived's log:\n{}", cases[*c].name, read(*k, "log")));
        }
    }
    assert!(failures.is_empty(), "{} file(s):\n{}", failures.len(), failures.join("\n\n"));
    assert!(runs.len() >= 30, "only {} files", runs.len());
    let e =
        compare_table(&cases[nat].topology, "keepalived.conf", &read(mutant, "save"), &read(mutant, "thr"));
    assert!(e.is_err_and(|e| e.contains("Wrr")), "the mutant's table passed:\n{}", read(mutant, "save"));
}
