//! What a node is allowed: zero or more tiers, all of which a grant must respect.
//!
//! Two kinds of tier, with different promises:
//! - **token bucket** ([`Tier::per_second`], [`Tier::per_period`], [`Tier::with_burst`]): earns
//!   `amount` per `period` continuously and saves up at most `burst`. Over any interval `T` it
//!   grants at most `rate × T + burst + one piece`. "300 per minute" as a bucket lets 300 go at
//!   once and then 5/s, so up to ~600 in the first minute.
//! - **window** ([`Tier::window`]): at most `N` in *any* window of length `W`, never more; may
//!   admit up to `W / 8` later than an exact count would (see the `window` module). For
//!   request limits ("300 requests per 60 s" as most APIs count them).
//!
//! "10 MiB/s with a 1 MiB burst AND 300 MiB per minute" is one node with two tiers. No tier
//! means unlimited; a tier whose amount is zero means paused (waiters wait until the limit
//! changes). The user-facing convention "0 means unlimited" belongs to config parsing, not here.

use core::fmt;
use core::time::Duration;

use crate::time::nanos_of;

/// Most tiers one node can carry (e.g. per second, per minute, per hour).
pub const MAX_TIERS: usize = 3;

/// Longest period a tier may have: 2^55 ns, about 417 days. Bounds keep every product in the
/// bucket arithmetic inside `i128` without checks on the hot path.
pub const MAX_PERIOD: Duration = Duration::from_nanos(1 << 55);

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One tier: a token bucket (`amount` tokens earned every `period`, at most `burst` saved up)
/// or a sliding window (at most `amount` in any `period`, [`Tier::window`]).
///
/// Tokens are whatever the caller counts: bytes for streams, 1 per request for request limits.
/// The rate is kept as the exact fraction `amount / period`, so "7 per minute" does not round.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tier {
    amount: u64,
    /// The period in ns (at most [`MAX_PERIOD`], below 2^56), with [`WINDOW_BIT`] set for a
    /// window tier: a flag in a bit the period never uses keeps a tier at 24 bytes instead of
    /// 32 (three per node).
    period_bits: u64,
    burst: u64,
}

/// The bit of `Tier::period_bits` that marks a window tier.
const WINDOW_BIT: u64 = 1 << 63;

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("amount", &self.amount)
            .field("period_ns", &self.period_ns())
            .field("burst", &self.burst)
            .field("window", &self.is_window())
            .finish()
    }
}

/// Why a [`Tier`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TierError {
    /// The period was zero.
    ZeroPeriod,
    /// The period exceeded [`MAX_PERIOD`].
    PeriodTooLong,
}

impl fmt::Display for TierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierError::ZeroPeriod => f.write_str("a tier's period must be longer than zero"),
            TierError::PeriodTooLong => {
                f.write_str("a tier's period must not exceed 2^55 ns (about 417 days)")
            }
        }
    }
}

impl core::error::Error for TierError {}

impl Tier {
    /// A rate limit of `rate` tokens per second with an automatic burst.
    ///
    /// Automatic burst = `max(rate × 10 ms, min(rate, 4096))` tokens. The first term lets a
    /// waiter that wakes up to 10 ms late (timer granularity, a busy executor) catch up instead
    /// of losing throughput at high rates; the second keeps very low rates usable (a 1 KiB/s
    /// limit can still send a 1 KiB piece) while staying at most one second's worth. Use
    /// [`Tier::with_burst`] to choose it yourself. `rate == 0` pauses.
    pub const fn per_second(rate: u64) -> Tier {
        let lateness = rate / 100;
        let floor = if rate < 4096 { rate } else { 4096 };
        let burst = if lateness > floor { lateness } else { floor };
        Tier {
            amount: rate,
            period_bits: NANOS_PER_SEC,
            burst,
        }
    }

    /// A quota: `amount` tokens per `period` (e.g. 300 MiB per minute), with burst = `amount`,
    /// so the whole quota can be spent as fast as the node's other tiers allow, and then refills
    /// at `amount / period`. `amount == 0` pauses.
    pub fn per_period(amount: u64, period: Duration) -> Result<Tier, TierError> {
        if period.is_zero() {
            return Err(TierError::ZeroPeriod);
        }
        if period > MAX_PERIOD {
            return Err(TierError::PeriodTooLong);
        }
        Ok(Tier {
            amount,
            period_bits: nanos_of(period),
            burst: amount,
        })
    }

    /// A sliding window: at most `n` tokens in **any** interval of length `window` — "300
    /// requests per 60 s" as most APIs count them. Unlike a token bucket it never lets more
    /// than `n` through in any window (a bucket of `n` per `window` can let through nearly
    /// `2n` in the first window: its saved-up `n`, then its refill).
    ///
    /// Cost and bound: the window is split into 8 sub-windows; a token may be admitted up to
    /// `window / 8` later than an exact count would allow (it never comes early). A node
    /// keeps 9 `u32` counters for it; at most one window tier per node
    /// ([`LimitsError::TooManyWindows`]). Its [`burst`](Tier::burst) is 1 and
    /// [`with_burst`](Tier::with_burst) leaves it so: grants under a window tier are one
    /// token each, so no grant can overshoot the window (a bucket tolerates one piece of debt,
    /// a window does not). Meant for request limits, not bytes.
    /// `n == 0` pauses.
    pub fn window(n: u32, window: Duration) -> Result<Tier, TierError> {
        if window.is_zero() {
            return Err(TierError::ZeroPeriod);
        }
        if window > MAX_PERIOD {
            return Err(TierError::PeriodTooLong);
        }
        Ok(Tier {
            amount: n as u64,
            period_bits: nanos_of(window) | WINDOW_BIT,
            burst: 1,
        })
    }

    /// The same rate with an explicit burst (tokens that can be saved up while idle).
    /// A burst of zero is allowed: every grant then waits for its own tokens. Under a contended
    /// parent, a burst below one round of the rate (`rate × 10 ms` by default) loses
    /// throughput: see [`Config`](crate::Config), "Bursts and contention". A
    /// [`window`](Tier::window) tier is returned unchanged (its burst stays 1).
    #[must_use]
    pub const fn with_burst(self, burst: u64) -> Tier {
        if self.is_window() {
            return self;
        }
        Tier { burst, ..self }
    }

    /// True for a sliding-window tier ([`Tier::window`]), false for a token bucket.
    #[inline]
    pub const fn is_window(&self) -> bool {
        self.period_bits & WINDOW_BIT != 0
    }

    /// Tokens earned per period.
    #[inline]
    pub const fn amount(&self) -> u64 {
        self.amount
    }

    /// The refill period.
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns())
    }

    /// The burst, in tokens.
    #[inline]
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// The rate in tokens per second, rounded down and saturating.
    pub fn rate_per_second(&self) -> u64 {
        crate::muldiv::mul_div(self.amount, NANOS_PER_SEC, self.period_ns())
    }

    /// True when this tier grants nothing until its limit changes.
    #[inline]
    pub const fn is_paused(&self) -> bool {
        self.amount == 0
    }

    #[inline]
    pub(crate) const fn period_ns(&self) -> u64 {
        self.period_bits & !WINDOW_BIT
    }
}

/// The tiers of one node. `Limits::UNLIMITED` has none.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The tiers first, then [`NO_TIER`]s (period 0: no real tier has one), so the count
    /// needs no field of its own (8 bytes per node, with alignment).
    tiers: [Tier; MAX_TIERS],
}

/// Why [`Limits`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitsError {
    /// More than [`MAX_TIERS`] tiers were given.
    TooManyTiers,
    /// More than one [`Tier::window`] was given (a node keeps the counters of one window).
    TooManyWindows,
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitsError::TooManyTiers => write!(f, "a node can have at most {MAX_TIERS} tiers"),
            LimitsError::TooManyWindows => f.write_str("a node can have at most one window tier"),
        }
    }
}

impl core::error::Error for LimitsError {}

/// An unused place in `Limits::tiers`: the only tier with a period of 0.
const NO_TIER: Tier = Tier {
    amount: 0,
    period_bits: 0,
    burst: 0,
};

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("tiers", &self.tiers())
            .finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::UNLIMITED
    }
}

impl Limits {
    /// No tier: grants are limited only by the node's ancestors.
    pub const UNLIMITED: Limits = Limits {
        tiers: [NO_TIER; MAX_TIERS],
    };

    /// One tier.
    pub const fn new(tier: Tier) -> Limits {
        let mut tiers = [NO_TIER; MAX_TIERS];
        tiers[0] = tier;
        Limits { tiers }
    }

    /// One [`Tier::per_second`] tier with its automatic burst.
    pub const fn per_second(rate: u64) -> Limits {
        Limits::new(Tier::per_second(rate))
    }

    /// Up to [`MAX_TIERS`] tiers, all of which a grant must respect.
    pub fn from_tiers(tiers: &[Tier]) -> Result<Limits, LimitsError> {
        if tiers.len() > MAX_TIERS {
            return Err(LimitsError::TooManyTiers);
        }
        if tiers.iter().filter(|t| t.is_window()).count() > 1 {
            return Err(LimitsError::TooManyWindows);
        }
        let mut l = Limits::UNLIMITED;
        l.tiers[..tiers.len()].copy_from_slice(tiers);
        Ok(l)
    }

    /// These tiers plus `tier`.
    pub fn and(mut self, tier: Tier) -> Result<Limits, LimitsError> {
        let i = self.len();
        if i >= MAX_TIERS {
            return Err(LimitsError::TooManyTiers);
        }
        if tier.is_window() && self.window().is_some() {
            return Err(LimitsError::TooManyWindows);
        }
        self.tiers[i] = tier;
        Ok(self)
    }

    /// The tiers, for the loops of the decision path: stops at the first empty place, so it
    /// costs no more than a length field would (slicing by a counted length cost ~15 % more
    /// instructions per decision).
    #[inline]
    pub(crate) fn iter_tiers(&self) -> impl Iterator<Item = &Tier> {
        self.tiers.iter().take_while(|t| t.period_bits != 0)
    }

    /// How many tiers there are.
    fn len(&self) -> usize {
        // tiers come first, so this is their count (branch-free: it is on every path)
        self.tiers
            .iter()
            .map(|t| usize::from(t.period_bits != 0))
            .sum()
    }

    /// The tiers, in the order given.
    #[inline]
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers[..self.len()]
    }

    /// The window tier, if any (at most one).
    pub fn window(&self) -> Option<&Tier> {
        self.tiers().iter().find(|t| t.is_window())
    }

    /// True when there is no tier.
    pub const fn is_unlimited(&self) -> bool {
        self.tiers[0].period_bits == 0
    }

    /// True when some tier is paused.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.iter_tiers().any(Tier::is_paused)
    }

    /// The smallest long-run rate of the tiers, in tokens per second; `None` when unlimited.
    pub fn rate_per_second(&self) -> Option<u64> {
        self.tiers().iter().map(Tier::rate_per_second).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_auto_burst_follows_formula() {
        // high rate: 10 ms of traffic
        assert_eq!(Tier::per_second(100 << 20).burst(), (100 << 20) / 100);
        // mid rate: the 4 KiB floor
        assert_eq!(Tier::per_second(64 << 10).burst(), 4096);
        // low rate: at most one second's worth
        assert_eq!(Tier::per_second(10).burst(), 10);
        assert_eq!(Tier::per_second(0).burst(), 0);
        assert_eq!(Tier::per_second(u64::MAX).burst(), u64::MAX / 100);
    }

    #[test]
    fn per_period_zero_or_huge_period_is_rejected() {
        assert_eq!(
            Tier::per_period(5, Duration::ZERO),
            Err(TierError::ZeroPeriod)
        );
        assert_eq!(
            Tier::per_period(5, Duration::from_secs(u64::MAX)),
            Err(TierError::PeriodTooLong)
        );
        let t = Tier::per_period(300, Duration::from_secs(60)).unwrap();
        assert_eq!((t.burst(), t.rate_per_second()), (300, 5));
    }

    #[test]
    fn limits_with_too_many_tiers_is_rejected() {
        let t = Tier::per_second(1);
        assert_eq!(
            Limits::from_tiers(&[t; MAX_TIERS + 1]),
            Err(LimitsError::TooManyTiers)
        );
        let l = Limits::new(t).and(t).unwrap().and(t).unwrap();
        assert_eq!(l.and(t), Err(LimitsError::TooManyTiers));
        assert_eq!(l.tiers().len(), 3);
    }

    #[test]
    fn window_tier_has_burst_one_and_one_per_node() {
        let w = Tier::window(300, Duration::from_secs(60)).unwrap();
        assert!(w.is_window() && !Tier::per_second(10).is_window());
        assert_eq!(
            (w.amount(), w.burst(), w.with_burst(50).burst()),
            (300, 1, 1)
        );
        assert_eq!(w.rate_per_second(), 5);
        assert_eq!(Tier::window(1, Duration::ZERO), Err(TierError::ZeroPeriod));
        assert!(Tier::window(0, Duration::from_secs(1)).unwrap().is_paused());
        let l = Limits::per_second(10).and(w).unwrap();
        assert_eq!(l.window(), Some(&w));
        assert_eq!(l.and(w), Err(LimitsError::TooManyWindows));
        assert_eq!(
            Limits::from_tiers(&[w, w]),
            Err(LimitsError::TooManyWindows)
        );
    }

    #[test]
    fn limits_rate_is_smallest_tier() {
        let l = Limits::per_second(10 << 20)
            .and(Tier::per_period(300 << 20, Duration::from_secs(60)).unwrap())
            .unwrap();
        assert_eq!(l.rate_per_second(), Some(5 << 20));
        assert_eq!(Limits::UNLIMITED.rate_per_second(), None);
        assert!(Limits::per_second(0).is_paused());
    }
}
