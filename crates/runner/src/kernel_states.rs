//! The kernel's own states of a run's two sockets, as the run reports them: plain data,
//! beneath both the run's outcome (`outcome.rs`) and the recorder that fills it in
//! (`run/kernel.rs`), so neither has to import the other for it.

use tcplab_trace::TcpState;

/// Where the kernel states came from (the `source` written with them): a private tracefs
/// (ftrace) instance.
pub const SOURCE_TRACEPOINT: &str =
    "tracepoint sock:inet_sock_set_state (tracefs instance), TIME_WAIT via sock_diag";

/// The same through perf_event_open, where tracefs instances cannot be made (perf can miss
/// events on an idle machine; see `tcplab_capture::ktrace`).
pub const SOURCE_TRACEPOINT_PERF: &str =
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
    /// RSTs the sockets sent (`tcp:tcp_send_reset`): client, server.
    pub resets: [u32; 2],
    /// Every RST the kernel sent between the run's two ports during the run
    /// (`tcp:tcp_send_reset`, with a socket or without one), in time order.
    pub rsts_sent: Vec<KernelRst>,
    /// Whether this kernel's `tcp_send_reset` names its reason (6.10 and later); `None`
    /// when no tracepoint recorded the run.
    pub reasons_reported: Option<bool>,
    /// How long each side's TIME_WAIT is set to last, ms, from its full socket's end (the
    /// swap for a timewait socket) to the timewait timer's expiry: sock_diag's `idiag_expires`
    /// when the run ends plus the time since the swap. Client, server; `None` where the
    /// socket is not in TIME_WAIT (or states were polled).
    pub time_wait_ms: [Option<u64>; 2],
    /// Why states are missing, if they are.
    pub error: Option<String>,
}

/// One RST the kernel sent (`tcp:tcp_send_reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRst {
    /// CLOCK_REALTIME, ns.
    pub ts_ns: u64,
    /// The sender's port.
    pub sport: u16,
    /// The receiver's port.
    pub dport: u16,
    /// The kernel's reason (`enum sk_rst_reason`), where the event has one.
    pub reason: Option<u32>,
    /// Its name as the kernel prints it (`TCP_ABORT_ON_LINGER`), when known.
    pub reason_name: Option<&'static str>,
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

/// Where the kernel states came from when tracepoints were not available.
pub const SOURCE_POLLING: &str = "sock_diag polling every 0.5 ms (tracepoints not available: \
     states shorter than that can be missed, retransmissions are not counted)";
