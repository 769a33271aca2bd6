//! The model back end: the IPVS table of `sim-core` in virtual time.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use lvs_ipvs::ipvsadm::{self, Command, ListOptions};
use lvs_ipvs::tcp::Segment;
use lvs_ipvs::{ConnId, Ipvs, NoDest, Verdict};
use lvs_sched::{Duration, Flow, Forwarding, Protocol, Time};

use super::{Backend, Choice, Target};

/// Replays against [`Ipvs`], starting at virtual time 0.
pub struct Model {
    ipvs: Ipvs,
    now: Time,
    conns: HashMap<u32, ConnId>,
}

impl Model {
    /// A fresh table; `seed` feeds twos.
    pub fn new(seed: u64) -> Model {
        Model { ipvs: Ipvs::new(seed), now: Time::ZERO, conns: HashMap::new() }
    }

    /// The table, for inspection.
    pub fn ipvs(&self) -> &Ipvs {
        &self.ipvs
    }
}

impl Backend for Model {
    fn ipvsadm(&mut self, command: &Command, _args: &[String]) -> anyhow::Result<()> {
        ipvsadm::apply(&mut self.ipvs, command).context("ipvsadm")
    }

    fn connect(&mut self, n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice> {
        let flow = Flow {
            protocol: target.protocol,
            saddr: client.ip(),
            sport: client.port(),
            daddr: target.addr.ip(),
            dport: target.addr.port(),
        };
        let sched = match self.ipvs.new_conn(self.now, &flow, target.fwmark) {
            Ok(s) => s,
            // No server, or the packet dropped (a defence, no memory): the client sees
            // no answer. A first packet is never `NotNew`.
            Err(NoDest::NoDestination | NoDest::NotNew | NoDest::DefenseDrop | NoDest::NoMemory) => {
                return Ok(None);
            }
            Err(NoDest::NoService) => {
                bail!("no virtual service for {} {}", proto(target.protocol), target.addr)
            }
        };
        if sched.verdict == Verdict::Drop {
            // The SYN met an entry of a deleted real server: dropped, as the kernel's
            // client sees it time out.
            return Ok(None);
        }
        let Some(id) = sched.conn else { return Ok(Some(sched.dest)) };
        if target.protocol == Protocol::Tcp {
            // The rest of the three-way handshake: SYN-ACK (seen only with NAT), ACK.
            if sched.fwd == Forwarding::Masq {
                let _ = self.ipvs.packet(self.now, id, Segment::Syn, true);
            }
            let _ = self.ipvs.packet(self.now, id, Segment::Ack, false);
        }
        self.conns.insert(n, id);
        Ok(Some(sched.dest))
    }

    fn close(&mut self, n: u32, reset: bool) -> anyhow::Result<()> {
        let Some(&id) = self.conns.get(&n) else { bail!("connection {n} was never established") };
        let Some(c) = self.ipvs.conn(id) else { bail!("connection {n} has expired already") };
        let svc = self.ipvs.conn_service(id).expect("live connection has a service");
        let nat = svc.scheduler().dest(c.dest()).fwd() == Forwarding::Masq;
        let now = self.now;
        if reset {
            let _ = self.ipvs.packet(now, id, Segment::Rst, false);
        } else if nat {
            // Client FIN, server ACK and FIN, client ACK: TIME_WAIT.
            for (seg, out) in
                [(Segment::Fin, false), (Segment::Ack, true), (Segment::Fin, true), (Segment::Ack, false)]
            {
                let _ = self.ipvs.packet(now, id, seg, out);
            }
        } else {
            // The director sees only the client's FIN and ACK: FIN_WAIT.
            let _ = self.ipvs.packet(now, id, Segment::Fin, false);
            let _ = self.ipvs.packet(now, id, Segment::Ack, false);
        }
        self.conns.remove(&n);
        Ok(())
    }

    fn advance(&mut self, d: Duration) -> anyhow::Result<()> {
        self.now += d;
        self.ipvs.advance(self.now);
        Ok(())
    }

    fn list(&mut self, opts: &ListOptions) -> anyhow::Result<String> {
        Ok(ipvsadm::listing(&self.ipvs, opts))
    }
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}
