//! The IPVS TCP connection state machine (`ip_vs_proto_tcp.c`) and its timeouts.

use lvs_sched::Duration;

/// IPVS TCP connection states (`IP_VS_TCP_S_*`), in the kernel's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// NONE (0).
    None = 0,
    /// ESTABLISHED (1).
    Established = 1,
    /// SYN_SENT (2).
    SynSent = 2,
    /// SYN_RECV (3).
    SynRecv = 3,
    /// FIN_WAIT (4).
    FinWait = 4,
    /// TIME_WAIT (5).
    TimeWait = 5,
    /// CLOSE (6).
    Close = 6,
    /// CLOSE_WAIT (7).
    CloseWait = 7,
    /// LAST_ACK (8).
    LastAck = 8,
    /// LISTEN (9).
    Listen = 9,
    /// SYNACK (10).
    SynAck = 10,
}

impl TcpState {
    const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with the kernel's number `code` (`IP_VS_TCP_S_*`, as sync messages carry
    /// it), if there is one.
    pub fn from_code(code: u16) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(code)).copied()
    }

    /// The name `ipvsadm -L -c` prints.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Counted in `activeconns` (current kernels count the pre-established states too).
    pub const fn is_active(self) -> bool {
        // ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK, as a bit mask (one test per packet).
        const ACTIVE: u16 = 1 << TcpState::Established as u16
            | 1 << TcpState::SynSent as u16
            | 1 << TcpState::SynRecv as u16
            | 1 << TcpState::SynAck as u16;
        ACTIVE & (1 << self as u16) != 0
    }

    /// Default timeout of the state (`tcp_timeouts[]`).
    pub const fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            TcpState::None => 2,
            TcpState::Established => 900,
            TcpState::SynSent => 120,
            TcpState::SynRecv => 60,
            TcpState::FinWait => 120,
            TcpState::TimeWait => 120,
            TcpState::Close => 10,
            TcpState::CloseWait => 60,
            TcpState::LastAck => 30,
            TcpState::Listen => 120,
            TcpState::SynAck => 120,
        })
    }
}

/// Which way a segment travels, and which table the kernel uses for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to real server, seen by the director (INPUT table).
    Input,
    /// Real server to client, seen only in NAT (OUTPUT table).
    Output,
    /// Client to real server on a connection whose replies the director never sees
    /// (DR, TUN: `NOOUTPUT`; INPUT_ONLY table).
    InputOnly,
}

/// The TCP flag the state machine considers, in the kernel's priority order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// SYN.
    Syn,
    /// FIN.
    Fin,
    /// ACK.
    Ack,
    /// RST.
    Rst,
}

use TcpState as S;
const ES: S = S::Established;
const SS: S = S::SynSent;
const SR: S = S::SynRecv;
const FW: S = S::FinWait;
const TW: S = S::TimeWait;
const CL: S = S::Close;
const CW: S = S::CloseWait;
const LA: S = S::LastAck;
const LI: S = S::Listen;
const SA: S = S::SynAck;

/// `tcp_states[]` (the normal, non-"secure_tcp" table): `[direction][flag][state]`.
const TABLE: [[[S; 11]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// `tcp_states_dos[]`, the table `secure_tcp` switches to (`tcp_timeout_change()`):
/// `[direction][flag][state]`. It differs from [`TABLE`] where a half-open connection
/// goes: an INPUT ACK leaves SYN_RECV in SYN_RECV (the client's ACK alone no longer
/// establishes a NAT connection: the server's reply must be seen), an OUTPUT SYN-ACK
/// moves SYN_RECV to SYNACK, and an INPUT_ONLY (DR, TUN) SYN starts in SYNACK.
const TABLE_DOS: [[[S; 11]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// Next state after a segment (`set_tcp_state()` with the normal table).
pub fn transition(dir: Direction, seg: Segment, state: TcpState) -> TcpState {
    transition_in(false, dir, seg, state)
}

/// Next state after a segment with the table in force: `tcp_states_dos` if `secure`
/// (`secure_tcp` on), else `tcp_states`.
#[inline]
pub fn transition_in(secure: bool, dir: Direction, seg: Segment, state: TcpState) -> TcpState {
    let d = match dir {
        Direction::Input => 0,
        Direction::Output => 1,
        Direction::InputOnly => 2,
    };
    let f = match seg {
        Segment::Syn => 0,
        Segment::Fin => 1,
        Segment::Ack => 2,
        Segment::Rst => 3,
    };
    let table = if secure { &TABLE_DOS } else { &TABLE };
    table[d][f][state as usize]
}

/// The state timeouts of one network namespace (`ipvsadm --set tcp tcpfin udp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [Duration; 11],
    /// UDP entry timeout.
    pub udp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { tcp: TcpState::ALL.map(TcpState::default_timeout), udp: Duration::from_secs(300) }
    }
}

impl Timeouts {
    /// Timeout of a TCP state.
    pub fn tcp(&self, s: TcpState) -> Duration {
        self.tcp[s as usize]
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP; `None` leaves one
    /// unchanged (the kernel's 0).
    pub fn set(&mut self, tcp: Option<Duration>, tcpfin: Option<Duration>, udp: Option<Duration>) {
        if let Some(t) = tcp {
            self.tcp[TcpState::Established as usize] = t;
        }
        if let Some(t) = tcpfin {
            self.tcp[TcpState::FinWait as usize] = t;
        }
        if let Some(t) = udp {
            self.udp = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_handshake_and_graceful_close_ends_in_time_wait() {
        let mut s = TcpState::None;
        for (dir, seg) in [
            (Direction::Input, Segment::Syn),
            (Direction::Output, Segment::Syn),
            (Direction::Input, Segment::Ack),
        ] {
            s = transition(dir, seg, s);
        }
        assert_eq!(s, TcpState::Established);
        for (dir, seg) in [
            (Direction::Input, Segment::Fin),
            (Direction::Output, Segment::Ack),
            (Direction::Output, Segment::Fin),
            (Direction::Input, Segment::Ack),
        ] {
            s = transition(dir, seg, s);
        }
        assert_eq!(s, TcpState::TimeWait);
        assert!(!s.is_active());
    }

    #[test]
    fn direct_routing_close_ends_in_fin_wait_and_rst_in_close() {
        let mut s = transition(Direction::InputOnly, Segment::Syn, TcpState::None);
        assert_eq!(s, TcpState::SynRecv);
        assert!(s.is_active(), "a SYN_RECV entry counts as active");
        s = transition(Direction::InputOnly, Segment::Ack, s);
        assert_eq!(s, TcpState::Established);
        let fin = transition(Direction::InputOnly, Segment::Fin, s);
        assert_eq!(transition(Direction::InputOnly, Segment::Ack, fin), TcpState::FinWait);
        assert_eq!(transition(Direction::Input, Segment::Rst, s), TcpState::Close);
        assert_eq!(TcpState::Close.default_timeout(), Duration::from_secs(10));
    }
}
