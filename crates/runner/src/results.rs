//! The results directory.
//!
//! ```text
//! results/                               (--out, default ./results)
//!   <scenario>/
//!     <UTC stamp, e.g. 20250101T120000Z>/  one batch
//!       INCOMPLETE      written first, removed last: present = the batch never finished
//!                       (killed, crashed, still running); summary.json is then missing
//!       meta.json       kernel (uname -r), pinned and recorded sysctls, knobs, options, tcplab version
//!       runs.jsonl      one line per finished run while the batch runs (streamed, so memory
//!                       does not grow with --repeat); folded into summary.json at the end
//!       summary.json    expectation, counts, drops, verdict, per-run outcomes
//!       run-0001/       one run (kept per --keep-pcaps: all, failed, none)
//!         capture.pcap  what libpcap saw on lo in the run's namespace (Wireshark opens it);
//!                       on a [link], the client's view (its end of the link)
//!         capture-server.pcap   on a [link]: the server's view
//!         analysis.json `tcplab analyze --json` of capture.pcap, the kernel's states merged
//!                       into the timelines (`"source": "kernel"`) and listed under `kernel`;
//!                       with `[[link.inject]]`, the segments the link sent, under `injected`
//!         analysis-server.json  on a [link]: the same for capture-server.pcap
//!         report.txt    the human narration, the check, and both programs' own reports
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tcplab_client::ClientReport;
use tcplab_record::{BatchRecord, MetaRecord, OptionsRecord, Summary};
use tcplab_server::ConnectionReport;
use tcplab_trace::Analysis;

use crate::expect::Verdict;
use crate::outcome::{RunError, RunOptions, RunOutcome, PINNED_SYSCTLS};
use crate::scenario::Scenario;

/// Name of a run's capture file.
pub const PCAP_FILE: &str = "capture.pcap";
/// Name of a run's analysis file.
pub const ANALYSIS_FILE: &str = "analysis.json";
/// Name of a run's human report.
pub const REPORT_FILE: &str = "report.txt";
/// On a link: the server's view of the run.
pub const SERVER_PCAP_FILE: &str = "capture-server.pcap";
/// On a link: the analysis of the server's view.
pub const SERVER_ANALYSIS_FILE: &str = "analysis-server.json";

/// `run-0001` for index 0.
pub fn run_dir_name(index: u32) -> String {
    format!("run-{:04}", u64::from(index) + 1)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Results {
        path: path.to_owned(),
        source,
    }
}

/// Marker file of a batch that has not finished (see the module docs).
pub const INCOMPLETE_FILE: &str = "INCOMPLETE";

/// Create `root/<scenario>/<UTC stamp>` (with `-2`, `-3` ... if it exists) with its
/// [`INCOMPLETE_FILE`] marker, and return it.
pub fn create_batch_dir(root: &Path, scenario: &str) -> Result<PathBuf, RunError> {
    let dir = create_unique_dir(root, scenario)?;
    let marker = dir.join(INCOMPLETE_FILE);
    let text = format!(
        "tcplab run (pid {}) started this batch; summary.json is written and this file removed when it ends.\n",
        std::process::id()
    );
    std::fs::write(&marker, text).map_err(io_err(&marker))?;
    Ok(dir)
}

/// The batch is summarised: remove its [`INCOMPLETE_FILE`] marker (the last write).
pub fn mark_complete(dir: &Path) -> Result<(), RunError> {
    let marker = dir.join(INCOMPLETE_FILE);
    match std::fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&marker)(e)),
        _ => Ok(()),
    }
}

/// A batch that could not start: remove its directory, and the scenario directory and
/// `root` too when that leaves them empty and `keep_root` is false, so nothing is left.
pub fn discard_batch(root: &Path, dir: &Path, keep_root: bool) {
    let _ = std::fs::remove_dir_all(dir);
    if let Some(parent) = dir.parent() {
        // remove_dir fails on a non-empty directory, which is what we want.
        let _ = std::fs::remove_dir(parent);
    }
    if !keep_root {
        let _ = std::fs::remove_dir(root);
    }
}

fn create_unique_dir(root: &Path, scenario: &str) -> Result<PathBuf, RunError> {
    let base = root.join(scenario);
    std::fs::create_dir_all(&base).map_err(io_err(&base))?;
    let stamp = utc_stamp(SystemTime::now());
    for n in 1u32.. {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
    Err(io_err(&base)(std::io::Error::other(
        "no free batch directory name",
    )))
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Write one run's directory.
pub fn write_run(
    dir: &Path,
    pcap: &[u8],
    analysis: Option<&Analysis>,
    narration: &str,
    o: &RunOutcome,
    server: Option<&ConnectionReport>,
    client: Option<&ClientReport>,
) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let p = dir.join(PCAP_FILE);
    std::fs::write(&p, pcap).map_err(io_err(&p))?;
    if let Some(a) = analysis {
        let mut v = tcplab_trace::render::json::to_value(a);
        if let Some(m) = v.as_object_mut() {
            m.insert("source".into(), PCAP_FILE.into());
            if let Some(k) = &o.kernel {
                m.insert("kernel".into(), kernel_json(k));
            }
            // The link's forged/replayed segments, so a report can draw them as injected.
            if !o.injected.is_empty() {
                let v = serde_json::to_value(o.record().injected).unwrap_or_default();
                m.insert("injected".into(), v);
            }
        }
        let p = dir.join(ANALYSIS_FILE);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        std::fs::write(&p, text + "\n").map_err(io_err(&p))?;
    }
    let mut r = String::new();
    r.push_str(narration);
    r.push_str(&format!(
        "\nrun {} ({}, server port {}): {}\n",
        o.index + 1,
        o.ip.as_str(),
        o.port,
        o.outcome()
    ));
    if let Some(t) = o.timing_miss() {
        r.push_str(&format!("{t}: not counted as the kernel's outcome\n"));
    }
    match o.mismatch() {
        None => r.push_str("check: ok\n"),
        Some(m) => r.push_str(&format!("check: FAILED: {m}\n")),
    }
    if let Some(e) = o.error() {
        r.push_str(&format!("error: {e}\n"));
    }
    r.push_str(&format!("capture drops: {}\n", o.drops));
    let progs = serde_json::json!({ "server": server, "client": client });
    r.push_str("\nprograms (times in µs from each program's own start):\n");
    r.push_str(&serde_json::to_string_pretty(&progs).unwrap_or_default());
    r.push('\n');
    let p = dir.join(REPORT_FILE);
    std::fs::write(&p, r).map_err(io_err(&p))
}

/// On a link: write the server's view (`capture-server.pcap`, `analysis-server.json`) into
/// the run's directory.
pub fn write_server_view(
    dir: &Path,
    pcap: &[u8],
    analysis: Option<&Analysis>,
) -> Result<(), RunError> {
    let p = dir.join(SERVER_PCAP_FILE);
    std::fs::write(&p, pcap).map_err(io_err(&p))?;
    if let Some(a) = analysis {
        let mut v = tcplab_trace::render::json::to_value(a);
        if let Some(m) = v.as_object_mut() {
            m.insert("source".into(), SERVER_PCAP_FILE.into());
        }
        let p = dir.join(SERVER_ANALYSIS_FILE);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        std::fs::write(&p, text + "\n").map_err(io_err(&p))?;
    }
    Ok(())
}

/// The kernel's states as JSON: every entry `"source": "kernel"` with its CLOCK_REALTIME
/// time (the capture's clock, `ts_ns`).
pub fn kernel_json(k: &crate::run::kernel::KernelStates) -> serde_json::Value {
    let side = |v: &[crate::run::kernel::KernelState]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|s| {
                serde_json::json!({
                    "state": s.state.as_str(),
                    "ts_ns": s.ts_ns,
                    "source": "kernel",
                    "confirmed_by": if s.via_sock_diag { Some("sock_diag") } else { None },
                })
            })
            .collect()
    };
    serde_json::json!({
        "recorded_by": k.source,
        "client": side(&k.client),
        "server": side(&k.server),
        "retransmits": { "client": k.retransmits[0], "server": k.retransmits[1] },
        "resets_sent": { "client": k.resets[0], "server": k.resets[1] },
        "error": k.error,
    })
}

/// The batch's line of `tcplab run --json` (also the head of summary.json).
pub fn batch_record(
    s: &Scenario,
    v: &Verdict,
    results_dir: Option<&Path>,
    elapsed_s: f64,
    cancelled: bool,
) -> BatchRecord {
    BatchRecord {
        scenario: s.name().to_owned(),
        file: s.path.display().to_string(),
        expect: s.expect.record(),
        runs: v.runs,
        counts: v.counts.clone(),
        drops: v.drops,
        errors: v.errors,
        // A batch cut short is not a pass, whatever its finished runs showed.
        passed: v.passed && !cancelled,
        mismatch: v.message.clone(),
        timing_misses: v.timing_misses,
        timing_miss_runs: v.timing_miss_runs,
        timing: Some(v.timing.record(s.timing_tolerance_ms)),
        results_dir: results_dir.map(|d| d.display().to_string()),
        elapsed_s,
        cancelled,
        // A batch cut short says why it has no runs: the signal, not the machine.
        inconclusive: v.inconclusive && !cancelled,
        kernel: None,
        conditions: None,
        place: None,
    }
}

/// Write summary.json: the batch's record plus every run.
pub fn write_summary(
    dir: &Path,
    head: &BatchRecord,
    outcomes: &[RunOutcome],
) -> Result<(), RunError> {
    let summary = Summary {
        batch: head.clone(),
        run_outcomes: outcomes.iter().map(RunOutcome::record).collect(),
    };
    let p = dir.join("summary.json");
    std::fs::write(&p, tcplab_record::to_pretty(&summary)).map_err(io_err(&p))
}

/// Name of the streamed per-run file of a batch that is still running (or was killed).
pub const RUNS_FILE: &str = "runs.jsonl";

/// summary.json written without holding the runs: each run is appended to [`RUNS_FILE`] as
/// it finishes, and [`SummaryWriter::finish`] copies those lines into summary.json's
/// `run_outcomes` behind the head.
#[derive(Debug)]
pub struct SummaryWriter {
    dir: PathBuf,
    runs: std::io::BufWriter<std::fs::File>,
}

impl SummaryWriter {
    /// Start the batch's run file.
    pub fn create(dir: &Path) -> Result<SummaryWriter, RunError> {
        let p = dir.join(RUNS_FILE);
        let f = std::fs::File::create(&p).map_err(io_err(&p))?;
        Ok(SummaryWriter {
            dir: dir.to_owned(),
            runs: std::io::BufWriter::new(f),
        })
    }

    /// Append one run.
    pub fn add(&mut self, o: &RunOutcome) -> Result<(), RunError> {
        let line = tcplab_record::to_line(&o.record());
        let p = self.dir.join(RUNS_FILE);
        // One write per run (a run takes milliseconds): a killed batch keeps every finished run.
        writeln!(self.runs, "{line}")
            .and_then(|()| self.runs.flush())
            .map_err(io_err(&p))
    }

    /// Write summary.json = `head` + `run_outcomes` (the streamed lines), then drop the run
    /// file.
    pub fn finish(mut self, head: &BatchRecord) -> Result<(), RunError> {
        use std::io::BufRead;
        let runs_path = self.dir.join(RUNS_FILE);
        self.runs.flush().map_err(io_err(&runs_path))?;
        let p = self.dir.join("summary.json");
        let tmp = self.dir.join("summary.json.tmp");
        let mut head_text = tcplab_record::to_pretty(head);
        // The head is an object: reopen it to append the runs as its last member.
        head_text.truncate(head_text.trim_end().trim_end_matches('}').trim_end().len());
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = std::io::BufWriter::new(f);
        let sep = if head_text.ends_with('{') { "" } else { "," };
        write!(w, "{head_text}{sep}\n  \"run_outcomes\": [").map_err(io_err(&tmp))?;
        let r = std::fs::File::open(&runs_path).map_err(io_err(&runs_path))?;
        let mut first = true;
        for line in std::io::BufReader::new(r).lines() {
            let line = line.map_err(io_err(&runs_path))?;
            let comma = if first { "" } else { "," };
            first = false;
            write!(w, "{comma}\n    {line}").map_err(io_err(&tmp))?;
        }
        let close = if first { "]\n}\n" } else { "\n  ]\n}\n" };
        w.write_all(close.as_bytes()).map_err(io_err(&tmp))?;
        w.flush().map_err(io_err(&tmp))?;
        drop(w);
        std::fs::rename(&tmp, &p).map_err(io_err(&p))?;
        std::fs::remove_file(&runs_path).map_err(io_err(&runs_path))
    }
}

/// The environment of a batch: kernel release, sysctls as seen in a fresh namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Environment {
    /// `uname -r`.
    pub kernel: String,
    /// Sysctls pinned by the runner (name → value).
    pub pinned: Vec<(String, String)>,
    /// Sysctls as a fresh namespace shows them (name → value, or an error text).
    pub sysctls: Vec<(String, String)>,
}

impl Environment {
    /// Read the kernel release and [`crate::run::RECORDED_SYSCTLS`] from a fresh namespace.
    pub fn probe() -> Environment {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let sysctls = match tcplab_capture::Netns::new() {
            Ok(ns) => crate::outcome::RECORDED_SYSCTLS
                .iter()
                .map(|k| {
                    let v = ns.sysctl(k).unwrap_or_else(|e| format!("unreadable: {e}"));
                    (
                        (*k).to_owned(),
                        v.split_whitespace().collect::<Vec<_>>().join(" "),
                    )
                })
                .collect(),
            Err(e) => vec![("error".into(), e.to_string())],
        };
        Environment {
            kernel,
            pinned: PINNED_SYSCTLS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            sysctls,
        }
    }
}

/// Write meta.json.
pub fn write_meta(
    dir: &Path,
    s: &Scenario,
    opts: &RunOptions,
    env: &Environment,
) -> Result<(), RunError> {
    let mut sysctls_pinned: BTreeMap<String, String> = env.pinned.iter().cloned().collect();
    for (k, v) in &s.sysctl {
        sysctls_pinned.insert(k.clone(), v.clone());
    }
    let meta = MetaRecord {
        scenario: s.name().to_owned(),
        file: s.path.display().to_string(),
        description: s.description.clone(),
        kernel: env.kernel.clone(),
        sysctls_pinned,
        sysctls_fresh_namespace: env.sysctls.iter().cloned().collect(),
        knobs: s.knobs_json(),
        expect: s.expect.record(),
        options: OptionsRecord {
            repeat: opts.repeat,
            jobs: opts.jobs,
            pooled: opts.pooled,
            keep_pcaps: opts.keep_pcaps,
            keep_failed: opts.keep_failed,
        },
        tcplab_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_utc: utc_stamp(SystemTime::now()),
        conditions: None,
    };
    let p = dir.join("meta.json");
    std::fs::write(&p, tcplab_record::to_pretty(&meta)).map_err(io_err(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_827_696); // 2000-02-29 12:34:56
        assert_eq!(utc_stamp(t), "20000229T123456Z");
        assert_eq!(run_dir_name(0), "run-0001");
        assert_eq!(run_dir_name(41), "run-0042");
    }

    #[test]
    fn a_batch_is_marked_incomplete_until_summarised() {
        let tmp = tempfile::tempdir().unwrap();
        let d = create_batch_dir(tmp.path(), "s").unwrap();
        assert!(d.join(INCOMPLETE_FILE).is_file());
        mark_complete(&d).unwrap();
        assert!(!d.join(INCOMPLETE_FILE).exists());
        mark_complete(&d).unwrap();
        let root = tmp.path().join("out");
        let d = create_batch_dir(&root, "s").unwrap();
        discard_batch(&root, &d, false);
        assert!(!root.exists());
    }

    #[test]
    fn streamed_summary_is_the_same_json_as_the_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Scenario::parse("[expect]\nkind = \"three-way\"\n", Path::new("s.toml")).unwrap();
        let v = crate::expect::verdict(&s.expect, &[]);
        let head = batch_record(&s, &v, None, 0.5, false);
        let id = crate::run::finish::RunId::new(0, crate::IpVersion::Ipv4, 1);
        let runs = [
            id.failed("a".into()),
            crate::run::finish::RunId::new(1, crate::IpVersion::Ipv6, 2).failed("b".into()),
        ];
        for n in [0, 2] {
            let mut w = SummaryWriter::create(tmp.path()).unwrap();
            for r in &runs[..n] {
                w.add(r).unwrap();
            }
            w.finish(&head).unwrap();
            assert!(!tmp.path().join(RUNS_FILE).exists());
            let got: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(tmp.path().join("summary.json")).unwrap(),
            )
            .unwrap();
            write_summary(tmp.path(), &head, &runs[..n]).unwrap();
            let want: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(tmp.path().join("summary.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn batch_dirs_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let a = create_batch_dir(tmp.path(), "s").unwrap();
        let b = create_batch_dir(tmp.path(), "s").unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
    }
}
