//! Pieces several pages share: outcome colours (the sweep charts' colours, so an outcome
//! looks the same on every page) and distributions drawn as bars, in plain HTML + CSS.

use crate::html::esc;
use std::fmt::Write as _;
use tcplab_sweep::chart::colour;
use tcplab_sweep::OutcomeKey;

/// An outcome's colour as CSS (`#1f77b4`), the one the sweep's pictures use; grey for a
/// name that is not an outcome.
pub fn outcome_colour(outcome: &str) -> String {
    match OutcomeKey::parse(outcome) {
        Some(k) => {
            let c = colour(k);
            format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
        }
        None => "#9aa4ae".to_owned(),
    }
}

/// `(outcome, count)` with a count, most frequent first, then by name (deterministic).
pub fn sorted(counts: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().filter(|c| c.1 > 0).cloned().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// One bar split by outcome share (a title on each part says which, for the mouse).
pub fn stacked_bar(counts: &[(String, u64)]) -> String {
    let v = sorted(counts);
    let total: u64 = v.iter().map(|c| c.1).sum();
    let mut b = String::from("<span class=\"stack\">");
    for (o, n) in &v {
        let share = *n as f64 / total.max(1) as f64;
        let _ = write!(
            b,
            "<span style=\"width:{:.2}%;background:{}\" title=\"{} ×{n} ({:.1}%)\"></span>",
            share * 100.0,
            outcome_colour(o),
            esc(o),
            share * 100.0
        );
    }
    b.push_str("</span>");
    b
}

/// A distribution as a table: outcome (with its colour), runs, share, a bar.
pub fn distribution(counts: &[(String, u64)], runs: u64) -> String {
    let mut b = String::from(
        "<table class=\"dist\"><tr><th>outcome</th><th>runs</th><th>share</th><th></th></tr>",
    );
    for (o, n) in sorted(counts) {
        let share = n as f64 / runs.max(1) as f64;
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{c}\"></span><code>{}</code></td><td class=\"num\">{n}</td><td class=\"num\">{:.1}%</td><td><span class=\"bar\" style=\"width:{:.0}px;background:{c}\"></span></td></tr>",
            esc(&o),
            share * 100.0,
            share * 400.0,
            c = outcome_colour(&o)
        );
    }
    b.push_str("</table>");
    b
}
