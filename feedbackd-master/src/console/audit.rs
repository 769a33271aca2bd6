//! The console's audit log (`--console-audit FILE`): one JSON line per change attempt, login,
//! failed login and logout: `time` (RFC 3339, UTC), `user`, `role`, `address`, `change` and
//! `result` (`ok: ...` or `refused: ...`). The file is appended to, created 0600, never
//! opened through a symbolic link, and rotated by size (FILE.1 ... FILE.3), as the journal
//! (`record::JournalFile`).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use feedbackd_proto::journal_file::Rotation;

use super::session::Role;
use crate::record::JournalFile;

/// The audit file rotates before it grows past this.
pub const MAX_BYTES: u64 = 16 << 20;
/// Rotated audit files kept.
pub const KEEP: u32 = 3;
/// The longest field written (a longer one is cut, with `...`).
const MAX_FIELD: usize = 512;

/// The open audit log; shared by the console's tasks.
#[derive(Debug)]
pub struct Audit {
    file: Mutex<JournalFile>,
    path: PathBuf,
}

/// One audit line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// RFC 3339, UTC (`2026-12-06T12:00:00Z`).
    pub time: String,
    /// Who (the name typed, for a failed login).
    pub user: String,
    /// `admin`, `viewer`, or empty (a failed login).
    pub role: String,
    /// From where (the client's address).
    pub address: String,
    /// What: a change (`drain tcp:10.0.0.1:80/10.0.0.5:80`), `login`, `logout`, or the request.
    pub change: String,
    /// `ok: ...` or `refused: ...`.
    pub result: String,
}

impl Audit {
    /// Opens (or creates) the audit file; returns it and what to log about it.
    pub fn open(path: &Path) -> anyhow::Result<(Audit, Vec<String>)> {
        let rotation = Rotation { max_bytes: MAX_BYTES, keep: KEEP };
        let (file, notes) = JournalFile::open(path, rotation)
            .map_err(|e| anyhow::anyhow!("--console-audit: {}", format!("{e:#}").replace("--record ", "")))?;
        Ok((Audit { file: Mutex::new(file), path: path.to_owned() }, notes))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line, now. A failure to write is returned (the caller logs it).
    pub fn record(
        &self,
        user: &str,
        role: Option<Role>,
        address: IpAddr,
        change: &str,
        result: &str,
    ) -> anyhow::Result<()> {
        let line = serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "user": cut(user),
            "role": role.map_or("", Role::name),
            "address": address.to_string(),
            "change": cut(change),
            "result": cut(result),
        })
        .to_string();
        let mut f = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.append(&[line])
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_FIELD {
        return s.to_owned();
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The last `n` lines of the audit file at `path` (oldest first), read from at most its
/// last 1 MiB; lines that are not audit JSON are skipped. A missing file has none.
pub fn tail(path: &Path, n: usize) -> std::io::Result<Vec<AuditEntry>> {
    const MAX_READ: u64 = 1 << 20;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    f.take(MAX_READ).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let mut out: Vec<AuditEntry> = lines.iter().rev().filter_map(|l| parse_line(l)).take(n).collect();
    out.reverse();
    Ok(out)
}

fn parse_line(line: &str) -> Option<AuditEntry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some(AuditEntry {
        time: field("time")?,
        user: field("user")?,
        role: field("role")?,
        address: field("address")?,
        change: field("change")?,
        result: field("result")?,
    })
}

/// `t` as RFC 3339 in UTC, to the second (`2026-12-06T12:18:08Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Duration;

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_558_288), "2026-12-06T11:58:08Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn lines_are_json_0600_and_tail_reads_them_back() {
        let d = std::env::temp_dir().join(format!("fbm-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("audit.log");
        let (a, _) = Audit::open(&path).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        a.record("alice", Some(Role::Admin), ip, "login", "ok").unwrap();
        a.record("bob\"\n{", None, ip, "login", "refused: wrong user or password").unwrap();
        a.record("alice", Some(Role::Admin), ip, &"x".repeat(10_000), "ok: drained").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let all = tail(&path, 10).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].user, "alice");
        assert_eq!(all[0].role, "admin");
        assert_eq!(all[1].user, "bob\"\n{");
        assert_eq!(all[1].address, "192.0.2.7");
        assert!(all[2].change.len() < 600 && all[2].change.ends_with("..."));
        let last = tail(&path, 1).unwrap();
        assert_eq!(last, all[2..].to_vec());
        assert!(tail(&d.join("missing"), 5).unwrap().is_empty());
        let link = d.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = Audit::open(&link).unwrap_err().to_string();
        assert!(e.starts_with("--console-audit:") && e.contains("symbolic link"), "{e}");
    }
}
