//! The boundary in words, computed from the data: where the dominant outcome changes along
//! the first knob, and where more than one outcome occurs.
//!
//! With two knobs the first knob is the x axis and the boundary is reported along it once per
//! value of the second knob (one row of the phase diagram each).

use crate::knob::{unit_of, KnobValue};
use crate::outcome::{OutcomeKey, PointSummary};
use crate::plan::Grid;
use std::fmt::Write as _;

/// A stretch of consecutive points with the same dominant outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// The dominant outcome.
    pub outcome: OutcomeKey,
    /// First point's value.
    pub from: KnobValue,
    /// Last point's value.
    pub to: KnobValue,
}

/// Two adjacent points whose dominant outcomes differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Dominant outcome below.
    pub below: OutcomeKey,
    /// Last value where `below` dominates.
    pub last: KnobValue,
    /// Dominant outcome above.
    pub above: OutcomeKey,
    /// First value where `above` dominates.
    pub first: KnobValue,
}

/// A point where more than one outcome occurred.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixed {
    /// The point's value along the knob.
    pub at: KnobValue,
    /// Every outcome and its share, in legend order.
    pub shares: Vec<(OutcomeKey, f64)>,
}

/// The boundary along the first knob, for one value of the second knob (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The knob along which the boundary is read.
    pub knob: String,
    /// The second knob's value that this line holds fixed.
    pub fixed: Option<(String, KnobValue)>,
    /// Points that have results, of the line's points.
    pub points: usize,
    /// Points in the line.
    pub planned: usize,
    /// Dominant regions, in knob order.
    pub regions: Vec<Region>,
    /// Changes of the dominant outcome.
    pub transitions: Vec<Transition>,
    /// Points with more than one outcome.
    pub mixed: Vec<Mixed>,
}

/// Compute the boundary lines of a sweep from its (possibly incomplete) point summaries.
pub fn analyze(grid: &Grid, points: &[PointSummary]) -> Vec<Line> {
    let Some(first) = grid.knobs.first() else {
        return Vec::new();
    };
    let rows: Vec<Option<&KnobValue>> = match grid.knobs.get(1) {
        Some(second) => second.values.iter().map(Some).collect(),
        None => vec![None],
    };
    let numeric = first.is_numeric();
    rows.into_iter()
        .map(|fixed| {
            let fixed_pair = fixed.map(|v| (grid.knobs[1].key.clone(), v.clone()));
            let mut line: Vec<&PointSummary> = points
                .iter()
                .filter(|p| match fixed {
                    Some(v) => p
                        .point
                        .values
                        .get(1)
                        .is_some_and(|(_, pv)| pv.text == v.text),
                    None => true,
                })
                .collect();
            if numeric {
                line.sort_by(|a, b| x_of(a).total_cmp(&x_of(b)));
            } else {
                line.sort_by_key(|p| p.point.index);
            }
            one_line(&first.key, fixed_pair, &line, first.values.len())
        })
        .collect()
}

fn x_of(p: &PointSummary) -> f64 {
    p.point
        .values
        .first()
        .and_then(|(_, v)| v.num)
        .unwrap_or(f64::NAN)
}

fn value_of(p: &PointSummary) -> KnobValue {
    p.point
        .values
        .first()
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| KnobValue::parse(""))
}

fn one_line(
    knob: &str,
    fixed: Option<(String, KnobValue)>,
    line: &[&PointSummary],
    planned: usize,
) -> Line {
    let mut regions: Vec<Region> = Vec::new();
    let mut transitions = Vec::new();
    let mut mixed = Vec::new();
    for p in line {
        let Some(dom) = p.dominant() else { continue };
        let v = value_of(p);
        if p.is_mixed() {
            mixed.push(Mixed {
                at: v.clone(),
                shares: p.outcomes.iter().map(|o| (o.key, o.share)).collect(),
            });
        }
        match regions.last_mut() {
            Some(r) if r.outcome == dom.key => r.to = v,
            Some(r) => {
                transitions.push(Transition {
                    below: r.outcome,
                    last: r.to.clone(),
                    above: dom.key,
                    first: v.clone(),
                });
                regions.push(Region {
                    outcome: dom.key,
                    from: v.clone(),
                    to: v,
                });
            }
            None => regions.push(Region {
                outcome: dom.key,
                from: v.clone(),
                to: v,
            }),
        }
    }
    Line {
        knob: knob.to_string(),
        fixed,
        points: line.iter().filter(|p| p.runs > 0).count(),
        planned,
        regions,
        transitions,
        mixed,
    }
}

impl Line {
    fn v(&self, v: &KnobValue) -> String {
        let unit = unit_of(&self.knob);
        if unit.is_empty() || v.num.is_none() {
            v.text.clone()
        } else {
            format!("{} {unit}", v.text)
        }
    }

    /// The boundary in one sentence, e.g. "three-way/server up to 40 ms, four-way/client
    /// from 45 ms; at 40 ms both occur (three-way/server 60%, four-way/client 40%)".
    pub fn sentence(&self) -> String {
        if self.regions.is_empty() {
            return "no results yet".to_string();
        }
        if self.transitions.is_empty() {
            let r = &self.regions[0];
            return format!(
                "{} dominates everywhere ({}–{})",
                r.outcome,
                r.from.text,
                self.v(&r.to)
            );
        }
        let parts: Vec<String> = self
            .transitions
            .iter()
            .map(|t| {
                let mut s = format!(
                    "{} up to {}, {} from {}",
                    t.below,
                    self.v(&t.last),
                    t.above,
                    self.v(&t.first)
                );
                let near: Vec<&Mixed> = self
                    .mixed
                    .iter()
                    .filter(|m| m.at.text == t.last.text || m.at.text == t.first.text)
                    .collect();
                for m in near {
                    let what = if m.shares.len() == 2 { "both" } else { "all" };
                    let _ = write!(
                        s,
                        "; at {} {what} occur ({})",
                        self.v(&m.at),
                        shares(&m.shares)
                    );
                }
                s
            })
            .collect();
        parts.join("; then ")
    }

    /// The full report of this line, several lines of text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let head = match &self.fixed {
            Some((k, v)) => format!("{} (at {k}={}):", self.knob, v.text),
            None => format!("{}:", self.knob),
        };
        let _ = writeln!(s, "{head}");
        if self.points < self.planned {
            let _ = writeln!(
                s,
                "  results for {} of {} points",
                self.points, self.planned
            );
        }
        let regions: Vec<String> = self
            .regions
            .iter()
            .map(|r| {
                if r.from.text == r.to.text {
                    format!("{} at {}", r.outcome, self.v(&r.from))
                } else {
                    format!("{} at {}–{}", r.outcome, r.from.text, self.v(&r.to))
                }
            })
            .collect();
        let _ = writeln!(s, "  dominant: {}", regions.join("; "));
        let _ = writeln!(s, "  boundary: {}", self.sentence());
        if !self.mixed.is_empty() {
            let mixed: Vec<String> = self
                .mixed
                .iter()
                .map(|m| format!("{}: {}", self.v(&m.at), shares(&m.shares)))
                .collect();
            let _ = writeln!(s, "  mixed:    {}", mixed.join("; "));
        }
        s
    }
}

fn shares(s: &[(OutcomeKey, f64)]) -> String {
    s.iter()
        .map(|(k, share)| format!("{k} {:.0}%", share * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report of every line.
pub fn text(lines: &[Line]) -> String {
    lines.iter().map(Line::text).collect::<Vec<_>>().join("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knob::Vary;
    use crate::outcome::Outcome;
    use tcplab_trace::{Closer, TeardownKind};

    fn tw() -> Outcome {
        Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server))
    }
    fn fw() -> Outcome {
        Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
    }
    fn sim() -> Outcome {
        Outcome::teardown(TeardownKind::Simultaneous, Some(Closer::Both))
    }

    /// One knob `server.close_delay_ms` over `values`; `runs(i)` gives the runs of point i.
    fn sweep(values: &str, runs: impl Fn(usize) -> Vec<Outcome>) -> (Grid, Vec<PointSummary>) {
        let grid = Grid::new(vec![Vary::parse(&format!(
            "server.close_delay_ms={values}"
        ))
        .unwrap()])
        .unwrap();
        let pts = grid
            .points()
            .into_iter()
            .enumerate()
            .map(|(i, p)| PointSummary::new(p, &runs(i)))
            .collect();
        (grid, pts)
    }

    #[test]
    fn boundary_names_both_sides_and_the_mixed_point() {
        // 0: race; 5..40 three-way; 40 mixed (3 of 5 three-way); 45.. four-way.
        let (grid, pts) = sweep("0..60:5", |i| match i {
            0 => vec![sim(), sim(), tw(), tw(), tw()],
            1..=7 => vec![tw(); 5],
            8 => vec![tw(), tw(), tw(), fw(), fw()],
            _ => vec![fw(); 5],
        });
        let lines = analyze(&grid, &pts);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0].sentence(),
            "three-way/server up to 40 ms, four-way/client from 45 ms; at 40 ms both occur \
             (three-way/server 60%, four-way/client 40%)"
        );
        assert_eq!(
            text(&lines),
            "server.close_delay_ms:\n  \
             dominant: three-way/server at 0–40 ms; four-way/client at 45–60 ms\n  \
             boundary: three-way/server up to 40 ms, four-way/client from 45 ms; at 40 ms both \
             occur (three-way/server 60%, four-way/client 40%)\n  \
             mixed:    0 ms: three-way/server 60%, simultaneous/both 40%; 40 ms: \
             three-way/server 60%, four-way/client 40%\n"
        );
    }

    #[test]
    fn no_transition_and_no_data_are_said_plainly() {
        let (grid, pts) = sweep("10,20", |_| vec![tw(); 3]);
        assert_eq!(
            analyze(&grid, &pts)[0].sentence(),
            "three-way/server dominates everywhere (10–20 ms)"
        );
        let (grid, _) = sweep("10,20", |_| vec![]);
        let lines = analyze(&grid, &[]);
        assert_eq!(lines[0].sentence(), "no results yet");
        assert!(lines[0].text().contains("results for 0 of 2 points"));
    }

    #[test]
    fn list_order_does_not_matter_for_numbers() {
        let (grid, pts) = sweep("100,10,60,20", |i| match i {
            0 | 2 => vec![fw(); 5],
            _ => vec![tw(); 5],
        });
        let line = &analyze(&grid, &pts)[0];
        assert_eq!(
            line.sentence(),
            "three-way/server up to 20 ms, four-way/client from 60 ms"
        );
        assert!(line.mixed.is_empty());
    }

    #[test]
    fn two_knobs_give_one_line_per_row() {
        let grid = Grid::new(vec![
            Vary::parse("server.close_delay_ms=20,60").unwrap(),
            Vary::parse("client.close_delay_ms=0,100").unwrap(),
        ])
        .unwrap();
        let pts: Vec<PointSummary> = grid
            .points()
            .into_iter()
            .map(|p| {
                let s = p.values[0].1.num.unwrap_or(0.0);
                let c = p.values[1].1.num.unwrap_or(0.0);
                let runs = if c > 0.0 {
                    vec![tw(); 2]
                } else if s > 40.0 {
                    vec![fw(); 2]
                } else {
                    vec![tw(); 2]
                };
                PointSummary::new(p, &runs)
            })
            .collect();
        let lines = analyze(&grid, &pts);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].fixed.as_ref().map(|(_, v)| v.text.as_str()),
            Some("0")
        );
        assert_eq!(lines[0].transitions.len(), 1);
        assert_eq!(lines[1].transitions.len(), 0);
        assert!(lines[0]
            .text()
            .starts_with("server.close_delay_ms (at client.close_delay_ms=0):"));
    }
}
