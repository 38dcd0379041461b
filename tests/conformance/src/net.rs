//! What a portable scenario needs from a runtime: [`Net`], implemented for the std runtimes
//! ([`StdNet`], over any [`Rt`]) and for embassy ([`crate::embassy::Embassy`], two
//! embassy-net stacks in one process). Portable scenarios ([`crate::portable`]) run in ONE
//! task: concurrency is `join`/`select` (embassy-futures, runtime-agnostic), so they need no
//! `spawn` and no `Send`, which is what lets them run on a `no_std` single-threaded adapter.
//!
//! The vocabulary is the one both adapter families share: a *group* is one node per
//! direction (`throttle_embassy::Group`, `Server::per_direction` on std), a *server* is a
//! group plus per-connection limits, a *connection* is one leaf per direction.

#![allow(async_fn_in_trait)]

use core::future::Future;
use core::net::SocketAddr;
use core::time::Duration;

use throttle_core::request::{AcquireError, TryAcquireError};
use throttle_core::Limits;
use throttle_embassy::Directions;
use throttle_tokio::{Connection, Limiter, Node, Server};

use crate::{Rt, Stream, Throttled};

/// What a portable scenario does with a socket.
pub trait Io {
    /// Writes all of `buf`; `Err(())` when the socket failed.
    async fn send_all(&mut self, buf: &[u8]) -> Result<(), ()>;
    /// Reads some bytes (0 at end of stream); `Err(())` when the socket failed.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ()>;
}

impl<S: Stream> Io for S {
    async fn send_all(&mut self, buf: &[u8]) -> Result<(), ()> {
        self.write_all(buf).await.map_err(|_| ())
    }
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        self.read(buf).await.map_err(|_| ())
    }
}

/// What every adapter counts per node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tokens that went through the node: granted pieces, and on an unlimited path (where
    /// no adapter asks the tree) the bytes moved.
    pub granted: u64,
    /// Leaves below the node waiting for a piece now.
    pub waiting: u32,
}

/// Why a portable request ([`Net::acquire`]) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqError {
    /// Asked for 0.
    ZeroRequest,
    /// [`Net::acquire_before`]: the deadline cannot be met; the earliest wait (`None`: never,
    /// a paused limit).
    Deadline(Option<Duration>),
    /// [`Net::try_acquire`]: not all `n` now; how long until the path has them (`None`:
    /// paused).
    NotYet(Option<Duration>),
    /// [`Net::try_acquire`]: more than one grant on this path can ever be.
    TooLarge(u64),
    /// Anything else (the leaf is gone, no timer).
    Other,
}

/// A runtime and a network, as a portable scenario sees them.
pub trait Net: Sized + 'static {
    /// One node per direction.
    type Group: Clone;
    /// A group plus per-connection limits that reach every live connection when changed.
    type Server;
    /// The throttled end of a connection.
    type Conn: Io;
    /// The other end (not limited).
    type Raw: Io;

    /// Runs `scenario` to completion on a fresh runtime (and network).
    fn run<F: Future<Output = ()>>(scenario: impl FnOnce(Self) -> F);
    /// A group's counts (per direction).
    fn group_stats(&self, group: &Self::Group) -> Directions<Counts>;
    /// A group under `parent` (`None`: a root) with `limits` and `weight`.
    fn group(
        &self,
        parent: Option<&Self::Group>,
        limits: Directions<Limits>,
        weight: u16,
    ) -> Self::Group;
    /// Changes a group's limits (reaches every waiter below it).
    fn set_group_limits(&self, group: &Self::Group, limits: Directions<Limits>);
    /// A server with `limits` and `per_connection` limits.
    async fn server(
        &self,
        limits: Directions<Limits>,
        per_connection: Directions<Limits>,
    ) -> Self::Server;
    /// Changes a server's per-connection limits (reaches every live connection).
    fn set_connection_limits(&self, server: &Self::Server, per_connection: Directions<Limits>);
    /// Per live connection of `server`: its leaves' counts.
    fn connection_stats(&self, server: &Self::Server) -> Vec<Directions<Counts>>;
    /// A connection accepted by `server`, and its client.
    async fn accept(&self, server: &Self::Server) -> (Self::Conn, Self::Raw);
    /// A connection whose leaves (unlimited, weight 1) sit under `group`, and its peer.
    async fn attach(&self, group: Option<&Self::Group>) -> (Self::Conn, Self::Raw);
    /// A connection's leaves' counts.
    fn stats(&self, conn: &Self::Conn) -> Directions<Counts>;
    /// Sleeps for `d` on this runtime's timers.
    async fn sleep(&self, d: Duration);

    /// A leaf for requests (any unit) with `limits`, under `parent`'s read node (`None`: a
    /// root).
    type Req;
    /// A request leaf.
    fn request_leaf(&self, parent: Option<&Self::Group>, limits: Limits) -> Self::Req;
    /// Waits until `n` tokens were granted to `leaf` (cancel-safe).
    async fn acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError>;
    /// As [`Net::acquire`], but fails at once when `n` cannot be granted within `within`.
    async fn acquire_before(
        &self,
        leaf: &mut Self::Req,
        n: u64,
        within: Duration,
    ) -> Result<(), ReqError>;
    /// Takes `n` tokens now or nothing (never into debt): the adapter's `try_acquire`.
    fn try_acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError>;
    /// A request leaf's counts.
    fn request_stats(&self, leaf: &Self::Req) -> Counts;
    /// Changes a request leaf's limits.
    fn set_request_limit(&self, leaf: &Self::Req, limits: Limits);
}

/// Every adapter's `acquire`/`acquire_before` error (the core's request vocabulary).
impl From<AcquireError> for ReqError {
    fn from(e: AcquireError) -> Self {
        match e {
            AcquireError::ZeroRequest => ReqError::ZeroRequest,
            AcquireError::Deadline { wait } => ReqError::Deadline(wait),
            _ => ReqError::Other,
        }
    }
}

/// Every adapter's `try_acquire` error.
impl From<TryAcquireError> for ReqError {
    fn from(e: TryAcquireError) -> Self {
        match e {
            TryAcquireError::NotYet { wait } => ReqError::NotYet(wait),
            TryAcquireError::InsufficientCapacity { max } => ReqError::TooLarge(max),
            TryAcquireError::ZeroRequest => ReqError::ZeroRequest,
            _ => ReqError::Other,
        }
    }
}

fn counts(s: throttle_tokio::NodeStats) -> Counts {
    Counts {
        granted: s.granted,
        waiting: s.waiting,
    }
}

/// [`Net`] over a std runtime `R`: loopback TCP, one [`Limiter`] per scenario. The peer of
/// a throttled connection is itself a connection of an unlimited server of a second limiter
/// (the tree is skipped on that side).
#[derive(Debug)]
pub struct StdNet<R: Rt> {
    limiter: Limiter,
    peers: Server,
    listener: R::Listener,
    addr: SocketAddr,
}

impl<R: Rt> StdNet<R> {
    /// The limiter the scenario's nodes live in.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

/// A std [`Net::Server`]: the adapter's `Server` and its listener.
#[derive(Debug)]
pub struct StdServer<R: Rt> {
    server: Server,
    listener: R::Listener,
    addr: SocketAddr,
}

impl<R: Rt> Net for StdNet<R> {
    type Group = Directions<Node>;
    type Server = StdServer<R>;
    type Conn = R::Conn;
    type Raw = R::Conn;

    fn run<F: Future<Output = ()>>(scenario: impl FnOnce(Self) -> F) {
        R::block_on(async move {
            let peers = Server::new(
                R::limiter().node(Limits::UNLIMITED, 1).expect("peers"),
                Limits::UNLIMITED,
                Limits::UNLIMITED,
            );
            let (listener, addr) = R::bind(peers.clone()).await;
            let net = StdNet {
                limiter: R::limiter(),
                peers,
                listener,
                addr,
            };
            // boxed: a scenario's future holds its buffers; async-std's `block_on` keeps the
            // future on the test thread's stack, which it overflowed in a debug build
            Box::pin(scenario(net)).await;
        });
    }
    fn group(
        &self,
        parent: Option<&Self::Group>,
        limits: Directions<Limits>,
        weight: u16,
    ) -> Self::Group {
        let node = |p: Option<&Node>, l| match p {
            Some(p) => p.child(l, weight).expect("group node"),
            None => self.limiter.node(l, weight).expect("group node"),
        };
        Directions {
            read: node(parent.map(|p| &p.read), limits.read),
            write: node(parent.map(|p| &p.write), limits.write),
        }
    }
    fn group_stats(&self, group: &Self::Group) -> Directions<Counts> {
        Directions {
            read: counts(group.read.stats()),
            write: counts(group.write.stats()),
        }
    }
    fn set_group_limits(&self, group: &Self::Group, limits: Directions<Limits>) {
        group.read.set_limit(limits.read).expect("set limit");
        group.write.set_limit(limits.write).expect("set limit");
    }
    async fn server(
        &self,
        limits: Directions<Limits>,
        per_connection: Directions<Limits>,
    ) -> Self::Server {
        let g = self.group(None, limits, 1);
        let server =
            Server::per_direction(g.read, g.write, per_connection.read, per_connection.write);
        let (listener, addr) = R::bind(server.clone()).await;
        StdServer {
            server,
            listener,
            addr,
        }
    }
    fn set_connection_limits(&self, server: &Self::Server, per_connection: Directions<Limits>) {
        server
            .server
            .set_connection_limits(per_connection.read, per_connection.write)
            .expect("set connection limits");
    }
    fn connection_stats(&self, server: &Self::Server) -> Vec<Directions<Counts>> {
        server
            .server
            .connection_stats()
            .into_iter()
            .map(|(r, w)| Directions {
                read: counts(r),
                write: counts(w),
            })
            .collect()
    }
    async fn accept(&self, server: &Self::Server) -> (Self::Conn, Self::Raw) {
        let raw = R::connect(server.addr).await;
        let conn = R::accept(&server.listener).await;
        let raw = R::wrap(raw, self.peers.connection().expect("peer leaves"));
        (conn, raw)
    }
    async fn attach(&self, group: Option<&Self::Group>) -> (Self::Conn, Self::Raw) {
        let leaves = match group {
            Some(g) => Connection::new(
                g.read.leaf(Limits::UNLIMITED, 1).expect("leaf"),
                g.write.leaf(Limits::UNLIMITED, 1).expect("leaf"),
            ),
            None => Connection::new(
                self.limiter.leaf(Limits::UNLIMITED).expect("leaf"),
                self.limiter.leaf(Limits::UNLIMITED).expect("leaf"),
            ),
        };
        let mine = R::connect(self.addr).await;
        let peer = R::accept(&self.listener).await;
        (R::wrap(mine, leaves), peer)
    }
    fn stats(&self, conn: &Self::Conn) -> Directions<Counts> {
        Directions {
            read: counts(conn.read_leaf().node().stats()),
            write: counts(conn.write_leaf().node().stats()),
        }
    }
    async fn sleep(&self, d: Duration) {
        R::sleep(d).await;
    }

    type Req = throttle_tokio::Leaf;
    fn request_leaf(&self, parent: Option<&Self::Group>, limits: Limits) -> Self::Req {
        match parent {
            Some(g) => g.read.leaf(limits, 1).expect("leaf"),
            None => self.limiter.leaf(limits).expect("leaf"),
        }
    }
    async fn acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError> {
        leaf.acquire(n).await.map_err(ReqError::from)
    }
    async fn acquire_before(
        &self,
        leaf: &mut Self::Req,
        n: u64,
        within: Duration,
    ) -> Result<(), ReqError> {
        leaf.acquire_before(n, std::time::Instant::now() + within)
            .await
            .map_err(ReqError::from)
    }
    fn try_acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError> {
        leaf.try_acquire(n).map_err(ReqError::from)
    }
    fn request_stats(&self, leaf: &Self::Req) -> Counts {
        counts(leaf.node().stats())
    }
    fn set_request_limit(&self, leaf: &Self::Req, limits: Limits) {
        leaf.node().set_limit(limits).expect("set limit");
    }
}
