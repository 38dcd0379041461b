//! What can go wrong in one Redis call, as a small `Copy` enum (the `redis::RedisError`
//! behind it is summarised, not kept: the data path only needs to know what to do next).

use core::fmt;

/// Why a call to Redis failed. Every variant leaves the server state unchanged or changed
/// only as a retry would (scripts are atomic and idempotent by sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallError {
    /// No answer within the response (or connect) timeout.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// A key of the limit holds another type (e.g. someone `SET` it): nothing was written.
    WrongType,
    /// Redis refused the call (read-only replica, `LOADING`, `BUSY`, out of memory, …).
    Server,
    /// The reply had an unexpected shape (not this crate's script).
    Reply,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::Timeout => "redis did not answer in time",
            CallError::Connection => "could not reach redis",
            CallError::WrongType => "a key of the limit holds another type",
            CallError::Server => "redis refused the call",
            CallError::Reply => "redis answered with an unexpected reply",
        })
    }
}

impl core::error::Error for CallError {}

impl From<redis::RedisError> for CallError {
    fn from(e: redis::RedisError) -> Self {
        if e.code() == Some("THROTTLE_WRONGTYPE") {
            CallError::WrongType
        } else if e.is_timeout() {
            CallError::Timeout
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            CallError::Connection
        } else if e.code().is_some() {
            CallError::Server
        } else {
            CallError::Reply
        }
    }
}

impl CallError {
    /// Whether the connection should be dropped and made anew (and a Sentinel-managed
    /// primary looked up again) before the next call: everything but a wrong type or an
    /// odd reply, e.g. `READONLY` from a primary demoted by a failover.
    pub(crate) fn reconnect(self) -> bool {
        matches!(
            self,
            CallError::Timeout | CallError::Connection | CallError::Server
        )
    }
}

/// Why waiting for a permit failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PermitError {
    /// The call to Redis failed.
    Call(CallError),
    /// The permit's window had passed when the waiter woke up (a late timer, a suspended
    /// process): it is forfeited, using it would break `min_interval`.
    Expired,
}

impl fmt::Display for PermitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermitError::Call(e) => write!(f, "permit: {e}"),
            PermitError::Expired => f.write_str("the permit expired before it could be used"),
        }
    }
}

impl core::error::Error for PermitError {}

impl From<CallError> for PermitError {
    fn from(e: CallError) -> Self {
        PermitError::Call(e)
    }
}

/// A random number for jitter, nonces and member ids, without a dependency: std's
/// `RandomState` is randomly keyed per process.
#[cfg_attr(not(any(feature = "tokio", feature = "smol")), allow(dead_code))]
pub(crate) fn random() -> u64 {
    use core::hash::{BuildHasher, Hasher};
    use core::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}
