//! The server: bind, listen, accept; read the request; answer `200 ok` to `get`; close.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

use crate::conn::{
    self, CallResult, Calls, CloseHow, CloseReport, IoFailure, SocketError, TeardownOptions,
};
use crate::timing::{duration_from_ms, InvalidOption, Origin};
use crate::{MORE, REQUEST, RESPONSE};

/// Server knobs. Embedded in scenario files, so the field names are a public interface.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerOptions {
    /// Address to listen on: `127.0.0.1`, `::1`, ...
    pub address: IpAddr,
    /// Port to listen on; 0 picks an ephemeral port (see [`Server::local_addr`]).
    pub port: u16,
    /// Connections to serve; 0 means "until stopped" (standalone mode only).
    pub count: u32,
    /// Pause between the last read/send and the close, in milliseconds (±1 ms on the wire).
    pub close_delay_ms: f64,
    /// How to close.
    pub close: CloseHow,
    /// Read the request. `false` never reads it, so close(2) finds unread data and sends RST
    /// (RFC 2525 §2.17); the server then waits until the request has arrived before closing.
    pub read_request: bool,
    /// TCP_NODELAY on accepted sockets.
    pub nodelay: bool,
    /// TCP_QUICKACK on accepted sockets, re-armed after each read.
    pub quickack: bool,
    /// SO_LINGER {1, N} / TCP_USER_TIMEOUT on accepted sockets.
    pub teardown: TeardownOptions,
    /// After the answer, wait this long and send a second line, [`MORE`] (then the close
    /// delay counts from it): data that follows a client's early shutdown(SHUT_WR) across a
    /// half-closed connection. `None`: the answer is all.
    pub more_after_ms: Option<f64>,
    /// Give up waiting for a client after this long; 0 waits forever.
    pub accept_timeout_ms: f64,
    /// Give up a blocking read/write on a connection after this long; 0 waits forever.
    pub io_timeout_ms: f64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 60000,
            count: 1,
            close_delay_ms: 0.0,
            close: CloseHow::Close,
            read_request: true,
            nodelay: false,
            quickack: false,
            teardown: TeardownOptions::default(),
            more_after_ms: None,
            accept_timeout_ms: 10_000.0,
            io_timeout_ms: 10_000.0,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A knob has an unusable value.
    #[error(transparent)]
    InvalidOption(#[from] InvalidOption),
    /// A socket call failed.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// No client connected in time.
    #[error("no connection on {addr} within {timeout_ms} ms")]
    AcceptTimeout {
        /// The listening address.
        addr: SocketAddr,
        /// The configured timeout.
        timeout_ms: f64,
    },
    /// Writing the standalone mode's output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

/// What happened on one accepted connection. Times are microseconds after `start_unix_ns`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    /// The client's address.
    pub peer: SocketAddr,
    /// Our end of the connection.
    pub local: SocketAddr,
    /// Wall clock (CLOCK_REALTIME, the clock of pcap timestamps) when accept(2) returned.
    pub start_unix_ns: u64,
    /// The bytes read (lossy UTF-8); `None` if the request was not read.
    pub request: Option<String>,
    /// Number of bytes read.
    pub request_bytes: usize,
    /// When the read returned.
    pub request_read_us: Option<f64>,
    /// When the request had arrived without being read (`read_request = false`).
    pub request_pending_us: Option<f64>,
    /// When the `200 ok` write returned (only if the request was `get`).
    pub response_sent_us: Option<f64>,
    /// When the second line's write returned (`more_after_ms`), or why it failed.
    pub more_sent_us: Option<Result<f64, IoFailure>>,
    /// The close and its timing.
    pub close: CloseReport,
    /// A read/write failure seen before closing (e.g. ECONNRESET).
    pub error: Option<IoFailure>,
    /// What each socket call returned.
    pub calls: Calls,
    /// The accepted socket's `SO_COOKIE` (the kernel's id of it; tcp_destroy_sock reports
    /// it), so a live run can pick this socket's events out of a machine-wide kernel trace.
    pub socket_cookie: Option<u64>,
}

/// A bound, listening server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    opts: ServerOptions,
    close_delay: Duration,
    more_after: Option<Duration>,
    io_timeout: Duration,
}

impl Server {
    /// Bind and listen (SO_REUSEADDR; IPV6_V6ONLY for IPv6 addresses).
    pub fn bind(opts: &ServerOptions) -> Result<Server, ServerError> {
        let close_delay = duration_from_ms("close_delay_ms", opts.close_delay_ms)?;
        let more_after = opts
            .more_after_ms
            .map(|ms| duration_from_ms("more_after_ms", ms))
            .transpose()?;
        let io_timeout = duration_from_ms("io_timeout_ms", opts.io_timeout_ms)?;
        let accept_timeout = duration_from_ms("accept_timeout_ms", opts.accept_timeout_ms)?;
        let addr = SocketAddr::new(opts.address, opts.port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(SocketError::new("socket", addr))?;
        // socket(7) SO_REUSEADDR: rebinding while old connections sit in TIME_WAIT must work,
        // the experiments create exactly those.
        socket
            .set_reuse_address(true)
            .map_err(SocketError::new("setsockopt(SO_REUSEADDR)", addr))?;
        if addr.is_ipv6() {
            socket
                .set_only_v6(true)
                .map_err(SocketError::new("setsockopt(IPV6_V6ONLY)", addr))?;
        }
        socket
            .bind(&addr.into())
            .map_err(SocketError::new("bind", addr))?;
        socket.listen(5).map_err(SocketError::new("listen", addr))?;
        if !accept_timeout.is_zero() {
            // On Linux SO_RCVTIMEO also bounds accept(2) (socket(7)), which keeps a scenario
            // whose client failed from hanging forever.
            socket
                .set_read_timeout(Some(accept_timeout))
                .map_err(SocketError::new("setsockopt(SO_RCVTIMEO)", addr))?;
        }
        let listener: TcpListener = socket.into();
        let local = listener
            .local_addr()
            .map_err(SocketError::new("getsockname", addr))?;
        Ok(Server {
            listener,
            local,
            opts: opts.clone(),
            close_delay,
            more_after,
            io_timeout,
        })
    }

    /// The bound address (with the real port when `port` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The options this server was bound with.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// Accept one connection and run the seed's exchange on it.
    pub fn serve_one(&self) -> Result<ConnectionReport, ServerError> {
        let (stream, peer) = loop {
            match self.listener.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ServerError::AcceptTimeout {
                        addr: self.local,
                        timeout_ms: self.opts.accept_timeout_ms,
                    })
                }
                Err(e) => return Err(SocketError::new("accept", self.local)(e).into()),
            }
        };
        self.handle(stream, peer)
    }

    /// Wake a blocked [`Server::serve_one`] and refuse further connections: shutdown(2) on
    /// the listening socket, which makes Linux's accept(2) return EINVAL. For a second
    /// connection that the client could not make (its bind or connect failed).
    pub fn stop_accepting(&self) -> Result<(), SocketError> {
        socket2::SockRef::from(&self.listener)
            .shutdown(std::net::Shutdown::Read)
            .map_err(SocketError::new("shutdown(listener)", self.local))
    }

    /// Serve `n` connections one after the other.
    pub fn serve(&self, n: u32) -> Result<Vec<ConnectionReport>, ServerError> {
        (0..n).map(|_| self.serve_one()).collect()
    }

    fn handle(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<ConnectionReport, ServerError> {
        let origin = Origin::now();
        let o = &self.opts;
        conn::apply_conn_options(&stream, peer, o.nodelay, o.quickack, self.io_timeout)?;
        conn::apply_teardown_options(&stream, peer, &o.teardown)?;
        let local = stream
            .local_addr()
            .map_err(SocketError::new("getsockname", peer))?;
        let socket_cookie = socket2::SockRef::from(&stream).cookie().ok();
        let mut report = ConnectionReport {
            socket_cookie,
            peer,
            local,
            start_unix_ns: origin.unix_ns(),
            request: None,
            request_bytes: 0,
            request_read_us: None,
            request_pending_us: None,
            response_sent_us: None,
            more_sent_us: None,
            close: CloseReport::empty(o.close),
            error: None,
            calls: Calls::default(),
        };
        let mut last_io = Instant::now();
        if o.read_request {
            let mut buf = [0u8; 1024];
            let r = conn::read_once(&mut stream, peer, o.quickack, &mut buf)?;
            report.calls.recv = Some(CallResult::of_recv(&r));
            match r {
                Ok(n) => {
                    last_io = Instant::now();
                    report.request_read_us = Some(origin.offset_us(last_io));
                    let got = buf.get(..n).unwrap_or_default();
                    report.request_bytes = n;
                    report.request = Some(String::from_utf8_lossy(got).into_owned());
                    if got == REQUEST {
                        let r = stream.write_all(RESPONSE);
                        report.calls.send = Some(CallResult::of(&r));
                        match r {
                            Ok(()) => {
                                last_io = Instant::now();
                                report.response_sent_us = Some(origin.offset_us(last_io));
                                if let Some(more_after) = self.more_after {
                                    conn::delay_from(last_io, more_after);
                                    let r = stream.write_all(MORE);
                                    last_io = Instant::now();
                                    report.more_sent_us = Some(
                                        r.map(|()| origin.offset_us(last_io))
                                            .map_err(|e| IoFailure::new("write", &e)),
                                    );
                                }
                            }
                            Err(e) => report.error = Some(IoFailure::new("write", &e)),
                        }
                    }
                }
                Err(e) => report.error = Some(IoFailure::new("read", &e)),
            }
        } else {
            match conn::wait_readable(&stream) {
                Ok(_) => {
                    last_io = Instant::now();
                    report.request_pending_us = Some(origin.offset_us(last_io));
                }
                Err(e) => report.error = Some(IoFailure::new("peek", &e)),
            }
        }
        conn::delay_from(last_io, self.close_delay);
        report.close = conn::close_stream(
            stream,
            peer,
            o.close,
            o.quickack,
            &o.teardown,
            &origin,
            &mut report.calls,
        )?;
        Ok(report)
    }
}

/// The seed's server for humans: bind, then serve `opts.count` connections (0 = forever),
/// printing `Connected by ADDR, now closed` after each, like the seed's Python program.
///
/// It prints `Listening on ADDR` first (useful with port 0). Accept timeouts are not
/// errors here: the server keeps waiting, as the seed's `while 1` loop does.
pub fn serve_standalone(opts: &ServerOptions, out: &mut dyn Write) -> Result<(), ServerError> {
    let opts = ServerOptions {
        accept_timeout_ms: 0.0,
        ..opts.clone()
    };
    let server = Server::bind(&opts)?;
    writeln!(out, "Listening on {}", server.local_addr()).map_err(ServerError::Output)?;
    let mut served: u64 = 0;
    while opts.count == 0 || served < u64::from(opts.count) {
        let r = server.serve_one()?;
        served += 1;
        match &r.error {
            None => writeln!(out, "Connected by {}, now closed", r.peer),
            Some(e) if e.is_timeout() => writeln!(
                out,
                "Connected by {}: it sent nothing within {} ms, so it was closed",
                r.peer, opts.io_timeout_ms
            ),
            Some(e) => writeln!(out, "Connected by {}, now closed ({})", r.peer, e.message),
        }
        .map_err(ServerError::Output)?;
        out.flush().map_err(ServerError::Output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_from_a_scenario_table() {
        let o: ServerOptions = toml::from_str(
            "address = \"::1\"\nport = 0\nclose_delay_ms = 100\nclose = \"shutdown\"\nread_request = false",
        )
        .expect("valid");
        assert_eq!(o.address, "::1".parse::<IpAddr>().expect("literal"));
        assert_eq!(o.close, CloseHow::Shutdown);
        assert_eq!(o.close_delay_ms, 100.0);
        assert!(!o.read_request);
        let e = toml::from_str::<ServerOptions>("delay_ms = 1").expect_err("unknown field");
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = toml::from_str::<ServerOptions>("close = \"abort\"").expect_err("bad variant");
        assert!(e.to_string().contains("linger0"), "{e}");
    }

    #[test]
    fn bad_options_fail_before_binding() {
        let o = ServerOptions {
            close_delay_ms: f64::NAN,
            ..Default::default()
        };
        let e = Server::bind(&o).expect_err("NaN delay");
        assert!(e.to_string().contains("close_delay_ms"), "{e}");
    }
}
