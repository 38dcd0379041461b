//! What a node is allowed: zero or more token-bucket tiers, all of which a grant must respect.
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

/// One token bucket: `amount` tokens earned every `period`, at most `burst` saved up.
///
/// Tokens are whatever the caller counts: bytes for streams, 1 per request for request limits.
/// The rate is kept as the exact fraction `amount / period`, so "7 per minute" does not round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tier {
    amount: u64,
    period_ns: u64,
    burst: u64,
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
            period_ns: NANOS_PER_SEC,
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
            period_ns: nanos_of(period),
            burst: amount,
        })
    }

    /// The same rate with an explicit burst (tokens that can be saved up while idle).
    /// A burst of zero is allowed: every grant then waits for its own tokens. Under a contended
    /// parent, a burst below one round of the rate (`rate × 10 ms` by default) loses
    /// throughput: see [`Config`](crate::Config), "Bursts and contention".
    #[must_use]
    pub const fn with_burst(self, burst: u64) -> Tier {
        Tier { burst, ..self }
    }

    /// Tokens earned per period.
    #[inline]
    pub const fn amount(&self) -> u64 {
        self.amount
    }

    /// The refill period.
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// The burst, in tokens.
    #[inline]
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// The rate in tokens per second, rounded down and saturating.
    pub fn rate_per_second(&self) -> u64 {
        let r = u128::from(self.amount) * u128::from(NANOS_PER_SEC) / u128::from(self.period_ns);
        u64::try_from(r).unwrap_or(u64::MAX)
    }

    /// True when this tier grants nothing until its limit changes.
    #[inline]
    pub const fn is_paused(&self) -> bool {
        self.amount == 0
    }

    #[inline]
    pub(crate) const fn period_ns(&self) -> u64 {
        self.period_ns
    }
}

/// The tiers of one node. `Limits::UNLIMITED` has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    tiers: [Tier; MAX_TIERS],
    len: u8,
}

/// Why [`Limits`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitsError {
    /// More than [`MAX_TIERS`] tiers were given.
    TooManyTiers,
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitsError::TooManyTiers => write!(f, "a node can have at most {MAX_TIERS} tiers"),
        }
    }
}

impl core::error::Error for LimitsError {}

const NO_TIER: Tier = Tier {
    amount: 0,
    period_ns: NANOS_PER_SEC,
    burst: 0,
};

impl Default for Limits {
    fn default() -> Self {
        Limits::UNLIMITED
    }
}

impl Limits {
    /// No tier: grants are limited only by the node's ancestors.
    pub const UNLIMITED: Limits = Limits {
        tiers: [NO_TIER; MAX_TIERS],
        len: 0,
    };

    /// One tier.
    pub const fn new(tier: Tier) -> Limits {
        let mut tiers = [NO_TIER; MAX_TIERS];
        tiers[0] = tier;
        Limits { tiers, len: 1 }
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
        let mut l = Limits::UNLIMITED;
        l.tiers[..tiers.len()].copy_from_slice(tiers);
        l.len = tiers.len() as u8;
        Ok(l)
    }

    /// These tiers plus `tier`.
    pub fn and(mut self, tier: Tier) -> Result<Limits, LimitsError> {
        let i = usize::from(self.len);
        if i >= MAX_TIERS {
            return Err(LimitsError::TooManyTiers);
        }
        self.tiers[i] = tier;
        self.len += 1;
        Ok(self)
    }

    /// The tiers, in the order given.
    #[inline]
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers[..usize::from(self.len)]
    }

    /// True when there is no tier.
    pub const fn is_unlimited(&self) -> bool {
        self.len == 0
    }

    /// True when some tier is paused.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.tiers().iter().any(Tier::is_paused)
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
    fn limits_rate_is_smallest_tier() {
        let l = Limits::per_second(10 << 20)
            .and(Tier::per_period(300 << 20, Duration::from_secs(60)).unwrap())
            .unwrap();
        assert_eq!(l.rate_per_second(), Some(5 << 20));
        assert_eq!(Limits::UNLIMITED.rate_per_second(), None);
        assert!(Limits::per_second(0).is_paused());
    }
}
