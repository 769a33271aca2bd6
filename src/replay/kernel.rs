//! The kernel back end: the same replay against this machine's kernel IPVS.
//!
//! It builds three throwaway network namespaces and never touches the caller's own:
//!
//! ```text
//!   clients ns                director ns (IPVS)                 servers ns
//!   every client addr  c0 ---- d0  VIPs on lo        d1 ---- s0  every real-server addr
//!   default via d0            ip_forward=1                       default via d1
//!                             169.254.253.1 (d0), 169.254.254.1 (d1)
//! ```
//!
//! ipvsadm lines run as `ip netns exec DIRECTOR ipvsadm ...`. Each `connect` opens a real
//! socket in the clients namespace, bound to the client address and port of the replay
//! file, and keeps it open (servers accept and hold connections, and close their side
//! when the client closes). The real server chosen is read from the director's
//! `/proc/net/ip_vs_conn`. `advance` sleeps in wall-clock time.
//!
//! Needs root (namespaces, setns), the ip_vs modules, ipvsadm and iproute2. IPv4 only.
//! Supported forwarding: NAT (`-m`) and direct routing (`-g`); tunnelling and firewall
//! marks are refused with a clear message.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::process::Command as Process;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context as _, bail, ensure};
use lvs_ipvs::ServiceKey;
use lvs_ipvs::ipvsadm::{Command, ListFormat, ListOptions};
use lvs_sched::{Duration, Forwarding, Protocol};
use nix::sched::{CloneFlags, setns};
use socket2::{Domain, SockAddr, Socket, Type};

use super::{Backend, Choice, Event, Script, Sent, Sysctl, Target};

const DIRECTOR_TO_CLIENTS: Ipv4Addr = Ipv4Addr::new(169, 254, 253, 1);
const DIRECTOR_TO_SERVERS: Ipv4Addr = Ipv4Addr::new(169, 254, 254, 1);

/// The kernel estimator's period and a margin: its counters are this old at most.
const ESTIMATOR_PERIOD: StdDuration = StdDuration::from_millis(2100);

/// How long a connect, or a wait for the connection table, may take.
const TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// `IPPROTO_RAW`: a raw socket that sends whole IPv4 packets (implies `IP_HDRINCL`).
const IPPROTO_RAW: i32 = 255;

/// `SOCK_RAW`.
const SOCK_RAW: i32 = 3;

/// How long a lone SYN's entry may take to appear before the SYN counts as dropped
/// (the director handles it in the softirq of the raw send, well within this).
const SYN_SETTLE: StdDuration = StdDuration::from_millis(400);

/// How long a `send` waits for the real server's answer before the segment counts as
/// lost.
const SEND_TIMEOUT: StdDuration = StdDuration::from_millis(1500);

/// Replays against the kernel, in namespaces it owns and deletes when dropped.
pub struct Kernel {
    director: String,
    clients: String,
    servers: String,
    home: File,
    director_fd: File,
    clients_fd: File,
    servers_fd: File,
    conns: HashMap<u32, Open>,
    /// Forwarding method of each real server, as the ipvsadm lines set it.
    fwd: HashMap<(ServiceKey, SocketAddr), Forwarding>,
    /// Wall-clock instant of virtual time 0: the first event after the ipvsadm lines
    /// that precede every connection.
    epoch: Option<Instant>,
    /// How late, at most, an event that arms a timer (connect, close) ran after its
    /// virtual instant on the wall clock.
    armed_late: StdDuration,
    /// Virtual time so far (the sum of `advance`s).
    virtual_now: StdDuration,
    /// When a packet last changed the kernel's counters.
    last_traffic: Option<Instant>,
    /// A raw IPv4 socket in the clients namespace, for lone SYNs (`syn`).
    raw: Option<Socket>,
}

struct Open {
    socket: Socket,
    client: SocketAddr,
    protocol: Protocol,
    nat: bool,
}

impl Kernel {
    /// Build the namespaces and the links, addresses and listeners the script needs.
    pub fn new(script: &Script) -> anyhow::Result<Kernel> {
        ensure!(nix::unistd::geteuid().is_root(), "--kernel needs root (network namespaces and ipvsadm)");
        let need = Needs::of(script)?;
        let tag = std::process::id();
        let k = Kernel {
            director: format!("lvsim-{tag}-dir"),
            clients: format!("lvsim-{tag}-cli"),
            servers: format!("lvsim-{tag}-srv"),
            home: File::open("/proc/self/ns/net").context("opening /proc/self/ns/net")?,
            director_fd: File::open("/dev/null")?,
            clients_fd: File::open("/dev/null")?,
            servers_fd: File::open("/dev/null")?,
            conns: HashMap::new(),
            fwd: HashMap::new(),
            epoch: None,
            armed_late: StdDuration::ZERO,
            virtual_now: StdDuration::ZERO,
            last_traffic: None,
            raw: None,
        };
        k.build(&need).context("building the test namespaces")?;
        let open =
            |n: &str| File::open(format!("/run/netns/{n}")).with_context(|| format!("opening netns {n}"));
        let mut k = k;
        k.director_fd = open(&k.director)?;
        k.clients_fd = open(&k.clients)?;
        k.servers_fd = open(&k.servers)?;
        k.start_servers(&need)?;
        if !need.syn_sources.is_empty() {
            k.enter(&k.clients_fd)?;
            let raw =
                Socket::new(Domain::IPV4, Type::from(SOCK_RAW), Some(socket2::Protocol::from(IPPROTO_RAW)));
            k.leave()?;
            k.raw = Some(raw.context("creating a raw socket for lone SYNs")?);
        }
        Ok(k)
    }

    fn build(&self, need: &Needs) -> anyhow::Result<()> {
        let (d, c, s) = (&self.director, &self.clients, &self.servers);
        for n in [d, c, s] {
            ip(&["netns", "add", n])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        ip(&["link", "add", "d0", "netns", d, "type", "veth", "peer", "name", "c0", "netns", c])?;
        ip(&["link", "add", "d1", "netns", d, "type", "veth", "peer", "name", "s0", "netns", s])?;
        for (n, l) in [(d, "d0"), (d, "d1"), (c, "c0"), (s, "s0")] {
            ip(&["-n", n, "link", "set", l, "up"])?;
        }
        ip(&["-n", d, "addr", "add", &format!("{DIRECTOR_TO_CLIENTS}/32"), "dev", "d0"])?;
        ip(&["-n", d, "addr", "add", &format!("{DIRECTOR_TO_SERVERS}/32"), "dev", "d1"])?;
        run(Process::new("ip").args([
            "netns",
            "exec",
            d,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ]))?;
        ip(&[
            "-n",
            c,
            "route",
            "add",
            "default",
            "via",
            &DIRECTOR_TO_CLIENTS.to_string(),
            "dev",
            "c0",
            "onlink",
        ])?;
        ip(&[
            "-n",
            s,
            "route",
            "add",
            "default",
            "via",
            &DIRECTOR_TO_SERVERS.to_string(),
            "dev",
            "s0",
            "onlink",
        ])?;
        for vip in &need.vips {
            ip(&["-n", d, "addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
            if need.direct_routing {
                // A DR real server owns the VIP on a non-ARP interface.
                ip(&["-n", s, "addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
            }
        }
        if need.direct_routing {
            // Replies from the VIP pass back through the director, which owns it too.
            run(Process::new("ip").args([
                "netns",
                "exec",
                d,
                "sh",
                "-c",
                "for f in /proc/sys/net/ipv4/conf/*/accept_local; do echo 1 > $f; done; \
                 for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
            ]))?;
        }
        for cip in &need.clients {
            ip(&["-n", c, "addr", "add", &format!("{cip}/32"), "dev", "c0"])?;
            ip(&["-n", d, "route", "add", &format!("{cip}/32"), "dev", "d0"])?;
        }
        for sip in &need.syn_sources {
            // Lone SYNs come from addresses nobody owns: the director routes their
            // replies towards the clients, whose namespace drops them, and the real
            // servers never answer them at all (a blackhole route), so that the director
            // sees the SYN alone, as the model does.
            ip(&["-n", d, "route", "add", &format!("{sip}/32"), "dev", "d0"])?;
            ip(&["-n", s, "route", "add", "blackhole", &format!("{sip}/32")])?;
        }
        for rip in &need.reals {
            ip(&["-n", s, "addr", "add", &format!("{rip}/32"), "dev", "s0"])?;
            ip(&["-n", d, "route", "add", &format!("{rip}/32"), "dev", "d1"])?;
        }
        Ok(())
    }

    /// Listeners in the servers namespace: TCP ones accept and hold each connection until
    /// the client closes it, answering whatever the client sends with the address and
    /// port the client reached (`10.20.0.3:80\n`, for `send`); UDP ones swallow datagrams.
    fn start_servers(&self, need: &Needs) -> anyhow::Result<()> {
        self.enter(&self.servers_fd)?;
        let result = (|| {
            for &(proto, port) in &need.ports {
                let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
                match proto {
                    Protocol::Udp => {
                        let sock =
                            UdpSocket::bind(any).with_context(|| format!("binding UDP port {port}"))?;
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 2048];
                            while sock.recv_from(&mut buf).is_ok() {}
                        });
                    }
                    _ => {
                        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                        sock.set_reuse_address(true)?;
                        sock.bind(&any.into()).with_context(|| format!("binding TCP port {port}"))?;
                        sock.listen(4096)?;
                        let listener: TcpListener = sock.into();
                        std::thread::spawn(move || {
                            for stream in listener.incoming().flatten() {
                                std::thread::spawn(move || {
                                    let mut s = stream;
                                    let me = s.local_addr().map(|a| format!("{a}\n")).unwrap_or_default();
                                    let mut buf = [0u8; 512];
                                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {
                                        if s.write_all(me.as_bytes()).is_err() {
                                            break;
                                        }
                                    }
                                });
                            }
                        });
                    }
                }
            }
            Ok(())
        })();
        self.leave()?;
        result
    }

    /// How far the wall clock is past the virtual time (the epoch is set by the first
    /// call).
    fn lateness(&mut self) -> StdDuration {
        let epoch = *self.epoch.get_or_insert_with(Instant::now);
        Instant::now().saturating_duration_since(epoch + self.virtual_now)
    }

    fn enter(&self, ns: &File) -> anyhow::Result<()> {
        setns(ns, CloneFlags::CLONE_NEWNET).context("setns into a test namespace")
    }

    fn leave(&self) -> anyhow::Result<()> {
        setns(&self.home, CloneFlags::CLONE_NEWNET).context("setns back home")
    }

    /// The director's connection table, as `(protocol, client, dest, state)`.
    fn conn_table(&self) -> anyhow::Result<Vec<(String, SocketAddr, SocketAddr, String)>> {
        self.enter(&self.director_fd)?;
        let text = std::fs::read_to_string("/proc/net/ip_vs_conn");
        self.leave()?;
        let text = text.context("reading the director's /proc/net/ip_vs_conn")?;
        Ok(text.lines().skip(1).filter_map(parse_conn_line).collect())
    }

    /// Wait until the entry of `client` satisfies `ok`; its dest and state.
    fn wait_entry(
        &self,
        protocol: Protocol,
        client: SocketAddr,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Option<(SocketAddr, String)>> {
        let proto = proto_name(protocol);
        let start = Instant::now();
        loop {
            let found = self.conn_table()?.into_iter().find(|(p, c, _, _)| p == proto && *c == client);
            match found {
                Some((_, _, d, st)) if ok(&st) => return Ok(Some((d, st))),
                _ if start.elapsed() > TIMEOUT => return Ok(found.map(|(_, _, d, st)| (d, st))),
                _ => std::thread::sleep(StdDuration::from_millis(2)),
            }
        }
    }

    /// Open connection `n` and hold it; the real server the kernel chose.
    fn open(&mut self, n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice> {
        ensure!(target.fwmark.is_none(), "--kernel does not replay firewall-mark connections");
        ensure!(client.is_ipv4() && target.addr.is_ipv4(), "--kernel replays IPv4 only");
        let ty = if target.protocol == Protocol::Udp { Type::DGRAM } else { Type::STREAM };
        self.enter(&self.clients_fd)?;
        let sock = Socket::new(Domain::IPV4, ty, None);
        self.leave()?;
        let sock = sock.context("creating a client socket")?;
        sock.set_reuse_address(true)?;
        sock.bind(&client.into()).with_context(|| format!("binding client {client}"))?;
        let nat;
        match target.protocol {
            Protocol::Udp => {
                sock.send_to(b"lvsim", &SockAddr::from(target.addr)).context("sending a UDP datagram")?;
                let entry = self.wait_entry(Protocol::Udp, client, |_| true)?;
                let Some((dest, _)) = entry else { return Ok(None) };
                nat = true;
                self.conns.insert(n, Open { socket: sock, client, protocol: Protocol::Udp, nat });
                Ok(Some(dest))
            }
            _ => match sock.connect_timeout(&target.addr.into(), TIMEOUT) {
                Ok(()) => {
                    // The handshake's last ACK leaves the entry ESTABLISHED, or under secure_tcp
                    // (tcp_states_dos) in SYNACK until the server sends.
                    let entry =
                        self.wait_entry(Protocol::Tcp, client, |st| st == "ESTABLISHED" || st == "SYNACK")?;
                    let Some((dest, _)) = entry else {
                        bail!("connection {n} from {client} was accepted but is not in the IPVS table")
                    };
                    let key = ServiceKey::Addr {
                        protocol: target.protocol,
                        addr: target.addr.ip(),
                        port: target.addr.port(),
                    };
                    nat = self.fwd.get(&(key, dest)) == Some(&Forwarding::Masq);
                    self.conns.insert(n, Open { socket: sock, client, protocol: Protocol::Tcp, nat });
                    Ok(Some(dest))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::HostUnreachable
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(e).with_context(|| format!("connecting {client} to {}", target.addr)),
            },
        }
    }

    /// Close connection `n` (FIN, or RST with `reset`) and wait for its IPVS state.
    fn finish(&mut self, n: u32, reset: bool) -> anyhow::Result<()> {
        let Some(open) = self.conns.remove(&n) else { bail!("connection {n} was never established") };
        ensure!(open.protocol == Protocol::Tcp, "connection {n} is UDP");
        if reset {
            open.socket.set_linger(Some(StdDuration::ZERO))?;
        }
        let (client, nat) = (open.client, open.nat);
        drop(open);
        let want = match (reset, nat) {
            (true, _) => "CLOSE",
            (false, true) => "TIME_WAIT",
            (false, false) => "FIN_WAIT",
        };
        match self.wait_entry(Protocol::Tcp, client, |st| st == want)? {
            Some((_, st)) if st == want => Ok(()),
            other => bail!("connection {n}: expected state {want} after close, found {other:?}"),
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.conns.clear();
        for n in [&self.clients, &self.servers, &self.director] {
            let _ = Process::new("ip").args(["netns", "del", n]).status();
        }
    }
}

impl Backend for Kernel {
    fn ipvsadm(&mut self, command: &Command, args: &[String]) -> anyhow::Result<()> {
        if let Command::AddDest(k, d) | Command::EditDest(k, d) = command {
            self.fwd.insert((*k, SocketAddr::new(d.addr, d.port)), d.fwd);
        }
        let out = Process::new("ip")
            .args(["netns", "exec", &self.director, "ipvsadm"])
            .args(args)
            .output()
            .context("running ipvsadm")?;
        ensure!(
            out.status.success(),
            "ipvsadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    fn connect(&mut self, n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice> {
        self.lateness();
        let choice = self.open(n, target, client);
        self.last_traffic = Some(Instant::now());
        self.armed_late = self.armed_late.max(self.lateness());
        choice
    }

    fn close(&mut self, n: u32, reset: bool) -> anyhow::Result<()> {
        let closed = self.finish(n, reset);
        self.last_traffic = Some(Instant::now());
        self.armed_late = self.armed_late.max(self.lateness());
        closed
    }

    /// Sleep until the wall clock, counted from the start of the replay, reaches the
    /// virtual time: the time the replay's own commands took is absorbed, so that the
    /// kernel's timers (and the expiry column of `list -c`) stay within the time of the
    /// commands since the last `advance` of the model's.
    fn advance(&mut self, d: Duration) -> anyhow::Result<()> {
        self.virtual_now += StdDuration::from_nanos(d.as_nanos());
        self.lateness();
        let due = self.epoch.expect("lateness() set the epoch") + self.virtual_now;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        Ok(())
    }

    /// `ipvsadm -L -n` with the options. The kernel shows a copy of its counters that
    /// the estimator refreshes every 2 s (`ip_vs_read_cpu_stats()` in
    /// `estimation_timer()`), so `--stats` and `--rate` wait until the estimator has run
    /// since the last packet.
    fn list(&mut self, opts: &ListOptions) -> anyhow::Result<String> {
        if matches!(opts.format, ListFormat::Stats | ListFormat::Rate) {
            if let Some(wait) =
                self.last_traffic.and_then(|t| (t + ESTIMATOR_PERIOD).checked_duration_since(Instant::now()))
            {
                std::thread::sleep(wait);
            }
        }
        if let ListFormat::Conns { .. } = opts.format {
            // The expiry column is off from the model's by how late the entries were
            // armed, or how late this listing runs, on the wall clock: say by how much.
            let slack = self.armed_late.max(self.lateness());
            eprintln!("lvsim: --kernel list -c: clock slack {} ms", slack.as_millis());
        }
        let args = opts.args();
        let out = Process::new("ip")
            .args(["netns", "exec", &self.director, "ipvsadm"])
            .args(&args)
            .output()
            .with_context(|| format!("running ipvsadm {}", args.join(" ")))?;
        ensure!(
            out.status.success(),
            "ipvsadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn syn(&mut self, _n: u32, target: &Target, client: SocketAddr) -> anyhow::Result<Choice> {
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (client, target.addr) else {
            bail!("--kernel replays IPv4 only")
        };
        let raw = self.raw.as_ref().context("no raw socket (the script has no syn line?)")?;
        let packet = syn_packet(src, dst);
        raw.send_to(&packet, &SockAddr::from(target.addr)).context("sending a lone SYN")?;
        self.last_traffic = Some(Instant::now());
        self.armed_late = self.armed_late.max(self.lateness());
        let start = Instant::now();
        loop {
            let table = self.conn_table()?;
            if let Some((_, _, d, _)) = table.into_iter().find(|(p, c, _, _)| p == "TCP" && *c == client) {
                return Ok(Some(d));
            }
            if start.elapsed() > SYN_SETTLE {
                return Ok(None);
            }
            std::thread::sleep(StdDuration::from_millis(2));
        }
    }

    /// Write a line on connection `n`; the real server answers with the address the
    /// client reached, or the client gets a reset, or nothing comes back in time.
    fn send(&mut self, n: u32) -> anyhow::Result<Sent> {
        let Some(open) = self.conns.get_mut(&n) else { bail!("connection {n} is not open") };
        ensure!(
            open.nat,
            "connection {n}: --kernel sends only on NAT connections (its DR real servers share the VIP in one \
             namespace, so any of them would accept the segment)"
        );
        open.socket.set_read_timeout(Some(SEND_TIMEOUT))?;
        let reset = |e: &std::io::Error| {
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
        };
        let sent = match (&open.socket).write_all(b"lvsim\n") {
            Err(e) if reset(&e) => Sent::Reset,
            Err(e) => return Err(e).with_context(|| format!("writing on connection {n}")),
            Ok(()) => {
                let mut buf = [0u8; 64];
                match (&open.socket).read(&mut buf) {
                    Ok(0) => Sent::Reset,
                    Ok(len) => {
                        let text = String::from_utf8_lossy(&buf[..len]);
                        let addr =
                            text.trim().parse().with_context(|| format!("server answered {text:?}"))?;
                        Sent::Reached(addr)
                    }
                    Err(e) if reset(&e) => Sent::Reset,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Sent::Lost
                    }
                    Err(e) => return Err(e).with_context(|| format!("reading on connection {n}")),
                }
            }
        };
        if sent == Sent::Reset {
            self.conns.remove(&n);
        }
        self.last_traffic = Some(Instant::now());
        self.armed_late = self.armed_late.max(self.lateness());
        Ok(sent)
    }

    /// Write and read `/proc/sys/net/ipv4/vs/NAME` in the director's namespace.
    fn sysctl(&mut self, name: Sysctl, value: Option<i64>) -> anyhow::Result<i64> {
        let path = format!("/proc/sys/net/ipv4/vs/{}", name.name());
        self.enter(&self.director_fd)?;
        let result = (|| {
            if let Some(v) = value {
                std::fs::write(&path, format!("{v}\n")).with_context(|| format!("writing {v} to {path}"))?;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            text.trim().parse::<i64>().with_context(|| format!("{path} holds {text:?}"))
        })();
        self.leave()?;
        result
    }
}

/// What the namespaces must provide for a script.
#[derive(Default)]
struct Needs {
    vips: BTreeSet<Ipv4Addr>,
    clients: BTreeSet<Ipv4Addr>,
    reals: BTreeSet<Ipv4Addr>,
    ports: BTreeSet<(Protocol, u16)>,
    direct_routing: bool,
    /// Source addresses of lone SYNs (`syn`).
    syn_sources: BTreeSet<Ipv4Addr>,
}

impl Needs {
    fn of(script: &Script) -> anyhow::Result<Needs> {
        let mut n = Needs::default();
        let v4 = |a: IpAddr, line: usize| match a {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => bail!("line {line}: --kernel replays IPv4 only"),
        };
        for l in &script.lines {
            match &l.event {
                Event::Ipvsadm { command, .. } => match command {
                    Command::AddService(ServiceKey::Addr { addr, .. }, _) => {
                        n.vips.insert(v4(*addr, l.lineno)?);
                    }
                    Command::AddService(ServiceKey::Fwmark { .. }, _) => {
                        bail!("line {}: --kernel does not replay firewall-mark services", l.lineno)
                    }
                    Command::AddDest(key, d) | Command::EditDest(key, d) => {
                        n.reals.insert(v4(d.addr, l.lineno)?);
                        match d.fwd {
                            Forwarding::Masq => {}
                            Forwarding::DirectRouting => n.direct_routing = true,
                            f => bail!("line {}: --kernel replays NAT and DR only, not {f:?}", l.lineno),
                        }
                        let proto = match key {
                            ServiceKey::Addr { protocol, .. } => *protocol,
                            ServiceKey::Fwmark { .. } => Protocol::Tcp,
                        };
                        n.ports.insert((proto, d.port));
                    }
                    _ => {}
                },
                Event::Connect { target, clients, .. } => {
                    n.vips.insert(v4(target.addr.ip(), l.lineno)?);
                    for c in clients {
                        n.clients.insert(v4(c.ip(), l.lineno)?);
                    }
                }
                Event::Syn { target, clients, .. } => {
                    n.vips.insert(v4(target.addr.ip(), l.lineno)?);
                    for c in clients {
                        n.syn_sources.insert(v4(c.ip(), l.lineno)?);
                    }
                }
                _ => {}
            }
        }
        Ok(n)
    }
}

/// An IPv4 TCP SYN from `src` to `dst` (window 64240, no options), with its TCP
/// checksum; the kernel fills in the IP header's length, id and checksum.
fn syn_packet(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    tcp[16..18].copy_from_slice(&inet_checksum(&pseudo).to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src.ip().octets());
    ip.extend_from_slice(&dst.ip().octets());
    ip.extend_from_slice(&tcp);
    ip
}

/// The Internet checksum (RFC 1071) of an even-length buffer.
fn inet_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Process::new("ip").args(args))
}

fn run(cmd: &mut Process) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// A row of `/proc/net/ip_vs_conn` (IPv4): `Pro FromIP FPrt ToIP TPrt DestIP DPrt State
/// Expires ...`, addresses and ports in hex.
fn parse_conn_line(line: &str) -> Option<(String, SocketAddr, SocketAddr, String)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 9 {
        return None;
    }
    let addr = |a: &str, p: &str| -> Option<SocketAddr> {
        let ip = u32::from_str_radix(a, 16).ok()?;
        let port = u16::from_str_radix(p, 16).ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    };
    Some((f[0].to_owned(), addr(f[1], f[2])?, addr(f[5], f[6])?, f[7].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_ip_vs_conn_rows() {
        let row = "TCP  C0A80007 9C41 0A000001 0050 0A000002 1F90 ESTABLISHED 899";
        let (p, c, d, st) = parse_conn_line(row).unwrap();
        assert_eq!(p, "TCP");
        assert_eq!(c, "192.168.0.7:40001".parse().unwrap());
        assert_eq!(d, "10.0.0.2:8080".parse().unwrap());
        assert_eq!(st, "ESTABLISHED");
        assert!(parse_conn_line("Pro FromIP   FPrt").is_none());
    }

    #[test]
    fn syn_packets_carry_a_valid_tcp_checksum() {
        let p = syn_packet("10.99.0.1:1000".parse().unwrap(), "10.10.0.1:80".parse().unwrap());
        assert_eq!(p.len(), 40);
        assert_eq!(p[33], 0x02, "SYN flag only");
        // Summing the pseudo-header and the segment, checksum included, gives 0xffff.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 6, 0, 20]);
        pseudo.extend_from_slice(&p[20..]);
        assert_eq!(inet_checksum(&pseudo), 0);
        // RFC 1071's example.
        assert_eq!(!inet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }
}
