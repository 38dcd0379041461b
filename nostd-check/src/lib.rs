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

/// Nodes of [`MeasuredTree`]: the decimal number in the environment variable
/// `NOSTD_CHECK_NODES` when this crate is compiled, 8 without it. The size step
/// (`.ci/steps/41-size.sh`) builds it for 2, 8 and 32 (cargo rebuilds this crate, and only
/// it, when the variable changes).
pub const NODES: usize = match option_env!("NOSTD_CHECK_NODES") {
    Some(digits) => parse_nodes(digits),
    None => 8,
};

/// `NOSTD_CHECK_NODES` as a number; anything but 1 to 6 decimal digits stops the build.
const fn parse_nodes(digits: &str) -> usize {
    let bytes = digits.as_bytes();
    assert!(
        !bytes.is_empty() && bytes.len() <= 6,
        "NOSTD_CHECK_NODES: 1 to 6 decimal digits"
    );
    let mut n = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(
            digit.is_ascii_digit(),
            "NOSTD_CHECK_NODES: decimal digits only"
        );
        n = n * 10 + (digit - b'0') as usize;
        i += 1;
    }
    n
}

/// A tree of [`NODES`] nodes in a `static`-friendly form: what an MCU gateway would hold.
pub type MeasuredTree = FixedTree<NODES>;

/// Builds a [`MeasuredTree`] in `const` context (as a `static` would be).
pub const fn measured_tree() -> MeasuredTree {
    Tree::with_storage(Fixed::new(), Config::DEFAULT)
}

/// The RAM a firmware pays for the tree: the size step reads this static's size from its
/// section name (`RAM_TREE`) in the object file, so the figure is the target's own layout.
pub static RAM_TREE: MeasuredTree = measured_tree();

/// Every operation of the core, instantiated for [`MeasuredTree`], so that a release build of
/// this crate for `thumbv7em-none-eabihf` measures the flash a real firmware pays for the
/// core (`.ci/steps/41-size.sh` prints it). Not meant to be called on the host.
pub fn exercise(tree: &mut MeasuredTree, now: u64) -> Option<(NodeId, LeafId, u64)> {
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
/// embassy-sync's `CriticalSectionRawMutex`). Data only: the `.text` figure of the size step is
/// unchanged; the adapter's code size is measured by `examples/firmware`.
pub static EMBASSY_LIMITER: throttle_embassy::Limiter<8> = throttle_embassy::Limiter::new();

/// The tree behind the core's sharing layer with a critical-section lock.
#[cfg(feature = "shared")]
pub type MeasuredShared = throttle_core::CsShared<NODES>;

/// The core's own sharing layer with a critical-section lock, in a `static` (feature
/// `shared`, so that the default build's `.text` measures the bare core): proves
/// `Shared`, `State` and `CsLock` build without `std` and are `const`-constructible. Its size
/// is the RAM figure "with the sharing layer" of the size step (section name `RAM_SHARED`).
#[cfg(feature = "shared")]
pub static RAM_SHARED: MeasuredShared = throttle_core::Shared::from_lock(
    throttle_core::CsLock::new_const(throttle_core::shared::State::new(measured_tree())),
);

/// The clock and the shared tree the waiting engine is driven with in [`exercise_shared`].
#[cfg(feature = "shared")]
struct Probe(Instant);

#[cfg(feature = "shared")]
impl throttle_core::wait::Handle for Probe {
    type Storage = Fixed<NODES>;
    type Lock = throttle_core::CsLock<throttle_core::shared::State<Fixed<NODES>>>;
    fn shared(&self) -> &MeasuredShared {
        &RAM_SHARED
    }
    fn now(&self) -> Instant {
        self.0
    }
}

/// Every operation of the sharing layer on [`RAM_SHARED`] (the wake-up protocol, the timer
/// holder, the driver step) as an adapter uses them: through the core's waiting engine
/// (`wait::Engine`: acquire with a timer, settle, cancel, one throttled I/O, the driver loop).
/// Not meant to be called on the host. `.ci/steps/41-size.sh` prints the `.text` with and
/// without it.
#[cfg(feature = "shared")]
pub fn exercise_shared(leaf: LeafId, now: u64, waker: &core::task::Waker) -> Option<u64> {
    use core::task::{Context, Poll};
    use throttle_core::wait::{poll_driver, Deadline, Engine};

    let t = Instant::from_nanos(now);
    let mut cx = Context::from_waker(waker);
    let mut sleep = Deadline::new();
    let mut engine = Engine::new(Probe(t), leaf);
    let n = match engine.poll_acquire(&mut cx, &mut sleep, 1460) {
        Poll::Ready(Ok(n)) => {
            engine.settle(n);
            n
        }
        Poll::Ready(Err(_)) => return None,
        Poll::Pending => sleep.take().map_or(0, Instant::as_nanos),
    };
    engine.cancel();
    let moved = engine.poll_io(&mut cx, &mut sleep, 512, |_, k| {
        Poll::<Result<usize, throttle_core::wait::WaitError>>::Ready(Ok(k / 2))
    });
    let _ = RAM_SHARED.set_limit(leaf.node(), Limits::per_second(1 << 20), t);
    let _ = poll_driver(&Probe(t), &mut sleep, &mut cx);
    Some(n + matches!(moved, Poll::Ready(Ok(_))) as u64)
}
