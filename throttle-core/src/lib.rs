//! `throttle-core`: a hierarchical token bucket as a pure, `no_std` state machine.
//!
//! A [`Tree`] of nodes — server → group → connection, or any depth — each with zero or more
//! token-bucket [`Tier`]s ("10 MiB/s AND 300 MiB per minute"), decides who may send how much
//! and when. It never reads a clock (every call takes `now`), never allocates on the decision
//! path, never panics and uses integer arithmetic only. Adapters (tokio, smol, embassy, …) own
//! the clocks, the sleeping and the sockets.
//!
//! # Contracts
//!
//! What it guarantees, per node and per tier. Each is a property of the simulator in `tests/`
//! (under exact timers and under a runtime's: a 1 ms timer grid, wake-up latency, stalls) and
//! an oracle of the fuzzer in `fuzz/`; the numbers are the ones tests and notes refer to.
//! 1. **Conformance**: over any interval `[s, t]`, tokens granted ≤ `rate·(t−s) + burst + one
//!    piece`, per tier.
//! 2. **Utilization**: under saturating demand a bottleneck node grants at least
//!    `rate·T − burst − one piece` over `T`.
//! 3. **Fairness at every level**: a node shares what it gets among its busy children in
//!    proportion to their weights, recursively; a child capped below its share keeps its cap and
//!    its siblings take the rest (hierarchical weighted max-min, as Linux HTB between classes;
//!    the oracle is `throttle_tests::ideal`).
//! 4. **Runtime changes**: [`Tree::set_limit`] re-evaluates every waiter at once; conformance to
//!    the new limit holds from one piece after the change.
//! 5. **Exact accounting**: tokens are never minted; [`Tree::settle`], [`Tree::cancel`] and
//!    [`Tree::remove`] give back exactly what was not used; a request larger than any burst is
//!    served in pieces.
//! 6. **Totality**: any sequence of calls (hostile timestamps, `u64::MAX` rates, zero rates,
//!    stale handles) neither panics nor overflows.
//! 7. **Determinism**: the same inputs give the same outputs.
//!
//! # The run loop
//!
//! Feed input (`acquire`, `settle`, `cancel`, `set_limit`, `handle_timeout`), then drain the
//! outputs: [`Tree::poll_ready`] (leaves another call made ready) and [`Tree::poll_timeout`]
//! (when to call `handle_timeout` next). A single-threaded driver:
//!
//! ```
//! use throttle_core::{Config, Decision, FixedTree, Instant, Limits};
//!
//! let mut tree = FixedTree::<8>::new(Config::DEFAULT);
//! let t0 = Instant::ZERO;
//! // a server limited to 1 MiB/s, one connection limited to 256 KiB/s under it
//! let server = tree.insert_node(None, Limits::per_second(1 << 20), 1, t0).unwrap();
//! let conn = tree.insert_leaf(Some(server), Limits::per_second(256 << 10), 1, t0).unwrap();
//!
//! let mut now = t0;
//! let mut sent = 0u64;
//! while sent < 1 << 20 {
//!     match tree.acquire(conn, 64 * 1024, now).unwrap() {
//!         Decision::Grant(n) => {
//!             // write up to n bytes; say how many really went out
//!             let written = n;
//!             tree.settle(conn, written, now).unwrap();
//!             sent += written;
//!         }
//!         // a real driver sleeps until `until` (or until woken, see poll_ready)
//!         Decision::Wait { until } => now = until,
//!         Decision::Paused => unreachable!("no limit is zero here"),
//!     }
//!     // leaves granted as a side effect of this call: wake their tasks
//!     while let Some(_leaf) = tree.poll_ready() {}
//! }
//! // 1 MiB at 256 KiB/s, less the 4 KiB burst: just under 4 s of virtual time
//! assert!(now >= Instant::from_millis(3_900) && now <= Instant::from_secs(4));
//! ```
//!
//! A driver serving many leaves arms **one** timer at [`Tree::poll_timeout`], calls
//! [`Tree::handle_timeout`] when it fires, and wakes whatever [`Tree::poll_ready`] returns;
//! waiters then need no timer of their own. A driver that sleeps per waiter until
//! `Wait { until }` is correct too (`until` is when the leaf's whole path has credit again) but
//! wakes more often under contention.
//!
//! # Storage and cost
//!
//! [`FixedTree<N>`] keeps `N` nodes inline (no allocator; `const`-constructible for a `static`
//! via [`Tree::with_storage`]); `VecTree` (feature `alloc`) grows. Each operation costs
//! O(depth), plus O(log n) when a node's timer moves in the one timer heap of the tree.
//!
//! # Features
//! - `alloc`: `Growable` storage and `VecTree`.
//! - `std`: implies `alloc`; adds `StdLock` (a std mutex for [`Shared`]).
//! - `critical-section`: adds `CsLock` (a critical section for [`Shared`] on MCUs,
//!   `const`-constructible for a `static`).
//!
//! # Sharing and waiting
//!
//! [`Tree`] is `&mut self`. [`Shared`] (module [`shared`]) puts it behind a [`Lock`] and adds
//! the change notice: wakers registered per leaf, one waiter holding the tree's timer, and a
//! wake-up for exactly the waiters a grant, refund or limit change concerns. Its concurrency
//! is checked with loom (`tests/loom.rs`). The usual lock choices have names:
//! `VecShared`/`StdShared<S>` (feature `std`), `CsShared<N>` (feature `critical-section`);
//! what a task does after a poll ([`shared::Step`]) and the locked state
//! ([`shared::State`]) live in [`shared`].
//!
//! Module [`wait`] is the one waiting engine every adapter drives (`no_std`, no allocation,
//! no `Send` bound, so a thread-per-core runtime can use it): the loop from a
//! [`shared::Step`] to a timer and back, settle, cancel on drop, the driver task's loop, a
//! blocking thread's loop, and the unlimited fast path on a lock-free change counter. An
//! adapter supplies a clock, a resettable sleep and a waker.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

mod bucket;
mod config;
mod decision;
mod earliest;
mod error;
mod fairq;
mod limits;
mod lists;
mod muldiv;
mod node;
pub mod request;
mod sched;
pub mod shared;
mod storage;
mod sync;
mod time;
mod timers;
mod tree;
pub mod wait;
mod window;

pub use config::{Config, MAX_PIECE_LIMIT};
pub use decision::{Decision, Stats};
pub use error::{
    AcquireError, BurstTooSmall, CancelError, InsertError, RemoveError, SetLimitError, SettleError,
    StaleHandle,
};
pub use limits::{Limits, LimitsError, Tier, TierError, MAX_PERIOD, MAX_TIERS};
pub use node::{LeafId, NodeId};
#[cfg(feature = "critical-section")]
pub use shared::CsShared;
pub use shared::Shared;
#[cfg(feature = "std")]
pub use shared::{StdShared, VecShared};
#[cfg(feature = "alloc")]
pub use storage::Growable;
pub use storage::{Fixed, Storage};
#[cfg(feature = "critical-section")]
pub use sync::CsLock;
pub use sync::Lock;
#[cfg(feature = "std")]
pub use sync::StdLock;
pub use time::Instant;
#[cfg(feature = "alloc")]
pub use tree::VecTree;
pub use tree::{FixedTree, Tree, MAX_NODES};
pub use window::SUBWINDOWS;

// Tree-level tests use `VecTree`; the workspace test run enables `alloc` (the `tests` crate does).
#[cfg(all(test, feature = "alloc"))]
mod tests;
