//! Requests and responses as the console's handlers see them (the HTTP/1.1 reader and
//! writer, with their bounds, live in the server).

use std::net::SocketAddr;

/// A request, read whole and within bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query (`/server`).
    pub path: String,
    /// The raw query, without `?` (may be empty).
    pub query: String,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (`application/x-www-form-urlencoded` for forms).
    pub body: Vec<u8>,
    /// The client.
    pub peer: SocketAddr,
}

/// A response; the server adds the security headers (HSTS, CSP, no-store, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `text/html; charset=utf-8`, ...
    pub content_type: &'static str,
    /// Extra headers (`Location`, `Set-Cookie`, `ETag`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}
