//! The tree's lock: embassy-sync's blocking mutex, as throttle-core's [`Lock`].
//!
//! embassy-sync's [`Mutex`] hands out `&T` only (its `&mut` access is `unsafe`), so the state
//! sits in a [`RefCell`]. The sharing layer never calls `lock` from inside `lock` (a contract of
//! [`Lock`]), so the `RefCell` is never borrowed twice and its borrow check cannot fail.

use core::cell::RefCell;

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::blocking_mutex::Mutex;
use throttle_core::Lock;

/// A [`Lock`] on an embassy-sync blocking [`Mutex`] over a raw mutex `M`
/// (`CriticalSectionRawMutex` to share between interrupts and tasks,
/// `ThreadModeRawMutex` or `NoopRawMutex` within one executor).
///
/// `const`-constructible ([`MutexLock::new_const`]), so a limiter fits a `static`. Cost: one
/// raw-mutex lock (for `CriticalSectionRawMutex`, interrupts masked) per limiter call, held for
/// one tree operation (O(depth)) plus one waker call per task it wakes.
pub struct MutexLock<M: RawMutex, T>(Mutex<M, RefCell<T>>);

impl<M: RawMutex, T> MutexLock<M, T> {
    /// A lock holding `value`, usable in a `static` initializer.
    pub const fn new_const(value: T) -> Self {
        MutexLock(Mutex::new(RefCell::new(value)))
    }
}

impl<M: RawMutex, T> Lock<T> for MutexLock<M, T> {
    fn new(value: T) -> Self {
        Self::new_const(value)
    }

    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // Never reentered (see the module docs), so `borrow_mut` cannot find a borrow.
        self.0.lock(|cell| f(&mut cell.borrow_mut()))
    }
}

impl<M: RawMutex, T> core::fmt::Debug for MutexLock<M, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MutexLock { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};

    static COUNTER: MutexLock<CriticalSectionRawMutex, u32> = MutexLock::new_const(0);

    #[test]
    fn static_lock_increment_sees_value() {
        COUNTER.lock(|c| *c += 1);
        assert!(COUNTER.lock(|c| *c) >= 1);
    }

    #[test]
    fn noop_lock_new_holds_value() {
        let l: MutexLock<NoopRawMutex, u8> = Lock::new(7);
        assert_eq!(l.lock(|v| *v), 7);
    }
}
