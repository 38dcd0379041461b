//! Connections (one leaf per direction) and servers (a node plus a per-connection limit that
//! reaches every existing connection when it changes).

extern crate alloc;

use alloc::sync::{Arc, Weak};
use std::sync::Mutex;

use throttle_core::{InsertError, Limits, SetLimitError};

use crate::leaf::Leaf;
use crate::limiter::{Node, NodeInner};
use crate::stats::NodeStats;
use crate::stream::Throttled;

/// The two leaves of one connection: what is read and what is written, each with its own
/// limit. Wrap a stream with it (`Throttled::new`); dropping the stream removes both leaves.
#[derive(Debug)]
pub struct Connection {
    pub(crate) read: Leaf,
    pub(crate) write: Leaf,
}

impl Connection {
    /// A connection from two leaves (e.g. under different parents for separate ingress and
    /// egress limits).
    pub fn new(read: Leaf, write: Leaf) -> Self {
        Connection { read, write }
    }

    /// The read side.
    pub fn read(&self) -> &Leaf {
        &self.read
    }

    /// The write side.
    pub fn write(&self) -> &Leaf {
        &self.write
    }

    /// The two leaves `(read, write)`.
    pub fn into_parts(self) -> (Leaf, Leaf) {
        (self.read, self.write)
    }
}

/// A server node that registers connections with a per-connection limit (per direction) and
/// remembers them, so that changing the per-connection limit reaches every live connection.
/// Cloning is cheap; all clones are the same server.
///
/// [`Server::new`] counts both directions in one node; [`Server::per_direction`] gives each
/// direction its own node (what embassy's `Server` does), e.g. "10 MiB/s up, 50 MiB/s down".
#[derive(Clone, Debug)]
pub struct Server(Arc<ServerInner>);

#[derive(Debug)]
struct ServerInner {
    /// The node reads are charged to (the only node with [`Server::new`]).
    node: Node,
    /// The node writes are charged to, when it is another one.
    write_node: Option<Node>,
    conns: Mutex<Registry>,
}

#[derive(Debug)]
struct Registry {
    read: Limits,
    write: Limits,
    /// `(read, write)` leaves of live connections (dead ones are pruned as the list grows).
    conns: Vec<(Weak<NodeInner>, Weak<NodeInner>)>,
    pruned_at: usize,
}

impl Server {
    /// A server on `node`: every connection gets a read leaf limited to `read` and a write
    /// leaf limited to `write` under it. The node's own limit counts both directions.
    pub fn new(node: Node, read: Limits, write: Limits) -> Self {
        Self::build(node, None, read, write)
    }

    /// A server whose directions are limited separately: every connection's read leaf goes
    /// under `read_node`, its write leaf under `write_node` (each with its per-connection
    /// limit), so `read_node`'s limit counts what all connections read and `write_node`'s what
    /// they write. The two nodes may sit anywhere in the tree (siblings under a parent, two
    /// roots); the same node twice is [`Server::new`].
    pub fn per_direction(read_node: Node, write_node: Node, read: Limits, write: Limits) -> Self {
        let write_node = (write_node.id() != read_node.id()).then_some(write_node);
        Self::build(read_node, write_node, read, write)
    }

    fn build(node: Node, write_node: Option<Node>, read: Limits, write: Limits) -> Self {
        Server(Arc::new(ServerInner {
            node,
            write_node,
            conns: Mutex::new(Registry {
                read,
                write,
                conns: Vec::new(),
                pruned_at: 0,
            }),
        }))
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection.
    pub fn connection(&self) -> Result<Connection, InsertError> {
        let mut reg = self.registry();
        let conn = Connection::new(
            self.0.node.leaf(reg.read, 1)?,
            self.write_node().leaf(reg.write, 1)?,
        );
        if reg.conns.len() >= 2 * reg.pruned_at.max(16) {
            reg.prune();
        }
        reg.conns.push((
            Arc::downgrade(&conn.read.node().0),
            Arc::downgrade(&conn.write.node().0),
        ));
        Ok(conn)
    }

    /// Registers a new connection and wraps `stream` with it (a futures-io stream, or any
    /// stream an adapter drives through [`Throttled::poll_read_with`]).
    pub fn wrap<S>(&self, stream: S) -> Result<Throttled<S>, InsertError> {
        Ok(Throttled::new(stream, self.connection()?))
    }

    /// Changes the per-connection limits, for new connections and every live one (their
    /// sleeping waiters included).
    pub fn set_connection_limits(&self, read: Limits, write: Limits) -> Result<(), SetLimitError> {
        let mut reg = self.registry();
        reg.read = read;
        reg.write = write;
        reg.prune();
        for (r, w) in &reg.conns {
            for (leaf, limits) in [(r, read), (w, write)] {
                let Some(inner) = leaf.upgrade() else {
                    continue;
                };
                // A connection closing meanwhile is no error.
                match Node(inner).set_limit(limits) {
                    Ok(()) | Err(SetLimitError::StaleHandle) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The per-connection limits `(read, write)` for new connections.
    pub fn connection_limits(&self) -> (Limits, Limits) {
        let reg = self.registry();
        (reg.read, reg.write)
    }

    /// Changes the server's own limit (reaches every connection below it at once); with
    /// [`Server::per_direction`], both directions' nodes get `limits`.
    pub fn set_limit(&self, limits: Limits) -> Result<(), SetLimitError> {
        self.set_limits(limits, limits)
    }

    /// Changes the server's limits per direction: `read` on the read node, `write` on the
    /// write node (with [`Server::new`] both are the one node: it gets `write`, the later).
    pub fn set_limits(&self, read: Limits, write: Limits) -> Result<(), SetLimitError> {
        if self.0.write_node.is_some() {
            self.0.node.set_limit(read)?;
        }
        self.write_node().set_limit(write)
    }

    /// The server node (limits, weight, statistics, child groups); with
    /// [`Server::per_direction`], the read side's.
    pub fn node(&self) -> &Node {
        &self.0.node
    }

    /// The node writes are charged to (the same as [`Server::node`] unless
    /// [`Server::per_direction`]).
    pub fn write_node(&self) -> &Node {
        self.0.write_node.as_ref().unwrap_or(&self.0.node)
    }

    /// The server node's statistics (with [`Server::per_direction`]: the read side's; see
    /// [`Server::write_node`]).
    pub fn stats(&self) -> NodeStats {
        self.0.node.stats()
    }

    /// Live connections registered through this server.
    pub fn connections(&self) -> usize {
        let mut reg = self.registry();
        reg.prune();
        reg.conns.len()
    }

    /// Statistics of every live connection, `(read, write)` leaf by leaf, oldest first (a
    /// direction whose leaf is already gone reads as zero). One lock of the tree per leaf.
    pub fn connection_stats(&self) -> Vec<(NodeStats, NodeStats)> {
        let mut reg = self.registry();
        reg.prune();
        let stats = |w: &Weak<NodeInner>| w.upgrade().map(|n| Node(n).stats()).unwrap_or_default();
        reg.conns
            .iter()
            .map(|(r, w)| (stats(r), stats(w)))
            .collect()
    }
}

impl Registry {
    /// Forgets connections whose two leaves are both gone.
    fn prune(&mut self) {
        self.conns
            .retain(|(r, w)| r.strong_count() > 0 || w.strong_count() > 0);
        self.pruned_at = self.conns.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rt::Manual;

    #[test]
    fn server_new_connection_limits_reach_live_connections() {
        let limiter = Manual::new().limiter();
        let node = limiter.node(Limits::per_second(1000), 1).unwrap();
        let server = Server::new(node, Limits::per_second(10), Limits::per_second(20));
        let conns: Vec<Connection> = (0..3).map(|_| server.connection().unwrap()).collect();
        let mut conns = conns.into_iter();
        drop(conns.next());
        let live: Vec<Connection> = conns.collect();
        assert_eq!(server.connections(), 2);
        assert_eq!(limiter.len(), 5);
        assert_eq!(server.connection_stats().len(), 2);
        server
            .set_connection_limits(Limits::per_second(30), Limits::UNLIMITED)
            .unwrap();
        for c in &live {
            assert_eq!(c.read().node().limits().unwrap(), Limits::per_second(30));
            assert_eq!(c.write().node().limits().unwrap(), Limits::UNLIMITED);
        }
        let fresh = server.connection().unwrap();
        assert_eq!(
            fresh.read().node().limits().unwrap(),
            Limits::per_second(30)
        );
        drop((live, fresh));
        assert_eq!(server.connections(), 0);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn per_direction_server_charges_each_direction_to_its_node() {
        let rt = Manual::new();
        let limiter = rt.limiter();
        let up = limiter.node(Limits::per_second(1000), 1).unwrap();
        let down = limiter.node(Limits::per_second(5000), 1).unwrap();
        let server = Server::per_direction(
            up.clone(),
            down.clone(),
            Limits::UNLIMITED,
            Limits::per_second(100),
        );
        let mut conn = server.connection().unwrap();
        assert_eq!(conn.read().node().parent().unwrap().id(), up.id());
        assert_eq!(conn.write().node().parent().unwrap().id(), down.id());
        let mut cx = crate::test_rt::cx();
        let core::task::Poll::Ready(Ok(n)) = conn.write.poll_acquire(&mut cx, 50) else {
            panic!("the write side's burst is there")
        };
        conn.write.settle(n);
        assert_eq!((up.stats().granted, down.stats().granted), (0, n));
        let per_conn = server.connection_stats();
        assert_eq!(per_conn.len(), 1);
        assert_eq!((per_conn[0].0.granted, per_conn[0].1.granted), (0, n));
        server
            .set_limits(Limits::per_second(2000), Limits::per_second(6000))
            .unwrap();
        assert_eq!(up.limits().unwrap(), Limits::per_second(2000));
        assert_eq!(down.limits().unwrap(), Limits::per_second(6000));
        // the same node twice is one shared node
        let shared =
            Server::per_direction(up.clone(), up.clone(), Limits::UNLIMITED, Limits::UNLIMITED);
        assert_eq!(shared.write_node().id(), shared.node().id());
    }
}
