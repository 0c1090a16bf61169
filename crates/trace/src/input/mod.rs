//! Readers: bytes in, [`Record`]s out. The format is sniffed from the content, never the name.
//!
//! - `pcap.rs`: classic pcap, µs and ns magic, both byte orders.
//! - `pcapng.rs`: SHB/IDB/EPB/SPB (+ skipping of other blocks), per-interface link type and
//!   `if_tsresol`, both byte orders, several sections.
//! - `tcpdump.rs`: `tcpdump -nn` text, relative or `-S` absolute sequence numbers, with or
//!   without the `-i any` interface/direction columns.
//! - `../link.rs` turns (link type, frame bytes) into a [`Segment`](crate::segment::Segment), through any tunnels and
//!   fragments.
//!
//! Readers stream: memory does not grow with the file.

use crate::link_type::LinkType;
use crate::warning::Warning;
use std::io::BufRead;

pub use crate::format::Format;
pub use crate::record::Record;

/// Why an input could not be read at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("read error at byte {offset}: {source}")]
    Io {
        /// Byte offset reached.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The file header is shorter than the format requires.
    #[error("truncated {format} file header: {len} of {need} bytes")]
    TruncatedHeader {
        /// Format recognised from the magic.
        format: &'static str,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Not a format tcplab knows.
    #[error("unknown format: not pcap, pcapng or tcpdump text (first bytes {first:02x?})")]
    UnknownFormat {
        /// The first bytes, for the message.
        first: Vec<u8>,
    },
    /// A header field is invalid (bad version, bad block length in the first section header).
    #[error("invalid {format} header field `{field}` at byte {offset}: {reason}")]
    BadHeader {
        /// Format.
        format: &'static str,
        /// Field name.
        field: &'static str,
        /// Byte offset of the field.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// A streaming reader over one input.
pub trait PacketSource {
    /// Detected format.
    fn format(&self) -> Format;
    /// Link type of the first interface (None for tcpdump text).
    fn link_type(&self) -> Option<LinkType>;
    /// Next record with its timestamp-bearing segment; `Ok(None)` at the end.
    /// Damage after the header never returns `Err`: it becomes `Record::Damaged`, or ends the
    /// stream with a reader warning (see [`PacketSource::take_warnings`]).
    fn next_record(&mut self) -> Result<Option<Record>, ReadError>;
    /// File-level warnings found so far (e.g. [`Warning::TruncatedCapture`]); drained.
    fn take_warnings(&mut self) -> Vec<Warning>;
    /// Keep only the connections `filter` keeps: the segments of the others may come back
    /// as [`Record::Elsewhere`], without being decoded further. A hint: a reader may
    /// ignore it (the default) and return every segment whole.
    fn keep_only(&mut self, filter: crate::flow::FlowFilter) {
        let _ = filter;
    }
}

/// Sniff the format from the first bytes and return a reader for it.
pub fn open<'a, R: BufRead + Send + 'a>(
    reader: R,
) -> Result<Box<dyn PacketSource + Send + 'a>, ReadError> {
    sniff::open(reader)
}

pub mod pcap;
pub mod pcapng;
mod sniff;
pub mod tcpdump;
