//! The log server: one throttle node carrying the **server limit**, one or two weighted group
//! nodes under it, and per group a throttle-tokio [`Listener`] on 127.0.0.1 (port 0) whose
//! [`Server`] gives every accepted connection the **per-connection limit** on its write side.
//! Every connection gets an endless stream of generated log lines, written as fast as the
//! limits let it.
//!
//! ```text
//!   server node (server limit)
//!   ├── group A (weight 2) ── conn, conn, …   (each: per-connection limit)
//!   └── group B (weight 1) ── conn, conn, …
//! ```
//! Without `--groups` there is a single group of weight 1.

use core::net::SocketAddr;
use std::io;

use throttle_tokio::{Limits, Listener, Node, NodeStats, Server, SetLimitError};
use tokio::io::AsyncWriteExt;

use crate::demo::logs::LogGen;

/// `None` (unlimited) or bytes per second, as throttle limits.
pub(crate) fn limits(rate: Option<u64>) -> Limits {
    rate.map_or(Limits::UNLIMITED, Limits::per_second)
}

/// The running server: its root node and one [`Server`] + address per group.
#[derive(Debug)]
pub(crate) struct LogServer {
    root: Node,
    groups: Vec<(Server, SocketAddr)>,
}

impl LogServer {
    /// Binds one listener per entry of `weights` and starts accepting.
    pub(crate) async fn start(
        server_limit: Option<u64>,
        conn_limit: Option<u64>,
        weights: &[u16],
    ) -> io::Result<Self> {
        let root = throttle_tokio::limiter()
            .node(limits(server_limit), 1)
            .map_err(io::Error::other)?;
        let mut groups = Vec::with_capacity(weights.len());
        for (g, &weight) in weights.iter().enumerate() {
            let node = root
                .child(Limits::UNLIMITED, weight)
                .map_err(io::Error::other)?;
            // Clients only read: the per-connection limit is on the server's write side.
            let server = Server::new(node, Limits::UNLIMITED, limits(conn_limit));
            let listener = Listener::bind(("127.0.0.1", 0), server.clone()).await?;
            let addr = listener.local_addr()?;
            let mut seed = 1000 * g as u64;
            tokio::spawn(async move {
                while let Ok((conn, _peer)) = listener.accept().await {
                    seed += 1;
                    tokio::spawn(serve(conn, seed));
                }
            });
            groups.push((server, addr));
        }
        Ok(LogServer { root, groups })
    }

    /// Where the clients of group `g` connect.
    pub(crate) fn addr(&self, g: usize) -> SocketAddr {
        self.groups[g].1
    }

    /// Changes the server limit: one node above every connection.
    pub(crate) fn set_server_limit(&self, rate: Option<u64>) -> Result<(), SetLimitError> {
        self.root.set_limit(limits(rate))
    }

    /// Changes the per-connection limit of every live connection (and of new ones).
    pub(crate) fn set_conn_limit(&self, rate: Option<u64>) -> Result<(), SetLimitError> {
        for (server, _) in &self.groups {
            server.set_connection_limits(Limits::UNLIMITED, limits(rate))?;
        }
        Ok(())
    }

    /// Live connections, all groups.
    pub(crate) fn connections(&self) -> usize {
        self.groups.iter().map(|(s, _)| s.connections()).sum()
    }

    /// The server node's statistics (granted bytes, smoothed rate).
    pub(crate) fn stats(&self) -> NodeStats {
        self.root.stats()
    }
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
