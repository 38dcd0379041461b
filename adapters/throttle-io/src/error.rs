//! Errors of the async operations. Tree operations (insert, set_limit) return the core's own
//! per-operation enums ([`InsertError`](throttle_core::InsertError),
//! [`SetLimitError`](throttle_core::SetLimitError)); waiting is never an error.

use core::fmt;

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
        /// The earliest instant the request could complete (a lower bound when other leaves
        /// compete); `None`: never, as things stand (a limit on the path is paused).
        earliest: Option<std::time::Instant>,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::ZeroRequest => f.write_str("a request must ask for at least one token"),
            AcquireError::Stale => f.write_str("the leaf no longer exists"),
            AcquireError::Deadline { earliest: Some(t) } => {
                let after = t.saturating_duration_since(std::time::Instant::now());
                write!(f, "the limit allows this request in {after:?} at the earliest, after the deadline")
            }
            AcquireError::Deadline { earliest: None } => {
                f.write_str("the limit is paused: the request cannot complete before the deadline")
            }
        }
    }
}

impl core::error::Error for AcquireError {}

impl From<throttle_core::AcquireError> for AcquireError {
    fn from(e: throttle_core::AcquireError) -> Self {
        match e {
            throttle_core::AcquireError::ZeroRequest => AcquireError::ZeroRequest,
            _ => AcquireError::Stale,
        }
    }
}

impl From<AcquireError> for std::io::Error {
    fn from(e: AcquireError) -> Self {
        std::io::Error::other(e)
    }
}
