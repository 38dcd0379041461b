//! Property tests of the seven contracts (throttle-core's crate docs, "Contracts") over random trees (depth ≤ 4, ≤ 30
//! leaves), random limits (unlimited, paused, multi-tier, per-period), weights 1..=4, random
//! demand, limit changes, cancels, removals, io delays, short writes, hostile timestamps and
//! both driver styles.
//!
//! Reproducible: every property runs with a fixed proptest seed (`RngSeed::Fixed`) and no
//! failure file; a failure prints the generated scenario (`Debug`) and the simulator's
//! report. `PROPTEST_CASES=N` overrides the number of cases for a longer local run.

use core::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, RngSeed};
use throttle_core::{Config, Limits, Tier};
use throttle_tests::sim::{
    Action, Backwards, Demand, DriverStyle, LeafSpec, Report, Runtime, Scenario,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn pt_config(cases: u32) -> PtConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    PtConfig {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x7468_726f_7474_6c65),
        failure_persistence: None,
        max_shrink_iters: 16,
        ..PtConfig::default()
    }
}

// ---- generated shapes ----

/// A node's limits, before conversion.
#[derive(Clone, Debug)]
enum Lim {
    Unlimited,
    /// `rate` B/s with an explicit burst (`None`: automatic).
    Rate(u64, Option<u64>),
    Paused,
    /// A per-second tier and a per-period quota.
    Multi {
        rate: u64,
        burst: u64,
        amount: u64,
        period_ms: u64,
    },
}

impl Lim {
    fn limits(&self) -> Limits {
        match *self {
            Lim::Unlimited => Limits::UNLIMITED,
            Lim::Rate(r, None) => Limits::per_second(r),
            Lim::Rate(r, Some(b)) => Limits::new(Tier::per_second(r).with_burst(b)),
            Lim::Paused => Limits::per_second(0),
            Lim::Multi {
                rate,
                burst,
                amount,
                period_ms,
            } => Limits::new(Tier::per_second(rate).with_burst(burst))
                .and(Tier::per_period(amount, Duration::from_millis(period_ms)).unwrap())
                .unwrap(),
        }
    }
}

/// Rates from 16 KiB/s to 8 MiB/s, bursts from nothing to a few pieces.
fn rate() -> impl Strategy<Value = u64> {
    (16 * KIB)..=(8 * MIB)
}

fn lim(paused: bool, multi: bool) -> BoxedStrategy<Lim> {
    let mut options: Vec<(u32, BoxedStrategy<Lim>)> = vec![
        (4, Just(Lim::Unlimited).boxed()),
        (2, rate().prop_map(|r| Lim::Rate(r, None)).boxed()),
        (
            2,
            (rate(), 0..=(256 * KIB))
                .prop_map(|(r, b)| Lim::Rate(r, Some(b)))
                .boxed(),
        ),
    ];
    if paused {
        options.push((1, Just(Lim::Paused).boxed()));
    }
    if multi {
        options.push((
            1,
            (rate(), 0..=(256 * KIB), 1..=(4 * MIB), 20..=2_000u64)
                .prop_map(|(rate, burst, amount, period_ms)| Lim::Multi {
                    rate,
                    burst,
                    amount,
                    period_ms,
                })
                .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// A limited root: one tier, or a tier and a per-period quota.
fn root_lim(multi: bool) -> BoxedStrategy<Lim> {
    let one = ((256 * KIB)..=(8 * MIB), prop::option::of(0..=(512 * KIB)))
        .prop_map(|(r, b)| Lim::Rate(r, b));
    if !multi {
        return one.boxed();
    }
    prop_oneof![
        3 => one,
        1 => ((256 * KIB)..=(8 * MIB), 0..=(512 * KIB), (64 * KIB)..=(8 * MIB), 20..=2_000u64)
            .prop_map(|(rate, burst, amount, period_ms)| Lim::Multi { rate, burst, amount, period_ms }),
    ]
    .boxed()
}

fn demand() -> impl Strategy<Value = Demand> {
    prop_oneof![
        6 => Just(Demand::Saturating),
        1 => (1..=(2 * MIB)).prop_map(Demand::Bytes),
        1 => (10..=400u64, 10..=400u64).prop_map(|(on, off)| Demand::OnOff {
            on: Duration::from_millis(on),
            off: Duration::from_millis(off),
        }),
        1 => prop::collection::vec((0..2_000u64, 1..=(256 * KIB)), 1..6).prop_map(|v| {
            Demand::Scripted(v.into_iter().map(|(t, b)| (Duration::from_millis(t), b)).collect())
        }),
    ]
}

fn leaf_spec() -> impl Strategy<Value = LeafSpec> {
    (
        demand(),
        prop_oneof![3 => Just(64 * KIB), 1 => 1..=(200 * KIB)],
        prop_oneof![3 => Just(0u64), 1 => 0..=5_000_000u64],
    )
        .prop_map(|(d, want, io)| {
            LeafSpec::new(d)
                .want(want)
                .io_delay(Duration::from_nanos(io))
        })
}

/// `(parent pick, limits, weight, leaf)` per node after the root.
type Shape = Vec<(usize, Lim, u16, Option<LeafSpec>)>;

fn shape(
    lims: BoxedStrategy<Lim>,
    leaves: BoxedStrategy<LeafSpec>,
) -> impl Strategy<Value = Shape> {
    prop::collection::vec(
        (
            any::<usize>(),
            lims,
            1..=4u16,
            prop::option::weighted(0.7, leaves),
        ),
        1..36,
    )
}

/// Builds a tree of depth ≤ 4 with at most 30 leaves (extra leaves become interior nodes).
///
/// The random limits include bursts below `Config::min_burst` (the default refuses them): these
/// properties check the mechanics of any configuration the core can be given, so they accept
/// every burst. `runtime_like.rs` checks configurations the default accepts under the
/// conditions real runtimes create.
fn build(name: &str, root: &Lim, shape: &Shape) -> Scenario {
    let mut sc = Scenario::new(name, Config::DEFAULT.with_min_burst(Duration::ZERO));
    sc.node("root", None, root.limits(), 1);
    let mut depth = vec![0usize];
    let mut leaves = 0;
    for (k, (pick, l, w, leaf)) in shape.iter().enumerate() {
        let candidates: Vec<usize> = (0..sc.nodes.len())
            .filter(|&i| sc.nodes[i].leaf.is_none() && depth[i] < 3)
            .collect();
        let parent = candidates[pick % candidates.len()];
        let name = format!("n{}", k + 1);
        match leaf {
            Some(spec) if leaves < 30 => {
                leaves += 1;
                sc.leaf(name, Some(parent), l.limits(), *w, spec.clone());
            }
            _ => {
                sc.node(name, Some(parent), l.limits(), *w);
            }
        }
        depth.push(depth[parent] + 1);
    }
    sc
}

#[derive(Clone, Debug)]
enum Act {
    SetLimit(usize, Lim),
    SetWeight(usize, u16),
    Cancel(usize),
    Remove(usize),
}

fn acts(duration_ms: u64) -> impl Strategy<Value = Vec<(u64, Act)>> {
    let act = prop_oneof![
        3 => (any::<usize>(), lim(true, true)).prop_map(|(n, l)| Act::SetLimit(n, l)),
        1 => (any::<usize>(), 0..=4u16).prop_map(|(n, w)| Act::SetWeight(n, w)),
        2 => any::<usize>().prop_map(Act::Cancel),
        1 => any::<usize>().prop_map(Act::Remove),
    ];
    prop::collection::vec((0..duration_ms, act), 0..12)
}

fn add_actions(sc: &mut Scenario, acts: &[(u64, Act)]) {
    let leaves = sc.leaves();
    let n = sc.nodes.len();
    for (t, a) in acts {
        let at = Duration::from_millis(*t);
        let action = match a {
            Act::SetLimit(k, l) => Action::SetLimit {
                node: k % n,
                limits: l.limits(),
            },
            Act::SetWeight(k, w) => Action::SetWeight {
                node: k % n,
                weight: *w,
            },
            Act::Cancel(k) if !leaves.is_empty() => Action::Cancel {
                leaf: leaves[k % leaves.len()],
            },
            Act::Remove(k) if !leaves.is_empty() => Action::Remove {
                leaf: leaves[k % leaves.len()],
            },
            _ => continue,
        };
        sc.at(at, action);
    }
}

fn driver(per_waiter: bool) -> DriverStyle {
    if per_waiter {
        DriverStyle::PerWaiter
    } else {
        DriverStyle::OneTimer
    }
}

fn check(r: &Report, sc: &Scenario) -> Result<(), TestCaseError> {
    prop_assert!(r.is_ok(), "{r}\n{sc}");
    Ok(())
}

/// Everything random: the scenario of contracts 1, 5 and 7, exact timers or a runtime's.
fn everything() -> impl Strategy<Value = Scenario> {
    (
        root_lim(true),
        shape(lim(true, true), leaf_spec().boxed()),
        acts(2_000),
        any::<bool>(),
        any::<u64>(),
        prop_oneof![Just(0u32), 0..=500u32],
        prop::option::weighted(0.3, (1..=300u32, 1..=50_000_000u64)),
        500..=2_000u64,
        runtime(),
    )
        .prop_map(|(root, shape, acts, pw, seed, short, back, ms, runtime)| {
            let mut sc = build("random", &root, &shape);
            add_actions(&mut sc, &acts);
            sc.driver = driver(pw);
            sc.seed = seed;
            sc.short_writes = short;
            sc.backwards = back.map(|(per_mille, max)| Backwards {
                per_mille,
                max: Duration::from_nanos(max),
            });
            sc.duration = Duration::from_millis(ms);
            sc.max_ops = 2_000_000;
            sc.runtime = runtime;
            sc
        })
}

/// How timers fire and tasks run: exactly, or as a runtime does (a 1 ms grid, wake-up latency
/// up to 3 ms, stalls of 10–100 ms on a few re-asks).
fn runtime() -> impl Strategy<Value = Runtime> {
    prop_oneof![
        2 => Just(Runtime::EXACT),
        1 => (0..=3_000u64).prop_map(|us| Runtime::tokio(Duration::from_micros(us))),
        1 => (0..=3_000u64, 1..=20u32).prop_map(|(us, pm)| Runtime::tokio(Duration::from_micros(us))
            .with_stalls(pm, Duration::from_millis(10), Duration::from_millis(100))),
    ]
}

proptest! {
    #![proptest_config(pt_config(128))]

    /// Contracts 1, 4 (per phase) and 5: every tier of every node conforms over every window
    /// of every phase (≤ burst + one piece), accounting is exact, nothing is left behind.
    #[test]
    fn random_scenarios_conform_and_account_exactly(sc in everything()) {
        let r = sc.run();
        check(&r, &sc)?;
    }

}

proptest! {
    #![proptest_config(pt_config(32))]

    /// Contract 7: the same scenario gives an identical report.
    #[test]
    fn random_scenario_run_twice_gives_identical_reports(sc in everything()) {
        let (a, b) = (sc.run(), sc.run());
        prop_assert_eq!(a.digest, b.digest);
        prop_assert!(a == b, "reports differ\n{a}\n{b}");
    }
}

/// Saturating consumers with no delay: the ideal applies.
fn busy_leaf() -> BoxedStrategy<LeafSpec> {
    Just(LeafSpec::new(Demand::Saturating)).boxed()
}

proptest! {
    #![proptest_config(pt_config(64))]

    /// Contract 2: with only the root limited and every leaf saturating, the root grants at
    /// least `rate·T − burst − one piece` (per tier: the smallest `rate·T`, the largest
    /// burst), in both driver styles, with or without short writes.
    #[test]
    fn saturated_root_grants_at_least_rate_times_duration(
        root in root_lim(true),
        shape in shape(Just(Lim::Unlimited).boxed(), busy_leaf()),
        pw in any::<bool>(),
        short in prop_oneof![Just(0u32), 0..=500u32],
        ms in 300..=2_000u64,
    ) {
        let mut sc = build("utilization", &root, &shape);
        sc.driver = driver(pw);
        sc.short_writes = short;
        sc.duration = Duration::from_millis(ms);
        prop_assume!(!sc.leaves().is_empty());
        let r = sc.run();
        check(&r, &sc)?;
        let tiers = sc.nodes[0].limits.tiers().to_vec();
        let t = sc.duration.as_secs_f64();
        let floor = tiers.iter().map(|x| x.amount() as f64 * t / x.period().as_secs_f64()).fold(f64::INFINITY, f64::min)
            - tiers.iter().map(|x| x.burst()).max().unwrap_or(0) as f64
            - r.max_piece as f64;
        let used = r.nodes[0].used as f64;
        prop_assert!(used >= floor, "root used {used} < {floor}\n{r}\n{sc}");
    }

    /// Contract 4: only the root is limited, and it changes (to a rate, or paused) at
    /// random times; in each phase the root conforms to its limit of the moment (the
    /// simulator's check) and, when not paused, is kept busy: no waiter sleeps longer than
    /// the new limit requires (phase usage ≥ rate·span − burst − two pieces: one of debt
    /// carried over, one in flight at the end).
    #[test]
    fn root_limit_changes_conform_and_stay_busy_per_phase(
        root in root_lim(false),
        shape in shape(Just(Lim::Unlimited).boxed(), busy_leaf()),
        changes in prop::collection::vec((0..2_000u64, prop_oneof![4 => ((16 * KIB)..=(8 * MIB)).prop_map(Some), 1 => Just(None)]), 1..6),
        pw in any::<bool>(),
    ) {
        let mut sc = build("changes", &root, &shape);
        prop_assume!(!sc.leaves().is_empty());
        for (t, r) in &changes {
            sc.at(Duration::from_millis(*t), Action::SetLimit {
                node: 0,
                limits: Limits::per_second(r.unwrap_or(0)),
            });
        }
        sc.driver = driver(pw);
        sc.duration = Duration::from_millis(2_000);
        let r = sc.run();
        check(&r, &sc)?;
        for c in &r.nodes[0].tiers {
            if c.tier.is_paused() {
                continue;
            }
            let span = c.to.saturating_sub(c.from).as_secs_f64();
            let floor = c.tier.amount() as f64 * span / c.tier.period().as_secs_f64()
                - c.tier.burst() as f64
                - 2.0 * r.max_piece as f64;
            prop_assert!(c.used as f64 >= floor, "phase {} used {} < {floor}\n{r}\n{sc}", c.phase, c.used);
        }
    }
}

/// Per-second limits for the fairness property; `min_burst` bounds explicit bursts from
/// below.
/// Limits whose burst is at least `min_burst` and at most `min_burst` plus 50 ms of the rate,
/// with rates high enough that `min_burst` itself is at most 50 ms. Shares are compared with
/// the long-run ideal over a 3 s window, and a capped node may spend its whole burst inside
/// that window (contract 1 allows it any time): bursts must be small against the window for
/// the long-run ideal to be the right yardstick (a 268 KB burst on a 248 KB/s leaf ran it at
/// 105 % of its cap over the window, taking 8 % from its siblings, found with 1000 cases).
fn fair_lim(min_burst: u64) -> BoxedStrategy<Lim> {
    let low = (16 * KIB).max(min_burst * 20);
    prop_oneof![
        3 => Just(Lim::Unlimited),
        2 => (low..=(low + 4 * MIB), 0..=1000u64).prop_map(move |(r, f)| Lim::Rate(r, Some(min_burst + r / 20 * f / 1000))),
    ]
    .boxed()
}

/// Limits whose burst covers one round of the rate (`rate × 10 ms`, what the automatic burst
/// gives: the documented precondition for full throughput under a contended parent, see
/// `throttle_core::Config`) plus up to 50 ms more (see `fair_lim` for why at most that).
fn round_burst_lim() -> BoxedStrategy<Lim> {
    prop_oneof![
        3 => Just(Lim::Unlimited),
        2 => ((16 * KIB)..=(4 * MIB), 0..=1000u64).prop_map(|(r, f)| Lim::Rate(r, Some(r / 100 + r / 20 * f / 1000))),
    ]
    .boxed()
}

fn fairness(root: Lim, shape: Shape, pw: bool) -> Result<(), TestCaseError> {
    let mut sc = build("fairness", &root, &shape);
    prop_assume!(!sc.leaves().is_empty());
    sc.driver = driver(pw);
    sc.duration = Duration::from_secs(4);
    sc.warmup = Duration::from_secs(1);
    let r = sc.run();
    check(&r, &sc)?;
    let root_rate = r.nodes[0].ideal.unwrap_or(0.0);
    for l in &r.leaves {
        let ideal = l.ideal.unwrap_or(0.0);
        prop_assert!(
            (l.rate - ideal).abs() <= 0.03 * root_rate,
            "leaf {}: {:.0} B/s, ideal {ideal:.0} (tolerance 3% of {root_rate:.0})\n{r}\n{sc}",
            l.name,
            l.rate
        );
    }
    // Jain among equal siblings: leaves with the same parent, weight and limits
    for (i, a) in sc.nodes.iter().enumerate() {
        if a.leaf.is_none() {
            continue;
        }
        let group: Vec<f64> = sc
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                b.leaf.is_some()
                    && b.parent == a.parent
                    && b.weight == a.weight
                    && b.limits == a.limits
            })
            .map(|(k, _)| r.leaves.iter().find(|l| l.index == k).unwrap().rate)
            .collect();
        // Fair queueing guarantees equal siblings equal service within one piece each (SFQ's
        // bound): a piece granted before the others were busy is paid back later. Over the
        // window that is `2 × max_piece` bytes; Jain's 1 % is asked only where that is finer.
        let window = (sc.duration - sc.warmup).as_secs_f64();
        let spread = group.iter().cloned().fold(f64::MIN, f64::max)
            - group.iter().cloned().fold(f64::MAX, f64::min);
        let within_pieces = spread * window <= 2.0 * sc.config.max_piece() as f64;
        if group.len() > 1 && group.iter().any(|&x| x > 0.0) && !within_pieces {
            let j = throttle_tests::ideal::jain(&group).unwrap();
            prop_assert!(
                j >= 0.99,
                "Jain {j} among siblings of {}\n{r}\n{sc}",
                sc.nodes[i].name
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(pt_config(32))]

    /// Contract 3 where every explicit burst holds at least one piece: rates reach the
    /// ideal hierarchical max-min shares within 3 % of the root rate, Jain ≥ 0.99 among
    /// equal siblings.
    #[test]
    fn saturated_random_trees_with_piece_sized_bursts_reach_ideal_shares(
        root in ((256 * KIB)..=(4 * MIB), (64 * KIB)..=(512 * KIB)).prop_map(|(r, b)| Lim::Rate(r, Some(b))),
        shape in shape(fair_lim(64 * KIB), busy_leaf()),
        pw in any::<bool>(),
    ) {
        fairness(root, shape, pw)?;
    }

    /// Contract 3 with bursts that may be smaller than a piece but cover one round of their
    /// rate (the automatic burst's rule).
    #[test]
    fn saturated_random_trees_with_round_bursts_reach_ideal_shares(
        root in ((256 * KIB)..=(4 * MIB), 0..=(512 * KIB)).prop_map(|(r, extra)| Lim::Rate(r, Some(r / 100 + extra))),
        shape in shape(round_burst_lim(), busy_leaf()),
        pw in any::<bool>(),
    ) {
        fairness(root, shape, pw)?;
    }
}
