//! A segment without an entry (`sloppy_tcp`, `sloppy_sctp`), and a SYN finding an old
//! entry (`conn_reuse_mode`, `expire_nodest_conn`), as `ip_vs_in()` and
//! `tcp_conn_schedule()` decide.

use super::{flow, run, secs, table};
use crate::tcp::{Segment, TcpState};
use crate::{ConnState, Ipvs, NoDest, Time, Verdict};
use lvs_sched::Protocol;

const MH: [&str; 4] = [
    "-A -t 10.0.0.1:80 -s mh",
    "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g",
    "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g",
    "-a -t 10.0.0.1:80 -r 10.0.0.4:80 -g",
];

#[test]
fn a_mid_connection_segment_without_an_entry_is_not_new_unless_sloppy() {
    let mut ipvs = table(&MH);
    let f = flow("1.1.1.1", 1000);
    for seg in [Segment::Ack, Segment::Fin, Segment::Rst] {
        assert_eq!(ipvs.schedule_segment(Time::ZERO, &f, seg, None), Err(NoDest::NotNew), "{seg:?}");
    }
    assert_eq!(ipvs.conn_count(), 0);
    ipvs.sysctls_mut().sloppy_tcp = true;
    assert_eq!(ipvs.schedule_segment(Time::ZERO, &f, Segment::Rst, None), Err(NoDest::NotNew), "never a RST");
    let s = ipvs.schedule_segment(Time::ZERO, &f, Segment::Ack, None).unwrap();
    // NONE --ack (INPUT_ONLY)--> ESTABLISHED: the entry is active at once, 900 s timeout.
    let c = ipvs.conn(s.conn.unwrap()).unwrap();
    assert_eq!(c.state(), ConnState::Tcp(TcpState::Established));
    assert_eq!(c.deadline(), secs(900));
    let d = ipvs.service_by_id(s.service).scheduler().dest(s.dest_id);
    assert_eq!((d.active_conns(), d.inactive_conns()), (1, 0));
    // The next segment finds that entry; a FIN on it is its packet, no new entry.
    let again = ipvs.schedule_segment(secs(1), &f, Segment::Fin, None).unwrap();
    assert_eq!((again.conn, again.dest, ipvs.conn_count()), (s.conn, s.dest, 1));
    assert_eq!(ipvs.conn(s.conn.unwrap()).unwrap().state(), ConnState::Tcp(TcpState::FinWait));
}

#[test]
fn sloppy_sctp_schedules_any_chunk_but_an_abort_and_udp_is_always_first() {
    let mut ipvs =
        table(&["-A --sctp-service 10.0.0.1:80 -s rr", "-a --sctp-service 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
    let f = lvs_sched::Flow { protocol: Protocol::Sctp, ..flow("1.1.1.1", 1000) };
    ipvs.sysctls_mut().sloppy_tcp = true;
    assert_eq!(
        ipvs.schedule_segment(Time::ZERO, &f, Segment::Ack, None),
        Err(NoDest::NotNew),
        "sloppy_tcp only"
    );
    ipvs.sysctls_mut().sloppy_sctp = true;
    assert_eq!(ipvs.schedule_segment(Time::ZERO, &f, Segment::Rst, None), Err(NoDest::NotNew));
    assert!(ipvs.schedule_segment(Time::ZERO, &f, Segment::Ack, None).is_ok());
    let mut udp = table(&["-A -u 10.0.0.1:53 -s rr", "-a -u 10.0.0.1:53 -r 10.0.0.2:53 -g"]);
    let u = lvs_sched::Flow { protocol: Protocol::Udp, dport: 53, ..flow("1.1.1.1", 1000) };
    assert!(udp.schedule_segment(Time::ZERO, &u, Segment::Ack, None).is_ok());
}

#[test]
fn sloppy_rescheduling_keeps_the_real_server_under_mh_not_under_rr() {
    // Two directors with the same servers and no sync: a flow that moves from one to the
    // other keeps its real server under mh (the table depends only on the server list)
    // and loses it under rr (the other director's position in its cycle differs).
    let flows: Vec<_> = (0..50u16).map(|i| flow(&format!("1.1.{}.{}", i / 7, i % 7 + 1), 2000 + i)).collect();
    let (mut a, mut b) = (table(&MH), table(&MH));
    b.sysctls_mut().sloppy_tcp = true;
    for (i, f) in flows.iter().enumerate() {
        let first = a.new_conn(Time::ZERO, f, None).unwrap();
        let moved = b.schedule_segment(secs(i as u64), f, Segment::Ack, None).unwrap();
        assert_eq!(moved.dest, first.dest, "mh picks the same server on both directors");
    }
    let rr = |ipvs: &mut Ipvs| run(ipvs, "-E -t 10.0.0.1:80 -s rr");
    let (mut a, mut b) = (table(&MH), table(&MH));
    rr(&mut a);
    rr(&mut b);
    b.sysctls_mut().sloppy_tcp = true;
    // Director a scheduled one connection before: its rr cursor is one server ahead.
    a.new_conn(Time::ZERO, &flow("9.9.9.9", 9), None).unwrap();
    let first = a.new_conn(Time::ZERO, &flows[0], None).unwrap();
    let moved = b.schedule_segment(secs(1), &flows[0], Segment::Ack, None).unwrap();
    assert_ne!(moved.dest, first.dest, "rr on b picks its own next server");
}

/// A DR entry taken to `state` by the client's segments (INPUT_ONLY table).
fn dr_entry(ipvs: &mut Ipvs, port: u16, segs: &[Segment]) -> crate::Scheduled {
    let s = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", port), None).unwrap();
    for &seg in segs {
        ipvs.packet(Time::ZERO, s.conn.unwrap(), seg, false);
    }
    s
}

#[test]
fn conn_reuse_mode_decides_which_old_entries_a_syn_expires() {
    let rr = [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g",
    ];
    // (mode, segments after the SYN, rescheduled?)
    let fin_wait = [Segment::Ack, Segment::Fin];
    let time_wait = [Segment::Fin];
    let cases: [(u8, &[Segment], TcpState, bool); 7] = [
        (0, &time_wait, TcpState::TimeWait, false),
        (1, &time_wait, TcpState::TimeWait, true),
        (1, &fin_wait, TcpState::FinWait, false),
        (2, &fin_wait, TcpState::FinWait, true),
        (3, &fin_wait, TcpState::FinWait, true),
        (2, &time_wait, TcpState::TimeWait, true),
        (1, &[Segment::Ack], TcpState::Established, false),
    ];
    for (mode, segs, state, resched) in cases {
        let mut ipvs = table(&rr);
        ipvs.sysctls_mut().conn_reuse_mode = mode;
        let old = dr_entry(&mut ipvs, 1000, segs);
        assert_eq!(ipvs.conn(old.conn.unwrap()).unwrap().state(), ConnState::Tcp(state));
        let syn = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1000), None).unwrap();
        let what = format!("mode {mode} in {state:?}");
        // (The freed slot is reused, so the handle does not tell a new entry; the
        // server does: rr has two.)
        assert_eq!(syn.dest != old.dest, resched, "{what}: rr moves on iff rescheduled");
        assert_eq!(ipvs.conn_count(), 1, "{what}");
    }
}

#[test]
fn conn_reuse_mode_2_spares_a_nat_entry_in_fin_wait() {
    let mut ipvs = table(&[
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
    ]);
    ipvs.sysctls_mut().conn_reuse_mode = 2;
    let old = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
    let id = old.conn.unwrap();
    for (seg, out) in [(Segment::Syn, true), (Segment::Ack, false), (Segment::Fin, true)] {
        ipvs.packet(Time::ZERO, id, seg, out);
    }
    assert_eq!(ipvs.conn(id).unwrap().state(), ConnState::Tcp(TcpState::FinWait));
    let syn = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1000), None).unwrap();
    assert_eq!((syn.conn, syn.dest), (old.conn, old.dest), "the director saw output: not NOOUTPUT");
}

#[test]
fn expire_nodest_conns_weight_0_rule_holds_whatever_conn_reuse_mode() {
    // Measured in the VM (6.1): with conn_reuse_mode 0 and expire_nodest_conn 1, a SYN on
    // an entry whose server has weight 0 is rescheduled; without expire_nodest_conn it
    // keeps the weight-0 server (the entry is ESTABLISHED: no reuse rule applies).
    let rr = [
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g",
    ];
    for (mode, expire, resched) in [(0, true, true), (1, true, true), (0, false, false), (1, false, false)] {
        let mut ipvs = table(&rr);
        ipvs.sysctls_mut().expire_nodest_conn = expire;
        ipvs.sysctls_mut().conn_reuse_mode = mode;
        let old = dr_entry(&mut ipvs, 1000, &[Segment::Ack]);
        run(&mut ipvs, &format!("-e -t 10.0.0.1:80 -r {} -g -w 0", old.dest));
        let syn = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1000), None).unwrap();
        assert_eq!(syn.verdict, Verdict::Accept);
        assert_eq!(syn.dest != old.dest, resched, "mode {mode}, expire_nodest_conn {expire}");
    }
}
