//! tcplab-capture: private network namespaces and live libpcap capture for tcplab runs.
//!
//! - [`netns`]: an anonymous network namespace per run ([`Netns`]), with `lo` up, threads
//!   that enter it ([`Netns::spawn`], [`Netns::run`]) and per-namespace sysctls
//!   ([`Netns::set_sysctl`]). Nothing is named or mounted, so nothing can leak.
//! - [`live`]: libpcap on `lo` inside that namespace ([`LiveCapture`]): immediate mode,
//!   nanosecond timestamps, BPF filter, kernel drop counters, classic pcap output.
//! - [`link`]: two namespaces joined by a TUN link with a fixed one-way delay
//!   ([`DelayLink`]), made in user space (no netem here), so that FINs can cross on purpose.
//! - [`ktrace`]: the kernel's own TCP state changes (tracepoints via a private ftrace
//!   instance, or perf_event_open; attributed by socket cookie) and TIME_WAIT sockets (sock_diag).
//! - [`impair`]: what the link does on top of the delay: seeded loss and jitter, and faults
//!   aimed at one segment (drop / delay / duplicate the server's first FIN ...).
//! - [`script`]: scripted segments on the link: a forged or replayed segment at a named
//!   moment ("an in-window RST to the client 50 ms after its final ACK"), one segment held
//!   behind another; each one put on the wire is recorded ([`InjectedSegment`]).
//!
//! Everything here needs CAP_SYS_ADMIN (unshare/setns) and CAP_NET_RAW (packet sockets); a
//! missing privilege is reported as an error for which `is_permission_denied()` is true.
//! `nix` and `pcap` wrap nearly all system calls; those left (`sched_setscheduler`, the TUN ioctl)
//! are the crate's only `unsafe`, in `src/sys/`.
//!
//! ```no_run
//! use std::time::Duration;
//! use tcplab_capture::{CaptureConfig, LiveCapture, Netns};
//!
//! let ns = Netns::new()?;
//! ns.set_sysctl("net.ipv4.tcp_no_metrics_save", "1")?;
//! let mut cap = LiveCapture::open(&ns, &CaptureConfig { filter: "tcp port 60000".into(), ..Default::default() })?;
//! let worker = ns.spawn("experiment", || { /* server + client on 127.0.0.1:60000 */ })?;
//! worker.join()?;
//! let done = cap.finish(Duration::from_millis(50), Duration::from_secs(2))?;
//! done.packets.write_pcap("run.pcap".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod impair;
pub mod ktrace;
pub mod link;
mod link_error;
pub mod live;
pub mod netns;
pub mod script;
mod sys;
mod tracefs;
pub mod veth;

pub use impair::{End, Fault, FaultAction, Impairments, SegmentKind, SegmentSpec};
pub use ktrace::{KernelEvent, KernelEventKind, KernelTrace, TraceBackend, TraceError};
pub use link::{DelayLink, LinkError, LinkStats, ScriptReport};
pub use live::{
    CaptureConfig, CaptureError, DropStats, Finished, LiveCapture, Packets, Readable, Record,
};
pub use netns::{Netns, NetnsError, NsThread, Priority};
pub use script::{
    Flags, Forge, InjectAction, InjectedSegment, Injection, Reorder, Script, SeqExpr,
};
