//! A deterministic discrete-event simulator that drives a real [`throttle_core::VecTree`] in
//! virtual time and checks the contracts of `throttle_core` (crate docs, "Contracts") on what it
//! decided.
//!
//! Describe a [`Scenario`] — a tree of limits, what each leaf wants to send ([`Demand`]),
//! io delays, short writes, timed [`Action`]s (limit changes, cancels, removals), hostile
//! timestamps, one of two [`DriverStyle`]s — and [`Scenario::run`] it. The [`Report`] gives
//! per-leaf rates against the ideal hierarchical max-min shares ([`crate::ideal`]), Jain's
//! index, the worst conformance window of every tier of every node in every phase, the
//! utilization of limited nodes, and a list of every broken invariant:
//!
//! - conformance (contracts 1 and 4): per node, per tier, per phase between limit changes,
//!   over every window `[s, t]`: tokens spent − refunded ≤ `rate·(t−s) + burst + one piece`;
//! - exact accounting (contract 5): each node's `stats().granted` equals what its leaves
//!   used, and equals the sum over its children; cancel and remove refund exactly what the
//!   driver saw granted; after everyone cancels no timer or waiter is left, and after a long
//!   idle every bucket holds exactly its burst;
//! - sanity of every decision: `Grant(n)` with `1 ≤ n ≤ want`, `Wait { until }` in the future,
//!   no error where none is expected.
//!
//! Utilization (contract 2) and fairness (contract 3) depend on the scenario, so tests assert
//! them from the report's figures. Runs are deterministic (contract 7): the same scenario
//! gives an identical report, [`Report::digest`] included.
//!
//! # Property-testing your own configuration
//!
//! ```
//! use core::time::Duration;
//! use throttle_core::{Config, Limits, Tier};
//! use throttle_tests::sim::{Demand, LeafSpec, Scenario};
//!
//! const MIB: u64 = 1 << 20;
//! // your server: 20 MiB/s with a 256 KiB burst, one tenant capped at 5 MiB/s
//! let mut sc = Scenario::new("my config", Config::DEFAULT);
//! let server = sc.node("server", None, Limits::new(Tier::per_second(20 * MIB).with_burst(256 << 10)), 1);
//! let tenant = sc.node("tenant", Some(server), Limits::per_second(5 * MIB), 1);
//! for i in 0..3 {
//!     sc.leaf(format!("t{i}"), Some(tenant), Limits::UNLIMITED, 1, LeafSpec::new(Demand::Saturating));
//! }
//! sc.leaf("other", Some(server), Limits::UNLIMITED, 1, LeafSpec::new(Demand::Saturating));
//! sc.duration = Duration::from_secs(2);
//!
//! let report = sc.run();
//! report.assert_ok(); // conformance, accounting, sanity
//! println!("{report}");
//! // fairness: the tenant keeps its cap, the other connection takes the rest
//! let other = report.leaf("other");
//! assert!((other.rate / other.ideal.unwrap() - 1.0).abs() < 0.02);
//! assert!((report.node("tenant").rate / (5 * MIB) as f64 - 1.0).abs() < 0.02);
//! ```
//!
//! To explore many configurations, generate scenarios from a seed (or with `proptest`), vary
//! [`Scenario::driver`], [`Scenario::seed`], [`Scenario::short_writes`] and
//! [`Scenario::backwards`], and assert `report.is_ok()` plus the figures you care about; see
//! `tests/tests/properties.rs` for the strategies this crate uses.

pub mod conformance;
mod driver;
mod report;
mod scenario;

pub use report::{fmt_rate, LeafReport, NodeReport, Report, TierCheck, TraceEvent};
pub use scenario::{
    limits_rate, Action, Backwards, Demand, DriverStyle, LeafSpec, NodeSpec, Runtime, Scenario,
};
