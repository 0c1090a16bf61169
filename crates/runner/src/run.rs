//! Running a scenario: namespace, capture, server + client, classification, per-run check.
//!
//! **Fresh mode** (default): every run gets its own anonymous network namespace and its own
//! capture handle, so runs cannot influence each other. Opening and closing a packet socket
//! costs the kernel tens of milliseconds of *latency* (not CPU), so `jobs` workers run in
//! parallel and a capture handle is closed on a short-lived helper thread while the worker
//! starts the next run.
//!
//! **Pooled mode**: one namespace and one capture serve the whole batch. Each run uses a fresh
//! server port from [`POOL_PORTS`] (outside the ephemeral range used by clients), and packets
//! are split per run by that port. What could leak between runs is pinned
//! ([`PINNED_SYSCTLS`]: no TCP metrics cache), and `netns_pooled_matches_fresh` checks that both
//! modes give the same outcomes on the deterministic scenarios.
//!
//! **Link mode** (scenario table `[link]`): instead of one namespace and `lo`, a run gets a
//! [`DelayLink`]: a client-side and a server-side namespace joined by TUN devices whose relay
//! delays every packet by `delay_ms` one way. The server listens on 192.0.2.2 (2001:db8::2)
//! in the server side, the client connects from the client side, and the capture is taken on
//! the client side's TUN device (raw IP). Both programs run SCHED_FIFO there, so their close
//! delays hold on a loaded machine. Fresh mode only: pooled mode refuses such a scenario.
//!
//! A run is over when both programs have closed **and** the capture shows the teardown
//! complete (RST, or both FINs and the final ACK), or [`COMPLETE_TIMEOUT`] has passed; so no
//! packet of the run is missing and nothing waits for a fixed quiet period.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tcplab_capture::{
    CaptureConfig, CaptureError, DelayLink, DropStats, LinkError, LiveCapture, Netns, NetnsError,
    Priority, Record,
};
use tcplab_client::{run_client, ClientOptions, ClientReport};
use tcplab_server::{ConnectionReport, Server, ServerError, ServerOptions};
use tcplab_trace::render::{human, TextOptions};
use tcplab_trace::{Analysis, Closer, Side, TcpState, TeardownKind};

use crate::expect::{check_run, Observed};
use crate::results;
use crate::scenario::{IpVersion, Outcome, Scenario};

/// Sysctls set in every namespace before any socket exists. `tcp_no_metrics_save=1` keeps
/// the TCP metrics cache (RTT, ssthresh per destination, tcp(7)) from carrying one run's
/// measurements into the next, which matters in pooled mode where all runs talk to 127.0.0.1.
pub const PINNED_SYSCTLS: &[(&str, &str)] = &[("net.ipv4.tcp_no_metrics_save", "1")];

/// Sysctls whose values (as seen inside a fresh namespace) are recorded in meta.json because
/// they shape what a teardown looks like on the wire.
pub const RECORDED_SYSCTLS: &[&str] = &[
    "net.ipv4.tcp_no_metrics_save",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_autocorking",
    "net.ipv4.tcp_early_retrans",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.ip_local_port_range",
];

/// Server ports used in pooled mode, one per run, cycled. Below the ephemeral range
/// (32768–60999) so a client's port can never be mistaken for a server port.
pub const POOL_PORTS: std::ops::Range<u16> = 20000..32000;

// Checked at compile time: pooled server ports never overlap the ephemeral range.
const _: () = assert!(POOL_PORTS.end <= 32768 && POOL_PORTS.start > 1024);

/// Fixed server port in fresh mode (each namespace is private, so it never collides).
pub const FRESH_PORT: u16 = 60000;

/// How long to wait, after both programs closed, for the capture to show the teardown complete.
pub const COMPLETE_TIMEOUT: Duration = Duration::from_secs(2);

/// Socket timeouts given to both programs: a broken run ends instead of hanging a batch.
const PROGRAM_TIMEOUT_MS: f64 = 5_000.0;

/// A finished-run counter callback (called with the number of runs finished so far).
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// How to run a batch.
#[derive(Clone)]
pub struct RunOptions {
    /// Runs (the scenario's `repeat` unless the caller overrides it).
    pub repeat: u32,
    /// Parallel workers (at least 1).
    pub jobs: usize,
    /// Batch directory: `run-0001/{capture.pcap,analysis.json,report.txt}` go inside, plus
    /// what [`crate::results`] writes. `None`: nothing is written.
    pub out_dir: Option<PathBuf>,
    /// Keep the files of every run (else only of runs that failed, if `keep_failed`).
    pub keep_pcaps: bool,
    /// Keep the files of runs whose check failed (even when `keep_pcaps` is false).
    pub keep_failed: bool,
    /// One namespace and one capture for the whole batch.
    pub pooled: bool,
    /// Set to stop starting new runs; finished runs are returned.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Called after each finished run with the count so far.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("repeat", &self.repeat)
            .field("jobs", &self.jobs)
            .field("out_dir", &self.out_dir)
            .field("keep_pcaps", &self.keep_pcaps)
            .field("keep_failed", &self.keep_failed)
            .field("pooled", &self.pooled)
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.as_ref().map(|_| "Fn(u64)"))
            .finish()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            repeat: 1,
            jobs: 1,
            out_dir: None,
            keep_pcaps: false,
            keep_failed: true,
            pooled: false,
            cancel: None,
            progress: None,
        }
    }
}

impl RunOptions {
    /// Options for `scenario` with its own `repeat`.
    pub fn for_scenario(scenario: &Scenario) -> RunOptions {
        RunOptions {
            repeat: scenario.repeat,
            ..Default::default()
        }
    }
}

/// Why a batch could not run at all (a run that ran but went wrong is a [`RunOutcome`] with
/// `error` set instead).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A privilege is missing (creating a namespace or opening a capture was refused).
    #[error("{0}")]
    PermissionDenied(String),
    /// Setting up the shared namespace/capture of pooled mode failed.
    #[error("setting up the pooled namespace: {0}")]
    Setup(String),
    /// Writing results failed.
    #[error("writing results in {path}: {source}")]
    Results {
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// True when the environment lacks privileges (the CLI exits 2 with one line).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, RunError::PermissionDenied(_))
    }
}

/// What one run showed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// 0-based index in the batch (directories are `run-{index+1:04}`).
    pub index: u32,
    /// Address family.
    pub ip: IpVersion,
    /// The server port.
    pub port: u16,
    /// Teardown kind (`open` when nothing was captured).
    pub kind: TeardownKind,
    /// Who closed first.
    pub active_closer: Option<Closer>,
    /// Four-way: first FIN to the separate ACK of it, ns.
    pub fin_ack_delay_ns: Option<i64>,
    /// First FIN/RST to the end of the close, ns.
    pub close_duration_ns: Option<i64>,
    /// Whether the final ACK was captured.
    pub final_ack: bool,
    /// Packets of this run in the capture.
    pub packets: u64,
    /// Packets the kernel dropped from the capture while this run was in flight. A run with
    /// drops fails its check: its classification may be wrong.
    pub drops: u64,
    /// Client states inferred from the capture.
    pub client_states: Vec<TcpState>,
    /// Server states inferred from the capture.
    pub server_states: Vec<TcpState>,
    /// Warnings of the analysis (contract codes).
    pub warnings: Vec<String>,
    /// Why this run does not meet the expectation (None: it does).
    pub mismatch: Option<String>,
    /// The run could not be carried out as asked (socket error, no connection captured ...).
    pub error: Option<String>,
    /// Where its pcap was written, if it was kept.
    pub pcap: Option<PathBuf>,
    /// The run's directory, if its files were kept.
    pub dir: Option<PathBuf>,
    /// The human narration (only kept for runs with a mismatch).
    pub narration: Option<String>,
    /// Wall time of the run, capture setup to classification.
    pub elapsed: Duration,
}

impl RunOutcome {
    /// `three-way/server`.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            kind: self.kind,
            closer: self.active_closer,
        }
    }
}

/// Run `opts.repeat` runs of `scenario` (variants in turn), `opts.jobs` at a time.
/// Returns the finished runs in index order (fewer than `repeat` when cancelled).
pub fn run_repeated(scenario: &Scenario, opts: &RunOptions) -> Result<Vec<RunOutcome>, RunError> {
    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Results {
            path: dir.clone(),
            source,
        })?;
    }
    let cap = scenario.max_jobs.map_or(usize::MAX, |j| j as usize);
    let jobs = opts
        .jobs
        .clamp(1, 256)
        .min(cap)
        .min(opts.repeat.max(1) as usize);
    let pool = if opts.pooled {
        Some(Pool::open(scenario)?)
    } else {
        None
    };
    let next = AtomicU32::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<RunError>> = Mutex::new(None);
    let slots: Mutex<Vec<Option<RunOutcome>>> = Mutex::new(vec![None; opts.repeat as usize]);
    let cancelled = || {
        stop.load(Ordering::Relaxed)
            || opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    std::thread::scope(|sc| {
        for w in 0..jobs {
            let (next, done, fatal, slots, pool) = (&next, &done, &fatal, &slots, &pool);
            let cancelled = &cancelled;
            let stop = &stop;
            let worker_loop = move |closers: &mut Vec<std::thread::JoinHandle<()>>| loop {
                if cancelled() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.repeat {
                    return;
                }
                let ip = scenario.ip[i as usize % scenario.ip.len()];
                let r = match pool {
                    Some(p) => p.run(scenario, i, ip, opts),
                    None => run_fresh(scenario, i, ip, opts, closers),
                };
                // Reap the capture-closing helpers that are done (all are joined at the end).
                closers.retain(|h| !h.is_finished());
                match r {
                    Ok(o) => {
                        if let Ok(mut s) = slots.lock() {
                            if let Some(slot) = s.get_mut(i as usize) {
                                *slot = Some(o);
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(p) = &opts.progress {
                            p(n);
                        }
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            };
            let body = move || {
                let mut closers: Vec<std::thread::JoinHandle<()>> = Vec::new();
                worker_loop(&mut closers);
                for h in closers {
                    let _ = h.join();
                }
            };
            // Pooled workers live in the shared namespace: threads they start inherit it.
            match pool {
                Some(p) => {
                    let h = p.ns.spawn_scoped_in(sc, w, body);
                    if let Err(e) = h {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(e);
                        }
                    }
                }
                None => {
                    let spawned = std::thread::Builder::new()
                        .name(format!("tcplab-run-{w}"))
                        .spawn_scoped(sc, body);
                    if let Err(e) = spawned {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(RunError::Setup(format!("spawning a worker: {e}")));
                        }
                    }
                }
            }
        }
    });
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    let outcomes: Vec<RunOutcome> = slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    Ok(outcomes)
}

/// Check that this process may create namespaces and captures: one namespace, one capture.
pub fn check_privileges() -> Result<(), RunError> {
    let ns = Netns::new().map_err(netns_fatal)?;
    let cap = LiveCapture::open(&ns, &fresh_capture_config()).map_err(capture_fatal)?;
    drop(cap);
    Ok(())
}

fn netns_fatal(e: NetnsError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot create a private network namespace: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

fn capture_fatal(e: CaptureError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot capture packets: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

fn fresh_capture_config() -> CaptureConfig {
    CaptureConfig {
        // A run is about ten frames; a small ring is quicker to map and tear down.
        buffer_bytes: 256 << 10,
        ..CaptureConfig::default()
    }
}

/// Write a `net.*` sysctl from the calling thread, which must be inside the run's namespace
/// (`/proc/sys/net` resolves against the calling thread's namespace). Avoids the extra thread
/// per key of `Netns::set_sysctl` on the fresh-mode hot path.
fn set_sysctl_here(name: &str, value: &str) -> Result<(), String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::write(&path, value).map_err(|e| format!("sysctl {name}={value}: {e}"))
}

/// What the two programs reported.
#[derive(Debug, Default)]
struct Programs {
    server: Option<ConnectionReport>,
    client: Option<ClientReport>,
    error: Option<String>,
}

/// The server's options for a run of `s` listening on `address:port`.
fn server_options(s: &Scenario, address: IpAddr, port: u16) -> ServerOptions {
    ServerOptions {
        address,
        port,
        count: 1,
        close_delay_ms: s.server.close_delay_ms.0,
        close: s.server.close,
        read_request: s.server.read_request,
        nodelay: s.server.nodelay,
        quickack: s.server.quickack,
        accept_timeout_ms: PROGRAM_TIMEOUT_MS,
        io_timeout_ms: PROGRAM_TIMEOUT_MS,
    }
}

/// The client's options for a run of `s`.
fn client_options(s: &Scenario) -> ClientOptions {
    ClientOptions {
        count: 1,
        close_delay_ms: s.client.close_delay_ms.0,
        close: s.client.close,
        read_response: s.client.read_response,
        nodelay: s.client.nodelay,
        quickack: s.client.quickack,
        connect_timeout_ms: PROGRAM_TIMEOUT_MS,
        io_timeout_ms: PROGRAM_TIMEOUT_MS,
    }
}

/// Bind, serve one connection on a helper thread, run the client here. The calling thread must
/// be inside the namespace (threads it spawns inherit it).
fn exchange_here(s: &Scenario, ip: IpVersion, port: u16) -> Programs {
    let server = Server::bind(&server_options(s, ip.loopback(), port));
    let copts = client_options(s);
    serve_and_connect(server, |addr| {
        run_client(&copts, addr).map_err(|e| e.to_string())
    })
}

/// Serve one connection of the bound `server` on a helper thread while `client` connects to
/// it on this one. The listening socket carries its namespace: the helper thread's own
/// namespace does not matter.
fn serve_and_connect(
    server: Result<Server, ServerError>,
    client: impl FnOnce(SocketAddr) -> Result<ClientReport, String>,
) -> Programs {
    let server = match server {
        Ok(sv) => sv,
        Err(e) => {
            return Programs {
                error: Some(format!("server: {e}")),
                ..Default::default()
            }
        }
    };
    let addr: SocketAddr = server.local_addr();
    std::thread::scope(|sc| {
        let h = std::thread::Builder::new()
            .name("tcplab-server".into())
            .spawn_scoped(sc, || server.serve_one());
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                return Programs {
                    error: Some(format!("spawning the server thread: {e}")),
                    ..Default::default()
                }
            }
        };
        let client = client(addr);
        let server = match h.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("thread panicked".into()),
        };
        programs(client, server)
    })
}

/// What both programs reported, errors joined.
fn programs(
    client: Result<ClientReport, String>,
    server: Result<ConnectionReport, String>,
) -> Programs {
    let mut p = Programs::default();
    let mut errs = Vec::new();
    match client {
        Ok(c) => p.client = Some(c),
        Err(e) => errs.push(format!("client: {e}")),
    }
    match server {
        Ok(r) => p.server = Some(r),
        Err(e) => errs.push(format!("server: {e}")),
    }
    if !errs.is_empty() {
        p.error = Some(errs.join("; "));
    }
    p
}

/// True when the capture shows the run's teardown complete.
fn teardown_complete(a: &Analysis) -> bool {
    match a.connections.as_slice() {
        [c] => match c.teardown.kind {
            TeardownKind::Reset => true,
            TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Simultaneous => {
                c.teardown.final_ack
            }
            TeardownKind::Incomplete | TeardownKind::Open => false,
        },
        _ => false,
    }
}

fn analyze_pcap(pcap: &[u8], source: &str) -> Result<Analysis, String> {
    tcplab_trace::analyze(pcap, source).map_err(|e| format!("analysing the capture: {e}"))
}

fn to_pcap(link_type: u32, snaplen: u32, records: Vec<Record>) -> Vec<u8> {
    tcplab_capture::Packets {
        link_type,
        snaplen,
        records,
        stats: DropStats::default(),
    }
    .to_pcap()
}

/// Read the capture until it shows the whole teardown (or [`COMPLETE_TIMEOUT`] passes):
/// the frames, the kernel's drop count, and a read error if one ended the wait.
fn collect_until_complete(
    cap: &mut LiveCapture,
    snaplen: u32,
) -> (Vec<Record>, u64, Option<String>) {
    let mut records = Vec::new();
    let mut drops = 0u64;
    let deadline = Instant::now() + COMPLETE_TIMEOUT;
    let mut capture_error = None;
    loop {
        match cap.take() {
            Ok(p) => {
                drops += u64::from(p.stats.dropped) + u64::from(p.stats.if_dropped);
                records.extend(p.records);
            }
            Err(e) => {
                capture_error = Some(format!("capture: {e}"));
                break;
            }
        }
        let pcap = to_pcap(cap.link_type(), snaplen, records.clone());
        let done = analyze_pcap(&pcap, "capture.pcap")
            .map(|a| teardown_complete(&a))
            .unwrap_or(false);
        if done || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    (records, drops, capture_error)
}

/// Write the pinned and the scenario's sysctls from the calling thread (inside a namespace);
/// the failures, joined, if any.
fn set_sysctls_here(s: &Scenario) -> Result<(), String> {
    let mut failed = Vec::new();
    for (k, v) in PINNED_SYSCTLS
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(s.sysctl.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        if let Err(e) = set_sysctl_here(k, v) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

fn run_fresh(
    s: &Scenario,
    index: u32,
    ip: IpVersion,
    opts: &RunOptions,
    closers: &mut Vec<std::thread::JoinHandle<()>>,
) -> Result<RunOutcome, RunError> {
    if let Some(link) = &s.link {
        return run_fresh_link(s, index, ip, opts, closers, link.delay());
    }
    let start = Instant::now();
    let ns = Netns::new().map_err(netns_fatal)?;
    let config = fresh_capture_config();
    let mut cap = match LiveCapture::open(&ns, &config) {
        Ok(c) => c,
        Err(e) if e.is_permission_denied() => return Err(capture_fatal(e)),
        Err(e) => {
            return Ok(failed(
                index,
                ip,
                FRESH_PORT,
                format!("capture: {e}"),
                start,
            ))
        }
    };
    let programs = ns.run(|| match set_sysctls_here(s) {
        Ok(()) => exchange_here(s, ip, FRESH_PORT),
        Err(e) => Programs {
            error: Some(e),
            ..Default::default()
        },
    });
    let programs = match programs {
        Ok(p) => p,
        Err(e) if e.is_permission_denied() => return Err(netns_fatal(e)),
        Err(e) => Programs {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    let (records, drops, capture_error) = collect_until_complete(&mut cap, config.snaplen);
    let link_type = cap.link_type();
    // pcap_close waits in the kernel (packet socket teardown); the namespace goes with it.
    // Neither affects the result, so let a helper thread wait for them.
    // If the helper cannot be spawned, the closure (with cap and ns) is dropped right here.
    if let Ok(h) = std::thread::Builder::new()
        .name("tcplab-cap-close".into())
        .spawn(move || {
            drop(cap);
            drop(ns);
        })
    {
        closers.push(h);
    }
    let pcap = to_pcap(link_type, config.snaplen, records);
    let mut o = finish_run(s, index, ip, FRESH_PORT, pcap, drops, programs, opts, start)?;
    if let Some(e) = capture_error {
        o.error.get_or_insert(e.clone());
        o.mismatch.get_or_insert(e);
    }
    Ok(o)
}

/// A fresh run across a [`DelayLink`]: server in the server-side namespace on 192.0.2.2 /
/// 2001:db8::2, client in the client-side namespace, capture on the client side's TUN device.
fn run_fresh_link(
    s: &Scenario,
    index: u32,
    ip: IpVersion,
    opts: &RunOptions,
    closers: &mut Vec<std::thread::JoinHandle<()>>,
    delay: Duration,
) -> Result<RunOutcome, RunError> {
    let start = Instant::now();
    let link = DelayLink::new(delay).map_err(link_fatal)?;
    let config = CaptureConfig {
        device: link.capture_device().into(),
        ..fresh_capture_config()
    };
    let mut cap = match LiveCapture::open(link.client_ns(), &config) {
        Ok(c) => c,
        Err(e) if e.is_permission_denied() => return Err(capture_fatal(e)),
        Err(e) => {
            return Ok(failed(
                index,
                ip,
                FRESH_PORT,
                format!("capture: {e}"),
                start,
            ))
        }
    };
    let programs = match exchange_over_link(s, ip, &link, FRESH_PORT) {
        Ok(p) => p,
        Err(e) if e.is_permission_denied() => return Err(netns_fatal(e)),
        Err(e) => Programs {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    let (records, drops, capture_error) = collect_until_complete(&mut cap, config.snaplen);
    let link_type = cap.link_type();
    let link_stats = link.stats();
    let link_error = if !link.is_running() {
        Some("the delay link's relay stopped during the run".to_owned())
    } else if link_stats.dropped > 0 {
        Some(format!(
            "the delay link dropped {} packet(s)",
            link_stats.dropped
        ))
    } else {
        None
    };
    // As in run_fresh: closing the capture, the TUN devices and two namespaces waits in the
    // kernel and does not affect the result.
    if let Ok(h) = std::thread::Builder::new()
        .name("tcplab-link-close".into())
        .spawn(move || {
            drop(cap);
            drop(link);
        })
    {
        closers.push(h);
    }
    let pcap = to_pcap(link_type, config.snaplen, records);
    let mut o = finish_run(s, index, ip, FRESH_PORT, pcap, drops, programs, opts, start)?;
    for e in [capture_error, link_error].into_iter().flatten() {
        o.error.get_or_insert(e.clone());
        o.mismatch.get_or_insert(e);
    }
    Ok(o)
}

/// Set the sysctls on both sides, bind the server in the server-side namespace, and run the
/// client in the client-side namespace against it.
///
/// Both programs run on SCHED_FIFO threads ([`Priority::Realtime`]), like the link's relay:
/// the scenario's promise is "both close within the one-way delay of each other", and on a
/// loaded machine a normal thread waking from its close delay can be late by more than that
/// (measured: 24 ms late with four parallel runs and three CPU hogs on two cores).
fn exchange_over_link(
    s: &Scenario,
    ip: IpVersion,
    link: &DelayLink,
    port: u16,
) -> Result<Programs, NetnsError> {
    let server_ip = match ip {
        IpVersion::Ipv4 => IpAddr::V4(link.server_addr()),
        IpVersion::Ipv6 => IpAddr::V6(link.server_addr_v6()),
    };
    let failed = |e: String| Programs {
        error: Some(e),
        ..Default::default()
    };
    if let Err(e) = link.client_ns().run(|| set_sysctls_here(s))? {
        return Ok(failed(e));
    }
    let sopts = server_options(s, server_ip, port);
    let server = match link
        .server_ns()
        .run(|| set_sysctls_here(s).map(|()| Server::bind(&sopts)))?
    {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => return Ok(failed(format!("server: {e}"))),
        Err(e) => return Ok(failed(e)),
    };
    // The listening socket is bound (and listening) in the server-side namespace; the
    // client's socket is created by a thread in the client-side namespace.
    let addr = server.local_addr();
    let server = link
        .server_ns()
        .spawn_with("tcplab-server", Priority::Realtime, move || {
            server.serve_one()
        })?;
    let copts = client_options(s);
    let client = link
        .client_ns()
        .spawn_with("tcplab-client", Priority::Realtime, move || {
            run_client(&copts, addr)
        });
    // If the client thread could not start, the server gives up after its accept timeout.
    let client = client.and_then(|c| c.join());
    let server = server.join();
    Ok(programs(
        client?.map_err(|e| e.to_string()),
        server?.map_err(|e| e.to_string()),
    ))
}

fn link_fatal(e: LinkError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot build the delay link: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

fn failed(index: u32, ip: IpVersion, port: u16, error: String, start: Instant) -> RunOutcome {
    RunOutcome {
        index,
        ip,
        port,
        kind: TeardownKind::Open,
        active_closer: None,
        fin_ack_delay_ns: None,
        close_duration_ns: None,
        final_ack: false,
        packets: 0,
        drops: 0,
        client_states: Vec::new(),
        server_states: Vec::new(),
        warnings: Vec::new(),
        mismatch: Some(error.clone()),
        error: Some(error),
        pcap: None,
        dir: None,
        narration: None,
        elapsed: start.elapsed(),
    }
}

/// Classify, check, write the run's files.
#[allow(clippy::too_many_arguments)]
fn finish_run(
    s: &Scenario,
    index: u32,
    ip: IpVersion,
    port: u16,
    pcap: Vec<u8>,
    drops: u64,
    programs: Programs,
    opts: &RunOptions,
    start: Instant,
) -> Result<RunOutcome, RunError> {
    let mut o = failed(index, ip, port, String::new(), start);
    o.mismatch = None;
    o.error = programs.error.clone();
    o.drops = drops;
    let analysis = match analyze_pcap(&pcap, "capture.pcap") {
        Ok(a) => Some(a),
        Err(e) => {
            o.error.get_or_insert(e);
            None
        }
    };
    if let Some(a) = &analysis {
        o.packets = a.file.packets;
        match a.connections.as_slice() {
            [c] => {
                o.kind = c.teardown.kind;
                o.active_closer = c.teardown.active_closer;
                o.fin_ack_delay_ns = c.teardown.fin_ack_delay_ns;
                o.close_duration_ns = c.teardown.close_duration_ns;
                o.final_ack = c.teardown.final_ack;
                o.client_states = c.states[Side::Client.idx()].states();
                o.server_states = c.states[Side::Server.idx()].states();
                o.warnings = c.warnings.iter().map(|w| w.to_string()).collect();
            }
            [] => {
                o.error
                    .get_or_insert_with(|| "no connection captured".into());
            }
            many => {
                o.error.get_or_insert_with(|| {
                    format!("{} connections captured, expected 1", many.len())
                });
            }
        }
    }
    o.mismatch = if let Some(e) = &o.error {
        Some(e.clone())
    } else if o.drops > 0 {
        Some(format!(
            "the capture dropped {} packet(s): classification not trusted",
            o.drops
        ))
    } else {
        check_run(
            &s.expect,
            &Observed {
                outcome: o.outcome(),
                fin_ack_delay_ns: o.fin_ack_delay_ns,
                client_states: &o.client_states,
                server_states: &o.server_states,
            },
        )
    };
    let narration = analysis.as_ref().map(|a| {
        let mut buf = Vec::new();
        let _ = human::render(a, &TextOptions::default(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let keep = opts.keep_pcaps || (opts.keep_failed && o.mismatch.is_some());
    if let (Some(batch), true) = (&opts.out_dir, keep) {
        let dir = batch.join(results::run_dir_name(index));
        results::write_run(
            &dir,
            &pcap,
            analysis.as_ref(),
            narration.as_deref().unwrap_or(""),
            &o,
            programs.server.as_ref(),
            programs.client.as_ref(),
        )?;
        o.pcap = Some(dir.join(results::PCAP_FILE));
        o.dir = Some(dir);
    }
    if o.mismatch.is_some() {
        o.narration = narration;
    }
    o.elapsed = start.elapsed();
    Ok(o)
}

// ------------------------------------------------------------------------------------------
// Pooled mode
// ------------------------------------------------------------------------------------------

/// The shared namespace and capture of pooled mode. Any worker that needs packets polls the
/// capture and files every frame under its run's server port.
struct Pool {
    ns: Netns,
    state: Mutex<PoolState>,
    next_port: AtomicU32,
    snaplen: u32,
}

struct PoolState {
    cap: LiveCapture,
    buckets: HashMap<u16, Vec<Record>>,
    /// Frames for no registered port (should stay 0).
    stray: u64,
    /// Kernel drops since the capture opened.
    dropped: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

/// `Netns::spawn` takes `'static` closures; workers borrow the batch state, so they are scoped
/// threads that enter the namespace themselves through a dup of its fd. This is the one place
/// where the runner enters a namespace on its own (the capture crate has no scoped spawn).
trait SpawnScopedIn {
    fn spawn_scoped_in<'scope, 'env, F>(
        &'env self,
        sc: &'scope std::thread::Scope<'scope, 'env>,
        worker: usize,
        f: F,
    ) -> Result<(), RunError>
    where
        F: FnOnce() + Send + 'scope;
}

impl SpawnScopedIn for Netns {
    fn spawn_scoped_in<'scope, 'env, F>(
        &'env self,
        sc: &'scope std::thread::Scope<'scope, 'env>,
        worker: usize,
        f: F,
    ) -> Result<(), RunError>
    where
        F: FnOnce() + Send + 'scope,
    {
        // `Netns::run` blocks until its closure returns, so run it on a scoped thread: that
        // thread waits inside `run` while the namespace thread does the work.
        std::thread::Builder::new()
            .name(format!("tcplab-pool-{worker}"))
            .spawn_scoped(sc, move || {
                // A failure to enter the namespace means the worker does no run; the batch
                // then ends with fewer outcomes, which the verdict reports.
                let _ = self.run(f);
            })
            .map(|_| ())
            .map_err(|e| RunError::Setup(format!("spawning a pooled worker: {e}")))
    }
}

impl Pool {
    fn open(s: &Scenario) -> Result<Pool, RunError> {
        if s.link.is_some() {
            // Each run needs its own delay link (two namespaces); one shared link would need
            // per-run routing of the server side. Not supported: say so instead of running
            // on loopback.
            return Err(RunError::Setup(format!(
                "{}: scenarios with [link] run in fresh mode only (drop --pooled)",
                s.name()
            )));
        }
        let ns = Netns::new().map_err(netns_fatal)?;
        for (k, v) in PINNED_SYSCTLS
            .iter()
            .map(|(k, v)| (*k, *v))
            .chain(s.sysctl.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            ns.set_sysctl(k, v).map_err(netns_fatal)?;
        }
        let config = CaptureConfig {
            filter: format!("tcp portrange {}-{}", POOL_PORTS.start, POOL_PORTS.end - 1),
            ..CaptureConfig::default()
        };
        let cap = LiveCapture::open(&ns, &config).map_err(capture_fatal)?;
        Ok(Pool {
            ns,
            state: Mutex::new(PoolState {
                cap,
                buckets: HashMap::new(),
                stray: 0,
                dropped: 0,
            }),
            next_port: AtomicU32::new(0),
            snaplen: config.snaplen,
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, PoolState>, RunError> {
        self.state
            .lock()
            .map_err(|_| RunError::Setup("pooled capture state poisoned by a panic".into()))
    }

    fn next_port(&self) -> u16 {
        let span = u32::from(POOL_PORTS.end - POOL_PORTS.start);
        let n = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
        // n < span <= u16::MAX, so the sum stays in POOL_PORTS.
        POOL_PORTS.start + u16::try_from(n).unwrap_or(0)
    }

    /// Read everything the capture has and file it by port.
    fn poll(st: &mut PoolState) -> Result<(), String> {
        let p = st.cap.take().map_err(|e| format!("capture: {e}"))?;
        st.dropped += u64::from(p.stats.dropped) + u64::from(p.stats.if_dropped);
        for r in p.records {
            let port = r.tcp_ports().and_then(|(a, b)| {
                if POOL_PORTS.contains(&a) {
                    Some(a)
                } else if POOL_PORTS.contains(&b) {
                    Some(b)
                } else {
                    None
                }
            });
            match port.and_then(|p| st.buckets.get_mut(&p)) {
                Some(v) => v.push(r),
                None => st.stray += 1,
            }
        }
        Ok(())
    }

    /// One run; the calling thread is a pooled worker inside the namespace.
    fn run(
        &self,
        s: &Scenario,
        index: u32,
        ip: IpVersion,
        opts: &RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let start = Instant::now();
        let port = self.next_port();
        let (link_type, dropped_before) = {
            let mut st = self.lock()?;
            // A port comes round again only after POOL_PORTS.len() runs; anything still filed
            // under it belongs to a finished run.
            st.buckets.insert(port, Vec::new());
            (st.cap.link_type(), st.dropped)
        };
        let programs = exchange_here(s, ip, port);
        let deadline = Instant::now() + COMPLETE_TIMEOUT;
        let mut capture_error = None;
        let (records, drops) = loop {
            let recs = {
                let mut st = self.lock()?;
                if let Err(e) = Pool::poll(&mut st) {
                    capture_error = Some(e);
                }
                st.buckets.get(&port).cloned().unwrap_or_default()
            };
            // Classify outside the lock: other workers keep polling meanwhile.
            let done = analyze_pcap(&to_pcap(link_type, self.snaplen, recs), "capture.pcap")
                .map(|a| teardown_complete(&a))
                .unwrap_or(false);
            if done || capture_error.is_some() || Instant::now() >= deadline {
                let mut st = self.lock()?;
                if let Err(e) = Pool::poll(&mut st) {
                    capture_error.get_or_insert(e);
                }
                let recs = st.buckets.remove(&port).unwrap_or_default();
                break (recs, st.dropped - dropped_before);
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let pcap = to_pcap(link_type, self.snaplen, records);
        let mut o = finish_run(s, index, ip, port, pcap, drops, programs, opts, start)?;
        if let Some(e) = capture_error {
            o.error.get_or_insert(e.clone());
            o.mismatch.get_or_insert(e);
        }
        Ok(o)
    }
}
