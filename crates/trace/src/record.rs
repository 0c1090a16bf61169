//! What one packet of the input turned out to be: what the readers (`input/`) hand to the
//! connection table (`conn.rs`), decoded by `link.rs`. Plain data, a leaf: it imports only
//! [`Segment`]. The old path `input::Record` re-exports it.

use crate::segment::Segment;

/// What one packet (frame or text line) of the input turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A TCP segment.
    Tcp(Segment),
    /// A TCP segment of a connection that another table thread keeps (the reader was told
    /// to keep only some, [`crate::input::PacketSource::keep_only`]): only its time, which
    /// moves every table's clock.
    Elsewhere {
        /// Capture timestamp in nanoseconds.
        ts_ns: i64,
    },
    /// Readable, but not TCP (ARP, UDP, ICMP, …): counted and skipped.
    NonTcp,
    /// A fragment of an IP datagram: held until the datagram is complete (the record of the
    /// fragment that completes it carries the segment), or given up.
    Fragment,
    /// Could not be decoded; becomes a [`Warning::DamagedPacket`](crate::warning::Warning::DamagedPacket).
    Damaged {
        /// Layer that failed.
        layer: &'static str,
        /// Why, for humans.
        reason: String,
    },
}
