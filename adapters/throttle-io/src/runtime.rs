//! What a runtime supplies: its clock, a resettable timer and, where it can, a way to spawn
//! the limiter's driver task. Adapters implement [`Runtime`] (tokio: `tokio::time::Sleep` and
//! `tokio::spawn`; smol and async-std: [`AsyncIo`]'s timers, feature `async-io`, plus their
//! own spawn).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use throttle_core::wait::{Sleep, SleepError};
use throttle_core::Instant;

use crate::Limiter;

/// A detached background task, as given to [`Runtime::spawn`].
pub type BoxTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A runtime's clock and timers, given to [`Limiter::new`](crate::Limiter::new).
///
/// `Send + Sync` because a [`Limiter`](crate::Limiter) is shared between threads and reads
/// the clock from any of them; for a thread-per-core runtime that is a zero-sized type
/// calling its thread-local clock. Its [`Timer`]s need only be `Send` (a leaf moves with its
/// task between workers; nothing shares a timer).
///
/// Implementations MUST return a monotonic clock from [`Runtime::now`], and timers from
/// [`Runtime::timer`] that fire on that same clock (a timer reset to `at` is ready once
/// `now() ≥ at`). `timer` is called lazily, from inside a task being polled (where a runtime's
/// context is available), at most once per [`Leaf`](crate::Leaf) and once per driver task.
///
/// **Driver task.** A runtime that can [`spawn`](Runtime::spawn) gets one driver task per
/// [`Limiter`](crate::Limiter), spawned the first time a leaf has to wait: it alone sleeps on
/// the tree's timer and wakes the leaves the tree serves, so a waiting read or write whose
/// future is dropped without the stream hearing of it (`select!`, a timeout around
/// `write_all`) strands only its own piece. A runtime that cannot spawn keeps the core's
/// holder mode: one sleeping leaf at a time arms its own timer for the whole tree, and such a
/// dropped future can leave the other waiters asleep until that stream is polled again,
/// cancelled ([`Throttled::cancel`](crate::Throttled::cancel)) or dropped.
pub trait Runtime: Send + Sync + 'static {
    /// The current time on the runtime's clock (e.g. tokio's, which tests may pause).
    fn now(&self) -> std::time::Instant;
    /// A new timer. Its initial deadline does not matter: it is always [`Timer::reset`] before
    /// it is polled.
    fn timer(&self) -> Box<dyn Timer>;
    /// Runs `task` in the background, detached (nobody awaits it); called at most once per
    /// limiter at a time, from inside a task being polled. Returns `false` when this runtime
    /// cannot spawn (`task` is dropped): the limiter then stays in holder mode and does not
    /// ask again. The default cannot spawn.
    ///
    /// The task holds only a weak reference to the limiter and ends soon after the last
    /// handle of it is dropped. If the runtime drops the task unfinished (shutdown), the next
    /// leaf that has to wait spawns a new one.
    fn spawn(&self, task: BoxTask) -> bool {
        drop(task);
        false
    }
}

/// A one-shot timer that can be re-armed.
///
/// Implementations MUST, after `reset(at)`, make `poll_expired` return `Ready` once the
/// runtime's clock reaches `at`, and otherwise return `Pending` and wake the given context's
/// waker when it does. `reset` to an earlier or later instant replaces the deadline.
///
/// The limiter arms timers through [`Timer::try_reset`], which a runtime overrides when it
/// can tell that a timer cannot work here (polled outside the runtime, timers disabled, a
/// timer made by an earlier runtime that is gone): the wait then fails with a typed
/// [`AcquireError::Runtime`](crate::AcquireError::Runtime) instead of panicking.
pub trait Timer: Send {
    /// Arms the timer for `at`.
    fn reset(&mut self, at: std::time::Instant);
    /// `Ready` once the deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Arms the timer for `at`, or says why it cannot be armed from here. The default
    /// always can ([`Timer::reset`]).
    fn try_reset(&mut self, at: std::time::Instant) -> Result<(), SleepError> {
        self.reset(at);
        Ok(())
    }
}

/// The engine's [`Sleep`] on a runtime [`Timer`], made lazily (from inside a task) on first
/// use and kept for the next waits.
pub(crate) struct RuntimeSleep<'a> {
    pub(crate) limiter: &'a Limiter,
    pub(crate) timer: &'a mut Option<Box<dyn Timer>>,
}

impl Sleep for RuntimeSleep<'_> {
    fn poll_until(
        &mut self,
        at: Instant,
        _now: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SleepError>> {
        // past the end of the platform's clock: never due
        let Some(at) = self.limiter.to_std(at) else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| self.limiter.runtime().timer());
        if let Err(e) = timer.try_reset(at) {
            return Poll::Ready(Err(e));
        }
        timer.poll_expired(cx).map(Ok)
    }
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
    /// async-io's reactor). Feature `async-io`. It cannot [`spawn`](Runtime::spawn) (async-io
    /// has no executor), so a limiter on it stays in holder mode: use `throttle_smol::Smol` or
    /// `throttle_async_std::AsyncStd`, which add their executor's spawn.
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
