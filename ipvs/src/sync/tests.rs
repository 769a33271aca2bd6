//! Table-level tests of connection sync: the master's decisions (hand-counted packet
//! numbers) and the backup's entries.

use lvs_sched::{Flow, Protocol};

use super::*;
use crate::Verdict;
use crate::ipvsadm::{apply, parse, words};
use crate::tcp::Segment;

fn table(lines: &[&str]) -> Ipvs {
    let mut ipvs = Ipvs::new(7);
    for l in lines {
        apply(&mut ipvs, &parse(&words(l)).unwrap()).unwrap();
    }
    ipvs
}

/// A DR service 10.0.0.1:80 with real servers .2 and .3 (rr picks .3 first).
const DR: [&str; 3] =
    ["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g", "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g"];

fn master(lines: &[&str], params: SyncParams) -> Ipvs {
    let mut ipvs = table(lines);
    ipvs.set_sync_master(Some(params));
    ipvs
}

fn flow(protocol: Protocol, client: &str, port: u16) -> Flow {
    Flow {
        protocol,
        saddr: client.parse().unwrap(),
        sport: port,
        daddr: "10.0.0.1".parse().unwrap(),
        dport: 80,
    }
}

fn tcp(client: &str, port: u16) -> Flow {
    flow(Protocol::Tcp, client, port)
}

fn ms(n: u64) -> Time {
    Time(n * 1_000_000)
}

fn secs(s: u64) -> Time {
    Time::ZERO + Duration::from_secs(s)
}

fn taken(ipvs: &mut Ipvs) -> Vec<SyncConn> {
    let mut out = Vec::new();
    ipvs.take_synced(&mut out);
    out
}

/// The first message (a SYN, or a UDP datagram) of `pkts` packets: its entry and the
/// records it queued.
fn open(ipvs: &mut Ipvs, now: Time, f: &Flow, pkts: u64) -> (ConnId, Vec<SyncConn>) {
    let id = ipvs.new_conn(now, f, None).unwrap().conn.unwrap();
    ipvs.count(id, false, pkts, 60 * pkts);
    (id, taken(ipvs))
}

/// A later incoming message of `pkts` packets flagged `seg`: the records it queued.
fn incoming(ipvs: &mut Ipvs, now: Time, id: ConnId, seg: Segment, pkts: u64) -> Vec<SyncConn> {
    assert_eq!(ipvs.packet(now, id, seg, false), Verdict::Accept);
    ipvs.count(id, false, pkts, 60 * pkts);
    taken(ipvs)
}

fn state(r: &SyncConn) -> ConnState {
    r.state
}

const ES: ConnState = ConnState::Tcp(TcpState::Established);
const FW: ConnState = ConnState::Tcp(TcpState::FinWait);

/// The packet numbers, among a SYN and ACKs 2..=last (one packet each), at which the
/// connection was queued.
fn sent_at(params: SyncParams, last: u64) -> Vec<u64> {
    let mut ipvs = master(&DR, params);
    let (id, first) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    let mut at: Vec<u64> = if first.is_empty() { vec![] } else { vec![1] };
    for k in 2..=last {
        if !incoming(&mut ipvs, ms(k), id, Segment::Ack, 1).is_empty() {
            at.push(k);
        }
    }
    at
}

#[test]
fn tcp_connection_is_sent_at_packets_3_53_103() {
    // SYN: SYN_RECV, not a synced state. From the ACK (packet 2) on, ESTABLISHED:
    // 3 % 50 = 3, 53 % 50 = 3, 103 % 50 = 3; 2, 4 and 52 leave 2, 4, 2.
    assert_eq!(sent_at(SyncParams::default(), 110), [3, 53, 103]);
    // sync_period 0: only packet 3 == threshold.
    assert_eq!(sent_at(SyncParams { period: 0, ..SyncParams::default() }, 110), [3]);
    // "2 10": packets 2, 12, 22.
    assert_eq!(sent_at(SyncParams { threshold: 2, period: 10, version: 1 }, 25), [2, 12, 22]);
}

#[test]
fn the_record_says_what_the_entry_is() {
    let mut ipvs = master(&DR, SyncParams::default());
    let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    incoming(&mut ipvs, ms(1), id, Segment::Ack, 1);
    let r = incoming(&mut ipvs, ms(2), id, Segment::Ack, 1);
    let expected = SyncConn {
        protocol: IPPROTO_TCP,
        caddr: "1.1.1.1".parse().unwrap(),
        cport: 1000,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
        daddr: "10.0.0.3".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        state: ES,
        // Direct routing (3), no replies seen (NOOUTPUT 0x80), established: not INACTIVE.
        flags: 3 | flags::NOOUTPUT,
        timeout: 900,
    };
    assert_eq!(r, [expected]);
}

#[test]
fn a_fin_into_fin_wait_is_sent_at_once_whatever_the_count() {
    for period in [50, 0] {
        let mut ipvs = master(&DR, SyncParams { period, ..SyncParams::default() });
        let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
        let mut sent = 0;
        for k in 2..=10 {
            sent += incoming(&mut ipvs, ms(k), id, Segment::Ack, 1).len();
        }
        assert_eq!(sent, 1, "packet 3");
        // Packet 11, a FIN: ESTABLISHED -> FIN_WAIT (input only), 11 % 50 = 11, but the
        // state is not the one last sent: forced.
        let fin = incoming(&mut ipvs, ms(11), id, Segment::Fin, 1);
        assert_eq!(fin.iter().map(state).collect::<Vec<_>>(), [FW]);
        assert_eq!((fin[0].flags & flags::INACTIVE, fin[0].timeout), (flags::INACTIVE, 120));
        // Packet 12 stays in FIN_WAIT, which was sent: the packet test again.
        assert!(incoming(&mut ipvs, ms(12), id, Segment::Ack, 1).is_empty());
    }
}

#[test]
fn a_three_message_connection_is_sent_when_its_fin_arrives() {
    let mut ipvs = master(&DR, SyncParams::default());
    // SYN (1, SYN_RECV), ACK with the request (2, ESTABLISHED, 2 != 3), FIN (3): packet 3
    // and a state change to FIN_WAIT at once: one record.
    let (id, syn) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    assert!(syn.is_empty());
    assert!(incoming(&mut ipvs, ms(1), id, Segment::Ack, 1).is_empty());
    let fin = incoming(&mut ipvs, ms(2), id, Segment::Fin, 1);
    assert_eq!(fin.iter().map(state).collect::<Vec<_>>(), [FW]);
}

#[test]
fn a_state_a_reply_moved_to_is_sent_with_the_next_incoming_packet() {
    let nat = ["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m"];
    let mut ipvs = master(&nat, SyncParams::default());
    let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    ipvs.packet(ms(1), id, Segment::Syn, true);
    ipvs.count(id, true, 1, 60);
    assert!(incoming(&mut ipvs, ms(2), id, Segment::Ack, 1).is_empty(), "packet 2");
    assert_eq!(incoming(&mut ipvs, ms(3), id, Segment::Ack, 1).iter().map(state).collect::<Vec<_>>(), [ES]);
    // The server closes: its FIN (output) moves ESTABLISHED to FIN_WAIT; replies are
    // never decided on.
    ipvs.packet(ms(4), id, Segment::Fin, true);
    ipvs.count(id, true, 1, 60);
    assert!(taken(&mut ipvs).is_empty());
    // The client's ACK (packet 4) leaves FIN_WAIT as it is, but the last state sent was
    // ESTABLISHED (the kernel's old_state): forced.
    let ack = incoming(&mut ipvs, ms(5), id, Segment::Ack, 1);
    assert_eq!(ack.iter().map(state).collect::<Vec<_>>(), [FW]);
    assert_eq!(ack[0].flags & flags::NOOUTPUT, 0, "NAT");
    assert!(incoming(&mut ipvs, ms(6), id, Segment::Ack, 1).is_empty(), "packet 5");
}

#[test]
fn a_message_crossing_the_threshold_is_sent_once() {
    let mut ipvs = master(&DR, SyncParams::default());
    let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    // in_pkts 1 -> 6: packets 2..=6 hold 3: one record.
    assert_eq!(incoming(&mut ipvs, ms(1), id, Segment::Ack, 5).len(), 1);
    // 6 -> 50: none of 7..=50 is 3 mod 50.
    assert!(incoming(&mut ipvs, ms(2), id, Segment::Ack, 44).is_empty());
    // 50 -> 170 holds 53, 103 and 153: still one record.
    assert_eq!(incoming(&mut ipvs, ms(3), id, Segment::Ack, 120).len(), 1);
}

#[test]
fn udp_has_the_packet_test_only_and_one_packet_entries_are_never_sent() {
    let udp = ["-A -u 10.0.0.1:80 -s rr", "-a -u 10.0.0.1:80 -r 10.0.0.2:80 -g"];
    let mut ipvs = master(&udp, SyncParams::default());
    let f = flow(Protocol::Udp, "1.1.1.1", 5000);
    let (id, _) = open(&mut ipvs, ms(0), &f, 1);
    let mut at = Vec::new();
    for k in 2..=60 {
        // A datagram: the state machine leaves UDP entries alone.
        let r = incoming(&mut ipvs, ms(k), id, Segment::Ack, 1);
        if !r.is_empty() {
            assert_eq!((r[0].state, r[0].protocol, r[0].timeout), (ConnState::Udp, IPPROTO_UDP, 300));
            assert_eq!(r[0].flags, 3 | flags::NOOUTPUT | flags::INACTIVE, "UDP is always inactive");
            at.push(k);
        }
    }
    assert_eq!(at, [3, 53]);
    let one = ["-A -u 10.0.0.1:80 -s rr -o", "-a -u 10.0.0.1:80 -r 10.0.0.2:80 -g"];
    let mut ipvs = master(&one, SyncParams::default());
    for k in 0..10 {
        let s = ipvs.new_conn(ms(k), &f, None).unwrap();
        assert_eq!(s.conn, None, "one-packet: no entry");
        ipvs.count_on(s.service, s.dest_id, false, 1, 60);
    }
    assert!(taken(&mut ipvs).is_empty());
}

/// Records of a persistent DR service's connection over its first `n` one-packet
/// messages: for each, the states sent, in order.
fn persistent_records(params: SyncParams, n: u64) -> Vec<Vec<ConnState>> {
    let lines = ["-A -t 10.0.0.1:80 -s rr -p 300", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"];
    let mut ipvs = master(&lines, params);
    let (id, first) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    let mut all = vec![first.iter().map(state).collect::<Vec<_>>()];
    for k in 2..=n {
        all.push(incoming(&mut ipvs, ms(k), id, Segment::Ack, 1).iter().map(state).collect());
    }
    all
}

#[test]
fn a_persistent_connections_template_goes_with_it() {
    let t = ConnState::Template;
    // Version 1 considers the template at every incoming packet (the connection in
    // SYN_RECV is not sent, its template is), and it skips the packet test.
    assert_eq!(persistent_records(SyncParams::default(), 4), [vec![t], vec![t], vec![ES, t], vec![t]]);
    // Version 0: only after the connection, at packet 3.
    let v0 = SyncParams { version: 0, ..SyncParams::default() };
    assert_eq!(persistent_records(v0, 4), [vec![], vec![], vec![ES, t], vec![]]);
    // Period 0: the template's own count must reach 3, which it does at packet 3 too.
    let once = SyncParams { period: 0, ..SyncParams::default() };
    assert_eq!(persistent_records(once, 4), [vec![], vec![], vec![ES, t], vec![]]);
}

#[test]
fn a_template_record_is_the_kernels_template() {
    let lines = ["-A -t 10.0.0.1:80 -s rr -p 300 -M 255.255.255.0", "-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m"];
    let mut ipvs = master(&lines, SyncParams::default());
    let (_, first) = open(&mut ipvs, ms(0), &tcp("1.1.1.77", 1000), 1);
    let expected = SyncConn {
        protocol: IPPROTO_TCP,
        caddr: "1.1.1.0".parse().unwrap(),
        cport: 0,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
        daddr: "10.0.0.2".parse().unwrap(),
        dport: 8080,
        fwmark: 0,
        state: ConnState::Template,
        // NAT (0): replies pass the director, no NOOUTPUT.
        flags: flags::INACTIVE | flags::TEMPLATE,
        timeout: 300,
    };
    assert_eq!(first, [expected]);
    // A firewall-mark service's template: <IPPROTO_IP, caddr, 0, mark, 0, daddr, 0>.
    let fwm = ["-A -f 7 -s rr -p 300", "-a -f 7 -r 10.0.0.2:0 -g"];
    let mut ipvs = master(&fwm, SyncParams::default());
    let id = ipvs.new_conn(ms(0), &tcp("1.1.1.1", 1000), Some(7)).unwrap().conn.unwrap();
    ipvs.count(id, false, 1, 60);
    let r = taken(&mut ipvs);
    assert_eq!(
        (r[0].protocol, r[0].vaddr.to_string(), r[0].vport, r[0].dport),
        (IPPROTO_IP, "0.0.0.7".into(), 0, 0)
    );
    assert_eq!(r[0].fwmark, 7);
    // A backup with the same service finds it by the mark and the DR server by port 0,
    // and its persistence uses it.
    let mut backup = table(&fwm);
    let tid = backup.apply_sync(ms(1), &r[0]).unwrap();
    let next = backup.new_conn(ms(2), &tcp("1.1.1.1", 1001), Some(7)).unwrap();
    assert_eq!(backup.conn(next.conn.unwrap()).unwrap().control(), Some(tid));
}

#[test]
fn a_template_outliving_its_timeout_is_sent_when_re_armed() {
    let lines = ["-A -t 10.0.0.1:80 -s rr -p 100", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"];
    let mut ipvs = master(&lines, SyncParams::default());
    let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    incoming(&mut ipvs, ms(1), id, Segment::Ack, 1);
    // At 100 s the template still controls the established connection: re-armed for
    // 60 s (ip_vs_conn_expire()'s expire_later), and sent so.
    ipvs.advance(Time(secs(100).0 - 1));
    assert!(taken(&mut ipvs).is_empty());
    ipvs.advance(secs(100));
    let r = taken(&mut ipvs);
    assert_eq!(r.iter().map(|r| (r.state, r.timeout)).collect::<Vec<_>>(), [(ConnState::Template, 60)]);
}

#[test]
fn without_sync_the_table_keeps_no_sync_state() {
    let mut ipvs = table(&DR);
    let before = ipvs.heap_bytes();
    let (id, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    for k in 1..10 {
        incoming(&mut ipvs, ms(k), id, Segment::Ack, 1);
    }
    assert!(ipvs.sync.is_none() && ipvs.sync_params().is_none());
    assert!(taken(&mut ipvs).is_empty());
    assert!(ipvs.heap_bytes() >= before);
    // A backup-only table counts but never decides.
    ipvs.set_sync_params(SyncParams::default());
    for k in 10..20 {
        assert!(incoming(&mut ipvs, ms(k), id, Segment::Ack, 1).is_empty());
    }
    ipvs.set_sync_master(Some(SyncParams::default()));
    ipvs.set_sync_master(None);
    assert!(incoming(&mut ipvs, ms(30), id, Segment::Ack, 1).is_empty());
}

#[test]
fn a_reused_slot_counts_its_packets_afresh() {
    let mut ipvs = master(&DR, SyncParams::default());
    let (a, _) = open(&mut ipvs, ms(0), &tcp("1.1.1.1", 1000), 1);
    incoming(&mut ipvs, ms(1), a, Segment::Ack, 1);
    // ESTABLISHED expires 900 s after packet 2.
    ipvs.advance(secs(901));
    assert!(ipvs.conn(a).is_none());
    let (b, _) = open(&mut ipvs, secs(902), &tcp("1.1.1.2", 1000), 1);
    assert_eq!(b, a, "the freed slot is reused");
    // b's own packets 2 and 3 (a's count would have made them 4 and 5).
    assert!(incoming(&mut ipvs, secs(903), b, Segment::Ack, 1).is_empty());
    assert_eq!(incoming(&mut ipvs, secs(904), b, Segment::Ack, 1).len(), 1);
}

fn dest_counts(ipvs: &Ipvs, addr: &str) -> (u32, u32, u32) {
    let svc = ipvs.services().next().unwrap();
    let id = svc.scheduler().find_dest(addr.parse().unwrap(), 80).unwrap();
    let d = svc.scheduler().dest(id);
    (d.active_conns(), d.inactive_conns(), d.persist_conns())
}

fn record(client: &str, daddr: &str, state: ConnState, timeout: u32) -> SyncConn {
    let inactive = if state == ES { 0 } else { flags::INACTIVE };
    SyncConn {
        protocol: IPPROTO_TCP,
        caddr: client.parse().unwrap(),
        cport: 1000,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
        daddr: daddr.parse().unwrap(),
        dport: 80,
        fwmark: 0,
        state,
        flags: 3 | flags::NOOUTPUT | inactive,
        timeout,
    }
}

#[test]
fn a_synced_entry_is_bound_counted_forwarded_and_expired_as_a_local_one() {
    let mut backup = table(&DR);
    // rr would pick .3 first; the record says .2.
    let id = backup.apply_sync(secs(10), &record("1.1.1.1", "10.0.0.2", ES, 60)).unwrap();
    assert_eq!(dest_counts(&backup, "10.0.0.2"), (1, 0, 0), "ActiveConn counts it");
    assert_eq!(backup.find_conn(&tcp("1.1.1.1", 1000)), Some(id));
    let svc = backup.conn_service(id).unwrap();
    assert_eq!(svc.conns_created(), 0, "not scheduled here");
    assert_eq!(backup.conn(id).unwrap().deadline(), secs(70), "armed for the record's 60 s");
    // A packet of the connection reaches the backup: forwarded to .2, no rescheduling.
    assert_eq!(backup.packet(secs(20), id, Segment::Ack, false), Verdict::Accept);
    backup.count(id, false, 1, 60);
    assert_eq!((backup.conn_count(), backup.conn(id).unwrap().state()), (1, ES));
    assert_eq!(backup.conn(id).unwrap().deadline(), secs(920), "re-armed for ESTABLISHED: 900 s");
    // A FIN_WAIT record: inactive, re-armed for its 120 s.
    assert_eq!(backup.apply_sync(secs(30), &record("1.1.1.1", "10.0.0.2", FW, 120)), Ok(id));
    assert_eq!(dest_counts(&backup, "10.0.0.2"), (0, 1, 0));
    assert_eq!(backup.conn(id).unwrap().deadline(), secs(150));
    backup.advance(Time(secs(150).0 - 1));
    assert_eq!(backup.find_conn(&tcp("1.1.1.1", 1000)), Some(id));
    backup.advance(secs(150));
    assert_eq!(backup.find_conn(&tcp("1.1.1.1", 1000)), None, "expired");
    assert_eq!((dest_counts(&backup, "10.0.0.2"), backup.expired_total()), ((0, 0, 0), 1));
}

#[test]
fn a_synced_entry_counts_from_the_threshold_and_is_forced_on_its_next_state() {
    let mut backup = table(&DR);
    let id = backup.apply_sync(secs(1), &record("1.1.1.1", "10.0.0.2", ES, 900)).unwrap();
    // The backup takes over as master: in_pkts was set to 3, so the next send is 53.
    backup.set_sync_master(Some(SyncParams::default()));
    let mut at = Vec::new();
    for k in 4..=60 {
        if !incoming(&mut backup, secs(k), id, Segment::Ack, 1).is_empty() {
            at.push(k);
        }
    }
    assert_eq!(at, [53]);
    assert_eq!(
        incoming(&mut backup, secs(61), id, Segment::Fin, 1).iter().map(state).collect::<Vec<_>>(),
        [FW]
    );
}

#[test]
fn version_0_records_use_the_backups_own_timeouts() {
    let mut backup = table(&["-A -t 10.0.0.1:80 -s rr -p 600", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
    let id = backup.apply_sync(secs(0), &record("1.1.1.1", "10.0.0.2", ES, 0)).unwrap();
    assert_eq!(backup.conn(id).unwrap().deadline(), secs(900));
    let t = SyncConn {
        cport: 0,
        state: ConnState::Template,
        flags: 3 | flags::NOOUTPUT | flags::INACTIVE | flags::TEMPLATE,
        ..record("1.1.1.1", "10.0.0.2", ES, 0)
    };
    let tid = backup.apply_sync(secs(0), &t).unwrap();
    assert_eq!(backup.conn(tid).unwrap().deadline(), secs(180), "a version 0 template: 180 s");
    assert_eq!(dest_counts(&backup, "10.0.0.2"), (1, 0, 1));
    // The same template again: updated, not doubled.
    assert_eq!(backup.apply_sync(secs(10), &SyncConn { timeout: 600, ..t }), Ok(tid));
    assert_eq!(
        (dest_counts(&backup, "10.0.0.2"), backup.conn(tid).unwrap().deadline()),
        ((1, 0, 1), secs(610))
    );
}

#[test]
fn records_the_backup_cannot_place_are_refused() {
    let mut backup = table(&DR);
    let r = record("1.1.1.1", "10.0.0.2", ES, 900);
    assert_eq!(backup.apply_sync(ms(0), &SyncConn { vport: 81, ..r }), Err(SyncRefused::NoService));
    assert_eq!(
        backup.apply_sync(ms(0), &SyncConn { daddr: "10.0.0.9".parse().unwrap(), ..r }),
        Err(SyncRefused::NoDest)
    );
    assert_eq!(backup.apply_sync(ms(0), &SyncConn { protocol: IPPROTO_UDP, ..r }), Err(SyncRefused::Invalid));
    assert_eq!(
        backup.apply_sync(ms(0), &SyncConn { daddr: "::1".parse().unwrap(), ..r }),
        Err(SyncRefused::Invalid)
    );
    let id = backup.apply_sync(ms(0), &r).unwrap();
    // The connection was rescheduled to .3 on the master: the .2 entry is replaced by an
    // active record, and an inactive one for .2 afterwards is stale.
    let moved = record("1.1.1.1", "10.0.0.3", ES, 900);
    let fin_old = record("1.1.1.1", "10.0.0.2", FW, 120);
    let new = backup.apply_sync(ms(1), &moved).unwrap();
    assert_eq!((dest_counts(&backup, "10.0.0.2"), dest_counts(&backup, "10.0.0.3")), ((0, 0, 0), (1, 0, 0)));
    assert_eq!(backup.apply_sync(ms(2), &fin_old), Err(SyncRefused::Stale));
    assert_eq!((backup.conn_count(), new), (1, id), "the freed slot was reused");
}

#[test]
fn find_conn_finds_local_and_synced_entries_but_no_expired_one() {
    let mut ipvs = table(&DR);
    let f = tcp("1.1.1.1", 1000);
    assert_eq!(ipvs.find_conn(&f), None);
    let (id, _) = open(&mut ipvs, ms(0), &f, 1);
    assert_eq!(ipvs.find_conn(&f), Some(id));
    assert_eq!(ipvs.find_conn(&tcp("1.1.1.1", 1001)), None);
    assert_eq!(ipvs.find_conn(&flow(Protocol::Udp, "1.1.1.1", 1000)), None, "protocol is part of the key");
    let synced = ipvs.apply_sync(ms(1), &record("1.1.1.2", "10.0.0.2", ES, 900)).unwrap();
    assert_eq!(ipvs.find_conn(&tcp("1.1.1.2", 1000)), Some(synced));
    // SYN_RECV expires at 60 s, the synced entry at 900 s.
    ipvs.advance(secs(61));
    assert_eq!((ipvs.find_conn(&f), ipvs.find_conn(&tcp("1.1.1.2", 1000))), (None, Some(synced)));
}

/// Everything `master` queued, through a sender and the wire, applied on `backup`.
fn replicate(master: &mut Ipvs, backup: &mut Ipvs, now: Time) -> Vec<ConnId> {
    let mut sender = Sender::new(&SyncConfig::default(), 1);
    let mut msgs: Vec<Vec<u8>> = taken(master).iter().filter_map(|c| sender.push(now, c)).collect();
    msgs.extend(sender.flush(now + Duration::from_secs(2)));
    let mut ids = Vec::new();
    for m in msgs {
        for c in decode(&m).unwrap() {
            ids.push(backup.apply_sync(now, &c).unwrap());
        }
    }
    ids
}

#[test]
fn master_to_backup_round_trip_keeps_server_and_state() {
    let mut m = master(&DR, SyncParams::default());
    let mut b = table(&DR);
    // Two connections, 3 packets each: rr sends 1.1.1.1 to .3 and 1.1.1.2 to .2; both
    // are queued at packet 3, in that order.
    let mut ids = Vec::new();
    for (t, client) in [(0, "1.1.1.1"), (10, "1.1.1.2")] {
        let id = m.new_conn(ms(t), &tcp(client, 1000), None).unwrap().conn.unwrap();
        m.count(id, false, 1, 60);
        for k in 2..=3 {
            assert_eq!(m.packet(ms(t + k), id, Segment::Ack, false), Verdict::Accept);
            m.count(id, false, 1, 60);
        }
        ids.push(id);
    }
    let synced = replicate(&mut m, &mut b, secs(1));
    assert_eq!(synced.len(), 2);
    for (&local, &remote) in ids.iter().zip(&synced) {
        let server = |ipvs: &Ipvs, id: ConnId| {
            let c = ipvs.conn(id).unwrap();
            ipvs.conn_service(id).unwrap().scheduler().dest(c.dest()).addr()
        };
        assert_eq!(server(&m, local), server(&b, remote));
        let (l, r) = (m.conn(local).unwrap(), b.conn(remote).unwrap());
        assert_eq!((r.state(), r.client(), r.virtual_addr()), (l.state(), l.client(), l.virtual_addr()));
    }
    assert_eq!((dest_counts(&b, "10.0.0.2"), dest_counts(&b, "10.0.0.3")), ((1, 0, 0), (1, 0, 0)));
}

#[test]
fn a_synced_template_keeps_persistence_on_the_backup() {
    let lines = [
        "-A -t 10.0.0.1:80 -s rr -p 300",
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g",
        "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -g",
    ];
    let mut m = master(&lines, SyncParams::default());
    let mut b = table(&lines);
    // The master sends 1.1.1.1 to .3 (rr's first) and its template at the SYN.
    let first = m.new_conn(ms(0), &tcp("1.1.1.1", 1000), None).unwrap();
    assert_eq!(first.dest.to_string(), "10.0.0.3:80");
    m.count(first.conn.unwrap(), false, 1, 60);
    // The backup's rr has moved on: its next pick would be .2.
    assert_eq!(b.new_conn(ms(0), &tcp("9.9.9.9", 1000), None).unwrap().dest.to_string(), "10.0.0.3:80");
    let ids = replicate(&mut m, &mut b, ms(1));
    assert_eq!(ids.len(), 1);
    assert_eq!(b.conn(ids[0]).unwrap().state(), ConnState::Template);
    assert_eq!(b.conn(ids[0]).unwrap().deadline(), ms(1) + Duration::from_secs(300));
    assert_eq!(dest_counts(&b, "10.0.0.3"), (1, 0, 2), "9.9.9.9's SYN_RECV entry; two templates");
    // After a fail-over, 1.1.1.1's next connection on the backup follows the template.
    let next = b.new_conn(secs(5), &tcp("1.1.1.1", 1001), None).unwrap();
    assert_eq!(next.dest.to_string(), "10.0.0.3:80");
    assert_eq!(b.conn(next.conn.unwrap()).unwrap().control(), Some(ids[0]));
    // Another client is scheduled: rr gives .2.
    assert_eq!(b.new_conn(secs(5), &tcp("1.1.1.2", 1000), None).unwrap().dest.to_string(), "10.0.0.2:80");
}
