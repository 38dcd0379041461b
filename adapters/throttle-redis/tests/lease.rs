//! Leases against a real `redis-server` (one per test), members inside the test process:
//! shares by weight and demand, idle give-back, lost state, NOSCRIPT, wrong types, outages.
//! Timing tolerances are generous (a loaded 2-core machine); the figures come from the
//! fleet benchmark (`throttle-redis-fleet bench`).

mod common;

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::time::Instant;

use common::{eventually, server, Member};
use throttle_redis::{CallError, LeaseConfig, LinkState, OutagePolicy};

const RATE: u64 = 4_000_000;
const CHUNK: u64 = 8192;

fn cfg() -> LeaseConfig {
    LeaseConfig::new(RATE).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_members_weighted_get_max_min_shares() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "w", cfg().with_weight(1).unwrap(), None, CHUNK);
    let b = Member::spawn(&redis, "w", cfg().with_weight(3).unwrap(), None, CHUNK);
    // A demand-limited member (400 k/s) keeps what it uses; the rest splits 1:3.
    let c = Member::spawn(
        &redis,
        "w",
        cfg().with_weight(3).unwrap(),
        Some(400_000),
        CHUNK,
    );
    let want = |m: &Member, x: u64| m.share().abs_diff(x) * 100 <= x * 15;
    let rest = RATE - 500_000;
    let took = eventually(Duration::from_secs(10), || {
        let (sa, sb, sc) = (a.share(), b.share(), c.share());
        sa + sb + sc <= RATE
            && (400_000..=600_000).contains(&sc)
            && want(&a, (RATE - sc) / 4)
            && want(&b, (RATE - sc) * 3 / 4)
    })
    .await;
    assert!(
        took.is_some(),
        "shares a={} b={} c={} (want c≈400-500k, a:b = 1:3 of ≈{rest})",
        a.share(),
        b.share(),
        c.share()
    );
    // Spent over 2 s: within the rate (plus bursts) and not far below it.
    let g0 = a.granted() + b.granted() + c.granted();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = a.granted() + b.granted() + c.granted() - g0;
    assert!(
        spent <= RATE * 2 * 105 / 100,
        "spent {spent} in 2 s at {RATE}/s"
    );
    assert!(
        spent >= RATE * 2 * 70 / 100,
        "spent {spent} in 2 s at {RATE}/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_goes_idle_share_returns_to_the_busy_one() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "idle", cfg(), None, CHUNK);
    let b = Member::spawn(&redis, "idle", cfg(), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    b.busy.store(false, Ordering::Relaxed);
    let took = eventually(Duration::from_secs(5), || {
        a.share() == RATE && b.share() == 0
    })
    .await;
    assert!(took.is_some(), "a={} b={}", a.share(), b.share());
    // Idle: b stops calling Redis.
    let calls = b.shared.stats().calls;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        b.shared.stats().calls,
        calls,
        "an idle member makes no calls"
    );
    // Busy again: it gets its half back.
    b.busy.store(true, Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(5), || half(&a) && half(&b))
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_flushed_is_detected_and_relearned_without_overshoot() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "lost", cfg(), None, CHUNK);
    let b = Member::spawn(&redis, "lost", cfg(), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    let _: () = redis.cmd(&["FLUSHALL"]).unwrap();
    let took = eventually(Duration::from_secs(5), || {
        a.shared.stats().state_lost == 1 && b.shared.stats().state_lost == 1
    })
    .await;
    assert!(took.is_some(), "both members notice the lost state");
    // Learning: nobody gets more than it had; the sum stays within the rate throughout.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        assert!(a.share() + b.share() <= RATE + RATE / 100);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let back = eventually(Duration::from_secs(5), || half(&a) && half(&b)).await;
    assert!(back.is_some(), "a={} b={}", a.share(), b.share());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_cache_flushed_is_reloaded() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "noscript", cfg(), None, CHUNK);
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
    for _ in 0..3 {
        let _: () = redis.cmd(&["SCRIPT", "FLUSH"]).unwrap();
        let calls = a.shared.stats().calls;
        assert!(eventually(Duration::from_secs(5), || a.shared.stats().calls
            >= calls + 2)
        .await
        .is_some());
    }
    assert_eq!(
        a.shared.stats().errors,
        0,
        "NOSCRIPT is handled, not an error"
    );
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_of_wrong_type_is_a_typed_error_and_left_alone() {
    let Some(redis) = server() else { return };
    let _: () = redis.cmd(&["SET", "{thr:wt}:m", "not a hash"]).unwrap();
    let a = Member::spawn(&redis, "wt", cfg(), None, CHUNK);
    let err = eventually(Duration::from_secs(5), || {
        a.shared.last_error() == Some(CallError::WrongType)
    })
    .await;
    assert!(err.is_some(), "last error {:?}", a.shared.last_error());
    let v: String = redis.cmd(&["GET", "{thr:wt}:m"]).unwrap();
    assert_eq!(v, "not a hash");
    let g: i64 = redis.cmd(&["EXISTS", "{thr:wt}:g"]).unwrap();
    assert_eq!(g, 0, "nothing written");
    assert_eq!(
        a.share(),
        0,
        "no share without a lease (last-share policy, none held)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fail_closed_stops_then_restart_grants_within_a_second() {
    let Some(mut redis) = server() else { return };
    let c = cfg().with_policy(OutagePolicy::FailClosed).unwrap();
    let a = Member::spawn(&redis, "kill", c, None, CHUNK);
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
    redis.kill();
    let closed = eventually(Duration::from_secs(3), || {
        a.shared.stats().state == LinkState::FailedClosed
    })
    .await;
    assert!(closed.is_some(), "stats {:?}", a.shared.stats());
    assert_eq!(a.share(), 0);
    // Nothing goes through once the lease is over (one burst at most).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g0 = a.granted();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        a.granted() - g0 <= RATE / 50,
        "{} during the outage",
        a.granted() - g0
    );
    redis.restart().unwrap();
    let back = eventually(Duration::from_secs(5), || a.share() == RATE).await;
    assert!(back.is_some_and(|d| d < Duration::from_secs(2)), "{back:?}");
    let s = a.shared.stats();
    assert_eq!(
        (s.state, s.fallbacks, s.state_lost),
        (LinkState::Connected, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_last_share_keeps_share_for_hold_then_floor() {
    let Some(mut redis) = server() else { return };
    let policy = OutagePolicy::LastShare {
        hold: Duration::from_secs(1),
        floor: 1000,
    };
    let a = Member::spawn(
        &redis,
        "hold",
        cfg().with_policy(policy).unwrap(),
        None,
        CHUNK,
    );
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
    redis.kill();
    let open = eventually(Duration::from_secs(2), || {
        a.shared.stats().state == LinkState::FailedOpen
    })
    .await;
    assert!(open.is_some());
    // The last share is kept through the hold (1 s after the lease's end).
    let kept = a.share();
    assert!(kept >= RATE / 2, "{kept}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.share(), kept, "last share kept");
    assert!(eventually(Duration::from_secs(3), || a.share() == 1000)
        .await
        .is_some());
    redis.restart().unwrap();
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_asleep_does_not_stall_the_data_path() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "sleep", cfg(), None, CHUNK);
    assert!(eventually(Duration::from_secs(5), || a.share() == RATE)
        .await
        .is_some());
    let url = redis.url();
    let sleeper = std::thread::spawn(move || {
        let c = redis::Client::open(url).unwrap();
        let mut con = c.get_connection().unwrap();
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(3).query(&mut con);
    });
    // While Redis sleeps, a second leaf under the same root still gets tokens steadily.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut leaf = a.root.leaf(throttle_tokio::Limits::UNLIMITED, 1).unwrap();
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        leaf.acquire(CHUNK).await.unwrap();
        worst = worst.max(t.elapsed());
    }
    assert!(
        worst < Duration::from_millis(500),
        "an acquire took {worst:?}"
    );
    assert!(a.shared.stats().errors >= 1, "the driver's calls timed out");
    sleeper.join().unwrap();
    assert!(eventually(Duration::from_secs(5), || a.shared.stats().state
        == LinkState::Connected)
    .await
    .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_changed_reaches_every_member() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "change", cfg(), None, CHUNK);
    let b = Member::spawn(&redis, "change", cfg(), None, CHUNK);
    let near = |m: &Member, x: u64| m.share().abs_diff(x) <= x / 10;
    assert!(eventually(Duration::from_secs(10), || near(&a, RATE / 2)
        && near(&b, RATE / 2))
    .await
    .is_some());
    a.shared.set_rate(RATE / 4).await.unwrap();
    let took = eventually(Duration::from_secs(5), || {
        near(&a, RATE / 8) && near(&b, RATE / 8) && b.shared.stats().rate == RATE / 4
    })
    .await;
    assert!(took.is_some(), "a={} b={}", a.share(), b.share());
    assert_eq!(
        a.shared.set_rate(0).await,
        Err(throttle_redis::SetRateError::Rate)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lost_newcomer_waits_for_the_learning_period() {
    let Some(redis) = server() else { return };
    let hold = Duration::from_secs(3);
    let c = cfg()
        .with_policy(OutagePolicy::LastShare { hold, floor: 0 })
        .unwrap();
    let a = Member::spawn(&redis, "learn", c, None, CHUNK);
    let b = Member::spawn(&redis, "learn", c, None, CHUNK);
    let near = |m: &Member, x: u64| m.share().abs_diff(x) <= x / 10;
    assert!(eventually(Duration::from_secs(10), || near(&a, RATE / 2)
        && near(&b, RATE / 2))
    .await
    .is_some());
    let _: () = redis.cmd(&["DEL", "{thr:learn}:g"]).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || a.shared.stats().state_lost == 1)
            .await
            .is_some()
    );
    // A newcomer during the learning period gets nothing: the old members may still be
    // running on their last shares somewhere; they claim back what they had.
    let n = Member::spawn(&redis, "learn", c, None, CHUNK);
    let t0 = Instant::now();
    let mut both_back = false;
    while t0.elapsed() < Duration::from_millis(1500) {
        assert_eq!(n.share(), 0, "newcomer during learning");
        assert!(a.share() + b.share() + n.share() <= RATE);
        both_back |= near(&a, RATE / 2) && near(&b, RATE / 2);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(both_back, "the old members get their halves back");
    // After it (3 s from the recreation), thirds.
    let thirds = eventually(Duration::from_secs(6), || {
        near(&a, RATE / 3) && near(&b, RATE / 3) && near(&n, RATE / 3)
    })
    .await;
    assert!(
        thirds.is_some(),
        "a={} b={} n={}",
        a.share(),
        b.share(),
        n.share()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lost_then_rate_lowered_while_learning_splits_fairly() {
    let Some(redis) = server() else { return };
    let hold = Duration::from_secs(8);
    let c = cfg()
        .with_policy(OutagePolicy::LastShare { hold, floor: 0 })
        .unwrap();
    let a = Member::spawn(&redis, "learn2", c, None, CHUNK);
    let b = Member::spawn(&redis, "learn2", c, None, CHUNK);
    let near = |m: &Member, x: u64| m.share().abs_diff(x) <= x / 10;
    assert!(eventually(Duration::from_secs(10), || near(&a, RATE / 2)
        && near(&b, RATE / 2))
    .await
    .is_some());
    let _: () = redis.cmd(&["FLUSHALL"]).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || a.shared.stats().state_lost == 1
            && b.shared.stats().state_lost == 1)
        .await
        .is_some()
    );
    // Claims add up to the old rate; the new one is half: both get a quarter.
    a.shared.set_rate(RATE / 2).await.unwrap();
    let fair = eventually(Duration::from_secs(4), || {
        near(&a, RATE / 4) && near(&b, RATE / 4)
    })
    .await;
    assert!(fair.is_some(), "a={} b={}", a.share(), b.share());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_dropped_gives_its_share_back() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "drop", cfg(), None, CHUNK);
    let b = Member::spawn(&redis, "drop", cfg(), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    // Dropping the last user handle ends b's driver, which returns b's share at once
    // (no waiting for its lease or hold to run out).
    let root = b.root.clone();
    drop(b);
    assert!(
        eventually(Duration::from_secs(2), || a.share() == RATE)
            .await
            .is_some(),
        "a={}",
        a.share()
    );
    assert_eq!(
        root.limits().unwrap(),
        throttle_tokio::Limits::per_second(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_lease_cuts_calls_of_a_steady_member() {
    let Some(redis) = server() else { return };
    let c = cfg().with_max_lease(Duration::from_secs(1)).unwrap();
    let a = Member::spawn(&redis, "adaptive", c, None, CHUNK);
    let b = Member::spawn(&redis, "adaptive", c, None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    tokio::time::sleep(Duration::from_secs(2)).await; // leases grow to 1 s
    let calls = a.shared.stats().calls;
    let g0 = a.granted() + b.granted();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let made = a.shared.stats().calls - calls;
    // 3 s at one call per 0.75 s ≈ 4 (15 at the fixed 200 ms lease).
    assert!(made <= 7, "{made} calls in 3 s");
    let spent = a.granted() + b.granted() - g0;
    assert!(spent <= RATE * 3 * 103 / 100, "{spent} in 3 s at {RATE}/s");
    // b leaves: a gets everything back within about one long lease.
    b.busy.store(false, Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(3), || a.share() == RATE)
        .await
        .is_some());
}
