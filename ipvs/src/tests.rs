//! Unit tests of the IPVS table's data path.

mod reuse;

use lvs_sched::{Flow, Protocol};

use super::tcp::Segment;
use super::*;
use crate::ipvsadm::{apply, parse, words};

fn table(lines: &[&str]) -> Ipvs {
    let mut ipvs = Ipvs::new(7);
    for l in lines {
        apply(&mut ipvs, &parse(&words(l)).unwrap()).unwrap();
    }
    ipvs
}

fn flow(c: &str, port: u16) -> Flow {
    Flow {
        protocol: Protocol::Tcp,
        saddr: c.parse().unwrap(),
        sport: port,
        daddr: "10.0.0.1".parse().unwrap(),
        dport: 80,
    }
}

fn secs(s: u64) -> Time {
    Time::ZERO + Duration::from_secs(s)
}

#[test]
fn template_outlives_its_connection_and_rearms_for_60s_while_controlling() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr -p 100",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    let first = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    let c = first.conn.unwrap();
    ipvs.packet(Time::ZERO, c, Segment::Ack, false);
    assert_eq!(ipvs.conn_count(), 2, "a connection and its template");
    // At 100 s the template's timer fires while it still controls an established entry:
    // it is re-armed for 60 s, and 60 s sticks.
    ipvs.advance(secs(100));
    assert_eq!(ipvs.conn_count(), 2);
    let again = ipvs.new_conn(secs(120), &flow("1.1.1.1", 1001), None).unwrap();
    assert_eq!(again.dest, first.dest, "persistence keeps the client on its server");
    // The reuse re-armed the template to its (now 60 s) timeout: 120 + 60.
    let svc = ipvs.service(&ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    });
    let persist: u32 = svc.unwrap().scheduler().dests().map(|(_, d)| d.persist_conns()).sum();
    assert_eq!(persist, 1);
    let tmpl = ipvs.conns.iter().flatten().find(|c| c.state() == ConnState::Template).unwrap();
    assert_eq!(tmpl.deadline(), secs(180));
}

#[test]
fn quiesced_server_keeps_persistent_clients_but_deleted_one_does_not() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr -p",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    let first = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!(first.dest.to_string(), "10.0.0.3:80");
    apply(&mut ipvs, &parse(&words("-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0")).unwrap()).unwrap();
    let q = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1001), None).unwrap();
    assert_eq!(q.dest, first.dest, "expire_quiescent_template=0");
    apply(&mut ipvs, &parse(&words("-d -t 10.0.0.1:80 -r 10.0.0.3:80")).unwrap()).unwrap();
    let d = ipvs.new_conn(secs(2), &flow("1.1.1.1", 1002), None).unwrap();
    assert_eq!(d.dest.to_string(), "10.0.0.2:80", "a deleted server invalidates the template");
}

#[test]
fn syn_on_time_wait_entry_is_rescheduled_and_entries_expire_in_order() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    let id = a.conn.unwrap();
    for (seg, out) in [
        (Segment::Syn, true),
        (Segment::Ack, false),
        (Segment::Fin, false),
        (Segment::Ack, true),
        (Segment::Fin, true),
        (Segment::Ack, false),
    ] {
        ipvs.packet(Time::ZERO, id, seg, out);
    }
    assert_eq!(ipvs.conn(id).unwrap().state(), ConnState::Tcp(TcpState::TimeWait));
    let b = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1000), None).unwrap();
    assert_ne!(b.dest, a.dest, "conn_reuse_mode: the old entry expires and rr moves on");
    assert_eq!(ipvs.conn_count(), 1);
    ipvs.advance(Time(secs(61).0 - 1));
    assert_eq!(ipvs.conn_count(), 1, "without the ACK the entry stays in SYN_RECV, 60 s timeout");
    ipvs.advance(secs(61));
    assert_eq!(ipvs.conn_count(), 0);
    let total: u32 = ipvs
        .services()
        .flat_map(|s| s.scheduler().dests().map(|(_, d)| d.active_conns() + d.inactive_conns()))
        .sum();
    assert_eq!(total, 0, "expiry unbinds");
}

#[test]
fn next_deadline_skips_stale_timers_and_expiries_are_counted() {
    let mut ipvs = table(&["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
    assert_eq!(ipvs.next_deadline(), None);
    let id = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap().conn.unwrap();
    assert_eq!(ipvs.next_deadline(), Some(secs(60)), "SYN_RECV: 60 s");
    ipvs.packet(secs(1), id, Segment::Ack, false);
    assert_eq!(ipvs.next_deadline(), Some(secs(901)), "ESTABLISHED: 900 s; the 60 s timer is stale");
    ipvs.packet(secs(2), id, Segment::Fin, false);
    assert_eq!(ipvs.next_deadline(), Some(secs(122)), "FIN_WAIT (input only): 120 s");
    ipvs.advance(secs(121));
    assert_eq!(ipvs.expired_total(), 0);
    ipvs.advance(secs(122));
    assert_eq!((ipvs.expired_total(), ipvs.conn_count(), ipvs.next_deadline()), (1, 0, None));
}

#[test]
fn equal_deadlines_expire_in_arming_order_across_timeouts() {
    // Entry a (SYN_RECV, 60 s) is armed at 0; entry b is reset at 50 s (CLOSE, 10 s).
    // Both are due at 60 s, and a, armed first, must fire first.
    let mut ipvs = table(&["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
    let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap().conn.unwrap();
    let b = ipvs.new_conn(secs(40), &flow("1.1.1.2", 1000), None).unwrap().conn.unwrap();
    ipvs.packet(secs(45), b, Segment::Ack, false);
    ipvs.packet(secs(50), b, Segment::Rst, false);
    assert_eq!(ipvs.conn(b).unwrap().state(), ConnState::Tcp(TcpState::Close));
    let (at, lane) = ipvs.earliest_timer().unwrap();
    assert_eq!(at, secs(60));
    assert_eq!(ipvs.timers.pop(lane), a.0, "a's lane comes first");
    let (at, lane) = ipvs.earliest_timer().unwrap();
    assert_eq!((at, ipvs.timers.pop(lane)), (secs(60), b.0));
}

#[test]
fn scheduled_names_service_and_real_server_ids_that_outlive_deletion() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr",
        "-A -t 10.0.0.1:443 -s rr",
        "-a -t 10.0.0.1:443 -r 10.0.0.2:443 -m",
        "-a -t 10.0.0.1:443 -r 10.0.0.3:443 -m",
    ]);
    let key = |port| ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port };
    assert_eq!(ipvs.service_id(&key(443)), Some(ServiceId(1)));
    let f = Flow { dport: 443, ..flow("1.1.1.1", 1000) };
    let s = ipvs.new_conn(Time::ZERO, &f, None).unwrap();
    // rr starts at the head of the list: the server added last.
    assert_eq!((s.service, s.dest_id, s.dest.to_string()), (ServiceId(1), DestId(1), "10.0.0.3:443".into()));
    let c = ipvs.conn(s.conn.unwrap()).unwrap();
    assert_eq!(
        (c.service(), c.dest(), c.client().to_string()),
        (ServiceId(1), DestId(1), "1.1.1.1:1000".into())
    );
    apply(&mut ipvs, &parse(&words("-D -t 10.0.0.1:443")).unwrap()).unwrap();
    assert_eq!(ipvs.service_id(&key(443)), None);
    let gone = ipvs.service_by_id(ServiceId(1));
    assert!(!gone.is_linked());
    assert_eq!(
        gone.scheduler().dest(s.dest_id).inactive_conns() + gone.scheduler().dest(s.dest_id).active_conns(),
        1
    );
    apply(&mut ipvs, &parse(&words("-A -t 10.0.0.1:443 -s rr")).unwrap()).unwrap();
    assert_eq!(ipvs.service_id(&key(443)), Some(ServiceId(2)), "a re-added service gets a new id");
}

#[test]
fn steady_ten_connections_per_second_converge_to_ten_cps() {
    let mut ipvs = table(&["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m"]);
    let svc = ipvs.service_id(&ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    });
    let svc = svc.unwrap();
    // A connection every 100 ms, at 50 ms past each tenth: 20 per 2 s estimator period,
    // none at a tick's instant. Each brings 3 packets in (180 B) and 2 out (3000 B in all).
    let mut cps = Vec::new();
    for k in 0..240u64 {
        let now = Time(k * 100_000_000 + 50_000_000);
        let s = ipvs.new_conn(now, &flow("1.1.1.1", 1000 + k as u16), None).unwrap();
        ipvs.count(s.conn.unwrap(), false, 3, 180);
        ipvs.count(s.conn.unwrap(), true, 2, 3000);
        if k % 20 == 19 {
            // Just before the next tick: the rates of the ticks so far.
            cps.push(ipvs.service_by_id(svc).rates().cps);
        }
    }
    // Tick n sees 20 new connections: rate 20 << 9 = 10240, avg += (10240 - avg) >> 2:
    // 0 (before the first tick), 2560, 4480, 5920, 7000, 7810, 8417, 8872, 9214, 9470,
    // 9662, 9806; reported (avg + 511) >> 10.
    assert_eq!(cps, [0, 2, 4, 6, 7, 8, 8, 9, 9, 9, 9, 10]);
    let s = ipvs.service_by_id(svc);
    assert_eq!(
        s.stats(),
        Stats { conns: 240, inpkts: 720, outpkts: 480, inbytes: 43_200, outbytes: 720_000 }
    );
    assert_eq!(s.dest_stats(DestId(0)), s.stats());
    assert_eq!(ipvs.stats(), s.stats());
    // 11 ticks by the end. In: 60 packets per tick, rate 60 << 9 = 30 720, the 11th
    // average is 29 421, (29 421 + 511) >> 10 = 29 (the limit is 30 pkts/s). Out: 40
    // packets, average 19 613, reported 19; 60 000 B per tick, rate 60 000 << 4 =
    // 960 000, average 919 453, (919 453 + 15) >> 5 = 28 733 B/s (the limit is 30 000).
    let r = ipvs.rates();
    assert_eq!((r.cps, r.inpps, r.outpps), (10, 29, 19));
    assert_eq!(r.outbps, 28_733);
}

#[test]
fn estimators_catch_up_lazily_and_stop_for_deleted_servers() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    let s = ipvs.new_conn(Time(500_000_000), &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!(s.dest.to_string(), "10.0.0.3:80");
    ipvs.advance(secs(2));
    // One tick: 512 >> 2 = 128, reported (128 + 511) >> 10 = 0; the average is not 0.
    let syn_recv_expiry = Time(60_500_000_000);
    assert_eq!(ipvs.next_deadline(), Some(syn_recv_expiry), "the estimator arms no timer");
    apply(&mut ipvs, &parse(&words("-d -t 10.0.0.1:80 -r 10.0.0.3:80")).unwrap()).unwrap();
    ipvs.count(s.conn.unwrap(), false, 5, 500);
    assert_eq!(ipvs.stats().inpkts, 0, "packets for a deleted server are not counted");
    let svc = ipvs.service_by_id(s.service);
    assert_eq!(svc.dest_stats(s.dest_id).conns, 1);
    // An hour later every average has decayed to 0 (in at most 16 runs) and the long
    // idle stretch was skipped; the entry expired at 60.5 s.
    ipvs.advance(secs(3600));
    assert_eq!((ipvs.conn_count(), ipvs.rates()), (0, Rates::default()));
    assert_eq!(ipvs.next_tick, secs(3602));
    // One-packet traffic is counted by ids.
    ipvs.count_on(s.service, DestId(0), false, 1, 60);
    assert_eq!(ipvs.service_by_id(s.service).dest_stats(DestId(0)).inbytes, 60);
    assert_eq!(ipvs.stats().inbytes, 60);
}

fn run(ipvs: &mut Ipvs, line: &str) {
    apply(ipvs, &parse(&words(line)).unwrap()).unwrap();
}

#[test]
fn deleted_servers_drop_packets_until_expire_nodest_conn_expires_their_entries() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
    ]);
    let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    let b = ipvs.new_conn(Time::ZERO, &flow("1.1.1.2", 1000), None).unwrap();
    assert_eq!((a.dest.to_string(), b.dest.to_string()), ("10.0.0.2:80".into(), "10.0.0.3:80".into()));
    let (a_id, b_id) = (a.conn.unwrap(), b.conn.unwrap());
    run(&mut ipvs, "-d -t 10.0.0.1:80 -r 10.0.0.2:80");
    // Default: dropped, the entry left as it is (SYN_RECV, its timer not restarted).
    assert_eq!(ipvs.packet(secs(1), a_id, Segment::Ack, false), Verdict::Drop);
    assert_eq!(ipvs.conn(a_id).unwrap().state(), ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(ipvs.conn(a_id).unwrap().deadline(), secs(60));
    let again = ipvs.new_conn(secs(2), &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!((again.verdict, again.conn), (Verdict::Drop, Some(a_id)), "a SYN retransmission too");
    // expire_nodest_conn=1: the SYN expires the entry and is scheduled afresh.
    ipvs.sysctls_mut().expire_nodest_conn = true;
    let fresh = ipvs.new_conn(secs(3), &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!((fresh.verdict, fresh.dest.to_string()), (Verdict::Accept, "10.0.0.3:80".into()));
    assert_eq!(ipvs.conn_count(), 2, "b and the fresh entry");
    // A SYN for an entry on a weight-0 server reschedules too; here nothing is left.
    run(&mut ipvs, "-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0");
    assert_eq!(ipvs.new_conn(secs(4), &flow("1.1.1.2", 1000), None), Err(NoDest::NoDestination));
    assert!(ipvs.conn(b_id).is_none() && ipvs.conn_count() == 1);
    let d = ipvs.service_by_id(fresh.service).scheduler().dest(fresh.dest_id);
    assert_eq!(d.active_conns() + d.inactive_conns(), 1, "b was unbound");
}

#[test]
fn expire_nodest_conn_flushes_a_deleted_servers_entries_and_templates() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr -p 300",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
    ]);
    ipvs.sysctls_mut().expire_nodest_conn = true;
    let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    let b = ipvs.new_conn(Time::ZERO, &flow("1.1.1.2", 1000), None).unwrap();
    assert_eq!((a.dest.to_string(), b.dest.to_string()), ("10.0.0.2:80".into(), "10.0.0.3:80".into()));
    assert_eq!(ipvs.conn_count(), 4, "two connections, two templates");
    run(&mut ipvs, "-d -t 10.0.0.1:80 -r 10.0.0.2:80");
    assert_eq!(ipvs.conn_count(), 2, "a and its template are gone");
    assert!(ipvs.conn(a.conn.unwrap()).is_none());
    let d = ipvs.service_by_id(a.service).scheduler().dest(a.dest_id);
    assert_eq!((d.active_conns(), d.inactive_conns(), d.persist_conns()), (0, 0, 0));
    assert_eq!(ipvs.expired_total(), 0, "a flush is not an expiry");
}

#[test]
fn expire_quiescent_template_moves_persistent_clients_off_a_weight_0_server() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr -p",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    ipvs.sysctls_mut().expire_quiescent_template = true;
    let first = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!(first.dest.to_string(), "10.0.0.3:80");
    let same = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1001), None).unwrap();
    assert_eq!(same.dest, first.dest, "weight 1: the template holds");
    run(&mut ipvs, "-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0");
    let moved = ipvs.new_conn(secs(2), &flow("1.1.1.1", 1002), None).unwrap();
    assert_eq!(moved.dest.to_string(), "10.0.0.2:80", "the template was invalidated");
    // The old template is unhashed but waits for its timer (its two connections).
    assert_eq!(ipvs.conn_count(), 3 + 1);
}
