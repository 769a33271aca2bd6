//! Entry points for the fuzz targets (`fuzz/`) and the proptest that runs the same bodies
//! on every `cargo test`. Each must never panic, whatever `data` is.

use core::net::{IpAddr, Ipv4Addr};

use lvs_sched::Time;

use crate::auth::{Channel, Psk};
use crate::keys::{AgentKey, Auth, KeyTable};
use crate::master::{ConnId, Master, MasterConfig};
use crate::wire;
use lvs_ipvs::{Protocol, ServiceKey};

/// Splits `data` into frames and decodes each one every way a peer's bytes are decoded.
pub fn decode(data: &[u8]) {
    let mut ch = Channel::new();
    ch.push_input(data);
    while let Ok(Some(frame)) = ch.next_frame() {
        if let Ok(raw) = wire::parse_frame(&frame) {
            let _ = wire::decode_body(raw.message_type, raw.body);
            let _ = wire::register_nonce(raw.body);
            let _ = wire::register_hello(raw.body);
            let _ = ch.open(&raw, false);
        }
    }
}

/// Feeds `data` to a master as one agent's byte stream, in chunks whose sizes come from
/// the data itself; with `keyed`, the master requires a key. The master must neither panic
/// nor change a weight when keyed (the fuzzer cannot forge a tag).
pub fn master(data: &[u8], keyed: bool) {
    let auth = if keyed {
        let psk = Psk::from_file_contents(b"fuzzing-key-0123456789").expect("long");
        let mut t = KeyTable::default();
        for id in ["rs1", "a", "x"] {
            t.insert(id.into(), AgentKey::anything(psk.clone()));
        }
        Auth::Keys(t)
    } else {
        Auth::Insecure
    };
    let mut m = Master::new(MasterConfig { auth, ..MasterConfig::default() });
    let vs =
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
    m.handle_table(Time(0), &[vs], &[]);
    let conn = ConnId(1);
    m.handle_connect(Time(0), conn, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), [7; 16]);
    let mut rest = data;
    let mut now = Time(0);
    while let Some((&n, tail)) = rest.split_first() {
        let take = (n as usize % 64).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        now = Time(now.0 + u64::from(n) * 1_000_000);
        m.handle_input(now, conn, chunk);
        m.handle_timeout(now);
        rest = tail;
    }
    while let Some(ev) = m.poll_event() {
        if keyed {
            assert!(
                matches!(ev, crate::master::MasterEvent::Close { .. }),
                "unauthenticated bytes produced {ev:?}"
            );
        }
    }
    while m.poll_transmit().is_some() {}
}
