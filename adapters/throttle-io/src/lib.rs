//! `throttle-io`: the runtime-agnostic std layer of throttle. The core
//! ([`throttle_core`]) decides; this crate shares one tree between tasks, names its nodes
//! with RAII handles, and turns decisions into `Poll`s with a runtime-supplied timer. The
//! runtime adapters (`throttle-tokio`, `throttle-smol`, `throttle-async-std`) only add a
//! clock, a timer, a way to spawn a task and their I/O traits.
//!
//! ```text
//!   Limiter (Arc: one tree, one runtime clock)
//!     └─ Node "server"  (Limits: 10 MiB/s)          Node: Clone, control handle
//!          ├─ Node "tenant A" (weight 1)
//!          │    └─ Connection ── Leaf read, Leaf write  (per-connection limits)
//!          └─ Node "tenant B" (weight 2) ...
//!   Leaf: owned by one task; poll_acquire / settle / cancel; Drop refunds and removes
//! ```
//!
//! # The run loop an adapter follows (per poll of a read or write)
//!
//! 1. If every node on the leaf's path is unlimited (checked by one atomic load, re-checked
//!    after a limit change), do the I/O directly: the tree is skipped.
//! 2. Else ask the tree ([`Leaf::poll_acquire`]): a grant of `n ≤ want`, or sleep until the
//!    tree wakes the leaf. The tree's one timer is held by the limiter's *driver task*,
//!    spawned on the runtime the first time a leaf has to wait ([`Runtime::spawn`]); a read or
//!    write future dropped mid-wait (`select!`, a timeout around `write_all`) then strands
//!    only its own piece. On a runtime that cannot spawn, the one sleeping leaf that holds the
//!    timer arms the runtime's [`Timer`] itself (the core's holder mode).
//! 3. Run the I/O with the buffer shortened to `n`, then [`Leaf::settle`] what it moved
//!    (0 when the inner stream was not ready: nothing is held while idle).
//!
//! [`Leaf::poll_io`] is exactly that; [`Throttled`] applies it to both directions of a
//! stream. Dropping a waiting leaf or [`Acquire`] future cancels: the core refunds every level
//! the reservation reached. The loop itself is the core's
//! ([`throttle_core::wait::Engine`], the same engine embassy and blocking threads drive):
//! this crate gives it the limiter's clock, the runtime's timer and the driver task.
//!
//! # Blocking threads
//!
//! No async runtime needed: [`Limiter::new`]`(`[`Threads`]`)`, then
//! [`Leaf::acquire_blocking`], or `std::io::Read`/`Write` on a [`Throttled`] wrapping any
//! blocking stream. A blocked thread is unparked by the tree, so a limit change reaches it at
//! once.
//!
//! ```
//! # use core::task::{Context, Poll};
//! use throttle_io::{BoxTimer, Limiter, Limits, Runtime};
//! # struct Std;
//! # impl Runtime for Std {
//! #     fn now(&self) -> std::time::Instant { std::time::Instant::now() }
//! #     fn timer(&self) -> BoxTimer { unreachable!("nothing waits in this example") }
//! # }
//! let limiter = Limiter::new(Std); // an adapter provides the runtime
//! let server = limiter.node(Limits::per_second(10 << 20), 1)?;
//! let tenant = server.child(Limits::UNLIMITED, 2)?; // weight 2 among its siblings
//! let conn = tenant.connection(Limits::per_second(1 << 20), Limits::per_second(1 << 20))?;
//! assert_eq!(limiter.len(), 4);
//! drop(conn);
//! assert_eq!(limiter.len(), 2);
//! server.set_limit(Limits::per_second(20 << 20))?; // reaches every waiter below
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests, not bytes
//!
//! [`Leaf::acquire`] waits for `n` tokens of any unit ("10 requests/s AND 300/min" is a node
//! with two [`Tier`]s); [`Leaf::try_acquire`] takes them only if they are there now;
//! [`Leaf::acquire_before`] fails at once with the estimated earliest
//! time when a deadline cannot be met. Tiers are token buckets, which refill continuously
//! ("300 per minute" can let ~600 through in the first minute); [`Tier::window`] counts in a
//! sliding window instead: at most `n` in any window.
//!
//! # Features
//! - `futures-io`: `AsyncRead`/`AsyncWrite` for [`Throttled`].
//! - `async-io`: `AsyncIo`, a [`Runtime`] on async-io's timers (smol, async-std). It cannot
//!   spawn (holder mode); `throttle_smol::Smol` and `throttle_async_std::AsyncStd` add their
//!   executor's spawn for the driver task.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod acquire;
mod blocking;
mod connection;
mod driver;
mod error;
mod keyed;
mod leaf;
mod limiter;
mod listener;
mod runtime;
mod stats;
mod stream;
#[cfg(test)]
mod test_rt;
mod time;

pub use acquire::Acquire;
pub use blocking::Threads;
pub use connection::{Connection, Server};
pub use error::{AcquireError, TryAcquireError};
pub use keyed::{KeyedConfig, KeyedError, KeyedNode, KeyedNodes, WhenFull};
pub use leaf::Leaf;
pub use limiter::{Limiter, Node, SharedTree};
pub use listener::{Accept, Bind, Listener};
#[cfg(feature = "async-io")]
pub use runtime::AsyncIo;
pub use runtime::{BoxTask, BoxTimer, Runtime, Timer};
pub use stats::NodeStats;
pub use stream::{wrap, Throttled};

pub use throttle_core::wait::SleepError;
pub use throttle_core::{
    Config, InsertError, Instant, Limits, LimitsError, NodeId, SetLimitError, StaleHandle, Tier,
    TierError,
};
