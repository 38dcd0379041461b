//! How the tree decides who gets the next piece: a pull scheduler, as Linux HTB dequeues.
//!
//! A node is *eligible* when every one of its tiers may start a piece (holds one whole token,
//! see `bucket`; none is paused) and it has work (a leaf: a waiting piece; an interior node:
//! an eligible child). Each node keeps its eligible children in a *fair queue* (start-time
//! fair queueing, see `fairq`). Whenever the roots' list is not empty, the scheduler walks
//! down from its head, at each node taking the child with the smallest start tag, and grants
//! the leaf it reaches: the piece is spent on every node of the path at once, which may put
//! some in debt or below a whole token (they leave their parent's queue and set a timer for
//! when they hold one again). So:
//!
//! - nothing is spent before the whole path has credit (no node holds a slot for a leaf that
//!   is still waiting elsewhere: the problem bottom-up reservations solve does not arise);
//! - each node shares what it gets among its eligible children by weight, recursively, and a
//!   child capped by its own tiers drops out of the queue, leaving its share to its siblings:
//!   hierarchical weighted max-min, as the oracle `throttle_tests::ideal` computes it;
//! - a child that drops out for a moment (its leaf is being served; its own small burst is
//!   in debt for a moment) keeps its tag and loses nothing.
//!
//! # Held turns
//!
//! Fair queueing only orders the requests that are *waiting*. A task in a copy loop is not
//! waiting between two requests (it is writing), and a runtime's timers fire late (tokio: on a
//! 1 ms grid), so tokens pile up between two timer firings; whoever asked first took them, and
//! weights 4:1 came out 1.09:1 with 8 KiB writes. So a leaf that was just granted keeps its
//! place in its parents' fair queues while it writes and asks again (`Slot::hold`): when the
//! scheduler reaches it and it has not asked yet, the root waits for it instead of serving a
//! sibling whose turn it is not. Bounds, so that a task that stopped or runs late costs little:
//! - only leaves under a parent, with a limit somewhere on their path, hold turns, and a held
//!   turn keeps someone waiting only while some leaf under the same root asks;
//! - the first time it keeps the root waiting it gets a deadline: the shortest
//!   [`Buckets::hold_bound`] on its path, half of `min(rate × round, burst)` (5 ms of the rate
//!   by default), so waiting never makes a bucket overflow;
//! - if a node on the path has banked that bound meanwhile, or the deadline passes, the turn
//!   goes to the next child in tag order, *on the late leaf's account*: it keeps its tags
//!   (`Slot::keep_tag_until`) for [`LATE_MEMORY_ROUNDS`] rounds (100 ms by default) and is
//!   served first when it comes back, until it has caught up. Later than that, it is owed one
//!   piece, as any child that comes back.
//!
//! Timers live in one binary heap keyed by `(wake_at, index)` (`timers`): one timer for the
//! whole tree. Eligible roots and leaves with a grant to collect are FIFO lists (`lists`).

use crate::bucket::Buckets;
use crate::decision::Decision;
use crate::lists::List;
use crate::node::{Kind, LeafState, Link, Slot, HOLD_NONE, HOLD_OPEN, NIL};
use crate::storage::Storage;
use crate::time::Instant;
use crate::tree::Tree;

/// How long (in rounds, 100 ms by default) a leaf that let its held turn go because it was
/// late keeps its fair-queue tags: coming back within that time it is repaid every turn its
/// siblings took on its account. The bound on what lateness can cost a task.
const LATE_MEMORY_ROUNDS: u32 = 10;

impl<S: Storage> Tree<S> {
    /// A leaf started waiting: count it busy on its whole path and re-evaluate each node.
    pub(crate) fn add_busy(&mut self, leaf: u32) {
        self.pending = self.pending.saturating_add(1);
        let mut i = leaf;
        while i != NIL {
            self.slot_mut(i).busy += 1;
            self.refresh(i);
            i = self.slot(i).parent;
        }
    }

    fn sub_busy(&mut self, leaf: u32) {
        self.pending = self.pending.saturating_sub(1);
        let mut i = leaf;
        while i != NIL {
            let s = self.slot_mut(i);
            s.busy = s.busy.saturating_sub(1);
            self.refresh(i);
            i = self.slot(i).parent;
        }
    }

    /// Withdraws a waiting piece or refunds a grant; the leaf ends idle. Returns the refund.
    pub(crate) fn drop_request(&mut self, leaf: u32) -> u64 {
        // a request abandoned: the leaf does not hold its turn either
        let held = core::mem::replace(&mut self.slot_mut(leaf).hold, HOLD_NONE) != HOLD_NONE;
        match self.slot(leaf).state {
            LeafState::Idle => {
                if held {
                    self.refresh_up(leaf);
                }
                0
            }
            LeafState::Pending { .. } => {
                self.slot_mut(leaf).state = LeafState::Idle;
                self.sub_busy(leaf);
                0
            }
            LeafState::Granted { piece } | LeafState::Holding { piece } => {
                self.remove_ready(leaf);
                self.slot_mut(leaf).state = LeafState::Idle;
                self.refund_path(leaf, piece);
                piece
            }
        }
    }

    /// Hands a granted piece to its leaf (shrunk to `want` if the leaf now asks for less).
    pub(crate) fn collect(&mut self, leaf: u32, piece: u64, want: u64) -> Decision {
        self.remove_ready(leaf);
        let n = piece.min(want);
        self.slot_mut(leaf).state = LeafState::Holding { piece: n };
        if n < piece {
            self.refund_path(leaf, piece - n);
            self.run(leaf);
        }
        Decision::Grant(n)
    }

    /// Gives `n` unspent tokens back to every node on the leaf's path.
    pub(crate) fn refund_path(&mut self, leaf: u32, n: u64) {
        let now = self.clock;
        let mut i = leaf;
        while i != NIL {
            let s = self.slot_mut(i);
            s.buckets.refill(&s.limits, now);
            s.buckets.refund(&s.limits, n);
            s.granted = s.granted.saturating_sub(n);
            self.refresh(i);
            i = self.slot(i).parent;
        }
    }

    /// `Wait` until every node on the path has credit, or `Paused`.
    pub(crate) fn wait_decision(&self, leaf: u32) -> Decision {
        let mut until = self.clock;
        let mut i = leaf;
        while i != NIL {
            let s = self.slot(i);
            if Buckets::paused(&s.limits) {
                return Decision::Paused;
            }
            let mut b = s.buckets;
            b.refill(&s.limits, self.clock);
            if !b.sendable(&s.limits) {
                until = until.max(b.recovery(&s.limits).unwrap_or(u64::MAX));
            }
            i = s.parent;
        }
        if until <= self.clock {
            // The whole path has credit, and the turn is held by a sibling between two of its
            // requests (see "Held turns"): the wait ends when it asks again (this leaf is then
            // reported by `poll_ready`) or at the latest when its hold runs out, a timer of the
            // tree.
            until = self
                .poll_timeout()
                .map_or(0, Instant::as_nanos)
                .max(self.clock.saturating_add(1));
        }
        Decision::Wait {
            until: Instant::from_nanos(until),
        }
    }

    /// Fires due timers, then grants pieces until no root is eligible. Grants to leaves other
    /// than `caller` are queued for `poll_ready`.
    pub(crate) fn run(&mut self, caller: u32) {
        self.fire_timers();
        // Each grant takes one waiting piece out (only `acquire` adds one), each released turn
        // one hold (only a grant adds one), and a root whose next turn is held is passed over
        // until every linked root is: this ends.
        let mut held_in_a_row = 0;
        while self.root_head != Link::NONE {
            if self.grant_one(caller) {
                held_in_a_row = 0;
            } else {
                held_in_a_row += 1;
                if held_in_a_row >= self.linked_roots {
                    break;
                }
                let root = self.root_head.get();
                self.move_to_tail(NIL, root);
            }
        }
    }

    /// Re-evaluates every node whose timer is due at the tree's clock.
    #[inline]
    pub(crate) fn fire_timers(&mut self) {
        let now = self.clock;
        while let Some(&(at, top)) = self.storage.heap().first() {
            if at > now {
                break;
            }
            self.heap_remove(top);
            self.refresh_up(top);
        }
    }

    /// Sizes the piece for a leaf asking for `want` (the rule in [`Config`](crate::Config);
    /// it divides only at a node that actually shrinks the piece) and, on the
    /// uncontended fast path, grants it at once. The fast path: when no node anywhere is
    /// eligible (so nobody waits for a node that has credit) and the leaf's whole path has
    /// credit, the scheduler would grant this leaf at once; do that without queueing it. Same
    /// outcome, a fraction of the work, and one walk up the path both sizes and checks.
    /// Call after `fire_timers`. Returns the piece, whether it was granted (if not, nothing
    /// changed but refills), and whether the leaf holds turns (see `holds_turns`).
    pub(crate) fn size_and_try_grant(&mut self, leaf: u32, want: u64) -> (u64, bool, bool) {
        let cap = want.min(self.config.max_piece());
        let sized = cap <= self.config.min_piece();
        let mut unit = cap;
        let mut burst = u64::MAX;
        let mut limited = false;
        let has_parent = self.slot(leaf).parent != NIL;
        let mut credit = self.root_head == Link::NONE;
        let now = self.clock;
        let mut i = leaf;
        let mut child = NIL;
        while i != NIL {
            let s = self.slot_mut(i);
            if !sized {
                // this leaf is not counted busy yet
                unit = bound_unit(unit, s, u64::from(s.busy) + 1);
            }
            burst = burst.min(s.burst_min);
            limited |= !s.limits.is_unlimited();
            if credit {
                s.buckets.refill(&s.limits, now);
                credit = s.buckets.sendable(&s.limits);
                // A node that went into debt while only held turns were below it (nobody
                // waiting) armed no timer, so it is still out of its parent's queue (a root:
                // out of the roots' list) although it has recovered and a sibling branch
                // holds its turn there: not idle. Asking the normal way (`add_busy`
                // re-evaluates the path) lets the fair queue decide whose turn it is; the
                // idle fast path here once granted whoever asked first (weights 10:1 came out
                // 8.3:1 with 8 KiB copy loops and 1 ms of wake-up latency).
                let s = self.slot(i);
                if credit && !s.linked && s.hroot != NIL {
                    let h = s.hroot;
                    credit = h == child && self.slot(h).hchild == NIL;
                }
            }
            child = i;
            i = self.slot(i).parent;
        }
        let piece = if sized {
            cap
        } else {
            unit.max(self.config.min_piece()).min(cap)
        };
        // never more than the smallest burst on the path, whatever the token unit: a request
        // for 30 under "10 per second" gets 10 now, 10 in a second, 10 more after that
        let piece = piece.min(burst.max(1));
        let holds = limited && has_parent; // see `holds_turns`
        if !credit {
            return (piece, false, holds);
        }
        // No node on the path has work (else, having credit, it would be eligible up to its
        // root): spending here cannot reorder anyone. Nodes with ineligible waiters below may
        // go into debt and need their timer. Tags are charged exactly as `grant_one` would
        // (start tag `max(V, F)`), so fair queueing stays exact when contention starts.
        let mut i = leaf;
        let mut child = NIL;
        while i != NIL {
            let s = self.slot_mut(i);
            s.buckets.consume(&s.limits, piece);
            s.granted = s.granted.saturating_add(piece);
            s.pieces = s.pieces.saturating_add(1);
            let (busy, parent) = (s.busy, s.parent);
            if child != NIL {
                let start = self.fq_start(i, child);
                self.fq_charge(i, child, start, piece);
            }
            if busy > 0 {
                self.refresh(i);
            }
            child = i;
            i = parent;
        }
        if holds {
            self.slot_mut(leaf).hold = HOLD_OPEN;
            self.refresh_up(leaf);
        }
        (piece, true, holds)
    }

    /// The same piece rule as at request time (see [`Config`](crate::Config)), applied again
    /// at grant time with today's busy counts; never grows the piece and never goes below
    /// `min_piece`.
    fn shrink_to_unit(&self, leaf: u32, piece: u64) -> u64 {
        let min = self.config.min_piece();
        let mut unit = piece;
        let mut burst = u64::MAX;
        let mut i = leaf;
        while i != NIL {
            let s = self.slot(i);
            unit = bound_unit(unit, s, u64::from(s.busy.max(1)));
            burst = burst.min(s.burst_min);
            i = s.parent;
        }
        unit.max(min).min(piece).min(burst.max(1))
    }

    /// Walks from the head root down the fair queues and grants the leaf it reaches. Returns
    /// false when that leaf is away but holds its turn (nothing granted: the root waits for
    /// it), true otherwise (a grant, or a turn released).
    fn grant_one(&mut self, caller: u32) -> bool {
        let root = self.root_head.get();
        if self.slot(root).busy == 0 {
            // only held turns below, nobody waits: nothing to grant, nobody kept waiting
            return false;
        }
        let mut i = root;
        while self.slot(i).kind == Kind::Interior {
            let s = self.slot(i);
            let c = s.hroot;
            if c == NIL {
                // An eligible interior node always has an eligible child; if that ever broke,
                // re-evaluating the node removes it from its parent's list: still progress.
                debug_assert!(false, "eligible node without eligible child");
                self.refresh_up(i);
                return true;
            }
            i = c;
        }
        let leaf = i;
        let LeafState::Pending { piece, since } = self.slot(leaf).state else {
            // the leaf is between two requests and holds its turn
            return !self.keep_hold(leaf);
        };
        // The piece was sized when the leaf asked; siblings may have become busy since, or a
        // limit changed. Shrink it to today's unit (nothing was spent yet, so this costs
        // nothing): rounds stay short whatever the order in which leaves asked.
        let piece = self.shrink_to_unit(leaf, piece);
        let now = self.clock;
        let waited = now.saturating_sub(since);
        let hold = if self.holds_turns(leaf) {
            HOLD_OPEN
        } else {
            HOLD_NONE
        };
        let s = self.slot_mut(leaf);
        s.state = LeafState::Granted { piece };
        s.hold = hold;
        self.spend_path(leaf, piece, Some(waited));
        if self.slot(root).linked && self.root_head.get() == root {
            self.move_to_tail(NIL, root);
        }
        if leaf != caller {
            self.push_ready(leaf);
        }
        true
    }

    /// Spends a granted piece on every node from `leaf` up to its root and charges it in each
    /// fair queue; `waited`: the piece was waiting (counted busy) for that long.
    fn spend_path(&mut self, leaf: u32, piece: u64, waited: Option<u64>) {
        let now = self.clock;
        if waited.is_some() {
            self.pending = self.pending.saturating_sub(1);
        }
        let mut child = NIL;
        let mut i = leaf;
        while i != NIL {
            let s = self.slot_mut(i);
            s.buckets.refill(&s.limits, now);
            s.buckets.consume(&s.limits, piece);
            if let Some(w) = waited {
                s.busy = s.busy.saturating_sub(1);
                s.waited_ns = s.waited_ns.saturating_add(w);
            }
            s.granted = s.granted.saturating_add(piece);
            s.pieces = s.pieces.saturating_add(1);
            if child != NIL {
                let start = self.slot(child).stag;
                self.fq_charge(i, child, start, piece);
                if self.slot(child).linked {
                    // still eligible: back into the queue with its new start tag
                    self.fq_requeue(i, child);
                }
            }
            // still sendable, still eligible, no timer: nothing to re-evaluate (the common
            // case of a node with credit to spare)
            let s = self.slot(i);
            if !(s.linked && s.heap_pos == NIL && s.has_work() && s.buckets.sendable(&s.limits)) {
                self.refresh(i);
            }
            child = i;
            i = self.slot(i).parent;
        }
    }

    /// The fast path of a leaf that holds its turn and asks again: when no leaf waits anywhere,
    /// it is the first in the fair queue at every level of its path (what the scheduler
    /// would pick) and the path has credit, grant it at once — the outcome of queueing it and running the scheduler,
    /// without either. `None`: not its turn; nothing changed.
    pub(crate) fn try_grant_held(&mut self, leaf: u32, want: u64) -> Option<u64> {
        let s = self.slot(leaf);
        if s.hold == HOLD_NONE || !s.linked {
            return None;
        }
        let mut i = leaf;
        loop {
            let p = self.slot(i).parent;
            if p == NIL {
                break;
            }
            // linked nodes have credit (refill only adds; spending refreshes)
            if self.slot(p).hroot != i || !self.slot(p).linked {
                return None;
            }
            i = p;
        }
        if self.pending > 0 {
            // others wait (under this root or another): the scheduler must run (a grant due,
            // the next held turn's deadline), so take the ordinary path
            return None;
        }
        // the path's root is linked, so this only sizes the piece
        let (piece, granted, holds) = self.size_and_try_grant(leaf, want);
        debug_assert!(!granted, "a linked root rules out the idle fast path");
        let hold = if holds { HOLD_OPEN } else { HOLD_NONE };
        let s = self.slot_mut(leaf);
        s.state = LeafState::Holding { piece };
        s.hold = hold;
        self.spend_path(leaf, piece, None);
        Some(piece)
    }

    /// True when `leaf` keeps its turn between two requests: it has siblings to keep it from
    /// (a parent), and some node from it up to its root has a tier (else nobody ever waits).
    pub(crate) fn holds_turns(&self, leaf: u32) -> bool {
        if self.slot(leaf).parent == NIL {
            return false;
        }
        let mut i = leaf;
        while i != NIL {
            let s = self.slot(i);
            if !s.limits.is_unlimited() {
                return true;
            }
            i = s.parent;
        }
        false
    }

    /// The scheduler reached `leaf`, which holds its turn but has not asked yet. True: it
    /// keeps the turn (the root waits). False: it let the turn go and left the queues.
    ///
    /// The first time a held turn keeps the root waiting it gets its deadline, the shortest
    /// [`Buckets::hold_bound`] on the path. It keeps the turn until then, unless a node on the
    /// path has banked its bound meanwhile (the leaf is late and waiting longer would waste
    /// tokens): then the others go ahead *on its account*, and it keeps its fair-queue tags
    /// until the deadline, so that when it comes back it is served first until it has caught
    /// up. After the deadline it is owed one piece at most, as any child that comes back.
    fn keep_hold(&mut self, leaf: u32) -> bool {
        let now = self.clock;
        let hold = self.slot(leaf).hold;
        let round = self.config.round_ns();
        let memory = u64::from(LATE_MEMORY_ROUNDS).saturating_mul(round);
        if hold != HOLD_OPEN && hold <= now {
            // late beyond its hold: the others go ahead on its account
            return self.release_turn(leaf, hold.saturating_add(memory));
        }
        let mut bound: Option<(u64, bool)> = None;
        let mut i = leaf;
        while i != NIL {
            let s = self.slot(i);
            if !s.limits.is_unlimited() {
                let mut b = s.buckets;
                b.refill(&s.limits, now);
                if let Some((h, banked)) = b.hold_bound(&s.limits, round) {
                    bound = Some(match bound {
                        None => (h, banked),
                        Some((x, y)) => (x.min(h), y || banked),
                    });
                }
            }
            i = s.parent;
        }
        let Some((window, banked)) = bound else {
            return self.release_turn(leaf, now);
        };
        let until = if hold == HOLD_OPEN {
            now.saturating_add(window)
        } else {
            hold
        };
        if until <= now || until == HOLD_OPEN {
            return self.release_turn(leaf, now);
        }
        if banked {
            return self.release_turn(leaf, until.saturating_add(memory));
        }
        if hold == HOLD_OPEN {
            self.slot_mut(leaf).hold = until;
            self.refresh(leaf);
        }
        true
    }

    /// The leaf stops holding its turn; it and its ancestors keep their fair-queue tags until
    /// `keep_until` (nothing kept when that is not in the future). Returns false (no grant).
    fn release_turn(&mut self, leaf: u32, keep_until: u64) -> bool {
        if keep_until > self.clock {
            let mut i = leaf;
            while i != NIL {
                let s = self.slot_mut(i);
                s.keep_tag_until = s.keep_tag_until.max(keep_until);
                i = s.parent;
            }
        }
        self.slot_mut(leaf).hold = HOLD_NONE;
        self.refresh_up(leaf);
        false
    }

    /// Re-evaluates one node at the tree's clock: refills, sets or clears its timer, and links
    /// or unlinks it in its parent's active list. Returns true when its eligibility changed.
    pub(crate) fn refresh(&mut self, i: u32) -> bool {
        let now = self.clock;
        let s = self.slot_mut(i);
        s.buckets.refill(&s.limits, now);
        if s.hold != HOLD_OPEN && s.hold <= now {
            s.hold = HOLD_NONE;
        }
        let sendable = s.buckets.sendable(&s.limits);
        // A recovery that cannot lie in the future (the clock is at `u64::MAX`, time cannot
        // advance) arms nothing: otherwise `fire_timers` would re-fire it forever.
        // No timer when nobody waits below, even with held turns below: a leaf that asks
        // re-evaluates its path then (see `size_and_try_grant`).
        let mut timer = if !sendable && s.busy > 0 {
            s.buckets.recovery(&s.limits).filter(|&at| at > now)
        } else {
            None
        };
        // a turn held while away ends at its deadline
        if s.hold != HOLD_OPEN
            && s.hold != HOLD_NONE
            && !matches!(s.state, LeafState::Pending { .. })
        {
            timer = Some(timer.map_or(s.hold, |t| t.min(s.hold)));
        }
        let eligible = sendable && s.has_work();
        let (linked, parent) = (s.linked, s.parent);
        match timer {
            Some(at) => self.heap_set(i, at),
            None => self.heap_remove(i),
        }
        if eligible == linked {
            return false;
        }
        if eligible {
            self.link(parent, i);
        } else {
            self.unlink(parent, i);
        }
        true
    }

    /// Re-evaluates a node and then its ancestors while eligibility keeps changing.
    pub(crate) fn refresh_up(&mut self, mut i: u32) {
        while i != NIL && self.refresh(i) {
            i = self.slot(i).parent;
        }
    }

    // ---- eligibility: the parent's fair queue, or for roots a plain FIFO ----

    fn link(&mut self, p: u32, c: u32) {
        self.slot_mut(c).linked = true;
        if p != NIL {
            self.fq_insert(p, c);
            return;
        }
        self.linked_roots += 1;
        self.list_push(List::Roots, c);
    }

    pub(crate) fn unlink(&mut self, p: u32, c: u32) {
        self.slot_mut(c).linked = false;
        if p != NIL {
            self.fq_remove(p, c);
            return;
        }
        self.linked_roots -= 1;
        self.list_remove(List::Roots, c);
    }

    /// Round robin between independent roots (they share nothing; this only keeps the order
    /// of grants at one instant fair).
    fn move_to_tail(&mut self, p: u32, c: u32) {
        if self.root_tail.get() == c {
            return;
        }
        self.unlink(p, c);
        self.link(p, c);
    }

    // ---- the ready list: leaves granted by someone else's call ----

    fn push_ready(&mut self, i: u32) {
        if self.slot(i).in_ready {
            return;
        }
        self.slot_mut(i).in_ready = true;
        self.list_push(List::Ready, i);
    }

    pub(crate) fn remove_ready(&mut self, i: u32) {
        if !self.slot(i).in_ready {
            return;
        }
        self.slot_mut(i).in_ready = false;
        self.list_remove(List::Ready, i);
    }
}

/// One node's bound on a piece: its smallest burst, and its round split among `busy` leaves.
/// Divides only when that split actually shrinks the piece.
#[inline]
fn bound_unit(unit: u64, s: &Slot, busy: u64) -> u64 {
    let unit = unit.min(s.burst_min);
    if s.round_tokens != u64::MAX
        && u128::from(s.round_tokens) < u128::from(unit) * u128::from(busy)
    {
        s.round_tokens / busy
    } else {
        unit
    }
}
