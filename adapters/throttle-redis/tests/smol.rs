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

        let cfg = PermitConfig::new(Duration::from_millis(100), 2)
            .unwrap()
            .with_window(Duration::from_millis(100))
            .unwrap();
        let permits = Permits::new(redis.client(), LimitName::new("smolp").unwrap(), cfg);
        let t0 = Instant::now();
        let mut used = 0;
        while used < 3 && t0.elapsed() < Duration::from_secs(5) {
            match permits.acquire_and_wait(&Smol).await {
                Ok(Some(_)) => used += 1,
                Ok(None) | Err(throttle_redis::PermitError::Expired) => {}
                Err(e) => panic!("{e}"),
            }
        }
        // Three uses: the second and third at least 100 ms after the one before.
        assert_eq!(used, 3);
        assert!(t0.elapsed() >= Duration::from_millis(200));
    });
}
