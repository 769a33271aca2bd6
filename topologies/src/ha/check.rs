//! [`HealthCheck`]: how ldirectord or keepalived checks a service's real servers, with the
//! checker's defaults (sim-core's `HealthCheckConfig::ldirectord()`/`keepalived()`).

use serde::{Deserialize, Serialize};
use sim_core::ha as sim;

use super::{duration, error, ms, secs, word};
use lvs_ipvs::Forwarding;

use crate::TopologyError;

/// Health checking of a virtual service's real servers, as ldirectord or keepalived do it.
/// A field left out takes the `checker`'s default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Which tool checks: it decides the defaults of the fields not written.
    #[serde(default)]
    pub checker: Checker,
    /// Connect or negotiate.
    #[serde(default)]
    pub kind: CheckKind,
    /// Time between two checks of a real server \[s\] (`checkinterval`, `delay_loop`;
    /// default 10 s ldirectord, 60 s keepalived).
    #[serde(default)]
    pub interval_s: Option<f64>,
    /// A check not answered in this long has failed \[s\] (`checktimeout` or
    /// `negotiatetimeout`, `connect_timeout`; default 5 s).
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Failed checks beyond the first before a server is declared down (ldirectord
    /// `failurecount` − 1, keepalived `retry`; default 0 ldirectord, 1 keepalived).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Delay between a failed check and its retry \[s\] (keepalived `delay_before_retry`,
    /// default 1 s, 3 s for a negotiate check: `HTTP_GET`'s own default); ldirectord's
    /// default is none: the retry waits for the next interval.
    #[serde(default)]
    pub delay_before_retry_s: Option<f64>,
    /// `true`: a failed server is quiesced (weight 0); `false`: removed (`ipvsadm -d`).
    /// Default: ldirectord quiesces (`quiescent = yes`), keepalived removes.
    #[serde(default)]
    pub quiescent: Option<bool>,
    /// The "sorry" server added (weight 1) when every real server is down.
    #[serde(default)]
    pub fallback: Option<Fallback>,
}

/// The tool that checks the real servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    /// ldirectord (run by heartbeat, or alone).
    #[default]
    Ldirectord,
    /// keepalived's checkers (`TCP_CHECK`, `HTTP_GET`).
    Keepalived,
}

/// What a check does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CheckKind {
    /// Open a TCP connection to the real server's port (`checktype = connect`,
    /// `TCP_CHECK`).
    #[default]
    Connect,
    /// Request a page and compare the answer (`checktype = negotiate`, `HTTP_GET`).
    Negotiate {
        /// The page requested (`request`, `url { path }`).
        #[serde(default = "default_request")]
        request: String,
        /// The string the answer must contain (ldirectord `receive`).
        #[serde(default)]
        receive: Option<String>,
        /// MD5 digest of the expected answer, 32 hex digits (keepalived `digest`).
        #[serde(default)]
        digest: Option<String>,
        /// CPU the page costs the real server \[ms at speed 1\].
        #[serde(default = "default_page_demand")]
        demand_ms: f64,
    },
}

fn default_request() -> String {
    "/".to_owned()
}

fn default_page_demand() -> f64 {
    1.0
}

/// A sorry server: a server of the topology, added as a real server of the service when
/// all the others are down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The server's name (one server, not a `count` group).
    pub server: String,
    /// Its port; default the service's (DR and TUN always use the service's).
    #[serde(default)]
    pub port: Option<u16>,
    /// Forwarding method: `NAT` (the default), `DR` or `TUN`.
    #[serde(default = "crate::model::nat")]
    pub forwarding: Forwarding,
}

impl HealthCheck {
    /// The simulator's settings: the checker's defaults (sim-core's
    /// `HealthCheckConfig::ldirectord()`/`keepalived()`) for the fields not written.
    /// `fallback` is left `None`: it needs the server's index, which the caller knows.
    /// Values are not checked here; [`HealthCheck::check`] does that.
    pub fn config(&self) -> sim::HealthCheckConfig {
        let mut c = match self.checker {
            Checker::Ldirectord => sim::HealthCheckConfig::ldirectord(),
            Checker::Keepalived => sim::HealthCheckConfig::keepalived(),
        };
        c.kind = match &self.kind {
            CheckKind::Connect => sim::CheckKind::Connect,
            CheckKind::Negotiate { demand_ms, .. } => sim::CheckKind::Negotiate { demand: ms(*demand_ms) },
        };
        if self.checker == Checker::Keepalived {
            c.delay_before_retry = Some(sim::keepalived_delay_before_retry(c.kind));
        }
        if let Some(x) = self.interval_s {
            c.interval = secs(x);
        }
        if let Some(x) = self.timeout_s {
            c.timeout = secs(x);
        }
        if let Some(n) = self.retries {
            c.retries = n;
        }
        if let Some(x) = self.delay_before_retry_s {
            c.delay_before_retry = Some(secs(x));
        }
        if let Some(q) = self.quiescent {
            c.on_failure = if q { sim::OnFailure::Quiesce } else { sim::OnFailure::Remove };
        }
        c
    }

    /// Checks every value; `path` is the check's own (`directors[0].services[1].check`).
    /// The fallback's server is resolved by [`crate::Topology::expand`].
    pub fn check(&self, path: &str) -> Result<(), TopologyError> {
        if let Some(x) = self.interval_s {
            duration(&format!("{path}.interval_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.timeout_s {
            duration(&format!("{path}.timeout_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.delay_before_retry_s {
            duration(&format!("{path}.delay_before_retry_s"), x, 1.0, true)?;
        }
        if let CheckKind::Negotiate { request, receive, digest, demand_ms } = &self.kind {
            let kp = format!("{path}.kind");
            word(&format!("{kp}.request"), "page to request", request)?;
            if let Some(r) = receive
                && (r.is_empty() || r.chars().any(|c| c == '"' || c.is_control()))
            {
                return error(
                    format!("{kp}.receive"),
                    format!(
                        "{r:?}: the expected string is not empty and has no quotes or control characters"
                    ),
                );
            }
            if let Some(d) = digest
                && !(d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return error(
                    format!("{kp}.digest"),
                    format!("{d:?} is not an MD5 digest (32 hex digits, as keepalived's genhash prints)"),
                );
            }
            duration(&format!("{kp}.demand_ms"), *demand_ms, 1e-3, true)?;
        }
        Ok(())
    }
}
