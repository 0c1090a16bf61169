//! `tcplab kernels build`: a tcplab-ready kernel from a source tree.
//!
//! ```text
//! <cache>/src/linux-source-6.1/          Debian's linux-source-6.1, extracted once
//! <cache>/build/<tree>-<key>/            out-of-tree build (make O=…): .config, objects,
//!   build.log                            the last build's full output
//!   built.json                           what was built (BuiltKernel)
//!   arch/x86/boot/bzImage                the kernel to boot
//! ```
//!
//! The key hashes the source tree's path, the base config (tinyconfig or the file's text) and
//! the shipped fragment ([`FRAGMENT`]), so building the same tree again is incremental and a
//! different config never reuses objects. The configuration is made once per build dir:
//! the base, then the fragment over it (a module becomes built in: guests load no modules
//! from a build), except that a base config's explicit `# CONFIG_X is not set` for a
//! required option stays (the user asked for it), then `make olddefconfig`; then every
//! option of the fragment must hold ([`missing_options`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The config fragment every build gets: what the guest's `/init` and `tcplab run` use.
pub const FRAGMENT: &str = include_str!("../kconfig/tcplab.config");

/// Fragment lines that only help kconfig reach the required options on a tiny base; a base
/// config may rule them out (e.g. `ENABLE_DEFAULT_TRACERS` depends on no function tracer)
/// without the guest missing anything.
const HELPERS: &[&str] = &["CONFIG_ENABLE_DEFAULT_TRACERS"];

/// Name of the metadata file in a build dir.
pub const BUILT_FILE: &str = "built.json";

/// Compiler error lines shown for a failed build.
pub const ERROR_LINES: usize = 12;

/// Errors of a kernel build, each one line.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// SRC is not a kernel source tree.
    #[error("{0}: not a Linux kernel source tree (no Makefile, Kconfig and arch/x86)")]
    NotKernelTree(PathBuf),
    /// SRC names nothing buildable.
    #[error("{0}")]
    Spec(String),
    /// A required option did not survive olddefconfig.
    #[error("{option}: required by tcplab's guest but {why} after olddefconfig")]
    MissingOption {
        /// `CONFIG_X=y` as the fragment wants it.
        option: String,
        /// What the config has instead (and who said so).
        why: String,
    },
    /// The build (or a config step) failed: its last error lines and the full log.
    #[error("{step} failed ({status}); full log: {}", log.display())]
    Failed {
        /// `make bzImage`, `make olddefconfig`, …
        step: String,
        /// Exit status.
        status: String,
        /// The log.
        log: PathBuf,
        /// The last compiler error lines (or the log's last lines).
        errors: Vec<String>,
    },
    /// Interrupted (Ctrl-C): make was stopped; the build dir stays for the next build.
    #[error("interrupted: make stopped; the next build of this tree continues where it was")]
    Interrupted,
    /// A tool (apt-get, tar, make) could not run.
    #[error("{tool}: {message}")]
    Tool {
        /// The command.
        tool: String,
        /// What went wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the kernel source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A source tree on disk.
    Dir(PathBuf),
    /// Debian's `linux-source-X` package (`debian:6.1`).
    Debian(String),
}

impl Source {
    /// `debian:X` or a directory.
    pub fn parse(spec: &str) -> Result<Source, BuildError> {
        if let Some(v) = spec.strip_prefix("debian:") {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(BuildError::Spec(format!(
                    "{spec:?}: expected debian:MAJOR.MINOR (e.g. debian:6.1, debian:6.12)"
                )));
            }
            return Ok(Source::Debian(v.to_owned()));
        }
        Ok(Source::Dir(PathBuf::from(spec)))
    }

    /// How it is shown and recorded.
    pub fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Debian(v) => format!("debian:{v} (linux-source-{v})"),
        }
    }
}

/// What a build needs.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The kernel cache (`kernels::cache_dir`).
    pub cache: PathBuf,
    /// The tree.
    pub source: Source,
    /// A config to start from instead of `make tinyconfig`.
    pub base_config: Option<PathBuf>,
    /// `make -jN`.
    pub jobs: usize,
}

/// What `built.json` records.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuiltKernel {
    /// `uname -r` of the kernel (include/config/kernel.release).
    pub release: String,
    /// The source as given (`debian:6.1` or the directory).
    pub source: String,
    /// The source tree built.
    pub tree: PathBuf,
    /// The base config: `tinyconfig` or the file.
    pub base_config: String,
    /// The build dir.
    pub build_dir: PathBuf,
    /// The bzImage.
    pub bzimage: PathBuf,
    /// UTC stamp of the last build.
    pub built_utc: String,
    /// How long the last build took, s.
    pub build_s: f64,
    /// Whether the last build reused an existing build dir.
    pub incremental: bool,
    /// Output lines of the last full build (the progress bar's length next time).
    pub full_build_lines: u64,
}

/// A progress event of a build (the caller renders it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A step began (`extracting linux-source-6.1`, `make tinyconfig`, `make bzImage`).
    Step(&'a str),
    /// `make` is at line `n` of about `of` (0 when unknown), printing `line`.
    Line {
        /// Lines so far.
        n: u64,
        /// Expected lines (the last full build's), 0 if unknown.
        of: u64,
        /// The line.
        line: &'a str,
    },
}

/// FNV-1a, 64 bits: a stable key (std's hashers may change between Rust releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = tcplab_trace::hash::Fnv1a::default();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // A zero byte between parts, so that ("ab", "c") and ("a", "bc") differ.
            h.write(&[0]);
        }
        h.write(p);
    }
    h.finish()
}

/// The build dir for a tree and base config.
pub fn build_dir(cache: &Path, tree: &Path, base: Option<&[u8]>) -> PathBuf {
    let key = fnv1a(&[
        tree.as_os_str().as_encoded_bytes(),
        base.unwrap_or(b"tinyconfig"),
        FRAGMENT.as_bytes(),
    ]);
    let name = tree
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "linux".into());
    cache.join("build").join(format!("{name}-{key:016x}"))
}

/// The fragment's options as (symbol, value), in file order.
pub fn fragment_options() -> Vec<(String, String)> {
    FRAGMENT
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            k.starts_with("CONFIG_")
                .then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// A `.config`'s assignments: symbol → value (`n` for `# CONFIG_X is not set`), with the
/// 1-based line of each.
pub fn parse_config(text: &str) -> BTreeMap<String, (String, usize)> {
    let mut m = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(sym) = l
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
        {
            m.insert(sym.to_owned(), ("n".to_owned(), i + 1));
        } else if let Some((k, v)) = l.split_once('=') {
            if k.starts_with("CONFIG_") {
                m.insert(k.to_owned(), (v.to_owned(), i + 1));
            }
        }
    }
    m
}

/// The config to hand olddefconfig: `base` with the fragment over it, keeping a user base
/// config's explicit "is not set" of a fragment option (`user_base`).
pub fn merge(base: &str, user_base: bool) -> String {
    let mut m: BTreeMap<String, String> = parse_config(base)
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect();
    for (k, v) in fragment_options() {
        if user_base && m.get(&k).is_some_and(|old| old == "n") {
            continue;
        }
        m.insert(k, v);
    }
    let mut out = String::new();
    for (k, v) in m {
        if v == "n" {
            out.push_str(&format!("# {k} is not set\n"));
        } else {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

/// The fragment options the final `.config` lacks, each as the error to print. `base`:
/// the user's base config (name, text), to say who turned an option off.
pub fn missing_options(config: &str, base: Option<(&str, &str)>) -> Vec<BuildError> {
    let have = parse_config(config);
    let base_cfg = base.map(|(name, text)| (name, parse_config(text)));
    fragment_options()
        .into_iter()
        .filter(|(k, _)| !HELPERS.contains(&k.as_str()))
        .filter_map(|(k, want)| {
            let got = have.get(&k).map(|(v, _)| v.as_str());
            if got == Some(want.as_str()) {
                return None;
            }
            let mut why = match got {
                None | Some("n") => "not set".to_owned(),
                Some(v) => format!("{k}={v}"),
            };
            if let Some((name, b)) = &base_cfg {
                if let Some((v, line)) = b.get(&k) {
                    if v == "n" {
                        why = format!("{name}:{line} says `# {k} is not set`");
                    }
                }
            }
            if why == "not set" {
                why = "not set (a dependency is off)".into();
            }
            Some(BuildError::MissingOption {
                option: format!("{k}={want}"),
                why,
            })
        })
        .collect()
}

/// True when `dir` looks like a Linux kernel source tree.
pub fn is_kernel_tree(dir: &Path) -> bool {
    dir.join("Makefile").is_file()
        && dir.join("Kconfig").is_file()
        && dir.join("arch/x86/Makefile").is_file()
        && dir.join("scripts/kconfig").is_dir()
}

/// Removes a directory on drop unless disarmed (a half-extracted source, a half-made config).
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// The tree for a source: the directory itself, or Debian's source extracted into the cache
/// (apt-get installing `linux-source-X` first when its tarball is missing).
pub fn prepare_source(
    cache: &Path,
    source: &Source,
    progress: &mut dyn FnMut(Progress<'_>),
    cancel: &AtomicBool,
) -> Result<PathBuf, BuildError> {
    let v = match source {
        Source::Dir(d) => {
            if !is_kernel_tree(d) {
                return Err(BuildError::NotKernelTree(d.clone()));
            }
            return std::fs::canonicalize(d).map_err(io(d));
        }
        Source::Debian(v) => v,
    };
    let name = format!("linux-source-{v}");
    let src_root = cache.join("src");
    let tree = src_root.join(&name);
    if is_kernel_tree(&tree) {
        return Ok(tree);
    }
    let tarball = Path::new("/usr/src").join(format!("{name}.tar.xz"));
    if !tarball.is_file() {
        progress(Progress::Step(&format!("apt-get install {name}")));
        let out = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", &name])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| BuildError::Tool {
                tool: "apt-get".into(),
                message: e.to_string(),
            })?;
        if !out.status.success() || !tarball.is_file() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(BuildError::Spec(format!(
                "debian:{v}: apt-get install {name} failed ({}): {}",
                out.status,
                last.trim()
            )));
        }
    }
    progress(Progress::Step(&format!("extracting {}", tarball.display())));
    std::fs::create_dir_all(&src_root).map_err(io(&src_root))?;
    let tmp = src_root.join(format!(".extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let _guard = Cleanup(Some(tmp.clone()));
    let mut cmd = Command::new("tar");
    cmd.arg("-xf").arg(&tarball).arg("-C").arg(&tmp);
    run_logged(
        &mut cmd,
        "tar -xf",
        &tmp.join("tar.log"),
        0,
        progress,
        cancel,
    )?;
    let extracted = tmp.join(&name);
    if !is_kernel_tree(&extracted) {
        return Err(BuildError::NotKernelTree(extracted));
    }
    // Appear in the cache only when complete.
    std::fs::rename(&extracted, &tree).map_err(io(&tree))?;
    Ok(tree)
}

fn make(tree: &Path, out: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-C")
        .arg(tree)
        .arg(format!("O={}", out.display()))
        .arg("ARCH=x86_64");
    c
}

/// Run `cmd`, its output to `log` and to `progress` line by line; Ctrl-C (`cancel`) stops
/// its process group (by its PID). Returns the number of output lines.
fn run_logged(
    cmd: &mut Command,
    step: &str,
    log: &Path,
    expected: u64,
    progress: &mut dyn FnMut(Progress<'_>),
    cancel: &AtomicBool,
) -> Result<u64, BuildError> {
    use std::os::unix::process::CommandExt;
    progress(Progress::Step(step));
    let mut file = std::fs::File::create(log).map_err(io(log))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: one kill(-pid) stops make and every compiler under it.
        .process_group(0)
        .spawn()
        .map_err(|e| BuildError::Tool {
            tool: step.to_owned(),
            message: e.to_string(),
        })?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut n = 0u64;
    let mut tail: Vec<String> = Vec::new();
    let mut stopped = false;
    loop {
        if cancel.load(Ordering::SeqCst) && !stopped {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pid),
                nix::sys::signal::Signal::SIGINT,
            );
            stopped = true;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                n += 1;
                let _ = writeln!(file, "{line}");
                progress(Progress::Line {
                    n,
                    of: expected,
                    line: &line,
                });
                tail.push(line);
                if tail.len() > 400 {
                    tail.drain(..200);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|e| BuildError::Tool {
        tool: step.to_owned(),
        message: e.to_string(),
    })?;
    if stopped {
        return Err(BuildError::Interrupted);
    }
    if !status.success() {
        return Err(BuildError::Failed {
            step: step.to_owned(),
            status: status.to_string(),
            log: log.to_owned(),
            errors: error_lines(&tail),
        });
    }
    Ok(n)
}

/// The compiler's error lines (`file:line:col: error: …` and make's `***` lines), else the
/// last lines of the output.
pub fn error_lines(lines: &[String]) -> Vec<String> {
    let errs: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("error:") || l.contains("Error ") || l.contains("*** "))
        .cloned()
        .collect();
    let pick = if errs.is_empty() {
        lines.to_vec()
    } else {
        errs
    };
    let skip = pick.len().saturating_sub(ERROR_LINES);
    pick[skip..].to_vec()
}

/// Read a build dir's `built.json`.
pub fn read_built(dir: &Path) -> Result<BuiltKernel, BuildError> {
    let p = dir.join(BUILT_FILE);
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| BuildError::Spec(format!("{}: {e}", p.display())))
}

/// Every build in the cache with a bzImage, oldest release first.
pub fn list_built(cache: &Path) -> Vec<BuiltKernel> {
    let Ok(entries) = std::fs::read_dir(cache.join("build")) else {
        return Vec::new();
    };
    let mut v: Vec<BuiltKernel> = entries
        .filter_map(|e| read_built(&e.ok()?.path()).ok())
        .filter(|b| b.bzimage.is_file())
        .collect();
    v.sort_by(|a, b| {
        crate::kernels::version_key(&a.release)
            .cmp(&crate::kernels::version_key(&b.release))
            .then(a.built_utc.cmp(&b.built_utc))
    });
    v
}

/// The marker scripts/mutants/run.sh leaves in a tree while one of its files is changed:
/// `ID PID`. Only that script's own builds (`TCPLAB_MUTANT_PID` = PID) may build the tree
/// then; anyone else would get a kernel with the change in it.
pub const MUTANT_MARKER: &str = ".tcplab-mutant";

fn check_not_mutated(tree: &Path) -> Result<(), BuildError> {
    let marker = tree.join(MUTANT_MARKER);
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return Ok(());
    };
    let mut it = text.split_whitespace();
    let (id, pid) = (it.next().unwrap_or("?"), it.next().unwrap_or("?"));
    if std::env::var("TCPLAB_MUTANT_PID").is_ok_and(|p| p == pid) {
        return Ok(());
    }
    Err(BuildError::Spec(format!(
        "{}: the tree carries change {id} of scripts/mutants/run.sh (pid {pid}); wait for it \
         to restore the file, or, if that pid is gone, restore the file and remove {}",
        tree.display(),
        marker.display()
    )))
}

/// An exclusive flock(2) on `<build dir>.lock`, held while one build uses the dir; released
/// when dropped, also when the process dies, so a killed build never leaves a stale lock.
fn hold_build_dir(
    out: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<nix::fcntl::Flock<std::fs::File>, BuildError> {
    use nix::fcntl::{Flock, FlockArg};
    let mut name = out.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))
    };
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
            progress(Progress::Step(&format!(
                "waiting for another build of {}",
                out.display()
            )));
            Flock::lock(f, FlockArg::LockExclusive)
                .map_err(|(_, e)| io(&path)(std::io::Error::from(e)))
        }
        Err((_, e)) => Err(io(&path)(std::io::Error::from(e))),
    }
}

/// Build: source, config (once per build dir), `make bzImage`, the required options.
pub fn build(
    spec: &BuildSpec,
    progress: &mut dyn FnMut(Progress<'_>),
    cancel: &AtomicBool,
) -> Result<BuiltKernel, BuildError> {
    let started = Instant::now();
    let base = match &spec.base_config {
        Some(p) => Some((p.clone(), std::fs::read_to_string(p).map_err(io(p))?)),
        None => None,
    };
    let tree = prepare_source(&spec.cache, &spec.source, progress, cancel)?;
    check_not_mutated(&tree)?;
    let out = build_dir(&spec.cache, &tree, base.as_ref().map(|(_, t)| t.as_bytes()));
    // Two builds of one build dir at once (two CI jobs, a mutants run beside a `run --kernel
    // DIR`) would interleave two makes in one tree: the second waits for the first.
    let _hold = hold_build_dir(&out, progress)?;
    let config = out.join(".config");
    let incremental = config.is_file();
    let previous = read_built(&out).ok();
    if !incremental {
        std::fs::create_dir_all(&out).map_err(io(&out))?;
        // A config that fails half-way leaves no build dir that looks configured.
        let mut guard = Cleanup(Some(out.clone()));
        let log = out.join("config.log");
        let start = match &base {
            None => {
                run_logged(
                    make(&tree, &out).arg("tinyconfig"),
                    "make tinyconfig",
                    &log,
                    0,
                    progress,
                    cancel,
                )?;
                std::fs::read_to_string(&config).map_err(io(&config))?
            }
            Some((_, text)) => text.clone(),
        };
        std::fs::write(&config, merge(&start, base.is_some())).map_err(io(&config))?;
        run_logged(
            make(&tree, &out).arg("olddefconfig"),
            "make olddefconfig",
            &log,
            0,
            progress,
            cancel,
        )?;
        guard.0 = None;
    }
    let text = std::fs::read_to_string(&config).map_err(io(&config))?;
    let base_name = base.as_ref().map(|(p, _)| p.display().to_string());
    let missing = missing_options(
        &text,
        base.as_ref()
            .zip(base_name.as_deref())
            .map(|((_, t), n)| (n, t.as_str())),
    );
    if let Some(first) = missing.into_iter().next() {
        if !incremental {
            let _ = std::fs::remove_dir_all(&out);
        }
        return Err(first);
    }
    let expected = previous
        .as_ref()
        .map_or(0, |p| if incremental { 0 } else { p.full_build_lines });
    let lines = run_logged(
        make(&tree, &out)
            .arg(format!("-j{}", spec.jobs.max(1)))
            .arg("bzImage"),
        "make bzImage",
        &out.join("build.log"),
        expected,
        progress,
        cancel,
    )?;
    let release_file = out.join("include/config/kernel.release");
    let release = std::fs::read_to_string(&release_file)
        .map_err(io(&release_file))?
        .trim()
        .to_owned();
    let built = BuiltKernel {
        release,
        source: match &spec.source {
            Source::Dir(d) => d.display().to_string(),
            Source::Debian(v) => format!("debian:{v}"),
        },
        tree,
        base_config: base_name.unwrap_or_else(|| "tinyconfig".into()),
        bzimage: out.join("arch/x86/boot/bzImage"),
        build_dir: out.clone(),
        built_utc: tcplab_runner::results::utc_stamp(std::time::SystemTime::now()),
        build_s: started.elapsed().as_secs_f64(),
        incremental,
        full_build_lines: if incremental {
            previous.map_or(lines, |p| p.full_build_lines.max(lines))
        } else {
            lines
        },
    };
    let p = out.join(BUILT_FILE);
    let json = serde_json::to_string_pretty(&built).unwrap_or_default() + "\n";
    std::fs::write(&p, json).map_err(io(&p))?;
    Ok(built)
}

/// The bootable image of a build.
pub fn image_of(b: &BuiltKernel) -> crate::KernelImage {
    crate::KernelImage {
        release: b.release.clone(),
        vmlinuz: b.bzimage.clone(),
        modules: Vec::new(),
        source: format!("built from {} ({})", b.source, b.base_config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_merged_over_the_base_and_user_disables_stay() {
        let base = "CONFIG_TUN=m\n# CONFIG_NET_NS is not set\nCONFIG_FOO=y\n";
        let tiny = merge(base, false);
        assert!(tiny.contains("CONFIG_TUN=y\n"), "{tiny}");
        assert!(tiny.contains("CONFIG_NET_NS=y\n"));
        assert!(tiny.contains("CONFIG_FOO=y\n"));
        let user = merge(base, true);
        assert!(user.contains("CONFIG_TUN=y\n"));
        assert!(user.contains("# CONFIG_NET_NS is not set\n"), "{user}");
    }

    #[test]
    fn each_missing_option_is_one_line_naming_it_and_who_turned_it_off() {
        let full = merge("", false);
        assert!(missing_options(&full, None).is_empty());
        let without = full.replace("CONFIG_NET_NS=y\n", "# CONFIG_NET_NS is not set\n");
        let base = "CONFIG_X=y\n# CONFIG_NET_NS is not set\n";
        let m = missing_options(&without, Some(("my.config", base)));
        assert_eq!(m.len(), 1);
        let line = m[0].to_string();
        assert_eq!(
            line,
            "CONFIG_NET_NS=y: required by tcplab's guest but my.config:2 says \
             `# CONFIG_NET_NS is not set` after olddefconfig"
        );
        assert!(!line.contains('\n'));
        let hz = full.replace("CONFIG_HZ=250\n", "CONFIG_HZ=1000\n");
        let m = missing_options(&hz, None);
        assert_eq!(m.len(), 1);
        assert!(m[0].to_string().contains("CONFIG_HZ=1000"), "{}", m[0]);
        // A helper may be ruled out by the base without anything missing.
        let helper = full.replace("CONFIG_ENABLE_DEFAULT_TRACERS=y\n", "");
        assert!(missing_options(&helper, None).is_empty());
    }

    #[test]
    fn a_second_build_of_one_dir_waits_for_the_first() {
        let d = tempfile::tempdir().expect("tempdir");
        let out = d.path().join("linux-x-0123");
        let first = hold_build_dir(&out, &mut |_| {}).expect("first hold");
        let (tx, rx) = std::sync::mpsc::channel();
        let o = out.clone();
        let second = std::thread::spawn(move || {
            let mut said = Vec::new();
            let held = hold_build_dir(&o, &mut |p| {
                if let Progress::Step(s) = p {
                    said.push(s.to_owned());
                }
            })
            .is_ok();
            tx.send(()).expect("send");
            (held, said)
        });
        // While the first holds the dir, the second does not get it (on a slow machine this
        // can only pass more easily, never fail wrongly; `said` below proves it waited).
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        let (held, said) = second.join().expect("join");
        assert!(held);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("waiting for another build of"),
            "{said:?}"
        );
    }

    #[test]
    fn build_dirs_are_keyed_by_tree_and_config() {
        let c = Path::new("/c");
        let a = build_dir(c, Path::new("/src/linux"), None);
        assert_eq!(a, build_dir(c, Path::new("/src/linux"), None));
        assert!(a.to_string_lossy().starts_with("/c/build/linux-"));
        assert_ne!(
            a,
            build_dir(c, Path::new("/src/linux"), Some(b"CONFIG_X=y\n"))
        );
        assert_ne!(a, build_dir(c, Path::new("/other/linux"), None));
    }

    #[test]
    fn sources_parse_and_bad_ones_say_why() {
        assert_eq!(
            Source::parse("debian:6.1").unwrap(),
            Source::Debian("6.1".into())
        );
        assert_eq!(
            Source::parse("/src/linux").unwrap(),
            Source::Dir("/src/linux".into())
        );
        assert!(Source::parse("debian:").is_err());
        assert!(Source::parse("debian:six").is_err());
    }

    #[test]
    fn error_lines_prefer_compiler_errors() {
        let lines: Vec<String> = [
            "  CC      net/ipv4/tcp.o",
            "net/ipv4/tcp_input.c:12:3: error: expected ';' before '}' token",
            "make[4]: *** [scripts/Makefile.build:250: net/ipv4/tcp_input.o] Error 1",
            "  CC      net/ipv4/tcp_output.o",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = error_lines(&lines);
        assert_eq!(e.len(), 2);
        assert!(e[0].contains("error: expected"));
        let plain: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        assert_eq!(error_lines(&plain).len(), ERROR_LINES);
    }
}
