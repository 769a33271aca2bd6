//! The topology schema on lvs-ipvs's vocabulary, as the scenario builder sees it: the
//! IPv6 persistence netmask of docs/topologies.md loads and keeps a /64 on one real server
//! in a run; masks of the wrong family or not contiguous, SCTP services and Local
//! forwarding are refused at their field's line; flags become the kernel's bits.

use std::path::Path;

use lvs_ipvs::SvcFlags;
use scenarios::{Error, Loaded, Source, load_str};
use sim_core::model::Simulation;

fn load(text: &str) -> Result<Loaded, Error> {
    load_str("s.ron", "s", text, Path::new("."), &[])
}

fn ok(text: &str) -> Loaded {
    load(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The error names `path`, says `words` and is located in s.ron at `line`.
fn assert_err(text: &str, path: &str, words: &str, line: usize) {
    let e = match load(text) {
        Ok(_) => panic!("loaded, but an error was expected:\n{text}"),
        Err(e) => e,
    };
    assert!(e.message.starts_with(&format!("{path}: ")), "{e}");
    assert!(e.message.contains(words), "{e}");
    let at = e.location.as_ref().unwrap_or_else(|| panic!("no location: {e}"));
    assert_eq!((&at.source, at.line), (&Source::File("s.ron".into()), line), "{e}");
    assert!(e.to_string().starts_with(&format!("s.ron:{line}:")), "{e}");
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in\n{text}")) + 1
}

/// The example of docs/topologies.md: the RON block that opens with its comment.
fn docs_example() -> String {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/topologies.md"))
        .expect("reading docs/topologies.md");
    let start = md.find("// IPv6 persistence by /64").expect("the example is in docs/topologies.md");
    let len = md[start..].find("```").expect("the example's block ends");
    md[start..start + len].to_owned()
}

/// Connections each real server got in a run.
fn connections(l: Loaded) -> Vec<u64> {
    let r = Simulation::new(l.cluster).expect("valid").run();
    r.servers.iter().map(|s| s.connections).collect()
}

#[test]
fn the_docs_ipv6_netmask_loads_and_keeps_a_64_on_one_server() {
    let text = docs_example();
    let l = ok(&text);
    let svc = &l.cluster.directors[0].services[0];
    assert_eq!(svc.netmask, 64, "an IPv6 mask is kept as its prefix length");
    let got = connections(l);
    assert!(got.iter().sum::<u64>() > 100, "{got:?}");
    assert_eq!(got.iter().filter(|&&c| c > 0).count(), 1, "one /64, one real server: {got:?}");

    // Without the mask (/128) the two clients are two templates: rr puts them on both.
    let l = ok(&text.replace("netmask: \"ffff:ffff:ffff:ffff::\",", ""));
    assert_eq!(l.cluster.directors[0].services[0].netmask, 128);
    let got = connections(l);
    assert!(got.iter().all(|&c| c > 0), "two /128s, two real servers: {got:?}");
}

#[test]
fn a_netmask_of_the_wrong_family_or_not_contiguous_is_refused_at_its_line() {
    let text = docs_example();
    let path = "directors[0].services[0].netmask";
    let at = line_of(&text, "netmask:");
    let v4 = text.replace("\"ffff:ffff:ffff:ffff::\"", "\"255.255.255.0\"");
    assert_err(&v4, path, "255.255.255.0", at);
    let holes = text.replace("\"ffff:ffff:ffff:ffff::\"", "\"ffff:0:ffff::\"");
    assert_err(&holes, path, "ffff:0:ffff::", at);

    // An IPv4 service with an IPv6 mask; an IPv4 mask is fine there.
    let v4_service = text
        .replace("\"2001:db8::80\"", "\"10.0.0.80\"")
        .replace("\"2001:db8:1::1\"", "\"10.0.1.1\"")
        .replace("\"2001:db8:6::1\"", "\"10.0.6.1\"")
        .replace("\"2001:db8:6::10\"", "\"10.0.6.10\"");
    assert_err(&v4_service, path, "ffff:ffff:ffff:ffff::", at);
    let l = ok(&v4_service.replace("\"ffff:ffff:ffff:ffff::\"", "\"255.255.0.0\""));
    assert_eq!(l.cluster.directors[0].services[0].netmask, 0xffff_0000);

    // A firewall-mark service is IPv4 in the simulator.
    let mark = text.replace("vip: \"2001:db8::80\",", "fwmark: 7,");
    assert_err(&mark, path, "firewall-mark service", at);
}

#[test]
fn sctp_and_local_forwarding_are_refused_at_their_field() {
    let text = docs_example();
    let sctp = text.replace("scheduler: rr,", "scheduler: rr, protocol: SCTP,");
    assert_err(&sctp, "directors[0].services[0].protocol", "SCTP", line_of(&sctp, "SCTP"));
    let local = text.replace("forwarding: DR", "forwarding: Local");
    assert_err(
        &local,
        "directors[0].services[0].real_servers[0].forwarding",
        "Local forwarding method",
        line_of(&local, "Local"),
    );
    // ipvsadm's `-b` words only with their own scheduler.
    let flags = text.replace("scheduler: rr,", "scheduler: rr, flags: [sh_port],");
    assert_err(&flags, "directors[0].services[0].flags[0]", "sh-port", line_of(&flags, "sh_port"));
}

#[test]
fn flags_become_the_kernels_bits() {
    let text =
        docs_example().replace("scheduler: rr,", "scheduler: mh, flags: [mh_port, flag_3, one_packet],");
    let l = ok(&text);
    let f = l.cluster.directors[0].services[0].flags;
    assert_eq!(f, SvcFlags(SvcFlags::SCHED2 | SvcFlags::SCHED3 | SvcFlags::ONEPACKET));
}

/// An mh service of `count` real servers (weight 1) on a DR director.
fn mh_farm(count: u32, extra: &str) -> String {
    format!(
        "Scenario(\n    duration_s: 1.0,\n    directors: [(\n        name: \"lvs\",\n        address: \"10.0.0.1\",\n        \
         services: [(\n            vip: \"10.0.0.100\",\n            port: 80,\n            scheduler: mh,\n            \
         real_servers: [(server: \"web\", forwarding: DR){extra}],\n        )],\n    )],\n    \
         servers: [(name: \"big\", address: \"10.1.0.1\"), (name: \"web\", address: \"10.2.0.1\", count: {count})],\n    \
         clients: [Clients(arrival: Poisson(rate: 5.0), demand_ms: Constant(1.0))],\n)\n"
    )
}

#[test]
fn an_mh_service_past_its_table_warns_at_its_scheduler() {
    let n = lvs_sched::MH_TAB_SIZE + 7;
    let text = mh_farm(n, "");
    let l = ok(&text);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = &l.warnings[0];
    let at = line_of(&text, "scheduler: mh");
    assert!(w.starts_with(&format!("s.ron:{at}:")), "{w}");
    assert!(
        w.contains("directors[0].services[0].scheduler: service TCP  10.0.0.100:80: 7 real server(s)"),
        "{w}"
    );
    assert!(w.contains(&format!("more real servers ({n}) than its 4093 slots")), "{w}");
    // The rebuild that would take the 4094th server fails: the last seven added get no slot.
    assert!(w.contains("\"web4094\", \"web4095\", \"web4096\", \"web4097\", \"web4098\", and 2 more"), "{w}");

    // At the bound, no warning; nor for a scheduler without a table.
    assert_eq!(ok(&mh_farm(lvs_sched::MH_TAB_SIZE, "")).warnings, Vec::<String>::new());
    assert_eq!(ok(&text.replace("scheduler: mh", "scheduler: wlc")).warnings, Vec::<String>::new());
}

#[test]
fn weights_that_fill_the_table_warn_too() {
    // "big" (weight 65535, added last, so first in the kernel's list) takes every sh
    // bucket: web1..web3 get none.
    let text = mh_farm(3, ", (server: \"big\", forwarding: DR, weight: 65535)").replace("mh", "sh");
    let l = ok(&text);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = &l.warnings[0];
    assert!(w.contains("3 real server(s) will get no connection: sh's lookup table has weights"), "{w}");
    assert!(w.contains("\"web1\", \"web2\", \"web3\""), "{w}");
}

#[test]
fn the_warning_names_what_the_full_table_leaves_out() {
    // sh over 300 servers of weight 1 and "big" (weight 100, added last): the table as the
    // run builds it, every server added in turn, leaves out web1..web144.
    let text = mh_farm(300, ", (server: \"big\", forwarding: DR, weight: 100)").replace("mh", "sh");
    let l = ok(&text);
    let svc = &l.cluster.directors[0].services[0];
    let mut full = lvs_sched::Service::new(svc.scheduler, svc.flags, 0, lvs_sched::Time::ZERO);
    for d in &svc.dests {
        let addr = l.cluster.servers[d.server].address;
        full.add_dest(&lvs_sched::DestConfig {
            weight: d.weight,
            ..lvs_sched::DestConfig::new(addr, d.port, d.fwd)
        })
        .unwrap();
    }
    let idle = full.unreachable_dests().len();
    assert_eq!(idle, 144);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = &l.warnings[0];
    assert!(w.contains(&format!("{idle} real server(s) will get no connection")), "{w}");
    assert!(w.contains("\"web1\", \"web2\", \"web3\", \"web4\", \"web5\", and 139 more"), "{w}");
}
