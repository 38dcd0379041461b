//! A thread-per-core runtime drives the waiting engine: everything here is `!Send` — the
//! lock (a `RefCell`), the clock and the timers (`Rc`), the executor's tasks — and the
//! engine ([`throttle_core::wait`]) asks for none of `Send`/`Sync`. The executor is a tiny
//! virtual-time one: it runs ready tasks, then jumps the clock to the earliest armed timer.
//!
//! Checked: three tasks on one core share a 1000 tokens/s node fairly and at its rate; a
//! driver task (`poll_driver`) holding the tree's timer serves them as well; a limit change
//! reaches sleeping tasks.
#![cfg(feature = "std")]

extern crate alloc;

use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::task::Wake;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use throttle_core::shared::State;
use throttle_core::wait::{self, Engine, Handle, Sleep, SleepError};
use throttle_core::{
    Config, Growable, Instant, LeafId, Limits, Lock, NodeId, Shared, Tier, VecTree,
};

/// A `!Sync` lock: a thread-per-core runtime needs no more.
struct CellLock<T>(RefCell<T>);

impl<T> Lock<T> for CellLock<T> {
    fn new(value: T) -> Self {
        CellLock(RefCell::new(value))
    }
    fn lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// The core's virtual clock and the armed timers of this "core".
#[derive(Default)]
struct Core {
    now: Cell<u64>,
    timers: RefCell<Vec<(u64, Waker)>>,
}

/// The runtime handle tasks hold: `Rc`, so `!Send`.
#[derive(Clone)]
struct Local {
    core: Rc<Core>,
    shared: Rc<Shared<Growable, CellLock<State<Growable>>>>,
}

impl Handle for Local {
    type Storage = Growable;
    type Lock = CellLock<State<Growable>>;
    fn shared(&self) -> &Shared<Growable, CellLock<State<Growable>>> {
        &self.shared
    }
    fn now(&self) -> Instant {
        Instant::from_nanos(self.core.now.get())
    }
}

/// A timer on the core's clock (`!Send`: it holds an `Rc`).
struct LocalSleep(Rc<Core>);

impl Sleep for LocalSleep {
    fn poll_until(
        &mut self,
        at: Instant,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SleepError>> {
        if now >= at {
            return Poll::Ready(Ok(()));
        }
        self.0
            .timers
            .borrow_mut()
            .push((at.as_nanos(), cx.waker().clone()));
        Poll::Pending
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Runs `tasks` until all are done or the clock passes `until_ns`: polls woken tasks, then
/// jumps to the earliest timer and wakes what it armed.
fn run(core: &Core, tasks: Vec<Task>, until_ns: u64) {
    let mut tasks: Vec<(Option<Task>, Arc<Flag>)> = tasks
        .into_iter()
        .map(|t| (Some(t), Arc::new(Flag(AtomicBool::new(true)))))
        .collect();
    while core.now.get() <= until_ns {
        let mut ran = false;
        for (task, flag) in &mut tasks {
            if task.is_some() && flag.0.swap(false, Ordering::SeqCst) {
                ran = true;
                let waker = Waker::from(flag.clone());
                if let Some(t) = task.as_mut() {
                    if t.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                        *task = None;
                    }
                }
            }
        }
        if tasks.iter().all(|(t, _)| t.is_none()) {
            return;
        }
        if ran {
            continue;
        }
        let mut timers = core.timers.borrow_mut();
        let Some(next) = timers.iter().map(|(t, _)| *t).min() else {
            return; // nothing will ever happen: the caller's assertions say whether that is ok
        };
        core.now.set(core.now.get().max(next));
        let now = core.now.get();
        let (due, later): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(t, _)| *t <= now);
        *timers = later;
        drop(timers);
        for (_, w) in due {
            w.wake();
        }
    }
}

/// A task acquiring `total` tokens in requests of `chunk`, counting into `got`.
fn sender(rt: Local, leaf: LeafId, chunk: u64, total: u64, got: Rc<Cell<u64>>) -> Task {
    Box::pin(async move {
        let mut engine = Engine::new(rt.clone(), leaf);
        let mut sleep = LocalSleep(rt.core.clone());
        while got.get() < total {
            let n = core::future::poll_fn(|cx| engine.poll_acquire(cx, &mut sleep, chunk))
                .await
                .expect("granted");
            assert!(engine.settle(n));
            got.set(got.get() + n);
        }
    })
}

fn setup(limits: Limits) -> (Local, NodeId, Vec<LeafId>) {
    let core = Rc::new(Core::default());
    let shared = Rc::new(Shared::new(VecTree::new(
        Config::DEFAULT.with_pieces(1, 1 << 16),
    )));
    let node = shared.insert_node(None, limits, 1, Instant::ZERO).unwrap();
    let leaves = (0..3)
        .map(|_| {
            shared
                .insert_leaf(Some(node), Limits::UNLIMITED, 1, Instant::ZERO)
                .unwrap()
        })
        .collect();
    (Local { core, shared }, node, leaves)
}

#[test]
fn three_local_tasks_share_node_at_its_rate() {
    let (rt, _node, leaves) = setup(Limits::new(Tier::per_second(1000).with_burst(10)));
    let got: Vec<Rc<Cell<u64>>> = (0..3).map(|_| Rc::new(Cell::new(0))).collect();
    let tasks = leaves
        .iter()
        .zip(&got)
        .map(|(&l, g)| sender(rt.clone(), l, 5, 1000, g.clone()))
        .collect();
    run(&rt.core, tasks, 10_000_000_000);
    let end = rt.core.now.get();
    // 3000 tokens at 1000/s, less the burst of 10: ~2.99 s of virtual time
    assert!(
        (2_980_000_000..=3_010_000_000).contains(&end),
        "finished at {end} ns"
    );
    assert!(got.iter().all(|g| g.get() >= 1000));
}

#[test]
fn local_driver_task_serves_waiters_and_limit_change_reaches_them() {
    let (rt, node, leaves) = setup(Limits::new(Tier::per_second(1000).with_burst(10)));
    let got: Vec<Rc<Cell<u64>>> = (0..3).map(|_| Rc::new(Cell::new(0))).collect();
    let mut tasks: Vec<Task> = leaves
        .iter()
        .zip(&got)
        .map(|(&l, g)| sender(rt.clone(), l, 5, 2000, g.clone()))
        .collect();
    // the driver: holds the tree's timer for good
    let d = rt.clone();
    tasks.push(Box::pin(async move {
        let mut sleep = LocalSleep(d.core.clone());
        let e = core::future::poll_fn(|cx| wait::poll_driver(&d, &mut sleep, cx)).await;
        panic!("the driver cannot fail here: {e:?}");
    }));
    // after 1 s of virtual time the limit goes up tenfold
    let c = rt.clone();
    tasks.push(Box::pin(async move {
        let mut sleep = LocalSleep(c.core.clone());
        let at = Instant::from_secs(1);
        core::future::poll_fn(|cx| sleep.poll_until(at, c.now(), cx).map(|_| ())).await;
        c.shared
            .set_limit(
                node,
                Limits::new(Tier::per_second(10_000).with_burst(100)),
                c.now(),
            )
            .unwrap();
    }));
    run(&rt.core, tasks, 3_000_000_000);
    assert!(rt.shared.has_driver());
    // ~1000 in the first second, then 10 000/s: the 6000 are done ~1.5 s later
    let total: u64 = got.iter().map(|g| g.get()).sum();
    assert!(total >= 6000, "{total}");
    for g in &got {
        assert!(g.get() >= 2000);
    }
}
