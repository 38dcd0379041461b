//! Contract 6, totality: any sequence of operations — hostile timestamps (backwards, zero,
//! `u64::MAX`), `u64::MAX` rates and bursts, zero rates, extreme periods and piece sizes,
//! stale handles, removals — neither panics nor overflows (this crate's tests build the core
//! with debug assertions and overflow checks), and every answer stays well-formed.
//! Plus exact-refund checks of contract 5 at a single instant.

use core::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, RngSeed};
use throttle_core::{
    AcquireError, Config, Decision, FixedTree, Instant, LeafId, Limits, NodeId, Tier, Tree,
    VecTree, MAX_PERIOD, MAX_PIECE_LIMIT,
};
use throttle_tests::sim::{Backwards, Demand, DriverStyle, LeafSpec, Scenario};

/// Totality is about any input: bursts below the default minimum included.
const ANY_BURST: Config = Config::DEFAULT.with_min_burst(Duration::ZERO);

/// Runs `f` on its own thread; if it has not returned after `secs`, the core is stuck in a
/// loop: print `what` and end the whole test process with a failure (no shrinking, no pile
/// of spinning threads).
fn watchdog<R: Send + 'static>(
    secs: u64,
    what: String,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // the worker panicked: surface its panic here
            match worker.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => unreachable!("sent nothing yet returned"),
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            eprintln!("HANG: no answer after {secs} s (the core loops forever) in:\n{what}");
            std::process::exit(101)
        }
    }
}

// ---- raw operation sequences ----

#[derive(Clone, Debug)]
enum T {
    Forward(u64),
    Back(u64),
    Same,
    Zero,
    Max,
}

#[derive(Clone, Debug)]
enum Op {
    Node(usize, Limits, u16),
    Leaf(usize, Limits, u16),
    Acquire(usize, u64),
    Settle(usize, u64),
    Cancel(usize),
    SetLimit(usize, Limits),
    SetWeight(usize, u16),
    Remove(usize),
    Timeout,
    Ready,
    Read(usize, usize),
}

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1 << 40),
        0..=(1u64 << 24),
        any::<u64>(),
    ]
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![
        (big(), big()).prop_map(|(r, b)| Tier::per_second(r).with_burst(b)),
        big().prop_map(Tier::per_second),
        (
            big(),
            prop_oneof![
                Just(1u64),
                Just(MAX_PERIOD.as_nanos() as u64),
                1..=(1u64 << 50)
            ]
        )
            .prop_map(|(a, p)| Tier::per_period(a, Duration::from_nanos(p)).unwrap()),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop::collection::vec(tier(), 0..=3).prop_map(|t| Limits::from_tiers(&t).unwrap())
}

fn time() -> impl Strategy<Value = T> {
    prop_oneof![
        6 => big().prop_map(|d| T::Forward(d % (1 << 42))),
        2 => big().prop_map(T::Back),
        2 => Just(T::Same),
        1 => Just(T::Zero),
        1 => Just(T::Max),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (any::<usize>(), limits(), 0..=5u16).prop_map(|(p, l, w)| Op::Node(p, l, w)),
        3 => (any::<usize>(), limits(), 0..=5u16).prop_map(|(p, l, w)| Op::Leaf(p, l, w)),
        6 => (any::<usize>(), big()).prop_map(|(l, w)| Op::Acquire(l, w)),
        3 => (any::<usize>(), big()).prop_map(|(l, u)| Op::Settle(l, u)),
        2 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), limits()).prop_map(|(n, l)| Op::SetLimit(n, l)),
        1 => (any::<usize>(), 0..=5u16).prop_map(|(n, w)| Op::SetWeight(n, w)),
        1 => any::<usize>().prop_map(Op::Remove),
        2 => Just(Op::Timeout),
        2 => Just(Op::Ready),
        1 => (any::<usize>(), 0..=4usize).prop_map(|(n, t)| Op::Read(n, t)),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        big(),
        big(),
        prop_oneof![Just(0u64), Just(u64::MAX), 0..=(1u64 << 33)],
    )
        .prop_map(|(a, b, r)| {
            ANY_BURST
                .with_pieces(a, b)
                .with_round(Duration::from_nanos(r))
        })
}

fn apply<S: throttle_core::Storage>(
    tree: &mut Tree<S>,
    ops: &[(T, Op)],
) -> Result<(), TestCaseError> {
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut leaves: Vec<LeafId> = Vec::new();
    let mut now = 0u64;
    let pick = |v: &[NodeId], k: usize| (!v.is_empty()).then(|| v[k % v.len()]);
    for (t, op) in ops {
        let at = match *t {
            T::Forward(d) => {
                now = now.saturating_add(d);
                now
            }
            T::Back(d) => now.saturating_sub(d),
            T::Same => now,
            T::Zero => 0,
            T::Max => u64::MAX,
        };
        let at = Instant::from_nanos(at);
        match op {
            Op::Node(p, l, w) | Op::Leaf(p, l, w) => {
                let parent = if *p % 4 == 0 { None } else { pick(&nodes, *p) };
                let r = if matches!(op, Op::Node(..)) {
                    tree.insert_node(parent, *l, *w, at)
                } else {
                    tree.insert_leaf(parent, *l, *w, at).map(|l| {
                        leaves.push(l);
                        l.node()
                    })
                };
                if let Ok(id) = r {
                    nodes.push(id);
                }
            }
            Op::Acquire(k, want) => {
                if let Some(l) = (!leaves.is_empty()).then(|| leaves[k % leaves.len()]) {
                    match tree.acquire(l, *want, at) {
                        Ok(Decision::Grant(n)) => {
                            prop_assert!(n >= 1 && n <= *want, "Grant({n}) for want {want}")
                        }
                        Ok(Decision::Wait { until }) => {
                            // at the end of representable time, `Instant::MAX` means never
                            prop_assert!(
                                until > tree.now() || until == Instant::MAX,
                                "Wait until {until:?} ≤ now"
                            )
                        }
                        Ok(Decision::Paused) => {}
                        Err(AcquireError::ZeroRequest) => prop_assert_eq!(*want, 0),
                        Err(_) => prop_assert!(!tree.contains(l.node())),
                    }
                }
            }
            Op::Settle(k, used) => {
                if let Some(l) = (!leaves.is_empty()).then(|| leaves[k % leaves.len()]) {
                    let _ = tree.settle(l, *used, at);
                }
            }
            Op::Cancel(k) => {
                if let Some(l) = (!leaves.is_empty()).then(|| leaves[k % leaves.len()]) {
                    let _ = tree.cancel(l, at);
                }
            }
            Op::SetLimit(k, l) => {
                if let Some(n) = pick(&nodes, *k) {
                    let _ = tree.set_limit(n, *l, at);
                }
            }
            Op::SetWeight(k, w) => {
                if let Some(n) = pick(&nodes, *k) {
                    let _ = tree.set_weight(n, *w);
                }
            }
            Op::Remove(k) => {
                if let Some(n) = pick(&nodes, *k) {
                    let _ = tree.remove(n, at);
                }
            }
            Op::Timeout => {
                tree.handle_timeout(at);
                if let Some(t) = tree.poll_timeout() {
                    prop_assert!(t > tree.now(), "timer {t:?} not after now {:?}", tree.now());
                }
            }
            Op::Ready => while tree.poll_ready().is_some() {},
            Op::Read(k, tier) => {
                if let Some(n) = pick(&nodes, *k) {
                    let _ = (tree.stats(n), tree.tokens(n, *tier), tree.limits(n));
                    let _ = (tree.parent(n), tree.contains(n));
                }
            }
        }
    }
    Ok(())
}

fn pt_config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x746f_7461_6c69_7479),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..PtConfig::default()
    }
}

proptest! {
    #![proptest_config(pt_config(256))]

    #[test]
    fn random_operations_hostile_inputs_never_panic(
        config in config(),
        ops in prop::collection::vec((time(), op()), 1..120),
        fixed in any::<bool>(),
    ) {
        let what = format!("config {config:?}, FixedTree: {fixed}, ops {ops:#?}");
        watchdog(10, what, move || {
            if fixed {
                apply(&mut FixedTree::<6>::new(config), &ops)
            } else {
                apply(&mut VecTree::new(config), &ops)
            }
        })?;
    }
}

// ---- deterministic hostile cases ----

#[test]
fn extreme_limits_and_timestamps_any_operation_never_panics() {
    watchdog(
        20,
        "extreme_limits_and_timestamps_any_operation_never_panics".into(),
        extremes,
    );
}

fn extremes() {
    let extremes = [
        Limits::UNLIMITED,
        Limits::per_second(0),
        Limits::per_second(u64::MAX),
        Limits::new(Tier::per_second(u64::MAX).with_burst(u64::MAX)),
        Limits::new(Tier::per_second(1).with_burst(u64::MAX)),
        Limits::new(Tier::per_period(u64::MAX, MAX_PERIOD).unwrap()),
        Limits::new(Tier::per_period(1, MAX_PERIOD).unwrap().with_burst(0)),
        Limits::new(Tier::per_second(u64::MAX).with_burst(0))
            .and(Tier::per_period(u64::MAX, Duration::from_nanos(1)).unwrap())
            .unwrap(),
    ];
    let times = [0, 1, u64::MAX, u64::MAX - 1, 5, 0, u64::MAX];
    for config in [
        ANY_BURST,
        ANY_BURST.with_pieces(1, 1),
        ANY_BURST.with_pieces(MAX_PIECE_LIMIT, MAX_PIECE_LIMIT),
        ANY_BURST.with_round(Duration::MAX),
    ] {
        for (i, &root) in extremes.iter().enumerate() {
            for &leaf in &extremes {
                let mut tree = VecTree::new(config);
                let r = tree
                    .insert_node(None, root, u16::MAX, Instant::ZERO)
                    .unwrap();
                let l = tree.insert_leaf(Some(r), leaf, 1, Instant::ZERO).unwrap();
                for (k, &t) in times.iter().enumerate() {
                    let at = Instant::from_nanos(t);
                    for want in [1, u64::MAX] {
                        if let Ok(Decision::Grant(n)) = tree.acquire(l, want, at) {
                            assert!(n >= 1 && n <= want);
                            let _ = tree.settle(l, n / 2, at);
                        }
                    }
                    tree.handle_timeout(at);
                    while tree.poll_ready().is_some() {}
                    let _ = tree.set_limit(r, extremes[(i + k) % extremes.len()], at);
                    let _ = (tree.tokens(r, 0), tree.tokens(l.node(), 2), tree.stats(r));
                    let _ = tree.cancel(l, at);
                }
                tree.remove(l.node(), Instant::MAX).unwrap();
                // stale handles: errors, never panics
                assert_eq!(
                    tree.acquire(l, 1, Instant::MAX),
                    Err(AcquireError::StaleHandle)
                );
                assert!(tree.settle(l, 1, Instant::ZERO).is_err());
                assert!(tree.cancel(l, Instant::ZERO).is_err());
                assert!(tree.set_limit(l.node(), root, Instant::ZERO).is_err());
                assert!(tree.remove(l.node(), Instant::ZERO).is_err());
                assert!(tree.stats(l.node()).is_err());
                // a reused slot does not revive the old handle
                let l2 = tree.insert_leaf(Some(r), leaf, 1, Instant::ZERO).unwrap();
                assert_ne!(l2, l);
                assert!(tree.acquire(l, 1, Instant::ZERO).is_err());
            }
        }
    }
}

/// The simulator itself under hostile settings: `u64::MAX` rates (an unlimited path grants
/// forever at one instant: the operation budget stops it), zero rates, backwards clocks.
#[test]
fn simulator_extreme_rates_and_backwards_clock_reports_no_violation() {
    for (rate, burst) in [(u64::MAX, u64::MAX), (u64::MAX, 0), (0, 0), (1, u64::MAX)] {
        for driver in [DriverStyle::OneTimer, DriverStyle::PerWaiter] {
            let mut sc = Scenario::new("extreme", ANY_BURST);
            let root = sc.node(
                "root",
                None,
                Limits::new(Tier::per_second(rate).with_burst(burst)),
                1,
            );
            for i in 0..3 {
                sc.leaf(
                    format!("l{i}"),
                    Some(root),
                    Limits::UNLIMITED,
                    1,
                    LeafSpec::new(Demand::Saturating),
                );
            }
            sc.driver = driver;
            sc.backwards = Some(Backwards {
                per_mille: 300,
                max: Duration::from_secs(10),
            });
            sc.short_writes = 300;
            sc.max_ops = 20_000;
            let r = sc.run();
            r.assert_ok();
        }
    }
}

/// Minimal form of a hang the test above finds: at `now = u64::MAX` a node in debt gets a
/// recovery time that saturates to `u64::MAX`, which is not after `now`, so the timer loop
/// in `run` re-arms and fires it forever. The third `acquire` never returns.
#[test]
fn node_in_debt_at_instant_max_acquire_returns() {
    let d = watchdog(
        10,
        "node_in_debt_at_instant_max_acquire_returns".into(),
        || {
            let mut tree = VecTree::new(ANY_BURST);
            let r = tree
                .insert_node(None, Limits::per_second(1000), 1, Instant::ZERO)
                .unwrap();
            let l = tree
                .insert_leaf(Some(r), Limits::UNLIMITED, 1, Instant::ZERO)
                .unwrap();
            let mut last = None;
            for _ in 0..3 {
                let d = tree.acquire(l, 64 * 1024, Instant::MAX);
                if let Ok(Decision::Grant(n)) = d {
                    tree.settle(l, n, Instant::MAX).unwrap();
                }
                last = Some(d);
            }
            last
        },
    );
    // the bucket never refills after the end of time: wait "forever" or pause, but answer
    assert!(
        matches!(d, Some(Ok(Decision::Wait { .. } | Decision::Paused))),
        "{d:?}"
    );
}

// ---- contract 5 at one instant: refunds are exact ----

#[test]
fn granted_piece_cancelled_refunds_every_level_exactly() {
    let t = Instant::from_secs(1);
    let mut tree = VecTree::new(ANY_BURST);
    let root = tree
        .insert_node(
            None,
            Limits::new(Tier::per_second(1 << 20).with_burst(100_000)),
            1,
            Instant::ZERO,
        )
        .unwrap();
    let group = tree
        .insert_node(
            Some(root),
            Limits::new(Tier::per_second(1 << 20).with_burst(80_000)),
            1,
            Instant::ZERO,
        )
        .unwrap();
    let a = tree
        .insert_leaf(Some(group), Limits::UNLIMITED, 1, Instant::ZERO)
        .unwrap();
    let b = tree
        .insert_leaf(Some(group), Limits::UNLIMITED, 1, Instant::ZERO)
        .unwrap();
    // a takes pieces until the path is in debt; b waits
    while let Ok(Decision::Grant(n)) = tree.acquire(a, 64 * 1024, t) {
        tree.settle(a, n, t).unwrap();
    }
    let _ = tree.cancel(a, t);
    assert!(matches!(
        tree.acquire(b, 64 * 1024, t),
        Ok(Decision::Wait { .. })
    ));
    // at the instant b is granted by the timer, cancel it before it collects: every level
    // gets exactly the piece back
    let wake = tree.poll_timeout().unwrap();
    let g0 = tree.stats(root).unwrap().granted;
    tree.handle_timeout(wake);
    assert_eq!(tree.poll_ready(), Some(b));
    let spent = [
        tree.tokens(root, 0).unwrap(),
        tree.tokens(group, 0).unwrap(),
    ];
    let piece = tree.stats(root).unwrap().granted - g0;
    assert!(piece > 0);
    let refunded = tree.cancel(b, wake).unwrap();
    assert_eq!(refunded, piece);
    assert_eq!(tree.tokens(root, 0).unwrap(), spent[0] + piece as i128);
    assert_eq!(tree.tokens(group, 0).unwrap(), spent[1] + piece as i128);
    assert_eq!(tree.stats(root).unwrap().granted, g0);
    assert_eq!(tree.stats(group).unwrap().granted, g0);
    // settling part of a grant gives back exactly the rest
    let g = tree.stats(root).unwrap().granted;
    let later = wake.saturating_add(Duration::from_secs(1));
    let Ok(Decision::Grant(n)) = tree.acquire(b, 64 * 1024, later) else {
        panic!("b should be granted after a second of refill")
    };
    let tokens = tree.tokens(group, 0).unwrap();
    tree.settle(b, n / 3, later).unwrap();
    assert_eq!(tree.tokens(group, 0).unwrap(), tokens + (n - n / 3) as i128);
    assert_eq!(tree.stats(root).unwrap().granted, g + n / 3);
    // removing a leaf holding an unsettled grant refunds it everywhere
    let Ok(Decision::Grant(m)) = tree.acquire(a, 1000, later) else {
        panic!("a should be granted")
    };
    let tokens = tree.tokens(root, 0).unwrap();
    tree.remove(a.node(), later).unwrap();
    assert_eq!(tree.tokens(root, 0).unwrap(), tokens + m as i128);
    assert_eq!(tree.stats(root).unwrap().granted, g + n / 3);
}
