//! Smoke tests of the tokio adapter over loopback TCP (the full suite is `tests/conformance`).

use core::time::Duration;
use std::time::Instant;

use throttle_tokio::{Limits, Listener, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_write_limited_rate_is_followed() {
    let limiter = throttle_tokio::limiter();
    let node = limiter.node(Limits::UNLIMITED, 1).unwrap();
    let server = Server::new(node, Limits::UNLIMITED, Limits::per_second(256 << 10));
    let listener = Listener::bind("127.0.0.1:0", server).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        buf.len()
    });
    let (mut conn, _) = listener.accept().await.unwrap();
    assert_eq!(limiter.len(), 3);
    let t0 = Instant::now();
    conn.write_all(&vec![7u8; 512 << 10]).await.unwrap();
    conn.shutdown().await.unwrap();
    let dt = t0.elapsed();
    drop(conn);
    assert_eq!(client.await.unwrap(), 512 << 10);
    assert_eq!(limiter.len(), 1);
    // 512 KiB at 256 KiB/s less a 4 KiB burst: just under 2 s
    assert!(
        dt > Duration::from_millis(1800) && dt < Duration::from_millis(2600),
        "{dt:?}"
    );
}
