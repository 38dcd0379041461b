//! Conversions between `std::time::Instant` and the core's [`Instant`] (nanoseconds since the
//! limiter's epoch). The only place in the std layer that knows both clocks.

use core::time::Duration;

use throttle_core::Instant;

/// A point on the runtime's clock as the core sees it: nanoseconds since `epoch`, saturating
/// (a time before the epoch is the epoch; 584 years after it is [`Instant::MAX`]).
pub(crate) fn to_core(epoch: std::time::Instant, t: std::time::Instant) -> Instant {
    let d = t.saturating_duration_since(epoch);
    Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The core's instant on the runtime's clock; `None` when it is not representable (the core's
/// "never", [`Instant::MAX`], or past the end of the platform's clock).
pub(crate) fn to_std(epoch: std::time::Instant, t: Instant) -> Option<std::time::Instant> {
    if t == Instant::MAX {
        return None;
    }
    epoch.checked_add(Duration::from_nanos(t.as_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_round_trip_is_exact() {
        let epoch = std::time::Instant::now();
        let t = epoch + Duration::from_nanos(1_234_567_891);
        let c = to_core(epoch, t);
        assert_eq!(c, Instant::from_nanos(1_234_567_891));
        assert_eq!(to_std(epoch, c), Some(t));
    }

    #[test]
    fn before_epoch_is_epoch_and_max_is_never() {
        let epoch = std::time::Instant::now() + Duration::from_secs(10);
        assert_eq!(to_core(epoch, std::time::Instant::now()), Instant::ZERO);
        assert_eq!(to_std(epoch, Instant::MAX), None);
    }
}
