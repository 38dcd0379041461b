//! `throttle-spec`: what people type to ask for a limit, and when.
//!
//! - [`Rate`], [`Size`], [`Limit`]: the grammar of pv, curl and nginx users — `10M` is
//!   10 MiB/s, `500kB/s` is 500 000 B/s, `800Mbit/s` is bits, `0`/`off`/`unlimited` is no
//!   limit, `pause` is rate 0; `Mbps` is refused with a message saying what to write. Exact
//!   integer parsing; `Display` is exact (parses back equal), `{:.2}` rounds like pv.
//!   [`Limit::to_limits`] turns a config value into the core's [`Limits`] in one call.
//! - [`Schedule`]: "20M Mon-Fri 09:00-17:00, 100M otherwise" as a pure function of local week
//!   time ([`Schedule::at`]: the rate and the seconds until it changes) — no clock, no zone,
//!   no allocation, so a board with its own RTC can use it.
//! - `std`: [`ZonedSchedule`] reads a schedule in a time zone, correct across DST gaps and
//!   folds; [`ScheduleDriver`] applies it to any node ([`SetLimits`]; throttle-io's `Node`
//!   with feature `io`) with the clock and timer left to the caller, a manual change holding
//!   until the next boundary.
//!
//! ```
//! use throttle_spec::{Rate, Schedule, WeekTime};
//!
//! let rate: Rate = "10M".parse()?;
//! assert_eq!(rate, Rate::PerSecond(10 << 20));
//! assert_eq!(rate.to_string(), "10 MiB/s");
//! assert_eq!(format!("{:.2}", Rate::PerSecond(1_000_000)), "976.56 KiB/s");
//! assert!("10mbps".parse::<Rate>().unwrap_err().to_string().contains("Mbit/s"));
//!
//! let s: Schedule = "20M Mon-Fri 09:00-17:00, 100M otherwise".parse()?;
//! let step = s.at(WeekTime::new(0, 8, 0, 0).unwrap()); // Monday 08:00 local
//! assert_eq!(step.rate, "100M".parse()?);
//! assert_eq!(step.next_change_in, Some(3600));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Why a crate of its own: the CLI, the proxy's config file and a Redis-shared limit all read
//! the same rates and schedules, and embedded users want the grammar and the schedule without
//! std; the core stays free of parsing.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![no_std]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod driver;
mod error;
mod quantity;
mod rate;
mod schedule;
#[cfg(feature = "serde")]
mod serde_impl;
#[cfg(feature = "std")]
mod zoned;

#[cfg(feature = "std")]
pub use driver::{ScheduleDriver, SetLimits};
pub use error::{ParseError, ScheduleError};
#[cfg(feature = "std")]
pub use jiff;
pub use rate::{Bits, Limit, Rate, Size};
pub use schedule::{Rule, Schedule, Step, WeekTime, MAX_RULES, WEEK};
pub use throttle_core::Limits;
#[cfg(feature = "std")]
pub use zoned::{ZoneError, ZonedSchedule};
