//! `ipvsadm-save` output as a director's services.

use crate::Topology;

/// A line of `ipvsadm-save` output that cannot be imported: line and column (1-based), and
/// why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ImportError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

/// Replaces the services of `topo.directors[director]` with those of an `ipvsadm-save`
/// (or `ipvsadm -S`) file: `-A` lines become services, `-a` lines their real servers in
/// order. A real server is matched by address to the (expanded) topology's servers;
/// an address the topology does not have becomes a new server named `rs-ADDRESS` with
/// default CPU, on the director's segment, with the director as gateway if it is NAT.
/// `--set` lines set the director's timeouts. Returns the names of servers it created.
pub fn ipvsadm_save(topo: &mut Topology, director: usize, text: &str) -> Result<Vec<String>, ImportError> {
    let _ = (topo, director, text);
    unimplemented!("import: ipvsadm_save")
}
