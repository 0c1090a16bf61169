//! `tcplab run --kernel SPEC …`: the same scenarios on several kernels, side by side.
//!
//! Each kernel is a [`Place`]: `host` runs `tcplab run --json` as a child on this machine;
//! any other kernel boots in QEMU with tcplab as `/init` and runs the same command there.
//! The host runs first and alone (its timings must not compete with emulated CPUs), then the
//! guests, `--vm-jobs` at a time. Results land in `<out>/<kernel release>/`, laid out as
//! `tcplab run` lays them out; the output ends with the kernel matrix.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tcplab_compare::matrix::{self, Column};
use tcplab_compare::{ScenarioResult, DEFAULT_ALPHA};
use tcplab_runner::junit;
use tcplab_runner::ktap::{self, KtapResult, KtapTest};
use tcplab_runner::record::BatchLine;
use tcplab_vm::{kernels, Accel, AccelChoice, BatchResult, BatchSpec, Place, VmSize};

use super::run_args::{FormatArg, KeepArg, RunArgs};
use crate::exit::Exit;

// `run`'s arguments, these among them, live beneath this module and `run.rs`
// (`run_args.rs`); these are their old paths.
pub use super::run_args::{AccelArg, KernelArgs};

/// Ctrl-C while `run --kernel SRC` builds: make is stopped by its PID. (Tokio's own signal
/// handling, installed later, chains to this handler.)
fn build_cancel() -> Arc<std::sync::atomic::AtomicBool> {
    static CANCEL: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    Arc::clone(CANCEL.get_or_init(|| {
        let c = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = Arc::clone(&c);
        let _ = ctrlc::set_handler(move || h.store(true, std::sync::atomic::Ordering::SeqCst));
        c
    }))
}

/// Resolve SPECs into places, fetching cached versions that are missing.
fn places(k: &KernelArgs, cache: &Path) -> anyhow::Result<Vec<Place>> {
    let mut out = Vec::new();
    for spec in &k.kernels {
        let place = if spec == "host" {
            Place::Host
        } else if spec.starts_with("debian:") || Path::new(spec).is_dir() {
            // A source tree (or Debian's source): build it first (incremental when built
            // before), then boot what came out.
            let cancel = build_cancel();
            let jobs = super::jobs::default_jobs();
            match super::kernels::build_kernel(cache, spec, None, jobs, &cancel) {
                Ok(b) => Place::Guest(tcplab_vm::build::image_of(&b)),
                Err(e) => {
                    if let tcplab_vm::build::BuildError::Failed { errors, .. } = &e {
                        for l in errors {
                            eprintln!("  {l}");
                        }
                    }
                    anyhow::bail!("--kernel {spec}: {e}");
                }
            }
        } else if Path::new(spec).is_file() {
            Place::Guest(kernels::from_path(Path::new(spec))?)
        } else if spec.contains('/') {
            // A path (a version or package name has no `/`): say what is wrong with it
            // rather than trying to fetch it as a version.
            let why = match std::fs::metadata(spec) {
                Ok(_) => "not a regular file".to_owned(),
                Err(e) => io_reason(&e),
            };
            anyhow::bail!("--kernel {spec}: {why} (a --kernel path must be a bzImage file)");
        } else if let Some(img) = kernels::find_cached(cache, spec)? {
            Place::Guest(img)
        } else {
            eprintln!(
                "tcplab: kernel {spec} is not in {}: fetching it",
                cache.display()
            );
            let fetched = kernels::fetch(cache, spec, kernels::DEFAULT_FLAVOUR)
                .with_context(|| format!("--kernel {spec}"))?;
            Place::Guest(
                kernels::find_cached(cache, &fetched.release)?
                    .with_context(|| format!("--kernel {spec}: not in the cache after fetching"))?,
            )
        };
        out.push(place);
    }
    Ok(out)
}

/// An OS error's words without the "(os error N)" that std appends.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// A batch whose place failed before any scenario reported: the guest never reached
/// `/init` (no "up" line) or the host's child never started. That is an error of the place
/// (exit 2), not a verdict on the kernel.
fn place_never_started(r: &BatchResult) -> bool {
    r.error.is_some() && !r.cancelled && r.lines.is_empty() && r.boot_s.is_none()
}

/// `tcplab run` arguments to pass on (everything but files, --json, --junit, --out, kernels).
fn run_args(args: &RunArgs) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(r) = args.repeat {
        v.extend(["--repeat".into(), r.to_string()]);
    }
    // Only an explicit --jobs: the guest picks its own default from its CPU count.
    if args.jobs != super::jobs::default_jobs() {
        v.extend(["--jobs".into(), args.jobs.to_string()]);
    }
    if args.pooled {
        v.push("--pooled".into());
    }
    if let Some(t) = args.timing_tolerance_ms {
        v.extend(["--timing-tolerance-ms".into(), t.to_string()]);
    }
    let keep = match args.keep_pcaps {
        KeepArg::All => "all",
        KeepArg::Failed => "failed",
        KeepArg::None => "none",
    };
    v.extend(["--keep-pcaps".into(), keep.into()]);
    for s in &args.set {
        v.extend(["--set".into(), s.clone()]);
    }
    v
}

/// A directory name for a kernel release that is unique among `taken`.
fn column_dir(out: &Path, release: &str, taken: &mut Vec<PathBuf>) -> PathBuf {
    let safe: String = release
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.chars().all(|c| c == '.') {
        format!("kernel-{}", safe.len())
    } else {
        safe
    };
    let mut dir = out.join(&safe);
    let mut n = 2;
    while taken.contains(&dir) {
        dir = out.join(format!("{safe}-{n}"));
        n += 1;
    }
    taken.push(dir.clone());
    dir
}

/// Entry point (called by `run` when `--kernel` is given).
pub fn exec(args: RunArgs, scenarios: &[tcplab_runner::Scenario]) -> anyhow::Result<u8> {
    // Signals held since main began: released now, before any thread (guests are stopped
    // by PID on one, below).
    crate::signal::claim();
    let k = &args.vm;
    let cache = kernels::cache_dir(k.cache.cache.as_deref())?;
    // As a kselftest, a machine without QEMU is a skip before any kernel is fetched.
    if args.kselftest && k.kernels.iter().any(|s| s != "host") {
        if let Err(e) = tcplab_vm::qemu::version(&k.qemu) {
            return Ok(args.cannot_run_here(&e.to_string()));
        }
    }
    let places = match places(k, &cache) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tcplab: {}", crate::one_line(&e));
            return Ok(Exit::USAGE);
        }
    };
    if places.iter().any(|p| matches!(p, Place::Guest(_))) {
        if let Err(e) = tcplab_vm::qemu::version(&k.qemu) {
            return Ok(args.cannot_run_here(&e.to_string()));
        }
    }
    let binary = std::env::current_exe().context("finding the tcplab binary")?;
    let spec = BatchSpec {
        binary,
        files: scenarios.iter().map(|s| s.path.clone()).collect(),
        run_args: run_args(&args),
        total_runs: scenarios.iter().map(|s| u64::from(s.repeat)).sum(),
        qemu: k.qemu.clone(),
        accel: match k.accel {
            AccelArg::Auto => AccelChoice::Auto,
            AccelArg::Kvm => AccelChoice::Fixed(Accel::Kvm),
            AccelArg::Tcg => AccelChoice::Fixed(Accel::Tcg),
        },
        size: VmSize {
            memory_mib: k.vm_memory,
            cpus: k.vm_cpus,
        },
        timeout: k.vm_timeout.map(Duration::from_secs),
        cache,
    };
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let vm_jobs = k.vm_jobs.unwrap_or_else(|| (host_cpus / k.vm_cpus).max(1)) as usize;
    let mut taken = Vec::new();
    let jobs: Vec<(Place, PathBuf)> = places
        .into_iter()
        .map(|p| {
            let dir = column_dir(&args.out, &p.release(), &mut taken);
            (p, dir)
        })
        .collect();

    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let results = rt.block_on(run_all(jobs, spec, vm_jobs));
    drop(rt);
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    report(&args, &names, &results, started)
}

async fn run_all(jobs: Vec<(Place, PathBuf)>, spec: BatchSpec, vm_jobs: usize) -> Vec<BatchResult> {
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let cancel_tx = Arc::new(cancel_tx);
    // Ctrl-C, SIGTERM and SIGHUP (as for `run`) stop every guest (by PID) and keep what
    // finished.
    {
        let tx = Arc::clone(&cancel_tx);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let wait = |kind: SignalKind| async move {
                match signal(kind) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            // The process-wide handler's flag too: it also holds a signal that came before
            // this task was listening.
            let claimed = async {
                let flag = crate::signal::claim();
                while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                () = claimed => {}
                () = wait(SignalKind::interrupt()) => {}
                () = wait(SignalKind::terminate()) => {}
                () = wait(SignalKind::hangup()) => {}
            }
            let _ = tx.send(true);
        });
    }
    let bars = indicatif::MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    let spec = Arc::new(spec);
    let mut results: Vec<Option<BatchResult>> = vec![None; jobs.len()];
    let bar_for = |label: &str| {
        let b = bars.add(indicatif::ProgressBar::new_spinner());
        b.set_prefix(label.to_owned());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}")
        {
            b.set_style(style);
        }
        b.enable_steady_tick(Duration::from_millis(200));
        b
    };
    let progress_for = |b: indicatif::ProgressBar, label: String| {
        let quiet = !std::io::stderr().is_terminal();
        move |line: &str| {
            if quiet {
                // CI logs: only the guests' own milestones, one line each.
                if line.starts_with("up: ")
                    || line.starts_with("skip ")
                    || line.starts_with("error")
                {
                    eprintln!("{label}: {line}");
                }
            } else {
                b.set_message(line.to_owned());
            }
        }
    };
    // The host first, alone.
    for (i, (place, dir)) in jobs.iter().enumerate() {
        if matches!(place, Place::Host) && !*cancel_rx.borrow() {
            let label = place.release();
            let b = bar_for(&label);
            let r = place
                .run(
                    &spec,
                    dir,
                    progress_for(b.clone(), label),
                    cancel_rx.clone(),
                )
                .await;
            b.finish_and_clear();
            results[i] = Some(r);
        }
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(vm_jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, (place, dir)) in jobs.iter().enumerate() {
        if matches!(place, Place::Host) {
            continue;
        }
        let (place, dir, spec, sem) = (
            place.clone(),
            dir.clone(),
            Arc::clone(&spec),
            Arc::clone(&sem),
        );
        let cancel = cancel_rx.clone();
        let label = place.release();
        let b = bar_for(&label);
        b.set_message("waiting for a free slot");
        let progress = progress_for(b.clone(), label);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = place.run(&spec, &dir, progress, cancel).await;
            b.finish_and_clear();
            (i, r)
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = Some(r);
        }
    }
    let cancelled = *cancel_rx.borrow();
    results
        .into_iter()
        .zip(jobs)
        .map(|(r, (place, dir))| {
            r.unwrap_or_else(|| {
                let mut b = BatchResult::new(place.release(), dir);
                b.error = Some(if cancelled {
                    "interrupted before it started".into()
                } else {
                    "did not run".into()
                });
                b.cancelled = cancelled;
                b
            })
        })
        .collect()
}

fn report(
    args: &RunArgs,
    scenarios: &[&str],
    results: &[BatchResult],
    started: Instant,
) -> anyhow::Result<u8> {
    let format = args.output_format();
    let (human, json) = (format == FormatArg::Human, format == FormatArg::Json);
    let stdout = std::io::stdout();
    // A reader that goes away must not stop the runs: results/ is the real output.
    let mut out = crate::output::UntilClosed::new(stdout.lock());
    let mut ktap_tests = Vec::new();
    let mut columns = Vec::new();
    let mut suites = Vec::new();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    // Scenarios whose every run on a kernel was a timing miss (the guest tried them again at
    // its suite's end): neither passed nor failed.
    let mut inconclusive = 0usize;
    let cancelled = results.iter().any(|r| r.cancelled);
    for r in results {
        let mut cases = Vec::new();
        let mut column = Column {
            kernel: r.kernel.clone(),
            conditions: r.conditions.clone(),
            results: Default::default(),
            error: r.error.clone(),
        };
        if human {
            writeln!(
                out,
                "kernel {} ({})",
                r.kernel,
                column.conditions.describe()
            )?;
        }
        for line in &r.lines {
            if json {
                writeln!(out, "{}", tcplab_runner::record::to_line(line))?;
            }
            let s = ScenarioResult::from_line(line, Path::new(""));
            let ran = match line {
                BatchLine::Ran(b) => Some(b.as_ref()),
                BatchLine::Skipped(_) => None,
            };
            let mismatch = ran.and_then(|b| b.mismatch.as_deref());
            let results_dir = ran.and_then(|b| b.results_dir.as_deref());
            let busy = ran.is_some_and(|b| b.inconclusive && !b.cancelled);
            let verdict = if busy {
                inconclusive += 1;
                "INCONCLUSIVE"
            } else if s.skipped.is_some() {
                skipped += 1;
                "SKIP"
            } else if s.cancelled {
                "CANCELLED"
            } else if s.passed == Some(true) {
                passed += 1;
                "PASS"
            } else {
                failed += 1;
                "FAIL"
            };
            if human {
                writeln!(
                    out,
                    "  {verdict}  {:<24} {:>5} runs  {}",
                    s.scenario,
                    s.runs,
                    s.counts_text()
                )?;
                if let Some(m) = mismatch {
                    if busy {
                        writeln!(
                            out,
                            "        inconclusive, not a verdict on the kernel: {m}"
                        )?;
                    } else {
                        writeln!(out, "        mismatch: {m}")?;
                    }
                }
                if let Some(d) = results_dir {
                    writeln!(out, "        results: {d}")?;
                }
            }
            cases.push(junit::Case {
                name: s.scenario.clone(),
                file: line.file().to_owned(),
                time_s: ran.map_or(0.0, |b| b.elapsed_s),
                failure: (verdict == "FAIL").then(|| {
                    (
                        mismatch.unwrap_or("expectation failed").to_owned(),
                        String::new(),
                    )
                }),
                skipped: s.skipped.clone().or_else(|| {
                    if busy {
                        Some(format!(
                            "inconclusive: {}",
                            mismatch.unwrap_or("the machine was too busy")
                        ))
                    } else {
                        s.cancelled
                            .then(|| "cancelled: interrupted before it finished".to_owned())
                    }
                }),
                output: format!(
                    "{}\nresults: {}",
                    s.counts_text(),
                    results_dir.unwrap_or("")
                ),
            });
            column.results.insert(s.scenario.clone(), s);
        }
        // KTAP: one test per scenario × kernel, also for those a failed guest never reported.
        let suffix = format!(" [{}]", r.kernel);
        ktap_tests.extend(cases.iter().map(|c| KtapTest::from_case(c, &suffix)));
        for name in scenarios
            .iter()
            .filter(|n| !column.results.contains_key(**n))
        {
            let why = r.error.as_deref().unwrap_or("not run");
            ktap_tests.push(KtapTest {
                name: format!("{name}{suffix}"),
                result: if r.cancelled {
                    KtapResult::Skip(format!("interrupted: {why}"))
                } else {
                    KtapResult::Fail
                },
                diagnostics: vec![format!("kernel {}: {why}", r.kernel)],
            });
        }
        if let Some(e) = &r.error {
            failed += 1;
            if human {
                writeln!(out, "  ERROR  {e}")?;
            }
            cases.push(junit::Case {
                name: format!("kernel {}", r.kernel),
                file: String::new(),
                time_s: r.elapsed_s,
                failure: Some((e.clone(), String::new())),
                skipped: None,
                output: String::new(),
            });
        }
        if human {
            let mut t = format!("  {:.1} s", r.elapsed_s);
            if let Some(b) = r.boot_s {
                t.push_str(&format!(", boot {b:.1} s"));
            }
            if let Some(g) = r.guest_s {
                t.push_str(&format!(", {g:.1} s in the guest"));
                // Where the guest's time went: its `tcplab run`, then the files sent back.
                if let (Some(s), Some(x)) = (r.suite_s, r.transfer_s) {
                    t.push_str(&format!(" (suite {s:.1} s, results files {x:.1} s)"));
                }
            }
            if r.bytes_moved > 0 {
                t.push_str(&format!(
                    ", {:.2} MiB of results moved back",
                    r.bytes_moved as f64 / 1048576.0
                ));
            }
            if let (Some(i), Some(u)) = (r.initramfs_s, r.unpack_s) {
                t.push_str(&format!(
                    ", on the host initramfs {i:.1} s + unpacking {u:.1} s"
                ));
            }
            writeln!(out, "{t}")?;
        }
        suites.push((format!("tcplab run --kernel {}", r.kernel), cases));
        columns.push(column);
    }
    let (text, facts) = matrix::render(&columns, DEFAULT_ALPHA);
    // The columns in order, with what left no summary.json (a failed guest, skipped
    // scenarios): the matrix page is drawn from this and the batches.
    let kernels_file = args.out.join(tcplab_runner::record::KERNELS_FILE);
    let record = kernels_record(&args.out, results);
    if let Err(e) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(&kernels_file, tcplab_runner::record::to_pretty(&record)))
    {
        eprintln!("tcplab: {}: {e}", kernels_file.display());
    }
    if format == FormatArg::Ktap {
        write!(out, "{}", ktap::render(&ktap_tests))?;
    }
    if human {
        writeln!(out)?;
        write!(out, "{text}")?;
        writeln!(
            out,
            "ran {} scenario batches on {} kernel{}: {passed} passed, {failed} failed, {skipped} skipped{}; {} kernel difference{}{} ({:.1} s)",
            passed + failed + skipped + inconclusive,
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            if inconclusive > 0 {
                format!(", {inconclusive} inconclusive (the machine was too busy)")
            } else {
                String::new()
            },
            facts.kernel_differences,
            if facts.kernel_differences == 1 { "" } else { "s" },
            if cancelled { ", interrupted" } else { "" },
            started.elapsed().as_secs_f64()
        )?;
    }
    // The matrix page: written with --report, else said where it would go.
    if human {
        let page = tcplab_report::matrix::page_path(&args.out);
        if args.report && !cancelled {
            match tcplab_report::matrix::write_matrix_report(
                &args.out,
                tcplab_trace::render::Lang::En,
            ) {
                Ok((p, _)) => writeln!(out, "report: {}", p.display())?,
                Err(e) => eprintln!("tcplab: report: {e}"),
            }
        } else {
            writeln!(
                out,
                "report: {} (with --report, or `tcplab report {}`)",
                page.display(),
                args.out.display()
            )?;
        }
    } else if args.report && !cancelled {
        if let Err(e) =
            tcplab_report::matrix::write_matrix_report(&args.out, tcplab_trace::render::Lang::En)
        {
            eprintln!("tcplab: report: {e}");
        }
    }
    out.flush()?;
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render_suites("tcplab run --kernel", &suites))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let never_started: Vec<&BatchResult> =
        results.iter().filter(|r| place_never_started(r)).collect();
    for r in &never_started {
        eprintln!(
            "tcplab: kernel {}: the place failed before any scenario ran: {}",
            r.kernel,
            r.error.as_deref().unwrap_or_default()
        );
    }
    Ok(if cancelled {
        Exit::INTERRUPTED
    } else if !never_started.is_empty() {
        Exit::USAGE
    } else if failed > 0 || facts.failed > 0 {
        Exit::MISMATCH
    } else if inconclusive > 0 {
        args.inconclusive_exit()
    } else {
        Exit::OK
    })
}

/// kernels.json: every column in `--kernel` order, its directory relative to `out`.
fn kernels_record(out: &Path, results: &[BatchResult]) -> tcplab_runner::record::KernelsRecord {
    use tcplab_runner::record::{ColumnRecord, KernelsRecord};
    KernelsRecord {
        columns: results
            .iter()
            .map(|r| ColumnRecord {
                kernel: r.kernel.clone(),
                dir: r
                    .dir
                    .strip_prefix(out)
                    .unwrap_or(&r.dir)
                    .display()
                    .to_string(),
                conditions: r.conditions.clone(),
                error: r.error.clone(),
                skipped: r
                    .lines
                    .iter()
                    .filter_map(|l| match l {
                        BatchLine::Skipped(s) => Some(s.as_ref().clone()),
                        BatchLine::Ran(_) => None,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_that_never_reached_init_is_an_error_of_the_place() {
        // Issue 20 item 8: it was reported as a failed scenario (exit 1, empty matrix).
        let mut r = BatchResult::new("6.1.0-57-cloud-amd64".into(), "/r".into());
        r.error = Some("qemu exited with Some(1) (console: /r/console.log)".into());
        assert!(place_never_started(&r));
        // Booted (an "up" line) and then failed: the batch's failure, judged as before.
        r.boot_s = Some(4.2);
        assert!(!place_never_started(&r));
        r.boot_s = None;
        r.cancelled = true;
        assert!(!place_never_started(&r));
        assert_eq!(
            io_reason(&std::fs::metadata("/nonexistent").unwrap_err()),
            "No such file or directory"
        );
    }

    #[test]
    fn kernels_json_keeps_the_order_failures_and_skips() {
        let out = Path::new("/r");
        let mut host = BatchResult::new("6.18.44".into(), "/r/6.18.44".into());
        host.lines.push(BatchLine::Skipped(Box::new(
            tcplab_runner::record::SkippedRecord {
                scenario: "lost-fin".into(),
                file: "scenarios/link/lost-fin.toml".into(),
                skipped: "no TUN".into(),
                passed: None,
                kernel: None,
                conditions: None,
                place: None,
            },
        )));
        let mut guest = BatchResult::new("6.1.0-57-cloud-amd64".into(), "/r/6.1.0-57".into());
        guest.error = Some("timed out".into());
        let r = kernels_record(out, &[host, guest]);
        let dirs: Vec<&str> = r.columns.iter().map(|c| c.dir.as_str()).collect();
        assert_eq!(dirs, ["6.18.44", "6.1.0-57"]);
        assert_eq!(r.columns[0].skipped[0].scenario, "lost-fin");
        assert_eq!(r.columns[1].error.as_deref(), Some("timed out"));
    }

    #[test]
    fn column_dirs_are_unique_and_safe() {
        let mut taken = Vec::new();
        let out = Path::new("/r");
        assert_eq!(
            column_dir(out, "6.1.0-57-cloud-amd64", &mut taken),
            Path::new("/r/6.1.0-57-cloud-amd64")
        );
        assert_eq!(
            column_dir(out, "6.1.0-57-cloud-amd64", &mut taken),
            Path::new("/r/6.1.0-57-cloud-amd64-2")
        );
        assert_eq!(
            column_dir(out, "../x y", &mut taken),
            Path::new("/r/.._x_y")
        );
        assert_eq!(column_dir(out, "..", &mut taken), Path::new("/r/kernel-2"));
    }
}
