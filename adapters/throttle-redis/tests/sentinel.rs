//! Sentinel-managed Redis: a primary, a replica and one sentinel (quorum 1), all real
//! processes. After `SENTINEL FAILOVER` (the replica is promoted, the old primary demoted
//! and `READONLY`) members find the new primary through the sentinel and go on within the
//! limit; permits too.

mod common;

use core::time::Duration;
use std::time::Instant;

use common::{eventually, server};
use throttle_redis::local_server::LocalRedis;
use throttle_redis::{
    LeaseConfig, LimitName, LinkState, PermitConfig, Permits, SharedLimit, Target,
};
use throttle_tokio::{Limits, Tokio};

const RATE: u64 = 4_000_000;

fn target(sentinel: &LocalRedis) -> Target {
    Target::Sentinel {
        sentinels: vec![sentinel.client()],
        service: "thr".to_owned(),
    }
}

struct M {
    shared: SharedLimit,
    _root: throttle_tokio::Node,
}

fn member(t: Target) -> M {
    let limiter = throttle_tokio::limiter();
    let root = limiter.node(Limits::per_second(0), 1).unwrap();
    let shared = SharedLimit::new(
        t,
        LimitName::new("sf").unwrap(),
        LeaseConfig::new(RATE).unwrap(),
    );
    tokio::spawn(shared.run(root.clone(), Tokio));
    let mut leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
    tokio::spawn(async move { while leaf.acquire(8192).await.is_ok() {} });
    M {
        shared,
        _root: root,
    }
}

fn share(m: &M) -> u64 {
    m.shared.stats().share.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_members_follow_the_new_primary() {
    let Some(primary) = server() else { return };
    let addr = format!("127.0.0.1 {}", primary.port());
    let replica = LocalRedis::start_with(&["--replicaof", &addr]).unwrap();
    let sentinel = LocalRedis::start_sentinel("thr", primary.port()).unwrap();
    // The sentinel discovers the replica through the primary (INFO every 10 s at first).
    let ready = eventually(Duration::from_secs(20), || {
        sentinel
            .cmd::<Vec<redis::Value>>(&["SENTINEL", "REPLICAS", "thr"])
            .is_ok_and(|r| !r.is_empty())
    })
    .await;
    assert!(ready.is_some(), "sentinel sees the replica");
    let a = member(target(&sentinel));
    let b = member(target(&sentinel));
    let half = |m: &M| share(m).abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    let calls = a.shared.stats().calls;
    let _: redis::Value = sentinel.cmd(&["SENTINEL", "FAILOVER", "thr"]).unwrap();
    let promoted = eventually(Duration::from_secs(20), || {
        replica
            .cmd::<Vec<redis::Value>>(&["ROLE"])
            .is_ok_and(|r| matches!(r.first(), Some(redis::Value::BulkString(b)) if b == b"master"))
    })
    .await;
    assert!(promoted.is_some(), "the replica is promoted");
    // Through and after the switch: never over the limit; calls go on, on the new primary.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        assert!(share(&a) + share(&b) <= RATE);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let on_new = eventually(Duration::from_secs(10), || {
        a.shared.stats().state == LinkState::Connected
            && replica
                .cmd::<String>(&["HGET", "{thr:sf}:g", "last"])
                .is_ok()
            && b.shared.stats().state == LinkState::Connected
            && a.shared.stats().calls > calls + 5
            && replica
                .cmd::<i64>(&["HLEN", "{thr:sf}:m"])
                .is_ok_and(|n| n == 2)
            && half(&a)
            && half(&b)
    })
    .await;
    assert!(
        on_new.is_some(),
        "a {:?} b {:?}",
        a.shared.stats(),
        b.shared.stats()
    );
    // (A demoted primary is written to until the sentinel reconfigures it: that split is
    // the failover term δ of the README's bound.)

    // Permits find the new primary as well.
    let p = Permits::new(
        target(&sentinel),
        LimitName::new("sp").unwrap(),
        PermitConfig::new(Duration::from_millis(10), 1).unwrap(),
    );
    let got = tokio::task::spawn_blocking(move || p.acquire_blocking())
        .await
        .unwrap();
    assert!(got.unwrap().is_some());
    let tat: Option<String> = replica.cmd(&["HGET", "{thr:sp}:p", "tat"]).unwrap();
    assert!(tat.is_some(), "permit state written on the new primary");
    drop(primary);
}
