//! `lvsim plan`'s command-line options: what the shards of a split plan record and a
//! merge runs again with.

/// Command-line overrides of the scenario's `plan` section.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanOpts {
    /// `--slo METRIC<=VALUE` (or `>=`), replacing the scenario's SLO.
    pub slo: Vec<String>,
    /// `--servers NAME`.
    pub servers: Option<String>,
    /// `--min N`.
    pub min: Option<u32>,
    /// `--max N`.
    pub max: Option<u32>,
    /// `--schedulers rr,wlc`.
    pub schedulers: Option<Vec<String>>,
    /// `--replications N`.
    pub replications: Option<u32>,
}
