//! Memory of `throttle_io::KeyedNodes` under 1 000 000 distinct keys (client addresses):
//! `cargo bench -p throttle-cli --bench keyed_memory`. Each key is used once (a guard taken
//! and dropped, as a short connection does); the map is capped, so what it holds, and the
//! process's memory, stay bounded whatever the number of keys. Prints the peak RSS, what
//! the map and the tree hold at the end, and the time per `get`. A second run caps at 1 000 000
//! keys, all held at once, to give the cost of one key.

use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;
use std::time::Instant;

use throttle_io::{KeyedConfig, KeyedNodes, WhenFull};
use throttle_tokio::Limits;

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn key(i: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(
        0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(i),
    ))
}

fn run(n: u64, cap: usize, idle: Duration, hold: bool) {
    let limiter = throttle_tokio::limiter();
    let parent = limiter.node(Limits::per_second(100 << 20), 1).unwrap();
    let keyed = KeyedNodes::new(
        parent,
        KeyedConfig {
            cap,
            idle,
            when_full: WhenFull::Overflow,
        },
    );
    let rss0 = status("VmRSS:");
    let mut held = Vec::new();
    let mut overflowed = 0u64;
    let t0 = Instant::now();
    for i in 0..n {
        let g = keyed.get(&key(i), Limits::per_second(1 << 20), 1).unwrap();
        overflowed += u64::from(g.is_overflow());
        if hold {
            held.push(g);
        }
    }
    let per_get = t0.elapsed().as_secs_f64() / n as f64 * 1e9;
    let rss1 = status("VmRSS:");
    println!(
        "{n} distinct keys, cap {cap}, idle {idle:?}, {}: {per_get:.0} ns per get; held at the end: {} keys (+ overflow: {}), {} nodes in the tree; {overflowed} gets served by the overflow node; RSS {} → {} KiB (+{} KiB{})",
        if hold { "all guards held" } else { "each guard dropped at once" },
        keyed.len(),
        keyed.has_overflow(),
        limiter.len(),
        rss0,
        rss1,
        rss1.saturating_sub(rss0),
        if hold {
            format!(", {} B per key", (rss1.saturating_sub(rss0) * 1024) / n)
        } else {
            String::new()
        }
    );
}

fn main() {
    println!(
        "keyed_memory; load (1/5/15 min): {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    run(1_000_000, 10_000, Duration::ZERO, false);
    run(1_000_000, 100_000, Duration::from_millis(1), false);
    run(1_000_000, 1_000_000, Duration::from_secs(60), true);
    println!("peak RSS of this process: {} KiB", status("VmHWM:"));
}
