//! The driver task: one per [`Limiter`](crate::Limiter), on runtimes that can spawn. It holds
//! the tree's timer for good ([`Shared::poll_driver`](throttle_core::Shared::poll_driver)), so
//! no leaf ever has to, and a leaf whose task stops polling strands only its own piece.
//!
//! ```text
//!   first leaf told Sleep ──▶ Limiter::ensure_driver ──▶ Runtime::spawn(Driver)  (once)
//!   Driver::poll: upgrade Weak<Inner> ── gone ──▶ Ready (the task ends)
//!                 store waker in Inner (Inner's Drop wakes it: the last handle gone)
//!                 at = poll_driver(now, waker)   (wakes the leaves the tree served)
//!                 arm the runtime timer for `at` (None: sleep until woken) ─▶ Pending
//!   woken by: its timer, the core (the next deadline moved earlier), Inner's Drop
//! ```
//!
//! It holds only a `Weak` to the limiter: the tree and the runtime go away with the last
//! handle, and the task ends at its next poll, which that drop triggers.

extern crate alloc;

use alloc::sync::Weak;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};

use crate::limiter::{Inner, DRIVER_IDLE, DRIVER_RUNNING};
use crate::runtime::Timer;
use crate::time;

/// How many times one poll re-runs the tree when the timer it just armed is already due
/// (clock granularity); after that it yields to the executor instead of spinning.
const MAX_SPINS: u32 = 4;

/// The driver task's future.
pub(crate) struct Driver {
    limiter: Weak<Inner>,
    timer: Option<Box<dyn Timer>>,
}

impl Driver {
    pub(crate) fn new(limiter: Weak<Inner>) -> Self {
        Driver {
            limiter,
            timer: None,
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..MAX_SPINS {
            let Some(inner) = this.limiter.upgrade() else {
                return Poll::Ready(());
            };
            // Before anything else: if `inner` is the last strong reference, dropping it at
            // the end of this iteration wakes this task, which then ends.
            inner.set_driver_waker(cx.waker());
            let now = time::to_core(inner.epoch, inner.runtime.now());
            let Some(at) = inner
                .shared
                .poll_driver(now, cx.waker())
                .and_then(|t| time::to_std(inner.epoch, t))
            else {
                // Nothing is due by itself: the core wakes this task when a deadline appears.
                return Poll::Pending;
            };
            let timer = this.timer.get_or_insert_with(|| inner.runtime.timer());
            timer.reset(at);
            if timer.poll_expired(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // The timer keeps being due at once (a coarse clock): let the executor run others.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped unfinished (the runtime shut down, or refused to spawn it): the next leaf
        // that has to wait may spawn another one.
        if let Some(inner) = self.limiter.upgrade() {
            let _ = inner.driver.compare_exchange(
                DRIVER_RUNNING,
                DRIVER_IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}
