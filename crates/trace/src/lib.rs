//! tcplab-trace: read a capture, follow every TCP connection, classify its teardown.
//!
//! Pure: bytes in, [`Analysis`] out — no libpcap, no clock, no privileges. The pipeline is
//! `input` (pcap / pcapng / tcpdump text → [`Record`]) → `link` (frames → [`Segment`]) →
//! `conn` (4-tuple table, SYN epochs, loopback de-duplication) → `teardown` (docs/teardown.md's
//! decision order) and `state` (inferred RFC 9293 timelines) → `render` (text, ladder, JSON).
//! The rules and the JSON contract are `docs/teardown.md` at the repository root.
#![deny(missing_docs)]

pub mod analysis;
pub mod conn;
pub mod encap;
pub mod flow;
pub mod format;
pub mod hash;
pub mod input;
pub mod kind;
pub mod link;
pub mod link_type;
mod raw_conn;
pub mod reassembly;
pub mod record;
pub mod render;
pub mod rst;
pub mod segment;
pub mod seq;
pub mod side;
pub mod state;
pub mod summary;
pub mod teardown;
pub mod vantage;
pub mod warning;
pub mod zeek;

pub use analysis::{Analysis, Connection, FileInfo, PacketInfo, Role, Side};
pub use conn::{
    analyze, analyze_on_this_thread, analyze_reopen, analyze_stream, AnalyzeOptions, Detail,
};
pub use encap::EncapLayer;
pub use input::{Format, ReadError, Record};
pub use rst::{KernelReason, RstCause, RstInfo};
pub use segment::{Flags, IpFacts, Segment};
pub use seq::SeqNum;
pub use state::{StateChange, StateSource, TcpState, Timeline};
pub use summary::Summary;
pub use teardown::{Closer, Teardown, TeardownKind};
pub use warning::Warning;
pub use zeek::{ConnState, ZeekLater, ZeekView};
