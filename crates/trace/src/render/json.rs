//! The contract's JSON (TEARDOWN.md, `tcplab analyze --json`). This is the only module that
//! knows JSON field names; the wire types are serialize-only.
//!
//! Output streams: the header fields, then one connection per line as each finishes (in
//! first-packet order), then the whole-file counts. JSON objects are unordered, so `packets`
//! after `connections` is the same object as in the contract's example.

use crate::analysis::{Analysis, Connection, FileInfo, Side};
use crate::conn::AnalysisSink;
use crate::input::Format;
use crate::link::LinkType;
use crate::state::StateChange;
use crate::summary::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;

#[derive(Serialize)]
struct TeardownJson {
    kind: &'static str,
    active_closer: Option<&'static str>,
    final_ack: bool,
    fin_retransmits: u32,
    /// Four-way: ms from the first FIN to the passive side's separate ACK of it.
    fin_ack_delay_ms: Option<f64>,
    /// ms from the first FIN/RST to the packet that ended the close.
    close_duration_ms: Option<f64>,
}

#[derive(Serialize)]
struct StateJson {
    packet: u64,
    state: &'static str,
    source: &'static str,
}

#[derive(Serialize)]
struct StatesJson {
    client: Vec<StateJson>,
    server: Vec<StateJson>,
}

#[derive(Serialize)]
struct ConnectionJson {
    client: String,
    server: String,
    teardown: TeardownJson,
    packets: Vec<u64>,
    states: StatesJson,
    warnings: Vec<String>,
    first_packet: u64,
    packet_count: u64,
}

/// `[::1]:60000` for IPv6, `127.0.0.1:60000` for IPv4 (std's `SocketAddr` display).
fn endpoint(a: SocketAddr) -> String {
    a.to_string()
}

fn ms(ns: i64) -> f64 {
    // Microsecond resolution is what captures carry; round so output is stable.
    (ns as f64 / 1_000.0).round() / 1_000.0
}

fn states(changes: &[StateChange]) -> Vec<StateJson> {
    changes
        .iter()
        .map(|c| StateJson {
            packet: c.packet,
            state: c.state.as_str(),
            source: c.source.as_str(),
        })
        .collect()
}

fn connection_json(c: &Connection) -> ConnectionJson {
    ConnectionJson {
        client: endpoint(c.client),
        server: endpoint(c.server),
        teardown: TeardownJson {
            kind: c.teardown.kind.as_str(),
            active_closer: c.teardown.active_closer.map(|x| x.as_str()),
            final_ack: c.teardown.final_ack,
            fin_retransmits: c.teardown.fin_retransmits,
            fin_ack_delay_ms: c.teardown.fin_ack_delay_ns.map(ms),
            close_duration_ms: c.teardown.close_duration_ns.map(ms),
        },
        packets: c.teardown_packets.clone(),
        states: StatesJson {
            client: states(c.states[Side::Client.idx()].changes()),
            server: states(c.states[Side::Server.idx()].changes()),
        },
        warnings: c.warnings.iter().map(ToString::to_string).collect(),
        first_packet: c.first_packet,
        packet_count: c.packet_count,
    }
}

/// One connection as a JSON value (used by the runner's results).
pub fn connection_value(c: &Connection) -> serde_json::Value {
    serde_json::to_value(connection_json(c)).unwrap_or(serde_json::Value::Null)
}

fn link_str(l: Option<LinkType>) -> Option<String> {
    l.map(|l| l.as_str().into_owned())
}

fn counts(summary: &Summary) -> BTreeMap<String, u64> {
    summary
        .counts
        .iter()
        .map(|((k, c), n)| (Summary::key(*k, *c), *n))
        .collect()
}

/// Streams the contract's object to a writer; implements [`AnalysisSink`].
/// I/O errors are remembered and returned by [`JsonWriter::finish`].
#[derive(Debug)]
pub struct JsonWriter<W: Write> {
    out: W,
    first: bool,
    summary: Summary,
    error: Option<io::Error>,
}

impl<W: Write> JsonWriter<W> {
    /// A writer that will print one object to `out`.
    pub fn new(out: W) -> JsonWriter<W> {
        JsonWriter {
            out,
            first: true,
            summary: Summary::default(),
            error: None,
        }
    }

    fn attempt(&mut self, f: impl FnOnce(&mut W) -> io::Result<()>) {
        if self.error.is_none() {
            if let Err(e) = f(&mut self.out) {
                self.error = Some(e);
            }
        }
    }

    /// Flush and return the first I/O error, if any.
    pub fn finish(mut self) -> io::Result<W> {
        self.attempt(|w| w.flush());
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }
}

impl<W: Write> AnalysisSink for JsonWriter<W> {
    fn begin(&mut self, source: &str, format: Format, link_type: Option<LinkType>) {
        let head = format!(
            "{{\"source\":{},\"format\":{},\"link_type\":{},\"connections\":[",
            serde_json::Value::from(source),
            serde_json::Value::from(format.as_str()),
            serde_json::to_string(&link_str(link_type)).unwrap_or_else(|_| "null".into()),
        );
        self.attempt(|w| w.write_all(head.as_bytes()));
    }

    fn connection(&mut self, conn: Connection) {
        self.summary.add(&conn);
        let sep = if self.first { "\n" } else { ",\n" };
        self.first = false;
        let json = connection_json(&conn);
        self.attempt(|w| {
            w.write_all(sep.as_bytes())?;
            serde_json::to_writer(&mut *w, &json).map_err(io::Error::other)
        });
    }

    fn end(&mut self, file: &FileInfo) {
        let warnings: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
        let tail = serde_json::json!({
            "packets": file.packets,
            "non_tcp": file.non_tcp,
            "duplicates": file.duplicates,
            "counts": counts(&self.summary),
            "warnings": warnings,
        });
        // Splice the tail object's members after `connections`.
        let tail = tail.to_string();
        let members = &tail[1..tail.len() - 1];
        self.attempt(|w| write!(w, "\n],{members}}}\n"));
    }
}

/// The whole analysis as one JSON value (in-memory callers: runner, tests).
pub fn to_value(a: &Analysis) -> serde_json::Value {
    let mut summary = Summary::default();
    for c in &a.connections {
        summary.add(c);
    }
    serde_json::json!({
        "source": a.file.source,
        "format": a.file.format.as_str(),
        "link_type": link_str(a.file.link_type),
        "packets": a.file.packets,
        "non_tcp": a.file.non_tcp,
        "duplicates": a.file.duplicates,
        "connections": a.connections.iter().map(connection_value).collect::<Vec<_>>(),
        "counts": counts(&summary),
        "warnings": a.file.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
