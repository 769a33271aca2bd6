//! The dry-run backend: `lvs_ipvs`'s table (the one the simulator and `lvsim ipvs replay`
//! run), seeded with the configured services. Changes are printed, one line each, as the
//! `ipvsadm` command that would make them, written by lvs-ipvs's one emitter
//! ([`lvs_ipvs::ipvsadm::Command`], as `ipvsadm -S -n` writes: `dry-run: ipvsadm -e -t
//! 10.0.0.1:80 -r 10.0.0.2:80 -m -w 37`), and refused as the kernel would refuse them,
//! with the errno [`lvs_ipvs::IpvsError::errno`] gives: ESRCH, EEXIST, ENOENT, ERANGE,
//! EINVAL.
//!
//! The table holds no connections here, so every row lists 0 active and 0 inactive, and
//! its counters and rates (lvs-ipvs's, as `ipvsadm -L --stats/--rate` would list them) are 0.

use core::net::IpAddr;

use lvs_ipvs::ipvsadm::Command;
use lvs_ipvs::{DestConfig, Forwarding, Ipvs, ServiceConfig};

use crate::ipvs::{DestRow, Error, ServiceKey, ServiceRow, dest_name};

/// The table: services in the order given, each with its real servers in kernel list
/// order (a new one goes to the front, as `list_add_rcu` puts it).
#[derive(Debug)]
pub(crate) struct DryRunBackend {
    table: Ipvs,
}

impl DryRunBackend {
    /// A table with `services`; a key given twice is added once, with its first config.
    pub(crate) fn new(services: &[(ServiceKey, ServiceConfig)]) -> DryRunBackend {
        let mut table = Ipvs::new(0);
        for (key, config) in services {
            // EEXIST for a repeated key: the first stays, as `ipvsadm -A` twice leaves it.
            let _ = table.add_service(*key, *config);
        }
        DryRunBackend { table }
    }

    pub(crate) fn services(&self) -> Vec<(ServiceKey, ServiceConfig)> {
        self.table.services().map(|s| (s.key(), *s.config())).collect()
    }

    pub(crate) fn service_rows(&self) -> Vec<ServiceRow> {
        let row = |s: &lvs_ipvs::VirtualService| ServiceRow {
            key: s.key(),
            config: *s.config(),
            stats: s.stats(),
            rates: s.rates(),
        };
        self.table.services().map(row).collect()
    }

    pub(crate) fn real_servers(&mut self, svc: &ServiceKey) -> Result<Vec<DestRow>, Error> {
        let s =
            self.table.service(svc).ok_or_else(|| Error::kernel(format!("GET_DEST {svc}"), libc::ESRCH))?;
        let rows = s.scheduler().dests().map(|(id, d)| {
            let (stats, rates) = (s.dest_stats(id), s.dest_rates(id));
            DestRow::with_traffic(d.config(), d.active_conns(), d.inactive_conns(), stats, rates)
        });
        Ok(rows.collect())
    }

    pub(crate) fn add_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.table
            .add_dest(*svc, rs)
            .map_err(|e| Error::table(format!("NEW_DEST {}", dest_name(svc, rs.addr, rs.port)), e))?;
        print_change(Command::AddDest(*svc, *rs));
        Ok(())
    }

    pub(crate) fn add_service(&mut self, key: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        self.table.add_service(*key, *config).map_err(|e| Error::table(format!("NEW_SERVICE {key}"), e))?;
        print_change(Command::AddService(*key, *config));
        Ok(())
    }

    pub(crate) fn edit_service(&mut self, key: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        self.table.edit_service(*key, *config).map_err(|e| Error::table(format!("SET_SERVICE {key}"), e))?;
        print_change(Command::EditService(*key, *config));
        Ok(())
    }

    pub(crate) fn remove_service(&mut self, key: &ServiceKey) -> Result<(), Error> {
        self.table.del_service(*key).map_err(|e| Error::table(format!("DEL_SERVICE {key}"), e))?;
        print_change(Command::DelService(*key));
        Ok(())
    }

    /// SET_DEST replaces every field but the counters.
    pub(crate) fn edit_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.table
            .edit_dest(*svc, rs)
            .map_err(|e| Error::table(format!("SET_DEST {}", dest_name(svc, rs.addr, rs.port)), e))?;
        print_change(Command::EditDest(*svc, *rs));
        Ok(())
    }

    pub(crate) fn remove_real_server(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), Error> {
        let name = dest_name(svc, addr, port);
        self.table.del_dest(*svc, addr, port).map_err(|e| Error::table(format!("DEL_DEST {name}"), e))?;
        print_change(Command::DelDest(*svc, addr, port));
        Ok(())
    }
}

fn print_change(cmd: Command) {
    match cmd {
        // ipvsadm has no switch for the local method (it would write -g): say what is sent.
        Command::AddDest(svc, rs) | Command::EditDest(svc, rs) if rs.fwd == Forwarding::Local => println!(
            "dry-run: {} {} fwd_method {} weight {} u_threshold {} l_threshold {}",
            if matches!(cmd, Command::AddDest(..)) { "NEW_DEST" } else { "SET_DEST" },
            dest_name(&svc, rs.addr, rs.port),
            rs.fwd.code(),
            rs.weight,
            rs.u_threshold,
            rs.l_threshold
        ),
        cmd => println!("dry-run: ipvsadm {cmd}"),
    }
}

#[cfg(test)]
#[path = "dryrun_tests.rs"]
mod tests;
