//! `lvsim export`: deployment files from a scenario's topology.

use std::io::Write as _;

use anyhow::Context as _;
use topologies::export::{self, Target};

use super::{Common, InputError};

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// Every file that fits the topology (`topologies::export::files`), into the output
    /// directory.
    All,
    /// One director's ipvsadm script (by name), or the first director's (the group's
    /// primary), on standard output.
    Ipvsadm(Option<String>),
    /// One director's `ipvsadm-restore` rules file, or the first director's.
    IpvsadmRules(Option<String>),
    /// keepalived.conf, on standard output: one director's (by name), or without a name
    /// the topology's (the primary's with a fail-over group).
    Keepalived(Option<String>),
    /// ldirectord.cf of one director (by name), or of the first director (the group's
    /// primary).
    Ldirectord(Option<String>),
    /// heartbeat's ha.cf.
    HaCf,
    /// heartbeat's haresources.
    Haresources,
    /// piranha's lvs.cf.
    LvsCf,
    /// One real server's feedbackd-agent.conf, on standard output.
    Agent(String),
}

/// The kinds `--stdout` takes, for messages.
const KINDS: &str = "ipvsadm[:DIRECTOR], ipvsadm-rules[:DIRECTOR], keepalived[:DIRECTOR], ldirectord[:DIRECTOR], \
     ha.cf, haresources, lvs.cf or agent:SERVER";

impl What {
    /// Parses `--stdout`'s value.
    pub fn parse(s: &str) -> Result<What, InputError> {
        let (kind, name) = match s.split_once(':') {
            Some((k, n)) => (k, Some(n.to_owned())),
            None => (s, None),
        };
        Ok(match (kind, name) {
            ("ipvsadm", n) => What::Ipvsadm(n),
            ("ipvsadm-rules", n) => What::IpvsadmRules(n),
            ("keepalived", n) => What::Keepalived(n),
            ("ldirectord", n) => What::Ldirectord(n),
            ("ha.cf", None) => What::HaCf,
            ("haresources", None) => What::Haresources,
            ("lvs.cf", None) => What::LvsCf,
            ("agent", Some(n)) => What::Agent(n),
            _ => return Err(InputError(format!("--stdout {s:?}: expected {KINDS}"))),
        })
    }
}

/// Writes (or prints) the deployment files.
pub fn export(c: &Common, what: &What, target: Target) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let t = &l.topology;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let director = |name: &Option<String>| -> Result<String, InputError> {
        match name {
            Some(n) if t.directors.iter().any(|d| &d.name == n) => Ok(n.clone()),
            Some(n) => {
                let names: Vec<_> = t.directors.iter().map(|d| d.name.as_str()).collect();
                Err(InputError(format!("no director named {n:?} (directors are: {})", names.join(", "))))
            }
            None => {
                let first =
                    t.ha.as_ref().and_then(|h| h.directors.first()).or(t.directors.first().map(|d| &d.name));
                first.cloned().ok_or_else(|| InputError("the topology has no director".into()))
            }
        }
    };
    let no_group = |file: &str, failover: &str| {
        InputError(format!(
            "{file} is written for a fail-over group of heartbeat (`ha: (directors: [...], failover: {failover})`); \
             this topology has none"
        ))
    };
    let no_services = |name: &str| {
        InputError(format!(
            "director {name:?} gets no ipvsadm files: it has no services and is in no fail-over group"
        ))
    };
    let text = match what {
        What::Ipvsadm(name) | What::IpvsadmRules(name) => {
            let name = match name {
                Some(_) => director(name)?,
                None => ipvsadm_first(t)?,
            };
            let text = match what {
                What::Ipvsadm(_) => export::ipvsadm_for(t, &name, target),
                _ => export::ipvsadm_rules(t, &name, target),
            };
            text.ok_or_else(|| no_services(&name))?
        }
        What::Keepalived(None) => export::keepalived(t, target),
        What::Keepalived(name) => export::keepalived_for(t, &director(name)?, target).expect("checked above"),
        What::Ldirectord(name) => export::ldirectord(t, &director(name)?, target).expect("checked above"),
        What::HaCf => export::ha_cf(t, target)
            .ok_or_else(|| no_group("ha.cf", "Heartbeat(...) or ActiveActive(...)"))?,
        What::Haresources => {
            export::haresources(t, target).ok_or_else(|| no_group("haresources", "Heartbeat(...)"))?
        }
        What::LvsCf => export::lvs_cf(t, target).ok_or_else(|| {
            InputError(
                "lvs.cf is written for piranha: a fail-over group `failover: Pulse(...)` or nanny checks \
                 (`check: (checker: nanny, ...)`); this topology has neither"
                    .into(),
            )
        })?,
        What::Agent(name) => export::agent_conf(t, name, target).ok_or_else(|| {
            let names: Vec<_> = t
                .servers
                .iter()
                .filter(|s| export::agent_conf(t, &s.name, target).is_some())
                .map(|s| s.name.as_str())
                .collect();
            InputError(format!(
                "no real server named {name:?} in a service (servers are: {})",
                names.join(", ")
            ))
        })?,
        What::All => return write_all(c, &l.name, t, target, &mut out),
    };
    write!(out, "{text}")?;
    Ok(())
}

/// The director whose ipvsadm files `--stdout ipvsadm[-rules]` prints without a name.
fn ipvsadm_first(t: &topologies::Topology) -> Result<String, InputError> {
    let first = export::ipvsadm_directors(t).into_iter().next();
    first.ok_or_else(|| InputError("no director of the topology has services".into()))
}

/// Every file into the output directory (`lvsim-out/NAME-export/` by default).
fn write_all(
    c: &Common,
    name: &str,
    t: &topologies::Topology,
    target: Target,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let dir = c.out_dir(name, "-export");
    let files = export::files(t, target);
    let mut written = Vec::with_capacity(files.len());
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if rel.ends_with(".sh") {
            make_executable(&path)?;
        }
        if !c.quiet && !c.json {
            writeln!(out, "wrote {}", path.display())?;
        }
        written.push(path.display().to_string());
    }
    if c.json {
        serde_json::to_writer_pretty(&mut *out, &written)?;
        writeln!(out)?;
    }
    Ok(())
}

/// `chmod 0755`: the exported scripts run as they are.
fn make_executable(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(path, mode).with_context(|| format!("chmod 0755 {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
