//! The client side: read as fast as possible and bin the bytes by the second they arrived in.
//!
//! A byte counts at the instant the `read` that returned it completed. Bins are aligned to a
//! start instant shared by every stream of a scenario (the moment the writers were started),
//! so per-stream and aggregate figures cover the same interval.

use core::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What one client received.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// Bytes received in each whole second since the start.
    pub per_second: Vec<u64>,
    /// Bytes received during the run (the sum of `per_second`).
    pub total: u64,
    /// The longest time between two reads that returned data (from the first byte on), and
    /// when it ended, measured from the start: a stall shows here.
    pub longest_gap: (Duration, Duration),
}

impl Received {
    /// The mean rate over the run, in bytes per second.
    pub fn rate(&self) -> f64 {
        self.total as f64 / self.per_second.len().max(1) as f64
    }
}

/// Reads `stream` from now until `start + secs` seconds, then drops it (the writer sees the
/// connection close). `secs` must be at least 1.
pub async fn drain(mut stream: TcpStream, start: Instant, secs: u32) -> Received {
    let mut buf = vec![0u8; 256 * 1024];
    let end = start + Duration::from_secs(u64::from(secs));
    let mut per_second = vec![0u64; secs as usize];
    let mut total = 0u64;
    let mut last: Option<Instant> = None;
    let mut longest_gap = (Duration::ZERO, Duration::ZERO);
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        let at = Instant::now();
        if at >= end {
            break;
        }
        if let Some(prev) = last.replace(at) {
            if at - prev > longest_gap.0 {
                longest_gap = (at - prev, at - start);
            }
        }
        let last = per_second.len() - 1;
        let bin = at.saturating_duration_since(start).as_secs() as usize;
        per_second[bin.min(last)] += n as u64;
        total += n as u64;
    }
    Received {
        per_second,
        total,
        longest_gap,
    }
}

/// Reads `stream` until `until`, recording `(instant, bytes)` for every read. Used where the
/// exact arrival times matter (the limit-change latency).
pub async fn record(mut stream: TcpStream, until: Instant) -> Vec<(Instant, usize)> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = Vec::new();
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        events.push((Instant::now(), n));
    }
    events
}
