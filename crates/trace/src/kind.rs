//! A connection's verdict as data — its kind, who closed first, the close's measures — in
//! docs/teardown.md's spellings. A leaf beside [`crate::side`]: the classifier
//! (`teardown.rs`) decides it, renderers read it.

use crate::side::Side;

/// The kinds of teardown, decided in this order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum TeardownKind {
    /// RST before both FINs.
    Reset,
    /// FINs crossed: neither acknowledges the other.
    Simultaneous,
    /// FIN → FIN+ACK → ACK.
    ThreeWay,
    /// FIN → ACK → FIN → ACK.
    FourWay,
    /// Exactly one FIN, no RST.
    Incomplete,
    /// No FIN, no RST.
    Open,
}

impl TeardownKind {
    /// Every kind, in decision order.
    pub const ALL: [TeardownKind; 6] = [
        TeardownKind::Reset,
        TeardownKind::Simultaneous,
        TeardownKind::ThreeWay,
        TeardownKind::FourWay,
        TeardownKind::Incomplete,
        TeardownKind::Open,
    ];

    /// The kinds in the order a reader looks for them (tables, charts, legends): the two
    /// graceful closes the seed is about first, then the rarer ones.
    pub const READING_ORDER: [TeardownKind; 6] = [
        TeardownKind::ThreeWay,
        TeardownKind::FourWay,
        TeardownKind::Simultaneous,
        TeardownKind::Reset,
        TeardownKind::Incomplete,
        TeardownKind::Open,
    ];

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TeardownKind::Reset => "reset",
            TeardownKind::Simultaneous => "simultaneous",
            TeardownKind::ThreeWay => "three-way",
            TeardownKind::FourWay => "four-way",
            TeardownKind::Incomplete => "incomplete",
            TeardownKind::Open => "open",
        }
    }

    /// Parse the contract spelling.
    pub fn from_name(s: &str) -> Option<TeardownKind> {
        TeardownKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who started the close.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Closer {
    /// The client.
    Client,
    /// The server.
    Server,
    /// Both at once (simultaneous close).
    Both,
}

impl Closer {
    /// `"client"`, `"server"`, `"both"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Closer::Client => "client",
            Closer::Server => "server",
            Closer::Both => "both",
        }
    }
    /// Parse the contract spelling.
    pub fn from_name(s: &str) -> Option<Closer> {
        [Closer::Client, Closer::Server, Closer::Both]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

impl From<Side> for Closer {
    fn from(s: Side) -> Closer {
        match s {
            Side::Client => Closer::Client,
            Side::Server => Closer::Server,
        }
    }
}

/// The verdict for one connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Teardown {
    /// Kind.
    pub kind: TeardownKind,
    /// Who closed first (None for `open`).
    pub active_closer: Option<Closer>,
    /// Whether the ACK of the last FIN was captured.
    pub final_ack: bool,
    /// Retransmissions of FINs (both sides).
    pub fin_retransmits: u32,
    /// Four-way: ns between the first FIN and the passive side's separate ACK of it.
    pub fin_ack_delay_ns: Option<i64>,
    /// ns between the first FIN (or RST) and the packet that ended the close.
    pub close_duration_ns: Option<i64>,
}
