//! One tree shared by many tasks: the [`Tree`] behind a [`Lock`], plus the change notice that
//! wakes exactly the waiters a change concerns.
//!
//! ```text
//!   task (one per leaf)             Shared<S, L>                         runtime timer
//!   ───────────────────             ───────────────────────────────      ─────────────
//!   poll_acquire(leaf, want) ──▶ lock { tree.acquire
//!                                       register waker (Wait/Paused)
//!                                       wake leaves tree.poll_ready() names
//!                                       keep ONE waiter on the tree timer }
//!        ◀── Step::Grant(n) | Sleep { until: Some(t) } ─────────────────▶ sleep until t
//!                          | Sleep { until: None }      (sleep until woken)
//! ```
//!
//! **One timer for the whole tree.** The tree knows the earliest instant at which anything can
//! be granted ([`Tree::poll_timeout`]). Exactly one sleeping waiter, the *timer holder*, is
//! told to sleep until then ([`Step::Sleep`] with `until: Some`); every other waiter sleeps
//! until it is woken. When the holder's timer fires it polls again, which runs the scheduler:
//! the leaves that get a piece are woken (they are in [`Tree::poll_ready`]) and the holder
//! re-arms. So a tick costs O(woken) wake-ups, not one per waiter: 10 000 waiting connections
//! do not all wake every round.
//!
//! **Change notice.** Every operation ([`Shared::settle`], [`Shared::cancel`],
//! [`Shared::set_limit`], [`Shared::remove`], another leaf's acquire) ends the same way, still
//! under the lock: wake every leaf the tree granted a piece to, and if the tree's next timer
//! moved earlier (a refund, a faster limit), wake the holder so it re-arms. A waiter whose
//! position did not change is not woken: no thundering herd on a limit change, and no lost
//! wake-up either, because the waker is registered under the same lock that publishes the
//! change. The tree's [`generation`](Shared::generation) counts structural and limit changes
//! for drivers that cache anything derived from limits.
//!
//! **Hand-off.** When the holder is granted, cancels or is removed, the role passes to the
//! longest-registered waiter, which is woken to arm its timer. A woken holder that has not yet
//! polled keeps the role (it is on its way).
//!
//! **Or a driver task.** The hand-off relies on every waiting task either polling again or
//! cancelling. A runtime where a waiting future can be dropped without the adapter hearing of
//! it (a `poll_write` that returned `Pending` and is never polled again: `select!`, a timeout
//! around `write_all`) could leave the role with a task that never polls, and every other
//! waiter would sleep on. Where the runtime can spawn a task, run one driver per tree instead:
//! it calls [`Shared::poll_driver`] and sleeps until the instant it returns. From its first
//! call on, the driver holds the timer for good and waiters are only ever told
//! `Sleep { until: None }`; a task that stops polling then only strands its own piece.
//!
//! Wakers are called while the lock is held: every runtime's `wake` only schedules a task.
//! Costs: each call is one lock plus the tree operation (O(depth)) plus O(1) per waker woken.

use core::marker::PhantomData;
use core::task::Waker;

use crate::decision::{Decision, Stats};
use crate::error::{
    AcquireError, CancelError, InsertError, RemoveError, SetLimitError, SettleError, StaleHandle,
};
use crate::limits::Limits;
use crate::node::{LeafId, Link, NodeId};
use crate::storage::{sealed::Waiters, Storage};
use crate::sync::{Changes, Lock};
use crate::time::Instant;
use crate::tree::Tree;

/// What a task does after [`Shared::poll_acquire`].
#[must_use = "a Step says whether to send now or how to sleep"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Send this many tokens now (`1 ≤ n ≤ want`), then [`Shared::settle`] what was used.
    Grant(u64),
    /// Return `Pending`; the waker is registered. `until: Some(t)`: this task holds the tree's
    /// timer: arm a timer for `t` and poll again when it fires (or when woken earlier, which
    /// moves `t`). `until: None`: poll again when woken (no timer needed).
    Sleep {
        /// The timer to arm, if this task holds the tree's timer.
        until: Option<Instant>,
    },
}

pub(crate) use waiter::Waiter;

/// In a private module: the storage's sealed waiter table names the type, so it is `pub`,
/// but no path outside the crate reaches it.
mod waiter {
    use core::task::Waker;

    use crate::node::Link;

    /// One slot's waiter record.
    #[derive(Debug)]
    pub struct Waiter {
        pub(super) waker: Option<Waker>,
        pub(super) prev: Link,
        pub(super) next: Link,
        pub(super) linked: bool,
    }

    impl Waiter {
        /// No waiter.
        pub const NONE: Waiter = Waiter {
            waker: None,
            prev: Link::NONE,
            next: Link::NONE,
            linked: false,
        };
    }
}

/// Why [`Shared::try_take`] took nothing. Nothing is held afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TakeError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the tree.
    Stale,
    /// Not all `n` tokens now. `until`: the earliest instant every tier on the path holds
    /// them (a lower bound when other leaves compete); `None`: a limit on the path is paused.
    NotYet {
        /// When to try again at the earliest.
        until: Option<Instant>,
    },
    /// `n` is more than one grant on this path can ever be (its smallest burst, or the
    /// configuration's largest piece): no wait makes it succeed.
    TooLarge {
        /// The most one take on this path can be.
        max: u64,
    },
}

impl core::fmt::Display for TakeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TakeError::ZeroRequest => f.write_str("a request must ask for at least one token"),
            TakeError::Stale => f.write_str("the leaf no longer exists"),
            TakeError::NotYet { until: Some(t) } => {
                write!(
                    f,
                    "rate-limited: the tokens are there at {} ns at the earliest",
                    t.as_nanos()
                )
            }
            TakeError::NotYet { until: None } => f.write_str("a limit on the path is paused"),
            TakeError::TooLarge { max } => {
                write!(f, "more than one grant on this path can be (at most {max})")
            }
        }
    }
}

impl core::error::Error for TakeError {}

/// Who sleeps on the tree's timer, and until when.
#[derive(Clone, Copy, Debug)]
struct Timer {
    holder: u32,
    at: Instant,
}

/// The driver task, once one has called [`Shared::poll_driver`]: it holds the timer for good.
#[derive(Debug)]
struct Driver {
    waker: Waker,
    /// The deadline it sleeps until, [`Instant::MAX`] when until woken. (Not an `Option`: then
    /// `Option<Driver>`'s `None` would be encoded in that `Option`'s tag as a non-zero byte,
    /// and an empty `State` would not be all zeros; see `node::Link`.)
    at: Instant,
}

/// The tree and its waiters: what a [`Shared`] locks. Build it with [`State::new`] (`const`).
#[derive(Debug)]
pub struct State<S: Storage> {
    tree: Tree<S>,
    waiters: S::Waiters,
    /// FIFO list of slots with a registered waker (oldest first): the hand-off order.
    head: Link,
    tail: Link,
    timer: Option<Timer>,
    driver: Option<Driver>,
    wakes: u64,
}

impl<S: Storage> State<S> {
    /// The shared state of `tree` (which may already hold nodes).
    pub const fn new(tree: Tree<S>) -> Self {
        State {
            tree,
            waiters: <S::Waiters as Waiters>::EMPTY,
            head: Link::NONE,
            tail: Link::NONE,
            timer: None,
            driver: None,
            wakes: 0,
        }
    }

    /// The tree (read-only).
    pub fn tree(&self) -> &Tree<S> {
        &self.tree
    }

    fn register(&mut self, i: u32, waker: &Waker) {
        let tail = self.tail.get();
        let Some(w) = self.waiters.get_mut(i) else {
            return;
        };
        match &mut w.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        if w.linked {
            return;
        }
        w.linked = true;
        w.prev = Link::to(tail);
        w.next = Link::NONE;
        if let Some(t) = self.waiters.get_mut(tail) {
            t.next = Link::to(i);
        } else {
            self.head = Link::to(i);
        }
        self.tail = Link::to(i);
    }

    fn unregister(&mut self, i: u32) -> Option<Waker> {
        let w = self.waiters.get_mut(i)?;
        if !w.linked {
            return w.waker.take();
        }
        w.linked = false;
        let (prev, next) = (w.prev, w.next);
        let waker = w.waker.take();
        match self.waiters.get_mut(prev.get()) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.waiters.get_mut(next.get()) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        waker
    }

    fn wake(&mut self, i: u32) {
        if let Some(w) = self.unregister(i) {
            self.wakes = self.wakes.wrapping_add(1);
            w.wake();
        }
    }

    /// Wakes every leaf the tree granted a piece to since the last drain.
    fn drain_ready(&mut self) {
        while let Some(leaf) = self.tree.poll_ready() {
            self.wake(leaf.node().index());
        }
    }

    fn is_registered(&self, i: u32) -> bool {
        self.waiters.get(i).is_some_and(|w| w.linked)
    }

    /// `i` stops waiting (granted, cancelled, removed): it gives up the timer if it held it.
    fn leave(&mut self, i: u32) {
        self.unregister(i);
        if self.timer.is_some_and(|t| t.holder == i) {
            self.timer = None;
        }
    }

    /// Keeps exactly one waiter on the tree's timer. `caller`: the slot about to sleep, which
    /// takes the role when it is free. Returns the caller's deadline if it holds the timer.
    fn rearm(&mut self, caller: Option<u32>) -> Option<Instant> {
        if let Some(d) = &mut self.driver {
            let at = self.tree.poll_timeout();
            let earlier = at.is_some_and(|a| a < d.at);
            if earlier {
                d.at = at.unwrap_or(Instant::MAX);
                d.waker.wake_by_ref();
                self.wakes = self.wakes.wrapping_add(1);
            }
            return None;
        }
        let Some(at) = self.tree.poll_timeout() else {
            // Nothing happens by itself; a holder sleeping on a stale deadline only wakes
            // once more for nothing.
            self.timer = None;
            return None;
        };
        match self.timer {
            Some(t) if Some(t.holder) == caller => {
                self.timer = Some(Timer {
                    holder: t.holder,
                    at,
                });
                Some(at)
            }
            Some(t) => {
                if at < t.at {
                    self.timer = Some(Timer {
                        holder: t.holder,
                        at,
                    });
                    // Its timer is too late now: wake it to re-arm (no-op if already woken).
                    self.wake(t.holder);
                }
                None
            }
            None => match caller {
                Some(c) => {
                    self.timer = Some(Timer { holder: c, at });
                    Some(at)
                }
                None if self.head != Link::NONE => {
                    let h = self.head.get();
                    self.timer = Some(Timer { holder: h, at });
                    self.wake(h);
                    None
                }
                // Nobody is registered: every waiting leaf's task has been woken and will poll,
                // and the first one to sleep takes the timer.
                None => None,
            },
        }
    }

    /// The end of every operation: wake who was granted, keep the timer held.
    fn notify(&mut self) {
        self.drain_ready();
        self.rearm(None);
    }

    fn poll_acquire(
        &mut self,
        leaf: LeafId,
        want: u64,
        now: Instant,
        waker: &Waker,
    ) -> Result<Step, AcquireError> {
        let i = leaf.node().index();
        match self.tree.acquire(leaf, want, now)? {
            Decision::Grant(n) => {
                self.leave(i);
                self.notify();
                Ok(Step::Grant(n))
            }
            Decision::Wait { .. } | Decision::Paused => {
                self.register(i, waker);
                self.drain_ready();
                // drain_ready never names `i` (a leaf told Wait holds no grant), so it is
                // still registered here.
                let until = if self.is_registered(i) {
                    self.rearm(Some(i))
                } else {
                    self.rearm(None)
                };
                Ok(Step::Sleep { until })
            }
        }
    }
}

/// A growable tree behind a std mutex: what the std adapters share. Feature `std`.
#[cfg(feature = "std")]
pub type VecShared = StdShared<crate::storage::Growable>;

/// A tree of storage `S` behind a std mutex. Feature `std`.
#[cfg(feature = "std")]
pub type StdShared<S> = Shared<S, crate::sync::StdLock<State<S>>>;

/// `N` inline nodes behind a critical section, `const`-constructible for a `static`:
/// `Shared::from_lock(CsLock::new_const(State::new(Tree::with_storage(Fixed::new(), config))))`.
/// Feature `critical-section`.
#[cfg(feature = "critical-section")]
pub type CsShared<const N: usize> =
    Shared<crate::storage::Fixed<N>, crate::sync::CsLock<State<crate::storage::Fixed<N>>>>;

/// A [`Tree`] shared between tasks or threads: every method takes `&self`, locks, runs the
/// tree operation and wakes whoever it concerns (see the [module docs](self)).
///
/// `L` is the lock: `StdLock` (feature `std`),
/// `CsLock` (feature `critical-section`; `const`, for a `static`), or an
/// adapter's own (embassy-sync's mutex). `Shared` is `Sync` whenever the lock is.
#[derive(Debug)]
pub struct Shared<S: Storage, L> {
    lock: L,
    changes: Changes,
    _storage: PhantomData<fn() -> S>,
}

impl<S: Storage, L: Lock<State<S>>> Shared<S, L> {
    /// Shares `tree`.
    pub fn new(tree: Tree<S>) -> Self {
        Self::from_lock(L::new(State::new(tree)))
    }

    /// Shares the state inside `lock`: the `const` way, e.g.
    /// `Shared::from_lock(CsLock::new_const(State::new(FixedTree::with_storage(..))))` in a
    /// `static`.
    pub const fn from_lock(lock: L) -> Self {
        Shared {
            lock,
            changes: Changes::new(),
            _storage: PhantomData,
        }
    }

    /// Runs `f` on the state under the lock (read-only): for statistics and inspection.
    pub fn with<R>(&self, f: impl FnOnce(&State<S>) -> R) -> R {
        self.lock.lock(|s| f(s))
    }

    /// Asks for up to `want` tokens for `leaf` from a task whose waker is `waker`, at `now`.
    /// See [`Step`] for what to do next. Polling again continues the same request (as
    /// [`Tree::acquire`]). A task that stops waiting without a grant MUST call
    /// [`Shared::cancel`] (a cancel-safe future does it in `Drop`), or the timer role and the
    /// waiting piece stay with a task that will never poll.
    pub fn poll_acquire(
        &self,
        leaf: LeafId,
        want: u64,
        now: Instant,
        waker: &Waker,
    ) -> Result<Step, AcquireError> {
        self.lock.lock(|s| s.poll_acquire(leaf, want, now, waker))
    }

    /// [`Tree::acquire`] without a task (never registers a waker): for a caller that only
    /// wants a grant if one is available now, and cancels otherwise.
    pub fn try_acquire(
        &self,
        leaf: LeafId,
        want: u64,
        now: Instant,
    ) -> Result<Decision, AcquireError> {
        self.lock.lock(|s| {
            let d = s.tree.acquire(leaf, want, now)?;
            s.notify();
            Ok(d)
        })
    }

    /// Takes `n` tokens for `leaf` now, or nothing: succeeds only when every tier on the path
    /// holds all `n` at once (no piece of debt: an `acquire` of `n` may start on one whole
    /// token and take a tier into debt; for `n = 1` both admit exactly the burst, "10 per
    /// second" 10 at once) and fair sharing grants the whole `n`; the tokens are then counted
    /// as used. Never
    /// registers a waker. One lock: no other caller slips in between the check and the take.
    /// The leaf must have no request of its own in the tree (cancel a wait first).
    ///
    /// This is the take-it-or-leave-it request every adapter's `try_acquire` is.
    pub fn try_take(&self, leaf: LeafId, n: u64, now: Instant) -> Result<(), TakeError> {
        if n == 0 {
            return Err(TakeError::ZeroRequest);
        }
        self.lock.lock(|s| {
            let max = s.tree.largest_grant(leaf).map_err(|_| TakeError::Stale)?;
            if n > max {
                return Err(TakeError::TooLarge { max });
            }
            match s.tree.earliest_whole(leaf, n, now) {
                Err(_) => return Err(TakeError::Stale),
                Ok(None) => return Err(TakeError::NotYet { until: None }),
                Ok(Some(at)) if at > now => return Err(TakeError::NotYet { until: Some(at) }),
                Ok(Some(_)) => {}
            }
            let decision = s.tree.acquire(leaf, n, now).map_err(|_| TakeError::Stale)?;
            if decision == Decision::Grant(n) {
                s.tree.settle(leaf, n, now).map_err(|_| TakeError::Stale)?;
                s.notify();
                return Ok(());
            }
            // A smaller piece (busy siblings) or a wait: give it back.
            let _ = s.tree.cancel(leaf, now);
            s.notify();
            Err(TakeError::NotYet {
                until: match decision {
                    Decision::Wait { until } => Some(until),
                    Decision::Paused => None,
                    // the tiers hold the tokens; fair sharing split them this instant
                    Decision::Grant(_) => Some(now),
                },
            })
        })
    }

    /// Whether `n` tokens for `leaf` can be had by `deadline`, asked at `now` before an
    /// `acquire_before` waits (every adapter's): [`Tree::earliest`] says when; `None` (a
    /// paused limit on the path) is `Deadline { wait: None }`; an instant later than both
    /// `now` and `deadline` is `Deadline { wait: Some(how long after now) }`; otherwise
    /// `Ok(())`, and the caller waits. A request the path can grant at `now` is never
    /// refused, even with a deadline already past. Read-only: nothing is reserved. One lock.
    pub fn check_deadline(
        &self,
        leaf: LeafId,
        n: u64,
        now: Instant,
        deadline: Instant,
    ) -> Result<(), crate::request::AcquireError> {
        use crate::request::AcquireError as E;
        if n == 0 {
            return Err(E::ZeroRequest);
        }
        let at = self.lock.lock(|s| s.tree.earliest(leaf, n, now));
        match at.map_err(|_| E::Stale)? {
            None => Err(E::Deadline { wait: None }),
            Some(at) if at > now && at > deadline => Err(E::Deadline {
                wait: Some(at.saturating_duration_since(now)),
            }),
            Some(_) => Ok(()),
        }
    }

    /// [`Tree::settle`], then wakes whoever the refund concerns.
    pub fn settle(&self, leaf: LeafId, used: u64, now: Instant) -> Result<(), SettleError> {
        self.lock.lock(|s| {
            s.tree.settle(leaf, used, now)?;
            s.notify();
            Ok(())
        })
    }

    /// [`Tree::cancel`]: the leaf stops waiting (its waker is dropped, the timer role passes
    /// on) and anything granted but unused is refunded. Returns the tokens refunded.
    pub fn cancel(&self, leaf: LeafId, now: Instant) -> Result<u64, CancelError> {
        self.lock.lock(|s| {
            let refunded = s.tree.cancel(leaf, now)?;
            s.leave(leaf.node().index());
            s.notify();
            Ok(refunded)
        })
    }

    /// [`Tree::set_limit`]: reaches every waiter below `node` at once (those it makes ready
    /// are woken, and the timer holder re-arms if the next grant moved earlier).
    pub fn set_limit(
        &self,
        node: NodeId,
        limits: Limits,
        now: Instant,
    ) -> Result<(), SetLimitError> {
        self.lock.lock(|s| {
            s.tree.set_limit(node, limits, now)?;
            self.changes.bump();
            s.notify();
            Ok(())
        })
    }

    /// [`Tree::set_weight`].
    pub fn set_weight(&self, node: NodeId, weight: u16) -> Result<(), SetLimitError> {
        self.lock.lock(|s| {
            s.tree.set_weight(node, weight)?;
            self.changes.bump();
            Ok(())
        })
    }

    /// [`Tree::insert_node`].
    pub fn insert_node(
        &self,
        parent: Option<NodeId>,
        limits: Limits,
        weight: u16,
        now: Instant,
    ) -> Result<NodeId, InsertError> {
        self.lock.lock(|s| {
            let id = s.tree.insert_node(parent, limits, weight, now)?;
            s.waiters.fit(id.index() as usize + 1);
            self.changes.bump();
            Ok(id)
        })
    }

    /// [`Tree::insert_leaf`].
    pub fn insert_leaf(
        &self,
        parent: Option<NodeId>,
        limits: Limits,
        weight: u16,
        now: Instant,
    ) -> Result<LeafId, InsertError> {
        self.lock.lock(|s| {
            let id = s.tree.insert_leaf(parent, limits, weight, now)?;
            s.waiters.fit(id.node().index() as usize + 1);
            self.changes.bump();
            Ok(id)
        })
    }

    /// [`Tree::remove`]: whatever the node held is refunded to the others. A task still
    /// waiting on a removed leaf is woken, so that its next poll fails with
    /// [`AcquireError::StaleHandle`] instead of sleeping forever.
    pub fn remove(&self, node: NodeId, now: Instant) -> Result<(), RemoveError> {
        self.lock.lock(|s| {
            s.tree.remove(node, now)?;
            self.changes.bump();
            let i = node.index();
            if s.timer.is_some_and(|t| t.holder == i) {
                s.timer = None;
            }
            s.wake(i);
            s.notify();
            Ok(())
        })
    }

    /// The driver task's step (see the [module docs](self)): runs the scheduler at `now`,
    /// wakes the leaves it granted, registers `waker` to be woken whenever the tree's next
    /// deadline moves earlier, and returns that deadline. The driver sleeps until it (or until
    /// woken, `None`), then calls again. From the first call on, no waiter is ever asked to
    /// hold the timer; a waiter that held it before wakes once more and learns so.
    pub fn poll_driver(&self, now: Instant, waker: &Waker) -> Option<Instant> {
        self.lock.lock(|s| {
            s.tree.handle_timeout(now);
            s.drain_ready();
            let at = s.tree.poll_timeout();
            match &mut s.driver {
                Some(d) => {
                    if !d.waker.will_wake(waker) {
                        d.waker = waker.clone();
                    }
                    d.at = at.unwrap_or(Instant::MAX);
                }
                None => {
                    s.driver = Some(Driver {
                        waker: waker.clone(),
                        at: at.unwrap_or(Instant::MAX),
                    });
                }
            }
            if let Some(t) = s.timer.take() {
                s.wake(t.holder);
            }
            at
        })
    }

    /// The driver task is gone (its runtime dropped it): the timer goes back to the waiters
    /// (the longest-registered one is woken to take it), until a driver calls
    /// [`Shared::poll_driver`] again.
    pub fn release_driver(&self) {
        self.lock.lock(|s| {
            if s.driver.take().is_some() {
                s.notify();
            }
        });
    }

    /// Whether a driver task holds the timer (see [`Shared::poll_driver`]).
    pub fn has_driver(&self) -> bool {
        self.lock.lock(|s| s.driver.is_some())
    }

    /// [`Tree::handle_timeout`]: for a driver that keeps its own timer at
    /// [`Shared::poll_timeout`] instead of relying on the timer holder.
    pub fn handle_timeout(&self, now: Instant) {
        self.lock.lock(|s| {
            s.tree.handle_timeout(now);
            s.notify();
        });
    }

    /// [`Tree::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock.lock(|s| s.tree.poll_timeout())
    }

    /// [`Tree::stats`].
    pub fn stats(&self, node: NodeId) -> Result<Stats, StaleHandle> {
        self.lock.lock(|s| s.tree.stats(node))
    }

    /// [`Tree::count_bypassed`] (one lock; wakes nobody: nothing was decided).
    pub fn count_bypassed(&self, leaf: LeafId, n: u64) -> Result<(), StaleHandle> {
        self.lock.lock(|s| s.tree.count_bypassed(leaf, n))
    }

    /// [`Tree::limits`].
    pub fn limits(&self, node: NodeId) -> Result<Limits, StaleHandle> {
        self.lock.lock(|s| s.tree.limits(node))
    }

    /// [`Tree::generation`]: changes on every insert, remove, limit or weight change.
    pub fn generation(&self) -> u32 {
        self.lock.lock(|s| s.tree.generation())
    }

    /// A counter of every insert, remove, limit and weight change made through this
    /// `Shared`, read with one atomic load, without the lock: a waiter that cached something
    /// derived from limits (an unlimited path) re-checks only when it moved. `None` where the
    /// target has no 32-bit atomics (and under loom): ask [`Shared::path_unlimited`] instead.
    /// Wraps after 2^32 changes.
    pub fn changes(&self) -> Option<u32> {
        self.changes.get()
    }

    /// Whether no node from `leaf` up to its root has a tier (a stale leaf counts as
    /// limited, so that its next request reports the error), with the [`Shared::changes`]
    /// count this answer belongs to (0 without atomics). One lock.
    pub fn path_unlimited(&self, leaf: LeafId) -> (u32, bool) {
        self.lock.lock(|s| {
            let unlimited = s.tree.path_unlimited(leaf.node()).unwrap_or(false);
            (self.changes.get().unwrap_or(0), unlimited)
        })
    }

    /// Wakers called so far (grants to sleeping waiters and timer hand-offs): a cost figure
    /// for benchmarks and a check for tests.
    pub fn wakes(&self) -> u64 {
        self.lock.lock(|s| s.wakes)
    }

    /// Leaves with a registered waker right now.
    pub fn sleeping(&self) -> usize {
        self.lock.lock(|s| {
            let mut n = 0;
            let mut i = s.head.get();
            while let Some(w) = s.waiters.get(i) {
                n += 1;
                i = w.next.get();
            }
            n
        })
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
