//! The one order in which a driver takes a [`Master`]'s output after each turn: every event
//! (applying each table change, and telling the master of one that failed), then every
//! frame, then the closes (each followed by [`Master::handle_disconnect`]). The daemon and
//! the simulator's feedback loop both call [`flush_master`], so they cannot drift apart.
//!
//! Why this order: a change is applied before the ack that reports its weight is written;
//! a connection's last frames (an error saying why) are queued before it is closed.

use lvs_sched::Time;

use crate::master::{ConnId, Master, MasterEvent, RsKey};

/// A table change the driver could not apply (it logs why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyFailed;

/// What a driver does with each kind of output.
pub trait MasterOutput {
    /// An event other than `Close` (a table change, a registration). `Err` for a table
    /// change that could not be applied: the master is then told
    /// ([`Master::handle_apply_failed`]).
    fn apply(&mut self, now: Time, event: &MasterEvent) -> Result<(), ApplyFailed>;
    /// Bytes for a connection.
    fn transmit(&mut self, now: Time, conn: ConnId, bytes: Vec<u8>);
    /// The master closed a connection (after its last frames were handed over).
    fn close(&mut self, now: Time, conn: ConnId, reason: &str);
}

/// Drains `master`'s events, frames and closes into `out`, in that order.
pub fn flush_master(master: &mut Master, now: Time, out: &mut impl MasterOutput) {
    let mut closes = Vec::new();
    while let Some(ev) = master.poll_event() {
        if let MasterEvent::Close { conn, reason } = ev {
            closes.push((conn, reason));
            continue;
        }
        if out.apply(now, &ev).is_err() {
            if let Some(key) = table_key(&ev) {
                master.handle_apply_failed(now, key);
            }
        }
    }
    while let Some((conn, bytes)) = master.poll_transmit() {
        out.transmit(now, conn, bytes);
    }
    for (conn, reason) in closes {
        out.close(now, conn, &reason);
        master.handle_disconnect(now, conn);
    }
}

/// The real server a table change is about.
fn table_key(ev: &MasterEvent) -> Option<RsKey> {
    match ev {
        MasterEvent::AddRealServer { key, .. }
        | MasterEvent::SetWeight { key, .. }
        | MasterEvent::RemoveRealServer { key, .. } => Some(*key),
        MasterEvent::Registered { .. } | MasterEvent::Close { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use lvs_sched::feedback::LawConfig;

    use super::*;
    use crate::agent::{Agent, AgentConfig, Sample};
    use crate::master::MasterConfig;
    use crate::types::{AdminState, ServiceSpec};
    use lvs_ipvs::Forwarding;
    use lvs_ipvs::{Protocol, ServiceKey};

    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const RIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const VS: ServiceKey = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 };

    /// Records the calls in order; table changes fail when `fail` is set.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        frames: Vec<Vec<u8>>,
        fail: bool,
    }

    impl MasterOutput for Recorder {
        fn apply(&mut self, _now: Time, event: &MasterEvent) -> Result<(), ApplyFailed> {
            let (name, table) = match event {
                MasterEvent::AddRealServer { .. } => ("add", true),
                MasterEvent::SetWeight { .. } => ("set", true),
                MasterEvent::RemoveRealServer { .. } => ("remove", true),
                MasterEvent::Registered { .. } => ("registered", false),
                MasterEvent::Close { .. } => unreachable!("closes come last, through close()"),
            };
            self.calls.push(name.into());
            if self.fail && table { Err(ApplyFailed) } else { Ok(()) }
        }
        fn transmit(&mut self, _now: Time, conn: ConnId, bytes: Vec<u8>) {
            self.calls.push(format!("frame {}", conn.0));
            self.frames.push(bytes);
        }
        fn close(&mut self, _now: Time, conn: ConnId, _reason: &str) {
            self.calls.push(format!("close {}", conn.0));
        }
    }

    fn pair() -> (Master, Agent) {
        let law = LawConfig { slow_start: lvs_sched::Duration::ZERO, ..LawConfig::default() };
        let auth = crate::keys::Auth::Insecure;
        let mut m = Master::new(MasterConfig { law, auth, ..MasterConfig::default() });
        m.handle_table(Time(0), &[VS], &[]);
        let spec = ServiceSpec {
            protocol: Protocol::Tcp,
            port: 80,
            vip: None,
            fwmark: None,
            forwarding: Forwarding::DirectRouting,
            address: None,
        };
        let a = Agent::new(AgentConfig {
            agent_id: "rs1".into(),
            services: vec![spec],
            interval: lvs_sched::Duration::from_secs(1),
            psk: None,
            master_timeout: lvs_sched::Duration::from_secs(3),
        });
        (m, a)
    }

    /// Runs the pair until quiet, flushing the master through `out` each turn.
    fn pump(now: Time, m: &mut Master, a: &mut Agent, out: &mut Recorder) {
        loop {
            let mut moved = false;
            while let Some(b) = a.poll_transmit() {
                m.handle_input(now, ConnId(1), &b);
                moved = true;
            }
            flush_master(m, now, out);
            for b in std::mem::take(&mut out.frames) {
                a.handle_input(now, &b);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    #[test]
    fn events_then_frames_then_closes_and_failures_reach_the_master() {
        let (mut m, mut a) = pair();
        let mut out = Recorder::default();
        m.handle_connect(Time(1), ConnId(1), RIP, [1; 16]);
        a.handle_connected(Time(1), [2; 16]);
        pump(Time(1), &mut m, &mut a, &mut out);
        assert!(a.is_registered());
        out.calls.clear();
        // A report: the server is added before the ack that carries its weight is written.
        let sample = Sample { admin: AdminState::Ready, capacity: vec![Some(0.5)], metrics: vec![] };
        a.handle_sample(Time(2), sample.clone());
        out.fail = true;
        pump(Time(2), &mut m, &mut a, &mut out);
        assert_eq!(out.calls, ["add", "frame 1"]);
        // The add failed: the master knows, and adds the server again on the next report.
        assert!(!m.status(Time(2)).iter().any(|r| r.in_table), "the failure reached the master");
        out.calls.clear();
        out.fail = false;
        a.handle_sample(Time(3), sample);
        pump(Time(3), &mut m, &mut a, &mut out);
        assert_eq!(out.calls, ["add", "frame 1"]);
        // Garbage: the error frame goes out before the close, then the master forgets the
        // connection.
        out.calls.clear();
        m.handle_input(Time(4), ConnId(1), &[0xff; 64]);
        flush_master(&mut m, Time(4), &mut out);
        let close = out.calls.iter().position(|c| c == "close 1").expect("closed");
        assert!(out.calls[..close].iter().all(|c| c.starts_with("frame") || c == "set"), "{:?}", out.calls);
        assert!(!m.agents(Time(4)).iter().any(|a| a.connected));
    }
}
