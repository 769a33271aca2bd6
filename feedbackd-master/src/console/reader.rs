//! HTTP/1.1 on the console's connections, pure (no I/O): the request head parsed within
//! bounds ([`parse_head`]) and responses serialised with the security headers
//! ([`write_response`]); forms are `pages::form::Form`'s. Anything unexpected is an error with its status,
//! never a panic: these functions see every byte a client sends (they are fuzzed).

use std::fmt::Write as _;

use super::http::Response;

/// The largest request head (request line and headers) [bytes].
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body [bytes].
pub const MAX_BODY: usize = 64 * 1024;
/// The most header lines.
pub const MAX_HEADERS: usize = 64;

/// The headers every response carries.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("Strict-Transport-Security", "max-age=31536000"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
];

/// A request head: everything of [`super::http::Request`] but the body and peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `HEAD` or `POST`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without `?`.
    pub query: String,
    /// Names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body's length (Content-Length; 0 without).
    pub content_length: usize,
    /// Whether the client keeps the connection open after this request.
    pub keep_alive: bool,
}

/// Why a request is refused: the status and a line for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// 400, 405, 413, 431, 501, 505.
    pub status: u16,
    /// Why.
    pub why: &'static str,
}

const fn bad(why: &'static str) -> HttpError {
    HttpError { status: 400, why }
}

/// Parses the head at the start of `buf`: `Ok(None)` until its blank line has arrived
/// (an error once `buf` holds [`MAX_HEAD`] bytes without one), else the head and its
/// length in bytes (the body follows).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() >= MAX_HEAD {
            return Err(HttpError { status: 431, why: "request head too large" });
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let (method, target, version) = request_line(lines.next().unwrap_or(""))?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(HttpError { status: 431, why: "too many header lines" });
        }
        headers.push(header_line(line)?);
    }
    let head = head_from(method, target, version, headers)?;
    Ok(Some((head, end + 4)))
}

fn request_line(line: &str) -> Result<(&str, &str, &str), HttpError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HttpError { status: 505, why: "HTTP/1.1 only" });
    }
    if !matches!(method, "GET" | "HEAD" | "POST") {
        return Err(HttpError { status: 405, why: "method not allowed (GET, HEAD, POST)" });
    }
    if !target.starts_with('/') || target.len() > 2048 || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("bad request target"));
    }
    Ok((method, target, version))
}

fn header_line(line: &str) -> Result<(String, String), HttpError> {
    let (name, value) = line.split_once(':').ok_or(bad("header line without ':'"))?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad("bad header name"));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(bad("control character in a header value"));
    }
    Ok((name.to_ascii_lowercase(), value.to_owned()))
}

fn head_from(
    method: &str,
    target: &str,
    version: &str,
    headers: Vec<(String, String)>,
) -> Result<Head, HttpError> {
    let all = |n: &'static str| headers.iter().filter(move |(k, _)| k == n).map(|(_, v)| v.as_str());
    if all("transfer-encoding").next().is_some() {
        return Err(HttpError {
            status: 501,
            why: "Transfer-Encoding is not supported: send Content-Length",
        });
    }
    let mut content_length = None;
    for v in all("content-length") {
        if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("bad Content-Length"));
        }
        let n: usize = v.parse().map_err(|_| bad("bad Content-Length"))?;
        if content_length.is_some_and(|m| m != n) {
            return Err(bad("conflicting Content-Length headers"));
        }
        content_length = Some(n);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(HttpError { status: 413, why: "request body too large" });
    }
    let hosts = all("host").count();
    if hosts > 1 || (hosts == 0 && version == "HTTP/1.1") {
        return Err(bad("exactly one Host header is required"));
    }
    let connection = all("connection").next().unwrap_or("").to_ascii_lowercase();
    let keep_alive =
        if version == "HTTP/1.1" { !connection.contains("close") } else { connection.contains("keep-alive") };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path.contains('#') || query.contains('#') {
        return Err(bad("a fragment in the request target"));
    }
    Ok(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        content_length,
        keep_alive,
    })
}

/// `Content-Type` is a form (the only body the console accepts).
pub fn is_form(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k == "content-type"
            && v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// The reason phrase of the statuses the console answers.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The bytes of `resp`, with the security headers, `Content-Length` and `Connection`;
/// without its body for a HEAD request. A handler's header with CR or LF in it is dropped
/// (no response splitting), as are its own copies of the headers set here.
pub fn write_response(resp: &Response, head_only: bool, keep_alive: bool) -> Vec<u8> {
    let mut h = String::with_capacity(512);
    let _ = write!(h, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in SECURITY_HEADERS {
        let _ = write!(h, "{k}: {v}\r\n");
    }
    let _ = write!(h, "Content-Type: {}\r\nContent-Length: {}\r\n", resp.content_type, resp.body.len());
    let own = |k: &str| {
        SECURITY_HEADERS.iter().any(|(s, _)| s.eq_ignore_ascii_case(k))
            || ["content-type", "content-length", "connection", "transfer-encoding"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(k))
    };
    for (k, v) in &resp.headers {
        let clean = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n');
        if clean(k) && clean(v) && !own(k) {
            let _ = write!(h, "{k}: {v}\r\n");
        }
    }
    h.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let mut out = h.into_bytes();
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(s: &str) -> Result<Option<(Head, usize)>, HttpError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn a_request_head_parses() {
        let (h, n) =
            head("POST /login?x=1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 5\r\nX-Y:  z \r\n\r\nuser=")
                .unwrap()
                .unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str(), h.query.as_str()), ("POST", "/login", "x=1"));
        assert_eq!(h.headers[2], ("x-y".to_owned(), "z".to_owned()));
        assert_eq!((h.content_length, h.keep_alive, n), (5, true, 68));
        let (h, _) = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    }

    #[test]
    fn bad_heads_get_their_status() {
        let status = |s: &str| head(s).unwrap_err().status;
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n"), 413);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"), 400);
        let huge = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status(&huge), 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")), 431);
    }

    #[test]
    fn responses_carry_the_security_headers_and_never_split() {
        let r = Response {
            status: 303,
            content_type: "text/plain",
            headers: vec![
                ("Location".into(), "/x".into()),
                ("X-Evil".into(), "a\r\nSet-Cookie: b".into()),
                ("Content-Length".into(), "99".into()),
            ],
            body: b"hi".to_vec(),
        };
        let text = String::from_utf8(write_response(&r, false, true)).unwrap();
        for (k, v) in SECURITY_HEADERS {
            assert!(text.contains(&format!("{k}: {v}\r\n")), "{text}");
        }
        assert!(text.starts_with("HTTP/1.1 303 See Other\r\n"));
        assert!(text.contains("Location: /x\r\n") && !text.contains("Evil") && !text.contains(": 99"));
        assert!(text.ends_with("Connection: keep-alive\r\n\r\nhi"));
        assert!(String::from_utf8(write_response(&r, true, false)).unwrap().ends_with("close\r\n\r\n"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            if let Ok(Some((h, n))) = parse_head(&bytes) {
                prop_assert!(n <= bytes.len() && n <= MAX_HEAD + 4);
                prop_assert!(h.content_length <= MAX_BODY);
            }
        }

        #[test]
        fn mutated_requests_never_panic(
            prefix in "(GET|POST|HEAD|PUT) /[a-z/?=&%]{0,20} HTTP/1\\.[01]\r\n",
            headers in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,40}\r\n", 0..10),
            cl in proptest::option::of(0usize..100_000),
        ) {
            let mut s = prefix + "Host: a\r\n";
            for h in headers { s.push_str(&h); }
            if let Some(cl) = cl { s.push_str(&format!("Content-Length: {cl}\r\n")); }
            s.push_str("\r\n");
            if let Ok(Some((h, _))) = parse_head(s.as_bytes()) {
                prop_assert!(h.content_length <= MAX_BODY);
                prop_assert!(h.path.starts_with('/'));
            }
        }
    }
}
