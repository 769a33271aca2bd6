//! Every feedbackd-agent.conf the exporter writes is read back by the agent's own parser
//! with the real server's services, forwarding methods and director.

use lvs_ipvs::Forwarding;

#[test]
fn exported_agent_configurations_parse_as_the_agent_reads_them() {
    let mut checked = 0;
    for named in topologies::NAMED {
        let topo = named.topology().expand().expect("built-in topologies expand");
        for server in &topo.servers {
            let Some(text) = topologies::export::agent_conf(
                &named.topology(),
                &server.name,
                topologies::export::Target::default(),
            ) else {
                continue;
            };
            let conf = feedbackd_proto::conf::parse(&text)
                .unwrap_or_else(|e| panic!("{} {}: {e}\n{text}", named.name, server.name));
            // One director, or every member of a fail-over group.
            let directors = topo.ha.as_ref().map_or(1, |h| h.directors.len());
            assert_eq!(conf.directors.len(), directors, "{text}");
            for s in &conf.services {
                assert!(text.contains(&format!("port = {}", s.port)), "{text}");
                let fwd = match s.forwarding {
                    Forwarding::Masq => "NAT",
                    Forwarding::DirectRouting => "DR",
                    Forwarding::Tunnel => "TUN",
                    Forwarding::Local => panic!("the agent's grammar has no local forwarding: {text}"),
                };
                assert!(text.contains(&format!("forwarding = {fwd}")), "{text}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} configurations");
}
