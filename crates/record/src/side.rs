//! Which end of a connection, or which of a run's two programs: one type for the whole
//! workspace (tcplab-trace re-exports it as `tcplab_trace::Side`). Plain data, a leaf.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One endpoint of a connection: the client (sender of the SYN, or the higher port when the
/// analysis had to guess roles; in a run, the program that connects and the capture's vantage
/// on a link) or the server. Written `client` / `server`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Sender of the SYN (or the higher port when roles were guessed); the client program.
    Client,
    /// The other endpoint; the server program.
    Server,
}

impl Side {
    /// `"client"` / `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    /// The other endpoint.
    #[must_use]
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    /// 0 for the client, 1 for the server (index into per-side arrays).
    pub fn idx(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
