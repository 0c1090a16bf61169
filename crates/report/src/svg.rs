//! Draw a [`Diagram`] as SVG: time flows down, the client's time line on the left, the
//! server's on the right, one arrow per segment, its tcpdump-style label along it and its
//! narration in a column beside it. Deterministic: same diagram, same bytes.
//!
//! The vertical scale is monotone in time but not linear: short gaps get room for their
//! labels and long ones are shortened (and say their length), so a 40 ms delayed ACK and a
//! 20 µs reply both stay readable. Any monotone scale keeps what matters: two arrows cross
//! on the page exactly when the segments were in flight at once.

use crate::diagram::{Arrow, Diagram, Fate, StateMark, Vantage};
use crate::html::esc;
use std::fmt::Write as _;
use tcplab_trace::render::human::duration;
use tcplab_trace::render::Lang;
use tcplab_trace::{Side, StateSource};

const CLIENT_X: f64 = 250.0;
const SERVER_X: f64 = 610.0;
const NARRATION_X: f64 = 840.0;
const WIDTH: f64 = 1400.0;
const TOP: f64 = 70.0;
const PX_PER_MS: f64 = 6.0;
/// Room for one arrow's label.
const MIN_GAP: f64 = 24.0;
/// A longer gap is drawn this tall and marked as shortened.
const MAX_GAP: f64 = 240.0;
const LINE_H: f64 = 14.0;
/// Narration characters per line (CJK count two).
const WRAP: usize = 74;

fn mid_x() -> f64 {
    (CLIENT_X + SERVER_X) / 2.0
}

fn x_of(side: Side) -> f64 {
    match side {
        Side::Client => CLIENT_X,
        Side::Server => SERVER_X,
    }
}

/// Where a lost (or injected) arrow ends (starts): halfway, half a typical delay on.
fn half_delay(d: &Diagram, from: Side) -> i64 {
    let typical = match &d.vantage {
        Vantage::Two {
            delay_cs_ns,
            delay_sc_ns,
            ..
        } => match from {
            Side::Client => *delay_cs_ns,
            Side::Server => *delay_sc_ns,
        },
        Vantage::One { .. } => None,
    };
    typical.unwrap_or(0).max(0) / 2
}

/// The two ends of an arrow in time: (at the sender, at the receiver or midway).
fn span(d: &Diagram, a: &Arrow) -> (i64, i64) {
    match (a.sent_ns, a.arrived_ns) {
        (Some(s), Some(r)) => (s, r),
        (Some(s), None) => (s, s + half_delay(d, a.from)),
        (None, Some(r)) => (r - half_delay(d, a.from), r),
        (None, None) => (0, 0),
    }
}

/// Split `text` into lines of at most `WRAP` columns (CJK characters take two).
fn wrap(text: &str) -> Vec<String> {
    let width = |c: char| if (c as u32) >= 0x2E80 { 2 } else { 1 };
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut cols = 0;
    for word in text.split_inclusive(' ') {
        let w: usize = word.chars().map(width).sum();
        if cols + w > WRAP && !line.is_empty() {
            lines.push(std::mem::take(&mut line).trim_end().to_owned());
            cols = 0;
        }
        if w > WRAP {
            // A long run without spaces (Chinese): break anywhere.
            for c in word.chars() {
                if cols + width(c) > WRAP {
                    lines.push(std::mem::take(&mut line));
                    cols = 0;
                }
                line.push(c);
                cols += width(c);
            }
        } else {
            line.push_str(word);
            cols += w;
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// Time → y, monotone; each arrow's first instant leaves room below the previous arrow's
/// narration. Returns the map (sorted by time) and the marks of shortened gaps.
struct Scale {
    points: Vec<(i64, f64)>,
    breaks: Vec<(f64, f64, i64)>,
}

impl Scale {
    fn y(&self, t: i64) -> f64 {
        let i = self.points.partition_point(|(pt, _)| *pt < t);
        match (
            self.points.get(i),
            i.checked_sub(1).and_then(|j| self.points.get(j)),
        ) {
            (Some(&(pt, py)), _) if pt == t => py,
            (Some(&(t1, y1)), Some(&(t0, y0))) => {
                y0 + (y1 - y0) * ((t - t0) as f64 / (t1 - t0) as f64)
            }
            (Some(&(_, y)), None) | (None, Some(&(_, y))) => y,
            (None, None) => TOP,
        }
    }
}

fn scale(d: &Diagram, narr_lines: &[usize]) -> Scale {
    // (time, room needed above it for the previous arrow's narration)
    let mut events: Vec<(i64, Option<usize>)> = Vec::new();
    for (i, a) in d.arrows.iter().enumerate() {
        let (s, r) = span(d, a);
        events.push((s, Some(i)));
        events.push((r, None));
    }
    events.extend(d.states.iter().map(|s| (s.at_ns, None)));
    events.sort_unstable();
    let mut points: Vec<(i64, f64)> = Vec::new();
    let mut breaks = Vec::new();
    let mut last_anchor: Option<(f64, usize)> = None;
    for (t, anchor) in events {
        let y = match points.last() {
            None => TOP,
            Some(&(pt, py)) if pt == t => py,
            Some(&(pt, py)) => {
                let ms = (t - pt) as f64 / 1e6;
                let want = ms * PX_PER_MS;
                let gap = want.clamp(MIN_GAP, MAX_GAP);
                if want > MAX_GAP {
                    breaks.push((py, py + gap, t - pt));
                }
                py + gap
            }
        };
        let y = match (anchor, last_anchor) {
            (Some(_), Some((ay, lines))) => y.max(ay + lines as f64 * LINE_H + 12.0),
            _ => y,
        };
        if points.last().is_some_and(|&(pt, _)| pt == t) {
            if let Some(last) = points.last_mut() {
                last.1 = last.1.max(y);
            }
        } else {
            points.push((t, y));
        }
        if let Some(i) = anchor {
            last_anchor = Some((y, narr_lines[i]));
        }
    }
    // A point raised for room must not fall below a later one.
    for i in 1..points.len() {
        if points[i].1 < points[i - 1].1 + 1.0 && points[i].0 > points[i - 1].0 {
            points[i].1 = points[i - 1].1 + 1.0;
        }
    }
    Scale { points, breaks }
}

/// The SVG of `d` (an `<svg>` element, to inline in a page).
pub fn render(d: &Diagram, lang: Lang) -> String {
    let narrs: Vec<Vec<String>> = d
        .arrows
        .iter()
        .map(|a| wrap(&format!("{}. {}", a.number, a.narration)))
        .collect();
    let narr_lines: Vec<usize> = narrs.iter().map(|l| l.len().max(1)).collect();
    let sc = scale(d, &narr_lines);
    let last_narr = d
        .arrows
        .iter()
        .enumerate()
        .map(|(i, a)| sc.y(span(d, a).0) + narr_lines[i] as f64 * LINE_H)
        .fold(TOP, f64::max);
    let bottom = sc.points.last().map_or(TOP, |p| p.1).max(last_narr) + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="spacetime" width="{WIDTH}" height="{h:.0}" viewBox="0 0 {WIDTH} {h:.0}" role="img" aria-label="{aria}">"#,
        h = bottom,
        aria = esc(&format!(
            "space-time diagram: client {} and server {}",
            d.client, d.server
        )),
    );
    s.push_str(r#"<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>"#);
    let (cl, sv) = match lang {
        Lang::En => ("client", "server"),
        Lang::Zh => ("客户端", "服务端"),
    };
    for (x, name, addr) in [(CLIENT_X, cl, &d.client), (SERVER_X, sv, &d.server)] {
        let _ = write!(
            s,
            r#"<text class="end" x="{x}" y="24" text-anchor="middle">{}</text><text class="addr" x="{x}" y="40" text-anchor="middle">{}</text><line class="timeline" x1="{x}" y1="{TOP0}" x2="{x}" y2="{b:.1}"/>"#,
            esc(name),
            esc(addr),
            TOP0 = TOP - 16.0,
            b = bottom - 20.0
        );
    }
    let _ = write!(
        s,
        r#"<text class="axis" x="{}" y="{}" text-anchor="middle">time ↓</text>"#,
        mid_x(),
        TOP - 24.0
    );
    // Shortened gaps: a zig-zag on both lines and the true length.
    for (y0, y1, dt) in &sc.breaks {
        let ym = (y0 + y1) / 2.0;
        for x in [CLIENT_X, SERVER_X] {
            let _ = write!(
                s,
                r#"<path class="break" d="M{a:.1},{y:.1}l6,-4l-12,8l6,-4" />"#,
                a = x,
                y = ym
            );
        }
        let _ = write!(
            s,
            r#"<text class="gap" x="{}" y="{:.1}" text-anchor="middle">⋯ {} (shortened) ⋯</text>"#,
            mid_x(),
            ym + 4.0,
            esc(&duration(*dt, lang))
        );
    }
    // Gaps of 1 ms or more, on the left margin, between consecutive instants.
    for w in sc.points.windows(2) {
        let dt = w[1].0 - w[0].0;
        if dt >= 1_000_000 && w[1].1 - w[0].1 >= 20.0 {
            let _ = write!(
                s,
                r#"<text class="gap" x="12" y="{:.1}">+{}</text>"#,
                (w[0].1 + w[1].1) / 2.0 + 4.0,
                esc(&duration(dt, lang))
            );
        }
    }
    states(&mut s, d, &sc);
    // Labels keep off each other, and if they can, off the arrows.
    let mut lines = Obstacles::default();
    for a in &d.arrows {
        let (p0, p1) = ends(d, a, &sc);
        lines.add(line_quad(p0, p1));
    }
    let mut placed = Obstacles::default();
    for (i, a) in d.arrows.iter().enumerate() {
        arrow(&mut s, d, a, &sc, &narrs[i], lang, (&mut placed, &lines));
    }
    s.push_str("</svg>");
    s
}

fn states(s: &mut String, d: &Diagram, sc: &Scale) {
    // Each side's labels are stacked so they never overlap; a tick marks the true instant.
    let mut next_free = [TOP - 8.0, TOP - 8.0];
    for m in &d.states {
        let i = m.side.idx();
        let y_true = sc.y(m.at_ns);
        let y = y_true.max(next_free[i]);
        next_free[i] = y + 15.0;
        state_mark(s, m, y_true, y);
    }
}

fn state_mark(s: &mut String, m: &StateMark, y_true: f64, y: f64) {
    let kernel = m.source == StateSource::Kernel;
    let x = x_of(m.side);
    // Capture states next to the line, the kernel's one column further out.
    let (dir, off) = match m.side {
        Side::Client => (-1.0, if kernel { 100.0 } else { 8.0 }),
        Side::Server => (1.0, if kernel { 100.0 } else { 8.0 }),
    };
    let tx = x + dir * off;
    let anchor = if dir < 0.0 { "end" } else { "start" };
    let name = m.state.as_str();
    let text = if kernel {
        format!("{name} ᵏ")
    } else {
        name.to_owned()
    };
    let _ = write!(
        s,
        r#"<g class="state {src}" data-side="{side}" data-state="{name}" data-source="{src}"><line class="tick" x1="{x}" y1="{y_true:.1}" x2="{tx:.1}" y2="{ty:.1}"/><text x="{tx:.1}" y="{ty4:.1}" text-anchor="{anchor}">{text}</text></g>"#,
        src = m.source.as_str(),
        side = m.side.as_str(),
        ty = y,
        ty4 = y + 4.0,
        text = esc(&text),
    );
}

/// Where an arrow starts and ends on the page. Lost/unseen: from the sender to midway;
/// injected/duplicate: from midway.
fn ends(d: &Diagram, a: &Arrow, sc: &Scale) -> ((f64, f64), (f64, f64)) {
    let (t0, t1) = span(d, a);
    let (x0, x1) = (x_of(a.from), x_of(a.from.peer()));
    let (y0, y1) = (sc.y(t0), sc.y(t1));
    let (ax0, ax1) = match a.fate {
        Fate::Delivered => (x0, x1),
        Fate::Lost | Fate::Unseen => (x0, mid_x()),
        Fate::Injected | Fate::Duplicate => (mid_x(), x1),
    };
    ((ax0, y0), (ax1, y1))
}

fn arrow(
    s: &mut String,
    d: &Diagram,
    a: &Arrow,
    sc: &Scale,
    narr: &[String],
    lang: Lang,
    (placed, lines): (&mut Obstacles, &Obstacles),
) {
    let (t0, _) = span(d, a);
    let x0 = x_of(a.from);
    let ((ax0, y0), (ax1, y1)) = ends(d, a, sc);
    let mut class = format!("arrow {}", a.fate.as_str());
    if a.flags.contains('F') {
        class.push_str(" fin");
    }
    if a.flags.contains('R') {
        class.push_str(" rst");
    }
    if a.flags.contains('S') {
        class.push_str(" syn");
    }
    if a.retransmit {
        class.push_str(" retransmit");
    }
    let _ = write!(
        s,
        r#"<g class="{class}" data-n="{n}" data-from="{from}" data-flags="{flags}" data-fate="{fate}" data-seen="{seen}"><line class="seg" x1="{ax0:.1}" y1="{y0:.1}" x2="{ax1:.1}" y2="{y1:.1}"{marker}/>"#,
        n = a.number,
        from = a.from.as_str(),
        flags = esc(&a.flags),
        fate = a.fate.as_str(),
        seen = a.seen.as_str(),
        marker = if matches!(a.fate, Fate::Lost | Fate::Unseen) {
            ""
        } else {
            r#" marker-end="url(#ah)""#
        },
    );
    match a.fate {
        Fate::Lost => {
            let _ = write!(
                s,
                r#"<path class="cross" d="M{a:.1},{b:.1}l10,10m0,-10l-10,10"/>"#,
                a = ax1 - 5.0,
                b = y1 - 5.0
            );
        }
        Fate::Unseen => {
            let _ = write!(
                s,
                r#"<text class="mark" x="{:.1}" y="{:.1}">?</text>"#,
                ax1 + 4.0,
                y1 + 4.0
            );
        }
        Fate::Injected | Fate::Duplicate => {
            let _ = write!(
                s,
                r#"<path class="forged" d="M{a:.1},{b:.1}l6,6l-6,6l-6,-6z"/>"#,
                a = ax0,
                b = y0 - 6.0
            );
        }
        Fate::Delivered => {}
    }
    // The label along the arrow: above it, a third of the way from the sender (two arrows
    // that cross in the middle keep their labels apart), unless that covers a label already
    // drawn; never past the time lines (a long label gets a smaller font instead).
    let mut label = format!("{} {}", a.number, a.label);
    let tag = |en: &str, zh: &str| match lang {
        Lang::En => en.to_owned(),
        Lang::Zh => zh.to_owned(),
    };
    if a.retransmit {
        label.push_str(&tag(" · retransmission", " · 重传"));
    }
    match a.fate {
        Fate::Lost => label.push_str(&tag(" · lost", " · 丢失")),
        Fate::Unseen => label.push_str(&tag(" · not seen arriving", " · 未见到达")),
        Fate::Injected => label.push_str(&tag(" · injected (never sent)", " · 注入(未见发出)")),
        Fate::Duplicate => label.push_str(&tag(" · duplicated by the link", " · 链路复制")),
        Fate::Delivered => {}
    }
    let preferred = if a.fate == Fate::Delivered { 0.36 } else { 0.5 };
    let spot = place_label((ax0, y0), (ax1, y1), &label, preferred, placed, lines);
    placed.add(spot.quad);
    let angle = ((y1 - y0) / (ax1 - ax0)).atan().to_degrees();
    let (mx, my) = (ax0 + spot.f * (ax1 - ax0), y0 + spot.f * (y1 - y0));
    let size = if (spot.size - LABEL_PX).abs() < 0.05 {
        String::new()
    } else {
        format!(r#" style="font-size:{:.1}px""#, spot.size)
    };
    let step = spot.size + 2.0;
    let first = if spot.above {
        my - 4.0 - (spot.lines.len() - 1) as f64 * step
    } else {
        my + 3.0 + spot.size * 0.8
    };
    let _ = write!(
        s,
        r#"<text class="label" x="{mx:.1}" y="{first:.1}" text-anchor="middle" transform="rotate({angle:.2} {mx:.1} {my:.1})"{size}>"#
    );
    if let [one] = spot.lines.as_slice() {
        s.push_str(&esc(one));
    } else {
        for (k, l) in spot.lines.iter().enumerate() {
            let _ = write!(
                s,
                r#"<tspan x="{mx:.1}" dy="{}">{}</tspan>"#,
                if k == 0 { 0.0 } else { step },
                esc(l)
            );
        }
    }
    s.push_str("</text>");
    // The delayed ACK's wait: a bracket on the sender's line from the FIN's arrival.
    if a.delayed_ack_ns.is_some() {
        let fin_arrival = d
            .arrows
            .iter()
            .filter(|b| b.from == a.from.peer() && b.flags.contains('F'))
            .filter_map(|b| b.arrived_ns)
            .filter(|&t| t <= t0)
            .min();
        if let Some(tf) = fin_arrival {
            let (yf, bx) = (
                sc.y(tf),
                x0 + if a.from == Side::Server { 14.0 } else { -14.0 },
            );
            let _ = write!(
                s,
                r#"<path class="wait" d="M{x0:.1},{yf:.1}H{bx:.1}V{y0:.1}H{x0:.1}"/><text class="wait" x="{tx:.1}" y="{ty:.1}" text-anchor="{an}">{}</text>"#,
                esc(&match lang {
                    Lang::En => format!("delayed ACK: waits {}", duration(t0 - tf, lang)),
                    Lang::Zh => format!("延迟确认:等了{}", duration(t0 - tf, lang)),
                }),
                tx = bx + if a.from == Side::Server { 4.0 } else { -4.0 },
                ty = (yf + y0) / 2.0 + 4.0,
                an = if a.from == Side::Server {
                    "start"
                } else {
                    "end"
                },
            );
        }
    }
    // The narration beside it, with a faint leader from the arrow's start.
    let ny = sc.y(t0);
    let _ = write!(
        s,
        r#"<line class="leader" x1="{:.1}" y1="{ny:.1}" x2="{:.1}" y2="{ny:.1}"/><text class="narration" x="{NARRATION_X}" y="{:.1}">"#,
        SERVER_X.max(ax0.max(ax1)) + 4.0,
        NARRATION_X - 6.0,
        ny + 4.0
    );
    for (k, line) in narr.iter().enumerate() {
        let _ = write!(
            s,
            r#"<tspan x="{NARRATION_X}" dy="{}">{}</tspan>"#,
            if k == 0 { 0.0 } else { LINE_H },
            esc(line)
        );
    }
    s.push_str("</text></g>");
}

/// An arrow label's box on the page: a rectangle along its arrow, as four corners.
type Quad = [(f64, f64); 4];

/// The label font's size (CSS `svg .label`), px.
const LABEL_PX: f64 = 11.0;
/// A monospace character's advance, in font sizes (CJK characters take two).
const CHAR_EM: f64 = 0.6;
/// Room kept between a label and the time lines at either end of its arrow.
const LABEL_MARGIN: f64 = 8.0;

/// Where an arrow's label goes.
#[derive(Debug, Clone, PartialEq)]
struct LabelSpot {
    /// Fraction of the way from the arrow's start to its end.
    f: f64,
    /// Above the arrow (else below it).
    above: bool,
    /// Font size, px.
    size: f64,
    /// The label's lines (two when one line would cover another label).
    lines: Vec<String>,
    /// The box it covers.
    quad: Quad,
}

fn text_width(label: &str, size: f64) -> f64 {
    label
        .chars()
        .map(|c| if c.is_ascii() { 1.0 } else { 2.0 })
        .sum::<f64>()
        * CHAR_EM
        * size
}

/// The box of a label `w` wide and `lines` high in font `size`, centred at fraction `f` of
/// the arrow p0 → p1, above or below it (text reads left to right whichever way the arrow
/// goes).
fn label_quad(
    p0: (f64, f64),
    p1: (f64, f64),
    f: f64,
    above: bool,
    (w, lines, size): (f64, usize, f64),
) -> Quad {
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let len = dx.hypot(dy).max(1e-9);
    let mut u = (dx / len, dy / len);
    if u.0 < 0.0 {
        u = (-u.0, -u.1);
    }
    // "Up" from the text's baseline, on the page.
    let n = (u.1, -u.0);
    let c = (p0.0 + f * dx, p0.1 + f * dy);
    let h = size + (lines - 1) as f64 * (size + 2.0);
    let (lo, hi) = if above {
        (2.0, 4.0 + h)
    } else {
        (-(3.0 + h), -2.0)
    };
    let at = |along: f64, up: f64| (c.0 + u.0 * along + n.0 * up, c.1 + u.1 * along + n.1 * up);
    [
        at(-w / 2.0, lo),
        at(w / 2.0, lo),
        at(w / 2.0, hi),
        at(-w / 2.0, hi),
    ]
}

/// An arrow's line as a thin box (1.5 px either side).
fn line_quad(p0: (f64, f64), p1: (f64, f64)) -> Quad {
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let len = dx.hypot(dy).max(1e-9);
    let n = (-dy / len * 1.5, dx / len * 1.5);
    [
        (p0.0 + n.0, p0.1 + n.1),
        (p1.0 + n.0, p1.1 + n.1),
        (p1.0 - n.0, p1.1 - n.1),
        (p0.0 - n.0, p0.1 - n.1),
    ]
}

/// A quad's bounding box: left, top, right, bottom.
fn bbox(q: &Quad) -> (f64, f64, f64, f64) {
    q.iter().fold(
        (
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ),
        |(x0, y0, x1, y1), p| (x0.min(p.0), y0.min(p.1), x1.max(p.0), y1.max(p.1)),
    )
}

/// Boxes a label must not cover, ordered by their top, so that a label is checked only
/// against those near it in time (a long connection has thousands of arrows).
#[derive(Debug, Default)]
struct Obstacles {
    /// (bounding box, quad), by the box's top.
    items: Vec<((f64, f64, f64, f64), Quad)>,
    /// The tallest box's height.
    tallest: f64,
}

impl Obstacles {
    fn add(&mut self, q: Quad) {
        let b = bbox(&q);
        self.tallest = self.tallest.max(b.3 - b.1);
        let at = self.items.partition_point(|(o, _)| o.1 <= b.1);
        self.items.insert(at, (b, q));
    }

    /// Whether `q` covers any of them.
    fn hit(&self, q: &Quad) -> bool {
        let b = bbox(q);
        // Those whose top is above q's bottom, down to one tallest box above q's top.
        let end = self.items.partition_point(|(o, _)| o.1 < b.3);
        self.items[..end]
            .iter()
            .rev()
            .take_while(|(o, _)| o.1 >= b.1 - self.tallest)
            .any(|(o, oq)| o.0 < b.2 && b.0 < o.2 && o.1 < b.3 && b.1 < o.3 && overlaps(oq, q))
    }
}

/// Whether two convex quadrilaterals overlap (no separating axis among their edges).
fn overlaps(a: &Quad, b: &Quad) -> bool {
    let separated_along = |q: &Quad| {
        (0..4).any(|i| {
            let (p, r) = (q[i], q[(i + 1) % 4]);
            let axis = (r.1 - p.1, p.0 - r.0);
            let proj = |x: &Quad| {
                x.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        let d = v.0 * axis.0 + v.1 * axis.1;
                        (lo.min(d), hi.max(d))
                    })
            };
            let (a0, a1) = proj(a);
            let (b0, b1) = proj(b);
            a1 <= b0 || b1 <= a0
        })
    };
    !(separated_along(a) || separated_along(b))
}

/// A label in two lines, split at the separator nearest its middle (`, ack` in
/// `[F.] seq 1, ack 2, len 0`); `None` when it has none.
fn two_lines(label: &str) -> Option<Vec<String>> {
    let mid = label.len() / 2;
    let cut = [", ", " · "]
        .iter()
        .flat_map(|sep| label.match_indices(sep).map(|(i, m)| (i, m.len())))
        .min_by_key(|(i, _)| i.abs_diff(mid))?;
    let (head, tail) = label.split_at(cut.0);
    Some(vec![
        format!("{head}{}", tail[..cut.1].trim_end()),
        tail[cut.1..].to_owned(),
    ])
}

/// Place a label on the arrow p0 → p1: at `preferred` (a fraction of the way) above it, or
/// the first of a few other spots (below it, nearer either end; then the same in two
/// lines) that covers none of the labels in `placed` — and, where one can, none of the
/// other arrows' `lines` either; always within the arrow's length, shrinking the font when
/// the label is longer than the arrow.
fn place_label(
    p0: (f64, f64),
    p1: (f64, f64),
    label: &str,
    preferred: f64,
    placed: &Obstacles,
    lines: &Obstacles,
) -> LabelSpot {
    let len = (p1.0 - p0.0).hypot(p1.1 - p0.1);
    let room = (len - 2.0 * LABEL_MARGIN).max(1.0);
    let spots = |lines: Vec<String>| {
        let widest = |size: f64| {
            lines
                .iter()
                .map(|l| text_width(l, size))
                .fold(0.0, f64::max)
        };
        let mut size = LABEL_PX;
        if widest(size) > room {
            size = (LABEL_PX * room / widest(size)).max(7.5);
        }
        let w = widest(size);
        let edge = ((w / 2.0 + LABEL_MARGIN) / len.max(1.0)).min(0.5);
        let n = lines.len();
        [
            (preferred, true),
            (preferred, false),
            (0.25, true),
            (0.7, true),
            (0.25, false),
            (0.7, false),
        ]
        .map(|(f, above)| {
            let f = f.clamp(edge, 1.0 - edge);
            LabelSpot {
                f,
                above,
                size,
                lines: lines.clone(),
                quad: label_quad(p0, p1, f, above, (w, n, size)),
            }
        })
    };
    let one = spots(vec![label.to_owned()]);
    let two = two_lines(label).map(spots);
    let candidates = one.iter().chain(two.iter().flatten());
    let off_labels = |s: &&LabelSpot| !placed.hit(&s.quad);
    let off_lines = |s: &&LabelSpot| !lines.hit(&s.quad);
    candidates
        .clone()
        .find(|s| off_labels(s) && off_lines(s))
        .or_else(|| candidates.clone().find(off_labels))
        .unwrap_or(&one[0])
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Obstacles {
        Obstacles::default()
    }

    fn with(q: Quad) -> Obstacles {
        let mut o = Obstacles::default();
        o.add(q);
        o
    }

    /// Issue 17, "arrow labels can overlap": two FINs crossing in flight, with long
    /// labels, and two segments sent close together.
    #[test]
    fn labels_of_crossing_and_close_arrows_do_not_overlap() {
        let fin = "8 [F.] seq 3008864128, ack 2687213592, len 0";
        let a = ((CLIENT_X, 400.0), (SERVER_X, 520.0));
        let b = ((SERVER_X, 410.0), (CLIENT_X, 530.0));
        let first = place_label(a.0, a.1, fin, 0.36, &none(), &none());
        let second = place_label(b.0, b.1, fin, 0.36, &with(first.quad), &none());
        assert!(!overlaps(&first.quad, &second.quad), "{first:?} {second:?}");
        // Where the label used to go (fixed spot, full size), the two did overlap.
        let w = (text_width(fin, LABEL_PX), 1, LABEL_PX);
        let old_a = label_quad(a.0, a.1, 0.36, true, w);
        let old_b = label_quad(b.0, b.1, 0.36, true, w);
        assert!(overlaps(&old_a, &old_b));
        // Segments 14 px apart, same direction: the second label moves off the first.
        let data = "4 [P.] seq 3008864125:3008864128, ack 2687213586, len 3";
        let c = ((CLIENT_X, 600.0), (SERVER_X, 640.0));
        let e = ((CLIENT_X, 614.0), (SERVER_X, 654.0));
        let one = place_label(c.0, c.1, data, 0.36, &none(), &none());
        let two = place_label(e.0, e.1, data, 0.36, &with(one.quad), &none());
        assert!(!overlaps(&one.quad, &two.quad), "{one:?} {two:?}");
    }

    #[test]
    fn labels_stay_between_the_time_lines() {
        let long = "4 [P.] seq 3008864125:3008864128, ack 2687213586, len 3 · retransmission";
        let s = place_label(
            (CLIENT_X, 100.0),
            (SERVER_X, 100.0),
            long,
            0.36,
            &none(),
            &none(),
        );
        assert!(
            s.size < LABEL_PX,
            "a label longer than its arrow gets a smaller font"
        );
        for (x, _) in s.quad {
            assert!(
                (CLIENT_X + LABEL_MARGIN - 0.01..=SERVER_X - LABEL_MARGIN + 0.01).contains(&x),
                "{s:?}"
            );
        }
        // A label that fits keeps the font and its spot a third of the way.
        let short = "3 [.] ack 1, len 0";
        let s = place_label(
            (CLIENT_X, 100.0),
            (SERVER_X, 100.0),
            short,
            0.36,
            &none(),
            &none(),
        );
        assert_eq!((s.size, s.f, s.above), (LABEL_PX, 0.36, true));
        assert_eq!(
            two_lines("8 [F.] seq 3008864128, ack 2687213592, len 0").unwrap(),
            ["8 [F.] seq 3008864128,", "ack 2687213592, len 0"]
        );
    }
}
