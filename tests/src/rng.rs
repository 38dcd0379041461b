//! A tiny seeded random number generator (SplitMix64) for reproducible simulations.
//!
//! Not cryptographic and not meant to be: it only has to be fast, deterministic across
//! platforms and releases (no dependency can change its output), and good enough to spread
//! demand, short writes and timestamps.

/// SplitMix64 (Steele, Lea, Flood 2014): one `u64` of state, full period 2^64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed` (any value, zero included).
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for sub-component `k` (e.g. one per leaf) of the same seed.
    pub fn fork(seed: u64, k: u64) -> Self {
        let mut g = SplitMix64::new(seed ^ k.wrapping_mul(0xA076_1D64_78BD_642F));
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`), without modulo bias worth mentioning here
    /// (Lemire's multiply-shift).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // first output of SplitMix64 seeded with 0 (reference value)
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn range_stays_inside_bounds() {
        let mut g = SplitMix64::new(1);
        for _ in 0..1000 {
            let x = g.range(5, 9);
            assert!((5..=9).contains(&x));
        }
        assert_eq!(g.range(3, 3), 3);
        assert_eq!(g.below(0), 0);
        let _ = g.range(0, u64::MAX);
    }
}
