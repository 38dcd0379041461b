//! [`Listener`]: one generic TCP listener for every std runtime adapter. It accepts with the
//! runtime's listener ([`Accept`]) and registers each connection with a [`Server`] — or,
//! built with [`Listener::grouped`], with one of several servers (weighted groups under a
//! common node) that a closure picks from the peer's address.

use core::fmt;
use core::future::Future;
use core::net::SocketAddr;
use std::io;

use crate::connection::{Connection, Server};

/// A runtime's TCP listener, as [`Listener`] uses it. An adapter implements it for a newtype
/// over its listener (`throttle_tokio::Tcp`, …).
pub trait Accept {
    /// An accepted socket.
    type Stream;
    /// A throttled connection, as the adapter's users get it.
    type Conn;
    /// Accepts the next socket. No `Send` bound, as for [`Bind`]: a thread-per-core
    /// runtime's accept future is `!Send`, and a work-stealing runtime's `Send` future stays
    /// `Send` for callers that name the concrete listener.
    fn accept_stream(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;
    /// Throttles `stream` with `conn`'s two leaves.
    fn throttle(stream: Self::Stream, conn: Connection) -> Self::Conn;
    /// The address it is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Binding a runtime's listener to an address of type `A` (each runtime has its own
/// address-resolution trait). No `Send` bound here: an implementation's future is `Send`
/// where its address type allows it, and a caller with concrete types sees that.
pub trait Bind<A>: Sized {
    /// Binds to `addr`.
    fn bind(addr: A) -> impl Future<Output = io::Result<Self>>;
}

/// Picks the group of a connection from its peer's address: an index into the groups, or
/// `None` to refuse the connection.
type Pick = Box<dyn Fn(SocketAddr) -> Option<usize> + Send + Sync>;

/// Accepts connections and throttles each one: a read and a write leaf under its server's
/// node (or nodes, with [`Server::per_direction`]) with that server's per-connection limits.
/// Changing a limit through the server reaches every live connection.
///
/// With [`Listener::grouped`], each connection goes to one of several servers, picked by a
/// closure from the peer's address: make each server's node a weighted child of one node
/// and the groups share it by weight.
pub struct Listener<L> {
    inner: L,
    /// Never empty (checked by the constructors).
    groups: Vec<Server>,
    pick: Option<Pick>,
}

impl<L: fmt::Debug> fmt::Debug for Listener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("inner", &self.inner)
            .field("groups", &self.groups)
            .field("pick", &self.pick.as_ref().map(|_| "closure"))
            .finish()
    }
}

impl<L: Accept> Listener<L> {
    /// Wraps a bound listener: every connection goes to `server`.
    pub fn new(inner: impl Into<L>, server: Server) -> Self {
        Listener {
            inner: inner.into(),
            groups: vec![server],
            pick: None,
        }
    }

    /// Binds a listener to `addr`: every connection goes to `server`.
    pub async fn bind<A>(addr: A, server: Server) -> io::Result<Self>
    where
        L: Bind<A>,
    {
        Ok(Self::new(L::bind(addr).await?, server))
    }

    /// Wraps a bound listener whose connections go to one of `groups`: `pick(peer)` gives the
    /// index; `None` or an index past the end refuses the connection (the socket is closed
    /// and `accept` waits for the next). `InvalidInput` if `groups` is empty.
    pub fn grouped(
        inner: impl Into<L>,
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> io::Result<Self> {
        if groups.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a grouped listener needs at least one group",
            ));
        }
        Ok(Listener {
            inner: inner.into(),
            groups,
            pick: Some(Box::new(pick)),
        })
    }

    /// Accepts the next connection, throttled. Fails (dropping the socket) if the connection
    /// cannot be registered, as well as on `accept` errors.
    pub async fn accept(&self) -> io::Result<(L::Conn, SocketAddr)> {
        loop {
            let (stream, addr) = self.inner.accept_stream().await?;
            let group = match &self.pick {
                None => self.groups.first(),
                Some(pick) => pick(addr).and_then(|i| self.groups.get(i)),
            };
            // refused by the pick: `stream` is dropped (closed)
            let Some(server) = group else { continue };
            let conn = server.connection().map_err(io::Error::other)?;
            return Ok((L::throttle(stream, conn), addr));
        }
    }

    /// The server (with [`Listener::grouped`]: the first group): its node, limits,
    /// per-connection limits and statistics.
    pub fn server(&self) -> &Server {
        // never empty: see the constructors
        &self.groups[0]
    }

    /// Every group, in the order given (one for [`Listener::new`]).
    pub fn groups(&self) -> &[Server] {
        &self.groups
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The inner listener.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }
}

/// Defines an adapter's listener glue in one line: `pub struct Tcp` (a newtype over the
/// runtime's `TcpListener`, `From` it, implementing [`Accept`] and [`Bind`] for any address
/// type implementing the runtime's `$addr` trait) and `pub type Listener =
/// throttle_io::Listener<Tcp>`. `$throttled` is the adapter's throttled stream type, with a
/// `new(stream, Connection)` constructor.
///
/// ```ignore
/// throttle_io::tcp_listener!(tokio::net::TcpListener, tokio::net::TcpStream,
///     crate::Throttled, tokio::net::ToSocketAddrs);
/// ```
#[macro_export]
macro_rules! tcp_listener {
    ($listener:ty, $stream:ty, $throttled:ident, $addr:path) => {
        /// A listener that throttles every connection it accepts: one server, or several
        /// weighted groups (see [`throttle_io::Listener`]).
        pub type Listener = $crate::Listener<Tcp>;

        /// The runtime's `TcpListener` as throttle-io's [`Accept`](throttle_io::Accept)
        /// (`Listener::new` takes a `TcpListener` too).
        #[derive(Debug)]
        pub struct Tcp(pub $listener);

        impl From<$listener> for Tcp {
            fn from(l: $listener) -> Self {
                Tcp(l)
            }
        }

        impl $crate::Accept for Tcp {
            type Stream = $stream;
            type Conn = $throttled<$stream>;
            async fn accept_stream(&self) -> ::std::io::Result<($stream, ::core::net::SocketAddr)> {
                self.0.accept().await
            }
            fn throttle(stream: $stream, conn: $crate::Connection) -> Self::Conn {
                $throttled::new(stream, conn)
            }
            fn local_addr(&self) -> ::std::io::Result<::core::net::SocketAddr> {
                self.0.local_addr()
            }
        }

        impl<A: $addr> $crate::Bind<A> for Tcp {
            async fn bind(addr: A) -> ::std::io::Result<Self> {
                Ok(Tcp(<$listener>::bind(addr).await?))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that never accepts.
    #[derive(Debug)]
    struct Never;

    impl Accept for Never {
        type Stream = ();
        type Conn = ();
        async fn accept_stream(&self) -> io::Result<((), SocketAddr)> {
            core::future::pending().await
        }
        fn throttle(_: (), _: Connection) {}
        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok(SocketAddr::from(([127, 0, 0, 1], 1)))
        }
    }

    #[test]
    fn grouped_without_groups_is_an_error_not_a_panic() {
        let e = Listener::<Never>::grouped(Never, Vec::new(), |_| Some(0)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
