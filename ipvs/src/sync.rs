//! The IPVS connection synchronisation daemon (`ip_vs_sync.c`; `../ipvs/SPEC.md` §4):
//! which connections a master director sends, how they are packed into messages (the
//! kernel's version 0 and 1 wire formats, `wire`), and how a backup director enters them
//! in its own table.
//!
//! ```text
//!  master director                                          backup director
//!  Ipvs::packet, Ipvs::count: decision                       (UDP multicast 224.0.0.81:8848)
//!    └─> Ipvs::take_synced ─> Sender::push/flush ──bytes──> decode ─> Ipvs::apply_sync
//! ```
//!
//! Call order on a master: [`Ipvs::set_sync_master`] once; per message of a connection
//! [`Ipvs::packet`] (or [`Ipvs::new_conn`]) then [`Ipvs::count`], which takes the decision;
//! then [`Ipvs::take_synced`] drains the records in decision order into a [`Sender`], whose
//! [`Sender::push`] returns a full message and [`Sender::flush`] a partly filled one once
//! [`Sender::next_flush`] is due. On a backup: [`decode`] each message and
//! [`Ipvs::apply_sync`] each record ([`Ipvs::set_sync_params`] first if the sysctls are not
//! the kernel's defaults).
//!
//! # The decision (`ip_vs_sync_conn()`, `ip_vs_sync_conn_needed()`)
//!
//! Taken per incoming message (`count` with `output == false`), a train of `k` packets:
//! the entry's `in_pkts` goes from `n` to `n + k`, and the connection is queued once if
//! the test below passes for any packet number in `(n, n + k]`. `sync_refresh_period = 0`
//! (the kernel's default), `sync_persist_mode = 0`.
//! - TCP (and SCTP, whose entries use the TCP states here) only in ESTABLISHED, FIN_WAIT,
//!   CLOSE, CLOSE_WAIT and TIME_WAIT. In any other of these than ESTABLISHED, a state
//!   other than the one of the last sync decision (`cp->old_state`, NONE for a new entry,
//!   the received state for a synced one) is sent at once ("force"): a FIN, or a state a
//!   reply (NAT) moved the entry to since. Otherwise the packet test.
//! - The packet test: with `period > 0`, `pkts % period == threshold` (packets 3, 53,
//!   103, ...); with `period == 0`, `pkts == threshold` only. UDP has no states: the
//!   packet test alone.
//! - The controlling persistence template, with its own `in_pkts`, skips the packet test
//!   when `period > 0` (with `period == 0` it is sent when its own count reaches the
//!   threshold) and is queued after its connection. Version 1 (`ip_vs_sync_conn()`)
//!   goes to the controller at every incoming packet, whether or not the connection was
//!   sent, so a persistent connection's template is sent with each of its incoming
//!   messages; version 0 (`ip_vs_sync_conn_v0()`) only after sending the connection,
//!   once per time it was. SPEC §4's "the controlling template of a synced conn" is the
//!   version 0 rule; the kernel is followed.
//! - Version 0 syncs IPv4 entries only (nor their templates).
//! - A template whose timer fires while it still controls connections is re-armed for
//!   60 s and sent then (`ip_vs_conn_expire()`), its record's timeout 60 s.
//!
//! # Simplifications
//! - The kernel's `cp->in_pkts` and `cp->old_state` live in a side table indexed by
//!   [`ConnId`], which exists only once sync is configured (the 64-byte entry does not
//!   grow); entries older than it count packets from 0. Entries without a table entry (one-packet UDP,
//!   [`Ipvs::count_on`]) are never sent; the kernel would send a persistent one-packet
//!   service's template.
//! - A connection's firewall mark is its service's (the kernel sends the packet's mark,
//!   also for a protocol/VIP/port service). Sequence-adjustment data (`IN_SEQ`/`OUT_SEQ`,
//!   the FTP helper) and persistence-engine data are not modelled: never sent; received
//!   SEQ options are checked and dropped, a record with PE data is skipped (no engine).
//! - On a backup, a record whose service or real server does not exist locally is
//!   refused ([`SyncRefused`]); the kernel keeps a dest-less entry and binds it when a
//!   later record finds the server. Activity (ActiveConn/InActConn) follows the state,
//!   as on the master, where the kernel follows the record's INACTIVE flag (which a
//!   master keeps equal). Forwarding comes from the local real server, as in the kernel.
//! - A synced connection is not linked to a synced template: `ip_vs_proc_conn()` never
//!   links them either, so a backup's template lives on its own timer (refreshed by the
//!   master's records of it) and is then found by persistence like a local one.

mod wire;

pub use self::wire::{DecodeError, Header, MAX_LEN, Sender, decode, parse_header};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvs_sched::{ConnCount, DestId, Duration, Forwarding, Protocol, Time};

use super::conn::ConnKey;
use super::table::{conn_hash, template_hash, template_hash_of};
use super::tcp::TcpState;
use super::timers::NO_LANE;
use super::{Conn, ConnId, ConnState, Ipvs, ServiceKey};

/// Who runs the IPVS sync daemon, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `ipvsadm --start-daemon master` on the group's first member, `backup` on the
    /// others, fixed: connections made on a backup after a fail-over are synced nowhere.
    #[default]
    MasterBackup,
    /// Every member sends the connections it handles to every other and receives theirs
    /// (master and backup daemons on each, or a user-space peer-to-peer sync).
    PeerToPeer,
}

/// The IPVS connection synchronisation daemon (`../ipvs/SPEC.md` §4; sysctls
/// `sync_threshold`, `sync_period`, `sync_version`, `--sync-maxlen`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncConfig {
    /// Who sends and who receives.
    pub mode: SyncMode,
    /// A connection is sent at its `threshold`-th incoming packet (default 3) ...
    pub threshold: u32,
    /// ... and then every `period` packets (default 50); 0: only once.
    pub period: u32,
    /// Sync message size limit [bytes of UDP payload] (1500 − 28 = 1472 by default).
    pub max_len: u32,
    /// Protocol version: 1 (default; 36-byte IPv4 connections) or 0 (legacy; 24 bytes).
    pub version: u8,
    /// A partly filled message is sent at most this long after its first connection
    /// (`IPVS_SYNC_FLUSH_TIME`, 2 s).
    pub flush: Duration,
    /// One-way delay of the sync multicast between directors.
    pub latency: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            mode: SyncMode::MasterBackup,
            threshold: 3,
            period: 50,
            max_len: 1472,
            version: 1,
            flush: Duration::from_secs(2),
            latency: Duration::from_micros(100),
        }
    }
}

/// Connection flags (`IP_VS_CONN_F_*`) as sync records carry them.
pub mod flags {
    /// Forwarding method: 0 NAT, 1 local, 2 tunnel, 3 direct routing, 4 bypass.
    pub const FWD_MASK: u32 = 0x0007;
    /// Entry created by sync (set by the receiver).
    pub const SYNC: u32 = 0x0020;
    /// Hashed entry (never sent).
    pub const HASHED: u32 = 0x0040;
    /// Replies do not pass the director (DR, TUN).
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted in InActConn (not established).
    pub const INACTIVE: u32 = 0x0100;
    /// Output sequence adjustment.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Input sequence adjustment.
    pub const IN_SEQ: u32 = 0x0400;
    /// Both sequence-adjustment bits.
    pub const SEQ_MASK: u32 = 0x0600;
    /// Client port not known yet (FTP).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// A one-packet entry (never sent).
    pub const ONE_PACKET: u32 = 0x2000;
}

/// `IPPROTO_IP`: the protocol of a firewall-mark service's template.
pub const IPPROTO_IP: u8 = 0;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u8 = 132;

/// A received template without a timeout (version 0) lives this long
/// (`ip_vs_proc_conn()`).
const V0_TEMPLATE_TIMEOUT: Duration = Duration::from_secs(180);

/// The TCP states in which a connection is synced.
const SYNCED_STATES: u16 = 1 << TcpState::Established as u16
    | 1 << TcpState::FinWait as u16
    | 1 << TcpState::Close as u16
    | 1 << TcpState::CloseWait as u16
    | 1 << TcpState::TimeWait as u16;

/// The sync sysctls of a director: `sync_threshold`, `sync_period`, `sync_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncParams {
    /// First packet number at which a connection is sent (default 3); a backup sets a
    /// received entry's packet count to it.
    pub threshold: u32,
    /// Then every `period` packets (default 50); 0: once.
    pub period: u32,
    /// Message format: 1 (default) or 0, which also changes the template rule.
    pub version: u8,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams { threshold: 3, period: 50, version: 1 }
    }
}

impl From<&SyncConfig> for SyncParams {
    fn from(c: &SyncConfig) -> Self {
        SyncParams { threshold: c.threshold, period: c.period, version: c.version }
    }
}

impl SyncParams {
    /// The kernel refuses `sync_threshold` with `threshold >= period > 0` (EINVAL) and a
    /// version other than 0 or 1; a configuration must have been validated.
    fn check(self) {
        assert!(self.version <= 1, "sync_version {} (0 or 1)", self.version);
        assert!(
            self.period == 0 || self.threshold < self.period,
            "sync_threshold {} {}: the threshold must be below a non-zero period",
            self.threshold,
            self.period
        );
    }
}

/// What a version 1 sync record carries for one connection entry or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol number: [`IPPROTO_TCP`], [`IPPROTO_UDP`], [`IPPROTO_SCTP`]; a
    /// firewall-mark service's template has [`IPPROTO_IP`].
    pub protocol: u8,
    /// Client address (a template: masked with the persistence granularity).
    pub caddr: IpAddr,
    /// Client port (a template: 0).
    pub cport: u16,
    /// Virtual address (a firewall-mark template: the mark, as an address).
    pub vaddr: IpAddr,
    /// Virtual port (a firewall-mark template: 0).
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port (a firewall-mark template: 0).
    pub dport: u16,
    /// Firewall mark, 0 if none.
    pub fwmark: u32,
    /// Protocol state; [`ConnState::Template`] for a template (its TEMPLATE flag is sent
    /// from this).
    pub state: ConnState,
    /// Kernel flags ([`flags`]): forwarding method, NOOUTPUT, INACTIVE, TEMPLATE.
    pub flags: u32,
    /// The entry's current timeout \[s\] (a template: its persistence timeout, or 60 s once
    /// it outlived its controlling connections); 0 in version 0 records, whose receiver
    /// uses its own state timeout (templates 180 s).
    pub timeout: u32,
}

/// Why a backup did not enter a record in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncRefused {
    /// No local virtual service has the record's firewall mark or protocol, VIP and port
    /// (the kernel would keep an entry bound to no real server).
    #[error("no local virtual service for the synced connection")]
    NoService,
    /// The service has no such real server (the kernel would keep an unbound entry).
    #[error("no local real server for the synced connection")]
    NoDest,
    /// The connection's entry is bound to another real server and the record says it is
    /// inactive: the expiry record of a connection already replaced, ignored.
    #[error("record of a connection already replaced")]
    Stale,
    /// Not an entry the table can hold: a protocol other than TCP, UDP, SCTP, a state of
    /// another protocol, or addresses of two families.
    #[error("malformed sync record")]
    Invalid,
}

/// One entry's sync state (the kernel's `cp->in_pkts` and `cp->old_state`).
#[derive(Clone, Copy, Debug)]
struct SyncEntry {
    /// Incoming packets counted so far (wrapping, as the kernel's `atomic_t`).
    in_pkts: u32,
    /// The state at the last decision that sent the entry (or its creation).
    old_state: TcpState,
}

impl SyncEntry {
    const NEW: SyncEntry = SyncEntry { in_pkts: 0, old_state: TcpState::None };
}

/// The table's sync state; exists only once sync is configured.
#[derive(Debug)]
pub(super) struct SyncTable {
    params: SyncParams,
    /// A master daemon runs: incoming packets are decided on.
    master: bool,
    /// By [`ConnId`]; as long as the slab.
    entries: Vec<SyncEntry>,
    /// Records decided on and not yet taken.
    queue: Vec<SyncConn>,
}

impl SyncTable {
    fn new(slab_len: usize, params: SyncParams) -> SyncTable {
        SyncTable { params, master: false, entries: vec![SyncEntry::NEW; slab_len], queue: Vec::new() }
    }

    /// Slot `id` holds a new entry.
    pub(super) fn reset(&mut self, id: ConnId) {
        let i = id.0 as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, SyncEntry::NEW);
        }
        self.entries[i] = SyncEntry::NEW;
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<SyncEntry>() + self.queue.capacity() * size_of::<SyncConn>()
    }
}

/// Packet numbers in `(n, n + k]` that pass the packet test.
fn passes(n: u64, k: u64, p: SyncParams) -> u64 {
    let (thr, end) = (u64::from(p.threshold), n + k);
    if p.period == 0 {
        return u64::from(n < thr && thr <= end);
    }
    let period = u64::from(p.period);
    if thr >= period {
        return 0;
    }
    // Numbers in [0, x] congruent to the threshold.
    let upto = |x: u64| if x >= thr { (x - thr) / period + 1 } else { 0 };
    upto(end) - upto(n)
}

/// Of the packets `(n, n + k]` of a connection in `state`, how many the kernel would
/// send it at; moves `old` to the state when it sends.
fn conn_sends(state: ConnState, old: &mut TcpState, n: u64, k: u64, p: SyncParams) -> u64 {
    match state {
        ConnState::Tcp(s) => {
            if SYNCED_STATES & (1 << s as u16) == 0 {
                return 0;
            }
            // The state changes with the message's first packet; once sent, `old` is it.
            let force = s != *old && s != TcpState::Established;
            let sends = if force { 1 + passes(n + 1, k - 1, p) } else { passes(n, k, p) };
            if sends > 0 {
                *old = s;
            }
            sends
        }
        ConnState::Udp => passes(n, k, p),
        ConnState::Template => template_sends(n, k, p),
    }
}

/// Of `k` considerations of a template whose count was `n`, how many send it.
fn template_sends(n: u64, k: u64, p: SyncParams) -> u64 {
    if p.period > 0 { k } else { passes(n, k, p) }
}

fn protocol_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

/// A firewall mark as the kernel puts it in a template's virtual address.
fn fwmark_addr(mark: u32, v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::from(u128::from(mark) << 96)) } else { IpAddr::V4(Ipv4Addr::from(mark)) }
}

/// Whole seconds, as the kernel sends `cp->timeout / HZ`.
fn whole_secs(d: Duration) -> u32 {
    u32::try_from(d.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX)
}

/// The protocol key of a record, if the table can hold it.
fn record_protocol(c: &SyncConn) -> Result<Protocol, SyncRefused> {
    let v6 = c.caddr.is_ipv6();
    if c.vaddr.is_ipv6() != v6 || c.daddr.is_ipv6() != v6 {
        return Err(SyncRefused::Invalid);
    }
    match (c.protocol, c.state) {
        // A template's protocol only names its key; IPPROTO_IP (firewall mark) is stored
        // as TCP, which no lookup reads.
        (IPPROTO_UDP, ConnState::Template) => Ok(Protocol::Udp),
        (IPPROTO_SCTP, ConnState::Template) => Ok(Protocol::Sctp),
        (_, ConnState::Template) => Ok(Protocol::Tcp),
        (IPPROTO_TCP, ConnState::Tcp(_)) => Ok(Protocol::Tcp),
        (IPPROTO_SCTP, ConnState::Tcp(_)) => Ok(Protocol::Sctp),
        (IPPROTO_UDP, ConnState::Udp) => Ok(Protocol::Udp),
        _ => Err(SyncRefused::Invalid),
    }
}

impl Ipvs {
    /// The sync sysctls (`sync_threshold`, `sync_period`, `sync_version`) without
    /// starting a master: what a backup sets a received entry's packet count to, and what
    /// a later [`Ipvs::set_sync_master`] keeps. Creates the side table.
    ///
    /// # Panics
    /// On values the kernel refuses: a version other than 0 and 1, or
    /// `threshold >= period > 0`.
    pub fn set_sync_params(&mut self, params: SyncParams) {
        params.check();
        self.sync_table().params = params;
    }

    /// Start (`Some`, with the sysctls) or stop (`None`) the master sync daemon
    /// (`ipvsadm --start-daemon master`): while it runs, [`Ipvs::count`] decides per
    /// incoming message which entries to send, and [`Ipvs::take_synced`] drains them.
    /// Stopping keeps the side table and the records not yet taken.
    ///
    /// # Panics
    /// As [`Ipvs::set_sync_params`].
    pub fn set_sync_master(&mut self, params: Option<SyncParams>) {
        match params {
            Some(p) => {
                p.check();
                let t = self.sync_table();
                t.params = p;
                t.master = true;
            }
            None => {
                if let Some(t) = &mut self.sync {
                    t.master = false;
                }
            }
        }
    }

    /// The sync sysctls, once configured.
    pub fn sync_params(&self) -> Option<SyncParams> {
        self.sync.as_ref().map(|t| t.params)
    }

    /// Append the records decided on since the last call to `out`, in decision order (a
    /// connection before its template).
    pub fn take_synced(&mut self, out: &mut Vec<SyncConn>) {
        if let Some(t) = &mut self.sync {
            out.append(&mut t.queue);
        }
    }

    /// A backup receives record `c` at `now` (`ip_vs_proc_conn()`): the entry with its
    /// key (connection key, or service and client for a template) is updated (state,
    /// with its active/inactive count, and timer) or created, bound to the local real
    /// server `<daddr, dport>` of the local service with `c`'s firewall mark or protocol,
    /// VIP and port, counted on it (a template as a persistent one) but not in the
    /// connection statistics, in `c`'s state, its timer armed for `c.timeout` (0: the
    /// local state timeout, templates 180 s), its packet count set to the threshold. An
    /// entry of the key bound to another real server is replaced, unless the record says
    /// inactive. The entry behaves as any other afterwards: [`Ipvs::packet`] moves it,
    /// [`Ipvs::new_conn`]'s persistence finds a template, timers expire it.
    pub fn apply_sync(&mut self, now: Time, c: &SyncConn) -> Result<ConnId, SyncRefused> {
        self.advance(now);
        let proto = record_protocol(c)?;
        let timeout = match (c.timeout, c.state) {
            (0, ConnState::Template) => V0_TEMPLATE_TIMEOUT,
            (0, ConnState::Tcp(s)) => self.timeouts.tcp(s),
            (0, ConnState::Udp) => self.timeouts.udp,
            (t, _) => Duration::from_secs(u64::from(t)),
        };
        let threshold = self.sync_table().params.threshold;
        let id = match c.state {
            ConnState::Template => self.apply_template(c, proto)?,
            _ => self.apply_conn(c, proto)?,
        };
        self.arm(id, timeout);
        let old_state = match c.state {
            ConnState::Tcp(s) => s,
            _ => TcpState::None,
        };
        let t = self.sync.as_mut().expect("created above");
        t.entries[id.0 as usize] = SyncEntry { in_pkts: threshold, old_state };
        Ok(id)
    }

    fn sync_table(&mut self) -> &mut SyncTable {
        let n = self.conns.len();
        self.sync.get_or_insert_with(|| SyncTable::new(n, SyncParams::default()))
    }

    /// A template record: update the template of its service and client, or create one.
    fn apply_template(&mut self, c: &SyncConn, proto: Protocol) -> Result<ConnId, SyncRefused> {
        let svc_i = self.sync_service(c, proto).ok_or(SyncRefused::NoService)?;
        let key = ConnKey::new(proto, c.caddr, 0, c.vaddr, 0);
        if let Some(t) = self.find_template(svc_i, key.caddr()) {
            return Ok(t);
        }
        let dest = self.sync_dest(svc_i, c).ok_or(SyncRefused::NoDest)?;
        self.services[svc_i].sched.bind(dest, ConnCount::Template);
        let t = self.insert(Conn::new(&key, svc_i as u32, dest, ConnState::Template, true));
        let hash = template_hash(self.services[svc_i].key_hash, key.caddr());
        let (services, conns) = (&self.services, &self.conns);
        self.templates.insert(hash, t.0, |i| template_hash_of(services, conns, i));
        Ok(t)
    }

    /// A connection record: update the entry of its key, or create one.
    fn apply_conn(&mut self, c: &SyncConn, proto: Protocol) -> Result<ConnId, SyncRefused> {
        let key = ConnKey::new(proto, c.caddr, c.cport, c.vaddr, c.vport);
        let hash = key.hash();
        let conns = &self.conns;
        let found = self.by_key.find(hash, |i| conns[i as usize].as_ref().is_some_and(|e| e.is_key(&key)));
        if let Some(id) = found.map(ConnId) {
            if self.entry_dest(id) == (c.daddr, c.dport) {
                self.set_synced_state(id, c.state);
                return Ok(id);
            }
            // Bound elsewhere: an active record replaces the entry; an inactive one is
            // the expiry record of a connection replaced already.
            if c.flags & flags::INACTIVE != 0 {
                return Err(SyncRefused::Stale);
            }
            self.expire_now(id);
        }
        let svc_i = self.sync_service(c, proto).ok_or(SyncRefused::NoService)?;
        let dest = self.sync_dest(svc_i, c).ok_or(SyncRefused::NoDest)?;
        let sched = &mut self.services[svc_i].sched;
        // ip_vs_bind_dest() of a synced entry: the forwarding method is the local server's.
        let no_output = sched.dest(dest).fwd() != Forwarding::Masq;
        let conn = Conn::new(&key, svc_i as u32, dest, c.state, no_output);
        sched.bind(dest, conn.count());
        let id = self.insert(conn);
        let conns = &self.conns;
        self.by_key.insert(hash, id.0, |i| conn_hash(conns, i));
        Ok(id)
    }

    /// A received state for an existing entry, moving it between the active and inactive
    /// counts.
    fn set_synced_state(&mut self, id: ConnId, state: ConnState) {
        let c = self.conns[id.0 as usize].as_mut().expect("hashed entry exists");
        let before = c.count();
        c.set_state(state);
        let sched = &mut self.services[c.svc_index()].sched;
        match (before, c.count()) {
            (ConnCount::Inactive, ConnCount::Active) => sched.activate(c.dest()),
            (ConnCount::Active, ConnCount::Inactive) => sched.deactivate(c.dest()),
            _ => {}
        }
    }

    /// The real server address and port an entry sends to.
    fn entry_dest(&self, id: ConnId) -> (IpAddr, u16) {
        let c = self.conns[id.0 as usize].as_ref().expect("entry exists");
        let d = self.services[c.svc_index()].sched.dest(c.dest());
        (d.addr(), if d.port() == 0 { c.virtual_addr().port() } else { d.port() })
    }

    /// `ip_vs_service_find()` for a record: the firewall mark first, then protocol, VIP
    /// and port.
    fn sync_service(&self, c: &SyncConn, proto: Protocol) -> Option<usize> {
        let by_mark = (c.fwmark != 0).then(|| self.service_index(&ServiceKey::fwmark(c.fwmark)));
        by_mark.flatten().or_else(|| {
            let inet = ServiceKey::Addr { protocol: proto, addr: c.vaddr, port: c.vport };
            (c.protocol != IPPROTO_IP).then(|| self.service_index(&inet)).flatten()
        })
    }

    /// `ip_vs_find_dest()`: the real server `<daddr, dport>`, or `<daddr, 0>`; a
    /// firewall-mark service's DR or tunnel server by port 0 first.
    fn sync_dest(&self, svc_i: usize, c: &SyncConn) -> Option<DestId> {
        let sched = &self.services[svc_i].sched;
        let first = if c.fwmark != 0 && c.flags & flags::FWD_MASK != 0 { 0 } else { c.dport };
        sched.find_dest(c.daddr, first).or_else(|| sched.find_dest(c.daddr, first ^ c.dport))
    }

    /// The decision for an incoming message of `pkts` packets of entry `id`, which the
    /// director forwarded (`ip_vs_in()` → `ip_vs_sync_conn()`); see the module doc.
    #[inline(never)]
    pub(super) fn sync_incoming(&mut self, id: ConnId, pkts: u64) {
        let Some(t) = self.sync.as_mut() else { return };
        if pkts == 0 {
            return;
        }
        let c = self.conns[id.0 as usize].as_ref().expect("counted entry exists");
        let e = &mut t.entries[id.0 as usize];
        let n = u64::from(e.in_pkts);
        e.in_pkts = e.in_pkts.wrapping_add(pkts as u32);
        if !t.master || (t.params.version == 0 && c.caddr().1) {
            return;
        }
        let p = t.params;
        let sends = conn_sends(c.state(), &mut e.old_state, n, pkts, p);
        let mut queued = [(sends > 0).then_some(id), None];
        if let Some(tmpl) = c.control() {
            // Version 1 goes to the controller at every packet; version 0 after sending
            // the connection, once per time.
            let k = if p.version == 0 { sends } else { pkts };
            let e = &mut t.entries[tmpl.0 as usize];
            let tn = u64::from(e.in_pkts);
            e.in_pkts = e.in_pkts.wrapping_add(k as u32);
            if k > 0 && template_sends(tn, k, p) > 0 {
                queued[1] = Some(tmpl);
            }
        }
        for id in queued.into_iter().flatten() {
            let r = self.sync_record(id);
            self.sync.as_mut().expect("checked above").queue.push(r);
        }
    }

    /// Template `id`, still controlling connections, was re-armed for 60 s
    /// (`ip_vs_conn_expire()`'s `expire_later`): a master sends it with `pkts` =
    /// threshold, which a template always passes.
    pub(super) fn sync_expire_later(&mut self, id: ConnId) {
        let Some(t) = &self.sync else { return };
        let c = self.conns[id.0 as usize].as_ref().expect("re-armed entry exists");
        if !t.master || (t.params.version == 0 && c.caddr().1) {
            return;
        }
        let r = self.sync_record(id);
        self.sync.as_mut().expect("checked above").queue.push(r);
    }

    /// The record of entry `id` as `ip_vs_sync_conn()` fills it.
    fn sync_record(&self, id: ConnId) -> SyncConn {
        let c = self.conns[id.0 as usize].as_ref().expect("synced entry exists");
        let svc = &self.services[c.svc_index()];
        let d = svc.sched.dest(c.dest());
        let lane = c.timer().lane;
        let timeout = match c.state() {
            _ if lane != NO_LANE => self.timers.timeout(lane),
            ConnState::Tcp(s) => self.timeouts.tcp(s),
            ConnState::Udp => self.timeouts.udp,
            ConnState::Template => svc.config.persistence.unwrap_or(V0_TEMPLATE_TIMEOUT),
        };
        let (client, virt) = (c.client(), c.virtual_addr());
        let fwd = d.fwd().code();
        if c.state() == ConnState::Template {
            // ip_vs_sched_persist(): <protocol, caddr, 0, vaddr, vport, daddr, dport>, and
            // <IPPROTO_IP, caddr, 0, fwmark, 0, daddr, 0> for a firewall-mark service;
            // the flags of the real server (INACTIVE, NOOUTPUT unless NAT).
            let (protocol, vaddr, vport, dport, fwmark) = match svc.key {
                ServiceKey::Addr { protocol, addr, port } => {
                    (protocol_number(protocol), addr, port, d.port(), 0)
                }
                ServiceKey::Fwmark { mark: m, .. } => (IPPROTO_IP, fwmark_addr(m, client.is_ipv6()), 0, 0, m),
            };
            let no_output = if d.fwd() == Forwarding::Masq { 0 } else { flags::NOOUTPUT };
            return SyncConn {
                protocol,
                caddr: client.ip(),
                cport: 0,
                vaddr,
                vport,
                daddr: d.addr(),
                dport,
                fwmark,
                state: ConnState::Template,
                flags: fwd | no_output | flags::INACTIVE | flags::TEMPLATE,
                timeout: whole_secs(timeout),
            };
        }
        let no_output = if c.no_output() { flags::NOOUTPUT } else { 0 };
        let inactive = if c.count() == ConnCount::Active { 0 } else { flags::INACTIVE };
        SyncConn {
            protocol: protocol_number(c.protocol()),
            caddr: client.ip(),
            cport: client.port(),
            vaddr: virt.ip(),
            vport: virt.port(),
            daddr: d.addr(),
            dport: if d.port() == 0 { virt.port() } else { d.port() },
            fwmark: if let ServiceKey::Fwmark { mark: m, .. } = svc.key { m } else { 0 },
            state: c.state(),
            flags: fwd | no_output | inactive,
            timeout: whole_secs(timeout),
        }
    }
}

#[cfg(test)]
mod tests;
