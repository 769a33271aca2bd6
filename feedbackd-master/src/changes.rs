//! The console's changes applied in the daemon loop, and the operator's state kept across
//! restarts (`--state-file`, [`crate::state`]).
//!
//! Every change is checked before anything is touched: a bad value, an unknown server or
//! service, a refusal by the master, and nothing changes. Then:
//! - a real server's drain, maintenance, return, pin or unpin goes through the master
//!   ([`Master::handle_operator`]), whose table changes the daemon then applies as every
//!   other (the loop's flush);
//! - a real server's forwarding and thresholds go to the kernel (`Backend::edit_real_server`,
//!   every other field as the kernel has it);
//! - a virtual service is added, edited or removed through the backend, and the table read
//!   again at once.
//!
//! Every accepted change is journalled (`operator`, or `note`), and the state file rewritten.
//! At start-up [`Operator::restore`] re-applies the file: services missing from the kernel
//! are created again, servers in maintenance held out ([`Master::handle_held`]), drains and
//! pins applied once the master knows the server (kept pending until then).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use feedbackd_proto::Time;
use feedbackd_proto::master::{Hold, Master};
use feedbackd_proto::types::{RsKey, RsKeyText, ServerAction, ServiceText, Who};
use lvs_ipvs::ipvsadm::{Command, parse_line};
use lvs_ipvs::{DestConfig, Forwarding, ServiceConfig, ServiceKey};

use crate::console::Change;
use crate::ipvs::Backend;
use crate::log;
use crate::state::{Override, State, StateFile};
use crate::status::KernelView;

/// The most virtual services the console lets the table hold.
pub const MAX_SERVICES: usize = 4096;

/// The daemon's side of the operator's changes.
#[derive(Debug, Default)]
pub struct Operator {
    /// Where the state is kept (`--state-file`), if anywhere.
    pub file: Option<StateFile>,
    /// Virtual services the console added or edited.
    pub services: BTreeMap<ServiceKey, ServiceConfig>,
    /// The kernel entries of servers in maintenance (and of those returned, until added):
    /// added back whole, thresholds and tunnel included.
    pub dests: BTreeMap<RsKey, DestConfig>,
    /// Drains and pins from the state file for servers the master does not know yet.
    pub pending: BTreeMap<RsKey, Override>,
}

/// What the daemon must do after a change.
#[derive(Debug)]
pub struct Applied {
    /// For the user and the audit log.
    pub text: String,
    /// Read the kernel's table again (a service changed).
    pub rescan: bool,
}

/// The daemon's state a change needs.
pub struct Ctx<'a> {
    /// The state machine.
    pub master: &'a mut Master,
    /// The kernel.
    pub backend: &'a mut Backend,
    /// The kernel's table as last read.
    pub kernel: &'a mut KernelView,
    /// Now, as the master counts.
    pub now: Time,
}

/// Who acts for the state file at start-up.
pub fn state_file_who() -> Who {
    Who { user: "state-file".into(), address: IpAddr::V4(Ipv4Addr::UNSPECIFIED) }
}

impl Operator {
    /// Applies `change` by `who`, or says why not (and nothing changed).
    pub fn apply(&mut self, ctx: &mut Ctx<'_>, who: &Who, change: &Change) -> Result<Applied, String> {
        match change {
            Change::Server { key, action } => self.server(ctx, who, *key, *action),
            Change::EditServer { key, forwarding, u_threshold, l_threshold } => {
                let dest = check_edit_server(ctx.kernel, key, *forwarding, *u_threshold, *l_threshold)?;
                ctx.backend.edit_real_server(&key.service, &dest).map_err(|e| e.to_string())?;
                if let Some(row) = ctx.kernel.servers.get_mut(key) {
                    row.config = dest;
                }
                let text = format!(
                    "{}: forwarding {}, thresholds upper {u_threshold}, lower {l_threshold}",
                    RsKeyText(*key),
                    forwarding.ipvsadm_name()
                );
                ctx.master.handle_note(ctx.now, who, &text);
                Ok(Applied { text, rescan: false })
            }
            Change::AddService { key, config } => {
                if ctx.kernel.services.contains_key(key) {
                    return Err(format!("virtual service {} exists already", ServiceText(*key)));
                }
                if ctx.kernel.services.len() >= MAX_SERVICES {
                    return Err(format!("the table has {MAX_SERVICES} virtual services: no more"));
                }
                let (config, words) = check_service(key, config)?;
                ctx.backend.add_service(key, &config).map_err(|e| e.to_string())?;
                self.services.insert(*key, config);
                Ok(self.noted(ctx, who, format!("added virtual service {}: {words}", ServiceText(*key))))
            }
            Change::EditService { key, config } => {
                known_service(ctx.kernel, key)?;
                let (config, words) = check_service(key, config)?;
                ctx.backend.edit_service(key, &config).map_err(|e| e.to_string())?;
                self.services.insert(*key, config);
                Ok(self.noted(ctx, who, format!("edited virtual service {}: {words}", ServiceText(*key))))
            }
            Change::RemoveService { key } => {
                known_service(ctx.kernel, key)?;
                ctx.backend.remove_service(key).map_err(|e| e.to_string())?;
                self.services.remove(key);
                Ok(self.noted(ctx, who, format!("removed virtual service {}", ServiceText(*key))))
            }
        }
    }

    fn noted(&mut self, ctx: &mut Ctx<'_>, who: &Who, text: String) -> Applied {
        ctx.master.handle_note(ctx.now, who, &text);
        Applied { text, rescan: true }
    }

    /// Drain, maintenance, return, pin, unpin: the master decides.
    fn server(
        &mut self,
        ctx: &mut Ctx<'_>,
        who: &Who,
        key: RsKey,
        action: ServerAction,
    ) -> Result<Applied, String> {
        // The entry as the kernel has it, to add back whole after maintenance.
        let saved = ctx.kernel.servers.get(&key).map(|row| row.config).or_else(|| {
            let row = ctx.master.status(ctx.now).into_iter().find(|r| r.key == key)?;
            Some(crate::ipvs::dest(key.addr, key.port, row.forwarding, row.weight.max(1)))
        });
        ctx.master.handle_operator(ctx.now, who, key, action).map_err(|e| e.to_string())?;
        self.pending.remove(&key);
        if let (ServerAction::Maintenance, Some(dest)) = (action, saved) {
            self.dests.insert(key, dest);
        }
        Ok(Applied { text: format!("{}: {action}", RsKeyText(key)), rescan: false })
    }

    /// What the state file should hold now: the console's services, the master's overrides
    /// (with the saved entries of servers in maintenance) and those still pending.
    pub fn state(&self, master: &Master, now: Time) -> State {
        let mut servers = self.pending.clone();
        for row in master.status(now) {
            if row.hold.is_none() && row.pinned.is_none() {
                continue;
            }
            let dest = match row.hold {
                Some(Hold::Maintenance) => Some(
                    self.dests
                        .get(&row.key)
                        .copied()
                        .unwrap_or_else(|| crate::ipvs::dest(row.key.addr, row.key.port, row.forwarding, 1)),
                ),
                _ => None,
            };
            servers.insert(row.key, Override { hold: row.hold, pinned: row.pinned, dest });
        }
        State { services: self.services.clone(), servers }
    }

    /// Writes the state file (if any); a failure is returned for the user and the log.
    pub fn save(&self, master: &Master, now: Time) -> Result<(), String> {
        let Some(file) = &self.file else { return Ok(()) };
        file.save(&self.state(master, now)).map_err(|e| format!("{e:#}"))
    }

    /// Start-up: the services of `state` missing from the kernel are created again
    /// (returns whether any was, so that the table is read again); then
    /// [`Operator::restore_servers`].
    pub fn restore_services(&mut self, ctx: &mut Ctx<'_>, state: &State) -> bool {
        let mut created = false;
        for (key, config) in &state.services {
            self.services.insert(*key, *config);
            if ctx.kernel.services.contains_key(key) {
                continue;
            }
            match ctx.backend.add_service(key, config) {
                Ok(()) => {
                    log!("state file: created virtual service {} again", ServiceText(*key));
                    created = true;
                }
                Err(e) => log!("state file: creating virtual service {} failed: {e}", ServiceText(*key)),
            }
        }
        created
    }

    /// Start-up, after the table was read: servers in maintenance held out of it, drains
    /// and pins applied to the servers the master knows, the others kept pending.
    pub fn restore_servers(&mut self, ctx: &mut Ctx<'_>, state: &State) {
        for (key, o) in &state.servers {
            if let (Some(Hold::Maintenance), Some(dest)) = (o.hold, o.dest) {
                ctx.master.handle_held(ctx.now, *key, dest.fwd, dest.weight);
                self.dests.insert(*key, dest);
            }
            self.pending.insert(*key, Override { dest: None, ..*o });
        }
        self.apply_pending(ctx);
    }

    /// Applies the pending drains and pins of servers the master knows now.
    pub fn apply_pending(&mut self, ctx: &mut Ctx<'_>) {
        let known: Vec<RsKey> = self.pending.keys().filter(|k| ctx.master.knows(k)).copied().collect();
        let who = state_file_who();
        for key in known {
            let Some(o) = self.pending.remove(&key) else { continue };
            let mut actions = Vec::new();
            if o.hold == Some(Hold::Drain) {
                actions.push(ServerAction::Drain);
            }
            if let Some(w) = o.pinned {
                actions.push(ServerAction::Pin(w));
            }
            for action in actions {
                match ctx.master.handle_operator(ctx.now, &who, key, action) {
                    Ok(()) => log!("state file: {}: {action}", RsKeyText(key)),
                    Err(e) => log!("state file: {}: {action}: {e}", RsKeyText(key)),
                }
            }
        }
    }
}

fn known_service(kernel: &KernelView, key: &ServiceKey) -> Result<(), String> {
    if kernel.services.contains_key(key) {
        Ok(())
    } else {
        Err(format!("no virtual service {} in the kernel's table", ServiceText(*key)))
    }
}

/// A real server's new forwarding and thresholds, checked: the entry to send (every
/// other field as the kernel has it).
fn check_edit_server(
    kernel: &KernelView,
    key: &RsKey,
    forwarding: Forwarding,
    u_threshold: u32,
    l_threshold: u32,
) -> Result<DestConfig, String> {
    let rs = RsKeyText(*key);
    let row = kernel.servers.get(key).ok_or_else(|| format!("no real server {rs} in the kernel's table"))?;
    if forwarding == Forwarding::Local && row.config.fwd != Forwarding::Local {
        return Err(format!("{rs}: local forwarding is the director's own, not a real server's"));
    }
    if key.addr.is_ipv6() != key.service.is_ipv6() && forwarding != Forwarding::Tunnel {
        return Err(format!("{rs}: a real server of another address family needs tunnel forwarding"));
    }
    let max = i32::MAX as u32;
    if u_threshold > max || l_threshold > max {
        return Err(format!("{rs}: thresholds are 0 to {max}"));
    }
    if l_threshold > 0 && (u_threshold == 0 || l_threshold > u_threshold) {
        return Err(format!(
            "{rs}: the lower threshold ({l_threshold}) must be at most the upper one ({u_threshold}, 0: none)"
        ));
    }
    Ok(DestConfig { fwd: forwarding, u_threshold, l_threshold, ..row.config })
}

/// A virtual service's settings, in the form every backend sends
/// ([`crate::ipvs::normalize_service`]), checked by writing them as `ipvsadm -S -n` does
/// and reading them back with ipvsadm's rules (what ipvsadm would refuse is refused, and
/// what it cannot say is not set): the settings and their ipvsadm words.
fn check_service(key: &ServiceKey, config: &ServiceConfig) -> Result<(ServiceConfig, String), String> {
    let svc = ServiceText(*key);
    if config.pe.is_some() {
        return Err(format!("{svc}: persistence engines are not supported by the console"));
    }
    let c = crate::ipvs::normalize_service(key, config);
    if let Some(p) = c.persistence {
        let secs = p.as_nanos() / 1_000_000_000;
        let max = lvs_ipvs::ipvsadm::MAX_PERSISTENCE_SECS;
        if p.as_nanos() % 1_000_000_000 != 0 || !(1..=max).contains(&secs) {
            return Err(format!("{svc}: persistence is whole seconds from 1 to {max}"));
        }
        if key.is_ipv6() && !(1..=128).contains(&c.netmask) {
            return Err(format!("{svc}: an IPv6 netmask is a prefix length from 1 to 128"));
        }
        if !key.is_ipv6() && c.netmask.leading_ones() + c.netmask.trailing_zeros() != 32 {
            return Err(format!("{svc}: the netmask {} is not contiguous", Ipv4Addr::from(c.netmask)));
        }
    }
    let line = Command::AddService(*key, c).to_string();
    let back = match parse_line(&line) {
        Ok(Some(Command::AddService(k, back))) if k == *key => back,
        Ok(_) => return Err(format!("{svc}: these settings do not read back as set (`ipvsadm {line}`)")),
        Err(e) => return Err(format!("{svc}: {e}")),
    };
    if crate::ipvs::normalize_service(key, &back) != c {
        return Err(format!("{svc}: these settings do not read back as set (`ipvsadm {line}`)"));
    }
    let words = line.split_once(" -s ").map_or(line.as_str(), |(_, w)| w);
    Ok((c, format!("-s {words}")))
}

#[cfg(test)]
mod tests {
    use lvs_ipvs::{Protocol, SchedulerKind, SvcFlags};

    use super::*;

    fn tcp(port: u16) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port }
    }

    #[test]
    fn service_settings_are_checked_and_normalised() {
        let base = crate::ipvs::service_config(&tcp(80), SchedulerKind::Wlc);
        let (c, words) = check_service(&tcp(80), &base).unwrap();
        assert_eq!((c, words.as_str()), (base, "-s wlc"));
        let mut p = base;
        p.persistence = Some(lvs_sched::Duration::from_secs(300));
        p.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
        let (c, words) = check_service(&tcp(80), &p).unwrap();
        assert_eq!(words, "-s wlc -p 300 -M 255.255.255.0");
        assert!(c.flags.has(SvcFlags::PERSISTENT));
        // A netmask without persistence means nothing: the default is kept.
        let mut n = base;
        n.netmask = 0xffff_0000;
        assert_eq!(check_service(&tcp(80), &n).unwrap().0.netmask, u32::MAX);
        for (bad, why) in [
            (ServiceConfig { persistence: Some(lvs_sched::Duration::ZERO), ..base }, "whole seconds from 1"),
            (
                ServiceConfig { persistence: Some(lvs_sched::Duration::from_millis(1500)), ..base },
                "whole seconds",
            ),
            (
                ServiceConfig {
                    persistence: Some(lvs_sched::Duration::from_secs(1)),
                    netmask: 0xff00_ff00,
                    ..base
                },
                "not contiguous",
            ),
            (ServiceConfig { pe: Some(lvs_ipvs::PersistenceEngine::Sip), ..base }, "persistence engines"),
            (ServiceConfig { flags: SvcFlags(SvcFlags::ONEPACKET), ..base }, "only for UDP"),
        ] {
            let e = check_service(&tcp(80), &bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let v6 = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "2001:db8::1".parse().unwrap(), port: 80 };
        let bad =
            ServiceConfig { persistence: Some(lvs_sched::Duration::from_secs(1)), netmask: 129, ..base };
        assert!(check_service(&v6, &bad).unwrap_err().contains("prefix length"));
        // Port 0 is for persistent services only, as ipvsadm says.
        let e = check_service(&tcp(0), &base).unwrap_err();
        assert!(e.contains("zero port"), "{e}");
    }

    #[test]
    fn thresholds_and_forwarding_are_checked() {
        let key = RsKey { service: tcp(80), addr: "10.0.0.2".parse().unwrap(), port: 80 };
        let mut kernel = KernelView::default();
        let e = check_edit_server(&kernel, &key, Forwarding::Masq, 0, 0).unwrap_err();
        assert!(e.contains("no real server tcp:10.0.0.1:80/10.0.0.2:80"), "{e}");
        let mut dest = crate::ipvs::dest(key.addr, 80, Forwarding::DirectRouting, 7);
        dest.tunnel.port = 9;
        kernel.servers.insert(key, crate::ipvs::DestRow::new(dest));
        let d = check_edit_server(&kernel, &key, Forwarding::Masq, 100, 50).unwrap();
        assert_eq!(
            (d.fwd, d.u_threshold, d.l_threshold, d.weight, d.tunnel.port),
            (Forwarding::Masq, 100, 50, 7, 9)
        );
        for (f, u, l, why) in [
            (Forwarding::Masq, 10, 20, "must be at most"),
            (Forwarding::Masq, 0, 5, "must be at most"),
            (Forwarding::Masq, u32::MAX, 0, "thresholds are 0 to"),
            (Forwarding::Local, 0, 0, "director's own"),
        ] {
            let e = check_edit_server(&kernel, &key, f, u, l).unwrap_err();
            assert!(e.contains(why), "{f:?} {u} {l}: {e}");
        }
    }

    #[test]
    fn restored_overrides_wait_for_their_server_and_are_saved_back() {
        use feedbackd_proto::keys::Auth;
        use feedbackd_proto::master::{MasterConfig, MasterEvent, TableEntry};
        let svc = tcp(80);
        let rs = |a: &str| RsKey { service: svc, addr: a.parse().unwrap(), port: 80 };
        let entry = |a: &str, weight| TableEntry { key: rs(a), weight, forwarding: Forwarding::Masq };
        let mut master = Master::new(MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() });
        master.handle_table(Time(0), &[svc], &[entry("10.0.0.2", 5)]);
        let mut backend = Backend::open(crate::ipvs::BackendKind::DryRun, &[]).unwrap();
        let mut kernel = KernelView::default();
        let text = "drain tcp:10.0.0.1:80/10.0.0.2:80\n\
                    maintenance -a -t 10.0.0.1:80 -r 10.0.0.4:80 -m -w 9 -x 100\n\
                    pin tcp:10.0.0.1:80/10.0.0.7:80 20\n";
        let state = State::parse(text).unwrap();
        let mut op = Operator::default();
        let mut ctx = Ctx { master: &mut master, backend: &mut backend, kernel: &mut kernel, now: Time(1) };
        op.restore_servers(&mut ctx, &state);
        let ev: Vec<MasterEvent> = std::iter::from_fn(|| master.poll_event()).collect();
        assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 5, to: 0, .. }]), "{ev:?}");
        assert_eq!(op.pending.keys().copied().collect::<Vec<_>>(), [rs("10.0.0.7")], "waits for its server");
        // Saved back as read, the pending pin included.
        assert_eq!(op.state(&master, Time(1)).servers, state.servers);
        // The server appears (an agent, or someone's ipvsadm): the pin applies.
        master.handle_table(Time(2), &[svc], &[entry("10.0.0.2", 0), entry("10.0.0.7", 5)]);
        let mut ctx = Ctx { master: &mut master, backend: &mut backend, kernel: &mut kernel, now: Time(2) };
        op.apply_pending(&mut ctx);
        let ev: Vec<MasterEvent> = std::iter::from_fn(|| master.poll_event()).collect();
        assert!(matches!(&ev[..], [MasterEvent::SetWeight { from: 5, to: 20, .. }]), "{ev:?}");
        assert!(op.pending.is_empty());
        assert_eq!(op.state(&master, Time(2)).servers, state.servers);
    }

    /// The dry-run kernel and the master, as a comparable value.
    type Seen = (Vec<(ServiceKey, ServiceConfig)>, Vec<DestConfig>, Vec<feedbackd_proto::master::StatusRow>);

    fn seen(backend: &mut Backend, master: &Master) -> Seen {
        let services = backend.services().unwrap();
        let mut dests = Vec::new();
        for (key, _) in &services {
            dests.extend(backend.real_servers(key).unwrap().into_iter().map(|r| r.config));
        }
        (services, dests, master.status(Time(0)))
    }

    /// Reads the dry-run kernel into the view and the master, as the daemon's rescan does.
    fn rescan(backend: &mut Backend, kernel: &mut KernelView, master: &mut Master, now: Time) {
        use feedbackd_proto::master::TableEntry;
        *kernel = KernelView::default();
        let mut entries = Vec::new();
        for (service, config) in backend.services().unwrap() {
            for row in backend.real_servers(&service).unwrap() {
                let key = RsKey { service, addr: row.config.addr, port: row.config.port };
                entries.push(TableEntry { key, weight: row.config.weight, forwarding: row.config.fwd });
                kernel.servers.insert(key, row);
            }
            kernel.services.insert(service, config);
        }
        let keys: Vec<ServiceKey> = kernel.services.keys().copied().collect();
        master.handle_table(now, &keys, &entries);
    }

    fn any_change() -> impl proptest::strategy::Strategy<Value = Change> {
        use proptest::prelude::*;
        let service = prop_oneof![
            (
                prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
                0u16..4,
                prop_oneof![Just(80u16), Just(0), any::<u16>()]
            )
                .prop_map(|(protocol, a, port)| ServiceKey::Addr {
                    protocol,
                    addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, a as u8)),
                    port
                }),
            (0u32..3, any::<bool>()).prop_map(|(mark, ipv6)| ServiceKey::Fwmark { mark, ipv6 }),
            Just(ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "2001:db8::1".parse().unwrap(),
                port: 80
            }),
        ];
        let config = (
            proptest::sample::select(SchedulerKind::ALL.to_vec()),
            any::<u32>(),
            proptest::option::of(prop_oneof![any::<u64>(), (0u64..100).prop_map(|s| s * 1_000_000_000)]),
            prop_oneof![any::<u32>(), Just(u32::MAX), 0u32..130],
            any::<bool>(),
        )
            .prop_map(|(scheduler, flags, p, netmask, pe)| ServiceConfig {
                scheduler,
                flags: SvcFlags(flags),
                persistence: p.map(lvs_sched::Duration),
                netmask,
                pe: pe.then_some(lvs_ipvs::PersistenceEngine::Sip),
            });
        let server = (service.clone(), 1u8..5, prop_oneof![Just(80u16), any::<u16>()]).prop_map(
            |(service, a, port)| RsKey { service, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100 + a)), port },
        );
        let action = prop_oneof![
            Just(ServerAction::Drain),
            Just(ServerAction::Maintenance),
            Just(ServerAction::Return),
            any::<u32>().prop_map(ServerAction::Pin),
            Just(ServerAction::Unpin),
        ];
        let fwd = proptest::sample::select(vec![
            Forwarding::Masq,
            Forwarding::DirectRouting,
            Forwarding::Tunnel,
            Forwarding::Local,
        ]);
        prop_oneof![
            (server.clone(), action).prop_map(|(key, action)| Change::Server { key, action }),
            (server, fwd, any::<u32>(), prop_oneof![any::<u32>(), 0u32..10]).prop_map(
                |(key, forwarding, u, l)| {
                    Change::EditServer { key, forwarding, u_threshold: u % 3 * (u / 3), l_threshold: l }
                }
            ),
            (service.clone(), config.clone()).prop_map(|(key, config)| Change::AddService { key, config }),
            (service.clone(), config).prop_map(|(key, config)| Change::EditService { key, config }),
            service.prop_map(|key| Change::RemoveService { key }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 64, ..Default::default() })]

        /// Careless or hostile changes, in any order: nothing panics, and a refused change
        /// changes nothing (kernel, master, journal, the console's services).
        #[test]
        fn refused_changes_change_nothing(changes in proptest::collection::vec(any_change(), 1..40)) {
            use feedbackd_proto::keys::Auth;
            use feedbackd_proto::master::MasterConfig;
            let svc = tcp(80);
            let mut backend =
                Backend::open(crate::ipvs::BackendKind::DryRun, &[(svc, crate::ipvs::service_config(&svc, SchedulerKind::Wlc))]).unwrap();
            for a in 101..104u8 {
                let d = crate::ipvs::dest(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)), 80, Forwarding::Masq, u32::from(a));
                backend.add_real_server(&svc, &d).unwrap();
            }
            let mut master = Master::new(MasterConfig { auth: Auth::Insecure, ..MasterConfig::default() });
            master.set_journal(Time(0), true);
            let mut kernel = KernelView::default();
            let mut op = Operator::default();
            let who = Who { user: "mallory".into(), address: IpAddr::V4(Ipv4Addr::LOCALHOST) };
            for (i, change) in changes.iter().enumerate() {
                let now = Time(i as u64 + 1);
                rescan(&mut backend, &mut kernel, &mut master, now);
                while master.poll_journal().is_some() {}
                let before = (seen(&mut backend, &master), op.services.clone());
                let mut ctx = Ctx { master: &mut master, backend: &mut backend, kernel: &mut kernel, now };
                match op.apply(&mut ctx, &who, change) {
                    Err(e) => {
                        proptest::prop_assert!(!e.is_empty());
                        proptest::prop_assert!(master.poll_event().is_none(), "{change:?}: {e}");
                        proptest::prop_assert!(master.poll_journal().is_none(), "{change:?}: {e}");
                        proptest::prop_assert_eq!(&(seen(&mut backend, &master), op.services.clone()), &before, "{:?}: {}", change, e);
                    }
                    Ok(_) => {
                        proptest::prop_assert!(master.poll_journal().is_some(), "journalled: {change:?}");
                        // The daemon's flush, roughly: the master's changes to the kernel.
                        while let Some(ev) = master.poll_event() {
                            let _ = match ev {
                                feedbackd_proto::master::MasterEvent::AddRealServer { key, forwarding, weight, .. } => backend
                                    .add_real_server(&key.service, &crate::ipvs::dest(key.addr, key.port, forwarding, weight)),
                                feedbackd_proto::master::MasterEvent::SetWeight { key, to, .. } => {
                                    let d = kernel.servers.get(&key).map(|r| DestConfig { weight: to, ..r.config });
                                    d.map_or(Ok(()), |d| backend.edit_real_server(&key.service, &d))
                                }
                                feedbackd_proto::master::MasterEvent::RemoveRealServer { key, .. } => {
                                    backend.remove_real_server(&key.service, key.addr, key.port)
                                }
                                _ => Ok(()),
                            };
                        }
                    }
                }
            }
        }
    }
}
