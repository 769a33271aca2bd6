//! Mutated configurations: whatever `--check`'s validation ([`setup::build_from_text`])
//! accepts, the daemon can run. For every accepted mutant the set-up (which rehearses a
//! connection: the Register, the largest Report, the Goodbye), a measurement of its
//! modules and the daemon's timers are built without a panic; nothing refused panics
//! either. The seeds are the shipped example and the shapes the grammar's tests use;
//! the mutations duplicate, drop, swap and insert lines and put boundary values in place
//! of values. Then 40 accepted mutants run as the daemon itself (directors pointed at the
//! test's silent loopback listeners) until SIGTERM: each exits 0 without a panic.
//! Deterministic: the seed is printed with any failure.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use feedbackd_agent::daemon;
use feedbackd_agent::load::Sources;
use feedbackd_agent::setup::{self, Options};
use feedbackd_proto::conf::ModuleKind;
use feedbackd_proto::wire;

const SEED: u64 = 0x15_a6e7_c0f5;
const MUTANTS: usize = 3000;

/// splitmix64: a portable, seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Commands the mutants may run when sampled (anything else is built but not run).
const SAFE_COMMANDS: [&str; 4] = ["echo 50", "printf '0.5\\nqps 120\\neps 0.5\\n'", "exit 3", "echo"];

/// Values put in place of a value: bounds, overflows, wrong types.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "31",
    "32",
    "33",
    "64",
    "65",
    "255",
    "256",
    "1000",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "nan",
    "inf",
    "-0",
    "0x10",
    "",
    "\"\"",
    "\"",
    "é",
    "web 1",
    "50ms",
    "49ms",
    "1h",
    "61m",
    "24h",
    "25h",
    "0.000000001s",
    "18446744073.709551615",
    "5124095h",
    "99999999999999999999h",
    "3600000",
    "3600001",
    "1.5s",
    "127.0.0.1",
    "127.0.0.1:0",
    "[::1]:7878",
    "::1",
    "lvs1",
    "10.0.0.300",
    "TCP",
    "UDP",
    "SCTP",
    "NAT",
    "DR",
    "TUN",
    "min",
    "mean",
    "product",
    "yes",
    "no",
];

/// Lines inserted anywhere.
const LINES: &[&str] = &[
    "director = 127.0.0.1:7",
    "director = 127.0.0.1:8",
    "director = lvs1.example.org",
    "director = [::1]:7878",
    "service = http",
    "service = s9\n  port = 9",
    "service = dns\n  protocol = udp\n  module = connections max=10",
    "agent_id = rs1",
    "agent_id = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "interval = 50ms",
    "interval = 1h",
    "interval_ms = 3600000",
    "master_timeout = 24h",
    "master_timeout = 100ms",
    "key_file = KEY",
    "port = 443",
    "fwmark = 0xffffffff",
    "vip = 2001:db8::1",
    "address = 10.0.0.5",
    "forwarding = DR",
    "combine = product",
    "module = cpuload.so",
    "module = memory",
    "module = loadavg cpus=4096",
    "module = psi window=300",
    "module = connections max=4294967295",
    "module = file path=/nonexistent scale=1e-300 metrics=yes",
    "module = file path=/dev/zero",
    "module = command path=\"echo 50\" timeout_ms=3600000 scale=1e308 metrics=yes",
    "module = command path=\"printf '0.5\\nqps 120\\neps 0.5\\n'\" scale=1 metrics=yes",
    "module = command path=\"exit 3\" timeout_ms=1",
];

/// The seeds: the shipped example and the grammar tests' shapes. `KEY` is a key file.
fn seeds() -> Vec<String> {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/examples/feedbackd-agent.conf");
    let many =
        |n: usize| (0..n).map(|i| format!("service = s{i}\n  port = {}\n", 1000 + i)).collect::<String>();
    vec![
        std::fs::read_to_string(example).unwrap().replace("192.168.6.", "127.0.0."),
        "director = 127.0.0.1\nservice = http\n\tprotocol = TCP\n\tport = 80\n\tmodule = cpuload.so\n\
         \tforwarding = NAT\n"
            .to_owned(),
        format!("director = 127.0.0.1:7\nagent_id = rs1\ninterval = 500ms\nkey_file = KEY\n{}", many(32)),
        format!(
            "{}service = http\n{}",
            (1..=16).map(|i| format!("director = 127.0.0.{i}\n")).collect::<String>(),
            "  module = cpuload\n".repeat(16)
        ),
        "agent_id = rs-1\nmaster_timeout = 10s\ninterval_ms = 750\ndirector = [::1]:7878\n\
         service = https\n  vip = 2001:db8::1\n  address = 2001:db8::2\n  forwarding = TUN\n\
         module = connections max=2000\n  module = memory\n  module = loadavg cpus=2\n  combine = mean\n\
         service = fw\n  fwmark = 0x10\n  port = 80\n  module = psi window=60\n\
         module = file path=/proc/loadavg scale=1 metrics=no\n\
         module = command path=\"echo 50\" timeout_ms=500 scale=100 metrics=yes\n"
            .to_owned(),
    ]
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..1 + rng.below(4) {
        if lines.is_empty() {
            lines.push((*rng.pick(LINES)).to_owned());
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                let times = *rng.pick(&[1, 2, 16, 17, 33]);
                let line = lines[i].clone();
                lines.splice(i..i, std::iter::repeat_n(line, times));
            }
            1 => {
                lines.remove(i);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => lines.insert(i, (*rng.pick(LINES)).to_owned()),
            4 => {
                // A new value after `=`.
                if let Some((key, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{key}= {}", rng.pick(VALUES));
                }
            }
            5 => {
                // A module setting's value.
                let setting = *rng.pick(&["timeout_ms", "scale", "max", "cpus", "window", "metrics", "path"]);
                lines[i] = format!("{} {setting}={}", lines[i], rng.pick(VALUES));
            }
            _ => {
                // Many services at once, around the limit.
                let n = *rng.pick(&[31usize, 32, 33, 40]);
                lines.extend((0..n).map(|k| format!("service = m{k}\n port = {}", 2000 + k)));
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Whether every command module of `s` runs one of [`SAFE_COMMANDS`].
fn runs_only_safe_commands(s: &setup::Setup) -> bool {
    s.conf.services.iter().flat_map(|svc| &svc.modules).all(|m| {
        m.kind != ModuleKind::Command
            || m.settings.iter().any(|(k, v)| k == "path" && SAFE_COMMANDS.contains(&v.as_str()))
    })
}

/// The daemon's use of an accepted set-up, short of sockets: its timers, and one
/// measurement when every command it would run is a safe one.
fn exercise(s: &mut setup::Setup, rt: &tokio::runtime::Runtime) {
    assert!((1..=wire::MAX_SERVICES).contains(&s.config.services.len()));
    assert!(wire::valid_agent_id(&s.config.agent_id));
    let interval = std::time::Duration::from_nanos(s.config.interval.as_nanos());
    let timeout = std::time::Duration::from_nanos(s.config.master_timeout.as_nanos());
    rt.block_on(async {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        assert!(tokio::time::timeout(timeout, std::future::ready(())).await.is_ok());
        // Armed (polled once), as the director loop's sleep_until arms it.
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        tokio::select! {
            biased;
            () = &mut sleep => panic!("a {timeout:?} sleep ended at once"),
            () = std::future::ready(()) => {}
        }
    });
    let clock = daemon::Clock(std::time::Instant::now());
    let _ = clock.instant(feedbackd_proto::Time(0) + s.config.master_timeout);
    if runs_only_safe_commands(s) {
        let sample = daemon::measure(&mut s.loads, None);
        assert_eq!(sample.capacity.len(), s.config.services.len());
        assert!(sample.metrics.len() <= wire::MAX_METRICS);
    }
}

#[test]
fn whatever_check_accepts_the_daemon_sets_up_without_a_panic() {
    let dir = std::env::temp_dir().join(format!("fbd-conf-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("agent.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let opts = Options {
        config: PathBuf::from("mutant.conf"),
        agent_id: None,
        key_file: None,
        sources: Sources::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seeds: Vec<String> = seeds().iter().map(|s| s.replace("KEY", key.to_str().unwrap())).collect();
    let mut rng = Rng(SEED);
    let (mut accepted, mut refused) = (0usize, 0usize);
    for n in 0..MUTANTS {
        let seed = rng.pick(&seeds).clone();
        let text = mutate(&mut rng, &seed);
        let text = text.replace("KEY", key.to_str().unwrap());
        let outcome = catch_unwind(AssertUnwindSafe(|| match setup::build_from_text(&opts, &text) {
            Ok(mut s) => {
                exercise(&mut s, &rt);
                true
            }
            Err(e) => {
                assert!(e.starts_with("mutant.conf"), "an error names the file: {e}");
                false
            }
        }));
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("mutant {n} (seed {SEED:#x}) panicked:\n{text}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("{accepted} accepted, {refused} refused of {MUTANTS} mutants (seed {SEED:#x})");
    // Both sides are exercised, or the mutations are too tame or too wild.
    assert!(accepted >= MUTANTS / 10 && refused >= MUTANTS / 10, "{accepted} accepted, {refused} refused");
}

/// Every `director` line of `text` pointed at one of `ports` on loopback, in order (the
/// test's own listeners: no other process is reached, no name is resolved).
fn on_loopback(text: &str, ports: &[u16]) -> String {
    let mut next = ports.iter();
    text.lines()
        .map(|l| match l.trim_start().to_ascii_lowercase().starts_with("director") && l.contains('=') {
            true => next.next().map_or_else(|| l.to_owned(), |p| format!("director = 127.0.0.1:{p}")),
            false => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Runs the daemon on `conf` until it has started its tasks, then SIGTERM: it must exit 0
/// without a panic.
fn run_daemon(conf: &std::path::Path, text: &str) {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_feedbackd-agent"))
        .arg("--config")
        .arg(conf)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains(" reporting ")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("the daemon did not start:\n{}\n--- conf ---\n{text}", seen.join("\n")),
        }
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop on SIGTERM:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    };
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let log = seen.join("\n");
    assert!(status.success(), "exit {status}:\n{log}\n--- conf ---\n{text}");
    assert!(!log.contains("panicked"), "{log}\n--- conf ---\n{text}");
}

#[test]
fn accepted_mutants_run_as_daemons_and_stop_cleanly() {
    const RUNS: usize = 40;
    let dir = std::env::temp_dir().join(format!("fbd-conf-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("agent.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // Listeners that never answer: the agent connects and waits for a Welcome.
    let listeners: Vec<std::net::TcpListener> =
        (0..16).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
    let conf = dir.join("mutant.conf");
    let opts = Options { config: conf.clone(), agent_id: None, key_file: None, sources: Sources::default() };
    let seeds: Vec<String> = seeds().iter().map(|s| s.replace("KEY", key.to_str().unwrap())).collect();
    let mut rng = Rng(SEED ^ 0xdae_0000);
    let mut ran = 0;
    for _ in 0..2000 {
        let seed = rng.pick(&seeds).clone();
        let text = on_loopback(&mutate(&mut rng, &seed).replace("KEY", key.to_str().unwrap()), &ports);
        let Ok(s) = setup::build_from_text(&opts, &text) else { continue };
        if !runs_only_safe_commands(&s) {
            continue;
        }
        std::fs::write(&conf, &text).unwrap();
        run_daemon(&conf, &text);
        ran += 1;
        if ran == RUNS {
            break;
        }
    }
    drop(listeners);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(ran, RUNS, "too few accepted mutants (seed {SEED:#x})");
}
