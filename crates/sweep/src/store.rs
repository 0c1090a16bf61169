//! The sweep's files: `sweep.json` (what is swept), `points/<id>.json` (the runs of one point,
//! written as soon as the point finishes), and the tables `results.csv` / `results.json`.
//!
//! Point files hold every run's raw outcome, so the tables, the pictures and the boundary can
//! always be recomputed from them, by a resumed run or by `merge` of shard directories.

use crate::knob::{KnobValue, Vary};
use crate::outcome::{Outcome, OutcomeKey, PointSummary, Stats};
use crate::plan::{Grid, Point};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Version of the on-disk layout; a file of another version is not reused.
pub const FORMAT: u32 = 1;

/// Manifest file name.
pub const MANIFEST: &str = "sweep.json";
/// Directory of point files.
pub const POINTS_DIR: &str = "points";

/// What a sweep directory sweeps: written before the first point runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file's bytes (a changed scenario must not reuse old points).
    pub scenario_hash: String,
    /// Runs per point.
    pub repeat: u32,
    /// The knobs and their values, in `--vary` order.
    pub knobs: Vec<ManifestKnob>,
    /// The shard this directory ran (`"0/1"` when unsharded); informative only.
    pub shard: String,
}

/// One varied knob in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestKnob {
    /// Knob key.
    pub key: String,
    /// Canonical values.
    pub values: Vec<String>,
}

impl Manifest {
    /// The grid this manifest describes.
    pub fn grid(&self) -> Result<Grid, crate::plan::GridError> {
        Grid::new(
            self.knobs
                .iter()
                .map(|k| Vary {
                    key: k.key.clone(),
                    values: k.values.iter().map(|v| KnobValue::parse(v)).collect(),
                })
                .collect(),
        )
    }

    /// Same sweep (scenario, repeat, grid), whatever the shard.
    pub fn same_sweep(&self, other: &Manifest) -> bool {
        self.differs_from(other).is_none()
    }

    /// What makes `other` a different sweep (`None`: the same sweep, whatever the shard).
    pub fn differs_from(&self, other: &Manifest) -> Option<String> {
        if self.format != other.format {
            Some(format!(
                "layout version {} vs {}",
                self.format, other.format
            ))
        } else if self.scenario != other.scenario {
            Some(format!("scenario {} vs {}", self.scenario, other.scenario))
        } else if self.scenario_hash != other.scenario_hash {
            Some(format!(
                "the scenario file differs (hash {} vs {})",
                self.scenario_hash, other.scenario_hash
            ))
        } else if self.repeat != other.repeat {
            Some(format!("--repeat {} vs {}", self.repeat, other.repeat))
        } else if self.knobs != other.knobs {
            Some("--vary differs".to_string())
        } else {
            None
        }
    }
}

/// One point's runs, as stored in `points/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointFile {
    /// Layout version.
    pub format: u32,
    /// Scenario name.
    pub scenario: String,
    /// Scenario hash (see [`Manifest::scenario_hash`]).
    pub scenario_hash: String,
    /// Runs asked for.
    pub repeat: u32,
    /// [`Point::id`].
    pub id: String,
    /// `[key, value]` per knob.
    pub knobs: Vec<(String, String)>,
    /// Every run.
    pub runs: Vec<RunRecord>,
}

/// One run in a point file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `"three-way/server"` … or `"error"`.
    pub outcome: String,
    /// FIN → separate ACK, ns.
    pub fin_ack_delay_ns: Option<i64>,
    /// Close duration, ns.
    pub close_duration_ns: Option<i64>,
    /// Capture drops.
    pub drops: u64,
    /// Failure message.
    pub error: Option<String>,
    /// Kept pcap, relative to the sweep directory.
    pub pcap: Option<String>,
}

impl From<&Outcome> for RunRecord {
    fn from(o: &Outcome) -> RunRecord {
        RunRecord {
            outcome: o.key.to_string(),
            fin_ack_delay_ns: o.fin_ack_delay_ns,
            close_duration_ns: o.close_duration_ns,
            drops: o.drops,
            error: o.error.clone(),
            pcap: o.pcap.clone(),
        }
    }
}

impl RunRecord {
    fn outcome(&self) -> Option<Outcome> {
        Some(Outcome {
            key: OutcomeKey::parse(&self.outcome)?,
            fin_ack_delay_ns: self.fin_ack_delay_ns,
            close_duration_ns: self.close_duration_ns,
            drops: self.drops,
            error: self.error.clone(),
            pcap: self.pcap.clone(),
        })
    }
}

impl PointFile {
    /// The file for a finished point.
    pub fn new(m: &Manifest, point: &Point, runs: &[Outcome]) -> PointFile {
        PointFile {
            format: FORMAT,
            scenario: m.scenario.clone(),
            scenario_hash: m.scenario_hash.clone(),
            repeat: m.repeat,
            id: point.id(),
            knobs: point
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.text.clone()))
                .collect(),
            runs: runs.iter().map(RunRecord::from).collect(),
        }
    }

    /// The runs, if this file is a complete result of `point` in sweep `m`; `None` when it
    /// belongs to another scenario version or repeat count, or is incomplete or damaged
    /// (then the point simply runs again).
    pub fn runs_for(&self, m: &Manifest, point: &Point) -> Option<Vec<Outcome>> {
        let fits = self.format == FORMAT
            && self.scenario_hash == m.scenario_hash
            && self.repeat == m.repeat
            && self.id == point.id()
            && self.runs.len() == m.repeat as usize;
        if !fits {
            return None;
        }
        self.runs.iter().map(RunRecord::outcome).collect()
    }
}

/// Path of a point's file in sweep directory `dir`.
pub fn point_path(dir: &Path, point: &Point) -> PathBuf {
    dir.join(POINTS_DIR).join(format!("{}.json", point.id()))
}

/// Reading or writing a sweep file failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file that is not the JSON we wrote.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Name of a sweep directory's lock file (holds the holder's PID and command line).
pub const LOCK_FILE: &str = ".lock";

/// An exclusive hold on a sweep directory (flock(2) on [`LOCK_FILE`]; released when dropped,
/// also when the process dies, so a killed sweep never leaves a stale lock).
#[derive(Debug)]
pub struct DirLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Why [`lock_dir`] did not get the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{dir} is in use by {holder}")]
    Held {
        /// The directory.
        dir: PathBuf,
        /// What the holder wrote: `pid N: tcplab sweep ...`.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Take `dir`'s lock without waiting (two sweeps or merges into one directory would overwrite
/// each other's files). On success the lock file names this process.
pub fn lock_dir(dir: &Path) -> Result<DirLock, LockError> {
    use nix::fcntl::{Flock, FlockArg};
    // A file in the way: create_dir_all would say "File exists", which names no problem.
    if dir.exists() && !dir.is_dir() {
        return Err(io_err(dir)(std::io::ErrorKind::NotADirectory.into()).into());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(LOCK_FILE);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let me = format!(
                "pid {}: {}",
                std::process::id(),
                std::env::args().collect::<Vec<_>>().join(" ")
            );
            lock.set_len(0)
                .and_then(|()| lock.write_all(me.as_bytes()))
                .map_err(io_err(&path))?;
            Ok(DirLock { _lock: lock })
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = if holder.trim().is_empty() {
                "another process".to_owned()
            } else {
                holder.trim().to_owned()
            };
            Err(LockError::Held {
                dir: dir.to_path_buf(),
                holder,
            })
        }
        Err((_, errno)) => Err(io_err(&path)(std::io::Error::from(errno)).into()),
    }
}

/// Write a file whole or not at all: a temporary file renamed into place, so that Ctrl-C or a
/// crash never leaves half a point file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Serialise as pretty JSON with a final newline and write atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            source,
        })
}

/// The runs of `point` stored in `dir`: `Ok(None)` when there is no file, `Err(why)` when a
/// file is there but cannot be used (so that `merge` can name it).
pub fn read_point(dir: &Path, m: &Manifest, point: &Point) -> Result<Option<Vec<Outcome>>, String> {
    let file = match read_json::<PointFile>(&point_path(dir, point)) {
        Ok(None) => return Ok(None),
        Ok(Some(f)) => f,
        Err(StoreError::Json { source, .. }) => return Err(format!("not a point file: {source}")),
        Err(e) => return Err(e.to_string()),
    };
    file.runs_for(m, point).map(Some).ok_or_else(|| {
        format!(
            "not a complete result of this sweep (scenario {}, repeat {}, {} runs)",
            file.scenario,
            file.repeat,
            file.runs.len()
        )
    })
}

/// The complete runs of `point` stored in `dir`, if any.
pub fn load_point(dir: &Path, m: &Manifest, point: &Point) -> Option<Vec<Outcome>> {
    // A damaged or foreign file is not an error: the point is simply run again.
    read_json::<PointFile>(&point_path(dir, point))
        .ok()
        .flatten()
        .and_then(|f| f.runs_for(m, point))
}

// ---------------------------------------------------------------------------------------------
// Tables

/// Column names of the tidy tables, after the knob columns.
pub const COLUMNS: [&str; 19] = [
    "outcome",
    "kind",
    "active_closer",
    "count",
    "runs",
    "share",
    "drops",
    "fin_ack_delay_ms_n",
    "fin_ack_delay_ms_min",
    "fin_ack_delay_ms_p10",
    "fin_ack_delay_ms_median",
    "fin_ack_delay_ms_p90",
    "fin_ack_delay_ms_max",
    "close_duration_ms_n",
    "close_duration_ms_min",
    "close_duration_ms_p10",
    "close_duration_ms_median",
    "close_duration_ms_p90",
    "close_duration_ms_max",
];

/// A cell of the tidy table.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Str(String),
    Int(u64),
    Num(f64),
    Null,
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Str(s) if s.contains([',', '"', '\n', '\r']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Str(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x) => crate::knob::canonical(*x),
            Cell::Null => String::new(),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Str(v) => s.serialize_str(v),
            Cell::Int(n) => s.serialize_u64(*n),
            Cell::Num(x) => s.serialize_f64(*x),
            Cell::Null => s.serialize_none(),
        }
    }
}

/// One row: one point × one observed outcome. Serialised as a JSON object whose keys keep the
/// column order (a derived map would sort them).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Grid index of the point.
    pub point: usize,
    cells: Vec<(String, Cell)>,
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.cells.len() + 1))?;
        m.serialize_entry("point", &self.point)?;
        for (k, v) in &self.cells {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn stats_cells(prefix: &str, s: Option<Stats>) -> Vec<(String, Cell)> {
    let f = |x: f64| Cell::Num(x);
    let vals = match s {
        Some(s) => [
            Cell::Int(s.n),
            f(s.min),
            f(s.p10),
            f(s.median),
            f(s.p90),
            f(s.max),
        ],
        None => [
            Cell::Int(0),
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
        ],
    };
    ["n", "min", "p10", "median", "p90", "max"]
        .iter()
        .zip(vals)
        .map(|(name, v)| (format!("{prefix}_{name}"), v))
        .collect()
}

/// The tidy rows of a sweep, ordered by point index, then outcome.
pub fn rows(points: &[PointSummary]) -> Vec<Row> {
    let mut sorted: Vec<&PointSummary> = points.iter().collect();
    sorted.sort_by_key(|p| p.point.index);
    let mut out = Vec::new();
    for p in sorted {
        for o in &p.outcomes {
            let mut cells: Vec<(String, Cell)> = p
                .point
                .values
                .iter()
                .map(|(k, v)| {
                    let c = match v.num {
                        Some(x) => Cell::Num(x),
                        None => Cell::Str(v.text.clone()),
                    };
                    (k.clone(), c)
                })
                .collect();
            let opt = |s: Option<&str>| s.map_or(Cell::Null, |s| Cell::Str(s.to_string()));
            cells.push(("outcome".into(), Cell::Str(o.key.to_string())));
            cells.push(("kind".into(), opt(o.key.kind().map(|k| k.as_str()))));
            cells.push((
                "active_closer".into(),
                opt(o.key.closer().map(|c| c.as_str())),
            ));
            cells.push(("count".into(), Cell::Int(o.count)));
            cells.push(("runs".into(), Cell::Int(p.runs)));
            cells.push(("share".into(), Cell::Num(o.share)));
            cells.push(("drops".into(), Cell::Int(o.drops)));
            cells.extend(stats_cells("fin_ack_delay_ms", o.fin_ack_delay));
            cells.extend(stats_cells("close_duration_ms", o.close_duration));
            out.push(Row {
                point: p.point.index,
                cells,
            });
        }
    }
    out
}

/// `results.csv`: header `point,<knobs…>,outcome,…`, one line per row.
pub fn csv(knobs: &[String], rows: &[Row]) -> String {
    let mut s = String::new();
    let header: Vec<String> = std::iter::once("point".to_string())
        .chain(knobs.iter().map(|k| Cell::Str(k.clone()).csv()))
        .chain(COLUMNS.iter().map(|c| c.to_string()))
        .collect();
    s.push_str(&header.join(","));
    s.push('\n');
    for r in rows {
        let line: Vec<String> = std::iter::once(r.point.to_string())
            .chain(r.cells.iter().map(|(_, c)| c.csv()))
            .collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// FNV-1a 64 of a scenario file's bytes, as 16 hex digits. Not cryptographic: it only has to
/// notice that the scenario changed between a run and its resumption.
pub fn scenario_hash(bytes: &[u8]) -> String {
    format!("{:016x}", tcplab_trace::hash::fnv1a(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcplab_trace::{Closer, TeardownKind};

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            scenario: "s".into(),
            scenario_hash: scenario_hash(b"x"),
            repeat: 2,
            knobs: vec![ManifestKnob {
                key: "server.close_delay_ms".into(),
                values: vec!["10".into(), "60".into()],
            }],
            shard: "0/1".into(),
        }
    }

    fn runs() -> Vec<Outcome> {
        vec![
            Outcome {
                fin_ack_delay_ns: Some(40_000_000),
                close_duration_ns: Some(60_100_000),
                drops: 1,
                ..Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
            },
            Outcome {
                error: Some("boom".into()),
                ..Outcome::teardown(TeardownKind::Open, None)
            },
        ]
        .into_iter()
        .enumerate()
        .map(|(i, mut o)| {
            if i == 1 {
                o.key = OutcomeKey::Error;
            }
            o
        })
        .collect()
    }

    #[test]
    fn point_file_round_trips_and_checks_identity() {
        let m = manifest();
        let grid = m.grid().unwrap();
        let p = &grid.points()[1];
        let dir = tempfile::tempdir().unwrap();
        let f = PointFile::new(&m, p, &runs());
        write_json(&point_path(dir.path(), p), &f).unwrap();
        assert_eq!(load_point(dir.path(), &m, p), Some(runs()));
        // Another point, another repeat count, another scenario: not reused.
        assert_eq!(load_point(dir.path(), &m, &grid.points()[0]), None);
        let m3 = Manifest {
            repeat: 3,
            ..m.clone()
        };
        assert_eq!(load_point(dir.path(), &m3, p), None);
        let mh = Manifest {
            scenario_hash: scenario_hash(b"y"),
            ..m.clone()
        };
        assert_eq!(load_point(dir.path(), &mh, p), None);
        // Damaged file: ignored, not an error.
        fs::write(point_path(dir.path(), p), b"{\"format\":").unwrap();
        assert_eq!(load_point(dir.path(), &m, p), None);
    }

    #[test]
    fn tables_have_knob_columns_and_one_row_per_outcome() {
        let m = manifest();
        let grid = m.grid().unwrap();
        let pts: Vec<PointSummary> = grid
            .points()
            .into_iter()
            .rev()
            .map(|p| PointSummary::new(p, &runs()))
            .collect();
        let rows = rows(&pts);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows.iter().map(|r| r.point).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
        let text = csv(&["server.close_delay_ms".into()], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "point,server.close_delay_ms,outcome,kind,active_closer,count,runs,share,drops,\
             fin_ack_delay_ms_n,fin_ack_delay_ms_min,fin_ack_delay_ms_p10,fin_ack_delay_ms_median,\
             fin_ack_delay_ms_p90,fin_ack_delay_ms_max,close_duration_ms_n,close_duration_ms_min,\
             close_duration_ms_p10,close_duration_ms_median,close_duration_ms_p90,close_duration_ms_max"
        );
        assert_eq!(
            lines[1],
            "0,10,four-way/client,four-way,client,1,2,0.5,1,1,40,40,40,40,40,1,60.1,60.1,60.1,60.1,60.1"
        );
        assert_eq!(lines[2], "0,10,error,,,1,2,0.5,0,0,,,,,,0,,,,,");
        let columns = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));

        let json: serde_json::Value = serde_json::to_value(&rows).unwrap();
        let first = &json[0];
        assert_eq!(first["server.close_delay_ms"], 10.0);
        assert_eq!(first["outcome"], "four-way/client");
        assert_eq!(first["fin_ack_delay_ms_median"], 40.0);
        assert_eq!(json[1]["kind"], serde_json::Value::Null);
        // Keys keep the column order.
        let text = serde_json::to_string(&rows[0]).unwrap();
        assert!(text.starts_with("{\"point\":0,\"server.close_delay_ms\":10.0,\"outcome\":"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(Cell::Str("a,b".into()).csv(), "\"a,b\"");
        assert_eq!(Cell::Str("say \"hi\"".into()).csv(), "\"say \"\"hi\"\"\"");
        assert_eq!(Cell::Num(0.333333).csv(), "0.333333");
    }

    #[test]
    fn scenario_hash_is_stable() {
        assert_eq!(scenario_hash(b""), "cbf29ce484222325");
        assert_ne!(scenario_hash(b"a"), scenario_hash(b"b"));
    }
}
