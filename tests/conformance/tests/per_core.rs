//! The conformance suite on a `!Send` thread-per-core runtime
//! ([`throttle_conformance::per_core`]: one executor and its timers per thread, timers handed
//! out with `BoxTimer::local`): the std runtimes' list, then what only several cores show —
//! one limiter shared by two cores.
//!
//! Checked across cores, with and without the limiter's driver task:
//! - the shared limit holds (total within 15 % of rate × time + burst) and four tasks on two
//!   cores get equal shares (each within 30 % of the mean), with 1 KiB requests;
//! - a limit raised from another thread reaches a task sleeping on a core's `!Send` timer;
//! - a leaf that waited on one core (keeping that core's timer) waits on another core after
//!   being moved there: it gets a timer of its new core instead of touching the old one;
//! - a wait polled on a thread with no core fails with a typed error and leaves nothing
//!   waiting.
//!
//! Real time and threads; tolerances are generous (CI machines are loaded), the figures
//! printed are the measured ones.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::thread;
use std::time::Instant;

use throttle_conformance::per_core::{Core, ThreadPerCore};
use throttle_io::{Leaf, Limiter, Limits};

throttle_conformance::std_suite!(throttle_conformance::per_core::PerCore);

/// Waits for all `tasks` on this core.
async fn join_all(tasks: Vec<Pin<Box<dyn Future<Output = u64>>>>) -> Vec<u64> {
    let mut tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    let mut out = vec![0; tasks.len()];
    core::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in tasks.iter_mut().enumerate() {
            if let Some(t) = slot {
                match t.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        out[i] = v;
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out
}

/// Acquires 1 KiB at a time until `end`; returns the tokens acquired.
async fn pull(mut leaf: Leaf, end: Instant) -> u64 {
    let mut got = 0;
    while Instant::now() < end {
        leaf.acquire(1024).await.expect("acquire");
        got += 1024;
    }
    got
}

fn shared_limit_holds_across_cores(spawn: bool) {
    const RATE: u64 = 400 * 1024;
    let limiter = Limiter::new(ThreadPerCore { spawn });
    let root = limiter.node(Limits::per_second(RATE), 1).unwrap();
    let burst = root.limits().unwrap().tiers()[0].burst();
    let start = Instant::now();
    let end = start + Duration::from_millis(1500);
    let cores: Vec<_> = (0..2)
        .map(|_| {
            let leaves = [(); 2].map(|()| root.leaf(Limits::UNLIMITED, 1).unwrap());
            let limiter = limiter.clone();
            thread::spawn(move || {
                Core::block_on(async move {
                    let tasks = leaves
                        .into_iter()
                        .map(|l| Box::pin(pull(l, end)) as Pin<Box<dyn Future<Output = u64>>>);
                    let got = join_all(tasks.collect()).await;
                    // (asked while this core runs: it drops its tasks, a driver too, when done)
                    (got, limiter.has_driver())
                })
            })
        })
        .collect();
    let mut got = Vec::new();
    for core in cores {
        let (on_core, driver) = core.join().unwrap();
        assert_eq!(driver, spawn, "a driver task iff the runtime spawns");
        got.extend(on_core);
    }
    let secs = start.elapsed().as_secs_f64();
    let total: u64 = got.iter().sum();
    let expected = RATE as f64 * secs + burst as f64;
    let mean = total as f64 / got.len() as f64;
    eprintln!(
        "spawn={spawn}: {total} tokens in {secs:.3} s (expected {expected:.0}), per task {got:?}"
    );
    assert!(
        (total as f64 - expected).abs() <= 0.15 * expected,
        "total {total}, expected {expected:.0}"
    );
    for g in &got {
        assert!(
            (*g as f64 - mean).abs() <= 0.30 * mean,
            "unequal shares {got:?}"
        );
    }
}

#[test]
fn shared_limit_holds_across_cores_with_driver() {
    shared_limit_holds_across_cores(true);
}

#[test]
fn shared_limit_holds_across_cores_in_holder_mode() {
    shared_limit_holds_across_cores(false);
}

#[test]
fn raised_limit_reaches_a_task_sleeping_on_a_core_timer() {
    for spawn in [true, false] {
        let limiter = Limiter::new(ThreadPerCore { spawn });
        let root = limiter.node(Limits::per_second(1024), 1).unwrap();
        let leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
        let core = thread::spawn(move || {
            Core::block_on(async move {
                let mut leaf = leaf;
                let start = Instant::now();
                // 1 KiB burst, then 60 KiB more: a minute at this rate
                leaf.acquire(61 * 1024).await.expect("acquire");
                start.elapsed()
            })
        });
        thread::sleep(Duration::from_millis(200));
        root.set_limit(Limits::per_second(100 << 20)).unwrap();
        let waited = core.join().unwrap();
        eprintln!("spawn={spawn}: done {waited:?} after the start (raised at 200 ms)");
        assert!(
            waited < Duration::from_secs(10),
            "the raise did not reach it: {waited:?}"
        );
    }
}

#[test]
fn leaf_moved_to_another_core_gets_a_timer_there() {
    let limiter = Limiter::new(ThreadPerCore { spawn: false });
    let root = limiter.node(Limits::per_second(20 * 1024), 1).unwrap();
    let leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
    // first core: past the burst, so the leaf sleeps on (and keeps) this core's timer
    let (leaf, first) = thread::spawn(move || {
        Core::block_on(async move {
            let mut leaf = leaf;
            let start = Instant::now();
            leaf.acquire(30 * 1024).await.expect("first core");
            (leaf, start.elapsed())
        })
    })
    .join()
    .unwrap();
    // second core: the same leaf (Send), the first core's timer unreachable from here
    let second = thread::spawn(move || {
        Core::block_on(async move {
            let mut leaf = leaf;
            let start = Instant::now();
            leaf.acquire(10 * 1024).await.expect("second core");
            start.elapsed()
        })
    })
    .join()
    .unwrap();
    eprintln!("first core {first:?}, second core {second:?}");
    // 30 KiB at 20 KiB/s with a 4 KiB burst: ~1.3 s; then 10 KiB: ~0.5 s
    assert!(first >= Duration::from_millis(1000), "{first:?}");
    assert!(second >= Duration::from_millis(350), "{second:?}");
    assert!(second < Duration::from_secs(10), "{second:?}");
}

#[test]
fn polled_outside_any_core_is_a_typed_error() {
    for spawn in [true, false] {
        let limiter = Limiter::new(ThreadPerCore { spawn });
        let root = limiter.node(Limits::per_second(1024), 1).unwrap();
        let mut leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
        // a plain thread, no core on it: the burst is granted, the wait past it cannot arm a
        // timer here
        let r = futures_lite::future::block_on(leaf.acquire(8 * 1024));
        assert_eq!(
            r,
            Err(throttle_io::AcquireError::Runtime(
                throttle_io::SleepError::NoRuntime
            )),
            "spawn={spawn}"
        );
        // nothing is left waiting
        assert_eq!(root.stats().waiting, 0, "spawn={spawn}");
    }
}
