//! Why each RST most likely happened, with the evidence the capture holds.
//!
//! Read first: RFC 9293 §3.10.7 (reset generation: an RST answering a segment takes its
//! sequence number from that segment's ack), RFC 2525 §2.17 (close with unread data sends an
//! RST instead of a FIN), RFC 5961 §3 (an RST whose sequence number is in the window but not
//! the expected one draws a challenge ACK; one outside the window is dropped).
//!
//! The rules, in order, for an RST from X:
//! 1. both FINs were seen before it: `after-fins` (harmless: a straggler met TIME_WAIT's end
//!    or a closed socket);
//! 2. its IP header does not look like X's other segments: a TTL (hop limit) none of them
//!    had, or an IPv4 id off the sequence X's ids follow while X's next segment after it
//!    continues that sequence: `middlebox` (a firewall, IPS or load balancer forged it in
//!    X's name). An off-sequence id alone is no evidence: hosts number the replies they send
//!    without a socket apart (Linux: 0 with DF, older stacks a per-destination counter);
//! 3. it answers a segment Y sent after X had closed (X's FIN went out first), or Y's SYN:
//!    `no-socket` (a late segment after close, or a closed port);
//! 4. its sequence number is not the one Y expects next (Y's highest ack), or X is not yet
//!    synchronised: `out-of-window`, or `challenge-ack` when Y answers it with an ACK (and X
//!    may then reset again with the exact number);
//! 5. X had received payload and never sent any: `unread-data` (close(2) with unread data);
//! 6. otherwise `abort` (SO_LINGER 0, or an application abort).
//!
//! The window is not used: a host's own RSTs carry 0 (stateless) or the socket's window, so
//! neither value tells a forgery.

use crate::raw_conn::{side_of, Pkt};
use crate::seq::SeqNum;
use crate::side::Side;

/// The most likely cause of one RST.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RstCause {
    /// After both FINs: harmless.
    AfterFins,
    /// The sender closed with data it had received but never answered (RFC 2525 §2.17).
    UnreadData {
        /// Payload bytes the sender received.
        bytes: u64,
    },
    /// SO_LINGER 0 or an application abort: no FIN, nothing pending that the capture shows.
    Abort,
    /// It answers a segment for which no socket existed any more (or yet).
    NoSocket {
        /// The packet it answers.
        answers: u64,
        /// That segment was a SYN (a closed port) rather than a late segment after close.
        syn: bool,
    },
    /// Its IP header does not match its sender's other segments: forged on the path.
    Middlebox {
        /// (its TTL, the TTL of the sender's other segments) when those differ.
        ttl: Option<(u8, u8)>,
        /// (its IPv4 id, the id of the sender's segment before it) when it is off the
        /// sender's sequence.
        ip_id: Option<(u16, u16)>,
    },
    /// Its sequence number is not the one the receiver expected.
    OutOfWindow {
        /// What the receiver expected (its highest ack), if it had acknowledged anything.
        expected: Option<SeqNum>,
        /// The receiver's ACK that answered it (RFC 5961 challenge ACK), if captured.
        challenge_ack: Option<u64>,
    },
}

impl RstCause {
    /// The JSON code.
    pub fn code(self) -> &'static str {
        match self {
            RstCause::AfterFins => "after-fins",
            RstCause::UnreadData { .. } => "unread-data",
            RstCause::Abort => "abort",
            RstCause::NoSocket { .. } => "no-socket",
            RstCause::Middlebox { .. } => "middlebox",
            RstCause::OutOfWindow {
                challenge_ack: Some(_),
                ..
            } => "challenge-ack",
            RstCause::OutOfWindow { .. } => "out-of-window",
        }
    }
}

/// What the sending kernel itself said about an RST (live runs only: the runner reads
/// `tcp:tcp_send_reset`; a capture file alone never says).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KernelReason {
    /// The kernel's reason (`enum sk_rst_reason`, Linux 6.10 and later).
    Reported {
        /// Its value.
        value: u32,
        /// Its name as the kernel prints it (`TCP_ABORT_ON_LINGER`), when the tracepoint's
        /// format names it.
        name: Option<&'static str>,
    },
    /// The kernel's `tcp_send_reset` has no reason field (before 6.10).
    NotReported,
    /// The kernel names reasons, but no `tcp_send_reset` event was recorded for this RST
    /// (no tracepoints in this run, or none matched it by ports and time).
    NotRecorded,
}

impl KernelReason {
    /// The reason's name, its value when the kernel gave no name, or what is missing.
    pub fn text(self) -> String {
        match self {
            KernelReason::Reported {
                name: Some(name), ..
            } => name.to_owned(),
            KernelReason::Reported { value, name: None } => format!("reason {value}"),
            KernelReason::NotReported => "not reported by this kernel".to_owned(),
            KernelReason::NotRecorded => "not recorded".to_owned(),
        }
    }
}

/// One RST of a connection and its cause.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RstInfo {
    /// Packet number.
    pub packet: u64,
    /// Who sent it.
    pub from: Side,
    /// The most likely cause.
    pub cause: RstCause,
    /// The sending kernel's own reason, on live runs (`None` when analysing a file).
    pub kernel: Option<KernelReason>,
}

/// Classify every RST among `pk` (stored packets in file order).
pub(crate) fn classify(pk: &[Pkt], first_is_client: bool) -> Vec<RstInfo> {
    let side = |p: &Pkt| side_of(p, first_is_client);
    let mut out = Vec::new();
    for (i, r) in pk.iter().enumerate() {
        if !r.flags.rst() {
            continue;
        }
        let x = side(r);
        let before = &pk[..i];
        let fin_of = |s: Side| before.iter().position(|p| side(p) == s && p.flags.fin());
        let cause = if fin_of(x).is_some() && fin_of(x.peer()).is_some() {
            RstCause::AfterFins
        } else if let Some(m) = middlebox(pk, i, x, &side) {
            m
        } else {
            cause_before_fins(pk, i, x, &side)
        };
        out.push(RstInfo {
            packet: r.number,
            from: x,
            cause,
            kernel: None,
        });
    }
    out
}

/// Largest step between two consecutive IPv4 ids of one sender that still counts as its
/// sequence (a per-connection counter steps by 1; a per-host one by what else it sent).
const ID_STEP_MAX: u16 = 1024;

/// The RST at `i` from `x`, if its IP header says another box sent it: a TTL none of x's
/// other segments (before and after it, RSTs aside) had, or a non-zero IPv4 id off the
/// sequence x's earlier ids follow (at least two, all stepping forward by 1..=`ID_STEP_MAX`)
/// while x's next segment after it continues that sequence (x itself went on).
fn middlebox(pk: &[Pkt], i: usize, x: Side, side: &dyn Fn(&Pkt) -> Side) -> Option<RstCause> {
    let r = &pk[i];
    let others = || {
        pk.iter()
            .enumerate()
            .filter(move |(j, p)| *j != i && side(p) == x && !p.flags.rst())
            .map(|(_, p)| p)
    };
    let mut ttl = None;
    if r.ip.ttl != 0 {
        let mut seen = others().map(|p| p.ip.ttl).filter(|&t| t != 0).peekable();
        if let Some(&usual) = seen.peek() {
            if seen.all(|t| t != r.ip.ttl) {
                ttl = Some((r.ip.ttl, usual));
            }
        }
    }
    let mut ip_id = None;
    if let Some(rid) = r.ip.id.filter(|&id| id != 0) {
        let before: Vec<u16> = pk[..i]
            .iter()
            .filter(|p| side(p) == x && !p.flags.rst())
            .filter_map(|p| p.ip.id)
            .collect();
        let in_step = |a: u16, b: u16| (1..=ID_STEP_MAX).contains(&b.wrapping_sub(a));
        let sequential = before.len() >= 2
            && before.iter().all(|&id| id != 0)
            && before.windows(2).all(|w| in_step(w[0], w[1]));
        let after = pk[i + 1..]
            .iter()
            .find(|p| side(p) == x && !p.flags.rst())
            .and_then(|p| p.ip.id);
        if let (true, Some(&last), Some(next)) = (sequential, before.last(), after) {
            if !in_step(last, rid) && in_step(last, next) {
                ip_id = Some((rid, last));
            }
        }
    }
    (ttl.is_some() || ip_id.is_some()).then_some(RstCause::Middlebox { ttl, ip_id })
}

fn cause_before_fins(pk: &[Pkt], i: usize, x: Side, side: &dyn Fn(&Pkt) -> Side) -> RstCause {
    let r = &pk[i];
    let before = &pk[..i];
    // The segment it answers: the peer's last one before it.
    let answered = before.iter().rposition(|p| side(p) == x.peer());
    // RFC 9293: an RST answering a segment with ACK carries that ack as its sequence number;
    // one answering a segment without ACK (a SYN) has seq 0 and acks it.
    if let Some(a) = answered {
        let q = &pk[a];
        let x_fin = before[..a].iter().any(|p| side(p) == x && p.flags.fin());
        let x_syn = before.iter().any(|p| side(p) == x && p.flags.syn());
        let answers_syn = q.flags.syn() && !q.flags.ack() && !x_syn;
        let by_rule = if q.flags.ack() {
            r.seq == q.ack
        } else {
            r.flags.ack() && r.ack == q.seq_end()
        };
        if by_rule && (x_fin || answers_syn) {
            return RstCause::NoSocket {
                answers: q.number,
                syn: answers_syn,
            };
        }
    }
    // What Y expects from X next: its highest ack so far.
    let expected = before
        .iter()
        .rev()
        .find(|p| side(p) == x.peer() && p.flags.ack() && !p.flags.rst())
        .map(|p| p.ack);
    if let Some(e) = expected {
        if r.seq != e {
            let challenge_ack = pk[i + 1..]
                .iter()
                .find(|p| side(p) == x.peer())
                .filter(|p| p.flags.ack() && !p.flags.rst() && !p.flags.fin() && p.len == 0)
                .map(|p| p.number);
            return RstCause::OutOfWindow {
                expected: Some(e),
                challenge_ack,
            };
        }
    }
    let received: u64 = before
        .iter()
        .filter(|p| side(p) == x.peer())
        .map(|p| u64::from(p.len))
        .sum();
    let sent: u64 = before
        .iter()
        .filter(|p| side(p) == x)
        .map(|p| u64::from(p.len))
        .sum();
    if received > 0 && sent == 0 {
        return RstCause::UnreadData { bytes: received };
    }
    RstCause::Abort
}
