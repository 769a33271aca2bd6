//! The director's IPVS table: virtual services, the connection table with its timers,
//! persistence templates and the counters `ipvsadm -L` shows.
//!
//! It mirrors `ip_vs_core.c`, `ip_vs_conn.c` and `ip_vs_ctl.c` closely enough that the
//! scheduling decisions it produces are the kernel's: connection entries are bound to
//! their real server for life, move between the active and inactive counts with the TCP
//! state machine ([`tcp`]), expire on their state's timeout in virtual time and only then
//! unbind (which is when the OVERLOAD flag is re-evaluated). Persistence templates follow
//! `ip_vs_sched_persist()`.
//!
//! Invariant: virtual time only; a timer fires exactly at its deadline, in
//! `(deadline, arming order)` order ([`timers`]: a FIFO lane per timeout value).

pub mod ipvsadm;
pub mod tcp;
mod timers;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use lvs_sched::{
    ConnCount, DestConfig, DestId, Duration, Flow, Forwarding, Protocol, SchedulerKind, Service, SvcFlags,
    Time,
};

use self::tcp::{Direction, Segment, TcpState, Timeouts};
use self::timers::{TimerRef, Timers};

/// A virtual service's key: protocol, VIP and port, or a firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// `-t`/`-u` VIP:port.
    Inet {
        /// Protocol.
        protocol: ProtocolKey,
        /// Virtual IP.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `-f mark`.
    Fwmark(u32),
}

/// [`Protocol`] with an ordering, for service keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolKey {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl From<ProtocolKey> for Protocol {
    fn from(p: ProtocolKey) -> Protocol {
        match p {
            ProtocolKey::Tcp => Protocol::Tcp,
            ProtocolKey::Udp => Protocol::Udp,
            ProtocolKey::Sctp => Protocol::Sctp,
        }
    }
}

impl From<Protocol> for ProtocolKey {
    fn from(p: Protocol) -> ProtocolKey {
        match p {
            Protocol::Tcp => ProtocolKey::Tcp,
            Protocol::Udp => ProtocolKey::Udp,
            Protocol::Sctp => ProtocolKey::Sctp,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Inet { protocol, addr, port } => {
                let p = match protocol {
                    ProtocolKey::Tcp => "TCP",
                    ProtocolKey::Udp => "UDP",
                    ProtocolKey::Sctp => "SCTP",
                };
                match addr {
                    IpAddr::V4(a) => write!(f, "{p} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p} [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark(m) => write!(f, "FWM {m}"),
        }
    }
}

/// What `ipvsadm -A/-E` sets on a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Flags (scheduler flags, one-packet); PERSISTENT follows `persistence`.
    pub flags: SvcFlags,
    /// Persistence timeout (`-p`), `None` when not persistent.
    pub persistence: Option<Duration>,
    /// Persistence granularity: IPv4 netmask as a host-order `u32`, or IPv6 prefix length.
    pub netmask: u32,
}

impl ServiceConfig {
    /// ipvsadm's defaults: wlc, no flags, not persistent, /32.
    pub fn new(scheduler: SchedulerKind) -> Self {
        ServiceConfig { scheduler, flags: SvcFlags::default(), persistence: None, netmask: u32::MAX }
    }
}

/// Refusals of the IPVS control plane, named as the kernel's errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpvsError {
    /// `-EEXIST`: the virtual service exists already.
    #[error("virtual service already exists (EEXIST)")]
    ServiceExists,
    /// `-ESRCH`: no such virtual service.
    #[error("no such virtual service (ESRCH)")]
    NoSuchService,
    /// A real-server refusal.
    #[error(transparent)]
    Dest(#[from] lvs_sched::Error),
}

/// Handle of a connection entry or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Protocol state of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// A TCP connection.
    Tcp(TcpState),
    /// A UDP "connection" (always inactive).
    Udp,
    /// A persistence template.
    Template,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    protocol: ProtocolKey,
    caddr: IpAddr,
    cport: u16,
    vaddr: IpAddr,
    vport: u16,
}

/// Template key: `<protocol (None for fwmark), caddr & netmask, vaddr (or mark), vport>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TemplateKey {
    svc: ServiceKey,
    caddr: IpAddr,
}

/// One entry of the connection table.
#[derive(Clone, Debug)]
pub struct Conn {
    key: ConnKey,
    svc: usize,
    dest: DestId,
    state: ConnState,
    /// Replies never seen by the director (DR, TUN): the INPUT_ONLY table applies.
    no_output: bool,
    deadline: Time,
    /// Its timer: lane (= current timeout) and live position.
    timer: TimerRef,
    control: Option<ConnId>,
    n_control: u32,
    /// Unhashed: no longer found by lookups (an invalidated template).
    unhashed: bool,
}

impl Conn {
    /// The real server it is bound to.
    pub fn dest(&self) -> DestId {
        self.dest
    }
    /// Its protocol state.
    pub fn state(&self) -> ConnState {
        self.state
    }
    /// When its timer fires.
    pub fn deadline(&self) -> Time {
        self.deadline
    }
    fn count(&self) -> ConnCount {
        match self.state {
            ConnState::Template => ConnCount::Template,
            ConnState::Udp => ConnCount::Inactive,
            ConnState::Tcp(s) if s.is_active() => ConnCount::Active,
            ConnState::Tcp(_) => ConnCount::Inactive,
        }
    }
}

/// A virtual service and its scheduler.
#[derive(Clone, Debug)]
pub struct VirtualService {
    key: ServiceKey,
    config: ServiceConfig,
    sched: Service,
    /// Connections created (templates excluded), as `--stats` Conns.
    conns: u64,
    /// False once deleted: connections still refer to it, lookups no longer find it.
    linked: bool,
}

impl VirtualService {
    /// The key.
    pub fn key(&self) -> ServiceKey {
        self.key
    }
    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }
    /// The scheduler's view: real servers in kernel order, counters and flags.
    pub fn scheduler(&self) -> &Service {
        &self.sched
    }
    /// Connections created so far.
    pub fn conns_created(&self) -> u64 {
        self.conns
    }
}

/// Where a new connection went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// Its entry; `None` for a one-packet UDP entry, which expires at once.
    pub conn: Option<ConnId>,
    /// The real server's address and port (a port-0 server of a firewall-mark service
    /// keeps the packet's port).
    pub dest: SocketAddr,
    /// The real server's forwarding method.
    pub fwd: Forwarding,
}

/// Why a new connection got no real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoDest {
    /// No virtual service matches the packet.
    #[error("no virtual service matches")]
    NoService,
    /// The scheduler found no destination (ICMP port unreachable).
    #[error("no destination available")]
    NoDestination,
}

/// The IPVS state of one director (one network namespace).
#[derive(Debug)]
pub struct Ipvs {
    seed: u64,
    services: Vec<VirtualService>,
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    by_key: HashMap<ConnKey, ConnId>,
    templates: HashMap<TemplateKey, ConnId>,
    timers: Timers,
    /// Entries freed by their timer.
    expired: u64,
    timeouts: Timeouts,
    now: Time,
}

/// A template still controlling connections is re-armed for this long
/// (`ip_vs_conn_expire()`'s `expire_later`).
const CONTROL_REARM: Duration = Duration::from_secs(60);

impl Ipvs {
    /// An empty table; `seed` feeds the schedulers that draw random numbers.
    pub fn new(seed: u64) -> Ipvs {
        Ipvs {
            seed,
            services: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            templates: HashMap::new(),
            timers: Timers::default(),
            expired: 0,
            timeouts: Timeouts::default(),
            now: Time::ZERO,
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The state timeouts.
    pub fn timeouts_mut(&mut self) -> &mut Timeouts {
        &mut self.timeouts
    }

    /// Virtual services in creation order.
    pub fn services(&self) -> impl Iterator<Item = &VirtualService> {
        self.services.iter().filter(|s| s.linked)
    }

    /// A service by key.
    pub fn service(&self, key: &ServiceKey) -> Option<&VirtualService> {
        self.services().find(|s| s.key == *key)
    }

    fn service_index(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.linked && s.key == *key)
    }

    /// `ipvsadm -A`.
    pub fn add_service(&mut self, key: ServiceKey, config: ServiceConfig) -> Result<(), IpvsError> {
        if self.service_index(&key).is_some() {
            return Err(IpvsError::ServiceExists);
        }
        let mut flags = config.flags;
        if config.persistence.is_some() {
            flags.0 |= SvcFlags::PERSISTENT;
        }
        let seed = self.seed ^ (self.services.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let sched = Service::new(config.scheduler, flags, seed, self.now);
        self.services.push(VirtualService { key, config, sched, conns: 0, linked: true });
        Ok(())
    }

    /// `ipvsadm -E`: scheduler (re-initialised only if it differs), flags, persistence.
    pub fn edit_service(&mut self, key: ServiceKey, config: ServiceConfig) -> Result<(), IpvsError> {
        let now = self.now;
        let svc = self.service_mut(&key)?;
        let mut flags = config.flags;
        if config.persistence.is_some() {
            flags.0 |= SvcFlags::PERSISTENT;
        }
        svc.sched.set_scheduler(config.scheduler, now);
        svc.sched.set_flags(flags);
        svc.config = config;
        Ok(())
    }

    /// `ipvsadm -D`. Existing connections keep running until they expire.
    pub fn del_service(&mut self, key: ServiceKey) -> Result<(), IpvsError> {
        let i = self.service_index(&key).ok_or(IpvsError::NoSuchService)?;
        // Like the kernel, the service object lives on while connections refer to it;
        // it is only no longer found.
        let svc = &mut self.services[i];
        svc.linked = false;
        let dests: Vec<_> = svc.sched.dests().map(|(_, d)| (d.addr(), d.port())).collect();
        for (a, p) in dests {
            svc.sched.del_dest(a, p)?;
        }
        Ok(())
    }

    /// `ipvsadm -C`: delete every service.
    pub fn clear(&mut self) {
        let keys: Vec<_> = self.services().map(|s| s.key).collect();
        for k in keys {
            self.del_service(k).expect("listed service exists");
        }
    }

    /// `ipvsadm -a`.
    pub fn add_dest(&mut self, key: ServiceKey, cfg: &DestConfig) -> Result<DestId, IpvsError> {
        Ok(self.service_mut(&key)?.sched.add_dest(cfg)?)
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, key: ServiceKey, cfg: &DestConfig) -> Result<DestId, IpvsError> {
        Ok(self.service_mut(&key)?.sched.edit_dest(cfg)?)
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: ServiceKey, addr: IpAddr, port: u16) -> Result<DestId, IpvsError> {
        Ok(self.service_mut(&key)?.sched.del_dest(addr, port)?)
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Result<&mut VirtualService, IpvsError> {
        let i = self.service_index(key).ok_or(IpvsError::NoSuchService)?;
        Ok(&mut self.services[i])
    }

    /// A connection entry.
    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The service a connection belongs to.
    pub fn conn_service(&self, id: ConnId) -> Option<&VirtualService> {
        self.conn(id).map(|c| &self.services[c.svc])
    }

    /// Number of live entries (connections and templates).
    pub fn conn_count(&self) -> usize {
        self.by_key.len() + self.templates.len()
    }

    /// The first packet of a connection arrives at `now` (a TCP SYN or a UDP datagram):
    /// find the service (firewall mark first, then protocol/VIP/port), reuse or schedule
    /// as `ip_vs_schedule()`/`ip_vs_sched_persist()` do, create and bind the entry and run
    /// the packet through the state machine. Returns the entry's handle.
    pub fn new_conn(&mut self, now: Time, flow: &Flow, fwmark: Option<u32>) -> Result<Scheduled, NoDest> {
        self.advance(now);
        let inet = ServiceKey::Inet { protocol: flow.protocol.into(), addr: flow.daddr, port: flow.dport };
        let svc_i = fwmark
            .and_then(|m| self.service_index(&ServiceKey::Fwmark(m)))
            .or_else(|| self.service_index(&inet))
            .ok_or(NoDest::NoService)?;
        let key = ConnKey {
            protocol: flow.protocol.into(),
            caddr: flow.saddr,
            cport: flow.sport,
            vaddr: flow.daddr,
            vport: flow.dport,
        };
        if let Some(&old) = self.by_key.get(&key) {
            // conn_reuse_mode=1: a SYN for an entry in TIME_WAIT or CLOSE that no template
            // controls expires the old entry and is scheduled afresh; otherwise the
            // packet simply belongs to the existing entry.
            let c = self.conns[old.0 as usize].as_ref().expect("hashed entry exists");
            let reusable = matches!(c.state, ConnState::Tcp(TcpState::TimeWait | TcpState::Close))
                && c.control.is_none();
            if reusable {
                self.expire_now(old);
            } else {
                let (svc_i, dest) = (c.svc, c.dest);
                self.packet(now, old, Segment::Syn, false);
                return Ok(self.scheduled_on(svc_i, Some(old), dest, flow));
            }
        }
        let svc = &mut self.services[svc_i];
        let (dest, control) = match svc.config.persistence {
            None => (svc.sched.schedule(now, flow).ok_or(NoDest::NoDestination)?, None),
            Some(timeout) => {
                let tkey = TemplateKey { svc: svc.key, caddr: mask_addr(flow.saddr, svc.config.netmask) };
                let (dest, tmpl) = self.persist_template(now, svc_i, tkey, timeout, flow)?;
                (dest, Some(tmpl))
            }
        };
        let result = self.scheduled_on(svc_i, None, dest, flow);
        let fwd = result.fwd;
        let svc = &mut self.services[svc_i];
        svc.conns += 1;
        let one_packet = flow.protocol == Protocol::Udp && svc.sched.flags().has(SvcFlags::ONEPACKET);
        let state = match flow.protocol {
            Protocol::Udp => ConnState::Udp,
            _ => ConnState::Tcp(TcpState::None),
        };
        let conn = Conn {
            key,
            svc: svc_i,
            dest,
            state,
            no_output: fwd != Forwarding::Masq,
            deadline: now,
            timer: TimerRef::NONE,
            control,
            n_control: 0,
            unhashed: one_packet,
        };
        // ip_vs_bind_dest(): the entry starts INACTIVE.
        svc.sched.bind(dest, ConnCount::Inactive);
        let id = self.insert(conn);
        if let Some(t) = control {
            self.conns[t.0 as usize].as_mut().expect("template exists").n_control += 1;
        }
        if one_packet {
            // Never hashed; expires as soon as its packet is sent.
            self.expire_now(id);
            return Ok(result);
        }
        self.by_key.insert(key, id);
        self.packet(now, id, Segment::Syn, false);
        Ok(Scheduled { conn: Some(id), ..result })
    }

    fn scheduled_on(&self, svc_i: usize, conn: Option<ConnId>, dest: DestId, flow: &Flow) -> Scheduled {
        let svc = &self.services[svc_i];
        let d = svc.sched.dest(dest);
        let port = if d.port() == 0 { flow.dport } else { d.port() };
        Scheduled { conn, dest: SocketAddr::new(d.addr(), port), fwd: d.fwd() }
    }

    /// Persistence (`ip_vs_sched_persist()`): reuse a valid template's real server, or
    /// schedule and create a template. Either way the template's timer is re-armed.
    fn persist_template(
        &mut self,
        now: Time,
        svc_i: usize,
        tkey: TemplateKey,
        timeout: Duration,
        flow: &Flow,
    ) -> Result<(DestId, ConnId), NoDest> {
        if let Some(&t) = self.templates.get(&tkey) {
            let tmpl = self.conns[t.0 as usize].as_ref().expect("hashed template exists");
            let svc = &self.services[svc_i];
            let d = svc.sched.dest(tmpl.dest);
            // expire_quiescent_template=0 (the default): a weight-0 server keeps its
            // persistent clients; only a deleted one invalidates the template.
            if d.is_available() {
                let (dest, tmo) = (tmpl.dest, self.timers.timeout(tmpl.timer.lane));
                self.arm(t, tmo);
                return Ok((dest, t));
            }
            self.templates.remove(&tkey);
            self.conns[t.0 as usize].as_mut().expect("template exists").unhashed = true;
        }
        let svc = &mut self.services[svc_i];
        let dest = svc.sched.schedule(now, flow).ok_or(NoDest::NoDestination)?;
        svc.sched.bind(dest, ConnCount::Template);
        let tmpl = Conn {
            key: ConnKey {
                protocol: flow.protocol.into(),
                caddr: tkey.caddr,
                cport: 0,
                vaddr: flow.daddr,
                vport: 0,
            },
            svc: svc_i,
            dest,
            state: ConnState::Template,
            no_output: true,
            deadline: now,
            timer: TimerRef::NONE,
            control: None,
            n_control: 0,
            unhashed: false,
        };
        let t = self.insert(tmpl);
        self.templates.insert(tkey, t);
        self.arm(t, timeout);
        Ok((dest, t))
    }

    /// A segment of connection `id` passes the director at `now`: the TCP state machine
    /// moves it (and its counters) and its timer is re-armed for the new state.
    /// `output` marks a server-to-client segment (seen only with NAT).
    pub fn packet(&mut self, now: Time, id: ConnId, seg: Segment, output: bool) {
        self.advance(now);
        let Some(c) = self.conns.get_mut(id.0 as usize).and_then(Option::as_mut) else { return };
        let before = c.count();
        let timeout = match c.state {
            ConnState::Tcp(s) => {
                if output {
                    c.no_output = false;
                }
                let dir = match (output, c.no_output) {
                    (true, _) => Direction::Output,
                    (false, true) => Direction::InputOnly,
                    (false, false) => Direction::Input,
                };
                let next = tcp::transition(dir, seg, s);
                c.state = ConnState::Tcp(next);
                self.timeouts.tcp(next)
            }
            ConnState::Udp => self.timeouts.udp,
            ConnState::Template => return,
        };
        let after = c.count();
        let (svc, dest) = (c.svc, c.dest);
        if before != after {
            let sched = &mut self.services[svc].sched;
            match after {
                ConnCount::Active => sched.activate(dest),
                _ => sched.deactivate(dest),
            }
        }
        self.arm(id, timeout);
    }

    /// Virtual time passes: every timer with a deadline `<= now` fires, in order.
    pub fn advance(&mut self, now: Time) {
        assert!(now >= self.now, "IPVS time went backwards: {} -> {}", self.now, now);
        while let Some((deadline, lane)) = self.earliest_timer() {
            if deadline > now {
                break;
            }
            let id = ConnId(self.timers.pop(lane));
            self.now = deadline;
            self.conns[id.0 as usize].as_mut().expect("live timer's entry exists").timer.armed = false;
            self.expire(id);
        }
        self.now = now;
    }

    /// The earliest pending timer's deadline (stale timers are discarded on the way,
    /// hence `&mut`). The simulator interleaves expiries with its own events by it.
    pub fn next_deadline(&mut self) -> Option<Time> {
        self.earliest_timer().map(|(t, _)| t)
    }

    /// Entries (connections and templates) freed by their timer so far; REF-1 counts
    /// these expiries as model events. Entries dropped otherwise (a reused TIME_WAIT
    /// entry, a one-packet entry) are not counted.
    pub fn expired_total(&self) -> u64 {
        self.expired
    }

    fn earliest_timer(&mut self) -> Option<(Time, timers::LaneId)> {
        let conns = &self.conns;
        self.timers.earliest(|id, r| {
            let c = conns[id as usize].as_ref()?;
            (c.timer == r).then_some(c.deadline)
        })
    }

    /// `ip_vs_conn_expire()`: a template still controlling entries is re-armed for 60 s
    /// (and that timeout sticks); anything else is unlinked and unbound.
    fn expire(&mut self, id: ConnId) {
        let c = self.conns[id.0 as usize].as_mut().expect("expiring entry exists");
        if c.n_control > 0 {
            self.arm(id, CONTROL_REARM);
            return;
        }
        self.expired += 1;
        self.expire_now(id);
    }

    fn expire_now(&mut self, id: ConnId) {
        let c = self.conns[id.0 as usize].take().expect("expiring entry exists");
        self.free.push(id.0);
        if c.timer.armed {
            self.forget_timer(c.timer);
        }
        match c.state {
            ConnState::Template => {
                let svc = &self.services[c.svc];
                let tkey = TemplateKey { svc: svc.key, caddr: c.key.caddr };
                if self.templates.get(&tkey) == Some(&id) {
                    self.templates.remove(&tkey);
                }
            }
            _ => {
                if self.by_key.get(&c.key) == Some(&id) {
                    self.by_key.remove(&c.key);
                }
            }
        }
        let sched = &mut self.services[c.svc].sched;
        sched.unbind(c.dest, c.count());
        if let Some(t) = c.control {
            let tmpl = self.conns[t.0 as usize].as_mut().expect("controlling template exists");
            tmpl.n_control -= 1;
        }
    }

    fn insert(&mut self, conn: Conn) -> ConnId {
        match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = Some(conn);
                ConnId(i)
            }
            None => {
                self.conns.push(Some(conn));
                ConnId(u32::try_from(self.conns.len() - 1).expect("more than 2^32 entries"))
            }
        }
    }

    /// (Re-)arm `id`'s timer for `now + timeout`.
    fn arm(&mut self, id: ConnId, timeout: Duration) {
        let lane = self.timers.lane(timeout);
        let c = self.conns[id.0 as usize].as_mut().expect("armed entry exists");
        let old = c.timer;
        c.timer = self.timers.push(lane, id.0);
        c.deadline = self.now + timeout;
        if old.armed {
            self.forget_timer(old);
        }
    }

    /// The live timer item at `r` became stale; compact its lane if mostly stale.
    fn forget_timer(&mut self, r: TimerRef) {
        if self.timers.forget(r) {
            let conns = &mut self.conns;
            self.timers.compact(r.lane, |id, old, new| match conns[id as usize].as_mut() {
                Some(c) if c.timer == old => {
                    c.timer = new;
                    true
                }
                _ => false,
            });
        }
    }
}

/// The client address masked with the service's persistence granularity.
fn mask_addr(addr: IpAddr, netmask: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & netmask).into()),
        IpAddr::V6(a) => {
            let plen = netmask.min(128);
            let m = if plen == 0 { 0 } else { u128::MAX << (128 - plen) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::ipvsadm::{apply, parse, words};

    fn table(lines: &[&str]) -> Ipvs {
        let mut ipvs = Ipvs::new(7);
        for l in lines {
            apply(&mut ipvs, &parse(&words(l)).unwrap()).unwrap();
        }
        ipvs
    }

    fn flow(c: &str, port: u16) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            saddr: c.parse().unwrap(),
            sport: port,
            daddr: "10.0.0.1".parse().unwrap(),
            dport: 80,
        }
    }

    fn secs(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn template_outlives_its_connection_and_rearms_for_60s_while_controlling() {
        let mut ipvs = table(&[
            "-A -t 10.0.0.1:80 -s rr -p 100",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
        ]);
        let first = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
        let c = first.conn.unwrap();
        ipvs.packet(Time::ZERO, c, Segment::Ack, false);
        assert_eq!(ipvs.conn_count(), 2, "a connection and its template");
        // At 100 s the template's timer fires while it still controls an established entry:
        // it is re-armed for 60 s, and 60 s sticks.
        ipvs.advance(secs(100));
        assert_eq!(ipvs.conn_count(), 2);
        let again = ipvs.new_conn(secs(120), &flow("1.1.1.1", 1001), None).unwrap();
        assert_eq!(again.dest, first.dest, "persistence keeps the client on its server");
        // The reuse re-armed the template to its (now 60 s) timeout: 120 + 60.
        let svc = ipvs.service(&ServiceKey::Inet {
            protocol: ProtocolKey::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        });
        let persist: u32 = svc.unwrap().scheduler().dests().map(|(_, d)| d.persist_conns()).sum();
        assert_eq!(persist, 1);
        let tmpl = ipvs.conns.iter().flatten().find(|c| c.state == ConnState::Template).unwrap();
        assert_eq!(tmpl.deadline(), secs(180));
    }

    #[test]
    fn quiesced_server_keeps_persistent_clients_but_deleted_one_does_not() {
        let mut ipvs = table(&[
            "-A -t 10.0.0.1:80 -s rr -p",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
        ]);
        let first = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
        assert_eq!(first.dest.to_string(), "10.0.0.3:80");
        apply(&mut ipvs, &parse(&words("-e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0")).unwrap()).unwrap();
        let q = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1001), None).unwrap();
        assert_eq!(q.dest, first.dest, "expire_quiescent_template=0");
        apply(&mut ipvs, &parse(&words("-d -t 10.0.0.1:80 -r 10.0.0.3:80")).unwrap()).unwrap();
        let d = ipvs.new_conn(secs(2), &flow("1.1.1.1", 1002), None).unwrap();
        assert_eq!(d.dest.to_string(), "10.0.0.2:80", "a deleted server invalidates the template");
    }

    #[test]
    fn syn_on_time_wait_entry_is_rescheduled_and_entries_expire_in_order() {
        let mut ipvs = table(&[
            "-A -t 10.0.0.1:80 -s rr",
            "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m",
        ]);
        let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap();
        let id = a.conn.unwrap();
        for (seg, out) in [
            (Segment::Syn, true),
            (Segment::Ack, false),
            (Segment::Fin, false),
            (Segment::Ack, true),
            (Segment::Fin, true),
            (Segment::Ack, false),
        ] {
            ipvs.packet(Time::ZERO, id, seg, out);
        }
        assert_eq!(ipvs.conn(id).unwrap().state(), ConnState::Tcp(TcpState::TimeWait));
        let b = ipvs.new_conn(secs(1), &flow("1.1.1.1", 1000), None).unwrap();
        assert_ne!(b.dest, a.dest, "conn_reuse_mode: the old entry expires and rr moves on");
        assert_eq!(ipvs.conn_count(), 1);
        ipvs.advance(Time(secs(61).0 - 1));
        assert_eq!(ipvs.conn_count(), 1, "without the ACK the entry stays in SYN_RECV, 60 s timeout");
        ipvs.advance(secs(61));
        assert_eq!(ipvs.conn_count(), 0);
        let total: u32 = ipvs
            .services()
            .flat_map(|s| s.scheduler().dests().map(|(_, d)| d.active_conns() + d.inactive_conns()))
            .sum();
        assert_eq!(total, 0, "expiry unbinds");
    }

    #[test]
    fn next_deadline_skips_stale_timers_and_expiries_are_counted() {
        let mut ipvs = table(&["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
        assert_eq!(ipvs.next_deadline(), None);
        let id = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap().conn.unwrap();
        assert_eq!(ipvs.next_deadline(), Some(secs(60)), "SYN_RECV: 60 s");
        ipvs.packet(secs(1), id, Segment::Ack, false);
        assert_eq!(ipvs.next_deadline(), Some(secs(901)), "ESTABLISHED: 900 s; the 60 s timer is stale");
        ipvs.packet(secs(2), id, Segment::Fin, false);
        assert_eq!(ipvs.next_deadline(), Some(secs(122)), "FIN_WAIT (input only): 120 s");
        ipvs.advance(secs(121));
        assert_eq!(ipvs.expired_total(), 0);
        ipvs.advance(secs(122));
        assert_eq!((ipvs.expired_total(), ipvs.conn_count(), ipvs.next_deadline()), (1, 0, None));
    }

    #[test]
    fn equal_deadlines_expire_in_arming_order_across_timeouts() {
        // Entry a (SYN_RECV, 60 s) is armed at 0; entry b is reset at 50 s (CLOSE, 10 s).
        // Both are due at 60 s, and a, armed first, must fire first.
        let mut ipvs = table(&["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g"]);
        let a = ipvs.new_conn(Time::ZERO, &flow("1.1.1.1", 1000), None).unwrap().conn.unwrap();
        let b = ipvs.new_conn(secs(40), &flow("1.1.1.2", 1000), None).unwrap().conn.unwrap();
        ipvs.packet(secs(45), b, Segment::Ack, false);
        ipvs.packet(secs(50), b, Segment::Rst, false);
        assert_eq!(ipvs.conn(b).unwrap().state(), ConnState::Tcp(TcpState::Close));
        let (at, lane) = ipvs.earliest_timer().unwrap();
        assert_eq!(at, secs(60));
        assert_eq!(ipvs.timers.pop(lane), a.0, "a's lane comes first");
        let (at, lane) = ipvs.earliest_timer().unwrap();
        assert_eq!((at, ipvs.timers.pop(lane)), (secs(60), b.0));
    }
}
