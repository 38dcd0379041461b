//! [`Net`] for throttle-embassy: two embassy-net stacks in one process ([`harness`]), a
//! `Limiter<24>` leaked per scenario (no statics, so scenarios run in parallel), embassy-time's
//! std driver for time. A connection is one `TcpSocket` pair on a fresh port; its throttled
//! end is on the server stack.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

pub mod harness;

use core::cell::Cell;
use core::future::Future;
use core::time::Duration;

use embassy_net::tcp::TcpSocket;
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embedded_io_async::{Read, Write};
use throttle_core::Limits;
use throttle_embassy::{Directions, Group, Limiter, Server, Throttled};

use crate::net::{Counts, Io, Net, ReqError};

/// Node slots of a scenario's limiter (a group and eight connections take 18).
pub const NODES: usize = 24;
/// Connections one server can hold.
pub const CONNS: usize = 4;

type Lim = Limiter<NODES, CriticalSectionRawMutex>;

/// An embedded-io-async stream as a portable [`Io`].
#[derive(Debug)]
pub struct Emb<T>(pub T);

impl<T: Read + Write> Io for Emb<T> {
    async fn send_all(&mut self, buf: &[u8]) -> Result<(), ()> {
        self.0.write_all(buf).await.map_err(|_| ())
    }
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        self.0.read(buf).await.map_err(|_| ())
    }
}

/// The embassy runtime and network of one scenario.
#[allow(missing_debug_implementations)]
pub struct Embassy {
    limiter: &'static Lim,
    server: Stack<'static>,
    client: Stack<'static>,
    port: Cell<u16>,
}

impl Embassy {
    /// The scenario's limiter.
    pub fn limiter(&self) -> &'static Lim {
        self.limiter
    }

    async fn pair(&self) -> (TcpSocket<'static>, TcpSocket<'static>) {
        let port = self.port.get();
        self.port.set(port + 1);
        harness::connect(self.server, self.client, port).await
    }
}

fn counts(limiter: &Lim, leaf: throttle_core::LeafId) -> Counts {
    limiter
        .stats(leaf.node())
        .map(|s| Counts {
            granted: s.granted,
            waiting: s.waiting,
        })
        .unwrap_or_default()
}

impl Net for Embassy {
    type Group = Group;
    type Server = &'static Server<'static, NODES, CONNS, CriticalSectionRawMutex>;
    type Conn = Emb<Throttled<'static, TcpSocket<'static>, NODES, CriticalSectionRawMutex>>;
    type Raw = Emb<TcpSocket<'static>>;

    fn run<F: Future<Output = ()>>(scenario: impl FnOnce(Self) -> F) {
        let link = harness::link();
        let net = Embassy {
            limiter: Box::leak(Box::new(Lim::new())),
            server: link.server,
            client: link.client,
            port: Cell::new(harness::PORT),
        };
        harness::run(link, scenario(net));
    }
    fn group(&self, parent: Option<&Group>, limits: Directions<Limits>, weight: u16) -> Group {
        self.limiter.group(parent, limits, weight).expect("group")
    }
    fn group_stats(&self, group: &Group) -> Directions<Counts> {
        let c = |n| {
            self.limiter
                .stats(n)
                .map(|s| Counts {
                    granted: s.granted,
                    waiting: s.waiting,
                })
                .unwrap_or_default()
        };
        Directions {
            read: c(group.read),
            write: c(group.write),
        }
    }
    fn set_group_limits(&self, group: &Group, limits: Directions<Limits>) {
        self.limiter.set_limits(group, limits).expect("set limits");
    }
    async fn server(
        &self,
        limits: Directions<Limits>,
        per_connection: Directions<Limits>,
    ) -> Self::Server {
        Box::leak(Box::new(Server::new(self.limiter, limits, per_connection)))
    }
    fn set_connection_limits(&self, server: &Self::Server, per_connection: Directions<Limits>) {
        server.set_connection_limits(per_connection);
    }
    fn connection_stats(&self, server: &Self::Server) -> Vec<Directions<Counts>> {
        server
            .connection_stats()
            .iter()
            .map(|(r, w)| Directions {
                read: Counts {
                    granted: r.granted,
                    waiting: r.waiting,
                },
                write: Counts {
                    granted: w.granted,
                    waiting: w.waiting,
                },
            })
            .collect()
    }
    async fn accept(&self, server: &Self::Server) -> (Self::Conn, Self::Raw) {
        let (s, c) = self.pair().await;
        let conn = server.wrap(s).unwrap_or_else(|_| panic!("server full"));
        (Emb(conn), Emb(c))
    }
    async fn attach(&self, group: Option<&Group>) -> (Self::Conn, Self::Raw) {
        let (s, c) = self.pair().await;
        let conn = self
            .limiter
            .wrap(s, group, Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("limiter full"));
        (Emb(conn), Emb(c))
    }
    fn stats(&self, conn: &Self::Conn) -> Directions<Counts> {
        let leaves = conn.0.leaves();
        Directions {
            read: counts(self.limiter, leaves.read),
            write: counts(self.limiter, leaves.write),
        }
    }
    async fn sleep(&self, d: Duration) {
        embassy_time::Timer::after(embassy_time::Duration::from_micros(d.as_micros() as u64)).await;
    }

    type Req = throttle_core::LeafId;
    fn request_leaf(&self, parent: Option<&Group>, limits: Limits) -> Self::Req {
        // a pair of leaves (the limiter's unit of insertion); the read one takes requests
        self.limiter
            .connection(
                parent,
                Directions {
                    read: limits,
                    write: Limits::UNLIMITED,
                },
                1,
            )
            .expect("leaves")
            .read
    }
    async fn acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError> {
        self.limiter.acquire(*leaf, n).await.map_err(ReqError::from)
    }
    async fn acquire_before(
        &self,
        leaf: &mut Self::Req,
        n: u64,
        within: Duration,
    ) -> Result<(), ReqError> {
        let deadline = embassy_time::Instant::now()
            + embassy_time::Duration::from_micros(within.as_micros() as u64);
        self.limiter
            .acquire_before(*leaf, n, deadline)
            .await
            .map_err(ReqError::from)
    }
    fn try_acquire(&self, leaf: &mut Self::Req, n: u64) -> Result<(), ReqError> {
        self.limiter.try_acquire(*leaf, n).map_err(ReqError::from)
    }
    fn request_stats(&self, leaf: &Self::Req) -> Counts {
        counts(self.limiter, *leaf)
    }
    fn set_request_limit(&self, leaf: &Self::Req, limits: Limits) {
        self.limiter
            .set_limit(leaf.node(), limits)
            .expect("set limit");
    }
}
