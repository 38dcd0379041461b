//! The layer in a real axum server over loopback TCP, with real per-client addresses (each
//! client binds its own 127.0.0.x): shares per client under a total, rejection with
//! `Retry-After`, a limit changed at runtime reaching a waiting request, bounded keys.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
extern crate alloc;
use alloc::sync::Arc;
use core::time::Duration;
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use throttle_tower::{Limits, Policy, Rejection, RequestHead, RequestLimitLayer, WhenFull};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower_service::Service;

/// The client address axum saw (`into_make_service_with_connect_info`).
fn peer(r: &RequestHead<'_>) -> Option<IpAddr> {
    r.extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

async fn serve<X: throttle_tower::KeyExtractor>(layer: RequestLimitLayer<X>) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A keep-alive HTTP/1.1 client from `from` (a 127.0.0.x address of its own).
async fn connect(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from.into(), 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// One GET; returns the status and the `Retry-After` header, if any.
async fn get_once(s: &mut TcpStream) -> (u16, Option<u64>) {
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(name)
                .map(|v| v.trim().parse::<u64>().unwrap())
        })
    };
    let len = header("content-length:").unwrap_or(0) as usize;
    while buf.len() < head_end + len {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&byte[..n]);
    }
    (status, header("retry-after:"))
}

/// Issue 13: 50 clients behind one service at "10/s per client AND 200/s total", each
/// asking without pause: each gets its max-min share, 200/50 = 4/s, within 5 % over 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_share_the_total_per_client() {
    const CLIENTS: u8 = 50;
    let limiter = throttle_tokio::limiter();
    let total = limiter.node(Limits::per_second(200), 1).unwrap();
    // the default key: the peer address axum saw (`PeerIp`, feature `axum`)
    let layer = RequestLimitLayer::builder(total, Limits::per_second(10))
        .policy(Policy::Wait(Duration::from_secs(30)))
        .build();
    let addr = serve(layer.clone()).await;
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for (i, count) in counts.iter().enumerate() {
        let (count, counting, stop) = (count.clone(), counting.clone(), stop.clone());
        let from = Ipv4Addr::new(127, 0, 0, 10 + i as u8);
        tokio::spawn(async move {
            let mut s = connect(from, addr).await;
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = get_once(&mut s).await;
                assert_eq!(status, 200);
                if counting.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // the first seconds spend the buckets' initial bursts
    tokio::time::sleep(Duration::from_secs(2)).await;
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    counting.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let rates: Vec<f64> = counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as f64 / secs)
        .collect();
    let sum: f64 = rates.iter().sum();
    let (lo, hi) = rates
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    eprintln!(
        "50 clients over {secs:.2} s: total {sum:.1}/s, per client {lo:.2}..{hi:.2}/s (share 4/s)"
    );
    assert!(
        (sum / 200.0 - 1.0).abs() <= 0.05,
        "total {sum:.1}/s vs 200/s"
    );
    for (i, r) in rates.iter().enumerate() {
        assert!(
            (r / 4.0 - 1.0).abs() <= 0.05,
            "client {i}: {r:.2}/s vs its share 4/s ({rates:.2?})"
        );
    }
    assert_eq!(layer.keys_held(), CLIENTS as usize);
}

/// Reject: a client past its limit gets 429 with `Retry-After` at once; other clients are
/// not affected; a `Wait` too short for the limit refuses at once instead of waiting.
#[tokio::test]
async fn past_the_limit_429_with_retry_after() {
    let limiter = throttle_tokio::limiter();
    let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
    let per_key =
        Limits::new(throttle_tower::Tier::per_period(3, Duration::from_secs(60)).unwrap());
    let layer = RequestLimitLayer::builder(total, per_key).key(peer).build();
    let addr = serve(layer).await;
    let mut a = connect(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    for _ in 0..3 {
        assert_eq!(get_once(&mut a).await.0, 200);
    }
    let t = Instant::now();
    let (status, retry) = get_once(&mut a).await;
    assert_eq!(status, 429);
    let retry = retry.expect("Retry-After");
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    assert!(t.elapsed() < Duration::from_secs(1), "rejected at once");
    let mut b = connect(Ipv4Addr::new(127, 0, 0, 3), addr).await;
    assert_eq!(
        get_once(&mut b).await.0,
        200,
        "another client has its own limit"
    );

    let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
    let layer = RequestLimitLayer::builder(total, per_key)
        .key(peer)
        .policy(Policy::Wait(Duration::from_secs(2)))
        .build();
    let addr = serve(layer).await;
    let mut c = connect(Ipv4Addr::new(127, 0, 0, 4), addr).await;
    // exactly the burst (see `what_each_policy_admits_at_once`)
    for _ in 0..3 {
        assert_eq!(get_once(&mut c).await.0, 200);
    }
    let t = Instant::now();
    assert_eq!(get_once(&mut c).await.0, 429, "20 s away: past a 2 s wait");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "refused without waiting the 2 s"
    );
}

/// A per-key limit changed at runtime reaches a request already waiting under it. (A window
/// tier: "at most 1 in any minute" admits exactly one, as a bucket tier of 1 per minute does.)
#[tokio::test]
async fn a_key_limit_change_reaches_a_waiting_request() {
    let limiter = throttle_tokio::limiter();
    let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
    let per_key = Limits::new(throttle_tower::Tier::window(1, Duration::from_secs(60)).unwrap());
    let layer = RequestLimitLayer::builder(total, per_key)
        .key(peer)
        .policy(Policy::Wait(Duration::from_secs(120)))
        .build();
    let addr = serve(layer.clone()).await;
    let ip = Ipv4Addr::new(127, 0, 0, 5);
    let mut s = connect(ip, addr).await;
    assert_eq!(get_once(&mut s).await.0, 200);
    let waiting = tokio::spawn(async move {
        let t = Instant::now();
        let (status, _) = get_once(&mut s).await;
        (status, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second request waits (1 per minute)"
    );
    layer
        .set_key(Some(IpAddr::V4(ip)), Limits::per_second(100))
        .unwrap();
    let (status, took) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the change reached the waiting request")
        .unwrap();
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A million distinct keys would not fit: the map holds at most `max_keys`, the keys past
/// the cap share the overflow node (served), or are refused with `WhenFull::Reject` (503).
#[tokio::test]
async fn distinct_keys_stay_bounded() {
    let limiter = throttle_tokio::limiter();
    let by_header = |r: &RequestHead<'_>| {
        r.headers
            .get("x-client")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for (when_full, want) in [(WhenFull::Overflow, 200), (WhenFull::Reject, 503)] {
        let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let layer = RequestLimitLayer::builder(total, Limits::per_second(1 << 30))
            .key(by_header)
            .max_keys(1000)
            .idle_after(Duration::from_secs(3600))
            .when_full(when_full)
            .build();
        let mut svc =
            tower_layer::Layer::layer(&layer, Router::new().route("/", get(|| async { "ok" })));
        for i in 0..20_000u32 {
            let req = axum::http::Request::get("/")
                .header("x-client", i.to_string())
                .body(axum::body::Body::empty())
                .unwrap();
            core::future::poll_fn(|cx| {
                Service::<axum::http::Request<axum::body::Body>>::poll_ready(&mut svc, cx)
            })
            .await
            .unwrap();
            let res = svc.call(req).await.unwrap();
            let expect = if i < 1000 { 200 } else { want };
            assert_eq!(res.status().as_u16(), expect, "key {i} ({when_full:?})");
            assert!(layer.keys_held() <= 1000);
        }
        assert_eq!(layer.keys_held(), 1000);
    }
}

/// gRPC: a trailers-only RESOURCE_EXHAUSTED with the retry pushback.
#[tokio::test]
async fn grpc_rejection_is_resource_exhausted() {
    let limiter = throttle_tokio::limiter();
    let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
    let per_key =
        Limits::new(throttle_tower::Tier::per_period(1, Duration::from_secs(60)).unwrap());
    let layer = RequestLimitLayer::builder(total, per_key)
        .rejection(Rejection::Grpc)
        .build();
    let mut svc =
        tower_layer::Layer::layer(&layer, Router::new().route("/", get(|| async { "ok" })));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let req = axum::http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = svc.call(req).await.unwrap();
        statuses.push((
            res.status().as_u16(),
            res.headers()
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_owned()),
            res.headers()
                .get("grpc-retry-pushback-ms")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap()),
        ));
    }
    assert_eq!(statuses[0], (200, None, None));
    assert_eq!(statuses[1].0, 200);
    assert_eq!(statuses[1].1.as_deref(), Some("8"));
    let pushback = statuses[1].2.expect("grpc-retry-pushback-ms");
    assert!(
        (50_000..=60_000).contains(&pushback),
        "pushback {pushback} ms"
    );
}

/// What `Policy` admits at once from a full bucket tier of burst 3 ("3 per minute"): exactly 3
/// with `Reject` and with `Wait` (a piece, here one request, starts only while the bucket
/// holds one whole token; it once admitted a 4th into debt), then `Wait` waits; a window tier
/// exactly 3 either way.
#[tokio::test]
async fn what_each_policy_admits_at_once() {
    let limiter = throttle_tokio::limiter();
    let minute = Duration::from_secs(60);
    let bucket = Limits::new(throttle_tower::Tier::per_period(3, minute).unwrap());
    let window = Limits::new(throttle_tower::Tier::window(3, minute).unwrap());
    for (limits, policy, want) in [
        (bucket, Policy::Reject, 3),
        (bucket, Policy::Wait(Duration::from_millis(1)), 3),
        (window, Policy::Reject, 3),
        (window, Policy::Wait(Duration::from_millis(1)), 3),
    ] {
        let total = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let layer = RequestLimitLayer::builder(total, limits)
            .policy(policy)
            .build();
        let mut svc =
            tower_layer::Layer::layer(&layer, Router::new().route("/", get(|| async { "ok" })));
        let mut admitted = 0;
        for _ in 0..10 {
            let req = axum::http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap();
            if svc.call(req).await.unwrap().status() == 200 {
                admitted += 1;
            }
        }
        assert_eq!(admitted, want, "{limits:?} {policy:?}");
    }
}
