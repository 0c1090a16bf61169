//! Per-connection pieces shared by the server and `tcplab-client`: how to close, socket options,
//! reads that re-arm TCP_QUICKACK, and the report types for failures seen on the wire.

use std::io::{self, Read};
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
}

impl CloseHow {
    /// The scenario-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseHow::Close => "close",
            CloseHow::Shutdown => "shutdown",
            CloseHow::Linger0 => "linger0",
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
            other => Err(format!(
                "unknown close mode `{other}` (expected close, shutdown or linger0)"
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

/// What happened when a connection was closed. Times are microseconds from the report's origin.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReport {
    /// How it was closed.
    pub how: CloseHow,
    /// Just before `shutdown(2)` (only for [`CloseHow::Shutdown`]).
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

/// Close `stream` the way `how` says. Consumes the socket: it is closed on return.
pub fn close_stream(
    mut stream: TcpStream,
    peer: SocketAddr,
    how: CloseHow,
    quickack: bool,
    origin: &Origin,
) -> Result<CloseReport, SocketError> {
    let mut report = CloseReport {
        how,
        shutdown_us: None,
        peer_eof_us: None,
        bytes_after_shutdown: 0,
        close_us: 0.0,
        closed_us: 0.0,
        error: None,
    };
    match how {
        CloseHow::Close => {}
        CloseHow::Linger0 => {
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(SocketError::new("setsockopt(SO_LINGER 0)", peer))?;
        }
        CloseHow::Shutdown => {
            report.shutdown_us = Some(origin.elapsed_us());
            stream
                .shutdown(Shutdown::Write)
                .map_err(SocketError::new("shutdown(SHUT_WR)", peer))?;
            let mut buf = [0u8; 1024];
            loop {
                match read_once(&mut stream, peer, quickack, &mut buf)? {
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
    }
    report.close_us = origin.elapsed_us();
    drop(stream);
    report.closed_us = origin.elapsed_us();
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
        for how in [CloseHow::Close, CloseHow::Shutdown, CloseHow::Linger0] {
            assert_eq!(how.as_str().parse::<CloseHow>(), Ok(how));
            let json = format!("\"{}\"", how.as_str());
            // The serde name is the same spelling (the scenario files use it).
            let back: CloseHow = serde_json_free_parse(&json);
            assert_eq!(back, how);
        }
        assert!("linger".parse::<CloseHow>().is_err());
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
