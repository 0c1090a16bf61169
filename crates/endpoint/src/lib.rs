//! tcplab-endpoint: the pieces both seed programs (`tcplab-server`, `tcplab-client`) use on
//! their end of a connection — how to close ([`CloseHow`], [`conn::close_stream`]), the
//! socket options ([`conn::apply_conn_options`], TCP_QUICKACK re-armed after each read), what
//! each call returned ([`Calls`]), the close's report ([`CloseReport`]), and the clock
//! ([`timing`]: a precise sleep, event times, the one millisecond type [`Millis`]).
//!
//! Beneath both programs, so neither takes its socket code from the other.

pub mod conn;
mod sys;
pub mod timing;

pub use conn::{CallResult, Calls, CloseHow, CloseReport, IoFailure, SocketError, TeardownOptions};
pub use timing::Millis;

/// The seed's request.
pub const REQUEST: &[u8] = b"get";
/// The seed's response.
pub const RESPONSE: &[u8] = b"200 ok";
/// The server's second line (`more_after_ms`), sent after the answer.
pub const MORE: &[u8] = b"more";
