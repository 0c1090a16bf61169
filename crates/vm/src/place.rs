//! Where a batch of scenarios runs: natively on the host's kernel, or in a QEMU guest on
//! another kernel. Both run the very same `tcplab run --json` (a child process on the host, the
//! guest's `/init` child in a VM) and both come back as a [`BatchResult`]: the JSON objects of
//! `tcplab run --json` with the kernel and the run conditions added, and a results tree under
//! `<out>/<kernel>/` laid out as `tcplab run` lays it out.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tcplab_runner::record::{self, BatchLine, Conditions, MetaRecord, PlaceCosts, Summary};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::job::{self, Job, JobFile};
use crate::kernels::KernelImage;
use crate::qemu::{Accel, Boot, BootEnd, VmSize};
use crate::{accel, initramfs, wire};

/// Where a batch runs.
#[derive(Debug, Clone)]
pub enum Place {
    /// The host's own kernel, exactly as `tcplab run` without `--kernel`.
    Host,
    /// A QEMU guest booting this kernel.
    Guest(KernelImage),
}

/// Which accelerator to use for guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when a probe boot succeeds (cached per kernel), else TCG.
    Auto,
    /// Always this one.
    Fixed(Accel),
}

/// What every batch of one `tcplab run --kernel …` shares.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// The `tcplab` binary to run (and to put into guests).
    pub binary: PathBuf,
    /// Scenario files as the user named them.
    pub files: Vec<PathBuf>,
    /// `tcplab run` arguments besides files, `--json` and `--out`.
    pub run_args: Vec<String>,
    /// Runs in the batch (for the guest's timeout).
    pub total_runs: u64,
    /// QEMU binary.
    pub qemu: PathBuf,
    /// Accelerator choice for guests.
    pub accel: AccelChoice,
    /// Guest size.
    pub size: VmSize,
    /// Guest timeout in all; `None`: 120 s + 1 s per run without a scenario finishing.
    pub timeout: Option<Duration>,
    /// Kernel cache (accelerator probe results are kept there).
    pub cache: PathBuf,
}

/// One place's batch, done.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// `uname -r` of the kernel the batch ran on.
    pub kernel: String,
    /// Under which conditions (place, accelerator, VM size …): added to every JSON object and
    /// to meta.json / summary.json.
    pub conditions: Conditions,
    /// The lines of `tcplab run --json` (plus skipped scenarios), with `kernel` and
    /// `conditions` added and paths pointing into the host's results tree.
    pub lines: Vec<BatchLine>,
    /// The place's directory under `--out`.
    pub dir: PathBuf,
    /// Set when the batch did not finish (QEMU failed, timed out, the stream was cut …).
    pub error: Option<String>,
    /// The user interrupted it.
    pub cancelled: bool,
    /// Guest: seconds from QEMU's start to the guest's userspace.
    pub boot_s: Option<f64>,
    /// Guest: seconds the scenarios took inside the guest.
    pub guest_s: Option<f64>,
    /// Wall time of the whole batch, seconds.
    pub elapsed_s: f64,
    /// Guest: bytes of the result stream moved back to the host.
    pub bytes_moved: u64,
    /// Guest: seconds of `guest_s` in the guest's `tcplab run`.
    pub suite_s: Option<f64>,
    /// Guest: seconds of `guest_s` spent streaming the results files back.
    pub transfer_s: Option<f64>,
    /// Guest: seconds on the host before QEMU started (building the initramfs).
    pub initramfs_s: Option<f64>,
    /// Guest: seconds on the host after QEMU ended (the result stream read into results/).
    pub unpack_s: Option<f64>,
}

impl BatchResult {
    /// A batch on `kernel` in `dir` that has not run yet (nothing measured, no lines).
    pub fn new(kernel: String, dir: PathBuf) -> BatchResult {
        BatchResult {
            kernel,
            conditions: Conditions::unknown(),
            lines: Vec::new(),
            dir,
            error: None,
            cancelled: false,
            boot_s: None,
            guest_s: None,
            elapsed_s: 0.0,
            bytes_moved: 0,
            suite_s: None,
            transfer_s: None,
            initramfs_s: None,
            unpack_s: None,
        }
    }
}

impl Place {
    /// The kernel release this place runs (known before booting: read from the bzImage).
    pub fn release(&self) -> String {
        match self {
            Place::Host => host_release(),
            Place::Guest(k) => k.release.clone(),
        }
    }

    /// Run `spec` here; results go under `dir`. `progress` gets one line at a time.
    pub async fn run(
        &self,
        spec: &BatchSpec,
        dir: &Path,
        progress: impl Fn(&str) + Send + Sync,
        cancel: watch::Receiver<bool>,
    ) -> BatchResult {
        let started = Instant::now();
        let mut r = BatchResult::new(self.release(), dir.to_owned());
        if let Err(e) = std::fs::create_dir_all(dir) {
            r.error = Some(format!("{}: {e}", dir.display()));
            return r;
        }
        match self {
            Place::Host => run_host(spec, &mut r, &progress, cancel).await,
            Place::Guest(k) => run_guest(k, spec, &mut r, &progress, cancel).await,
        }
        r.elapsed_s = started.elapsed().as_secs_f64();
        // The place's own costs, the same in every line of the batch.
        let place = PlaceCosts {
            boot_s: r.boot_s,
            guest_s: r.guest_s,
            elapsed_s: r.elapsed_s,
            bytes_moved: r.bytes_moved,
            suite_s: r.suite_s,
            transfer_s: r.transfer_s,
            initramfs_s: r.initramfs_s,
            unpack_s: r.unpack_s,
        };
        for line in &mut r.lines {
            line.set_place(&r.kernel, &r.conditions, &place);
        }
        if let Err(e) = add_conditions_to_files(&r.lines, &r.kernel, &r.conditions) {
            r.error.get_or_insert(e);
        }
        r
    }
}

/// `uname -r` of the running kernel.
pub fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn host_conditions() -> Conditions {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024);
    Conditions {
        place: "host".into(),
        accel: "none".into(),
        cpus: Some(cpus as u64),
        memory_mib,
        qemu: None,
        kernel_image: None,
    }
}

async fn run_host(
    spec: &BatchSpec,
    r: &mut BatchResult,
    progress: &(impl Fn(&str) + Send + Sync),
    mut cancel: watch::Receiver<bool>,
) {
    r.conditions = host_conditions();
    let child = tokio::process::Command::new(&spec.binary)
        .arg("run")
        .arg("--json")
        .arg("--out")
        .arg(&r.dir)
        .args(&spec.run_args)
        .args(&spec.files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("starting {}: {e}", spec.binary.display()));
            return;
        }
    };
    let mut out = child.stdout.take().map(|o| BufReader::new(o).lines());
    let mut err = child.stderr.take().map(|e| BufReader::new(e).lines());
    let mut last_err = String::new();
    loop {
        tokio::select! {
            l = next(&mut out) => match l {
                Some(l) => match record::parse::<BatchLine>(Path::new("tcplab run --json"), &l) {
                    Ok(line) => {
                        progress(&line.summary_line());
                        r.lines.push(line);
                    }
                    Err(e) => {
                        r.error.get_or_insert(e.to_string());
                    }
                },
                None => out = None,
            },
            l = next(&mut err) => match l {
                Some(l) => { progress(&l); last_err = l; }
                None => err = None,
            },
            status = child.wait(), if out.is_none() && err.is_none() => {
                match status.ok().and_then(|s| s.code()) {
                    Some(0 | 1) => {}
                    Some(130) => r.cancelled = true,
                    code => r.error = Some(format!("tcplab run exited with {code:?}: {last_err}")),
                }
                return;
            }
            changed = cancel.changed() => {
                if changed.is_err() || *cancel.borrow() {
                    // Interrupt the child by its PID (as Ctrl-C would: it keeps its finished
                    // runs and writes its summaries), give it a moment, then kill it.
                    r.cancelled = true;
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGINT,
                        );
                    }
                    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                    return;
                }
            }
        }
    }
}

async fn next<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Option<tokio::io::Lines<R>>,
) -> Option<String> {
    match lines {
        Some(l) => l.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

async fn run_guest(
    kernel: &KernelImage,
    spec: &BatchSpec,
    r: &mut BatchResult,
    progress: &(impl Fn(&str) + Send + Sync),
    cancel: watch::Receiver<bool>,
) {
    let work = r.dir.join(".vm");
    if let Err(e) = std::fs::create_dir_all(&work) {
        r.error = Some(format!("{}: {e}", work.display()));
        return;
    }
    let qemu_version = crate::qemu::version(&spec.qemu).unwrap_or_else(|e| e.to_string());
    let accel = match spec.accel {
        AccelChoice::Fixed(a) => a,
        AccelChoice::Auto => {
            progress("probing KVM");
            accel::choose(kernel, spec, &work, &qemu_version, cancel.clone()).await
        }
    };
    r.conditions = Conditions {
        place: "qemu".into(),
        accel: accel.as_str().into(),
        cpus: Some(u64::from(spec.size.cpus)),
        memory_mib: Some(u64::from(spec.size.memory_mib)),
        qemu: Some(qemu_version),
        kernel_image: Some(kernel.source.clone()),
    };
    // Job files keep their base names (a scenario's default name is its file stem).
    let mut files = Vec::new();
    for (i, f) in spec.files.iter().enumerate() {
        let base = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario.toml".into());
        files.push((
            JobFile {
                guest: format!("files/{i:04}/{base}"),
                host: f.display().to_string(),
            },
            f.clone(),
        ));
    }
    let job = Job {
        probe: false,
        files: files.iter().map(|(j, _)| j.clone()).collect(),
        run_args: spec.run_args.clone(),
        modules: kernel.modules.iter().map(|(n, _)| n.clone()).collect(),
    };
    let initrd = work.join("initramfs.cpio");
    let building = Instant::now();
    let built = {
        let (binary, kernel, job, files, scratch) = (
            spec.binary.clone(),
            kernel.clone(),
            job.clone(),
            files.clone(),
            work.clone(),
        );
        tokio::task::spawn_blocking(move || {
            initramfs::build(&binary, &kernel, &job, &files, &scratch)
        })
        .await
    };
    let bytes = match built {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            r.error = Some(e.to_string());
            return;
        }
        Err(e) => {
            r.error = Some(format!("building the initramfs: {e}"));
            return;
        }
    };
    if let Err(e) = std::fs::write(&initrd, &bytes) {
        r.error = Some(format!("{}: {e}", initrd.display()));
        return;
    }
    drop(bytes);
    r.initramfs_s = Some(building.elapsed().as_secs_f64());
    let data = work.join("data.bin");
    let boot = Boot {
        qemu: spec.qemu.clone(),
        kernel: kernel.vmlinuz.clone(),
        initrd: initrd.clone(),
        accel,
        size: spec.size,
        data: data.clone(),
        console_log: r.dir.join("console.log"),
        timeout: spec
            .timeout
            .unwrap_or(Duration::from_secs(120 + spec.total_runs)),
        quiet: spec.timeout.is_none(),
    };
    let qemu_started = Instant::now();
    let boot_s = std::sync::Mutex::new(None);
    let end = boot
        .run(
            |line| {
                if let Some(msg) = line.strip_prefix(job::CONSOLE_PREFIX) {
                    if msg.starts_with("up: ") {
                        if let Ok(mut b) = boot_s.lock() {
                            b.get_or_insert(qemu_started.elapsed().as_secs_f64());
                        }
                    }
                    progress(msg);
                } else if line.starts_with("qemu: ") || line.contains("Kernel panic") {
                    progress(line);
                }
            },
            cancel,
        )
        .await;
    r.boot_s = boot_s.into_inner().ok().flatten();
    let _ = std::fs::remove_file(&initrd);
    let end = match end {
        Ok(e) => e,
        Err(e) => {
            r.error = Some(e.to_string());
            return;
        }
    };
    match &end {
        BootEnd::TimedOut => {
            // Without --timeout the limit is one of silence (no scenario finishing), with it
            // one of the whole guest: the words say which.
            let what = if boot.quiet {
                "finished no scenario for"
            } else {
                "did not finish within"
            };
            r.error = Some(format!(
                "the guest {what} {} s (console: {})",
                boot.timeout.as_secs(),
                boot.console_log.display()
            ))
        }
        BootEnd::Cancelled => r.cancelled = true,
        BootEnd::Exited { status } if *status != Some(0) => {
            r.error = Some(format!(
                "qemu exited with {status:?} (console: {})",
                boot.console_log.display()
            ))
        }
        BootEnd::Exited { .. } => {}
    }
    let unpacking = Instant::now();
    r.bytes_moved = std::fs::metadata(&data).map_or(0, |m| m.len());
    let received = std::fs::File::open(&data)
        .map(std::io::BufReader::new)
        .and_then(wire::receive);
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_dir(&work);
    match received {
        Ok(got) => {
            unpack(&got, &files, r);
            if !got.complete && r.error.is_none() && !r.cancelled {
                r.error = Some(format!(
                    "the guest's result stream is incomplete (console: {})",
                    boot.console_log.display()
                ));
            }
        }
        Err(e) => {
            if r.error.is_none() && !r.cancelled {
                r.error = Some(format!("{e} (console: {})", boot.console_log.display()));
            }
        }
    }
    r.unpack_s = Some(unpacking.elapsed().as_secs_f64());
}

/// A relative path from the guest that stays inside the results directory.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_owned())
        .filter(|p| p.components().next().is_some())
}

fn unpack(got: &wire::Received, files: &[(JobFile, PathBuf)], r: &mut BatchResult) {
    let guest_out = Path::new(job::GUEST_OUT);
    let to_host = |p: &str| -> String {
        match Path::new(p).strip_prefix(guest_out) {
            Ok(rel) => r.dir.join(rel).display().to_string(),
            Err(_) => p.to_owned(),
        }
    };
    let host_file = |g: &str| -> Option<String> {
        files
            .iter()
            .find(|(j, _)| j.guest == g)
            .map(|(j, _)| j.host.clone())
    };
    let mut lines = Vec::new();
    for rec in &got.records {
        match rec {
            wire::Record::Json(text) => {
                let mut line = match record::parse::<BatchLine>(
                    Path::new("the guest's tcplab run --json"),
                    text,
                ) {
                    Ok(l) => l,
                    Err(e) => {
                        r.error.get_or_insert(e.to_string());
                        continue;
                    }
                };
                if let BatchLine::Ran(b) = &mut line {
                    b.results_dir = b.results_dir.as_deref().map(to_host);
                }
                if let Some(f) = host_file(line.file()) {
                    line.set_file(f);
                }
                lines.push(line);
            }
            wire::Record::File(rel, data) => {
                let Some(rel) = safe_relative(rel) else {
                    continue;
                };
                let dst = r.dir.join(rel);
                if let Some(parent) = dst.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let data = rewrite_paths_in_json(&dst, data, &to_host, &host_file);
                if let Err(e) = std::fs::write(&dst, data) {
                    r.error.get_or_insert(format!("{}: {e}", dst.display()));
                }
            }
            wire::Record::Guest(text) => {
                match record::parse::<job::GuestReport>(Path::new("guest.json"), text) {
                    Ok(g) => {
                        r.guest_s = g.elapsed_s;
                        r.suite_s = g.suite_s;
                        r.transfer_s = g.transfer_s;
                        if let Some(rel) = g.release.as_deref().filter(|s| !s.is_empty()) {
                            r.kernel = rel.to_owned();
                        }
                        let _ = std::fs::write(r.dir.join("guest.json"), record::to_pretty(&g));
                    }
                    Err(e) => {
                        r.error.get_or_insert(e.to_string());
                    }
                }
            }
        }
    }
    r.lines = lines;
}

/// summary.json and meta.json name the guest's paths; point them at the host's copies.
fn rewrite_paths_in_json(
    dst: &Path,
    data: &[u8],
    to_host: &impl Fn(&str) -> String,
    host_file: &impl Fn(&str) -> Option<String>,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    match dst.file_name().and_then(|n| n.to_str()) {
        Some("summary.json") => match record::parse::<Summary>(dst, &text) {
            Ok(mut s) => {
                s.batch.results_dir = s.batch.results_dir.as_deref().map(to_host);
                if let Some(f) = host_file(&s.batch.file) {
                    s.batch.file = f;
                }
                for run in &mut s.run_outcomes {
                    run.dir = run.dir.as_deref().map(to_host);
                }
                record::to_pretty(&s).into_bytes()
            }
            // Kept as the guest wrote it: compare names the file when it reads it.
            Err(_) => data.to_vec(),
        },
        Some("meta.json") => match record::parse::<MetaRecord>(dst, &text) {
            Ok(mut m) => {
                if let Some(f) = host_file(&m.file) {
                    m.file = f;
                }
                record::to_pretty(&m).into_bytes()
            }
            Err(_) => data.to_vec(),
        },
        _ => data.to_vec(),
    }
}

/// Record the conditions in each batch's meta.json and summary.json (and the kernel in
/// summary.json). A file that is not what tcplab wrote is an error of the place.
fn add_conditions_to_files(
    lines: &[BatchLine],
    kernel: &str,
    conditions: &Conditions,
) -> Result<(), String> {
    for line in lines {
        let BatchLine::Ran(b) = line else { continue };
        let Some(dir) = &b.results_dir else { continue };
        let dir = Path::new(dir);
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let write = |p: &Path, text: String| {
            std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
        };
        let p = dir.join("meta.json");
        if p.exists() {
            let mut m: MetaRecord = record::parse(&p, &read(&p)?).map_err(|e| e.to_string())?;
            m.conditions = Some(conditions.clone());
            write(&p, record::to_pretty(&m))?;
        }
        let p = dir.join("summary.json");
        if p.exists() {
            let mut s: Summary = record::parse(&p, &read(&p)?).map_err(|e| e.to_string())?;
            s.batch.conditions = Some(conditions.clone());
            s.batch.kernel = Some(kernel.to_owned());
            write(&p, record::to_pretty(&s))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_cannot_escape() {
        assert!(safe_relative("a/b/capture.pcap").is_some());
        assert!(safe_relative("../x").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("a/../../x").is_none());
        assert!(safe_relative("").is_none());
    }

    #[test]
    fn unpacking_rewrites_guest_paths_to_host_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let files = vec![(
            JobFile {
                guest: "files/0000/a.toml".into(),
                host: "scenarios/a.toml".into(),
            },
            PathBuf::from("scenarios/a.toml"),
        )];
        // What the guest's `tcplab run --json` writes (main c7f649a's binary), at guest paths.
        let guest_dir = "/tmp/out/a/20261201T000000Z";
        let mut line: serde_json::Value = serde_json::from_str(
            include_str!("../../record/tests/data/run-json-host.jsonl")
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        line["file"] = "files/0000/a.toml".into();
        line["results_dir"] = guest_dir.into();
        let mut summary: serde_json::Value =
            serde_json::from_str(include_str!("../../record/tests/data/summary-host.json"))
                .unwrap();
        summary["file"] = "files/0000/a.toml".into();
        summary["results_dir"] = guest_dir.into();
        summary["run_outcomes"][0]["dir"] = format!("{guest_dir}/run-0001").into();
        let got = wire::Received {
            records: vec![
                wire::Record::Json(line.to_string()),
                wire::Record::File(
                    "a/20261201T000000Z/summary.json".into(),
                    summary.to_string().into_bytes(),
                ),
                wire::Record::File("../evil".into(), b"x".to_vec()),
                wire::Record::Guest(record::to_line(&job::GuestReport {
                    release: Some("6.1.0-57-cloud-amd64".into()),
                    boot_s: Some(1.25),
                    modules: vec![],
                    capabilities: crate::guest::Capabilities {
                        netns: None,
                        tun: None,
                        ipv6: None,
                    },
                    child_exit: Some(0),
                    elapsed_s: Some(3.5),
                    suite_s: Some(3.0),
                    transfer_s: Some(0.4),
                })),
            ],
            complete: true,
        };
        let mut r = BatchResult::new("from-header".into(), tmp.path().join("k"));
        unpack(&got, &files, &mut r);
        assert_eq!(r.kernel, "6.1.0-57-cloud-amd64");
        assert_eq!(r.guest_s, Some(3.5));
        assert_eq!((r.suite_s, r.transfer_s), (Some(3.0), Some(0.4)));
        let batch = tmp.path().join("k/a/20261201T000000Z");
        let BatchLine::Ran(l) = &r.lines[0] else {
            panic!("a batch that ran")
        };
        assert_eq!(l.file, "scenarios/a.toml");
        assert_eq!(l.results_dir, Some(batch.display().to_string()));
        assert!(r.error.is_none(), "{:?}", r.error);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(batch.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["file"], "scenarios/a.toml");
        assert_eq!(
            s["run_outcomes"][0]["dir"],
            batch.join("run-0001").display().to_string()
        );
        assert!(!tmp.path().join("evil").exists());
        let tcg = Conditions {
            accel: "tcg".into(),
            ..host_conditions()
        };
        add_conditions_to_files(&r.lines, "6.1.0-57-cloud-amd64", &tcg).unwrap();
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(batch.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["conditions"]["accel"], "tcg");
        assert_eq!(s["kernel"], "6.1.0-57-cloud-amd64");
    }
}
