//! Users' sessions: who is logged in, with which role and CSRF token.

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees everything, changes nothing.
    Viewer,
    /// Sees and changes.
    Admin,
}

/// A logged-in user's session, as the page handlers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The token every form of this session carries (field `csrf`); the server checks it
    /// before a handler sees a POST.
    pub csrf: String,
}

/// The session cookie's name: `__Host-` makes browsers accept it only with `Secure`,
/// `Path=/` and no `Domain`, so no other host or plain-HTTP page can set it.
pub const COOKIE: &str = "__Host-feedbackd";

/// A session unused for this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// The most sessions at once; a login beyond it ends the least recently used one.
pub const MAX_SESSIONS: usize = 1024;

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The sessions, in memory only: a cookie from another master, or from before a restart,
/// names no session and is refused.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    created: Instant,
    last_used: Instant,
}

/// 256 bits from the OS's random source, in hexadecimal.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source works");
    super::users::hex(&b)
}

/// Compares two secrets in a time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// A new session for `user`: returns its cookie token (the CSRF token is another one).
    pub fn create(&mut self, now: Instant, user: &str, role: Role) -> (String, Session) {
        self.expire(now);
        if self.by_token.len() >= MAX_SESSIONS {
            let oldest = self.by_token.iter().min_by_key(|(_, e)| e.last_used).map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                self.by_token.remove(&t);
            }
        }
        let token = random_token();
        let session = Session { user: user.to_owned(), role, csrf: random_token() };
        let entry = Entry { session: session.clone(), created: now, last_used: now };
        self.by_token.insert(token.clone(), entry);
        (token, session)
    }

    /// The live session named by `token` (its idle time restarts), or none: unknown, idle
    /// for [`IDLE_TIMEOUT`], or older than [`MAX_AGE`] (then it is forgotten).
    pub fn get(&mut self, now: Instant, token: &str) -> Option<Session> {
        let e = self.by_token.get_mut(token)?;
        if live(e, now) {
            e.last_used = now;
            return Some(e.session.clone());
        }
        self.by_token.remove(token);
        None
    }

    /// Ends a session (logout).
    pub fn remove(&mut self, token: &str) -> Option<Session> {
        self.by_token.remove(token).map(|e| e.session)
    }

    /// Keeps the sessions for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Session) -> bool) {
        self.by_token.retain(|_, e| keep(&e.session));
    }

    /// How many sessions are live or not yet swept.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// No session.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        self.by_token.retain(|_, e| live(e, now));
    }
}

fn live(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.last_used) < IDLE_TIMEOUT
        && now.saturating_duration_since(e.created) < MAX_AGE
}

/// The session cookie's value in a request's `Cookie` headers (the first, if several).
pub fn cookie_token(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", MAX_AGE.as_secs())
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_idle_and_absolute_and_are_bounded() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        let (tok, sess) = s.create(t0, "alice", Role::Admin);
        assert_eq!(tok.len(), 64);
        assert_ne!(tok, sess.csrf);
        assert_eq!(s.get(t0, &tok).unwrap().user, "alice");
        assert!(s.get(t0, "nope").is_none());
        // Used every 20 minutes: alive past the idle timeout, dead at 12 h.
        let mut t = t0;
        while t + Duration::from_secs(20 * 60) < t0 + MAX_AGE {
            t += Duration::from_secs(20 * 60);
            assert!(s.get(t, &tok).is_some(), "{:?}", t - t0);
        }
        assert!(s.get(t0 + MAX_AGE, &tok).is_none());
        assert!(s.is_empty());
        let (tok, _) = s.create(t0, "bob", Role::Viewer);
        assert!(s.get(t0 + IDLE_TIMEOUT, &tok).is_none());
        // Bounded: the least recently used goes.
        let (first, _) = s.create(t0, "u0", Role::Viewer);
        for i in 1..MAX_SESSIONS + 10 {
            s.create(t0 + Duration::from_millis(i as u64), &format!("u{i}"), Role::Viewer);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get(t0 + Duration::from_secs(1), &first).is_none());
        let (t, _) = s.create(t0, "x", Role::Admin);
        assert!(s.remove(&t).is_some() && s.get(t0, &t).is_none());
    }

    #[test]
    fn cookies_and_comparisons() {
        let h = vec![
            ("accept".to_owned(), "*/*".to_owned()),
            ("cookie".to_owned(), "a=b; __Host-feedbackd=abc ; c=d".to_owned()),
        ];
        assert_eq!(cookie_token(&h), Some("abc"));
        assert_eq!(cookie_token(&h[..1]), None);
        assert!(set_cookie("t").contains("__Host-feedbackd=t; Secure; HttpOnly; SameSite=Strict; Path=/"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
    }
}
