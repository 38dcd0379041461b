//! `throttle-tower`: request limits as tower middleware — per service and per client, with
//! bounded memory, changeable at runtime, waiting with a deadline or rejecting with
//! `429 Too Many Requests` + `Retry-After` (or gRPC `RESOURCE_EXHAUSTED`). Usable from axum,
//! tonic, hyper-util and `tower::ServiceBuilder`.
//!
//! ```text
//!   Limiter ── total Node "200/s" ── key 10.0.0.1 → Node "10/s" ── one leaf per request
//!                                ├── key 10.0.0.2 → Node "10/s"
//!                                └── ... at most max_keys, idle keys evicted
//! ```
//!
//! The per-client map is `throttle_io::KeyedNodes` (the same one `throttle proxy` uses for
//! per-client bandwidth); limits are the core's tiers, so "10/s AND 300/min" is one `Limits`
//! with two tiers, and [`Tier::window`](throttle_io::Tier::window) gives "at most N in any
//! window". Clients share the total by max-min: a client asking less than its share leaves
//! the rest to the others.
//!
//! ```no_run
//! use std::time::Duration;
//! use throttle_tower::{Limits, Policy, RequestLimitLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = throttle_tokio::limiter();
//! let total = limiter.node(Limits::per_second(200), 1)?; // the whole service
//! let layer = RequestLimitLayer::builder(total, Limits::per_second(10)) // each client
//!     .policy(Policy::Wait(Duration::from_secs(2)))
//!     .build();
//! // axum: Router::new().route(...).layer(layer.clone()), served with
//! // into_make_service_with_connect_info::<SocketAddr>() (feature `axum`) so each client
//! // is keyed by its address; later, from anywhere:
//! layer.set_per_key(Limits::per_second(20))?;
//! # Ok(()) }
//! ```
//!
//! Costs: per request one lock of the key map, a leaf inserted and removed, and one or two
//! locks of the tree; memory: one node per key held (bounded by `max_keys`).
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;

mod key;
mod layer;

pub use key::{KeyExtractor, PeerIp, RequestHead};
pub use layer::{Limited, Policy, Rejection, RequestLimit, RequestLimitBuilder, RequestLimitLayer};
pub use throttle_io::{KeyedConfig, Limits, Tier, WhenFull};
