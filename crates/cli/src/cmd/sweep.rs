//! `tcplab sweep`: vary scenario knobs, run every point many times, and report where the
//! teardown changes kind — tables, pictures and the boundary in words.

use crate::exit::Exit;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tcplab_runner::Scenario;
use tcplab_sweep::engine::{self, RunnerError};
use tcplab_sweep::live::{LiveError, LiveOptions, LiveRunner, Pcaps};
use tcplab_sweep::{Event, Shard, Sweep, Vary};

/// Which pcaps to keep.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum PcapsArg {
    /// Every run's pcap.
    All,
    /// One run per outcome per point.
    #[default]
    Sample,
    /// None.
    None,
}

impl From<PcapsArg> for Pcaps {
    fn from(p: PcapsArg) -> Pcaps {
        match p {
            PcapsArg::All => Pcaps::All,
            PcapsArg::Sample => Pcaps::Sample,
            PcapsArg::None => Pcaps::None,
        }
    }
}

/// Vary one or two scenario knobs and map where the teardown changes kind.
///
/// Each point of the grid runs --repeat times (a fresh network namespace per run, as in
/// `tcplab run`). The out dir gets results.csv and results.json (one row per point and
/// outcome), summary.json and boundary.txt (the boundary in words), SVG pictures
/// (outcomes.svg + timing.svg for one knob, phase.svg for two), points/<point>.json (written as
/// each point finishes) and pcaps under runs/. Ctrl-C stops after keeping every finished
/// point; the same command again resumes. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root).
#[derive(Debug, clap::Parser)]
pub struct SweepArgs {
    /// Scenario file (TOML) whose knobs are varied.
    pub scenario: PathBuf,
    /// KEY=VALUES, once or twice (two make a grid). VALUES is a range `a..b:step` (b included
    /// when it lands on the grid; floats allowed), a list `a,b,c`, or one value. Keys are the
    /// scenario knobs, e.g. server.close_delay_ms, client.close_delay_ms, server.close.
    #[arg(long = "vary", required = true, value_name = "KEY=VALUES", value_parser = parse_vary)]
    pub vary: Vec<Vary>,
    /// Runs per point [default: the scenario's `repeat`].
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// Runs in parallel within a point [default: the number of CPUs; at most 2 per CPU].
    #[arg(long, value_name = "N", default_value_t = super::jobs::default_jobs(),
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// Output directory [default: results/sweep/<scenario>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard I of N: the points whose index % N == I. I is 0-based (0..N-1), so
    /// Kubernetes' JOB_COMPLETION_INDEX can be passed as is. Join with `tcplab merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Which pcaps to keep under <out>/runs/.
    #[arg(long, value_enum, default_value_t)]
    pub pcaps: PcapsArg,
    /// One namespace and capture per point instead of per run (faster; same outcomes).
    #[arg(long)]
    pub pooled: bool,
    /// Write the sweep's HTML page (`<out>/report.html`, as `tcplab report` does: the
    /// pictures with each point a link to its runs, the boundary in words) when it ends.
    #[arg(long)]
    pub report: bool,
}

fn parse_vary(s: &str) -> Result<Vary, String> {
    Vary::parse(s).map_err(|e| e.to_string())
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s).map_err(|e| e.to_string())
}

/// Take `out`'s lock, waiting (and saying once who holds it) while another sweep or merge
/// has it. `None`: interrupted while waiting.
pub fn lock_or_wait(
    out: &Path,
    cancel: &AtomicBool,
) -> anyhow::Result<Option<tcplab_sweep::store::DirLock>> {
    use tcplab_sweep::store::{lock_dir, LockError};
    let mut said = false;
    loop {
        match lock_dir(out) {
            Ok(l) => return Ok(Some(l)),
            Err(LockError::Held { dir, holder }) => {
                if !said {
                    eprintln!(
                        "tcplab: {} is in use by {holder}; waiting for it (Ctrl-C to give up)",
                        dir.display()
                    );
                    said = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Default out dir of a scenario's sweep (also `tcplab merge`'s default).
pub fn default_out(scenario: &str) -> PathBuf {
    Path::new("results").join("sweep").join(scenario)
}

pub fn exec(args: SweepArgs) -> anyhow::Result<u8> {
    // Without root, a user namespace of our own: only possible before any thread starts.
    if let crate::rootless::Privileges::Blocked(line) = crate::rootless::enter_if_needed("sweep") {
        eprintln!("tcplab: {line}");
        return Ok(Exit::USAGE);
    }
    // Then the signals (held since main began), so that Ctrl-C or SIGTERM is honoured from
    // planning on.
    let cancel = crate::signal::claim();
    // Refuses a FIFO or /dev/zero at once, like every scenario read (the error names the file).
    let bytes = tcplab_runner::discover::read_scenario(&args.scenario)?;
    let scenario = Scenario::load(&args.scenario)?;
    let repeat = args.repeat.unwrap_or(scenario.repeat);
    let shard = args.shard.unwrap_or(Shard::ALL);
    let sweep = Sweep::new(scenario.name(), &bytes, repeat, args.vary, shard)?;
    let out = args.out.unwrap_or_else(|| default_out(scenario.name()));
    let jobs = super::jobs::jobs_within_cap(args.jobs);

    // One sweep per directory at a time: wait for the holder, saying who it is.
    let Some(_lock) = lock_or_wait(&out, &cancel)? else {
        return Ok(Exit::INTERRUPTED);
    };
    let (done_before, todo) = engine::status(&sweep, &out, shard);
    if cancel.load(Ordering::Relaxed) {
        eprintln!("interrupted while planning; nothing ran");
        return Ok(Exit::INTERRUPTED);
    }
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        ProgressBar::with_draw_target(
            Some(todo as u64 * u64::from(repeat)),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:36}] {pos}/{len} runs, ETA {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    let base = Arc::new(AtomicU64::new(0));
    let progress = {
        let (bar, base) = (bar.clone(), base.clone());
        Arc::new(move |n: u64| bar.set_position(base.load(Ordering::Relaxed) + n))
    };
    // `[sysctl]` keys and values, tried in a fresh namespace before the first point.
    let checked = tcplab_runner::sysctl::check(std::slice::from_ref(&scenario))
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = checked {
        eprintln!("tcplab: {e}");
        return Ok(Exit::USAGE);
    }
    let live = LiveRunner::new(
        scenario,
        &out,
        LiveOptions {
            jobs,
            pcaps: args.pcaps.into(),
            pooled: args.pooled,
            cancel: Some(cancel.clone()),
            progress: Some(progress),
        },
    );
    // Every point's values must be acceptable before the first run.
    live.check(&sweep.grid)?;

    let total = done_before + todo;
    eprintln!(
        "sweep {}: {} points (shard {shard}) × {repeat} runs, {done_before} already done, out {}",
        sweep.manifest.scenario,
        total,
        out.display()
    );
    // One kernel trace for every point, not one per point (its setup waits for the kernel).
    let _trace = tcplab_runner::KernelTraceKeeper::new();
    let started = Instant::now();
    let mut finished = done_before;
    let mut ran = 0u64;
    let mut on_event = |ev: Event<'_>| match ev {
        Event::Resumed(_) => {}
        Event::Started(p) => bar.set_message(p.label()),
        Event::Finished(s) => {
            finished += 1;
            ran += 1;
            base.store(ran * u64::from(repeat), Ordering::Relaxed);
            bar.set_position(ran * u64::from(repeat));
            let counts: Vec<String> = s
                .outcomes
                .iter()
                .map(|o| format!("{} {}/{}", o.key, o.count, s.runs))
                .collect();
            let elapsed = started.elapsed();
            let left = todo as u64 - ran;
            let eta = elapsed.mul_f64(left as f64 / ran as f64);
            let line = format!(
                "[{finished}/{total}] {}: {} ({:.1} s, ETA {:.0} s)",
                s.point.label(),
                counts.join(", "),
                elapsed.as_secs_f64(),
                eta.as_secs_f64()
            );
            if tty {
                bar.println(line);
            } else {
                eprintln!("{line}");
            }
        }
    };
    let mut runner = |p: &tcplab_sweep::Point| -> Result<Vec<tcplab_sweep::Outcome>, RunnerError> {
        live.run_point(p, repeat)
            .map_err(|e| Box::new(e) as RunnerError)
    };
    let result = engine::execute(&sweep, &out, shard, &cancel, &mut runner, &mut on_event);
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(engine::SweepError::Runner { point, source }) => {
            if let Some(live) = source.downcast_ref::<LiveError>() {
                if live.is_permission_denied() {
                    eprintln!("tcplab: {live}");
                    return Ok(Exit::USAGE);
                }
            }
            anyhow::bail!("{point}: {source}");
        }
        Err(e) => return Err(e.into()),
    };
    let outputs = engine::finalize(&out, &sweep.manifest)?;
    print!("{}", outputs.boundary_text());
    for f in &outputs.files {
        println!("wrote {}", f.display());
    }
    // The sweep's page: written with --report, else said where it would go.
    if args.report && !report.cancelled {
        match tcplab_report::sweep::write_sweep_report(&out, tcplab_trace::render::Lang::En) {
            Ok((page, _)) => println!("report: {}", page.display()),
            Err(e) => eprintln!("tcplab: report: {e}"),
        }
    } else {
        println!(
            "report: {} (with --report, or `tcplab report {}`)",
            out.join(tcplab_report::dir::PAGE_FILE).display(),
            out.display()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ran {} points ({} runs) in {secs:.1} s; {} resumed; {} of {} grid points have results",
        report.ran,
        report.ran as u64 * u64::from(repeat),
        report.resumed,
        outputs.points.len(),
        outputs.planned
    );
    if report.cancelled {
        let done = report.ran + report.resumed;
        if done == report.planned {
            // The signal came while the last point's runs were in flight; they finished.
            eprintln!(
                "interrupted: all of this shard's {done} points had finished; nothing left to resume"
            );
        } else {
            eprintln!(
                "interrupted: {done} of this shard's {} points done; run the same command again to resume",
                report.planned
            );
        }
        return Ok(Exit::INTERRUPTED);
    }
    Ok(Exit::OK)
}
