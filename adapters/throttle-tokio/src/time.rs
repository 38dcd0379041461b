//! tokio's clock, timer and spawn as a [`Runtime`]: `tokio::time::Instant` (so a paused test
//! clock works too), a `tokio::time::Sleep` re-armed in place (the limiter's driver task's, or
//! a waiting leaf's without a driver), and the driver spawned on the current runtime.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use throttle_io::{BoxTask, Runtime, Timer};
use tokio::time::{Instant, Sleep};

/// The tokio [`Runtime`]: give it to [`Limiter::new`](throttle_io::Limiter::new) (or use
/// [`limiter`](crate::limiter)). Timers need a runtime with time enabled (`#[tokio::main]`
/// and `#[tokio::test]` enable it; a `Builder` needs `enable_time()`), and are created from
/// inside tasks only. The first time a leaf has to wait, the limiter spawns its driver task
/// on the runtime that leaf's task runs on (see [`Runtime::spawn`]); it ends after the last
/// handle of the limiter is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn timer(&self) -> Box<dyn Timer> {
        Box::new(SleepTimer(Box::pin(tokio::time::sleep_until(
            Instant::now(),
        ))))
    }

    fn spawn(&self, task: BoxTask) -> bool {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                drop(handle.spawn(task));
                true
            }
            // Not inside a runtime (timers would not work either): holder mode.
            Err(_) => false,
        }
    }
}

struct SleepTimer(Pin<Box<Sleep>>);

impl Timer for SleepTimer {
    fn reset(&mut self, at: std::time::Instant) {
        let at = Instant::from_std(at);
        if self.0.deadline() != at {
            self.0.as_mut().reset(at);
        }
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
