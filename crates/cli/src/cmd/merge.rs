//! `tcplab merge`: join the directories of a sharded sweep into one result.

use crate::exit::Exit;
use std::path::PathBuf;
use tcplab_sweep::engine;

/// Join the output directories of `tcplab sweep --shard I/N` runs into one result.
///
/// The merged directory gets the same results.csv, results.json, summary.json, boundary.txt
/// and SVGs as an unsharded run of the same sweep (point files are copied; pcaps stay in the
/// shard directories and the copies point there). Every directory must be the same sweep:
/// scenario file, --repeat and --vary.
#[derive(Debug, clap::Parser)]
pub struct MergeArgs {
    /// Shard output directories (each has a sweep.json).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output directory [default: results/sweep/<scenario>/, where an unsharded run would
    /// write, so that `tcplab sweep` there afterwards finds every point done].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Succeed even when some points are in no directory (a shard failed or is still running).
    #[arg(long)]
    pub allow_partial: bool,
}

pub fn exec(args: MergeArgs) -> anyhow::Result<u8> {
    let out = match args.out {
        Some(o) => o,
        None => {
            let first = args
                .dirs
                .first()
                .ok_or(engine::SweepError::NothingToMerge)?;
            super::sweep::default_out(&engine::read_manifest(first)?.scenario)
        }
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let Some(_lock) = super::sweep::lock_or_wait(&out, &cancel)? else {
        return Ok(Exit::INTERRUPTED);
    };
    let report = engine::merge(&args.dirs, &out)?;
    for (file, why) in &report.corrupt {
        eprintln!(
            "tcplab: {}: {why}; its point is not merged from there",
            file.display()
        );
    }
    print!("{}", report.outputs.boundary_text());
    for f in &report.outputs.files {
        println!("wrote {}", f.display());
    }
    eprintln!(
        "merged {} directories: {} of {} points",
        args.dirs.len(),
        report.outputs.points.len(),
        report.outputs.planned
    );
    if !report.missing.is_empty() {
        let shown: Vec<&str> = report.missing.iter().take(5).map(String::as_str).collect();
        let more = report.missing.len().saturating_sub(shown.len());
        eprintln!(
            "tcplab: {} points are in none of the directories: {}{}",
            report.missing.len(),
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        );
        if !args.allow_partial {
            return Ok(Exit::USAGE);
        }
    }
    Ok(Exit::OK)
}
