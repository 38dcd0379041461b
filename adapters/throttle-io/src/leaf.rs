//! A leaf of the tree for one task: the core's waiting engine
//! ([`throttle_core::wait::Engine`]) with this limiter's clock, the runtime's timer and the
//! driver task. The loop, settle, cancel-on-drop, the unlimited fast path and the I/O
//! accounting rule are the engine's; this file only connects them.

use core::task::{Context, Poll};
use std::io;

use throttle_core::wait::{Engine, Handle};
use throttle_core::{Instant, LeafId};

use crate::error::AcquireError;
use crate::limiter::{Limiter, Node, SharedTree};
use crate::runtime::{BoxTimer, RuntimeSleep};

/// The engine's view of a node: the limiter's tree and clock, and the node's counters of
/// bytes that went through while its path was unlimited.
impl Handle for Node {
    type Storage = throttle_core::Growable;
    type Lock = throttle_core::StdLock<throttle_core::shared::State<throttle_core::Growable>>;
    fn shared(&self) -> &SharedTree {
        self.limiter().shared()
    }
    fn now(&self) -> Instant {
        self.limiter().now()
    }
    fn bypassed(&self, _leaf: LeafId, n: u64) {
        self.add_bypassed(n);
    }
}

/// A leaf of the tree, owned by one task: the waiting side of a stream direction or of a
/// request limiter. Not `Clone`: the core keeps one waker per leaf, so two tasks must not wait
/// on the same leaf (give each task its own leaf under a shared node instead). Dropping it
/// cancels what it holds and, with the last handle, removes it from the tree.
///
/// Cost per poll: one atomic load to check whether the path is unlimited (then nothing else),
/// otherwise one lock of the tree for the request and one for the settle.
pub struct Leaf {
    engine: Engine<Node>,
    limiter: Limiter,
    /// The runtime's timer, made on the first wait that holds the tree's timer.
    timer: Option<BoxTimer>,
}

impl core::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Leaf")
            .field("node", self.engine.handle())
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Leaf {
    pub(crate) fn new(node: Node, id: LeafId) -> Self {
        let limiter = node.limiter().clone();
        Leaf {
            engine: Engine::new(node, id),
            limiter,
            timer: None,
        }
    }

    pub(crate) fn id(&self) -> LeafId {
        self.engine.leaf()
    }

    pub(crate) fn engine(&mut self) -> &mut Engine<Node> {
        &mut self.engine
    }

    /// The control handle (limits, weight, statistics). Holding a clone keeps the leaf in the
    /// tree after this `Leaf` is dropped.
    pub fn node(&self) -> &Node {
        self.engine.handle()
    }

    /// True when no node on the path to the root has a limit: the tree is skipped. Re-checked
    /// (one lock) only after a change in the tree, whoever made it.
    pub fn is_unlimited(&mut self) -> bool {
        self.engine.is_unlimited()
    }

    /// Asks for up to `want` tokens. `Ready(Ok(n))`, `1 ≤ n ≤ want`: use up to `n`, then call
    /// [`Leaf::settle`] with what was used (asking again first returns the same grant).
    /// `Pending`: the task is woken when the tree grants it or its timer is due. Dropping or
    /// [`cancel`](Leaf::cancel)ling afterwards refunds whatever was reserved.
    /// [`AcquireError::Runtime`] when this task must hold the tree's timer and the runtime
    /// cannot arm one here (outside the runtime, timers disabled).
    pub fn poll_acquire(
        &mut self,
        cx: &mut Context<'_>,
        want: u64,
    ) -> Poll<Result<u64, AcquireError>> {
        let mut sleep = RuntimeSleep {
            limiter: &self.limiter,
            timer: &mut self.timer,
        };
        let r = self.engine.poll_acquire(cx, &mut sleep, want);
        self.after_poll(r.is_pending());
        r.map_err(AcquireError::from)
    }

    /// After a poll that left the task waiting: from inside a task, the first sleep spawns
    /// the limiter's driver task, which then holds the tree's timer (where the runtime can
    /// spawn).
    fn after_poll(&self, pending: bool) {
        if pending && self.engine.is_waiting() {
            self.limiter.ensure_driver();
        }
    }

    /// Reports that `used` of the current grant was used; the rest goes back to every level.
    /// Without a grant, does nothing.
    pub fn settle(&mut self, used: u64) {
        // Only a stale leaf fails here, and it holds nothing then: its next request says so.
        let _ = self.engine.settle(used);
    }

    /// Withdraws a waiting piece and refunds an unsettled grant. Idempotent; `Drop` calls it.
    pub fn cancel(&mut self) {
        self.engine.cancel();
    }

    /// One throttled I/O operation: waits for a grant of up to `want` tokens, runs `io` with
    /// the granted size `n` (`1 ≤ n ≤ want`: shorten the buffer to it), and settles what `io`
    /// reports transferred — nothing if it is not ready or fails, so the tokens go back to the
    /// others. `want == 0` calls `io(cx, 0)` directly. (The rule is the engine's,
    /// [`Engine::poll_io`].)
    pub fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        io: impl FnOnce(&mut Context<'_>, usize) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let mut sleep = RuntimeSleep {
            limiter: &self.limiter,
            timer: &mut self.timer,
        };
        let r = self.engine.poll_io(cx, &mut sleep, want, io);
        self.after_poll(r.is_pending());
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

    /// Earliest instant at which `n` tokens can have been granted to this leaf (`None`:
    /// never, a limit on the path is paused, or the leaf is gone). Exact for a lone leaf, a
    /// lower bound when others compete ([`Tree::earliest`](throttle_core::Tree::earliest)).
    pub fn earliest(&self, n: u64) -> Option<Instant> {
        let now = self.limiter.now();
        let id = self.id();
        self.limiter
            .shared()
            .with(|s| s.tree().earliest(id, n, now))
            .ok()
            .flatten()
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
    /// and, once the node held one whole token again (1 ms later), one piece of debt: the next
    /// request waits 100 ms.
    fn exhausted(rt: &Manual) -> (crate::Node, Leaf) {
        let limiter = rt.limiter();
        let node = limiter
            .node(Limits::new(Tier::per_second(1000).with_burst(100)), 1)
            .unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        for k in 0..2 {
            if k == 1 {
                rt.advance(Duration::from_millis(1));
            }
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
        assert!(leaf.engine.is_waiting());
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
        assert!(!leaf.engine.is_waiting());
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
