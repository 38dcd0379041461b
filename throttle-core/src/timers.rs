//! The tree's one timer: a binary min-heap of `(wake_at, slot index)` entries, at most one per
//! node (a node in debt waits for its recovery, a leaf for the end of its held turn). The entry
//! carries its key, so sifting never touches the (large) slots except to update
//! `Slot::heap_pos`, the entry's position, which makes moving or removing a node's entry
//! O(log n). Ties on `wake_at` go to the lower index. The driver sleeps until the first entry
//! (`Tree::poll_timeout`); `Tree::fire_timers` (in `sched`) pops what is due.

use crate::node::NIL;
use crate::storage::Storage;
use crate::tree::Tree;

impl<S: Storage> Tree<S> {
    /// Sets (or moves) node `i`'s wake-up instant to `at`.
    pub(crate) fn heap_set(&mut self, i: u32, at: u64) {
        let pos = self.slot(i).heap_pos;
        if pos == NIL {
            let pos = self.storage.heap().len() as u32;
            self.storage.heap_push((at, i));
            self.slot_mut(i).heap_pos = pos;
            self.sift_up(pos);
        } else if self.storage.heap()[pos as usize].0 != at {
            self.storage.heap_mut()[pos as usize].0 = at;
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        }
    }

    /// Takes node `i`'s wake-up out, if it has one.
    #[inline]
    pub(crate) fn heap_remove(&mut self, i: u32) {
        if self.slot(i).heap_pos != NIL {
            self.heap_remove_at(i);
        }
    }

    fn heap_remove_at(&mut self, i: u32) {
        let pos = self.slot(i).heap_pos;
        self.slot_mut(i).heap_pos = NIL;
        let Some(last) = self.storage.heap_pop() else {
            return;
        };
        if last.1 == i {
            return;
        }
        self.storage.heap_mut()[pos as usize] = last;
        self.slot_mut(last.1).heap_pos = pos;
        let pos = self.sift_up(pos);
        self.sift_down(pos);
    }

    /// Moves the entry at `pos` up to its place; returns where it ended.
    fn sift_up(&mut self, mut pos: u32) -> u32 {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let heap = self.storage.heap();
            if heap[pos as usize] >= heap[parent as usize] {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
        pos
    }

    fn sift_down(&mut self, mut pos: u32) {
        loop {
            let heap = self.storage.heap();
            let len = heap.len() as u32;
            let l = 2 * pos + 1;
            if l >= len {
                break;
            }
            let r = l + 1;
            let c = if r < len && heap[r as usize] < heap[l as usize] {
                r
            } else {
                l
            };
            if heap[c as usize] >= heap[pos as usize] {
                break;
            }
            self.swap(pos, c);
            pos = c;
        }
    }

    fn swap(&mut self, a: u32, b: u32) {
        let heap = self.storage.heap_mut();
        // by hand, not `slice::swap`: that one goes through `ptr::swap` (a == b may overlap),
        // which links a 1.5 KB `memmove` into a firmware for two 16-byte entries
        let (ea, eb) = (heap[a as usize], heap[b as usize]);
        heap[a as usize] = eb;
        heap[b as usize] = ea;
        let (x, y) = (eb.1, ea.1);
        self.slot_mut(x).heap_pos = a;
        self.slot_mut(y).heap_pos = b;
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    extern crate alloc;
    use crate::node::NIL;
    use crate::storage::sealed::Sealed;
    use crate::{Config, Instant, Limits, VecTree};
    use alloc::vec::Vec;

    /// Heap order, and every node's `heap_pos` pointing at its own entry.
    fn check(tree: &VecTree) {
        let heap = tree.storage.heap();
        for (pos, &(_, i)) in heap.iter().enumerate() {
            assert_eq!(tree.slot(i).heap_pos, pos as u32, "position of {i}");
            if pos > 0 {
                assert!(heap[(pos - 1) / 2] <= heap[pos], "heap order at {pos}");
            }
        }
    }

    #[test]
    fn sets_moves_and_removes_keep_order_and_positions() {
        let mut tree = VecTree::new(Config::DEFAULT);
        let ids: Vec<u32> = (0..64)
            .map(|_| {
                tree.insert_node(None, Limits::UNLIMITED, 1, Instant::ZERO)
                    .unwrap()
                    .index
            })
            .collect();
        let mut x = 7u64;
        let mut rand = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..2000 {
            let i = ids[(rand() % 64) as usize];
            match rand() % 3 {
                0 => tree.heap_remove(i),
                _ => tree.heap_set(i, rand() % 50),
            }
            check(&tree);
        }
        // popping in order: by instant, then index
        let mut last = (0, 0);
        while let Some(&first) = tree.storage.heap().first() {
            assert!(first >= last);
            last = first;
            tree.heap_remove(first.1);
            assert_eq!(tree.slot(first.1).heap_pos, NIL);
            check(&tree);
        }
    }
}
