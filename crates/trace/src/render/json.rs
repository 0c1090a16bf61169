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
    /// The last connection written, handed back for its buffers ([`AnalysisSink::spare`]).
    spare: Option<Connection>,
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
            spare: None,
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
        self.spare = Some(conn);
    }

    fn spare(&mut self) -> Option<Connection> {
        self.spare.take()
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
        push_display(buf, w);
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
        push_display(buf, e);
    }
    buf.push(b']');
    match &c.zeek {
        Some(z) => {
            buf.extend_from_slice(b",\"conn_state\":\"");
            push_zeek_labels(buf, z);
        }
        None => buf.extend_from_slice(b",\"conn_state\":null,\"history\":null,\"zeek_orig\":null"),
    }
    buf.extend_from_slice(b",\"zeek_later\":[");
    for (i, l) in c.zeek.iter().flat_map(|z| &z.later).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"first_packet\":");
        num(buf, l.first_packet);
        buf.extend_from_slice(b",\"conn_state\":\"");
        push_zeek_labels(buf, &l.view);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"rst_cause\":[");
    for (i, r) in c.rst.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"packet\":");
        num(buf, r.packet);
        buf.extend_from_slice(b",\"from\":\"");
        buf.extend_from_slice(r.from.as_str().as_bytes());
        buf.extend_from_slice(b"\",\"cause\":\"");
        buf.extend_from_slice(r.cause.code().as_bytes());
        buf.extend_from_slice(b"\",\"evidence\":");
        push_str(buf, &super::human::rst_text(r, super::Lang::En));
        if let Some(k) = r.kernel {
            push_kernel_reason(buf, k);
        }
        buf.push(b'}');
    }
    buf.extend_from_slice(b"]}");
}

/// `conn_state`'s value (its opening quote already written), `history` and `zeek_orig`.
fn push_zeek_labels(buf: &mut Vec<u8>, z: &crate::zeek::ZeekView) {
    buf.extend_from_slice(z.conn_state.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"history\":");
    // History letters are ASCII letters and `^`, but escape them properly all the same.
    push_str(buf, &z.history);
    buf.extend_from_slice(b",\"zeek_orig\":\"");
    buf.extend_from_slice(zeek_orig(z).as_str().as_bytes());
    buf.push(b'"');
}

/// `,"kernel_reason":{…}` ([`KernelReasonJson`]; live runs only).
fn push_kernel_reason(buf: &mut Vec<u8>, k: crate::rst::KernelReason) {
    let k = kernel_reason_json(k);
    let opt_str = |buf: &mut Vec<u8>, v: Option<&str>| match v {
        Some(v) => push_str(buf, v),
        None => buf.extend_from_slice(b"null"),
    };
    buf.extend_from_slice(b",\"kernel_reason\":{\"reason\":");
    opt_str(buf, k.reason);
    buf.extend_from_slice(b",\"value\":");
    match k.value {
        Some(v) => buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"missing\":");
    opt_str(buf, k.missing);
    buf.push(b'}');
}

/// `s` as a JSON string, quotes included, escaped exactly as serde_json does (a test holds
/// them equal): `"` and `\\`, and control characters as `\\n`-style or `\\u00XX` escapes;
/// everything else, non-ASCII included, as it is.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    push_escaped(buf, s);
    buf.push(b'"');
}

fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Almost every text has nothing to escape: check that first, 16 bytes at a time with no
    // early exit (which the compiler turns into vector compares), and copy it in one go.
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    if !bytes
        .chunks(16)
        .any(|c| c.iter().fold(false, |any, &b| any | needs(b)))
    {
        buf.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(esc);
        }
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// A value's `Display` text as a JSON string, written straight into `buf` (no `String` per
/// warning or encapsulation layer).
fn push_display(buf: &mut Vec<u8>, v: &dyn std::fmt::Display) {
    struct Escaping<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Escaping<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            push_escaped(self.0, s);
            Ok(())
        }
    }
    buf.push(b'"');
    let _ = std::fmt::write(&mut Escaping(buf), format_args!("{v}"));
    buf.push(b'"');
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
    let Some(ns) = ns else {
        buf.extend_from_slice(b"null");
        return;
    };
    if !push_ms_exact(buf, ns) {
        let v = ms(ns);
        if v.is_finite() {
            buf.extend_from_slice(ryu::Buffer::new().format(v).as_bytes());
        } else {
            buf.extend_from_slice(b"null");
        }
    }
}

/// `ms(ns)` as serde (ryu) prints it, without the float: the value is a whole number of
/// microseconds, and below 10^15 µs (and 2^53 ns, where `ms` is exact) ryu's shortest form
/// is that number's decimal digits with the point three places in and trailing zeros
/// dropped (at least one digit after the point). False, writing nothing, outside that range.
fn push_ms_exact(buf: &mut Vec<u8>, ns: i64) -> bool {
    const EXACT_NS: u64 = 1 << 53;
    const SHORT_US: u64 = 1_000_000_000_000_000;
    let abs = ns.unsigned_abs();
    if abs >= EXACT_NS {
        return false;
    }
    // f64::round halves away from zero, so this is `ms`'s rounding; a small negative
    // value rounds to -0.0, which ryu prints as "-0.0".
    let us = (abs + 500) / 1000;
    if us >= SHORT_US {
        return false;
    }
    if ns < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(itoa::Buffer::new().format(us / 1000).as_bytes());
    let frac = us % 1000;
    let digit = |d: u64| b'0' + (d % 10) as u8;
    let digits = [b'.', digit(frac / 100), digit(frac / 10), digit(frac)];
    let len = if frac == 0 || frac % 100 == 0 {
        2
    } else if frac % 10 == 0 {
        3
    } else {
        4
    };
    buf.extend_from_slice(&digits[..len]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encap::EncapLayer;
    use crate::warning::Warning;

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

    fn serde_text(v: &impl Serialize) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn hand(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn hand_written_strings_are_escaped_as_serde_does() {
        let mut every_ascii = String::new();
        for b in 0u8..0x80 {
            every_ascii.push(char::from(b));
        }
        for s in [
            "",
            "plain",
            "\"quoted\" and \\back\\slashed\\",
            "tab\tnew\nline\rcr\u{8}bs\u{c}ff\u{0}nul\u{1f}us\u{7f}del",
            "non-ASCII: 客户端的RST在双方FIN之后 — § é \u{2028}\u{2029} 😀",
            "/slash/ <tag> &amp;",
            every_ascii.as_str(),
        ] {
            assert_eq!(hand(|b| push_str(b, s)), serde_text(&s), "{s:?}");
            assert_eq!(hand(|b| push_display(b, &s)), serde_text(&s), "{s:?}");
        }
    }

    #[test]
    fn hand_written_warnings_and_layers_equal_their_serde_strings() {
        let warnings = [
            Warning::RolesGuessed,
            Warning::FinInferred(Side::Server),
            Warning::AckForUncapturedData(Side::Client),
            Warning::DamagedPacket {
                packet: 7,
                layer: "line",
                reason: "unexpected \"token\"\tat \\ col 3\n客户端".into(),
                repeats: 2,
            },
            Warning::FragmentsDropped {
                timed_out: 1,
                overlapping: 0,
                evicted: 3,
            },
        ];
        for w in &warnings {
            assert_eq!(hand(|b| push_display(b, w)), serde_text(&w.to_string()));
        }
        let v4 = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let layers = [
            EncapLayer::Vlan(100),
            EncapLayer::VnTag { dst: 1, src: 2 },
            EncapLayer::Gre {
                src: v4("198.51.100.250"),
                dst: v4("2001:db8::1"),
                key: Some(7),
                udp: true,
            },
            EncapLayer::Tunnel {
                name: "teredo",
                src: v4("192.0.2.1"),
                dst: v4("192.0.2.2"),
            },
        ];
        for l in &layers {
            assert_eq!(hand(|b| push_display(b, l)), serde_text(&l.to_string()));
        }
    }

    #[test]
    fn hand_written_endpoints_equal_std_display() {
        for a in [
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "192.0.2.1:80",
            "198.51.100.10:10",
            "127.0.0.1:9",
            "[::1]:60000",
            "[2001:db8::1]:443",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(hand(|b| push_endpoint(b, a)), a.to_string());
        }
    }

    #[test]
    fn milliseconds_without_the_float_equal_ryus() {
        // Around every rounding boundary and power of ten, the limits of the short path,
        // and a spread of other values (splitmix64, fixed seed).
        let mut values = vec![0, i64::MIN, i64::MAX, i64::MIN + 1];
        for base in (0..19)
            .map(|e| 10i64.pow(e))
            .chain([1 << 53, 999_999_999_999_999_500])
        {
            for d in -1001..=1001 {
                values.extend([base.saturating_add(d), d.saturating_sub(base)]);
            }
        }
        let mut x: u64 = 16;
        for _ in 0..200_000 {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // Every magnitude: shift the random word right by 0..63 bits.
            values.push((z >> (x % 64)) as i64);
        }
        for ns in values {
            let fast = hand(|b| push_ms(b, Some(ns)));
            assert_eq!(fast, serde_text(&ms(ns)), "{ns} ns");
        }
        assert_eq!(hand(|b| push_ms(b, None)), "null");
        assert_eq!(hand(|b| push_ms(b, Some(-1))), "-0.0");
        assert_eq!(hand(|b| push_ms(b, Some(40_123_000))), "40.123");
        assert_eq!(hand(|b| push_ms(b, Some(40_000_000))), "40.0");
    }

    #[test]
    fn hand_written_rare_members_equal_the_serde_ones() {
        // An RST, Zeek's later rows, kernel reasons, warnings and layers with text to escape,
        // empty lists: each member the writer has its own code for.
        let text = "\
10:00:01.000000 IP 127.0.0.1.5 > 127.0.0.2.80: Flags [P.], seq 1:10, ack 7, win 1, length 9
10:00:01.000100 IP 127.0.0.2.80 > 127.0.0.1.5: Flags [R], seq 7, win 1, length 0
10:00:01.000200 IP 127.0.0.2.80 > 127.0.0.1.5: Flags [R], seq 7, win 1, length 0
";
        let a = crate::analyze(text.as_bytes(), "t").unwrap();
        let mut c = a.connections[0].clone();
        assert!(c.rst.len() >= 2, "{:?}", c.rst);
        let check = |c: &Connection| {
            let mut buf = Vec::new();
            write_connection(c, &mut buf);
            let fast: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(fast, connection_value(c));
        };
        check(&c);
        c.rst[0].kernel = Some(crate::rst::KernelReason::Reported {
            value: 3,
            name: Some("TCP_ABORT_ON_LINGER"),
        });
        c.rst[1].kernel = Some(crate::rst::KernelReason::NotReported);
        check(&c);
        c.rst[0].kernel = Some(crate::rst::KernelReason::Reported {
            value: 9,
            name: None,
        });
        c.rst[1].kernel = Some(crate::rst::KernelReason::NotRecorded);
        c.warnings.push(Warning::DamagedPacket {
            packet: 1,
            layer: "line",
            reason: "a \"quote\"\n and 客户端".into(),
            repeats: 0,
        });
        c.encap = vec![EncapLayer::Vlan(7), EncapLayer::Mpls(16)];
        let z = c.zeek.as_mut().expect("zeek labels with Detail::Full");
        let later = crate::zeek::ZeekLater {
            first_packet: 3,
            view: z.clone(),
        };
        z.later = vec![later.clone(), later];
        z.later[1].view.history = "weird \"history\"".into();
        check(&c);
        c.zeek = None;
        c.rst.clear();
        c.warnings.clear();
        c.encap.clear();
        check(&c);
    }
}
