//! When a request could complete, from the buckets as they stand: [`Tree::earliest`] for a
//! deadline-aware wait ("fail now if 100 tokens cannot be had within 2 s"),
//! [`Tree::earliest_whole`] and [`Tree::largest_grant`] for a non-waiting take of `n` tokens
//! at once. Read-only: nothing is reserved, nothing changes.
//!
//! Both are **lower bounds**: they look at the tiers of the leaf's path only, not at the
//! siblings that fair queueing may serve first, so a request never completes earlier than
//! they say (the fuzzer's `earliest` target checks this against real grants), and exactly
//! then when the leaf is alone at its bottleneck.
//!
//! Token-bucket tiers are computed exactly (in the buckets' own token·ns units,
//! `Buckets::holds_at`); a sliding window tier from its sub-window counters, one more window
//! per further `N` tokens ([`Tree::window_ready_at`]).

use crate::bucket::Buckets;
use crate::error::StaleHandle;
use crate::limits::{Limits, Tier};
use crate::node::{LeafId, NodeId, NIL};
use crate::storage::Storage;
use crate::time::Instant;
use crate::tree::Tree;

impl<S: Storage> Tree<S> {
    /// The earliest instant at which [`Tree::acquire`] calls could have granted `n` tokens in
    /// total to `leaf`, starting at `now`: every tier on the path must have earned all but
    /// the last grant, and still hold one whole token to start that last one (a grant may
    /// take a tier into debt by one piece, at most [`Tree::largest_grant`]; a tier with a
    /// burst of 0 needs no whole token). `Ok(None)`: never, as things stand (a tier on the
    /// path is paused). `now` earlier than the tree's clock counts as the tree's clock.
    ///
    /// A lower bound when siblings compete (only the tiers of the path count; the fuzzer
    /// checks the bound against real grants); O(depth).
    pub fn earliest(
        &self,
        leaf: LeafId,
        n: u64,
        now: Instant,
    ) -> Result<Option<Instant>, StaleHandle> {
        let last = self.largest_grant(leaf)?.min(n);
        self.ready_at(leaf.node(), n - last, true, n, now)
    }

    /// The earliest instant at which every tier on `leaf`'s path holds all `n` tokens at once
    /// (what a take-it-or-leave-it request needs: no piece of debt). `Ok(None)`: never as
    /// things stand (paused). Meaningful for `n ≤` [`Tree::largest_grant`]; beyond, the
    /// instant at which the tiers would have earned `n` were they unbounded.
    pub fn earliest_whole(
        &self,
        leaf: LeafId,
        n: u64,
        now: Instant,
    ) -> Result<Option<Instant>, StaleHandle> {
        self.ready_at(leaf.node(), n, false, n, now)
    }

    /// The most one grant on `leaf`'s path can be: the piece rule of [`Config`](crate::Config)
    /// for a leaf alone under its nodes (each node's round, within the configuration's piece
    /// sizes), never more than the smallest burst on the path (at least 1; a window tier's
    /// `N` included). With busy siblings, pieces are smaller.
    pub fn largest_grant(&self, leaf: LeafId) -> Result<u64, StaleHandle> {
        let mut i = self.index(leaf.node()).ok_or(StaleHandle::Removed)?;
        let mut burst = u64::MAX;
        let mut round = u64::MAX;
        while i != NIL {
            let s = self.slot(i);
            burst = burst.min(s.burst_min);
            round = round.min(s.round_tokens);
            i = s.parent;
        }
        let config = self.config();
        let piece = round
            .min(burst)
            .max(config.min_piece())
            .min(config.max_piece());
        Ok(piece.min(burst.max(1)))
    }

    /// When every tier on `node`'s path has earned `earned` tokens (token buckets; with
    /// `start`, plus the whole token it needs to start a piece) and has room for `n` (a
    /// window), counted from `max(now, tree clock)`.
    fn ready_at(
        &self,
        node: NodeId,
        earned: u64,
        start: bool,
        n: u64,
        now: Instant,
    ) -> Result<Option<Instant>, StaleHandle> {
        let mut i = self.index(node).ok_or(StaleHandle::Removed)?;
        let t = now.max(self.now()).as_nanos();
        let mut at = t;
        while i != NIL {
            let s = self.slot(i);
            match node_ready_at(s.limits, s.buckets, earned, start, n, t) {
                Some(x) => at = at.max(x),
                None => return Ok(None),
            }
            i = s.parent;
        }
        Ok(Some(Instant::from_nanos(at)))
    }
}

/// One node's tiers (see [`Tree::earliest`]): `None` when a tier is paused. Token tiers
/// exactly, in their token·ns units: with `start`, when each holds `earned` tokens plus its
/// threshold to start a piece (the last grant), else when each holds `earned` (a take of
/// `earned` at once, no debt).
fn node_ready_at(
    limits: Limits,
    mut buckets: Buckets,
    earned: u64,
    start: bool,
    n: u64,
    t: u64,
) -> Option<u64> {
    if limits.is_unlimited() {
        return Some(t);
    }
    buckets.refill(&limits, t);
    let at = buckets.holds_at(&limits, earned, start)?;
    Some(match limits.window() {
        Some(w) => at.max(window_ready_at(w, &buckets, n, t)),
        None => at,
    })
}

/// A window tier: room for `min(n, N)` now or later, then one more window per further `N`.
fn window_ready_at(tier: &Tier, buckets: &Buckets, n: u64, t: u64) -> u64 {
    let cap = tier.amount().max(1);
    let fit = n.min(cap);
    let more = ((n - fit).div_ceil(cap)).saturating_mul(tier.period_ns());
    let first = buckets.window().ready_at(tier, fit, t).unwrap_or(t);
    first.saturating_add(more)
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use crate::{Config, Decision, Instant, Limits, Tier, VecTree};

    #[test]
    fn lone_leaf_earliest_matches_wait() {
        let mut tree = VecTree::new(Config::DEFAULT.with_pieces(1, 1 << 16));
        let t0 = Instant::ZERO;
        let node = tree
            .insert_node(
                None,
                Limits::new(Tier::per_second(1000).with_burst(100)),
                1,
                t0,
            )
            .unwrap();
        let leaf = tree
            .insert_leaf(Some(node), Limits::UNLIMITED, 1, t0)
            .unwrap();
        // pieces of 10 ms at 1000/s
        assert_eq!(tree.largest_grant(leaf), Ok(10));
        // 100 now; 110 at 1 ms (the last piece starts on one whole token, then goes into debt)
        assert_eq!(tree.earliest(leaf, 100, t0), Ok(Some(t0)));
        assert_eq!(
            tree.earliest(leaf, 110, t0),
            Ok(Some(Instant::from_millis(1)))
        );
        // 310: 300 must be earned first and one more token held, 100 of them are there: 201 ms
        assert_eq!(
            tree.earliest(leaf, 310, t0),
            Ok(Some(Instant::from_millis(201)))
        );
        assert_eq!(tree.earliest_whole(leaf, 100, t0), Ok(Some(t0)));
        // spend the burst: the tier is at 0, a whole 100 needs 100 ms
        for _ in 0..10 {
            assert_eq!(tree.acquire(leaf, 10, t0), Ok(Decision::Grant(10)));
            tree.settle(leaf, 10, t0).unwrap();
        }
        assert_eq!(
            tree.earliest_whole(leaf, 100, t0),
            Ok(Some(Instant::from_millis(100)))
        );
        let half = Instant::from_millis(50);
        assert_eq!(
            tree.earliest_whole(leaf, 100, half),
            Ok(Some(Instant::from_millis(100)))
        );
    }

    #[test]
    fn paused_path_is_never_and_stale_is_error() {
        let mut tree = VecTree::new(Config::DEFAULT);
        let t0 = Instant::ZERO;
        let node = tree
            .insert_node(None, Limits::per_second(0), 1, t0)
            .unwrap();
        let leaf = tree
            .insert_leaf(Some(node), Limits::UNLIMITED, 1, t0)
            .unwrap();
        assert_eq!(tree.earliest(leaf, 1, t0), Ok(None));
        tree.remove(leaf.node(), t0).unwrap();
        assert!(tree.earliest(leaf, 1, t0).is_err());
    }

    #[test]
    fn window_tier_needs_a_window_per_n() {
        let mut tree = VecTree::new(Config::DEFAULT.with_pieces(1, 1 << 16));
        let t0 = Instant::ZERO;
        let w = Tier::window(10, Duration::from_secs(1)).unwrap();
        let leaf = tree.insert_leaf(None, Limits::new(w), 1, t0).unwrap();
        assert_eq!(tree.earliest_whole(leaf, 10, t0), Ok(Some(t0)));
        let at = tree.earliest_whole(leaf, 25, t0).unwrap().unwrap();
        assert_eq!(at, Instant::from_secs(2));
    }
}
