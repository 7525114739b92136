//! The generator's only source of randomness: SplitMix64 (Steele, Lea, Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014), the seeder `java.util.SplittableRandom` uses.
//!
//! Why not the `rand` crate: the capture must be the same bytes for a seed on every platform and
//! for as long as this crate is unchanged. `rand`'s distributions and `StdRng` explicitly do not
//! promise value stability across versions, and a few lines of integer arithmetic do. No `f64`
//! arithmetic happens per draw: probabilities are turned into integer thresholds once
//! ([`Chance`]), and ranges use Lemire's multiply-shift, so results cannot depend on a platform's
//! floating point or libm.

/// SplitMix64: a 64-bit state, one add and two multiply-xorshifts per draw.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function; also used to derive independent seeds.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for sub-generator `stream` (a connection id, the body pool, ...).
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        Rng::new(mix64(seed ^ mix64(stream.wrapping_add(GOLDEN))))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-32 for our `n`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `lo..=hi`, as `usize`.
    pub(crate) fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as u64, hi as u64) as usize
    }

    /// Skewed towards `lo`: the minimum of two uniform draws (density falls linearly to `hi`).
    pub(crate) fn skewed(&mut self, lo: u64, hi: u64) -> u64 {
        let a = self.range(lo, hi);
        let b = self.range(lo, hi);
        a.min(b)
    }

    /// True with the probability held by `c`.
    pub(crate) fn hit(&mut self, c: Chance) -> bool {
        c.0 != 0 && (c.0 == u64::MAX || self.next_u64() < c.0)
    }

    /// True with probability `percent`/100 (`percent` a literal in the code).
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index chosen by integer weights (non-empty, positive sum).
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }
}

/// A probability turned into an integer threshold once, so a draw is one comparison.
/// `u64::MAX` stands for certainty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chance(u64);

impl Chance {
    /// `p` is clamped to `[0, 1]`; NaN is treated as 0. The multiplication and the saturating
    /// cast are exact IEEE-754 operations, the same on every platform.
    pub(crate) fn new(p: f64) -> Self {
        if p.is_nan() || p <= 0.0 {
            Chance(0)
        } else if p >= 1.0 {
            Chance(u64::MAX)
        } else {
            Chance((p * 18_446_744_073_709_551_616.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Reference output of SplitMix64 seeded with 1234567 (from the paper's Java reference).
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn ranges_and_chances() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let v = r.range(3, 9);
            assert!((3..=9).contains(&v));
            assert!(r.skewed(10, 20) <= 20);
        }
        assert!(!r.hit(Chance::new(0.0)));
        assert!(r.hit(Chance::new(1.0)));
        let hits = (0..100_000).filter(|_| r.hit(Chance::new(0.25))).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }
}
