//! Measurement harness for the loopback benchmark (`benches/loopback/`): raw TCP pairs on
//! 127.0.0.1, a client-side meter that bins received bytes per second, the statistics the
//! report uses (rate error, worst window, Jain's index, CPU time), and plain-text/JSON output.
//!
//! Everything here is runtime plumbing shared by every limiter under test; nothing in it knows
//! which limiter is throttling the writer. Rates are always measured on the *receiving* side.

pub mod json;
pub mod meter;
pub mod net;
pub mod stats;
pub mod table;

/// One mebibyte, in bytes.
pub const MIB: u64 = 1 << 20;
/// One kibibyte, in bytes.
pub const KIB: u64 = 1 << 10;
/// The application's write buffer: every writer under test is handed 64 KiB at a time.
pub const WRITE_CHUNK: usize = 64 * 1024;
