//! Sync message bytes, batching, and the decoder's robustness.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::sync::IPPROTO_IP;

fn cfg(version: u8) -> SyncConfig {
    SyncConfig { version, ..SyncConfig::default() }
}

fn secs(s: u64) -> Time {
    Time::ZERO + Duration::from_secs(s)
}

/// An established DR connection 1.1.1.1:cport -> 10.0.0.1:80 on 10.0.0.2:80.
fn established(cport: u16) -> SyncConn {
    SyncConn {
        protocol: IPPROTO_TCP,
        caddr: "1.1.1.1".parse().unwrap(),
        cport,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
        daddr: "10.0.0.2".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        state: ConnState::Tcp(TcpState::Established),
        flags: 3 | flags::NOOUTPUT,
        timeout: 900,
    }
}

#[test]
fn version_1_message_of_one_ipv4_record_byte_for_byte() {
    let mut s = Sender::new(&cfg(1), 7);
    assert_eq!(s.push(secs(1), &established(1000)), None);
    assert_eq!(s.flush(Time(secs(3).0 - 1)), None, "due 2 s after its first use");
    let m = s.flush(secs(3)).unwrap();
    #[rustfmt::skip]
    let expected = [
        0, 7, 0, 44, 1, 1, 0, 0,            // reserved, syncid, size 8 + 36, 1 record, version 1
        0, 6, 0, 36, 0, 0, 0, 0x83,         // IPv4, TCP, record version 0 size 36, DR|NOOUTPUT
        0, 1, 0x03, 0xE8, 0, 80, 0, 80,     // ESTABLISHED, cport 1000, vport 80, dport 80
        0, 0, 0, 0, 0, 0, 0x03, 0x84,       // fwmark 0, timeout 900 s
        1, 1, 1, 1, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    assert_eq!(m, expected);
    assert_eq!((s.pending(), s.next_flush()), (0, None));
    assert_eq!(decode(&m), Ok(vec![established(1000)]));
}

#[test]
fn version_0_message_of_one_record_byte_for_byte() {
    let mut s = Sender::new(&cfg(0), 7);
    assert_eq!(s.push(Time::ZERO, &established(1000)), None);
    let m = s.flush(secs(2)).unwrap();
    #[rustfmt::skip]
    let expected = [
        1, 7, 0, 28,                        // 1 record, syncid, size 4 + 24
        0, 6, 0x03, 0xE8, 0, 80, 0, 80,     // reserved, TCP, cport 1000, vport 80, dport 80
        1, 1, 1, 1, 10, 0, 0, 1, 10, 0, 0, 2,
        0, 0x83, 0, 1,                      // flags DR|NOOUTPUT, ESTABLISHED
    ];
    assert_eq!(m, expected);
    // Version 0 carries neither firewall mark nor timeout.
    assert_eq!(decode(&m), Ok(vec![SyncConn { timeout: 0, ..established(1000) }]));
    assert_eq!(parse_header(&m), Ok(Header { version: 0, syncid: 7, nr_conns: 1, size: 28 }));
}

#[test]
fn version_1_sends_40_ipv4_records_per_1472_byte_message() {
    let mut s = Sender::new(&cfg(1), 0);
    // One record per 10 ms: the 41st, at 400 ms, does not fit: 8 + 41 × 36 = 1484 > 1472.
    for i in 0..40u16 {
        assert_eq!(s.push(Time(u64::from(i) * 10_000_000), &established(1000 + i)), None);
    }
    assert_eq!(s.next_flush(), Some(secs(2)), "first use at 0");
    let full = s.push(Time(400_000_000), &established(1040)).unwrap();
    assert_eq!(full.len(), 8 + 40 * 36);
    assert_eq!(full.len(), 1448);
    assert_eq!(parse_header(&full), Ok(Header { version: 1, syncid: 0, nr_conns: 40, size: 1448 }));
    let conns = decode(&full).unwrap();
    assert_eq!(conns.len(), 40);
    assert_eq!((conns[0].cport, conns[39].cport), (1000, 1039));
    // The 41st started a buffer at 400 ms: flushed 2 s later, alone (8 + 36 bytes).
    assert_eq!(s.next_flush(), Some(Time(2_400_000_000)));
    assert_eq!(s.flush(Time(2_399_999_999)), None);
    let rest = s.flush(Time(2_400_000_000)).unwrap();
    assert_eq!(rest.len(), 44);
    assert_eq!(decode(&rest).unwrap(), vec![established(1040)]);
}

#[test]
fn version_0_sends_61_records_per_message() {
    let mut s = Sender::new(&cfg(0), 0);
    for i in 0..61u16 {
        assert_eq!(s.push(Time::ZERO, &established(i)), None);
    }
    // 4 + 61 × 24 = 1468 <= 1472; a 62nd would make 1492.
    let full = s.push(Time::ZERO, &established(61)).unwrap();
    assert_eq!(full.len(), 1468);
    assert_eq!(full[0], 61);
    assert_eq!(decode(&full).unwrap().len(), 61);
    assert_eq!(s.pending(), 1);
}

#[test]
fn ipv6_records_are_72_bytes_and_version_0_ignores_them() {
    let v6 = SyncConn {
        caddr: "2001:db8::1".parse().unwrap(),
        vaddr: "2001:db8::80".parse().unwrap(),
        daddr: "2001:db8::2".parse().unwrap(),
        ..established(1000)
    };
    let mut s = Sender::new(&cfg(1), 0);
    // (1472 − 8) / 72 = 20.3: 20 records, 8 + 20 × 72 = 1448 bytes.
    for _ in 0..20 {
        assert_eq!(s.push(Time::ZERO, &v6), None);
    }
    let full = s.push(Time::ZERO, &v6).unwrap();
    assert_eq!((full.len(), full[8], full[11]), (1448, 1, 72), "type IPv6, size 72");
    assert_eq!(decode(&full).unwrap()[0], v6);
    let mut old = Sender::new(&cfg(0), 0);
    assert_eq!(old.push(Time::ZERO, &v6), None);
    assert_eq!((old.pending(), old.next_flush()), (0, None));
}

#[test]
fn a_message_holds_at_most_255_records_and_a_tiny_limit_one() {
    let mut s = Sender::new(&SyncConfig { max_len: 100_000, ..cfg(1) }, 0);
    for i in 0..255u16 {
        assert_eq!(s.push(Time::ZERO, &established(i)), None);
    }
    // The limit is clamped to 65507 bytes; nr_conns is a u8: 8 + 255 × 36 = 9188.
    let full = s.push(Time::ZERO, &established(255)).unwrap();
    assert_eq!((full.len(), full[4]), (9188, 255));
    let mut tiny = Sender::new(&SyncConfig { max_len: 0, ..cfg(1) }, 0);
    assert_eq!(tiny.push(Time::ZERO, &established(1)), None, "a first record always fits");
    assert_eq!(tiny.push(Time::ZERO, &established(2)).map(|m| m.len()), Some(44));
}

/// A version 1 message of the given records (raw bytes), its size field filled in.
fn v1_message(records: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, records.len() as u8, 1, 0, 0];
    for r in records {
        m.extend_from_slice(r);
    }
    let size = m.len() as u16;
    m[2..4].copy_from_slice(&size.to_be_bytes());
    m
}

/// The bytes of one version 1 record of `c`, with `options` appended and its size
/// field (and padding) adjusted.
fn record(c: &SyncConn, options: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    emit_v1(c, &mut r);
    r.extend_from_slice(options);
    let size = r.len() as u16;
    r[2..4].copy_from_slice(&size.to_be_bytes());
    r.resize(r.len().next_multiple_of(4), 0);
    r
}

#[test]
fn malformed_messages_are_dropped_whole() {
    let ok = record(&established(1), &[]);
    assert_eq!(decode(&[0, 0, 3]), Err(DecodeError::TooShort { len: 3 }));
    let mut long = v1_message(std::slice::from_ref(&ok));
    long.push(0);
    assert_eq!(decode(&long), Err(DecodeError::SizeMismatch { size: 44, len: 45 }));
    let mut two = v1_message(std::slice::from_ref(&ok));
    two[4] = 2;
    assert_eq!(decode(&two), Err(DecodeError::Truncated { index: 1 }));
    let mut version = ok.clone();
    version[2] |= 0x10;
    assert_eq!(decode(&v1_message(&[version])), Err(DecodeError::ConnVersion { index: 0, version: 1 }));
    let mut ty = ok.clone();
    ty[0] = 2;
    assert_eq!(decode(&v1_message(&[ty])), Err(DecodeError::ConnType { index: 0, ty: 2 }));
    let mut short = ok.clone();
    short[3] = 32;
    assert_eq!(decode(&v1_message(&[short])), Err(DecodeError::ConnSize { index: 0, size: 32 }));
    let mut past = ok.clone();
    past[3] = 40;
    assert_eq!(decode(&v1_message(&[past])), Err(DecodeError::Truncated { index: 0 }));
    let c = established(1);
    let seq = [[1u8, 24].as_slice(), &[0; 24]].concat();
    let bad_options = [
        vec![9],                                      // no room for type and length
        vec![1, 0],                                   // empty
        vec![2, 5, 0],                                // runs past the record
        [[1u8, 23].as_slice(), &[0; 23]].concat(),    // sequence data of the wrong length
        [[3u8, 17].as_slice(), &[b'x'; 17]].concat(), // engine name over 16 bytes
        [seq.clone(), seq].concat(),                  // sequence data twice
    ];
    for opts in bad_options {
        let m = v1_message(&[record(&c, &opts)]);
        assert_eq!(decode(&m), Err(DecodeError::BadOption { index: 0 }), "options {opts:?}");
    }
}

#[test]
fn records_the_kernel_skips_are_left_out_and_the_others_kept() {
    let c = established(1);
    let icmp = SyncConn { protocol: 1, ..c };
    let bad_tcp = record(&c, &[]);
    let mut bad_tcp_state = bad_tcp.clone();
    bad_tcp_state[9] = 11;
    let udp1 = SyncConn { protocol: IPPROTO_UDP, state: ConnState::Udp, ..c };
    let mut bad_udp_state = record(&udp1, &[]);
    bad_udp_state[9] = 1;
    let seq = [[1u8, 24].as_slice(), &[0; 24]].concat();
    let mut in_seq = record(&c, &seq);
    in_seq[4..8].copy_from_slice(&(c.flags | flags::IN_SEQ).to_be_bytes());
    let records = [
        record(&icmp, &[]),           // unsupported protocol
        bad_tcp_state,                // TCP has 11 states
        bad_udp_state,                // UDP has one
        record(&c, &[5, 2, 0, 0]),    // unknown mandatory option
        record(&c, &[2, 3, 1, 2, 3]), // persistence-engine data, no engine
        record(&c, &[0x45, 2, 0, 0]), // an optional unknown option: kept
        record(&udp1, &seq),          // sequence data: dropped, record kept
        in_seq,                       // ... and the flag that announced it cleared
    ];
    let got = decode(&v1_message(&records)).unwrap();
    assert_eq!(got, vec![c, udp1, c], "IN_SEQ is cleared with its data");
    // A template's protocol and state are not checked.
    let t = SyncConn { protocol: IPPROTO_IP, state: ConnState::Template, flags: flags::TEMPLATE, ..c };
    let mut odd_state = record(&t, &[]);
    odd_state[9] = 9;
    assert_eq!(decode(&v1_message(&[odd_state])), Ok(vec![t]));
}

#[test]
fn version_0_sequence_options_are_skipped_and_a_short_tail_drops_the_message() {
    let mut s = Sender::new(&cfg(0), 0);
    s.push(Time::ZERO, &established(1));
    s.push(Time::ZERO, &established(2));
    let mut m = s.flush(secs(2)).unwrap();
    // The first record claims IN_SEQ: its 24 bytes of options swallow the second.
    m[4 + 20..4 + 22].copy_from_slice(&((flags::IN_SEQ | 0x83) as u16).to_be_bytes());
    m[0] = 1;
    assert_eq!(decode(&m), Ok(vec![SyncConn { timeout: 0, ..established(1) }]));
    m[0] = 2;
    assert_eq!(decode(&m), Err(DecodeError::Truncated { index: 1 }));
}

fn any_addr(v6: bool, raw: u128) -> IpAddr {
    if v6 { IpAddr::V6(raw.into()) } else { IpAddr::V4((raw as u32).into()) }
}

/// Any record a table could send (or a foreign master, within what the decoder keeps).
fn any_conn(version: u8) -> impl Strategy<Value = SyncConn> {
    let fields = (
        any::<bool>(),
        0..4u8,
        any::<u8>(),
        0..11u16,
        any::<u32>(),
        any::<(u16, u16, u16)>(),
        any::<u32>(),
        any::<u32>(),
        any::<[u128; 3]>(),
    );
    fields.prop_map(move |(v6, kind, tproto, tcp, fl, (cport, vport, dport), fwmark, timeout, a)| {
        let v6 = v6 && version == 1;
        let (protocol, state) = match kind {
            0 => (IPPROTO_TCP, ConnState::Tcp(TcpState::from_code(tcp).unwrap())),
            1 => (IPPROTO_SCTP, ConnState::Tcp(TcpState::from_code(tcp).unwrap())),
            2 => (IPPROTO_UDP, ConnState::Udp),
            _ => (tproto, ConnState::Template),
        };
        let template = if state == ConnState::Template { flags::TEMPLATE } else { 0 };
        let mut fl = fl & !(flags::HASHED | flags::SEQ_MASK | flags::TEMPLATE) | template;
        if version == 0 {
            fl &= 0xFFFF;
        }
        SyncConn {
            protocol,
            caddr: any_addr(v6, a[0]),
            cport,
            vaddr: any_addr(v6, a[1]),
            vport,
            daddr: any_addr(v6, a[2]),
            dport,
            fwmark: if version == 1 { fwmark } else { 0 },
            state,
            flags: fl,
            timeout: if version == 1 { timeout } else { 0 },
        }
    })
}

/// Every message a sender makes of `conns`, pushed at 0 and flushed at the end.
fn messages(version: u8, max_len: u32, conns: &[SyncConn]) -> Vec<Vec<u8>> {
    let mut s = Sender::new(&SyncConfig { max_len, ..cfg(version) }, 9);
    let mut out: Vec<_> = conns.iter().filter_map(|c| s.push(Time::ZERO, c)).collect();
    out.extend(s.flush(secs(2)));
    out
}

/// `conns` come back from the messages a sender makes of them, none over the limit
/// unless it holds a single record.
fn round_trip(version: u8, max_len: u32, conns: &[SyncConn]) -> Result<(), TestCaseError> {
    let limit = (max_len as usize).clamp(1, MAX_LEN);
    let mut back = Vec::new();
    for m in &messages(version, max_len, conns) {
        let h = parse_header(m).unwrap();
        prop_assert_eq!((h.version, h.syncid), (version, 9));
        prop_assert!(m.len() <= limit || h.nr_conns == 1, "{} bytes over {}", m.len(), limit);
        back.extend(decode(m).unwrap());
    }
    prop_assert_eq!(back, conns);
    Ok(())
}

proptest! {
    #[test]
    fn version_1_records_round_trip(
        max_len in prop_oneof![Just(1472u32), 0..3000u32],
        conns in proptest::collection::vec(any_conn(1), 0..120),
    ) {
        round_trip(1, max_len, &conns)?;
    }

    #[test]
    fn version_0_records_round_trip(
        max_len in prop_oneof![Just(1472u32), 0..2000u32],
        conns in proptest::collection::vec(any_conn(0), 0..120),
    ) {
        round_trip(0, max_len, &conns)?;
    }

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        let _ = parse_header(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        conns in proptest::collection::vec(any_conn(1), 1..8),
        version in 0..2u8,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        fix_size in any::<bool>(),
        cut in any::<usize>(),
    ) {
        let v4: Vec<SyncConn> = conns
            .iter()
            .map(|c| SyncConn {
                caddr: any_addr(false, 1),
                vaddr: any_addr(false, 2),
                daddr: any_addr(false, 3),
                ..*c
            })
            .collect();
        let mut m = messages(version, 1472, if version == 0 { &v4 } else { &conns }).remove(0);
        for (at, b) in edits {
            let i = at % m.len();
            m[i] = b;
        }
        m.truncate(m.len() - cut % 4);
        if fix_size && m.len() >= 4 {
            let size = m.len() as u16;
            m[2..4].copy_from_slice(&size.to_be_bytes());
        }
        let _ = decode(&m);
    }
}
