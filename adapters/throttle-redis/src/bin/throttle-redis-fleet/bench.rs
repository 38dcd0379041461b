//! `bench`: the figures of `bench/redis-fleet.md`, one function per scenario, each with its
//! own private `redis-server` and worker processes (this binary's `worker`/`permits`).

use crate::demo::{now_ms, sleep_until_ms, start_redis, worker_args, Fleet, MIB};
use crate::Args;

/// Mean rate of the fleet over `(from, to]`, relative to `rate`, and the extreme 1 s
/// windows in it.
fn windows(fleet: &Fleet, from: u64, to: u64) -> (f64, f64, f64) {
    // On bin boundaries: a window end between two bins would count a partial bin as whole.
    let (from, to) = (from.div_ceil(100) * 100, to / 100 * 100);
    let total = fleet.total(from, to) as f64 / ((to - from) as f64 / 1000.0);
    let mut lo = f64::MAX;
    let mut hi: f64 = 0.0;
    let mut t = from;
    while t + 1000 <= to {
        let w = fleet.total(t, t + 1000) as f64;
        lo = lo.min(w);
        hi = hi.max(w);
        t += 100;
    }
    (total, lo, hi)
}

pub(crate) fn bench(args: &Args) -> Result<(), String> {
    let quick = args.num("quick", 0)? != 0;
    let long = if quick { 10 } else { 30 };
    let only = args.str("only", "steady,weighted,idle,calls,outage,asleep,seed003");
    let run = |name: &str| only.split(',').any(|o| o == name);
    println!("# throttle-redis fleet bench (redis-server, K worker processes on this machine)\n");
    if run("steady") {
        for k in [4u64, 16] {
            steady(k, 40 << 20, long)?;
        }
    }
    if run("weighted") {
        weighted()?;
    }
    if run("idle") {
        idle()?;
    }
    if run("calls") {
        calls_per_process(None)?;
        calls_per_process(Some(1000))?;
    }
    if run("outage") {
        for policy in ["closed", "last", "open"] {
            outage(policy)?;
        }
    }
    if run("asleep") {
        asleep()?;
    }
    if run("seed003") {
        seed003(if quick { 15 } else { 60 })?;
    }
    Ok(())
}

fn steady(k: u64, rate: u64, secs: u64) -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let procs: Vec<_> = (0..k)
        .map(|_| worker_args(&url, "steady", rate, secs + 3, &[]))
        .collect();
    let t0 = (now_ms() / 1000 + 1) * 1000;
    let mut fleet = Fleet::start(&procs)?;
    sleep_until_ms(t0 + (secs + 2) * 1000 + 300);
    fleet.pump();
    let (from, to) = (t0 + 2000, t0 + (secs + 2) * 1000);
    let (mean, lo, hi) = windows(&fleet, from, to);
    let r = rate as f64;
    let per: Vec<String> = (0..k as usize)
        .map(|w| format!("{:.2}", fleet.spent(w, from, to) as f64 / secs as f64 / MIB))
        .collect();
    let calls = redis.script_calls() as f64 / (secs + 2) as f64 / k as f64;
    println!(
        "## {k} processes sharing {:.0} MiB/s for {secs} s\n\n\
         total {:.3} MiB/s ({:+.2} % of the limit); 1 s windows (sliding by 100 ms) \
         {:+.2} % .. {:+.2} %; per process MiB/s: {}; script calls per process {:.1}/s\n",
        r / MIB,
        mean / MIB,
        (mean / r - 1.0) * 100.0,
        (lo / r - 1.0) * 100.0,
        (hi / r - 1.0) * 100.0,
        per.join(" "),
        calls
    );
    drop(fleet);
    Ok(())
}

fn weighted() -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let rate: u64 = 40 << 20;
    let cap: u64 = 4 << 20;
    let cap_s = cap.to_string();
    let procs = vec![
        worker_args(&url, "wmm", rate, 8, &["--weight", "1"]),
        worker_args(&url, "wmm", rate, 8, &["--weight", "2"]),
        worker_args(&url, "wmm", rate, 8, &["--weight", "3"]),
        worker_args(&url, "wmm", rate, 8, &["--weight", "3", "--cap", &cap_s]),
    ];
    // Max-min: the capped member gets its demand (4 MiB/s), the rest splits 1:2:3.
    let rest = (rate - cap) as f64;
    let want = [rest / 6.0, rest * 2.0 / 6.0, rest * 3.0 / 6.0, cap as f64];
    let t0 = now_ms();
    let mut fleet = Fleet::start(&procs)?;
    sleep_until_ms(t0 + 8500);
    fleet.pump();
    // All joined: the first bin at which every member holds a share.
    let joined = fleet.bins[0]
        .iter()
        .map(|b| b.ms)
        .find(|&ms| (0..4).all(|w| fleet.at(w, ms).is_some_and(|b| b.share > 0)));
    // From then, the first instant after which every member's measured rate, in every
    // 500 ms window of the next 2 s, is within 5 % of its max-min share.
    let ok = |tt: u64| {
        (0..4).all(|w| {
            let got = fleet.spent(w, tt, tt + 500) as f64 * 2.0;
            (got / want[w] - 1.0).abs() <= 0.05
        })
    };
    let reached = joined.and_then(|j| {
        (0..40u64)
            .map(|k| j + 100 * k)
            .find(|&t| (0..=15u64).all(|d| ok(t + 100 * d)))
            .map(|t| t - j)
    });
    let got: Vec<String> = (0..4)
        .map(|w| {
            format!(
                "{:.2} (want {:.2})",
                fleet.spent(w, t0 + 4000, t0 + 7000) as f64 / 3.0 / MIB,
                want[w] / MIB
            )
        })
        .collect();
    println!(
        "## weights 1:2:3 + one member capped at 4 MiB/s (weight 3), 40 MiB/s\n\n\
         rates 4-7 s, MiB/s: {}; all four held a share {} after the processes were \
         started; every member within 5 % of its max-min share (500 ms windows, staying \
         there for 2 s) {} after that\n",
        got.join(", "),
        joined.map_or("never".into(), |ms| format!("{} ms", ms.saturating_sub(t0))),
        reached.map_or("never".into(), |ms| format!("{ms} ms"))
    );
    Ok(())
}

fn idle() -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let rate: u64 = 40 << 20;
    let procs = vec![
        worker_args(&url, "idle", rate, 12, &[]),
        worker_args(
            &url,
            "idle",
            rate,
            12,
            &["--idle-from", "5", "--idle-to", "9"],
        ),
    ];
    let t0 = (now_ms() / 1000 + 1) * 1000;
    let mut fleet = Fleet::start(&procs)?;
    sleep_until_ms(t0 + 12_500);
    fleet.pump();
    // The idle member stops at its 5th second (its own clock starts a little after t0).
    let stop = fleet.bins[1]
        .iter()
        .find(|b| {
            b.ms > t0 + 4000
                && fleet
                    .at(1, b.ms + 300)
                    .is_some_and(|n| n.granted == b.granted)
        })
        .map(|b| b.ms);
    let freed = stop.and_then(|s| {
        fleet.bins[0]
            .iter()
            .find(|b| b.ms >= s && b.share as f64 >= rate as f64 * 0.95)
            .map(|b| b.ms - s)
    });
    let calls_idle = match (fleet.at(1, t0 + 6000), fleet.at(1, t0 + 8500)) {
        (Some(a), Some(b)) => b.calls - a.calls,
        _ => u64::MAX,
    };
    let back = fleet.spent(1, t0 + 10_000, t0 + 11_000) as f64 / MIB;
    println!(
        "## a process goes idle (2 processes, 40 MiB/s)\n\n\
         the busy one holds ≥ 95 % of the limit {} after the other's last token; \
         calls by the idle one in 2.5 s of idleness: {calls_idle}; back to {back:.2} MiB/s \
         one second after it resumed\n",
        freed.map_or("never".into(), |ms| format!("{ms} ms"))
    );
    Ok(())
}

fn calls_per_process(max_lease_ms: Option<u64>) -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let max = max_lease_ms.map(|m| m.to_string());
    let mut extra = vec!["--idle-from", "6", "--idle-to", "100"];
    if let Some(m) = &max {
        extra.extend(["--max-lease-ms", m.as_str()]);
    }
    let procs = vec![worker_args(&url, "calls", 10 << 20, 11, &extra)];
    let t0 = now_ms();
    let mut fleet = Fleet::start(&procs)?;
    // Busy from 2 to 5 s (leases grown by then), idle from 7 to 10 s.
    sleep_until_ms(t0 + 2000);
    let c0 = redis.script_calls();
    sleep_until_ms(t0 + 5000);
    let busy = redis.script_calls() - c0;
    sleep_until_ms(t0 + 7000);
    let c1 = redis.script_calls();
    sleep_until_ms(t0 + 10_000);
    let idle = redis.script_calls() - c1;
    fleet.pump();
    let rate = fleet.spent(0, t0 + 2000, t0 + 5000) as f64 / 3.0 / MIB;
    println!(
        "## Redis calls per process (10 MiB/s, T = 200 ms, {})\n\n\
         busy: {:.1} calls/s at {rate:.2} MiB/s; idle: {idle} calls in 3 s (INFO commandstats)\n",
        max_lease_ms.map_or("fixed lease".to_owned(), |m| format!(
            "adaptive up to {m} ms"
        )),
        busy as f64 / 3.0
    );
    Ok(())
}

fn outage(policy: &str) -> Result<(), String> {
    let mut redis = start_redis()?;
    let url = redis.url();
    let rate: u64 = 40 << 20;
    let procs: Vec<_> = (0..3)
        .map(|_| {
            worker_args(
                &url,
                "outage",
                rate,
                16,
                &["--policy", policy, "--hold-ms", "10000"],
            )
        })
        .collect();
    let t0 = (now_ms() / 1000 + 1) * 1000;
    let mut fleet = Fleet::start(&procs)?;
    sleep_until_ms(t0 + 5150); // the bins up to t0 + 5 s have arrived
    let before = {
        fleet.pump();
        fleet.total(t0 + 3000, t0 + 5000) as f64 / 2.0
    };
    redis.kill();
    let killed = now_ms();
    sleep_until_ms(t0 + 9000);
    redis.restart().map_err(|e| e.to_string())?;
    let restarted = now_ms();
    sleep_until_ms(t0 + 14_300);
    fleet.pump();
    // During the outage, after the leases ended (kill + 300 ms) until the restart.
    let (during, _, during_hi) = windows(&fleet, killed + 300, restarted);
    let first_grant = (0..3)
        .filter_map(|w| {
            fleet.bins[w]
                .iter()
                .find(|b| b.ms >= restarted && b.state == "Connected" && b.share > 0)
                .map(|b| b.ms.saturating_sub(restarted))
        })
        .max();
    let (after, _, hi) = windows(&fleet, restarted + 1500, t0 + 14_000);
    println!(
        "## SIGKILL of Redis for 4 s, policy {policy} (3 processes, 40 MiB/s)\n\n\
         before {:.2} MiB/s; during the outage (after the leases) {:.2} MiB/s, highest \
         1 s window {:+.2} % of the limit; every process Connected with a share ≤ {} after \
         the restart (100 ms bins); after: {:.2} MiB/s, highest 1 s window {:+.2} % of the \
         limit\n",
        before / MIB,
        during / MIB,
        (during_hi / rate as f64 - 1.0) * 100.0,
        first_grant.map_or("never".into(), |ms| format!("{ms} ms")),
        after / MIB,
        (hi / rate as f64 - 1.0) * 100.0
    );
    Ok(())
}

fn asleep() -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let procs = vec![worker_args(&url, "asleep", 10 << 20, 8, &[])];
    let t0 = now_ms();
    let mut fleet = Fleet::start(&procs)?;
    sleep_until_ms(t0 + 3000);
    let slept = now_ms();
    let url2 = url.clone();
    let sleeper = std::thread::spawn(move || {
        let _ = redis::Client::open(url2).and_then(|c| {
            let mut con = c.get_connection()?;
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(3)
                .query::<()>(&mut con)
        });
    });
    let _ = sleeper.join();
    sleep_until_ms(t0 + 8500);
    fleet.pump();
    let worst = fleet.bins[0]
        .iter()
        .filter(|b| b.ms > slept && b.ms <= slept + 3500)
        .map(|b| b.worst_us)
        .max()
        .unwrap_or(0);
    let rate = fleet.spent(0, slept, slept + 3000) as f64 / 3.0 / MIB;
    println!(
        "## DEBUG SLEEP 3 (1 process, 10 MiB/s, last-share policy)\n\n\
         slowest 16 KiB acquire while Redis slept: {:.1} ms; rate meanwhile {rate:.2} MiB/s\n",
        worst as f64 / 1000.0
    );
    Ok(())
}

fn seed003(secs: u64) -> Result<(), String> {
    let redis = start_redis()?;
    let url = redis.url();
    let procs: Vec<Vec<String>> = [3, 2, 2]
        .iter()
        .map(|w: &u64| {
            [
                "permits",
                "--url",
                &url,
                "--name",
                "seed003",
                "--workers",
                &w.to_string(),
                "--interval-ms",
                "3000",
                "--max",
                "2",
                "--secs",
                &secs.to_string(),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
        })
        .collect();
    let fleet = Fleet::start(&procs)?;
    let lines = fleet.wait();
    let mut uses: Vec<u64> = Vec::new();
    let (mut nones, mut errors) = (0, 0);
    for l in lines.iter().flatten() {
        let f: Vec<&str> = l.split(' ').collect();
        match f.first() {
            Some(&"use") => uses.push(f[1].parse().unwrap_or(0)),
            Some(&"none") => nones += 1,
            Some(&"error") => errors += 1,
            _ => {}
        }
    }
    uses.sort_unstable();
    let min_gap = uses.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    println!(
        "## seed 003: 7 workers in 3 processes, min_interval 3 s, max_permits 2, {secs} s\n\n\
         {} calls, {nones} None answers, {errors} errors; smallest gap between two calls \
         (wall clock, all processes): {:.3} s\n",
        uses.len(),
        min_gap as f64 / 1e6
    );
    Ok(())
}
