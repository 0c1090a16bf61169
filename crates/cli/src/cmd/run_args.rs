//! `tcplab run`'s arguments, `--kernel`'s among them: plain data beneath `run.rs` and
//! `run_kernels.rs`, which both read them (and `run` hands them to `run_kernels`).

use std::io::{self, Write};
use std::path::PathBuf;

use super::jobs::default_jobs;
use crate::exit::Exit;

/// Which runs keep their files (capture.pcap, analysis.json, report.txt) under results/.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum KeepArg {
    /// Every run.
    #[default]
    All,
    /// Only runs whose check failed.
    Failed,
    /// None (summary.json and meta.json are still written).
    None,
}

/// What `run` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One line per scenario and a closing summary (the default).
    Human,
    /// One JSON object per scenario per line (= `--json`).
    Json,
    /// KTAP (TAP version 13) as kernel CI reads it: one `ok`/`not ok` per scenario (per
    /// scenario × kernel with `--kernel`), `# SKIP`, `# ` diagnostics, `# Totals:`.
    Ktap,
}

/// Run scenario files: fresh network namespace per run, live capture, classification, check.
///
/// Needs root (CAP_SYS_ADMIN for namespaces, CAP_NET_RAW for capture). Exit status: 0 every
/// expectation held (a scenario skipped because the kernel is older than its since_kernel
/// is no failure); 1 one did not; 2 bad usage, invalid scenario or missing privileges;
/// 130 interrupted (finished runs and summaries are kept).
#[derive(Debug, clap::Parser)]
pub struct RunArgs {
    /// Scenario files or directories (searched recursively for *.toml).
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// Runs per scenario (overrides each file's `repeat`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Runs in parallel (threads; each run still gets its own namespace)
    /// [default: the number of CPUs; at most 2 per CPU, a larger value is clamped and said].
    #[arg(long, short = 'j', default_value_t = default_jobs(), hide_default_value = true,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
    /// Results directory: <OUT>/<scenario>/<UTC stamp>/{meta.json,summary.json,run-NNNN/}.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print one JSON object per scenario on stdout (and nothing else there).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Write each batch's HTML page (`<batch>/report.html`, as `tcplab report` does) when it
    /// ends.
    #[arg(long)]
    pub report: bool,
    /// Output format on stdout [default: human; ktap with --kselftest].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Behave as a kselftest program: KTAP on stdout (unless --format says otherwise) and
    /// kselftest's exit codes: 0 pass, 1 fail, 4 when this environment cannot run the tests
    /// (no namespaces, no privileges, no QEMU).
    #[arg(long)]
    pub kselftest: bool,
    /// Write JUnit XML (one testcase per scenario) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// One namespace and one capture for all runs of a scenario (fresh ports per run): much
    /// faster, same outcomes on deterministic scenarios.
    #[arg(long)]
    pub pooled: bool,
    /// Which runs keep their capture, analysis and report.
    #[arg(long, value_enum, default_value_t)]
    pub keep_pcaps: KeepArg,
    /// A program's close this far off its knob (ms) is a timing miss: retried, never counted as
    /// the kernel's outcome [default: each scenario's `timing_tolerance_ms`, else 5].
    #[arg(long, value_name = "MS")]
    pub timing_tolerance_ms: Option<f64>,
    /// Run only shard I of N of the scenario list (in the order found: files as given,
    /// directories sorted), every N-th from the I-th; I is 0-based (0..N-1), as Slurm's
    /// `SLURM_ARRAY_TASK_ID` and Kubernetes' `JOB_COMPLETION_INDEX`. Every file is still
    /// validated. `compare` and the matrix read the union of the shards' results.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<tcplab_sweep::plan::Shard>,
    /// Override a knob in every scenario, e.g. `--set client.close_delay_ms=35` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Other kernels (QEMU guests): see `--kernel`.
    #[command(flatten)]
    pub vm: KernelArgs,
}

fn parse_shard(s: &str) -> Result<tcplab_sweep::plan::Shard, String> {
    tcplab_sweep::plan::Shard::parse(s).map_err(|e| e.to_string())
}

impl RunArgs {
    /// The format stdout carries (`--json`, `--format`, `--kselftest`'s KTAP, else human).
    pub fn output_format(&self) -> FormatArg {
        match (self.json, self.format, self.kselftest) {
            (true, _, _) => FormatArg::Json,
            (false, Some(f), _) => f,
            (false, None, true) => FormatArg::Ktap,
            (false, None, false) => FormatArg::Human,
        }
    }

    /// The exit code when a scenario was inconclusive (the machine too busy to time any of
    /// its runs) and none failed: 3, or with `--kselftest` its skip code 4 (kselftest's 3
    /// means "passed unexpectedly").
    pub fn inconclusive_exit(&self) -> u8 {
        if self.kselftest {
            Exit::KSELFTEST_SKIP
        } else {
            Exit::INCONCLUSIVE
        }
    }

    /// This environment cannot run the tests (`why` says what is missing): one line on
    /// stderr; with `--kselftest` a KTAP "skip all" on stdout and exit 4, else exit 2.
    pub fn cannot_run_here(&self, why: &str) -> u8 {
        eprintln!("tcplab: {why}");
        if !self.kselftest {
            return Exit::USAGE;
        }
        if self.output_format() == FormatArg::Ktap {
            print!("{}", tcplab_runner::ktap::skip_all(why));
            let _ = io::stdout().flush();
        }
        Exit::KSELFTEST_SKIP
    }
}

/// Accelerator for guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum AccelArg {
    /// KVM when a probe boot of the kernel works under it (cached), else TCG.
    #[default]
    Auto,
    /// KVM (hardware virtualisation).
    Kvm,
    /// TCG (software emulation; works everywhere, 10–30× slower guest code).
    Tcg,
}

/// Options of `run` for running on other kernels.
#[derive(Debug, Clone, clap::Args)]
pub struct KernelArgs {
    /// Run on this kernel (repeatable): `host` (natively, as without --kernel), a path to a
    /// bzImage/vmlinuz, a kernel source directory or `debian:6.1` (built first with
    /// `tcplab kernels build`, incremental), or a version (`6.1`, `6.12`) from the kernel cache (fetched into it
    /// when missing). Results go to <OUT>/<kernel release>/.
    #[arg(long = "kernel", value_name = "SPEC")]
    pub kernels: Vec<String>,
    /// Accelerator for guests.
    #[arg(long, value_enum, default_value_t)]
    pub accel: AccelArg,
    /// Guest RAM in MiB (pinned: TCP's buffer defaults follow RAM, so compare equal sizes).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=65536))]
    pub vm_memory: u32,
    /// Guest CPUs (pinned: races depend on them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub vm_cpus: u32,
    /// Guests running at once (default: host CPUs / --vm-cpus).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub vm_jobs: Option<u32>,
    /// Stop a guest after this many seconds (default 120 + 1 per run).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub vm_timeout: Option<u64>,
    /// QEMU binary.
    #[arg(long, default_value = tcplab_vm::qemu::QEMU)]
    pub qemu: PathBuf,
    #[command(flatten)]
    pub cache: super::kernels::CacheArg,
}
