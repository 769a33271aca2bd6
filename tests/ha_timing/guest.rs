//! The guest's side: a tiny HTTP server that logs when each check arrives, and a VRRP
//! listener that logs when each advert arrives, both on the guest's monotonic clock
//! (`/proc/uptime`, the same clock tests/vm/ha-timing.sh reads).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use socket2::{Domain, Protocol, Socket, Type};

/// Seconds since boot, from `/proc/uptime` (10 ms steps): the guest's monotonic clock.
pub fn uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").expect("reading /proc/uptime");
    text.split_whitespace().next().and_then(|s| s.parse().ok()).expect("a number in /proc/uptime")
}

type Log = Arc<Mutex<std::fs::File>>;

fn log_line(log: &Log, line: &str) {
    let mut f = log.lock().expect("the log");
    writeln!(f, "{line}").expect("writing the log");
    f.flush().expect("flushing the log");
}

/// `serve ADDR:PORT LOG`: answers every HTTP request with `200 OK` and the body `OK`, one
/// thread a connection; logs `UPTIME PEER PATH` when a request's first line arrives. The
/// log exists once the socket listens.
pub fn serve(args: &[String]) -> ! {
    let [addr, log] = args else { panic!("serve ADDR:PORT LOG") };
    let listener = TcpListener::bind(addr.as_str()).expect("binding the HTTP port");
    let log: Log = Arc::new(Mutex::new(std::fs::File::create(log).expect("creating the log")));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let log = Arc::clone(&log);
        std::thread::spawn(move || answer(stream, &log));
    }
    std::process::exit(0)
}

fn answer(stream: TcpStream, log: &Log) {
    let peer = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let path = first.split_whitespace().nth(1).unwrap_or("-").to_owned();
    log_line(log, &format!("{:.2} {peer} {path}", uptime()));
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line.trim_end() != "" {
        line.clear();
    }
    let body = "OK\n";
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(reply.as_bytes());
}

/// `adverts LOCAL_ADDR LOG`: joins VRRP's group 224.0.0.18 on the interface of
/// LOCAL_ADDR and logs `UPTIME SOURCE PRIORITY` for every VRRP packet (IP protocol 112)
/// that arrives. The log exists once the socket has joined.
pub fn adverts(args: &[String]) -> ! {
    let [local, log] = args else { panic!("adverts LOCAL_ADDR LOG") };
    let local: std::net::Ipv4Addr = local.parse().expect("an IPv4 address");
    // SOCK_RAW is 3 on Linux (socket2 names it only with its "all" feature).
    let raw = Type::from(3);
    let socket = Socket::new(Domain::IPV4, raw, Some(Protocol::from(112))).expect("a raw VRRP socket");
    let group = std::net::Ipv4Addr::new(224, 0, 0, 18);
    socket.join_multicast_v4(&group, &local).expect("joining 224.0.0.18");
    let log: Log = Arc::new(Mutex::new(std::fs::File::create(log).expect("creating the log")));
    let mut buf = [0u8; 1500];
    loop {
        let n = (&socket).read(&mut buf).expect("reading a VRRP packet");
        // The IPv4 header (its length in 32-bit words in the low nibble), then VRRP:
        // version/type, virtual router id, priority.
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        if n < ihl + 3 {
            continue;
        }
        let src = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        log_line(&log, &format!("{:.2} {src} {}", uptime(), buf[ihl + 2]));
    }
}

/// `keepalives ADDR:PORT LOG`: logs `UPTIME SOURCE TYPE NODE_OR_STATUS` for every UDP
/// datagram that arrives at PORT (heartbeat's broadcast messages: `t=`, and `node=` or
/// `st=`). When lb2 declares lb1 dead it broadcasts `t=stonith node=lb1`. The log exists once the socket is bound.
pub fn keepalives(args: &[String]) -> ! {
    let [addr, log] = args else { panic!("keepalives ADDR:PORT LOG") };
    let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).expect("ADDR:PORT");
    let socket = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("binding the keepalive port");
    let log: Log = Arc::new(Mutex::new(std::fs::File::create(log).expect("creating the log")));
    let mut buf = [0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).expect("reading a keepalive");
        // heartbeat's messages: `###` then `LEN:(TYPE)name=value` fields separated by
        // commas. Keep the message type and the node it names (or its status).
        let text = String::from_utf8_lossy(&buf[..n]);
        let field = |k: &str| {
            text.split([',', '\n'])
                .filter_map(|f| f.split_once(')').map(|(_, kv)| kv))
                .find_map(|kv| kv.strip_prefix(k))
                .unwrap_or("-")
                .to_owned()
        };
        let about = if field("node=") == "-" { field("st=") } else { field("node=") };
        log_line(&log, &format!("{:.2} {} {} {about}", uptime(), from.ip(), field("t=")));
    }
}
