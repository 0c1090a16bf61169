//! A sweep's page: what was swept, the boundary in words, the sweep's own pictures (the SVG
//! of `tcplab_sweep::chart`, inlined) with every grid point a link to its runs, and a table
//! of the points. Drawn from the point files, as `tcplab sweep` draws its outputs, so the
//! same point files give the same page, byte for byte.

use crate::batch::{batch_report, BatchOf, SweepPoint};
use crate::html::{esc, page};
use crate::layout::{href, run_dirs, PAGE_FILE};
use crate::parts::stacked_bar;
use crate::ReportError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tcplab_sweep::chart::{self, Svg};
use tcplab_sweep::store::POINTS_DIR;
use tcplab_sweep::{engine, PointSummary};
use tcplab_trace::render::Lang;

// `is_sweep` lives with the rest of the results layout, beneath this module and `dir.rs`;
// its old path.
pub use crate::layout::is_sweep;

/// Where a sweep keeps each point's runs (`runs/<point id>/run-NNNN/`).
pub const RUNS_DIR: &str = "runs";
/// Rows per page of the points table (pages need no script, as a batch's).
const ROWS_PER_PAGE: usize = 500;

/// Where each point links: its runs' page when the sweep kept runs of it, else its point
/// file (the runs' outcomes as JSON). Relative to the sweep directory.
fn point_link(dir: &Path, p: &PointSummary) -> (PathBuf, bool) {
    let id = p.point.id();
    let runs = Path::new(RUNS_DIR).join(&id);
    if !run_dirs(&dir.join(&runs)).is_empty() {
        (runs.join(PAGE_FILE), true)
    } else {
        (Path::new(POINTS_DIR).join(format!("{id}.json")), false)
    }
}

fn counts(p: &PointSummary) -> Vec<(String, u64)> {
    p.outcomes
        .iter()
        .map(|o| (o.key.to_string(), o.count))
        .collect()
}

fn counts_text(p: &PointSummary) -> String {
    crate::parts::sorted(&counts(p))
        .iter()
        .map(|(o, n)| format!("{o} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sweep point whose kept runs `dir` holds (`<sweep>/runs/<point id>/`), if it is one.
pub(crate) fn point_of(dir: &Path) -> Option<SweepPoint> {
    let runs = dir.parent()?;
    let sweep = runs.parent()?;
    if runs.file_name()? != RUNS_DIR || !is_sweep(sweep) {
        return None;
    }
    let id = dir.file_name()?.to_str()?;
    let manifest = engine::read_manifest(sweep).ok()?;
    let (_, points, _) = engine::load(sweep, &manifest).ok()?;
    let p = points.iter().find(|p| p.point.id() == id)?;
    Some(SweepPoint {
        label: p.point.label(),
        counts: counts(p),
        sweep_page: format!("../../{PAGE_FILE}"),
    })
}

/// A chart inlined, with a transparent link over each point's bar, cell or marker.
fn chart_html(svg: &Svg, points: &[PointSummary], links: &[String]) -> String {
    // Points come in grid order.
    let by_index = |i: usize| points.binary_search_by_key(&i, |p| p.point.index).ok();
    let mut overlay = String::from("<g class=\"points\">");
    for a in &svg.areas {
        let Some(k) = by_index(a.index) else { continue };
        let p = &points[k];
        let (l, t, r, b) = a.rect;
        let _ = write!(
            overlay,
            "<a class=\"point\" href=\"{}\" data-point=\"{}\"><title>{}: {}</title><rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\"/></a>",
            links[k],
            p.point.index,
            esc(&p.point.label()),
            esc(&counts_text(p)),
            r - l,
            b - t
        );
    }
    overlay.push_str("</g></svg>");
    let text = svg.text.trim_end();
    let body = text.strip_suffix("</svg>").unwrap_or(text);
    let body = body.replacen(
        "<svg ",
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" data-chart=\"{}\" ",
            esc(svg.name),
            esc(svg.name)
        ),
        1,
    );
    format!("<figure>{body}{overlay}<figcaption>{} (also <a href=\"{}\">{}</a> in the sweep's directory)</figcaption></figure>", caption(svg.name), href(Path::new(svg.name)), esc(svg.name))
}

fn caption(name: &str) -> &'static str {
    match name {
        "outcomes.svg" => "Share of each outcome at each value of the knob: one bar per point, click a bar for its runs",
        "timing.svg" => "How long the separate ACK waited (median and p10–p90 of the runs that had one): click a marker for its runs",
        "phase.svg" => "The most frequent outcome at each pair of values, lighter where it dominates less: click a cell for its runs",
        _ => "",
    }
}

/// Write `dir/report.html` for the sweep in `dir` (and a page for each point whose runs were
/// kept); the page's path and the boundary in one sentence (for an index).
pub fn write_sweep_report(dir: &Path, lang: Lang) -> Result<(PathBuf, String), ReportError> {
    let bad = |e: &dyn std::fmt::Display| ReportError::Results {
        dir: dir.to_owned(),
        message: e.to_string(),
    };
    let manifest = engine::read_manifest(dir).map_err(|e| bad(&e))?;
    let (grid, points, lines) = engine::load(dir, &manifest).map_err(|e| bad(&e))?;
    let svgs = chart::render_all(&manifest.scenario, manifest.repeat, &grid, &points, &lines)
        .map_err(|e| bad(&e))?;
    let mut links = Vec::with_capacity(points.len());
    for p in &points {
        let (link, runs) = point_link(dir, p);
        if runs {
            let point = SweepPoint {
                label: p.point.label(),
                counts: counts(p),
                sweep_page: format!("../../{PAGE_FILE}"),
            };
            batch_report(
                &dir.join(RUNS_DIR).join(p.point.id()),
                lang,
                BatchOf::SweepPoint(&point),
            )?;
        }
        links.push(href(&link));
    }
    let sentence = lines
        .iter()
        .map(|l| match &l.fixed {
            Some((k, v)) => format!("at {k}={}: {}", v.text, l.sentence()),
            None => l.sentence(),
        })
        .collect::<Vec<_>>()
        .join("; ");

    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>tcplab sweep: {}</h1><p class=\"muted\">{}</p>",
        esc(&manifest.scenario),
        esc(&dir.display().to_string())
    );
    b.push_str("<ul>");
    for k in &grid.knobs {
        let vals: Vec<&str> = k.values.iter().map(|v| v.text.as_str()).collect();
        let shown = if vals.len() > 12 {
            format!(
                "{} … {} ({} values)",
                vals[..6].join(", "),
                vals[vals.len() - 3..].join(", "),
                vals.len()
            )
        } else {
            vals.join(", ")
        };
        let unit = k.unit();
        let _ = write!(
            b,
            "<li>varied: <code>{}</code> = {}{}</li>",
            esc(&k.key),
            esc(&shown),
            if unit.is_empty() {
                String::new()
            } else {
                format!(" {}", esc(unit))
            }
        );
    }
    let _ = write!(
        b,
        "<li>{} runs per point; {} of {} points have results{}</li></ul>",
        manifest.repeat,
        points.len(),
        grid.len(),
        if points.len() < grid.len() {
            " (the sweep was stopped or sharded: run it again, or merge its shards, to fill in the rest)"
        } else {
            ""
        }
    );
    // One knob: the boundary in a sentence, then the pictures. Two knobs: the phase picture
    // first, then its rows' boundaries (one line per value of the second knob), folded.
    let mut words = String::from("<h2>where the teardown changes</h2>");
    words.push_str("<p class=\"note\">At each point the <em>dominant</em> outcome is the one most runs gave. The boundary lies between the last value where one outcome dominates and the first where another does; a point where several outcomes occur is said with their shares.</p>");
    if lines.is_empty() {
        words.push_str("<p>no results yet</p>");
    }
    let folded = lines.len() > 3;
    if folded {
        let _ = write!(
            words,
            "<details><summary>the boundary along {}, for each of the {} values of the other knob</summary>",
            esc(&lines[0].knob),
            lines.len()
        );
    }
    for l in &lines {
        let head = match &l.fixed {
            Some((k, v)) => format!("along {} (at {k}={})", l.knob, v.text),
            None => format!("along {}", l.knob),
        };
        let _ = write!(
            words,
            "<p class=\"boundary\"><b>{}:</b> {}</p>",
            esc(&head),
            esc(&l.sentence())
        );
    }
    if folded {
        words.push_str("</details>");
    }
    let mut pictures = String::from("<h2>pictures</h2>");
    for svg in &svgs {
        pictures.push_str(&chart_html(svg, &points, &links));
    }
    if folded {
        b.push_str(&pictures);
        b.push_str(&words);
    } else {
        b.push_str(&words);
        b.push_str(&pictures);
    }
    b.push_str("<h2>points</h2>");
    let pages: Vec<&[PointSummary]> = points.chunks(ROWS_PER_PAGE).collect();
    let link_of: Vec<&String> = links.iter().collect();
    if pages.len() > 1 {
        b.push_str("<nav class=\"pages\">pages: ");
        for i in 0..pages.len() {
            let _ = write!(b, "<a href=\"#p{n}\">{n}</a>", n = i + 1);
        }
        b.push_str("</nav>");
    }
    let order: Vec<usize> = (1..pages.len()).chain(std::iter::once(0)).collect();
    for i in order {
        let _ = write!(
            b,
            "<section class=\"page{}\" id=\"p{}\"><table class=\"points\"><tr><th>point</th><th>runs</th><th>outcomes</th><th></th><th>FIN→ACK (median)</th><th>close (median)</th></tr>",
            if i == 0 { " first" } else { "" },
            i + 1
        );
        for (k, p) in pages[i].iter().enumerate() {
            let link = link_of[i * ROWS_PER_PAGE + k];
            let dom = p.dominant();
            let ms = |s: Option<tcplab_sweep::outcome::Stats>| {
                s.map_or(String::new(), |s| format!("{:.1} ms", s.median))
            };
            let _ = write!(
                b,
                "<tr data-point=\"{}\"><td><a href=\"{link}\">{}</a></td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                p.point.index,
                esc(&p.point.label()),
                p.runs,
                stacked_bar(&counts(p)),
                esc(&counts_text(p)),
                ms(dom.and_then(|d| d.fin_ack_delay)),
                ms(dom.and_then(|d| d.close_duration)),
            );
        }
        b.push_str("</table></section>");
    }
    b.push_str("<p class=\"muted\">A point links to its runs' page when the sweep kept runs of it (<code>--pcaps sample</code>, the default, keeps one run of each outcome), else to its point file. The tables are also in results.csv and results.json.</p>");
    let html = page(&format!("tcplab sweep {}", manifest.scenario), &b);
    let p = dir.join(PAGE_FILE);
    std::fs::write(&p, html).map_err(|source| ReportError::Io {
        path: p.clone(),
        source,
    })?;
    Ok((p, sentence))
}
