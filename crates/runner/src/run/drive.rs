//! The scheduler: a batch's runs onto `jobs` workers started by a place, outcomes to the
//! sink in index order, timing misses retried.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::outcome::{RunError, RunOptions, RunOutcome, RunSink};
use crate::place::{Reaper, RunPlace};
use crate::scenario::Scenario;
use crate::timing::MAX_TIMING_RETRIES;

/// Runs a worker may be ahead of the oldest unfinished run, per worker: the reorder buffer
/// (and so the memory of a batch) is bounded by `jobs`, never by `repeat`.
const AHEAD_PER_JOB: u32 = 4;

/// The most workers a batch gets: two per CPU. Runs mostly wait on timers, but past that the
/// programs' close delays slip on a loaded machine (and a run whose timing slipped shows the
/// scheduler, not the kernel's TCP).
pub fn max_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The driver's shared state: which index to hand out next, which the sink has had, and the
/// finished runs waiting for an older one.
struct Order<'s, 'a> {
    next: u32,
    delivered: u32,
    pending: std::collections::BTreeMap<u32, RunOutcome>,
    sink: &'s mut RunSink<'a>,
}

/// Schedule the batch onto `jobs` workers started by `place`; outcomes to `sink` in index
/// order.
pub(crate) fn drive<P: RunPlace>(
    place: &P,
    scenario: &Scenario,
    opts: &RunOptions,
    sink: &mut RunSink<'_>,
) -> Result<(), RunError> {
    let cap = scenario.max_jobs.map_or(usize::MAX, |j| j as usize);
    let jobs = opts
        .jobs
        .clamp(1, max_jobs())
        .min(cap)
        .min(opts.repeat.max(1) as usize);
    let ahead = u32::try_from(jobs)
        .unwrap_or(u32::MAX)
        .saturating_mul(AHEAD_PER_JOB);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<RunError>> = Mutex::new(None);
    let order = Mutex::new(Order {
        next: 0,
        delivered: 0,
        pending: std::collections::BTreeMap::new(),
        sink,
    });
    let moved = std::sync::Condvar::new();
    let set_fatal = |e: RunError| {
        stop.store(true, Ordering::Relaxed);
        if let Ok(mut f) = fatal.lock() {
            f.get_or_insert(e);
        }
    };
    let cancelled = || {
        stop.load(Ordering::Relaxed)
            || opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    // The next index for a worker, waiting while it would run too far ahead of the oldest
    // unfinished run; None when the batch is over (all handed out, cancelled or failed).
    let take = || -> Option<u32> {
        let mut o = order.lock().ok()?;
        loop {
            if cancelled() || o.next >= opts.repeat {
                return None;
            }
            if o.next - o.delivered < ahead {
                o.next += 1;
                return Some(o.next - 1);
            }
            // Timed: a cancel flag set by a signal handler does not notify.
            o = moved.wait_timeout(o, Duration::from_millis(100)).ok()?.0;
        }
    };
    // File a finished run and hand the sink every run that is now in order.
    let file = |i: u32, r: RunOutcome| -> Result<(), RunError> {
        let mut o = order
            .lock()
            .map_err(|_| RunError::Setup("run order poisoned by a panic".into()))?;
        o.pending.insert(i, r);
        let mut result = Ok(());
        loop {
            let d = o.delivered;
            let Some(r) = o.pending.remove(&d) else { break };
            o.delivered += 1;
            if let Err(e) = (o.sink)(r) {
                result = Err(e);
                break;
            }
        }
        moved.notify_all();
        result
    };
    std::thread::scope(|sc| {
        for w in 0..jobs {
            let done = &done;
            let (cancelled, set_fatal, take, file) = (&cancelled, &set_fatal, &take, &file);
            let body = move || {
                // Dropped last: joins the helpers that close what finished runs left.
                let mut reaper = Reaper::default();
                while let Some(i) = take() {
                    let ip = scenario.ip[i as usize % scenario.ip.len()];
                    // A timing miss shows the scheduler, not the kernel: try again, a few
                    // times (crate::timing).
                    let mut retries = 0;
                    let r = loop {
                        let r = place.run(scenario, i, ip, opts, &mut reaper);
                        reaper.reap_finished();
                        match r {
                            Ok(o)
                                if o.timing_miss().is_some()
                                    && retries < MAX_TIMING_RETRIES
                                    && !cancelled() =>
                            {
                                retries += 1;
                            }
                            r => {
                                break r.map(|mut o| {
                                    o.timing_retries = retries;
                                    o
                                })
                            }
                        }
                    };
                    match r.and_then(|o| file(i, o)) {
                        Ok(()) => {
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if let Some(p) = &opts.progress {
                                p(n);
                            }
                        }
                        Err(e) => {
                            set_fatal(e);
                            return;
                        }
                    }
                    if cancelled() {
                        return;
                    }
                }
            };
            if let Err(e) = place.spawn_worker(sc, w, body) {
                set_fatal(e);
            }
        }
    });
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    // Runs after a gap (an index that never finished) still reach the sink, in order.
    let mut o = order
        .into_inner()
        .map_err(|_| RunError::Setup("run order poisoned by a panic".into()))?;
    for (_, r) in std::mem::take(&mut o.pending) {
        (o.sink)(r)?;
    }
    Ok(())
}
