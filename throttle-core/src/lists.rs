//! The tree's two intrusive FIFO lists, threaded through the slots: the *roots' list* (roots
//! that are eligible, served round robin by the scheduler) and the *ready list* (leaves granted
//! by someone else's call, handed out by `Tree::poll_ready`). One implementation for both: a
//! [`List`] picks the pair of link fields in each slot and the head and tail in the tree.
//! Membership flags (`Slot::linked`, `Slot::in_ready`) are the callers' business.

use crate::node::{Link, Slot, NIL};
use crate::storage::Storage;
use crate::tree::Tree;

/// Which list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum List {
    /// Eligible roots (`Slot::prev`/`next`; `next` also chains free slots, never both at once).
    Roots,
    /// Leaves with a grant to collect (`Slot::ready_prev`/`ready_next`).
    Ready,
}

/// `(prev, next)` of `s` in `list`.
fn links(s: &mut Slot, list: List) -> (&mut u32, &mut u32) {
    match list {
        List::Roots => (&mut s.prev, &mut s.next),
        List::Ready => (&mut s.ready_prev, &mut s.ready_next),
    }
}

impl<S: Storage> Tree<S> {
    /// `(head, tail)` of `list`.
    fn ends(&mut self, list: List) -> (&mut Link, &mut Link) {
        match list {
            List::Roots => (&mut self.root_head, &mut self.root_tail),
            List::Ready => (&mut self.ready_head, &mut self.ready_tail),
        }
    }

    /// Appends `i` (not in `list`) at the tail.
    pub(crate) fn list_push(&mut self, list: List, i: u32) {
        let tail = self.ends(list).1.get();
        let (prev, next) = links(self.slot_mut(i), list);
        *prev = tail;
        *next = NIL;
        if tail == NIL {
            *self.ends(list).0 = Link::to(i);
        } else {
            *links(self.slot_mut(tail), list).1 = i;
        }
        *self.ends(list).1 = Link::to(i);
    }

    /// Takes `i` (in `list`) out, wherever it is.
    pub(crate) fn list_remove(&mut self, list: List, i: u32) {
        let (prev, next) = links(self.slot_mut(i), list);
        let (p, n) = (*prev, *next);
        *prev = NIL;
        *next = NIL;
        if p == NIL {
            *self.ends(list).0 = Link::to(n);
        } else {
            *links(self.slot_mut(p), list).1 = n;
        }
        if n == NIL {
            *self.ends(list).1 = Link::to(p);
        } else {
            *links(self.slot_mut(n), list).0 = p;
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    extern crate alloc;
    use super::*;
    use crate::{Config, Instant, Limits, VecTree};
    use alloc::vec::Vec;

    /// The members of `list` from head to tail, checking the backward links on the way.
    fn members(tree: &mut VecTree, list: List) -> Vec<u32> {
        let mut out = Vec::new();
        let (mut i, mut before) = (tree.ends(list).0.get(), NIL);
        while i != NIL {
            let (prev, next) = links(tree.slot_mut(i), list);
            assert_eq!(*prev, before, "backward link of {i}");
            out.push(i);
            before = i;
            i = *next;
        }
        assert_eq!(tree.ends(list).1.get(), before, "tail");
        out
    }

    #[test]
    fn push_and_remove_anywhere_keep_fifo_order_in_both_lists() {
        let mut tree = VecTree::new(Config::DEFAULT);
        let ids: Vec<u32> = (0..5)
            .map(|_| {
                tree.insert_node(None, Limits::UNLIMITED, 1, Instant::ZERO)
                    .unwrap()
                    .index
            })
            .collect();
        // the roots are not eligible (no work): both lists start empty
        assert!(members(&mut tree, List::Roots).is_empty());
        for &i in &ids {
            tree.list_push(List::Ready, i);
        }
        tree.list_push(List::Roots, ids[4]);
        tree.list_push(List::Roots, ids[0]);
        assert_eq!(members(&mut tree, List::Ready), ids);
        tree.list_remove(List::Ready, ids[2]); // middle
        tree.list_remove(List::Ready, ids[0]); // head
        tree.list_remove(List::Ready, ids[4]); // tail
        assert_eq!(members(&mut tree, List::Ready), [ids[1], ids[3]]);
        // the other list is untouched
        assert_eq!(members(&mut tree, List::Roots), [ids[4], ids[0]]);
        tree.list_remove(List::Ready, ids[1]);
        tree.list_remove(List::Ready, ids[3]);
        assert!(members(&mut tree, List::Ready).is_empty());
        tree.list_push(List::Ready, ids[3]);
        assert_eq!(members(&mut tree, List::Ready), [ids[3]]);
    }
}
