//! The error of a throttled read or write: the inner stream's, or the limiter's.

use core::fmt;

/// Why a read or write on a [`Throttled`](crate::Throttled) stream failed. Being rate-limited
/// is never an error (the call waits); a read or write longer than a grant is shortened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error<E> {
    /// The inner stream failed.
    Io(E),
    /// The connection's leaf is no longer in the limiter: another task removed it (e.g.
    /// with [`Limiter::remove`](crate::Limiter::remove) on its parent's handles) or the tree
    /// refused to account the transfer. The stream itself may still be usable.
    Removed,
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Removed => f.write_str("the connection is no longer in the limiter"),
        }
    }
}

// No `source()`: it would need `E: 'static`, a bound every generic caller would inherit; the
// inner error is in `Display` and in the `Io` variant.
impl<E: core::error::Error> core::error::Error for Error<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for Error<E> {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self {
            Error::Io(e) => e.kind(),
            Error::Removed => embedded_io_async::ErrorKind::NotConnected,
        }
    }
}

/// Why [`Limiter::acquire`](crate::Limiter::acquire) or
/// [`Limiter::acquire_before`](crate::Limiter::acquire_before) granted nothing more. Nothing is
/// held afterwards. The same names as the std adapters' `AcquireError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the limiter.
    Stale,
    /// The wait would outlast the deadline of
    /// [`Limiter::acquire_before`](crate::Limiter::acquire_before); nothing was reserved.
    Deadline {
        /// How long after the call the request could complete at the earliest (a lower bound
        /// when other leaves compete); `None`: never as things stand (a paused limit).
        wait: Option<embassy_time::Duration>,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::ZeroRequest => f.write_str("a request must ask for at least one token"),
            AcquireError::Stale => f.write_str("the leaf no longer exists"),
            AcquireError::Deadline { wait: Some(d) } => write!(
                f,
                "the limit allows this request {} µs after the call at the earliest, past the deadline",
                d.as_micros()
            ),
            AcquireError::Deadline { wait: None } => {
                f.write_str("the limit is paused: the request cannot complete before the deadline")
            }
        }
    }
}

impl core::error::Error for AcquireError {}

/// Why [`Limiter::try_acquire`](crate::Limiter::try_acquire) granted nothing. Nothing is held
/// afterwards. The same names as the std adapters' `TryAcquireError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryAcquireError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the limiter.
    Stale,
    /// Not enough tokens now; retrying later can succeed.
    NotYet {
        /// How long after the call the path has the tokens at the earliest (a lower bound
        /// when other leaves compete); `None`: a limit on the path is paused.
        wait: Option<embassy_time::Duration>,
    },
    /// `n` exceeds what the path can ever grant at once (its smallest burst, or the largest
    /// piece of the limiter's configuration): no wait makes it succeed;
    /// [`Limiter::acquire`](crate::Limiter::acquire) serves it in pieces over time.
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
                "rate-limited: the limit allows this request {} µs after the call at the earliest",
                d.as_micros()
            ),
            TryAcquireError::NotYet { wait: None } => f.write_str("rate-limited: the limit is paused"),
            TryAcquireError::InsufficientCapacity { max } => write!(
                f,
                "more than this path can ever grant at once (at most {max}); acquire serves it in pieces"
            ),
        }
    }
}

impl core::error::Error for TryAcquireError {}

impl From<throttle_core::wait::WaitError> for AcquireError {
    fn from(e: throttle_core::wait::WaitError) -> Self {
        match e {
            throttle_core::wait::WaitError::ZeroRequest => AcquireError::ZeroRequest,
            // (embassy-time timers cannot fail to arm: anything else is a gone leaf)
            _ => AcquireError::Stale,
        }
    }
}
