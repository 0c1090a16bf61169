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
    /// Forget every change, keeping the buffer (for reuse).
    pub fn clear(&mut self) {
        self.changes.clear();
    }

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

    /// Merge one endpoint's kernel-recorded states (each with the packet after which that
    /// endpoint entered it, on this timeline's packet numbers) into the capture's inferred
    /// ones. The two sequences are aligned first (longest common subsequence): a state both
    /// show is one change seen twice, so the kernel's entry goes right after the capture's, at
    /// the capture's packet (renderers show the pair once). A state only the kernel shows goes
    /// between its aligned neighbours, its packet clamped to theirs, so the merged timeline
    /// never goes backwards and never repeats a state (issue 17: placing each state by time
    /// alone put a server's SYN_RECEIVED after its ESTABLISHED).
    pub fn merge_kernel(&mut self, kernel: &[(u64, TcpState)]) {
        let cap = std::mem::take(&mut self.changes);
        let (n, m) = (cap.len(), kernel.len());
        // lcs[i][j]: length of the longest common subsequence of cap[i..] and kernel[j..].
        let mut lcs = vec![vec![0u16; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if cap[i].state == kernel[j].1 {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let kernel_change = |packet, state| StateChange {
            packet,
            state,
            source: StateSource::Kernel,
        };
        let (mut i, mut j) = (0, 0);
        let mut floor = 0u64;
        while i < n || j < m {
            if i < n && j < m && cap[i].state == kernel[j].1 && lcs[i][j] == lcs[i + 1][j + 1] + 1 {
                floor = floor.max(cap[i].packet);
                self.changes.push(cap[i]);
                self.changes.push(kernel_change(floor, kernel[j].1));
                i += 1;
                j += 1;
                continue;
            }
            // Between two aligned pairs: the one that is earlier by packet goes first (the
            // capture's on a tie); the LCS table keeps the alignment optimal either way.
            let take_capture = j >= m
                || (i < n
                    && lcs[i + 1][j] == lcs[i][j]
                    && (lcs[i][j + 1] != lcs[i][j] || cap[i].packet <= kernel[j].0));
            if take_capture {
                floor = floor.max(cap[i].packet);
                self.changes.push(cap[i]);
                i += 1;
            } else {
                let next_capture = cap.get(i).map_or(u64::MAX, |c| c.packet);
                let packet = kernel[j].0.clamp(floor, next_capture.max(floor));
                floor = packet;
                self.changes.push(kernel_change(packet, kernel[j].1));
                j += 1;
            }
        }
    }

    /// The changes with each kernel entry that confirms the capture entry just before it
    /// (same state: see [`Timeline::merge_kernel`]) folded into it: `(change, confirmed)`.
    pub fn folded(&self) -> Vec<(StateChange, bool)> {
        let mut out: Vec<(StateChange, bool)> = Vec::with_capacity(self.changes.len());
        for c in &self.changes {
            if let Some(last) = out.last_mut() {
                if !last.1
                    && last.0.state == c.state
                    && last.0.source == StateSource::Capture
                    && c.source == StateSource::Kernel
                {
                    last.1 = true;
                    continue;
                }
            }
            out.push((*c, false));
        }
        out
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

    #[test]
    fn merge_kernel_never_goes_backwards_or_repeats() {
        use TcpState::*;
        // Issue 17's link run: the server's capture-inferred states from the client's capture,
        // and its kernel states placed after the packets that caused them at the server.
        let mut t = Timeline::default();
        for (p, st) in [
            (2, SynReceived),
            (3, Established),
            (9, FinWait1),
            (9, Closing),
            (10, TimeWait),
        ] {
            t.transition(p, st);
        }
        t.merge_kernel(&[
            (3, SynReceived),
            (3, Established),
            (6, FinWait1),
            (8, Closing),
            (10, TimeWait),
        ]);
        let folded = t.folded();
        let states: Vec<TcpState> = folded.iter().map(|(c, _)| c.state).collect();
        assert_eq!(
            states,
            [SynReceived, Established, FinWait1, Closing, TimeWait]
        );
        assert!(folded.iter().all(|(_, confirmed)| *confirmed));
        let packets: Vec<u64> = t.changes().iter().map(|c| c.packet).collect();
        assert!(packets.windows(2).all(|w| w[0] <= w[1]), "{packets:?}");
        // A state only the kernel shows sits between its neighbours, clamped to them.
        let mut t = Timeline::default();
        for (p, st) in [
            (1, SynReceived),
            (3, Established),
            (7, FinWait1),
            (9, TimeWait),
        ] {
            t.transition(p, st);
        }
        t.merge_kernel(&[
            (3, Established),
            (2, FinWait1),
            (12, FinWait2),
            (9, TimeWait),
        ]);
        let f = t.folded();
        let got: Vec<(u64, TcpState, bool)> =
            f.iter().map(|(c, k)| (c.packet, c.state, *k)).collect();
        assert_eq!(
            got,
            [
                (1, SynReceived, false),
                (3, Established, true),
                (7, FinWait1, true),
                (9, FinWait2, false),
                (9, TimeWait, true)
            ]
        );
    }
}
