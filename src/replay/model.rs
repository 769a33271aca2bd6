//! The model back end: the IPVS table of `sim-core` in virtual time.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use lvs_ipvs::ipvsadm::{self, Command, ListOptions};
use lvs_ipvs::tcp::Segment;
use lvs_ipvs::{ConnId, Ipvs, Memory, NoDest, Verdict};
use lvs_sched::{Duration, Flow, Forwarding, Protocol, Time};

use super::{Backend, Choice, Sent, Sysctl, Target};

/// The director's free memory with an empty table, as `update_defense_level()` counts
/// it [pages]: about the 400 MB the conformance VM's kernel reports free (MemFree
/// 414 332 kB of a 512 MB guest), so that `amemthresh` above it means "short of memory"
/// in both back ends.
pub const AVAIL_PAGES: i64 = 100_000;

/// What one connection entry costs: the `ip_vs_conn` slab object, 320 bytes in the
/// VM's kernel (`/sys/kernel/slab/ip_vs_conn/slab_size`).
pub const ENTRY_BYTES: u32 = 320;

/// Replays against [`Ipvs`], starting at virtual time 0.
pub struct Model {
    ipvs: Ipvs,
    now: Time,
    conns: HashMap<u32, Open>,
}

/// An open connection: its entry (the latest, once a sloppy segment re-created it),
/// flow, and the real server it was established with.
struct Open {
    id: ConnId,
    flow: Flow,
    dest: SocketAddr,
    nat: bool,
}

impl Model {
    /// A fresh table; `seed` feeds twos and drop_entry's random buckets.
    pub fn new(seed: u64) -> Model {
        let mut ipvs = Ipvs::new(seed);
        ipvs.set_memory(Some(Memory { avail_pages: AVAIL_PAGES, entry_bytes: ENTRY_BYTES }));
        Model { ipvs, now: Time::ZERO, conns: HashMap::new() }
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
        let flow = flow_of(target, client);
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
        let nat = sched.fwd == Forwarding::Masq;
        if target.protocol == Protocol::Tcp {
            // The rest of the three-way handshake: SYN-ACK (seen only with NAT), ACK.
            if nat {
                let _ = self.ipvs.packet(self.now, id, Segment::Syn, true);
            }
            let _ = self.ipvs.packet(self.now, id, Segment::Ack, false);
        }
        self.conns.insert(n, Open { id, flow, dest: sched.dest, nat });
        Ok(Some(sched.dest))
    }

    fn close(&mut self, n: u32, reset: bool) -> anyhow::Result<()> {
        let Some(id) = self.conns.get(&n).map(|o| o.id) else {
            bail!("connection {n} was never established")
        };
        let Some(c) = self.ipvs.conn(id).filter(|c| c.client() == client_of(&self.conns[&n].flow)) else {
            bail!("connection {n} has expired already")
        };
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

    /// `tcp_conn_schedule()` for the SYN alone: nobody answers it.
    fn syn(&mut self, _n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice> {
        let flow = flow_of(target, client);
        match self.ipvs.schedule_segment(self.now, &flow, Segment::Syn, target.fwmark) {
            Ok(s) if s.verdict == Verdict::Accept => Ok(Some(s.dest)),
            Ok(_) => Ok(None),
            Err(NoDest::NoService) => bail!("no virtual service for TCP {}", target.addr),
            Err(_) => Ok(None),
        }
    }

    /// The client's data segment (an ACK) through `ip_vs_in()`: its entry's packet, or
    /// without one rescheduled (sloppy_tcp) or reset by the director's stack.
    fn send(&mut self, n: u32) -> anyhow::Result<Sent> {
        let Some(open) = self.conns.get(&n) else { bail!("connection {n} is not open") };
        let (flow, dest, nat) = (open.flow, open.dest, open.nat);
        let sent = match self.ipvs.schedule_segment(self.now, &flow, Segment::Ack, None) {
            Ok(s) if s.verdict == Verdict::Drop => Sent::Lost,
            Ok(s) if s.dest == dest => {
                if let Some(id) = s.conn {
                    if nat {
                        // The server's answer passes back through a NAT director.
                        let _ = self.ipvs.packet(self.now, id, Segment::Ack, true);
                    }
                    self.conns.get_mut(&n).expect("open").id = id;
                }
                return Ok(Sent::Reached(dest));
            }
            Ok(s) => {
                // Another real server: it has no such connection and answers RST
                // (seen by a NAT director).
                if let (Some(id), true) = (s.conn, s.fwd == Forwarding::Masq) {
                    let _ = self.ipvs.packet(self.now, id, Segment::Rst, true);
                }
                Sent::Reset
            }
            Err(NoDest::NotNew | NoDest::NoService) => Sent::Reset,
            Err(NoDest::NoDestination | NoDest::DefenseDrop | NoDest::NoMemory) => Sent::Lost,
        };
        if sent == Sent::Reset {
            self.conns.remove(&n);
        }
        Ok(sent)
    }

    fn sysctl(&mut self, name: Sysctl, value: Option<i64>) -> anyhow::Result<i64> {
        if let Some(v) = value {
            self.ipvs.sysctls_mut().set(name, v)?;
            // proc_do_defense_mode(): writing a defence's mode runs the update at once.
            if name.is_defense_mode() {
                self.ipvs.update_defense_level();
            }
        }
        Ok(self.ipvs.sysctls().get(name))
    }
}

fn flow_of(target: &Target, client: SocketAddr) -> Flow {
    Flow {
        protocol: target.protocol,
        saddr: client.ip(),
        sport: client.port(),
        daddr: target.addr.ip(),
        dport: target.addr.port(),
    }
}

fn client_of(flow: &Flow) -> SocketAddr {
    SocketAddr::new(flow.saddr, flow.sport)
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}
