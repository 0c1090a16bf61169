//! Renderers: one module per output format, all over the same [`crate::Analysis`] data.
//!
//! - `json.rs`: the contract's JSON (the only place JSON field names live).
//! - `human.rs`: the numbered packet listing with one line of narration per packet and the
//!   verdict, in English or Chinese.
//! - `ladder.rs`: a two-column ladder (sequence) diagram.
//! - `summary.rs`: the counts table that ends a multi-connection file.
//! - `connections.rs`: one line per connection, tcplife-style (`--summary connections`).

pub mod connections;
pub mod human;
pub mod json;
pub mod ladder;
pub mod summary;
pub mod term;
mod words;

/// Narration language.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese (as in the seed's blog post).
    Zh,
}

/// Options shared by the human renderers.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Language of the narration.
    pub lang: Lang,
    /// ANSI colours (only when stdout is a TTY and `NO_COLOR` is unset; the CLI decides).
    pub color: bool,
    /// Draw the ladder diagram after each connection's listing.
    pub ladder: bool,
}
