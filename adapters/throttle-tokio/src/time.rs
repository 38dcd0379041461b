//! tokio's clock, timer and spawn as a [`Runtime`]: `tokio::time::Instant` (so a paused test
//! clock works too), a `tokio::time::Sleep` re-armed in place (the limiter's driver task's, or
//! a waiting leaf's without a driver) and re-made under a new runtime, and the driver spawned
//! on the current runtime. Outside a runtime, or on one without timers, arming fails with a
//! typed [`SleepError`] instead of tokio's panic.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use throttle_io::{BoxTask, BoxTimer, Runtime, SleepError, Timer};
use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

/// The tokio [`Runtime`]: give it to [`Limiter::new`](throttle_io::Limiter::new) (or use
/// [`limiter`](crate::limiter)). Timers need a runtime with time enabled (`#[tokio::main]`
/// and `#[tokio::test]` enable it; a `Builder` needs `enable_time()`): a wait that needs one
/// elsewhere fails with [`AcquireError::Runtime`](throttle_io::AcquireError::Runtime). A
/// limiter outlives runtimes: a leaf that waited under one runtime waits under the next. The first time a leaf has to wait, the limiter spawns its driver task
/// on the runtime that leaf's task runs on (see [`Runtime::spawn`]); it ends after the last
/// handle of the limiter is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn timer(&self) -> BoxTimer {
        BoxTimer::new(SleepTimer(Bound::Unarmed))
    }

    fn spawn(&self, task: BoxTask) -> bool {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(task)),
            // Not inside a runtime right now (a poll from outside): the task is dropped as if
            // its runtime had shut down, which lets the next wait inside a runtime spawn it.
            // (`false` would mean "this runtime never spawns": holder mode for good.)
            Err(_) => drop(task),
        }
        true
    }
}

/// A `tokio::time::Sleep` bound to the runtime it was made on. Made lazily and re-made when
/// armed under another runtime (the first one may be gone: polling its `Sleep` would panic
/// with "the runtime is being shut down").
struct SleepTimer(Bound);

enum Bound {
    Unarmed,
    Armed(Id, Pin<Box<Sleep>>),
    /// That runtime has no timers (asked once per runtime and timer).
    NoTimers(Id),
}

impl Timer for SleepTimer {
    fn reset(&mut self, at: std::time::Instant) {
        // (the trait's infallible form; a timer that cannot be armed never fires)
        let _ = self.try_reset(at);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Bound::Armed(_, sleep) => sleep.as_mut().poll(cx),
            Bound::Unarmed | Bound::NoTimers(_) => Poll::Pending,
        }
    }

    fn try_reset(&mut self, at: std::time::Instant) -> Result<(), SleepError> {
        let at = Instant::from_std(at);
        let Ok(handle) = Handle::try_current() else {
            return Err(SleepError::NoRuntime);
        };
        let id = handle.id();
        match &mut self.0 {
            Bound::Armed(made_on, sleep) if *made_on == id => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                return Ok(());
            }
            Bound::NoTimers(on) if *on == id => return Err(SleepError::TimersDisabled),
            _ => {}
        }
        match new_sleep(at) {
            Ok(sleep) => {
                self.0 = Bound::Armed(id, sleep);
                Ok(())
            }
            Err(e) => {
                self.0 = Bound::NoTimers(id);
                Err(e)
            }
        }
    }
}

/// A `Sleep` on the current runtime. tokio offers no way to ask whether a runtime has timers
/// other than trying: it panics (inside `sleep_until`, before anything is registered) when
/// the runtime was built without `enable_time`. That panic is caught and becomes
/// [`SleepError::TimersDisabled`] (the panic hook still prints it once per timer made; with
/// `panic = "abort"` the process aborts instead).
fn new_sleep(at: Instant) -> Result<Pin<Box<Sleep>>, SleepError> {
    std::panic::catch_unwind(|| Box::pin(tokio::time::sleep_until(at)))
        .map_err(|_| SleepError::TimersDisabled)
}
