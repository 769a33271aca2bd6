//! `ipvsadm -L -n -c`: the connection entries, as ipvsadm prints the kernel's
//! `/proc/net/ip_vs_conn` (`list_conn()`, `print_conn()`).
//!
//! A row is `"%-3s %-6s %-11s %-18s %-18s %s"`: protocol, the timer's remaining time as
//! `mm:ss` (minutes unbounded; the kernel truncates to whole seconds), the state, client,
//! virtual and destination address. States are the kernel's names: the TCP states,
//! `UDP`, and for a persistence template `NONE` or `ASSURED` (once a connection it
//! controls reached ESTABLISHED, or a UDP reply passed). A template shows the masked
//! client address with port 0, the service's port (0 for a port-0 or FTP service) and
//! the real server's port; a firewall-mark template has protocol `IP` and the mark as its
//! virtual address (`0.0.0.1:0`); an invalidated template (its real server deleted) is
//! re-hashed by the kernel with both ports 65535 and is listed so. One-packet entries
//! are never listed.
//!
//! SCTP entries go through the TCP state machine in the model (it has no SCTP one), so
//! their rows show TCP state names where the kernel shows SCTP's (`INIT1`, `COOKIE_ECHOED`,
//! ...). IPv6 addresses print as `[addr]:port`, as ipvsadm prints them.
//!
//! Order: the kernel lists its hash table, whose key mixes in a boot-time random value;
//! the model lists its table slots in order. Compare the two as sets.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{AddrPort, Conn, ConnState, Ipvs, ServiceKey};

/// Write the `-c` listing; `persistent_conn` adds the persistence-engine columns of the
/// header (no row has persistence-engine data: the model has no `--pe sip`).
pub(super) fn list(out: &mut String, ipvs: &Ipvs, persistent_conn: bool) {
    out.push_str("IPVS connection entries\n");
    let (state, source, virt, dest) = ("state", "source", "virtual", "destination");
    if persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {state:<11} {source:<18} {virt:<18} {dest:<18} {:<16} pe_data",
            "pe name"
        );
    } else {
        let _ = writeln!(out, "pro expire {state:<11} {source:<18} {virt:<18} {dest}");
    }
    for c in ipvs.conns.iter().flatten() {
        if let Some(row) = Row::of(ipvs, c) {
            row.write(out, ipvs);
        }
    }
}

/// One row's fields.
struct Row {
    protocol: &'static str,
    state: &'static str,
    client: SocketAddr,
    vaddr: SocketAddr,
    daddr: SocketAddr,
    deadline: lvs_sched::Time,
}

impl Row {
    fn of(ipvs: &Ipvs, c: &Conn) -> Option<Row> {
        let svc = ipvs.service_by_id(c.service());
        let d = svc.scheduler().dest(c.dest());
        let client = c.client();
        let (protocol, state, vaddr, dport) = match c.state() {
            // A one-packet entry: gone as soon as its datagram is sent.
            _ if c.unhashed() && c.state() != ConnState::Template => return None,
            ConnState::Template => {
                let state = if c.assured() { "ASSURED" } else { "NONE" };
                let (protocol, vaddr, dport) = template_addrs(svc.key(), c, d.port());
                (protocol, state, vaddr, dport)
            }
            ConnState::Tcp(s) => {
                let vaddr = c.virtual_addr();
                (c.protocol().name(), s.name(), vaddr, if d.port() == 0 { vaddr.port() } else { d.port() })
            }
            ConnState::Udp => {
                let vaddr = c.virtual_addr();
                (c.protocol().name(), "UDP", vaddr, if d.port() == 0 { vaddr.port() } else { d.port() })
            }
        };
        Some(Row {
            protocol,
            state,
            client,
            vaddr,
            daddr: SocketAddr::new(d.addr(), dport),
            deadline: c.deadline(),
        })
    }

    fn write(&self, out: &mut String, ipvs: &Ipvs) {
        // jiffies_delta_to_msecs(expires - jiffies) / 1000: whole seconds, never negative.
        let secs = self.deadline.0.saturating_sub(ipvs.now().0) / 1_000_000_000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let name = |a: SocketAddr| AddrPort(a.ip(), a.port()).to_string();
        let _ = writeln!(
            out,
            "{:<3} {expire:<6} {:<11} {:<18} {:<18} {}",
            self.protocol,
            self.state,
            name(self.client),
            name(self.vaddr),
            name(self.daddr)
        );
    }
}

/// A template's protocol name, virtual address and destination port, as
/// `ip_vs_sched_persist()` fills them in (`ip_vs_check_template()` for an invalidated
/// one).
fn template_addrs(key: ServiceKey, c: &Conn, dest_port: u16) -> (&'static str, SocketAddr, u16) {
    const FTPPORT: u16 = 21;
    let invalidated = c.unhashed();
    let (protocol, vaddr, dport) = match key {
        ServiceKey::Addr { protocol, addr, port } if port != 0 && port != FTPPORT => {
            (protocol.name(), SocketAddr::new(addr, port), dest_port)
        }
        ServiceKey::Addr { protocol, addr, .. } => (protocol.name(), SocketAddr::new(addr, 0), 0),
        ServiceKey::Fwmark { mark, ipv6 } => {
            let addr = if ipv6 {
                IpAddr::V6(Ipv6Addr::from(u128::from(mark) << 96))
            } else {
                IpAddr::V4(Ipv4Addr::from(mark))
            };
            ("IP", SocketAddr::new(addr, 0), 0)
        }
    };
    if invalidated {
        (protocol, SocketAddr::new(vaddr.ip(), u16::MAX), u16::MAX)
    } else {
        (protocol, vaddr, dport)
    }
}
