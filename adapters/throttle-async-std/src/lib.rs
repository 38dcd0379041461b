//! `throttle-async-std`: hierarchical bandwidth and rate limits for async-std. async-std is
//! discontinued upstream: prefer `throttle-smol` for new code; this crate stays thin.
//! Everything but the listener and the [`AsyncStd`] runtime is [`throttle_io`] (re-exported):
//! its futures-io [`Throttled`] stream and its async-io timer ([`AsyncIo`]), which async-std
//! drives; [`AsyncStd`] adds `async_std::task::spawn` for the limiter's driver task.
//!
//! ```no_run
//! use async_std::io::WriteExt;
//! use throttle_async_std::{Limits, Listener, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//!     let limiter = throttle_async_std::limiter();
//!     let node = limiter.node(Limits::per_second(10 << 20), 1)?;
//!     let server = Server::new(node, Limits::UNLIMITED, Limits::per_second(1 << 20));
//!     let listener = Listener::bind("127.0.0.1:8080", server).await?;
//!     loop {
//!         let (mut conn, _) = listener.accept().await?;
//!         async_std::task::spawn(async move { conn.write_all(&[b'x'; 1 << 20]).await });
//!     }
//! })
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

use async_std::net::{TcpListener, TcpStream};
use throttle_io::{BoxTask, BoxTimer, Runtime};

/// Wraps any stream as a connection under a node (from `throttle-io`).
pub use throttle_io::wrap;
pub use throttle_io::{
    Acquire, AcquireError, AsyncIo, Config, Connection, InsertError, Instant, Leaf, Limiter,
    Limits, LimitsError, Node, NodeId, NodeStats, Server, SetLimitError, StaleHandle, Throttled,
    Tier, TierError, TryAcquireError,
};

/// The async-std runtime: [`AsyncIo`]'s clock and timers, and the limiter's driver task
/// spawned with `async_std::task::spawn` (detached), so that a read or write future dropped
/// mid-wait does not hold up the other connections. Give it to [`Limiter::new`] (or use
/// [`limiter`]). ([`AsyncIo`] alone cannot spawn: holder mode.)
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    fn now(&self) -> std::time::Instant {
        AsyncIo.now()
    }
    fn timer(&self) -> BoxTimer {
        AsyncIo.timer()
    }
    fn spawn(&self, task: BoxTask) -> bool {
        drop(async_std::task::spawn(task));
        true
    }
}

/// A limiter on async-std ([`AsyncStd`]: async-io's timers, async-std's executor) with the
/// default [`Config`].
pub fn limiter() -> Limiter {
    Limiter::new(AsyncStd)
}

throttle_io::tcp_listener!(
    TcpListener,
    TcpStream,
    Throttled,
    async_std::net::ToSocketAddrs
);
