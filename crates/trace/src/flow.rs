//! A connection's key as one number: its two endpoints, either way round, plus the hash of
//! its encapsulation path. The connection table (`conn.rs`) keys by it and splits itself
//! over threads by its bits, and a decoder told to keep only one thread's share
//! ([`FlowFilter`]) computes it straight from the headers, before building a segment. A
//! leaf: imports only `hash.rs`.

use crate::hash::FxHasher;
use std::hash::Hasher;
use std::net::{SocketAddr, SocketAddrV4};

/// The hash of the connection between `a` and `b` (either way round) on the path whose
/// hash is `path` (0: none).
pub fn flow_hash(a: SocketAddr, b: SocketAddr, path: u64) -> u64 {
    match (a, b) {
        (SocketAddr::V4(x), SocketAddr::V4(y)) => v4_flow_hash(v4_word(x), v4_word(y), path),
        _ => {
            // Any total order will do: both directions must put the same endpoint first.
            let (lo, hi) = if (a.ip(), a.port()) <= (b.ip(), b.port()) {
                (a, b)
            } else {
                (b, a)
            };
            let mut h = FxHasher::default();
            for end in [lo, hi] {
                match end {
                    SocketAddr::V4(v4) => h.write_u64(v4_word(v4)),
                    SocketAddr::V6(v6) => {
                        let bits = v6.ip().to_bits();
                        h.write_u64(bits as u64 ^ (bits >> 64) as u64);
                        h.write_u64(u64::from(v6.port()));
                    }
                }
            }
            with_path(h, path)
        }
    }
}

/// An IPv4 endpoint as one word: address above port. Words compare as the endpoints do.
pub(crate) fn v4_word(end: SocketAddrV4) -> u64 {
    u64::from(end.ip().to_bits()) << 16 | u64::from(end.port())
}

/// [`flow_hash`] of two IPv4 endpoints given as [`v4_word`]s: one compare and two
/// multiplies, cheap enough for every packet of a capture.
pub(crate) fn v4_flow_hash(a: u64, b: u64, path: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = FxHasher::default();
    h.write_u64(lo);
    h.write_u64(hi);
    with_path(h, path)
}

fn with_path(mut h: FxHasher, path: u64) -> u64 {
    if path != 0 {
        h.write_u64(path);
    }
    h.finish()
}

/// One table thread's share of the connections: those whose [`flow_hash`] has `want` in
/// the bits `mask` after shifting right by `shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFilter {
    /// Bits below the ones that choose.
    pub shift: u32,
    /// The bits that choose (after the shift).
    pub mask: u64,
    /// Their value for the connections kept.
    pub want: u64,
}

impl FlowFilter {
    /// Is the connection with this hash kept?
    pub fn keeps(&self, hash: u64) -> bool {
        (hash >> self.shift) & self.mask == self.want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_way_round_is_one_flow() {
        let pairs = [
            ("192.0.2.1:80", "192.0.2.2:40000"),
            ("192.0.2.1:40000", "192.0.2.1:80"),
            ("[2001:db8::1]:80", "[2001:db8::2]:80"),
            ("192.0.2.1:80", "[2001:db8::2]:80"),
        ];
        for (a, b) in pairs {
            let (a, b): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(flow_hash(a, b, 0), flow_hash(b, a, 0), "{a} {b}");
            assert_eq!(flow_hash(a, b, 9), flow_hash(b, a, 9), "{a} {b}");
            assert_ne!(flow_hash(a, b, 0), flow_hash(a, b, 9), "{a} {b}: path");
        }
        let (a, b): (SocketAddrV4, SocketAddrV4) = (
            "192.0.2.1:80".parse().unwrap(),
            "192.0.2.9:1".parse().unwrap(),
        );
        assert_eq!(
            v4_flow_hash(v4_word(a), v4_word(b), 0),
            flow_hash(a.into(), b.into(), 0)
        );
    }
}
