//! [`Throttled`]: an `embedded_io_async::Read + Write` stream whose two directions are leaves
//! of a [`Limiter`].
//!
//! Each `read`/`write`:
//! 1. skips the tree if every node from the leaf to the root is unlimited (checked against
//!    the tree's generation: one lock, no tree operation);
//! 2. otherwise waits for a grant `g` (cancel-safe) and hands the inner stream `min(len, g)`
//!    bytes of the buffer (a longer call is shortened, never an error);
//! 3. if the inner stream completes at once, settles what it moved; if it would block, settles
//!    0 at once — a stream that makes no progress holds no tokens — waits for it, then pays
//!    for what it moved before returning (so the next call cannot start on credit).

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embassy_sync::blocking_mutex::raw::RawMutex;
use embedded_io_async::{ErrorType, Read, ReadReady, Write, WriteReady};
use throttle_core::wait::Engine;

use crate::acquire::{DirectionEngine, Request};
use crate::error::Error;
use crate::limiter::{Leaves, Limiter};

/// Removes a connection's leaves when dropped: the part of [`Throttled`] with a `Drop`, so
/// that `Throttled` itself can be taken apart by [`Throttled::into_inner`].
struct Registration<'a, const N: usize, M: RawMutex> {
    limiter: &'a Limiter<N, M>,
    leaves: Leaves,
}

impl<const N: usize, M: RawMutex> Drop for Registration<'_, N, M> {
    fn drop(&mut self) {
        // Stale leaves (already removed by someone else) have nothing left to give back.
        let _ = self.limiter.remove_connection(&self.leaves);
    }
}

/// A stream throttled by a [`Limiter`]: reads and writes wait for tokens of their
/// direction's leaf.
///
/// Each `read`/`write` with a non-empty buffer:
/// 1. skips the tree if every node from the leaf to the root is unlimited (checked against
///    the tree's generation: one lock, no tree operation; a limit set while a call is already
///    in the inner stream applies from the next call);
/// 2. otherwise waits for a grant `g` (cancel-safe; limit changes reach the wait) and hands the
///    inner stream `min(len, g)` bytes of the buffer — a longer call is shortened, never an
///    error;
/// 3. if the inner stream completes at once, settles what it moved; if it would block, settles
///    0 at once (a stream that makes no progress holds no tokens), waits for it, then pays for
///    what it moved before returning, so the next call cannot start on credit.
///
/// Created by [`Limiter::wrap`]; dropping it (or [`Throttled::into_inner`]) removes its
/// leaves, refunding anything they held. Both `read` and `write` futures are cancel-safe with
/// respect to the limiter: dropping one mid-wait cancels its request. (Whether the inner
/// stream's own futures are cancel-safe is the inner stream's business; embassy-net's
/// `TcpSocket` read and write are.)
///
/// Cost per call on a limited path: about four short critical sections (path check, acquire,
/// settle; one more when the inner stream blocks) and no allocation; on an unlimited path,
/// one.
pub struct Throttled<'a, T, const N: usize, M: RawMutex> {
    inner: T,
    read: DirectionEngine<'a, N, M>,
    write: DirectionEngine<'a, N, M>,
    registration: Registration<'a, N, M>,
}

impl<'a, T, const N: usize, M: RawMutex> Throttled<'a, T, N, M> {
    pub(crate) fn new(limiter: &'a Limiter<N, M>, inner: T, leaves: Leaves) -> Self {
        Throttled {
            inner,
            read: Engine::new(limiter, leaves.read),
            write: Engine::new(limiter, leaves.write),
            registration: Registration { limiter, leaves },
        }
    }

    /// The connection's leaves: change its per-direction limits with
    /// [`Limiter::set_limit`]`(leaves.read.node(), ..)`, read its statistics.
    pub fn leaves(&self) -> Leaves {
        self.registration.leaves
    }

    /// The limiter this stream is throttled by.
    pub fn limiter(&self) -> &'a Limiter<N, M> {
        self.registration.limiter
    }

    /// The inner stream (reading or writing through it bypasses the limiter).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Removes the connection from the limiter and returns the inner stream.
    pub fn into_inner(self) -> T {
        let Throttled {
            inner,
            registration,
            ..
        } = self;
        drop(registration);
        inner
    }
}

impl<T, const N: usize, M: RawMutex> core::fmt::Debug for Throttled<'_, T, N, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Throttled")
            .field("leaves", &self.registration.leaves)
            .finish_non_exhaustive()
    }
}

impl<T: ErrorType, const N: usize, M: RawMutex> ErrorType for Throttled<'_, T, N, M> {
    type Error = Error<T::Error>;
}

/// The first `n` bytes of `buf` (all of it if shorter), without a panicking index.
fn prefix_mut(buf: &mut [u8], n: usize) -> &mut [u8] {
    let n = n.min(buf.len());
    match buf.split_at_mut_checked(n) {
        Some((head, _)) => head,
        None => &mut [],
    }
}

fn prefix(buf: &[u8], n: usize) -> &[u8] {
    buf.get(..n).unwrap_or(buf)
}

/// A grant as a length: never more than `len`.
fn clamp(grant: u64, len: usize) -> usize {
    usize::try_from(grant).map_or(len, |g| g.min(len))
}

impl<T: Read, const N: usize, M: RawMutex> Read for Throttled<'_, T, N, M> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let inner = &mut self.inner;
        throttled(&mut self.read, buf.len(), |n| {
            inner.read(prefix_mut(buf, n))
        })
        .await
    }
}

impl<T: Write, const N: usize, M: RawMutex> Write for Throttled<'_, T, N, M> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let inner = &mut self.inner;
        throttled(&mut self.write, buf.len(), |n| inner.write(prefix(buf, n))).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await.map_err(Error::Io)
    }
}

/// The inner stream's readiness: a read would not wait for the stream (it may still wait for
/// tokens).
impl<T: ReadReady, const N: usize, M: RawMutex> ReadReady for Throttled<'_, T, N, M> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.inner.read_ready().map_err(Error::Io)
    }
}

/// The inner stream's readiness: a write would not wait for the stream (it may still wait for
/// tokens).
impl<T: WriteReady, const N: usize, M: RawMutex> WriteReady for Throttled<'_, T, N, M> {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        self.inner.write_ready().map_err(Error::Io)
    }
}

/// One read or write of `len` bytes on `engine`'s leaf (the module docs' steps 1–3); `io(n)`
/// starts the inner operation on the first `n` bytes of the buffer.
async fn throttled<const N: usize, M: RawMutex, E, F: Future<Output = Result<usize, E>>>(
    engine: &mut DirectionEngine<'_, N, M>,
    len: usize,
    io: impl FnOnce(usize) -> F,
) -> Result<usize, Error<E>> {
    if len == 0 {
        return io(0).await.map_err(Error::Io);
    }
    if engine.is_unlimited() {
        let n = io(len).await.map_err(Error::Io)?;
        // counted in the statistics, without asking the tree for a grant
        engine.count_bypassed(n as u64);
        return Ok(n);
    }
    let mut req = Request::new(engine);
    let grant = req.acquire(len as u64).await.map_err(|_| Error::Removed)?;
    let len = clamp(grant, len);
    let mut io = pin!(io(len));
    let first = poll_fn(|cx| Poll::Ready(io.as_mut().poll(cx))).await;
    finish(&mut req, first, io, len).await
}

/// Step 3 of the module docs, shared by both directions: `first` is the inner operation's
/// first poll, `io` the operation (polled again only if `first` was `Pending`), `granted` the
/// length it was given (≤ the grant).
async fn finish<const N: usize, M: RawMutex, E>(
    req: &mut Request<'_, '_, N, M>,
    first: Poll<Result<usize, E>>,
    io: core::pin::Pin<&mut impl Future<Output = Result<usize, E>>>,
    granted: usize,
) -> Result<usize, Error<E>> {
    match first {
        Poll::Ready(Ok(n)) => {
            let n = n.min(granted);
            if req.settle(n as u64) {
                Ok(n)
            } else {
                Err(Error::Removed)
            }
        }
        Poll::Ready(Err(e)) => {
            req.settle(0);
            Err(Error::Io(e))
        }
        Poll::Pending => {
            // The stream would block: give everything back while it waits (it stalls), then
            // pay for what moved (the I/O accounting rule of `throttle_core::wait`).
            if !req.stall() {
                return Err(Error::Removed);
            }
            let n = io.await.map_err(Error::Io)?.min(granted);
            req.pay(n as u64).await.map_err(|_| Error::Removed)?;
            Ok(n)
        }
    }
}
