//! The messages carried across a POST's redirect (303 → `GET ...?flash=ID`): kept here,
//! shown once, only to the session that made the change (the id alone shows nothing to
//! another session, and a crafted id shows nothing at all). Bounded: the oldest are
//! dropped past [`MAX_FLASHES`].

use std::collections::VecDeque;
use std::sync::Mutex;

use super::html::Flash;

/// The most messages waiting to be shown.
pub const MAX_FLASHES: usize = 256;

struct Entry {
    id: String,
    owner: String,
    flash: Flash,
}

static FLASHES: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

/// Keeps a message for the session whose CSRF token is `owner`; returns its id.
pub fn put(owner: &str, flash: Flash) -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the OS random source works");
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut q = FLASHES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if q.len() == MAX_FLASHES {
        q.pop_front();
    }
    q.push_back(Entry { id: id.clone(), owner: owner.to_owned(), flash });
    id
}

/// The message `id`, once, if it belongs to `owner`.
pub fn take(id: &str, owner: &str) -> Option<Flash> {
    let mut q = FLASHES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let i = q.iter().position(|e| e.id == id && e.owner == owner)?;
    q.remove(i).map(|e| e.flash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_once_and_only_to_its_session() {
        let id = put("token-a", Flash { ok: true, text: "done".into() });
        assert_eq!(take(&id, "token-b"), None);
        assert_eq!(take(&id, "token-a").map(|f| f.text), Some("done".to_owned()));
        assert_eq!(take(&id, "token-a"), None);
        assert_eq!(take("nonsense", "token-a"), None);
    }
}
