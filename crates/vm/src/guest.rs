//! The guest's `/init`: the same `tcplab` binary, started by the kernel as PID 1.
//!
//! It mounts what `tcplab run` needs, loads the modules the job lists (from the kernel's own
//! package), checks what the kernel can do (network namespaces, TUN, IPv6), runs the
//! scenarios it can with `tcplab run --json` as a child process — exactly the code that runs
//! on the host — and sends the JSON lines and the whole results tree back on the second
//! serial port ([`crate::wire`]). Then it powers the VM off; QEMU (`-no-reboot`) exits.
//! Scenarios the kernel cannot run are reported as skipped, with the reason.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::mount::MsFlags;
use tcplab_runner::record::{self, BatchLine, SkippedRecord};
use tcplab_runner::scenario::IpVersion;
use tcplab_runner::Scenario;

use crate::job::{self, Job};
use crate::wire::{Record, Sender};

/// The serial port that carries the result stream (QEMU's second `-serial`).
pub const DATA_PORT: &str = "/dev/ttyS1";

/// True when this process is the guest's init: PID 1, started as `/init`.
pub fn is_guest_init() -> bool {
    std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init")
}

// The data lives with the rest of the guest's report (`job.rs`), which this module builds, so
// that `job.rs` needs nothing from here; `probe` and `missing_for` stay with the guest.
pub use crate::job::Capabilities;

impl Capabilities {
    fn probe() -> Capabilities {
        let netns = std::thread::spawn(|| {
            // The thread ends right after: the namespace goes with it.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("probe thread panicked".into()))
        .err();
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .err()
            .map(|e| format!("no TUN device (/dev/net/tun: {e})"));
        let ipv6 = (!Path::new("/proc/sys/net/ipv6").exists())
            .then(|| "no IPv6 (/proc/sys/net/ipv6 missing)".to_owned());
        Capabilities { netns, tun, ipv6 }
    }

    /// Why `s` cannot run on this kernel, if it cannot.
    pub fn missing_for(&self, s: &Scenario) -> Option<String> {
        let mut why = Vec::new();
        if let Some(e) = &self.netns {
            why.push(format!("network namespaces: {e}"));
        }
        if s.link.is_some() {
            if let Some(e) = &self.tun {
                why.push(format!("[link] needs TUN: {e}"));
            }
        }
        if s.ip.contains(&IpVersion::Ipv6) {
            if let Some(e) = &self.ipv6 {
                why.push(e.clone());
            }
        }
        // A `[sysctl]` key this kernel lacks, older than the file's since_kernel: the words
        // a host run skips it with too.
        why.extend(s.skip_reason());
        (!why.is_empty()).then(|| why.join("; "))
    }
}

fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}{msg}", job::CONSOLE_PREFIX);
    let _ = out.flush();
}

fn mount(src: &str, target: &str, fstype: &str) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("{target}: {e}"))?;
    nix::mount::mount(
        Some(src),
        target,
        Some(fstype),
        MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .map_err(|e| format!("mount {fstype} on {target}: {e}"))
}

fn uptime_s() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn load_module(name: &str) -> Result<(), String> {
    let path = PathBuf::from(job::MODULE_DIR).join(format!("{name}.ko"));
    let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match nix::kmod::finit_module(&f, c"", nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(format!("finit_module({name}): {e}")),
    }
}

/// Run the guest's job and power off. Never returns.
pub fn main() -> ! {
    let report = run();
    match &report {
        Ok(()) => say("done"),
        Err(e) => say(&format!("error: {e}")),
    }
    power_off()
}

fn power_off() -> ! {
    nix::unistd::sync();
    // QEMU runs with -no-reboot, so a reboot ends it; should that fail, PID 1 exiting makes
    // the kernel panic, and panic=-1 reboots (and so ends QEMU) as well.
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
    std::process::exit(1)
}

fn run() -> Result<(), String> {
    let started = Instant::now();
    for (src, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", "/tmp", "tmpfs"),
    ] {
        mount(src, target, fstype)?;
    }
    let boot_s = uptime_s();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let job: Job = std::fs::read_to_string(job::JOB_PATH)
        .map_err(|e| format!("{}: {e}", job::JOB_PATH))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{}: {e}", job::JOB_PATH)))?;
    say(&format!("up: {release} after {boot_s:.2} s"));
    if job.probe {
        say(job::PROBE_MARKER.trim_start_matches(job::CONSOLE_PREFIX));
        return Ok(());
    }
    let modules: Vec<job::ModuleLoad> = job
        .modules
        .iter()
        .map(|m| {
            let r = load_module(m);
            job::ModuleLoad {
                name: m.clone(),
                loaded: r.is_ok(),
                error: r.err(),
            }
        })
        .collect();
    let caps = Capabilities::probe();

    let data = std::fs::OpenOptions::new()
        .write(true)
        .open(DATA_PORT)
        .map_err(|e| format!("{DATA_PORT}: {e}"))?;
    set_raw(&data)?;
    let mut sender =
        Sender::new(std::io::BufWriter::new(&data)).map_err(|e| format!("{DATA_PORT}: {e}"))?;

    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for f in &job.files {
        let path = Path::new(job::JOB_DIR).join(&f.guest);
        match Scenario::load(&path) {
            Ok(s) => match caps.missing_for(&s) {
                None => runnable.push(f.guest.clone()),
                Some(why) => {
                    say(&format!("skip {}: {why}", s.name()));
                    skipped.push(SkippedRecord::new(s.name(), &f.guest, why));
                }
            },
            // The host validated every file; a failure here is the guest's, say so.
            Err(e) => skipped.push(SkippedRecord::new(
                &f.guest,
                &f.guest,
                format!("cannot load in the guest: {e}"),
            )),
        }
    }
    for s in &skipped {
        sender
            .send(&Record::Json(record::to_line(s)))
            .map_err(|e| e.to_string())?;
    }
    let mut child_exit = None;
    let mut suite_s = None;
    if !runnable.is_empty() {
        let t = Instant::now();
        child_exit = Some(run_child(&job, &runnable, &mut sender)?);
        suite_s = Some(t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    send_tree(Path::new(job::GUEST_OUT), &mut sender)?;
    let transfer_s = Some(t.elapsed().as_secs_f64());
    let guest = job::GuestReport {
        release: Some(release),
        boot_s: Some(boot_s),
        modules,
        capabilities: caps,
        child_exit,
        elapsed_s: Some(started.elapsed().as_secs_f64()),
        suite_s,
        transfer_s,
    };
    sender
        .send(&Record::Guest(record::to_line(&guest)))
        .map_err(|e| e.to_string())?;
    let w = sender.finish().map_err(|e| format!("{DATA_PORT}: {e}"))?;
    drop(w);
    nix::sys::termios::tcdrain(&data).map_err(|e| format!("tcdrain {DATA_PORT}: {e}"))?;
    Ok(())
}

fn set_raw(port: &std::fs::File) -> Result<(), String> {
    use nix::sys::termios;
    let mut t = termios::tcgetattr(port).map_err(|e| format!("tcgetattr {DATA_PORT}: {e}"))?;
    // Raw: no newline translation, every byte as it is.
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(port, termios::SetArg::TCSANOW, &t)
        .map_err(|e| format!("tcsetattr {DATA_PORT}: {e}"))
}

/// `tcplab run --json` on the runnable files; its JSON lines go to the stream, its stderr to
/// the console. Returns its exit code.
fn run_child<W: Write>(job: &Job, files: &[String], sender: &mut Sender<W>) -> Result<i32, String> {
    let mut child = Command::new(job::BINARY)
        .arg("run")
        .arg("--json")
        .arg("--out")
        .arg(job::GUEST_OUT)
        .args(&job.run_args)
        .args(files)
        .current_dir(job::JOB_DIR)
        .env_clear()
        .env("PATH", "/bin")
        .env("HOME", "/tmp")
        // A TCG vCPU waiting for a busy host stalls the guest's timers: note such stalls.
        .env(tcplab_runner::stall::ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", job::BINARY))?;
    let stderr = child.stderr.take();
    let relay = std::thread::spawn(move || {
        if let Some(e) = stderr {
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                say(&line);
            }
        }
    });
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim().is_empty() {
                continue;
            }
            match record::parse::<BatchLine>(Path::new("tcplab run --json"), &line) {
                Ok(l) => say(&l.summary_line()),
                Err(e) => say(&e.to_string()),
            }
            sender
                .send(&Record::Json(line))
                .map_err(|e| format!("{DATA_PORT}: {e}"))?;
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for tcplab run: {e}"))?;
    let _ = relay.join();
    Ok(status.code().unwrap_or(-1))
}

/// Every file under `root`, as `File` records with paths relative to `root`.
fn send_tree<W: Write>(root: &Path, sender: &mut Sender<W>) -> Result<(), String> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(data) = std::fs::read(&p) {
                let rel = p
                    .strip_prefix(root)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                sender
                    .send(&Record::File(rel, data))
                    .map_err(|e| format!("{DATA_PORT}: {e}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest skips a file whose `[sysctl]` key its kernel lacks (older than the file's
    /// since_kernel) with the reason a host `run` gives ([`Scenario::skip_reason`]).
    #[test]
    fn a_kernel_older_than_since_kernel_without_the_key_is_a_skip_in_the_hosts_words() {
        let s = Scenario::parse_for(
            "since_kernel = \"6.11\"\n[sysctl]\n\"net.ipv4.tcp_no_such_knob\" = 1\n[expect]\nkind = \"reset\"\n",
            Path::new("x.toml"),
            tcplab_runner::kernel_version::KernelVersion::from_release("6.1.0-57-cloud-amd64"),
        )
        .expect("loads: the kernel is older than since_kernel");
        let caps = Capabilities {
            netns: None,
            tun: None,
            ipv6: None,
        };
        assert_eq!(caps.missing_for(&s), s.skip_reason());
        assert!(caps
            .missing_for(&s)
            .is_some_and(|w| w.contains("`net.ipv4.tcp_no_such_knob`")));
    }
}
