//! `tcplab report DIR`: a page for whatever DIR holds, found by its files (the results
//! layout of README.md): a run (`capture.pcap`, maybe `capture-server.pcap`), a batch
//! (`run-NNNN/` directories), or a tree of them (a scenario's batches, a results tree, a
//! `run --kernel` tree: an index page linking each batch's page).
//!
//! Everything is taken from the captures themselves (and the kernel's states with their
//! times from a run's `analysis.json`): the page shows what the packets show. Each rendered
//! run also gets `capture.pcapng`, its capture annotated for Wireshark (see
//! [`crate::annotate`]).

//! The results layout (file names, [`kind`]) is `layout.rs`, the batch page `batch.rs`, the
//! error `error.rs`: this module only picks the page, above them and the pages it picks
//! (`sweep.rs`, `matrix.rs`), none of which imports it.

use crate::batch::{batch_report, run_report, BatchOf};
use crate::error::io;
use crate::html::{esc, page};
use crate::layout::{href, kernel_tree, sub_dirs, walk, walk_one, Found};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tcplab_trace::render::Lang;

// Their public paths: they live beneath this module and the pages it picks among.
pub use crate::error::ReportError;
pub use crate::layout::{
    kind, DirKind, ANALYSIS_FILE, PAGE_FILE, PCAPNG_FILE, PCAP_FILE, RUN_PAGES_MAX,
    SERVER_PCAP_FILE, SUMMARY_FILE,
};

/// The index of a results tree: its kernel matrices, sweeps and batches, each page written.
fn tree_report(dir: &Path, lang: Lang) -> Result<(), ReportError> {
    let mut found = Found::default();
    // The tree itself may be a `run --kernel --out` holding other results too: its matrix
    // goes to matrix.html, this page is the index.
    let own_matrix = kernel_tree(dir);
    match &own_matrix {
        Some(tree) => {
            for e in sub_dirs(dir) {
                if !tree.dirs.contains(&e) {
                    walk_one(&e, 4, &mut found);
                }
            }
        }
        None => walk(dir, 5, &mut found),
    }
    let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).to_path_buf();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>tcplab results: {}</h1>",
        esc(&dir.display().to_string())
    );
    let mut matrices = Vec::new();
    if own_matrix.is_some() {
        let (p, line) = crate::matrix::write_matrix_report(dir, lang)?;
        matrices.push((rel(&p), line));
    }
    for t in &found.kernel_trees {
        let (p, line) = crate::matrix::write_matrix_report(t, lang)?;
        matrices.push((rel(&p), line));
    }
    if !matrices.is_empty() {
        b.push_str("<h2>kernel matrices</h2><p class=\"muted\">The same scenarios on several kernels (<code>tcplab run --kernel</code>): which outcomes each kernel gave, and where a kernel differs.</p><ul class=\"index\">");
        for (m, line) in &matrices {
            let _ = write!(
                b,
                "<li><a class=\"matrix\" href=\"{}\">{}</a>: {}</li>",
                href(m),
                match m.parent().map(|d| d.display().to_string()) {
                    Some(d) if !d.is_empty() => esc(&d),
                    _ => "the kernels in this directory".to_owned(),
                },
                esc(line)
            );
        }
        b.push_str("</ul>");
    }
    if !found.sweeps.is_empty() {
        b.push_str("<h2>sweeps</h2><p class=\"muted\">A scenario's knob varied over a grid (<code>tcplab sweep</code>): where the teardown changes kind.</p><table><tr><th>sweep</th><th>boundary</th></tr>");
        for sw in &found.sweeps {
            let (page, sentence) = crate::sweep::write_sweep_report(sw, lang)?;
            let _ = write!(
                b,
                "<tr><td><a class=\"sweep\" href=\"{}\">{}</a></td><td>{}</td></tr>",
                href(&rel(&page)),
                esc(&rel(sw).display().to_string()),
                esc(&sentence)
            );
        }
        b.push_str("</table>");
    }
    if !found.batches.is_empty() {
        b.push_str("<h2>batches</h2><table><tr><th>batch</th><th>runs</th><th>outcomes</th></tr>");
    }
    for batch in &found.batches {
        let (rows, _) = batch_report(batch, lang, BatchOf::Run)?;
        let r = rel(batch);
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in &rows {
            *counts.entry(r.outcome.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = counts.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
        let _ = write!(
            b,
            "<tr><td><a class=\"batch\" href=\"{}/{PAGE_FILE}\">{}</a></td><td class=\"num\">{}</td><td>{}</td></tr>",
            href(&r),
            esc(&r.display().to_string()),
            rows.len(),
            esc(&summary.join(", "))
        );
    }
    if !found.batches.is_empty() {
        b.push_str("</table>");
    }
    let p = dir.join(PAGE_FILE);
    std::fs::write(&p, page(&format!("tcplab results {}", dir.display()), &b)).map_err(io(&p))
}

/// Write `dir/report.html` for whatever `dir` holds; its path.
pub fn write_report(dir: &Path, lang: Lang) -> Result<PathBuf, ReportError> {
    match kind(dir) {
        Some(DirKind::Run) => {
            run_report(dir, lang, true)?;
        }
        Some(DirKind::Batch) => match crate::sweep::point_of(dir) {
            // A sweep point's kept runs: its page says so, with all its runs' counts.
            Some(point) => {
                batch_report(dir, lang, BatchOf::SweepPoint(&point))?;
            }
            None => {
                batch_report(dir, lang, BatchOf::Run)?;
            }
        },
        Some(DirKind::Sweep) => {
            crate::sweep::write_sweep_report(dir, lang)?;
        }
        Some(DirKind::Kernels) => {
            crate::matrix::write_matrix_report(dir, lang)?;
        }
        Some(DirKind::Tree) => tree_report(dir, lang)?,
        None => return Err(ReportError::Nothing(dir.to_owned())),
    }
    Ok(dir.join(PAGE_FILE))
}
