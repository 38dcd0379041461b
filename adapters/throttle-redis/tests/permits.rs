//! Permits (seed 003) against a real `redis-server`: slots, `None` beyond `max_permits`,
//! forfeited permits, typed errors for wrong types and an unreachable server.

mod common;

use core::time::Duration;
use std::time::Instant;

use common::server;
use throttle_redis::{CallError, LimitName, PermitConfig, PermitError, Permits};

fn permits(url: &str, name: &str, interval_ms: u64, max: u32) -> Permits {
    let client = redis::Client::open(url).unwrap();
    let cfg = PermitConfig::new(Duration::from_millis(interval_ms), max).unwrap();
    Permits::new(client, LimitName::new(name).unwrap(), cfg)
}

#[test]
fn permits_queue_max_future_slots_then_none() {
    let Some(redis) = server() else { return };
    let p = permits(&redis.url(), "q", 1000, 2);
    // Slots are interval + window (1 s + 100 ms) apart.
    let slot = 1100;
    let first = p.acquire_blocking().unwrap().unwrap();
    assert_eq!(first.time_to_wait, Duration::ZERO);
    assert_eq!(first.expires_at - first.valid_at, 100);
    let second = p.acquire_blocking().unwrap().unwrap();
    let third = p.acquire_blocking().unwrap().unwrap();
    assert_eq!(second.valid_at, first.valid_at + slot);
    assert_eq!(third.valid_at, first.valid_at + 2 * slot);
    let w = third.time_to_wait.as_millis();
    assert!(
        (2 * u128::from(slot) - 100..=2 * u128::from(slot)).contains(&w),
        "{w}"
    );
    assert_eq!(
        p.acquire_blocking().unwrap(),
        None,
        "two future permits outstanding"
    );
    assert!(second.valid_from() > Instant::now());
}

#[test]
fn permit_woken_after_its_window_is_expired() {
    let Some(redis) = server() else { return };
    let p = permits(&redis.url(), "late", 100, 1);
    let _now = p.acquire_blocking().unwrap().unwrap();
    let next = p.acquire_blocking().unwrap().unwrap();
    std::thread::sleep(next.expires() - Instant::now() + Duration::from_millis(5));
    assert_eq!(next.wait_blocking(), Err(PermitError::Expired));
    assert!(!next.usable_at(Instant::now()));
}

#[test]
fn permit_waited_for_is_used_inside_its_window() {
    let Some(redis) = server() else { return };
    let client = redis.client();
    // A 100 ms window: a sleep that overshoots by more (a loaded machine) forfeits the
    // permit with `Expired`, which is the contract, not a failure; it is skipped here.
    let cfg = PermitConfig::new(Duration::from_millis(200), 3)
        .unwrap()
        .with_window(Duration::from_millis(100))
        .unwrap();
    let p = Permits::new(client, LimitName::new("wait").unwrap(), cfg);
    let mut last: Option<Instant> = None;
    let mut used = 0;
    let t0 = Instant::now();
    while used < 4 && t0.elapsed() < Duration::from_secs(10) {
        let permit = match p.acquire_and_wait_blocking() {
            Ok(Some(permit)) => permit,
            Ok(None) => continue,
            Err(PermitError::Expired) => continue,
            Err(e) => panic!("{e}"),
        };
        let now = Instant::now();
        if !permit.usable_at(now) {
            continue; // preempted between the wait's check and here: past the window
        }
        if let Some(l) = last {
            // Sleep overshoot can only make the gap longer.
            assert!(now - l >= Duration::from_millis(200), "{:?}", now - l);
        }
        last = Some(now);
        used += 1;
    }
    assert_eq!(used, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_async_share_the_slots_with_blocking_ones() {
    let Some(redis) = server() else { return };
    let a = permits(&redis.url(), "mixed", 500, 1);
    let b = permits(&redis.url(), "mixed", 500, 1);
    let pa = a.acquire().await.unwrap().unwrap();
    let pb = tokio::task::spawn_blocking(move || b.acquire_blocking())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pb.valid_at, pa.valid_at + 550);
    assert_eq!(a.acquire().await.unwrap(), None);
    let t = Instant::now();
    let rt = throttle_tokio::Tokio;
    assert_eq!(pb.wait(&rt).await, Ok(()));
    assert!(t.elapsed() >= Duration::from_millis(400));
}

#[test]
fn permit_key_of_wrong_type_is_a_typed_error_and_left_alone() {
    let Some(redis) = server() else { return };
    let _: () = redis.cmd(&["LPUSH", "{thr:wt}:p", "x"]).unwrap();
    let p = permits(&redis.url(), "wt", 1000, 2);
    assert_eq!(p.acquire_blocking(), Err(CallError::WrongType));
    let len: i64 = redis.cmd(&["LLEN", "{thr:wt}:p"]).unwrap();
    assert_eq!(len, 1);
}

#[test]
fn permits_without_server_fail_fast_with_a_typed_error() {
    let Some(mut redis) = server() else { return };
    let url = redis.url();
    redis.kill();
    let p = permits(&url, "down", 1000, 2);
    let t = Instant::now();
    let e = p.acquire_blocking().unwrap_err();
    assert!(
        matches!(e, CallError::Connection | CallError::Timeout),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Back up: the next call reconnects.
    redis.restart().unwrap();
    assert!(p.acquire_blocking().unwrap().is_some());
}

#[test]
fn permits_after_script_flush_are_still_granted() {
    let Some(redis) = server() else { return };
    let p = permits(&redis.url(), "flush", 10, 0);
    assert!(p.acquire_blocking().unwrap().is_some());
    let _: () = redis.cmd(&["SCRIPT", "FLUSH"]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(p.acquire_blocking().unwrap().is_some());
}
