//! The ipvsadm command language: the rule grammar ([`parse`] in `rules`, the emitter
//! `Display for Command` in `emit`: one parse/emit pair for every surface), applying
//! commands to an [`Ipvs`] table, and the `ipvsadm -L -n` listings (`list`).
//!
//! Defaults are ipvsadm 1.31's: scheduler wlc, weight 1, direct routing, persistence
//! 360 s, netmask /32 (/128). Like ipvsadm, `-E` and `-e` set every field (an option
//! left out takes its default, not the old value).

use lvs_sched::Duration;

use super::{Ipvs, IpvsError, ServiceConfig};

mod emit;
mod list;
mod rules;
#[cfg(test)]
mod rules_tests;

pub use self::emit::ServiceArg;
pub use self::list::{
    CounterRow, ListFormat, ListOptions, ThresholdRow, list, list_rate, list_stats, listing,
    parse_counter_rows, parse_threshold_rows, save, tunnel_info,
};
pub use self::rules::{
    Command, DEFAULT_PERSISTENCE, MAX_PERSISTENCE_SECS, ParseError, Word, default_netmask, parse,
    parse_addr_port, parse_line, words,
};

/// Refuse what the table cannot model.
fn modelled(c: &ServiceConfig) -> Result<(), IpvsError> {
    match c.pe {
        Some(_) => Err(IpvsError::NotModelled("a persistence engine (--pe sip)")),
        None => Ok(()),
    }
}

/// Apply a command to a table, as ipvsadm would through the kernel.
pub fn apply(ipvs: &mut Ipvs, cmd: &Command) -> Result<(), IpvsError> {
    match cmd {
        Command::AddService(k, c) => {
            modelled(c)?;
            ipvs.add_service(*k, *c)
        }
        Command::EditService(k, c) => {
            modelled(c)?;
            ipvs.edit_service(*k, *c)
        }
        Command::DelService(k) => ipvs.del_service(*k),
        Command::Clear => {
            ipvs.clear();
            Ok(())
        }
        Command::AddDest(k, d) => ipvs.add_dest(*k, d).map(|_| ()),
        Command::EditDest(k, d) => ipvs.edit_dest(*k, d).map(|_| ()),
        Command::DelDest(k, a, p) => ipvs.del_dest(*k, *a, *p).map(|_| ()),
        Command::SetTimeouts(t, f, u) => {
            let d = |s: u32| (s != 0).then(|| Duration::from_secs(u64::from(s)));
            ipvs.timeouts_mut().set(d(*t), d(*f), d(*u));
            Ok(())
        }
        Command::Zero(_) => Err(IpvsError::NotModelled("zeroing the counters (-Z)")),
    }
}
