//! The console's pages, rendered on the server from a [`Snapshot`](super::Snapshot).

use tokio::sync::mpsc;

use super::ConsoleRequest;
use super::http::{Request, Response};
use super::session::Session;

/// What the handlers reach: the daemon loop.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The daemon loop's console queue.
    pub daemon: mpsc::Sender<ConsoleRequest>,
    /// The audit log (`--console-audit`), for the audit page: `super::audit::tail`.
    pub audit: std::path::PathBuf,
}

/// Answers an authenticated request (a POST has passed the CSRF and role checks).
pub async fn handle(req: &Request, session: &Session, ctx: &Ctx) -> Response {
    let _ = (req, session, ctx);
    Response {
        status: 404,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: b"not found\n".to_vec(),
    }
}

/// The static file at `path` (`/static/console.js`): its content type and bytes.
// wt-https's stub until wt-pages lands its assets.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let _ = path;
    None
}
