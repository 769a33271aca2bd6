//! feedbackd-master against the real kernel IPVS, in the lvsim VM (`tests/vm/lvsim-vm`):
//! three real-server network namespaces each running a small web server and a
//! feedbackd-agent, the master setting weights over generic netlink, and real client
//! connections through the VIP (LVS-NAT, wrr). One server's reported load changes: the
//! kernel's weights and the distribution of connections follow. The master restarts: the
//! table is not flushed, and the new master adopts and manages it.
//!
//! CI runs it; `LVSIM_SKIP_VM=1` skips it explicitly (with a notice) on a machine without
//! qemu.

mod common;

/// `(address, forward, weight)` of every real server in an `ipvsadm -L -n` listing, sorted
/// by address (the kernel lists them in the order they were added, which the agents race for).
fn weights(listing: &str) -> Vec<(String, String, u32)> {
    let mut v: Vec<_> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
        // Skip /proc/net/ip_vs's hexadecimal rows.
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|a| a.parse::<std::net::SocketAddr>().is_ok()))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_owned(), f[2].to_owned(), f[3].parse().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn counts(section: &str) -> Vec<u32> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("COUNT "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn weights_and_client_connections_follow_reported_load_on_a_real_director() {
    let Some(stdout) = common::run_in_vm("vm_feedback", "feedback.sh") else { return };

    let nat = |a: &str, w: u32| (format!("192.168.20.{a}:80"), "Masq".to_owned(), w);
    // The master added the three servers on the fly, with the agents' forwarding method.
    let initial = common::section(&stdout, "initial");
    assert_eq!(weights(initial), vec![nat("11", 9), nat("12", 9), nat("13", 9)], "{initial}");
    assert_eq!(counts(initial), vec![9, 9, 9], "27 connections, equal weights: {initial}");

    // rs1 reports 20% spare capacity: weight 1 + 9 * 0.2 = 2.8 -> 3, in the kernel...
    let busy = common::section(&stdout, "rs1 busy");
    assert_eq!(weights(busy), vec![nat("11", 3), nat("12", 9), nat("13", 9)], "{busy}");
    let proc_row = busy
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"C0A8140B:0050"));
    assert_eq!(proc_row.as_deref().map(|f| &f[2..4]), Some(&["Masq", "3"][..]), "/proc/net/ip_vs: {busy}");
    // ... and in the connections: wrr over 3:9:9 is a 7-connection cycle (1:3:3).
    assert_eq!(counts(busy), vec![6, 18, 18], "42 connections: {busy}");

    // The master's restart flushes nothing: the same entries before, during and after.
    let restart = common::section(&stdout, "master restart");
    let (after_exit, after_start) = restart.split_once("-- after the new master started").unwrap();
    assert_eq!(weights(after_exit), weights(busy), "{restart}");
    assert_eq!(weights(after_start), weights(busy), "{restart}");
    let half = common::section(&stdout, "rs2 half busy");
    assert_eq!(weights(half), vec![nat("11", 3), nat("12", 6), nat("13", 9)], "{half}");
    let log = common::section(&stdout, "master log");
    assert!(log.contains("adopted 1 virtual services, 3 real servers"), "{log}");
    assert!(!log.contains("add TCP") || log.matches("add TCP").count() == 3, "re-added after restart: {log}");
    assert!(
        log.contains("weight TCP  192.168.10.100:80 -> 192.168.20.11:80: 9 -> 3 (agent rs1: capacity 0.200"),
        "{log}"
    );
    // kill -9 under load leaves the kernel's table exactly as it was.
    let killed = common::section(&stdout, "kill -9");
    let (before, after) = killed.split_once("-- after kill -9").unwrap();
    assert_eq!(weights(before), vec![nat("11", 3), nat("12", 6), nat("13", 9)], "{killed}");
    assert_eq!(weights(after), weights(before), "{killed}");
    // The journal holds both runs (the restart appended), and every line written before
    // the kill is whole: at most the very last one may be torn.
    let journal = common::section(&stdout, "journal");
    let runs =
        feedbackd_proto::journal_file::parse_runs(journal).unwrap_or_else(|e| panic!("{e}:\n{journal}"));
    assert_eq!(runs.runs.len(), 2, "one run per start of the master, appended:\n{journal}");
    assert!(runs.head.is_empty() && runs.torn.len() <= 1, "{:?}:\n{journal}", runs.torn);
    assert!(runs.runs.iter().all(|r| r.len() > 5), "{journal}");
    let status = common::section(&stdout, "status");
    assert!(
        status.contains("192.168.20.12:80") && status.contains("rs2") && status.contains("live"),
        "{status}"
    );
}
