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
    /// Messages passed at once so far (for tests).
    pub(super) passed: u64,
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
        Instant { pops, uplinks, passed: 0 }
    }
}

/// Director `d` is a member of the run's HA group or ECMP tier (its routing may change).
fn grouped(cfg: &ClusterConfig, d: usize) -> bool {
    cfg.ha.as_ref().is_some_and(|h| h.members.contains(&d))
        || cfg.ecmp.as_ref().is_some_and(|e| e.members.contains(&d))
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
            self.instant.passed += 1;
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
            self.instant.passed -= 1;
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

#[cfg(test)]
mod tests {
    use lvs_sched::{Duration, Forwarding};

    use crate::link::ChannelConfig;
    use crate::model::config::{ClusterConfig, DuplexLink, Exchange, Transport};
    use crate::model::{RunReport, Simulation};
    use crate::ref1::Preset;

    /// Runs `cfg` with `exchange`: the report, messages passed at once, events on lanes.
    fn run(cfg: &ClusterConfig, exchange: Exchange) -> (RunReport, u64, u64) {
        let mut sim = Simulation::new(ClusterConfig { exchange, ..cfg.clone() }).expect("valid");
        sim.run_loop(|_| {});
        let (passed, laned) = (sim.instant.passed, sim.lanes.laned);
        (sim.finish(), passed, laned)
    }

    /// Both ways: the same report; returns (messages passed at once, events on lanes) of
    /// the fast path, after checking that the per-message walk used neither.
    fn both_ways(cfg: &ClusterConfig) -> (u64, u64) {
        let (fast, passed, laned) = run(cfg, Exchange::Fast);
        let (slow, slow_passed, slow_laned) = run(cfg, Exchange::PerMessage);
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "same results both ways");
        assert_eq!((slow_passed, slow_laned), (0, 0), "the reference walks every message");
        (passed, laned)
    }

    #[test]
    fn ideal_hops_pass_at_once_with_the_walks_results() {
        let cfg = Preset::Base.run(3000, 1).config();
        let (passed, laned) = both_ways(&cfg);
        // SYN, SYN-ACK, request, response, FIN, FIN-ACK, last ACK (and the last ACK's
        // retransmission: REF-1's FIN_WAIT timeout 0 expires the entry under it).
        assert!(passed >= 7 * 2900, "every message of every connection at once: {passed}");
        // Nothing waits on ideal links; the last ACKs' retransmissions wait on their lane.
        assert!((2900..=3100).contains(&laned), "one retransmission a connection: {laned}");
    }

    #[test]
    fn delayed_hops_go_to_lanes_with_the_heaps_order() {
        let mut cfg = Preset::Base.run(3000, 1).config();
        let link = ChannelConfig {
            latency: Duration::from_micros(50),
            bandwidth_bps: Some(100_000_000),
            ..ChannelConfig::IDEAL
        };
        cfg.directors[0].external = DuplexLink { inbound: link, outbound: link };
        cfg.directors[0].cpu_per_packet = Duration::from_micros(2);
        for s in &mut cfg.servers {
            s.uplink = DuplexLink { inbound: link, outbound: link };
        }
        let p = &mut cfg.populations[0];
        p.access_latency = Duration::from_millis(5);
        p.transport = Transport::Tcp {
            requests: crate::dist::Dist::Constant(3.0),
            think_time: crate::dist::Dist::Exponential { mean: 0.01 },
        };
        p.response_timeout = Some(Duration::from_secs(1));
        p.response_bytes = crate::dist::Dist::Exponential { mean: 20_000.0 };
        let (passed, laned) = both_ways(&cfg);
        assert_eq!(passed, 0, "no hop is ideal");
        assert!(laned > 10 * 2900, "links, access network and timeouts on lanes: {laned}");
        // NAT: replies cross the director's internal link and CPU.
        for d in &mut cfg.directors[0].services[0].dests {
            d.fwd = Forwarding::Masq;
        }
        let (_, laned) = both_ways(&cfg);
        assert!(laned > 10 * 2900, "{laned}");
    }

    #[test]
    fn a_lane_out_of_time_order_sends_the_event_to_the_heap() {
        use super::super::Event;
        use super::super::lanes::{Lanes, Streams};
        use crate::engine::EventQueue;
        use lvs_sched::Time;
        let mut queue = EventQueue::new();
        let mut lanes = Lanes::new(Streams::new(1, 0, 0, 0), true);
        lanes.push(&mut queue, 0, Time(10), Event::Sample);
        lanes.push(&mut queue, 0, Time(5), Event::WindowEnd);
        lanes.push(&mut queue, 0, Time(10), Event::WindowStart);
        assert_eq!(lanes.laned, 2);
        assert_eq!(queue.peek_key(), Some((Time(5), 2)), "the earlier event in the heap, sequence 2");
        assert_eq!(lanes.peek(), Some((Time(10), 1, 0)));
        assert!(matches!(lanes.pop(0), (Time(10), Event::Sample)));
        assert_eq!(lanes.peek(), Some((Time(10), 3, 0)), "equal times in sequence order");
    }
}
