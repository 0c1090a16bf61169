//! One scenario's batch from start to end: its directory (with the `INCOMPLETE` marker until
//! summary.json is written), meta.json, the runs streamed to runs.jsonl and into the tally,
//! the verdict, summary.json. A batch that cannot start leaves no directory behind.
//!
//! The CLI only chooses the options and prints [`BatchOutcome`]; what a batch writes is
//! decided here, once, for `tcplab run` and for the guest's run alike.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tcplab_record::BatchRecord;

use crate::expect::{Tally, Verdict};
use crate::outcome::{RunError, RunOptions};
use crate::results::{self, Environment};
use crate::run::run_streaming;
use crate::scenario::Scenario;

/// A scenario whose every run was a timing miss runs again after each of these pauses, at
/// the end of the suite, until a run is timed: on a busy machine the other batches competed
/// for it, and a busy spell often passes within seconds. Still no run timed after the last:
/// the verdict is inconclusive (neither passed nor failed).
pub const BUSY_RETRY_PAUSES: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(8),
];

/// Where a batch's directory goes.
#[derive(Debug, Clone)]
pub struct BatchPlace<'a> {
    /// `--out`: the batch is `<root>/<scenario>/<UTC stamp>/`.
    pub root: &'a Path,
    /// Keep `root` even if a batch that cannot start leaves it empty (it existed before, or
    /// an earlier batch wrote into it).
    pub keep_root: bool,
}

/// A batch that ran (to its end, or until it was cancelled).
#[derive(Debug)]
pub struct BatchOutcome {
    /// Its directory.
    pub dir: PathBuf,
    /// The verdict over its counted runs.
    pub verdict: Verdict,
    /// Its line of `tcplab run --json` (the head of summary.json).
    pub record: BatchRecord,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Cut short by a signal before every run finished: not a pass, not a kernel failure.
    pub cancelled: bool,
}

impl BatchOutcome {
    /// Every run was a timing miss: the machine was too busy to say anything about the
    /// kernel (see [`Verdict::inconclusive`]).
    pub fn inconclusive(&self) -> bool {
        self.record.inconclusive
    }

    /// Its JUnit test case: failed with the mismatch and the first mismatching run's
    /// narration, skipped when cut short or inconclusive (CI must not call a busy machine
    /// the kernel's failure), else passed; `counts` (the outcome counts as the caller
    /// prints them) and the directory are its output.
    pub fn junit_case(&self, s: &Scenario, counts: &str) -> crate::junit::Case {
        let v = &self.verdict;
        let first = v.first_failure_run.as_deref();
        let skipped = if self.cancelled {
            Some(format!("interrupted after {} of {} runs", v.runs, s.repeat))
        } else if self.inconclusive() {
            Some(format!(
                "inconclusive: {}",
                v.message.as_deref().unwrap_or("the machine was too busy")
            ))
        } else {
            None
        };
        crate::junit::Case {
            name: s.name().to_owned(),
            file: s.path.display().to_string(),
            time_s: self.elapsed_s,
            failure: v.message.clone().filter(|_| !self.inconclusive()).map(|m| {
                let details = first.and_then(|r| r.narration.clone()).unwrap_or_default();
                (m, details)
            }),
            skipped,
            output: format!("{counts}\nresults: {}", self.dir.display()),
        }
    }
}

/// The batches of one `tcplab run` so far: how many passed, failed or were cut short, and
/// the timing misses over all of them (the closing line and the exit code come from it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTally {
    /// Batches whose verdict passed.
    pub passed: usize,
    /// Batches whose verdict failed.
    pub failed: usize,
    /// Batches a signal cut short (neither).
    pub cancelled: usize,
    /// Batches whose every run was a timing miss (neither: the machine was too busy).
    pub inconclusive: usize,
    /// Timing misses retried, over all batches.
    pub timing_misses: u64,
    /// Runs still missing their timing after the retries (not counted), over all batches.
    pub timing_miss_runs: u64,
}

impl BatchTally {
    /// Count one finished batch.
    pub fn add(&mut self, b: &BatchOutcome) {
        self.timing_misses += b.verdict.timing_misses;
        self.timing_miss_runs += b.verdict.timing_miss_runs;
        if b.cancelled {
            self.cancelled += 1;
        } else if b.verdict.passed {
            self.passed += 1;
        } else if b.inconclusive() {
            self.inconclusive += 1;
        } else {
            self.failed += 1;
        }
    }

    /// Batches that ran (to their end or cut short).
    pub fn batches(&self) -> usize {
        self.passed + self.failed + self.cancelled + self.inconclusive
    }
}

/// Run `s` as one batch under `place.root`: `opts.out_dir` is set to the batch's directory.
pub fn run_batch(
    s: &Scenario,
    place: &BatchPlace<'_>,
    mut opts: RunOptions,
    env: &Environment,
) -> Result<BatchOutcome, RunError> {
    let dir =
        results::create_batch_dir(place.root, s.name()).map_err(|e| RunError::CreateBatch {
            root: place.root.to_owned(),
            cause: Box::new(e),
        })?;
    opts.out_dir = Some(dir.clone());
    let started = Instant::now();
    let discard = |dir: &Path| results::discard_batch(place.root, dir, place.keep_root);
    if let Err(e) = results::write_meta(&dir, s, &opts, env) {
        discard(&dir);
        return Err(e);
    }
    // Runs stream to disk and into the tally: memory does not grow with --repeat.
    let mut tally = Tally::new(&s.expect);
    let mut summary = match results::SummaryWriter::create(&dir) {
        Ok(w) => w,
        Err(e) => {
            discard(&dir);
            return Err(e);
        }
    };
    let streamed = run_streaming(s, &opts, &mut |o| {
        tally.add(&o);
        summary.add(&o)
    });
    if let Err(e) = streamed {
        if tally.runs() == 0 {
            // The batch could not start: leave nothing behind for it.
            drop(summary);
            discard(&dir);
        }
        return Err(e);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let cancelled = opts
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
        && tally.finished() < u64::from(opts.repeat);
    let verdict = tally.verdict();
    let record = results::batch_record(s, &verdict, Some(&dir), elapsed_s, cancelled);
    summary.finish(&record)?;
    results::mark_complete(&dir)?;
    Ok(BatchOutcome {
        dir,
        verdict,
        record,
        elapsed_s,
        cancelled,
    })
}
