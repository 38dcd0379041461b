//! The arena slot of one node, and the generational handles that address it.
//!
//! ```text
//!            server (interior)              every node: tiers (Buckets), weight, busy count,
//!           /                 \             tags + links in its parent's fair queue
//!      group A              group B         interior: its own fair queue (hroot) and V
//!      /     \            /    |    \       leaf: LeafState (Idle → Pending → Granted →
//!   leaf A1 leaf A2    B1     B2     B3            Holding → Idle), and whether it holds its
//!                                                  turn between two requests (`hold`)
//! ```
//!
//! Links are `u32` slot indexes with [`NIL`] for "none"; a handle carries the slot's generation
//! so a handle to a removed node is detected even after its slot is reused.

use crate::bucket::Buckets;
use crate::limits::Limits;

/// "No node" in every link field.
pub(crate) const NIL: u32 = u32::MAX;

/// A link kept as its bitwise complement, so that "none" ([`NIL`]) is stored as zero. Used
/// where an *empty* tree or sharing layer holds links (the tree's list heads, the waiters'
/// list): with [`Config`](crate::Config)'s encoding, an empty limiter is then all zero bytes,
/// and a `static` one lands in `.bss` (zeroed at start) instead of `.data` (a flash image
/// copied to RAM: paid twice). Slots are not concerned: an empty storage has none.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Link(u32);

impl Link {
    /// No link.
    pub(crate) const NONE: Link = Link(0);

    /// A link to slot `i` ([`NIL`] gives [`Link::NONE`]).
    pub(crate) const fn to(i: u32) -> Link {
        Link(!i)
    }

    /// The slot linked to, or [`NIL`].
    pub(crate) const fn get(self) -> u32 {
        !self.0
    }
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.get() {
            NIL => f.write_str("NIL"),
            i => write!(f, "{i}"),
        }
    }
}

/// `Slot::hold` of a leaf that holds no turn.
pub(crate) const HOLD_NONE: u64 = 0;
/// `Slot::hold` of a leaf that holds its turn and has not yet kept anyone waiting (the deadline
/// is set the first time the scheduler finds its turn while it is away).
pub(crate) const HOLD_OPEN: u64 = u64::MAX;

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

/// One arena slot. `pub` because the sealed storage trait names it; no path outside the
/// crate reaches it.
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
    /// Smallest burst of a tier that is not paused (`u64::MAX` when none): no piece is larger
    /// (see `config`).
    pub(crate) burst_min: u64,
    /// Leaves under this node (itself for a leaf) with a pending piece.
    pub(crate) busy: u32,
    /// Eligible (sendable and has work): in the parent's fair queue (or the roots' list).
    pub(crate) linked: bool,
    /// Neighbours in the roots' list (roots only); `next` also chains free slots.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Membership in the parent's fair queue (a pairing heap): first child, next sibling,
    /// previous sibling or heap parent. See `fairq`.
    pub(crate) hchild: u32,
    pub(crate) hnext: u32,
    pub(crate) hprev: u32,
    /// Start and finish tags at the parent, and this node's own virtual time.
    /// `u64` that wrap, compared in serial-number order (`fairq::tag_before`).
    pub(crate) stag: u64,
    pub(crate) ftag: u64,
    pub(crate) vtime: u64,
    /// When this node last entered its parent's fair queue (a tree-wide counter that wraps,
    /// compared in serial-number order): equal start tags are served first come, first served,
    /// so a new or re-created child cannot jump ahead of siblings that waited at the same tag.
    /// (Two entries at one tag 2^31 insertions apart would swap their order once: harmless.)
    pub(crate) seq: u32,
    /// Tag cost of this child's last piece: how much service it may be owed when it comes
    /// back (see `fairq`).
    pub(crate) last_charge: u64,
    /// `2^31 / weight` (see `fairq::tag_step`).
    pub(crate) tag_step: u32,
    /// Root of this node's fair queue of eligible children.
    pub(crate) hroot: u32,
    /// Position in the timer heap (whose entries carry the wake-up instant).
    pub(crate) heap_pos: u32,
    pub(crate) state: LeafState,
    /// A leaf between two requests that keeps its place in its parents' fair queues (see
    /// `sched`, "Held turns"): [`HOLD_NONE`], [`HOLD_OPEN`], or the instant (ns) at which it
    /// stops holding its turn.
    pub(crate) hold: u64,
    /// Until this instant (ns) the node re-enters its parent's fair queue at its own finish
    /// tag, without the one-piece bound: it let a held turn go while late (see `sched`).
    pub(crate) keep_tag_until: u64,
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
                .filter(|t| !t.is_paused())
                .map(|t| t.burst())
                .min()
                .unwrap_or(u64::MAX),
            busy: 0,
            linked: false,
            prev: NIL,
            next: NIL,
            hchild: NIL,
            hnext: NIL,
            hprev: NIL,
            stag: 0,
            ftag: 0,
            vtime: 0,
            seq: 0,
            last_charge: 0,
            tag_step: crate::fairq::tag_step(weight),
            hroot: NIL,
            heap_pos: NIL,
            state: LeafState::Idle,
            hold: HOLD_NONE,
            keep_tag_until: 0,
            in_ready: false,
            ready_prev: NIL,
            ready_next: NIL,
            granted: 0,
            pieces: 0,
            waited_ns: 0,
        }
    }

    /// True when this leaf has a piece waiting or holds its turn, or this interior node has an
    /// eligible child.
    pub(crate) fn has_work(&self) -> bool {
        match self.kind {
            Kind::Leaf => matches!(self.state, LeafState::Pending { .. }) || self.hold != HOLD_NONE,
            Kind::Interior => self.hroot != NIL,
            Kind::Free => false,
        }
    }
}
