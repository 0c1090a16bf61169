//! One scenario's batch: the line `tcplab run --json` prints, the head of summary.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conditions::Conditions;
use crate::run::RunRecord;

/// A batch that ran (finished, failed or cut short).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Scenario name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// The expectation.
    pub expect: ExpectRecord,
    /// Runs counted (timing misses excluded).
    pub runs: u64,
    /// Outcome counts, `three-way/server` → n.
    pub counts: BTreeMap<String, u64>,
    /// Captured packets lost, over all runs.
    pub drops: u64,
    /// Runs that failed to run (error): these never pass.
    pub errors: u64,
    /// Every expectation held, and the batch was not cut short.
    pub passed: bool,
    /// Why the batch failed (first reason), if it did.
    pub mismatch: Option<String>,
    /// Tries that were timing misses, retried ones included.
    #[serde(default)]
    pub timing_misses: u64,
    /// Runs still a timing miss after their retries: not in `runs` or `counts`.
    #[serde(default)]
    pub timing_miss_runs: u64,
    /// Measured timings of every finished run (absent in results from before 2026-12-01).
    #[serde(default)]
    pub timing: Option<TimingRecord>,
    /// The batch directory (`None` when nothing was written).
    pub results_dir: Option<String>,
    /// Wall time of the batch, seconds.
    pub elapsed_s: f64,
    /// The batch was interrupted.
    pub cancelled: bool,
    /// Every run was a timing miss, also when the scenario was tried again at the suite's
    /// end: the machine was too busy to judge the kernel (not passed, not a failure; written
    /// only when true, so older readers and golden files see the lines they knew).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
    /// `run --kernel`: the kernel release the batch ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// `run --kernel`: under which conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// `run --kernel`: the place's own costs (the same in every line of its batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceCosts>,
}

/// A scenario the kernel cannot run (a `run --kernel` guest's, or the host's for a plain
/// `run`), with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedRecord {
    /// Scenario name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// Why it was skipped.
    pub skipped: String,
    /// Always `null`: a skipped scenario neither passed nor failed.
    pub passed: Option<bool>,
    /// The kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Under which conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// The place's own costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceCosts>,
}

impl SkippedRecord {
    /// `scenario` (from `file`) skipped for `why`; where and under which conditions are the
    /// caller's to add (`run --kernel`).
    pub fn new(scenario: &str, file: &str, why: String) -> SkippedRecord {
        SkippedRecord {
            scenario: scenario.to_owned(),
            file: file.to_owned(),
            skipped: why,
            passed: None,
            kernel: None,
            conditions: None,
            place: None,
        }
    }
}

/// One line of `tcplab run --json` / `run --kernel --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BatchLine {
    /// The scenario ran.
    Ran(Box<BatchRecord>),
    /// The scenario was skipped.
    Skipped(Box<SkippedRecord>),
}

impl<'de> Deserialize<'de> for BatchLine {
    /// A line with `skipped` set is a [`SkippedRecord`]; any other is a [`BatchRecord`] with
    /// all its fields (an untagged enum would hide which field is wrong).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<BatchLine, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        if v.get("skipped").is_some_and(|s| !s.is_null()) {
            serde_json::from_value(v)
                .map(|s| BatchLine::Skipped(Box::new(s)))
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(v)
                .map(|b| BatchLine::Ran(Box::new(b)))
                .map_err(D::Error::custom)
        }
    }
}

impl BatchLine {
    /// Scenario name.
    pub fn scenario(&self) -> &str {
        match self {
            BatchLine::Ran(b) => &b.scenario,
            BatchLine::Skipped(s) => &s.scenario,
        }
    }

    /// The scenario file.
    pub fn file(&self) -> &str {
        match self {
            BatchLine::Ran(b) => &b.file,
            BatchLine::Skipped(s) => &s.file,
        }
    }

    /// Point the line at the host's copy of its scenario file.
    pub fn set_file(&mut self, file: String) {
        match self {
            BatchLine::Ran(b) => b.file = file,
            BatchLine::Skipped(s) => s.file = file,
        }
    }

    /// Add what the place knows: kernel, conditions, costs.
    pub fn set_place(&mut self, kernel: &str, conditions: &Conditions, place: &PlaceCosts) {
        let (k, c, p) = match self {
            BatchLine::Ran(b) => (&mut b.kernel, &mut b.conditions, &mut b.place),
            BatchLine::Skipped(s) => (&mut s.kernel, &mut s.conditions, &mut s.place),
        };
        *k = Some(kernel.to_owned());
        *c = Some(conditions.clone());
        *p = Some(place.clone());
    }

    /// `seed-four-way PASS {"four-way/client":20}` for progress displays.
    pub fn summary_line(&self) -> String {
        match self {
            BatchLine::Ran(b) => format!(
                "{} {} {}",
                b.scenario,
                if b.passed {
                    "PASS"
                } else if b.inconclusive {
                    "INCONCLUSIVE"
                } else {
                    "FAIL"
                },
                serde_json::to_string(&b.counts).unwrap_or_default()
            ),
            BatchLine::Skipped(s) => format!("{} SKIP null", s.scenario),
        }
    }
}

/// summary.json: the batch's line plus every run (`run_outcomes`, in run order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The batch.
    #[serde(flatten)]
    pub batch: BatchRecord,
    /// Every finished run.
    pub run_outcomes: Vec<RunRecord>,
}

/// The expectation as the scenario states it. Its shape is the scenario file's
/// (`[expect]`, owned by the scenario parser): the two fields readers decide on are typed,
/// the others are kept as written so that no reader drops what a newer writer added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectRecord {
    /// One kind: the scenario is deterministic (any change of outcomes is a difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Any of these kinds (a racy scenario's distribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// The rest (`active_closer`, `min_ratio`, `states`, `fin_ack_delay_ms` ...).
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// A batch's measured timings, ms (each `null` when no run measured it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingRecord {
    /// The timing tolerance the batch ran with.
    pub tolerance_ms: f64,
    /// Server close delays.
    pub server_close_delay_ms: Option<Quantiles>,
    /// Client close delays.
    pub client_close_delay_ms: Option<Quantiles>,
    /// First FIN to its separate ACK (four-way closes).
    pub fin_ack_delay_ms: Option<Quantiles>,
    /// How late the server ran.
    pub server_wake_late_ms: Option<Quantiles>,
    /// How late the client ran.
    pub client_wake_late_ms: Option<Quantiles>,
}

/// min / p50 / p99 / max of one measure, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Samples.
    pub n: u64,
    /// Smallest.
    pub min: Option<f64>,
    /// Median (to within 0.2 %).
    pub p50: Option<f64>,
    /// 99th percentile (to within 0.2 %).
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// What a place spent on a batch (`run --kernel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceCosts {
    /// Guest: seconds from QEMU's start to the guest's userspace.
    pub boot_s: Option<f64>,
    /// Guest: seconds the scenarios took inside the guest.
    pub guest_s: Option<f64>,
    /// Wall time of the whole batch, seconds.
    pub elapsed_s: f64,
    /// Guest: bytes of the result stream moved back to the host.
    pub bytes_moved: u64,
    /// Guest: seconds of `guest_s` in the guest's `tcplab run` (the runs, and the setup
    /// around each scenario's batch: `suite_s` minus the batches' `elapsed_s`). This and
    /// the three below are left out where not measured (the host, older guests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_s: Option<f64>,
    /// Guest: seconds of `guest_s` spent streaming the results files back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_s: Option<f64>,
    /// Guest: seconds on the host before QEMU started (building the initramfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initramfs_s: Option<f64>,
    /// Guest: seconds on the host after QEMU ended (the result stream read into results/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpack_s: Option<f64>,
}
