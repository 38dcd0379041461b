//! Where the nodes live: a fixed-capacity arena (no allocation, for MCUs and `static`s) or a
//! growable one (`alloc` feature). Both are chosen once, when the tree is built; the decision
//! path never allocates either way.

use crate::node::Slot;

/// Node storage for a [`Tree`](crate::Tree): [`Fixed`] or, with the `alloc` feature,
/// `Growable`. Sealed: the tree relies on its exact behaviour.
pub trait Storage: sealed::Sealed {
    /// The matching per-slot waiter table of [`Shared`](crate::shared::Shared).
    #[doc(hidden)]
    type Waiters: sealed::Waiters;
}

pub(crate) mod sealed {
    use crate::node::Slot;

    /// The operations the tree needs: a vector of slots and a vector of timer-heap entries
    /// `(wake_at, slot index)` whose capacity is at least the slots'. The key sits in the
    /// entry so that sifting never touches the (large) slots.
    pub trait Sealed {
        fn slots(&self) -> &[Slot];
        fn slots_mut(&mut self) -> &mut [Slot];
        /// Appends a slot; false when full.
        fn push_slot(&mut self, slot: Slot) -> bool;
        fn heap(&self) -> &[(u64, u32)];
        fn heap_mut(&mut self) -> &mut [(u64, u32)];
        /// Never fails while the heap holds fewer entries than there are slots.
        fn heap_push(&mut self, v: (u64, u32));
        fn heap_pop(&mut self) -> Option<(u64, u32)>;
        fn capacity(&self) -> usize;
    }

    /// Per-slot waiter records for [`Shared`](crate::shared::Shared): an inline array for
    /// `Fixed<N>`, a vector for `Growable` (grown in `insert_*`, never on the decision path).
    pub trait Waiters: Sized {
        /// No waiters (const, so a `Shared` can live in a `static`).
        const EMPTY: Self;
        /// Makes room for slot indexes `< len` (may allocate; only called on insert).
        fn fit(&mut self, len: usize);
        fn get(&self, i: u32) -> Option<&crate::shared::Waiter>;
        fn get_mut(&mut self, i: u32) -> Option<&mut crate::shared::Waiter>;
    }
}

/// Room for exactly `N` nodes, inline: no allocator needed. A tree of `Fixed<N>` can live in a
/// `static` (see [`Tree::with_storage`](crate::Tree::with_storage)).
#[derive(Debug)]
pub struct Fixed<const N: usize> {
    slots: heapless::Vec<Slot, N>,
    heap: heapless::Vec<(u64, u32), N>,
}

impl<const N: usize> Fixed<N> {
    /// Empty storage for `N` nodes.
    pub const fn new() -> Self {
        Fixed {
            slots: heapless::Vec::new(),
            heap: heapless::Vec::new(),
        }
    }
}

impl<const N: usize> Default for Fixed<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Storage for Fixed<N> {
    type Waiters = [crate::shared::Waiter; N];
}

impl<const N: usize> sealed::Waiters for [crate::shared::Waiter; N] {
    const EMPTY: Self = [const { crate::shared::Waiter::NONE }; N];
    fn fit(&mut self, _len: usize) {}
    fn get(&self, i: u32) -> Option<&crate::shared::Waiter> {
        <[_]>::get(self, i as usize)
    }
    fn get_mut(&mut self, i: u32) -> Option<&mut crate::shared::Waiter> {
        <[_]>::get_mut(self, i as usize)
    }
}

impl<const N: usize> sealed::Sealed for Fixed<N> {
    fn slots(&self) -> &[Slot] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }
    fn push_slot(&mut self, slot: Slot) -> bool {
        self.slots.push(slot).is_ok()
    }
    fn heap(&self) -> &[(u64, u32)] {
        &self.heap
    }
    fn heap_mut(&mut self) -> &mut [(u64, u32)] {
        &mut self.heap
    }
    fn heap_push(&mut self, v: (u64, u32)) {
        // The heap holds at most one entry per slot, and both have capacity N.
        let _ = self.heap.push(v);
    }
    fn heap_pop(&mut self) -> Option<(u64, u32)> {
        self.heap.pop()
    }
    fn capacity(&self) -> usize {
        N
    }
}

#[cfg(feature = "alloc")]
pub use growable::Growable;

#[cfg(feature = "alloc")]
mod growable {
    extern crate alloc;
    use super::{sealed, Slot, Storage};
    use alloc::vec::Vec;

    /// Storage that grows as nodes are inserted (allocates only in `insert_*`).
    #[derive(Debug, Default)]
    pub struct Growable {
        slots: Vec<Slot>,
        heap: Vec<(u64, u32)>,
    }

    impl Growable {
        /// Empty storage.
        pub const fn new() -> Self {
            Growable {
                slots: Vec::new(),
                heap: Vec::new(),
            }
        }

        /// Empty storage with room for `n` nodes before it reallocates.
        pub fn with_capacity(n: usize) -> Self {
            Growable {
                slots: Vec::with_capacity(n),
                heap: Vec::with_capacity(n),
            }
        }
    }

    impl Storage for Growable {
        type Waiters = Vec<crate::shared::Waiter>;
    }

    impl sealed::Waiters for Vec<crate::shared::Waiter> {
        const EMPTY: Self = Vec::new();
        fn fit(&mut self, len: usize) {
            if self.len() < len {
                self.resize_with(len, || crate::shared::Waiter::NONE);
            }
        }
        fn get(&self, i: u32) -> Option<&crate::shared::Waiter> {
            <[_]>::get(self, i as usize)
        }
        fn get_mut(&mut self, i: u32) -> Option<&mut crate::shared::Waiter> {
            <[_]>::get_mut(self, i as usize)
        }
    }

    impl sealed::Sealed for Growable {
        fn slots(&self) -> &[Slot] {
            &self.slots
        }
        fn slots_mut(&mut self) -> &mut [Slot] {
            &mut self.slots
        }
        fn push_slot(&mut self, slot: Slot) -> bool {
            if self.slots.len() >= super::super::tree::MAX_NODES {
                return false;
            }
            self.slots.push(slot);
            // keep the heap's capacity ≥ the slots' so heap_push never reallocates on the
            // decision path
            self.heap
                .reserve(self.slots.len().saturating_sub(self.heap.len()));
            true
        }
        fn heap(&self) -> &[(u64, u32)] {
            &self.heap
        }
        fn heap_mut(&mut self) -> &mut [(u64, u32)] {
            &mut self.heap
        }
        fn heap_push(&mut self, v: (u64, u32)) {
            self.heap.push(v);
        }
        fn heap_pop(&mut self) -> Option<(u64, u32)> {
            self.heap.pop()
        }
        fn capacity(&self) -> usize {
            super::super::tree::MAX_NODES
        }
    }
}
