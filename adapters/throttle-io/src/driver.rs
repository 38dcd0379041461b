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

use throttle_core::wait::{self, Handle};
use throttle_core::Instant;

use crate::limiter::{Inner, Limiter, SharedTree, DRIVER_IDLE, DRIVER_RUNNING, DRIVER_UNSUPPORTED};
use crate::runtime::{BoxTimer, RuntimeSleep};

/// The engine's view of the limiter (the driver's handle).
impl Handle for Limiter {
    type Storage = throttle_core::Growable;
    type Lock = throttle_core::StdLock<throttle_core::shared::State<throttle_core::Growable>>;
    fn shared(&self) -> &SharedTree {
        Limiter::shared(self)
    }
    fn now(&self) -> Instant {
        Limiter::now(self)
    }
}

/// The driver task's future.
pub(crate) struct Driver {
    limiter: Weak<Inner>,
    timer: Option<BoxTimer>,
    /// The runtime could not arm a timer: the task ended and must not be spawned again.
    failed: bool,
}

impl Driver {
    pub(crate) fn new(limiter: Weak<Inner>) -> Self {
        Driver {
            limiter,
            timer: None,
            failed: false,
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(inner) = this.limiter.upgrade() else {
            return Poll::Ready(());
        };
        // Before anything else: if `inner` is the last strong reference, dropping it at the
        // end of this poll wakes this task, which then ends.
        inner.set_driver_waker(cx.waker());
        let limiter = Limiter(inner);
        let mut sleep = RuntimeSleep {
            limiter: &limiter,
            timer: &mut this.timer,
        };
        match wait::poll_driver(&limiter, &mut sleep, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                // No timers on this runtime: the leaves keep the timer (holder mode) and get
                // the typed error themselves if they cannot arm one either.
                this.failed = true;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped unfinished (the runtime shut down, or refused to spawn it): the next leaf
        // that has to wait may spawn another one; meanwhile the leaves hold the timer.
        if let Some(inner) = self.limiter.upgrade() {
            // The timer goes back to the waiters (one is woken to take it) until then.
            inner.shared.release_driver();
            let next = if self.failed {
                DRIVER_UNSUPPORTED
            } else {
                DRIVER_IDLE
            };
            let _ = inner.driver.compare_exchange(
                DRIVER_RUNNING,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::AtomicUsize;
    use core::task::Waker;
    use core::time::Duration;

    use throttle_core::{Limits, Tier};

    use super::*;
    use crate::runtime::BoxTask;
    use crate::test_rt::{cx, Manual};
    use crate::{Leaf, Node};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn woken(c: &Count) -> bool {
        c.0.swap(0, Ordering::SeqCst) > 0
    }

    fn poll(task: &mut BoxTask, waker: &Waker) -> Poll<()> {
        task.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// 1000 tokens/s, burst 100, and two leaves under it; `a` spent the burst and, once the
    /// node held one whole token again (1 ms later), one piece of debt, and now waits (100 ms
    /// away).
    fn a_waits(rt: &Manual) -> (Node, Leaf, Leaf) {
        let limiter = rt.limiter();
        let node = limiter
            .node(Limits::new(Tier::per_second(1000).with_burst(100)), 1)
            .unwrap();
        let mut a = node.leaf(Limits::UNLIMITED, 1).unwrap();
        let b = node.leaf(Limits::UNLIMITED, 1).unwrap();
        for k in 0..2 {
            if k == 1 {
                rt.advance(Duration::from_millis(1));
            }
            let Poll::Ready(Ok(n)) = a.poll_acquire(&mut cx(), 100) else {
                panic!("burst, then one piece of debt")
            };
            a.settle(n);
        }
        assert!(a.poll_acquire(&mut cx(), 100).is_pending());
        (node, a, b)
    }

    #[test]
    fn driver_serves_others_when_a_waiter_stops_polling() {
        let rt = Manual::spawning();
        let (node, a, mut b) = a_waits(&rt);
        let mut tasks = rt.take_spawned();
        assert_eq!(tasks.len(), 1, "the first wait spawns the driver");
        let mut driver = tasks.pop().unwrap();
        let (dc, dw) = counter();
        assert!(poll(&mut driver, &dw).is_pending());
        assert!(node.limiter().has_driver());
        // `a` is never polled again nor cancelled (its future was dropped); `b` waits too.
        let (bc, bw) = counter();
        assert!(b
            .poll_acquire(&mut Context::from_waker(&bw), 100)
            .is_pending());
        assert!(rt.take_spawned().is_empty(), "one driver per limiter");
        let mut served = 0;
        for _ in 0..100 {
            rt.advance(Duration::from_millis(10));
            // the driver's timer fired (or the core woke it): it polls
            let _ = woken(&dc);
            assert!(poll(&mut driver, &dw).is_pending());
            if woken(&bc) {
                if let Poll::Ready(Ok(n)) = b.poll_acquire(&mut Context::from_waker(&bw), 100) {
                    b.settle(n);
                    served += n;
                    assert!(b
                        .poll_acquire(&mut Context::from_waker(&bw), 100)
                        .is_pending());
                }
            }
        }
        assert!(
            served >= 700,
            "b was served {served} in 1 s at 1000/s despite a dead waiter ahead of it"
        );
        drop(a);
    }

    #[test]
    fn without_spawn_holder_mode_and_asked_once() {
        let rt = Manual::new();
        let (node, _a, mut b) = a_waits(&rt);
        assert!(b.poll_acquire(&mut cx(), 100).is_pending());
        assert_eq!(rt.spawn_calls(), 1, "a refusal is not retried");
        assert!(!node.limiter().has_driver());
    }

    #[test]
    fn driver_ends_after_last_handle_dropped() {
        let rt = Manual::spawning();
        let (node, a, b) = a_waits(&rt);
        let mut driver = rt.take_spawned().pop().unwrap();
        let (dc, dw) = counter();
        assert!(poll(&mut driver, &dw).is_pending());
        let limiter = node.limiter().clone();
        drop((a, b, node));
        let _ = woken(&dc);
        assert!(poll(&mut driver, &dw).is_pending(), "a handle is left");
        drop(limiter);
        assert!(woken(&dc), "dropping the last handle wakes the driver");
        assert!(poll(&mut driver, &dw).is_ready(), "and it ends");
    }

    #[test]
    fn driver_dropped_unfinished_is_spawned_again() {
        let rt = Manual::spawning();
        let (node, _a, mut b) = a_waits(&rt);
        // the runtime shut down before the driver ran
        drop(rt.take_spawned());
        assert!(b.poll_acquire(&mut cx(), 100).is_pending());
        let mut tasks = rt.take_spawned();
        assert_eq!(tasks.len(), 1, "the next wait spawns a new driver");
        let (_dc, dw) = counter();
        assert!(poll(&mut tasks[0], &dw).is_pending());
        assert!(node.limiter().has_driver());
    }
}
