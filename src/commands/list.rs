//! `lvsim list`: the scenario library (compiled in: never read from a source tree), the
//! built-in topologies, the schedulers.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use lvs_sched::SchedulerKind;
use scenarios::library;

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

/// Every `.ron` file under a directory, sorted by path (the fuzzer's `--library`; `lvsim`
/// itself lists the library compiled into it, [`scenarios::library`]).
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
    let scenarios: Vec<(&str, String, String)> = library::all()
        .iter()
        .map(|e| {
            let about = match e.load(&[], &[], None) {
                Ok(l) => l.scenario.description.clone(),
                Err(err) => format!("(invalid: {err})"),
            };
            (e.name, e.source(), about)
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "scenarios": scenarios.iter().map(|(n, f, d)| serde_json::json!({"name": n, "file": f, "description": d})).collect::<Vec<_>>(),
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
        writeln!(out, "scenarios (built in; run one by name: `lvsim run quickstart`):")?;
        let w = scenarios.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
        for (n, _, d) in &scenarios {
            writeln!(out, "  {n:<w$}  {d}")?;
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
