//! Helpers shared by the integration tests: a real `redis-server` per test, and a member
//! (local limiter + shared limit + busy consumers) in this process.

#![allow(dead_code, unreachable_pub)]

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::time::Instant;

use throttle_redis::local_server::LocalRedis;
use throttle_redis::{LeaseConfig, LimitName, SharedLimit};
use throttle_tokio::{Limits, Node, Tokio};

/// A fresh server, or `None` after printing `SKIPPED: redis-server not found`.
pub fn server() -> Option<LocalRedis> {
    if !LocalRedis::available() {
        println!("SKIPPED: redis-server not found");
        return None;
    }
    Some(LocalRedis::start().expect("redis-server starts"))
}

/// One process's worth of a fleet, inside this test process.
pub struct Member {
    pub shared: SharedLimit,
    pub root: Node,
    pub busy: Arc<AtomicBool>,
}

impl Member {
    /// Joins `name` on `redis` with `cfg`; one consumer task that asks for `chunk` tokens
    /// in a loop while `busy`, capped at `cap` tokens/s (demand-limited) if given.
    pub fn spawn(
        redis: &LocalRedis,
        name: &str,
        cfg: LeaseConfig,
        cap: Option<u64>,
        chunk: u64,
    ) -> Member {
        let limiter = throttle_tokio::limiter();
        let root = limiter.node(Limits::per_second(0), 1).unwrap();
        let shared = SharedLimit::new(redis.client(), LimitName::new(name).unwrap(), cfg);
        tokio::spawn(shared.run(root.clone(), Tokio));
        let busy = Arc::new(AtomicBool::new(true));
        let leaf_limits = cap.map_or(Limits::UNLIMITED, Limits::per_second);
        let mut leaf = root.leaf(leaf_limits, 1).unwrap();
        let b = busy.clone();
        tokio::spawn(async move {
            loop {
                if b.load(Ordering::Relaxed) {
                    if leaf.acquire(chunk).await.is_err() {
                        return;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Member { shared, root, busy }
    }

    /// Tokens through the root so far.
    pub fn granted(&self) -> u64 {
        self.root.stats().granted
    }

    /// The share in force (panics on `None`: unbounded).
    pub fn share(&self) -> u64 {
        self.shared.stats().share.expect("a bounded share")
    }
}

/// Polls `f` every 20 ms until it holds or `within` passes; returns how long it took.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if f() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
