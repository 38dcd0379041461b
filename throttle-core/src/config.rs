//! Tree-wide settings: how big a piece of a request is.
//!
//! # The piece rule
//!
//! A request is served in *pieces*; each busy leaf has at most one piece waiting. Fairness is
//! decided piece by piece, so the piece size bounds how long one round over the busy children
//! of a node takes. When a leaf asks for `want` tokens its piece is
//!
//! ```text
//! piece = min(want, clamp(min over limited nodes N on the leaf's path of
//!                             rate(N) × round / busy(N),  min_piece, max_piece))
//! ```
//!
//! where `rate(N)` is N's smallest tier rate and `busy(N)` the number of leaves under N with a
//! piece waiting (this one included); and no piece exceeds the smallest burst on the path
//! (unless that is below `min_piece`). The burst bound keeps a child capped above its fair
//! share eligible whenever it is picked: a piece larger than its burst would put it in
//! debt after every grant and make it miss turns (a 20 MiB/s leaf with a 16 KiB burst next
//! to an unlimited one under 30 MiB/s got 10 MiB/s instead of 15 before this bound).
//!
//! # Bursts and contention
//!
//! While a node waits for its parent to serve it (about one round when siblings compete), its
//! own buckets keep refilling, but never beyond their burst: that is what makes the
//! conformance bound `burst + one piece` hold. A tier whose burst is smaller than what it
//! earns in one round (`rate × round`) therefore loses throughput under a contended parent
//! (a 2 MiB/s tier with burst 0 in a busy tree got an eighth of its share). The automatic
//! burst of [`Tier::per_second`](crate::Tier::per_second) is exactly `rate × 10 ms`, one
//! default round; choose explicit bursts at least that large. One round over N's busy leaves therefore lasts about
//! `round` whatever their number, until pieces reach `min_piece`: 10 000 leaves under a
//! 50 MiB/s node get 512-byte pieces and a round of ~100 ms instead of 64 KiB pieces and 12 s.

use core::time::Duration;

use crate::time::nanos_of;

/// Tree-wide settings. `Config::default()` suits byte streams; for request limiting (one token
/// per request) the defaults are harmless, since a piece never exceeds what was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    round_ns: u64,
    min_piece: u64,
    max_piece: u64,
}

/// Largest allowed `max_piece` (2^40 tokens): keeps tag arithmetic far inside `u128`.
pub const MAX_PIECE_LIMIT: u64 = 1 << 40;

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

impl Config {
    /// round 10 ms, pieces from 512 B to 64 KiB. At 10 ms a single stream at 64 KiB/s gets
    /// ~100 pieces a second, so any one-second window is within ±1 % of the limit.
    pub const DEFAULT: Config = Config {
        round_ns: 10_000_000,
        min_piece: 512,
        max_piece: 64 * 1024,
    };

    /// Target duration of one round over the busy children of a node (default 10 ms).
    /// Clamped to at least 1 µs and at most 1 hour.
    #[must_use]
    pub fn with_round(mut self, round: Duration) -> Self {
        self.round_ns = nanos_of(round).clamp(1_000, 3_600_000_000_000);
        self
    }

    /// Smallest and largest piece, in tokens (defaults 512 and 65 536). `min` is raised to 1,
    /// `max` is clamped to `[min, 2^40]`.
    #[must_use]
    pub fn with_pieces(mut self, min: u64, max: u64) -> Self {
        self.min_piece = min.clamp(1, MAX_PIECE_LIMIT);
        self.max_piece = max.clamp(self.min_piece, MAX_PIECE_LIMIT);
        self
    }

    /// The round duration.
    pub const fn round(&self) -> Duration {
        Duration::from_nanos(self.round_ns)
    }

    /// The smallest piece.
    pub const fn min_piece(&self) -> u64 {
        self.min_piece
    }

    /// The largest piece.
    pub const fn max_piece(&self) -> u64 {
        self.max_piece
    }

    pub(crate) const fn round_ns(&self) -> u64 {
        self.round_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_out_of_range_are_clamped() {
        let c = Config::DEFAULT.with_pieces(0, u64::MAX);
        assert_eq!((c.min_piece(), c.max_piece()), (1, MAX_PIECE_LIMIT));
        let c = Config::DEFAULT.with_pieces(100, 10);
        assert_eq!((c.min_piece(), c.max_piece()), (100, 100));
        assert_eq!(
            Config::DEFAULT.with_round(Duration::ZERO).round(),
            Duration::from_micros(1)
        );
    }
}
