//! Sliding-window tiers: "at most `N` in any window of length `W`", for request limits.
//!
//! A token bucket of `N` per `W` refills continuously, so "10/s AND 300/min" lets about 600
//! requests through in the first minute (300 saved up, then 5/s). Many APIs count in windows
//! instead. A window tier ([`Tier::window`]) keeps, per node, the tokens admitted in each of
//! the last `K + 1` sub-windows of length `s = ⌈W / K⌉` (`K` = [`SUBWINDOWS`]), and admits
//! while their sum is below `N`:
//!
//! ```text
//!   sub-windows  │ j−K │ j−K+1 │ … │ j−1 │  j  │   (j: the one holding `now`)
//!                  └──────── any [t − W, t] lies within these K + 1 ───────┘
//! ```
//!
//! **Never over-admits**: every interval of length `W` ending at an admission lies inside the
//! `K + 1` sub-windows counted for it, so at most `N` tokens are admitted in any window `W`
//! (grants of one token; a window tier's burst is 1, see [`Tier::window`]). **May
//! under-admit**: the oldest sub-window counts whole, so a token waits up to `s = W / K` longer
//! than an exact sliding log would make it. Cost: `K + 1` `u32` counters and one index per node
//! (one window tier per node), O(K) per check, integer math only.

use crate::limits::Tier;
use crate::node::NodeId;
use crate::storage::Storage;
use crate::{Instant, StaleHandle, Tree};

/// Sub-windows a window is split into: the under-admission bound is `W / SUBWINDOWS`.
pub const SUBWINDOWS: u64 = 8;

const SLOTS: usize = SUBWINDOWS as usize + 1;

/// The counters of one window tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Tokens admitted per sub-window; sub-window `j` is at `counts[j % SLOTS]`.
    counts: [u32; SLOTS],
    /// The newest sub-window the counters hold (`head − K ..= head`).
    head: u64,
}

/// Length of one sub-window of `tier`, in ns (at least 1).
fn sub_ns(tier: &Tier) -> u64 {
    tier.period_ns().div_ceil(SUBWINDOWS).max(1)
}

impl Window {
    /// No token admitted yet; the newest sub-window is the one holding `now`.
    pub(crate) fn empty(tier: Option<&Tier>, now: u64) -> Window {
        Window {
            counts: [0; SLOTS],
            head: tier.map_or(0, |t| now / sub_ns(t)),
        }
    }

    /// Moves the newest sub-window to the one holding `now`, forgetting those that left the
    /// window. `now` earlier than the head changes nothing.
    pub(crate) fn advance(&mut self, tier: &Tier, now: u64) {
        let j = now / sub_ns(tier);
        if j <= self.head {
            return;
        }
        if j - self.head >= SLOTS as u64 {
            self.counts = [0; SLOTS];
        } else {
            for k in self.head + 1..=j {
                self.counts[(k % SLOTS as u64) as usize] = 0;
            }
        }
        self.head = j;
    }

    /// Tokens counted in the window now.
    pub(crate) fn used(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Tokens `tier` can still admit now (never negative).
    pub(crate) fn room(&self, tier: &Tier) -> u64 {
        tier.amount().saturating_sub(self.used())
    }

    /// Counts `n` admitted tokens in the newest sub-window (saturating: a window admits at most
    /// `u32::MAX` tokens, see [`Tier::window`]).
    pub(crate) fn consume(&mut self, n: u64) {
        let c = &mut self.counts[(self.head % SLOTS as u64) as usize];
        *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Takes back `n` unused tokens, newest sub-window first; never below zero.
    pub(crate) fn refund(&mut self, mut n: u64) {
        for back in 0..SLOTS as u64 {
            if n == 0 {
                return;
            }
            let Some(j) = self.head.checked_sub(back) else {
                return;
            };
            let c = &mut self.counts[(j % SLOTS as u64) as usize];
            let take = u64::from(*c).min(n);
            *c -= take as u32;
            n -= take;
        }
    }

    /// The earliest instant (ns) at which `need` more tokens fit: `Some(now)` when they fit
    /// now, `None` when `need > N` (never). `now` is the instant the window was advanced to.
    pub(crate) fn ready_at(&self, tier: &Tier, need: u64, now: u64) -> Option<u64> {
        let n = tier.amount();
        if need > n {
            return None;
        }
        let mut used = self.used();
        if used + need <= n {
            return Some(now);
        }
        // the oldest sub-windows leave one by one, at the start of head + 1, head + 2, ...
        let s = sub_ns(tier);
        for m in 1..=SLOTS as u64 {
            // (saturating: hostile clocks near u64::MAX with 1-ns sub-windows)
            let j = self.head.saturating_add(m);
            let Some(oldest) = j.checked_sub(SLOTS as u64) else {
                continue;
            };
            used = used.saturating_sub(u64::from(self.counts[(oldest % SLOTS as u64) as usize]));
            if used + need <= n {
                return Some(j.saturating_mul(s).max(now));
            }
        }
        // unreachable: after SLOTS steps every counter has left and need ≤ N
        Some(now)
    }

    /// The same counts under a window tier of another length: kept when the sub-window length
    /// is unchanged, else all moved into the sub-window holding `now` (never forgets a token,
    /// may under-admit once more by up to one window).
    pub(crate) fn rescale(&self, old: &Tier, new: &Tier, now: u64) -> Window {
        let mut w = *self;
        if sub_ns(old) == sub_ns(new) {
            w.advance(new, now);
            return w;
        }
        let used = self.used();
        let mut w = Window::empty(Some(new), now);
        w.consume(used);
        w
    }
}

impl<S: Storage> Tree<S> {
    /// The earliest instant at which the window tier of `node` has room for `n` more tokens,
    /// from its counters at the tree's latest `now`: the tree's `now` when they fit already,
    /// `None` when `n` exceeds the window's `N` or the node has no window tier. For estimates
    /// (deadline-aware waits); what is granted is decided by [`Tree::acquire`].
    pub fn window_ready_at(&self, node: NodeId, n: u64) -> Result<Option<Instant>, StaleHandle> {
        let s = self.slot(self.index(node).ok_or(StaleHandle::Removed)?);
        let Some(tier) = s.limits.window() else {
            return Ok(None);
        };
        let now = self.now().as_nanos();
        let mut w = *s.buckets.window();
        w.advance(tier, now);
        Ok(w.ready_at(tier, n, now).map(Instant::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::{Decision, FixedTree, Instant, Limits, Tier};

    const SEC: u64 = 1_000_000_000;

    fn w300() -> Tier {
        Tier::window(300, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn window_full_blocks_until_oldest_sub_window_leaves() {
        let t = Tier::window(10, Duration::from_secs(80)).unwrap(); // sub-windows of 10 s
        let mut w = Window::empty(Some(&t), 0);
        w.advance(&t, 5 * SEC);
        w.consume(4);
        w.advance(&t, 25 * SEC);
        w.consume(6);
        assert_eq!((w.used(), w.room(&t)), (10, 0));
        // the 4 of sub-window 0 leave when sub-window 9 starts (90 s): exact would be 85 s
        assert_eq!(w.ready_at(&t, 1, 25 * SEC), Some(90 * SEC));
        assert_eq!(w.ready_at(&t, 5, 25 * SEC), Some(110 * SEC));
        assert_eq!(w.ready_at(&t, 11, 25 * SEC), None);
        w.advance(&t, 90 * SEC);
        assert_eq!(w.used(), 6);
    }

    #[test]
    fn tree_window_ready_at_reports_when_room_comes_back() {
        let mut tree: FixedTree<2> = FixedTree::new(crate::Config::DEFAULT.with_pieces(1, 1));
        let limits = Limits::new(Tier::window(3, Duration::from_secs(8)).unwrap());
        let leaf = tree
            .insert_leaf(None, limits, 1, Instant::from_nanos(0))
            .unwrap();
        let node = leaf.node();
        assert_eq!(
            tree.window_ready_at(node, 3),
            Ok(Some(Instant::from_nanos(0)))
        );
        for _ in 0..3 {
            let d = tree.acquire(leaf, 1, Instant::from_nanos(SEC / 2)).unwrap();
            assert_eq!(d, Decision::Grant(1));
            tree.settle(leaf, 1, Instant::from_nanos(SEC / 2)).unwrap();
        }
        // sub-windows of 1 s: the three leave when sub-window 9 starts
        assert_eq!(
            tree.window_ready_at(node, 1),
            Ok(Some(Instant::from_secs(9)))
        );
        assert_eq!(
            tree.acquire(leaf, 1, Instant::from_secs(1)).unwrap(),
            Decision::Wait {
                until: Instant::from_secs(9)
            }
        );
        assert_eq!(tree.window_ready_at(node, 4), Ok(None));
    }

    #[test]
    fn window_tier_at_high_rate_is_accepted_by_default_config() {
        // burst 1 is far below 5 ms of 100 000/s, but a window banks nothing a timer can lose
        let mut tree: FixedTree<2> = FixedTree::new(crate::Config::DEFAULT);
        let w = Tier::window(100_000, Duration::from_secs(1)).unwrap();
        let leaf = tree.insert_leaf(None, Limits::new(w), 1, Instant::from_nanos(0));
        assert!(leaf.is_ok(), "{leaf:?}");
        // a bucket with the same burst is refused
        let b = Tier::per_second(100_000).with_burst(1);
        assert!(tree
            .insert_leaf(None, Limits::new(b), 1, Instant::from_nanos(0))
            .is_err());
    }

    #[test]
    fn window_refund_takes_newest_first_and_never_below_zero() {
        let t = w300();
        let mut w = Window::empty(Some(&t), 0);
        w.consume(5);
        w.advance(&t, 8 * SEC);
        w.consume(2);
        w.refund(3);
        assert_eq!(w.used(), 4);
        w.refund(100);
        assert_eq!(w.used(), 0);
    }

    #[test]
    fn window_time_jump_forgets_everything_and_backwards_is_ignored() {
        let t = w300();
        let mut w = Window::empty(Some(&t), 100 * SEC);
        w.consume(300);
        w.advance(&t, 50 * SEC);
        assert_eq!(w.used(), 300);
        w.advance(&t, u64::MAX);
        assert_eq!(w.used(), 0);
        assert_eq!(w.ready_at(&t, 300, u64::MAX), Some(u64::MAX));
    }

    #[test]
    fn window_of_nanoseconds_at_end_of_clock_never_overflows() {
        let t = Tier::window(3, Duration::from_nanos(1)).unwrap();
        for now in [u64::MAX - 20, u64::MAX - 1, u64::MAX] {
            let mut w = Window::empty(Some(&t), now);
            w.consume(u64::MAX);
            w.advance(&t, now);
            assert!(w.ready_at(&t, 3, now).is_some());
            assert_eq!(w.ready_at(&t, 4, now), None);
            w.refund(u64::MAX);
            assert_eq!(w.used(), 0);
        }
        // and through a tree, with hostile timestamps
        let mut tree: FixedTree<2> = FixedTree::new(crate::Config::DEFAULT);
        let leaf = tree
            .insert_leaf(None, Limits::new(t), 1, Instant::from_nanos(u64::MAX - 5))
            .unwrap();
        for now in [u64::MAX - 5, u64::MAX - 1, u64::MAX, 0] {
            let _ = tree.acquire(leaf, 2, Instant::from_nanos(now));
            let _ = tree.settle(leaf, 1, Instant::from_nanos(now));
            let _ = tree.poll_timeout();
            tree.handle_timeout(Instant::from_nanos(now));
        }
    }

    /// Random operations on a small tree mixing window and bucket tiers, limit changes
    /// between kinds, removals and hostile timestamps (backwards, at the end of the clock,
    /// 1-ns windows): nothing panics or overflows (debug builds check arithmetic).
    #[test]
    fn window_random_operations_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m.max(1)
        };
        for _ in 0..200 {
            let mut tree: FixedTree<6> = FixedTree::new(crate::Config::DEFAULT.with_pieces(1, 64));
            let tier = |next: &mut dyn FnMut(u64) -> u64| match next(4) {
                0 => {
                    Tier::window(next(20) as u32, Duration::from_nanos(1 + next(1 << 20))).unwrap()
                }
                1 => Tier::window(u32::MAX, Duration::from_secs(1 + next(100))).unwrap(),
                2 => Tier::per_second(next(1 << 20)),
                _ => Tier::per_period(next(100), Duration::from_millis(1 + next(1000))).unwrap(),
            };
            let root = tree
                .insert_node(
                    None,
                    Limits::new(tier(&mut next)),
                    1,
                    Instant::from_nanos(0),
                )
                .ok();
            let mut leaves = [None; 3];
            let mut now = 0u64;
            for _ in 0..300 {
                now = match next(20) {
                    0 => u64::MAX - next(10),
                    1 => now.saturating_sub(next(1_000_000)),
                    _ => now.saturating_add(next(50_000_000)),
                };
                let t = Instant::from_nanos(now);
                let k = next(3) as usize;
                match next(7) {
                    0 => {
                        let l = Limits::new(tier(&mut next)).and(tier(&mut next)).ok();
                        if let (None, Some(l)) = (leaves[k], l) {
                            leaves[k] = tree.insert_leaf(root, l, 1 + next(4) as u16, t).ok();
                        }
                    }
                    1 => {
                        if let (Some(r), Ok(l)) =
                            (root, Limits::new(tier(&mut next)).and(tier(&mut next)))
                        {
                            let _ = tree.set_limit(r, l, t);
                        }
                    }
                    2 => {
                        if let Some(l) = leaves[k].take() {
                            let _ = tree.remove(l.node(), t);
                        }
                    }
                    3 => {
                        if let Some(l) = leaves[k] {
                            let _ = tree.cancel(l, t);
                        }
                    }
                    4 => tree.handle_timeout(t),
                    _ => {
                        if let Some(l) = leaves[k] {
                            if let Ok(Decision::Grant(n)) = tree.acquire(l, 1 + next(100), t) {
                                let _ = tree.settle(l, next(n + 1), t);
                            }
                        }
                    }
                }
                while tree.poll_ready().is_some() {}
                let _ = tree.poll_timeout();
                if let Some(r) = root {
                    let _ = tree.window_ready_at(r, next(10));
                    let _ = tree.tokens(r, 0);
                }
            }
        }
    }

    #[test]
    fn window_rescaled_to_other_length_keeps_every_token() {
        let old = w300();
        let new = Tier::window(300, Duration::from_secs(10)).unwrap();
        let mut w = Window::empty(Some(&old), 0);
        w.consume(7);
        w.advance(&old, 20 * SEC);
        w.consume(3);
        assert_eq!(w.rescale(&old, &new, 21 * SEC).used(), 10);
        assert_eq!(w.rescale(&old, &old, 21 * SEC).used(), 10);
    }

    /// One leaf asking for `want` at once, re-asking the moment it is granted or told to
    /// wait, for `secs`: the admission instants (one per token).
    fn admissions(limits: Limits, want: u64, secs: u64) -> ([u64; 2048], usize) {
        let mut tree: FixedTree<2> = FixedTree::new(crate::Config::DEFAULT.with_pieces(1, 1));
        let leaf = tree
            .insert_leaf(None, limits, 1, Instant::from_nanos(0))
            .unwrap();
        let (mut at, mut len) = ([0u64; 2048], 0);
        let mut now = 0;
        while now < secs * SEC && len < at.len() {
            match tree.acquire(leaf, want, Instant::from_nanos(now)).unwrap() {
                Decision::Grant(n) => {
                    tree.settle(leaf, n, Instant::from_nanos(now)).unwrap();
                    for _ in 0..n {
                        at[len] = now;
                        len += 1;
                    }
                }
                Decision::Wait { until } => now = until.as_nanos().max(now + 1),
                Decision::Paused => unreachable!("nothing paused"),
            }
        }
        (at, len)
    }

    /// The most admissions in any `[t, t + w)`, over sorted instants.
    fn max_in_any(at: &[u64], w: u64) -> usize {
        let (mut lo, mut best) = (0, 0);
        for hi in 0..at.len() {
            while at[hi] - at[lo] >= w {
                lo += 1;
            }
            best = best.max(hi + 1 - lo);
        }
        best
    }

    #[test]
    fn ten_per_second_and_300_per_minute_window_admits_300_in_any_minute() {
        let limits = Limits::per_second(10).and(w300()).unwrap();
        let (at, len) = admissions(limits, 1, 200);
        let at = &at[..len];
        assert_eq!(max_in_any(at, 60 * SEC), 300);
        // under-admits by at most one sub-window (7.5 s) per window: ≥ 300 every 67.5 s
        assert!(len >= 3 * 300 - 10 * 8, "{len}");
        // the per-second tier still holds inside the window (burst 10, one piece of debt)
        assert!(
            max_in_any(at, SEC) <= 10 + 1 + 10,
            "{}",
            max_in_any(at, SEC)
        );
    }

    #[test]
    fn token_bucket_per_period_admits_600_in_first_minute() {
        // the same limits with a token bucket: what the window tier exists to avoid
        let limits = Limits::per_second(10)
            .and(Tier::per_period(300, Duration::from_secs(60)).unwrap())
            .unwrap();
        let (at, len) = admissions(limits, 1, 60);
        assert!(max_in_any(&at[..len], 60 * SEC) > 500, "{len}");
    }

    #[test]
    fn window_requests_of_several_tokens_never_exceed_n() {
        // pieces of up to 7 tokens under a 50-per-10-s window, no other tier
        let limits = Limits::new(Tier::window(50, Duration::from_secs(10)).unwrap());
        let mut tree: FixedTree<2> = FixedTree::new(crate::Config::DEFAULT.with_pieces(1, 7));
        let leaf = tree
            .insert_leaf(None, limits, 1, Instant::from_nanos(0))
            .unwrap();
        let (mut at, mut len, mut now) = ([0u64; 1024], 0, 0);
        while now < 60 * SEC {
            match tree.acquire(leaf, 7, Instant::from_nanos(now)).unwrap() {
                Decision::Grant(n) => {
                    tree.settle(leaf, n, Instant::from_nanos(now)).unwrap();
                    for _ in 0..n {
                        at[len] = now;
                        len += 1;
                    }
                }
                Decision::Wait { until } => now = until.as_nanos().max(now + 1),
                Decision::Paused => unreachable!(),
            }
        }
        assert!(
            max_in_any(&at[..len], 10 * SEC) <= 50,
            "{}",
            max_in_any(&at[..len], 10 * SEC)
        );
        assert!(len >= 250, "{len}");
    }
}
