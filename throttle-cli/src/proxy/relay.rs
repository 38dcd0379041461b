//! One proxied connection: two one-way pumps joined (never raced), each reading only what
//! its leaf granted, so a limit slows the *reads* and TCP's window pushes back on the sender;
//! one fixed buffer per direction, nothing queued beyond it.
//!
//! ```text
//!   client ──read (up leaf grants n)──▶ buf ──write_all──▶ upstream
//!   client ◀──write_all── buf ◀──read (down leaf grants n)── upstream
//!   EOF on one side → shutdown(Write) on the other; the other direction keeps flowing;
//!   the connection ends when both directions ended, on an error either way (both closed),
//!   after the idle timeout, or when a drain's deadline passes.
//! ```

use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::Poll;
use core::time::Duration;
use std::io;

use alloc::sync::Arc;

use throttle_tokio::Leaf;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Bytes read per grant at most, per direction: the only buffer of a connection.
pub(crate) const BUF: usize = 32 * 1024;

/// Bytes moved by one connection so far, per direction, and when it last moved one.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) up: AtomicU64,
    pub(crate) down: AtomicU64,
    /// Milliseconds since the connection opened, at the last byte or grant either way.
    last_ms: AtomicU64,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Both directions ended with EOF.
    Closed,
    /// An I/O error on either side.
    Error(io::Error),
    /// No byte either way for the idle timeout.
    Idle,
}

/// Moves bytes from `src` to `dst`, each read sized by a grant of `leaf`; on EOF shuts down
/// `dst`'s write side. Counts what it wrote in each of `moved` (connection, group, proxy).
async fn pump(
    src: &mut OwnedReadHalf,
    dst: &mut OwnedWriteHalf,
    leaf: &mut Leaf,
    moved: &[&AtomicU64; 3],
    traffic: &Traffic,
    opened: tokio::time::Instant,
) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = poll_fn(|cx| {
            leaf.poll_io(cx, BUF, |cx, n| {
                let mut rb = ReadBuf::new(&mut buf[..n]);
                match Pin::new(&mut *src).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
        })
        .await?;
        if n == 0 {
            // FIN from src: pass it on, keep the other direction open.
            dst.shutdown().await?;
            return Ok(());
        }
        dst.write_all(&buf[..n]).await?;
        for m in moved {
            m.fetch_add(n as u64, Ordering::Relaxed);
        }
        let ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        traffic.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// Relays between `client` and `upstream` (reads charged to the leaves `[up, down]`) until both directions end, an error, or the idle
/// timeout, counting bytes `[up, down]` in the connection's `traffic` and in each of `totals` (a direction waiting for its limit is not idle: `waiting` says whether either
/// leaf waits in the tree).
pub(crate) async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    [mut up, mut down]: [Leaf; 2],
    traffic: Arc<Traffic>,
    totals: [&[AtomicU64; 2]; 2],
    idle: Option<Duration>,
    waiting: impl Fn() -> bool,
) -> End {
    let opened = tokio::time::Instant::now();
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up_counters = [&traffic.up, &totals[0][0], &totals[1][0]];
    let down_counters = [&traffic.down, &totals[0][1], &totals[1][1]];
    let both = async {
        tokio::try_join!(
            pump(&mut cr, &mut uw, &mut up, &up_counters, &traffic, opened),
            pump(
                &mut ur,
                &mut cw,
                &mut down,
                &down_counters,
                &traffic,
                opened
            ),
        )
    };
    let idle_watch = async {
        let Some(idle) = idle else {
            return core::future::pending().await;
        };
        let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::time::sleep(tick).await;
            let last = Duration::from_millis(traffic.last_ms.load(Ordering::Relaxed));
            if opened.elapsed().saturating_sub(last) >= idle {
                if waiting() {
                    // throttled, not idle: count the wait as activity
                    let ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                    traffic.last_ms.store(ms, Ordering::Relaxed);
                } else {
                    return;
                }
            }
        }
    };
    tokio::select! {
        r = both => match r {
            Ok(_) => End::Closed,
            Err(e) => End::Error(e),
        },
        () = idle_watch => End::Idle,
    }
}
