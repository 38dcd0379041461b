//! The contracts under the conditions real runtimes create, not only exact timers: timers on
//! a 1 ms grid (tokio), wake-up latency, small requests (8 KiB copy loops), tasks that stall.
//! Issue 9: weights collapsed to 1:1 under tokio's 1 ms timers with 8 KiB writes while every
//! exact-timer property passed.

use core::time::Duration;
use throttle_core::{Config, Limits, Tier};
use throttle_tests::sim::{Demand, DriverStyle, LeafSpec, Runtime, Scenario};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Two saturating copy loops weighted `w` under a node limited to `rate`, as two leaves of
/// that node or (`groups`) as the only leaf of two weighted groups. Returns the report.
fn weighted(
    rate: u64,
    w: (u16, u16),
    want: u64,
    groups: bool,
    runtime: Runtime,
    driver: DriverStyle,
) -> throttle_tests::sim::Report {
    let mut sc = Scenario::new(
        format!(
            "weights {}:{} at {} MiB/s, want {want}",
            w.0,
            w.1,
            rate / MIB
        ),
        Config::DEFAULT,
    );
    let root = sc.node("root", None, Limits::per_second(rate), 1);
    for (name, weight) in [("a", w.0), ("b", w.1)] {
        let spec = LeafSpec::new(Demand::Saturating).want(want);
        if groups {
            let g = sc.node(format!("g{name}"), Some(root), Limits::UNLIMITED, weight);
            sc.leaf(name, Some(g), Limits::UNLIMITED, 1, spec);
        } else {
            sc.leaf(name, Some(root), Limits::UNLIMITED, weight, spec);
        }
    }
    sc.runtime = runtime;
    sc.driver = driver;
    sc.duration = Duration::from_secs(2);
    sc.warmup = Duration::from_millis(200);
    sc.run()
}

fn share_error(r: &throttle_tests::sim::Report, w: (u16, u16)) -> f64 {
    let (a, b) = (r.leaf("a").rate, r.leaf("b").rate);
    (a / b) / (f64::from(w.0) / f64::from(w.1)) - 1.0
}

#[test]
fn weights_hold_under_1ms_timer_grid_with_8k_requests() {
    for rate in [6 * MIB, 60 * MIB, 600 * MIB] {
        for w in [(4, 1), (1, 3), (10, 1)] {
            for groups in [false, true] {
                for want in [KIB, 8 * KIB, 64 * KIB, MIB] {
                    let r = weighted(
                        rate,
                        w,
                        want,
                        groups,
                        Runtime::tokio(Duration::ZERO),
                        DriverStyle::OneTimer,
                    );
                    r.assert_ok();
                    let e = share_error(&r, w);
                    assert!(
                        e.abs() < 0.02,
                        "{}{}: a {:.3} b {:.3} MiB/s, ratio/weights - 1 = {e:+.4}",
                        r.name,
                        if groups { " (groups)" } else { "" },
                        r.leaf("a").rate / MIB as f64,
                        r.leaf("b").rate / MIB as f64
                    );
                }
            }
        }
    }
}

/// Issue 9, item 2: a node with a small explicit burst under a contended parent.
fn small_burst(burst: u64, capped_group: bool, runtime: Runtime) -> throttle_tests::sim::Report {
    let mut sc = Scenario::new(
        format!("burst {burst}"),
        Config::DEFAULT.with_min_burst(Duration::ZERO),
    );
    let root = sc.node("root", None, Limits::per_second(100 * MIB), 1);
    if capped_group {
        let g = sc.node(
            "g",
            Some(root),
            Limits::new(Tier::per_second(30 * MIB).with_burst(burst)),
            1,
        );
        sc.leaf(
            "c",
            Some(g),
            Limits::UNLIMITED,
            1,
            LeafSpec::new(Demand::Saturating),
        );
    } else {
        sc.leaf(
            "c",
            Some(root),
            Limits::new(Tier::per_second(20 * MIB).with_burst(burst)),
            1,
            LeafSpec::new(Demand::Saturating),
        );
    }
    for i in 0..4 {
        sc.leaf(
            format!("u{i}"),
            Some(root),
            Limits::UNLIMITED,
            1,
            LeafSpec::new(Demand::Saturating),
        );
    }
    sc.runtime = runtime;
    sc.duration = Duration::from_secs(2);
    sc.warmup = Duration::from_millis(200);
    sc.run()
}

#[test]
fn explore_small_bursts() {
    for rt in [
        Runtime::EXACT,
        Runtime::tokio(Duration::ZERO),
        Runtime::tokio(Duration::from_millis(2)),
        Runtime::tokio(Duration::from_millis(4)),
    ] {
        for burst in [20 * KIB, 40 * KIB, 60 * KIB, 80 * KIB, 100 * KIB, 150 * KIB] {
            for g in [false, true] {
                let r = small_burst(burst, g, rt);
                let c = r.leaf("c");
                println!(
                    "{rt:?} group {g} burst {burst}: c {:.2} MiB/s ideal {:.2} ok {}",
                    c.rate / MIB as f64,
                    c.ideal.unwrap() / MIB as f64,
                    r.is_ok()
                );
            }
        }
    }
}
