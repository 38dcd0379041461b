//! The poll engine: one leaf, used by one task, turning the core's [`Step`]s into `Poll`s.
//!
//! ```text
//!            poll_acquire(want)                       settle(used)
//!   Idle ─────────────────────────▶ Holding(n) ───────────────────────▶ Idle
//!    │  └─ Sleep ─▶ Waiting ─(woken / timer)─▶ poll_acquire again ...
//!    └─ path unlimited ─▶ Bypass(want) ─ settle ─▶ Idle   (the tree is skipped)
//!   Drop / cancel in Waiting or Holding: the core refunds every level it reached.
//! ```
//!
//! [`Leaf::poll_io`] is the whole stream protocol in one place: get a grant, run the I/O with a
//! buffer shortened to it, settle what the I/O used — 0 when the inner stream was not ready,
//! so an idle connection holds no tokens.

use core::task::{Context, Poll};
use std::io;

use throttle_core::{Instant, LeafId, Step};

use crate::error::AcquireError;
use crate::limiter::Node;
use crate::runtime::Timer;

/// How many times one poll re-asks when the timer it just armed is already due (clock
/// granularity); after that it yields to the executor instead of spinning.
const MAX_SPINS: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing in the tree.
    Idle,
    /// A piece waits in the tree (or was granted and not yet collected).
    Waiting,
    /// The tree granted `n`; not settled yet.
    Holding(u64),
    /// The path is unlimited: `n` allowed without the tree; not settled yet.
    Bypass(u64),
}

/// A leaf of the tree, owned by one task: the waiting side of a stream direction or of a
/// request limiter. Not `Clone`: the core keeps one waker per leaf, so two tasks must not wait
/// on the same leaf (give each task its own leaf under a shared node instead). Dropping it
/// cancels what it holds and, with the last handle, removes it from the tree.
///
/// Cost per poll: one atomic load to check whether the path is unlimited (then nothing else),
/// otherwise one lock of the tree for the request and one for the settle.
pub struct Leaf {
    node: Node,
    id: LeafId,
    state: State,
    timer: Option<Box<dyn Timer>>,
    /// `(limits epoch, path unlimited)` when last checked.
    unlimited: Option<(u64, bool)>,
}

impl core::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Leaf")
            .field("node", &self.node)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Leaf {
    pub(crate) fn new(node: Node, id: LeafId) -> Self {
        Leaf {
            node,
            id,
            state: State::Idle,
            timer: None,
            unlimited: None,
        }
    }

    pub(crate) fn id(&self) -> LeafId {
        self.id
    }

    /// The control handle (limits, weight, statistics). Holding a clone keeps the leaf in the
    /// tree after this `Leaf` is dropped.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// True when no node on the path to the root has a limit: the tree is skipped. Re-checked
    /// (one lock) only after a limit change made through this crate.
    pub fn is_unlimited(&mut self) -> bool {
        let epoch = self.node.limiter().limits_epoch();
        match self.unlimited {
            Some((e, u)) if e == epoch => u,
            _ => {
                let u = self.node.path_unlimited();
                self.unlimited = Some((epoch, u));
                u
            }
        }
    }

    /// Asks for up to `want` tokens. `Ready(Ok(n))`, `1 ≤ n ≤ want`: use up to `n`, then call
    /// [`Leaf::settle`] with what was used (asking again first returns the same grant).
    /// `Pending`: the task is woken when the tree grants it or its timer is due. Dropping or
    /// [`cancel`](Leaf::cancel)ling afterwards refunds whatever was reserved.
    pub fn poll_acquire(
        &mut self,
        cx: &mut Context<'_>,
        want: u64,
    ) -> Poll<Result<u64, AcquireError>> {
        match self.state {
            State::Holding(n) | State::Bypass(n) => return Poll::Ready(Ok(n)),
            State::Idle | State::Waiting => {}
        }
        if want == 0 {
            return Poll::Ready(Err(AcquireError::ZeroRequest));
        }
        if self.is_unlimited() {
            // A piece that waited for a limit since removed goes back first.
            self.cancel();
            self.state = State::Bypass(want);
            return Poll::Ready(Ok(want));
        }
        let limiter = self.node.limiter();
        for _ in 0..MAX_SPINS {
            let now = limiter.now();
            let step = match limiter
                .shared()
                .poll_acquire(self.id, want, now, cx.waker())
            {
                Ok(step) => step,
                Err(e) => {
                    self.state = State::Idle;
                    return Poll::Ready(Err(e.into()));
                }
            };
            let until = match step {
                Step::Grant(n) => {
                    self.state = State::Holding(n);
                    return Poll::Ready(Ok(n));
                }
                Step::Sleep { until } => until,
            };
            self.state = State::Waiting;
            // From inside a task: the first sleep spawns the limiter's driver task, which
            // then holds the tree's timer (where the runtime can spawn).
            limiter.ensure_driver();
            // `None`: woken by whoever changes something for this leaf (with a driver, always).
            // `Some`: holder mode, this task holds the tree's timer (`Instant::MAX`, "never",
            // needs none either). Also until a just-spawned driver first runs and takes over.
            let Some(at) = until.and_then(|t| limiter.to_std(t)) else {
                return Poll::Pending;
            };
            let timer = self.timer.get_or_insert_with(|| limiter.runtime().timer());
            timer.reset(at);
            if timer.poll_expired(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // The timer keeps being due at once (a coarse clock): let the executor run others.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reports that `used` of the current grant was used; the rest goes back to every level.
    /// Without a grant, does nothing.
    pub fn settle(&mut self, used: u64) {
        match self.state {
            State::Holding(n) => {
                let limiter = self.node.limiter();
                // Only a stale leaf can fail here, and it holds nothing then.
                let _ = limiter.shared().settle(self.id, used.min(n), limiter.now());
            }
            State::Bypass(n) => self.node.add_bypassed(used.min(n)),
            State::Idle | State::Waiting => return,
        }
        self.state = State::Idle;
    }

    /// Withdraws a waiting piece and refunds an unsettled grant. Idempotent; `Drop` calls it.
    pub fn cancel(&mut self) {
        match self.state {
            State::Waiting | State::Holding(_) => {
                let limiter = self.node.limiter();
                let _ = limiter.shared().cancel(self.id, limiter.now());
            }
            State::Idle | State::Bypass(_) => {}
        }
        self.state = State::Idle;
    }

    /// One throttled I/O operation: waits for a grant of up to `want` tokens, runs `io` with
    /// the granted size `n` (`1 ≤ n ≤ want`: shorten the buffer to it), and settles what `io`
    /// reports transferred — nothing if it is not ready or fails, so the tokens go back to the
    /// others. `want == 0` calls `io(cx, 0)` directly.
    pub fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        io: impl FnOnce(&mut Context<'_>, usize) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if want == 0 {
            return io(cx, 0);
        }
        let n = match self.poll_acquire(cx, want as u64) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(n)) => usize::try_from(n).unwrap_or(want).min(want),
        };
        let r = io(cx, n);
        let used = match &r {
            Poll::Ready(Ok(k)) => *k as u64,
            _ => 0,
        };
        self.settle(used);
        r
    }

    /// An `async` request for `n` tokens (see [`Acquire`](crate::Acquire)).
    pub fn acquire(&mut self, n: u64) -> crate::Acquire<'_> {
        crate::Acquire::new(self, n, None)
    }

    /// Like [`Leaf::acquire`], but fails at once with [`AcquireError::Deadline`] (carrying how
    /// long after the call the request could complete at the earliest) when the limits cannot
    /// allow `n` tokens by `deadline`, instead of sleeping first. Checked once, before anything
    /// is reserved. A request the path can grant right away is never refused, even with a
    /// deadline of `Instant::now()` or one already past. To take tokens only if they are
    /// there now, without a future, use [`Leaf::try_acquire`].
    pub fn acquire_before(&mut self, n: u64, deadline: std::time::Instant) -> crate::Acquire<'_> {
        crate::Acquire::new(self, n, Some(deadline))
    }

    /// Estimated earliest instant at which `n` tokens can have been granted to this leaf
    /// (`None`: never, a limit on the path is paused). Exact for a lone leaf, a lower bound
    /// when others compete.
    pub fn earliest(&self, n: u64) -> Option<Instant> {
        crate::acquire::estimate(&self.node, n)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use throttle_core::{Limits, Tier};

    use super::*;
    use crate::test_rt::{cx, Manual};

    fn ready(p: Poll<Result<u64, AcquireError>>) -> u64 {
        match p {
            Poll::Ready(Ok(n)) => n,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    /// A node of 1000 tokens/s with a burst of 100, and a leaf under it that spent the burst
    /// and one piece of debt: the next request waits 100 ms.
    fn exhausted(rt: &Manual) -> (crate::Node, Leaf) {
        let limiter = rt.limiter();
        let node = limiter
            .node(Limits::new(Tier::per_second(1000).with_burst(100)), 1)
            .unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        for _ in 0..2 {
            let n = ready(leaf.poll_acquire(&mut cx(), 100));
            leaf.settle(n);
        }
        (node, leaf)
    }

    #[test]
    fn waiting_leaf_timer_due_then_granted() {
        let rt = Manual::new();
        let (node, mut leaf) = exhausted(&rt);
        assert!(leaf.poll_acquire(&mut cx(), 100).is_pending());
        assert_eq!(leaf.state, State::Waiting);
        assert!(leaf.timer.is_some(), "alone, it holds the tree's timer");
        assert_eq!(node.stats().waiting, 1);
        rt.advance(Duration::from_millis(50));
        assert!(leaf.poll_acquire(&mut cx(), 100).is_pending());
        rt.advance(Duration::from_millis(60));
        let n = ready(leaf.poll_acquire(&mut cx(), 100));
        leaf.settle(n);
        assert_eq!(node.stats().granted, 200 + n);
    }

    #[test]
    fn waiting_leaf_dropped_withdraws_and_leaves_tree() {
        let rt = Manual::new();
        let (node, mut leaf) = exhausted(&rt);
        assert!(leaf.poll_acquire(&mut cx(), 100).is_pending());
        let limiter = node.limiter().clone();
        assert_eq!(limiter.len(), 2);
        drop(leaf);
        assert_eq!(limiter.len(), 1);
        assert_eq!(node.stats().waiting, 0);
        assert_eq!(node.stats().granted, 200);
    }

    #[test]
    fn io_not_ready_refunds_grant() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let node = limiter.node(Limits::per_second(1000), 1).unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        let mut offered = 0;
        let r = leaf.poll_io(&mut cx(), 500, |_, n| {
            offered = n;
            Poll::Pending
        });
        assert!(r.is_pending());
        assert!(offered > 0);
        assert_eq!(leaf.state, State::Idle);
        assert_eq!(
            node.stats().granted,
            0,
            "nothing is held while the stream is idle"
        );
    }

    #[test]
    fn io_larger_than_grant_is_shortened() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let node = limiter
            .node(Limits::new(Tier::per_second(1000).with_burst(100)), 1)
            .unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        let r = leaf.poll_io(&mut cx(), 1 << 20, |_, n| Poll::Ready(Ok(n)));
        let Poll::Ready(Ok(n)) = r else {
            panic!("{r:?}")
        };
        assert!((1..1 << 20).contains(&n), "{n}");
        assert_eq!(node.stats().granted, n as u64);
        // an I/O error settles nothing
        rt.advance(Duration::from_secs(1));
        let r = leaf.poll_io(&mut cx(), 10, |_, _| {
            Poll::Ready(Err(io::Error::other("boom")))
        });
        assert!(matches!(r, Poll::Ready(Err(_))));
        assert_eq!(node.stats().granted, n as u64);
    }

    #[test]
    fn waiting_leaf_limit_removed_switches_to_bypass() {
        let rt = Manual::new();
        let (node, mut leaf) = exhausted(&rt);
        assert!(leaf.poll_acquire(&mut cx(), 100).is_pending());
        node.set_limit(Limits::UNLIMITED).unwrap();
        assert_eq!(ready(leaf.poll_acquire(&mut cx(), 5000)), 5000);
        assert_eq!(node.stats().waiting, 0);
        leaf.settle(4000);
        // (the tree granted the waiting piece when the limit went; it was refunded at once)
        assert_eq!(node.stats().granted, 200 + 4000);
        assert_eq!(node.limiter().shared().sleeping(), 0);
    }

    #[test]
    fn zero_request_is_typed_error_and_empty_io_passes_through() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let mut leaf = limiter.leaf(Limits::per_second(1)).unwrap();
        assert_eq!(
            leaf.poll_acquire(&mut cx(), 0),
            Poll::Ready(Err(AcquireError::ZeroRequest))
        );
        let r = leaf.poll_io(&mut cx(), 0, |_, n| Poll::Ready(Ok(n)));
        assert!(matches!(r, Poll::Ready(Ok(0))));
    }
}
