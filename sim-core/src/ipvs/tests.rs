//! Unit tests of the IPVS table's data path.

use lvs_sched::{Flow, Protocol};

use super::tcp::Segment;
use super::*;
use crate::ipvs::ipvsadm::{apply, parse, words};

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
    let svc = ipvs.service(&ServiceKey::Inet {
        protocol: ProtocolKey::Tcp,
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
    let key = |port| ServiceKey::Inet { protocol: ProtocolKey::Tcp, addr: "10.0.0.1".parse().unwrap(), port };
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
