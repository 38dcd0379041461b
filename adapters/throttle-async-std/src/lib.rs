//! `throttle-async-std`: hierarchical bandwidth and rate limits for async-std. async-std is
//! discontinued upstream: prefer `throttle-smol` for new code; this crate stays thin.
//! Everything but the listener is [`throttle_io`] (re-exported): its futures-io [`Throttled`] stream and its
//! async-io timer ([`AsyncIo`]), which async-std drives.
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

use core::net::SocketAddr;
use std::io;

use async_std::net::{TcpListener, TcpStream, ToSocketAddrs};

pub use throttle_io::{
    Acquire, AcquireError, AsyncIo, Config, Connection, InsertError, Instant, Leaf, Limiter,
    Limits, LimitsError, Node, NodeId, NodeStats, Server, SetLimitError, StaleHandle, Throttled,
    Tier, TierError,
};

/// A limiter on async-io's timers (which async-std drives) with the default [`Config`].
pub fn limiter() -> Limiter {
    Limiter::new(AsyncIo)
}

/// Wraps any stream as a connection under `parent` with the given per-direction limits.
pub fn wrap<S>(
    stream: S,
    parent: &Node,
    read: Limits,
    write: Limits,
) -> Result<Throttled<S>, InsertError> {
    Ok(Throttled::new(stream, parent.connection(read, write)?))
}

/// Accepts connections and throttles each one with the server's per-connection limits under
/// its node. Changing a limit through [`Listener::server`] reaches every live connection.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    server: Server,
}

impl Listener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener, server: Server) -> Self {
        Listener { inner, server }
    }

    /// Binds a listener to `addr`.
    pub async fn bind(addr: impl ToSocketAddrs, server: Server) -> io::Result<Self> {
        Ok(Self::new(TcpListener::bind(addr).await?, server))
    }

    /// Accepts the next connection, throttled (fails if it cannot be registered).
    pub async fn accept(&self) -> io::Result<(Throttled<TcpStream>, SocketAddr)> {
        let (stream, addr) = self.inner.accept().await?;
        Ok((self.server.wrap(stream).map_err(io::Error::other)?, addr))
    }

    /// The server: its node, limits, per-connection limits and statistics.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The inner listener.
    pub fn get_ref(&self) -> &TcpListener {
        &self.inner
    }
}
