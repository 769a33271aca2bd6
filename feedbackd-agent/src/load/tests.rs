//! Every module against a fake `/proc` tree in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use feedbackd_proto::conf::{ConfError, ServiceConf, parse};

use super::cpuload::{Counters, Cpuload, parse_stat};
use super::*;

mod prequal;

/// A temporary directory, removed on drop.
struct FakeRoot {
    path: PathBuf,
}

impl FakeRoot {
    fn new(name: &str) -> FakeRoot {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("lvsim-load-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        FakeRoot { path }
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn sources(&self) -> Sources {
        Sources { proc_root: self.path.clone() }
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The one service of a config whose service block (line 2) has `lines` after it: the
/// first module line is line 3.
fn service_with(first: &str, lines: &str) -> ServiceConf {
    let text = format!("director = 10.0.0.1\n{first}\n{lines}");
    parse(&text).unwrap_or_else(|e| panic!("{e}")).services.remove(0)
}

fn http(lines: &str) -> ServiceConf {
    service_with("service = http", lines)
}

/// The service's only module, built against `root`.
fn module(root: &FakeRoot, line: &str) -> Module {
    let service = http(&format!("module = {line}\n"));
    Module::from_conf(&service.modules[0], &service, &root.sources()).unwrap_or_else(|e| panic!("{e}"))
}

fn conf_error(root: &FakeRoot, service: &ServiceConf) -> ConfError {
    match ServiceLoad::from_conf(service, &root.sources()) {
        Ok(load) => panic!("built, but should not have: {load:?}"),
        Err(e) => e,
    }
}

fn load_error(module: &mut Module) -> LoadError {
    match module.sample() {
        Ok(reading) => panic!("measured, but should not have: {reading:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn close(got: f64, expected: f64) {
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}

/// A reading's capacity and its one metric.
#[track_caller]
fn reading(module: &mut Module, capacity: f64, metric: (&str, f64)) {
    let r = module.sample().unwrap_or_else(|e| panic!("{e}"));
    close(r.capacity, capacity);
    assert_eq!(r.metrics.len(), 1, "{r:?}");
    assert_eq!(r.metrics[0].0, metric.0);
    close(r.metrics[0].1, metric.1);
}

// ---- cpuload ----

const STAT_HEAD: &str = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\n";

fn stat(cpu_line: &str) -> String {
    format!("{cpu_line}\ncpu0 1 1 1 1 1 1 1 1 0 0\nintr 12345\nctxt 999\n")
}

#[test]
fn cpuload_measures_deltas_between_samples() {
    let root = FakeRoot::new("cpuload");
    root.write("stat", STAT_HEAD);
    let mut m = module(&root, "cpuload.so");
    assert_eq!(m.name(), "cpuload");
    // Since boot: total 1000, idle + iowait 800.
    reading(&mut m, 0.8, ("cpu_busy", 0.2));
    // Δtotal 1000 (guest 500 + 500 is inside user and nice, not added), Δidle 500.
    root.write("stat", &stat("cpu  400 0 200 1100 200 50 50 0 500 500"));
    reading(&mut m, 0.5, ("cpu_busy", 0.5));
    // Counters went backwards (reset): the previous reading stands, the new base is taken.
    root.write("stat", &stat("cpu  10 0 10 70 10"));
    reading(&mut m, 0.5, ("cpu_busy", 0.5));
    // From the new base: Δtotal 200, Δidle 50.
    root.write("stat", &stat("cpu  160 0 10 120 10"));
    reading(&mut m, 0.25, ("cpu_busy", 0.75));
    // No time passed: the previous reading stands.
    reading(&mut m, 0.25, ("cpu_busy", 0.75));
}

#[test]
fn cpuload_advance_edge_cases() {
    let mut m = Cpuload::new(Path::new("/nonexistent"));
    assert!(m.advance(Counters { idle: 0, total: 0 }).is_err(), "no time at all and no previous reading");
    close(m.advance(Counters { idle: 50, total: 100 }).unwrap(), 0.5);
    // iowait went backwards while the total moved: Δidle clamps to 0, all busy.
    close(m.advance(Counters { idle: 40, total: 200 }).unwrap(), 1.0);
    // Δidle larger than Δtotal (inconsistent counters): clamps to all idle.
    close(m.advance(Counters { idle: 400, total: 300 }).unwrap(), 0.0);
    // A wrap from near u64::MAX.
    let mut m = Cpuload::new(Path::new("/nonexistent"));
    close(m.advance(Counters { idle: u64::MAX / 4, total: u64::MAX / 2 }).unwrap(), 0.5);
    close(m.advance(Counters { idle: 1, total: 2 }).unwrap(), 0.5);
    close(m.advance(Counters { idle: 1, total: 12 }).unwrap(), 1.0);
}

#[test]
fn cpuload_parses_old_and_new_stat_lines() {
    assert_eq!(parse_stat("cpu 1 2 3 4\n").unwrap(), Counters { idle: 4, total: 10 });
    assert_eq!(parse_stat("cpu  1 2 3 4 5 6 7 8 9 10\n").unwrap(), Counters { idle: 9, total: 36 });
    assert!(parse_stat("cpu0 1 2 3 4\n").unwrap_err().contains("no `cpu ` line"));
    assert!(parse_stat("cpu 1 2 3\n").unwrap_err().contains("expected at least 4"));
    assert!(parse_stat("cpu 1 2 x 4\n").unwrap_err().contains("\"x\" is not a counter"));
}

#[test]
fn cpuload_errors() {
    let root = FakeRoot::new("cpuload-errors");
    let mut m = module(&root, "cpuload");
    let e = load_error(&mut m);
    assert_eq!(e.module, "cpuload");
    assert!(e.message.contains("reading") && e.message.contains("stat"), "{e}");
    root.write("stat", "garbage\n");
    assert!(load_error(&mut m).message.contains("no `cpu ` line"));
}

// ---- loadavg ----

#[test]
fn loadavg_per_cpu() {
    let root = FakeRoot::new("loadavg");
    root.write("stat", "cpu  1 1 1 1\ncpu0 1 1 1 1\ncpu1 1 1 1 1\ncpu2 1 1 1 1\ncpu3 1 1 1 1\nintr 1\n");
    root.write("loadavg", "2.00 1.00 0.50 1/100 12345\n");
    let mut m = module(&root, "loadavg");
    let r = m.sample().unwrap();
    close(r.capacity, 0.5);
    assert_eq!(r.metrics, [("load1".to_owned(), 2.0), ("load1_per_cpu".to_owned(), 0.5)]);
    let mut m = module(&root, "loadavg.so cpus=8");
    close(m.sample().unwrap().capacity, 0.75);
    root.write("loadavg", "9.50 1.00 0.50 1/100 12345\n");
    close(module(&root, "loadavg").sample().unwrap().capacity, 0.0);
}

#[test]
fn loadavg_errors() {
    let root = FakeRoot::new("loadavg-errors");
    root.write("loadavg", "1.0 1.0 1.0 1/1 1\n");
    root.write("stat", "cpu 1 1 1 1\n");
    assert!(load_error(&mut module(&root, "loadavg")).message.contains("no `cpuN` line"));
    root.write("loadavg", "nan 1.0 1.0\n");
    assert!(load_error(&mut module(&root, "loadavg cpus=2")).message.contains("not a load average"));
    let e = conf_error(&root, &http("module = loadavg cpus=0\n"));
    assert_eq!(e.line, 3);
    assert!(e.message.contains("module loadavg: cpus=\"0\" is not a whole number between 1 and"), "{e}");
}

// ---- memory ----

#[test]
fn memory_available_fraction() {
    let root = FakeRoot::new("memory");
    root.write("meminfo", "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n");
    reading(&mut module(&root, "memory"), 0.25, ("mem_available", 0.25));
    root.write("meminfo", "MemTotal:        1000 kB\nMemFree:          100 kB\n");
    assert!(load_error(&mut module(&root, "memory")).message.contains("no MemAvailable line"));
    root.write("meminfo", "MemTotal: 0 kB\nMemAvailable: 0 kB\n");
    assert!(load_error(&mut module(&root, "memory")).message.contains("MemTotal is 0"));
}

// ---- psi ----

#[test]
fn psi_windows() {
    let root = FakeRoot::new("psi");
    root.write(
        "pressure/cpu",
        "some avg10=12.50 avg60=40.00 avg300=80.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    reading(&mut module(&root, "psi"), 0.875, ("cpu_pressure", 0.125));
    reading(&mut module(&root, "psi window=60"), 0.6, ("cpu_pressure", 0.4));
    reading(&mut module(&root, "psi.so window=300"), 0.2, ("cpu_pressure", 0.8));
    let e = conf_error(&root, &http("module = psi window=5\n"));
    assert_eq!((e.line, e.message.as_str()), (3, "module psi: window=\"5\" is not 10, 60 or 300 (seconds)"));
}

#[test]
fn psi_missing_file() {
    let root = FakeRoot::new("psi-missing");
    let e = load_error(&mut module(&root, "psi"));
    assert_eq!(e.module, "psi");
    assert!(e.message.contains("pressure/cpu"), "{e}");
}

// ---- connections ----

const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0 100 0 0 10 0
   1: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 12 1 0 20 4 30 10 -1
   2: 0A000005:0050 0A000009:D432 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0 20 4 30 10 -1
   3: 0100007F:D433 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 14 1 0 20 4 30 10 -1
   4: 0100007F:0050 0100007F:D434 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   5: 0100007F:1F90 0100007F:D435 01 00000000:00000000 00:00000000 00000000     0        0 15 1 0 20 4 30 10 -1
";

const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:E000 01 00000000:00000000 00:00000000 00000000     0        0 16 1 0 20 4 30 10 -1
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0 100 0 0 10 0
";

#[test]
fn connections_count_established_on_the_local_port() {
    let root = FakeRoot::new("connections");
    root.write("net/tcp", TCP);
    // Without tcp6 (IPv6 disabled): rows 1 and 2; not the listener, not a remote port 80,
    // not TIME_WAIT, not port 8080.
    reading(&mut module(&root, "connections max=10"), 0.8, ("connections", 2.0));
    root.write("net/tcp6", TCP6);
    reading(&mut module(&root, "connections max=10"), 0.7, ("connections", 3.0));
    reading(&mut module(&root, "connections"), 0.997, ("connections", 3.0));
    reading(&mut module(&root, "connections max=2"), 0.0, ("connections", 3.0));
    let service = service_with("service = alt", "port = 8080\nmodule = connections max=4\n");
    let mut m = Module::from_conf(&service.modules[0], &service, &root.sources()).unwrap();
    reading(&mut m, 0.75, ("connections", 1.0));
}

#[test]
fn connections_udp_counts_every_bound_socket() {
    let root = FakeRoot::new("connections-udp");
    root.write(
        "net/udp",
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 21 2 0 0
  101: 0A000005:0035 0A000009:C001 01 00000000:00000000 00:00000000 00000000     0        0 22 2 0 0
  102: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 23 2 0 0
",
    );
    let service = service_with("service = dns", "protocol = udp\nmodule = connections max=20\n");
    let mut m = Module::from_conf(&service.modules[0], &service, &root.sources()).unwrap();
    reading(&mut m, 0.9, ("connections", 2.0));
}

#[test]
fn connections_errors() {
    let root = FakeRoot::new("connections-errors");
    let e = load_error(&mut module(&root, "connections"));
    assert!(e.message.contains("net/tcp"), "{e}");
    let sctp = service_with("service = sig", "protocol = sctp\nport = 2905\nmodule = connections\n");
    let e = conf_error(&root, &sctp);
    assert_eq!(e.line, 5);
    assert!(e.message.contains("module connections: counts TCP and UDP sockets; SCTP"), "{e}");
    assert_eq!(conf_error(&root, &http("module = connections max=0\n")).line, 3);
    // A firewall-mark service's port 0 has no sockets to count.
    let mark = service_with("service = mark", "fwmark = 7\nport = 0\nmodule = connections\n");
    let e = conf_error(&root, &mark);
    assert_eq!(e.line, 5);
    assert!(e.message.contains("module connections: counts sockets on the service's port"), "{e}");
}

// ---- command ----

#[test]
fn command_percentage_and_fraction() {
    let root = FakeRoot::new("command");
    reading(&mut module(&root, "command path=\"echo 25\""), 0.25, ("command_value", 25.0));
    reading(&mut module(&root, "command path=\"echo '  0.4 spare'\" scale=1"), 0.4, ("command_value", 0.4));
    reading(&mut module(&root, "command path=\"echo 150\""), 1.0, ("command_value", 150.0));
    reading(&mut module(&root, "command path=\"echo -5\""), 0.0, ("command_value", -5.0));
    // More output than a pipe holds: it is drained, and the first word counts.
    reading(&mut module(&root, "command path=\"yes 7 | head -c 1000000\""), 0.07, ("command_value", 7.0));
}

#[test]
fn command_prints_garbage() {
    let root = FakeRoot::new("command-garbage");
    let e = load_error(&mut module(&root, "command path=\"echo hello world\""));
    assert_eq!(e.module, "command");
    assert_eq!(e.message, "the output of \"echo hello world\" starts with \"hello\", not a number");
    let e = load_error(&mut module(&root, "command path=true"));
    assert!(e.message.contains("is empty, expected a number"), "{e}");
    let e = load_error(&mut module(&root, "command path=\"echo inf\""));
    assert!(e.message.contains("not a number"), "{e}");
}

#[test]
fn command_times_out() {
    let root = FakeRoot::new("command-timeout");
    // The shell forks sleep: the whole process group is killed.
    let e = load_error(&mut module(&root, "command path=\"sleep 30; echo 50\" timeout_ms=100"));
    assert_eq!(e.message, "timed out after 100 ms; killed");
    let e = load_error(&mut module(&root, "command path=\"sleep 30 & echo 50\" timeout_ms=200"));
    assert!(e.message.contains("kept its output open past the 200 ms timeout"), "{e}");
}

#[test]
fn command_fails() {
    let root = FakeRoot::new("command-fails");
    let e = load_error(&mut module(&root, "command path=\"echo; echo oops >&2; exit 3\""));
    assert!(e.message.contains("exit status: 3") && e.message.contains("oops"), "{e}");
}

#[test]
fn command_settings() {
    let root = FakeRoot::new("command-settings");
    let cases = [
        ("module = command", "module command: needs `path=...`"),
        ("module = command path=", "module command: needs `path=...`"),
        (
            "module = command path=true timeout=5",
            "module command: unknown setting `timeout`; it takes path, timeout_ms, scale",
        ),
        ("module = command path=true timeout_ms=0", "module command: timeout_ms=\"0\" is not a whole number"),
        ("module = command path=true scale=0", "module command: scale=\"0\" is not a positive number"),
    ];
    for (line, expected) in cases {
        let e = conf_error(&root, &http(&format!("\n{line}\n")));
        assert_eq!(e.line, 4, "{line}");
        assert!(e.message.starts_with(expected), "{line}: {e}");
    }
}

// ---- file ----

#[test]
fn file_values() {
    let root = FakeRoot::new("file");
    let path = root.write("spare", "42\n");
    let line = format!("file path=\"{}\"", path.display());
    reading(&mut module(&root, &line), 0.42, ("file_value", 42.0));
    root.write("spare", "0.9 of the pool\n");
    reading(&mut module(&root, &format!("{line} scale=1")), 0.9, ("file_value", 0.9));
    root.write("spare", "abc\n");
    assert!(load_error(&mut module(&root, &line)).message.ends_with("starts with \"abc\", not a number"));
    root.write("spare", "  \n");
    assert!(load_error(&mut module(&root, &line)).message.ends_with("is empty, expected a number"));
}

#[test]
fn file_and_command_lines_as_metrics() {
    let root = FakeRoot::new("file-metrics");
    let path = root.write("spare", "40\nqps 120.5\n\n  eps   0.25 \n");
    let line = format!("file path=\"{}\"", path.display());
    let r = module(&root, &format!("{line} metrics=yes")).sample().unwrap_or_else(|e| panic!("{e}"));
    close(r.capacity, 0.4);
    let expected = [("file_value", 40.0), ("qps", 120.5), ("eps", 0.25)];
    assert_eq!(r.metrics, expected.map(|(n, v)| (n.to_owned(), v)).to_vec());
    // Without metrics=yes, only the first word counts (as before).
    reading(&mut module(&root, &line), 0.4, ("file_value", 40.0));
    let r = module(&root, "command path=\"printf '25\\nqps 60\\n'\" metrics=yes").sample().unwrap();
    close(r.capacity, 0.25);
    assert_eq!(r.metrics, vec![("command_value".to_owned(), 25.0), ("qps".to_owned(), 60.0)]);

    let cases = [
        ("40\nqps\n", "line 2: expected `name value`, got \"qps\""),
        ("40\nqps 1 2\n", "line 2: expected `name value`"),
        ("40\nQPS 1\n", "line 2: \"QPS\" is not a metric name"),
        ("40\nqps 1\nqps 2\n", "line 3: metric \"qps\" given twice"),
        ("40\nfile_value 1\n", "line 2: metric \"file_value\" given twice"),
        ("40\neps inf\n", "line 2: eps \"inf\" is not a number"),
    ];
    for (text, expected) in cases {
        root.write("spare", text);
        let e = load_error(&mut module(&root, &format!("{line} metrics=yes")));
        assert!(e.message.contains(expected), "{text:?}: {e}");
    }
    let many: String = (0..32).map(|i| format!("m{i} {i}\n")).collect();
    root.write("spare", &format!("40\n{many}"));
    let e = load_error(&mut module(&root, &format!("{line} metrics=yes")));
    assert!(e.message.contains("line 33: more than 31 metrics"), "{e}");
    let e = conf_error(&root, &http(&format!("module = {line} metrics=1\n")));
    assert_eq!((e.line, e.message.as_str()), (3, "module file: metrics=\"1\" is neither yes nor no"));
}

#[test]
fn file_missing() {
    let root = FakeRoot::new("file-missing");
    let path = root.path.join("nope");
    let e = load_error(&mut module(&root, &format!("file path=\"{}\"", path.display())));
    assert_eq!(e.module, "file");
    assert!(e.message.starts_with(&format!("reading {}", path.display())), "{e}");
    let e = conf_error(&root, &http("module = file scale=1\n"));
    assert_eq!((e.line, e.message.as_str()), (3, "module file: needs `path=...`"));
}

// ---- settings, services ----

#[test]
fn unknown_settings_name_the_module_line() {
    let root = FakeRoot::new("settings");
    let cases = [
        ("cpuload.so x=1", "module cpuload: unknown setting `x`; it takes no settings"),
        ("memory x=1", "module memory: unknown setting `x`; it takes no settings"),
        ("loadavg cpu=2", "module loadavg: unknown setting `cpu`; it takes cpus"),
        ("psi win=10", "module psi: unknown setting `win`; it takes window"),
        ("connections limit=5", "module connections: unknown setting `limit`; it takes max"),
        ("file path=/x size=1", "module file: unknown setting `size`; it takes path, scale, metrics"),
    ];
    for (line, expected) in cases {
        let e = conf_error(&root, &http(&format!("module = cpuload\nmodule = {line}\n")));
        assert_eq!((e.line, e.message.as_str()), (4, expected));
    }
}

#[test]
fn no_module_means_cpuload() {
    let root = FakeRoot::new("service-default");
    root.write("stat", STAT_HEAD);
    let mut load = ServiceLoad::from_conf(&http(""), &root.sources()).unwrap();
    assert_eq!(load.modules.iter().map(Module::name).collect::<Vec<_>>(), ["cpuload"]);
    let (capacity, metrics, errors) = load.sample();
    close(capacity.unwrap(), 0.8);
    assert_eq!(metrics, [("cpu_busy".to_owned(), 0.2)]);
    assert!(errors.is_empty());
}

/// A service with three `file` modules reading 0.5, 0.8 and 1 (scale=1), combined `how`.
fn three_files(root: &FakeRoot, how: &str) -> ServiceLoad {
    let mut lines = format!("combine = {how}\n");
    for (name, value) in [("a", "0.5"), ("b", "0.8"), ("c", "1")] {
        let path = root.write(name, value);
        lines.push_str(&format!("module = file path=\"{}\" scale=1\n", path.display()));
    }
    ServiceLoad::from_conf(&http(&lines), &root.sources()).unwrap()
}

#[test]
fn combine_min_mean_product() {
    let root = FakeRoot::new("combine");
    for (how, expected) in [("min", 0.5), ("mean", (0.5 + 0.8 + 1.0) / 3.0), ("product", 0.4)] {
        let (capacity, metrics, errors) = three_files(&root, how).sample();
        close(capacity.unwrap(), expected);
        let names: Vec<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["file_value", "file_value_2", "file_value_3"]);
        assert!(errors.is_empty());
    }
}

#[test]
fn a_failing_module_withholds_the_capacity() {
    let root = FakeRoot::new("failing");
    root.write("meminfo", "MemTotal: 100 kB\nMemAvailable: 50 kB\n");
    let mut load = ServiceLoad::from_conf(
        &http("module = memory\nmodule = cpuload\nmodule = memory\n"),
        &root.sources(),
    )
    .unwrap();
    let (capacity, metrics, errors) = load.sample();
    assert_eq!(capacity, None);
    assert_eq!(metrics, [("mem_available".to_owned(), 0.5), ("mem_available_2".to_owned(), 0.5)]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].module, "cpuload");
    assert!(errors[0].to_string().starts_with("cpuload: reading "), "{}", errors[0]);
}

#[test]
fn combine_of_nothing_is_none() {
    assert_eq!(combine(Combine::Mean, &[]), None);
    assert_eq!(combine(Combine::Product, &[0.5, f64::NAN]), Some(0.0));
}
