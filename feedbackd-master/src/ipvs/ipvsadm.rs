//! The `ipvsadm` backend: the same operations by running the command.
//!
//! Listing real servers takes four runs, because `ipvsadm -S` (the rule form, with the
//! forwarding flag and tunnel options) omits the `-x`/`-y` thresholds and is sorted,
//! `ipvsadm -L -n --nosort --thresholds` has the thresholds and connection counts in
//! kernel list order, and the traffic counters and rates come from `--stats --exact` and
//! `--rate --exact` (ipvsadm prints one table per run). `real_servers` joins them by
//! address and port; `service_rows` joins `-S` with the service lines of the last two.
//!
//! Services are added, edited and removed with `-A`, `-E` (every setting given, as
//! SET_SERVICE) and `-D`.
//!
//! Edits pass every field (`-m|-g|-i -w W -x U -y L` and the tunnel options), as SET_DEST
//! replaces them all. The kernel's refusals, which ipvsadm prints in words, are mapped
//! back to their errno so callers see the same [`Error::Kernel`] as with netlink.
//!
//! Command lines are written and `-S -n` is read by lvs-ipvs's ipvsadm grammar
//! ([`lvs_ipvs::ipvsadm`]), the one parse/emit pair of ipvsadm rules.
//!
//! ipvsadm itself forces a direct-routing or tunnel real server's port to the service's,
//! and cannot express the kernel's "local" forwarding method (FWD_METHOD 1).

use core::net::{IpAddr, SocketAddr};
use std::io::Write;
use std::process::{Command, Stdio};

use lvs_ipvs::ipvsadm::{self, ServiceArg};
use lvs_ipvs::{DestConfig, Forwarding, Rates, ServiceConfig, Stats};

use crate::ipvs::{DestRow, Error, ServiceKey, ServiceRow, dest_name, errno_meaning_in};

/// Runs `ipvsadm` (found on `PATH`).
#[derive(Debug)]
pub(crate) struct IpvsadmBackend {
    program: String,
}

impl IpvsadmBackend {
    pub(crate) fn new() -> IpvsadmBackend {
        IpvsadmBackend { program: "ipvsadm".to_owned() }
    }

    /// Runs ipvsadm with `args` (and `stdin`), returning its stdout.
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<String, Error> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args).env("LC_ALL", "C").stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| Error::Other(format!("running {}: {e}", self.program)))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).map_err(|e| Error::Other(format!("writing to ipvsadm: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| Error::Other(format!("waiting for ipvsadm: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // `ipvsadm -R` reports a refused line on stderr, goes on with the next, and exits 0.
        if out.status.success() && (stdin.is_none() || stderr.is_empty()) {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let op = format!("{} {}", self.program, args.join(" "));
        Err(match classify_stderr(&stderr) {
            Some(errno) => {
                // ipvsadm -A/-E are NEW_SERVICE/SET_SERVICE, whose errnos mean their own.
                let netlink_op = match args.first().map(String::as_str) {
                    Some("-A") => "NEW_SERVICE",
                    Some("-E") => "SET_SERVICE",
                    _ => "",
                };
                let meaning = errno_meaning_in(netlink_op, errno);
                Error::Kernel { op, errno, message: format!("{meaning} (ipvsadm: {stderr})") }
            }
            None => Error::Other(format!("{op}: {}: {stderr}", out.status)),
        })
    }

    fn saved(&self) -> Result<Vec<Saved>, Error> {
        let text = self.run(&["-S".to_owned(), "-n".to_owned()], None)?;
        parse_save(&text).map_err(|e| Error::Other(format!("parsing ipvsadm -S -n: {e}")))
    }

    pub(crate) fn services(&mut self) -> Result<Vec<(ServiceKey, ServiceConfig)>, Error> {
        Ok(self.saved()?.into_iter().map(|s| (s.key, s.config)).collect())
    }

    pub(crate) fn real_servers(&mut self, svc: &ServiceKey) -> Result<Vec<DestRow>, Error> {
        let mut args: Vec<String> = ["-L", "-n", "--nosort", "--thresholds"].map(String::from).into();
        args.extend(service_args(svc));
        let listed = ipvsadm::parse_threshold_rows(&self.run(&args, None)?)
            .map_err(|e| Error::Other(format!("parsing ipvsadm {}: {e}", args.join(" "))))?;
        let saved = self.saved()?.into_iter().find(|s| s.key == *svc).map(|s| s.dests).unwrap_or_default();
        let (stats, rates) = (self.counters("--stats", Some(svc))?, self.counters("--rate", Some(svc))?);
        listed
            .into_iter()
            .map(|row| {
                let mut rs =
                    *saved.iter().find(|d| SocketAddr::new(d.addr, d.port) == row.addr).ok_or_else(|| {
                        Error::Other(format!("{svc} -> {}: listed by ipvsadm -L but not by -S", row.addr))
                    })?;
                (rs.u_threshold, rs.l_threshold) = (row.u_threshold, row.l_threshold);
                let find = |rows: &[ipvsadm::CounterRow]| {
                    rows.iter().find(|c| c.dest == Some(row.addr)).map_or([0; 5], |c| c.numbers)
                };
                let (s, r) = (to_stats(find(&stats)), to_rates(find(&rates)));
                Ok(DestRow::with_traffic(rs, row.active_conns, row.inactive_conns, s, r))
            })
            .collect()
    }

    /// The rows of `ipvsadm -L -n --nosort --exact FORMAT [SERVICE]`, FORMAT `--stats` or
    /// `--rate`.
    fn counters(&self, format: &str, svc: Option<&ServiceKey>) -> Result<Vec<ipvsadm::CounterRow>, Error> {
        let mut args: Vec<String> = ["-L", "-n", "--nosort", "--exact", format].map(String::from).into();
        args.extend(svc.map(service_args).unwrap_or_default());
        ipvsadm::parse_counter_rows(&self.run(&args, None)?)
            .map_err(|e| Error::Other(format!("parsing ipvsadm {}: {e}", args.join(" "))))
    }

    /// Every service with its counters and rates (`-S -n`, `-L -n --stats`, `--rate`).
    pub(crate) fn service_rows(&mut self) -> Result<Vec<ServiceRow>, Error> {
        let saved = self.saved()?;
        let (stats, rates) = (self.counters("--stats", None)?, self.counters("--rate", None)?);
        let find = |rows: &[ipvsadm::CounterRow], key: &ServiceKey| {
            rows.iter().find(|c| c.dest.is_none() && c.service == *key).map_or([0; 5], |c| c.numbers)
        };
        let row = |s: Saved| ServiceRow {
            stats: to_stats(find(&stats, &s.key)),
            rates: to_rates(find(&rates, &s.key)),
            key: s.key,
            config: s.config,
        };
        Ok(saved.into_iter().map(row).collect())
    }

    /// `ipvsadm -A SERVICE -s SCHED [-p S [-M MASK]] [-o] [-b FLAGS]`.
    pub(crate) fn add_service(&mut self, svc: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        self.run(&ipvsadm::Command::AddService(*svc, *config).args(), None).map(drop)
    }

    /// `ipvsadm -E` with every setting.
    pub(crate) fn edit_service(&mut self, svc: &ServiceKey, config: &ServiceConfig) -> Result<(), Error> {
        self.run(&ipvsadm::Command::EditService(*svc, *config).args(), None).map(drop)
    }

    /// `ipvsadm -D SERVICE`.
    pub(crate) fn remove_service(&mut self, svc: &ServiceKey) -> Result<(), Error> {
        self.run(&ipvsadm::Command::DelService(*svc).args(), None).map(drop)
    }

    pub(crate) fn add_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.run(&dest_args("-a", svc, rs)?, None).map(drop)
    }

    pub(crate) fn edit_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.run(&dest_args("-e", svc, rs)?, None).map(drop)
    }

    /// One `ipvsadm -R` reading an `-e` line per real server; it tries every line, and the
    /// first refusal it printed is returned.
    pub(crate) fn edit_real_servers_batch(
        &mut self,
        svc: &ServiceKey,
        servers: &[DestConfig],
    ) -> Result<(), Error> {
        let mut script = String::new();
        for rs in servers {
            script.push_str(&dest_args("-e", svc, rs)?.join(" "));
            script.push('\n');
        }
        self.run(&["-R".to_owned()], Some(&script)).map(drop)
    }

    pub(crate) fn remove_real_server(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), Error> {
        self.run(&ipvsadm::Command::DelDest(*svc, addr, port).args(), None).map(drop)
    }
}

/// The kernel errno behind one of ipvsadm's messages (libipvs's `ipvs_strerror`).
fn classify_stderr(stderr: &str) -> Option<i32> {
    const TABLE: &[(&str, i32)] = &[
        ("Service not defined", libc::ESRCH),
        ("Service already exists", libc::EEXIST),
        ("Scheduler or persistence engine not found", libc::ENOENT),
        ("No such service", libc::ESRCH),
        ("Destination already exists", libc::EEXIST),
        ("No such destination", libc::ENOENT),
        ("Numerical result out of range", libc::ERANGE),
        ("Permission denied", libc::EPERM),
        ("Invalid operation", libc::EINVAL),
        ("Invalid argument", libc::EINVAL),
    ];
    TABLE.iter().find(|(text, _)| stderr.contains(text)).map(|&(_, errno)| errno)
}

/// `-t VIP:PORT`, `-u ...`, `--sctp-service ...`, or `-f MARK [-6]`: lvs-ipvs's
/// ipvsadm emitter's words.
pub(crate) fn service_args(svc: &ServiceKey) -> Vec<String> {
    ServiceArg(svc).to_string().split_whitespace().map(str::to_owned).collect()
}

/// `OP SERVICE -r RIP:PORT -m|-g|-i -w W [-x U] [-y L] [tunnel options]`, OP `-a` or
/// `-e`, written by lvs-ipvs's ipvsadm emitter (an edit sets every field: a threshold
/// left out is 0, as ipvsadm sends it).
pub(crate) fn dest_args(op: &str, svc: &ServiceKey, rs: &DestConfig) -> Result<Vec<String>, Error> {
    if rs.fwd == Forwarding::Local {
        let name = dest_name(svc, rs.addr, rs.port);
        return Err(Error::Other(format!("{name}: ipvsadm cannot set the local forwarding method")));
    }
    let cmd = match op {
        "-a" => ipvsadm::Command::AddDest(*svc, *rs),
        "-e" => ipvsadm::Command::EditDest(*svc, *rs),
        _ => panic!("dest_args: {op:?} is neither -a nor -e"),
    };
    Ok(cmd.args())
}

/// Conns, InPkts, OutPkts, InBytes, OutBytes of a `--stats` row.
fn to_stats([conns, inpkts, outpkts, inbytes, outbytes]: [u64; 5]) -> Stats {
    Stats { conns, inpkts, outpkts, inbytes, outbytes }
}

/// CPS, InPPS, OutPPS, InBPS, OutBPS of a `--rate` row.
fn to_rates([cps, inpps, outpps, inbps, outbps]: [u64; 5]) -> Rates {
    Rates { cps, inpps, outpps, inbps, outbps }
}

/// A service of `ipvsadm -S` with its real servers (sorted, without thresholds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    pub(crate) key: ServiceKey,
    pub(crate) config: ServiceConfig,
    pub(crate) dests: Vec<DestConfig>,
}

/// Parses `ipvsadm -S -n` with lvs-ipvs's ipvsadm grammar: `-A` lines open a service,
/// `-a` lines add to theirs.
pub(crate) fn parse_save(text: &str) -> Result<Vec<Saved>, String> {
    let mut out: Vec<Saved> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        let cmd = ipvsadm::parse_line(line).map_err(|e| line_err(format!("column {}: {e}", e.offset + 1)))?;
        match cmd {
            None => continue,
            Some(ipvsadm::Command::AddService(key, config)) => {
                out.push(Saved { key, config, dests: Vec::new() })
            }
            Some(ipvsadm::Command::AddDest(key, rs)) => {
                let svc = out.iter_mut().find(|s| s.key == key);
                svc.ok_or_else(|| line_err("a real server of an unlisted service".to_owned()))?
                    .dests
                    .push(rs);
            }
            Some(other) => return Err(line_err(format!("unexpected command {other}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "ipvsadm_tests.rs"]
mod tests;
