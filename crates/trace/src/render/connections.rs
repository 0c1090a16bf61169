//! One line per connection, in the style of bcc's `tcplife` (`--summary connections`): who
//! talked to whom, how the connection ended, who closed first, how long it stayed
//! half-closed, which side holds TIME_WAIT and since when, the bytes each way, and the
//! cause of an RST.
//!
//! ```text
//! CLIENT               SERVER               KIND          CLOSER  HALF_CLOSED_MS  TIME_WAIT         C>S_BYTES  S>C_BYTES  RST_CAUSE
//! 192.0.2.1:40000      198.51.100.2:80      four-way      client         100.031  client@0.100786          3          6  -
//! ```
//!
//! Times are seconds since the file's first packet; the connection must be built with
//! [`crate::Detail::Full`] (the per-packet list gives the times).

use super::words::kind_name;
use super::{Lang, TextOptions};
use crate::analysis::{Connection, Side};
use crate::state::TcpState;
use std::io::{self, Write};

/// What the line says about one connection: plain data, rendered by [`render_line`].
#[derive(Clone, Debug, PartialEq)]
pub struct CloseSummary {
    /// Time from the first FIN to the second, ns; for a connection with one FIN, to its last
    /// packet (`open_ended`).
    pub half_closed_ns: Option<i64>,
    /// Only one FIN: the half-close had not ended when the capture did.
    pub open_ended: bool,
    /// The side whose inferred timeline enters TIME_WAIT, and when (ns since file start).
    pub time_wait: Option<(Side, i64)>,
}

/// Work out the line's facts from a fully built connection.
pub fn close_summary(c: &Connection) -> CloseSummary {
    let fin_ts = |s: Side| {
        c.packets
            .iter()
            .find(|p| p.from == s && p.flags.fin())
            .map(|p| p.ts_ns)
    };
    let (fc, fs) = (fin_ts(Side::Client), fin_ts(Side::Server));
    let last = c.packets.last().map(|p| p.ts_ns);
    let (half_closed_ns, open_ended) = match (fc, fs) {
        (Some(a), Some(b)) => (Some((a - b).abs()), false),
        (Some(a), None) | (None, Some(a)) => (last.map(|l| l.saturating_sub(a)), true),
        (None, None) => (None, false),
    };
    let ts_of = |n: u64| c.packets.iter().find(|p| p.number == n).map(|p| p.ts_ns);
    let time_wait = [Side::Client, Side::Server].into_iter().find_map(|s| {
        let ch = c.states[s.idx()]
            .changes()
            .iter()
            .find(|x| x.state == TcpState::TimeWait)?;
        Some((s, ts_of(ch.packet)?.saturating_sub(c.file_start_ns)))
    });
    CloseSummary {
        half_closed_ns,
        open_ended,
        time_wait,
    }
}

/// The header line.
pub fn render_header(opts: &TextOptions, w: &mut dyn Write) -> io::Result<()> {
    let h = match opts.lang {
        Lang::En => [
            "CLIENT",
            "SERVER",
            "KIND",
            "CLOSER",
            "HALF_CLOSED_MS",
            "TIME_WAIT",
            "C>S_BYTES",
            "S>C_BYTES",
            "RST_CAUSE",
        ],
        Lang::Zh => [
            "客户端",
            "服务端",
            "类型",
            "主动关闭",
            "半关闭毫秒",
            "TIME_WAIT",
            "客户端发送字节",
            "服务端发送字节",
            "RST原因",
        ],
    };
    writeln!(w, "{}", columns(&h.map(String::from)))
}

/// One connection's line. `rst_cause` is the cause's code (`-` when there is no RST).
pub fn render_line(
    c: &Connection,
    rst_cause: &str,
    opts: &TextOptions,
    w: &mut dyn Write,
) -> io::Result<()> {
    let s = close_summary(c);
    let closer = c.teardown.active_closer.map_or("-", |x| x.as_str());
    let half = match s.half_closed_ns {
        Some(ns) => format!(
            "{}{:.3}",
            if s.open_ended { ">" } else { "" },
            ns as f64 / 1e6
        ),
        None => "-".into(),
    };
    let tw = match s.time_wait {
        Some((side, ns)) => format!("{}@{:.6}", side.as_str(), ns as f64 / 1e9),
        None => "-".into(),
    };
    let cols = [
        c.client.to_string(),
        c.server.to_string(),
        kind_name(c.teardown.kind, opts.lang)
            .trim_end_matches(" close")
            .to_string(),
        closer.to_string(),
        half,
        tw,
        c.bytes[Side::Client.idx()].to_string(),
        c.bytes[Side::Server.idx()].to_string(),
        rst_cause.to_string(),
    ];
    writeln!(w, "{}", columns(&cols))
}

/// Widths of the columns (a wider value just pushes the rest right).
const WIDTHS: [usize; 9] = [22, 22, 13, 7, 15, 18, 10, 10, 0];

fn columns(cols: &[String; 9]) -> String {
    let mut out = String::new();
    for (i, (c, w)) in cols.iter().zip(WIDTHS).enumerate() {
        out.push_str(c);
        if i + 1 < cols.len() {
            let pad = w.saturating_sub(super::term::display_width(c)).max(1);
            out.push_str(&" ".repeat(pad));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> String {
        let a = crate::analyze(text.as_bytes(), "t").unwrap();
        let mut out = Vec::new();
        let opts = TextOptions::default();
        render_header(&opts, &mut out).unwrap();
        for c in &a.connections {
            render_line(c, "-", &opts, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn four_way_close_line() {
        let text = "\
10:00:00.000000 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [S], seq 3000000000, win 1, length 0
10:00:00.000100 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [S.], seq 4000000000, ack 3000000001, win 1, length 0
10:00:00.000200 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [P.], seq 3000000001:3000000004, ack 4000000001, win 1, length 3
10:00:00.000300 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [P.], seq 4000000001:4000000007, ack 3000000004, win 1, length 6
10:00:00.000400 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [F.], seq 3000000004, ack 4000000007, win 1, length 0
10:00:00.040400 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [.], ack 3000000005, win 1, length 0
10:00:00.100400 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [F.], seq 4000000007, ack 3000000005, win 1, length 0
10:00:00.100500 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [.], ack 4000000008, win 1, length 0
";
        insta::assert_snapshot!(line(text), @r"
        CLIENT                SERVER                KIND         CLOSER HALF_CLOSED_MS TIME_WAIT         C>S_BYTES S>C_BYTES RST_CAUSE
        192.0.2.1:40000       198.51.100.2:80       four-way     client 100.000        client@0.100400   3         6         -
        ");
    }
}
