//! A manual clock for the unit tests: time moves only when a test says so; a timer is due
//! once the clock reached its deadline (tests poll by hand, with a no-op waker).

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;

use crate::{Limiter, Runtime, Timer};

#[derive(Clone)]
pub(crate) struct Manual {
    epoch: std::time::Instant,
    offset_ns: Arc<AtomicU64>,
}

impl Manual {
    pub(crate) fn new() -> Self {
        Manual {
            epoch: std::time::Instant::now(),
            offset_ns: Arc::new(AtomicU64::new(0)),
        }
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
    fn timer(&self) -> Box<dyn Timer> {
        Box::new(ManualTimer {
            rt: self.clone(),
            at: None,
        })
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
