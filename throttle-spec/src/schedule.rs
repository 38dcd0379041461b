//! Weekly schedules as a pure function of local wall-clock time: "20M Mon-Fri 09:00-17:00,
//! 100M otherwise". No clock, no time zone, no allocation: give it the local week time (an
//! embedded board with its own RTC can) and it answers the rate in force and how long until
//! the rate changes. Time zones and DST live one level up (`zoned.rs`, `std`).
//!
//! ```text
//! schedule = rule { ("," | ";") rule }
//! rule     = RATE { days | HH:MM-HH:MM }  |  RATE "otherwise"
//! days     = Mon | Mon-Fri | Fri-Mon (wraps) | weekdays | weekends | daily
//! ```
//! The first rule that matches wins; nothing matches → the `otherwise` rate (unlimited when
//! none is given; the CLI uses `-L`). A range ending at or before its start runs overnight and
//! belongs to the day it starts on (`Fri 22:00-06:00` ends Saturday 06:00). Days without a time
//! range mean the whole day; a time range without days means every day.

use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, ScheduleError};
use crate::Rate;

/// Most rules one schedule holds.
pub const MAX_RULES: usize = 16;

/// Seconds in a day and in a week.
const DAY: u32 = 86_400;
/// Seconds in a week.
pub const WEEK: u32 = 7 * DAY;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A local wall-clock time within the week: seconds since Monday 00:00 (`< WEEK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekTime(u32);

impl WeekTime {
    /// `weekday` 0 = Monday … 6 = Sunday; `None` if a field is out of range (a leap second
    /// `sec = 60` is taken as 59).
    pub const fn new(weekday: u8, hour: u8, min: u8, sec: u8) -> Option<WeekTime> {
        if weekday > 6 || hour > 23 || min > 59 || sec > 60 {
            return None;
        }
        let sec = if sec == 60 { 59 } else { sec };
        Some(WeekTime(
            weekday as u32 * DAY + hour as u32 * 3600 + min as u32 * 60 + sec as u32,
        ))
    }

    /// Seconds since Monday 00:00, wrapped into the week.
    pub const fn from_seconds(s: u32) -> WeekTime {
        WeekTime(s % WEEK)
    }

    /// Seconds since Monday 00:00.
    pub const fn seconds(self) -> u32 {
        self.0
    }
}

/// One rule: `rate` on `days` (bit 0 = Monday) from `start` to `end` (seconds of the day;
/// `end ≤ start` runs overnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The rate while the rule matches.
    pub rate: Rate,
    /// Days it starts on, bit 0 = Monday … bit 6 = Sunday.
    pub days: u8,
    /// Start, seconds since midnight (`< 86 400`).
    pub start: u32,
    /// End, seconds since midnight (`≤ 86 400`); at or before `start`: the next day.
    pub end: u32,
}

impl Rule {
    /// The rule's length in seconds (a full day when start = 0 and end = 86 400).
    const fn span(&self) -> u32 {
        if self.end > self.start {
            self.end - self.start
        } else {
            self.end + DAY - self.start
        }
    }

    fn matches(&self, t: WeekTime) -> bool {
        (0..7u32).any(|d| {
            self.days & (1 << d) != 0 && (t.0 + WEEK - (d * DAY + self.start)) % WEEK < self.span()
        })
    }

    /// Its start and end instants in the week (up to 14).
    fn edges(&self) -> impl Iterator<Item = u32> + '_ {
        (0..7u32)
            .filter(move |d| self.days & (1 << d) != 0)
            .flat_map(move |d| {
                let s = d * DAY + self.start;
                [s % WEEK, (s + self.span()) % WEEK]
            })
    }
}

/// The answer of [`Schedule::at`]: the rate in force and when it next changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The rate in force.
    pub rate: Rate,
    /// Seconds of wall-clock time (`1..=WEEK`) until the rate differs from `rate`; `None` when
    /// it never does.
    pub next_change_in: Option<u32>,
}

/// A weekly schedule of rates. Fixed capacity ([`MAX_RULES`]), `Copy`-free but cheap to
/// clone; no allocation. The grammar:
///
/// ```text
/// schedule = rule { ("," | ";") rule }
/// rule     = RATE { days | HH:MM-HH:MM }  |  RATE "otherwise"
/// days     = Mon | Mon-Fri | Fri-Mon (wraps) | weekdays | weekends | daily
/// ```
/// The first rule that matches wins; nothing matches → the `otherwise` rate (unlimited when
/// none is given). A range ending at or before its start runs overnight and belongs to the
/// day it starts on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Schedule {
    rules: heapless::Vec<Rule, MAX_RULES>,
    otherwise: Option<Rate>,
}

impl Schedule {
    /// The rules, first match first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rate when no rule matches, if the schedule says one.
    pub fn otherwise(&self) -> Option<Rate> {
        self.otherwise
    }

    /// Sets the rate for when no rule matches, unless the schedule already says one (the CLI
    /// passes `-L` here).
    pub fn or_otherwise(mut self, rate: Rate) -> Schedule {
        self.otherwise.get_or_insert(rate);
        self
    }

    /// The rate at local week time `t`.
    pub fn rate_at(&self, t: WeekTime) -> Rate {
        self.rules
            .iter()
            .find(|r| r.matches(t))
            .map_or(self.otherwise.unwrap_or_default(), |r| r.rate)
    }

    /// The rate at `t` and the wall-clock seconds until it changes. Boundaries where the rate
    /// stays the same (two rules meeting at the same rate) are not reported: a manual change
    /// holds until the rate really changes. At most `MAX_RULES × 14` edges, each checked
    /// against every rule: microseconds, once per boundary.
    pub fn at(&self, t: WeekTime) -> Step {
        let rate = self.rate_at(t);
        let mut after = 0u32; // edges at or before t + after are done
        loop {
            let next = self
                .rules
                .iter()
                .flat_map(Rule::edges)
                .map(|e| match (e + WEEK - t.0) % WEEK {
                    0 => WEEK,
                    d => d,
                })
                .filter(|&d| d > after)
                .min();
            match next {
                None => {
                    return Step {
                        rate,
                        next_change_in: None,
                    }
                }
                Some(d) => {
                    if self.rate_at(WeekTime::from_seconds(t.0 + d)) != rate {
                        return Step {
                            rate,
                            next_change_in: Some(d),
                        };
                    }
                    after = d;
                }
            }
        }
    }
}

fn parse_day(s: &str) -> Option<u32> {
    DAY_NAMES
        .iter()
        .position(|d| {
            s.get(..3).is_some_and(|head| d.eq_ignore_ascii_case(head)) && {
                // Mon, Monday (any case)
                const FULL: [&str; 7] = [
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                ];
                s.len() == 3 || FULL.iter().any(|f| f.eq_ignore_ascii_case(s))
            }
        })
        .map(|i| i as u32)
}

/// `Mon`, `Mon-Fri`, `Fri-Mon`, `weekdays`, `weekends`, `daily` → a day mask.
fn parse_days(s: &str) -> Option<u8> {
    for (word, mask) in [
        ("daily", 0x7f),
        ("everyday", 0x7f),
        ("weekdays", 0x1f),
        ("weekends", 0x60),
    ] {
        if s.eq_ignore_ascii_case(word) {
            return Some(mask);
        }
    }
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (parse_day(a)?, parse_day(b)?),
        None => {
            let d = parse_day(s)?;
            (d, d)
        }
    };
    let mut mask = 0u8;
    let mut d = a;
    loop {
        mask |= 1 << d;
        if d == b {
            return Some(mask);
        }
        d = (d + 1) % 7;
    }
}

fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 3600 + m * 60)
}

fn parse_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (parse_clock(a)?, parse_clock(b)?);
    // 24:00 as a start is 00:00; a range of zero length is a mistake
    let a = a % DAY;
    (a != b % DAY || (a == 0 && b == DAY)).then_some((a, b))
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ScheduleError> {
        let mut sched = Schedule::default();
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        for (i, text) in s.split([',', ';']).enumerate() {
            let rule = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let mut words = text.split_whitespace();
            let rate: Rate = words
                .next()
                .ok_or(ScheduleError::Rate {
                    rule,
                    error: ParseError::Empty,
                })?
                .parse()
                .map_err(|error| ScheduleError::Rate { rule, error })?;
            let (mut days, mut range, mut otherwise) = (0u8, None, false);
            for w in words {
                if w.eq_ignore_ascii_case("otherwise") || w.eq_ignore_ascii_case("else") {
                    otherwise = true;
                } else if let Some(mask) = parse_days(w) {
                    days |= mask;
                } else if w.contains(':') {
                    if range.is_some() {
                        return Err(ScheduleError::BadTime { rule });
                    }
                    range = Some(parse_range(w).ok_or(ScheduleError::BadTime { rule })?);
                } else {
                    return Err(ScheduleError::Unexpected { rule });
                }
            }
            if otherwise {
                if days != 0 || range.is_some() || sched.otherwise.is_some() {
                    return Err(ScheduleError::BadOtherwise { rule });
                }
                sched.otherwise = Some(rate);
                continue;
            }
            if days == 0 && range.is_none() {
                return Err(ScheduleError::Unexpected { rule });
            }
            let (start, end) = range.unwrap_or((0, DAY));
            let days = if days == 0 { 0x7f } else { days };
            sched
                .rules
                .push(Rule {
                    rate,
                    days,
                    start,
                    end,
                })
                .map_err(|_| ScheduleError::TooManyRules)?;
        }
        Ok(sched)
    }
}

impl fmt::Display for Schedule {
    /// The canonical form, which parses back to the same schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for r in &self.rules {
            write!(f, "{sep}{} ", Rate::to_compact(r.rate))?;
            let mut first = true;
            for (d, name) in DAY_NAMES.iter().enumerate() {
                if r.days & (1 << d) != 0 {
                    if !first {
                        f.write_str(" ")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
            }
            let hm = |s: u32| (s / 3600, s / 60 % 60);
            let ((a, b), (c, d)) = (hm(r.start), hm(r.end));
            write!(f, " {a:02}:{b:02}-{c:02}:{d:02}")?;
            sep = ", ";
        }
        if let Some(o) = self.otherwise {
            write!(f, "{sep}{} otherwise", Rate::to_compact(o))?;
        }
        Ok(())
    }
}

impl Rate {
    /// The rate without blanks (`10MiB/s`), for places where words are split on blanks.
    fn to_compact(self) -> impl fmt::Display {
        struct Compact(Rate);
        impl fmt::Display for Compact {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Rate::PerSecond(n) if n > 0 => crate::quantity::fmt_bytes_compact(f, n),
                    r => write!(f, "{r}"),
                }
            }
        }
        Compact(self)
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    extern crate std;
    use alloc::string::ToString;

    use super::*;

    const M: u64 = 1 << 20;

    fn at(s: &Schedule, day: u8, h: u8, m: u8) -> Step {
        s.at(WeekTime::new(day, h, m, 0).unwrap())
    }

    #[test]
    fn office_hours_switch_at_nine_and_five() {
        let s: Schedule = "20M Mon-Fri 09:00-17:00, 100M otherwise".parse().unwrap();
        // Monday 08:00: 100M for one hour
        assert_eq!(
            at(&s, 0, 8, 0),
            Step {
                rate: Rate::PerSecond(100 * M),
                next_change_in: Some(3600)
            }
        );
        // Monday 09:00: 20M for 8 hours
        assert_eq!(
            at(&s, 0, 9, 0),
            Step {
                rate: Rate::PerSecond(20 * M),
                next_change_in: Some(8 * 3600)
            }
        );
        // Friday 17:00: 100M until Monday 09:00
        assert_eq!(
            at(&s, 4, 17, 0),
            Step {
                rate: Rate::PerSecond(100 * M),
                next_change_in: Some(64 * 3600)
            }
        );
        // Sunday 23:59 → Monday 09:00, across the week's wrap
        assert_eq!(at(&s, 6, 23, 59).next_change_in, Some(9 * 3600 + 60));
    }

    #[test]
    fn overnight_range_belongs_to_start_day() {
        let s: Schedule = "1M Fri 22:00-06:00".parse().unwrap();
        assert_eq!(at(&s, 4, 23, 0).rate, Rate::PerSecond(M));
        assert_eq!(at(&s, 5, 5, 59).rate, Rate::PerSecond(M));
        assert_eq!(at(&s, 5, 6, 0).rate, Rate::Unlimited);
        assert_eq!(at(&s, 3, 23, 0).rate, Rate::Unlimited, "Thursday night");
        assert_eq!(at(&s, 4, 23, 0).next_change_in, Some(7 * 3600));
    }

    #[test]
    fn first_match_wins_and_equal_neighbours_are_not_boundaries() {
        let s: Schedule = "pause Sat 10:00-11:00, 5M weekends, 5M Mon 00:00-01:00, 50M otherwise"
            .parse()
            .unwrap();
        assert_eq!(at(&s, 5, 10, 30).rate, Rate::PAUSED);
        assert_eq!(at(&s, 5, 12, 0).rate, Rate::PerSecond(5 * M));
        // Sunday 12:00: weekends runs into Monday 00:00-01:00 at the same 5M: one change, at
        // Monday 01:00
        assert_eq!(at(&s, 6, 12, 0).next_change_in, Some(13 * 3600));
    }

    #[test]
    fn constant_schedule_never_changes() {
        let s: Schedule = "5M daily".parse().unwrap();
        assert_eq!(
            at(&s, 2, 3, 4),
            Step {
                rate: Rate::PerSecond(5 * M),
                next_change_in: None
            }
        );
        let s: Schedule = "7M otherwise".parse().unwrap();
        assert_eq!(at(&s, 0, 0, 0).rate, Rate::PerSecond(7 * M));
        let s = "1M 01:00-02:00"
            .parse::<Schedule>()
            .unwrap()
            .or_otherwise(Rate::PAUSED);
        assert_eq!(at(&s, 3, 0, 0).rate, Rate::PAUSED);
    }

    #[test]
    fn bad_schedules_name_the_rule() {
        let cases = [
            ("", ScheduleError::Empty),
            ("10M", ScheduleError::Unexpected { rule: 1 }),
            ("10M Mon, 5M Funday", ScheduleError::Unexpected { rule: 2 }),
            ("1M M¥n", ScheduleError::Unexpected { rule: 1 }),
            ("10M 09:00-09:00", ScheduleError::BadTime { rule: 1 }),
            ("10M 25:00-26:00", ScheduleError::BadTime { rule: 1 }),
            ("10M otherwise Mon", ScheduleError::BadOtherwise { rule: 1 }),
            (
                "1M otherwise, 2M otherwise",
                ScheduleError::BadOtherwise { rule: 2 },
            ),
        ];
        for (s, e) in cases {
            assert_eq!(s.parse::<Schedule>(), Err(e), "{s:?}");
        }
        assert!(matches!(
            "10mbps Mon".parse::<Schedule>(),
            Err(ScheduleError::Rate { rule: 1, .. })
        ));
        let many = ["1M Mon"; MAX_RULES + 1].join(", ");
        assert_eq!(many.parse::<Schedule>(), Err(ScheduleError::TooManyRules));
    }

    #[test]
    fn display_parses_back() {
        for s in [
            "20M Mon-Fri 09:00-17:00, 100M otherwise",
            "1.5M Fri-Mon 22:00-06:00; pause Wed",
            "1000001 00:00-24:00",
            "999 Sun",
        ] {
            let a: Schedule = s.parse().unwrap();
            let b: Schedule = a.to_string().parse().unwrap();
            assert_eq!(a, b, "{s} → {a}");
        }
    }
}
