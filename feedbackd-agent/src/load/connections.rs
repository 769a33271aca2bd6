//! `connections`: the sockets on the service's port against a maximum.
//!
//! TCP counts the ESTABLISHED sockets (state `01`) of `/proc/net/tcp` and `/proc/net/tcp6`
//! whose local port is the service's port; UDP counts every socket of `/proc/net/udp` and
//! `/proc/net/udp6` bound to that port. capacity = 1 - min(1, n / max), `max=N` (default
//! 1000). A missing `tcp6`/`udp6` (IPv6 disabled) counts as none. SCTP is not supported.
//!
//! The tables are those of the agent's network namespace: run it in the server's.

use std::path::{Path, PathBuf};

use feedbackd_proto::conf::{ConfError, ServiceConf};
use lvs_ipvs::Protocol;

use super::{Reading, Settings, read_proc};

/// The default `max=`.
const DEFAULT_MAX: u64 = 1000;

/// `TCP_ESTABLISHED` in include/net/tcp_states.h.
const TCP_ESTABLISHED: u8 = 0x01;

#[derive(Debug)]
pub(super) struct Connections {
    /// The IPv4 table (required) and the IPv6 one (optional).
    v4: PathBuf,
    v6: PathBuf,
    port: u16,
    /// Count only sockets in this state (TCP), or all (UDP).
    state: Option<u8>,
    max: u64,
}

impl Connections {
    pub(super) fn from_conf(
        settings: &Settings<'_>,
        service: &ServiceConf,
        proc_root: &Path,
    ) -> Result<Connections, ConfError> {
        let max = settings.whole("max", 1..=u64::from(u32::MAX), DEFAULT_MAX)?;
        if service.port == 0 {
            return Err(settings.error(
                "counts sockets on the service's port, and port 0 (a firewall-mark service's) is none: \
                 give the port the server listens on"
                    .to_owned(),
            ));
        }
        let net = proc_root.join("net");
        let (v4, v6, state) = match service.protocol {
            Protocol::Tcp => (net.join("tcp"), net.join("tcp6"), Some(TCP_ESTABLISHED)),
            Protocol::Udp => (net.join("udp"), net.join("udp6"), None),
            Protocol::Sctp => {
                return Err(
                    settings.error("counts TCP and UDP sockets; SCTP services are not supported".to_owned())
                );
            }
        };
        Ok(Connections { v4, v6, port: service.port, state, max })
    }

    pub(super) fn sample(&mut self) -> Result<Reading, String> {
        let mut n = count(&read_proc(&self.v4)?, self.port, self.state);
        if self.v6.exists() {
            n += count(&read_proc(&self.v6)?, self.port, self.state);
        }
        let used = n as f64 / self.max as f64;
        Ok(Reading { capacity: 1.0 - used.min(1.0), metrics: vec![("connections".to_owned(), n as f64)] })
    }
}

/// The rows of a `/proc/net/{tcp,udp}{,6}` table whose local port is `port` (and whose
/// state is `state`, when given). Rows that do not parse are skipped.
///
/// A row: `sl local_address rem_address st ...`, addresses as `HEXADDR:HEXPORT`.
///
/// The kernel writes the table a page per read, resuming its walk of the socket hash
/// where the previous page ended, so a socket can be listed twice while others come and
/// go (seen in `feedbackd-master/tests/prequal_live.rs`). With a `state` (TCP), a
/// connection's two addresses name it: each pair counts once. (UDP sockets bound to one
/// port may share both addresses, so there every row counts.)
pub(super) fn count(table: &str, port: u16, state: Option<u8>) -> u64 {
    fn matches(row: &str, port: u16, state: Option<u8>) -> Option<(&str, &str)> {
        let mut fields = row.split_whitespace();
        let local = fields.nth(1)?;
        let remote = fields.next()?;
        let st = fields.next()?;
        let (_, local_port) = local.rsplit_once(':')?;
        let local_port = u16::from_str_radix(local_port, 16).ok()?;
        let st = u8::from_str_radix(st, 16).ok()?;
        (local_port == port && state.is_none_or(|s| s == st)).then_some((local, remote))
    }
    let mut rows: Vec<(&str, &str)> =
        table.lines().skip(1).filter_map(|row| matches(row, port, state)).collect();
    if state.is_some() {
        rows.sort_unstable();
        rows.dedup();
    }
    rows.len() as u64
}
