//! The numbered packet listing with one line of narration per packet, the verdict, both
//! endpoints' state timelines and the warnings — in English or in Chinese.
//!
//! All narration text lives in [`narrate`] (one arm per [`Role`], both languages side by
//! side), [`verdict`] (one arm per [`TeardownKind`](crate::teardown::TeardownKind); in
//! `words.rs` with the other words the ladder and the summary share) and [`explain`] (one arm per
//! [`Warning`]). The matches are exhaustive on purpose: a new variant must be given words
//! before the crate compiles again (smoltcp's `close()`).
//!
//! Read with: RFC 9293 §3.6 (closing cases 1–3), RFC 1122 §4.2.3.2 (delayed ACK),
//! RFC 2525 §2.17 (RST on close with unread data), socket(7) `SO_LINGER`.

pub use super::term::{duration, rel_time};
use super::term::{flags_text, packet_style, paint, Style};
pub(crate) use super::words::{
    elided_text, elision_point, state_after, told_at, DELAYED_ACK_MIN_NS,
};
pub use super::words::{kind_name, side_name, told_states, verdict};
use super::{Lang, TextOptions};
use crate::analysis::{Analysis, Connection, PacketInfo, Role, Side};
use crate::segment::Flags;
use crate::seq::SeqNum;
use crate::state::{StateSource, TcpState};
use crate::summary::Summary;
use crate::warning::Warning;
use std::io::{self, Write};

/// Everything [`narrate`] needs to know about one packet besides its [`Role`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The endpoint that sent the packet.
    pub from: Side,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number.
    pub ack: SeqNum,
    /// Payload length.
    pub len: u32,
    /// TCP flags.
    pub flags: Flags,
    /// States entered because of this packet, the sender's first.
    pub entered: Vec<(Side, TcpState)>,
    /// The sender's state once this packet was sent (for "stays in TIME_WAIT").
    pub sender_state: Option<TcpState>,
    /// For a FIN: ns since the sender's previous segment carrying data, if it sent any.
    pub since_own_data_ns: Option<i64>,
    /// For a FIN: whether the peer's FIN appears earlier in the capture.
    pub peer_fin_before: bool,
}

impl Context {
    /// The context of `conn.packets[i]`; `None` when `i` is out of range.
    pub fn of(conn: &Connection, i: usize) -> Option<Context> {
        let p = conn.packets.get(i)?;
        let earlier = conn.packets.get(..i).unwrap_or(&[]);
        let mut entered = Vec::new();
        for side in [p.from, p.from.peer()] {
            for st in told_at(&conn.states[side.idx()], p.number) {
                entered.push((side, st));
            }
        }
        let since_own_data_ns = if p.flags.fin() {
            earlier
                .iter()
                .rev()
                .find(|q| q.from == p.from && q.len > 0)
                .map(|q| p.ts_ns.saturating_sub(q.ts_ns))
        } else {
            None
        };
        let peer_fin_before = earlier.iter().any(|q| q.from != p.from && q.flags.fin());
        Some(Context {
            from: p.from,
            seq: p.seq,
            ack: p.ack,
            len: p.len,
            flags: p.flags,
            entered,
            sender_state: state_after(&conn.states[p.from.idx()], p.number),
            since_own_data_ns,
            peer_fin_before,
        })
    }
}

/// One line explaining what `role` means, followed by the state changes the packet caused.
///
/// The text of both languages for a role sits in the same match arm, so the two stay in step.
pub fn narrate(role: Role, ctx: &Context, lang: Lang) -> String {
    let x = side_name(ctx.from, lang);
    let y = side_name(ctx.from.peer(), lang);
    let en = lang == Lang::En;
    let len = ctx.len;
    let bytes = if len == 1 { "byte" } else { "bytes" };
    let data_gap = |zh: bool| match ctx.since_own_data_ns {
        Some(ns) if zh => format!("(距它最后一次发送数据{})", duration(ns, Lang::Zh)),
        Some(ns) => format!(", {} after its last data", duration(ns, Lang::En)),
        None => String::new(),
    };
    let text = match role {
        Role::Syn => {
            if en {
                format!("{x} opens the connection: SYN with its initial sequence number {}", ctx.seq)
            } else {
                format!("{x}发起SYN主动请求建立连接,seq为{}", ctx.seq)
            }
        }
        Role::SynAck => {
            if en {
                format!("{x} answers with SYN+ACK: it acknowledges the {y}'s SYN (ack = ISN+1) and sends its own SYN")
            } else {
                format!("{x}给{y}确认ACK(ack为{y}的seq+1),并同时也发起SYN同步")
            }
        }
        Role::HandshakeAck => {
            if en {
                format!("{x} acknowledges the {y}'s SYN: the three-way handshake is complete")
            } else {
                format!("{x}回复{y}的SYN确认,三次握手完成")
            }
        }
        Role::Data => {
            let push = ctx.flags.psh();
            match (en, push) {
                (true, true) => format!("{x} sends {len} {bytes} of data (PSH: hand it to the application now)"),
                (true, false) => format!("{x} sends {len} {bytes} of data"),
                (false, true) => format!("{x}发送{len}字节数据,因此为P标记(PSH)"),
                (false, false) => format!("{x}发送{len}字节数据"),
            }
        }
        Role::Ack => {
            if en {
                format!("{x} acknowledges the {y}'s data")
            } else {
                format!("{x}回复{y}数据的确认ACK")
            }
        }
        Role::AckDataNotFin => {
            if en {
                format!("{x}'s ACK covers the data only, not the FIN (the FIN had not arrived when it was sent)")
            } else {
                format!("{x}回复{y}数据的确认ACK(ack={}),只确认了数据,没有确认FIN(发出时还没收到{y}的FIN)", ctx.ack)
            }
        }
        Role::FinFirst => {
            if en {
                format!("{x}'s FIN{}: it has nothing more to send and starts the close (active close)", data_gap(false))
            } else {
                let after = if ctx.since_own_data_ns.is_some() { "发送完数据后" } else { "" };
                format!("{x}{after}发起FIN主动关闭{}", data_gap(true))
            }
        }
        Role::AckOfFirstFin { delay_ns } => {
            let d = duration(delay_ns, lang);
            match (en, delay_ns >= DELAYED_ACK_MIN_NS) {
                (true, true) => format!("{x}'s ACK of the FIN comes {d} after it: the delayed ACK ({x} had nothing to send, so its kernel waited in case the ACK could ride on data)"),
                (true, false) => format!("{x} acknowledges the {y}'s FIN at once ({d} later), in a segment of its own"),
                (false, true) => format!("{x}回复{y}的FIN确认ACK,比FIN晚了{d}:这就是延迟确认(delayed ACK),{x}没有数据要发,内核等着把ACK捎带在数据上"),
                (false, false) => format!("{x}立即({d}后)单独回复{y}的FIN确认ACK"),
            }
        }
        Role::DataAfterFin => {
            if en {
                format!("{x} still sends {len} {bytes} after the {y}'s FIN: the connection is half-closed (the {y} has finished sending but still receives)")
            } else {
                format!("{x}收到{y}的FIN之后仍在发送{len}字节数据:连接处于半关闭状态({y}不再发送,但仍在接收)")
            }
        }
        Role::FinWithAckOfFirst => {
            if en {
                format!("{x}'s FIN carries the ACK of the {y}'s FIN: FIN and ACK in one segment, so the close takes three segments")
            } else {
                format!("{x}发送FIN关闭连接,同时确认了{y}的FIN:合并FIN和ACK回复一个包,省掉一步,所以只有三次挥手")
            }
        }
        Role::FinSecond => {
            if en {
                format!("{x}'s FIN{}: now it too has nothing more to send; its ACK of the {y}'s FIN already went out on its own, so the close takes four segments", data_gap(false))
            } else {
                format!("{x}发起FIN关闭{}:它对{y}的FIN的确认ACK已经单独发出,所以是四次挥手", data_gap(true))
            }
        }
        Role::FinCrossed => match (en, ctx.peer_fin_before) {
            (true, false) => format!("{x}'s FIN{}: it has nothing more to send", data_gap(false)),
            (true, true) => format!("FINs crossed: the {x} sent its FIN before receiving the {y}'s (its ack does not cover the {y}'s FIN)"),
            (false, false) => format!("{x}发起了FIN,seq: {}", ctx.seq),
            (false, true) => format!("{x}也发起了FIN,seq: {}:它在收到{y}的FIN之前就发出了自己的FIN,双方的FIN交叉", ctx.seq),
        },
        Role::FinRetransmit => {
            if en {
                format!("{x} retransmits its FIN (no ACK for it had arrived in time)")
            } else {
                format!("{x}重传FIN(没有及时收到对它的确认)")
            }
        }
        Role::AckOfCrossedFin => {
            if en {
                format!("{x} acknowledges the {y}'s FIN")
            } else {
                format!("{x}发送确认ACK,确认{y}的FIN,ack: {}", ctx.ack)
            }
        }
        Role::FinalAck => {
            if en {
                format!("final ACK: {x} acknowledges the {y}'s FIN")
            } else {
                format!("{x}发送{y}FIN的确认,由此,整个连接关闭")
            }
        }
        Role::AckAfterClose => {
            if en {
                format!("{x} sends one more ACK after the close (a repeat; it changes nothing)")
            } else {
                format!("{x}在连接关闭之后又发了一个ACK(重复的确认,不改变状态)")
            }
        }
        Role::Rst => {
            if en {
                format!("{x} resets the connection (SO_LINGER 0 or unread data)")
            } else {
                format!("{x}发送RST重置连接(SO_LINGER为0,或者关闭时还有未读的数据)")
            }
        }
        Role::LateRst => {
            if en {
                format!("{x} sends an RST after both FINs (a late RST: its socket was already gone; the kind stays as it was)")
            } else {
                format!("{x}在双方的FIN之后又发送了RST(迟到的RST:它的socket已经没了,不改变挥手类型)")
            }
        }
    };
    let stays = matches!(
        role,
        Role::FinalAck | Role::AckOfCrossedFin | Role::AckAfterClose
    );
    let clause = states_clause(ctx, stays, lang);
    if clause.is_empty() {
        text
    } else {
        match lang {
            Lang::En => format!("{text} — {clause}"),
            Lang::Zh => format!("{text},{clause}"),
        }
    }
}

/// "server enters FIN_WAIT_1, client enters CLOSE_WAIT" / "双方进入CLOSING状态".
fn states_clause(ctx: &Context, stays: bool, lang: Lang) -> String {
    let per_side = |side: Side| -> Vec<TcpState> {
        ctx.entered
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, st)| *st)
            .collect()
    };
    let sender = per_side(ctx.from);
    let receiver = per_side(ctx.from.peer());
    let mut parts = Vec::new();
    if !sender.is_empty() && sender == receiver {
        parts.push(match lang {
            Lang::En => format!("both enter {}", chain(&sender)),
            Lang::Zh => format!("双方进入{}状态", chain(&sender)),
        });
    } else {
        for (side, states) in [(ctx.from, &sender), (ctx.from.peer(), &receiver)] {
            if states.is_empty() {
                continue;
            }
            let who = side_name(side, lang);
            parts.push(match lang {
                Lang::En => format!("{who} enters {}", chain(states)),
                Lang::Zh => format!("{who}进入{}状态", chain(states)),
            });
        }
    }
    if stays && sender.is_empty() && ctx.sender_state == Some(TcpState::TimeWait) {
        let who = side_name(ctx.from, lang);
        parts.push(match lang {
            Lang::En => format!("{who} stays in TIME_WAIT (2×MSL)"),
            Lang::Zh => format!("{who}保持TIME_WAIT状态(等待2×MSL)"),
        });
    }
    parts.join(match lang {
        Lang::En => ", ",
        Lang::Zh => ",",
    })
}

fn chain(states: &[TcpState]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Why one RST most likely happened, with its evidence, in words.
pub fn rst_text(r: &crate::rst::RstInfo, lang: Lang) -> String {
    use crate::rst::RstCause::*;
    let who = side_name(r.from, lang);
    let peer = side_name(r.from.peer(), lang);
    match (r.cause, lang) {
        (AfterFins, Lang::En) => format!("{who}'s RST came after both FINs: harmless, the connection was already over"),
        (AfterFins, Lang::Zh) => format!("{who}的RST在双方FIN之后:无害,连接已经结束"),
        (UnreadData { bytes }, Lang::En) => format!("{who} received {bytes} bytes and sent nothing before resetting: closing with unread data sends RST instead of FIN (RFC 2525 §2.17)"),
        (UnreadData { bytes }, Lang::Zh) => format!("{who}收到{bytes}字节却从未发送数据就重置:带着未读数据关闭时内核发RST而不是FIN(RFC 2525 §2.17)"),
        (Abort, Lang::En) => format!("{who} reset without a FIN while nothing it received was pending: an abortive close (SO_LINGER 0 or abort)"),
        (Abort, Lang::Zh) => format!("{who}未发FIN直接重置,且没有待处理的已收数据:强制关闭(SO_LINGER 0 或 abort)"),
        (NoSocket { answers, syn: true }, Lang::En) => format!("answers {peer}'s SYN (packet {answers}): nothing listens on that port"),
        (NoSocket { answers, syn: true }, Lang::Zh) => format!("回应{peer}的SYN(第{answers}个包):该端口没有监听"),
        (NoSocket { answers, syn: false }, Lang::En) => format!("answers {peer}'s segment {answers}, which came after {who} had closed: no socket was left for it"),
        (NoSocket { answers, syn: false }, Lang::Zh) => format!("回应{peer}的第{answers}个包,它到达时{who}已经关闭:没有套接字接收它"),
        (Middlebox { ttl, ip_id }, Lang::En) => {
            let mut why = Vec::new();
            if let Some((t, usual)) = ttl {
                why.push(format!("its TTL is {t} where {who}'s other segments had {usual}"));
            }
            if let Some((id, last)) = ip_id {
                why.push(format!("its IP id {id} does not follow {who}'s sequence (last {last})"));
            }
            format!("{}: not sent by {who}'s host, most likely a middlebox (firewall, IPS, load balancer) forged it", why.join(" and "))
        }
        (Middlebox { ttl, ip_id }, Lang::Zh) => {
            let mut why = Vec::new();
            if let Some((t, usual)) = ttl {
                why.push(format!("TTL为{t},而{who}的其他报文为{usual}"));
            }
            if let Some((id, last)) = ip_id {
                why.push(format!("IP id {id}不接续{who}的序列(上一个为{last})"));
            }
            format!("{}:不是{who}的主机发出的,很可能是中间设备(防火墙、IPS、负载均衡)伪造的", why.join(",且"))
        }
        (OutOfWindow { expected, challenge_ack: Some(n) }, Lang::En) => format!("its sequence number is not the {} {peer} expected; {peer} answered with a challenge ACK (packet {n}, RFC 5961 §3.2)", expected.map_or("one".into(), |e| e.to_string())),
        (OutOfWindow { expected, challenge_ack: Some(n) }, Lang::Zh) => format!("序号不是{peer}期望的{};{peer}回了挑战ACK(第{n}个包,RFC 5961 §3.2)", expected.map_or(String::new(), |e| e.to_string())),
        (OutOfWindow { expected, challenge_ack: None }, Lang::En) => format!("its sequence number is not the {} {peer} expected: out of window, the receiver should ignore it (RFC 5961 §3)", expected.map_or("one".into(), |e| e.to_string())),
        (OutOfWindow { expected, challenge_ack: None }, Lang::Zh) => format!("序号不是{peer}期望的{}:窗口外,接收方应忽略它(RFC 5961 §3)", expected.map_or(String::new(), |e| e.to_string())),
    }
}

/// The sending kernel's own reason for an RST (live runs), in words.
pub fn kernel_reason_text(k: crate::rst::KernelReason, lang: Lang) -> String {
    use crate::rst::KernelReason::*;
    match (k, lang) {
        (Reported { .. }, Lang::En) => format!("kernel's reason: {} (tcp:tcp_send_reset)", k.text()),
        (Reported { .. }, Lang::Zh) => format!("内核给出的原因:{}(tcp:tcp_send_reset)", k.text()),
        (NotReported, Lang::En) => "kernel's reason: not reported by this kernel (its tcp:tcp_send_reset has no reason field before Linux 6.10)".to_owned(),
        (NotReported, Lang::Zh) => "内核给出的原因:此内核不报告(6.10之前的tcp:tcp_send_reset没有reason字段)".to_owned(),
        (NotRecorded, Lang::En) => "kernel's reason: not recorded (no tcp:tcp_send_reset event matched this RST)".to_owned(),
        (NotRecorded, Lang::Zh) => "内核给出的原因:未记录(没有与此RST对应的tcp:tcp_send_reset事件)".to_owned(),
    }
}

/// A one-line explanation of a warning (the code itself is printed beside it).
pub fn explain(w: &Warning, lang: Lang) -> String {
    let en = lang == Lang::En;
    match w {
        Warning::RolesGuessed => if en {
            "no SYN captured: the endpoint with the lower port was taken as the server"
        } else {
            "没有抓到SYN:端口号较小的一方被当作服务端"
        }
        .to_string(),
        Warning::HandshakeNotCaptured => if en {
            "the three-way handshake is not in the capture (it started before the capture)"
        } else {
            "抓包中没有三次握手(连接在开始抓包之前就建立了)"
        }
        .to_string(),
        Warning::FinInferred(s) => {
            let x = side_name(*s, lang);
            let y = side_name(s.peer(), lang);
            if en {
                format!("the {x}'s FIN was not captured, but the {y}'s ACK shows it was sent")
            } else {
                format!("没有抓到{x}的FIN,但{y}的ACK表明它已经发出")
            }
        }
        Warning::AckForUncapturedData(s) => {
            let x = side_name(*s, lang);
            let y = side_name(s.peer(), lang);
            if en {
                format!("the {y} acknowledged data from the {x} that the capture does not contain")
            } else {
                format!("{y}确认了{x}的数据,但抓包中没有这些数据")
            }
        }
        Warning::FinalAckNotCaptured => if en {
            "the ACK of the last FIN is not in the capture"
        } else {
            "抓包中没有对最后一个FIN的确认ACK"
        }
        .to_string(),
        Warning::LateRst => if en {
            "an RST came after both FINs; it does not change the kind"
        } else {
            "双方的FIN之后又出现了RST,不改变挥手类型"
        }
        .to_string(),
        Warning::DamagedPacket {
            packet,
            layer,
            repeats,
            ..
        } => match (en, *repeats) {
            (true, 0) => {
                format!("packet {packet} could not be decoded at the {layer} layer and was skipped")
            }
            (true, n) => format!(
                "packet {packet} and {n} more could not be decoded at the {layer} layer (the same way) and were skipped"
            ),
            (false, 0) => format!("第{packet}个包在{layer}层无法解码,已跳过"),
            (false, n) => format!("第{packet}个包及另外{n}个包在{layer}层以同样方式无法解码,已跳过"),
        },
        Warning::MoreDamage { packets, first } => {
            if en {
                format!("{packets} more packets from packet {first} on could not be decoded in other ways and were skipped")
            } else {
                format!("从第{first}个包起另有{packets}个包以其他方式无法解码,已跳过")
            }
        }
        Warning::TruncatedCapture { offset } => {
            if en {
                format!("the file ends in the middle of a record at byte {offset}; everything before it was read")
            } else {
                format!("文件在第{offset}字节处的记录中间截断,之前的内容都已读取")
            }
        }
        Warning::CaptureDrops(n) => {
            if en {
                format!("the kernel dropped {n} packets during the capture")
            } else {
                format!("抓包期间内核丢弃了{n}个包")
            }
        }
        Warning::PacketsElided(n) => {
            if en {
                format!("{n} packets in the middle of a long transfer are not shown")
            } else {
                format!("长传输中间的{n}个包没有显示")
            }
        }
        Warning::FragmentsDropped {
            timed_out,
            overlapping,
            evicted,
        } => {
            if en {
                format!("IP fragments that could not be reassembled: {timed_out} datagrams incomplete, {overlapping} with overlapping IPv6 fragments (discarded, RFC 5722), {evicted} over the memory bounds")
            } else {
                format!("无法重组的IP分片:{timed_out}个数据报不完整,{overlapping}个含重叠的IPv6分片(按RFC 5722丢弃),{evicted}个超出内存上限")
            }
        }
    }
}

/// `client: SYN_SENT(1) → ESTABLISHED(3) → …`; kernel-recorded states are marked `k`, a
/// capture state the kernel confirmed `+k`.
pub fn timeline_line(conn: &Connection, side: Side, lang: Lang) -> String {
    let tl = &conn.states[side.idx()];
    let body = if tl.changes().is_empty() {
        match lang {
            Lang::En => "(no state the capture can show)".to_string(),
            Lang::Zh => "(抓包无法显示任何状态)".to_string(),
        }
    } else {
        tl.folded()
            .iter()
            .map(|(c, confirmed)| match (c.source, confirmed) {
                (StateSource::Capture, false) => format!("{}({})", c.state, c.packet),
                (StateSource::Capture, true) => format!("{}({}+k)", c.state, c.packet),
                (StateSource::Kernel, _) => format!("{}({}k)", c.state, c.packet),
            })
            .collect::<Vec<_>>()
            .join(" → ")
    };
    match lang {
        Lang::En => format!("{}: {body}", side_name(side, lang)),
        Lang::Zh => format!("{}:{body}", side_name(side, lang)),
    }
}

/// The packet's fields in tcpdump's words: `[F.]  seq 4195434205, ack 3255498568, len 0`.
pub fn packet_fields(p: &PacketInfo) -> String {
    let mut parts = Vec::new();
    // tcpdump prints seq for data and for SYN/FIN/RST, not for a pure ACK.
    if p.len > 0 {
        parts.push(format!("seq {}:{}", p.seq, p.seq.plus(p.len)));
    } else if p.flags.syn() || p.flags.fin() || p.flags.rst() {
        parts.push(format!("seq {}", p.seq));
    }
    if p.flags.ack() {
        parts.push(format!("ack {}", p.ack));
    }
    parts.push(format!("len {}", p.len));
    format!("{:<6} {}", flags_text(p.flags), parts.join(", "))
}

/// The header, the numbered packets each followed by its narration, the verdict, the state
/// timelines and the warnings of one connection. `index` is the connection's position in
/// [`Analysis::connections`] (0-based); it is printed 1-based. With `opts.ladder` the ladder
/// diagram follows.
pub fn render_connection(
    conn: &Connection,
    index: usize,
    opts: &TextOptions,
    w: &mut dyn Write,
) -> io::Result<()> {
    let lang = opts.lang;
    let number = index.saturating_add(1);
    let kind = kind_name(conn.teardown.kind, lang);
    let header = match lang {
        Lang::En => format!(
            "connection {number}: client {} → server {} ({kind}, {} packet{})",
            conn.client,
            conn.server,
            conn.packet_count,
            if conn.packet_count == 1 { "" } else { "s" }
        ),
        Lang::Zh => format!(
            "连接 {number}:客户端 {} → 服务端 {}({kind},共{}个包)",
            conn.client, conn.server, conn.packet_count
        ),
    };
    writeln!(w, "{}", paint(&header, Style::Bold, opts.color))?;
    if !conn.encap.is_empty() {
        let path: Vec<String> = conn.encap.iter().map(ToString::to_string).collect();
        match lang {
            Lang::En => writeln!(w, "  inside: {}", path.join(" / "))?,
            Lang::Zh => writeln!(w, "  封装:{}", path.join(" / "))?,
        }
    }

    let num_w = conn
        .packets
        .iter()
        .map(|p| p.number.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    let time_w = conn
        .packets
        .iter()
        .map(|p| rel_time(p.ts_ns.saturating_sub(conn.file_start_ns)).len())
        .max()
        .unwrap_or(8);
    let indent = " ".repeat(2 + num_w + 2 + time_w + 2);
    let elide_at = elision_point(conn);
    for (i, p) in conn.packets.iter().enumerate() {
        if elide_at == Some(i) {
            writeln!(w, "{indent}{}", elided_text(conn.elided, lang))?;
        }
        let (src, dst) = (conn.addr(p.from), conn.addr(p.from.peer()));
        let line = format!(
            "  {:>num_w$}  {:>time_w$}  {src} > {dst}  {}",
            p.number,
            rel_time(p.ts_ns.saturating_sub(conn.file_start_ns)),
            packet_fields(p),
        );
        let said = Context::of(conn, i)
            .map(|ctx| narrate(p.role, &ctx, lang))
            .unwrap_or_default();
        match packet_style(p.flags) {
            Some(style) => {
                writeln!(w, "{}", paint(&line, style, opts.color))?;
                writeln!(w, "{indent}{}", paint(&said, style, opts.color))?;
            }
            None => {
                writeln!(w, "{line}")?;
                writeln!(w, "{indent}{said}")?;
            }
        }
    }
    if elide_at == Some(conn.packets.len()) {
        writeln!(w, "{indent}{}", elided_text(conn.elided, lang))?;
    }

    let (verdict_label, states_label, warnings_label) = match lang {
        Lang::En => ("verdict: ", "states:", "warnings:"),
        Lang::Zh => ("结论:", "状态:", "警告:"),
    };
    let v = format!("{verdict_label}{}", verdict(conn, lang));
    writeln!(w, "  {}", paint(&v, Style::Bold, opts.color))?;
    writeln!(w, "  {states_label}")?;
    for side in [Side::Client, Side::Server] {
        writeln!(w, "    {}", timeline_line(conn, side, lang))?;
    }
    for r in &conn.rst {
        let label = match lang {
            Lang::En => "rst cause:",
            Lang::Zh => "RST原因:",
        };
        writeln!(
            w,
            "  {label} {} ({}) — {}",
            r.cause.code(),
            r.packet,
            rst_text(r, lang)
        )?;
        if let Some(k) = r.kernel {
            writeln!(w, "    {}", kernel_reason_text(k, lang))?;
        }
    }
    if !conn.warnings.is_empty() {
        writeln!(w, "  {warnings_label}")?;
        for warn in &conn.warnings {
            let code = paint(&warn.to_string(), Style::Magenta, opts.color);
            writeln!(w, "    {code}: {}", explain(warn, lang))?;
        }
    }
    if opts.ladder {
        writeln!(w)?;
        super::ladder::render(conn, opts, w)?;
    }
    Ok(())
}

/// Every connection of an analysis (a blank line between them), the file-level warnings and,
/// when there is more than one connection, the summary table.
pub fn render(analysis: &Analysis, opts: &TextOptions, w: &mut dyn Write) -> io::Result<()> {
    for (i, conn) in analysis.connections.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        render_connection(conn, i, opts, w)?;
    }
    if analysis.connections.is_empty() {
        writeln!(
            w,
            "{}",
            match opts.lang {
                Lang::En => "no TCP connections",
                Lang::Zh => "没有TCP连接",
            }
        )?;
    }
    if !analysis.file.warnings.is_empty() {
        writeln!(w)?;
        writeln!(
            w,
            "{}",
            match opts.lang {
                Lang::En => "file warnings:",
                Lang::Zh => "文件警告:",
            }
        )?;
        for warn in &analysis.file.warnings {
            let code = paint(&warn.to_string(), Style::Magenta, opts.color);
            writeln!(w, "  {code}: {}", explain(warn, opts.lang))?;
        }
    }
    if analysis.connections.len() > 1 {
        let mut summary = Summary::default();
        for c in &analysis.connections {
            summary.add(c);
        }
        writeln!(w)?;
        super::summary::render(&summary, opts, w)?;
    }
    Ok(())
}

/// Hand-built connections for the renderers' unit tests: the seed's three captures as the
/// classifier describes them (roles, states, verdict), independent of the readers.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::analysis::{Connection, PacketInfo, Role, Side};
    use crate::segment::Flags;
    use crate::seq::SeqNum;
    use crate::state::{TcpState, Timeline};
    use crate::teardown::{Closer, Teardown, TeardownKind};
    use crate::warning::Warning;

    /// Builds a [`Connection`] packet by packet; times are µs after `start_ns`.
    pub(crate) struct Builder {
        conn: Connection,
    }

    fn flags(s: &str) -> Flags {
        let mut f = 0;
        for c in s.chars() {
            f |= match c {
                'S' => Flags::SYN,
                'F' => Flags::FIN,
                'P' => Flags::PSH,
                'R' => Flags::RST,
                '.' => Flags::ACK,
                other => panic!("test fixture: unknown flag {other}"),
            };
        }
        Flags(f)
    }

    impl Builder {
        pub(crate) fn new(client: &str, server: &str, kind: TeardownKind) -> Builder {
            Builder {
                conn: Connection {
                    client: client.parse().expect("fixture address"),
                    server: server.parse().expect("fixture address"),
                    teardown: Teardown {
                        kind,
                        active_closer: None,
                        final_ack: true,
                        fin_retransmits: 0,
                        fin_ack_delay_ns: None,
                        close_duration_ns: None,
                    },
                    teardown_packets: Vec::new(),
                    states: [Timeline::default(), Timeline::default()],
                    warnings: Vec::new(),
                    packets: Vec::new(),
                    elided: 0,
                    packet_count: 0,
                    first_packet: 1,
                    file_start_ns: 1_000_000_000_000,
                    encap: Vec::new(),
                    zeek: None,
                    bytes: [0; 2],
                    rst: Vec::new(),
                },
            }
        }

        /// `pkt(number, µs, from, "F.", seq, ack, len, role)`.
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn pkt(
            mut self,
            number: u64,
            us: i64,
            from: Side,
            f: &str,
            seq: u32,
            ack: u32,
            len: u32,
            role: Role,
        ) -> Builder {
            let flags = flags(f);
            if self.conn.packets.is_empty() {
                self.conn.first_packet = number;
            }
            if flags.fin() || flags.rst() || !self.conn.teardown_packets.is_empty() {
                self.conn.teardown_packets.push(number);
            }
            self.conn.packets.push(PacketInfo {
                number,
                ts_ns: self.conn.file_start_ns + us * 1000,
                from,
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags,
                len,
                window: 100,
                fingerprint: number,
                role,
            });
            self.conn.packet_count += 1;
            self
        }

        pub(crate) fn state(mut self, side: Side, packet: u64, st: TcpState) -> Builder {
            self.conn.states[side.idx()].transition(packet, st);
            self
        }

        pub(crate) fn closer(mut self, c: Closer) -> Builder {
            self.conn.teardown.active_closer = Some(c);
            self
        }

        pub(crate) fn warn(mut self, w: Warning) -> Builder {
            self.conn.warnings.push(w);
            self
        }

        pub(crate) fn elided(mut self, n: u64) -> Builder {
            self.conn.elided = n;
            self.conn.packet_count += n;
            self
        }

        pub(crate) fn build(self) -> Connection {
            self.conn
        }
    }

    use Side::{Client as C, Server as S};
    use TcpState::*;

    /// tests/data/seed/three-way-close.txt.
    pub(crate) fn three_way() -> Connection {
        let mut b = Builder::new(
            "172.16.196.142:41334",
            "172.16.196.145:60000",
            TeardownKind::ThreeWay,
        )
        .closer(Closer::Server)
        .pkt(1, 0, C, "S", 3255498564, 0, 0, Role::Syn)
        .pkt(2, 28, S, "S.", 4195434198, 3255498565, 0, Role::SynAck)
        .pkt(
            3,
            264,
            C,
            ".",
            3255498565,
            4195434199,
            0,
            Role::HandshakeAck,
        )
        .pkt(4, 308, C, "P.", 3255498565, 4195434199, 3, Role::Data)
        .pkt(5, 318, S, ".", 4195434199, 3255498568, 0, Role::Ack)
        .pkt(6, 542, S, "P.", 4195434199, 3255498568, 6, Role::Data)
        .pkt(7, 582, S, "F.", 4195434205, 3255498568, 0, Role::FinFirst)
        .pkt(
            8,
            683,
            C,
            ".",
            3255498568,
            4195434205,
            0,
            Role::AckDataNotFin,
        )
        .pkt(
            9,
            764,
            C,
            "F.",
            3255498568,
            4195434206,
            0,
            Role::FinWithAckOfFirst,
        )
        .pkt(10, 777, S, ".", 4195434206, 3255498569, 0, Role::FinalAck)
        .state(C, 1, SynSent)
        .state(S, 1, SynReceived)
        .state(C, 2, Established)
        .state(S, 3, Established)
        .state(S, 7, FinWait1)
        .state(C, 7, CloseWait)
        .state(C, 9, LastAck)
        .state(S, 9, FinWait2)
        .state(S, 9, TimeWait)
        .state(C, 10, Closed)
        .build();
        b.teardown.close_duration_ns = Some(195_000);
        b
    }

    /// tests/data/seed/four-way-close.txt.
    pub(crate) fn four_way() -> Connection {
        let mut b = Builder::new(
            "172.16.196.142:41424",
            "172.16.196.145:60000",
            TeardownKind::FourWay,
        )
        .closer(Closer::Client)
        .pkt(1, 0, C, "S", 3935290883, 0, 0, Role::Syn)
        .pkt(2, 43, S, "S.", 3178165011, 3935290884, 0, Role::SynAck)
        .pkt(
            3,
            265,
            C,
            ".",
            3935290884,
            3178165012,
            0,
            Role::HandshakeAck,
        )
        .pkt(4, 308, C, "P.", 3935290884, 3178165012, 3, Role::Data)
        .pkt(5, 332, S, ".", 3178165012, 3935290887, 0, Role::Ack)
        .pkt(6, 518, S, "P.", 3178165012, 3935290887, 6, Role::Data)
        .pkt(7, 637, C, ".", 3935290887, 3178165018, 0, Role::Ack)
        .pkt(8, 755, C, "F.", 3935290887, 3178165018, 0, Role::FinFirst)
        .pkt(
            9,
            40415,
            S,
            ".",
            3178165018,
            3935290888,
            0,
            Role::AckOfFirstFin {
                delay_ns: 39_660_000,
            },
        )
        .pkt(
            10,
            100786,
            S,
            "F.",
            3178165018,
            3935290888,
            0,
            Role::FinSecond,
        )
        .pkt(
            11,
            101015,
            C,
            ".",
            3935290888,
            3178165019,
            0,
            Role::FinalAck,
        )
        .state(C, 1, SynSent)
        .state(S, 1, SynReceived)
        .state(C, 2, Established)
        .state(S, 3, Established)
        .state(C, 8, FinWait1)
        .state(S, 8, CloseWait)
        .state(C, 9, FinWait2)
        .state(S, 10, LastAck)
        .state(C, 10, TimeWait)
        .state(S, 11, Closed)
        .build();
        b.teardown.fin_ack_delay_ns = Some(39_660_000);
        b.teardown.close_duration_ns = Some(100_260_000);
        b
    }

    /// tests/data/seed/simultaneous-close.txt (no handshake: roles guessed by port).
    pub(crate) fn simultaneous() -> Connection {
        Builder::new(
            "10.25.137.230:46556",
            "10.29.64.142:443",
            TeardownKind::Simultaneous,
        )
        .closer(Closer::Both)
        .warn(Warning::RolesGuessed)
        .warn(Warning::HandshakeNotCaptured)
        .pkt(1, 0, S, "F.", 3633446994, 1764274713, 0, Role::FinCrossed)
        .pkt(2, 869, C, "F.", 1764274713, 3633446994, 0, Role::FinCrossed)
        .pkt(
            3,
            891,
            S,
            ".",
            3633446995,
            1764274714,
            0,
            Role::AckOfCrossedFin,
        )
        .pkt(4, 1179, C, ".", 1764274714, 3633446995, 0, Role::FinalAck)
        // As the classifier ties them: the client's CLOSING is caused by the server's FIN
        // (packet 1), though the client entered it after its own FIN (packet 2).
        .state(S, 1, Established)
        .state(C, 1, Established)
        .state(S, 1, FinWait1)
        .state(C, 2, FinWait1)
        .state(C, 1, Closing)
        .state(S, 2, Closing)
        .state(C, 3, TimeWait)
        .state(S, 4, TimeWait)
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{self, Builder};
    use super::*;
    use crate::teardown::{Closer, TeardownKind};

    /// Every role, listed through an exhaustive match so a new variant fails to compile here.
    fn all_roles() -> Vec<Role> {
        let roles = vec![
            Role::Syn,
            Role::SynAck,
            Role::HandshakeAck,
            Role::Data,
            Role::Ack,
            Role::AckDataNotFin,
            Role::FinFirst,
            Role::AckOfFirstFin {
                delay_ns: 40_200_000,
            },
            Role::AckOfFirstFin { delay_ns: 60_000 },
            Role::DataAfterFin,
            Role::FinWithAckOfFirst,
            Role::FinSecond,
            Role::FinCrossed,
            Role::FinRetransmit,
            Role::AckOfCrossedFin,
            Role::FinalAck,
            Role::AckAfterClose,
            Role::Rst,
            Role::LateRst,
        ];
        for r in &roles {
            match r {
                Role::Syn
                | Role::SynAck
                | Role::HandshakeAck
                | Role::Data
                | Role::Ack
                | Role::AckDataNotFin
                | Role::FinFirst
                | Role::AckOfFirstFin { .. }
                | Role::DataAfterFin
                | Role::FinWithAckOfFirst
                | Role::FinSecond
                | Role::FinCrossed
                | Role::FinRetransmit
                | Role::AckOfCrossedFin
                | Role::FinalAck
                | Role::AckAfterClose
                | Role::Rst
                | Role::LateRst => {}
            }
        }
        roles
    }

    fn ctx(from: Side) -> Context {
        Context {
            from,
            seq: SeqNum(1000),
            ack: SeqNum(2000),
            len: 6,
            flags: Flags(Flags::ACK | Flags::PSH),
            entered: Vec::new(),
            sender_state: None,
            since_own_data_ns: None,
            peer_fin_before: false,
        }
    }

    fn listing(conn: &Connection, lang: Lang) -> String {
        let mut out = Vec::new();
        let opts = TextOptions {
            lang,
            ..TextOptions::default()
        };
        render_connection(conn, 0, &opts, &mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("renderer writes UTF-8")
    }

    #[test]
    fn narrate_every_role_names_its_sender_in_both_languages() {
        for role in all_roles() {
            for from in [Side::Client, Side::Server] {
                for peer_fin_before in [false, true] {
                    let c = Context {
                        peer_fin_before,
                        ..ctx(from)
                    };
                    let en = narrate(role, &c, Lang::En);
                    let zh = narrate(role, &c, Lang::Zh);
                    assert!(!en.is_empty() && !zh.is_empty(), "{role:?}");
                    assert!(en.contains(from.as_str()), "{role:?} en: {en}");
                    assert!(zh.contains(side_name(from, Lang::Zh)), "{role:?} zh: {zh}");
                    // English words must not leak into the Chinese text, nor the reverse.
                    assert!(!zh.contains("the ") && !zh.contains("client"), "{zh}");
                    assert!(!en.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)));
                    assert!(!en.contains('\n') && !zh.contains('\n'));
                }
            }
        }
    }

    #[test]
    fn narrate_distinguishes_the_roles() {
        let c = ctx(Side::Server);
        let mut seen = std::collections::BTreeSet::new();
        for role in all_roles() {
            assert!(
                seen.insert(narrate(role, &c, Lang::En)),
                "{role:?} reads like another role"
            );
        }
    }

    #[test]
    fn narrate_appends_the_states_the_packet_caused() {
        let c = Context {
            entered: vec![
                (Side::Server, TcpState::FinWait1),
                (Side::Client, TcpState::CloseWait),
            ],
            ..ctx(Side::Server)
        };
        assert_eq!(
            narrate(Role::FinFirst, &c, Lang::En),
            "server's FIN: it has nothing more to send and starts the close (active close) \
             — server enters FIN_WAIT_1, client enters CLOSE_WAIT"
        );
        assert_eq!(
            narrate(Role::FinFirst, &c, Lang::Zh),
            "服务端发起FIN主动关闭,服务端进入FIN_WAIT_1状态,客户端进入CLOSE_WAIT状态"
        );
    }

    #[test]
    fn narrate_both_enter_closing_and_stays_in_time_wait() {
        let c = Context {
            entered: vec![
                (Side::Client, TcpState::Closing),
                (Side::Server, TcpState::Closing),
            ],
            peer_fin_before: true,
            ..ctx(Side::Client)
        };
        assert!(narrate(Role::FinCrossed, &c, Lang::En).ends_with(" — both enter CLOSING"));
        assert!(narrate(Role::FinCrossed, &c, Lang::Zh).ends_with(",双方进入CLOSING状态"));
        let c = Context {
            entered: vec![(Side::Server, TcpState::Closed)],
            sender_state: Some(TcpState::TimeWait),
            ..ctx(Side::Client)
        };
        assert_eq!(
            narrate(Role::FinalAck, &c, Lang::En),
            "final ACK: client acknowledges the server's FIN — server enters CLOSED, \
             client stays in TIME_WAIT (2×MSL)"
        );
    }

    #[test]
    fn narrate_delayed_ack_only_when_late() {
        let c = ctx(Side::Server);
        let late = narrate(
            Role::AckOfFirstFin {
                delay_ns: 39_660_000,
            },
            &c,
            Lang::En,
        );
        assert!(
            late.contains("39.7 ms") && late.contains("delayed ACK"),
            "{late}"
        );
        let quick = narrate(Role::AckOfFirstFin { delay_ns: 60_000 }, &c, Lang::En);
        assert!(
            quick.contains("60 µs") && !quick.contains("delayed"),
            "{quick}"
        );
    }

    #[test]
    fn context_reads_states_and_data_gap_from_the_connection() {
        let conn = fixtures::four_way();
        let fin2 = Context::of(&conn, 9).expect("packet 10 exists");
        assert_eq!(fin2.since_own_data_ns, Some(100_268_000));
        assert_eq!(
            fin2.entered,
            vec![
                (Side::Server, TcpState::LastAck),
                (Side::Client, TcpState::TimeWait)
            ]
        );
        assert!(fin2.peer_fin_before);
        let last = Context::of(&conn, 10).expect("packet 11 exists");
        assert_eq!(last.sender_state, Some(TcpState::TimeWait));
        assert!(Context::of(&conn, 11).is_none());
    }

    #[test]
    fn states_are_told_in_file_order() {
        let conn = fixtures::simultaneous();
        let at = |i: usize| Context::of(&conn, i).expect("packet exists").entered;
        // Packet 1: only the server's FIN_WAIT_1; the starting ESTABLISHED is not news.
        assert_eq!(at(0), vec![(Side::Server, TcpState::FinWait1)]);
        assert_eq!(
            at(1),
            vec![
                (Side::Client, TcpState::FinWait1),
                (Side::Client, TcpState::Closing),
                (Side::Server, TcpState::Closing),
            ]
        );
        assert_eq!(
            narrate(Role::FinCrossed, &Context::of(&conn, 1).expect("packet 2"), Lang::En),
            "FINs crossed: the client sent its FIN before receiving the server's (its ack does \
             not cover the server's FIN) — client enters FIN_WAIT_1 → CLOSING, server enters CLOSING"
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(rel_time(0), "0.000000");
        assert_eq!(rel_time(582_000), "0.000582");
        assert_eq!(rel_time(100_786_499), "0.100786");
        assert_eq!(rel_time(-1_500_000_000), "-1.500000");
        assert_eq!(duration(40_000, Lang::En), "40 µs");
        assert_eq!(duration(39_660_000, Lang::En), "39.7 ms");
        assert_eq!(duration(100_268_000, Lang::Zh), "100.3毫秒");
        assert_eq!(duration(1_250_000_000, Lang::En), "1.250 s");
    }

    #[test]
    fn three_way_listing_en() {
        insta::assert_snapshot!(listing(&fixtures::three_way(), Lang::En), @r#"
        connection 1: client 172.16.196.142:41334 → server 172.16.196.145:60000 (three-way close, 10 packets)
            1  0.000000  172.16.196.142:41334 > 172.16.196.145:60000  [S]    seq 3255498564, len 0
                         client opens the connection: SYN with its initial sequence number 3255498564 — client enters SYN_SENT, server enters SYN_RECEIVED
            2  0.000028  172.16.196.145:60000 > 172.16.196.142:41334  [S.]   seq 4195434198, ack 3255498565, len 0
                         server answers with SYN+ACK: it acknowledges the client's SYN (ack = ISN+1) and sends its own SYN — client enters ESTABLISHED
            3  0.000264  172.16.196.142:41334 > 172.16.196.145:60000  [.]    ack 4195434199, len 0
                         client acknowledges the server's SYN: the three-way handshake is complete — server enters ESTABLISHED
            4  0.000308  172.16.196.142:41334 > 172.16.196.145:60000  [P.]   seq 3255498565:3255498568, ack 4195434199, len 3
                         client sends 3 bytes of data (PSH: hand it to the application now)
            5  0.000318  172.16.196.145:60000 > 172.16.196.142:41334  [.]    ack 3255498568, len 0
                         server acknowledges the client's data
            6  0.000542  172.16.196.145:60000 > 172.16.196.142:41334  [P.]   seq 4195434199:4195434205, ack 3255498568, len 6
                         server sends 6 bytes of data (PSH: hand it to the application now)
            7  0.000582  172.16.196.145:60000 > 172.16.196.142:41334  [F.]   seq 4195434205, ack 3255498568, len 0
                         server's FIN, 40 µs after its last data: it has nothing more to send and starts the close (active close) — server enters FIN_WAIT_1, client enters CLOSE_WAIT
            8  0.000683  172.16.196.142:41334 > 172.16.196.145:60000  [.]    ack 4195434205, len 0
                         client's ACK covers the data only, not the FIN (the FIN had not arrived when it was sent)
            9  0.000764  172.16.196.142:41334 > 172.16.196.145:60000  [F.]   seq 3255498568, ack 4195434206, len 0
                         client's FIN carries the ACK of the server's FIN: FIN and ACK in one segment, so the close takes three segments — client enters LAST_ACK, server enters FIN_WAIT_2 → TIME_WAIT
           10  0.000777  172.16.196.145:60000 > 172.16.196.142:41334  [.]    ack 3255498569, len 0
                         final ACK: server acknowledges the client's FIN — client enters CLOSED, server stays in TIME_WAIT (2×MSL)
          verdict: three-way close, started by the server: FIN → FIN+ACK → ACK
          states:
            client: SYN_SENT(1) → ESTABLISHED(2) → CLOSE_WAIT(7) → LAST_ACK(9) → CLOSED(10)
            server: SYN_RECEIVED(1) → ESTABLISHED(3) → FIN_WAIT_1(7) → FIN_WAIT_2(9) → TIME_WAIT(9)
        "#);
    }

    #[test]
    fn four_way_listing_zh() {
        insta::assert_snapshot!(listing(&fixtures::four_way(), Lang::Zh), @r#"
        连接 1:客户端 172.16.196.142:41424 → 服务端 172.16.196.145:60000(四次挥手,共11个包)
            1  0.000000  172.16.196.142:41424 > 172.16.196.145:60000  [S]    seq 3935290883, len 0
                         客户端发起SYN主动请求建立连接,seq为3935290883,客户端进入SYN_SENT状态,服务端进入SYN_RECEIVED状态
            2  0.000043  172.16.196.145:60000 > 172.16.196.142:41424  [S.]   seq 3178165011, ack 3935290884, len 0
                         服务端给客户端确认ACK(ack为客户端的seq+1),并同时也发起SYN同步,客户端进入ESTABLISHED状态
            3  0.000265  172.16.196.142:41424 > 172.16.196.145:60000  [.]    ack 3178165012, len 0
                         客户端回复服务端的SYN确认,三次握手完成,服务端进入ESTABLISHED状态
            4  0.000308  172.16.196.142:41424 > 172.16.196.145:60000  [P.]   seq 3935290884:3935290887, ack 3178165012, len 3
                         客户端发送3字节数据,因此为P标记(PSH)
            5  0.000332  172.16.196.145:60000 > 172.16.196.142:41424  [.]    ack 3935290887, len 0
                         服务端回复客户端数据的确认ACK
            6  0.000518  172.16.196.145:60000 > 172.16.196.142:41424  [P.]   seq 3178165012:3178165018, ack 3935290887, len 6
                         服务端发送6字节数据,因此为P标记(PSH)
            7  0.000637  172.16.196.142:41424 > 172.16.196.145:60000  [.]    ack 3178165018, len 0
                         客户端回复服务端数据的确认ACK
            8  0.000755  172.16.196.142:41424 > 172.16.196.145:60000  [F.]   seq 3935290887, ack 3178165018, len 0
                         客户端发送完数据后发起FIN主动关闭(距它最后一次发送数据447微秒),客户端进入FIN_WAIT_1状态,服务端进入CLOSE_WAIT状态
            9  0.040415  172.16.196.145:60000 > 172.16.196.142:41424  [.]    ack 3935290888, len 0
                         服务端回复客户端的FIN确认ACK,比FIN晚了39.7毫秒:这就是延迟确认(delayed ACK),服务端没有数据要发,内核等着把ACK捎带在数据上,客户端进入FIN_WAIT_2状态
           10  0.100786  172.16.196.145:60000 > 172.16.196.142:41424  [F.]   seq 3178165018, ack 3935290888, len 0
                         服务端发起FIN关闭(距它最后一次发送数据100.3毫秒):它对客户端的FIN的确认ACK已经单独发出,所以是四次挥手,服务端进入LAST_ACK状态,客户端进入TIME_WAIT状态
           11  0.101015  172.16.196.142:41424 > 172.16.196.145:60000  [.]    ack 3178165019, len 0
                         客户端发送服务端FIN的确认,由此,整个连接关闭,服务端进入CLOSED状态,客户端保持TIME_WAIT状态(等待2×MSL)
          结论:四次挥手,客户端主动关闭:FIN → ACK → FIN → ACK;被动方对FIN的确认ACK晚了39.7毫秒(延迟确认)
          状态:
            客户端:SYN_SENT(1) → ESTABLISHED(2) → FIN_WAIT_1(8) → FIN_WAIT_2(9) → TIME_WAIT(10)
            服务端:SYN_RECEIVED(1) → ESTABLISHED(3) → CLOSE_WAIT(8) → LAST_ACK(10) → CLOSED(11)
        "#);
    }

    #[test]
    fn simultaneous_listing_en() {
        insta::assert_snapshot!(listing(&fixtures::simultaneous(), Lang::En), @r#"
        connection 1: client 10.25.137.230:46556 → server 10.29.64.142:443 (simultaneous close, 4 packets)
            1  0.000000  10.29.64.142:443 > 10.25.137.230:46556  [F.]   seq 3633446994, ack 1764274713, len 0
                         server's FIN: it has nothing more to send — server enters FIN_WAIT_1
            2  0.000869  10.25.137.230:46556 > 10.29.64.142:443  [F.]   seq 1764274713, ack 3633446994, len 0
                         FINs crossed: the client sent its FIN before receiving the server's (its ack does not cover the server's FIN) — client enters FIN_WAIT_1 → CLOSING, server enters CLOSING
            3  0.000891  10.29.64.142:443 > 10.25.137.230:46556  [.]    ack 1764274714, len 0
                         server acknowledges the client's FIN — client enters TIME_WAIT
            4  0.001179  10.25.137.230:46556 > 10.29.64.142:443  [.]    ack 3633446995, len 0
                         final ACK: client acknowledges the server's FIN — server enters TIME_WAIT, client stays in TIME_WAIT (2×MSL)
          verdict: simultaneous close (both FINs crossed): each side sent its FIN before it received the other's
          states:
            client: ESTABLISHED(1) → FIN_WAIT_1(2) → CLOSING(1) → TIME_WAIT(3)
            server: ESTABLISHED(1) → FIN_WAIT_1(1) → CLOSING(2) → TIME_WAIT(4)
          warnings:
            roles-guessed: no SYN captured: the endpoint with the lower port was taken as the server
            handshake-not-captured: the three-way handshake is not in the capture (it started before the capture)
        "#);
    }

    #[test]
    fn render_lists_every_connection_then_the_summary() {
        let analysis = Analysis {
            file: crate::analysis::FileInfo {
                source: "two.pcap".to_string(),
                format: crate::input::Format::Pcap,
                link_type: None,
                packets: 21,
                non_tcp: 0,
                duplicates: 0,
                after_close: 0,
                warnings: vec![Warning::CaptureDrops(2)],
            },
            connections: vec![fixtures::three_way(), fixtures::four_way()],
        };
        let mut out = Vec::new();
        render(&analysis, &TextOptions::default(), &mut out).expect("Vec");
        let text = String::from_utf8(out).expect("UTF-8");
        let first = text.find("connection 1: ").expect("first connection");
        let second = text
            .find("\n\nconnection 2: ")
            .expect("second, after a blank line");
        let warn = text
            .find("capture-drops:2: the kernel dropped 2 packets")
            .expect("file warning");
        let summary = text.find("summary: 2 connections").expect("summary");
        assert!(first < second && second < warn && warn < summary, "{text}");
        assert!(
            text.contains("  three-way close     server         1   50.0%"),
            "{text}"
        );
    }

    #[test]
    fn ladder_follows_the_listing_when_asked() {
        let conn = fixtures::four_way();
        let mut out = Vec::new();
        let opts = TextOptions {
            ladder: true,
            ..TextOptions::default()
        };
        render_connection(&conn, 0, &opts, &mut out).expect("Vec");
        let text = String::from_utf8(out).expect("UTF-8");
        let listing_end = text.find("  states:").expect("listing");
        let ladder = text
            .find("\nladder: client 172.16.196.142:41424")
            .expect("ladder");
        assert!(listing_end < ladder, "{text}");
        assert!(!listing(&conn, Lang::En).contains("ladder:"));
    }

    #[test]
    fn color_only_when_asked() {
        let conn = fixtures::three_way();
        assert!(!listing(&conn, Lang::En).contains('\x1b'));
        let mut out = Vec::new();
        let opts = TextOptions {
            color: true,
            ..TextOptions::default()
        };
        render_connection(&conn, 0, &opts, &mut out).expect("writing to a Vec cannot fail");
        let s = String::from_utf8(out).expect("UTF-8");
        let fin_line = s.lines().find(|l| l.contains("[F.]")).expect("a FIN line");
        assert!(fin_line.starts_with("\x1b[33m"), "{fin_line:?}");
        assert!(s.contains("\x1b[1mverdict:"));
    }

    #[test]
    fn reset_listing_and_elided_packets() {
        use Side::{Client as C, Server as S};
        let conn = Builder::new("[::1]:60000", "[::1]:5000", TeardownKind::Reset)
            .closer(Closer::Client)
            .warn(Warning::PacketsElided(1200))
            .pkt(1, 0, C, "S", 1, 0, 0, Role::Syn)
            .pkt(2, 10, S, "S.", 9, 2, 0, Role::SynAck)
            .pkt(3, 20, C, ".", 2, 10, 0, Role::HandshakeAck)
            .pkt(4, 30, C, "P.", 2, 10, 1000, Role::Data)
            .pkt(1205, 900_000, S, "P.", 10, 1002, 3, Role::Data)
            .pkt(1206, 900_100, C, "R.", 1002, 13, 0, Role::Rst)
            .elided(1200)
            .state(C, 1, TcpState::SynSent)
            .state(C, 2, TcpState::Established)
            .state(S, 1206, TcpState::Closed)
            .state(C, 1206, TcpState::Closed)
            .build();
        insta::assert_snapshot!(listing(&conn, Lang::En), @r#"
        connection 1: client [::1]:60000 → server [::1]:5000 (reset, 1206 packets)
             1  0.000000  [::1]:60000 > [::1]:5000  [S]    seq 1, len 0
                          client opens the connection: SYN with its initial sequence number 1 — client enters SYN_SENT
             2  0.000010  [::1]:5000 > [::1]:60000  [S.]   seq 9, ack 2, len 0
                          server answers with SYN+ACK: it acknowledges the client's SYN (ack = ISN+1) and sends its own SYN — client enters ESTABLISHED
             3  0.000020  [::1]:60000 > [::1]:5000  [.]    ack 10, len 0
                          client acknowledges the server's SYN: the three-way handshake is complete
             4  0.000030  [::1]:60000 > [::1]:5000  [P.]   seq 2:1002, ack 10, len 1000
                          client sends 1000 bytes of data (PSH: hand it to the application now)
                          … 1200 packets not shown …
          1205  0.900000  [::1]:5000 > [::1]:60000  [P.]   seq 10:13, ack 1002, len 3
                          server sends 3 bytes of data (PSH: hand it to the application now)
          1206  0.900100  [::1]:60000 > [::1]:5000  [R.]   seq 1002, ack 13, len 0
                          client resets the connection (SO_LINGER 0 or unread data) — both enter CLOSED
          verdict: reset by the client
          states:
            client: SYN_SENT(1) → ESTABLISHED(2) → CLOSED(1206)
            server: CLOSED(1206)
          warnings:
            packets-elided:1200: 1200 packets in the middle of a long transfer are not shown
        "#);
    }
}
