//! Loopback throughput of one TCP stream: plain, throttled with no limit anywhere (the tree
//! is skipped), and throttled under a limit far above what loopback can do (every write goes
//! through the tree, in pieces of at most 64 KiB). Writes are 64 KiB, so all three make the
//! same system calls. `cargo run --release -p throttle-tokio --example loopback [MiB]`.

use std::time::Instant;

use throttle_tokio::{Limits, Throttled};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let c = TcpStream::connect(l.local_addr().expect("addr"))
        .await
        .expect("connect");
    (l.accept().await.expect("accept").0, c)
}

/// MiB/s of writing `total` bytes through `w` while a task drains the other end.
async fn run<W: AsyncWriteExt + Unpin>(mut w: W, mut r: TcpStream, total: u64) -> f64 {
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 << 10];
        while r.read(&mut buf).await.expect("read") > 0 {}
    });
    let buf = vec![0u8; 64 << 10];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < total {
        w.write_all(&buf).await.expect("write");
        sent += buf.len() as u64;
    }
    w.shutdown().await.expect("shutdown");
    drop(w);
    reader.await.expect("reader");
    total as f64 / (1 << 20) as f64 / t0.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let total = mib << 20;
    let limiter = throttle_tokio::limiter();
    for _ in 0..2 {
        let (w, r) = pair().await;
        println!("plain:               {:8.0} MiB/s", run(w, r, total).await);

        let node = limiter.node(Limits::UNLIMITED, 1).expect("node");
        let (w, r) = pair().await;
        let w = Throttled::new(
            w,
            node.connection(Limits::UNLIMITED, Limits::UNLIMITED)
                .expect("conn"),
        );
        println!("throttled, unlimited: {:8.0} MiB/s", run(w, r, total).await);

        // 1 TiB/s: never binding, but every write takes a grant from the tree and settles
        let node = limiter.node(Limits::per_second(1 << 40), 1).expect("node");
        let (w, r) = pair().await;
        let w = Throttled::new(
            w,
            node.connection(Limits::UNLIMITED, Limits::UNLIMITED)
                .expect("conn"),
        );
        println!("throttled, 1 TiB/s:  {:8.0} MiB/s", run(w, r, total).await);
    }
}
