//! The kernel matrix's page: a `run --kernel` tree's scenarios × kernels, each cell the
//! outcomes of one batch with compare's marks (✗ ≠ ≠*) and a link to the batch's page, the
//! conditions under each column, and compare's test of each cell against its partner column
//! (which outcome moved, its shares, the p-value). The judging is tcplab-compare's
//! ([`tcplab_compare::matrix::build`]); this only draws it.

use crate::batch::{batch_report, BatchOf};
use crate::html::{esc, page};
use crate::layout::{href, kind, run_dirs, DirKind, PAGE_FILE, SUMMARY_FILE};
use crate::parts::stacked_bar;
use crate::ReportError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tcplab_compare::matrix::{
    self, Cell, Matrix, MARK_DIFFERS, MARK_DIFFERS_OTHER_CONDITIONS, MARK_FAILED,
};
use tcplab_compare::DEFAULT_ALPHA;
use tcplab_trace::render::Lang;

/// The matrix page of a tree that holds other results too.
pub const MATRIX_FILE: &str = "matrix.html";

/// Where `dir`'s matrix page goes: `report.html` when the tree holds only its kernel
/// columns, else `matrix.html` (report.html is then the tree's index, which links it).
pub fn page_path(dir: &Path) -> PathBuf {
    match kind(dir) {
        Some(DirKind::Kernels) | None => dir.join(PAGE_FILE),
        _ => dir.join(MATRIX_FILE),
    }
}

fn mark_class(m: &str) -> &'static str {
    match m {
        MARK_FAILED => "m-fail",
        MARK_DIFFERS => "m-differs",
        MARK_DIFFERS_OTHER_CONDITIONS => "m-other",
        _ => "",
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// A p-value as people read them: three decimals, or scientific notation when small.
fn p_text(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.2e}")
    }
}

/// Write the matrix page of the `run --kernel` tree in `dir` (and each cell's batch page);
/// its path and what it found in a line (for an index).
pub fn write_matrix_report(dir: &Path, lang: Lang) -> Result<(PathBuf, String), ReportError> {
    let tree = matrix::kernel_tree(dir)
        .map_err(|e| ReportError::Results {
            dir: dir.to_owned(),
            message: e.to_string(),
        })?
        .ok_or_else(|| ReportError::Nothing(dir.to_owned()))?;
    let m = matrix::build(&tree.columns, DEFAULT_ALPHA);
    let out = page_path(dir);
    // Each cell's link: its batch's page (written now), or its summary.json when the batch
    // kept no runs (--keep-pcaps none).
    let mut links: Vec<Vec<Option<String>>> = Vec::new();
    for row in &m.cells {
        let mut r = Vec::new();
        for c in row {
            let src = c.result.as_ref().map(|r| r.source.clone());
            let link = match src {
                Some(s) if !s.as_os_str().is_empty() => {
                    let rel = s.strip_prefix(dir).unwrap_or(&s).to_path_buf();
                    if !run_dirs(&s).is_empty() {
                        batch_report(&s, lang, BatchOf::Run)?;
                        Some(href(&rel.join(PAGE_FILE)))
                    } else if s.join(SUMMARY_FILE).is_file() {
                        Some(href(&rel.join(SUMMARY_FILE)))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            r.push(link);
        }
        links.push(r);
    }
    let html = matrix_page(dir, &tree.columns, &tree.dirs, &m, &links);
    std::fs::write(&out, html).map_err(|source| ReportError::Io {
        path: out.clone(),
        source,
    })?;
    let kernels: Vec<&str> = tree.columns.iter().map(|c| c.kernel.as_str()).collect();
    let line = format!(
        "{} scenarios on {}: {} cells missed their expectation, {} kernel differences",
        m.scenarios.len(),
        kernels.join(" | "),
        m.facts.failed,
        m.facts.kernel_differences
    );
    Ok((out, line))
}

fn cell_html(c: &Cell, link: Option<&String>) -> String {
    let mut b = String::new();
    let classes: Vec<&str> = c.marks.iter().map(|m| mark_class(m)).collect();
    let _ = write!(b, "<td class=\"cell {}\">", classes.join(" "));
    if !c.marks.is_empty() {
        b.push_str("<span class=\"marks\">");
        for m in &c.marks {
            let _ = write!(
                b,
                "<span class=\"mark {}\">{}</span>",
                mark_class(m),
                esc(m)
            );
        }
        b.push_str("</span>");
    }
    let counts: Vec<(String, u64)> = c
        .result
        .as_ref()
        .map(|r| r.counts.iter().map(|(k, n)| (k.clone(), *n)).collect())
        .unwrap_or_default();
    let text = c
        .lines
        .iter()
        .map(|l| esc(l))
        .collect::<Vec<_>>()
        .join("<br>");
    match link {
        Some(h) => {
            let _ = write!(b, "<a class=\"batch\" href=\"{h}\">{text}</a>");
        }
        None => b.push_str(&text),
    }
    if counts.iter().any(|c| c.1 > 0) {
        b.push_str(&stacked_bar(&counts));
    }
    if let Some((_, cmp)) = &c.compared_with {
        if cmp.differs {
            if let (Some(o), Some((a, bb))) = (&cmp.outcome, cmp.shares) {
                let _ = write!(
                    b,
                    "<div class=\"moved\">{}: {} → {}{}</div>",
                    esc(o),
                    pct(a),
                    pct(bb),
                    cmp.p_value
                        .map_or(String::new(), |p| format!(", p = {}", p_text(p)))
                );
            }
        }
    }
    b.push_str("</td>");
    b
}

fn matrix_page(
    dir: &Path,
    columns: &[matrix::Column],
    dirs: &[PathBuf],
    m: &Matrix,
    links: &[Vec<Option<String>>],
) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>tcplab kernel matrix</h1><p class=\"muted\">{}</p>",
        esc(&dir.display().to_string())
    );
    let f = &m.facts;
    let ok = f.failed == 0 && f.kernel_differences == 0;
    let _ = write!(
        b,
        "<p class=\"verdict {}\">{} scenario{} on {} kernel{}: {} cell{} missed {} expectation; {} kernel difference{}; {} difference{} under other conditions</p>",
        if ok { "pass" } else { "fail" },
        m.scenarios.len(),
        if m.scenarios.len() == 1 { "" } else { "s" },
        columns.len(),
        if columns.len() == 1 { "" } else { "s" },
        f.failed,
        if f.failed == 1 { "" } else { "s" },
        if f.failed == 1 { "its" } else { "their" },
        f.kernel_differences,
        if f.kernel_differences == 1 { "" } else { "s" },
        f.other_condition_differences,
        if f.other_condition_differences == 1 { "" } else { "s" },
    );
    b.push_str("<p class=\"note\">Each row is a scenario, each column a kernel it ran on. A cell counts how that scenario's runs ended on that kernel (the coloured bar shows the shares) and links to the batch: its runs, each with its space-time diagram. Each column is compared with the first earlier column that ran under the same conditions, or else with the first column.</p>");
    b.push_str("<table class=\"matrix\"><thead><tr><th>scenario</th>");
    for (i, c) in columns.iter().enumerate() {
        let rel = dirs
            .get(i)
            .map(|d| d.strip_prefix(dir).unwrap_or(d).display().to_string())
            .unwrap_or_default();
        let partner = match m.partners.get(i).copied().flatten() {
            Some(j) => format!(
                "compared with column {} ({})",
                j + 1,
                esc(&columns[j].kernel)
            ),
            None => "the reference column".to_owned(),
        };
        let _ = write!(
            b,
            "<th class=\"column\" data-column=\"{}\"><div class=\"kernel\">{}</div><div class=\"conditions\">{}</div><div class=\"muted small\">{} · <code>{}</code></div>{}</th>",
            i + 1,
            esc(&c.kernel),
            esc(&c.conditions.describe()),
            partner,
            esc(&rel),
            c.error.as_ref().map_or(String::new(), |e| format!(
                "<div class=\"fail small\">{}</div>",
                esc(e)
            ))
        );
    }
    b.push_str("</tr></thead><tbody>");
    for (r, s) in m.scenarios.iter().enumerate() {
        let _ = write!(
            b,
            "<tr data-scenario=\"{}\"><th><a href=\"#t-{}\">{}</a></th>",
            esc(s),
            esc(&anchor(s)),
            esc(s)
        );
        for (k, c) in m.cells[r].iter().enumerate() {
            b.push_str(&cell_html(c, links[r][k].as_ref()));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    let _ = write!(
        b,
        "<p class=\"legend\"><span><span class=\"mark m-fail\">{MARK_FAILED}</span> the expectation was missed (or the batch did not run)</span><span><span class=\"mark m-differs\">{MARK_DIFFERS}</span> differs from the column it is compared with, under the same conditions: a kernel difference</span><span><span class=\"mark m-other\">{MARK_DIFFERS_OTHER_CONDITIONS}</span> differs from the first column, which ran under other conditions (a VM moves racy outcomes too): not a kernel verdict</span></p>"
    );
    b.push_str("<h2>compare's tests, scenario by scenario</h2>");
    let _ = write!(b, "<p class=\"note\">A scenario whose expectation names one outcome is <em>deterministic</em>: any change in which outcomes occur is a difference. Otherwise it is <em>racy</em>: for each outcome, Fisher's exact test asks whether its share moved between the two columns (two-sided), and a difference needs p below {DEFAULT_ALPHA} divided by the number of outcomes (Bonferroni). So run-to-run noise is not called a difference, and a real shift is.</p>");
    for (r, s) in m.scenarios.iter().enumerate() {
        let _ = write!(
            b,
            "<h3 id=\"t-{}\">{}</h3><table class=\"tests\"><tr><th>kernel</th><th>compared with</th><th>verdict</th><th>outcome that moved most</th><th>its share</th><th>p-value</th><th>why</th></tr>",
            esc(&anchor(s)),
            esc(s)
        );
        for (k, c) in m.cells[r].iter().enumerate() {
            let Some((j, cmp)) = &c.compared_with else {
                let why = if k == 0 {
                    "the reference column".to_owned()
                } else {
                    c.lines.join("; ")
                };
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td colspan=\"6\" class=\"muted\">{}</td></tr>",
                    esc(&columns[k].kernel),
                    esc(&why)
                );
                continue;
            };
            let verdict = match (cmp.differs, cmp.conditions_differ.is_some()) {
                (false, _) => "<span class=\"pass\">same</span>".to_owned(),
                (true, false) => format!("<span class=\"fail\">{MARK_DIFFERS} a kernel difference</span>"),
                (true, true) => format!("<span class=\"warn\">{MARK_DIFFERS_OTHER_CONDITIONS} differs, other conditions</span>"),
            };
            let mut why = cmp.reason.clone();
            if let Some(c) = &cmp.conditions_differ {
                why.push_str(&format!("; conditions differ: {c}"));
            }
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"small\">{}</td></tr>",
                esc(&columns[k].kernel),
                esc(&columns[*j].kernel),
                cmp.outcome.as_deref().map_or(String::new(), |o| format!("<code>{}</code>", esc(o))),
                cmp.shares.map_or(String::new(), |(a, bb)| format!("{} → {}", pct(a), pct(bb))),
                cmp.p_value.map_or("–".to_owned(), p_text),
                esc(&why)
            );
        }
        b.push_str("</table>");
    }
    page("tcplab kernel matrix", &b)
}

/// A scenario name as a fragment id.
fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
