//! Test support for `throttle-core` (not published): a deterministic simulator that drives
//! the real tree in virtual time and checks the design's contracts, the ideal-share oracle,
//! and the built-in scenarios the `simulate` binary prints.
//!
//! - [`sim`]: scenarios, the driver, reports and the exact conformance check;
//! - [`ideal`]: hierarchical weighted max-min shares (the reference model);
//! - [`scenarios`]: the named scenarios of the design and issue documents;
//! - [`rng`]: a seeded SplitMix64, so runs never depend on a crate's RNG.

extern crate alloc;

pub mod ideal;
pub mod rng;
pub mod scenarios;
pub mod sim;
