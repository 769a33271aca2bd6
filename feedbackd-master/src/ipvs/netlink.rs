//! The generic-netlink backend: one `NETLINK_GENERIC` socket, one transmit and one
//! receive buffer, reused for every call (a weight update is one `send` and one `recv`).
//!
//! A request carries a fresh sequence number; replies with another one (left over from a
//! request that timed out) are skipped. Set commands ask for an ACK; dumps end with
//! `NLMSG_DONE`. A refusal comes back as a negative errno and becomes [`Error::Kernel`].
//! The bytes are made and read by [`codec`], which is pure.

pub mod codec;

use core::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use self::codec::{Reply, attr, cmd};
use lvs_ipvs::{DestConfig, ServiceConfig};

use crate::ipvs::{DestRow, Error, ServiceKey, ServiceRow, dest_name};

/// Receive buffer: larger than any datagram the kernel builds for a dump (≤ 32 KiB).
const RECV_BUF_LEN: usize = 64 * 1024;
/// How long to wait for the kernel's answer before giving up [s].
const RECV_TIMEOUT_S: i64 = 5;
/// Requested socket receive buffer [bytes], so a batch's ACKs all fit.
const SOCKET_RCVBUF: usize = 1 << 20;
/// SET_DEST messages per datagram in a batch. Only the last asks for an ACK, but each
/// refusal is its own skb in our receive queue, which the kernel drops (ENOBUFS) once full.
const BATCH_CHUNK: usize = 64;

/// An open generic-netlink connection to the kernel's IPVS.
#[derive(Debug)]
pub(crate) struct NetlinkBackend {
    fd: OwnedFd,
    family: u16,
    seq: u32,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

fn sys(what: &str, e: Errno) -> Error {
    Error::Other(format!("netlink {what}: {}", e.desc()))
}

impl NetlinkBackend {
    /// Opens the socket and resolves the `IPVS` family id.
    pub(crate) fn open() -> Result<NetlinkBackend, Error> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(|e| sys("socket", e))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| sys("bind", e))?;
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::seconds(RECV_TIMEOUT_S))
            .map_err(|e| sys("SO_RCVTIMEO", e))?;
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &SOCKET_RCVBUF);
        let mut b =
            NetlinkBackend { fd, family: 0, seq: 0, tx: Vec::with_capacity(4096), rx: vec![0; RECV_BUF_LEN] };
        b.family = b.resolve_family()?;
        Ok(b)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn resolve_family(&mut self) -> Result<u16, Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_get_family(&mut self.tx, seq, codec::IPVS_GENL_NAME);
        let mut id = None;
        let r = self.transact(
            codec::GENL_ID_CTRL,
            seq,
            1,
            &|_| "CTRL_CMD_GETFAMILY IPVS".to_owned(),
            |_, attrs| {
                id = Some(codec::parse_family_id(attrs)?);
                Ok(())
            },
        );
        match (r, id) {
            (Ok(()), Some(id)) => Ok(id),
            (Ok(()), None) => Err(Error::Other("CTRL_CMD_GETFAMILY IPVS: no reply".to_owned())),
            (Err(Error::Kernel { errno: libc::ENOENT, .. }), _) => Err(Error::Other(
                "the kernel has no generic netlink family IPVS: is the ip_vs module loaded?".to_owned(),
            )),
            (Err(e), _) => Err(e),
        }
    }

    fn send_tx(&self) -> Result<(), Error> {
        loop {
            match socket::send(self.fd.as_raw_fd(), &self.tx, MsgFlags::empty()) {
                Ok(n) if n == self.tx.len() => return Ok(()),
                Ok(n) => {
                    return Err(Error::Other(format!("netlink send: {n} of {} bytes sent", self.tx.len())));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys("send", e)),
            }
        }
    }

    fn recv(&mut self) -> Result<usize, Error> {
        loop {
            // MSG_TRUNC: the datagram's real length, so a truncated one is seen as such.
            match socket::recv(self.fd.as_raw_fd(), &mut self.rx, MsgFlags::MSG_TRUNC) {
                Ok(0) => return Err(Error::Other("netlink recv: empty datagram".to_owned())),
                Ok(n) if n > self.rx.len() => {
                    return Err(Error::Other(format!("netlink recv: a {n}-byte datagram was truncated")));
                }
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(Error::Other(format!(
                        "netlink: no reply from the kernel in {RECV_TIMEOUT_S} s"
                    )));
                }
                Err(e) => return Err(sys("recv", e)),
            }
        }
    }

    /// Sends `self.tx`, which holds `count` requests numbered from `first_seq`, and reads
    /// replies until the last one has ended (ACK or DONE): the kernel handles a datagram's
    /// messages in order, so the others' refusals have come by then. Data messages go to
    /// `on_data`. The first refusal (by request order) is returned as [`Error::Kernel`],
    /// described by `op(i)`.
    fn transact(
        &mut self,
        family: u16,
        first_seq: u32,
        count: usize,
        op: &dyn Fn(usize) -> String,
        mut on_data: impl FnMut(u8, &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.send_tx()?;
        let (mut last_ended, mut refused) = (false, None::<(usize, i32)>);
        while !last_ended {
            let n = self.recv()?;
            codec::for_each_reply(&self.rx[..n], family, |seq, reply| {
                let i = seq.wrapping_sub(first_seq) as usize;
                if i >= count || last_ended {
                    return Ok(()); // a late reply to an abandoned request
                }
                match reply {
                    Reply::Data { cmd, attrs } => on_data(cmd, attrs),
                    Reply::Ack { errno } | Reply::Done { errno } => {
                        last_ended = i == count - 1;
                        if errno != 0 && refused.is_none_or(|(j, _)| i < j) {
                            refused = Some((i, errno));
                        }
                        Ok(())
                    }
                }
            })?;
        }
        match refused {
            None => Ok(()),
            Some((i, errno)) => Err(Error::kernel(op(i), errno)),
        }
    }

    /// Every virtual service (GET_SERVICE dump).
    pub(crate) fn services(&mut self) -> Result<Vec<(ServiceKey, ServiceConfig)>, Error> {
        Ok(self.service_rows()?.into_iter().map(|r| (r.key, r.config)).collect())
    }

    /// Every virtual service with its counters and rates (GET_SERVICE dump).
    pub(crate) fn service_rows(&mut self) -> Result<Vec<ServiceRow>, Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_service_dump(&mut self.tx, self.family, seq);
        let mut out = Vec::new();
        self.transact(self.family, seq, 1, &|_| "GET_SERVICE dump".to_owned(), |c, attrs| {
            if c == cmd::NEW_SERVICE {
                out.push(codec::parse_service_row(codec::find_attr(attrs, attr::SERVICE)?)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// NEW_SERVICE or SET_SERVICE (`command`) with every setting of `config`.
    pub(crate) fn service_cmd(
        &mut self,
        command: u8,
        svc: &ServiceKey,
        config: &ServiceConfig,
    ) -> Result<(), Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_service(&mut self.tx, self.family, seq, command, svc, config);
        let name = if command == cmd::NEW_SERVICE { "NEW_SERVICE" } else { "SET_SERVICE" };
        self.transact(self.family, seq, 1, &|_| format!("{name} {svc}"), |_, _| Ok(()))
    }

    /// DEL_SERVICE: the service and its real servers.
    pub(crate) fn remove_service(&mut self, svc: &ServiceKey) -> Result<(), Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_del_service(&mut self.tx, self.family, seq, svc);
        self.transact(self.family, seq, 1, &|_| format!("DEL_SERVICE {svc}"), |_, _| Ok(()))
    }

    /// The real servers of `svc` in kernel list order (GET_DEST dump). The kernel answers
    /// a dump of an unknown service with nothing, so an empty answer is followed by a
    /// GET_SERVICE to tell "no real servers" from ESRCH.
    pub(crate) fn real_servers(&mut self, svc: &ServiceKey) -> Result<Vec<DestRow>, Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_dest_dump(&mut self.tx, self.family, seq, svc);
        let af = svc.af();
        let mut out = Vec::new();
        let op = |_| format!("GET_DEST {svc}");
        self.transact(self.family, seq, 1, &op, |c, attrs| {
            if c == cmd::NEW_DEST {
                out.push(codec::parse_dest_attrs(codec::find_attr(attrs, attr::DEST)?, af)?);
            }
            Ok(())
        })?;
        if out.is_empty() {
            let seq = self.next_seq();
            self.tx.clear();
            codec::encode_get_service(&mut self.tx, self.family, seq, svc);
            self.transact(self.family, seq, 1, &op, |_, _| Ok(()))?;
        }
        Ok(out)
    }

    fn dest_cmd(&mut self, command: u8, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_dest(&mut self.tx, self.family, seq, command, svc, rs);
        let name = if command == cmd::NEW_DEST { "NEW_DEST" } else { "SET_DEST" };
        let op = |_| format!("{name} {}", dest_name(svc, rs.addr, rs.port));
        self.transact(self.family, seq, 1, &op, |_, _| Ok(()))
    }

    /// NEW_DEST.
    pub(crate) fn add_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.dest_cmd(cmd::NEW_DEST, svc, rs)
    }

    /// SET_DEST with every field of `rs`.
    pub(crate) fn edit_real_server(&mut self, svc: &ServiceKey, rs: &DestConfig) -> Result<(), Error> {
        self.dest_cmd(cmd::SET_DEST, svc, rs)
    }

    /// SET_DEST for each of `servers`, up to [`BATCH_CHUNK`] messages per datagram, the last
    /// of each asking for an ACK (one `send` and, when all are accepted, one `recv`).
    pub(crate) fn edit_real_servers_batch(
        &mut self,
        svc: &ServiceKey,
        servers: &[DestConfig],
    ) -> Result<(), Error> {
        let mut first_err = None;
        for chunk in servers.chunks(BATCH_CHUNK) {
            self.tx.clear();
            let first_seq = self.seq.wrapping_add(1);
            for (i, rs) in chunk.iter().enumerate() {
                let seq = self.next_seq();
                let ack = if i + 1 == chunk.len() { codec::NLM_F_ACK } else { 0 };
                let flags = codec::NLM_F_REQUEST | ack;
                codec::encode_dest_flags(&mut self.tx, self.family, seq, flags, cmd::SET_DEST, svc, rs);
            }
            let op = |i: usize| format!("SET_DEST {}", dest_name(svc, chunk[i].addr, chunk[i].port));
            match self.transact(self.family, first_seq, chunk.len(), &op, |_, _| Ok(())) {
                Ok(()) => {}
                Err(e @ Error::Kernel { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// DEL_DEST.
    pub(crate) fn remove_real_server(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), Error> {
        let seq = self.next_seq();
        self.tx.clear();
        codec::encode_del_dest(&mut self.tx, self.family, seq, svc, addr, port);
        let op = |_| format!("DEL_DEST {}", dest_name(svc, addr, port));
        self.transact(self.family, seq, 1, &op, |_, _| Ok(()))
    }
}
