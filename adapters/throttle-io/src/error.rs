//! Errors of the async operations. Tree operations (insert, set_limit) return the core's own
//! per-operation enums ([`InsertError`](throttle_core::InsertError),
//! [`SetLimitError`](throttle_core::SetLimitError)); waiting is never an error, except when the
//! caller asked not to wait ([`TryAcquireError`]) or not past a deadline.
//!
//! Both enums are plain values: `Copy`, comparable, and their `Display` and `Debug` read no
//! clock (a wait is a [`Duration`] counted from the call, not an instant).

use core::fmt;
use core::time::Duration;

use throttle_core::wait::{SleepError, WaitError};

/// Why [`Leaf::acquire`](crate::Leaf::acquire), [`Leaf::acquire_before`](crate::Leaf::acquire_before)
/// or [`Leaf::poll_acquire`](crate::Leaf::poll_acquire) failed. Nothing is held after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcquireError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the tree (only possible through the raw
    /// [`Limiter::shared`](crate::Limiter::shared) escape hatch).
    Stale,
    /// The wait would outlast the deadline of [`Leaf::acquire_before`](crate::Leaf::acquire_before).
    /// Nothing was reserved.
    Deadline {
        /// How long after the call the request could complete at the earliest (a lower bound
        /// when other leaves compete); `None`: never, as things stand (a limit on the path is
        /// paused).
        wait: Option<Duration>,
    },
    /// The runtime cannot arm a timer here: polled outside the runtime, a runtime without
    /// timers (tokio without `enable_time`), … The request was withdrawn.
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
            _ => AcquireError::Stale,
        }
    }
}

/// Why [`Leaf::try_acquire`](crate::Leaf::try_acquire) granted nothing. It never waits and
/// holds nothing afterwards (like governor's `check_n`: "not yet" and "never at once" are
/// different answers).
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
    /// piece of the limiter's [`Config`](throttle_core::Config)): no wait makes it succeed.
    /// [`Leaf::acquire`](crate::Leaf::acquire) serves such a request in pieces over time.
    InsufficientCapacity {
        /// The most tokens one `try_acquire` on this path can be granted.
        max: u64,
    },
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

impl From<AcquireError> for std::io::Error {
    fn from(e: AcquireError) -> Self {
        std::io::Error::other(e)
    }
}
