//! Per-connection pieces shared by the server and `tcplab-client`: how to close, socket options,
//! reads that re-arm TCP_QUICKACK, and the report types for failures seen on the wire.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::SockRef;

use crate::timing::Origin;

/// How an endpoint ends its side of the connection.
///
/// The spelling in scenario files is the serde name: `close`, `shutdown`, `linger0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseHow {
    /// Plain `close(2)`: sends FIN, or RST if unread data is pending (RFC 2525 §2.17).
    #[default]
    Close,
    /// `shutdown(SHUT_WR)` (sends FIN), then read until the peer's FIN (EOF), then `close(2)`.
    Shutdown,
    /// `SO_LINGER {l_onoff: 1, l_linger: 0}` then `close(2)`: the kernel aborts the connection
    /// and sends RST instead of FIN (socket(7) SO_LINGER; RFC 9293 §3.6.1 "ABORT").
    Linger0,
    /// `shutdown(SHUT_RD)`, one `recv` (what it returns is recorded), then `close(2)`. Linux
    /// sends nothing for SHUT_RD (tcp_shutdown only acts on SEND_SHUTDOWN).
    ShutdownRd,
    /// `shutdown(SHUT_RDWR)` (sends FIN), one `recv` and one 1-byte `send` (both recorded:
    /// `eof` and `EPIPE` on Linux), then `close(2)`.
    ShutdownRdwr,
    /// `connect(2)` to an `AF_UNSPEC` address (tcp_disconnect: an established connection is
    /// reset and the socket left unconnected, reusable), then `close(2)`.
    Disconnect,
}

impl CloseHow {
    /// Every mode, in the order help texts list them.
    pub const ALL: [CloseHow; 5] = [
        CloseHow::Close,
        CloseHow::Shutdown,
        CloseHow::Linger0,
        CloseHow::ShutdownRd,
        CloseHow::ShutdownRdwr,
    ];

    /// The scenario-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseHow::Close => "close",
            CloseHow::Shutdown => "shutdown",
            CloseHow::Linger0 => "linger0",
            CloseHow::ShutdownRd => "shutdown_rd",
            CloseHow::ShutdownRdwr => "shutdown_rdwr",
            CloseHow::Disconnect => "disconnect",
        }
    }
}

impl std::fmt::Display for CloseHow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CloseHow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "close" => Ok(CloseHow::Close),
            "shutdown" => Ok(CloseHow::Shutdown),
            "linger0" => Ok(CloseHow::Linger0),
            "shutdown_rd" => Ok(CloseHow::ShutdownRd),
            "shutdown_rdwr" => Ok(CloseHow::ShutdownRdwr),
            other => Err(format!(
                "unknown close mode `{other}` (expected close, shutdown, linger0, shutdown_rd or shutdown_rdwr)"
            )),
        }
    }
}

/// A socket call that failed, with the address it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{op} on {addr}: {source}")]
pub struct SocketError {
    /// The syscall or socket option, e.g. `bind`, `setsockopt(TCP_NODELAY)`.
    pub op: &'static str,
    /// The address involved (local for bind/listen, peer for connect/accepted sockets).
    pub addr: SocketAddr,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl SocketError {
    pub fn new(op: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> Self {
        move |source| SocketError { op, addr, source }
    }

    /// True when the OS refused for lack of privilege (EPERM/EACCES).
    pub fn is_permission_denied(&self) -> bool {
        self.source.kind() == io::ErrorKind::PermissionDenied
    }
}

/// An I/O failure that is a possible *outcome* of an experiment (for example ECONNRESET after
/// the peer closed with unread data), recorded in a report instead of aborting the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IoFailure {
    /// What we were doing: `read`, `write`, `read-until-eof`.
    pub op: &'static str,
    /// `errno` when the OS gave one.
    pub errno: Option<i32>,
    /// Human-readable message, e.g. "Connection reset by peer (os error 104)".
    pub message: String,
}

impl IoFailure {
    pub fn new(op: &'static str, e: &io::Error) -> IoFailure {
        // SO_RCVTIMEO/SO_SNDTIMEO expiry shows up as EAGAIN, whose text ("Resource temporarily
        // unavailable") hides that the peer simply went silent.
        let message = if IoFailure::is_timeout_error(e) {
            format!("{op} timed out: the peer sent nothing within the I/O timeout")
        } else {
            e.to_string()
        };
        IoFailure {
            op,
            errno: e.raw_os_error(),
            message,
        }
    }

    /// True when the socket's I/O timeout ran out (the peer was silent).
    pub fn is_timeout(&self) -> bool {
        self.errno
            .is_some_and(|n| n == libc::EAGAIN || n == libc::EWOULDBLOCK || n == libc::ETIMEDOUT)
    }

    fn is_timeout_error(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    }
}

/// What one socket call returned, as a scenario names it: `ok` (success; byte counts are
/// recorded beside it), `eof` (a `recv` that returned 0), or the errno's name (`ECONNRESET`,
/// `EPIPE`, `EADDRINUSE` ...; `errno N` for one without a name here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// The call succeeded (a `recv`: with at least one byte).
    Ok,
    /// `recv` returned 0: the peer's FIN (or our own SHUT_RD).
    Eof,
    /// The call failed with this errno.
    Errno(i32),
}

/// errno names a teardown experiment can meet (the names of errno(3)).
const ERRNO_NAMES: &[(i32, &str)] = &[
    (libc::EPIPE, "EPIPE"),
    (libc::ECONNRESET, "ECONNRESET"),
    (libc::ECONNREFUSED, "ECONNREFUSED"),
    (libc::ECONNABORTED, "ECONNABORTED"),
    (libc::ETIMEDOUT, "ETIMEDOUT"),
    (libc::EADDRINUSE, "EADDRINUSE"),
    (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (libc::EAGAIN, "EAGAIN"),
    (libc::ENOTCONN, "ENOTCONN"),
    (libc::EISCONN, "EISCONN"),
    (libc::EINVAL, "EINVAL"),
    (libc::EINPROGRESS, "EINPROGRESS"),
    (libc::EALREADY, "EALREADY"),
    (libc::EINTR, "EINTR"),
    (libc::EBADF, "EBADF"),
    (libc::EHOSTUNREACH, "EHOSTUNREACH"),
    (libc::ENETUNREACH, "ENETUNREACH"),
    (libc::EPERM, "EPERM"),
    (libc::EACCES, "EACCES"),
];

impl CallResult {
    /// The result of a call that returned `r` (a byte count for `recv`: 0 is `eof`).
    pub fn of<T>(r: &io::Result<T>) -> CallResult {
        match r {
            Ok(_) => CallResult::Ok,
            Err(e) => CallResult::of_error(e),
        }
    }

    /// The result of a `recv` that returned `r`.
    pub fn of_recv(r: &io::Result<usize>) -> CallResult {
        match r {
            Ok(0) => CallResult::Eof,
            other => CallResult::of(other),
        }
    }

    /// A failed call.
    pub fn of_error(e: &io::Error) -> CallResult {
        // An error without an OS errno is std's own (EINVAL is the closest honest name).
        CallResult::Errno(e.raw_os_error().unwrap_or(libc::EINVAL))
    }

    /// Parse a scenario's spelling (`ok`, `eof`, `ECONNRESET` ...).
    pub fn parse(s: &str) -> Result<CallResult, String> {
        match s {
            "ok" => Ok(CallResult::Ok),
            "eof" => Ok(CallResult::Eof),
            _ => ERRNO_NAMES
                .iter()
                .find(|(_, n)| *n == s)
                .map(|(e, _)| CallResult::Errno(*e))
                .ok_or_else(|| {
                    let names: Vec<&str> = ERRNO_NAMES.iter().map(|(_, n)| *n).collect();
                    format!(
                        "unknown call result `{s}`, expected ok, eof or an errno name ({})",
                        names.join(", ")
                    )
                }),
        }
    }
}

impl std::fmt::Display for CallResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallResult::Ok => f.write_str("ok"),
            CallResult::Eof => f.write_str("eof"),
            CallResult::Errno(n) => match ERRNO_NAMES.iter().find(|(e, _)| e == n) {
                Some((_, name)) => f.write_str(name),
                None => write!(f, "errno {n}"),
            },
        }
    }
}

impl Serialize for CallResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What each socket call of one program returned (`None`: not made). The names are the
/// keys of a scenario's `[expect.client]` / `[expect.server]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    /// The client's `connect(2)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<CallResult>,
    /// The request (client) or answer (server) `send`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<CallResult>,
    /// The one `recv` of the exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recv: Option<CallResult>,
    /// `shutdown(2)` of the `shutdown*` close modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<CallResult>,
    /// The first `recv` after `shutdown(2)` (`shutdown`: the peer's EOF or an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recv_after_shutdown: Option<CallResult>,
    /// The `send` after `shutdown(SHUT_RDWR)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_after_shutdown: Option<CallResult>,
    /// `close(2)`: always `ok` — a socket's close cannot fail on Linux (sock_close returns 0,
    /// whatever SO_LINGER did), which is why Rust's drop may ignore its return value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close: Option<CallResult>,
    /// `connect(AF_UNSPEC)` of the `disconnect` close mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<CallResult>,
    /// The client's second connection on its first one's port (`reconnect_after_ms`): the
    /// `bind(2)` to that port (`EADDRINUSE` while TIME_WAIT holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_bind: Option<CallResult>,
    /// ... its `connect(2)` (`EADDRNOTAVAIL`: no free 4-tuple).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_connect: Option<CallResult>,
    /// ... and the `recv` of its exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_recv: Option<CallResult>,
}

/// What happened when a connection was closed. Times are microseconds from the report's origin.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReport {
    /// How it was closed.
    pub how: CloseHow,
    /// Just before `shutdown(2)` (only for the `shutdown*` modes).
    pub shutdown_us: Option<f64>,
    /// When the peer's EOF was read (only for [`CloseHow::Shutdown`]).
    pub peer_eof_us: Option<f64>,
    /// Bytes read and discarded while waiting for the peer's EOF.
    pub bytes_after_shutdown: usize,
    /// Just before `close(2)`.
    pub close_us: f64,
    /// Just after `close(2)` returned.
    pub closed_us: f64,
    /// A failure while waiting for the peer's EOF (then the socket is closed anyway).
    pub error: Option<IoFailure>,
    /// `SO_LINGER {1, N}` was set: close(2) may block up to N s by design (not lateness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linger_s: Option<u32>,
}

impl CloseReport {
    /// A close that has not happened yet.
    pub fn empty(how: CloseHow) -> CloseReport {
        CloseReport {
            how,
            shutdown_us: None,
            peer_eof_us: None,
            bytes_after_shutdown: 0,
            close_us: 0.0,
            closed_us: 0.0,
            error: None,
            linger_s: None,
        }
    }

    /// How long close(2) blocked, µs.
    pub fn blocked_us(&self) -> f64 {
        self.closed_us - self.close_us
    }
}

/// Socket options of the teardown itself (both programs; scenario knobs of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownOptions {
    /// `SO_LINGER {1, N}` before close(2): close blocks until the FIN is acknowledged or N s
    /// pass (then the connection is aborted with RST) — socket(7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger_s: Option<u32>,
    /// `TCP_USER_TIMEOUT` in ms: how long sent data (a FIN too) may stay unacknowledged
    /// before the kernel gives up (RFC 5482; tcp_write_timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_timeout_ms: Option<u32>,
    /// `TCP_LINGER2` in s: how long the socket, once closed and its FIN acknowledged, stays
    /// in FIN_WAIT_2 waiting for the peer's FIN (default `net.ipv4.tcp_fin_timeout`); −1: not
    /// at all, the peer's later FIN is answered with RST — tcp(7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger2_s: Option<i32>,
}

/// Socket knobs applied to every connected socket.
pub fn apply_conn_options(
    stream: &TcpStream,
    peer: SocketAddr,
    nodelay: bool,
    quickack: bool,
    io_timeout: Duration,
) -> Result<(), SocketError> {
    // tcp(7) TCP_NODELAY: send small segments at once instead of waiting (Nagle).
    stream
        .set_nodelay(nodelay)
        .map_err(SocketError::new("setsockopt(TCP_NODELAY)", peer))?;
    set_quickack(stream, peer, quickack)?;
    // A zero timeout would mean "block forever" to the OS; treat it as "no timeout" explicitly.
    let t = (!io_timeout.is_zero()).then_some(io_timeout);
    stream
        .set_read_timeout(t)
        .map_err(SocketError::new("setsockopt(SO_RCVTIMEO)", peer))?;
    stream
        .set_write_timeout(t)
        .map_err(SocketError::new("setsockopt(SO_SNDTIMEO)", peer))?;
    Ok(())
}

fn set_quickack(stream: &TcpStream, peer: SocketAddr, on: bool) -> Result<(), SocketError> {
    if on {
        // tcp(7) TCP_QUICKACK: ACK at once instead of delaying. Not permanent: the kernel
        // falls back to delayed ACKs on its own, so callers re-arm it after every read.
        SockRef::from(stream)
            .set_tcp_quickack(true)
            .map_err(SocketError::new("setsockopt(TCP_QUICKACK)", peer))?;
    }
    Ok(())
}

/// Wait until at least one byte is readable without consuming it.
///
/// Used when the experiment must *not* read (so that unread data is pending at close) but must
/// still be sure the data has arrived; otherwise close would race the data and send a FIN.
pub fn wait_readable(stream: &TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 1024];
    stream.peek(&mut buf)
}

/// One `recv(1024)` like the seed, then re-arm TCP_QUICKACK.
pub fn read_once(
    stream: &mut TcpStream,
    peer: SocketAddr,
    quickack: bool,
    buf: &mut [u8],
) -> Result<io::Result<usize>, SocketError> {
    let r = stream.read(buf);
    set_quickack(stream, peer, quickack)?;
    Ok(r)
}

/// Set the teardown socket options that must be in place before the exchange
/// (`TCP_USER_TIMEOUT`, `TCP_LINGER2`; SO_LINGER is set at close).
pub fn apply_teardown_options(
    stream: &TcpStream,
    peer: SocketAddr,
    t: &TeardownOptions,
) -> Result<(), SocketError> {
    let sock = SockRef::from(stream);
    if let Some(ms) = t.user_timeout_ms {
        sock.set_tcp_user_timeout(Some(Duration::from_millis(u64::from(ms))))
            .map_err(SocketError::new("setsockopt(TCP_USER_TIMEOUT)", peer))?;
    }
    if let Some(secs) = t.linger2_s {
        crate::sys::set_tcp_linger2(stream, secs)
            .map_err(SocketError::new("setsockopt(TCP_LINGER2)", peer))?;
    }
    Ok(())
}

/// Close `stream` the way `how` says, with `t`'s SO_LINGER; the calls' results go to
/// `calls`. Consumes the socket: it is closed on return.
pub fn close_stream(
    mut stream: TcpStream,
    peer: SocketAddr,
    how: CloseHow,
    quickack: bool,
    t: &TeardownOptions,
    origin: &Origin,
    calls: &mut Calls,
) -> Result<CloseReport, SocketError> {
    let mut report = CloseReport::empty(how);
    if let Some(n) = t.linger_s {
        SockRef::from(&stream)
            .set_linger(Some(Duration::from_secs(u64::from(n))))
            .map_err(SocketError::new("setsockopt(SO_LINGER)", peer))?;
        report.linger_s = Some(n);
    }
    match how {
        CloseHow::Close => {}
        CloseHow::Linger0 => {
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(SocketError::new("setsockopt(SO_LINGER 0)", peer))?;
        }
        CloseHow::Shutdown => {
            report.shutdown_us = Some(origin.elapsed_us());
            let r = stream.shutdown(Shutdown::Write);
            calls.shutdown = Some(CallResult::of(&r));
            r.map_err(SocketError::new("shutdown(SHUT_WR)", peer))?;
            let mut buf = [0u8; 1024];
            loop {
                let r = read_once(&mut stream, peer, quickack, &mut buf)?;
                if !matches!(r, Ok(n) if n > 0) {
                    calls.recv_after_shutdown = Some(CallResult::of_recv(&r));
                }
                match r {
                    Ok(0) => {
                        report.peer_eof_us = Some(origin.elapsed_us());
                        break;
                    }
                    Ok(n) => report.bytes_after_shutdown += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        report.error = Some(IoFailure::new("read-until-eof", &e));
                        break;
                    }
                }
            }
        }
        CloseHow::Disconnect => {
            report.shutdown_us = Some(origin.elapsed_us());
            calls.disconnect = Some(CallResult::of(&crate::sys::disconnect(&stream)));
        }
        CloseHow::ShutdownRd | CloseHow::ShutdownRdwr => {
            let (side, op) = if how == CloseHow::ShutdownRd {
                (Shutdown::Read, "shutdown(SHUT_RD)")
            } else {
                (Shutdown::Both, "shutdown(SHUT_RDWR)")
            };
            report.shutdown_us = Some(origin.elapsed_us());
            let r = stream.shutdown(side);
            calls.shutdown = Some(CallResult::of(&r));
            r.map_err(SocketError::new(op, peer))?;
            let mut buf = [0u8; 1024];
            let r = stream.read(&mut buf);
            calls.recv_after_shutdown = Some(CallResult::of_recv(&r));
            if let Ok(n) = r {
                report.bytes_after_shutdown = n;
            }
            if how == CloseHow::ShutdownRdwr {
                // std's write uses MSG_NOSIGNAL: EPIPE comes back as an error, no SIGPIPE.
                let r = stream.write(b"x");
                calls.send_after_shutdown = Some(CallResult::of(&r));
            }
        }
    }
    report.close_us = origin.elapsed_us();
    drop(stream);
    report.closed_us = origin.elapsed_us();
    calls.close = Some(CallResult::Ok);
    Ok(report)
}

/// Sleep until `last_io + delay` (precise, see [`crate::timing::sleep_until`]).
pub fn delay_from(last_io: Instant, delay: Duration) {
    crate::timing::sleep_until(last_io + delay);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_how_spellings_round_trip() {
        for how in [
            CloseHow::Close,
            CloseHow::Shutdown,
            CloseHow::Linger0,
            CloseHow::ShutdownRd,
            CloseHow::ShutdownRdwr,
        ] {
            assert_eq!(how.as_str().parse::<CloseHow>(), Ok(how));
            let json = format!("\"{}\"", how.as_str());
            // The serde name is the same spelling (the scenario files use it).
            let back: CloseHow = serde_json_free_parse(&json);
            assert_eq!(back, how);
        }
        assert!("linger".parse::<CloseHow>().is_err());
    }

    #[test]
    fn call_results_are_named_like_errno() {
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(CallResult::of_recv(&Err(reset)).to_string(), "ECONNRESET");
        assert_eq!(CallResult::of_recv(&Ok(0)), CallResult::Eof);
        assert_eq!(CallResult::of_recv(&Ok(3)), CallResult::Ok);
        for name in ["ok", "eof", "EPIPE", "EADDRINUSE", "ENOTCONN"] {
            assert_eq!(CallResult::parse(name).unwrap().to_string(), name);
        }
        assert_eq!(CallResult::Errno(9999).to_string(), "errno 9999");
        let e = CallResult::parse("EPIPEE").unwrap_err();
        assert!(e.contains("unknown call result `EPIPEE`"), "{e}");
    }

    /// Deserialize a bare string through serde's value deserializer (no serde_json needed).
    fn serde_json_free_parse(quoted: &str) -> CloseHow {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        let s = quoted.trim_matches('"');
        let d: StrDeserializer<'_, Error> = s.into_deserializer();
        CloseHow::deserialize(d).expect("known spelling")
    }
}
