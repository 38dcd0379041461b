//! The clients: each connects, reads as fast as it can and counts what arrived. The table is
//! built from these counters only, so every figure it shows is measured on the client side.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Bytes and lines received, per client.
#[derive(Debug)]
pub(crate) struct Counters {
    bytes: Vec<AtomicU64>,
    lines: Vec<AtomicU64>,
}

impl Counters {
    /// Bytes received so far by each client.
    pub(crate) fn bytes(&self) -> Vec<u64> {
        self.bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// Complete log lines received so far, all clients together.
    pub(crate) fn lines(&self) -> u64 {
        self.lines.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }
}

/// Connects one client to each address (in order) and starts them reading.
pub(crate) async fn start(addrs: &[SocketAddr]) -> io::Result<Arc<Counters>> {
    let n = addrs.len();
    let counters = Arc::new(Counters {
        bytes: (0..n).map(|_| AtomicU64::new(0)).collect(),
        lines: (0..n).map(|_| AtomicU64::new(0)).collect(),
    });
    for (i, addr) in addrs.iter().enumerate() {
        let stream = TcpStream::connect(addr).await?;
        let counters = counters.clone();
        tokio::spawn(async move { read(stream, &counters.bytes[i], &counters.lines[i]).await });
    }
    Ok(counters)
}

async fn read(mut stream: TcpStream, bytes: &AtomicU64, lines: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
        lines.fetch_add(newlines as u64, Ordering::Relaxed);
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
