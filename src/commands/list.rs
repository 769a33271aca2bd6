//! `lvsim list`: the scenario library, the built-in topologies, the schedulers.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use lvs_sched::SchedulerKind;

/// What to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// Everything.
    All,
    /// Library scenarios.
    Scenarios,
    /// Built-in topologies.
    Topologies,
    /// IPVS schedulers.
    Schedulers,
}

/// Where the scenario library is: `scenarios/library` under the current directory, else
/// the one in the source tree lvsim was built from.
pub fn library_dir() -> PathBuf {
    let here = Path::new("scenarios/library");
    if here.is_dir() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library")
}

/// Every `.ron` file under a directory, sorted by path.
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ron") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One line about a scheduler.
pub fn scheduler_blurb(k: SchedulerKind) -> &'static str {
    match k {
        SchedulerKind::Rr => "round robin: servers in turn, weights ignored (0 skips)",
        SchedulerKind::Wrr => "weighted round robin: in turn, in proportion to weight",
        SchedulerKind::Lc => "least connection: fewest (active*256 + inactive) connections",
        SchedulerKind::Wlc => "weighted least connection: fewest connections per weight (ipvsadm's default)",
        SchedulerKind::Sed => "shortest expected delay: (active+1)/weight",
        SchedulerKind::Nq => "never queue: an idle server if any, else sed",
        SchedulerKind::Dh => "destination hashing: by destination address (caches)",
        SchedulerKind::Sh => "source hashing: by client address (sticky without templates)",
        SchedulerKind::Lblc => "locality-based least connection: destination affinity, wlc when overloaded",
        SchedulerKind::Lblcr => "lblc with replication: a set of servers per destination",
        SchedulerKind::Mh => "Maglev hashing: consistent hashing with minimal disruption",
        SchedulerKind::Fo => "weighted failover: the available server of highest weight",
        SchedulerKind::Ovf => "weighted overflow: highest weight until its active connections reach it",
        SchedulerKind::Twos => "power of two choices: two random servers, the less loaded by weight",
    }
}

/// Prints the lists.
pub fn list(what: What, json: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let dir = library_dir();
    let scenarios: Vec<(String, String)> = library_files(&dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&dir).unwrap_or(&p).display().to_string();
            let about = match scenarios::load(&p, &[]) {
                Ok(l) => l.scenario.description.clone(),
                Err(e) => format!("(invalid: {e})"),
            };
            (rel, about)
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "library": dir.display().to_string(),
            "scenarios": scenarios.iter().map(|(p, d)| serde_json::json!({"file": p, "description": d})).collect::<Vec<_>>(),
            "topologies": topologies::NAMED.iter().map(|n| serde_json::json!({"name": n.name, "description": n.description})).collect::<Vec<_>>(),
            "schedulers": SchedulerKind::ALL.iter().map(|k| serde_json::json!({"name": k.name(), "description": scheduler_blurb(*k)})).collect::<Vec<_>>(),
        });
        let v = match what {
            What::All => v,
            What::Scenarios => v["scenarios"].clone(),
            What::Topologies => v["topologies"].clone(),
            What::Schedulers => v["schedulers"].clone(),
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    if matches!(what, What::All | What::Scenarios) {
        writeln!(out, "scenarios ({}):", dir.display())?;
        let w = scenarios.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        for (p, d) in &scenarios {
            writeln!(out, "  {p:<w$}  {d}")?;
        }
    }
    if matches!(what, What::All | What::Topologies) {
        if what == What::All {
            writeln!(out)?;
        }
        writeln!(out, "topologies (use with `topology: \"NAME\"`):")?;
        let w = topologies::NAMED.iter().map(|n| n.name.len()).max().unwrap_or(0);
        for n in topologies::NAMED {
            writeln!(out, "  {:<w$}  {}", n.name, n.description)?;
        }
    }
    if matches!(what, What::All | What::Schedulers) {
        if what == What::All {
            writeln!(out)?;
        }
        writeln!(out, "schedulers (`scheduler: NAME` in a service):")?;
        for k in SchedulerKind::ALL {
            writeln!(out, "  {:<6} {}", k.name(), scheduler_blurb(k))?;
        }
    }
    Ok(())
}
