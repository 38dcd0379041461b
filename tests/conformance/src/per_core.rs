//! A small thread-per-core runtime, the way glommio and monoio work: each "core" is one thread
//! with its own executor and timers, all `!Send` (`Rc`, `RefCell`); nothing moves between
//! cores. It implements the std layer's [`Runtime`] (a zero-sized [`ThreadPerCore`] that
//! reaches the calling thread's core through a thread-local, and hands out its `!Send` timers
//! with [`BoxTimer::local`]) and the suite's [`Rt`] ([`PerCore`]), so the std and portable
//! scenarios run on it (`tests/per_core.rs`), as do tests of several cores sharing one
//! limiter.
//!
//! Sockets are async-io's (`smol::net`), whose reactor runs on its own thread and wakes any
//! executor; the limiter's clock is `std::time::Instant`, its timers this core's.

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use alloc::sync::Arc;
use alloc::task::Wake;
use core::cell::RefCell;
use core::future::Future;
use core::net::SocketAddr;
use core::pin::{pin, Pin};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::sync::{Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

use throttle_io::{BoxTask, BoxTimer, Runtime, SleepError, Timer};
use throttle_tokio::{Config, Connection, Limiter, Server};

use crate::runtimes::Smol;
use crate::Rt;

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// One core: its tasks and its armed timers. Never leaves its thread.
pub struct Core {
    thread: Thread,
    tasks: RefCell<Vec<(Arc<Flag>, LocalTask)>>,
    spawned: RefCell<VecDeque<LocalTask>>,
    timers: RefCell<Vec<(Instant, Waker)>>,
}

/// A task's "woken" flag; waking it unparks the core's thread (wakers are `Send + Sync`).
struct Flag {
    woken: AtomicBool,
    thread: Thread,
}

impl Flag {
    fn new(thread: Thread) -> Arc<Self> {
        Arc::new(Flag {
            woken: AtomicBool::new(true),
            thread,
        })
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

impl Core {
    /// Runs `main` on a new core on this thread, with whatever it spawns, until `main` ends
    /// (the spawned tasks still running, such as a limiter's driver, are dropped then).
    pub fn block_on<T>(main: impl Future<Output = T>) -> T {
        let core = Rc::new(Core {
            thread: thread::current(),
            tasks: RefCell::default(),
            spawned: RefCell::default(),
            timers: RefCell::default(),
        });
        let previous = CURRENT.with(|c| c.replace(Some(core.clone())));
        let mut main = pin!(main);
        let main_flag = Flag::new(core.thread.clone());
        let main_waker = Waker::from(main_flag.clone());
        let out = loop {
            if main_flag.woken.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(v) = main.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                    break v;
                }
            }
            core.run_tasks();
            core.fire_timers_or_park(&main_flag);
        };
        CURRENT.with(|c| c.replace(previous));
        out
    }

    /// Polls every woken task once (and the newly spawned ones).
    fn run_tasks(&self) {
        let new: Vec<_> = self.spawned.borrow_mut().drain(..).collect();
        let mut tasks = self.tasks.take();
        tasks.extend(new.into_iter().map(|t| (Flag::new(self.thread.clone()), t)));
        tasks.retain_mut(|(flag, task)| {
            if !flag.woken.swap(false, Ordering::SeqCst) {
                return true;
            }
            let waker = Waker::from(flag.clone());
            task.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        });
        // (tasks spawned meanwhile went to `spawned`; `tasks` was empty during the polls)
        self.tasks.borrow_mut().extend(tasks);
    }

    /// Wakes the tasks whose timers are due; parks the thread until the next timer or a
    /// wake-up when nothing is ready.
    fn fire_timers_or_park(&self, main: &Flag) {
        let now = Instant::now();
        let mut next = None::<Instant>;
        self.timers.borrow_mut().retain(|(at, waker)| {
            if *at <= now {
                waker.wake_by_ref();
                false
            } else {
                next = Some(next.map_or(*at, |n| n.min(*at)));
                true
            }
        });
        let ready = main.woken.load(Ordering::SeqCst)
            || !self.spawned.borrow().is_empty()
            || self
                .tasks
                .borrow()
                .iter()
                .any(|(f, _)| f.woken.load(Ordering::SeqCst));
        if !ready {
            match next {
                Some(at) => thread::park_timeout(at.saturating_duration_since(now)),
                None => thread::park(),
            }
        }
    }

    fn current() -> Option<Rc<Core>> {
        CURRENT.with(|c| c.borrow().clone())
    }
}

/// A core's timer: `!Send` (it refers to its core; weakly, as the core owns the tasks that
/// own timers).
struct LocalTimer {
    core: Option<Weak<Core>>,
    at: Option<Instant>,
}

impl Timer for LocalTimer {
    fn reset(&mut self, at: Instant) {
        self.at = Some(at);
    }
    fn try_reset(&mut self, at: Instant) -> Result<(), SleepError> {
        if self.core.as_ref().and_then(Weak::upgrade).is_none() {
            return Err(SleepError::NoRuntime);
        }
        self.reset(at);
        Ok(())
    }
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(core), Some(at)) = (self.core.as_ref().and_then(Weak::upgrade), self.at) else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            return Poll::Ready(());
        }
        core.timers.borrow_mut().push((at, cx.waker().clone()));
        Poll::Pending
    }
}

/// The [`Runtime`] a limiter holds: zero-sized, `Send + Sync`; what it reaches is the calling
/// thread's core. `spawn: false` keeps the core's holder mode (no driver task).
#[derive(Clone, Copy, Debug)]
pub struct ThreadPerCore {
    /// Whether the limiter may spawn its driver task on a core.
    pub spawn: bool,
}

impl Runtime for ThreadPerCore {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn timer(&self) -> BoxTimer {
        BoxTimer::local(LocalTimer {
            core: Core::current().as_ref().map(Rc::downgrade),
            at: None,
        })
    }
    fn spawn(&self, task: BoxTask) -> bool {
        if !self.spawn {
            return false;
        }
        spawn_local(task);
        true
    }
}

/// Runs `task` on the calling thread's core (dropped when there is none).
fn spawn_local(task: impl Future<Output = ()> + 'static) {
    if let Some(core) = Core::current() {
        core.spawned.borrow_mut().push_back(Box::pin(task));
    }
}

/// The suite's runtime on one core: the scenario and every task it spawns on the test's
/// thread; the limiter's driver task there too.
#[derive(Debug)]
pub struct PerCore;

/// A spawned task's output, for whoever awaits it.
type Slot<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;

impl Rt for PerCore {
    type Raw = <Smol as Rt>::Raw;
    type Conn = <Smol as Rt>::Conn;
    type Listener = <Smol as Rt>::Listener;

    fn limiter_with(config: Config) -> Limiter {
        Limiter::with_config(config, ThreadPerCore { spawn: true })
    }
    fn block_on<F: Future<Output = ()>>(f: F) {
        Core::block_on(f);
    }
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let slot: Slot<T> = Arc::default();
        let done = slot.clone();
        spawn_local(async move {
            let v = f.await;
            let mut s = done.lock().unwrap_or_else(PoisonError::into_inner);
            s.0 = Some(v);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        core::future::poll_fn(move |cx| {
            let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
            match s.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
    // sockets: the same as smol's (async-io's reactor wakes any executor)
    async fn bind(server: Server) -> (Self::Listener, SocketAddr) {
        Smol::bind(server).await
    }
    async fn bind_grouped(
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> (Self::Listener, SocketAddr) {
        Smol::bind_grouped(groups, pick).await
    }
    fn local_port(raw: &Self::Raw) -> u16 {
        Smol::local_port(raw)
    }
    async fn accept(l: &Self::Listener) -> Self::Conn {
        Smol::accept(l).await
    }
    async fn connect(addr: SocketAddr) -> Self::Raw {
        Smol::connect(addr).await
    }
    fn wrap(raw: Self::Raw, conn: Connection) -> Self::Conn {
        Smol::wrap(raw, conn)
    }
}
