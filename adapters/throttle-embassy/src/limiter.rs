//! The limiter: one shared tree in a `static`, and the nodes a server, its groups and its
//! connections get in it.
//!
//! ```text
//!   Limiter (static)            read side                   write side
//!                               server.read  (1 MiB/s)      server.write (1 MiB/s)
//!                               ├── conn 1 read leaf        ├── conn 1 write leaf
//!                               └── conn 2 read leaf        └── conn 2 write leaf
//! ```
//! Each direction of a connection is its own leaf, under the same direction of its parent
//! [`Group`]; a group is a pair of nodes (read, write). Groups nest (server → tenant → …).

use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use throttle_core::shared::State;
use throttle_core::{
    Config, Fixed, InsertError, LeafId, Limits, NodeId, RemoveError, SetLimitError, Shared,
    StaleHandle, Stats, Tree,
};

use crate::lock::MutexLock;
use crate::stream::Throttled;
use crate::time::now;

/// The shared tree of a [`Limiter`] with `N` node slots behind a `MutexLock`: what
/// [`Limiter::shared`] exposes for operations this crate does not wrap.
pub type SharedTree<const N: usize, M> = Shared<Fixed<N>, MutexLock<M, State<Fixed<N>>>>;

/// A value per direction: limits, nodes or leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Directions<T> {
    /// Bytes read from the inner stream (download, receive).
    pub read: T,
    /// Bytes written to the inner stream (upload, send).
    pub write: T,
}

impl<T: Copy> Directions<T> {
    /// The same value for both directions (`const`, for statics).
    pub const fn both(value: T) -> Self {
        Directions {
            read: value,
            write: value,
        }
    }
}

impl Directions<Limits> {
    /// No limit in either direction.
    pub const UNLIMITED: Self = Directions {
        read: Limits::UNLIMITED,
        write: Limits::UNLIMITED,
    };
}

/// A server or a group of connections: one node per direction.
pub type Group = Directions<NodeId>;

/// A connection's two leaves (see [`Throttled::leaves`]).
pub type Leaves = Directions<LeafId>;

/// A hierarchical bandwidth limiter with room for `N` nodes (each group takes 2, each
/// connection 2), shared through an embassy-sync blocking mutex over `M`.
///
/// `const`-constructible with fixed-capacity storage, so it lives in a `static`:
///
/// ```
/// use throttle_embassy::Limiter;
///
/// // 1 server (2 nodes) + 8 connections (16 leaves)
/// static LIMITER: Limiter<18> = Limiter::new();
/// ```
///
/// Every method takes `&self` and locks once. Memory: `size_of::<Limiter<N>>()` grows linearly
/// in `N` (see the crate README for measured figures); nothing is allocated.
pub struct Limiter<const N: usize, M: RawMutex = CriticalSectionRawMutex> {
    shared: SharedTree<N, M>,
}

impl<const N: usize, M: RawMutex> Default for Limiter<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, M: RawMutex> core::fmt::Debug for Limiter<N, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Limiter").field("capacity", &N).finish()
    }
}

impl<const N: usize, M: RawMutex> Limiter<N, M> {
    /// An empty limiter with the core's default configuration (piece sizes, round length).
    pub const fn new() -> Self {
        Self::with_config(Config::DEFAULT)
    }

    /// An empty limiter with `config`.
    pub const fn with_config(config: Config) -> Self {
        Limiter {
            shared: Shared::from_lock(MutexLock::new_const(State::new(Tree::with_storage(
                Fixed::new(),
                config,
            )))),
        }
    }

    /// The shared tree, for everything this type does not wrap (weights, raw nodes, timers).
    pub fn shared(&self) -> &SharedTree<N, M> {
        &self.shared
    }

    /// Adds a server or group (one node per direction) under `parent` (`None`: a root) with
    /// `limits` and fair-share `weight` (≥ 1). Takes 2 node slots.
    pub fn group(
        &self,
        parent: Option<&Group>,
        limits: Directions<Limits>,
        weight: u16,
    ) -> Result<Group, InsertError> {
        let t = now();
        let read = self
            .shared
            .insert_node(parent.map(|p| p.read), limits.read, weight, t)?;
        match self
            .shared
            .insert_node(parent.map(|p| p.write), limits.write, weight, t)
        {
            Ok(write) => Ok(Group { read, write }),
            Err(e) => {
                // A half-inserted group must not leak its slot; a fresh node has no children.
                let _ = self.shared.remove(read, t);
                Err(e)
            }
        }
    }

    /// Wraps `stream` as a new connection under `parent` (`None`: no shared limit) with its
    /// own per-direction `limits`; weight 1. Takes 2 node slots, given back when the
    /// [`Throttled`] is dropped or [`Throttled::into_inner`] is called.
    ///
    /// Fails only if the tree is full or `parent` was removed; the stream is handed back.
    ///
    /// `T` is typically `Read + Write`; a half (embassy-net `TcpSocket::split` gives a
    /// `TcpReader` and a `TcpWriter`, for reading and writing from two tasks at once) works
    /// too: wrap each half, its other direction `Limits::UNLIMITED` (unused, one slot).
    pub fn wrap<T>(
        &self,
        stream: T,
        parent: Option<&Group>,
        limits: Directions<Limits>,
    ) -> Result<Throttled<'_, T, N, M>, (InsertError, T)> {
        match self.connection(parent, limits, 1) {
            Ok(leaves) => Ok(Throttled::new(self, stream, leaves)),
            Err(e) => Err((e, stream)),
        }
    }

    /// The two leaves of a connection (for drivers that wrap streams themselves).
    pub fn connection(
        &self,
        parent: Option<&Group>,
        limits: Directions<Limits>,
        weight: u16,
    ) -> Result<Leaves, InsertError> {
        let t = now();
        let read = self
            .shared
            .insert_leaf(parent.map(|p| p.read), limits.read, weight, t)?;
        match self
            .shared
            .insert_leaf(parent.map(|p| p.write), limits.write, weight, t)
        {
            Ok(write) => Ok(Leaves { read, write }),
            Err(e) => {
                let _ = self.shared.remove(read.node(), t);
                Err(e)
            }
        }
    }

    /// Changes a node's limits now (a group direction or a connection leaf, e.g.
    /// `group.read` or `conn.leaves().write.node()`). Reaches every waiter below it at once,
    /// including connections asleep in a read or write: those it makes ready are woken, and
    /// the task holding the tree's timer re-arms if the next grant moved earlier.
    pub fn set_limit(&self, node: NodeId, limits: Limits) -> Result<(), SetLimitError> {
        self.shared.set_limit(node, limits, now())
    }

    /// [`Limiter::set_limit`] on both directions of a group.
    pub fn set_limits(
        &self,
        group: &Group,
        limits: Directions<Limits>,
    ) -> Result<(), SetLimitError> {
        self.set_limit(group.read, limits.read)?;
        self.set_limit(group.write, limits.write)
    }

    /// Removes a group (both nodes). Its connections and subgroups must be gone first
    /// ([`RemoveError::HasChildren`] otherwise, and nothing is removed: a connection or group
    /// has a node on both sides, so the read side fails first).
    pub fn remove(&self, group: &Group) -> Result<(), RemoveError> {
        let t = now();
        self.shared.remove(group.read, t)?;
        if group.write == group.read {
            // one node counting both directions
            return Ok(());
        }
        self.shared.remove(group.write, t)
    }

    /// Removes a connection's leaves; whatever they held or waited for is refunded.
    pub fn remove_connection(&self, leaves: &Leaves) -> Result<(), RemoveError> {
        let t = now();
        let read = self.shared.remove(leaves.read.node(), t);
        let write = self.shared.remove(leaves.write.node(), t);
        read.and(write)
    }

    /// True while `node` is in the limiter (a dropped connection's leaves are not).
    pub fn contains(&self, node: NodeId) -> bool {
        self.shared.with(|s| s.tree().contains(node))
    }

    /// Statistics of one node (bytes granted, waiting time, …).
    pub fn stats(&self, node: NodeId) -> Result<Stats, StaleHandle> {
        self.shared.stats(node)
    }
}
