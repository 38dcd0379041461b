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
/// [`Limiter::acquire_before`](crate::Limiter::acquire_before) granted nothing more, and why
/// [`Limiter::try_acquire`](crate::Limiter::try_acquire) granted nothing: the core's request
/// vocabulary ([`throttle_core::request`]), the same types the std adapters return. A wait
/// is a `core::time::Duration`; `AcquireError::Runtime` never happens here (embassy-time
/// timers cannot fail to arm).
pub use throttle_core::request::{AcquireError, TryAcquireError};
