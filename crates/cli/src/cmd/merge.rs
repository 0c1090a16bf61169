//! `tcplab merge`: join the directories of a sharded sweep into one result.

use crate::exit::Exit;
use std::path::PathBuf;
use tcplab_sweep::engine;

/// Join the output directories of `tcplab sweep --shard I/N` runs into one result.
///
/// The merged directory gets the same results.csv, results.json, summary.json, boundary.txt
/// and SVGs as an unsharded run of the same sweep (point files are copied; pcaps stay in the
/// shard directories and the copies point there). Every directory must be the same sweep:
/// scenario file, --repeat and --vary; each shard once (no directory twice, no two copies of
/// one shard, no shards of different splits); in any order. With points missing, nothing is
/// written (exit 2) unless --allow-partial.
#[derive(Debug, clap::Parser)]
pub struct MergeArgs {
    /// Shard output directories (each has a sweep.json).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output directory [default: results/sweep/<scenario>/, where an unsharded run would
    /// write, so that `tcplab sweep` there afterwards finds every point done]. Not one of
    /// the inputs.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Merge what is there even when some points are in no directory (a shard failed or is
    /// still running), and say which are missing.
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
    // Everything is checked before anything is written (not even the out directory).
    let plan = engine::plan_merge(&args.dirs, &out)?;
    for (file, why) in &plan.corrupt {
        eprintln!(
            "tcplab: {}: {why}; its point is not merged from there",
            file.display()
        );
    }
    let missing_text = |missing: &[String]| {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        let more = missing.len().saturating_sub(shown.len());
        format!(
            "{} of {} points are in none of the directories{}: {}{}",
            missing.len(),
            plan.sources.len(),
            if plan.missing_shards.is_empty() {
                String::new()
            } else {
                format!(
                    " (no directory of shard {})",
                    plan.missing_shards.join(", ")
                )
            },
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )
    };
    if !plan.missing.is_empty() && !args.allow_partial {
        eprintln!(
            "tcplab: {}; nothing written (--allow-partial merges what is there)",
            missing_text(&plan.missing)
        );
        return Ok(Exit::USAGE);
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let Some(_lock) = super::sweep::lock_or_wait(&out, &cancel)? else {
        return Ok(Exit::INTERRUPTED);
    };
    let report = engine::write_merge(&plan, &out)?;
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
        eprintln!("tcplab: partial merge: {}", missing_text(&report.missing));
        if !args.allow_partial {
            // A shard changed under us between the check and the copy.
            return Ok(Exit::USAGE);
        }
    }
    Ok(Exit::OK)
}
