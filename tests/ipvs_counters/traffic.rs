//! The traffic inside the VM: this test binary run as a real server (`serve`) or a client
//! (`client`) by tests/vm/counters.sh. Plain blocking std sockets, one thread per
//! connection on the server side; sizes are exact, so the packets IPVS counts follow from
//! TCP alone.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

/// `serve READY_FILE PORT:REQUEST:RESPONSE...`: for each port, answer every request of
/// REQUEST bytes with RESPONSE bytes until the client closes, then close. REQUEST 0: no
/// request, read until the client closes. Creates READY_FILE once every port listens.
pub fn serve(args: &[String]) -> ! {
    let (ready, specs) = args.split_first().expect("serve READY_FILE PORT:REQUEST:RESPONSE...");
    let mut threads = Vec::new();
    for spec in specs {
        let v: Vec<usize> = spec.split(':').map(|x| x.parse().expect("a number")).collect();
        let [port, request, response] = v[..] else { panic!("PORT:REQUEST:RESPONSE, got {spec}") };
        let listener = TcpListener::bind(("0.0.0.0", port as u16)).expect("binding a server port");
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.expect("accepting");
                std::thread::spawn(move || answer(stream, request, response));
            }
        }));
    }
    std::fs::write(ready, b"").expect("writing the ready file");
    for t in threads {
        t.join().expect("a listener thread");
    }
    std::process::exit(0)
}

fn answer(mut s: TcpStream, request: usize, response: usize) {
    let reply = vec![b'r'; response];
    let mut buf = vec![0u8; request.max(1)];
    loop {
        if request == 0 {
            // Nothing is asked: wait for the client's FIN.
            while s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
            break;
        }
        match s.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("server read: {e}"),
        }
        s.write_all(&reply).expect("server write");
    }
    // Drop closes: the server's FIN follows the client's.
}

/// `client VIP PORT REQUEST RESPONSE REQUESTS CONNS`: CONNS connections one after the
/// other, each sending REQUESTS requests of REQUEST bytes and reading each RESPONSE-byte
/// response before the next, then closing first and waiting for the server's FIN.
pub fn client(args: &[String]) -> ! {
    let [vip, port, request, response, requests, conns] = args else {
        panic!("client VIP PORT REQUEST RESPONSE REQUESTS CONNS")
    };
    let port: u16 = port.parse().expect("port");
    let n = |x: &String| -> usize { x.parse().expect("a number") };
    let (request, response, requests, conns) = (n(request), n(response), n(requests), n(conns));
    let req = vec![b'q'; request];
    let mut buf = vec![0u8; response.max(1)];
    for _ in 0..conns {
        let mut s = TcpStream::connect((vip.as_str(), port)).expect("client connect");
        for _ in 0..requests {
            if request > 0 {
                s.write_all(&req).expect("client write");
            }
            s.read_exact(&mut buf[..response]).expect("client read");
        }
        s.shutdown(Shutdown::Write).expect("client shutdown");
        // The server's FIN: read returns 0.
        let mut rest = [0u8; 1];
        assert_eq!(s.read(&mut rest).expect("client read to the end"), 0, "no extra bytes");
    }
    std::process::exit(0)
}
