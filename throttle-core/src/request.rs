//! The request vocabulary every adapter speaks: why an `acquire`, an `acquire_before` or a
//! `try_acquire` (of `n` tokens of any unit) granted nothing. Written once here; the adapters
//! re-export these types (`throttle_io::AcquireError`, `throttle_embassy::AcquireError`, …).
//!
//! Not to be confused with the crate root's [`AcquireError`](crate::AcquireError), the error
//! of one [`Tree::acquire`](crate::Tree::acquire) call: the types here are what a whole
//! request reports to its caller, including a deadline or a timer that could not be armed.
//!
//! Both are plain values: `Copy`, comparable, and their `Display` and `Debug` read no clock
//! (a wait is a [`Duration`] counted from the call, not an instant). The conversions from the
//! core's own errors are here too: [`WaitError`] (a wait) and [`TakeError`] (a take at `now`,
//! [`TryAcquireError::from_take`]); the deadline check is
//! [`Shared::check_deadline`](crate::Shared::check_deadline).

use core::fmt;
use core::time::Duration;

use crate::shared::TakeError;
use crate::time::Instant;
use crate::wait::{SleepError, WaitError};

/// Why an adapter's `acquire` or `acquire_before` granted nothing more. Nothing is held after
/// an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcquireError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the tree (removed by another handle).
    Stale,
    /// The wait would outlast the deadline of `acquire_before`. Nothing was reserved.
    Deadline {
        /// How long after the call the request could complete at the earliest (a lower bound
        /// when other leaves compete); `None`: never, as things stand (a limit on the path is
        /// paused).
        wait: Option<Duration>,
    },
    /// The runtime cannot arm a timer here: polled outside the runtime, a runtime without
    /// timers (tokio without `enable_time`), … The request was withdrawn. embassy never
    /// produces it: its timers cannot fail to arm.
    Runtime(SleepError),
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::ZeroRequest => f.write_str("a request must ask for at least one token"),
            AcquireError::Stale => f.write_str("the leaf no longer exists"),
            AcquireError::Deadline { wait: Some(d) } => write!(
                f,
                "the limit allows this request {d:?} after the call at the earliest, past the deadline"
            ),
            AcquireError::Deadline { wait: None } => {
                f.write_str("the limit is paused: the request cannot complete before the deadline")
            }
            AcquireError::Runtime(e) => write!(f, "cannot wait for tokens: {e}"),
        }
    }
}

impl core::error::Error for AcquireError {}

impl From<WaitError> for AcquireError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::ZeroRequest => AcquireError::ZeroRequest,
            WaitError::Sleep(e) => AcquireError::Runtime(e),
            // (the enum is non-exhaustive: anything else means the leaf cannot be served)
            _ => AcquireError::Stale,
        }
    }
}

#[cfg(feature = "std")]
impl From<AcquireError> for std::io::Error {
    fn from(e: AcquireError) -> Self {
        std::io::Error::other(e)
    }
}

/// Why an adapter's `try_acquire` granted nothing. It never waits and holds nothing
/// afterwards (like governor's `check_n`: "not yet" and "never at once" are different
/// answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TryAcquireError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the tree.
    Stale,
    /// Not enough tokens now; retrying later can succeed.
    NotYet {
        /// How long after the call the path has the tokens at the earliest (a lower bound when
        /// other leaves compete); `None`: a limit on the path is paused.
        wait: Option<Duration>,
    },
    /// `n` exceeds what the path can ever grant at once (its smallest burst, or the largest
    /// piece of the tree's [`Config`](crate::Config)): no wait makes it succeed. An
    /// adapter's `acquire` serves such a request in pieces over time.
    InsufficientCapacity {
        /// The most tokens one `try_acquire` on this path can be granted.
        max: u64,
    },
}

impl TryAcquireError {
    /// What a [`Shared::try_take`](crate::Shared::try_take) at `now` that failed with `e`
    /// tells the caller: the instant to retry becomes a wait counted from `now`.
    pub fn from_take(e: TakeError, now: Instant) -> Self {
        match e {
            TakeError::ZeroRequest => TryAcquireError::ZeroRequest,
            TakeError::NotYet { until } => TryAcquireError::NotYet {
                wait: until.map(|t| t.saturating_duration_since(now)),
            },
            TakeError::TooLarge { max } => TryAcquireError::InsufficientCapacity { max },
            _ => TryAcquireError::Stale,
        }
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::ZeroRequest => {
                f.write_str("a request must ask for at least one token")
            }
            TryAcquireError::Stale => f.write_str("the leaf no longer exists"),
            TryAcquireError::NotYet { wait: Some(d) } => write!(
                f,
                "rate-limited: the limit allows this request {d:?} after the call at the earliest"
            ),
            TryAcquireError::NotYet { wait: None } => {
                f.write_str("rate-limited: a limit on the path is paused")
            }
            TryAcquireError::InsufficientCapacity { max } => write!(
                f,
                "the request exceeds the {max} tokens this path can grant at once; it can never succeed without waiting"
            ),
        }
    }
}

impl core::error::Error for TryAcquireError {}

#[cfg(all(test, feature = "std"))]
mod tests {
    extern crate alloc;
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn wait_errors_map_to_acquire_errors() {
        assert_eq!(
            AcquireError::from(WaitError::ZeroRequest),
            AcquireError::ZeroRequest
        );
        assert_eq!(
            AcquireError::from(WaitError::StaleHandle),
            AcquireError::Stale
        );
        assert_eq!(
            AcquireError::from(WaitError::Sleep(SleepError::TimersDisabled)),
            AcquireError::Runtime(SleepError::TimersDisabled)
        );
    }

    #[test]
    fn take_errors_become_waits_counted_from_now() {
        let now = Instant::from_millis(1_000);
        assert_eq!(
            TryAcquireError::from_take(
                TakeError::NotYet {
                    until: Some(Instant::from_millis(1_250))
                },
                now
            ),
            TryAcquireError::NotYet {
                wait: Some(Duration::from_millis(250))
            }
        );
        // an instant already past is no wait, not an underflow
        assert_eq!(
            TryAcquireError::from_take(
                TakeError::NotYet {
                    until: Some(Instant::from_millis(900))
                },
                now
            ),
            TryAcquireError::NotYet {
                wait: Some(Duration::ZERO)
            }
        );
        assert_eq!(
            TryAcquireError::from_take(TakeError::NotYet { until: None }, now),
            TryAcquireError::NotYet { wait: None }
        );
        assert_eq!(
            TryAcquireError::from_take(TakeError::TooLarge { max: 7 }, now),
            TryAcquireError::InsufficientCapacity { max: 7 }
        );
        assert_eq!(
            TryAcquireError::from_take(TakeError::ZeroRequest, now),
            TryAcquireError::ZeroRequest
        );
        assert_eq!(
            TryAcquireError::from_take(TakeError::Stale, now),
            TryAcquireError::Stale
        );
    }

    #[test]
    fn display_is_one_line_and_carries_the_wait() {
        let e = AcquireError::Deadline {
            wait: Some(Duration::from_millis(1_500)),
        };
        assert!(e.to_string().contains("1.5s"), "{e}");
        let e = TryAcquireError::InsufficientCapacity { max: 10 };
        assert!(e.to_string().contains("10 tokens"), "{e}");
        for s in [
            AcquireError::Deadline { wait: None }.to_string(),
            AcquireError::Runtime(SleepError::NoRuntime).to_string(),
            TryAcquireError::NotYet { wait: None }.to_string(),
        ] {
            assert!(!s.is_empty() && !s.contains('\n'), "{s}");
        }
        let io: std::io::Error = AcquireError::Stale.into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
    }
}
