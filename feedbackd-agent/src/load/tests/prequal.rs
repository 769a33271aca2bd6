//! The `prequal` module: its settings, the socket count, the probe against real loopback
//! servers (replying, silent, refusing, closing) and the file source's bounds.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use super::super::connections::count;
use super::super::prequal::{MAX_FILE_BYTES, MAX_SEND_BYTES, read_file, stable_count, unescape};
use super::*;

/// A `/proc/net/tcp` table with, on local port `port`: a listener, two ESTABLISHED
/// sockets, one TIME_WAIT and one outgoing socket whose remote port is `port`; and one
/// ESTABLISHED socket on another port.
fn tcp_table(port: u16) -> String {
    let other = port.wrapping_add(1);
    format!(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0 100 0 0 10 0
   1: 0100007F:{port:04X} 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 12 1 0 20 4 30 10 -1
   2: 0A000005:{port:04X} 0A000009:D432 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0 20 4 30 10 -1
   3: 0100007F:{port:04X} 0100007F:D434 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   4: 0100007F:D433 0100007F:{port:04X} 01 00000000:00000000 00:00000000 00000000     0        0 14 1 0 20 4 30 10 -1
   5: 0100007F:{other:04X} 0100007F:D435 01 00000000:00000000 00:00000000 00000000     0        0 15 1 0 20 4 30 10 -1
"
    )
}

/// A loopback server answering each connection as `answer` says, in a thread; the
/// requests it read come back on the channel.
fn server(answer: Answer) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || answer.answer(&mut conn, &tx));
        }
    });
    (addr, rx)
}

#[derive(Clone, Copy)]
enum Answer {
    /// Writes a line at once, without reading.
    Greet,
    /// Reads a request up to its blank line, hands it over, answers.
    Http,
    /// Holds the connection open and says nothing (until the client goes).
    Silent,
    /// Closes at once.
    Close,
}

impl Answer {
    fn answer(self, conn: &mut TcpStream, tx: &mpsc::Sender<Vec<u8>>) {
        match self {
            Answer::Greet => {
                let _ = conn.write_all(b"220 ready\r\n");
            }
            Answer::Http => {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && request.len() < 4096 {
                    match conn.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = tx.send(request);
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nok\n");
            }
            Answer::Silent => {
                let _ = conn.read_to_end(&mut Vec::new());
            }
            Answer::Close => {}
        }
    }
}

/// `module = prequal ...` in an `http` service on `port`.
fn prequal(root: &FakeRoot, port: u16, settings: &str) -> Module {
    let service = http(&format!("port = {port}\nmodule = prequal {settings}\n"));
    Module::from_conf(&service.modules[0], &service, &root.sources()).unwrap_or_else(|e| panic!("{e}"))
}

/// A reading's `(capacity, rif, latency_ms)`, checking the metrics' names and order.
fn figures(m: &mut Module) -> (f64, f64, f64) {
    let r = m.sample().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = r.metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["rif", "latency_ms"], "{r:?}");
    (r.capacity, r.metrics[0].1, r.metrics[1].1)
}

#[test]
fn port_source_counts_established_sockets_and_times_a_probe() {
    let root = FakeRoot::new("prequal-port");
    let (addr, _) = server(Answer::Greet);
    root.write("net/tcp", &tcp_table(addr.port()));
    let mut m = prequal(&root, addr.port(), "max=4 address=127.0.0.1");
    assert_eq!(m.name(), "prequal");
    // Rows 1 and 2 only: not the listener, TIME_WAIT, a remote port, another port.
    let (capacity, rif, latency_ms) = figures(&mut m);
    close(capacity, 0.5);
    close(rif, 2.0);
    // Measured, so never 0, and never past the deadline.
    assert!(latency_ms > 0.0 && latency_ms <= 1000.0, "{latency_ms}");
    // tcp6 adds its ESTABLISHED rows on the port.
    let v6 = format!(
        "  sl  local_address                         remote_address                        st\n   0: \
         00000000000000000000000001000000:{:04X} 00000000000000000000000001000000:E000 01 0\n",
        addr.port()
    );
    root.write("net/tcp6", &v6);
    close(figures(&mut m).1, 3.0);
    // port= measures another port than the service's (here the server's, behind port 80).
    let service = http(&format!("module = prequal port={} address=127.0.0.1\n", addr.port()));
    let mut m = Module::from_conf(&service.modules[0], &service, &root.sources()).unwrap();
    close(figures(&mut m).1, 3.0);
}

#[test]
fn the_probe_sends_its_request_and_reads_one_byte() {
    let root = FakeRoot::new("prequal-send");
    let (addr, requests) = server(Answer::Http);
    root.write("net/tcp", &tcp_table(addr.port()));
    let mut m =
        prequal(&root, addr.port(), r#"address=127.0.0.1 send="GET /health HTTP/1.0\r\nHost: x\r\n\r\n""#);
    figures(&mut m);
    let request = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(request, b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
}

#[test]
fn a_silent_server_reports_the_timeout_and_a_dead_one_an_error() {
    let root = FakeRoot::new("prequal-silent");
    let (silent, _) = server(Answer::Silent);
    root.write("net/tcp", &tcp_table(silent.port()));
    // No byte within the deadline: latency_ms is the timeout itself, exactly.
    let mut m = prequal(&root, silent.port(), "address=127.0.0.1 timeout_ms=50");
    assert_eq!(figures(&mut m).2, 50.0);
    // Also when it reads the request and never answers.
    let mut m = prequal(&root, silent.port(), r#"address=127.0.0.1 timeout_ms=50 send="PING\r\n""#);
    assert_eq!(figures(&mut m).2, 50.0);
    // Closed without a byte: an error that suggests send=.
    let (closing, _) = server(Answer::Close);
    root.write("net/tcp", &tcp_table(closing.port()));
    let e = load_error(&mut prequal(&root, closing.port(), "address=127.0.0.1"));
    assert_eq!(e.module, "prequal");
    assert!(e.message.contains("closed without a reply") && e.message.contains("set send="), "{e}");
    // Nobody listening: refused, an error.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    root.write("net/tcp", &tcp_table(port));
    let e = load_error(&mut prequal(&root, port, "address=127.0.0.1"));
    assert!(e.message.contains(&format!("probe 127.0.0.1:{port}: connect")), "{e}");
}

#[test]
fn the_file_source_reads_both_figures_within_its_bounds() {
    let root = FakeRoot::new("prequal-file");
    let path = root.write("load", "rif 7\nlatency_ms 12.5\nqps 300\n");
    let line = format!("source=file path={} max=10", path.display());
    let (capacity, rif, latency_ms) = figures(&mut module(&root, &format!("prequal {line}")));
    close(capacity, 0.3);
    assert_eq!((rif, latency_ms), (7.0, 12.5));
    // The figures alone, no other line.
    root.write("load", "latency_ms 3\nrif 0\n");
    assert_eq!(figures(&mut module(&root, &format!("prequal {line}"))), (1.0, 0.0, 3.0));
    let err = |text: &str| {
        root.write("load", text);
        load_error(&mut module(&root, &format!("prequal {line}"))).message
    };
    assert!(err("rif 7\n").contains("no `latency_ms VALUE` line"));
    assert!(err("latency_ms 1\n").contains("no `rif VALUE` line"));
    assert!(err("rif -1\nlatency_ms 1\n").contains("rif -1 is negative"));
    assert!(err("rif 1\nlatency_ms NaN\n").contains("line 2: latency_ms \"NaN\" is not a number"));
    assert!(err("rif 1 2\n").contains("line 1: expected `name value`"));
    assert!(err("rif 1\nrif 2\nlatency_ms 1\n").contains("metric \"rif\" given twice"));
    // Larger than 4 KiB: refused, not cut.
    let big = format!("rif 1\nlatency_ms 1\n{}", " \n".repeat(MAX_FILE_BYTES as usize));
    assert!(err(&big).contains("larger than 4096 bytes"));
    // /dev/zero never ends: read 4 KiB + 1 at most.
    let e = read_file(Path::new("/dev/zero"), None, SystemTime::now()).unwrap_err();
    assert!(e.contains("larger than 4096 bytes"), "{e}");
    assert!(err("").contains("no `rif VALUE` line"));
    std::fs::remove_file(&path).unwrap();
    assert!(load_error(&mut module(&root, &format!("prequal {line}"))).message.contains("reading"));
}

#[test]
fn a_file_not_written_for_max_age_is_stale() {
    let root = FakeRoot::new("prequal-stale");
    let path = root.write("load", "rif 1\nlatency_ms 2\n");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let at = |later_ms: u64| modified + Duration::from_millis(later_ms);
    let max_age = Some(Duration::from_millis(10_000));
    assert_eq!(read_file(&path, max_age, at(10_000)), Ok((1.0, 2.0)));
    let e = read_file(&path, max_age, at(10_001)).unwrap_err();
    assert!(e.contains("last written 10.0 s ago (max_age_ms=10000): is the server writing it?"), "{e}");
    // max_age_ms=0: never stale; a clock stepped back: fresh.
    assert_eq!(read_file(&path, None, at(86_400_000)), Ok((1.0, 2.0)));
    assert_eq!(read_file(&path, max_age, modified - Duration::from_secs(60)), Ok((1.0, 2.0)));
    // The module's default is 10 s: a file written now is fresh.
    let m = &mut module(&root, &format!("prequal source=file path={}", path.display()));
    assert_eq!(figures(m), (0.999, 1.0, 2.0));
}

#[test]
fn send_escapes_and_bounds() {
    assert_eq!(unescape(r"GET / HTTP/1.0\r\n\r\n").unwrap(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(unescape(r"a\tb\\c").unwrap(), b"a\tb\\c");
    assert!(unescape(r"a\x").unwrap_err().contains("unknown escape `\\x`"));
    assert!(unescape("a\\").unwrap_err().contains("lone"));
    assert_eq!(unescape(&"x".repeat(MAX_SEND_BYTES)).unwrap().len(), MAX_SEND_BYTES);
    assert!(unescape(&"x".repeat(MAX_SEND_BYTES + 1)).unwrap_err().contains("longer than 1024 bytes"));
}

#[test]
fn bad_settings_name_the_line_and_what_to_write() {
    let root = FakeRoot::new("prequal-conf");
    let e = |first: &str, lines: &str| conf_error(&root, &service_with(first, lines));
    let check = |err: ConfError, line: u32, text: &str| {
        assert_eq!(err.line, line, "{err}");
        assert!(err.message.contains(text), "{err}");
    };
    check(e("service = dns", "protocol = udp\nmodule = prequal\n"), 4, "a UDP service needs source=file");
    check(
        e("service = web", "fwmark = 5\nport = 0\nmodule = prequal\n"),
        5,
        "port 0 (a firewall-mark service's) is none: give the port the server listens on with port=N",
    );
    // The firewall-mark service with port=: fine.
    let s = service_with("service = web", "fwmark = 5\nport = 0\nmodule = prequal port=8080\n");
    assert!(ServiceLoad::from_conf(&s, &root.sources()).is_ok());
    check(
        e("service = http", "module = prequal source=socket\n"),
        3,
        "source=\"socket\" is neither port nor file",
    );
    check(
        e("service = http", "module = prequal path=/x\n"),
        3,
        "unknown setting `path`; it takes source, max",
    );
    check(e("service = http", "module = prequal source=file\n"), 3, "module prequal: needs `path=...`");
    check(e("service = http", "module = prequal source=file send=x path=/x\n"), 3, "unknown setting `send`");
    check(
        e("service = http", "module = prequal address=localhost\n"),
        3,
        "address=\"localhost\" is not an IP",
    );
    check(
        e("service = http", "module = prequal timeout_ms=0\n"),
        3,
        "timeout_ms=\"0\" is not a whole number between 1 and 60000",
    );
    check(e("service = http", "module = prequal max=0\n"), 3, "max=\"0\" is not a whole number");
    check(e("service = http", "module = prequal port=65536\n"), 3, "port=\"65536\"");
    check(e("service = http", r#"module = prequal send="\q""#), 3, "send: unknown escape");
    check(
        e("service = http", "module = prequal\nmodule = cpuload\nmodule = prequal source=file path=/x\n"),
        5,
        "service \"http\" has one already",
    );
    check(
        e("service = http", "module = prequal source=file path=/x max_age_ms=86400001\n"),
        3,
        "max_age_ms=\"86400001\" is not a whole number between 0 and 86400000",
    );
}

#[test]
fn several_services_number_their_figures_for_the_master() {
    let root = FakeRoot::new("prequal-numbered");
    let one = root.write("one", "rif 1\nlatency_ms 10\n");
    let two = root.write("two", "rif 2\nlatency_ms 20\n");
    let text = format!(
        "director = 10.0.0.1\nservice = http\nmodule = prequal source=file path={}\n\
         service = https\nmodule = prequal source=file path={}\nmodule = connections\n",
        one.display(),
        two.display()
    );
    root.write("net/tcp", &tcp_table(443));
    let conf = parse(&text).unwrap();
    let mut loads = ServiceLoad::for_agent(&conf.services, &root.sources()).unwrap();
    assert_eq!(loads.iter().map(|l| l.number).collect::<Vec<_>>(), [Some(1), Some(2)]);
    let (_, m1, e1) = loads[0].sample();
    let (_, m2, e2) = loads[1].sample();
    assert!(e1.is_empty() && e2.is_empty(), "{e1:?} {e2:?}");
    assert_eq!(m1, [("rif_1".to_owned(), 1.0), ("latency_ms_1".to_owned(), 10.0)]);
    // Other modules' metrics keep their names.
    assert_eq!(
        m2,
        [("rif_2".to_owned(), 2.0), ("latency_ms_2".to_owned(), 20.0), ("connections".to_owned(), 2.0)]
    );
    // The master reads service 2's figures as its own.
    let metrics: Vec<feedbackd_proto::wire::Metric> = m1
        .iter()
        .chain(&m2)
        .map(|(name, value)| feedbackd_proto::wire::Metric { name: name.clone(), value: *value })
        .collect();
    let signal = feedbackd_proto::master::report_signal(1.0, &metrics, 1);
    assert_eq!((signal.rif, signal.latency), (Some(2.0), Some(0.020)));
    // One service: plain names.
    let conf = parse(&format!(
        "director = 10.0.0.1\nservice = http\nmodule = prequal source=file path={}\n",
        one.display()
    ))
    .unwrap();
    let mut loads = ServiceLoad::for_agent(&conf.services, &root.sources()).unwrap();
    assert_eq!(loads[0].number, None);
    assert_eq!(loads[0].sample().1, [("rif".to_owned(), 1.0), ("latency_ms".to_owned(), 10.0)]);
}

#[test]
fn a_connection_listed_twice_counts_once_and_counts_are_read_until_two_agree() {
    // The kernel resumed its walk a page later and listed row 2's connection again.
    let mut table = tcp_table(80);
    table.push_str(
        "   6: 0A000005:0050 0A000009:D432 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0 20 4 30 10 -1\n",
    );
    assert_eq!(count(&table, 80, Some(0x01)), 2);
    // UDP sockets bound to one port may share both addresses: every row counts.
    let udp =
        "  sl local rem st\n 1: 00000000:0035 00000000:0000 07 0\n 2: 00000000:0035 00000000:0000 07 0\n";
    assert_eq!(count(udp, 53, None), 2);
    let reads = |values: &[u64]| {
        let mut it = values.iter().copied();
        let mut n = 0;
        let got = stable_count(|| {
            n += 1;
            it.next().ok_or_else(|| "no more".to_owned())
        });
        (got, n)
    };
    assert_eq!(reads(&[8, 8]), (Ok(8), 2));
    assert_eq!(reads(&[9, 8, 8]), (Ok(8), 3));
    assert_eq!(reads(&[8, 7, 8, 8]), (Ok(8), 4));
    // Never more than four reads: the last stands.
    assert_eq!(reads(&[1, 2, 3, 4, 5]), (Ok(4), 4));
    assert_eq!(reads(&[8]), (Err("no more".to_owned()), 2));
}
