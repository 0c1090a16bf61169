//! The result of analysing one input: plain data that renderers turn into text or JSON.

use crate::format::Format;
use crate::kind::Teardown;
use crate::link_type::LinkType;
use crate::segment::Flags;
use crate::seq::SeqNum;
use crate::state::Timeline;
use crate::warning::Warning;
use std::net::SocketAddr;

pub use crate::side::Side;

/// What one packet means for the connection's life, decided by the classifier; renderers
/// turn it into words (English or Chinese).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// SYN without ACK: opens the connection.
    Syn,
    /// SYN+ACK.
    SynAck,
    /// The ACK that completes the handshake.
    HandshakeAck,
    /// Carries data (and maybe an ACK).
    Data,
    /// Pure ACK of data; nothing to do with the close.
    Ack,
    /// Pure ACK sent after the peer's FIN went out, covering the peer's data but not its FIN
    /// (the seed's three-way packet 8: the FIN was not yet received when it was sent).
    AckDataNotFin,
    /// The first FIN: its sender starts the close (active closer).
    FinFirst,
    /// The passive side's separate ACK of the first FIN (four-way). `delay_ns`: time since the
    /// first FIN was captured (the delayed ACK shows up here as ~40 ms on Linux).
    AckOfFirstFin {
        /// Nanoseconds since FIN(active) was captured.
        delay_ns: i64,
    },
    /// Data the passive side sends after it received the first FIN (half-close).
    DataAfterFin,
    /// The second FIN, carrying the ACK of the first (three-way).
    FinWithAckOfFirst,
    /// The second FIN, after a separate ACK (four-way).
    FinSecond,
    /// A FIN sent before its sender received the peer's FIN (simultaneous close).
    FinCrossed,
    /// A retransmission of a FIN already seen.
    FinRetransmit,
    /// ACK of the peer's FIN in a simultaneous close.
    AckOfCrossedFin,
    /// The final ACK: acknowledges the last FIN; the connection is over.
    FinalAck,
    /// A duplicate/extra ACK after the final ACK (e.g. from TIME_WAIT).
    AckAfterClose,
    /// RST that ends the connection.
    Rst,
    /// RST after both FINs (warning `late-rst`).
    LateRst,
}

/// One stored packet of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PacketInfo {
    /// 1-based packet number in file order.
    pub number: u64,
    /// Capture timestamp, ns.
    pub ts_ns: i64,
    /// Which endpoint sent it.
    pub from: Side,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number.
    pub ack: SeqNum,
    /// Flags.
    pub flags: Flags,
    /// Payload length.
    pub len: u32,
    /// Window.
    pub window: u16,
    /// The segment's fingerprint (IP id, TCP checksum, options: [`crate::Segment`]): equal in
    /// two captures of the same transmission, different for a retransmission. 0 = unknown.
    pub fingerprint: u64,
    /// Meaning for the close.
    pub role: Role,
}

/// One connection's full analysis.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Client address (SYN sender, or higher port when guessed).
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// How it ended.
    pub teardown: Teardown,
    /// Packet numbers of the teardown: from the first FIN or RST to the connection's end.
    pub teardown_packets: Vec<u64>,
    /// Per-endpoint state timelines, indexed by [`Side::idx`].
    pub states: [Timeline; 2],
    /// Connection-level warnings.
    pub warnings: Vec<Warning>,
    /// Stored packets in file order (very long connections keep the start and the teardown;
    /// `elided` counts what was left out).
    pub packets: Vec<PacketInfo>,
    /// Number of packets not stored.
    pub elided: u64,
    /// Total packets of this connection (stored + elided).
    pub packet_count: u64,
    /// First packet number.
    pub first_packet: u64,
    /// Timestamp of the file's first packet (for relative times).
    pub file_start_ns: i64,
    /// The encapsulations its packets came through, outermost first (empty: none).
    pub encap: Vec<crate::encap::EncapLayer>,
    /// Zeek's `conn_state` and `history` for it (None with [`crate::Detail::Verdict`]).
    pub zeek: Option<crate::zeek::ZeekView>,
    /// Payload bytes captured from each side, indexed by [`Side::idx`] (retransmissions
    /// included).
    pub bytes: [u64; 2],
    /// Every RST with its most likely cause (empty with [`crate::Detail::Verdict`]).
    pub rst: Vec<crate::rst::RstInfo>,
}

impl Connection {
    /// The address of `side`.
    pub fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
}

/// Whole-file summary (counts per kind are computed by [`crate::Summary`]).
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// The name the input was given (`-` for stdin).
    pub source: String,
    /// Detected format.
    pub format: Format,
    /// Link type of the first interface; None for text.
    pub link_type: Option<LinkType>,
    /// Packets read (frames or text lines with a packet).
    pub packets: u64,
    /// Packets that were not TCP.
    pub non_tcp: u64,
    /// Frames dropped as the second copy of the same packet (loopback, AF_PACKET).
    pub duplicates: u64,
    /// Segments (not SYN) on a 4-tuple whose connection had ended and been handed on: not a
    /// new connection (docs/teardown.md), so only counted.
    pub after_close: u64,
    /// File-level warnings.
    pub warnings: Vec<Warning>,
}

/// Everything about one input, connections in order of their first packet.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// File-level facts.
    pub file: FileInfo,
    /// Connections in order of first packet.
    pub connections: Vec<Connection>,
}
