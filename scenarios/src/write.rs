//! A scenario file from an imported configuration (`lvsim import`): the topology the
//! files describe, what they said that could not be mapped as comments, and a placeholder
//! workload for the user to replace.

use std::fmt::Write as _;

use topologies::import::Imported;

/// The scenario text of an import of `files`: a header naming them and listing the notes
/// (`file:line: message`), then `Scenario(...)` with the topology's directors, servers,
/// backends and fail-over group, a 60 s run and one placeholder client population aimed
/// at the first service. `lvsim validate` accepts it as written (tests below), and every
/// topology field is written only where it differs from the format's default.
pub fn scenario(imported: &Imported, files: &[String]) -> String {
    let t = &imported.topology;
    let mut out = format!("// Imported by `lvsim import` from: {}\n", files.join(", "));
    if !imported.notes.is_empty() {
        out.push_str("//\n// Not mapped (the files say it; this scenario does not):\n");
        for n in &imported.notes {
            let at = if n.line == 0 { n.path.clone() } else { format!("{}:{}", n.path, n.line) };
            let _ = writeln!(out, "//   {at}: {}", one_line(&n.message));
        }
    }
    out.push_str(
        "//\n// The files describe the directors, not the load: the `clients` below are a placeholder.\n\
         // Replace them with your workload (docs/scenarios.md, \"Clients\"), then `lvsim run` this file.\n",
    );
    out.push_str("Scenario(\n");
    let description = if t.description.is_empty() {
        format!("imported from {}", files.join(", "))
    } else {
        t.description.clone()
    };
    let _ = writeln!(out, "    description: {},", ron_string(&description));
    out.push_str("    duration_s: 60.0,\n    warmup_s: 5.0,\n");
    field(&mut out, "directors", &t.directors);
    field(&mut out, "servers", &t.servers);
    if !t.backends.is_empty() {
        field(&mut out, "backends", &t.backends);
    }
    if let Some(ha) = &t.ha {
        field(&mut out, "ha", ha);
    }
    if let Some(ecmp) = &t.ecmp {
        field(&mut out, "ecmp", ecmp);
    }
    out.push_str("    clients: [\n");
    match placeholder_target(t) {
        Some(target) => {
            let _ = writeln!(
                out,
                "        // PLACEHOLDER: 100 new connections a second, 10 ms of work each.\n        \
                 Clients(name: \"placeholder\", {target}arrival: Poisson(rate: 100.0), demand_ms: Exponential(mean: 10.0)),"
            );
        }
        None => out.push_str(
            "        // No placeholder: lvsim's clients speak TCP and UDP, and every service is SCTP.\n",
        ),
    }
    out.push_str("    ],\n)\n");
    out
}

/// The fields that aim the placeholder clients at the first TCP service, else the first
/// UDP one, else the first firewall-mark one (at a documentation address the mark rule
/// would match); `None` if every service is SCTP.
fn placeholder_target(t: &topologies::Topology) -> Option<String> {
    use lvs_ipvs::Protocol;
    let services = || t.directors.iter().flat_map(|d| &d.services);
    let with_vip =
        |p: Protocol| services().find(|s| s.fwmark.is_none() && s.protocol == p && s.vip.is_some());
    if let Some(s) = with_vip(Protocol::Tcp) {
        return Some(format!("vip: \"{}\", port: {}, ", s.vip?, s.port));
    }
    if let Some(s) = with_vip(Protocol::Udp) {
        return Some(format!("vip: \"{}\", port: {}, transport: UDP(), ", s.vip?, s.port));
    }
    let s = services().find(|s| s.fwmark.is_some())?;
    let ipv6 =
        s.real_servers.iter().any(|rs| t.servers.iter().any(|x| x.name == rs.server && x.address.is_ipv6()));
    let vip = if ipv6 { "2001:db8::1" } else { "192.0.2.1" };
    Some(format!("fwmark: {}, vip: \"{vip}\", port: 80, ", s.fwmark?))
}

/// `    NAME: VALUE,` with VALUE in pretty RON, indented one level.
fn field<T: serde::Serialize + ?Sized>(out: &mut String, name: &str, value: &T) {
    let config = ron::ser::PrettyConfig::new().struct_names(true).indentor("    ".to_owned());
    let text = ron::ser::to_string_pretty(value, config).expect("a topology always serialises");
    let text = text.replace('\n', "\n    ");
    let _ = writeln!(out, "    {name}: {text},");
}

/// A RON string literal.
fn ron_string(s: &str) -> String {
    ron::to_string(s).expect("a string always serialises")
}

/// A message on one line (a note never breaks the comment block).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use topologies::import::Note;

    use super::*;

    fn load(text: &str) -> crate::Loaded {
        crate::load_str("imported.ron", "imported", text, Path::new("."), &[])
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn every_matrix_and_built_in_topology_becomes_a_scenario_that_loads_with_the_same_topology() {
        let mut all = topologies::matrix::topologies();
        all.extend(topologies::NAMED.iter().map(|n| (n.name.to_owned(), n.topology())));
        for (name, t) in all {
            let expanded = t.expand().unwrap();
            let imported = Imported { topology: expanded.clone(), notes: Vec::new() };
            let text = scenario(&imported, &[format!("{name}.conf")]);
            if placeholder_target(&expanded).is_none() {
                // Every service is SCTP: no client can be aimed at one, and the scenario says
                // so where it stops.
                let e = crate::load_str("imported.ron", "imported", &text, Path::new("."), &[]).unwrap_err();
                assert!(e.to_string().contains("no client population"), "{e}");
                assert!(text.contains("every service is SCTP"), "{text}");
                continue;
            }
            let l = load(&text);
            // The description becomes the scenario's.
            assert_eq!(l.scenario.description, expanded.description);
            let mut want = expanded;
            want.description = String::new();
            assert_eq!(l.topology, want, "{name}:\n{text}");
        }
    }

    #[test]
    fn notes_become_comments_and_defaults_are_not_written() {
        let t = topologies::matrix::topologies().remove(0).1.expand().unwrap();
        let imported = Imported {
            topology: t,
            notes: vec![
                Note {
                    path: "keepalived.conf".into(),
                    line: 12,
                    message: "MISC_CHECK:\nnot modelled".into(),
                },
                Note { path: "keepalived.conf".into(), line: 0, message: "no director address".into() },
            ],
        };
        let text = scenario(&imported, &["keepalived.conf".into()]);
        assert!(text.contains("//   keepalived.conf:12: MISC_CHECK: not modelled\n"), "{text}");
        assert!(text.contains("//   keepalived.conf: no director address\n"), "{text}");
        assert!(text.contains("PLACEHOLDER"), "{text}");
        assert!(text.contains("timeouts: Timeouts(\n"), "{text}");
        for default in ["segment: \"lan\"", "count: 1", "external:", "weight: 1,", "expire_nodest_conn"] {
            assert!(!text.contains(default), "{default} written:\n{text}");
        }
        let l = load(&text);
        assert_eq!(l.scenario.clients.len(), 1);
    }
}
