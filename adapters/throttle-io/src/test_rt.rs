//! A manual clock for the unit tests: time moves only when a test says so; a timer is due
//! once the clock reached its deadline (tests poll by hand, with a no-op waker). `spawn`
//! either refuses (holder mode, [`Manual::new`]) or keeps the task for the test to poll
//! ([`Manual::spawning`]).

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Mutex;

use crate::{BoxTask, BoxTimer, Limiter, Runtime, Timer};

#[derive(Clone)]
pub(crate) struct Manual {
    epoch: std::time::Instant,
    offset_ns: Arc<AtomicU64>,
    /// `Some`: spawned tasks, kept for the test to poll; `None`: cannot spawn.
    spawned: Option<Arc<Mutex<Vec<BoxTask>>>>,
    spawn_calls: Arc<AtomicUsize>,
}

impl Manual {
    /// A runtime that cannot spawn (holder mode).
    pub(crate) fn new() -> Self {
        Manual {
            epoch: std::time::Instant::now(),
            offset_ns: Arc::new(AtomicU64::new(0)),
            spawned: None,
            spawn_calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A runtime that spawns: the tasks wait in [`Manual::take_spawned`].
    pub(crate) fn spawning() -> Self {
        Manual {
            spawned: Some(Arc::default()),
            ..Self::new()
        }
    }

    /// The tasks spawned since the last call.
    pub(crate) fn take_spawned(&self) -> Vec<BoxTask> {
        self.spawned
            .as_ref()
            .map(|s| core::mem::take(&mut *s.lock().unwrap()))
            .unwrap_or_default()
    }

    /// How many times `spawn` was called.
    pub(crate) fn spawn_calls(&self) -> usize {
        self.spawn_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self, d: Duration) {
        self.offset_ns
            .fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }

    pub(crate) fn limiter(&self) -> Limiter {
        Limiter::new(self.clone())
    }
}

impl Runtime for Manual {
    fn now(&self) -> std::time::Instant {
        self.epoch + Duration::from_nanos(self.offset_ns.load(Ordering::SeqCst))
    }
    fn timer(&self) -> BoxTimer {
        BoxTimer::new(ManualTimer {
            rt: self.clone(),
            at: None,
        })
    }
    fn spawn(&self, task: BoxTask) -> bool {
        self.spawn_calls.fetch_add(1, Ordering::SeqCst);
        match &self.spawned {
            Some(s) => {
                s.lock().unwrap().push(task);
                true
            }
            None => false,
        }
    }
}

struct ManualTimer {
    rt: Manual,
    at: Option<std::time::Instant>,
}

impl Timer for ManualTimer {
    fn reset(&mut self, at: std::time::Instant) {
        self.at = Some(at);
    }
    fn poll_expired(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        match self.at {
            Some(at) if self.rt.now() >= at => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

pub(crate) fn cx() -> Context<'static> {
    Context::from_waker(core::task::Waker::noop())
}
