//! Booting one guest: the QEMU command line, its console as a stream of lines, a timeout,
//! and a stop that always goes by the child's PID (SIGKILL to that process, then a wait, so
//! nothing is left running). Several guests run at once on one tokio runtime: each is a
//! process whose console, timeout and cancellation are awaited together.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

/// The QEMU binary looked up on PATH.
pub const QEMU: &str = "qemu-system-x86_64";

/// How the guest's CPU is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// QEMU's software emulation (10–30× slower guest code, timers follow the wall clock).
    Tcg,
}

impl Accel {
    /// `kvm` / `tcg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The VM's size: pinned, because TCP's buffer and window defaults follow guest RAM and the
/// CPU count shapes the races, so two kernels compare only on the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VmSize {
    /// Guest RAM, MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
}

/// One boot.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The bzImage.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// Accelerator.
    pub accel: Accel,
    /// VM size.
    pub size: VmSize,
    /// Where QEMU writes the second serial port (the result stream).
    pub data: PathBuf,
    /// Where the console is kept.
    pub console_log: PathBuf,
    /// Kill the VM after this long.
    pub timeout: Duration,
    /// Count `timeout` from the guest's last progress line (`tcplab-guest: …`, one per
    /// scenario finished) instead of from the start: a kernel that makes scenarios wait out
    /// their timeouts is slow, not hung, and the scenarios after the slow one still get run.
    pub quiet: bool,
}

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootEnd {
    /// QEMU exited by itself (the guest powered off, or QEMU failed: see `status`).
    Exited {
        /// QEMU's exit status (0 when the guest powered off).
        status: Option<i32>,
    },
    /// Killed after the timeout.
    TimedOut,
    /// Killed because the user interrupted.
    Cancelled,
}

/// Errors starting QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// QEMU is not installed or could not start.
    #[error("cannot start {qemu}: {source} (install the Debian package qemu-system-x86)")]
    Spawn {
        /// The binary.
        qemu: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The console log could not be written.
    #[error("{path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Boot {
    /// The guest kernel's command line. panic=-1: a dying guest reboots at once, which
    /// -no-reboot turns into an exit. (tsc=unstable under TCG was tried against a guest
    /// clock that ran at the wrong rate on a host at load 19: tinyconfig has no ACPI, so
    /// no HPET is found, and the clock fell back to jiffies, 4 ms steps: worse.)
    /// no_timer_check: the boot-time check that the IO-APIC timer ticks counts ticks in a
    /// window of wall time; a TCG vCPU descheduled by a busy host misses them, and the
    /// guest panicked "IO-APIC + timer doesn't work!" under two busy loops. The timer does
    /// work: only the check's timing is wrong there.
    pub fn kernel_command_line(&self) -> String {
        "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check rdinit=/init".to_owned()
    }

    /// QEMU's arguments.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["-accel".into(), self.accel.as_str().into()]);
        if self.accel == Accel::Kvm {
            a.extend(["-cpu".into(), "host".into()]);
        }
        a.extend([
            "-m".into(),
            self.size.memory_mib.to_string(),
            "-smp".into(),
            self.size.cpus.to_string(),
            "-kernel".into(),
            self.kernel.display().to_string(),
            "-initrd".into(),
            self.initrd.display().to_string(),
            "-append".into(),
            self.kernel_command_line(),
            // ttyS0: the console on stdout; ttyS1: the result stream into a file.
            "-serial".into(),
            "stdio".into(),
            "-serial".into(),
            format!("file:{}", self.data.display()),
        ]);
        a
    }

    /// Boot, calling `on_line` with every console line, until QEMU exits, the timeout passes
    /// or `cancel` turns true. The console is also written to `console_log`.
    pub async fn run(
        &self,
        mut on_line: impl FnMut(&str),
        mut cancel: watch::Receiver<bool>,
    ) -> Result<BootEnd, QemuError> {
        use tokio::io::AsyncWriteExt;
        let mut log = tokio::fs::File::create(&self.console_log)
            .await
            .map_err(|source| QemuError::Log {
                path: self.console_log.clone(),
                source,
            })?;
        let mut child = tokio::process::Command::new(&self.qemu)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Belt and braces: if this future is dropped, the child is killed (by its PID).
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| QemuError::Spawn {
                qemu: self.qemu.display().to_string(),
                source,
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut lines = stdout.map(|o| BufReader::new(o).lines());
        let mut errs = stderr.map(|e| BufReader::new(e).lines());
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let end = loop {
            tokio::select! {
                line = next_line(&mut lines) => match line {
                    Some(l) => {
                        let l = l.trim_end_matches('\r');
                        if self.quiet && l.starts_with(crate::job::CONSOLE_PREFIX) {
                            deadline.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                        }
                        let _ = log.write_all(l.as_bytes()).await;
                        let _ = log.write_all(b"\n").await;
                        on_line(l);
                    }
                    None => lines = None,
                },
                line = next_line(&mut errs) => match line {
                    Some(l) => {
                        let _ = log.write_all(format!("qemu: {l}\n").as_bytes()).await;
                        on_line(&format!("qemu: {l}"));
                    }
                    None => errs = None,
                },
                status = child.wait(), if lines.is_none() && errs.is_none() => {
                    break BootEnd::Exited { status: status.ok().and_then(|s| s.code()) };
                }
                () = &mut deadline => break BootEnd::TimedOut,
                changed = cancel.changed() => {
                    if changed.is_err() || *cancel.borrow() {
                        break BootEnd::Cancelled;
                    }
                }
            }
        };
        if !matches!(end, BootEnd::Exited { .. }) {
            // start_kill sends SIGKILL to the child's PID; wait reaps it.
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        let _ = log.flush().await;
        Ok(end)
    }
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Option<tokio::io::Lines<R>>,
) -> Option<String> {
    match lines {
        Some(l) => l.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// `qemu-system-x86_64 --version`'s first line, or why it is missing.
pub fn version(qemu: &Path) -> Result<String, QemuError> {
    let out = std::process::Command::new(qemu)
        .arg("--version")
        .output()
        .map_err(|source| QemuError::Spawn {
            qemu: qemu.display().to_string(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned())
}

/// Seconds since `t`, for reports.
pub fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_pins_size_and_accelerator() {
        let b = Boot {
            qemu: QEMU.into(),
            kernel: "/k/vmlinuz".into(),
            initrd: "/o/initramfs.cpio".into(),
            accel: Accel::Tcg,
            size: VmSize {
                memory_mib: 512,
                cpus: 1,
            },
            data: "/o/data.bin".into(),
            console_log: "/o/console.log".into(),
            timeout: Duration::from_secs(60),
            quiet: false,
        };
        let a = b.args().join(" ");
        assert!(a.contains("-accel tcg -m 512 -smp 1 -kernel /k/vmlinuz -initrd /o/initramfs.cpio"));
        assert!(a.contains("-no-reboot"));
        assert!(a.contains("-serial stdio -serial file:/o/data.bin"));
        assert!(!a.contains("-cpu host"));
        let k = Boot {
            accel: Accel::Kvm,
            ..b
        };
        assert!(k.args().join(" ").contains("-accel kvm -cpu host"));
    }

    /// A stand-in for QEMU (the deadline logic only reads the console): a script that
    /// prints one guest progress line every 0.5 s, twelve times (at least 6 s), then exits 0.
    fn slow_but_moving_guest(dir: &Path, quiet: bool) -> BootEnd {
        let qemu = dir.join("fake-qemu.sh");
        std::fs::write(
            &qemu,
            "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 0.5; echo \"tcplab-guest: s$i PASS\"; done\n",
        )
        .expect("write script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let boot = Boot {
            qemu,
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initramfs.cpio"),
            accel: Accel::Tcg,
            size: VmSize {
                memory_mib: 512,
                cpus: 1,
            },
            data: dir.join("data.bin"),
            console_log: dir.join("console.log"),
            timeout: Duration::from_secs(4),
            quiet,
        };
        let (_tx, rx) = watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(boot.run(|_| {}, rx)).expect("boot")
    }

    #[test]
    fn a_quiet_deadline_restarts_at_each_scenario_a_total_one_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        // At least 6 s in all (sleeps never end early), so a 4 s total deadline always cuts
        // it; the quiet one would need a 4 s stall between two lines to.
        assert_eq!(
            slow_but_moving_guest(dir.path(), true),
            BootEnd::Exited { status: Some(0) }
        );
        assert_eq!(slow_but_moving_guest(dir.path(), false), BootEnd::TimedOut);
    }
}
