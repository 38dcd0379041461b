//! `throttle-embassy`: bandwidth limits for [embassy](https://embassy.dev) networking.
//!
//! Wraps any [`embedded_io_async::Read`] + [`Write`](embedded_io_async::Write) stream — an
//! embassy-net `TcpSocket`, a UART, a dummy — so that both directions wait for tokens of a
//! hierarchical token bucket ([`throttle_core`]): a server limit shared fairly by its
//! connections, groups below it, per-connection limits, all changeable at runtime. `no_std`, no
//! allocator, no `unsafe`; waiting uses embassy-time timers.
//!
//! ```no_run
//! use throttle_embassy::{Directions, Limiter};
//! use throttle_core::Limits;
//!
//! // room for 1 server (2 nodes: read, write) + 8 connections (2 leaves each)
//! static LIMITER: Limiter<18> = Limiter::new();
//!
//! async fn serve(socket: impl embedded_io_async::Read + embedded_io_async::Write) {
//!     let server = LIMITER
//!         .group(None, Directions::both(Limits::per_second(1 << 20)), 1)
//!         .unwrap();
//!     let Ok(mut conn) = LIMITER.wrap(socket, Some(&server), Directions::UNLIMITED) else {
//!         return; // full: refuse the connection
//!     };
//!     use embedded_io_async::Write;
//!     let _ = conn.write_all(&[0u8; 4096]).await; // 1 MiB/s at most, shared fairly
//! }   // dropping `conn` removes its leaves
//! ```
//!
//! A [`Server`] (also a `static`) adds a per-connection limit that reaches every live
//! connection when it changes: `SERVER.wrap(socket)` instead of `LIMITER.wrap(..)`.
//!
//! # The run loop (what a read or write does)
//!
//! The adapter follows the core's sharing protocol ([`throttle_core::shared`]):
//! `poll_acquire(leaf, len)` → `Grant(g)`: move at most `g` bytes, `settle` what moved;
//! `Sleep { until: Some(t) }`: this task holds the tree's one timer, arm an embassy-time timer
//! for `t`; `Sleep { until: None }`: wait to be woken (by a grant, a refund or a limit change
//! from another task). A dropped call cancels its request. See [`Throttled`].
//!
//! # Sharing
//!
//! The tree sits in an embassy-sync blocking mutex over any raw mutex
//! ([`CriticalSectionRawMutex`](embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex)
//! by default; the firmware provides the critical-section implementation, e.g. cortex-m's
//! `critical-section-single-core`). Each limiter call holds it for one tree operation.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![no_std]
#![forbid(unsafe_code)]

mod acquire;
mod error;
mod limiter;
mod lock;
mod server;
mod stream;
mod time;

#[cfg(test)]
mod tests;

pub use error::{AcquireError, Error, TryAcquireError};
pub use limiter::{Directions, Group, Leaves, Limiter, SharedTree};
pub use lock::MutexLock;
pub use server::Server;
pub use stream::Throttled;
pub use throttle_core;
