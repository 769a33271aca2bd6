//! The README's first session, run as a newcomer would: the lines of the block between
//! `<!-- first-session -->` markers in README.md, verbatim, with `lvsim` linked into an
//! empty directory far from the source tree and an empty working directory. Every line
//! must succeed, and the session must end with a compared pair of runs and a multi-group
//! plan answered with intervals. A README edit that breaks the session fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shell words of a README line: single-quoted parts kept whole, `#` comments dropped.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted && cur.is_empty() => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in README line {line:?}");
    if any {
        out.push(cur);
    }
    out
}

/// The first-session commands of README.md.
fn session() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- first-session").expect("README.md has the first-session block");
    let end = readme[start..].find("<!-- /first-session -->").expect("the block ends") + start;
    let lines: Vec<Vec<String>> =
        readme[start..end].lines().filter(|l| l.starts_with("lvsim ")).map(words).collect();
    assert!(lines.len() >= 4, "the first session has its commands: {lines:?}");
    lines
}

#[test]
fn the_readme_first_session_works_from_an_empty_directory() {
    let root = std::env::temp_dir().join(format!("lvsim-newcomer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (bin_dir, work) = (root.join("bin"), root.join("work"));
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let bin: PathBuf = bin_dir.join("lvsim");
    // A link, not a copy (a copy being written can be held open by a forking thread).
    if std::fs::hard_link(env!("CARGO_BIN_EXE_lvsim"), &bin).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_lvsim"), &bin).unwrap();
    }
    let mut printed = Vec::new();
    for cmd in session() {
        let out = Command::new(&bin)
            .args(&cmd[1..])
            .args(["--no-progress"].iter().filter(|_| cmd[1] != "compare" && cmd[1] != "show"))
            .current_dir(&work)
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README line `{}` failed: exit {:?}\n{stdout}\n{}",
            cmd.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push((cmd, stdout));
    }
    let out = work.join("lvsim-out");
    // Two runs, each in its own directory, each with its replications.
    for d in ["quickstart", "quickstart@scheduler=wlc"] {
        let reps = std::fs::read_to_string(out.join(d).join("replications.json")).expect(d);
        let v: serde_json::Value = serde_json::from_str(&reps).unwrap();
        assert_eq!(v["runs"].as_array().unwrap().len(), 5, "{d}: 5 replications");
    }
    // The comparison: every row has a verdict from the test, over 5 replications a side.
    let cmp = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("compare-"))
        .expect("a compare directory");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("compare.json")).unwrap()).unwrap();
    let rows = c["rows"].as_array().unwrap();
    assert!(rows.len() >= 5, "{c}");
    for r in rows {
        let v = r["verdict"].as_str().unwrap();
        assert!(v == "significant" || v == "not significant", "a testable verdict: {r}");
        assert_eq!(r["a"]["n"], 5, "{r}");
    }
    // `show` prints what the run printed.
    let (_, shown) = printed.iter().find(|(c, _)| c[1] == "show").expect("a show line");
    let run_text = std::fs::read_to_string(out.join("quickstart/summary.txt")).unwrap();
    assert_eq!(shown, &run_text);
    // The plan: several groups sized together with costs, an answer with intervals.
    let plan_dir = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with("-plan"))
        .expect("a plan directory");
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plan_dir.join("plan.json")).unwrap()).unwrap();
    let text = p.to_string();
    assert!(!p["answer"].is_null(), "the library plan has an answer: {text:.2000}");
    assert!(text.contains("ci95"), "the plan's evidence carries intervals");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn readme_words_split_like_a_shell() {
    assert_eq!(
        words("lvsim run x --set 'a[0].b=wlc'   # note"),
        ["lvsim", "run", "x", "--set", "a[0].b=wlc"].map(String::from)
    );
    assert_eq!(words("lvsim show d"), ["lvsim", "show", "d"].map(String::from));
}
