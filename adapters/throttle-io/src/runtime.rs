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
/// the clock from any of them: one limit for a whole process is the point, also on a
/// thread-per-core runtime (glommio, monoio), where each core's tasks share the limiter. For
/// such a runtime this value is a zero-sized type that calls its thread-local clock and
/// timers; its [`Timer`]s need not be `Send` (see [`BoxTimer::local`]).
///
/// Implementations MUST return a monotonic clock from [`Runtime::now`], and timers from
/// [`Runtime::timer`] that fire on that same clock (a timer reset to `at` is ready once
/// `now() ≥ at`). `timer` is called lazily, from inside a task being polled (where a runtime's
/// context is available), about once per [`Leaf`](crate::Leaf) and once per driver task.
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
    /// A new timer for the task being polled. Its initial deadline does not matter: it is
    /// always [`Timer::reset`] before it is polled.
    fn timer(&self) -> BoxTimer;
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

/// A [`Timer`] as a [`Runtime`] hands it out: one that may move between threads with its
/// task ([`BoxTimer::new`], a work-stealing runtime's), or one that stays on the thread that
/// made it ([`BoxTimer::local`], a thread-per-core runtime's `!Send` timer).
pub struct BoxTimer(TimerKind);

enum TimerKind {
    Send(Box<dyn Timer + Send>),
    /// Reachable only from the thread that made it (`fragile::Fragile` checks the thread).
    /// `None` only while [`BoxTimer`] is dropped.
    Local(Option<fragile::Fragile<Box<dyn Timer>>>),
}

impl BoxTimer {
    /// A timer that may be used from any thread.
    pub fn new(timer: impl Timer + Send + 'static) -> Self {
        BoxTimer(TimerKind::Send(Box::new(timer)))
    }

    /// A `!Send` timer, usable only on the thread calling this (a thread-per-core runtime's,
    /// whose tasks never move). The [`Leaf`](crate::Leaf) or stream keeping it stays `Send`;
    /// should its task be polled on another thread after all, the limiter asks the runtime
    /// for a new timer there, and the old one is leaked, never touched off its thread.
    pub fn local(timer: impl Timer + 'static) -> Self {
        BoxTimer(TimerKind::Local(Some(fragile::Fragile::new(Box::new(
            timer,
        )))))
    }

    /// Runs `f` on the timer; `None` when it belongs to another thread.
    fn with<R>(&mut self, f: impl FnOnce(&mut dyn Timer) -> R) -> Option<R> {
        match &mut self.0 {
            TimerKind::Send(t) => Some(f(t.as_mut())),
            TimerKind::Local(t) => t.as_mut()?.try_get_mut().ok().map(|t| f(t.as_mut())),
        }
    }
}

/// The boxed timer itself. Off the thread a [`BoxTimer::local`] belongs to (which a
/// thread-per-core runtime never does), it cannot be armed: [`Timer::try_reset`] says
/// [`SleepError::NoRuntime`] and it never fires.
impl Timer for BoxTimer {
    fn reset(&mut self, at: std::time::Instant) {
        self.with(|t| t.reset(at));
    }
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.with(|t| t.poll_expired(cx)).unwrap_or(Poll::Pending)
    }
    fn try_reset(&mut self, at: std::time::Instant) -> Result<(), SleepError> {
        self.with(|t| t.try_reset(at))
            .unwrap_or(Err(SleepError::NoRuntime))
    }
}

impl Drop for BoxTimer {
    fn drop(&mut self) {
        if let TimerKind::Local(slot) = &mut self.0 {
            match slot.take() {
                Some(t) if !t.is_valid() => core::mem::forget(t),
                t => drop(t),
            }
        }
    }
}

impl core::fmt::Debug for BoxTimer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self.0 {
            TimerKind::Send(_) => "BoxTimer::Send",
            TimerKind::Local(_) => "BoxTimer::Local",
        })
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
pub trait Timer {
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
    pub(crate) timer: &'a mut Option<BoxTimer>,
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
        let runtime = self.limiter.runtime();
        let timer = self.timer.get_or_insert_with(|| runtime.timer());
        let mut arm = |t: &mut dyn Timer| t.try_reset(at).map(|()| t.poll_expired(cx));
        let polled = match timer.with(&mut arm) {
            Some(polled) => polled,
            // a thread-bound timer, and the task moved: a timer of this thread instead
            None => {
                *timer = runtime.timer();
                timer.with(arm).unwrap_or(Err(SleepError::NoRuntime))
            }
        };
        match polled {
            Ok(expired) => expired.map(Ok),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(feature = "async-io")]
pub use async_io_rt::AsyncIo;

#[cfg(feature = "async-io")]
mod async_io_rt {
    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll};

    use super::{BoxTimer, Runtime, Timer};

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
        fn timer(&self) -> BoxTimer {
            BoxTimer::new(IoTimer(async_io::Timer::never()))
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
