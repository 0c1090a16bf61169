//! tcplab-server: a Rust port of the seed's Python server, with knobs for teardown experiments.
//!
//! The seed server binds, listens and accepts; reads up to 1024 bytes; answers `200 ok` if
//! the request is `get`; then closes. The knobs decide *how* and *when* it closes
//! ([`CloseHow`], `close_delay_ms`), whether it reads at all (`read_request = false` leaves
//! unread data, so close sends RST, RFC 2525 §2.17), and TCP_NODELAY / TCP_QUICKACK (tcp(7)).
//!
//! Sockets are blocking and each connection runs on the caller's thread: precise timing of the
//! close matters more here than concurrency. The same per-connection pieces ([`CloseHow`],
//! [`CloseReport`], [`timing`]) come from `tcplab-endpoint`, beneath both programs.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use tcplab_server::{Server, ServerOptions};
//!
//! let opts = ServerOptions { address: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, ..Default::default() };
//! let server = Server::bind(&opts)?;
//! assert_ne!(server.local_addr().port(), 0);
//! # Ok::<(), tcplab_server::ServerError>(())
//! ```

mod server;

// The per-connection pieces live beneath both programs (`tcplab-endpoint`); re-exported
// under their old paths.
pub use tcplab_endpoint::{conn, timing, MORE, REQUEST, RESPONSE};

pub use conn::{CloseHow, CloseReport, IoFailure, SocketError};
pub use server::{serve_standalone, ConnectionReport, Server, ServerError, ServerOptions};
