//! Applying a schedule to a node: a sans-IO driver. The caller owns the clock and the timer
//! (quinn-style): call [`ScheduleDriver::poll`] at start and whenever [`ScheduleDriver::next_wake`]
//! has passed, apply what it returns; report manual changes with [`ScheduleDriver::manual`].
//! A manual change holds until the schedule's next boundary, then the schedule takes over.
//!
//! ```text
//!   loop { if let Some(rate) = driver.poll(now) { node.set_limit(rate) }
//!          sleep until driver.next_wake() (re-check at least every minute: wall clocks jump)
//!          or until a manual change: driver.manual(rate, now) }
//! ```

use jiff::Timestamp;

use crate::{Limit, Rate, ZonedSchedule};

/// Something whose limit a schedule can set: every std adapter's node (feature `io`), or your
/// own type.
pub trait SetLimits {
    /// What setting can fail with.
    type Error;
    /// Applies `limit` now.
    fn set_limits(&self, limit: Limit) -> Result<(), Self::Error>;
}

#[cfg(feature = "io")]
impl SetLimits for throttle_io::Node {
    type Error = throttle_io::SetLimitError;

    fn set_limits(&self, limit: Limit) -> Result<(), Self::Error> {
        self.set_limit(limit.to_limits())
    }
}

/// Drives a [`ZonedSchedule`], sans-IO: call [`ScheduleDriver::poll`] at start and whenever
/// [`ScheduleDriver::next_wake`] has passed and apply what it returns; report manual changes
/// with [`ScheduleDriver::manual`] (one holds until the schedule's next boundary).
#[derive(Clone, Debug)]
pub struct ScheduleDriver {
    zoned: ZonedSchedule,
    /// What was last applied (by the schedule or by hand).
    current: Option<Rate>,
    /// The next boundary of the schedule.
    next: Option<Timestamp>,
    /// The current rate was set by hand and holds until `next`.
    manual: bool,
}

impl ScheduleDriver {
    /// A driver that has applied nothing yet: the first [`poll`](Self::poll) returns the rate
    /// in force.
    pub fn new(zoned: ZonedSchedule) -> Self {
        ScheduleDriver {
            zoned,
            current: None,
            next: None,
            manual: false,
        }
    }

    /// The rate to apply now, if it changed: on the first call, and on the first call at or
    /// after each boundary (which also ends a manual override). `None` otherwise.
    pub fn poll(&mut self, now: Timestamp) -> Option<Rate> {
        let due = match (self.current, self.next) {
            (None, _) => true,
            (Some(_), Some(next)) => now >= next,
            (Some(_), None) => false,
        };
        if !due {
            return None;
        }
        let (rate, next) = self.zoned.at(now);
        self.current = Some(rate);
        self.next = next;
        self.manual = false;
        Some(rate)
    }

    /// When to call [`poll`](Self::poll) next (`None`: the schedule never changes again).
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.next
    }

    /// Records a change made by hand at `now`: it holds until the next boundary. Call
    /// [`poll`](Self::poll) first if `now` may be past a boundary not yet polled.
    pub fn manual(&mut self, rate: Rate, now: Timestamp) {
        if self.current.is_none() {
            let _ = self.poll(now);
        }
        self.current = Some(rate);
        self.manual = true;
    }

    /// True while a manual change overrides the schedule.
    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// The rate last applied (`None` before the first poll).
    pub fn current(&self) -> Option<Rate> {
        self.current
    }

    /// [`poll`](Self::poll), and apply the result to `target` (with the automatic burst, or
    /// `burst`).
    pub fn drive<T: SetLimits>(
        &mut self,
        target: &T,
        now: Timestamp,
        burst: Option<crate::Size>,
    ) -> Result<Option<Rate>, T::Error> {
        match self.poll(now) {
            Some(rate) => {
                target.set_limits(Limit { rate, burst })?;
                Ok(Some(rate))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    use super::*;

    const M: u64 = 1 << 20;

    /// A node stand-in that records what it was told.
    #[derive(Default)]
    struct Log(RefCell<Vec<Rate>>);

    impl SetLimits for Log {
        type Error = core::convert::Infallible;
        fn set_limits(&self, limit: Limit) -> Result<(), Self::Error> {
            self.0.borrow_mut().push(limit.rate);
            Ok(())
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn driver(s: &str, tz: &str) -> ScheduleDriver {
        ScheduleDriver::new(ZonedSchedule::in_zone(s.parse().unwrap(), tz).unwrap())
    }

    #[test]
    fn manual_change_holds_until_next_boundary() {
        let mut d = driver("20M Mon-Fri 09:00-17:00, 100M otherwise", "UTC");
        let log = Log::default();
        let t0 = ts("2026-03-02T08:00:00Z"); // Monday 08:00
        assert_eq!(d.drive(&log, t0, None), Ok(Some(Rate::PerSecond(100 * M))));
        assert_eq!(d.next_wake(), Some(ts("2026-03-02T09:00:00Z")));
        d.manual(Rate::PerSecond(M), ts("2026-03-02T08:30:00Z"));
        assert!(d.is_manual());
        // before the boundary: nothing to apply, the manual rate holds
        assert_eq!(d.drive(&log, ts("2026-03-02T08:59:59Z"), None), Ok(None));
        assert_eq!(d.current(), Some(Rate::PerSecond(M)));
        // at the boundary the schedule takes over
        let at9 = ts("2026-03-02T09:00:00Z");
        assert_eq!(d.drive(&log, at9, None), Ok(Some(Rate::PerSecond(20 * M))));
        assert!(!d.is_manual());
        assert_eq!(d.next_wake(), Some(ts("2026-03-02T17:00:00Z")));
        assert_eq!(
            *log.0.borrow(),
            [Rate::PerSecond(100 * M), Rate::PerSecond(20 * M)]
        );
    }

    #[test]
    fn late_poll_applies_the_rate_in_force_then() {
        let mut d = driver("20M Mon-Fri 09:00-17:00, 100M otherwise", "UTC");
        assert!(d.poll(ts("2026-03-02T08:00:00Z")).is_some());
        // the process slept through 09:00 and 17:00 (laptop lid): at 18:00 the evening rate
        assert_eq!(
            d.poll(ts("2026-03-02T18:00:00Z")),
            Some(Rate::PerSecond(100 * M))
        );
        assert_eq!(d.next_wake(), Some(ts("2026-03-03T09:00:00Z")));
    }

    #[test]
    fn driver_switches_at_dst_jump_with_fake_clock() {
        // Berlin 2026-03-29: 02:00 CET → 03:00 CEST at 01:00Z
        let mut d = driver("1M Sun 02:15-04:00, 50M otherwise", "Europe/Berlin");
        assert_eq!(
            d.poll(ts("2026-03-29T00:30:00Z")),
            Some(Rate::PerSecond(50 * M))
        );
        let jump = ts("2026-03-29T01:00:00Z");
        assert_eq!(d.next_wake(), Some(jump));
        assert_eq!(d.poll(ts("2026-03-29T00:59:59Z")), None);
        assert_eq!(d.poll(jump), Some(Rate::PerSecond(M)));
        assert_eq!(
            d.next_wake(),
            Some(ts("2026-03-29T02:00:00Z")),
            "04:00 CEST"
        );
        // manual change before the first poll: applied, and the schedule still knows its next
        let mut d = driver("1M Sun 02:15-04:00, 50M otherwise", "Europe/Berlin");
        d.manual(Rate::PAUSED, ts("2026-03-29T00:30:00Z"));
        assert_eq!(d.current(), Some(Rate::PAUSED));
        assert_eq!(d.next_wake(), Some(jump));
    }
}
