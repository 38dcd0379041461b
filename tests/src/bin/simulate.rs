//! `simulate`: runs the built-in scenarios through the real core in virtual time and prints
//! one report each (ideal vs simulated shares, Jain's index, worst conformance window per
//! limited node, utilization), plus a one-line check with the other driver style.
//!
//! `cargo run --release -p throttle-tests --bin simulate [SCENARIO...]`; `--list` names them.

use std::process::ExitCode;
use std::time::Instant;

use throttle_tests::scenarios;
use throttle_tests::sim::DriverStyle;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        println!(
            "  (both styles simulated in {:.2?} wall time)\n",
            started.elapsed()
        );
        failed |= !report.is_ok() || !o.is_ok();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
