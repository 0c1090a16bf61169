//! The kernel's own states of a run's two sockets, next to the capture's inferred ones.
//!
//! A place starts a [`KernelRecorder`] before the programs run (filtered to the run's server
//! port), asks it whether both sockets are gone while it waits for the teardown, and ends it
//! with the programs' socket cookies and the namespace's TIME_WAIT cookies (sock_diag).
//! [`KernelStates`] is what the run reports; [`compare`] sets it beside the capture's view.

use tcplab_capture::ktrace::{self, kernel_state_name, socket_events, KernelEvent};
use tcplab_capture::{KernelEventKind, KernelTrace};
use tcplab_trace::TcpState;

/// Where the kernel states came from (the `source` written with them).
pub const SOURCE_TRACEPOINT: &str =
    "tracepoint sock:inet_sock_set_state (perf_event_open), TIME_WAIT via sock_diag";

/// One state the kernel put a socket in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelState {
    /// CLOCK_REALTIME, ns: the clock of the capture's timestamps.
    pub ts_ns: u64,
    /// The state entered.
    pub state: TcpState,
    /// TIME_WAIT is never a transition of the full socket (the kernel swaps in a timewait
    /// socket, and the full one goes to CLOSE): true when a sock_diag dump confirmed it.
    pub via_sock_diag: bool,
}

/// Both sockets' kernel states.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelStates {
    /// How they were recorded ([`SOURCE_TRACEPOINT`]), or `None` when they were not.
    pub source: Option<&'static str>,
    /// The client socket's states, in order.
    pub client: Vec<KernelState>,
    /// The server's accepted socket's states, in order.
    pub server: Vec<KernelState>,
    /// Retransmissions the kernel made (`tcp:tcp_retransmit_skb`): client, server.
    pub retransmits: [u32; 2],
    /// Why states are missing, if they are.
    pub error: Option<String>,
}

impl KernelStates {
    /// No kernel states: `why`.
    pub fn missing(why: String) -> KernelStates {
        KernelStates {
            error: Some(why),
            ..Default::default()
        }
    }

    /// The states of `client` (true) or the server, names only.
    pub fn states(&self, client: bool) -> Vec<TcpState> {
        let v = if client { &self.client } else { &self.server };
        v.iter().map(|k| k.state).collect()
    }
}

/// A recording in progress (or the reason there is none).
#[derive(Debug)]
pub(crate) struct KernelRecorder {
    trace: Result<KernelTrace, String>,
}

impl KernelRecorder {
    /// Start recording the sockets on `port`.
    pub fn start(port: u16) -> KernelRecorder {
        KernelRecorder {
            trace: KernelTrace::start(&[port]).map_err(|e| format!("kernel trace: {e}")),
        }
    }

    /// True when both sockets' ends are recorded (or nothing can be recorded).
    pub fn done(&mut self, cookies: &[u64]) -> bool {
        match &mut self.trace {
            Ok(t) => t.destroyed(cookies),
            Err(_) => true,
        }
    }

    /// Stop and attribute: `cookies` = (client, server) from the programs' reports,
    /// `time_wait` = the cookies sock_diag found in TIME_WAIT (or why it could not look).
    pub fn finish(
        self,
        cookies: (Option<u64>, Option<u64>),
        time_wait: Result<Vec<u64>, String>,
    ) -> KernelStates {
        let trace = match self.trace {
            Ok(t) => t,
            Err(e) => return KernelStates::missing(e),
        };
        let (events, lost) = trace.finish();
        if lost > 0 {
            return KernelStates::missing(format!(
                "kernel trace: the kernel lost {lost} trace record(s)"
            ));
        }
        let mut out = KernelStates {
            source: Some(SOURCE_TRACEPOINT),
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
            let Some(evs) = socket_events(&events, cookie) else {
                errors.push(format!(
                    "the {side} socket's end was not recorded (still open?)"
                ));
                continue;
            };
            let (states, retransmits) = states_of(&evs, tw.contains(&cookie));
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

/// The states one socket's events show; with `time_wait`, its final CLOSED (the swap for a
/// timewait socket) becomes TIME_WAIT. Also its retransmission count.
fn states_of(events: &[KernelEvent], time_wait: bool) -> (Vec<KernelState>, u32) {
    let mut v = Vec::new();
    let mut retransmits = 0;
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
    (v, retransmits)
}

/// The TIME_WAIT cookies of the calling thread's namespace (run it inside one).
pub(crate) fn time_wait_here() -> Result<Vec<u64>, String> {
    ktrace::time_wait_cookies().map_err(|e| e.to_string())
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
        let (v, _) = states_of(&events, true);
        let names: Vec<TcpState> = v.iter().map(|k| k.state).collect();
        assert_eq!(names, [Established, FinWait1, Closing, TimeWait]);
        assert!(v[3].via_sock_diag);
        let (v, _) = states_of(&events, false);
        assert_eq!(v[3].state, Closed);
    }
}
