//! `lvsim` as installed: the built binary copied into an empty directory under the system's
//! temporary directory, far from any source tree, and run from an empty working directory.
//! The scenario library must come from the binary itself (`list`, `run quickstart`,
//! `validate` of every name); completions must be valid shell; man pages valid roff; a
//! closed pipe must end every subcommand quietly with status 0.
//!
//! Shells: the bash script is checked with `bash -n` and by running its completion
//! function. zsh, fish, elvish and PowerShell scripts are checked for structure, and with
//! their own parser when the shell is installed (`zsh -n`, `fish --no-execute`, `elvish
//! -compileonly`, pwsh's parser); when one is not, the test says so on stderr (it never
//! skips silently, but it does not fail either: Debian packages zsh, fish, elvish).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An installed copy of `lvsim`: `ROOT/bin/lvsim`, run from the empty `ROOT/work`.
struct Installed {
    root: PathBuf,
    bin: PathBuf,
    work: PathBuf,
}

impl Installed {
    fn new(name: &str) -> Installed {
        let root = std::env::temp_dir().join(format!("lvsim-install-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (bin_dir, work) = (root.join("bin"), root.join("work"));
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let bin = bin_dir.join("lvsim");
        // A hard link, not a copy: a copy is a file open for writing, and a test thread
        // forking at that moment keeps it open in its child until exec, so running the
        // copy fails with ETXTBSY. A link opens nothing. (A copy only across file systems.)
        if std::fs::hard_link(env!("CARGO_BIN_EXE_lvsim"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_lvsim"), &bin).expect("copying the binary");
        }
        for a in root.ancestors() {
            assert!(!a.join("Cargo.toml").exists(), "a source tree at {} near the install", a.display());
            assert!(!a.join("scenarios/library").exists(), "a library at {} near the install", a.display());
        }
        Installed { root, bin, work }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).current_dir(&self.work).env_remove("CARGO_MANIFEST_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawning the installed lvsim")
    }

    /// Runs and requires success; returns standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lvsim {args:?}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every library name, from the scenarios crate (what `build.rs` found in the directory).
fn names() -> Vec<&'static str> {
    let n: Vec<_> = scenarios::library::all().iter().map(|e| e.name).collect();
    assert!(n.len() >= 20 && n.contains(&"quickstart") && n.contains(&"ha/vrrp-failover"), "{n:?}");
    n
}

#[test]
fn list_shows_the_library_compiled_into_the_binary() {
    let i = Installed::new("list");
    let out = i.ok(&["list"]);
    for n in names() {
        assert!(out.lines().any(|l| l.trim_start().starts_with(&format!("{n} "))), "{n} missing:\n{out}");
    }
    assert!(!out.contains("(invalid"), "{out}");
    assert!(out.contains("tutorial-nat") && out.contains("wlc"), "{out}");
    // Nothing comes from (or points at) the tree the binary was built in.
    assert!(!out.contains(env!("CARGO_MANIFEST_DIR")), "{out}");
    let json = i.ok(&["list", "scenarios", "--json"]);
    assert!(!json.contains(env!("CARGO_MANIFEST_DIR")), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listed: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names());
    let vrrp = v.as_array().unwrap().iter().find(|s| s["name"] == "ha/vrrp-failover").unwrap();
    assert_eq!(vrrp["file"], "library:ha/vrrp-failover.ron");
    assert!(vrrp["description"].as_str().unwrap().contains("VRRP"), "{vrrp}");
}

#[test]
fn run_quickstart_by_name_writes_a_report() {
    let i = Installed::new("run");
    let out = i.ok(&["run", "quickstart", "-o", "out"]);
    assert!(out.contains("quickstart"), "{out}");
    let summary = std::fs::read_to_string(i.work.join("out/summary.json")).expect("summary.json");
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(v["scenario"], "quickstart");
    assert!(v["connections"]["completed"].as_u64().unwrap() > 5000, "{summary}");
    let page = std::fs::read_to_string(i.work.join("out/report.html")).expect("report.html");
    assert!(page.contains("<svg"), "the page has its charts");
    // Without -o: the default directory, under the working directory.
    // (A run with --set gets a directory of its own, named after its overrides.)
    i.ok(&["run", "tutorial-dr", "-q", "--set", "duration_s=5", "--set", "warmup_s=1"]);
    let dirs: Vec<String> = std::fs::read_dir(i.work.join("lvsim-out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        dirs.iter().any(|d| d.starts_with("tutorial-dr@")
            && d.contains("duration_s=5")
            && i.work.join("lvsim-out").join(d).join("summary.json").is_file()),
        "{dirs:?}"
    );
}

#[test]
fn every_library_name_validates_and_every_scenario_subcommand_takes_names() {
    let i = Installed::new("validate");
    let mut args = vec!["validate"];
    args.extend(names());
    let out = i.ok(&args);
    assert_eq!(out.lines().filter(|l| l.contains(": ok: ")).count(), names().len(), "{out}");
    // Every spelling of a name.
    i.ok(&[
        "validate",
        "ha/vrrp-failover.ron",
        "library:ha/vrrp-failover.ron",
        "scenarios/library/quickstart.ron",
    ]);
    // run, sweep and plan load by name: each refuses the scenario itself (run and plan:
    // the budget; sweep: no axes), naming it as a library source, not a missing file.
    for cmd in ["run", "sweep", "plan"] {
        let out = i.run(&[cmd, "capacity-planning", "--max-events", "10", "-o", "o"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("library:capacity-planning.ron"), "{cmd}: {err}");
        assert!(!err.contains("no such file"), "{cmd}: {err}");
    }
    assert!(!i.work.join("o").exists(), "nothing was run");
    let script = i.ok(&["export", "quickstart", "--stdout", "ipvsadm"]);
    assert!(script.contains("ipvsadm -A -t 172.17.60.201:80"), "{script}");
}

#[test]
fn a_path_wins_over_a_name_and_unknown_names_list_close_ones() {
    let i = Installed::new("names");
    // A file called `quickstart` in the working directory is what `quickstart` means.
    std::fs::write(i.work.join("quickstart"), "Scenario(\n  duration_s: \"soon\",\n)\n").unwrap();
    let out = i.run(&["validate", "quickstart"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("quickstart:2:"), "the file's error, not the library's: {err}");
    // Errors in a library scenario name it as library:PATH.
    let out = i.run(&["validate", "ha/vrrp-failover", "--set", "duration_s=\"x\""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("library:ha/vrrp-failover.ron:"), "{}", text(&out.stderr));
    for (typed, close) in [
        ("quickstrat", "quickstart"),
        ("ha/vrrp-failovr", "ha/vrrp-failover"),
        ("vrrp-failover", "ha/vrrp-failover"),
    ] {
        let out = i.run(&["run", typed, "-o", "x"]);
        assert_eq!(out.status.code(), Some(2), "{typed}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{typed}: no such file")), "{err}");
        assert!(err.contains("close names: ") && err.contains(close), "{typed}: {err}");
    }
    // A hostile name: long, with separators and dots; refused quickly, nothing written.
    let long = format!("../{}", "ab/".repeat(5000));
    let out = i.run(&["sweep", &long]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).len() < 20_000, "the error does not grow with the name's closeness search");
    assert_eq!(std::fs::read_dir(&i.work).unwrap().count(), 1, "only the file written above");
}

/// Every subcommand that prints, its standard output a pipe whose reader has already
/// gone: every write fails with EPIPE (no race: the read end is closed before the spawn).
#[test]
fn a_closed_pipe_ends_every_subcommand_quietly_with_status_0() {
    let i = Installed::new("pipe");
    std::fs::write(i.work.join("replay.txt"), "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m\nconnect -t 10.0.0.1:80 from 10.9.0.1 x 50\n").unwrap();
    let commands: &[&[&str]] = &[
        &["list"],
        &["list", "--json"],
        &["list", "schedulers"],
        &["run", "quickstart", "-o", "out"],
        &["run", "quickstart", "-o", "out-json", "--json"],
        &["validate", "quickstart", "ha/vrrp-failover"],
        &["validate", "quickstart", "--json"],
        &["export", "quickstart", "--stdout", "ipvsadm"],
        &["export", "quickstart", "-o", "exported"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["man"],
        &["man", "-o", "man"],
        &["ipvs", "replay", "replay.txt"],
        &["ipvs", "replay", "replay.txt", "--json"],
        &["--help"],
        &["run", "--help"],
        &["--version"],
    ];
    for args in commands {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        drop(read);
        let out = i
            .command(args)
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .expect("spawning lvsim");
        assert_eq!(out.status.code(), Some(0), "lvsim {args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "lvsim {args:?} printed on stderr");
    }
    // A verdict decided after printing is kept: validate checks every file and exits 2.
    let (read, write) = nix::unistd::pipe().expect("a pipe");
    drop(read);
    let out = i
        .command(&["validate", "quickstart", "nonexistent", "ha/vrrp-failover"])
        .stdout(Stdio::from(write))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nonexistent: no such file"), "{}", text(&out.stderr));
    // Standard error a closed pipe too (`2>&1 | head -1`): no panic (exit 101); an
    // invalid scenario still exits 2, a good run 0.
    for (args, code) in [
        (&["validate", "nonexistent", "quickstart"][..], 2),
        (&["run", "quickstrat"][..], 2),
        (&["run", "quickstart", "-o", "out-both"][..], 0),
        (&["list", "--json"][..], 0),
    ] {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        drop(read);
        let err = write.try_clone().unwrap();
        let out = i.command(args).stdout(Stdio::from(write)).stderr(Stdio::from(err)).status().unwrap();
        assert_eq!(out.code(), Some(code), "lvsim {args:?}");
    }
    // The report was written before the summary met the closed pipe.
    assert!(i.work.join("out/summary.json").is_file());
    // As a user types it: a real pipeline into head, pipefail on.
    let bin = i.bin.display().to_string();
    for cmd in ["list --json", "run quickstart -o out2", "man"] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; '{bin}' {cmd} | head -1"))
            .current_dir(&i.work)
            .output()
            .expect("bash");
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{cmd}");
        assert_eq!(text(&out.stdout).lines().count(), 1, "{cmd}");
    }
}

/// Whether a program is installed (on PATH).
fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The subcommands every completion script must offer.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "validate",
    "sweep",
    "plan",
    "merge",
    "status",
    "export",
    "import",
    "list",
    "compare",
    "show",
    "completions",
    "man",
    "ipvs",
];

#[test]
fn bash_completions_are_valid_and_complete_subcommands_and_values() {
    assert!(installed("bash"), "bash is needed (Debian package bash)");
    let i = Installed::new("bash");
    let script = i.ok(&["completions", "bash"]);
    let path = i.work.join("lvsim.bash");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(out.status.success(), "bash -n: {}", text(&out.stderr));
    // Run the completion function as bash's programmable completion would.
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
                 COMP_POINT=${{#COMP_LINE}}; _lvsim lvsim \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .current_dir(&i.work)
            .output()
            .unwrap();
        assert!(out.status.success(), "{words}: {}", text(&out.stderr));
        text(&out.stdout).lines().map(str::to_owned).collect()
    };
    let top = complete("lvsim ''", 1);
    for s in SUBCOMMANDS {
        assert!(top.iter().any(|w| w == s), "{s} not offered: {top:?}");
    }
    assert_eq!(complete("lvsim li", 1), ["list"]);
    let shells = complete("lvsim completions ''", 2);
    for s in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.iter().any(|w| w == s), "{s}: {shells:?}");
    }
    assert!(complete("lvsim list sch", 2).contains(&"schedulers".to_owned()));
    assert!(complete("lvsim run --re", 2).contains(&"--replications".to_owned()));
}

#[test]
fn zsh_fish_elvish_and_powershell_completions_parse_or_have_their_structure() {
    let i = Installed::new("shells");
    let write = |shell: &str| -> (PathBuf, String) {
        let s = i.ok(&["completions", shell]);
        let p = i.work.join(format!("lvsim.{shell}"));
        std::fs::write(&p, &s).unwrap();
        (p, s)
    };
    let (zsh, z) = write("zsh");
    assert!(z.starts_with("#compdef lvsim\n"), "{}", &z[..80]);
    assert!(z.contains("\n_lvsim() {") && z.contains("compdef _lvsim lvsim"));
    for s in SUBCOMMANDS {
        assert!(z.contains(&format!("\n'{s}:")), "zsh: {s}");
    }
    assert_eq!(z.matches('{').count(), z.matches('}').count(), "zsh braces balance");
    syntax_check("zsh", &["-n"], &zsh);
    let (fish, f) = write("fish");
    for s in SUBCOMMANDS {
        assert!(f.contains(&format!("-f -a \"{s}\"")), "fish: {s}");
    }
    let opens = f.lines().filter(|l| starts_block(l.trim_start())).count();
    let ends = f.lines().filter(|l| l.trim() == "end").count();
    assert_eq!(opens, ends, "fish blocks balance");
    assert!(f.lines().all(|l| {
        let l = l.trim();
        l.is_empty()
            || l.starts_with('#')
            || l.starts_with("complete -c lvsim ")
            || !l.starts_with("complete")
    }));
    syntax_check("fish", &["--no-execute"], &fish);
    let (_, e) = write("elvish");
    assert!(e.contains("set edit:completion:arg-completer[lvsim] = {|@words|"));
    for s in SUBCOMMANDS {
        assert!(e.contains(&format!("&'lvsim;{s}'= {{")), "elvish: {s}");
    }
    assert_eq!(e.matches('{').count(), e.matches('}').count(), "elvish braces balance");
    // `edit:` exists only in an interactive elvish: compile the script against a map of
    // our own in its place (the rest is checked as written).
    let compiled = i.work.join("lvsim-compile.elv");
    let stand_in = e.replacen("set edit:completion:arg-completer[lvsim]", "set arg-completer[lvsim]", 1);
    std::fs::write(&compiled, format!("var arg-completer = [&]\n{stand_in}")).unwrap();
    syntax_check("elvish", &["-compileonly"], &compiled);
    let (ps, p) = write("powershell");
    assert!(p.contains("Register-ArgumentCompleter -Native -CommandName 'lvsim' -ScriptBlock {"));
    for s in SUBCOMMANDS {
        assert!(p.contains(&format!("'lvsim;{s}' {{")), "powershell: {s}");
    }
    assert_eq!(p.matches('{').count(), p.matches('}').count(), "powershell braces balance");
    let parse = format!(
        "$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile('{}', [ref]$null, [ref]$e); if ($e) {{ $e; exit 1 }}",
        ps.display()
    );
    syntax_check("pwsh", &["-NoProfile", "-Command", &parse], Path::new(""));
    let out = i.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(text(&out.stderr).contains("bash"), "it lists the shells: {}", text(&out.stderr));
}

fn starts_block(l: &str) -> bool {
    ["function ", "if ", "for ", "while ", "switch ", "begin"].iter().any(|k| l.starts_with(k))
}

/// Runs `shell ARGS FILE` if the shell is installed and requires success; otherwise says
/// on stderr that only the structure was checked.
fn syntax_check(shell: &str, args: &[&str], file: &Path) {
    if !installed(shell) {
        eprintln!(
            "install_cli: {shell} is not installed: its completion script was checked for structure only"
        );
        return;
    }
    let mut c = Command::new(shell);
    c.args(args);
    if !file.as_os_str().is_empty() {
        c.arg(file);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{shell} {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn man_pages_are_roff_for_every_subcommand_and_render() {
    let i = Installed::new("man");
    let out = i.ok(&["man", "-o", "man"]);
    assert!(out.contains("lvsim-run.1"), "{out}");
    let dir = i.work.join("man");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = std::iter::once("lvsim.1".to_owned())
        .chain(SUBCOMMANDS.iter().map(|s| format!("lvsim-{s}.1")))
        .chain(["lvsim-ipvs-replay.1".to_owned()])
        .collect();
    want.sort();
    assert_eq!(files, want);
    for f in &files {
        let page = std::fs::read_to_string(dir.join(f)).unwrap();
        let title = f.trim_end_matches(".1");
        // The first request after the string definitions is the title.
        let first =
            page.lines().find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"));
        assert_eq!(
            first.map(|l| l.split_whitespace().take(3).collect::<Vec<_>>()),
            Some(vec![".TH", title, "1"]),
            "{f}"
        );
        assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"), "{f}");
    }
    // Printed without -o: the same lvsim.1.
    assert_eq!(i.ok(&["man"]), std::fs::read_to_string(dir.join("lvsim.1")).unwrap());
    let run = dir.join("lvsim-run.1");
    if installed("groff") {
        // -ww: every warning; -z: no output, only the diagnostics.
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .args(files.iter().map(|f| dir.join(f)))
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "groff: {}", text(&out.stderr));
    } else {
        eprintln!(
            "install_cli: groff is not installed (Debian package groff-base): roff checked for structure only"
        );
    }
    if installed("man") {
        let out = Command::new("man")
            .arg("-l")
            .arg(&run)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l: {}", text(&out.stderr));
        let page = text(&out.stdout);
        for w in ["lvsim-run", "SYNOPSIS", "SCENARIO", "--set", "--replications", "library"] {
            assert!(page.contains(w), "{w} missing from the rendered page:\n{page}");
        }
    } else {
        eprintln!("install_cli: man is not installed (Debian package man-db): the page was not rendered");
    }
}
