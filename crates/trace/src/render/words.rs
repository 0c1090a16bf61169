//! The words several renderers share: side and kind names, the verdict line, which states
//! the narration tells at which packet, and where a long connection's elided packets go.
//! Beneath `human.rs`, `ladder.rs`, `summary.rs` and `connections.rs` (which use them), so
//! that the listing can draw a ladder and a summary without an import circle; `human`
//! re-exports the public ones under their old paths.

use super::term::duration;
use super::Lang;
use crate::analysis::{Connection, Side};
use crate::state::{TcpState, Timeline};
use crate::teardown::{Closer, TeardownKind};

/// A separate ACK of a FIN this much later than the FIN is the receiver's delayed-ACK timer
/// (Linux: 40 ms minimum, RFC 1122 §4.2.3.2 allows up to 500 ms), not an immediate reply.
pub(crate) const DELAYED_ACK_MIN_NS: i64 = 10_000_000;

/// Each change of `timeline` with the packet at which the narration tells it: the packet
/// that caused it, or — when an earlier change of the same endpoint is tied to a later
/// packet — that later packet. A capture can show the peer's FIN before this endpoint's own
/// crossing FIN (simultaneous close): the timeline ties CLOSING to the peer's FIN, yet the
/// endpoint entered it only after its own FIN, and the story follows the file's order.
/// A kernel entry that confirms the capture's (same state, merged by
/// [`Timeline::merge_kernel`]) is the same change: it is told once.
pub(crate) fn told(timeline: &Timeline) -> impl Iterator<Item = (u64, TcpState, bool)> {
    timeline
        .folded()
        .into_iter()
        .enumerate()
        .scan(0u64, |latest, (i, (c, _))| {
            *latest = (*latest).max(c.packet);
            Some((*latest, c.state, i == 0))
        })
}

/// States to tell at `packet`. A timeline that starts in ESTABLISHED (handshake not
/// captured) did not *enter* it at its first packet; that start is left to the timeline line.
pub(crate) fn told_at(timeline: &Timeline, packet: u64) -> Vec<TcpState> {
    told(timeline)
        .filter(|&(at, st, first)| at == packet && !(first && st == TcpState::Established))
        .map(|(_, st, _)| st)
        .collect()
}

/// The states `side` of `conn` is told to enter at `packet` in the narration (each once,
/// a kernel record that confirms the capture's folded into it).
pub fn told_states(conn: &Connection, side: Side, packet: u64) -> Vec<TcpState> {
    told_at(&conn.states[side.idx()], packet)
}

/// The last state `timeline` entered at or before `packet` (in the narration's order).
pub(crate) fn state_after(timeline: &Timeline, packet: u64) -> Option<TcpState> {
    told(timeline)
        .filter(|&(at, _, _)| at <= packet)
        .last()
        .map(|(_, st, _)| st)
}

/// `client` / `客户端`.
pub fn side_name(side: Side, lang: Lang) -> &'static str {
    match (side, lang) {
        (Side::Client, Lang::En) => "client",
        (Side::Server, Lang::En) => "server",
        (Side::Client, Lang::Zh) => "客户端",
        (Side::Server, Lang::Zh) => "服务端",
    }
}

/// The verdict for a connection: kind, who started it, and the detail that explains it.
pub fn verdict(conn: &Connection, lang: Lang) -> String {
    let t = &conn.teardown;
    let closer = |c: Option<Closer>| match c {
        Some(Closer::Client) => Some(side_name(Side::Client, lang)),
        Some(Closer::Server) => Some(side_name(Side::Server, lang)),
        Some(Closer::Both) => Some(match lang {
            Lang::En => "both",
            Lang::Zh => "双方",
        }),
        None => None,
    };
    let who = closer(t.active_closer);
    let mut s = match t.kind {
        TeardownKind::ThreeWay => match (lang, who) {
            (Lang::En, Some(w)) => format!("three-way close, started by the {w}: FIN → FIN+ACK → ACK"),
            (Lang::En, None) => "three-way close: FIN → FIN+ACK → ACK".to_string(),
            (Lang::Zh, Some(w)) => format!("三次挥手,{w}主动关闭:FIN → FIN+ACK → ACK"),
            (Lang::Zh, None) => "三次挥手:FIN → FIN+ACK → ACK".to_string(),
        },
        TeardownKind::FourWay => {
            let mut s = match (lang, who) {
                (Lang::En, Some(w)) => format!("four-way close, started by the {w}: FIN → ACK → FIN → ACK"),
                (Lang::En, None) => "four-way close: FIN → ACK → FIN → ACK".to_string(),
                (Lang::Zh, Some(w)) => format!("四次挥手,{w}主动关闭:FIN → ACK → FIN → ACK"),
                (Lang::Zh, None) => "四次挥手:FIN → ACK → FIN → ACK".to_string(),
            };
            if let Some(d) = t.fin_ack_delay_ns {
                let dur = duration(d, lang);
                let delayed = d >= DELAYED_ACK_MIN_NS;
                s.push_str(&match (lang, delayed) {
                    (Lang::En, true) => format!("; the passive side's ACK of the FIN came {dur} later (delayed ACK)"),
                    (Lang::En, false) => format!("; the passive side acknowledged the FIN {dur} later, in a segment of its own"),
                    (Lang::Zh, true) => format!(";被动方对FIN的确认ACK晚了{dur}(延迟确认)"),
                    (Lang::Zh, false) => format!(";被动方在{dur}后单独确认了FIN"),
                });
            }
            s
        }
        TeardownKind::Simultaneous => match lang {
            Lang::En => "simultaneous close (both FINs crossed): each side sent its FIN before it received the other's".to_string(),
            Lang::Zh => "同时关闭(双方的FIN交叉):双方都在收到对方的FIN之前发出了自己的FIN".to_string(),
        },
        TeardownKind::Reset => match (lang, who) {
            (Lang::En, Some(w)) => format!("reset by the {w}"),
            (Lang::En, None) => "reset".to_string(),
            (Lang::Zh, Some(w)) => format!("{w}发送RST重置了连接"),
            (Lang::Zh, None) => "连接被RST重置".to_string(),
        },
        TeardownKind::Incomplete => match (lang, who) {
            (Lang::En, Some(w)) => format!("incomplete: only the {w} sent a FIN"),
            (Lang::En, None) => "incomplete: only one side sent a FIN".to_string(),
            (Lang::Zh, Some(w)) => format!("未完成:只有{w}发送了FIN"),
            (Lang::Zh, None) => "未完成:只有一方发送了FIN".to_string(),
        },
        TeardownKind::Open => match lang {
            Lang::En => "still open: no FIN or RST captured".to_string(),
            Lang::Zh => "连接仍未关闭:没有抓到FIN或RST".to_string(),
        },
    };
    if t.fin_retransmits > 0 {
        let n = t.fin_retransmits;
        s.push_str(&match lang {
            Lang::En if n == 1 => "; 1 FIN retransmission".to_string(),
            Lang::En => format!("; {n} FIN retransmissions"),
            Lang::Zh => format!(";FIN重传{n}次"),
        });
    }
    s
}

/// `… 1234 packets not shown …`.
pub(crate) fn elided_text(n: u64, lang: Lang) -> String {
    match lang {
        Lang::En if n == 1 => "… 1 packet not shown …".to_string(),
        Lang::En => format!("… {n} packets not shown …"),
        Lang::Zh => format!("… 省略了{n}个包 …"),
    }
}

/// Where the `… N packets not shown …` line goes: before `conn.packets[i]`, or at the end
/// when `i == conn.packets.len()`. `None` when nothing was elided.
///
/// The connection tracker keeps a long connection's start and its whole close, so the elided
/// packets sit just before the first stored FIN or RST when there is a numbering gap there;
/// otherwise at the widest gap between stored packets, or at the end (a transfer that never
/// closed).
pub(crate) fn elision_point(conn: &Connection) -> Option<usize> {
    if conn.elided == 0 {
        return None;
    }
    let gap = |i: usize| -> u64 {
        match (
            i.checked_sub(1).and_then(|j| conn.packets.get(j)),
            conn.packets.get(i),
        ) {
            (Some(a), Some(b)) => b.number.saturating_sub(a.number + 1),
            _ => 0,
        }
    };
    let first_close = conn
        .packets
        .iter()
        .position(|p| p.flags.fin() || p.flags.rst());
    if let Some(i) = first_close {
        if gap(i) > 0 {
            return Some(i);
        }
    }
    let widest = (1..conn.packets.len())
        .map(|i| (gap(i), i))
        .filter(|(g, _)| *g > 0)
        // Widest gap; the earliest one on a tie.
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    Some(widest.map_or(conn.packets.len(), |(_, i)| i))
}

/// `three-way close` / `三次挥手`.
pub fn kind_name(kind: TeardownKind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (TeardownKind::ThreeWay, Lang::En) => "three-way close",
        (TeardownKind::FourWay, Lang::En) => "four-way close",
        (TeardownKind::Simultaneous, Lang::En) => "simultaneous close",
        (TeardownKind::Reset, Lang::En) => "reset",
        (TeardownKind::Incomplete, Lang::En) => "incomplete",
        (TeardownKind::Open, Lang::En) => "open",
        (TeardownKind::ThreeWay, Lang::Zh) => "三次挥手",
        (TeardownKind::FourWay, Lang::Zh) => "四次挥手",
        (TeardownKind::Simultaneous, Lang::Zh) => "同时关闭",
        (TeardownKind::Reset, Lang::Zh) => "RST重置",
        (TeardownKind::Incomplete, Lang::Zh) => "未完成",
        (TeardownKind::Open, Lang::Zh) => "未关闭",
    }
}
