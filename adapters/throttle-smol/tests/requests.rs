//! `acquire` on a path that always grants yields to smol's executor (issue 9, item 4): a
//! timeout around it fires, and another task on the same thread runs.

use core::time::Duration;
use std::sync::mpsc;
use std::time::Instant;

use throttle_smol::Limits;

/// Runs `f` on a one-thread smol executor in its own thread; `None` when `f` pins it for
/// longer than `limit` (the test fails instead of hanging).
fn on_one_thread<T: Send + 'static>(
    limit: Duration,
    f: impl core::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let ex = smol::LocalExecutor::new();
        let _ = tx.send(smol::block_on(ex.run(f)));
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn acquire_on_always_granting_path_yields_to_timeout() {
    let r = on_one_thread(Duration::from_secs(10), async {
        let limiter = throttle_smol::limiter();
        let mut leaf = limiter.leaf(Limits::per_second(u64::MAX)).unwrap();
        let t0 = Instant::now();
        let done = smol::future::or(async { Some(leaf.acquire(u64::MAX / 2).await) }, async {
            smol::Timer::after(Duration::from_millis(10)).await;
            None
        })
        .await;
        (done.is_none(), t0.elapsed())
    });
    let (timed_out, dt) = r.expect("acquire(u64::MAX / 2) pinned the executor's thread");
    assert!(timed_out);
    assert!(dt < Duration::from_secs(2), "{dt:?}");
}
