//! The fast path of a connection's exchange ([`Exchange::Fast`]): a message whose every
//! hop is ideal now (no latency, no rate, no buffer limit, no per-packet cost, its
//! director up and holding the VIP, no HA group that could route it elsewhere) passes
//! its whole path at once, in straight-line code, instead of stage by stage through
//! [`Simulation::walk`].
//!
//! Straight-line code, same effects: every stage's effect is applied in the same order as
//! the walk applies it (the channels' counters, the IPVS table's scheduling, state
//! transitions, timers and counters, the real server's arrival), so the results are the
//! same bit for bit; what goes is the walk's per-stage dispatch, routing and up-checks.
//! A message that meets anything else (a delay, a queue, a fault, a fail-over group)
//! walks message by message. The chain of an exchange follows by itself: the SYN
//! reaching the server sends the SYN-ACK, which sends the request, all in one call.
//!
//! [`Exchange::Fast`]: crate::model::Exchange::Fast

use lvs_sched::Forwarding;

use super::breakdown::Outcome;
use super::flow::{Msg, TUN_HDR};
use super::{Director, Simulation};
use crate::link::{Channel, Transmit};
use crate::model::config::{ClusterConfig, Exchange};

/// What the fast path needs to know of a run's fixed configuration, decided once.
pub(super) struct Instant {
    /// Per population: its messages may pass at once (the fast path is on, its access
    /// network has no latency and no HA group routes its director's traffic).
    pub(super) pops: Vec<bool>,
    /// Per real server: its own uplink is ideal (DR and TUN replies).
    pub(super) uplinks: Vec<bool>,
}

impl Instant {
    pub(super) fn new(cfg: &ClusterConfig) -> Self {
        let fast = cfg.exchange == Exchange::Fast;
        let pops = cfg
            .populations
            .iter()
            .map(|p| {
                let routed = cfg.director_of(p).is_some_and(|d| grouped(cfg, d));
                fast && p.access_latency.as_nanos() == 0 && !routed
            })
            .collect();
        let uplinks = cfg.servers.iter().map(|s| Channel::new(s.uplink.outbound).is_ideal()).collect();
        Instant { pops, uplinks }
    }
}

/// Director `d` is a member of the run's HA group (its routing may change).
fn grouped(cfg: &ClusterConfig, d: usize) -> bool {
    cfg.ha.as_ref().is_some_and(|h| h.members.contains(&d))
}

impl Director {
    /// Every stage of the director passes a message at once now: its links and CPU are
    /// ideal, it runs, both links are up and it holds the VIP.
    fn instant(&self) -> bool {
        self.ideal && self.alive && self.ext_up && self.int_up && self.holds
    }

    /// Its links and CPU are all ideal.
    pub(super) fn ideal_channels(&self) -> bool {
        [&self.ext_in, &self.ext_out, &self.int_out, &self.int_in, &self.cpu].iter().all(|c| c.is_ideal())
    }
}

impl Simulation {
    /// Starts message `m` (at its first stage): at once if every hop is ideal, else
    /// stage by stage.
    pub(super) fn start(&mut self, m: Msg) {
        let c = &self.conns[m.conn as usize];
        let pop = c.pop as usize;
        if self.instant.pops[pop] {
            if m.kind.inbound() {
                let d = self.pops[pop].dir;
                if self.dirs[d].instant() {
                    return self.pass_inbound(m, d);
                }
            } else if c.fwd == Forwarding::Masq {
                let d = self.pops[pop].dir;
                if self.dirs[d].instant() {
                    return self.pass_outbound_nat(m, d);
                }
            } else if self.instant.uplinks[c.server as usize] {
                return self.pass_outbound_direct(m);
            }
        }
        self.walk(m)
    }

    /// Access network, external link, director CPU, IPVS, internal link, real server.
    fn pass_inbound(&mut self, mut m: Msg, d: usize) {
        let now = self.now;
        m.dir = d as u8;
        let (bytes, packets) = (m.bytes, u64::from(m.packets));
        let dir = &mut self.dirs[d];
        ideal(dir.ext_in.send(now, bytes, packets));
        ideal(dir.cpu.send(now, bytes, packets));
        match self.ipvs_in(&m) {
            Ok(()) => {}
            Err(o @ (Outcome::Refused | Outcome::Lost)) => {
                self.end_conn(m.conn, o);
                return self.release(m.conn);
            }
            Err(_) => return self.dropped(m),
        }
        let tun = self.conns[m.conn as usize].fwd == Forwarding::Tunnel;
        let extra = if tun { TUN_HDR * packets } else { 0 };
        ideal(self.dirs[d].int_out.send(now, bytes + extra, packets));
        self.at_server(m)
    }

    /// NAT: internal link, director CPU, IPVS, external link, access network, client.
    fn pass_outbound_nat(&mut self, mut m: Msg, d: usize) {
        let now = self.now;
        m.dir = d as u8;
        let (bytes, packets) = (m.bytes, u64::from(m.packets));
        let dir = &mut self.dirs[d];
        ideal(dir.int_in.send(now, bytes, packets));
        ideal(dir.cpu.send(now, bytes, packets));
        match self.ipvs_out(&m) {
            None => return,
            Some(Transmit::Dropped) => return self.dropped(m),
            Some(Transmit::Delivered(_)) => {}
        }
        ideal(self.dirs[d].ext_out.send(now, bytes, packets));
        self.at_client(m)
    }

    /// DR and TUN: the real server's uplink, access network, client.
    fn pass_outbound_direct(&mut self, m: Msg) {
        let s = self.conns[m.conn as usize].server as usize;
        ideal(self.servers[s].uplink.send(self.now, m.bytes, u64::from(m.packets)));
        self.at_client(m)
    }
}

/// An ideal channel delivers at once.
#[inline(always)]
fn ideal(t: Transmit) {
    debug_assert!(matches!(t, Transmit::Delivered(_)), "an ideal channel never drops");
}
