//! Waiting for tokens: the sharing layer's protocol with an embassy-time timer, behind a drop
//! guard that makes every wait cancel-safe.
//!
//! A [`Request`] lives on the stack of one `read`/`write` call. While it is *active* (waiting,
//! or holding a grant not yet settled) dropping it calls `Shared::cancel`: the reservation and
//! any unused grant go back to the tree and the timer role passes to another waiter.

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_time::Timer;
use throttle_core::{AcquireError, LeafId, Step};

use crate::limiter::Limiter;
use crate::time::{now, to_embassy};

/// How often one poll re-asks the tree after the timer fired at once (a deadline already in
/// the past) before yielding: bounds the work of one poll whatever the tree answers.
const MAX_SPINS: u32 = 4;

/// One direction's request in flight. See the module docs.
pub(crate) struct Request<'a, const N: usize, M: RawMutex> {
    limiter: &'a Limiter<N, M>,
    leaf: LeafId,
    active: bool,
}

impl<'a, const N: usize, M: RawMutex> Request<'a, N, M> {
    pub(crate) fn new(limiter: &'a Limiter<N, M>, leaf: LeafId) -> Self {
        Request {
            limiter,
            leaf,
            active: false,
        }
    }

    /// Waits until the tree grants `1..=want` tokens (`want ≥ 1`). Limit changes reach the
    /// wait: the waker is registered with the tree on every `Pending`, and a timer is armed
    /// only when this task holds the tree's timer (`Step::Sleep { until: Some(t) }`).
    pub(crate) async fn acquire(&mut self, want: u64) -> Result<u64, AcquireError> {
        self.active = true;
        let shared = self.limiter.shared();
        let leaf = self.leaf;
        let mut timer: Option<(embassy_time::Instant, Timer)> = None;
        poll_fn(|cx| {
            poll_grant(cx, &mut timer, |cx| {
                shared.poll_acquire(leaf, want, now(), cx.waker())
            })
        })
        .await
    }

    /// Reports `used` tokens of the grant as spent; the rest goes back. Deactivates the guard.
    pub(crate) fn settle(&mut self, used: u64) -> bool {
        self.active = false;
        self.limiter.shared().settle(self.leaf, used, now()).is_ok()
    }

    /// Pays for `amount` bytes already moved, grant by grant (pieces may be smaller).
    pub(crate) async fn pay(&mut self, amount: u64) -> Result<(), AcquireError> {
        let mut left = amount;
        while left > 0 {
            let n = self.acquire(left).await?.min(left);
            if !self.settle(n) {
                return Err(AcquireError::StaleHandle);
            }
            left -= n;
        }
        Ok(())
    }
}

impl<const N: usize, M: RawMutex> Drop for Request<'_, N, M> {
    fn drop(&mut self) {
        if self.active {
            // A stale leaf has nothing left to refund: the error says just that.
            let _ = self.limiter.shared().cancel(self.leaf, now());
        }
    }
}

/// One poll of the acquire loop: `ask` is `Shared::poll_acquire` at the current time.
fn poll_grant(
    cx: &mut Context<'_>,
    timer: &mut Option<(embassy_time::Instant, Timer)>,
    mut ask: impl FnMut(&mut Context<'_>) -> Result<Step, AcquireError>,
) -> Poll<Result<u64, AcquireError>> {
    for _ in 0..MAX_SPINS {
        match ask(cx) {
            Err(e) => return Poll::Ready(Err(e)),
            Ok(Step::Grant(n)) => return Poll::Ready(Ok(n)),
            Ok(Step::Sleep { until: None }) => {
                // Woken by the tree (a grant, a limit change, the timer role handed over).
                *timer = None;
                return Poll::Pending;
            }
            Ok(Step::Sleep { until: Some(t) }) => {
                let at = to_embassy(t);
                if !matches!(timer, Some((armed, _)) if *armed == at) {
                    *timer = Some((at, Timer::at(at)));
                }
                let fired = match timer.as_mut() {
                    Some((_, tm)) => Pin::new(tm).poll(cx).is_ready(),
                    None => true,
                };
                if !fired {
                    return Poll::Pending;
                }
                // Fired: poll the tree again, which runs its scheduler.
                *timer = None;
            }
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}
