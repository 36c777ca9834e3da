//! A deterministic generator for the core's differential tests (xorshift64, G. Marsaglia,
//! "Xorshift RNGs", 2003): the same inputs on every run and every machine.

pub(crate) struct XorShift(u64);

impl XorShift {
    /// `seed` must not be 0.
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed)
    }

    /// The next value, reduced to `0..m`.
    pub(crate) fn below(&mut self, m: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % m
    }
}
