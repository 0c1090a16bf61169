//! `tcplab run`: load scenarios, run each batch in private namespaces, check, report.
//!
//! Output: per scenario one line (PASS/FAIL, runs, outcome counts, where the results are) and,
//! for a failure, the mismatch and the narration of the first mismatching run. With `--json`,
//! stdout carries exactly one JSON object per scenario per line instead. Progress bars go to
//! stderr, only when it is a terminal.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tcplab_runner::batch::{run_batch, BatchOutcome, BatchPlace, BatchTally, BUSY_RETRY_PAUSES};
use tcplab_runner::ktap::{self, KtapResult, KtapTest};
use tcplab_runner::record::SkippedRecord;
use tcplab_runner::results::Environment;
use tcplab_runner::{discover, expect, junit, RunError, RunOptions, Scenario};

use crate::exit::Exit;

use super::jobs::jobs_within_cap;

// The arguments live beneath this module and `run_kernels.rs` (`run_args.rs`), which both
// read them; these are their old paths.
pub use super::run_args::{FormatArg, KeepArg, RunArgs};

/// Why `run` refuses before any run: each is its own line(s) on stderr and exit 2, mapped
/// once ([`Refused::report`]) instead of at every place that finds one.
#[derive(Debug)]
enum Refused {
    /// Discovery failed (a path that does not exist, a FIFO ...).
    Discovery(String),
    /// The paths hold no scenario file.
    NoScenarios,
    /// `--set` without `=`.
    SetSyntax(String),
    /// `--set KEY=VALUE` that the scenario refuses.
    SetKnob { kv: String, why: String },
    /// `--timing-tolerance-ms` out of range.
    Tolerance(String),
    /// Scenario files that do not load: one line each.
    Scenarios(Vec<String>),
    /// `--junit FILE` cannot be written.
    Junit { path: PathBuf, why: String },
    /// A `[sysctl]` a namespace does not take (file:line).
    Sysctl(String),
    /// The runner refused for lack of privileges.
    Permission(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Discovery(e) | Refused::Sysctl(e) | Refused::Permission(e) => f.write_str(e),
            Refused::NoScenarios => {
                f.write_str("no scenario files (*.toml) found in the given paths")
            }
            Refused::SetSyntax(kv) => write!(f, "--set {kv}: expected KEY=VALUE"),
            Refused::SetKnob { kv, why } => write!(f, "--set {kv}: {why}"),
            Refused::Tolerance(e) => write!(f, "--timing-tolerance-ms: {e}"),
            Refused::Scenarios(lines) => f.write_str(&lines.join("\ntcplab: ")),
            Refused::Junit { path, why } => write!(f, "--junit {}: {why}", path.display()),
        }
    }
}

impl Refused {
    /// Say it and give the exit code: every refusal is a usage error (2).
    fn report(&self) -> u8 {
        eprintln!("tcplab: {self}");
        Exit::USAGE
    }
}

/// Every scenario named, loaded, with `--set`, `--repeat` and `--timing-tolerance-ms` applied.
fn load_scenarios(args: &RunArgs) -> Result<Vec<Scenario>, Refused> {
    let files = discover(&args.paths).map_err(|e| Refused::Discovery(e.to_string()))?;
    if files.is_empty() {
        return Err(Refused::NoScenarios);
    }
    let mut scenarios = Vec::new();
    let mut bad = Vec::new();
    for f in &files {
        match Scenario::load(f) {
            Ok(mut s) => {
                for kv in &args.set {
                    let Some((k, v)) = kv.split_once('=') else {
                        return Err(Refused::SetSyntax(kv.clone()));
                    };
                    s.set_knob(k.trim(), v).map_err(|e| Refused::SetKnob {
                        kv: kv.clone(),
                        why: e.to_string(),
                    })?;
                }
                if let Some(r) = args.repeat {
                    s.repeat = r;
                }
                if let Some(t) = args.timing_tolerance_ms {
                    s.set_knob("timing_tolerance_ms", &t.to_string())
                        .map_err(|e| Refused::Tolerance(e.to_string()))?;
                }
                scenarios.push(s);
            }
            Err(e) => bad.push(e.to_string()),
        }
    }
    if !bad.is_empty() {
        return Err(Refused::Scenarios(bad));
    }
    Ok(scenarios)
}

/// Entry point: returns the exit code.
pub fn exec(args: RunArgs) -> anyhow::Result<u8> {
    // 1. Load and validate everything before running anything.
    let scenarios = match load_scenarios(&args) {
        Ok(s) => s,
        Err(r) => return Ok(r.report()),
    };
    let Some(scenarios) = take_shard(&args, scenarios) else {
        return Ok(Exit::OK);
    };
    if let Err(r) = junit_writable(&args) {
        return Ok(r.report());
    }
    if !args.vm.kernels.is_empty() {
        return super::run_kernels::exec(args, &scenarios);
    }
    // A scenario this kernel cannot run (a `[sysctl]` key it lacks, older than the file's
    // since_kernel) is skipped with the reason a `run --kernel` guest gives, the rest run.
    let (skipped, scenarios): (Vec<Scenario>, Vec<Scenario>) = scenarios
        .into_iter()
        .partition(|s| s.skip_reason().is_some());
    let skipped: Vec<SkippedRecord> = skipped
        .iter()
        .filter_map(|s| {
            let why = s.skip_reason()?;
            Some(SkippedRecord::new(
                s.name(),
                &s.path.display().to_string(),
                why,
            ))
        })
        .collect();
    // 2. Privileges, signals, `[sysctl]`: everything a run here needs, or the reason not.
    let cancel = match ready_to_run(&args, &scenarios) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // 3. The batches, one per scenario, each printed as it ends.
    // One kernel trace for the whole suite, made by its first batch and shared by the rest:
    // making one waits for the kernel (~0.2 s natively, ~1.7 s in a TCG guest).
    let _trace = tcplab_runner::KernelTraceKeeper::new();
    let jobs = jobs_within_cap(args.jobs);
    let env = Environment::probe();
    let started = Instant::now();
    let out_existed = args.out.exists();
    // A reader that goes away must not stop the runs: results/ is the real output.
    let stdout = io::stdout();
    // In the order printed: the skipped first (as a guest reports them), then the runs.
    let names: Vec<&str> = skipped
        .iter()
        .map(|r| r.scenario.as_str())
        .chain(scenarios.iter().map(|s| s.name()))
        .collect();
    let mut printer = Printer::new(
        &args,
        &names,
        crate::output::UntilClosed::new(stdout.lock()),
    )?;
    let mut tally = BatchTally::default();
    let mut cases = Vec::new();
    for r in &skipped {
        printer.skipped(r)?;
        cases.push(junit::Case::skipped(r));
        printer.ktap_case(cases.last())?;
    }
    // A scenario whose every run was a timing miss is not judged yet: it runs again at the
    // end, when no other batch competes for the machine.
    let mut busy: Vec<&Scenario> = Vec::new();
    for s in &scenarios {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let keep_root = out_existed || tally.batches() > 0 || !busy.is_empty();
        let done = match one_batch(&args, s, jobs, &cancel, &env, keep_root)? {
            Ok(d) => d,
            Err(code) => return Ok(code),
        };
        if done.inconclusive() {
            eprintln!(
                "tcplab: note: {}: every run missed its timing (the machine is busy): tried again at the end of the suite",
                s.name()
            );
            busy.push(s);
            continue;
        }
        tally.add(&done);
        let counts = tcplab_compare::counts_text(&done.verdict.counts);
        printer.batch(s, &done, &counts)?;
        cases.push(done.junit_case(s, &counts));
        printer.ktap_case(cases.last())?;
    }
    for s in busy {
        let mut done = None;
        for pause in BUSY_RETRY_PAUSES {
            if !pause_unless_cancelled(pause, &cancel) {
                break;
            }
            let d = match one_batch(&args, s, jobs, &cancel, &env, true)? {
                Ok(d) => d,
                Err(code) => return Ok(code),
            };
            let again = d.inconclusive();
            done = Some(d);
            if !again {
                break;
            }
        }
        // Interrupted during the pause: the scenario is left out like one never started.
        let Some(done) = done else { break };
        tally.add(&done);
        let counts = tcplab_compare::counts_text(&done.verdict.counts);
        printer.batch(s, &done, &counts)?;
        cases.push(done.junit_case(s, &counts));
        printer.ktap_case(cases.last())?;
    }
    printer.ktap_end(&names)?;
    let interrupted = cancel.load(Ordering::SeqCst);
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render("tcplab run", &cases))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    printer.totals(&tally, skipped.len(), interrupted, started)?;
    Ok(if interrupted {
        Exit::INTERRUPTED
    } else if tally.failed > 0 {
        Exit::MISMATCH
    } else if tally.inconclusive > 0 {
        args.inconclusive_exit()
    } else {
        Exit::OK
    })
}

/// One scenario's batch, with the notes its runs left said on stderr. `Ok(Err(code))`: a
/// refusal already said (missing privileges), the run's exit code.
fn one_batch(
    args: &RunArgs,
    s: &Scenario,
    jobs: usize,
    cancel: &Arc<AtomicBool>,
    env: &Environment,
    keep_root: bool,
) -> anyhow::Result<Result<BatchOutcome, u8>> {
    let bar = progress_bar(s);
    let place = BatchPlace {
        root: &args.out,
        keep_root,
    };
    let ran = run_batch(s, &place, batch_options(args, s, jobs, cancel, &bar), env);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let done = match ran {
        Ok(d) => d,
        Err(e) if e.is_permission_denied() => {
            return Ok(Err(Refused::Permission(e.to_string()).report()));
        }
        Err(e @ RunError::CreateBatch { .. }) => return Err(e.into()),
        Err(e) => return Err(e).with_context(|| format!("running {}", s.name())),
    };
    for n in tcplab_runner::run::take_notices() {
        eprintln!("tcplab: note: {n}");
    }
    Ok(Ok(done))
}

/// Wait `pause` (a busy scenario's breath before it runs again), in short steps so that a
/// signal ends the wait at once; `false` when a signal came.
fn pause_unless_cancelled(pause: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while !cancel.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    false
}

/// An unwritable `--junit` is a usage error before any run, not after the runs (also for
/// `--kernel`, before any guest boots).
fn junit_writable(args: &RunArgs) -> Result<(), Refused> {
    let Some(path) = &args.junit else {
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| Refused::Junit {
            path: path.clone(),
            why: e.to_string(),
        })
}

/// `--shard`: this task's scenarios, said on stderr; `None` when it owns none (more tasks
/// than scenarios: nothing to do, which is no failure; KTAP says "skip all").
fn take_shard(args: &RunArgs, scenarios: Vec<Scenario>) -> Option<Vec<Scenario>> {
    let Some(shard) = args.shard else {
        return Some(scenarios);
    };
    let all = scenarios.len();
    let mine: Vec<Scenario> = scenarios
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.owns(*i))
        .map(|(_, s)| s)
        .collect();
    eprintln!("tcplab: shard {shard}: {} of {all} scenarios", mine.len());
    if mine.is_empty() {
        if args.output_format() == FormatArg::Ktap {
            print!(
                "{}",
                ktap::skip_all(&format!("shard {shard} has no scenarios"))
            );
        }
        return None;
    }
    Some(mine)
}

/// Everything runs on this host need, in order: privileges (without root, a user namespace
/// of our own, entered before any thread starts), the signals (held since `main` began: from
/// here on Ctrl-C, SIGTERM and SIGHUP stop starting runs and keep the finished ones), a
/// working capture, and each `[sysctl]` tried in a fresh namespace (a bad one is the file's
/// error, file:line, not a failure of every run). `Err` is the exit code, already said.
fn ready_to_run(args: &RunArgs, scenarios: &[Scenario]) -> Result<Arc<AtomicBool>, u8> {
    let entered = match crate::rootless::enter_if_needed("run") {
        crate::rootless::Privileges::Blocked(line) => return Err(args.cannot_run_here(&line)),
        p => p == crate::rootless::Privileges::EnteredUserNamespace,
    };
    let cancel = crate::signal::claim();
    // Missing privileges or a broken libpcap: the error says which capability is missing.
    if let Err(e) = tcplab_runner::check_privileges() {
        if entered && e.is_permission_denied() {
            // The namespace was made but grants nothing (e.g. AppArmor's userns restriction).
            let line = crate::rootless::blocked_message(
                "run",
                std::path::Path::new("/proc/sys"),
                &e.to_string(),
            );
            return Err(args.cannot_run_here(&line));
        }
        return Err(args.cannot_run_here(&e.to_string()));
    }
    let checked = tcplab_runner::sysctl::check(scenarios)
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = checked {
        return Err(Refused::Sysctl(e).report());
    }
    // In a guest: note stalls of the whole VM, so runs they spoil are timing misses.
    tcplab_runner::stall::start_if_wanted();
    Ok(cancel)
}

/// The batch's progress bar on stderr, only when stderr is a terminal.
fn progress_bar(s: &Scenario) -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::with_draw_target(
        Some(u64::from(s.repeat)),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} {eta}")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_prefix(s.name().to_owned());
    b.enable_steady_tick(Duration::from_millis(200));
    Some(b)
}

/// The runner's options for `s`'s batch, from the arguments.
fn batch_options(
    args: &RunArgs,
    s: &Scenario,
    jobs: usize,
    cancel: &Arc<AtomicBool>,
    bar: &Option<indicatif::ProgressBar>,
) -> RunOptions {
    let progress: Option<tcplab_runner::run::ProgressFn> = bar.as_ref().map(|b| {
        let b = b.clone();
        Arc::new(move |n: u64| b.set_position(n)) as tcplab_runner::run::ProgressFn
    });
    RunOptions {
        repeat: s.repeat,
        jobs,
        out_dir: None,
        keep_pcaps: args.keep_pcaps == KeepArg::All,
        keep_failed: args.keep_pcaps != KeepArg::None,
        pooled: args.pooled,
        cancel: Some(Arc::clone(cancel)),
        progress,
    }
}

/// What `run` prints on stdout, in the chosen format: a line (JSON) or a block (human) per
/// batch, KTAP's plan, test lines and totals, and the human closing line.
struct Printer<W: Write> {
    out: W,
    format: FormatArg,
    /// `--report`: write each batch's page (else say where it would go).
    report: bool,
    /// Width of the scenario name column.
    name_w: usize,
    ktap_tests: Vec<KtapTest>,
}

impl<W: Write> Printer<W> {
    /// Starts the output (KTAP's header with its plan) for the scenarios `names`, in the
    /// order they will be printed.
    fn new(args: &RunArgs, names: &[&str], mut out: W) -> io::Result<Self> {
        let format = args.output_format();
        if format == FormatArg::Ktap {
            write!(out, "{}", ktap::header(names.len()))?;
            out.flush()?;
        }
        Ok(Printer {
            out,
            format,
            report: args.report,
            name_w: names.iter().map(|n| n.len()).max().unwrap_or(8).min(40),
            ktap_tests: Vec::new(),
        })
    }

    /// One batch that ran: its JSON line or human block, and its page.
    fn batch(&mut self, s: &Scenario, done: &BatchOutcome, counts: &str) -> io::Result<()> {
        let BatchOutcome {
            dir: batch,
            verdict: v,
            record: head,
            elapsed_s: elapsed,
            cancelled,
        } = done;
        let inconclusive = done.inconclusive();
        let out = &mut self.out;
        if self.format == FormatArg::Json {
            writeln!(out, "{}", tcplab_runner::record::to_line(head))?;
        } else if self.format == FormatArg::Human {
            let verdict = if *cancelled {
                "CANCELLED"
            } else if v.passed {
                "PASS"
            } else if inconclusive {
                "INCONCLUSIVE"
            } else {
                "FAIL"
            };
            let name_w = self.name_w;
            writeln!(
                out,
                "{verdict}  {:<name_w$}  {:>5} runs  {}  ({} drops{}, {:.1} s)",
                s.name(),
                v.runs,
                counts,
                v.drops,
                timing_text(v),
                elapsed
            )?;
            if let Some(d) = &s.description {
                writeln!(out, "      {d}")?;
            }
            if !v.rst_reasons.is_empty() {
                let reasons: Vec<String> = v
                    .rst_reasons
                    .iter()
                    .map(|(r, n)| format!("{r} ×{n}"))
                    .collect();
                writeln!(out, "      kernel's RST reasons: {}", reasons.join(", "))?;
            }
            if *cancelled {
                writeln!(
                    out,
                    "      interrupted after {} of {} runs: not a verdict on the kernel",
                    v.runs, s.repeat
                )?;
            } else if inconclusive {
                writeln!(
                    out,
                    "      inconclusive, not a verdict on the kernel: {}",
                    v.message.as_deref().unwrap_or("the machine was too busy")
                )?;
            } else if let Some(m) = &v.message {
                writeln!(out, "      mismatch: {m}")?;
            }
            if let Some(r) = v.first_failure_run.as_deref() {
                if let Some(n) = &r.narration {
                    writeln!(out, "      first mismatching run ({}):", r.index + 1)?;
                    for line in n.lines() {
                        writeln!(out, "        {line}")?;
                    }
                }
                if let Some(d) = &r.dir {
                    writeln!(out, "      files: {}", d.display())?;
                }
            }
            writeln!(out, "      results: {}", batch.display())?;
        }
        // The batch's page: written with --report, else said where it would go.
        let human = self.format == FormatArg::Human;
        if self.report && !cancelled {
            match tcplab_report::dir::write_report(batch, tcplab_trace::render::Lang::En) {
                Ok(p) if human => writeln!(out, "      report: {}", p.display())?,
                Ok(_) => {}
                Err(e) => eprintln!("tcplab: report: {e}"),
            }
        } else if human && !cancelled {
            writeln!(
                out,
                "      report: {} (with --report, or `tcplab report {}`)",
                batch.join(tcplab_report::dir::PAGE_FILE).display(),
                batch.display()
            )?;
        }
        out.flush()
    }

    /// One scenario this kernel cannot run: its JSON line (the shape a `run --kernel` guest's
    /// skip has) or human line.
    fn skipped(&mut self, r: &SkippedRecord) -> io::Result<()> {
        match self.format {
            FormatArg::Json => writeln!(self.out, "{}", tcplab_runner::record::to_line(r))?,
            FormatArg::Human => {
                let name_w = self.name_w;
                writeln!(
                    self.out,
                    "SKIP  {:<name_w$}  {:>5} runs  skipped: {}",
                    r.scenario, 0, r.skipped
                )?;
            }
            FormatArg::Ktap => {}
        }
        self.out.flush()
    }

    /// KTAP's test line for the batch just printed (streamed: kernel CI reads as it goes).
    fn ktap_case(&mut self, case: Option<&junit::Case>) -> io::Result<()> {
        let (FormatArg::Ktap, Some(case)) = (self.format, case) else {
            return Ok(());
        };
        let t = KtapTest::from_case(case, "");
        write!(self.out, "{}", ktap::test(self.ktap_tests.len() + 1, &t))?;
        self.out.flush()?;
        self.ktap_tests.push(t);
        Ok(())
    }

    /// KTAP's end: the plan promised every scenario, so the ones a signal kept from starting
    /// are skips; then the totals.
    fn ktap_end(&mut self, names: &[&str]) -> io::Result<()> {
        if self.format != FormatArg::Ktap {
            return Ok(());
        }
        for name in &names[self.ktap_tests.len()..] {
            let t = KtapTest {
                name: (*name).to_owned(),
                result: KtapResult::Skip("interrupted before it started".into()),
                diagnostics: Vec::new(),
            };
            write!(self.out, "{}", ktap::test(self.ktap_tests.len() + 1, &t))?;
            self.ktap_tests.push(t);
        }
        write!(self.out, "{}", ktap::totals(&self.ktap_tests))
    }

    /// The human closing line (`, N skipped` only when some were).
    fn totals(
        &mut self,
        t: &BatchTally,
        skipped: usize,
        interrupted: bool,
        started: Instant,
    ) -> io::Result<()> {
        if self.format == FormatArg::Human {
            let n = t.batches() + skipped;
            writeln!(
                self.out,
                "ran {n} scenario{}: {} passed, {} failed{}{}{}{}{} ({:.1} s)",
                if n == 1 { "" } else { "s" },
                t.passed,
                t.failed,
                if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                },
                if t.cancelled > 0 {
                    format!(", {} cancelled", t.cancelled)
                } else {
                    String::new()
                },
                if t.inconclusive > 0 {
                    format!(
                        ", {} inconclusive (the machine was too busy to time {})",
                        t.inconclusive,
                        if t.inconclusive == 1 {
                            "its runs"
                        } else {
                            "their runs"
                        }
                    )
                } else {
                    String::new()
                },
                if interrupted { ", interrupted" } else { "" },
                if t.timing_misses > 0 {
                    format!(
                        "; {} timing miss{} retried, {} run{} not counted",
                        t.timing_misses,
                        if t.timing_misses == 1 { "" } else { "es" },
                        t.timing_miss_runs,
                        if t.timing_miss_runs == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                started.elapsed().as_secs_f64()
            )?;
        }
        self.out.flush()
    }
}

/// `, 3 timing misses (retried)` or `, 4 timing misses (1 run still missed: not counted)`;
/// empty when the programs kept every knob.
fn timing_text(v: &expect::Verdict) -> String {
    match (v.timing_misses, v.timing_miss_runs) {
        (0, _) => String::new(),
        (n, 0) => format!(
            ", {n} timing miss{} (retried)",
            if n == 1 { "" } else { "es" }
        ),
        (n, r) => format!(
            ", {n} timing miss{} ({r} run{} still missed: not counted)",
            if n == 1 { "" } else { "es" },
            if r == 1 { "" } else { "s" }
        ),
    }
}
