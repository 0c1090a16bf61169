//! Which end of a connection: plain data, a leaf (imports nothing of the crate).

/// One endpoint of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Side {
    /// Sender of the SYN (or the higher port when roles were guessed).
    Client,
    /// The other endpoint.
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
