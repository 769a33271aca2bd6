//! The director's IPVS table: virtual services, the connection table with its timers,
//! persistence templates and the counters `ipvsadm -L` shows.
//!
//! It mirrors `ip_vs_core.c`, `ip_vs_conn.c` and `ip_vs_ctl.c` closely enough that the
//! scheduling decisions it produces are the kernel's: connection entries are bound to
//! their real server for life, move between the active and inactive counts with the TCP
//! state machine ([`tcp`]), expire on their state's timeout in virtual time and only then
//! unbind (which is when the OVERLOAD flag is re-evaluated). Persistence templates follow
//! `ip_vs_sched_persist()`. Traffic counters and their 2 s rate estimator follow
//! `ip_vs_est.c`; the sysctls `expire_nodest_conn` and `expire_quiescent_template` are
//! honoured ([`Sysctls`]).
//!
//! # Module map
//! - this file: services, real servers, counters and the getters; `table`'s `impl Ipvs`:
//!   the data path (`new_conn`, `packet`, `advance`).
//! - `conn`: the 64-byte [`Conn`]; `index`: the key → entry open-addressing index;
//!   `timers`: FIFO timer lanes, one per timeout value; `stats`: counters, estimator.
//! - [`tcp`]: the TCP state machine; [`ipvsadm`]: the command language and listings.
//! - [`sync`]: the connection synchronisation daemon: the master's decision (which
//!   entries to send, taken in [`Ipvs::count`]), the backup's [`Ipvs::apply_sync`], and
//!   (`sync::wire`) the message formats, [`sync::Sender`] and [`sync::decode`]. Its state
//!   lives in a side table that exists only once sync is configured.
//!
//! Memory: an entry costs its 64-byte slot in the slab, 5.3 to 10.7 bytes of index and
//! 4 bytes per timer item (stale items are at most about as many as live ones), about
//! 80 bytes in all (the kernel's is 288). Time: a connection's life (SYN, three more
//! packets, expiry) costs about 1800 instructions, a quarter of them the scheduler.
//!
//! Invariant: virtual time only; a timer fires exactly at its deadline, in
//! `(deadline, arming order)` order (a FIFO lane per timeout value). The estimator runs
//! at every multiple of 2 s, caught up inside `advance`; it arms no timer.
//!
//! Invariant: no `HashMap` and no per-process hash seed: the same calls give the same
//! table, bit for bit.

mod conn;
mod defense;
mod index;
pub mod ipvsadm;
mod key;
mod stats;
pub mod sync;
mod sysctl;
mod table;
pub mod tcp;
mod timers;

use std::net::{IpAddr, SocketAddr};

use lvs_sched::{Duration, Service, Time};

pub use self::conn::Conn;
pub use self::defense::{DEFENSE_PERIOD, DefenseLevel, DefenseStats, PAGE_BYTES};
use self::index::{Index, hash_words};
pub use self::key::{AF_INET, AF_INET6, AddrPort, ServiceKey};
use self::stats::{Counters, EST_PERIOD};
pub use self::stats::{Rates, Stats};
pub use self::sysctl::{OutOfRange, Sysctl};
use self::tcp::{TcpState, Timeouts};
use self::timers::Timers;
pub use lvs_sched::{
    DestConfig, DestId, Forwarding, Protocol, SchedFlag, SchedulerKind, SvcFlags, Tunnel, TunnelType,
};

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
    /// Persistence engine (`--pe`); the table models none, [`ipvsadm::apply`] refuses one.
    pub pe: Option<PersistenceEngine>,
}

/// A persistence engine (`--pe NAME`, `IPVS_SVC_ATTR_PE_NAME`): persistence keyed on
/// something else than the client address. Linux has one, `ip_vs_pe_sip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PersistenceEngine {
    /// `sip`: persistence by SIP Call-ID.
    Sip,
}

impl PersistenceEngine {
    /// The name ipvsadm and netlink use.
    pub const fn name(self) -> &'static str {
        match self {
            PersistenceEngine::Sip => "sip",
        }
    }

    /// The engine called `name`.
    pub fn from_name(name: &str) -> Option<PersistenceEngine> {
        (name == "sip").then_some(PersistenceEngine::Sip)
    }
}

impl ServiceConfig {
    /// ipvsadm's defaults: wlc, no flags, not persistent, /32.
    pub fn new(scheduler: SchedulerKind) -> Self {
        ServiceConfig {
            scheduler,
            flags: SvcFlags::default(),
            persistence: None,
            netmask: u32::MAX,
            pe: None,
        }
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
    /// `-EINVAL`: a real server of another address family than its service's that is
    /// not tunnelled (`ip_vs_genl_set_cmd()`: only a tunnel crosses families).
    #[error("a real server of another address family than the service's must be tunnelled (EINVAL)")]
    FamilyMismatch,
    /// `-EINVAL`: a GUE tunnel without a port (`ip_vs_add_dest()`, `ip_vs_edit_dest()`).
    #[error("a GUE tunnel needs a port (EINVAL)")]
    TunnelPort,
    /// Something the table does not model (e.g. `--pe sip`); what, in ipvsadm's words.
    #[error("{0} is not modelled by the simulator's IPVS table")]
    NotModelled(&'static str),
    /// A real-server refusal.
    #[error(transparent)]
    Dest(#[from] lvs_sched::Error),
}

impl IpvsError {
    /// The kernel's errno for this refusal, positive (Linux numbering: `ESRCH` 3,
    /// `ENOENT` 2, `EEXIST` 17, `EINVAL` 22, `ERANGE` 34), as IPVS's netlink and
    /// sockopt calls return it negated. [`IpvsError::NotModelled`], which a kernel would
    /// accept, is `EOPNOTSUPP` (95).
    pub const fn errno(&self) -> i32 {
        const ENOENT: i32 = 2;
        const ESRCH: i32 = 3;
        const EEXIST: i32 = 17;
        const EINVAL: i32 = 22;
        const ERANGE: i32 = 34;
        const EOPNOTSUPP: i32 = 95;
        match self {
            IpvsError::NotModelled(_) => EOPNOTSUPP,
            IpvsError::ServiceExists => EEXIST,
            IpvsError::NoSuchService => ESRCH,
            IpvsError::FamilyMismatch | IpvsError::TunnelPort => EINVAL,
            IpvsError::Dest(lvs_sched::Error::DestExists) => EEXIST,
            IpvsError::Dest(lvs_sched::Error::NoSuchDest) => ENOENT,
            IpvsError::Dest(lvs_sched::Error::WeightRange(_) | lvs_sched::Error::ThresholdRange { .. }) => {
                ERANGE
            }
        }
    }
}

/// Handle of a connection entry or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Index of a virtual service in its table, stable for the table's life (a deleted
/// service keeps its index; a re-added one gets a new index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

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

/// A virtual service and its scheduler.
#[derive(Clone, Debug)]
pub struct VirtualService {
    id: ServiceId,
    key: ServiceKey,
    /// Hash of `key`, the service part of its templates' index key.
    key_hash: u64,
    config: ServiceConfig,
    sched: Service,
    /// The service's counters (`--stats`, `--rate`).
    counters: Counters,
    /// Counters of its real servers, by [`DestId`] (deleted ones kept, as the kernel's
    /// trash keeps them for a server added again).
    dests: Vec<Counters>,
    /// False once deleted: connections still refer to it, lookups no longer find it.
    linked: bool,
}

impl VirtualService {
    /// Its index in the table.
    pub fn id(&self) -> ServiceId {
        self.id
    }
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
        self.counters.stats.conns
    }
    /// Its counters, as `ipvsadm -L -n --stats` shows them.
    pub fn stats(&self) -> Stats {
        self.counters.stats
    }
    /// Its estimated rates, as `ipvsadm -L -n --rate` shows them.
    pub fn rates(&self) -> Rates {
        self.counters.rates()
    }
    /// A real server's counters (zero for a server never added).
    pub fn dest_stats(&self, dest: DestId) -> Stats {
        self.dests.get(dest.index()).map(|c| c.stats).unwrap_or_default()
    }
    /// A real server's estimated rates.
    pub fn dest_rates(&self, dest: DestId) -> Rates {
        self.dests.get(dest.index()).map(Counters::rates).unwrap_or_default()
    }
    /// False once deleted (`ipvsadm -D`/`-C`); its entries live on until they expire.
    pub fn is_linked(&self) -> bool {
        self.linked
    }
}

/// What becomes of a packet at the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded to the entry's real server.
    Accept,
    /// Not forwarded: dropped (the real server is deleted), or not IPVS's (no entry).
    Drop,
}

/// The IPVS sysctls the model honours (`/proc/sys/net/ipv4/vs/`, documented in the
/// kernel's `Documentation/networking/ipvs-sysctl.rst`), with the kernel's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysctls {
    /// `expire_nodest_conn`: an entry whose real server is deleted expires at the next
    /// packet (instead of dropping packets until it times out), a SYN for one on a
    /// weight-0 server is scheduled afresh, and deleting a real server flushes its
    /// entries.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: a persistence template whose real server has weight
    /// 0 is invalidated at the next new connection, instead of keeping its clients.
    pub expire_quiescent_template: bool,
    /// `sloppy_tcp`: any TCP segment without RST that finds no entry is scheduled (not
    /// only a SYN): a connection that another director started survives on this one
    /// when the scheduler picks the same real server (mh, sh).
    pub sloppy_tcp: bool,
    /// `sloppy_sctp`: the same for SCTP (any chunk, not only INIT).
    pub sloppy_sctp: bool,
    /// `conn_reuse_mode` (bits; default 1): 1 = a SYN finding an entry in TIME_WAIT or
    /// CLOSE (not controlled by a template) expires it and is scheduled afresh; 2 = also
    /// FIN_WAIT of a DR/TUN entry; 0 = the old entry is reused.
    pub conn_reuse_mode: u8,
    /// `amemthresh` [pages of 4 KiB]: below this much available memory the automatic
    /// defence modes (1, 2) switch on. Default 1024.
    pub amemthresh: i64,
    /// `am_droprate`: `drop_packet` mode 3 drops one new connection in this many.
    /// Default 10.
    pub am_droprate: u32,
    /// `drop_entry` mode 0..=3 (0 off, 1/2 automatic, 3 always): randomly drop entries
    /// of half-open and idle connections, 1/32 of the table a second.
    pub drop_entry: u8,
    /// `drop_packet` mode 0..=3: drop new connections at a rate that rises as memory
    /// runs out (mode 3: one in `am_droprate`).
    pub drop_packet: u8,
    /// `secure_tcp` mode 0..=3: the stricter TCP state table (`tcp_states_dos`).
    pub secure_tcp: u8,
}

impl Default for Sysctls {
    fn default() -> Self {
        Sysctls {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            conn_reuse_mode: 1,
            amemthresh: 1024,
            am_droprate: 10,
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
        }
    }
}

/// The director's memory as `update_defense_level()` sees it (`si_meminfo()`: free
/// plus buffer pages), which the connection entries themselves use up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Free and buffer memory with an empty table [pages of 4 KiB].
    pub avail_pages: i64,
    /// What one entry costs (the `ip_vs_conn` slab object) [bytes].
    pub entry_bytes: u32,
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
    /// The real server, in its service's [`Service::dest`].
    pub dest_id: DestId,
    /// The service.
    pub service: ServiceId,
    /// [`Verdict::Drop`] when the packet belongs to an existing entry whose real server
    /// is deleted (expire_nodest_conn=0): nothing was scheduled.
    pub verdict: Verdict,
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
    /// Not a packet that starts a connection (a TCP segment other than a SYN without
    /// `sloppy_tcp`, or with RST): IPVS lets it pass to the director's own stack, which
    /// answers a TCP segment for a local VIP with a reset.
    #[error("not the first packet of a connection")]
    NotNew,
    /// Dropped by the `drop_packet` defence (`ip_vs_todrop()`).
    #[error("dropped by drop_packet")]
    DefenseDrop,
    /// No memory for a new entry (`kmem_cache_alloc()` failed): the packet is dropped.
    #[error("no memory for a connection entry")]
    NoMemory,
}

/// The IPVS state of one director (one network namespace).
///
/// Call order, per connection: [`Ipvs::new_conn`] for its first packet, then
/// [`Ipvs::packet`] for each later one, each followed by [`Ipvs::count`] of its message;
/// [`Ipvs::advance`] lets virtual time pass (every call also advances first), and
/// [`Ipvs::next_deadline`] says when the next entry expires, so a simulator can
/// interleave expiries with its own events. Connection sync: see [`sync`].
#[derive(Debug)]
pub struct Ipvs {
    seed: u64,
    services: Vec<VirtualService>,
    /// The slab of entries; `None` slots are listed in `free`.
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    /// Hashed connections by `<protocol, caddr, cport, vaddr, vport>`.
    by_key: Index,
    /// Hashed templates by `<service key, masked caddr>`.
    templates: Index,
    timers: Timers,
    /// No timer is due before this (a lower bound of the earliest deadline, so that
    /// `advance` between deadlines costs nothing).
    next_due: Time,
    /// Entries freed by their timer.
    expired: u64,
    /// Counters of the whole table (`/proc/net/ip_vs_stats`).
    total: Counters,
    /// The estimators' next run.
    next_tick: Time,
    timeouts: Timeouts,
    sysctls: Sysctls,
    /// The director's memory, for the defence sysctls (`None`: never short of memory).
    memory: Option<Memory>,
    now: Time,
    /// Connection sync state (`None`, and no cost, until sync is configured).
    sync: Option<sync::SyncTable>,
    /// The DoS defences' state (`defense.rs`).
    defense: defense::Defense,
}

impl Ipvs {
    /// An empty table; `seed` feeds the schedulers that draw random numbers.
    pub fn new(seed: u64) -> Ipvs {
        Ipvs {
            seed,
            services: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            by_key: Index::default(),
            templates: Index::default(),
            timers: Timers::default(),
            next_due: timers::NEVER,
            expired: 0,
            total: Counters::running(),
            next_tick: Time::ZERO + EST_PERIOD,
            timeouts: Timeouts::default(),
            sysctls: Sysctls::default(),
            memory: None,
            now: Time::ZERO,
            sync: None,
            defense: defense::Defense::new(seed),
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

    /// The sysctls.
    pub fn sysctls(&self) -> Sysctls {
        self.sysctls
    }

    /// The sysctls, to change.
    pub fn sysctls_mut(&mut self) -> &mut Sysctls {
        &mut self.sysctls
    }

    /// The director's memory as the defence sysctls see it (`None`, the default: never
    /// short of memory).
    pub fn set_memory(&mut self, memory: Option<Memory>) {
        self.memory = memory;
    }

    /// See [`Ipvs::set_memory`].
    pub fn memory(&self) -> Option<Memory> {
        self.memory
    }

    /// Virtual services in creation order.
    pub fn services(&self) -> impl Iterator<Item = &VirtualService> {
        self.services.iter().filter(|s| s.linked)
    }

    /// A service by key.
    pub fn service(&self, key: &ServiceKey) -> Option<&VirtualService> {
        self.service_index(key).map(|i| &self.services[i])
    }

    /// The id of the (linked) service with this key.
    pub fn service_id(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.service_index(key).map(|i| ServiceId(i as u32))
    }

    /// A service by id, deleted ones included (their entries may still be live).
    ///
    /// # Panics
    /// If no service ever had this id.
    pub fn service_by_id(&self, id: ServiceId) -> &VirtualService {
        &self.services[id.0 as usize]
    }

    fn service_index(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.linked && s.key == *key)
    }

    /// `ipvsadm -A`.
    pub fn add_service(&mut self, key: ServiceKey, config: ServiceConfig) -> Result<(), IpvsError> {
        if self.service_index(&key).is_some() {
            return Err(IpvsError::ServiceExists);
        }
        assert!(self.services.len() < u32::MAX as usize, "2^32 virtual services created");
        let mut flags = config.flags;
        if config.persistence.is_some() {
            flags.0 |= SvcFlags::PERSISTENT;
        }
        let seed = self.seed ^ (self.services.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let sched = Service::new(config.scheduler, flags, seed, self.now);
        let key_hash = service_key_hash(&key);
        let id = ServiceId(self.services.len() as u32);
        let counters = Counters::running();
        let svc =
            VirtualService { id, key, key_hash, config, sched, counters, dests: Vec::new(), linked: true };
        self.services.push(svc);
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
        svc.counters.running = false;
        let dests: Vec<_> = svc.sched.dests().map(|(_, d)| (d.addr(), d.port())).collect();
        for (a, p) in dests {
            let id = svc.sched.del_dest(a, p)?;
            svc.dests[id.index()].running = false;
        }
        if self.sysctls.expire_nodest_conn {
            self.flush_nodest_conns();
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
        let svc = self.service_mut(&key)?;
        check_dest(&key, cfg)?;
        let id = svc.sched.add_dest(cfg)?;
        // A server from the trash keeps its counters and averages; its estimator runs
        // again (`ip_vs_start_estimator()`).
        if svc.dests.len() <= id.index() {
            svc.dests.resize_with(id.index() + 1, Counters::default);
        }
        svc.dests[id.index()].running = true;
        Ok(id)
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, key: ServiceKey, cfg: &DestConfig) -> Result<DestId, IpvsError> {
        let svc = self.service_mut(&key)?;
        check_dest(&key, cfg)?;
        Ok(svc.sched.edit_dest(cfg)?)
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: ServiceKey, addr: IpAddr, port: u16) -> Result<DestId, IpvsError> {
        let svc = self.service_mut(&key)?;
        let id = svc.sched.del_dest(addr, port)?;
        svc.dests[id.index()].running = false;
        if self.sysctls.expire_nodest_conn {
            self.flush_nodest_conns();
        }
        Ok(id)
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
        self.conn(id).map(|c| &self.services[c.svc_index()])
    }

    /// Number of live entries found by lookups (connections and templates; not an
    /// invalidated template still waiting for its timer).
    pub fn conn_count(&self) -> usize {
        self.by_key.len() + self.templates.len()
    }

    /// The whole table's counters (`/proc/net/ip_vs_stats`).
    pub fn stats(&self) -> Stats {
        self.total.stats
    }

    /// The whole table's estimated rates.
    pub fn rates(&self) -> Rates {
        self.total.rates()
    }

    /// True if `id` is a live (not template) entry of `flow`'s connection: a handle kept
    /// across time may outlive its entry, whose slot is then reused.
    pub fn entry_matches(&self, id: ConnId, flow: &lvs_sched::Flow) -> bool {
        let key = conn::ConnKey::new(flow.protocol, flow.saddr, flow.sport, flow.daddr, flow.dport);
        self.conns
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.state() != ConnState::Template && c.is_key(&key))
    }

    /// The hashed connection entry of `flow` (`<protocol, caddr, cport, vaddr, vport>`),
    /// whoever created it (a packet here, or a sync record): what a director finds for a
    /// connection whose packets reach it after a fail-over. Never a template.
    pub fn find_conn(&self, flow: &lvs_sched::Flow) -> Option<ConnId> {
        let key = conn::ConnKey::new(flow.protocol, flow.saddr, flow.sport, flow.daddr, flow.dport);
        let conns = &self.conns;
        let found =
            self.by_key.find(key.hash(), |i| conns[i as usize].as_ref().is_some_and(|c| c.is_key(&key)));
        found.map(ConnId)
    }

    /// Traffic of connection `id`: a message of `pkts` packets of `bytes` bytes (L3
    /// length) in all, to the client if `output`. Counted on its real server, its service
    /// and the table, as `ip_vs_in_stats()`/`ip_vs_out_stats()` do: not at all once the
    /// real server is deleted. Nothing for an expired entry or a template.
    ///
    /// With sync configured, an incoming message also advances the entry's packet count,
    /// and a master decides whether to send the entry (after [`Ipvs::packet`] moved its
    /// state): see [`sync`].
    pub fn count(&mut self, id: ConnId, output: bool, pkts: u64, bytes: u64) {
        let Some(c) = self.conn(id).filter(|c| c.state() != ConnState::Template) else { return };
        let (svc, dest) = (c.service(), c.dest());
        self.count_on(svc, dest, output, pkts, bytes);
        // cp->in_pkts, which drop_entry reads, kept once the defences may need it.
        if !output && (self.memory.is_some() || self.sysctls.drop_entry != 0) {
            self.defense.count_in(id, pkts);
        }
        if !output && self.sync.is_some() && self.services[svc.0 as usize].sched.dest(dest).is_available() {
            self.sync_incoming(id, pkts);
        }
    }

    /// Traffic of a connection of service `svc` on real server `dest` that has no entry
    /// any more, such as the datagram of a one-packet UDP connection: see
    /// [`Ipvs::count`].
    pub fn count_on(&mut self, svc: ServiceId, dest: DestId, output: bool, pkts: u64, bytes: u64) {
        let s = &mut self.services[svc.0 as usize];
        if !s.sched.dest(dest).is_available() {
            return;
        }
        s.dests[dest.index()].add(output, pkts, bytes);
        s.counters.add(output, pkts, bytes);
        self.total.add(output, pkts, bytes);
    }

    /// Run the estimators due by `now` (every 2 s of virtual time). Once nothing moves
    /// and every average is 0, the remaining runs up to `now` would change nothing and
    /// are skipped: a long idle stretch costs one run, not one per 2 s.
    fn run_estimators(&mut self, now: Time) {
        // `next_tick < Time::MAX`: at the end of time (where additions saturate) the
        // loop would never end.
        while self.next_tick <= now && self.next_tick < Time::MAX {
            let mut busy = self.total.tick();
            for svc in self.services.iter_mut().filter(|s| s.linked) {
                busy |= svc.counters.tick();
                for d in svc.dests.iter_mut().filter(|d| d.running) {
                    busy |= d.tick();
                }
            }
            self.next_tick += EST_PERIOD;
            if !busy && self.next_tick <= now {
                let periods = (now - self.next_tick).0 / EST_PERIOD.0 + 1;
                self.next_tick = Time(self.next_tick.0.saturating_add(periods.saturating_mul(EST_PERIOD.0)));
            }
        }
    }

    /// Heap bytes held by the connection table: the entry slab and its free list, the
    /// two indexes, the timer lanes and the sync side table (services and real servers
    /// excluded).
    pub fn heap_bytes(&self) -> usize {
        self.conns.capacity() * size_of::<Option<Conn>>()
            + self.free.capacity() * size_of::<u32>()
            + self.by_key.heap_bytes()
            + self.templates.heap_bytes()
            + self.timers.heap_bytes()
            + self.sync.as_ref().map_or(0, sync::SyncTable::heap_bytes)
            + self.defense.heap_bytes()
    }
}

/// The kernel's EINVAL checks of a real server before the table's own (weight and
/// thresholds, then existence, in `lvs_sched::Service`).
fn check_dest(key: &ServiceKey, cfg: &DestConfig) -> Result<(), IpvsError> {
    // Mirrors ip_vs_genl_set_cmd(): another family than the service's only for tunnels.
    if cfg.addr.is_ipv6() != key.is_ipv6() && cfg.fwd != Forwarding::Tunnel {
        return Err(IpvsError::FamilyMismatch);
    }
    // Mirrors ip_vs_add_dest()/ip_vs_edit_dest() (kernel 5.2+).
    if cfg.tunnel.kind == TunnelType::Gue && cfg.tunnel.port == 0 {
        return Err(IpvsError::TunnelPort);
    }
    Ok(())
}

/// The hash of a service key, as the service part of a template's index key.
fn service_key_hash(key: &ServiceKey) -> u64 {
    match *key {
        ServiceKey::Addr { protocol, addr, port } => {
            let (w, v6) = conn::addr_words(addr);
            let tail = (u64::from(port) << 16) | ((protocol as u64) << 8) | u64::from(v6);
            hash_words([
                (u64::from(w[0]) << 32) | u64::from(w[1]),
                (u64::from(w[2]) << 32) | u64::from(w[3]),
                tail,
            ])
        }
        ServiceKey::Fwmark { mark: m, .. } => hash_words([u64::from(m), 0xFF]),
    }
}

#[cfg(test)]
mod tests;
