//! RFC 9293 connection states as the capture implies them.
//!
//! Read first: RFC 9293 §3.3.2 (state diagram), §3.6 (closing cases 1–3), RFC 1122 §4.2.2.13.

use serde::{Serialize, Serializer};
use std::fmt;

/// One RFC 9293 state. Variants are in RFC order; the contract spelling (`FIN_WAIT_1`) is
/// written once, in [`TcpState::as_str`], and both `Display` and `Serialize` use it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TcpState {
    /// Waiting for a connection request (server before the SYN).
    Listen,
    /// SYN sent, waiting for SYN+ACK.
    SynSent,
    /// SYN received and SYN+ACK sent, waiting for the ACK.
    SynReceived,
    /// Open; data flows both ways.
    Established,
    /// Our FIN sent, not yet acknowledged, no FIN from the peer yet.
    FinWait1,
    /// Our FIN acknowledged, waiting for the peer's FIN.
    FinWait2,
    /// Peer's FIN received, ours sent but not yet acknowledged (simultaneous close).
    Closing,
    /// Both FINs done; waiting 2×MSL before the 4-tuple may be reused.
    TimeWait,
    /// Peer's FIN received; we may still send.
    CloseWait,
    /// Our FIN sent after the peer's; waiting for its ACK.
    LastAck,
    /// No connection.
    Closed,
}

impl TcpState {
    /// Every variant, in RFC order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::Closing,
        TcpState::TimeWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Closed,
    ];

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::Closing => "CLOSING",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Closed => "CLOSED",
        }
    }

    /// Parse the contract spelling (used by scenario expectations).
    pub fn from_name(s: &str) -> Option<TcpState> {
        TcpState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a state in a timeline came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateSource {
    /// Inferred from the captured segments.
    Capture,
    /// Sampled from the kernel (sock_diag) during a live run.
    Kernel,
}

impl StateSource {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StateSource::Capture => "capture",
            StateSource::Kernel => "kernel",
        }
    }
}

/// One entry of an endpoint's timeline: `state` entered because of packet `packet`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateChange {
    /// 1-based packet number (file order) that caused the change.
    pub packet: u64,
    /// The state entered.
    pub state: TcpState,
    /// Inferred from the capture, or sampled from the kernel.
    pub source: StateSource,
}

/// An endpoint's timeline. Every change goes through [`Timeline::transition`], which records
/// only real changes (like smoltcp's `set_state`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Timeline {
    changes: Vec<StateChange>,
}

impl Timeline {
    /// Enter `state` because of `packet`; a repeat of the current state is not recorded.
    pub fn transition(&mut self, packet: u64, state: TcpState) {
        if self.current() != Some(state) {
            self.changes.push(StateChange {
                packet,
                state,
                source: StateSource::Capture,
            });
        }
    }

    /// Append a kernel-sampled state (live runs).
    pub fn push_kernel(&mut self, packet: u64, state: TcpState) {
        self.changes.push(StateChange {
            packet,
            state,
            source: StateSource::Kernel,
        });
    }

    /// Order the changes by packet number (stable: changes at one packet keep their order).
    pub fn sort_by_packet(&mut self) {
        self.changes.sort_by_key(|c| c.packet);
    }

    /// Insert a kernel-recorded state at its place: after every change caused by packets up
    /// to `packet` (live runs merge the kernel's own transitions into the capture's).
    pub fn insert_kernel(&mut self, packet: u64, state: TcpState) {
        let at = self.changes.partition_point(|c| c.packet <= packet);
        self.changes.insert(
            at,
            StateChange {
                packet,
                state,
                source: StateSource::Kernel,
            },
        );
    }

    /// The last state entered.
    pub fn current(&self) -> Option<TcpState> {
        self.changes.last().map(|c| c.state)
    }

    /// All changes, in the order they happened to this endpoint.
    pub fn changes(&self) -> &[StateChange] {
        &self.changes
    }

    /// The states only, in order.
    pub fn states(&self) -> Vec<TcpState> {
        self.changes.iter().map(|c| c.state).collect()
    }

    /// States entered because of `packet`.
    pub fn entered_at(&self, packet: u64) -> impl Iterator<Item = TcpState> + '_ {
        self.changes
            .iter()
            .filter(move |c| c.packet == packet)
            .map(|c| c.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for st in TcpState::ALL {
            assert_eq!(TcpState::from_name(st.as_str()), Some(st));
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
        assert_eq!(TcpState::FinWait1.as_str(), "FIN_WAIT_1");
    }

    #[test]
    fn transition_records_only_changes() {
        let mut t = Timeline::default();
        t.transition(1, TcpState::SynSent);
        t.transition(2, TcpState::SynSent);
        t.transition(3, TcpState::Established);
        assert_eq!(t.states(), vec![TcpState::SynSent, TcpState::Established]);
        assert_eq!(
            t.entered_at(3).collect::<Vec<_>>(),
            vec![TcpState::Established]
        );
    }
}
