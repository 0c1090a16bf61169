//! The two non-cryptographic hashes tcplab uses, once each.
//!
//! - [`FxHasher`]: fast hashing of capture addresses for in-memory tables (a connection's
//!   flow hash, `flow.rs`; an encapsulation path's, `encap.rs`): SipHash's DoS resistance
//!   buys nothing for an offline analyser while costing a third of the time.
//! - [`Fnv1a`]: 64-bit FNV-1a, a *stable* value (std's hashers may change between Rust
//!   releases): packet fingerprints, the sweep's scenario hash and the kernel build key,
//!   which name things on disk and must not change.
//!
//! A leaf: imports nothing of the crate.

use std::hash::Hasher;

/// FxHash-style hasher (rotate, xor, multiply per 8-byte word).
#[derive(Default, Clone, Copy, Debug)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// 64-bit FNV-1a, fed in pieces.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feed `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes` in one go.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fx_hashes_small_integers_as_words() {
        // Written as u8 or as the same value in a word: one hash (the table keys rely on it
        // only within one process, but the two former copies agreed on it).
        let (mut a, mut b) = (FxHasher::default(), FxHasher::default());
        a.write_u8(7);
        b.write(&[7]);
        assert_eq!(a.finish(), b.finish());
    }
}
