//! [`HealthCheck`]: how ldirectord, keepalived or piranha's nanny checks a service's real
//! servers, with the checker's defaults (sim-core's
//! `HealthCheckConfig::ldirectord()`/`keepalived()`/`nanny()`).

use serde::{Deserialize, Serialize};
use sim_core::ha as sim;

use super::{duration, error, ms, secs, word};
use lvs_ipvs::Forwarding;

use crate::TopologyError;

/// Health checking of a virtual service's real servers, as ldirectord, keepalived or nanny
/// do it. A field left out takes the `checker`'s default.
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
    /// default 10 s ldirectord, 60 s keepalived). nanny has none of its own: it waits
    /// `timeout` after each check (leave this out).
    #[serde(default)]
    pub interval_s: Option<f64>,
    /// A check not answered in this long has failed \[s\] (`checktimeout` or
    /// `negotiatetimeout`, `connect_timeout`; default 5 s). nanny: lvs.cf's `timeout`,
    /// whole seconds (default 10 s), also the time between checks.
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
    /// Default: ldirectord quiesces (`quiescent = yes`), keepalived and nanny remove
    /// (nanny: lvs.cf's `quiesce_server`, default 0).
    #[serde(default)]
    pub quiescent: Option<bool>,
    /// nanny only: how long a failed server must pass its checks before it is put back
    /// \[s\] (lvs.cf's `reentry`, whole seconds, default 180): nanny counts `reentry /
    /// timeout` consecutive successful checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reentry_s: Option<f64>,
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
    /// Red Hat piranha's `nanny` (lvs.cf, run by `lvsd` under `pulse`).
    Nanny,
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
    /// nanny's check (checker `nanny` only): connect, write `send`, read and compare the
    /// answer's first bytes with `expect` (or match it as a POSIX extended regular
    /// expression with `use_regex`; `*` accepts any answer); or run `send_program` and
    /// compare its output with `expect`. Strings hold the bytes sent (a real `\r\n`), which
    /// lvs.cf writes with nanny's escapes. Without `send`, `expect` and `send_program`
    /// it is a connect check (nanny's default on port 80 is `GET / HTTP/1.0` expecting
    /// `HTTP`: write `Connect` for a bare connect there).
    SendExpect {
        /// Written to the server after connecting (lvs.cf `send`).
        #[serde(default)]
        send: Option<String>,
        /// What the answer must start with (lvs.cf `expect`).
        #[serde(default)]
        expect: Option<String>,
        /// `expect` is a regular expression (lvs.cf `use_regex = 1`).
        #[serde(default)]
        use_regex: bool,
        /// A program run instead of `send` (`%h`: the real server's address, `%p`: its
        /// port), whose output must equal `expect` (lvs.cf `send_program`).
        #[serde(default)]
        send_program: Option<String>,
        /// CPU the answer costs the real server \[ms at speed 1\] (with `expect`).
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
            Checker::Nanny => sim::HealthCheckConfig::nanny(),
        };
        c.kind = match &self.kind {
            CheckKind::Connect => sim::CheckKind::Connect,
            CheckKind::Negotiate { demand_ms, .. } => sim::CheckKind::Negotiate { demand: ms(*demand_ms) },
            // nanny waits for an answer only with `expect` (or a program's output).
            CheckKind::SendExpect { expect, send_program, demand_ms, .. } => {
                if expect.is_some() || send_program.is_some() {
                    sim::CheckKind::Negotiate { demand: ms(*demand_ms) }
                } else {
                    sim::CheckKind::Connect
                }
            }
        };
        if self.checker == Checker::Keepalived {
            c.delay_before_retry = Some(sim::keepalived_delay_before_retry(c.kind));
        }
        if self.checker == Checker::Nanny {
            // lvsd passes lvs.cf's `timeout` as nanny's `-t`: the interval and the
            // timeout are one value.
            if let Some(x) = self.timeout_s {
                c.timeout = secs(x);
            }
            c.interval = c.timeout;
            let reentry = self.reentry_s.unwrap_or(NANNY_REENTRY_S);
            c.rise = sim::HealthCheckConfig::nanny_rise(reentry as u32, c.timeout.as_secs_f64() as u32);
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
        if self.checker == Checker::Nanny {
            self.check_nanny(path)?;
        } else if self.reentry_s.is_some() {
            return error(format!("{path}.reentry_s"), "reentry is nanny's (checker: nanny)");
        } else if matches!(self.kind, CheckKind::SendExpect { .. }) {
            return error(format!("{path}.kind"), "SendExpect is nanny's check (checker: nanny)");
        }
        if let Some(x) = self.interval_s {
            duration(&format!("{path}.interval_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.timeout_s {
            duration(&format!("{path}.timeout_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.delay_before_retry_s {
            duration(&format!("{path}.delay_before_retry_s"), x, 1.0, true)?;
        }
        if let CheckKind::SendExpect { demand_ms, .. } = &self.kind {
            duration(&format!("{path}.kind.demand_ms"), *demand_ms, 1e-3, true)?;
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

/// lvs.cf's default `reentry` \[s\] (lvsconfig.c `lvsInitVirtualServer()`).
pub const NANNY_REENTRY_S: f64 = 180.0;

/// The longest string lvs.cf's tokenizer and nanny keep (lvs.cf(5): "limited to 255
/// characters"; nanny.c copies `send_program` into a 255-byte buffer).
const NANNY_MAX: usize = 254;

impl HealthCheck {
    /// nanny's rules: whole seconds (lvs.cf numbers are integers), no interval, retries or
    /// retry delay of its own, strings lvs.cf can quote.
    fn check_nanny(&self, path: &str) -> Result<(), TopologyError> {
        let f = |name: &str| format!("{path}.{name}");
        for (name, x) in [("timeout_s", self.timeout_s), ("reentry_s", self.reentry_s)] {
            let Some(x) = x else { continue };
            let min = if name == "timeout_s" { 1.0 } else { 0.0 };
            if !(x.fract() == 0.0 && (min..=86_400.0).contains(&x)) {
                return error(
                    f(name),
                    format!(
                        "{x}: lvs.cf takes whole seconds, {min} to 86400 (nanny divides reentry by timeout)"
                    ),
                );
            }
        }
        if self.interval_s.is_some() {
            return error(
                f("interval_s"),
                "nanny checks again `timeout` after each check: leave interval_s out",
            );
        }
        if self.retries.is_some_and(|r| r != 0) || self.delay_before_retry_s.is_some() {
            return error(f("retries"), "nanny takes a server out on its first failed check: no retries");
        }
        if self.fallback.is_some() {
            return error(f("fallback"), "lvsim does not map lvs.cf's sorry_server yet: leave fallback out");
        }
        match &self.kind {
            CheckKind::Negotiate { digest: Some(_), .. } => error(
                f("kind.digest"),
                "nanny compares the answer's first bytes, not a digest: use SendExpect",
            ),
            CheckKind::SendExpect { send, expect, send_program, use_regex, .. } => {
                for (name, s) in [("send", send), ("expect", expect), ("send_program", send_program)] {
                    let Some(s) = s else { continue };
                    if s.len() > NANNY_MAX
                        || s.chars().any(|c| c == '"' || (c.is_control() && !"\r\n\t".contains(c)))
                    {
                        return error(
                            f(&format!("kind.{name}")),
                            format!(
                                "{s:?}: lvs.cf quotes it in \"...\": at most {NANNY_MAX} characters, no \" and no control characters but \\r \\n \\t"
                            ),
                        );
                    }
                }
                if send_program.as_ref().is_some_and(|p| p.trim().is_empty()) {
                    return error(f("kind.send_program"), "an empty program");
                }
                if send_program.is_some() && expect.is_none() {
                    return error(
                        f("kind.expect"),
                        "nanny fails every send_program check without expect (nanny.c external_check): give the program's expected output",
                    );
                }
                if *use_regex && expect.is_none() {
                    return error(f("kind.use_regex"), "use_regex applies to expect: give expect");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
