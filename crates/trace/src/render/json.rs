//! The contract's JSON (docs/teardown.md, `tcplab analyze --json`). This is the only module that
//! knows JSON field names; the wire types are serialize-only.
//!
//! Output streams: the header fields, then each connection as it finishes (in first-packet
//! order), then the whole-file counts — all on one line, so that several inputs give JSON
//! Lines (one object per file per line). JSON objects are unordered, so `packets` after
//! `connections` is the same object as in the contract's example. A read error in the middle
//! of the input still closes the object, with the error in its `error` member.

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
    encap: Vec<String>,
    /// Zeek's conn.log `conn_state` and `history`, and which side Zeek calls the originator.
    conn_state: Option<&'static str>,
    history: Option<String>,
    zeek_orig: Option<&'static str>,
    /// Zeek's further rows on this 4-tuple (after its timeouts), each with its first packet.
    zeek_later: Vec<ZeekLaterJson>,
    rst_cause: Vec<RstJson>,
}

#[derive(Serialize)]
struct ZeekLaterJson {
    first_packet: u64,
    conn_state: &'static str,
    history: String,
    zeek_orig: &'static str,
}

fn zeek_later_json(c: &Connection) -> Vec<ZeekLaterJson> {
    c.zeek.as_ref().map_or_else(Vec::new, |z| {
        z.later
            .iter()
            .map(|l| ZeekLaterJson {
                first_packet: l.first_packet,
                conn_state: l.view.conn_state.as_str(),
                history: l.view.history.clone(),
                zeek_orig: zeek_orig(&l.view).as_str(),
            })
            .collect()
    })
}

#[derive(Serialize)]
struct RstJson {
    packet: u64,
    from: &'static str,
    cause: &'static str,
    evidence: String,
    /// Live runs only: what the sending kernel said (`tcp:tcp_send_reset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_reason: Option<KernelReasonJson>,
}

#[derive(Serialize)]
struct KernelReasonJson {
    /// The kernel's name for it (`TCP_ABORT_ON_LINGER`), or null.
    reason: Option<&'static str>,
    /// Its `enum sk_rst_reason` value, or null.
    value: Option<u32>,
    /// Why there is no reason (`not reported by this kernel`, `not recorded`), or null.
    missing: Option<&'static str>,
}

fn kernel_reason_json(k: crate::rst::KernelReason) -> KernelReasonJson {
    use crate::rst::KernelReason::*;
    let (reason, value, missing) = match k {
        Reported { value, name } => (name, Some(value), None),
        NotReported => (None, None, Some("not reported by this kernel")),
        NotRecorded => (None, None, Some("not recorded")),
    };
    KernelReasonJson {
        reason,
        value,
        missing,
    }
}

fn rst_json(c: &Connection) -> Vec<RstJson> {
    c.rst
        .iter()
        .map(|r| RstJson {
            packet: r.packet,
            from: r.from.as_str(),
            cause: r.cause.code(),
            evidence: super::human::rst_text(r, super::Lang::En),
            kernel_reason: r.kernel.map(kernel_reason_json),
        })
        .collect()
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
        encap: c.encap.iter().map(ToString::to_string).collect(),
        conn_state: c.zeek.as_ref().map(|z| z.conn_state.as_str()),
        history: c.zeek.as_ref().map(|z| z.history.clone()),
        zeek_orig: c.zeek.as_ref().map(|z| zeek_orig(z).as_str()),
        zeek_later: zeek_later_json(c),
        rst_cause: rst_json(c),
    }
}

/// The tcplab side that Zeek takes for the originator.
fn zeek_orig(z: &crate::zeek::ZeekView) -> Side {
    if z.orig_is_client {
        Side::Client
    } else {
        Side::Server
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

/// Output is handed to the writer in chunks of about this size: the output of a big capture
/// is larger than the capture, and one `write` per connection (~1 KB) cost a system call and,
/// through Rust's line-buffered stdout, a scan for newlines each.
const CHUNK: usize = 256 * 1024;

/// Streams the contract's object to a writer; implements [`AnalysisSink`].
/// I/O errors are remembered and returned by [`JsonWriter::finish`]. The writer gets whole
/// chunks of [`CHUNK`] bytes (and the rest at the end of each input), so it needs no buffer
/// of its own.
#[derive(Debug)]
pub struct JsonWriter<W: Write> {
    out: W,
    /// Output not yet handed to `out`.
    buf: Vec<u8>,
    first: bool,
    summary: Summary,
    error: Option<io::Error>,
}

impl<W: Write> JsonWriter<W> {
    /// A writer that will print one object to `out`.
    pub fn new(out: W) -> JsonWriter<W> {
        JsonWriter {
            out,
            buf: Vec::with_capacity(CHUNK + 8192),
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

    /// Hand the buffered output to the writer once a chunk is full (`all`: whatever there is).
    fn drain(&mut self, all: bool) {
        if self.buf.len() >= CHUNK || (all && !self.buf.is_empty()) {
            let buf = std::mem::take(&mut self.buf);
            self.attempt(|w| w.write_all(&buf));
            self.buf = buf;
            self.buf.clear();
        }
    }

    /// Flush and return the first I/O error, if any.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(true);
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
        self.buf.extend_from_slice(head.as_bytes());
    }

    fn connection(&mut self, conn: Connection) {
        self.summary.add(&conn);
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        write_connection(&conn, &mut self.buf);
        self.drain(false);
    }

    fn end(&mut self, file: &FileInfo) {
        self.tail(file, None);
    }

    fn failed(&mut self, file: &FileInfo, error: &crate::input::ReadError) {
        self.tail(file, Some(error.to_string()));
    }
}

impl<W: Write> JsonWriter<W> {
    /// Close the object: the whole-file members after `connections` (and `error` when the
    /// input could not be read to its end).
    fn tail(&mut self, file: &FileInfo, error: Option<String>) {
        let warnings: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
        let mut tail = serde_json::json!({
            "packets": file.packets,
            "non_tcp": file.non_tcp,
            "duplicates": file.duplicates,
            "after_close": file.after_close,
            "counts": counts(&self.summary),
            "warnings": warnings,
        });
        if let (Some(e), Some(obj)) = (error, tail.as_object_mut()) {
            obj.insert("error".into(), e.into());
        }
        // Splice the tail object's members after `connections`.
        let tail = tail.to_string();
        let members = &tail[1..tail.len() - 1];
        self.buf.extend_from_slice(b"],");
        self.buf.extend_from_slice(members.as_bytes());
        self.buf.extend_from_slice(b"}\n");
        // The line is complete: a reader of JSON Lines gets it now, not with the next input.
        self.drain(true);
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
        "after_close": a.file.after_close,
        "connections": a.connections.iter().map(connection_value).collect::<Vec<_>>(),
        "counts": counts(&summary),
        "warnings": a.file.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// Append one connection's object to `buf`: the same object as [`connection_value`] (a test
/// holds them equal), written by hand because a million connections through serde's
/// generic path cost more than the whole analysis.
pub fn write_connection(c: &Connection, buf: &mut Vec<u8>) {
    let mut int = itoa::Buffer::new();
    let mut num = |buf: &mut Vec<u8>, n: u64| buf.extend_from_slice(int.format(n).as_bytes());
    buf.extend_from_slice(b"{\"client\":\"");
    push_endpoint(buf, c.client);
    buf.extend_from_slice(b"\",\"server\":\"");
    push_endpoint(buf, c.server);
    buf.extend_from_slice(b"\",\"teardown\":{\"kind\":\"");
    buf.extend_from_slice(c.teardown.kind.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"active_closer\":");
    match c.teardown.active_closer {
        Some(x) => {
            buf.push(b'"');
            buf.extend_from_slice(x.as_str().as_bytes());
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(if c.teardown.final_ack {
        b",\"final_ack\":true,\"fin_retransmits\":"
    } else {
        b",\"final_ack\":false,\"fin_retransmits\":"
    });
    num(buf, u64::from(c.teardown.fin_retransmits));
    buf.extend_from_slice(b",\"fin_ack_delay_ms\":");
    push_ms(buf, c.teardown.fin_ack_delay_ns);
    buf.extend_from_slice(b",\"close_duration_ms\":");
    push_ms(buf, c.teardown.close_duration_ns);
    buf.extend_from_slice(b"},\"packets\":[");
    for (i, p) in c.teardown_packets.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        num(buf, *p);
    }
    buf.extend_from_slice(b"],\"states\":{");
    for side in [Side::Client, Side::Server] {
        buf.extend_from_slice(if side == Side::Client {
            b"\"client\":["
        } else {
            b",\"server\":["
        });
        for (i, ch) in c.states[side.idx()].changes().iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"packet\":");
            num(buf, ch.packet);
            buf.extend_from_slice(b",\"state\":\"");
            buf.extend_from_slice(ch.state.as_str().as_bytes());
            buf.extend_from_slice(b"\",\"source\":\"");
            buf.extend_from_slice(ch.source.as_str().as_bytes());
            buf.extend_from_slice(b"\"}");
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b"},\"warnings\":[");
    for (i, w) in c.warnings.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Warning texts are codes, but escape them properly all the same.
        let _ = serde_json::to_writer(&mut *buf, &w.to_string());
    }
    buf.extend_from_slice(b"],\"first_packet\":");
    num(buf, c.first_packet);
    buf.extend_from_slice(b",\"packet_count\":");
    num(buf, c.packet_count);
    buf.extend_from_slice(b",\"encap\":[");
    for (i, e) in c.encap.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut *buf, &e.to_string());
    }
    buf.push(b']');
    match &c.zeek {
        Some(z) => {
            buf.extend_from_slice(b",\"conn_state\":\"");
            buf.extend_from_slice(z.conn_state.as_str().as_bytes());
            // History letters are ASCII letters and `^`: nothing to escape.
            buf.extend_from_slice(b"\",\"history\":\"");
            buf.extend_from_slice(z.history.as_bytes());
            buf.extend_from_slice(b"\",\"zeek_orig\":\"");
            buf.extend_from_slice(zeek_orig(z).as_str().as_bytes());
            buf.extend_from_slice(b"\"}");
        }
        None => buf.extend_from_slice(b",\"conn_state\":null,\"history\":null,\"zeek_orig\":null}"),
    }
    // `zeek_later` and `rst_cause`, spliced before the closing brace (rare: only
    // connections Zeek splits, or with an RST).
    buf.pop();
    buf.extend_from_slice(b",\"zeek_later\":");
    match &c.zeek {
        Some(z) if !z.later.is_empty() => {
            let _ = serde_json::to_writer(&mut *buf, &zeek_later_json(c));
        }
        _ => buf.extend_from_slice(b"[]"),
    }
    buf.extend_from_slice(b",\"rst_cause\":");
    if c.rst.is_empty() {
        buf.extend_from_slice(b"[]");
    } else {
        let _ = serde_json::to_writer(&mut *buf, &rst_json(c));
    }
    buf.push(b'}');
}

fn push_endpoint(buf: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            let mut int = itoa::Buffer::new();
            for (i, o) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(int.format(*o).as_bytes());
            }
            buf.push(b':');
            buf.extend_from_slice(int.format(v4.port()).as_bytes());
        }
        SocketAddr::V6(_) => buf.extend_from_slice(endpoint(a).as_bytes()),
    }
}

fn push_ms(buf: &mut Vec<u8>, ns: Option<i64>) {
    match ns.map(ms) {
        Some(v) if v.is_finite() => {
            let mut f = ryu::Buffer::new();
            buf.extend_from_slice(f.format(v).as_bytes());
        }
        _ => buf.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that fails after handing out `ok` bytes.
    struct FailAfter {
        bytes: Vec<u8>,
        pos: usize,
        ok: usize,
    }

    impl std::io::Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos >= self.ok {
                return Err(io::Error::other("device went away"));
            }
            let n = buf.len().min(self.ok - self.pos);
            buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn read_error_mid_file_still_closes_the_object() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/live/four-way-server-delay-100ms.pcap"
        ))
        .unwrap();
        let ok = text.len() / 2;
        let reader = std::io::BufReader::with_capacity(
            64,
            FailAfter {
                bytes: text,
                pos: 0,
                ok,
            },
        );
        let mut out = Vec::new();
        let mut sink = JsonWriter::new(&mut out);
        let r = crate::analyze_stream(reader, "cut.pcap", &Default::default(), &mut sink);
        assert!(r.is_err());
        sink.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert!(
            v["error"].as_str().unwrap().contains("device went away"),
            "{v}"
        );
        assert_eq!(v["connections"].as_array().unwrap().len(), 1);
        assert!(v["packets"].as_u64().unwrap() > 0);
    }

    #[test]
    fn hand_written_object_equals_the_serde_one() {
        let text = "\
10:00:00.000000 IP6 ::1.40000 > ::1.60000: Flags [S], seq 100, win 1, length 0
10:00:00.000100 IP6 ::1.60000 > ::1.40000: Flags [S.], seq 900, ack 101, win 1, length 0
10:00:00.000200 IP6 ::1.40000 > ::1.60000: Flags [F.], seq 101, ack 901, win 1, length 0
10:00:00.040200 IP6 ::1.60000 > ::1.40000: Flags [.], ack 102, win 1, length 0
10:00:00.100000 IP6 ::1.60000 > ::1.40000: Flags [F.], seq 901, ack 102, win 1, length 0
10:00:00.100100 IP6 ::1.40000 > ::1.60000: Flags [.], ack 902, win 1, length 0
10:00:01.000000 IP 127.0.0.1.5 > 127.0.0.2.80: Flags [P.], seq 1:10, ack 7, win 1, length 9
10:00:01.000100 IP 127.0.0.2.80 > 127.0.0.1.5: Flags [R], seq 7, win 1, length 0
10:00:02.000000 IP 127.0.0.1.6 > 127.0.0.2.80: Flags [S], seq 1, win 1, length 0
";
        let a = crate::analyze(text.as_bytes(), "t").unwrap();
        assert_eq!(a.connections.len(), 3);
        for c in &a.connections {
            let mut buf = Vec::new();
            write_connection(c, &mut buf);
            let fast: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(fast, connection_value(c));
        }
    }
}
