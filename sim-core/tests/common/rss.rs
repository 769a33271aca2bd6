//! This process's peak memory, for the memory benches and tests (included with `#[path]`
//! by each, beside `scale.rs` where it is used).

/// This process's peak resident set (VmHWM of /proc/self/status) [bytes].
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("linux /proc");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}
