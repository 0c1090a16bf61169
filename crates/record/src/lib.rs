//! tcplab-record: the records tcplab writes and reads back, as plain serde types.
//!
//! Every file of a batch directory and every line of `tcplab run --json` is one of these
//! types serialized, and every reader (`run --kernel`, the guest, `compare`) deserializes them
//! back: field names live here and nowhere else on the run path.
//!
//! | file / stream                      | type                                  |
//! |------------------------------------|---------------------------------------|
//! | `tcplab run --json`, one line      | [`BatchLine`] ([`BatchRecord`] or [`SkippedRecord`]) |
//! | `summary.json`                     | [`Summary`] = [`BatchRecord`] + `run_outcomes` |
//! | `runs.jsonl`, one line             | [`RunRecord`]                         |
//! | `meta.json`                        | [`MetaRecord`]                        |
//! | `conditions` in all of them        | [`Conditions`]                        |
//! | `kernels.json` (`run --kernel`)    | [`KernelsRecord`]                     |
//!
//! The field names and meanings are a promise (README.md, docs/teardown.md; scripts read them):
//! add fields, never rename or drop one. Rust-side the run record is nested by side
//! ([`SideRecord`]) and its problems are data ([`Problem`]); the flat names on disk
//! (`server_close_delay_ms`, `mismatch`, `timing_miss` ...) are derived from them in `run.rs`.
//!
//! [`Side`] is the workspace's one client/server type (tcplab-trace re-exports it).
//!
//! This crate depends on no other tcplab crate: kinds, closers and states are their contract
//! spellings (`four-way`, `client`, `FIN_WAIT_1`), as in the analysis JSON.

mod batch;
mod conditions;
mod kernels;
mod meta;
mod problem;
mod read;
mod run;
mod side;

pub use batch::{
    BatchLine, BatchRecord, ExpectRecord, PlaceCosts, Quantiles, SkippedRecord, Summary,
    TimingRecord,
};
pub use conditions::Conditions;
pub use kernels::{ColumnRecord, KernelsRecord, KERNELS_FILE};
pub use meta::{MetaRecord, OptionsRecord};
pub use problem::{Problem, Problems};
pub use read::{parse, to_line, to_pretty, RecordError};
pub use run::{InjectedRecord, KernelRecord, RunRecord, SideRecord, ViewRecord, Views};
pub use side::Side;
