//! A master's journal: what it was told (the kernel's table, agents' connections,
//! registrations, reports, goodbyes, failed backend operations) and what it decided, each
//! with the master's `now`. `feedbackd-master --record FILE` writes one [`Record`] per line;
//! the simulator replays the inputs through its own master and compares the decisions (the
//! parity test).
//!
//! # The line format
//!
//! One record per line: the time in integer nanoseconds since the master started, the
//! record's kind, then `field=value` pairs separated by single spaces. Fields are written
//! in a fixed order and read in any order; a missing, repeated or unknown field is an
//! error. Values never contain a space, except the goodbye's `reason`, which is free text,
//! always last, and runs to the end of the line.
//!
//! ```text
//! 0 start law=capacity min_weight=1 max_weight=100 smoothing=0.2 dead_band=2 max_step=25 slow_start_ns=10000000000 quiesce_after_ns=5000000000 remove_after_ns=60000000000 register_timeout_ns=10000000000 max_servers_per_agent=64
//! 1250 table services=tcp:10.0.0.1:80,fwm6:7 entries=tcp:10.0.0.1:80/10.0.0.9:80/5/nat
//! 9100 connect conn=1 peer=127.0.0.1
//! 9100 register conn=1 agent=rs1 interval_ms=200 services=tcp/80/nat/-/-/10.0.0.2
//! 9200 report conn=1 admin=ready capacity=900 metrics=cpu_busy:0.1,qps:12.5
//! 9200 add rs=tcp:10.0.0.1:80/10.0.0.2:80 weight=90
//! 9900 report conn=1 admin=ready capacity=200 metrics=
//! 9900 set rs=tcp:10.0.0.1:80/10.0.0.2:80 from=90 to=21
//! 12000 goodbye conn=1 reason=stopping (SIGTERM)
//! 12000 set rs=tcp:10.0.0.1:80/10.0.0.2:80 from=21 to=0
//! 12001 disconnect conn=1
//! 72000 remove rs=tcp:10.0.0.1:80/10.0.0.2:80
//! 80000 apply-failed rs=tcp:10.0.0.1:80/10.0.0.3:80
//! ```
//!
//! | kind | fields |
//! |------|--------|
//! | `start` | `law=capacity` or `law=grpc-wrr error_penalty=F weight_per_qps=F`; `min_weight`, `max_weight`, `smoothing`, `dead_band`, `max_step`, `slow_start_ns`, `quiesce_after_ns`, `remove_after_ns`, `register_timeout_ns`, `max_servers_per_agent` (optional: absent in older journals) |
//! | `table` | `services=SERVICE,...` `entries=SERVICE/SERVER/WEIGHT/FORWARDING,...` |
//! | `connect` | `conn=N peer=IP`: written when the connection registers (authenticated and admitted), just before its `register`; older journals wrote it at accept time, which reads the same |
//! | `register` | `conn=N agent=ID interval_ms=N services=PROTO/PORT/FORWARDING/VIP/FWMARK/ADDRESS,...` |
//! | `report` | `conn=N admin=ready\|drain\|maint capacity=C,... metrics=NAME:F,...` |
//! | `goodbye` | `conn=N reason=TEXT` (last) |
//! | `disconnect` | `conn=N` |
//! | `add` | `rs=SERVICE/SERVER weight=N` |
//! | `set` | `rs=SERVICE/SERVER from=N to=N` |
//! | `remove` | `rs=SERVICE/SERVER` |
//! | `apply-failed` | `rs=SERVICE/SERVER` |
//! | `operator` | `rs=SERVICE/SERVER action=drain\|maintenance\|return\|pin\|unpin [weight=N] from=IP user=NAME`: the console's action, accepted (`weight` with `pin` only) |
//! | `held` | `rs=SERVICE/SERVER forwarding=FORWARDING weight=N`: in maintenance from before a restart (the state file) |
//! | `note` | `from=IP user=NAME text=TEXT` (last): a console change the master does not decide on (a service added, edited, removed; thresholds); replay ignores it |
//! | `polled` | `agent=ID peer=IP interval_ms=N service=PROTO/PORT/FORWARDING/VIP/FWMARK/ADDRESS admin=ready\|drain\|maint capacity=C`: a polled (agent-check) agent's answer; the first registers it |
//!
//! - `SERVICE`: `tcp:VIP:PORT`, `udp:VIP:PORT`, `sctp:VIP:PORT` (an IPv6 VIP in brackets:
//!   `tcp:[2001:db8::1]:80`), `fwm:MARK` or `fwm6:MARK` (an IPv6 firewall-mark service).
//! - `SERVER`: `10.0.0.2:80` or `[2001:db8::2]:80`. `IP`: `10.0.0.2` or `2001:db8::2`.
//! - `FORWARDING`: `nat`, `dr`, `tun`; in a table entry also `local`.
//! - In a registered service, `VIP`, `FWMARK` and `ADDRESS` are `-` when absent.
//! - A capacity is per mille (0 to 1000) or `-` (no measurement). Metric names are
//!   `[a-z0-9_]`; agent ids are printable ASCII without spaces (the wire's bounds).
//! - Numbers (`F`) are written as Rust's shortest representation that reads back to the
//!   same `f64` (`0.1`, `1.0`, `1e-7`), so every value round-trips exactly.
//! - A list is comma-separated; an empty list is an empty value (`metrics=`).
//! - `user` and `text` are escaped as `reason` is, and a space in `user` is written `\u{20}`.
//! - In `reason`, `\` is written `\\`, and control characters `\n`, `\r`, `\t` or
//!   `\u{HEX}`, so a reason never breaks the line.
//!
//! Records come in the order the master produced them: an input, then the decisions it
//! caused, at the same time. Decisions at a time with no input before them were caused by
//! silence (an agent quiesced or removed).
//!
//! Only authenticated input is journalled: a connection that never registers, a frame that
//! fails authentication and a refused registration leave no record (the master's counters
//! count them), so a flood of strangers cannot fill the journal. [`parse_journal`] reads a whole file (blank
//! lines and `#` comments skipped).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use lvs_sched::feedback::{GrpcWrr, LawConfig, LawKind, Prequal};
use lvs_sched::{Duration, Time};

use lvs_ipvs::Forwarding;

use crate::types::{
    AdminState, ConnId, Polled, RsKey, ServerAction, ServiceSpec, ServiceText, TableEntry, Who, parse_service,
};

use crate::wire::{self, Metric};
use lvs_ipvs::{AddrPort, Protocol, ServiceKey};

/// One line of the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The master's time (since it started).
    pub t: Time,
    /// What happened.
    pub entry: Entry,
}

/// What a [`Record`] holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// The master's settings (the first line).
    Start {
        /// The weight law.
        law: LawConfig,
        /// `--quiesce-after`.
        quiesce_after: Duration,
        /// `--remove-after`.
        remove_after: Duration,
        /// The registration deadline.
        register_timeout: Duration,
        /// `--max-servers-per-agent` (`None`: a journal written before the limit existed,
        /// replayed without one).
        max_servers_per_agent: Option<usize>,
    },
    /// The kernel's table as read (start-up and every rescan).
    Table {
        /// Virtual services.
        services: Vec<ServiceKey>,
        /// Their real servers.
        entries: Vec<TableEntry>,
    },
    /// A connection was accepted.
    Connect {
        /// Its number.
        conn: ConnId,
        /// The agent's address.
        peer: IpAddr,
    },
    /// An agent registered (an authenticated, well-formed Register).
    Register {
        /// On this connection.
        conn: ConnId,
        /// The agent's id.
        agent: String,
        /// Its report interval [ms].
        interval_ms: u32,
        /// Its services.
        services: Vec<ServiceSpec>,
    },
    /// A report was accepted (authenticated, in sequence, well-formed).
    Report {
        /// On this connection.
        conn: ConnId,
        /// Admin state.
        admin: AdminState,
        /// Per service, per-mille spare capacity.
        capacity: Vec<Option<u16>>,
        /// Metrics.
        metrics: Vec<Metric>,
    },
    /// An agent said goodbye.
    Goodbye {
        /// On this connection.
        conn: ConnId,
        /// Why.
        reason: String,
    },
    /// A connection closed.
    Disconnect {
        /// Which.
        conn: ConnId,
    },
    /// The backend failed to apply a decision for this real server
    /// ([`crate::master::Master::handle_apply_failed`]): the master takes it as absent from
    /// the table, so the agent's next report adds it again.
    ApplyFailed {
        /// Which.
        key: RsKey,
    },
    /// A polled agent's answer ([`crate::master::Master::handle_polled`]): the first
    /// registers it, every one is a report.
    Polled {
        /// Who was polled, for which real server.
        polled: Polled,
        /// Its admin state.
        admin: AdminState,
        /// Its per-mille spare capacity, if the answer had one.
        capacity: Option<u16>,
    },
    /// The operator's action on a real server ([`crate::master::Master::handle_operator`]),
    /// accepted.
    Operator {
        /// Who.
        who: Who,
        /// Which real server.
        key: RsKey,
        /// What.
        action: ServerAction,
    },
    /// A real server held in maintenance from before a restart
    /// ([`crate::master::Master::handle_held`]).
    Held {
        /// Which.
        key: RsKey,
        /// How it is forwarded to when it returns.
        forwarding: Forwarding,
        /// Its weight when it returns (without an agent).
        weight: u32,
    },
    /// A change the operator made that the master does not decide on (a virtual service
    /// added, edited or removed, a real server's thresholds): for the record; a replay
    /// ignores it (the next `table` shows its effect).
    Note {
        /// Who.
        who: Who,
        /// What, in words.
        text: String,
    },
    /// A change the master made to the table.
    Decision(Decision),
}

/// A change to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A real server added with this weight.
    Add {
        /// Which.
        key: RsKey,
        /// Its weight.
        weight: u32,
    },
    /// A weight changed.
    Set {
        /// Which.
        key: RsKey,
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// A real server removed.
    Remove {
        /// Which.
        key: RsKey,
    },
}

impl Decision {
    /// The real server it concerns.
    pub fn key(&self) -> RsKey {
        match *self {
            Decision::Add { key, .. } | Decision::Set { key, .. } | Decision::Remove { key } => key,
        }
    }
}

impl Record {
    /// The record as one line of the journal, without the newline.
    ///
    /// Every record a [`crate::master::Master`] produces reads back equal with
    /// [`Record::parse_line`]: its agent ids and metric names are within the wire's bounds.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write!(s, "{} ", self.t.0);
        match &self.entry {
            Entry::Start { law, quiesce_after, remove_after, register_timeout, max_servers_per_agent } => {
                match law.kind {
                    LawKind::Capacity => s.push_str("start law=capacity"),
                    LawKind::GrpcWrr(g) => {
                        let _ = write!(
                            s,
                            "start law=grpc-wrr error_penalty={:?} weight_per_qps={:?} \
                             blackout_period_ns={} weight_expiration_period_ns={}",
                            g.error_penalty,
                            g.weight_per_qps,
                            g.blackout_period.0,
                            g.weight_expiration_period.0
                        );
                    }
                    LawKind::Prequal(q) => {
                        let _ = write!(
                            s,
                            "start law=prequal pool_size={} max_age_ns={} q_rif={:?}",
                            q.pool_size, q.max_age.0, q.q_rif
                        );
                    }
                }
                let _ = write!(
                    s,
                    " min_weight={} max_weight={} smoothing={:?} dead_band={} max_step={} \
                     slow_start_ns={} quiesce_after_ns={} remove_after_ns={} register_timeout_ns={}",
                    law.min_weight,
                    law.max_weight,
                    law.smoothing,
                    law.dead_band,
                    law.max_step,
                    law.slow_start.0,
                    quiesce_after.0,
                    remove_after.0,
                    register_timeout.0
                );
                if let Some(n) = max_servers_per_agent {
                    let _ = write!(s, " max_servers_per_agent={n}");
                }
            }
            Entry::Table { services, entries } => {
                s.push_str("table services=");
                list(&mut s, services, write_service);
                s.push_str(" entries=");
                list(&mut s, entries, |s, e| {
                    write_rs(s, &e.key);
                    let _ = write!(s, "/{}/{}", e.weight, forwarding_name(e.forwarding));
                });
            }
            Entry::Connect { conn, peer } => {
                let _ = write!(s, "connect conn={} peer={peer}", conn.0);
            }
            Entry::Register { conn, agent, interval_ms, services } => {
                let _ =
                    write!(s, "register conn={} agent={agent} interval_ms={interval_ms} services=", conn.0);
                list(&mut s, services, write_spec);
            }
            Entry::Report { conn, admin, capacity, metrics } => {
                let _ = write!(s, "report conn={} admin={admin} capacity=", conn.0);
                list(&mut s, capacity, write_capacity);
                s.push_str(" metrics=");
                list(&mut s, metrics, |s, m| {
                    let _ = write!(s, "{}:{:?}", m.name, m.value);
                });
            }
            Entry::Goodbye { conn, reason } => {
                let _ = write!(s, "goodbye conn={} reason=", conn.0);
                escape(&mut s, reason);
            }
            Entry::Disconnect { conn } => {
                let _ = write!(s, "disconnect conn={}", conn.0);
            }
            Entry::ApplyFailed { key } => {
                s.push_str("apply-failed rs=");
                write_rs(&mut s, key);
            }
            Entry::Polled { polled, admin, capacity } => {
                let _ = write!(
                    s,
                    "polled agent={} peer={} interval_ms={} service=",
                    polled.id, polled.peer, polled.interval_ms
                );
                write_spec(&mut s, &polled.service);
                let _ = write!(s, " admin={admin} capacity=");
                write_capacity(&mut s, capacity);
            }
            Entry::Operator { who, key, action } => {
                s.push_str("operator rs=");
                write_rs(&mut s, key);
                match action {
                    ServerAction::Pin(w) => {
                        let _ = write!(s, " action=pin weight={w}");
                    }
                    a => {
                        let _ = write!(s, " action={a}");
                    }
                }
                write_who(&mut s, who);
            }
            Entry::Held { key, forwarding, weight } => {
                s.push_str("held rs=");
                write_rs(&mut s, key);
                let _ = write!(s, " forwarding={} weight={weight}", forwarding_name(*forwarding));
            }
            Entry::Note { who, text } => {
                s.push_str("note");
                write_who(&mut s, who);
                s.push_str(" text=");
                escape(&mut s, text);
            }
            Entry::Decision(d) => {
                s.push_str(match d {
                    Decision::Add { .. } => "add",
                    Decision::Set { .. } => "set",
                    Decision::Remove { .. } => "remove",
                });
                s.push_str(" rs=");
                write_rs(&mut s, &d.key());
                match *d {
                    Decision::Add { weight, .. } => {
                        let _ = write!(s, " weight={weight}");
                    }
                    Decision::Set { from, to, .. } => {
                        let _ = write!(s, " from={from} to={to}");
                    }
                    Decision::Remove { .. } => {}
                }
            }
        }
        s
    }

    /// Reads one line written by [`Record::to_line`] (without its newline). The error says
    /// which field is wrong and why. Never panics, whatever the input.
    pub fn parse_line(line: &str) -> Result<Record, String> {
        let (t, rest) = line.split_once(' ').unwrap_or((line, ""));
        if t.is_empty() {
            return Err("empty line: expected `TIME KIND field=value ...`".into());
        }
        let t = Time(t.parse().map_err(|_| format!("time {t:?} is not integer nanoseconds"))?);
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if kind.is_empty() {
            return Err("no record kind after the time".into());
        }
        if !KINDS.contains(&kind) {
            return Err(format!("unknown record kind {kind:?} (one of {})", KINDS.join(", ")));
        }
        let text_key = match kind {
            "goodbye" => Some("reason"),
            "note" => Some("text"),
            _ => None,
        };
        let mut f = Fields::split(kind, rest, text_key)?;
        let entry = match kind {
            "start" => parse_start(&mut f)?,
            "table" => Entry::Table {
                services: parse_list(f.take("services")?, "services", parse_service)?,
                entries: parse_list(f.take("entries")?, "entries", parse_entry)?,
            },
            "connect" => {
                Entry::Connect { conn: f.conn()?, peer: parse_ip(f.take("peer")?).map_err(in_field("peer"))? }
            }
            "register" => parse_register(&mut f)?,
            "report" => parse_report(&mut f)?,
            "goodbye" => {
                let conn = f.conn()?;
                Entry::Goodbye { conn, reason: unescape(f.take("reason")?).map_err(in_field("reason"))? }
            }
            "disconnect" => Entry::Disconnect { conn: f.conn()? },
            "apply-failed" => Entry::ApplyFailed { key: f.rs()? },
            "polled" => parse_polled(&mut f)?,
            "operator" => parse_operator(&mut f)?,
            "held" => Entry::Held {
                key: f.rs()?,
                forwarding: parse_forwarding(f.take("forwarding")?).map_err(in_field("forwarding"))?,
                weight: f.number("weight")?,
            },
            "note" => {
                let who = parse_who(&mut f)?;
                Entry::Note { who, text: unescape(f.take("text")?).map_err(in_field("text"))? }
            }
            "add" => Entry::Decision(Decision::Add { key: f.rs()?, weight: f.number("weight")? }),
            "set" => {
                let key = f.rs()?;
                Entry::Decision(Decision::Set { key, from: f.number("from")?, to: f.number("to")? })
            }
            "remove" => Entry::Decision(Decision::Remove { key: f.rs()? }),
            _ => unreachable!("checked against KINDS"),
        };
        f.finish()?;
        Ok(Record { t, entry })
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Every record kind, as the line names it.
const KINDS: &[&str] = &[
    "start",
    "table",
    "connect",
    "register",
    "report",
    "goodbye",
    "disconnect",
    "apply-failed",
    "polled",
    "operator",
    "held",
    "note",
    "add",
    "set",
    "remove",
];

/// Reads a whole journal: one record per line; blank lines and lines starting with `#` are
/// skipped. The error names the line (1-based).
pub fn parse_journal(text: &str) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        records.push(Record::parse_line(line).map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    Ok(records)
}

// ---- writing ----

fn list<T>(s: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        each(s, item);
    }
}

fn write_capacity(s: &mut String, c: &Option<u16>) {
    match c {
        Some(c) => {
            let _ = write!(s, "{c}");
        }
        None => s.push('-'),
    }
}

fn write_service(s: &mut String, k: &ServiceKey) {
    let _ = write!(s, "{}", ServiceText(*k));
}

fn write_rs(s: &mut String, k: &RsKey) {
    write_service(s, &k.service);
    let _ = write!(s, "/{}", AddrPort(k.addr, k.port));
}

fn write_spec(s: &mut String, spec: &ServiceSpec) {
    let _ = write!(s, "{}/{}/{}/", protocol_name(spec.protocol), spec.port, forwarding_name(spec.forwarding));
    let _ = match spec.vip {
        Some(v) => write!(s, "{v}/"),
        None => write!(s, "-/"),
    };
    let _ = match spec.fwmark {
        Some(m) => write!(s, "{m}/"),
        None => write!(s, "-/"),
    };
    let _ = match spec.address {
        Some(a) => write!(s, "{a}"),
        None => write!(s, "-"),
    };
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// The journal's words for the forwarding methods; `local` only in table entries (an
/// agent never registers it).
fn forwarding_name(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "nat",
        Forwarding::DirectRouting => "dr",
        Forwarding::Tunnel => "tun",
        Forwarding::Local => "local",
    }
}

/// ` from=IP user=NAME`, the name escaped as free text and its spaces as `\u{20}`.
fn write_who(s: &mut String, who: &Who) {
    let _ = write!(s, " from={} user=", who.address);
    for c in who.user.chars() {
        match c {
            ' ' => s.push_str("\\u{20}"),
            c => escape(s, c.encode_utf8(&mut [0; 4])),
        }
    }
}

/// Free text on one line: `\` and control characters escaped.
fn escape(s: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", u32::from(c));
            }
            c => s.push(c),
        }
    }
}

// ---- reading ----

/// A record's `field=value` pairs, taken one by one; what is left over is an error.
struct Fields<'a> {
    kind: &'a str,
    items: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    /// Splits `rest` at spaces into `key=value` pairs; `text_key`'s value runs to the end.
    fn split(kind: &'a str, rest: &'a str, text_key: Option<&str>) -> Result<Fields<'a>, String> {
        let mut items: Vec<(&'a str, &'a str)> = Vec::new();
        let mut rest = rest;
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            let Some((key, after)) = rest.split_once('=') else {
                let token = rest.split(' ').next().unwrap_or(rest);
                return Err(format!("{kind}: expected `field=value`, got {token:?}"));
            };
            if key.contains(' ') || key.is_empty() {
                let token = rest.split(' ').next().unwrap_or(rest);
                return Err(format!("{kind}: expected `field=value`, got {token:?}"));
            }
            let (value, next) = if Some(key) == text_key {
                (after, "")
            } else {
                after.split_once(' ').unwrap_or((after, ""))
            };
            if items.iter().any(|(k, _)| *k == key) {
                return Err(format!("{kind}: field `{key}` given twice"));
            }
            items.push((key, value));
            rest = next;
        }
        Ok(Fields { kind, items })
    }

    fn take(&mut self, key: &str) -> Result<&'a str, String> {
        self.take_opt(key).ok_or_else(|| format!("{}: missing field `{key}=`", self.kind))
    }

    fn take_opt(&mut self, key: &str) -> Option<&'a str> {
        let i = self.items.iter().position(|(k, _)| *k == key)?;
        Some(self.items.remove(i).1)
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str) -> Result<T, String> {
        let v = self.take(key)?;
        v.parse().map_err(|_| format!("field `{key}`: {v:?} is not a {}", number_kind::<T>()))
    }

    /// An optional `KEY=NANOSECONDS`, `default` when absent.
    fn ns_or(&mut self, key: &str, default: Duration) -> Result<Duration, String> {
        match self.take_opt(key) {
            None => Ok(default),
            Some(v) => {
                v.parse().map(Duration).map_err(|_| format!("field `{key}`: {v:?} is not a whole number"))
            }
        }
    }

    fn float(&mut self, key: &str) -> Result<f64, String> {
        let v = self.take(key)?;
        parse_f64(v).map_err(in_field(key))
    }

    fn conn(&mut self) -> Result<ConnId, String> {
        Ok(ConnId(self.number("conn")?))
    }

    fn rs(&mut self) -> Result<RsKey, String> {
        parse_rs(self.take("rs")?).map_err(in_field("rs"))
    }

    fn finish(self) -> Result<(), String> {
        match self.items.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!("{}: unknown field `{k}=`", self.kind)),
        }
    }
}

fn number_kind<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "u64" => "whole number",
        "u32" => "whole number below 2^32",
        "u16" => "whole number below 65536",
        _ => "number",
    }
}

fn in_field(key: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("field `{key}`: {e}")
}

fn parse_start(f: &mut Fields<'_>) -> Result<Entry, String> {
    let kind = match f.take("law")? {
        "capacity" => LawKind::Capacity,
        "grpc-wrr" => LawKind::GrpcWrr(GrpcWrr {
            error_penalty: f.float("error_penalty")?,
            weight_per_qps: f.float("weight_per_qps")?,
            // Absent in journals written before gRFC A58's periods were honoured: the master
            // that wrote them had neither, so the replay has none (no blackout, a weight
            // that never expires) and makes the same decisions.
            blackout_period: f.ns_or("blackout_period_ns", Duration::ZERO)?,
            weight_expiration_period: f.ns_or("weight_expiration_period_ns", Duration(u64::MAX))?,
        }),
        "prequal" => LawKind::Prequal(Prequal {
            pool_size: f.number("pool_size")?,
            max_age: Duration(f.number("max_age_ns")?),
            q_rif: f.float("q_rif")?,
        }),
        other => return Err(format!("field `law`: {other:?} is not a law (capacity, grpc-wrr, prequal)")),
    };
    let law = LawConfig {
        min_weight: f.number("min_weight")?,
        max_weight: f.number("max_weight")?,
        smoothing: f.float("smoothing")?,
        dead_band: f.number("dead_band")?,
        max_step: f.number("max_step")?,
        slow_start: Duration(f.number("slow_start_ns")?),
        kind,
    };
    law.validate().map_err(|e| format!("start: invalid law: {e}"))?;
    Ok(Entry::Start {
        law,
        quiesce_after: Duration(f.number("quiesce_after_ns")?),
        remove_after: Duration(f.number("remove_after_ns")?),
        register_timeout: Duration(f.number("register_timeout_ns")?),
        max_servers_per_agent: match f.take_opt("max_servers_per_agent") {
            None => None,
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("field `max_servers_per_agent`: {v:?} is not a whole number"))?,
            ),
        },
    })
}

fn parse_register(f: &mut Fields<'_>) -> Result<Entry, String> {
    let conn = f.conn()?;
    let agent = parse_agent_id(f)?;
    Ok(Entry::Register {
        conn,
        agent,
        interval_ms: f.number("interval_ms")?,
        services: parse_list(f.take("services")?, "services", parse_spec)?,
    })
}

fn parse_agent_id(f: &mut Fields<'_>) -> Result<String, String> {
    let agent = f.take("agent")?;
    if !wire::valid_agent_id(agent) {
        return Err(format!(
            "field `agent`: {agent:?} is not an agent id (1 to {} printable ASCII characters, no spaces)",
            wire::MAX_AGENT_ID_LEN
        ));
    }
    Ok(agent.to_owned())
}

fn parse_admin(f: &mut Fields<'_>) -> Result<AdminState, String> {
    match f.take("admin")? {
        "ready" => Ok(AdminState::Ready),
        "drain" => Ok(AdminState::Drain),
        "maint" => Ok(AdminState::Maint),
        other => Err(format!("field `admin`: {other:?} is not ready, drain or maint")),
    }
}

fn parse_capacity(c: &str) -> Result<Option<u16>, String> {
    match c {
        "-" => Ok(None),
        c => c.parse().map(Some).map_err(|_| format!("{c:?} is not a per-mille capacity or `-`")),
    }
}

fn parse_who(f: &mut Fields<'_>) -> Result<Who, String> {
    let address = parse_ip(f.take("from")?).map_err(in_field("from"))?;
    let user = unescape(f.take("user")?).map_err(in_field("user"))?;
    if user.is_empty() {
        return Err("field `user`: empty".into());
    }
    Ok(Who { user, address })
}

fn parse_operator(f: &mut Fields<'_>) -> Result<Entry, String> {
    let key = f.rs()?;
    let action = match f.take("action")? {
        "drain" => ServerAction::Drain,
        "maintenance" => ServerAction::Maintenance,
        "return" => ServerAction::Return,
        "pin" => ServerAction::Pin(f.number("weight")?),
        "unpin" => ServerAction::Unpin,
        other => {
            return Err(format!("field `action`: {other:?} is not drain, maintenance, return, pin or unpin"));
        }
    };
    Ok(Entry::Operator { who: parse_who(f)?, key, action })
}

fn parse_polled(f: &mut Fields<'_>) -> Result<Entry, String> {
    let id = parse_agent_id(f)?;
    let peer = parse_ip(f.take("peer")?).map_err(in_field("peer"))?;
    let interval_ms = f.number("interval_ms")?;
    let service = parse_spec(f.take("service")?).map_err(in_field("service"))?;
    let admin = parse_admin(f)?;
    let capacity = parse_capacity(f.take("capacity")?).map_err(in_field("capacity"))?;
    Ok(Entry::Polled { polled: Polled { id, peer, service, interval_ms }, admin, capacity })
}

fn parse_report(f: &mut Fields<'_>) -> Result<Entry, String> {
    let conn = f.conn()?;
    let admin = parse_admin(f)?;
    let capacity = parse_list(f.take("capacity")?, "capacity", parse_capacity)?;
    let metrics = parse_list(f.take("metrics")?, "metrics", |m| {
        let (name, value) = m.rsplit_once(':').ok_or_else(|| format!("{m:?} is not NAME:VALUE"))?;
        if !wire::valid_metric_name(name) {
            return Err(format!("{name:?} is not a metric name ([a-z0-9_], 1 to 32 bytes)"));
        }
        Ok(Metric { name: name.to_owned(), value: parse_f64(value)? })
    })?;
    Ok(Entry::Report { conn, admin, capacity, metrics })
}

/// A comma-separated list (empty: no items); errors name the field and the item.
fn parse_list<T>(v: &str, key: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .enumerate()
        .map(|(i, s)| item(s).map_err(|e| format!("field `{key}`, item {}: {e}", i + 1)))
        .collect()
}

fn parse_f64(v: &str) -> Result<f64, String> {
    v.parse().map_err(|_| format!("{v:?} is not a number"))
}

fn parse_ip(v: &str) -> Result<IpAddr, String> {
    v.parse().map_err(|_| format!("{v:?} is not an IP address"))
}

fn parse_optional<T>(v: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if v == "-" { Ok(None) } else { f(v).map(Some) }
}

/// `10.0.0.2:80` or `[2001:db8::2]:80`.
fn parse_socket(v: &str) -> Result<(IpAddr, u16), String> {
    match v.parse::<SocketAddr>() {
        Ok(SocketAddr::V6(a)) if a.scope_id() != 0 || a.flowinfo() != 0 => {
            Err(format!("{v:?}: a scope id is not part of an address here"))
        }
        Ok(a) => Ok((a.ip(), a.port())),
        Err(_) => Err(format!("{v:?} is not ADDR:PORT (an IPv6 address in brackets)")),
    }
}

fn parse_protocol(v: &str) -> Result<Protocol, String> {
    match v {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(format!("{other:?} is not a protocol (tcp, udp, sctp)")),
    }
}

/// An agent's forwarding method: `nat`, `dr` or `tun` (never `local`).
fn parse_forwarding(v: &str) -> Result<Forwarding, String> {
    match v {
        "nat" => Ok(Forwarding::Masq),
        "dr" => Ok(Forwarding::DirectRouting),
        "tun" => Ok(Forwarding::Tunnel),
        other => Err(format!("{other:?} is not a forwarding method (nat, dr, tun)")),
    }
}

/// `SERVICE/SERVER`.
fn parse_rs(v: &str) -> Result<RsKey, String> {
    let (service, server) = v.split_once('/').ok_or_else(|| format!("{v:?} is not SERVICE/SERVER"))?;
    let service = parse_service(service)?;
    let (addr, port) = parse_socket(server)?;
    Ok(RsKey { service, addr, port })
}

/// `SERVICE/SERVER/WEIGHT/FORWARDING`.
fn parse_entry(v: &str) -> Result<TableEntry, String> {
    let mut parts = v.rsplitn(3, '/');
    let (Some(fwd), Some(weight), Some(rs)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{v:?} is not SERVICE/SERVER/WEIGHT/FORWARDING"));
    };
    let key = parse_rs(rs)?;
    let weight = weight.parse().map_err(|_| format!("{weight:?} is not a weight"))?;
    let forwarding = match fwd {
        "local" => Forwarding::Local,
        f => parse_forwarding(f).map_err(|e| format!("{e}, or local"))?,
    };
    Ok(TableEntry { key, weight, forwarding })
}

/// `PROTO/PORT/FORWARDING/VIP/FWMARK/ADDRESS`, absent ones `-`.
fn parse_spec(v: &str) -> Result<ServiceSpec, String> {
    let parts: Vec<&str> = v.split('/').collect();
    let [protocol, port, forwarding, vip, fwmark, address] = parts[..] else {
        return Err(format!("{v:?} is not PROTO/PORT/FORWARDING/VIP/FWMARK/ADDRESS"));
    };
    Ok(ServiceSpec {
        protocol: parse_protocol(protocol)?,
        port: port.parse().map_err(|_| format!("{port:?} is not a port"))?,
        forwarding: parse_forwarding(forwarding)?,
        vip: parse_optional(vip, parse_ip)?,
        fwmark: parse_optional(fwmark, |m| m.parse().map_err(|_| format!("{m:?} is not a firewall mark")))?,
        address: parse_optional(address, parse_ip)?,
    })
}

/// The inverse of [`escape`].
fn unescape(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let rest = chars.as_str();
                let hex = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .map(|(h, _)| h)
                    .ok_or_else(|| "`\\u` without `{HEX}`".to_owned())?;
                let c = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"))?;
                out.push(c);
                chars = rest[hex.len() + 2..].chars();
            }
            Some(other) => {
                return Err(format!("unknown escape `\\{other}` (\\\\, \\n, \\r, \\t, \\u{{HEX}})"));
            }
            None => return Err("a lone `\\` at the end".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
