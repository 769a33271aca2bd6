//! Director fail-over, connection sync and active-active directors, against hand-computed
//! expectations: VRRP's master-down interval, heartbeat's deadtime, the gap a fail-over
//! leaves, connections lost without sync and kept with it, the master/backup sync's
//! weakness on a second fail-over, and director capacity growing with Saru's directors.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind, Time};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::ha::*;
use sim_core::model::*;

/// One-way delay of adverts and keepalives.
const LATENCY: Duration = Duration::ZERO;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn director(name: &str) -> DirectorConfig {
    let dests = (0..3).map(|i| DestConfig::new(i, 80, Forwarding::DirectRouting)).collect();
    DirectorConfig::new(
        name,
        "lan",
        vec![ServiceConfig::new(
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            SchedulerKind::Wlc,
            dests,
        )],
    )
}

/// `n` DR directors sharing VIP:80 in front of three real servers; `rate` long sessions a
/// second, each of 60 requests 0.5 s apart (about 30 s long), for `secs` seconds.
fn cluster(n: usize, failover: Failover, sync: Option<SyncConfig>, rate: f64, secs: u64) -> ClusterConfig {
    let servers = (0..3)
        .map(|i| {
            ServerConfig::new(
                format!("rs{i}"),
                IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)),
                CpuConfig { cores: 4, speed: 1.0, max_in_service: None, backlog: None },
            )
        })
        .collect();
    ClusterConfig {
        sample_interval: Some(Duration::from_secs(1)),
        data_rto: ms(200),
        max_retries: 7,
        directors: (1..=n).map(|i| director(&format!("lb{i}"))).collect(),
        servers,
        ha: Some(HaConfig { members: (0..n).collect(), failover, sync, latency: LATENCY }),
        populations: vec![PopulationConfig {
            access_latency: ms(1),
            transport: Transport::Tcp { requests: Dist::Constant(60.0), think_time: Dist::Constant(0.5) },
            request_bytes: Dist::Constant(300.0),
            response_bytes: Dist::Constant(2000.0),
            demand: Dist::Constant(0.001),
            ..PopulationConfig::new("web", ArrivalProcess::Constant { rate }, VIP, 80)
        }],
        ..ClusterConfig::new(7, Duration::from_secs(secs))
    }
}

fn vrrp(preempt: bool) -> Failover {
    Failover::Vrrp(VrrpConfig { preempt, ..VrrpConfig::default() })
}

fn at(s: f64) -> Duration {
    Duration((s * 1e9).round() as u64)
}

fn event(t: f64, director: usize, change: DirectorChange) -> DirectorEvent {
    DirectorEvent { at: at(t), director, change }
}

fn run(cfg: ClusterConfig) -> RunReport {
    Simulation::new(cfg).expect("valid configuration").run()
}

fn secs(t: Time) -> f64 {
    t.0 as f64 / 1e9
}

/// VRRP v2, advert_int 1 s: both start BACKUP; lb1 (priority 150) becomes MASTER when its
/// master-down timer, 3 × 1 + (256 − 150)/256 = 3.4140625 s, expires, and advertises
/// every second from then: 3.4140625, 4.4140625, ..., 20.4140625 s. It dies at 20.5 s;
/// lb2 (priority 100) last reset its timer at 20.4140625 s, so it becomes MASTER at
/// 20.4140625 + 3 + 156/256 = 24.0234375 s, and its gratuitous ARP moves the VIP then
/// (garp_delay 0, latency 0): a gap of 3.5234375 s.
#[test]
fn vrrp_backup_takes_over_after_the_master_down_interval() {
    let mut cfg = cluster(2, vrrp(true), None, 10.0, 40);
    cfg.director_events = vec![event(20.5, 0, DirectorChange::Down)];
    let r = run(cfg);
    let ha = r.ha.expect("an HA report");
    let f = &ha.failovers;
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!((f[0].from.as_deref(), f[0].to.as_deref()), (None, Some("lb1")));
    assert_eq!(secs(f[0].at), 3.4140625);
    assert_eq!((f[1].from.as_deref(), f[1].to.as_deref()), (Some("lb1"), Some("lb2")));
    assert_eq!(secs(f[1].at), 24.0234375);
    assert_eq!(f[1].gap_s, Some(3.5234375));
    assert_eq!(ha.director_faults.len(), 1);
    // No sync: every session lb1 had scheduled and that sent a packet after the
    // take-over is reset by lb2. About 30 s × 10/s of them were open.
    assert!(f[1].lost_conns > 200, "{:?}", f[1]);
    assert_eq!(f[1].survived_conns, 0);
    assert_eq!(r.connections.lost_on_failover, f[1].lost_conns);
    // The share series shows the VIP on lb1, then on lb2.
    let share = |t: usize| r.series[t].director_share.clone();
    assert_eq!(share(10), vec![1.0, 0.0]);
    assert_eq!(share(30), vec![0.0, 1.0]);
}

#[test]
fn synced_connections_survive_the_fail_over() {
    let sync = SyncConfig { flush: ms(100), ..SyncConfig::default() };
    let mut cfg = cluster(2, vrrp(true), Some(sync), 10.0, 40);
    cfg.director_events = vec![event(20.5, 0, DirectorChange::Down)];
    let with = run(cfg.clone());
    cfg.ha.as_mut().unwrap().sync = None;
    let without = run(cfg);
    let (w, wo) = (&with.ha.as_ref().unwrap().failovers[1], &without.ha.as_ref().unwrap().failovers[1]);
    // A session is synced at its third packet (its second request, 0.5 s after the
    // first) and the message leaves within 0.1 s: only those opened in the last ~0.6 s
    // before the death are unknown to lb2 (about 6 of ~300).
    assert!(wo.lost_conns > 200 && wo.survived_conns == 0, "{wo:?}");
    assert!(w.lost_conns <= 10, "{w:?}");
    assert!(w.survived_conns + w.lost_conns >= wo.lost_conns - 10, "{w:?} vs {wo:?}");
    let s = with.ha.as_ref().unwrap().sync.expect("sync report");
    // About 205 sessions opened before the death, each sent once (at its third packet;
    // none lives to its 53rd), and lb2, a sync backup, sends nothing after it.
    assert!(s.messages > 0 && s.conns >= 200 && s.applied >= s.conns, "{s:?}");
    // Each v1 message: an 8-byte header and 36 bytes per IPv4 connection.
    assert_eq!(s.bytes, 8 * s.messages + 36 * s.conns, "{s:?}");
    assert!(with.connections.completed > without.connections.completed);
}

/// The weakness of a fixed master/backup sync: lb1 (sync master) dies, lb2 (sync backup)
/// takes over; lb1 comes back but, without preemption, lb2 keeps the VIP, and the
/// sessions it schedules are synced nowhere. When lb2 dies in turn, lb1 takes over
/// without them. Peer-to-peer sync sends them to lb1, which keeps them.
#[test]
fn master_backup_sync_loses_the_second_fail_over_where_peer_to_peer_does_not() {
    let second = |mode| {
        let sync = SyncConfig { mode, flush: ms(100), ..SyncConfig::default() };
        let mut cfg = cluster(2, vrrp(false), Some(sync), 10.0, 90);
        cfg.director_events = vec![
            event(20.5, 0, DirectorChange::Down),
            event(30.5, 0, DirectorChange::Up),
            event(60.5, 1, DirectorChange::Down),
        ];
        let ha = run(cfg).ha.unwrap();
        let f = ha.failovers.last().unwrap().clone();
        assert_eq!((f.from.as_deref(), f.to.as_deref()), (Some("lb2"), Some("lb1")), "{:#?}", ha.failovers);
        f
    };
    let mb = second(SyncMode::MasterBackup);
    let p2p = second(SyncMode::PeerToPeer);
    assert!(mb.lost_conns > 200 && mb.survived_conns == 0, "{mb:?}");
    assert!(p2p.lost_conns <= 10 && p2p.survived_conns > 200, "{p2p:?}");
}

/// Saru: the same director CPU limit with one and with two active directors. Each
/// director forwards at most 10 000 packets/s (100 µs each, 1000 packets of backlog). A
/// session of one request sends 7 packets inbound (SYN, the handshake's ACK, request, two
/// quick ACKs of the two-segment response, FIN, last ACK): at 2200 sessions/s, 15 400
/// packets/s, one director is overloaded (154%) and two are at 77% each.
#[test]
fn active_active_directors_share_the_load() {
    let run_n = |n: usize, rate: f64| {
        let mut cfg = cluster(n, Failover::ActiveActive(SaruConfig::default()), None, rate, 10);
        for d in &mut cfg.directors {
            d.cpu_per_packet = Duration::from_micros(100);
            d.cpu_backlog_packets = Some(1000);
        }
        let p = &mut cfg.populations[0];
        p.transport = Transport::Tcp { requests: Dist::Constant(1.0), think_time: Dist::Constant(0.0) };
        cfg.warmup = Duration::from_secs(2);
        run(cfg)
    };
    let one = run_n(1, 2200.0);
    let two = run_n(2, 2200.0);
    let ha = two.ha.as_ref().unwrap();
    // Source-port blocks: each director schedules about half the sessions.
    let s = &ha.scheduled_by_director;
    let total = (s[0] + s[1]) as f64;
    assert!((s[0] as f64 / total - 0.5).abs() < 0.05, "{s:?}");
    let util = |r: &RunReport| r.directors.iter().map(|d| d.cpu.utilization).collect::<Vec<_>>();
    assert!(
        two.directors.iter().all(|d| (d.cpu.utilization - 0.77).abs() < 0.03),
        "{:?} {:?}",
        util(&two),
        util(&one)
    );
    assert!(one.directors[0].cpu.utilization > 0.99);
    // Two directors carry the whole offered load; one cannot (its queue drops packets,
    // and their retransmissions come too late for many sessions inside the window).
    assert!((two.throughput_cps - 2200.0).abs() < 44.0, "{}", two.throughput_cps);
    assert!(one.throughput_cps < 0.85 * two.throughput_cps, "{}", one.throughput_cps);
    assert!(two.latency.quantile_ns(0.99) < one.latency.quantile_ns(0.99) / 10);
}

/// With heartbeat over a dedicated link, a director whose external link fails still
/// sends keepalives: nobody takes over and the VIP is black-holed. With ipfail and a ping
/// node on the external side, it gives the VIP up once the ping node is dead to it.
#[test]
fn heartbeat_needs_ipfail_to_notice_a_failed_external_link() {
    let hb = |ping: bool| HeartbeatConfig {
        keepalive: Duration::from_secs(1),
        deadtime: Duration::from_secs(5),
        warntime: Duration::from_secs(3),
        initdead: Duration::from_secs(10),
        deadping: Duration::from_secs(5),
        takeover: ms(500),
        ping_nodes: if ping {
            vec![PingNode {
                name: "gw".into(),
                address: IpAddr::V4(Ipv4Addr::new(172, 17, 60, 1)),
                side: Side::External,
            }]
        } else {
            Vec::new()
        },
        ..HeartbeatConfig::default()
    };
    let go = |ping: bool| {
        let mut cfg = cluster(2, Failover::Heartbeat(hb(ping)), None, 10.0, 40);
        cfg.director_events = vec![event(20.5, 0, DirectorChange::Link(Side::External, false))];
        run(cfg)
    };
    let plain = go(false);
    let ipfail = go(true);
    let fp = &plain.ha.as_ref().unwrap().failovers;
    assert_eq!(fp.len(), 1, "only the start: {fp:#?}");
    let fi = &ipfail.ha.as_ref().unwrap().failovers;
    assert_eq!(fi.len(), 2, "{fi:#?}");
    assert_eq!(fi[1].to.as_deref(), Some("lb2"));
    let gap = fi[1].gap_s.unwrap();
    // The ping node dies to lb1 5 s (deadping) after its last answer, lb1 gives the VIP
    // up and lb2 takes it over: two resource-script runs of 0.5 s, give or take the
    // 1 s ping and keepalive periods.
    assert!((5.0..=8.5).contains(&gap), "{gap}");
    assert!(plain.connections.completed < ipfail.connections.completed);
}

#[test]
fn same_seed_same_fail_over() {
    let sync = SyncConfig { mode: SyncMode::PeerToPeer, ..SyncConfig::default() };
    let mut cfg = cluster(2, vrrp(true), Some(sync), 20.0, 30);
    cfg.director_events = vec![event(10.3, 0, DirectorChange::Down), event(15.0, 0, DirectorChange::Up)];
    let (a, b) = (run(cfg.clone()), run(cfg));
    assert_eq!(a.ha, b.ha);
    assert_eq!(a.connections, b.connections);
    assert_eq!(a.series, b.series);
}
