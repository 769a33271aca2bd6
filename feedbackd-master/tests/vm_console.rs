//! The console's drain against the real kernel IPVS, in the lvsim VM (`tests/vm/lvsim-vm`):
//! feedbackd-master with the netlink backend and `--console`, one feedbackd-agent, and curl
//! inside the guest doing what the browser does (log in, read the CSRF token from the
//! server's page, POST the drain). The kernel's table shows weight 0, and keeps it while
//! the agent reports another load; maintenance takes the server out of the table and a
//! return through the console puts it back with the law's weight. The script is
//! `tests/vm/console.sh`.
//!
//! CI runs it; `LVSIM_SKIP_VM=1` skips it explicitly (with a notice) on a machine without
//! qemu.

mod common;

/// The weight of `rs` (`ADDR:PORT`) in an `ipvsadm -L -n` listing.
fn weight(listing: &str, rs: &str) -> Option<u32> {
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&"->") && f.get(1) == Some(&rs)).then(|| f[3].parse().unwrap())
    })
}

/// The status code printed on the `HTTP what CODE` line.
fn http(out: &str, what: &str) -> String {
    let prefix = format!("HTTP {what} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{out}"))
        .into()
}

#[test]
fn a_drain_through_the_console_changes_the_real_kernel_table() {
    let Some(stdout) = common::run_in_vm("vm_console", "console.sh") else { return };

    let rs = "10.0.0.5:80";
    let before = common::section(&stdout, "before");
    assert_eq!(weight(before, rs), Some(9), "the agent's weight in the kernel: {before}");
    assert!(before.contains("Masq"), "{before}");
    assert_eq!(http(&stdout, "nosession"), "401", "a change without a session is refused");
    assert_eq!(http(&stdout, "login"), "303", "curl logs in as admin");
    assert_eq!(http(&stdout, "drain"), "303", "the drain is accepted");
    let drained = common::section(&stdout, "drained");
    assert_eq!(weight(drained, rs), Some(0), "the drain in the kernel's table: {drained}");
    // /proc/net/ip_vs agrees (10.0.0.5:80 is 0A000005:0050 there).
    let proc_row =
        drained.lines().find(|l| l.contains("0A000005:0050")).unwrap_or_else(|| panic!("{drained}"));
    assert_eq!(proc_row.split_whitespace().nth(3), Some("0"), "{proc_row}");
    // The agent now reports 50%: the drain holds in the kernel.
    let held = common::section(&stdout, "drained, agent at 50%");
    assert_eq!(weight(held, rs), Some(0), "a report does not undo the drain: {held}");
    assert_eq!(http(&stdout, "maintenance"), "303");
    let maintenance = common::section(&stdout, "maintenance");
    assert_eq!(weight(maintenance, rs), None, "maintenance removes the server: {maintenance}");
    assert!(maintenance.contains("TCP  10.0.0.1:80 wrr"), "the service stays: {maintenance}");
    assert_eq!(http(&stdout, "return"), "303");
    // Back whole (NAT) with the law's weight for 50%: 1 + 9 * 0.5 = 5.5 -> 6.
    let returned = common::section(&stdout, "returned");
    assert_eq!(weight(returned, rs), Some(6), "the return gives the law's weight back: {returned}");
    assert!(returned.lines().any(|l| l.contains(rs) && l.contains("Masq")), "{returned}");

    let audit = common::section(&stdout, "audit");
    let line = audit
        .lines()
        .find(|l| l.contains("drain"))
        .unwrap_or_else(|| panic!("no drain in the audit:\n{audit}"));
    assert!(line.contains("admin") && line.contains("127.0.0.1") && line.contains("ok"), "{line}");
    let log = common::section(&stdout, "master log");
    assert!(log.contains("10.0.0.5:80: 9 -> 0"), "the master's log says the weight went to 0: {log}");
}
