//! Connection tracking: 4-tuple table, SYN epochs, loopback de-duplication, streaming
//! finalisation. (Work in progress: bodies land in the next commit.)

use crate::analysis::{Analysis, Connection, FileInfo};
use crate::input::{Format, ReadError};
use crate::link::LinkType;
use std::io::BufRead;

/// Tuning for streaming analysis.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// A closed connection is finalised once the capture clock is this far past its last
    /// packet (ns). Later packets on the same 4-tuple then start a new connection.
    pub linger_ns: i64,
    /// Packets stored per connection before the middle of a long transfer is elided.
    pub max_stored_packets: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            linger_ns: 60_000_000_000,
            max_stored_packets: 4096,
        }
    }
}

/// Receives the analysis as it streams: `begin` once, `connection` in order of each
/// connection's first packet, `end` once.
pub trait AnalysisSink {
    /// The input was recognised.
    fn begin(&mut self, source: &str, format: Format, link_type: Option<LinkType>);
    /// One finished connection.
    fn connection(&mut self, conn: Connection);
    /// The input is exhausted.
    fn end(&mut self, file: &FileInfo);
}

/// Analyse a whole input into memory.
pub fn analyze<R: BufRead>(reader: R, source: &str) -> Result<Analysis, ReadError> {
    let _ = (reader, source);
    todo!()
}

/// Analyse an input, streaming connections to `sink` as they finish.
pub fn analyze_stream<R: BufRead>(
    reader: R,
    source: &str,
    opts: &AnalyzeOptions,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    let _ = (reader, source, opts, sink);
    todo!()
}
