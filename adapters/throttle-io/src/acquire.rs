//! `async` requests for tokens on a leaf, for any unit of work (API requests, disk I/O),
//! and the estimate behind the deadline-aware form.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use throttle_core::Instant;

use crate::error::AcquireError;
use crate::leaf::Leaf;
use crate::limiter::Node;

/// The future of [`Leaf::acquire`] and [`Leaf::acquire_before`]: resolves once `n` tokens were
/// granted to the leaf (and counted as used).
///
/// `n` larger than one piece (see the core's piece rule) is collected piece by piece, each
/// settled as soon as it is granted; the leaf holds at most one piece in flight.
///
/// **Cancel-safe**: dropping it (e.g. when the runtime's `timeout` fires) withdraws the
/// waiting piece and refunds it, so another leaf gets those tokens. Pieces already collected
/// for an `n` larger than one piece stay spent (the limit counted them, as work done); keep
/// `n` within the smallest burst on the path when a request must be all-or-nothing.
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
            if !this.leaf.is_unlimited() {
                let node = this.leaf.node();
                let limiter = node.limiter();
                let earliest = estimate(node, this.left);
                let std = earliest.and_then(|t| limiter.to_std(t));
                if std.is_none_or(|t| t > deadline) {
                    return Poll::Ready(Err(AcquireError::Deadline { earliest: std }));
                }
            }
        }
        loop {
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
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.leaf.cancel();
    }
}

/// The earliest instant at which every tier on `node`'s path can have let `n` tokens through,
/// from the buckets' levels now. The last piece may go out while a tier is at zero (the core
/// lets a node go into debt by one piece), so only `n − last piece` has to be earned.
/// `None`: a tier on the path is paused.
pub(crate) fn estimate(node: &Node, n: u64) -> Option<Instant> {
    let limiter = node.limiter();
    let now = limiter.now();
    limiter.shared().with(|s| {
        let tree = s.tree();
        let config = tree.config();
        let tree_now = tree.now().max(now);
        let since = tree_now.as_nanos().saturating_sub(tree.now().as_nanos());
        // the path, bottom-up
        let mut path = Vec::new();
        let mut id = Some(node.id());
        while let Some(x) = id {
            path.push(x);
            id = tree.parent(x).ok().flatten();
        }
        let mut burst_min = u64::MAX;
        for &x in &path {
            if let Ok(l) = tree.limits(x) {
                for t in l.tiers() {
                    burst_min = burst_min.min(t.burst());
                }
            }
        }
        let piece = burst_min
            .clamp(config.min_piece(), config.max_piece())
            .min(n);
        let need_total = i128::from(n - piece);
        let mut wait_ns: u128 = 0;
        for &x in &path {
            let Ok(limits) = tree.limits(x) else { continue };
            for (i, t) in limits.tiers().iter().enumerate() {
                if t.is_paused() {
                    return None;
                }
                // at most 2^55 ns (MAX_PERIOD)
                let period = t.period().as_nanos();
                let amount = u128::from(t.amount());
                // level at the tree's clock, then refilled up to our `now`, capped at the burst
                let level = tree.tokens(x, i).unwrap_or(0);
                let earned = (u128::from(since) * amount / period).min(u128::from(u64::MAX));
                let avail = (level + earned as i128).min(i128::from(t.burst()));
                let need = need_total - avail;
                if need > 0 {
                    // ceil(need × period / amount); need < 2^65, period ≤ 2^55: fits u128
                    let ns = (need as u128 * period).div_ceil(amount);
                    wait_ns = wait_ns.max(ns);
                }
            }
        }
        let wait = u64::try_from(wait_ns).unwrap_or(u64::MAX);
        Some(tree_now.saturating_add_nanos(wait))
    })
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
        let Poll::Ready(Err(AcquireError::Deadline { earliest: Some(e) })) = r else {
            panic!("{r:?}")
        };
        let away = e.saturating_duration_since(now);
        assert!(
            away > Duration::from_secs(8) && away < Duration::from_secs(12),
            "{away:?}"
        );
        assert_eq!(leaf.node().stats().waiting, 0);
        // 1000 more: 99 s at 10/s, but 300/min (5/s once its stock of ~290 is gone) binds
        let r = poll(&mut leaf.acquire_before(1000, now + Duration::from_secs(30)));
        let Poll::Ready(Err(AcquireError::Deadline { earliest: Some(e) })) = r else {
            panic!("{r:?}")
        };
        let away = e.saturating_duration_since(now);
        assert!(
            away > Duration::from_secs(130) && away < Duration::from_secs(150),
            "{away:?}"
        );
    }

    #[test]
    fn estimate_unlimited_is_now_and_paused_is_never() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        assert_eq!(leaf.earliest(u64::MAX), Some(limiter.now()));
        node.set_limit(Limits::per_second(0)).unwrap();
        assert_eq!(leaf.earliest(1), None);
    }
}
