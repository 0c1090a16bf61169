//! What went wrong in a run, as data. `Display` is the one line `report.txt`, `mismatch`,
//! `error` and `timing_miss` have always said.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::side::Side;

/// Why a run is not simply the kernel's outcome meeting its expectation. A run's problems are
/// kept in the order they were found; the first that fails the run is its `mismatch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// The run could not be carried out as asked (a socket error, no connection captured, the
    /// capture could not be read, the link's relay stopped ...).
    RunFailed {
        /// What happened, in words.
        error: String,
    },
    /// The capture lost packets: the classification is not trusted, the run fails.
    CaptureDropped {
        /// Packets the kernel dropped from the capture(s) while the run was in flight.
        packets: u64,
    },
    /// A program ran late (its last read/write returned, or its close(2) took, that long after
    /// the wire): the programs' miss, not the kernel's outcome. Retried, never counted.
    TimingLate {
        /// Which program.
        side: Side,
        /// How late, ms.
        late_ms: f64,
        /// The scenario's `timing_tolerance_ms`.
        tolerance_ms: f64,
    },
    /// A program closed off its knob by more than the tolerance: retried, never counted.
    TimingMiss {
        /// Which program.
        side: Side,
        /// Its close delay on its own clock, ms.
        measured_ms: f64,
        /// What its `close_delay_ms` knob asked for.
        knob_ms: f64,
        /// The scenario's `timing_tolerance_ms`.
        tolerance_ms: f64,
    },
    /// The server sent its second line (`more_after_ms`) off its knob by more than the
    /// tolerance: the program's miss, not the kernel's outcome. Retried, never counted.
    MoreMiss {
        /// The answer to the second line, on the server's clock, ms.
        measured_ms: f64,
        /// What `more_after_ms` asked for.
        knob_ms: f64,
        /// The scenario's `timing_tolerance_ms`.
        tolerance_ms: f64,
    },
    /// The delay link broke its own promise: a packet reached the far end later than its
    /// `delay_ms` by more than the tolerance (both ends' captures show when it left and when
    /// it arrived; a relay at normal priority waits for a CPU on a busy machine). The wire's
    /// miss, not the kernel's outcome: retried, never counted.
    LinkLate {
        /// The worst packet's time on the link past `delay_ms`, ms.
        late_ms: f64,
        /// The link's `delay_ms`.
        delay_ms: f64,
        /// The scenario's `timing_tolerance_ms`.
        tolerance_ms: f64,
    },
    /// This machine ran nothing for a while during the run (a guest vCPU held by a busy
    /// host), so the kernel's timers fired that late too: retried, never counted.
    Stalled {
        /// The longest stall the meter saw, ms.
        stalled_ms: f64,
        /// The scenario's tolerance, at least the meter's floor, ms.
        limit_ms: f64,
    },
    /// On loopback (no link), a FIN was sent again after the peer's ACK of it was already on
    /// the wire: the peer's ACK timer and the sender's retransmission timer fired in one
    /// batch, which only a machine that ran nothing past both deadlines does (the host
    /// stalled, its softirqs late). The kernel's timers, not its rules: retried, never counted.
    TimersCrossed {
        /// Which side retransmitted.
        side: Side,
        /// How long after the ACK of its FIN was captured, µs.
        after_ack_us: f64,
    },
    /// The run does not meet the scenario's expectation.
    Mismatch {
        /// The expectation's words: `expected four-way/client, got three-way/server`.
        detail: String,
    },
    /// A timing miss read from a file written before problems were data: only its text.
    TimingNoted {
        /// The `timing_miss` text.
        text: String,
    },
}

impl Problem {
    /// This problem fails the run's check (`passed: false`). Timing misses do not: they make
    /// the run not count at all.
    pub fn fails(&self) -> bool {
        !self.is_timing()
    }

    /// A timing miss of the programs (the run is retried and never counted).
    pub fn is_timing(&self) -> bool {
        matches!(
            self,
            Problem::TimingLate { .. }
                | Problem::TimingMiss { .. }
                | Problem::MoreMiss { .. }
                | Problem::LinkLate { .. }
                | Problem::Stalled { .. }
                | Problem::TimersCrossed { .. }
                | Problem::TimingNoted { .. }
        )
    }
}

/// What every holder of a run's problems asks of them: the record on disk and the runner's
/// outcome both keep a `Vec<Problem>` and answer the same three questions the same way.
pub trait Problems {
    /// Why the run does not meet its expectation: the first problem that fails it.
    fn mismatch(&self) -> Option<&Problem>;
    /// Why the run could not be carried out: its first [`Problem::RunFailed`].
    fn error(&self) -> Option<&str>;
    /// The programs missed their knobs: not the kernel's outcome.
    fn timing_miss(&self) -> Option<&Problem>;
}

impl Problems for [Problem] {
    fn mismatch(&self) -> Option<&Problem> {
        self.iter().find(|p| p.fails())
    }

    fn error(&self) -> Option<&str> {
        self.iter().find_map(|p| match p {
            Problem::RunFailed { error } => Some(error.as_str()),
            _ => None,
        })
    }

    fn timing_miss(&self) -> Option<&Problem> {
        self.iter().find(|p| p.is_timing())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RunFailed { error } => f.write_str(error),
            Problem::CaptureDropped { packets } => write!(
                f,
                "the capture dropped {packets} packet(s): classification not trusted"
            ),
            Problem::MoreMiss {
                measured_ms,
                knob_ms,
                tolerance_ms,
            } => write!(
                f,
                "timing miss: the server sent its second line {measured_ms:.3} ms after its answer, its more_after_ms knob says {knob_ms} ms (tolerance {tolerance_ms} ms)"
            ),
            Problem::TimingLate {
                side,
                late_ms,
                tolerance_ms,
            } => write!(
                f,
                "timing miss: the {side} ran {late_ms:.3} ms late (its last read/write returned, or its close(2) took, that long after the wire) (tolerance {tolerance_ms} ms)"
            ),
            Problem::TimingMiss {
                side,
                measured_ms,
                knob_ms,
                tolerance_ms,
            } => write!(
                f,
                "timing miss: the {side} closed {measured_ms:.3} ms after its last I/O, its knob says {knob_ms} ms (tolerance {tolerance_ms} ms)"
            ),
            Problem::LinkLate {
                late_ms,
                delay_ms,
                tolerance_ms,
            } => write!(
                f,
                "timing miss: the link delivered a packet {late_ms:.3} ms later than its {delay_ms} ms delay (both ends' captures) (tolerance {tolerance_ms} ms)"
            ),
            Problem::Stalled {
                stalled_ms,
                limit_ms,
            } => write!(
                f,
                "timing miss: stall: this machine ran nothing for {stalled_ms:.1} ms during the run (a guest vCPU held by a busy host), so the kernel's timers fired that late (limit {limit_ms} ms)"
            ),
            Problem::TimersCrossed { side, after_ack_us } => write!(
                f,
                "timing miss: the {side} retransmitted its FIN {after_ack_us:.0} µs after the ACK of it left, on loopback: both timers fired at once after this machine stalled"
            ),
            Problem::Mismatch { detail } => f.write_str(detail),
            Problem::TimingNoted { text } => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_say_what_they_always_said() {
        let cases = [
            (
                Problem::CaptureDropped { packets: 3 },
                "the capture dropped 3 packet(s): classification not trusted",
            ),
            (
                Problem::TimingMiss {
                    side: Side::Server,
                    measured_ms: 112.5,
                    knob_ms: 100.0,
                    tolerance_ms: 5.0,
                },
                "timing miss: the server closed 112.500 ms after its last I/O, its knob says 100 ms (tolerance 5 ms)",
            ),
            (
                Problem::TimingLate {
                    side: Side::Client,
                    late_ms: 7.25,
                    tolerance_ms: 2.5,
                },
                "timing miss: the client ran 7.250 ms late (its last read/write returned, or its close(2) took, that long after the wire) (tolerance 2.5 ms)",
            ),
            (
                Problem::LinkLate {
                    late_ms: 11.5,
                    delay_ms: 10.0,
                    tolerance_ms: 5.0,
                },
                "timing miss: the link delivered a packet 11.500 ms later than its 10 ms delay (both ends' captures) (tolerance 5 ms)",
            ),
            (
                Problem::RunFailed {
                    error: "no connection captured".into(),
                },
                "no connection captured",
            ),
        ];
        for (p, text) in cases {
            assert_eq!(p.to_string(), text);
            let back: Problem = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(
            serde_json::to_value(Problem::CaptureDropped { packets: 1 }).unwrap(),
            serde_json::json!({"problem": "capture-dropped", "packets": 1})
        );
    }
}
