//! loom models of the sharing layer ([`throttle_core::Shared`]): every interleaving of 2–3
//! threads doing acquire / settle / cancel / set_limit / remove / waker registration, up to
//! `LOOM_MAX_PREEMPTIONS` preemptions. A lost wake-up shows up as a deadlock (every thread
//! parked in `block_on`), which loom reports as a failure.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p throttle-core --features std --test loom --release --target-dir target/loom
//! ```
//!
//! Time is a parameter of the core, so the futures here carry their own virtual clock: a task
//! told to sleep until `t` (it holds the tree's timer) jumps its clock to `t` and yields.
#![cfg(loom)]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use loom::sync::Arc;
use loom::thread;

use throttle_core::{
    shared::Step, Config, Growable, Instant, LeafId, Limits, NodeId, Shared, Tier, VecShared,
    VecTree,
};

type Sh = VecShared;

/// Collects `pieces` grants of up to `want` tokens for `leaf`, settling each in full; cancels
/// on drop if it is still waiting (as every adapter's future must).
struct Acquire<'a> {
    shared: &'a Sh,
    leaf: LeafId,
    want: u64,
    pieces: u32,
    got: u64,
    now: Instant,
    waiting: bool,
}

impl Future for Acquire<'_> {
    type Output = u64;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let this = &mut *self;
        loop {
            match this
                .shared
                .poll_acquire(this.leaf, this.want, this.now, cx.waker())
            {
                Ok(Step::Grant(n)) => {
                    this.waiting = false;
                    this.shared.settle(this.leaf, n, this.now).unwrap();
                    this.got += n;
                    this.pieces -= 1;
                    if this.pieces == 0 {
                        return Poll::Ready(this.got);
                    }
                }
                Ok(Step::Sleep { until }) => {
                    this.waiting = true;
                    if let Some(t) = until {
                        // A zero-length sleep in virtual time: the timer has "fired".
                        this.now = t;
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                Err(e) => panic!("acquire failed: {e}"),
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if self.waiting {
            let _ = self.shared.cancel(self.leaf, self.now);
        }
    }
}

fn acquire(shared: &Sh, leaf: LeafId, want: u64, pieces: u32) -> Acquire<'_> {
    Acquire {
        shared,
        leaf,
        want,
        pieces,
        got: 0,
        now: Instant::ZERO,
        waiting: false,
    }
}

fn tree_with(root_limits: Limits, leaves: usize) -> (Arc<Sh>, NodeId, Vec<LeafId>) {
    // the models use bursts below the default minimum on purpose (every piece a refill)
    let shared = Sh::new(VecTree::new(
        Config::DEFAULT.with_min_burst(core::time::Duration::ZERO),
    ));
    let root = shared
        .insert_node(None, root_limits, 1, Instant::ZERO)
        .unwrap();
    let leaves = (0..leaves)
        .map(|_| {
            shared
                .insert_leaf(Some(root), Limits::UNLIMITED, 1, Instant::ZERO)
                .unwrap()
        })
        .collect();
    (Arc::new(shared), root, leaves)
}

/// One thread per leaf, each collecting `pieces` grants of 1 KiB (see [`Acquire`]).
fn spawn_waiters(shared: &Arc<Sh>, leaves: &[LeafId], pieces: u32) -> Vec<thread::JoinHandle<u64>> {
    leaves
        .iter()
        .map(|&leaf| {
            let s = shared.clone();
            thread::spawn(move || loom::future::block_on(acquire(&s, leaf, 1024, pieces)))
        })
        .collect()
}

/// A waiter that registered before a limit change is always woken by it: the waiter sleeps on
/// a paused root (no timer anywhere), another thread unpauses it.
#[test]
fn limit_change_wakes_sleeping_waiter() {
    model(|| {
        let (shared, root, leaves) = tree_with(Limits::new(Tier::per_second(0)), 1);
        let leaf = leaves[0];
        let s2 = shared.clone();
        let waiter = thread::spawn(move || loom::future::block_on(acquire(&s2, leaf, 1000, 1)));
        shared
            .set_limit(root, Limits::per_second(1 << 20), Instant::ZERO)
            .unwrap();
        let got = waiter.join().unwrap();
        // (a piece sized while the root was paused is the minimum piece)
        assert!((1..=1000).contains(&got), "{got}");
        assert_eq!(shared.sleeping(), 0);
    });
}

/// Two tasks behind one root that must wait for refills: exactly one of them holds the tree's
/// timer at any time, and the role passes on when its holder is served. A lost hand-off
/// leaves the other task asleep with no timer: a deadlock.
#[test]
fn timer_handoff_between_two_waiters() {
    model(|| {
        // 100 KiB/s, burst 1 KiB: after the burst every piece needs a refill.
        let (shared, root, leaves) =
            tree_with(Limits::new(Tier::per_second(100 << 10).with_burst(1024)), 2);
        let handles = spawn_waiters(&shared, &leaves, 2);
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let stats = shared.stats(root).unwrap();
        assert_eq!(
            stats.granted, total,
            "the root counted exactly what was collected"
        );
        assert_eq!(shared.sleeping(), 0);
    });
}

/// A limit change racing with two waiters that hand the timer back and forth: both finish,
/// whichever order the change, the grants and the hand-offs happen in.
#[test]
fn limit_change_during_timer_handoff() {
    model(|| {
        let (shared, root, leaves) =
            tree_with(Limits::new(Tier::per_second(100 << 10).with_burst(1024)), 2);
        let handles = spawn_waiters(&shared, &leaves, 2);
        shared
            .set_limit(
                root,
                Limits::new(Tier::per_second(1 << 20).with_burst(2048)),
                Instant::ZERO,
            )
            .unwrap();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(shared.stats(root).unwrap().granted, total);
        assert_eq!(shared.sleeping(), 0);
    });
}

/// A driver task holds the tree's timer (`poll_driver`) while two waiters need refills: each
/// waiter is woken by the driver's grants and the driver by each waiter's new deadline; a
/// lost wake-up on either side deadlocks.
#[test]
fn driver_and_two_waiters() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Mutex;
    // Three threads with two locks and an atomic: bounded at 3 preemptions here whatever
    // LOOM_MAX_PREEMPTIONS says (5 did not finish in 10 minutes).
    model_bounded(3, || {
        let (shared, root, leaves) =
            tree_with(Limits::new(Tier::per_second(100 << 10).with_burst(1024)), 2);
        let done = Arc::new(AtomicUsize::new(0));
        let driver_waker: Arc<Mutex<Option<core::task::Waker>>> = Arc::new(Mutex::new(None));
        let handles: Vec<_> = leaves
            .iter()
            .map(|&leaf| {
                let (s, done, dw) = (shared.clone(), done.clone(), driver_waker.clone());
                thread::spawn(move || {
                    let got = loom::future::block_on(acquire(&s, leaf, 1024, 1));
                    done.fetch_add(1, Ordering::SeqCst);
                    // test plumbing only: the driver must notice that the waiters are done
                    if let Some(w) = dw.lock().unwrap().take() {
                        w.wake();
                    }
                    got
                })
            })
            .collect();
        let mut now = Instant::ZERO;
        loom::future::block_on(core::future::poll_fn(|cx| {
            *driver_waker.lock().unwrap() = Some(cx.waker().clone());
            if done.load(Ordering::SeqCst) == 2 {
                return Poll::Ready(());
            }
            if let Some(t) = shared.poll_driver(now, cx.waker()) {
                now = t;
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }));
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(shared.stats(root).unwrap().granted, total);
        assert_eq!(shared.sleeping(), 0);
    });
}

/// Concurrent acquire / settle / cancel / set_limit / remove never over-grant: the root's
/// count equals the sum of what the leaves were granted and kept, and stays within the burst
/// plus one piece (time never moves here, so nothing refills).
#[test]
fn no_over_grant_under_concurrent_operations() {
    model(|| {
        let burst = 4096;
        let (shared, root, leaves) =
            tree_with(Limits::new(Tier::per_second(1).with_burst(burst)), 3);
        let (a, b, c) = (leaves[0], leaves[1], leaves[2]);
        let sa = shared.clone();
        let ta = thread::spawn(move || {
            // one poll: a grant is settled in part, a wait is cancelled
            let mut kept = 0;
            let waker = noop_waker();
            match sa.poll_acquire(a, 3000, Instant::ZERO, &waker).unwrap() {
                Step::Grant(n) => {
                    sa.settle(a, n / 2, Instant::ZERO).unwrap();
                    kept = n / 2;
                }
                Step::Sleep { .. } => {
                    sa.cancel(a, Instant::ZERO).unwrap();
                }
            }
            kept
        });
        let sb = shared.clone();
        let tb = thread::spawn(move || {
            let waker = noop_waker();
            let kept = match sb.poll_acquire(b, 3000, Instant::ZERO, &waker).unwrap() {
                Step::Grant(n) => {
                    sb.settle(b, n, Instant::ZERO).unwrap();
                    n
                }
                Step::Sleep { .. } => {
                    sb.cancel(b, Instant::ZERO).unwrap();
                    0
                }
            };
            // a limit change racing with the others
            sb.set_limit(
                root,
                Limits::new(Tier::per_second(2).with_burst(burst)),
                Instant::ZERO,
            )
            .unwrap();
            kept
        });
        // c takes a piece and is removed while holding it: the removal refunds it.
        let waker = noop_waker();
        if let Step::Sleep { .. } = shared.poll_acquire(c, 3000, Instant::ZERO, &waker).unwrap() {
            // still waiting: removal drops the waiting piece
        }
        shared.remove(c.node(), Instant::ZERO).unwrap();
        let kept = ta.join().unwrap() + tb.join().unwrap();
        let granted = shared.stats(root).unwrap().granted;
        assert_eq!(granted, kept, "tokens are neither minted nor lost");
        assert!(granted <= burst + 4096, "over-granted: {granted}");
        assert_eq!(shared.sleeping(), 0);
    });
}

/// Dropping a waiting future (cancel-safety) refunds and passes its place on: the other task,
/// asleep behind it, still completes.
#[test]
fn cancelled_waiter_passes_the_timer_on() {
    model(|| {
        let (shared, _root, leaves) =
            tree_with(Limits::new(Tier::per_second(100 << 10).with_burst(1024)), 2);
        let (a, b) = (leaves[0], leaves[1]);
        // a spends the burst first, so both must wait for refills afterwards
        let waker = noop_waker();
        while let Step::Grant(n) = shared.poll_acquire(a, 1024, Instant::ZERO, &waker).unwrap() {
            shared.settle(a, n, Instant::ZERO).unwrap();
        }
        let s2 = shared.clone();
        let tb = thread::spawn(move || loom::future::block_on(acquire(&s2, b, 1024, 1)));
        // a gives up while b may be asleep behind it
        shared.cancel(a, Instant::ZERO).unwrap();
        assert!(tb.join().unwrap() > 0);
        assert_eq!(shared.sleeping(), 0);
    });
}

/// `loom::model` that reports how many interleavings it explored (the note in issue 3 and
/// CI's log quote these).
fn model(f: impl Fn() + Sync + Send + 'static) {
    run_model(loom::model::Builder::new(), f);
}

/// [`model`] with its own preemption bound (for the larger models).
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    run_model(builder, f);
}

fn run_model(builder: loom::model::Builder, f: impl Fn() + Sync + Send + 'static) {
    // Outside the model: plain std types (loom's only work inside `check`).
    extern crate alloc;
    use core::sync::atomic::{AtomicU64, Ordering};
    let runs = alloc::sync::Arc::new(AtomicU64::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let n = runs.load(Ordering::Relaxed);
    println!(
        "{}: {n} interleavings explored in {:.2?}",
        std::thread::current().name().unwrap_or("?"),
        start.elapsed()
    );
}

fn noop_waker() -> core::task::Waker {
    core::task::Waker::noop().clone()
}
