//! What the delay link does to each packet: random loss and jitter from a seed, and
//! deterministic faults aimed at one segment ("drop the server's first FIN").
//!
//! Pure decisions, no I/O: the relay ([`crate::link`]) asks [`Impairer::decide`] for every
//! packet it reads and gets back whether to deliver it, when, and how many copies.
//!
//! **Determinism.** A random choice is not drawn from a stream (whose order would depend on
//! how the two directions interleave on a loaded machine) but hashed from the seed and the
//! segment itself: direction, sequence and ack numbers relative to each side's initial
//! sequence number, flags, payload length, and how many identical segments came before (so a
//! retransmission gets a fresh draw). The same seed gives the same drops for the same
//! conversation, whatever the timing. Only TCP segments are impaired; anything else (IPv6
//! neighbour discovery, MLD) crosses with the plain delay.
//!
//! **Segment kinds** (`"<client|server> <kind>"`), RFC 9293 terms:
//! `SYN` (SYN without ACK), `SYN-ACK`, `FIN` (any segment with FIN), `RST`, `data` (payload
//! without FIN), `ACK-of-FIN`: a segment without SYN/FIN/RST whose ack number covers the FIN
//! the peer sent (the relay tracks the FIN sequence numbers it has forwarded). A segment
//! may be of several kinds (a FIN with data is a `FIN`; data acknowledging the peer's FIN is
//! `data` and `ACK-of-FIN`); each fault counts the segments of its own kind.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which end sent a segment. The client side is the namespace the client connects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The client side (`tun-c`).
    Client,
    /// The server side (`tun-s`).
    Server,
}

impl End {
    fn idx(self) -> usize {
        match self {
            End::Client => 0,
            End::Server => 1,
        }
    }

    /// `client` / `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            End::Client => "client",
            End::Server => "server",
        }
    }
}

/// A kind of segment a fault aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// SYN without ACK.
    Syn,
    /// SYN with ACK.
    SynAck,
    /// Any segment with FIN.
    Fin,
    /// No SYN/FIN/RST, ack number covers the peer's forwarded FIN.
    AckOfFin,
    /// RST.
    Rst,
    /// Payload, no FIN.
    Data,
}

impl SegmentKind {
    /// Every kind with its spelling in a fault spec.
    pub const NAMES: [(SegmentKind, &'static str); 6] = [
        (SegmentKind::Syn, "SYN"),
        (SegmentKind::SynAck, "SYN-ACK"),
        (SegmentKind::Fin, "FIN"),
        (SegmentKind::AckOfFin, "ACK-of-FIN"),
        (SegmentKind::Rst, "RST"),
        (SegmentKind::Data, "data"),
    ];

    /// The spelling in a fault spec.
    pub fn as_str(self) -> &'static str {
        SegmentKind::NAMES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Which segments a fault aims at: `"server FIN"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentSpec {
    /// The sender.
    pub from: End,
    /// The kind.
    pub kind: SegmentKind,
}

impl FromStr for SegmentSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || {
            let kinds: Vec<&str> = SegmentKind::NAMES.iter().map(|(_, n)| *n).collect();
            format!(
                "segment must be \"<client|server> <{}>\", got {s:?}",
                kinds.join("|")
            )
        };
        let mut it = s.split_whitespace();
        let (Some(end), Some(kind), None) = (it.next(), it.next(), it.next()) else {
            return Err(usage());
        };
        let from = match end {
            "client" => End::Client,
            "server" => End::Server,
            _ => return Err(usage()),
        };
        let kind = SegmentKind::NAMES
            .iter()
            .find(|(_, n)| *n == kind)
            .map(|(k, _)| *k)
            .ok_or_else(usage)?;
        Ok(SegmentSpec { from, kind })
    }
}

impl fmt::Display for SegmentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.from.as_str(), self.kind.as_str())
    }
}

/// What a fault does to its segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAction {
    /// Never delivered.
    Drop,
    /// Delivered this much later than the link's delay (later segments may overtake it).
    Delay(Duration),
    /// Delivered twice.
    Duplicate,
}

/// One deterministic fault: `action` on the `nth` (1-based) segment matching `segment`, or
/// on every one of them ([`Fault::EVERY`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// Which segments count.
    pub segment: SegmentSpec,
    /// Which of them (1 = the first; [`Fault::EVERY`] = all).
    pub nth: u32,
    /// What happens to it.
    pub action: FaultAction,
}

impl Fault {
    /// `nth` meaning every matching segment (`nth = "all"` in a scenario): e.g. every ACK of
    /// a FIN dropped, so that a FIN is retransmitted until the kernel gives up.
    pub const EVERY: u32 = 0;
}

/// Everything the link does besides its fixed delay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Impairments {
    /// Loss probability of each segment the client sends (0..=1).
    pub loss_client: f64,
    /// Loss probability of each segment the server sends (0..=1).
    pub loss_server: f64,
    /// Each segment's delay is `delay ± U(jitter)` (never below zero).
    pub jitter: Duration,
    /// With jitter: may a later segment overtake an earlier one? (false: FIFO kept.)
    pub reorder: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Targeted faults.
    pub faults: Vec<Fault>,
}

impl Impairments {
    /// True when nothing but the delay applies.
    pub fn is_none(&self) -> bool {
        self.loss_client == 0.0
            && self.loss_server == 0.0
            && self.jitter.is_zero()
            && self.faults.is_empty()
    }
}

/// The relay's verdict on one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Copies to deliver (0 = lost).
    pub copies: u8,
    /// Delay on top of (or below, with jitter) the link's delay, ns; may be negative.
    pub extra_ns: i64,
    /// Keep FIFO order behind earlier packets of this direction.
    pub keep_order: bool,
    /// Lost to random loss (not a fault).
    pub random_loss: bool,
    /// A fault applied.
    pub fault: Option<FaultAction>,
}

impl Decision {
    const PASS: Decision = Decision {
        copies: 1,
        extra_ns: 0,
        keep_order: true,
        random_loss: false,
        fault: None,
    };
}

/// The TCP header fields the decisions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpView {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    pub flags: u8,
    /// Payload length.
    pub payload: u32,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

impl TcpView {
    /// Parse a bare IPv4/IPv6 packet carrying TCP (IPv6 without extension headers).
    pub fn parse(p: &[u8]) -> Option<TcpView> {
        let be16 = |i: usize| Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]));
        let be32 = |i: usize| {
            Some(u32::from_be_bytes([
                *p.get(i)?,
                *p.get(i + 1)?,
                *p.get(i + 2)?,
                *p.get(i + 3)?,
            ]))
        };
        let (tcp, end) = match p.first()? >> 4 {
            4 => {
                if *p.get(9)? != 6 {
                    return None;
                }
                (usize::from(p.first()? & 0x0f) * 4, usize::from(be16(2)?))
            }
            6 => {
                if *p.get(6)? != 6 {
                    return None;
                }
                (40, 40 + usize::from(be16(4)?))
            }
            _ => return None,
        };
        let doff = usize::from(p.get(tcp + 12)? >> 4) * 4;
        Some(TcpView {
            seq: be32(tcp + 4)?,
            ack: be32(tcp + 8)?,
            flags: *p.get(tcp + 13)?,
            payload: u32::try_from(end.saturating_sub(tcp + doff)).ok()?,
        })
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Per-run state of the impairments: counters per fault, the FINs seen, initial sequence
/// numbers, and the occurrence count of each segment's key.
#[derive(Debug)]
pub struct Impairer {
    cfg: Impairments,
    /// Segments matched so far, per fault.
    matched: Vec<u32>,
    /// Per end: sequence number just past its forwarded FIN.
    fin_end: [Option<u32>; 2],
    /// Per end: its initial sequence number (from its SYN), for relative numbers.
    isn: [Option<u32>; 2],
    /// How often each segment key came before (retransmissions draw afresh).
    seen: HashMap<u64, u32>,
}

impl Impairer {
    /// Fresh state for one connection's worth of traffic.
    pub fn new(cfg: Impairments) -> Impairer {
        let matched = vec![0; cfg.faults.len()];
        Impairer {
            cfg,
            matched,
            fin_end: [None; 2],
            isn: [None; 2],
            seen: HashMap::new(),
        }
    }

    /// The kinds of `seg` sent by `from` (see the module docs).
    pub fn kinds(&self, from: End, seg: &TcpView) -> Vec<SegmentKind> {
        let mut k = Vec::new();
        let (syn, fin, rst) = (seg.has(SYN), seg.has(FIN), seg.has(RST));
        if syn && seg.has(ACK) {
            k.push(SegmentKind::SynAck);
        } else if syn {
            k.push(SegmentKind::Syn);
        }
        if fin {
            k.push(SegmentKind::Fin);
        }
        if rst {
            k.push(SegmentKind::Rst);
        }
        if seg.payload > 0 && !fin {
            k.push(SegmentKind::Data);
        }
        let peer = 1 - from.idx();
        if !syn && !fin && !rst && seg.has(ACK) {
            if let Some(end) = self.fin_end[peer] {
                // `ack` covers the FIN when ack >= end (mod 2^32).
                if seg.ack.wrapping_sub(end) < (1 << 31) {
                    k.push(SegmentKind::AckOfFin);
                }
            }
        }
        k
    }

    /// Decide the fate of a packet `bytes` sent by `from`.
    pub fn decide(&mut self, from: End, bytes: &[u8]) -> Decision {
        let Some(seg) = TcpView::parse(bytes) else {
            return Decision::PASS;
        };
        let i = from.idx();
        if seg.has(SYN) {
            self.isn[i] = Some(seg.seq);
        }
        let kinds = self.kinds(from, &seg);
        let mut d = Decision::PASS;
        for (f, n) in self.cfg.faults.iter().zip(self.matched.iter_mut()) {
            if f.segment.from == from && kinds.contains(&f.segment.kind) {
                *n += 1;
                if (*n == f.nth || f.nth == Fault::EVERY) && d.fault.is_none() {
                    d.fault = Some(f.action);
                }
            }
        }
        // Random draws come from the segment itself (see the module docs).
        let rel = |v: u32, isn: Option<u32>| v.wrapping_sub(isn.unwrap_or(0));
        let key = mix(&[
            i as u64,
            u64::from(rel(seg.seq, self.isn[i])),
            u64::from(if seg.has(ACK) {
                rel(seg.ack, self.isn[1 - i])
            } else {
                0
            }),
            u64::from(seg.flags),
            u64::from(seg.payload),
        ]);
        let occurrence = self.seen.entry(key).or_insert(0);
        *occurrence += 1;
        let draw = |salt: u64| unit(mix(&[self.cfg.seed, key, u64::from(*occurrence), salt]));
        let loss = match from {
            End::Client => self.cfg.loss_client,
            End::Server => self.cfg.loss_server,
        };
        if loss > 0.0 && draw(1) < loss {
            d.random_loss = true;
        }
        if !self.cfg.jitter.is_zero() {
            let j = self.cfg.jitter.as_nanos() as f64;
            d.extra_ns = ((draw(2) * 2.0 - 1.0) * j) as i64;
            d.keep_order = !self.cfg.reorder;
        }
        match d.fault {
            Some(FaultAction::Drop) => d.copies = 0,
            Some(FaultAction::Duplicate) => d.copies = 2,
            Some(FaultAction::Delay(x)) => {
                d.extra_ns = d
                    .extra_ns
                    .saturating_add(i64::try_from(x.as_nanos()).unwrap_or(i64::MAX));
                d.keep_order = false;
            }
            None => {}
        }
        if d.random_loss {
            d.copies = 0;
        }
        if d.copies > 0 && seg.has(FIN) {
            // Tracked once forwarded: an ACK can only cover a FIN that crossed the link.
            let end = seg
                .seq
                .wrapping_add(seg.payload)
                .wrapping_add(1)
                .wrapping_add(u32::from(seg.has(SYN)));
            self.fin_end[i] = Some(end);
        }
        d
    }
}

/// SplitMix64 over the words: a well-mixed 64-bit hash (no dependency needed for this).
fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for w in words {
        h ^= *w;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// A hash as a number in [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Seed of run `index` of a batch seeded with `seed`: each run draws differently, the batch
/// is the same every time.
pub fn run_seed(seed: u64, index: u32) -> u64 {
    mix(&[seed, u64::from(index)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP packet with the given fields (checksums are not looked at).
    fn pkt(seq: u32, ack: u32, flags: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40 + payload];
        p[0] = 0x45;
        let total = u16::try_from(40 + payload).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[9] = 6;
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p
    }

    fn fault(spec: &str, nth: u32, action: FaultAction) -> Fault {
        Fault {
            segment: spec.parse().unwrap(),
            nth,
            action,
        }
    }

    #[test]
    fn specs_parse_and_reject() {
        let s: SegmentSpec = "server FIN".parse().unwrap();
        assert_eq!((s.from, s.kind), (End::Server, SegmentKind::Fin));
        let s: SegmentSpec = "client ACK-of-FIN".parse().unwrap();
        assert_eq!(s.kind, SegmentKind::AckOfFin);
        assert_eq!(s.to_string(), "client ACK-of-FIN");
        for bad in ["server", "both FIN", "client fin", "client FIN extra", ""] {
            let e = bad.parse::<SegmentSpec>().unwrap_err();
            assert!(e.contains("<client|server>"), "{bad}: {e}");
        }
    }

    #[test]
    fn ack_of_fin_needs_the_peers_forwarded_fin() {
        let mut im = Impairer::new(Impairments::default());
        im.decide(End::Client, &pkt(100, 0, SYN, 0));
        im.decide(End::Server, &pkt(500, 101, SYN | ACK, 0));
        let pure_ack = pkt(101, 501, ACK, 0);
        assert!(im
            .kinds(End::Client, &TcpView::parse(&pure_ack).unwrap())
            .is_empty());
        // Server FIN at seq 501 (no data): covered by ack >= 502.
        let fin = pkt(501, 101, FIN | ACK, 0);
        assert_eq!(
            im.kinds(End::Server, &TcpView::parse(&fin).unwrap()),
            vec![SegmentKind::Fin]
        );
        im.decide(End::Server, &fin);
        let covers = TcpView::parse(&pkt(101, 502, ACK, 0)).unwrap();
        assert_eq!(im.kinds(End::Client, &covers), vec![SegmentKind::AckOfFin]);
        let short = TcpView::parse(&pkt(101, 501, ACK, 0)).unwrap();
        assert!(im.kinds(End::Client, &short).is_empty());
        // The server's own ACKs never ack its own FIN.
        assert!(im.kinds(End::Server, &covers).is_empty());
        // A FIN+ACK covering the peer's FIN is a FIN, not an ACK-of-FIN.
        let finack = TcpView::parse(&pkt(101, 502, FIN | ACK, 0)).unwrap();
        assert_eq!(im.kinds(End::Client, &finack), vec![SegmentKind::Fin]);
    }

    #[test]
    fn a_dropped_fin_is_not_tracked() {
        let cfg = Impairments {
            faults: vec![fault("server FIN", 1, FaultAction::Drop)],
            ..Default::default()
        };
        let mut im = Impairer::new(cfg);
        let d = im.decide(End::Server, &pkt(501, 101, FIN | ACK, 0));
        assert_eq!(d.copies, 0);
        let ack = TcpView::parse(&pkt(101, 502, ACK, 0)).unwrap();
        assert!(im.kinds(End::Client, &ack).is_empty());
        // The retransmission is the 2nd server FIN: delivered, then tracked.
        assert_eq!(
            im.decide(End::Server, &pkt(501, 101, FIN | ACK, 0)).copies,
            1
        );
        assert_eq!(im.kinds(End::Client, &ack), vec![SegmentKind::AckOfFin]);
    }

    #[test]
    fn every_drops_all_of_its_kind_and_nothing_else() {
        let cfg = Impairments {
            faults: vec![fault("server ACK-of-FIN", Fault::EVERY, FaultAction::Drop)],
            ..Default::default()
        };
        let mut im = Impairer::new(cfg);
        im.decide(End::Client, &pkt(100, 0, SYN, 0));
        im.decide(End::Server, &pkt(500, 101, SYN | ACK, 0));
        // Before the client's FIN an ACK is no ACK-of-FIN: it passes.
        assert_eq!(im.decide(End::Server, &pkt(501, 104, ACK, 0)).copies, 1);
        assert_eq!(
            im.decide(End::Client, &pkt(104, 501, FIN | ACK, 0)).copies,
            1
        );
        // The ACK of that FIN and every repeat of it (answering retransmitted FINs) is lost.
        for _ in 0..5 {
            assert_eq!(im.decide(End::Server, &pkt(501, 105, ACK, 0)).copies, 0);
            assert_eq!(
                im.decide(End::Client, &pkt(104, 501, FIN | ACK, 0)).copies,
                1
            );
        }
        // The server's FIN acknowledges it too, but is a FIN: it crosses.
        assert_eq!(
            im.decide(End::Server, &pkt(501, 105, FIN | ACK, 0)).copies,
            1
        );
    }

    #[test]
    fn nth_counts_only_its_side_and_kind() {
        let cfg = Impairments {
            faults: vec![
                fault("client data", 2, FaultAction::Duplicate),
                fault(
                    "client FIN",
                    1,
                    FaultAction::Delay(Duration::from_millis(30)),
                ),
            ],
            ..Default::default()
        };
        let mut im = Impairer::new(cfg);
        assert_eq!(im.decide(End::Server, &pkt(1, 1, ACK, 10)).copies, 1);
        assert_eq!(im.decide(End::Client, &pkt(1, 1, ACK, 10)).copies, 1);
        let d = im.decide(End::Client, &pkt(11, 1, ACK, 10));
        assert_eq!((d.copies, d.fault), (2, Some(FaultAction::Duplicate)));
        assert_eq!(im.decide(End::Client, &pkt(21, 1, ACK, 10)).copies, 1);
        let d = im.decide(End::Client, &pkt(31, 1, FIN | ACK, 0));
        assert_eq!(d.extra_ns, 30_000_000);
        assert!(!d.keep_order, "a delayed segment may be overtaken");
    }

    #[test]
    fn random_loss_is_a_function_of_seed_and_segment() {
        let run = |seed: u64| -> Vec<u8> {
            let mut im = Impairer::new(Impairments {
                loss_client: 0.3,
                loss_server: 0.3,
                seed,
                ..Default::default()
            });
            (0..200u32)
                .map(|n| {
                    let from = if n % 2 == 0 { End::Client } else { End::Server };
                    im.decide(from, &pkt(n * 10, n, ACK, 10)).copies
                })
                .collect()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let lost = run(7).iter().filter(|c| **c == 0).count();
        assert!((30..=90).contains(&lost), "30% of 200, got {lost}");
        // A retransmission (same segment again) draws afresh.
        let mut im = Impairer::new(Impairments {
            loss_client: 0.5,
            seed: 3,
            ..Default::default()
        });
        let fates: Vec<u8> = (0..64)
            .map(|_| im.decide(End::Client, &pkt(5, 5, ACK, 10)).copies)
            .collect();
        assert!(fates.contains(&0) && fates.contains(&1));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut im = Impairer::new(Impairments {
            jitter: Duration::from_millis(2),
            seed: 9,
            ..Default::default()
        });
        for n in 0..100 {
            let d = im.decide(End::Client, &pkt(n, 0, ACK, 1));
            assert!(d.extra_ns.abs() <= 2_000_000);
            assert!(d.keep_order);
        }
    }

    #[test]
    fn non_tcp_passes() {
        let mut im = Impairer::new(Impairments {
            loss_client: 1.0,
            ..Default::default()
        });
        assert_eq!(im.decide(End::Client, &[0x60, 0, 0, 0]), Decision::PASS);
        assert_eq!(im.decide(End::Client, &pkt(1, 1, ACK, 0)).copies, 0);
    }
}
