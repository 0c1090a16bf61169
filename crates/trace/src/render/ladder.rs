//! A two-column ladder (sequence) diagram: the client's line on the left, the server's on
//! the right, one arrow per packet, the relative time on the left and each state change
//! written beside the line of the endpoint that entered it.
//!
//! ```text
//!    #  time (s)        client │                                                      │ server
//!    7  0.000582    CLOSE_WAIT │◀────────────────[F.] seq 4195434205 ack 3255498568──│ FIN_WAIT_1
//! ```
//!
//! Widths are fixed (at most [`MAX_WIDTH`] columns for captures shorter than 1000 s), so the
//! addresses — an IPv6 one can be 47 characters — appear only in the header.

use super::term::{display_width, flags_text, packet_style, paint, rel_time, Style};
use super::words::{elided_text, elision_point, side_name, told_at, verdict};
use super::{Lang, TextOptions};
use crate::analysis::{Connection, PacketInfo, Side};
use crate::state::TcpState;
use std::io::{self, Write};

/// The widest line the diagram draws (for relative times below 1000 s).
pub const MAX_WIDTH: usize = 99;

/// Width of the packet-number column.
const NUM_W: usize = 4;
/// Width of the time column (`999.999999`).
const TIME_W: usize = 10;
/// Width of a state label column (`SYN_RECEIVED` is the longest state name).
const STATE_W: usize = 12;
/// Characters between the two endpoint lines.
const ARROW_W: usize = 54;

/// Draw `conn` as a ladder diagram.
pub fn render(conn: &Connection, opts: &TextOptions, w: &mut dyn Write) -> io::Result<()> {
    let lang = opts.lang;
    let (client, server) = (side_name(Side::Client, lang), side_name(Side::Server, lang));
    let title = match lang {
        Lang::En => format!(
            "ladder: {client} {}  ⇄  {server} {}",
            conn.client, conn.server
        ),
        Lang::Zh => format!(
            "梯形图:{client} {}  ⇄  {server} {}",
            conn.client, conn.server
        ),
    };
    writeln!(w, "{}", paint(&title, Style::Bold, opts.color))?;
    let time_label = match lang {
        Lang::En => "time (s)",
        Lang::Zh => "时间(秒)",
    };
    writeln!(
        w,
        "{}",
        row("#", time_label, client, &" ".repeat(ARROW_W), server)
    )?;

    let elide_at = elision_point(conn);
    for (i, p) in conn.packets.iter().enumerate() {
        if elide_at == Some(i) {
            write_elided(conn, lang, w)?;
        }
        let client_states = entered(conn, Side::Client, p.number);
        let server_states = entered(conn, Side::Server, p.number);
        let arrow = arrow(p);
        let arrow = match packet_style(p.flags) {
            Some(style) => paint(&arrow, style, opts.color),
            None => arrow,
        };
        writeln!(
            w,
            "{}",
            row(
                &p.number.to_string(),
                &rel_time(p.ts_ns.saturating_sub(conn.file_start_ns)),
                client_states.first().map_or("", |s| s.as_str()),
                &arrow,
                server_states.first().map_or("", |s| s.as_str()),
            )
        )?;
        // A packet that moved an endpoint through two states (FIN+ACK in FIN_WAIT_1 →
        // FIN_WAIT_2 → TIME_WAIT) gets one continuation row per extra state.
        let extra = client_states.len().max(server_states.len());
        for k in 1..extra {
            writeln!(
                w,
                "{}",
                row(
                    "",
                    "",
                    client_states.get(k).map_or("", |s| s.as_str()),
                    &" ".repeat(ARROW_W),
                    server_states.get(k).map_or("", |s| s.as_str()),
                )
            )?;
        }
    }
    if elide_at == Some(conn.packets.len()) {
        write_elided(conn, lang, w)?;
    }
    let v = match lang {
        Lang::En => format!("verdict: {}", verdict(conn, lang)),
        Lang::Zh => format!("结论:{}", verdict(conn, lang)),
    };
    for (i, line) in wrap(&v, MAX_WIDTH - 2).iter().enumerate() {
        let indent = if i == 0 { "" } else { "  " };
        writeln!(w, "{indent}{}", paint(line, Style::Bold, opts.color))?;
    }
    Ok(())
}

/// Break `text` at blanks so that no line is wider than `max` columns (a single longer word
/// stays whole).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && display_width(&cur) + 1 + display_width(word) > max {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    lines
}

fn write_elided(conn: &Connection, lang: Lang, w: &mut dyn Write) -> io::Result<()> {
    let text = elided_text(conn.elided, lang);
    writeln!(w, "{}", row("", "", "", &center(&text, ARROW_W), ""))
}

/// States `side` is shown entering at `packet` (see [`told_at`]).
fn entered(conn: &Connection, side: Side, packet: u64) -> Vec<TcpState> {
    told_at(&conn.states[side.idx()], packet)
}

/// One row: number, time, client state (right-aligned against the client's line), the
/// space between the lines, server state. Trailing blanks are trimmed.
fn row(num: &str, time: &str, client: &str, middle: &str, server: &str) -> String {
    let line = format!(
        "{}  {} {} │{middle}│ {server}",
        pad_left(num, NUM_W),
        pad_left(time, TIME_W),
        pad_left(client, STATE_W),
    );
    line.trim_end().to_string()
}

/// `──[F.] seq 4195434205 ack 3255498568───…──▶` (client → server) or its mirror, always
/// `ARROW_W` characters wide, the label next to the sender's line.
fn arrow(p: &PacketInfo) -> String {
    let mut label = flags_text(p.flags);
    if p.len > 0 {
        label.push_str(&format!(" seq {}:{}", p.seq, p.seq.plus(p.len)));
    } else if p.flags.syn() || p.flags.fin() || p.flags.rst() {
        label.push_str(&format!(" seq {}", p.seq));
    }
    if p.flags.ack() {
        label.push_str(&format!(" ack {}", p.ack));
    }
    // Two dashes on the sender's side, a dash and the head on the other.
    let room = ARROW_W - 4;
    let label: String = if label.chars().count() > room {
        let mut cut: String = label.chars().take(room - 1).collect();
        cut.push('…');
        cut
    } else {
        label
    };
    let fill = "─".repeat(room - label.chars().count());
    match p.from {
        Side::Client => format!("──{label}{fill}─▶"),
        Side::Server => format!("◀─{fill}{label}──"),
    }
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(display_width(s))))
}

fn center(s: &str, w: usize) -> String {
    let room = w.saturating_sub(display_width(s));
    let left = room / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(room - left))
}

#[cfg(test)]
mod tests {
    use super::super::human::fixtures::{self, Builder};
    use super::*;
    use crate::analysis::Role;
    use crate::teardown::{Closer, TeardownKind};

    fn ladder(conn: &Connection, lang: Lang) -> String {
        let mut out = Vec::new();
        let opts = TextOptions {
            lang,
            ..TextOptions::default()
        };
        render(conn, &opts, &mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("renderer writes UTF-8")
    }

    #[test]
    fn four_way_ladder_en() {
        insta::assert_snapshot!(ladder(&fixtures::four_way(), Lang::En), @r#"
        ladder: client 172.16.196.142:41424  ⇄  server 172.16.196.145:60000
           #    time (s)       client │                                                      │ server
           1    0.000000     SYN_SENT │──[S] seq 3935290883─────────────────────────────────▶│ SYN_RECEIVED
           2    0.000043  ESTABLISHED │◀─────────────────[S.] seq 3178165011 ack 3935290884──│
           3    0.000265              │──[.] ack 3178165012─────────────────────────────────▶│ ESTABLISHED
           4    0.000308              │──[P.] seq 3935290884:3935290887 ack 3178165012──────▶│
           5    0.000332              │◀─────────────────────────────────[.] ack 3935290887──│
           6    0.000518              │◀──────[P.] seq 3178165012:3178165018 ack 3935290887──│
           7    0.000637              │──[.] ack 3178165018─────────────────────────────────▶│
           8    0.000755   FIN_WAIT_1 │──[F.] seq 3935290887 ack 3178165018─────────────────▶│ CLOSE_WAIT
           9    0.040415   FIN_WAIT_2 │◀─────────────────────────────────[.] ack 3935290888──│
          10    0.100786    TIME_WAIT │◀─────────────────[F.] seq 3178165018 ack 3935290888──│ LAST_ACK
          11    0.101015              │──[.] ack 3178165019─────────────────────────────────▶│ CLOSED
        verdict: four-way close, started by the client: FIN → ACK → FIN → ACK; the passive side's ACK of
          the FIN came 39.7 ms later (delayed ACK)
        "#);
    }

    #[test]
    fn three_way_ladder_zh() {
        insta::assert_snapshot!(ladder(&fixtures::three_way(), Lang::Zh), @r#"
        梯形图:客户端 172.16.196.142:41334  ⇄  服务端 172.16.196.145:60000
           #    时间(秒)       客户端 │                                                      │ 服务端
           1    0.000000     SYN_SENT │──[S] seq 3255498564─────────────────────────────────▶│ SYN_RECEIVED
           2    0.000028  ESTABLISHED │◀─────────────────[S.] seq 4195434198 ack 3255498565──│
           3    0.000264              │──[.] ack 4195434199─────────────────────────────────▶│ ESTABLISHED
           4    0.000308              │──[P.] seq 3255498565:3255498568 ack 4195434199──────▶│
           5    0.000318              │◀─────────────────────────────────[.] ack 3255498568──│
           6    0.000542              │◀──────[P.] seq 4195434199:4195434205 ack 3255498568──│
           7    0.000582   CLOSE_WAIT │◀─────────────────[F.] seq 4195434205 ack 3255498568──│ FIN_WAIT_1
           8    0.000683              │──[.] ack 4195434205─────────────────────────────────▶│
           9    0.000764     LAST_ACK │──[F.] seq 3255498568 ack 4195434206─────────────────▶│ FIN_WAIT_2
                                      │                                                      │ TIME_WAIT
          10    0.000777       CLOSED │◀─────────────────────────────────[.] ack 3255498569──│
        结论:三次挥手,服务端主动关闭:FIN → FIN+ACK → ACK
        "#);
    }

    #[test]
    fn rows_stay_within_max_width_and_arrows_line_up() {
        for conn in [
            fixtures::three_way(),
            fixtures::four_way(),
            fixtures::simultaneous(),
        ] {
            for lang in [Lang::En, Lang::Zh] {
                let text = ladder(&conn, lang);
                for l in text.lines() {
                    assert!(display_width(l) <= MAX_WIDTH, "too wide: {l}");
                }
                // Both endpoint lines sit at the same column on every row.
                let cols: std::collections::BTreeSet<usize> = text
                    .lines()
                    .skip(1)
                    .filter(|l| l.contains('│'))
                    .map(|l| display_width(l.split('│').next().unwrap_or("")))
                    .collect();
                assert_eq!(cols.len(), 1, "{text}");
            }
        }
    }

    #[test]
    fn wrap_breaks_at_blanks() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("aaaaaaa b", 3), vec!["aaaaaaa", "b"]);
        assert_eq!(wrap("", 3), vec![""]);
    }

    #[test]
    fn ipv6_addresses_only_in_the_header() {
        use Side::{Client as C, Server as S};
        let conn = Builder::new(
            "[2001:db8::1234:5678:9abc:def0]:60001",
            "[2001:db8::1]:5000",
            TeardownKind::Reset,
        )
        .closer(Closer::Server)
        .pkt(7, 0, C, "P.", 4294967290, 4294967295, 20, Role::Data)
        .pkt(9, 120, S, "R.", 4294967295, 14, 0, Role::Rst)
        .elided(3)
        .build();
        let text = ladder(&conn, Lang::En);
        assert_eq!(text.matches("2001:db8").count(), 2, "{text}");
        assert!(text
            .lines()
            .next()
            .unwrap_or("")
            .contains("2001:db8::1]:5000"));
        assert!(text.contains("… 3 packets not shown …"), "{text}");
        assert!(
            text.contains("──[P.] seq 4294967290:14 ack 4294967295"),
            "{text}"
        );
        assert!(text.contains("[R.] seq 4294967295 ack 14──│"), "{text}");
    }

    #[test]
    fn ladder_colors_only_when_asked() {
        let conn = fixtures::four_way();
        assert!(!ladder(&conn, Lang::En).contains('\x1b'));
        let mut out = Vec::new();
        let opts = TextOptions {
            color: true,
            ..TextOptions::default()
        };
        render(&conn, &opts, &mut out).expect("writing to a Vec cannot fail");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains("\x1b[33m──[F.]"), "{text}");
    }
}
