//! The same driver and async permits on smol (feature `smol`; run by `.ci/steps/60-redis.sh`
//! with `--features smol`): redis-rs's smol I/O, `throttle_smol::Smol`'s timers, no tokio.

#![cfg(feature = "smol")]

use core::time::Duration;
use std::time::Instant;

use throttle_redis::local_server::LocalRedis;
use throttle_redis::{LeaseConfig, LimitName, PermitConfig, Permits, SharedLimit};
use throttle_smol::{Limits, Smol};

const RATE: u64 = 2_000_000;

#[test]
fn smol_driver_feeds_the_root_and_permits_are_spaced() {
    if !LocalRedis::available() {
        println!("SKIPPED: redis-server not found");
        return;
    }
    let redis = LocalRedis::start().unwrap();
    smol::block_on(async {
        let limiter = throttle_smol::limiter();
        let root = limiter.node(Limits::per_second(0), 1).unwrap();
        let shared = SharedLimit::new(
            redis.client(),
            LimitName::new("smol").unwrap(),
            LeaseConfig::new(RATE).unwrap(),
        );
        let driver = smol::spawn(shared.run(root.clone(), Smol));
        let mut leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
        leaf.acquire(1).await.unwrap(); // the first grant
        let t0 = Instant::now();
        let mut got = 0;
        while t0.elapsed() < Duration::from_secs(2) {
            leaf.acquire(8192).await.unwrap();
            got += 8192;
        }
        let rate = got as f64 / t0.elapsed().as_secs_f64();
        assert!(
            (RATE as f64 * 0.8..=RATE as f64 * 1.1).contains(&rate),
            "{rate:.0} tokens/s under a {RATE}/s fleet limit"
        );
        assert_eq!(shared.stats().share, Some(RATE));
        shared.shutdown();
        driver.await;

        let permits = Permits::new(
            redis.client(),
            LimitName::new("smolp").unwrap(),
            PermitConfig::new(Duration::from_millis(100), 2).unwrap(),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(permits.acquire_and_wait(&Smol).await.unwrap().is_some());
        }
        // Three uses: the second and third at least 100 ms after the one before.
        assert!(t0.elapsed() >= Duration::from_millis(200));
    });
}
