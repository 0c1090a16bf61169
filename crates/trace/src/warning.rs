//! Warnings: things the analysis noticed but which never abort it.
//! `Display` is the contract's code (`roles-guessed`, `fin-inferred:client`).

use crate::side::Side;
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
        /// Later packets damaged the same way (same layer and reason), counted instead of
        /// repeated: a file of garbage gives a few lines, not one per record.
        repeats: u64,
    },
    /// File level: packets damaged in yet other ways once [`MAX_DISTINCT_DAMAGE`] kinds of
    /// damage have been listed.
    MoreDamage {
        /// How many packets.
        packets: u64,
        /// The first of them.
        first: u64,
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
    /// File level: IP datagrams whose fragments could not be reassembled.
    FragmentsDropped {
        /// Incomplete when their 30 s (capture clock) ran out, or at the end of the file.
        timed_out: u64,
        /// Overlapping IPv6 fragments, discarded as RFC 5722 requires.
        overlapping: u64,
        /// Pushed out by the memory bounds, or inconsistent.
        evicted: u64,
    },
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
                repeats,
            } => {
                write!(f, "damaged-packet:{packet}:{layer}: {reason}")?;
                if *repeats > 0 {
                    write!(f, " (and {repeats} more packets like it)")?;
                }
                Ok(())
            }
            Warning::MoreDamage { packets, first } => {
                write!(
                    f,
                    "damaged-packets:{packets} more from packet {first}, in other ways"
                )
            }
            Warning::TruncatedCapture { offset } => {
                write!(f, "truncated-capture:offset {offset}")
            }
            Warning::CaptureDrops(n) => write!(f, "capture-drops:{n}"),
            Warning::PacketsElided(n) => write!(f, "packets-elided:{n}"),
            Warning::FragmentsDropped {
                timed_out,
                overlapping,
                evicted,
            } => write!(
                f,
                "fragments-dropped:{timed_out} timed out, {overlapping} overlapping, {evicted} evicted"
            ),
        }
    }
}

/// Kinds of damage (layer + reason) listed one by one before the rest is only counted.
pub const MAX_DISTINCT_DAMAGE: usize = 32;

/// Collects damaged-packet warnings with memory bounded whatever the input: one entry per
/// kind of damage (layer and reason, a text listing's `line N:` prefix aside) with a count,
/// at most [`MAX_DISTINCT_DAMAGE`] kinds, then a single count for everything else.
#[derive(Debug, Default)]
pub struct DamageTally {
    kinds: Vec<(Warning, String)>,
    more: Option<(u64, u64)>,
}

impl DamageTally {
    /// Record that `packet` could not be decoded at `layer`.
    pub fn add(&mut self, packet: u64, layer: &'static str, reason: String) {
        let key = strip_line_number(&reason);
        for (w, k) in &mut self.kinds {
            if let Warning::DamagedPacket {
                layer: l, repeats, ..
            } = w
            {
                if *l == layer && k == key {
                    *repeats += 1;
                    return;
                }
            }
        }
        if self.kinds.len() < MAX_DISTINCT_DAMAGE {
            let key = key.to_string();
            self.kinds.push((
                Warning::DamagedPacket {
                    packet,
                    layer,
                    reason,
                    repeats: 0,
                },
                key,
            ));
        } else {
            let (n, _) = self.more.get_or_insert((0, packet));
            *n += 1;
        }
    }

    /// The warnings, first occurrence order, the uncounted rest last.
    pub fn into_warnings(self) -> impl Iterator<Item = Warning> {
        self.kinds.into_iter().map(|(w, _)| w).chain(
            self.more
                .map(|(packets, first)| Warning::MoreDamage { packets, first }),
        )
    }
}

/// `line 12: bad seq "x"` -> `bad seq "x"` (text listings number every damaged line).
fn strip_line_number(reason: &str) -> &str {
    reason
        .strip_prefix("line ")
        .and_then(|r| r.split_once(": "))
        .filter(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(reason, |(_, r)| r)
}
