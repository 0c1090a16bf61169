//! The decoded unit every reader produces: one TCP segment, owned and plain.

use crate::encap::EncapPath;
use crate::seq::SeqNum;
use std::net::SocketAddr;

/// TCP control flags that matter for teardown analysis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Flags(pub u8);

impl Flags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push function.
    pub const PSH: u8 = 0x08;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// URG: urgent pointer field is significant.
    pub const URG: u8 = 0x20;

    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// Whether PSH is set.
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }

    /// tcpdump's notation: `S`, `F`, `R`, `P`, `U`, then `.` for ACK (`[F.]`, `[S.]`, `[.]`).
    pub fn tcpdump(self) -> String {
        let mut s = String::with_capacity(6);
        for (bit, c) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::PSH, 'P'),
            (Self::RST, 'R'),
            (Self::URG, 'U'),
        ] {
            if self.0 & bit != 0 {
                s.push(c);
            }
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}

/// What the IP header said about the packet's sender: an RST forged on the path (a
/// middlebox's) tends to get these wrong ([`crate::rst`]). Kept where the input shows them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct IpFacts {
    /// IPv4 TTL or IPv6 hop limit as captured (0: not known, e.g. plain tcpdump text).
    pub ttl: u8,
    /// IPv4 identification (None: IPv6, or not shown).
    pub id: Option<u16>,
}

/// One TCP segment as seen in the capture.
///
/// `ts_ns` is nanoseconds since the Unix epoch for binary captures; for tcpdump text it is
/// nanoseconds since the midnight of the listing's first day (text carries no date).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Capture timestamp in nanoseconds.
    pub ts_ns: i64,
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number (absolute).
    pub seq: SeqNum,
    /// Acknowledgment number (absolute; meaningful only when `flags.ack()`).
    pub ack: SeqNum,
    /// Control flags.
    pub flags: Flags,
    /// Payload length in bytes (as sent, even when the capture truncated the payload).
    pub len: u32,
    /// Advertised window (unscaled).
    pub window: u16,
    /// Fingerprint of the IP+TCP header bytes that identify this exact transmission
    /// (IPv4 identification, TCP checksum, timestamps option, …). Two captured frames with
    /// equal tuple, seq, ack, flags, len and `fingerprint` close together in time are one
    /// packet seen twice (loopback via AF_PACKET); a retransmission differs. 0 = unknown.
    pub fingerprint: u64,
    /// The encapsulations the packet came through, outermost first (None: plain). Part of
    /// the connection's identity. Shared by the packets of one path (see [`EncapPath`]).
    pub encap: Option<EncapPath>,
    /// The (innermost) IP header's TTL and id.
    pub ip: IpFacts,
}
