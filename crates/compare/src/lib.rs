//! tcplab-compare: did anything change between two sets of results?
//!
//! A result set is what `tcplab run` leaves: `summary.json` per scenario batch (from any tree:
//! `results/`, `results/<kernel>/`, one batch directory), or the JSON objects of
//! `tcplab run --json`. Per scenario, two outcome distributions are compared:
//! - **deterministic** scenarios (the expectation names one `kind`): any change in which
//!   outcomes occur is a difference;
//! - **racy** ones (a distribution: `kinds`, `min_ratio`): for each outcome, Fisher's exact
//!   test of "this outcome vs the rest" in A against B, two-sided, Bonferroni-corrected over
//!   the outcomes seen; a difference when some p < alpha / k. So run-to-run noise is not a
//!   regression, a real shift is.
//!
//! A difference is a *kernel* difference only when both sets ran under the same conditions
//! (place, accelerator, CPUs, memory): racy outcomes move with the VM, not only the kernel.

pub mod fisher;
pub mod matrix;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tcplab_record::{BatchLine, BatchRecord, Summary};

/// The significance level used unless told otherwise.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// Errors reading result sets.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A directory or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A summary.json is not what `tcplab run` writes.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No summary.json anywhere below the directory.
    #[error("{0}: no results (no summary.json below it)")]
    Empty(PathBuf),
}

pub use tcplab_record::Conditions;

/// One scenario's batch, as far as a comparison needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    /// Scenario name.
    pub scenario: String,
    /// Kernel release (`uname -r`), when recorded.
    pub kernel: Option<String>,
    /// Run conditions.
    pub conditions: Conditions,
    /// Outcome counts (`four-way/client` → n).
    pub counts: BTreeMap<String, u64>,
    /// Runs counted.
    pub runs: u64,
    /// The expectation held (None: skipped or unknown).
    pub passed: Option<bool>,
    /// Why it was skipped, if it was.
    pub skipped: Option<String>,
    /// The batch was interrupted.
    pub cancelled: bool,
    /// Every run was a timing miss (the machine was too busy): it says nothing about the
    /// kernel, so it neither fails a cell nor differs from another.
    pub inconclusive: bool,
    /// The expectation names one kind: any change of outcomes is a difference.
    pub deterministic: bool,
    /// Runs whose program timing missed its knob (not counted as kernel outcomes).
    pub timing_misses: Option<u64>,
    /// Where it came from (a batch directory, or empty for a JSON line).
    pub source: PathBuf,
}

impl ScenarioResult {
    /// From a line of `tcplab run --json` (or the head of a summary.json).
    pub fn from_line(line: &BatchLine, source: &Path) -> ScenarioResult {
        match line {
            BatchLine::Ran(b) => ScenarioResult::from_batch(b, source),
            BatchLine::Skipped(s) => ScenarioResult {
                scenario: s.scenario.clone(),
                kernel: s.kernel.clone(),
                conditions: s.conditions.clone().unwrap_or_else(Conditions::unknown),
                counts: BTreeMap::new(),
                runs: 0,
                passed: None,
                skipped: Some(s.skipped.clone()),
                cancelled: false,
                inconclusive: false,
                deterministic: false,
                timing_misses: None,
                source: source.to_owned(),
            },
        }
    }

    /// From a batch that ran.
    pub fn from_batch(b: &BatchRecord, source: &Path) -> ScenarioResult {
        ScenarioResult {
            scenario: b.scenario.clone(),
            kernel: b.kernel.clone(),
            conditions: b.conditions.clone().unwrap_or_else(Conditions::unknown),
            counts: b.counts.clone(),
            runs: b.runs,
            passed: if b.inconclusive { None } else { Some(b.passed) },
            skipped: None,
            inconclusive: b.inconclusive,
            cancelled: b.cancelled,
            deterministic: b.expect.kind.is_some(),
            timing_misses: Some(b.timing_misses),
            source: source.to_owned(),
        }
    }

    /// `four-way/client ×20, three-way/client ×1`, most frequent first.
    pub fn counts_text(&self) -> String {
        if let Some(s) = &self.skipped {
            return format!("skipped: {s}");
        }
        counts_text(&self.counts)
    }
}

/// `three-way/server ×19, four-way/server ×1`, most frequent first (`no runs` when empty).
pub fn counts_text(counts: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if v.is_empty() {
        return "no runs".into();
    }
    v.iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every scenario batch below `dir` (summary.json files). Where a scenario ran several times
/// (several stamps), the newest batch counts; the others are returned as `superseded`.
pub fn load_set(dir: &Path) -> Result<ResultSet, CompareError> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| CompareError::Io {
            path: d.clone(),
            source,
        })?;
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "summary.json") {
                found.push(p);
            }
        }
    }
    if found.is_empty() {
        return Err(CompareError::Empty(dir.to_owned()));
    }
    found.sort();
    let mut by_name: BTreeMap<String, ScenarioResult> = BTreeMap::new();
    let mut superseded = Vec::new();
    for p in found {
        let text = std::fs::read_to_string(&p).map_err(|source| CompareError::Io {
            path: p.clone(),
            source,
        })?;
        let batch = p.parent().unwrap_or(&p).to_owned();
        let r = ScenarioResult::from_batch(&read_summary(&p, &text)?, &batch);
        // Stamps sort in time order, and so do the sorted paths of one scenario's batches.
        if let Some(old) = by_name.insert(r.scenario.clone(), r) {
            superseded.push(old.source);
        }
    }
    Ok(ResultSet {
        root: dir.to_owned(),
        scenarios: by_name,
        superseded,
    })
}

/// A summary.json as evidence: what `tcplab run` writes, with runs to compare. A file that is
/// not (not JSON, a field missing or out of range, a sweep's summary, counts that do not add
/// up to `runs`, no run counted) is an error naming it: "same" must mean compared.
fn read_summary(p: &Path, text: &str) -> Result<BatchRecord, CompareError> {
    let format = |message: String| CompareError::Format {
        path: p.to_owned(),
        message,
    };
    let summary: Summary = match tcplab_record::parse(p, text) {
        Ok(s) => s,
        Err(e) => {
            let v: Option<Value> = serde_json::from_str(text).ok();
            if v.as_ref()
                .is_some_and(|v| v.get("points_planned").is_some())
            {
                return Err(format(
                    "a sweep's summary (tcplab sweep), not a batch of tcplab run: compare the --out directories of tcplab run".into(),
                ));
            }
            let at =
                e.at.map_or(String::new(), |(l, c)| format!("line {l} column {c}: "));
            return Err(CompareError::Format {
                path: p.to_owned(),
                message: format!("{at}not a tcplab summary.json: {}", e.message),
            });
        }
    };
    let b = summary.batch;
    let counted = b
        .counts
        .values()
        .try_fold(0u64, |sum, n| sum.checked_add(*n));
    if counted != Some(b.runs) {
        return Err(format(format!(
            "counts add up to {}, but runs is {}: not what tcplab run writes",
            counted.map_or("more than 2^64".into(), |n| n.to_string()),
            b.runs
        )));
    }
    if b.runs == 0 {
        return Err(format(
            "no run counted (the batch was cut short, or every run missed its timing): nothing to compare"
                .into(),
        ));
    }
    Ok(b)
}

/// The scenario batches of one result set.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    /// The directory it was read from.
    pub root: PathBuf,
    /// Scenario name → its newest batch.
    pub scenarios: BTreeMap<String, ScenarioResult>,
    /// Older batches of the same scenarios, not compared.
    pub superseded: Vec<PathBuf>,
}

impl ResultSet {
    /// The kernels its batches ran on (empty when none was recorded).
    pub fn kernels(&self) -> BTreeSet<&str> {
        self.scenarios
            .values()
            .filter_map(|r| r.kernel.as_deref())
            .collect()
    }
}

/// The verdict on one scenario in two sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// The distributions differ.
    pub differs: bool,
    /// Why (or why not), in words.
    pub reason: String,
    /// The smallest per-outcome p-value (racy scenarios).
    pub p_value: Option<f64>,
    /// The outcome that moved most: the one with the smallest p-value (racy scenarios), or
    /// the first that appeared or vanished (deterministic ones).
    pub outcome: Option<String>,
    /// That outcome's share of the runs in A and in B (0..=1).
    pub shares: Option<(f64, f64)>,
    /// The two sets ran under different conditions: why.
    pub conditions_differ: Option<String>,
}

/// Compare one scenario's batches `a` and `b` at significance `alpha`.
pub fn compare(a: &ScenarioResult, b: &ScenarioResult, alpha: f64) -> Comparison {
    let conditions_differ = a.conditions.differs_from(&b.conditions);
    let share = |r: &ScenarioResult, o: &str| {
        r.counts.get(o).copied().unwrap_or(0) as f64 / r.runs.max(1) as f64
    };
    let done = |differs: bool, reason: String, p_value: Option<f64>, outcome: Option<&String>| {
        Comparison {
            scenario: a.scenario.clone(),
            differs,
            reason,
            p_value,
            outcome: outcome.cloned(),
            shares: outcome.map(|o| (share(a, o), share(b, o))),
            conditions_differ: conditions_differ.clone(),
        }
    };
    if a.skipped.is_some() || b.skipped.is_some() {
        let differs = a.skipped.is_some() != b.skipped.is_some();
        let why = a.skipped.as_ref().or(b.skipped.as_ref()).cloned();
        return done(
            differs,
            format!("skipped: {}", why.unwrap_or_default()),
            None,
            None,
        );
    }
    if a.inconclusive || b.inconclusive {
        return done(
            false,
            "inconclusive on one side (the machine was too busy): nothing to compare".into(),
            None,
            None,
        );
    }
    if a.runs == 0 || b.runs == 0 {
        return done(
            false,
            "no runs on one side: nothing to compare".into(),
            None,
            None,
        );
    }
    let outcomes: BTreeSet<&String> = a
        .counts
        .iter()
        .chain(b.counts.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| k)
        .collect();
    if a.deterministic || b.deterministic {
        let seen = |r: &ScenarioResult| -> BTreeSet<String> {
            r.counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let (sa, sb) = (seen(a), seen(b));
        return if sa == sb {
            done(false, "deterministic: same outcomes".into(), None, None)
        } else {
            let only_a: Vec<_> = sa.difference(&sb).cloned().collect();
            let only_b: Vec<_> = sb.difference(&sa).cloned().collect();
            done(
                true,
                format!(
                    "deterministic: outcomes changed (only in A: [{}]; only in B: [{}])",
                    only_a.join(", "),
                    only_b.join(", ")
                ),
                None,
                only_b.first().or(only_a.first()),
            )
        };
    }
    let k = outcomes.len().max(1) as f64;
    let mut best: Option<(f64, &String)> = None;
    for o in &outcomes {
        let x = a.counts.get(*o).copied().unwrap_or(0);
        let y = b.counts.get(*o).copied().unwrap_or(0);
        let p = fisher::two_sided(x, a.runs.saturating_sub(x), y, b.runs.saturating_sub(y));
        if best.is_none_or(|(bp, _)| p < bp) {
            best = Some((p, o));
        }
    }
    match best {
        Some((p, o)) if p < alpha / k => done(
            true,
            format!(
                "racy: {o} share changed (Fisher exact p = {p:.2e} < {alpha}/{k} = {:.2e})",
                alpha / k
            ),
            Some(p),
            Some(o),
        ),
        Some((p, o)) => done(
            false,
            format!(
                "racy: within noise (smallest Fisher exact p = {p:.3} for {o}, needs < {:.2e})",
                alpha / k
            ),
            Some(p),
            Some(o),
        ),
        None => done(false, "no outcomes".into(), None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(counts: &[(&str, u64)], deterministic: bool, accel: &str) -> ScenarioResult {
        let counts: BTreeMap<String, u64> =
            counts.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
        ScenarioResult {
            scenario: "s".into(),
            kernel: Some("6.1".into()),
            conditions: Conditions {
                place: "qemu".into(),
                accel: accel.into(),
                cpus: Some(1),
                memory_mib: Some(512),
                qemu: None,
                kernel_image: None,
            },
            runs: counts.values().sum(),
            counts,
            passed: Some(true),
            skipped: None,
            cancelled: false,
            inconclusive: false,
            deterministic,
            timing_misses: None,
            source: PathBuf::new(),
        }
    }

    #[test]
    fn deterministic_any_change_is_a_difference() {
        let a = result(&[("four-way/client", 20)], true, "tcg");
        let b = result(&[("four-way/client", 50)], true, "tcg");
        assert!(!compare(&a, &b, DEFAULT_ALPHA).differs);
        let c = result(
            &[("four-way/client", 19), ("three-way/client", 1)],
            true,
            "tcg",
        );
        let cmp = compare(&a, &c, DEFAULT_ALPHA);
        assert!(cmp.differs, "{cmp:?}");
        assert!(cmp.reason.contains("only in B: [three-way/client]"));
        assert_eq!(cmp.outcome.as_deref(), Some("three-way/client"));
        assert_eq!(cmp.shares, Some((0.0, 0.05)));
    }

    #[test]
    fn racy_noise_is_not_a_difference_but_a_shift_is() {
        let host = result(
            &[
                ("three-way/server", 196),
                ("three-way/client", 3),
                ("simultaneous/both", 1),
            ],
            false,
            "tcg",
        );
        let noise = result(
            &[
                ("three-way/server", 192),
                ("three-way/client", 6),
                ("simultaneous/both", 2),
            ],
            false,
            "tcg",
        );
        let cmp = compare(&host, &noise, DEFAULT_ALPHA);
        assert!(!cmp.differs, "{cmp:?}");
        let shifted = result(
            &[("three-way/server", 106), ("three-way/client", 94)],
            false,
            "tcg",
        );
        let cmp = compare(&host, &shifted, DEFAULT_ALPHA);
        assert!(cmp.differs, "{cmp:?}");
        assert!(cmp.p_value.unwrap() < 1e-10);
        // Which outcome moved, and its shares on each side: what the matrix page shows.
        assert_eq!(cmp.outcome.as_deref(), Some("three-way/client"));
        assert_eq!(cmp.shares, Some((0.015, 0.47)));
        assert!(cmp.conditions_differ.is_none());
    }

    #[test]
    fn conditions_are_compared() {
        let a = result(&[("x", 1)], true, "tcg");
        let b = result(&[("x", 1)], true, "kvm");
        let cmp = compare(&a, &b, DEFAULT_ALPHA);
        assert_eq!(
            cmp.conditions_differ.as_deref(),
            Some("accelerator tcg vs kvm")
        );
        assert_eq!(a.conditions.describe(), "qemu tcg, 1 cpu, 512 MiB");
        let mut host = b.clone();
        host.conditions.cpus = Some(2);
        host.conditions.memory_mib = None;
        assert_eq!(
            compare(&a, &host, DEFAULT_ALPHA)
                .conditions_differ
                .as_deref(),
            Some("accelerator tcg vs kvm, cpus 1 vs 2, memory 512 vs unknown MiB")
        );
    }

    /// A summary.json as `tcplab run` writes it (main c7f649a's binary, in tcplab-record's
    /// test data), with `runs` and `counts` set.
    fn summary(n: u64) -> Value {
        let text = include_str!("../../record/tests/data/summary-host.json");
        let mut v: Value = serde_json::from_str(text).unwrap();
        v["runs"] = n.into();
        v["counts"] = serde_json::json!({ "four-way/client": n });
        v
    }

    #[test]
    fn sets_keep_the_newest_batch_per_scenario() {
        let tmp = tempfile::tempdir().unwrap();
        for (stamp, n) in [("20260101T000000Z", 1), ("20260102T000000Z", 2)] {
            let d = tmp.path().join("k/seed-four-way").join(stamp);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("summary.json"), summary(n).to_string()).unwrap();
        }
        let set = load_set(tmp.path()).unwrap();
        assert_eq!(set.scenarios["seed-four-way"].runs, 2);
        assert!(set.scenarios["seed-four-way"].deterministic);
        assert_eq!(set.superseded.len(), 1);
        std::fs::write(
            tmp.path()
                .join("k/seed-four-way/20260102T000000Z/summary.json"),
            "{",
        )
        .unwrap();
        assert!(matches!(
            load_set(tmp.path()),
            Err(CompareError::Format { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_set(empty.path()),
            Err(CompareError::Empty(_))
        ));
    }

    /// Issue 20 item 4: evidence that is not evidence is an error naming the file, never
    /// "no runs" compared as the same.
    #[test]
    fn summaries_that_are_not_evidence_name_their_file() {
        let remove = |f: &str| {
            let mut v = summary(2);
            v.as_object_mut().unwrap().remove(f);
            v.to_string()
        };
        let mut negative = summary(2);
        negative["counts"]["four-way/client"] = (-2).into();
        let mut huge = summary(2);
        huge["runs"] = serde_json::json!(1e30);
        let mut over = summary(2);
        over["counts"]["three-way/server"] = u64::MAX.into();
        let mut more = summary(2);
        more["counts"]["four-way/client"] = 5.into();
        let sweep = r#"{"scenario": "seed-four-way", "scenario_hash": "497c75796b4974cd",
            "repeat": 2, "knobs": [], "points_planned": 2, "points_done": 2}"#;
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "EOF while parsing"),
            ("{}".into(), "missing field"),
            (remove("counts"), "missing field `counts`"),
            (remove("runs"), "missing field `runs`"),
            (remove("expect"), "missing field `expect`"),
            (negative.to_string(), "integer `-2`, expected u64"),
            (huge.to_string(), "expected u64"),
            (over.to_string(), "more than 2^64"),
            (more.to_string(), "counts add up to 5, but runs is 2"),
            (summary(0).to_string(), "no run counted"),
            (sweep.into(), "a sweep's summary"),
        ];
        for (text, want) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().join("s/20260101T000000Z");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("summary.json"), &text).unwrap();
            let e = load_set(tmp.path()).unwrap_err().to_string();
            assert!(
                e.starts_with(&d.join("summary.json").display().to_string()),
                "{e}"
            );
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
