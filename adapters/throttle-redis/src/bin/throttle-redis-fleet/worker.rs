//! The worker processes: `worker` spends tokens under a shared lease limit and prints its
//! progress every 100 ms; `permits` runs seed 003's workers on the blocking permit API and
//! prints each use.
//!
//! Output lines (stdout, one per event, flushed):
//! `bin <unix_ms when sampled> <granted_total> <share|-1> <state> <calls> <errors> <fallbacks> <lost>
//! <slowest acquire of the bin, µs>`
//! and `use <unix_us> <worker>` / `late …` (woke after the window) / `none …` / `error …`.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use throttle_redis::{LeaseConfig, LimitName, OutagePolicy, PermitConfig, Permits, SharedLimit};
use throttle_tokio::{Limits, Tokio};

use crate::Args;

pub(crate) fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) fn policy(name: &str, hold_ms: u64) -> Result<OutagePolicy, String> {
    Ok(match name {
        "closed" => OutagePolicy::FailClosed,
        "last" => OutagePolicy::LastShare {
            hold: Duration::from_millis(hold_ms),
            floor: 0,
        },
        "open" => OutagePolicy::FailOpenUnbounded,
        other => return Err(format!("--policy: closed, last or open, not {other}")),
    })
}

pub(crate) fn worker(args: &Args) -> Result<(), String> {
    let url = args.str("url", "redis://127.0.0.1:6379/");
    let name = LimitName::new(&args.str("name", "fleet")).map_err(|e| e.to_string())?;
    let weight = u16::try_from(args.num("weight", 1)?).map_err(|e| e.to_string())?;
    let lease = Duration::from_millis(args.num("lease-ms", 200)?);
    let pol = policy(&args.str("policy", "last"), args.num("hold-ms", 10_000)?)?;
    let cfg = LeaseConfig::new(args.num("rate", 40 << 20)?)
        .and_then(|c| c.with_weight(weight))
        .and_then(|c| c.with_lease(lease))
        .and_then(|c| c.with_policy(pol))
        .map_err(|e| e.to_string())?;
    let cfg = match args.opt("max-lease-ms")? {
        Some(ms) => cfg
            .with_max_lease(Duration::from_millis(ms))
            .map_err(|e| e.to_string())?,
        None => cfg,
    };
    let secs = args.num("secs", 30)?;
    let cap = args.opt("cap")?;
    let idle = (args.opt("idle-from")?, args.opt("idle-to")?);
    let conns = args.num("conns", 4)?.max(1);
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let limiter = throttle_tokio::limiter();
        let root = limiter
            .node(Limits::per_second(0), 1)
            .map_err(|e| e.to_string())?;
        // A demand-limited worker: one node under the root with the cap.
        let group = root
            .child(cap.map_or(Limits::UNLIMITED, Limits::per_second), 1)
            .map_err(|e| e.to_string())?;
        let shared = SharedLimit::new(client, name, cfg);
        let driver = tokio::spawn(shared.run(root.clone(), Tokio));
        let busy = Arc::new(AtomicBool::new(true));
        let worst = Arc::new(AtomicU64::new(0));
        for _ in 0..conns {
            let mut leaf = group
                .leaf(Limits::UNLIMITED, 1)
                .map_err(|e| e.to_string())?;
            let busy = busy.clone();
            let worst = worst.clone();
            tokio::spawn(async move {
                loop {
                    if busy.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        if leaf.acquire(16 << 10).await.is_err() {
                            return;
                        }
                        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                        worst.fetch_max(us, Ordering::Relaxed);
                        // Stands for the write the tokens were for; an unlimited path
                        // (fail-open) never waits, so yield to keep the runtime's other
                        // tasks (the driver, the bins) running.
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            });
        }
        let t0 = Instant::now();
        let mut out = std::io::stdout();
        while t0.elapsed() < Duration::from_secs(secs) {
            // Bins on 100 ms wall-clock boundaries, so that workers' bins line up.
            let us = unix_us();
            let next = (us / 100_000 + 1) * 100_000;
            tokio::time::sleep(Duration::from_micros(next - us)).await;
            let e = t0.elapsed().as_secs();
            let is_idle = matches!(idle, (Some(a), Some(b)) if e >= a && e < b);
            busy.store(!is_idle, Ordering::Relaxed);
            let s = shared.stats();
            let share = s.share.map_or(-1, |x| i64::try_from(x).unwrap_or(i64::MAX));
            // The time the counter was actually read (a starved process reads it late: the
            // readers scale by the real interval, see `Fleet::spent`).
            let sampled_ms = unix_us() / 1000;
            let line = format!(
                "bin {} {} {} {:?} {} {} {} {} {}\n",
                sampled_ms,
                root.stats().granted,
                share,
                s.state,
                s.calls,
                s.errors,
                s.fallbacks,
                s.state_lost,
                worst.swap(0, Ordering::Relaxed)
            );
            if out
                .write_all(line.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                break; // the parent is gone
            }
        }
        shared.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(1), driver).await;
        let _ = writeln!(out, "done");
        Ok(())
    })
}

pub(crate) fn permits(args: &Args) -> Result<(), String> {
    let url = args.str("url", "redis://127.0.0.1:6379/");
    let name = LimitName::new(&args.str("name", "permits")).map_err(|e| e.to_string())?;
    let interval = Duration::from_millis(args.num("interval-ms", 3000)?);
    let max = u32::try_from(args.num("max", 2)?).map_err(|e| e.to_string())?;
    let mut cfg = PermitConfig::new(interval, max).map_err(|e| e.to_string())?;
    if let Some(w) = args.opt("window-ms")? {
        cfg = cfg
            .with_window(Duration::from_millis(w))
            .map_err(|e| e.to_string())?;
    }
    let workers = args.num("workers", 3)?;
    let secs = args.num("secs", 60)?;
    let retry = Duration::from_millis(args.num("retry-ms", 1000)?);
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let permits = Arc::new(Permits::new(client, name, cfg));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let p = permits.clone();
            std::thread::spawn(move || {
                while t0.elapsed() < Duration::from_secs(secs) {
                    match p.acquire_and_wait_blocking() {
                        Ok(Some(permit)) => {
                            // The "API call": its time is what must be min_interval apart.
                            // Taken before the window is checked again, so it lies inside.
                            let at = unix_us();
                            if permit.usable_at(Instant::now()) {
                                println!("use {at} {w}");
                            } else {
                                println!("late {at} {w}");
                            }
                        }
                        Ok(None) => {
                            println!("none {} {w}", unix_us());
                            std::thread::sleep(retry);
                        }
                        Err(e) => {
                            println!("error {} {w} {e}", unix_us());
                            std::thread::sleep(retry);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    println!("done");
    Ok(())
}
