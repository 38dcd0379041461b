//! Several processes (this crate's `throttle-redis-fleet` binary) against one real
//! `redis-server`: one lease limit shared by three processes, seed 003's permits across
//! three processes. Tolerances are generous; the figures come from `throttle-redis-fleet
//! bench`.

mod common;

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::server;

const BIN: &str = env!("CARGO_BIN_EXE_throttle-redis-fleet");

/// Runs the processes to completion and returns each one's stdout lines.
fn run_all(procs: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let children: Vec<_> = procs
        .iter()
        .map(|a| {
            Command::new(BIN)
                .args(a)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the fleet binary starts")
        })
        .collect();
    children
        .into_iter()
        .map(|mut c| {
            let out = c.stdout.take().unwrap();
            let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
            assert!(c.wait().unwrap().success());
            lines
        })
        .collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn three_processes_share_one_limit() {
    let Some(redis) = server() else { return };
    let url = redis.url();
    let rate: u64 = 8 << 20;
    let procs = (0..3)
        .map(|_| {
            let r = rate.to_string();
            args(&[
                "worker", "--url", &url, "--name", "mp", "--rate", &r, "--secs", "6",
            ])
        })
        .collect();
    let out = run_all(procs);
    // Per process: (unix ms, granted) of each bin.
    let bins: Vec<Vec<(u64, u64)>> = out
        .iter()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    (f[0] == "bin").then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
                })
                .collect()
        })
        .collect();
    let start = bins.iter().map(|b| b[0].0).max().unwrap();
    let (from, to) = (start + 2000, start + 5000);
    let at = |b: &[(u64, u64)], t: u64| b.iter().rev().find(|x| x.0 <= t).unwrap().1;
    let spent: Vec<u64> = bins.iter().map(|b| at(b, to) - at(b, from)).collect();
    let total: u64 = spent.iter().sum();
    let want = rate * 3;
    assert!(
        total <= want * 105 / 100 && total >= want * 80 / 100,
        "3 s total {total}, limit {want}; per process {spent:?}"
    );
    for s in &spent {
        assert!(
            s.abs_diff(want / 3) <= want / 3 / 4,
            "per process {spent:?}, fair share {}",
            want / 3
        );
    }
    // Every process ended by giving its share back (shutdown): nothing reserved.
    let members: Vec<String> = redis.cmd(&["HVALS", "{thr:mp}:m"]).unwrap();
    for m in members {
        assert_eq!(m.split(',').nth(2), Some("0"), "member {m}");
    }
}

#[test]
fn permits_across_three_processes_are_min_interval_apart() {
    let Some(redis) = server() else { return };
    let url = redis.url();
    let interval = Duration::from_millis(300);
    let ms = interval.as_millis().to_string();
    let procs = [3, 2, 2]
        .iter()
        .map(|w: &u32| {
            let w = w.to_string();
            args(&[
                "permits",
                "--url",
                &url,
                "--name",
                "seed",
                "--workers",
                &w,
                "--interval-ms",
                &ms,
                "--max",
                "2",
                "--secs",
                "5",
                "--retry-ms",
                "100",
                "--window-ms",
                "100",
            ])
        })
        .collect();
    let out = run_all(procs);
    let mut uses: Vec<u64> = Vec::new();
    let mut nones = 0;
    for l in out.iter().flatten() {
        let f: Vec<&str> = l.split(' ').collect();
        match f[0] {
            "use" => uses.push(f[1].parse().unwrap()),
            "none" => nones += 1,
            "error" => panic!("{l}"),
            _ => {}
        }
    }
    uses.sort_unstable();
    // 5 s at one call per 400 ms (interval + window): about 12 calls (fewer if a loaded
    // machine wakes a waiter after its window: "late", forfeited).
    assert!(uses.len() >= 6, "{} calls", uses.len());
    assert!(nones > 0, "7 workers, max 2 queued: some asked in vain");
    let interval_us = u64::try_from(interval.as_micros()).unwrap();
    for w in uses.windows(2) {
        // 1 ms: the server's TIME is read in whole milliseconds.
        assert!(
            w[1] - w[0] + 1000 >= interval_us,
            "calls {} µs apart",
            w[1] - w[0]
        );
    }
}
