//! One conformance suite for every runtime adapter, over real loopback TCP.
//!
//! The scenarios ([`scenarios`]) are written once, generic over [`Rt`] (what a test needs
//! from a runtime: block_on, spawn, sleep, bind/accept/connect) and [`Stream`] (read, write
//! on plain and throttled sockets). [`runtimes`] implements them for tokio, smol and
//! async-std, and [`suite!`] turns every scenario into a `#[test]` for one runtime
//! (`tests/tokio.rs`, `tests/smol.rs`, `tests/async_std.rs`).
//!
//! [`blocking`] holds the same contracts for blocking threads (`std::io` over
//! `std::net::TcpStream`, no runtime), run by `tests/blocking.rs`.
//!
//! Timed assertions are deliberately generous: the tests share a busy 2-core machine with
//! other builds. Precise figures are the benchmark's business.

pub mod blocking;
pub mod runtimes;
pub mod scenarios;
pub mod weighted;
pub mod window;

use core::future::Future;
use core::net::SocketAddr;
use core::time::Duration;
use std::io;

use throttle_tokio::{Config, Connection, Leaf, Limiter, Server};

/// What a scenario does with a socket.
pub trait Stream: Send + 'static {
    /// Writes all of `buf`.
    fn write_all<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Reads some bytes (0 at end of stream).
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

/// A throttled socket: a [`Stream`] whose leaves can be inspected.
pub trait Throttled: Stream {
    /// The read side's leaf.
    fn read_leaf(&self) -> &Leaf;
    /// The write side's leaf.
    fn write_leaf(&self) -> &Leaf;
}

/// What a scenario needs from a runtime.
pub trait Rt: 'static {
    /// A plain client socket.
    type Raw: Stream;
    /// A throttled socket.
    type Conn: Throttled;
    /// A throttled listener.
    type Listener: Send + Sync + 'static;

    /// A limiter on this runtime's clock and timers (default [`Config`]).
    fn limiter() -> Limiter {
        Self::limiter_with(Config::DEFAULT)
    }
    /// A limiter with a chosen [`Config`].
    fn limiter_with(config: Config) -> Limiter;
    /// Runs `f` to completion on a fresh runtime (two worker threads where the runtime has a
    /// choice).
    fn block_on<F: Future<Output = ()> + Send + 'static>(f: F);
    /// Spawns `f`; the returned future resolves to its output.
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static;
    /// Sleeps for `d`.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
    /// A listener on 127.0.0.1, any port, registering connections with `server`.
    fn bind(server: Server) -> impl Future<Output = (Self::Listener, SocketAddr)> + Send;
    /// Accepts one throttled connection.
    fn accept(l: &Self::Listener) -> impl Future<Output = Self::Conn> + Send + '_;
    /// Connects a plain socket.
    fn connect(addr: SocketAddr) -> impl Future<Output = Self::Raw> + Send;
    /// Throttles a plain socket with `conn`.
    fn wrap(raw: Self::Raw, conn: Connection) -> Self::Conn;
}

/// `Some(output)` of `f`, or `None` after `d`: a timeout that works on every runtime (and
/// drops `f` when it fires, which is what cancellation tests need).
pub async fn timeout<R: Rt, T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        R::sleep(d).await;
        None
    })
    .await
}

/// Defines one `#[test]` per scenario for the runtime `$rt`.
#[macro_export]
macro_rules! suite {
    ($rt:ty) => {
        $crate::suite!(@tests $rt;
            one_stream_accuracy,
            connection_limit_under_server_limit,
            per_direction_server_limits_each_direction,
            fairness_of_twenty_connections,
            limit_change_reaches_sleeping_writer,
            weighted_groups_share_server,
            cancel_refunds_to_other_leaf,
            dropped_stream_hands_over_to_other_connection,
            dropped_write_future_does_not_stall_others,
            idle_connection_holds_no_tokens,
            connection_close_frees_leaves,
            unlimited_skips_tree,
            acquire_before_deadline_fails_fast,
            requests_from_many_tasks_share_node,
            weighted_one_leaf_groups_8k_writes_at_60_mib,
            weighted_groups_of_three_8k_writes_at_60_mib,
            window_tier_admits_at_most_n_in_any_window,
        );
    };
    (@tests $rt:ty; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                <$rt as $crate::Rt>::block_on($crate::scenarios::$name::<$rt>());
            }
        )*
    };
}
