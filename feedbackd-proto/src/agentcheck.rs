//! HAProxy's agent-check protocol, both ways, sans IO: the one-line text reply an agent
//! writes ([`format_reply`]) and a checker reads ([`parse_reply`]), and what a checker
//! keeps between replies ([`Advertised`]).
//!
//! HAProxy 2.6 ("agent-check" in its configuration manual; `tcpcheck_agent_expect_reply()`
//! in src/tcpcheck.c) connects to the agent's port, optionally sends `agent-send`, and
//! reads one line ending at the first `\r` or `\n` (or at the close). The line is words
//! separated by spaces, tabs or commas, case-insensitive, in any order:
//!
//! ```text
//! 75%            weight: 75 % of the server's configured weight (0% shows as DRAIN)
//! maxconn:30     the server's maxconn
//! ready          administrative state READY (cancels drain and maint)
//! drain          administrative state DRAIN (no new connections but persistent ones)
//! maint          administrative state MAINT (no new connections at all)
//! down fail stopped  operational state DOWN; the rest after `#` is the description
//! up             operational state UP again
//! #text          a description: the rest of the line
//! ```
//!
//! What a reply does not say is left as it was ("Parameters which are not advertised by
//! the agent are not changed"): [`Advertised::apply`] keeps that stickiness for a checker.
//!
//! # Invariants
//! - Pure: no clock, socket or file. [`parse_reply`] never panics on any text and reads at
//!   most [`MAX_REPLY_BYTES`].
//! - `parse_reply(&format_reply(c, a))` gives back `c` to the percent and `a`.

use core::fmt;

use crate::types::AdminState;
use crate::wire::CAPACITY_SCALE;

/// The longest reply read [bytes], the line end included: a reply is a few words; HAProxy
/// itself reads at most its check buffer.
pub const MAX_REPLY_BYTES: usize = 1024;

/// The largest weight percentage: HAProxy caps a relative weight at 25600 % (and the
/// resulting weight at 256).
pub const MAX_PERCENT: u32 = 25_600;

/// The operational state a reply sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// `up`: back in operation (if HAProxy's own health checks agree).
    Up,
    /// `down`: seen as down (a missing process, a port not answering).
    Down,
    /// `fail`: appears up but fails some validity test.
    Fail,
    /// `stopped`: stopped on purpose.
    Stopped,
}

impl Health {
    /// The word, as the reply writes it.
    pub fn word(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Fail => "fail",
            Health::Stopped => "stopped",
        }
    }
}

/// One parsed reply: each field is what the reply advertised (`None`: not mentioned, so
/// unchanged). When a word of a kind repeats, the last one counts, as in HAProxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentCheckReply {
    /// `N%`: the weight as a percentage of the configured weight.
    pub percent: Option<u32>,
    /// `maxconn:N`.
    pub maxconn: Option<u32>,
    /// `ready`, `drain`, `maint`.
    pub admin: Option<AdminState>,
    /// `up`, `down`, `fail`, `stopped`.
    pub health: Option<Health>,
    /// The text after `#`, trimmed (empty descriptions are `None`).
    pub description: Option<String>,
}

/// Why a reply is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Longer than [`MAX_REPLY_BYTES`] before its line end.
    #[error("reply longer than {MAX_REPLY_BYTES} bytes")]
    TooLong,
    /// A control character (other than a tab) in the line.
    #[error("reply has a control character at byte {0}")]
    Control(usize),
    /// A word HAProxy does not know (HAProxy reports it as an invalid state).
    #[error("{0:?} is not an agent-check word (N%, maxconn:N, ready, drain, maint, up, down, fail, stopped)")]
    UnknownWord(String),
    /// `N%` with N not a whole number up to [`MAX_PERCENT`].
    #[error("{0:?} is not a weight percentage (0% to {MAX_PERCENT}%)")]
    Percent(String),
    /// `maxconn:N` with N not a whole number.
    #[error("{0:?} is not maxconn:N (N a whole number)")]
    Maxconn(String),
}

/// Parses the first line of `text` (up to the first `\r` or `\n`, or all of it). An empty
/// line is a valid reply that changes nothing.
pub fn parse_reply(text: &str) -> Result<AgentCheckReply, ReplyError> {
    let end = text.find(['\r', '\n']).unwrap_or(text.len());
    if end >= MAX_REPLY_BYTES {
        return Err(ReplyError::TooLong);
    }
    let line = &text[..end];
    if let Some(i) = line.bytes().position(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(ReplyError::Control(i));
    }
    // The manual: "down", "fail" or "stopped", "optionally followed by a description
    // string after a sharp ('#')": a '#' anywhere begins the description.
    let (words, description) = match line.split_once('#') {
        Some((w, d)) => (w, Some(d.trim_matches([' ', '\t']))),
        None => (line, None),
    };
    let mut reply = AgentCheckReply {
        description: description.filter(|d| !d.is_empty()).map(str::to_owned),
        ..AgentCheckReply::default()
    };
    for word in words.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
        parse_word(word, &mut reply)?;
    }
    Ok(reply)
}

fn parse_word(word: &str, reply: &mut AgentCheckReply) -> Result<(), ReplyError> {
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "up" => reply.health = Some(Health::Up),
        "down" => reply.health = Some(Health::Down),
        "fail" => reply.health = Some(Health::Fail),
        "stopped" => reply.health = Some(Health::Stopped),
        "ready" => reply.admin = Some(AdminState::Ready),
        "drain" => reply.admin = Some(AdminState::Drain),
        "maint" => reply.admin = Some(AdminState::Maint),
        _ if lower.starts_with("maxconn:") => {
            let n = &lower["maxconn:".len()..];
            reply.maxconn = Some(whole(n).ok_or_else(|| ReplyError::Maxconn(word.to_owned()))?);
        }
        // HAProxy takes a word starting with a digit and holding a '%' as a weight, and
        // then wants digits followed by the '%' alone.
        _ if lower.starts_with(|c: char| c.is_ascii_digit()) && lower.contains('%') => {
            let n = lower.strip_suffix('%').and_then(whole).filter(|&p| p <= MAX_PERCENT);
            reply.percent = Some(n.ok_or_else(|| ReplyError::Percent(word.to_owned()))?);
        }
        _ => return Err(ReplyError::UnknownWord(word.chars().take(64).collect())),
    }
    Ok(())
}

/// Digits only (no sign, no space), as a `u32`.
fn whole(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// The percentage of a capacity in per mille ([`CAPACITY_SCALE`]), rounded half up.
pub fn percent_of(capacity: u16) -> u32 {
    (u32::from(capacity.min(CAPACITY_SCALE)) + 5) / 10
}

/// The reply a feedbackd-agent writes for one service: its spare capacity as the weight
/// percentage (per mille; `None`: not measured, so no weight word and HAProxy keeps the
/// weight), its admin state, and `up` (HAProxy's operational state is the agent's to
/// restore: only an agent's `up` undoes an agent's `down`). Ends with `\n`.
///
/// `Ready` → `75% ready up`; `Drain` → `75% drain up`; `Maint` → `75% maint up`.
pub fn format_reply(capacity: Option<u16>, admin: AdminState) -> String {
    let mut s = String::new();
    if let Some(c) = capacity {
        s.push_str(&format!("{}% ", percent_of(c)));
    }
    s.push_str(&format!("{admin} up\n"));
    s
}

/// What a checker holds of one agent between replies: each reply changes only what it
/// advertises (HAProxy's rule), starting from ready, up and no weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertised {
    /// The last weight percentage advertised.
    pub percent: Option<u32>,
    /// The last admin state advertised (`Ready` at first).
    pub admin: AdminState,
    /// The last operational state advertised (`Up` at first).
    pub health: Health,
}

impl Default for Advertised {
    fn default() -> Advertised {
        Advertised { percent: None, admin: AdminState::Ready, health: Health::Up }
    }
}

impl Advertised {
    /// Takes in what `reply` advertises.
    pub fn apply(&mut self, reply: &AgentCheckReply) {
        self.percent = reply.percent.or(self.percent);
        self.admin = reply.admin.unwrap_or(self.admin);
        self.health = reply.health.unwrap_or(self.health);
    }

    /// The admin state and capacity (per mille, at most [`CAPACITY_SCALE`]: a percentage
    /// above 100 is full capacity) a feedbackd master's law takes from it. An agent that
    /// says its server is `down`, `fail` or `stopped` is drained (weight 0), as HAProxy
    /// sends it nothing; `maint` stays maint, `drain` drain.
    pub fn for_master(&self) -> (AdminState, Option<u16>) {
        let capacity = self.percent.map(|p| u16::try_from(p.min(100) * 10).unwrap_or(CAPACITY_SCALE));
        let admin = match (self.health, self.admin) {
            (Health::Up, a) => a,
            (_, AdminState::Maint) => AdminState::Maint,
            _ => AdminState::Drain,
        };
        (admin, capacity)
    }
}

impl fmt::Display for Advertised {
    /// `75% ready up`, as a reply would say it all (for logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.percent {
            write!(f, "{p}% ")?;
        }
        write!(f, "{} {}", self.admin, self.health.word())
    }
}

#[cfg(test)]
mod tests;
