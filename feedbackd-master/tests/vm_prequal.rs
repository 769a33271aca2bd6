//! The Prequal law in the live daemons against the real kernel IPVS, in the lvsim VM
//! (`tests/vm/lvsim-vm`, script `tests/vm/prequal.sh`): three real-server namespaces each
//! running busybox httpd and a feedbackd-agent with the `prequal` module (one server's
//! answer is 2 s slow, another holds 8 idle connections), feedbackd-master `--law prequal`
//! on generic netlink, and client connections through the VIP (LVS-NAT, wrr).
//!
//! CI runs it; `LVSIM_SKIP_VM=1` skips it explicitly (with a notice) on a machine without
//! qemu.

mod common;

/// `(address, weight)` of every real server in an `ipvsadm -L -n` listing, by address.
fn weights(listing: &str) -> Vec<(String, u32)> {
    let mut v: Vec<_> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_owned(), f[3].parse().unwrap())
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
fn the_prequal_law_sets_a_real_directors_weights_from_measured_servers() {
    let Some(stdout) = common::run_in_vm("vm_prequal", "prequal.sh") else { return };
    let rs = |n: u32, w: u32| (format!("192.168.20.1{n}:80"), w);

    // rs1 fast and idle: the best cold server, max_weight; rs2 cold but 2 s slow; rs3
    // hot (8 requests in flight above the pool's 34th percentile, 0): both at min_weight.
    let hot = common::section(&stdout, "hot and slow");
    let (before, after) = hot.split_once("-- after counting").unwrap();
    assert_eq!(weights(before), vec![rs(1, 10), rs(2, 1), rs(3, 1)], "{hot}");
    assert_eq!(weights(after), weights(before), "the agents were paused while counting: {hot}");
    // wrr over 10:1:1 is a 12-connection cycle: 24 connections, two cycles.
    assert_eq!(counts(hot), vec![20, 2, 2], "{hot}");

    // Its connections closed, rs3 is cold again and weighed by its latency.
    let released = common::section(&stdout, "rs3 released");
    let w = weights(released);
    assert!(w[2].1 >= 2 && w[0].1 >= 1, "{released}");

    // Every report reached the journal with both figures; the law was journalled.
    let journal = common::section(&stdout, "journal");
    assert!(
        journal.contains("start law=prequal pool_size=30 max_age_ns=10000000000 q_rif=0.34"),
        "{journal}"
    );
    assert!(journal.contains("metrics=rif:") && journal.contains("latency_ms:"), "{journal}");
    let log = common::section(&stdout, "master log");
    assert!(log.contains("weight TCP  192.168.10.100:80 -> 192.168.20.12:80"), "{log}");
}
