//! The DoS-defence sysctls of a director (`net.ipv4.vs.amemthresh`, `am_droprate`,
//! `drop_entry`, `drop_packet`, `secure_tcp`) in the exported files: written by
//! `sysctls()` with the others (thresholds first: writing a mode runs the kernel's
//! `update_defense_level()` at once with the thresholds in force) and read back.

#[cfg(test)]
mod tests {
    use crate::Topology;
    use crate::export::{Target, ipvsadm, ipvsadm_files, keepalived};
    use crate::import::{Source, import};

    const DEFENDED: &str = r#"(
        directors: [(name: "lvs", address: "10.0.0.1", amemthresh: 4096, am_droprate: 5,
                     drop_entry: 1, drop_packet: 3, secure_tcp: 2, memory_pages: Some(3000),
                     services: [(vip: Some("10.0.1.1"), port: 80, scheduler: wlc,
                                 real_servers: [(server: "web", forwarding: DR)])])],
        servers: [(name: "web", address: "10.0.0.11", count: 2)],
    )"#;

    #[test]
    fn defence_sysctls_are_written_thresholds_first_and_read_back() {
        let t: Topology = ron::from_str(DEFENDED).unwrap();
        let script = ipvsadm(&t, Target::default());
        let lines: Vec<&str> = script.lines().filter(|l| l.starts_with("sysctl -w net.ipv4.vs.")).collect();
        assert_eq!(
            lines,
            [
                "sysctl -w net.ipv4.vs.amemthresh=4096",
                "sysctl -w net.ipv4.vs.am_droprate=5",
                "sysctl -w net.ipv4.vs.drop_entry=1",
                "sysctl -w net.ipv4.vs.drop_packet=3",
                "sysctl -w net.ipv4.vs.secure_tcp=2",
            ]
        );
        assert!(
            keepalived(&t, Target::default()).contains("! also run: sysctl -w net.ipv4.vs.drop_packet=3\n")
        );
        let files = ipvsadm_files(&t, Target::default());
        let sources: Vec<Source> =
            files.iter().map(|(p, x)| Source { path: p.clone(), text: x.clone() }).collect();
        let back = import(&sources, None).unwrap_or_else(|e| panic!("{e}"));
        let d = &back.topology.directors[0];
        assert_eq!(
            (d.amemthresh, d.am_droprate, d.drop_entry, d.drop_packet, d.secure_tcp),
            (4096, 5, 1, 3, 2)
        );
        assert_eq!(d.memory_pages, None, "the memory is the simulation's, not a sysctl");
        assert_eq!(ipvsadm_files(&back.topology, Target::default()), files, "the same files again");
        // Defaults write nothing.
        let plain: Topology = ron::from_str(
            &DEFENDED
                .replace("amemthresh: 4096, am_droprate: 5,", "")
                .replace("drop_entry: 1, drop_packet: 3, secure_tcp: 2,", ""),
        )
        .unwrap();
        assert!(!ipvsadm(&plain, Target::default()).contains("net.ipv4.vs."));
    }

    #[test]
    fn a_mode_the_kernel_refuses_is_not_imported() {
        let t: Topology = ron::from_str(DEFENDED).unwrap();
        let mut files = ipvsadm_files(&t, Target::default());
        files[0].1 = files[0].1.replace("secure_tcp=2", "secure_tcp=7");
        let sources: Vec<Source> =
            files.iter().map(|(p, x)| Source { path: p.clone(), text: x.clone() }).collect();
        let back = import(&sources, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.topology.directors[0].secure_tcp, 0);
        let note = back.notes.iter().find(|n| n.message.contains("secure_tcp")).expect("a note");
        assert!(note.message.contains("not imported"), "{note:?}");
    }
}
