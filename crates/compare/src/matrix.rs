//! The kernel matrix: rows = scenarios, columns = kernels, cells = outcome counts, with a
//! mark where a cell misses its expectation and where a kernel differs from the others.
//!
//! Each column is compared with the first earlier column that ran under the same conditions
//! (a kernel verdict: `≠`); a column with no such partner is compared with the first column,
//! and a difference there is marked `≠*` (the VM moved the outcomes as much as the kernel).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::{compare, load_set, CompareError, Conditions, ScenarioResult};
use tcplab_record::{BatchLine, KernelsRecord, KERNELS_FILE};

/// Cell mark: the expectation failed (or the batch was cancelled / did not run).
pub const MARK_FAILED: &str = "✗";
/// Cell mark: differs from an earlier column with the same conditions (a kernel difference).
pub const MARK_DIFFERS: &str = "≠";
/// Cell mark: differs from the first column, which ran under other conditions.
pub const MARK_DIFFERS_OTHER_CONDITIONS: &str = "≠*";

/// One column: a kernel and its results.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Kernel release.
    pub kernel: String,
    /// Run conditions.
    pub conditions: Conditions,
    /// Scenario name → its batch.
    pub results: BTreeMap<String, ScenarioResult>,
    /// Why the whole column has no results (the VM failed), if so.
    pub error: Option<String>,
}

/// A `run --kernel` tree on disk: its columns and where each one's results are.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelTree {
    /// The columns, in the order they ran.
    pub columns: Vec<Column>,
    /// Each column's directory.
    pub dirs: Vec<PathBuf>,
}

/// The kernel columns in `dir` (a `run --kernel --out DIR`), or `None` when there are none.
///
/// `DIR/kernels.json` gives the columns in `--kernel` order, with their failures and skipped
/// scenarios; each column's batches are read as [`load_set`] reads them (the newest batch of
/// each scenario). A tree written before kernels.json existed is recognised by its
/// summaries: each sub-directory whose batches all record one kernel and its conditions is
/// a column (the host first, then by name).
pub fn kernel_tree(dir: &Path) -> Result<Option<KernelTree>, CompareError> {
    let manifest = dir.join(KERNELS_FILE);
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest).map_err(|source| CompareError::Io {
            path: manifest.clone(),
            source,
        })?;
        let record: KernelsRecord =
            tcplab_record::parse(&manifest, &text).map_err(|e| CompareError::Format {
                path: manifest.clone(),
                message: format!(
                    "{}{}",
                    e.at.map_or(String::new(), |(l, c)| format!("line {l} column {c}: ")),
                    e.message
                ),
            })?;
        let mut tree = KernelTree {
            columns: Vec::new(),
            dirs: Vec::new(),
        };
        for c in record.columns {
            let cdir = dir.join(&c.dir);
            let mut results = match load_set(&cdir) {
                Ok(set) => set.scenarios,
                // A column whose guest failed (its error says why) or was interrupted
                // before any batch: its cells say "not run".
                Err(CompareError::Empty(_) | CompareError::Io { .. }) => BTreeMap::new(),
                Err(e) => return Err(e),
            };
            for s in c.skipped {
                let r = ScenarioResult::from_line(&BatchLine::Skipped(Box::new(s)), Path::new(""));
                results.insert(r.scenario.clone(), r);
            }
            tree.columns.push(Column {
                kernel: c.kernel,
                conditions: c.conditions,
                results,
                error: c.error,
            });
            tree.dirs.push(cdir);
        }
        return Ok(Some(tree));
    }
    let mut found: Vec<(bool, PathBuf, Column)> = Vec::new();
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CompareError::Io {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    subdirs.sort();
    for d in subdirs {
        if d.join(KERNELS_FILE).exists() {
            continue;
        }
        let Ok(set) = load_set(&d) else { continue };
        let kernels = set.kernels();
        // A column is laid out as `run` lays out its --out: <column>/<scenario>/<stamp>/.
        let recorded = set.scenarios.values().all(|r| {
            r.kernel.is_some()
                && r.conditions != Conditions::unknown()
                && r.source.parent().and_then(Path::parent) == Some(d.as_path())
        });
        if kernels.len() != 1 || !recorded {
            continue;
        }
        let kernel = kernels.into_iter().next().unwrap_or_default().to_owned();
        let conditions = set
            .scenarios
            .values()
            .next()
            .map(|r| r.conditions.clone())
            .unwrap_or_else(Conditions::unknown);
        let host = conditions.place == "host";
        found.push((
            !host,
            d,
            Column {
                kernel,
                conditions,
                results: set.scenarios,
                error: None,
            },
        ));
    }
    if found.is_empty() {
        return Ok(None);
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Some(KernelTree {
        dirs: found.iter().map(|f| f.1.clone()).collect(),
        columns: found.into_iter().map(|f| f.2).collect(),
    }))
}

/// What the matrix found, besides its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatrixFacts {
    /// Cells that missed their expectation.
    pub failed: usize,
    /// Cells that differ from an earlier column under the same conditions.
    pub kernel_differences: usize,
    /// Cells that differ from the first column, under other conditions.
    pub other_condition_differences: usize,
}

/// One cell: a scenario's batch on one kernel, as the matrix judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The batch (`None`: the column has no result for this scenario; see `lines`).
    pub result: Option<ScenarioResult>,
    /// Marks, in order: [`MARK_FAILED`], then [`MARK_DIFFERS`] or
    /// [`MARK_DIFFERS_OTHER_CONDITIONS`].
    pub marks: Vec<&'static str>,
    /// The column this cell was compared with, and what the comparison found.
    pub compared_with: Option<(usize, crate::Comparison)>,
    /// The cell's text: outcome counts, most frequent first (or why there are none), then
    /// the timing misses; marks not included.
    pub lines: Vec<String>,
}

/// The kernel matrix as data: rows = scenarios (sorted), columns as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Row names.
    pub scenarios: Vec<String>,
    /// For each column, the column it is compared with (an earlier one under the same
    /// conditions, else the first).
    pub partners: Vec<Option<usize>>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
    /// What it found.
    pub facts: MatrixFacts,
}

/// Judge every cell: expectation, and the comparison with the column's partner at `alpha`.
pub fn build(columns: &[Column], alpha: f64) -> Matrix {
    let scenarios: BTreeSet<&String> = columns.iter().flat_map(|c| c.results.keys()).collect();
    let mut facts = MatrixFacts::default();
    let mut cells: Vec<Vec<Cell>> = Vec::new();
    // For each column, the column it is compared with.
    let partners: Vec<Option<usize>> = (0..columns.len())
        .map(|i| {
            (0..i)
                .find(|&j| columns[j].conditions == columns[i].conditions)
                .or((i > 0).then_some(0))
        })
        .collect();
    for s in &scenarios {
        let mut row = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            let Some(r) = c.results.get(*s) else {
                let why = c.error.as_deref().unwrap_or("not run");
                row.push(Cell {
                    result: None,
                    marks: vec![MARK_FAILED],
                    compared_with: None,
                    lines: vec![why.to_owned()],
                });
                facts.failed += 1;
                continue;
            };
            let mut marks = Vec::new();
            let failed =
                r.skipped.is_none() && !r.inconclusive && (r.passed != Some(true) || r.cancelled);
            if failed {
                marks.push(MARK_FAILED);
                facts.failed += 1;
            }
            let mut compared_with = None;
            if let Some(j) = partners[i] {
                if let Some(reference) = columns[j].results.get(*s) {
                    let cmp = compare(reference, r, alpha);
                    if cmp.differs {
                        if cmp.conditions_differ.is_some() {
                            marks.push(MARK_DIFFERS_OTHER_CONDITIONS);
                            facts.other_condition_differences += 1;
                        } else {
                            marks.push(MARK_DIFFERS);
                            facts.kernel_differences += 1;
                        }
                    }
                    compared_with = Some((j, cmp));
                }
            }
            let mut lines: Vec<String> = match &r.skipped {
                Some(why) => vec![format!("skipped: {why}")],
                None if r.inconclusive => vec!["inconclusive: the machine was too busy".into()],
                None => {
                    let mut v: Vec<(&String, &u64)> =
                        r.counts.iter().filter(|(_, n)| **n > 0).collect();
                    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    if v.is_empty() {
                        vec!["no runs".into()]
                    } else {
                        v.iter().map(|(k, n)| format!("{k} ×{n}")).collect()
                    }
                }
            };
            if let Some(t) = r.timing_misses.filter(|t| *t > 0) {
                lines.push(format!(
                    "({t} timing miss{})",
                    if t == 1 { "" } else { "es" }
                ));
            }
            row.push(Cell {
                result: Some(r.clone()),
                marks,
                compared_with,
                lines,
            });
        }
        cells.push(row);
    }
    Matrix {
        scenarios: scenarios.into_iter().cloned().collect(),
        partners,
        cells,
        facts,
    }
}

/// Render the matrix as text; scenarios sorted by name.
pub fn render(columns: &[Column], alpha: f64) -> (String, MatrixFacts) {
    let m = build(columns, alpha);
    let facts = m.facts.clone();
    let scenarios = &m.scenarios;
    // cells[row][col] = lines of text, the marks before the first.
    let cells: Vec<Vec<Vec<String>>> = m
        .cells
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| {
                    let mut lines = c.lines.clone();
                    if !c.marks.is_empty() {
                        lines[0] = format!("{} {}", c.marks.join(" "), lines[0]);
                    }
                    lines
                })
                .collect()
        })
        .collect();
    let head: Vec<Vec<String>> = columns
        .iter()
        .map(|c| vec![c.kernel.clone(), c.conditions.describe()])
        .collect();
    let name_w = scenarios
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            head[i]
                .iter()
                .chain(cells.iter().flat_map(|row| row[i].iter()))
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |first: &str, parts: &[&str], sep: &str| {
        let mut l = format!("{first:<name_w$}");
        for (p, w) in parts.iter().zip(&widths) {
            let pad = w.saturating_sub(p.chars().count());
            l.push_str(sep);
            l.push_str(p);
            l.push_str(&" ".repeat(pad));
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    let h0: Vec<&str> = head.iter().map(|h| h[0].as_str()).collect();
    let h1: Vec<&str> = head.iter().map(|h| h[1].as_str()).collect();
    line("scenario", &h0, " │ ");
    line("", &h1, " │ ");
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    let rule_refs: Vec<&str> = rule.iter().map(String::as_str).collect();
    line(&"─".repeat(name_w), &rule_refs, "─┼─");
    for (s, row) in scenarios.iter().zip(&cells) {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let parts: Vec<&str> = row
                .iter()
                .map(|c| c.get(k).map(String::as_str).unwrap_or(""))
                .collect();
            line(if k == 0 { s.as_str() } else { "" }, &parts, " │ ");
        }
    }
    let _ = writeln!(out, "{MARK_FAILED}  expectation missed");
    let _ = writeln!(
        out,
        "{MARK_DIFFERS}  differs from the first column with the same conditions (a kernel difference)"
    );
    let _ = writeln!(
        out,
        "{MARK_DIFFERS_OTHER_CONDITIONS} differs from the first column, which ran under other conditions (not a kernel verdict)"
    );
    (out, facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// (scenario, outcome counts, passed, deterministic)
    type Cell<'a> = (&'a str, &'a [(&'a str, u64)], bool, bool);

    fn col(kernel: &str, accel: &str, cells: &[Cell<'_>]) -> Column {
        let conditions = Conditions {
            place: "qemu".into(),
            accel: accel.into(),
            cpus: Some(1),
            memory_mib: Some(512),
            qemu: None,
            kernel_image: None,
        };
        Column {
            kernel: kernel.into(),
            conditions: conditions.clone(),
            results: cells
                .iter()
                .map(|(s, counts, passed, det)| {
                    let counts: BTreeMap<String, u64> =
                        counts.iter().map(|(k, n)| ((*k).into(), *n)).collect();
                    (
                        (*s).to_owned(),
                        ScenarioResult {
                            scenario: (*s).into(),
                            kernel: Some(kernel.into()),
                            conditions: conditions.clone(),
                            runs: counts.values().sum(),
                            counts,
                            passed: Some(*passed),
                            skipped: None,
                            cancelled: false,
                            inconclusive: false,
                            deterministic: *det,
                            timing_misses: None,
                            source: PathBuf::new(),
                        },
                    )
                })
                .collect(),
            error: None,
        }
    }

    #[test]
    fn marks_failures_and_differences() {
        let a = col(
            "6.1.0-57-cloud-amd64",
            "tcg",
            &[
                ("seed-four-way", &[("four-way/client", 20)], true, true),
                ("seed-three-way", &[("three-way/server", 20)], true, true),
            ],
        );
        let b = col(
            "6.12.117+deb12-cloud-amd64",
            "tcg",
            &[
                ("seed-four-way", &[("four-way/client", 20)], true, true),
                ("seed-three-way", &[("four-way/server", 20)], false, true),
            ],
        );
        let (text, facts) = render(&[a.clone(), b], 0.01);
        assert_eq!(facts.failed, 1);
        assert_eq!(facts.kernel_differences, 1);
        let row = text
            .lines()
            .find(|l| l.starts_with("seed-three-way"))
            .unwrap();
        let cells: Vec<&str> = row.split(" │ ").map(str::trim).collect();
        assert_eq!(
            cells,
            [
                "seed-three-way",
                "three-way/server ×20",
                "✗ ≠ four-way/server ×20"
            ]
        );
        assert!(text.contains("qemu tcg, 1 cpu, 512 MiB"));
        let mut c = col(
            "6.18.44",
            "kvm",
            &[("seed-four-way", &[("three-way/client", 20)], true, true)],
        );
        c.results.get_mut("seed-four-way").unwrap().passed = Some(true);
        let (text, facts) = render(&[a, c], 0.01);
        assert_eq!(facts.kernel_differences, 0);
        assert_eq!(facts.other_condition_differences, 1);
        // The second column lacks seed-three-way: a missing cell is a failure.
        assert_eq!(facts.failed, 1);
        assert!(text.contains("≠* three-way/client ×20"), "{text}");
    }

    #[test]
    fn columns_are_compared_with_a_partner_under_the_same_conditions() {
        let racy_a: &[(&str, u64)] = &[("three-way/client", 82), ("three-way/server", 18)];
        let racy_b: &[(&str, u64)] = &[("three-way/server", 63), ("three-way/client", 37)];
        let host = col("6.18.44", "none", &[("zero", racy_b, true, false)]);
        let a = col("6.1.0-57", "tcg", &[("zero", racy_a, true, false)]);
        let b = col("6.12.117", "tcg", &[("zero", racy_b, true, false)]);
        let (text, facts) = render(&[host, a, b], 0.01);
        // 6.1 against the host (other conditions), 6.12 against 6.1 (same conditions).
        assert_eq!(facts.other_condition_differences, 1, "{text}");
        assert_eq!(facts.kernel_differences, 1, "{text}");
        let row = text.lines().find(|l| l.starts_with("zero")).unwrap();
        let cells: Vec<&str> = row.split(" │ ").map(str::trim).collect();
        assert_eq!(
            cells,
            [
                "zero",
                "three-way/server ×63",
                "≠* three-way/client ×82",
                "≠ three-way/server ×63"
            ]
        );
    }

    fn put_summary(dir: &Path, column: &str, kernel: &str, place: &str) {
        let text = include_str!("../../record/tests/data/summary-kernel-host.json");
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["kernel"] = kernel.into();
        v["conditions"]["place"] = place.into();
        let d = dir.join(column).join("seed-four-way/20261207T010000Z");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("summary.json"), v.to_string()).unwrap();
    }

    #[test]
    fn kernel_trees_are_read_in_their_order_with_failed_columns() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        put_summary(dir, "zz-host", "6.18", "host");
        put_summary(dir, "a-guest", "6.1", "qemu");
        // No kernels.json: columns found by their summaries, the host first.
        let t = kernel_tree(dir).unwrap().unwrap();
        let kernels: Vec<&str> = t.columns.iter().map(|c| c.kernel.as_str()).collect();
        assert_eq!(kernels, ["6.18", "6.1"]);
        // A plain `run --out` (no kernel recorded) is no kernel tree.
        let plain = tempfile::tempdir().unwrap();
        let text = include_str!("../../record/tests/data/summary-host.json");
        let d = plain.path().join("seed-four-way/20261207T010000Z");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("summary.json"), text).unwrap();
        assert!(kernel_tree(plain.path()).unwrap().is_none());
        // kernels.json: its order, and a column whose guest never wrote a batch.
        let conditions =
            serde_json::json!({"place": "qemu", "accel": "tcg", "cpus": 1, "memory_mib": 512});
        let k = serde_json::json!({"columns": [
            {"kernel": "6.1", "dir": "a-guest", "conditions": conditions, "skipped": []},
            {"kernel": "6.12", "dir": "gone", "conditions": conditions, "error": "timed out", "skipped": []},
            {"kernel": "6.18", "dir": "zz-host", "conditions": conditions, "skipped": []},
        ]});
        std::fs::write(dir.join(KERNELS_FILE), k.to_string()).unwrap();
        let t = kernel_tree(dir).unwrap().unwrap();
        let kernels: Vec<&str> = t.columns.iter().map(|c| c.kernel.as_str()).collect();
        assert_eq!(kernels, ["6.1", "6.12", "6.18"]);
        assert!(t.columns[1].results.is_empty());
        let m = build(&t.columns, 0.01);
        assert_eq!(m.cells[0][1].marks, [MARK_FAILED]);
        assert_eq!(m.cells[0][1].lines, ["timed out"]);
    }
}
