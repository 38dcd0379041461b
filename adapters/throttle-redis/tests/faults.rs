//! Faults against a real `redis-server`: a black-holing TCP proxy in front of one member
//! (partial partition), `CLIENT PAUSE … WRITE`, SIGSTOP/SIGCONT. The invariant checked
//! throughout: the shares in force never add up to more than the limit, and the data path
//! keeps moving while Redis does not answer.

mod common;

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use common::{eventually, server, Member};
use throttle_redis::{LeaseConfig, LinkState, OutagePolicy};

const RATE: u64 = 4_000_000;
const CHUNK: u64 = 8192;

/// A TCP proxy to `port` that forwards both ways until `blackhole` is set, then swallows
/// everything (connections stay open, nothing arrives: the worst kind of partition).
struct Proxy {
    port: u16,
    blackhole: Arc<AtomicBool>,
}

impl Proxy {
    fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = listener.local_addr().unwrap().port();
        let blackhole = Arc::new(AtomicBool::new(false));
        let bh = blackhole.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    let bh = bh.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            if !bh.load(Ordering::Relaxed) && to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Proxy {
            port: me,
            blackhole,
        }
    }
}

fn policy(hold_ms: u64) -> LeaseConfig {
    LeaseConfig::new(RATE)
        .unwrap()
        .with_policy(OutagePolicy::LastShare {
            hold: Duration::from_millis(hold_ms),
            floor: 0,
        })
        .unwrap()
}

/// Samples both shares every 10 ms for `d` and fails if they ever exceed the limit.
async fn never_over(a: &Member, b: &Member, d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        let (sa, sb) = (a.share(), b.share());
        assert!(sa + sb <= RATE, "shares {sa} + {sb} > {RATE}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_black_holed_keeps_its_share_reserved_then_frees_it() {
    let Some(redis) = server() else { return };
    let proxy = Proxy::start(redis.port());
    // Member A reaches Redis only through the proxy.
    let a = {
        let url = format!("redis://127.0.0.1:{}/", proxy.port);
        member_at(&url, policy(1000))
    };
    let b = Member::spawn(&redis, "bh", policy(1000), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    proxy.blackhole.store(true, Ordering::Relaxed);
    // A keeps its last share for the hold (1 s) after its lease; B cannot take it meanwhile.
    never_over(&a, &b, Duration::from_millis(2500)).await;
    assert_eq!(
        a.shared.stats().state,
        LinkState::FailedClosed,
        "hold over, floor 0"
    );
    assert_eq!(a.share(), 0);
    assert!(
        eventually(Duration::from_secs(3), || b.share() == RATE)
            .await
            .is_some(),
        "b={}",
        b.share()
    );
    proxy.blackhole.store(false, Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
}

/// A member whose client points at `url` (e.g. a proxy), name "bh".
fn member_at(url: &str, cfg: LeaseConfig) -> Member {
    use throttle_redis::{LimitName, SharedLimit};
    use throttle_tokio::{Limits, Tokio};
    let limiter = throttle_tokio::limiter();
    let root = limiter.node(Limits::per_second(0), 1).unwrap();
    let client = redis::Client::open(url).unwrap();
    let shared = SharedLimit::new(client, LimitName::new("bh").unwrap(), cfg);
    tokio::spawn(shared.run(root.clone(), Tokio));
    let busy = Arc::new(AtomicBool::new(true));
    let mut leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
    tokio::spawn(async move { while leaf.acquire(CHUNK).await.is_ok() {} });
    Member { shared, root, busy }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_paused_members_keep_shares_and_recover() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "pause", policy(10_000), None, CHUNK);
    let b = Member::spawn(&redis, "pause", policy(10_000), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "2000", "WRITE"]).unwrap();
    let g0 = a.granted() + b.granted();
    never_over(&a, &b, Duration::from_millis(1800)).await;
    let moved = a.granted() + b.granted() - g0;
    assert!(moved >= RATE, "the data path kept moving: {moved} in 1.8 s");
    assert!(a.shared.stats().errors > 0 && b.shared.stats().errors > 0);
    assert!(eventually(Duration::from_secs(5), || {
        a.shared.stats().state == LinkState::Connected
            && b.shared.stats().state == LinkState::Connected
    })
    .await
    .is_some());
    never_over(&a, &b, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_and_continued_members_recover_without_overshoot() {
    let Some(redis) = server() else { return };
    let a = Member::spawn(&redis, "stop", policy(10_000), None, CHUNK);
    let b = Member::spawn(&redis, "stop", policy(10_000), None, CHUNK);
    let half = |m: &Member| m.share().abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());
    redis.signal("STOP").unwrap();
    never_over(&a, &b, Duration::from_millis(1500)).await;
    assert_eq!(a.shared.stats().state, LinkState::FailedOpen);
    redis.signal("CONT").unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        a.shared.stats().state == LinkState::Connected
            && b.shared.stats().state == LinkState::Connected
    })
    .await
    .is_some());
    never_over(&a, &b, Duration::from_millis(1000)).await;
    let back = eventually(Duration::from_secs(5), || half(&a) && half(&b)).await;
    assert!(back.is_some(), "a={} b={}", a.share(), b.share());
}
