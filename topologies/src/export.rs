//! Deployment files from a topology: what to type on the director and the real servers.

use crate::Topology;

/// The director's ipvsadm commands (`ipvsadm -A ...`, `ipvsadm -a ...`, `--set`), one per
/// line, for every director (a comment line names each), as a shell script.
pub fn ipvsadm(topo: &Topology) -> String {
    let _ = topo;
    unimplemented!("export: ipvsadm")
}

/// `/etc/feedbackd-agent.conf` for one real server (by name, after expansion), in the
/// original grammar: `director = DIP`, then a `service = NAME` block per service it
/// serves with `protocol`, `port`, `module = cpuload.so` and `forwarding`.
pub fn agent_conf(topo: &Topology, server: &str) -> Option<String> {
    let _ = (topo, server);
    unimplemented!("export: agent_conf")
}

/// `keepalived.conf` for the director(s): a `virtual_server` block per service
/// (`lb_algo`, `lb_kind`, `persistence_timeout`, `protocol`) with a `real_server` block
/// per real server (`weight`, a `TCP_CHECK`).
pub fn keepalived(topo: &Topology) -> String {
    let _ = topo;
    unimplemented!("export: keepalived")
}
