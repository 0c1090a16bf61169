//! Places where a run happens. Each place is one module behind [`RunPlace`]; the driver
//! ([`crate::run::run_repeated`]) only schedules runs onto workers and never asks which
//! place it drives.
//!
//! - [`host`]: a fresh anonymous network namespace per run, traffic on its `lo`.
//! - [`pooled`]: one namespace and one capture for the whole batch, a fresh server port per
//!   run, packets split by port.
//! - [`link`]: a fresh pair of namespaces per run joined by a [`tcplab_capture::DelayLink`].
//!
//! Shared steps live in [`crate::run`]: program options and the exchange (`run::program`),
//! reading a capture until the teardown is complete (`run::collect`), classification, the
//! per-run check and the run's files (`run::finish`).

pub(crate) mod host;
pub(crate) mod link;
pub(crate) mod pooled;

use std::thread::{JoinHandle, Scope};

use crate::outcome::{RunError, RunOptions, RunOutcome, RunSink};
use crate::scenario::{IpVersion, Scenario};

/// A place as the driver picks it: when it takes a batch, and how a batch is driven there.
/// Adding a place is a module with its `ENTRY`, listed in [`PLACES`].
#[derive(Debug)]
pub(crate) struct PlaceEntry {
    /// What it is called (tests and docs; the driver never asks).
    #[allow(dead_code)]
    pub name: &'static str,
    /// This place takes the batch.
    pub takes: fn(&Scenario, &RunOptions) -> bool,
    /// Open the place and drive the batch there ([`crate::run::drive`]).
    pub drive: fn(&Scenario, &RunOptions, &mut RunSink<'_>) -> Result<(), RunError>,
}

/// The places, asked in order; the last takes any batch.
pub(crate) const PLACES: &[PlaceEntry] = &[pooled::ENTRY, link::ENTRY, host::ENTRY];

/// Where runs happen. `Sync`: all workers of a batch share one place.
pub(crate) trait RunPlace: Sync {
    /// Start worker `worker` on a scoped thread running `body`. The default is a plain thread;
    /// a place whose runs must happen inside a shared namespace starts it there.
    fn spawn_worker<'scope, 'env, F>(
        &'env self,
        sc: &'scope Scope<'scope, 'env>,
        worker: usize,
        body: F,
    ) -> Result<(), RunError>
    where
        F: FnOnce() + Send + 'scope,
    {
        std::thread::Builder::new()
            .name(format!("tcplab-run-{worker}"))
            .spawn_scoped(sc, body)
            .map(|_| ())
            .map_err(|e| RunError::Setup(format!("spawning a worker: {e}")))
    }

    /// Carry out run `index` of `scenario` over `ip`, on the calling worker thread.
    /// `Err` only for what stops the whole batch (missing privileges, ...); a run that went
    /// wrong is an outcome with `error` set. Slow teardown that does not affect the result
    /// may be handed to `reaper`.
    fn run(
        &self,
        scenario: &Scenario,
        index: u32,
        ip: IpVersion,
        opts: &RunOptions,
        reaper: &mut Reaper,
    ) -> Result<RunOutcome, RunError>;
}

/// Per-worker helper threads that drop what a finished run leaves (a capture handle, a
/// namespace): closing a packet socket waits in the kernel for tens of milliseconds, which
/// need not delay the worker's next run. Every helper is joined when the worker ends.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    helpers: Vec<JoinHandle<()>>,
}

impl Reaper {
    /// Drop `value` on a helper thread called `name` (or right here if none can be spawned).
    pub fn drop_later<T: Send + 'static>(&mut self, name: &str, value: T) {
        self.helpers.retain(|h| !h.is_finished());
        if let Ok(h) = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || drop(value))
        {
            self.helpers.push(h);
        }
    }

    /// Forget the helpers that are done.
    pub fn reap_finished(&mut self) {
        self.helpers.retain(|h| !h.is_finished());
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}
