//! `simulate`: runs the built-in scenarios through the real core in virtual time and prints
//! one report each (ideal vs simulated shares, Jain's index, worst conformance window per
//! limited node, utilization), plus a one-line check with the other driver style.
//!
//! `cargo run --release -p throttle-tests --bin simulate [SCENARIO...]`; `--list` names them.
//! Each scenario is also run under tokio-like timing (timers on a 1 ms grid, wake-ups up to
//! 200 µs late). `--weights` prints instead the table of issue 9: two copy loops weighted 4:1,
//! 1:3 and 10:1 (leaves, or one-leaf groups) at 6, 60 and 600 MiB/s with 1 KiB, 8 KiB and
//! 1 MiB requests, under a 1 ms timer grid and wake-up latencies from 0 to 2 ms: the worst
//! |share ratio / weight ratio − 1| per latency.

use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use throttle_tests::scenarios;
use throttle_tests::sim::{DriverStyle, Runtime};

const MIB: u64 = 1 << 20;

/// The `--weights` table.
fn weights_table() -> ExitCode {
    println!("weights under a 1 ms timer grid: worst |(a/b)/(wa/wb) − 1| over 3 s (after 0.2 s)");
    println!("  latency   rate      1 KiB     8 KiB     1 MiB   (worst of 4:1, 1:3, 10:1, leaves and groups)");
    for lat_us in [0u64, 200, 500, 1000, 2000] {
        for rate in [6 * MIB, 60 * MIB, 600 * MIB] {
            print!("  {:>5} µs {:>4} MiB/s", lat_us, rate / MIB);
            for want in [1 << 10, 8 << 10, 1 << 20] {
                let mut worst: f64 = 0.0;
                for w in [(4u16, 1u16), (1, 3), (10, 1)] {
                    for groups in [false, true] {
                        let mut sc = scenarios::weighted_pair(rate, w, want, groups);
                        sc.runtime = Runtime::tokio(Duration::from_micros(lat_us));
                        let r = sc.run();
                        let e = (r.leaf("a").rate / r.leaf("b").rate)
                            / (f64::from(w.0) / f64::from(w.1))
                            - 1.0;
                        worst = worst.max(e.abs());
                    }
                }
                print!("  {:>7.2}%", worst * 100.0);
            }
            println!();
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--weights") {
        return weights_table();
    }
    if args.iter().any(|a| a == "--list" || a == "-l") {
        for s in scenarios::all() {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<_> = if args.is_empty() {
        scenarios::all()
    } else {
        let mut v = Vec::new();
        for a in &args {
            match scenarios::named(a) {
                Some(s) => v.push(s),
                None => {
                    eprintln!("unknown scenario {a}; `--list` names them");
                    return ExitCode::FAILURE;
                }
            }
        }
        v
    };
    let mut failed = false;
    for sc in chosen {
        let started = Instant::now();
        let report = sc.run();
        print!("{report}");
        let mut other = sc.clone();
        other.driver = match sc.driver {
            DriverStyle::OneTimer => DriverStyle::PerWaiter,
            DriverStyle::PerWaiter => DriverStyle::OneTimer,
        };
        let o = other.run();
        println!(
            "  {:?} driver: {} ops, worst slack {}, max |rate/ideal − 1| {}, jain {}, violations {}",
            other.driver,
            o.ops,
            o.worst_slack().map_or("-".into(), |s| format!("{s} B")),
            o.max_ideal_error().map_or("-".into(), |e| format!("{:.3}%", e * 100.0)),
            o.jain.map_or("-".into(), |j| format!("{j:.5}")),
            o.violations.len()
        );
        let mut tokio = sc.clone();
        tokio.runtime = Runtime::tokio(Duration::from_micros(200));
        let t = tokio.run();
        println!(
            "  tokio-like timing (1 ms grid, wake-ups ≤ 200 µs late): {} ops, worst slack {}, max |rate/ideal − 1| {}, jain {}, violations {}",
            t.ops,
            t.worst_slack().map_or("-".into(), |s| format!("{s} B")),
            t.max_ideal_error().map_or("-".into(), |e| format!("{:.3}%", e * 100.0)),
            t.jain.map_or("-".into(), |j| format!("{j:.5}")),
            t.violations.len()
        );
        println!(
            "  (all three simulated in {:.2?} wall time)\n",
            started.elapsed()
        );
        failed |= !report.is_ok() || !o.is_ok() || !t.is_ok();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
