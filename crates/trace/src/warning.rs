//! Warnings: things the analysis noticed but which never abort it.
//! `Display` is the contract's code (`roles-guessed`, `fin-inferred:client`).

use crate::analysis::Side;
use std::fmt;

/// A per-connection or file-level warning.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Warning {
    /// No SYN without ACK was captured; the lower port was taken as the server.
    RolesGuessed,
    /// The three-way handshake was not (completely) captured.
    HandshakeNotCaptured,
    /// FIN of this endpoint was not captured but is implied by the peer's ACK.
    FinInferred(Side),
    /// The peer acknowledged data from this endpoint that the capture does not contain.
    AckForUncapturedData(Side),
    /// The ACK of the last FIN was not captured.
    FinalAckNotCaptured,
    /// An RST came after both FINs.
    LateRst,
    /// File level: a packet could not be decoded (packet number, layer, reason).
    DamagedPacket {
        /// 1-based packet number.
        packet: u64,
        /// Layer that failed (`link`, `ipv4`, `ipv6`, `tcp`, `record`, `line`).
        layer: &'static str,
        /// What was wrong, for humans.
        reason: String,
    },
    /// File level: the file ends in the middle of a record; everything before it was read.
    TruncatedCapture {
        /// Byte offset where the cut record starts.
        offset: u64,
    },
    /// File level: the kernel reported dropped packets during a live capture.
    CaptureDrops(u64),
    /// A connection whose stored packet list was shortened (very long connections).
    PacketsElided(u64),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::RolesGuessed => f.write_str("roles-guessed"),
            Warning::HandshakeNotCaptured => f.write_str("handshake-not-captured"),
            Warning::FinInferred(s) => write!(f, "fin-inferred:{}", s.as_str()),
            Warning::AckForUncapturedData(s) => {
                write!(f, "ack-for-uncaptured-data:{}", s.as_str())
            }
            Warning::FinalAckNotCaptured => f.write_str("final-ack-not-captured"),
            Warning::LateRst => f.write_str("late-rst"),
            Warning::DamagedPacket {
                packet,
                layer,
                reason,
            } => write!(f, "damaged-packet:{packet}:{layer}: {reason}"),
            Warning::TruncatedCapture { offset } => {
                write!(f, "truncated-capture:offset {offset}")
            }
            Warning::CaptureDrops(n) => write!(f, "capture-drops:{n}"),
            Warning::PacketsElided(n) => write!(f, "packets-elided:{n}"),
        }
    }
}
