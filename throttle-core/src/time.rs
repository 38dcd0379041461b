//! The core's own notion of time: a caller-supplied monotonic timestamp in nanoseconds.
//!
//! The core never reads a clock. Adapters convert their runtime's clock (`std::time::Instant`,
//! `embassy_time::Instant`, a virtual clock in a simulator) into an [`Instant`] counted from an
//! epoch of their choice, and pass it to every time-dependent call.

use core::time::Duration;

/// A point in time, in nanoseconds since an epoch chosen by the caller.
///
/// Only differences matter. The tree keeps the largest timestamp it has seen; a timestamp earlier
/// than that counts as "no time has passed" rather than as an error, so a clock that steps
/// backwards can never mint tokens or panic. `u64` nanoseconds last 584 years.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; used as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `micros` microseconds after the epoch (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros.saturating_mul(1_000))
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(self.0.saturating_add(nanos_of(d)))
    }

    /// `self + nanos`, saturating at [`Instant::MAX`].
    pub const fn saturating_add_nanos(self, nanos: u64) -> Self {
        Instant(self.0.saturating_add(nanos))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// A `Duration` in whole nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn nanos_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_add_past_max_saturates() {
        assert_eq!(
            Instant::MAX.saturating_add(Duration::from_secs(1)),
            Instant::MAX
        );
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    }

    #[test]
    fn instant_since_later_is_zero() {
        let a = Instant::from_millis(5);
        let b = Instant::from_millis(7);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(2));
    }

    #[test]
    fn huge_duration_saturates() {
        assert_eq!(nanos_of(Duration::MAX), u64::MAX);
    }
}
