//! A TCP listener that registers every accepted connection with a [`Server`].

use core::net::SocketAddr;
use std::io;

use throttle_io::Server;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::Throttled;

/// Accepts connections and throttles each one: a read and a write leaf under the server's
/// node with the server's per-connection limits. Changing either limit through
/// [`Listener::server`] reaches every live connection.
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

    /// Accepts the next connection, throttled. Fails (dropping the socket) if the
    /// connection cannot be registered, as well as on `accept` errors.
    pub async fn accept(&self) -> io::Result<(Throttled<TcpStream>, SocketAddr)> {
        let (stream, addr) = self.inner.accept().await?;
        let conn = self.server.connection().map_err(io::Error::other)?;
        Ok((Throttled::new(stream, conn), addr))
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
