//! Request limiting side by side with governor (no network: the unit is one request).
//!
//! - **N tasks sharing R requests/s**: 1, 10 and 100 tasks, each asking for one request at a
//!   time as fast as it is allowed. throttle: one node `Limits::per_second(R)` (automatic
//!   burst: R ≤ 4096 gives a burst of R), one leaf per task, `leaf.acquire(1).await`.
//!   governor: one `RateLimiter::direct(Quota::per_second(R))` (burst R) behind an `Arc`,
//!   `until_ready().await` in every task. Measured: requests in the first 10 ms (the burst),
//!   the rate after the first second against R, the worst 1-s window after the first, and
//!   Jain's index over the tasks' counts after the first second.
//! - **"100/s AND 300 per 6 s"** (seed 002's "10/s AND 300/min", ten times faster so that
//!   it fits the run): one task, 6 s; how many requests got through in those 6 s, and the
//!   most in any 1 s. throttle as token buckets (`Tier::per_period`), throttle with a window
//!   tier (`Tier::window`), and governor with two limiters awaited in turn (its way to combine
//!   quotas).

use alloc::sync::Arc;
use core::num::NonZeroU32;
use core::time::Duration;
use std::io;

use governor::{Quota, RateLimiter};
use throttle_bench::json::Json;
use throttle_bench::stats::{error_pct, jain};
use throttle_bench::table::Table;
use throttle_tokio::{Limits, Tier};
use tokio::time::Instant;

use crate::peers::Peer;
use crate::report::Report;

/// How a task waits for one request.
#[derive(Clone)]
enum Gate {
    Throttle(throttle_tokio::Node),
    Governor(Vec<Arc<governor::DefaultDirectRateLimiter>>),
}

impl Gate {
    /// Spawns one task asking one request at a time until `end`; its admission instants
    /// (from `start`).
    fn spawn(
        &self,
        start: Instant,
        end: Instant,
    ) -> io::Result<tokio::task::JoinHandle<Vec<Duration>>> {
        let mut at = Vec::new();
        Ok(match self {
            Gate::Throttle(node) => {
                let mut leaf = node.leaf(Limits::UNLIMITED, 1).map_err(io::Error::other)?;
                tokio::spawn(async move {
                    while let Ok(Ok(())) = tokio::time::timeout_at(end, leaf.acquire(1)).await {
                        at.push(start.elapsed());
                    }
                    at
                })
            }
            Gate::Governor(limiters) => {
                let limiters = limiters.clone();
                tokio::spawn(async move {
                    loop {
                        let one = async {
                            for l in &limiters {
                                l.until_ready().await;
                            }
                        };
                        if tokio::time::timeout_at(end, one).await.is_err() {
                            break at;
                        }
                        at.push(start.elapsed());
                    }
                })
            }
        })
    }
}

/// `n` tasks through `gate` for `secs`: each task's admission instants.
async fn run(gate: &Gate, n: usize, secs: u32) -> io::Result<Vec<Vec<Duration>>> {
    let start = Instant::now();
    let end = start + Duration::from_secs(u64::from(secs));
    let tasks: Vec<_> = (0..n)
        .map(|_| gate.spawn(start, end))
        .collect::<io::Result<_>>()?;
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.map_err(io::Error::other)?);
    }
    Ok(out)
}

/// The most instants in any `[t, t + w)`.
fn max_in_any(at: &[Duration], w: Duration) -> usize {
    let (mut lo, mut best) = (0, 0);
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= w {
            lo += 1;
        }
        best = best.max(hi + 1 - lo);
    }
    best
}

fn gcra(per_second: u32) -> Arc<governor::DefaultDirectRateLimiter> {
    let r = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(Quota::per_second(r)))
}

/// Figures of one "N tasks" run.
struct Shared {
    first_10ms: usize,
    rate_error_pct: f64,
    worst_window_pct: f64,
    jain: f64,
}

fn shared_figures(per_task: &[Vec<Duration>], rate: u32, secs: u32) -> Shared {
    let mut all: Vec<Duration> = per_task.iter().flatten().copied().collect();
    all.sort();
    let one = Duration::from_secs(1);
    let after: Vec<Duration> = all.iter().copied().filter(|&t| t >= one).collect();
    let per_sec: Vec<f64> = (1..secs)
        .map(|s| after.iter().filter(|t| t.as_secs() == u64::from(s)).count() as f64)
        .collect();
    let worst = per_sec
        .iter()
        .map(|&c| error_pct(c, f64::from(rate)))
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(f64::NAN);
    // after the first second: whoever runs first takes the whole burst
    let counts: Vec<f64> = per_task
        .iter()
        .map(|v| v.iter().filter(|&&t| t >= one).count() as f64)
        .collect();
    Shared {
        first_10ms: all
            .iter()
            .filter(|&&t| t < Duration::from_millis(10))
            .count(),
        rate_error_pct: error_pct(after.len() as f64 / f64::from(secs - 1), f64::from(rate)),
        worst_window_pct: worst,
        jain: jain(&counts),
    }
}

impl Report {
    /// The request-limiting tables (throttle and governor).
    pub(crate) async fn requests(&mut self, secs: u32) -> io::Result<()> {
        let secs = secs.max(2);
        let rate: u32 = 1000;
        let peers = [Peer::Throttle, Peer::Gov];
        let mut h = vec![format!("requests, N tasks sharing {rate}/s, {secs} s")];
        h.extend(peers.iter().map(|p| p.name().to_owned()));
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let mut t = Table::new(&h);
        let mut js = Vec::new();
        for n in [1usize, 10, 100] {
            let mut rows = [
                vec![format!("{n} tasks: requests in the first 10 ms")],
                vec![format!("{n} tasks: rate after the 1st s vs {rate}/s")],
                vec![format!("{n} tasks: worst 1-s window after the 1st")],
                vec![format!(
                    "{n} tasks: Jain's index over tasks, after the 1st s"
                )],
            ];
            for peer in peers {
                if !self.has_peer(peer) {
                    for r in &mut rows {
                        r.push("skipped".into());
                    }
                    continue;
                }
                Self::progress(&format!("requests {n} tasks {}", peer.name()));
                let gate = match peer {
                    Peer::Gov => Gate::Governor(vec![gcra(rate)]),
                    _ => Gate::Throttle(
                        throttle_tokio::limiter()
                            .node(Limits::per_second(u64::from(rate)), 1)
                            .map_err(io::Error::other)?,
                    ),
                };
                let got = run(&gate, n, secs).await?;
                let f = shared_figures(&got, rate, secs);
                rows[0].push(f.first_10ms.to_string());
                rows[1].push(format!("{:+.2} %", f.rate_error_pct));
                rows[2].push(format!("{:+.2} %", f.worst_window_pct));
                rows[3].push(format!("{:.4}", f.jain));
                js.push(
                    Json::obj()
                        .with("peer", peer.key())
                        .with("tasks", n)
                        .with("rate_per_sec", u64::from(rate))
                        .with("secs", u64::from(secs))
                        .with("first_10ms", f.first_10ms)
                        .with("rate_error_pct", f.rate_error_pct)
                        .with("worst_window_pct", f.worst_window_pct)
                        .with("jain", f.jain),
                );
            }
            for r in rows {
                t.row(r);
            }
        }
        self.add(
            "requests",
            t,
            vec![
                "throttle: Limits::per_second(1000) (burst 1000), a leaf per task, acquire(1); \
                 governor: Quota::per_second(1000) (burst 1000) behind an Arc, until_ready()"
                    .into(),
            ],
            Json::Arr(js),
        );
        self.two_tiers().await
    }

    /// "100/s AND 300 per 6 s", one task, 6 s.
    async fn two_tiers(&mut self) -> io::Result<()> {
        let window = Duration::from_secs(6);
        let cols = ["throttle (buckets)", "throttle (window)", "governor"];
        let mut h = vec!["requests, 100/s AND 300 per 6 s, one task, 6 s"];
        h.extend(cols);
        let mut t = Table::new(&h);
        let mut first = vec!["admitted in the 6 s (at most 300 wanted)".to_owned()];
        let mut most = vec!["most in any 1 s".to_owned()];
        let mut js = Vec::new();
        for (i, label) in cols.iter().enumerate() {
            let peer = if i == 2 { Peer::Gov } else { Peer::Throttle };
            if !self.has_peer(peer) {
                first.push("skipped".into());
                most.push("skipped".into());
                continue;
            }
            Self::progress(&format!("requests two tiers {label}"));
            let gate = match i {
                0 | 1 => {
                    let quota = if i == 0 {
                        Tier::per_period(300, window)
                    } else {
                        Tier::window(300, window)
                    }
                    .map_err(io::Error::other)?;
                    let limits = Limits::per_second(100)
                        .and(quota)
                        .map_err(io::Error::other)?;
                    Gate::Throttle(
                        throttle_tokio::limiter()
                            .node(limits, 1)
                            .map_err(io::Error::other)?,
                    )
                }
                _ => {
                    let per_period = Quota::with_period(window / 300)
                        .map(|q| q.allow_burst(NonZeroU32::new(300).unwrap_or(NonZeroU32::MIN)))
                        .ok_or_else(|| io::Error::other("zero period"))?;
                    Gate::Governor(vec![gcra(100), Arc::new(RateLimiter::direct(per_period))])
                }
            };
            let got = run(&gate, 1, 6).await?;
            let at = &got[0];
            let m = max_in_any(at, Duration::from_secs(1));
            first.push(at.len().to_string());
            most.push(m.to_string());
            js.push(
                Json::obj()
                    .with("label", *label)
                    .with("admitted_in_6s", at.len())
                    .with("most_in_any_1s", m),
            );
        }
        t.row(first);
        t.row(most);
        self.add(
            "requests_two_tiers",
            t,
            vec![
                "buckets: Tier::per_period(300, 6 s) refills continuously (as governor); \
                 window: Tier::window(300, 6 s), at most 300 in any 6 s; governor: two \
                 limiters (per_second(100), with_period(20 ms) burst 300) awaited in turn"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }
}
