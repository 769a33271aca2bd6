//! The simulator's side: the same connections as counters.sh, as a scenario per
//! forwarding method (one service and one client population per case, rr over two real
//! servers, MTU 1500), run through the model; its IPVS table's counters at the end.

use std::fmt::Write as _;
use std::path::Path;

use sim_core::model::Simulation;

use super::{CASES, METHODS, Table};

/// The real servers of each method, as in counters.sh.
fn servers(method: &str) -> [&'static str; 2] {
    match method {
        "NAT" => ["10.5.0.11", "10.5.0.12"],
        "DR" => ["10.0.0.11", "10.0.0.12"],
        _ => ["10.0.0.21", "10.0.0.22"],
    }
}

/// The scenario of one forwarding method: each case's connections one after the other
/// (as the client in the VM opens them), from the client's one address.
pub fn scenario(method: &str, vip: &str) -> String {
    let [a, b] = servers(method);
    // NAT replies pass the director: it is the real servers' gateway.
    let gw = if method == "NAT" { ", gateway: \"director\"" } else { "" };
    let longest = CASES.iter().map(|c| c.conns).max().unwrap_or(1);
    let mut services = String::new();
    let mut clients = String::new();
    for c in &CASES {
        let _ = write!(
            services,
            "Service(vip: \"{vip}\", port: {}, scheduler: rr, real_servers: [\
             RealServer(server: \"rs1\", forwarding: {method}), RealServer(server: \"rs2\", forwarding: {method})]),",
            c.port
        );
        let _ = write!(
            clients,
            "Clients(name: \"case{port}\", vip: \"{vip}\", port: {port}, arrival: Constant(rate: {rate}), \
             addresses: 1, first_address: \"10.9.0.2\", transport: TCP(requests: Constant({requests}.0)), \
             request_bytes: Constant({req}.0), response_bytes: Constant({resp}.0), demand_ms: Constant(0.01)),",
            port = c.port,
            rate = f64::from(c.conns) / f64::from(longest),
            requests = c.requests,
            req = c.request,
            resp = c.response,
        );
    }
    // Constant(rate: conns / longest) opens a case's connections evenly until `longest`
    // seconds; the half second after it lets the last one finish (the links are ideal).
    format!(
        "Scenario(seed: 1, duration_s: {dur}, warmup_s: 0.0, network: Network(mtu: 1500),
           directors: [Director(name: \"director\", address: \"10.0.0.2\", services: [{services}])],
           servers: [Server(name: \"rs1\", address: \"{a}\"{gw}), Server(name: \"rs2\", address: \"{b}\"{gw})],
           clients: [{clients}])",
        dur = f64::from(longest) + 0.5,
    )
}

/// The model's counters for every method, keyed as the kernel's listing.
pub fn counters() -> Table {
    let mut table = Table::new();
    for (method, vip) in METHODS {
        let text = scenario(method, vip);
        let loaded = scenarios::load_str("counters.ron", "counters", &text, Path::new("."), &[])
            .unwrap_or_else(|e| panic!("the {method} scenario: {e}\n{text}"));
        let sim = Simulation::new(loaded.cluster.clone()).expect("the scenario simulates");
        let report = sim.run();
        let ipvs = &report.directors[0].ipvs;
        for svc in ipvs.services() {
            let name = svc.key().to_string();
            let vip_port = name.rsplit(' ').next().expect("TCP VIP:PORT").to_owned();
            table.insert((vip_port.clone(), String::new()), numbers(svc.stats()));
            for (id, d) in svc.scheduler().dests() {
                table.insert(
                    (vip_port.clone(), format!("{}:{}", d.addr(), d.port())),
                    numbers(svc.dest_stats(id)),
                );
            }
        }
    }
    table
}

fn numbers(s: lvs_ipvs::Stats) -> [u64; 5] {
    [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
}
