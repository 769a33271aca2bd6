//! Bounds on every time, rate, count and size a scenario can hold, checked on the text
//! (each value at its own file, line and column) before anything is built or allocated.
//!
//! A value is bounded by the name of the field it is in: a field whose name ends in `_s`,
//! `_ms` or `_us` is a time (every number inside it, a distribution's parameters
//! included, except a `shape` or an `scv`), `rate` a connection rate, `count` a number of
//! servers, and so on ([`limit`]). The bounds keep virtual time (u64 ns, 584 years) far
//! from overflowing, sums included: a time is at most [`MAX_TIME_S`] (116 days), and the
//! simulator's horizon is 2^62 ns (146 years). What a run costs as a whole (events,
//! memory) is the budget's business (`crate::budget`).

use crate::cst::{Kind, Node};
use crate::doc::Doc;
use crate::{Error, Scenario};

/// The largest time a scenario may hold [s] (about 116 days).
pub const MAX_TIME_S: f64 = 1e7;
/// The largest connection rate [1/s].
pub const MAX_RATE: f64 = 1e8;
/// The most time-series samples a run may take (`duration_s / sample_interval_s`).
pub const MAX_SAMPLES: f64 = 1e6;
/// The most replications.
pub const MAX_REPLICATIONS: f64 = 10_000.0;
/// The most real servers (all `count`s together).
pub const MAX_SERVERS: f64 = 1_000_000.0;
/// The most cores of one CPU.
pub const MAX_CORES: f64 = 4096.0;
/// The most client addresses of a population.
pub const MAX_ADDRESSES: f64 = 16_777_216.0;
/// The most requests (or datagrams) of a connection.
pub const MAX_REQUESTS: f64 = 1e6;
/// The largest request or response [bytes].
pub const MAX_BYTES: f64 = 1e10;
/// The most timed events.
pub const MAX_EVENTS: usize = 1_000_000;

/// The bound of a value by the name of its field: `(largest, what it is, unit)`.
fn limit(field: &str) -> Option<(f64, &'static str)> {
    Some(match field {
        "rate" => (MAX_RATE, "connections/s"),
        "requests" => (MAX_REQUESTS, "requests"),
        "request_bytes" | "response_bytes" => (MAX_BYTES, "bytes"),
        "bandwidth_mbps" => (1e7, "Mbit/s"),
        "addresses" => (MAX_ADDRESSES, "addresses"),
        "count" => (MAX_SERVERS, "servers"),
        "replications" => (MAX_REPLICATIONS, "replications"),
        "cores" => (MAX_CORES, "cores"),
        "workers" | "backlog" => (1e6, "requests"),
        "speed" => (1e6, "times the reference"),
        "max_retries" | "retries" => (30.0, "retries"),
        "Background" => (100_000.0, "tasks"),
        "BackgroundLoad" => (4096.0, "cores"),
        f if f.ends_with("_us") => (MAX_TIME_S * 1e6, "µs"),
        f if f.ends_with("_ms") => (MAX_TIME_S * 1e3, "ms"),
        f if f.ends_with("_s") || f == "steps" => (MAX_TIME_S, "s"),
        _ => return None,
    })
}

/// The smallest value of a field written as a number: a bandwidth or a speed of 0 (or
/// less) would stop every message or request for ever.
fn minimum(field: &str) -> Option<f64> {
    match field {
        "bandwidth_mbps" => Some(1e-6),
        "speed" => Some(1e-6),
        _ => None,
    }
}

/// Fields whose numbers are not in their parent's unit.
fn unitless(field: &str) -> bool {
    matches!(field, "shape" | "scv")
}

/// Checks every bounded number of the document's tree.
pub(super) fn check_text(doc: &Doc) -> Result<(), Error> {
    let tree = doc.tree().map_err(|(l, m)| Error::at(l, m))?;
    let Kind::Struct { fields, .. } = &tree.kind else { return Ok(()) };
    for f in fields {
        // Sweep values, checks and plans are checked where they are used.
        if matches!(f.name.as_str(), "sweep" | "expect" | "plan" | "description" | "name") {
            continue;
        }
        walk(doc, &f.value, &f.name, limit(&f.name))?;
    }
    Ok(())
}

fn walk(doc: &Doc, node: &Node, path: &str, bound: Option<(f64, &'static str)>) -> Result<(), Error> {
    match &node.kind {
        Kind::Atom(text) => {
            let Some((max, unit)) = bound else { return Ok(()) };
            let Ok(x) = text.replace('_', "").parse::<f64>() else { return Ok(()) };
            if !x.is_finite() || x > max {
                return Err(Error::at(
                    doc.locate(node.span.start),
                    format!(
                        "{path}: {text} is above the largest value a scenario may hold here ({max:e} {unit})"
                    ),
                ));
            }
            Ok(())
        }
        Kind::Struct { fields, .. } => {
            for f in fields {
                let value = match &f.value.kind {
                    Kind::Tuple { name: Some(n), items } if n == "Some" && items.len() == 1 => &items[0],
                    _ => &f.value,
                };
                if let (Some(min), Kind::Atom(text)) = (minimum(&f.name), &value.kind)
                    && text.replace('_', "").parse::<f64>().is_ok_and(|x| x.is_nan() || x < min)
                {
                    return Err(Error::at(
                        doc.locate(value.span.start),
                        format!(
                            "{path}.{}: {text} is below the smallest value it may have ({min:e})",
                            f.name
                        ),
                    ));
                }
                let b = if unitless(&f.name) { None } else { limit(&f.name).or(bound) };
                walk(doc, &f.value, &format!("{path}.{}", f.name), b)?;
            }
            Ok(())
        }
        Kind::Tuple { name, items } => {
            let b = name.as_deref().and_then(limit).or(bound);
            for (i, n) in items.iter().enumerate() {
                walk(doc, n, &format!("{path}.{i}"), b)?;
            }
            Ok(())
        }
        Kind::List(items) => {
            // `steps: [(from_s, rate), ...]`: a time, then a rate.
            let steps = path.ends_with(".steps");
            for (i, n) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match (&n.kind, steps) {
                    (Kind::Tuple { items: pair, .. }, true) if pair.len() == 2 => {
                        walk(doc, &pair[0], &p, limit("steps"))?;
                        walk(doc, &pair[1], &p, limit("rate"))?;
                    }
                    _ => walk(doc, n, &p, bound)?,
                }
            }
            Ok(())
        }
        Kind::Map(entries) => {
            for (k, v) in entries {
                walk(doc, v, &format!("{path}[{}]", doc.text()[k.span.clone()].trim()), bound)?;
            }
            Ok(())
        }
    }
}

/// Bounds that relate fields to each other, on the typed scenario: the sample count,
/// the servers of every group together, the number of events.
pub(super) fn check_typed(b: &super::Builder<'_>, s: &Scenario, duration_s: f64) -> Result<(), Error> {
    if let Some(iv) = s.sample_interval_s
        && iv > 0.0
        && duration_s / iv > MAX_SAMPLES
    {
        return Err(b.err(
            "sample_interval_s",
            format!(
                "{iv} s gives {:.0} samples over duration_s {duration_s} s; at most {MAX_SAMPLES:e} \
                 (an interval of at least {} s)",
                duration_s / iv,
                duration_s / MAX_SAMPLES
            ),
        ));
    }
    let mut total = 0.0;
    let max_memory = b.budget.map_or(f64::INFINITY, |b| b.max_memory);
    for (i, srv) in s.servers.iter().enumerate() {
        total += f64::from(srv.count);
        if total > MAX_SERVERS {
            return Err(b.err(
                &format!("servers[{i}].count"),
                format!("{total} servers in all with this group; at most {MAX_SERVERS:e}"),
            ));
        }
        let bytes = total * crate::budget::BYTES_PER_SERVER;
        if bytes > max_memory {
            return Err(b.err(
                &format!("servers[{i}].count"),
                format!(
                    "{total} servers in all with this group need about {} of memory in a run, above the \
                     budget of {}: lower this count, or raise --max-memory",
                    crate::budget::show_bytes(bytes),
                    crate::budget::show_bytes(max_memory)
                ),
            ));
        }
    }
    if s.events.len() > MAX_EVENTS {
        return Err(b.err("events", format!("{} events; at most {MAX_EVENTS}", s.events.len())));
    }
    for (i, c) in s.clients.iter().enumerate() {
        if let crate::format::Arrival::Schedule { steps } = &c.arrival
            && steps.len() > MAX_EVENTS
        {
            return Err(b.err(
                &format!("clients[{i}].arrival.steps"),
                format!("{} steps; at most {MAX_EVENTS}", steps.len()),
            ));
        }
    }
    Ok(())
}
