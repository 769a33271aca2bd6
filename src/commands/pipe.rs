//! A closed pipe (`lvsim list --json | head -1`) is the reader's choice, not an error:
//! `main` ends quietly with status 0 when the error that stopped a command came from
//! writing to one.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `EPIPE`, which reaches
//! `main` wrapped in many ways: an `io::Error` in an anyhow chain, with or without
//! context; a `serde_json::Error` (whose `source()` hides the `io::Error`); an
//! `io::Error` wrapping another error. [`closed_pipe`] looks through all of them.
//! A command that has more to do after printing (write `summary.txt`, exit 2 or 3 on a
//! verdict) writes through [`UnlessClosed`] (or [`print`]), which treats a closed pipe as
//! a completed print, so that the pipe does not decide its exit status.

use std::error::Error;
use std::io::{ErrorKind, Write};

/// Whether `e` was caused by writing to a closed pipe.
pub fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(broken_pipe)
}

/// Prints a command's terminal text on standard output. A closed pipe is not an error here:
/// the command goes on, so that what follows the printing (its `summary.txt`, a failed
/// `expect` check's exit code 3) does not depend on whether anyone read to the end.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = UnlessClosed::new(std::io::stdout().lock());
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A writer for a command whose exit status is decided after it prints (`validate`: exit
/// 2 if any file is invalid; `run`: 3 if a check failed): once its reader has gone, what
/// is written is dropped instead of failing, and the command goes on to its own verdict.
/// Other errors are returned as they are.
pub struct UnlessClosed<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> UnlessClosed<W> {
    /// Wraps a writer (standard output, locked).
    pub fn new(inner: W) -> UnlessClosed<W> {
        UnlessClosed { inner, closed: false }
    }

    /// Whether the reader has gone.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn absorb<T>(&mut self, r: std::io::Result<T>, done: T) -> std::io::Result<T> {
        match r {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            r => r,
        }
    }
}

impl<W: Write> Write for UnlessClosed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.absorb(r, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.absorb(r, ())
    }
}

/// Whether this error, or one it wraps, is `EPIPE`.
fn broken_pipe(e: &(dyn Error + 'static)) -> bool {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if io.kind() == ErrorKind::BrokenPipe {
            return true;
        }
        // io::Error::source() skips the error it wraps (it returns that error's source).
        if io.get_ref().is_some_and(|inner| broken_pipe(inner)) {
            return true;
        }
    }
    if let Some(j) = e.downcast_ref::<serde_json::Error>()
        && j.io_error_kind() == Some(ErrorKind::BrokenPipe)
    {
        return true;
    }
    e.source().is_some_and(broken_pipe)
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    /// A writer whose reader has gone.
    struct Closed;

    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_wrapping_of_epipe_is_a_closed_pipe() {
        let json = serde_json::to_writer(Closed, &serde_json::json!({"a": 1})).unwrap_err();
        assert!(closed_pipe(&anyhow::Error::from(json)));
        let json = serde_json::to_writer_pretty(Closed, &[1, 2]).unwrap_err();
        let e = Err::<(), _>(json).context("printing the list").context("list").unwrap_err();
        assert!(closed_pipe(&e));
        let io = writeln!(Closed, "x").unwrap_err();
        assert!(closed_pipe(&anyhow::Error::from(io).context("printing")));
        let json = serde_json::to_writer(Closed, &1).unwrap_err();
        let wrapped = std::io::Error::other(json);
        assert!(closed_pipe(&anyhow::Error::from(wrapped)));
        let nested = std::io::Error::other(std::io::Error::from(ErrorKind::BrokenPipe));
        assert!(closed_pipe(&anyhow::anyhow!(nested)));
    }

    #[test]
    fn writing_into_a_closed_pipe_goes_on() {
        let mut w = UnlessClosed::new(Closed);
        writeln!(w, "summary").unwrap();
        writeln!(w, "more").unwrap();
        w.flush().unwrap();
        assert!(w.closed());
        let mut full = [0u8; 3];
        let mut w = UnlessClosed::new(&mut full[..]);
        let e = w.write_all(b"four").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WriteZero, "other errors still fail");
        assert!(!w.closed());
        let mut w = UnlessClosed::new(Vec::new());
        w.write_all(b"text").unwrap();
        assert_eq!(w.inner, b"text");
    }

    #[test]
    fn other_errors_are_not() {
        assert!(!closed_pipe(&anyhow::anyhow!("broken pipe")));
        let io = std::io::Error::from(ErrorKind::PermissionDenied);
        assert!(!closed_pipe(&anyhow::Error::from(io).context("writing out/summary.json")));
        let syntax = serde_json::from_str::<u32>("x").unwrap_err();
        assert!(!closed_pipe(&anyhow::Error::from(syntax)));
        assert!(!closed_pipe(&anyhow::Error::from(super::super::InputError("EPIPE".into()))));
    }
}
