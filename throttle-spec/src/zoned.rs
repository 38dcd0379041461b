//! A [`Schedule`] in a time zone (`std`, jiff): which rate at an instant, and the instant of
//! the next change, correct across DST gaps and folds.
//!
//! - **Gap** (spring forward, 02:00 → 03:00): a boundary at a wall time that does not exist
//!   (02:30) takes effect at the first instant whose wall time is past it: the transition.
//! - **Fold** (fall back, 02:00 → 01:00): wall times 01:00–02:00 happen twice. A boundary
//!   fires once, at its first occurrence; during the repeated hour the schedule's clock stays
//!   at the end of the first pass (02:00), so nothing switches back and forth, and boundaries
//!   in the repeated hour are not replayed. The rate then is the one in force at 02:00.
//!
//! In short, the schedule reads a wall clock that never goes backwards.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use crate::schedule::{Schedule, WeekTime};
use crate::Rate;

/// A schedule read in one time zone.
#[derive(Clone, Debug)]
pub struct ZonedSchedule {
    schedule: Schedule,
    tz: TimeZone,
}

/// Why a time zone name was refused.
#[derive(Debug)]
pub struct ZoneError(jiff::Error);

impl core::fmt::Display for ZoneError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown time zone: {}", self.0)
    }
}

impl core::error::Error for ZoneError {}

impl ZonedSchedule {
    /// `schedule` read in `tz`.
    pub fn new(schedule: Schedule, tz: TimeZone) -> Self {
        ZonedSchedule { schedule, tz }
    }

    /// `schedule` in the system's local zone (`TZ`, `/etc/localtime`; UTC if neither says).
    pub fn local(schedule: Schedule) -> Self {
        Self::new(schedule, TimeZone::system())
    }

    /// `schedule` in an IANA zone by name (`Europe/Berlin`) or `UTC`.
    pub fn in_zone(schedule: Schedule, name: &str) -> Result<Self, ZoneError> {
        Ok(Self::new(schedule, TimeZone::get(name).map_err(ZoneError)?))
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The schedule's wall clock at `t`: the local time, except during the second pass of a
    /// fold, where it stays at the wall time the first pass ended on.
    fn wall(&self, t: Timestamp) -> DateTime {
        if let Some(tr) = self
            .tz
            .preceding(t.checked_add(SignedDuration::from_nanos(1)).unwrap_or(t))
            .next()
        {
            let at = tr.timestamp();
            let after = tr.offset();
            let before = self
                .tz
                .to_offset(at.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(at));
            let back = SignedDuration::from_secs(i64::from(before.seconds() - after.seconds()));
            if back.is_positive() && t < at.checked_add(back).unwrap_or(at) {
                // the wall clock of the first pass at its end: `at` in the old offset
                return before.to_datetime(at);
            }
        }
        self.tz.to_datetime(t)
    }

    /// The rate in force at `t` and the instant it next changes (`None`: never).
    pub fn at(&self, t: Timestamp) -> (Rate, Option<Timestamp>) {
        let wall = self.wall(t);
        let week = week_time(wall);
        let step = self.schedule.at(week);
        let next = step.next_change_in.and_then(|secs| {
            let target = wall
                .checked_add(SignedDuration::from_secs(i64::from(secs)))
                .ok()?;
            Some(self.first_instant_at_or_after(target).max(t))
        });
        (step.rate, next)
    }

    /// The first instant whose (never-backwards) wall time is at or after `wall`.
    fn first_instant_at_or_after(&self, wall: DateTime) -> Timestamp {
        let amb = self.tz.to_ambiguous_timestamp(wall);
        match amb.offset() {
            AmbiguousOffset::Unambiguous { offset } => to_ts(offset, wall),
            // the earlier occurrence
            AmbiguousOffset::Fold { before, .. } => to_ts(before, wall),
            // the wall time is skipped: the transition instant, which lies between the two
            // readings of `wall`
            AmbiguousOffset::Gap { after, .. } => {
                let early = to_ts(after, wall);
                self.tz
                    .following(early)
                    .next()
                    .map_or(early, |tr| tr.timestamp())
            }
        }
    }
}

fn to_ts(offset: jiff::tz::Offset, wall: DateTime) -> Timestamp {
    offset.to_timestamp(wall).unwrap_or(Timestamp::MAX)
}

/// Seconds since Monday 00:00 of `wall`.
fn week_time(wall: DateTime) -> WeekTime {
    let day = wall.weekday().to_monday_zero_offset() as u8;
    // `new` accepts every field a DateTime can hold (leap seconds do not exist in jiff)
    WeekTime::new(
        day,
        wall.hour() as u8,
        wall.minute() as u8,
        wall.second() as u8,
    )
    .unwrap_or(WeekTime::from_seconds(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    fn zoned(s: &str, tz: &str) -> ZonedSchedule {
        ZonedSchedule::in_zone(s.parse().unwrap(), tz).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn office_hours_in_new_york_switch_at_local_nine() {
        let z = zoned(
            "20M Mon-Fri 09:00-17:00, 100M otherwise",
            "America/New_York",
        );
        // Monday 2026-03-02 08:00 EST = 13:00Z
        let (rate, next) = z.at(ts("2026-03-02T13:00:00Z"));
        assert_eq!(rate, Rate::PerSecond(100 * M));
        assert_eq!(next, Some(ts("2026-03-02T14:00:00Z")));
        // after DST (EDT, -04:00) the same wall time is an hour earlier in UTC
        let (_, next) = z.at(ts("2026-03-09T12:00:00Z"));
        assert_eq!(next, Some(ts("2026-03-09T13:00:00Z")));
    }

    #[test]
    fn boundary_in_spring_gap_fires_at_the_transition() {
        // 2026-03-08 (Sunday): 02:00 EST → 03:00 EDT at 07:00Z; 02:30 does not exist
        let z = zoned("1M Sun 02:30-12:00, 50M otherwise", "America/New_York");
        let (rate, next) = z.at(ts("2026-03-08T06:00:00Z")); // 01:00 EST
        assert_eq!(rate, Rate::PerSecond(50 * M));
        assert_eq!(
            next,
            Some(ts("2026-03-08T07:00:00Z")),
            "at the jump, not 03:30"
        );
        let (rate, next) = z.at(ts("2026-03-08T07:00:00Z")); // 03:00 EDT
        assert_eq!(rate, Rate::PerSecond(M));
        assert_eq!(next, Some(ts("2026-03-08T16:00:00Z")), "12:00 EDT");
    }

    #[test]
    fn boundary_in_autumn_fold_fires_once() {
        // 2026-11-01 (Sunday): 02:00 EDT → 01:00 EST at 06:00Z; 01:00–02:00 happens twice
        let z = zoned("1M Sun 01:30-03:00, 50M otherwise", "America/New_York");
        let first = ts("2026-11-01T05:30:00Z"); // 01:30 EDT, the first 01:30
        let (rate, next) = z.at(ts("2026-11-01T05:00:00Z")); // 01:00 EDT
        assert_eq!(rate, Rate::PerSecond(50 * M));
        assert_eq!(next, Some(first), "the first occurrence");
        // second pass, 01:10 EST (06:10Z): still 1M, no replay of the 01:30 boundary
        let (rate, next) = z.at(ts("2026-11-01T06:10:00Z"));
        assert_eq!(rate, Rate::PerSecond(M));
        assert_eq!(next, Some(ts("2026-11-01T08:00:00Z")), "03:00 EST");
        // second 01:30 (06:30Z) changes nothing either
        assert_eq!(z.at(ts("2026-11-01T06:30:00Z")).0, Rate::PerSecond(M));
    }

    #[test]
    fn boundary_ending_in_fold_does_not_switch_back() {
        // 1M from 00:00 to 01:30 on the fold day: ends at the first 01:30 and stays ended
        let z = zoned("1M Sun 00:00-01:30, 50M otherwise", "America/New_York");
        let (rate, next) = z.at(ts("2026-11-01T05:00:00Z")); // 01:00 EDT
        assert_eq!(rate, Rate::PerSecond(M));
        assert_eq!(next, Some(ts("2026-11-01T05:30:00Z")));
        for t in [
            "2026-11-01T05:45:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:15:00Z",
        ] {
            assert_eq!(z.at(ts(t)).0, Rate::PerSecond(50 * M), "{t}");
        }
    }

    #[test]
    fn berlin_and_utc_agree_on_instants() {
        let z = zoned("pause Mon-Fri 09:00-17:00", "Europe/Berlin");
        let (rate, next) = z.at(ts("2026-07-06T06:00:00Z")); // Monday 08:00 CEST
        assert_eq!(rate, Rate::Unlimited);
        assert_eq!(next, Some(ts("2026-07-06T07:00:00Z")));
        let u = zoned("pause Mon-Fri 09:00-17:00", "UTC");
        assert_eq!(
            u.at(ts("2026-07-06T06:00:00Z")).1,
            Some(ts("2026-07-06T09:00:00Z"))
        );
        assert!(ZonedSchedule::in_zone(Schedule::default(), "Mars/Olympus").is_err());
    }
}
