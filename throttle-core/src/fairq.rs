//! Start-time fair queueing among the eligible children of one node.
//!
//! Every node keeps a virtual time `V`; every child a finish tag `F` (virtual work done so far,
//! in tokens × 2^31 / weight). A child that becomes eligible gets the start tag
//! `S = max(V − its last piece, F)` (the tag its last piece cost); the node
//! serves the eligible child with the smallest `S`, then sets `V = max(V, S)` and
//! `F = S + piece × 2^31 / weight` (start-time fair queueing, Goyal et al. 1996, with a
//! one-piece memory). So:
//! - busy children share in proportion to their weights, in tokens, whatever their piece sizes;
//! - a child that drops out for a moment (its leaf is being served, or its own tiers are in
//!   debt for a moment: a child capped near its share with a small burst) comes back with the
//!   service it is owed, up to one piece, and is served first: it loses nothing;
//! - a child away for long comes back one piece behind `V` at most: it cannot hoard credit
//!   while idle or capped;
//! - a new child starts with `F = V` (owed nothing), and equal start tags are served first
//!   come, first served: a child re-created for every request (reusing the slot just freed)
//!   cannot jump ahead of siblings that waited at the same tag. (Ties once went to the lower
//!   slot index, and one such requester took a whole 100/s limit from nine others.)
//!
//! Tags are `u64` in serial-number order: `V` grows without bound and wraps, and tags are
//! compared by their wrapping difference ([`tag_before`]), which is right while the live tags of
//! one queue lie within `2^63` of each other: they lie within a few pieces of `V`, and a piece
//! is charged at most [`MAX_CHARGE`]. A child away while `V` wrapped around keeps a finish tag
//! that looks up to one piece ahead at worst: it waits one piece longer, once.
//!
//! The eligible children of a node form an intrusive pairing heap keyed by `(S, arrival)`:
//! links live in the slots (`hchild`, `hnext`, `hprev`), so no storage is needed beyond the
//! arena. Insert is O(1), removing the minimum or any member O(log n) amortized.

use crate::node::NIL;
use crate::storage::Storage;
use crate::tree::Tree;

/// Largest tag cost of one piece: a larger piece is charged this much. Tags are `u64` that
/// wrap (see [`tag_before`]), and every comparison between live tags needs them within
/// `2^63` of each other: the live tags of one queue lie within a few pieces of its `V`, so
/// a cap of `2^61` keeps them there. Below it the charge is exact: pieces up to `2^30`
/// tokens at weight 1 (1 GiB of bytes), larger at higher weights.
pub(crate) const MAX_CHARGE: u64 = 1 << 61;

/// `a` comes before `b` in the wrapping order of tags (serial-number arithmetic, as TCP
/// compares sequence numbers): `V` grows without bound, a `u64` tag wraps, and two live
/// tags are never `2^63` apart.
#[inline]
pub(crate) fn tag_before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// `2^31 / weight`: the tag cost of one token for a child of this weight (a `u32`: the
/// ratio between two weights is still exact to 1 part in 2^15 at worst).
pub(crate) fn tag_step(weight: u16) -> u32 {
    (1u32 << 31) / u32::from(weight.max(1))
}

impl<S: Storage> Tree<S> {
    /// The start tag child `c` of `p` gets when it becomes eligible now: `max(V − its last
    /// piece, F)`. The one rule, for a child entering the fair queue and for a piece granted
    /// on the fast path alike.
    pub(crate) fn fq_start(&self, p: u32, c: u32) -> u64 {
        let s = self.slot(c);
        let v = self.slot(p).vtime;
        // F − V. F is at most one piece ahead of V (it was S + charge with S ≤ V, and V only
        // grows): a tag further ahead is one left behind by a whole wrap of V while the child
        // was away, which is far behind, not ahead.
        let ahead = s.ftag.wrapping_sub(v) as i64;
        let plausible = ahead <= s.last_charge as i64;
        if self.clock < s.keep_tag_until && plausible {
            // it let a held turn go while it was late: its siblings went ahead on its account
            // and it catches up now (see `sched`, "Held turns")
            return s.ftag;
        }
        // max(F, V − its last piece)
        if plausible && ahead >= -(s.last_charge as i64) {
            s.ftag
        } else {
            v.wrapping_sub(s.last_charge)
        }
    }

    /// Gives child `c` of `p` its start tag ([`Tree::fq_start`]) and its arrival number.
    fn fq_stamp(&mut self, p: u32, c: u32) {
        let start = self.fq_start(p, c);
        let seq = self.fq_seq;
        self.fq_seq = seq.wrapping_add(1);
        let s = self.slot_mut(c);
        s.stag = start;
        s.seq = seq;
    }

    /// Makes child `c` of `p` eligible: start tag [`Tree::fq_start`], into `p`'s heap.
    pub(crate) fn fq_insert(&mut self, p: u32, c: u32) {
        self.fq_stamp(p, c);
        let s = self.slot_mut(c);
        s.hchild = NIL;
        s.hnext = NIL;
        s.hprev = NIL;
        let root = self.slot(p).hroot;
        let root = self.fq_meld(root, c);
        self.slot_mut(p).hroot = root;
    }

    /// Puts child `c`, in `p`'s heap, back at its new start tag after it was charged. The
    /// only child in the heap simply takes its new tag.
    pub(crate) fn fq_requeue(&mut self, p: u32, c: u32) {
        if self.slot(p).hroot == c && self.slot(c).hchild == NIL {
            self.fq_stamp(p, c);
            return;
        }
        self.fq_remove(p, c);
        self.fq_insert(p, c);
    }

    /// Takes child `c` out of `p`'s heap.
    pub(crate) fn fq_remove(&mut self, p: u32, c: u32) {
        let kids = self.slot(c).hchild;
        if self.slot(p).hroot == c {
            let root = self.fq_merge_pairs(kids);
            self.slot_mut(p).hroot = root;
        } else {
            let (prev, next) = (self.slot(c).hprev, self.slot(c).hnext);
            if prev != NIL {
                if self.slot(prev).hchild == c {
                    self.slot_mut(prev).hchild = next;
                } else {
                    self.slot_mut(prev).hnext = next;
                }
            }
            if next != NIL {
                self.slot_mut(next).hprev = prev;
            }
            let sub = self.fq_merge_pairs(kids);
            let root = self.slot(p).hroot;
            let root = self.fq_meld(root, sub);
            self.slot_mut(p).hroot = root;
        }
        let s = self.slot_mut(c);
        s.hchild = NIL;
        s.hnext = NIL;
        s.hprev = NIL;
    }

    /// Charges a piece served through child `c` of `p` (start tag `start`).
    pub(crate) fn fq_charge(&mut self, p: u32, c: u32, start: u64, piece: u64) {
        let pn = self.slot_mut(p);
        if tag_before(pn.vtime, start) {
            pn.vtime = start;
        }
        let s = self.slot_mut(c);
        s.last_charge = piece.saturating_mul(u64::from(s.tag_step)).min(MAX_CHARGE);
        s.ftag = start.wrapping_add(s.last_charge);
    }

    fn fq_less(&self, a: u32, b: u32) -> bool {
        let (x, y) = (self.slot(a), self.slot(b));
        tag_before(x.stag, y.stag) || (x.stag == y.stag && (x.seq.wrapping_sub(y.seq) as i32) < 0)
    }

    /// Melds two heap roots (each without siblings); returns the new root.
    fn fq_meld(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        let (top, sub) = if self.fq_less(b, a) { (b, a) } else { (a, b) };
        let first = self.slot(top).hchild;
        let s = self.slot_mut(sub);
        s.hnext = first;
        s.hprev = top;
        if first != NIL {
            self.slot_mut(first).hprev = sub;
        }
        self.slot_mut(top).hchild = sub;
        top
    }

    /// Two-pass pairing of the sibling list starting at `first`; returns one root.
    fn fq_merge_pairs(&mut self, first: u32) -> u32 {
        // pass 1, left to right: meld pairs; stack the results through `hnext` (reversed)
        let mut stack = NIL;
        let mut cur = first;
        while cur != NIL {
            let a = cur;
            let b = self.slot(a).hnext;
            cur = if b == NIL { NIL } else { self.slot(b).hnext };
            for x in [a, b] {
                if x != NIL {
                    let s = self.slot_mut(x);
                    s.hnext = NIL;
                    s.hprev = NIL;
                }
            }
            let m = self.fq_meld(a, b);
            self.slot_mut(m).hnext = stack;
            stack = m;
        }
        // pass 2, right to left: meld everything into one tree
        let mut root = NIL;
        while stack != NIL {
            let s = stack;
            stack = self.slot(s).hnext;
            self.slot_mut(s).hnext = NIL;
            root = self.fq_meld(root, s);
        }
        if root != NIL {
            let r = self.slot_mut(root);
            r.hnext = NIL;
            r.hprev = NIL;
        }
        root
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    extern crate alloc;
    use crate::{Config, Instant, Limits, VecTree};
    use alloc::vec::Vec;

    #[test]
    fn heap_pops_in_tag_order_after_random_removals() {
        let mut tree = VecTree::new(Config::DEFAULT);
        let p = tree
            .insert_node(None, Limits::UNLIMITED, 1, Instant::ZERO)
            .unwrap()
            .index;
        let mut kids = Vec::new();
        for _ in 0..200 {
            kids.push(
                tree.insert_node(None, Limits::UNLIMITED, 1, Instant::ZERO)
                    .unwrap()
                    .index,
            );
        }
        // pseudo-random tags, some equal
        let mut x = 12345u64;
        for &k in &kids {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            tree.slot_mut(k).ftag = x >> 58;
            tree.fq_insert(p, k);
        }
        for &k in kids.iter().step_by(3) {
            tree.fq_remove(p, k);
        }
        let mut last = (0u64, 0u32);
        let mut n = 0;
        while tree.slot(p).hroot != super::NIL {
            let r = tree.slot(p).hroot;
            let key = (tree.slot(r).stag, tree.slot(r).seq);
            assert!(key >= last, "{key:?} after {last:?}");
            last = key;
            tree.fq_remove(p, r);
            n += 1;
        }
        assert_eq!(n, 200 - 67);
    }
}
