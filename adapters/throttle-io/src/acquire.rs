//! `async` requests for tokens on a leaf, for any unit of work (API requests, disk I/O), and
//! the non-waiting [`Leaf::try_acquire`]. When a request could complete is the core's answer
//! ([`Tree::earliest`](throttle_core::Tree::earliest)).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::error::{AcquireError, TryAcquireError};
use crate::leaf::Leaf;

/// Pieces one poll of [`Acquire`] collects at most before it yields to the executor (wakes
/// itself and returns `Pending`). On a path that grants every piece at once, `acquire(n)`
/// would otherwise loop `n / piece` times in one poll: a runtime's `timeout` around it could
/// not fire and its worker would run nothing else. 32 pieces are 32 lock round trips (a few
/// µs to tens of µs); the cost of yielding is one trip through the executor's queue.
const PIECES_PER_POLL: u32 = 32;

/// The future of [`Leaf::acquire`] and [`Leaf::acquire_before`]: resolves once `n` tokens were
/// granted to the leaf (and counted as used).
///
/// `n` larger than one piece (see the core's piece rule) is collected piece by piece, each
/// settled as soon as it is granted; the leaf holds at most one piece in flight. Even when
/// every piece is granted at once, one poll collects at most a few dozen pieces and then
/// yields to the executor, so timeouts and other tasks run while a huge `n` is counted.
///
/// **Cancel-safe**: dropping it (e.g. when the runtime's `timeout` fires) withdraws the
/// waiting piece and refunds it, so another leaf gets those tokens. Pieces already collected
/// for an `n` larger than one piece stay spent (the limit counted them, as work done); keep
/// `n` within the smallest burst on the path when a request must be all-or-nothing, or use
/// [`Leaf::try_acquire`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Acquire<'a> {
    leaf: &'a mut Leaf,
    left: u64,
    deadline: Option<std::time::Instant>,
    zero: bool,
}

impl<'a> Acquire<'a> {
    pub(crate) fn new(leaf: &'a mut Leaf, n: u64, deadline: Option<std::time::Instant>) -> Self {
        Acquire {
            leaf,
            left: n,
            deadline,
            zero: n == 0,
        }
    }

    /// Tokens still to be granted.
    pub fn remaining(&self) -> u64 {
        self.left
    }
}

impl Future for Acquire<'_> {
    type Output = Result<(), AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.zero {
            return Poll::Ready(Err(AcquireError::ZeroRequest));
        }
        if this.left == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(deadline) = this.deadline.take() {
            let epoch = this.leaf.node().limiter().0.epoch;
            let deadline = crate::time::to_core(epoch, deadline);
            if let Err(e) = this.leaf.engine().check_deadline(this.left, deadline) {
                return Poll::Ready(Err(e));
            }
        }
        for _ in 0..PIECES_PER_POLL {
            match this.leaf.poll_acquire(cx, this.left) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(n)) => {
                    let n = n.min(this.left);
                    this.leaf.settle(n);
                    this.left -= n;
                    if this.left == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
        // Nothing is held between pieces: yielding here leaves the tree as a wait would.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.leaf.cancel();
    }
}

impl Leaf {
    /// Takes `n` tokens now if the path has them, without waiting and without queueing:
    /// `Ok(())` means `n` tokens were granted and counted as used; an error means nothing was
    /// granted and nothing is held (a piece this leaf was waiting for is withdrawn first).
    ///
    /// - [`TryAcquireError::NotYet`]: some tier on the path holds fewer than `n` tokens now (or
    ///   fair sharing with busy siblings would split the request); `wait` says how long until
    ///   the tiers hold them, a lower bound when others compete.
    /// - [`TryAcquireError::InsufficientCapacity`]: `n` is more than the smallest burst on the
    ///   path (or the limiter's largest piece): it can never be granted at once. Waiting with
    ///   [`Leaf::acquire`] serves it in pieces.
    ///
    /// Unlike a grant through [`Leaf::acquire`], which starts a piece on one whole token and
    /// may then take a tier into debt by the rest of it (the core's conformance slack: for
    /// `n > 1`), `try_acquire` succeeds only when every tier on the path holds all `n` tokens.
    /// On an unlimited path it always succeeds. Cost: one lock of the tree
    /// ([`Shared::try_take`](throttle_core::Shared::try_take), which every adapter's `try_acquire` is).
    pub fn try_acquire(&mut self, n: u64) -> Result<(), TryAcquireError> {
        self.engine().try_acquire(n)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use throttle_core::{Config, Limits, Tier};

    use super::*;
    use crate::test_rt::{cx, Manual};
    use crate::Limiter;

    fn poll(f: &mut Acquire<'_>) -> Poll<Result<(), AcquireError>> {
        Pin::new(f).poll(&mut cx())
    }

    #[test]
    fn acquire_larger_than_piece_collects_pieces_over_time() {
        let rt = Manual::new();
        let limiter = Limiter::with_config(Config::DEFAULT.with_pieces(1, 1 << 16), rt.clone());
        // 10 per second, burst 10
        let mut leaf = limiter.leaf(Limits::per_second(10)).unwrap();
        let node = leaf.node().clone();
        let mut f = leaf.acquire(15);
        assert!(poll(&mut f).is_pending(), "10 of the burst, then waits");
        for _ in 0..10 {
            rt.advance(Duration::from_millis(100));
            let _ = poll(&mut f);
        }
        assert_eq!(poll(&mut f), Poll::Ready(Ok(())));
        drop(f);
        assert_eq!(node.stats().granted, 15);
    }

    #[test]
    fn acquire_dropped_mid_wait_keeps_collected_refunds_in_flight() {
        let rt = Manual::new();
        let limiter = Limiter::with_config(Config::DEFAULT.with_pieces(1, 1 << 16), rt.clone());
        let mut leaf = limiter.leaf(Limits::per_second(10)).unwrap();
        let node = leaf.node().clone();
        let mut f = leaf.acquire(15);
        assert!(poll(&mut f).is_pending());
        let collected = 15 - f.remaining();
        drop(f);
        let st = node.stats();
        assert_eq!((st.granted, st.waiting), (collected, 0));
    }

    #[test]
    fn acquire_before_unreachable_deadline_fails_without_reserving() {
        let rt = Manual::new();
        let limiter = Limiter::with_config(Config::DEFAULT.with_pieces(1, 1 << 16), rt.clone());
        let limits = Limits::per_second(10)
            .and(Tier::per_period(300, Duration::from_secs(60)).unwrap())
            .unwrap();
        let mut leaf = limiter.leaf(limits).unwrap();
        let now = limiter.now_std();
        // the burst of 10 is there: 10 more take ~1 s, so a 2 s deadline is fine...
        assert!(poll(&mut leaf.acquire_before(20, now + Duration::from_secs(2))).is_pending());
        // ...and 100 more cannot make 2 s at 10/s
        let r = poll(&mut leaf.acquire_before(100, now + Duration::from_secs(2)));
        let Poll::Ready(Err(AcquireError::Deadline { wait: Some(away) })) = r else {
            panic!("{r:?}")
        };
        assert!(
            away > Duration::from_secs(8) && away < Duration::from_secs(12),
            "{away:?}"
        );
        assert_eq!(leaf.node().stats().waiting, 0);
        // 1000 more: 99 s at 10/s, but 300/min (5/s once its stock of ~290 is gone) binds
        let r = poll(&mut leaf.acquire_before(1000, now + Duration::from_secs(30)));
        let Poll::Ready(Err(AcquireError::Deadline { wait: Some(away) })) = r else {
            panic!("{r:?}")
        };
        assert!(
            away > Duration::from_secs(130) && away < Duration::from_secs(150),
            "{away:?}"
        );
    }

    #[test]
    fn earliest_unlimited_is_now_and_paused_is_never() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        assert_eq!(leaf.earliest(u64::MAX), Some(limiter.now()));
        node.set_limit(Limits::per_second(0)).unwrap();
        assert_eq!(leaf.earliest(1), None);
    }
}
