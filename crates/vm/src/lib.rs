//! tcplab-vm: run tcplab's scenarios on other Linux kernels, in QEMU guests.
//!
//! - [`build`]: `tcplab kernels build` — a tcplab-ready kernel from a source tree or
//!   Debian's `linux-source-X`, out of tree in the cache, incremental.
//! - [`kernels`]: the kernel cache — `apt-get download` + `dpkg-deb`, nothing installed.
//! - [`initramfs`] ([`cpio`]): the guest's root: the running `tcplab` binary as `/init`, its
//!   shared libraries, the job, the scenario files, the kernel's own modules.
//! - [`qemu`]: one boot — command line, console, timeout, stop by PID (tokio).
//! - [`accel`]: `--accel auto` (KVM only where a probe boot works).
//! - [`guest`]: what `/init` does inside the VM: mounts, modules, capability checks, then
//!   `tcplab run --json` as a child — the host's code, unchanged — and the result stream.
//! - [`wire`]: that stream (JSON lines + the results tree) on the second serial port.
//! - [`place`]: where a batch runs — the host or a guest — behind one `run`, both giving the
//!   JSON objects of `tcplab run --json` plus the kernel and the run conditions.

pub mod accel;
pub mod build;
pub mod bzimage;
pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod job;
pub mod kernels;
pub mod modules;
pub mod place;
pub mod qemu;
pub mod wire;

pub use kernels::{CachedKernel, KernelError, KernelImage};
pub use place::{AccelChoice, BatchResult, BatchSpec, Place};
pub use qemu::{Accel, VmSize};
