//! Authentication: an agent's key, a per-connection session key, a tag on every frame,
//! and sequence numbers against replay; and the key files' permission check.
//!
//! Each agent has its own key ([`Psk`]); the master holds every agent's in its keys file
//! ([`crate::keys`]) and picks the one of the agent id a Register names. The master's
//! Welcome carries its nonce; the agent's Register carries the agent's. Both
//! sides derive `session = HMAC-SHA256(key, "feedbackd/1 session" ‖ master nonce ‖ agent
//! nonce)` and tag every later frame with `HMAC-SHA256(session, frame without tag)`. A frame
//! recorded on one connection therefore fails on any other (different nonces, different
//! key), and within a connection every frame must carry the next sequence number, so a
//! replayed, dropped or reordered frame is refused. Tags are compared in constant time.
//!
//! The Welcome itself is not tagged (no nonce is shared yet); a forged Welcome can only
//! make the agent derive a key the master will not accept.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use crate::wire::SessionKey;
use crate::wire::{self, DecodeError, Message, Nonce, RawFrame};

type HmacSha256 = Hmac<Sha256>;

/// The shortest pre-shared key accepted [bytes].
pub const MIN_PSK_LEN: usize = 16;

/// An agent's key (shared by that agent and the master only).
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(Vec<u8>);

impl Psk {
    /// A key from a key file's contents: surrounding whitespace is trimmed; at least
    /// [`MIN_PSK_LEN`] bytes must remain.
    pub fn from_file_contents(bytes: &[u8]) -> Result<Psk, String> {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
        let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
        let key = &bytes[start..end];
        if key.len() < MIN_PSK_LEN {
            return Err(format!(
                "the key is {} bytes long; at least {MIN_PSK_LEN} are needed \
                 (e.g. `head -c 32 /dev/urandom | base64 > KEYFILE`)",
                key.len()
            ));
        }
        Ok(Psk(key.to_vec()))
    }

    /// The session key for one connection.
    pub fn session(&self, master_nonce: &Nonce, agent_nonce: &Nonce) -> SessionKey {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"feedbackd/1 session");
        mac.update(master_nonce);
        mac.update(agent_nonce);
        SessionKey(mac.finalize().into_bytes().into())
    }
}

impl core::fmt::Debug for Psk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Psk({} bytes)", self.0.len())
    }
}

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// It did not decode.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// A key is configured and the frame carries no tag.
    #[error("frame not authenticated (a key is configured)")]
    MissingTag,
    /// The tag does not match.
    #[error("authentication tag does not match (wrong key or tampered frame)")]
    BadTag,
    /// A tag came where no key is configured.
    #[error("frame is authenticated but no key is configured here")]
    UnexpectedTag,
    /// Not the next sequence number: a replay, a gap or a reordering.
    #[error("sequence number {got}, expected {expected} (replayed or reordered frame)")]
    Sequence {
        /// The number expected.
        expected: u64,
        /// The number received.
        got: u64,
    },
}

impl FrameError {
    /// A short stable label, for counters (`malformed`, `auth`, `sequence`).
    pub fn label(&self) -> &'static str {
        match self {
            FrameError::Decode(_) => "malformed",
            FrameError::MissingTag | FrameError::BadTag | FrameError::UnexpectedTag => "auth",
            FrameError::Sequence { .. } => "sequence",
        }
    }
}

/// One direction pair of a connection: the session key once known, the next sequence
/// numbers, and the bytes received but not yet framed.
#[derive(Debug, Default)]
pub struct Channel {
    key: Option<SessionKey>,
    sent: u64,
    received: u64,
    inbuf: Vec<u8>,
}

impl Channel {
    /// A fresh channel: no key yet, both sequences at 0.
    pub fn new() -> Channel {
        Channel::default()
    }

    /// Installs the session key; frames from now on are tagged and must be.
    pub fn set_key(&mut self, key: SessionKey) {
        self.key = Some(key);
    }

    /// Whether a session key is installed.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Encodes `msg` with the next sequence number (tagged if a key is installed).
    pub fn seal(&mut self, msg: &Message) -> Vec<u8> {
        self.sent += 1;
        wire::encode(msg, self.sent, self.key.as_ref())
    }

    /// The sequence number of the last frame sealed.
    pub fn last_sent(&self) -> u64 {
        self.sent
    }

    /// Appends received bytes.
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet framed.
    pub fn buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// Takes the next whole frame out of the input, if one has arrived. The frame is not
    /// yet checked: pass it to [`Channel::open`] (or derive the key first, for a Register).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match wire::frame_len(&self.inbuf)? {
            None => Ok(None),
            Some(n) => {
                let rest = self.inbuf.split_off(n);
                Ok(Some(core::mem::replace(&mut self.inbuf, rest)))
            }
        }
    }

    /// Checks a frame's sequence number and tag against this channel and decodes it.
    /// `require_key`: refuse an untagged frame even before a key is installed (a master
    /// with a key configured).
    pub fn open(&mut self, frame: &RawFrame<'_>, require_key: bool) -> Result<Message, FrameError> {
        match (&self.key, frame.tag) {
            (Some(key), Some(tag)) => {
                if !key.verify(frame.signed, tag) {
                    return Err(FrameError::BadTag);
                }
            }
            (Some(_), None) => return Err(FrameError::MissingTag),
            (None, Some(_)) => return Err(FrameError::UnexpectedTag),
            (None, None) if require_key => return Err(FrameError::MissingTag),
            (None, None) => {}
        }
        let expected = self.received + 1;
        if frame.seq != expected {
            return Err(FrameError::Sequence { expected, got: frame.seq });
        }
        self.received = expected;
        Ok(wire::decode_body(frame.message_type, frame.body)?)
    }
}

/// Judges a key file's permission bits (`st_mode`, as the daemon's `stat` read them):
/// a key readable or writable by the group or by others is refused, as ssh refuses a loose
/// private key. `path` is only used in the message.
pub fn check_key_file_mode(path: &str, mode: u32) -> Result<(), String> {
    let perm = mode & 0o7777;
    if perm & 0o077 != 0 {
        return Err(format!(
            "permissions {perm:04o} for '{path}' are too open: a key file must be readable by \
             its owner only (chmod 600 '{path}')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod mode_tests {
    use super::check_key_file_mode;

    #[test]
    fn loose_key_files_are_refused_like_ssh_does() {
        for mode in [0o100600, 0o400, 0o600, 0o700, 0o100400] {
            assert!(check_key_file_mode("k", mode).is_ok(), "{mode:o}");
        }
        for mode in [0o100644, 0o640, 0o604, 0o666, 0o610, 0o601, 0o100660] {
            let e = check_key_file_mode("/etc/feedbackd/key", mode).unwrap_err();
            assert!(
                e.contains(&format!(
                    "permissions {:04o} for '/etc/feedbackd/key' are too open",
                    mode & 0o7777
                )),
                "{e}"
            );
        }
    }
}
