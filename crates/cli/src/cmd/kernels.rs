//! `tcplab kernels fetch|list`: the kernel cache for `tcplab run --kernel`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
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
    /// List the cached kernels: release, size, where each came from.
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
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if json {
                for (path, k) in &list {
                    let mut v = serde_json::to_value(k)?;
                    v["path"] = path.display().to_string().into();
                    writeln!(out, "{v}")?;
                }
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
