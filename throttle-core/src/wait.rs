//! The one waiting engine every adapter drives: how a task (or a thread) turns the sharing
//! layer's [`Step`]s into a wait, written once for std runtimes, embassy and blocking threads.
//!
//! ```text
//!            poll_acquire(want)                       settle(used)
//!   Idle ─────────────────────────▶ Holding(n) ───────────────────────▶ Idle
//!    │  └─ Sleep ─▶ Waiting ─(woken / sleep due)─▶ poll_acquire again ...
//!    └─ path unlimited ─▶ Bypass(want) ─ settle ─▶ Idle   (the tree is skipped)
//!   cancel / Drop in Waiting or Holding: the core refunds every level the piece reached.
//! ```
//!
//! An adapter supplies three things and nothing else:
//! - a [`Handle`]: the [`Shared`] tree and the clock it is fed with;
//! - a [`Sleep`]: one resettable timer on that clock (a runtime's timer, an embassy-time
//!   `Timer`, or [`Deadline`], which only records the instant for a thread that parks);
//! - a waker, through the `Context` it polls with.
//!
//! [`Engine`] is one leaf's side: the `Step` → timer → retry loop (bounded: after
//! [`MAX_SPINS`] timers already due it yields instead of spinning on a coarse clock), settle,
//! cancel on drop, the unlimited fast path, and [`Engine::poll_io`], the one I/O accounting
//! rule (below). [`poll_driver`] is the driver task's loop; [`Engine::block`] a thread's.
//!
//! **The I/O accounting rule** (every adapter, both directions). Ask for a grant, move at
//! most that many bytes, settle what moved. If the stream is not ready, the whole grant goes
//! back at once and the leaf *stalls*: it stops asking and waits on the stream alone, holding
//! nothing in the tree. The bytes the stream then moves (at most the grant it gave back) are
//! *owed* and paid before anything else ([`Engine::owe`], [`Engine::poll_pay`]): before the
//! call returns where the adapter can wait (embassy's `async fn`, blocking threads), at the
//! start of the next call on poll-based streams (a `poll_read` must hand over the bytes it
//! read). So an idle connection holds no tokens and takes no turns, and every byte moved is
//! paid exactly once; the price is that a stalled leaf may move one grant before paying for
//! it (a shared node's window may see one extra piece per connection that just woke from a
//! stall). A blocking read cannot learn that its stream is ready without blocking in it, so
//! it is always in the stalled case: it reads at most one grant, then pays.
//!
//! **The unlimited fast path.** When no node from the leaf to its root has a tier, a grant
//! is pointless: the engine skips the tree. Whether that holds is cached against
//! [`Shared::changes`], a counter every insert, remove, limit or weight change bumps under
//! the lock — one atomic load per poll where the target has 32-bit atomics (elsewhere, and
//! under loom, one lock). Every change counts, whichever handle made it.

use core::fmt;
use core::task::{Context, Poll, Waker};

use crate::error::AcquireError;
use crate::node::LeafId;
use crate::request::{self, TryAcquireError};
use crate::shared::{Shared, State, Step};
use crate::storage::Storage;
use crate::sync::Lock;
use crate::time::Instant;

/// How many times one poll re-asks the tree when the timer it just armed is already due
/// (a clock coarser than the tree's deadlines); after that it wakes itself and yields, so one
/// poll's work is bounded whatever the clock does.
pub const MAX_SPINS: u32 = 4;

/// What an adapter gives the engine: the shared tree and the clock it is fed with.
pub trait Handle {
    /// The tree's storage.
    type Storage: Storage;
    /// The tree's lock.
    type Lock: Lock<State<Self::Storage>>;
    /// The shared tree.
    fn shared(&self) -> &Shared<Self::Storage, Self::Lock>;
    /// The clock now, as the tree counts time. MUST be monotonic and the same clock the
    /// adapter's [`Sleep`] fires on.
    fn now(&self) -> Instant;
    /// `n` tokens went through `leaf` while its whole path was unlimited (the tree was
    /// skipped): for the statistics. The default ignores them; std counts them in atomics
    /// beside the tree, embassy in the tree's own counters
    /// ([`Shared::count_bypassed`]).
    fn bypassed(&self, leaf: LeafId, n: u64) {
        let _ = (leaf, n);
    }
}

impl<H: Handle + ?Sized> Handle for &H {
    type Storage = H::Storage;
    type Lock = H::Lock;
    fn shared(&self) -> &Shared<H::Storage, H::Lock> {
        (**self).shared()
    }
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn bypassed(&self, leaf: LeafId, n: u64) {
        (**self).bypassed(leaf, n);
    }
}

/// A resettable timer on the [`Handle`]'s clock.
pub trait Sleep {
    /// Arms the timer for `at` (replacing any earlier deadline) and polls it: `Ready(Ok(()))`
    /// once the clock has reached `at` (`now` is the clock as the engine just read it),
    /// `Pending` otherwise, with `cx`'s waker woken when it does. `Ready(Err(_))`: this
    /// runtime cannot sleep here (see [`SleepError`]); the engine then withdraws its request.
    fn poll_until(
        &mut self,
        at: Instant,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SleepError>>;
}

/// Why a [`Sleep`] cannot sleep. Typed, so that a misconfigured runtime is an error value,
/// never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SleepError {
    /// Polled outside the runtime the timer needs (no runtime context on this thread).
    NoRuntime,
    /// The runtime has no timers (tokio: built without `enable_time`).
    TimersDisabled,
}

impl fmt::Display for SleepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SleepError::NoRuntime => "polled outside the runtime its timers need",
            SleepError::TimersDisabled => {
                "the runtime has no timers (tokio: call `enable_time` on its builder)"
            }
        })
    }
}

impl core::error::Error for SleepError {}

/// Why a wait ended without a grant. Nothing is held afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitError {
    /// A request must ask for at least one token.
    ZeroRequest,
    /// The leaf is no longer in the tree.
    StaleHandle,
    /// The adapter could not arm a timer.
    Sleep(SleepError),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::ZeroRequest => f.write_str("a request must ask for at least one token"),
            WaitError::StaleHandle => f.write_str("the leaf no longer exists"),
            WaitError::Sleep(e) => write!(f, "cannot wait: {e}"),
        }
    }
}

impl core::error::Error for WaitError {}

impl From<AcquireError> for WaitError {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::ZeroRequest => WaitError::ZeroRequest,
            // (the enum is non-exhaustive: anything else means the leaf cannot be served)
            _ => WaitError::StaleHandle,
        }
    }
}

#[cfg(feature = "std")]
impl From<WaitError> for std::io::Error {
    fn from(e: WaitError) -> Self {
        let kind = match e {
            WaitError::ZeroRequest => std::io::ErrorKind::InvalidInput,
            WaitError::StaleHandle => std::io::ErrorKind::NotConnected,
            WaitError::Sleep(_) => std::io::ErrorKind::Unsupported,
        };
        std::io::Error::new(kind, e)
    }
}

/// A [`Sleep`] that only records its deadline: for a caller that blocks a thread itself
/// (parks until [`Deadline::take`], or until woken) or a simulator that jumps to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline.
    pub const fn new() -> Self {
        Deadline(None)
    }

    /// The deadline the last `Pending` asked for, if any (`None`: sleep until woken); clears
    /// it.
    pub fn take(&mut self) -> Option<Instant> {
        self.0.take()
    }
}

impl Sleep for Deadline {
    fn poll_until(
        &mut self,
        at: Instant,
        now: Instant,
        _cx: &mut Context<'_>,
    ) -> Poll<Result<(), SleepError>> {
        if now >= at {
            self.0 = None;
            Poll::Ready(Ok(()))
        } else {
            self.0 = Some(at);
            Poll::Pending
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing in the tree.
    Idle,
    /// A piece waits in the tree (or was granted and not yet collected).
    Waiting,
    /// The tree granted `n`; not settled yet.
    Holding(u64),
    /// The path is unlimited: `n` allowed without the tree; not settled yet.
    Bypass(u64),
    /// Nothing in the tree: the stream was not ready and gave its grant of `n` back; the
    /// next I/O goes to the stream first, at most `n`, and pays afterwards.
    Stalled(u64),
}

/// One leaf's waiting side, used by one task or thread at a time (see the
/// [module docs](self)). Dropping it cancels what it holds; it does not remove the leaf.
///
/// Cost per poll on an unlimited path: one atomic load (one lock without 32-bit atomics);
/// otherwise one lock for the request and one for the settle, plus the adapter's timer when
/// this task holds the tree's timer.
pub struct Engine<H: Handle> {
    handle: H,
    leaf: LeafId,
    phase: Phase,
    /// `(Shared::changes, path unlimited)` when last checked.
    unlimited: Option<(u32, bool)>,
    /// Tokens used after a stall and not yet paid for.
    owed: u64,
}

impl<H: Handle> fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("leaf", &self.leaf)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<H: Handle> Drop for Engine<H> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl<H: Handle> Engine<H> {
    /// The waiting side of `leaf` in `handle`'s tree.
    pub const fn new(handle: H, leaf: LeafId) -> Self {
        Engine {
            handle,
            leaf,
            phase: Phase::Idle,
            unlimited: None,
            owed: 0,
        }
    }

    /// The handle it was built with.
    pub fn handle(&self) -> &H {
        &self.handle
    }

    /// The leaf it waits on.
    pub fn leaf(&self) -> LeafId {
        self.leaf
    }

    /// True while a piece waits in the tree for this leaf.
    pub fn is_waiting(&self) -> bool {
        self.phase == Phase::Waiting
    }

    /// True when no node from the leaf to the root has a tier (the tree is skipped). One
    /// atomic load while nothing changed in the tree since the last check.
    pub fn is_unlimited(&mut self) -> bool {
        let shared = self.handle.shared();
        if let (Some((seen, unlimited)), Some(now)) = (self.unlimited, shared.changes()) {
            if seen == now {
                return unlimited;
            }
        }
        let answer = shared.path_unlimited(self.leaf);
        self.unlimited = Some(answer);
        answer.1
    }

    /// Asks for up to `want` tokens. `Ready(Ok(n))`, `1 ≤ n ≤ want`: use up to `n`, then
    /// [`settle`](Engine::settle) (asking again first returns the same grant). `Pending`: the
    /// task is woken when the tree grants it, when a change concerns it, or when `sleep` is
    /// due (only while this task holds the tree's timer). Polling again continues the same
    /// request.
    pub fn poll_acquire(
        &mut self,
        cx: &mut Context<'_>,
        sleep: &mut impl Sleep,
        want: u64,
    ) -> Poll<Result<u64, WaitError>> {
        match self.phase {
            Phase::Holding(n) | Phase::Bypass(n) => return Poll::Ready(Ok(n)),
            Phase::Idle | Phase::Waiting | Phase::Stalled(_) => {}
        }
        if want == 0 {
            return Poll::Ready(Err(WaitError::ZeroRequest));
        }
        if self.is_unlimited() {
            // A piece that waited for a limit since removed goes back first.
            self.cancel();
            self.phase = Phase::Bypass(want);
            return Poll::Ready(Ok(want));
        }
        for _ in 0..MAX_SPINS {
            let now = self.handle.now();
            let step = self
                .handle
                .shared()
                .poll_acquire(self.leaf, want, now, cx.waker());
            let until = match step {
                Err(e) => {
                    self.phase = Phase::Idle;
                    return Poll::Ready(Err(e.into()));
                }
                Ok(Step::Grant(n)) => {
                    self.phase = Phase::Holding(n);
                    return Poll::Ready(Ok(n));
                }
                Ok(Step::Sleep { until }) => until,
            };
            self.phase = Phase::Waiting;
            // `None`: woken by whoever changes something for this leaf. `Instant::MAX`:
            // "never" (the clock's end), which needs no timer either.
            let Some(at) = until.filter(|&t| t != Instant::MAX) else {
                return Poll::Pending;
            };
            match sleep.poll_until(at, now, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    // It cannot hold the tree's timer: give the role and the piece back.
                    self.cancel();
                    return Poll::Ready(Err(WaitError::Sleep(e)));
                }
                // Due already: ask again, which runs the scheduler.
                Poll::Ready(Ok(())) => {}
            }
        }
        // The timer keeps being due at once (a coarse clock): let the executor run others.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reports that `used` of the current grant was used; the rest goes back to every level.
    /// Without a grant, does nothing. `false` when the tree no longer has the leaf (it was
    /// removed meanwhile, with whatever it held).
    pub fn settle(&mut self, used: u64) -> bool {
        let ok = match self.phase {
            Phase::Holding(n) => {
                let now = self.handle.now();
                self.handle
                    .shared()
                    .settle(self.leaf, used.min(n), now)
                    .is_ok()
            }
            Phase::Bypass(n) => {
                self.count_bypassed(used.min(n));
                true
            }
            Phase::Idle | Phase::Waiting | Phase::Stalled(_) => return true,
        };
        self.phase = Phase::Idle;
        ok
    }

    /// Withdraws a waiting piece and refunds an unsettled grant. Idempotent; `Drop` calls it.
    pub fn cancel(&mut self) {
        match self.phase {
            Phase::Waiting | Phase::Holding(_) => {
                let now = self.handle.now();
                let _ = self.handle.shared().cancel(self.leaf, now);
            }
            Phase::Idle | Phase::Bypass(_) | Phase::Stalled(_) => {}
        }
        self.phase = Phase::Idle;
    }

    /// Counts `n` tokens that went through this leaf on an unlimited path without the
    /// engine (an adapter's own shortcut around it), as the engine's own bypass does
    /// ([`Handle::bypassed`]).
    pub fn count_bypassed(&self, n: u64) {
        self.handle.bypassed(self.leaf, n);
    }

    /// Takes `n` tokens now or nothing, without waiting (every adapter's `try_acquire`):
    /// withdraws this leaf's own waiting piece first, skips the tree on an unlimited path
    /// (counted as [`Handle::bypassed`]), and otherwise is [`Shared::try_take`] at the
    /// handle's clock, its answer counted from that instant
    /// ([`TryAcquireError::from_take`]).
    pub fn try_acquire(&mut self, n: u64) -> Result<(), TryAcquireError> {
        if n == 0 {
            return Err(TryAcquireError::ZeroRequest);
        }
        self.cancel();
        if self.is_unlimited() {
            self.count_bypassed(n);
            return Ok(());
        }
        let now = self.handle.now();
        self.handle
            .shared()
            .try_take(self.leaf, n, now)
            .map_err(|e| TryAcquireError::from_take(e, now))
    }

    /// Before an `acquire_before` waits (every adapter's): whether `n` tokens can be had by
    /// `deadline` on the handle's clock ([`Shared::check_deadline`]); an unlimited path
    /// always can (no lock while nothing changed). Nothing is reserved.
    pub fn check_deadline(
        &mut self,
        n: u64,
        deadline: Instant,
    ) -> Result<(), request::AcquireError> {
        if n == 0 {
            return Err(request::AcquireError::ZeroRequest);
        }
        if self.is_unlimited() {
            return Ok(());
        }
        let now = self.handle.now();
        self.handle
            .shared()
            .check_deadline(self.leaf, n, now, deadline)
    }

    /// Records `used` tokens moved without a grant (after a stall, see the module docs); the
    /// next [`poll_pay`](Engine::poll_pay) (which [`poll_io`](Engine::poll_io) calls first)
    /// pays for them.
    pub fn owe(&mut self, used: u64) {
        self.owed = self.owed.saturating_add(used);
        if let Phase::Stalled(_) = self.phase {
            self.phase = Phase::Idle;
        }
    }

    /// Tokens owed and not yet paid.
    pub fn owed(&self) -> u64 {
        self.owed
    }

    /// Pays what is owed, grant by grant, waiting as [`poll_acquire`](Engine::poll_acquire)
    /// does. `Ready(Ok(()))` once nothing is owed. On an error (the leaf was removed, no
    /// timer) the debt is dropped with the leaf's claim to it.
    pub fn poll_pay(
        &mut self,
        cx: &mut Context<'_>,
        sleep: &mut impl Sleep,
    ) -> Poll<Result<(), WaitError>> {
        while self.owed > 0 {
            match self.poll_acquire(cx, sleep, self.owed) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.owed = 0;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(g)) => {
                    let g = g.min(self.owed);
                    self.owed -= g;
                    if !self.settle(g) {
                        self.owed = 0;
                        return Poll::Ready(Err(WaitError::StaleHandle));
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The stall a stream that was not ready left, if any: the grant it gave back (the most
    /// the stream may move before paying).
    pub fn stalled(&self) -> Option<u64> {
        match self.phase {
            Phase::Stalled(n) => Some(n),
            _ => None,
        }
    }

    /// Records that the stream was not ready: gives back the current grant (as `settle(0)`)
    /// and stalls (see the module docs). On an unlimited path there is nothing to stall.
    pub fn stall(&mut self) -> bool {
        let (n, bypass) = match self.phase {
            Phase::Holding(n) => (n, false),
            Phase::Bypass(n) => (n, true),
            Phase::Idle | Phase::Waiting | Phase::Stalled(_) => return true,
        };
        let ok = self.settle(0);
        if ok && !bypass {
            self.phase = Phase::Stalled(n);
        }
        ok
    }

    /// One throttled I/O operation under [the I/O accounting rule](self): pays what is owed;
    /// after a stall runs `io` at once with at most the grant given back and owes what it
    /// moved; otherwise waits for a grant of up to `want` tokens, runs `io` with the granted
    /// size `n` (`1 ≤ n ≤ want`: shorten the buffer to it), settles what `io` reports moved,
    /// and stalls when it is not ready (the grant goes back; the next poll asks nothing of the
    /// tree). `want == 0` calls `io(cx, 0)` directly.
    pub fn poll_io<E: From<WaitError>>(
        &mut self,
        cx: &mut Context<'_>,
        sleep: &mut impl Sleep,
        want: usize,
        io: impl FnOnce(&mut Context<'_>, usize) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        if want == 0 {
            return io(cx, 0);
        }
        match self.poll_pay(cx, sleep) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) => {}
        }
        if let Phase::Stalled(cap) = self.phase {
            let len = usize::try_from(cap).map_or(want, |c| c.min(want));
            let r = io(cx, len);
            match &r {
                Poll::Pending => {}
                Poll::Ready(Ok(k)) => self.owe((*k).min(len) as u64),
                Poll::Ready(Err(_)) => self.phase = Phase::Idle,
            }
            return r;
        }
        let n = match self.poll_acquire(cx, sleep, want as u64) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(n)) => usize::try_from(n).map_or(want, |n| n.min(want)),
        };
        let r = io(cx, n);
        match &r {
            Poll::Ready(Ok(k)) => {
                self.settle((*k).min(n) as u64);
            }
            Poll::Ready(Err(_)) => {
                self.settle(0);
            }
            Poll::Pending => {
                self.stall();
            }
        }
        r
    }

    /// Waits for a grant by blocking the calling thread: polls with `waker`, and after each
    /// `Pending` calls `park(deadline)` — park until the deadline (`None`: until woken), or
    /// until `waker` is woken, whichever comes first; spurious returns are harmless. A limit
    /// change that concerns this leaf wakes `waker` at once. Returns the grant (settle it).
    pub fn block(
        &mut self,
        waker: &Waker,
        want: u64,
        park: impl FnMut(Option<Instant>),
    ) -> Result<u64, WaitError> {
        self.block_on(waker, park, |e, cx, d| e.poll_acquire(cx, d, want))
    }

    /// [`poll_pay`](Engine::poll_pay) by blocking the calling thread, as
    /// [`block`](Engine::block) waits.
    pub fn block_pay(
        &mut self,
        waker: &Waker,
        park: impl FnMut(Option<Instant>),
    ) -> Result<(), WaitError> {
        self.block_on(waker, park, |e, cx, d| e.poll_pay(cx, d))
    }

    fn block_on<T>(
        &mut self,
        waker: &Waker,
        mut park: impl FnMut(Option<Instant>),
        mut poll: impl FnMut(&mut Self, &mut Context<'_>, &mut Deadline) -> Poll<T>,
    ) -> T {
        let mut cx = Context::from_waker(waker);
        let mut deadline = Deadline::new();
        loop {
            match poll(self, &mut cx, &mut deadline) {
                Poll::Ready(r) => return r,
                Poll::Pending => park(deadline.take()),
            }
        }
    }
}

/// One poll of a driver task (see [`Shared::poll_driver`]): runs the tree's scheduler at the
/// handle's clock, wakes the leaves it served, and sleeps on `sleep` until the tree's next
/// deadline (or until the core wakes it because that deadline moved earlier). Returns
/// `Pending` while it should keep running and `Ready(e)` only when it cannot sleep; the
/// adapter then ends the task (and calls [`Shared::release_driver`], so that waiters take
/// the timer back).
pub fn poll_driver<H: Handle>(
    handle: &H,
    sleep: &mut impl Sleep,
    cx: &mut Context<'_>,
) -> Poll<SleepError> {
    for _ in 0..MAX_SPINS {
        let now = handle.now();
        let Some(at) = handle
            .shared()
            .poll_driver(now, cx.waker())
            .filter(|&t| t != Instant::MAX)
        else {
            // Nothing is due by itself: the core wakes this task when a deadline appears.
            return Poll::Pending;
        };
        match sleep.poll_until(at, now, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(e),
            Poll::Ready(Ok(())) => {}
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

#[cfg(all(test, feature = "std"))]
mod tests {
    extern crate alloc;
    extern crate std;

    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::{AtomicU64, Ordering};
    use core::time::Duration;

    use super::*;
    use crate::{Config, Limits, Tier, VecShared, VecTree};

    /// A shared tree on a clock the test moves, counting bypassed tokens.
    struct Clocked {
        shared: VecShared,
        now: AtomicU64,
        bypassed: AtomicU64,
    }

    impl Handle for &'static Clocked {
        type Storage = crate::Growable;
        type Lock = crate::StdLock<State<crate::Growable>>;
        fn shared(&self) -> &VecShared {
            &self.shared
        }
        fn now(&self) -> Instant {
            Instant::from_nanos(self.now.load(Ordering::SeqCst))
        }
        fn bypassed(&self, _leaf: LeafId, n: u64) {
            self.bypassed.fetch_add(n, Ordering::SeqCst);
        }
    }

    fn clocked() -> &'static Clocked {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(Clocked {
            shared: VecShared::new(VecTree::new(Config::DEFAULT.with_pieces(1, 1 << 16))),
            now: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
        }))
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn unlimited_path_bypasses_until_limit_set_through_shared() {
        let h = clocked();
        let node = h
            .shared
            .insert_node(None, Limits::UNLIMITED, 1, Instant::ZERO)
            .unwrap();
        let leaf = h
            .shared
            .insert_leaf(Some(node), Limits::UNLIMITED, 1, Instant::ZERO)
            .unwrap();
        let mut e = Engine::new(h, leaf);
        let mut d = Deadline::new();
        assert_eq!(
            e.poll_acquire(&mut cx(), &mut d, 1 << 40),
            Poll::Ready(Ok(1 << 40))
        );
        assert!(e.settle(1000));
        assert_eq!(h.bypassed.load(Ordering::SeqCst), 1000);
        assert_eq!(
            h.shared.stats(leaf.node()).unwrap().granted,
            0,
            "the tree was skipped"
        );
        // a limit set on the raw `Shared` reaches the cached answer
        h.shared
            .set_limit(
                node,
                Limits::new(Tier::per_second(1000).with_burst(100)),
                Instant::ZERO,
            )
            .unwrap();
        assert!(!e.is_unlimited());
        let Poll::Ready(Ok(n)) = e.poll_acquire(&mut cx(), &mut d, 1 << 40) else {
            panic!("the burst is there")
        };
        assert!(n <= 100);
    }

    #[test]
    fn holder_deadline_recorded_then_granted_when_due() {
        let h = clocked();
        let leaf = h
            .shared
            .insert_leaf(
                None,
                Limits::new(Tier::per_second(1000).with_burst(10)),
                1,
                Instant::ZERO,
            )
            .unwrap();
        let mut e = Engine::new(h, leaf);
        let mut d = Deadline::new();
        // the burst, then a wait
        let mut got = 0;
        let at = loop {
            match e.poll_acquire(&mut cx(), &mut d, 10) {
                Poll::Ready(Ok(n)) => {
                    assert!(e.settle(n));
                    got += n;
                }
                Poll::Ready(Err(err)) => panic!("{err}"),
                Poll::Pending => break d.take().expect("alone, it holds the timer"),
            }
        };
        assert!(got >= 10 && e.is_waiting());
        assert!(at > Instant::ZERO);
        h.now.store(at.as_nanos(), Ordering::SeqCst);
        assert!(matches!(
            e.poll_acquire(&mut cx(), &mut d, 10),
            Poll::Ready(Ok(_))
        ));
        drop(e); // cancels the unsettled grant
        assert_eq!(h.shared.stats(leaf.node()).unwrap().waiting, 0);
    }

    /// The I/O accounting rule: a stream that is not ready gives its grant back and stalls
    /// (later polls do not ask the tree); what it then moves is owed, capped at that grant,
    /// and paid first by the next call.
    #[test]
    fn poll_io_stalls_then_owes_what_moved() {
        let h = clocked();
        let leaf = h
            .shared
            .insert_leaf(
                None,
                Limits::new(Tier::per_second(1000).with_burst(100)),
                1,
                Instant::ZERO,
            )
            .unwrap();
        let mut e = Engine::new(h, leaf);
        let mut d = Deadline::new();
        let granted = || h.shared.stats(leaf.node()).unwrap().granted;
        let not_ready = |_: &mut Context<'_>, _: usize| Poll::<Result<usize, WaitError>>::Pending;
        let mut asked = 0;
        assert!(e
            .poll_io(&mut cx(), &mut d, 500, |_, n| {
                asked = n;
                Poll::<Result<usize, WaitError>>::Pending
            })
            .is_pending());
        assert_eq!(asked, 10, "one piece (rate × 10 ms) was granted");
        assert_eq!((granted(), e.stalled()), (0, Some(10)), "and given back");
        for _ in 0..5 {
            assert!(e.poll_io(&mut cx(), &mut d, 500, not_ready).is_pending());
        }
        assert_eq!(granted(), 0, "a stalled leaf asks nothing");
        assert_eq!(h.shared.stats(leaf.node()).unwrap().waiting, 0);
        // the stream moves 6 (asked for at most the grant given back): owed, not yet paid
        let mut cap = 0;
        let r = e.poll_io(&mut cx(), &mut d, 500, |_, n| {
            cap = n;
            Poll::<Result<usize, WaitError>>::Ready(Ok(6))
        });
        assert_eq!((r, cap), (Poll::Ready(Ok(6)), 10));
        assert_eq!((granted(), e.owed(), e.stalled()), (0, 6, None));
        // the next call pays first, then asks for its own grant
        let r = e.poll_io(&mut cx(), &mut d, 10, |_, n| {
            Poll::<Result<usize, WaitError>>::Ready(Ok(n))
        });
        assert_eq!(r, Poll::Ready(Ok(10)));
        assert_eq!((granted(), e.owed()), (16, 0), "6 paid once, then 10");
    }

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    #[test]
    fn blocked_thread_paused_limit_change_wakes_it() {
        let h = clocked();
        let node = h
            .shared
            .insert_node(None, Limits::per_second(0), 1, Instant::ZERO)
            .unwrap();
        let leaf = h
            .shared
            .insert_leaf(Some(node), Limits::UNLIMITED, 1, Instant::ZERO)
            .unwrap();
        let t = std::thread::spawn(move || {
            let mut e = Engine::new(h, leaf);
            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
            let mut parks = 0;
            let n = e.block(&waker, 5, |deadline| match deadline {
                // un-paused with an empty bucket: one whole token first, 1 ms at 1000/s
                Some(at) => {
                    assert_eq!(at, Instant::from_millis(1));
                    h.now.store(at.as_nanos(), Ordering::SeqCst);
                }
                None => {
                    parks += 1;
                    std::thread::park_timeout(Duration::from_secs(10));
                }
            });
            (n, parks)
        });
        while h.shared.sleeping() == 0 {
            std::thread::yield_now();
        }
        h.shared
            .set_limit(node, Limits::per_second(1000), Instant::ZERO)
            .unwrap();
        let (n, parks) = t.join().unwrap();
        // (a piece is sized when it is asked for: under the paused limit, the smallest)
        assert!(matches!(n, Ok(1..=5)), "{n:?}");
        assert!(parks >= 1);
    }

    #[test]
    fn zero_request_is_typed_error() {
        let h = clocked();
        let leaf = h
            .shared
            .insert_leaf(None, Limits::per_second(1), 1, Instant::ZERO)
            .unwrap();
        let mut e = Engine::new(h, leaf);
        assert_eq!(
            e.poll_acquire(&mut cx(), &mut Deadline::new(), 0),
            Poll::Ready(Err(WaitError::ZeroRequest))
        );
    }

    /// A root leaf of 10 per second (burst 10, pieces of 1) whose burst `try_acquire` took
    /// at 0 ms.
    fn drained() -> (&'static Clocked, LeafId, Engine<&'static Clocked>) {
        let h = clocked();
        let leaf = h
            .shared
            .insert_leaf(None, Limits::per_second(10), 1, Instant::ZERO)
            .unwrap();
        let mut e = Engine::new(h, leaf);
        // (pieces of 1 at 10/s: one take is at most 1)
        assert_eq!(
            e.try_acquire(2),
            Err(TryAcquireError::InsufficientCapacity { max: 1 })
        );
        for _ in 0..10 {
            e.try_acquire(1).unwrap();
        }
        (h, leaf, e)
    }

    #[test]
    fn try_acquire_withdraws_the_wait_counts_from_the_clock_and_bypasses_unlimited() {
        let (h, leaf, mut e) = drained();
        h.now.store(40_000_000, Ordering::SeqCst);
        // the 11th token is there at 100 ms: 60 ms after the handle's clock
        assert_eq!(
            e.try_acquire(1),
            Err(TryAcquireError::NotYet {
                wait: Some(Duration::from_millis(60))
            })
        );
        assert_eq!(e.try_acquire(0), Err(TryAcquireError::ZeroRequest));
        // a piece this leaf waits for is withdrawn first
        let mut granted = 10;
        while let Poll::Ready(r) = e.poll_acquire(&mut cx(), &mut Deadline::new(), 5) {
            let n = r.unwrap();
            assert!(e.settle(n));
            granted += n;
        }
        assert!(e.is_waiting());
        assert_eq!(h.shared.stats(leaf.node()).unwrap().waiting, 1);
        assert!(e.try_acquire(1).is_err());
        assert!(!e.is_waiting());
        let st = h.shared.stats(leaf.node()).unwrap();
        assert_eq!((st.granted, st.waiting), (granted, 0));
        // unlimited: no tree, counted as bypassed
        h.shared
            .set_limit(leaf.node(), Limits::UNLIMITED, Instant::ZERO)
            .unwrap();
        e.try_acquire(1 << 40).unwrap();
        assert_eq!(h.bypassed.load(Ordering::SeqCst), 1 << 40);
        assert_eq!(h.shared.stats(leaf.node()).unwrap().granted, granted);
    }

    #[test]
    fn check_deadline_on_the_handles_clock_and_unlimited_always_in_time() {
        let (h, leaf, mut e) = drained();
        h.now.store(500_000_000, Ordering::SeqCst);
        // 5 tokens at 500 ms; 20 need 15 more (19 spent, and one whole token to start the
        // last piece of 1, which may then go into debt): 2 s
        let ms = Instant::from_millis;
        assert_eq!(e.check_deadline(20, ms(2_000)), Ok(()));
        assert_eq!(
            e.check_deadline(20, ms(1_999)),
            Err(request::AcquireError::Deadline {
                wait: Some(Duration::from_millis(1_500))
            })
        );
        assert_eq!(
            e.check_deadline(0, ms(999)),
            Err(request::AcquireError::ZeroRequest)
        );
        assert_eq!(h.shared.stats(leaf.node()).unwrap().waiting, 0);
        h.shared
            .set_limit(leaf.node(), Limits::UNLIMITED, Instant::ZERO)
            .unwrap();
        assert_eq!(e.check_deadline(u64::MAX, Instant::ZERO), Ok(()));
    }
}
