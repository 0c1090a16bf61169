//! `--accel auto`: use KVM only when a probe boot of *this* kernel reaches userspace under
//! KVM in time. Some hosts offer a /dev/kvm on which stock kernels hang or die (nested,
//! paravirtual), so the device existing proves nothing. A probe costs up to
//! [`PROBE_TIMEOUT`], so its answer is cached next to the kernels, keyed by the kernel image,
//! the host kernel and the QEMU version.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use crate::job::{self, Job};
use crate::kernels::KernelImage;
use crate::place::BatchSpec;
use crate::qemu::{Accel, Boot, BootEnd};

/// How long a KVM probe boot may take to reach userspace (a working KVM boot takes ~1 s).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Directory in the kernel cache holding probe answers, one file per key (guests probe in
/// parallel: one shared file would lose answers).
pub const PROBE_CACHE: &str = "accel-probe";

/// The probe's cache key as a file name: kernel release and image size, host kernel, QEMU.
fn probe_key(kernel: &KernelImage, qemu_version: &str) -> String {
    let size = std::fs::metadata(&kernel.vmlinuz).map_or(0, |m| m.len());
    let key = format!(
        "{}_{size}_host-{}_{}",
        kernel.release,
        crate::place::host_release(),
        qemu_version
            .split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or("unknown")
    );
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// KVM if a probe boot works (or a cached probe said so), else TCG.
pub async fn choose(
    kernel: &KernelImage,
    spec: &BatchSpec,
    work: &Path,
    qemu_version: &str,
    cancel: watch::Receiver<bool>,
) -> Accel {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Accel::Tcg;
    }
    let dir = spec.cache.join(PROBE_CACHE);
    let cache_file = dir.join(probe_key(kernel, qemu_version));
    match std::fs::read_to_string(&cache_file)
        .as_deref()
        .map(str::trim)
    {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    let ok = probe_kvm(kernel, spec, work, cancel.clone()).await;
    // An interrupted probe proves nothing: do not remember it.
    if !*cancel.borrow() && std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(&cache_file, if ok { "kvm\n" } else { "tcg\n" });
    }
    if ok {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

async fn probe_kvm(
    kernel: &KernelImage,
    spec: &BatchSpec,
    work: &Path,
    cancel: watch::Receiver<bool>,
) -> bool {
    let job = Job {
        probe: true,
        ..Job::default()
    };
    let initrd = work.join("probe.cpio");
    let kernel_no_modules = KernelImage {
        modules: Vec::new(),
        ..kernel.clone()
    };
    let (binary, scratch) = (spec.binary.clone(), work.to_owned());
    let built = tokio::task::spawn_blocking(move || {
        crate::initramfs::build(&binary, &kernel_no_modules, &job, &[], &scratch)
    })
    .await;
    let Ok(Ok(bytes)) = built else {
        return false;
    };
    if std::fs::write(&initrd, bytes).is_err() {
        return false;
    }
    let boot = Boot {
        qemu: spec.qemu.clone(),
        kernel: kernel.vmlinuz.clone(),
        initrd: initrd.clone(),
        accel: Accel::Kvm,
        size: spec.size,
        data: work.join("probe-data.bin"),
        console_log: work.join("probe-console.log"),
        timeout: PROBE_TIMEOUT,
        quiet: false,
    };
    let mut seen = false;
    let end = boot
        .run(
            |l| {
                if l.contains(job::PROBE_MARKER) {
                    seen = true;
                }
            },
            cancel,
        )
        .await;
    for f in [&initrd, &boot.data, &boot.console_log] {
        let _ = std::fs::remove_file(f);
    }
    seen && matches!(end, Ok(BootEnd::Exited { .. }))
}
