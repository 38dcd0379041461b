//! Conversions between embassy-time's clock (ticks at `TICK_HZ`) and the core's `Instant`
//! (nanoseconds). Both count from an arbitrary origin (boot), so only the unit changes.
//! u128 intermediates, saturating: no overflow for any tick rate or hostile deadline.

use embassy_time::TICK_HZ;
use throttle_core::Instant;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// embassy-time's `now`, as the core's [`Instant`].
pub(crate) fn now() -> Instant {
    from_embassy(embassy_time::Instant::now())
}

/// Ticks to nanoseconds, rounded down, saturating at [`Instant::MAX`].
pub(crate) fn from_embassy(t: embassy_time::Instant) -> Instant {
    let hz = u128::from(TICK_HZ.max(1));
    let nanos = u128::from(t.as_ticks()) * NANOS_PER_SEC / hz;
    Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Nanoseconds to ticks, rounded up (a timer must not fire before the core's deadline, or the
/// task wakes only to sleep again), saturating at embassy's `Instant::MAX` (never fires).
pub(crate) fn to_embassy(t: Instant) -> embassy_time::Instant {
    let hz = u128::from(TICK_HZ.max(1));
    let ticks = (u128::from(t.as_nanos()) * hz).div_ceil(NANOS_PER_SEC);
    embassy_time::Instant::from_ticks(u64::try_from(ticks).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_whole_ticks_is_exact() {
        for ticks in [0u64, 1, 999, 1_000_000, 1 << 40] {
            let e = embassy_time::Instant::from_ticks(ticks);
            assert_eq!(to_embassy(from_embassy(e)), e);
        }
    }

    #[test]
    fn deadline_between_ticks_rounds_up() {
        // std driver: 1 MHz, one tick = 1000 ns
        let t = Instant::from_nanos(1_001);
        assert_eq!(to_embassy(t).as_ticks(), 2);
    }

    #[test]
    fn extreme_instants_saturate() {
        assert_eq!(
            to_embassy(Instant::MAX),
            embassy_time::Instant::from_ticks(u64::MAX / 1000 + 1)
        );
        assert_eq!(
            from_embassy(embassy_time::Instant::MAX),
            Instant::from_nanos(u64::MAX)
        );
    }
}
