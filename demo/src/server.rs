//! The log server: a throttle-tokio [`Listener`] on 127.0.0.1 (port 0) whose [`Server`] holds
//! the server limit and the per-connection limit; every accepted connection gets an endless
//! stream of generated log lines, written as fast as the limits let it.

use std::io;

use core::net::SocketAddr;
use throttle_tokio::{Limits, Listener, Server};
use tokio::io::AsyncWriteExt;

use crate::logs::LogGen;

/// `None` (unlimited) or bytes per second, as throttle limits.
pub(crate) fn limits(rate: Option<u64>) -> Limits {
    rate.map_or(Limits::UNLIMITED, Limits::per_second)
}

/// Binds the server and starts accepting; returns the server handle (limits, statistics) and
/// the address clients connect to.
pub(crate) async fn start(
    server_limit: Option<u64>,
    conn_limit: Option<u64>,
) -> io::Result<(Server, SocketAddr)> {
    let limiter = throttle_tokio::limiter();
    let node = limiter
        .node(limits(server_limit), 1)
        .map_err(io::Error::other)?;
    // Clients only read: the per-connection limit is on the server's write direction.
    let server = Server::new(node, Limits::UNLIMITED, limits(conn_limit));
    let listener = Listener::bind(("127.0.0.1", 0), server.clone()).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut seed = 1u64;
        while let Ok((conn, _peer)) = listener.accept().await {
            seed += 1;
            tokio::spawn(serve(conn, seed));
        }
    });
    Ok((server, addr))
}

/// Streams log lines into `conn` until the client goes away.
async fn serve(mut conn: impl AsyncWriteExt + Unpin, seed: u64) {
    let mut lines = LogGen::new(seed);
    let mut buf = Vec::with_capacity(64 * 1024 + 256);
    loop {
        buf.clear();
        lines.fill(&mut buf, 64 * 1024);
        if conn.write_all(&buf).await.is_err() {
            return;
        }
    }
}
