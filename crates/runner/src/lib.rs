//! tcplab-runner: run TOML scenarios in private network namespaces, capture every run with
//! libpcap, classify it with `tcplab-trace`, check the expectation, write `results/`.
//!
//! - [`scenario`]: the file format ([`Scenario::load`], [`Scenario::set_knob`], [`discover`]);
//!   `[link]` runs a scenario across a link with a one-way delay instead of loopback.
//! - [`run`]: the batch driver and the steps every run shares ([`run_repeated`],
//!   [`RunOptions`], [`RunOutcome`]); the places where runs happen (fresh namespace, pooled
//!   namespace, delayed link) are private modules behind one trait (`place`).
//! - [`expect`]: per-run checks and the batch [`Verdict`].
//! - [`batch`]: one scenario's batch from its directory to its summary ([`batch::run_batch`]).
//! - [`results`]: the `results/<scenario>/<stamp>/` layout (pcap, analysis.json, report.txt,
//!   summary.json, meta.json).
//! - [`knob`], [`knob_table`]: every knob declared once (key, type, unit, range, default,
//!   doc, flag, where it goes); the file format, `--set`/`--vary`, the sweep's units and the
//!   `server`/`client` flags read it.
//! - [`junit`]: JUnit XML.
//! - [`ktap`]: KTAP (TAP version 13) for kernel CI and the kselftest runner.
//! - [`timing`]: timing misses (a program missed its close delay) and the batch's measured timings.
//! - [`sysctl`]: a scenario's `[sysctl]` tried in a fresh namespace before any run.
//!
//! ```no_run
//! use tcplab_runner::{expect, run_repeated, RunOptions, Scenario};
//!
//! let s = Scenario::load("scenarios/seed/seed-three-way.toml".as_ref())?;
//! let runs = run_repeated(&s, &RunOptions { repeat: 20, jobs: 4, ..RunOptions::for_scenario(&s) })?;
//! let v = expect::verdict(&s.expect, &runs);
//! println!("{}: {:?} passed={}", s.name(), v.counts, v.passed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
pub mod discover;
pub mod expect;
pub mod junit;
mod kernel_states;
pub mod kernel_version;
pub mod knob;
pub mod knob_table;
pub mod ktap;
mod notice;
pub mod outcome;
mod place;
pub mod results;
pub mod run;
pub mod scenario;
mod scenario_error;
mod shown;
pub mod stall;
pub mod sysctl;
pub mod timing;

pub use expect::{verdict, Tally, Verdict};
pub use run::{
    check_privileges, max_jobs, run_repeated, run_streaming, KernelState, KernelStates,
    KernelTraceKeeper, RunError, RunOptions, RunOutcome, RunSink, ViewVerdict,
};
pub use scenario::{
    discover, CountRange, Expect, IpVersion, LinkFault, LinkKnobs, NetnsKnobs, Outcome, Scenario,
    ScenarioError,
};
pub use tcplab_record as record;
pub use tcplab_record::Problem;
pub use tcplab_trace::{Closer, TcpState, TeardownKind};
