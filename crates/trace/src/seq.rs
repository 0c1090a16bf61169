//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! Invariant: this is the only module that does wrapping sequence math; everything else
//! compares through [`SeqNum`].

use std::fmt;

/// A TCP sequence or acknowledgment number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n`, wrapping at 2^32.
    #[must_use]
    pub fn plus(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Distance `self - other` (mod 2^32), as a signed number in `[-2^31, 2^31)`.
    #[must_use]
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// docs/teardown.md: `a` covers `b` iff `(a - b) mod 2^32 < 2^31`.
    #[must_use]
    pub fn covers(self, b: SeqNum) -> bool {
        self.0.wrapping_sub(b.0) < (1 << 31)
    }

    /// The later of two numbers in sequence space.
    #[must_use]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.covers(other) {
            self
        } else {
            other
        }
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_reflexive_and_wraps() {
        assert!(SeqNum(5).covers(SeqNum(5)));
        assert!(SeqNum(6).covers(SeqNum(5)));
        assert!(!SeqNum(5).covers(SeqNum(6)));
        // 2 is "after" 0xffff_fff0 once the counter wraps past 2^32.
        assert!(SeqNum(2).covers(SeqNum(0xffff_fff0)));
        assert!(!SeqNum(0xffff_fff0).covers(SeqNum(2)));
        assert_eq!(SeqNum(0xffff_ffff).plus(2), SeqNum(1));
        assert_eq!(SeqNum(1).diff(SeqNum(0xffff_ffff)), 2);
        assert_eq!(SeqNum(1).max(SeqNum(0xffff_ffff)), SeqNum(1));
    }

    #[test]
    fn covers_boundary_at_half_space() {
        assert!(SeqNum(0x7fff_ffff).covers(SeqNum(0)));
        assert!(!SeqNum(0x8000_0000).covers(SeqNum(0)));
    }
}
