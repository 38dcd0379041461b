//! One conformance suite for every runtime adapter, over real TCP.
//!
//! Two kinds of scenarios, each written once:
//! - **portable** ([`portable`]): generic over [`Net`] (groups, servers, connections, sleep;
//!   one task, `join`/`select`, no spawn, no `Send`), run on tokio, smol, async-std (over
//!   loopback, [`StdNet`]) AND embassy (over two in-process embassy-net stacks,
//!   [`embassy::Embassy`]);
//! - **std** ([`scenarios`], [`weighted`]): generic over [`Rt`] (spawn, listeners,
//!   the std layer's `Limiter`, `Leaf::acquire`, statistics), run on tokio, smol, async-std;
//!   [`runtimes`] implements [`Rt`] for them.
//!
//! [`per_core`] is a small `!Send` thread-per-core runtime that runs the std runtimes' list
//! too.
//!
//! [`blocking`] holds the contracts for blocking threads (`std::io` over
//! `std::net::TcpStream`, no runtime).
//!
//! [`suite!`] turns a runtime's list into `#[test]`s: every scenario of [`ALL`] must be named
//! once, either run or skipped with a reason, and a test of the suite checks it (a scenario
//! missing from the list, or named twice, fails); [`ALL`] itself is checked against the
//! scenario files' sources (`every_scenario_is_in_all`, below). The files `tests/tokio.rs`,
//! `smol.rs`, `async_std.rs`, `per_core.rs`, `embassy.rs` and `blocking.rs` are the lists.
//!
//! Timed assertions are deliberately generous: the tests share a busy 2-core machine with
//! other builds. Precise figures are the benchmark's business.

pub mod blocking;
pub mod embassy;
pub mod net;
pub mod per_core;
pub mod portable;
pub mod runtimes;
pub mod scenarios;
pub mod weighted;

pub use net::{Net, StdNet};

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
    fn block_on<F: Future<Output = ()>>(f: F);
    /// Spawns `f`; the returned future resolves to its output.
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static;
    /// Sleeps for `d`.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
    /// A listener on 127.0.0.1, any port, registering connections with `server`.
    fn bind(server: Server) -> impl Future<Output = (Self::Listener, SocketAddr)> + Send;
    /// A listener on 127.0.0.1, any port, putting each connection into the group `pick`
    /// chooses from the peer's address (`Listener::grouped`).
    fn bind_grouped(
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> impl Future<Output = (Self::Listener, SocketAddr)> + Send;
    /// The local port of a plain client socket.
    fn local_port(raw: &Self::Raw) -> u16;
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

/// A runtime type whose portable scenarios run on the [`Net`] `Self::Net`.
pub trait HasNet {
    /// The runtime's [`Net`].
    type Net: Net;
}

impl HasNet for runtimes::Tokio {
    type Net = StdNet<Self>;
}
impl HasNet for runtimes::Smol {
    type Net = StdNet<Self>;
}
impl HasNet for runtimes::AsyncStd {
    type Net = StdNet<Self>;
}
impl HasNet for per_core::PerCore {
    type Net = StdNet<Self>;
}
impl HasNet for embassy::Embassy {
    type Net = Self;
}

/// Blocking threads, as a runtime of the suite (only [`blocking`]'s scenarios run on it).
#[derive(Debug)]
pub struct Blocking;

macro_rules! entries {
    (std: $($s:ident),* ; net: $($n:ident),* ; blocking: $($b:ident),* $(;)?) => {
        /// One entry per scenario: runs it on the runtime `R` (a std scenario needs [`Rt`],
        /// a portable one [`HasNet`], a blocking one [`Blocking`]).
        pub mod entry {
            $(
                #[doc = concat!("Runs [`crate::scenarios::", stringify!($s), "`].")]
                pub fn $s<R: $crate::Rt>() {
                    R::block_on($crate::scenarios::$s::<R>());
                }
            )*
            $(
                #[doc = concat!("Runs [`crate::portable::", stringify!($n), "`].")]
                pub fn $n<R: $crate::HasNet>() {
                    <R::Net as $crate::Net>::run($crate::portable::$n);
                }
            )*
            $(
                #[doc = concat!("Runs [`crate::blocking::", stringify!($b), "`].")]
                pub fn $b<R: Is<$crate::Blocking>>() {
                    $crate::blocking::$b();
                }
            )*
            /// `R` is `T` (the blocking entries run only on [`crate::Blocking`]).
            pub trait Is<T> {}
            impl<T> Is<T> for T {}
        }
        /// Every scenario, by name: std, then portable, then blocking.
        pub const ALL: &[&str] = &[$(stringify!($s),)* $(stringify!($n),)* $(stringify!($b),)*];
    };
}

entries! {
    std: one_stream_accuracy, connection_limit_under_server_limit,
        per_direction_server_limits_each_direction, fairness_of_twenty_connections,
        limit_change_reaches_sleeping_writer, weighted_groups_share_server,
        dropped_stream_hands_over_to_other_connection,
        dropped_write_future_does_not_stall_others, idle_connection_holds_no_tokens,
        connection_close_frees_leaves, unlimited_skips_tree,
        requests_from_many_tasks_share_node, weighted_one_leaf_groups_8k_writes_at_60_mib,
        weighted_groups_of_three_8k_writes_at_60_mib, listener_groups_share_by_weight;
    net: link_raw_throughput_reported, write_100kib_per_s_within_10_percent,
        write_1mib_per_s_within_10_percent, write_10mib_per_s_within_10_percent_or_scaled_to_link,
        read_1mib_per_s_within_10_percent, two_connections_share_server_limit_fairly,
        eight_connections_share_server_limit_fairly, limit_change_reaches_sleeping_writer_in_group,
        dropped_waiting_write_cancels_other_leaf_gets_tokens,
        idle_reader_holds_no_tokens_busy_one_gets_server_rate,
        stalled_reader_holds_nothing_and_pays_only_what_moved,
        server_per_connection_limit_under_server_limit,
        server_connection_limit_change_reaches_sleeping_connection,
        weighted_groups_share_server_limit, unlimited_path_counts_every_byte,
        request_deadline_fails_fast_and_reserves_nothing,
        request_cancel_refunds_to_other_leaf, window_tier_admits_at_most_n_in_any_window;
    blocking: blocking_one_stream_accuracy, reader_is_limited,
        connection_limit_under_server_limit_and_fairness, limit_change_reaches_blocked_writer,
        idle_reader_holds_no_tokens, requests_from_threads_share_node;
}

/// Checks one runtime's list: every name of [`ALL`] exactly once, run or skipped; every skip
/// with a reason. Called by the test [`suite!`] generates.
pub fn check_complete(runtime: &str, run: &[&str], skip: &[(&str, &str)]) {
    let mut seen: Vec<&str> = run.to_vec();
    seen.extend(skip.iter().map(|(n, _)| *n));
    let mut problems = Vec::new();
    for name in ALL {
        match seen.iter().filter(|s| *s == name).count() {
            0 => problems.push(format!("{name}: neither run nor skipped")),
            1 => {}
            k => problems.push(format!("{name}: listed {k} times")),
        }
    }
    for name in &seen {
        if !ALL.contains(name) {
            problems.push(format!("{name}: not a scenario"));
        }
    }
    for (name, reason) in skip {
        if reason.trim().len() < 10 {
            problems.push(format!(
                "{name}: skipped without a real reason ({reason:?})"
            ));
        }
    }
    assert!(problems.is_empty(), "{runtime}'s suite list: {problems:#?}");
    eprintln!(
        "{runtime}: {} scenarios run, {} skipped",
        run.len(),
        skip.len()
    );
    for (name, reason) in skip {
        eprintln!("  skip {name}: {reason}");
    }
}

/// Defines the suite of the runtime `$rt`: one `#[test]` per scenario it runs, and a test
/// that the list names every scenario (see [`check_complete`]):
///
/// ```ignore
/// throttle_conformance::suite!(Tokio;
///     run: one_stream_accuracy, write_1mib_per_s_within_10_percent;
///     skip: fairness_of_twenty_connections => "why";
/// );
/// ```
///
/// A skip names one or more scenarios and one reason (`a, b => "reason"`).
#[macro_export]
macro_rules! suite {
    ($rt:ty; run: $($name:ident),* $(,)? ; skip: $($($skip:ident),+ => $reason:literal);* $(;)?) => {
        $(
            #[test]
            fn $name() {
                $crate::entry::$name::<$rt>();
            }
        )*

        #[test]
        fn suite_names_every_scenario_once() {
            $crate::check_complete(
                stringify!($rt),
                &[$(stringify!($name)),*],
                &[$($((stringify!($skip), $reason)),+),*],
            );
        }
    };
}

/// The suite of a std runtime (tokio, smol, async-std: the same list for each): every std
/// and portable scenario but the one a poll-based stream cannot keep (reason below).
#[macro_export]
macro_rules! std_suite {
    ($rt:ty) => {
        $crate::suite!($rt;
            run: one_stream_accuracy, connection_limit_under_server_limit,
                per_direction_server_limits_each_direction, fairness_of_twenty_connections,
                limit_change_reaches_sleeping_writer, weighted_groups_share_server,
                dropped_stream_hands_over_to_other_connection,
                dropped_write_future_does_not_stall_others, idle_connection_holds_no_tokens,
                connection_close_frees_leaves, unlimited_skips_tree,
                requests_from_many_tasks_share_node, weighted_one_leaf_groups_8k_writes_at_60_mib,
                weighted_groups_of_three_8k_writes_at_60_mib, window_tier_admits_at_most_n_in_any_window,
                listener_groups_share_by_weight,
                link_raw_throughput_reported, write_100kib_per_s_within_10_percent,
                write_1mib_per_s_within_10_percent, write_10mib_per_s_within_10_percent_or_scaled_to_link,
                read_1mib_per_s_within_10_percent, two_connections_share_server_limit_fairly,
                eight_connections_share_server_limit_fairly, limit_change_reaches_sleeping_writer_in_group,
                idle_reader_holds_no_tokens_busy_one_gets_server_rate,
                stalled_reader_holds_nothing_and_pays_only_what_moved,
                server_per_connection_limit_under_server_limit,
                server_connection_limit_change_reaches_sleeping_connection,
                weighted_groups_share_server_limit, unlimited_path_counts_every_byte,
                request_deadline_fails_fast_and_reserves_nothing,
                request_cancel_refunds_to_other_leaf;
            skip:
            dropped_waiting_write_cancels_other_leaf_gets_tokens =>
                "poll-based AsyncWrite has no per-call drop hook: a dropped `write_all` future leaves \
                 its piece queued until the stream is polled again or dropped (embassy's async fn \
                 write cancels on drop); what std promises instead is \
                 dropped_write_future_does_not_stall_others (the driver task keeps the others going)";
            blocking_one_stream_accuracy, reader_is_limited,
            connection_limit_under_server_limit_and_fairness, limit_change_reaches_blocked_writer,
            idle_reader_holds_no_tokens, requests_from_threads_share_node =>
                "blocking-thread scenarios (std::io, no async runtime): tests/blocking.rs";
        );
    };
}

#[cfg(test)]
mod tests {
    /// Names of the functions `pub async fn NAME<` / `pub fn NAME()` in `src`.
    fn scenario_fns(src: &str, prefix: &str) -> Vec<String> {
        src.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| {
                l.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    /// A scenario written in a scenario file but not in [`crate::ALL`] (so in no runtime's
    /// list) fails here; so does a name in `ALL` that no file defines.
    #[test]
    fn every_scenario_is_in_all() {
        let mut defined = Vec::new();
        for src in [
            include_str!("scenarios.rs"),
            include_str!("weighted.rs"),
            include_str!("portable.rs"),
        ] {
            defined.extend(scenario_fns(src, "pub async fn "));
        }
        defined.extend(scenario_fns(include_str!("blocking.rs"), "pub fn "));
        let mut all: Vec<String> = crate::ALL.iter().map(|s| s.to_string()).collect();
        defined.sort();
        all.sort();
        assert_eq!(defined, all, "scenario files vs ALL");
    }
}
