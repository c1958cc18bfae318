//! The fuzzer's random numbers: xorshift64* seeded through splitmix64, so
//! every seed (0 included) gives a different, well-mixed, reproducible
//! stream. Not cryptographic; it only has to be fast and repeatable.

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed: never zero for xorshift (a zero result
        // would stick), and neighbouring seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Self { state: if z == 0 { 0x2545_f491_4f6c_dd1d } else { z } }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..bound` (`bound` > 0), by multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below(0)");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_stream_every_time() {
        let first: Vec<u64> = {
            let mut rng = Rng::new(1);
            (0..100).map(|_| rng.next_u64()).collect()
        };
        let mut again = Rng::new(1);
        assert!(first.iter().all(|&value| value == again.next_u64()));
    }

    #[test]
    fn different_seeds_differ_and_zero_works() {
        let mut zero = Rng::new(0);
        let mut one = Rng::new(1);
        let zeros: Vec<u64> = (0..8).map(|_| zero.next_u64()).collect();
        let ones: Vec<u64> = (0..8).map(|_| one.next_u64()).collect();
        assert_ne!(zeros, ones);
        assert!(zeros.iter().all(|&value| value != 0));
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let value = rng.below(10);
            assert!(value < 10);
            seen[value as usize] += 1;
        }
        // Each bucket expects 1000; a fair generator stays well inside this.
        assert!(seen.iter().all(|&count| (800..1200).contains(&count)), "{seen:?}");
    }

    #[test]
    fn bits_are_balanced() {
        let mut rng = Rng::new(42);
        let mut ones = [0u32; 64];
        for _ in 0..10_000 {
            let value = rng.next_u64();
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((value >> bit) & 1) as u32;
            }
        }
        assert!(ones.iter().all(|&count| (4700..5300).contains(&count)), "{ones:?}");
    }

    #[test]
    fn chance_and_pick() {
        let mut rng = Rng::new(3);
        assert!(!(0..1000).any(|_| rng.chance(0, 5)));
        assert!((0..1000).all(|_| rng.chance(5, 5)));
        let choices = [4u8, 5, 6];
        assert!((0..100).all(|_| choices.contains(&rng.pick(&choices))));
    }
}
