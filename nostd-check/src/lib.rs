//! Proof that `throttle-core` builds without `std`.
//!
//! This crate is `#![no_std]` and, with the `panic-handler` feature, defines its
//! own `#[panic_handler]`. If `throttle-core` built with `default-features = false`
//! (or anything it depends on) links `std` in any way, `std`'s panic handler comes
//! along and the build fails with
//! ``error[E0152]: found duplicate lang item `panic_impl` ``.
//!
//! Run: `cargo check -p nostd-check --features panic-handler` (this is what
//! `.ci/run` does). Select it with `-p`, never via `--workspace`/`--all-features`:
//! a workspace-wide build unifies throttle-core's features with other members,
//! which may enable `std` legitimately.
//!
//! It is a library, not a `#![no_main]` binary, on purpose: a `no_std` binary on
//! the host fails `cargo check` with "unwinding panics are not supported without
//! std" unless the whole profile is `panic = "abort"`, and cannot be linked there.
//! A library needs neither, and the duplicate-lang-item check works the same.

#![no_std]

use throttle_core as _;

#[cfg(feature = "panic-handler")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
