//! Teardown classification: docs/teardown.md's decision order, one function per rule.
//!
//! Read first: RFC 9293 §3.6 (closing a connection, cases 1–3), §3.10.7.4 (FIN processing),
//! RFC 1122 §4.2.3.2 (delayed ACK), RFC 2525 §2.17 (RST on close with unread data).

pub use crate::kind::{Closer, Teardown, TeardownKind};
use crate::side::Side;

use crate::analysis::{Connection, PacketInfo, Role};
use crate::raw_conn::{roles, side_of, Detail, Pkt, RawConn};
use crate::seq::SeqNum;
use crate::state::{TcpState, Timeline};
use crate::warning::Warning;

/// Positions in the packet list are doubled so that an inferred FIN can sit "just before"
/// the packet that acknowledges it (at `2*i - 1`) without renumbering anything.
type Pos = usize;

/// One endpoint's FIN, captured or inferred.
#[derive(Clone, Copy, Debug)]
struct Fin {
    /// Index into `raw.packets` when captured.
    idx: Option<usize>,
    pos: Pos,
    /// Packet number that the state timeline ties it to.
    number: u64,
    ts_ns: i64,
    /// fin_end: seq + payload + 1 (+1 with SYN).
    end: SeqNum,
    /// The ack field of the FIN segment, when its ACK flag is set.
    ack: Option<SeqNum>,
}

/// What the classifier found, before it is dressed up as a [`Connection`].
#[derive(Debug)]
struct Facts<'a> {
    raw: &'a RawConn,
    first_is_client: bool,
    /// FIN per side (index `Side::idx`).
    fin: [Option<Fin>; 2],
    inferred: [bool; 2],
    rst: Option<usize>,
}

impl Facts<'_> {
    fn side(&self, p: &Pkt) -> Side {
        side_of(p, self.first_is_client)
    }
    fn pkts_of(&self, s: Side) -> impl Iterator<Item = (usize, &Pkt)> + '_ {
        self.raw
            .packets
            .iter()
            .enumerate()
            .filter(move |(_, p)| side_of(p, self.first_is_client) == s)
    }
    fn agg(&self, s: Side) -> &crate::raw_conn::DirAgg {
        // `agg` is indexed by "sent by the first packet's sender".
        let from_first = (s == Side::Client) == self.first_is_client;
        &self.raw.agg[usize::from(from_first)]
    }
}

fn acks(p: &Pkt, end: SeqNum) -> bool {
    p.flags.ack() && p.ack.covers(end)
}

/// Does FIN(a) (sent by `a_side`) acknowledge FIN(b)? A captured FIN says so in its ack
/// field; an inferred one has no segment, see [`inferred_fin_acks`].
fn fin_acks(f: &Facts<'_>, a_side: Side, a: &Fin, b: &Fin) -> bool {
    match (a.idx, a.ack) {
        (Some(_), Some(ack)) => ack.covers(b.end),
        (Some(_), None) => false,
        (None, _) => inferred_fin_acks(f, a_side, a, b),
    }
}

/// An inferred FIN(a)'s ack field is bounded by its sender's captured segments, since acks
/// only grow: one sent before the FIN (sequence number below the FIN's) that already
/// acknowledges FIN(b) means the FIN did too; one sent after it (at fin_end) that does not
/// acknowledge FIN(b) means the FIN did not either. Without such a segment the numbers cannot
/// tell; the captured FIN(b) is then taken as the first unless it acknowledges FIN(a) (the
/// common, non-simultaneous close), and with both FINs inferred the first one acknowledged is.
fn inferred_fin_acks(f: &Facts<'_>, a_side: Side, a: &Fin, b: &Fin) -> bool {
    let mut acked_before = false;
    let mut unacked_after = false;
    for (i, p) in f.pkts_of(a_side) {
        // Only segments captured after FIN(b) can acknowledge it (see `first_ack_of`).
        if 2 * i + 2 <= b.pos || !p.flags.ack() {
            continue;
        }
        if p.seq == a.end {
            unacked_after |= !p.ack.covers(b.end);
        } else if !p.seq.covers(a.end) {
            acked_before |= p.ack.covers(b.end);
        }
    }
    if acked_before {
        return true;
    }
    if unacked_after {
        return false;
    }
    match (b.idx, b.ack) {
        (Some(_), Some(ack)) => !ack.covers(a.end),
        (Some(_), None) => true,
        (None, _) => b.pos < a.pos,
    }
}

fn captured_fin(raw: &RawConn, first_is_client: bool, s: Side) -> Option<Fin> {
    let (i, p) = raw
        .packets
        .iter()
        .enumerate()
        .find(|(_, p)| p.flags.fin() && side_of(p, first_is_client) == s)?;
    Some(Fin {
        idx: Some(i),
        pos: 2 * i + 2,
        number: p.number,
        ts_ns: p.ts_ns,
        end: p.seq_end(),
        ack: p.flags.ack().then_some(p.ack),
    })
}

/// docs/teardown.md "Gaps": FIN(X) missing, Y acknowledges one beyond X's last captured byte, and
/// X's later segments (if any) start there.
fn inferred_fin(f: &Facts<'_>, x: Side) -> Option<Fin> {
    let data_end = f.agg(x).max_data_end?;
    let want = data_end.plus(1);
    let (i, p) = f
        .raw
        .packets
        .iter()
        .enumerate()
        .find(|(_, p)| f.side(p) == x.peer() && p.flags.ack() && p.ack == want)?;
    let later_ok = f
        .raw
        .packets
        .iter()
        .skip(i + 1)
        .filter(|q| f.side(q) == x)
        .all(|q| q.seq == want);
    later_ok.then_some(Fin {
        idx: None,
        pos: 2 * i + 1,
        number: p.number,
        ts_ns: p.ts_ns,
        end: want,
        ack: None,
    })
}

/// The facts the decision rests on: each side's FIN (captured, else inferred) and the
/// first RST.
fn facts(raw: &RawConn, first_is_client: bool) -> Facts<'_> {
    let mut f = Facts {
        raw,
        first_is_client,
        fin: [None, None],
        inferred: [false, false],
        rst: raw.packets.iter().position(|p| p.flags.rst()),
    };
    for s in [Side::Client, Side::Server] {
        f.fin[s.idx()] = captured_fin(raw, first_is_client, s);
    }
    for s in [Side::Client, Side::Server] {
        if f.fin[s.idx()].is_none() {
            if let Some(fin) = inferred_fin(&f, s) {
                f.fin[s.idx()] = Some(fin);
                f.inferred[s.idx()] = true;
            }
        }
    }
    f
}

/// How a finished [`RawConn`] ended, and nothing else: [`finish`]'s `teardown`, for
/// counting.
pub(crate) fn teardown_of(raw: &RawConn) -> Teardown {
    let (first_is_client, _, _) = roles(raw);
    classify(&facts(raw, first_is_client)).teardown
}

/// Turn a finished [`RawConn`] into a classified [`Connection`].
pub(crate) fn finish(raw: &RawConn, file_start_ns: i64, detail: Detail) -> Connection {
    finish_reusing(raw, file_start_ns, detail, None)
}

/// [`finish`], building the new connection in the buffers of `spare`, a connection the
/// caller is done with: at a million connections the allocations of its packet list, state
/// timelines and Zeek history otherwise cost as much as filling them.
pub(crate) fn finish_reusing(
    raw: &RawConn,
    file_start_ns: i64,
    detail: Detail,
    spare: Option<Connection>,
) -> Connection {
    let (mut teardown_packets, states, warnings_buf, history) = match spare {
        Some(c) => (
            c.teardown_packets,
            c.states,
            c.warnings,
            c.zeek.map(|z| z.history).unwrap_or_default(),
        ),
        None => Default::default(),
    };
    let (first_is_client, roles_guessed, handshake) = roles(raw);
    let f = facts(raw, first_is_client);
    let decision = classify(&f);
    let pkt_roles = if detail == Detail::Full {
        assign_roles(&f, &decision)
    } else {
        Vec::new()
    };
    let verdict_only = detail == Detail::Verdict;
    let states = if verdict_only {
        Default::default()
    } else {
        timelines(&f, &decision, states)
    };
    let warnings = if verdict_only {
        Vec::new()
    } else {
        warnings(&f, &decision, roles_guessed, handshake, warnings_buf)
    };

    let (client, server) = if first_is_client {
        (raw.first_src, raw.first_dst)
    } else {
        (raw.first_dst, raw.first_src)
    };
    let start_pos = [
        f.fin[0].map(|x| x.pos),
        f.fin[1].map(|x| x.pos),
        f.rst.map(|i| 2 * i + 2),
    ]
    .into_iter()
    .flatten()
    .min();
    teardown_packets.clear();
    if let Some(sp) = start_pos.filter(|_| !verdict_only) {
        teardown_packets.extend(
            raw.packets
                .iter()
                .enumerate()
                .filter(|(i, _)| 2 * i + 2 >= sp)
                .map(|(_, p)| p.number),
        );
    }
    let packets = raw
        .packets
        .iter()
        .zip(pkt_roles)
        .map(|(p, role)| PacketInfo {
            number: p.number,
            ts_ns: p.ts_ns,
            from: f.side(p),
            seq: p.seq,
            ack: p.ack,
            flags: p.flags,
            len: p.len,
            window: p.window,
            fingerprint: p.fingerprint,
            role,
        })
        .collect();
    Connection {
        client,
        server,
        teardown: decision.teardown,
        teardown_packets,
        states,
        warnings,
        packets,
        elided: raw.elided,
        packet_count: raw.packet_count,
        first_packet: raw.first_packet,
        file_start_ns,
        encap: raw.encap.as_deref().map(<[_]>::to_vec).unwrap_or_default(),
        zeek: raw
            .zeek
            .as_ref()
            .filter(|_| !verdict_only)
            .map(|z| z.view_reusing(first_is_client, history)),
        rst: if verdict_only || !raw.packets.iter().any(|p| p.flags.rst()) {
            Vec::new()
        } else {
            crate::rst::classify(&raw.packets, first_is_client)
        },
        bytes: if first_is_client {
            [raw.bytes[1], raw.bytes[0]]
        } else {
            [raw.bytes[0], raw.bytes[1]]
        },
    }
}

/// The decision, plus the packets that made it.
#[derive(Debug)]
struct Decision {
    teardown: Teardown,
    /// Active closer for three-way/four-way/incomplete.
    active: Option<Side>,
    /// Four-way / incomplete: the passive side's separate ACK of the first FIN.
    separate_ack: Option<usize>,
    /// Three/four-way: the active side's ACK of the second FIN.
    final_ack: Option<usize>,
    /// Simultaneous: the ACK of each side's FIN, indexed by the FIN's side.
    ack_of_fin: [Option<usize>; 2],
    late_rst: bool,
}

/// docs/teardown.md's decision order, one rule after another.
fn classify(f: &Facts<'_>) -> Decision {
    let fin_retransmits = count_fin_retransmits(f);
    let mut v = Decision {
        teardown: Teardown {
            kind: TeardownKind::Open,
            active_closer: None,
            final_ack: false,
            fin_retransmits,
            fin_ack_delay_ns: None,
            close_duration_ns: None,
        },
        active: None,
        separate_ack: None,
        final_ack: None,
        ack_of_fin: [None, None],
        late_rst: false,
    };
    let both = match (f.fin[0], f.fin[1]) {
        (Some(c), Some(s)) => Some((c, s)),
        _ => None,
    };
    // Rule 1: reset — an RST before both FINs have been seen (or with no FIN at all).
    if let Some(r) = f.rst {
        let rst_pos = 2 * r + 2;
        let after_both = both.is_some_and(|(c, s)| rst_pos > c.pos.max(s.pos));
        if !after_both {
            let sender = f.side(&f.raw.packets[r]);
            v.teardown.kind = TeardownKind::Reset;
            v.teardown.active_closer = Some(sender.into());
            // The close starts at the first FIN sent before the RST; a FIN after it is not
            // part of this close's duration.
            let first_ts = f
                .fin
                .iter()
                .flatten()
                .filter(|x| x.pos < rst_pos)
                .map(|x| x.ts_ns)
                .min()
                .unwrap_or(f.raw.packets[r].ts_ns);
            v.teardown.close_duration_ns =
                Some(f.raw.packets[r].ts_ns.saturating_sub(first_ts).max(0));
            return v;
        }
        v.late_rst = true;
    }
    let Some((c, s)) = both else {
        // Rule 5/6: incomplete or open.
        let one = [Side::Client, Side::Server]
            .into_iter()
            .find(|x| f.fin[x.idx()].is_some());
        if let Some(a) = one {
            v.teardown.kind = TeardownKind::Incomplete;
            v.teardown.active_closer = Some(a.into());
            v.active = Some(a);
            v.separate_ack = first_ack_of(f, a.peer(), f.fin[a.idx()], None);
            if let (Some(i), Some(fa)) = (v.separate_ack, f.fin[a.idx()]) {
                v.teardown.fin_ack_delay_ns = Some(f.raw.packets[i].ts_ns.saturating_sub(fa.ts_ns));
            }
        }
        return v;
    };
    let c_acks_s = fin_acks(f, Side::Client, &c, &s);
    let s_acks_c = fin_acks(f, Side::Server, &s, &c);
    let first_ts = c.ts_ns.min(s.ts_ns);
    // Rule 2: simultaneous — neither FIN acknowledges the other's.
    if !c_acks_s && !s_acks_c {
        v.teardown.kind = TeardownKind::Simultaneous;
        v.teardown.active_closer = Some(Closer::Both);
        v.ack_of_fin = [
            first_ack_of(f, Side::Server, Some(c), None),
            first_ack_of(f, Side::Client, Some(s), None),
        ];
        v.teardown.final_ack = v.ack_of_fin.iter().all(Option::is_some);
        let end = v
            .ack_of_fin
            .iter()
            .flatten()
            .map(|&i| f.raw.packets[i].ts_ns)
            .max();
        v.teardown.close_duration_ns = end.map(|e| e.saturating_sub(first_ts));
        return v;
    }
    // The first FIN is the one the other FIN acknowledges (bogus mutual acks: file order).
    let active = match (c_acks_s, s_acks_c) {
        (false, true) => Side::Client,
        (true, false) => Side::Server,
        _ if c.pos <= s.pos => Side::Client,
        _ => Side::Server,
    };
    let passive = active.peer();
    let (fa, fp) = if active == Side::Client {
        (c, s)
    } else {
        (s, c)
    };
    v.active = Some(active);
    v.teardown.active_closer = Some(active.into());
    // Rules 3/4: did P acknowledge FIN(A) in a separate segment before its own FIN?
    v.separate_ack = first_ack_of(f, passive, Some(fa), Some(fp.pos));
    if let Some(i) = v.separate_ack {
        v.teardown.kind = TeardownKind::FourWay;
        v.teardown.fin_ack_delay_ns = Some(f.raw.packets[i].ts_ns.saturating_sub(fa.ts_ns));
    } else {
        v.teardown.kind = TeardownKind::ThreeWay;
    }
    v.final_ack = first_ack_of(f, active, Some(fp), None);
    v.teardown.final_ack = v.final_ack.is_some();
    let end = v
        .final_ack
        .map_or(fp.ts_ns, |i| f.raw.packets[i].ts_ns)
        .max(fp.ts_ns);
    v.teardown.close_duration_ns = Some(end.saturating_sub(first_ts));
    v
}

/// The first segment from `from` that acknowledges `fin` (not counting FIN segments that
/// belong to `from` itself when `before` excludes them), optionally only before `before`.
///
/// Only segments captured after the FIN count: nothing can acknowledge a FIN before it was
/// sent, and once a long transfer has wrapped the sequence space an old ACK "covers" a FIN
/// sent 2^31 bytes later (mod 2^32 comparison). Every vantage point sees a FIN before the
/// peer's ACK of it, so this uses no cross-direction order that a vantage could change.
fn first_ack_of(f: &Facts<'_>, from: Side, fin: Option<Fin>, before: Option<Pos>) -> Option<usize> {
    let fin = fin?;
    f.pkts_of(from)
        .find(|(i, p)| {
            let pos = 2 * i + 2;
            pos > fin.pos
                && before.is_none_or(|b| pos < b)
                && f.fin[from.idx()].is_none_or(|own| own.idx != Some(*i))
                && acks(p, fin.end)
        })
        .map(|(i, _)| i)
}

/// docs/teardown.md: retransmissions of FIN(X) are later FIN segments from X with the same
/// sequence number; a FIN at another number is not a retransmission of it.
fn count_fin_retransmits(f: &Facts<'_>) -> u32 {
    let mut n = 0;
    for s in [Side::Client, Side::Server] {
        if let Some(Fin {
            idx: Some(first), ..
        }) = f.fin[s.idx()]
        {
            let seq = f.raw.packets[first].seq;
            n += f
                .pkts_of(s)
                .filter(|(i, p)| *i > first && p.flags.fin() && p.seq == seq)
                .count() as u32;
        }
    }
    n
}

fn assign_roles(f: &Facts<'_>, v: &Decision) -> Vec<Role> {
    let pk = &f.raw.packets;
    let kind = v.teardown.kind;
    let fin_of = |s: Side| f.fin[s.idx()];
    // The first FIN by position, for reset and incomplete narration.
    let first_fin_side = [Side::Client, Side::Server]
        .into_iter()
        .filter_map(|s| fin_of(s).map(|x| (x.pos, s)))
        .min()
        .map(|(_, s)| s);
    // Only a bare ACK is narrated as "the handshake ACK"; data or a FIN says more.
    let handshake_ack = synack_ack(f)
        .and_then(|(_, i)| i)
        .filter(|&i| pk[i].len == 0 && !pk[i].flags.fin() && !pk[i].flags.rst());
    let close_end: Option<Pos> = match kind {
        TeardownKind::ThreeWay | TeardownKind::FourWay => v.final_ack.map(|i| 2 * i + 2),
        TeardownKind::Simultaneous if v.teardown.final_ack => {
            v.ack_of_fin.iter().flatten().map(|&i| 2 * i + 2).max()
        }
        _ => None,
    };
    pk.iter()
        .enumerate()
        .map(|(i, p)| {
            let s = f.side(p);
            let pos = 2 * i + 2;
            if p.flags.rst() {
                return if v.late_rst { Role::LateRst } else { Role::Rst };
            }
            if p.flags.syn() {
                return if p.flags.ack() {
                    Role::SynAck
                } else {
                    Role::Syn
                };
            }
            if p.flags.fin() {
                let own = fin_of(s);
                if own.is_some_and(|x| x.idx != Some(i)) {
                    return Role::FinRetransmit;
                }
                return match kind {
                    TeardownKind::Simultaneous => Role::FinCrossed,
                    TeardownKind::ThreeWay | TeardownKind::FourWay => {
                        if Some(s) == v.active {
                            Role::FinFirst
                        } else if kind == TeardownKind::ThreeWay {
                            Role::FinWithAckOfFirst
                        } else {
                            Role::FinSecond
                        }
                    }
                    TeardownKind::Reset | TeardownKind::Incomplete | TeardownKind::Open => {
                        if first_fin_side == Some(s) {
                            Role::FinFirst
                        } else {
                            Role::FinSecond
                        }
                    }
                };
            }
            if Some(i) == handshake_ack {
                return Role::HandshakeAck;
            }
            if Some(i) == v.separate_ack {
                if p.len > 0 {
                    return Role::DataAfterFin;
                }
                let fa = v.active.and_then(fin_of).map_or(p.ts_ns, |x| x.ts_ns);
                return Role::AckOfFirstFin {
                    delay_ns: p.ts_ns.saturating_sub(fa),
                };
            }
            if Some(i) == v.final_ack {
                return Role::FinalAck;
            }
            if v.ack_of_fin.contains(&Some(i)) {
                return Role::AckOfCrossedFin;
            }
            if close_end.is_some_and(|e| pos > e) {
                return if p.len > 0 {
                    Role::Data
                } else {
                    Role::AckAfterClose
                };
            }
            if let Some(a) = v.active {
                if s == a.peer() {
                    if let Some(fa) = fin_of(a) {
                        let before_own_fin = fin_of(s).is_none_or(|own| pos < own.pos);
                        if p.len > 0 && fa.pos < pos && acks(p, fa.end) {
                            return Role::DataAfterFin;
                        }
                        if p.len == 0 && fa.pos < pos && before_own_fin && !acks(p, fa.end) {
                            return Role::AckDataNotFin;
                        }
                    }
                }
            }
            if p.len > 0 {
                Role::Data
            } else {
                Role::Ack
            }
        })
        .collect()
}

/// The first SYN+ACK, and the first later segment from its receiver that acknowledges it
/// (the one that completes the handshake), as indexes into the packets.
fn synack_ack(f: &Facts<'_>) -> Option<(usize, Option<usize>)> {
    let pk = &f.raw.packets;
    let sa = pk.iter().position(|p| p.flags.syn() && p.flags.ack())?;
    let isn_end = pk[sa].seq.plus(1);
    let server = f.side(&pk[sa]);
    let ack = pk
        .iter()
        .enumerate()
        .skip(sa + 1)
        .find(|(_, p)| f.side(p) == server.peer() && !p.flags.syn() && acks(p, isn_end))
        .map(|(i, _)| i);
    Some((sa, ack))
}

/// RFC 9293 states implied by the capture, each tied to the packet that caused it.
/// `t`: timelines to fill (emptied first; their buffers are reused).
fn timelines(f: &Facts<'_>, v: &Decision, mut t: [Timeline; 2]) -> [Timeline; 2] {
    use TcpState::*;
    let pk = &f.raw.packets;
    for x in &mut t {
        x.clear();
    }
    let (c, s) = (Side::Client.idx(), Side::Server.idx());
    // Handshake (RFC 9293 §3.5).
    let syn = pk.iter().find(|p| p.flags.syn() && !p.flags.ack());
    if let Some(p) = syn {
        t[c].transition(p.number, SynSent);
    }
    match synack_ack(f) {
        Some((sa, ack)) => {
            t[s].transition(pk[sa].number, SynReceived);
            t[c].transition(pk[sa].number, Established);
            if let Some(i) = ack {
                t[s].transition(pk[i].number, Established);
            }
        }
        None => {
            // Mid-stream capture: the exchange itself shows the connection was open.
            if let Some(p) = pk.iter().find(|p| !p.flags.syn() && !p.flags.rst()) {
                t[c].transition(p.number, Established);
                t[s].transition(p.number, Established);
            }
        }
    }
    let kind = v.teardown.kind;
    match kind {
        TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Incomplete => {
            if let Some(a) = v.active {
                let p = a.peer();
                if let Some(fa) = f.fin[a.idx()] {
                    // RFC 9293 §3.6 case 1: the closer enters FIN_WAIT_1, the peer CLOSE_WAIT.
                    t[a.idx()].transition(fa.number, FinWait1);
                    t[p.idx()].transition(fa.number, CloseWait);
                }
                if let Some(i) = v.separate_ack {
                    // Our FIN acknowledged alone: FIN_WAIT_1 -> FIN_WAIT_2.
                    t[a.idx()].transition(pk[i].number, FinWait2);
                }
                if let Some(fp) = f.fin[p.idx()] {
                    // Passive close: CLOSE_WAIT -> LAST_ACK; the closer, whose FIN is now
                    // acknowledged (by this segment or earlier), goes to TIME_WAIT.
                    t[p.idx()].transition(fp.number, LastAck);
                    t[a.idx()].transition(fp.number, TimeWait);
                }
                if let Some(i) = v.final_ack {
                    t[p.idx()].transition(pk[i].number, Closed);
                }
            }
        }
        TeardownKind::Simultaneous => {
            // RFC 9293 §3.6 case 3: FIN_WAIT_1 -> CLOSING on the peer's FIN, then TIME_WAIT
            // when our own FIN is acknowledged.
            for x in [Side::Client, Side::Server] {
                if let Some(own) = f.fin[x.idx()] {
                    t[x.idx()].transition(own.number, FinWait1);
                }
            }
            // X enters CLOSING on the peer's FIN, which it can only receive after sending its
            // own; a capture near the peer shows the peer's FIN first, so tie CLOSING to
            // whichever of the two FINs comes later in the file (timelines stay in packet order).
            for x in [Side::Client, Side::Server] {
                if let (Some(own), Some(peer)) = (f.fin[x.idx()], f.fin[x.peer().idx()]) {
                    t[x.idx()].transition(own.number.max(peer.number), Closing);
                }
            }
            for x in [Side::Client, Side::Server] {
                if let Some(i) = v.ack_of_fin[x.idx()] {
                    t[x.idx()].transition(pk[i].number, TimeWait);
                }
            }
        }
        TeardownKind::Reset => {
            if let Some(r) = f.rst {
                let rp = &pk[r];
                for x in [Side::Client, Side::Server] {
                    if let Some(own) = f.fin[x.idx()] {
                        if own.pos < 2 * r + 2 {
                            t[x.idx()].transition(own.number, FinWait1);
                            t[x.peer().idx()].transition(own.number, CloseWait);
                        }
                    }
                }
                // RFC 9293 §3.10.7.3: an acceptable RST closes the receiver; the sender
                // aborted (SO_LINGER 0 / unread data) and is closed too.
                t[c].transition(rp.number, Closed);
                t[s].transition(rp.number, Closed);
            }
        }
        TeardownKind::Open => {}
    }
    // A capture from `-i any` or a mirror port can show a SYN+ACK before its SYN; whatever
    // the rules above tied states to, a timeline is read in packet order.
    for x in &mut t {
        x.sort_by_packet();
    }
    t
}

/// `w`: the list to fill (emptied first; its buffer is reused).
fn warnings(
    f: &Facts<'_>,
    v: &Decision,
    roles_guessed: bool,
    handshake: bool,
    mut w: Vec<Warning>,
) -> Vec<Warning> {
    w.clear();
    // docs/teardown.md "Gaps": a handshake not (completely) captured warns; the roles then
    // come from whichever half of it was seen, and only when neither was (no SYN, no
    // SYN+ACK) from the ports, which is the one case that warns `roles-guessed` too (a lone
    // SYN said "no SYN captured").
    if !handshake || roles_guessed {
        w.push(Warning::HandshakeNotCaptured);
    }
    if roles_guessed {
        w.push(Warning::RolesGuessed);
    }
    for x in [Side::Client, Side::Server] {
        if f.inferred[x.idx()] {
            w.push(Warning::FinInferred(x));
        }
    }
    for x in [Side::Client, Side::Server] {
        let mine = f.agg(x);
        let Some(mut end) = mine.max_seq_end else {
            continue;
        };
        if let Some(fin) = f.fin[x.idx()] {
            end = end.max(fin.end);
        }
        let Some(peer_ack) = f.agg(x.peer()).max_ack else {
            continue;
        };
        let beyond = !end.covers(peer_ack);
        // A hole exactly one byte wide where the FIN sits is the FIN itself, not data.
        let fin_fills_hole = |h: SeqNum| f.fin[x.idx()].is_some_and(|fin| fin.end == h.plus(1));
        let over_hole = mine
            .hole
            .is_some_and(|h| peer_ack.covers(h.plus(1)) && !fin_fills_hole(h));
        if beyond || over_hole {
            w.push(Warning::AckForUncapturedData(x));
        }
    }
    let closed_by_fins = matches!(
        v.teardown.kind,
        TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Simultaneous
    );
    if closed_by_fins && !v.teardown.final_ack {
        w.push(Warning::FinalAckNotCaptured);
    }
    if v.late_rst {
        w.push(Warning::LateRst);
    }
    if f.raw.elided > 0 {
        w.push(Warning::PacketsElided(f.raw.elided));
    }
    w
}

#[cfg(test)]
mod tests {
    //! Traces are written as (direction, flags, seq, ack, len, ms): `c` = client→server.
    use super::*;
    use crate::conn::analyze_segments;
    use crate::segment::{Flags, Segment};

    const C: &str = "192.0.2.1:41334";
    const S: &str = "192.0.2.2:60000";

    type Line = (&'static str, &'static str, u32, u32, u32, f64);

    fn flags(s: &str) -> Flags {
        let mut f = 0;
        for ch in s.chars() {
            f |= match ch {
                'S' => Flags::SYN,
                'F' => Flags::FIN,
                'R' => Flags::RST,
                'P' => Flags::PSH,
                '.' => Flags::ACK,
                _ => panic!("bad flag {ch}"),
            };
        }
        Flags(f)
    }

    fn segs(lines: &[Line]) -> Vec<Segment> {
        lines
            .iter()
            .enumerate()
            .map(|(i, &(dir, fl, seq, ack, len, ms))| {
                let (src, dst) = if dir == "c" { (C, S) } else { (S, C) };
                Segment {
                    ts_ns: (ms * 1e6) as i64,
                    src: src.parse().unwrap(),
                    dst: dst.parse().unwrap(),
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags: flags(fl),
                    len,
                    window: 100,
                    fingerprint: i as u64 + 1,
                    encap: None,
                    ip: Default::default(),
                }
            })
            .collect()
    }

    fn one(lines: &[Line]) -> Connection {
        let mut conns = analyze_segments(segs(lines));
        assert_eq!(conns.len(), 1, "expected one connection");
        conns.remove(0)
    }

    fn verdict(c: &Connection) -> String {
        format!(
            "{} {} final_ack={} fin_retransmits={} warnings={:?}",
            c.teardown.kind.as_str(),
            c.teardown.active_closer.map_or("none", Closer::as_str),
            c.teardown.final_ack,
            c.teardown.fin_retransmits,
            c.warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        )
    }

    fn timeline(c: &Connection, s: Side) -> String {
        c.states[s.idx()]
            .changes()
            .iter()
            .map(|x| format!("{}({})", x.state, x.packet))
            .collect::<Vec<_>>()
            .join(" ")
    }

    // Handshake + request/response, ISNs 1000 (client) and 5000 (server).
    const HANDSHAKE: [Line; 6] = [
        ("c", "S", 1000, 0, 0, 0.0),
        ("s", "S.", 5000, 1001, 0, 0.1),
        ("c", ".", 1001, 5001, 0, 0.2),
        ("c", "P.", 1001, 5001, 3, 0.3),
        ("s", ".", 5001, 1004, 0, 0.4),
        ("s", "P.", 5001, 1004, 6, 0.5),
    ];

    fn established(rest: &[Line]) -> Vec<Line> {
        HANDSHAKE.iter().chain(rest).copied().collect()
    }

    #[test]
    fn three_way_when_fin_carries_ack_of_fin() {
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", ".", 1004, 5007, 0, 0.7),
            ("c", "F.", 1004, 5008, 0, 0.8),
            ("s", ".", 5008, 1005, 0, 0.9),
        ]));
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[]"
        );
        assert_eq!(c.teardown_packets, vec![7, 8, 9, 10]);
        assert_eq!(
            timeline(&c, Side::Server),
            "SYN_RECEIVED(2) ESTABLISHED(3) FIN_WAIT_1(7) TIME_WAIT(9)"
        );
        assert_eq!(
            timeline(&c, Side::Client),
            "SYN_SENT(1) ESTABLISHED(2) CLOSE_WAIT(7) LAST_ACK(9) CLOSED(10)"
        );
        let roles: Vec<Role> = c.packets.iter().map(|p| p.role).collect();
        assert_eq!(roles[7], Role::AckDataNotFin);
        assert_eq!(roles[8], Role::FinWithAckOfFirst);
        assert_eq!(roles[9], Role::FinalAck);
    }

    #[test]
    fn four_way_when_ack_precedes_fin() {
        let c = one(&established(&[
            ("c", ".", 1004, 5007, 0, 0.6),
            ("c", "F.", 1004, 5007, 0, 0.7),
            ("s", ".", 5007, 1005, 0, 40.7),
            ("s", "F.", 5007, 1005, 0, 100.7),
            ("c", ".", 1005, 5008, 0, 100.9),
        ]));
        assert_eq!(
            verdict(&c),
            "four-way client final_ack=true fin_retransmits=0 warnings=[]"
        );
        assert_eq!(c.teardown.fin_ack_delay_ns, Some(40_000_000));
        assert_eq!(
            timeline(&c, Side::Client),
            "SYN_SENT(1) ESTABLISHED(2) FIN_WAIT_1(8) FIN_WAIT_2(9) TIME_WAIT(10)"
        );
        assert_eq!(
            timeline(&c, Side::Server),
            "SYN_RECEIVED(2) ESTABLISHED(3) CLOSE_WAIT(8) LAST_ACK(10) CLOSED(11)"
        );
    }

    #[test]
    fn simultaneous_when_fins_cross() {
        // The seed's capture: no handshake, FINs cross, each then acked.
        let c = one(&[
            ("s", "F.", 3633446994, 1764274713, 0, 0.0),
            ("c", "F.", 1764274713, 3633446994, 0, 0.9),
            ("s", ".", 3633446995, 1764274714, 0, 0.9),
            ("c", ".", 1764274714, 3633446995, 0, 1.2),
        ]);
        assert_eq!(
            verdict(&c),
            "simultaneous both final_ack=true fin_retransmits=0 warnings=[\"handshake-not-captured\", \"roles-guessed\"]"
        );
        assert_eq!(
            timeline(&c, Side::Client),
            // Port 60000 > 41334, so the `s` lines are the guessed client here.
            "ESTABLISHED(1) FIN_WAIT_1(1) CLOSING(2) TIME_WAIT(4)"
        );
        // Vantage independence: the same packets with the two FINs in the other file order.
        let c2 = one(&[
            ("c", "F.", 1764274713, 3633446994, 0, 0.0),
            ("s", "F.", 3633446994, 1764274713, 0, 0.9),
            ("c", ".", 1764274714, 3633446995, 0, 1.0),
            ("s", ".", 3633446995, 1764274714, 0, 1.2),
        ]);
        assert_eq!(c2.teardown.kind, TeardownKind::Simultaneous);
    }

    #[test]
    fn three_way_is_vantage_independent() {
        // Captured at the client: the client's FIN+ACK may appear before the server's data
        // ACK... what matters is only which FIN acknowledges which.
        let c = one(&established(&[
            ("c", "F.", 1004, 5007, 0, 0.6),
            ("s", "F.", 5007, 1005, 0, 0.7),
            ("c", ".", 1005, 5008, 0, 0.8),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
        assert_eq!(c.teardown.active_closer, Some(Closer::Client));
    }

    #[test]
    fn fin_retransmission_is_the_same_fin() {
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("s", "F.", 5007, 1004, 0, 200.6),
            ("c", "F.", 1004, 5008, 0, 200.7),
            ("s", ".", 5008, 1005, 0, 200.8),
        ]));
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=1 warnings=[]"
        );
        assert_eq!(c.packets[7].role, Role::FinRetransmit);
    }

    #[test]
    fn missing_fin_is_inferred_from_the_peers_ack() {
        // The server's FIN (seq 5007) was lost by the capture; the client acks 5008.
        let c = one(&established(&[
            ("c", "F.", 1004, 5008, 0, 0.7),
            ("s", ".", 5008, 1005, 0, 0.8),
        ]));
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[\"fin-inferred:server\"]"
        );
    }

    #[test]
    fn missing_final_ack_is_reported() {
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5008, 0, 0.7),
        ]));
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=false fin_retransmits=0 warnings=[\"final-ack-not-captured\"]"
        );
    }

    #[test]
    fn missing_handshake_guesses_roles_by_port() {
        let c = one(&[
            ("s", "P.", 5001, 1004, 6, 0.5),
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5008, 0, 0.7),
            ("s", ".", 5008, 1005, 0, 0.8),
        ]);
        // docs/teardown.md: the lower port is taken as the server, so here roles come out swapped.
        assert_eq!(c.server.port(), 41334);
        assert_eq!(
            verdict(&c),
            "three-way client final_ack=true fin_retransmits=0 warnings=[\"handshake-not-captured\", \"roles-guessed\"]"
        );
    }

    #[test]
    fn sequence_wraps_around_2_pow_32() {
        let c = one(&[
            ("c", "S", 0xffff_fffd, 0, 0, 0.0),
            ("s", "S.", 0xffff_fff0, 0xffff_fffe, 0, 0.1),
            ("c", ".", 0xffff_fffe, 0xffff_fff1, 0, 0.2),
            ("c", "P.", 0xffff_fffe, 0xffff_fff1, 3, 0.3),
            ("s", "P.", 0xffff_fff1, 1, 20, 0.4),
            ("s", "F.", 5, 1, 0, 0.5),
            ("c", ".", 1, 5, 0, 0.6),
            ("c", "F.", 1, 6, 0, 0.7),
            ("s", ".", 6, 2, 0, 0.8),
        ]);
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[]"
        );
    }

    #[test]
    fn half_close_with_data_after_fin_is_four_way() {
        let c = one(&established(&[
            ("c", "F.", 1004, 5007, 0, 0.6),
            ("s", "P.", 5007, 1005, 100, 0.7),
            ("c", ".", 1005, 5107, 0, 0.8),
            ("s", "F.", 5107, 1005, 0, 0.9),
            ("c", ".", 1005, 5108, 0, 1.0),
        ]));
        assert_eq!(
            verdict(&c),
            "four-way client final_ack=true fin_retransmits=0 warnings=[]"
        );
        assert_eq!(c.packets[7].role, Role::DataAfterFin);
        assert_eq!(c.packets[8].role, Role::Ack);
    }

    #[test]
    fn rst_after_both_fins_is_late_rst() {
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5008, 0, 0.7),
            ("s", ".", 5008, 1005, 0, 0.8),
            ("c", "R", 1005, 0, 0, 0.9),
        ]));
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[\"late-rst\"]"
        );
        assert_eq!(c.packets[9].role, Role::LateRst);
    }

    #[test]
    fn reset_before_fins_is_reset_by_its_sender() {
        let c = one(&established(&[("c", "R.", 1004, 5007, 0, 0.6)]));
        assert_eq!(
            verdict(&c),
            "reset client final_ack=false fin_retransmits=0 warnings=[]"
        );
        assert_eq!(
            timeline(&c, Side::Server),
            "SYN_RECEIVED(2) ESTABLISHED(3) CLOSED(7)"
        );
        // Unread data: the server's FIN never comes, only an RST.
        let c = one(&established(&[("s", "R.", 5007, 1004, 0, 0.6)]));
        assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    }

    #[test]
    fn new_syn_after_the_end_starts_a_new_connection() {
        let mut lines = established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5008, 0, 0.7),
            ("s", ".", 5008, 1005, 0, 0.8),
        ]);
        lines.push(("c", "S", 9000, 0, 0, 10.0));
        lines.push(("s", "S.", 7000, 9001, 0, 10.1));
        lines.push(("c", ".", 9001, 7001, 0, 10.2));
        lines.push(("c", "R.", 9001, 7001, 0, 10.3));
        let conns = analyze_segments(segs(&lines));
        assert_eq!(conns.len(), 2);
        assert_eq!(conns[0].teardown.kind, TeardownKind::ThreeWay);
        assert_eq!(conns[1].teardown.kind, TeardownKind::Reset);
        assert_eq!(conns[1].first_packet, 10);
        // A retransmitted SYN (same ISN) stays in the same connection.
        let conns = analyze_segments(segs(&[
            ("c", "S", 1000, 0, 0, 0.0),
            ("c", "S", 1000, 0, 0, 1000.0),
        ]));
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].teardown.kind, TeardownKind::Open);
    }

    #[test]
    fn incomplete_when_only_one_fin() {
        let c = one(&established(&[
            ("c", "F.", 1004, 5007, 0, 0.6),
            ("s", ".", 5007, 1005, 0, 40.6),
        ]));
        assert_eq!(
            verdict(&c),
            "incomplete client final_ack=false fin_retransmits=0 warnings=[]"
        );
        assert_eq!(
            timeline(&c, Side::Client),
            "SYN_SENT(1) ESTABLISHED(2) FIN_WAIT_1(7) FIN_WAIT_2(8)"
        );
    }

    #[test]
    fn ack_for_uncaptured_data_is_warned() {
        let c = one(&established(&[
            // The client acks 100 bytes of server data the capture never saw.
            ("c", ".", 1004, 5107, 0, 0.6),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::Open);
        assert_eq!(
            c.warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["ack-for-uncaptured-data:server"]
        );
    }

    #[test]
    fn regress_ack_before_fin_does_not_cover_it_across_a_wrap() {
        // See: issue 9 §2 "Sequence wrap". The client's ACKs from the handshake (ack 5001)
        // "cover" the server's FIN once the server has sent 3 GB and its sequence numbers
        // have wrapped; they were sent 88 s before that FIN and acknowledge nothing of it.
        let fin = 5001u32.wrapping_add(3_000_000_000);
        let c = one(&established(&[
            ("s", ".", fin.wrapping_sub(100), 1004, 100, 88_000.0),
            ("s", "F.", fin, 1004, 0, 88_571.0),
            ("c", "F.", 1004, fin.wrapping_add(1), 0, 88_571.1),
            ("s", ".", fin.wrapping_add(1), 1005, 0, 88_571.2),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
        assert_eq!(c.teardown.active_closer, Some(Closer::Server));
        assert_eq!(c.teardown.fin_ack_delay_ns, None);
        assert_eq!(
            timeline(&c, Side::Server),
            "SYN_RECEIVED(2) ESTABLISHED(3) FIN_WAIT_1(8) TIME_WAIT(9)"
        );
        assert!(c.packets.iter().all(|p| p.role
            != Role::AckOfFirstFin {
                delay_ns: p.ts_ns - 88_571_000_000
            }));
        assert_eq!(c.packets[2].role, Role::HandshakeAck);
    }

    #[test]
    fn fin_retransmits_count_only_the_same_sequence_number() {
        // docs/teardown.md: retransmissions of FIN(X) have the same sequence number. A FIN at
        // 5008 after one at 5007 is not one of them.
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("s", "F.", 5008, 1004, 0, 200.6),
            ("c", "F.", 1004, 5008, 0, 200.7),
            ("s", ".", 5008, 1005, 0, 200.8),
        ]));
        assert_eq!(c.teardown.fin_retransmits, 0);
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("s", "F.", 5007, 1004, 0, 200.6),
            ("s", "F.", 5007, 1004, 0, 600.6),
            ("c", "F.", 1004, 5008, 0, 600.7),
            ("s", ".", 5008, 1005, 0, 600.8),
        ]));
        assert_eq!(c.teardown.fin_retransmits, 2);
    }

    #[test]
    fn handshake_half_captured_warns_but_roles_are_not_guessed() {
        // SYN+ACK without its SYN: roles come from the SYN+ACK; the handshake was not
        // captured, but the roles were not guessed from the ports (issue 20 item 10: a lone
        // SYN warned "roles-guessed: no SYN captured").
        let c = one(&[
            ("s", "S.", 5000, 1001, 0, 0.1),
            ("c", ".", 1001, 5001, 0, 0.2),
            ("s", "F.", 5001, 1001, 0, 0.6),
            ("c", "F.", 1001, 5002, 0, 0.7),
            ("s", ".", 5002, 1002, 0, 0.8),
        ]);
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[\"handshake-not-captured\"]"
        );
        assert_eq!(c.server.port(), 60000);
        // A SYN without its SYN+ACK: the same one warning.
        let c = one(&[
            ("c", "S", 1000, 0, 0, 0.0),
            ("c", ".", 1001, 5001, 0, 0.2),
            ("s", "F.", 5001, 1001, 0, 0.6),
            ("c", "F.", 1001, 5002, 0, 0.7),
            ("s", ".", 5002, 1002, 0, 0.8),
        ]);
        assert_eq!(
            verdict(&c),
            "three-way server final_ack=true fin_retransmits=0 warnings=[\"handshake-not-captured\"]"
        );
    }

    #[test]
    fn inferred_fin_is_placed_by_sequence_numbers_not_file_order() {
        // The client's FIN (seq 1004) is missing. After it, the client sent a segment at
        // fin_end (1005) that does not acknowledge the server's FIN: so the client's FIN did
        // not either, and neither FIN acknowledges the other: simultaneous. File order
        // (server FIN before the ACK that implies the client's) would say three-way/server.
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", ".", 1005, 5007, 0, 0.65),
            ("s", ".", 5008, 1005, 0, 0.7),
            ("c", ".", 1005, 5008, 0, 0.75),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::Simultaneous);
        assert!(c.warnings.contains(&Warning::FinInferred(Side::Client)));
        // Evidence the other way: the client acknowledged the server's FIN (with data) before
        // its own missing FIN, so that FIN did too: the server closed first, four-way.
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "P.", 1004, 5008, 5, 0.65),
            ("s", ".", 5008, 1010, 0, 0.7),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::FourWay);
        assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    }

    #[test]
    fn reset_close_duration_ignores_a_fin_after_the_rst() {
        let c = one(&established(&[
            ("c", "R.", 1004, 5007, 0, 0.6),
            ("s", "F.", 5007, 1004, 0, 0.9),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::Reset);
        assert_eq!(c.teardown.close_duration_ns, Some(0));
        let c = one(&established(&[
            ("c", "F.", 1004, 5007, 0, 0.6),
            ("s", "R.", 5007, 1005, 0, 0.8),
            ("c", "F.", 1004, 5007, 0, 0.9),
        ]));
        assert_eq!(c.teardown.close_duration_ns, Some(200_000));
    }

    #[test]
    fn timelines_are_in_packet_order() {
        // Simultaneous close captured next to the server: the server's FIN comes first in the
        // file, the client's FIN (which crossed it) second.
        let c = one(&established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5007, 0, 0.8),
            ("s", ".", 5008, 1005, 0, 0.9),
            ("c", ".", 1005, 5008, 0, 1.0),
        ]));
        assert_eq!(c.teardown.kind, TeardownKind::Simultaneous);
        for side in [Side::Client, Side::Server] {
            let packets: Vec<u64> = c.states[side.idx()]
                .changes()
                .iter()
                .map(|x| x.packet)
                .collect();
            assert!(
                packets.windows(2).all(|w| w[0] <= w[1]),
                "{side:?}: {packets:?}"
            );
        }
        assert_eq!(
            timeline(&c, Side::Client),
            "SYN_SENT(1) ESTABLISHED(2) FIN_WAIT_1(8) CLOSING(8) TIME_WAIT(9)"
        );
        // A SYN+ACK captured before its SYN (`-i any`).
        let c = one(&[
            ("s", "S.", 5000, 1001, 0, 0.1),
            ("c", "S", 1000, 0, 0, 0.1),
            ("c", ".", 1001, 5001, 0, 0.2),
            ("c", "R.", 1001, 5001, 0, 0.3),
        ]);
        let packets: Vec<u64> = c.states[Side::Client.idx()]
            .changes()
            .iter()
            .map(|x| x.packet)
            .collect();
        assert!(packets.windows(2).all(|w| w[0] <= w[1]), "{packets:?}");
    }

    #[test]
    fn stray_segments_after_the_close_are_not_connections() {
        // See: issue 9 §2 "Stray segments become connections".
        let mut lines = established(&[
            ("s", "F.", 5007, 1004, 0, 0.6),
            ("c", "F.", 1004, 5008, 0, 0.7),
            ("s", ".", 5008, 1005, 0, 0.8),
            // 100 ms later the client's stack answers a stray segment with an RST.
            ("c", "R", 1005, 0, 0, 100.8),
            // Long after (the connection has been reported): a stray RST and a stray ACK,
            // then a new connection on the same 4-tuple.
            ("c", "R", 1005, 0, 0, 5_000.0),
            ("s", ".", 5008, 1005, 0, 30_000.0),
            ("c", "S", 9000, 0, 0, 40_000.0),
            ("s", "S.", 7000, 9001, 0, 40_000.1),
        ]);
        let conns = analyze_segments(segs(&lines));
        assert_eq!(conns.len(), 2, "{conns:#?}");
        assert_eq!(
            verdict(&conns[0]),
            "three-way server final_ack=true fin_retransmits=0 warnings=[\"late-rst\"]"
        );
        assert_eq!(conns[1].first_packet, 13);
        // Counted at file level by the streaming analysis.
        lines.truncate(12);
        let text: String = segs(&lines)
            .iter()
            .map(|s| {
                format!(
                    "{}.{:06} IP {}.{} > {}.{}: Flags [{}], seq {}, ack {}, win 1, length {}\n",
                    s.ts_ns / 1_000_000_000 + 36_000,
                    s.ts_ns % 1_000_000_000 / 1000,
                    s.src.ip(),
                    s.src.port(),
                    s.dst.ip(),
                    s.dst.port(),
                    s.flags.tcpdump(),
                    s.seq,
                    s.ack,
                    s.len
                )
            })
            .collect();
        let a = crate::analyze(text.as_bytes(), "t").unwrap();
        assert_eq!(a.connections.len(), 1);
        assert_eq!(a.file.after_close, 2);
    }

    #[test]
    fn loopback_duplicates_are_counted_once() {
        let mut s = segs(&established(&[]));
        let dup = s[3].clone();
        s.insert(4, dup);
        let conns = analyze_segments(s);
        assert_eq!(conns[0].packet_count, 6);
    }
}
