//! Proof that `throttle-core` and the embassy adapter `throttle-embassy` build without
//! `std`.
//!
//! This crate is `#![no_std]` and, with the `panic-handler` feature, defines its
//! own `#[panic_handler]`. If `throttle-core` built with `default-features = false`,
//! `throttle-embassy` (or anything either depends on) links `std` in any way, `std`'s panic handler comes
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
use throttle_embassy as _;

#[cfg(feature = "panic-handler")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

use throttle_core::{Config, Decision, Fixed, FixedTree, Instant, LeafId, Limits, NodeId, Tree};

/// A small tree (8 nodes) in a `static`-friendly form: what an MCU gateway would hold.
pub type SmallTree = FixedTree<8>;

/// Builds a small tree in `const` context (as a `static` would be).
pub const fn small_tree() -> SmallTree {
    Tree::with_storage(Fixed::new(), Config::DEFAULT)
}

/// Every operation of the core, instantiated for [`SmallTree`], so that a release build of
/// this crate for `thumbv7em-none-eabihf` measures the flash a real firmware pays for the
/// core (`.ci/run` prints it). Not meant to be called on the host.
pub fn exercise(tree: &mut SmallTree, now: u64) -> Option<(NodeId, LeafId, u64)> {
    let t = Instant::from_nanos(now);
    let server = tree
        .insert_node(None, Limits::per_second(1 << 20), 1, t)
        .ok()?;
    let leaf = tree
        .insert_leaf(Some(server), Limits::per_second(64 << 10), 1, t)
        .ok()?;
    let granted = match tree.acquire(leaf, 1460, t).ok()? {
        Decision::Grant(n) => {
            tree.settle(leaf, n / 2, t).ok()?;
            n
        }
        Decision::Wait { until } => until.as_nanos(),
        Decision::Paused => 0,
    };
    tree.set_limit(server, Limits::per_second(2 << 20), t)
        .ok()?;
    tree.handle_timeout(t);
    while tree.poll_ready().is_some() {}
    let _ = tree.poll_timeout();
    let _ = tree.cancel(leaf, t);
    let _ = tree.stats(server);
    Some((server, leaf, granted))
}

/// A limiter for 1 server + 3 connections in a `static`, as a firmware declares it: proves the
/// embassy adapter's limiter is `const`-constructible without `std` (the default raw mutex is
/// embassy-sync's `CriticalSectionRawMutex`). Data only: the `.text` figure of `.ci/run` is
/// unchanged; the adapter's code size is measured by `examples/firmware`.
pub static EMBASSY_LIMITER: throttle_embassy::Limiter<8> = throttle_embassy::Limiter::new();

/// The core's own sharing layer with a critical-section lock, in a `static` (feature
/// `shared`, so that the default build's `.text` measures the bare core): proves
/// `Shared`, `State` and `CsLock` build without `std` and are `const`-constructible.
#[cfg(feature = "shared")]
pub static SHARED: throttle_core::CsShared<8> = throttle_core::Shared::from_lock(
    throttle_core::CsLock::new_const(throttle_core::shared::State::new(small_tree())),
);

/// Every operation of the sharing layer on [`SHARED`] (the wake-up protocol, the timer holder
/// and the driver step). Not meant to be called on the host. `.ci/run` prints the `.text`
/// with and without it.
#[cfg(feature = "shared")]
pub fn exercise_shared(leaf: LeafId, now: u64, waker: &core::task::Waker) -> Option<u64> {
    let t = Instant::from_nanos(now);
    let n = match SHARED.poll_acquire(leaf, 1460, t, waker).ok()? {
        throttle_core::shared::Step::Grant(n) => {
            SHARED.settle(leaf, n, t).ok()?;
            n
        }
        throttle_core::shared::Step::Sleep { until } => until.map_or(0, Instant::as_nanos),
    };
    let _ = SHARED.cancel(leaf, t);
    let _ = SHARED.set_limit(leaf.node(), Limits::per_second(1 << 20), t);
    let _ = SHARED.poll_driver(t, waker);
    Some(n)
}
