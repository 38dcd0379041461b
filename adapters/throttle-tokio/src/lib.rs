//! `throttle-tokio`: hierarchical bandwidth and rate limits for tokio. Wrap any
//! `AsyncRead + AsyncWrite` (both directions, each its own leaf and limit), accept throttled
//! connections from a [`Listener`], group connections under weighted nodes, change any limit
//! at runtime (it reaches existing connections and their sleeping tasks), read statistics, or
//! wait for tokens of any unit with [`Leaf::acquire`].
//!
//! Everything but the tokio glue (clock and timer in `time.rs`, the I/O traits in
//! `stream.rs`, the listener's glue) is [`throttle_io`], re-exported here.
//!
//! ```no_run
//! use throttle_tokio::{Limits, Listener, Server};
//! use tokio::io::AsyncWriteExt;
//!
//! # async fn run() -> std::io::Result<()> {
//! let limiter = throttle_tokio::limiter();
//! // 10 MiB/s for the whole server, 1 MiB/s per connection and direction
//! let node = limiter.node(Limits::per_second(10 << 20), 1).map_err(std::io::Error::other)?;
//! let server = Server::new(node, Limits::per_second(1 << 20), Limits::per_second(1 << 20));
//! let listener = Listener::bind("127.0.0.1:0", server.clone()).await?;
//! loop {
//!     let (mut conn, _addr) = listener.accept().await?;
//!     tokio::spawn(async move { conn.write_all(&[0; 4 << 20]).await });
//!     // later, from anywhere: reaches every live connection
//!     server.set_limit(Limits::per_second(20 << 20)).map_err(std::io::Error::other)?;
//! }
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod stream;
mod time;

pub use stream::Throttled;
pub use time::Tokio;

pub use throttle_io::{
    Acquire, AcquireError, Config, Connection, InsertError, Instant, Leaf, Limiter, Limits,
    LimitsError, Node, NodeId, NodeStats, Server, SetLimitError, SleepError, StaleHandle, Tier,
    TierError, TryAcquireError,
};

throttle_io::tcp_listener!(
    tokio::net::TcpListener,
    tokio::net::TcpStream,
    Throttled,
    tokio::net::ToSocketAddrs
);

/// A limiter on tokio's clock with the default [`Config`].
pub fn limiter() -> Limiter {
    Limiter::new(Tokio)
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
