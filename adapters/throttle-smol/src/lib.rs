//! `throttle-smol`: hierarchical bandwidth and rate limits for smol. Everything but the
//! listener and the [`Smol`] runtime is [`throttle_io`] (re-exported): its futures-io
//! [`Throttled`] stream and its async-io timer ([`AsyncIo`]), which smol drives; [`Smol`] adds
//! `smol::spawn` for the limiter's driver task.
//!
//! ```no_run
//! use smol::io::AsyncWriteExt;
//! use throttle_smol::{Limits, Listener, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let limiter = throttle_smol::limiter();
//!     let node = limiter.node(Limits::per_second(10 << 20), 1)?;
//!     let server = Server::new(node, Limits::UNLIMITED, Limits::per_second(1 << 20));
//!     let listener = Listener::bind("127.0.0.1:8080", server).await?;
//!     loop {
//!         let (mut conn, _) = listener.accept().await?;
//!         smol::spawn(async move { conn.write_all(&[b'x'; 1 << 20]).await }).detach();
//!     }
//! })
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

use smol::net::{TcpListener, TcpStream};
use throttle_io::{BoxTask, BoxTimer, Runtime};

/// Wraps any stream as a connection under a node (from `throttle-io`).
pub use throttle_io::wrap;
pub use throttle_io::{
    Acquire, AcquireError, AsyncIo, Config, Connection, InsertError, Instant, Leaf, Limiter,
    Limits, LimitsError, Node, NodeId, NodeStats, Server, SetLimitError, StaleHandle, Throttled,
    Tier, TierError, TryAcquireError,
};

/// The smol runtime: [`AsyncIo`]'s clock and timers, and the limiter's driver task spawned
/// on smol's global executor (`smol::spawn(..).detach()`), so that a read or write future
/// dropped mid-wait does not hold up the other connections. Give it to [`Limiter::new`] (or
/// use [`limiter`]). ([`AsyncIo`] alone cannot spawn: holder mode.)
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    fn now(&self) -> std::time::Instant {
        AsyncIo.now()
    }
    fn timer(&self) -> BoxTimer {
        AsyncIo.timer()
    }
    fn spawn(&self, task: BoxTask) -> bool {
        smol::spawn(task).detach();
        true
    }
}

/// A limiter on smol ([`Smol`]: async-io's timers, smol's executor) with the default
/// [`Config`].
pub fn limiter() -> Limiter {
    Limiter::new(Smol)
}

throttle_io::tcp_listener!(
    TcpListener,
    TcpStream,
    Throttled,
    smol::net::AsyncToSocketAddrs
);
