//! The hierarchical token bucket: the public operations of the state machine.
//!
//! Every method is O(depth) (times O(log n) when a node's timer moves in the timer heap), never
//! allocates (except `insert_*` on [`Growable`](crate::Growable) storage), never panics, and
//! takes `now` as a parameter. The scheduling internals live in `sched.rs`.

use crate::config::Config;
use crate::decision::{Decision, Stats};
use crate::error::{
    AcquireError, CancelError, InsertError, RemoveError, SetLimitError, SettleError, StaleHandle,
};
use crate::limits::Limits;
use crate::node::{Kind, LeafId, LeafState, Link, NodeId, Slot, NIL};
use crate::storage::Storage;
use crate::time::Instant;
use core::time::Duration;

/// Most nodes any tree can hold (`u32` indexes, one value reserved for "none").
pub const MAX_NODES: usize = (u32::MAX - 1) as usize;

/// A tree of limits and the scheduler that shares them. See the [crate docs](crate) for the
/// run loop a driver follows.
#[derive(Debug)]
pub struct Tree<S: Storage> {
    pub(crate) storage: S,
    pub(crate) config: Config,
    /// The latest `now` seen, in ns: time never goes backwards inside the tree.
    pub(crate) clock: u64,
    /// The roots' and ready lists' ends and the free list's head (see `lists`); `Link`s, so
    /// that an empty tree is all zero bytes.
    pub(crate) root_head: Link,
    pub(crate) root_tail: Link,
    pub(crate) ready_head: Link,
    pub(crate) ready_tail: Link,
    pub(crate) free_head: Link,
    pub(crate) len: u32,
    pub(crate) generation: u32,
    /// Fair-queue arrival counter (see `Slot::seq`).
    pub(crate) fq_seq: u32,
    /// Roots in the roots' list (eligible roots).
    pub(crate) linked_roots: u32,
    /// Leaves with a piece waiting, in the whole tree.
    pub(crate) pending: u32,
}

/// A tree in fixed storage for `N` nodes.
pub type FixedTree<const N: usize> = Tree<crate::storage::Fixed<N>>;

/// A tree in growable storage.
#[cfg(feature = "alloc")]
pub type VecTree = Tree<crate::storage::Growable>;

impl<S: Storage + Default> Tree<S> {
    /// An empty tree.
    pub fn new(config: Config) -> Self {
        Tree::with_storage(S::default(), config)
    }
}

impl<S: Storage + Default> Default for Tree<S> {
    fn default() -> Self {
        Tree::new(Config::DEFAULT)
    }
}

impl<S: Storage> Tree<S> {
    /// An empty tree in the given (empty) storage. `const`, so a `FixedTree` can be built in a
    /// `static`: `Tree::with_storage(Fixed::<8>::new(), Config::DEFAULT)`.
    pub const fn with_storage(storage: S, config: Config) -> Self {
        Tree {
            storage,
            config,
            clock: 0,
            root_head: Link::NONE,
            root_tail: Link::NONE,
            ready_head: Link::NONE,
            ready_tail: Link::NONE,
            free_head: Link::NONE,
            len: 0,
            generation: 0,
            fq_seq: 0,
            linked_roots: 0,
            pending: 0,
        }
    }

    /// The tree-wide settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Nodes in the tree.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the tree has no node.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most nodes this tree can hold.
    pub fn capacity(&self) -> usize {
        self.storage.capacity()
    }

    /// Bumped (wrapping) by every change that can shorten or lengthen a wait: `set_limit`,
    /// `set_weight`, `insert_*`, `remove`. A driver that sleeps per waiter watches it to re-ask
    /// after a limit change; a driver with one timer re-reads [`Tree::poll_timeout`].
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The latest `now` the tree has seen.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.clock)
    }

    /// Adds an interior node (server, group, tenant, priority class) under `parent`, or a new
    /// root when `parent` is `None`. `weight ≥ 1` is its share among its busy siblings.
    pub fn insert_node(
        &mut self,
        parent: Option<NodeId>,
        limits: Limits,
        weight: u16,
        now: Instant,
    ) -> Result<NodeId, InsertError> {
        self.insert(parent, limits, weight, Kind::Interior, now)
    }

    /// Adds a leaf (what requests: one direction of one connection, one job, one client) under
    /// `parent`, or as a standalone root when `parent` is `None`.
    pub fn insert_leaf(
        &mut self,
        parent: Option<NodeId>,
        limits: Limits,
        weight: u16,
        now: Instant,
    ) -> Result<LeafId, InsertError> {
        self.insert(parent, limits, weight, Kind::Leaf, now)
            .map(LeafId)
    }

    fn insert(
        &mut self,
        parent: Option<NodeId>,
        limits: Limits,
        weight: u16,
        kind: Kind,
        now: Instant,
    ) -> Result<NodeId, InsertError> {
        if weight == 0 {
            return Err(InsertError::ZeroWeight);
        }
        self.config
            .check_bursts(&limits)
            .map_err(InsertError::BurstTooSmall)?;
        let p = match parent {
            None => NIL,
            Some(id) => {
                let p = self.index(id).ok_or(InsertError::StaleParent)?;
                if self.slot(p).kind == Kind::Leaf {
                    return Err(InsertError::ParentIsLeaf);
                }
                p
            }
        };
        // Fail before touching anything: an error leaves the tree exactly as it was.
        if self.free_head == Link::NONE
            && self.storage.slots().len() >= self.storage.capacity().min(MAX_NODES)
        {
            return Err(InsertError::CapacityFull);
        }
        self.tick(now);
        let slot = Slot::new(
            kind,
            p,
            weight,
            limits,
            self.round_tokens(&limits),
            self.clock,
        );
        let index = if self.free_head != Link::NONE {
            let i = self.free_head.get();
            let gen = self.slot(i).gen;
            self.free_head = Link::to(self.slot(i).next);
            *self.slot_mut(i) = Slot { gen, ..slot };
            i
        } else {
            let i = self.storage.slots().len();
            if i >= MAX_NODES || !self.storage.push_slot(slot) {
                return Err(InsertError::CapacityFull);
            }
            i as u32
        };
        if p != NIL {
            self.slot_mut(p).children += 1;
            // owed nothing yet: a fresh child does not win ties against siblings that are
            // owed service (see `fairq`)
            let v = self.slot(p).vtime;
            self.slot_mut(index).ftag = v;
        }
        self.len += 1;
        self.generation = self.generation.wrapping_add(1);
        Ok(NodeId {
            index,
            gen: self.slot(index).gen,
        })
    }

    /// Removes a node without children. A leaf's waiting piece is dropped and anything it was
    /// granted but had not settled is refunded at every level (as [`Tree::cancel`]). The handle
    /// (and any copy of it) is stale afterwards, even once the slot is reused.
    pub fn remove(&mut self, node: NodeId, now: Instant) -> Result<(), RemoveError> {
        let i = self.index(node).ok_or(RemoveError::StaleHandle)?;
        if self.slot(i).children > 0 {
            return Err(RemoveError::HasChildren);
        }
        self.tick(now);
        if self.slot(i).kind == Kind::Leaf {
            self.drop_request(i);
        }
        let p = self.slot(i).parent;
        if self.slot(i).linked {
            self.unlink(p, i);
        }
        self.heap_remove(i);
        self.remove_ready(i);
        if p != NIL {
            self.slot_mut(p).children -= 1;
        }
        let free = self.free_head.get();
        let s = self.slot_mut(i);
        s.kind = Kind::Free;
        s.gen = s.gen.wrapping_add(1);
        s.next = free;
        self.free_head = Link::to(i);
        self.len -= 1;
        self.generation = self.generation.wrapping_add(1);
        if p != NIL {
            self.refresh_up(p);
        }
        self.run(NIL);
        Ok(())
    }

    /// Changes a node's limits at `now`. Tokens already earned carry over (capped by the new
    /// burst; debt is kept), every waiter below is re-evaluated against the new rate, and
    /// leaves the change makes ready are reported by [`Tree::poll_ready`].
    pub fn set_limit(
        &mut self,
        node: NodeId,
        limits: Limits,
        now: Instant,
    ) -> Result<(), SetLimitError> {
        let i = self.index(node).ok_or(SetLimitError::StaleHandle)?;
        self.config
            .check_bursts(&limits)
            .map_err(SetLimitError::BurstTooSmall)?;
        self.tick(now);
        let clock = self.clock;
        let round = self.round_tokens(&limits);
        let s = self.slot_mut(i);
        let old = s.limits;
        s.buckets.relimit(&old, &limits, clock);
        s.limits = limits;
        s.round_tokens = round;
        s.burst_min = limits
            .tiers()
            .iter()
            .filter(|t| !t.is_paused())
            .map(|t| t.burst())
            .min()
            .unwrap_or(u64::MAX);
        self.generation = self.generation.wrapping_add(1);
        self.refresh_up(i);
        self.run(NIL);
        Ok(())
    }

    /// Changes a node's weight among its siblings (takes effect from its next piece).
    pub fn set_weight(&mut self, node: NodeId, weight: u16) -> Result<(), SetLimitError> {
        let i = self.index(node).ok_or(SetLimitError::StaleHandle)?;
        if weight == 0 {
            return Err(SetLimitError::ZeroWeight);
        }
        let s = self.slot_mut(i);
        s.weight = weight;
        s.tag_step = crate::fairq::tag_step(weight);
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Asks for up to `want` tokens for `leaf` at `now`.
    ///
    /// - `Grant(n)`, `1 ≤ n ≤ want`: send `n` now, then [`Tree::settle`] what was used. Asking
    ///   again without settling counts the whole grant as used.
    /// - `Wait { until }`: the leaf keeps its place; ask again at `until` or when the driver
    ///   sees it in [`Tree::poll_ready`]. Asking again is idempotent (a smaller `want` shrinks
    ///   the waiting piece; a larger one does not grow it).
    /// - `Paused`: a node on the path has rate 0; ask again after a limit change.
    ///
    /// A request larger than any burst is never an error: it is served in pieces (see
    /// [`Config`]). Running the scheduler may grant other leaves too; drain
    /// [`Tree::poll_ready`] afterwards.
    pub fn acquire(
        &mut self,
        leaf: LeafId,
        want: u64,
        now: Instant,
    ) -> Result<Decision, AcquireError> {
        let i = self.leaf_index(leaf).ok_or(AcquireError::StaleHandle)?;
        if want == 0 {
            return Err(AcquireError::ZeroRequest);
        }
        self.tick(now);
        if let LeafState::Holding { .. } = self.slot(i).state {
            self.slot_mut(i).state = LeafState::Idle;
        }
        match self.slot(i).state {
            LeafState::Granted { piece } => return Ok(self.collect(i, piece, want)),
            LeafState::Pending { piece, since } => {
                if want < piece {
                    self.slot_mut(i).state = LeafState::Pending { piece: want, since };
                }
            }
            LeafState::Idle | LeafState::Holding { .. } => {
                self.fire_timers();
                if let Some(piece) = self.try_grant_held(i, want) {
                    return Ok(Decision::Grant(piece));
                }
                let (piece, granted, _) = self.size_and_try_grant(i, want);
                if granted {
                    self.slot_mut(i).state = LeafState::Holding { piece };
                    return Ok(Decision::Grant(piece));
                }
                self.slot_mut(i).state = LeafState::Pending {
                    piece,
                    since: self.clock,
                };
                self.add_busy(i);
            }
        }
        self.run(i);
        if let LeafState::Granted { piece } = self.slot(i).state {
            return Ok(self.collect(i, piece, want));
        }
        Ok(self.wait_decision(i))
    }

    /// Reports that `used` of the tokens last granted to `leaf` were really sent; the rest is
    /// given back to every level (exactly, up to each bucket's burst). Leaves this makes
    /// ready are reported by [`Tree::poll_ready`].
    pub fn settle(&mut self, leaf: LeafId, used: u64, now: Instant) -> Result<(), SettleError> {
        let i = self.leaf_index(leaf).ok_or(SettleError::StaleHandle)?;
        let LeafState::Holding { piece } = self.slot(i).state else {
            return Err(SettleError::NoGrant);
        };
        if used > piece {
            return Err(SettleError::UsedMoreThanGranted);
        }
        self.tick(now);
        // a held turn's deadline stands: a sibling may be waiting on it (and on its timer)
        self.slot_mut(i).state = LeafState::Idle;
        if used < piece {
            self.refund_path(i, piece - used);
            self.run(NIL);
        }
        Ok(())
    }

    /// Drops whatever `leaf` has in flight: a waiting piece is withdrawn (nothing was spent
    /// yet), a grant not yet collected or not yet settled is refunded at every level it was
    /// spent on. Returns the tokens refunded. Cancel-safe drivers call this when a wait is
    /// abandoned.
    pub fn cancel(&mut self, leaf: LeafId, now: Instant) -> Result<u64, CancelError> {
        let i = self.leaf_index(leaf).ok_or(CancelError::StaleHandle)?;
        self.tick(now);
        let refunded = self.drop_request(i);
        // Even withdrawing a waiting piece (no refund) re-evaluates the path, which can make
        // another waiter eligible: grant it now and report it (else a one-timer driver would
        // never hear of it; found by the fuzzer).
        self.run(NIL);
        Ok(refunded)
    }

    /// The earliest instant at which the scheduler can grant something, if any leaf waits for
    /// a node that cannot start a piece yet (it holds less than one whole token). A driver with one timer for the whole tree sleeps until then
    /// and calls [`Tree::handle_timeout`]. `None`: nothing will happen by itself (nothing waits,
    /// or only paused nodes are waited on).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.storage
            .heap()
            .first()
            .map(|&(at, _)| Instant::from_nanos(at))
    }

    /// Runs the scheduler at `now`: grants every piece that can be granted; the leaves that got
    /// one are reported by [`Tree::poll_ready`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        self.run(NIL);
    }

    /// The next leaf that was granted a piece by some other call (another leaf's acquire,
    /// settle, cancel, a limit change, `handle_timeout`). The driver wakes it; the leaf
    /// collects its grant by calling [`Tree::acquire`]. Call until `None`.
    pub fn poll_ready(&mut self) -> Option<LeafId> {
        let i = self.ready_head.get();
        if i == NIL {
            return None;
        }
        self.remove_ready(i);
        Some(LeafId(NodeId {
            index: i,
            gen: self.slot(i).gen,
        }))
    }

    /// The node's counters.
    pub fn stats(&self, node: NodeId) -> Result<Stats, StaleHandle> {
        let s = self.slot(self.index(node).ok_or(StaleHandle::Removed)?);
        Ok(Stats {
            granted: s.granted,
            pieces: s.pieces,
            waited: Duration::from_nanos(s.waited_ns),
            waiting: s.busy,
        })
    }

    /// The node's limits.
    pub fn limits(&self, node: NodeId) -> Result<Limits, StaleHandle> {
        Ok(self
            .slot(self.index(node).ok_or(StaleHandle::Removed)?)
            .limits)
    }

    /// Whether no node from `node` up to its root has a tier: an adapter may then skip the
    /// tree for it (nothing would ever wait). O(depth). Re-check after [`Tree::generation`]
    /// changes.
    pub fn path_unlimited(&self, node: NodeId) -> Result<bool, StaleHandle> {
        let mut i = self.index(node).ok_or(StaleHandle::Removed)?;
        loop {
            let s = self.slot(i);
            if !s.limits.is_unlimited() {
                return Ok(false);
            }
            if s.parent == NIL {
                return Ok(true);
            }
            i = s.parent;
        }
    }

    /// Counts `n` tokens that went through `leaf` while its whole path was unlimited (an
    /// adapter skipped the tree): added to [`Stats::granted`] of every node on the path, as a
    /// grant would be (not to `pieces`). O(depth); changes no decision.
    pub fn count_bypassed(&mut self, leaf: LeafId, n: u64) -> Result<(), StaleHandle> {
        let mut i = self.index(leaf.node()).ok_or(StaleHandle::Removed)?;
        loop {
            let s = self.slot_mut(i);
            s.granted = s.granted.saturating_add(n);
            if s.parent == NIL {
                return Ok(());
            }
            i = s.parent;
        }
    }

    /// The node's parent (`None` for a root).
    pub fn parent(&self, node: NodeId) -> Result<Option<NodeId>, StaleHandle> {
        let p = self
            .slot(self.index(node).ok_or(StaleHandle::Removed)?)
            .parent;
        Ok((p != NIL).then(|| NodeId {
            index: p,
            gen: self.slot(p).gen,
        }))
    }

    /// True when the handle still refers to a node of this tree.
    pub fn contains(&self, node: NodeId) -> bool {
        self.index(node).is_some()
    }

    /// Whole tokens held by tier `tier` of `node` at the tree's latest `now` (negative: debt;
    /// 0 for a tier index it does not have). For diagnostics and tests.
    pub fn tokens(&self, node: NodeId, tier: usize) -> Result<i128, StaleHandle> {
        let s = self.slot(self.index(node).ok_or(StaleHandle::Removed)?);
        let mut b = s.buckets;
        b.refill(&s.limits, self.clock);
        Ok(b.tokens(&s.limits, tier))
    }

    // ---- handles and small helpers ----

    pub(crate) fn index(&self, id: NodeId) -> Option<u32> {
        let s = self.storage.slots().get(id.index as usize)?;
        (s.gen == id.gen && s.kind != Kind::Free).then_some(id.index)
    }

    fn leaf_index(&self, id: LeafId) -> Option<u32> {
        self.index(id.0)
            .filter(|&i| self.slot(i).kind == Kind::Leaf)
    }

    /// The slot at index `i` (an index the caller got from the tree: never out of range).
    #[inline]
    pub(crate) fn slot(&self, i: u32) -> &Slot {
        &self.storage.slots()[i as usize]
    }

    /// The slot at index `i`, to change.
    #[inline]
    pub(crate) fn slot_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.storage.slots_mut()[i as usize]
    }

    fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now.as_nanos());
    }

    /// Smallest tier rate × round, in tokens (`u64::MAX` when unlimited).
    fn round_tokens(&self, limits: &Limits) -> u64 {
        let round = self.config.round_ns();
        limits
            .tiers()
            .iter()
            .map(|t| crate::muldiv::mul_div(t.amount(), round, t.period_ns()).min(u64::MAX - 1))
            .min()
            .unwrap_or(u64::MAX)
    }
}
