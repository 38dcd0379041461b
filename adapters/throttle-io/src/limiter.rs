//! The shared limiter and its RAII node handles.
//!
//! ```text
//!   Limiter ──Arc──▶ Inner { Shared<tree>, runtime, epoch, driver state }
//!      ▲                        ▲   ▲
//!      │ (Limiter clone)        │   └──Weak── driver task (one per limiter, see `driver`)
//!   Node ──Arc──▶ NodeInner { id, parent: Option<Arc<NodeInner>>, counters }
//!                     │ Drop: remove `id` from the tree
//!   Leaf (one task) ──┘ + the core's wait::Engine (its state) + a runtime timer
//! ```
//!
//! A node lives as long as some handle to it or to one of its children does: a child holds an
//! `Arc` to its parent, so the tree never sees a removal of a node with children, and dropping
//! the last handle of a connection's leaves removes them (refunding whatever they held).

extern crate alloc;

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use core::task::Waker;
use std::sync::Mutex;

use throttle_core::{Config, InsertError, Instant, Limits, NodeId, SetLimitError, Shared, VecTree};

use crate::driver::Driver;
use crate::leaf::Leaf;
use crate::runtime::Runtime;
use crate::stats::{NodeStats, Rate};
use crate::time;

/// The sharing layer this crate builds on: a growable tree behind a std mutex.
pub type SharedTree = throttle_core::VecShared;

/// A handle to one tree of limits and the runtime that waits on it. Cloning is cheap (an
/// `Arc`); every clone is the same limiter. All nodes made from it share its clock.
#[derive(Clone)]
pub struct Limiter(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) shared: SharedTree,
    pub(crate) runtime: Box<dyn Runtime>,
    pub(crate) epoch: std::time::Instant,
    /// `DRIVER_IDLE`, `DRIVER_RUNNING` or `DRIVER_UNSUPPORTED` (the runtime cannot spawn).
    pub(crate) driver: AtomicU8,
    /// The driver task's waker, woken when this is dropped so that the task ends.
    driver_waker: Mutex<Option<Waker>>,
}

/// No driver task yet (or it was dropped unfinished): the next leaf to wait spawns one.
pub(crate) const DRIVER_IDLE: u8 = 0;
/// A driver task was spawned (it may not have run yet).
pub(crate) const DRIVER_RUNNING: u8 = 1;
/// The runtime cannot spawn: holder mode for good.
pub(crate) const DRIVER_UNSUPPORTED: u8 = 2;

impl Inner {
    pub(crate) fn set_driver_waker(&self, waker: &Waker) {
        let mut slot = self
            .driver_waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the driver task (holding a Weak) ends at its next poll.
        let slot = self
            .driver_waker
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = slot.take() {
            w.wake();
        }
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("nodes", &self.len())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// An empty limiter on `runtime`'s clock and timers, with the core's default
    /// [`Config`] (10 ms rounds, pieces of 512 B … 64 KiB).
    pub fn new(runtime: impl Runtime) -> Self {
        Self::with_config(Config::DEFAULT, runtime)
    }

    /// An empty limiter with a chosen [`Config`].
    pub fn with_config(config: Config, runtime: impl Runtime) -> Self {
        let epoch = runtime.now();
        Limiter(Arc::new(Inner {
            shared: Shared::new(VecTree::new(config)),
            runtime: Box::new(runtime),
            epoch,
            driver: AtomicU8::new(DRIVER_IDLE),
            driver_waker: Mutex::new(None),
        }))
    }

    /// A new root node (a server, a global limit) with `weight ≥ 1` among the other roots.
    pub fn node(&self, limits: Limits, weight: u16) -> Result<Node, InsertError> {
        Node::insert(self, None, limits, weight)
    }

    /// A standalone leaf with its own limits and no parent: e.g. one request limiter
    /// ("10/s AND 300/min") used by one task.
    pub fn leaf(&self, limits: Limits) -> Result<Leaf, InsertError> {
        Node::insert_leaf(self, None, limits, 1)
    }

    /// Nodes in the tree right now (leaves included).
    pub fn len(&self) -> usize {
        self.0.shared.with(|s| s.tree().len())
    }

    /// True when the tree has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shared tree itself, for what this crate does not wrap (diagnostics, `wakes()`).
    /// Removing a node that a handle of this crate owns makes that handle stale: its
    /// operations then fail with typed errors. A change made here reaches every leaf like
    /// one made through [`Node::set_limit`] (the core counts every change).
    pub fn shared(&self) -> &SharedTree {
        &self.0.shared
    }

    /// The runtime's clock now, as the core counts it (ns since this limiter was built).
    pub fn now(&self) -> Instant {
        time::to_core(self.0.epoch, self.0.runtime.now())
    }

    /// The runtime's clock now.
    pub fn now_std(&self) -> std::time::Instant {
        self.0.runtime.now()
    }

    /// A core instant on the runtime's clock (`None` for "never").
    pub fn to_std(&self, t: Instant) -> Option<std::time::Instant> {
        time::to_std(self.0.epoch, t)
    }

    pub(crate) fn runtime(&self) -> &dyn Runtime {
        &*self.0.runtime
    }

    /// Spawns this limiter's driver task unless one runs or the runtime cannot spawn. Called
    /// by a leaf told to sleep, from inside its task (where the runtime's context exists); one
    /// atomic load once the driver runs.
    pub(crate) fn ensure_driver(&self) {
        let state = &self.0.driver;
        if state.load(Ordering::Acquire) != DRIVER_IDLE
            || state
                .compare_exchange(
                    DRIVER_IDLE,
                    DRIVER_RUNNING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return;
        }
        let task = Driver::new(Arc::downgrade(&self.0));
        if !self.0.runtime.spawn(Box::pin(task)) {
            // (the refused task's Drop has set DRIVER_IDLE)
            state.store(DRIVER_UNSUPPORTED, Ordering::Release);
        }
    }

    /// Whether a driver task holds the tree's timer (it has run at least once); false in
    /// holder mode, on a runtime that cannot [`spawn`](Runtime::spawn).
    pub fn has_driver(&self) -> bool {
        self.0.shared.has_driver()
    }
}

/// A node of the tree: a server, a group (tenant, job, priority class) or a leaf seen from
/// outside (a control handle: limits, weight, statistics; use [`Leaf`] to wait on it).
/// Cloning is cheap; the node is removed from the tree when the last handle to it (and to all
/// its children) is dropped.
#[derive(Clone)]
pub struct Node(pub(crate) Arc<NodeInner>);

pub(crate) struct NodeInner {
    pub(crate) limiter: Limiter,
    pub(crate) id: NodeId,
    leaf: bool,
    parent: Option<Arc<NodeInner>>,
    /// Tokens that went through this node while its leaf's path was unlimited (the tree was
    /// skipped): added to the tree's `granted` in [`Node::stats`].
    bypassed: AtomicU64,
    rate: Mutex<Rate>,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        // Children hold an Arc to their parent, so this node has none left: `remove` can only
        // fail if someone removed it through `Limiter::shared`, which leaves nothing to do.
        let now = self.limiter.now();
        let _ = self.limiter.0.shared.remove(self.id, now);
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.0.id)
            .field("leaf", &self.0.leaf)
            .finish_non_exhaustive()
    }
}

impl Node {
    fn new_inner(
        limiter: &Limiter,
        parent: Option<&Node>,
        id: NodeId,
        leaf: bool,
    ) -> Arc<NodeInner> {
        Arc::new(NodeInner {
            limiter: limiter.clone(),
            id,
            leaf,
            parent: parent.map(|p| p.0.clone()),
            bypassed: AtomicU64::new(0),
            rate: Mutex::new(Rate::new(limiter.now_std())),
        })
    }

    fn insert(
        limiter: &Limiter,
        parent: Option<&Node>,
        limits: Limits,
        weight: u16,
    ) -> Result<Node, InsertError> {
        let now = limiter.now();
        let id = limiter
            .0
            .shared
            .insert_node(parent.map(|p| p.0.id), limits, weight, now)?;
        Ok(Node(Self::new_inner(limiter, parent, id, false)))
    }

    fn insert_leaf(
        limiter: &Limiter,
        parent: Option<&Node>,
        limits: Limits,
        weight: u16,
    ) -> Result<Leaf, InsertError> {
        if parent.is_some_and(|p| p.0.leaf) {
            return Err(InsertError::ParentIsLeaf);
        }
        let now = limiter.now();
        let id = limiter
            .0
            .shared
            .insert_leaf(parent.map(|p| p.0.id), limits, weight, now)?;
        let node = Node(Self::new_inner(limiter, parent, id.node(), true));
        Ok(Leaf::new(node, id))
    }

    /// A child node (a group) with `weight ≥ 1`: among its busy siblings it gets a share of
    /// this node's capacity proportional to its weight.
    pub fn child(&self, limits: Limits, weight: u16) -> Result<Node, InsertError> {
        if self.0.leaf {
            return Err(InsertError::ParentIsLeaf);
        }
        Self::insert(&self.0.limiter, Some(self), limits, weight)
    }

    /// A leaf under this node, for one task: one direction of a stream, one worker's
    /// requests.
    pub fn leaf(&self, limits: Limits, weight: u16) -> Result<Leaf, InsertError> {
        Self::insert_leaf(&self.0.limiter, Some(self), limits, weight)
    }

    /// Registers a connection under this node: one leaf per direction, each with its own
    /// limits (weight 1). Both are removed when the connection (or the stream wrapping it) is
    /// dropped. The node's own limit counts both directions together.
    pub fn connection(
        &self,
        read: Limits,
        write: Limits,
    ) -> Result<crate::Connection, InsertError> {
        Ok(crate::Connection::new(
            self.leaf(read, 1)?,
            self.leaf(write, 1)?,
        ))
    }

    /// Changes this node's limits. Reaches every waiter below it at once: sleeping tasks that
    /// the change makes ready are woken, and the tree's timer re-arms if the next grant moved
    /// earlier.
    pub fn set_limit(&self, limits: Limits) -> Result<(), SetLimitError> {
        let l = &self.0.limiter;
        l.0.shared.set_limit(self.0.id, limits, l.now())
    }

    /// Changes this node's weight among its siblings (`≥ 1`; from its next piece on).
    pub fn set_weight(&self, weight: u16) -> Result<(), SetLimitError> {
        self.0.limiter.0.shared.set_weight(self.0.id, weight)
    }

    /// The node's current limits.
    pub fn limits(&self) -> Result<Limits, throttle_core::StaleHandle> {
        self.0.limiter.0.shared.limits(self.0.id)
    }

    /// Counters and the smoothed rate (see [`NodeStats`]). One lock of the tree; the rate is
    /// updated from the counters at the time of the call (no background task).
    pub fn stats(&self) -> NodeStats {
        let core = self.0.limiter.0.shared.stats(self.0.id).unwrap_or_default();
        let granted = core
            .granted
            .saturating_add(self.0.bypassed.load(Ordering::Relaxed));
        let now = self.0.limiter.now_std();
        let rate = self
            .0
            .rate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(now, granted);
        NodeStats {
            granted,
            pieces: core.pieces,
            waited: core.waited,
            waiting: core.waiting,
            rate,
        }
    }

    /// The node's handle in the core tree.
    pub fn id(&self) -> NodeId {
        self.0.id
    }

    /// True for a leaf's control handle.
    pub fn is_leaf(&self) -> bool {
        self.0.leaf
    }

    /// The parent node, if any.
    pub fn parent(&self) -> Option<Node> {
        self.0.parent.clone().map(Node)
    }

    /// The limiter this node belongs to.
    pub fn limiter(&self) -> &Limiter {
        &self.0.limiter
    }

    /// Counts `n` tokens that went through this node's path without the tree.
    pub(crate) fn add_bypassed(&self, n: u64) {
        let mut node = Some(&self.0);
        while let Some(x) = node {
            x.bypassed.fetch_add(n, Ordering::Relaxed);
            node = x.parent.as_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use throttle_core::{InsertError, Limits, SetLimitError};

    use crate::test_rt::Manual;

    #[test]
    fn node_last_handle_dropped_removes_it_after_children() {
        let limiter = Manual::new().limiter();
        let server = limiter.node(Limits::per_second(1000), 1).unwrap();
        let group = server.child(Limits::UNLIMITED, 2).unwrap();
        let conn = group
            .connection(Limits::UNLIMITED, Limits::per_second(10))
            .unwrap();
        assert_eq!(limiter.len(), 4);
        drop(server);
        drop(group);
        assert_eq!(limiter.len(), 4, "the connection keeps its ancestors");
        let ctl = conn.read().node().clone();
        drop(conn);
        assert_eq!(
            limiter.len(),
            3,
            "a control handle keeps its leaf (and ancestors)"
        );
        drop(ctl);
        assert!(limiter.is_empty());
    }

    #[test]
    fn bad_input_is_typed_error() {
        let limiter = Manual::new().limiter();
        assert_eq!(
            limiter.node(Limits::UNLIMITED, 0).unwrap_err(),
            InsertError::ZeroWeight
        );
        let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
        assert_eq!(node.set_weight(0), Err(SetLimitError::ZeroWeight));
        let leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        assert_eq!(
            leaf.node().child(Limits::UNLIMITED, 1).unwrap_err(),
            InsertError::ParentIsLeaf
        );
        assert_eq!(
            leaf.node().leaf(Limits::UNLIMITED, 1).unwrap_err(),
            InsertError::ParentIsLeaf
        );
        // a handle made stale behind the crate's back answers with errors, not panics
        limiter
            .shared()
            .remove(leaf.node().id(), limiter.now())
            .unwrap();
        assert_eq!(
            leaf.node().set_limit(Limits::UNLIMITED),
            Err(SetLimitError::StaleHandle)
        );
        assert_eq!(leaf.node().stats().granted, 0);
    }

    #[test]
    fn unlimited_leaf_set_limit_ends_bypass() {
        let limiter = Manual::new().limiter();
        let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        assert!(leaf.is_unlimited());
        node.set_limit(Limits::per_second(5)).unwrap();
        assert!(!leaf.is_unlimited());
        assert_eq!(node.limits().unwrap(), Limits::per_second(5));
    }

    /// Before the core counted changes, only `Node::set_limit` bumped the bypass epoch: a
    /// limit set through `Limiter::shared()` left the leaf bypassing the tree forever.
    #[test]
    fn unlimited_leaf_limit_set_through_shared_ends_bypass() {
        let limiter = Manual::new().limiter();
        let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let mut leaf = node.leaf(Limits::UNLIMITED, 1).unwrap();
        assert!(leaf.is_unlimited());
        limiter
            .shared()
            .set_limit(node.id(), Limits::per_second(5), limiter.now())
            .unwrap();
        assert!(!leaf.is_unlimited());
    }
}
