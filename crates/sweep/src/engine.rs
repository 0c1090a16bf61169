//! Running a sweep point by point (with resume and cancel), writing its outputs, and merging
//! shard directories.
//!
//! The runner is a seam: [`execute`] takes any `FnMut(&Point) -> Result<Vec<Outcome>, _>`, so
//! everything here is tested with hand-made outcomes; [`crate::live`] plugs in the real one.

use crate::boundary::{self, Line};
use crate::chart;
use crate::knob::Vary;
use crate::outcome::{Outcome, PointSummary};
use crate::plan::{Grid, GridError, Point, Shard};
use crate::store::{self, Manifest, ManifestKnob, PointFile, StoreError, FORMAT, MANIFEST};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the runner seam returns when a whole point cannot run (e.g. missing privileges).
pub type RunnerError = Box<dyn std::error::Error + Send + Sync>;

/// A sweep: what is swept and how often.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// Written to `sweep.json`; identifies the sweep for resume and merge.
    pub manifest: Manifest,
    /// The grid.
    pub grid: Grid,
}

impl Sweep {
    /// A sweep of `scenario` (its file's bytes give the hash) over `knobs`.
    pub fn new(
        scenario: &str,
        scenario_bytes: &[u8],
        repeat: u32,
        knobs: Vec<Vary>,
        shard: Shard,
    ) -> Result<Sweep, SweepError> {
        if repeat == 0 {
            return Err(SweepError::ZeroRepeat);
        }
        let grid = Grid::new(knobs)?;
        let manifest = Manifest {
            format: FORMAT,
            scenario: scenario.to_string(),
            scenario_hash: store::scenario_hash(scenario_bytes),
            repeat,
            knobs: grid
                .knobs
                .iter()
                .map(|k| ManifestKnob {
                    key: k.key.clone(),
                    values: k.values.iter().map(|v| v.text.clone()).collect(),
                })
                .collect(),
            shard: shard.to_string(),
        };
        Ok(Sweep { manifest, grid })
    }
}

/// What happened during [`execute`], for progress displays.
#[derive(Debug)]
pub enum Event<'a> {
    /// A point already complete on disk (resume): not run again.
    Resumed(&'a Point),
    /// A point is about to run.
    Started(&'a Point),
    /// A point finished and is on disk.
    Finished(&'a PointSummary),
}

/// The tally of [`execute`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// Points of this shard.
    pub planned: usize,
    /// Points found complete on disk.
    pub resumed: usize,
    /// Points run now.
    pub ran: usize,
    /// Stopped early by the cancel flag.
    pub cancelled: bool,
}

/// Run every point of `shard` that `dir` does not already hold, writing each point's file as
/// soon as it finishes. Stops between points (and discards a half-run point) when `cancel`
/// is set. Outputs are not written here: call [`finalize`] afterwards, also after a cancel.
pub fn execute(
    sweep: &Sweep,
    dir: &Path,
    shard: Shard,
    cancel: &AtomicBool,
    runner: &mut dyn FnMut(&Point) -> Result<Vec<Outcome>, RunnerError>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<ExecReport, SweepError> {
    store::write_json(&dir.join(MANIFEST), &sweep.manifest)?;
    // Points are built one at a time: planning never holds the grid.
    let mine = sweep.grid.iter().filter(|p| shard.owns(p.index));
    let mut report = ExecReport {
        planned: (0..sweep.grid.len()).filter(|&i| shard.owns(i)).count(),
        resumed: 0,
        ran: 0,
        cancelled: false,
    };
    let want = sweep.manifest.repeat as usize;
    for point in mine {
        let point = &point;
        if store::load_point(dir, &sweep.manifest, point).is_some() {
            report.resumed += 1;
            on_event(Event::Resumed(point));
            continue;
        }
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        on_event(Event::Started(point));
        let runs = runner(point).map_err(|source| SweepError::Runner {
            point: point.label(),
            source,
        })?;
        if runs.len() < want {
            if cancel.load(Ordering::Relaxed) {
                // Interrupted mid-point: keep nothing of it, it runs again on resume.
                report.cancelled = true;
                break;
            }
            return Err(SweepError::ShortPoint {
                point: point.label(),
                got: runs.len(),
                want,
            });
        }
        let file = PointFile::new(&sweep.manifest, point, &runs);
        store::write_json(&store::point_path(dir, point), &file)?;
        report.ran += 1;
        on_event(Event::Finished(&PointSummary::new(point.clone(), &runs)));
    }
    // A signal during the last point, whose runs were all in flight and all finished: that
    // point is kept, but the sweep was still interrupted (it used to exit 0 as if not).
    if cancel.load(Ordering::Relaxed) {
        report.cancelled = true;
    }
    Ok(report)
}

/// Points of `shard` that `dir` already holds complete, and those still to run (for a
/// progress bar whose ETA is not fooled by resumed points).
pub fn status(sweep: &Sweep, dir: &Path, shard: Shard) -> (usize, usize) {
    sweep
        .grid
        .iter()
        .filter(|p| shard.owns(p.index))
        .fold((0, 0), |(done, todo), p| {
            if store::load_point(dir, &sweep.manifest, &p).is_some() {
                (done + 1, todo)
            } else {
                (done, todo + 1)
            }
        })
}

/// The written outputs of a sweep directory.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// Every point with results, in grid order.
    pub points: Vec<PointSummary>,
    /// Points in the grid.
    pub planned: usize,
    /// The boundary, per line of the grid.
    pub boundary: Vec<Line>,
    /// Files written (results.csv, results.json, summary.json, boundary.txt, SVGs).
    pub files: Vec<PathBuf>,
}

impl Outputs {
    /// The boundary report.
    pub fn boundary_text(&self) -> String {
        boundary::text(&self.boundary)
    }
}

/// Summary file: the sweep, the boundary in words and in data (serialize-only).
#[derive(Serialize)]
struct SummaryJson<'a> {
    scenario: &'a str,
    scenario_hash: &'a str,
    repeat: u32,
    knobs: &'a [ManifestKnob],
    points_planned: usize,
    points_done: usize,
    boundary: Vec<BoundaryJson>,
    files: Vec<&'static str>,
}

#[derive(Serialize)]
struct BoundaryJson {
    knob: String,
    /// `[key, value]` of the second knob held fixed, if any.
    at: Option<(String, String)>,
    sentence: String,
    regions: Vec<RegionJson>,
    transitions: Vec<TransitionJson>,
    mixed: Vec<MixedJson>,
}

#[derive(Serialize)]
struct RegionJson {
    outcome: String,
    from: String,
    to: String,
}

#[derive(Serialize)]
struct TransitionJson {
    below: String,
    last: String,
    above: String,
    first: String,
}

#[derive(Serialize)]
struct MixedJson {
    at: String,
    shares: Vec<(String, f64)>,
}

fn boundary_json(l: &Line) -> BoundaryJson {
    BoundaryJson {
        knob: l.knob.clone(),
        at: l.fixed.as_ref().map(|(k, v)| (k.clone(), v.text.clone())),
        sentence: l.sentence(),
        regions: l
            .regions
            .iter()
            .map(|r| RegionJson {
                outcome: r.outcome.to_string(),
                from: r.from.text.clone(),
                to: r.to.text.clone(),
            })
            .collect(),
        transitions: l
            .transitions
            .iter()
            .map(|t| TransitionJson {
                below: t.below.to_string(),
                last: t.last.text.clone(),
                above: t.above.to_string(),
                first: t.first.text.clone(),
            })
            .collect(),
        mixed: l
            .mixed
            .iter()
            .map(|m| MixedJson {
                at: m.at.text.clone(),
                shares: m.shares.iter().map(|(k, s)| (k.to_string(), *s)).collect(),
            })
            .collect(),
    }
}

/// Recompute every output of sweep directory `dir` from its point files: results.csv,
/// results.json, summary.json, boundary.txt and the SVGs. Deterministic: the same point files
/// give byte-identical outputs, whichever process or shard ran them.
pub fn finalize(dir: &Path, manifest: &Manifest) -> Result<Outputs, SweepError> {
    let (grid, points, lines) = load(dir, manifest)?;
    let rows = store::rows(&points);
    let knob_names: Vec<String> = grid.knobs.iter().map(|k| k.key.clone()).collect();
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), SweepError> {
        let path = dir.join(name);
        store::write_atomic(&path, bytes)?;
        files.push(path);
        Ok(())
    };
    put("results.csv", store::csv(&knob_names, &rows).as_bytes())?;
    let mut json = serde_json::to_vec_pretty(&rows).map_err(|source| StoreError::Json {
        path: dir.join("results.json"),
        source,
    })?;
    json.push(b'\n');
    put("results.json", &json)?;
    let text = boundary::text(&lines);
    put("boundary.txt", text.as_bytes())?;
    let svgs = chart::render_all(&manifest.scenario, manifest.repeat, &grid, &points, &lines)?;
    for svg in &svgs {
        put(svg.name, svg.text.as_bytes())?;
    }
    let summary = SummaryJson {
        scenario: &manifest.scenario,
        scenario_hash: &manifest.scenario_hash,
        repeat: manifest.repeat,
        knobs: &manifest.knobs,
        points_planned: grid.len(),
        points_done: points.len(),
        boundary: lines.iter().map(boundary_json).collect(),
        files: ["results.csv", "results.json", "boundary.txt"]
            .into_iter()
            .chain(svgs.iter().map(|s| s.name))
            .collect(),
    };
    let summary_path = dir.join("summary.json");
    store::write_json(&summary_path, &summary)?;
    files.push(summary_path);
    Ok(Outputs {
        planned: grid.len(),
        points,
        boundary: lines,
        files,
    })
}

/// A sweep directory's grid, every point with results (in grid order) and the boundary:
/// what [`finalize`] writes its files from (and the report's sweep page draws).
pub fn load(
    dir: &Path,
    manifest: &Manifest,
) -> Result<(Grid, Vec<PointSummary>, Vec<Line>), SweepError> {
    let grid = manifest.grid()?;
    let points: Vec<PointSummary> = grid
        .iter()
        .filter_map(|p| {
            let runs = store::load_point(dir, manifest, &p)?;
            Some(PointSummary::new(p, &runs))
        })
        .collect();
    let lines = boundary::analyze(&grid, &points);
    Ok((grid, points, lines))
}

/// Read a sweep directory's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, SweepError> {
    store::read_json::<Manifest>(&dir.join(MANIFEST))?
        .ok_or_else(|| SweepError::NoManifest(dir.to_path_buf()))
}

/// The result of [`merge`].
#[derive(Clone, Debug)]
pub struct MergeReport {
    /// The merged outputs.
    pub outputs: Outputs,
    /// Labels of grid points that no input directory had.
    pub missing: Vec<String>,
    /// Point files that exist but could not be used (damaged, truncated, or of another
    /// sweep), with the reason: their points are in `missing` unless another directory had
    /// them.
    pub corrupt: Vec<(PathBuf, String)>,
}

/// What a merge would do, decided before anything is written ([`plan_merge`]).
#[derive(Clone, Debug)]
pub struct MergePlan {
    /// The input directories, in the order given.
    pub dirs: Vec<PathBuf>,
    /// The merged manifest (shard `merged`).
    pub manifest: Manifest,
    /// Grid points in index order: the input (index into `dirs`) that holds each, if any.
    pub sources: Vec<Option<usize>>,
    /// Labels of grid points that no input directory had.
    pub missing: Vec<String>,
    /// Shards (`I/N`) that no input claims, when the inputs are shards of one split.
    pub missing_shards: Vec<String>,
    /// Point files that exist but could not be used, with the reason.
    pub corrupt: Vec<(PathBuf, String)>,
}

/// Check the inputs of a merge and find every point, writing nothing: all inputs must be the
/// same sweep (scenario, its hash, repeat, grid), each shard of one split given once (no
/// directory twice, no two directories with the same shard, no shards of different `N`),
/// and `out` must not be one of them (merging into a shard would rewrite it). The order of
/// `dirs` does not matter for the result.
pub fn plan_merge(dirs: &[PathBuf], out: &Path) -> Result<MergePlan, SweepError> {
    let Some(first_dir) = dirs.first() else {
        return Err(SweepError::NothingToMerge);
    };
    let first = read_manifest(first_dir)?;
    let mut claimed: Vec<(&PathBuf, String)> = Vec::new();
    for d in dirs {
        let m = read_manifest(d)?;
        if let Some(why) = first.differs_from(&m) {
            return Err(SweepError::NotTheSameSweep {
                first: first_dir.clone(),
                other: d.clone(),
                why,
            });
        }
        if same_dir(d, out) {
            return Err(SweepError::OutIsAnInput(d.clone()));
        }
        for (earlier, shard) in &claimed {
            if same_dir(earlier, d) {
                return Err(SweepError::DuplicateInput {
                    first: (*earlier).clone(),
                    other: d.clone(),
                    why: "the same directory twice".into(),
                });
            }
            if let Some(why) = overlap(shard, &m.shard) {
                return Err(SweepError::DuplicateInput {
                    first: (*earlier).clone(),
                    other: d.clone(),
                    why,
                });
            }
        }
        claimed.push((d, m.shard.clone()));
    }
    let manifest = Manifest {
        shard: "merged".to_string(),
        ..first.clone()
    };
    let grid = manifest.grid()?;
    let mut sources = Vec::with_capacity(grid.len());
    let mut missing = Vec::new();
    let mut corrupt = Vec::new();
    for p in grid.iter() {
        let mut found = None;
        for (i, d) in dirs.iter().enumerate() {
            match store::read_point(d, &manifest, &p) {
                Ok(Some(_)) => {
                    found = Some(i);
                    break;
                }
                Ok(None) => {}
                Err(why) => corrupt.push((store::point_path(d, &p), why)),
            }
        }
        if found.is_none() {
            missing.push(p.label());
        }
        sources.push(found);
    }
    // Which shards of the split nobody brought (a job that never ran, a lost directory).
    let shards: Vec<Shard> = claimed
        .iter()
        .filter_map(|(_, s)| Shard::parse(s).ok())
        .collect();
    let missing_shards = match shards.first() {
        Some(s) if s.count > 1 => (0..s.count)
            .filter(|i| !shards.iter().any(|x| x.index == *i))
            .map(|i| format!("{i}/{}", s.count))
            .collect(),
        _ => Vec::new(),
    };
    Ok(MergePlan {
        dirs: dirs.to_vec(),
        manifest,
        sources,
        missing,
        missing_shards,
        corrupt,
    })
}

/// Why two inputs with these shard labels would bring the same points, if they would.
fn overlap(a: &str, b: &str) -> Option<String> {
    match (Shard::parse(a), Shard::parse(b)) {
        (Ok(x), Ok(y)) if x.count == 1 || y.count == 1 => Some(format!(
            "{} is the whole sweep, so every point would come twice",
            if x.count == 1 { a } else { b }
        )),
        (Ok(x), Ok(y)) if x == y => Some(format!("both are shard {a}")),
        (Ok(x), Ok(y)) if x.count != y.count => Some(format!(
            "shards of different splits ({a} and {b}) share points"
        )),
        (Ok(_), Ok(_)) => None,
        _ => Some(format!(
            "a merged directory ({}) already holds every shard's points",
            if Shard::parse(a).is_err() { a } else { b }
        )),
    }
}

/// Write a planned merge into `out`: point files are copied (pcap paths rewritten to point
/// into the shard directory they live in), then [`finalize`] draws everything, exactly as for
/// an unsharded run.
pub fn write_merge(plan: &MergePlan, out: &Path) -> Result<MergeReport, SweepError> {
    let manifest = &plan.manifest;
    store::write_json(&out.join(MANIFEST), manifest)?;
    let grid = manifest.grid()?;
    let mut corrupt = plan.corrupt.clone();
    let mut missing = plan.missing.clone();
    for (p, src) in grid.iter().zip(&plan.sources) {
        let Some(src) = src.map(|i| &plan.dirs[i]) else {
            continue;
        };
        let mut runs = match store::read_point(src, manifest, &p) {
            Ok(Some(runs)) => runs,
            // Changed since it was planned (a shard still being written): say so.
            Ok(None) => {
                missing.push(p.label());
                continue;
            }
            Err(why) => {
                corrupt.push((store::point_path(src, &p), why));
                missing.push(p.label());
                continue;
            }
        };
        for r in &mut runs {
            if let Some(pcap) = &r.pcap {
                r.pcap = Some(src.join(pcap).display().to_string());
            }
        }
        store::write_json(
            &store::point_path(out, &p),
            &PointFile::new(manifest, &p, &runs),
        )?;
    }
    let outputs = finalize(out, manifest)?;
    Ok(MergeReport {
        outputs,
        missing,
        corrupt,
    })
}

/// [`plan_merge`] then [`write_merge`], whatever is missing (the CLI refuses a partial merge
/// before writing; this is the library's "merge what is there").
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeReport, SweepError> {
    write_merge(&plan_merge(dirs, out)?, out)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A sweep that could not run or be written.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// `--repeat 0`.
    #[error("--repeat must be at least 1")]
    ZeroRepeat,
    /// Bad grid.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// File error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Chart error.
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
    /// The runner could not run a point at all.
    #[error("{point}: {source}")]
    Runner {
        /// Which point.
        point: String,
        /// Why.
        source: RunnerError,
    },
    /// The runner returned fewer runs than asked without being cancelled.
    #[error("{point}: the runner returned {got} of {want} runs")]
    ShortPoint {
        /// Which point.
        point: String,
        /// Runs returned.
        got: usize,
        /// Runs asked for.
        want: usize,
    },
    /// A directory without `sweep.json`.
    #[error("{0}: no sweep.json (not a tcplab sweep directory)")]
    NoManifest(PathBuf),
    /// `merge` without inputs.
    #[error("nothing to merge")]
    NothingToMerge,
    /// Inputs of different sweeps.
    #[error("{other} is not the same sweep as {first}: {why} (scenario, its hash, --repeat and --vary must match)")]
    NotTheSameSweep {
        /// Reference directory.
        first: PathBuf,
        /// The odd one.
        other: PathBuf,
        /// What differs.
        why: String,
    },
    /// Two inputs would bring the same points.
    #[error("{other} duplicates {first}: {why}; give each shard once")]
    DuplicateInput {
        /// The earlier directory.
        first: PathBuf,
        /// The later one.
        other: PathBuf,
        /// How they overlap.
        why: String,
    },
    /// `--out` is one of the inputs.
    #[error("--out {} is one of the directories to merge: that would rewrite a shard; merge into another directory", .0.display())]
    OutIsAnInput(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tcplab_trace::{Closer, TeardownKind};

    /// A made-up kernel: three-way below 40 ms, a coin toss at 40, four-way above, the
    /// separate ACK ~40 ms after the FIN; at 0 the closes race.
    fn fake(point: &Point, repeat: u32) -> Vec<Outcome> {
        let x = point.values[0].1.num.unwrap_or(0.0);
        (0..repeat as i64)
            .map(|i| {
                if x == 0.0 && i % 3 == 0 {
                    Outcome::teardown(TeardownKind::Simultaneous, Some(Closer::Both))
                } else if x < 40.0 || (x == 40.0 && i % 2 == 0) {
                    Outcome {
                        close_duration_ns: Some(100_000 + i * 1000),
                        ..Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server))
                    }
                } else {
                    Outcome {
                        fin_ack_delay_ns: Some(40_000_000 + i * 50_000),
                        close_duration_ns: Some((x * 1e6) as i64 + i * 1000),
                        pcap: Some(format!("runs/{}/run-{i}.pcap", point.id())),
                        ..Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
                    }
                }
            })
            .collect()
    }

    fn sweep(shard: Shard) -> Sweep {
        Sweep::new(
            "seed",
            b"[server]\nclose_delay_ms = 0\n",
            5,
            vec![Vary::parse("server.close_delay_ms=0..100:5").unwrap()],
            shard,
        )
        .unwrap()
    }

    fn run(dir: &Path, shard: Shard) -> (ExecReport, Outputs) {
        let s = sweep(shard);
        let never = AtomicBool::new(false);
        let report = execute(&s, dir, shard, &never, &mut |p| Ok(fake(p, 5)), &mut |_| {}).unwrap();
        let out = finalize(dir, &s.manifest).unwrap();
        (report, out)
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn unsharded_run_writes_every_output() {
        let dir = tempfile::tempdir().unwrap();
        let (report, out) = run(dir.path(), Shard::ALL);
        assert_eq!(
            report,
            ExecReport {
                planned: 21,
                resumed: 0,
                ran: 21,
                cancelled: false
            }
        );
        assert_eq!(out.points.len(), 21);
        for f in [
            "sweep.json",
            "results.csv",
            "results.json",
            "summary.json",
            "boundary.txt",
            "outcomes.svg",
            "timing.svg",
        ] {
            assert!(dir.path().join(f).is_file(), "{f} missing");
        }
        assert_eq!(fs::read_dir(dir.path().join("points")).unwrap().count(), 21);
        let b = out.boundary_text();
        assert!(
            b.contains("boundary: three-way/server up to 40 ms, four-way/client from 45 ms; at 40 ms both occur (three-way/server 60%, four-way/client 40%)"),
            "{b}"
        );
        assert!(
            b.contains("mixed:    0 ms: three-way/server 60%, simultaneous/both 40%"),
            "{b}"
        );
        let rows: serde_json::Value =
            serde_json::from_str(&read(dir.path(), "results.json")).unwrap();
        let rows = rows.as_array().unwrap();
        // 0 and 40 have two outcomes each, the other 19 points one.
        assert_eq!(rows.len(), 23);
        let last = &rows[22];
        assert_eq!(last["server.close_delay_ms"], 100.0);
        assert_eq!(last["outcome"], "four-way/client");
        assert_eq!(last["fin_ack_delay_ms_median"], 40.1);
        let summary: serde_json::Value =
            serde_json::from_str(&read(dir.path(), "summary.json")).unwrap();
        assert_eq!(summary["points_done"], 21);
        assert_eq!(summary["boundary"][0]["transitions"][0]["first"], "45");
    }

    #[test]
    fn merge_of_shards_equals_the_unsharded_run() {
        let whole = tempfile::tempdir().unwrap();
        run(whole.path(), Shard::ALL);
        let shards: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        for (i, d) in shards.iter().enumerate() {
            let (report, out) = run(d.path(), Shard { index: i, count: 3 });
            assert_eq!(report.ran, 7);
            assert_eq!(out.points.len(), 7);
        }
        let merged = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = shards.iter().map(|d| d.path().to_path_buf()).collect();
        let report = merge(&dirs, merged.path()).unwrap();
        assert!(report.missing.is_empty());
        for f in [
            "results.csv",
            "results.json",
            "summary.json",
            "boundary.txt",
            "outcomes.svg",
            "timing.svg",
        ] {
            assert_eq!(read(whole.path(), f), read(merged.path(), f), "{f} differs");
        }
        // pcap paths now lead into the shard that holds them.
        let p = &sweep(Shard::ALL).grid.points()[20];
        let f: PointFile = store::read_json(&store::point_path(merged.path(), p))
            .unwrap()
            .unwrap();
        let pcap = f.runs[0].pcap.clone().unwrap();
        assert!(
            pcap.starts_with(&shards[20 % 3].path().display().to_string()),
            "{pcap}"
        );
        // A missing shard is reported by point.
        let report = merge(&dirs[..2], tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(report.missing.len(), 7);
        assert_eq!(report.missing[0], "server.close_delay_ms=10 ms");
    }

    #[test]
    fn merge_names_a_corrupt_point_file() {
        let shards: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        for (i, d) in shards.iter().enumerate() {
            run(d.path(), Shard { index: i, count: 2 });
        }
        let p = &sweep(Shard::ALL).grid.points()[3];
        let bad = store::point_path(shards[1].path(), p);
        fs::write(&bad, b"{\"format\": 1, \"scen").unwrap();
        let dirs: Vec<PathBuf> = shards.iter().map(|d| d.path().to_path_buf()).collect();
        let report = merge(&dirs, tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(
            report.missing,
            vec!["server.close_delay_ms=15 ms".to_string()]
        );
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].0, bad);
        assert!(
            report.corrupt[0].1.starts_with("not a point file"),
            "{:?}",
            report.corrupt
        );
    }

    #[test]
    fn a_sweep_directory_has_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = store::lock_dir(dir.path()).unwrap();
        match store::lock_dir(dir.path()) {
            Err(store::LockError::Held { holder, .. }) => {
                assert!(
                    holder.starts_with(&format!("pid {}:", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("second lock: {other:?}"),
        }
        drop(held);
        store::lock_dir(dir.path()).unwrap();
    }

    #[test]
    fn merge_refuses_different_sweeps() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        run(a.path(), Shard::ALL);
        let other = Sweep::new(
            "seed",
            b"changed",
            5,
            vec![Vary::parse("server.close_delay_ms=0..100:5").unwrap()],
            Shard::ALL,
        )
        .unwrap();
        execute(
            &other,
            b.path(),
            Shard::ALL,
            &AtomicBool::new(false),
            &mut |p| Ok(fake(p, 5)),
            &mut |_| {},
        )
        .unwrap();
        let err = merge(
            &[a.path().into(), b.path().into()],
            tempfile::tempdir().unwrap().path(),
        )
        .unwrap_err();
        assert!(matches!(err, SweepError::NotTheSameSweep { .. }), "{err}");
        let err = merge(&[tempfile::tempdir().unwrap().path().into()], a.path()).unwrap_err();
        assert!(matches!(err, SweepError::NoManifest(_)));
    }

    /// Shards `0..n` of the test sweep, each in its own directory.
    fn shard_dirs(n: usize) -> Vec<tempfile::TempDir> {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        for (i, d) in dirs.iter().enumerate() {
            run(d.path(), Shard { index: i, count: n });
        }
        dirs
    }

    fn paths(dirs: &[&tempfile::TempDir]) -> Vec<PathBuf> {
        dirs.iter().map(|d| d.path().to_path_buf()).collect()
    }

    #[test]
    fn merge_takes_shards_in_any_order_with_the_same_result() {
        let s = shard_dirs(3);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        merge(&paths(&[&s[0], &s[1], &s[2]]), a.path()).unwrap();
        merge(&paths(&[&s[2], &s[0], &s[1]]), b.path()).unwrap();
        for f in [
            "results.csv",
            "results.json",
            "summary.json",
            "boundary.txt",
        ] {
            assert_eq!(read(a.path(), f), read(b.path(), f), "{f} differs");
        }
    }

    #[test]
    fn merge_refuses_duplicates_and_overlapping_shards() {
        let s = shard_dirs(3);
        let out = tempfile::tempdir().unwrap();
        let dup = |dirs: Vec<PathBuf>| match plan_merge(&dirs, &out.path().join("m")) {
            Err(SweepError::DuplicateInput { why, .. }) => why,
            other => panic!("not refused as a duplicate: {other:?}"),
        };
        // The same directory twice (also spelled differently).
        let again = s[1].path().join(".");
        assert_eq!(
            dup(vec![s[0].path().into(), s[1].path().into(), again]),
            "the same directory twice"
        );
        // A copy of shard 1/3 (a task re-run into another directory).
        let copy = tempfile::tempdir().unwrap();
        run(copy.path(), Shard { index: 1, count: 3 });
        assert_eq!(
            dup(paths(&[&s[0], &s[1], &copy, &s[2]])),
            "both are shard 1/3"
        );
        // Shards of a different split share points.
        let other_split = tempfile::tempdir().unwrap();
        run(other_split.path(), Shard { index: 1, count: 2 });
        assert!(dup(paths(&[&s[0], &other_split])).contains("different splits (0/3 and 1/2)"));
        // The whole sweep or a merged directory beside a shard.
        let whole = tempfile::tempdir().unwrap();
        run(whole.path(), Shard::ALL);
        assert!(dup(paths(&[&s[0], &whole])).contains("0/1 is the whole sweep"));
        let merged = tempfile::tempdir().unwrap();
        merge(&paths(&[&s[0], &s[1], &s[2]]), merged.path()).unwrap();
        assert!(dup(paths(&[&merged, &s[2]])).contains("a merged directory (merged)"));
        assert!(
            !out.path().join("m").exists(),
            "a refused merge wrote nothing"
        );
    }

    #[test]
    fn merge_refuses_to_write_into_one_of_its_inputs() {
        let s = shard_dirs(2);
        let before = read(s[1].path(), "results.csv");
        let err = plan_merge(&paths(&[&s[0], &s[1]]), &s[1].path().join("./")).unwrap_err();
        assert!(matches!(err, SweepError::OutIsAnInput(_)), "{err}");
        assert!(err.to_string().contains("would rewrite a shard"), "{err}");
        assert_eq!(read(s[1].path(), "results.csv"), before);
    }

    #[test]
    fn merge_names_the_other_scenario_hash() {
        let a = shard_dirs(1);
        let b = tempfile::tempdir().unwrap();
        let other = Sweep::new(
            "seed",
            b"changed",
            5,
            vec![Vary::parse("server.close_delay_ms=0..100:5").unwrap()],
            Shard { index: 1, count: 2 },
        )
        .unwrap();
        let shard = Shard { index: 1, count: 2 };
        execute(
            &other,
            b.path(),
            shard,
            &AtomicBool::new(false),
            &mut |p| Ok(fake(p, 5)),
            &mut |_| {},
        )
        .unwrap();
        let err = plan_merge(
            &[a[0].path().into(), b.path().into()],
            Path::new("/nonexistent/m"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("the scenario file differs (hash "),
            "{err}"
        );
    }

    #[test]
    fn a_partial_plan_names_missing_points_and_shards() {
        let s = shard_dirs(4);
        let out = tempfile::tempdir().unwrap();
        let plan = plan_merge(&paths(&[&s[3], &s[0], &s[2]]), &out.path().join("m")).unwrap();
        assert_eq!(plan.missing_shards, ["1/4"]);
        // 21 points dealt round-robin: shard 1 has indices 1, 5, 9, 13, 17.
        assert_eq!(plan.missing.len(), 5, "{:?}", plan.missing);
        assert!(!out.path().join("m").exists(), "planning wrote nothing");
        let report = write_merge(&plan, &out.path().join("m")).unwrap();
        assert_eq!(report.outputs.points.len(), 16);
        assert_eq!(report.missing, plan.missing);
    }

    #[test]
    fn cancel_during_the_last_point_is_still_a_cancel() {
        // Issue 20 item 9: Ctrl-C while the last point's runs were all in flight; they all
        // finished, the point is kept, and the sweep reports the interruption.
        let dir = tempfile::tempdir().unwrap();
        let s = sweep(Shard::ALL);
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let report = execute(
            &s,
            dir.path(),
            Shard::ALL,
            &cancel,
            &mut |p| {
                calls += 1;
                if calls == 21 {
                    cancel.store(true, Ordering::Relaxed);
                }
                Ok(fake(p, 5))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            report,
            ExecReport {
                planned: 21,
                resumed: 0,
                ran: 21,
                cancelled: true
            }
        );
    }

    #[test]
    fn cancel_keeps_finished_points_and_rerun_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let s = sweep(Shard::ALL);
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        // Ctrl-C arrives during the 4th point: the runner returns what it has (2 of 5 runs).
        let report = execute(
            &s,
            dir.path(),
            Shard::ALL,
            &cancel,
            &mut |p| {
                calls += 1;
                if calls == 4 {
                    cancel.store(true, Ordering::Relaxed);
                    return Ok(fake(p, 2));
                }
                Ok(fake(p, 5))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            report,
            ExecReport {
                planned: 21,
                resumed: 0,
                ran: 3,
                cancelled: true
            }
        );
        let out = finalize(dir.path(), &s.manifest).unwrap();
        assert_eq!(out.points.len(), 3);
        assert!(out.boundary_text().contains("results for 3 of 21 points"));
        // The same command again: the 3 finished points are skipped.
        let mut ran = Vec::new();
        let report = execute(
            &s,
            dir.path(),
            Shard::ALL,
            &AtomicBool::new(false),
            &mut |p| {
                ran.push(p.index);
                Ok(fake(p, 5))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            report,
            ExecReport {
                planned: 21,
                resumed: 3,
                ran: 18,
                cancelled: false
            }
        );
        assert_eq!(ran.first(), Some(&3));
        // A changed --repeat does not reuse points run with another one.
        let s6 = Sweep::new(
            "seed",
            b"[server]\nclose_delay_ms = 0\n",
            6,
            s.grid.knobs.clone(),
            Shard::ALL,
        )
        .unwrap();
        let report = execute(
            &s6,
            dir.path(),
            Shard::ALL,
            &AtomicBool::new(false),
            &mut |p| Ok(fake(p, 6)),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(report.resumed, 0);
    }

    #[test]
    fn runner_failure_and_short_points_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = sweep(Shard::ALL);
        let never = AtomicBool::new(false);
        let err = execute(
            &s,
            dir.path(),
            Shard::ALL,
            &never,
            &mut |_| Err("no CAP_SYS_ADMIN".into()),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "server.close_delay_ms=0 ms: no CAP_SYS_ADMIN"
        );
        let err = execute(
            &s,
            dir.path(),
            Shard::ALL,
            &never,
            &mut |p| Ok(fake(p, 1)),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SweepError::ShortPoint {
                got: 1,
                want: 5,
                ..
            }
        ));
        assert!(matches!(
            Sweep::new("x", b"", 0, s.grid.knobs.clone(), Shard::ALL),
            Err(SweepError::ZeroRepeat)
        ));
    }
}
