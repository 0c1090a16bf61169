//! The real runner behind [`crate::engine::execute`]'s seam: each point is the base scenario
//! with the point's knob values set, run `repeat` times by `tcplab_runner::run_repeated`
//! (fresh namespace per run unless pooled), and its runs' pcaps kept as asked.

use crate::outcome::{Outcome, OutcomeKey};
use crate::plan::{Grid, Point};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tcplab_runner::run::ProgressFn;
use tcplab_runner::{run_repeated, RunError, RunOptions, RunOutcome, Scenario, ScenarioError};

/// Which pcaps a sweep keeps (under `runs/<point-id>/run-NNNN/` in the out dir).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pcaps {
    /// Every run's.
    All,
    /// One run per outcome per point: an example of each thing that happened.
    #[default]
    Sample,
    /// None.
    None,
}

/// How points are run.
#[derive(Clone, Default)]
pub struct LiveOptions {
    /// Parallel runs within a point.
    pub jobs: usize,
    /// Pcaps to keep.
    pub pcaps: Pcaps,
    /// One namespace and capture per point instead of one per run.
    pub pooled: bool,
    /// Stop starting runs when set (Ctrl-C).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Called after each finished run of the current point with the count so far.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for LiveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveOptions")
            .field("jobs", &self.jobs)
            .field("pcaps", &self.pcaps)
            .field("pooled", &self.pooled)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

/// Runs points of a sweep of one scenario.
#[derive(Debug)]
pub struct LiveRunner {
    base: Scenario,
    out_dir: PathBuf,
    opts: LiveOptions,
}

impl LiveRunner {
    /// A runner for sweeps of `base` writing under `out_dir`.
    pub fn new(base: Scenario, out_dir: &Path, opts: LiveOptions) -> LiveRunner {
        LiveRunner {
            base,
            out_dir: out_dir.to_path_buf(),
            opts,
        }
    }

    /// The scenario with a point's values set.
    pub fn scenario_for(&self, point: &Point) -> Result<Scenario, ScenarioError> {
        let mut s = self.base.clone();
        for (k, v) in &point.values {
            s.set_knob(k, &v.text)?;
        }
        Ok(s)
    }

    /// Check every point's values before the first run: a bad knob or value is a usage error
    /// now, not after an hour of sweeping.
    pub fn check(&self, grid: &Grid) -> Result<(), ScenarioError> {
        // Knobs are independent: checking each value once is as good as every point, and
        // costs the sum of the value counts, not their product.
        for knob in &grid.knobs {
            for v in &knob.values {
                self.base.clone().set_knob(&knob.key, &v.text)?;
            }
        }
        Ok(())
    }

    /// Run one point `repeat` times. Fewer outcomes come back when cancelled.
    pub fn run_point(&self, point: &Point, repeat: u32) -> Result<Vec<Outcome>, LiveError> {
        let scenario = self.scenario_for(point)?;
        let rel = Path::new("runs").join(point.id());
        let dir = self.out_dir.join(&rel);
        // Files of an interrupted earlier attempt at this point are stale.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|source| LiveError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let keep = self.opts.pcaps != Pcaps::None;
        let opts = RunOptions {
            repeat,
            jobs: self.opts.jobs.max(1),
            out_dir: keep.then(|| dir.clone()),
            keep_pcaps: keep,
            // The scenario's expectation does not apply across a sweep's points.
            keep_failed: false,
            pooled: self.opts.pooled,
            cancel: self.opts.cancel.clone(),
            progress: self.opts.progress.clone(),
        };
        let runs = run_repeated(&scenario, &opts)?;
        let mut seen: Vec<OutcomeKey> = Vec::new();
        let mut out = Vec::with_capacity(runs.len());
        for r in &runs {
            let mut o = outcome_of(r, &self.out_dir);
            if self.opts.pcaps == Pcaps::Sample {
                if seen.contains(&o.key) {
                    if let Some(run_dir) = &r.dir {
                        std::fs::remove_dir_all(run_dir).map_err(|source| LiveError::Io {
                            path: run_dir.clone(),
                            source,
                        })?;
                    }
                    o.pcap = None;
                } else {
                    seen.push(o.key);
                }
            }
            out.push(o);
        }
        Ok(out)
    }
}

/// A runner outcome as the sweep counts it.
pub fn outcome_of(r: &RunOutcome, out_dir: &Path) -> Outcome {
    // A run whose programs missed their knobs even after retries is not the kernel's outcome
    // at this point: it counts with the failed runs, its reason kept.
    let key = if r.error().is_some() || r.timing_miss().is_some() {
        OutcomeKey::Error
    } else {
        OutcomeKey::Teardown(r.kind, r.active_closer)
    };
    Outcome {
        key,
        fin_ack_delay_ns: r.fin_ack_delay_ns,
        close_duration_ns: r.close_duration_ns,
        drops: r.drops,
        error: r
            .error()
            .map(str::to_owned)
            .or_else(|| r.timing_miss().map(|t| t.to_string())),
        pcap: r
            .pcap
            .as_ref()
            .map(|p| p.strip_prefix(out_dir).unwrap_or(p).display().to_string()),
    }
}

/// A point could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A knob or value the scenario rejects.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The runner could not run at all (privileges, setup).
    #[error(transparent)]
    Run(#[from] RunError),
    /// Managing the point's pcap directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl LiveError {
    /// Missing privileges (the CLI says so in one line and exits 2).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, LiveError::Run(e) if e.is_permission_denied())
    }
}
