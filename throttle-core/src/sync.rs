//! The one place that picks synchronization primitives: loom's under `cfg(loom)` (so the loom
//! tests in `tests/loom.rs` model every lock the sharing layer takes), std's otherwise, and
//! `critical-section` on MCUs. Nothing here needs atomics wider than the target has (no
//! `AtomicU64`: thumbv7em has none); the sharing layer's one atomic, [`Changes`], is a 32-bit
//! counter that falls back to "ask under the lock" where the target has no 32-bit atomics
//! (thumbv6m) and under loom.
//!
//! Each lock is a [`Lock`]: run a closure with exclusive access to the value. A closure API
//! keeps every implementation in safe code (the core is `forbid(unsafe_code)`) and matches
//! embassy-sync's blocking mutex, which an adapter wraps the same way.

#[cfg(feature = "critical-section")]
use core::cell::RefCell;

/// Exclusive access to a value, from any thread or task that can see the lock.
///
/// Implementations MUST run `f` with no other `lock` call on the same lock running
/// concurrently, and MUST NOT require `f` to be short beyond what the lock's kind implies
/// (a critical section masks interrupts for as long as `f` runs; the sharing layer keeps
/// every `f` O(depth) plus one waker call per woken waiter). `f` never calls `lock` on the
/// same lock again, so implementations need not be reentrant.
pub trait Lock<T> {
    /// A lock holding `value`.
    fn new(value: T) -> Self;
    /// Runs `f` with exclusive access.
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(all(not(loom), feature = "std"))]
pub(crate) use std::sync::Mutex;

/// A [`Lock`] on the std mutex (loom's under `cfg(loom)`). Feature `std`.
///
/// A poisoned mutex is entered anyway: the tree's operations never panic, so a panic while the
/// lock is held can only come from a waker, after the state was already consistent.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct StdLock<T>(Mutex<T>);

#[cfg(feature = "std")]
impl<T> Lock<T> for StdLock<T> {
    fn new(value: T) -> Self {
        StdLock(Mutex::new(value))
    }
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// A [`Lock`] that takes a critical section (MCUs: interrupts masked on a single core; see the
/// `critical-section` crate for the implementation a target provides). Feature
/// `critical-section`. `const`-constructible, so it fits a `static`.
#[cfg(feature = "critical-section")]
#[derive(Debug)]
pub struct CsLock<T>(critical_section::Mutex<RefCell<T>>);

#[cfg(feature = "critical-section")]
impl<T> CsLock<T> {
    /// A lock holding `value`, usable in a `static` initializer.
    pub const fn new_const(value: T) -> Self {
        CsLock(critical_section::Mutex::new(RefCell::new(value)))
    }
}

#[cfg(feature = "critical-section")]
impl<T> Lock<T> for CsLock<T> {
    fn new(value: T) -> Self {
        Self::new_const(value)
    }
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A critical section is never reentered by the sharing layer (see `Lock`), so the
        // RefCell is never borrowed twice.
        critical_section::with(|cs| f(&mut self.0.borrow(cs).borrow_mut()))
    }
}

/// A counter of tree changes, readable without the lock: bumped under the lock by every
/// change that can turn a path limited or unlimited, read with one atomic load by a waiter
/// that cached an answer. `get` is `None` where no 32-bit atomic exists (and under loom,
/// whose atomics are not `const`): the caller then asks under the lock every time.
#[cfg(all(not(loom), target_has_atomic = "32"))]
#[derive(Debug)]
pub(crate) struct Changes(core::sync::atomic::AtomicU32);

#[cfg(all(not(loom), target_has_atomic = "32"))]
impl Changes {
    pub(crate) const fn new() -> Self {
        Changes(core::sync::atomic::AtomicU32::new(0))
    }

    /// Call under the lock that publishes the change, after the change.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, core::sync::atomic::Ordering::Release);
    }

    pub(crate) fn get(&self) -> Option<u32> {
        Some(self.0.load(core::sync::atomic::Ordering::Acquire))
    }
}

/// Without 32-bit atomics (or under loom): nothing to read, waiters ask under the lock.
#[cfg(not(all(not(loom), target_has_atomic = "32")))]
#[derive(Debug)]
pub(crate) struct Changes;

#[cfg(not(all(not(loom), target_has_atomic = "32")))]
impl Changes {
    pub(crate) const fn new() -> Self {
        Changes
    }

    pub(crate) fn bump(&self) {}

    pub(crate) fn get(&self) -> Option<u32> {
        None
    }
}
