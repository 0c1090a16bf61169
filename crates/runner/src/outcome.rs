//! A run's plain data: what one run showed ([`RunOutcome`]), how to run a batch
//! ([`RunOptions`]), why a batch could not run ([`RunError`]), and the constants every place
//! shares. Nothing here runs anything, so every module may import it without a circle.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tcplab_record::{
    InjectedRecord, KernelRecord, Problem, Problems, RunRecord, SideRecord, ViewRecord, Views,
};
use tcplab_trace::{Closer, TcpState, TeardownKind};

use crate::kernel_states::KernelStates;
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
/// a [`Problem::RunFailed`] instead).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A privilege is missing (creating a namespace or opening a capture was refused).
    #[error("{0}")]
    PermissionDenied(String),
    /// Setting up the shared namespace/capture of pooled mode failed.
    #[error("setting up the pooled namespace: {0}")]
    Setup(String),
    /// The batch's directory could not be made (the cause says why).
    #[error("creating the results directory under {}: {cause}", root.display())]
    CreateBatch {
        /// `--out`.
        root: PathBuf,
        /// What failed (not a `#[source]`: the message already says it, once).
        cause: Box<RunError>,
    },
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
    /// What went wrong, in the order it was found (empty: the run met its expectation).
    /// The first problem that [fails](Problem::fails) the run is its `mismatch`, the first
    /// [`Problem::RunFailed`] its `error`, a timing problem its `timing_miss`.
    pub problems: Vec<Problem>,
    /// Where its pcap was written, if it was kept.
    pub pcap: Option<PathBuf>,
    /// The run's directory, if its files were kept.
    pub dir: Option<PathBuf>,
    /// The human narration (only kept for runs with a mismatch).
    pub narration: Option<String>,
    /// Wall time of the run, capture setup to classification.
    pub elapsed: Duration,
    /// What each program did with its close delay, ns (`crate::timing::measure`): held
    /// as measured until the record writes it in ms.
    pub measured: Measured,
    /// Earlier tries of this run that were timing misses (each was run again).
    pub timing_retries: u32,
    /// FIN retransmissions (on a link: the larger count of the two ends' captures).
    pub fin_retransmits: u32,
    /// On a link: the verdict of the server's own capture (`capture-server.pcap`).
    pub server_view: Option<ViewVerdict>,
    /// On a link: the two ends' captures disagree on the kind (flagged, not failed: each
    /// end saw what reached it).
    pub views_disagree: bool,
    /// The kernel's own states of both sockets (fresh namespace and link runs).
    pub kernel: Option<KernelStates>,
    /// Differences between kernel and capture states that are expected, explained.
    pub kernel_explained: Vec<String>,
    /// Differences between kernel and capture states nobody explained: flagged.
    pub kernel_disagreements: Vec<String>,
    /// The link relay may lose or aim faults at segments (`[link]` loss or faults): FIN
    /// retransmissions are then no kernel change.
    pub link_impaired: bool,
    /// What the client's socket calls returned.
    pub client_calls: Option<tcplab_client::Calls>,
    /// What the server's socket calls returned.
    pub server_calls: Option<tcplab_client::Calls>,
    /// How long the client's close(2) blocked, ns.
    pub client_close_blocked_ns: Option<i64>,
    /// How long the server's close(2) blocked, ns.
    pub server_close_blocked_ns: Option<i64>,
    /// Segments and RSTs per sender in the (client's) capture; segments the link's script
    /// put on the wire are not counted (they are in `injected`).
    pub shape: Option<PacketShape>,
    /// The kernel's own reason for each RST the client (0) and the server (1) sent, in
    /// order (empty without kernel states; see `run::finish::rst_reasons`).
    pub rst_reasons: [Vec<tcplab_trace::KernelReason>; 2],
    /// Segments the link forged or replayed (`[[link.inject]]`), in the order sent.
    pub injected: Vec<tcplab_capture::InjectedSegment>,
    /// The client's second connection (`reconnect_after_ms`), when it made one.
    pub reconnect: Option<ReconnectSeen>,
}

/// What the client's second connection on the same 4-tuple showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectSeen {
    /// How long its connect(2) took, ns (a SYN into TIME_WAIT accepted at once, or answered
    /// with an ACK and retransmitted after the 1 s SYN RTO).
    pub connect_ns: Option<i64>,
    /// Its teardown in the capture (the capture's second connection), when captured.
    pub outcome: Option<Outcome>,
}

/// What each program did with its close delay knob, ns, on its own clock and against the
/// capture (`crate::timing` measures it; one unit from the measurement to the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    /// Server: its last I/O to its shutdown/close call (its own clock).
    pub server_close_delay_ns: Option<i64>,
    /// Client: its last I/O to its shutdown/close call (its own clock).
    pub client_close_delay_ns: Option<i64>,
    /// Server: how late it ran — its last read or write returned this long after its data
    /// was on the wire (or its close(2) took this long, whichever is more).
    pub server_wake_late_ns: Option<i64>,
    /// Client: the same.
    pub client_wake_late_ns: Option<i64>,
    /// Server: its answer to its second line (`more_after_ms`), on its own clock.
    pub server_more_delay_ns: Option<i64>,
}

/// What one capture of a run says about the teardown.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewVerdict {
    /// Kind.
    pub kind: TeardownKind,
    /// Who closed first.
    pub active_closer: Option<Closer>,
    /// The final ACK was captured.
    pub final_ack: bool,
    /// FIN retransmissions seen.
    pub fin_retransmits: u32,
    /// Packets of the run in this capture.
    pub packets: u64,
    /// Packets the kernel dropped from this capture.
    pub drops: u64,
}

impl ViewVerdict {
    /// `three-way/server`.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            kind: self.kind,
            closer: self.active_closer,
        }
    }
}

impl RunOutcome {
    /// `three-way/server`.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            kind: self.kind,
            closer: self.active_closer,
        }
    }

    /// Why this run does not meet the expectation (None: it does).
    pub fn mismatch(&self) -> Option<&Problem> {
        Problems::mismatch(self.problems.as_slice())
    }

    /// The run could not be carried out as asked (socket error, no connection captured ...).
    pub fn error(&self) -> Option<&str> {
        Problems::error(self.problems.as_slice())
    }

    /// The programs missed their knobs ([`crate::timing`]): not the kernel's outcome.
    pub fn timing_miss(&self) -> Option<&Problem> {
        Problems::timing_miss(self.problems.as_slice())
    }

    /// The run as it is written to runs.jsonl and summary.json.
    pub fn record(&self) -> RunRecord {
        let ms = |ns: Option<i64>| ns.map(|n| n as f64 / 1e6);
        let names =
            |v: &[TcpState]| -> Vec<String> { v.iter().map(|s| s.as_str().to_owned()).collect() };
        let kernel = |client: bool| self.kernel.as_ref().map(|k| names(&k.states(client)));
        let reasons = |i: usize| {
            self.kernel.as_ref()?;
            Some(self.rst_reasons[i].iter().map(|r| r.text()).collect())
        };
        // `Calls` serializes as call name → result word, which is the record's map.
        let calls = |c: &Option<tcplab_client::Calls>| {
            c.as_ref()
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| serde_json::from_value(v).ok())
        };
        RunRecord {
            run: self.index + 1,
            ip: self.ip.as_str().to_owned(),
            port: self.port,
            kind: self.kind.as_str().to_owned(),
            active_closer: self.active_closer.map(|c| c.as_str().to_owned()),
            outcome: self.outcome().key(),
            final_ack: self.final_ack,
            fin_ack_delay_ms: ms(self.fin_ack_delay_ns),
            close_duration_ms: ms(self.close_duration_ns),
            packets: self.packets,
            drops: self.drops,
            fin_retransmits: self.fin_retransmits,
            warnings: self.warnings.clone(),
            client: SideRecord {
                close_delay_ms: ms(self.measured.client_close_delay_ns),
                wake_late_ms: ms(self.measured.client_wake_late_ns),
                states: names(&self.client_states),
                kernel_states: kernel(true),
                calls: calls(&self.client_calls),
                close_blocked_ms: ms(self.client_close_blocked_ns),
                segments: self.shape.map(|s| s.segments[0]),
                rsts: self.shape.map(|s| s.rsts[0]),
                rst_reasons: reasons(0),
                time_wait_ms: self.kernel.as_ref().and_then(|k| k.time_wait_ms[0]),
                reconnect_connect_ms: self
                    .reconnect
                    .and_then(|r| r.connect_ns)
                    .map(|n| n as f64 / 1e6),
            },
            server: SideRecord {
                close_delay_ms: ms(self.measured.server_close_delay_ns),
                wake_late_ms: ms(self.measured.server_wake_late_ns),
                states: names(&self.server_states),
                kernel_states: kernel(false),
                calls: calls(&self.server_calls),
                close_blocked_ms: ms(self.server_close_blocked_ns),
                segments: self.shape.map(|s| s.segments[1]),
                rsts: self.shape.map(|s| s.rsts[1]),
                rst_reasons: reasons(1),
                time_wait_ms: self.kernel.as_ref().and_then(|k| k.time_wait_ms[1]),
                reconnect_connect_ms: None,
            },
            views: Views {
                server: self.server_view.as_ref().map(|v| ViewRecord {
                    active_closer: v.active_closer.map(|c| c.as_str().to_owned()),
                    drops: v.drops,
                    fin_retransmits: v.fin_retransmits,
                    final_ack: v.final_ack,
                    kind: v.kind.as_str().to_owned(),
                    outcome: v.outcome().key(),
                    packets: v.packets,
                }),
                disagree: self.views_disagree,
            },
            reconnect_outcome: self.reconnect.and_then(|r| r.outcome).map(|o| o.key()),
            kernel: KernelRecord {
                error: self.kernel.as_ref().and_then(|k| k.error.clone()),
                explained: self.kernel_explained.clone(),
                disagreements: self.kernel_disagreements.clone(),
            },
            problems: self.problems.clone(),
            timing_retries: self.timing_retries,
            dir: self.dir.as_ref().map(|d| d.display().to_string()),
            elapsed_ms: self.elapsed.as_secs_f64() * 1e3,
            injected: self
                .injected
                .iter()
                .map(|i| InjectedRecord {
                    inject: u32::try_from(i.index + 1).unwrap_or(u32::MAX),
                    to: i.to.as_str().to_owned(),
                    flags: i.flags.to_string(),
                    seq: i.seq,
                    ack: i.ack,
                    len: i.len,
                    replay: i.replay,
                })
                .collect(),
        }
    }
}

/// Where [`crate::run::run_streaming`] hands each finished run: called in index order, one call at a
/// time (from whichever worker finished the run that completes the order). An `Err` stops
/// the batch and is returned.
pub type RunSink<'a> = dyn FnMut(RunOutcome) -> Result<(), RunError> + Send + 'a;

/// The packet shape of a run's connection, per sender (index 0 = client, 1 = server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketShape {
    /// Segments each side sent.
    pub segments: [u32; 2],
    /// RSTs each side sent.
    pub rsts: [u32; 2],
}

impl PacketShape {
    /// Counted from a connection's stored packets.
    pub fn of(c: &tcplab_trace::Connection) -> PacketShape {
        let mut s = PacketShape::default();
        for p in &c.packets {
            let i = p.from.idx();
            s.segments[i] += 1;
            if p.flags.rst() {
                s.rsts[i] += 1;
            }
        }
        s
    }
}
