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
//! piece waiting (this one included); and no piece exceeds the smallest burst on the path, even
//! when that is below `min_piece` (a grant never exceeds a burst: `acquire(30)` under "10 per
//! second" is served 10 now, 10 a second later, 10 after that). The burst bound also keeps a
//! child capped above its fair share eligible whenever it is picked.
//!
//! # Bursts and contention: the minimum burst
//!
//! A node sends only while it holds tokens, and holds at most its burst. Between two of its
//! turns — a timer that fires on a 1 ms grid, a task that runs late, siblings served first — its
//! buckets fill up, and what would go beyond the burst is lost. A burst below a few milliseconds
//! of its rate therefore loses most of its share under real runtimes (a 20 MiB/s node with a
//! 1 KiB burst got 3.4 MiB/s beside busy siblings). So a tree refuses such a burst:
//! [`Config::min_burst`] (default 5 ms: a 1 ms timer grid plus a few ms of lateness) is the
//! smallest burst, as time at the tier's rate, that `insert_*` and `set_limit` accept; below
//! it they fail with [`BurstTooSmall`](crate::BurstTooSmall), which says the minimum. The
//! automatic burst of [`Tier::per_second`] (`rate × 10 ms`) and quotas
//! ([`Tier::per_period`]) always pass; request limits of a few hundred per second may keep a
//! burst of 0 or 1. `Config::with_min_burst(Duration::ZERO)` accepts any burst, knowingly.
//!
//! One round over N's busy leaves lasts about `round` whatever their number, until pieces reach
//! `min_piece`: 10 000 leaves under a 50 MiB/s node get 512-byte pieces and a round of ~100 ms
//! instead of 64 KiB pieces and 12 s.
//!
//! # Held turns
//!
//! A leaf that was just granted keeps its place in its parents' fair queues until it asks
//! again, within bounds derived from `round` and the bursts (see the scheduler's docs): weights
//! hold when timers fire late and requests are small (8 KiB copy loops), and a task that runs
//! late is repaid the turns it could not take, for up to 10 rounds.

use core::fmt;
use core::time::Duration;

use crate::error::BurstTooSmall;
use crate::limits::{Limits, Tier};
use crate::time::nanos_of;

/// Tree-wide settings. `Config::default()` suits byte streams and request limits alike: a piece
/// never exceeds what was asked for, nor the smallest burst on the path.
///
/// Each field is kept XOR its default, so [`Config::DEFAULT`] is all zero bytes: with the
/// links' encoding (`node::Link`) an empty tree, and a `static` limiter around it, is zero
/// at start and lands in `.bss` (zeroed RAM) instead of `.data` (RAM *and* a flash image).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    round_ns: u64,
    min_piece: u64,
    max_piece: u64,
    min_burst_ns: u64,
}

/// The defaults, in the clear (see [`Config::DEFAULT`]).
const DEFAULT_ROUND_NS: u64 = 10_000_000;
const DEFAULT_MIN_PIECE: u64 = 512;
const DEFAULT_MAX_PIECE: u64 = 64 * 1024;
const DEFAULT_MIN_BURST_NS: u64 = 5_000_000;

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("round", &self.round())
            .field("min_piece", &self.min_piece())
            .field("max_piece", &self.max_piece())
            .field("min_burst", &self.min_burst())
            .finish()
    }
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
        round_ns: 0,
        min_piece: 0,
        max_piece: 0,
        min_burst_ns: 0,
    };

    /// Target duration of one round over the busy children of a node (default 10 ms).
    /// Clamped to at least 1 µs and at most 1 hour.
    #[must_use]
    pub fn with_round(mut self, round: Duration) -> Self {
        self.round_ns = nanos_of(round).clamp(1_000, 3_600_000_000_000) ^ DEFAULT_ROUND_NS;
        self
    }

    /// Smallest and largest piece, in tokens (defaults 512 and 65 536). `min` is raised to 1,
    /// `max` is clamped to `[min, 2^40]`.
    #[must_use]
    pub fn with_pieces(mut self, min: u64, max: u64) -> Self {
        let min = min.clamp(1, MAX_PIECE_LIMIT);
        self.min_piece = min ^ DEFAULT_MIN_PIECE;
        self.max_piece = max.clamp(min, MAX_PIECE_LIMIT) ^ DEFAULT_MAX_PIECE;
        self
    }

    /// Smallest burst a tier may have, as time at the tier's rate (default 5 ms; see "Bursts
    /// and contention" above). Inserting a node or setting limits with a smaller burst fails
    /// with [`BurstTooSmall`](crate::BurstTooSmall), which says the minimum. `Duration::ZERO`
    /// accepts any burst (and its consequences). Clamped to at most 1 hour.
    #[must_use]
    pub const fn with_min_burst(mut self, min: Duration) -> Self {
        let ns = min.as_nanos();
        self.min_burst_ns = if ns > 3_600_000_000_000 {
            3_600_000_000_000
        } else {
            ns as u64
        } ^ DEFAULT_MIN_BURST_NS;
        self
    }

    /// The smallest burst, as time at a tier's rate.
    pub const fn min_burst(&self) -> Duration {
        Duration::from_nanos(self.min_burst_ns())
    }

    const fn min_burst_ns(&self) -> u64 {
        self.min_burst_ns ^ DEFAULT_MIN_BURST_NS
    }

    /// The smallest burst this configuration accepts for `tier`, in tokens: its rate ×
    /// [`Config::min_burst`], rounded down (0 for a paused tier).
    ///
    /// A [`window`](crate::Tier::window) tier has no minimum: it banks nothing a late timer
    /// could lose (its room stays until used), and its burst is 1 by construction.
    pub fn min_burst_of(&self, tier: &Tier) -> u64 {
        if tier.is_window() {
            return 0;
        }
        crate::muldiv::mul_div(tier.amount(), self.min_burst_ns(), tier.period_ns())
    }

    /// Checks every tier of `limits` against [`Config::min_burst_of`].
    pub fn check_bursts(&self, limits: &Limits) -> Result<(), BurstTooSmall> {
        for (tier, t) in limits.tiers().iter().enumerate() {
            let minimum = self.min_burst_of(t);
            if t.burst() < minimum {
                return Err(BurstTooSmall {
                    tier,
                    burst: t.burst(),
                    minimum,
                    min_burst: self.min_burst(),
                });
            }
        }
        Ok(())
    }

    /// The round duration.
    pub const fn round(&self) -> Duration {
        Duration::from_nanos(self.round_ns())
    }

    /// The smallest piece.
    pub const fn min_piece(&self) -> u64 {
        self.min_piece ^ DEFAULT_MIN_PIECE
    }

    /// The largest piece.
    pub const fn max_piece(&self) -> u64 {
        self.max_piece ^ DEFAULT_MAX_PIECE
    }

    pub(crate) const fn round_ns(&self) -> u64 {
        self.round_ns ^ DEFAULT_ROUND_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_below_min_burst_is_refused_with_the_minimum() {
        let c = Config::DEFAULT;
        // 20 MiB/s: 5 ms is 104 857 bytes
        let t = Tier::per_second(20 << 20).with_burst(1024);
        let e = c.check_bursts(&Limits::new(t)).unwrap_err();
        assert_eq!((e.tier, e.burst, e.minimum), (0, 1024, 104_857));
        assert!(c.check_bursts(&Limits::new(t.with_burst(104_857))).is_ok());
        // automatic bursts and quotas always pass; a slow request limit may have burst 0
        assert!(c.check_bursts(&Limits::per_second(u64::MAX)).is_ok());
        assert!(c.check_bursts(&Limits::per_second(10)).is_ok());
        assert!(c
            .check_bursts(&Limits::new(Tier::per_second(100).with_burst(0)))
            .is_ok());
        // opting out
        let any = c.with_min_burst(Duration::ZERO);
        assert!(any.check_bursts(&Limits::new(t.with_burst(0))).is_ok());
    }

    #[test]
    fn the_default_is_what_the_docs_say_and_builders_round_trip() {
        let c = Config::DEFAULT;
        assert_eq!(c.round(), Duration::from_millis(10));
        assert_eq!((c.min_piece(), c.max_piece()), (512, 64 * 1024));
        assert_eq!(c.min_burst(), Duration::from_millis(5));
        let c = c
            .with_round(Duration::from_millis(3))
            .with_pieces(7, 9000)
            .with_min_burst(Duration::from_micros(250));
        assert_eq!(c.round(), Duration::from_millis(3));
        assert_eq!((c.min_piece(), c.max_piece()), (7, 9000));
        assert_eq!(c.min_burst(), Duration::from_micros(250));
        assert_ne!(c, Config::DEFAULT);
        let back = c
            .with_round(Duration::from_millis(10))
            .with_pieces(512, 64 * 1024)
            .with_min_burst(Duration::from_millis(5));
        assert_eq!(back, Config::DEFAULT);
        assert_eq!(
            alloc_free_debug(&Config::DEFAULT),
            "Config { round: 10ms, min_piece: 512, max_piece: 65536, min_burst: 5ms }"
        );
    }

    /// `{:?}` into a fixed buffer (the crate's tests may run without `alloc`).
    fn alloc_free_debug(c: &Config) -> heapless::String<128> {
        use core::fmt::Write;
        let mut s = heapless::String::new();
        write!(s, "{c:?}").unwrap();
        s
    }

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
