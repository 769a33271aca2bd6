//! The defences against hand-computed expectations from the kernel's code.

use lvs_sched::{Flow, Protocol};

use super::super::tcp::{Segment, TcpState};
use super::super::*;
use crate::ipvsadm::{apply, parse, words};

/// A NAT (`-m`) or DR (`-g`) service 10.0.0.1:80 with two real servers.
fn table(fwd: &str) -> Ipvs {
    let mut ipvs = Ipvs::new(7);
    for l in [
        "-A -t 10.0.0.1:80 -s rr".to_string(),
        format!("-a -t 10.0.0.1:80 -r 10.0.0.2:80 {fwd}"),
        format!("-a -t 10.0.0.1:80 -r 10.0.0.3:80 {fwd}"),
    ] {
        apply(&mut ipvs, &parse(&words(&l)).unwrap()).unwrap();
    }
    ipvs
}

/// Client `n` (a distinct address and port each).
fn flow(n: u32) -> Flow {
    Flow {
        protocol: Protocol::Tcp,
        saddr: std::net::Ipv4Addr::from(0x0B00_0000 + n).into(),
        sport: 1024 + (n % 60000) as u16,
        daddr: "10.0.0.1".parse().unwrap(),
        dport: 80,
    }
}

fn at(ms: u64) -> Time {
    Time::ZERO + Duration::from_millis(ms)
}

/// `n` spoofed SYNs (clients `from..from + n`) at `t`: the outcome of each.
fn syns(ipvs: &mut Ipvs, t: Time, from: u32, n: u32) -> Vec<Result<(), NoDest>> {
    (from..from + n).map(|i| ipvs.new_conn(t, &flow(i), None).map(|_| ())).collect()
}

/// One page an entry, so that the table's size is the memory it uses in pages.
fn memory(avail_pages: i64) -> Option<Memory> {
    Some(Memory { avail_pages, entry_bytes: PAGE_BYTES as u32 })
}

#[test]
fn defaults_change_nothing_and_never_run_short() {
    let mut ipvs = table("-m");
    assert!(syns(&mut ipvs, at(0), 0, 50).iter().all(Result::is_ok));
    ipvs.advance(at(5_000));
    assert_eq!(ipvs.defense_stats(), DefenseStats::default());
    let level = ipvs.defense_level();
    assert_eq!(
        (level.avail_pages, level.drop_rate, level.drop_entry, level.secure_tcp),
        (None, 0, false, false)
    );
    assert_eq!(ipvs.sysctls(), Sysctls::default());
}

#[test]
fn memory_exhaustion_refuses_new_entries_until_one_expires() {
    let mut ipvs = table("-m");
    // 3 pages: entries of 1500 bytes, 8 fit in 12288 bytes, the ninth does not.
    ipvs.set_memory(Some(Memory { avail_pages: 3, entry_bytes: 1500 }));
    let out = syns(&mut ipvs, at(0), 0, 9);
    assert!(out[..8].iter().all(Result::is_ok));
    assert_eq!(out[8], Err(NoDest::NoMemory));
    assert_eq!(ipvs.avail_pages(), Some(0), "8 x 1500 bytes round up to 3 pages");
    assert_eq!(ipvs.defense_stats().no_memory, 1);
    // SYN_RECV (NAT, no reply seen) lasts 60 s: at 60 s the eight expire.
    assert_eq!(syns(&mut ipvs, at(59_999), 100, 1), vec![Err(NoDest::NoMemory)]);
    assert_eq!(syns(&mut ipvs, at(60_000), 100, 1), vec![Ok(())]);
    assert_eq!(ipvs.conn_count(), 1);
}

#[test]
fn drop_packet_auto_rate_is_amemthresh_over_the_shortfall_and_flips_back() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().drop_packet = 1;
    // amemthresh 1024 (default); 1080 pages free; 312 entries of a page: 768 available,
    // drop_rate = 1024 / (1024 - 768) = 4.
    ipvs.set_memory(memory(1_080));
    assert!(syns(&mut ipvs, at(0), 0, 312).iter().all(Result::is_ok));
    ipvs.advance(at(1_000));
    assert_eq!(ipvs.sysctls().drop_packet, 2, "mode 1 turns to 2 below amemthresh");
    assert_eq!(ipvs.defense_level().drop_rate, 4);
    // drop_counter = drop_rate = 4: the 4th and 8th new connections are dropped.
    let out = syns(&mut ipvs, at(1_000), 1_000, 8);
    let dropped: Vec<usize> = (0..8).filter(|&i| out[i] == Err(NoDest::DefenseDrop)).collect();
    assert_eq!(dropped, vec![3, 7]);
    assert_eq!(ipvs.defense_stats().packets_dropped, 2);
    // 318 entries now: 762 pages, rate 1024 / 262 = 3 at the next run (counter reset).
    ipvs.advance(at(2_000));
    assert_eq!(ipvs.defense_level().drop_rate, 3);
    // Memory comes back: the run after the 60 s expiry switches the mode back to 1.
    ipvs.advance(at(62_000));
    assert_eq!(ipvs.conn_count(), 0);
    assert_eq!((ipvs.sysctls().drop_packet, ipvs.defense_level().drop_rate), (1, 0));
    assert!(syns(&mut ipvs, at(62_000), 2_000, 10).iter().all(Result::is_ok));
}

#[test]
fn drop_packet_mode_3_drops_the_first_then_one_in_am_droprate() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().drop_packet = 3;
    // Before the first run (1 s) nothing is dropped.
    assert!(syns(&mut ipvs, at(0), 0, 5).iter().all(Result::is_ok));
    ipvs.advance(at(1_000));
    assert_eq!(ipvs.defense_level().drop_rate, 10, "am_droprate, whatever the memory");
    // drop_counter starts at 0: --0 is not > 0, so the first is dropped, then every 10th.
    let out = syns(&mut ipvs, at(1_000), 100, 25);
    let dropped: Vec<usize> = (0..25).filter(|&i| out[i] == Err(NoDest::DefenseDrop)).collect();
    assert_eq!(dropped, vec![0, 10, 20]);
    ipvs.sysctls_mut().am_droprate = 2;
    ipvs.update_defense_level();
    let out = syns(&mut ipvs, at(1_500), 200, 4);
    // The counter (6 after the 25) runs on: 5, 4, 3, 2 pass; the new rate applies at
    // the next reset.
    assert!(out.iter().all(Result::is_ok));
    let out = syns(&mut ipvs, at(1_500), 300, 4);
    assert_eq!(out, vec![Ok(()), Err(NoDest::DefenseDrop), Ok(()), Err(NoDest::DefenseDrop)]);
}

#[test]
fn a_reused_entry_is_not_a_new_connection_for_drop_packet() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().drop_packet = 3;
    ipvs.sysctls_mut().am_droprate = 1;
    assert_eq!(syns(&mut ipvs, at(0), 0, 1), vec![Ok(())]);
    ipvs.advance(at(1_000));
    // A retransmitted SYN finds its SYN_RECV entry: no scheduling, no drop.
    assert_eq!(syns(&mut ipvs, at(1_000), 0, 1), vec![Ok(())]);
    assert_eq!(syns(&mut ipvs, at(1_000), 1, 1), vec![Err(NoDest::DefenseDrop)]);
}

#[test]
fn drop_entry_auto_mode_flips_and_drops_half_open_entries_only() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().drop_entry = 1;
    ipvs.set_memory(memory(1_500));
    // 1000 half-open entries (SYN_RECV) and 100 established ones just used.
    assert!(syns(&mut ipvs, at(0), 0, 1_000).iter().all(Result::is_ok));
    let est: Vec<ConnId> = (5_000..5_100)
        .map(|i| {
            let id = ipvs.new_conn(at(0), &flow(i), None).unwrap().conn.unwrap();
            ipvs.packet(at(0), id, Segment::Ack, false);
            ipvs.count(id, false, 2, 120);
            id
        })
        .collect();
    ipvs.advance(at(999));
    assert_eq!(ipvs.sysctls().drop_entry, 1, "no run before 1 s");
    ipvs.advance(at(1_000));
    assert_eq!(ipvs.sysctls().drop_entry, 2, "1100 pages used of 1500: 400 < 1024");
    assert!(ipvs.defense_level().drop_entry);
    let first = ipvs.defense_stats().entries_dropped;
    // 128 of 4096 buckets a run: about 1/32 of the 1000 (31), the established kept.
    assert!((10..=60).contains(&first), "{first} dropped in the first run");
    assert!(est.iter().all(|&id| ipvs.conn(id).is_some()), "established entries idle < 60 s stay");
    ipvs.advance(at(59_000));
    let after = ipvs.defense_stats().entries_dropped;
    // 59 runs: 1 - (31/32)^59 = 85 % of the half-open entries, well above a third.
    assert!(after > 600 && after <= 1_000, "{after} dropped in 59 runs");
    assert_eq!(ipvs.conn_count() as u64, 1_100 - after);
    assert!(est.iter().all(|&id| ipvs.conn(id).is_some()));
    // 100 entries left: 1400 pages free, above amemthresh: back to mode 1.
    ipvs.advance(at(61_000));
    assert_eq!(ipvs.conn_count(), 100);
    assert_eq!(ipvs.sysctls().drop_entry, 1);
    assert!(!ipvs.defense_level().drop_entry);
}

#[test]
fn drop_entry_takes_established_entries_idle_60s_by_their_packet_count() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().drop_entry = 3;
    // Established entries with 1 client packet (dropped whenever seen once idle 60 s),
    // with 2 (every other one seen), with 9 (never) and with none counted (never).
    let mut groups: Vec<Vec<ConnId>> = Vec::new();
    for (g, pkts) in [1u64, 2, 9, 0].into_iter().enumerate() {
        let ids = (0..3_200)
            .map(|i| {
                let id = ipvs.new_conn(at(0), &flow(g as u32 * 10_000 + i), None).unwrap().conn.unwrap();
                ipvs.packet(at(0), id, Segment::Ack, false);
                if pkts > 0 {
                    ipvs.count(id, false, pkts, 60 * pkts);
                }
                id
            })
            .collect();
        groups.push(ids);
    }
    ipvs.advance(at(59_000));
    assert_eq!(ipvs.defense_stats().entries_dropped, 0, "idle less than 60 s");
    // Ten runs (60 s .. 69 s), each seeing 128/4096 of the table.
    ipvs.advance(at(69_000));
    let left = |ids: &[ConnId], ipvs: &Ipvs| ids.iter().filter(|&&id| ipvs.conn(id).is_some()).count();
    let (one, two) = (3_200 - left(&groups[0], &ipvs), 3_200 - left(&groups[1], &ipvs));
    assert_eq!(left(&groups[2], &ipvs), 3_200, "more than 8 packets: never");
    assert_eq!(left(&groups[3], &ipvs), 3_200, "no packet: never");
    // Seen at least once: 3200 (1 - (31/32)^10) = 871; of the 2-packet ones, about
    // half of the sightings (3200 x 10/32 / 2 = 500, fewer for entries seen twice).
    assert!((700..=1_050).contains(&one), "{one} of the 1-packet entries dropped");
    assert!((300..=600).contains(&two), "{two} of the 2-packet entries dropped");
    assert_eq!(ipvs.defense_stats().entries_dropped, (one + two) as u64);
}

#[test]
fn secure_tcp_table_keeps_nat_half_open_and_starts_dr_in_synack() {
    use crate::tcp::{Direction, transition, transition_in};
    // NAT: the client's ACK alone no longer establishes; the server's SYN-ACK then
    // the client's ACK does.
    let sr = transition_in(true, Direction::Input, Segment::Syn, TcpState::None);
    assert_eq!(sr, TcpState::SynRecv);
    assert_eq!(transition_in(true, Direction::Input, Segment::Ack, sr), TcpState::SynRecv);
    assert_eq!(transition(Direction::Input, Segment::Ack, sr), TcpState::Established);
    let sa = transition_in(true, Direction::Output, Segment::Syn, sr);
    assert_eq!(sa, TcpState::SynAck);
    assert_eq!(transition_in(true, Direction::Input, Segment::Ack, sa), TcpState::SynAck);
    assert_eq!(transition_in(true, Direction::Output, Segment::Ack, sa), TcpState::Established);
    // DR: a SYN starts in SYNACK (timeout 120 s, against SYN_RECV's 60 s).
    assert_eq!(transition_in(true, Direction::InputOnly, Segment::Syn, TcpState::None), TcpState::SynAck);
    assert_eq!(
        transition_in(true, Direction::InputOnly, Segment::Ack, TcpState::SynAck),
        TcpState::Established
    );
    assert_eq!(TcpState::SynAck.default_timeout(), Duration::from_secs(120));
}

#[test]
fn secure_tcp_mode_3_switches_the_table_at_the_first_run() {
    let mut ipvs = table("-g");
    ipvs.sysctls_mut().secure_tcp = 3;
    let before = ipvs.new_conn(at(0), &flow(1), None).unwrap().conn.unwrap();
    ipvs.advance(at(1_000));
    assert!(ipvs.defense_level().secure_tcp);
    let after = ipvs.new_conn(at(1_000), &flow(2), None).unwrap().conn.unwrap();
    assert_eq!(ipvs.conn(before).unwrap().state(), ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(ipvs.conn(after).unwrap().state(), ConnState::Tcp(TcpState::SynAck));
    assert_eq!(ipvs.conn(before).unwrap().deadline(), at(60_000));
    assert_eq!(ipvs.conn(after).unwrap().deadline(), at(121_000));
    ipvs.sysctls_mut().secure_tcp = 0;
    ipvs.update_defense_level();
    assert!(!ipvs.defense_level().secure_tcp, "writing 0 switches back at once");
}

#[test]
fn secure_tcp_auto_mode_follows_memory() {
    let mut ipvs = table("-m");
    ipvs.sysctls_mut().secure_tcp = 1;
    ipvs.set_memory(memory(1_030));
    assert!(syns(&mut ipvs, at(0), 0, 10).iter().all(Result::is_ok));
    ipvs.advance(at(1_000));
    assert_eq!((ipvs.sysctls().secure_tcp, ipvs.defense_level().secure_tcp), (2, true), "1020 < 1024");
    // A NAT client's ACK does not establish under the dos table.
    let id = ipvs.new_conn(at(1_000), &flow(100), None).unwrap().conn.unwrap();
    ipvs.packet(at(1_000), id, Segment::Ack, false);
    assert_eq!(ipvs.conn(id).unwrap().state(), ConnState::Tcp(TcpState::SynRecv));
    // The ten expire at 60 s; the run at 61 s has 1029 pages free: back to mode 1.
    ipvs.advance(at(61_000));
    assert_eq!((ipvs.sysctls().secure_tcp, ipvs.defense_level().secure_tcp), (1, false));
}

#[test]
fn idle_runs_are_skipped_without_changing_what_a_busy_run_sees() {
    // The same flood advanced in one step or second by second: same table, same drops.
    let run = |step_ms: u64| {
        let mut ipvs = table("-m");
        ipvs.sysctls_mut().drop_entry = 3;
        assert!(syns(&mut ipvs, at(0), 0, 500).iter().all(Result::is_ok));
        let mut t = 0;
        while t < 30_000 {
            t += step_ms;
            ipvs.advance(at(t));
        }
        (ipvs.defense_stats(), ipvs.conn_count())
    };
    assert_eq!(run(1_000), run(30_000));
    assert_eq!(run(250), run(30_000));
}
