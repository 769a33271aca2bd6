//! The console's connections: the accept loop with its bounds, TLS (or a redirect for a
//! plain-HTTP request, never a page), and requests read within their sizes and timeouts,
//! each answered by [`Console::respond`].
//!
//! Bounds: [`MAX_CONNECTIONS`] connections ([`MAX_PER_ADDRESS`] per client address), a head
//! of 8 KiB and a body of 64 KiB ([`super::reader`]), [`IO_TIMEOUT`] to finish the
//! handshake, send a request or take a response, [`IDLE_TIMEOUT`] between requests,
//! [`MAX_REQUESTS`] per connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::http::{Request, Response};
use super::reader::{self, Head, HttpError, MAX_HEAD};
use super::server::{Console, lock, text};

/// The most console connections at once.
pub const MAX_CONNECTIONS: usize = 256;
/// The most console connections at once from one address.
pub const MAX_PER_ADDRESS: usize = 32;
/// How long a client may take to finish the TLS handshake, send a whole request, or take a
/// response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests on one connection before it is closed.
pub const MAX_REQUESTS: usize = 1000;
/// What a refused client may still send before the connection is closed.
pub const LINGER_BYTES: usize = 1 << 20;
/// How long a refused client may take to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Counts connections per client address; the guard gives its slot back when dropped.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

struct AddressSlot(Arc<PerAddress>, IpAddr);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = lock(&(self.0).0);
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

fn take_slot(per: &Arc<PerAddress>, ip: IpAddr) -> Option<AddressSlot> {
    let mut m = lock(&per.0);
    let n = m.entry(ip).or_insert(0);
    if *n >= MAX_PER_ADDRESS {
        return None;
    }
    *n += 1;
    Some(AddressSlot(per.clone(), ip))
}

/// Accepts console connections until the listener fails; each gets its task.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, console: Arc<Console>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per = Arc::new(PerAddress::default());
    let mut backoff = feedbackd_proto::admission::AcceptBackoff::default();
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                let pause = backoff.handle_failure(crate::daemon::accept_failure(&e));
                tokio::time::sleep(Duration::from_nanos(pause.as_nanos())).await;
                continue;
            }
        };
        backoff.handle_success();
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let Some(addr_slot) = take_slot(&per, peer.ip()) else { continue };
        let (acceptor, console) = (acceptor.clone(), console.clone());
        tokio::spawn(async move {
            connection(sock, peer, acceptor, &console).await;
            drop((slot, addr_slot));
        });
    }
}

/// One connection: TLS (or a redirect for plain HTTP), then requests until close.
async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    console: &Console,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(IO_TIMEOUT, sock.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    // A TLS connection starts with a handshake record (content type 22).
    if first[0] != 0x16 {
        plain_http(sock).await;
        return;
    }
    let Ok(Ok(mut tls)) = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(sock)).await else { return };
    let mut buf = Vec::with_capacity(1024);
    let mut refused = false;
    for _ in 0..MAX_REQUESTS {
        let (resp, head_only, keep_alive) = match read_request(&mut tls, &mut buf, peer).await {
            Read::Closed => return,
            Read::Error(e) => {
                refused = true;
                (text(e.status, &format!("{}\n", e.why)), false, false)
            }
            Read::Request(req, keep_alive) => {
                let head_only = req.method == "HEAD";
                let mut req = req;
                if head_only {
                    req.method = "GET".to_owned();
                }
                (console.respond(&req).await, head_only, keep_alive)
            }
        };
        let bytes = reader::write_response(&resp, head_only, keep_alive);
        let wrote = tokio::time::timeout(IO_TIMEOUT, async {
            tls.write_all(&bytes).await?;
            tls.flush().await
        })
        .await;
        if !matches!(wrote, Ok(Ok(()))) || !keep_alive {
            break;
        }
    }
    let _ = tokio::time::timeout(IO_TIMEOUT, tls.shutdown()).await;
    if refused {
        linger(tls.into_inner().0).await;
    }
}

/// After refusing a request the client may still be sending (a huge head or body), reads
/// and drops what comes, at most [`LINGER_BYTES`] for at most [`LINGER_TIME`], before
/// closing: closing with unread bytes would reset the connection, and the client could
/// lose the answer that says why.
async fn linger<S: AsyncRead + Unpin>(mut tcp: S) {
    let mut chunk = [0u8; 4096];
    let mut total = 0;
    let drain = async {
        while total < LINGER_BYTES {
            match tcp.read(&mut chunk).await {
                Ok(n) if n > 0 => total += n,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// What reading a request gave.
enum Read {
    Request(Request, bool),
    Error(HttpError),
    Closed,
}

/// Reads one request: the head within [`MAX_HEAD`] and the body within its
/// Content-Length, all within [`IO_TIMEOUT`] of its first byte (the wait for a first byte
/// is [`IDLE_TIMEOUT`]). Bytes after the request stay in `buf` for the next one.
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
) -> Read {
    if buf.is_empty() {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Read::Closed,
        }
    }
    match tokio::time::timeout(IO_TIMEOUT, read_rest(s, buf)).await {
        Ok(Ok((head, body))) => Read::Request(
            Request {
                method: head.method,
                path: head.path,
                query: head.query,
                headers: head.headers,
                body,
                peer,
            },
            head.keep_alive,
        ),
        Ok(Err(Some(e))) => Read::Error(e),
        Ok(Err(None)) => Read::Closed,
        Err(_) => Read::Error(HttpError { status: 408, why: "request not sent in time" }),
    }
}

/// The head then the body; `Err(None)` when the client closed mid-request. A client that
/// waits for `100 Continue` (curl, for bodies over 1 KiB) gets it once its head is accepted.
async fn read_rest<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<(Head, Vec<u8>), Option<HttpError>> {
    let mut chunk = [0u8; 4096];
    let (head, head_len) = loop {
        if let Some(x) = reader::parse_head(buf).map_err(Some)? {
            break x;
        }
        match s.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Err(None),
        }
    };
    let end = head_len + head.content_length;
    let expects = head.headers.iter().any(|(k, v)| k == "expect" && v.eq_ignore_ascii_case("100-continue"));
    if expects && buf.len() < end {
        let sent = async {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            s.flush().await
        };
        if sent.await.is_err() {
            return Err(None);
        }
    }
    while buf.len() < end {
        match s.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Err(None),
        }
    }
    let body = buf[head_len..end].to_vec();
    buf.drain(..end);
    Ok((head, body))
}

/// A plain-HTTP request on the console's port: a redirect to the same host over https
/// (`/` only: nothing of the request is echoed but a well-formed Host), or 400.
async fn plain_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while buf.len() < MAX_HEAD && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(IO_TIMEOUT, read).await;
    let resp = plain_http_answer(&buf);
    let bytes = reader::write_response(&resp, false, false);
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        s.write_all(&bytes).await?;
        s.shutdown().await
    })
    .await;
    linger(s).await;
}

/// The answer to a plain-HTTP request's head.
pub fn plain_http_answer(head: &[u8]) -> Response {
    let host = reader::parse_head(head)
        .ok()
        .flatten()
        .and_then(|(h, _)| h.headers.into_iter().find(|(k, _)| k == "host").map(|(_, v)| v));
    let ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    match host {
        Some(h) if ok(&h) => {
            let to = format!("https://{h}/");
            let mut r = text(301, &format!("this port speaks HTTPS only: {to}\n"));
            r.headers.push(("Location".to_owned(), to));
            r
        }
        _ => text(400, "this port speaks HTTPS only\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_gets_a_redirect_or_400_never_an_echo() {
        let r = plain_http_answer(b"GET /secret HTTP/1.1\r\nHost: 10.0.0.1:8443\r\n\r\n");
        assert_eq!(r.status, 301);
        assert_eq!(r.headers, vec![("Location".to_owned(), "https://10.0.0.1:8443/".to_owned())]);
        for bad in [&b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"[..], b"\x00\x01", b"GET / HTTP/1.1\r\n\r\n", b""]
        {
            let r = plain_http_answer(bad);
            assert_eq!((r.status, r.headers.len()), (400, 0), "{bad:?}");
        }
    }
}
