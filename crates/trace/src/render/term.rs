//! The terminal toolkit every text renderer shares (narration, ladder, summary tables,
//! connection lines): time and duration spellings, column widths of CJK text, ANSI styles,
//! tcpdump's flag spelling. Knows nothing of connections or narration.

use super::Lang;
use crate::segment::Flags;

/// Relative time in seconds with 6 decimals (`0.000582`, `-1.500000`), rounded to the µs.
pub fn rel_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let us = (ns.unsigned_abs() + 500) / 1000;
    format!("{sign}{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// A duration for prose: `40 µs`, `39.7 ms`, `1.250 s` (`40微秒`, `39.7毫秒`, `1.250秒`).
pub fn duration(ns: i64, lang: Lang) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    let (num, unit_en, unit_zh) = if a < 1_000_000 {
        (format!("{}", (a + 500) / 1000), " µs", "微秒")
    } else if a < 1_000_000_000 {
        let tenths = (a + 50_000) / 100_000;
        (format!("{}.{}", tenths / 10, tenths % 10), " ms", "毫秒")
    } else {
        let ms = (a + 500_000) / 1_000_000;
        (format!("{}.{:03}", ms / 1000, ms % 1000), " s", "秒")
    };
    match lang {
        Lang::En => format!("{sign}{num}{unit_en}"),
        Lang::Zh => format!("{sign}{num}{unit_zh}"),
    }
}

/// Terminal columns taken by `s`: CJK and full-width characters take two.
pub(crate) fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF => 2,
            0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

/// ANSI styles used by the renderers; nothing is emitted unless `TextOptions::color`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Style {
    Bold,
    Yellow,
    Red,
    Green,
    Magenta,
}

/// Wrap `s` in the ANSI codes of `style` when `color` is on.
pub(crate) fn paint(s: &str, style: Style, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Yellow => "33",
        Style::Red => "31",
        Style::Green => "32",
        Style::Magenta => "35",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The colour of a packet's line: RST red, FIN yellow, SYN green.
pub(crate) fn packet_style(flags: Flags) -> Option<Style> {
    if flags.rst() {
        Some(Style::Red)
    } else if flags.fin() {
        Some(Style::Yellow)
    } else if flags.syn() {
        Some(Style::Green)
    } else {
        None
    }
}

/// `[F.]`.
pub(crate) fn flags_text(flags: Flags) -> String {
    format!("[{}]", flags.tcpdump())
}
