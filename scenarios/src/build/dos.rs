//! A director's DoS defences and memory, and the scenario's SYN floods, checked with
//! their paths.

use lvs_ipvs::{Memory, ServiceKey, Sysctl, Sysctls};
use sim_core::model::{ClusterConfig, MAX_FLOOD_RATE, MAX_FLOOD_SOURCES, SynFloodConfig};

use super::{Builder, secs};
use crate::Error;
use crate::format::Scenario;

impl Builder<'_> {
    /// Director `d`'s (at path `p`) IPVS sysctls, each within what the kernel takes.
    pub(super) fn sysctls(&self, p: &str, d: &topologies::Director) -> Result<Sysctls, Error> {
        let s = d.sysctls();
        let Err(e) = s.check() else { return Ok(s) };
        let v = e.value;
        let message = match e.sysctl {
            Sysctl::DropEntry | Sysctl::DropPacket | Sysctl::SecureTcp => {
                format!("must be 0 (off), 1 (automatic), 2 (on, automatic) or 3 (always), got {v}")
            }
            Sysctl::ConnReuseMode => format!(
                "conn_reuse_mode is 0 to 3 (bit 1: reuse TIME_WAIT/CLOSE, bit 2: also FIN_WAIT of DR/TUN), got {v}"
            ),
            _ => e.to_string(),
        };
        Err(self.err(&format!("{p}.{}", e.sysctl), message))
    }

    /// Director `d`'s memory as the defences see it.
    pub(super) fn memory(&self, p: &str, d: &topologies::Director) -> Result<Option<Memory>, Error> {
        if d.conn_entry_bytes == 0 {
            return Err(self.err(&format!("{p}.conn_entry_bytes"), "an IPVS entry costs more than 0 bytes"));
        }
        let Some(pages) = d.memory_pages else { return Ok(None) };
        // 2^40 pages (4 PiB): more than any director has, and no product overflows.
        if !(0..=1 << 40).contains(&pages) {
            return Err(
                self.err(&format!("{p}.memory_pages"), format!("must be in 0..=2^40 pages, got {pages}"))
            );
        }
        Ok(Some(Memory { avail_pages: pages, entry_bytes: d.conn_entry_bytes }))
    }

    /// The scenario's SYN floods, each on its director.
    pub(super) fn syn_floods(&self, s: &Scenario, cfg: &mut ClusterConfig) -> Result<(), Error> {
        for (i, f) in s.syn_floods.iter().enumerate() {
            let p = format!("syn_floods[{i}]");
            let di = match &f.director {
                None => 0,
                Some(name) => cfg.directors.iter().position(|d| &d.name == name).ok_or_else(|| {
                    let known: Vec<&str> = cfg.directors.iter().map(|d| d.name.as_str()).collect();
                    self.err(&format!("{p}.director"), format!("no director {name:?} (directors: {known:?})"))
                })?,
            };
            let d = &cfg.directors[di];
            let first = d.services.iter().find_map(|s| match s.addr {
                ServiceKey::Addr { addr, port, .. } => Some((addr, port)),
                ServiceKey::Fwmark { .. } => None,
            });
            let (vip, port) = match (f.vip, f.port, first) {
                (Some(v), Some(port), _) => (v, port),
                (v, port, Some((dv, dp))) => (v.unwrap_or(dv), port.unwrap_or(dp)),
                (_, _, None) => {
                    return Err(self.err(
                        &format!("{p}.vip"),
                        format!(
                            "director {:?} has no service with a VIP to default to: give `vip` and `port`",
                            d.name
                        ),
                    ));
                }
            };
            if !(f.rate > 0.0 && f.rate <= MAX_FLOOD_RATE) {
                return Err(self.err(
                    &format!("{p}.rate"),
                    format!("must be in (0, {MAX_FLOOD_RATE}] SYN/s, got {}", f.rate),
                ));
            }
            if !(1..=MAX_FLOOD_SOURCES).contains(&f.sources) {
                return Err(self.err(
                    &format!("{p}.sources"),
                    format!("must be in 1..={MAX_FLOOD_SOURCES}, got {}", f.sources),
                ));
            }
            if f.first_source.is_ipv4() != vip.is_ipv4() {
                return Err(self.err(
                    &format!("{p}.first_source"),
                    format!("{} and the VIP {vip} are of different address families", f.first_source),
                ));
            }
            let start = self.finite(&format!("{p}.start_s"), f.start_s, 0.0)?;
            let stop = f.stop_s.map(|x| self.finite(&format!("{p}.stop_s"), x, 0.0)).transpose()?;
            let end = stop.unwrap_or(s.duration_s);
            if start >= end {
                let at = if stop.is_some() { "stop_s" } else { "start_s" };
                return Err(self.err(
                    &format!("{p}.{at}"),
                    format!("the flood must start ({start} s) before it stops ({end} s)"),
                ));
            }
            cfg.directors[di].syn_floods.push(SynFloodConfig {
                name: f.name.clone(),
                vip,
                port,
                rate: f.rate,
                sources: f.sources,
                first_source: f.first_source,
                start: secs(start),
                stop: stop.map(secs),
            });
        }
        Ok(())
    }
}
