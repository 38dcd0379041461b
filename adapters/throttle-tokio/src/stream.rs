//! tokio's `AsyncRead`/`AsyncWrite` over [`throttle_io::Throttled`]: a newtype (the traits and
//! the type live in other crates), each method one call into the shared poll engine.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;

use throttle_io::{Connection, Leaf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream with both directions throttled (tokio traits). Reads and writes larger than the
/// current grant are shortened to it; while the inner stream is not ready nothing is held;
/// dropping it removes the connection's leaves. See [`throttle_io::Throttled`].
///
/// Needs `S: Unpin` for the traits (every tokio socket is; `Box::pin` others).
#[derive(Debug)]
pub struct Throttled<S>(throttle_io::Throttled<S>);

impl<S> Throttled<S> {
    /// Wraps `inner` with the two leaves of `conn` (reads, writes).
    pub fn new(inner: S, conn: Connection) -> Self {
        Throttled(throttle_io::Throttled::new(inner, conn))
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &S {
        self.0.get_ref()
    }

    /// The inner stream (bytes moved through it directly are not throttled).
    pub fn get_mut(&mut self) -> &mut S {
        self.0.get_mut()
    }

    /// The inner stream; the leaves are dropped (removed from the tree).
    pub fn into_inner(self) -> S {
        self.0.into_inner()
    }

    /// The inner stream and the connection's leaves.
    pub fn into_parts(self) -> (S, Connection) {
        self.0.into_parts()
    }

    /// Withdraws what either direction has queued (see [`throttle_io::Throttled::cancel`]).
    pub fn cancel(&mut self) {
        self.0.cancel();
    }

    /// The read side's leaf: `read_leaf().node()` changes its limit or reads its stats.
    pub fn read_leaf(&self) -> &Leaf {
        self.0.read_leaf()
    }

    /// The write side's leaf.
    pub fn write_leaf(&self) -> &Leaf {
        self.0.write_leaf()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let want = buf.remaining();
        self.get_mut()
            .0
            .poll_read_with(cx, want, |inner, cx, n| {
                if n == want {
                    let before = buf.filled().len();
                    Pin::new(inner)
                        .poll_read(cx, buf)
                        .map_ok(|()| buf.filled().len() - before)
                } else {
                    // Read into the first `n` bytes of the unfilled part, then mark them
                    // filled: no unsafe, and zeroing happens once per buffer at most.
                    let mut part = ReadBuf::new(buf.initialize_unfilled_to(n));
                    match Pin::new(inner).poll_read(cx, &mut part) {
                        Poll::Ready(Ok(())) => {
                            let k = part.filled().len();
                            buf.advance(k);
                            Poll::Ready(Ok(k))
                        }
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
            })
            .map_ok(|_| ())
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .0
            .poll_write_with(cx, buf.len(), |inner, cx, n| {
                Pin::new(inner).poll_write(cx, &buf[..n])
            })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_shutdown(cx)
    }
}
