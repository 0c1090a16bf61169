//! The table that ends a multi-connection file: how many connections ended each way, and who
//! started the close.
//!
//! ```text
//! summary: 3 connections
//!   kind                closer     count       %
//!   three-way close     server         1   33.3%
//!   ...
//!   total                              3  100.0%
//! ```

use super::term::{display_width, paint, Style};
use super::words::{kind_name, side_name};
use super::{Lang, TextOptions};
use crate::analysis::Side;
use crate::summary::Summary;
use crate::teardown::{Closer, TeardownKind};
use std::io::{self, Write};

const KIND_W: usize = 20;
const CLOSER_W: usize = 10;

/// Render the counts table. Rows are (kind, active closer) pairs with at least one
/// connection: three-way, four-way, simultaneous, reset, incomplete, open; closers client,
/// server, both, none.
pub fn render(summary: &Summary, opts: &TextOptions, w: &mut dyn Write) -> io::Result<()> {
    let lang = opts.lang;
    let n = summary.connections;
    let title = match lang {
        Lang::En if n == 1 => "summary: 1 connection".to_string(),
        Lang::En => format!("summary: {n} connections"),
        Lang::Zh => format!("汇总:共{n}个连接"),
    };
    writeln!(w, "{}", paint(&title, Style::Bold, opts.color))?;
    if n == 0 {
        return Ok(());
    }
    let (h_kind, h_closer, h_count, h_total) = match lang {
        Lang::En => ("kind", "closer", "count", "total"),
        Lang::Zh => ("类型", "主动关闭", "数量", "合计"),
    };
    writeln!(w, "{}", line(h_kind, h_closer, h_count, "%"))?;
    for kind in TeardownKind::READING_ORDER {
        for closer in [
            Some(Closer::Client),
            Some(Closer::Server),
            Some(Closer::Both),
            None,
        ] {
            let Some(&count) = summary.counts.get(&(kind, closer)) else {
                continue;
            };
            if count == 0 {
                continue;
            }
            writeln!(
                w,
                "{}",
                line(
                    kind_name(kind, lang),
                    closer_name(closer, lang),
                    &count.to_string(),
                    &percent(count, n),
                )
            )?;
        }
    }
    writeln!(w, "{}", line(h_total, "", &n.to_string(), &percent(n, n)))
}

fn closer_name(closer: Option<Closer>, lang: Lang) -> &'static str {
    match (closer, lang) {
        (Some(Closer::Client), _) => side_name(Side::Client, lang),
        (Some(Closer::Server), _) => side_name(Side::Server, lang),
        (Some(Closer::Both), Lang::En) => "both",
        (Some(Closer::Both), Lang::Zh) => "双方",
        (None, _) => "-",
    }
}

/// `33.3%`, computed in integers so that every platform prints the same digits.
fn percent(count: u64, total: u64) -> String {
    if total == 0 {
        return "-".to_string();
    }
    let tenths = (u128::from(count) * 1000 + u128::from(total) / 2) / u128::from(total);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

fn line(kind: &str, closer: &str, count: &str, pct: &str) -> String {
    format!(
        "  {}{}{}  {pct:>6}",
        pad_right(kind, KIND_W),
        pad_right(closer, CLOSER_W),
        pad_left(count, 6),
    )
    .trim_end()
    .to_string()
}

/// Pad to `w` terminal columns, at least one blank after the text.
fn pad_right(s: &str, w: usize) -> String {
    format!(
        "{s}{}",
        " ".repeat(w.saturating_sub(display_width(s)).max(1))
    )
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(display_width(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(summary: &Summary, lang: Lang) -> String {
        let mut out = Vec::new();
        let opts = TextOptions {
            lang,
            ..TextOptions::default()
        };
        render(summary, &opts, &mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("renderer writes UTF-8")
    }

    fn sample() -> Summary {
        let mut s = Summary::default();
        for (kind, closer, n) in [
            (TeardownKind::FourWay, Some(Closer::Client), 1),
            (TeardownKind::ThreeWay, Some(Closer::Server), 2),
            (TeardownKind::Open, None, 0),
            (TeardownKind::Simultaneous, Some(Closer::Both), 1),
            (TeardownKind::Reset, Some(Closer::Client), 2),
        ] {
            s.counts.insert((kind, closer), n);
            s.connections += n;
        }
        s
    }

    #[test]
    fn summary_counts_and_percentages() {
        insta::assert_snapshot!(rendered(&sample(), Lang::En), @r"
        summary: 6 connections
          kind                closer     count       %
          three-way close     server         2   33.3%
          four-way close      client         1   16.7%
          simultaneous close  both           1   16.7%
          reset               client         2   33.3%
          total                              6  100.0%
        ");
    }

    #[test]
    fn summary_zh() {
        insta::assert_snapshot!(rendered(&sample(), Lang::Zh), @r"
        汇总:共6个连接
          类型                主动关闭    数量       %
          三次挥手            服务端         2   33.3%
          四次挥手            客户端         1   16.7%
          同时关闭            双方           1   16.7%
          RST重置             客户端         2   33.3%
          合计                               6  100.0%
        ");
    }

    #[test]
    fn summary_empty_has_no_table() {
        assert_eq!(
            rendered(&Summary::default(), Lang::En),
            "summary: 0 connections\n"
        );
    }

    #[test]
    fn percent_rounds_half_up() {
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(0, 0), "-");
    }
}
