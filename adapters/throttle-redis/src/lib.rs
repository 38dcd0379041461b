//! One throttle limit shared by many processes through Redis or Valkey.
//!
//! * **Leases** ([`SharedLimit`]) for high rates (bytes): each process keeps its local
//!   `throttle_io` tree; a driver task feeds the rate of one node (normally the root) with
//!   this process's share of the fleet limit, a weighted max-min share by reported demand,
//!   leased for a period T (200 ms by default) and renewed at 0.75 T. Zero Redis round trips
//!   on the data path; about 1/(0.75 T) calls per second per busy process, none when idle.
//! * **Permits** ([`Permits`]) for low rates (requests), as in seed 003: slots at least
//!   `min_interval` apart across the fleet, a bounded number in the future.
//! * **Outage policy** ([`OutagePolicy`]): what a process does once its lease ends and
//!   Redis does not answer; the default keeps the last share for 10 s, then stops.
//! * **Deployments** ([`Target`]): a standalone server, a Sentinel-managed primary, or a
//!   Cluster (feature `cluster`); all keys of a limit share the hash tag `{thr:<name>}`.
//!
//! The lease logic is a sans-I/O state machine ([`LeaseState`]); the driver loop that
//! every runtime follows:
//!
//! ```text
//! loop {
//!     usage = node.stats()                      // local, no I/O
//!     if let Some(call) = state.poll_call(now, usage) {
//!         result = lease script (EVALSHA), bounded by the timeouts
//!         state.on_reply(now, sent_at, grant) | state.on_error(now, jitter)
//!     }
//!     node.set_limit(state.limit(now))          // only when it changed
//!     sleep until min(state.poll_timeout(now), now + T/4)
//! }
//! ```
//!
//! See the README for the key layout, the scripts' semantics and the bounds.
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

#[cfg(any(feature = "tokio", feature = "smol"))]
mod fleet;

mod config;
mod error;
mod lease;
pub mod local_server;
mod name;
mod permit;
mod scripts;
mod target;

pub use config::{ConfigError, LeaseConfig, OutagePolicy, MAX_RATE};
pub use error::{CallError, PermitError};
#[cfg(any(feature = "tokio", feature = "smol"))]
pub use fleet::{SetRateError, SharedLimit};
pub use lease::{Call, Grant, LeaseState, LeaseStats, LinkState, Usage};
pub use name::{LimitName, NameError, MAX_NAME_LEN};
pub use permit::{Permit, PermitConfig, Permits};
pub use target::Target;
