//! The results layout of README.md as the report finds it: the files' names, what a
//! directory holds ([`kind`]) and the walk over a results tree. Beneath the pages
//! (`batch.rs`, `matrix.rs`, `sweep.rs`) and `dir.rs`, which picks among them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tcplab_sweep::store::MANIFEST;

use crate::html::esc;

/// The run directory's files (README.md's results layout).
pub const PCAP_FILE: &str = "capture.pcap";
/// The server end's capture of a link run.
pub const SERVER_PCAP_FILE: &str = "capture-server.pcap";
/// Where a run keeps the analysis with the kernel's states.
pub const ANALYSIS_FILE: &str = "analysis.json";
/// A batch's record (`tcplab_record::Summary`).
pub const SUMMARY_FILE: &str = "summary.json";
/// The annotated capture `report` writes beside capture.pcap.
pub const PCAPNG_FILE: &str = "capture.pcapng";
/// The page `report` writes in DIR.
pub const PAGE_FILE: &str = "report.html";
/// Batches larger than this get a page for every failed run and for the first this many
/// runs only (a page per run of a 10,000-run batch would be hundreds of MB).
pub const RUN_PAGES_MAX: usize = 200;

/// What DIR turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// One run.
    Run,
    /// A batch of runs.
    Batch,
    /// A sweep (`sweep.json`): its charts and boundary, each point linking to its runs.
    Sweep,
    /// A `run --kernel` tree and nothing else: the kernel matrix.
    Kernels,
    /// Batches, sweeps or kernel trees below it: an index.
    Tree,
}

pub(crate) fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("run-"))
                && p.join(PCAP_FILE).is_file()
        })
        .collect();
    v.sort();
    v
}

pub(crate) fn sub_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    v.sort();
    v
}

/// What `dir` holds.
pub fn kind(dir: &Path) -> Option<DirKind> {
    if dir.join(PCAP_FILE).is_file() {
        return Some(DirKind::Run);
    }
    if !run_dirs(dir).is_empty() {
        return Some(DirKind::Batch);
    }
    if is_sweep(dir) {
        return Some(DirKind::Sweep);
    }
    if let Some(tree) = kernel_tree(dir) {
        // Nothing but its columns (and files): the matrix is the page.
        let only_columns = sub_dirs(dir).iter().all(|d| tree.dirs.contains(d));
        return Some(if only_columns {
            DirKind::Kernels
        } else {
            DirKind::Tree
        });
    }
    if dir.join(tcplab_record::KERNELS_FILE).is_file() {
        // A kernels.json that cannot be read: the matrix's reader says why.
        return Some(DirKind::Kernels);
    }
    let mut found = Found::default();
    walk(dir, 5, &mut found);
    if found.sweeps.is_empty() && found.kernel_trees.is_empty() && found.batches.is_empty() {
        None
    } else {
        Some(DirKind::Tree)
    }
}

/// What a results tree holds, found by walking it: sweeps (a `sweep.json`), kernel trees
/// (`run --kernel`: a `kernels.json`, or columns recognised by their summaries) and the
/// batches that belong to neither.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) sweeps: Vec<PathBuf>,
    pub(crate) kernel_trees: Vec<PathBuf>,
    pub(crate) batches: Vec<PathBuf>,
}

pub(crate) fn walk(dir: &Path, depth: u32, found: &mut Found) {
    if depth == 0 {
        return;
    }
    for d in sub_dirs(dir) {
        if is_sweep(&d) {
            found.sweeps.push(d);
        } else if !run_dirs(&d).is_empty() {
            found.batches.push(d);
        } else if let Some(tree) = kernel_tree(&d) {
            // Its batches are the matrix's cells; what else it holds is walked on.
            let columns = tree.dirs;
            found.kernel_trees.push(d.clone());
            for e in sub_dirs(&d) {
                if !columns.contains(&e) {
                    walk_one(&e, depth - 1, found);
                }
            }
        } else {
            walk(&d, depth - 1, found);
        }
    }
}

pub(crate) fn walk_one(d: &Path, depth: u32, found: &mut Found) {
    if is_sweep(d) {
        found.sweeps.push(d.to_owned());
    } else if !run_dirs(d).is_empty() {
        found.batches.push(d.to_owned());
    } else {
        walk(d, depth, found);
    }
}

/// The kernel columns in `dir`, if it is a `run --kernel` tree (an unreadable one is not).
pub(crate) fn kernel_tree(dir: &Path) -> Option<tcplab_compare::matrix::KernelTree> {
    tcplab_compare::matrix::kernel_tree(dir).ok().flatten()
}

/// Whether `dir` is a sweep's directory.
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// A relative path as a URL path: each byte outside a plain set percent-encoded, so that a
/// kernel release or a knob value with `#`, `?`, `%` or a space still links.
pub(crate) fn href(p: &Path) -> String {
    let s = p.display().to_string();
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/+=,:@".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    esc(&o)
}
