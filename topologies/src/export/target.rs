//! [`Target`]: the system the deployment files are written for.
//!
//! Where distributions differ (where a daemon's helpers live, which resource agents
//! exist, which version of a tool reads the file), an exporter asks its [`Target`]
//! instead of assuming, and says what it assumed in a comment at the top of the file
//! ([`Target::header`]). Debian 12 is the default: it is what CI checks every file with.

use std::fmt;
use std::str::FromStr;

/// The system the exported files are for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Target {
    /// Debian 12 (bookworm): keepalived 2.2.7, ldirectord 4.12.0 (resource-agents),
    /// heartbeat 3.0.6, ipvsadm 1.31. Every exported file is checked with these in CI.
    #[default]
    Debian12,
    /// Debian 11 (bullseye): keepalived 2.1.5, ldirectord 4.7.0, heartbeat 3.0.6,
    /// ipvsadm 1.31.
    Debian11,
}

impl Target {
    /// Every target, the default first.
    pub const ALL: [Target; 2] = [Target::Debian12, Target::Debian11];

    /// The name `--target` takes: `debian12`.
    pub const fn name(self) -> &'static str {
        match self {
            Target::Debian12 => "debian12",
            Target::Debian11 => "debian11",
        }
    }

    /// The system and the versions of the tools it has, for the files' headers.
    pub const fn describe(self) -> &'static str {
        match self {
            Target::Debian12 => {
                "Debian 12 (keepalived 2.2.7, ldirectord 4.12.0, heartbeat 3.0.6, ipvsadm 1.31)"
            }
            Target::Debian11 => {
                "Debian 11 (keepalived 2.1.5, ldirectord 4.7.0, heartbeat 3.0.6, ipvsadm 1.31)"
            }
        }
    }

    /// Where the ipvsadm package's init script (`/etc/init.d/ipvsadm`, `load`) reads the
    /// rules it restores at boot (`IPVSADM_RULES`, with `AUTO="true"` in
    /// `/etc/default/ipvsadm`): the same in Debian 11 and 12 (ipvsadm 1.31).
    pub const fn ipvsadm_rules(self) -> &'static str {
        match self {
            Target::Debian12 | Target::Debian11 => "/etc/ipvsadm.rules",
        }
    }

    /// The directory of heartbeat's helper programs (ipfail, the daemon itself).
    ///
    /// Debian 12: `/usr/libexec/heartbeat` (`dpkg -L heartbeat` of 1:3.0.6-13+b2 lists
    /// /usr/libexec/heartbeat/ipfail). Debian 11: `/usr/lib/heartbeat`
    /// (packages.debian.org/bullseye/amd64/heartbeat/filelist lists
    /// /usr/lib/heartbeat/ipfail).
    pub const fn heartbeat_libexec(self) -> &'static str {
        match self {
            Target::Debian12 => "/usr/libexec/heartbeat",
            Target::Debian11 => "/usr/lib/heartbeat",
        }
    }

    /// ipfail, as ha.cf's `respawn hacluster PATH` names it.
    pub fn ipfail(self) -> String {
        format!("{}/ipfail", self.heartbeat_libexec())
    }

    /// The heartbeat resource scripts (/etc/ha.d/resource.d/) that haresources may
    /// name and lvsim uses: `IPaddr2`, `IPv6addr` (package heartbeat) and `ldirectord`
    /// (package ldirectord links it to /usr/sbin/ldirectord).
    ///
    /// The same on both targets: the heartbeat file lists of Debian 11 and 12
    /// (`dpkg -L heartbeat`, packages.debian.org) hold AudibleAlarm .. portblock,
    /// IPaddr2 and IPv6addr among them, and neither has `LVSSyncDaemonSwap` (it left
    /// with heartbeat 2's ldirectord scripts), so no exported haresources names it.
    pub const fn heartbeat_resource_scripts(self) -> &'static [&'static str] {
        match self {
            Target::Debian12 | Target::Debian11 => &["IPaddr2", "IPv6addr", "ldirectord"],
        }
    }

    /// The first lines of an exported file: `COMMENT FILE written by lvsim for SYSTEM
    /// (lvsim export --target NAME)`, then one `COMMENT assumes: ...` line per
    /// assumption the exporter made for this target.
    pub fn header(self, comment: &str, file: &str, assumed: &[&str]) -> String {
        let mut out = format!(
            "{comment} {file} written by lvsim for {} (lvsim export --target {})\n",
            self.describe(),
            self.name()
        );
        for a in assumed {
            out.push_str(&format!("{comment} assumes: {a}\n"));
        }
        out
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--target` value that names no [`Target`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown target {name:?}: expected {}", Target::ALL.map(Target::name).join(" or "), name = .0)]
pub struct UnknownTarget(pub String);

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Target, UnknownTarget> {
        Target::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>(), Ok(t));
        }
        let e = "rhel9".parse::<Target>().unwrap_err();
        assert_eq!(e.to_string(), "unknown target \"rhel9\": expected debian12 or debian11");
        assert_eq!(Target::default(), Target::Debian12);
    }

    #[test]
    fn the_header_names_the_target_and_each_assumption() {
        let h = Target::Debian12.header("#", "ha.cf", &["ipfail in /usr/libexec/heartbeat"]);
        assert_eq!(
            h,
            "# ha.cf written by lvsim for Debian 12 (keepalived 2.2.7, ldirectord 4.12.0, heartbeat 3.0.6, \
             ipvsadm 1.31) (lvsim export --target debian12)\n# assumes: ipfail in /usr/libexec/heartbeat\n"
        );
    }
}
