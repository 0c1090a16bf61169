//! Running a scenario: where runs happen, the driver that schedules them, and the steps every
//! run shares.
//!
//! [`run_repeated`] only schedules: it picks the *place* for the batch ([`crate::place`]:
//! a fresh namespace per run, one pooled namespace, or a delayed link per run), starts
//! `jobs` workers through it and collects the outcomes in index order. Each place sets up
//! its namespace(s) and capture, and then uses the shared steps below:
//!
//! - [`program`]: the two programs' options, the sysctls, the exchange.
//! - [`collect`]: reading a capture until it shows the teardown complete.
//! - [`finish`]: classification (of both ends' captures on a link), the per-run check,
//!   the run's files.
//! - [`kernel`]: the kernel's own socket states, recorded during the run.
//!
//! A run is over when both programs have closed **and** the capture shows the teardown
//! complete (RST, or both FINs and the final ACK or an RST answering the last FIN), or
//! [`COMPLETE_TIMEOUT`] has passed; so no
//! packet of the run is missing and nothing waits for a fixed quiet period.

pub(crate) mod collect;
pub(crate) mod drive;
pub(crate) mod finish;
pub mod kernel;
pub(crate) mod program;

use tcplab_capture::{LiveCapture, Netns};

use crate::scenario::Scenario;
use collect::fresh_capture_config;
use finish::{capture_fatal, netns_fatal};
pub use kernel::{KernelState, KernelStates, KernelTraceKeeper};

// The run's plain data lives in `crate::outcome` (so that the places, the checks and the
// writers need not import the driver); re-exported here, where callers have found it.
pub use crate::notice::take_notices;
pub use crate::outcome::{
    ProgressFn, RunError, RunOptions, RunOutcome, RunSink, ViewVerdict, COMPLETE_TIMEOUT,
    FRESH_PORT, PINNED_SYSCTLS, POOL_PORTS, RECORDED_SYSCTLS,
};
pub use drive::max_jobs;

/// Run `opts.repeat` runs of `scenario` (variants in turn), `opts.jobs` at a time.
/// Returns the finished runs in index order (fewer than `repeat` when cancelled).
/// Holds every outcome: for big batches use [`run_streaming`].
pub fn run_repeated(scenario: &Scenario, opts: &RunOptions) -> Result<Vec<RunOutcome>, RunError> {
    let mut outcomes = Vec::new();
    run_streaming(scenario, opts, &mut |o| {
        outcomes.push(o);
        Ok(())
    })?;
    Ok(outcomes)
}

/// Like [`run_repeated`], but every finished run goes to `sink` (in index order) instead of
/// a vector, so a batch of any size runs in memory bounded by `jobs`.
pub fn run_streaming(
    scenario: &Scenario,
    opts: &RunOptions,
    sink: &mut RunSink<'_>,
) -> Result<(), RunError> {
    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Results {
            path: dir.clone(),
            source,
        })?;
    }
    // The first place that takes the batch (the last, a fresh namespace, takes any).
    let place = crate::place::PLACES
        .iter()
        .find(|p| (p.takes)(scenario, opts))
        .unwrap_or(&crate::place::host::ENTRY);
    (place.drive)(scenario, opts, sink)
}

/// Check that this process may create namespaces and captures: one namespace, one capture.
pub fn check_privileges() -> Result<(), RunError> {
    let ns = Netns::new().map_err(netns_fatal)?;
    let cap = LiveCapture::open(&ns, &fresh_capture_config()).map_err(capture_fatal)?;
    drop(cap);
    Ok(())
}
