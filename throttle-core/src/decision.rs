//! What the tree answers: decisions (values, not errors) and per-node statistics.

use core::time::Duration;

use crate::time::Instant;

/// The answer to [`Tree::acquire`](crate::Tree::acquire).
#[must_use = "a Decision says whether to send now or when to ask again"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Send this many tokens now: `1 ≤ n ≤ want`. Report what was really used with
    /// [`Tree::settle`](crate::Tree::settle) (or ask again, which counts the whole grant used).
    Grant(u64),
    /// Ask again (same leaf, any `want`) at `until`, or earlier when the driver reports this leaf
    /// through [`Tree::poll_ready`](crate::Tree::poll_ready) or the tree's
    /// [`generation`](crate::Tree::generation) changes. `until` is the earliest instant at which
    /// every node on the leaf's path has credit again (one whole token in every tier): exact
    /// for a leaf alone at its bottleneck, a lower bound when siblings compete (one of them
    /// may be served first).
    /// `until == Instant::MAX` means never (the clock is at its end and debt cannot be repaid).
    Wait {
        /// The earliest instant worth asking again.
        until: Instant,
    },
    /// A node on the leaf's path has a paused tier (rate 0): nothing will be granted until a
    /// limit changes, which bumps [`Tree::generation`](crate::Tree::generation).
    Paused,
}

impl Decision {
    /// The granted amount, if this is a grant.
    pub const fn granted(&self) -> Option<u64> {
        match self {
            Decision::Grant(n) => Some(*n),
            _ => None,
        }
    }
}

/// Counters of one node, cumulative since it was inserted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Tokens granted through this node, minus what was given back by settle or cancel.
    pub granted: u64,
    /// Pieces granted through this node.
    pub pieces: u64,
    /// Sum over those pieces of the time each one waited between request and grant.
    pub waited: Duration,
    /// Leaves under this node (itself, for a leaf) with a piece waiting right now.
    pub waiting: u32,
}
