//! `lvsim export`: deployment files from a scenario's topology.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{Common, InputError};

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// Every file, into the output directory.
    All,
    /// The director's ipvsadm commands, on standard output.
    Ipvsadm,
    /// keepalived.conf, on standard output.
    Keepalived,
    /// One real server's feedbackd-agent.conf, on standard output.
    Agent(String),
}

/// Writes (or prints) the deployment files.
pub fn export(c: &Common, what: &What) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let t = &l.topology;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match what {
        What::Ipvsadm => write!(out, "{}", topologies::export::ipvsadm(t))?,
        What::Keepalived => write!(out, "{}", topologies::export::keepalived(t))?,
        What::Agent(name) => {
            let conf = topologies::export::agent_conf(t, name).ok_or_else(|| {
                let names: Vec<_> = t.servers.iter().map(|s| s.name.as_str()).collect();
                InputError(format!("no real server named {name:?} (servers are: {})", names.join(", ")))
            })?;
            write!(out, "{conf}")?;
        }
        What::All => {
            let dir = c.out_dir(&l.name, "-export");
            let agents = dir.join("feedbackd-agent");
            std::fs::create_dir_all(&agents).with_context(|| format!("creating {}", agents.display()))?;
            let mut files: Vec<(PathBuf, String)> = vec![
                (dir.join("ipvsadm.sh"), topologies::export::ipvsadm(t)),
                (dir.join("keepalived.conf"), topologies::export::keepalived(t)),
            ];
            for s in &t.servers {
                if let Some(conf) = topologies::export::agent_conf(t, &s.name) {
                    files.push((agents.join(format!("{}.conf", s.name)), conf));
                }
            }
            for (path, text) in &files {
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
                if !c.quiet && !c.json {
                    writeln!(out, "wrote {}", path.display())?;
                }
            }
            if c.json {
                let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
                serde_json::to_writer_pretty(&mut out, &names)?;
                writeln!(out)?;
            }
        }
    }
    Ok(())
}
