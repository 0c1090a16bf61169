//! The kernel's own states of a run's two sockets, next to the capture's inferred ones.
//!
//! A place starts a [`KernelRecorder`] before the programs run (filtered to the run's server
//! port), asks it whether both sockets are gone while it waits for the teardown, and ends it
//! with the programs' socket cookies and the namespace's TIME_WAIT cookies (sock_diag).
//! [`KernelStates`] is what the run reports; [`compare`] sets it beside the capture's view.

use tcplab_capture::ktrace::{self, kernel_state_name, KernelEvent};
use tcplab_capture::ktrace::{DiagPoller, TimeWaitSocket};
use tcplab_capture::{KernelEventKind, KernelTrace, Netns, TraceBackend};
use tcplab_trace::TcpState;

use std::sync::{Arc, Mutex, Weak};

use crate::outcome::{FRESH_PORT, POOL_PORTS};

// The plain data lives beneath the run (`kernel_states.rs`), so that `outcome.rs` can hold
// it without importing this module back; these are its public paths.
pub use crate::kernel_states::{
    KernelRst, KernelState, KernelStates, SOURCE_POLLING, SOURCE_TRACEPOINT, SOURCE_TRACEPOINT_PERF,
};

/// How often the fallback polls.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_micros(500);

/// How long a batch's shared trace keeps events: far longer than any run.
const KEEP_EVENTS_NS: u64 = 30_000_000_000;

/// How often a batch's trace forgets old sockets (pruning walks the whole index).
const PRUNE_EVERY_NS: u64 = 1_000_000_000;

/// The process's trace and when it was last pruned (CLOCK_REALTIME ns).
#[derive(Debug)]
pub(crate) struct Shared {
    trace: KernelTrace,
    pruned_ns: u64,
}

impl Shared {
    fn new(mut trace: KernelTrace) -> Shared {
        // Runs find their sockets through the trace's index; a log of every event of a
        // long batch would only cost memory.
        trace.stop_log();
        Shared {
            trace,
            pruned_ns: 0,
        }
    }
}

/// One tracepoint recording shared by every run of every batch of the process. Making a
/// tracefs instance and switching it to the `mono` clock each wait for the kernel's RCU
/// synchronisation (~210 ms natively, ~1.7 s in a TCG guest), which per batch was most of a
/// short scenario's setup; since events are attributed by socket cookie (and RSTs by ports
/// and time), runs of any batch, also concurrent ones, share one recording exactly. Its
/// filter covers every place's ports: [`FRESH_PORT`] and [`POOL_PORTS`]. Dropped (fds
/// closed, instance removed) with the last [`SharedTrace`] handle and [`KernelTraceKeeper`].
#[derive(Debug)]
pub(crate) struct SharedTrace {
    trace: Result<std::sync::Mutex<Shared>, String>,
}

/// Who holds the process's trace: the batches running now (weakly, through the `Arc`s
/// their places hold) and, between batches, the keepers.
struct ProcessSlot {
    keepers: usize,
    kept: Option<Arc<SharedTrace>>,
    live: Weak<SharedTrace>,
}

static PROCESS_TRACE: Mutex<ProcessSlot> = Mutex::new(ProcessSlot {
    keepers: 0,
    kept: None,
    live: Weak::new(),
});

fn process_slot() -> std::sync::MutexGuard<'static, ProcessSlot> {
    // The slot holds no invariant a panicking holder could break half-way.
    PROCESS_TRACE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the process's kernel trace between batches while it lives: a command that runs
/// many batches (`tcplab run DIR`, a guest's whole suite) makes one at its start, so the
/// trace is set up once, not once per scenario. Without a keeper a trace lives as long as
/// the batches using it (concurrent batches still share one). When the last keeper goes
/// and no batch runs, the trace ends and its tracefs instance is removed.
#[derive(Debug)]
#[must_use = "the trace is kept only while the keeper lives"]
pub struct KernelTraceKeeper {
    _private: (),
}

impl KernelTraceKeeper {
    /// Keep the process's trace (the next batch starts it, if none runs now).
    pub fn new() -> KernelTraceKeeper {
        let mut slot = process_slot();
        slot.keepers += 1;
        if slot.kept.is_none() {
            slot.kept = slot.live.upgrade();
        }
        KernelTraceKeeper { _private: () }
    }
}

impl Default for KernelTraceKeeper {
    fn default() -> Self {
        KernelTraceKeeper::new()
    }
}

impl Drop for KernelTraceKeeper {
    fn drop(&mut self) {
        let kept = {
            let mut slot = process_slot();
            slot.keepers = slot.keepers.saturating_sub(1);
            if slot.keepers == 0 {
                slot.kept.take()
            } else {
                None
            }
        };
        // Outside the lock: ending a trace removes its instance (a tracefs write).
        drop(kept);
    }
}

impl SharedTrace {
    /// The process's trace: the one running batches (or a keeper) hold, else a new one.
    pub fn of_process() -> Arc<SharedTrace> {
        let mut slot = process_slot();
        if let Some(t) = slot.live.upgrade() {
            return t;
        }
        // Started under the lock: two batches starting at once share one start.
        let t = Arc::new(SharedTrace::start());
        slot.live = Arc::downgrade(&t);
        if slot.keepers > 0 {
            slot.kept = Some(Arc::clone(&t));
        }
        t
    }

    fn start() -> SharedTrace {
        SharedTrace {
            trace: KernelTrace::start_ports_and_ranges(&[FRESH_PORT], &[POOL_PORTS])
                .map(|t| std::sync::Mutex::new(Shared::new(t)))
                .map_err(|e| format!("kernel trace: {e}")),
        }
    }

    /// A recorder for one run: the shared trace, or (without it) sock_diag polling of the
    /// run's `namespaces`.
    pub fn recorder(&self, namespaces: &[&Netns]) -> KernelRecorder<'_> {
        let trace = match &self.trace {
            Ok(t) => {
                let lost = t.lock().map(|t| t.trace.lost()).unwrap_or(0);
                Ok(Recording::Tracepoints(t, lost))
            }
            Err(trace_err) => DiagPoller::start(namespaces, POLL_INTERVAL)
                .map(Recording::Polling)
                .map_err(|e| format!("{trace_err}; sock_diag polling: {e}")),
        };
        KernelRecorder {
            trace,
            started_ns: realtime_ns(),
        }
    }
}

/// A run's recording in progress (or the reason there is none).
#[derive(Debug)]
pub(crate) struct KernelRecorder<'a> {
    trace: Result<Recording<'a>, String>,
    /// CLOCK_REALTIME when the run began: no RST of it is older.
    started_ns: u64,
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// The run's two ports (client, server) from its sockets' state events.
fn ports_of(mine: &[Option<Vec<KernelEvent>>; 2]) -> Option<(u16, u16)> {
    for (i, evs) in mine.iter().enumerate() {
        let found = evs.iter().flatten().find_map(|e| match e.kind {
            KernelEventKind::SetState { .. } if e.sport != 0 && e.dport != 0 => {
                Some((e.sport, e.dport))
            }
            _ => None,
        });
        if let Some((local, remote)) = found {
            return Some(if i == 0 {
                (local, remote)
            } else {
                (remote, local)
            });
        }
    }
    None
}

#[derive(Debug)]
enum Recording<'a> {
    /// The batch's trace, and its lost-record count when the run started.
    Tracepoints(&'a std::sync::Mutex<Shared>, u64),
    Polling(DiagPoller),
}

impl KernelRecorder<'_> {
    /// True when both sockets' ends are recorded (or nothing can be recorded).
    pub fn done(&mut self, cookies: &[u64]) -> bool {
        match &mut self.trace {
            Ok(Recording::Tracepoints(t, _)) => {
                t.lock().map_or(true, |mut t| t.trace.destroyed(cookies))
            }
            Ok(Recording::Polling(p)) => {
                let s = p.samples();
                cookies.iter().all(|c| {
                    s.get(c)
                        .and_then(|v| v.last())
                        .is_some_and(|(_, st)| *st == ktrace::TCP_TIME_WAIT || *st == 7)
                })
            }
            Err(_) => true,
        }
    }

    /// Stop and attribute: `cookies` = (client, server) from the programs' reports,
    /// `time_wait` = the sockets sock_diag found in TIME_WAIT (or why it could not look),
    /// `captured_until_ns` = the run's last captured packet (CLOCK_REALTIME): every RST the
    /// capture holds was traced before it.
    pub fn finish(
        self,
        cookies: (Option<u64>, Option<u64>),
        time_wait: Result<Vec<TimeWaitSocket>, String>,
        captured_until_ns: u64,
    ) -> KernelStates {
        let started_ns = self.started_ns;
        let (events, lost, source, rsts_sent) = match self.trace {
            Ok(Recording::Tracepoints(t, lost_before)) => match t.lock() {
                Ok(mut shared) => {
                    let Shared {
                        trace: t,
                        pruned_ns,
                    } = &mut *shared;
                    let source = match t.backend() {
                        TraceBackend::Tracefs => SOURCE_TRACEPOINT,
                        TraceBackend::Perf => SOURCE_TRACEPOINT_PERF,
                    };
                    // One read serves every run whose sockets it finds; most runs find
                    // theirs already read (by another run's read, or by `done`).
                    let known =
                        |t: &KernelTrace, c: Option<u64>| c.is_none_or(|c| t.socket(c).is_some());
                    if !(known(t, cookies.0) && known(t, cookies.1)) {
                        t.poll();
                    }
                    let mine = [cookies.0, cookies.1].map(|c| {
                        let c = c?;
                        let v = t.socket(c).map(<[KernelEvent]>::to_vec);
                        t.forget(c);
                        v
                    });
                    // RSTs sent without a socket (none left, or a timewait one) belong to
                    // no socket above: found by the run's ports and time instead.
                    let rsts_sent = match ports_of(&mine) {
                        Some((c, s)) => {
                            t.read_after(captured_until_ns);
                            t.resets(c, s, started_ns)
                        }
                        None => Vec::new(),
                    };
                    let lost = t.lost() - lost_before;
                    // By the wall clock (the events' clock), not by the newest event: one odd
                    // timestamp must not make the trace forget other runs' sockets.
                    let now = realtime_ns();
                    if now.saturating_sub(*pruned_ns) > PRUNE_EVERY_NS {
                        t.prune_before(now.saturating_sub(KEEP_EVENTS_NS));
                        *pruned_ns = now;
                    }
                    (mine, lost, source, rsts_sent)
                }
                Err(_) => return KernelStates::missing("kernel trace poisoned".into()),
            },
            Ok(Recording::Polling(p)) => return polled(p, cookies, time_wait),
            Err(e) => return KernelStates::missing(e),
        };
        if lost > 0 {
            return KernelStates::missing(format!(
                "kernel trace: the kernel lost {lost} trace record(s) during this run"
            ));
        }
        let mut out = KernelStates {
            source: Some(source),
            rsts_sent: rsts_sent
                .iter()
                .filter_map(|e| match e.kind {
                    KernelEventKind::SendReset { reason, .. } => Some(KernelRst {
                        ts_ns: e.ts_ns,
                        sport: e.sport,
                        dport: e.dport,
                        reason,
                        reason_name: reason.and_then(ktrace::reset_reason_name),
                    }),
                    _ => None,
                })
                .collect(),
            reasons_reported: ktrace::reset_reasons_reported(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        let tw = match time_wait {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("sock_diag: {e}"));
                Vec::new()
            }
        };
        for (i, (side, cookie)) in [("client", cookies.0), ("server", cookies.1)]
            .into_iter()
            .enumerate()
        {
            let Some(cookie) = cookie else {
                errors.push(format!("the {side} reported no socket cookie"));
                continue;
            };
            let Some(evs) = &events[i] else {
                errors.push(format!(
                    "the {side} socket's end was not recorded (still open?)"
                ));
                continue;
            };
            let timewait = tw.iter().find(|t| t.cookie == cookie);
            let (states, retransmits, resets) = states_of(evs, timewait.is_some());
            // Entered TIME_WAIT (or, for an orphan, its FIN_WAIT_2 substate) at the swap:
            // the last state, the TIME_WAIT it became.
            out.time_wait_ms[i] = timewait
                .zip(states.last())
                .map(|(t, last)| t.lasts_ms(last.ts_ns));
            out.resets[i] = resets;
            if i == 0 {
                out.client = states;
            } else {
                out.server = states;
            }
            out.retransmits[i] = retransmits;
        }
        if !errors.is_empty() {
            out.error = Some(errors.join("; "));
        }
        out
    }
}

/// The states the sock_diag poller saw for the two cookies.
/// The TIME_WAIT lookups are the same exact sock_diag lookups as with tracepoints (they need
/// no privilege beyond the namespace's own): how long each TIME_WAIT is set to last is
/// reckoned from the first sample that saw the socket in TIME_WAIT, which is at most one poll
/// interval after it was entered (so at most that much short).
fn polled(
    p: DiagPoller,
    cookies: (Option<u64>, Option<u64>),
    time_wait: Result<Vec<TimeWaitSocket>, String>,
) -> KernelStates {
    let samples = match p.finish() {
        Ok(s) => s,
        Err(e) => return KernelStates::missing(e),
    };
    let mut out = KernelStates {
        source: Some(SOURCE_POLLING),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let tw = time_wait.unwrap_or_else(|e| {
        errors.push(format!("sock_diag: {e}"));
        Vec::new()
    });
    for (i, (side, cookie)) in [("client", cookies.0), ("server", cookies.1)]
        .into_iter()
        .enumerate()
    {
        let v = cookie.and_then(|c| samples.get(&c));
        let Some(v) = v else {
            errors.push(format!("sock_diag never saw the {side} socket"));
            continue;
        };
        out.time_wait_ms[i] = tw
            .iter()
            .find(|t| Some(t.cookie) == cookie)
            .zip(v.iter().find(|(_, st)| *st == ktrace::TCP_TIME_WAIT))
            .map(|(t, (entered_ns, _))| t.lasts_ms(*entered_ns));
        let states = v
            .iter()
            .filter_map(|(ts, st)| {
                let state = kernel_state_name(*st).and_then(TcpState::from_name)?;
                Some(KernelState {
                    ts_ns: *ts,
                    state,
                    via_sock_diag: true,
                })
            })
            .collect();
        if i == 0 {
            out.client = states;
        } else {
            out.server = states;
        }
    }
    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    out
}

/// The states one socket's events show; with `time_wait`, its final CLOSED (the swap for a
/// timewait socket) becomes TIME_WAIT. Also its retransmission and RST counts.
fn states_of(events: &[KernelEvent], time_wait: bool) -> (Vec<KernelState>, u32, u32) {
    let mut v = Vec::new();
    let mut retransmits = 0;
    let mut resets = 0;
    for e in events {
        match e.kind {
            KernelEventKind::SetState { new, .. } => {
                if let Some(state) = kernel_state_name(new).and_then(TcpState::from_name) {
                    v.push(KernelState {
                        ts_ns: e.ts_ns,
                        state,
                        via_sock_diag: false,
                    });
                }
            }
            KernelEventKind::Retransmit { .. } => retransmits += 1,
            KernelEventKind::SendReset { .. } => resets += 1,
            KernelEventKind::Destroy { .. } => {}
        }
    }
    if time_wait {
        match v.last_mut() {
            Some(last) if last.state == TcpState::Closed => {
                last.state = TcpState::TimeWait;
                last.via_sock_diag = true;
            }
            _ => {}
        }
    }
    (v, retransmits, resets)
}

/// Which of the run's `sockets` (local, remote, cookie) the calling thread's namespace holds
/// in TIME_WAIT (run it inside one). Exact lookups: a dump would cost the kernel a walk of
/// every socket of the machine, and a pooled namespace holds thousands in TIME_WAIT.
pub(crate) fn time_wait_here(
    sockets: &[(std::net::SocketAddr, std::net::SocketAddr, u64)],
) -> Result<Vec<TimeWaitSocket>, String> {
    ktrace::time_wait_of(sockets).map_err(|e| e.to_string())
}

/// Where the kernel's and the capture's states of one side differ, in words:
/// (`explained`, `unexplained`).
pub fn compare(
    side: &str,
    capture: &[TcpState],
    kernel: &[TcpState],
) -> (Vec<String>, Vec<String>) {
    let mut explained = Vec::new();
    let mut flagged = Vec::new();
    for st in kernel.iter().filter(|s| !capture.contains(s)) {
        let fw1_then_tw = capture
            .windows(2)
            .any(|w| w == [TcpState::FinWait1, TcpState::TimeWait]);
        if *st == TcpState::FinWait2 && fw1_then_tw {
            explained.push(format!(
                "{side}: the kernel passed FIN_WAIT_2, which the capture skips \
                 (FIN_WAIT_1 → TIME_WAIT): it handles the ACK of the peer's FIN+ACK before \
                 the FIN, so the socket is in FIN_WAIT_2 for an instant"
            ));
        } else if *st == TcpState::Closed && capture.last() == Some(&TcpState::TimeWait) {
            explained.push(format!(
                "{side}: the kernel shows CLOSED where the capture ends in TIME_WAIT: the full \
                 socket was swapped for a timewait socket that sock_diag did not find"
            ));
        } else {
            flagged.push(format!(
                "{side}: the kernel entered {st}, the capture does not show it"
            ));
        }
    }
    for st in capture.iter().filter(|s| !kernel.contains(s)) {
        if *st == TcpState::TimeWait && kernel.last() == Some(&TcpState::Closed) {
            continue; // reported above, from the kernel's side
        }
        flagged.push(format!(
            "{side}: the capture implies {st}, the kernel never entered it"
        ));
    }
    (explained, flagged)
}

/// True when `want` occurs in `have` in order (not necessarily adjacent).
pub fn is_subsequence(want: &[TcpState], have: &[TcpState]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| it.any(|h| h == w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    #[test]
    fn subsequence() {
        let have = [SynSent, Established, FinWait1, Closing, TimeWait];
        assert!(is_subsequence(&[FinWait1, Closing, TimeWait], &have));
        assert!(is_subsequence(&[], &have));
        assert!(!is_subsequence(&[Closing, FinWait1], &have));
        assert!(!is_subsequence(&[LastAck], &have));
    }

    #[test]
    fn three_way_difference_is_explained() {
        let capture = [SynReceived, Established, FinWait1, TimeWait];
        let kernel = [SynReceived, Established, FinWait1, FinWait2, TimeWait];
        let (explained, flagged) = compare("server", &capture, &kernel);
        assert_eq!(explained.len(), 1, "{explained:?}");
        assert!(flagged.is_empty(), "{flagged:?}");
        let (_, flagged) = compare("server", &[SynReceived, Established, CloseWait], &kernel);
        assert_eq!(flagged.len(), 4, "{flagged:?}");
    }

    #[test]
    fn time_wait_replaces_the_swap() {
        let ev = |ts, new| KernelEvent {
            ts_ns: ts,
            skaddr: 1,
            sport: 1,
            dport: 2,
            kind: KernelEventKind::SetState { old: 0, new },
        };
        let events = [ev(1, 1), ev(2, 4), ev(3, 11), ev(4, 7)];
        let (v, _, _) = states_of(&events, true);
        let names: Vec<TcpState> = v.iter().map(|k| k.state).collect();
        assert_eq!(names, [Established, FinWait1, Closing, TimeWait]);
        assert!(v[3].via_sock_diag);
        let (v, _, _) = states_of(&events, false);
        assert_eq!(v[3].state, Closed);
    }
}
