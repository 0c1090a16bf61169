//! Counts of teardown outcomes over many connections.

use crate::analysis::Connection;
use crate::teardown::{Closer, Teardown, TeardownKind};
use std::collections::BTreeMap;

/// Counts per (kind, active closer), deterministic order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of connections per outcome.
    pub counts: BTreeMap<(TeardownKind, Option<Closer>), u64>,
    /// Connections in total.
    pub connections: u64,
}

impl Summary {
    /// Count one connection.
    pub fn add(&mut self, c: &Connection) {
        self.add_teardown(&c.teardown);
    }

    /// Count one connection that ended so.
    pub fn add_teardown(&mut self, t: &Teardown) {
        *self.counts.entry((t.kind, t.active_closer)).or_default() += 1;
        self.connections += 1;
    }

    /// Add another summary's counts to these.
    pub fn merge(&mut self, other: &Summary) {
        for (outcome, n) in &other.counts {
            *self.counts.entry(*outcome).or_default() += n;
        }
        self.connections += other.connections;
    }

    /// Connections of one kind, whoever closed.
    pub fn kind(&self, kind: TeardownKind) -> u64 {
        self.counts
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// `"three-way/server"` style key (closer `none` for `open`), as `tcplab run --json` prints.
    pub fn key(kind: TeardownKind, closer: Option<Closer>) -> String {
        format!(
            "{}/{}",
            kind.as_str(),
            closer.map(Closer::as_str).unwrap_or("none")
        )
    }
}
