//! What the live scenario tests share: loading a shipped scenario and judging a batch the
//! way a busy machine allows (timing misses are the machine's, never the kernel's outcome).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tcplab_runner::{expect, run_repeated, RunOptions, RunOutcome, Scenario};

/// A scenario shipped under scenarios/ (`rel` is relative to it).
pub fn scenario(rel: &str) -> Scenario {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// The verdict on `repeat` runs of `s`. Runs the programs missed (timing misses, retried and
/// not counted) are the machine's: at least one run must count.
/// Batches tried before "every run missed its timing" fails the test.
pub const BATCH_TRIES: usize = 4;

pub fn verdict(s: &Scenario, repeat: u32) -> expect::Verdict {
    let opts = RunOptions {
        repeat,
        jobs: 2,
        ..RunOptions::default()
    };
    // A batch whose every run missed its timing (a busy machine, even after the runner's
    // retries) fails with that reason and says nothing about the kernel: run it again, a
    // few times, until a run counts.
    let mut v = None;
    for _batch in 0..BATCH_TRIES {
        let runs = run_repeated(s, &opts).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        let b = expect::verdict(&s.expect, &runs);
        if b.runs == 0 && b.timing_miss_runs > 0 {
            assert!(!b.passed, "{}: an all-miss batch passed", s.name());
            let m = b.message.as_deref().unwrap_or_default();
            assert!(m.contains("missed its timing"), "{}: {m}", s.name());
            continue;
        }
        v = Some(b);
        break;
    }
    let v = v.unwrap_or_else(|| {
        panic!(
            "{}: every run of {BATCH_TRIES} batches missed its timing",
            s.name()
        )
    });
    assert!(v.runs >= 1, "{}: no run counted", s.name());
    assert_eq!(
        v.runs + v.timing_miss_runs,
        u64::from(repeat),
        "{}: every run counted or a timing miss",
        s.name()
    );
    assert_eq!(v.drops, 0, "{}: capture drops", s.name());
    v
}

/// The batch passes its expectation.
pub fn passes(s: &Scenario, repeat: u32) {
    let v = verdict(s, repeat);
    assert!(
        v.passed,
        "{}: {:?} counts {:?}",
        s.name(),
        v.message,
        v.counts
    );
}

/// The batch fails, and its message names `why`.
pub fn fails(s: &Scenario, repeat: u32, why: &str) {
    let v = verdict(s, repeat);
    assert!(!v.passed, "{}: passed without its path", s.name());
    let m = v.message.unwrap_or_default();
    assert!(m.contains(why), "{}: wanted {why:?}, got {m}", s.name());
}

/// `repeat` runs of `s`, at most `jobs` at once.
pub fn run_jobs(s: &Scenario, repeat: u32, jobs: usize) -> Vec<RunOutcome> {
    let opts = RunOptions {
        repeat,
        jobs,
        ..RunOptions::default()
    };
    run_repeated(s, &opts).unwrap_or_else(|e| panic!("{}: {e}", s.name()))
}

/// What [`assert_all_pass`] holds a batch to about packets its captures lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drops {
    /// Not one: every run's capture is whole.
    None,
    /// Not judged here (the link tests judge the verdict only).
    NotJudged,
}

/// Every run is accounted for and every counted run met the expectation. A run whose programs
/// missed their close delay (a busy machine) is a timing miss: retried, then left out of the
/// counts (`timing_miss_runs`), never the kernel's outcome; so the batch promises
/// counted + timing misses == runs asked, at least one counted run, and a pass; and, with
/// [`Drops::None`], no packet lost by a capture.
pub fn assert_all_pass(s: &Scenario, runs: &[RunOutcome], repeat: u32, drops: Drops) {
    let v = expect::verdict(&s.expect, runs);
    let first = v
        .first_failure_run
        .as_deref()
        .map(|r| {
            format!(
                "{:?}\n{}",
                r.mismatch(),
                r.narration.clone().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    assert_eq!(
        v.runs + v.timing_miss_runs,
        u64::from(repeat),
        "{}: counted + timing misses: {v:?}",
        s.name()
    );
    assert!(v.runs >= 1, "{}: no run counted: {v:?}", s.name());
    assert!(
        v.passed,
        "{}: {:?} counts {:?}\n{first}",
        s.name(),
        v.message,
        v.counts
    );
    if drops == Drops::None {
        assert_eq!(v.drops, 0, "{}: capture drops", s.name());
    }
}

/// The runs counted as the kernel's outcome (timing misses left out, as the verdict does).
pub fn counted(runs: &[RunOutcome]) -> impl Iterator<Item = &RunOutcome> {
    runs.iter().filter(|r| r.timing_miss().is_none())
}
