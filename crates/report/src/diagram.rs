//! The space-time diagram of one connection as plain data: two time lines (client, server),
//! each segment an arrow from its send time at one end to its arrival at the other, states
//! where each end entered them. Built from one capture (both ends' times are the same
//! instant: loopback, or one vantage point) or two (the two ends of a link, two hosts:
//! segments paired by [`tcplab_trace::vantage`]). [`crate::svg`] draws it.

use tcplab_trace::render::human::{self, Context};
use tcplab_trace::render::Lang;
use tcplab_trace::vantage::match_views;
use tcplab_trace::{Connection, Role, Side, StateSource, TcpState};

/// What became of one transmission.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// Seen leaving one end and arriving at the other (or, with one capture, seen once).
    Delivered,
    /// Seen leaving its sender, never arriving although the receiver's capture went on:
    /// dropped on the way.
    Lost,
    /// Seen leaving its sender after the receiver's capture had ended.
    Unseen,
    /// Seen arriving, never leaving its sender: put on the wire by something else (a link
    /// fault, an attacker's forged segment, or a sender capture that missed it).
    Injected,
    /// A second arrival of a segment that left once (the link duplicated it).
    Duplicate,
}

impl Fate {
    /// The `data-fate` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Lost => "lost",
            Fate::Unseen => "unseen",
            Fate::Injected => "injected",
            Fate::Duplicate => "duplicate",
        }
    }
}

/// A segment the link forged or replayed (`[[link.inject]]`, from the run's record): where
/// a capture shows it, it is drawn as injected, also when it repeats a real segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InjectedMark {
    /// The side it claims to come from.
    pub from: Side,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 without ACK).
    pub ack: u32,
    /// TCP flags byte.
    pub flags: u8,
    /// Payload length.
    pub len: u32,
}

impl InjectedMark {
    fn is(&self, p: &tcplab_trace::PacketInfo) -> bool {
        p.from == self.from
            && p.seq.0 == self.seq
            && p.flags.0 & 0x1f == self.flags & 0x1f
            && p.len == self.len
            && (self.flags & 0x10 == 0 || p.ack.0 == self.ack)
    }
}

/// Which capture(s) saw a segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seen {
    /// Only the one capture there is.
    Single,
    /// Both captures.
    Both,
    /// Only the client end's capture.
    Client,
    /// Only the server end's capture.
    Server,
}

impl Seen {
    /// The `data-seen` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Seen::Single => "single",
            Seen::Both => "both",
            Seen::Client => "client",
            Seen::Server => "server",
        }
    }
}

/// One segment as an arrow. Times are ns since the diagram's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    /// Packet number in the client end's capture (or the only one); else in the server's.
    pub number: u64,
    /// Its sender.
    pub from: Side,
    /// When it left its sender (None: not seen leaving).
    pub sent_ns: Option<i64>,
    /// When it arrived (None: not seen arriving).
    pub arrived_ns: Option<i64>,
    /// What became of it.
    pub fate: Fate,
    /// Which capture(s) have it.
    pub seen: Seen,
    /// tcpdump's flags, `F.`.
    pub flags: String,
    /// tcpdump-style label: `[F.] seq 1, ack 2, len 0`.
    pub label: String,
    /// One line of narration.
    pub narration: String,
    /// A retransmission of a segment sent before.
    pub retransmit: bool,
    /// For a delayed ACK of a FIN: how long the receiver waited before sending it, ns.
    pub delayed_ack_ns: Option<i64>,
}

/// One state an end entered, on its own time line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateMark {
    /// The end.
    pub side: Side,
    /// When, ns since the diagram's start.
    pub at_ns: i64,
    /// The state.
    pub state: TcpState,
    /// Inferred from the capture, or the kernel's own record.
    pub source: StateSource,
}

/// How the two time lines relate.
#[derive(Clone, Debug, PartialEq)]
pub enum Vantage {
    /// One capture: each segment is drawn at the instant that capture saw it.
    One {
        /// True when both ends share the host (loopback): sent and received at the same
        /// instant, so the arrows are truly horizontal.
        loopback: bool,
    },
    /// Two captures, one at each end.
    Two {
        /// Smallest client→server one-way delay seen, ns (after the clock correction).
        delay_cs_ns: Option<i64>,
        /// Smallest server→client one-way delay seen, ns.
        delay_sc_ns: Option<i64>,
        /// What was added to the server capture's clock to line it up with the client's
        /// (0 when the clocks agree), ns.
        clock_shift_ns: i64,
    },
}

/// A connection's diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagram {
    /// `192.0.2.1:40000`.
    pub client: String,
    /// `192.0.2.2:60000`.
    pub server: String,
    /// The ends' relation.
    pub vantage: Vantage,
    /// Arrows in order of their first time.
    pub arrows: Vec<Arrow>,
    /// States, both ends, in time order.
    pub states: Vec<StateMark>,
    /// Sentences the page must say (why arrows are horizontal, clocks out of step …).
    pub notes: Vec<String>,
    /// Absolute time (ns) of the diagram's 0.
    pub start_ns: i64,
}

/// One end's kernel states with their absolute times (the capture's clock).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelTimes {
    /// The client socket's states.
    pub client: Vec<(i64, TcpState)>,
    /// The server socket's states.
    pub server: Vec<(i64, TcpState)>,
}

/// The inputs of one diagram.
#[derive(Clone, Copy, Debug)]
pub struct Views<'a> {
    /// The client end's capture (or the only capture).
    pub client: &'a Connection,
    /// The server end's capture, when there are two.
    pub server: Option<&'a Connection>,
    /// Whether the two clocks are one (the same host, e.g. a tcplab link run): no shift is
    /// estimated, a negative delay is then said as is.
    pub same_clock: bool,
    /// The kernel's own states, if recorded.
    pub kernel: Option<&'a KernelTimes>,
    /// Segments the link forged or replayed (a tcplab link run's record).
    pub injected: &'a [InjectedMark],
}

/// Which of two views of one connection was taken at the client end: the one where the
/// client's segments leave before they arrive in the other, judged over the sum of both
/// directions' smallest differences (a clock offset cancels in it). `true`: `a` is at the
/// client.
pub fn a_is_client_end(a: &Connection, b: &Connection) -> bool {
    let m = match_views(a, b);
    let (mut cs, mut sc) = (i64::MAX, i64::MAX);
    for (i, j) in m.a_to_b.iter().enumerate() {
        let Some(j) = *j else { continue };
        let d = b.packets[j].ts_ns - a.packets[i].ts_ns;
        match a.packets[i].from {
            Side::Client => cs = cs.min(d),
            Side::Server => sc = sc.min(-d),
        }
    }
    if cs == i64::MAX || sc == i64::MAX {
        return true;
    }
    cs.saturating_add(sc) >= 0
}

/// Build the diagram.
pub fn build(v: Views<'_>, lang: Lang) -> Diagram {
    match v.server {
        None => one_view(v.client, v.kernel, lang),
        Some(s) => two_views(v.client, s, v.same_clock, v.kernel, v.injected, lang),
    }
}

fn narration(conn: &Connection, i: usize, lang: Lang) -> String {
    let p = &conn.packets[i];
    Context::of(conn, i)
        .map(|ctx| human::narrate(p.role, &ctx, lang))
        .unwrap_or_default()
}

/// Retransmissions within one view: a FIN retransmit, or a segment that repeats an earlier
/// one's sequence space in the same direction (SYN, FIN or data).
fn retransmits(conn: &Connection) -> Vec<bool> {
    let mut seen = std::collections::BTreeSet::new();
    conn.packets
        .iter()
        .map(|p| {
            if p.role == Role::FinRetransmit {
                return true;
            }
            let occupies = p.len > 0 || p.flags.syn() || p.flags.fin();
            occupies && !seen.insert((p.from, p.seq.0, p.len, p.flags.0 & 0x03))
        })
        .collect()
}

/// Linux's delayed-ACK timer is 40 ms at least; an ACK of a FIN 10 ms or more after it is
/// that timer (as the narration says), not an immediate reply.
fn delayed_ack(p: &tcplab_trace::PacketInfo) -> Option<i64> {
    match p.role {
        Role::AckOfFirstFin { delay_ns } if delay_ns >= 10_000_000 => Some(delay_ns),
        _ => None,
    }
}

fn is_loopback(conn: &Connection) -> bool {
    conn.client.ip() == conn.server.ip() || conn.client.ip().is_loopback()
}

fn capture_states(conn: &Connection, side: Side, shift: i64, out: &mut Vec<StateMark>) {
    let times: std::collections::BTreeMap<u64, i64> =
        conn.packets.iter().map(|p| (p.number, p.ts_ns)).collect();
    for c in conn.states[side.idx()].changes() {
        if c.source != StateSource::Capture {
            continue;
        }
        // The packet that caused it, or (a timeline that starts before the capture) the first.
        let at = times
            .get(&c.packet)
            .or_else(|| times.values().next())
            .copied();
        if let Some(at) = at {
            out.push(StateMark {
                side,
                at_ns: at + shift,
                state: c.state,
                source: StateSource::Capture,
            });
        }
    }
}

fn kernel_states(k: Option<&KernelTimes>, out: &mut Vec<StateMark>) {
    let Some(k) = k else { return };
    for (side, v) in [(Side::Client, &k.client), (Side::Server, &k.server)] {
        for &(at_ns, state) in v {
            out.push(StateMark {
                side,
                at_ns,
                state,
                source: StateSource::Kernel,
            });
        }
    }
}

fn label(p: &tcplab_trace::PacketInfo) -> String {
    human::packet_fields(p)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_view(c: &Connection, k: Option<&KernelTimes>, lang: Lang) -> Diagram {
    let rt = retransmits(c);
    let arrows = c
        .packets
        .iter()
        .enumerate()
        .map(|(i, p)| Arrow {
            number: p.number,
            from: p.from,
            sent_ns: Some(p.ts_ns),
            arrived_ns: Some(p.ts_ns),
            fate: Fate::Delivered,
            seen: Seen::Single,
            flags: p.flags.tcpdump(),
            label: label(p),
            narration: narration(c, i, lang),
            retransmit: rt[i],
            delayed_ack_ns: delayed_ack(p),
        })
        .collect();
    let mut states = Vec::new();
    capture_states(c, Side::Client, 0, &mut states);
    capture_states(c, Side::Server, 0, &mut states);
    kernel_states(k, &mut states);
    let loopback = is_loopback(c);
    let note = match (loopback, lang) {
        (true, Lang::En) => "One capture on loopback: both ends are the same host, so each segment was sent and received at the same instant and its arrow is horizontal. A link run (scenarios/link/) captures both ends and draws true slanted arrows.",
        (true, Lang::Zh) => "回环接口上的一份抓包:两端在同一台主机上,每个报文段在同一时刻发出和收到,所以箭头是水平的。链路场景(scenarios/link/)在两端各抓一份包,能画出真正倾斜的箭头。",
        (false, Lang::En) => "One capture from one vantage point: each segment is drawn at the instant this capture saw it, so the arrows are horizontal; the other end's times are not known (give a second capture, from the other end, to see them).",
        (false, Lang::Zh) => "只有一个观察点的一份抓包:每个报文段画在这份抓包看到它的时刻,所以箭头是水平的;另一端的时间未知(再给一份另一端的抓包即可看到)。",
    };
    finish(
        c,
        Vantage::One { loopback },
        arrows,
        states,
        vec![note.to_owned()],
    )
}

fn two_views(
    c: &Connection,
    s: &Connection,
    same_clock: bool,
    k: Option<&KernelTimes>,
    injected: &[InjectedMark],
    lang: Lang,
) -> Diagram {
    let m = match_views(c, s);
    let forged = |p: &tcplab_trace::PacketInfo| injected.iter().any(|i| i.is(p));
    // Raw one-way delays (server clock − client clock for c→s, and back).
    let (mut cs, mut sc) = (None::<i64>, None::<i64>);
    for (i, j) in m.a_to_b.iter().enumerate() {
        let Some(j) = *j else { continue };
        let d = s.packets[j].ts_ns - c.packets[i].ts_ns;
        match c.packets[i].from {
            Side::Client => cs = Some(cs.map_or(d, |x| x.min(d))),
            Side::Server => sc = Some(sc.map_or(-d, |x| x.min(-d))),
        }
    }
    let mut notes = Vec::new();
    // Clocks visibly out of step: a delay below zero. Unless the clock is one, line them up
    // assuming both directions' smallest delays are equal (said, not hidden).
    let mut shift = 0i64;
    let out_of_step = cs.is_some_and(|d| d < 0) || sc.is_some_and(|d| d < 0);
    if let (Some(a), Some(b)) = (cs, sc) {
        if out_of_step && !same_clock {
            shift = (b - a) / 2;
        }
    }
    let ms = |ns: i64| format!("{:.3} ms", ns as f64 / 1e6);
    if out_of_step {
        notes.push(if same_clock {
            format!("The two captures' clocks are out of step: a segment appears to arrive before it was sent (smallest delays client→server {}, server→client {}). Shown as captured.", cs.map_or("-".into(), ms), sc.map_or("-".into(), ms))
        } else {
            format!("The two captures' clocks are out of step (a segment would arrive before it was sent): the server's times are shifted by {} so that both directions' smallest one-way delays are equal ({} each); the true split between the two directions cannot be known from captures.", ms(shift), ms(cs.unwrap_or(0) + shift))
        });
    }
    let (cs, sc) = (cs.map(|d| d + shift), sc.map(|d| d - shift));
    notes.push(match lang {
        Lang::En => "Two captures, one at each end: each arrow leaves its sender when that end's capture saw it leave and arrives when the other end's capture saw it arrive; segments are paired by direction, sequence and acknowledgment numbers, flags, length and IP id.".to_owned(),
        Lang::Zh => "两份抓包,两端各一份:每个箭头从发送端的抓包看到它离开的时刻出发,到接收端的抓包看到它到达的时刻结束;报文段按方向、序号、确认号、标志、长度和IP标识配对。".to_owned(),
    });
    let c_end = c.packets.last().map_or(i64::MIN, |p| p.ts_ns);
    let s_end = s.packets.last().map_or(i64::MIN, |p| p.ts_ns + shift);
    let rt_c = retransmits(c);
    let rt_s = retransmits(s);
    let mut arrows = Vec::new();
    for (i, p) in c.packets.iter().enumerate() {
        let other = m.a_to_b[i].map(|j| s.packets[j].ts_ns + shift);
        let (sent, arrived, fate) = match (p.from, other) {
            (Side::Client, Some(t)) => (Some(p.ts_ns), Some(t), Fate::Delivered),
            (Side::Client, None) if s_end > p.ts_ns => (Some(p.ts_ns), None, Fate::Lost),
            (Side::Client, None) => (Some(p.ts_ns), None, Fate::Unseen),
            (Side::Server, Some(t)) => (Some(t), Some(p.ts_ns), Fate::Delivered),
            (Side::Server, None) => (None, Some(p.ts_ns), Fate::Injected),
        };
        arrows.push(Arrow {
            number: p.number,
            from: p.from,
            sent_ns: sent,
            arrived_ns: arrived,
            fate,
            seen: if other.is_some() {
                Seen::Both
            } else {
                Seen::Client
            },
            flags: p.flags.tcpdump(),
            label: label(p),
            narration: narration(c, i, lang),
            retransmit: rt_c[i],
            delayed_ack_ns: delayed_ack(p),
        });
    }
    for (j, p) in s.packets.iter().enumerate() {
        if m.b_to_a[j].is_some() {
            continue;
        }
        let t = p.ts_ns + shift;
        let twin = s.packets[..j].iter().any(|q| {
            q.from == p.from
                && q.seq == p.seq
                && q.ack == p.ack
                && q.flags == p.flags
                && q.len == p.len
                && q.fingerprint == p.fingerprint
        });
        let (sent, arrived, fate) = match p.from {
            Side::Server if c_end > t => (Some(t), None, Fate::Lost),
            Side::Server => (Some(t), None, Fate::Unseen),
            // A replayed segment repeats a real one: the record says who sent it.
            Side::Client if twin && !forged(p) => (None, Some(t), Fate::Duplicate),
            Side::Client => (None, Some(t), Fate::Injected),
        };
        arrows.push(Arrow {
            number: p.number,
            from: p.from,
            sent_ns: sent,
            arrived_ns: arrived,
            fate,
            seen: Seen::Server,
            flags: p.flags.tcpdump(),
            label: label(p),
            narration: narration(s, j, lang),
            retransmit: rt_s[j],
            delayed_ack_ns: delayed_ack(p),
        });
    }
    arrows.sort_by_key(|a| (a.sent_ns.or(a.arrived_ns).unwrap_or(0), a.from, a.number));
    let mut states = Vec::new();
    capture_states(c, Side::Client, 0, &mut states);
    capture_states(s, Side::Server, shift, &mut states);
    kernel_states(k.map(|k| shifted(k, shift)).as_ref(), &mut states);
    let mut d = finish(
        c,
        Vantage::Two {
            delay_cs_ns: cs,
            delay_sc_ns: sc,
            clock_shift_ns: shift,
        },
        arrows,
        states,
        notes,
    );
    // The lost arrows are drawn to midway: keep the typical delay in the data.
    d.notes.dedup();
    d
}

fn shifted(k: &KernelTimes, shift: i64) -> KernelTimes {
    KernelTimes {
        client: k.client.clone(),
        server: k.server.iter().map(|&(t, s)| (t + shift, s)).collect(),
    }
}

fn finish(
    c: &Connection,
    vantage: Vantage,
    mut arrows: Vec<Arrow>,
    mut states: Vec<StateMark>,
    notes: Vec<String>,
) -> Diagram {
    let start_ns = arrows
        .iter()
        .flat_map(|a| [a.sent_ns, a.arrived_ns])
        .flatten()
        .chain(states.iter().map(|s| s.at_ns))
        .min()
        .unwrap_or(0);
    for a in &mut arrows {
        a.sent_ns = a.sent_ns.map(|t| t - start_ns);
        a.arrived_ns = a.arrived_ns.map(|t| t - start_ns);
    }
    for s in &mut states {
        s.at_ns -= start_ns;
    }
    states.sort_by_key(|s| (s.at_ns, s.side, s.source == StateSource::Kernel));
    Diagram {
        client: c.client.to_string(),
        server: c.server.to_string(),
        vantage,
        arrows,
        states,
        notes,
        start_ns,
    }
}

#[cfg(test)]
mod injected_tests {
    use super::*;

    const FOUR_WAY: &str = include_str!("../../trace/tests/data/seed/four-way-close.txt");

    fn conn(text: &str) -> Connection {
        let a = tcplab_trace::analyze(text.as_bytes(), "t.txt").unwrap();
        a.connections.into_iter().next().unwrap()
    }

    /// The server end sees the client's final ACK twice: once as sent, once replayed by the
    /// link. Without the run's record it is a duplicate; with it, injected.
    #[test]
    fn a_replayed_segment_in_the_record_is_drawn_injected() {
        let replay = "20:01:49.402041 IP 172.16.196.142.41424 > 172.16.196.145.60000: Flags [.], ack 3178165019, win 115, length 0\n";
        let client = conn(FOUR_WAY);
        let server = conn(&format!("{FOUR_WAY}{replay}"));
        let mark = InjectedMark {
            from: Side::Client,
            seq: 3935290888,
            ack: 3178165019,
            flags: 0x10,
            len: 0,
        };
        let fates = |injected: &[InjectedMark]| -> Vec<Fate> {
            let d = build(
                Views {
                    client: &client,
                    server: Some(&server),
                    same_clock: true,
                    kernel: None,
                    injected,
                },
                Lang::En,
            );
            d.arrows.iter().map(|a| a.fate).collect()
        };
        let without = fates(&[]);
        assert_eq!(without.iter().filter(|f| **f == Fate::Duplicate).count(), 1);
        let with = fates(&[mark]);
        assert_eq!(with.iter().filter(|f| **f == Fate::Injected).count(), 1);
        assert!(!with.contains(&Fate::Duplicate));
        // The original ACK stays delivered.
        assert_eq!(
            with.iter().filter(|f| **f == Fate::Delivered).count(),
            without.iter().filter(|f| **f == Fate::Delivered).count()
        );
    }
}
