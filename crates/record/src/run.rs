//! One run: a line of `runs.jsonl`, an entry of summary.json's `run_outcomes`, a sweep record.
//!
//! On disk the record is flat (`server_close_delay_ms`, `client_wake_late_ms`, `mismatch` ...,
//! the names scripts read); in Rust it is nested by side and its problems are data. The
//! conversion between the two is [`RunWire`], private to this file: the only place the flat
//! names live.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problem::{Problem, Problems, Side};

/// One run of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RunWire", into = "RunWire")]
pub struct RunRecord {
    /// 1-based run number in the batch (directories are `run-{run:04}`).
    pub run: u32,
    /// `ipv4` / `ipv6`.
    pub ip: String,
    /// The server port.
    pub port: u16,
    /// Teardown kind of the client's capture (`open` when nothing was captured).
    pub kind: String,
    /// Who closed first (`client`, `server`, `both`), when known.
    pub active_closer: Option<String>,
    /// `kind/closer`, the key of a batch's `counts`.
    pub outcome: String,
    /// The final ACK was captured.
    pub final_ack: bool,
    /// Four-way: first FIN to its separate ACK, ms.
    pub fin_ack_delay_ms: Option<f64>,
    /// First FIN/RST to the end of the close, ms.
    pub close_duration_ms: Option<f64>,
    /// Packets of the run in its capture.
    pub packets: u64,
    /// Packets the capture(s) dropped while the run was in flight.
    pub drops: u64,
    /// FIN retransmissions (on a link: the larger count of the two ends' captures).
    pub fin_retransmits: u32,
    /// Warnings of the analysis (contract codes).
    pub warnings: Vec<String>,
    /// The client program and socket.
    pub client: SideRecord,
    /// The server program and socket.
    pub server: SideRecord,
    /// On a link: what each end's capture saw.
    pub views: Views,
    /// The kernel's own states, compared with the capture's.
    pub kernel: KernelRecord,
    /// The client's second connection on the same 4-tuple (`reconnect_after_ms`): its
    /// `kind/closer` in the capture, when it was made and captured.
    pub reconnect_outcome: Option<String>,
    /// What went wrong, in the order it was found (empty: the run passed).
    pub problems: Vec<Problem>,
    /// Earlier tries of this run that were timing misses (each was run again).
    pub timing_retries: u32,
    /// The run's directory, when its files were kept.
    pub dir: Option<String>,
    /// Wall time of the run, capture setup to classification, ms.
    pub elapsed_ms: f64,
    /// Segments the link's script put on the wire (`[[link.inject]]`), in the order sent.
    /// They are not counted in either side's `segments`/`rsts`: those are the kernels'.
    pub injected: Vec<InjectedRecord>,
}

/// One segment forged or replayed by the link (`[[link.inject]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedRecord {
    /// Which `[[link.inject]]` of the scenario sent it (1 = the first).
    pub inject: u32,
    /// The end it was sent to (`client` / `server`); it claims to come from the other.
    pub to: String,
    /// Its flags in packetdrill's letters (`R`, `R.`, `S`, `P.`; `.` = ACK).
    pub flags: String,
    /// Sequence number (absolute).
    pub seq: u32,
    /// Acknowledgment number (absolute; 0 without ACK).
    pub ack: u32,
    /// Payload bytes.
    pub len: u32,
    /// A replay of a segment an end sent (false: forged by the link).
    pub replay: bool,
}

/// One side of a run: its program's timing and its socket's states.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideRecord {
    /// The program's close delay on its own clock (last I/O to its shutdown/close call), ms.
    pub close_delay_ms: Option<f64>,
    /// How late the program ran: its last read/write returned this long after its data was
    /// on the wire, or its close(2) took this long (the larger), ms.
    pub wake_late_ms: Option<f64>,
    /// States inferred from the capture (contract spelling).
    pub states: Vec<String>,
    /// The kernel's own states of this side's socket, when they were recorded.
    pub kernel_states: Option<Vec<String>>,
    /// What each socket call of the program returned (`connect`, `send`, `recv`, `shutdown`,
    /// `close` ... → `ok`, `eof` or the errno's name), when the program reported.
    pub calls: Option<BTreeMap<String, String>>,
    /// How long the program's close(2) (or shutdown) blocked, ms, when it reported.
    pub close_blocked_ms: Option<f64>,
    /// Segments this side sent, in the (client's) capture.
    #[serde(default)]
    pub segments: Option<u32>,
    /// RSTs this side sent, in the capture (counted there: the kernel's tcp_send_reset
    /// misses RSTs sent from TIME_WAIT or without a socket before 6.10).
    #[serde(default)]
    pub rsts: Option<u32>,
    /// The kernel's own reason for each RST this side sent, in order (live runs with kernel
    /// tracepoints: `tcp:tcp_send_reset`'s name such as `TCP_STATE`, or `not reported by
    /// this kernel` before Linux 6.10, or `not recorded`).
    #[serde(default)]
    pub rst_reasons: Option<Vec<String>>,
    /// How long this side's TIME_WAIT was set to last, ms: sock_diag's `idiag_expires` of
    /// its timewait socket when the run ended plus the time since the full socket's swap for
    /// it (the kernel's own figure; 60 000 on Linux). `None`: not in TIME_WAIT.
    #[serde(default)]
    pub time_wait_ms: Option<u64>,
    /// The client's second connection on the same 4-tuple (`reconnect_after_ms`): how long
    /// its connect(2) took, ms. `None`: no second connection was made.
    #[serde(default)]
    pub reconnect_connect_ms: Option<f64>,
}

/// On a link, each end has its own capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Views {
    /// The verdict of the server's capture (`capture-server.pcap`).
    pub server: Option<ViewRecord>,
    /// The two captures disagree on the kind (flagged, not failed: each end saw what
    /// reached it).
    pub disagree: bool,
}

/// What one capture of a run says about the teardown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// Who closed first.
    pub active_closer: Option<String>,
    /// Packets the capture dropped.
    pub drops: u64,
    /// FIN retransmissions seen.
    pub fin_retransmits: u32,
    /// The final ACK was captured.
    pub final_ack: bool,
    /// Teardown kind.
    pub kind: String,
    /// `kind/closer`.
    pub outcome: String,
    /// Packets of the run in this capture.
    pub packets: u64,
}

/// The kernel's own account of the run's sockets (states per side are in [`SideRecord`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelRecord {
    /// What the kernel could not tell (tracepoints missing ...), when states were recorded.
    pub error: Option<String>,
    /// Differences between kernel and capture states that are expected, explained.
    pub explained: Vec<String>,
    /// Differences between kernel and capture states nobody explained: flagged.
    pub disagreements: Vec<String>,
}

impl RunRecord {
    /// The run met its expectation: no problem that fails it.
    pub fn passed(&self) -> bool {
        !self.problems.iter().any(Problem::fails)
    }

    /// Why the run does not meet its expectation: the first problem that fails it.
    pub fn mismatch(&self) -> Option<&Problem> {
        Problems::mismatch(self.problems.as_slice())
    }

    /// Why the run could not be carried out: its first [`Problem::RunFailed`].
    pub fn error(&self) -> Option<&str> {
        Problems::error(self.problems.as_slice())
    }

    /// The programs missed their knobs: not the kernel's outcome.
    pub fn timing_miss(&self) -> Option<&Problem> {
        Problems::timing_miss(self.problems.as_slice())
    }

    /// One side.
    pub fn side(&self, side: Side) -> &SideRecord {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }
}

/// The on-disk shape (fields in the order serde_json's map writes them: alphabetical).
#[derive(Serialize, Deserialize)]
struct RunWire {
    active_closer: Option<String>,
    // Added 2026-12-04 (program call results): absent in older files.
    #[serde(default)]
    client_calls: Option<BTreeMap<String, String>>,
    #[serde(default)]
    client_close_blocked_ms: Option<f64>,
    // Added 2026-12-04 (packet shape): absent in older files.
    // Added 2026-12-07 (the kernel's RST reasons): absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_rst_reasons: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_rsts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_segments: Option<u32>,
    // Added 2026-12-07 (TIME_WAIT's length): absent in older files and where no TIME_WAIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_time_wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_reconnect_connect_ms: Option<f64>,
    client_close_delay_ms: Option<f64>,
    client_wake_late_ms: Option<f64>,
    close_duration_ms: Option<f64>,
    dir: Option<String>,
    drops: u64,
    elapsed_ms: f64,
    error: Option<String>,
    fin_ack_delay_ms: Option<f64>,
    fin_retransmits: u32,
    final_ack: bool,
    ip: String,
    kernel_disagreements: Vec<String>,
    kernel_explained: Vec<String>,
    kernel_states: Option<KernelStatesWire>,
    kind: String,
    mismatch: Option<String>,
    outcome: String,
    packets: u64,
    passed: bool,
    port: u16,
    /// Added with this crate; files written before it derive their problems from the texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<Problem>>,
    // Added 2026-12-07 (second connection on the same 4-tuple).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reconnect_outcome: Option<String>,
    run: u32,
    #[serde(default)]
    server_calls: Option<BTreeMap<String, String>>,
    #[serde(default)]
    server_close_blocked_ms: Option<f64>,
    // Added 2026-12-07 (the kernel's RST reasons): absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_rst_reasons: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_rsts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_segments: Option<u32>,
    // Added 2026-12-07 (TIME_WAIT's length): absent in older files and where no TIME_WAIT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_time_wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_reconnect_connect_ms: Option<f64>,
    server_close_delay_ms: Option<f64>,
    server_view: Option<ViewRecord>,
    server_wake_late_ms: Option<f64>,
    states: StatesWire,
    timing_miss: Option<String>,
    timing_retries: u32,
    views_disagree: bool,
    warnings: Vec<String>,
    // Added 2026-12-07 (`[[link.inject]]`): absent in older files and in runs without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    injected: Vec<InjectedRecord>,
}

#[derive(Serialize, Deserialize)]
struct KernelStatesWire {
    client: Vec<String>,
    error: Option<String>,
    server: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StatesWire {
    client: Vec<String>,
    server: Vec<String>,
}

impl From<RunRecord> for RunWire {
    fn from(r: RunRecord) -> RunWire {
        let error = r.error().map(str::to_owned);
        let mismatch = r.mismatch().map(|p| p.to_string());
        let timing_miss = r.timing_miss().map(|p| p.to_string());
        let passed = r.passed();
        let kernel_states = match (&r.client.kernel_states, &r.server.kernel_states) {
            (None, None) => None,
            (c, s) => Some(KernelStatesWire {
                client: c.clone().unwrap_or_default(),
                error: r.kernel.error.clone(),
                server: s.clone().unwrap_or_default(),
            }),
        };
        RunWire {
            active_closer: r.active_closer,
            client_calls: r.client.calls,
            client_close_blocked_ms: r.client.close_blocked_ms,
            client_rsts: r.client.rsts,
            client_rst_reasons: r.client.rst_reasons.clone(),
            client_segments: r.client.segments,
            client_time_wait_ms: r.client.time_wait_ms,
            client_reconnect_connect_ms: r.client.reconnect_connect_ms,
            client_close_delay_ms: r.client.close_delay_ms,
            client_wake_late_ms: r.client.wake_late_ms,
            close_duration_ms: r.close_duration_ms,
            dir: r.dir,
            drops: r.drops,
            elapsed_ms: r.elapsed_ms,
            error,
            fin_ack_delay_ms: r.fin_ack_delay_ms,
            fin_retransmits: r.fin_retransmits,
            final_ack: r.final_ack,
            ip: r.ip,
            kernel_disagreements: r.kernel.disagreements,
            kernel_explained: r.kernel.explained,
            kernel_states,
            kind: r.kind,
            mismatch,
            outcome: r.outcome,
            packets: r.packets,
            passed,
            port: r.port,
            problems: Some(r.problems),
            reconnect_outcome: r.reconnect_outcome,
            run: r.run,
            server_calls: r.server.calls,
            server_close_blocked_ms: r.server.close_blocked_ms,
            server_rsts: r.server.rsts,
            server_rst_reasons: r.server.rst_reasons.clone(),
            server_segments: r.server.segments,
            server_time_wait_ms: r.server.time_wait_ms,
            server_reconnect_connect_ms: r.server.reconnect_connect_ms,
            server_close_delay_ms: r.server.close_delay_ms,
            server_view: r.views.server,
            server_wake_late_ms: r.server.wake_late_ms,
            states: StatesWire {
                client: r.client.states,
                server: r.server.states,
            },
            timing_miss,
            timing_retries: r.timing_retries,
            views_disagree: r.views.disagree,
            warnings: r.warnings,
            injected: r.injected,
        }
    }
}

impl From<RunWire> for RunRecord {
    fn from(w: RunWire) -> RunRecord {
        let problems = w.problems.unwrap_or_else(|| {
            // Written before problems were data: only their texts are known.
            let mut v = Vec::new();
            if let Some(e) = &w.error {
                v.push(Problem::RunFailed { error: e.clone() });
            }
            if let Some(m) = w.mismatch.as_ref().filter(|m| Some(*m) != w.error.as_ref()) {
                v.push(Problem::Mismatch { detail: m.clone() });
            }
            if let Some(t) = &w.timing_miss {
                v.push(Problem::TimingNoted { text: t.clone() });
            }
            v
        });
        let (kc, ks, kerr) = match w.kernel_states {
            Some(k) => (Some(k.client), Some(k.server), k.error),
            None => (None, None, None),
        };
        RunRecord {
            run: w.run,
            ip: w.ip,
            port: w.port,
            kind: w.kind,
            active_closer: w.active_closer,
            outcome: w.outcome,
            final_ack: w.final_ack,
            fin_ack_delay_ms: w.fin_ack_delay_ms,
            close_duration_ms: w.close_duration_ms,
            packets: w.packets,
            drops: w.drops,
            fin_retransmits: w.fin_retransmits,
            warnings: w.warnings,
            client: SideRecord {
                close_delay_ms: w.client_close_delay_ms,
                wake_late_ms: w.client_wake_late_ms,
                states: w.states.client,
                kernel_states: kc,
                calls: w.client_calls,
                close_blocked_ms: w.client_close_blocked_ms,
                segments: w.client_segments,
                rsts: w.client_rsts,
                rst_reasons: w.client_rst_reasons,
                time_wait_ms: w.client_time_wait_ms,
                reconnect_connect_ms: w.client_reconnect_connect_ms,
            },
            server: SideRecord {
                close_delay_ms: w.server_close_delay_ms,
                wake_late_ms: w.server_wake_late_ms,
                states: w.states.server,
                kernel_states: ks,
                calls: w.server_calls,
                close_blocked_ms: w.server_close_blocked_ms,
                segments: w.server_segments,
                rsts: w.server_rsts,
                rst_reasons: w.server_rst_reasons,
                time_wait_ms: w.server_time_wait_ms,
                reconnect_connect_ms: w.server_reconnect_connect_ms,
            },
            views: Views {
                server: w.server_view,
                disagree: w.views_disagree,
            },
            reconnect_outcome: w.reconnect_outcome,
            kernel: KernelRecord {
                error: kerr,
                explained: w.kernel_explained,
                disagreements: w.kernel_disagreements,
            },
            problems,
            timing_retries: w.timing_retries,
            dir: w.dir,
            elapsed_ms: w.elapsed_ms,
            injected: w.injected,
        }
    }
}
