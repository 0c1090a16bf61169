//! `tcplab kernels fetch|build|list`: the kernel cache for `tcplab run --kernel`.

use std::io::Write;
use std::path::PathBuf;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tcplab_vm::build::{self, BuildError, BuildSpec, BuiltKernel, Progress, Source};
use tcplab_vm::kernels;

use crate::exit::Exit;

/// Get Linux kernel images for `tcplab run --kernel` without installing them.
///
/// Kernels come from the system's apt sources (`apt-get download` + `dpkg-deb`; no install,
/// no maintainer scripts) and are kept with the modules a guest may need (tun, veth,
/// inet_diag, tcp_diag, ipv6 and their dependencies) in
/// `$XDG_CACHE_HOME/tcplab/kernels` (or `--cache DIR`).
#[derive(Debug, clap::Parser)]
pub struct KernelsArgs {
    #[command(subcommand)]
    pub action: KernelsAction,
}

/// The cache directory option shared by `kernels` and `run --kernel`.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArg {
    /// Kernel cache directory (default `$XDG_CACHE_HOME/tcplab/kernels`, else
    /// `~/.cache/tcplab/kernels`).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum KernelsAction {
    /// Fetch kernels: SPEC is a version prefix (`6.1` = the newest matching image package in
    /// the apt sources) or an exact package name (`linux-image-6.1.0-57-cloud-amd64`).
    Fetch {
        /// What to fetch.
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
        /// Debian kernel flavour for version prefixes.
        #[arg(long, default_value = kernels::DEFAULT_FLAVOUR)]
        flavour: String,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Build a tcplab-ready kernel: SRC is a kernel source directory, or `debian:6.1` /
    /// `debian:6.12` (Debian's linux-source-X package, apt-get installed if missing,
    /// extracted once into the cache). Out of tree in the cache, keyed by source and config:
    /// building the same tree again is incremental. Starts from `make tinyconfig` (or
    /// --base-config), merged with the options the guest needs, each checked after
    /// olddefconfig. Prints the bzImage's path.
    Build {
        /// The source.
        #[arg(value_name = "SRC")]
        source: String,
        /// Start from this config instead of `make tinyconfig` (its explicit
        /// `# CONFIG_X is not set` of a required option is kept, and reported).
        #[arg(long, value_name = "FILE")]
        base_config: Option<PathBuf>,
        /// make -jN (default: the CPUs).
        #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        jobs: Option<u32>,
        /// One JSON object (built.json) on stdout instead of the path.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// List the cached kernels (fetched and built): release, size, where each came from.
    List {
        /// One JSON object per kernel per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArg,
    },
}

pub fn exec(args: KernelsArgs) -> anyhow::Result<u8> {
    match args.action {
        KernelsAction::Fetch {
            specs,
            flavour,
            cache,
        } => {
            let dir = kernels::cache_dir(cache.cache.as_deref())?;
            let mut failed = false;
            for spec in &specs {
                let t = std::time::Instant::now();
                match kernels::fetch(&dir, spec, &flavour) {
                    Ok(k) => println!(
                        "{spec}: {} ({}, {:.1} MiB image) in {} ({:.1} s)",
                        k.release,
                        k.package,
                        k.vmlinuz_bytes as f64 / 1048576.0,
                        dir.join(&k.release).display(),
                        t.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        eprintln!("tcplab: kernels fetch {spec}: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { Exit::USAGE } else { Exit::OK })
        }
        KernelsAction::Build {
            source,
            base_config,
            jobs,
            json,
            cache,
        } => {
            let dir = kernels::cache_dir(cache.cache.as_deref())?;
            let cancel = Arc::new(AtomicBool::new(false));
            {
                let c = Arc::clone(&cancel);
                // Fails only if a handler is already installed (not the case here).
                let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
            }
            let jobs = jobs.map_or_else(super::jobs::default_jobs, |j| j as usize);
            match build_kernel(&dir, &source, base_config, jobs, &cancel) {
                Ok(b) => {
                    if json {
                        println!("{}", serde_json::to_string(&b)?);
                    } else {
                        println!("{}", b.bzimage.display());
                    }
                    Ok(Exit::OK)
                }
                Err(e) => Ok(report_build_error(&e)),
            }
        }
        KernelsAction::List { json, cache } => {
            let dir = kernels::cache_dir(cache.cache.as_deref())?;
            let list = kernels::list(&dir).with_context(|| format!("reading {}", dir.display()))?;
            // Entries whose kernel.json cannot be read are not kernels, but not hidden either.
            let damaged = kernels::damaged(&dir);
            for (path, why) in &damaged {
                eprintln!(
                    "tcplab: warning: damaged cache entry {}: {why} (remove it and fetch again)",
                    path.display()
                );
            }
            let built = build::list_built(&dir);
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if json {
                for (path, k) in &list {
                    let mut v = serde_json::to_value(k)?;
                    v["path"] = path.display().to_string().into();
                    writeln!(out, "{v}")?;
                }
                for b in &built {
                    let mut v = serde_json::to_value(b)?;
                    v["path"] = b.bzimage.display().to_string().into();
                    writeln!(out, "{v}")?;
                }
                return Ok(Exit::OK);
            }
            for b in &built {
                let size = std::fs::metadata(&b.bzimage).map_or(0, |m| m.len());
                writeln!(
                    out,
                    "{}  {:>5.1} MiB  built {}  from {} ({})",
                    b.release,
                    size as f64 / 1048576.0,
                    b.built_utc,
                    b.source,
                    b.base_config
                )?;
                writeln!(out, "  {}", b.bzimage.display())?;
            }
            if list.is_empty() && !built.is_empty() {
                return Ok(Exit::OK);
            }
            if list.is_empty() {
                writeln!(
                    out,
                    "no kernels in {} (fetch some: tcplab kernels fetch 6.1 6.12)",
                    dir.display()
                )?;
                return Ok(Exit::OK);
            }
            let w = list.iter().map(|(_, k)| k.release.len()).max().unwrap_or(0);
            for (path, k) in &list {
                let modules: Vec<&str> = k.modules.keys().map(String::as_str).collect();
                writeln!(
                    out,
                    "{:<w$}  {:>5.1} MiB  fetched {}  {}  modules: {}",
                    k.release,
                    k.vmlinuz_bytes as f64 / 1048576.0,
                    k.fetched_utc,
                    k.source,
                    if modules.is_empty() {
                        "none".into()
                    } else {
                        modules.join(", ")
                    },
                )?;
                writeln!(out, "{:<w$}  {}", "", path.display())?;
            }
            Ok(Exit::OK)
        }
    }
}

/// Build `source` with a progress bar on a terminal (milestones only in CI logs).
pub fn build_kernel(
    cache: &std::path::Path,
    source: &str,
    base_config: Option<PathBuf>,
    jobs: usize,
    cancel: &AtomicBool,
) -> Result<BuiltKernel, BuildError> {
    use std::io::IsTerminal;
    let spec = BuildSpec {
        cache: cache.to_owned(),
        source: Source::parse(source)?,
        base_config,
        jobs,
    };
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    let spinner =
        indicatif::ProgressStyle::with_template("{spinner} {prefix} {elapsed}: {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let counted = indicatif::ProgressStyle::with_template(
        "{prefix} {elapsed} [{bar:30}] {pos}/{len} (eta {eta}): {wide_msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(spinner.clone());
    let mut progress = |p: Progress<'_>| match p {
        Progress::Step(s) => {
            if !tty {
                eprintln!("tcplab: kernels build {source}: {s}");
            }
            bar.set_style(spinner.clone());
            bar.set_prefix(s.to_owned());
            bar.set_message("");
        }
        Progress::Line { n, of, line } => {
            if of > 0 && bar.length() != Some(of) {
                bar.set_style(counted.clone());
                bar.set_length(of);
            }
            bar.set_position(if of > 0 { n.min(of) } else { n });
            bar.set_message(line.trim().to_owned());
        }
    };
    let r = build::build(&spec, &mut progress, cancel);
    bar.finish_and_clear();
    if let Ok(b) = &r {
        eprintln!(
            "tcplab: built {} from {} in {:.1} s ({}; log {})",
            b.release,
            spec.source.describe(),
            b.build_s,
            if b.incremental {
                "incremental"
            } else {
                "full build"
            },
            b.build_dir.join("build.log").display()
        );
    }
    r
}

/// Print a build error (a failed build: its last compiler errors first) and return the
/// exit code.
pub fn report_build_error(e: &BuildError) -> u8 {
    if let BuildError::Failed { errors, .. } = e {
        for l in errors {
            eprintln!("  {l}");
        }
    }
    eprintln!("tcplab: kernels build: {e}");
    if matches!(e, BuildError::Interrupted) {
        Exit::INTERRUPTED
    } else {
        Exit::USAGE
    }
}
