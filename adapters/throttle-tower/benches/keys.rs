//! Memory of the layer under 1 000 000 distinct clients arriving over one minute:
//! `cargo bench -p throttle-tower --bench keys` (add `-- --quick` for 100 000 keys over 6 s).
//! Each request has its own key (a header here, standing for 1 000 000 client addresses),
//! the layer holds at most `max_keys` = 100 000 keys and evicts those idle for 5 s. Prints,
//! every tenth of the run, the keys held, the tree's nodes and the process RSS: they level off
//! instead of growing with the number of distinct keys.

use core::time::Duration;
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use throttle_tower::{Limits, RequestHead, RequestLimitLayer};
use tower_service::Service;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, secs) = if quick {
        (100_000u64, 6u64)
    } else {
        (1_000_000, 60)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let limiter = throttle_tokio::limiter();
        let total = limiter.node(Limits::per_second(1 << 30), 1).expect("node");
        let by_header = |r: &RequestHead<'_>| {
            r.headers
                .get("x-client")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let layer = RequestLimitLayer::builder(total, Limits::per_second(10))
            .key(by_header)
            .max_keys(100_000)
            .idle_after(Duration::from_secs(5))
            .build();
        let mut svc =
            tower_layer::Layer::layer(&layer, Router::new().route("/", get(|| async { "ok" })));
        let rss0 = rss_kib();
        println!(
            "{n} distinct keys over {secs} s, max_keys 100000, idle 5 s; RSS at start {rss0} KiB"
        );
        let t0 = Instant::now();
        let mut served = 0u64;
        for i in 0..n {
            let req = axum::http::Request::get("/")
                .header("x-client", i.to_string())
                .body(axum::body::Body::empty())
                .expect("request");
            let res = svc.call(req).await.expect("infallible");
            served += u64::from(res.status() == 200);
            if (i + 1) % 1000 == 0 {
                // pace the arrivals over the run
                let due = Duration::from_secs_f64(secs as f64 * (i + 1) as f64 / n as f64);
                if let Some(d) = due.checked_sub(t0.elapsed()) {
                    tokio::time::sleep(d).await;
                }
            }
            if (i + 1) % (n / 10) == 0 {
                println!(
                    "  {:>5.1} s: {:>7} keys seen, {:>6} held, {:>6} nodes in the tree, RSS {} KiB",
                    t0.elapsed().as_secs_f64(),
                    i + 1,
                    layer.keys_held(),
                    limiter.len(),
                    rss_kib()
                );
            }
        }
        println!("served {served} of {n}");
    });
}
