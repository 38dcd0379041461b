//! embassy's side of the core's waiting engine ([`throttle_core::wait`]): the clock
//! (embassy-time), a sleep (an embassy-time `Timer`), a drop guard that makes every wait
//! cancel-safe, and [`Limiter::acquire`]/[`Limiter::acquire_before`] for any unit of work.
//!
//! A [`Request`] lives on the stack of one `read`/`write`/`acquire` call and borrows its
//! direction's [`Engine`]. Dropping it calls [`Engine::cancel`]: a waiting reservation and any
//! unused grant go back to the tree and the timer role passes to another waiter (after a
//! settle there is nothing to cancel).

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_time::Timer;
use throttle_core::shared::State;
use throttle_core::wait::{Engine, Handle, Sleep, SleepError, WaitError};
use throttle_core::{Fixed, Instant, LeafId};

use crate::error::{AcquireError, TryAcquireError};
use crate::limiter::{Limiter, SharedTree};
use crate::lock::MutexLock;
use crate::time::{from_embassy, now, to_embassy};

/// The engine's view of a limiter: its tree and embassy-time's clock.
impl<const N: usize, M: RawMutex> Handle for Limiter<N, M> {
    type Storage = Fixed<N>;
    type Lock = MutexLock<M, State<Fixed<N>>>;
    fn shared(&self) -> &SharedTree<N, M> {
        Limiter::shared(self)
    }
    fn now(&self) -> Instant {
        now()
    }
    /// Counted in the tree's own statistics (one lock, on an unlimited path only), so
    /// [`Limiter::stats`] counts every byte, as the std adapters' statistics do.
    fn bypassed(&self, leaf: LeafId, n: u64) {
        // (a leaf removed meanwhile has no statistics left to count in)
        let _ = Limiter::shared(self).count_bypassed(leaf, n);
    }
}

/// One direction's waiting engine (kept by the stream, so its unlimited-path answer is cached
/// across calls).
pub(crate) type DirectionEngine<'a, const N: usize, M> = Engine<&'a Limiter<N, M>>;

/// An embassy-time timer as the engine's [`Sleep`], re-made only when the deadline moves.
#[derive(Default)]
pub(crate) struct EmbassySleep(Option<(embassy_time::Instant, Timer)>);

impl Sleep for EmbassySleep {
    fn poll_until(
        &mut self,
        at: Instant,
        _now: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SleepError>> {
        let at = to_embassy(at);
        let timer = match &mut self.0 {
            Some((armed, t)) if *armed == at => t,
            slot => &mut slot.insert((at, Timer::at(at))).1,
        };
        if Pin::new(timer).poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.0 = None;
        Poll::Ready(Ok(()))
    }
}

/// One request in flight on a direction's engine. See the module docs.
pub(crate) struct Request<'e, 'a, const N: usize, M: RawMutex> {
    engine: &'e mut DirectionEngine<'a, N, M>,
    sleep: EmbassySleep,
}

impl<'e, 'a, const N: usize, M: RawMutex> Request<'e, 'a, N, M> {
    pub(crate) fn new(engine: &'e mut DirectionEngine<'a, N, M>) -> Self {
        Request {
            engine,
            sleep: EmbassySleep::default(),
        }
    }

    /// Waits until the tree grants `1..=want` tokens (`want ≥ 1`). Limit changes reach the
    /// wait (the engine registers the waker on every `Pending`).
    pub(crate) async fn acquire(&mut self, want: u64) -> Result<u64, WaitError> {
        let Request { engine, sleep } = self;
        poll_fn(|cx| engine.poll_acquire(cx, sleep, want)).await
    }

    /// Reports `used` tokens of the grant as spent; the rest goes back. `false`: the leaf is
    /// gone.
    pub(crate) fn settle(&mut self, used: u64) -> bool {
        self.engine.settle(used)
    }

    /// The stream was not ready: gives the grant back and stalls (the I/O accounting rule of
    /// [`throttle_core::wait`]). `false`: the leaf is gone.
    pub(crate) fn stall(&mut self) -> bool {
        self.engine.stall()
    }

    /// Pays for `amount` tokens already used, grant by grant (pieces may be smaller).
    pub(crate) async fn pay(&mut self, amount: u64) -> Result<(), WaitError> {
        let Request { engine, sleep } = self;
        engine.owe(amount);
        poll_fn(|cx| engine.poll_pay(cx, sleep)).await
    }
}

impl<const N: usize, M: RawMutex> Drop for Request<'_, '_, N, M> {
    fn drop(&mut self) {
        self.engine.cancel();
    }
}

impl<const N: usize, M: RawMutex> Limiter<N, M> {
    /// Waits until `n` tokens of any unit were granted to `leaf` and counts them as used
    /// (served in pieces; a leaf one task waits on at a time, as for streams). Cancel-safe:
    /// dropping the future withdraws the waiting piece (pieces already collected for an `n`
    /// larger than one piece stay spent). Limit changes reach the wait at once.
    pub async fn acquire(&self, leaf: LeafId, n: u64) -> Result<(), AcquireError> {
        self.acquire_until(leaf, n, None).await
    }

    /// Takes `n` tokens for `leaf` now, or nothing: `Ok(())` means they were granted and
    /// counted as used. Succeeds only when every tier on the path holds all `n` at once
    /// (unlike a grant through [`Limiter::acquire`], which starts a piece on one whole token
    /// and may then take a tier into debt by the rest of it, for `n > 1`). On an unlimited path
    /// it always succeeds without touching the tree. The leaf must not be waiting in an
    /// `acquire` at the same time. The core's
    /// [`Shared::try_take`](throttle_core::Shared::try_take), as on every adapter.
    pub fn try_acquire(&self, leaf: LeafId, n: u64) -> Result<(), TryAcquireError> {
        Engine::new(self, leaf).try_acquire(n)
    }

    /// Like [`Limiter::acquire`], but fails at once with [`AcquireError::Deadline`] (with how
    /// long the request would take at the earliest) when the limits cannot allow `n` tokens by
    /// `deadline`, instead of sleeping first; nothing is reserved then. A request the path can
    /// grant right away is never refused. The estimate is the core's
    /// [`Tree::earliest`](throttle_core::Tree::earliest) (a lower bound when others compete).
    pub async fn acquire_before(
        &self,
        leaf: LeafId,
        n: u64,
        deadline: embassy_time::Instant,
    ) -> Result<(), AcquireError> {
        self.acquire_until(leaf, n, Some(deadline)).await
    }

    async fn acquire_until(
        &self,
        leaf: LeafId,
        n: u64,
        deadline: Option<embassy_time::Instant>,
    ) -> Result<(), AcquireError> {
        if n == 0 {
            return Err(AcquireError::ZeroRequest);
        }
        let mut engine = Engine::new(self, leaf);
        if let Some(deadline) = deadline {
            engine.check_deadline(n, from_embassy(deadline))?;
        }
        let paid = Request::new(&mut engine).pay(n).await;
        paid.map_err(Into::into)
    }
}
