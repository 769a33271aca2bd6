//! libtest's command line, for the harness-less tests (`harness = false`: tests/ipvs_counters,
//! tests/ha_timing), so that `cargo test NAME`, `--skip`, `--list` and `--ignored` do what
//! they do for every other test.

/// Which of `names` the command line `rest` (the arguments after the program) selects:
/// every name a filter matches (all without a filter), less those `--skip` matches; none
/// with `--ignored` (these tests are never ignored).
pub fn selected<'a>(rest: &[String], names: &[&'a str]) -> Vec<&'a str> {
    // libtest's options that take a value: that value is not a filter.
    const VALUED: [&str; 6] = ["--test-threads", "--skip", "--format", "--color", "--logfile", "-Z"];
    let filters: Vec<&String> = rest
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with('-') && (*i == 0 || !VALUED.contains(&rest[i - 1].as_str())))
        .map(|(_, a)| a)
        .collect();
    if rest.iter().any(|a| a == "--ignored") {
        return Vec::new();
    }
    names
        .iter()
        .copied()
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .filter(|name| !rest.windows(2).any(|w| w[0] == "--skip" && name.contains(w[1].as_str())))
        .collect()
}

/// `--list`: the caller prints `NAME: test` per test and stops.
pub fn is_list(rest: &[String]) -> bool {
    rest.iter().any(|a| a == "--list")
}
