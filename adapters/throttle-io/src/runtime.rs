//! What a runtime supplies: its clock and a resettable timer. Adapters implement [`Runtime`]
//! (tokio: `tokio::time::Sleep`; smol and async-std: [`AsyncIo`], feature `async-io`).

use core::task::{Context, Poll};

/// A runtime's clock and timers, given to [`Limiter::new`](crate::Limiter::new).
///
/// Implementations MUST return a monotonic clock from [`Runtime::now`], and timers from
/// [`Runtime::timer`] that fire on that same clock (a timer reset to `at` is ready once
/// `now() ≥ at`). `timer` is called lazily, from inside a task being polled (where a runtime's
/// context is available), at most once per [`Leaf`](crate::Leaf).
pub trait Runtime: Send + Sync + 'static {
    /// The current time on the runtime's clock (e.g. tokio's, which tests may pause).
    fn now(&self) -> std::time::Instant;
    /// A new timer. Its initial deadline does not matter: it is always [`Timer::reset`] before
    /// it is polled.
    fn timer(&self) -> Box<dyn Timer>;
}

/// A one-shot timer that can be re-armed.
///
/// Implementations MUST, after `reset(at)`, make `poll_expired` return `Ready` once the
/// runtime's clock reaches `at`, and otherwise return `Pending` and wake the given context's
/// waker when it does. `reset` to an earlier or later instant replaces the deadline.
pub trait Timer: Send + Sync {
    /// Arms the timer for `at`.
    fn reset(&mut self, at: std::time::Instant);
    /// `Ready` once the deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

#[cfg(feature = "async-io")]
pub use async_io_rt::AsyncIo;

#[cfg(feature = "async-io")]
mod async_io_rt {
    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll};

    use super::{Runtime, Timer};

    /// The std clock and async-io's timers: what smol and async-std run on (both drive
    /// async-io's reactor). Feature `async-io`.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct AsyncIo;

    impl Runtime for AsyncIo {
        fn now(&self) -> std::time::Instant {
            std::time::Instant::now()
        }
        fn timer(&self) -> Box<dyn Timer> {
            Box::new(IoTimer(async_io::Timer::never()))
        }
    }

    struct IoTimer(async_io::Timer);

    impl Timer for IoTimer {
        fn reset(&mut self, at: std::time::Instant) {
            self.0.set_at(at);
        }
        fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.0).poll(cx).map(|_| ())
        }
    }
}
