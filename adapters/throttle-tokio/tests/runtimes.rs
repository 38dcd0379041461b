//! A limiter outlives runtimes and misconfigured ones: a leaf keeps working under the next
//! runtime after its first one is gone (a global limiter shared by `#[tokio::test]`s, sync
//! code that builds a runtime per job), and a runtime without timers or a poll outside any
//! runtime is a typed error, not a panic.

use core::task::{Context, Poll};
use core::time::Duration;

use throttle_tokio::{AcquireError, Leaf, Limits, Tier};

/// 1000 tokens/s with a burst of 100: after the burst, every 50 tokens wait ~50 ms.
fn limits() -> Limits {
    Limits::new(Tier::per_second(1000).with_burst(100))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Spends the burst and waits for 50 more: the leaf has to sleep on this runtime.
async fn spend_and_wait(leaf: &mut Leaf) {
    leaf.acquire(100).await.expect("burst");
    tokio::time::timeout(Duration::from_secs(10), leaf.acquire(50))
        .await
        .expect("granted within 10 s")
        .expect("no error");
}

#[test]
fn leaf_waits_again_under_second_runtime() {
    let limiter = throttle_tokio::limiter();
    let mut leaf = limiter.leaf(limits()).expect("leaf");
    current_thread().block_on(spend_and_wait(&mut leaf));
    // the first runtime is gone (its timers and the driver task with it)
    current_thread().block_on(spend_and_wait(&mut leaf));
    // and a multi-thread one after that
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(spend_and_wait(&mut leaf));
    assert!(leaf.node().stats().granted >= 450);
}

#[test]
fn runtime_without_timers_is_typed_error() {
    let limiter = throttle_tokio::limiter();
    let mut leaf = limiter.leaf(limits()).expect("leaf");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime without time");
    let r = rt.block_on(async {
        // the burst, then pieces into debt, until one has to wait for a timer
        for _ in 0..10 {
            leaf.acquire(100).await?;
        }
        Ok(())
    });
    assert_eq!(
        r,
        Err(AcquireError::Runtime(
            throttle_tokio::SleepError::TimersDisabled
        ))
    );
    assert_eq!(leaf.node().stats().waiting, 0, "nothing left queued");
    // the same leaf works on a runtime with timers
    current_thread().block_on(async {
        tokio::time::timeout(Duration::from_secs(10), leaf.acquire(50))
            .await
            .expect("granted")
            .expect("no error");
    });
}

#[test]
fn poll_outside_runtime_is_typed_error() {
    let limiter = throttle_tokio::limiter();
    let mut leaf = limiter.leaf(limits()).expect("leaf");
    let mut cx = Context::from_waker(core::task::Waker::noop());
    let Poll::Ready(Ok(n)) = leaf.poll_acquire(&mut cx, 100) else {
        panic!("the burst is there")
    };
    leaf.settle(n);
    let mut r = leaf.poll_acquire(&mut cx, 50);
    // (the tree may grant a small piece of debt first)
    while let Poll::Ready(Ok(n)) = r {
        leaf.settle(n);
        r = leaf.poll_acquire(&mut cx, 50);
    }
    assert_eq!(
        r,
        Poll::Ready(Err(AcquireError::Runtime(
            throttle_tokio::SleepError::NoRuntime
        )))
    );
}

/// A leaf polled outside any runtime while another holds the tree's timer must not turn the
/// driver task off for good: the next wait inside a runtime spawns it.
#[test]
fn poll_outside_runtime_keeps_driver_for_next_runtime() {
    let limiter = throttle_tokio::limiter();
    let node = limiter.node(limits(), 1).expect("node");
    let mut a = node.leaf(Limits::UNLIMITED, 1).expect("a");
    let mut b = node.leaf(Limits::UNLIMITED, 1).expect("b");
    let mut cx = Context::from_waker(core::task::Waker::noop());
    current_thread().block_on(async {
        a.acquire(100).await.expect("burst");
        // `a` waits (and holds the tree's timer); the runtime is then dropped
        while let Poll::Ready(Ok(n)) = a.poll_acquire(&mut cx, 50) {
            a.settle(n);
        }
    });
    // outside any runtime: `b` only sleeps until woken (`a` holds the timer)
    assert!(b.poll_acquire(&mut cx, 50).is_pending());
    current_thread().block_on(async {
        a.cancel();
        tokio::time::timeout(Duration::from_secs(10), b.acquire(50))
            .await
            .expect("granted")
            .expect("no error");
        assert!(limiter.has_driver(), "the driver task runs on this runtime");
    });
}
