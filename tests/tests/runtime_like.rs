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
    let mut sc = throttle_tests::scenarios::weighted_pair(rate, w, want, groups);
    sc.runtime = runtime;
    sc.driver = driver;
    sc.duration = secs();
    sc.run()
}

/// Simulated time per run: 3 s in release builds, where the 2 % targets are checked
/// (`cargo nextest run --release -p throttle-tests --test runtime_like`, a step of `.ci/run`);
/// 1.2 s in debug builds (the workspace test run), where the simulator is ~20 times slower and
/// the shorter window is held to [`tolerance`].
fn secs() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_millis(1200)
    } else {
        Duration::from_secs(3)
    }
}

/// 2 % over the release build's 3 s; 5 % over the debug build's 1 s window, where a late
/// task's catch-up (up to 100 ms, see `throttle_core::Config`) weighs more.
fn tolerance() -> f64 {
    if cfg!(debug_assertions) {
        0.05
    } else {
        0.02
    }
}

fn share_error(r: &throttle_tests::sim::Report, w: (u16, u16)) -> f64 {
    let (a, b) = (r.leaf("a").rate, r.leaf("b").rate);
    (a / b) / (f64::from(w.0) / f64::from(w.1)) - 1.0
}

fn weights_hold(runtime: Runtime, driver: DriverStyle) {
    for rate in [6 * MIB, 60 * MIB, 600 * MIB] {
        for w in [(4, 1), (1, 3), (10, 1)] {
            for groups in [false, true] {
                for want in [KIB, 8 * KIB, MIB] {
                    let r = weighted(rate, w, want, groups, runtime, driver);
                    r.assert_ok();
                    let e = share_error(&r, w);
                    assert!(
                        e.abs() < tolerance(),
                        "{}{} ({runtime:?}, {driver:?}): a {:.3} b {:.3} MiB/s, \
                         ratio/weights - 1 = {e:+.4}",
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

/// Weights 4:1, 1:3 and 10:1, as leaves and as one-leaf groups, at 6, 60 and 600 MiB/s,
/// requests of 1 KiB, 8 KiB and 1 MiB, tokio's 1 ms timer grid: shares within 2 % of the
/// weights (they came out 1.09 instead of 4 with 8 KiB requests before held turns).
#[test]
fn weights_hold_under_1ms_timer_grid() {
    weights_hold(Runtime::tokio(Duration::ZERO), DriverStyle::OneTimer);
}

/// Wake-up latencies to hold the weights under: every wake-up late by a seeded amount up to
/// this (a busy tokio worker; 2 ms is a loaded machine). Release checks them all over 3 s;
/// debug builds (the workspace run) only the largest, over their 1.2 s window.
fn latencies() -> &'static [Duration] {
    const ALL: [Duration; 3] = [
        Duration::from_micros(200),
        Duration::from_millis(1),
        Duration::from_millis(2),
    ];
    if cfg!(debug_assertions) {
        &ALL[2..]
    } else {
        &ALL
    }
}

/// The same with wake-up latency on every wake-up, up to 2 ms. Up to 27 % off with 1 ms
/// before a root in debt with only held turns below got its recovery timer (see
/// `tests/README.md`).
#[test]
fn weights_hold_under_1ms_timer_grid_and_wake_latency() {
    for &lat in latencies() {
        weights_hold(Runtime::tokio(lat), DriverStyle::OneTimer);
    }
}

/// The same with one timer per waiter (each task sleeps until its own `Wait { until }`).
#[test]
fn weights_hold_with_per_waiter_timers_on_a_1ms_grid() {
    for &lat in latencies() {
        weights_hold(Runtime::tokio(lat), DriverStyle::PerWaiter);
    }
}

/// Issue 9, item 2: a node capped at `rate` with an explicit `burst` (a leaf, or a group with
/// one leaf) beside four unlimited busy siblings (64 KiB pieces) under 100 MiB/s.
fn small_burst(
    rate: u64,
    burst: u64,
    capped_group: bool,
    runtime: Runtime,
) -> throttle_tests::sim::Report {
    let mut sc = Scenario::new(
        format!("{} MiB/s burst {burst}", rate / MIB),
        Config::DEFAULT,
    );
    let root = sc.node("root", None, Limits::per_second(100 * MIB), 1);
    let cap = Limits::new(Tier::per_second(rate).with_burst(burst));
    let busy = LeafSpec::new(Demand::Saturating);
    if capped_group {
        let g = sc.node("g", Some(root), cap, 1);
        sc.leaf("c", Some(g), Limits::UNLIMITED, 1, busy);
    } else {
        sc.leaf("c", Some(root), cap, 1, busy);
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
    sc.duration = secs();
    sc.warmup = Duration::from_millis(200);
    sc.run()
}

/// Bursts of 1 KiB at 10–50 MiB/s are refused with the minimum (`Config::min_burst`, 5 ms of
/// the rate); at that minimum the node gets its max-min share within 2 % under a contended
/// parent, with exact timers, on a 1 ms grid, and with up to 2 ms of wake-up latency.
#[test]
fn small_bursts_are_refused_and_the_minimum_gets_its_share() {
    for rate in [10 * MIB, 20 * MIB, 50 * MIB] {
        let mut tree = throttle_core::VecTree::new(Config::DEFAULT);
        let root = tree
            .insert_node(
                None,
                Limits::per_second(100 * MIB),
                1,
                throttle_core::Instant::ZERO,
            )
            .unwrap();
        let small = Limits::new(Tier::per_second(rate).with_burst(KIB));
        let Err(throttle_core::InsertError::BurstTooSmall(e)) =
            tree.insert_leaf(Some(root), small, 1, throttle_core::Instant::ZERO)
        else {
            panic!("a 1 KiB burst at {rate} B/s must be refused");
        };
        assert_eq!(e.minimum, rate / 200, "the minimum is 5 ms of the rate");
        for runtime in [
            Runtime::EXACT,
            Runtime::tokio(Duration::ZERO),
            Runtime::tokio(Duration::from_millis(2)),
        ] {
            for group in [false, true] {
                let r = small_burst(rate, e.minimum, group, runtime);
                r.assert_ok();
                let c = r.leaf("c");
                let ideal = c.ideal.unwrap();
                assert!(
                    (c.rate / ideal - 1.0).abs() < tolerance(),
                    "{} ({runtime:?}, group {group}): {:.3} MiB/s, ideal {:.3}\n{r}",
                    r.name,
                    c.rate / MIB as f64,
                    ideal / MIB as f64
                );
            }
        }
    }
}

/// Issue 9, item 3: tasks that run late. Eight equal copy loops (8 KiB) under 50 MiB/s, every
/// wake-up late by up to `latency`: within the bound of a held turn (see
/// `throttle_core::Config`, "Held turns": half of min(round, burst) of the path's rates, 5 ms
/// here) nobody loses the turns it could not take: each gets its eighth within 2 %.
#[test]
fn late_tasks_keep_their_turns_within_the_hold_bound() {
    for latency in [Duration::from_millis(1), Duration::from_millis(4)] {
        for driver in [DriverStyle::OneTimer, DriverStyle::PerWaiter] {
            let mut sc = Scenario::new(format!("late by up to {latency:?}"), Config::DEFAULT);
            let root = sc.node("root", None, Limits::per_second(50 * MIB), 1);
            for i in 0..8 {
                let spec = LeafSpec::new(Demand::Saturating).want(8 * KIB);
                sc.leaf(format!("l{i}"), Some(root), Limits::UNLIMITED, 1, spec);
            }
            sc.runtime = Runtime::tokio(latency);
            sc.driver = driver;
            sc.duration = Duration::from_secs(3); // small enough for debug builds too
            sc.warmup = Duration::from_millis(200);
            let r = sc.run();
            r.assert_ok();
            for l in &r.leaves {
                let ideal = l.ideal.unwrap();
                assert!(
                    (l.rate / ideal - 1.0).abs() < tolerance(),
                    "{} {driver:?}: {} got {:.3} MiB/s of {:.3}\n{r}",
                    r.name,
                    l.name,
                    l.rate / MIB as f64,
                    ideal / MIB as f64
                );
            }
            assert!(r.nodes[0].utilization.unwrap() > 0.99, "{r}");
        }
    }
}

/// Shares over short windows, not only over 3 s: weights 10:1 at 600 MiB/s with 8 KiB pieces
/// and up to 1 ms of wake-up latency, measured over successive 100 ms windows, stay within
/// 15 % of the weights in every window. Before a late leaf's held turn was lent one piece at a
/// time (`throttle-core/src/sched.rs`, `lend_turn`), its siblings took everything banked at
/// once and it was repaid in one block: 7:1 to 17:1 from one 100 ms window to the next.
#[test]
fn weights_hold_over_100ms_windows() {
    let windows = if cfg!(debug_assertions) { 3 } else { 10 };
    for k in 0..windows {
        let from = Duration::from_millis(200 + 100 * k);
        let mut sc = throttle_tests::scenarios::weighted_pair(600 * MIB, (10, 1), 8 * KIB, false);
        sc.runtime = Runtime::tokio(Duration::from_millis(1));
        sc.warmup = from;
        sc.duration = from + Duration::from_millis(100);
        let r = sc.run();
        r.assert_ok();
        let e = share_error(&r, (10, 1));
        assert!(
            e.abs() < 0.15,
            "window {from:?} + 100 ms: a {:.1} b {:.1} MiB/s, ratio/weights - 1 = {e:+.3}",
            r.leaf("a").rate / MIB as f64,
            r.leaf("b").rate / MIB as f64
        );
    }
}
