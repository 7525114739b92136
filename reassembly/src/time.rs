/// A capture timestamp in microseconds since the Unix epoch. Comes in with each packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From seconds and microseconds.
    pub fn from_secs_micros(secs: u64, micros: u32) -> Self {
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(u64::from(micros)))
    }
    /// Whole seconds.
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Seconds as a float, for display.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - earlier` in microseconds, zero when time went backwards.
    pub fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
