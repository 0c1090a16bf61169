//! `kernels.json`: what `run --kernel` ran, column by column, written in its `--out` when it
//! ends. The column order matters (each column is compared with an earlier one), and a
//! column whose guest failed, or the scenarios its kernel could not run, leave no
//! summary.json behind: this file keeps them for the matrix that is drawn later
//! (`tcplab report`).

use crate::{Conditions, SkippedRecord};
use serde::{Deserialize, Serialize};

/// The file's name in `--out`.
pub const KERNELS_FILE: &str = "kernels.json";

/// One `run --kernel` invocation's columns, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelsRecord {
    /// The columns, in `--kernel` order.
    pub columns: Vec<ColumnRecord>,
}

/// One kernel's column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnRecord {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Its results directory, relative to the file (`6.1.0-57-cloud-amd64`).
    pub dir: String,
    /// Under which conditions it ran.
    pub conditions: Conditions,
    /// Why the column has no results (the guest failed), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Scenarios the kernel could not run, with the reason.
    #[serde(default)]
    pub skipped: Vec<SkippedRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names `tcplab report` reads back (README: kernels.json).
    #[test]
    fn kernels_json_reads_back_with_its_promised_fields() {
        let text = r#"{"columns": [
            {"kernel": "6.1.0-57-cloud-amd64", "dir": "6.1.0-57-cloud-amd64",
             "conditions": {"place": "qemu", "accel": "tcg", "cpus": 1, "memory_mib": 512},
             "error": "qemu exited with Some(1)",
             "skipped": [{"scenario": "lost-fin", "file": "scenarios/link/lost-fin.toml",
                          "skipped": "no TUN in this kernel", "passed": null}]}
        ]}"#;
        let r: KernelsRecord = crate::parse(std::path::Path::new(KERNELS_FILE), text).unwrap();
        let c = &r.columns[0];
        assert_eq!(c.dir, "6.1.0-57-cloud-amd64");
        assert_eq!(c.error.as_deref(), Some("qemu exited with Some(1)"));
        assert_eq!(c.skipped[0].skipped, "no TUN in this kernel");
        let back = serde_json::to_value(&r).unwrap();
        for f in ["kernel", "dir", "conditions", "error", "skipped"] {
            assert!(back["columns"][0].get(f).is_some(), "{f}");
        }
    }
}
