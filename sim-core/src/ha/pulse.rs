//! Red Hat piranha's `pulse`: the heartbeat between the active and the backup LVS router,
//! modelled by heartbeat's node ([`super::heartbeat`]) with pulse's settings, because its
//! rule is the same liveness rule.
//!
//! ```text
//!            UDP heartbeats to heartbeat_port (539), every keepalive
//!   [ primary ] <----------------------------------------> [ backup ]
//!     lvsd + nannies, the VIPs                 takes them over (lvsd, send_arp)
//!                                              after deadtime of silence
//! ```
//!
//! # What pulse does (piranha 0.8.6 `pulse.c` `run()`, and the 2001 `pulse.c`)
//! - Each router sends its partner a 4-byte heartbeat every `keepalive` seconds (the
//!   timer is re-armed when one is sent), saying whether it is active (`RUNNING`) or not
//!   (`STOPPED`).
//! - `needHeartBeat = now + deadtime` at start and again on every heartbeat received;
//!   when it passes, an inactive router activates LVS (`activateLvs()`: forks `lvsd`,
//!   which loads the IPVS table and starts a nanny per real server, and `send_arp` for
//!   each VIP) — "partner dead: activating lvs".
//! - An inactive primary that hears `STOPPED` activates at once (in 0.8.6 an inactive
//!   backup does too); an active backup that hears `RUNNING` from the primary deactivates
//!   (both active: the primary re-sends its ARPs).
//! - A returning primary hears the backup `RUNNING` and stays inactive: "If and when a
//!   failed primary node returns to a functioning status, it assumes the backup role"
//!   (pulse(8)). No fail-back.
//!
//! # Mapping onto [`super::heartbeat::Node`]
//! keepalive and deadtime as they are; `initdead = deadtime` (the start-up timer is the
//! same); `nice_failback` (no fail-back); no warning (`warntime = deadtime`), no ipfail;
//! the heartbeats on the network of lvs.cf's `primary`/`backup` addresses (a
//! [`Medium::Lan`]);
//! `takeover` 0: `lvsd` and `send_arp` are forked at once.
//!
//! # Simplified
//! The model's primary is active at start-up; with 0.8.6's pulse a backup that hears the
//! primary's first (`STOPPED`) heartbeat before it is active takes the VIPs and keeps them
//! (docs/piranha.md: seen with the real pulse). pulse's first heartbeat goes `keepalive`
//! after its start (the model's at its start);
//! nannies add each real server at their first successful check after a take-over (the
//! model's table is complete at once); `primary_private`/`backup_private` (a second
//! heartbeat path) and `monitor_links` are not modelled.

use lvs_sched::Duration;

use super::{HeartbeatConfig, Medium};

impl HeartbeatConfig {
    /// piranha's `pulse` as heartbeat's liveness rule: both LVS routers send a UDP
    /// heartbeat to `heartbeat_port` every `keepalive` (default 2 s) and declare the
    /// partner dead when nothing came for `deadtime` (default 5 s), also at start-up
    /// (lvsconfig.c `lvsReadConfig()` defaults; pulse.c `run()`: `needHeartBeat = now +
    /// deadTime`, reset by every heartbeat received). A returning primary stays the
    /// backup (pulse(8): "it assumes the backup role unless specifically forced"): no
    /// fail-back. No warning time, no ipfail. The heartbeats travel on `medium` (the
    /// network of the addresses lvs.cf's `primary` and `backup` name). Taking over forks `lvsd` and `send_arp` at once
    /// (`activateLvs()`): no resource-script time.
    pub fn pulse(keepalive: Duration, deadtime: Duration, medium: Medium) -> Self {
        HeartbeatConfig {
            keepalive,
            deadtime,
            warntime: deadtime,
            initdead: deadtime,
            nice_failback: true,
            media: vec![medium],
            ping_nodes: Vec::new(),
            deadping: deadtime,
            takeover: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use lvs_sched::Time;

    use super::*;
    use crate::ha::testing::{Run, at};
    use crate::ha::{Failover, Side};

    /// lvs.cf's defaults: keepalive 2 s, deadtime 5 s; messages take 1 ms.
    fn run() -> Run {
        let cfg = HeartbeatConfig::pulse(
            Duration::from_secs(2),
            Duration::from_secs(5),
            Medium::Lan(Side::Internal),
        );
        Run::new(Failover::Heartbeat(cfg), 2, Time::ZERO)
    }

    #[test]
    fn the_backup_activates_lvs_deadtime_after_the_last_heartbeat() {
        let mut r = run();
        r.kill(at(11, 0), 0);
        r.until(at(30, 0));
        // Heartbeats at 0, 2, ..., 10 s, the last heard at 10.001 s: dead at 10.001 + 5
        // = 15.001 s, active at once (no resource scripts), with its ARP.
        assert!(r.times("warn").is_empty(), "pulse has no warning time");
        assert_eq!(r.times("dead"), vec![(at(15, 1_000_000), 0, "deadtime")]);
        assert_eq!(r.times("active").last(), Some(&(at(15, 1_000_000), 1, "peer dead")));
        assert_eq!(r.arps(), vec![(Time::ZERO, 0), (at(15, 1_000_000), 1)]);
    }

    #[test]
    fn a_returning_primary_stays_the_backup() {
        let mut r = run();
        r.kill(at(11, 0), 0);
        r.boot(at(20, 500_000_000), 0);
        r.until(at(120, 0));
        assert!(r.times("releasing").is_empty(), "{:?}", r.log);
        assert_eq!(r.group.state(0), Some("standby"));
        assert_eq!(r.group.state(1), Some("active"));
        assert_eq!(r.group.arp_target(), Some(1));
    }

    #[test]
    fn a_primary_alone_at_start_waits_deadtime() {
        let mut r = run();
        r.kill(Time::ZERO, 1);
        r.kill(at(1, 0), 0);
        r.boot(at(2, 0), 0);
        r.until(at(10, 0));
        // Restarted at 2 s with no partner: dead at 2 + deadtime 5 = 7 s (initdead ==
        // deadtime), active at once.
        assert_eq!(r.times("dead").last(), Some(&(at(7, 0), 1, "initdead")));
        assert_eq!(r.times("active").last(), Some(&(at(7, 0), 0, "peer dead")));
    }

    #[test]
    fn pulse_settings() {
        let c = HeartbeatConfig::pulse(
            Duration::from_secs(3),
            Duration::from_secs(9),
            Medium::Lan(Side::External),
        );
        assert_eq!(
            (c.keepalive, c.deadtime, c.initdead),
            (Duration::from_secs(3), Duration::from_secs(9), c.deadtime)
        );
        assert!(c.nice_failback && c.ping_nodes.is_empty() && c.takeover == Duration::ZERO);
        assert_eq!(c.media, vec![Medium::Lan(Side::External)]);
    }
}
