//! SVG pictures of a sweep, drawn with plotters' SVG backend.
//!
//! - one knob: `outcomes.svg`, stacked bars of outcome shares against the knob, the boundary
//!   as dashed vertical lines with a label; `timing.svg`, the FIN → separate-ACK delay
//!   (median, p10–p90) against the knob, with the knob itself as a reference line when it is a
//!   delay in ms (the boundary sits where the two cross).
//! - two knobs: `phase.svg`, a heat map of the dominant outcome per point, lighter where it
//!   dominates less, with the phase boundary drawn between cells.
//!
//! Every outcome has one colour everywhere ([`colour`]).

use crate::boundary::Line;
use crate::knob::{canonical, Vary};
use crate::outcome::{OutcomeKey, PointSummary};
use crate::plan::Grid;
use plotters::coord::Shift;
use plotters::prelude::*;
use tcplab_trace::{Closer, TeardownKind};

/// Picture size in pixels.
const SIZE: (u32, u32) = (1000, 560);
/// Width of the legend column on the right.
const LEGEND_W: u32 = 250;
const FONT: &str = "sans-serif";

/// Drawing a chart failed (in practice: formatting into the in-memory SVG).
#[derive(Debug, thiserror::Error)]
#[error("drawing {chart}: {message}")]
pub struct ChartError {
    /// Which picture.
    pub chart: &'static str,
    /// What plotters said.
    pub message: String,
}

fn err<E: std::fmt::Display>(chart: &'static str) -> impl Fn(E) -> ChartError {
    move |e| ChartError {
        chart,
        message: e.to_string(),
    }
}

/// The colour of an outcome: one hue per kind (the seed's two kinds blue and orange), a darker
/// shade when the client rather than the server closed first.
pub fn colour(key: OutcomeKey) -> RGBColor {
    let base = match key {
        OutcomeKey::Teardown(kind, _) => match kind {
            TeardownKind::ThreeWay => RGBColor(0x1f, 0x77, 0xb4),
            TeardownKind::FourWay => RGBColor(0xff, 0x7f, 0x0e),
            TeardownKind::Simultaneous => RGBColor(0x2c, 0xa0, 0x2c),
            TeardownKind::Reset => RGBColor(0xd6, 0x27, 0x28),
            TeardownKind::Incomplete => RGBColor(0x94, 0x67, 0xbd),
            TeardownKind::Open => RGBColor(0x7f, 0x7f, 0x7f),
        },
        OutcomeKey::Error => RGBColor(0x30, 0x30, 0x30),
    };
    match key.closer() {
        Some(Closer::Client) => darken(base, 0.3),
        _ => base,
    }
}

fn darken(c: RGBColor, by: f64) -> RGBColor {
    let f = |x: u8| (f64::from(x) * (1.0 - by)).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

fn lighten(c: RGBColor, by: f64) -> RGBColor {
    let f = |x: u8| (f64::from(x) + (255.0 - f64::from(x)) * by).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// Axis title of a knob: `server.close_delay_ms (ms)`.
fn axis_title(k: &Vary) -> String {
    match k.unit() {
        "" => k.key.clone(),
        u => format!("{} ({u})", k.key),
    }
}

/// Where each value of a knob sits on the x axis: the number itself when every value is a
/// number (so uneven grids are drawn to scale), else its position in the list.
fn positions(k: &Vary) -> Vec<f64> {
    if k.is_numeric() {
        k.values.iter().map(|v| v.num.unwrap_or(0.0)).collect()
    } else {
        (0..k.values.len()).map(|i| i as f64).collect()
    }
}

/// Smallest gap between neighbouring positions (1 for a single value).
fn min_gap(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let g = v
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .fold(f64::INFINITY, f64::min);
    finite_or(g, 1.0)
}

fn finite_or(x: f64, or: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        or
    }
}

/// The x range that holds every position with room for half a bar on each side.
fn x_range(xs: &[f64], gap: f64) -> (f64, f64) {
    let lo = finite_or(xs.iter().copied().fold(f64::INFINITY, f64::min), 0.0);
    let hi = finite_or(xs.iter().copied().fold(f64::NEG_INFINITY, f64::max), 0.0);
    (lo - gap * 0.6, hi + gap * 0.6)
}

/// A knob's values on the x axis, as the outcome and timing charts both place them.
struct XAxis<'a> {
    knob: &'a Vary,
    /// Each value's position ([`positions`]).
    xs: Vec<f64>,
    /// The smallest gap between neighbours ([`min_gap`]): the width bars are drawn to.
    gap: f64,
    /// The axis range ([`x_range`]).
    lo: f64,
    hi: f64,
}

impl<'a> XAxis<'a> {
    fn new(knob: &'a Vary) -> XAxis<'a> {
        let xs = positions(knob);
        let gap = min_gap(&xs);
        let (lo, hi) = x_range(&xs, gap);
        XAxis {
            knob,
            xs,
            gap,
            lo,
            hi,
        }
    }

    /// Where the value written `text` sits (`None`: not one of the knob's values).
    fn at(&self, text: &str) -> Option<f64> {
        self.knob
            .values
            .iter()
            .position(|v| v.text == text)
            .and_then(|i| self.xs.get(i).copied())
    }
}

/// Outcomes present in the data, in legend order.
fn present(points: &[PointSummary]) -> Vec<OutcomeKey> {
    let mut keys: Vec<OutcomeKey> = points
        .iter()
        .flat_map(|p| p.outcomes.iter().map(|o| o.key))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A finished SVG picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Svg {
    /// File name in the sweep directory.
    pub name: &'static str,
    /// The document.
    pub text: String,
    /// Where each drawn grid point is, so a page can make it a link (the report's sweep
    /// page links each to the point's runs).
    pub areas: Vec<PointArea>,
}

/// Where a grid point is drawn in a picture: a bar, a cell or a marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointArea {
    /// The point's index in the grid ([`crate::plan::Point::index`]).
    pub index: usize,
    /// Left, top, right, bottom, in the picture's pixels.
    pub rect: (i32, i32, i32, i32),
}

impl PointArea {
    fn between(index: usize, a: (i32, i32), b: (i32, i32)) -> PointArea {
        PointArea {
            index,
            rect: (a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)),
        }
    }
}

/// Every picture for this sweep.
pub fn render_all(
    scenario: &str,
    repeat: u32,
    grid: &Grid,
    points: &[PointSummary],
    lines: &[Line],
) -> Result<Vec<Svg>, ChartError> {
    match grid.knobs.as_slice() {
        [x] => {
            let (text, areas) = outcomes_with_areas(scenario, repeat, x, points, lines)?;
            let outcomes = Svg {
                name: "outcomes.svg",
                text,
                areas,
            };
            let (text, areas) = timing_with_areas(scenario, x, points)?;
            Ok(vec![
                outcomes,
                Svg {
                    name: "timing.svg",
                    text,
                    areas,
                },
            ])
        }
        [x, y] => {
            let (text, areas) = phase_with_areas(scenario, repeat, x, y, points)?;
            Ok(vec![Svg {
                name: "phase.svg",
                text,
                areas,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

fn legend_entries(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    keys: &[OutcomeKey],
    extra: &[&str],
) -> Result<(), ChartError> {
    let e = err("legend");
    let title_style = (FONT, 17).into_font().style(FontStyle::Bold).color(&BLACK);
    area.draw(&Text::new(title.to_string(), (10, 50), title_style))
        .map_err(&e)?;
    let mut y = 80;
    for k in keys {
        area.draw(&Rectangle::new(
            [(10, y), (32, y + 18)],
            colour(*k).filled(),
        ))
        .map_err(&e)?;
        area.draw(&Rectangle::new(
            [(10, y), (32, y + 18)],
            BLACK.stroke_width(1),
        ))
        .map_err(&e)?;
        area.draw(&Text::new(
            k.to_string(),
            (42, y + 2),
            (FONT, 16).into_font().color(&BLACK),
        ))
        .map_err(&e)?;
        y += 28;
    }
    y += 8;
    for line in extra {
        area.draw(&Text::new(
            line.to_string(),
            (10, y),
            (FONT, 14).into_font().color(&BLACK),
        ))
        .map_err(&e)?;
        y += 20;
    }
    Ok(())
}

/// Stacked bars of outcome shares against one knob, the boundary marked.
pub fn outcomes(
    scenario: &str,
    repeat: u32,
    knob: &Vary,
    points: &[PointSummary],
    lines: &[Line],
) -> Result<String, ChartError> {
    outcomes_with_areas(scenario, repeat, knob, points, lines).map(|(svg, _)| svg)
}

fn outcomes_with_areas(
    scenario: &str,
    repeat: u32,
    knob: &Vary,
    points: &[PointSummary],
    lines: &[Line],
) -> Result<(String, Vec<PointArea>), ChartError> {
    let e = err("outcomes.svg");
    let mut areas = Vec::new();
    let axis = XAxis::new(knob);
    let (gap, lo, hi) = (axis.gap, axis.lo, axis.hi);
    let x_at = |text: &str| axis.at(text);
    let keys = present(points);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("{scenario}: teardown outcome by {}", knob.key),
                (FONT, 22),
            )
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0f64..100f64)
            .map_err(&e)?;
        let numeric = knob.is_numeric();
        let labels: Vec<String> = knob.values.iter().map(|v| v.text.clone()).collect();
        let fmt_x = move |x: &f64| {
            if numeric {
                canonical(*x)
            } else {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(axis_title(knob))
            .y_desc(format!("share of runs (%), {repeat} runs per point"))
            .x_labels(if numeric {
                12
            } else {
                knob.values.len().min(30)
            })
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .axis_desc_style((FONT, 17))
            .label_style((FONT, 14))
            .draw()
            .map_err(&e)?;
        let half = gap * 0.4;
        let mut bars = Vec::new();
        for p in points {
            let Some(x) = p.point.values.first().and_then(|(_, v)| x_at(&v.text)) else {
                continue;
            };
            // The whole column, so that a point is a link even where its bar is thin.
            areas.push(PointArea::between(
                p.point.index,
                chart.backend_coord(&(x - half, 100.0)),
                chart.backend_coord(&(x + half, 0.0)),
            ));
            let mut y = 0.0;
            for o in &p.outcomes {
                let top = (y + o.share * 100.0).min(100.0);
                bars.push(Rectangle::new(
                    [(x - half, y), (x + half, top)],
                    colour(o.key).filled(),
                ));
                y = top;
            }
        }
        chart.draw_series(bars).map_err(&e)?;
        // Labels of boundaries step down one row each, so that two near each other stay
        // apart.
        let mut row = 0;
        for line in lines {
            for t in &line.transitions {
                let (Some(a), Some(b)) = (x_at(&t.last.text), x_at(&t.first.text)) else {
                    continue;
                };
                let x = (a + b) / 2.0;
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x, 0.0), (x, 100.0)],
                        8,
                        5,
                        BLACK.stroke_width(3),
                    ))
                    .map_err(&e)?;
                let unit = knob.unit();
                let label = format!("boundary {}–{} {unit}", t.last.text, t.first.text);
                // A white box behind the label keeps it readable over any bar colour.
                let (px, py) = chart.backend_coord(&(x, 100.0));
                let w = (label.chars().count() as i32) * 9 + 8;
                // Right of the line, or left of it where it would run into the legend.
                let right_edge = (SIZE.0 - LEGEND_W) as i32 - 12;
                let left = if px + 4 + w > right_edge {
                    px - 4 - w
                } else {
                    px + 4
                };
                let top_left = (left, py + 6 + 26 * row);
                row += 1;
                plot.draw(&Rectangle::new(
                    [top_left, (top_left.0 + w, top_left.1 + 22)],
                    WHITE.mix(0.9).filled(),
                ))
                .map_err(&e)?;
                plot.draw(&Text::new(
                    label,
                    (top_left.0 + 4, top_left.1 + 3),
                    (FONT, 16).into_font().style(FontStyle::Bold).color(&BLACK),
                ))
                .map_err(&e)?;
            }
        }
        legend_entries(
            &legend,
            "outcome",
            &keys,
            &["- - -  boundary (dominant", "          outcome changes)"],
        )?;
        root.present().map_err(&e)?;
    }
    Ok((svg, areas))
}

/// FIN → separate-ACK delay against one knob (four-way runs have one).
pub fn timing(scenario: &str, knob: &Vary, points: &[PointSummary]) -> Result<String, ChartError> {
    timing_with_areas(scenario, knob, points).map(|(svg, _)| svg)
}

fn timing_with_areas(
    scenario: &str,
    knob: &Vary,
    points: &[PointSummary],
) -> Result<(String, Vec<PointArea>), ChartError> {
    let e = err("timing.svg");
    let mut areas = Vec::new();
    let axis = XAxis::new(knob);
    let (lo, hi) = (axis.lo, axis.hi);
    let x_at = |text: &str| axis.at(text);
    // (outcome, x, p10, median, p90, point index) of every outcome that has a FIN → ACK
    // delay.
    let mut samples = Vec::new();
    for p in points {
        let Some(x) = p.point.values.first().and_then(|(_, v)| x_at(&v.text)) else {
            continue;
        };
        for o in &p.outcomes {
            if let Some(s) = o.fin_ack_delay {
                samples.push((o.key, x, s.p10, s.median, s.p90, p.point.index));
            }
        }
    }
    let reference = knob.unit() == "ms" && knob.is_numeric();
    let mut y_max = samples.iter().map(|s| s.4).fold(0.0, f64::max);
    if reference {
        y_max = y_max.max(hi);
    }
    let y_max = (y_max * 1.1).max(1.0);
    let mut keys: Vec<OutcomeKey> = samples.iter().map(|s| s.0).collect();
    keys.sort();
    keys.dedup();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("{scenario}: FIN → separate ACK delay by {}", knob.key),
                (FONT, 22),
            )
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0f64..y_max)
            .map_err(&e)?;
        let numeric = knob.is_numeric();
        let labels: Vec<String> = knob.values.iter().map(|v| v.text.clone()).collect();
        let fmt_x = move |x: &f64| {
            if numeric {
                canonical(*x)
            } else {
                labels
                    .get(x.round().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            }
        };
        chart
            .configure_mesh()
            .x_desc(axis_title(knob))
            .y_desc("delay of the separate ACK (ms): median, p10–p90")
            .y_label_formatter(&|y| canonical(*y))
            .x_labels(if numeric {
                12
            } else {
                knob.values.len().min(30)
            })
            .x_label_formatter(&fmt_x)
            .axis_desc_style((FONT, 17))
            .label_style((FONT, 14))
            .draw()
            .map_err(&e)?;
        if reference {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(lo.max(0.0), lo.max(0.0)), (hi, hi)],
                    6,
                    6,
                    RGBColor(0x60, 0x60, 0x60).stroke_width(2),
                ))
                .map_err(&e)?;
        }
        for k in &keys {
            let c = colour(*k);
            let mut mine: Vec<(f64, f64, f64, f64)> = samples
                .iter()
                .filter(|s| s.0 == *k)
                .map(|s| (s.1, s.2, s.3, s.4))
                .collect();
            mine.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(
                    mine.iter()
                        .map(|s| ErrorBar::new_vertical(s.0, s.1, s.2, s.3, c.stroke_width(2), 10)),
                )
                .map_err(&e)?;
            chart
                .draw_series(LineSeries::new(
                    mine.iter().map(|s| (s.0, s.2)),
                    c.stroke_width(2),
                ))
                .map_err(&e)?;
            chart
                .draw_series(mine.iter().map(|s| Circle::new((s.0, s.2), 4, c.filled())))
                .map_err(&e)?;
        }
        // Each marker, from p90 to p10 and a little wider than the error bar.
        for s in &samples {
            let (top, bottom) = (
                chart.backend_coord(&(s.1, s.4)),
                chart.backend_coord(&(s.1, s.2)),
            );
            areas.push(PointArea::between(
                s.5,
                (top.0 - 8, top.1 - 6),
                (bottom.0 + 8, bottom.1 + 6),
            ));
        }
        let mut extra = vec!["I  median, p10–p90 of the runs"];
        if reference {
            extra.push("- - -  y = knob value: the closer's");
            extra.push("          delay; where it passes the");
            extra.push("          ACK delay, the kind flips");
        }
        if keys.is_empty() {
            extra.push("(no run had a separate ACK)");
        }
        legend_entries(&legend, "FIN → ACK delay of", &keys, &extra)?;
        root.present().map_err(&e)?;
    }
    Ok((svg, areas))
}

/// Heat map (phase diagram): x = first knob, y = second knob, colour = dominant outcome,
/// lighter = smaller share; a thick line wherever neighbouring cells differ.
pub fn phase(
    scenario: &str,
    repeat: u32,
    kx: &Vary,
    ky: &Vary,
    points: &[PointSummary],
) -> Result<String, ChartError> {
    phase_with_areas(scenario, repeat, kx, ky, points).map(|(svg, _)| svg)
}

fn phase_with_areas(
    scenario: &str,
    repeat: u32,
    kx: &Vary,
    ky: &Vary,
    points: &[PointSummary],
) -> Result<(String, Vec<PointArea>), ChartError> {
    let e = err("phase.svg");
    let mut areas = Vec::new();
    let (nx, ny) = (kx.values.len(), ky.values.len());
    // Dominant outcome and its share per cell.
    let mut cells: Vec<Option<(OutcomeKey, f64)>> = vec![None; nx * ny];
    let mut indices = Vec::new();
    for p in points {
        let (Some((_, vx)), Some((_, vy))) = (p.point.values.first(), p.point.values.get(1)) else {
            continue;
        };
        let ix = kx.values.iter().position(|v| v.text == vx.text);
        let iy = ky.values.iter().position(|v| v.text == vy.text);
        if let (Some(ix), Some(iy), Some(d)) = (ix, iy, p.dominant()) {
            cells[iy * nx + ix] = Some((d.key, d.share));
            indices.push((ix, iy, p.point.index));
        }
    }
    let cell = |ix: usize, iy: usize| cells.get(iy * nx + ix).copied().flatten();
    let mut keys: Vec<OutcomeKey> = cells.iter().flatten().map(|c| c.0).collect();
    keys.sort();
    keys.dedup();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{scenario}: dominant teardown outcome"), (FONT, 22))
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..nx as f64 - 0.5, -0.5f64..ny as f64 - 0.5)
            .map_err(&e)?;
        let lx: Vec<String> = kx.values.iter().map(|v| v.text.clone()).collect();
        let ly: Vec<String> = ky.values.iter().map(|v| v.text.clone()).collect();
        let pick = |labels: &[String], v: f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let fx = |v: &f64| pick(&lx, *v);
        let fy = |v: &f64| pick(&ly, *v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(axis_title(kx))
            .y_desc(axis_title(ky))
            .x_labels(nx.min(25))
            .y_labels(ny.min(25))
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .axis_desc_style((FONT, 17))
            .label_style((FONT, 14))
            .draw()
            .map_err(&e)?;
        let mut rects = Vec::new();
        let mut labels = Vec::new();
        let show_text = nx <= 16 && ny <= 16;
        for iy in 0..ny {
            for ix in 0..nx {
                let (x, y) = (ix as f64, iy as f64);
                let corners = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
                match cell(ix, iy) {
                    Some((k, share)) => {
                        // Share 1 → full colour; share 0.5 → much lighter.
                        let c = lighten(colour(k), ((1.0 - share) * 1.4).min(0.8));
                        rects.push(Rectangle::new(corners, c.filled()));
                        if show_text {
                            // Readable on dark and light cells alike.
                            let luma = 0.299 * f64::from(c.0)
                                + 0.587 * f64::from(c.1)
                                + 0.114 * f64::from(c.2);
                            let ink = if luma < 140.0 { WHITE } else { BLACK };
                            labels.push(Text::new(
                                format!("{:.0}%", share * 100.0),
                                (x - 0.2, y + 0.1),
                                (FONT, 15).into_font().color(&ink),
                            ));
                        }
                    }
                    None => {
                        rects.push(Rectangle::new(corners, RGBColor(0xee, 0xee, 0xee).filled()))
                    }
                }
            }
        }
        chart.draw_series(rects).map_err(&e)?;
        chart.draw_series(labels).map_err(&e)?;
        for (ix, iy, index) in &indices {
            let (x, y) = (*ix as f64, *iy as f64);
            areas.push(PointArea::between(
                *index,
                chart.backend_coord(&(x - 0.5, y + 0.5)),
                chart.backend_coord(&(x + 0.5, y - 0.5)),
            ));
        }
        // Phase boundary: between horizontally or vertically adjacent cells that differ.
        let differs = |a: Option<(OutcomeKey, f64)>, b: Option<(OutcomeKey, f64)>| match (a, b) {
            (Some(a), Some(b)) => a.0 != b.0,
            _ => false,
        };
        let mut edges = Vec::new();
        for iy in 0..ny {
            for ix in 0..nx {
                let (x, y) = (ix as f64, iy as f64);
                if ix + 1 < nx && differs(cell(ix, iy), cell(ix + 1, iy)) {
                    edges.push(vec![(x + 0.5, y - 0.5), (x + 0.5, y + 0.5)]);
                }
                if iy + 1 < ny && differs(cell(ix, iy), cell(ix, iy + 1)) {
                    edges.push(vec![(x - 0.5, y + 0.5), (x + 0.5, y + 0.5)]);
                }
            }
        }
        for edge in edges {
            chart
                .draw_series(LineSeries::new(edge, BLACK.stroke_width(4)))
                .map_err(&e)?;
        }
        let runs = format!("{repeat} runs per cell");
        legend_entries(
            &legend,
            "dominant outcome",
            &keys,
            &[
                "lighter = dominates less;",
                "cell text = its share",
                "thick line = phase boundary",
                "grey = not run yet",
                runs.as_str(),
            ],
        )?;
        root.present().map_err(&e)?;
    }
    Ok((svg, areas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    fn tw() -> Outcome {
        Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server))
    }
    fn fw(delay_ms: i64) -> Outcome {
        Outcome {
            fin_ack_delay_ns: Some(delay_ms * 1_000_000),
            ..Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
        }
    }

    fn one_knob() -> (Grid, Vec<PointSummary>) {
        let grid = Grid::new(vec![Vary::parse("server.close_delay_ms=0..100:5").unwrap()]).unwrap();
        let pts = grid
            .points()
            .into_iter()
            .map(|p| {
                let x = p.values[0].1.num.unwrap_or(0.0);
                let runs = if x < 40.0 {
                    vec![tw(); 4]
                } else if x < 45.0 {
                    vec![tw(), tw(), fw(40), fw(41)]
                } else {
                    vec![fw(40), fw(40), fw(41), fw(42)]
                };
                PointSummary::new(p, &runs)
            })
            .collect();
        (grid, pts)
    }

    /// Minimal well-formedness: every `<tag` opened is closed (or self-closing), in order.
    fn assert_xmlish(svg: &str) {
        assert!(
            svg.starts_with("<svg"),
            "starts with <svg: {}",
            &svg[..40.min(svg.len())]
        );
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').expect("tag closes") + i;
            let tag = &rest[i + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                stack.push(name.to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn one_knob_svgs_have_axes_legend_and_boundary() {
        let (grid, pts) = one_knob();
        let lines = crate::boundary::analyze(&grid, &pts);
        let svgs = render_all("seed", 4, &grid, &pts, &lines).unwrap();
        assert_eq!(
            svgs.iter().map(|s| s.name).collect::<Vec<_>>(),
            ["outcomes.svg", "timing.svg"]
        );
        let o = &svgs[0].text;
        assert_xmlish(o);
        for needle in [
            "server.close_delay_ms (ms)",
            "share of runs (%), 4 runs per point",
            "three-way/server",
            "four-way/client",
            "boundary 40–45 ms",
            "seed: teardown outcome by server.close_delay_ms",
        ] {
            assert!(o.contains(needle), "outcomes.svg lacks {needle:?}");
        }
        // Colours are the outcome colours.
        assert!(o.contains("#1F77B4") || o.contains("#1f77b4"));
        // One link area per grid point, inside the picture, left to right.
        let areas = &svgs[0].areas;
        assert_eq!(areas.len(), pts.len());
        for (a, p) in areas.iter().zip(&pts) {
            assert_eq!(a.index, p.point.index);
            let (l, t, r, b) = a.rect;
            assert!(
                0 <= l && l < r && r <= SIZE.0 as i32 && 0 <= t && t < b && b <= SIZE.1 as i32,
                "{a:?}"
            );
        }
        assert!(areas.windows(2).all(|w| w[0].rect.2 <= w[1].rect.0));
        let t = &svgs[1].text;
        assert_xmlish(t);
        assert!(t.contains("delay of the separate ACK (ms)"));
        assert!(t.contains("four-way/client"));
    }

    /// A boundary near the right end: its label goes left of the line, not over the legend.
    #[test]
    fn a_boundary_label_near_the_right_edge_stays_off_the_legend() {
        let grid = Grid::new(vec![Vary::parse("server.close_delay_ms=0..100:5").unwrap()]).unwrap();
        let pts: Vec<PointSummary> = grid
            .points()
            .into_iter()
            .map(|p| {
                let x = p.values[0].1.num.unwrap_or(0.0);
                PointSummary::new(
                    p,
                    &if x < 95.0 {
                        vec![tw(); 2]
                    } else {
                        vec![fw(40); 2]
                    },
                )
            })
            .collect();
        let lines = crate::boundary::analyze(&grid, &pts);
        let svg = outcomes("seed", 2, &grid.knobs[0], &pts, &lines).unwrap();
        let at = svg.find("boundary 90–95 ms").expect("label");
        // plotters clips the white box to the plot, not the text: the text's start plus its
        // width (9 px a character, as drawn) must end before the legend.
        let text = &svg[svg[..at].rfind("<text").unwrap()..at];
        let i = text.find(" x=\"").unwrap() + 4;
        let x: f64 = text[i..i + text[i..].find('"').unwrap()].parse().unwrap();
        let w = "boundary 90–95 ms".chars().count() as f64 * 9.0;
        assert!(x + w <= f64::from(SIZE.0 - LEGEND_W), "{text}");
    }

    #[test]
    fn two_knob_svg_is_a_phase_diagram() {
        let grid = Grid::new(vec![
            Vary::parse("server.close_delay_ms=0,20,60,100").unwrap(),
            Vary::parse("client.close_delay_ms=0,20,60").unwrap(),
        ])
        .unwrap();
        let pts: Vec<PointSummary> = grid
            .points()
            .into_iter()
            .take(10) // two cells left "not run yet"
            .map(|p| {
                let runs = if p.values[0].1.num > Some(40.0) {
                    vec![fw(40); 2]
                } else {
                    vec![tw(); 2]
                };
                PointSummary::new(p, &runs)
            })
            .collect();
        let svgs = render_all("grid", 2, &grid, &pts, &[]).unwrap();
        assert_eq!(svgs.len(), 1);
        let s = &svgs[0].text;
        assert_xmlish(s);
        // One cell area per point that ran, none for the two that did not.
        assert_eq!(svgs[0].areas.len(), 10);
        for needle in [
            "client.close_delay_ms (ms)",
            "server.close_delay_ms (ms)",
            "dominant outcome",
            "100%",
            "four-way/client",
        ] {
            assert!(s.contains(needle), "phase.svg lacks {needle:?}");
        }
    }

    #[test]
    fn words_knob_gets_category_axis() {
        let grid = Grid::new(vec![
            Vary::parse("server.how=close,shutdown,linger0").unwrap()
        ])
        .unwrap();
        let pts: Vec<PointSummary> = grid
            .points()
            .into_iter()
            .map(|p| PointSummary::new(p, &[tw()]))
            .collect();
        let svgs = render_all("words", 1, &grid, &pts, &[]).unwrap();
        assert!(svgs[0].text.contains("linger0"));
        assert_xmlish(&svgs[1].text);
    }

    #[test]
    fn colours_are_distinct_per_outcome() {
        let mut seen = Vec::new();
        for k in TeardownKind::ALL {
            for c in [Some(Closer::Server), Some(Closer::Client)] {
                let col = colour(OutcomeKey::Teardown(k, c));
                assert!(!seen.contains(&col), "{k:?} {c:?}");
                seen.push(col);
            }
        }
        assert_eq!(
            colour(OutcomeKey::Teardown(
                TeardownKind::Simultaneous,
                Some(Closer::Both)
            )),
            RGBColor(0x2c, 0xa0, 0x2c)
        );
    }
}
