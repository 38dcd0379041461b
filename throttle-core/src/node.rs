//! The arena slot of one node, and the generational handles that address it.
//!
//! ```text
//!            server (interior)              every node: tiers (Buckets), weight, busy count,
//!           /                 \             deficit + links in its parent's active list
//!      group A              group B         interior: its own active list (head, tail, turn)
//!      /     \            /    |    \       leaf: LeafState (Idle → Pending → Granted →
//!   leaf A1 leaf A2    B1     B2     B3            Holding → Idle)
//! ```
//!
//! Links are `u32` slot indexes with [`NIL`] for "none"; a handle carries the slot's generation
//! so a handle to a removed node is detected even after its slot is reused.

use crate::bucket::Buckets;
use crate::limits::Limits;

/// "No node" in every link field.
pub(crate) const NIL: u32 = u32::MAX;

/// A handle to any node of a [`Tree`](crate::Tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

/// A handle to a leaf: the node that requests (one direction of one connection, one client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafId(pub(crate) NodeId);

impl LeafId {
    /// The leaf as a node (for [`Tree::set_limit`](crate::Tree::set_limit), stats, removal).
    pub const fn node(self) -> NodeId {
        self.0
    }
}

impl From<LeafId> for NodeId {
    fn from(l: LeafId) -> NodeId {
        l.0
    }
}

impl NodeId {
    /// The slot index: stable for the node's life, reused after removal. Useful as an array
    /// index in drivers (e.g. one waker per slot).
    pub const fn index(self) -> u32 {
        self.index
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Free,
    Interior,
    Leaf,
}

/// A leaf's request, from ask to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafState {
    /// Nothing asked, nothing held.
    Idle,
    /// A piece is waiting in the scheduler since `since` (ns). Nothing is spent yet.
    Pending { piece: u64, since: u64 },
    /// The scheduler granted the piece (spent on every level); the leaf has not collected it.
    Granted { piece: u64 },
    /// The leaf was told `Grant(piece)` and has not settled yet.
    Holding { piece: u64 },
}

/// One arena slot. Opaque: only the tree reads it.
#[derive(Clone, Debug)]
pub struct Slot {
    pub(crate) gen: u32,
    pub(crate) kind: Kind,
    pub(crate) parent: u32,
    pub(crate) weight: u16,
    pub(crate) children: u32,
    pub(crate) limits: Limits,
    pub(crate) buckets: Buckets,
    /// Smallest tier rate × round, in tokens; `u64::MAX` when unlimited. See `config`.
    pub(crate) round_tokens: u64,
    /// Smallest tier burst (`u64::MAX` when unlimited): no piece is larger (see `config`).
    pub(crate) burst_min: u64,
    /// Leaves under this node (itself for a leaf) with a pending piece.
    pub(crate) busy: u32,
    /// Linked in the parent's active list: eligible (sendable and has work).
    pub(crate) linked: bool,
    /// Siblings in the parent's active list; `next` also chains free slots.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Deficit-round-robin credit at the parent, in tokens.
    pub(crate) deficit: i64,
    /// This node's active list of eligible children, and the child whose turn is in progress.
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) turn: u32,
    /// Position in the timer heap (whose entries carry the wake-up instant).
    pub(crate) heap_pos: u32,
    pub(crate) state: LeafState,
    pub(crate) in_ready: bool,
    pub(crate) ready_prev: u32,
    pub(crate) ready_next: u32,
    pub(crate) granted: u64,
    pub(crate) pieces: u64,
    pub(crate) waited_ns: u64,
}

impl Slot {
    pub(crate) fn new(
        kind: Kind,
        parent: u32,
        weight: u16,
        limits: Limits,
        round_tokens: u64,
        now: u64,
    ) -> Slot {
        Slot {
            gen: 0,
            kind,
            parent,
            weight,
            children: 0,
            limits,
            buckets: Buckets::full(&limits, now),
            round_tokens,
            burst_min: limits
                .tiers()
                .iter()
                .map(|t| t.burst())
                .min()
                .unwrap_or(u64::MAX),
            busy: 0,
            linked: false,
            prev: NIL,
            next: NIL,
            deficit: 0,
            head: NIL,
            tail: NIL,
            turn: NIL,
            heap_pos: NIL,
            state: LeafState::Idle,
            in_ready: false,
            ready_prev: NIL,
            ready_next: NIL,
            granted: 0,
            pieces: 0,
            waited_ns: 0,
        }
    }

    /// True when this leaf has a piece waiting, or this interior node has an eligible child.
    pub(crate) fn has_work(&self) -> bool {
        match self.kind {
            Kind::Leaf => matches!(self.state, LeafState::Pending { .. }),
            Kind::Interior => self.head != NIL,
            Kind::Free => false,
        }
    }
}
