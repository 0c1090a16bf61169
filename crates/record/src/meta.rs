//! meta.json: what a batch ran with (written first, before any run).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::batch::ExpectRecord;
use crate::conditions::Conditions;

/// A batch's environment, knobs and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaRecord {
    /// Scenario name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// The scenario's one line of description.
    pub description: Option<String>,
    /// `uname -r`.
    pub kernel: String,
    /// Sysctls the runner pins plus the scenario's `[sysctl]`, name → value.
    pub sysctls_pinned: BTreeMap<String, String>,
    /// Sysctls as a fresh namespace shows them (name → value, or an error text).
    pub sysctls_fresh_namespace: BTreeMap<String, String>,
    /// The scenario's knobs as it states them (their shape is the scenario parser's).
    pub knobs: serde_json::Value,
    /// The expectation.
    pub expect: ExpectRecord,
    /// The batch's options.
    pub options: OptionsRecord,
    /// The tcplab version that wrote it.
    pub tcplab_version: String,
    /// When the batch started, `YYYYMMDDTHHMMSSZ`.
    pub started_utc: String,
    /// `run --kernel`: under which conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// `tcplab run` options that shape a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionsRecord {
    /// Runs asked for.
    pub repeat: u32,
    /// Runs in parallel.
    pub jobs: usize,
    /// One namespace and capture for all runs.
    pub pooled: bool,
    /// Every run keeps its files.
    pub keep_pcaps: bool,
    /// Failed runs keep their files.
    pub keep_failed: bool,
}
