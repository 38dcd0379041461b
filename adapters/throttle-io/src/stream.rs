//! A byte stream with both directions throttled, and its futures-io `AsyncRead`/`AsyncWrite`
//! (feature `futures-io`, for smol and async-std). tokio's traits are implemented by a newtype
//! in `throttle-tokio` over the same [`Throttled::poll_read_with`] and
//! [`Throttled::poll_write_with`].

use core::task::{Context, Poll};
use std::io;

use crate::connection::Connection;
use crate::leaf::Leaf;

/// A stream whose reads and writes each go through their own [`Leaf`]. A read or write larger
/// than the current grant is shortened to it (never an error: buffers larger than any burst
/// work); while the inner stream is not ready, nothing is held. Dropping it drops the
/// connection's leaves (removing them from the tree unless a control handle is kept).
///
/// The trait impls need `S: Unpin` (every socket type is; pin a `!Unpin` stream in a `Box`).
#[derive(Debug)]
pub struct Throttled<S> {
    inner: S,
    read: Leaf,
    write: Leaf,
}

/// Wraps any stream as a connection under `parent` with the given per-direction limits (what
/// smol's and async-std's adapters re-export as their `wrap`).
pub fn wrap<S>(
    stream: S,
    parent: &crate::Node,
    read: throttle_core::Limits,
    write: throttle_core::Limits,
) -> Result<Throttled<S>, throttle_core::InsertError> {
    Ok(Throttled::new(stream, parent.connection(read, write)?))
}

impl<S> Throttled<S> {
    /// Wraps `inner`; reads are charged to the connection's read leaf, writes to its write
    /// leaf.
    pub fn new(inner: S, conn: Connection) -> Self {
        let (read, write) = conn.into_parts();
        Throttled { inner, read, write }
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner stream (bytes moved through it directly are not throttled).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner stream and the connection's leaves.
    pub fn into_parts(self) -> (S, Connection) {
        (self.inner, Connection::new(self.read, self.write))
    }

    /// The inner stream; the leaves are dropped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The inner stream and both leaves `(read, write)`, borrowed apart.
    pub(crate) fn parts_mut(&mut self) -> (&mut S, &mut Leaf, &mut Leaf) {
        (&mut self.inner, &mut self.read, &mut self.write)
    }

    /// The read side's leaf (its [`node`](Leaf::node) is the control handle).
    pub fn read_leaf(&self) -> &Leaf {
        &self.read
    }

    /// The write side's leaf.
    pub fn write_leaf(&self) -> &Leaf {
        &self.write
    }

    /// Withdraws what either direction has queued in the tree. A read or write future dropped
    /// while it waited (a `select!` branch that lost, a timeout) cannot tell the stream; its
    /// piece stays queued (and, once granted, held) until the stream is polled again (which
    /// continues it) or dropped. The other connections are not held up by it (the limiter's
    /// driver task keeps serving them), but that one piece is spent for nothing: call this to
    /// give it back early if the stream will sit unpolled for long. On a runtime that cannot
    /// spawn the driver ([`Runtime::spawn`](crate::Runtime::spawn)), the queued leaf may also
    /// hold the tree's timer, which the other waiters then wait on: cancel then.
    pub fn cancel(&mut self) {
        self.read.cancel();
        self.write.cancel();
    }

    /// One throttled read of up to `want` bytes: `read(inner, cx, n)` must read at most `n`
    /// bytes and return how many it read. See [`Leaf::poll_io`].
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        read: impl FnOnce(&mut S, &mut Context<'_>, usize) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let inner = &mut self.inner;
        self.read.poll_io(cx, want, |cx, n| read(inner, cx, n))
    }

    /// One throttled write of up to `want` bytes: `write(inner, cx, n)` must write at most `n`
    /// bytes and return how many it wrote. See [`Leaf::poll_io`].
    pub fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        write: impl FnOnce(&mut S, &mut Context<'_>, usize) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let inner = &mut self.inner;
        self.write.poll_io(cx, want, |cx, n| write(inner, cx, n))
    }
}

#[cfg(feature = "futures-io")]
mod futures_impls {
    use core::pin::Pin;
    use core::task::{Context, Poll};
    use std::io;

    use futures_io::{AsyncRead, AsyncWrite};

    use super::Throttled;

    impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let want = buf.len();
            self.get_mut().poll_read_with(cx, want, |inner, cx, n| {
                Pin::new(inner).poll_read(cx, &mut buf[..n])
            })
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut()
                .poll_write_with(cx, buf.len(), |inner, cx, n| {
                    Pin::new(inner).poll_write(cx, &buf[..n])
                })
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_close(cx)
        }
    }
}
