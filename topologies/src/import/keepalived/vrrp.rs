//! `vrrp_instance`s and `lvs_sync_daemon`: a VRRP fail-over group ([`Ha`]) of the
//! directors whose files have instances, one file per member.
//!
//! Members are the directors in file order, the primary first: lvsim's NAT comment names
//! it, else the director whose instance is in state MASTER. Instances are sides: the one
//! whose addresses are the services' VIPs is `External`, one holding another address
//! (a NAT gateway) `Internal`; a lone instance that tracks another interface stands for
//! both sides (lvsim writes no instance for a side with nothing to move). The first member's file sets the group's timing; another
//! member that differs is a [`super::Note`].

use std::net::IpAddr;

use super::parse::{Comment, Node, Word, comments_in};
use super::{Cx, FileFacts, State, with_defaults};
use crate::export::keepalived_comments::V6_NO_AUTH;
use crate::{Failover, Ha, Side, SyncDaemon, SyncMode};

use super::super::ImportError;

/// A `vrrp_instance` as read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Instance {
    line: usize,
    master: bool,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: Option<u8>,
    advert_int_s: Option<f64>,
    nopreempt: bool,
    preempt_delay_s: Option<f64>,
    auth_pass: Option<String>,
    /// `ADDRESS/PREFIX dev IFACE`.
    addrs: Vec<(IpAddr, Option<u8>, Option<String>)>,
    track: Vec<String>,
}

/// `lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] ...`.
#[derive(Clone, Debug)]
pub(crate) struct SyncDaemonLine {
    interface: String,
    syncid: u8,
    max_len: Option<u32>,
}

/// `lvs_sync_daemon`.
pub(super) fn sync_daemon(cx: &mut Cx<'_>, n: &Node) -> Result<SyncDaemonLine, ImportError> {
    let interface = cx.arg(n, 0, "an interface and a VRRP instance")?.text.clone();
    cx.arg(n, 1, "an interface and a VRRP instance")?;
    let mut line = SyncDaemonLine { interface, syncid: 0, max_len: None };
    let mut rest = n.args[2..].iter();
    while let Some(w) = rest.next() {
        let value = rest.next().ok_or_else(|| cx.err(w, format!("{} needs a value", w.text)))?;
        match w.text.as_str() {
            "id" => line.syncid = cx.num(value, "a sync id", 0u8, 255)?,
            "maxlen" => line.max_len = Some(cx.num(value, "a sync message size", 28u32, 65_507)?),
            _ => cx.note(w.line, format!("lvs_sync_daemon {}: not modelled, ignored", w.text)),
        }
    }
    Ok(line)
}

/// One `vrrp_instance`.
pub(super) fn instance(cx: &mut Cx<'_>, n: &Node, comments: &[Comment]) -> Result<Instance, ImportError> {
    let mut i = Instance { line: n.key.line, ..Instance::default() };
    let no_auth = V6_NO_AUTH.trim_start_matches("! ");
    let inside = comments_in(comments, n).iter();
    i.auth_pass = inside.filter_map(|c| c.text.strip_prefix(no_auth)).map(str::to_owned).next();
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "state" => i.master = cx.arg(s, 0, "MASTER or BACKUP")?.text == "MASTER",
            "interface" => i.interface = Some(cx.arg(s, 0, "an interface")?.text.clone()),
            "virtual_router_id" => {
                i.vrid = Some(cx.num(cx.arg(s, 0, "a number")?, "a virtual router id", 1u8, 255)?);
            }
            "priority" => {
                let p = cx.num(cx.arg(s, 0, "a number")?, "a VRRP priority", 1u8, 255)?;
                if p == 255 {
                    cx.note(
                        s.key.line,
                        "priority 255 (the address owner): taken as 254, the highest a backup has",
                    );
                }
                i.priority = Some(p.min(254));
            }
            "advert_int" => i.advert_int_s = Some(cx.secs(cx.arg(s, 0, "seconds")?, false)?),
            "nopreempt" => i.nopreempt = true,
            "preempt_delay" => i.preempt_delay_s = Some(cx.secs(cx.arg(s, 0, "seconds")?, true)?),
            "authentication" => i.auth_pass = auth(cx, s)?,
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                for a in s.block.as_deref().unwrap_or_default() {
                    i.addrs.push(vip(cx, a)?);
                }
            }
            "track_interface" => {
                i.track.extend(s.block.as_deref().unwrap_or_default().iter().map(|t| t.key.text.clone()));
            }
            _ => cx.ignored(s, "vrrp_instance: "),
        }
    }
    Ok(i)
}

/// `authentication { auth_type PASS auth_pass P }`.
fn auth(cx: &mut Cx<'_>, n: &Node) -> Result<Option<String>, ImportError> {
    let mut pass = None;
    for s in n.block.as_deref().unwrap_or_default() {
        match s.key.text.as_str() {
            "auth_type" if cx.arg(s, 0, "PASS or AH")?.text != "PASS" => {
                cx.note(
                    s.key.line,
                    "auth_type AH: lvsim writes PASS only; the simulated VRRP does not authenticate",
                );
            }
            "auth_type" => {}
            "auth_pass" => {
                let w = cx.arg(s, 0, "a password")?;
                if w.text.len() > 8 {
                    return Err(cx.err(w, "VRRP passwords are at most 8 characters"));
                }
                pass = Some(w.text.clone());
            }
            _ => cx.ignored(s, "authentication: "),
        }
    }
    Ok(pass)
}

/// A `virtual_ipaddress` line: `ADDRESS[/PREFIX] [dev IFACE] ...`.
fn vip(cx: &mut Cx<'_>, n: &Node) -> Result<(IpAddr, Option<u8>, Option<String>), ImportError> {
    let (a, prefix) = match n.key.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (n.key.text.as_str(), None),
    };
    let w = |text: &str| Word { text: text.to_owned(), line: n.key.line, col: n.key.col };
    let addr = cx.addr(&w(a))?;
    let prefix = prefix.map(|p| cx.num(&w(p), "a prefix length", 0u8, 128)).transpose()?;
    let mut dev = None;
    let mut rest = n.args.iter();
    while let Some(k) = rest.next() {
        match (k.text.as_str(), rest.next()) {
            ("dev", Some(v)) => dev = Some(v.text.clone()),
            _ => cx.note(k.line, format!("virtual_ipaddress {}: not modelled, ignored", k.text)),
        }
    }
    Ok((addr, prefix, dev))
}

/// The fail-over group of the files' directors that have instances; `None` without two.
pub(super) fn group(st: &mut State, files: &[FileFacts]) -> Result<Option<Ha>, ImportError> {
    let members: Vec<&FileFacts> = files.iter().filter(|f| !f.instances.is_empty()).collect();
    let Some(first) = members.first() else { return Ok(None) };
    if members.len() < 2 {
        st.notes.push(super::Note {
            path: first.path.clone(),
            line: first.instances[0].line,
            message: "one member of a VRRP group: import every member's keepalived.conf together; imported without fail-over".into(),
        });
        return Ok(None);
    }
    let name = |f: &FileFacts| st.directors[f.directors[0]].name.clone();
    let mut order: Vec<usize> = (0..members.len()).collect();
    let primary = members.iter().find_map(|f| f.primary.clone());
    let lead = primary
        .and_then(|p| members.iter().position(|f| name(f) == p))
        .or_else(|| members.iter().position(|f| f.instances[0].master));
    if let Some(k) = lead {
        order.retain(|&x| x != k);
        order.insert(0, k);
    }
    // A MASTER that is not the primary still wins ties: it comes right after it.
    if let Some(m) = members.iter().position(|f| f.instances[0].master)
        && order[0] != m
    {
        order.retain(|&x| x != m);
        order.insert(1, m);
    }
    let members: Vec<&FileFacts> = order.iter().map(|&k| members[k]).collect();
    let mut ha: Ha = with_defaults("(directors: [], failover: Vrrp())");
    ha.directors = members.iter().map(|f| name(f)).collect();
    let vips: Vec<IpAddr> =
        members.iter().flat_map(|f| &st.directors[f.directors[0]].services).filter_map(|s| s.vip).collect();
    let sides = sides(&mut ha, &members[0].instances, &vips);
    ha.failover = failover(st, &members, sides);
    ha.sync = sync(&ha, &members);
    let directors = &st.directors;
    let key = |s: &crate::Service| (s.fwmark, s.protocol, s.vip, s.port);
    let services = |f: &FileFacts| directors[f.directors[0]].services.iter().map(key).collect::<Vec<_>>();
    if let Some(m) = members[1..].iter().find(|m| services(m) != services(members[0])) {
        st.notes.push(super::Note {
            path: m.path.clone(),
            line: 0,
            message: format!(
                "its virtual services differ from {}'s: VRRP members run the same ones; imported without fail-over",
                members[0].path
            ),
        });
        return Ok(None);
    }
    if let Err(e) = ha.config(directors) {
        st.notes.push(super::Note {
            path: first.path.clone(),
            line: first.instances[0].line,
            message: format!(
                "the VRRP group cannot be simulated ({}: {}): imported without fail-over",
                e.path, e.message
            ),
        });
        return Ok(None);
    }
    Ok(Some(ha))
}

/// The instances' sides, setting the group's interface names and VIP prefix.
fn sides(ha: &mut Ha, inst: &[Instance], vips: &[IpAddr]) -> Vec<Side> {
    let mut ext = None;
    let mut int = None;
    let v4_prefix = inst.iter().flat_map(|i| &i.addrs).find_map(|(a, p, _)| p.filter(|_| a.is_ipv4()));
    if let Some(p) = v4_prefix {
        ha.vip_prefix = p.clamp(1, 32);
    }
    for (addr, _, dev) in inst.iter().flat_map(|i| &i.addrs) {
        let slot = if vips.contains(addr) { &mut ext } else { &mut int };
        if slot.is_none() {
            slot.clone_from(dev);
        }
    }
    let mut out = Vec::with_capacity(inst.len());
    for (k, i) in inst.iter().enumerate() {
        let iface = i.interface.clone().unwrap_or_default();
        // By the addresses it holds, else by the other instance's side.
        let side = match (&ext, &int) {
            (Some(e), _) if *e == iface => Side::External,
            (_, Some(n)) if *n == iface => Side::Internal,
            (Some(_), _) => Side::Internal,
            (None, Some(_)) => Side::External,
            (None, None) if k > 0 && out.first() == Some(&Side::External) => Side::Internal,
            (None, None) => Side::External,
        };
        match side {
            Side::External if ext.is_none() => ext = Some(iface),
            Side::Internal if int.is_none() => int = Some(iface),
            _ => {}
        }
        out.push(side);
    }
    // One instance that tracks another interface: lvsim writes no instance for a side
    // with no address to move, and watches it from the other side's instance.
    if let ([i], [first]) = (inst, out.as_slice())
        && let Some(other) = i.track.first()
    {
        let side = if *first == Side::External { Side::Internal } else { Side::External };
        let slot = if side == Side::External { &mut ext } else { &mut int };
        slot.get_or_insert_with(|| other.clone());
        out.push(side);
    }
    if let Some(e) = ext {
        ha.external_interface = e;
    }
    if let Some(i) = int {
        ha.internal_interface = i;
    }
    out
}

/// VRRP's settings from the members' instances.
fn failover(st: &mut State, members: &[&FileFacts], interfaces: Vec<Side>) -> Failover {
    let i0 = &members[0].instances[0];
    let mut f: Failover = with_defaults("Vrrp()");
    if let Failover::Vrrp {
        advert_int_s,
        priorities,
        preempt,
        preempt_delay_s,
        interfaces: sides,
        version,
        virtual_router_id,
        auth_pass,
        ..
    } = &mut f
    {
        if let Some(a) = i0.advert_int_s {
            *advert_int_s = a;
        }
        *priorities = Some(members.iter().map(|m| m.instances[0].priority.unwrap_or(100)).collect());
        *preempt = !i0.nopreempt;
        if let Some(d) = i0.preempt_delay_s {
            *preempt_delay_s = d;
        }
        *sides = interfaces;
        if let Some((v, _)) = members[0].version {
            *version = v;
        }
        if let Some(id) = i0.vrid {
            *virtual_router_id = id;
        }
        auth_pass.clone_from(&i0.auth_pass);
    }
    for m in &members[1..] {
        let i = &m.instances[0];
        let same = i.advert_int_s == i0.advert_int_s
            && i.nopreempt == i0.nopreempt
            && i.preempt_delay_s == i0.preempt_delay_s
            && i.vrid == i0.vrid
            && m.instances.len() == members[0].instances.len();
        if !same {
            st.notes.push(super::Note {
                path: m.path.clone(),
                line: i.line,
                message: format!(
                    "this instance's timing, preemption or router id differs from {}'s: the group takes {}'s",
                    members[0].path, members[0].path
                ),
            });
        }
    }
    f
}

/// The sync daemon: `lvs_sync_daemon` and lvsim's sysctl comments.
fn sync(ha: &Ha, members: &[&FileFacts]) -> Option<SyncDaemon> {
    let f = members[0];
    if f.sync_daemon.is_none() && f.sync_version.is_none() && f.sync_threshold.is_none() && !f.peer_to_peer {
        return None;
    }
    let mut s = SyncDaemon::default();
    if f.peer_to_peer {
        s.mode = SyncMode::PeerToPeer;
    }
    if let Some(v) = f.sync_version {
        s.version = v;
    }
    if let Some((t, p)) = f.sync_threshold {
        s.threshold = t;
        s.period = p;
    }
    if let Some(d) = &f.sync_daemon {
        s.syncid = d.syncid;
        if let Some(m) = d.max_len {
            s.max_len = m;
        }
        if d.interface != ha.internal_interface {
            s.interface = Some(d.interface.clone());
        }
    }
    Some(s)
}
