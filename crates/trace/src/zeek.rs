//! Zeek's labels for a connection: `conn_state` and `history` as Zeek's conn.log writes them.
//!
//! People triage connections by these two columns, so tcplab computes them from its own
//! connection tracking (`conn.rs` feeds every segment of a connection here, in file order,
//! elided ones included). The rules follow Zeek's documented semantics (conn.log's field
//! descriptions) and its TCP endpoint model: each endpoint is INACTIVE, SYN_SENT,
//! SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED or RESET; `conn_state` is a function of the two
//! endpoints' final states. Where tcplab differs from a `zeek -r` run (checksums, gaps,
//! analyzer limits, how connections are split), docs/teardown.md says so.
//!
//! History letters: upper case = Zeek's originator, lower case = responder. `S` SYN, `H`
//! SYN+ACK, `A` pure ACK, `D` payload, `F` FIN, `R` RST, `T` retransmitted payload, `W` zero
//! window, `I` FIN+RST, `Q` SYN with FIN or RST, `^` roles flipped. `A`, `D`, `I`, `Q` are
//! written once per direction; `S`, `H`, `F`, `R` again when their sequence number differs
//! from the last one of that kind; `T` and `W` at the 1st, 10th, 100th … occurrence.

use crate::segment::Flags;
use crate::seq::SeqNum;

/// Zeek's `conn_state` values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination (every graceful close).
    SF,
    /// Connection attempt rejected.
    Rej,
    /// Established, the originator's close attempt seen, no reply.
    S2,
    /// Established, the responder's close attempt seen, no reply.
    S3,
    /// Established, the originator aborted (RST).
    Rsto,
    /// The responder sent an RST.
    Rstr,
    /// The originator sent a SYN then an RST; no SYN+ACK seen.
    Rstos0,
    /// The responder sent a SYN+ACK then an RST; no SYN from the originator seen.
    Rstrh,
    /// The originator sent a SYN then a FIN; no SYN+ACK seen ("half" open).
    Sh,
    /// The responder sent a SYN+ACK then a FIN; no SYN from the originator seen.
    Shr,
    /// No SYN seen, just midstream traffic.
    Oth,
}

impl ConnState {
    /// Zeek's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::Rej => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::Rsto => "RSTO",
            ConnState::Rstr => "RSTR",
            ConnState::Rstos0 => "RSTOS0",
            ConnState::Rstrh => "RSTRH",
            ConnState::Sh => "SH",
            ConnState::Shr => "SHR",
            ConnState::Oth => "OTH",
        }
    }
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection in Zeek's words.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZeekView {
    /// Zeek's `conn_state`.
    pub conn_state: ConnState,
    /// Zeek's `history` (empty when no letter applies).
    pub history: String,
    /// Whether Zeek's originator is tcplab's client (Zeek takes the first packet's sender,
    /// unless its port heuristic or a SYN/SYN+ACK reversal flips the roles: `^`).
    pub orig_is_client: bool,
    /// Zeek's further rows for this connection: segments that came after Zeek had removed
    /// it (its timeouts), which Zeek logs as new connections on the same 4-tuple while
    /// tcplab keeps one connection. In file order, each with the packet that began it.
    pub later: Vec<ZeekLater>,
}

/// One of Zeek's further rows on a connection's 4-tuple ([`ZeekView::later`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ZeekLater {
    /// The packet that began the row (Zeek's new connection).
    pub first_packet: u64,
    /// That row's labels (its own `later` is empty).
    pub view: ZeekView,
}

/// Zeek's endpoint states (its `TCP_ENDPOINT_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum EpState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// A letter written at the 1st, 10th, 100th … occurrence.
#[derive(Clone, Copy, Debug)]
struct Scaled {
    count: u32,
    next: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled { count: 0, next: 1 }
    }
}

impl Scaled {
    /// Count one occurrence; true when it reaches the next power of ten.
    fn hit(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        if self.count == self.next {
            self.next = self.next.saturating_mul(10);
            return true;
        }
        false
    }
}

/// One endpoint as Zeek tracks it: its state and the sequence numbers its letters need.
#[derive(Clone, Copy, Debug, Default)]
struct Endpoint {
    state: EpState,
    prev: EpState,
    /// Initial sequence number (the SYN's, or one before the first segment seen).
    start: SeqNum,
    /// One past the highest sequence number sent.
    last: SeqNum,
    /// Highest ack the peer sent for this endpoint's data.
    ack: SeqNum,
    fins: u32,
    /// Relative sequence numbers of the last SYN, FIN (its end) and RST.
    last_syn: u32,
    last_fin: u32,
    last_rst: u32,
    rxmit: Scaled,
    zero_window: Scaled,
    /// Zeek has reported this endpoint's close (FIN or RST).
    did_close: bool,
}

impl Endpoint {
    fn set(&mut self, s: EpState) {
        if s != self.state {
            self.prev = self.state;
            self.state = s;
        }
    }

    fn reinit(&mut self, seq: SeqNum, one_past: SeqNum) {
        self.start = seq;
        self.ack = seq;
        self.last = one_past;
    }

    /// Payload bytes sent, from the sequence numbers; only compared with zero.
    fn size_is_zero(&self) -> bool {
        let sent = i64::from(self.last.diff(self.start)).max(i64::from(self.ack.diff(self.start)));
        let mut size = sent;
        if size != 0 {
            size -= 1; // the SYN (or the one before a partial connection's first byte)
        }
        if self.fins > 0 && size != 0 {
            size -= 1;
        }
        size == 0
    }
}

/// Which letters were already written, per direction.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Syn = 0,
    Fin = 1,
    Rst = 2,
    Ack = 3,
    Data = 4,
    FinRst = 5,
    Multi = 6,
}

/// The history string, kept inline for the common short case (no allocation per
/// connection on a capture of a million of them).
#[derive(Clone, Debug, Default)]
struct Letters {
    inline: [u8; 20],
    len: u8,
    more: Vec<u8>,
}

impl Letters {
    fn push(&mut self, c: u8) {
        if usize::from(self.len) < self.inline.len() {
            self.inline[usize::from(self.len)] = c;
            self.len += 1;
        } else {
            self.more.push(c);
        }
    }

    fn to_string_lossless(&self) -> String {
        let mut s = String::new();
        self.write_into(&mut s);
        s
    }

    /// The letters, replacing what `s` held (its buffer is reused).
    fn write_into(&self, s: &mut String) {
        s.clear();
        s.reserve(usize::from(self.len) + self.more.len());
        for &c in self.inline[..usize::from(self.len)]
            .iter()
            .chain(&self.more)
        {
            s.push(char::from(c));
        }
    }
}

/// Segments of one connection, followed the way Zeek's TCP analyzer follows them.
///
/// Directions are indexed like `conn.rs`'s aggregates: 1 = sent by the connection's first
/// captured packet's sender, 0 = the other.
#[derive(Clone, Debug)]
pub(crate) struct ZeekTrack {
    ep: [Endpoint; 2],
    /// The direction index of Zeek's originator.
    orig: usize,
    seen: u16,
    history: Letters,
    /// The connection began with a SYN+ACK that kept its sender as originator: an ACK or
    /// data segment next flips the roles after all.
    synack_first: bool,
    packets: u32,
    last_ts: i64,
    /// When Zeek gives up on an unanswered SYN (its `tcp_attempt_delay`).
    attempt_until: Option<i64>,
    /// When Zeek removes the connection after its close (`tcp_close_delay`,
    /// `tcp_reset_delay`).
    remove_at: Option<i64>,
    /// Zeek would have removed the connection by now: later segments start a new one in
    /// its log, so they change nothing here.
    over: bool,
    /// The ports of each direction's sender (indexed like `ep`), to judge the roles of a
    /// row Zeek starts anew.
    ports: [u16; 2],
    /// The rows Zeek starts after removing this one ([`ZeekView::later`]): where each began
    /// and its track (empty, so no allocation, for almost every connection).
    later: Vec<(u64, ZeekTrack)>,
}

impl Default for ZeekTrack {
    fn default() -> Self {
        ZeekTrack {
            ep: [Endpoint::default(); 2],
            orig: 1,
            seen: 0,
            history: Letters::default(),
            synack_first: false,
            packets: 0,
            last_ts: 0,
            attempt_until: None,
            remove_at: None,
            over: false,
            ports: [0; 2],
            later: Vec::new(),
        }
    }
}

/// Zeek's defaults for how long it keeps a connection: an unanswered SYN 5 s
/// (`tcp_attempt_delay`), a closed or reset one 5 s (`tcp_close_delay`, `tcp_reset_delay`),
/// an idle one 5 min (`tcp_inactivity_timeout`).
const ATTEMPT_NS: i64 = 5_000_000_000;
const CLOSE_DELAY_NS: i64 = 5_000_000_000;
const INACTIVITY_NS: i64 = 300_000_000_000;

/// At most this many further rows per connection are kept (each needs seconds of silence
/// first, so only a pathological capture has more; the rest are not labelled).
const MAX_LATER_ROWS: usize = 64;

/// Ports that usually belong to servers. Zeek flips a connection whose first packet is not a
/// bare SYN when it comes *from* such a port (its `likely_server_ports`, filled by the
/// protocol analyzers it loads); this is tcplab's fixed list of well-known service ports.
const SERVER_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 135, 137, 139, 143, 179, 389, 443, 445, 502, 513,
    514, 554, 563, 587, 631, 636, 853, 989, 990, 992, 993, 995, 1080, 1194, 1433, 1521, 1723, 1883,
    2049, 2811, 3128, 3268, 3306, 3389, 5060, 5061, 5222, 5223, 5269, 5432, 5672, 5900, 6379, 6666,
    6667, 6668, 6669, 8000, 8080, 8443, 8888, 9200, 11211, 27017,
];

fn likely_server_port(p: u16) -> bool {
    SERVER_PORTS.binary_search(&p).is_ok()
}

impl ZeekTrack {
    /// A connection whose first captured segment has `flags` and goes `src_port` →
    /// `dst_port`: Zeek takes its sender as the originator unless the segment is not a bare
    /// SYN and comes from a likely server port (then `^`).
    pub(crate) fn new(flags: Flags, src_port: u16, dst_port: u16) -> ZeekTrack {
        ZeekTrack::starting(1, flags, src_port, dst_port)
    }

    /// A row that begins with a segment sent in direction `d` (1: the connection's first
    /// sender), with `flags`, from `src_port` to `dst_port`.
    fn starting(d: usize, flags: Flags, src_port: u16, dst_port: u16) -> ZeekTrack {
        let mut t = ZeekTrack {
            orig: d,
            ..ZeekTrack::default()
        };
        t.ports[d] = src_port;
        t.ports[1 - d] = dst_port;
        let partial = !flags.syn() || flags.ack();
        if partial && likely_server_port(src_port) {
            // Both plausible: flip only a non-SYN towards the higher port.
            let flip = if likely_server_port(dst_port) {
                !flags.syn() && src_port < dst_port
            } else {
                true
            };
            if flip {
                t.flip();
            }
        }
        t.synack_first = t.orig == d && flags.syn() && flags.ack();
        t
    }

    /// The connection began with a SYN+ACK kept as the originator's; the segment after it
    /// is an ACK or data, which a stealth scan would not send: the SYN+ACK's sender is the
    /// responder after all. The history so far is rewritten as if flipped from the start.
    fn flip_after_synack(&mut self) {
        self.orig ^= 1;
        let old = self.history.to_string_lossless();
        self.history = Letters::default();
        self.history.push(b'^');
        for c in old.bytes() {
            self.history.push(if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            });
        }
        self.seen = self.seen.rotate_left(8);
        // Its SYN+ACK now reads as the responder's: established, as Zeek has it then.
        let resp = 1 - self.orig;
        self.ep[resp].set(EpState::Established);
    }

    fn flip(&mut self) {
        self.orig ^= 1;
        self.history.push(b'^');
    }

    fn letter(&self, d: usize, c: u8) -> u8 {
        if d == self.orig {
            c
        } else {
            c.to_ascii_lowercase()
        }
    }

    fn add(&mut self, d: usize, c: u8) {
        let c = self.letter(d, c);
        self.history.push(c);
    }

    /// Write `c` the first time this direction shows `kind`; true if it had already.
    fn once(&mut self, d: usize, kind: Kind, c: u8) -> bool {
        let bit = 1u16 << (kind as u16 + if d == self.orig { 0 } else { 8 });
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.add(d, c);
            return false;
        }
        true
    }

    /// Has Zeek removed the connection before a segment captured at `ts`?
    fn removed_before(&mut self, ts: i64) -> bool {
        if self.packets > 0 && ts.saturating_sub(self.last_ts) > INACTIVITY_NS {
            return true;
        }
        if self.remove_at.is_some_and(|t| ts > t) {
            return true;
        }
        if let Some(t) = self.attempt_until {
            if ts > t {
                self.attempt_until = None;
                let (o, r) = (self.ep[self.orig].state, self.ep[1 - self.orig].state);
                if matches!(o, EpState::SynSent | EpState::SynAckSent) && r == EpState::Inactive {
                    return true;
                }
            }
        }
        false
    }

    /// Zeek reports endpoint `d`'s close; once the close is complete the connection is
    /// removed a few seconds later.
    fn closed(&mut self, d: usize, ts: i64) {
        if self.ep[d].did_close {
            return;
        }
        self.ep[d].did_close = true;
        let p = &self.ep[1 - d];
        if self.ep[d].state == EpState::Reset || p.did_close || p.state == EpState::Inactive {
            self.remove_soon(ts);
        }
    }

    fn remove_soon(&mut self, ts: i64) {
        let at = ts.saturating_add(CLOSE_DELAY_NS);
        self.remove_at = Some(self.remove_at.map_or(at, |t| t.min(at)));
    }

    /// Segment `number`, sent in direction `d`, captured at `ts` (ns). After Zeek would
    /// have removed the connection, it goes to the row Zeek starts anew.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn packet(
        &mut self,
        number: u64,
        d: usize,
        ts: i64,
        seq: SeqNum,
        ack: SeqNum,
        flags: Flags,
        len: u32,
        window: u16,
    ) {
        let taken = match self.later.last_mut() {
            Some((_, row)) => row.feed(d, ts, seq, ack, flags, len, window),
            None => self.feed(d, ts, seq, ack, flags, len, window),
        };
        if !taken && self.later.len() < MAX_LATER_ROWS {
            let mut row = ZeekTrack::starting(d, flags, self.ports[d], self.ports[1 - d]);
            row.feed(d, ts, seq, ack, flags, len, window);
            self.later.push((number, row));
        }
    }

    /// One segment for this row; false when Zeek had removed the row before it.
    #[allow(clippy::too_many_arguments)]
    fn feed(
        &mut self,
        d: usize,
        ts: i64,
        seq: SeqNum,
        ack: SeqNum,
        flags: Flags,
        len: u32,
        window: u16,
    ) -> bool {
        if self.over || self.removed_before(ts) {
            self.over = true;
            return false;
        }
        self.packets += 1;
        self.last_ts = ts;
        if self.synack_first && self.packets == 2 {
            self.synack_first = false;
            if !flags.syn() && !flags.fin() && !flags.rst() && (flags.ack() || len > 0) {
                self.flip_after_synack();
            }
        }
        let p = 1 - d;
        // Sequence space: data, SYN and FIN; an RST's payload is not part of the stream.
        let seg_len = if flags.rst() { 0 } else { len }
            .wrapping_add(u32::from(flags.syn()))
            .wrapping_add(u32::from(flags.fin()));
        let one_past = seq.plus(seg_len);
        {
            let e = &mut self.ep[d];
            match e.state {
                EpState::Inactive => {
                    if flags.syn() {
                        e.reinit(seq, one_past);
                    } else {
                        // As if a SYN had come just before, so relative numbers start at 1.
                        let before = SeqNum(seq.0.wrapping_sub(1));
                        e.start = before;
                        e.ack = before;
                        // (and the first segment is not taken for a retransmission).
                        e.last = seq;
                    }
                }
                EpState::SynSent | EpState::SynAckSent => {
                    if flags.syn() && seq != e.start {
                        e.reinit(seq, one_past);
                    }
                }
                EpState::Established | EpState::Partial => {
                    if flags.syn() {
                        e.reinit(seq, one_past);
                    }
                }
                EpState::Reset => {
                    if flags.syn() && e.prev == EpState::Inactive {
                        e.reinit(seq, one_past);
                    }
                }
                EpState::Closed => {}
            }
        }
        let rel = seq.diff(self.ep[d].start) as u32;
        self.history_of(d, flags, rel, len);
        if window == 0
            && !flags.rst()
            && self.ep[p].state != EpState::Closed
            && self.ep[d].state != EpState::Reset
            && self.ep[d].zero_window.hit()
        {
            self.add(d, b'W');
        }
        if flags.fin() {
            self.ep[d].fins += 1;
        }
        if flags.ack() {
            let peer = &mut self.ep[p];
            if peer.state == EpState::Inactive {
                // Number the peer's bytes as if its SYN had been acknowledged.
                let before = SeqNum(ack.0.wrapping_sub(1));
                peer.start = before;
                peer.ack = before;
                peer.last = before;
            } else if !flags.rst() && ack.diff(peer.start) >= 0 {
                let delta = ack.diff(peer.ack);
                // An ack of 0 far ahead is more likely broken than a wrap landing on 0.
                if delta > 0 && !(ack.0 == 0 && delta > TOO_LARGE_SEQ_DELTA) {
                    peer.ack = ack;
                }
            }
        }
        self.advance_last(d, one_past, flags, len);
        let before = self.ep[d].state;
        self.state_machine(d, ts, seq, flags, len);
        let after = self.ep[d].state;
        let closing = (flags.fin() && after == EpState::Closed && before != EpState::Closed)
            || (flags.rst() && after == EpState::Reset && before != EpState::Closed);
        if closing {
            self.closed(d, ts);
        } else if flags.rst() && before == EpState::Closed && after == EpState::Reset {
            // An RST after this side's FIN: Zeek removes the connection a little later.
            self.remove_soon(ts);
        }
        true
    }

    fn history_of(&mut self, d: usize, flags: Flags, rel: u32, len: u32) {
        let control = u8::from(flags.syn()) + u8::from(flags.fin()) + u8::from(flags.rst());
        if control > 1 {
            if flags.fin() && flags.rst() {
                self.once(d, Kind::FinRst, b'I');
            } else {
                self.once(d, Kind::Multi, b'Q');
            }
        } else if flags.syn() {
            let c = if flags.ack() { b'H' } else { b'S' };
            if self.once(d, Kind::Syn, c) && rel != self.ep[d].last_syn {
                self.add(d, c);
            }
            self.ep[d].last_syn = rel;
        } else if flags.fin() {
            // A FIN's number is the end of its data.
            let at = rel.wrapping_add(len);
            if self.once(d, Kind::Fin, b'F') && at != self.ep[d].last_fin {
                self.add(d, b'F');
            }
            self.ep[d].last_fin = at;
        } else if flags.rst() {
            if self.once(d, Kind::Rst, b'R') && rel != self.ep[d].last_rst {
                self.add(d, b'R');
            }
            self.ep[d].last_rst = rel;
        } else if len > 0 {
            self.once(d, Kind::Data, b'D');
        } else if flags.ack() {
            self.once(d, Kind::Ack, b'A');
        }
    }

    /// Move the sender's highest sequence number on; payload that does not is a
    /// retransmission (`T`).
    fn advance_last(&mut self, d: usize, one_past: SeqNum, flags: Flags, len: u32) {
        let e = &mut self.ep[d];
        let delta = one_past.diff(e.last);
        let wild = !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta);
        if (flags.syn() || flags.rst()) && wild {
            // Not trusted.
        } else if flags.fin() && e.last == e.start.plus(1) {
            // Only the SYN and the FIN seen (e.g. a > 2 GB transfer): trust the FIN.
            e.last = one_past;
        } else if e.state == EpState::Reset {
            // Nothing after an RST is trusted.
        } else if delta > 0 {
            e.last = one_past;
        } else if len > 0 && e.rxmit.hit() {
            self.add(d, b'T');
        }
    }

    fn state_machine(&mut self, d: usize, ts: i64, seq: SeqNum, flags: Flags, len: u32) {
        let p = 1 - d;
        let is_orig = d == self.orig;
        match self.ep[d].state {
            EpState::Inactive => {
                if flags.syn() {
                    if is_orig {
                        self.attempt_until = Some(ts.saturating_add(ATTEMPT_NS));
                        let s = if flags.ack() {
                            EpState::SynAckSent
                        } else {
                            EpState::SynSent
                        };
                        self.ep[d].set(s);
                    } else {
                        if !flags.ack()
                            && self.ep[p].state == EpState::SynAckSent
                            && seq == self.ep[d].start
                        {
                            // The SYN+ACK was captured before its SYN: swap the roles.
                            self.flip();
                            self.ep[p].set(EpState::Established);
                        }
                        if self.ep[p].state == EpState::SynSent {
                            self.ep[p].set(EpState::Established);
                        }
                        self.ep[d].set(EpState::Established);
                    }
                }
                if flags.fin() {
                    self.ep[d].set(EpState::Closed);
                }
                if flags.rst() {
                    self.ep[d].set(EpState::Reset);
                }
                if self.ep[d].state == EpState::Inactive {
                    let orig_state = self.ep[self.orig].state;
                    if !is_orig && len == 0 && orig_state == EpState::SynSent {
                        // Some stacks ack a SYN before answering it: not a partial connection.
                    } else if flags.ack() && self.ep[p].state == EpState::Established {
                        // The SYN was missed, the SYN+ACK seen: established after all.
                        self.ep[d].set(EpState::Established);
                    } else {
                        self.ep[d].set(EpState::Partial);
                    }
                }
            }
            EpState::SynSent | EpState::SynAckSent => {
                if flags.fin() {
                    self.ep[d].set(EpState::Closed);
                }
                if flags.rst() {
                    self.ep[d].set(EpState::Reset);
                }
            }
            EpState::Established | EpState::Partial => {
                if flags.syn()
                    && !flags.ack()
                    && self.ep[d].state == EpState::Partial
                    && self.ep[p].state == EpState::Inactive
                {
                    self.ep[d].set(EpState::SynSent);
                }
                if flags.fin() && !flags.rst() {
                    self.ep[d].set(EpState::Closed);
                    if self.ep[p].state == EpState::Reset && self.ep[p].prev == EpState::Closed {
                        // The peer's FIN then RST: a normal close after all.
                        self.ep[p].set(EpState::Closed);
                    }
                }
                if flags.rst() {
                    self.ep[d].set(EpState::Reset);
                }
            }
            EpState::Closed => {
                // After a FIN exchange an RST changes nothing.
                if flags.rst() && self.ep[p].state != EpState::Closed {
                    self.ep[d].set(EpState::Reset);
                }
            }
            EpState::Reset => {}
        }
    }

    /// The labels as they stand; `first_is_client` maps Zeek's roles onto tcplab's.
    pub(crate) fn view(&self, first_is_client: bool) -> ZeekView {
        self.view_reusing(first_is_client, String::new())
    }

    /// [`ZeekTrack::view`], writing the history into `history`'s buffer.
    pub(crate) fn view_reusing(&self, first_is_client: bool, mut history: String) -> ZeekView {
        self.history.write_into(&mut history);
        let (o, r) = (&self.ep[self.orig], &self.ep[1 - self.orig]);
        let inactive = |s: EpState| matches!(s, EpState::Inactive | EpState::Partial);
        use ConnState::*;
        use EpState::*;
        let conn_state = if r.state == Reset {
            if matches!(o.state, SynSent | SynAckSent)
                || (o.state == Reset && o.size_is_zero() && r.size_is_zero())
            {
                Rej
            } else if inactive(o.state) {
                Rstrh
            } else {
                Rstr
            }
        } else if o.state == Reset {
            if inactive(r.state) {
                if syn_then_rst(&history) {
                    Rstos0
                } else {
                    Oth
                }
            } else {
                Rsto
            }
        } else if o.state == Closed && r.state == Closed {
            SF
        } else if o.state == Closed {
            if inactive(r.state) {
                Sh
            } else {
                S2
            }
        } else if r.state == Closed {
            if inactive(o.state) {
                Shr
            } else {
                S3
            }
        } else if o.state == SynSent && r.state == Inactive {
            S0
        } else if o.state == Established && r.state == Established {
            S1
        } else {
            Oth
        };
        ZeekView {
            conn_state,
            history,
            orig_is_client: (self.orig == 1) == first_is_client,
            later: self
                .later
                .iter()
                .map(|(first_packet, row)| ZeekLater {
                    first_packet: *first_packet,
                    view: row.view(first_is_client),
                })
                .collect(),
        }
    }
}

/// Zeek's sequence-number sanity bound (1 MiB).
const TOO_LARGE_SEQ_DELTA: i32 = 1 << 20;

/// `^?S[^HAFGIQ]*R.*`: the originator's SYN, then its RST before any handshake, ACK, FIN,
/// gap or odd flags.
fn syn_then_rst(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ports_are_sorted_for_binary_search() {
        assert!(SERVER_PORTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn scaled_letters_at_powers_of_ten() {
        let mut s = Scaled::default();
        let hits: Vec<u32> = (1..=1000).filter(|_| s.hit()).collect();
        assert_eq!(hits.len(), 4);
    }

    #[test]
    fn rstos0_pattern() {
        assert!(syn_then_rst("SR"));
        assert!(syn_then_rst("^SdR"));
        assert!(!syn_then_rst("SAR"));
        assert!(!syn_then_rst("R"));
    }
}
