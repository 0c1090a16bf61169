//! Two captures of the same connection from two vantage points (the two ends of a link, or
//! two hosts): which packet of one is which packet of the other.
//!
//! A segment is the same transmission in both when its direction, sequence and
//! acknowledgment numbers, flags and length agree; among several such (a retransmission
//! repeats them) the one with the same fingerprint (IP id, TCP checksum, options) is taken,
//! else the earliest not yet taken, so a capture whose checksums differ (offload, NAT) still
//! pairs in order. Only file order within one direction is used, never time: the two clocks
//! may differ.

use crate::analysis::{Connection, PacketInfo, Side};
use std::collections::{BTreeMap, VecDeque};

/// For each packet of the first view, the index of the same packet in the second (and back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matching {
    /// `a_to_b[i]`: index into `b.packets` of `a.packets[i]`, if `b` saw it.
    pub a_to_b: Vec<Option<usize>>,
    /// `b_to_a[j]`: index into `a.packets` of `b.packets[j]`, if `a` saw it.
    pub b_to_a: Vec<Option<usize>>,
}

type Key = (Side, u32, u32, u8, u32);

fn key(p: &PacketInfo, from: Side) -> Key {
    (
        from,
        p.seq.0,
        if p.flags.ack() { p.ack.0 } else { 0 },
        p.flags.0,
        p.len,
    )
}

/// Pair the packets of two views of one connection. `b`'s sides are taken by address when
/// its endpoints are `a`'s (possibly with the roles swapped, when roles were guessed),
/// else as `b` named them.
pub fn match_views(a: &Connection, b: &Connection) -> Matching {
    let swapped = b.client == a.server && b.server == a.client;
    let side_in_a = |s: Side| if swapped { s.peer() } else { s };
    let mut pool: BTreeMap<Key, VecDeque<usize>> = BTreeMap::new();
    for (j, p) in b.packets.iter().enumerate() {
        pool.entry(key(p, side_in_a(p.from)))
            .or_default()
            .push_back(j);
    }
    let mut m = Matching {
        a_to_b: vec![None; a.packets.len()],
        b_to_a: vec![None; b.packets.len()],
    };
    for (i, p) in a.packets.iter().enumerate() {
        let Some(cands) = pool.get_mut(&key(p, p.from)) else {
            continue;
        };
        let same = (p.fingerprint != 0)
            .then(|| {
                cands
                    .iter()
                    .position(|&j| b.packets[j].fingerprint == p.fingerprint)
            })
            .flatten();
        let chosen = match same {
            Some(pos) => cands.remove(pos),
            // No fingerprint agrees: the earliest candidate, unless its own twin in `a` is
            // still to come (then this one was not seen by `b`).
            None => {
                let first = cands.front().copied();
                match first {
                    Some(j)
                        if b.packets[j].fingerprint != 0
                            && p.fingerprint != 0
                            && a.packets[i + 1..]
                                .iter()
                                .any(|q| q.fingerprint == b.packets[j].fingerprint) =>
                    {
                        None
                    }
                    _ => cands.pop_front(),
                }
            }
        };
        if let Some(j) = chosen {
            m.a_to_b[i] = Some(j);
            m.b_to_a[j] = Some(i);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Role;
    use crate::render::human::fixtures::Builder;
    use crate::teardown::TeardownKind;
    use Side::{Client, Server};

    #[test]
    fn pairs_by_fields_and_fingerprint_and_leaves_lost_segments_alone() {
        // The server's first FIN is lost on its way: the client's view lacks it.
        let server_view = Builder::new(
            "192.0.2.1:40000",
            "192.0.2.2:60000",
            TeardownKind::Incomplete,
        )
        .pkt(1, 0, Client, "S", 100, 0, 0, Role::Syn)
        .pkt(2, 10, Server, "S.", 500, 101, 0, Role::SynAck)
        .pkt(3, 20, Server, "F.", 501, 101, 0, Role::FinFirst)
        .pkt(4, 30, Server, "F.", 501, 101, 0, Role::FinRetransmit)
        .build();
        let client_view = Builder::new(
            "192.0.2.1:40000",
            "192.0.2.2:60000",
            TeardownKind::Incomplete,
        )
        .pkt(1, 0, Client, "S", 100, 0, 0, Role::Syn)
        .pkt(2, 10, Server, "S.", 500, 101, 0, Role::SynAck)
        .pkt(4, 30, Server, "F.", 501, 101, 0, Role::FinFirst)
        .build();
        let m = match_views(&server_view, &client_view);
        // Fingerprints are the packet numbers in the test builder: packet 4 pairs with 4.
        assert_eq!(m.a_to_b, [Some(0), Some(1), None, Some(2)]);
        assert_eq!(m.b_to_a, [Some(0), Some(1), Some(3)]);
    }
}
