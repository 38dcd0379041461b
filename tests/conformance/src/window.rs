//! A sliding-window request limit ([`Tier::window`]) on a real runtime: what a caller of
//! `acquire` and of `try_acquire` sees, against the "at most N in any window" promise.

use core::time::Duration;
use std::time::Instant;

use throttle_tokio::{Limits, Tier, TryAcquireError};

use crate::Rt;
/// A sliding-window tier on a real runtime ("100/s AND 10 per 400 ms"): one task waiting with
/// `acquire`, one polling with `try_acquire`, for 1.3 s; at most 10 in any 400 ms (instants
/// read after each grant: 10 ms of slack), and at least two windows' worth admitted.
pub async fn window_tier_admits_at_most_n_in_any_window<R: Rt>() {
    let window = Duration::from_millis(400);
    let limits = Limits::per_second(100)
        .and(Tier::window(10, window).expect("window"))
        .expect("limits");
    let limiter = R::limiter();
    let node = limiter.node(limits, 1).expect("node");
    let t0 = Instant::now();
    let run = Duration::from_millis(1300);
    let mut waiting = node.leaf(Limits::UNLIMITED, 1).expect("leaf");
    let waiter = R::spawn(async move {
        let mut at = Vec::new();
        while t0.elapsed() < run {
            waiting.acquire(1).await.expect("acquire");
            at.push(t0.elapsed());
        }
        at
    });
    let mut polling = node.leaf(Limits::UNLIMITED, 1).expect("leaf");
    let mut at = Vec::new();
    while t0.elapsed() < run {
        match polling.try_acquire(1) {
            Ok(()) => at.push(t0.elapsed()),
            Err(TryAcquireError::NotYet { wait: Some(w) }) => {
                assert!(w <= window + window / 8, "{w:?}");
                R::sleep(Duration::from_millis(3)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    at.extend(waiter.await);
    at.sort();
    let (mut lo, mut most) = (0, 0);
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= window - Duration::from_millis(10) {
            lo += 1;
        }
        most = most.max(hi + 1 - lo);
    }
    eprintln!(
        "window 10 per 400 ms: {} admitted in 1.3 s, at most {most} in any 390 ms",
        at.len()
    );
    assert!(most <= 10, "{most}: {at:?}");
    assert!(at.len() >= 20 && at.len() <= 40, "{}", at.len());
}
