//! tcplab-client: a Rust port of the seed's Python client, with knobs for teardown experiments.
//!
//! The seed client connects, sends `get`, reads up to 1024 bytes, and closes. The knobs are the
//! server's ([`CloseHow`], `close_delay_ms`, TCP_NODELAY, TCP_QUICKACK) plus `read_response`:
//! `false` never reads the answer, so the close finds unread data and sends RST
//! (RFC 2525 §2.17).
//!
//! Outcomes that an experiment may provoke on purpose (ECONNRESET on the read, ...) are recorded
//! in the [`ClientReport`]; only failures to run at all are errors ([`ClientError`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

use tcplab_endpoint::conn;
pub use tcplab_endpoint::conn::{CallResult, Calls, TeardownOptions};
use tcplab_endpoint::timing::{duration_from_ms, InvalidOption, Origin};
use tcplab_endpoint::REQUEST;
pub use tcplab_endpoint::{CloseHow, CloseReport, IoFailure, SocketError};

/// Client knobs. Embedded in scenario files, so the field names are a public interface.
/// The server's address is not a knob: it is passed to [`run_client`], since scenarios bind the
/// server to an ephemeral port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientOptions {
    /// Connections to make, one after the other.
    pub count: u32,
    /// Pause between the last read/send and the close, in milliseconds (±1 ms on the wire).
    pub close_delay_ms: f64,
    /// Pause between sending the request and reading the answer, in milliseconds: the answer
    /// and a server's FIN are then in before the read (what a slow reader sees).
    pub read_delay_ms: f64,
    /// How to close.
    pub close: CloseHow,
    /// Read the response. `false` never reads it; the client then waits until the response has
    /// arrived, so that the close finds unread data.
    pub read_response: bool,
    /// TCP_NODELAY on the socket.
    pub nodelay: bool,
    /// TCP_QUICKACK on the socket, re-armed after each read.
    pub quickack: bool,
    /// SO_LINGER {1, N} / TCP_USER_TIMEOUT on the socket.
    pub teardown: TeardownOptions,
    /// Give up connecting after this long; 0 uses the OS default.
    pub connect_timeout_ms: f64,
    /// Give up a blocking read/write after this long; 0 waits forever.
    pub io_timeout_ms: f64,
    /// After the close, wait this long and open a second connection to the same server
    /// ([`Reconnect`]): a new SYN on the first connection's 4-tuple.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_after_ms: Option<f64>,
    /// Where the second connection comes from.
    pub reconnect_port: ReconnectPort,
    /// Give up the connection before it exists: a non-blocking connect(2), then close(2) this
    /// long later, while the socket is still in SYN_SENT (the SYN-ACK not yet arrived).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandon_connect_ms: Option<f64>,
}

/// The local port of the second connection (`reconnect_after_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReconnectPort {
    /// bind(2) the first connection's address and port first (no SO_REUSEADDR): the same
    /// 4-tuple, or EADDRINUSE while the port is held (TIME_WAIT).
    #[default]
    Same,
    /// Let connect(2) pick (inet_hash_connect): with a one-port `ip_local_port_range` the
    /// same 4-tuple again, reused from TIME_WAIT only under `tcp_tw_reuse`.
    Any,
}

/// The second connection (`reconnect_after_ms`): connect, send `get`, read the answer, close
/// at once. Its calls are in the report's `calls` (`reconnect_*`).
#[derive(Debug, Clone, Serialize)]
pub struct Reconnect {
    /// Our end of it, when connected.
    pub local: Option<SocketAddr>,
    /// How long connect(2) took, µs (a SYN answered at once: well under the 1 s SYN RTO).
    pub connect_took_us: Option<f64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            count: 1,
            close_delay_ms: 0.0,
            read_delay_ms: 0.0,
            close: CloseHow::Close,
            read_response: true,
            nodelay: false,
            quickack: false,
            teardown: TeardownOptions::default(),
            connect_timeout_ms: 5_000.0,
            io_timeout_ms: 10_000.0,
            reconnect_after_ms: None,
            reconnect_port: ReconnectPort::Same,
            abandon_connect_ms: None,
        }
    }
}

/// Why the client could not run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A knob has an unusable value.
    #[error(transparent)]
    InvalidOption(#[from] InvalidOption),
    /// A socket call failed (including connect: refused, timed out).
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Writing the standalone mode's output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
    /// The server accepted the connection but then said nothing (standalone mode).
    #[error("{server} accepted the connection but sent nothing within {timeout_ms} ms ({op} timed out); is it a tcplab server?")]
    Silent {
        /// The server.
        server: SocketAddr,
        /// What timed out (`read`, `write`).
        op: &'static str,
        /// The I/O timeout.
        timeout_ms: f64,
    },
}

/// What happened on one connection. Times are microseconds after `start_unix_ns`.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    /// Our end of the connection.
    pub local: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// Wall clock (CLOCK_REALTIME, the clock of pcap timestamps) just before connect(2).
    pub start_unix_ns: u64,
    /// When connect(2) returned.
    pub connected_us: f64,
    /// When the `get` write returned.
    pub request_sent_us: Option<f64>,
    /// The bytes read (lossy UTF-8); `None` if not read or the read failed.
    pub response: Option<String>,
    /// Number of bytes read.
    pub response_bytes: usize,
    /// When the read returned.
    pub response_read_us: Option<f64>,
    /// When the response had arrived without being read (`read_response = false`).
    pub response_pending_us: Option<f64>,
    /// The close and its timing.
    pub close: CloseReport,
    /// A read/write failure seen before closing (e.g. ECONNRESET from a server's RST).
    pub error: Option<IoFailure>,
    /// The socket's `SO_COOKIE` (the kernel's id of it), if the kernel gave it.
    pub socket_cookie: Option<u64>,
    /// What each socket call returned.
    pub calls: Calls,
    /// The second connection, when `reconnect_after_ms` asked for one.
    pub reconnect: Option<Reconnect>,
}

impl ClientReport {
    /// A connection that has exchanged nothing yet: no request, answer or error (the
    /// exchange fills them in as it goes).
    fn connected(
        local: SocketAddr,
        server: SocketAddr,
        origin: &Origin,
        connected_us: f64,
        socket_cookie: Option<u64>,
        close: CloseReport,
        calls: Calls,
    ) -> ClientReport {
        ClientReport {
            local,
            server,
            start_unix_ns: origin.unix_ns(),
            connected_us,
            request_sent_us: None,
            response: None,
            response_bytes: 0,
            response_read_us: None,
            response_pending_us: None,
            close,
            error: None,
            socket_cookie,
            calls,
            reconnect: None,
        }
    }
}

/// Connect to `server`, send `get`, read the answer, close; as the knobs say.
pub fn run_client(opts: &ClientOptions, server: SocketAddr) -> Result<ClientReport, ClientError> {
    let close_delay = duration_from_ms("close_delay_ms", opts.close_delay_ms)?;
    let read_delay = duration_from_ms("read_delay_ms", opts.read_delay_ms)?;
    let io_timeout = duration_from_ms("io_timeout_ms", opts.io_timeout_ms)?;
    let connect_timeout = duration_from_ms("connect_timeout_ms", opts.connect_timeout_ms)?;

    let socket = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(SocketError::new("socket", server))?;
    if opts.nodelay {
        // Before connect, so even the first data segment is sent without Nagle's wait.
        socket
            .set_tcp_nodelay(true)
            .map_err(SocketError::new("setsockopt(TCP_NODELAY)", server))?;
    }
    let origin = Origin::now();
    if let Some(ms) = opts.abandon_connect_ms {
        let wait = duration_from_ms("abandon_connect_ms", ms)?;
        return Ok(abandon_connect(opts, socket, server, &origin, wait));
    }
    if connect_timeout.is_zero() {
        socket.connect(&server.into())
    } else {
        socket.connect_timeout(&server.into(), connect_timeout)
    }
    .map_err(SocketError::new("connect", server))?;
    let connected_us = origin.elapsed_us();
    // The kernel's id of this socket (tcp_destroy_sock reports it): lets a live run pick
    // this socket's events out of a machine-wide kernel trace.
    let socket_cookie = socket.cookie().ok();
    let mut stream: TcpStream = socket.into();
    conn::apply_conn_options(&stream, server, opts.nodelay, opts.quickack, io_timeout)?;
    conn::apply_teardown_options(&stream, server, &opts.teardown)?;
    let local = stream
        .local_addr()
        .map_err(SocketError::new("getsockname", server))?;

    let mut report = ClientReport::connected(
        local,
        server,
        &origin,
        connected_us,
        socket_cookie,
        CloseReport::empty(opts.close),
        Calls {
            connect: Some(CallResult::Ok),
            ..Default::default()
        },
    );

    let mut last_io = Instant::now();
    let sent = stream.write_all(REQUEST);
    report.calls.send = Some(CallResult::of(&sent));
    match sent {
        Ok(()) => {
            last_io = Instant::now();
            report.request_sent_us = Some(origin.offset_us(last_io));
            conn::delay_from(last_io, read_delay);
            read_phase(
                opts,
                &mut stream,
                server,
                &origin,
                &mut last_io,
                &mut report,
            )?;
        }
        Err(e) => report.error = Some(IoFailure::new("write", &e)),
    }
    conn::delay_from(last_io, close_delay);
    report.close = conn::close_stream(
        stream,
        server,
        opts.close,
        opts.quickack,
        &opts.teardown,
        &origin,
        &mut report.calls,
    )?;
    if let Some(ms) = opts.reconnect_after_ms {
        std::thread::sleep(duration_from_ms("reconnect_after_ms", ms)?);
        let again = reconnect(opts, server, local, connect_timeout, &mut report.calls);
        report.reconnect = Some(again);
    }
    Ok(report)
}

/// `abandon_connect_ms`: start connecting without waiting, and close the socket `wait` later
/// (in SYN_SENT, unless the handshake completed meanwhile). connect(2) returns EINPROGRESS.
fn abandon_connect(
    opts: &ClientOptions,
    socket: Socket,
    server: SocketAddr,
    origin: &Origin,
    wait: Duration,
) -> ClientReport {
    let mut calls = Calls::default();
    let r = socket
        .set_nonblocking(true)
        .and_then(|()| socket.connect(&server.into()));
    calls.connect = Some(CallResult::of(&r));
    let connected_us = origin.elapsed_us();
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(server);
    let socket_cookie = socket.cookie().ok();
    std::thread::sleep(wait);
    let mut close = CloseReport::empty(opts.close);
    close.close_us = origin.elapsed_us();
    drop(socket);
    close.closed_us = origin.elapsed_us();
    calls.close = Some(CallResult::Ok);
    ClientReport::connected(
        local,
        server,
        origin,
        connected_us,
        socket_cookie,
        close,
        calls,
    )
}

/// The second connection: bind (with [`ReconnectPort::Same`]) and connect; once connected,
/// the seed's exchange and an immediate close. Failures are call results, not errors: they
/// are what the scenario observes.
fn reconnect(
    opts: &ClientOptions,
    server: SocketAddr,
    first: SocketAddr,
    connect_timeout: Duration,
    calls: &mut Calls,
) -> Reconnect {
    let mut out = Reconnect {
        local: None,
        connect_took_us: None,
    };
    let socket = match Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    ) {
        Ok(s) => s,
        Err(e) => {
            calls.reconnect_connect = Some(CallResult::of_error(&e));
            return out;
        }
    };
    if opts.reconnect_port == ReconnectPort::Same {
        let r = socket.bind(&first.into());
        calls.reconnect_bind = Some(CallResult::of(&r));
        if r.is_err() {
            return out;
        }
    }
    let started = Instant::now();
    let r = if connect_timeout.is_zero() {
        socket.connect(&server.into())
    } else {
        socket.connect_timeout(&server.into(), connect_timeout)
    };
    calls.reconnect_connect = Some(CallResult::of(&r));
    if r.is_err() {
        return out;
    }
    out.connect_took_us = Some(started.elapsed().as_secs_f64() * 1e6);
    out.local = socket.local_addr().ok().and_then(|a| a.as_socket());
    let mut stream: TcpStream = socket.into();
    // As the first connection: 0 waits forever. A failure to set it only risks a longer wait.
    let io_timeout =
        (opts.io_timeout_ms > 0.0).then(|| Duration::from_secs_f64(opts.io_timeout_ms / 1e3));
    let _ = stream.set_read_timeout(io_timeout);
    if stream.write_all(REQUEST).is_ok() {
        let mut buf = [0u8; 1024];
        calls.reconnect_recv = Some(CallResult::of_recv(&stream.read(&mut buf)));
    }
    out
}

fn read_phase(
    opts: &ClientOptions,
    stream: &mut TcpStream,
    server: SocketAddr,
    origin: &Origin,
    last_io: &mut Instant,
    report: &mut ClientReport,
) -> Result<(), ClientError> {
    if opts.read_response {
        let mut buf = [0u8; 1024];
        let r = conn::read_once(stream, server, opts.quickack, &mut buf)?;
        report.calls.recv = Some(CallResult::of_recv(&r));
        match r {
            Ok(n) => {
                *last_io = Instant::now();
                report.response_read_us = Some(origin.offset_us(*last_io));
                report.response_bytes = n;
                let got = buf.get(..n).unwrap_or_default();
                report.response = Some(String::from_utf8_lossy(got).into_owned());
            }
            Err(e) => report.error = Some(IoFailure::new("read", &e)),
        }
    } else {
        match conn::wait_readable(stream) {
            Ok(_) => {
                *last_io = Instant::now();
                report.response_pending_us = Some(origin.offset_us(*last_io));
            }
            Err(e) => report.error = Some(IoFailure::new("peek", &e)),
        }
    }
    Ok(())
}

/// Run `opts.count` connections one after the other.
pub fn run_clients(
    opts: &ClientOptions,
    server: SocketAddr,
) -> Result<Vec<ClientReport>, ClientError> {
    (0..opts.count).map(|_| run_client(opts, server)).collect()
}

/// The seed's client for humans: run `opts.count` connections, printing each response (or the
/// error seen instead) on its own line, like the seed's `print s.recv(1024)`.
pub fn run_standalone(
    opts: &ClientOptions,
    server: SocketAddr,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    for _ in 0..opts.count {
        let r = run_client(opts, server)?;
        if let Some(e) = r.error.as_ref().filter(|e| e.is_timeout()) {
            return Err(ClientError::Silent {
                server,
                op: e.op,
                timeout_ms: opts.io_timeout_ms,
            });
        }
        match (&r.response, &r.error) {
            (_, Some(e)) => writeln!(
                out,
                "{} ({})",
                r.response.as_deref().unwrap_or(""),
                e.message
            ),
            (Some(resp), None) => writeln!(out, "{resp}"),
            (None, None) => writeln!(out, "(response not read)"),
        }
        .map_err(ClientError::Output)?;
    }
    out.flush().map_err(ClientError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_from_a_scenario_table() {
        let o: ClientOptions = toml::from_str(
            "close_delay_ms = 20.0\nclose = \"linger0\"\nread_response = false\nquickack = true",
        )
        .expect("valid");
        assert_eq!(o.close, CloseHow::Linger0);
        assert_eq!(o.close_delay_ms, 20.0);
        assert!(!o.read_response && o.quickack && !o.nodelay);
        assert_eq!(o.count, 1, "defaults fill the rest");
        let e = toml::from_str::<ClientOptions>("close_delay = 20.0").expect_err("unknown field");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_delay_is_an_error_before_any_socket() {
        let o = ClientOptions {
            close_delay_ms: -1.0,
            ..Default::default()
        };
        // 192.0.2.1 (TEST-NET-1) is never contacted: validation fails first.
        let addr: SocketAddr = "192.0.2.1:9".parse().expect("literal");
        assert!(matches!(
            run_client(&o, addr),
            Err(ClientError::InvalidOption(_))
        ));
    }
}
