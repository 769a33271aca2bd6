//! An ECMP tier of directors, as a person writes it: the router in front of them (hash
//! policy, hash-threshold or resilient next-hop group, how fast it notices a dead
//! director). [`Ecmp::config`] turns it into sim-core's [`EcmpConfig`], checking each
//! value with an error that names its field.
//!
//! ```text
//! ecmp: (directors: ["lb1", "lb2", "lb3", "lb4"], hash_policy: L3L4,
//!        selection: Resilient, buckets: 128, detection_s: 0.9)
//! ```

use serde::{Deserialize, Serialize};
use sim_core::model::{EcmpConfig, HashPolicy, NexthopSelection};

use crate::{Director, TopologyError};

/// The router's multipath hash (`net.ipv4.fib_multipath_hash_policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EcmpHashPolicy {
    /// 0, Linux's default: source and destination addresses.
    #[default]
    L3,
    /// 1: addresses, protocol and ports.
    L3L4,
}

/// How the router picks a next hop from the hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EcmpSelection {
    /// A multipath route (hash-threshold): a dead director's flows and some of the
    /// survivors' move.
    #[default]
    HashThreshold,
    /// A resilient next-hop group (`ip nexthop ... type resilient`): only a dead
    /// director's buckets move.
    Resilient,
}

/// An ECMP tier: directors that all announce the same VIPs to a router.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ecmp {
    /// The members by name, in the router's next-hop order. A member without `services`
    /// runs the first member's (they share the real servers).
    pub directors: Vec<String>,
    /// Members that do not announce the VIPs at the start (a `DirectorAnnounce` event
    /// adds them).
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub standby: Vec<String>,
    /// The router's hash.
    #[serde(default)]
    pub hash_policy: EcmpHashPolicy,
    /// Hash-threshold or resilient.
    #[serde(default)]
    pub selection: EcmpSelection,
    /// Buckets of a resilient group (Linux's default 128).
    #[serde(default = "default_buckets")]
    pub buckets: u16,
    /// How long the router takes to notice a dead director [s]: BFD's detect time (3 ×
    /// 300 ms by default here), or a BGP hold time (90 s by default in most daemons).
    #[serde(default = "default_detection_s")]
    pub detection_s: f64,
}

fn default_buckets() -> u16 {
    128
}

fn default_detection_s() -> f64 {
    0.9
}

fn error<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, TopologyError> {
    Err(TopologyError { path: path.into(), message: message.into() })
}

impl Ecmp {
    /// The members' indices into `directors`, checked: known, distinct, two or more.
    pub fn members(&self, directors: &[Director]) -> Result<Vec<usize>, TopologyError> {
        let known = || directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        if self.directors.len() < 2 {
            return error(
                "ecmp.directors",
                format!("an ECMP tier needs two or more directors, got {}", self.directors.len()),
            );
        }
        let mut out = Vec::with_capacity(self.directors.len());
        for (k, name) in self.directors.iter().enumerate() {
            let Some(i) = directors.iter().position(|d| &d.name == name) else {
                return error(
                    format!("ecmp.directors[{k}]"),
                    format!("no director named {name:?} (directors are: {})", known()),
                );
            };
            if out.contains(&i) {
                return error(format!("ecmp.directors[{k}]"), format!("{name:?} is listed twice"));
            }
            out.push(i);
        }
        Ok(out)
    }

    /// sim-core's configuration (member names become indices).
    pub fn config(&self, directors: &[Director]) -> Result<EcmpConfig, TopologyError> {
        let members = self.members(directors)?;
        let mut standby = Vec::new();
        for (k, name) in self.standby.iter().enumerate() {
            let Some(p) = self.directors.iter().position(|d| d == name) else {
                return error(
                    format!("ecmp.standby[{k}]"),
                    format!("{name:?} is not in the tier (ecmp.directors)"),
                );
            };
            standby.push(members[p]);
        }
        if standby.len() >= members.len() {
            return error("ecmp.standby", "at least one director must announce the VIPs at the start");
        }
        if !(self.detection_s.is_finite() && (0.0..=3600.0).contains(&self.detection_s)) {
            return error(
                "ecmp.detection_s",
                format!("a detection time is 0 to 3600 seconds, got {}", self.detection_s),
            );
        }
        let selection = match self.selection {
            EcmpSelection::HashThreshold => NexthopSelection::HashThreshold,
            EcmpSelection::Resilient => {
                if !(usize::from(self.buckets) >= members.len() && self.buckets <= 4096) {
                    return error(
                        "ecmp.buckets",
                        format!(
                            "a resilient group has one bucket per director at least, and at most 4096 here, got {}",
                            self.buckets
                        ),
                    );
                }
                NexthopSelection::Resilient { buckets: self.buckets }
            }
        };
        Ok(EcmpConfig {
            members,
            standby,
            policy: match self.hash_policy {
                EcmpHashPolicy::L3 => HashPolicy::L3,
                EcmpHashPolicy::L3L4 => HashPolicy::L3L4,
            },
            selection,
            detection: sim_core::dist::secs_to_duration(self.detection_s),
        })
    }
}
