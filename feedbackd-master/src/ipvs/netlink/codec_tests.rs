//! Byte-vector tests of the IPVS netlink codec (little-endian hosts: host-order integers
//! are written out as the x86-64 kernel lays them), round trips, and "any bytes never
//! panic" properties of the reply decoders.

use core::net::IpAddr;

use lvs_ipvs::{Forwarding, Protocol};
use proptest::prelude::*;

use super::*;
use crate::ipvs::dest;

const FAMILY: u16 = 0x20;

fn tcp_svc() -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 }
}

fn nat_rs() -> DestConfig {
    let mut rs = dest("10.0.0.2".parse().unwrap(), 80, Forwarding::Masq, 37);
    (rs.u_threshold, rs.l_threshold) = (100, 50);
    rs
}

#[rustfmt::skip]
const SET_DEST_BYTES: [u8; 164] = [
    // nlmsghdr: len 164, type 0x20 (IPVS), flags REQUEST|ACK, seq 7, pid 0
    0xa4, 0, 0, 0,  0x20, 0,  0x05, 0,  7, 0, 0, 0,  0, 0, 0, 0,
    // genlmsghdr: cmd SET_DEST (6), version 1
    6, 1, 0, 0,
    // SERVICE nest (48 bytes, NLA_F_NESTED | 1)
    48, 0, 0x01, 0x80,
    6, 0, 1, 0,  2, 0, 0, 0,                    // AF 2 (host order) + pad
    6, 0, 2, 0,  6, 0, 0, 0,                    // PROTOCOL 6
    20, 0, 3, 0,  10, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  // ADDR nf_inet_addr
    6, 0, 4, 0,  0, 80, 0, 0,                   // PORT 80, network order
    // DEST nest (96 bytes, NLA_F_NESTED | 2)
    96, 0, 0x02, 0x80,
    20, 0, 1, 0,  10, 0, 0, 2,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  // ADDR
    6, 0, 2, 0,  0, 80, 0, 0,                   // PORT 80
    8, 0, 3, 0,  0, 0, 0, 0,                    // FWD_METHOD 0 (masq)
    8, 0, 4, 0,  37, 0, 0, 0,                   // WEIGHT 37
    8, 0, 5, 0,  100, 0, 0, 0,                  // U_THRESH 100
    8, 0, 6, 0,  50, 0, 0, 0,                   // L_THRESH 50
    6, 0, 11, 0,  2, 0, 0, 0,                   // ADDR_FAMILY 2
    5, 0, 13, 0,  0, 0, 0, 0,                   // TUN_TYPE 0 (u8) + pad
    6, 0, 14, 0,  0, 0, 0, 0,                   // TUN_PORT 0
    6, 0, 15, 0,  0, 0, 0, 0,                   // TUN_FLAGS 0
];

#[test]
#[cfg(target_endian = "little")]
fn set_dest_carries_every_field_as_the_spec_lays_it_out() {
    assert_eq!(build_set_dest(FAMILY, 7, &tcp_svc(), &nat_rs()), SET_DEST_BYTES);
}

#[test]
#[cfg(target_endian = "little")]
fn fwmark_ipv6_service_and_tunnel_fields() {
    let svc = ServiceKey::Fwmark { mark: 5, ipv6: true };
    let mut rs = dest("2001:db8::2".parse().unwrap(), 0, Forwarding::Tunnel, 1);
    rs.tunnel = Tunnel { kind: TunnelType::Gue, port: 6080, flags: Tunnel::CSUM };
    let m = build_set_dest(FAMILY, 1, &svc, &rs);
    #[rustfmt::skip]
    let service_nest: [u8; 20] = [
        20, 0, 0x01, 0x80,
        6, 0, 1, 0,  10, 0, 0, 0,   // AF 10
        8, 0, 5, 0,  5, 0, 0, 0,    // FWMARK 5, host order
    ];
    assert_eq!(m[20..40], service_nest);
    let dest = &m[40 + 4..];
    assert_eq!(dest[..20], [20, 0, 1, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    assert_eq!(dest[28..36], [8, 0, 3, 0, 2, 0, 0, 0]); // FWD_METHOD 2 (tunnel)
    let tail: [u8; 32] = [
        6, 0, 11, 0, 10, 0, 0, 0, // ADDR_FAMILY 10
        5, 0, 13, 0, 1, 0, 0, 0, // TUN_TYPE gue
        6, 0, 14, 0, 0x17, 0xc0, 0, 0, // TUN_PORT 6080, network order
        6, 0, 15, 0, 1, 0, 0, 0, // TUN_FLAGS csum
    ];
    assert_eq!(dest[dest.len() - 32..], tail);
}

#[test]
#[cfg(target_endian = "little")]
fn del_dest_names_the_real_server_only() {
    let m = build_del_dest(FAMILY, 9, &tcp_svc(), "10.0.0.2".parse().unwrap(), 80);
    assert_eq!(m[4..8], [0x20, 0, 0x05, 0]);
    assert_eq!(m[16], cmd::DEL_DEST);
    let dest = &m[20 + 48..];
    assert_eq!(dest[..4], [40, 0, 0x02, 0x80]);
    assert_eq!(dest.len(), 40);
}

#[test]
#[cfg(target_endian = "little")]
fn dumps_ask_for_a_dump_without_ack() {
    let mut b = Vec::new();
    encode_service_dump(&mut b, FAMILY, 3);
    assert_eq!(b, [20, 0, 0, 0, 0x20, 0, 0x01, 0x03, 3, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0]);
    b.clear();
    encode_dest_dump(&mut b, FAMILY, 4, &tcp_svc());
    assert_eq!(b[4..8], [0x20, 0, 0x01, 0x03]);
    assert_eq!(b[16], cmd::GET_DEST);
    assert_eq!(b.len(), 20 + 48);
}

#[test]
#[cfg(target_endian = "little")]
fn get_family_names_ipvs() {
    let mut b = Vec::new();
    encode_get_family(&mut b, 1, "IPVS");
    #[rustfmt::skip]
    let want = [
        32, 0, 0, 0,  0x10, 0,  0x05, 0,  1, 0, 0, 0,  0, 0, 0, 0,
        3, 1, 0, 0,
        9, 0, 2, 0,  b'I', b'P', b'V', b'S',  0, 0, 0, 0,
    ];
    assert_eq!(b, want);
}

/// A NEW_DEST message as the 6.1 kernel's `ip_vs_genl_fill_dest()` builds it, with a
/// STATS nest and an unknown attribute, in a datagram with a second part and NLMSG_DONE.
#[rustfmt::skip]
fn kernel_dest_dump() -> Vec<u8> {
    let mut nest: Vec<u8> = vec![
        20, 0, 1, 0,  10, 0, 0, 3,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        6, 0, 2, 0,  0x1f, 0x90, 0, 0,           // PORT 8080
        8, 0, 3, 0,  3, 0, 0, 0,                 // FWD_METHOD droute
        8, 0, 4, 0,  12, 0, 0, 0,                // WEIGHT 12
        5, 0, 13, 0,  0, 0, 0, 0,                // TUN_TYPE
        6, 0, 14, 0,  0, 0, 0, 0,                // TUN_PORT
        6, 0, 15, 0,  0, 0, 0, 0,                // TUN_FLAGS
        8, 0, 5, 0,  9, 0, 0, 0,                 // U_THRESH 9
        8, 0, 6, 0,  4, 0, 0, 0,                 // L_THRESH 4
        8, 0, 7, 0,  3, 0, 0, 0,                 // ACTIVE_CONNS 3
        8, 0, 8, 0,  1, 0, 0, 0,                 // INACT_CONNS 1
        8, 0, 9, 0,  0, 0, 0, 0,                 // PERSIST_CONNS
        6, 0, 11, 0,  2, 0, 0, 0,                // ADDR_FAMILY 2
        12, 0, 10, 0x80,  8, 0, 1, 0,  5, 0, 0, 0, // STATS { CONNS 5 }
        8, 0, 99, 0,  1, 2, 3, 4,                // a future attribute
        // STATS64 { PAD, CONNS 7, INPKTS 70, OUTBYTES 2^33, CPS 2, OUTBPS 900 }, u64 each
        68, 0, 12, 0x80,
        4, 0, 11, 0,
        12, 0, 1, 0,  7, 0, 0, 0,  0, 0, 0, 0,
        12, 0, 2, 0,  70, 0, 0, 0,  0, 0, 0, 0,
        12, 0, 5, 0,  0, 0, 0, 0,  2, 0, 0, 0,
        12, 0, 6, 0,  2, 0, 0, 0,  0, 0, 0, 0,
        12, 0, 10, 0,  0x84, 3, 0, 0,  0, 0, 0, 0,
    ];
    let nest_len = (nest.len() + 4) as u16;
    let mut attrs = nest_len.to_le_bytes().to_vec();
    attrs.extend_from_slice(&[0x02, 0x80]);
    attrs.append(&mut nest);
    let len = (16 + 4 + attrs.len()) as u32;
    let mut d = Vec::new();
    for seq in [5u32, 5] {
        d.extend_from_slice(&len.to_le_bytes());
        d.extend_from_slice(&[0x20, 0, 0x02, 0]); // NLM_F_MULTI
        d.extend_from_slice(&seq.to_le_bytes());
        d.extend_from_slice(&[0x39, 0x30, 0, 0]);
        d.extend_from_slice(&[cmd::NEW_DEST, 1, 0, 0]);
        d.extend_from_slice(&attrs);
    }
    d.extend_from_slice(&[20, 0, 0, 0,  3, 0, 2, 0,  5, 0, 0, 0,  0x39, 0x30, 0, 0,  0, 0, 0, 0]);
    d
}

#[test]
#[cfg(target_endian = "little")]
fn decodes_a_kernel_dest_dump() {
    let mut got = Vec::new();
    let mut done = false;
    for_each_reply(&kernel_dest_dump(), FAMILY, |seq, r| {
        assert_eq!(seq, 5);
        match r {
            Reply::Data { cmd, attrs } => {
                assert_eq!(cmd, cmd::NEW_DEST);
                got.push(parse_dest_attrs(find_attr(attrs, attr::DEST)?, AF_INET)?);
            }
            Reply::Done { errno } => done = errno == 0,
            Reply::Ack { .. } => panic!("no ACK in a dump"),
        }
        Ok(())
    })
    .unwrap();
    assert!(done);
    let mut config = dest("10.0.0.3".parse().unwrap(), 8080, Forwarding::DirectRouting, 12);
    (config.u_threshold, config.l_threshold) = (9, 4);
    // STATS64 wins over STATS.
    let stats = Stats { conns: 7, inpkts: 70, outbytes: 1 << 33, ..Stats::default() };
    let rates = Rates { cps: 2, outbps: 900, ..Rates::default() };
    let want = DestRow::with_traffic(config, 3, 1, stats, rates);
    assert_eq!(got, [want, want]);
}

#[test]
#[cfg(target_endian = "little")]
fn stats_nests_of_both_widths() {
    // STATS as kernels before 4.1 send it: u32 counts and rates, u64 bytes.
    #[rustfmt::skip]
    let stats32 = [
        8, 0, 1, 0,  9, 0, 0, 0,                          // CONNS 9
        8, 0, 3, 0,  4, 0, 0, 0,                          // OUTPKTS 4
        12, 0, 4, 0,  0, 0, 0, 0,  1, 0, 0, 0,            // INBYTES 2^32
        8, 0, 9, 0,  0x10, 0x27, 0, 0,                    // INBPS 10000
    ];
    let (s, r) = parse_stats(&stats32).unwrap();
    assert_eq!((s.conns, s.outpkts, s.inbytes, r.inbps, r.cps), (9, 4, 1 << 32, 10_000, 0));
    assert!(parse_stats(&[6, 0, 1, 0, 1, 0, 0, 0]).is_err(), "a 2-byte counter");
    // A service nest with only STATS falls back to it; without either, zeros.
    let mut nest = vec![(4 + stats32.len()) as u8, 0, svc_attr::STATS as u8, 0x80];
    nest.extend_from_slice(&stats32);
    assert_eq!(parse_traffic(&nest, svc_attr::STATS, svc_attr::STATS64).unwrap().0.conns, 9);
    assert_eq!(parse_traffic(&[], 10, 12).unwrap(), (Stats::default(), Rates::default()));
}

#[test]
#[cfg(target_endian = "little")]
fn new_service_carries_the_full_entry() {
    let svc = ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.1".parse().unwrap(), port: 53 };
    let config = ServiceConfig {
        scheduler: SchedulerKind::Rr,
        flags: SvcFlags(SvcFlags::PERSISTENT | SvcFlags::ONEPACKET),
        persistence: Some(Duration::from_secs(300)),
        netmask: 0xffff_ff00,
        pe: None,
    };
    let mut m = Vec::new();
    encode_service(&mut m, FAMILY, 3, cmd::NEW_SERVICE, &svc, &config);
    assert_eq!(m[4..8], [0x20, 0, 0x05, 0], "REQUEST|ACK");
    assert_eq!(m[16], cmd::NEW_SERVICE);
    #[rustfmt::skip]
    let tail = [
        7, 0, 6, 0,  b'r', b'r', 0, 0,                         // SCHED_NAME "rr\0"
        12, 0, 7, 0,  5, 0, 0, 0,  0xff, 0xff, 0xff, 0xff,     // FLAGS {PERSISTENT|ONEPACKET, ~0}
        8, 0, 8, 0,  0x2c, 1, 0, 0,                            // TIMEOUT 300
        8, 0, 9, 0,  255, 255, 255, 0,                         // NETMASK, network order
    ];
    assert_eq!(m[m.len() - tail.len()..], tail);
    assert_eq!(u16::from_ne_bytes([m[20], m[21]]) as usize, m.len() - 20, "one SERVICE nest");
    let mut d = Vec::new();
    encode_del_service(&mut d, FAMILY, 4, &ServiceKey::Fwmark { mark: 5, ipv6: true });
    #[rustfmt::skip]
    let want = [
        40, 0, 0, 0,  0x20, 0,  0x05, 0,  4, 0, 0, 0,  0, 0, 0, 0,
        3, 1, 0, 0,                                             // DEL_SERVICE
        20, 0, 0x01, 0x80,  6, 0, 1, 0,  10, 0, 0, 0,  8, 0, 5, 0,  5, 0, 0, 0,
    ];
    assert_eq!(d, want);
}

#[test]
#[cfg(target_endian = "little")]
fn decodes_a_service_and_clears_hashed() {
    #[rustfmt::skip]
    let nest = [
        6, 0, 1, 0,  2, 0, 0, 0,
        6, 0, 2, 0,  17, 0, 0, 0,
        20, 0, 3, 0,  10, 0, 0, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        6, 0, 4, 0,  0, 53, 0, 0,
        7, 0, 6, 0,  b'r', b'r', 0, 0,
        12, 0, 7, 0,  3, 0, 0, 0,  0xff, 0xff, 0xff, 0xff,   // PERSISTENT | HASHED, mask ~0
        8, 0, 8, 0,  0x2c, 1, 0, 0,                        // TIMEOUT 300
        8, 0, 9, 0,  255, 255, 255, 0,                     // NETMASK /24, network order
    ];
    let (key, s) = parse_service_attrs(&nest).unwrap();
    assert_eq!(
        key,
        ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.1".parse().unwrap(), port: 53 }
    );
    let persistent = SvcFlags(SvcFlags::PERSISTENT);
    assert_eq!(
        (s.scheduler, s.flags, s.persistence),
        (SchedulerKind::Rr, persistent, Some(Duration::from_secs(300)))
    );
    assert_eq!(s.netmask, 0xffff_ff00, "host order");
    let fwm = [6, 0, 1, 0, 10, 0, 0, 0, 8, 0, 5, 0, 1, 0, 0, 0, 8, 0, 6, 0, b's', b'h', 0, 0];
    let (key, s) = parse_service_attrs(&fwm).unwrap();
    assert_eq!((key, s.netmask, s.persistence), (ServiceKey::Fwmark { mark: 1, ipv6: true }, 128, None));
    // An IPv6 netmask is a prefix length, in host order; a timeout without PERSISTENT is
    // not persistence.
    #[rustfmt::skip]
    let v6 = [
        6, 0, 1, 0,  10, 0, 0, 0,
        8, 0, 5, 0,  2, 0, 0, 0,
        8, 0, 6, 0,  b'm', b'h', 0, 0,
        8, 0, 8, 0,  60, 0, 0, 0,
        8, 0, 9, 0,  64, 0, 0, 0,
    ];
    let (_, s) = parse_service_attrs(&v6).unwrap();
    assert_eq!((s.scheduler, s.netmask, s.persistence), (SchedulerKind::Mh, 64, None));
}

#[test]
fn an_unknown_scheduler_or_forwarding_method_is_named() {
    #[rustfmt::skip]
    let nest = [
        6, 0, 1, 0,  2, 0, 0, 0,
        8, 0, 5, 0,  9, 0, 0, 0,
        11, 0, 6, 0,  b'f', b'u', b't', b'u', b'r', b'e', 0, 0,
    ];
    let e = parse_service_attrs(&nest).unwrap_err().to_string();
    assert!(e.contains("FWM  9") && e.contains("\"future\""), "{e}");
    // PE_NAME (11): sip is known, anything else is named.
    let with_pe = |name: &[u8]| {
        let mut n = vec![6, 0, 1, 0, 2, 0, 0, 0, 8, 0, 5, 0, 9, 0, 0, 0, 7, 0, 6, 0, b's', b'h', 0, 0];
        n.extend_from_slice(&[(4 + name.len()) as u8, 0, 11, 0]);
        n.extend_from_slice(name);
        n.resize(n.len().next_multiple_of(4), 0);
        parse_service_attrs(&n)
    };
    assert_eq!(with_pe(b"sip\0").unwrap().1.pe, Some(lvs_ipvs::PersistenceEngine::Sip));
    let e = with_pe(b"rtsp\0").unwrap_err().to_string();
    assert!(e.contains("persistence engine \"rtsp\""), "{e}");
    assert!(parse_service_attrs(&nest[..16]).is_err(), "no scheduler");
    let dest_nest = |fwd: u8, tun: u8| -> Vec<u8> {
        vec![
            8, 0, 1, 0, 10, 0, 0, 3, 6, 0, 2, 0, 0, 80, 0, 0, 8, 0, 3, 0, fwd, 0, 0, 0, 8, 0, 4, 0, 1, 0, 0,
            0, 5, 0, 13, 0, tun, 0, 0, 0,
        ]
    };
    assert_eq!(parse_dest_attrs(&dest_nest(1, 0), AF_INET).unwrap().config.fwd, Forwarding::Local);
    assert_eq!(parse_dest_attrs(&dest_nest(2, 2), AF_INET).unwrap().config.tunnel.kind, TunnelType::Gre);
    for (fwd, tun) in [(4, 0), (7, 0), (0, 3), (2, 255)] {
        let e = parse_dest_attrs(&dest_nest(fwd, tun), AF_INET).unwrap_err().to_string();
        assert!(e.contains("unknown FWD_METHOD") || e.contains("unknown TUN_TYPE"), "{fwd} {tun}: {e}");
    }
}

#[test]
#[cfg(target_endian = "little")]
fn errors_acks_and_family_ids() {
    // NLMSG_ERROR -ESRCH (3) followed by the request's header.
    let mut d = vec![36, 0, 0, 0, 2, 0, 0x01, 0x01, 9, 0, 0, 0, 0, 0, 0, 0];
    d.extend_from_slice(&(-3i32).to_le_bytes());
    d.extend_from_slice(&[20, 0, 0, 0, 0x20, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    let mut seen = Vec::new();
    for_each_reply(&d, FAMILY, |seq, r| {
        seen.push((seq, r));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [(9, Reply::Ack { errno: 3 })]);
    let attrs = [8, 0, 2, 0, b'I', b'P', b'V', b'S', 6, 0, 1, 0, 0x20, 0, 0, 0];
    assert_eq!(parse_family_id(&attrs).unwrap(), 0x20);
    assert!(parse_family_id(&attrs[..8]).is_err());
}

#[test]
fn malformed_replies_are_errors() {
    let bad: [&[u8]; 6] = [
        &[1, 2, 3],                                                  // short header
        &[8, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],           // length below the header
        &[99, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],          // length past the end
        &[16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],          // NLMSG_ERROR without error
        &[18, 0, 0, 0, 0x20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 1], // short genl header
        &[16, 0, 0, 0, 0x21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],       // another family
    ];
    for b in bad {
        assert!(for_each_reply(b, FAMILY, |_, _| Ok(())).is_err(), "{b:?}");
    }
    assert!(parse_dest_attrs(&[4, 0, 1, 0], AF_INET).is_err()); // no fields
    assert!(parse_dest_attrs(&[5, 0, 1, 0], AF_INET).is_err()); // runs past the end
    assert!(parse_service_attrs(&[6, 0, 1, 0, 7, 0, 0, 0]).is_err()); // AF 7
}

fn arb_rs() -> impl Strategy<Value = DestConfig> {
    let addr =
        prop_oneof![any::<[u8; 4]>().prop_map(IpAddr::from), any::<[u8; 16]>().prop_map(IpAddr::from),];
    (addr, any::<u16>(), 0u32..4, any::<u32>(), any::<(u32, u32, u8, u16, u16)>()).prop_map(
        |(addr, port, fwd, weight, (u, l, tt, tp, tf))| DestConfig {
            addr,
            port,
            fwd: Forwarding::from_code(fwd).expect("0..4"),
            weight,
            u_threshold: u,
            l_threshold: l,
            tunnel: Tunnel { kind: TunnelType::from_code(tt % 3).expect("0..3"), port: tp, flags: tf },
        },
    )
}

fn arb_svc() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<u16>(),
            prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)]
        )
            .prop_map(|(a, port, protocol)| ServiceKey::Addr {
                protocol,
                addr: IpAddr::from(a),
                port
            }),
        (1u32.., any::<bool>()).prop_map(|(mark, ipv6)| ServiceKey::Fwmark { mark, ipv6 }),
    ]
}

proptest! {
    #[test]
    fn dest_round_trips(svc in arb_svc(), rs in arb_rs(), seq in any::<u32>()) {
        let m = build_set_dest(FAMILY, seq, &svc, &rs);
        // The request parses with the reply decoder: same framing, same attributes.
        let mut seen = Vec::new();
        for_each_reply(&m, FAMILY, |s, r| {
            if let Reply::Data { cmd, attrs } = r {
                seen.push((s, cmd, parse_dest_attrs(find_attr(attrs, attr::DEST)?, svc.af())?));
            }
            Ok(())
        })
        .unwrap();
        prop_assert_eq!(seen, vec![(seq, cmd::SET_DEST, DestRow::new(rs))]);
    }

    #[test]
    fn service_round_trips(
        svc in arb_svc(),
        sched in 0usize..6,
        flags in 0u32..64,
        persistence in proptest::option::of(1u64..=2_678_400),
        netmask in any::<u32>(),
        command in prop_oneof![Just(cmd::NEW_SERVICE), Just(cmd::SET_SERVICE)],
    ) {
        let scheduler = [SchedulerKind::Rr, SchedulerKind::Wlc, SchedulerKind::Sh, SchedulerKind::Mh,
            SchedulerKind::Lblcr, SchedulerKind::Fo][sched];
        let netmask = if svc.is_ipv6() { netmask % 128 + 1 } else { netmask };
        let persistence = persistence.map(Duration::from_secs);
        let config = ServiceConfig { scheduler, flags: SvcFlags(flags), persistence, netmask, pe: None };
        let config = crate::ipvs::normalize_service(&svc, &config);
        let mut m = Vec::new();
        encode_service(&mut m, FAMILY, 1, command, &svc, &config);
        let mut seen = Vec::new();
        for_each_reply(&m, FAMILY, |_, r| {
            if let Reply::Data { cmd, attrs } = r {
                seen.push((cmd, parse_service_row(find_attr(attrs, attr::SERVICE)?)?));
            }
            Ok(())
        })
        .unwrap();
        prop_assert_eq!(seen, vec![(command, crate::ipvs::ServiceRow::new(svc, config))]);
    }

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = for_each_reply(&bytes, FAMILY, |_, r| {
            if let Reply::Data { attrs, .. } = r {
                let _ = find_attr(attrs, attr::DEST).and_then(|d| parse_dest_attrs(d, AF_INET6));
                let _ = find_attr(attrs, attr::SERVICE).and_then(parse_service_attrs);
                let _ = parse_family_id(attrs);
            }
            Ok(())
        });
        let _ = parse_dest_attrs(&bytes, AF_INET);
        let _ = parse_service_attrs(&bytes);
        let _ = parse_service_row(&bytes);
        let _ = parse_stats(&bytes);
    }

    #[test]
    fn framed_garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), ty in 0u16..40) {
        // A well-framed message of the family with an arbitrary body reaches the
        // attribute decoders, which random bytes rarely do.
        let mut m = ((16 + 4 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[cmd::NEW_DEST, 1, 0, 0]);
        m.extend_from_slice(&body);
        let _ = for_each_reply(&m, FAMILY, |_, r| {
            if let Reply::Data { attrs, .. } = r {
                for a in AttrIter::new(attrs).flatten() {
                    let _ = parse_dest_attrs(a.1, AF_INET);
                    let _ = parse_service_attrs(a.1);
                    let _ = parse_service_row(a.1);
                    let _ = parse_stats(a.1);
                }
            }
            Ok(())
        });
    }
}
