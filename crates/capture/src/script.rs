//! Scripted segments on the link: forge or replay one segment at a named moment, or hold one
//! segment back until another has crossed (`[[link.inject]]`, `[[link.hold]]`).
//!
//! **Why.** Some teardown paths are reached only by a segment no cooperating program sends:
//! an in-window RST arriving in TIME_WAIT (RFC 1337's "TIME-WAIT assassination"), a stray
//! ACK reaching a socket that is already gone, data beyond a FIN, a FIN that overtakes the
//! data before it. The relay sits in the middle of the link and sees every segment of both
//! directions, so it knows each end's next sequence number and can put such a segment on the
//! wire as a middlebox (or an attacker) would.
//!
//! **Moments.** An injection is tied to a *named segment*: the `nth` segment of a
//! [`SegmentSpec`] (`"client ACK-of-FIN"`) that the link forwards (a segment the link drops
//! does not count; a fault's `nth` counts every segment, this one only those that cross).
//! The forged or replayed segment enters the link at the relay `after` that segment passed
//! it, and reaches its recipient one link delay later, like any segment: its timing is the
//! link's, not the machine's.
//!
//! **Forged segments** (packetdrill's notation): `flags` from `S F R P .` (`.` = ACK), `seq`
//! and `ack` as `next`, `next+N` or `next-N`. A segment forged *to* one end comes *from*
//! the other: its `seq` counts from the sender's next sequence number (one past the highest
//! byte, SYN or FIN it sent), its `ack` from the recipient's. Addresses, ports and window are
//! the sender's, from its last segment (or the recipient's addresses and ports, swapped, and
//! window 0, when the sender sent none yet). IPv4 or IPv6 as the connection; checksums are
//! computed.
//!
//! **Replayed segments**: the named segment again, byte for byte, from its sender.
//!
//! **Reorder**: the `nth` `segment` is held at the relay until the `behind_nth` `behind`
//! segment crossed, then follows it (at most [`MAX_HOLD`] later, in case it never comes).
//!
//! Every segment the script put on the wire is kept as an [`InjectedSegment`], so that a
//! run's record can tell a forged RST from the kernel's.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::impair::{End, SegmentKind, SegmentSpec, TcpView};

/// The longest a reordered segment is held when the segment it waits for never comes.
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// The longest payload of a forged segment (one segment within the link's MTU).
pub const MAX_FORGED_PAYLOAD: u16 = 1400;

/// FIN, SYN, RST, PSH, ACK as in the TCP header's flags byte.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// packetdrill's flag letters, in its order of printing.
const LETTERS: [(char, u8); 5] = [('S', SYN), ('F', FIN), ('R', RST), ('P', PSH), ('.', ACK)];

/// TCP flags in packetdrill's notation: `"R"`, `"R."`, `"S"`, `"P."`, `"F."`, `"."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// ACK set.
    pub fn ack(self) -> bool {
        self.0 & ACK != 0
    }

    /// RST set.
    pub fn rst(self) -> bool {
        self.0 & RST != 0
    }

    /// SYN set.
    pub fn syn(self) -> bool {
        self.0 & SYN != 0
    }
}

impl FromStr for Flags {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!("flags must be letters of \"SFRP.\" (packetdrill's: . is ACK), each once, got {s:?}")
        };
        if s.is_empty() {
            return Err(usage());
        }
        let mut v = 0u8;
        for c in s.chars() {
            let (_, bit) = LETTERS.iter().find(|(l, _)| *l == c).ok_or_else(usage)?;
            if v & bit != 0 {
                return Err(usage());
            }
            v |= bit;
        }
        Ok(Flags(v))
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (l, bit) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{l}")?;
            }
        }
        Ok(())
    }
}

/// A sequence or acknowledgment number relative to an end's next sequence number:
/// `next`, `next+1000`, `next-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqExpr {
    /// Added to the end's next sequence number (mod 2^32).
    pub offset: i64,
}

impl FromStr for SeqExpr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage =
            || format!("must be \"next\", \"next+N\" or \"next-N\" (|N| < 2^31), got {s:?}");
        let rest = s.trim().strip_prefix("next").ok_or_else(usage)?;
        let offset = match rest.chars().next() {
            None => 0,
            Some('+') => rest[1..].parse::<i64>().map_err(|_| usage())?,
            Some('-') => -rest[1..].parse::<i64>().map_err(|_| usage())?,
            Some(_) => return Err(usage()),
        };
        if rest.len() > 1 && (rest[1..].starts_with('+') || rest[1..].starts_with('-')) {
            return Err(usage());
        }
        if offset.abs() >= 1 << 31 {
            return Err(usage());
        }
        Ok(SeqExpr { offset })
    }
}

impl fmt::Display for SeqExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            0 => write!(f, "next"),
            n if n > 0 => write!(f, "next+{n}"),
            n => write!(f, "next{n}"),
        }
    }
}

impl SeqExpr {
    fn apply(self, next: u32) -> u32 {
        // |offset| < 2^31: the cast keeps it; adding mod 2^32 is sequence arithmetic.
        next.wrapping_add(self.offset as i32 as u32)
    }
}

/// A segment made up by the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forge {
    /// The end it is sent to (it claims to come from the other).
    pub to: End,
    /// Its flags.
    pub flags: Flags,
    /// Sequence number, from the sender's next.
    pub seq: SeqExpr,
    /// Acknowledgment number (with `.`), from the recipient's next.
    pub ack: SeqExpr,
    /// Payload bytes (`x`s).
    pub len: u16,
    /// Window; default the sender's last advertised one.
    pub window: Option<u16>,
}

/// What an injection puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectAction {
    /// The named segment again, from its sender.
    Replay,
    /// A segment made up from the ends' sequence state.
    Forge(Forge),
}

/// One `[[link.inject]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// The named segment.
    pub at: SegmentSpec,
    /// Which of them (1 = the first that crossed the link).
    pub nth: u32,
    /// How long after it passed the relay.
    pub after: Duration,
    /// What goes out.
    pub action: InjectAction,
}

/// One `[[link.hold]]`: `segment` (its `nth`) follows `behind` (its `behind_nth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reorder {
    /// The segment held back.
    pub segment: SegmentSpec,
    /// Which of them.
    pub nth: u32,
    /// The segment it is released behind.
    pub behind: SegmentSpec,
    /// Which of them.
    pub behind_nth: u32,
}

/// A scenario's scripted segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Forged or replayed segments.
    pub inject: Vec<Injection>,
    /// Segments held behind others.
    pub reorder: Vec<Reorder>,
}

impl Script {
    /// True when the script does nothing.
    pub fn is_empty(&self) -> bool {
        self.inject.is_empty() && self.reorder.is_empty()
    }
}

/// A segment the script put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedSegment {
    /// Which `[[link.inject]]` (0-based).
    pub index: usize,
    /// The end it was sent to.
    pub to: End,
    /// Its flags.
    pub flags: Flags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 without ACK).
    pub ack: u32,
    /// Payload length.
    pub len: u32,
    /// A replay of a real segment (false: forged).
    pub replay: bool,
    /// When it entered the link, ns since the Unix epoch (the capture's clock).
    pub unix_ns: u64,
}

/// What the relay does with a segment it forwards.
#[derive(Debug, PartialEq, Eq)]
pub enum Forward {
    /// Forward it, then these held frames (sender, frame) right behind it.
    Pass(Vec<(End, Vec<u8>)>),
    /// Keep it back (a reorder).
    Hold,
}

/// Per-run state of a script (see the module docs).
#[derive(Debug)]
pub struct ScriptState {
    script: Script,
    /// Per injection: named segments seen; per reorder: (held ones seen, behind ones seen).
    inject_seen: Vec<u32>,
    reorder_seen: Vec<(u32, u32)>,
    /// Per end: one past its highest sequence number sent.
    next: [Option<u32>; 2],
    /// Per end: its last frame (the template of a forged one).
    last: [Option<Vec<u8>>; 2],
    /// Injections due: (when, which, the replayed frame and its sender).
    scheduled: Vec<(Instant, usize, Option<SentFrame>)>,
    /// Reorders holding a frame: (which, sender, frame, give up at).
    held: Vec<(usize, End, Vec<u8>, Instant)>,
    /// Frames are Ethernet (packet sockets), not bare IP (TUN).
    ethernet: bool,
    /// What went out.
    injected: Vec<InjectedSegment>,
    /// Injections that fired (or failed): the script is done with them.
    fired: usize,
    /// Reorders whose frame was released.
    released: usize,
}

/// A frame and the end that sent it.
type SentFrame = (End, Vec<u8>);

const ETH_HLEN: usize = 14;

fn idx(e: End) -> usize {
    match e {
        End::Client => 0,
        End::Server => 1,
    }
}

fn peer(e: End) -> End {
    match e {
        End::Client => End::Server,
        End::Server => End::Client,
    }
}

fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl ScriptState {
    /// Fresh state for one run. `ethernet`: frames carry an Ethernet header (veth link).
    pub fn new(script: Script, ethernet: bool) -> ScriptState {
        ScriptState {
            inject_seen: vec![0; script.inject.len()],
            reorder_seen: vec![(0, 0); script.reorder.len()],
            script,
            next: [None; 2],
            last: [None, None],
            scheduled: Vec::new(),
            held: Vec::new(),
            ethernet,
            injected: Vec::new(),
            fired: 0,
            released: 0,
        }
    }

    fn ip<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        if self.ethernet {
            frame.get(ETH_HLEN..).unwrap_or_default()
        } else {
            frame
        }
    }

    /// A frame from `from` (of `kinds`) the link forwards, read at `now`.
    pub fn forwarded(
        &mut self,
        from: End,
        kinds: &[SegmentKind],
        frame: &[u8],
        now: Instant,
    ) -> Forward {
        let i = idx(from);
        if let Some(seg) = TcpView::parse(self.ip(frame)) {
            let end = seg
                .seq
                .wrapping_add(seg.payload)
                .wrapping_add(u32::from(seg.flags & SYN != 0))
                .wrapping_add(u32::from(seg.flags & FIN != 0));
            let later = |a: u32, b: u32| a.wrapping_sub(b) as i32 > 0;
            if seg.flags & RST == 0 && self.next[i].is_none_or(|n| later(end, n)) {
                self.next[i] = Some(end);
            }
            self.last[i] = Some(frame.to_vec());
        }
        let is = |s: &SegmentSpec| s.from == from && kinds.contains(&s.kind);
        for (k, inj) in self.script.inject.iter().enumerate() {
            if !is(&inj.at) {
                continue;
            }
            self.inject_seen[k] += 1;
            if self.inject_seen[k] == inj.nth {
                let replay = match inj.action {
                    InjectAction::Replay => Some((from, frame.to_vec())),
                    InjectAction::Forge(_) => None,
                };
                self.scheduled.push((now + inj.after, k, replay));
            }
        }
        let mut hold = false;
        let mut release = Vec::new();
        for (k, r) in self.script.reorder.iter().enumerate() {
            let seen = &mut self.reorder_seen[k];
            if is(&r.behind) {
                seen.1 += 1;
                if seen.1 == r.behind_nth {
                    if let Some(p) = self.held.iter().position(|h| h.0 == k) {
                        let (_, sender, f, _) = self.held.remove(p);
                        release.push((sender, f));
                        self.released += 1;
                    }
                }
            }
            if is(&r.segment) {
                seen.0 += 1;
                // Held only while the segment it waits for is still to come.
                if seen.0 == r.nth && seen.1 < r.behind_nth && !hold {
                    self.held.push((k, from, frame.to_vec(), now + MAX_HOLD));
                    hold = true;
                }
            }
        }
        if hold {
            Forward::Hold
        } else {
            Forward::Pass(release)
        }
    }

    /// When the script next has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        let a = self.scheduled.iter().map(|s| s.0).min();
        let b = self.held.iter().map(|h| h.3).min();
        a.into_iter().chain(b).min()
    }

    /// Frames due at `now`: (sender, frame). Injected ones are recorded.
    pub fn due(&mut self, now: Instant) -> Vec<(End, Vec<u8>)> {
        let mut out = Vec::new();
        let mut k = 0;
        while k < self.scheduled.len() {
            if self.scheduled[k].0 > now {
                k += 1;
                continue;
            }
            let (_, which, replay) = self.scheduled.remove(k);
            self.fired += 1;
            let made = match (self.script.inject[which].action, replay) {
                (_, Some((sender, frame))) => Some((sender, frame, true)),
                (InjectAction::Forge(f), None) => {
                    self.forge(&f).map(|frame| (peer(f.to), frame, false))
                }
                (InjectAction::Replay, None) => None,
            };
            let Some((sender, frame, replay)) = made else {
                continue;
            };
            if let Some(seg) = TcpView::parse(self.ip(&frame)) {
                self.injected.push(InjectedSegment {
                    index: which,
                    to: peer(sender),
                    flags: Flags(seg.flags & (SYN | FIN | RST | PSH | ACK)),
                    seq: seg.seq,
                    ack: if seg.flags & ACK != 0 { seg.ack } else { 0 },
                    len: seg.payload,
                    replay,
                    unix_ns: unix_ns_now(),
                });
            }
            out.push((sender, frame));
        }
        let mut k = 0;
        while k < self.held.len() {
            if self.held[k].3 <= now {
                let (_, sender, f, _) = self.held.remove(k);
                self.released += 1;
                out.push((sender, f));
            } else {
                k += 1;
            }
        }
        out
    }

    /// Every injection fired and every held frame released.
    pub fn finished(&self) -> bool {
        self.fired == self.script.inject.len() && self.held.is_empty()
    }

    /// Injections whose named segment never crossed (none scheduled, none fired).
    pub fn never_fired(&self) -> Vec<usize> {
        (0..self.script.inject.len())
            .filter(|k| {
                !self.injected.iter().any(|s| s.index == *k)
                    && !self.scheduled.iter().any(|s| s.1 == *k)
            })
            .collect()
    }

    /// The segments put on the wire so far.
    pub fn injected(&self) -> &[InjectedSegment] {
        &self.injected
    }

    /// Build the forged frame `f` from the ends' state, or None with no template at all.
    fn forge(&self, f: &Forge) -> Option<Vec<u8>> {
        let sender = peer(f.to);
        let (s, r) = (idx(sender), idx(f.to));
        // The sender's last frame as is, or the recipient's with both ends swapped.
        let (template, swapped) = match (&self.last[s], &self.last[r]) {
            (Some(t), _) => (t, false),
            (None, Some(t)) => (t, true),
            (None, None) => return None,
        };
        let ip = self.ip(template);
        let h = Headers::parse(ip)?;
        let h = if swapped { h.swapped() } else { h };
        let seq = f.seq.apply(self.next[s].unwrap_or(0));
        let ack = f.ack.apply(self.next[r].unwrap_or(0));
        let window = f.window.unwrap_or(if swapped { 0 } else { h.window });
        let builder = match (h.src, h.dst) {
            (Addr::V4(a), Addr::V4(b)) => etherparse::PacketBuilder::ipv4(a, b, 64),
            (Addr::V6(a), Addr::V6(b)) => etherparse::PacketBuilder::ipv6(a, b, 64),
            _ => return None,
        };
        let mut b = builder.tcp(h.sport, h.dport, seq, window);
        let fl = f.flags.0;
        if fl & SYN != 0 {
            b = b.syn();
        }
        if fl & FIN != 0 {
            b = b.fin();
        }
        if fl & RST != 0 {
            b = b.rst();
        }
        if fl & PSH != 0 {
            b = b.psh();
        }
        if fl & ACK != 0 {
            b = b.ack(ack);
        }
        let payload = vec![b'x'; usize::from(f.len)];
        let mut out = Vec::new();
        if self.ethernet {
            let eth = template.get(..ETH_HLEN)?;
            if swapped {
                // Destination and source MAC swapped, EtherType kept.
                out.extend_from_slice(eth.get(6..12)?);
                out.extend_from_slice(eth.get(..6)?);
                out.extend_from_slice(eth.get(12..14)?);
            } else {
                out.extend_from_slice(eth);
            }
        }
        b.write(&mut out, &payload).ok()?;
        Some(out)
    }
}

#[derive(Debug, Clone, Copy)]
enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// The fields of a template packet a forged one copies.
#[derive(Debug, Clone, Copy)]
struct Headers {
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    window: u16,
}

impl Headers {
    fn parse(ip: &[u8]) -> Option<Headers> {
        let (src, dst, tcp) = match ip.first()? >> 4 {
            4 => (
                Addr::V4(ip.get(12..16)?.try_into().ok()?),
                Addr::V4(ip.get(16..20)?.try_into().ok()?),
                usize::from(ip[0] & 0x0f) * 4,
            ),
            6 => (
                Addr::V6(ip.get(8..24)?.try_into().ok()?),
                Addr::V6(ip.get(24..40)?.try_into().ok()?),
                40,
            ),
            _ => return None,
        };
        let be16 = |i: usize| Some(u16::from_be_bytes([*ip.get(i)?, *ip.get(i + 1)?]));
        Some(Headers {
            src,
            dst,
            sport: be16(tcp)?,
            dport: be16(tcp + 2)?,
            window: be16(tcp + 14)?,
        })
    }

    fn swapped(self) -> Headers {
        Headers {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            window: self.window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> SegmentSpec {
        s.parse().unwrap()
    }

    /// An IPv4 or IPv6 TCP packet between the link's addresses, built by etherparse.
    fn pkt(v6: bool, from: End, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
        let (c4, s4) = ([192, 0, 2, 1], [192, 0, 2, 2]);
        let mut c6 = [0u8; 16];
        c6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        let mut s6 = c6;
        c6[15] = 1;
        s6[15] = 2;
        let (sp, dp) = match from {
            End::Client => (40000, 80),
            End::Server => (80, 40000),
        };
        let b = match (v6, from) {
            (false, End::Client) => etherparse::PacketBuilder::ipv4(c4, s4, 64),
            (false, End::Server) => etherparse::PacketBuilder::ipv4(s4, c4, 64),
            (true, End::Client) => etherparse::PacketBuilder::ipv6(c6, s6, 64),
            (true, End::Server) => etherparse::PacketBuilder::ipv6(s6, c6, 64),
        };
        let mut t = b.tcp(sp, dp, seq, 1000);
        if flags & SYN != 0 {
            t = t.syn();
        }
        if flags & FIN != 0 {
            t = t.fin();
        }
        if flags & RST != 0 {
            t = t.rst();
        }
        if flags & ACK != 0 {
            t = t.ack(ack);
        }
        let mut out = Vec::new();
        t.write(&mut out, &vec![0; len]).unwrap();
        out
    }

    /// Both checksums verified: the IPv4 header's by etherparse, the TCP one by recomputing
    /// it with the link's own fixer (a correct checksum is left unchanged).
    fn assert_checksums_ok(p: &[u8]) {
        if p[0] >> 4 == 4 {
            let (h, _) = etherparse::Ipv4Header::from_slice(p).unwrap();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
        }
        let mut copy = p.to_vec();
        crate::veth::fix_tcp_checksum(&mut copy);
        assert_eq!(copy, p, "TCP checksum");
    }

    /// The conversation up to the final ACK of a four-way close: client ISN 100, server 500.
    fn conversation(st: &mut ScriptState, v6: bool) -> Vec<Forward> {
        let mut im = crate::impair::Impairer::new(Default::default());
        let t = Instant::now();
        let segs = [
            (End::Client, 100, 0, SYN, 0),
            (End::Server, 500, 101, SYN | ACK, 0),
            (End::Client, 101, 501, ACK, 0),
            (End::Client, 101, 501, ACK, 10),
            (End::Server, 501, 111, ACK, 6),
            (End::Client, 111, 507, FIN | ACK, 0),
            (End::Server, 507, 112, ACK, 0),
            (End::Server, 507, 112, FIN | ACK, 0),
            (End::Client, 112, 508, ACK, 0),
        ];
        segs.iter()
            .map(|&(from, seq, ack, fl, len)| {
                let p = pkt(v6, from, seq, ack, fl, len);
                im.decide(from, &p);
                let kinds = im.kinds(from, &TcpView::parse(&p).unwrap());
                st.forwarded(from, &kinds, &p, t)
            })
            .collect()
    }

    #[test]
    fn flags_and_seq_parse_and_reject() {
        assert_eq!("R.".parse::<Flags>().unwrap(), Flags(RST | ACK));
        assert_eq!("S".parse::<Flags>().unwrap().to_string(), "S");
        assert_eq!(Flags(FIN | ACK | PSH).to_string(), "FP.");
        for bad in ["", "RR", "A", "r", "R ."] {
            assert!(bad.parse::<Flags>().unwrap_err().contains("SFRP."), "{bad}");
        }
        assert_eq!("next".parse::<SeqExpr>().unwrap().offset, 0);
        assert_eq!("next+1000".parse::<SeqExpr>().unwrap().offset, 1000);
        assert_eq!("next-1".parse::<SeqExpr>().unwrap().offset, -1);
        assert_eq!("next-1".parse::<SeqExpr>().unwrap().to_string(), "next-1");
        for bad in [
            "",
            "last",
            "next+",
            "next+-1",
            "next*2",
            "next+2147483648",
            "5",
        ] {
            assert!(
                bad.parse::<SeqExpr>().unwrap_err().contains("next+N"),
                "{bad}"
            );
        }
    }

    #[test]
    fn forged_rst_to_the_client_is_in_window_with_correct_checksums() {
        for v6 in [false, true] {
            let script = Script {
                inject: vec![Injection {
                    at: spec("client ACK-of-FIN"),
                    nth: 1,
                    after: Duration::from_millis(50),
                    action: InjectAction::Forge(Forge {
                        to: End::Client,
                        flags: Flags(RST),
                        seq: SeqExpr::default(),
                        ack: SeqExpr::default(),
                        len: 0,
                        window: None,
                    }),
                }],
                reorder: vec![],
            };
            let mut st = ScriptState::new(script, false);
            let t = Instant::now();
            conversation(&mut st, v6);
            assert!(!st.finished());
            let wake = st.next_wake().unwrap();
            assert!(wake >= t + Duration::from_millis(50));
            assert!(st.due(t).is_empty(), "not before its time");
            let out = st.due(wake);
            assert_eq!(out.len(), 1);
            let (sender, p) = &out[0];
            assert_eq!(*sender, End::Server);
            let v = TcpView::parse(p).unwrap();
            // The server's next sequence number: one past its FIN (507 + 1).
            assert_eq!((v.seq, v.flags, v.payload), (508, RST, 0));
            assert_checksums_ok(p);
            let h = Headers::parse(p).unwrap();
            assert_eq!((h.sport, h.dport), (80, 40000));
            assert!(st.finished());
            let rec = &st.injected()[0];
            assert_eq!((rec.to, rec.seq, rec.replay), (End::Client, 508, false));
            assert_eq!(rec.flags.to_string(), "R");
        }
    }

    #[test]
    fn forged_syn_and_data_take_offsets_and_payload() {
        let forge = |to, flags: &str, seq: &str, len| Injection {
            at: spec("client FIN"),
            nth: 1,
            after: Duration::ZERO,
            action: InjectAction::Forge(Forge {
                to,
                flags: flags.parse().unwrap(),
                seq: seq.parse().unwrap(),
                ack: SeqExpr::default(),
                len,
                window: Some(7),
            }),
        };
        let script = Script {
            inject: vec![
                forge(End::Server, "S", "next+1000", 0),
                forge(End::Server, "P.", "next", 10),
            ],
            reorder: vec![],
        };
        let mut st = ScriptState::new(script, false);
        conversation(&mut st, false);
        let out = st.due(Instant::now() + Duration::from_secs(1));
        assert_eq!(out.len(), 2);
        for (_, p) in &out {
            assert_checksums_ok(p);
            assert_eq!(Headers::parse(p).unwrap().window, 7);
        }
        let syn = TcpView::parse(&out[0].1).unwrap();
        // The client's next is one past its FIN: 112; + 1000.
        assert_eq!((syn.seq, syn.flags), (1112, SYN));
        let data = TcpView::parse(&out[1].1).unwrap();
        assert_eq!((data.seq, data.ack, data.payload), (112, 508, 10));
        assert_eq!(data.flags, PSH | ACK);
    }

    #[test]
    fn replay_sends_the_named_segment_again() {
        let script = Script {
            inject: vec![Injection {
                at: spec("client ACK-of-FIN"),
                nth: 1,
                after: Duration::from_millis(5),
                action: InjectAction::Replay,
            }],
            reorder: vec![],
        };
        let mut st = ScriptState::new(script, false);
        conversation(&mut st, false);
        let out = st.due(Instant::now() + Duration::from_secs(1));
        assert_eq!(out[0].0, End::Client);
        assert_eq!(out[0].1, pkt(false, End::Client, 112, 508, ACK, 0));
        assert!(st.injected()[0].replay);
        assert_eq!(st.injected()[0].to, End::Server);
    }

    #[test]
    fn a_moment_that_never_comes_is_reported() {
        let script = Script {
            inject: vec![Injection {
                at: spec("server RST"),
                nth: 1,
                after: Duration::ZERO,
                action: InjectAction::Replay,
            }],
            reorder: vec![],
        };
        let mut st = ScriptState::new(script, false);
        conversation(&mut st, false);
        assert_eq!(st.next_wake(), None);
        assert!(!st.finished());
        assert_eq!(st.never_fired(), vec![0]);
    }

    #[test]
    fn reorder_holds_data_behind_the_fin() {
        let script = Script {
            inject: vec![],
            reorder: vec![Reorder {
                segment: spec("server data"),
                nth: 1,
                behind: spec("server FIN"),
                behind_nth: 1,
            }],
        };
        let mut st = ScriptState::new(script, false);
        let fates = conversation(&mut st, false);
        // Segment 5 (server data) held; segment 8 (server FIN) releases it.
        assert_eq!(fates[4], Forward::Hold);
        match &fates[7] {
            Forward::Pass(r) => {
                assert_eq!(r.len(), 1);
                assert_eq!(r[0].0, End::Server);
                assert_eq!(TcpView::parse(&r[0].1).unwrap().payload, 6);
            }
            other => panic!("{other:?}"),
        }
        assert!(st.finished());
    }

    #[test]
    fn a_held_segment_goes_after_max_hold() {
        let script = Script {
            inject: vec![],
            reorder: vec![Reorder {
                segment: spec("server data"),
                nth: 1,
                behind: spec("server RST"),
                behind_nth: 1,
            }],
        };
        let mut st = ScriptState::new(script, false);
        conversation(&mut st, false);
        assert!(!st.finished());
        let at = st.next_wake().unwrap();
        assert_eq!(st.due(at).len(), 1);
        assert!(st.finished());
    }

    #[test]
    fn ethernet_frames_keep_their_header() {
        let script = Script {
            inject: vec![Injection {
                at: spec("client ACK-of-FIN"),
                nth: 1,
                after: Duration::ZERO,
                action: InjectAction::Forge(Forge {
                    to: End::Client,
                    flags: Flags(RST),
                    seq: SeqExpr::default(),
                    ack: SeqExpr::default(),
                    len: 0,
                    window: None,
                }),
            }],
            reorder: vec![],
        };
        let mut st = ScriptState::new(script, true);
        let mut eth = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        let ip = pkt(false, End::Server, 507, 112, FIN | ACK, 0);
        eth.extend_from_slice(&ip);
        let mut im = crate::impair::Impairer::new(Default::default());
        let kinds = im.kinds(End::Server, &TcpView::parse(&ip).unwrap());
        im.decide(End::Server, &ip);
        st.forwarded(End::Server, &kinds, &eth, Instant::now());
        let mut ack = vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0x08, 0x00];
        let a = pkt(false, End::Client, 112, 508, ACK, 0);
        ack.extend_from_slice(&a);
        let kinds = im.kinds(End::Client, &TcpView::parse(&a).unwrap());
        st.forwarded(End::Client, &kinds, &ack, Instant::now());
        let out = st.due(Instant::now() + Duration::from_secs(1));
        assert_eq!(&out[0].1[..14], &eth[..14]);
        assert_checksums_ok(&out[0].1[14..]);
    }
}
