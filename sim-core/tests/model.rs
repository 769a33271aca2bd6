//! The cluster model against hand-computed expectations and analytic limits: packet and
//! byte counters per forwarding method, the NAT director's link limit against DR's,
//! latencies through links and a backend tier, refusals, UDP one-packet scheduling,
//! persistence, validation messages and determinism.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind, SvcFlags};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::link::ChannelConfig;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));

fn cpu(speed: f64) -> CpuConfig {
    CpuConfig { cores: 1, speed, max_in_service: None, backlog: None }
}

/// One director, `n` real servers on its segment with it as gateway, one TCP service on
/// VIP:80 (rr), one population of constant-rate single-request connections. The run lasts
/// `secs` plus 1 ms, so that a constant rate r gives exactly `r·secs` connections (the
/// k-th at k/r).
fn cluster(fwd: Forwarding, n: usize, rate: f64, secs: u64) -> ClusterConfig {
    let servers = (0..n)
        .map(|i| ServerConfig {
            gateway: Some(0),
            ..ServerConfig::new(
                format!("rs{i}"),
                IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)),
                cpu(1.0),
            )
        })
        .collect();
    let dests = (0..n).map(|i| DestConfig::new(i, 80, fwd)).collect();
    ClusterConfig {
        directors: vec![DirectorConfig::new(
            "lb",
            "lan",
            vec![ServiceConfig::new(
                ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
                SchedulerKind::Rr,
                dests,
            )],
        )],
        servers,
        populations: vec![PopulationConfig {
            request_bytes: Dist::Constant(2880.0),
            response_bytes: Dist::Constant(10_000.0),
            demand: Dist::Constant(0.001),
            ..PopulationConfig::new("web", ArrivalProcess::Constant { rate }, VIP, 80)
        }],
        ..ClusterConfig::new(1, Duration::from_millis(secs * 1000 + 1))
    }
}

fn run(cfg: ClusterConfig) -> RunReport {
    Simulation::new(cfg).expect("valid configuration").run()
}

/// Per connection, with MTU 1500 (MSS 1448, 1428 through a tunnel), a 2880-byte request
/// and a 10000-byte response (7 segments, 8 through a tunnel), each side in quick-ack mode
/// for its first data (an ACK a segment):
/// in:  SYN 60 B + the handshake's ACK 52 B + request (2 segments, 3 through a tunnel) +
///      7 ACKs (8 through a tunnel) × 52 B + FIN 52 B + ACK 52 B
/// out: SYN-ACK 60 B + 2 ACKs of the request (2 × 52 B) + response 10000 + 7 × 52 B +
///      FIN-ACK 52 B (seen only by a NAT director).
#[test]
fn ipvs_counters_per_forwarding_method_match_hand_computed_packets_and_bytes() {
    let n = 50u64;
    for (fwd, in_pkts, in_bytes, out_pkts, out_bytes, internal_bytes) in [
        (Forwarding::Masq, 13, 60 + 52 + 2984 + 364 + 104, 11, 60 + 104 + 10_364 + 52, 3564),
        (Forwarding::DirectRouting, 13, 3564, 0, 0, 3564),
        // The tunnel's smaller MSS costs a third request segment and an eighth response
        // segment; the outer header adds 20 bytes a packet on the internal link but is
        // not in IPVS's byte count.
        (Forwarding::Tunnel, 15, 60 + 52 + 3036 + 416 + 104, 0, 0, 3668 + 20 * 15),
    ] {
        let r = run(cluster(fwd, 2, n as f64, 1));
        assert_eq!(r.connections.completed, n, "{fwd:?}");
        let d = &r.directors[0];
        assert_eq!((d.in_pkts, d.in_bytes), (n * in_pkts, n * in_bytes), "{fwd:?} in");
        assert_eq!((d.out_pkts, d.out_bytes), (n * out_pkts, n * out_bytes), "{fwd:?} out");
        assert_eq!(d.internal_out.bytes, n * internal_bytes, "{fwd:?} internal link");
        let replies_via_director = d.internal_in.packets;
        assert_eq!(replies_via_director, if fwd == Forwarding::Masq { n * 11 } else { 0 }, "{fwd:?}");
    }
}

#[test]
fn a_nat_director_saturates_its_link_where_a_dr_director_does_not() {
    // 100 Mb/s external link, 64 KB of buffer; 1000 conn/s of 1000-byte requests and
    // 20000-byte responses (14 segments: 20728 B). Real servers are far from busy.
    let link = ChannelConfig {
        bandwidth_bps: Some(100_000_000),
        buffer_bytes: Some(64 * 1024),
        latency: Duration::from_micros(100),
        ..ChannelConfig::IDEAL
    };
    let mk = |fwd| {
        let mut c = cluster(fwd, 8, 1000.0, 20);
        c.warmup = Duration::from_secs(5);
        c.directors[0].external = DuplexLink::symmetric(link);
        c.populations[0].arrival = ArrivalProcess::Poisson { rate: 1000.0 };
        c.populations[0].request_bytes = Dist::Constant(1000.0);
        c.populations[0].response_bytes = Dist::Constant(20_000.0);
        c
    };
    // NAT: every response crosses the director's outbound direction: SYN-ACK 60 + the
    // server's quick ACK of the request 52 + response 20728 + FIN-ACK 52 bytes per
    // connection.
    let nat_limit = 100e6 / 8.0 / (60.0 + 52.0 + 20_728.0 + 52.0);
    let nat = run(mk(Forwarding::Masq));
    let d = &nat.directors[0];
    assert!(d.external_out.utilization > 0.97, "NAT link utilisation {}", d.external_out.utilization);
    assert!(
        (nat.throughput_cps - nat_limit).abs() < 0.03 * nat_limit,
        "NAT throughput {} against the link limit {nat_limit}",
        nat.throughput_cps
    );
    assert!(d.external_out.dropped_packets > 0, "a saturated finite buffer drops");
    // DR: only requests cross the director: SYN 60 + ACK 52 + request 1052 + 14 quick
    // ACKs of the response (14 × 52) + FIN 52 + ACK 52 = 1996 bytes a connection inbound,
    // nothing outbound.
    let dr = run(mk(Forwarding::DirectRouting));
    let d = &dr.directors[0];
    let offered = dr.connections.offered as f64 / 15.0;
    assert!(
        (dr.throughput_cps - offered).abs() < 0.02 * offered,
        "DR keeps up: {} of {offered}",
        dr.throughput_cps
    );
    let expect_util = offered * 1996.0 * 8.0 / 100e6;
    assert!(
        (d.external_in.utilization - expect_util).abs() < 0.03 * expect_util,
        "{} vs {expect_util}",
        d.external_in.utilization
    );
    assert_eq!(d.external_out.packets, 0);
    assert!(dr.throughput_cps > 1.6 * nat.throughput_cps);
}

#[test]
fn latency_adds_link_delays_and_the_backend_tier() {
    // One connection a second, nothing queues: R = 2 round trips of the access network
    // (handshake, then request/response) + 10 ms at the real server + a backend query
    // (1 ms each way + 5 ms of work).
    let mut c = cluster(Forwarding::DirectRouting, 1, 1.0, 10);
    c.populations[0].access_latency = Duration::from_millis(3);
    c.populations[0].demand = Dist::Constant(0.010);
    c.populations[0].backend_demand = Some(Dist::Constant(0.005));
    c.backends.push(BackendConfig { name: "db".into(), latency: Duration::from_millis(1), cpu: cpu(1.0) });
    c.servers[0].backend = Some(0);
    let r = run(c);
    assert_eq!(r.connections.completed, 10);
    let expect = Duration::from_millis(4 * 3 + 10 + 2 + 5).as_nanos();
    assert_eq!(r.latency.max_ns(), expect);
    assert_eq!(r.latency.mean_ns(), expect as f64);
}

#[test]
fn a_full_worker_pool_refuses_connections() {
    let mut c = cluster(Forwarding::DirectRouting, 1, 200.0, 5);
    c.servers[0].cpu = CpuConfig { cores: 1, speed: 1.0, max_in_service: Some(2), backlog: Some(3) };
    c.populations[0].demand = Dist::Constant(0.010); // capacity 100/s, offered 200/s
    let r = run(c);
    let k = r.connections;
    assert_eq!(k.completed + k.refused + k.dropped, k.offered);
    // Half the connections find the pool and its backlog full.
    assert!((k.refused as f64 / k.offered as f64 - 0.5).abs() < 0.02, "{k:?}");
    assert_eq!(r.servers[0].refused, k.refused);
    assert!(r.servers[0].utilization > 0.99);
}

#[test]
fn one_packet_scheduling_schedules_every_datagram() {
    let udp = |ops: bool| {
        let mut c = cluster(Forwarding::DirectRouting, 3, 10.0, 10);
        let svc = &mut c.directors[0].services[0];
        svc.addr = ServiceKey::Addr { protocol: Protocol::Udp, addr: VIP, port: 53 };
        svc.flags = if ops { SvcFlags(SvcFlags::ONEPACKET) } else { SvcFlags::default() };
        c.populations[0].port = 53;
        c.populations[0].transport = Transport::Udp {
            requests: Dist::Constant(4.0),
            think_time: Dist::Constant(0.01),
            timeout: Duration::from_secs(1),
        };
        c.populations[0].request_bytes = Dist::Constant(40.0);
        c.populations[0].response_bytes = Dist::Constant(200.0);
        run(c)
    };
    let flows = udp(false);
    let dgrams = udp(true);
    let created = |r: &RunReport| r.directors[0].ipvs.stats().conns;
    assert_eq!(flows.connections.completed, 100);
    assert_eq!(created(&flows), 100, "one IPVS entry per flow");
    assert_eq!(created(&dgrams), 400, "one entry per datagram with -o");
    // rr over 3 servers: without -o each flow's 4 datagrams stay on one server; IPVS lists
    // the last added server first, so rs2 gets the 34th flow.
    let per_server = |r: &RunReport| r.servers.iter().map(|s| s.latency.count()).collect::<Vec<_>>();
    assert_eq!(per_server(&flows), [132, 132, 136]);
    assert_eq!(per_server(&dgrams).iter().sum::<u64>(), 400);
}

#[test]
fn persistence_keeps_a_client_on_one_server() {
    let mut c = cluster(Forwarding::DirectRouting, 4, 20.0, 5);
    c.populations[0].clients = 1;
    c.directors[0].services[0].persistence = Some(Duration::from_secs(300));
    let r = run(c);
    let used: Vec<_> = r.servers.iter().filter(|s| s.connections > 0).collect();
    assert_eq!(
        used.len(),
        1,
        "one client, one server: {:?}",
        r.servers.iter().map(|s| s.connections).collect::<Vec<_>>()
    );
    assert_eq!(used[0].connections, 100);
}

#[test]
fn director_cpu_cost_per_packet() {
    // DR: 13 packets in per connection; 100 conn/s × 13 × 200 µs = 26% of the CPU.
    let mut c = cluster(Forwarding::DirectRouting, 2, 100.0, 10);
    c.directors[0].cpu_per_packet = Duration::from_micros(200);
    let r = run(c);
    let u = r.directors[0].cpu.utilization;
    assert!((u - 0.26).abs() < 0.001, "director CPU utilisation {u}");
}

#[test]
fn time_series_cover_the_run() {
    let mut c = cluster(Forwarding::Masq, 2, 50.0, 10);
    c.populations[0].demand = Dist::Constant(0.0005);
    c.sample_interval = Some(Duration::from_secs(1));
    let r = run(c);
    // Samples every second, and a last one at the end of the arrivals (10.001 s).
    assert_eq!(r.series.len(), 11);
    assert_eq!(r.series.iter().map(|s| s.responses).sum::<u64>(), 500);
    for s in &r.series[..10] {
        assert_eq!(s.servers.len(), 2);
        // 25 conn/s of 0.5 ms each per server.
        assert!((s.servers[0].utilization - 0.0125).abs() < 0.001, "{s:?}");
        assert_eq!(s.servers[0].weight, 1);
    }
}

#[test]
fn validation_names_the_part_at_fault() {
    let mut c = cluster(Forwarding::DirectRouting, 2, 1.0, 1);
    c.servers[1].segment = "dmz".into();
    let e = Simulation::new(c).err().expect("rejected");
    assert!(e.to_string().contains("real server \"rs1\""), "{e}");
    assert!(e.to_string().contains("direct routing needs the real server on the director's segment"), "{e}");

    let mut c = cluster(Forwarding::Masq, 2, 1.0, 1);
    c.servers[0].gateway = None;
    let e = Simulation::new(c).err().expect("rejected").to_string();
    assert!(e.contains("NAT needs the real server's replies to route through director \"lb\""), "{e}");

    let mut c = cluster(Forwarding::Masq, 2, 1.0, 1);
    c.directors[0].services[0].dests[0].weight = 70_000;
    let e = Simulation::new(c).err().expect("rejected").to_string();
    assert!(e.contains("weight 70000 is out of range"), "{e}");

    // Tunnelling crosses segments.
    let mut c = cluster(Forwarding::Tunnel, 2, 1.0, 1);
    c.servers[1].segment = "elsewhere".into();
    assert!(Simulation::new(c).is_ok());
}

#[test]
fn same_seed_same_report_other_seed_other_report() {
    let mk = |seed| {
        let mut c = cluster(Forwarding::Masq, 3, 300.0, 20);
        c.seed = seed;
        c.populations[0].arrival = ArrivalProcess::Poisson { rate: 300.0 };
        c.populations[0].demand = Dist::Exponential { mean: 0.008 };
        c.directors[0].services[0].scheduler = SchedulerKind::Wlc;
        c.sample_interval = Some(Duration::from_secs(2));
        fingerprint(&run(c))
    };
    assert_eq!(mk(5), mk(5));
    assert_ne!(mk(5), mk(6));
}

/// Everything a run reports, as text (the IPVS table by its counters).
fn fingerprint(r: &RunReport) -> String {
    let servers: Vec<_> = r
        .servers
        .iter()
        .map(|s| {
            (
                s.connections,
                s.utilization,
                s.active_conns_mean,
                s.latency.quantile_ns(0.99),
                s.latency.mean_ns(),
            )
        })
        .collect();
    let dirs: Vec<_> = r.directors.iter().map(|d| (d.in_pkts, d.in_bytes, d.out_pkts, d.out_bytes)).collect();
    format!(
        "{:?} {:?} {} {} {:?} {:?} {:?} {} {}",
        r.connections,
        r.simulated,
        r.latency.mean_ns(),
        r.latency.quantile_ns(0.999),
        servers,
        dirs,
        r.series,
        r.model_events,
        r.engine_events
    )
}

#[test]
fn a_quiesced_server_gets_no_new_connections() {
    // rr over rs1, rs0 (IPVS lists the last added first); rs0 goes to weight 0 at 5 s,
    // before the connection arriving at 5 s is scheduled (configured actions come first).
    let mut c = cluster(Forwarding::DirectRouting, 2, 10.0, 10);
    c.actions.push(Action {
        at: Duration::from_secs(5),
        director: 0,
        service: 0,
        server: 0,
        change: Change::Weight(0),
    });
    let r = run(c);
    assert_eq!(r.connections.completed, 100);
    assert_eq!((r.servers[0].connections, r.servers[1].connections), (24, 76));
    assert_eq!(r.servers[0].weight_final, 0);
}

/// Connections of three requests a second apart; rs0 is deleted at 5 s while some of
/// its connections are open.
fn removal(expire_nodest_conn: bool) -> RunReport {
    let mut c = cluster(Forwarding::DirectRouting, 2, 10.0, 10);
    c.max_retries = 3;
    c.directors[0].sysctls.expire_nodest_conn = expire_nodest_conn;
    c.populations[0].transport =
        Transport::Tcp { requests: Dist::Constant(3.0), think_time: Dist::Constant(1.0) };
    c.actions.push(Action {
        at: Duration::from_secs(5),
        director: 0,
        service: 0,
        server: 0,
        change: Change::Remove,
    });
    run(c)
}

#[test]
fn deleting_a_server_breaks_its_open_connections() {
    // Open on rs0 at 5 s: arrivals in (3 s, 5 s) that it got, every other one: 10, all
    // mid-think. Their next packets are dropped by IPVS (the server is gone) until TCP
    // gives up; later connections all go to rs1.
    let k = removal(false).connections;
    assert_eq!(k.dropped, 10, "{k:?}");
    assert_eq!(k.completed + k.dropped, k.offered);
    // With expire_nodest_conn the entry expires at the first dropped packet; the
    // retransmission finds no entry and the director's stack resets the connection.
    let k = removal(true).connections;
    assert_eq!((k.refused, k.dropped), (10, 0), "{k:?}");
}
