//! Blocking `std::io`: waiting for tokens on a plain thread, no async runtime needed.
//! [`Leaf::acquire_blocking`] for any unit of work, and `Read`/`Write` for [`Throttled`] over
//! any `std::io::Read`/`Write` (files, `std::net::TcpStream`, pipes).
//!
//! The thread waits in the core's engine ([`Engine::block`]): it parks until the tree's
//! next deadline when it holds the tree's timer, otherwise until woken; its waker unparks it,
//! so a limit change, a refund or a grant made by another thread reaches a blocked thread at
//! once. Limiters shared with async tasks work too (the driver task, if one runs, holds the
//! timer; threads then only wait to be woken).
//!
//! Accounting (the same rule as the async adapters, adapted to calls that block inside the
//! stream): a write waits for a grant, writes at most that much and settles what went out; a
//! read reads at most one grant's worth first and then waits until what it read is paid for,
//! before returning it. So a thread blocked in `read` on an idle socket holds no tokens, and
//! what the caller sees never runs ahead of the limit.

extern crate alloc;

use alloc::sync::Arc;
use alloc::task::Wake;
use core::task::Waker;
use std::io;
use std::thread::Thread;

use throttle_core::wait::{Engine, WaitError};
use throttle_core::Instant;

use crate::error::AcquireError;
use crate::leaf::Leaf;
use crate::limiter::{Limiter, Node};
use crate::runtime::{BoxTimer, Runtime, Timer};
use crate::stream::Throttled;

/// A [`Runtime`] for limiters used from blocking threads only: std's monotonic clock, no
/// async timers. A task polling a leaf of such a limiter that has to hold the tree's timer
/// gets [`AcquireError::Runtime`] (use the runtime's own adapter for async tasks).
///
/// ```
/// use std::io::Write;
/// use throttle_io::{Limiter, Limits, Threads};
///
/// let limiter = Limiter::new(Threads);
/// let node = limiter.node(Limits::per_second(1 << 20), 1)?;
/// let mut out = throttle_io::wrap(Vec::new(), &node, Limits::UNLIMITED, Limits::UNLIMITED)?;
/// out.write_all(b"at most 1 MiB/s")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl Runtime for Threads {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn timer(&self) -> BoxTimer {
        BoxTimer::new(NoTimer)
    }
}

/// The timer of [`Threads`]: cannot be armed (no async runtime).
struct NoTimer;

impl Timer for NoTimer {
    fn reset(&mut self, _at: std::time::Instant) {}
    fn poll_expired(&mut self, _cx: &mut core::task::Context<'_>) -> core::task::Poll<()> {
        core::task::Poll::Pending
    }
    fn try_reset(
        &mut self,
        _at: std::time::Instant,
    ) -> Result<(), throttle_core::wait::SleepError> {
        Err(throttle_core::wait::SleepError::NoRuntime)
    }
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

std::thread_local! {
    /// This thread's waker (made once per thread).
    static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}

/// Parks this thread until `deadline` on `limiter`'s clock (`None`: until unparked).
fn park(limiter: &Limiter, deadline: Option<Instant>) {
    match deadline.and_then(|t| limiter.to_std(t)) {
        Some(at) => {
            let now = limiter.now_std();
            if at > now {
                std::thread::park_timeout(at - now);
            }
        }
        None => std::thread::park(),
    }
}

/// Waits on `engine` by parking this thread; `Ok(grant)`.
fn block(engine: &mut Engine<Node>, limiter: &Limiter, want: u64) -> Result<u64, WaitError> {
    WAKER.with(|waker| engine.block(waker, want, |d| park(limiter, d)))
}

impl Leaf {
    /// Blocks the calling thread until `n` tokens were granted and counts them as used
    /// (served in pieces, like [`Leaf::acquire`]). No async runtime is needed; a limit change
    /// reaches the blocked thread at once. Errors: [`AcquireError::ZeroRequest`],
    /// [`AcquireError::Stale`]. Nothing is held afterwards.
    pub fn acquire_blocking(&mut self, n: u64) -> Result<(), AcquireError> {
        if n == 0 {
            return Err(AcquireError::ZeroRequest);
        }
        self.pay_blocking(n)
    }

    /// Blocks until up to `want` tokens are granted (`1 ≤ grant ≤ want`); settle the grant
    /// with [`Leaf::settle`] (what was not used goes back).
    pub fn grant_blocking(&mut self, want: u64) -> Result<u64, AcquireError> {
        let limiter = self.node().limiter().clone();
        block(self.engine(), &limiter, want).map_err(AcquireError::from)
    }

    /// Waits until `n` tokens (already used) are paid for, grant by grant (the engine's
    /// owed tokens, see the I/O accounting rule in [`throttle_core::wait`]).
    fn pay_blocking(&mut self, n: u64) -> Result<(), AcquireError> {
        let limiter = self.node().limiter().clone();
        let engine = self.engine();
        engine.owe(n);
        WAKER
            .with(|waker| engine.block_pay(waker, |d| park(&limiter, d)))
            .map_err(AcquireError::from)
    }

    /// The most one read may move before it pays: one grant of this path (all of `len` when
    /// the path is unlimited).
    fn read_cap(&mut self, len: usize) -> usize {
        if self.is_unlimited() {
            return len;
        }
        let id = self.id();
        let piece = self
            .node()
            .limiter()
            .shared()
            .with(|s| s.tree().largest_grant(id))
            .unwrap_or(1);
        usize::try_from(piece).map_or(len, |p| p.min(len))
    }
}

/// Blocking reads: at most one grant's worth is read, then paid for before it is returned
/// (a thread blocked on an idle socket holds no tokens).
impl<S: io::Read> io::Read for Throttled<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.get_mut().read(buf);
        }
        let (inner, leaf, _) = self.parts_mut();
        let cap = leaf.read_cap(buf.len());
        let n = inner.read(&mut buf[..cap])?;
        if n > 0 {
            if leaf.is_unlimited() {
                leaf.node().add_bypassed(n as u64);
            } else {
                // Only a leaf removed meanwhile (through `Limiter::shared`) fails to pay: the
                // bytes are in `buf` already, so they are returned (nothing is lost); the next
                // call reports the error.
                let _ = leaf.pay_blocking(n as u64);
            }
        }
        Ok(n)
    }
}

/// Blocking writes: wait for a grant, write at most that much, settle what went out.
impl<S: io::Write> io::Write for Throttled<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.get_mut().write(buf);
        }
        let (inner, _, leaf) = self.parts_mut();
        let g = leaf.grant_blocking(buf.len() as u64)?;
        let len = usize::try_from(g).map_or(buf.len(), |g| g.min(buf.len()));
        match inner.write(&buf[..len]) {
            Ok(n) => {
                leaf.settle(n as u64);
                Ok(n)
            }
            Err(e) => {
                leaf.settle(0);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.get_mut().flush()
    }
}
