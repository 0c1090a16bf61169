//! IPv4 and IPv6 fragment reassembly with bounded memory and a timeout on the capture clock.
//!
//! Read first: RFC 791 §3.2 (IPv4 fragments), RFC 8200 §4.5 (IPv6 Fragment header),
//! RFC 5722 (overlapping IPv6 fragments: the whole datagram is discarded, including
//! fragments that arrive later). IPv4 overlaps keep the bytes that arrived first.
//!
//! Ranges are tracked by the lengths the IP headers declare, data by the bytes captured (the
//! rest stays zero): a capture cut by its snaplen still reassembles, and TCP needs only its
//! header and the datagram's length.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// How long an incomplete datagram waits for its other fragments (Linux `ipfrag_time`).
pub const TIMEOUT_NS: i64 = 30_000_000_000;
/// Datagrams being reassembled at once; the oldest is dropped beyond it.
pub const MAX_DATAGRAMS: usize = 4096;
/// Bytes held for all datagrams together (Linux `ipfrag_high_thresh` is 4 MiB).
pub const MAX_BYTES: usize = 16 << 20;
/// Largest reassembled payload (IPv4 total length, IPv6 payload length are 16-bit).
const MAX_PAYLOAD: usize = 65_535;

/// Identifies one datagram: addresses, id, protocol and the outer path it came through.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 fragment id.
    pub id: u32,
    /// Upper-layer protocol (IPv4 protocol; IPv6 next header after the Fragment header).
    pub proto: u8,
    /// Hash of the encapsulation path (0 when none).
    pub path: u64,
}

/// One fragment as the IP layer found it.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// Byte offset of this fragment's data in the datagram's payload.
    pub offset: usize,
    /// Payload length the IP header declares for this fragment.
    pub declared: usize,
    /// The captured part of it (may be shorter than `declared`).
    pub data: &'a [u8],
    /// More fragments follow (MF).
    pub more: bool,
    /// IPv6: overlaps discard the datagram (RFC 5722).
    pub v6: bool,
}

#[derive(Debug)]
struct Pending {
    deadline: i64,
    data: Vec<u8>,
    /// Received ranges (declared), sorted and merged.
    have: Vec<(usize, usize)>,
    /// Payload length, once the last fragment came.
    total: Option<usize>,
    /// RFC 5722: discarded; later fragments of it are dropped too until the timeout.
    poisoned: bool,
}

/// Why datagrams were given up, for the file-level warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Incomplete when their time ran out (or at the end of the capture).
    pub timed_out: u64,
    /// Overlapping IPv6 fragments (RFC 5722).
    pub overlapping: u64,
    /// Pushed out by the memory bounds, or inconsistent (a fragment beyond 65,535 bytes, two
    /// different ends).
    pub evicted: u64,
}

/// Datagrams waiting for fragments.
#[derive(Debug, Default)]
pub struct Reassembly {
    pending: HashMap<FragKey, Pending>,
    /// Creation order with deadlines (deadlines grow with the capture clock, so the front
    /// expires first; an entry whose datagram is gone or was re-created is skipped).
    order: VecDeque<(i64, FragKey)>,
    bytes: usize,
    /// What was given up so far.
    pub dropped: Dropped,
}

/// What [`Reassembly::add`] made of a fragment.
#[derive(Debug)]
pub enum Outcome {
    /// The datagram is complete: its whole payload.
    Complete(Vec<u8>),
    /// Held until the rest comes.
    Held,
    /// Dropped (overlap, bounds, inconsistent lengths).
    Dropped,
}

impl Reassembly {
    /// Add one fragment captured at `ts_ns`.
    pub fn add(&mut self, ts_ns: i64, key: FragKey, frag: Fragment<'_>) -> Outcome {
        self.expire(ts_ns);
        let end = frag.offset.saturating_add(frag.declared);
        if end > MAX_PAYLOAD {
            self.dropped.evicted += 1;
            self.remove(&key);
            return Outcome::Dropped;
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= MAX_DATAGRAMS || self.bytes + end > MAX_BYTES {
                if !self.evict_oldest() {
                    break;
                }
            }
            let deadline = ts_ns.saturating_add(TIMEOUT_NS);
            self.pending.insert(
                key,
                Pending {
                    deadline,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    poisoned: false,
                },
            );
            self.order.push_back((deadline, key));
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return Outcome::Dropped;
        };
        if p.poisoned {
            return Outcome::Dropped;
        }
        // The last fragment fixes the length; a second, different end is inconsistent.
        if !frag.more {
            if p.total.is_some_and(|t| t != end) || p.have.iter().any(|&(_, e)| e > end) {
                p.poisoned = true;
                self.dropped.evicted += 1;
                self.release(&key);
                return Outcome::Dropped;
            }
            p.total = Some(end);
        } else if p.total.is_some_and(|t| end > t) {
            p.poisoned = true;
            self.dropped.evicted += 1;
            self.release(&key);
            return Outcome::Dropped;
        }
        let overlaps = p
            .have
            .iter()
            .any(|&(s, e)| frag.offset < e && s < end && !(s == frag.offset && e == end));
        let duplicate = p.have.contains(&(frag.offset, end));
        if frag.v6 && overlaps {
            // RFC 5722: silently discard the datagram and whatever of it comes later.
            p.poisoned = true;
            self.dropped.overlapping += 1;
            self.release(&key);
            return Outcome::Dropped;
        }
        if duplicate {
            // An identical copy (a retransmission, or loopback seen twice): nothing new.
            return Outcome::Held;
        }
        if p.data.len() < end {
            self.bytes += end - p.data.len();
            p.data.resize(end, 0);
        }
        // Copy only into bytes not yet received (IPv4 overlaps: the first copy wins).
        let captured = frag.data.len().min(frag.declared);
        let mut pos = frag.offset;
        let stop = frag.offset + captured;
        while pos < stop {
            let covered = p.have.iter().find(|&&(s, e)| s <= pos && pos < e);
            match covered {
                Some(&(_, e)) => pos = e,
                None => {
                    let next = p
                        .have
                        .iter()
                        .filter(|&&(s, _)| s > pos)
                        .map(|&(s, _)| s)
                        .min()
                        .unwrap_or(stop)
                        .min(stop);
                    let src = &frag.data[pos - frag.offset..next - frag.offset];
                    p.data[pos..next].copy_from_slice(src);
                    pos = next;
                }
            }
        }
        insert_range(&mut p.have, (frag.offset, end));
        if p.total.is_some_and(|t| p.have == [(0, t)]) {
            let data = std::mem::take(&mut p.data);
            self.bytes -= data.len().min(self.bytes);
            self.pending.remove(&key);
            return Outcome::Complete(data);
        }
        Outcome::Held
    }

    /// Give up datagrams whose time ran out.
    pub fn expire(&mut self, now_ns: i64) {
        while let Some(&(deadline, key)) = self.order.front() {
            if deadline >= now_ns {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.pending.get(&key) {
                if p.deadline == deadline {
                    if !p.poisoned {
                        self.dropped.timed_out += 1;
                    }
                    self.remove(&key);
                }
            }
        }
    }

    /// The capture ended: whatever is incomplete is given up.
    pub fn finish(&mut self) {
        self.expire(i64::MAX);
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((deadline, key)) = self.order.pop_front() {
            if self
                .pending
                .get(&key)
                .is_some_and(|p| p.deadline == deadline)
            {
                if self.pending.get(&key).is_some_and(|p| !p.poisoned) {
                    self.dropped.evicted += 1;
                }
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// Free a poisoned datagram's bytes but remember the key until its deadline.
    fn release(&mut self, key: &FragKey) {
        if let Some(p) = self.pending.get_mut(key) {
            self.bytes -= p.data.len().min(self.bytes);
            p.data = Vec::new();
            p.have = Vec::new();
        }
    }

    fn remove(&mut self, key: &FragKey) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.data.len().min(self.bytes);
        }
    }
}

/// Insert `r` into sorted, merged ranges.
fn insert_range(have: &mut Vec<(usize, usize)>, r: (usize, usize)) {
    have.push(r);
    have.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(have.len());
    for &(s, e) in have.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *have = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            id: 7,
            proto: 6,
            path: 0,
        }
    }

    fn frag(offset: usize, data: &[u8], more: bool, v6: bool) -> Fragment<'_> {
        Fragment {
            offset,
            declared: data.len(),
            data,
            more,
            v6,
        }
    }

    #[test]
    fn fragments_in_any_order_complete_the_datagram() {
        let mut r = Reassembly::default();
        assert!(matches!(
            r.add(0, key(), frag(8, b"ijklmnop", true, false)),
            Outcome::Held
        ));
        assert!(matches!(
            r.add(1, key(), frag(16, b"qr", false, false)),
            Outcome::Held
        ));
        match r.add(2, key(), frag(0, b"abcdefgh", true, false)) {
            Outcome::Complete(d) => assert_eq!(d, b"abcdefghijklmnopqr"),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.bytes, 0);
        assert!(r.pending.is_empty());
    }

    #[test]
    fn ipv6_overlap_discards_the_whole_datagram() {
        // RFC 5722: the overlap drops it, and so is the fragment that would complete it.
        let mut r = Reassembly::default();
        r.add(0, key(), frag(0, b"abcdefgh", true, true));
        assert!(matches!(
            r.add(0, key(), frag(4, b"XXXXXXXX", true, true)),
            Outcome::Dropped
        ));
        assert!(matches!(
            r.add(0, key(), frag(8, b"ijkl", false, true)),
            Outcome::Dropped
        ));
        assert_eq!(r.dropped.overlapping, 1);
        // An exact duplicate is not an overlap.
        let mut r = Reassembly::default();
        let k = FragKey { id: 8, ..key() };
        r.add(0, k, frag(0, b"abcdefgh", true, true));
        r.add(0, k, frag(0, b"abcdefgh", true, true));
        assert!(matches!(
            r.add(0, k, frag(8, b"ij", false, true)),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn ipv4_overlap_keeps_the_first_bytes() {
        let mut r = Reassembly::default();
        r.add(0, key(), frag(0, b"abcdefgh", true, false));
        r.add(0, key(), frag(4, b"XXXXXXXX", true, false));
        match r.add(0, key(), frag(12, b"mn", false, false)) {
            Outcome::Complete(d) => assert_eq!(d, b"abcdefghXXXXmn"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_on_the_capture_clock_and_bounds() {
        let mut r = Reassembly::default();
        r.add(0, key(), frag(0, b"abcdefgh", true, false));
        // 31 s later the first fragment is gone: the last one alone does not complete it.
        assert!(matches!(
            r.add(TIMEOUT_NS + 1, key(), frag(8, b"ij", false, false)),
            Outcome::Held
        ));
        assert_eq!(r.dropped.timed_out, 1);
        let mut r = Reassembly::default();
        for id in 0..(MAX_DATAGRAMS as u32 + 10) {
            r.add(0, FragKey { id, ..key() }, frag(0, &[0; 8], true, false));
        }
        assert!(r.pending.len() <= MAX_DATAGRAMS);
        assert_eq!(r.dropped.evicted, 10);
        // A fragment reaching beyond 65,535 bytes is dropped.
        assert!(matches!(
            r.add(0, key(), frag(65_530, &[0; 8], false, false)),
            Outcome::Dropped
        ));
        r.finish();
        assert!(r.pending.is_empty());
        assert_eq!(r.bytes, 0);
    }
}
