//! A connection as the table builds it, before classification: plain data and the
//! bookkeeping of one packet at a time. A leaf below `conn.rs` (which tracks connections) and
//! `teardown.rs`/`rst.rs` (which classify them): it imports only the data modules beneath
//! them (segment, seq, side, encap, zeek), so the crate reads read → decode → track →
//! classify → render without a circle.

use crate::segment::{Flags, Segment};
use crate::seq::SeqNum;
use crate::side::Side;
use std::net::SocketAddr;

/// How much of each [`Connection`] [`analyze_stream`] fills in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Detail {
    /// Everything, including [`Connection::packets`] with each packet's role.
    #[default]
    Full,
    /// Everything the contract's JSON prints: no per-packet list.
    Json,
    /// Only [`Connection::teardown`], addresses and counts (states, warnings and
    /// `teardown_packets` stay empty), handed on in the order connections finish rather
    /// than first-packet order: for counting outcomes in huge files.
    Verdict,
}

/// One stored packet, direction relative to the connection's first packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pkt {
    pub number: u64,
    pub ts_ns: i64,
    /// true when sent by the endpoint that sent the connection's first captured packet.
    pub from_first: bool,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: Flags,
    pub len: u32,
    pub window: u16,
    pub fingerprint: u64,
    /// The IP header's TTL and id (for telling a middlebox's RST).
    pub ip: crate::segment::IpFacts,
}

impl Pkt {
    /// Sequence space this segment occupies: data, plus one for SYN and one for FIN.
    pub fn seq_end(&self) -> SeqNum {
        self.data_end().plus(u32::from(self.flags.fin()))
    }
    /// Sequence number after the segment's data (and SYN), before any FIN.
    pub fn data_end(&self) -> SeqNum {
        self.seq.plus(self.len).plus(u32::from(self.flags.syn()))
    }
}

/// Per-direction running aggregates that survive eliding stored packets.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DirAgg {
    /// Highest seq_end sent (including SYN/FIN).
    pub max_seq_end: Option<SeqNum>,
    /// Highest data_end sent (excluding FIN).
    pub max_data_end: Option<SeqNum>,
    /// Highest ack sent (ACK flag set).
    pub max_ack: Option<SeqNum>,
    /// Start of the first hole in this direction's captured sequence space, if any is open.
    pub hole: Option<SeqNum>,
}

impl DirAgg {
    fn update(&mut self, p: &Pkt) {
        let end = p.seq_end();
        if let Some(max) = self.max_seq_end {
            // A segment starting beyond everything seen so far leaves bytes uncaptured.
            if !max.covers(p.seq) && self.hole.is_none() {
                self.hole = Some(max);
            }
        }
        if let Some(h) = self.hole {
            if h.covers(p.seq) && !h.covers(end) {
                self.hole = None;
            }
        }
        self.max_seq_end = Some(self.max_seq_end.map_or(end, |m| m.max(end)));
        // Only segments that carry bytes say where the sender's data ends; a bare ACK's
        // seq may already sit past a FIN the capture missed.
        if p.len > 0 || p.flags.syn() {
            let dend = p.data_end();
            self.max_data_end = Some(self.max_data_end.map_or(dend, |m| m.max(dend)));
        }
        if p.flags.ack() {
            self.max_ack = Some(self.max_ack.map_or(p.ack, |m| m.max(p.ack)));
        }
    }
}

/// A connection being built by the table in `conn.rs`; handed to `teardown::finish` when over.
#[derive(Debug)]
pub(crate) struct RawConn {
    /// Sender of the first captured packet.
    pub first_src: SocketAddr,
    pub first_dst: SocketAddr,
    pub first_packet: u64,
    pub last_ts: i64,
    pub packets: Vec<Pkt>,
    pub elided: u64,
    pub packet_count: u64,
    /// Aggregates indexed by `from_first as usize` (1 = first sender, 0 = the other).
    pub agg: [DirAgg; 2],
    /// ISN of a SYN (without ACK) and which direction sent it.
    pub syn: Option<(bool, SeqNum)>,
    /// Direction of the first SYN+ACK.
    pub synack: Option<bool>,
    pub(crate) fin_seen: [bool; 2],
    pub(crate) rst_seen: bool,
    pub(crate) closing_started: bool,
    /// Already queued for retirement (`retire_due` re-queues lazily).
    pub(crate) queued: u8,
    /// Fingerprints of the last few packets, kept inline so the duplicate check does not
    /// have to touch `packets` (a cache miss per packet on big captures).
    pub(crate) recent: [u64; 4],
    /// This connection's slot in the output order (`conn.rs`'s `Order`).
    pub(crate) slot: u64,
    /// Timestamp of the file's first packet (set when the connection is handed on).
    pub file_start_ns: i64,
    /// Encapsulation path of the first packet (the same for all: it is part of the key).
    pub encap: Option<crate::encap::EncapPath>,
    /// Zeek's view of the connection, fed every segment (None with [`Detail::Verdict`]).
    /// Inline, not boxed: fed every packet, a box of its own cost a cache miss per packet
    /// (a boxed track made `--json` on tunnels 1.7× slower); with `Verdict` its bytes are
    /// never touched but for the tag.
    pub zeek: Option<crate::zeek::ZeekTrack>,
    /// The table's hash of the connection's key (`conn.rs`).
    pub(crate) hash: u64,
    /// The table's number for this connection, unique within the table: tells a queued
    /// connection from a later one that took its place.
    pub(crate) serial: u64,
    /// Payload bytes captured per direction (indexed like `agg`), retransmissions included.
    pub bytes: [u64; 2],
}

impl RawConn {
    /// A new connection starting with `seg`; `zeek`: follow it the way Zeek does.
    pub(crate) fn new(number: u64, seg: &Segment, buffer: Option<Vec<Pkt>>, zeek: bool) -> RawConn {
        RawConn {
            first_src: seg.src,
            first_dst: seg.dst,
            first_packet: number,
            last_ts: seg.ts_ns,
            packets: buffer.unwrap_or_else(|| Vec::with_capacity(12)),
            elided: 0,
            packet_count: 0,
            agg: [DirAgg::default(); 2],
            syn: None,
            synack: None,
            fin_seen: [false; 2],
            rst_seen: false,
            closing_started: false,
            queued: 0,
            recent: [0; 4],
            slot: 0,
            file_start_ns: 0,
            encap: seg.encap.clone(),
            zeek: zeek
                .then(|| crate::zeek::ZeekTrack::new(seg.flags, seg.src.port(), seg.dst.port())),
            hash: 0,
            serial: 0,
            bytes: [0; 2],
        }
    }

    /// Start over as a new connection, keeping the memory of its packet buffer.
    pub(crate) fn reuse(&mut self, number: u64, seg: &Segment, zeek: bool) {
        let mut packets = std::mem::take(&mut self.packets);
        packets.clear();
        // A buffer grown by a long connection goes back to the usual size.
        if packets.capacity() > 64 {
            packets = Vec::with_capacity(12);
        }
        *self = RawConn::new(number, seg, Some(packets), zeek);
    }

    /// Over as far as a new SYN is concerned: both FINs, or an RST.
    pub(crate) fn ended(&self) -> bool {
        self.rst_seen || (self.fin_seen[0] && self.fin_seen[1])
    }

    /// Nothing more is expected: RST, or both FINs and both acknowledged.
    pub(crate) fn complete(&self) -> bool {
        if self.rst_seen {
            return true;
        }
        if !self.ended() {
            return false;
        }
        // Both FINs seen: complete when each direction's FIN is covered by the other's ack.
        (0..2).all(
            |d| match (self.agg[d].max_seq_end, self.agg[1 - d].max_ack) {
                (Some(end), Some(ack)) => ack.covers(end),
                _ => false,
            },
        )
    }

    pub(crate) fn push(&mut self, p: Pkt, max_stored: usize) {
        if let Some(zeek) = &mut self.zeek {
            zeek.packet(
                p.number,
                usize::from(p.from_first),
                p.ts_ns,
                p.seq,
                p.ack,
                p.flags,
                p.len,
                p.window,
            );
        }
        self.bytes[usize::from(p.from_first)] += u64::from(p.len);
        self.recent[(self.packet_count % 4) as usize] = p.fingerprint;
        self.packet_count += 1;
        self.last_ts = p.ts_ns;
        let d = usize::from(p.from_first);
        self.agg[d].update(&p);
        if p.flags.syn() && !p.flags.ack() && self.syn.is_none() {
            self.syn = Some((p.from_first, p.seq));
        }
        if p.flags.syn() && p.flags.ack() && self.synack.is_none() {
            self.synack = Some(p.from_first);
        }
        let control = p.flags.syn() || p.flags.fin() || p.flags.rst();
        if p.flags.fin() {
            self.fin_seen[d] = true;
        }
        if p.flags.rst() {
            self.rst_seen = true;
        }
        // Keep the start and the whole close; elide the middle of very long transfers.
        let keep = control
            || self.packets.len() < max_stored
            || (self.closing_started && self.packets.len() < 2 * max_stored);
        if control && (p.flags.fin() || p.flags.rst()) {
            self.closing_started = true;
        }
        if keep {
            self.packets.push(p);
        } else {
            self.elided += 1;
        }
    }

    /// Is `p` the second copy of a packet already stored (loopback seen by AF_PACKET)?
    pub(crate) fn is_duplicate(&self, p: &Pkt, window_ns: i64) -> bool {
        if p.fingerprint == 0 || !self.recent.contains(&p.fingerprint) {
            return false;
        }
        self.packets.iter().rev().take(8).any(|q| {
            q.fingerprint == p.fingerprint
                && q.from_first == p.from_first
                && q.seq == p.seq
                && q.ack == p.ack
                && q.flags == p.flags
                && q.len == p.len
                && p.ts_ns.saturating_sub(q.ts_ns).saturating_abs() <= window_ns
        })
    }
}

/// Decide which endpoint is the client: the SYN sender; else the SYN+ACK receiver; else the
/// higher port (docs/teardown.md: the lower port is taken as the server). Returns
/// (first_src_is_client, roles_guessed, handshake_captured).
pub(crate) fn roles(raw: &RawConn) -> (bool, bool, bool) {
    match (raw.syn, raw.synack) {
        (Some((dir, _)), Some(_)) => (dir, false, true),
        (Some((dir, _)), None) => (dir, false, false),
        (None, Some(sa_dir)) => (!sa_dir, false, false),
        (None, None) => {
            let (a, b) = (raw.first_src, raw.first_dst);
            let first_is_client = match a.port().cmp(&b.port()) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => a.ip() > b.ip(),
            };
            (first_is_client, true, false)
        }
    }
}

/// Map a stored packet's direction onto a side.
pub(crate) fn side_of(p: &Pkt, first_is_client: bool) -> Side {
    if p.from_first == first_is_client {
        Side::Client
    } else {
        Side::Server
    }
}
